/* proc_storm — the per-process cost of profiling a process tree:
 *   fork N      N children, one after another, each working a few
 *               microseconds and leaving with exit(0)
 *   forkleak N  the same, each child allocating and leaking one block
 *   execfail N  N execvp calls of a program that is not on PATH
 *   forkthreads N  N forks while two threads allocate (each child _exits)
 * Prints one line when done; exits 0. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;
static volatile int stop_threads;

__attribute__((noinline)) static void little_work(void) {
  unsigned long x = sink;
  for (int i = 0; i < 2000; i++) x = x * 6364136223846793005UL + 1;
  sink = x;
}

static void *allocator(void *arg) {
  (void)arg;
  while (!stop_threads) {
    void *p[16];
    for (int i = 0; i < 16; i++) p[i] = malloc(32 + (size_t)i * 48);
    for (int i = 0; i < 16; i++) free(p[i]);
  }
  return NULL;
}

static int wait_child(pid_t pid) {
  int st;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: proc_storm fork|forkleak|execfail|forkthreads N\n");
    return 2;
  }
  const char *mode = argv[1];
  int n = atoi(argv[2]), bad = 0;
  pthread_t th[2];
  bool threads = strcmp(mode, "forkthreads") == 0;
  if (threads)
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, allocator, NULL);
  for (int i = 0; i < n; i++) {
    if (strcmp(mode, "execfail") == 0) {
      char *args[] = {"kiln-no-such-program", NULL};
      execvp(args[0], args);
      if (errno != ENOENT) bad++;
      continue;
    }
    pid_t pid = fork();
    if (pid < 0) return 1;
    if (pid == 0) {
      if (strcmp(mode, "forkleak") == 0) {
        volatile char *leak = malloc(40);
        if (leak) leak[0] = 1;
      }
      little_work();
      if (threads) _exit(0);
      exit(0);
    }
    if (wait_child(pid) != 0) bad++;
  }
  if (threads) {
    stop_threads = 1;
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  }
  printf("%s %d: %d bad\n", mode, n, bad);
  return bad != 0;
}
