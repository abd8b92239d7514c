/* own_sigprof — a program with its own SIGPROF handler and ITIMER_PROF
 * timer. Under kiln it must keep both: with perf sampling kiln sends no
 * signal and samples on; with a signal timer kiln steps aside and says so. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static volatile sig_atomic_t ticks;

static void on_prof(int sig) {
  (void)sig;
  ticks++;
}

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_prof;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGPROF, &sa, NULL);
  struct itimerval it = {{0, 10000}, {0, 10000}};
  setitimer(ITIMER_PROF, &it, NULL);
  volatile unsigned long x = 0;
  while (ticks < 20) x = x * 6364136223846793005UL + 1;
  struct itimerval off;
  memset(&off, 0, sizeof off);
  setitimer(ITIMER_PROF, &off, NULL);
  struct sigaction now;
  sigaction(SIGPROF, NULL, &now);
  printf("own_sigprof: handler ran %s, still installed %s\n", ticks >= 20 ? "yes" : "no",
         now.sa_handler == on_prof ? "yes" : "no");
  return 0;
}
