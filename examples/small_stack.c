/* small_stack — allocations on small makecontext stacks (coroutines), with
 * an inaccessible guard page below each stack. Each coroutine allocates and
 * frees at call depths that change, then yields. With "measure", the
 * stacks are painted first and the deepest byte written is printed: the
 * stack the coroutine used, the profiler's hooks included.
 * Usage: small_stack [STACK_BYTES] [ROUNDS] [measure] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))
enum { COROS = 4 };
static ucontext_t main_ctx, coro_ctx[COROS];
static int rounds;
static void *volatile sink;

NOINLINE static void nest(int depth) {
  if (depth > 0) {
    nest(depth - 1);
    __asm__ volatile("");
    return;
  }
  void *p = malloc(24 + (size_t)(rounds % 7) * 40);
  sink = p;
  free(p);
  p = calloc(3, 16);
  sink = p;
  p = realloc(p, 200);
  free(p);
}

static void coro(int id) {
  for (int r = 0; r < rounds; r++) {
    nest((r + id) % 6);
    swapcontext(&coro_ctx[id], &main_ctx);
  }
}

int main(int argc, char **argv) {
  size_t bytes = argc > 1 ? strtoul(argv[1], NULL, 10) : 8192;
  rounds = argc > 2 ? atoi(argv[2]) : 1000;
  int measure = argc > 3 && strcmp(argv[3], "measure") == 0;
  long page = sysconf(_SC_PAGESIZE);
  size_t span = (bytes + (size_t)page - 1) / (size_t)page * (size_t)page;
  char *stacks[COROS];
  for (int i = 0; i < COROS; i++) {
    char *m = mmap(NULL, span + (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return 2;
    mprotect(m, (size_t)page, PROT_NONE); /* the guard page */
    stacks[i] = m + page + (span - bytes);
    if (measure) memset(stacks[i], 0xa5, bytes);
    getcontext(&coro_ctx[i]);
    coro_ctx[i].uc_stack.ss_sp = stacks[i];
    coro_ctx[i].uc_stack.ss_size = bytes;
    coro_ctx[i].uc_link = &main_ctx;
    makecontext(&coro_ctx[i], (void (*)(void))coro, 1, i);
  }
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < COROS; i++) swapcontext(&main_ctx, &coro_ctx[i]);
  size_t used = 0;
  if (measure)
    for (int i = 0; i < COROS; i++) {
      size_t k = 0;
      while (k < bytes && (unsigned char)stacks[i][k] == 0xa5) k++;
      if (bytes - k > used) used = bytes - k;
    }
  printf("small_stack: %d coroutines on %zu-byte stacks, %d rounds", COROS, bytes, rounds);
  if (measure) printf(", deepest stack use %zu bytes", used);
  printf("\n");
  return 0;
}
