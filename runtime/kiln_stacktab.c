/* kiln_stacktab.c — the stack table: every distinct stack once, with its
 * counters. Open addressing over an array of 32-bit references into a bump
 * arena; a stack is written whole into the arena, then published with a CAS
 * on an empty slot, so readers never see half a stack and no thread ever
 * waits on another. Entries are never removed (the table is reset whole).
 * Interning runs in the collector (and, later, in the allocation hooks);
 * never in the signal handler. */
#include "kiln_internal.h"

#include <errno.h>
#include <string.h>

typedef struct kiln_stacktab {
  kiln_arena_t arena;
  _Atomic uint32_t *slots; /* arena offset / 16 of the entry; 0 = empty */
  size_t nslots;           /* a power of two */
  size_t max_stacks;       /* stop inserting past this (load factor 1/2) */
  _Atomic uint64_t count;
  _Atomic uint64_t full_hits;
  /* Every interned entry once, in insertion order: walks visit stacks,
   * not the (mostly empty) slots. A reserved index whose ref is still 0 is
   * an insert in flight: skipped. */
  _Atomic uint32_t *dense;
  size_t dense_cap;
  _Atomic size_t ndense;
  uint32_t full_id;        /* the "[kiln: table full]" stack */
} kiln_stacktab_t;

static kiln_stacktab_t kiln_stacktab;
_Atomic uint64_t kiln_stacktab_gen;
static size_t kiln_stacktab_max_request;

static uint64_t kiln_stacktab_hash(const uint64_t *pcs, unsigned depth, unsigned flags) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)depth << 8) ^ flags;
  for (unsigned i = 0; i < depth; i++) {
    h ^= pcs[i];
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  h ^= h >> 29;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 32;
  return h;
}

static kiln_stack_t *kiln_stacktab_entry(uint32_t ref) {
  return kiln_arena_at(&kiln_stacktab.arena, (size_t)ref * 16);
}

static uint32_t kiln_stacktab_insert(const uint64_t *pcs, unsigned depth, unsigned flags,
                                     bool counted);

int kiln_stacktab_init(size_t max_stacks) {
  kiln_stacktab_t *st = &kiln_stacktab;
  if (st->slots != NULL) return 0;
  if (max_stacks < 1024) max_stacks = 1024;
  kiln_stacktab_max_request = max_stacks;
  size_t nslots = 1;
  while (nslots < max_stacks * 2) nslots <<= 1;
  /* Room for max_stacks entries of up to ~64 frames on average; the arena
   * grows in chunks as stacks come (256 KiB first), so a short run maps
   * little. Refs are 32-bit in 16-byte units: 64 GiB. */
  size_t arena = max_stacks * (sizeof(kiln_stack_t) + 64 * 8);
  int rc = kiln_arena_init(&st->arena, 256u << 10, arena);
  if (rc < 0) return rc;
  kiln_arena_alloc(&st->arena, 16); /* offset 0 means empty */
  st->slots = kiln_mem_map(nslots * sizeof *st->slots);
  st->dense_cap = max_stacks + 16;
  st->dense = kiln_mem_map(st->dense_cap * sizeof *st->dense);
  if (st->slots == NULL || st->dense == NULL) {
    kiln_mem_unmap((void *)st->slots, nslots * sizeof *st->slots);
    kiln_mem_unmap((void *)st->dense, st->dense_cap * sizeof *st->dense);
    st->slots = NULL;
    kiln_arena_destroy(&st->arena);
    return -ENOMEM;
  }
  atomic_store(&st->ndense, 0);
  st->nslots = nslots;
  st->max_stacks = max_stacks;
  atomic_store(&st->count, 0);
  atomic_store(&st->full_hits, 0);
  st->full_id = kiln_stacktab_insert(NULL, 0, KILN_STACK_FULL, false);
  return 0;
}

static void kiln_stacktab_free(kiln_stacktab_t *st) {
  if (st->slots != NULL) {
    kiln_mem_unmap((void *)st->slots, st->nslots * sizeof *st->slots);
    kiln_mem_unmap((void *)st->dense, st->dense_cap * sizeof *st->dense);
    kiln_arena_destroy(&st->arena);
    st->slots = NULL;
    st->dense = NULL;
  }
}

void kiln_stacktab_destroy(void) { kiln_stacktab_free(&kiln_stacktab); }

int kiln_stacktab_renew(uint64_t mask) {
  kiln_stacktab_t old = kiln_stacktab;
  memset(&kiln_stacktab, 0, sizeof kiln_stacktab);
  if (kiln_stacktab_init(kiln_stacktab_max_request) < 0) {
    kiln_stacktab = old;
    kiln_stacktab_clear_counts(mask);
    return -ENOMEM;
  }
  atomic_fetch_add_explicit(&kiln_stacktab_gen, 1, memory_order_acq_rel);
  kiln_stacktab_free(&old);
  return 0;
}

