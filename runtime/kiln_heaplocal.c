/* kiln_heaplocal.c — per-thread allocation counters per stack, merged into
 * the stack table when a dump (or anything that reads the counts) asks,
 * when an entry is evicted, and when the thread ends: the hooks then write
 * only their own thread's memory, never a counter another thread writes.
 *
 * Peak per stack stays the lazy snapshot of kiln_heap.c, split by thread:
 * a stack's live bytes at the peak are the sum of each thread's part at the
 * peak, and each part is snapshot the first time its thread changes it
 * after a new peak (epoch). A merge adds to the shared PEAK_BYTES the part
 * of the merged operations that came before the peak, once per epoch.
 *
 * Hook context for kiln_heaplocal_add (guard held); the merges run in
 * normal context. Each thread's table has a spinlock, taken by its owner
 * only to evict and by a merge; merges of one stack are serialized by a
 * striped lock. The hot path takes no lock. */
#include "kiln_internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

enum {
  KILN_HL_ENTRIES = 256, /* per thread, direct-mapped by stack id */
  KILN_HL_TABLES = 4096, /* threads with a table at once; others count shared */
  KILN_HL_STRIPES = 256,
};

typedef struct kiln_hl_entry {
  /* Written by the owner with plain (relaxed) stores, read by merges: what
   * the hooks touch, in the entry's first cache line. */
  _Alignas(64) _Atomic uint32_t id;   /* 0: empty */
  _Atomic uint64_t v[KILN_HL_VALUES]; /* cumulative since the entry began */
  _Atomic uint64_t epoch;             /* of peak_live */
  _Atomic int64_t peak_live;          /* this part's live bytes at that peak */
  /* Under the table's lock. */
  uint64_t merged[KILN_HL_VALUES];
  uint64_t contrib_epoch; /* the peak this entry's share was given for */
} kiln_hl_entry_t;

typedef struct kiln_hl_table {
  atomic_flag lock;
  _Atomic bool owned; /* by a live thread */
  uint64_t gen;       /* stack table generation of the ids */
  kiln_hl_entry_t e[KILN_HL_ENTRIES];
} kiln_hl_table_t;

static __thread kiln_hl_table_t *kiln_tls_hl __attribute__((tls_model("initial-exec")));
static __thread bool kiln_tls_hl_tried __attribute__((tls_model("initial-exec")));
static __thread bool kiln_tls_hl_evicting __attribute__((tls_model("initial-exec"))); /* holds its table's lock */
/* A slot is claimed (kiln_hl_ntables) before its table is published in it:
 * readers load it with acquire and skip a NULL. */
static _Atomic(kiln_hl_table_t *) kiln_hl_tables[KILN_HL_TABLES];
static _Atomic int kiln_hl_ntables;
static atomic_flag kiln_hl_stripes[KILN_HL_STRIPES];
static _Atomic uint64_t *kiln_hl_epoch;
static _Atomic uint64_t kiln_hl_skipped; /* merges given up (a lock held at a crash) */

void kiln_heaplocal_init(_Atomic uint64_t *epoch) { kiln_hl_epoch = epoch; }

static inline size_t kiln_hl_slot(uint32_t id) { return (size_t)((id * 0x9e3779b1u) >> 24) & (KILN_HL_ENTRIES - 1); }

/* spin: 0 waits for ever; else gives up after that many tries. */
static bool kiln_hl_lock(atomic_flag *l, long spin) {
  for (long n = 0; atomic_flag_test_and_set_explicit(l, memory_order_acquire); n++) {
    if (spin != 0 && n >= spin) return false;
    sched_yield();
  }
  return true;
}
static void kiln_hl_unlock(atomic_flag *l) { atomic_flag_clear_explicit(l, memory_order_release); }

static inline uint64_t kiln_hl_get(const _Atomic uint64_t *v) { return atomic_load_explicit(v, memory_order_relaxed); }

