/* kiln_livemap.c — the live-allocation map: block address -> (requested
 * size, stack_id), for every block kiln tracks. Sharded by the address's
 * 64 MiB region (a glibc arena's heap: one thread's blocks), then its hash;
 * each shard is a Robin Hood table (linear probing where an entry far from
 * its home slot takes the place of one nearer to its own) under a spinlock
 * held only for one probe (tens of nanoseconds). Each entry keeps its
 * distance from home in the top byte of its address word (user addresses
 * are below 2^56 on x86-64), so a lookup stops at the first entry nearer
 * home than itself, and a deletion shifts back only the entries that are
 * not at home, without hashing anything again: every call touches one or
 * two slot lines. The table grows by a quarter when 4/5 full (or when a
 * distance would pass 255), so it is 16 bytes an entry at 64-80% load:
 * 20-25 bytes a live block; a shard under half full shrinks to two
 * thirds full. Sizes of 4 GiB and more keep their high bits
 * in a small side list. Runs in the malloc hooks of any thread; never in
 * the signal handler. All shard locks are taken around fork so that the
 * child never inherits a held lock. */
#include "kiln_internal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

enum { KILN_LIVEMAP_MIN = 16, KILN_LIVEMAP_DIST_SHIFT = 56, KILN_LIVEMAP_DIST_MAX = 255 };
#define KILN_LIVEMAP_BIG 0xffffffffu
#define KILN_LIVEMAP_ADDR ((1ull << KILN_LIVEMAP_DIST_SHIFT) - 1)
#define KILN_LIVEMAP_DIST1 (1ull << KILN_LIVEMAP_DIST_SHIFT)

typedef struct kiln_livemap_entry { /* 16 bytes (kiln_livemap_prefetch) */
  uint64_t key; /* address | distance from home << 56; 0: empty */
  uint32_t stack_id;
  uint32_t size; /* KILN_LIVEMAP_BIG: see the shard's big list */
} kiln_livemap_entry_t;

typedef struct kiln_livemap_big {
  uint64_t addr, size;
} kiln_livemap_big_t;

_Static_assert(sizeof(kiln_livemap_entry_t) == 16, "kiln_livemap_prefetch assumes 16-byte slots");

kiln_livemap_t kiln_livemap_main;

static inline unsigned kiln_livemap_dist(uint64_t key) { return (unsigned)(key >> KILN_LIVEMAP_DIST_SHIFT); }

