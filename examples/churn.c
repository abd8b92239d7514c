/* churn — a malloc-heavy workload for benchmarks and sampled mode: N
 * malloc/free pairs (default 10M), sizes 16 B to 4 KiB, from six call
 * sites 8 to 12 frames deep, with a live working set of 10,000 blocks.
 * Site k allocates k times the bytes of site 1 on average, so their order
 * by bytes is known: site6 > site5 > ... > site1.
 * With "cross", threads hand their live sets round after every 10,000
 * pairs (a barrier), so that almost every free is of a block another
 * thread allocated.
 * Usage: churn [PAIRS] [THREADS] [cross] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LIVE = 10000 };
#define NOINLINE __attribute__((noinline, noipa))

typedef struct { void *slot[LIVE]; unsigned long seed, pairs; } churn_t;
static churn_t *all;
static int nthreads, cross;
static pthread_barrier_t round_end;

NOINLINE static void step(churn_t *c, int site) {
  c->seed = c->seed * 6364136223846793005UL + 1442695040888963407UL;
  unsigned r = (unsigned)(c->seed >> 33);
  size_t size = (16 + r % 670) * (size_t)site; /* 16 B .. 4 KiB */
  unsigned i = r % LIVE;
  free(c->slot[i]);
  c->slot[i] = malloc(size);
}
/* The empty asm after each call keeps it out of tail position, so that the
 * compiler cannot turn the chain into jumps: the stacks really are deep. */
#define LEVEL(name, next) NOINLINE static void name(churn_t *c, int site, int depth) { \
    if (depth == 0) step(c, site); else next(c, site, depth - 1); __asm__ volatile(""); }
NOINLINE static void d0(churn_t *c, int site, int depth) { (void)depth; step(c, site); __asm__ volatile(""); }
LEVEL(d1, d0) LEVEL(d2, d1) LEVEL(d3, d2) LEVEL(d4, d3) LEVEL(d5, d4)
LEVEL(d6, d5) LEVEL(d7, d6) LEVEL(d8, d7) LEVEL(d9, d8)
NOINLINE static void site1(churn_t *c) { d9(c, 1, 4); __asm__ volatile(""); }
NOINLINE static void site2(churn_t *c) { d9(c, 2, 5); __asm__ volatile(""); }
NOINLINE static void site3(churn_t *c) { d9(c, 3, 6); __asm__ volatile(""); }
NOINLINE static void site4(churn_t *c) { d9(c, 4, 7); __asm__ volatile(""); }
NOINLINE static void site5(churn_t *c) { d9(c, 5, 8); __asm__ volatile(""); }
NOINLINE static void site6(churn_t *c) { d9(c, 6, 9); __asm__ volatile(""); }

static void *run(void *arg) {
  churn_t *c = arg;
  int me = (int)(c - all);
  void (*sites[6])(churn_t *) = {site1, site2, site3, site4, site5, site6};
  void *tmp[LIVE];
  for (unsigned long n = 0; n < c->pairs; n++) {
    sites[n % 6](c);
    if (cross && n % LIVE == LIVE - 1) {
      /* Every thread takes the live set of the next one. */
      pthread_barrier_wait(&round_end);
      memcpy(tmp, all[(me + 1) % nthreads].slot, sizeof tmp);
      pthread_barrier_wait(&round_end);
      memcpy(c->slot, tmp, sizeof tmp);
      pthread_barrier_wait(&round_end);
    }
  }
  for (int i = 0; i < LIVE; i++) free(c->slot[i]);
  return NULL;
}

int main(int argc, char **argv) {
  unsigned long pairs = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000000UL;
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  if (threads < 1 || threads > 64) return 2;
  pthread_t t[64];
  churn_t *c = calloc((size_t)threads, sizeof *c);
  all = c;
  nthreads = threads;
  cross = argc > 3 && strcmp(argv[3], "cross") == 0;
  pthread_barrier_init(&round_end, NULL, (unsigned)threads);
  for (int i = 0; i < threads; i++) {
    c[i].seed = (unsigned long)i + 1;
    c[i].pairs = pairs / (unsigned long)threads;
    pthread_create(&t[i], NULL, run, &c[i]);
  }
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  free(c);
  printf("churn: %lu pairs in %d threads\n", pairs, threads);
  return 0;
}
