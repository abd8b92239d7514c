/* kiln_heap.c — allocation accounting, called by the malloc hooks of any
 * thread after the real allocator has answered (allocations) or before it
 * is asked (frees, so that an address the allocator hands out again is
 * never confused with the block it was). Two modes:
 *   exact    every block: its stack unwound and interned, its address in
 *            the live map, so every free is matched whichever thread frees.
 *   sampled  Poisson sampling by bytes (KILN_ALLOC_SAMPLE=R): a per-thread
 *            countdown, no shared state on the fast path; a sampled block
 *            of size s stands for 1/(1-exp(-s/R)) blocks, so estimates are
 *            unbiased. A small counting filter spares most frees the map.
 * Peak: per stack, live bytes at the moment the total live heap peaked,
 * kept as a lazy snapshot: each peak bumps an epoch; a stack saves its live
 * bytes the first time it changes after a new peak. Exact for a single
 * thread; with threads, within the operations in flight at the peak.
 * Hooks only: never the signal handler. Every function here runs with the
 * thread's hook guard held, so nothing it calls can re-enter. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Totals of one thread: written by that thread only (plain stores), read
 * by a dump. Slots are claimed on a thread's first recorded call and never
 * given back; threads past the last slot add to the shared totals. */
/* A cache line each: one thread's slot, written by its every hook, must
 * not share a line with another's (40 bytes packed did: two threads'
 * churn spent 17% of its samples on those two adds). */
typedef struct kiln_heap_totals {
  _Alignas(64) _Atomic uint64_t alloc_bytes, alloc_count, freed_bytes, freed_count;
  _Atomic int in_use;
} kiln_heap_totals_t;

enum { KILN_HEAP_TOTALS = 8192 };

typedef struct kiln_heap_tls {
  kiln_heap_totals_t *totals;
  bool totals_tried;
  bool exit_key_set; /* the thread-exit destructor will flush pending */
  uint64_t rng;
  /* Live bytes this thread changed that the shared live_bytes does not
   * hold yet: flushed as soon as it is positive (the heap may be growing
   * past its peak), or below -KILN_HEAP_FLUSH, or at thread exit. */
  int64_t pending;
} kiln_heap_tls_t;

enum { KILN_HEAP_FLUSH = 256 * 1024 };

static __thread kiln_heap_tls_t kiln_heap_tls __attribute__((tls_model("initial-exec")));
#ifdef KILN_SANITIZER_FORWARD
/* Sanitizer builds: hooks off in a thread until kiln starts it (kiln_interpose.c). */
__thread int kiln_tls_hook_guard __attribute__((tls_model("initial-exec"))) = 1;
#else
__thread int kiln_tls_hook_guard __attribute__((tls_model("initial-exec"))) = 0;
#endif
__thread int64_t kiln_tls_alloc_countdown __attribute__((tls_model("initial-exec"))) = 0;
__thread uintptr_t kiln_tls_last_alloc __attribute__((tls_model("initial-exec"))) = 0;
_Atomic uint8_t *kiln_heap_filter;
uint64_t kiln_heap_sample_bytes;

static struct {
  kiln_unwind_kind_t unwind;
  int max_depth;
  uint64_t sample; /* 0: exact */
  double sample_d;
  kiln_heap_totals_t shared;  /* threads without a slot */
  kiln_heap_totals_t *slots; /* KILN_HEAP_TOTALS of them */
  /* Slots below this were ever claimed (they are never given back): sums
   * and clears stop here, not at the 512 KiB end, whose untouched pages a
   * read would map (a fork child's every stats call faulted them in). */
  _Atomic int slots_high;
  /* Written by the hooks of every thread (a flush, a new peak): a cache
   * line apart from the fields above, which every hook reads, so that one
   * thread's flush does not make the next hook of another miss on them. */
  _Alignas(64) _Atomic int64_t live_bytes; /* for the peak: every change, at once */
  uint64_t base_bytes, base_count; /* live at fork (inherited blocks) */
  _Alignas(64) _Atomic int64_t peak_bytes; /* with epoch: written on a new peak only */
  _Atomic uint64_t epoch;
  _Atomic uint64_t untracked_frees, map_failures;
  _Alignas(64) _Atomic uint8_t *filter; /* sampled mode: blocks per address hash */
  uint64_t seed;           /* KILN_ALLOC_SEED: 0 for a random one */
  pthread_key_t exit_key;
  bool exit_key_ok;
  /* Leak scopes: while any is open, each new block's allocation number
   * goes into a second map, left again when the block is freed. */
  _Atomic int open_scopes;
  _Atomic uint64_t seq;
  kiln_livemap_t scopes;
} kiln_heap;

