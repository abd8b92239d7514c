/* kiln_freeres.c — what glibc frees at exit in __libc_freeres (which
 * valgrind runs before its leak check), counted freed by kiln at exit so
 * that the leak files and categories are the program's, as valgrind's are:
 * the buffers glibc made for its streams, the threads' DTVs,
 * and the memory of glibc's own subsystems (locales, time zones, character
 * set converters, the loader's lists). Exit time, normal context, hook
 * guard held; memory from mmap. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* libio's flag: the stream's buffer is the program's (setvbuf, setbuf),
 * never freed by glibc (glibc's <libio.h> value). */
#define KILN_FREERES_IO_USER_BUF 0x0001

/* The buffer glibc made for stdin, stdout or stderr (_IO_file_doallocate),
 * NULL when the stream has none or the program gave it its own. */
static void *kiln_freeres_std_buffer(int i) {
  FILE *std[] = {stdin, stdout, stderr};
  if (std[i] == NULL || (std[i]->_flags & KILN_FREERES_IO_USER_BUF)) return NULL;
  return std[i]->_IO_buf_base;
}

/* Every stream the program has open (libio's list), bounded. */
static void kiln_freeres_streams(FILE **out, size_t max, size_t *n) {
  FILE **list = dlsym(RTLD_DEFAULT, "_IO_list_all");
  *n = 0;
  for (FILE *fp = list != NULL ? *list : NULL; fp != NULL && *n < max; fp = fp->_chain) out[(*n)++] = fp;
}

/* The buffer glibc made for a stream (not one the program gave it). */
static void *kiln_freeres_stream_buffer(FILE *fp) {
  if ((fp->_flags & KILN_FREERES_IO_USER_BUF) || fp->_IO_buf_base == NULL || fp->_IO_buf_base == fp->_shortbuf)
    return NULL;
  return fp->_IO_buf_base;
}

size_t kiln_freeres_hidden_words(uintptr_t *lo, uintptr_t *hi, size_t max) {
  enum { KILN_FREERES_STREAMS = 4096 };
  static FILE *streams[KILN_FREERES_STREAMS];
  size_t n, out = 0;
  kiln_freeres_streams(streams, KILN_FREERES_STREAMS, &n);
  for (size_t i = 0; i < n && out < max; i++) {
    FILE *fp = streams[i];
    if (!(fp->_flags & KILN_FREERES_IO_USER_BUF) || fp->_IO_buf_base == NULL || fp->_IO_buf_base == fp->_shortbuf)
      continue;
    lo[out] = (uintptr_t)&fp->_IO_read_ptr;
    hi[out] = (uintptr_t)(&fp->_IO_save_end + 1);
    out++;
  }
  return out;
}

bool kiln_freeres_is_std_buffer(uint64_t addr) {
  for (int i = 0; i < 3; i++)
    if (addr != 0 && (uint64_t)(uintptr_t)kiln_freeres_std_buffer(i) == addr) return true;
  return false;
}

/* Functions of libc and the loader whose allocations __libc_freeres frees
 * (glibc's free_mem hooks: setlocale.c, loadlocale.c, alias.c, tzset.c,
 * tzfile.c, gconv_db.c, gconv_conf.c, gconv_cache.c, wcsmbsload.c,
 * dl-find_object.c, dl-libc.c): a block whose innermost frames in glibc
 * include one of them is glibc's, freed at exit. "*" ends a prefix. */
static const char *const kiln_freeres_fns[] = {
    "_nl_*",          "setlocale",       "new_composite_name", "read_alias_file", "tzset_internal",
    "__tzfile_read",  "__tzstring*",     "__gconv*",           "__wcsmbs_load_conv",
    "_dl_find_object_update",            "_dl_map_object_deps", "allocate_dtv",       "_dl_resize_dtv",
};

static bool kiln_freeres_named(const char *name, size_t n) {
  for (size_t i = 0; i < sizeof kiln_freeres_fns / sizeof kiln_freeres_fns[0]; i++) {
    const char *f = kiln_freeres_fns[i];
    size_t m = strlen(f);
    if (f[m - 1] == '*' ? n >= m - 1 && memcmp(name, f, m - 1) == 0 : n == m && memcmp(name, f, m) == 0)
      return true;
  }
  return false;
}

/* Where glibc is: its two modules, _dl_allocate_tls and libc's
 * pthread_create. Fixed once libc is loaded: computed once. */
static struct {
  pthread_once_t once;
  uintptr_t libc_lo, libc_hi, ld_lo, ld_hi;
  uintptr_t tls_lo, tls_hi;
  uintptr_t pc_lo, pc_hi;
} kiln_freeres_glibc = {PTHREAD_ONCE_INIT, 0, 0, 0, 0, 0, 0, 0, 0};

/* [lo, hi) of the function at fn, from its symbol's size. */
static bool kiln_freeres_fn_range(void *fn, uintptr_t *lo, uintptr_t *hi) {
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  if (fn == NULL || dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL) return false;
  *lo = (uintptr_t)fn;
  *hi = *lo + (sym->st_size ? sym->st_size : 1);
  return true;
}

