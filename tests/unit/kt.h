/* kt.h — the unit tests' whole framework: KT_CHECK records the first
 * failure of the current test; kt_run prints "PASS name" or
 * "FAIL name: where" for each test; main returns non-zero on failure. */
#ifndef KT_H
#define KT_H
#include <stdio.h>

static const char *kt_first_failure;
static char kt_where[256];
static int kt_failed_tests;

#define KT_STR2(x) #x
#define KT_STR(x) KT_STR2(x)
#define KT_CHECK(cond)                                                                  \
  do {                                                                                  \
    if (!(cond) && kt_first_failure == NULL) {                                          \
      snprintf(kt_where, sizeof kt_where, "%s:%d: %s", __FILE__, __LINE__, #cond);     \
      kt_first_failure = kt_where;                                                      \
    }                                                                                   \
  } while (0)

static void kt_run(const char *name, void (*fn)(void)) {
  kt_first_failure = NULL;
  fn();
  if (kt_first_failure == NULL) {
    printf("PASS %s\n", name);
  } else {
    printf("FAIL %s: %s\n", name, kt_first_failure);
    kt_failed_tests++;
  }
  fflush(stdout);
}
#define KT_RUN(fn) kt_run(#fn, fn)
#endif
