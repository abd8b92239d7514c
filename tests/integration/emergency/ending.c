/* ending — works and allocates a little, arms count_calls.so, then ends:
 *   ending _exit | segv | abort | term | exit */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile unsigned long sink;
static int *volatile null_ptr;

__attribute__((noinline)) static void work(void) {
  for (int r = 0; r < 40; r++) {
    void *p = malloc(64 + (size_t)r);
    unsigned long x = sink;
    for (unsigned long i = 0; i < 2000000UL; i++) x = x * 6364136223846793005UL + 1;
    sink = x + (unsigned long)(p != NULL);
    if (r % 2) free(p);
  }
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "exit";
  work();
  void (*arm)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "count_arm");
  if (arm) arm();
  if (strcmp(mode, "_exit") == 0) _exit(7);
  if (strcmp(mode, "segv") == 0) *null_ptr = 1;
  if (strcmp(mode, "abort") == 0) abort();
  if (strcmp(mode, "term") == 0) kill(getpid(), SIGTERM);
  exit(3);
}
