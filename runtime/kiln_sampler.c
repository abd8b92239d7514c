/* kiln_sampler.c — CPU sampling: the timers, and the fallback SIGPROF
 * handler. Timers, best first (chosen by what works here, or KILN_TIMER):
 *   perf    perf_event cpu-clock events that write samples (registers, a
 *           copy of the user stack, the kernel call chain) into rings the
 *           collector reads (kiln_perf.c): no signal at all, so no EINTR,
 *           no handler on the program's stack, and threads that block
 *           signals are sampled too. Counts user and kernel time where the
 *           system allows it (root, CAP_PERFMON, perf_event_paranoid <= 1),
 *           user time otherwise.
 *   posix   a per-thread timer_create on the thread's CPU clock, SIGPROF.
 *   itimer  setitimer(ITIMER_PROF), process-wide, SIGPROF.
 * With the signal timers the handler only copies the registers and the top
 * of the stack into the thread's ring; the collector unwinds the copy, as
 * it does perf's (the handler: kiln_sampler_signal.c, where the build
 * checks what it calls). This is the runtime's only sigaction (with the
 * leak scan's stop signal and the claimed signals, installed here too). */
#include "kiln_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static struct {
  int hz, max_depth;
  kiln_timer_kind_t timer;
  bool installed;              /* the SIGPROF handler (signal timers only) */
  bool inherited;              /* perf: per-CPU inherited rings are open */
  _Atomic pid_t solo;          /* perf: the one thread, followed by a ring of its own */
  bool kernel;                 /* perf: kernel time is sampled */
  _Atomic bool stepped_aside;
  struct sigaction program_action; /* what the program last set for SIGPROF */
  struct sigaction kiln_action;
} kiln_sampler;

/* perf: this thread's samples are taken (an inherited event, or its own). */
static __thread bool kiln_tls_covered __attribute__((tls_model("initial-exec")));

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

bool kiln_sampler_covered(void) { return kiln_tls_covered; }

void kiln_sampler_thread_inherit(bool parent_covered) {
  kiln_tls_covered = parent_covered && kiln_sampler.timer == KILN_TIMER_PERF && kiln_sampler.inherited &&
                     atomic_load(&kiln_sampler_running);
}

int kiln_sampler_thread_arm(kiln_thread_t *t) {
  if (!atomic_load(&kiln_sampler_running)) return 0;
  bool self = t->own && t->tid == (pid_t)syscall(SYS_gettid);
  switch (kiln_sampler.timer) {
  case KILN_TIMER_PERF: {
    if (self && kiln_tls_covered) return 0; /* an inherited event follows it */
    int rc = kiln_perf_open_thread(t->tid);
    if (rc == 0 && self) kiln_tls_covered = true;
    return rc;
  }
  case KILN_TIMER_POSIX:
    if (atomic_load(&kiln_sampler.stepped_aside)) return 0;
    return kiln_sampler_posix_arm(t, self, kiln_sampler.hz);
  default:
    return 0; /* the process-wide itimer covers every thread */
  }
}

void kiln_sampler_thread_disarm(kiln_thread_t *t) {
  /* perf rings of a thread are closed by the collector once it is gone. */
  if (atomic_exchange(&t->has_timer, false)) timer_delete(t->timer);
}

