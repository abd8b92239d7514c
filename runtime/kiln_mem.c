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
    /* To the end of the page: the mapping's tail is kiln's too. */
    atomic_store_explicit(&t[i].hi, ((uintptr_t)p + bytes + 4095) & ~(uintptr_t)4095, memory_order_relaxed);
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

/* A small mapping taken at start and given back the first time an mmap of
 * kiln's fails (the address space is full, e.g. under ulimit -v): the dump
 * then still has room for its buffers. Each refusal is counted, so that
 * the profile says it is partial. */
static _Atomic(void *) kiln_mem_reserve;
static size_t kiln_mem_reserve_bytes;
static _Atomic uint64_t kiln_mem_refusals;

int kiln_mem_reserve_init(size_t bytes) {
  if (atomic_load_explicit(&kiln_mem_reserve, memory_order_acquire) != NULL) return 0;
  void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return -errno;
  void *expect = NULL;
  kiln_mem_reserve_bytes = bytes;
  if (!atomic_compare_exchange_strong_explicit(&kiln_mem_reserve, &expect, p, memory_order_acq_rel,
                                               memory_order_acquire))
    munmap(p, bytes);
  return 0;
}

/* True when the reserve was there to give back (then try again). */
static bool kiln_mem_reserve_release(void) {
  void *p = atomic_exchange_explicit(&kiln_mem_reserve, NULL, memory_order_acq_rel);
  if (p == NULL) return false;
  munmap(p, kiln_mem_reserve_bytes);
  return true;
}

/* kiln's own pool (kiln_internal.h): bump-allocated from one mapping,
 * made at its first use; never reused. */
char *_Atomic kiln_pool_base;
static _Atomic size_t kiln_pool_used;
__thread int kiln_tls_own_pool __attribute__((tls_model("initial-exec")));

void *kiln_pool_alloc(size_t size, size_t align) {
  char *base = atomic_load_explicit(&kiln_pool_base, memory_order_acquire);
  if (base == NULL) {
    char *m = kiln_mem_map(KILN_POOL_BYTES);
    if (m == NULL) return NULL;
    char *expect = NULL;
    if (!atomic_compare_exchange_strong(&kiln_pool_base, &expect, m)) {
      kiln_mem_unmap(m, KILN_POOL_BYTES);
      m = expect;
    }
    base = m;
  }
  return kiln_bump_alloc(base, KILN_POOL_BYTES, &kiln_pool_used, size, align); /* fresh pages: zero */
}

size_t kiln_pool_bytes(void) {
  size_t used = atomic_load_explicit(&kiln_pool_used, memory_order_relaxed);
  return used < KILN_POOL_BYTES ? used : KILN_POOL_BYTES;
}

uint64_t kiln_mem_refused(void) { return atomic_load_explicit(&kiln_mem_refusals, memory_order_relaxed); }

/* mmap; with reserve, once more after giving the reserve back. Only the
 * dump's text buffers take the reserve: the symbol files, the leak scan
 * and the tables do without (names, categories or stacks missing, said in
 * the profile), so that what is left is spent on writing it. */
KILN_SIGNAL_SAFE static void *kiln_mem_mmap_fd(size_t bytes, int prot, int flags, int fd, bool reserve) {
  void *p = mmap(NULL, bytes, prot, flags, fd, 0);
  if (p == MAP_FAILED && errno == ENOMEM && reserve && kiln_mem_reserve_release())
    p = mmap(NULL, bytes, prot, flags, fd, 0);
  if (p == MAP_FAILED && errno == ENOMEM) atomic_fetch_add_explicit(&kiln_mem_refusals, 1, memory_order_relaxed);
  return p;
}

KILN_SIGNAL_SAFE static void *kiln_mem_mmap(size_t bytes, int prot, int flags) {
  return kiln_mem_mmap_fd(bytes, prot, flags, -1, false);
}

void *kiln_mem_map_file(int fd, size_t bytes) {
  void *p = kiln_mem_mmap_fd(bytes, PROT_READ, MAP_PRIVATE, fd, false);
  return p == MAP_FAILED ? NULL : p;
}

