/* kiln_suppress.c — leak suppressions in LeakSanitizer's format: one
 * "leak:PATTERN" a line, '#' starts a comment line, blank lines ignored. A
 * pattern matches a leak when it matches the name of any frame of the
 * block's allocation stack, or the path of the module holding that frame.
 * Matching follows LSan's templates: a substring match; '*' matches any
 * run of characters; '^' first anchors at the start, '$' last at the end.
 * Exit time (kiln_scan.c), normal context; files read with read(2), memory
 * from mmap. */
#include "kiln_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* The first occurrence of [t, t+n) in [s, end), or NULL. */
static const char *kiln_suppress_find(const char *s, const char *end, const char *t, size_t n) {
  for (; (size_t)(end - s) >= n; s++)
    if (memcmp(s, t, n) == 0) return s;
  return NULL;
}

bool kiln_suppress_match(const char *templ, const char *name) {
  size_t len = strlen(name);
  if (len == 0) return false;
  const char *s = name, *end = name + len;
  bool anchored = false, star = false;
  if (*templ == '^') {
    anchored = true;
    templ++;
  }
  while (*templ) {
    if (*templ == '*') {
      templ++;
      anchored = false;
      star = true;
      continue;
    }
    if (*templ == '$') return s == end || star;
    if (s == end) return false;
    /* A literal run, up to the next '*' or '$': its first occurrence (as
     * LSan does: no backtracking to a later one). */
    size_t n = strcspn(templ, "*$");
    const char *at = kiln_suppress_find(s, end, templ, n);
    if (at == NULL || (anchored && at != s)) return false;
    s = at + n;
    templ += n;
    anchored = star = false;
  }
  return true;
}

int kiln_suppress_load(const char *path, kiln_suppress_t *sup) {
  memset(sup, 0, sizeof *sup);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    kiln_log("KILN_SUPPRESS=%s: %s; no suppressions", path, strerror(e));
    return -e;
  }
  for (;;) {
    char *p = kiln_buf_reserve(&sup->text, 65536);
    if (p == NULL) break;
    ssize_t got = read(fd, p, 65536);
    sup->text.len -= 65536 - (size_t)(got > 0 ? got : 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
  }
  close(fd);
  kiln_buf_put(&sup->text, "\n", 1);
  if (sup->text.failed) {
    kiln_log("KILN_SUPPRESS=%s: cannot read it; no suppressions", path);
    kiln_suppress_free(sup);
    return -ENOMEM;
  }
  /* Lines become NUL-terminated patterns in place; offsets kept. */
  char *s = sup->text.data, *end = s + sup->text.len;
  int line = 0;
  while (s < end) {
    char *eol = memchr(s, '\n', (size_t)(end - s));
    line++;
    *eol = '\0';
    while (*s == ' ' || *s == '\t') s++;
    char *last = eol;
    while (last > s && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\r')) *--last = '\0';
    if (*s != '\0' && *s != '#') {
      if (strncmp(s, "leak:", 5) != 0 || s[5] == '\0') {
        kiln_log("%s:%d: expected leak:PATTERN, got '%.60s'; no suppressions", path, line, s);
        kiln_suppress_free(sup);
        return -EINVAL;
      }
      size_t off = (size_t)(s + 5 - sup->text.data);
      kiln_buf_put(&sup->offsets, (const char *)&off, sizeof off);
    }
    s = eol + 1;
  }
  sup->n = sup->offsets.len / sizeof(size_t);
  return 0;
}

static bool kiln_suppress_any(const kiln_suppress_t *sup, const char *name) {
  const size_t *offs = (const size_t *)sup->offsets.data;
  for (size_t i = 0; i < sup->n; i++)
    if (kiln_suppress_match(sup->text.data + offs[i], name)) return true;
  return false;
}

bool kiln_suppress_stack(const kiln_suppress_t *sup, const kiln_stack_t *s, kiln_symbols_t *sy, kiln_buf_t *scratch) {
  if (sup->n == 0) return false;
  for (uint32_t i = 0; i < s->depth; i++) {
    scratch->len = 0;
    kiln_symbols_name(sy, s->pcs[i], scratch);
    kiln_buf_put(scratch, "", 1);
    if (!scratch->failed && kiln_suppress_any(sup, scratch->data)) return true;
    const kiln_module_t *m = kiln_modules_find((uintptr_t)s->pcs[i] - 1);
    if (m != NULL && m->path != NULL && kiln_suppress_any(sup, m->path)) return true;
  }
  return false;
}

void kiln_suppress_free(kiln_suppress_t *sup) {
  kiln_buf_free(&sup->text);
  kiln_buf_free(&sup->offsets);
  sup->n = 0;
}
