/* kiln_symbols.c — names for pcs, in process, at dump time: each module's
 * ELF file is mapped read-only, its .symtab (else .dynsym; else the
 * build-id debug file's .symtab) read into a sorted array of functions, and
 * pcs are looked up at pc-1 by binary search. C++ names are demangled with
 * the program's own __cxa_demangle when it has one. Every offset read from
 * a file is bounds-checked: a truncated or hostile ELF must not crash the
 * program. Normal context only, between kiln_symbols_begin and _end. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct kiln_sym {
  uint64_t addr, size;
  const char *name;
  int rank; /* lower wins among aliases at one address */
} kiln_sym_t;

typedef struct kiln_symfile {
  const kiln_module_t *module;
  kiln_sym_t *syms;
  size_t nsyms, syms_bytes;
  bool sorted;      /* sorted by kiln_symbols_cmp, one symbol an address */
  unsigned lookups; /* while unsorted: a scan each; sorted past a few */
  void *maps[2]; /* the module file and its debug file */
  size_t map_len[2];
} kiln_symfile_t;

enum { KILN_SYMFILES_MAX = 8192 };
static kiln_symfile_t *kiln_symfiles;
static size_t kiln_nsymfiles;
static kiln_symfile_t *kiln_symfile_last; /* lookup cache: valid until _end */
static char *(*kiln_demangle)(const char *, char *, size_t *, int *);
static bool kiln_symbols_no_demangle;

void kiln_symbols_demangle(bool on) { kiln_symbols_no_demangle = !on; }

void kiln_symbols_begin(void) {
  kiln_symfiles = kiln_mem_map(sizeof(kiln_symfile_t) * KILN_SYMFILES_MAX);
  kiln_nsymfiles = 0;
  kiln_symfile_last = NULL;
  /* dlsym takes the loader's lock: not when demangling is off (emergencies). */
  kiln_demangle = NULL;
  if (!kiln_symbols_no_demangle) *(void **)&kiln_demangle = dlsym(RTLD_DEFAULT, "__cxa_demangle");
}

void kiln_symbols_end(void) {
  if (kiln_symfiles == NULL) return;
  for (size_t i = 0; i < kiln_nsymfiles; i++) {
    kiln_symfile_t *f = &kiln_symfiles[i];
    kiln_mem_unmap(f->syms, f->syms_bytes);
    for (int k = 0; k < 2; k++)
      if (f->maps[k] != NULL) munmap(f->maps[k], f->map_len[k]);
  }
  kiln_mem_unmap(kiln_symfiles, sizeof(kiln_symfile_t) * KILN_SYMFILES_MAX);
  kiln_symfiles = NULL;
  kiln_symfile_last = NULL;
}

static void *kiln_symbols_map_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  void *p = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= (off_t)sizeof(Elf64_Ehdr)) {
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) p = NULL;
    *len = (size_t)st.st_size;
  }
  close(fd);
  return p;
}

/* The section headers of an ELF image of len bytes, or NULL. */
static const Elf64_Shdr *kiln_symbols_sections(const char *img, size_t len, size_t *n) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
  if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr))
    return NULL;
  if (eh->e_shoff == 0 || eh->e_shoff > len || eh->e_shnum > (len - eh->e_shoff) / sizeof(Elf64_Shdr))
    return NULL;
  *n = eh->e_shnum;
  return (const Elf64_Shdr *)(img + eh->e_shoff);
}

/* Among aliases, the name people call: fewest leading underscores
 * (getpid over __getpid), then global or weak over local. */
static int kiln_symbols_rank(const char *name, unsigned bind) {
  int r = bind == STB_LOCAL ? 1 : 0;
  while (*name++ == '_' && r < 64) r += 2;
  return r;
}

/* Adds the functions of the symbol table of the given type to f. */
static size_t kiln_symbols_read(kiln_symfile_t *f, const char *img, size_t len, unsigned type) {
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
    size_t need = (f->nsyms + count) * sizeof(kiln_sym_t);
    if (need > f->syms_bytes) {
      size_t bytes = need + 4096;
      kiln_sym_t *grown = kiln_mem_map(bytes);
      if (grown == NULL) return added;
      if (f->syms) memcpy(grown, f->syms, f->nsyms * sizeof(kiln_sym_t));
      kiln_mem_unmap(f->syms, f->syms_bytes);
      f->syms = grown;
      f->syms_bytes = bytes;
    }
    for (size_t k = 0; k < count; k++) {
      unsigned t = ELF64_ST_TYPE(sym[k].st_info);
      if ((t != STT_FUNC && t != STT_GNU_IFUNC) || sym[k].st_shndx == SHN_UNDEF ||
          sym[k].st_value == 0 || sym[k].st_name >= strs->sh_size)
        continue;
      const char *name = str + sym[k].st_name;
      if (memchr(name, '\0', strs->sh_size - sym[k].st_name) == NULL || *name == '\0') continue;
      kiln_sym_t *s = &f->syms[f->nsyms++];
      s->addr = sym[k].st_value;
      s->size = sym[k].st_size;
      s->name = name;
      s->rank = kiln_symbols_rank(name, ELF64_ST_BIND(sym[k].st_info));
      added++;
    }
  }
  return added;
}

/* The debug file named by the image's GNU build-id note, if installed. */
static void *kiln_symbols_debug_file(const char *img, size_t len, size_t *dlen) {
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
        char path[256];
        int k = kiln_fmt(path, sizeof path, "/usr/lib/debug/.build-id/%02x/",
                         (unsigned char)desc[0]);
        for (unsigned j = 1; j < nh->n_descsz; j++)
          k += kiln_fmt(path + k, sizeof path - (size_t)k, "%02x", (unsigned char)desc[j]);
        kiln_fmt(path + k, sizeof path - (size_t)k, ".debug");
        return kiln_symbols_map_file(path, dlen);
      }
      p = desc + dsz;
    }
  }
  return NULL;
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

