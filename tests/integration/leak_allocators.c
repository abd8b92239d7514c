/* leak_allocators — the same leaks under any allocator: 49 blocks
 * definitely lost (1 B to 1 MiB, never written: whatever the allocator left
 * in them stays), 7 still reachable from a global (written), all allocated
 * after many frees of the same sizes, so that the allocator's caches and
 * free lists hold stale addresses of these very blocks. Built by
 * test_leak_allocators.sh against glibc, jemalloc and tcmalloc. */
#include <stdlib.h>
#include <string.h>

static void *volatile keep[7];
static void *(*volatile fill)(void *, int, size_t) = memset; /* not optimised away */
static const size_t sizes[7] = {1, 24, 100, 1000, 5000, 40000, 1 << 20};

__attribute__((noinline, noipa)) static void churn(void) {
  for (int r = 0; r < 20; r++) {
    void *p[64];
    for (int i = 0; i < 64; i++) p[i] = malloc(sizes[i % 7] + (size_t)r);
    for (int i = 0; i < 64; i++) free(p[i]);
  }
}

__attribute__((noinline, noipa)) static void lose(size_t n) {
  void *volatile p = malloc(n);
  p = NULL;
}

int main(void) {
  churn();
  for (int i = 0; i < 49; i++) lose(sizes[i % 7] + (size_t)(i / 7));
  for (int i = 0; i < 7; i++) keep[i] = fill(malloc(sizes[i]), 0x5a, sizes[i]);
  churn();
  return 0;
}
