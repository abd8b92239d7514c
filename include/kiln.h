/* kiln.h — the one public header of kiln, an in-process CPU and memory
 * profiler for C and C++ on Linux.
 *
 * Under LD_PRELOAD nothing here is needed: the runtime starts itself from
 * the KILN_* environment and writes its profiles at exit. A program may
 * also control profiling from code (link libkiln.a or -lkiln).
 *
 * Linked into a test (libkiln.a, or -lkiln through pkg-config) the same
 * runtime interposes the malloc family, but does nothing until asked: a
 * program that never calls kiln_start (nor a kiln_leak_* or kiln_budget_*
 * function) runs at full speed and writes nothing.
 *
 * Output (DESIGN.md): <dir>/<prog>.<pid>.cpu.folded, folded stacks root
 * first ("main;parse;strlen 42"), and <prog>.<pid>.meta.json with the
 * sampling rate, the unwinder and the counters (samples, drops, truncated
 * stacks). Files appear whole (temporary name, then rename).
 */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_VERSION "0.1.0"

/* Features, for kiln_options_t.mode. */
#define KILN_MODE_CPU 1u
#define KILN_MODE_WALL 4u  /* wall-clock time of every thread, waits included */
#define KILN_MODE_ALLOC 2u /* every allocation, or sampled with KILN_ALLOC_SAMPLE */
#define KILN_MODE_LOCK 8u  /* time waited for contended locks, per stack of the waiter */

/* Unwinders, for kiln_options_t.unwind. */
#define KILN_UNWIND_DEFAULT 0 /* KILN_UNWIND from the environment, else libunwind */
#define KILN_UNWIND_WITH_LIBUNWIND 1
#define KILN_UNWIND_WITH_FP 2 /* frame pointers: fast, needs -fno-omit-frame-pointer */

/* Options for kiln_start. Zero fields take the KILN_* environment, else
 * the documented defaults. */
typedef struct kiln_options {
  unsigned mode;       /* KILN_MODE_* bits; 0: KILN_MODE, else CPU */
  int hz;              /* samples per CPU-second, 99..10000; 0: KILN_HZ, else 999 */
  int max_depth;       /* frames per stack, 4..1024; 0: KILN_MAX_DEPTH, else 256 */
  int unwind;          /* KILN_UNWIND_* */
  const char *out_dir; /* NULL: KILN_OUT, else the current directory */
  int quiet;           /* nonzero: no summary line on stderr */
} kiln_options_t;

/* Starts profiling the whole process (every thread, existing and new).
 * Returns 0, or a negative errno: -EALREADY if running, -EINVAL for a bad
 * option (one "kiln:" line on stderr says which). Thread-safe. */
int kiln_start(const kiln_options_t *opts);

/* Stops sampling; what was collected stays until kiln_dump or kiln_reset.
 * Thread-safe; a no-op when not running. */
void kiln_stop(void);

/* Writes the profiles collected so far into dir (NULL: the configured
 * output directory), creating it if missing. Profiling goes on. Returns 0
 * or a negative errno. Thread-safe; not from a signal handler. */
int kiln_dump(const char *dir);

/* Forgets every count collected so far. Thread-safe. */
void kiln_reset(void);

/* ------------------------------------------------------------ allocations */

typedef struct kiln_alloc_stats {
  size_t alloc_count, alloc_bytes; /* allocated since start (or reset) */
  size_t free_count, free_bytes;   /* freed since then */
  size_t live_count, live_bytes;   /* still allocated */
  size_t peak_bytes;               /* largest live_bytes seen */
} kiln_alloc_stats_t;

/* Fills out from allocation tracking (all zero when it is off). Counts are
 * exact in exact mode, estimates with KILN_ALLOC_SAMPLE. Thread-safe. */
void kiln_alloc_stats(kiln_alloc_stats_t *out);

/* ------------------------------------------------------ scoped leak checks
 * kiln_leak_begin opens a scope; kiln_leak_end reports the blocks allocated
 * inside it, by any thread, and still allocated at its end. Blocks from
 * before the scope, or freed inside it, are never reported. Scopes nest
 * and may overlap across threads. Exact allocation tracking is started if
 * it is not running (no profile files are written for that). */

