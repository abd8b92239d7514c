/* kiln_locks.c — the lock functions, interposed for lock mode
 * (KILN_MODE=lock): pthread mutexes, reader-writer locks, condition
 * variables and semaphores. Each one tries first (trylock, tryrdlock,
 * sem_trywait) and, only when the try finds the lock taken, times the
 * real blocking call and hands the wait to the runtime (kiln_lock_record).
 * A condition wait always waits: every call is timed.
 *
 * What a try returns other than "taken" is what the blocking call would
 * have returned at once, so it is returned as it is: a recursive mutex's
 * owner gets its count raised (0), a robust mutex's dead owner EOWNERDEAD
 * (the lock taken), ENOTRECOVERABLE, EAGAIN. A try that says "taken" to the
 * lock's own owner (an error-checking mutex: EBUSY, not EDEADLK) goes on
 * to the blocking call, which answers as it would have (EDEADLK). errno is
 * the program's: a semaphore's failed try sets it, and it is put back.
 *
 * Runs in any thread, before kiln starts and after it stops (then each
 * forwards at once), inside kiln's own code (the hook guard: forwarded,
 * never counted), in signal handlers and in fork children. The wrappers
 * live in the kiln_pass section: a CPU sample drops their frames. glibc's
 * internal locks (stdio, the loader, malloc's arenas) never come here. */
#include "kiln_internal.h"

#include <errno.h>
#include <time.h>

/* A lock call made while this thread resolves the real functions would be
 * dlsym calling back here, which glibc's dlsym does not do (it takes only
 * the loader's internal locks): such a call is refused (ENOSYS, as the
 * other wrappers answer when there is nothing to forward to) rather than
 * recursing. glibc's __pthread_* aliases cannot serve instead: they are
 * compat symbols, which a program linking libkiln.a cannot link to. */
static __thread bool kiln_tls_locks_resolving __attribute__((tls_model("initial-exec")));

/* True when the real functions are there; false while resolving them. */
static inline bool kiln_locks_ready(void) {
  if (KILN_LIKELY(kiln_libc.mutex_lock != NULL)) return true;
  if (kiln_tls_locks_resolving) return false;
  kiln_tls_locks_resolving = true;
  kiln_libc_resolve();
  kiln_tls_locks_resolving = false;
  return kiln_libc.mutex_lock != NULL;
}

/* Whether this call is to be timed: lock mode on, not kiln's own call. */
static inline bool kiln_locks_on(void) { return kiln_lock_active() && kiln_tls_hook_guard == 0; }

static inline uint64_t kiln_locks_now(void) { return kiln_lock_now(); }

/* A timed call's deadline is one glibc takes. glibc checks it (and the
 * clock) before it tries the lock for semaphores, rwlocks and clocklock:
 * a bad one is forwarded untried, so that the answer (EINVAL) is the one
 * the program gets without kiln, free lock or not. */
static inline bool kiln_locks_time_ok(clockid_t clk, const struct timespec *at) {
  return at != NULL && at->tv_nsec >= 0 && at->tv_nsec < 1000000000L &&
         (clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC);
}

/* The blocking call's answer means it waited (the lock taken, a dead
 * owner's lock taken, a timeout), not that it refused at once. */
static inline bool kiln_locks_waited(int rc) { return rc == 0 || rc == EOWNERDEAD || rc == ETIMEDOUT; }

/* ----------------------------------------------------------- mutexes */

