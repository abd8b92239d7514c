// leakcheck_cxx — leak categories by construction in C++ (the exit-time
// reachability scan, checked against valgrind memcheck):
//   definitely lost    48 B  new Widget, lost
//   definitely lost   400 B  new int[100], lost
//   definitely lost    56 B  new Tracked[3], lost (8-byte count cookie + 3 x 16)
//   definitely lost    24 B  a std::vector<int>* lost ...
//   indirectly lost   200 B  ... with the 50 ints it owns
//   still reachable    72 B  new Config kept in a global
// In all: definite 528 B in 4 blocks, indirect 200 B in 1, possible 0,
// reachable 72 B in 1.
#include <cstdio>
#include <vector>

struct Widget { char name[40]; long id; };
struct Config { long values[9]; };
struct Tracked {
  long a = 0, b = 0;
  ~Tracked() { __asm__ volatile("" ::: "memory"); }
};

#define NOINLINE __attribute__((noinline, noipa))
NOINLINE void escape(void *p) { __asm__ volatile("" ::"r"(p) : "memory"); }

static Config *volatile kept_config;

NOINLINE void keep_config() { kept_config = new Config(); }
NOINLINE void lose_widget() { escape(new Widget()); }
NOINLINE void lose_ints() { escape(new int[100]()); }
NOINLINE void lose_tracked() { escape(new Tracked[3]); }
NOINLINE void lose_vector() { escape(new std::vector<int>(50)); }

int main() {
  keep_config();
  lose_widget();
  lose_ints();
  lose_tracked();
  lose_vector();
  std::printf("leakcheck_cxx: done\n");
  return 0;
}