enum { KILN_HEAP_FILTER = KILN_HEAP_FILTER_SLOTS };

static void kiln_heap_thread_exit(void *unused);

_Atomic bool kiln_heap_on, kiln_heap_ever;

/* libm, for sampled mode only: loaded when that mode starts, so that no
 * process pays for mapping it (it is not among the libraries most
 * programs load, and kiln is loaded into every process of a tree). */
static struct {
  double (*log)(double);
  double (*expm1)(double);
  long long (*llround)(double);
} kiln_heap_m;

static bool kiln_heap_load_libm(void) {
  if (kiln_heap_m.log != NULL) return true;
  void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) return false;
  *(void **)&kiln_heap_m.expm1 = dlsym(h, "expm1");
  *(void **)&kiln_heap_m.llround = dlsym(h, "llround");
  *(void **)&kiln_heap_m.log = dlsym(h, "log");
  return kiln_heap_m.log != NULL && kiln_heap_m.expm1 != NULL && kiln_heap_m.llround != NULL;
}

int kiln_heap_start(const kiln_config_t *cfg) {
  if (cfg->alloc_sample != 0 && !kiln_heap_load_libm()) {
    kiln_log("KILN_ALLOC_SAMPLE: libm.so.6 cannot be loaded; allocations tracked exactly");
    kiln_config_t exact = *cfg;
    exact.alloc_sample = 0;
    return kiln_heap_start(&exact);
  }
  if (kiln_heap.slots == NULL) {
    kiln_heap.slots = kiln_mem_map(KILN_HEAP_TOTALS * sizeof(kiln_heap_totals_t));
    if (kiln_heap.slots == NULL) return -ENOMEM;
  }
  kiln_heap.unwind = cfg->unwind;
  kiln_heap.max_depth = cfg->max_depth;
  kiln_heap.sample = cfg->alloc_sample;
  kiln_heap.sample_d = (double)cfg->alloc_sample;
  if (kiln_heap.sample != 0 && kiln_heap.filter == NULL) {
    kiln_heap.filter = kiln_mem_map(KILN_HEAP_FILTER);
    if (kiln_heap.filter == NULL) return -ENOMEM;
  }
  kiln_heap_filter = kiln_heap.sample ? kiln_heap.filter : NULL;
  kiln_heaplocal_init(&kiln_heap.epoch);
  /* Debugging and test knobs (README, "Testing kiln"): a fixed sampling
   * seed makes sampled mode deterministic for a deterministic program;
   * verify unwinds every allocation with libunwind as well. */
  const char *seed = secure_getenv("KILN_ALLOC_SEED");
  kiln_heap.seed = seed != NULL ? strtoull(seed, NULL, 0) : 0;
  const char *verify = secure_getenv("KILN_ALLOC_VERIFY");
  kiln_hookstack_init(cfg->unwind, verify != NULL && strcmp(verify, "1") == 0);
  if (!kiln_heap.exit_key_ok && pthread_key_create(&kiln_heap.exit_key, kiln_heap_thread_exit) == 0)
    kiln_heap.exit_key_ok = true;
  kiln_heap_sample_bytes = kiln_heap.sample;
  atomic_store(&kiln_heap_ever, true);
  atomic_store(&kiln_heap_on, true);
  return 0;
}

void kiln_heap_stop(void) { atomic_store(&kiln_heap_on, false); }

