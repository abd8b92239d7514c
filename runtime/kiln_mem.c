/* kiln_mem.c — the runtime's own memory: mmap regions, a lock-free bump
 * arena and a growable text buffer. Never the program's malloc, so that the
 * profiler can neither recurse into nor perturb the allocator it observes.
 * The arena may be used from the signal handler; the buffer may not. */
#include "kiln_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* The list of the runtime's own mappings, for the leak scan: kiln's tables
 * hold the address of every live block and must never be taken for the
 * program's roots. A fixed table of slots, claimed with a CAS; the table
 * is itself a mapping of its own, listed in it. */
enum { KILN_MEM_REGIONS = 1 << 15 };
typedef struct kiln_mem_region {
  _Atomic uintptr_t lo; /* 0: free; 1: being filled */
  _Atomic uintptr_t hi;
} kiln_mem_region_t;
static _Atomic(kiln_mem_region_t *) kiln_mem_regions;
static _Atomic size_t kiln_mem_regions_high; /* slots in use are below */

static void kiln_mem_note(void *p, size_t bytes);

static kiln_mem_region_t *kiln_mem_regions_table(void) {
  kiln_mem_region_t *t = atomic_load_explicit(&kiln_mem_regions, memory_order_acquire);
  if (t != NULL) return t;
  size_t size = KILN_MEM_REGIONS * sizeof *t;
  void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) return NULL;
  kiln_mem_region_t *expect = NULL;
  if (!atomic_compare_exchange_strong_explicit(&kiln_mem_regions, &expect, (kiln_mem_region_t *)m,
                                               memory_order_acq_rel, memory_order_acquire)) {
    munmap(m, size);
    return expect;
  }
  kiln_mem_note(m, size);
  return m;
}

static void kiln_mem_note(void *p, size_t bytes) {
  kiln_mem_region_t *t = kiln_mem_regions_table();
  if (t == NULL || p == NULL) return;
  for (size_t i = 0; i < KILN_MEM_REGIONS; i++) {
    uintptr_t expect = 0;
    if (atomic_load_explicit(&t[i].lo, memory_order_relaxed) != 0 ||
        !atomic_compare_exchange_strong_explicit(&t[i].lo, &expect, 1, memory_order_acq_rel, memory_order_relaxed))
      continue;
    atomic_store_explicit(&t[i].hi, (uintptr_t)p + bytes, memory_order_relaxed);
    atomic_store_explicit(&t[i].lo, (uintptr_t)p, memory_order_release);
    size_t high = atomic_load_explicit(&kiln_mem_regions_high, memory_order_relaxed);
    while (high < i + 1 && !atomic_compare_exchange_weak_explicit(&kiln_mem_regions_high, &high, i + 1,
                                                                 memory_order_acq_rel, memory_order_relaxed)) {
    }
    return;
  }
}

static void kiln_mem_forget(void *p) {
  kiln_mem_region_t *t = atomic_load_explicit(&kiln_mem_regions, memory_order_acquire);
  size_t high = atomic_load_explicit(&kiln_mem_regions_high, memory_order_acquire);
  for (size_t i = 0; t != NULL && i < high; i++)
    if (atomic_load_explicit(&t[i].lo, memory_order_acquire) == (uintptr_t)p) {
      atomic_store_explicit(&t[i].lo, 0, memory_order_release);
      return;
    }
}

size_t kiln_mem_regions_list(uintptr_t *lo, uintptr_t *hi, size_t max) {
  kiln_mem_region_t *t = atomic_load_explicit(&kiln_mem_regions, memory_order_acquire);
  size_t high = atomic_load_explicit(&kiln_mem_regions_high, memory_order_acquire), n = 0;
  for (size_t i = 0; t != NULL && i < high && n < max; i++) {
    uintptr_t l = atomic_load_explicit(&t[i].lo, memory_order_acquire);
    if (l <= 1) continue;
    lo[n] = l;
    hi[n] = atomic_load_explicit(&t[i].hi, memory_order_relaxed);
    n++;
  }
  return n;
}

void *kiln_mem_map(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  kiln_mem_note(p, bytes);
  return p;
}

void kiln_mem_unmap(void *p, size_t bytes) {
  if (p == NULL) return;
  kiln_mem_forget(p);
  munmap(p, bytes);
}

int kiln_arena_init(kiln_arena_t *a, size_t cap) {
  /* Reserve without committing: the kernel backs pages on first touch. */
  void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return -errno;
  kiln_mem_note(p, cap);
  a->base = p;
  a->cap = cap;
  atomic_store_explicit(&a->used, 0, memory_order_relaxed);
  return 0;
}

KILN_SIGNAL_SAFE void *kiln_arena_alloc(kiln_arena_t *a, size_t bytes) {
  bytes = (bytes + 15) & ~(size_t)15;
  size_t at = atomic_fetch_add_explicit(&a->used, bytes, memory_order_relaxed);
  if (at + bytes > a->cap || at + bytes < at) return NULL;
  return a->base + at;
}

void kiln_arena_destroy(kiln_arena_t *a) {
  if (a->base != NULL) kiln_mem_unmap(a->base, a->cap);
  a->base = NULL;
  a->cap = 0;
  atomic_store_explicit(&a->used, 0, memory_order_relaxed);
}

static bool kiln_buf_grow(kiln_buf_t *b, size_t need) {
  if (b->failed) return false;
  if (b->len + need <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 1 << 16;
  while (cap < b->len + need) cap *= 2;
  void *p = b->data == NULL ? mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                            : mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) {
    b->failed = true;
    return false;
  }
  if (b->data != NULL) kiln_mem_forget(b->data);
  kiln_mem_note(p, cap);
  b->data = p;
  b->cap = cap;
  return true;
}

void *kiln_buf_reserve(kiln_buf_t *b, size_t n) {
  if (!kiln_buf_grow(b, n)) return NULL;
  void *p = b->data + b->len;
  b->len += n;
  return p;
}

void kiln_buf_put(kiln_buf_t *b, const char *s, size_t n) {
  char *p = kiln_buf_reserve(b, n);
  if (p != NULL) memcpy(p, s, n);
}

void kiln_buf_puts(kiln_buf_t *b, const char *s) { kiln_buf_put(b, s, strlen(s)); }

void kiln_buf_printf(kiln_buf_t *b, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = kiln_fmt_v(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  kiln_buf_put(b, line, (size_t)n);
}

void kiln_buf_free(kiln_buf_t *b) {
  kiln_mem_unmap(b->data, b->cap);
  memset(b, 0, sizeof *b);
}

/* Heapsort: in place, no recursion, no allocation (qsort may malloc). */
static void kiln_sort_swap(char *a, char *b, size_t size) {
  while (size--) {
    char t = *a;
    *a++ = *b;
    *b++ = t;
  }
}

static void kiln_sort_sift(char *base, size_t root, size_t n, size_t size,
                           int (*cmp)(const void *, const void *)) {
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n) return;
    if (child + 1 < n && cmp(base + child * size, base + (child + 1) * size) < 0) child++;
    if (cmp(base + root * size, base + child * size) >= 0) return;
    kiln_sort_swap(base + root * size, base + child * size, size);
    root = child;
  }
}

void kiln_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
  char *b = base;
  if (n < 2) return;
  for (size_t i = n / 2; i-- > 0;) kiln_sort_sift(b, i, n, size, cmp);
  for (size_t end = n - 1; end > 0; end--) {
    kiln_sort_swap(b, b + end * size, size);
    kiln_sort_sift(b, 0, end, size, cmp);
  }
}