static void kiln_freeres_glibc_init(void) {
  kiln_libc_resolve();
  kiln_modules_refresh();
  void *tls_fn = dlsym(RTLD_DEFAULT, "_dl_allocate_tls");
  kiln_freeres_fn_range(tls_fn, &kiln_freeres_glibc.tls_lo, &kiln_freeres_glibc.tls_hi);
  kiln_freeres_fn_range(*(void **)&kiln_libc.pthread_create, &kiln_freeres_glibc.pc_lo, &kiln_freeres_glibc.pc_hi);
  const kiln_module_t *ld = tls_fn != NULL ? kiln_modules_find((uintptr_t)tls_fn) : NULL;
  const kiln_module_t *libc = kiln_modules_find((uintptr_t) * (void **)&kiln_libc.sigaction);
  if (ld != NULL) {
    kiln_freeres_glibc.ld_lo = ld->lo;
    kiln_freeres_glibc.ld_hi = ld->hi;
  }
  if (libc != NULL) {
    kiln_freeres_glibc.libc_lo = libc->lo;
    kiln_freeres_glibc.libc_hi = libc->hi;
  }
}

static bool kiln_freeres_in_glibc(uintptr_t pc) {
  return (pc >= kiln_freeres_glibc.libc_lo && pc < kiln_freeres_glibc.libc_hi) ||
         (pc >= kiln_freeres_glibc.ld_lo && pc < kiln_freeres_glibc.ld_hi);
}

/* The frames from the allocation out, as long as they are in libc or the
 * loader, name a function that freeres cleans up after; or the stack runs
 * through _dl_allocate_tls (a DTV: where frame pointers cannot see the
 * loader's frames, pthread_create's stands in). */
bool kiln_freeres_glibc_stack(const kiln_stack_t *s, kiln_symbols_t *sy, kiln_buf_t *name) {
  pthread_once(&kiln_freeres_glibc.once, kiln_freeres_glibc_init);
  bool in_loader = s->depth > 0 && s->pcs[0] - 1 >= kiln_freeres_glibc.ld_lo && s->pcs[0] - 1 < kiln_freeres_glibc.ld_hi;
  for (uint32_t i = 0; i < s->depth; i++) {
    uintptr_t pc = s->pcs[i] - 1;
    if ((pc >= kiln_freeres_glibc.tls_lo && pc < kiln_freeres_glibc.tls_hi) ||
        (in_loader && pc >= kiln_freeres_glibc.pc_lo && pc < kiln_freeres_glibc.pc_hi))
      return true;
  }
  for (uint32_t i = 0; i < s->depth && kiln_freeres_in_glibc(s->pcs[i] - 1); i++) {
    name->len = 0;
    kiln_symbols_name(sy, s->pcs[i], name);
    if (name->data != NULL && kiln_freeres_named(name->data, name->len)) return true;
  }
  return false;
}

typedef struct kiln_freeres {
  kiln_buf_t ids; /* uint32_t stack ids, glibc's */
  kiln_symbols_t *sy;
  kiln_buf_t name;
  uint64_t *addrs; /* their live blocks */
  size_t naddrs, cap;
  uint32_t *sorted;
  size_t nids;
} kiln_freeres_t;

static void kiln_freeres_stack(kiln_stack_t *s, void *ctx) {
  kiln_freeres_t *f = ctx;
  if (!kiln_freeres_glibc_stack(s, f->sy, &f->name)) return;
  uint32_t id = kiln_stacktab_id(s);
  kiln_buf_put(&f->ids, (const char *)&id, sizeof id);
}

static int kiln_freeres_id_cmp(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void kiln_freeres_block(uint64_t addr, uint64_t size, uint32_t id, void *ctx) {
  (void)size;
  kiln_freeres_t *f = ctx;
  size_t lo = 0, hi = f->nids;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (f->sorted[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  if (lo == f->nids || f->sorted[lo] != id) return;
  if (f->naddrs == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 4096;
    uint64_t *grown = kiln_mem_map(cap * sizeof *grown);
    if (grown == NULL) return;
    if (f->addrs != NULL) {
      memcpy(grown, f->addrs, f->naddrs * sizeof *grown);
      kiln_mem_unmap(f->addrs, f->cap * sizeof *grown);
    }
    f->addrs = grown;
    f->cap = cap;
  }
  f->addrs[f->naddrs++] = addr;
}

void kiln_freeres_at_exit(void) {
  /* The buffers glibc made for its streams: exit's _IO_cleanup hands
   * them to freeres. (The FILE of a stream left open stays: reachable.) */
  enum { KILN_FREERES_STREAMS = 4096 };
  static FILE *streams[KILN_FREERES_STREAMS];
  size_t nstreams;
  kiln_freeres_streams(streams, KILN_FREERES_STREAMS, &nstreams);
  for (size_t i = 0; i < nstreams; i++)
    if (kiln_freeres_stream_buffer(streams[i]) != NULL) kiln_heap_on_free(kiln_freeres_stream_buffer(streams[i]), NULL);
  kiln_freeres_t f;
  memset(&f, 0, sizeof f);
  kiln_modules_refresh();
  f.sy = kiln_symbols_open();
  kiln_stacktab_foreach(kiln_freeres_stack, &f);
  kiln_symbols_close(f.sy);
  f.sorted = (uint32_t *)f.ids.data;
  f.nids = f.ids.failed ? 0 : f.ids.len / sizeof(uint32_t);
  if (f.nids > 0) {
    kiln_sort(f.sorted, f.nids, sizeof *f.sorted, kiln_freeres_id_cmp);
    kiln_livemap_foreach(&kiln_livemap_main, kiln_freeres_block, &f);
    for (size_t i = 0; i < f.naddrs; i++) kiln_heap_on_free((void *)(uintptr_t)f.addrs[i], NULL);
  }
  if (f.addrs != NULL) kiln_mem_unmap(f.addrs, f.cap * sizeof *f.addrs);
  kiln_buf_free(&f.ids);
  kiln_buf_free(&f.name);
}
