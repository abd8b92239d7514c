/* Unit test of kiln_stacktab: interning is idempotent, flags are part of a
 * stack's identity, counts add, four threads interning the same stacks at
 * once agree on every id, and a full table sends counts to its marker. */
#include "kiln_internal.h"
#include "kt.h"

#include <pthread.h>

static void stacktab_intern(void) {
  uint64_t a[3] = {10, 20, 30}, b[3] = {10, 20, 31};
  uint32_t ia = kiln_stacktab_intern(a, 3, 0);
  KT_CHECK(ia != 0);
  KT_CHECK(kiln_stacktab_intern(a, 3, 0) == ia);
  KT_CHECK(kiln_stacktab_intern(b, 3, 0) != ia);
  KT_CHECK(kiln_stacktab_intern(a, 3, KILN_STACK_TRUNCATED) != ia);
  KT_CHECK(kiln_stacktab_intern(a, 2, 0) != ia);
  kiln_stack_t *s = kiln_stacktab_get(ia);
  KT_CHECK(s->depth == 3 && s->pcs[2] == 30 && s->flags == 0);
  kiln_stacktab_add(s, KILN_COUNT_CPU, 5);
  kiln_stacktab_add(s, KILN_COUNT_CPU, 2);
  KT_CHECK(atomic_load(&s->counts[KILN_COUNT_CPU]) == 7);
  kiln_stacktab_clear_counts(KILN_COUNTS_ALL);
  KT_CHECK(atomic_load(&s->counts[KILN_COUNT_CPU]) == 0);
}

enum { STACKS = 20000, THREADS = 4 };
static uint32_t ids[THREADS][STACKS];

static void *interner(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int k = 0; k < STACKS; k++) {
    int i = (k * 7 + t * 1013) % STACKS; /* each thread in another order */
    uint64_t pcs[4] = {1000 + (uint64_t)i, 2, 3, (uint64_t)i % 5};
    ids[t][i] = kiln_stacktab_intern(pcs, 4, 0);
    kiln_stacktab_add(kiln_stacktab_get(ids[t][i]), KILN_COUNT_CPU, 1);
  }
  return NULL;
}

static void count_cpu(kiln_stack_t *s, void *ctx) {
  uint64_t *sum = ctx;
  sum[0] += atomic_load(&s->counts[KILN_COUNT_CPU]);
  sum[1]++;
}

static void stacktab_concurrent(void) {
  kiln_stacktab_reset();
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, interner, (void *)(intptr_t)t);
  for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
  bool same = true;
  for (int i = 0; i < STACKS; i++)
    for (int t = 1; t < THREADS; t++)
      if (ids[t][i] != ids[0][i]) same = false;
  KT_CHECK(same);
  kiln_stacktab_stats_t st;
  kiln_stacktab_stats(&st);
  KT_CHECK(st.stacks == STACKS);
  uint64_t sum[2] = {0, 0};
  kiln_stacktab_foreach(count_cpu, sum);
  KT_CHECK(sum[0] == (uint64_t)STACKS * THREADS);
  KT_CHECK(sum[1] == STACKS + 1); /* and the table-full marker */
}

static void stacktab_full(void) {
  kiln_stacktab_reset();
  kiln_stacktab_stats_t st;
  uint32_t last = 0;
  for (uint64_t i = 0; i < 1100; i++) last = kiln_stacktab_intern(&i, 1, 0);
  kiln_stacktab_stats(&st);
  KT_CHECK(st.stacks == 1024);
  KT_CHECK(st.full_hits == 1100 - 1024);
  KT_CHECK(kiln_stacktab_get(last)->flags == KILN_STACK_FULL);
}

int main(void) {
  if (kiln_stacktab_init(1 << 16) < 0) return 1;
  KT_RUN(stacktab_intern);
  KT_RUN(stacktab_concurrent);
  kiln_stacktab_destroy();
  if (kiln_stacktab_init(1024) < 0) return 1;
  KT_RUN(stacktab_full);
  return kt_failed_tests != 0;
}