/* ------------------------------------------------------------- sampling */

static uint64_t kiln_heap_rand(kiln_heap_tls_t *t) {
  if (t->rng == 0) {
    static _Atomic uint64_t threads;
    if (kiln_heap.seed != 0) {
      /* Fixed seed: the nth thread to draw gets the nth stream. */
      t->rng = kiln_heap.seed * 0x9e3779b97f4a7c15ull + atomic_fetch_add(&threads, 1) * 0xbf58476d1ce4e5b9ull;
    } else {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      t->rng = ((uint64_t)syscall(SYS_gettid) << 32) ^ (uint64_t)ts.tv_nsec ^ 0x9e3779b97f4a7c15ull;
    }
    if (t->rng == 0) t->rng = 1;
  }
  t->rng ^= t->rng << 13;
  t->rng ^= t->rng >> 7;
  t->rng ^= t->rng << 17;
  return t->rng;
}

/* Bytes to the next sampled byte: exponential with mean R. */
static int64_t kiln_heap_next_sample(kiln_heap_tls_t *t) {
  double u = ((double)(kiln_heap_rand(t) >> 11) + 0.5) / 9007199254740992.0;
  double d = -kiln_heap_m.log(u) * kiln_heap.sample_d;
  return d < 1 ? 1 : d > 4e18 ? (int64_t)4e18 : (int64_t)d;
}

/* How many blocks a sampled block of size stands for. */
static double kiln_heap_weight(uint64_t size) {
  if (kiln_heap.sample == 0) return 1;
  double p = -kiln_heap_m.expm1(-(double)size / kiln_heap.sample_d);
  return p > 0 ? 1 / p : 1;
}

/* What a block adds to the counts: 1 block and its size in exact mode;
 * sampled, size * w bytes and floor(w) or floor(w) + 1 blocks, the latter
 * with probability frac(w) (drawn once, at allocation, and kept with the
 * block as up), so that both estimates are unbiased and its free takes
 * back exactly what its allocation added. */
static void kiln_heap_weigh(uint64_t size, bool up, int64_t *bytes, int64_t *count) {
  if (kiln_heap.sample == 0) {
    *bytes = (int64_t)size;
    *count = 1;
    return;
  }
  double w = kiln_heap_weight(size);
  *bytes = kiln_heap_m.llround((double)size * w);
  *count = (int64_t)w + (up ? 1 : 0);
}

static size_t kiln_heap_filter_slot(uint64_t addr) { return kiln_heap_filter_index(addr); }

/* A filter count up or down by one; 255 is sticky (see the header). */
static void kiln_heap_filter_add(uint64_t addr, int d) {
  _Atomic uint8_t *c = &kiln_heap.filter[kiln_heap_filter_slot(addr)];
  uint8_t v = atomic_load_explicit(c, memory_order_relaxed);
  while (v != 255 && !atomic_compare_exchange_weak_explicit(c, &v, (uint8_t)(v + d), memory_order_relaxed,
                                                            memory_order_relaxed)) {
  }
}

/* ---------------------------------------------------------------- stacks */

static inline uint64_t kiln_heap_count(kiln_stack_t *s, kiln_count_kind_t k) {
  return atomic_load_explicit(&s->counts[k], memory_order_relaxed);
}

static inline uint64_t kiln_heap_live(kiln_stack_t *s) {
  return kiln_heap_count(s, KILN_COUNT_BASE_BYTES) + kiln_heap_count(s, KILN_COUNT_ALLOC_BYTES) -
         kiln_heap_count(s, KILN_COUNT_FREED_BYTES);
}

/* Saves the stack's live bytes if it has not changed since the last peak. */
static void kiln_heap_peak_touch(kiln_stack_t *s) {
  uint64_t epoch = atomic_load_explicit(&kiln_heap.epoch, memory_order_relaxed);
  if (kiln_heap_count(s, KILN_COUNT_PEAK_EPOCH) == epoch) return;
  atomic_store_explicit(&s->counts[KILN_COUNT_PEAK_BYTES], kiln_heap_live(s), memory_order_relaxed);
  atomic_store_explicit(&s->counts[KILN_COUNT_PEAK_EPOCH], epoch, memory_order_relaxed);
}

