/* kiln_preload.c — the LD_PRELOAD face: starts the runtime from the KILN_*
 * environment when the library was preloaded (not when a program links it
 * to control profiling from code) and writes the profiles when the program
 * exits. Holds no logic of its own. Runs in the loader's constructor and
 * destructor context: the main thread before main, or the thread that
 * calls exit. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Preloaded, or linked? Preloaded when LD_PRELOAD (or /etc/ld.so.preload)
 * names this file: by a path to the same file (any name: a copy renamed
 * kiln-1.0.so too), or by its file name alone (the loader then searched
 * for it). A program that links the library is named by neither. */
static bool kiln_preload_names_me(const char *list, size_t n, const char *self, const struct stat *st) {
  const char *base = strrchr(self, '/');
  base = base ? base + 1 : self;
  size_t i = 0;
  while (i < n) {
    while (i < n && (list[i] == ' ' || list[i] == ':' || list[i] == '\t' || list[i] == '\n')) i++;
    size_t start = i;
    while (i < n && list[i] != ' ' && list[i] != ':' && list[i] != '\t' && list[i] != '\n') i++;
    size_t len = i - start;
    if (len == 0 || len >= PATH_MAX) continue;
    char entry[PATH_MAX];
    memcpy(entry, list + start, len);
    entry[len] = '\0';
    struct stat e;
    if (strchr(entry, '/') == NULL ? strcmp(entry, base) == 0
                                   : st != NULL && stat(entry, &e) == 0 && e.st_dev == st->st_dev &&
                                         e.st_ino == st->st_ino)
      return true;
  }
  return false;
}

static const char kiln_preload_here; /* an address inside this module, for dladdr */

static bool kiln_preload_is_preloaded(void) {
  Dl_info di;
  const char *env = getenv("LD_PRELOAD");
  if (dladdr(&kiln_preload_here, &di) == 0 || di.dli_fname == NULL || di.dli_fname[0] == '\0')
    return env != NULL && strstr(env, "libkiln") != NULL; /* not known: the usual name */
  struct stat st;
  const struct stat *stp = stat(di.dli_fname, &st) == 0 ? &st : NULL;
  if (env != NULL && kiln_preload_names_me(env, strlen(env), di.dli_fname, stp)) return true;
  char buf[4096];
  int fd = open("/etc/ld.so.preload", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return n > 0 && kiln_preload_names_me(buf, (size_t)n, di.dli_fname, stp);
}

__attribute__((constructor)) static void kiln_preload_init(void) {
  kiln_libc_resolve();
  if (kiln_preload_is_preloaded()) kiln_profiler_start_env();
}

/* A preloaded library is finalised after the program and the libraries
 * that were loaded after it, so every sample is in by now. */
__attribute__((destructor)) static void kiln_preload_fini(void) { kiln_profiler_at_exit(); }
