/* kiln_allocmaps.c — the mappings the allocator's own library made with
 * mmap (jemalloc's extents and metadata, tcmalloc's spans): its
 * bookkeeping, which points at the blocks it manages (a large block's
 * extent record holds its address), so never the program's roots for the
 * leak scan. Recorded by the mmap and munmap interposers (any thread, from
 * process start: a spinlock held for one table update, no allocation).
 * Beside them, and never under that lock, the mappings of the libraries
 * kiln loads (libunwind's caches): kiln's memory, not the program's. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

typedef struct kiln_allocmaps_range {
  uintptr_t lo, hi;
} kiln_allocmaps_range_t;

static bool kiln_allocmaps_is_libc(const char *path) {
  const char *base = path != NULL ? strrchr(path, '/') : NULL;
  base = base != NULL ? base + 1 : path;
  return base != NULL && strncmp(base, "libc.so", 7) == 0;
}

/* Until kiln_allocmaps_prepare knows the allocator, every caller's
 * mappings are recorded. The table lives in kiln's own data, which is never
 * scanned. glibc's malloc maps with internal calls, never seen here (the
 * scan recognises its heaps by their heap_info). mremap is not followed:
 * these allocators do not use it. */
enum { KILN_ALLOCMAPS = 8192 };
enum { KILN_ALLOCMAPS_ALL = 0, KILN_ALLOCMAPS_LIBRARY, KILN_ALLOCMAPS_NONE };
enum { KILN_ALLOCMAPS_KILN = 64 }; /* libunwind makes a few, and keeps them */
static struct {
  atomic_flag lock;
  _Atomic int mode;    /* KILN_ALLOCMAPS_*: whose mappings are recorded */
  uintptr_t lo, hi;    /* LIBRARY: the allocator's library */
  size_t n;
  uint64_t lost;       /* the table was full */
  kiln_allocmaps_range_t maps[KILN_ALLOCMAPS];
  uintptr_t callers[KILN_ALLOCMAPS];
  /* kiln's own libraries (libunwind's two), and their mappings: slots
   * claimed and cleared with atomics (lo 0: free, 1: being written), for
   * libunwind maps inside the signal handler too. */
  _Atomic int nkiln;
  kiln_allocmaps_range_t kiln[4];
  struct { _Atomic uintptr_t lo, hi; } kiln_maps[KILN_ALLOCMAPS_KILN];
} kiln_allocmaps_state;

static bool kiln_allocmaps_by_kiln(uintptr_t c) {
  int n = atomic_load_explicit(&kiln_allocmaps_state.nkiln, memory_order_acquire);
  for (int i = 0; i < n; i++)
    if (c >= kiln_allocmaps_state.kiln[i].lo && c < kiln_allocmaps_state.kiln[i].hi) return true;
  return false;
}

static void kiln_allocmaps_lock(void) {
  while (atomic_flag_test_and_set_explicit(&kiln_allocmaps_state.lock, memory_order_acquire)) {
  }
}
static void kiln_allocmaps_unlock(void) { atomic_flag_clear_explicit(&kiln_allocmaps_state.lock, memory_order_release); }