static inline uint64_t kiln_hl_shared_live(kiln_stack_t *s) {
  return kiln_hl_get(&s->counts[KILN_COUNT_BASE_BYTES]) + kiln_hl_get(&s->counts[KILN_COUNT_ALLOC_BYTES]) -
         kiln_hl_get(&s->counts[KILN_COUNT_FREED_BYTES]);
}

static const kiln_count_kind_t kiln_hl_kinds[KILN_HL_VALUES] = {
    KILN_COUNT_ALLOC_BYTES, KILN_COUNT_ALLOC_COUNT, KILN_COUNT_FREED_BYTES, KILN_COUNT_FREED_COUNT,
    KILN_COUNT_TEMP_COUNT};

/* Adds what e counted since its last merge to its stack. Under the
 * table's lock. spin: as kiln_hl_lock. */
static bool kiln_hl_merge(kiln_hl_entry_t *e, long spin) {
  uint32_t id = atomic_load_explicit(&e->id, memory_order_relaxed);
  if (id == 0) return true;
  atomic_flag *stripe = &kiln_hl_stripes[id & (KILN_HL_STRIPES - 1)];
  if (!kiln_hl_lock(stripe, spin)) return false;
  kiln_stack_t *s = kiln_stacktab_get(id);
  uint64_t v[KILN_HL_VALUES];
  for (int k = 0; k < KILN_HL_VALUES; k++) v[k] = kiln_hl_get(&e->v[k]);
  uint64_t epoch = atomic_load_explicit(kiln_hl_epoch, memory_order_relaxed);
  /* The shared part first: unchanged since the peak, it is what it was. */
  if (kiln_hl_get(&s->counts[KILN_COUNT_PEAK_EPOCH]) != epoch) {
    atomic_store_explicit(&s->counts[KILN_COUNT_PEAK_BYTES], kiln_hl_shared_live(s), memory_order_relaxed);
    atomic_store_explicit(&s->counts[KILN_COUNT_PEAK_EPOCH], epoch, memory_order_relaxed);
  }
  if (e->contrib_epoch != epoch) {
    int64_t live_now = (int64_t)(v[KILN_HL_ALLOC_BYTES] - v[KILN_HL_FREED_BYTES]);
    int64_t at_peak = atomic_load_explicit(&e->epoch, memory_order_relaxed) == epoch
                          ? atomic_load_explicit(&e->peak_live, memory_order_relaxed)
                          : live_now;
    int64_t merged_live = (int64_t)(e->merged[KILN_HL_ALLOC_BYTES] - e->merged[KILN_HL_FREED_BYTES]);
    atomic_fetch_add_explicit(&s->counts[KILN_COUNT_PEAK_BYTES], (uint64_t)(at_peak - merged_live),
                              memory_order_relaxed);
    e->contrib_epoch = epoch;
  }
  for (int k = 0; k < KILN_HL_VALUES; k++) {
    if (v[k] != e->merged[k])
      atomic_fetch_add_explicit(&s->counts[kiln_hl_kinds[k]], v[k] - e->merged[k], memory_order_relaxed);
    e->merged[k] = v[k];
  }
  kiln_hl_unlock(stripe);
  return true;
}

static void kiln_hl_clear(kiln_hl_entry_t *e, uint32_t id) {
  for (int k = 0; k < KILN_HL_VALUES; k++) {
    atomic_store_explicit(&e->v[k], 0, memory_order_relaxed);
    e->merged[k] = 0;
  }
  atomic_store_explicit(&e->epoch, 0, memory_order_relaxed);
  atomic_store_explicit(&e->peak_live, 0, memory_order_relaxed);
  e->contrib_epoch = 0;
  atomic_store_explicit(&e->id, id, memory_order_relaxed);
}

/* The table's ids belong to an older stack table: drop them (under lock). */
static void kiln_hl_check_gen(kiln_hl_table_t *t) {
  uint64_t gen = kiln_stacktab_generation();
  if (t->gen == gen) return;
  for (int i = 0; i < KILN_HL_ENTRIES; i++) kiln_hl_clear(&t->e[i], 0);
  t->gen = gen;
}

