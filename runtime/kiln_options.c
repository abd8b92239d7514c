/* kiln_options.c — the runtime's configuration from the KILN_* environment.
 * Read with secure_getenv, so a setuid program never obeys it. A bad value
 * is reported in one line and profiling stays off: the program runs on.
 * Runs once at start, in normal context. */
#include "kiln_internal.h"
#include "kiln_contract.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void kiln_options_defaults(kiln_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->mode = KILN_MODE_CPU_BIT;
  cfg->hz = KILN_HZ_DEFAULT;
  cfg->wall_hz = KILN_WALL_HZ_DEFAULT;
  cfg->max_depth = KILN_DEPTH_DEFAULT;
  cfg->unwind = KILN_UNWIND_LIBUNWIND;
  cfg->timer = KILN_TIMER_AUTO;
  strcpy(cfg->out_dir, ".");
}

/* A whole decimal number in [lo, hi], nothing else around it. */
static bool kiln_options_int(const char *s, long lo, long hi, int *out) {
  if (s == NULL || *s == '\0') return false;
  long v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (*p - '0');
    if (v > hi) return false;
  }
  if (v < lo) return false;
  *out = (int)v;
  return true;
}

/* KILN_MODE: comma-separated features. */
static int kiln_options_mode(const char *s, unsigned *mode) {
  if (strcmp(s, "off") == 0 || strcmp(s, "none") == 0) return 1;
  unsigned m = 0;
  char word[32];
  while (*s) {
    size_t n = strcspn(s, ",");
    if (n == 0 || n >= sizeof word) return -EINVAL;
    memcpy(word, s, n);
    word[n] = '\0';
    if (strcmp(word, "cpu") == 0)
      m |= KILN_MODE_CPU_BIT;
    else if (strcmp(word, "alloc") == 0)
      m |= KILN_MODE_ALLOC_BIT;
    else if (strcmp(word, "wall") == 0)
      m |= KILN_MODE_WALL_BIT;
    else if (strcmp(word, "lock") == 0)
      m |= KILN_MODE_LOCK_BIT;
    else
      return -EINVAL;
    s += n;
    if (*s == ',' && *++s == '\0') return -EINVAL; /* "cpu," */
  }
  if (m == 0) return -EINVAL;
  *mode = m;
  return 0;
}

/* var, if set, must be one of words: *out gets the matching value (-1 when
 * unset). False, after one line naming the choices, for anything else. */
static bool kiln_options_keyword(const char *var, const char *const *words, const int *values,
                                 int n, int *out) {
  const char *v = secure_getenv(var);
  *out = -1;
  if (v == NULL || *v == '\0') return true;
  char choices[128] = "";
  for (int i = 0; i < n; i++) {
    if (strcmp(v, words[i]) == 0) {
      *out = values[i];
      return true;
    }
    strcat(choices, i == 0 ? "" : i == n - 1 ? " or " : ", ");
    strcat(choices, words[i]);
  }
  kiln_log("%s=%s: expected %s; profiling disabled", var, v, choices);
  return false;
}