/* Counts an operation on stack id: in the thread's own counters
 * (kiln_heaplocal.c), or, for a thread without them, with atomic adds on
 * the stack itself (live is derived: base + alloc - freed). */
static void kiln_heap_account(uint32_t id, int64_t ab, int64_t ac, int64_t fb, int64_t fc, int64_t tc) {
  const int64_t d[KILN_HL_VALUES] = {ab, ac, fb, fc, tc};
  if (KILN_LIKELY(kiln_heaplocal_add(id, d))) return;
  static const kiln_count_kind_t kinds[KILN_HL_VALUES] = {KILN_COUNT_ALLOC_BYTES, KILN_COUNT_ALLOC_COUNT,
                                                          KILN_COUNT_FREED_BYTES, KILN_COUNT_FREED_COUNT,
                                                          KILN_COUNT_TEMP_COUNT};
  kiln_stack_t *s = kiln_stacktab_get(id);
  kiln_heap_peak_touch(s);
  for (int k = 0; k < KILN_HL_VALUES; k++)
    if (d[k] != 0) kiln_stacktab_add(s, kinds[k], (uint64_t)d[k]);
}

/* The calling thread's totals (a slot of its own, or the shared ones). */
static kiln_heap_totals_t *kiln_heap_my_totals(void) {
  kiln_heap_tls_t *t = &kiln_heap_tls;
  if (KILN_LIKELY(t->totals != NULL)) return t->totals;
  if (!t->totals_tried) {
    t->totals_tried = true;
    for (int i = 0; i < KILN_HEAP_TOTALS; i++) {
      int expect = 0;
      if (atomic_load_explicit(&kiln_heap.slots[i].in_use, memory_order_relaxed) == 0 &&
          atomic_compare_exchange_strong(&kiln_heap.slots[i].in_use, &expect, 1)) {
        int high = atomic_load(&kiln_heap.slots_high);
        while (high < i + 1 && !atomic_compare_exchange_weak(&kiln_heap.slots_high, &high, i + 1)) {
        }
        return t->totals = &kiln_heap.slots[i];
      }
    }
  }
  return &kiln_heap.shared;
}

/* Adds to a totals field: a plain add in the thread's own slot, an atomic
 * one in the shared totals. */
static inline void kiln_heap_total_add(kiln_heap_totals_t *c, _Atomic uint64_t *field, uint64_t v) {
  if (c == &kiln_heap.shared)
    atomic_fetch_add_explicit(field, v, memory_order_relaxed);
  else
    atomic_store_explicit(field, atomic_load_explicit(field, memory_order_relaxed) + v, memory_order_relaxed);
}

/* ------------------------------------------------------------ the hooks */

/* The thread's pending live bytes into the shared count; a rise past the
 * peak makes a new peak (an epoch for the lazy per-stack snapshot). With
 * pending kept at or below 0 between allocations, the shared count is never
 * below the true live heap, and for one thread it is exact at every
 * allocation, so its peak is too; with threads it may run ahead by the
 * frees other threads have not flushed (< KILN_HEAP_FLUSH each). */
static void kiln_heap_flush(kiln_heap_tls_t *t) {
  int64_t d = t->pending;
  t->pending = 0;
  int64_t live = atomic_fetch_add_explicit(&kiln_heap.live_bytes, d, memory_order_relaxed) + d;
  if (d <= 0) return;
  int64_t peak = atomic_load_explicit(&kiln_heap.peak_bytes, memory_order_relaxed);
  while (live > peak) {
    if (atomic_compare_exchange_weak_explicit(&kiln_heap.peak_bytes, &peak, live, memory_order_relaxed,
                                              memory_order_relaxed)) {
      atomic_fetch_add_explicit(&kiln_heap.epoch, 1, memory_order_relaxed);
      break;
    }
  }
}

