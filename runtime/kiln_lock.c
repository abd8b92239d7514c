/* kiln_lock.c — lock mode (KILN_MODE=lock): the time threads wait for a
 * mutex, a reader-writer lock, a condition variable or a semaphore, per
 * stack of the waiter. The interposers (preload/kiln_locks.c) try first and
 * come here only after a wait that blocked, with its length: the
 * uncontended path never enters this file.
 *
 * A wait is counted on the waiter's stack as the hooks see it (the
 * caller's frames, leaf first, starting at the interposer's frame, which is
 * named as the libc function the program called) under a marker frame for
 * what was waited for, "[lock: mutex]" and the like, so that contention
 * (mutexes, rwlocks, semaphores) and condition waits (waiting for a signal,
 * which is mostly not contention) read apart in one profile.
 *
 * Hook context: any thread of the program, after its wait, the hook guard
 * taken here (so nothing called below re-enters); never the signal
 * handler. The counts are two atomic adds on the stack: a contended wait
 * costs microseconds already (a futex system call and a context switch),
 * so per-thread counters would buy nothing measurable. */
#include "kiln_internal.h"

#include <errno.h>
#include <string.h>
#include <time.h>

_Atomic bool kiln_lock_on;

static struct {
  kiln_unwind_kind_t unwind;
  int max_depth;
  bool ready; /* the hooks' unwinder is set up */
  /* Over the run, for meta.json and the summary; per what is waited for. */
  _Atomic uint64_t waits[KILN_LOCK_WHATS], ns[KILN_LOCK_WHATS];
} kiln_lock;

static const uint64_t kiln_lock_markers[KILN_LOCK_WHATS] = {
    KILN_PC_LOCK_MUTEX, KILN_PC_LOCK_RDLOCK, KILN_PC_LOCK_WRLOCK, KILN_PC_LOCK_COND, KILN_PC_LOCK_SEM};

int kiln_lock_start(const kiln_config_t *cfg) {
  kiln_lock.unwind = cfg->unwind;
  /* One frame of the depth goes to the marker. */
  kiln_lock.max_depth = cfg->max_depth > KILN_DEPTH_MIN ? cfg->max_depth - 1 : KILN_DEPTH_MIN - 1;
  if (!kiln_lock.ready) {
    int rc = kiln_hookstack_init(cfg->unwind, false);
    if (rc < 0 && cfg->unwind == KILN_UNWIND_LIBUNWIND) kiln_lock.unwind = KILN_UNWIND_FP;
    kiln_lock.ready = true;
  }
  atomic_store_explicit(&kiln_lock_on, true, memory_order_release);
  return 0;
}

void kiln_lock_stop(void) { atomic_store_explicit(&kiln_lock_on, false, memory_order_release); }

/* The stack below a marker frame: the waiter's stack with the marker as
 * its leaf, interned (table full: the full stack, counted there). The copy
 * is as deep as the stack (8 bytes a frame of the program's stack, which
 * may be a coroutine's small one: no fixed KILN_DEPTH_MAX buffer). */
static uint32_t kiln_lock_marked(uint32_t id, kiln_lock_what_t what) {
  kiln_stack_t *s = kiln_stacktab_get(id);
  if (s->flags & KILN_STACK_FULL) return id;
  unsigned depth = s->depth < KILN_DEPTH_MAX ? s->depth : KILN_DEPTH_MAX;
  uint64_t pcs[depth + 1];
  pcs[0] = kiln_lock_markers[what];
  memcpy(pcs + 1, s->pcs, depth * sizeof *pcs);
  return kiln_stacktab_intern(pcs, depth + 1, s->flags);
}

/* In the hooks' section, so that a CPU sample taken while it runs is
 * kiln's time ([kiln: allocation tracking]), not the program's. */
KILN_HOOK_TEXT uint64_t kiln_lock_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

KILN_HOOK_TEXT void kiln_lock_record(kiln_lock_what_t what, uint64_t ns) {
  if (!atomic_load_explicit(&kiln_lock_on, memory_order_relaxed) || kiln_tls_hook_guard != 0) return;
  int e = errno;
  kiln_heap_guard_enter();
  uint32_t id = kiln_lock_marked(kiln_hookstack_id(kiln_lock.unwind, kiln_lock.max_depth), what);
  kiln_stack_t *s = kiln_stacktab_get(id);
  kiln_stacktab_add(s, KILN_COUNT_LOCK_WAIT_NS, ns);
  kiln_stacktab_add(s, KILN_COUNT_LOCK_WAIT_COUNT, 1);
  atomic_fetch_add_explicit(&kiln_lock.waits[what], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&kiln_lock.ns[what], ns, memory_order_relaxed);
  kiln_heap_guard_leave();
  errno = e;
}

void kiln_lock_stats(kiln_lock_stats_t *out) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < KILN_LOCK_WHATS; i++) {
    out->waits[i] = atomic_load_explicit(&kiln_lock.waits[i], memory_order_relaxed);
    out->ns[i] = atomic_load_explicit(&kiln_lock.ns[i], memory_order_relaxed);
    out->total_waits += out->waits[i];
    out->total_ns += out->ns[i];
  }
}

void kiln_lock_reset(void) {
  for (int i = 0; i < KILN_LOCK_WHATS; i++) {
    atomic_store_explicit(&kiln_lock.waits[i], 0, memory_order_relaxed);
    atomic_store_explicit(&kiln_lock.ns[i], 0, memory_order_relaxed);
  }
}

const char *kiln_lock_what_name(kiln_lock_what_t what) {
  static const char *const names[KILN_LOCK_WHATS] = {"mutex", "rwlock_read", "rwlock_write", "cond", "sem"};
  return what < KILN_LOCK_WHATS ? names[what] : "?";
}
