/* kiln_crash_signal.c — the handlers of the dump signal, the fatal signals
 * and the exit signals (kiln_crash.c says what each does and claims them
 * through the sampler). Signal context only: this file may call only
 * async-signal-safe functions and kiln's [signal] ones, and the build
 * checks it (nm -u against tests/contracts/signal_allow.txt). */
#include "kiln_internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

_Atomic bool kiln_crash_exit_held[65];
static _Atomic bool kiln_crash_dumped;

KILN_SIGNAL_SAFE void kiln_crash_on_dump_signal(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)si;
  (void)uc;
  int saved = errno;
  kiln_collector_request_dump();
  errno = saved;
}

/* Not async-signal-safe in the strict sense (it writes files and reads
 * ELF symbol tables), but it takes no lock that may be held and allocates
 * with mmap only: the best that can be done for a process about to die. */
void kiln_crash_on_fatal(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  if (!atomic_exchange(&kiln_crash_dumped, true)) kiln_profiler_emergency(KILN_DUMP_FATAL, sig);
  const struct sigaction *prog = kiln_sampler_program_action(sig);
  errno = saved;
  if (prog->sa_flags & SA_SIGINFO) {
    if (prog->sa_sigaction != NULL) {
      if (prog->sa_flags & SA_RESETHAND) kiln_sampler_unclaim(sig);
      prog->sa_sigaction(sig, si, uc);
      return;
    }
  } else if (prog->sa_handler == SIG_IGN) {
    return;
  } else if (prog->sa_handler != SIG_DFL) {
    if (prog->sa_flags & SA_RESETHAND) kiln_sampler_unclaim(sig);
    prog->sa_handler(sig);
    return;
  }
  /* The default action: put it back. A fault re-executes the faulting
   * instruction on return and dies of it; a signal that was sent (kill,
   * raise, abort) is raised again, delivered when this handler returns. */
  kiln_sampler_unclaim(sig);
  if (si == NULL || si->si_code <= 0 || sig == SIGABRT) raise(sig);
}

KILN_SIGNAL_SAFE void kiln_crash_on_exit_signal(int sig, siginfo_t *si, void *uc) {
  (void)si;
  (void)uc;
  int saved = errno;
  if (!kiln_profiler_is_self()) {
    /* A vfork child shares kiln's memory: touch nothing, just end. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    kiln_libc.sigaction(sig, &dfl, NULL);
  } else {
    if (!atomic_exchange(&kiln_crash_dumped, true)) kiln_profiler_exit_signal(sig);
    atomic_store(&kiln_crash_exit_held[sig], false);
    kiln_sampler_unclaim(sig); /* SIG_DFL, as the program left it */
  }
  /* Blocked while this handler runs: delivered, with its default action,
   * as soon as it returns. */
  syscall(SYS_tgkill, getpid(), (pid_t)syscall(SYS_gettid), sig);
  errno = saved;
}
