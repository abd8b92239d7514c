/* The signal path never calls malloc: the whole runtime, linked
 * statically, samples busy threads at 4000 Hz with the POSIX timer (the
 * perf timer has no handler at all) and each unwinder while this program's
 * own malloc family counts the calls made from inside the SIGPROF handler.
 * One thread exists before kiln_start (sampled from outside), two are
 * created after. Any such call fails the test. */
#include "kiln_internal.h"
#include "kiln.h"
#include "kt.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static _Atomic unsigned long in_handler_calls, all_calls;

static void note(void) {
  atomic_fetch_add(&all_calls, 1);
  if (kiln_sampler_in_handler()) atomic_fetch_add(&in_handler_calls, 1);
}
void *malloc(size_t n) { note(); return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { note(); return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { note(); return __libc_realloc(p, n); }
void free(void *p) { if (p) note(); __libc_free(p); }

static volatile int stop;
__attribute__((noinline)) static unsigned long descend(int depth, unsigned long x) {
  if (depth == 0) {
    for (int i = 0; i < 20000; i++) x = x * 6364136223846793005UL + 1;
    return x;
  }
  return descend(depth - 1, x + 1) ^ (unsigned long)depth;
}

static void *busy(void *arg) {
  unsigned long x = (unsigned long)(uintptr_t)arg;
  for (int d = 0; !stop; d = (d + 7) % 60) {
    x = descend(d, x);
    free(malloc(16)); /* the program's own calls are fine */
  }
  return (void *)(uintptr_t)x;
}

static void run(int unwind) {
  kiln_options_t o;
  memset(&o, 0, sizeof o);
  o.hz = 4000;
  o.unwind = unwind;
  o.quiet = 1;
  o.out_dir = "/tmp";
  atomic_store(&in_handler_calls, 0);
  stop = 0;
  pthread_t early;
  pthread_create(&early, NULL, busy, (void *)3);
  KT_CHECK(kiln_start(&o) == 0);
  pthread_t a, b;
  pthread_create(&a, NULL, busy, (void *)1);
  pthread_create(&b, NULL, busy, (void *)2);
  /* Until the handler has run 1000 times (the POSIX timer ticks at most
   * CONFIG_HZ a thread), or 20 s on a machine that is very busy. */
  kiln_thread_totals_t now;
  for (int i = 0; i < 200; i++) {
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
    kiln_threads_totals(&now);
    if (now.samples >= 1000) break;
  }
  stop = 1;
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  pthread_join(early, NULL);
  kiln_thread_totals_t tot;
  kiln_threads_totals(&tot);
  kiln_stop();
  KT_CHECK(tot.samples >= 1000);
  KT_CHECK(atomic_load(&all_calls) > 0);
  KT_CHECK(atomic_load(&in_handler_calls) == 0);
  printf("# %s: %llu samples, %lu malloc-family calls in the handler\n",
         unwind == KILN_UNWIND_WITH_FP ? "fp" : "libunwind", (unsigned long long)tot.samples,
         atomic_load(&in_handler_calls));
}

static void nomalloc_libunwind(void) { run(KILN_UNWIND_WITH_LIBUNWIND); }
static void nomalloc_fp(void) { run(KILN_UNWIND_WITH_FP); }

int main(void) {
  setenv("KILN_TIMER", "posix", 1);
  KT_RUN(nomalloc_fp);
  KT_RUN(nomalloc_libunwind);
  return kt_failed_tests != 0;
}