KILN_EXPORT KILN_PASS_TEXT int pthread_mutex_lock(pthread_mutex_t *m) {
  if (KILN_UNLIKELY(!kiln_locks_ready())) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on())) return kiln_libc.mutex_lock(m);
  int rc = kiln_libc.mutex_trylock(m);
  if (KILN_LIKELY(rc != EBUSY)) return rc;
  uint64_t t0 = kiln_locks_now();
  rc = kiln_libc.mutex_lock(m);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_MUTEX, kiln_locks_now() - t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready() || kiln_libc.mutex_timedlock == NULL)) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on()) || !kiln_locks_time_ok(CLOCK_REALTIME, at)) return kiln_libc.mutex_timedlock(m, at);
  int rc = kiln_libc.mutex_trylock(m);
  if (rc != EBUSY) return rc;
  uint64_t t0 = kiln_locks_now();
  rc = kiln_libc.mutex_timedlock(m, at);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_MUTEX, kiln_locks_now() - t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk, const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready() || kiln_libc.mutex_clocklock == NULL)) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on()) || !kiln_locks_time_ok(clk, at)) return kiln_libc.mutex_clocklock(m, clk, at);
  int rc = kiln_libc.mutex_trylock(m);
  if (rc != EBUSY) return rc;
  uint64_t t0 = kiln_locks_now();
  rc = kiln_libc.mutex_clocklock(m, clk, at);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_MUTEX, kiln_locks_now() - t0);
  return rc;
}

/* ----------------------------------------------------------- rwlocks */

KILN_EXPORT KILN_PASS_TEXT int pthread_rwlock_rdlock(pthread_rwlock_t *l) {
  if (KILN_UNLIKELY(!kiln_locks_ready())) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on())) return kiln_libc.rwlock_rdlock(l);
  int rc = kiln_libc.rwlock_tryrdlock(l);
  if (KILN_LIKELY(rc != EBUSY)) return rc;
  uint64_t t0 = kiln_locks_now();
  rc = kiln_libc.rwlock_rdlock(l);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_RDLOCK, kiln_locks_now() - t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int pthread_rwlock_wrlock(pthread_rwlock_t *l) {
  if (KILN_UNLIKELY(!kiln_locks_ready())) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on())) return kiln_libc.rwlock_wrlock(l);
  int rc = kiln_libc.rwlock_trywrlock(l);
  if (KILN_LIKELY(rc != EBUSY)) return rc;
  uint64_t t0 = kiln_locks_now();
  rc = kiln_libc.rwlock_wrlock(l);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_WRLOCK, kiln_locks_now() - t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int pthread_rwlock_timedrdlock(pthread_rwlock_t *l, const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready() || kiln_libc.rwlock_timedrdlock == NULL)) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on()) || !kiln_locks_time_ok(CLOCK_REALTIME, at)) return kiln_libc.rwlock_timedrdlock(l, at);
  int rc = kiln_libc.rwlock_tryrdlock(l);
  if (rc != EBUSY) return rc;
  uint64_t t0 = kiln_locks_now();
  rc = kiln_libc.rwlock_timedrdlock(l, at);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_RDLOCK, kiln_locks_now() - t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int pthread_rwlock_timedwrlock(pthread_rwlock_t *l, const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready() || kiln_libc.rwlock_timedwrlock == NULL)) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on()) || !kiln_locks_time_ok(CLOCK_REALTIME, at)) return kiln_libc.rwlock_timedwrlock(l, at);
  int rc = kiln_libc.rwlock_trywrlock(l);
  if (rc != EBUSY) return rc;
  uint64_t t0 = kiln_locks_now();
  rc = kiln_libc.rwlock_timedwrlock(l, at);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_WRLOCK, kiln_locks_now() - t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t clk,
                                                          const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready() || kiln_libc.rwlock_clockrdlock == NULL)) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on()) || !kiln_locks_time_ok(clk, at)) return kiln_libc.rwlock_clockrdlock(l, clk, at);
  int rc = kiln_libc.rwlock_tryrdlock(l);
  if (rc != EBUSY) return rc;
  uint64_t t0 = kiln_locks_now();
  rc = kiln_libc.rwlock_clockrdlock(l, clk, at);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_RDLOCK, kiln_locks_now() - t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t clk,
                                                          const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready() || kiln_libc.rwlock_clockwrlock == NULL)) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on()) || !kiln_locks_time_ok(clk, at)) return kiln_libc.rwlock_clockwrlock(l, clk, at);
  int rc = kiln_libc.rwlock_trywrlock(l);
  if (rc != EBUSY) return rc;
  uint64_t t0 = kiln_locks_now();
  rc = kiln_libc.rwlock_clockwrlock(l, clk, at);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_WRLOCK, kiln_locks_now() - t0);
  return rc;
}

