/* clean — allocates through every entry of the malloc family, frees it
 * all, and reports its own totals (written with write(2): stdio would
 * allocate a buffer of its own). Under kiln: leak files empty, and the
 * allocation totals equal these. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <malloc.h>

static unsigned long bytes, blocks;
#define COUNT(n) (bytes += (n), blocks++)

int main(void) {
  void *keep[64];
  int k = 0;
  for (size_t i = 1; i <= 20; i++) { keep[k++] = malloc(i * 8); COUNT(i * 8); }
  for (size_t i = 1; i <= 10; i++) { keep[k++] = calloc(i, 12); COUNT(i * 12); }
  void *p = NULL;
  if (posix_memalign(&p, 128, 300) == 0) { keep[k++] = p; COUNT(300); }
  keep[k++] = aligned_alloc(64, 640); COUNT(640);
  keep[k++] = memalign(32, 96); COUNT(96);
  keep[k++] = valloc(100); COUNT(100);
  /* a realloc is an allocation of the new size and a free of the old */
  char *r = malloc(10); COUNT(10);
  r = realloc(r, 5000); COUNT(5000);
  r = realloc(r, 20); COUNT(20);
  keep[k++] = r;
  char *a = reallocarray(NULL, 7, 9); COUNT(63);
  keep[k++] = a;
  for (int i = 0; i < k; i++) free(keep[i]);
  char line[128];
  int n = snprintf(line, sizeof line, "clean: allocated %lu bytes in %lu blocks, all freed\n", bytes, blocks);
  return write(1, line, (size_t)n) == n ? 0 : 1;
}
