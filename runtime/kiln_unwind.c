/* kiln_unwind.c — the two unwinders behind one function type, chosen in
 * one place (kiln_unwind_backend):
 *   libunwind  unw_backtrace (its fast trace cache), loaded with dlopen
 *              RTLD_LOCAL so that its _Unwind_* and backtrace exports never
 *              join the program's symbol namespace;
 *   fp         a frame-pointer walk from the signal's context, every read
 *              checked against the thread's stack bounds.
 * Both run in the SIGPROF handler and start at the interrupted instruction.
 * Init runs once in normal context. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__thread int kiln_tls_unsafe __attribute__((tls_model("initial-exec"))) = 0;

static int (*kiln_unw_backtrace)(void **buffer, int size);

/* Fork gate. libunwind's unw_step holds a mutex (its global register-state
 * cache) and the loader's lock (dl_iterate_phdr) while it works: a fork
 * while another thread unwinds would leave them locked in the child, whose
 * next unwind, or its dlopen, hangs. Every libunwind call is counted in
 * flight; fork's prepare handler closes the gate and waits for the count to
 * fall to zero, and calls that find the gate closed do not unwind (the
 * sample keeps its leaf). Both atomics are seq_cst: a Dekker pair. */
static _Atomic int kiln_unwind_forking, kiln_unwind_inflight;

KILN_SIGNAL_SAFE static inline int kiln_unwind_call(void **frames, int cap) {
  atomic_fetch_add(&kiln_unwind_inflight, 1);
  int n = 0;
  if (!atomic_load(&kiln_unwind_forking)) n = kiln_unw_backtrace(frames, cap);
  atomic_fetch_sub(&kiln_unwind_inflight, 1);
  return n;
}

void kiln_unwind_fork_prepare(void) {
  atomic_store(&kiln_unwind_forking, 1);
  /* Unwinds take microseconds; a thread stopped inside one (by a debugger,
   * or a handler of the program's that never returns) is waited for 1 s. */
  for (int i = 0; i < 20000 && atomic_load(&kiln_unwind_inflight) != 0; i++) {
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
  }
}

void kiln_unwind_fork_done(void) { atomic_store(&kiln_unwind_forking, 0); }

/* A thread's first unwind sets up libunwind's per-thread trace cache
 * (pthread_once, mmap): do it here, in normal context, not in a handler. */
static void kiln_unwind_warm(void) {
  void *frames[8];
  kiln_unwind_unsafe_enter();
  kiln_unwind_call(frames, 8);
  kiln_unwind_unsafe_leave();
}

int kiln_unwind_init(kiln_unwind_kind_t *kind) {
  if (*kind != KILN_UNWIND_LIBUNWIND) return 0;
  if (kiln_unw_backtrace == NULL) {
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (h != NULL) *(void **)&kiln_unw_backtrace = dlsym(h, "unw_backtrace");
    if (kiln_unw_backtrace == NULL) {
      kiln_log("libunwind.so.8 not found; unwinding with frame pointers (KILN_UNWIND=fp)");
      *kind = KILN_UNWIND_FP;
      return -ENOENT;
    }
  }
  kiln_unwind_warm();
  return 0;
}

/* Called by each new thread before its timer is armed. */
void kiln_unwind_thread_init(kiln_unwind_kind_t kind) {
  if (kind == KILN_UNWIND_LIBUNWIND && kiln_unw_backtrace != NULL) kiln_unwind_warm();
}

KILN_SIGNAL_SAFE static int kiln_unwind_libunwind(const ucontext_t *uc, const kiln_thread_t *t,
                                                  uint64_t *pcs, int max, unsigned *flags) {
  uintptr_t ip = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
  void **frames = (void **)t->scratch;
  int cap = max + KILN_UNWIND_SLACK;
  int n = kiln_unwind_call(frames, cap);
  /* Cut the handler's own frames: everything above the interrupted pc. */
  int first = 0;
  while (first < n && first < KILN_UNWIND_SLACK && (uintptr_t)frames[first] != ip) first++;
  pcs[0] = ip + 1;
  if (first >= n || first >= KILN_UNWIND_SLACK) return 1; /* could not cross the signal frame */
  int got = n - first;
  if (n == cap || got > max) *flags |= KILN_STACK_TRUNCATED;
  if (got > max) got = max;
  for (int i = 1; i < got; i++) pcs[i] = (uint64_t)(uintptr_t)frames[first + i];
  return got;
}

