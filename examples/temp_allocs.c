/* temp_allocs — temporary allocations by construction (kiln's temp_count):
 *   temp_site     1000 blocks freed at once: all temporary
 *   kept_site     500 blocks freed only after the next allocation: none
 *   gap_site      300 blocks freed after a free of another block (but no
 *                 allocation) in between: all temporary
 *   cross_site    200 blocks freed by another thread: none
 *   grow_site     100 blocks grown with realloc, then freed: the realloc'd
 *                 block (from realloc_site) is temporary, the first is not */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline, noipa))
static void *volatile sink;

NOINLINE static void *temp_site(void) {
  void *q = malloc(40);
  __asm__ volatile(""); /* not a tail call: the site keeps its frame */
  return q;
}
NOINLINE static void *kept_site(void) {
  void *q = malloc(56);
  __asm__ volatile(""); /* not a tail call: the site keeps its frame */
  return q;
}
NOINLINE static void *gap_site(void) {
  void *q = malloc(72);
  __asm__ volatile(""); /* not a tail call: the site keeps its frame */
  return q;
}
NOINLINE static void *other_site(void) {
  void *q = malloc(24);
  __asm__ volatile(""); /* not a tail call: the site keeps its frame */
  return q;
}
NOINLINE static void *cross_site(void) {
  void *q = malloc(88);
  __asm__ volatile(""); /* not a tail call: the site keeps its frame */
  return q;
}
NOINLINE static void *grow_site(void) {
  void *q = malloc(16);
  __asm__ volatile(""); /* not a tail call: the site keeps its frame */
  return q;
}
NOINLINE static void *realloc_site(void *p) {
  void *q = realloc(p, 4096);
  __asm__ volatile(""); /* not a tail call: the site keeps its frame */
  return q;
}

static void *cross[200];
static void *freer(void *arg) {
  (void)arg;
  for (int i = 0; i < 200; i++) free(cross[i]);
  return NULL;
}

int main(void) {
  for (int i = 0; i < 1000; i++) {
    void *p = temp_site();
    memset(p, 1, 40);
    free(p);
  }
  void *prev = NULL;
  for (int i = 0; i < 500; i++) {
    void *p = kept_site();
    free(prev); /* prev was followed by this allocation: not temporary */
    prev = p;
    sink = p;
  }
  void *o = other_site(); /* kept_site's last block: freed after this allocation */
  free(prev);
  free(o); /* other_site's block: this thread allocated nothing since: temporary */
  for (int i = 0; i < 300; i++) {
    void *keep = other_site();
    void *p = gap_site();
    free(keep); /* a free between is not an allocation */
    free(p);    /* gap_site's block: temporary; other_site's: not */
  }
  for (int i = 0; i < 200; i++) cross[i] = cross_site();
  pthread_t t;
  pthread_create(&t, NULL, freer, NULL);
  pthread_join(t, NULL);
  for (int i = 0; i < 100; i++) {
    void *p = grow_site();
    p = realloc_site(p);
    free(p);
  }
  printf("temp_allocs done\n");
  return 0;
}