void kiln_allocmaps_on_mmap(void *addr, size_t len, int prot, int flags, void *caller) {
  (void)prot; /* a reservation made PROT_NONE and opened later is the allocator's too */
  int mode = atomic_load_explicit(&kiln_allocmaps_state.mode, memory_order_acquire);
  uintptr_t c = (uintptr_t)caller;
  if ((flags & MAP_SHARED) || !(flags & MAP_ANONYMOUS) || len == 0) return;
  if (kiln_allocmaps_by_kiln(c)) { /* no lock: libunwind maps inside the signal handler too */
    for (int i = 0; i < KILN_ALLOCMAPS_KILN; i++) {
      uintptr_t expect = 0;
      if (atomic_load_explicit(&kiln_allocmaps_state.kiln_maps[i].lo, memory_order_relaxed) != 0 ||
          !atomic_compare_exchange_strong_explicit(&kiln_allocmaps_state.kiln_maps[i].lo, &expect, 1,
                                                   memory_order_acq_rel, memory_order_relaxed))
        continue;
      atomic_store_explicit(&kiln_allocmaps_state.kiln_maps[i].hi, (uintptr_t)addr + len, memory_order_relaxed);
      atomic_store_explicit(&kiln_allocmaps_state.kiln_maps[i].lo, (uintptr_t)addr, memory_order_release);
      return;
    }
    return; /* full: that one is scanned as the program's, as before libunwind was known */
  }
  if (mode == KILN_ALLOCMAPS_NONE || (mode == KILN_ALLOCMAPS_LIBRARY &&
                                      (c < kiln_allocmaps_state.lo || c >= kiln_allocmaps_state.hi)))
    return;
  kiln_allocmaps_lock();
  if (kiln_allocmaps_state.n < KILN_ALLOCMAPS) {
    kiln_allocmaps_state.maps[kiln_allocmaps_state.n].lo = (uintptr_t)addr;
    kiln_allocmaps_state.maps[kiln_allocmaps_state.n].hi = (uintptr_t)addr + len;
    kiln_allocmaps_state.callers[kiln_allocmaps_state.n] = c;
    kiln_allocmaps_state.n++;
  } else {
    kiln_allocmaps_state.lost++;
  }
  kiln_allocmaps_unlock();
}

void kiln_allocmaps_on_munmap(void *addr, size_t len) {
  uintptr_t lo = (uintptr_t)addr, hi = lo + ((len + 4095) & ~(size_t)4095);
  if (atomic_load_explicit(&kiln_allocmaps_state.nkiln, memory_order_acquire) > 0)
    for (int i = 0; i < KILN_ALLOCMAPS_KILN; i++) {
      uintptr_t l = atomic_load_explicit(&kiln_allocmaps_state.kiln_maps[i].lo, memory_order_acquire);
      if (l > 1 && l >= lo && l < hi) atomic_store_explicit(&kiln_allocmaps_state.kiln_maps[i].lo, 0, memory_order_release);
    }
  if (atomic_load_explicit(&kiln_allocmaps_state.mode, memory_order_acquire) == KILN_ALLOCMAPS_NONE) return;
  kiln_allocmaps_lock();
  for (size_t i = 0; i < kiln_allocmaps_state.n; i++) {
    kiln_allocmaps_range_t *r = &kiln_allocmaps_state.maps[i];
    if (r->hi <= lo || r->lo >= hi) continue;
    if (r->lo < lo && r->hi > hi) { /* a hole in the middle: two records */
      if (kiln_allocmaps_state.n < KILN_ALLOCMAPS) {
        kiln_allocmaps_state.maps[kiln_allocmaps_state.n].lo = hi;
        kiln_allocmaps_state.maps[kiln_allocmaps_state.n].hi = r->hi;
        kiln_allocmaps_state.callers[kiln_allocmaps_state.n] = kiln_allocmaps_state.callers[i];
        kiln_allocmaps_state.n++;
      }
      r->hi = lo;
    } else if (r->lo < lo) {
      r->hi = lo;
    } else if (r->hi > hi) {
      r->lo = hi;
    } else { /* all of it: the last record takes its place */
      kiln_allocmaps_state.n--;
      *r = kiln_allocmaps_state.maps[kiln_allocmaps_state.n];
      kiln_allocmaps_state.callers[i] = kiln_allocmaps_state.callers[kiln_allocmaps_state.n];
      i--;
    }
  }
  kiln_allocmaps_unlock();
}

static void kiln_allocmaps_fork_prepare(void) { kiln_allocmaps_lock(); }
static void kiln_allocmaps_fork_release(void) { kiln_allocmaps_unlock(); }

typedef struct kiln_allocmaps_module_of {
  uintptr_t addr, lo, hi;
  bool found, main, libc;
} kiln_allocmaps_module_of_t;

static int kiln_allocmaps_module_of_phdr(struct dl_phdr_info *info, size_t size, void *vctx) {
  (void)size;
  kiln_allocmaps_module_of_t *c = vctx;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (a < lo) lo = a;
    if (a + ph->p_memsz > hi) hi = a + ph->p_memsz;
  }
  if (c->found || c->addr < lo || c->addr >= hi) return 0;
  c->found = true;
  c->lo = lo;
  c->hi = hi;
  c->main = info->dlpi_name == NULL || info->dlpi_name[0] == '\0';
  c->libc = kiln_allocmaps_is_libc(info->dlpi_name);
  return 0;
}

