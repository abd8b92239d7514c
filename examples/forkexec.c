/* forkexec — fork, then exec another program in the child (default: the
 * cpu_split example next to this binary, with 10 rounds). The exec'd
 * program is profiled through the inherited environment. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  char self[PATH_MAX], target[PATH_MAX + 32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) return 1;
  self[n] = '\0';
  const char *suffix = strstr(self, ".fp") ? ".fp" : "";
  snprintf(target, sizeof target, "%s/cpu_split%s", dirname(self), suffix);
  const char *prog = argc > 1 ? argv[1] : target;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    execl(prog, "cpu_split", "10", (char *)NULL);
    perror("exec");
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  printf("forkexec: child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
