/* jit_vdso.c — code no ELF file describes: a loop copied into an
 * executable mmap'd page and announced in /tmp/perf-PID.map, the way JIT
 * compilers (node --perf-basic-prof, LuaJIT, Python -X perf) tell perf;
 * then clock_gettime in a loop, time spent in the vDSO. x86-64 only.
 *   jit_vdso [SCALE]   (default 10: about 0.2 s in each part) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* mov ecx, edi; L: imul eax, eax, 3; add eax, 1; dec ecx; jnz L; ret */
static const unsigned char jit_code[] = {0x89, 0xf9, 0x6b, 0xc0, 0x03, 0x83, 0xc0, 0x01,
                                         0xff, 0xc9, 0x75, 0xf6, 0xc3};

static double jit_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  /* Fixed amounts of work (not of time), so that the shares of CPU
   * samples do not depend on the machine's load. */
  long scale = argc > 1 ? atol(argv[1]) : 10;
  unsigned char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return 1;
  memcpy(page + 256, jit_code, sizeof jit_code);
  char path[64];
  snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
  FILE *map = fopen(path, "w");
  if (map == NULL) return 1;
  fprintf(map, "%lx %zx JIT:hot_loop\n", (unsigned long)(uintptr_t)(page + 256), sizeof jit_code);
  fclose(map);
  int (*hot)(int) = (int (*)(int))(void *)(page + 256);
  unsigned acc = 0;
  for (long i = 0; i < 15 * scale; i++) acc += (unsigned)hot(1000000);
  /* The vDSO part: clock_gettime itself is the work. */
  double last = 0;
  for (long i = 0; i < 600000 * scale; i++) last = jit_now();
  printf("done %d\n", acc != 0 || last > 0);
  /* The map stays, as JITs leave it: profilers read it after the exit
   * (whoever ran the program removes it). */
  return 0;
}
