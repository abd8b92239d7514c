/* alloc_stress — 4 threads, 1.2M operations: malloc, calloc, realloc
 * chains, frees of blocks allocated by other threads (through a shared
 * hand-off ring), and immediate reuse of freed addresses. At the end every
 * block is freed except LEAK_BLOCKS blocks of LEAK_SIZE bytes per thread.
 * Under kiln: allocated - freed = live, exactly. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { THREADS = 4, OPS = 300000, SLOTS = 4096, LEAK_BLOCKS = 25, LEAK_SIZE = 40 };
static _Atomic(void *) handoff[SLOTS];
static void *volatile keep;

static void *worker(void *arg) {
  unsigned long seed = (unsigned long)(size_t)arg * 2654435761u + 1;
  void *mine[64] = {0};
  for (int op = 0; op < OPS; op++) {
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    unsigned r = (unsigned)(seed >> 33);
    size_t size = 16 + r % 2000;
    int m = (int)(r % 64);
    switch (r % 5) {
    case 0: free(mine[m]); mine[m] = malloc(size); break;
    case 1: free(mine[m]); mine[m] = calloc(1, size); break;
    case 2: mine[m] = realloc(mine[m], size); break;
    case 3: { /* hand a block to whichever thread takes the slot next */
      void *old = atomic_exchange(&handoff[r % SLOTS], mine[m]);
      mine[m] = old; /* maybe another thread's block: ours to free now */
      break;
    }
    default: free(mine[m]); mine[m] = NULL; break;
    }
  }
  for (int m = 0; m < 64; m++) free(mine[m]);
  for (int i = 0; i < LEAK_BLOCKS; i++) keep = malloc(LEAK_SIZE);
  return NULL;
}

int main(void) {
  pthread_t t[THREADS];
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < SLOTS; i++) free(atomic_exchange(&handoff[i], NULL));
  printf("alloc_stress: %d threads, %d ops, expected leak %d bytes in %d blocks\n", THREADS,
         THREADS * OPS, THREADS * LEAK_BLOCKS * LEAK_SIZE, THREADS * LEAK_BLOCKS);
  return 0;
}
