/* lock_contend — waits whose length is known by construction, for lock
 * mode (KILN_MODE=lock). Each scenario runs ROUNDS rounds in which a
 * holder keeps a lock for HOLD_MS while a waiter blocks on it; the waiter
 * measures its own wait with clock_gettime around the call, and the total
 * is printed to stderr ("measured_ns=N waits=N"), so that kiln's
 * lock_wait_ns can be compared with it. stdout gets only what does not
 * depend on timing (compared with and without kiln).
 *
 *   lock_contend mutex|rdlock|wrlock|cond|sem [ROUNDS [HOLD_MS]]
 *     mutex, cond and sem: every round's wait blocks, certainly (the holder
 *     lets go only once the waiter sleeps on the lock); rwlocks: unless the
 *     waiter came later than the hold ("long" counts the waits that did)
 *   lock_contend forkchild [ROUNDS [HOLD_MS]]   the mutex scenario in a forked child
 *   lock_contend signal [ROUNDS [HOLD_MS]]      the mutex scenario under a 1 ms
 *                                  SIGALRM whose handler locks and posts
 *   lock_contend uncontended [N]   every lock function, never contended
 *   lock_contend semantics         return codes and errno of the odd cases
 *   lock_contend bench N           N uncontended lock/unlock pairs, ns a pair
 *   lock_contend contend N T       T threads, N locked sections each, one mutex
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static int rounds = 5, hold_ms = 40;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static sem_t sem;
static _Atomic int phase; /* round * 2 + 1: the holder has the lock; round * 2 + 2: the waiter is through */
static _Atomic int ready; /* cond: the predicate, a round number */
static long long measured_ns;
static int waits, long_waits; /* long: more than half the hold time */