int kiln_options_from_env(kiln_config_t *cfg) {
  kiln_options_defaults(cfg);
  const char *v;
  if ((v = secure_getenv("KILN_MODE")) != NULL && *v) {
    int rc = kiln_options_mode(v, &cfg->mode);
    if (rc == 1) return 1;
    if (rc < 0) {
      kiln_log("KILN_MODE=%s: expected a comma-separated list of cpu, alloc, wall, lock, or off; profiling disabled", v);
      return -EINVAL;
    }
  }
  if ((v = secure_getenv("KILN_HZ")) != NULL && *v &&
      !kiln_options_int(v, KILN_HZ_MIN, KILN_HZ_MAX, &cfg->hz)) {
    kiln_log("KILN_HZ=%s: expected a whole number from %d to %d; profiling disabled", v,
             KILN_HZ_MIN, KILN_HZ_MAX);
    return -EINVAL;
  }
  if ((v = secure_getenv("KILN_WALL_HZ")) != NULL && *v &&
      !kiln_options_int(v, KILN_WALL_HZ_MIN, KILN_WALL_HZ_MAX, &cfg->wall_hz)) {
    kiln_log("KILN_WALL_HZ=%s: expected a whole number from %d to %d; profiling disabled", v,
             KILN_WALL_HZ_MIN, KILN_WALL_HZ_MAX);
    return -EINVAL;
  }
  if ((v = secure_getenv("KILN_MAX_DEPTH")) != NULL && *v &&
      !kiln_options_int(v, KILN_DEPTH_MIN, KILN_DEPTH_MAX, &cfg->max_depth)) {
    kiln_log("KILN_MAX_DEPTH=%s: expected a whole number from %d to %d; profiling disabled", v,
             KILN_DEPTH_MIN, KILN_DEPTH_MAX);
    return -EINVAL;
  }
  static const char *const unwinds[] = {"libunwind", "fp"};
  static const int unwind_kinds[] = {KILN_UNWIND_LIBUNWIND, KILN_UNWIND_FP};
  static const char *const timers[] = {"auto", "perf", "posix", "itimer"};
  static const int timer_kinds[] = {KILN_TIMER_AUTO, KILN_TIMER_PERF, KILN_TIMER_POSIX,
                                    KILN_TIMER_ITIMER};
  int kind;
  if (!kiln_options_keyword("KILN_UNWIND", unwinds, unwind_kinds, 2, &kind)) return -EINVAL;
  if (kind >= 0) cfg->unwind = (kiln_unwind_kind_t)kind;
  if (!kiln_options_keyword("KILN_TIMER", timers, timer_kinds, 4, &kind)) return -EINVAL;
  if (kind >= 0) cfg->timer = (kiln_timer_kind_t)kind;
  static const char *const cpus[] = {"all", "user"};
  static const int cpu_kinds[] = {KILN_CPU_ALL, KILN_CPU_USER};
  if (!kiln_options_keyword("KILN_CPU", cpus, cpu_kinds, 2, &kind)) return -EINVAL;
  if (kind >= 0) cfg->cpu_time = (kiln_cpu_time_t)kind;
  if ((v = secure_getenv("KILN_ALLOC_SAMPLE")) != NULL && *v) {
    /* Mean bytes between samples; 0 keeps every allocation. */
    uint64_t r = 0;
    const char *p = v;
    for (; *p >= '0' && *p <= '9' && r < (1ull << 40); p++) r = r * 10 + (uint64_t)(*p - '0');
    if (*p != '\0' || r >= (1ull << 40)) {
      kiln_log("KILN_ALLOC_SAMPLE=%s: expected a byte count below 2^40 (0: exact); profiling disabled", v);
      return -EINVAL;
    }
    cfg->alloc_sample = r;
  }
  static const char *const leak_checks[] = {"full", "summary", "off"};
  static const int leak_check_kinds[] = {KILN_LEAK_CHECK_FULL, KILN_LEAK_CHECK_SUMMARY, KILN_LEAK_CHECK_OFF};
  if (!kiln_options_keyword("KILN_LEAK_CHECK", leak_checks, leak_check_kinds, 3, &kind)) return -EINVAL;
  if (kind >= 0) cfg->leak_check = (kiln_leak_check_t)kind;
  if ((v = secure_getenv("KILN_SUPPRESS")) != NULL && *v) {
    /* Read at exit, when the leaks are known (kiln_scan.c). */
    if (strlen(v) >= sizeof cfg->suppress) {
      kiln_log("KILN_SUPPRESS: path too long; profiling disabled");
      return -EINVAL;
    }
    strcpy(cfg->suppress, v);
  }
  int secs = 0;
  if ((v = secure_getenv("KILN_INTERVAL")) != NULL && *v) {
    if (!kiln_options_int(v, 1, 86400, &secs)) {
      kiln_log("KILN_INTERVAL=%s: expected whole seconds from 1 to 86400; profiling disabled", v);
      return -EINVAL;
    }
    cfg->interval_ns = (uint64_t)secs * 1000000000ull;
    cfg->pprof = true; /* a shipper's format with every interval */
  }
  static const char *const imodes[] = {"delta", "cumulative"};
  static const int imode_vals[] = {0, 1};
  if (!kiln_options_keyword("KILN_INTERVAL_MODE", imodes, imode_vals, 2, &kind)) return -EINVAL;
  if (kind >= 0) cfg->interval_cumulative = kind == 1;
  static const char *const onoff[] = {"0", "1"};
  static const int onoff_vals[] = {0, 1};
  if (!kiln_options_keyword("KILN_PPROF", onoff, onoff_vals, 2, &kind)) return -EINVAL;
  if (kind >= 0) cfg->pprof = kind == 1;
  if ((v = secure_getenv("KILN_DUMP_SIGNAL")) != NULL && *v) {
    cfg->dump_signal = kiln_contract_signal_parse(v); /* the grammar kiln dump shares */
    if (cfg->dump_signal <= 0) {
      kiln_log("KILN_DUMP_SIGNAL=%s: expected a signal name (USR1, SIGUSR2, RTMIN+3...) or number that "
               "kiln may take; profiling disabled", v);
      return -EINVAL;
    }
  }
  if ((v = secure_getenv("KILN_QUIET")) != NULL && *v) {
    if (strcmp(v, "1") == 0)
      cfg->quiet = true;
    else if (strcmp(v, "0") != 0) {
      kiln_log("KILN_QUIET=%s: expected 0 or 1; profiling disabled", v);
      return -EINVAL;
    }
  }
  if ((v = secure_getenv("KILN_OUT")) != NULL && *v) {
    if (strlen(v) >= sizeof cfg->out_dir - 256) {
      kiln_log("KILN_OUT: path too long; profiling disabled");
      return -EINVAL;
    }
    strcpy(cfg->out_dir, v);
  }
  return kiln_options_resolve_out(cfg);
}

int kiln_options_resolve_out(kiln_config_t *cfg) {
  if (cfg->out_dir[0] == '/') return 0;
  char cwd[4096];
  if (getcwd(cwd, sizeof cwd) == NULL) {
    kiln_log("cannot resolve KILN_OUT=%s: the current directory is unknown; profiling disabled",
             cfg->out_dir);
    return -EINVAL;
  }
  char abs[sizeof cfg->out_dir];
  size_t n = strlen(cwd), m = strlen(cfg->out_dir);
  if (n + 1 + m + 1 > sizeof abs - 256) {
    kiln_log("KILN_OUT: path too long; profiling disabled");
    return -EINVAL;
  }
  memcpy(abs, cwd, n);
  abs[n] = '/';
  memcpy(abs + n + 1, cfg->out_dir, m + 1);
  /* "./" adds nothing: keep names readable. */
  if (strcmp(cfg->out_dir, ".") == 0) abs[n] = '\0';
  strcpy(cfg->out_dir, abs);
  return 0;
}
