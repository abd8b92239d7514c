/* Unit test of kiln_options: defaults, every KILN_* variable accepted in
 * range and refused out of it, KILN_MODE=off, and KILN_OUT made absolute. */
#include "kiln_internal.h"
#include "kt.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *vars[] = {"KILN_MODE", "KILN_HZ", "KILN_MAX_DEPTH", "KILN_UNWIND",
                             "KILN_TIMER", "KILN_QUIET", "KILN_OUT"};

static void clear(void) {
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
}

static int with(const char *var, const char *value, kiln_config_t *cfg) {
  clear();
  setenv(var, value, 1);
  return kiln_options_from_env(cfg);
}

static void options_defaults(void) {
  kiln_config_t c;
  clear();
  KT_CHECK(kiln_options_from_env(&c) == 0);
  KT_CHECK(c.mode == KILN_MODE_CPU_BIT && c.hz == 999 && c.max_depth == 256);
  KT_CHECK(c.unwind == KILN_UNWIND_LIBUNWIND && c.timer == KILN_TIMER_AUTO && !c.quiet);
  char cwd[4096];
  KT_CHECK(getcwd(cwd, sizeof cwd) && strcmp(c.out_dir, cwd) == 0);
}

static void options_accepted(void) {
  kiln_config_t c;
  KT_CHECK(with("KILN_HZ", "99", &c) == 0 && c.hz == 99);
  KT_CHECK(with("KILN_HZ", "10000", &c) == 0 && c.hz == 10000);
  KT_CHECK(with("KILN_MAX_DEPTH", "1024", &c) == 0 && c.max_depth == 1024);
  KT_CHECK(with("KILN_UNWIND", "fp", &c) == 0 && c.unwind == KILN_UNWIND_FP);
  KT_CHECK(with("KILN_TIMER", "posix", &c) == 0 && c.timer == KILN_TIMER_POSIX);
  KT_CHECK(with("KILN_QUIET", "1", &c) == 0 && c.quiet);
  KT_CHECK(with("KILN_MODE", "cpu", &c) == 0 && c.mode == KILN_MODE_CPU_BIT);
  KT_CHECK(with("KILN_MODE", "off", &c) == 1);
  KT_CHECK(with("KILN_MODE", "lock", &c) == 0 && c.mode == KILN_MODE_LOCK_BIT);
  KT_CHECK(with("KILN_MODE", "cpu,lock", &c) == 0 && c.mode == (KILN_MODE_CPU_BIT | KILN_MODE_LOCK_BIT));
  KT_CHECK(with("KILN_MODE", "cpu,alloc,lock", &c) == 0 &&
           c.mode == (KILN_MODE_CPU_BIT | KILN_MODE_ALLOC_BIT | KILN_MODE_LOCK_BIT));
  KT_CHECK(with("KILN_OUT", "/abs/dir", &c) == 0 && strcmp(c.out_dir, "/abs/dir") == 0);
  char cwd[4096], want[4200];
  KT_CHECK(getcwd(cwd, sizeof cwd) != NULL);
  snprintf(want, sizeof want, "%s/rel/dir", cwd);
  KT_CHECK(with("KILN_OUT", "rel/dir", &c) == 0 && strcmp(c.out_dir, want) == 0);
}

static void options_refused(void) {
  kiln_config_t c;
  const char *bad[][2] = {{"KILN_HZ", "98"}, {"KILN_HZ", "10001"}, {"KILN_HZ", "1e3"},
                          {"KILN_HZ", " 999"}, {"KILN_HZ", "-5"}, {"KILN_HZ", "99999999999999999999"},
                          {"KILN_MAX_DEPTH", "3"}, {"KILN_MAX_DEPTH", "1025"},
                          {"KILN_UNWIND", "dwarf"}, {"KILN_TIMER", "hpet"}, {"KILN_QUIET", "yes"},
                          {"KILN_MODE", "cpu,"}, {"KILN_MODE", "gpu"}, {"KILN_MODE", ","},
                          {"KILN_MODE", "lock,"}, {"KILN_MODE", "locks"}};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) KT_CHECK(with(bad[i][0], bad[i][1], &c) < 0);
}

int main(void) {
  KT_RUN(options_defaults);
  KT_RUN(options_accepted);
  KT_RUN(options_refused);
  return kt_failed_tests != 0;
}
