/* kiln_types.h — the runtime's shared types and constants.
 * Included by every runtime module; declares no functions.
 *
 * Glossary
 *   pc         a code address as stored: return addresses as the unwinder
 *              gives them, the interrupted instruction stored as ip+1, so
 *              that every frame is looked up at pc-1 the same way.
 *   stack      an array of pcs, leaf first.
 *   sample     one tick of a thread's CPU clock: its registers and a copy
 *              of the top of its user stack (and, in the kernel, the kernel
 *              call chain), unwound later by the collector into a stack.
 *   ring       a queue of samples: the kernel's perf ring (per CPU, or per
 *              thread), or, with the signal timers, a per-thread
 *              single-producer (the handler), single-consumer ring.
 *   marker pc  a pc below 16 that stands for a frame of kiln's making:
 *              [kernel], [kiln: allocation tracking].
 *   stack_id   the reference of an interned stack in the stack table.
 *   slot       a thread's entry in the thread registry: its ring, its timer,
 *              its counters.
 *   module     a loaded ELF object (executable, shared library, vDSO); kept
 *              after dlclose so that old samples are still named.
 *   collector  the runtime's own thread that drains rings into the table.
 *   dump       symbolize the table and write the folded files.
 */
#ifndef KILN_TYPES_H
#define KILN_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Marks a function that may run inside the SIGPROF handler: it must be
 * async-signal-safe and call only other KILN_SIGNAL_SAFE functions, atomics,
 * raw system calls and libunwind's local unwinding. */
#define KILN_SIGNAL_SAFE

#define KILN_INTERNAL __attribute__((visibility("hidden")))
/* Code of the malloc hooks lives in its own section, so that unwinding from
 * a hook can cut every frame of kiln's own, whatever the inlining. */
#define KILN_HOOK_TEXT __attribute__((section("kiln_hooks"), noinline))
/* The interposers themselves (malloc, free, ...), a section of their own
 * beside it: a sample whose leafmost kiln frame is one of them is in the
 * allocator it forwards to (the program's time), not in kiln's records. */
#define KILN_HOOK_ENTRY_TEXT __attribute__((section("kiln_hooks_entry"), noinline))
/* Wrappers that forward to libc (and the new-thread trampoline): their
 * frames are left out of CPU samples. */
#define KILN_PASS_TEXT __attribute__((section("kiln_pass"), noinline))
#define KILN_EXPORT __attribute__((visibility("default")))
#define KILN_LIKELY(x) __builtin_expect(!!(x), 1)
#define KILN_UNLIKELY(x) __builtin_expect(!!(x), 0)

enum {
  KILN_HZ_DEFAULT = 999,
  KILN_HZ_MIN = 99,
  KILN_HZ_MAX = 10000,
  KILN_WALL_HZ_DEFAULT = 99,
  KILN_WALL_HZ_MIN = 1,
  KILN_WALL_HZ_MAX = 1000,
  KILN_DEPTH_DEFAULT = 256,
  KILN_DEPTH_MIN = 4,
  KILN_DEPTH_MAX = 1024,
  /* Frames the handler may see above the interrupted one (the handler, the
   * unwinder, the signal trampoline): unwound and then cut off. */
  KILN_UNWIND_SLACK = 32,
  KILN_RING_WORDS = 1 << 15, /* 256 KiB a thread */
  KILN_STACK_COPY = 16384,   /* bytes of stack the signal handler copies */
  /* Bytes of user stack perf copies with each sample: as much as a sample
   * record holds (the kernel trims it to fit), so that stacks with large
   * frames (interpreters, compilers, big local buffers) stay whole. */
  KILN_STACK_COPY_PERF = 65528,
  KILN_REGS = 17,            /* kiln_regs_t: libunwind's x86-64 numbering */
  KILN_REG_RBP = 6,
  KILN_REG_RSP = 7,
  KILN_REG_RIP = 16,
  KILN_KERNEL_FRAMES = 48,   /* kernel frames kept above [kernel] */
  KILN_THREADS_MAX = 4096,   /* threads sampled at the same time */
};

/* Flags of a sample and of an interned stack (part of its identity). */
enum {
  KILN_STACK_TRUNCATED = 1u << 0, /* deeper than max_depth: marker at the root */
  KILN_STACK_SKIPPED = 1u << 1,   /* unwinding was unsafe here: leaf only */
  KILN_STACK_FULL = 1u << 2,      /* the table was full: counts land here */
};
/* A sample's only, never interned: with KILN_STACK_TRUNCATED, the unwind
 * ran out of the stack copy (a frame larger than the copy), not of depth. */
enum { KILN_STACK_COPY_ENDED = 1u << 3 };
/* Flags of a ring record only. */
enum {
  KILN_RING_RAW = 1u << 7, /* registers, a length and a stack copy, not pcs */
};

