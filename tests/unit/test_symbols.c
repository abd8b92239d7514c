/* Unit test of kiln_symbols (with kiln_modules and kiln_ehframe): functions
 * of this program and of libc named, addresses outside any symbol as
 * module+0xOFF, outside any module as [unknown]; a library whose file on
 * disk is replaced by garbage after loading is still handled without a
 * crash; function bounds from .eh_frame_hdr; perf-map names for JIT code;
 * kernel names from kallsyms; two threads symbolizing at once. */
#include "kiln_internal.h"
#include "kt.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <link.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void);

__attribute__((noinline)) int kt_target_function(int x) { return x * 3 + 1; }
__attribute__((noinline)) static int kt_static_function(int x) { return x ^ 0x55; }

static kiln_symbols_t *sy;
static char name_buf[512];
static const char *name_of(uint64_t pc) {
  kiln_buf_t b = {0};
  kiln_symbols_name(sy, pc, &b);
  size_t n = b.len < sizeof name_buf - 1 ? b.len : sizeof name_buf - 1;
  memcpy(name_buf, b.data, n);
  name_buf[n] = '\0';
  kiln_buf_free(&b);
  return name_buf;
}

static void symbols_program(void) {
  sy = kiln_symbols_open();
  /* pc is stored as "address + 1": the first byte of the function. */
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)&kt_target_function + 1), "kt_target_function") == 0);
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)&kt_static_function + 4), "kt_static_function") == 0);
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)&main + 1), "main") == 0);
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)&getpid + 1), "getpid") == 0);
  KT_CHECK(strcmp(name_of(0x10), "[unknown]") == 0);
  /* Wall mode's wait markers: the system call by its number here. */
  KT_CHECK(strcmp(name_of(KILN_PC_WAIT + SYS_futex), "[wait: futex]") == 0);
  KT_CHECK(strcmp(name_of(KILN_PC_WAIT + SYS_epoll_wait), "[wait: epoll_wait]") == 0);
  KT_CHECK(strcmp(name_of(KILN_PC_WAIT + SYS_read), "[wait: read]") == 0);
  KT_CHECK(strcmp(name_of(KILN_PC_WAIT_CPU), "[wait: cpu]") == 0);
  KT_CHECK(strcmp(name_of(KILN_PC_WAIT_KERNEL), "[wait: kernel]") == 0);
  KT_CHECK(strcmp(name_of(KILN_PC_WAIT + 0x5ff), "[wait: syscall 1535]") == 0);
  kiln_symbols_close(sy);
}

static int find_base(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size;
  if (info->dlpi_name[0] == '\0') *(uintptr_t *)ctx = info->dlpi_addr;
  return 1; /* the program is listed first */
}

static void symbols_fallback_offset(void) {
  uintptr_t base = 0;
  dl_iterate_phdr(find_base, &base);
  sy = kiln_symbols_open();
  /* The ELF header: inside the module, inside no function. */
  KT_CHECK(strcmp(name_of((uint64_t)base + 0x11), "test_symbols+0x10") == 0);
  kiln_symbols_close(sy);
}

static void symbols_hostile_file(void) {
  char dir[] = "/tmp/kiln-sym-XXXXXX", lib[256];
  KT_CHECK(mkdtemp(dir) != NULL);
  snprintf(lib, sizeof lib, "%s/libm-copy.so", dir);
  int in = open("/lib/x86_64-linux-gnu/libm.so.6", O_RDONLY), out = open(lib, O_WRONLY | O_CREAT, 0755);
  char buf[65536];
  ssize_t n;
  while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0) KT_CHECK(write(out, buf, (size_t)n) == n);
  close(in);
  close(out);
  void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
  KT_CHECK(h != NULL);
  if (h == NULL) return;
  uintptr_t erf_addr = (uintptr_t)dlsym(h, "erf");
  kiln_modules_refresh();
  sy = kiln_symbols_open();
  KT_CHECK(strcmp(name_of(erf_addr + 1), "erf") == 0);
  kiln_symbols_close(sy);
  /* Replace the file (a new inode: the loaded mapping stays valid). */
  static const struct { const char *bytes; size_t len; } junk[] = {
      {"", 0},
      {"\x7f" "ELF", 4},
      {"\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0\x3e\0\x01\0\0\0\0\0\0\0\0\0\0\0"
       "\0\0\0\0\0\0\0\0\xff\xff\xff\xff\0\0\0\0\0\0\0\0\x40\0\x38\0\x01\0\x40\0\xff\xff\xfe\xff", 64},
      {"garbage garbage garbage garbage garbage garbage garbage garbage", 64},
  };
  for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
    unlink(lib);
    int fd = open(lib, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    KT_CHECK(fd >= 0 && write(fd, junk[i].bytes, junk[i].len) == (ssize_t)junk[i].len);
    close(fd);
    sy = kiln_symbols_open();
    KT_CHECK(strncmp(name_of(erf_addr + 1), "libm-copy.so+0x", 15) == 0);
    kiln_symbols_close(sy);
  }
  unlink(lib);
  mkdir(lib, 0755); /* a directory where the file was */
  sy = kiln_symbols_open();
  KT_CHECK(strncmp(name_of(erf_addr + 1), "libm-copy.so+0x", 15) == 0);
  kiln_symbols_close(sy);
  rmdir(lib);
  rmdir(dir);
}

/* .eh_frame_hdr of this program's own file: the FDE holding an address
 * inside kt_static_function starts at it. */
