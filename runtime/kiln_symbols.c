/* kiln_symbols.c — names for pcs, in process, at dump time. A symbolizer
 * (kiln_symbols_t) is an owned context: whoever names frames opens one,
 * passes it along and closes it, so two threads (a leak report and a dump)
 * symbolize at once sharing nothing mutable. For each module it meets it
 * maps the ELF file read-only and reads its functions into a sorted array:
 * .symtab; else the debug file's (/usr/lib/debug/.build-id/xx/yyy.debug,
 * or the one .gnu_debuglink names); else .dynsym plus the MiniDebugInfo
 * symbols (.gnu_debugdata, xz, decoded with liblzma loaded on demand).
 * Code no symbol covers is named by the function that contains it, from
 * the unwind tables (kiln_ehframe.c): "module+0xSTART". Addresses outside
 * every module are looked up in the program's perf map (/tmp/perf-PID.map,
 * JIT compilers write it) and, for kernel addresses, in /proc/kallsyms.
 * Every offset read from a file is bounds-checked: a truncated or hostile
 * ELF must not crash the program. Normal context only. */
#include "kiln_internal.h"
#include "kiln_contract.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct kiln_sym {
  uint64_t addr, size;
  const char *name;
  int rank; /* lower wins among aliases at one address */
} kiln_sym_t;

/* A sorted array of kiln_sym_t on mmap memory. */
typedef struct kiln_symtab {
  kiln_sym_t *syms;
  size_t n, bytes;
} kiln_symtab_t;

typedef struct kiln_symfile {
  const kiln_module_t *module;
  kiln_symtab_t tab;
  void *maps[2]; /* the module file and its debug file */
  size_t map_len[2];
  kiln_buf_t mini; /* the decoded MiniDebugInfo ELF image */
  kiln_ehframe_t eh; /* function bounds of the module's own image */
} kiln_symfile_t;

struct kiln_symbols {
  kiln_symfile_t *files; /* on mmap, grown */
  size_t nfiles, cap;
  size_t last; /* index + 1 of the file of the last lookup */
  char *(*demangle)(const char *, char *, size_t *, int *);
  bool crash; /* opened with demangling off (a crash): no dlopen, no malloc */
  unsigned warmed; /* kiln_symbols_fork_prepare has read modules into it */
  bool jit_loaded, kernel_loaded;
  kiln_symtab_t jit, kernel; /* perf map, kallsyms */
  kiln_buf_t jit_text, kernel_text;
  kiln_buf_t raw; /* a raw name, NUL-terminated, for kiln_symbols_name */
};

static _Atomic bool kiln_symbols_no_demangle;

void kiln_symbols_demangle(bool on) {
  atomic_store_explicit(&kiln_symbols_no_demangle, !on, memory_order_relaxed);
}

static kiln_symbols_t *kiln_symbols_open_new(void) {
  kiln_symbols_t *sy = kiln_mem_map(sizeof *sy);
  if (sy == NULL) return NULL;
  sy->crash = atomic_load_explicit(&kiln_symbols_no_demangle, memory_order_relaxed);
  /* (dlsym of a name the program lacks, a C program's __cxa_demangle, has
   * the loader allocate its error: callers open under kiln's heap guard.) */
  if (!sy->crash) *(void **)&sy->demangle = dlsym(RTLD_DEFAULT, "__cxa_demangle");
  return sy;
}

static void kiln_symbols_tab_free(kiln_symtab_t *t) {
  kiln_mem_unmap(t->syms, t->bytes);
  memset(t, 0, sizeof *t);
}

static void kiln_symbols_close_now(kiln_symbols_t *sy) {
  if (sy == NULL) return;
  for (size_t i = 0; i < sy->nfiles; i++) {
    kiln_symfile_t *f = &sy->files[i];
    kiln_symbols_tab_free(&f->tab);
    for (int k = 0; k < 2; k++)
      if (f->maps[k] != NULL) munmap(f->maps[k], f->map_len[k]);
    kiln_buf_free(&f->mini);
  }
  kiln_mem_unmap(sy->files, sy->cap * sizeof *sy->files);
  kiln_symbols_tab_free(&sy->jit);
  kiln_symbols_tab_free(&sy->kernel);
  kiln_buf_free(&sy->jit_text);
  kiln_buf_free(&sy->kernel_text);
  kiln_buf_free(&sy->raw);
  kiln_mem_unmap(sy, sizeof *sy);
}

/* A dump names the same stacks several times (the release of glibc's
 * buffers, the leak scan's suppressions, health, each profile file, pprof),
 * and a process may dump many times: while a thread holds the process's
 * kept session, every open on that thread returns it, and each module's
 * symbols are read once for the process (modules are never reused, so what
 * was read stays true). A fork child inherits what its parent read; the
 * parent reads the modules of its stacks before its second fork
 * (kiln_symbols_fork_prepare), so that a storm of children does not read
 * them once each. Per thread: another thread's kiln_check opens its own.
 * Not in a crash (no demangling then). */
