/* execvp_paths — one execvp(FILE, {FILE, ARGS...}) with the PATH the caller
 * set, for checking that kiln's PATH search finds and fails exactly as
 * libc's does: what ran prints its own output; a failed search prints the
 * errno's name and exits 1. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: execvp_paths FILE [ARGS...]\n");
    return 2;
  }
  execvp(argv[1], argv + 1);
  int e = errno;
  const char *name = e == ENOENT    ? "ENOENT"
                     : e == EACCES  ? "EACCES"
                     : e == ENOTDIR ? "ENOTDIR"
                     : e == ENAMETOOLONG ? "ENAMETOOLONG"
                     : e == ENOEXEC ? "ENOEXEC"
                     : e == ELOOP   ? "ELOOP"
                                    : "other";
  printf("execvp %s: %s (%d)\n", strlen(argv[1]) > 40 ? "(long name)" : argv[1], name, e);
  return 1;
}
