/* kiln_stopworld.c — pausing every other thread of the process while the
 * leak scan reads memory. A realtime signal the program leaves alone
 * (kiln_sampler_stop_signal) parks each thread of /proc/self/task in a
 * handler that saves its registers and waits on a futex; a thread that
 * blocks that signal is not waited for, and it and any that does not park
 * within one bounded wait (1 s for all threads together) are stopped by a
 * short-lived ptrace helper process instead. Normal context, one caller at
 * a time; the stop handler (kiln_stopworld_signal.c) is async-signal-safe. */
#include "kiln_stopworld.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

enum { KILN_STOPWORLD_THREADS = 8192 }; /* threads paused at once (more: counted unstopped) */

static int64_t kiln_stopworld_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Whether thread tid blocks sig, from its SigBlk line in /proc (raw reads). */
static bool kiln_stopworld_blocks_signal(pid_t tid, int sig) {
  char path[64] = "/proc/self/task/", digits[16], buf[2048];
  int nd = 0;
  for (unsigned v = (unsigned)tid; nd == 0 || v != 0; v /= 10) digits[nd++] = (char)('0' + v % 10);
  size_t len = strlen(path);
  while (nd > 0) path[len++] = digits[--nd];
  memcpy(path + len, "/status", 8);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t got = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (got <= 0) return false;
  buf[got] = '\0';
  const char *p = strstr(buf, "SigBlk:");
  if (p == NULL) return false;
  uint64_t mask = 0;
  for (p += 7; *p == ' ' || *p == '\t'; p++) {
  }
  for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
    mask = mask * 16 + (uint64_t)(*p <= '9' ? *p - '0' : *p - 'a' + 10);
  return (mask >> (sig - 1)) & 1;
}

/* Signals every thread of /proc/self/task not yet signalled (raw getdents:
 * opendir would malloc). Returns how many were signalled now. */
static int kiln_stopworld_signal_new(int sig, pid_t self) {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  int sent = 0;
  long got;
  while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long off = 0; off < got;) {
      const struct dirent64 *d = (const void *)(buf + off);
      off += d->d_reclen;
      pid_t tid = 0;
      for (const char *p = d->d_name; *p >= '0' && *p <= '9'; p++) tid = tid * 10 + (*p - '0');
      if (tid <= 0 || tid == self) continue;
      int n = atomic_load(&kiln_stopworld_lot.nthreads);
      bool known = false;
      for (int i = 0; i < n && !known; i++) known = atomic_load(&kiln_stopworld_lot.threads[i].tid) == tid;
      if (known) continue;
      if (n == KILN_STOPWORLD_THREADS) {
        kiln_stopworld_lot.overflow++;
        continue;
      }
      kiln_stopworld_slot_t *r = &kiln_stopworld_lot.threads[n];
      memset(r->regs, 0, sizeof r->regs);
      r->sp = r->tp = 0;
      /* A thread that blocks the signal would never park: not waited for
       * (the ptrace helper stops it). */
      bool blocked = kiln_stopworld_blocks_signal(tid, sig);
      atomic_store(&r->state, blocked ? KILN_STOPWORLD_BLOCKED : KILN_STOPWORLD_SIGNALED);
      atomic_store(&r->tid, tid);
      atomic_store_explicit(&kiln_stopworld_lot.nthreads, n + 1, memory_order_release);
      if (blocked) continue;
      if (syscall(SYS_tgkill, getpid(), tid, sig) == 0)
        sent++;
      else
        atomic_store(&r->state, KILN_STOPWORLD_RESUMED); /* gone already */
    }
  }
  close(fd);
  return sent;
}

/* Parks every other thread: signals, waits (bounded), and looks again for
 * threads created meanwhile. */
static void kiln_stopworld_signal_all(int sig) {
  pid_t self = (pid_t)syscall(SYS_gettid);
  atomic_store(&kiln_stopworld_lot.nthreads, 0);
  atomic_store(&kiln_stopworld_lot.stopped, 0);
  atomic_store_explicit(&kiln_stopworld_lot.stopping, 1, memory_order_release);
  int64_t deadline = kiln_stopworld_now_ns() + KILN_STOPWORLD_STOP_NS;
  uint32_t sent = 0;
  for (int round = 0; round < 8; round++) {
    int now = kiln_stopworld_signal_new(sig, self);
    if (now == 0 && round > 0) break;
    sent += (uint32_t)now;
    for (;;) {
      uint32_t stopped = atomic_load(&kiln_stopworld_lot.stopped);
      int64_t left = deadline - kiln_stopworld_now_ns();
      if (stopped >= sent || left <= 0) break;
      kiln_stopworld_futex_wait(&kiln_stopworld_lot.stopped, stopped, left < 10000000 ? left : 10000000);
    }
    if (kiln_stopworld_now_ns() >= deadline) break;
  }
}