/* Reads the two words of a frame record (saved fp, return address). */
KILN_SIGNAL_SAFE static bool kiln_unwind_fp_read(uintptr_t fp, uintptr_t lo, uintptr_t hi,
                                                uintptr_t out[2]) {
  if (fp & 7) return false;
  if (lo < hi) {
    if (fp < lo || fp > hi - 16) return false;
    const uintptr_t *w = (const uintptr_t *)fp;
    out[0] = w[0];
    out[1] = w[1];
    return true;
  }
  /* Bounds unknown (a thread registered from outside): let the kernel
   * check the address instead of faulting on it. */
  struct iovec local = {out, 16}, remote = {(void *)fp, 16};
  return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) == 16;
}

/* Reads n bytes at addr through the kernel: a bad address is an error,
 * never a fault. */
KILN_SIGNAL_SAFE static bool kiln_unwind_peek(uintptr_t addr, void *out, size_t n) {
  struct iovec local = {out, n}, remote = {(void *)addr, n};
  return syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}

/* Compilers leave frame pointers out of leaf functions that need no stack
 * (gcc 12 even with -fno-omit-frame-pointer): rbp is then the caller's
 * frame and the leaf's return address sits at [rsp]. Accept that word
 * only if the instruction before it is a direct call (E8 rel32) to a
 * function starting at most 64 KiB below the interrupted pc. */
KILN_SIGNAL_SAFE static uintptr_t kiln_unwind_fp_leaf(uintptr_t ip, uintptr_t sp) {
  uintptr_t ret;
  unsigned char call[5];
  if (!kiln_unwind_peek(sp, &ret, sizeof ret) || ret < 4096 || !kiln_unwind_peek(ret - 5, call, 5) ||
      call[0] != 0xe8)
    return 0;
  int32_t rel;
  memcpy(&rel, call + 1, 4);
  uintptr_t target = ret + (uintptr_t)(intptr_t)rel;
  return target <= ip && ip - target < 65536 ? ret : 0;
}

KILN_SIGNAL_SAFE static int kiln_unwind_fp(const ucontext_t *uc, const kiln_thread_t *t,
                                           uint64_t *pcs, int max, unsigned *flags) {
  const greg_t *g = uc->uc_mcontext.gregs;
  uintptr_t fp = (uintptr_t)g[REG_RBP], sp = (uintptr_t)g[REG_RSP];
  uintptr_t lo = t->stack_lo, hi = t->stack_hi;
  if (lo < hi && sp >= lo && sp < hi) lo = sp; /* frames live above sp */
  else if (lo < hi) return pcs[0] = (uint64_t)g[REG_RIP] + 1, 1; /* on another stack */
  pcs[0] = (uint64_t)g[REG_RIP] + 1;
  int n = 1;
  uintptr_t leaf_ret = kiln_unwind_fp_leaf((uintptr_t)g[REG_RIP], sp);
  if (leaf_ret != 0 && max > 1) pcs[n++] = leaf_ret;
  uintptr_t frame[2];
  while ((lo < hi || fp >= sp) && kiln_unwind_fp_read(fp, lo, hi, frame)) {
    if (frame[1] < 4096) break;
    if (n == max) {
      *flags |= KILN_STACK_TRUNCATED;
      break;
    }
    pcs[n++] = frame[1];
    if (frame[0] <= fp) break; /* the chain must go up the stack */
    fp = frame[0];
  }
  return n;
}

kiln_unwind_fn kiln_unwind_backend(kiln_unwind_kind_t kind) {
  return kind == KILN_UNWIND_FP ? kiln_unwind_fp : kiln_unwind_libunwind;
}

const char *kiln_unwind_name(kiln_unwind_kind_t kind) {
  return kind == KILN_UNWIND_FP ? "fp" : "libunwind";
}