static kiln_hl_table_t *kiln_hl_table_new(void) {
  kiln_tls_hl_tried = true;
  int n = atomic_load_explicit(&kiln_hl_ntables, memory_order_acquire);
  for (int i = 0; i < n; i++) { /* a table a finished thread left */
    kiln_hl_table_t *t = atomic_load_explicit(&kiln_hl_tables[i], memory_order_acquire);
    bool expect = false;
    if (t != NULL && !atomic_load_explicit(&t->owned, memory_order_relaxed) &&
        atomic_compare_exchange_strong(&t->owned, &expect, true))
      return kiln_tls_hl = t;
  }
  kiln_hl_table_t *t = kiln_mem_map(sizeof *t);
  if (t == NULL) return NULL;
  t->gen = kiln_stacktab_generation();
  atomic_store(&t->owned, true);
  int at = atomic_fetch_add(&kiln_hl_ntables, 1);
  if (at >= KILN_HL_TABLES) {
    atomic_fetch_sub(&kiln_hl_ntables, 1);
    kiln_mem_unmap(t, sizeof *t);
    return NULL;
  }
  atomic_store_explicit(&kiln_hl_tables[at], t, memory_order_release);
  return kiln_tls_hl = t;
}

/* The slot of e goes to stack id (or the table changed generation): what
 * it held is merged first. Off the hot path. */
__attribute__((noinline)) static void kiln_hl_claim(kiln_hl_table_t *t, kiln_hl_entry_t *e, uint32_t id) {
  kiln_hl_lock(&t->lock, 0);
  kiln_tls_hl_evicting = true;
  kiln_hl_check_gen(t);
  kiln_hl_merge(e, 0);
  kiln_hl_clear(e, id);
  kiln_tls_hl_evicting = false;
  kiln_hl_unlock(&t->lock);
}

/* This thread's part of the stack, saved the first time it changes after
 * a new peak. */
__attribute__((noinline)) static void kiln_hl_snapshot(kiln_hl_entry_t *e, uint64_t epoch) {
  atomic_store_explicit(&e->peak_live,
                        (int64_t)(kiln_hl_get(&e->v[KILN_HL_ALLOC_BYTES]) - kiln_hl_get(&e->v[KILN_HL_FREED_BYTES])),
                        memory_order_relaxed);
  atomic_store_explicit(&e->epoch, epoch, memory_order_relaxed);
}

bool kiln_heaplocal_add(uint32_t id, const int64_t d[KILN_HL_VALUES]) {
  kiln_hl_table_t *t = kiln_tls_hl;
  if (KILN_UNLIKELY(t == NULL) && (kiln_tls_hl_tried || (t = kiln_hl_table_new()) == NULL)) return false;
  kiln_hl_entry_t *e = &t->e[kiln_hl_slot(id)];
  if (KILN_UNLIKELY(atomic_load_explicit(&e->id, memory_order_relaxed) != id || t->gen != kiln_stacktab_generation()))
    kiln_hl_claim(t, e, id);
  uint64_t epoch = atomic_load_explicit(kiln_hl_epoch, memory_order_relaxed);
  if (KILN_UNLIKELY(atomic_load_explicit(&e->epoch, memory_order_relaxed) != epoch)) kiln_hl_snapshot(e, epoch);
  /* Unconditional adds (a zero adds nothing): no branch per value. */
#define KILN_HL_BUMP(k) atomic_store_explicit(&e->v[k], kiln_hl_get(&e->v[k]) + (uint64_t)d[k], memory_order_relaxed)
  _Static_assert(KILN_HL_VALUES == 5, "one bump per value");
  KILN_HL_BUMP(0);
  KILN_HL_BUMP(1);
  KILN_HL_BUMP(2);
  KILN_HL_BUMP(3);
  KILN_HL_BUMP(4);
#undef KILN_HL_BUMP
  return true;
}

