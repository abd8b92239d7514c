/* wall_late — links the runtime (libkiln.a) and starts wall profiling from
 * code while two threads are already blocked: one in read(2) on a pipe
 * nobody writes yet, one on a condition variable. Their waits began before
 * the profiler did, so no switch or sample of theirs was ever seen: wall
 * mode must still find where they wait. Writes its profile into argv[1]
 * (default: the current directory) at exit. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kiln.h"

static int pipefd[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go = PTHREAD_COND_INITIALIZER;
static int released;

__attribute__((noinline, noipa)) static void *blocked_reader(void *arg) {
  char c;
  (void)arg;
  return read(pipefd[0], &c, 1) == 1 ? NULL : (void *)1;
}

__attribute__((noinline, noipa)) static void *blocked_waiter(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  while (!released) pthread_cond_wait(&go, &lock);
  pthread_mutex_unlock(&lock);
  return NULL;
}

int main(int argc, char **argv) {
  pthread_t r, w;
  if (pipe(pipefd) != 0) return 1;
  pthread_create(&r, NULL, blocked_reader, NULL);
  pthread_create(&w, NULL, blocked_waiter, NULL);
  struct timespec warm = {0, 100000000};
  nanosleep(&warm, NULL); /* both are blocked now */
  kiln_options_t opts;
  memset(&opts, 0, sizeof opts);
  opts.mode = KILN_MODE_WALL;
  opts.quiet = 1;
  opts.out_dir = argc > 1 ? argv[1] : NULL;
  if (kiln_start(&opts) != 0) return 1;
  struct timespec ts = {0, 600000000};
  nanosleep(&ts, NULL);
  if (write(pipefd[1], "x", 1) != 1) return 1;
  pthread_mutex_lock(&lock);
  released = 1;
  pthread_cond_signal(&go);
  pthread_mutex_unlock(&lock);
  void *a, *b;
  pthread_join(r, &a);
  pthread_join(w, &b);
  printf("wall_late: %s\n", a == NULL && b == NULL ? "ok" : "failed");
  return a != NULL || b != NULL;
}
