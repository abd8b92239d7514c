/* threads — unequal work over two threads: worker_big does three times the
 * work of worker_small, which finishes (and exits) first; main only waits.
 * Expected CPU shares: worker_big 75%, worker_small 25%. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned long units_small = 60;

__attribute__((noinline)) static unsigned long burn(unsigned long units) {
  unsigned long x = units;
  for (unsigned long i = 0; i < units * 2500000UL; i++) x = x * 6364136223846793005UL + 1;
  return x;
}

__attribute__((noinline)) static void *worker_big(void *arg) {
  *(unsigned long *)arg = burn(3 * units_small);
  return NULL;
}

__attribute__((noinline)) static void *worker_small(void *arg) {
  *(unsigned long *)arg = burn(units_small);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) units_small = strtoul(argv[1], NULL, 10);
  pthread_t a, b;
  unsigned long ra = 0, rb = 0;
  if (pthread_create(&a, NULL, worker_big, &ra) || pthread_create(&b, NULL, worker_small, &rb)) return 1;
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  printf("threads: %lu %lu\n", ra % 1000, rb % 1000);
  return 0;
}