void *kiln_mem_map(size_t bytes) {
  int e = errno;
  void *p = kiln_mem_mmap(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  errno = e;
  if (p == MAP_FAILED) return NULL;
  kiln_mem_note(p, bytes);
  return p;
}

void kiln_mem_unmap(void *p, size_t bytes) {
  if (p == NULL) return;
  kiln_mem_forget(p);
  munmap(p, bytes);
}

/* The arena's offsets live in chunks of doubling size: chunk 0 holds
 * [0, first), chunk k >= 1 holds [first << (k - 1), first << k). A chunk is
 * mapped by the first allocation that lands in it (a CAS publishes it; a
 * thread that lost the race unmaps its own), so an arena costs address
 * space in proportion to what it holds, and its pointers never move. */
static size_t kiln_arena_chunk(const kiln_arena_t *a, size_t off) {
  size_t q = off / a->first;
  return q == 0 ? 0 : (size_t)(64 - __builtin_clzll((unsigned long long)q));
}
static size_t kiln_arena_chunk_start(const kiln_arena_t *a, size_t k) {
  return k == 0 ? 0 : a->first << (k - 1);
}
static size_t kiln_arena_chunk_bytes(const kiln_arena_t *a, size_t k) {
  return k == 0 ? a->first : a->first << (k - 1);
}

static char *kiln_arena_map_chunk(kiln_arena_t *a, size_t k);

int kiln_arena_init(kiln_arena_t *a, size_t first, size_t cap) {
  size_t f = 4096;
  while (f < first) f <<= 1;
  a->first = f;
  a->cap = cap;
  for (size_t k = 0; k < KILN_ARENA_CHUNKS; k++) atomic_store_explicit(&a->chunks[k], NULL, memory_order_relaxed);
  atomic_store_explicit(&a->used, 0, memory_order_relaxed);
  atomic_store_explicit(&a->mapped, 0, memory_order_relaxed);
  /* Chunk 0 now: a failure shows at start, not in the first hook. */
  return kiln_arena_map_chunk(a, 0) == NULL ? -ENOMEM : 0;
}

KILN_SIGNAL_SAFE static char *kiln_arena_map_chunk(kiln_arena_t *a, size_t k) {
  char *c = atomic_load_explicit(&a->chunks[k], memory_order_acquire);
  if (c != NULL) return c;
  size_t bytes = kiln_arena_chunk_bytes(a, k);
  int e = errno;
  void *p = kiln_mem_mmap(bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
  errno = e;
  if (p == MAP_FAILED) return NULL;
  char *expect = NULL;
  if (!atomic_compare_exchange_strong_explicit(&a->chunks[k], &expect, (char *)p, memory_order_acq_rel,
                                               memory_order_acquire)) {
    munmap(p, bytes);
    return expect;
  }
  kiln_mem_note(p, bytes);
  atomic_fetch_add_explicit(&a->mapped, bytes, memory_order_relaxed);
  return p;
}

KILN_SIGNAL_SAFE void *kiln_arena_alloc_at(kiln_arena_t *a, size_t bytes, size_t *offset) {
  bytes = (bytes + 15) & ~(size_t)15;
  if (bytes == 0 || bytes > a->cap) return NULL;
  /* An allocation that would straddle two chunks is skipped over (its
   * bytes stay unused) and drawn again, at the start of the next chunk. */
  for (int tries = 0; tries < 2 * KILN_ARENA_CHUNKS; tries++) {
    size_t at = atomic_fetch_add_explicit(&a->used, bytes, memory_order_relaxed);
    if (at + bytes > a->cap || at + bytes < at) return NULL;
    size_t k = kiln_arena_chunk(a, at);
    if (k >= KILN_ARENA_CHUNKS) return NULL;
    if (kiln_arena_chunk(a, at + bytes - 1) != k) continue;
    char *c = kiln_arena_map_chunk(a, k);
    if (c == NULL) return NULL;
    if (offset != NULL) *offset = at;
    return c + (at - kiln_arena_chunk_start(a, k));
  }
  return NULL;
}

KILN_SIGNAL_SAFE void *kiln_arena_alloc(kiln_arena_t *a, size_t bytes) {
  return kiln_arena_alloc_at(a, bytes, NULL);
}

void *kiln_arena_at(const kiln_arena_t *a, size_t offset) {
  size_t k = kiln_arena_chunk(a, offset);
  if (k >= KILN_ARENA_CHUNKS) return NULL;
  char *c = atomic_load_explicit(&((kiln_arena_t *)a)->chunks[k], memory_order_acquire);
  return c == NULL ? NULL : c + (offset - kiln_arena_chunk_start(a, k));
}

size_t kiln_arena_offset(const kiln_arena_t *a, const void *p) {
  for (size_t k = 0; k < KILN_ARENA_CHUNKS; k++) {
    const char *c = atomic_load_explicit(&((kiln_arena_t *)a)->chunks[k], memory_order_acquire);
    if (c != NULL && (const char *)p >= c && (const char *)p < c + kiln_arena_chunk_bytes(a, k))
      return kiln_arena_chunk_start(a, k) + (size_t)((const char *)p - c);
  }
  return SIZE_MAX;
}

void kiln_arena_destroy(kiln_arena_t *a) {
  for (size_t k = 0; k < KILN_ARENA_CHUNKS; k++) {
    char *c = atomic_exchange_explicit(&a->chunks[k], NULL, memory_order_acq_rel);
    if (c != NULL) kiln_mem_unmap(c, kiln_arena_chunk_bytes(a, k));
  }
  atomic_store_explicit(&a->used, 0, memory_order_relaxed);
  atomic_store_explicit(&a->mapped, 0, memory_order_relaxed);
}

void kiln_chunks_init(kiln_chunks_t *c, size_t elem, size_t count) {
  if (c->elem != 0) return;
  c->per_chunk = (count + KILN_CHUNKS_MAX - 1) / KILN_CHUNKS_MAX;
  c->count = c->per_chunk * KILN_CHUNKS_MAX;
  c->elem = elem;
}

KILN_SIGNAL_SAFE void *kiln_chunks_at(const kiln_chunks_t *c, size_t i) {
  if (i >= c->count) return NULL;
  char *k = atomic_load_explicit(&((kiln_chunks_t *)c)->chunk[i / c->per_chunk], memory_order_acquire);
  return k == NULL ? NULL : k + (i % c->per_chunk) * c->elem;
}

void *kiln_chunks_get(kiln_chunks_t *c, size_t i) {
  void *p = kiln_chunks_at(c, i);
  if (p != NULL || i >= c->count) return p;
  size_t bytes = c->per_chunk * c->elem;
  char *mem = kiln_mem_map(bytes), *expect = NULL;
  if (mem == NULL) return NULL;
  if (!atomic_compare_exchange_strong_explicit(&c->chunk[i / c->per_chunk], &expect, mem, memory_order_acq_rel,
                                               memory_order_acquire))
    kiln_mem_unmap(mem, bytes);
  return kiln_chunks_at(c, i);
}

size_t kiln_chunks_index(const kiln_chunks_t *c, const void *p) {
  size_t bytes = c->per_chunk * c->elem;
  for (size_t k = 0; k < KILN_CHUNKS_MAX; k++) {
    const char *m = atomic_load_explicit(&((kiln_chunks_t *)c)->chunk[k], memory_order_acquire);
    if (m != NULL && (const char *)p >= m && (const char *)p < m + bytes)
      return k * c->per_chunk + (size_t)((const char *)p - m) / c->elem;
  }
  return SIZE_MAX;
}

/* Buffers of the first size given back, kept for the next ones: a dump
 * takes one per file, and each cost an mmap, its page faults and a munmap
 * (22 of each in a fork child's dump of one leaked block). Cleared when
 * given back, so that a buffer reads as zeros as a new mapping does. A
 * try-lock: a signal handler's dump that finds it taken maps as before. */
enum { KILN_BUF_FIRST = 1 << 14, KILN_BUF_SPARES = 16 };
static char *kiln_buf_spares[KILN_BUF_SPARES];
static int kiln_buf_nspares;
static atomic_flag kiln_buf_spares_lock = ATOMIC_FLAG_INIT;

static char *kiln_buf_spare_take(void) {
  if (atomic_flag_test_and_set_explicit(&kiln_buf_spares_lock, memory_order_acquire)) return NULL;
  if (kiln_buf_nspares == 0) {
    /* All of them in one mapping (each a piece of its own from now on:
     * a piece that grows is moved out by mremap, one freed is kept). */
    char *m = mmap(NULL, (size_t)KILN_BUF_SPARES * KILN_BUF_FIRST, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED)
      for (int i = KILN_BUF_SPARES; i-- > 0;) {
        kiln_mem_note(m + (size_t)i * KILN_BUF_FIRST, KILN_BUF_FIRST);
        kiln_buf_spares[kiln_buf_nspares++] = m + (size_t)i * KILN_BUF_FIRST;
      }
  }
  char *p = kiln_buf_nspares > 0 ? kiln_buf_spares[--kiln_buf_nspares] : NULL;
  atomic_flag_clear_explicit(&kiln_buf_spares_lock, memory_order_release);
  return p;
}

static bool kiln_buf_spare_give(char *p) {
  if (atomic_flag_test_and_set_explicit(&kiln_buf_spares_lock, memory_order_acquire)) return false;
  bool kept = kiln_buf_nspares < KILN_BUF_SPARES;
  if (kept) kiln_buf_spares[kiln_buf_nspares++] = p;
  atomic_flag_clear_explicit(&kiln_buf_spares_lock, memory_order_release);
  return kept;
}

static bool kiln_buf_grow(kiln_buf_t *b, size_t need) {
  if (b->failed) return false;
  if (b->len + need <= b->cap) return true;
  /* 16 KiB first: a dump has a buffer per file, and under a full address
   * space the reserve must hold them all. */
  size_t cap = b->cap ? b->cap : KILN_BUF_FIRST;
  while (cap < b->len + need) cap *= 2;
  void *p;
  if (b->data == NULL && cap == KILN_BUF_FIRST && (p = kiln_buf_spare_take()) != NULL) {
    b->data = p; /* still noted as kiln's */
    b->cap = cap;
    return true;
  }
  if (b->data == NULL) {
    p = kiln_mem_mmap_fd(cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, true);
  } else {
    p = mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
    if (p == MAP_FAILED && errno == ENOMEM && kiln_mem_reserve_release())
      p = mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) atomic_fetch_add_explicit(&kiln_mem_refusals, 1, memory_order_relaxed);
  }
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
  if (b->len > b->hi) b->hi = b->len;
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
  if (b->data != NULL && b->cap == KILN_BUF_FIRST) {
    size_t dirty = b->hi > b->len ? b->hi : b->len;
    memset(b->data, 0, dirty < KILN_BUF_FIRST ? dirty : KILN_BUF_FIRST); /* the pages never written stay unmapped */
    if (kiln_buf_spare_give(b->data)) {
      memset(b, 0, sizeof *b);
      return;
    }
  }
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