static inline void kiln_heap_live_add(kiln_heap_tls_t *t, int64_t bytes) {
  t->pending += bytes;
  if (t->pending > 0 || t->pending < -(int64_t)KILN_HEAP_FLUSH) kiln_heap_flush(t);
  if (KILN_UNLIKELY(!t->exit_key_set) && kiln_heap.exit_key_ok) {
    t->exit_key_set = true;
    pthread_setspecific(kiln_heap.exit_key, (void *)1);
  }
}

/* A thread ends: what it freed reaches the shared live count. */
static void kiln_heap_thread_exit(void *unused) {
  (void)unused;
  kiln_heap_flush(&kiln_heap_tls);
  kiln_heaplocal_thread_exit();
}

KILN_HOOK_TEXT void kiln_heap_on_alloc(void *p, size_t size) {
  if (p == NULL) return;
  kiln_heap_tls_t *t = &kiln_heap_tls;
  bool up = false;
  if (kiln_heap.sample != 0) {
    if (kiln_tls_alloc_countdown == 0) {
      /* This thread's first allocation: draw its countdown; the hook did
       * not count this one down yet. */
      kiln_tls_alloc_countdown = kiln_heap_next_sample(t) - (int64_t)size;
      if (kiln_tls_alloc_countdown > 0) {
        kiln_tls_last_alloc = 0;
        return;
      }
    }
    /* The countdown crossed zero inside this block: sampled; draw anew. */
    kiln_tls_alloc_countdown = kiln_heap_next_sample(t);
    double w = kiln_heap_weight(size);
    up = ((double)(kiln_heap_rand(t) >> 11) + 0.5) * 0x1p-53 < w - (double)(int64_t)w; /* w >= 1 */
  }
  kiln_livemap_prefetch(&kiln_livemap_main, (uint64_t)(uintptr_t)p); /* loads while the stack is walked */
  uint32_t id = kiln_hookstack_id(kiln_heap.unwind, kiln_heap.max_depth);
  if (kiln_livemap_put(&kiln_livemap_main, (uint64_t)(uintptr_t)p, size, id | (up ? KILN_LIVEMAP_UP : 0)) < 0) {
    atomic_fetch_add_explicit(&kiln_heap.map_failures, 1, memory_order_relaxed);
    return;
  }
  if (atomic_load_explicit(&kiln_heap.open_scopes, memory_order_relaxed) > 0)
    kiln_livemap_put(&kiln_heap.scopes, (uint64_t)(uintptr_t)p,
                     atomic_fetch_add_explicit(&kiln_heap.seq, 1, memory_order_relaxed), 0);
  if (kiln_heap.filter) kiln_heap_filter_add((uintptr_t)p, 1);
  int64_t bytes, count;
  kiln_heap_weigh(size, up, &bytes, &count);
  kiln_heap_account(id, bytes, count, 0, 0, 0);
  kiln_heap_totals_t *c = kiln_heap_my_totals();
  kiln_heap_total_add(c, &c->alloc_bytes, (uint64_t)bytes);
  kiln_heap_total_add(c, &c->alloc_count, (uint64_t)count);
  kiln_tls_last_alloc = (uintptr_t)p;
  kiln_heap_live_add(t, bytes);
}

/* Removes p from the accounting; true (with its size and stack in *out,
 * for realloc) if it was a tracked block. The program's free of the block
 * its thread allocated last, before it allocated again, is temporary. */
