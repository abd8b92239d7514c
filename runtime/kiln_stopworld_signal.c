/* kiln_stopworld_signal.c — the leak scan's stop handler: a thread parks
 * here while kiln_stopworld.c reads memory. Signal context only: this file
 * may call only async-signal-safe functions and kiln's [signal] ones, and
 * the build checks it (nm -u against tests/contracts/signal_allow.txt). */
#include "kiln_stopworld.h"

#include <errno.h>
#include <string.h>

kiln_stopworld_lot_t kiln_stopworld_lot;

/* The stop handler: saves the interrupted registers, says "parked", and
 * waits until released (bounded). Only atomics, memcpy and system calls. */
KILN_SIGNAL_SAFE void kiln_stopworld_on_stop(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  (void)si;
  int saved_errno = errno;
  if (!atomic_load_explicit(&kiln_stopworld_lot.stopping, memory_order_acquire)) goto out;
  uint32_t gen = atomic_load_explicit(&kiln_stopworld_lot.gen, memory_order_acquire);
  pid_t tid = (pid_t)syscall(SYS_gettid);
  int n = atomic_load_explicit(&kiln_stopworld_lot.nthreads, memory_order_acquire);
  kiln_stopworld_slot_t *r = NULL;
  for (int i = 0; i < n; i++) {
    if (atomic_load_explicit(&kiln_stopworld_lot.threads[i].tid, memory_order_relaxed) == tid) {
      r = &kiln_stopworld_lot.threads[i];
      break;
    }
  }
  if (r == NULL || atomic_load_explicit(&r->state, memory_order_acquire) != KILN_STOPWORLD_SIGNALED) goto out;
  const ucontext_t *uc = ucv;
  memcpy(r->regs, uc->uc_mcontext.gregs, sizeof r->regs);
  r->sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
  r->tp = kiln_stopworld_tp();
  int expect = KILN_STOPWORLD_SIGNALED; /* the ptrace helper may have taken it meanwhile */
  if (!atomic_compare_exchange_strong_explicit(&r->state, &expect, KILN_STOPWORLD_STOPPED, memory_order_acq_rel,
                                               memory_order_acquire))
    goto out;
  atomic_fetch_add_explicit(&kiln_stopworld_lot.stopped, 1, memory_order_acq_rel);
  kiln_stopworld_futex_wake(&kiln_stopworld_lot.stopped);
  for (int64_t waited = 0; atomic_load_explicit(&kiln_stopworld_lot.gen, memory_order_acquire) == gen &&
                           waited < KILN_STOPWORLD_PARK_NS;
       waited += 100000000ll)
    kiln_stopworld_futex_wait(&kiln_stopworld_lot.gen, gen, 100000000ll);
  atomic_store_explicit(&r->state, KILN_STOPWORLD_RESUMED, memory_order_release);
out:
  errno = saved_errno;
}
