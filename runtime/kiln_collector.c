/* kiln_collector.c — the runtime's own thread: every few milliseconds it
 * reads the samples of the perf rings and of the threads' signal rings,
 * unwinds each from its stack copy, names kiln's own time as kiln's, and
 * counts the stack in the stack table; it releases the slots of threads
 * that ended and notices foreign threads that are gone. All signals are
 * blocked in it, its own samples are dropped (counted), and its CPU time is
 * measured so that it can be reported and kept out of the delivered rate.
 * Draining is serialised by one mutex: the collector and a dump are the
 * rings' only consumers; kiln_collector_sink is reentrant. */
#include "kiln_internal.h"

enum { KILN_COLLECTOR_STACK = 1 << 20 };

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static struct {
  pthread_t thread;
  bool started;
  bool abandoned; /* told to stop at exit, not joined (kiln_collector_abandon) */
  _Atomic int stop; /* futex word (also woken for a dump request) */
  _Atomic int dump_requested;
  long period_ns;
  uint64_t interval_ns;
  void (*dump)(kiln_dump_reason_t reason);
  int dump_signal; /* the one signal this thread takes, 0 none */
  clockid_t cpu_clock;
  double cpu_seconds; /* of collectors that have stopped */
  _Atomic pid_t tid;  /* its own samples are the profiler's, not the program's */
  pid_t pid;
  kiln_unwind_kind_t unwind;
  int max_depth;
  _Atomic uint64_t own_samples, truncated, copy_ended, kiln_frames, kiln_own;
  /* kiln's own start on this thread ended then (CLOCK_MONOTONIC ns):
   * its samples from before are kiln's, counted without unwinding. */
  _Atomic pid_t own_tid;
  _Atomic uint64_t own_until;
  uint64_t record[KILN_REGS + 1 + KILN_STACK_COPY / 8 + 8]; /* a raw ring record */
  /* Credentials to take on (kiln_collector_share_creds): asked by a
   * program thread, done by the collector (a futex word). */
  _Atomic unsigned creds_asked, creds_done;
  pid_t creds_tid;
  int creds_keep, creds_bits; /* the caller's; the collector's own below */
  _Atomic int own_keep, own_bits;
} kiln_collector;
static pthread_mutex_t kiln_collector_creds_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t kiln_collector_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------ threads seen */
/* tid -> samples, kernel samples, name: the threads of the profile, in an
 * open-addressing table that doubles at 70% load (mmap memory), under its
 * own lock (samples are ingested by the collector and by stops). */
typedef struct kiln_tid_entry {
  pid_t tid;
  bool named;
  char name[16];
  uint64_t samples, kernel;
} kiln_tid_entry_t;

static struct {
  kiln_tid_entry_t *slots;
  size_t cap, used;
} kiln_tids;
static pthread_mutex_t kiln_tids_lock = PTHREAD_MUTEX_INITIALIZER;

static void kiln_tids_name(kiln_tid_entry_t *e) {
  char path[64];
  kiln_fmt(path, sizeof path, "/proc/self/task/%d/comm", (int)e->tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, e->name, sizeof e->name - 1);
  close(fd);
  if (n <= 0) return;
  if (e->name[n - 1] == '\n') n--;
  e->name[n] = '\0';
  e->named = true;
}

