/* Unit test of kiln_ring: records in order, wrap-around, a full ring
 * refuses instead of overwriting, and one producer / one consumer thread
 * moving a million records without loss or tearing. */
#include "kiln_internal.h"
#include "kt.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

static uint64_t words[1 << 10];

static void ring_roundtrip(void) {
  kiln_ring_t r;
  kiln_ring_init(&r, words, 1 << 10);
  uint64_t pcs[5] = {1, 2, 3, 4, 5}, out[8], h;
  KT_CHECK(kiln_ring_pop(&r, &h, out, 8) == -1);
  KT_CHECK(kiln_ring_push(&r, kiln_ring_header(5, KILN_STACK_TRUNCATED, 7), pcs, 5));
  int n = kiln_ring_pop(&r, &h, out, 8);
  KT_CHECK(n == 5);
  KT_CHECK((h & 0xffff) == 5 && ((h >> 16) & 0xff) == KILN_STACK_TRUNCATED && (h >> 32) == 7);
  for (int i = 0; i < 5; i++) KT_CHECK(out[i] == pcs[i]);
  /* A record longer than the reader's room: the rest is skipped, not left. */
  KT_CHECK(kiln_ring_push(&r, kiln_ring_header(5, 0, 1), pcs, 5));
  KT_CHECK(kiln_ring_push(&r, kiln_ring_header(1, 0, 1), pcs + 4, 1));
  KT_CHECK(kiln_ring_pop(&r, &h, out, 2) == 2 && out[1] == 2);
  KT_CHECK(kiln_ring_pop(&r, &h, out, 8) == 1 && out[0] == 5);
  KT_CHECK(kiln_ring_pop(&r, &h, out, 8) == -1);
}

static void ring_full_refuses(void) {
  kiln_ring_t r;
  kiln_ring_init(&r, words, 16);
  uint64_t pcs[7] = {0};
  KT_CHECK(kiln_ring_push(&r, 7, pcs, 7));  /* 8 words */
  KT_CHECK(kiln_ring_push(&r, 7, pcs, 7));  /* 16 words: full */
  KT_CHECK(!kiln_ring_push(&r, 0, pcs, 0)); /* no room even for a header */
  uint64_t h, out[8];
  KT_CHECK(kiln_ring_pop(&r, &h, out, 8) == 7);
  KT_CHECK(kiln_ring_push(&r, 7, pcs, 7)); /* wraps around */
}

enum { N = 1000000 };
static kiln_ring_t shared;

static void *producer(void *arg) {
  (void)arg;
  uint64_t pcs[17];
  for (uint64_t i = 0; i < N;) {
    unsigned n = (unsigned)(i % 17);
    for (unsigned k = 0; k < n; k++) pcs[k] = i * 31 + k;
    if (kiln_ring_push(&shared, kiln_ring_header(n, 0, (uint32_t)i), pcs, n)) i++;
    else sched_yield();
  }
  return NULL;
}

static void ring_spsc_threads(void) {
  kiln_ring_init(&shared, words, 1 << 10);
  pthread_t t;
  pthread_create(&t, NULL, producer, NULL);
  uint64_t out[17], h, expect = 0;
  bool ok = true;
  while (expect < N) {
    int n = kiln_ring_pop(&shared, &h, out, 17);
    if (n < 0) {
      sched_yield();
      continue;
    }
    if ((h >> 32) != (expect & 0xffffffff) || (unsigned)n != expect % 17) ok = false;
    for (int k = 0; k < n; k++)
      if (out[k] != expect * 31 + (uint64_t)k) ok = false;
    expect++;
  }
  pthread_join(t, NULL);
  KT_CHECK(ok);
  KT_CHECK(kiln_ring_pop(&shared, &h, out, 17) == -1);
}

int main(void) {
  KT_RUN(ring_roundtrip);
  KT_RUN(ring_full_refuses);
  KT_RUN(ring_spsc_threads);
  return kt_failed_tests != 0;
}
