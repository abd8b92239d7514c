/* kiln_wall.c — wall mode: where every thread's time goes, running or not,
 * in samples at KILN_WALL_HZ per thread, without sending any signal.
 *   - Running time comes from the CPU samples (kiln_wall_cpu_sample): each
 *     is 1/hz of CPU time on its stack; they add up to whole wall samples
 *     per thread, on the stack of the sample that completes one.
 *   - Time off CPU is measured, not sampled: at each tick the collector
 *     reads every registered thread's CPU clock (clock_gettime on the
 *     thread's clock id: no descriptor, no signal). Wall time minus CPU
 *     time is the time it spent off CPU. Of that, the run-queue delay of
 *     /proc/self/task/TID/schedstat is "[wait: cpu]" (on its last CPU stack
 *     after a preemption, on the wait it woke from after a wake-up), the
 *     rest goes to the stack it is blocked in.
 *   - Where it is blocked: /proc/self/task/TID/syscall gives the system
 *     call number and the user sp and pc of a blocked thread; its stack is
 *     copied with process_vm_readv (a thread that wakes meanwhile shows in
 *     its CPU clock, and the copy is thrown away) and unwound like a CPU
 *     sample, with "[wait: NAME]" as its leaf.
 *   - A thread whose CPU clock has not moved is still blocked where it was
 *     seen: its stack is reused, and it is looked at less often (up to
 *     every 16 ticks, async-profiler's idea), so that idle threads cost a
 *     clock read now and then; a thread that ran all along is taken as
 *     running without reading /proc.
 * Everything here runs in the collector thread or in a dump, under the
 * collector's lock (the ticks), the perf lock (the CPU sample hook), or on
 * a thread that ends (kiln_wall_thread_exit); kiln_wall's own lock
 * serialises them. None of it runs in a signal handler. */
#include "kiln_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum {
  KILN_WALL_SLOTS = 2 * KILN_THREADS_MAX, /* the per-thread table, at most half full */
  KILN_WALL_BACKOFF_MAX = 16,             /* ticks between looks at an idle thread */
  KILN_WALL_SWEEP_TICKS = 128,            /* forget threads not seen for this long */
  KILN_WALL_TID_GONE = -1,                /* a slot whose thread is gone */
};

typedef struct kiln_wall_thread {
  pid_t tid;              /* 0: free; KILN_WALL_TID_GONE: free, keep probing */
  uint32_t seen;          /* the tick it was last listed in */
  uint64_t wall_ns;       /* time accounted up to (0: not yet looked at) */
  uint64_t cpu_ns;        /* its CPU clock then */
  uint64_t delay_ns;      /* its run-queue delay then */
  uint64_t voluntary, involuntary; /* its context switches then: waits, preemptions */
  uint64_t run_res, off_res, queue_res, wake_res; /* nanoseconds short of a whole sample */
  uint32_t wait_id;       /* the stack it is blocked in now (0: running or unseen) */
  uint32_t last_wait_id;  /* the last stack it was seen blocked in */
  uint64_t wait_key;      /* what that stack was unwound from (call, sp, pc, top of the stack) */
  uint32_t cpu_id;        /* the stack of its last CPU sample */
  uint32_t queue_id[2], queue_of[2]; /* "[wait: cpu]" stacks made (on a CPU stack, a wait); of what */
  uint16_t skip, backoff; /* idle: ticks left before the next look, the current gap */
  bool preempted;         /* involuntary switches since the look before */
  uint64_t pending_ns;    /* off CPU, not yet known to be a queue wait or not */
  uint32_t pending_id;    /* where it goes if not */
  uint64_t run_ns;        /* CPU time its CPU samples stood for, counted */
  uint64_t cpu_first_ns;  /* its CPU clock when first looked at, minus run_ns then */
} kiln_wall_thread_t;

