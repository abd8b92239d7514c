/* test_suppress — kiln_suppress.c alone: LeakSanitizer's template rules
 * (substring, '*', '^', '$', no backtracking) and the file format. */
#include "kiln_internal.h"
#include "kt.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_substring(void) {
  KT_CHECK(kiln_suppress_match("lose", "lose_plain"));
  KT_CHECK(kiln_suppress_match("plain", "lose_plain"));
  KT_CHECK(!kiln_suppress_match("Plain", "lose_plain"));
  KT_CHECK(!kiln_suppress_match("x", ""));
}

static void test_wildcards(void) {
  KT_CHECK(kiln_suppress_match("std::*::push_back", "std::vector<int>::push_back(int&&)"));
  KT_CHECK(kiln_suppress_match("a*c", "xxabbbcxx"));
  KT_CHECK(!kiln_suppress_match("a*c", "xxcbbba"));
  KT_CHECK(kiln_suppress_match("*", "anything"));
}

static void test_anchors(void) {
  KT_CHECK(kiln_suppress_match("^lose", "lose_plain"));
  KT_CHECK(!kiln_suppress_match("^plain", "lose_plain"));
  KT_CHECK(kiln_suppress_match("plain$", "lose_plain"));
  KT_CHECK(!kiln_suppress_match("lose$", "lose_plain"));
  KT_CHECK(kiln_suppress_match("^lose_plain$", "lose_plain"));
  KT_CHECK(kiln_suppress_match("^*plain", "lose_plain"));
  /* As in LSan: the first occurrence only, then '$' must follow it. */
  KT_CHECK(!kiln_suppress_match("ab$", "abab"));
  KT_CHECK(kiln_suppress_match("*ab*$", "abab"));
}

static int write_tmp(const char *text, char *path) {
  strcpy(path, "/tmp/kiln-test-suppress.XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  close(fd);
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

static void test_file(void) {
  char path[64];
  kiln_suppress_t sup;
  KT_CHECK(write_tmp("# comment\n\n  leak:one  \nleak:two*three\r\n", path) == 0);
  KT_CHECK(kiln_suppress_load(path, &sup) == 0);
  KT_CHECK(sup.n == 2);
  KT_CHECK(sup.n == 2 && strcmp(sup.text.data + ((size_t *)sup.offsets.data)[0], "one") == 0);
  KT_CHECK(sup.n == 2 && strcmp(sup.text.data + ((size_t *)sup.offsets.data)[1], "two*three") == 0);
  kiln_suppress_free(&sup);
  unlink(path);
  KT_CHECK(write_tmp("leak:ok\nrace:no\n", path) == 0);
  KT_CHECK(kiln_suppress_load(path, &sup) < 0 && sup.n == 0);
  unlink(path);
  KT_CHECK(kiln_suppress_load("/nonexistent/kiln-suppressions", &sup) < 0);
}

int main(void) {
  KT_RUN(test_substring);
  KT_RUN(test_wildcards);
  KT_RUN(test_anchors);
  KT_RUN(test_file);
  return kt_failed_tests != 0;
}
