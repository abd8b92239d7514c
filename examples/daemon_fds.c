/* daemon_fds — closes every descriptor above 2 while a worker thread runs,
 * as daemons do, then opens files that reuse the numbers. kiln's event fds
 * were among those closed: when the worker exits, kiln must not close the
 * program's files that now hold those numbers. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static void *worker(void *arg) {
  (void)arg;
  volatile unsigned long x = 0;
  for (unsigned long i = 0; i < 200000000UL; i++) x = x * 3 + 1;
  return NULL;
}

int main(void) {
  pthread_t th;
  pthread_create(&th, NULL, worker, NULL);
  struct timespec ts = {0, 100000000}; /* let the worker start (and be armed) */
  nanosleep(&ts, NULL);
  for (int fd = 3; fd < 1024; fd++) close(fd);
  int fds[64];
  for (int i = 0; i < 64; i++) fds[i] = open("/dev/null", O_RDONLY);
  pthread_join(th, NULL);
  int intact = 0;
  for (int i = 0; i < 64; i++) intact += fcntl(fds[i], F_GETFD) >= 0;
  printf("daemon_fds: %d of 64 files still open\n", intact);
  return intact != 64;
}
