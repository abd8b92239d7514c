/* kiln_log.c — the runtime's one way to speak: a single "kiln: ..." line on
 * stderr, written with write(2) so that no stdio buffer of the program is
 * touched; formatted by kiln_fmt (no locale, no malloc), so emergency
 * dumps may use it too. */
#include "kiln_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void (*kiln_log_sink)(const char *line, size_t n);

void kiln_log(const char *fmt, ...) {
  int saved_errno = errno;
  char line[1024];
  size_t n = 6;
  memcpy(line, "kiln: ", n);
  va_list ap;
  va_start(ap, fmt);
  int k = kiln_fmt_v(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  if (k > 0) n += (size_t)k < sizeof line - n - 1 ? (size_t)k : sizeof line - n - 2;
  line[n++] = '\n';
  if (kiln_log_sink != NULL) {
    kiln_log_sink(line, n);
    errno = saved_errno;
    return;
  }
  for (size_t off = 0; off < n;) {
    ssize_t w = write(2, line + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += (size_t)w;
  }
  errno = saved_errno;
}