void kiln_heaplocal_merge_all(void) {
  int n = atomic_load_explicit(&kiln_hl_ntables, memory_order_acquire);
  long spin = 0;
  for (int i = 0; i < n; i++) {
    kiln_hl_table_t *t = atomic_load_explicit(&kiln_hl_tables[i], memory_order_acquire);
    if (t == NULL) continue;
    /* A fatal signal inside this thread's own eviction: its table's lock
     * is held below us. */
    if ((t == kiln_tls_hl && kiln_tls_hl_evicting) || !kiln_hl_lock(&t->lock, spin)) {
      atomic_fetch_add_explicit(&kiln_hl_skipped, 1, memory_order_relaxed);
      continue;
    }
    kiln_hl_check_gen(t);
    for (int k = 0; k < KILN_HL_ENTRIES; k++)
      if (!kiln_hl_merge(&t->e[k], spin)) atomic_fetch_add_explicit(&kiln_hl_skipped, 1, memory_order_relaxed);
    kiln_hl_unlock(&t->lock);
  }
}

void kiln_heaplocal_discard_all(void) {
  int n = atomic_load_explicit(&kiln_hl_ntables, memory_order_acquire);
  for (int i = 0; i < n; i++) {
    kiln_hl_table_t *t = atomic_load_explicit(&kiln_hl_tables[i], memory_order_acquire);
    if (t == NULL) continue;
    kiln_hl_lock(&t->lock, 0);
    for (int k = 0; k < KILN_HL_ENTRIES; k++) {
      kiln_hl_entry_t *e = &t->e[k];
      for (int j = 0; j < KILN_HL_VALUES; j++) e->merged[j] = kiln_hl_get(&e->v[j]);
      e->contrib_epoch = 0;
      atomic_store_explicit(&e->epoch, 0, memory_order_relaxed);
    }
    kiln_hl_unlock(&t->lock);
  }
}

void kiln_heaplocal_thread_exit(void) {
  kiln_hl_table_t *t = kiln_tls_hl;
  if (t == NULL) return;
  kiln_hl_lock(&t->lock, 0);
  kiln_hl_check_gen(t);
  for (int k = 0; k < KILN_HL_ENTRIES; k++) {
    kiln_hl_merge(&t->e[k], 0);
    kiln_hl_clear(&t->e[k], 0);
  }
  kiln_hl_unlock(&t->lock);
  kiln_tls_hl = NULL; /* a late allocation of this thread counts shared */
  atomic_store_explicit(&t->owned, false, memory_order_release);
}

void kiln_heaplocal_fork_prepare(void) {
  int n = atomic_load_explicit(&kiln_hl_ntables, memory_order_acquire);
  for (int i = 0; i < n; i++)
    if (kiln_hl_tables[i] != NULL) kiln_hl_lock(&kiln_hl_tables[i]->lock, 0);
  for (int i = 0; i < KILN_HL_STRIPES; i++) kiln_hl_lock(&kiln_hl_stripes[i], 0);
}

void kiln_heaplocal_fork_release(void) {
  for (int i = KILN_HL_STRIPES; i-- > 0;) kiln_hl_unlock(&kiln_hl_stripes[i]);
  int n = atomic_load_explicit(&kiln_hl_ntables, memory_order_acquire);
  for (int i = n; i-- > 0;)
    if (kiln_hl_tables[i] != NULL) kiln_hl_unlock(&kiln_hl_tables[i]->lock);
}

/* In the child: the parent's other threads are gone; their tables (merged
 * by the caller) are free for the child's threads. */
void kiln_heaplocal_after_fork_child(void) {
  int n = atomic_load_explicit(&kiln_hl_ntables, memory_order_acquire);
  for (int i = 0; i < n; i++)
    if (kiln_hl_tables[i] != NULL && kiln_hl_tables[i] != kiln_tls_hl) atomic_store(&kiln_hl_tables[i]->owned, false);
}

uint64_t kiln_heaplocal_skipped(void) { return atomic_load_explicit(&kiln_hl_skipped, memory_order_relaxed); }
