/* count_calls.so — preloaded after libkiln.so, so that kiln's calls of
 * these functions (and, through kiln_libc, every malloc of the process)
 * come here first (not dlsym: RTLD_NEXT depends on its caller). Once the program calls count_arm(), each call writes
 * of that thread writes one "count-calls: NAME" line to stderr with write(2), then forwards.
 * The emergency-dump test arms it just before the program ends. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int armed;
static volatile pid_t armed_tid;
/* Counts the calls of the calling thread (the one that will end the
 * process), not the collector's routine work meanwhile. */
void count_arm(void) {
  armed_tid = gettid();
  armed = 1;
}

static void note(const char *name) {
  if (!armed || gettid() != armed_tid) return;
  char line[96] = "count-calls: ";
  size_t n = strlen(line), k = strlen(name);
  memcpy(line + n, name, k);
  line[n + k] = '\n';
  if (write(2, line, n + k + 1) < 0) armed = 0;
}

extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t), *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
void *malloc(size_t n) { note("malloc"); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { note("calloc"); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { note("realloc"); return __libc_realloc(p, n); }
void free(void *p) { if (p) note("free"); __libc_free(p); }

static int (*real_vsnprintf)(char *, size_t, const char *, va_list);
static char *(*real_strerror)(int);
static struct tm *(*real_gmtime_r)(const time_t *, struct tm *);
static int (*real_dladdr)(const void *, Dl_info *);
static int (*real_dl_iterate_phdr)(int (*)(struct dl_phdr_info *, size_t, void *), void *);
static int (*real_mutex_lock)(pthread_mutex_t *);

__attribute__((constructor)) static void count_init(void) {
  *(void **)&real_vsnprintf = dlsym(RTLD_NEXT, "vsnprintf");
  *(void **)&real_strerror = dlsym(RTLD_NEXT, "strerror");
  *(void **)&real_gmtime_r = dlsym(RTLD_NEXT, "gmtime_r");
  *(void **)&real_dladdr = dlsym(RTLD_NEXT, "dladdr");
  *(void **)&real_dl_iterate_phdr = dlsym(RTLD_NEXT, "dl_iterate_phdr");
  *(void **)&real_mutex_lock = dlsym(RTLD_NEXT, "pthread_mutex_lock");
}

int vsnprintf(char *s, size_t n, const char *f, va_list ap) { note("vsnprintf"); return real_vsnprintf(s, n, f, ap); }
int snprintf(char *s, size_t n, const char *f, ...) {
  note("snprintf");
  va_list ap;
  va_start(ap, f);
  int r = real_vsnprintf(s, n, f, ap);
  va_end(ap);
  return r;
}
char *strerror(int e) { note("strerror"); return real_strerror(e); }
struct tm *gmtime_r(const time_t *t, struct tm *tm) { note("gmtime_r"); return real_gmtime_r(t, tm); }
int dladdr(const void *a, Dl_info *i) { note("dladdr"); return real_dladdr(a, i); }
int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *d) {
  note("dl_iterate_phdr");
  return real_dl_iterate_phdr(cb, d);
}
int pthread_mutex_lock(pthread_mutex_t *m) { note("pthread_mutex_lock"); return real_mutex_lock(m); }
