/* kiln_malloc.c — the malloc family, interposed: each hook forwards to the
 * next definition in lookup order (libc, or jemalloc/tcmalloc when the
 * program uses them) and tells the runtime what happened. Nested calls
 * (kiln's own, or the allocator calling itself) pass straight through under
 * the per-thread guard. Before the real functions are resolved — dlsym may
 * allocate while resolving them — requests are served from a static
 * bootstrap arena, whose blocks are recognised and never passed to the real
 * free. errno is the real allocator's. Runs in any thread of the program,
 * before main and after exit too. */
#include "kiln_internal.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------ bootstrap arena */

enum { KILN_BOOT_BYTES = 256 * 1024 };
static _Alignas(64) char kiln_boot_arena[KILN_BOOT_BYTES];
static _Atomic size_t kiln_boot_used;
static __thread int kiln_tls_resolving __attribute__((tls_model("initial-exec")));

/* Static storage: already zero, never reused. */
static void *kiln_boot_alloc(size_t size, size_t align) {
  return kiln_bump_alloc(kiln_boot_arena, KILN_BOOT_BYTES, &kiln_boot_used, size, align);
}

static inline bool kiln_boot_owns(const void *p) {
  return (const char *)p >= kiln_boot_arena && (const char *)p < kiln_boot_arena + KILN_BOOT_BYTES;
}

/* True when the real functions are there; false while resolving them. */
static inline bool kiln_malloc_ready(void) {
  if (KILN_LIKELY(kiln_libc.malloc != NULL)) return true;
  if (kiln_tls_resolving) return false;
  kiln_tls_resolving = 1;
  kiln_libc_resolve();
  kiln_tls_resolving = 0;
  return kiln_libc.malloc != NULL;
}

/* Whether this call is to be recorded (and then the guard is taken). An
 * allocation sampled mode passes over still ends the "freed before the
 * next allocation" window of the thread's last block. */
static inline bool kiln_malloc_enter(size_t size) {
  if (kiln_tls_hook_guard != 0 || !kiln_heap_active()) return false;
  if (kiln_heap_sample_skip(size)) {
    kiln_tls_last_alloc = 0;
    return false;
  }
  kiln_heap_guard_enter();
  return true;
}

/* ---------------------------------------------------------------- hooks */

KILN_EXPORT KILN_HOOK_ENTRY_TEXT void *malloc(size_t size) {
  if (!kiln_malloc_ready()) return kiln_boot_alloc(size, 16);
  if (!kiln_malloc_enter(size)) return KILN_UNLIKELY(kiln_tls_own_pool) ? kiln_pool_alloc(size, 16) : kiln_libc.malloc(size);
  void *p = kiln_libc.malloc(size);
  int e = errno;
  kiln_tls_hook_frame = __builtin_frame_address(0); /* the stack walk starts here */
  kiln_heap_on_alloc(p, size);
  kiln_tls_hook_frame = NULL; /* not taken when nothing was recorded */
  kiln_scan_clear_link(p, size);
  errno = e;
  kiln_heap_guard_leave();
  return p;
}

KILN_EXPORT KILN_HOOK_ENTRY_TEXT void *calloc(size_t n, size_t size) {
  if (!kiln_malloc_ready()) {
    if (size != 0 && n > SIZE_MAX / size) return NULL;
    return kiln_boot_alloc(n * size, 16);
  }
  size_t total;
  bool overflow = __builtin_mul_overflow(n, size, &total);
  if (overflow || !kiln_malloc_enter(total)) {
    if (KILN_UNLIKELY(kiln_tls_own_pool)) return overflow ? (errno = ENOMEM, NULL) : kiln_pool_alloc(total, 16);
    return kiln_libc.calloc(n, size);
  }
  void *p = kiln_libc.calloc(n, size);
  int e = errno;
  kiln_heap_on_alloc(p, total);
  errno = e;
  kiln_heap_guard_leave();
  return p;
}

KILN_EXPORT KILN_HOOK_ENTRY_TEXT void free(void *p) {
  if (p == NULL || kiln_boot_owns(p) || kiln_pool_owns(p)) return;
  if (!kiln_malloc_ready()) return; /* cannot happen: p came from somewhere */
  if (kiln_tls_hook_guard == 0 && kiln_heap_started() && kiln_heap_may_track(p)) {
    /* The allocator reads the block's header after kiln's map lookup:
     * start both loads now, so that the two misses overlap. */
    __builtin_prefetch((const char *)p - 16);
    kiln_livemap_prefetch(&kiln_livemap_main, (uint64_t)(uintptr_t)p);
    int e = errno;
    kiln_heap_guard_enter();
    kiln_heap_on_program_free(p); /* before the allocator can hand p out again */
    kiln_heap_guard_leave();
    errno = e;
  }
  if (KILN_UNLIKELY(kiln_tls_own_pool)) {
    /* Kept from glibc, whose free would set up this thread's tcache; but
     * freed for kiln's accounting (a block the loader frees may be one it
     * allocated for the program). */
    if (kiln_heap_started()) kiln_heap_on_free(p, NULL);
    return;
  }
  kiln_libc.free(p);
}

/* realloc and reallocarray: the old block leaves the accounting before the
 * call and comes back if the call fails. */