static __thread kiln_symbols_t *kiln_symbols_held __attribute__((tls_model("initial-exec")));
static __thread int kiln_symbols_hold_depth __attribute__((tls_model("initial-exec")));
static pthread_mutex_t kiln_symbols_kept_lock = PTHREAD_MUTEX_INITIALIZER;
static kiln_symbols_t *kiln_symbols_kept;
static bool kiln_symbols_fork_locked;

void kiln_symbols_hold(void) {
  if (kiln_symbols_hold_depth++ > 0 || atomic_load_explicit(&kiln_symbols_no_demangle, memory_order_relaxed)) return;
  pthread_mutex_lock(&kiln_symbols_kept_lock);
  if (kiln_symbols_kept == NULL) kiln_symbols_kept = kiln_symbols_open_new();
  kiln_symbols_held = kiln_symbols_kept;
  if (kiln_symbols_held == NULL) pthread_mutex_unlock(&kiln_symbols_kept_lock);
}

void kiln_symbols_release(void) {
  if (kiln_symbols_hold_depth == 0 || --kiln_symbols_hold_depth > 0 || kiln_symbols_held == NULL) return;
  kiln_symbols_held = NULL;
  pthread_mutex_unlock(&kiln_symbols_kept_lock);
}

static kiln_symfile_t *kiln_symbols_file(kiln_symbols_t *sy, const kiln_module_t *m);

void kiln_symbols_warm(const kiln_module_t *m) {
  if (kiln_symbols_fork_locked && kiln_symbols_kept != NULL && m != NULL) kiln_symbols_file(kiln_symbols_kept, m);
}

bool kiln_symbols_fork_prepare(bool warm) {
  kiln_symbols_fork_locked = kiln_symbols_hold_depth == 0 && pthread_mutex_trylock(&kiln_symbols_kept_lock) == 0;
  if (!kiln_symbols_fork_locked || !warm || atomic_load_explicit(&kiln_symbols_no_demangle, memory_order_relaxed))
    return false;
  if (kiln_symbols_kept == NULL) kiln_symbols_kept = kiln_symbols_open_new();
  kiln_symbols_t *sy = kiln_symbols_kept;
  if (sy == NULL || sy->warmed > 0) return false;
  sy->warmed = 1;
  /* The program and libc are in nearly every stack of every child, even
   * before the parent has stacks of its own. */
  if (kiln_modules_count() > 0) kiln_symbols_file(sy, kiln_modules_at(0));
  const kiln_module_t *libc = kiln_modules_find((uintptr_t)&getpid);
  if (libc != NULL) kiln_symbols_file(sy, libc);
  return true;
}

void kiln_symbols_fork_parent(void) {
  if (kiln_symbols_fork_locked) pthread_mutex_unlock(&kiln_symbols_kept_lock);
  kiln_symbols_fork_locked = false;
}

void kiln_symbols_fork_child(void) {
  /* A session another thread was using at the fork may be half updated:
   * the child reads its own. */
  if (!kiln_symbols_fork_locked) kiln_symbols_kept = NULL;
  kiln_symbols_fork_locked = false;
  kiln_symbols_held = NULL;
  kiln_symbols_hold_depth = 0;
  pthread_mutex_init(&kiln_symbols_kept_lock, NULL);
}

kiln_symbols_t *kiln_symbols_open(void) {
  kiln_symbols_t *sy = kiln_symbols_held;
  if (sy != NULL && sy->crash == atomic_load_explicit(&kiln_symbols_no_demangle, memory_order_relaxed)) return sy;
  return kiln_symbols_open_new();
}

void kiln_symbols_close(kiln_symbols_t *sy) {
  if (sy != NULL && sy == kiln_symbols_held) return;
  kiln_symbols_close_now(sy);
}

/* ------------------------------------------------------------ ELF files */

static void *kiln_symbols_map_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  void *p = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= (off_t)sizeof(Elf64_Ehdr)) {
    p = kiln_mem_map_file(fd, (size_t)st.st_size);
    *len = (size_t)st.st_size;
  }
  close(fd);
  return p;
}

/* The section headers of an ELF image of len bytes, or NULL. */
static const Elf64_Shdr *kiln_symbols_sections(const char *img, size_t len, size_t *n) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
  if (img == NULL || len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr))
    return NULL;
  if (eh->e_shoff == 0 || eh->e_shoff > len || eh->e_shnum > (len - eh->e_shoff) / sizeof(Elf64_Shdr))
    return NULL;
  *n = eh->e_shnum;
  return (const Elf64_Shdr *)(img + eh->e_shoff);
}