static void kiln_stopworld_unpark(void) {
  atomic_store_explicit(&kiln_stopworld_lot.stopping, 0, memory_order_release);
  atomic_fetch_add_explicit(&kiln_stopworld_lot.gen, 1, memory_order_acq_rel);
  kiln_stopworld_futex_wake(&kiln_stopworld_lot.gen);
}

/* ------------------------------------------------------ the ptrace helper */

/* Threads that block the stop signal (node's and redis' helpers, thread
 * pools that block everything) or do not park in time are stopped another
 * way: a short-lived child process (a raw clone: no atfork handler runs,
 * and no exit signal reaches the program) seizes each with ptrace,
 * interrupts it and sends back its registers through a shared page, keeps
 * it stopped while the scan reads its stack, then detaches; the thread's
 * interrupted system call restarts as after any ptrace stop, and if the
 * helper dies the kernel detaches it. Where ptrace is refused (Yama,
 * seccomp, a setuid program), the thread's whole stack is scanned instead
 * (kiln_scan_mappings): no registers then, and stale words below its
 * stack pointer may keep a lost block reachable. */
enum { KILN_STOPWORLD_HELPED = 256 };
enum { KILN_STOPWORLD_HELPER_GO = 1, KILN_STOPWORLD_HELPER_READY, KILN_STOPWORLD_HELPER_RELEASE, KILN_STOPWORLD_HELPER_DONE };
typedef struct kiln_stopworld_helped {
  pid_t tid;
  int ok;                   /* stopped, registers read */
  int signal;               /* a signal it was stopped delivering: given back at detach */
  struct user_regs_struct regs;
} kiln_stopworld_helped_t;
typedef struct kiln_stopworld_helper {
  _Atomic uint32_t phase;   /* futex (shared): KILN_STOPWORLD_HELPER_* */
  int n;
  kiln_stopworld_helped_t t[KILN_STOPWORLD_HELPED];
} kiln_stopworld_helper_t;

static void kiln_stopworld_shared_wait(_Atomic uint32_t *word, uint32_t val, int64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000ll), (long)(ns % 1000000000ll)};
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, val, &ts, NULL, 0);
}

static void kiln_stopworld_shared_wake(_Atomic uint32_t *word) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Waits (bounded) until *word reaches want. */
static bool kiln_stopworld_shared_until(_Atomic uint32_t *word, uint32_t want, int64_t ns) {
  int64_t deadline = kiln_stopworld_now_ns() + ns;
  for (;;) {
    uint32_t v = atomic_load_explicit(word, memory_order_acquire);
    if (v >= want) return true;
    int64_t left = deadline - kiln_stopworld_now_ns();
    if (left <= 0) return false;
    kiln_stopworld_shared_wait(word, v, left < 10000000 ? left : 10000000);
  }
}

/* The child: raw system calls only (it is a copy of one thread of a
 * process whose locks may be held by threads it does not have). */
__attribute__((noreturn)) static void kiln_stopworld_helper_main(kiln_stopworld_helper_t *h) {
  kiln_stopworld_shared_until(&h->phase, KILN_STOPWORLD_HELPER_GO, 2000000000ll);
  for (int i = 0; i < h->n; i++) {
    pid_t tid = h->t[i].tid;
    if (syscall(SYS_ptrace, PTRACE_SEIZE, tid, 0, 0) != 0) continue;
    if (syscall(SYS_ptrace, PTRACE_INTERRUPT, tid, 0, 0) != 0) continue;
    int status = 0;
    if (syscall(SYS_wait4, tid, &status, __WALL, NULL) != tid || !WIFSTOPPED(status)) continue;
    /* Stopped either by the interrupt or on its way to a pending signal
     * (a signal-delivery stop): that signal must still reach it. */
    if ((status >> 16) != PTRACE_EVENT_STOP) h->t[i].signal = WSTOPSIG(status);
    if (syscall(SYS_ptrace, PTRACE_GETREGS, tid, 0, &h->t[i].regs) == 0) h->t[i].ok = 1;
  }
  atomic_store_explicit(&h->phase, KILN_STOPWORLD_HELPER_READY, memory_order_release);
  kiln_stopworld_shared_wake(&h->phase);
  kiln_stopworld_shared_until(&h->phase, KILN_STOPWORLD_HELPER_RELEASE, 10000000000ll);
  for (int i = 0; i < h->n; i++) syscall(SYS_ptrace, PTRACE_DETACH, h->t[i].tid, 0, (long)h->t[i].signal);
  atomic_store_explicit(&h->phase, KILN_STOPWORLD_HELPER_DONE, memory_order_release);
  kiln_stopworld_shared_wake(&h->phase);
  for (;;) syscall(SYS_exit, 0);
}