static void kiln_symbols_load(kiln_symfile_t *f) {
  const kiln_module_t *m = f->module;
  const char *img = NULL;
  size_t len = 0;
  if (m->mem_ehdr != NULL) {
    img = m->mem_ehdr;
    len = m->hi - (uintptr_t)m->mem_ehdr;
  } else if (m->path[0] != '\0') {
    img = f->maps[0] = kiln_symbols_map_file(m->path, &f->map_len[0]);
    len = f->map_len[0];
  }
  if (img == NULL) return;
  if (kiln_symbols_read(f, img, len, SHT_SYMTAB) == 0) {
    f->maps[1] = kiln_symbols_debug_file(img, len, &f->map_len[1]);
    if (f->maps[1] == NULL || kiln_symbols_read(f, f->maps[1], f->map_len[1], SHT_SYMTAB) == 0)
      kiln_symbols_read(f, img, len, SHT_DYNSYM);
  }
}

/* Sorting a module's table (libc's has thousands of symbols, tens of
 * thousands with its debug file) costs more than a few linear scans: a
 * short-lived process names a handful of pcs per module. Sorted on the
 * KILN_SYMBOLS_SCANS+1st lookup. */
enum { KILN_SYMBOLS_SCANS = 16 };

static void kiln_symbols_sort(kiln_symfile_t *f) {
  kiln_sort(f->syms, f->nsyms, sizeof(kiln_sym_t), kiln_symbols_cmp);
  /* One name per address: the best-ranked alias, now first of its run. */
  size_t out = 0;
  for (size_t i = 0; i < f->nsyms; i++)
    if (out == 0 || f->syms[out - 1].addr != f->syms[i].addr) f->syms[out++] = f->syms[i];
  f->nsyms = out;
  f->sorted = true;
}

static kiln_symfile_t *kiln_symbols_file(const kiln_module_t *m) {
  if (kiln_symfiles == NULL) return NULL; /* outside begin/end */
  if (kiln_symfile_last != NULL && kiln_symfile_last->module == m) return kiln_symfile_last;
  for (size_t i = 0; i < kiln_nsymfiles; i++)
    if (kiln_symfiles[i].module == m) return kiln_symfile_last = &kiln_symfiles[i];
  if (kiln_nsymfiles == KILN_SYMFILES_MAX) return NULL;
  kiln_symfile_t *f = &kiln_symfiles[kiln_nsymfiles++];
  memset(f, 0, sizeof *f);
  f->module = m;
  kiln_symbols_load(f);
  return kiln_symfile_last = f;
}

static const kiln_sym_t *kiln_symbols_lookup(kiln_symfile_t *f, uint64_t off) {
  if (!f->sorted && ++f->lookups > KILN_SYMBOLS_SCANS) kiln_symbols_sort(f);
  if (!f->sorted) {
    /* What the sorted table would give: the highest address <= off, the
     * first of its aliases in kiln_symbols_cmp's order. */
    const kiln_sym_t *best = NULL;
    for (size_t i = 0; i < f->nsyms; i++) {
      const kiln_sym_t *c = &f->syms[i];
      if (c->addr > off) continue;
      if (best == NULL || c->addr > best->addr || (c->addr == best->addr && kiln_symbols_cmp(c, best) < 0))
        best = c;
    }
    if (best == NULL || (best->size != 0 && off >= best->addr + best->size)) return NULL;
    return best;
  }
  size_t lo = 0, hi = f->nsyms;
  while (lo < hi) { /* first symbol above off */
    size_t mid = (lo + hi) / 2;
    if (f->syms[mid].addr <= off) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return NULL;
  const kiln_sym_t *s = &f->syms[lo - 1];
  if (s->size != 0 && off >= s->addr + s->size) return NULL;
  return s;
}

/* Appends name with the characters that would break a folded line (';'
 * separates frames, a newline ends the line) replaced. */
static void kiln_symbols_put_clean(kiln_buf_t *out, const char *name) {
  size_t start = out->len;
  /* "memcpy@@GLIBC_2.14": the version is not part of the function's name. */
  const char *at = name[0] == '@' ? NULL : strchr(name, '@');
  kiln_buf_put(out, name, at ? (size_t)(at - name) : strlen(name));
  if (out->failed) return;
  for (size_t i = start; i < out->len; i++) {
    char c = out->data[i];
    if (c == ';') out->data[i] = ':';
    else if (c == '\n' || c == '\r' || c == '\t') out->data[i] = ' ';
  }
}

void kiln_symbols_name(uint64_t pc, kiln_buf_t *out) {
  uintptr_t addr = (uintptr_t)pc - 1;
  const kiln_module_t *m = kiln_modules_find(addr);
  if (m == NULL) {
    kiln_buf_puts(out, "[unknown]");
    return;
  }
  kiln_symfile_t *f = kiln_symbols_file(m);
  const kiln_sym_t *s = f ? kiln_symbols_lookup(f, addr - m->base) : NULL;
  if (s == NULL) {
    kiln_buf_printf(out, "%s+0x%llx", m->name, (unsigned long long)(addr - m->base));
    return;
  }
  if (kiln_demangle != NULL && !kiln_symbols_no_demangle && s->name[0] == '_' && s->name[1] == 'Z') {
    int status = -1;
    char *d = kiln_demangle(s->name, NULL, NULL, &status);
    if (d != NULL && status == 0) {
      kiln_symbols_put_clean(out, d);
      free(d);
      return;
    }
    free(d);
  }
  kiln_symbols_put_clean(out, s->name);
}
