/* kiln_livemap.c — the live-allocation map: block address -> (requested
 * size, stack_id), for every block kiln tracks. Sharded by address hash;
 * each shard is an open-addressing table under a spinlock held only for a
 * probe (tens of nanoseconds), grown by rehashing (which also clears
 * tombstones). 16 bytes an entry, at most 7/8 full. Sizes of 4 GiB and
 * more keep their high bits in a small side table. Runs in the malloc hooks
 * of any thread; never in the signal handler. All shard locks are taken
 * around fork so that the child never inherits a held lock. */
#include "kiln_internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

enum { KILN_LIVEMAP_MIN = 16 };
#define KILN_LIVEMAP_EMPTY 0ull
#define KILN_LIVEMAP_TOMB 1ull
#define KILN_LIVEMAP_BIG 0xffffffffu

typedef struct kiln_livemap_entry {
  uint64_t addr;     /* 0 empty, 1 tombstone */
  uint32_t stack_id;
  uint32_t size;     /* KILN_LIVEMAP_BIG: see the shard's big list */
} kiln_livemap_entry_t;

typedef struct kiln_livemap_big {
  uint64_t addr, size;
} kiln_livemap_big_t;



kiln_livemap_t kiln_livemap_main;

static kiln_livemap_shard_t *kiln_livemap_shard(kiln_livemap_t *m, uint64_t h) {
  return &m->shards[h & (KILN_LIVEMAP_SHARDS - 1)];
}

static inline uint64_t kiln_livemap_hash(uint64_t a) {
  a ^= a >> 33;
  a *= 0xff51afd7ed558ccdull;
  a ^= a >> 33;
  return a;
}

