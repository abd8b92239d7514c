/* kiln_sampler.c — CPU sampling: the SIGPROF handler and the timers that
 * raise it. Timers, best first (chosen by what works here, or KILN_TIMER):
 *   perf    a per-thread perf_event cpu-clock counting user time, signalling
 *           its own thread on each overflow (F_SETSIG/F_SETOWN_EX). Delivers
 *           the requested rate; the tick-based timers below are capped near
 *           CONFIG_HZ signals per CPU-second. User time only, so a signal
 *           never lands inside a system call (no EINTR from kiln).
 *   posix   a per-thread timer_create on the thread's CPU clock.
 *   itimer  setitimer(ITIMER_PROF), process-wide.
 * This is the runtime's only sigaction (with the leak scan's stop signal,
 * installed here too). The handler obeys DESIGN rule 1: the thread's own
 * slot, atomics, the unwinder, the ring; errno kept. */
#include "kiln_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef F_SETSIG
#define F_SETSIG 10
#endif

static struct {
  int hz, max_depth;
  kiln_unwind_fn unwind;
  kiln_timer_kind_t timer;
  bool installed;
  _Atomic bool running;
  _Atomic bool stepped_aside;
  struct sigaction program_action; /* what the program last set for SIGPROF */
  struct sigaction kiln_action;
} kiln_sampler;

static __thread int kiln_tls_in_handler __attribute__((tls_model("initial-exec")));

KILN_SIGNAL_SAFE bool kiln_sampler_in_handler(void) { return kiln_tls_in_handler != 0; }