static void count_wait(long long ns) {
  measured_ns += ns;
  waits++;
  if (ns > (long long)hold_ms * 500000LL) long_waits++;
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static void await_phase(int want) {
  while (atomic_load(&phase) < want) {
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
}

/* The waiter is inside the lock call by now: for a mutex, glibc marks the
 * lock word 2 (locked, with waiters) before it sleeps on it. */
static void await_mutex_waiter(void) {
  while (atomic_load((_Atomic int *)&mutex.__data.__lock) != 2) {
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
}

/* ------------------------------------------------------------ scenarios */

__attribute__((noinline)) static void *mutex_holder(void *arg) {
  (void)arg;
  for (int r = 0; r < rounds; r++) {
    pthread_mutex_lock(&mutex);
    atomic_store(&phase, r * 2 + 1);
    sleep_ms(hold_ms);
    await_mutex_waiter();
    pthread_mutex_unlock(&mutex);
    await_phase(r * 2 + 2);
  }
  return NULL;
}

__attribute__((noinline)) static void mutex_waiter(void) {
  for (int r = 0; r < rounds; r++) {
    await_phase(r * 2 + 1);
    long long t0 = now_ns();
    pthread_mutex_lock(&mutex);
    count_wait(now_ns() - t0);
    pthread_mutex_unlock(&mutex);
    atomic_store(&phase, r * 2 + 2);
  }
}

/* rdlock: the holder writes, the waiter reads; wrlock: the other way. */
static int waiter_reads;

__attribute__((noinline)) static void *rw_holder(void *arg) {
  (void)arg;
  for (int r = 0; r < rounds; r++) {
    if (waiter_reads) pthread_rwlock_wrlock(&rwlock);
    else pthread_rwlock_rdlock(&rwlock);
    atomic_store(&phase, r * 2 + 1);
    sleep_ms(hold_ms);
    pthread_rwlock_unlock(&rwlock);
    await_phase(r * 2 + 2);
  }
  return NULL;
}

__attribute__((noinline)) static void rw_waiter(void) {
  for (int r = 0; r < rounds; r++) {
    await_phase(r * 2 + 1);
    long long t0 = now_ns();
    if (waiter_reads) pthread_rwlock_rdlock(&rwlock);
    else pthread_rwlock_wrlock(&rwlock);
    count_wait(now_ns() - t0);
    pthread_rwlock_unlock(&rwlock);
    atomic_store(&phase, r * 2 + 2);
  }
}

__attribute__((noinline)) static void *cond_producer(void *arg) {
  (void)arg;
  for (int r = 1; r <= rounds; r++) {
    await_phase(r * 2 - 1); /* the consumer is about to wait */
    sleep_ms(hold_ms);
    pthread_mutex_lock(&mutex);
    atomic_store(&ready, r);
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mutex);
  }
  return NULL;
}

__attribute__((noinline)) static void cond_consumer(void) {
  for (int r = 1; r <= rounds; r++) {
    pthread_mutex_lock(&mutex);
    atomic_store(&phase, r * 2 - 1);
    while (atomic_load(&ready) < r) {
      long long t0 = now_ns();
      pthread_cond_wait(&cond, &mutex);
      count_wait(now_ns() - t0);
    }
    pthread_mutex_unlock(&mutex);
  }
}

__attribute__((noinline)) static void *sem_poster(void *arg) {
  (void)arg;
  for (int r = 1; r <= rounds; r++) {
    await_phase(r * 2 - 1);
    sleep_ms(hold_ms);
    /* The waiter is asleep in sem_wait: glibc counts it in the high half
     * of the semaphore's word before it sleeps. */
    while ((atomic_load((_Atomic unsigned long *)&sem) >> 32) == 0) {
      struct timespec ts = {0, 100000};
      nanosleep(&ts, NULL);
    }
    sem_post(&sem);
  }
  return NULL;
}

__attribute__((noinline)) static void sem_waiter(void) {
  for (int r = 1; r <= rounds; r++) {
    atomic_store(&phase, r * 2 - 1);
    long long t0 = now_ns();
    while (sem_wait(&sem) != 0 && errno == EINTR) {
    }
    count_wait(now_ns() - t0);
  }
}

/* "signal": the mutex scenario under a 1 ms SIGALRM whose handler takes
 * a lock of its own and posts a semaphore (as handlers of real programs
 * do): kiln's wrappers (pthread_mutex_lock, sem_wait) run inside the
 * handler, which interrupts the waiter's wait. */
static pthread_mutex_t handler_mutex = PTHREAD_MUTEX_INITIALIZER;
static sem_t handler_sem;
static _Atomic int handler_runs;
static void on_alarm(int sig) {
  (void)sig;
  int e = errno;
  pthread_mutex_lock(&handler_mutex); /* only handlers take it, with SIGALRM blocked */
  pthread_mutex_unlock(&handler_mutex);
  sem_post(&handler_sem);
  while (sem_wait(&handler_sem) != 0 && errno == EINTR) {
  }
  atomic_fetch_add(&handler_runs, 1);
  errno = e;
}

__attribute__((noinline)) static int contended(const char *what) {
  pthread_t t;
  void *(*other)(void *) = NULL;
  void (*self)(void) = NULL;
  if (strcmp(what, "mutex") == 0) other = mutex_holder, self = mutex_waiter;
  else if (strcmp(what, "rdlock") == 0) other = rw_holder, self = rw_waiter, waiter_reads = 1;
  else if (strcmp(what, "wrlock") == 0) other = rw_holder, self = rw_waiter;
  else if (strcmp(what, "cond") == 0) other = cond_producer, self = cond_consumer;
  else if (strcmp(what, "sem") == 0) other = sem_poster, self = sem_waiter;
  else if (strcmp(what, "signal") == 0) {
    other = mutex_holder, self = mutex_waiter;
    sem_init(&handler_sem, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
  } else return 2;
  sem_init(&sem, 0, 0);
  if (pthread_create(&t, NULL, other, NULL) != 0) return 1;
  self();
  pthread_join(t, NULL);
  if (strcmp(what, "signal") == 0) {
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    fprintf(stderr, "handler_runs=%d\n", atomic_load(&handler_runs));
  }
  fprintf(stderr, "measured_ns=%lld waits=%d long=%d\n", measured_ns, waits, long_waits);
  printf("%s: %d rounds done\n", what, rounds);
  return 0;
}

/* ------------------------------------------------------- no contention */

__attribute__((noinline)) static int uncontended(long n) {
  pthread_mutex_t m;
  pthread_mutex_init(&m, NULL);
  struct timespec far;
  clock_gettime(CLOCK_REALTIME, &far);
  far.tv_sec += 60;
  long sum = 0;
  sem_init(&sem, 0, 0);
  for (long i = 0; i < n; i++) {
    sum += pthread_mutex_lock(&m);
    pthread_mutex_unlock(&m);
    sum += pthread_mutex_timedlock(&m, &far);
    pthread_mutex_unlock(&m);
    sum += pthread_rwlock_rdlock(&rwlock);
    pthread_rwlock_unlock(&rwlock);
    sum += pthread_rwlock_wrlock(&rwlock);
    pthread_rwlock_unlock(&rwlock);
    sem_post(&sem);
    sum += sem_wait(&sem);
  }
  printf("uncontended: %ld rounds, sum %ld\n", n, sum);
  return 0;
}

/* ------------------------------------------------------------ semantics */

static pthread_mutex_t robust;
static void *robust_dies(void *arg) {
  (void)arg;
  pthread_mutex_lock(&robust);
  return NULL; /* ends holding it: the next locker gets EOWNERDEAD */
}

static void *hold_for_a_while(void *arg) {
  pthread_mutex_t *m = arg;
  pthread_mutex_lock(m);
  atomic_store(&phase, 1);
  sleep_ms(60);
  pthread_mutex_unlock(m);
  return NULL;
}

/* Cancelled inside pthread_cond_wait: glibc re-takes the mutex before the
 * cleanup handlers run, through kiln's wrapper frame. */
static int cancel_cleanup_ran;
static void cancel_cleanup(void *m) {
  cancel_cleanup_ran = pthread_mutex_trylock(m) == EBUSY; /* held again, by this thread */
  pthread_mutex_unlock(m);
}
static void *cond_cancelled(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mutex);
  pthread_cleanup_push(cancel_cleanup, &mutex);
  atomic_store(&phase, 1);
  for (;;) pthread_cond_wait(&cond, &mutex);
  pthread_cleanup_pop(0);
  return NULL;
}

static int semantics(void) {
  pthread_mutexattr_t a;
  pthread_mutex_t rec, chk;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&rec, &a);
  int r1 = pthread_mutex_lock(&rec), r2 = pthread_mutex_lock(&rec);
  int u1 = pthread_mutex_unlock(&rec), u2 = pthread_mutex_unlock(&rec), u3 = pthread_mutex_unlock(&rec);
  printf("recursive: lock %d %d unlock %d %d %d\n", r1, r2, u1, u2, u3 == EPERM);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&chk, &a);
  r1 = pthread_mutex_lock(&chk);
  r2 = pthread_mutex_lock(&chk);
  printf("errorcheck: lock %d relock %s\n", r1, r2 == EDEADLK ? "EDEADLK" : strerror(r2));
  pthread_mutex_unlock(&chk);
  /* Held by another thread: a real wait, then the lock. */
  pthread_t t;
  atomic_store(&phase, 0);
  pthread_create(&t, NULL, hold_for_a_while, &chk);
  await_phase(1);
  r1 = pthread_mutex_lock(&chk);
  printf("errorcheck, contended: lock %d\n", r1);
  pthread_mutex_unlock(&chk);
  pthread_join(t, NULL);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_DEFAULT);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&robust, &a);
  pthread_create(&t, NULL, robust_dies, NULL);
  pthread_join(t, NULL);
  r1 = pthread_mutex_lock(&robust);
  r2 = pthread_mutex_consistent(&robust);
  printf("robust: lock %s consistent %d unlock %d\n", r1 == EOWNERDEAD ? "EOWNERDEAD" : strerror(r1), r2,
         pthread_mutex_unlock(&robust));
  /* A timed lock that times out (counted as a wait). */
  atomic_store(&phase, 0);
  pthread_create(&t, NULL, hold_for_a_while, &mutex);
  await_phase(1);
  struct timespec at;
  clock_gettime(CLOCK_REALTIME, &at);
  at.tv_nsec += 10000000L;
  if (at.tv_nsec >= 1000000000L) at.tv_sec++, at.tv_nsec -= 1000000000L;
  r1 = pthread_mutex_timedlock(&mutex, &at);
  printf("timedlock: %s\n", r1 == ETIMEDOUT ? "ETIMEDOUT" : strerror(r1));
  pthread_join(t, NULL);
  /* errno: a semaphore's try must not leave its EAGAIN behind. */
  sem_init(&sem, 0, 1);
  errno = ERANGE;
  r1 = sem_wait(&sem);
  printf("sem_wait free: %d errno %s\n", r1, errno == ERANGE ? "kept" : strerror(errno));
  struct timespec soon;
  clock_gettime(CLOCK_REALTIME, &soon);
  soon.tv_nsec += 5000000L;
  if (soon.tv_nsec >= 1000000000L) soon.tv_sec++, soon.tv_nsec -= 1000000000L;
  errno = 0;
  r1 = sem_timedwait(&sem, &soon);
  printf("sem_timedwait empty: %d %s\n", r1, errno == ETIMEDOUT ? "ETIMEDOUT" : strerror(errno));
  errno = ERANGE;
  r1 = sem_trywait(&sem);
  printf("sem_trywait empty: %d %s\n", r1, errno == EAGAIN ? "EAGAIN" : strerror(errno));
  /* A bad deadline on a free semaphore or rwlock: glibc says EINVAL
   * before it tries, with kiln as without. */
  struct timespec bad = {0, 2000000000L};
  sem_post(&sem);
  r1 = sem_timedwait(&sem, &bad);
  r2 = errno;
  printf("sem_timedwait bad deadline: %d %s\n", r1, r1 == 0 ? "taken" : r2 == EINVAL ? "EINVAL" : strerror(r2));
  if (r1 != 0) sem_wait(&sem);
  r1 = pthread_rwlock_timedrdlock(&rwlock, &bad);
  printf("rwlock_timedrdlock bad deadline: %s\n", r1 == 0 ? "taken" : r1 == EINVAL ? "EINVAL" : strerror(r1));
  if (r1 == 0) pthread_rwlock_unlock(&rwlock);
  r1 = pthread_mutex_clocklock(&mutex, CLOCK_PROCESS_CPUTIME_ID, &soon);
  printf("mutex_clocklock bad clock: %s\n", r1 == 0 ? "taken" : r1 == EINVAL ? "EINVAL" : strerror(r1));
  if (r1 == 0) pthread_mutex_unlock(&mutex);
  /* A condition wait that times out returns holding the mutex. */
  pthread_mutex_lock(&mutex);
  clock_gettime(CLOCK_REALTIME, &soon);
  soon.tv_nsec += 5000000L;
  if (soon.tv_nsec >= 1000000000L) soon.tv_sec++, soon.tv_nsec -= 1000000000L;
  r1 = pthread_cond_timedwait(&cond, &mutex, &soon);
  r2 = pthread_mutex_trylock(&mutex);
  printf("cond_timedwait: %s, mutex held after: %s\n", r1 == ETIMEDOUT ? "ETIMEDOUT" : strerror(r1),
         r2 == EBUSY ? "yes" : "no");
  pthread_mutex_unlock(&mutex);
  /* Cancelled while waiting. */
  atomic_store(&phase, 0);
  pthread_create(&t, NULL, cond_cancelled, NULL);
  await_phase(1);
  /* The waiter is asleep in the wait once the mutex is free (a try: not
   * a wait of its own to count). */
  while (pthread_mutex_trylock(&mutex) != 0) {
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
  }
  pthread_mutex_unlock(&mutex);
  pthread_cancel(t);
  void *res;
  pthread_join(t, &res);
  printf("cond_wait cancelled: %s, cleanup saw the mutex held: %s\n", res == PTHREAD_CANCELED ? "yes" : "no",
         cancel_cleanup_ran ? "yes" : "no");
  return 0;
}

