/* eintr_storm — blocking calls that SA_RESTART does not restart (poll,
 * epoll_wait, select, nanosleep, clock_nanosleep, sigtimedwait, semop with
 * a timeout, recv with SO_RCVTIMEO), each in a tight loop with short
 * timeouts in a thread of its own, beside two threads that burn CPU in user
 * code and in the kernel. Any call that fails with EINTR is counted; the
 * program prints the count, which must be 0 under a profiler as without. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static _Atomic int stop;
static _Atomic long eintr, calls;
static int sem_id = -1;

static void count(int rc) {
  calls++;
  if (rc < 0 && errno == EINTR) eintr++;
}

static void *waiter(void *arg) {
  int kind = (int)(long)arg;
  int pipefd[2], ep = -1, sv[2] = {-1, -1};
  if (pipe(pipefd) < 0) return NULL;
  if (kind == 1) {
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev);
  }
  if (kind == 7) {
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct timeval tv = {0, 200};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  sigset_t usr;
  sigemptyset(&usr);
  sigaddset(&usr, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr, NULL);
  while (!stop) {
    struct timespec ts = {0, 100000};
    switch (kind) {
    case 0: {
      struct pollfd p = {pipefd[0], POLLIN, 0};
      count(poll(&p, 1, 0) < 0 ? -1 : poll(&p, 1, 1));
      break;
    }
    case 1: {
      struct epoll_event ev;
      count(epoll_wait(ep, &ev, 1, 1));
      break;
    }
    case 2: {
      fd_set r;
      FD_ZERO(&r);
      FD_SET(pipefd[0], &r);
      struct timeval tv = {0, 200};
      count(select(pipefd[0] + 1, &r, NULL, NULL, &tv));
      break;
    }
    case 3: count(nanosleep(&ts, NULL)); break;
    case 4: {
      int rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
      calls++;
      if (rc == EINTR) eintr++;
      break;
    }
    case 5: count(sigtimedwait(&usr, NULL, &ts) < 0 && errno == EAGAIN ? 0 : -1); break;
    case 6: {
      struct sembuf op = {0, -1, 0};
      count(semtimedop(sem_id, &op, 1, &ts) < 0 && errno == EAGAIN ? 0 : -1);
      break;
    }
    case 7: {
      char c;
      count(recv(sv[0], &c, 1, 0) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1);
      break;
    }
    }
  }
  return NULL;
}

static volatile unsigned long sink;
static void *burner(void *arg) {
  int in_kernel = (int)(long)arg;
  while (!stop) {
    if (in_kernel) {
      for (int i = 0; i < 1000; i++) getppid();
    } else {
      unsigned long x = sink;
      for (int i = 0; i < 100000; i++) x = x * 6364136223846793005UL + 1;
      sink = x;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 2.0;
  sem_id = semget(IPC_PRIVATE, 1, 0600);
  pthread_t w[8], b[2];
  for (long i = 0; i < 8; i++) pthread_create(&w[i], NULL, waiter, (void *)i);
  for (long i = 0; i < 2; i++) pthread_create(&b[i], NULL, burner, (void *)i);
  struct timespec ts = {(time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
  stop = 1;
  for (int i = 0; i < 8; i++) pthread_join(w[i], NULL);
  for (int i = 0; i < 2; i++) pthread_join(b[i], NULL);
  if (sem_id >= 0) semctl(sem_id, 0, IPC_RMID);
  fprintf(stderr, "eintr_storm: %ld calls\n", (long)calls);
  printf("eintr_storm: %ld calls failed with EINTR\n", (long)eintr);
  return 0;
}
