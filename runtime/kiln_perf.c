/* kiln_perf.c — CPU samples without a signal: perf_event cpu-clock events
 * whose samples the kernel writes into rings mapped in this process, with
 * the user registers, a copy of the top of the user stack and, when kernel
 * time may be sampled, the kernel call chain. The collector reads the rings
 * and unwinds the copies (kiln_unwind_copy.c) in its own thread.
 *   - One event per CPU, opened on the starting thread with inherit (and
 *     inherit_thread, so that fork children do not inherit it): every
 *     thread created after it is sampled, whatever its signal mask.
 *   - One event per thread for threads that were there before the start
 *     and for the threads they create.
 * A ring keeps its event alive after the fd is closed, so the program never
 * sees kiln's descriptors and none count against its RLIMIT_NOFILE.
 * Opening runs in normal context (start, a new thread's first steps);
 * draining in the collector or a dump, under kiln_perf's lock. */
#include "kiln_internal.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum {
  KILN_PERF_RINGS_MAX = 4096,
  KILN_PERF_FIRST_COPY = 16384,     /* stack bytes a first ring's samples copy */
  KILN_PERF_FIRST_NS = 10000000,    /* a first ring grows when this old (10 ms) */
  KILN_PERF_REGS_MASK = 0xff01ff, /* AX..SP, IP, R8..R15 in perf's x86 numbering */
};

enum { KILN_PERF_FREE = 0, KILN_PERF_CLAIMED, KILN_PERF_LIVE };

typedef struct kiln_perf_ring {
  _Atomic int state;
  struct perf_event_mmap_page *page;
  size_t map_bytes;
  pid_t tid;          /* per-thread ring: its thread; 0: a per-CPU ring */
  uint64_t small_ns;  /* a first ring (kiln_perf_open_first): when it opened; 0 for others */
} kiln_perf_ring_t;

static struct {
  kiln_perf_ring_t *rings;
  _Atomic int high;
  int hz;
  bool kernel;       /* kernel time is sampled */
  bool inherit;      /* per-CPU inherited events work here */
  bool inherit_asked; /* and that has been asked */
  bool monotonic;     /* sample times are CLOCK_MONOTONIC (use_clockid works) */
  size_t pages;      /* data pages a ring asks for */
  size_t first_pages; /* and a process's first ring */
  _Atomic int small;  /* first rings live */
  pid_t pid;
  _Atomic uint64_t lost, samples, kernel_samples, open_failures, opened;
  size_t ring_bytes_peak;
  uint8_t scratch[65536 + 8] __attribute__((aligned(8))); /* a record that wraps */
} kiln_perf;

static pthread_mutex_t kiln_perf_lock = PTHREAD_MUTEX_INITIALIZER;

/* perf's x86 register numbers, in libunwind's order (kiln_regs_t). */
static const uint8_t kiln_perf_reg_of[KILN_REGS] = {0 /*ax*/,  3 /*dx*/,  2 /*cx*/,  1 /*bx*/,  4 /*si*/, 5 /*di*/,
                                                    6 /*bp*/,  7 /*sp*/,  16,        17,        18,       19,
                                                    20,        21,        22,        23,        8 /*ip*/};

static void kiln_perf_attr(struct perf_event_attr *a, int hz, bool kernel, bool inherit, uint64_t copy_max) {
  memset(a, 0, sizeof *a);
  a->type = PERF_TYPE_SOFTWARE;
  a->size = sizeof *a;
  a->config = PERF_COUNT_SW_CPU_CLOCK;
  a->sample_period = 1000000000ull / (unsigned)hz; /* cpu-clock counts ns */
  a->sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_REGS_USER |
                   PERF_SAMPLE_STACK_USER | (kernel ? PERF_SAMPLE_CALLCHAIN : 0);
  /* Times on CLOCK_MONOTONIC, comparable with kiln's own (Linux 4.1). */
  a->use_clockid = kiln_perf.monotonic;
  a->clockid = CLOCK_MONOTONIC;
  a->sample_regs_user = KILN_PERF_REGS_MASK;
  /* The whole record at the usual rates; less at high rates, where the
   * copying (~64 MB/s a busy CPU at 999 Hz) would cost the program. */
  uint64_t copy = 65536ull * 1000 / (unsigned)hz;
  a->sample_stack_user = copy > copy_max ? copy_max : copy < 8192 ? 8192 : copy & ~7ull;
  a->exclude_kernel = !kernel;
  a->exclude_callchain_user = 1; /* the user stack is unwound from the copy */
  a->exclude_hv = 1;
  a->watermark = 1;
  a->wakeup_watermark = 1u << 30; /* nobody waits: the collector polls */
  a->inherit = inherit;
  a->inherit_thread = inherit;
}