typedef struct kiln_leak_scope {
  unsigned long long first; /* the scope's first allocation number */
  int valid;                /* 0: the scope could not be opened */
} kiln_leak_scope_t;

typedef struct kiln_leak_site {
  size_t bytes, blocks;
  size_t depth;
  const void *const *frames; /* return addresses, the caller of malloc first */
} kiln_leak_site_t;

typedef struct kiln_leak_report {
  size_t blocks, bytes;   /* leaked in all */
  size_t nsites;
  kiln_leak_site_t *sites; /* one per stack, largest first */
  void *priv;             /* memory owned by the report */
  size_t priv_size;
} kiln_leak_report_t;

/* Opens a scope. Thread-safe; not from a signal handler. .valid is 0 when
 * allocation tracking is sampled (KILN_ALLOC_SAMPLE), which cannot see
 * every block. */
kiln_leak_scope_t kiln_leak_begin(void);

/* Closes the scope. Returns the number of blocks leaked in it (0: clean),
 * or a negative errno (-EINVAL for an invalid scope, -ENOMEM). When out is
 * not NULL it receives the report, to be freed with kiln_leak_report_free
 * (also when 0 is returned). Thread-safe. */
int kiln_leak_end(kiln_leak_scope_t scope, kiln_leak_report_t *out);

/* Prints the report like `kiln leaks`: a total, then each site largest
 * first with its symbolized stack, leaf first. */
void kiln_leak_report_print(const kiln_leak_report_t *report, FILE *f);
void kiln_leak_report_free(kiln_leak_report_t *report);

/* ------------------------------------------------------ allocation budgets
 * kiln_budget_begin ... kiln_budget_end: how many allocations and bytes the
 * code in between made (every thread's calls count), checked against
 * limits; the stacks that allocated are printed when a limit is passed. */

typedef struct kiln_budget {
  unsigned long long alloc_count, alloc_bytes; /* totals at begin */
  void *snapshot;                              /* per-stack totals at begin */
  size_t snapshot_size;
  int valid;
} kiln_budget_t;

kiln_budget_t kiln_budget_begin(void);

/* Returns 0 within the limits (0 = no limit), 1 when over (the stacks that
 * allocated since begin printed to report when not NULL, largest first),
 * or a negative errno. used (may be NULL) gets the counts since begin.
 * Frees what begin took. Thread-safe. */
int kiln_budget_end(kiln_budget_t *budget, size_t max_allocs, size_t max_bytes,
                    kiln_alloc_stats_t *used, FILE *report);

#ifdef __cplusplus
}

#include <cstdlib>

namespace kiln {
/* Checks at scope exit that nothing allocated inside the scope is still
 * allocated: prints the leaks to stderr and aborts (the test fails), or
 * with LeakCheck::report_only only prints. check() ends the scope early and
 * returns the number of blocks leaked, for an assertion of one's own. */
class LeakCheck {
 public:
  enum Mode { abort_on_leak, report_only };
  explicit LeakCheck(Mode mode = abort_on_leak) : scope_(kiln_leak_begin()), mode_(mode), done_(false) {}
  ~LeakCheck() {
    if (!done_ && check() > 0 && mode_ == abort_on_leak) std::abort();
  }
  long check(FILE *out = stderr) {
    if (done_) return leaked_;
    done_ = true;
    kiln_leak_report_t report;
    leaked_ = kiln_leak_end(scope_, &report);
    if (leaked_ > 0 && out != NULL) kiln_leak_report_print(&report, out);
    if (leaked_ >= 0) kiln_leak_report_free(&report);
    return leaked_;
  }
  LeakCheck(const LeakCheck &) = delete;
  LeakCheck &operator=(const LeakCheck &) = delete;

 private:
  kiln_leak_scope_t scope_;
  Mode mode_;
  bool done_;
  long leaked_ = 0;
};
}  // namespace kiln
#endif

#endif
