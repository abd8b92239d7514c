/* kiln_syscalls.c — the names of this machine's system calls by number,
 * for wall mode's "[wait: NAME]" frames. The table is generated at build
 * time from the C library's <sys/syscall.h> (the __NR_* constants), so it
 * follows the architecture and the headers kiln is built against. Any
 * context: a constant table. */
#include "kiln_internal.h"

static const char *const kiln_syscalls_names[] = {
#include "kiln_syscalls.inc"
};

const char *kiln_syscalls_name(long nr) {
  if (nr < 0 || (size_t)nr >= sizeof kiln_syscalls_names / sizeof kiln_syscalls_names[0]) return NULL;
  return kiln_syscalls_names[nr];
}