static struct {
  _Atomic bool on;         /* set at start (release), read by the hooks (acquire) */
  int hz, cpu_hz, max_depth;
  uint64_t period_ns, cpu_period_ns;
  uint64_t next_tick_ns;
  uint32_t tick;
  uint64_t generation;     /* the stack table's, for the ids kept here */
  kiln_wall_thread_t *threads;
  kiln_wall_thread_t **by_slot; /* the entry of each thread registry slot, as last found */
  size_t used;             /* slots with a tid, gone ones included */
  uint8_t *copy;           /* a blocked thread's stack, copied */
  uint32_t unknown_id;     /* "[wait: unknown]" */
  _Atomic uint64_t samples, wait_samples, probes, probe_failures, moved, full, cpu_over;
  int probe_errno;         /* the first failure to read a thread's state */
  bool probe_logged;
  bool schedstat;          /* run-queue delays can be read */
} kiln_wall;

static pthread_mutex_t kiln_wall_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t kiln_wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The CPU clock of thread tid of this process (glibc's encoding of a
 * thread CPU clock id: the kernel takes any thread of the caller's group). */
static bool kiln_wall_cpu_clock(pid_t tid, uint64_t *ns) {
  clockid_t id = (clockid_t)((~(unsigned)tid << 3) | 6u); /* CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD */
  struct timespec ts;
  if (clock_gettime(id, &ts) != 0) return false;
  *ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  return true;
}

/* A /proc/self/task/TID file into buf (NUL-terminated): its length or
 * -errno. The descriptor is the collector's for a few microseconds. */
static int kiln_wall_read_task(pid_t tid, const char *file, char *buf, size_t cap) {
  char path[64];
  kiln_fmt(path, sizeof path, "/proc/self/task/%d/%s", (int)tid, file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, cap - 1);
  int e = errno;
  close(fd);
  if (n < 0) return -e;
  buf[n] = '\0';
  return (int)n;
}

/* The next number of a /proc line (decimal, or hex after 0x); false at its end. */
static bool kiln_wall_field(const char **p, int64_t *out) {
  const char *s = *p;
  while (*s == ' ') s++;
  bool neg = *s == '-';
  if (neg) s++;
  int base = 10;
  if (s[0] == '0' && s[1] == 'x') base = 16, s += 2;
  uint64_t v = 0;
  const char *start = s;
  for (;; s++) {
    int d = *s >= '0' && *s <= '9' ? *s - '0' : base == 16 && *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
    if (d < 0) break;
    v = v * (uint64_t)base + (uint64_t)d;
  }
  if (s == start) return false;
  *p = s;
  *out = neg ? -(int64_t)v : (int64_t)v;
  return true;
}

/* The thread's run-queue delay so far (schedstat's second field), or the
 * last one known when it cannot be read. */
static uint64_t kiln_wall_delay(kiln_wall_thread_t *w) {
  char buf[128];
  const char *p = buf;
  int64_t run, delay;
  if (!kiln_wall.schedstat || kiln_wall_read_task(w->tid, "schedstat", buf, sizeof buf) <= 0 ||
      !kiln_wall_field(&p, &run) || !kiln_wall_field(&p, &delay) || delay < 0)
    return w->delay_ns;
  return (uint64_t)delay;
}

/* Its voluntary and involuntary context switches so far (status), or the
 * last ones known. */
static void kiln_wall_switches(kiln_wall_thread_t *w, uint64_t *vol, uint64_t *invol) {
  char buf[2048];
  *vol = w->voluntary;
  *invol = w->involuntary;
  if (kiln_wall_read_task(w->tid, "status", buf, sizeof buf) <= 0) return;
  const char *v = strstr(buf, "\nvoluntary_ctxt_switches:"), *n = strstr(buf, "\nnonvoluntary_ctxt_switches:");
  int64_t a, b;
  if (v == NULL || n == NULL) return;
  v += 26;
  n += 29;
  while (*v == '\t') v++;
  while (*n == '\t') n++;
  if (kiln_wall_field(&v, &a) && kiln_wall_field(&n, &b) && a >= 0 && b >= 0) *vol = (uint64_t)a, *invol = (uint64_t)b;
}

/* A blocked thread's frame pointer is not in /proc (only sp and pc are):
 * the innermost frame record on its stack stands in for it, so that frames
 * that keep their frame in rbp (code built with frame pointers, functions
 * with alloca) unwind. A record is a word pointing higher up the stack
 * (the caller's record) followed by a return address into a loaded module;
 * the record it points to must be one too (two links, or the end of the
 * chain: 0, or past the copy), so that a saved pointer to a local next to
 * a return address is not taken for one. 0 when none is found. */
static bool kiln_wall_record(const uint8_t *copy, size_t len, uint64_t sp, uint64_t at, int links) {
  for (;;) {
    if (at < sp || at - sp + 16 > len) return true; /* the chain leaves the copy */
    uint64_t next, ret;
    memcpy(&next, copy + (at - sp), 8);
    memcpy(&ret, copy + (at - sp) + 8, 8);
    if (!kiln_unwind_copy_in_module(ret)) return false;
    if (--links == 0 || next == 0) return true; /* enough, or the outermost frame */
    if (next <= at || (next & 7) != 0 || next - at > (1u << 20)) return false;
    at = next;
  }
}

/* Up to max candidate frame pointers, innermost first. */
static int kiln_wall_frame_guesses(const uint8_t *copy, size_t len, uint64_t sp, uint64_t *out, int max) {
  int n = 0;
  for (size_t off = 0; off + 16 <= len && off < 8192 && n < max; off += 8) {
    uint64_t next;
    memcpy(&next, copy + off, 8);
    if (next <= sp + off || (next & 7) != 0 || next - (sp + off) > (1u << 20)) continue;
    if (kiln_wall_record(copy, len, sp, sp + off, 2)) out[n++] = sp + off;
  }
  return n;
}

/* Where w is now: blocked (w->wait_id, the stack it waits in) or running
 * (w->wait_id 0). cpu: its CPU clock just before; a thread that ran while
 * its stack was copied is taken as running. */
static void kiln_wall_probe(kiln_wall_thread_t *w, uint64_t cpu) {
  char line[320];
  w->wait_id = 0;
  atomic_fetch_add_explicit(&kiln_wall.probes, 1, memory_order_relaxed);
  int n = kiln_wall_read_task(w->tid, "syscall", line, sizeof line);
  if (n <= 0) {
    if (n == -ENOENT || n == -ESRCH) return; /* gone meanwhile */
    atomic_fetch_add_explicit(&kiln_wall.probe_failures, 1, memory_order_relaxed);
    if (kiln_wall.probe_errno == 0) kiln_wall.probe_errno = n < 0 ? -n : EIO;
    /* Off CPU somewhere (its clock says when): "[wait: unknown]". */
    w->wait_id = kiln_wall.unknown_id;
    return;
  }
  if (strncmp(line, "running", 7) == 0) return;
  /* "NR ARG1..ARG6 SP PC", or "-1 SP PC" when blocked outside a call. */
  const char *p = line;
  int64_t v[9];
  int k = 0;
  while (k < 9 && kiln_wall_field(&p, &v[k])) k++;
  if (k != 9 && !(k == 3 && v[0] == -1)) return;
  uint64_t sp = (uint64_t)v[k - 2], pc = (uint64_t)v[k - 1];
  uint64_t marker = v[0] == -1 ? KILN_PC_WAIT_KERNEL
                    : v[0] >= 0 && v[0] < KILN_PC_WAIT_SYSCALLS ? KILN_PC_WAIT + (uint64_t)v[0]
                                                                 : KILN_PC_WAIT_UNKNOWN;
  /* The stack up to the first page that is not mapped (the top of the
   * thread's stack), as much as a CPU sample copies. */
  struct iovec local = {kiln_wall.copy, KILN_STACK_COPY_PERF}, remote = {(void *)(uintptr_t)sp, KILN_STACK_COPY_PERF};
  ssize_t got = sp != 0 ? process_vm_readv(getpid(), &local, 1, &remote, 1, 0) : -1;
  uint64_t after;
  if (!kiln_wall_cpu_clock(w->tid, &after) || after != cpu) {
    atomic_fetch_add_explicit(&kiln_wall.moved, 1, memory_order_relaxed);
    return;
  }
  /* Blocked where it was blocked last time (a loop's wait): the same call,
   * sp and pc, the same top of the stack: the same stack, not unwound
   * again. */
  uint64_t key = 1469598103934665603ull ^ (uint64_t)v[0] ^ sp * 31 ^ pc * 131;
  for (ssize_t i = 0; i + 8 <= got && i < 1024; i += 8) {
    uint64_t word;
    memcpy(&word, kiln_wall.copy + i, 8);
    key = (key ^ word) * 1099511628211ull;
  }
  if (key == w->wait_key && w->last_wait_id != 0) {
    w->wait_id = w->last_wait_id;
    return;
  }
  uint64_t pcs[KILN_DEPTH_MAX + 8];
  unsigned flags = 0;
  int m = 0;
  if (got > 0 && pc != 0) {
    kiln_regs_t regs;
    memset(&regs, 0, sizeof regs);
    regs.r[KILN_REG_RSP] = sp;
    regs.r[KILN_REG_RIP] = pc;
    /* Only sp and pc are known: call-frame information recovers the rest
     * as far as the frames saved it. The frame pointer is guessed: of the
     * first few frame records on the stack (a saved register next to a
     * return address can look like one), the one that unwinds deepest. */
    uint64_t guess[4], best[KILN_DEPTH_MAX + 8];
    int nguess = kiln_wall_frame_guesses(kiln_wall.copy, (size_t)got, sp, guess, 4);
    for (int g = 0; g <= nguess; g++) {
      unsigned f = 0;
      regs.r[KILN_REG_RBP] = g < nguess ? guess[g] : 0;
      int k = kiln_unwind_copy(KILN_UNWIND_LIBUNWIND, &regs, kiln_wall.copy, (size_t)got, best,
                               kiln_wall.max_depth - 1, &f);
      if (k > m) {
        m = k;
        flags = f;
        memcpy(pcs + 1, best, (size_t)k * sizeof *pcs);
      }
    }
    m = kiln_collector_cut(pcs + 1, m);
    if (m > kiln_wall.max_depth - 1) m = kiln_wall.max_depth - 1, flags |= KILN_STACK_TRUNCATED;
  }
  pcs[0] = marker;
  w->wait_id = w->last_wait_id = kiln_stacktab_intern(pcs, (unsigned)m + 1, flags & KILN_STACK_TRUNCATED);
  w->wait_key = key;
}

/* Adds ns to a residue and whole samples of it to stack id. */
static void kiln_wall_credit(uint64_t *res, uint64_t ns, uint32_t id, bool wait) {
  if (id == 0) return;
  *res += ns;
  if (*res < kiln_wall.period_ns) return;
  uint64_t n = *res / kiln_wall.period_ns;
  *res -= n * kiln_wall.period_ns;
  kiln_stacktab_add(kiln_stacktab_get(id), KILN_COUNT_WALL, n);
  atomic_fetch_add_explicit(&kiln_wall.samples, n, memory_order_relaxed);
  if (wait) atomic_fetch_add_explicit(&kiln_wall.wait_samples, n, memory_order_relaxed);
}

/* "[wait: cpu]" on the stack src (a CPU sample's, or a wait stack whose
 * own marker it replaces: a thread woken from there and queued). */
static uint32_t kiln_wall_queue_stack(kiln_wall_thread_t *w, uint32_t src) {
  int c = src == w->cpu_id ? 0 : 1;
  if (w->queue_id[c] != 0 && w->queue_of[c] == src) return w->queue_id[c];
  uint64_t pcs[KILN_DEPTH_MAX + 8];
  unsigned n = 0, flags = 0;
  pcs[n++] = KILN_PC_WAIT_CPU;
  kiln_stack_t *s = src ? kiln_stacktab_get(src) : NULL;
  if (s != NULL) {
    unsigned skip = s->depth > 0 && kiln_pc_is_wait(s->pcs[0]) ? 1 : 0;
    unsigned d = s->depth - skip < KILN_DEPTH_MAX ? s->depth - skip : KILN_DEPTH_MAX;
    memcpy(pcs + 1, s->pcs + skip, d * sizeof *pcs);
    n += d;
    flags = s->flags & KILN_STACK_TRUNCATED;
  }
  w->queue_of[c] = src;
  return w->queue_id[c] = kiln_stacktab_intern(pcs, n, flags);
}

/* The slot of tid (made when add), or NULL. */
static kiln_wall_thread_t *kiln_wall_find(pid_t tid, bool add) {
  size_t mask = KILN_WALL_SLOTS - 1, i = ((size_t)tid * 0x9e3779b97f4a7c15ull >> 24) & mask;
  kiln_wall_thread_t *gone = NULL;
  for (size_t probes = 0; probes < KILN_WALL_SLOTS; probes++, i = (i + 1) & mask) {
    kiln_wall_thread_t *w = &kiln_wall.threads[i];
    if (w->tid == tid) return w;
    if (w->tid == KILN_WALL_TID_GONE && gone == NULL) gone = w;
    if (w->tid != 0) continue;
    if (!add) return NULL;
    if (gone == NULL) {
      if (kiln_wall.used * 2 >= KILN_WALL_SLOTS) break;
      kiln_wall.used++;
      gone = w;
    }
    break;
  }
  if (!add || gone == NULL) {
    if (add) atomic_fetch_add_explicit(&kiln_wall.full, 1, memory_order_relaxed);
    return NULL;
  }
  memset(gone, 0, sizeof *gone);
  gone->tid = tid;
  gone->seen = kiln_wall.tick;
  return gone;
}

/* Stack ids kept from an older table generation mean nothing. */
static void kiln_wall_check_generation(void) {
  uint64_t g = kiln_stacktab_generation();
  if (g == kiln_wall.generation) return;
  kiln_wall.generation = g;
  for (size_t i = 0; i < KILN_WALL_SLOTS; i++) {
    kiln_wall_thread_t *w = &kiln_wall.threads[i];
    w->wait_id = w->last_wait_id = w->cpu_id = 0;
    w->wait_key = 0;
    memset(w->queue_id, 0, sizeof w->queue_id);
    memset(w->queue_of, 0, sizeof w->queue_of);
  }
  uint64_t unknown = KILN_PC_WAIT_UNKNOWN;
  kiln_wall.unknown_id = kiln_stacktab_intern(&unknown, 1, 0);
}

/* One look at w at time now. */
static void kiln_wall_look(kiln_wall_thread_t *w, uint64_t now, bool force) {
  uint64_t cpu;
  if (!kiln_wall_cpu_clock(w->tid, &cpu)) return; /* gone: swept later */
  if (w->wall_ns == 0) { /* first seen: where it is (blocked since before the start, maybe) */
    w->wall_ns = now;
    w->cpu_ns = cpu;
    w->cpu_first_ns = cpu > w->run_ns ? cpu - w->run_ns : 0;
    w->delay_ns = kiln_wall_delay(w);
    if (kiln_wall.schedstat) kiln_wall_switches(w, &w->voluntary, &w->involuntary);
    kiln_wall_probe(w, cpu);
    return;
  }
  uint64_t dwall = now > w->wall_ns ? now - w->wall_ns : 0, dcpu = cpu > w->cpu_ns ? cpu - w->cpu_ns : 0;
  uint64_t off = dwall > dcpu ? dwall - dcpu : 0;
  w->wall_ns = now;
  w->cpu_ns = cpu;
  if (dcpu == 0 && w->wait_id != 0) {
    /* Not run since it was seen blocked: still there. */
    kiln_wall_credit(&w->off_res, off, w->wait_id, true);
    w->backoff = w->backoff == 0 ? 1 : w->backoff * 2 > KILN_WALL_BACKOFF_MAX ? KILN_WALL_BACKOFF_MAX : w->backoff * 2;
    w->skip = (uint16_t)(w->backoff - 1);
    return;
  }
  w->backoff = 0;
  if (dcpu == 0 && w->wait_id == 0 && !force) {
    /* Not run at all since a look found it running: queued all along (a
     * wait that is counted as delay only once it runs), or stopped. */
    if (w->pending_ns == 0) w->pending_id = w->last_wait_id ? w->last_wait_id : kiln_wall.unknown_id;
    w->pending_ns += off;
    return;
  }
  if (w->wait_id == 0 && off * 8 < dwall && !force) {
    /* Running nearly all along since a look found it running: still
     * running, most likely. No /proc file is read for it (a busy thread
     * costs kiln a clock read a tick); its few idle moments wait for the
     * next look that reads the run-queue delay. */
    if (w->pending_ns == 0) w->pending_id = w->last_wait_id ? w->last_wait_id : kiln_wall.unknown_id;
    w->pending_ns += off;
    return;
  }
  uint32_t was_waiting = w->wait_id;
  uint64_t delay = kiln_wall_delay(w), queued = delay > w->delay_ns ? delay - w->delay_ns : 0, vol, invol;
  w->delay_ns = delay;
  if (queued > 0) kiln_wall_switches(w, &vol, &invol);
  else vol = w->voluntary, invol = w->involuntary;
  uint64_t dinvol = invol - w->involuntary;
  w->voluntary = vol;
  w->involuntary = invol;
  kiln_wall_probe(w, cpu);
  /* Blocked meanwhile: where it is blocked now, else where it was seen
   * blocked before (a thread that alternates work and waits is caught in
   * each now and then). */
  uint32_t where = w->wait_id ? w->wait_id : was_waiting ? was_waiting : w->last_wait_id ? w->last_wait_id
                                                                                           : kiln_wall.unknown_id;
  /* The run-queue delay of a wait is added when the thread gets a CPU
   * again: time off CPU that a look finds unexplained on a thread that is
   * not blocked may be a queue wait still going on. It is held (pending)
   * until the next look, whose new delay is taken from it first; the rest
   * was a wait, counted where it was going to be. */
  uint64_t from_pending = queued < w->pending_ns ? queued : w->pending_ns;
  if (w->pending_ns > from_pending && w->pending_id != 0)
    kiln_wall_credit(&w->off_res, w->pending_ns - from_pending, w->pending_id, true);
  w->pending_ns = 0;
  uint64_t queued_new = queued - from_pending;
  if (queued_new > off) queued_new = off, queued = from_pending + off;
  /* The delay follows wake-ups (voluntary switches) and preemptions, a
   * preempted thread waiting far longer (a slice of another) than a woken
   * one (the scheduler favours it): "[wait: cpu]" on its last CPU
   * sample's stack when it was preempted since the look before last (the
   * delay is counted when it gets the CPU back, the preemption when it
   * loses it), else on the wait it woke from. */
  bool preempted = dinvol > 0 || w->preempted;
  w->preempted = dinvol > 0;
  if (queued > 0) {
    bool woken = !preempted && where != kiln_wall.unknown_id;
    kiln_wall_credit(woken ? &w->wake_res : &w->queue_res, queued,
                     kiln_wall_queue_stack(w, woken ? where : w->cpu_id), true);
  }
  uint64_t rest = off - queued_new;
  if (rest == 0) return;
  if (w->wait_id != 0 || force) {
    kiln_wall_credit(&w->off_res, rest, where, true);
  } else {
    w->pending_ns = rest; /* resolved at the next look, once it has run */
    w->pending_id = where;
  }
}

void kiln_wall_thread_exit(pid_t tid) {
  if (!kiln_wall_on() || tid <= 0) return;
  pthread_mutex_lock(&kiln_wall_lock);
  kiln_wall_thread_t *w = kiln_wall_find(tid, false);
  uint64_t cpu;
  if (w != NULL && w->wall_ns != 0 && kiln_wall_cpu_clock(tid, &cpu)) {
    /* Its last wait (a thread looked at rarely since it was idle, woken to
     * end) up to now; no /proc file is read on the program's thread. */
    uint64_t now = kiln_wall_now();
    uint64_t dwall = now > w->wall_ns ? now - w->wall_ns : 0, dcpu = cpu > w->cpu_ns ? cpu - w->cpu_ns : 0;
    uint32_t where = w->wait_id ? w->wait_id : w->last_wait_id ? w->last_wait_id : kiln_wall.unknown_id;
    if (dwall > dcpu && where != 0) kiln_wall_credit(&w->off_res, dwall - dcpu, where, true);
    if (w->pending_ns > 0 && w->pending_id != 0) kiln_wall_credit(&w->off_res, w->pending_ns, w->pending_id, true);
  }
  if (w != NULL) w->tid = KILN_WALL_TID_GONE;
  pthread_mutex_unlock(&kiln_wall_lock);
}

int kiln_wall_start(const kiln_config_t *cfg) {
  pthread_mutex_lock(&kiln_wall_lock);
  int rc = 0;
  if (kiln_wall.threads == NULL) {
    kiln_wall.threads = kiln_mem_map(sizeof(kiln_wall_thread_t) * KILN_WALL_SLOTS);
    kiln_wall.copy = kiln_mem_map(KILN_STACK_COPY_PERF + 64);
    kiln_wall.by_slot = kiln_mem_map(sizeof(kiln_wall_thread_t *) * KILN_THREADS_MAX);
    if (kiln_wall.threads == NULL || kiln_wall.copy == NULL || kiln_wall.by_slot == NULL) {
      rc = -ENOMEM;
      goto out;
    }
  }
  kiln_wall.hz = cfg->wall_hz > 0 ? cfg->wall_hz : KILN_WALL_HZ_DEFAULT;
  kiln_wall.cpu_hz = cfg->hz > 0 ? cfg->hz : KILN_HZ_DEFAULT;
  kiln_wall.max_depth = cfg->max_depth >= KILN_DEPTH_MIN ? cfg->max_depth : KILN_DEPTH_DEFAULT;
  kiln_wall.period_ns = 1000000000ull / (unsigned)kiln_wall.hz;
  kiln_wall.cpu_period_ns = 1000000000ull / (unsigned)kiln_wall.cpu_hz;
  kiln_wall.generation = UINT64_MAX; /* ids to be made */
  kiln_wall_check_generation();
  /* The blocked stacks are unwound with libunwind, loaded here on the
   * starting thread (on the collector, glibc would give that thread an
   * arena of its own: 64 MiB of address space). */
  kiln_unwind_copy_init();
  /* Can this process read its threads' states? Asked of the calling
   * thread (the answer is the same for all). */
  char buf[320];
  pid_t self = (pid_t)syscall(SYS_gettid);
  int n = kiln_wall_read_task(self, "syscall", buf, sizeof buf);
  kiln_wall.schedstat = kiln_wall_read_task(self, "schedstat", buf, sizeof buf) > 0;
  if (n < 0) {
    char e[64];
    kiln_log("wall: cannot read /proc/self/task/%d/syscall (%s): waits are counted without their stacks, "
             "as [wait: unknown]", (int)self, kiln_fmt_errno(-n, e, sizeof e));
    kiln_wall.probe_errno = -n;
    kiln_wall.probe_logged = true;
  }
  kiln_wall.next_tick_ns = kiln_wall_now();
  atomic_store_explicit(&kiln_wall.on, true, memory_order_release);
out:
  pthread_mutex_unlock(&kiln_wall_lock);
  return rc;
}

bool kiln_wall_on(void) { return atomic_load_explicit(&kiln_wall.on, memory_order_acquire); }

void kiln_wall_stop(void) { atomic_store_explicit(&kiln_wall.on, false, memory_order_release); }

uint64_t kiln_wall_next_ns(void) { return kiln_wall_on() ? kiln_wall.next_tick_ns : UINT64_MAX; }

void kiln_wall_tick(bool force) {
  if (!kiln_wall_on()) return;
  uint64_t now = kiln_wall_now();
  if (!force && now < kiln_wall.next_tick_ns) return;
  pthread_mutex_lock(&kiln_wall_lock);
  kiln_wall_check_generation();
  kiln_wall.tick++;
  /* On schedule, not drifting; a late tick does not cause a burst. */
  if (!force)
    while (kiln_wall.next_tick_ns <= now) kiln_wall.next_tick_ns += kiln_wall.period_ns;
  int high = kiln_threads_high();
  for (int i = 0; i < high; i++) {
    kiln_thread_t *t = kiln_threads_slot(i);
    if (atomic_load_explicit(&t->state, memory_order_acquire) != KILN_SLOT_ACTIVE || t->tid <= 0) continue;
    kiln_wall_thread_t *w = kiln_wall.by_slot[i];
    if (w == NULL || w->tid != t->tid) w = kiln_wall.by_slot[i] = kiln_wall_find(t->tid, true);
    if (w == NULL) continue;
    w->seen = kiln_wall.tick;
    if (w->skip > 0 && !force) {
      w->skip--;
      continue;
    }
    w->skip = 0;
    kiln_wall_look(w, now, force);
  }
  if (kiln_wall.tick % KILN_WALL_SWEEP_TICKS == 0) {
    for (size_t i = 0; i < KILN_WALL_SLOTS; i++) {
      kiln_wall_thread_t *w = &kiln_wall.threads[i];
      if (w->tid > 0 && kiln_wall.tick - w->seen > KILN_WALL_SWEEP_TICKS) w->tid = KILN_WALL_TID_GONE;
    }
  }
  if (kiln_wall.probe_errno != 0 && !kiln_wall.probe_logged) {
    kiln_wall.probe_logged = true;
    char e[64];
    kiln_log("wall: cannot read a thread's /proc/self/task/TID/syscall (%s): its waits are counted as "
             "[wait: unknown], without their stacks", kiln_fmt_errno(kiln_wall.probe_errno, e, sizeof e));
  }
  pthread_mutex_unlock(&kiln_wall_lock);
}

void kiln_wall_cpu_sample(pid_t tid, uint32_t stack_id) {
  if (!kiln_wall_on() || tid <= 0) return;
  pthread_mutex_lock(&kiln_wall_lock);
  kiln_wall_check_generation();
  kiln_wall_thread_t *w = kiln_wall_find(tid, true);
  if (w != NULL) {
    w->cpu_id = stack_id;
    /* A thread's CPU samples cannot stand for more CPU time than its clock
     * shows (with a few ticks of slack: samples are drained late): more
     * would be two events sampling one thread, counted once here. */
    w->run_ns += kiln_wall.cpu_period_ns;
    if (w->wall_ns != 0 && w->run_ns > w->cpu_ns - w->cpu_first_ns + 4 * kiln_wall.period_ns + 20000000ull) {
      w->run_ns -= kiln_wall.cpu_period_ns;
      atomic_fetch_add_explicit(&kiln_wall.cpu_over, 1, memory_order_relaxed);
    } else {
      kiln_wall_credit(&w->run_res, kiln_wall.cpu_period_ns, stack_id, false);
    }
  }
  pthread_mutex_unlock(&kiln_wall_lock);
}

void kiln_wall_stats(kiln_wall_stats_t *out) {
  memset(out, 0, sizeof *out);
  out->on = kiln_wall_on() || kiln_wall.period_ns != 0;
  out->hz = kiln_wall.hz;
  out->samples = atomic_load_explicit(&kiln_wall.samples, memory_order_relaxed);
  out->wait_samples = atomic_load_explicit(&kiln_wall.wait_samples, memory_order_relaxed);
  out->probes = atomic_load_explicit(&kiln_wall.probes, memory_order_relaxed);
  out->probe_failures = atomic_load_explicit(&kiln_wall.probe_failures, memory_order_relaxed);
  out->moved = atomic_load_explicit(&kiln_wall.moved, memory_order_relaxed);
  out->full = atomic_load_explicit(&kiln_wall.full, memory_order_relaxed);
  out->cpu_over = atomic_load_explicit(&kiln_wall.cpu_over, memory_order_relaxed);
  out->ticks = kiln_wall.tick;
  out->probe_errno = kiln_wall.probe_errno;
  out->schedstat = kiln_wall.schedstat;
}

void kiln_wall_after_fork_child(void) {
  /* The parent's threads are not the child's; the lock may have been held. */
  pthread_mutex_init(&kiln_wall_lock, NULL);
  if (kiln_wall.threads != NULL) memset(kiln_wall.threads, 0, sizeof(kiln_wall_thread_t) * KILN_WALL_SLOTS);
  if (kiln_wall.by_slot != NULL) memset(kiln_wall.by_slot, 0, sizeof(kiln_wall_thread_t *) * KILN_THREADS_MAX);
  kiln_wall.used = 0;
  kiln_wall.tick = 0;
  kiln_wall.generation = UINT64_MAX; /* ids to be made */
  atomic_store(&kiln_wall.samples, 0);
  atomic_store(&kiln_wall.wait_samples, 0);
  atomic_store(&kiln_wall.probes, 0);
  atomic_store(&kiln_wall.probe_failures, 0);
  atomic_store(&kiln_wall.moved, 0);
  atomic_store(&kiln_wall.full, 0);
  atomic_store(&kiln_wall.cpu_over, 0);
  kiln_wall.next_tick_ns = kiln_wall_now();
}
