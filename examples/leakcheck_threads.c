/* leakcheck_threads — the process exits while its threads still run: four
 * blocked in read(2) on a pipe nobody writes, two busy on the CPU, two
 * allocating and freeing as fast as they can. Each blocked or busy thread
 * holds one block on its stack only (4 x 64 B and 2 x 96 B: still
 * reachable); each allocating thread holds at most one 24-byte block at a
 * time (reachable if live when the scan pauses it). main loses 3 x 100 B.
 * The leak scan must pause them all, finish, and let the process exit. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))
enum { BLOCKED = 4, BUSY = 2, CHURN = 2 };

static int ready[2], never[2];
static volatile int spinning;

NOINLINE void touch(void *p, size_t n) { memset(p, 0, n); __asm__ volatile("" ::"r"(p) : "memory"); }

static void *blocked(void *arg) {
  (void)arg;
  char *volatile block = malloc(64);
  touch(block, 64);
  if (write(ready[1], "b", 1) != 1) return NULL;
  char c;
  if (read(never[0], &c, 1) == 1) free(block);
  return NULL;
}

static void *busy(void *arg) {
  (void)arg;
  char *volatile block = malloc(96);
  touch(block, 96);
  if (write(ready[1], "u", 1) != 1) return NULL;
  volatile unsigned long x = 1;
  for (;;) {
    x = x * 6364136223846793005ul + 1;
    if (spinning < 0) break;
  }
  free(block);
  return NULL;
}

static void *churn(void *arg) {
  (void)arg;
  if (write(ready[1], "c", 1) != 1) return NULL;
  for (;;) {
    char *volatile p = malloc(24);
    touch(p, 24);
    free(p);
    if (spinning < 0) break;
  }
  return NULL;
}

NOINLINE void lose_plain(void) { touch(malloc(100), 100); }

int main(void) {
  if (pipe(ready) < 0 || pipe(never) < 0) return 1;
  void *(*fns[])(void *) = {blocked, busy, churn};
  int counts[] = {BLOCKED, BUSY, CHURN};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < counts[k]; i++) {
      pthread_t t;
      if (pthread_create(&t, NULL, fns[k], NULL) != 0) return 1;
    }
  for (int i = 0; i < BLOCKED + BUSY + CHURN; i++) {
    char c;
    if (read(ready[0], &c, 1) != 1) return 1;
  }
  for (int i = 0; i < 3; i++) lose_plain();
  usleep(20000); /* let the allocating threads run a while */
  printf("leakcheck_threads: done\n");
  return 0;
}
