/* no_cfi — allocations below a function that has no unwind tables but
 * keeps the frame-pointer chain, as V8's builtins in node do (and
 * hand-written assembly often does): main -> run -> nocfi_call ->
 * leaf_alloc -> malloc, N times, each block freed but the last (4096
 * bytes, leaked). With "jit", nocfi_call runs from a copy in anonymous
 * executable memory, as a JIT's code does; LIB is dlopen'd half way.
 * Prints one line; exits 0. Usage: no_cfi [N [jit|file [LIB]]] */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* nocfi_call(fn, n) returns fn(n); written in assembly without any .cfi
 * directive, so no unwind table describes it. It has locals, as V8's
 * frames do: its rsp at the call is below its rbp. */
void *nocfi_call(void *(*fn)(size_t), size_t n);
extern const char nocfi_call_end[];
__asm__(".pushsection .text\n"
        ".globl nocfi_call\n"
        ".type nocfi_call, @function\n"
        "nocfi_call:\n"
        "  push %rbp\n"
        "  mov %rsp, %rbp\n"
        "  sub $32, %rsp\n" /* locals: rsp is not rbp at the call */
        "  mov %rdi, %rax\n"
        "  mov %rsi, %rdi\n"
        "  call *%rax\n"
        "  leave\n"
        "  ret\n"
        ".globl nocfi_call_end\n"
        "nocfi_call_end:\n"
        ".size nocfi_call, . - nocfi_call\n"
        ".popsection\n");

__attribute__((noipa)) static void *leaf_alloc(size_t n) {
  char *p = malloc(n);
  if (p != NULL) memset(p, 1, n);
  return p;
}

static void *leaked;
static void *(*call)(void *(*)(size_t), size_t) = nocfi_call;
static const char *lib; /* dlopen'd half way */

__attribute__((noipa)) static unsigned long run(unsigned long n) {
  unsigned long sum = 0;
  for (unsigned long i = 0; i + 1 < n; i++) {
    if (lib != NULL && i == n / 2 && dlopen(lib, RTLD_NOW) == NULL) return 0;
    unsigned char *p = call(leaf_alloc, 16 + i % 64);
    if (p == NULL) return 0;
    sum += p[0];
    free(p);
  }
  leaked = call(leaf_alloc, 4096);
  leaked = NULL; /* lost: definitely leaked at exit */
  __asm__ volatile("" ::: "memory");
  return sum + 1;
}

int main(int argc, char **argv) {
  unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
  if (n == 0) return 2;
  if (argc > 2 && strcmp(argv[2], "jit") == 0) {
    size_t len = (size_t)(nocfi_call_end - (const char *)nocfi_call);
    char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) return 1;
    memcpy(code, (const void *)nocfi_call, len); /* position-independent */
    if (mprotect(code, 4096, PROT_READ | PROT_EXEC) != 0) return 1;
    call = (void *(*)(void *(*)(size_t), size_t))(void *)code;
  }
  if (argc > 3) lib = argv[3];
  printf("no_cfi: %lu\n", run(n));
  return 0;
}