static int kiln_perf_open_attr(pid_t tid, int cpu, bool kernel, bool inherit, uint64_t copy_max, bool disabled) {
  struct perf_event_attr a;
  kiln_perf_attr(&a, kiln_perf.hz, kernel, inherit, copy_max);
  a.disabled = disabled;
  int fd = (int)syscall(SYS_perf_event_open, &a, tid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

static int kiln_perf_open_fd(pid_t tid, int cpu, bool kernel, bool inherit) {
  return kiln_perf_open_attr(tid, cpu, kernel, inherit, KILN_STACK_COPY_PERF, false);
}

/* Maps fd's ring (as large as the locked-memory limit allows) and closes
 * fd: the mapping holds the event from now on. */
static int kiln_perf_map_ring(int fd, pid_t tid, size_t want_pages, uint64_t small_ns) {
  long page = sysconf(_SC_PAGESIZE);
  void *map = MAP_FAILED;
  size_t bytes = 0;
  for (size_t pages = want_pages; pages >= 2 && map == MAP_FAILED; pages /= 2) {
    bytes = (pages + 1) * (size_t)page;
    map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  if (map == MAP_FAILED) return -errno;
  for (int i = 0; i < KILN_PERF_RINGS_MAX; i++) {
    kiln_perf_ring_t *r = &kiln_perf.rings[i];
    int expect = KILN_PERF_FREE;
    if (atomic_load_explicit(&r->state, memory_order_relaxed) != KILN_PERF_FREE ||
        !atomic_compare_exchange_strong_explicit(&r->state, &expect, KILN_PERF_CLAIMED, memory_order_acquire,
                                                 memory_order_relaxed))
      continue;
    r->page = map;
    r->map_bytes = bytes;
    r->tid = tid;
    r->small_ns = small_ns;
    if (small_ns) atomic_fetch_add_explicit(&kiln_perf.small, 1, memory_order_relaxed);
    int high = atomic_load_explicit(&kiln_perf.high, memory_order_relaxed);
    while (high < i + 1 && !atomic_compare_exchange_weak_explicit(&kiln_perf.high, &high, i + 1,
                                                                  memory_order_release, memory_order_relaxed)) {
    }
    atomic_store_explicit(&r->state, KILN_PERF_LIVE, memory_order_release);
    atomic_fetch_add_explicit(&kiln_perf.opened, 1, memory_order_relaxed);
    return i;
  }
  munmap(map, bytes);
  return -ENOSPC;
}

static int kiln_perf_add_ring(int fd, pid_t tid) {
  int rc = kiln_perf_map_ring(fd, tid, kiln_perf.pages, 0);
  close(fd);
  return rc < 0 ? rc : 0;
}

static uint64_t kiln_perf_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int kiln_perf_probe(int hz, bool want_kernel, bool *kernel) {
  if (kiln_perf.rings == NULL) {
    kiln_perf.rings = kiln_mem_map(sizeof(kiln_perf_ring_t) * KILN_PERF_RINGS_MAX);
    if (kiln_perf.rings == NULL) return -ENOMEM;
  }
  kiln_perf.hz = hz;
  kiln_perf.pid = getpid();
  /* Enough for 25 ms of samples on one CPU, each a stack copy (rounded up
   * to a power of two: 31 ms at 999 Hz; the collector drains every 8 ms).
   * Each process pays for its rings when it starts (the kernel allocates
   * and clears them): 2 MB a CPU at 999 Hz. */
  size_t want = (size_t)hz * (KILN_STACK_COPY_PERF + 512) / 40 / 4096, pages = 8;
  while (pages < want && pages < 2048) pages *= 2;
  kiln_perf.pages = pages;
  /* A process's first ring (kiln_perf_open_first) holds 14 ms of 16 KiB
   * copies, 256 KiB at 999 Hz: what a process that lives a millisecond
   * pays, not 2 MB. */
  want = (size_t)hz * (KILN_PERF_FIRST_COPY + 1536) / 70 / 4096;
  size_t first = 8;
  while (first < want && first < pages) first *= 2;
  kiln_perf.first_pages = first;
  /* The probe is the calling thread's first ring: if its event opens and
   * its ring maps, perf sampling works here, and a process that stays
   * with one thread keeps it (kiln_perf_open_first); else it is closed.
   * Whether per-CPU inherited events work is asked when they are first
   * wanted (kiln_perf_open_inherited). Each of these is a system call
   * that interrupts every CPU: a short process felt them. */
  int fd = -1;
  kiln_perf.kernel = false;
  kiln_perf.monotonic = true;
  for (int tries = 0; tries < 2 && fd < 0; tries++) {
    if (tries == 1) kiln_perf.monotonic = false; /* before Linux 4.1: times are perf's own */
    if (want_kernel) {
      fd = kiln_perf_open_attr(0, -1, true, false, KILN_PERF_FIRST_COPY, false);
      kiln_perf.kernel = fd >= 0;
    }
    if (fd < 0) fd = kiln_perf_open_attr(0, -1, false, false, KILN_PERF_FIRST_COPY, false);
  }
  if (fd < 0) return fd;
  int slot = kiln_perf_map_ring(fd, (pid_t)syscall(SYS_gettid), kiln_perf.first_pages, kiln_perf_now());
  close(fd);
  if (slot < 0) return slot;
  kiln_perf.inherit_asked = false;
  *kernel = kiln_perf.kernel;
  return 0;
}

bool kiln_perf_kernel(void) { return kiln_perf.kernel; }

int kiln_perf_open_inherited(void) {
  if (!kiln_perf.inherit_asked) {
    /* Inheritance without fork children needs inherit_thread (Linux 5.13). */
    int fd = kiln_perf_open_fd(0, 0, kiln_perf.kernel, true);
    kiln_perf.inherit = fd >= 0;
    kiln_perf.inherit_asked = true;
    if (fd >= 0) close(fd);
  }
  if (!kiln_perf.inherit) return -ENOTSUP;
  long ncpu = sysconf(_SC_NPROCESSORS_CONF);
  int opened = 0, err = 0;
  for (long cpu = 0; cpu < ncpu; cpu++) {
    int fd = kiln_perf_open_fd(0, (int)cpu, kiln_perf.kernel, true);
    if (fd == -ENODEV || fd == -EINVAL) continue; /* an offline or absent CPU */
    if (fd < 0 || (fd = kiln_perf_add_ring(fd, 0)) < 0) {
      err = fd;
      continue;
    }
    opened++;
  }
  if (opened == 0) {
    atomic_fetch_add_explicit(&kiln_perf.open_failures, 1, memory_order_relaxed);
    return err ? err : -ENODEV;
  }
  return 0;
}

int kiln_perf_open_first(pid_t tid) {
  if (kiln_perf_has_ring(tid)) return 0; /* the probe's */
  int fd = kiln_perf_open_attr(tid, -1, kiln_perf.kernel, false, KILN_PERF_FIRST_COPY, false);
  if (fd >= 0) {
    int slot = kiln_perf_map_ring(fd, tid, kiln_perf.first_pages, kiln_perf_now());
    close(fd);
    fd = slot < 0 ? slot : 0;
  }
  if (fd < 0) atomic_fetch_add_explicit(&kiln_perf.open_failures, 1, memory_order_relaxed);
  return fd < 0 ? fd : 0;
}

bool kiln_perf_has_ring(pid_t tid) {
  int high = atomic_load_explicit(&kiln_perf.high, memory_order_acquire);
  for (int i = 0; i < high; i++)
    if (atomic_load_explicit(&kiln_perf.rings[i].state, memory_order_acquire) == KILN_PERF_LIVE &&
        kiln_perf.rings[i].tid == tid)
      return true;
  return false;
}

bool kiln_perf_first_live(void) { return atomic_load_explicit(&kiln_perf.small, memory_order_relaxed) > 0; }

int kiln_perf_open_thread(pid_t tid) {
  int fd = kiln_perf_open_fd(tid, -1, kiln_perf.kernel, false);
  if (fd >= 0) fd = kiln_perf_add_ring(fd, tid);
  if (fd < 0) atomic_fetch_add_explicit(&kiln_perf.open_failures, 1, memory_order_relaxed);
  return fd < 0 ? fd : 0;
}

/* Reads one sample record (body after the header, n bytes). */
static void kiln_perf_sample(const uint64_t *w, size_t n, kiln_perf_sink_fn sink, void *ctx) {
  size_t nw = n / 8, i = 0;
  kiln_raw_sample_t s;
  memset(&s, 0, sizeof s);
  if (nw < 2) return;
  uint64_t ip = w[i++];
  s.pid = (pid_t)(uint32_t)w[i];
  s.tid = (pid_t)(uint32_t)(w[i] >> 32);
  i++;
  if (i >= nw) return;
  s.time = w[i++];
  s.has_time = kiln_perf.monotonic;
  s.kernel = ip >= 0xffff800000000000ull;
  if (kiln_perf.kernel) {
    if (i >= nw) return;
    uint64_t nr = w[i++];
    if (nr > nw - i) return;
    s.kchain = &w[i];
    s.nk = (unsigned)nr;
    i += nr;
  }
  if (i >= nw) return;
  uint64_t abi = w[i++];
  if (abi != PERF_SAMPLE_REGS_ABI_NONE) {
    unsigned nregs = (unsigned)__builtin_popcountll(KILN_PERF_REGS_MASK);
    if (nregs > nw - i) return;
    uint64_t perf_regs[24] = {0};
    for (unsigned bit = 0, k = 0; bit < 24; bit++)
      if (KILN_PERF_REGS_MASK >> bit & 1) perf_regs[bit] = w[i + k++];
    for (int r = 0; r < KILN_REGS; r++) s.regs.r[r] = perf_regs[kiln_perf_reg_of[r]];
    s.has_regs = true;
    i += nregs;
  }
  if (i < nw) {
    uint64_t size = w[i++];
    if (size / 8 <= nw - i && size / 8 + 1 <= nw - i + 1) {
      const uint8_t *data = (const uint8_t *)&w[i];
      uint64_t dyn = i + size / 8 < nw ? w[i + size / 8] : 0;
      s.stack = data;
      s.stack_len = dyn < size ? dyn : size;
    }
  }
  atomic_fetch_add_explicit(&kiln_perf.samples, 1, memory_order_relaxed);
  if (s.kernel) atomic_fetch_add_explicit(&kiln_perf.kernel_samples, 1, memory_order_relaxed);
  sink(&s, ctx);
}

static void kiln_perf_drain_ring(kiln_perf_ring_t *r, kiln_perf_sink_fn sink, void *ctx) {
  struct perf_event_mmap_page *pg = r->page;
  uint64_t head = __atomic_load_n(&pg->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = pg->data_tail;
  const uint8_t *data = (const uint8_t *)pg + pg->data_offset;
  uint64_t size = pg->data_size;
  if (size == 0 || head - tail > size) { /* cannot happen with a sane kernel: resync */
    __atomic_store_n(&pg->data_tail, head, __ATOMIC_RELEASE);
    return;
  }
  while (tail < head) {
    struct perf_event_header h;
    uint64_t off = tail % size;
    memcpy(&h, data + off, sizeof h); /* 8-aligned: never split */
    if (h.size < sizeof h || h.size > head - tail) break;
    const uint8_t *rec = data + off;
    if (off + h.size > size) { /* wraps: make it whole */
      size_t first = (size_t)(size - off);
      memcpy(kiln_perf.scratch, data + off, first);
      memcpy(kiln_perf.scratch + first, data, h.size - first);
      rec = kiln_perf.scratch;
    }
    if (h.type == PERF_RECORD_SAMPLE) {
      kiln_perf_sample((const uint64_t *)(rec + sizeof h), h.size - sizeof h, sink, ctx);
    } else if (h.type == PERF_RECORD_LOST && h.size >= sizeof h + 16) {
      uint64_t lost;
      memcpy(&lost, rec + sizeof h + 8, 8);
      atomic_fetch_add_explicit(&kiln_perf.lost, lost, memory_order_relaxed);
    }
    tail += h.size;
  }
  __atomic_store_n(&pg->data_tail, head, __ATOMIC_RELEASE);
}

static void kiln_perf_not_first(kiln_perf_ring_t *r) {
  if (r->small_ns == 0) return;
  r->small_ns = 0;
  atomic_fetch_sub_explicit(&kiln_perf.small, 1, memory_order_relaxed);
}

static void kiln_perf_close_ring(kiln_perf_ring_t *r) {
  kiln_perf_not_first(r);
  munmap(r->page, r->map_bytes);
  r->page = NULL;
  atomic_store_explicit(&r->state, KILN_PERF_FREE, memory_order_release);
}

/* A first ring that has lived 10 ms gives way to a full one: its event's
 * successor is opened disabled and mapped (the clearing takes a while)
 * before the old ring's last samples are read, then enabled just before
 * the old one is unmapped, which stops it. What is lost is the old
 * event's part-elapsed period, under one sample; the rest is seamless. If
 * the full ring cannot be had, the first one stays. Under kiln_perf_lock. */
static void kiln_perf_grow(kiln_perf_ring_t *r, kiln_perf_sink_fn sink, void *ctx) {
  int fd = kiln_perf_open_attr(r->tid, -1, kiln_perf.kernel, false, KILN_STACK_COPY_PERF, true);
  int slot = fd < 0 ? fd : kiln_perf_map_ring(fd, r->tid, kiln_perf.pages, 0);
  if (slot < 0) {
    if (fd >= 0) close(fd);
    kiln_perf_not_first(r);
    return;
  }
  kiln_perf_drain_ring(r, sink, ctx);
  ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
  close(fd);
  kiln_perf_close_ring(r);
}

void kiln_perf_drain(kiln_perf_sink_fn sink, void *ctx, bool reap) {
  pthread_mutex_lock(&kiln_perf_lock);
  int high = atomic_load_explicit(&kiln_perf.high, memory_order_acquire);
  uint64_t now = atomic_load_explicit(&kiln_perf.small, memory_order_relaxed) > 0 ? kiln_perf_now() : 0;
  for (int i = 0; i < high; i++) {
    kiln_perf_ring_t *r = &kiln_perf.rings[i];
    if (atomic_load_explicit(&r->state, memory_order_acquire) != KILN_PERF_LIVE) continue;
    kiln_perf_drain_ring(r, sink, ctx);
    if (r->small_ns && now - r->small_ns >= KILN_PERF_FIRST_NS) {
      kiln_perf_grow(r, sink, ctx);
      continue;
    }
    /* A thread's own ring outlives the thread: close it once it is gone. */
    if (reap && r->tid > 0 && syscall(SYS_tgkill, kiln_perf.pid, r->tid, 0) < 0 && errno == ESRCH)
      kiln_perf_close_ring(r);
  }
  pthread_mutex_unlock(&kiln_perf_lock);
}

void kiln_perf_close_thread(pid_t tid) {
  pthread_mutex_lock(&kiln_perf_lock);
  int high = atomic_load_explicit(&kiln_perf.high, memory_order_acquire);
  for (int i = 0; i < high; i++) {
    kiln_perf_ring_t *r = &kiln_perf.rings[i];
    if (atomic_load_explicit(&r->state, memory_order_acquire) == KILN_PERF_LIVE && r->tid == tid)
      kiln_perf_close_ring(r);
  }
  pthread_mutex_unlock(&kiln_perf_lock);
}

void kiln_perf_try_drain(kiln_perf_sink_fn sink, void *ctx) {
  if (pthread_mutex_trylock(&kiln_perf_lock) != 0) return;
  int high = atomic_load_explicit(&kiln_perf.high, memory_order_acquire);
  for (int i = 0; i < high; i++)
    if (atomic_load_explicit(&kiln_perf.rings[i].state, memory_order_acquire) == KILN_PERF_LIVE)
      kiln_perf_drain_ring(&kiln_perf.rings[i], sink, ctx);
  pthread_mutex_unlock(&kiln_perf_lock);
}

void kiln_perf_close_all(kiln_perf_sink_fn sink, void *ctx) {
  kiln_perf_stats_t st;
  kiln_perf_stats(&st); /* the peak, before the rings go */
  pthread_mutex_lock(&kiln_perf_lock);
  int high = atomic_load_explicit(&kiln_perf.high, memory_order_acquire);
  for (int i = 0; i < high; i++) {
    kiln_perf_ring_t *r = &kiln_perf.rings[i];
    if (atomic_load_explicit(&r->state, memory_order_acquire) != KILN_PERF_LIVE) continue;
    if (sink != NULL) kiln_perf_drain_ring(r, sink, ctx);
    kiln_perf_close_ring(r);
  }
  pthread_mutex_unlock(&kiln_perf_lock);
}

void kiln_perf_stats(kiln_perf_stats_t *out) {
  out->samples = atomic_load_explicit(&kiln_perf.samples, memory_order_relaxed);
  out->kernel_samples = atomic_load_explicit(&kiln_perf.kernel_samples, memory_order_relaxed);
  out->lost = atomic_load_explicit(&kiln_perf.lost, memory_order_relaxed);
  out->open_failures = atomic_load_explicit(&kiln_perf.open_failures, memory_order_relaxed);
  out->opened = atomic_load_explicit(&kiln_perf.opened, memory_order_relaxed);
  out->rings = 0;
  size_t bytes = 0;
  int high = atomic_load_explicit(&kiln_perf.high, memory_order_acquire);
  for (int i = 0; i < high; i++)
    if (atomic_load_explicit(&kiln_perf.rings[i].state, memory_order_acquire) == KILN_PERF_LIVE) {
      out->rings++;
      bytes += kiln_perf.rings[i].map_bytes;
    }
  /* The most the rings held at once: the profiler's memory does not seem to
   * shrink because sampling stopped before the last set. */
  if (bytes > kiln_perf.ring_bytes_peak) kiln_perf.ring_bytes_peak = bytes;
  out->ring_bytes = kiln_perf.ring_bytes_peak;
}

void kiln_perf_fork_prepare(void) { pthread_mutex_lock(&kiln_perf_lock); }
void kiln_perf_fork_parent(void) { pthread_mutex_unlock(&kiln_perf_lock); }

void kiln_perf_after_fork_child(void) {
  /* The parent's rings are not mapped here (perf maps them VM_DONTCOPY):
   * forget them without unmapping, and start the counts over. */
  pthread_mutex_init(&kiln_perf_lock, NULL);
  int high = atomic_load_explicit(&kiln_perf.high, memory_order_relaxed);
  for (int i = 0; i < high; i++) {
    kiln_perf.rings[i].page = NULL;
    atomic_store_explicit(&kiln_perf.rings[i].state, KILN_PERF_FREE, memory_order_relaxed);
  }
  atomic_store_explicit(&kiln_perf.high, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_perf.small, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_perf.samples, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_perf.kernel_samples, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_perf.lost, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_perf.open_failures, 0, memory_order_relaxed);
  atomic_store_explicit(&kiln_perf.opened, 0, memory_order_relaxed);
  kiln_perf.pid = getpid();
}
