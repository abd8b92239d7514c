/* kiln_internal.h — every cross-file function of the runtime, listed under
 * the file that defines it, leaves first (memory, logging, options), then the
 * middle (rings, threads, unwinding, stack table, modules, symbols), then the
 * top (sampler, collector, output, profiler). Calls go one way: down.
 * "[signal]" marks what may run in the SIGPROF handler (async-signal-safe).
 */
#ifndef KILN_INTERNAL_H
#define KILN_INTERNAL_H

#include "kiln_types.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <ucontext.h>

/* ------------------------------------------------------------ kiln_mem.c */
/* Anonymous, zeroed memory from mmap: the runtime never uses malloc. */
void *kiln_mem_map(size_t bytes) KILN_INTERNAL;           /* NULL on failure */
void kiln_mem_unmap(void *p, size_t bytes) KILN_INTERNAL;
/* The runtime's mappings now (kiln_mem_map, arenas, buffers): up to max
 * [lo, hi) pairs, for the leak scan, which must never take them for the
 * program's memory. Normal context. */
size_t kiln_mem_regions_list(uintptr_t *lo, uintptr_t *hi, size_t max) KILN_INTERNAL;

/* Address space runs out (ulimit -v, a full 47-bit space): a small
 * reserve mapped at start (PROT_NONE) is given back at the first mmap of
 * kiln's that fails, and tried again, so that the dump still has room;
 * every refusal after that is counted, and the profile says it is partial.
 * Normal context; 0 / -errno. */
int kiln_mem_reserve_init(size_t bytes) KILN_INTERNAL;
uint64_t kiln_mem_refused(void) KILN_INTERNAL; /* mmaps of kiln's that failed */
/* A file read whole (PROT_READ, private) the same way; munmap it. NULL on failure. */
void *kiln_mem_map_file(int fd, size_t bytes) KILN_INTERNAL;

/* A lock-free bump arena that grows in chunks of doubling size, each
 * mapped (MAP_NORESERVE) by the first allocation that needs it: address
 * space in proportion to use, up to cap bytes; pointers never move.
 * Offsets (kiln_arena_alloc_at) stay valid for the arena's life. Nothing
 * is freed but the whole arena. */
enum { KILN_ARENA_CHUNKS = 40 };
typedef struct kiln_arena {
  _Atomic(char *) chunks[KILN_ARENA_CHUNKS];
  size_t first;          /* bytes of chunk 0 and 1 (a power of two) */
  size_t cap;            /* offsets stay below */
  _Atomic size_t used;   /* bytes handed out (may pass cap when full) */
  _Atomic size_t mapped; /* bytes of the chunks mapped */
} kiln_arena_t;
/* Maps the first chunk (first bytes, rounded up to a power of two). */
int kiln_arena_init(kiln_arena_t *a, size_t first, size_t cap) KILN_INTERNAL; /* 0 / -errno */
/* NULL when full or when no chunk could be mapped (counted). [signal] */
void *kiln_arena_alloc(kiln_arena_t *a, size_t bytes) KILN_SIGNAL_SAFE KILN_INTERNAL;
void *kiln_arena_alloc_at(kiln_arena_t *a, size_t bytes, size_t *offset) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* The memory at an offset handed out, and back (SIZE_MAX: not the arena's). */
void *kiln_arena_at(const kiln_arena_t *a, size_t offset) KILN_INTERNAL;
size_t kiln_arena_offset(const kiln_arena_t *a, const void *p) KILN_INTERNAL;
void kiln_arena_destroy(kiln_arena_t *a) KILN_INTERNAL;

/* A table of count fixed-size elements, zeroed, whose memory is mapped one
 * chunk (a 64th) at a time, when an element in it is first wanted: the
 * module list and the thread slots cost address space as they fill.
 * Elements never move. A zeroed struct is uninitialised. */
enum { KILN_CHUNKS_MAX = 64 };
typedef struct kiln_chunks {
  _Atomic(char *) chunk[KILN_CHUNKS_MAX];
  size_t elem, per_chunk, count;
} kiln_chunks_t;
void kiln_chunks_init(kiln_chunks_t *c, size_t elem, size_t count) KILN_INTERNAL; /* once; normal */
/* Element i, or NULL while its chunk is not mapped. [signal] */
void *kiln_chunks_at(const kiln_chunks_t *c, size_t i) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* Element i, its chunk mapped if need be; NULL when that fails. Any thread. */
void *kiln_chunks_get(kiln_chunks_t *c, size_t i) KILN_INTERNAL;
size_t kiln_chunks_index(const kiln_chunks_t *c, const void *p) KILN_INTERNAL; /* SIZE_MAX: not one */

/* A growable byte buffer on mmap (mremap), for dump-time text. */
typedef struct kiln_buf {
  char *data;
  size_t len, cap;
  bool failed; /* an allocation failed: contents incomplete */
  size_t hi;   /* the largest len it had: what was written (kiln_buf_free clears it) */
} kiln_buf_t;
void kiln_buf_put(kiln_buf_t *b, const char *s, size_t n) KILN_INTERNAL;
void kiln_buf_puts(kiln_buf_t *b, const char *s) KILN_INTERNAL;
void kiln_buf_printf(kiln_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))) KILN_INTERNAL;
void *kiln_buf_reserve(kiln_buf_t *b, size_t n) KILN_INTERNAL; /* n bytes appended, uninitialised */
void kiln_buf_free(kiln_buf_t *b) KILN_INTERNAL;
/* In-place heapsort: no recursion, no allocation. */
void kiln_sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) KILN_INTERNAL;

/* ------------------------------------------------------------ kiln_fmt.c */
/* snprintf's contract (always NUL-terminated, returns the length it would
 * have written) for the subset the runtime uses, without locale, malloc or
 * locks: safe in a signal handler and after _exit. [signal] */
int kiln_fmt(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4))) KILN_SIGNAL_SAFE KILN_INTERNAL;
int kiln_fmt_v(char *out, size_t cap, const char *fmt, va_list ap) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* gmtime_r's fields, computed (no lock, no time zone). [signal] */
typedef struct kiln_fmt_tm { int year, month, day, hour, minute, second; } kiln_fmt_tm_t;
void kiln_fmt_utc(int64_t unix_seconds, kiln_fmt_tm_t *out) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* strerror's text for the usual file errors, else "error N" in buf. [signal] */
const char *kiln_fmt_errno(int e, char *buf, size_t cap) KILN_SIGNAL_SAFE KILN_INTERNAL;

/* ------------------------------------------------------------ kiln_log.c */
/* One "kiln: ..." line on stderr with write(2), formatted by kiln_fmt (so
 * also usable in emergency dumps). */
void kiln_log(const char *fmt, ...) __attribute__((format(printf, 1, 2))) KILN_INTERNAL;
/* When set, lines go there instead of stderr (a process below the top of
 * a profiled tree: kiln_tree.c). */
extern void (*kiln_log_sink)(const char *line, size_t n) KILN_INTERNAL;

