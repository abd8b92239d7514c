/* kiln.h — the one public header of kiln, an in-process CPU and memory
 * profiler for C and C++ on Linux.
 *
 * Under LD_PRELOAD nothing here is needed: the runtime starts itself from
 * the KILN_* environment and writes its profiles at exit. A program may
 * also control profiling from code (link libkiln.a or -lkiln).
 *
 * Output (DESIGN.md): <dir>/<prog>.<pid>.cpu.folded, folded stacks root
 * first ("main;parse;strlen 42"), and <prog>.<pid>.meta.json with the
 * sampling rate, the unwinder and the counters (samples, drops, truncated
 * stacks). Files appear whole (temporary name, then rename).
 */
#ifndef KILN_H
#define KILN_H

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_VERSION "0.1.0"

/* Features, for kiln_options_t.mode. */
#define KILN_MODE_CPU 1u
#define KILN_MODE_ALLOC 2u /* every allocation, or sampled with KILN_ALLOC_SAMPLE */

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

#ifdef __cplusplus
}
#endif

#endif
