/* Unit test of kiln_symbols (with kiln_modules): functions of this program
 * and of libc named, addresses outside any symbol as module+0xOFF, outside
 * any module as [unknown]; and a library whose file on disk is replaced by
 * garbage after loading is still handled without a crash. */
#include "kiln_internal.h"
#include "kt.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <link.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void);

__attribute__((noinline)) int kt_target_function(int x) { return x * 3 + 1; }
__attribute__((noinline)) static int kt_static_function(int x) { return x ^ 0x55; }

static char name_buf[512];
static const char *name_of(uint64_t pc) {
  kiln_buf_t b = {0};
  kiln_symbols_name(pc, &b);
  size_t n = b.len < sizeof name_buf - 1 ? b.len : sizeof name_buf - 1;
  memcpy(name_buf, b.data, n);
  name_buf[n] = '\0';
  kiln_buf_free(&b);
  return name_buf;
}

static void symbols_program(void) {
  kiln_symbols_begin();
  /* pc is stored as "address + 1": the first byte of the function. */
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)&kt_target_function + 1), "kt_target_function") == 0);
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)&kt_static_function + 4), "kt_static_function") == 0);
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)&main + 1), "main") == 0);
  KT_CHECK(strcmp(name_of((uint64_t)(uintptr_t)&getpid + 1), "getpid") == 0);
  KT_CHECK(strcmp(name_of(0x10), "[unknown]") == 0);
  kiln_symbols_end();
}

static int find_base(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size;
  if (info->dlpi_name[0] == '\0') *(uintptr_t *)ctx = info->dlpi_addr;
  return 1; /* the program is listed first */
}

static void symbols_fallback_offset(void) {
  uintptr_t base = 0;
  dl_iterate_phdr(find_base, &base);
  kiln_symbols_begin();
  /* The ELF header: inside the module, inside no function. */
  KT_CHECK(strcmp(name_of((uint64_t)base + 0x11), "test_symbols+0x10") == 0);
  kiln_symbols_end();
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
  kiln_symbols_begin();
  KT_CHECK(strcmp(name_of(erf_addr + 1), "erf") == 0);
  kiln_symbols_end();
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
    kiln_symbols_begin();
    KT_CHECK(strncmp(name_of(erf_addr + 1), "libm-copy.so+0x", 15) == 0);
    kiln_symbols_end();
  }
  unlink(lib);
  mkdir(lib, 0755); /* a directory where the file was */
  kiln_symbols_begin();
  KT_CHECK(strncmp(name_of(erf_addr + 1), "libm-copy.so+0x", 15) == 0);
  kiln_symbols_end();
  rmdir(lib);
  rmdir(dir);
}

int main(void) {
  if (kiln_modules_init() < 0) return 1;
  KT_RUN(symbols_program);
  KT_RUN(symbols_fallback_offset);
  KT_RUN(symbols_hostile_file);
  return kt_failed_tests != 0;
}
