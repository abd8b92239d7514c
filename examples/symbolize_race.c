/* symbolize_race.c — two threads name frames at the same time: one closes
 * leak scopes and prints their reports (symbolized in process), the other
 * writes profiles with kiln_dump. Each has its own symbolizer; with one
 * process-wide cache, one thread's end of symbolization freed what the
 * other was reading (a crash in 3 runs of 3). Exits 0 when every report
 * found its leak and every dump was written. Links libkiln.a.
 *   symbolize_race DIR [ROUNDS] */
#include "kiln.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static int race_rounds = 100;
static const char *race_dir;

static __attribute__((noinline)) void *race_leak_one(void) { return malloc(48); }

static void *race_reports(void *arg) {
  (void)arg;
  FILE *devnull = fopen("/dev/null", "w");
  long bad = 0;
  for (int i = 0; i < race_rounds; i++) {
    kiln_leak_scope_t scope = kiln_leak_begin();
    void *p = race_leak_one();
    kiln_leak_report_t report;
    if (kiln_leak_end(scope, &report) != 1) bad++;
    if (devnull) kiln_leak_report_print(&report, devnull);
    kiln_leak_report_free(&report);
    free(p);
  }
  if (devnull) fclose(devnull);
  return (void *)bad;
}

static void *race_dumps(void *arg) {
  (void)arg;
  long bad = 0;
  for (int i = 0; i < race_rounds; i++)
    if (kiln_dump(race_dir) != 0) bad++;
  return (void *)bad;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: symbolize_race DIR [ROUNDS]\n");
    return 2;
  }
  race_dir = argv[1];
  if (argc > 2) race_rounds = atoi(argv[2]);
  kiln_options_t opts = {0};
  opts.mode = KILN_MODE_CPU | KILN_MODE_ALLOC;
  opts.out_dir = race_dir;
  opts.quiet = 1;
  if (kiln_start(&opts) != 0) return 1;
  pthread_t a, b;
  void *ra, *rb;
  pthread_create(&a, NULL, race_reports, NULL);
  pthread_create(&b, NULL, race_dumps, NULL);
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  kiln_stop();
  printf("reports wrong: %ld, dumps failed: %ld\n", (long)ra, (long)rb);
  return ra == NULL && rb == NULL ? 0 : 1;
}