void kiln_allocmaps_prepare(void) {
  static bool atfork;
  if (!atfork)
    atfork = pthread_atfork(kiln_allocmaps_fork_prepare, kiln_allocmaps_fork_release, kiln_allocmaps_fork_release) == 0;
  /* Whose mappings to keep: the allocator's library's; none for glibc's
   * malloc (internal calls) or one linked into the program (its mappings
   * cannot be told from the program's). */
  kiln_allocmaps_module_of_t m;
  memset(&m, 0, sizeof m);
  m.addr = (uintptr_t) * (void **)&kiln_libc.malloc;
  if (m.addr != 0 && kiln_libc.dl_iterate_phdr != NULL) kiln_libc.dl_iterate_phdr(kiln_allocmaps_module_of_phdr, &m);
  kiln_allocmaps_lock();
  if (!m.found || m.main || m.libc) {
    kiln_allocmaps_state.n = 0;
    atomic_store_explicit(&kiln_allocmaps_state.mode, KILN_ALLOCMAPS_NONE, memory_order_release);
  } else {
    kiln_allocmaps_state.lo = m.lo;
    kiln_allocmaps_state.hi = m.hi;
    size_t n = 0;
    for (size_t i = 0; i < kiln_allocmaps_state.n; i++) {
      if (kiln_allocmaps_state.callers[i] < m.lo || kiln_allocmaps_state.callers[i] >= m.hi) continue;
      kiln_allocmaps_state.maps[n] = kiln_allocmaps_state.maps[i];
      kiln_allocmaps_state.callers[n++] = kiln_allocmaps_state.callers[i];
    }
    kiln_allocmaps_state.n = n;
    atomic_store_explicit(&kiln_allocmaps_state.mode, KILN_ALLOCMAPS_LIBRARY, memory_order_release);
  }
  kiln_allocmaps_unlock();
}

void kiln_allocmaps_kiln_library(const void *addr) {
  kiln_allocmaps_module_of_t m;
  memset(&m, 0, sizeof m);
  m.addr = (uintptr_t)addr;
  if (m.addr == 0 || kiln_libc.dl_iterate_phdr == NULL) return;
  kiln_libc.dl_iterate_phdr(kiln_allocmaps_module_of_phdr, &m);
  if (!m.found || m.main || m.libc) return;
  kiln_allocmaps_lock();
  int n = atomic_load_explicit(&kiln_allocmaps_state.nkiln, memory_order_relaxed);
  bool known = false;
  for (int i = 0; i < n; i++) known |= kiln_allocmaps_state.kiln[i].lo == m.lo;
  if (!known && n < (int)(sizeof kiln_allocmaps_state.kiln / sizeof kiln_allocmaps_state.kiln[0])) {
    kiln_allocmaps_state.kiln[n].lo = m.lo;
    kiln_allocmaps_state.kiln[n].hi = m.hi;
    atomic_store_explicit(&kiln_allocmaps_state.nkiln, n + 1, memory_order_release);
  }
  kiln_allocmaps_unlock();
}

void kiln_allocmaps_foreach(void (*fn)(uintptr_t lo, uintptr_t hi, void *ctx), void *ctx) {
  kiln_allocmaps_lock();
  for (size_t i = 0; i < kiln_allocmaps_state.n; i++) fn(kiln_allocmaps_state.maps[i].lo, kiln_allocmaps_state.maps[i].hi, ctx);
  for (int i = 0; i < KILN_ALLOCMAPS_KILN; i++) {
    uintptr_t l = atomic_load_explicit(&kiln_allocmaps_state.kiln_maps[i].lo, memory_order_acquire);
    if (l > 1) fn(l, atomic_load_explicit(&kiln_allocmaps_state.kiln_maps[i].hi, memory_order_relaxed), ctx);
  }
  kiln_allocmaps_unlock();
}
