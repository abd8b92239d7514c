/* getattr_first — threads whose first allocation happens inside
 * pthread_getattr_np (glibc allocates its cpuset while holding the thread's
 * lock), as Rust's std, JVMs and sanitizers do at thread start. A profiler
 * hook that asks pthread_getattr_np for the stack bounds again deadlocks.
 * Usage: getattr_first [THREADS] */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *start(void *arg) {
  pthread_attr_t attr;
  void *addr;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return NULL;
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  *(size_t *)arg = size;
  return NULL;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 4;
  if (n < 1 || n > 64) return 2;
  pthread_t t[64];
  size_t sizes[64] = {0};
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, start, &sizes[i]);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  int ok = 0;
  for (int i = 0; i < n; i++) ok += sizes[i] > 0;
  printf("getattr_first: %d of %d threads know their stack\n", ok, n);
  return ok == n ? 0 : 1;
}
