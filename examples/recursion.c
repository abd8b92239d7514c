/* recursion — a stack DEPTH frames deep (default 200) that spends its time
 * at the bottom, for checking that deep stacks come out whole and that
 * stacks deeper than KILN_MAX_DEPTH carry the truncation marker. */
#include <stdio.h>
#include <stdlib.h>

static volatile unsigned long sink;

__attribute__((noinline)) static unsigned long bottom(void) {
  unsigned long x = sink;
  for (unsigned long i = 0; i < 300000000UL; i++) x = x * 6364136223846793005UL + 1;
  return x;
}

__attribute__((noinline)) unsigned long recurse(int depth) {
  if (depth <= 1) return bottom();
  unsigned long r = recurse(depth - 1);
  sink += (unsigned long)depth; /* not a tail call */
  return r + 1;
}

int main(int argc, char **argv) {
  int depth = argc > 1 ? atoi(argv[1]) : 200;
  unsigned long r = recurse(depth);
  printf("recursion: depth %d, result %lu\n", depth, r % 1000);
  return 0;
}
