/* sigblock_threads — worker threads created with every signal blocked (as
 * xz -T, jemalloc's background threads and many pools do), doing 3/4 and
 * 1/4 of the work, while the main thread blocks SIGPROF and waits on a
 * signalfd for it. A profiler must sample the workers anyway and must
 * never make a SIGPROF reach the program: it prints what its signalfd got,
 * the files it could open under an RLIMIT_NOFILE of 32, and how many
 * descriptors it sees open. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void spin(long n) {
  unsigned long x = sink;
  for (long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1;
  sink = x;
}

__attribute__((noinline)) static void *worker_big(void *arg) {
  spin((long)arg * 3);
  return NULL;
}
__attribute__((noinline)) static void *worker_small(void *arg) {
  spin((long)arg);
  return NULL;
}

static int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1; /* the directory's own */
}

int main(int argc, char **argv) {
  long work = argc > 1 ? atol(argv[1]) : 400000000L;
  sigset_t all, prof;
  sigfillset(&all);
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  pthread_sigmask(SIG_BLOCK, &prof, NULL);
  int sfd = signalfd(-1, &prof, SFD_NONBLOCK | SFD_CLOEXEC);
  sigset_t old;
  pthread_sigmask(SIG_SETMASK, &all, &old); /* the workers start with every signal blocked */
  pthread_t a, b;
  pthread_create(&a, NULL, worker_big, (void *)work);
  pthread_create(&b, NULL, worker_small, (void *)work);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  struct signalfd_siginfo si;
  ssize_t got = read(sfd, &si, sizeof si);
  printf("sigblock_threads: signalfd read %s\n", got > 0 ? "a SIGPROF" : "nothing");
  struct rlimit rl = {32, 32};
  setrlimit(RLIMIT_NOFILE, &rl);
  int opened = 0;
  while (open("/dev/null", O_RDONLY) >= 0) opened++;
  printf("sigblock_threads: opened %d files under RLIMIT_NOFILE 32\n", opened);
  for (int fd = 3; fd < 32; fd++)
    if (fd != sfd) close(fd);
  printf("sigblock_threads: %d descriptors open\n", open_fds());
  return 0;
}
