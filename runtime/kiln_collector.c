/* kiln_collector.c — the runtime's own thread: every few milliseconds it
 * drains each thread's ring into the stack table, releases the slots of
 * threads that ended, and notices foreign threads (registered from outside)
 * that are gone. All signals are blocked in it, it is never sampled, and its
 * CPU time is measured so that it can be reported and kept out of the
 * delivered rate. Draining is serialised by one mutex: the collector and a
 * dump are the rings' only consumers. */
#include "kiln_internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static struct {
  pthread_t thread;
  bool started;
  _Atomic int stop; /* futex word (also woken for a dump request) */
  _Atomic int dump_requested;
  long period_ns;
  uint64_t interval_ns;
  void (*dump)(kiln_dump_reason_t reason);
  int dump_signal; /* the one signal this thread takes, 0 none */
  clockid_t cpu_clock;
  double cpu_seconds; /* of collectors that have stopped */
  uint64_t pcs[KILN_DEPTH_MAX + 8];
} kiln_collector;

static pthread_mutex_t kiln_collector_lock = PTHREAD_MUTEX_INITIALIZER;

static void kiln_collector_drain_locked(void) {
  uint64_t *pcs = kiln_collector.pcs;
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    int st = atomic_load_explicit(&t->state, memory_order_acquire);
    if (st != KILN_SLOT_ACTIVE && st != KILN_SLOT_EXITED) continue;
    uint64_t header;
    int n;
    while ((n = kiln_ring_pop(&t->ring, &header, pcs, KILN_DEPTH_MAX)) >= 0) {
      unsigned flags = (unsigned)(header >> 16) & 0xff;
      uint32_t weight = (uint32_t)(header >> 32);
      uint32_t id = kiln_stacktab_intern(pcs, (unsigned)n, flags);
      kiln_stacktab_add(kiln_stacktab_get(id), KILN_COUNT_CPU, weight);
    }
    if (st == KILN_SLOT_EXITED) kiln_threads_release(t);
  }
}

void kiln_collector_drain(void) {
  pthread_mutex_lock(&kiln_collector_lock);
  kiln_collector_drain_locked();
  pthread_mutex_unlock(&kiln_collector_lock);
}

void kiln_collector_try_drain(void) {
  if (pthread_mutex_trylock(&kiln_collector_lock) != 0) return;
  kiln_collector_drain_locked();
  pthread_mutex_unlock(&kiln_collector_lock);
}

/* A thread registered from outside has no exit hook: ask the kernel. */
static void kiln_collector_reap_foreign(void) {
  pid_t pid = getpid();
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    if (t->own || atomic_load_explicit(&t->state, memory_order_acquire) != KILN_SLOT_ACTIVE) continue;
    if (syscall(SYS_tgkill, pid, t->tid, 0) < 0 && errno == ESRCH) {
      kiln_sampler_thread_disarm(t);
      kiln_threads_retire(t);
    }
  }
}

static uint64_t kiln_collector_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *kiln_collector_main(void *arg) {
  (void)arg;
  /* A name `kiln dump` finds it by, to signal this thread alone. */
  pthread_setname_np(pthread_self(), "kiln-collector");
  if (kiln_collector.dump_signal > 0) {
    sigset_t dump;
    sigemptyset(&dump);
    sigaddset(&dump, kiln_collector.dump_signal);
    pthread_sigmask(SIG_UNBLOCK, &dump, NULL);
  }
  uint64_t now = kiln_collector_now(), next_reap = now + 1000000000ull;
  uint64_t next_dump = kiln_collector.interval_ns ? now + kiln_collector.interval_ns : UINT64_MAX;
  while (!atomic_load_explicit(&kiln_collector.stop, memory_order_acquire)) {
    kiln_collector_drain();
    now = kiln_collector_now();
    if (now >= next_reap) {
      kiln_collector_reap_foreign();
      next_reap = now + 1000000000ull;
    }
    if (atomic_exchange(&kiln_collector.dump_requested, 0) && kiln_collector.dump)
      kiln_collector.dump(KILN_DUMP_SIGNAL);
    if (now >= next_dump && kiln_collector.dump) {
      kiln_collector.dump(KILN_DUMP_INTERVAL);
      /* On schedule, not drifting; a late dump does not cause a burst. */
      while (next_dump <= now) next_dump += kiln_collector.interval_ns;
    }
    now = kiln_collector_now();
    uint64_t wait = (uint64_t)kiln_collector.period_ns;
    if (next_dump > now && next_dump - now < wait) wait = next_dump - now;
    struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
    syscall(SYS_futex, &kiln_collector.stop, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
  }
  return NULL;
}

KILN_SIGNAL_SAFE void kiln_collector_request_dump(void) {
  atomic_store(&kiln_collector.dump_requested, 1);
  syscall(SYS_futex, &kiln_collector.stop, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int kiln_collector_start(int hz, uint64_t interval_ns, int dump_signal, void (*dump)(kiln_dump_reason_t reason)) {
  if (kiln_collector.started) return 0;
  /* Drain well before a ring could fill with samples of average depth 64;
   * with no sampling (hz 0), only wake for dumps. */
  long ns = hz > 0 ? (long)((double)KILN_RING_WORDS / 4 / ((double)hz * 65) * 1e9) : 1000000000L;
  if (ns > (hz > 0 ? 50000000L : 1000000000L)) ns = hz > 0 ? 50000000L : 1000000000L;
  if (ns < 2000000L) ns = 2000000L;
  kiln_collector.period_ns = ns;
  kiln_collector.interval_ns = interval_ns;
  kiln_collector.dump = dump;
  kiln_collector.dump_signal = dump_signal;
  atomic_store(&kiln_collector.dump_requested, 0);
  atomic_store(&kiln_collector.stop, 0);
  sigset_t all, old;
  sigfillset(&all);
  /* Every signal blocked in the collector, but the dump signal: sent to
   * this thread (tgkill), it interrupts no thread of the program. */
  pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited: no signal ever runs there */
  int rc = kiln_libc.pthread_create(&kiln_collector.thread, NULL, kiln_collector_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) return -rc;
  if (pthread_getcpuclockid(kiln_collector.thread, &kiln_collector.cpu_clock) != 0)
    kiln_collector.cpu_clock = (clockid_t)-1;
  kiln_collector.started = true;
  return 0;
}

static double kiln_collector_clock(void) {
  struct timespec ts;
  if (kiln_collector.cpu_clock == (clockid_t)-1 || clock_gettime(kiln_collector.cpu_clock, &ts) < 0)
    return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kiln_collector_stop(void) {
  if (kiln_collector.started) {
    double cpu = kiln_collector_clock();
    atomic_store_explicit(&kiln_collector.stop, 1, memory_order_release);
    syscall(SYS_futex, &kiln_collector.stop, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    pthread_join(kiln_collector.thread, NULL);
    kiln_collector.cpu_seconds += cpu;
    kiln_collector.started = false;
  }
  kiln_collector_drain();
}

double kiln_collector_cpu_seconds(void) {
  return kiln_collector.cpu_seconds + (kiln_collector.started ? kiln_collector_clock() : 0);
}

void kiln_collector_after_fork_child(void) {
  /* The collector thread does not exist in the child; its lock may have
   * been held at fork. */
  pthread_mutex_init(&kiln_collector_lock, NULL);
  kiln_collector.started = false;
  kiln_collector.cpu_seconds = 0;
  atomic_store(&kiln_collector.dump_requested, 0);
}
