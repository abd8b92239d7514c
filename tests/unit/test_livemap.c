/* Unit test of kiln_livemap: a million random puts, replacements and takes
 * (kiln_livemap_find's and kiln_livemap_remove's)
 * agree with a plain reference array at every step (found or not, size,
 * stack id), through growth and back down to empty; sizes of 4 GiB and
 * more come back whole; addresses a malloc would give (clustered, 16-byte
 * steps) and ones it would not; foreach visits each live entry once; four
 * threads putting and taking their own blocks while freeing each other's
 * leave nothing behind; addresses that all hash to one slot end in failed
 * puts, not in a table that grows for ever; a map mostly emptied
 * shrinks. */
#include "kiln_internal.h"
#include "kt.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { KEYS = 50000, OPS = 1000000 };

static uint64_t ref_size[KEYS];
static uint32_t ref_id[KEYS];
static bool ref_live[KEYS];
static kiln_livemap_t map;

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Key k's address: a heap-like cluster for the first half, scattered
 * 8-byte-aligned addresses (another allocator's) for the rest. */
static uint64_t key_addr(int k) {
  if (k < KEYS / 2) return 0x555555560000ull + (uint64_t)k * 16 * 3;
  return ((uint64_t)k * 0x9e3779b97f4a7c15ull & 0x7fffffffff8ull) | 0x100000000000ull;
}

static uint64_t live_entries(void) {
  uint64_t n, bytes;
  kiln_livemap_stats(&map, &n, &bytes);
  return n;
}

static void livemap_random(void) {
  int bad = 0;
  for (int op = 0; op < OPS; op++) {
    int k = (int)(next_rand() % KEYS);
    uint64_t r = next_rand();
    uint64_t size;
    uint32_t id;
    if (r % 3 != 0) { /* put (or replace) */
      size = r % 7 == 0 ? (5ull << 30) + (r >> 40) : (r >> 20) % 100000;
      id = (uint32_t)(r >> 33) & 0x7fffffff;
      if (kiln_livemap_put(&map, key_addr(k), size, id) != 0) bad++;
      ref_size[k] = size;
      ref_id[k] = id;
      ref_live[k] = true;
    } else { /* take: both ways of removing */
      bool got = (r >> 8) & 1 ? kiln_livemap_remove(&map, key_addr(k), &size, &id)
                              : kiln_livemap_find(&map, key_addr(k), &size, &id, true);
      if (got != ref_live[k] || (got && (size != ref_size[k] || id != ref_id[k]))) bad++;
      ref_live[k] = false;
    }
    if (op % 100000 == 0) { /* a lookup of every key now and then */
      for (int j = 0; j < KEYS; j++) {
        bool got = kiln_livemap_find(&map, key_addr(j), &size, &id, false);
        if (got != ref_live[j] || (got && (size != ref_size[j] || id != ref_id[j]))) bad++;
      }
    }
  }
  uint64_t live = 0;
  for (int j = 0; j < KEYS; j++) live += ref_live[j];
  KT_CHECK(bad == 0);
  KT_CHECK(live_entries() == live);
  /* Back to empty: every remaining block taken once, nothing more. */
  for (int j = 0; j < KEYS; j++) {
    uint64_t size;
    uint32_t id;
    bool got = kiln_livemap_remove(&map, key_addr(j), &size, &id);
    if (got != ref_live[j] || (got && (size != ref_size[j] || id != ref_id[j]))) bad++;
    if (kiln_livemap_find(&map, key_addr(j), &size, &id, false)) bad++;
    ref_live[j] = false;
  }
  KT_CHECK(bad == 0);
  KT_CHECK(live_entries() == 0);
}

static uint64_t seen_sum, seen_n;
static void count_entry(uint64_t addr, uint64_t size, uint32_t id, void *ctx) {
  (void)ctx;
  seen_sum += addr + size + id;
  seen_n++;
}

static void livemap_foreach(void) {
  uint64_t want = 0;
  for (int k = 0; k < 1000; k++) {
    uint64_t size = k % 10 == 0 ? (1ull << 33) + (uint64_t)k : (uint64_t)k * 3;
    KT_CHECK(kiln_livemap_put(&map, key_addr(k), size, (uint32_t)k) == 0);
    want += key_addr(k) + size + (uint32_t)k;
  }
  KT_CHECK(kiln_livemap_put(&map, 0, 1, 1) != 0); /* no block at 0 */
  uint64_t size;
  uint32_t id;
  KT_CHECK(!kiln_livemap_remove(&map, 0, &size, &id) && !kiln_livemap_remove(&map, ~0ull, &size, &id));
  seen_sum = seen_n = 0;
  kiln_livemap_foreach(&map, count_entry, NULL);
  KT_CHECK(seen_n == 1000 && seen_sum == want);
  kiln_livemap_clear(&map);
  KT_CHECK(live_entries() == 0);
  seen_n = 0;
  kiln_livemap_foreach(&map, count_entry, NULL);
  KT_CHECK(seen_n == 0);
}

enum { THREADS = 4, PER_THREAD = 20000 };
static _Atomic uint64_t thread_bad;

/* Thread t allocates its blocks, then frees the blocks of thread t+1. */
static pthread_barrier_t half;
static void *worker(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < PER_THREAD; i++) {
      uint64_t a = 0x7f0000000000ull + ((uint64_t)t * PER_THREAD + (uint64_t)i) * 32;
      if (kiln_livemap_put(&map, a, (uint64_t)i, (uint32_t)t) != 0) atomic_fetch_add(&thread_bad, 1);
    }
    pthread_barrier_wait(&half);
    int o = (t + 1) % THREADS;
    for (int i = 0; i < PER_THREAD; i++) {
      uint64_t a = 0x7f0000000000ull + ((uint64_t)o * PER_THREAD + (uint64_t)i) * 32, size;
      uint32_t id;
      if (!kiln_livemap_remove(&map, a, &size, &id) || size != (uint64_t)i || id != (uint32_t)o)
        atomic_fetch_add(&thread_bad, 1);
    }
    pthread_barrier_wait(&half);
  }
  return NULL;
}