KILN_SIGNAL_SAFE static void kiln_sampler_on_signal(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  (void)si;
  int saved_errno = errno;
  if (!atomic_load_explicit(&kiln_sampler.running, memory_order_relaxed)) goto out;
  kiln_thread_t *t = kiln_threads_self();
  if (t == NULL) goto out;
  kiln_tls_in_handler = 1;
  const ucontext_t *uc = ucv;
  uint64_t *pcs = t->scratch;
  unsigned flags = 0;
  int n;
  if (KILN_UNLIKELY(kiln_tls_unsafe > 0)) {
    /* Inside the loader or libunwind: unwinding could deadlock or read a
     * half-updated module list. Keep the leaf, say so. */
    pcs[0] = (uint64_t)uc->uc_mcontext.gregs[REG_RIP] + 1;
    n = 1;
    flags = KILN_STACK_SKIPPED;
    atomic_fetch_add_explicit(&t->skipped, 1, memory_order_relaxed);
  } else {
    kiln_tls_unsafe++;
    n = kiln_sampler.unwind(uc, t, pcs, kiln_sampler.max_depth, &flags);
    kiln_tls_unsafe--;
  }
  if (flags & KILN_STACK_TRUNCATED) atomic_fetch_add_explicit(&t->truncated, 1, memory_order_relaxed);
  if (kiln_ring_push(&t->ring, kiln_ring_header((unsigned)n, flags, 1), pcs, (unsigned)n))
    atomic_fetch_add_explicit(&t->samples, 1, memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
  kiln_tls_in_handler = 0;
out:
  errno = saved_errno;
}

static int kiln_sampler_perf_open(pid_t tid, int hz, uint64_t *id) {
  struct perf_event_attr a;
  memset(&a, 0, sizeof a);
  a.type = PERF_TYPE_SOFTWARE;
  a.size = sizeof a;
  a.config = PERF_COUNT_SW_CPU_CLOCK;
  a.sample_period = 1000000000ull / (unsigned)hz; /* cpu-clock counts ns */
  a.disabled = 1;
  a.exclude_kernel = 1;
  a.exclude_hv = 1;
  a.wakeup_events = 1;
  int fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) return -errno;
  struct f_owner_ex owner = {F_OWNER_TID, tid};
  if (fcntl(fd, F_SETFL, O_ASYNC) < 0 || fcntl(fd, F_SETSIG, SIGPROF) < 0 ||
      fcntl(fd, F_SETOWN_EX, &owner) < 0 || ioctl(fd, PERF_EVENT_IOC_ID, id) < 0 ||
      ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

static int kiln_sampler_posix_arm(kiln_thread_t *t, bool self, int hz) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = SIGPROF;
  sev._sigev_un._tid = t->tid;
  /* Another thread's CPU clock: the kernel's encoding of a per-thread
   * scheduler clock (as in glibc's pthread_getcpuclockid). */
  clockid_t clk = self ? CLOCK_THREAD_CPUTIME_ID : (clockid_t)((~(unsigned)t->tid << 3) | 6);
  if (timer_create(clk, &sev, &t->timer) < 0) return -errno;
  long ns = 1000000000L / hz;
  struct itimerspec its = {{0, ns}, {0, ns}};
  if (timer_settime(t->timer, 0, &its, NULL) < 0) {
    int e = errno;
    timer_delete(t->timer);
    return -e;
  }
  atomic_store(&t->has_timer, true);
  return 0;
}

static int kiln_sampler_itimer(int hz) {
  long us = 1000000L / hz;
  struct itimerval it = {{0, us}, {0, us}};
  return setitimer(ITIMER_PROF, &it, NULL) < 0 ? -errno : 0;
}

int kiln_sampler_thread_arm(kiln_thread_t *t) {
  if (atomic_load(&kiln_sampler.stepped_aside) || !kiln_sampler.installed) return 0;
  bool self = t->own && t->tid == (pid_t)syscall(SYS_gettid);
  switch (kiln_sampler.timer) {
  case KILN_TIMER_PERF: {
    uint64_t id = 0;
    int fd = kiln_sampler_perf_open(t->tid, kiln_sampler.hz, &id);
    if (fd < 0) return fd;
    t->perf_id = id;
    atomic_store(&t->perf_fd, fd);
    return 0;
  }
  case KILN_TIMER_POSIX:
    return kiln_sampler_posix_arm(t, self, kiln_sampler.hz);
  default:
    return 0; /* the process-wide itimer covers every thread */
  }
}

void kiln_sampler_thread_disarm(kiln_thread_t *t) {
  /* Whoever takes the fd closes it, once. A program that closed every fd
   * (daemons do) may have reused the number: close it only if it is still
   * our event, never the program's file. */
  int fd = atomic_exchange(&t->perf_fd, -1);
  uint64_t id = 0;
  if (fd >= 0 && ioctl(fd, PERF_EVENT_IOC_ID, &id) == 0 && id == t->perf_id) {
    ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
    close(fd);
  }
  if (atomic_exchange(&t->has_timer, false)) timer_delete(t->timer);
}

/* Tries the timer kinds in order on the calling thread. */
static kiln_timer_kind_t kiln_sampler_pick(kiln_timer_kind_t want, int hz) {
  if (want == KILN_TIMER_AUTO || want == KILN_TIMER_PERF) {
    uint64_t id;
    int fd = kiln_sampler_perf_open((pid_t)syscall(SYS_gettid), hz, &id);
    if (fd >= 0) {
      close(fd);
      return KILN_TIMER_PERF;
    }
    if (want == KILN_TIMER_PERF)
      kiln_log("perf_event_open failed (%s); falling back to a POSIX CPU-time timer", strerror(-fd));
  }
  if (want != KILN_TIMER_ITIMER) {
    timer_t tm;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_NONE;
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &tm) == 0) {
      timer_delete(tm);
      return KILN_TIMER_POSIX;
    }
  }
  return KILN_TIMER_ITIMER;
}

