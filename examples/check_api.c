/* check_api — a unit test written with kiln's API, linked with the runtime
 * (no LD_PRELOAD): asserts that functions leak nothing and stay within an
 * allocation budget, and shows what a leak report looks like. Prints one
 * "ok"/"not ok" line per check and exits non-zero if any failed.
 * Usage: check_api [REPORT_FILE]  (the deliberate leak's report goes there) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln.h"

#define NOINLINE __attribute__((noinline, noipa))
static int failures;
#define CHECK(cond, what) do { int ok_ = (cond); printf("%s %s\n", ok_ ? "ok" : "not ok", what); failures += !ok_; } while (0)

static void *volatile keep;

/* The code under test. */
NOINLINE static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 1;
  char *s = malloc(n);
  snprintf(s, n, "%s%s", a, b);
  return s;
}
NOINLINE static void parse_config(void) { /* leak-free */
  for (int i = 0; i < 50; i++) free(join("key=", "value"));
}
NOINLINE static void build_index(int n) { /* n + 1 allocations */
  char **v = calloc((size_t)n, sizeof *v);
  for (int i = 0; i < n; i++) v[i] = malloc(32);
  for (int i = 0; i < n; i++) free(v[i]);
  free(v);
}
NOINLINE static void cache_forever(void) { keep = join("lost ", "string"); } /* 12 bytes */
NOINLINE static void leak_twice(void) { keep = malloc(100); keep = malloc(100); }

static void *scoped_worker(void *arg) {
  int leak = (int)(size_t)arg;
  kiln_leak_scope_t outer = kiln_leak_begin();
  kiln_leak_scope_t inner = kiln_leak_begin();
  for (int i = 0; i < 1000; i++) free(malloc(64));
  if (leak) __atomic_store_n(&keep, malloc(77), __ATOMIC_RELAXED); /* four threads store here */
  int inner_n = kiln_leak_end(inner, NULL);
  int outer_n = kiln_leak_end(outer, NULL);
  return (void *)(size_t)(inner_n * 10 + outer_n);
}

int main(int argc, char **argv) {
  /* A block allocated before any scope, freed inside one: never reported. */
  char *early = join("early", "");

  kiln_leak_scope_t scope = kiln_leak_begin();
  CHECK(scope.valid, "a leak scope opens without kiln_start");
  parse_config();
  free(early);
  CHECK(kiln_leak_end(scope, NULL) == 0, "parse_config leaks nothing");

  kiln_budget_t budget = kiln_budget_begin();
  build_index(100);
  kiln_alloc_stats_t used;
  CHECK(kiln_budget_end(&budget, 101, 100 * 32 + 800, &used, stderr) == 0, "build_index(100) stays within 101 allocations");
  CHECK(used.alloc_count == 101 && used.alloc_bytes == 100 * 32 + 800, "the budget counts exactly 101 allocations, 4000 bytes");

  budget = kiln_budget_begin();
  build_index(200);
  FILE *sink = fopen("/dev/null", "w");
  CHECK(kiln_budget_end(&budget, 101, 0, NULL, sink) == 1, "build_index(200) is over a budget of 101");
  fclose(sink);

  /* A deliberate leak: exact bytes, blocks and stacks. */
  scope = kiln_leak_begin();
  cache_forever();
  leak_twice();
  free(malloc(1000));
  kiln_leak_report_t report;
  int n = kiln_leak_end(scope, &report);
  CHECK(n == 3 && report.blocks == 3 && report.bytes == 212, "3 blocks, 212 bytes leaked in the scope");
  /* leak_twice has two call sites: two sites, as valgrind has two records */
  CHECK(report.nsites == 3 && report.sites[0].bytes == 100 && report.sites[1].bytes == 100 &&
        report.sites[2].bytes == 12 && report.sites[2].blocks == 1, "three sites, largest first");
  FILE *out = argc > 1 ? fopen(argv[1], "w") : stdout;
  kiln_leak_report_print(&report, out);
  if (out != stdout) fclose(out);
  kiln_leak_report_free(&report);

  /* Nested scopes in four threads at once; two threads leak 77 bytes. */
  pthread_t t[4];
  for (size_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, scoped_worker, (void *)(i % 2));
  int per_thread_ok = 1;
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(t[i], &r);
    /* inner and outer scopes see the thread's own leak, and maybe another
     * thread's (scopes cover every thread): at least its own. */
    size_t v = (size_t)r;
    if (i % 2 == 1 && (v / 10 < 1 || v % 10 < 1)) per_thread_ok = 0;
  }
  CHECK(per_thread_ok, "nested scopes in threads see their leaks");

  kiln_alloc_stats_t st;
  kiln_alloc_stats(&st);
  CHECK(st.alloc_count > 0 && st.alloc_count - st.free_count == st.live_count, "allocation stats add up");
  printf("%s\n", failures ? "FAILED" : "all passed");
  return failures != 0;
}
