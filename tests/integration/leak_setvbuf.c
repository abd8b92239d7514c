/* leak_setvbuf — stream buffers at exit: stdout gets a 10,000-byte buffer
 * the program allocated and then forgot (definitely lost: glibc never
 * frees a buffer it was given), a stream left open keeps its FILE
 * (reachable) while glibc's own buffer for it is freed at exit; with an
 * argument, stderr gets a forgotten 5,000-byte buffer too. */
#include <stdio.h>
#include <stdlib.h>

static void *(*volatile make)(size_t) = malloc; /* the pointer stays in no register */

int main(int argc, char **argv) {
  (void)argv;
  char *buf = make(10000);
  setvbuf(stdout, buf, _IOFBF, 10000);
  buf = NULL;
  FILE *f = fopen("/dev/null", "w");
  fprintf(f, "x\n");
  if (argc > 1) {
    char *b2 = make(5000);
    setvbuf(stderr, b2, _IOFBF, 5000);
    fprintf(stderr, "e");
  }
  printf("hello\n");
  return 0;
}
