/* test_fmt — kiln_fmt gives snprintf's bytes for every format the runtime
 * uses; kiln_fmt_utc gives gmtime_r's fields; kiln_fmt_errno strerror's
 * words. Links kiln_fmt.o alone. */
#include "kiln_internal.h"
#include "kt.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define SAME(fmt, ...)                                                        \
  do {                                                                        \
    char a_[256], b_[256];                                                    \
    int na_ = kiln_fmt(a_, sizeof a_, fmt, __VA_ARGS__);                      \
    int nb_ = snprintf(b_, sizeof b_, fmt, __VA_ARGS__);                      \
    if (na_ != nb_ || strcmp(a_, b_) != 0)                                    \
      fprintf(stderr, "kiln_fmt(\"%s\"): '%s' (%d), snprintf: '%s' (%d)\n",  \
              fmt, a_, na_, b_, nb_);                                         \
    KT_CHECK(na_ == nb_ && strcmp(a_, b_) == 0);                              \
  } while (0)

static void test_integers(void) {
  long long ll[] = {0, 1, -1, 42, -42, 9223372036854775807LL, -9223372036854775807LL - 1};
  for (size_t i = 0; i < sizeof ll / sizeof ll[0]; i++) {
    SAME("%lld|%d|%02d|%04d|%5d|%-5d|", ll[i], (int)ll[i], (int)ll[i], (int)ll[i], (int)ll[i], (int)ll[i]);
    SAME("%llu|%llx|%u|%04u|%zu|%02x|", (unsigned long long)ll[i], (unsigned long long)ll[i],
         (unsigned)ll[i], (unsigned)ll[i], (size_t)ll[i], (unsigned)(ll[i] & 0xff));
  }
  SAME("%s", "plain");
  SAME("a%%b %c %.3s|%.*s|%-6s|%6s|", 'x', "abcdef", 2, "xyz", "ab", "cd");
}

static void test_doubles(void) {
  double v[] = {0, 0.5, 1.5, 2.5, 0.0004, 0.0005, 1.23456, 999.95, 12345.678, 1e9 + 0.25, -3.25, 1e15};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) SAME("%.0f|%.1f|%.3f|%.6f|", v[i], v[i], v[i], v[i]);
  /* Many values, and ties at every precision (k + 0.5 ulp of the last
   * digit, as binary fractions), for the rounding's exact product error. */
  uint64_t x = 0x9e3779b97f4a7c15ull;
  int bad = 0;
  for (int i = 0; i < 200000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double d = (double)(x >> 11) / 9007199254740992.0 * (i % 3 == 0 ? 1e6 : i % 3 == 1 ? 1000 : 1);
    if (i % 5 == 0) d = (double)(x % 100000) / 8.0; /* exact binary ties */
    char a[128], b[128];
    kiln_fmt(a, sizeof a, "%.0f|%.1f|%.2f|%.3f|%.6f|%.9f", d, d, d, d, d, d);
    snprintf(b, sizeof b, "%.0f|%.1f|%.2f|%.3f|%.6f|%.9f", d, d, d, d, d, d);
    if (strcmp(a, b) != 0 && bad++ < 5) fprintf(stderr, "kiln_fmt %s, snprintf %s\n", a, b);
  }
  KT_CHECK(bad == 0);
}

static void test_truncation(void) {
  char small[8];
  int n = kiln_fmt(small, sizeof small, "%s-%d", "abcdefgh", 12);
  KT_CHECK(n == 11 && strcmp(small, "abcdefg") == 0);
  KT_CHECK(kiln_fmt(NULL, 0, "%d", 123) == 3);
}

static void test_utc(void) {
  for (long long t = -86400LL * 800; t < 86400LL * 365 * 140; t += 86400LL * 37 + 3607) {
    struct tm tm;
    time_t tt = (time_t)t;
    gmtime_r(&tt, &tm);
    kiln_fmt_tm_t k;
    kiln_fmt_utc(t, &k);
    KT_CHECK(k.year == tm.tm_year + 1900 && k.month == tm.tm_mon + 1 && k.day == tm.tm_mday &&
             k.hour == tm.tm_hour && k.minute == tm.tm_min && k.second == tm.tm_sec);
  }
}

static void test_errno(void) {
  int es[] = {EACCES, ENOENT, ENOSPC, EROFS, ENOTDIR, EEXIST, ENAMETOOLONG};
  char buf[32];
  for (size_t i = 0; i < sizeof es / sizeof es[0]; i++) KT_CHECK(strcmp(kiln_fmt_errno(es[i], buf, sizeof buf), strerror(es[i])) == 0);
  KT_CHECK(strcmp(kiln_fmt_errno(4095, buf, sizeof buf), "error 4095") == 0);
}

int main(void) {
  KT_RUN(test_integers);
  KT_RUN(test_doubles);
  KT_RUN(test_truncation);
  KT_RUN(test_utc);
  KT_RUN(test_errno);
  return kt_failed_tests != 0;
}
