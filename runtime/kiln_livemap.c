/* kiln_livemap.c — the live-allocation map: block address -> (requested
 * size, stack_id), for every block kiln tracks. Sharded by address hash;
 * each shard is a linear-probing table under a spinlock held only for one
 * probe (tens of nanoseconds). Deletion shifts the rest of the probe run
 * back (no tombstones, so runs stay as short as the load allows); the
 * table grows by a quarter when 4/5 full, so it is 16 bytes an entry at
 * 64-80% load: 20-25 bytes a live block, with runs of a few entries (one
 * or two cache lines a probe). Sizes of 4 GiB and more keep their high
 * bits in a small side list. Runs in the malloc hooks of any thread; never
 * in the signal handler. All shard locks are taken around fork so that the
 * child never inherits a held lock. */
#include "kiln_internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

enum { KILN_LIVEMAP_MIN = 16 };
#define KILN_LIVEMAP_BIG 0xffffffffu

typedef struct kiln_livemap_entry {
  uint64_t addr; /* 0: empty */
  uint32_t stack_id;
  uint32_t size; /* KILN_LIVEMAP_BIG: see the shard's big list */
} kiln_livemap_entry_t;

typedef struct kiln_livemap_big {
  uint64_t addr, size;
} kiln_livemap_big_t;

kiln_livemap_t kiln_livemap_main;

static inline uint64_t kiln_livemap_hash(uint64_t a) {
  a ^= a >> 33;
  a *= 0xff51afd7ed558ccdull;
  a ^= a >> 33;
  return a;
}

static kiln_livemap_shard_t *kiln_livemap_shard(kiln_livemap_t *m, uint64_t h) {
  return &m->shards[h & (KILN_LIVEMAP_SHARDS - 1)];
}

/* The home slot: the hash's high bits scaled to cap (any size, not only
 * powers of two, so that growth can be by a quarter). */
static inline size_t kiln_livemap_home(uint64_t h, size_t cap) {
  __extension__ typedef unsigned __int128 kiln_u128;
  return (size_t)(((kiln_u128)h * cap) >> 64);
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
    if (a == 0) continue;
    size_t j = kiln_livemap_home(kiln_livemap_hash(a), cap);
    while (slots[j].addr != 0)
      if (++j == cap) j = 0;
    slots[j] = s->slots[i];
  }
  if (s->slots != NULL) {
    kiln_mem_unmap(s->slots, s->cap * sizeof *slots);
    atomic_fetch_sub(&m->bytes, s->cap * sizeof *slots);
  }
  atomic_fetch_add(&m->bytes, cap * sizeof *slots);
  s->slots = slots;
  s->cap = cap;
  return true;
}