/* ------------------------------------------------- condition variables */

/* The real pthread_cond_wait unlocks and re-takes the mutex itself
 * (glibc's internal calls, never these wrappers): the program's mutex is
 * handed to it untouched, and it is held again when this returns. The
 * whole call is the wait, re-taking the mutex included. */
KILN_EXPORT KILN_PASS_TEXT int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
  if (KILN_UNLIKELY(!kiln_locks_ready())) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on())) return kiln_libc.cond_wait(c, m);
  uint64_t t0 = kiln_locks_now();
  int rc = kiln_libc.cond_wait(c, m);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_COND, kiln_locks_now() - t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                                      const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready())) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on())) return kiln_libc.cond_timedwait(c, m, at);
  uint64_t t0 = kiln_locks_now();
  int rc = kiln_libc.cond_timedwait(c, m, at);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_COND, kiln_locks_now() - t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m, clockid_t clk,
                                                      const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready() || kiln_libc.cond_clockwait == NULL)) return ENOSYS;
  if (KILN_LIKELY(!kiln_locks_on())) return kiln_libc.cond_clockwait(c, m, clk, at);
  uint64_t t0 = kiln_locks_now();
  int rc = kiln_libc.cond_clockwait(c, m, clk, at);
  if (kiln_locks_waited(rc)) kiln_lock_record(KILN_LOCK_COND, kiln_locks_now() - t0);
  return rc;
}

/* ----------------------------------------------------------- semaphores */

/* sem_trywait, and errno as it was when the semaphore was free (a failed
 * try sets EAGAIN, which the program must not see). 1: taken by the try;
 * 0: it would block; -1: the try's error (errno set) is the answer. */
static inline int kiln_locks_sem_try(sem_t *s, int saved) {
  if (kiln_libc.sem_trywait(s) == 0) return 1;
  if (errno != EAGAIN) return -1;
  errno = saved;
  return 0;
}

/* After the blocking call: EINTR counts too, the thread did wait. */
static inline void kiln_locks_sem_done(int rc, uint64_t t0) {
  int e = errno;
  if (rc == 0 || e == ETIMEDOUT || e == EINTR) kiln_lock_record(KILN_LOCK_SEM, kiln_locks_now() - t0);
  errno = e;
}

KILN_EXPORT KILN_PASS_TEXT int sem_wait(sem_t *s) {
  if (KILN_UNLIKELY(!kiln_locks_ready())) return errno = ENOSYS, -1;
  if (KILN_LIKELY(!kiln_locks_on())) return kiln_libc.sem_wait(s);
  int tried = kiln_locks_sem_try(s, errno);
  if (tried != 0) return tried > 0 ? 0 : -1;
  uint64_t t0 = kiln_locks_now();
  int rc = kiln_libc.sem_wait(s);
  kiln_locks_sem_done(rc, t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int sem_timedwait(sem_t *s, const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready())) return errno = ENOSYS, -1;
  if (KILN_LIKELY(!kiln_locks_on()) || !kiln_locks_time_ok(CLOCK_REALTIME, at)) return kiln_libc.sem_timedwait(s, at);
  int tried = kiln_locks_sem_try(s, errno);
  if (tried != 0) return tried > 0 ? 0 : -1;
  uint64_t t0 = kiln_locks_now();
  int rc = kiln_libc.sem_timedwait(s, at);
  kiln_locks_sem_done(rc, t0);
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int sem_clockwait(sem_t *s, clockid_t clk, const struct timespec *at) {
  if (KILN_UNLIKELY(!kiln_locks_ready() || kiln_libc.sem_clockwait == NULL)) return errno = ENOSYS, -1;
  if (KILN_LIKELY(!kiln_locks_on()) || !kiln_locks_time_ok(clk, at)) return kiln_libc.sem_clockwait(s, clk, at);
  int tried = kiln_locks_sem_try(s, errno);
  if (tried != 0) return tried > 0 ? 0 : -1;
  uint64_t t0 = kiln_locks_now();
  int rc = kiln_libc.sem_clockwait(s, clk, at);
  kiln_locks_sem_done(rc, t0);
  return rc;
}
