/* leak_blocked_threads — threads that block every signal (as node's and
 * redis' helper threads do) while main exits: the leak scan cannot park
 * them with a signal. Each of the 4 holds a 100-byte block only in a
 * callee-saved register (r12) while it waits in a raw pause(2) (still
 * reachable: valgrind reads every thread's registers), and left a pointer
 * to a 20-byte block it lost 512 bytes below its stack pointer (definitely
 * lost: the stack is live from the stack pointer up). main loses 3 blocks
 * of 10 bytes. valgrind: 110 B in 7 definitely lost, 400 B in 4 reachable
 * (plus glibc's thread blocks it counts as possibly lost). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *(*volatile make)(size_t) = malloc;
static pthread_barrier_t ready;

/* A dead frame 512 bytes deep that held a lost block's address. */
__attribute__((noinline)) static void lose_deep(void) {
  void *volatile slots[64];
  for (int i = 1; i < 64; i++) slots[i] = NULL;
  slots[0] = make(20);
}

static void *holder(void *arg) {
  (void)arg;
  lose_deep();
  register void *keep __asm__("r12") = make(100);
  pthread_barrier_wait(&ready);
  for (;;) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"((long)SYS_pause), "r"(keep) : "rcx", "r11", "memory");
  }
  return NULL;
}

int main(void) {
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  pthread_barrier_init(&ready, NULL, 5);
  pthread_sigmask(SIG_BLOCK, &all, NULL); /* inherited by the threads */
  for (int i = 0; i < 4; i++) {
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
  }
  pthread_sigmask(SIG_SETMASK, &none, NULL);
  pthread_barrier_wait(&ready);
  for (int i = 0; i < 3; i++) make(10);
  puts("exiting");
  return 0;
}
