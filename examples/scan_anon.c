/* scan_anon.c — leak categories when the only pointers to blocks live in
 * anonymous memory the scan reads in place: a touched page in the middle
 * of a large untouched mapping, and (in a fork child) pages the child
 * still shares with its parent.
 *   parent: 111 B reachable (its pointer in page 1000 of a 64 MiB mapping),
 *           222 B definitely lost;
 *   child:  the same 111 B reachable through the shared page, the same
 *           222 B lost, and 333 B of its own lost.
 * With the argument "faults", the parent prints the child's page faults:
 * the scan must not map the 16,383 pages of the mapping it never touched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void *volatile sink;

__attribute__((noinline)) static void *keep_in_anon(void **slot) {
  *slot = malloc(111);
  return *slot;
}

__attribute__((noinline)) static void lose(size_t n) {
  sink = malloc(n);
  sink = NULL;
}

int main(int argc, char **argv) {
  enum { MAP = 64 << 20 };
  char *big = mmap(NULL, MAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (big == MAP_FAILED) return 1;
  void **slot = (void **)(big + 1000 * 4096 + 64);
  keep_in_anon(slot);
  lose(222);
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    lose(333);
    return 0;
  }
  int status = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  wait4(pid, &status, 0, &ru);
  printf("child %s\n", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "ok" : "failed");
  if (argc > 1 && strcmp(argv[1], "faults") == 0) printf("child minflt %ld\n", ru.ru_minflt);
  return 0;
}
