/* kiln_sampler_signal.c — the SIGPROF handler of the signal timers (posix,
 * itimer; kiln_sampler.c arms them and installs it) and the state it
 * shares with the sampler. Signal context only: this file may call only
 * async-signal-safe functions and kiln's [signal] ones, and the build
 * checks it (nm -u against tests/contracts/signal_allow.txt). */
#include "kiln_internal.h"

#include <errno.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

_Atomic bool kiln_sampler_running;
_Atomic int kiln_sampler_handlers;

static __thread int kiln_tls_in_handler __attribute__((tls_model("initial-exec")));

KILN_SIGNAL_SAFE bool kiln_sampler_in_handler(void) { return kiln_tls_in_handler != 0; }

/* The fallback handler: registers and up to KILN_STACK_COPY bytes of the
 * stack from the interrupted stack pointer, read through the kernel (a
 * short stack or an unmapped page ends the copy, never faults), pushed to
 * the thread's ring as one record. Touches only the thread's own slot. */
KILN_SIGNAL_SAFE void kiln_sampler_on_signal(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  (void)si;
  int saved_errno = errno;
  atomic_fetch_add_explicit(&kiln_sampler_handlers, 1, memory_order_acquire);
  if (!atomic_load_explicit(&kiln_sampler_running, memory_order_acquire)) goto out;
  kiln_thread_t *t = kiln_threads_self();
  if (t == NULL || t->scratch == NULL) goto out;
  kiln_tls_in_handler = 1;
  const greg_t *g = ((const ucontext_t *)ucv)->uc_mcontext.gregs;
  uint64_t *w = t->scratch;
  static const uint8_t greg_of[KILN_REGS] = {REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI,
                                             REG_RBP, REG_RSP, REG_R8,  REG_R9,  REG_R10, REG_R11,
                                             REG_R12, REG_R13, REG_R14, REG_R15, REG_RIP};
  for (int r = 0; r < KILN_REGS; r++) w[r] = (uint64_t)g[greg_of[r]];
  uint64_t sp = w[KILN_REG_RSP];
  size_t want = KILN_STACK_COPY;
  if (t->stack_hi > sp && t->stack_hi - sp < want) want = (size_t)(t->stack_hi - sp);
  struct iovec local = {&w[KILN_REGS + 1], want}, remote = {(void *)(uintptr_t)sp, want};
  ssize_t got = syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0);
  w[KILN_REGS] = got > 0 ? (uint64_t)got : 0;
  unsigned words = KILN_REGS + 1 + (unsigned)((w[KILN_REGS] + 7) / 8);
  if (kiln_ring_push(&t->ring, kiln_ring_header(words, KILN_RING_RAW, 1), w, words))
    atomic_fetch_add_explicit(&t->samples, 1, memory_order_relaxed);
  else
    atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
  kiln_tls_in_handler = 0;
out:
  atomic_fetch_sub_explicit(&kiln_sampler_handlers, 1, memory_order_release);
  errno = saved_errno;
}