static kiln_tid_entry_t *kiln_tids_slot(kiln_tid_entry_t *slots, size_t cap, pid_t tid) {
  size_t i = ((size_t)tid * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
  while (slots[i].tid != 0 && slots[i].tid != tid) i = (i + 1) & (cap - 1);
  return &slots[i];
}

static void kiln_tids_add(pid_t tid, bool kernel, uint64_t count, const char *name) {
  pthread_mutex_lock(&kiln_tids_lock);
  if (kiln_tids.used * 10 >= kiln_tids.cap * 7) {
    size_t cap = kiln_tids.cap ? kiln_tids.cap * 2 : 256;
    kiln_tid_entry_t *slots = kiln_mem_map(cap * sizeof *slots);
    if (slots != NULL) {
      for (size_t i = 0; i < kiln_tids.cap; i++)
        if (kiln_tids.slots[i].tid != 0) *kiln_tids_slot(slots, cap, kiln_tids.slots[i].tid) = kiln_tids.slots[i];
      if (kiln_tids.slots) kiln_mem_unmap(kiln_tids.slots, kiln_tids.cap * sizeof *slots);
      kiln_tids.slots = slots;
      kiln_tids.cap = cap;
    }
  }
  if (kiln_tids.slots != NULL && kiln_tids.used < kiln_tids.cap - 1) {
    kiln_tid_entry_t *e = kiln_tids_slot(kiln_tids.slots, kiln_tids.cap, tid);
    if (e->tid == 0) {
      e->tid = tid;
      kiln_tids.used++;
    }
    e->samples += count;
    if (kernel) e->kernel += count;
    if (name != NULL && !e->named) {
      kiln_fmt(e->name, sizeof e->name, "%s", name);
      e->named = true;
    }
  }
  pthread_mutex_unlock(&kiln_tids_lock);
}

/* A thread that ends says its name (no file to open: the collector never
 * takes a descriptor from the program while it runs). */
void kiln_collector_thread_exit(pid_t tid, const char *name) { kiln_tids_add(tid, false, 0, name); }

static int kiln_tids_cmp(const void *a, const void *b) {
  const kiln_tid_entry_t *x = a, *y = b;
  return x->samples > y->samples ? -1 : x->samples < y->samples;
}

void kiln_collector_threads(void (*fn)(const kiln_thread_seen_t *t, void *ctx), void *ctx, uint64_t *count) {
  pthread_mutex_lock(&kiln_tids_lock);
  *count = 0;
  kiln_buf_t all = {0};
  for (size_t i = 0; i < kiln_tids.cap; i++) {
    kiln_tid_entry_t *e = &kiln_tids.slots[i];
    if (e->tid == 0 || e->samples == 0) continue;
    if (fn != NULL) kiln_tids_name(e); /* its name now, if it is still alive */
    kiln_buf_put(&all, (const char *)e, sizeof *e);
    (*count)++;
  }
  pthread_mutex_unlock(&kiln_tids_lock);
  if (all.failed) {
    kiln_buf_free(&all);
    return;
  }
  size_t n = all.len / sizeof(kiln_tid_entry_t);
  kiln_tid_entry_t *list = (kiln_tid_entry_t *)all.data;
  kiln_sort(list, n, sizeof *list, kiln_tids_cmp);
  for (size_t i = 0; i < n && fn != NULL; i++) {
    kiln_thread_seen_t t = {list[i].tid, list[i].named ? list[i].name : "?", list[i].samples, list[i].kernel};
    fn(&t, ctx);
  }
  kiln_buf_free(&all);
}

bool kiln_collector_thread_seen(pid_t tid) {
  pthread_mutex_lock(&kiln_tids_lock);
  kiln_tid_entry_t *e = kiln_tids.slots != NULL ? kiln_tids_slot(kiln_tids.slots, kiln_tids.cap, tid) : NULL;
  bool seen = e != NULL && e->tid == tid && e->samples > 0;
  pthread_mutex_unlock(&kiln_tids_lock);
  return seen;
}

/* ------------------------------------------------------------ ingest */

/* The bounds of the kiln_hooks section (made by the linker). */
extern const char __start_kiln_hooks[] KILN_INTERNAL;
extern const char __stop_kiln_hooks[] KILN_INTERNAL;

/* Weak: a program that links the runtime without kiln's interposers (its
 * own malloc) has no such section; then no pc is in it. */
extern const char __start_kiln_hooks_entry[] __attribute__((weak)) KILN_INTERNAL;
extern const char __stop_kiln_hooks_entry[] __attribute__((weak)) KILN_INTERNAL;

static inline bool kiln_collector_in_entry(uint64_t pc) {
  return pc > (uintptr_t)__start_kiln_hooks_entry && pc <= (uintptr_t)__stop_kiln_hooks_entry;
}

static inline bool kiln_collector_in_hooks(uint64_t pc) {
  return (pc > (uintptr_t)__start_kiln_hooks && pc <= (uintptr_t)__stop_kiln_hooks) || kiln_collector_in_entry(pc);
}

extern const char __start_kiln_pass[] KILN_INTERNAL;
extern const char __stop_kiln_pass[] KILN_INTERNAL;

static inline bool kiln_collector_in_pass(uint64_t pc) {
  return pc > (uintptr_t)__start_kiln_pass && pc <= (uintptr_t)__stop_kiln_pass;
}

/* kiln's own code, when it is a module of its own (libkiln.so): found
 * once from the address of a function of kiln's. */
static struct {
  uint64_t lo, hi;
  uint64_t unw[2][2]; /* libunwind's own code, loaded for kiln (its thread-exit work is kiln's) */
  int nunw;
  bool done;
} kiln_collector_self;

static int kiln_collector_self_span(struct dl_phdr_info *info, size_t size, void *ctx) {
  (void)size, (void)ctx;
  uint64_t me = (uint64_t)(uintptr_t)&kiln_collector_sink, lo = UINT64_MAX, hi = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *p = &info->dlpi_phdr[i];
    if (p->p_type != PT_LOAD || !(p->p_flags & PF_X)) continue;
    uint64_t start = info->dlpi_addr + p->p_vaddr;
    if (start < lo) lo = start;
    if (start + p->p_memsz > hi) hi = start + p->p_memsz;
  }
  const char *slash = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
  if (slash != NULL && strncmp(slash + 1, "libunwind", 9) == 0 && kiln_collector_self.nunw < 2) {
    kiln_collector_self.unw[kiln_collector_self.nunw][0] = lo;
    kiln_collector_self.unw[kiln_collector_self.nunw++][1] = hi;
  }
  if (me < lo || me >= hi) return 0;
  /* Linked into the program (libkiln.a): the span is the program's. */
  if (info->dlpi_name != NULL && info->dlpi_name[0] != '\0') {
    kiln_collector_self.lo = lo;
    kiln_collector_self.hi = hi;
  }
  return 0; /* on: libunwind may come later in the list */
}

