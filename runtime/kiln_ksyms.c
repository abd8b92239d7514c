/* kiln_ksyms.c — names of kernel code addresses, from /proc/kallsyms, for
 * the kernel part of CPU samples taken in the kernel. Loaded on the first
 * kernel address a dump names and dropped at the end of that dump. Reading
 * kallsyms costs the kernel about 50 ms, so the profiler asks for names
 * only from processes that ran long enough for that to be small beside
 * their run (kiln_ksyms_want); otherwise kernel frames are left out and
 * the "[kernel]" frame alone marks the time. Dump time, normal context. */
#include "kiln_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct kiln_ksym {
  uint64_t addr;
  uint32_t name; /* offset in kiln_ksyms.names */
  uint32_t len;
} kiln_ksym_t;

static struct {
  bool want;         /* this dump names kernel frames */
  bool loaded, usable;
  kiln_buf_t text;  /* the file */
  kiln_buf_t syms;  /* kiln_ksym_t, sorted by address */
  size_t n;
} kiln_ksyms;

bool kiln_ksyms_readable(void) {
  int fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char line[64];
  ssize_t n = read(fd, line, sizeof line - 1);
  close(fd);
  if (n <= 0) return false;
  line[n] = '\0';
  /* Hidden addresses (kptr_restrict, no CAP_SYSLOG) read as zeros. */
  return strtoull(line, NULL, 16) != 0;
}

static int kiln_ksyms_cmp(const void *a, const void *b) {
  const kiln_ksym_t *x = a, *y = b;
  return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void kiln_ksyms_load(void) {
  kiln_ksyms.loaded = true;
  int fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  for (;;) {
    char *p = kiln_buf_reserve(&kiln_ksyms.text, 1 << 16);
    if (p == NULL) break;
    ssize_t n = read(fd, p, 1 << 16);
    kiln_ksyms.text.len -= (size_t)(1 << 16) - (size_t)(n > 0 ? n : 0);
    if (n <= 0) break;
  }
  close(fd);
  if (kiln_ksyms.text.failed) return;
  char *s = kiln_ksyms.text.data, *end = s + kiln_ksyms.text.len;
  while (s < end) {
    char *nl = memchr(s, '\n', (size_t)(end - s));
    if (nl == NULL) nl = end;
    /* "ffffffff81000000 T _stext\t[module]" */
    char *sp;
    uint64_t addr = strtoull(s, &sp, 16);
    if (sp + 3 < nl && sp[0] == ' ' && (sp[1] == 'T' || sp[1] == 't' || sp[1] == 'W' || sp[1] == 'w') &&
        sp[2] == ' ' && addr != 0) {
      char *name = sp + 3, *stop = name;
      while (stop < nl && *stop != '\t' && *stop != ' ') stop++;
      kiln_ksym_t k = {addr, (uint32_t)(name - kiln_ksyms.text.data), (uint32_t)(stop - name)};
      kiln_buf_put(&kiln_ksyms.syms, (const char *)&k, sizeof k);
    }
    s = nl + 1;
  }
  if (kiln_ksyms.syms.failed) return;
  kiln_ksyms.n = kiln_ksyms.syms.len / sizeof(kiln_ksym_t);
  kiln_sort(kiln_ksyms.syms.data, kiln_ksyms.n, sizeof(kiln_ksym_t), kiln_ksyms_cmp);
  kiln_ksyms.usable = kiln_ksyms.n > 0;
}

void kiln_ksyms_want(bool on) { kiln_ksyms.want = on; }

void kiln_ksyms_name(uint64_t pc, kiln_buf_t *out) {
  if (!kiln_ksyms.want) return; /* the frame is left out: "[kernel]" stays */
  if (!kiln_ksyms.loaded) kiln_ksyms_load();
  uint64_t addr = pc - 1;
  if (kiln_ksyms.usable) {
    const kiln_ksym_t *k = (const kiln_ksym_t *)kiln_ksyms.syms.data;
    size_t lo = 0, hi = kiln_ksyms.n;
    while (lo < hi) { /* the last symbol at or below addr */
      size_t mid = lo + (hi - lo) / 2;
      if (k[mid].addr <= addr) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) {
      kiln_buf_put(out, kiln_ksyms.text.data + k[lo - 1].name, k[lo - 1].len);
      kiln_buf_puts(out, "_[k]");
      return;
    }
  }
  kiln_buf_puts(out, "[kernel.kallsyms]_[k]");
}

void kiln_ksyms_end(void) {
  bool want = kiln_ksyms.want;
  kiln_buf_free(&kiln_ksyms.text);
  kiln_buf_free(&kiln_ksyms.syms);
  memset(&kiln_ksyms, 0, sizeof kiln_ksyms);
  kiln_ksyms.want = want;
}
