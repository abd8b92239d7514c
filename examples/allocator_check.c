/* allocator_check — prints which allocator serves malloc, as seen by the
 * program (malloc_usable_size of a 1-byte block: glibc rounds to 24,
 * jemalloc and tcmalloc to 8), and leaks exactly 3 blocks of 64 bytes.
 * Built plain and linked with jemalloc and tcmalloc: kiln must forward to
 * the same allocator, so the output is the same under kiln. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

static void *volatile keep;

__attribute__((noinline, noipa)) static void leak64(void) { keep = malloc(64); }

int main(void) {
  void *p = malloc(1);
  size_t usable = malloc_usable_size(p);
  free(p);
  for (int i = 0; i < 3; i++) leak64();
  for (int i = 0; i < 1000; i++) free(malloc((size_t)i * 7 + 1));
  printf("allocator_check: malloc(1) usable size %zu\n", usable);
  return 0;
}
