/* aspace.c — a program that takes all the address space it can get: some
 * CPU work and allocations first, then the largest mapping the limit
 * (ulimit -v) still allows, found by bisection with mmap (1 MiB steps),
 * then one malloc of that size, kept until exit. Prints
 * "largest_mib N" and "malloc_ok 0|1". Under kiln, N must be close to the
 * unprofiled run's and the profile still written (tests/integration/test_aspace.sh). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static volatile double sink;

__attribute__((noinline)) static void work(long n) {
  double x = 0;
  for (long i = 0; i < n; i++) x += (double)i * 0.5;
  sink = x;
}

__attribute__((noinline)) static void *keep_small(size_t n) {
  void *p = malloc(n);
  if (p != NULL) memset(p, 1, n);
  return p;
}

static int fits(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return 0;
  munmap(p, bytes);
  return 1;
}

int main(void) {
  void *small[64];
  for (int i = 0; i < 64; i++) small[i] = keep_small(100 + (size_t)i);
  work(20000000);
  size_t lo = 0, hi = (size_t)1 << 36, mib = (size_t)1 << 20;
  while (hi - lo > mib) {
    size_t mid = lo + (hi - lo) / 2 / mib * mib;
    if (mid == lo) mid = lo + mib;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  printf("largest_mib %zu\n", lo / mib);
  /* malloc serves a block this large with an mmap of its own (plus a
   * header page): all that is left goes to it. */
  char *big = lo > mib ? malloc(lo - 8192) : NULL;
  if (big != NULL) memset(big, 2, 4096);
  printf("malloc_ok %d\n", big != NULL);
  fflush(stdout);
  for (int i = 0; i < 32; i++) free(small[i]);
  return 0;
}
