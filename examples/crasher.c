/* crasher — ends badly, after a known amount of CPU work (crunch):
 *   crasher _exit      _exit(7), skipping atexit and destructors
 *   crasher segv       SIGSEGV with the program's own handler installed:
 *                      it writes a line, restores the default and returns,
 *                      so the fault kills the process (and dumps core)
 *   crasher segv-plain SIGSEGV, no handler
 *   crasher abort      abort()
 * kiln must write the profile each time and change neither the exit status
 * nor the signal. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile unsigned long sink;
static int *volatile null_ptr;

__attribute__((noinline, noipa)) static void crunch(void) {
  unsigned long x = sink;
  for (unsigned long i = 0; i < 300000000UL; i++) x = x * 6364136223846793005UL + 1;
  sink = x;
}

static void on_segv(int sig) {
  static const char msg[] = "crasher: own SIGSEGV handler ran\n";
  if (write(2, msg, sizeof msg - 1) < 0) _exit(99);
  signal(sig, SIG_DFL); /* return: the fault repeats and kills us */
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "_exit";
  crunch();
  printf("crasher: %s\n", mode);
  fflush(stdout);
  if (strcmp(mode, "_exit") == 0) _exit(7);
  if (strcmp(mode, "segv") == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, NULL);
    *null_ptr = 1;
  }
  if (strcmp(mode, "segv-plain") == 0) *null_ptr = 1;
  if (strcmp(mode, "abort") == 0) abort();
  return 3;
}