static inline void kiln_livemap_lock(kiln_livemap_shard_t *s) {
  while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire)) sched_yield();
}
static inline void kiln_livemap_unlock(kiln_livemap_shard_t *s) {
  atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

static bool kiln_livemap_rehash(kiln_livemap_t *m, kiln_livemap_shard_t *s, size_t cap) {
  kiln_livemap_entry_t *slots = kiln_mem_map(cap * sizeof *slots);
  if (slots == NULL) return false;
  for (size_t i = 0; i < s->cap; i++) {
    uint64_t a = s->slots[i].addr;
    if (a <= KILN_LIVEMAP_TOMB) continue;
    size_t j = (size_t)(kiln_livemap_hash(a) >> 8) & (cap - 1);
    while (slots[j].addr != KILN_LIVEMAP_EMPTY) j = (j + 1) & (cap - 1);
    slots[j] = s->slots[i];
  }
  if (s->slots != NULL) {
    kiln_mem_unmap(s->slots, s->cap * sizeof *slots);
    atomic_fetch_sub(&m->bytes, s->cap * sizeof *slots);
  }
  atomic_fetch_add(&m->bytes, cap * sizeof *slots);
  s->slots = slots;
  s->cap = cap;
  s->tombs = 0;
  return true;
}

static bool kiln_livemap_big_put(kiln_livemap_shard_t *s, uint64_t addr, uint64_t size) {
  if (s->nbig == s->bigcap) {
    size_t cap = s->bigcap ? s->bigcap * 2 : 64;
    kiln_livemap_big_t *b = kiln_mem_map(cap * sizeof *b);
    if (b == NULL) return false;
    if (s->big) {
      memcpy(b, s->big, s->nbig * sizeof *b);
      kiln_mem_unmap(s->big, s->bigcap * sizeof *b);
    }
    s->big = b;
    s->bigcap = cap;
  }
  s->big[s->nbig].addr = addr;
  s->big[s->nbig].size = size;
  s->nbig++;
  return true;
}

static uint64_t kiln_livemap_big_take(kiln_livemap_shard_t *s, uint64_t addr, bool remove) {
  for (size_t i = 0; i < s->nbig; i++) {
    if (s->big[i].addr != addr) continue;
    uint64_t size = s->big[i].size;
    if (remove) s->big[i] = s->big[--s->nbig];
    return size;
  }
  return 0;
}

int kiln_livemap_put(kiln_livemap_t *m, uint64_t addr, uint64_t size, uint32_t stack_id) {
  uint64_t h = kiln_livemap_hash(addr);
  kiln_livemap_shard_t *s = kiln_livemap_shard(m, h);
  int rc = 0;
  kiln_livemap_lock(s);
  if ((s->used + s->tombs + 1) * 8 > s->cap * 7 &&
      !kiln_livemap_rehash(m, s, s->cap == 0 ? KILN_LIVEMAP_MIN
                                          : (s->used + 1) * 8 > s->cap * 4 ? s->cap * 2 : s->cap)) {
    rc = -ENOMEM;
    goto out;
  }
  size_t mask = s->cap - 1, i = (size_t)(h >> 8) & mask;
  while (s->slots[i].addr > KILN_LIVEMAP_TOMB) i = (i + 1) & mask;
  if (s->slots[i].addr == KILN_LIVEMAP_TOMB) s->tombs--;
  uint32_t small = size >= KILN_LIVEMAP_BIG ? KILN_LIVEMAP_BIG : (uint32_t)size;
  if (small == KILN_LIVEMAP_BIG && !kiln_livemap_big_put(s, addr, size)) {
    rc = -ENOMEM;
    goto out;
  }
  s->slots[i].addr = addr;
  s->slots[i].stack_id = stack_id;
  s->slots[i].size = small;
  s->used++;
out:
  kiln_livemap_unlock(s);
  return rc;
}

bool kiln_livemap_find(kiln_livemap_t *m, uint64_t addr, uint64_t *size, uint32_t *stack_id, bool remove) {
  if (addr <= KILN_LIVEMAP_TOMB) return false;
  uint64_t h = kiln_livemap_hash(addr);
  kiln_livemap_shard_t *s = kiln_livemap_shard(m, h);
  bool found = false;
  kiln_livemap_lock(s);
  if (s->cap != 0) {
    size_t mask = s->cap - 1, i = (size_t)(h >> 8) & mask;
    for (size_t n = 0; n < s->cap && s->slots[i].addr != KILN_LIVEMAP_EMPTY; n++, i = (i + 1) & mask) {
      if (s->slots[i].addr != addr) continue;
      *stack_id = s->slots[i].stack_id;
      *size = s->slots[i].size == KILN_LIVEMAP_BIG ? kiln_livemap_big_take(s, addr, remove)
                                                   : s->slots[i].size;
      found = true;
      if (!remove) break;
      /* A tombstone keeps later entries of the probe chain reachable,
       * unless the chain ends right here. */
      if (s->slots[(i + 1) & mask].addr == KILN_LIVEMAP_EMPTY) {
        s->slots[i].addr = KILN_LIVEMAP_EMPTY;
      } else {
        s->slots[i].addr = KILN_LIVEMAP_TOMB;
        s->tombs++;
      }
      s->used--;
      break;
    }
  }
  kiln_livemap_unlock(s);
  return found;
}

void kiln_livemap_foreach(kiln_livemap_t *m,
                          void (*fn)(uint64_t addr, uint64_t size, uint32_t stack_id, void *ctx), void *ctx) {
  for (int k = 0; k < KILN_LIVEMAP_SHARDS; k++) {
    kiln_livemap_shard_t *s = &m->shards[k];
    kiln_livemap_lock(s);
    for (size_t i = 0; i < s->cap; i++) {
      kiln_livemap_entry_t *e = &s->slots[i];
      if (e->addr <= KILN_LIVEMAP_TOMB) continue;
      uint64_t size = e->size == KILN_LIVEMAP_BIG ? kiln_livemap_big_take(s, e->addr, false) : e->size;
      fn(e->addr, size, e->stack_id, ctx);
    }
    kiln_livemap_unlock(s);
  }
}

void kiln_livemap_clear(kiln_livemap_t *m) {
  for (int k = 0; k < KILN_LIVEMAP_SHARDS; k++) {
    kiln_livemap_shard_t *s = &m->shards[k];
    kiln_livemap_lock(s);
    if (s->slots) memset(s->slots, 0, s->cap * sizeof *s->slots);
    s->used = s->tombs = s->nbig = 0;
    kiln_livemap_unlock(s);
  }
}

void kiln_livemap_stats(kiln_livemap_t *m, uint64_t *entries, uint64_t *bytes) {
  uint64_t n = 0;
  for (int k = 0; k < KILN_LIVEMAP_SHARDS; k++) n += m->shards[k].used;
  *entries = n;
  *bytes = atomic_load(&m->bytes);
}

void kiln_livemap_fork_prepare(kiln_livemap_t *m) {
  for (int k = 0; k < KILN_LIVEMAP_SHARDS; k++) kiln_livemap_lock(&m->shards[k]);
}

void kiln_livemap_fork_release(kiln_livemap_t *m) {
  for (int k = KILN_LIVEMAP_SHARDS; k-- > 0;) kiln_livemap_unlock(&m->shards[k]);
}