KILN_HOOK_TEXT static bool kiln_heap_untrack(void *p, kiln_heap_block_t *out, bool program_free) {
  if (p == NULL) return false;
  uint64_t addr = (uint64_t)(uintptr_t)p;
  if (kiln_heap.filter) {
    size_t slot = kiln_heap_filter_slot(addr);
    if (atomic_load_explicit(&kiln_heap.filter[slot], memory_order_relaxed) == 0) return false;
  }
  uint64_t size;
  uint32_t id;
  if (!kiln_livemap_take(addr, &size, &id)) {
    atomic_fetch_add_explicit(&kiln_heap.untracked_frees, 1, memory_order_relaxed);
    return false;
  }
  bool up = (id & KILN_LIVEMAP_UP) != 0;
  id &= ~(uint32_t)KILN_LIVEMAP_UP;
  if (kiln_heap.filter) kiln_heap_filter_add(addr, -1);
  uint64_t scope_seq = 0;
  uint32_t unused;
  bool scoped = atomic_load_explicit(&kiln_heap.open_scopes, memory_order_relaxed) > 0 &&
                kiln_livemap_find(&kiln_heap.scopes, addr, &scope_seq, &unused, true);
  int64_t bytes, count;
  kiln_heap_weigh(size, up, &bytes, &count);
  int64_t temp = 0;
  if (addr == kiln_tls_last_alloc) {
    kiln_tls_last_alloc = 0;
    if (program_free) temp = count;
  }
  kiln_heap_account(id, 0, 0, bytes, count, temp);
  kiln_heap_totals_t *c = kiln_heap_my_totals();
  kiln_heap_total_add(c, &c->freed_bytes, (uint64_t)bytes);
  kiln_heap_total_add(c, &c->freed_count, (uint64_t)count);
  kiln_heap_live_add(&kiln_heap_tls, -bytes);
  if (out != NULL) {
    out->size = size;
    out->stack_id = id;
    out->up = up;
    out->scoped = scoped;
    out->scope_seq = scope_seq;
  }
  return true;
}

KILN_HOOK_TEXT bool kiln_heap_on_free(void *p, kiln_heap_block_t *out) { return kiln_heap_untrack(p, out, false); }
KILN_HOOK_TEXT void kiln_heap_on_program_free(void *p) { kiln_heap_untrack(p, NULL, true); }

/* realloc failed: the block is still there, account it back as it was
 * (not a new allocation). */
void kiln_heap_restore(void *p, const kiln_heap_block_t *b) {
  int64_t bytes, count;
  kiln_heap_weigh(b->size, b->up, &bytes, &count);
  if (kiln_livemap_put(&kiln_livemap_main, (uint64_t)(uintptr_t)p, b->size,
                       b->stack_id | (b->up ? KILN_LIVEMAP_UP : 0)) < 0)
    return;
  if (b->scoped) kiln_livemap_put(&kiln_heap.scopes, (uint64_t)(uintptr_t)p, b->scope_seq, 0);
  if (kiln_heap.filter) kiln_heap_filter_add((uintptr_t)p, 1);
  kiln_heap_account(b->stack_id, 0, 0, -bytes, -count, 0);
  kiln_heap_totals_t *c = kiln_heap_my_totals();
  kiln_heap_total_add(c, &c->freed_bytes, (uint64_t)-bytes);
  kiln_heap_total_add(c, &c->freed_count, (uint64_t)-count);
  kiln_heap_live_add(&kiln_heap_tls, bytes);
}

/* ------------------------------------------------------------- reporting */

static void kiln_heap_settle_stack(kiln_stack_t *s, void *ctx) {
  uint64_t epoch = *(uint64_t *)ctx;
  atomic_store(&s->counts[KILN_COUNT_LIVE_BYTES], kiln_heap_live(s));
  atomic_store(&s->counts[KILN_COUNT_LIVE_COUNT], kiln_heap_count(s, KILN_COUNT_BASE_COUNT) +
                                                      kiln_heap_count(s, KILN_COUNT_ALLOC_COUNT) -
                                                      kiln_heap_count(s, KILN_COUNT_FREED_COUNT));
  if (kiln_heap_count(s, KILN_COUNT_PEAK_EPOCH) != epoch) {
    atomic_store(&s->counts[KILN_COUNT_PEAK_BYTES], kiln_heap_live(s));
    atomic_store(&s->counts[KILN_COUNT_PEAK_EPOCH], epoch);
  }
}

void kiln_heap_settle(void) {
  kiln_heaplocal_merge_all();
  uint64_t epoch = atomic_load(&kiln_heap.epoch);
  kiln_stacktab_foreach(kiln_heap_settle_stack, &epoch);
}

