/* check_cmocka — kiln's leak scope and budget inside a cmocka test suite:
 * a fixture opens a scope in setup and fails the test in teardown if the
 * test leaked. One test leaks on purpose when run with KILN_DEMO_LEAK=1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kiln.h"

static void *volatile keep;

static int leak_setup(void **state) {
  kiln_leak_scope_t *scope = malloc(sizeof *scope);
  *scope = kiln_leak_begin();
  *state = scope;
  return scope->valid ? 0 : -1;
}

static int leak_teardown(void **state) {
  kiln_leak_scope_t scope = *(kiln_leak_scope_t *)*state;
  free(*state); /* allocated before the scope: not a leak either way */
  kiln_leak_report_t report;
  int leaked = kiln_leak_end(scope, &report);
  if (leaked > 0) kiln_leak_report_print(&report, stderr);
  kiln_leak_report_free(&report);
  return leaked == 0 ? 0 : -1; /* a failing teardown fails the test */
}

static char *dup_upper(const char *s) {
  char *d = strdup(s);
  for (char *p = d; *p; p++) if (*p >= 'a' && *p <= 'z') *p -= 32;
  return d;
}

static void test_dup_upper(void **state) {
  (void)state;
  char *d = dup_upper("kiln");
  assert_string_equal(d, "KILN");
  free(d);
  if (getenv("KILN_DEMO_LEAK")) keep = dup_upper("leaked");
}

static void test_budget(void **state) {
  (void)state;
  kiln_budget_t b = kiln_budget_begin();
  for (int i = 0; i < 10; i++) free(dup_upper("word"));
  kiln_alloc_stats_t used;
  assert_int_equal(kiln_budget_end(&b, 10, 0, &used, stderr), 0);
  assert_int_equal(used.alloc_count, 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_dup_upper, leak_setup, leak_teardown),
      cmocka_unit_test_setup_teardown(test_budget, leak_setup, leak_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