int kiln_stacktab_reset(void) {
  atomic_fetch_add_explicit(&kiln_stacktab_gen, 1, memory_order_acq_rel);
  kiln_stacktab_destroy();
  return kiln_stacktab_init(kiln_stacktab_max_request);
}

static uint32_t kiln_stacktab_insert(const uint64_t *pcs, unsigned depth, unsigned flags,
                                     bool counted) {
  kiln_stacktab_t *st = &kiln_stacktab;
  uint64_t h = kiln_stacktab_hash(pcs, depth, flags);
  size_t mask = st->nslots - 1;
  uint32_t mine = 0;
  for (size_t i = (size_t)h & mask, probes = 0; probes < st->nslots; i = (i + 1) & mask, probes++) {
    uint32_t ref = atomic_load_explicit(&st->slots[i], memory_order_acquire);
    if (ref == 0) {
      if (mine == 0) {
        if (counted && atomic_load_explicit(&st->count, memory_order_relaxed) >= st->max_stacks)
          goto full;
        size_t bytes = sizeof(kiln_stack_t) + (size_t)depth * 8;
        size_t off = 0;
        kiln_stack_t *e = kiln_arena_alloc_at(&st->arena, bytes, &off);
        if (e == NULL) goto full;
        e->hash = h;
        e->depth = depth;
        e->flags = flags;
        for (int k = 0; k < KILN_COUNT_KINDS; k++) atomic_store_explicit(&e->counts[k], 0, memory_order_relaxed);
        if (depth) memcpy(e->pcs, pcs, (size_t)depth * 8);
        mine = (uint32_t)(off / 16);
      }
      uint32_t expect = 0;
      if (atomic_compare_exchange_strong_explicit(&st->slots[i], &expect, mine,
                                                  memory_order_acq_rel, memory_order_acquire)) {
        if (counted) atomic_fetch_add_explicit(&st->count, 1, memory_order_relaxed);
        size_t at = atomic_fetch_add_explicit(&st->ndense, 1, memory_order_relaxed);
        if (at < st->dense_cap) atomic_store_explicit(&st->dense[at], mine, memory_order_release);
        return mine;
      }
      ref = expect; /* another thread published here first */
    }
    kiln_stack_t *e = kiln_stacktab_entry(ref);
    if (e->hash == h && e->depth == depth && e->flags == flags &&
        (depth == 0 || memcmp(e->pcs, pcs, (size_t)depth * 8) == 0))
      return ref; /* our copy, if any, stays unused in the arena */
  }
full:
  atomic_fetch_add_explicit(&st->full_hits, 1, memory_order_relaxed);
  return st->full_id;
}

uint32_t kiln_stacktab_intern(const uint64_t *pcs, unsigned depth, unsigned flags) {
  return kiln_stacktab_insert(pcs, depth, flags, true);
}

kiln_stack_t *kiln_stacktab_get(uint32_t id) { return kiln_stacktab_entry(id); }

uint32_t kiln_stacktab_id(const kiln_stack_t *s) {
  size_t off = kiln_arena_offset(&kiln_stacktab.arena, s);
  return off == SIZE_MAX ? 0 : (uint32_t)(off / 16);
}

void kiln_stacktab_foreach(void (*fn)(kiln_stack_t *s, void *ctx), void *ctx) {
  kiln_stacktab_t *st = &kiln_stacktab;
  size_t n = atomic_load_explicit(&st->ndense, memory_order_acquire);
  if (n > st->dense_cap) n = st->dense_cap;
  for (size_t i = 0; i < n; i++) {
    uint32_t ref = atomic_load_explicit(&st->dense[i], memory_order_acquire);
    if (ref != 0) fn(kiln_stacktab_entry(ref), ctx);
  }
}

_Static_assert(KILN_COUNT_KINDS <= 64, "count masks are 64-bit");

/* Only counters that are not zero are written: in a fork child, a page of
 * the table it inherited is copied on its first write. */
static void kiln_stacktab_zero(kiln_stack_t *s, void *ctx) {
  uint64_t mask = *(uint64_t *)ctx;
  for (int k = 0; k < KILN_COUNT_KINDS; k++)
    if (mask & (1ull << k) && atomic_load_explicit(&s->counts[k], memory_order_relaxed) != 0)
      atomic_store_explicit(&s->counts[k], 0, memory_order_relaxed);
}

void kiln_stacktab_clear_counts(uint64_t mask) { kiln_stacktab_foreach(kiln_stacktab_zero, &mask); }

void kiln_stacktab_stats(kiln_stacktab_stats_t *out) {
  out->stacks = atomic_load_explicit(&kiln_stacktab.count, memory_order_relaxed);
  out->full_hits = atomic_load_explicit(&kiln_stacktab.full_hits, memory_order_relaxed);
  out->bytes = atomic_load_explicit(&kiln_stacktab.arena.mapped, memory_order_relaxed) +
               kiln_stacktab.nslots * sizeof(uint32_t);
}