int kiln_sampler_start(const kiln_config_t *cfg) {
  kiln_sampler.hz = cfg->hz;
  kiln_sampler.max_depth = cfg->max_depth;
  kiln_sampler.unwind = kiln_unwind_backend(cfg->unwind);
  if (atomic_load(&kiln_sampler.stepped_aside)) return -EBUSY;
  if (!kiln_sampler.installed) {
    struct sigaction old;
    if (kiln_libc.sigaction(SIGPROF, NULL, &old) == 0 && (old.sa_flags & SA_SIGINFO ? old.sa_sigaction != NULL
                                                : old.sa_handler != SIG_DFL)) {
      /* Someone set SIGPROF before us: theirs it stays. */
      kiln_log("SIGPROF is already handled by the program; CPU sampling off");
      atomic_store(&kiln_sampler.stepped_aside, true);
      return -EBUSY;
    }
    kiln_sampler.program_action = old;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = kiln_sampler_on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (kiln_libc.sigaction(SIGPROF, &sa, NULL) < 0) return -errno;
    kiln_sampler.kiln_action = sa;
    kiln_sampler.installed = true;
  }
  kiln_sampler.timer = kiln_sampler_pick(cfg->timer, cfg->hz);
  atomic_store(&kiln_sampler.running, true);
  if (kiln_sampler.timer == KILN_TIMER_ITIMER) return kiln_sampler_itimer(cfg->hz);
  return 0;
}

static void kiln_sampler_disarm_all(void) {
  if (kiln_sampler.timer == KILN_TIMER_ITIMER) {
    struct itimerval zero;
    memset(&zero, 0, sizeof zero);
    setitimer(ITIMER_PROF, &zero, NULL);
  }
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    if (atomic_load_explicit(&t->state, memory_order_acquire) == KILN_SLOT_ACTIVE)
      kiln_sampler_thread_disarm(t);
  }
}

void kiln_sampler_stop(void) {
  atomic_store(&kiln_sampler.running, false);
  kiln_sampler_disarm_all();
}

kiln_timer_kind_t kiln_sampler_timer(void) { return kiln_sampler.timer; }
bool kiln_sampler_stepped_aside(void) { return atomic_load(&kiln_sampler.stepped_aside); }

const char *kiln_sampler_timer_name(kiln_timer_kind_t k) {
  switch (k) {
  case KILN_TIMER_PERF: return "perf cpu-clock";
  case KILN_TIMER_POSIX: return "posix thread-cpu timer";
  case KILN_TIMER_ITIMER: return "setitimer ITIMER_PROF";
  default: return "none";
  }
}

void kiln_sampler_quiesce(void) {
  if (!kiln_sampler.installed || atomic_load(&kiln_sampler.stepped_aside)) return;
  kiln_sampler_disarm_all();
  /* Setting SIG_IGN discards pending SIGPROFs (POSIX); then put the
   * handler back, which exec resets to SIG_DFL: nothing of ours is left
   * to kill the new image. */
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  kiln_libc.sigaction(SIGPROF, &ign, NULL);
  kiln_libc.sigaction(SIGPROF, &kiln_sampler.kiln_action, NULL);
}

void kiln_sampler_resume(void) {
  if (!atomic_load(&kiln_sampler.running) || atomic_load(&kiln_sampler.stepped_aside)) return;
  if (kiln_sampler.timer == KILN_TIMER_ITIMER) kiln_sampler_itimer(kiln_sampler.hz);
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    if (atomic_load_explicit(&t->state, memory_order_acquire) == KILN_SLOT_ACTIVE &&
        atomic_load(&t->perf_fd) < 0 && !atomic_load(&t->has_timer))
      kiln_sampler_thread_arm(t);
  }
}

int kiln_sampler_program_sigaction(const struct sigaction *act, struct sigaction *old,
                                   int (*real)(int, const struct sigaction *, struct sigaction *)) {
  if (!kiln_sampler.installed || atomic_load(&kiln_sampler.stepped_aside))
    return real(SIGPROF, act, old);
  if (old != NULL) *old = kiln_sampler.program_action;
  if (act == NULL) return 0;
  /* The program wants SIGPROF for itself: stop our timers and hand the
   * signal over. Samples so far are kept and written at exit. */
  atomic_store(&kiln_sampler.stepped_aside, true);
  kiln_sampler_stop();
  kiln_thread_totals_t tot;
  kiln_threads_totals(&tot);
  kiln_log("the program installs its own SIGPROF handler: kiln steps aside "
           "(CPU sampling stopped after %llu samples)", (unsigned long long)tot.samples);
  int rc = real(SIGPROF, act, NULL);
  if (rc == 0) kiln_sampler.program_action = *act;
  return rc;
}

