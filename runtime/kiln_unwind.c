/* kiln_unwind.c — in-process libunwind for the malloc hooks: loaded with
 * dlopen RTLD_LOCAL (its _Unwind_* and backtrace exports never join the
 * program's symbol namespace), warmed per thread in normal context, and
 * gated around fork so that no thread is inside it when the program forks.
 * CPU samples are unwound from their stack copies in kiln_unwind_copy.c. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__thread int kiln_tls_unsafe __attribute__((tls_model("initial-exec"))) = 0;
__thread bool kiln_tls_sigs_held __attribute__((tls_model("initial-exec"))) = false;

void kiln_unwind_sigs_hold(sigset_t *old) {
  /* All but the faults, which only this thread's own code raises: a fault
   * in there still reaches the crash handler instead of killing outright. */
  sigset_t all;
  sigfillset(&all);
  static const int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT, SIGSYS};
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(&all, faults[i]);
  kiln_libc_resolve();
  if (kiln_libc.sigprocmask == NULL || kiln_libc.sigprocmask(SIG_SETMASK, &all, old) != 0) {
    sigemptyset(old);
    return; /* not held: libunwind's calls go to the kernel */
  }
  kiln_tls_sigs_held = true;
}

void kiln_unwind_sigs_release(const sigset_t *old) {
  if (!kiln_tls_sigs_held) return;
  kiln_tls_sigs_held = false;
  kiln_libc.sigprocmask(SIG_SETMASK, old, NULL);
}

static int (*kiln_unw_backtrace)(void **buffer, int size);

/* Fork gate. libunwind's unw_step holds a mutex (its global register-state
 * cache) and the loader's lock (dl_iterate_phdr) while it works: a fork
 * while another thread unwinds would leave them locked in the child, whose
 * next unwind, or its dlopen, hangs. Every libunwind call is counted in
 * flight; fork's prepare handler closes the gate and waits for the count to
 * fall to zero, and calls that find the gate closed do not unwind (the
 * sample keeps its leaf). Both atomics are seq_cst: a Dekker pair. */
static _Atomic int kiln_unwind_forking, kiln_unwind_inflight;

KILN_SIGNAL_SAFE static inline int kiln_unwind_call(void **frames, int cap) {
  atomic_fetch_add(&kiln_unwind_inflight, 1);
  int n = 0;
  if (!atomic_load(&kiln_unwind_forking)) n = kiln_unw_backtrace(frames, cap);
  atomic_fetch_sub(&kiln_unwind_inflight, 1);
  return n;
}

void kiln_unwind_fork_prepare(void) {
  atomic_store(&kiln_unwind_forking, 1);
  /* Unwinds take microseconds; a thread stopped inside one (by a debugger,
   * or a handler of the program's that never returns) is waited for 1 s. */
  for (int i = 0; i < 20000 && atomic_load(&kiln_unwind_inflight) != 0; i++) {
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  }
}

void kiln_unwind_fork_done(void) { atomic_store(&kiln_unwind_forking, 0); }

/* A thread's first unwind sets up libunwind's per-thread trace cache
 * (pthread_once, mmap): do it here, in normal context, not in a handler. */
static void kiln_unwind_warm(void) {
  void *frames[8];
  kiln_unwind_unsafe_enter();
  kiln_unwind_call(frames, 8);
  kiln_unwind_unsafe_leave();
}

int kiln_unwind_init(kiln_unwind_kind_t *kind) {
  if (*kind != KILN_UNWIND_LIBUNWIND) return 0;
  if (kiln_unw_backtrace == NULL) {
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (h != NULL) *(void **)&kiln_unw_backtrace = dlsym(h, "unw_backtrace");
    if (kiln_unw_backtrace != NULL) kiln_allocmaps_kiln_library(*(void **)&kiln_unw_backtrace);
    if (kiln_unw_backtrace == NULL) {
      kiln_log("libunwind.so.8 not found; unwinding with frame pointers (KILN_UNWIND=fp)");
      *kind = KILN_UNWIND_FP;
      return -ENOENT;
    }
  }
  kiln_unwind_warm();
  return 0;
}

/* Called by each new thread before its timer is armed. */
void kiln_unwind_thread_init(kiln_unwind_kind_t kind) {
  if (kind == KILN_UNWIND_LIBUNWIND && kiln_unw_backtrace != NULL) kiln_unwind_warm();
}

const char *kiln_unwind_name(kiln_unwind_kind_t kind) {
  return kind == KILN_UNWIND_FP ? "fp" : "libunwind";
}
