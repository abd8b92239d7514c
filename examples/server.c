/* server — a long-running, server-like program: two workers with
 * allocation churn and CPU work (handle_request, of which parse_headers
 * takes a third), a reader blocked in read(2) on a pipe that a ticker
 * thread feeds every 20 ms. Runs SECONDS (default 3) then prints what it
 * did; EINTR from read or nanosleep counted (must stay 0 under kiln).
 * Usage: server [SECONDS] */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline, noipa))
static _Atomic int stop;
static _Atomic long requests, eintr, messages;
static int pipefd[2];

NOINLINE static unsigned long parse_headers(const char *buf, size_t n) {
  unsigned long h = 5381;
  for (int r = 0; r < 40; r++)
    for (size_t i = 0; i < n; i++) h = h * 33 + (unsigned char)buf[i];
  return h;
}

NOINLINE static unsigned long build_response(unsigned long seed) {
  char *body = malloc(256 + seed % 3840);
  memset(body, 'x', 256);
  unsigned long h = seed;
  for (int r = 0; r < 80; r++)
    for (int i = 0; i < 256; i++) h = h * 31 + (unsigned char)body[i];
  free(body);
  return h;
}

NOINLINE static void handle_request(unsigned long seed) {
  char *req = malloc(512);
  snprintf(req, 512, "GET /item/%lu HTTP/1.1\r\nHost: example\r\n\r\n", seed);
  unsigned long h = parse_headers(req, strlen(req));
  h ^= build_response(h);
  free(req);
  if (h == 42) puts("unlikely");
}

static void *worker(void *arg) {
  unsigned long seed = (unsigned long)(size_t)arg;
  while (!atomic_load(&stop)) {
    handle_request(seed++);
    atomic_fetch_add(&requests, 1);
  }
  return NULL;
}

static void *reader(void *arg) {
  (void)arg;
  char c;
  for (;;) {
    ssize_t n = read(pipefd[0], &c, 1);
    if (n < 0 && errno == EINTR) { atomic_fetch_add(&eintr, 1); continue; }
    if (n <= 0 || c == 'q') break;
    atomic_fetch_add(&messages, 1);
  }
  return NULL;
}

static void *ticker(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    struct timespec ts = {0, 20000000};
    if (nanosleep(&ts, NULL) < 0 && errno == EINTR) atomic_fetch_add(&eintr, 1);
    if (write(pipefd[1], "m", 1) != 1) break;
  }
  return write(pipefd[1], "q", 1) == 1 ? NULL : NULL;
}

int main(int argc, char **argv) {
  int seconds = argc > 1 ? atoi(argv[1]) : 3;
  if (pipe(pipefd) < 0) return 1;
  pthread_t w1, w2, r, t;
  pthread_create(&w1, NULL, worker, (void *)1);
  pthread_create(&w2, NULL, worker, (void *)1000000);
  pthread_create(&r, NULL, reader, NULL);
  pthread_create(&t, NULL, ticker, NULL);
  for (int i = 0; i < seconds * 10; i++) {
    struct timespec ts = {0, 100000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) atomic_fetch_add(&eintr, 1);
  }
  atomic_store(&stop, 1);
  pthread_join(w1, NULL);
  pthread_join(w2, NULL);
  pthread_join(t, NULL);
  pthread_join(r, NULL);
  printf("server: ran %d s, requests %s, messages %s, eintr %ld\n", seconds,
         atomic_load(&requests) > 0 ? "yes" : "no", atomic_load(&messages) > 0 ? "yes" : "no", atomic_load(&eintr));
  return 0;
}