static void kiln_heap_sum(kiln_heap_totals_t *sum) {
  uint64_t v[4] = {0, 0, 0, 0};
  int high = atomic_load(&kiln_heap.slots_high);
  for (int i = -1; i < high; i++) {
    kiln_heap_totals_t *c = i < 0 ? &kiln_heap.shared : kiln_heap.slots ? &kiln_heap.slots[i] : NULL;
    if (c == NULL) break;
    v[0] += atomic_load(&c->alloc_bytes);
    v[1] += atomic_load(&c->alloc_count);
    v[2] += atomic_load(&c->freed_bytes);
    v[3] += atomic_load(&c->freed_count);
  }
  atomic_store(&sum->alloc_bytes, v[0]);
  atomic_store(&sum->alloc_count, v[1]);
  atomic_store(&sum->freed_bytes, v[2]);
  atomic_store(&sum->freed_count, v[3]);
}

static void kiln_heap_totals_clear(void) {
  int high = atomic_load(&kiln_heap.slots_high);
  for (int i = -1; i < high; i++) {
    kiln_heap_totals_t *c = i < 0 ? &kiln_heap.shared : kiln_heap.slots ? &kiln_heap.slots[i] : NULL;
    if (c == NULL) break;
    /* Read first: in a fork child, a store to a page nobody used would
     * copy it (most slots are zero: one per thread the parent had). */
    if (atomic_load_explicit(&c->alloc_bytes, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&c->alloc_count, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&c->freed_bytes, memory_order_relaxed) == 0 &&
        atomic_load_explicit(&c->freed_count, memory_order_relaxed) == 0)
      continue;
    atomic_store(&c->alloc_bytes, 0);
    atomic_store(&c->alloc_count, 0);
    atomic_store(&c->freed_bytes, 0);
    atomic_store(&c->freed_count, 0);
  }
}

/* Base := live, alloc := freed := 0: the blocks live now stay live, and
 * what came before is no longer "allocated over the run". */
static void kiln_heap_rebase_stack(kiln_stack_t *s, void *ctx) {
  (void)ctx;
  atomic_store(&s->counts[KILN_COUNT_BASE_BYTES], kiln_heap_live(s));
  atomic_store(&s->counts[KILN_COUNT_BASE_COUNT], kiln_heap_count(s, KILN_COUNT_BASE_COUNT) +
                                                      kiln_heap_count(s, KILN_COUNT_ALLOC_COUNT) -
                                                      kiln_heap_count(s, KILN_COUNT_FREED_COUNT));
  atomic_store(&s->counts[KILN_COUNT_ALLOC_BYTES], 0);
  atomic_store(&s->counts[KILN_COUNT_ALLOC_COUNT], 0);
  atomic_store(&s->counts[KILN_COUNT_FREED_BYTES], 0);
  atomic_store(&s->counts[KILN_COUNT_FREED_COUNT], 0);
  atomic_store(&s->counts[KILN_COUNT_TEMP_COUNT], 0);
}

void kiln_heap_stats(kiln_heap_stats_t *out) {
  kiln_heaplocal_merge_all(); /* counts read from the stacks are current */
  kiln_heap_totals_t sum;
  kiln_heap_sum(&sum);
  out->alloc_bytes = atomic_load(&sum.alloc_bytes);
  out->alloc_count = atomic_load(&sum.alloc_count);
  out->freed_bytes = atomic_load(&sum.freed_bytes);
  out->freed_count = atomic_load(&sum.freed_count);
  out->live_bytes = (int64_t)(kiln_heap.base_bytes + out->alloc_bytes - out->freed_bytes);
  out->live_count = (int64_t)(kiln_heap.base_count + out->alloc_count - out->freed_count);
  out->peak_bytes = atomic_load(&kiln_heap.peak_bytes);
  out->untracked_frees = atomic_load(&kiln_heap.untracked_frees);
  out->map_failures = atomic_load(&kiln_heap.map_failures);
  out->sample = kiln_heap.sample;
  kiln_livemap_stats(&kiln_livemap_main, &out->tracked_blocks, &out->map_bytes);
  out->map_peak_bytes = kiln_livemap_peak_bytes(&kiln_livemap_main);
  kiln_hookstack_stats(&out->unwind);
}

