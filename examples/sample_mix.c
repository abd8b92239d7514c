/* sample_mix — a deterministic workload for comparing sampled allocation
 * estimates with exact ones: many sizes (256 B - 8 KiB), realloc growth
 * chains, calloc, aligned allocations (posix_memalign, aligned_alloc,
 * memalign), a peak made of large blocks and a live set of small ones, and
 * leaks of three sizes. Fixed seed: every run allocates the same. The
 * amounts are chosen so that at R = 512 KiB each estimate kiln's test
 * compares has a standard deviation of 1-1.5% (see test_alloc_hooks.sh).
 * Usage: sample_mix [ITERATIONS] */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline, noipa))
static void *volatile sink;
static unsigned long seed = 12345;
static unsigned rnd(void) {
  seed = seed * 6364136223846793005UL + 1442695040888963407UL;
  return (unsigned)(seed >> 33);
}

NOINLINE static void *sized(size_t n) { void *p = malloc(n); __asm__ volatile(""); return p; }
NOINLINE static void *zeroed(size_t n) { void *p = calloc(n / 16, 16); __asm__ volatile(""); return p; }
NOINLINE static void *aligned(size_t n, int k) {
  void *p = NULL;
  if (k == 0 && posix_memalign(&p, 64, n) != 0) p = NULL;
  if (k == 1) p = aligned_alloc(256, (n + 255) / 256 * 256);
  if (k == 2) p = memalign(4096, n);
  __asm__ volatile("");
  return p;
}
NOINLINE static void *grow(void *p, size_t n) { void *q = realloc(p, n); __asm__ volatile(""); return q; }
NOINLINE static void *leak_site(size_t n) { void *p = malloc(n); __asm__ volatile(""); return p; }

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 800000;
  for (long i = 0; i < iters; i++) {
    size_t n = 256 + rnd() % 7937;
    void *p;
    switch (i % 4) {
    case 0: p = sized(n); break;
    case 1: p = zeroed(n); break;
    case 2: p = aligned(n, (int)(i / 4 % 3)); break;
    default: /* realloc growth: 512 B doubling to 64 KiB */
      p = NULL;
      for (size_t m = 512; m <= 65536; m *= 2) p = grow(p, m);
      break;
    }
    memset(p, 1, 16);
    free(p);
  }
  /* The peak: 64 blocks of 4 MiB and 10,000 of 2 KiB live at once. */
  void *big[64], *small[10000];
  for (int i = 0; i < 64; i++) big[i] = sized(4u << 20);
  for (int i = 0; i < 10000; i++) small[i] = sized(2048);
  sink = big[rnd() % 64];
  for (int i = 0; i < 64; i++) free(big[i]);
  for (int i = 0; i < 10000; i++) free(small[i]);
  /* Leaks: 32 x 4 MiB, 30 x 64 KiB, 200 x 1 KiB. */
  for (int i = 0; i < 32; i++) sink = leak_site(4u << 20);
  for (int i = 0; i < 30; i++) sink = leak_site(64u << 10);
  for (int i = 0; i < 200; i++) sink = leak_site(1024);
  sink = NULL;
  printf("sample_mix: %ld iterations\n", iters);
  return 0;
}