void kiln_sampler_after_fork_child(void) {
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    /* The parent's events: this fd table holds copies of the same event
     * objects. Close them, never disable (that would stop the parent's
     * sampling). POSIX timers are not inherited: nothing to delete. */
    atomic_store(&t->has_timer, false);
    int fd = atomic_exchange(&t->perf_fd, -1);
    uint64_t id = 0;
    if (fd >= 0 && ioctl(fd, PERF_EVENT_IOC_ID, &id) == 0 && id == t->perf_id) close(fd);
  }
}

/* ------------------------------------------ the leak scan's stop signal */

/* A realtime signal the program leaves at SIG_DFL (from SIGRTMAX down), or
 * the one already ours. Every signal is blocked while the handler runs;
 * SA_RESTART, so that a system call it interrupts resumes, not EINTR. */
int kiln_sampler_stop_signal(void (*handler)(int, siginfo_t *, void *)) {
  static int chosen;
  struct sigaction old;
  if (chosen > 0 && kiln_libc.sigaction(chosen, NULL, &old) == 0 && (old.sa_flags & SA_SIGINFO) &&
      old.sa_sigaction == handler)
    return chosen;
  for (int sig = SIGRTMAX; sig >= SIGRTMIN; sig--) {
    if (kiln_libc.sigaction(sig, NULL, &old) < 0) continue;
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&sa.sa_mask);
    if (kiln_libc.sigaction(sig, &sa, NULL) < 0) continue;
    chosen = sig;
    return sig;
  }
  return -EBUSY;
}

/* ------------------------------------- other signals kiln takes for itself
 * The dump signal (only if the program leaves it at SIG_DFL: never stolen)
 * and the fatal signals (always: kiln's handler writes the profile, then
 * runs what the program asked for — its handler, or the default action
 * with its core dump and exit status). The program's own sigaction calls
 * on them are answered with its view and recorded here. */

static struct {
  bool claimed;
  bool chain;                   /* keep ours, run the program's after */
  struct sigaction program;     /* what the program believes is installed */
} kiln_sampler_claims[65];

int kiln_sampler_claim(int sig, void (*handler)(int, siginfo_t *, void *), bool chain) {
  if (sig <= 0 || sig > 64 || sig == SIGPROF) return -EINVAL;
  struct sigaction old;
  if (kiln_libc.sigaction(sig, NULL, &old) < 0) return -errno;
  bool program_has_one = (old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != NULL : old.sa_handler != SIG_DFL;
  if (program_has_one && !chain) return -EBUSY;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = handler;
  /* SA_ONSTACK: a stack overflow's SIGSEGV runs on the program's alternate
   * stack if it set one, as its own handler would. */
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (kiln_libc.sigaction(sig, &sa, NULL) < 0) return -errno;
  kiln_sampler_claims[sig].program = old;
  kiln_sampler_claims[sig].chain = chain;
  kiln_sampler_claims[sig].claimed = true;
  return 0;
}

bool kiln_sampler_claimed(int sig) { return sig > 0 && sig <= 64 && kiln_sampler_claims[sig].claimed; }

KILN_SIGNAL_SAFE const struct sigaction *kiln_sampler_program_action(int sig) {
  return &kiln_sampler_claims[sig].program;
}

/* Puts the program's disposition back (before re-raising a fatal signal,
 * or when the program takes a signal for itself). */
KILN_SIGNAL_SAFE void kiln_sampler_unclaim(int sig) {
  if (!kiln_sampler_claimed(sig)) return;
  kiln_sampler_claims[sig].claimed = false;
  kiln_libc.sigaction(sig, &kiln_sampler_claims[sig].program, NULL);
}

int kiln_sampler_program_claimed_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (old != NULL) *old = kiln_sampler_claims[sig].program;
  if (act == NULL) return 0;
  if (kiln_sampler_claims[sig].chain) {
    kiln_sampler_claims[sig].program = *act; /* ours stays first in line */
    return 0;
  }
  kiln_sampler_claims[sig].program = *act;
  kiln_sampler_unclaim(sig);
  kiln_log("the program takes signal %d for itself: on-demand dumps off", sig);
  return 0;
}
