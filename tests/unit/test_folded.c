/* Unit test of kiln_folded and kiln_out: stacks render root first, named,
 * merged when their names agree, sorted, with the marker frames; zero
 * counts are left out; the stacks file has the module map, a frame line
 * per pc and the unmerged stacks of each kind; files are written whole and
 * a planted symlink is replaced, never followed. */
#include "kiln_internal.h"
#include "kt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

__attribute__((noinline)) int f_root(int x) { return x + 1; }
__attribute__((noinline)) int f_mid(int x) { return x + 2; }
__attribute__((noinline)) int f_leaf(int x) { return x * 3 + 7; }

#define pc(fn, off) ((uint64_t)(uintptr_t)&(fn) + 1 + (uint64_t)(off))

static void folded_render(void) {
  uint64_t s1[3] = {pc(f_leaf, 0), pc(f_mid, 0), pc(f_root, 0)};
  uint64_t s2[3] = {pc(f_leaf, 3), pc(f_mid, 0), pc(f_root, 0)}; /* same names */
  uint64_t s3[1] = {pc(f_mid, 1)};
  uint64_t s4[1] = {pc(f_leaf, 1)};
  uint64_t s5[2] = {pc(f_mid, 2), pc(f_root, 2)};
  kiln_stacktab_add(kiln_stacktab_get(kiln_stacktab_intern(s1, 3, 0)), KILN_COUNT_CPU, 3);
  kiln_stacktab_add(kiln_stacktab_get(kiln_stacktab_intern(s2, 3, 0)), KILN_COUNT_CPU, 2);
  kiln_stacktab_add(kiln_stacktab_get(kiln_stacktab_intern(s3, 1, KILN_STACK_TRUNCATED)), KILN_COUNT_CPU, 1);
  kiln_stacktab_add(kiln_stacktab_get(kiln_stacktab_intern(s4, 1, KILN_STACK_SKIPPED)), KILN_COUNT_CPU, 4);
  kiln_stacktab_intern(s5, 2, 0); /* never counted: not written */
  kiln_buf_t out = {0};
  uint64_t total = 0;
  kiln_count_kind_t kind = KILN_COUNT_CPU;
  static const char *const kind_name = "cpu";
  kiln_folded_render(&kind, &kind_name, 1, &out, &total, NULL);
  size_t lines = 0;
  for (size_t i = 0; i < out.len; i++) lines += out.data[i] == '\n';
  const char *want = "[kiln: truncated];f_mid 1\n"
                     "[kiln: unwind skipped];f_leaf 4\n"
                     "f_root;f_mid;f_leaf 5\n";
  KT_CHECK(lines == 3 && total == 10);
  KT_CHECK(out.len == strlen(want) && memcmp(out.data, want, out.len) == 0);
  if (out.len != strlen(want)) fprintf(stderr, "got:\n%.*s", (int)out.len, out.data);
  kiln_buf_free(&out);

  /* Again with the stacks file: same folded bytes, and the stacks. */
  kiln_buf_t out2 = {0}, st = {0};
  kiln_folded_render(&kind, &kind_name, 1, &out2, &total, &st);
  KT_CHECK(out2.len == strlen(want) && memcmp(out2.data, want, out2.len) == 0);
  kiln_buf_put(&st, "", 1);
  const char *t = st.data;
  KT_CHECK(t != NULL && strncmp(t, "kiln-stacks\t1\nmodule\t1\t", 22) == 0);
  KT_CHECK(strstr(t, "\t-\tf_leaf\n") != NULL && strstr(t, "\t-\tf_root\n") != NULL);
  KT_CHECK(strstr(t, "frame\t2\t0\t0\t-\t[kiln: truncated]\n") != NULL);
  const char *k = strstr(t, "kind\tcpu\t10\n");
  KT_CHECK(k != NULL);
  /* Four stacks (s1 and s2 not merged: their pcs differ), counts adding to 10. */
  unsigned long sum = 0, nstacks = 0;
  for (const char *l = k ? strchr(k, '\n') + 1 : ""; *l; l = strchr(l, '\n') + 1) {
    sum += strtoul(l, NULL, 10);
    nstacks++;
  }
  KT_CHECK(nstacks == 4 && sum == 10);
  /* The truncated stack: marker first, then f_mid's frame. */
  KT_CHECK(k != NULL && strstr(k, "\t2 ") != NULL);
  kiln_buf_free(&out2);
  kiln_buf_free(&st);
}

static void out_write_whole(void) {
  char dir[] = "/tmp/kiln-out-XXXXXX", path[512], sub[256];
  KT_CHECK(mkdtemp(dir) != NULL);
  snprintf(sub, sizeof sub, "%s/a/b", dir);
  KT_CHECK(kiln_out_mkdirs(sub, false) == 0);
  KT_CHECK(kiln_out_write_file(sub, "p.1.cpu.folded", "main 1\n", 7, false) == 0);
  snprintf(path, sizeof path, "%s/p.1.cpu.folded", sub);
  char buf[32] = {0};
  int fd = open(path, O_RDONLY);
  KT_CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 7 && strcmp(buf, "main 1\n") == 0);
  close(fd);
  /* A symlink at the final name is replaced, its target untouched. */
  char victim[256];
  snprintf(victim, sizeof victim, "%s/victim", dir);
  fd = open(victim, O_WRONLY | O_CREAT, 0644);
  KT_CHECK(write(fd, "keep", 4) == 4);
  close(fd);
  unlink(path);
  KT_CHECK(symlink(victim, path) == 0);
  KT_CHECK(kiln_out_write_file(sub, "p.1.cpu.folded", "main 2\n", 7, false) == 0);
  struct stat st;
  KT_CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
  KT_CHECK(stat(victim, &st) == 0 && st.st_size == 4);
  /* Not a directory: an error, nothing created. */
  KT_CHECK(kiln_out_mkdirs(victim, false) == -ENOTDIR);
  KT_CHECK(kiln_out_write_file(victim, "x", "y", 1, false) < 0);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  KT_CHECK(system(cmd) == 0);
}

int main(void) {
  if (kiln_modules_init() < 0 || kiln_stacktab_init(1024) < 0) return 1;
  KT_RUN(folded_render);
  KT_RUN(out_write_whole);
  return kt_failed_tests != 0;
}
