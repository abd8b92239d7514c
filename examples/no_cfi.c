/* no_cfi — allocations below a function that has no unwind tables but
 * keeps the frame-pointer chain, as V8's builtins in node do (and
 * hand-written assembly often does): main -> run -> nocfi_call ->
 * leaf_alloc -> malloc, N times, each block freed but the last (4096
 * bytes, leaked). Prints one line; exits 0. Usage: no_cfi [N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* nocfi_call(fn, n) returns fn(n); written in assembly without any .cfi
 * directive, so no unwind table describes it. It has locals, as V8's
 * frames do: its rsp at the call is below its rbp. */
void *nocfi_call(void *(*fn)(size_t), size_t n);
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
        ".size nocfi_call, . - nocfi_call\n"
        ".popsection\n");

__attribute__((noipa)) static void *leaf_alloc(size_t n) {
  char *p = malloc(n);
  if (p != NULL) memset(p, 1, n);
  return p;
}

static void *leaked;

__attribute__((noipa)) static unsigned long run(unsigned long n) {
  unsigned long sum = 0;
  for (unsigned long i = 0; i + 1 < n; i++) {
    unsigned char *p = nocfi_call(leaf_alloc, 16 + i % 64);
    if (p == NULL) return 0;
    sum += p[0];
    free(p);
  }
  leaked = nocfi_call(leaf_alloc, 4096);
  leaked = NULL; /* lost: definitely leaked at exit */
  __asm__ volatile("" ::: "memory");
  return sum + 1;
}

int main(int argc, char **argv) {
  unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
  if (n == 0) return 2;
  printf("no_cfi: %lu\n", run(n));
  return 0;
}
