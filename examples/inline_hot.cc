// inline_hot.cc — CPU time in code the compiler inlines at -O2, with its hot
// lines known by construction (each marked "HOT:" below): an always_inline
// helper, std::sort's partitions, a lambda, and two instantiations of one
// template (geo::Grid<double>::relax and geo::Grid<float>::relax, which a
// viewer must not merge). Source lines and inlined frames are checked
// against addr2line -i; the stripped copy checks that the functions of a
// file without symbols are three entries, not hundreds.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <vector>

namespace geo {
template <typename T> struct Grid {
  std::vector<T> cells;
  explicit Grid(size_t n) : cells(n, T(1)) {}
  __attribute__((noinline)) T relax(int rounds) {
    T sum = 0;
    for (int r = 0; r < rounds; r++)
      for (size_t i = 1; i + 1 < cells.size(); i++)
        cells[i] = (cells[i - 1] + cells[i + 1]) * T(0.5); // HOT:relax
    for (T c : cells) sum += c;
    return sum;
  }
};
} // namespace geo

static inline __attribute__((always_inline)) uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull; // HOT:mix
  x ^= x >> 29;
  return x;
}

__attribute__((noinline)) uint64_t hot_mix(uint64_t seed, long n) {
  uint64_t acc = seed;
  for (long i = 0; i < n; i++) acc = mix(acc + (uint64_t)i);
  return acc;
}

__attribute__((noinline)) uint64_t hot_sort(unsigned seed, int rounds) {
  std::vector<uint32_t> v(200000);
  uint64_t check = 0;
  for (int r = 0; r < rounds; r++) {
    for (auto &x : v) x = seed = seed * 1103515245u + 12345u;
    std::sort(v.begin(), v.end()); // HOT:sort
    check += v[v.size() / 2];
  }
  return check;
}

__attribute__((noinline)) double hot_lambda(const std::vector<double> &xs, int rounds) {
  double total = 0;
  auto weigh = [](double acc, double x) {
    return acc + x * x / (1.0 + x); // HOT:lambda
  };
  for (int r = 0; r < rounds; r++) total += std::accumulate(xs.begin(), xs.end(), 0.0, weigh);
  return total;
}

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 10;
  std::vector<double> xs(100000);
  for (size_t i = 0; i < xs.size(); i++) xs[i] = (double)(i % 97) / 7.0;
  geo::Grid<double> gd(4096);
  geo::Grid<float> gf(4096);
  uint64_t a = hot_mix(1, 40000000L * scale / 10);
  uint64_t b = hot_sort(7, 4 * scale / 10 + 1);
  double c = hot_lambda(xs, 300 * scale / 10);
  double d = gd.relax(2000 * scale / 10), e = gf.relax(2000 * scale / 10);
  printf("%llu %llu %.3f %.3f %.3f\n", (unsigned long long)(a & 0xff), (unsigned long long)(b & 0xff), c, d,
         (double)e);
  return 0;
}