/* ---------------------------------------------------------------- bench */

/* The loop's own CPU time (the thread's clock: time the machine gives
 * other processes does not count), per pair. */
static long long thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int bench(long n) {
  pthread_mutex_t m;
  pthread_mutex_init(&m, NULL);
  long long t0 = thread_cpu_ns();
  for (long i = 0; i < n; i++) {
    pthread_mutex_lock(&m);
    __asm__ volatile("" ::: "memory");
    pthread_mutex_unlock(&m);
  }
  long long t1 = thread_cpu_ns();
  printf("%.2f ns a lock/unlock pair (thread CPU time)\n", (double)(t1 - t0) / (double)n);
  return 0;
}

/* THREADS threads, N lock/unlock pairs each around a little work on one
 * mutex: contended most of the time. */
static long contend_n;
static long contend_counter;
__attribute__((noinline)) static void *contend_worker(void *arg) {
  (void)arg;
  for (long i = 0; i < contend_n; i++) {
    pthread_mutex_lock(&mutex);
    for (int k = 0; k < 50; k++) contend_counter = contend_counter * 6364136223846793005L + 1;
    pthread_mutex_unlock(&mutex);
  }
  return NULL;
}

static int bench_contended(long n, int threads) {
  pthread_t t[64];
  contend_n = n;
  if (threads > 64) threads = 64;
  long long t0 = now_ns();
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, contend_worker, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  printf("%.2f ns a locked section (%d threads)\n", (double)(now_ns() - t0) / (double)(n * threads), threads);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: lock_contend mutex|rdlock|wrlock|cond|sem [ROUNDS [HOLD_MS]] | uncontended [N] | "
                    "semantics | bench N\n");
    return 2;
  }
  if (strcmp(argv[1], "uncontended") == 0) return uncontended(argc > 2 ? atol(argv[2]) : 100000);
  if (strcmp(argv[1], "semantics") == 0) return semantics();
  if (strcmp(argv[1], "bench") == 0) return bench(argc > 2 ? atol(argv[2]) : 10000000);
  if (strcmp(argv[1], "contend") == 0)
    return bench_contended(argc > 2 ? atol(argv[2]) : 200000, argc > 3 ? atoi(argv[3]) : 4);
  if (argc > 2) rounds = atoi(argv[2]);
  if (argc > 3) hold_ms = atoi(argv[3]);
  if (strcmp(argv[1], "forkchild") == 0) {
    /* The waits happen in a forked child (no exec): its profile has them,
     * the parent's has none. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) exit(contended("mutex"));
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }
  int rc = contended(argv[1]);
  __asm__ volatile("" ::: "memory"); /* not a tail call: main stays on the waiters' stacks */
  return rc;
}