static void symbols_ehframe(void) {
  uintptr_t base = 0;
  dl_iterate_phdr(find_base, &base);
  int fd = open("/proc/self/exe", O_RDONLY);
  struct stat st;
  KT_CHECK(fd >= 0 && fstat(fd, &st) == 0);
  char *img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  KT_CHECK(img != MAP_FAILED);
  kiln_ehframe_t eh;
  KT_CHECK(kiln_ehframe_open(&eh, img, (size_t)st.st_size) == 0);
  uint64_t fn = (uint64_t)(uintptr_t)&kt_static_function - base, start = 0, end = 0;
  KT_CHECK(kiln_ehframe_find(&eh, fn + 2, &start, &end) && start == fn && end > fn + 2);
  KT_CHECK(!kiln_ehframe_find(&eh, 0x10, &start, &end)); /* the ELF header */
  /* Truncated images: no table, no crash. */
  for (size_t len = 0; len < 4096; len += 61) kiln_ehframe_open(&eh, img, len);
  munmap(img, (size_t)st.st_size);
}

/* A JIT's perf map names code outside every module. */
static void symbols_perfmap(void) {
  char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  KT_CHECK(page != MAP_FAILED);
  char path[64];
  snprintf(path, sizeof path, "/tmp/perf-%d.map", (int)getpid());
  FILE *f = fopen(path, "w");
  KT_CHECK(f != NULL);
  fprintf(f, "%lx 40 JIT:unit fn;semi\nnot a line\n%lx 10 other\n", (unsigned long)(uintptr_t)page,
          (unsigned long)(uintptr_t)page + 0x100);
  fclose(f);
  sy = kiln_symbols_open();
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)page + 0x11), "JIT:unit fn:semi") == 0);
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)page + 0x105), "other") == 0);
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)page + 0x81), "[unknown]") == 0); /* past its size */
  kiln_symbols_close(sy);
  unlink(path);
  munmap(page, 4096);
}

/* Kernel addresses: named from kallsyms when it shows addresses. */
static void symbols_kernel(void) {
  FILE *f = fopen("/proc/kallsyms", "r");
  /* A text symbol alone at its address (aliases pick one name), with a
   * symbol after it (the last one has no end). */
  unsigned long long addr = 0, prev_addr = 1, a;
  char type, t, name[256] = "", n[256], prev_name[256] = "";
  int prev_text = 0, alone = 0;
  while (f != NULL && fscanf(f, "%llx %c %255s%*[^\n]", &a, &t, n) == 3) {
    if (prev_text && a != prev_addr && alone && prev_addr != 0) {
      addr = prev_addr;
      snprintf(name, sizeof name, "%s", prev_name);
      break;
    }
    alone = a != prev_addr;
    prev_addr = a;
    prev_text = t == 'T' || t == 't';
    snprintf(prev_name, sizeof prev_name, "%s", n);
  }
  (void)type;
  if (f) fclose(f);
  sy = kiln_symbols_open();
  kiln_buf_t b = {0};
  int rc = kiln_symbols_kernel(sy, 0xffffffff00000000ull, &b);
  KT_CHECK(rc == -ENOENT || rc == 0);
  if (addr != 0) {
    b.len = 0;
    KT_CHECK(kiln_symbols_kernel(sy, addr, &b) == 0);
    char want[300];
    snprintf(want, sizeof want, "%s_[k]", name);
    KT_CHECK(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0);
  } else {
    fprintf(stderr, "(kallsyms hides addresses here: only the unknown case checked)\n");
  }
  kiln_buf_free(&b);
  kiln_symbols_close(sy);
}

/* Two threads, each with its own symbolizer, many times over (300, or
 * KT_SYMBOLS_ROUNDS: fewer under ThreadSanitizer, where one costs ~0.2 s). */
static void *symbols_thread(void *arg) {
  long bad = 0;
  const char *env = getenv("KT_SYMBOLS_ROUNDS");
  int rounds = env != NULL && atoi(env) > 0 ? atoi(env) : 300;
  for (int i = 0; i < rounds; i++) {
    kiln_symbols_t *own = kiln_symbols_open();
    kiln_buf_t b = {0};
    kiln_symbols_name(own, (uint64_t)(uintptr_t)&kt_target_function + 1, &b);
    if (b.len != 18 || memcmp(b.data, "kt_target_function", 18) != 0) bad++;
    b.len = 0;
    kiln_symbols_name(own, (uint64_t)(uintptr_t)&getpid + 1, &b);
    if (b.len != 6 || memcmp(b.data, "getpid", 6) != 0) bad++;
    kiln_buf_free(&b);
    kiln_symbols_close(own);
  }
  *(long *)arg = bad;
  return NULL;
}

static void symbols_concurrent(void) {
  pthread_t t[2];
  long bad[2] = {1, 1};
  for (int i = 0; i < 2; i++) KT_CHECK(pthread_create(&t[i], NULL, symbols_thread, &bad[i]) == 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  KT_CHECK(bad[0] == 0 && bad[1] == 0);
}

int main(void) {
  if (kiln_modules_init() < 0) return 1;
  KT_RUN(symbols_program);
  KT_RUN(symbols_fallback_offset);
  KT_RUN(symbols_hostile_file);
  KT_RUN(symbols_ehframe);
  KT_RUN(symbols_perfmap);
  KT_RUN(symbols_kernel);
  KT_RUN(symbols_concurrent);
  return kt_failed_tests != 0;
}