KILN_HOOK_ENTRY_TEXT static void *kiln_malloc_realloc(void *p, size_t n, size_t size, bool array) {
  if (KILN_UNLIKELY(kiln_tls_own_pool) && p != NULL && !kiln_boot_owns(p) && !kiln_pool_owns(p)) {
    /* One of glibc's, grown in the pool (and left to glibc, unfreed, but
     * freed for kiln's accounting, as in free). */
    if (array && size != 0 && n > SIZE_MAX / size) return errno = ENOMEM, NULL;
    size_t old = kiln_libc.malloc_usable_size != NULL ? kiln_libc.malloc_usable_size(p) : 0;
    void *q = kiln_pool_alloc(n * size, 16);
    if (q != NULL) {
      memcpy(q, p, old < n * size ? old : n * size);
      if (kiln_heap_started()) kiln_heap_on_free(p, NULL);
    }
    return q;
  }
  if (kiln_boot_owns(p) || kiln_pool_owns(p)) {
    size_t old = ((size_t *)p)[-1];
    if (array && size != 0 && n > SIZE_MAX / size) {
      errno = ENOMEM;
      return NULL;
    }
    void *q = malloc(n * size);
    if (q != NULL) memcpy(q, p, old < n * size ? old : n * size);
    return q;
  }
  if (!kiln_malloc_ready()) return array ? NULL : kiln_boot_alloc(n * size, 16);
  if (array && kiln_libc.reallocarray == NULL) { /* no reallocarray: realloc, checked */
    if (size != 0 && n > SIZE_MAX / size) return errno = ENOMEM, NULL;
    return kiln_malloc_realloc(p, n * size, 1, false);
  }
  if (kiln_tls_hook_guard != 0 || !kiln_heap_started())
    return array ? kiln_libc.reallocarray(p, n, size) : kiln_libc.realloc(p, n);
  kiln_heap_guard_enter();
  kiln_heap_block_t old;
  int e = errno;
  bool tracked = p != NULL && kiln_heap_on_free(p, &old);
  errno = e;
  void *q = array ? kiln_libc.reallocarray(p, n, size) : kiln_libc.realloc(p, n);
  e = errno;
  size_t bytes = array ? n * size : n;
  if (q != NULL) {
    /* The new block is an allocation like any other: sampled mode's
     * countdown decides whether it is recorded. */
    if (kiln_heap_active()) {
      if (!kiln_heap_sample_skip(bytes))
        kiln_heap_on_alloc(q, bytes);
      else
        kiln_tls_last_alloc = 0;
    }
  } else if (tracked && bytes != 0) {
    kiln_heap_restore(p, &old); /* failed: p is still the program's */
  }
  errno = e;
  kiln_heap_guard_leave();
  return q;
}

KILN_EXPORT KILN_HOOK_ENTRY_TEXT void *realloc(void *p, size_t n) { return kiln_malloc_realloc(p, n, 1, false); }

KILN_EXPORT KILN_HOOK_ENTRY_TEXT void *reallocarray(void *p, size_t n, size_t size) {
  return kiln_malloc_realloc(p, n, size, true);
}

KILN_EXPORT KILN_HOOK_ENTRY_TEXT int posix_memalign(void **out, size_t align, size_t size) {
  if (!kiln_malloc_ready()) {
    void *p = kiln_boot_alloc(size, align);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
  }
  if (!kiln_malloc_enter(size)) {
    if (KILN_UNLIKELY(kiln_tls_own_pool)) return (*out = kiln_pool_alloc(size, align)) != NULL ? 0 : ENOMEM;
    return kiln_libc.posix_memalign(out, align, size);
  }
  int e = errno;
  int rc = kiln_libc.posix_memalign(out, align, size);
  if (rc == 0) {
    kiln_heap_on_alloc(*out, size);
    kiln_scan_clear_link(*out, size);
  }
  errno = e;
  kiln_heap_guard_leave();
  return rc;
}

/* The aligned forms with a plain return: aligned_alloc, memalign, valloc,
 * pvalloc. */
#define KILN_MALLOC_ALIGNED(call, align, size)                        \
  do {                                                                \
    if (!kiln_malloc_ready()) return kiln_boot_alloc(size, align);    \
    if (!kiln_malloc_enter(size))                                     \
      return KILN_UNLIKELY(kiln_tls_own_pool) ? kiln_pool_alloc(size, align) : call; \
    void *p_ = call;                                                  \
    int e_ = errno;                                                   \
    kiln_heap_on_alloc(p_, size);                                     \
    kiln_scan_clear_link(p_, size);                                   \
    errno = e_;                                                       \
    kiln_heap_guard_leave();                                          \
    return p_;                                                        \
  } while (0)

KILN_EXPORT KILN_HOOK_ENTRY_TEXT void *aligned_alloc(size_t align, size_t size) {
  KILN_MALLOC_ALIGNED(kiln_libc.aligned_alloc(align, size), align, size);
}
KILN_EXPORT KILN_HOOK_ENTRY_TEXT void *memalign(size_t align, size_t size) {
  KILN_MALLOC_ALIGNED(kiln_libc.memalign(align, size), align, size);
}
KILN_EXPORT KILN_HOOK_ENTRY_TEXT void *valloc(size_t size) { KILN_MALLOC_ALIGNED(kiln_libc.valloc(size), 4096, size); }
KILN_EXPORT KILN_HOOK_ENTRY_TEXT void *pvalloc(size_t size) { KILN_MALLOC_ALIGNED(kiln_libc.pvalloc(size), 4096, size); }
