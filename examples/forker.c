/* forker — fork: the parent works in parent_work before and after the
 * fork, the child only in child_work. Each process's profile must hold its
 * own work only: the child's none of the parent's samples. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline, noipa)) static void burn(unsigned long n) {
  unsigned long x = sink;
  for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1;
  sink = x;
}
__attribute__((noinline, noipa)) static void parent_work(void) { burn(150000000UL); sink++; }
__attribute__((noinline, noipa)) static void child_work(void) { burn(160000000UL); sink += 2; }

int main(void) {
  parent_work();
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    child_work();
    printf("child done\n");
    exit(3);
  }
  parent_work();
  int status = 0;
  waitpid(pid, &status, 0);
  printf("parent done, child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 0;
}