/* Marker pcs (looked up at pc-1 like any pc, so never a real address). */
enum {
  KILN_PC_KERNEL = 1,     /* "[kernel]": the sample was taken in the kernel */
  KILN_PC_KILN_ALLOC = 2, /* "[kiln: allocation tracking]": inside kiln's malloc hooks */
  KILN_PC_KILN = 3,       /* "[kiln]": inside kiln's own code (start, dumps) */
  /* The pprof writer's flag frames ("[kiln: truncated]", ...: kiln_pprof.c):
   * pcs of their own, so that no location is both a marker and a flag. */
  KILN_PC_FLAG_TRUNCATED = 13,
  KILN_PC_FLAG_SKIPPED = 14,
  KILN_PC_FLAG_FULL = 15,
  /* Lock mode (kiln_lock.c): the leaf of a wait, what was waited for. */
  KILN_PC_LOCK_MUTEX = 8,    /* "[lock: mutex]" */
  KILN_PC_LOCK_RDLOCK = 9,   /* "[lock: rwlock read]" */
  KILN_PC_LOCK_WRLOCK = 10,  /* "[lock: rwlock write]" */
  KILN_PC_LOCK_COND = 11,    /* "[lock: cond wait]" */
  KILN_PC_LOCK_SEM = 12,     /* "[lock: sem]" */
  KILN_PC_MARKERS = 16,
};
/* Wall mode's wait markers, "[wait: NAME]" (kiln_wall.c): a pc per system
 * call number from KILN_PC_WAIT, then the waits that are no system call.
 * All inside the first page, which is never mapped, so never a real pc. */
enum {
  KILN_PC_WAIT = 0x100,                   /* + syscall number: "[wait: futex]" */
  KILN_PC_WAIT_SYSCALLS = 0x600,          /* numbers below this are named */
  KILN_PC_WAIT_CPU = KILN_PC_WAIT + 0x600, /* "[wait: cpu]": runnable, not running */
  KILN_PC_WAIT_KERNEL,                    /* "[wait: kernel]": blocked outside a system call */
  KILN_PC_WAIT_UNKNOWN,                   /* "[wait: unknown]": off CPU, where not seen */
  KILN_PC_WAIT_END,
};
static inline bool kiln_pc_is_wait(uint64_t pc) { return pc >= KILN_PC_WAIT && pc < KILN_PC_WAIT_END; }
#define KILN_PC_KERNEL_MIN 0xffff800000000000ull /* kernel code addresses */

/* User registers of a sample, in libunwind's x86-64 order (RAX, RDX, RCX,
 * RBX, RSI, RDI, RBP, RSP, R8-R15, RIP). */
typedef struct kiln_regs {
  uint64_t r[KILN_REGS];
} kiln_regs_t;

/* KILN_CPU: which CPU time the perf timer samples. */
typedef enum { KILN_CPU_ALL = 0, KILN_CPU_USER } kiln_cpu_time_t;

/* What a stack's counters count. */
typedef enum {
  KILN_COUNT_CPU = 0,      /* CPU samples */
  KILN_COUNT_ALLOC_BYTES,  /* bytes allocated over the run */
  KILN_COUNT_ALLOC_COUNT,  /* allocations over the run */
  KILN_COUNT_FREED_BYTES,  /* of those, and of the base, bytes freed */
  KILN_COUNT_FREED_COUNT,
  KILN_COUNT_BASE_BYTES,   /* live when the run began here (inherited at fork) */
  KILN_COUNT_BASE_COUNT,
  KILN_COUNT_LIVE_BYTES,   /* base + alloc - freed: computed at dump time */
  KILN_COUNT_LIVE_COUNT,
  KILN_COUNT_PEAK_BYTES,   /* live bytes when the heap last peaked (lazy, see kiln_heap.c) */
  KILN_COUNT_PEAK_EPOCH,   /* the peak that PEAK_BYTES belongs to */
  /* Blocks freed by the thread that allocated them before it allocated
   * again (heaptrack's temporary allocations). The kinds the hooks bump
   * (ALLOC_* to TEMP_COUNT) are kept together: two cache lines a stack. */
  KILN_COUNT_TEMP_COUNT,
  /* Blocks live at exit by reachability (kiln_scan.c; valgrind's words): */
  KILN_COUNT_DEFINITE_BYTES,  /* definitely lost: no pointer reaches it */
  KILN_COUNT_DEFINITE_COUNT,
  KILN_COUNT_INDIRECT_BYTES,  /* indirectly lost: reached only from lost blocks */
  KILN_COUNT_INDIRECT_COUNT,
  KILN_COUNT_POSSIBLE_BYTES,  /* possibly lost: only interior pointers reach it */
  KILN_COUNT_POSSIBLE_COUNT,
  KILN_COUNT_REACHABLE_BYTES, /* still reachable: a pointer to its start reaches it */
  KILN_COUNT_REACHABLE_COUNT,
  /* Interval dumps in delta mode: what the last one wrote (MARK_*) and
   * what this one writes (DELTA_* = current - mark, set at dump time). */
  KILN_COUNT_MARK_CPU,
  KILN_COUNT_MARK_ALLOC_BYTES,
  KILN_COUNT_MARK_ALLOC_COUNT,
  KILN_COUNT_DELTA_CPU,
  KILN_COUNT_DELTA_ALLOC_BYTES,
  KILN_COUNT_DELTA_ALLOC_COUNT,
  /* Wall mode: samples at KILN_WALL_HZ of every thread, running or not
   * (kiln_wall.c), and its interval marks. */
  KILN_COUNT_WALL,
  KILN_COUNT_MARK_WALL,
  KILN_COUNT_DELTA_WALL,
  /* Lock mode: nanoseconds waited and waits, per stack of the waiter
   * (kiln_lock.c), with their interval marks and deltas. */
  KILN_COUNT_LOCK_WAIT_NS,
  KILN_COUNT_LOCK_WAIT_COUNT,
  KILN_COUNT_MARK_LOCK_WAIT_NS,
  KILN_COUNT_MARK_LOCK_WAIT_COUNT,
  KILN_COUNT_DELTA_LOCK_WAIT_NS,
  KILN_COUNT_DELTA_LOCK_WAIT_COUNT,
  KILN_COUNT_KINDS
} kiln_count_kind_t;

