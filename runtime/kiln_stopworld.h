/* kiln_stopworld.h — what kiln_stopworld.c shares with its stop handler
 * (kiln_stopworld_signal.c): the parking lot and the futex calls. Private
 * to those two files. */
#ifndef KILN_STOPWORLD_H
#define KILN_STOPWORLD_H

#include "kiln_internal.h"

#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

/* Another thread of the process, as its stop handler saw it. */
enum {
  KILN_STOPWORLD_SIGNALED = 1, /* sent the stop signal, not parked yet */
  KILN_STOPWORLD_STOPPED,      /* parked in the stop handler */
  KILN_STOPWORLD_RESUMED,      /* released (or gone) */
  KILN_STOPWORLD_BLOCKED,      /* blocks the stop signal: never sent */
  KILN_STOPWORLD_TRACED,       /* stopped by the ptrace helper instead */
};
typedef struct kiln_stopworld_slot {
  _Atomic pid_t tid;
  _Atomic int state; /* KILN_STOPWORLD_SIGNALED .. TRACED */
  uintptr_t sp, tp;  /* interrupted stack pointer; thread pointer (its TCB) */
  greg_t regs[NGREG];
} kiln_stopworld_slot_t;

#define KILN_STOPWORLD_STOP_NS 1000000000ll /* waiting for threads to park, in all */
#define KILN_STOPWORLD_PARK_NS 10000000000ll /* a parked thread gives up after this */

/* The parking lot: shared with the stop handler, mapped once, never freed
 * (a late signal may still find it). */
typedef struct kiln_stopworld_lot {
  kiln_stopworld_slot_t *threads;
  _Atomic int nthreads;
  _Atomic int stopping;     /* handlers park only while set */
  _Atomic uint32_t stopped; /* futex: threads parked */
  _Atomic uint32_t gen;     /* futex: bumped to release them */
  uint64_t overflow;        /* threads beyond KILN_STOPWORLD_THREADS */
  int sig;                  /* the stop signal */
  uint64_t traced;          /* stopped by the helper */
} kiln_stopworld_lot_t;
extern kiln_stopworld_lot_t kiln_stopworld_lot KILN_INTERNAL;

static inline void kiln_stopworld_futex_wait(_Atomic uint32_t *word, uint32_t val, int64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000ll), (long)(ns % 1000000000ll)};
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static inline void kiln_stopworld_futex_wake(_Atomic uint32_t *word) {
  syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static inline uintptr_t kiln_stopworld_tp(void) {
  uintptr_t tp;
  __asm__("mov %%fs:0, %0" : "=r"(tp)); /* the TCB's self pointer (x86-64) */
  return tp;
}

/* The stop handler (installed with kiln_sampler_stop_signal). [signal] */
void kiln_stopworld_on_stop(int sig, siginfo_t *si, void *ucv) KILN_SIGNAL_SAFE KILN_INTERNAL;

#endif
