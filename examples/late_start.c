/* late_start — links the runtime (libkiln.a) and starts profiling from code
 * after two busy threads already run: threads that existed before the
 * profiler started are sampled too. Writes its profile with kiln_dump into
 * the directory given as argv[1] (default: the current one). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

static volatile int stop;
static volatile unsigned long sink;

__attribute__((noinline, noipa)) static void early_a(void) {
  unsigned long x = 1;
  while (!stop) x = x * 6364136223846793005UL + 1;
  sink = x;
}
__attribute__((noinline, noipa)) static void early_b(void) {
  unsigned long x = 2;
  while (!stop) x = x * 6364136223846793005UL + 3;
  sink = x;
}
static void *run_a(void *arg) { (void)arg; early_a(); return NULL; }
static void *run_b(void *arg) { (void)arg; early_b(); return NULL; }

int main(int argc, char **argv) {
  pthread_t a, b;
  pthread_create(&a, NULL, run_a, NULL);
  pthread_create(&b, NULL, run_b, NULL);
  struct timespec warm = {0, 50000000};
  nanosleep(&warm, NULL);
  kiln_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.quiet = 1;
  if (kiln_start(&opts) != 0) return 1;
  struct timespec ts = {0, 700000000};
  nanosleep(&ts, NULL);
  kiln_stop();
  stop = 1;
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  int rc = kiln_dump(argc > 1 ? argv[1] : NULL);
  printf("late_start: dump %s\n", rc == 0 ? "ok" : "failed");
  return rc != 0;
}
