/* leakcheck — every leak category by construction, as valgrind memcheck
 * names them (examples of the exit-time reachability scan):
 *   still reachable   111 B  a block only a global points to
 *                      77 B  a block only another thread's stack and
 *                            registers hold, that thread blocked in read(2)
 *   definitely lost    32 B  a lost struct ...
 *   indirectly lost   500 B  ... and the buffer it owns
 *   possibly lost      64 B  a block a global points into (offset 16)
 *   definitely lost   300 B  three plain lost blocks of 100 B
 *   definitely lost    48 B  a cycle of two lost 48-byte blocks: one leads,
 *   indirectly lost    48 B  the other is reached only from it
 * In all: definite 380 B in 5 blocks, indirect 548 B in 2, possible 64 B in
 * 1, reachable 188 B in 2. The program exits with the thread still blocked. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))

struct owner { char *buf; size_t len; long pad[2]; };
struct node { struct node *next; char pad[40]; };

static void *volatile kept;     /* reachable (volatile: a store never read is kept) */
static char *volatile interior; /* 16 bytes into a block: possibly lost */
static int ready[2], never[2];

/* Opaque to the optimiser: the block "escapes", yet nothing keeps it. */
NOINLINE void touch(void *p, size_t n) { memset(p, 0, n); __asm__ volatile("" ::"r"(p) : "memory"); }

NOINLINE void keep_global(void) {
  kept = malloc(111);
  touch(kept, 111);
}

NOINLINE void point_inside(void) {
  char *p = calloc(1, 64);
  touch(p, 64);
  interior = p + 16;
}

NOINLINE void lose_owner(void) {
  struct owner *o = malloc(sizeof *o);
  touch(o, sizeof *o);
  o->buf = malloc(500);
  touch(o->buf, 500);
  o->len = 500;
  __asm__ volatile("" ::"r"(o) : "memory");
}

NOINLINE void lose_plain(void) { touch(malloc(100), 100); }

NOINLINE void lose_cycle(void) {
  struct node *a = malloc(sizeof *a), *b = malloc(sizeof *b);
  touch(a, sizeof *a);
  touch(b, sizeof *b);
  a->next = b;
  b->next = a;
  __asm__ volatile("" ::"r"(a), "r"(b) : "memory");
}

/* Holds a block on its own stack only, then blocks for good. */
static void *holder(void *arg) {
  (void)arg;
  char *volatile block = malloc(77);
  touch(block, 77);
  if (write(ready[1], "r", 1) != 1) return NULL;
  char c;
  if (read(never[0], &c, 1) == 1) free(block);
  return NULL;
}

NOINLINE int start_holder(void) {
  pthread_t t;
  if (pipe(ready) < 0 || pipe(never) < 0 || pthread_create(&t, NULL, holder, NULL) != 0) return -1;
  char c;
  return read(ready[0], &c, 1) == 1 ? 0 : -1;
}

int main(void) {
  if (start_holder() < 0) return 1;
  keep_global();
  point_inside();
  lose_owner();
  for (int i = 0; i < 3; i++) lose_plain();
  lose_cycle();
  printf("leakcheck: done\n");
  return 0;
}