/* Tries the timer kinds in order on the calling thread. */
static kiln_timer_kind_t kiln_sampler_pick(const kiln_config_t *cfg) {
  kiln_timer_kind_t want = cfg->timer;
  if (want == KILN_TIMER_AUTO || want == KILN_TIMER_PERF) {
    bool kernel = false;
    int rc = kiln_perf_probe(cfg->hz, cfg->cpu_time != KILN_CPU_USER, &kernel);
    if (rc == 0) {
      kiln_sampler.kernel = kernel;
      return KILN_TIMER_PERF;
    }
    if (want == KILN_TIMER_PERF)
      kiln_log("perf_event_open failed (%s); falling back to a POSIX CPU-time timer", strerror(-rc));
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

static int kiln_sampler_install(void) {
  if (kiln_sampler.installed) return 0;
  struct sigaction old;
  if (kiln_libc.sigaction(SIGPROF, NULL, &old) == 0 &&
      (old.sa_flags & SA_SIGINFO ? old.sa_sigaction != NULL
                                 : old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)) {
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
  return 0;
}

/* The number of threads of this process now (/proc/self/stat), 0 unknown. */
static int kiln_sampler_nthreads(void) {
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');
  /* After the name: state is field 3, num_threads field 20. */
  for (int field = 2; p != NULL && field < 20; field++) p = strchr(p + 1, ' ');
  return p != NULL ? atoi(p + 1) : 0;
}

/* A process with one thread (a program starting, a fork child) is followed
 * by one ring of its own rather than one a CPU: the kernel allocates and
 * clears every ring when it is mapped, and for a short process that was
 * most of what kiln cost it (2 MB a CPU). Its first pthread_create turns
 * to the per-CPU inherited rings (kiln_sampler_leave_solo). */
/* Set in a fork child until it resumes sampling: it has one thread. */
static bool kiln_sampler_fork_child;

/* glibc's own "no thread was ever created" (2.32 and later): when set,
 * this process has one thread, without a read of /proc (threads made with
 * a raw clone are not counted, but threads there before the start get rings
 * of their own anyway, kiln_profiler_add_existing). */
extern char __libc_single_threaded __attribute__((weak));

static bool kiln_sampler_open_solo(bool one_thread) {
  if (!one_thread && &__libc_single_threaded != NULL && __libc_single_threaded) one_thread = true;
  if (!one_thread && kiln_sampler_nthreads() != 1) return false;
  pid_t self = (pid_t)syscall(SYS_gettid);
  if (kiln_perf_open_first(self) != 0) return false;
  atomic_store(&kiln_sampler.solo, self);
  kiln_tls_covered = true; /* its ring follows it; its threads are not covered by it */
  return true;
}

bool kiln_sampler_solo(void) { return atomic_load_explicit(&kiln_sampler.solo, memory_order_relaxed) != 0; }

void kiln_sampler_leave_solo(void) {
  pid_t solo = atomic_load(&kiln_sampler.solo);
  if (solo == 0 || !atomic_compare_exchange_strong(&kiln_sampler.solo, &solo, 0)) return;
  if (!atomic_load(&kiln_sampler_running) || kiln_perf_open_inherited() != 0) {
    /* No inherited rings: each new thread gets its own (thread_arm). */
    if (solo == (pid_t)syscall(SYS_gettid)) kiln_tls_covered = true;
    return;
  }
  kiln_sampler.inherited = true;
  kiln_tls_covered = true;
  /* The inherited rings follow the caller now. (A caller that is not the
   * solo thread was made without pthread_create: the solo thread keeps its
   * own ring.) */
  if (solo == (pid_t)syscall(SYS_gettid)) kiln_perf_close_thread(solo);
}

int kiln_sampler_start(const kiln_config_t *cfg) {
  kiln_sampler.hz = cfg->hz;
  kiln_sampler.max_depth = cfg->max_depth;
  kiln_sampler.timer = kiln_sampler_pick(cfg);
  if (kiln_sampler.timer == KILN_TIMER_PERF) {
    /* libunwind comes with the first sample that needs it (kiln_unwind_copy):
     * the samples of kiln's own start are counted without it. */
    atomic_store(&kiln_sampler_running, true);
    if (kiln_sampler_open_solo(false)) return 0;
    kiln_perf_close_thread((pid_t)syscall(SYS_gettid)); /* the probe's ring */
    kiln_sampler.inherited = kiln_perf_open_inherited() == 0;
    kiln_tls_covered = kiln_sampler.inherited;
    return 0;
  }
  if (atomic_load(&kiln_sampler.stepped_aside)) return -EBUSY;
  kiln_threads_want_rings(true); /* the handler writes each thread's ring */
  int rc = kiln_sampler_install();
  if (rc < 0) return rc;
  kiln_unwind_copy_init();
  atomic_store(&kiln_sampler_running, true);
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

void kiln_sampler_stop(kiln_perf_sink_fn sink, void *ctx) {
  atomic_store_explicit(&kiln_sampler_running, false, memory_order_release);
  if (kiln_sampler.timer == KILN_TIMER_PERF) {
    kiln_perf_close_all(sink, ctx);
    kiln_sampler.inherited = false;
    atomic_store(&kiln_sampler.solo, 0);
    kiln_tls_covered = false;
    return;
  }
  kiln_sampler_disarm_all();
  /* A handler that saw running before the store may still be writing its
   * thread's ring: let it finish (it never blocks, so this is short). */
  for (int spins = 0; atomic_load_explicit(&kiln_sampler_handlers, memory_order_acquire) > 0 && spins < 100000;
       spins++)
    sched_yield();
}

void kiln_sampler_halt(void) {
  atomic_store_explicit(&kiln_sampler_running, false, memory_order_release);
  if (kiln_sampler.timer != KILN_TIMER_PERF) kiln_sampler_disarm_all();
}

kiln_timer_kind_t kiln_sampler_timer(void) { return kiln_sampler.timer; }
bool kiln_sampler_stepped_aside(void) { return atomic_load(&kiln_sampler.stepped_aside); }
bool kiln_sampler_kernel(void) { return kiln_sampler.timer == KILN_TIMER_PERF && kiln_sampler.kernel; }

const char *kiln_sampler_timer_name(kiln_timer_kind_t k) {
  switch (k) {
  case KILN_TIMER_PERF: return "perf cpu-clock";
  case KILN_TIMER_POSIX: return "posix thread-cpu timer";
  case KILN_TIMER_ITIMER: return "setitimer ITIMER_PROF";
  default: return "none";
  }
}

void kiln_sampler_quiesce(void) {
  /* perf: no signal can reach the new image; the rings go with the old
   * address space, and stay if exec fails. */
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
  if (!atomic_load(&kiln_sampler_running)) return;
  if (kiln_sampler.timer == KILN_TIMER_PERF) {
    /* After fork, in the child: rings of its own, following its threads
     * (one thread: one ring, until it creates another). After a failed
     * exec the rings are still there. */
    bool one_thread = kiln_sampler_fork_child; /* a fork child's, not after a failed exec */
    kiln_sampler_fork_child = false;
    if (!kiln_sampler.inherited && !kiln_sampler_solo() && !kiln_sampler_open_solo(one_thread)) {
      kiln_sampler.inherited = kiln_perf_open_inherited() == 0;
      kiln_tls_covered = kiln_sampler.inherited;
    }
    return;
  }
  if (atomic_load(&kiln_sampler.stepped_aside)) return;
  if (kiln_sampler.timer == KILN_TIMER_ITIMER) kiln_sampler_itimer(kiln_sampler.hz);
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    if (atomic_load_explicit(&t->state, memory_order_acquire) == KILN_SLOT_ACTIVE && !atomic_load(&t->has_timer))
      kiln_sampler_thread_arm(t);
  }
}

int kiln_sampler_program_sigaction(const struct sigaction *act, struct sigaction *old,
                                   int (*real)(int, const struct sigaction *, struct sigaction *)) {
  /* perf sampling sends no SIGPROF: the program may have it. */
  if (!kiln_sampler.installed || atomic_load(&kiln_sampler.stepped_aside)) return real(SIGPROF, act, old);
  if (old != NULL) *old = kiln_sampler.program_action;
  if (act == NULL) return 0;
  bool takes = act->sa_flags & SA_SIGINFO ? act->sa_sigaction != NULL
                                          : act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
  if (!takes) { /* a reset to the default (git does it) takes nothing from kiln */
    kiln_sampler.program_action = *act;
    return 0;
  }
  /* The program wants SIGPROF for itself: stop our timers and hand the
   * signal over. Samples so far are kept and written at exit. */
  atomic_store(&kiln_sampler.stepped_aside, true);
  kiln_sampler_stop(NULL, NULL);
  kiln_thread_totals_t tot;
  kiln_threads_totals(&tot);
  kiln_log("the program installs its own SIGPROF handler: kiln steps aside "
           "(CPU sampling stopped after %llu samples)", (unsigned long long)tot.samples);
  int rc = real(SIGPROF, act, NULL);
  if (rc == 0) kiln_sampler.program_action = *act;
  return rc;
}

void kiln_sampler_after_fork_child(void) {
  kiln_tls_covered = false;
  if (kiln_sampler.timer == KILN_TIMER_PERF) {
    kiln_perf_after_fork_child();
    kiln_sampler.inherited = false;
    kiln_sampler_fork_child = true;
    atomic_store(&kiln_sampler.solo, 0);
    return;
  }
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) /* POSIX timers are not inherited */
    atomic_store(&kiln_threads_slot(i)->has_timer, false);
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