typedef enum { KILN_UNWIND_LIBUNWIND = 0, KILN_UNWIND_FP = 1 } kiln_unwind_kind_t;

typedef enum {
  KILN_TIMER_AUTO = 0,
  KILN_TIMER_PERF,   /* perf_event cpu-clock, samples in mapped rings, no signal */
  KILN_TIMER_POSIX,  /* per-thread timer_create(thread CPU clock) */
  KILN_TIMER_ITIMER, /* process-wide setitimer(ITIMER_PROF) */
} kiln_timer_kind_t;

enum { KILN_MODE_CPU_BIT = 1u << 0, KILN_MODE_ALLOC_BIT = 1u << 1, KILN_MODE_WALL_BIT = 1u << 2, KILN_MODE_LOCK_BIT = 1u << 3 };

/* Why a profile set is written (meta.json "dump_reason"). */
typedef enum {
  KILN_DUMP_EXIT = 0,     /* normal exit: the untagged set */
  KILN_DUMP_INTERVAL,     /* KILN_INTERVAL */
  KILN_DUMP_SIGNAL,       /* KILN_DUMP_SIGNAL */
  KILN_DUMP_API,          /* kiln_dump() */
  KILN_DUMP_EXEC,         /* before exec */
  KILN_DUMP_UNDERSCORE_EXIT, /* _exit / _Exit */
  KILN_DUMP_FATAL,        /* a fatal signal */
} kiln_dump_reason_t;

/* KILN_LEAK_CHECK: what the exit-time reachability scan does (exact
 * allocation tracking only). */
typedef enum {
  KILN_LEAK_CHECK_FULL = 0, /* classify; category files, meta and summary */
  KILN_LEAK_CHECK_SUMMARY,  /* classify; totals in meta and summary only */
  KILN_LEAK_CHECK_OFF,      /* no scan */
} kiln_leak_check_t;

/* The runtime's configuration, from kiln_options_t or the environment. */
typedef struct kiln_config {
  unsigned mode;           /* KILN_MODE_*_BIT */
  int hz;                  /* requested samples per CPU-second */
  int wall_hz;             /* KILN_WALL_HZ: wall samples per thread-second */
  int max_depth;           /* frames kept per stack */
  kiln_unwind_kind_t unwind;
  kiln_timer_kind_t timer;
  kiln_cpu_time_t cpu_time; /* KILN_CPU: user and kernel (default), or user only */
  bool quiet;              /* no summary line */
  uint64_t alloc_sample;   /* 0: every allocation; else mean bytes between samples */
  uint64_t interval_ns;    /* KILN_INTERVAL: a profile set every interval; 0 none */
  bool interval_cumulative; /* KILN_INTERVAL_MODE=cumulative (default: delta) */
  int dump_signal;         /* KILN_DUMP_SIGNAL: a set on demand; 0 none */
  bool pprof;              /* KILN_PPROF: pprof files with each set */
  kiln_leak_check_t leak_check;
  char suppress[4096];     /* KILN_SUPPRESS: leak suppressions file, "" for none */
  char out_dir[4096];      /* absolute, resolved at start */
} kiln_config_t;

#endif
