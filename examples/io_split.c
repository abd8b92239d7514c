/* io_split — half computation, half reading a file that is in the page
 * cache (kernel time: copying to user space), in one thread. A CPU
 * profile that counts kernel time gives each about half, the reads under
 * read_chunks; one that counts user time only shows mostly compute. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void compute(double seconds) {
  double end = now() + seconds;
  unsigned long x = sink;
  while (now() < end)
    for (int i = 0; i < 20000; i++) x = x * 6364136223846793005UL + 1;
  sink = x;
}

__attribute__((noinline)) static void read_chunks(int fd, char *buf, size_t len, double seconds) {
  double end = now() + seconds;
  while (now() < end)
    for (int i = 0; i < 16; i++)
      if (pread(fd, buf, len, 0) < 0) return;
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  char path[] = "/tmp/kiln-io-split.XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 1;
  unlink(path);
  size_t len = 1 << 20;
  char *buf = malloc(len);
  memset(buf, 7, len);
  if (write(fd, buf, len) != (ssize_t)len) return 1;
  for (int round = 0; round < 10; round++) {
    compute(seconds / 20);
    read_chunks(fd, buf, len, seconds / 20);
  }
  close(fd);
  free(buf);
  printf("io_split: done\n");
  return 0;
}
