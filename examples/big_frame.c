/* big_frame — a function whose frame (a 256 KiB local buffer) is larger
 * than the stack copy a CPU sample takes, with the work below it: the
 * samples' stacks end where the copy ends, and kiln must say why (not
 * blame KILN_MAX_DEPTH). */
#include <stdio.h>
#include <string.h>

static volatile unsigned long sink;

__attribute__((noipa)) static unsigned long spin(const unsigned char *buf) {
  unsigned long x = sink + buf[0];
  for (unsigned long i = 0; i < 150000000UL; i++) x = x * 6364136223846793005UL + 1;
  return x;
}

__attribute__((noipa)) static unsigned long with_buffer(void) {
  unsigned char buf[256 * 1024];
  memset(buf, (int)(sink & 0xff), sizeof buf);
  __asm__ volatile("" : : "r"(buf) : "memory"); /* buf is really there */
  unsigned long r = spin(buf);
  sink += buf[sizeof buf - 1]; /* buf lives across the call: not a tail call */
  return r;
}

int main(void) {
  unsigned long r = with_buffer();
  printf("big_frame: %lu\n", r % 1000);
  return 0;
}
