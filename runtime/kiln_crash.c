/* kiln_crash.c — profiles whatever way the program ends or is asked:
 *   the dump signal (KILN_DUMP_SIGNAL): its handler only wakes the
 *     collector, which writes a tagged set from its own thread;
 *   fatal signals (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL): kiln's
 *     handler writes the profile once (no lock waited on, no malloc), then
 *     does what the program asked for: its own handler, or the default
 *     action, so the core dump and the exit status are the program's.
 * The handlers are installed through the sampler (the runtime's only
 * sigaction); they run in signal context. */
#include "kiln_internal.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

static const int kiln_crash_fatal[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
static _Atomic bool kiln_crash_dumped;
static bool kiln_crash_dump_on;

KILN_SIGNAL_SAFE static void kiln_crash_on_dump_signal(int sig, siginfo_t *si, void *uc) {
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
static void kiln_crash_on_fatal(int sig, siginfo_t *si, void *uc) {
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

void kiln_crash_start(const kiln_config_t *cfg) {
  for (size_t i = 0; i < sizeof kiln_crash_fatal / sizeof *kiln_crash_fatal; i++)
    if (!kiln_sampler_claimed(kiln_crash_fatal[i]))
      kiln_sampler_claim(kiln_crash_fatal[i], kiln_crash_on_fatal, true);
  if (cfg->dump_signal > 0 && !kiln_sampler_claimed(cfg->dump_signal)) {
    int rc = kiln_sampler_claim(cfg->dump_signal, kiln_crash_on_dump_signal, false);
    kiln_crash_dump_on = rc == 0;
    if (rc == -EBUSY)
      kiln_log("KILN_DUMP_SIGNAL=%d: the program handles that signal; on-demand dumps off", cfg->dump_signal);
  }
}

bool kiln_crash_dump_signal_on(void) { return kiln_crash_dump_on; }
