/* loader_busy — spends its CPU inside the dynamic loader's critical
 * sections: callbacks of dl_iterate_phdr that do real work, and a loop of
 * dlopen/dlclose of the plugin. A profiler that unwinds there can deadlock
 * or crash; under kiln those samples keep their leaf and are marked. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline, noipa)) static int count_segments(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size;
  unsigned long x = sink;
  for (int i = 0; i < 20000; i++) x = x * 6364136223846793005UL + (unsigned long)info->dlpi_phnum;
  sink = x;
  *(int *)ctx += info->dlpi_phnum;
  return 0;
}

int main(void) {
  char self[PATH_MAX], path[PATH_MAX + 32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) return 1;
  self[n] = '\0';
  snprintf(path, sizeof path, "%s/plugin_work.so", dirname(self));
  long total = 0;
  for (int round = 0; round < 3000; round++) {
    int segs = 0;
    dl_iterate_phdr(count_segments, &segs);
    total += segs > 0;
    if (round % 10 == 0) {
      void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
      if (h == NULL) return 1;
      dlclose(h);
    }
  }
  printf("loader_busy: %ld rounds\n", total);
  return 0;
}