/* The contents of the section called name (with file bytes), or NULL. */
static const char *kiln_symbols_section(const char *img, size_t len, const char *name, size_t *size) {
  size_t nsh = 0;
  const Elf64_Shdr *sh = kiln_symbols_sections(img, len, &nsh);
  if (sh == NULL) return NULL;
  unsigned shstr = ((const Elf64_Ehdr *)img)->e_shstrndx;
  if (shstr >= nsh || sh[shstr].sh_offset > len || sh[shstr].sh_size > len - sh[shstr].sh_offset) return NULL;
  const char *names = img + sh[shstr].sh_offset;
  size_t nlen = strlen(name);
  for (size_t i = 0; i < nsh; i++) {
    if (sh[i].sh_type == SHT_NOBITS || sh[i].sh_name >= sh[shstr].sh_size ||
        sh[shstr].sh_size - sh[i].sh_name <= nlen || memcmp(names + sh[i].sh_name, name, nlen + 1) != 0)
      continue;
    if (sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset) return NULL;
    *size = sh[i].sh_size;
    return img + sh[i].sh_offset;
  }
  return NULL;
}

/* The GNU build-id note's bytes (*n of them), or NULL. */
static const unsigned char *kiln_symbols_build_id(const char *img, size_t len, size_t *n) {
  size_t nsh = 0;
  const Elf64_Shdr *sh = kiln_symbols_sections(img, len, &nsh);
  if (sh == NULL) return NULL;
  for (size_t i = 0; i < nsh; i++) {
    if (sh[i].sh_type != SHT_NOTE || sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset)
      continue;
    const char *p = img + sh[i].sh_offset, *end = p + sh[i].sh_size;
    while (end - p >= (ptrdiff_t)sizeof(Elf64_Nhdr)) {
      const Elf64_Nhdr *nh = (const Elf64_Nhdr *)p;
      size_t nsz = (nh->n_namesz + 3) & ~3u, dsz = (nh->n_descsz + 3) & ~3u;
      const char *name = p + sizeof *nh, *desc = name + nsz;
      if (nsz > (size_t)(end - name) || dsz > (size_t)(end - desc)) break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0 &&
          nh->n_descsz >= 2 && nh->n_descsz <= 64) {
        *n = nh->n_descsz;
        return (const unsigned char *)desc;
      }
      p = desc + dsz;
    }
  }
  return NULL;
}

/* Among aliases, the name people call: fewest leading underscores
 * (getpid over __getpid), then global or weak over local. */
static int kiln_symbols_rank(const char *name, unsigned bind) {
  int r = bind == STB_LOCAL ? 1 : 0;
  while (*name++ == '_' && r < 64) r += 2;
  return r;
}

static kiln_sym_t *kiln_symbols_tab_room(kiln_symtab_t *t, size_t more) {
  size_t need = (t->n + more) * sizeof(kiln_sym_t);
  if (need > t->bytes) {
    size_t bytes = need + need / 2 + 4096;
    kiln_sym_t *grown = kiln_mem_map(bytes);
    if (grown == NULL) return NULL;
    if (t->syms) memcpy(grown, t->syms, t->n * sizeof(kiln_sym_t));
    kiln_mem_unmap(t->syms, t->bytes);
    t->syms = grown;
    t->bytes = bytes;
  }
  return t->syms + t->n;
}

/* Adds the functions of the symbol tables of the given type to t. */
static size_t kiln_symbols_read(kiln_symtab_t *t, const char *img, size_t len, unsigned type) {
  size_t nsh = 0;
  const Elf64_Shdr *sh = kiln_symbols_sections(img, len, &nsh);
  if (sh == NULL) return 0;
  size_t added = 0;
  for (size_t i = 0; i < nsh; i++) {
    if (sh[i].sh_type != type || sh[i].sh_entsize != sizeof(Elf64_Sym)) continue;
    if (sh[i].sh_link >= nsh) continue;
    const Elf64_Shdr *strs = &sh[sh[i].sh_link];
    if (sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset) continue;
    if (strs->sh_offset > len || strs->sh_size > len - strs->sh_offset || strs->sh_size == 0) continue;
    const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[i].sh_offset);
    const char *str = img + strs->sh_offset;
    size_t count = sh[i].sh_size / sizeof(Elf64_Sym);
    if (kiln_symbols_tab_room(t, count) == NULL) return added;
    for (size_t k = 0; k < count; k++) {
      if ((k & 4095) == 4095) kiln_symbols_maybe_tick();
      unsigned st = ELF64_ST_TYPE(sym[k].st_info);
      if ((st != STT_FUNC && st != STT_GNU_IFUNC) || sym[k].st_shndx == SHN_UNDEF ||
          sym[k].st_value == 0 || sym[k].st_name >= strs->sh_size)
        continue;
      const char *name = str + sym[k].st_name;
      if (memchr(name, '\0', strs->sh_size - sym[k].st_name) == NULL || *name == '\0') continue;
      kiln_sym_t *s = &t->syms[t->n++];
      s->addr = sym[k].st_value;
      s->size = sym[k].st_size;
      s->name = name;
      s->rank = kiln_symbols_rank(name, ELF64_ST_BIND(sym[k].st_info));
      added++;
    }
  }
  return added;
}

