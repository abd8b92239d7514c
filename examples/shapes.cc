// shapes — a C++ program with namespaces, classes and templates, for
// checking that names come out demangled: geo::Grid<double>::relax() and
// geo::Grid<float>::relax() take 2/3 and 1/3 of the time.
#include <cstdio>
#include <vector>

namespace geo {
template <typename T> class Grid {
 public:
  explicit Grid(int n) : cells_(n, T(1)) {}
  __attribute__((noinline)) T relax(int sweeps) {
    for (int s = 0; s < sweeps; s++)
      for (size_t i = 1; i + 1 < cells_.size(); i++)
        cells_[i] = (cells_[i - 1] + cells_[i] + cells_[i + 1]) / T(3) + T(0.001);
    return cells_[cells_.size() / 2];
  }
 private:
  std::vector<T> cells_;
};
}  // namespace geo

int main() {
  geo::Grid<double> d(4096);
  geo::Grid<float> f(4096);
  double a = d.relax(40000);
  double b = f.relax(20000);
  std::printf("shapes: %.3f %.3f\n", a, b);
  return 0;
}
