/* kiln_crash.c — profiles whatever way the program ends or is asked:
 *   the dump signal (KILN_DUMP_SIGNAL): its handler only wakes the
 *     collector, which writes a tagged set from its own thread;
 *   fatal signals (SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL): kiln's
 *     handler writes the profile once (no lock waited on, no malloc), then
 *     does what the program asked for: its own handler, or the default
 *     action, so the core dump and the exit status are the program's;
 *   exit signals (SIGHUP, SIGINT, SIGQUIT, SIGTERM) while their action is
 *     the default (kill, Ctrl-C, timeout): kiln's handler writes the
 *     profile, puts SIG_DFL back and raises the signal again, so the
 *     process ends as it would have (status, core for SIGQUIT). kiln holds
 *     them only while the program leaves them at SIG_DFL: a handler or
 *     SIG_IGN the program sets is installed as it is (SIG_IGN must stay
 *     SIG_IGN in the kernel: it survives exec, nohup relies on it).
 * The handlers are installed through the sampler (the runtime's only
 * sigaction); they run in signal context and live in kiln_crash_signal.c,
 * where the build checks what they call. */
#include "kiln_internal.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static const int kiln_crash_fatal[] = {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL};
static const int kiln_crash_exit[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM};
/* Exit signals kiln watches (not the dump signal), and of those the ones
 * whose handler is kiln's now. */
static bool kiln_crash_exit_watched[65];
static bool kiln_crash_dump_on;

static bool kiln_crash_is_default(const struct sigaction *sa) {
  return !(sa->sa_flags & SA_SIGINFO) && sa->sa_handler == SIG_DFL;
}

/* Takes an exit signal if its action is the default one now. */
static void kiln_crash_hold_exit(int sig) {
  if (atomic_load(&kiln_crash_exit_held[sig]) || kiln_sampler_claimed(sig)) return;
  /* Refused (-EBUSY) when the program has a handler or SIG_IGN there. */
  if (kiln_sampler_claim(sig, kiln_crash_on_exit_signal, false) == 0) atomic_store(&kiln_crash_exit_held[sig], true);
}

bool kiln_crash_is_exit_signal(int sig) { return sig > 0 && sig <= 64 && kiln_crash_exit_watched[sig]; }

int kiln_crash_program_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (atomic_load(&kiln_crash_exit_held[sig])) {
    if (old != NULL) *old = *kiln_sampler_program_action(sig); /* the program's view: SIG_DFL */
    if (act == NULL || kiln_crash_is_default(act)) return 0;
    /* The program's own action, installed as it is. The signal is blocked
     * here while the two swap, so that it cannot meet a moment of SIG_DFL
     * in this thread. */
    sigset_t one, saved;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_BLOCK, &one, &saved);
    atomic_store(&kiln_crash_exit_held[sig], false);
    kiln_sampler_unclaim(sig);
    int rc = kiln_libc.sigaction(sig, act, NULL);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    errno = e;
    return rc;
  }
  int rc = kiln_libc.sigaction(sig, act, old);
  /* Back to the default (Python before re-raising SIGINT, bash before
   * killing itself with it): kiln takes it again. */
  if (rc == 0 && act != NULL && kiln_crash_is_default(act) && kiln_profiler_active()) kiln_crash_hold_exit(sig);
  return rc;
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
  for (size_t i = 0; i < sizeof kiln_crash_exit / sizeof *kiln_crash_exit; i++) {
    int sig = kiln_crash_exit[i];
    if (sig == cfg->dump_signal && kiln_crash_dump_on) continue;
    kiln_crash_exit_watched[sig] = true;
    kiln_crash_hold_exit(sig);
  }
}

bool kiln_crash_dump_signal_on(void) { return kiln_crash_dump_on; }
