// leaky — known leaks from every kind of allocation site, by construction:
//   leak_malloc        3 x 100 B              malloc
//   leak_calloc        2 x 240 B (10 x 24)    calloc
//   leak_realloc       1 x 1024 B             a realloc chain 16 -> 1024
//   leak_memalign      1 x 200 B              posix_memalign (64)
//   leak_aligned       1 x 8192 B             aligned_alloc (4096)
//   leak_new           1 x 48 B               new Widget
//   leak_new_array     1 x 400 B              new int[100]
//   leak_owner         1 x 32 B + 1 x 500 B   a struct that owns a buffer
// Total 11,176 B in 12 blocks. Everything else it allocates it frees.
#include <cstdio>
#include <cstdlib>
#include <cstring>

struct Widget { char name[40]; long id; };
struct Owner { char *buf; size_t len; long pad[2]; };

#define NOINLINE __attribute__((noinline, noipa))
static void *volatile keep; // defeats the optimiser, not the leak

NOINLINE void leak_malloc() { keep = malloc(100); }
NOINLINE void leak_calloc() { keep = calloc(10, 24); }
NOINLINE void leak_realloc() {
  void *p = malloc(16);
  for (size_t n = 32; n <= 1024; n *= 2) p = realloc(p, n);
  keep = p;
}
NOINLINE void leak_memalign() {
  void *p = nullptr;
  if (posix_memalign(&p, 64, 200) == 0) keep = p;
}
NOINLINE void leak_aligned() { keep = aligned_alloc(4096, 8192); }
NOINLINE void leak_new() { keep = new Widget(); }
NOINLINE void leak_new_array() { keep = new int[100]; }
NOINLINE Owner *make_owner() {
  Owner *o = static_cast<Owner *>(malloc(sizeof(Owner)));
  o->buf = static_cast<char *>(malloc(500));
  o->len = 500;
  return o;
}
NOINLINE void leak_owner() { keep = make_owner(); }

NOINLINE void no_leak() {
  for (int i = 0; i < 100; i++) {
    char *s = static_cast<char *>(malloc(64 + i));
    s = static_cast<char *>(realloc(s, 200 + i));
    free(s);
    int *v = new int[i + 1];
    delete[] v;
    Widget *w = new Widget();
    delete w;
  }
}

int main() {
  no_leak();
  for (int i = 0; i < 3; i++) leak_malloc();
  for (int i = 0; i < 2; i++) leak_calloc();
  leak_realloc();
  leak_memalign();
  leak_aligned();
  leak_new();
  leak_new_array();
  leak_owner();
  std::printf("leaky: done\n");
  return 0;
}