/* A debug file is taken only when its build-id is the module's (when both
 * have one): a stale file in /usr/lib/debug would name the wrong code. */
static bool kiln_symbols_same_build(const char *img, size_t len, const char *dbg, size_t dlen) {
  size_t n1 = 0, n2 = 0;
  const unsigned char *a = kiln_symbols_build_id(img, len, &n1), *b = kiln_symbols_build_id(dbg, dlen, &n2);
  return a == NULL || b == NULL || (n1 == n2 && memcmp(a, b, n1) == 0);
}

/* The separate debug file: by build-id, else by .gnu_debuglink (next to
 * the file, in its .debug directory, under /usr/lib/debug). */
static void *kiln_symbols_debug_file(const char *path, const char *img, size_t len, size_t *dlen) {
  char dpath[4096];
  size_t n = 0;
  const unsigned char *id = kiln_symbols_build_id(img, len, &n);
  if (id != NULL) {
    int k = kiln_fmt(dpath, sizeof dpath, "/usr/lib/debug/.build-id/%02x/", id[0]);
    for (size_t j = 1; j < n; j++) k += kiln_fmt(dpath + k, sizeof dpath - (size_t)k, "%02x", id[j]);
    kiln_fmt(dpath + k, sizeof dpath - (size_t)k, ".debug");
    void *d = kiln_symbols_map_file(dpath, dlen);
    if (d != NULL) return d;
  }
  size_t lsize = 0;
  const char *link = kiln_symbols_section(img, len, ".gnu_debuglink", &lsize);
  if (link == NULL || path == NULL || path[0] != '/' || memchr(link, '\0', lsize) == NULL || link[0] == '\0' ||
      strchr(link, '/') != NULL)
    return NULL;
  const char *slash = strrchr(path, '/');
  int dir = (int)(slash - path);
  static const char *const forms[] = {"%.*s/%s", "%.*s/.debug/%s", "/usr/lib/debug%.*s/%s"};
  for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
    if (kiln_fmt(dpath, sizeof dpath, forms[i], dir, path, link) >= (int)sizeof dpath) continue;
    if (strcmp(dpath, path) == 0) continue; /* the file itself, not its debug file */
    void *d = kiln_symbols_map_file(dpath, dlen);
    if (d == NULL) continue;
    if (kiln_symbols_same_build(img, len, d, *dlen)) return d;
    munmap(d, *dlen);
  }
  return NULL;
}

/* MiniDebugInfo: .gnu_debugdata is an xz-compressed ELF whose .symtab has
 * the functions .dynsym lacks. liblzma is loaded only when a module has
 * one (most programs never need it). */
static bool kiln_symbols_minidebug(kiln_symfile_t *f, const char *img, size_t len) {
  size_t zlen = 0;
  const char *z = kiln_symbols_section(img, len, ".gnu_debugdata", &zlen);
  if (z == NULL || zlen == 0) return false;
  void *lz = dlopen("liblzma.so.5", RTLD_NOW | RTLD_LOCAL);
  if (lz == NULL) return false;
  lzma_ret (*decoder)(lzma_stream *, uint64_t, uint32_t);
  lzma_ret (*code)(lzma_stream *, lzma_action);
  void (*end)(lzma_stream *);
  *(void **)&decoder = dlsym(lz, "lzma_stream_decoder");
  *(void **)&code = dlsym(lz, "lzma_code");
  *(void **)&end = dlsym(lz, "lzma_end");
  bool ok = false;
  lzma_stream s = LZMA_STREAM_INIT;
  if (decoder != NULL && code != NULL && end != NULL && decoder(&s, 256u << 20, 0) == LZMA_OK) {
    s.next_in = (const uint8_t *)z;
    s.avail_in = zlen;
    lzma_ret r = LZMA_OK;
    while (r == LZMA_OK && f->mini.len < (256u << 20)) {
      size_t room = zlen * 4 + 65536;
      uint8_t *out = kiln_buf_reserve(&f->mini, room);
      if (out == NULL) break;
      s.next_out = out;
      s.avail_out = room;
      r = code(&s, LZMA_FINISH);
      f->mini.len -= s.avail_out; /* give back what was not written */
    }
    ok = r == LZMA_STREAM_END;
    end(&s);
  }
  dlclose(lz);
  if (!ok) return false;
  return kiln_symbols_read(&f->tab, f->mini.data, f->mini.len, SHT_SYMTAB) > 0;
}