static struct {
  kiln_stopworld_helper_t *page;
  pid_t pid;
} kiln_stopworld_helper;

/* Stops the threads that did not park (BLOCKED, or SIGNALED past the
 * deadline) through the helper; those it stopped become TRACED, their
 * registers in the helper's page. Returns how many. */
static int kiln_stopworld_trace_rest(void) {
  int nthreads = atomic_load(&kiln_stopworld_lot.nthreads), want = 0;
  for (int i = 0; i < nthreads; i++) {
    int st = atomic_load(&kiln_stopworld_lot.threads[i].state);
    want += st == KILN_STOPWORLD_BLOCKED || st == KILN_STOPWORLD_SIGNALED;
  }
  if (want == 0) return 0;
  if (kiln_stopworld_helper.page == NULL) {
    void *m = mmap(NULL, sizeof(kiln_stopworld_helper_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 0;
    kiln_stopworld_helper.page = m; /* shared: never scanned as a root (private mappings only) */
  }
  kiln_stopworld_helper_t *h = kiln_stopworld_helper.page;
  memset(h, 0, sizeof *h);
  for (int i = 0; i < nthreads && h->n < KILN_STOPWORLD_HELPED; i++) {
    int st = atomic_load(&kiln_stopworld_lot.threads[i].state);
    if (st == KILN_STOPWORLD_BLOCKED || st == KILN_STOPWORLD_SIGNALED) h->t[h->n++].tid = atomic_load(&kiln_stopworld_lot.threads[i].tid);
  }
  /* The child starts with every signal blocked: none of the program's
   * handlers may ever run in it. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  long pid = syscall(SYS_clone, 0L /* no exit signal */, NULL, NULL, NULL, NULL);
  if (pid == 0) kiln_stopworld_helper_main(h);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (pid < 0) return 0;
  kiln_stopworld_helper.pid = (pid_t)pid;
  prctl(PR_SET_PTRACER, (unsigned long)pid, 0, 0, 0); /* Yama's ptrace_scope 1 (EINVAL without Yama) */
  atomic_store_explicit(&h->phase, KILN_STOPWORLD_HELPER_GO, memory_order_release);
  kiln_stopworld_shared_wake(&h->phase);
  kiln_stopworld_shared_until(&h->phase, KILN_STOPWORLD_HELPER_READY, 1000000000ll);
  int traced = 0;
  if (atomic_load_explicit(&h->phase, memory_order_acquire) >= KILN_STOPWORLD_HELPER_READY) {
    for (int k = 0; k < h->n; k++) {
      if (!h->t[k].ok) continue;
      for (int i = 0; i < nthreads; i++) {
        kiln_stopworld_slot_t *r = &kiln_stopworld_lot.threads[i];
        if (atomic_load(&r->tid) != h->t[k].tid) continue;
        int expect = atomic_load(&r->state);
        if ((expect == KILN_STOPWORLD_BLOCKED || expect == KILN_STOPWORLD_SIGNALED) &&
            atomic_compare_exchange_strong(&r->state, &expect, KILN_STOPWORLD_TRACED)) {
          r->sp = (uintptr_t)h->t[k].regs.rsp;
          r->tp = (uintptr_t)h->t[k].regs.fs_base;
          traced++;
        }
      }
    }
  }
  return traced;
}

/* The registers the helper read for tid (NULL: none). */
static const struct user_regs_struct *kiln_stopworld_traced_regs(pid_t tid) {
  kiln_stopworld_helper_t *h = kiln_stopworld_helper.page;
  for (int k = 0; h != NULL && k < h->n; k++)
    if (h->t[k].tid == tid && h->t[k].ok) return &h->t[k].regs;
  return NULL;
}

/* Detaches and reaps the helper. */
static void kiln_stopworld_untrace(void) {
  if (kiln_stopworld_helper.pid <= 0) return;
  kiln_stopworld_helper_t *h = kiln_stopworld_helper.page;
  atomic_store_explicit(&h->phase, KILN_STOPWORLD_HELPER_RELEASE, memory_order_release);
  kiln_stopworld_shared_wake(&h->phase);
  kiln_stopworld_shared_until(&h->phase, KILN_STOPWORLD_HELPER_DONE, 1000000000ll);
  prctl(PR_SET_PTRACER, 0, 0, 0, 0);
  for (int i = 0; i < 100; i++) {
    int status;
    long r = syscall(SYS_wait4, kiln_stopworld_helper.pid, &status, __WALL | WNOHANG, NULL);
    if (r != 0) break;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  kiln_stopworld_helper.pid = 0;
}

/* ------------------------------------------------------------ interface */

uintptr_t kiln_stopworld_thread_pointer(void) { return kiln_stopworld_tp(); }

int kiln_stopworld_prepare(void) {
  if (kiln_stopworld_lot.threads == NULL) {
    kiln_stopworld_lot.threads = kiln_mem_map(KILN_STOPWORLD_THREADS * sizeof(kiln_stopworld_slot_t));
    if (kiln_stopworld_lot.threads == NULL) return -ENOMEM;
  }
  int sig = kiln_sampler_stop_signal(kiln_stopworld_on_stop);
  if (sig < 0) return sig;
  kiln_stopworld_lot.sig = sig;
  return 0;
}

void kiln_stopworld_stop(void) {
  kiln_stopworld_lot.overflow = 0;
  kiln_stopworld_signal_all(kiln_stopworld_lot.sig);
  kiln_stopworld_lot.traced = (uint64_t)kiln_stopworld_trace_rest();
}

int kiln_stopworld_count(void) { return atomic_load(&kiln_stopworld_lot.nthreads); }

bool kiln_stopworld_thread(int i, kiln_stopworld_thread_t *out) {
  kiln_stopworld_slot_t *r = &kiln_stopworld_lot.threads[i];
  int st = atomic_load_explicit(&r->state, memory_order_acquire);
  memset(out, 0, sizeof *out);
  out->tid = atomic_load(&r->tid);
  if (st == KILN_STOPWORLD_STOPPED) {
    out->regs = (const uint64_t *)r->regs;
    out->nregs = NGREG;
  } else if (st == KILN_STOPWORLD_TRACED) {
    const struct user_regs_struct *regs = kiln_stopworld_traced_regs(out->tid);
    if (regs != NULL) {
      out->regs = (const uint64_t *)regs;
      out->nregs = sizeof *regs / sizeof(uint64_t);
    }
  } else {
    return false;
  }
  out->sp = r->sp;
  out->tp = r->tp;
  return true;
}

int kiln_stopworld_state(pid_t tid) {
  int n = atomic_load(&kiln_stopworld_lot.nthreads), found = -1;
  for (int i = 0; i < n; i++) {
    if (atomic_load(&kiln_stopworld_lot.threads[i].tid) != tid) continue;
    int st = atomic_load(&kiln_stopworld_lot.threads[i].state);
    found = st == KILN_STOPWORLD_SIGNALED || st == KILN_STOPWORLD_BLOCKED ? 0 : 1;
  }
  return found;
}

void kiln_stopworld_counts(kiln_stopworld_counts_t *out) {
  memset(out, 0, sizeof *out);
  int n = atomic_load(&kiln_stopworld_lot.nthreads);
  for (int i = 0; i < n; i++) {
    int st = atomic_load(&kiln_stopworld_lot.threads[i].state);
    if (st == KILN_STOPWORLD_SIGNALED || st == KILN_STOPWORLD_BLOCKED) out->unstopped++;
    if (st == KILN_STOPWORLD_STOPPED) out->parked++;
  }
  out->traced = kiln_stopworld_lot.traced;
  out->unstopped += kiln_stopworld_lot.overflow;
}

void kiln_stopworld_release(void) {
  kiln_stopworld_unpark();
  kiln_stopworld_untrace();
}