static bool kiln_livemap_big_put(kiln_livemap_shard_t *s, uint64_t addr, uint64_t size) {
  for (size_t i = 0; i < s->nbig; i++)
    if (s->big[i].addr == addr) return s->big[i].size = size, true;
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

void kiln_livemap_prefetch(kiln_livemap_t *m, uint64_t addr) {
  uint64_t h = kiln_livemap_hash(addr);
  kiln_livemap_shard_t *s = kiln_livemap_shard(m, h);
  kiln_livemap_entry_t *slots = s->slots; /* racy on purpose: only a hint */
  size_t cap = s->cap;
  if (slots != NULL) __builtin_prefetch(&slots[kiln_livemap_home(h, cap)], 1);
}

int kiln_livemap_put(kiln_livemap_t *m, uint64_t addr, uint64_t size, uint32_t stack_id) {
  if (addr == 0) return -EINVAL;
  uint64_t h = kiln_livemap_hash(addr);
  kiln_livemap_shard_t *s = kiln_livemap_shard(m, h);
  int rc = 0;
  kiln_livemap_lock(s);
  if ((s->used + 1) * 5 > s->cap * 4 &&
      !kiln_livemap_rehash(m, s, s->cap < KILN_LIVEMAP_MIN ? KILN_LIVEMAP_MIN : s->cap + (s->cap + 3) / 4)) {
    rc = -ENOMEM;
    goto out;
  }
  uint32_t small = size >= KILN_LIVEMAP_BIG ? KILN_LIVEMAP_BIG : (uint32_t)size;
  if (small == KILN_LIVEMAP_BIG && !kiln_livemap_big_put(s, addr, size)) {
    rc = -ENOMEM;
    goto out;
  }
  size_t i = kiln_livemap_home(h, s->cap);
  /* An address already present was freed behind kiln's back (a path no
   * hook sees): the new block replaces it. */
  while (s->slots[i].addr != 0 && s->slots[i].addr != addr)
    if (++i == s->cap) i = 0;
  if (s->slots[i].addr == 0) s->used++;
  s->slots[i].addr = addr;
  s->slots[i].stack_id = stack_id;
  s->slots[i].size = small;
out:
  kiln_livemap_unlock(s);
  return rc;
}

/* Empties slot i, moving later entries of its run back so that every
 * entry stays reachable from its home without tombstones. */
static void kiln_livemap_erase(kiln_livemap_shard_t *s, size_t i) {
  size_t cap = s->cap, j = i;
  for (;;) {
    if (++j == cap) j = 0;
    uint64_t a = s->slots[j].addr;
    if (a == 0) break;
    size_t home = kiln_livemap_home(kiln_livemap_hash(a), cap);
    /* j's entry may fill the hole at i unless its home lies after i
     * (cyclically, in (i, j]). */
    size_t dist_home = j >= home ? j - home : j + cap - home, dist_hole = j >= i ? j - i : j + cap - i;
    if (dist_home >= dist_hole) {
      s->slots[i] = s->slots[j];
      i = j;
    }
  }
  s->slots[i].addr = 0;
  s->used--;
}

bool kiln_livemap_find(kiln_livemap_t *m, uint64_t addr, uint64_t *size, uint32_t *stack_id, bool remove) {
  if (addr == 0) return false;
  uint64_t h = kiln_livemap_hash(addr);
  kiln_livemap_shard_t *s = kiln_livemap_shard(m, h);
  bool found = false;
  kiln_livemap_lock(s);
  if (s->cap != 0) {
    size_t i = kiln_livemap_home(h, s->cap);
    for (size_t n = 0; n < s->cap && s->slots[i].addr != 0; n++) {
      if (s->slots[i].addr == addr) {
        *stack_id = s->slots[i].stack_id;
        *size = s->slots[i].size == KILN_LIVEMAP_BIG ? kiln_livemap_big_take(s, addr, remove)
                                                     : s->slots[i].size;
        found = true;
        if (remove) kiln_livemap_erase(s, i);
        break;
      }
      if (++i == s->cap) i = 0;
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
      if (e->addr == 0) continue;
      uint64_t size = e->size == KILN_LIVEMAP_BIG ? kiln_livemap_big_take(s, e->addr, false) : e->size;
      fn(e->addr, size, e->stack_id & ~KILN_LIVEMAP_UP, ctx);
    }
    kiln_livemap_unlock(s);
  }
}

void kiln_livemap_clear(kiln_livemap_t *m) {
  for (int k = 0; k < KILN_LIVEMAP_SHARDS; k++) {
    kiln_livemap_shard_t *s = &m->shards[k];
    kiln_livemap_lock(s);
    if (s->slots) memset(s->slots, 0, s->cap * sizeof *s->slots);
    s->used = 0;
    s->nbig = 0;
    kiln_livemap_unlock(s);
  }
}

void kiln_livemap_stats(kiln_livemap_t *m, uint64_t *entries, uint64_t *bytes) {
  uint64_t n = 0;
  /* Each shard's count under its lock: hooks change it meanwhile (a
   * plain read would be a data race; TSan in make test says so). */
  for (int k = 0; k < KILN_LIVEMAP_SHARDS; k++) {
    kiln_livemap_lock(&m->shards[k]);
    n += m->shards[k].used;
    kiln_livemap_unlock(&m->shards[k]);
  }
  *entries = n;
  *bytes = atomic_load(&m->bytes);
}

void kiln_livemap_fork_prepare(kiln_livemap_t *m) {
  for (int k = 0; k < KILN_LIVEMAP_SHARDS; k++) kiln_livemap_lock(&m->shards[k]);
}

void kiln_livemap_fork_release(kiln_livemap_t *m) {
  for (int k = KILN_LIVEMAP_SHARDS; k-- > 0;) kiln_livemap_unlock(&m->shards[k]);
}