static int kiln_symbols_cmp(const void *a, const void *b) {
  const kiln_sym_t *x = a, *y = b;
  if (x->addr != y->addr) return x->addr < y->addr ? -1 : 1;
  if (x->rank != y->rank) return x->rank - y->rank;
  /* Equal aliases (erf, erff64): the shorter, then the first in order, so
   * the choice never depends on the table's order. */
  size_t nx = strlen(x->name), ny = strlen(y->name);
  if (nx != ny) return nx < ny ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* By address, stably: a radix sort, 11 bits a pass, as many passes as the
 * addresses have bits (3 for most modules). Every process that writes a
 * profile sorts the tables of the modules its stacks touch (libc's: 3,000
 * symbols), and the comparison sort was a third of what kiln cost a
 * forked child that worked a millisecond. false: no memory for it. */
static bool kiln_symbols_radix(kiln_symtab_t *t) {
  enum { BITS = 11, BUCKETS = 1 << BITS };
  size_t n = t->n, bytes = n * sizeof(kiln_sym_t);
  kiln_sym_t *tmp = kiln_mem_map(bytes), *src = t->syms, *dst = tmp;
  if (tmp == NULL) return false;
  uint64_t any = 0;
  for (size_t i = 0; i < n; i++) any |= src[i].addr;
  size_t count[BUCKETS];
  for (unsigned shift = 0; shift < 64 && (any >> shift) != 0; shift += BITS) {
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++) count[(src[i].addr >> shift) & (BUCKETS - 1)]++;
    size_t at = 0;
    for (size_t b = 0; b < BUCKETS; b++) {
      size_t c = count[b];
      count[b] = at;
      at += c;
    }
    for (size_t i = 0; i < n; i++) dst[count[(src[i].addr >> shift) & (BUCKETS - 1)]++] = src[i];
    kiln_sym_t *swap = src;
    src = dst;
    dst = swap;
  }
  if (src != t->syms) memcpy(t->syms, src, bytes);
  kiln_mem_unmap(tmp, bytes);
  return true;
}

/* Sorted, one name per address: the best-ranked alias (kiln_symbols_cmp's
 * first among the symbols at that address). */
static void kiln_symbols_tab_sort(kiln_symtab_t *t) {
  if (t->n < 2) return;
  if (!kiln_symbols_radix(t)) kiln_sort(t->syms, t->n, sizeof(kiln_sym_t), kiln_symbols_cmp);
  size_t out = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (out > 0 && t->syms[out - 1].addr == t->syms[i].addr) {
      if (kiln_symbols_cmp(&t->syms[i], &t->syms[out - 1]) < 0) t->syms[out - 1] = t->syms[i];
      continue;
    }
    t->syms[out++] = t->syms[i];
  }
  t->n = out;
}

static void kiln_symbols_load(kiln_symbols_t *sy, kiln_symfile_t *f) {
  const kiln_module_t *m = f->module;
  const char *img = NULL;
  size_t len = 0;
  if (m->mem_ehdr != NULL) {
    /* The vDSO: its PT_LOAD ends before its section headers, which the
     * kernel maps too, to the end of the last page. */
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    img = m->mem_ehdr;
    len = ((m->hi + page - 1) & ~(page - 1)) - (uintptr_t)m->mem_ehdr;
  } else if (m->path[0] != '\0') {
    img = f->maps[0] = kiln_symbols_map_file(m->path, &f->map_len[0]);
    len = f->map_len[0];
  }
  if (img == NULL) return;
  kiln_ehframe_open(&f->eh, img, len);
  if (kiln_symbols_read(&f->tab, img, len, SHT_SYMTAB) == 0) {
    f->maps[1] = kiln_symbols_debug_file(m->mem_ehdr ? NULL : m->path, img, len, &f->map_len[1]);
    if (f->maps[1] == NULL || kiln_symbols_read(&f->tab, f->maps[1], f->map_len[1], SHT_SYMTAB) == 0) {
      kiln_symbols_read(&f->tab, img, len, SHT_DYNSYM);
      if (!sy->crash) kiln_symbols_minidebug(f, img, len); /* dlopen, malloc: not in a crash */
    }
  }
  kiln_symbols_tab_sort(&f->tab);
}

