/* kiln_preload.c — the LD_PRELOAD face: starts the runtime from the KILN_*
 * environment when the library was preloaded (not when a program links it
 * to control profiling from code) and writes the profiles when the program
 * exits. Holds no logic of its own. Runs in the loader's constructor and
 * destructor context: the main thread before main, or the thread that
 * calls exit. */
#include "kiln_internal.h"

#include <stdlib.h>
#include <string.h>

/* Preloaded, or linked? Only LD_PRELOAD names the library for the first. */
static bool kiln_preload_is_preloaded(void) {
  const char *p = getenv("LD_PRELOAD");
  return p != NULL && strstr(p, "libkiln") != NULL;
}

__attribute__((constructor)) static void kiln_preload_init(void) {
  kiln_libc_resolve();
  if (kiln_preload_is_preloaded()) kiln_profiler_start_env();
}

/* A preloaded library is finalised after the program and the libraries
 * that were loaded after it, so every sample is in by now. */
__attribute__((destructor)) static void kiln_preload_fini(void) { kiln_profiler_at_exit(); }