static void livemap_threads(void) {
  pthread_t th[THREADS];
  pthread_barrier_init(&half, NULL, THREADS);
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  KT_CHECK(atomic_load(&thread_bad) == 0);
  KT_CHECK(live_entries() == 0);
}

/* Addresses of one 64 MiB region (one group of shards) whose hashes agree
 * in bits 47..61 (the shard in the group, and the home slot of any table
 * size the map will grow to for them): one home for all. A run past 255
 * cannot be stored; the puts that cannot be placed fail (the heap counts
 * them) instead of growing the table without end, and the map stays
 * usable. One address in 32,768 qualifies: a scan of the region. */
static void livemap_collisions(void) {
  const uint64_t c = 0x9e3779b97f4a7c15ull, region = 0x5500000000ull; /* 64 MiB aligned */
  kiln_livemap_t *m = calloc(1, sizeof *m);
  int ok = 0, failed = 0;
  uint64_t want = ((region + 1) * c >> 47) & 0x7fff;
  for (uint64_t a = region + 1; ok + failed < 400 && a < region + (1ull << 26); a++) {
    if (((a * c) >> 47 & 0x7fff) != want) continue;
    if (kiln_livemap_put(m, a, 1, 1) == 0) ok++; else failed++;
  }
  KT_CHECK(ok + failed == 400);
  KT_CHECK(failed > 0 && ok >= 255);
  uint64_t n, bytes;
  kiln_livemap_stats(m, &n, &bytes);
  KT_CHECK(n <= (uint64_t)ok && bytes < (64u << 20));
  KT_CHECK(kiln_livemap_put(m, 0x555555560000ull, 7, 3) == 0); /* others still go in */
  uint64_t size;
  uint32_t id;
  KT_CHECK(kiln_livemap_remove(m, 0x555555560000ull, &size, &id) && size == 7 && id == 3);
}

/* A map filled then mostly emptied gives its room back (a shard under
 * half full shrinks): what is left is still found, the peak stays known. */
static void livemap_shrink(void) {
  static kiln_livemap_t m;
  uint64_t n, full, peak, size;
  uint32_t id;
  for (int k = 0; k < KEYS; k++) KT_CHECK(kiln_livemap_put(&m, key_addr(k), (uint64_t)k + 1, (uint32_t)k) == 0);
  kiln_livemap_stats(&m, &n, &full);
  KT_CHECK(n == KEYS && full <= (uint64_t)KEYS * 16 * 100 / 60);
  for (int k = 0; k < KEYS; k++)
    if (k % 10 != 0) KT_CHECK(kiln_livemap_remove(&m, key_addr(k), &size, &id) && size == (uint64_t)k + 1);
  uint64_t left;
  kiln_livemap_stats(&m, &n, &left);
  peak = kiln_livemap_peak_bytes(&m);
  KT_CHECK(n == KEYS / 10);
  KT_CHECK(left * 3 < full); /* 90% gone: at most a third of the room kept */
  KT_CHECK(peak >= full);
  for (int k = 0; k < KEYS; k += 10)
    KT_CHECK(kiln_livemap_find(&m, key_addr(k), &size, &id, false) && size == (uint64_t)k + 1 && id == (uint32_t)k);
  for (int k = 0; k < KEYS; k += 10) KT_CHECK(kiln_livemap_remove(&m, key_addr(k), &size, &id));
  kiln_livemap_stats(&m, &n, &left);
  KT_CHECK(n == 0 && left < full / 10);
}

int main(void) {
  KT_RUN(livemap_random);
  KT_RUN(livemap_foreach);
  KT_RUN(livemap_threads);
  KT_RUN(livemap_collisions);
  KT_RUN(livemap_shrink);
  return kt_failed_tests != 0;
}
