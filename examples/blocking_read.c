/* blocking_read — one thread burns CPU (so signals fly) while the main
 * thread blocks in read(2) on a pipe fed slowly by a child process, and in
 * nanosleep. kiln's signals must never fail these calls with EINTR. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static volatile int done;

static void *burner(void *arg) {
  (void)arg;
  volatile unsigned long x = 0;
  while (!done) x = x * 6364136223846793005UL + 1;
  return NULL;
}

int main(void) {
  int fds[2];
  if (pipe(fds) < 0) return 1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    for (int i = 0; i < 40; i++) {
      struct timespec ts = {0, 10000000};
      nanosleep(&ts, NULL);
      if (write(fds[1], "x", 1) != 1) _exit(1);
    }
    _exit(0);
  }
  close(fds[1]);
  pthread_t t;
  pthread_create(&t, NULL, burner, NULL);
  int reads = 0, eintr = 0, sleeps = 0;
  char c;
  for (;;) {
    ssize_t n = read(fds[0], &c, 1);
    if (n < 0 && errno == EINTR) { eintr++; continue; }
    if (n <= 0) break;
    reads++;
    struct timespec ts = {0, 2000000};
    if (nanosleep(&ts, NULL) < 0 && errno == EINTR) eintr++;
    else sleeps++;
  }
  done = 1;
  pthread_join(t, NULL);
  printf("blocking_read: reads %d, sleeps %d, eintr %d\n", reads, sleeps, eintr);
  return eintr != 0;
}