static inline bool kiln_collector_in_self(uint64_t pc) {
  for (int i = 0; i < kiln_collector_self.nunw; i++)
    if (pc > kiln_collector_self.unw[i][0] && pc <= kiln_collector_self.unw[i][1]) return true;
  return pc > kiln_collector_self.lo && pc <= kiln_collector_self.hi;
}

/* Time inside kiln is kiln's, named as such on the program's stack:
 *   - the forwarding wrappers' frames are left out (stacks read as they
 *     would without kiln);
 *   - from the outermost frame of the malloc hooks (the interposer, e.g.
 *     malloc) leafwards: that frame and one "[kiln: allocation tracking]";
 *   - from the outermost other frame of kiln's (start-up, dumps) on: one
 *     "[kiln]" frame.
 * pcs has room for one more. */
extern const char __start_kiln_learn[] KILN_INTERNAL;
extern const char __stop_kiln_learn[] KILN_INTERNAL;

static int kiln_collector_cut_kiln(uint64_t *pcs, int n) {
  /* On the stack where kiln's hooks learn unwind rules: kiln's time, with
   * no way back into the program's stack. */
  for (int i = 0; i < n; i++)
    if (pcs[i] > (uintptr_t)__start_kiln_learn && pcs[i] <= (uintptr_t)__stop_kiln_learn) {
      atomic_fetch_add_explicit(&kiln_collector.kiln_frames, 1, memory_order_relaxed);
      pcs[0] = KILN_PC_KILN_ALLOC;
      return 1;
    }
  /* The way into kiln's hooks is an interposer (malloc, free, ...) or a
   * forwarding wrapper (the lock functions call kiln_lock_record): a
   * rootmost hook frame reached otherwise means the unwind went astray
   * inside kiln (e.g. from the frame that switches to the learning stack),
   * and what it found above is not the caller. */
  bool hooks_entered = true;
  for (int i = n - 1; i >= 0; i--)
    if (kiln_collector_in_hooks(pcs[i])) {
      hooks_entered = kiln_collector_in_entry(pcs[i]) || (i < n - 1 && kiln_collector_in_pass(pcs[i + 1]));
      break;
    }
  if (!hooks_entered) {
    atomic_fetch_add_explicit(&kiln_collector.kiln_frames, 1, memory_order_relaxed);
    pcs[0] = KILN_PC_KILN_ALLOC;
    return 1;
  }
  int k = 0;
  for (int i = 0; i < n; i++)
    if (!kiln_collector_in_pass(pcs[i])) pcs[k++] = pcs[i];
  n = k;
  for (int i = n - 1; i >= 0; i--) {
    uint64_t marker;
    if (kiln_collector_in_hooks(pcs[i])) marker = KILN_PC_KILN_ALLOC;
    else if (kiln_collector_in_self(pcs[i])) marker = KILN_PC_KILN;
    else continue;
    if (marker == KILN_PC_KILN_ALLOC && i > 0 && i < n - 1 && kiln_unwind_copy_in_module(pcs[i + 1])) {
      /* Inside the allocator the interposer forwards to (libc's malloc,
       * _int_free): the leafmost frame of kiln's is an interposer, the
       * frames below it are the allocator's. The program's time, as it
       * would be without kiln: the interposers' frames go (the allocator's
       * own entry point stands where it stood). */
      int leafmost = 0;
      while (leafmost < i && !kiln_collector_in_hooks(pcs[leafmost]) && !kiln_collector_in_self(pcs[leafmost]))
        leafmost++;
      if (leafmost > 0 && kiln_collector_in_entry(pcs[leafmost])) {
        bool all_entry = true;
        for (int j = leafmost; j <= i; j++) all_entry = all_entry && kiln_collector_in_entry(pcs[j]);
        if (all_entry) {
          memmove(pcs + leafmost, pcs + i + 1, (size_t)(n - i - 1) * sizeof *pcs);
          return n - (i + 1 - leafmost);
        }
      }
    }
    atomic_fetch_add_explicit(marker == KILN_PC_KILN_ALLOC ? &kiln_collector.kiln_frames : &kiln_collector.kiln_own, 1,
                              memory_order_relaxed);
    /* The unwind ended inside kiln, or went astray past it (kiln's hooks
     * learn unwind rules on a stack of their own): the caller is unknown. */
    if (i == n - 1 || !kiln_unwind_copy_in_module(pcs[i + 1])) {
      pcs[0] = marker;
      return 1;
    }
    if (marker == KILN_PC_KILN) { /* kiln's own code: the marker stands for its frames */
      pcs[i] = marker;
      memmove(pcs, pcs + i, (size_t)(n - i) * sizeof *pcs);
      return n - i;
    }
    if (i == 0) {
      memmove(pcs + 1, pcs, (size_t)n * sizeof *pcs);
      pcs[0] = marker;
      return n + 1;
    }
    pcs[i - 1] = marker;
    memmove(pcs, pcs + i - 1, (size_t)(n - i + 1) * sizeof *pcs);
    return n - i + 1;
  }
  return n;
}