static kiln_symfile_t *kiln_symbols_file(kiln_symbols_t *sy, const kiln_module_t *m) {
  if (sy->last != 0 && sy->files[sy->last - 1].module == m) return &sy->files[sy->last - 1];
  for (size_t i = 0; i < sy->nfiles; i++)
    if (sy->files[i].module == m) {
      sy->last = i + 1;
      return &sy->files[i];
    }
  if (sy->nfiles == sy->cap) {
    size_t cap = sy->cap ? sy->cap * 2 : 64;
    kiln_symfile_t *grown = kiln_mem_map(cap * sizeof *grown);
    if (grown == NULL) return NULL;
    if (sy->files) memcpy(grown, sy->files, sy->nfiles * sizeof *grown);
    kiln_mem_unmap(sy->files, sy->cap * sizeof *sy->files);
    sy->files = grown;
    sy->cap = cap;
  }
  kiln_symfile_t *f = &sy->files[sy->nfiles++];
  memset(f, 0, sizeof *f);
  f->module = m;
  kiln_symbols_load(sy, f);
  sy->last = sy->nfiles;
  return f;
}

/* The symbol at or below off (within its size when it has one). */
static const kiln_sym_t *kiln_symbols_find(const kiln_symtab_t *t, uint64_t off, bool sized) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) { /* first symbol above off */
    size_t mid = lo + (hi - lo) / 2;
    if (t->syms[mid].addr <= off) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return NULL;
  const kiln_sym_t *s = &t->syms[lo - 1];
  if (sized && s->size != 0 && off >= s->addr + s->size) return NULL;
  return s;
}

/* ------------------------------------------- perf map and kernel symbols */

/* Parses "START SIZE NAME" lines (hex, perf's map format) into t. */
static void kiln_symbols_parse_map(kiln_symtab_t *t, kiln_buf_t *text) {
  char *p = text->data, *end = p + text->len;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) nl = end;
    *nl = '\0';
    char *q;
    unsigned long long start = strtoull(p, &q, 16), size;
    if (q != p && *q == ' ') {
      char *r;
      size = strtoull(q + 1, &r, 16);
      if (r != q + 1 && *r == ' ' && r[1] != '\0' && start != 0 && kiln_symbols_tab_room(t, 1) != NULL) {
        kiln_sym_t *s = &t->syms[t->n++];
        s->addr = start;
        s->size = size;
        s->name = r + 1;
        s->rank = 0;
      }
    }
    p = nl + 1;
  }
  kiln_symbols_tab_sort(t);
}

static int kiln_symbols_slurp(const char *path, kiln_buf_t *out, bool own) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return -errno;
  struct stat st;
  /* A perf map in /tmp is taken only from the program's own user, as perf
   * does: anyone can plant /tmp/perf-PID.map. */
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (own && st.st_uid != geteuid())) {
    close(fd);
    return -EPERM;
  }
  for (;;) {
    char *room = kiln_buf_reserve(out, 65536);
    if (room == NULL) break;
    ssize_t n = read(fd, room, 65536);
    out->len -= 65536 - (size_t)(n > 0 ? n : 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || out->len > (256u << 20)) break;
  }
  close(fd);
  kiln_buf_put(out, "", 1);
  return out->failed ? -ENOMEM : 0;
}

static const kiln_sym_t *kiln_symbols_jit(kiln_symbols_t *sy, uint64_t addr) {
  if (!sy->jit_loaded) {
    sy->jit_loaded = true;
    char path[64];
    kiln_fmt(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
    if (kiln_symbols_slurp(path, &sy->jit_text, true) == 0) kiln_symbols_parse_map(&sy->jit, &sy->jit_text);
  }
  const kiln_sym_t *s = kiln_symbols_find(&sy->jit, addr, true);
  return s != NULL && addr - s->addr < s->size ? s : NULL;
}

/* The kernel's symbols, read once for the process (every dump named them
 * again: 200,000 lines, tens of milliseconds each time, twice a set with
 * pprof on) and kept: the table does not change while the system runs.
 * state: 0 not read, 1 being read (by one thread; others name no kernel
 * frame meanwhile, which also holds in a fork child that inherited a read
 * in progress), 2 read. */
static struct {
  _Atomic int state;
  kiln_symtab_t tab;
  kiln_buf_t text;
} kiln_symbols_kern;

/* Called every few milliseconds while a dump names its stacks: the
 * sampler's rings keep filling meanwhile, and a dump that takes longer
 * than they hold (about 30 ms at 999 Hz) lost the samples of that time
 * when the collector thread was the one dumping. */
/* Per thread: the dumping thread's own drains (another thread naming
 * stacks at the same time, kiln_check's, has none). */
static __thread void (*kiln_symbols_tick)(void) __attribute__((tls_model("initial-exec")));
static __thread struct timespec kiln_symbols_tick_last __attribute__((tls_model("initial-exec")));

void kiln_symbols_set_tick(void (*fn)(void)) { kiln_symbols_tick = fn; }

void kiln_symbols_maybe_tick(void) {
  if (kiln_symbols_tick == NULL) return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  long ms = (long)(now.tv_sec - kiln_symbols_tick_last.tv_sec) * 1000 +
            (now.tv_nsec - kiln_symbols_tick_last.tv_nsec) / 1000000;
  if (ms < 4) return;
  kiln_symbols_tick_last = now;
  kiln_symbols_tick();
}

/* /proc/kallsyms: "ADDR TYPE NAME [module]"; text symbols only. All
 * addresses read as 0 when kptr_restrict hides them: then none. */
static void kiln_symbols_load_kernel(void) {
  kiln_symtab_t *t = &kiln_symbols_kern.tab;
  if (kiln_symbols_slurp("/proc/kallsyms", &kiln_symbols_kern.text, false) < 0) return;
  char *p = kiln_symbols_kern.text.data, *end = p + kiln_symbols_kern.text.len - 1;
  unsigned lines = 0;
  while (p < end) {
    /* The sampler's rings fill while this runs (kiln_symbols_set_tick). */
    if ((++lines & 4095) == 0) kiln_symbols_maybe_tick();
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) nl = end;
    *nl = '\0';
    char *q;
    unsigned long long a = strtoull(p, &q, 16);
    if (a != 0 && q[0] == ' ' && strchr("tTwW", q[1]) != NULL && q[1] != '\0' && q[2] == ' ') {
      char *name = q + 3, *tab = strchr(name, '\t');
      if (tab != NULL) *tab = '\0'; /* "\t[module]" */
      if (*name != '\0' && kiln_symbols_tab_room(t, 1) != NULL) {
        kiln_sym_t *s = &t->syms[t->n++];
        s->addr = a;
        s->size = 0;
        s->name = name;
        s->rank = kiln_symbols_rank(name, q[1] == 't' ? STB_LOCAL : STB_GLOBAL);
      }
    }
    p = nl + 1;
  }
  kiln_symbols_tab_sort(t);
}

