// check_raii — the C++ guard: kiln::LeakCheck checks at scope exit that
// nothing allocated inside is still allocated (and aborts the test if so).
// Usage: check_raii [leak]   with "leak", the guarded block leaks 40 bytes
// (an int[10]) and the program must abort with the report on stderr.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kiln.h"

static void *volatile keep;

__attribute__((noinline)) static std::vector<std::string> tokenize(const std::string &s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ') { out.push_back(cur); cur.clear(); } else cur += c;
  }
  out.push_back(cur);
  return out;
}

__attribute__((noinline)) static void leaky_helper() { keep = new int[10]; }

int main(int argc, char **argv) {
  {
    kiln::LeakCheck guard;  // aborts at scope exit if anything leaks
    auto words = tokenize("a quick brown fox jumps over the lazy dog, twice over");
    auto owned = std::make_unique<std::vector<int>>(1000, 7);
    std::printf("check_raii: %zu words\n", words.size());
  }
  {
    kiln::LeakCheck guard(kiln::LeakCheck::report_only);
    leaky_helper();
    std::printf("check_raii: report_only guard saw %ld leaked block(s)\n", guard.check(nullptr));
  }
  if (argc > 1 && std::strcmp(argv[1], "leak") == 0) {
    kiln::LeakCheck guard;
    leaky_helper();
  }
  std::printf("check_raii: done\n");
  return 0;
}