int kiln_collector_cut(uint64_t *pcs, int n) { return kiln_collector_cut_kiln(pcs, n); }

void kiln_collector_sink(const kiln_raw_sample_t *s, void *ctx) {
  (void)ctx;
  if (s->tid == atomic_load_explicit(&kiln_collector.tid, memory_order_relaxed) && s->tid != 0) {
    atomic_fetch_add_explicit(&kiln_collector.own_samples, 1, memory_order_relaxed);
    return;
  }
  if (s->pid != 0 && s->pid != kiln_collector.pid) return;
  if (s->has_time && s->tid == atomic_load_explicit(&kiln_collector.own_tid, memory_order_relaxed) &&
      s->time < atomic_load_explicit(&kiln_collector.own_until, memory_order_relaxed)) {
    /* In kiln's own start (its constructor, a fork child's set-up): "[kiln]",
     * as the unwind would have named it, without one. */
    static const uint64_t own = KILN_PC_KILN;
    atomic_fetch_add_explicit(&kiln_collector.kiln_own, 1, memory_order_relaxed);
    uint32_t id = kiln_stacktab_intern(&own, 1, 0);
    kiln_stacktab_add(kiln_stacktab_get(id), KILN_COUNT_CPU, 1);
    kiln_wall_cpu_sample(s->tid, id);
    kiln_tids_add(s->tid, s->kernel, 1, NULL);
    return;
  }
  uint64_t pcs[KILN_DEPTH_MAX + 8];
  int max = kiln_collector.max_depth > 0 ? kiln_collector.max_depth : KILN_DEPTH_DEFAULT, n = 0;
  unsigned flags = 0;
  if (s->kernel) {
    /* The kernel part leaf first (perf: context markers, then addresses;
     * the first is the interrupted instruction), then the marker. */
    bool first = true;
    for (unsigned i = 0; s->kchain != NULL && i < s->nk && n < KILN_KERNEL_FRAMES && n < max - 2; i++) {
      uint64_t pc = s->kchain[i];
      if (pc >= (uint64_t)-4095) { /* PERF_CONTEXT_*: only the kernel's part is wanted */
        if (pc != (uint64_t)-128) break;
        continue;
      }
      if (pc < KILN_PC_KERNEL_MIN) break;
      pcs[n++] = first ? pc + 1 : pc;
      first = false;
    }
    pcs[n++] = KILN_PC_KERNEL;
  }
  if (s->has_regs && n < max)
    n += kiln_unwind_copy(kiln_collector.unwind, &s->regs, s->stack, s->stack_len, pcs + n, max - n, &flags);
  if (n == 0) return;
  n = kiln_collector_cut_kiln(pcs, n);
  if (n == 1 && pcs[0] < KILN_PC_MARKERS) flags &= ~KILN_STACK_TRUNCATED; /* kiln's time, whole */
  if (n > max) n = max, flags |= KILN_STACK_TRUNCATED;
  if (flags & KILN_STACK_TRUNCATED) {
    atomic_fetch_add_explicit(&kiln_collector.truncated, 1, memory_order_relaxed);
    if (flags & KILN_STACK_COPY_ENDED) atomic_fetch_add_explicit(&kiln_collector.copy_ended, 1, memory_order_relaxed);
  }
  uint32_t id = kiln_stacktab_intern(pcs, (unsigned)n, flags & (KILN_STACK_TRUNCATED));
  kiln_stacktab_add(kiln_stacktab_get(id), KILN_COUNT_CPU, 1);
  kiln_wall_cpu_sample(s->tid, id);
  kiln_tids_add(s->tid, s->kernel, 1, NULL);
}

