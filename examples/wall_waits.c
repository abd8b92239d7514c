/* wall_waits — threads whose time off CPU is known by construction, for
 * wall mode (KILN_MODE=wall). Usage: wall_waits MODE [SECONDS]
 *   split    split_worker spends 10 ms of wall time computing
 *            (compute_phase), then 10 ms in poll (wait_phase): 50/50.
 *   condvar  a producer sleeps 4 ms in nanosleep, then hands an item over
 *            a condition variable to a consumer, which computes on it for
 *            1 ms (consume_item) and waits for the next in
 *            pthread_cond_wait: the consumer ~25% computing, ~75% waiting
 *            in futex; the producer nearly all in clock_nanosleep.
 *   idle N   N threads (default 200) blocked for the whole run, half on a
 *            condition variable nobody signals (futex), half in epoll_wait
 *            on an empty set; the main thread sleeps. Prints the CPU time
 *            the process used while it ran (on stderr).
 * Each mode prints what it did; calls that fail with EINTR are counted and
 * printed (0 under kiln as without). split and condvar also measure their
 * phases with the clock and print the waiting share on stderr (on a loaded
 * machine a wake-up waits for a CPU, which lengthens the wait). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))
static _Atomic int stop;
static _Atomic long eintr, rounds;
static volatile unsigned long sink;
static double waited, worked; /* seconds the measured thread spent in each phase */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Computes until ms of wall time have passed. */
NOINLINE static void spin_for(double ms) {
  double end = now() + ms / 1000;
  unsigned long h = 1;
  while (now() < end)
    for (int i = 0; i < 1000; i++) h = h * 2862933555777941757ull + 3037000493ull;
  sink += h;
}

NOINLINE static void compute_phase(void) { spin_for(10); }

NOINLINE static void wait_phase(void) {
  if (poll(NULL, 0, 10) < 0 && errno == EINTR) eintr++;
}

static void *split_worker(void *arg) {
  (void)arg;
  while (!stop) {
    double t0 = now();
    compute_phase();
    double t1 = now();
    wait_phase();
    double t2 = now();
    worked += t1 - t0;
    waited += t2 - t1;
    rounds++;
  }
  return NULL;
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static int items;

NOINLINE static void consume_item(void) { spin_for(1); }

static void *consumer(void *arg) {
  (void)arg;
  for (;;) {
    double t0 = now();
    pthread_mutex_lock(&lock);
    while (items == 0 && !stop) pthread_cond_wait(&ready, &lock);
    double t1 = now();
    waited += t1 - t0;
    if (items == 0 && stop) {
      pthread_mutex_unlock(&lock);
      return NULL;
    }
    items--;
    pthread_mutex_unlock(&lock);
    consume_item();
    worked += now() - t1;
    rounds++;
  }
}

NOINLINE static void produce_pause(void) {
  struct timespec ts = {0, 4000000};
  if (nanosleep(&ts, NULL) < 0 && errno == EINTR) eintr++;
}

static void *producer(void *arg) {
  (void)arg;
  while (!stop) {
    produce_pause();
    pthread_mutex_lock(&lock);
    items++;
    pthread_cond_signal(&ready);
    pthread_mutex_unlock(&lock);
  }
  pthread_mutex_lock(&lock);
  pthread_cond_broadcast(&ready);
  pthread_mutex_unlock(&lock);
  return NULL;
}

static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

NOINLINE static void *idle_on_cond(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  while (!stop) pthread_cond_wait(&never, &lock);
  pthread_mutex_unlock(&lock);
  return NULL;
}

NOINLINE static void *idle_in_epoll(void *arg) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev;
  (void)arg;
  while (!stop)
    if (epoll_wait(ep, &ev, 1, -1) < 0 && errno == EINTR) eintr++;
  return NULL;
}

NOINLINE static void main_sleep(double seconds) {
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) < 0)
    if (errno == EINTR) eintr++;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "split";
  double seconds = argc > 2 ? atof(argv[2]) : 2;
  if (strcmp(mode, "idle") == 0) {
    int n = argc > 3 ? atoi(argv[3]) : 200;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < n; i++) {
      pthread_t t;
      if (pthread_create(&t, &attr, i % 2 ? idle_in_epoll : idle_on_cond, NULL) != 0) {
        fprintf(stderr, "wall_waits: pthread_create failed\n");
        return 1;
      }
    }
    main_sleep(seconds);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    printf("idle: %d threads, eintr %ld\n", n, (long)eintr);
    fprintf(stderr, "idle: cpu_seconds %.4f\n", cpu);
    return 0; /* the idle threads stay blocked to the end */
  }
  pthread_t a, b;
  if (strcmp(mode, "split") == 0) {
    pthread_create(&a, NULL, split_worker, NULL);
    main_sleep(seconds);
    stop = 1;
    pthread_join(a, NULL);
  } else if (strcmp(mode, "condvar") == 0) {
    pthread_create(&a, NULL, consumer, NULL);
    pthread_create(&b, NULL, producer, NULL);
    main_sleep(seconds);
    stop = 1;
    pthread_join(b, NULL);
    pthread_join(a, NULL);
  } else {
    fprintf(stderr, "usage: wall_waits split|condvar|idle [SECONDS] [THREADS]\n");
    return 2;
  }
  printf("%s: done, eintr %ld\n", mode, (long)eintr);
  fprintf(stderr, "%s: measured waiting share %.1f%%\n", mode, 100 * waited / (waited + worked));
  return 0;
}