/* ----------------------------------------------------------- kiln_libc.c */
/* libc's own versions of the functions kiln interposes. */
struct dl_phdr_info;
typedef struct kiln_libc {
  int (*sigaction)(int, const struct sigaction *, struct sigaction *);
  int (*sigprocmask)(int, const sigset_t *, sigset_t *);
  void (*(*signal)(int, void (*)(int)))(int);
  int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
  void *(*dlopen)(const char *, int);
  int (*dlclose)(void *);
  int (*dl_iterate_phdr)(int (*)(struct dl_phdr_info *, size_t, void *), void *);
  int (*execve)(const char *, char *const[], char *const[]);
  int (*execvpe)(const char *, char *const[], char *const[]);
  int (*fexecve)(int, char *const[], char *const[]);
  void *(*malloc)(size_t);
  void (*free)(void *);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void *(*reallocarray)(void *, size_t, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  void *(*memalign)(size_t, size_t);
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
  size_t (*malloc_usable_size)(void *);
  int (*setuid)(uid_t);
  int (*seteuid)(uid_t);
  int (*setreuid)(uid_t, uid_t);
  int (*setresuid)(uid_t, uid_t, uid_t);
  int (*setgid)(gid_t);
  int (*setegid)(gid_t);
  int (*setregid)(gid_t, gid_t);
  int (*setresgid)(gid_t, gid_t, gid_t);
  int (*setgroups)(size_t, const gid_t *);
  int (*initgroups)(const char *, gid_t);
  /* Lock mode's interposers (preload/kiln_locks.c). */
  int (*mutex_lock)(pthread_mutex_t *);
  int (*mutex_trylock)(pthread_mutex_t *);
  int (*mutex_timedlock)(pthread_mutex_t *, const struct timespec *);
  int (*mutex_clocklock)(pthread_mutex_t *, clockid_t, const struct timespec *);
  int (*rwlock_rdlock)(pthread_rwlock_t *);
  int (*rwlock_wrlock)(pthread_rwlock_t *);
  int (*rwlock_tryrdlock)(pthread_rwlock_t *);
  int (*rwlock_trywrlock)(pthread_rwlock_t *);
  int (*rwlock_timedrdlock)(pthread_rwlock_t *, const struct timespec *);
  int (*rwlock_timedwrlock)(pthread_rwlock_t *, const struct timespec *);
  int (*rwlock_clockrdlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
  int (*rwlock_clockwrlock)(pthread_rwlock_t *, clockid_t, const struct timespec *);
  int (*cond_wait)(pthread_cond_t *, pthread_mutex_t *);
  int (*cond_timedwait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
  int (*cond_clockwait)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
  int (*sem_wait)(sem_t *);
  int (*sem_trywait)(sem_t *);
  int (*sem_timedwait)(sem_t *, const struct timespec *);
  int (*sem_clockwait)(sem_t *, clockid_t, const struct timespec *);
} kiln_libc_t;
extern kiln_libc_t kiln_libc KILN_INTERNAL;
/* Fills kiln_libc once (dlsym RTLD_NEXT). Normal context. */
void kiln_libc_resolve(void) KILN_INTERNAL;

/* -------------------------------------------------------- kiln_options.c */
/* Fills cfg from the KILN_* environment (secure_getenv). Returns 0 when
 * profiling should run, 1 when it is switched off (KILN_MODE=off), and
 * -EINVAL after logging one line for a bad value. */
int kiln_options_from_env(kiln_config_t *cfg) KILN_INTERNAL;
/* Defaults: cpu mode, KILN_HZ_DEFAULT, KILN_DEPTH_DEFAULT, libunwind, ".". */
void kiln_options_defaults(kiln_config_t *cfg) KILN_INTERNAL;
/* Makes cfg->out_dir absolute (against the current directory). */
int kiln_options_resolve_out(kiln_config_t *cfg) KILN_INTERNAL;

/* -------------------------------------------------------- kiln_syscalls.c */
/* The name of system call nr on this machine ("futex"), or NULL. Any
 * context (a constant table). */
const char *kiln_syscalls_name(long nr) KILN_SIGNAL_SAFE KILN_INTERNAL;

/* ------------------------------------------------------------ kiln_ring.c */
typedef struct kiln_ring {
  _Atomic uint64_t head; /* next word the producer writes */
  char pad0[56];
  _Atomic uint64_t tail; /* next word the consumer reads */
  char pad1[56];
  uint64_t *words;
  uint64_t mask; /* size - 1, size a power of two */
} kiln_ring_t;
/* A record is one header word (kiln_ring_header) and its pcs. */
static inline uint64_t kiln_ring_header(unsigned npcs, unsigned flags, uint32_t weight) {
  return (uint64_t)(npcs & 0xffff) | ((uint64_t)(flags & 0xff) << 16) | ((uint64_t)weight << 32);
}
void kiln_ring_init(kiln_ring_t *r, uint64_t *words, size_t nwords) KILN_INTERNAL;
/* Producer: false (nothing written) when the record does not fit. */
bool kiln_ring_push(kiln_ring_t *r, uint64_t header, const uint64_t *pcs,
                    unsigned npcs) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* Consumer: the record's pc count (up to max, the rest skipped) or -1 if
 * the ring is empty. */
int kiln_ring_pop(kiln_ring_t *r, uint64_t *header, uint64_t *pcs, unsigned max) KILN_INTERNAL;

/* --------------------------------------------------------- kiln_threads.c */
enum { KILN_SLOT_FREE = 0, KILN_SLOT_CLAIMED, KILN_SLOT_ACTIVE, KILN_SLOT_EXITED };

typedef struct kiln_thread {
  _Atomic int state;          /* KILN_SLOT_* */
  pid_t tid;
  _Atomic bool has_timer;     /* KILN_TIMER_POSIX: timer is armed */
  timer_t timer;
  bool own;                   /* registered by the thread itself (TLS set) */
  uintptr_t stack_lo, stack_hi; /* for the fp walker; 0,0 when unknown */
  kiln_ring_t ring;
  uint64_t *scratch;          /* the handler's record (KILN_REGS + 1 + KILN_STACK_COPY / 8 words); NULL with perf */
  /* Written by the thread's handler, read by the collector. */
  _Atomic uint64_t samples, dropped, truncated, skipped;
} kiln_thread_t;

extern __thread kiln_thread_t *kiln_tls_thread __attribute__((tls_model("initial-exec"))) KILN_INTERNAL;

int kiln_threads_init(void) KILN_INTERNAL; /* 0 / -ENOMEM */
/* Slots registered from now on get a ring and a scratch record (the
 * signal timers' handler needs them; perf does not). Normal context. */
void kiln_threads_want_rings(bool on) KILN_INTERNAL;
/* Claims a slot for tid; self: the calling thread (TLS set, stack bounds
 * known). NULL when KILN_THREADS_MAX are live (counted). */
kiln_thread_t *kiln_threads_register(pid_t tid, bool self) KILN_INTERNAL;
/* The thread is gone or stops being sampled: the collector drains its ring
 * and frees the slot. */
void kiln_threads_retire(kiln_thread_t *t) KILN_INTERNAL;
/* The calling thread's slot, or NULL. */
kiln_thread_t *kiln_threads_self(void) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* Slots in use are below this index. */
int kiln_threads_high(void) KILN_SIGNAL_SAFE KILN_INTERNAL;
kiln_thread_t *kiln_threads_slot(int i) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* Called by the collector after draining an EXITED slot. */
void kiln_threads_release(kiln_thread_t *t) KILN_INTERNAL;
/* Counters of retired threads, added in when their slot is released. */
typedef struct kiln_thread_totals {
  uint64_t samples, dropped, truncated, skipped, threads, unregistered;
} kiln_thread_totals_t;
void kiln_threads_totals(kiln_thread_totals_t *out) KILN_INTERNAL;
/* After fork, in the child (after kiln_sampler_after_fork_child): forget
 * every slot of the parent and the rings' contents. */
void kiln_threads_after_fork_child(void) KILN_INTERNAL;

/* ---------------------------------------------------------- kiln_unwind.c */
/* Per-thread depth of "unwinding is unsafe here" regions: inside the
 * loader (dlopen, dlclose, dl_iterate_phdr) or inside libunwind outside the
 * handler. The handler then records the leaf only (KILN_STACK_SKIPPED). */
extern __thread int kiln_tls_unsafe __attribute__((tls_model("initial-exec"))) KILN_INTERNAL;
static inline void kiln_unwind_unsafe_enter(void) { kiln_tls_unsafe++; }
static inline void kiln_unwind_unsafe_leave(void) { kiln_tls_unsafe--; }
/* Around a call into libunwind from a hook (learning rules, a backtrace):
 * every signal blocked once, and libunwind's own sigprocmask calls, two a
 * frame, answered without the kernel meanwhile (kiln's sigprocmask). What
 * libunwind blocks signals for (no handler entering it while it holds its
 * cache's lock) still holds, at two system calls a walk. */
extern __thread bool kiln_tls_sigs_held __attribute__((tls_model("initial-exec"))) KILN_INTERNAL;
void kiln_unwind_sigs_hold(sigset_t *old) KILN_INTERNAL;
void kiln_unwind_sigs_release(const sigset_t *old) KILN_INTERNAL;

/* Loads in-process libunwind for the malloc hooks (CPU samples are
 * unwound from their copies: kiln_unwind_copy.c); a missing libunwind
 * falls back to fp (logged). */
int kiln_unwind_init(kiln_unwind_kind_t *kind) KILN_INTERNAL;
/* Around fork (prepare, then parent and child): no thread is inside
 * libunwind at the fork, so the child inherits none of its locks held.
 * Unwinds attempted meanwhile keep the leaf only. Normal context. */
void kiln_unwind_fork_prepare(void) KILN_INTERNAL;
void kiln_unwind_fork_done(void) KILN_INTERNAL;
/* Per-thread set-up, in the new thread before its timer is armed. */
void kiln_unwind_thread_init(kiln_unwind_kind_t kind) KILN_INTERNAL;
const char *kiln_unwind_name(kiln_unwind_kind_t kind) KILN_INTERNAL;

/* ----------------------------------------------------- kiln_unwind_copy.c */
/* Unwinds a sample from its registers and the copy of its stack (taken at
 * regs->r[RSP], len bytes): pcs leaf first, pcs[0] the interrupted pc + 1.
 * Collector context only (any thread but never a handler or hook). */
int kiln_unwind_copy_init(void) KILN_INTERNAL; /* 0, or -ENOENT: fp only */
/* Whether libunwind was loaded for the copies (else frame pointers). */
bool kiln_unwind_copy_loaded(void) KILN_INTERNAL;
int kiln_unwind_copy(kiln_unwind_kind_t kind, const kiln_regs_t *regs, const uint8_t *stack, size_t len,
                     uint64_t *pcs, int max, unsigned *flags) KILN_INTERNAL;
/* True on a thread while it is inside kiln_unwind_copy (libunwind's signal
 * masking around its cache is then a no-op: see the sigprocmask wrapper). */
bool kiln_unwind_copy_active(void) KILN_INTERNAL;
/* While kiln sets libunwind up in a thread, the pipe wrappers refuse the
 * pipe libunwind would open for itself (see kiln_unwind_copy.c). */
void kiln_unwind_refuse_pipes(bool on) KILN_INTERNAL;
bool kiln_unwind_refusing_pipes(void) KILN_INTERNAL;
/* Whether pc (a return address, looked up at pc-1) is in the code of a
 * loaded module (an executable segment: a stray unwind lands in data),
 * as last listed by the copy unwinder. Collector context. */
bool kiln_unwind_copy_in_module(uint64_t pc) KILN_INTERNAL;
/* Bumped by the dlopen/dlclose wrappers: cached unwind rules are flushed. */
extern _Atomic uint64_t kiln_unwind_copy_loader_gen KILN_INTERNAL;

/* -------------------------------------------------------- kiln_stacktab.c */
/* Insert-only, lock-free hash table of stacks. Any thread may intern. */
typedef struct kiln_stack {
  uint64_t hash;
  uint32_t depth;
  uint32_t flags;                         /* KILN_STACK_* */
  _Atomic uint64_t counts[KILN_COUNT_KINDS];
  uint64_t pcs[];                         /* leaf first */
} kiln_stack_t;

int kiln_stacktab_init(size_t max_stacks) KILN_INTERNAL; /* 0 / -ENOMEM */
/* The id of this stack, interned if new; when the table is full, the id of
 * the "[kiln: table full]" stack (counted). Never 0. */
uint32_t kiln_stacktab_intern(const uint64_t *pcs, unsigned depth, unsigned flags) KILN_INTERNAL;
kiln_stack_t *kiln_stacktab_get(uint32_t id) KILN_INTERNAL;
uint32_t kiln_stacktab_id(const kiln_stack_t *s) KILN_INTERNAL;
static inline void kiln_stacktab_add(kiln_stack_t *s, kiln_count_kind_t k, uint64_t v) {
  atomic_fetch_add_explicit(&s->counts[k], v, memory_order_relaxed);
}
/* Calls fn for each interned stack (a snapshot; concurrent inserts may or
 * may not be seen). */
void kiln_stacktab_foreach(void (*fn)(kiln_stack_t *s, void *ctx), void *ctx) KILN_INTERNAL;
/* Zeroes the counts whose kinds are in mask (1 << kind); stacks stay. */
void kiln_stacktab_clear_counts(uint64_t mask) KILN_INTERNAL;
#define KILN_COUNTS_ALL (~0ull >> (64 - KILN_COUNT_KINDS))
#define KILN_COUNTS_CPU (1ull << KILN_COUNT_CPU)
#define KILN_COUNTS_LOCK                                                                    \
  ((1ull << KILN_COUNT_LOCK_WAIT_NS) | (1ull << KILN_COUNT_LOCK_WAIT_COUNT) |              \
   (1ull << KILN_COUNT_MARK_LOCK_WAIT_NS) | (1ull << KILN_COUNT_MARK_LOCK_WAIT_COUNT) |    \
   (1ull << KILN_COUNT_DELTA_LOCK_WAIT_NS) | (1ull << KILN_COUNT_DELTA_LOCK_WAIT_COUNT))
/* Drops everything: after fork in the child, or on reset. */
int kiln_stacktab_reset(void) KILN_INTERNAL;
/* A new empty table for a fork child that keeps nothing referring to the
 * parent's stacks (single-threaded): the parent's pages are let go, not
 * written. If the new one cannot be mapped, the old one stays with the
 * counts in mask zeroed (-ENOMEM). */
int kiln_stacktab_renew(uint64_t mask) KILN_INTERNAL;
void kiln_stacktab_destroy(void) KILN_INTERNAL;
typedef struct kiln_stacktab_stats { uint64_t stacks, full_hits, bytes; } kiln_stacktab_stats_t;
/* Bumped by every reset: ids of an older generation are meaningless. */
extern _Atomic uint64_t kiln_stacktab_gen KILN_INTERNAL;
static inline uint64_t kiln_stacktab_generation(void) {
  return atomic_load_explicit(&kiln_stacktab_gen, memory_order_acquire);
}
void kiln_stacktab_stats(kiln_stacktab_stats_t *out) KILN_INTERNAL;

/* ------------------------------------------------------- kiln_hookstack.c */
/* The allocation stack of the calling thread as a stack_id, from inside a
 * malloc hook (hook context, guard held; never the handler): leaf first,
 * starting at the caller of the outermost kiln_hooks function, at most max
 * frames (KILN_STACK_TRUNCATED beyond). libunwind mode walks with unwind
 * rules learned from libunwind once per return address (unw_backtrace where
 * no rule applies); fp mode follows frame pointers. Uses a few hundred
 * bytes of the program's stack; never calls pthread_getattr_np. */
uint32_t kiln_hookstack_id(kiln_unwind_kind_t kind, int max) KILN_INTERNAL;
/* [hook] The frame of the malloc-family function the program called, left
 * by that hook just before it calls the runtime (its return address is the
 * program's), so that kiln_hookstack_id need not search for it; taken (and
 * cleared) by the next kiln_hookstack_id of the thread. NULL: searched. */
extern __thread const uintptr_t *kiln_tls_hook_frame __attribute__((tls_model("initial-exec"))) KILN_INTERNAL;
/* Normal context, before the first hook: libunwind's entry points, the
 * rule table, the thread-exit key. verify: every rule walk is checked
 * against unw_backtrace (KILN_ALLOC_VERIFY). 0 / -ENOENT (no libunwind). */
int kiln_hookstack_init(kiln_unwind_kind_t kind, bool verify) KILN_INTERNAL;
typedef struct kiln_hookstack_stats {
  bool verify;
  uint64_t verified, mismatches; /* verify mode: walks checked, differing */
  uint64_t fallbacks, rules;     /* unwound by unw_backtrace; rules learned */
  uint64_t learns;               /* walks of libunwind's that learned them */
} kiln_hookstack_stats_t;
void kiln_hookstack_stats(kiln_hookstack_stats_t *out) KILN_INTERNAL;
/* After dlclose (normal context): the learned unwind rules are dropped. */
void kiln_hookstack_forget_rules(void) KILN_INTERNAL;
/* Whether a rule was learned for code outside every loaded file (a JIT's):
 * then a dlopen forgets them all, since the new library may be mapped
 * where that code was. */
bool kiln_hookstack_guessed_outside(void) KILN_INTERNAL;

/* -------------------------------------------------------- kiln_livemap.c */
/* Address -> (requested size, stack_id) of tracked live blocks: sharded,
 * each shard under a spinlock held for one probe. Any thread, from the
 * malloc hooks; never the signal handler. kiln_livemap_main holds every
 * tracked block; a second map serves leak scopes. Zeroed = empty. Stack
 * ids are below 2^31; the top bit (KILN_LIVEMAP_UP) is the heap's. */
/* 64 shards in 8 groups of 8. The group is the block's 64 MiB region of
 * the address space (a glibc arena heap is one such region, and each
 * thread allocates from an arena of its own), the shard in the group a
 * hash of the address: a thread's hooks write shard locks and slot lines
 * that another thread writes only when it frees that thread's blocks (with
 * 32 shards by hash alone, two threads' churn missed on every call on lines
 * the other had written: 3.3x against 2.2x). The headers (4 KiB) stay in L1. */
enum { KILN_LIVEMAP_SHARDS = 64 };
#define KILN_LIVEMAP_UP 0x80000000u
typedef struct kiln_livemap_shard kiln_livemap_shard_t;
struct kiln_livemap_shard {
  _Alignas(64) atomic_flag lock; /* one cache line a shard */
  uint32_t nbig;
  struct kiln_livemap_entry *slots;
  size_t cap, used;
  struct kiln_livemap_big *big;
  size_t bigcap;
};
typedef struct kiln_livemap {
  kiln_livemap_shard_t shards[KILN_LIVEMAP_SHARDS];
  _Atomic uint64_t bytes;      /* memory the map holds */
  _Atomic uint64_t bytes_peak; /* and the most it held */
} kiln_livemap_t;
extern kiln_livemap_t kiln_livemap_main KILN_INTERNAL;

int kiln_livemap_put(kiln_livemap_t *m, uint64_t addr, uint64_t size, uint32_t stack_id) KILN_INTERNAL; /* 0 / -ENOMEM */
/* One multiply (Fibonacci hashing): its top bits are well mixed even for
 * addresses that differ only in a few middle bits. Bits 59..61 pick the
 * shard in the region's group, bits 58 and down the home slot (scaled to
 * the shard's size, any size, not only powers of two, so that growth can
 * be by a quarter). */
static inline uint64_t kiln_livemap_hash(uint64_t a) { return a * 0x9e3779b97f4a7c15ull; }
static inline kiln_livemap_shard_t *kiln_livemap_shard(kiln_livemap_t *m, uint64_t addr, uint64_t h) {
  _Static_assert(KILN_LIVEMAP_SHARDS == 64, "8 groups of 8 shards");
  uint64_t group = ((addr >> 26) * 0x9e3779b97f4a7c15ull) >> 61;
  return &m->shards[group * 8 + ((h >> 59) & 7)];
}
static inline size_t kiln_livemap_home(uint64_t h, size_t cap) {
  __extension__ typedef unsigned __int128 kiln_u128;
  return (size_t)(((kiln_u128)(h << 5) * cap) >> 64);
}
/* Starts loading addr's slot, so that a put or find a little later does
 * not wait for memory (the shard is read without its lock: a hint; a slot
 * is 16 bytes). Inline: it is on every hook's path. */
static inline void kiln_livemap_prefetch(kiln_livemap_t *m, uint64_t addr) {
  uint64_t h = kiln_livemap_hash(addr);
  kiln_livemap_shard_t *s = kiln_livemap_shard(m, addr, h);
  char *slots = (char *)s->slots;
  size_t cap = s->cap;
  if (slots != NULL) __builtin_prefetch(slots + kiln_livemap_home(h, cap) * 16, 1);
}
/* Looks addr up (and removes it when remove); false if absent. */
bool kiln_livemap_find(kiln_livemap_t *m, uint64_t addr, uint64_t *size, uint32_t *stack_id,
                       bool remove) KILN_INTERNAL;
/* The same as kiln_livemap_find(m, addr, size, stack_id, true), faster. */
bool kiln_livemap_remove(kiln_livemap_t *m, uint64_t addr, uint64_t *size, uint32_t *stack_id) KILN_INTERNAL;
static inline bool kiln_livemap_take(uint64_t addr, uint64_t *size, uint32_t *stack_id) {
  return kiln_livemap_remove(&kiln_livemap_main, addr, size, stack_id);
}
void kiln_livemap_foreach(kiln_livemap_t *m,
                          void (*fn)(uint64_t addr, uint64_t size, uint32_t stack_id, void *ctx),
                          void *ctx) KILN_INTERNAL;
void kiln_livemap_clear(kiln_livemap_t *m) KILN_INTERNAL;
void kiln_livemap_stats(kiln_livemap_t *m, uint64_t *entries, uint64_t *bytes) KILN_INTERNAL;
uint64_t kiln_livemap_peak_bytes(kiln_livemap_t *m) KILN_INTERNAL;
/* Around fork: every shard locked (prepare), then released (parent, child). */
void kiln_livemap_fork_prepare(kiln_livemap_t *m) KILN_INTERNAL;
void kiln_livemap_fork_release(kiln_livemap_t *m) KILN_INTERNAL;

/* ------------------------------------------------------- kiln_heaplocal.c */
/* Per-thread allocation counters per stack (see the file): the values a
 * hook adds, in this order. */
enum { KILN_HL_ALLOC_BYTES = 0, KILN_HL_ALLOC_COUNT, KILN_HL_FREED_BYTES, KILN_HL_FREED_COUNT,
       KILN_HL_TEMP_COUNT, KILN_HL_VALUES };
/* epoch: the heap's peak epoch. Normal context, before the first hook. */
void kiln_heaplocal_init(_Atomic uint64_t *epoch) KILN_INTERNAL;
/* Hook: adds d to the calling thread's counters of stack id; false when
 * the thread has no table (then the caller counts on the stack itself). */
bool kiln_heaplocal_add(uint32_t id, const int64_t d[KILN_HL_VALUES]) KILN_INTERNAL;
/* Normal context: every thread's counts into the stack table, so that
 * its counts are current (waits for an eviction in progress). */
void kiln_heaplocal_merge_all(void) KILN_INTERNAL;
/* After the stack table's counts were cleared: what the threads counted
 * so far is forgotten. */
void kiln_heaplocal_discard_all(void) KILN_INTERNAL;
/* At thread exit (the heap's key destructor): merged, table released. */
void kiln_heaplocal_thread_exit(void) KILN_INTERNAL;
void kiln_heaplocal_fork_prepare(void) KILN_INTERNAL;
void kiln_heaplocal_fork_release(void) KILN_INTERNAL;
void kiln_heaplocal_after_fork_child(void) KILN_INTERNAL; /* after a merge */
uint64_t kiln_heaplocal_skipped(void) KILN_INTERNAL;

/* ----------------------------------------------------------- kiln_heap.c */
/* The hook guard: while above 0 in a thread, its malloc hooks forward to
 * the real allocator and record nothing (kiln's own calls, nested calls). */
extern __thread int kiln_tls_hook_guard __attribute__((tls_model("initial-exec"))) KILN_INTERNAL;
/* kiln's own pool. While kiln_tls_own_pool is set, the thread's
 * allocations come from it and its frees are dropped (kiln_malloc.c): kiln
 * loads libunwind at the first sample that needs it, perhaps on its
 * collector thread, and glibc gives a thread's first malloc (or free: its
 * tcache) an arena of its own, 64 MiB of the program's address space. A
 * block is never reused: what a load allocates lives as long as the
 * library. Blocks keep their size in the 8 bytes before them. */
enum { KILN_POOL_BYTES = 1 << 20 };
/* A block of a region handed out front to back and never reused (the pool,
 * the interposers' bootstrap arena): its size in the 8 bytes before it, for
 * realloc; NULL once the region is used up. Any thread; signal-safe. */
static inline void *kiln_bump_alloc(char *base, size_t cap, _Atomic size_t *used, size_t size, size_t align) {
  if (align < 16) align = 16;
  if (size > cap || align > 4096) return NULL;
  size_t need = size + align + 16;
  size_t at = atomic_fetch_add(used, need);
  if (at + need > cap) return NULL;
  uintptr_t p = ((uintptr_t)base + at + 16 + align - 1) & ~(uintptr_t)(align - 1);
  ((size_t *)p)[-1] = size;
  return (void *)p;
}
extern __thread int kiln_tls_own_pool __attribute__((tls_model("initial-exec"))) KILN_INTERNAL;
extern char *_Atomic kiln_pool_base KILN_INTERNAL;
void *kiln_pool_alloc(size_t size, size_t align) KILN_INTERNAL; /* NULL when full */
size_t kiln_pool_bytes(void) KILN_INTERNAL;                    /* of the pool, used */
static inline bool kiln_pool_owns(const void *p) {
  const char *b = atomic_load_explicit(&kiln_pool_base, memory_order_relaxed);
  return b != NULL && (const char *)p >= b && (const char *)p < b + KILN_POOL_BYTES;
}
/* Sampled mode's fast paths, inlined into the hooks. The countdown of
 * bytes to the next sample (0: not drawn yet in this thread); the filter:
 * counters of sampled live blocks per address hash (16 KiB: it stays in
 * cache; NULL in exact mode). */
extern __thread int64_t kiln_tls_alloc_countdown __attribute__((tls_model("initial-exec"))) KILN_INTERNAL;
/* The block this thread allocated last (0: it allocated another since, or
 * freed it): its free before the next allocation makes it temporary. */
extern __thread uintptr_t kiln_tls_last_alloc __attribute__((tls_model("initial-exec"))) KILN_INTERNAL;
extern _Atomic uint8_t *kiln_heap_filter KILN_INTERNAL;
extern uint64_t kiln_heap_sample_bytes KILN_INTERNAL;
/* 4 KiB: it stays in L1 next to the program's data (a free in sampled
 * mode costs one load of it); a count that reaches 255 sticks there, so
 * the filter never says "not tracked" of a tracked block. */
enum { KILN_HEAP_FILTER_SLOTS = 1 << 12 };
static inline size_t kiln_heap_filter_index(uint64_t addr) {
  return (size_t)((addr >> 4) * 0x9e3779b97f4a7c15ull >> 52) & (KILN_HEAP_FILTER_SLOTS - 1);
}
/* True when this allocation is not sampled (nothing to record). */
static inline bool kiln_heap_sample_skip(size_t size) {
  if (kiln_heap_sample_bytes == 0 || kiln_tls_alloc_countdown == 0) return false;
  kiln_tls_alloc_countdown -= (int64_t)size;
  return kiln_tls_alloc_countdown > 0;
}
/* False when p surely is not a tracked block (sampled mode's filter). */
static inline bool kiln_heap_may_track(const void *p) {
  _Atomic uint8_t *f = kiln_heap_filter;
  return f == NULL || atomic_load_explicit(&f[kiln_heap_filter_index((uint64_t)(uintptr_t)p)], memory_order_relaxed) != 0;
}
static inline void kiln_heap_guard_enter(void) { kiln_tls_hook_guard++; }
static inline void kiln_heap_guard_leave(void) { kiln_tls_hook_guard--; }

typedef struct kiln_heap_block {
  uint64_t size;
  uint32_t stack_id;
  bool up;            /* sampled: counted as floor(weight) + 1 blocks */
  bool scoped;        /* allocated inside an open leak scope */
  uint64_t scope_seq; /* then: its allocation number */
} kiln_heap_block_t;
typedef struct kiln_heap_stats {
  uint64_t alloc_bytes, alloc_count, freed_bytes, freed_count;
  int64_t live_bytes, live_count, peak_bytes;
  uint64_t untracked_frees, map_failures, tracked_blocks, map_bytes, map_peak_bytes, sample;
  kiln_hookstack_stats_t unwind;
} kiln_heap_stats_t;

int kiln_heap_start(const kiln_config_t *cfg) KILN_INTERNAL;
void kiln_heap_stop(void) KILN_INTERNAL;
/* Read inline by every hook (relaxed: a hook racing with start or stop
 * may go either way, as it would a moment earlier or later). */
extern _Atomic bool kiln_heap_on KILN_INTERNAL;   /* allocations are recorded */
extern _Atomic bool kiln_heap_ever KILN_INTERNAL; /* started once: frees must be matched */
static inline bool kiln_heap_active(void) { return atomic_load_explicit(&kiln_heap_on, memory_order_relaxed); }
static inline bool kiln_heap_started(void) { return atomic_load_explicit(&kiln_heap_ever, memory_order_relaxed); }
/* Hooks, with the guard held: after a successful allocation; before a free
 * (true and *out when p was tracked); after a failed realloc. */
void kiln_heap_on_alloc(void *p, size_t size) KILN_INTERNAL;
bool kiln_heap_on_free(void *p, kiln_heap_block_t *out) KILN_INTERNAL;
/* The program's free(p): kiln_heap_on_free, and p counts as temporary
 * when it is the block its thread allocated last (kiln_tls_last_alloc). */
void kiln_heap_on_program_free(void *p) KILN_INTERNAL;
void kiln_heap_restore(void *p, const kiln_heap_block_t *b) KILN_INTERNAL;
/* Dump time: LIVE_* of every stack computed, PEAK_BYTES made its value at
 * the last peak. */
void kiln_heap_settle(void) KILN_INTERNAL;
void kiln_heap_stats(kiln_heap_stats_t *out) KILN_INTERNAL;
void kiln_heap_after_fork_child(void) KILN_INTERNAL;
void kiln_heap_reset(void) KILN_INTERNAL;
bool kiln_heap_exact(void) KILN_INTERNAL; /* active, every block tracked */
/* Leak scopes: begin returns the first allocation number of the scope;
 * end calls fn for every block allocated since then and still live, then
 * closes the scope. Nested and concurrent scopes work. */
uint64_t kiln_heap_scope_begin(void) KILN_INTERNAL;
void kiln_heap_scope_end(uint64_t seq0,
                         void (*fn)(uint64_t addr, uint64_t size, uint32_t stack_id, void *ctx),
                         void *ctx) KILN_INTERNAL;
/* Around fork: the maps' shards locked, then released. */
void kiln_heap_fork_prepare(void) KILN_INTERNAL;
void kiln_heap_fork_release(void) KILN_INTERNAL;

/* ----------------------------------------------------------- kiln_lock.c */
/* Lock mode (see the file): what a wait was for; the interposers count a
 * wait here only after a try found the lock taken. */
typedef enum {
  KILN_LOCK_MUTEX = 0, /* pthread_mutex_lock, _timedlock, _clocklock */
  KILN_LOCK_RDLOCK,    /* pthread_rwlock_rdlock and its timed forms */
  KILN_LOCK_WRLOCK,    /* pthread_rwlock_wrlock and its timed forms */
  KILN_LOCK_COND,      /* pthread_cond_wait, _timedwait, _clockwait: every call */
  KILN_LOCK_SEM,       /* sem_wait, sem_timedwait, sem_clockwait */
  KILN_LOCK_WHATS
} kiln_lock_what_t;
/* Set while lock mode records (the interposers' one load on the fast path). */
extern _Atomic bool kiln_lock_on KILN_INTERNAL;
static inline bool kiln_lock_active(void) {
  return atomic_load_explicit(&kiln_lock_on, memory_order_relaxed);
}
/* Normal context, at start: the hooks' unwinder (libunwind rules, else fp). */
int kiln_lock_start(const kiln_config_t *cfg) KILN_INTERNAL;
void kiln_lock_stop(void) KILN_INTERNAL;
/* Hook: a wait of ns nanoseconds just ended in the interposer that called
 * this (its caller's frame is the stack's leaf). Takes the hook guard;
 * does nothing when the guard was held already (kiln's own locks, a lock
 * taken inside a hook) or lock mode is off. errno preserved. */
void kiln_lock_record(kiln_lock_what_t what, uint64_t ns) KILN_INTERNAL;
/* Hook: CLOCK_MONOTONIC in nanoseconds, for the interposers to time a wait
 * (its CPU time is kiln's, named as such in CPU profiles). */
uint64_t kiln_lock_now(void) KILN_INTERNAL;
typedef struct kiln_lock_stats {
  uint64_t waits[KILN_LOCK_WHATS], ns[KILN_LOCK_WHATS];
  uint64_t total_waits, total_ns;
} kiln_lock_stats_t;
void kiln_lock_stats(kiln_lock_stats_t *out) KILN_INTERNAL;
void kiln_lock_reset(void) KILN_INTERNAL;
/* "mutex", "rwlock_read", "rwlock_write", "cond", "sem" (meta.json keys). */
const char *kiln_lock_what_name(kiln_lock_what_t what) KILN_INTERNAL;

/* --------------------------------------------------------- kiln_freeres.c */
typedef struct kiln_symbols kiln_symbols_t; /* kiln_symbols.c */
/* At exit, before the leak scan: what glibc's __libc_freeres frees (which
 * valgrind runs before its check) counted freed: the buffers glibc made
 * for its streams (not one the program gave with setvbuf),
 * the threads' DTVs, and the blocks of glibc's own subsystems (locales,
 * time zones, converters, the loader's lists), told by the glibc frames
 * nearest the allocation. Normal context, hook guard held. */
void kiln_freeres_at_exit(void) KILN_INTERNAL;
/* A stack of an allocation glibc's freeres frees (a DTV, locale data...):
 * glibc's, never a leak of the program. Named with sy; name: a scratch
 * buffer. */
bool kiln_freeres_glibc_stack(const kiln_stack_t *s, kiln_symbols_t *sy, kiln_buf_t *name) KILN_INTERNAL;
/* addr is the buffer glibc made for stdin, stdout or stderr (not a leak). */
bool kiln_freeres_is_std_buffer(uint64_t addr) KILN_INTERNAL;
/* Words the leak scan must not read as roots, up to max [lo, hi) ranges:
 * the buffer pointers of streams the program gave a buffer (setvbuf),
 * which exit's _IO_cleanup drops (it unbuffers every stream) before
 * valgrind looks: such a buffer is the program's, lost if it kept no
 * pointer of its own. Normal context. */
size_t kiln_freeres_hidden_words(uintptr_t *lo, uintptr_t *hi, size_t max) KILN_INTERNAL;

/* ------------------------------------------------------------ kiln_perf.c */
/* Samples without a signal (see the file). A raw sample as the collector
 * gets it, valid during the sink call only. */
typedef struct kiln_raw_sample {
  pid_t pid, tid;
  bool kernel;              /* taken in the kernel */
  bool has_time;            /* time is CLOCK_MONOTONIC ns */
  uint64_t time;
  bool has_regs;            /* regs and stack are the user context */
  kiln_regs_t regs;
  const uint8_t *stack;     /* copy of [regs.r[RSP], + stack_len) */
  size_t stack_len;
  const uint64_t *kchain;   /* kernel call chain, perf's encoding, or NULL */
  unsigned nk;
} kiln_raw_sample_t;
typedef void (*kiln_perf_sink_fn)(const kiln_raw_sample_t *s, void *ctx);
/* Whether perf ring sampling works here (with kernel time if want_kernel
 * and allowed: *kernel). On success the calling thread is followed by its
 * first ring (kiln_perf_open_first), which kiln_perf_close_thread undoes.
 * Normal context. 0 / -errno. */
int kiln_perf_probe(int hz, bool want_kernel, bool *kernel) KILN_INTERNAL;
/* Per-CPU events inherited by every thread the calling thread creates. */
int kiln_perf_open_inherited(void) KILN_INTERNAL;
/* One thread's own event (threads not covered by inheritance). Normal
 * context, any thread. */
int kiln_perf_open_thread(pid_t tid) KILN_INTERNAL;
/* A process's first ring, for its one thread: small (16 KiB stack copies,
 * 14 ms of them), grown to a full one by the drain once it is 10 ms old.
 * A process that lives a millisecond pays for 256 KiB, not 2 MB a ring. */
int kiln_perf_open_first(pid_t tid) KILN_INTERNAL;
/* Whether tid has a ring of its own. */
bool kiln_perf_has_ring(pid_t tid) KILN_INTERNAL;
/* Whether a first ring is live: the collector drains every 4 ms then. */
bool kiln_perf_first_live(void) KILN_INTERNAL;
/* Closes tid's own rings (what they hold undrained is lost). */
void kiln_perf_close_thread(pid_t tid) KILN_INTERNAL;
/* Reads every ring into sink (reap: close the rings of threads that are
 * gone). Collector or dump; serialised inside. */
void kiln_perf_drain(kiln_perf_sink_fn sink, void *ctx, bool reap) KILN_INTERNAL;
/* The same unless a drain is under way elsewhere (emergencies). */
void kiln_perf_try_drain(kiln_perf_sink_fn sink, void *ctx) KILN_INTERNAL;
/* Drains (sink may be NULL) and closes every ring: sampling stops. */
void kiln_perf_close_all(kiln_perf_sink_fn sink, void *ctx) KILN_INTERNAL;
typedef struct kiln_perf_stats {
  uint64_t samples, kernel_samples, lost, open_failures, rings, ring_bytes;
  uint64_t opened; /* rings mapped in this process so far */
} kiln_perf_stats_t;
void kiln_perf_stats(kiln_perf_stats_t *out) KILN_INTERNAL;
/* Around fork: no drain under way (prepare), then released (parent); the
 * child re-initialises in kiln_perf_after_fork_child. */
void kiln_perf_fork_prepare(void) KILN_INTERNAL;
void kiln_perf_fork_parent(void) KILN_INTERNAL;
void kiln_perf_after_fork_child(void) KILN_INTERNAL;

/* --------------------------------------------------------- kiln_modules.c */
typedef struct kiln_module {
  const char *path;     /* file on disk ("" for none) */
  const char *name;     /* basename, for module+0xOFF */
  uintptr_t base;       /* load bias (dlpi_addr) */
  uintptr_t lo, hi;     /* span of its PT_LOAD segments in memory */
  const void *mem_ehdr; /* the vDSO: parse from memory */
  bool closed;          /* dlclose'd (or no longer listed) */
  char build_id[129];   /* GNU build-id in hex, from the loaded notes ("" if none) */
  uint64_t file_off;    /* file offset of the first PT_LOAD (lo maps it) */
  uint64_t gen;         /* refresh in which it was first seen */
} kiln_module_t;

int kiln_modules_init(void) KILN_INTERNAL;
/* Re-reads the loaded modules (dl_iterate_phdr); new ones are added, gone
 * ones kept and marked closed. Any thread, not the handler. */
void kiln_modules_refresh(void) KILN_INTERNAL;
/* The module holding pc (open ones first), or NULL. Dump time. */
const kiln_module_t *kiln_modules_find(uintptr_t pc) KILN_INTERNAL;
/* Every module seen so far (closed ones too), in the order first seen:
 * the module map written beside the profiles. */
size_t kiln_modules_count(void) KILN_INTERNAL;
const kiln_module_t *kiln_modules_at(size_t i) KILN_INTERNAL;
size_t kiln_modules_index(const kiln_module_t *m) KILN_INTERNAL; /* m == kiln_modules_at(index) */
void kiln_modules_after_fork_child(void) KILN_INTERNAL;

/* --------------------------------------------------------- kiln_ehframe.c */
/* Function bounds from an ELF image's .eh_frame_hdr search table (and the
 * FDE headers it points to): they survive stripping. Dump time, normal
 * context; reads only the image it is given, bounds-checked. */
typedef struct kiln_ehframe {
  const char *img;
  size_t len;
  const uint8_t *table; /* NULL: no usable table */
  size_t count, entry_size;
  unsigned table_enc;
  uint64_t hdr_vaddr;
} kiln_ehframe_t;
/* 0, or -ENOENT / -EINVAL (no PT_GNU_EH_FRAME, or one kiln cannot search). */
int kiln_ehframe_open(kiln_ehframe_t *t, const char *img, size_t len) KILN_INTERNAL;
/* The function holding link-time address vaddr: [*start, *end). */
bool kiln_ehframe_find(const kiln_ehframe_t *t, uint64_t vaddr, uint64_t *start, uint64_t *end) KILN_INTERNAL;

/* --------------------------------------------------------- kiln_symbols.c */
/* A symbolizer: an owned context, opened by whoever names frames (a dump,
 * a leak report, a scan) and passed along; two threads may each use their
 * own at the same time. Loads each module's symbols on first use; names
 * pc-1 (see the glossary) as "function" (C++ demangled when the program
 * has __cxa_demangle), "module+0xSTART" of the function holding it (from
 * the unwind tables, when the file has no symbol for it), "module+0xOFF",
 * a perf-map name (JIT code), "name_[k]" (kernel) or "[unknown]". Normal
 * context only: not in the handler, not in a crash. */
typedef struct kiln_symbols kiln_symbols_t;
kiln_symbols_t *kiln_symbols_open(void) KILN_INTERNAL; /* NULL when out of memory */
/* Between hold and release (nested: the outermost counts), this thread's
 * opens share one session, and its closes leave it open: a dump reads
 * each module's symbols once. Normal context. */
void kiln_symbols_hold(void) KILN_INTERNAL;
void kiln_symbols_release(void) KILN_INTERNAL;
/* Around fork, from the profiler's handlers: the kept session is not being
 * changed at the fork (else the child reads its own). warm: read the
 * program's and libc's symbols into it, for the child to find; true when
 * that was done now, and the caller may add the modules of its stacks with
 * kiln_symbols_warm until the fork. */
bool kiln_symbols_fork_prepare(bool warm) KILN_INTERNAL;
void kiln_symbols_warm(const kiln_module_t *m) KILN_INTERNAL;
void kiln_symbols_fork_parent(void) KILN_INTERNAL;
void kiln_symbols_fork_child(void) KILN_INTERNAL;
void kiln_symbols_close(kiln_symbols_t *sy) KILN_INTERNAL;
void kiln_symbols_name(kiln_symbols_t *sy, uint64_t pc, kiln_buf_t *out) KILN_INTERNAL;
/* Addresses from here up are the kernel's (x86-64). */
#define KILN_KERNEL_START 0xffff800000000000ull
typedef enum {
  KILN_SYM_NONE = 0, /* outside every module: [unknown] */
  KILN_SYM_ELF,      /* a symbol of the module (or its debug file) */
  KILN_SYM_UNWIND,   /* no symbol: the function's start from .eh_frame_hdr */
  KILN_SYM_OFFSET,   /* in a module, in no known function */
  KILN_SYM_JIT,      /* a perf map entry (/tmp/perf-PID.map) */
  KILN_SYM_KERNEL,   /* a kernel address: /proc/kallsyms */
  KILN_SYM_MARKER,   /* a marker pc (kiln_types.h): offset holds it */
} kiln_symbol_source_t;
typedef struct kiln_symbol {
  kiln_symbol_source_t source;
  const kiln_module_t *module; /* ELF, UNWIND, OFFSET */
  uint64_t offset;   /* pc-1 as the module's link-time address (else pc-1) */
  uint64_t start;    /* the function's start, in the same terms (ELF, UNWIND, JIT) */
  const char *raw;   /* ELF, JIT: the name as stored (mangled), NUL-terminated */
} kiln_symbol_t;
/* What is known of pc; kiln_symbols_name is lookup + format. raw: the
 * stored name cleaned for a folded line (pprof's system_name). */
void kiln_symbols_lookup(kiln_symbols_t *sy, uint64_t pc, kiln_symbol_t *out) KILN_INTERNAL;
void kiln_symbols_format(kiln_symbols_t *sy, const kiln_symbol_t *s, kiln_buf_t *out) KILN_INTERNAL;
void kiln_symbols_raw(const kiln_symbol_t *s, kiln_buf_t *out) KILN_INTERNAL;
/* The kernel function holding addr (looked up as given) from
 * /proc/kallsyms, as flamegraph.pl writes kernel frames: "name_[k]".
 * -ENOENT when unknown (kallsyms hidden by kptr_restrict, or outside). */
int kiln_symbols_kernel(kiln_symbols_t *sy, uint64_t addr, kiln_buf_t *out) KILN_INTERNAL;
/* A frame inside the allocator's C++ wrapper (operator new, new[]):
 * allocation stacks are cut above it, to start at its caller. */
static inline bool kiln_symbols_is_alloc_wrapper(const char *name, size_t n) {
  return name != NULL && n >= 12 && __builtin_memcmp(name, "operator new", 12) == 0;
}
/* Whether symbolizers opened from now on demangle C++ names and decode
 * MiniDebugInfo (malloc and dlopen inside: off in a crash). */
void kiln_symbols_demangle(bool on) KILN_INTERNAL;
/* Whether kernel frames are named from now on (reading /proc/kallsyms
 * costs ~50 ms); off: they are left out of the folded lines, the
 * "[kernel]" frame stays. */
void kiln_symbols_kernel_names(bool on) KILN_INTERNAL;

/* --------------------------------------------------- kiln_sampler_signal.c */
/* The SIGPROF handler of the signal timers: the registers and the top of
 * the stack into the thread's ring. [signal] */
void kiln_sampler_on_signal(int sig, siginfo_t *si, void *uc) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* Set while the sampler runs; handlers in flight, waited for by
 * kiln_sampler_stop (acquire on entry, release on exit). */
extern _Atomic bool kiln_sampler_running KILN_INTERNAL;
extern _Atomic int kiln_sampler_handlers KILN_INTERNAL;

/* ---------------------------------------------------------- kiln_sampler.c */
/* Picks the timer (cfg->timer, or the best that works: perf, posix,
 * itimer) and starts it; perf opens the inherited rings on the calling
 * thread, the signal timers install the SIGPROF handler (the only
 * sigaction in the runtime). */
int kiln_sampler_start(const kiln_config_t *cfg) KILN_INTERNAL;
/* Arms/disarms the timer of one registered thread. */
int kiln_sampler_thread_arm(kiln_thread_t *t) KILN_INTERNAL;
void kiln_sampler_thread_disarm(kiln_thread_t *t) KILN_INTERNAL;
/* Stops sampling: perf rings drained into sink (may be NULL) and closed;
 * signal timers disarmed, and handlers still running waited for. */
void kiln_sampler_stop(kiln_perf_sink_fn sink, void *ctx) KILN_INTERNAL;
/* Emergencies (_exit, fatal signals): no more samples are taken or
 * counted; takes no lock. */
void kiln_sampler_halt(void) KILN_INTERNAL;
/* perf: whether the calling thread is sampled by an inherited event, and
 * (in a new thread) whether its creator was: then so is it. */
bool kiln_sampler_covered(void) KILN_INTERNAL;
/* perf: the process has one thread, followed by a ring of its own; before
 * it creates another, kiln_sampler_leave_solo opens the per-CPU inherited
 * rings on it and closes its own ring (drain it first). Normal context. */
bool kiln_sampler_solo(void) KILN_INTERNAL;
void kiln_sampler_leave_solo(void) KILN_INTERNAL;
void kiln_sampler_thread_inherit(bool parent_covered) KILN_INTERNAL;
/* Kernel time is in the samples. */
bool kiln_sampler_kernel(void) KILN_INTERNAL;
kiln_timer_kind_t kiln_sampler_timer(void) KILN_INTERNAL;
const char *kiln_sampler_timer_name(kiln_timer_kind_t k) KILN_INTERNAL;
/* Before exec: disarm everything and discard pending SIGPROFs so none can
 * reach the new image; after a failed exec, kiln_sampler_resume. */
void kiln_sampler_quiesce(void) KILN_INTERNAL;
void kiln_sampler_resume(void) KILN_INTERNAL;
/* The program's sigaction(SIGPROF, ...): kiln steps aside for a program
 * that installs its own disposition. real is libc's sigaction. */
int kiln_sampler_program_sigaction(const struct sigaction *act, struct sigaction *old,
                                   int (*real)(int, const struct sigaction *,
                                               struct sigaction *)) KILN_INTERNAL;
bool kiln_sampler_stepped_aside(void) KILN_INTERNAL;
/* Other signals kiln handles: the dump signal (chain false: refused with
 * -EBUSY when the program has a handler) and the fatal signals (chain
 * true: installed first in line; the program's action recorded and run by
 * kiln's handler). Normal context. */
int kiln_sampler_claim(int sig, void (*handler)(int, siginfo_t *, void *), bool chain) KILN_INTERNAL;
bool kiln_sampler_claimed(int sig) KILN_INTERNAL;
/* What the program set (or had) for a claimed signal. [signal] */
const struct sigaction *kiln_sampler_program_action(int sig) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* The program's disposition back in place. [signal] */
void kiln_sampler_unclaim(int sig) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* The program's sigaction on a claimed signal: answered with its view;
 * a chained signal stays kiln's, the dump signal is handed over. */
int kiln_sampler_program_claimed_sigaction(int sig, const struct sigaction *act,
                                           struct sigaction *old) KILN_INTERNAL;
/* In the child after fork: close the copies of the parent's event fds. */
void kiln_sampler_after_fork_child(void) KILN_INTERNAL;
/* True on the calling thread while it is inside the handler (tests). */
bool kiln_sampler_in_handler(void) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* Installs handler on a realtime signal the program leaves at SIG_DFL (or
 * finds it still installed from last time): the leak scan's "stop" signal.
 * SA_RESTART, every signal blocked while it runs. The signal number, or
 * -EBUSY when the program handles them all. Normal context. */
int kiln_sampler_stop_signal(void (*handler)(int, siginfo_t *, void *)) KILN_INTERNAL;

/* -------------------------------------------------------- kiln_collector.c */
/* hz 0: no CPU sampling (the thread then only serves dumps). Every
 * interval_ns (0: never) and on kiln_collector_request_dump, it calls dump
 * from its own thread. The thread is named "kiln-collector" and leaves
 * dump_signal unblocked, so that the signal sent to it alone (tgkill)
 * interrupts no thread of the program. cfg: the unwinder, the depth. */
int kiln_collector_start(const kiln_config_t *cfg, int hz, uint64_t interval_ns, int dump_signal,
                         void (*dump)(kiln_dump_reason_t reason)) KILN_INTERNAL;
/* Asks the collector for a dump now: async-signal-safe (the dump signal's
 * handler calls it). */
void kiln_collector_request_dump(void) KILN_SIGNAL_SAFE KILN_INTERNAL;
void kiln_collector_stop(void) KILN_INTERNAL; /* joins; drains what is left */
/* At process exit: tells the collector to stop, without waiting for it
 * (exit_group ends it), and drains what is left. */
void kiln_collector_abandon(void) KILN_INTERNAL;
/* Drains every ring into the stack table now (any thread but the handler). */
void kiln_collector_drain(void) KILN_INTERNAL;
/* The thread rings only, unless another consumer holds them (emergencies:
 * perf samples would need libunwind, whose locks a dying thread may hold). */
void kiln_collector_try_drain(void) KILN_INTERNAL;
/* Every ring, perf's too, unless another consumer holds them (a dump's
 * drains while it names stacks: kiln_symbols_set_tick). Normal context. */
void kiln_collector_drain_if_free(void) KILN_INTERNAL;
/* Unwinds and counts one raw sample (a kiln_perf_sink_fn). Reentrant;
 * normal context. */
void kiln_collector_sink(const kiln_raw_sample_t *s, void *ctx) KILN_INTERNAL;
/* The collector's cut of kiln's own frames (see kiln_collector.c) on a
 * stack unwound elsewhere (wall mode's blocked threads): the new depth.
 * pcs has room for one more. Not signal-safe; any thread. */
int kiln_collector_cut(uint64_t *pcs, int n) KILN_INTERNAL;
/* The threads seen in samples, most sampled first; *count: how many. */
typedef struct kiln_thread_seen {
  pid_t tid;
  const char *name;
  uint64_t samples, kernel;
} kiln_thread_seen_t;
void kiln_collector_threads(void (*fn)(const kiln_thread_seen_t *t, void *ctx), void *ctx,
                            uint64_t *count) KILN_INTERNAL;
bool kiln_collector_thread_seen(pid_t tid) KILN_INTERNAL;
/* A thread ends: its name for the list (normal context, the thread itself). */
void kiln_collector_thread_exit(pid_t tid, const char *name) KILN_INTERNAL;
/* A program thread is about to change its ids (the set*id interposers).
 * glibc makes every thread of the process take the same change and aborts
 * the process if one of them fails, and capabilities, keep-caps and the
 * secure bits are per thread: the collector takes on the caller's first,
 * so that it fails only where the caller fails. Waits for the collector
 * (at most 2 s); a no-op when nothing differs. Normal context. */
void kiln_collector_share_creds(void) KILN_INTERNAL;
typedef struct kiln_collector_stats {
  uint64_t own_samples; /* of the collector thread itself, dropped */
  uint64_t truncated;   /* stacks cut (depth limit, or deeper than the copy) */
  uint64_t copy_ended;  /* of them, cut where the stack copy ended */
  uint64_t kiln_frames; /* samples inside kiln's hooks, named as kiln's */
  uint64_t kiln_own;    /* samples in kiln's own code ("[kiln]": start-up, dumps) */
} kiln_collector_stats_t;
/* kiln's own start on thread tid ended at ns (CLOCK_MONOTONIC): its
 * samples from before are kiln's, "[kiln]", not unwound. */
void kiln_collector_own_until(pid_t tid, uint64_t ns) KILN_INTERNAL;
void kiln_collector_stats(kiln_collector_stats_t *out) KILN_INTERNAL;
double kiln_collector_cpu_seconds(void) KILN_INTERNAL;
/* Around fork: no drain (no unwinding) under way in another thread while
 * the program forks; the child's locks are new. */
void kiln_collector_fork_prepare(void) KILN_INTERNAL;
void kiln_collector_fork_parent(void) KILN_INTERNAL;
void kiln_collector_after_fork_child(void) KILN_INTERNAL;

/* ------------------------------------------------------------ kiln_wall.c */
/* Wall mode (see the file): every registered thread's wall time, running
 * (from the CPU samples) or waiting (measured by the collector's ticks,
 * with the stack the thread is blocked in), as KILN_COUNT_WALL samples at
 * cfg->wall_hz. The collector and kiln_wall call each other: it drives the
 * ticks and feeds the CPU samples, kiln_wall cuts kiln's frames with its
 * rule. None of it is signal-safe. */
int kiln_wall_start(const kiln_config_t *cfg) KILN_INTERNAL; /* normal; 0 / -ENOMEM */
void kiln_wall_stop(void) KILN_INTERNAL;
bool kiln_wall_on(void) KILN_INTERNAL;
/* Collector thread, under the collector's lock: a tick when one is due
 * (force: now, every thread looked at, idle ones too: before a dump). */
void kiln_wall_tick(bool force) KILN_INTERNAL;
/* When the next tick is due (CLOCK_MONOTONIC ns), UINT64_MAX when off. */
uint64_t kiln_wall_next_ns(void) KILN_INTERNAL;
/* A CPU sample of tid counted on stack_id (kiln_collector_sink). */
void kiln_wall_cpu_sample(pid_t tid, uint32_t stack_id) KILN_INTERNAL;
/* The calling thread ends (tid: its id): its wait since its last look is
 * counted. Normal context, on the thread itself. */
void kiln_wall_thread_exit(pid_t tid) KILN_INTERNAL;
typedef struct kiln_wall_stats {
  bool on, schedstat;
  int hz, probe_errno;
  uint64_t samples, wait_samples; /* wall samples counted; of them, off CPU */
  uint64_t ticks, probes, probe_failures, moved, full;
  uint64_t cpu_over; /* CPU samples beyond their thread's CPU clock, left out */
} kiln_wall_stats_t;
void kiln_wall_stats(kiln_wall_stats_t *out) KILN_INTERNAL;
void kiln_wall_after_fork_child(void) KILN_INTERNAL;

/* ------------------------------------------------------------ kiln_tree.c */
/* One summary for a profiled process tree (see the file's comment and the
 * README): the top process prints it; processes below write nothing to
 * stderr and report to the tree file named in KILN_TREE. */
int kiln_tree_start(const char *out_dir) KILN_INTERNAL; /* normal; 0 / -errno */
bool kiln_tree_is_top(void) KILN_SIGNAL_SAFE KILN_INTERNAL;
void kiln_tree_after_fork_child(void) KILN_INTERNAL;
/* A process below about to give up root (the setuid family's interposers):
 * the tree file is opened now and kept (close-on-exec, at the top of the
 * fd range), as the new user could not open root's file. Normal context. */
void kiln_tree_before_setuid(void) KILN_INTERNAL;
/* What a process below wrote at its end. [signal] */
typedef struct kiln_tree_rec {
  const char *prog;
  bool empty;          /* recorded nothing: no files written */
  unsigned files;
  uint64_t samples, allocs;
  int rc;              /* 0, or -errno of the write */
  int fatal_signal;
} kiln_tree_rec_t;
void kiln_tree_report(const kiln_tree_rec_t *r) KILN_SIGNAL_SAFE KILN_INTERNAL;
void kiln_tree_append(const char *rec, size_t n) KILN_SIGNAL_SAFE KILN_INTERNAL;
enum { KILN_TREE_PROGS = 8 };
typedef struct kiln_tree_totals {
  uint64_t processes, empty, files, failed, warnings, other;
  int nprogs;
  struct { char name[64]; uint64_t count; } progs[KILN_TREE_PROGS]; /* with files, by name */
  char first_warning[240];
} kiln_tree_totals_t;
/* The top: sums the records of the processes below (remove: and deletes
 * the tree file). 0, or -errno when there is none. */
int kiln_tree_collect(kiln_tree_totals_t *t, bool remove) KILN_INTERNAL;

/* ------------------------------------------------------------- kiln_out.c */
/* The output directory: reached from "/" with openat(O_NOFOLLOW), missing
 * parts created (0755); a symlink on the way is followed only when owned by
 * root or this process's user, or by the owner of a directory nobody else
 * may write (a link planted in /tmp by another user is refused). Walked at
 * start (kiln_out_open) and at each use, the descriptor closed after it
 * (the program sees none of kiln's); from a setuid on
 * (kiln_out_before_setuid) it is kept at the top of the fd range,
 * close-on-exec. Another directory (kiln_dump(dir)) is walked the same way.
 * Normal context; thread-safe. 0 / -errno, with the reason in
 * kiln_out_error. */
int kiln_out_open(const char *dir) KILN_INTERNAL;
/* dir held open (walked, made if need be). emergency: from an emergency
 * dump (no stdio, no malloc; the lock is only taken when free). */
int kiln_out_mkdirs(const char *dir, bool emergency) KILN_INTERNAL;
/* Between kiln_out_batch(true) and (false), a directory walked stays open:
 * a dump's files reach it with one walk, not one each (a fork child that
 * wrote 9 files walked /, dev, shm, out 9 times). Normal context; nests. */
void kiln_out_batch(bool on) KILN_INTERNAL;
/* Writes data to dir/name whole: a temporary with an unpredictable name
 * (getrandom; drawn again if taken), created O_CREAT|O_EXCL|O_NOFOLLOW
 * (0644), then renamed. 0 / -errno; nothing left on failure. emergency:
 * as for kiln_out_mkdirs. */
int kiln_out_write_file(const char *dir, const char *name, const char *data, size_t len,
                        bool emergency) KILN_INTERNAL;
/* Where files for dir really go (dir, or its uid-N subdirectory). */
const char *kiln_out_where(const char *dir) KILN_INTERNAL;
/* The last failure in words ("DIR/NAME is a directory"), else strerror. */
const char *kiln_out_error(int rc) KILN_INTERNAL;
/* A root process about to become uid (the setuid family's interposers):
 * when uid could not write the output directory, a subdirectory uid-N is
 * made and given to it now, and the process writes there from then on. */
void kiln_out_before_setuid(uid_t uid) KILN_INTERNAL;
/* fd moved to the top of the descriptor range (close-on-exec), out of the
 * way of a program that expects its low numbers free; fd itself if none. */
int kiln_out_high_fd(int fd) KILN_INTERNAL;
/* Set-user-ID or set-group-ID (AT_SECURE, or effective ids not the real
 * ones): kiln_start then needs an explicit output directory. */
bool kiln_out_secure(void) KILN_INTERNAL;

/* ---------------------------------------------------------- kiln_folded.c */
/* Renders the counts of each kind as folded text into outs[k] (root first,
 * merged, sorted; allocation stacks cut at the caller of operator new);
 * totals[k] gets the sum of its counts. One symbolization for all. When
 * stacks is not NULL it also gets the set's stacks file: the module map
 * and, per kind (named by kind_names[k]), every stack as frame ids with
 * each frame's module and address, so that the tool can add source lines
 * and inlined frames offline (format in kiln_folded.c). */
/* While this thread dumps and names stacks (kiln_folded_render, kiln_pprof, reading
 * kallsyms), fn is called every few milliseconds (NULL: never): the
 * profiler drains the sampler's rings there. */
void kiln_symbols_set_tick(void (*fn)(void)) KILN_INTERNAL;
void kiln_symbols_maybe_tick(void) KILN_INTERNAL;
void kiln_folded_render(const kiln_count_kind_t *kinds, const char *const *kind_names, int nkinds,
                        kiln_buf_t *outs, uint64_t *totals, kiln_buf_t *stacks) KILN_INTERNAL;

/* -------------------------------------------------------- kiln_suppress.c */
/* Leak suppressions, LeakSanitizer's format ("leak:PATTERN" lines, '#'
 * comments), matched against every frame's name and module path of a
 * block's allocation stack. Exit time, normal context. */
typedef struct kiln_suppress {
  kiln_buf_t text;    /* the file, lines NUL-terminated in place */
  kiln_buf_t offsets; /* size_t offsets of the patterns in text */
  size_t n;
} kiln_suppress_t;
/* 0, or -errno after one "kiln:" line (unreadable file, a line that is not
 * leak:PATTERN): then there are no suppressions. */
int kiln_suppress_load(const char *path, kiln_suppress_t *sup) KILN_INTERNAL;
/* LSan's template match: substring; '*' any run; '^' and '$' anchors. */
bool kiln_suppress_match(const char *templ, const char *name) KILN_INTERNAL;
/* Whether a pattern matches a frame of s, named with sy.
 * scratch: a buffer for names, reused. */
bool kiln_suppress_stack(const kiln_suppress_t *sup, const kiln_stack_t *s, kiln_symbols_t *sy,
                         kiln_buf_t *scratch) KILN_INTERNAL;
void kiln_suppress_free(kiln_suppress_t *sup) KILN_INTERNAL;

/* ------------------------------------------------------- kiln_allocmaps.c */
/* The mmap and munmap interposers, after a successful call (any thread,
 * from process start on; a spinlock held for one table update, no
 * allocation): the mappings made by the allocator's own library are
 * recorded, so that the leak scan never takes its bookkeeping for roots.
 * Until kiln_allocmaps_prepare knows the allocator, every caller's. */
void kiln_allocmaps_on_mmap(void *addr, size_t len, int prot, int flags, void *caller) KILN_INTERNAL;
void kiln_allocmaps_on_munmap(void *addr, size_t len) KILN_INTERNAL;
/* At start (normal context): keeps only the allocator library's records
 * (none for glibc's malloc, or for one linked into the program). */
void kiln_allocmaps_prepare(void) KILN_INTERNAL;
/* After kiln loads libunwind (normal context): the anonymous mappings the
 * library containing addr makes from now on (libunwind's caches, 256 KiB
 * and more) are kiln's, recorded lock-free (libunwind maps inside the
 * signal handler too) and listed by kiln_allocmaps_foreach: never the
 * program's roots. */
void kiln_allocmaps_kiln_library(const void *addr) KILN_INTERNAL;
/* Calls fn for each recorded mapping, under the table's lock. */
void kiln_allocmaps_foreach(void (*fn)(uintptr_t lo, uintptr_t hi, void *ctx), void *ctx) KILN_INTERNAL;

/* ------------------------------------------------------- kiln_stopworld.c */
/* Pausing every other thread of the process for the leak scan: parked in
 * a handler of a realtime signal (kiln_sampler_stop_signal), or, for a
 * thread that blocks it or does not park within one bounded wait (1 s for
 * all), stopped by a ptrace helper process (a raw clone: no atfork handler,
 * no exit signal). Normal context, one caller at a time. */
typedef struct kiln_stopworld_thread {
  pid_t tid;
  uintptr_t sp, tp;          /* its stack pointer, thread pointer (0: unknown) */
  const uint64_t *regs;      /* its general registers (NULL: none read) */
  size_t nregs;
} kiln_stopworld_thread_t;
typedef struct kiln_stopworld_counts {
  uint64_t parked, traced, unstopped;
} kiln_stopworld_counts_t;
/* Before anything is locked: the parking lot and the signal. 0, -ENOMEM,
 * or -EBUSY when the program handles every realtime signal. */
int kiln_stopworld_prepare(void) KILN_INTERNAL;
void kiln_stopworld_stop(void) KILN_INTERNAL;
/* The threads seen: i in [0, count); true with *out when i is stopped. */
int kiln_stopworld_count(void) KILN_INTERNAL;
bool kiln_stopworld_thread(int i, kiln_stopworld_thread_t *out) KILN_INTERNAL;
/* 1: tid is stopped; 0: seen but running on; -1: not seen. */
int kiln_stopworld_state(pid_t tid) KILN_INTERNAL;
void kiln_stopworld_counts(kiln_stopworld_counts_t *out) KILN_INTERNAL;
/* Lets them all go (parked ones resume, traced ones are detached). */
void kiln_stopworld_release(void) KILN_INTERNAL;
/* The calling thread's thread pointer (its TCB, x86-64 %fs:0). */
uintptr_t kiln_stopworld_thread_pointer(void) KILN_INTERNAL;

/* ------------------------------------------------------------ kiln_scan.c */
/* Leak classification, valgrind memcheck's way: each block live at exit is
 * definitely lost, indirectly lost, possibly lost or still reachable, by a
 * conservative scan from the roots (writable data of the loaded modules,
 * every thread's stack, registers and TLS, the program's own anonymous
 * mappings) through the heap, with the other threads parked in a signal
 * handler (kiln_sampler_stop_signal) or, when they block it, stopped by a
 * ptrace helper process. Exact
 * allocation tracking only. Normal context, hook guard held. */
typedef enum {
  KILN_LEAK_DEFINITE = 0,
  KILN_LEAK_INDIRECT,
  KILN_LEAK_POSSIBLE,
  KILN_LEAK_REACHABLE,
  KILN_LEAK_KINDS
} kiln_leak_kind_t;
typedef struct kiln_scan_totals {
  bool ran;                       /* a scan classified the live blocks */
  bool files;                     /* KILN_LEAK_CHECK=full: category files wanted */
  uint64_t bytes[KILN_LEAK_KINDS], count[KILN_LEAK_KINDS]; /* after suppression */
  uint64_t suppressed_bytes, suppressed_count;
  uint64_t blocks;                /* live blocks classified */
  uint64_t threads, threads_unstopped; /* other threads parked; gone silent */
  uint64_t threads_traced;        /* of the threads scanned, stopped with ptrace (they block the signal) */
  uint64_t threads_whole_stack;   /* of the unstopped, stacks scanned whole (no stack pointer) */
  double seconds;                 /* the scan, stop to classification */
} kiln_scan_totals_t;
/* Runs the scan when cfg asks for it (exact alloc mode, KILN_LEAK_CHECK not
 * off): fills the DEFINITE..REACHABLE counts of every stack (suppressed
 * stacks' moved out) and the totals. 0, 1 when not asked, or -errno. */
int kiln_scan_run(const kiln_config_t *cfg) KILN_INTERNAL;
/* An allocator leaves its free-list links in a block it hands out: glibc
 * the bin links of a chunk (fd, bk, fd_nextsize, bk_nextsize, and those
 * of the chunks it was split from), tcmalloc the next free object (the
 * first word). A block the
 * program never writes there would then seem to point at other blocks,
 * and a conservative scan cannot tell those words from the program's own
 * (valgrind, with an allocator of its own, never sees them). So while a
 * leak scan is due, the malloc-family hooks clear the first 64 bytes of a
 * new block, whose content is indeterminate (never for calloc, which
 * zeroes, or realloc, which keeps the content). Set by kiln_scan_prepare
 * at start. Hook context. */
extern bool kiln_scan_links KILN_INTERNAL;
static inline void kiln_scan_clear_link(void *p, size_t size) {
  if (!kiln_scan_links || p == NULL) return;
  if (KILN_LIKELY(size >= 64)) { /* four 16-byte stores, inline (a loop of 8 was ~45 instructions) */
    __builtin_memset(p, 0, 64);
    return;
  }
  void *volatile *w = p; /* volatile: the compiler must not make this a memset call */
  for (size_t i = 0, n = size / sizeof *w; i < n; i++) w[i] = NULL;
}
void kiln_scan_prepare(const kiln_config_t *cfg) KILN_INTERNAL; /* normal context, at start */

/* The last scan's totals (ran false when none). */
void kiln_scan_totals(kiln_scan_totals_t *out) KILN_INTERNAL;
/* The count kinds of a category (bytes, blocks). */
kiln_count_kind_t kiln_scan_kind_bytes(kiln_leak_kind_t k) KILN_INTERNAL;
kiln_count_kind_t kiln_scan_kind_count(kiln_leak_kind_t k) KILN_INTERNAL;

/* ----------------------------------------------------------- kiln_pprof.c */
/* One pprof profile (gzipped profile.proto) of the stack table: a sample
 * per stack with one value per kind (count x scale). Dump time. */
typedef struct kiln_pprof_spec {
  const kiln_count_kind_t *kinds;
  const uint64_t *scale;          /* per kind, 1 if NULL */
  const char *const *types, *const *units; /* sample_type per kind */
  int nkinds;
  const char *period_type, *period_unit;
  int64_t period, time_nanos, duration_nanos;
  bool alloc;                     /* stacks start at the caller of operator new */
} kiln_pprof_spec_t;
void kiln_pprof_render(const kiln_pprof_spec_t *spec, kiln_buf_t *out) KILN_INTERNAL;

/* ---------------------------------------------------------- kiln_health.c */
enum { KILN_HEALTH_WARNINGS = 8, KILN_HEALTH_MODULES = 4 };
typedef struct kiln_health_input {
  const kiln_config_t *cfg;
  uint64_t samples;
  double counted_seconds; /* CPU time the timer counts, the profiler's own out */
  uint64_t dropped, truncated, skipped, table_full, memory_bytes, threads;
  uint64_t copy_ended;    /* of truncated: cut where the stack copy ended */
  uint64_t copy_bytes;    /* the largest stack copy a sample takes */
  bool stepped_aside, dump_signal_refused, crash;
  bool kernel_missing;        /* kernel time could not be sampled */
  double user_seconds, sys_seconds;
  uint64_t unsampled;         /* live threads with CPU time and no sample */
  double unsampled_seconds;
  const char *unsampled_names;
  uint64_t kiln_hook_samples; /* samples inside kiln's hooks */
  uint64_t wall_probe_failures; /* wall mode: thread states that could not be read */
  int wall_probe_errno;
  uint64_t mem_refused;       /* kiln's mmaps refused (kiln_mem_refused) */
} kiln_health_input_t;
typedef struct kiln_health {
  double expected_samples, delivered_share;
  uint64_t memory_bytes;
  char allocator[96];
  int nmodules;
  struct { char name[96]; double share; } modules[KILN_HEALTH_MODULES];
  int nwarnings;
  char warnings[KILN_HEALTH_WARNINGS][200];
} kiln_health_t;
/* Dump time (symbolizes, except in crash mode). */
void kiln_health_assess(const kiln_health_input_t *in, kiln_health_t *out) KILN_INTERNAL;
void kiln_health_json(kiln_buf_t *b, const kiln_health_t *h) KILN_INTERNAL;

/* ---------------------------------------------------- kiln_crash_signal.c */
/* The handlers kiln_crash.c claims (what each does: kiln_crash.c). The dump
 * signal's and the exit signals' are [signal]; the fatal one runs the
 * emergency dump (kiln_profiler_emergency), then the program's action. */
void kiln_crash_on_dump_signal(int sig, siginfo_t *si, void *uc) KILN_SIGNAL_SAFE KILN_INTERNAL;
void kiln_crash_on_fatal(int sig, siginfo_t *si, void *uc) KILN_INTERNAL;
void kiln_crash_on_exit_signal(int sig, siginfo_t *si, void *uc) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* The exit signals whose handler is kiln's now. */
extern _Atomic bool kiln_crash_exit_held[65] KILN_INTERNAL;

/* ----------------------------------------------------------- kiln_crash.c */
/* The dump signal and the fatal signals (SIGSEGV, SIGABRT, SIGBUS, SIGFPE,
 * SIGILL): handlers claimed at start through the sampler. */
void kiln_crash_start(const kiln_config_t *cfg) KILN_INTERNAL;
bool kiln_crash_dump_signal_on(void) KILN_INTERNAL;
/* The exit signals (SIGHUP, SIGINT, SIGQUIT, SIGTERM) are kiln's only while
 * the program leaves them at SIG_DFL. The program's sigaction on one:
 * answered with its view; a handler or SIG_IGN is installed as it is, and
 * SIG_DFL again gives the signal back to kiln. Normal context. */
bool kiln_crash_is_exit_signal(int sig) KILN_INTERNAL;
int kiln_crash_program_sigaction(int sig, const struct sigaction *act, struct sigaction *old) KILN_INTERNAL;

/* --------------------------------------------------------- kiln_profiler.c */
/* How a dump may behave, chosen by its call site. Normal: locks, malloc
 * (the demangler), the loader (module refresh, dladdr). Emergency (fatal
 * signals, _exit, an exit signal that cannot be handed to the collector):
 * no lock waited on, no malloc, no stdio/locale (kiln_fmt), no loader call:
 * only system calls, atomics and kiln's own code. */
typedef enum { KILN_DUMP_MODE_NORMAL = 0, KILN_DUMP_MODE_EMERGENCY } kiln_dump_mode_t;
/* _exit and fatal signals: the profile in emergency mode (sig: the fatal
 * signal, 0 for _exit). [signal] */
void kiln_profiler_emergency(kiln_dump_reason_t reason, int sig) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* SIGINT, SIGTERM, SIGHUP, SIGQUIT with their default action, from kiln's
 * handler on any thread: the profile is written (by the collector in
 * normal mode, waited for at most ~10 s; else here in emergency mode); the
 * caller then ends the process as the signal would. [signal] */
void kiln_profiler_exit_signal(int sig) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* This process is the one the profiler state belongs to (not a vfork
 * child sharing the memory). [signal] */
bool kiln_profiler_is_self(void) KILN_SIGNAL_SAFE KILN_INTERNAL;
/* Exact allocation tracking running (started alone if need be, for the
 * checks of kiln_check.c): 0, or -EINVAL when the heap is sampled. */
int kiln_profiler_ensure_heap(void) KILN_INTERNAL;
/* Starts from the environment (the preload's constructor). */
void kiln_profiler_start_env(void) KILN_INTERNAL;
/* At exit: stop, dump, summary line. Idempotent. */
void kiln_profiler_at_exit(void) KILN_INTERNAL;
/* Thread lifecycle, from the preload's pthread_create wrapper. */
/* parent_covered: kiln_sampler_covered() in the creating thread. */
/* The pthread_create interposer, before it creates a thread: a process
 * sampled by one ring of its own turns to rings that follow every thread. */
void kiln_profiler_before_thread(void) KILN_INTERNAL;
void kiln_profiler_thread_begin(bool parent_covered) KILN_INTERNAL;
void kiln_profiler_thread_end(void) KILN_INTERNAL;
/* exec wrappers: dump, quiesce; on failure, resume. path: what is exec'd
 * (NULL for fexecve); an exec that cannot succeed (no executable file
 * there) skips the dump. */
void kiln_profiler_before_exec(const char *path) KILN_INTERNAL;
/* Whether this process's execs are kiln's to prepare (active, not a vfork
 * child); the preparation itself, for an exec the caller knows may work. */
bool kiln_profiler_exec_watched(void) KILN_INTERNAL;
void kiln_profiler_exec_dump(void) KILN_INTERNAL;
void kiln_profiler_exec_failed(void) KILN_INTERNAL;
bool kiln_profiler_active(void) KILN_INTERNAL;

#endif