static inline void kiln_livemap_lock(kiln_livemap_shard_t *s) {
  while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire)) sched_yield();
}
static inline void kiln_livemap_unlock(kiln_livemap_shard_t *s) {
  atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

/* Places e (its key an address, distance 0) Robin Hood's way; false if a
 * distance would pass the byte it is kept in (then *e holds the entry
 * still to be placed, and the table is consistent without it). */
static bool kiln_livemap_place(kiln_livemap_entry_t *slots, size_t cap, kiln_livemap_entry_t *e, size_t i,
                               unsigned d) {
  kiln_livemap_entry_t carry = *e;
  carry.key = (carry.key & KILN_LIVEMAP_ADDR) | (uint64_t)d << KILN_LIVEMAP_DIST_SHIFT;
  for (;;) {
    uint64_t k = slots[i].key;
    if (k == 0) {
      slots[i] = carry;
      return true;
    }
    if (kiln_livemap_dist(k) < kiln_livemap_dist(carry.key)) { /* the nearer one moves on */
      kiln_livemap_entry_t t = slots[i];
      slots[i] = carry;
      carry = t;
    }
    if (kiln_livemap_dist(carry.key) == KILN_LIVEMAP_DIST_MAX) {
      carry.key &= KILN_LIVEMAP_ADDR;
      *e = carry;
      return false;
    }
    carry.key += KILN_LIVEMAP_DIST1;
    if (++i == cap) i = 0;
  }
}

static bool kiln_livemap_rehash(kiln_livemap_t *m, kiln_livemap_shard_t *s, size_t cap) {
  for (;;) {
    kiln_livemap_entry_t *slots = kiln_mem_map(cap * sizeof *slots);
    if (slots == NULL) return false;
    bool ok = true;
    for (size_t i = 0; i < s->cap && ok; i++) {
      kiln_livemap_entry_t e = s->slots[i];
      if (e.key == 0) continue;
      e.key &= KILN_LIVEMAP_ADDR;
      ok = kiln_livemap_place(slots, cap, &e, kiln_livemap_home(kiln_livemap_hash(e.key), cap), 0);
    }
    if (!ok) { /* a run of 255 (not seen with this hash at 80%): larger */
      kiln_mem_unmap(slots, cap * sizeof *slots);
      /* Addresses whose hashes agree in all the bits a home is made of
       * would make a table of any size fail: give up (the caller counts a
       * map failure) rather than grow without end. */
      if (cap > 8 * (s->used + 64)) return false;
      cap += cap / 2;
      continue;
    }
    if (s->slots != NULL) {
      kiln_mem_unmap(s->slots, s->cap * sizeof *slots);
      atomic_fetch_sub(&m->bytes, s->cap * sizeof *slots);
    }
    uint64_t now = atomic_fetch_add(&m->bytes, cap * sizeof *slots) + cap * sizeof *slots;
    uint64_t peak = atomic_load_explicit(&m->bytes_peak, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak_explicit(&m->bytes_peak, &peak, now, memory_order_relaxed,
                                                                memory_order_relaxed)) {
    }
    s->slots = slots;
    s->cap = cap;
    return true;
  }
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

/* The slot of addr in s, or where its probe stopped (*at, *dist): the
 * first empty slot or entry nearer its home than addr would be. */
static inline kiln_livemap_entry_t *kiln_livemap_probe(kiln_livemap_shard_t *s, uint64_t h, uint64_t addr,
                                                       size_t *at, unsigned *dist) {
  size_t cap = s->cap, i = kiln_livemap_home(h, cap);
  uint64_t want = addr; /* addr at distance d, as it would be stored */
  for (unsigned d = 0;; d++, want += KILN_LIVEMAP_DIST1) {
    uint64_t k = s->slots[i].key;
    if (k == want) return &s->slots[i];
    if (k == 0 || kiln_livemap_dist(k) < d || d == KILN_LIVEMAP_DIST_MAX) {
      *at = i;
      *dist = d;
      return NULL;
    }
    if (++i == cap) i = 0;
  }
}

int kiln_livemap_put(kiln_livemap_t *m, uint64_t addr, uint64_t size, uint32_t stack_id) {
  if (addr == 0 || addr > KILN_LIVEMAP_ADDR) return -EINVAL;
  uint64_t h = kiln_livemap_hash(addr);
  kiln_livemap_shard_t *s = kiln_livemap_shard(m, addr, h);
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
  kiln_livemap_entry_t *slots = s->slots;
  size_t cap = s->cap, i = kiln_livemap_home(h, cap);
  /* The probe (over locals: this runs on every malloc) ... */
  uint64_t want = addr;
  for (;; want += KILN_LIVEMAP_DIST1) {
    uint64_t k = slots[i].key;
    if (k == want) {
      /* An address already present was freed behind kiln's back (a path
       * no hook sees): the new block replaces it. */
      slots[i].stack_id = stack_id;
      slots[i].size = small;
      goto out;
    }
    if (k == 0 || kiln_livemap_dist(k) < kiln_livemap_dist(want) || kiln_livemap_dist(want) == KILN_LIVEMAP_DIST_MAX)
      break;
    if (++i == cap) i = 0;
  }
  /* ... then the insertion from where it stopped, Robin Hood's way. */
  s->used++;
  /* The entry being placed in three scalars, not a struct: a 16-byte copy
   * of one whose key was just stored as 8 bytes waits for the store
   * (a failed store forward, a quarter of this function's samples). */
  uint64_t nkey = want;
  uint32_t nid = stack_id, nsize = small;
  for (;;) {
    uint64_t k = slots[i].key;
    if (k == 0) {
      slots[i].key = nkey;
      slots[i].stack_id = nid;
      slots[i].size = nsize;
      goto out;
    }
    if (kiln_livemap_dist(k) < kiln_livemap_dist(nkey)) { /* the nearer one moves on */
      uint32_t tid = slots[i].stack_id, tsize = slots[i].size;
      slots[i].key = nkey;
      slots[i].stack_id = nid;
      slots[i].size = nsize;
      nkey = k;
      nid = tid;
      nsize = tsize;
    }
    if (kiln_livemap_dist(nkey) == KILN_LIVEMAP_DIST_MAX) break;
    nkey += KILN_LIVEMAP_DIST1;
    if (++i == cap) i = 0;
  }
  kiln_livemap_entry_t n = {nkey, nid, nsize};
  /* A run too long for its byte (never seen at 80%): grow; n, displaced,
   * goes in again. Should even that fail, n (perhaps an older block than
   * the new one) is lost, and the caller counts a map failure. */
  n.key &= KILN_LIVEMAP_ADDR;
  do {
    if (s->cap > 8 * (s->used + 64) || !kiln_livemap_rehash(m, s, s->cap + s->cap / 2)) {
      s->used--; /* n is lost: counted by the caller as a failure */
      rc = -ENOMEM;
      goto out;
    }
  } while (!kiln_livemap_place(s->slots, s->cap, &n, kiln_livemap_home(kiln_livemap_hash(n.key), s->cap), 0));
out:
  kiln_livemap_unlock(s);
  return rc;
}

/* Empties slot i: the entries after it that are not at home move back one
 * (Robin Hood's backward shift), so no tombstone is left. */
static void kiln_livemap_erase(kiln_livemap_shard_t *s, size_t i) {
  size_t cap = s->cap, j = i + 1 == cap ? 0 : i + 1;
  for (;;) {
    uint64_t k = s->slots[j].key;
    if (k == 0 || kiln_livemap_dist(k) == 0) break;
    s->slots[i] = s->slots[j];
    s->slots[i].key = k - KILN_LIVEMAP_DIST1;
    i = j;
    if (++j == cap) j = 0;
  }
  s->slots[i].key = 0;
  s->used--;
}

bool kiln_livemap_find(kiln_livemap_t *m, uint64_t addr, uint64_t *size, uint32_t *stack_id, bool remove) {
  if (addr == 0 || addr > KILN_LIVEMAP_ADDR) return false;
  uint64_t h = kiln_livemap_hash(addr);
  kiln_livemap_shard_t *s = kiln_livemap_shard(m, addr, h);
  bool found = false;
  kiln_livemap_lock(s);
  size_t at;
  unsigned dist;
  kiln_livemap_entry_t *e = s->cap != 0 ? kiln_livemap_probe(s, h, addr, &at, &dist) : NULL;
  if (e != NULL) {
    *stack_id = e->stack_id;
    *size = e->size == KILN_LIVEMAP_BIG ? kiln_livemap_big_take(s, addr, remove) : e->size;
    found = true;
    if (remove) kiln_livemap_erase(s, (size_t)(e - s->slots));
  }
  kiln_livemap_unlock(s);
  return found;
}

/* kiln_livemap_find(.., remove) for every free: the probe and the backward
 * shift in one loop over locals, sizes of 4 GiB and more out of line. */
bool kiln_livemap_remove(kiln_livemap_t *m, uint64_t addr, uint64_t *size, uint32_t *stack_id) {
  if (addr - 1 >= KILN_LIVEMAP_ADDR) return false; /* 0, or above what a key holds */
  uint64_t h = kiln_livemap_hash(addr);
  kiln_livemap_shard_t *s = kiln_livemap_shard(m, addr, h);
  bool found = false;
  kiln_livemap_lock(s);
  kiln_livemap_entry_t *slots = s->slots;
  size_t cap = s->cap;
  if (KILN_LIKELY(cap != 0)) {
    size_t i = kiln_livemap_home(h, cap);
    for (uint64_t want = addr;; want += KILN_LIVEMAP_DIST1) {
      uint64_t k = slots[i].key;
      if (k == want) {
        *stack_id = slots[i].stack_id;
        uint32_t small = slots[i].size;
        *size = KILN_LIKELY(small != KILN_LIVEMAP_BIG) ? small : kiln_livemap_big_take(s, addr, true);
        found = true;
        for (size_t j = i + 1 == cap ? 0 : i + 1;; i = j, j = j + 1 == cap ? 0 : j + 1) {
          uint64_t next = slots[j].key;
          if (next < KILN_LIVEMAP_DIST1) break; /* empty, or at home */
          slots[i] = slots[j];
          slots[i].key = next - KILN_LIVEMAP_DIST1;
        }
        slots[i].key = 0;
        s->used--;
        /* Under half full: smaller, to two thirds full. A region whose
         * blocks are freed (blocks handed to another thread and freed
         * there, an arena emptied) gives its room back: 2 threads handing
         * their blocks round peaked at 29.1 bytes a live block, now 24.0
         * (1 or 2 threads on their own: 23.3, unchanged). */
        if (KILN_UNLIKELY(s->used * 2 < cap && cap > 4 * KILN_LIVEMAP_MIN))
          kiln_livemap_rehash(m, s, s->used * 3 / 2 > KILN_LIVEMAP_MIN ? s->used * 3 / 2 : KILN_LIVEMAP_MIN);
        break;
      }
      if (k == 0 || kiln_livemap_dist(k) < kiln_livemap_dist(want) || kiln_livemap_dist(want) == KILN_LIVEMAP_DIST_MAX)
        break;
      if (++i == cap) i = 0;
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
      if (e->key == 0) continue;
      uint64_t addr = e->key & KILN_LIVEMAP_ADDR;
      uint64_t size = e->size == KILN_LIVEMAP_BIG ? kiln_livemap_big_take(s, addr, false) : e->size;
      fn(addr, size, e->stack_id & ~KILN_LIVEMAP_UP, ctx);
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

uint64_t kiln_livemap_peak_bytes(kiln_livemap_t *m) { return atomic_load(&m->bytes_peak); }

void kiln_livemap_fork_prepare(kiln_livemap_t *m) {
  for (int k = 0; k < KILN_LIVEMAP_SHARDS; k++) kiln_livemap_lock(&m->shards[k]);
}

void kiln_livemap_fork_release(kiln_livemap_t *m) {
  for (int k = KILN_LIVEMAP_SHARDS; k-- > 0;) kiln_livemap_unlock(&m->shards[k]);
}
