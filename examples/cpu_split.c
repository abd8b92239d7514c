/* cpu_split — CPU time split 60/30/10 over three functions by construction:
 * each does the same kind of work, for 6, 3 and 1 units in every round.
 * Usage: cpu_split [ROUNDS]  (default 40: about one CPU-second here).
 * Prints a checksum, so a changed result would show. */
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long spin(unsigned long units) {
  unsigned long x = sink + 1;
  for (unsigned long i = 0; i < units * 2500000UL; i++) x = x * 6364136223846793005UL + 1442695040888963407UL;
  return x;
}

__attribute__((noinline)) void work60(void) { sink += spin(6); }
__attribute__((noinline)) void work30(void) { sink += spin(3); }
__attribute__((noinline)) void work10(void) { sink += spin(1); }

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 40;
  for (int r = 0; r < rounds; r++) {
    work60();
    work30();
    work10();
  }
  printf("cpu_split: %d rounds, checksum %lu\n", rounds, sink % 1000003);
  return 0;
}