static void kiln_collector_drain_locked(bool reap, bool emergency) {
  uint64_t *w = kiln_collector.record;
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    int st = atomic_load_explicit(&t->state, memory_order_acquire);
    if (st != KILN_SLOT_ACTIVE && st != KILN_SLOT_EXITED) continue;
    uint64_t header;
    int n;
    while (!emergency && (n = kiln_ring_pop(&t->ring, &header, w, KILN_REGS + 1 + KILN_STACK_COPY / 8)) >= 0) {
      unsigned flags = (unsigned)(header >> 16) & 0xff;
      if (!(flags & KILN_RING_RAW) || n < KILN_REGS + 1) continue;
      kiln_raw_sample_t s;
      memset(&s, 0, sizeof s);
      s.tid = t->tid;
      s.has_regs = true;
      memcpy(s.regs.r, w, sizeof s.regs.r);
      s.stack = (const uint8_t *)&w[KILN_REGS + 1];
      s.stack_len = w[KILN_REGS] <= (uint64_t)(n - KILN_REGS - 1) * 8 ? w[KILN_REGS] : 0;
      kiln_collector_sink(&s, NULL);
    }
    if (st == KILN_SLOT_EXITED) kiln_threads_release(t);
  }
  /* In an emergency the last few milliseconds of perf samples stay in the
   * rings: unwinding them would take libunwind's locks in a dying thread. */
  if (!emergency) kiln_perf_drain(kiln_collector_sink, NULL, reap);
}

void kiln_collector_drain(void) {
  pthread_mutex_lock(&kiln_collector_lock);
  kiln_collector_drain_locked(false, false);
  kiln_wall_tick(true); /* wall time up to now, idle threads too */
  pthread_mutex_unlock(&kiln_collector_lock);
}

void kiln_collector_drain_if_free(void) {
  if (pthread_mutex_trylock(&kiln_collector_lock) != 0) return;
  kiln_collector_drain_locked(false, false);
  pthread_mutex_unlock(&kiln_collector_lock);
}

void kiln_collector_try_drain(void) {
  if (pthread_mutex_trylock(&kiln_collector_lock) != 0) return;
  kiln_collector_drain_locked(false, true);
  pthread_mutex_unlock(&kiln_collector_lock);
}

void kiln_collector_own_until(pid_t tid, uint64_t ns) {
  atomic_store_explicit(&kiln_collector.own_until, ns, memory_order_relaxed);
  atomic_store_explicit(&kiln_collector.own_tid, tid, memory_order_release);
}

void kiln_collector_stats(kiln_collector_stats_t *out) {
  out->own_samples = atomic_load_explicit(&kiln_collector.own_samples, memory_order_relaxed);
  out->truncated = atomic_load_explicit(&kiln_collector.truncated, memory_order_relaxed);
  out->copy_ended = atomic_load_explicit(&kiln_collector.copy_ended, memory_order_relaxed);
  out->kiln_frames = atomic_load_explicit(&kiln_collector.kiln_frames, memory_order_relaxed);
  out->kiln_own = atomic_load_explicit(&kiln_collector.kiln_own, memory_order_relaxed);
}

/* A thread registered from outside has no exit hook: ask the kernel. */
static void kiln_collector_reap_foreign(void) {
  pid_t pid = getpid();
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    if (t->own || atomic_load_explicit(&t->state, memory_order_acquire) != KILN_SLOT_ACTIVE) continue;
    if (syscall(SYS_tgkill, pid, t->tid, 0) < 0 && errno == ESRCH) {
      kiln_sampler_thread_disarm(t);
      kiln_threads_retire(t);
    }
  }
}

