/* leak_scopes — leak scopes (kiln_leak_begin/end) on what trips them:
 * a thread created and joined inside a scope (glibc's TLS vector for it is
 * glibc's, not a leak), three leaks from one call site in a loop (one
 * site, 3 blocks), a leak made by a thread the scope created (its stack
 * starts at the thread's function, no kiln frame); and a budget over two
 * threads' creation, whose report shows glibc's allocations in
 * pthread_create with no frame of kiln's wrapper. Prints each report and
 * "NAME: blocks N sites M bytes B" per scope. */
#include <kiln.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static void *(*volatile make)(size_t) = malloc;
static void *volatile sink;

static void *idle(void *arg) { return arg; }

__attribute__((noinline)) static void *leaky_worker(void *arg) {
  make(48); /* lost */
  return arg;
}

__attribute__((noinline)) static void lose_three(void) {
  for (int i = 0; i < 3; i++) make(16);
}

static void report(const char *what, kiln_leak_scope_t scope) {
  kiln_leak_report_t r;
  int n = kiln_leak_end(scope, &r);
  printf("%s: blocks %d sites %zu bytes %zu\n", what, n, r.nsites, r.bytes);
  kiln_leak_report_print(&r, stdout);
  kiln_leak_report_free(&r);
}

int main(void) {
  kiln_leak_scope_t s = kiln_leak_begin();
  pthread_t t;
  pthread_create(&t, NULL, idle, NULL);
  pthread_join(t, NULL);
  report("thread", s);

  s = kiln_leak_begin();
  lose_three();
  report("loop", s);

  s = kiln_leak_begin();
  pthread_create(&t, NULL, leaky_worker, NULL);
  pthread_join(t, NULL);
  report("worker", s);

  kiln_budget_t b = kiln_budget_begin();
  pthread_t two[2];
  for (int i = 0; i < 2; i++) pthread_create(&two[i], NULL, idle, NULL);
  for (int i = 0; i < 2; i++) pthread_join(two[i], NULL);
  printf("budget: over %d\n", kiln_budget_end(&b, 0, 1, NULL, stdout));
  (void)sink;
  return 0;
}
