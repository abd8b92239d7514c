/* region — profiles only a region of the program, twice: CPU and
 * allocations between kiln_start and kiln_stop are counted, work outside
 * is not. Cycle 1 (phase_one) is dumped into DIR/one; after kiln_reset,
 * cycle 2 (phase_two) into DIR/two. outside() runs before, between and
 * after the cycles and must appear in neither. Usage: region DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define NOINLINE __attribute__((noinline, noipa))
static volatile unsigned long sink;
static void *volatile keep;

NOINLINE static void burn(unsigned long n) {
  unsigned long x = sink;
  for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1;
  sink = x;
}
NOINLINE static void outside(void) { burn(150000000UL); free(malloc(4096)); keep = malloc(11); }
NOINLINE static void phase_one(void) { burn(150000000UL); keep = malloc(1000); }
NOINLINE static void phase_two(void) { burn(150000000UL); keep = malloc(2000); keep = malloc(2000); }

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  char one[4096], two[4096];
  snprintf(one, sizeof one, "%s/one", argv[1]);
  snprintf(two, sizeof two, "%s/two", argv[1]);
  kiln_options_t o;
  memset(&o, 0, sizeof o);
  o.mode = KILN_MODE_CPU | KILN_MODE_ALLOC;
  o.quiet = 1;
  outside();
  if (kiln_start(&o) != 0) return 1;
  phase_one();
  kiln_stop();
  outside();
  int rc = kiln_dump(one);
  kiln_reset();
  if (kiln_start(&o) != 0) return 1;
  phase_two();
  kiln_stop();
  outside();
  rc |= kiln_dump(two);
  kiln_alloc_stats_t st;
  kiln_alloc_stats(&st);
  printf("region: dumps %s\n", rc == 0 ? "ok" : "failed");
  return rc != 0;
}
