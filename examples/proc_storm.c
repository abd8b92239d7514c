/* proc_storm — the per-process cost of profiling a process tree:
 *   fork N      N children, one after another, each working a few
 *               microseconds and leaving with exit(0)
 *   forkleak N  the same, each child allocating and leaking one block
 *   execfail N  N execvp calls of a program that is not on PATH
 *   forkthreads N  N forks while two threads allocate (each child _exits)
 *   execbad N   N execv calls of a script whose interpreter is missing (an
 *               executable file: the exec is tried, and fails), then
 *               0.3 s of CPU in after_exec_spin
 * Prints one line when done; exits 0. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static volatile int stop_threads;

__attribute__((noinline)) static void little_work(void) {
  unsigned long x = sink;
  for (int i = 0; i < 2000; i++) x = x * 6364136223846793005UL + 1;
  sink = x;
}

/* Spins for about ms milliseconds of this thread's CPU time. */
__attribute__((noinline)) static void after_exec_spin(int ms) {
  struct timespec t0, t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
  unsigned long x = sink;
  do {
    for (int i = 0; i < 100000; i++) x = x * 6364136223846793005UL + 1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
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
    fprintf(stderr, "usage: proc_storm fork|forkleak|execfail|forkthreads|execbad N\n");
    return 2;
  }
  const char *mode = argv[1];
  int n = atoi(argv[2]), bad = 0;
  pthread_t th[2];
  bool threads = strcmp(mode, "forkthreads") == 0;
  if (threads)
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, allocator, NULL);
  char script[64] = "";
  if (strcmp(mode, "execbad") == 0) {
    snprintf(script, sizeof script, "/tmp/proc_storm_execbad.%d", (int)getpid());
    FILE *f = fopen(script, "w");
    if (f == NULL || fputs("#!/kiln-no-such-interpreter\n", f) < 0 || fclose(f) != 0 || chmod(script, 0700) != 0)
      return 1;
  }
  for (int i = 0; i < n; i++) {
    if (script[0] != '\0') {
      char *args[] = {script, NULL};
      execv(script, args);
      if (errno != ENOENT) bad++;
      continue;
    }
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
  if (script[0] != '\0') {
    unlink(script);
    after_exec_spin(300);
  }
  if (threads) {
    stop_threads = 1;
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  }
  printf("%s %d: %d bad\n", mode, n, bad);
  return bad != 0;
}
