/* kiln_preload.c — the LD_PRELOAD face: starts the runtime from the KILN_*
 * environment when the library is loaded and writes the profiles when the
 * program exits. Holds no logic of its own. Runs in the loader's
 * constructor/destructor context, in the main thread before main (or in the
 * thread that calls exit). */
#include "kiln_internal.h"

__attribute__((constructor)) static void kiln_preload_init(void) {
  kiln_libc_resolve();
  kiln_profiler_start_env();
}

/* A preloaded library is finalised after the program and the libraries
 * that were loaded after it, so every sample is in by now. */
__attribute__((destructor)) static void kiln_preload_fini(void) { kiln_profiler_at_exit(); }