int kiln_symbols_kernel(kiln_symbols_t *sy, uint64_t addr, kiln_buf_t *out) {
  (void)sy;
  int state = atomic_load_explicit(&kiln_symbols_kern.state, memory_order_acquire);
  if (state == 0) {
    int expect = 0;
    if (atomic_compare_exchange_strong(&kiln_symbols_kern.state, &expect, 1)) {
      kiln_symbols_load_kernel();
      atomic_store_explicit(&kiln_symbols_kern.state, 2, memory_order_release);
    }
    state = atomic_load_explicit(&kiln_symbols_kern.state, memory_order_acquire);
  }
  if (state != 2) return -ENOENT;
  const kiln_symtab_t *t = &kiln_symbols_kern.tab;
  /* No size in kallsyms: a symbol ends where the next begins, and the last
   * one ends the table. */
  const kiln_sym_t *s = kiln_symbols_find(t, addr, false);
  if (s == NULL || s == &t->syms[t->n - 1]) return -ENOENT;
  kiln_buf_puts(out, s->name);
  kiln_buf_puts(out, "_[k]");
  return 0;
}

/* -------------------------------------------------------------- lookup */

/* Whether dumps name kernel frames (see kiln_symbols_kernel_names). */
static _Atomic bool kiln_symbols_kernel_on = true;

void kiln_symbols_kernel_names(bool on) { atomic_store_explicit(&kiln_symbols_kernel_on, on, memory_order_relaxed); }

void kiln_symbols_lookup(kiln_symbols_t *sy, uint64_t pc, kiln_symbol_t *out) {
  memset(out, 0, sizeof *out);
  if (pc < KILN_PC_MARKERS || kiln_pc_is_wait(pc)) { /* a frame of kiln's making */
    out->source = KILN_SYM_MARKER;
    out->offset = pc;
    return;
  }
  uintptr_t addr = (uintptr_t)pc - 1;
  out->offset = addr;
  const kiln_module_t *m = kiln_modules_find(addr);
  if (m == NULL) {
    if (addr >= KILN_KERNEL_START) {
      out->source = KILN_SYM_KERNEL;
      return;
    }
    const kiln_sym_t *j = kiln_symbols_jit(sy, addr);
    if (j != NULL) {
      out->source = KILN_SYM_JIT;
      out->start = j->addr;
      out->raw = j->name;
    }
    return;
  }
  out->module = m;
  out->offset = addr - m->base;
  out->source = KILN_SYM_OFFSET;
  kiln_symfile_t *f = kiln_symbols_file(sy, m);
  if (f == NULL) return;
  const kiln_sym_t *s = kiln_symbols_find(&f->tab, out->offset, true);
  uint64_t start, end;
  /* A sized symbol covering the address is trusted; an unsized one (some
   * .dynsym entries) or none gives way to the function bounds of the
   * unwind tables, which see the static functions a stripped file hides. */
  bool sized = s != NULL && s->size != 0;
  if (!sized && kiln_ehframe_find(&f->eh, out->offset, &start, &end) && (s == NULL || start > s->addr)) {
    out->source = KILN_SYM_UNWIND;
    out->start = start;
    return;
  }
  if (s != NULL) {
    out->source = KILN_SYM_ELF;
    out->start = s->addr;
    out->raw = s->name;
  }
}