static uint64_t kiln_collector_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------ credentials */

typedef struct kiln_collector_caps {
  struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
} kiln_collector_caps_t;

static int kiln_collector_caps_get(pid_t tid, kiln_collector_caps_t *out) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, tid};
  memset(out, 0, sizeof *out);
  return (int)syscall(SYS_capget, &h, out->d);
}

/* On the collector: the keep-caps flag and secure bits the caller had,
 * then its capability sets (read from its thread, set on this one). Each
 * step may fail (a locked bit, a capability this thread no longer has):
 * then the ids' change fails here as it would have anyway. */
static void kiln_collector_take_creds(void) {
  unsigned asked = atomic_load_explicit(&kiln_collector.creds_asked, memory_order_acquire);
  if (asked == atomic_load_explicit(&kiln_collector.creds_done, memory_order_relaxed)) return;
  if (prctl(PR_GET_SECUREBITS, 0, 0, 0, 0) != kiln_collector.creds_bits)
    prctl(PR_SET_SECUREBITS, (unsigned long)kiln_collector.creds_bits, 0, 0, 0);
  if (prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0) != kiln_collector.creds_keep)
    prctl(PR_SET_KEEPCAPS, (unsigned long)kiln_collector.creds_keep, 0, 0, 0);
  kiln_collector_caps_t caps;
  if (kiln_collector_caps_get(kiln_collector.creds_tid, &caps) == 0) {
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    syscall(SYS_capset, &h, caps.d);
  }
  atomic_store_explicit(&kiln_collector.own_keep, prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0), memory_order_relaxed);
  atomic_store_explicit(&kiln_collector.own_bits, prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), memory_order_relaxed);
  atomic_store_explicit(&kiln_collector.creds_done, asked, memory_order_release);
  syscall(SYS_futex, &kiln_collector.creds_done, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

void kiln_collector_share_creds(void) {
  if (!kiln_collector.started) return;
  /* Started but not yet running (a program that changes ids first thing):
   * its ids would change without it, so wait until it runs (well under a
   * millisecond). */
  pid_t coll;
  for (int i = 0; (coll = atomic_load_explicit(&kiln_collector.tid, memory_order_acquire)) <= 0 && i < 20000; i++) {
    struct timespec ts = {0, 50000L};
    nanosleep(&ts, NULL);
  }
  if (coll <= 0 || coll == (pid_t)syscall(SYS_gettid)) return;
  pid_t self = (pid_t)syscall(SYS_gettid);
  int keep = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0), bits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
  kiln_collector_caps_t mine, its;
  if (kiln_collector_caps_get(0, &mine) < 0 || kiln_collector_caps_get(coll, &its) < 0) return;
  if (keep == atomic_load_explicit(&kiln_collector.own_keep, memory_order_relaxed) &&
      bits == atomic_load_explicit(&kiln_collector.own_bits, memory_order_relaxed) &&
      memcmp(&mine, &its, sizeof mine) == 0)
    return; /* the usual case: nothing to do, no round trip */
  pthread_mutex_lock(&kiln_collector_creds_lock);
  kiln_collector.creds_tid = self;
  kiln_collector.creds_keep = keep;
  kiln_collector.creds_bits = bits;
  unsigned asked = atomic_fetch_add_explicit(&kiln_collector.creds_asked, 1, memory_order_release) + 1;
  syscall(SYS_futex, &kiln_collector.stop, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  /* The collector answers between two drains (milliseconds); a dump in
   * progress can make it late: then the change goes ahead regardless. */
  for (int i = 0; i < 20; i++) {
    unsigned done = atomic_load_explicit(&kiln_collector.creds_done, memory_order_acquire);
    if (done == asked) break;
    struct timespec ts = {0, 100000000L};
    syscall(SYS_futex, &kiln_collector.creds_done, FUTEX_WAIT_PRIVATE, done, &ts, NULL, 0);
  }
  pthread_mutex_unlock(&kiln_collector_creds_lock);
}

static void *kiln_collector_main(void *arg) {
  (void)arg;
  /* What this thread allocates (libunwind's caches) is kiln's. */
  kiln_heap_guard_enter();
  atomic_store_explicit(&kiln_collector.own_keep, prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0), memory_order_relaxed);
  atomic_store_explicit(&kiln_collector.own_bits, prctl(PR_GET_SECUREBITS, 0, 0, 0, 0), memory_order_relaxed);
  atomic_store_explicit(&kiln_collector.tid, (pid_t)syscall(SYS_gettid), memory_order_release);
  /* A name `kiln dump` finds it by, to signal this thread alone. */
  pthread_setname_np(pthread_self(), "kiln-collector");
  if (kiln_collector.dump_signal > 0) {
    sigset_t dump;
    sigemptyset(&dump);
    sigaddset(&dump, kiln_collector.dump_signal);
    pthread_sigmask(SIG_UNBLOCK, &dump, NULL);
  }
  uint64_t now = kiln_collector_now(), next_reap = now + 1000000000ull;
  uint64_t next_dump = kiln_collector.interval_ns ? now + kiln_collector.interval_ns : UINT64_MAX;
  while (!atomic_load_explicit(&kiln_collector.stop, memory_order_acquire)) {
    kiln_collector_take_creds();
    now = kiln_collector_now();
    bool reap = now >= next_reap;
    pthread_mutex_lock(&kiln_collector_lock);
    kiln_collector_drain_locked(reap, false);
    kiln_wall_tick(false);
    pthread_mutex_unlock(&kiln_collector_lock);
    if (reap) {
      kiln_collector_reap_foreign();
      next_reap = now + 1000000000ull;
    }
    if (atomic_load_explicit(&kiln_collector.stop, memory_order_acquire)) break; /* no dump after a stop */
    /* One set per request, however close together the signals came. */
    for (int n = atomic_exchange(&kiln_collector.dump_requested, 0); n > 0 && kiln_collector.dump; n--)
      kiln_collector.dump(KILN_DUMP_SIGNAL);
    if (now >= next_dump && kiln_collector.dump) {
      kiln_collector.dump(KILN_DUMP_INTERVAL);
      /* On schedule, not drifting; a late dump does not cause a burst. */
      while (next_dump <= now) next_dump += kiln_collector.interval_ns;
    }
    now = kiln_collector_now();
    uint64_t wait = (uint64_t)kiln_collector.period_ns;
    if (wait > 4000000 && kiln_perf_first_live()) wait = 4000000; /* a first ring holds 14 ms */
    if (next_dump > now && next_dump - now < wait) wait = next_dump - now;
    uint64_t next_wall = kiln_wall_next_ns();
    if (next_wall != UINT64_MAX) wait = next_wall > now ? (next_wall - now < wait ? next_wall - now : wait) : 0;
    struct timespec ts = {(time_t)(wait / 1000000000ull), (long)(wait % 1000000000ull)};
    syscall(SYS_futex, &kiln_collector.stop, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
  }
  return NULL;
}

KILN_SIGNAL_SAFE void kiln_collector_request_dump(void) {
  atomic_fetch_add_explicit(&kiln_collector.dump_requested, 1, memory_order_release);
  syscall(SYS_futex, &kiln_collector.stop, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

int kiln_collector_start(const kiln_config_t *cfg, int hz, uint64_t interval_ns, int dump_signal,
                         void (*dump)(kiln_dump_reason_t reason)) {
  if (!kiln_collector_self.done) {
    kiln_collector_self.done = true;
    kiln_libc.dl_iterate_phdr(kiln_collector_self_span, NULL);
  }
  kiln_collector.unwind = cfg->unwind;
  kiln_collector.max_depth = cfg->max_depth;
  kiln_collector.pid = getpid();
  if (kiln_collector.started) return 0;
  if (kiln_collector.abandoned) { /* started again after the exit's dump: the old one ends first */
    kiln_collector.abandoned = false;
    pthread_join(kiln_collector.thread, NULL);
  }
  /* Drain well before a ring could fill with stack copies (a perf ring
   * holds 50 ms of one CPU's samples, a thread's ring about 15 copies);
   * with no sampling (hz 0), only wake for dumps. */
  long ns = hz > 0 ? (long)((double)KILN_RING_WORDS * 8 / 2 / ((double)hz * (KILN_STACK_COPY + 256)) * 1e9)
                   : 1000000000L;
  if (ns > (hz > 0 ? 8000000L : 1000000000L)) ns = hz > 0 ? 8000000L : 1000000000L;
  if (ns < 1000000L) ns = 1000000L;
  kiln_collector.period_ns = ns;
  kiln_collector.interval_ns = interval_ns;
  kiln_collector.dump = dump;
  kiln_collector.dump_signal = dump_signal;
  atomic_store(&kiln_collector.dump_requested, 0);
  atomic_store(&kiln_collector.stop, 0);
  sigset_t all, old;
  sigfillset(&all);
  /* Every signal blocked in the collector, but the dump signal: sent to
   * this thread (tgkill), it interrupts no thread of the program. */
  pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited: no signal ever runs there */
  /* 1 MiB of stack, not the 8 MiB default (RLIMIT_STACK): address space
   * the program may need under ulimit -v. The collector's deepest path, an
   * interval dump, needs far less. */
  pthread_attr_t attr;
  bool attr_ok = pthread_attr_init(&attr) == 0;
  if (attr_ok) pthread_attr_setstacksize(&attr, KILN_COLLECTOR_STACK);
  int rc = kiln_libc.pthread_create(&kiln_collector.thread, attr_ok ? &attr : NULL, kiln_collector_main, NULL);
  if (attr_ok) pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) return -rc;
  if (pthread_getcpuclockid(kiln_collector.thread, &kiln_collector.cpu_clock) != 0)
    kiln_collector.cpu_clock = (clockid_t)-1;
  kiln_collector.started = true;
  return 0;
}

static double kiln_collector_clock(void) {
  struct timespec ts;
  if (kiln_collector.cpu_clock == (clockid_t)-1 || clock_gettime(kiln_collector.cpu_clock, &ts) < 0)
    return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void kiln_collector_stop(void) {
  if (kiln_collector.started) {
    double cpu = kiln_collector_clock();
    atomic_store_explicit(&kiln_collector.stop, 1, memory_order_release);
    syscall(SYS_futex, &kiln_collector.stop, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    pthread_join(kiln_collector.thread, NULL);
    kiln_collector.cpu_seconds += cpu;
    kiln_collector.started = false;
  }
  kiln_collector_drain();
}

/* Joining costs a wake-up of the collector on another CPU and a wait for
 * it to end: a sixth of a millisecond here, which every profiled process
 * of a shell script paid at exit. The process ends it instead. A drain or
 * dump it is in goes on under its lock, which the exit's drain and dump
 * wait for; once it sees stop it starts no other. (libkiln.so is never
 * unloaded, -z nodelete: its code outlives the thread.) */
void kiln_collector_abandon(void) {
  if (kiln_collector.started) {
    double cpu = kiln_collector_clock();
    atomic_store_explicit(&kiln_collector.stop, 1, memory_order_release);
    kiln_collector.cpu_seconds += cpu;
    kiln_collector.started = false;
    kiln_collector.abandoned = true;
  }
  kiln_collector_drain();
}

double kiln_collector_cpu_seconds(void) {
  return kiln_collector.cpu_seconds + (kiln_collector.started ? kiln_collector_clock() : 0);
}

void kiln_collector_fork_prepare(void) {
  /* No drain, and so no unwind, may be under way in another thread at the
   * fork: libunwind's locks would stay held in the child. */
  pthread_mutex_lock(&kiln_collector_lock);
  kiln_perf_fork_prepare();
}

void kiln_collector_fork_parent(void) {
  kiln_perf_fork_parent();
  pthread_mutex_unlock(&kiln_collector_lock);
}

void kiln_collector_after_fork_child(void) {
  /* The collector thread does not exist in the child; its lock may have
   * been held at fork. */
  pthread_mutex_init(&kiln_collector_lock, NULL);
  pthread_mutex_init(&kiln_tids_lock, NULL);
  pthread_mutex_init(&kiln_collector_creds_lock, NULL);
  atomic_store(&kiln_collector.creds_asked, 0);
  atomic_store(&kiln_collector.creds_done, 0);
  if (kiln_tids.slots != NULL) memset(kiln_tids.slots, 0, kiln_tids.cap * sizeof *kiln_tids.slots);
  kiln_tids.used = 0;
  kiln_collector.pid = getpid();
  atomic_store(&kiln_collector.tid, 0);
  atomic_store(&kiln_collector.own_samples, 0);
  atomic_store(&kiln_collector.truncated, 0);
  atomic_store(&kiln_collector.copy_ended, 0);
  atomic_store(&kiln_collector.kiln_frames, 0);
  atomic_store(&kiln_collector.kiln_own, 0);
  kiln_collector.started = false;
  kiln_collector.abandoned = false;
  kiln_collector.cpu_seconds = 0;
  atomic_store(&kiln_collector.dump_requested, 0);
}