/* In the child after fork: the inherited live blocks stay (they are live
 * in the child too); what the parent allocated over its run does not. */
void kiln_heap_after_fork_child(void) {
  kiln_heap_stats_t st;
  kiln_heap_stats(&st);
  kiln_heap.base_bytes = (uint64_t)st.live_bytes;
  kiln_heap.base_count = (uint64_t)st.live_count;
  kiln_heap_totals_clear();
  kiln_stacktab_foreach(kiln_heap_rebase_stack, NULL);
  /* The parent's other threads and their pending frees are gone. */
  kiln_heap_tls.pending = 0;
  kiln_heaplocal_after_fork_child();
  atomic_store(&kiln_heap.live_bytes, st.live_bytes);
  atomic_store(&kiln_heap.peak_bytes, st.live_bytes);
  atomic_fetch_add(&kiln_heap.epoch, 1);
  atomic_store(&kiln_heap.untracked_frees, 0);
  kiln_heap_tls.rng = 0;
}

void kiln_heap_reset(void) {
  kiln_heap_totals_clear();
  kiln_heaplocal_discard_all();
  kiln_heap_tls.pending = 0;
  kiln_heap.base_bytes = kiln_heap.base_count = 0;
  atomic_store(&kiln_heap.live_bytes, 0);
  atomic_store(&kiln_heap.peak_bytes, 0);
  atomic_fetch_add(&kiln_heap.epoch, 1);
  atomic_store(&kiln_heap.untracked_frees, 0);
  kiln_livemap_clear(&kiln_livemap_main);
  if (kiln_heap.filter) memset((void *)kiln_heap.filter, 0, KILN_HEAP_FILTER);
}

/* ---------------------------------------------------------- leak scopes */

uint64_t kiln_heap_scope_begin(void) {
  atomic_fetch_add(&kiln_heap.open_scopes, 1);
  return atomic_load(&kiln_heap.seq);
}

typedef struct kiln_heap_scope_walk {
  uint64_t seq0;
  void (*fn)(uint64_t addr, uint64_t size, uint32_t stack_id, void *ctx);
  void *ctx;
} kiln_heap_scope_walk_t;

static void kiln_heap_scope_block(uint64_t addr, uint64_t seq, uint32_t unused, void *ctx) {
  (void)unused;
  kiln_heap_scope_walk_t *w = ctx;
  uint64_t size;
  uint32_t id;
  if (seq >= w->seq0 && kiln_livemap_find(&kiln_livemap_main, addr, &size, &id, false))
    w->fn(addr, size, id & ~KILN_LIVEMAP_UP, w->ctx);
}

void kiln_heap_scope_end(uint64_t seq0, void (*fn)(uint64_t addr, uint64_t size, uint32_t stack_id, void *ctx),
                         void *ctx) {
  kiln_heap_scope_walk_t w = {seq0, fn, ctx};
  kiln_livemap_foreach(&kiln_heap.scopes, kiln_heap_scope_block, &w);
  if (atomic_fetch_sub(&kiln_heap.open_scopes, 1) == 1) kiln_livemap_clear(&kiln_heap.scopes);
}

bool kiln_heap_exact(void) { return kiln_heap_active() && kiln_heap.sample == 0; }

void kiln_heap_fork_prepare(void) {
  kiln_heaplocal_fork_prepare();
  kiln_livemap_fork_prepare(&kiln_livemap_main);
  kiln_livemap_fork_prepare(&kiln_heap.scopes);
}

void kiln_heap_fork_release(void) {
  kiln_livemap_fork_release(&kiln_heap.scopes);
  kiln_livemap_fork_release(&kiln_livemap_main);
  kiln_heaplocal_fork_release();
}
