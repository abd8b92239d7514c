/* plugin — dlopen a plugin, spend CPU in it, dlclose it, then spend CPU in
 * the program: the plugin's samples must still be named after dlclose. */
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

static volatile unsigned long sink;

__attribute__((noinline, noipa)) static void main_spin(unsigned long n) {
  unsigned long x = sink;
  for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + 1;
  sink = x;
}

int main(void) {
  char self[PATH_MAX], path[PATH_MAX + 32];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n < 0) return 1;
  self[n] = '\0';
  snprintf(path, sizeof path, "%s/plugin_work.so", dirname(self));
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL) {
    fprintf(stderr, "plugin: %s\n", dlerror());
    return 1;
  }
  unsigned long (*spin)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(h, "plugin_spin");
  spin(300000000UL);
  dlclose(h);
  main_spin(150000000UL);
  printf("plugin: done\n");
  return 0;
}