/* Appends name with the characters that would break a folded line (';'
 * separates frames, a newline ends the line) replaced. */
static void kiln_symbols_put_clean(kiln_buf_t *out, const char *name, bool strip_version) {
  size_t start = out->len;
  /* "memcpy@@GLIBC_2.14": the version is not part of the function's name. */
  const char *at = !strip_version || name[0] == '@' ? NULL : strchr(name, '@');
  kiln_buf_put(out, name, at ? (size_t)(at - name) : strlen(name));
  if (out->failed) return;
  for (size_t i = start; i < out->len; i++) {
    char c = out->data[i];
    if (c == ';') out->data[i] = ':';
    else if (c == '\n' || c == '\r' || c == '\t') out->data[i] = ' ';
  }
}

void kiln_symbols_raw(const kiln_symbol_t *s, kiln_buf_t *out) {
  if (s->raw != NULL) kiln_symbols_put_clean(out, s->raw, s->source == KILN_SYM_ELF);
}

void kiln_symbols_format(kiln_symbols_t *sy, const kiln_symbol_t *s, kiln_buf_t *out) {
  switch (s->source) {
  case KILN_SYM_NONE:
    kiln_buf_puts(out, "[unknown]");
    return;
  case KILN_SYM_MARKER:
    if (kiln_pc_is_wait(s->offset)) { /* wall mode: what the thread waits on */
      const char *what = s->offset == KILN_PC_WAIT_CPU      ? "cpu"
                         : s->offset == KILN_PC_WAIT_KERNEL  ? "kernel"
                         : s->offset == KILN_PC_WAIT_UNKNOWN ? "unknown"
                                                             : kiln_syscalls_name((long)(s->offset - KILN_PC_WAIT));
      if (what != NULL) kiln_buf_printf(out, "[wait: %s]", what);
      else kiln_buf_printf(out, "[wait: syscall %llu]", (unsigned long long)(s->offset - KILN_PC_WAIT));
      return;
    }
    kiln_buf_puts(out, s->offset == KILN_PC_KERNEL        ? "[kernel]"
                       : s->offset == KILN_PC_KILN_ALLOC ? "[kiln: allocation tracking]"
                       : s->offset == KILN_PC_LOCK_MUTEX  ? KILN_MARK_LOCK_MUTEX
                       : s->offset == KILN_PC_LOCK_RDLOCK ? KILN_MARK_LOCK_RDLOCK
                       : s->offset == KILN_PC_LOCK_WRLOCK ? KILN_MARK_LOCK_WRLOCK
                       : s->offset == KILN_PC_LOCK_COND   ? KILN_MARK_LOCK_COND
                       : s->offset == KILN_PC_LOCK_SEM    ? KILN_MARK_LOCK_SEM
                                                         : "[kiln]");
    return;
  case KILN_SYM_KERNEL:
    /* Left out (nothing written) when kernel names are not read: the
     * "[kernel]" frame above it still marks the time. */
    if (!atomic_load_explicit(&kiln_symbols_kernel_on, memory_order_relaxed)) return;
    if (kiln_symbols_kernel(sy, s->offset, out) < 0) kiln_buf_puts(out, "[kernel.kallsyms]_[k]");
    return;
  case KILN_SYM_JIT:
    kiln_symbols_put_clean(out, s->raw, false);
    return;
  case KILN_SYM_OFFSET:
  case KILN_SYM_UNWIND:
    kiln_buf_printf(out, "%s+0x%llx", s->module->name,
                    (unsigned long long)(s->source == KILN_SYM_UNWIND ? s->start : s->offset));
    return;
  case KILN_SYM_ELF:
    break;
  }
  if (sy->demangle != NULL && s->raw[0] == '_' && s->raw[1] == 'Z') {
    int status = -1;
    char *d = sy->demangle(s->raw, NULL, NULL, &status);
    if (d != NULL && status == 0) {
      kiln_symbols_put_clean(out, d, false);
      free(d);
      return;
    }
    free(d);
  }
  kiln_symbols_put_clean(out, s->raw, true);
}

void kiln_symbols_name(kiln_symbols_t *sy, uint64_t pc, kiln_buf_t *out) {
  if (sy == NULL) {
    kiln_buf_puts(out, "[unknown]");
    return;
  }
  kiln_symbol_t s;
  kiln_symbols_lookup(sy, pc, &s);
  kiln_symbols_format(sy, &s, out);
}
