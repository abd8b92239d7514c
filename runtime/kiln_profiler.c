/* kiln_profiler.c — the top of the runtime: starts and stops the parts in
 * order, follows the process through fork and exec and thread exits, and
 * writes the profiles and the summary at dump time. Implements the public
 * API of kiln.h. Normal context only; fork handlers run in the forking
 * thread (the child's with only that thread alive). */
#include "kiln_internal.h"
#include "kiln.h"

#include <dirent.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static struct {
  kiln_config_t cfg;
  _Atomic bool active;
  bool atfork_registered;
  bool key_created;
  pthread_key_t thread_key;
  pid_t pid;
  char prog[128];
  double wall_start, user_start, sys_start, wall_start_unix;
  bool out_warned;
  unsigned dump_seq;         /* tagged sets written */
  double last_set_unix;      /* when the last tagged set was written */
  bool dump_signal_on;       /* KILN_DUMP_SIGNAL is ours */
  bool collector_on;         /* the collector thread runs: dumps can be handed to it */
  bool exec_quiesced;        /* the sampler was quiesced for an exec */
  bool exec_collector;       /* and the collector stopped, to start again if it fails */
  /* An exit signal's dump, handed from the signal's thread to the
   * collector (KILN_PROFILER_EXIT_*); a futex word. */
  _Atomic int exit_state;
  int exit_sig;
} kiln_profiler;

/* Address space kept back for the dump (kiln_mem_reserve_init): enough
 * for the folded, stacks and meta buffers of a small profile. */
enum { KILN_PROFILER_RESERVE = 2 << 20 };

enum {
  KILN_PROFILER_EXIT_IDLE = 0,
  KILN_PROFILER_EXIT_REQUESTED, /* the collector has been woken */
  KILN_PROFILER_EXIT_RUNNING,   /* it writes the profile */
  KILN_PROFILER_EXIT_DONE,
  KILN_PROFILER_EXIT_ABANDONED, /* it did not start in time: the signal's thread dumps */
};

static pthread_mutex_t kiln_profiler_lock = PTHREAD_MUTEX_INITIALIZER;
/* The CPU sampler runs: for the cpu profile, and for wall mode's running
 * stacks (KILN_MODE=wall alone samples CPU time but writes no cpu file). */
static bool kiln_profiler_sampling(void) {
  return kiln_profiler.cfg.mode & (KILN_MODE_CPU_BIT | KILN_MODE_WALL_BIT);
}
static void kiln_profiler_on_dump(kiln_dump_reason_t reason);
static int kiln_profiler_dump_signal(void);
static __thread sigset_t kiln_tls_fork_mask;
static __thread bool kiln_tls_fork_locked; /* prepare took the collector's locks */
static __thread bool kiln_tls_fork_warmed __attribute__((tls_model("initial-exec")));
/* The live maps were locked by this fork's prepare handler (only when the
 * heap is tracked: in cpu mode, unlocking 512 shards in the child costs
 * copy-on-write faults for nothing). */
static __thread bool kiln_tls_fork_heap __attribute__((tls_model("initial-exec")));

static double kiln_profiler_now(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void kiln_profiler_rusage(double *user, double *sys) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  *user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
  *sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void kiln_profiler_baseline(void) {
  kiln_profiler.pid = getpid();
  kiln_profiler.wall_start_unix = kiln_profiler_now(CLOCK_REALTIME);
  kiln_profiler.wall_start = kiln_profiler_now(CLOCK_MONOTONIC);
  kiln_profiler_rusage(&kiln_profiler.user_start, &kiln_profiler.sys_start);
}

/* The program's name, safe as part of a file name. */
static void kiln_profiler_set_prog(void) {
  const char *name = program_invocation_short_name;
  if (name == NULL || *name == '\0') name = "prog";
  size_t n = 0;
  for (; name[n] && n < sizeof kiln_profiler.prog - 1; n++) {
    char c = name[n];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '+';
    kiln_profiler.prog[n] = ok ? c : '_';
  }
  kiln_profiler.prog[n] = '\0';
}

static void kiln_profiler_thread_key_dtor(void *value) {
  (void)value;
  kiln_profiler_thread_end();
}

/* Registers and arms the calling thread (warm: set up its unwinder state
 * first; the fork child's thread was warmed in the parent). */
static void kiln_profiler_add_self(bool warm) {
  if (warm) kiln_unwind_thread_init(kiln_profiler.cfg.unwind);
  kiln_thread_t *t = kiln_threads_register((pid_t)syscall(SYS_gettid), true);
  if (t == NULL) return;
  if (kiln_profiler.key_created) pthread_setspecific(kiln_profiler.thread_key, t);
  kiln_sampler_thread_arm(t);
}

/* Threads that existed before start (created by an earlier constructor, or
 * before kiln_start): sampled from outside, found through /proc. */
static void kiln_profiler_add_existing(void) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return;
  pid_t self = (pid_t)syscall(SYS_gettid);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    pid_t tid = (pid_t)atoi(e->d_name);
    if (tid <= 0 || tid == self) continue;
    kiln_thread_t *t = kiln_threads_register(tid, false);
    if (t != NULL && kiln_sampler_thread_arm(t) < 0) kiln_threads_retire(t);
  }
  closedir(d);
}

static _Atomic unsigned kiln_profiler_forks; /* this process's, through the handlers */

/* The modules of a stack, for the symbols a fork child will need. The
 * first 4096 stacks name the modules that matter; a bound on the cost. */
static void kiln_profiler_warm_stack(kiln_stack_t *s, void *ctx) {
  unsigned *seen = ctx;
  if ((*seen)++ >= 4096) return;
  const kiln_module_t *last = NULL;
  for (uint32_t i = 0; i < s->depth; i++) {
    uint64_t pc = s->pcs[i];
    if (pc < KILN_PC_MARKERS || kiln_pc_is_wait(pc)) continue;
    const kiln_module_t *m = kiln_modules_find((uintptr_t)pc - 1);
    if (m == NULL || m == last) continue;
    last = m;
    kiln_symbols_warm(m);
  }
}

static void kiln_profiler_fork_prepare(void) {
  sigset_t prof;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  pthread_sigmask(SIG_BLOCK, &prof, &kiln_tls_fork_mask);
  /* From the second fork on, the children find the symbols of the modules
   * the stacks so far are in already read (a storm of children read them
   * once each: most of what each cost at its exit). First, while no lock
   * of kiln's is taken: reading them may allocate. */
  bool active = atomic_load(&kiln_profiler.active);
  kiln_heap_guard_enter();
  if (kiln_symbols_fork_prepare(active && atomic_fetch_add(&kiln_profiler_forks, 1) >= 1)) {
    unsigned stacks = 0;
    kiln_stacktab_foreach(kiln_profiler_warm_stack, &stacks);
  }
  kiln_heap_guard_leave();
  /* The child's thread is this one: its unwinder state is set up here, in
   * the parent, where nothing is held by a thread that will not exist.
   * Then no thread may be inside libunwind at the fork (its locks), nor
   * mid-update in a shard of the live map, nor draining (the collector's
   * unwinds). */
  if (atomic_load(&kiln_profiler.active) && (kiln_profiler.cfg.mode & (KILN_MODE_ALLOC_BIT | KILN_MODE_LOCK_BIT)) &&
      !kiln_tls_fork_warmed) {
    kiln_unwind_thread_init(kiln_profiler.cfg.unwind);
    kiln_tls_fork_warmed = true; /* once a thread: a fork storm pays it once */
  }
  kiln_unwind_fork_prepare();
  kiln_tls_fork_heap = kiln_heap_started();
  if (kiln_tls_fork_heap) kiln_heap_fork_prepare();
  kiln_tls_fork_locked = atomic_load(&kiln_profiler.active);
  if (kiln_tls_fork_locked) kiln_collector_fork_prepare();
}

static void kiln_profiler_fork_parent(void) {
  kiln_symbols_fork_parent();
  if (kiln_tls_fork_locked) kiln_collector_fork_parent();
  kiln_tls_fork_locked = false;
  if (kiln_tls_fork_heap) kiln_heap_fork_release();
  kiln_unwind_fork_done();
  pthread_sigmask(SIG_SETMASK, &kiln_tls_fork_mask, NULL);
}

/* The samples this thread took so far were of kiln's own start. */
static void kiln_profiler_own_start_done(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  kiln_collector_own_until((pid_t)syscall(SYS_gettid), (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
}

/* In a fork child or after a failed exec: the collector again, when this
 * profile needs one (samples, interval dumps, the dump signal). */
static void kiln_profiler_collector_start(void) {
  if (kiln_profiler_sampling())
    kiln_profiler.collector_on = kiln_collector_start(&kiln_profiler.cfg, kiln_profiler.cfg.hz,
                                                      kiln_profiler.cfg.interval_ns, kiln_profiler_dump_signal(),
                                                      kiln_profiler_on_dump) == 0;
  else if (kiln_profiler.cfg.interval_ns || kiln_profiler.dump_signal_on)
    kiln_profiler.collector_on = kiln_collector_start(&kiln_profiler.cfg, 0, kiln_profiler.cfg.interval_ns,
                                                      kiln_profiler_dump_signal(), kiln_profiler_on_dump) == 0;
}

static void kiln_profiler_fork_child(void) {
  kiln_symbols_fork_child();
  atomic_store(&kiln_profiler_forks, 0);
  if (kiln_tls_fork_heap) kiln_heap_fork_release();
  kiln_unwind_fork_done();
  pthread_mutex_init(&kiln_profiler_lock, NULL);
  if (kiln_tls_fork_locked) { /* the locks taken in prepare are new here */
    kiln_perf_after_fork_child();
    kiln_collector_after_fork_child();
    kiln_tls_fork_locked = false;
  }
  if (atomic_load(&kiln_profiler.active)) {
    /* The child starts a profile of its own: none of the parent's samples,
     * threads, events or allocations over the run come along. The blocks
     * live at fork are live in the child too, and stay tracked. */
    kiln_heap_guard_enter();
    kiln_tree_after_fork_child(); /* below the top now: silent */
    atomic_store(&kiln_profiler.exit_state, KILN_PROFILER_EXIT_IDLE);
    kiln_profiler.collector_on = false;
    kiln_profiler.exec_quiesced = false;
    kiln_profiler.exec_collector = false;
    kiln_sampler_after_fork_child();
    kiln_threads_after_fork_child();
    uint64_t fresh = KILN_COUNTS_CPU | (1u << KILN_COUNT_MARK_CPU) | (1ull << KILN_COUNT_WALL) |
                     (1ull << KILN_COUNT_MARK_WALL) | (1u << KILN_COUNT_MARK_ALLOC_BYTES) |
                     (1u << KILN_COUNT_MARK_ALLOC_COUNT) | KILN_COUNTS_LOCK;
    /* With no live blocks or lock sites tracked, nothing the child keeps
     * names a stack of the parent's (the wall profiler's ids go with the
     * table's generation): a new table, not the parent's with its counts
     * zeroed, which copied every page of it into the child (a bash of 438
     * stacks: some 50 page copies a fork, more as the parent runs). */
    if (kiln_profiler.cfg.mode & (KILN_MODE_ALLOC_BIT | KILN_MODE_LOCK_BIT)) kiln_stacktab_clear_counts(fresh);
    else kiln_stacktab_renew(fresh);
    kiln_lock_reset();
    kiln_heap_after_fork_child();
    kiln_profiler.dump_seq = 0;
    kiln_modules_after_fork_child();
    kiln_collector_after_fork_child();
    kiln_wall_after_fork_child();
    kiln_profiler_baseline();
    kiln_profiler.out_warned = false;
    if (kiln_profiler_sampling()) {
      kiln_sampler_resume(); /* perf: this thread's rings, inherited by its threads */
      kiln_profiler_add_self(false);
    }
    kiln_profiler_collector_start();
    kiln_profiler_own_start_done(); /* the child's set-up */
    kiln_heap_guard_leave();
  }
  pthread_sigmask(SIG_SETMASK, &kiln_tls_fork_mask, NULL);
}

static int kiln_profiler_start_cfg(const kiln_config_t *cfg) {
  kiln_heap_guard_enter(); /* what kiln allocates here is not the program's */
  pthread_mutex_lock(&kiln_profiler_lock);
  int rc = 0;
  if (atomic_load(&kiln_profiler.active)) {
    rc = -EALREADY;
    goto out;
  }
  kiln_libc_resolve();
  kiln_profiler.cfg = *cfg;
  kiln_profiler_set_prog();
  /* Opened now, with the rights the process starts with (a daemon that
   * drops root later still writes there); a failure is reported at the
   * first write. */
  kiln_out_open(kiln_profiler.cfg.out_dir);
  kiln_tree_start(kiln_profiler.cfg.out_dir);
  /* The room the dump keeps for itself when the program fills the
   * address space (kiln_mem.c). */
  kiln_mem_reserve_init(KILN_PROFILER_RESERVE);
  if ((rc = kiln_threads_init()) < 0 || (rc = kiln_stacktab_init(1u << 18)) < 0 ||
      (rc = kiln_modules_init()) < 0) {
    kiln_log("cannot map the profiler's memory; profiling disabled");
    goto out;
  }
  bool cpu = kiln_profiler_sampling(), alloc = kiln_profiler.cfg.mode & KILN_MODE_ALLOC_BIT;
  bool lock = kiln_profiler.cfg.mode & KILN_MODE_LOCK_BIT;
  /* In-process unwinding serves the malloc and lock hooks; CPU samples are
   * unwound from their copies (kiln_unwind_copy.c). */
  if (alloc || lock) {
    kiln_unwind_refuse_pipes(true);
    kiln_unwind_init(&kiln_profiler.cfg.unwind);
    kiln_unwind_refuse_pipes(false);
  }
  if (!kiln_profiler.key_created)
    kiln_profiler.key_created =
        pthread_key_create(&kiln_profiler.thread_key, kiln_profiler_thread_key_dtor) == 0;
  if (cpu && (rc = kiln_sampler_start(&kiln_profiler.cfg)) < 0) {
    if (!alloc && !lock) goto out;
    if (kiln_profiler.cfg.mode & KILN_MODE_WALL_BIT)
      kiln_log("wall: the CPU sampler could not start, and wall mode needs it; wall profiling off");
    kiln_profiler.cfg.mode &= ~(KILN_MODE_CPU_BIT | KILN_MODE_WALL_BIT); /* the heap and locks go on alone */
    cpu = false;
    rc = 0;
  }
  if ((kiln_profiler.cfg.mode & KILN_MODE_WALL_BIT) && kiln_wall_start(&kiln_profiler.cfg) < 0) {
    kiln_log("wall: cannot map its memory; wall profiling off");
    kiln_profiler.cfg.mode &= ~KILN_MODE_WALL_BIT;
  }
  kiln_profiler_baseline();
  atomic_store(&kiln_profiler.active, true);
  kiln_crash_start(&kiln_profiler.cfg);
  kiln_profiler.dump_signal_on = kiln_profiler.cfg.dump_signal > 0 && kiln_crash_dump_signal_on();
  kiln_profiler.dump_seq = 0;
  kiln_profiler.last_set_unix = kiln_profiler_now(CLOCK_REALTIME);
  if (cpu || kiln_profiler.cfg.interval_ns || kiln_profiler.dump_signal_on) {
    if (cpu) {
      kiln_profiler_add_self(true);
      kiln_profiler_add_existing();
    }
    if ((rc = kiln_collector_start(&kiln_profiler.cfg, cpu ? kiln_profiler.cfg.hz : 0,
                                   kiln_profiler.cfg.interval_ns, kiln_profiler_dump_signal(),
                                   kiln_profiler_on_dump)) < 0) {
      kiln_log("cannot start the collector thread (%s); profiling disabled", strerror(-rc));
      kiln_sampler_stop(NULL, NULL);
      atomic_store(&kiln_profiler.active, false);
      goto out;
    }
    kiln_profiler.collector_on = true;
  }
  if (alloc) kiln_scan_prepare(&kiln_profiler.cfg); /* before the first tracked block */
  if (alloc && (rc = kiln_heap_start(&kiln_profiler.cfg)) < 0)
    kiln_log("cannot map the allocation tracker's memory; allocation profiling off");
  if (lock) kiln_lock_start(&kiln_profiler.cfg);
  if (!kiln_profiler.atfork_registered)
    kiln_profiler.atfork_registered = pthread_atfork(kiln_profiler_fork_prepare, kiln_profiler_fork_parent,
                                                     kiln_profiler_fork_child) == 0;
  kiln_profiler_own_start_done();
  rc = 0;
out:
  pthread_mutex_unlock(&kiln_profiler_lock);
  kiln_heap_guard_leave();
  return rc;
}

int kiln_profiler_ensure_heap(void) {
  if (kiln_heap_active()) return kiln_heap_exact() ? 0 : -EINVAL;
  kiln_heap_guard_enter();
  pthread_mutex_lock(&kiln_profiler_lock);
  int rc = 0;
  if (!kiln_heap_active()) {
    kiln_config_t cfg;
    if (kiln_options_from_env(&cfg) != 0) kiln_options_defaults(&cfg);
    kiln_libc_resolve();
    if (cfg.alloc_sample != 0) {
      rc = -EINVAL; /* a sampled heap cannot see every block */
    } else if ((rc = kiln_stacktab_init(1u << 18)) == 0 && (rc = kiln_modules_init()) == 0) {
      kiln_unwind_refuse_pipes(true);
      kiln_unwind_init(&cfg.unwind);
      kiln_unwind_refuse_pipes(false);
      rc = kiln_heap_start(&cfg);
      if (!kiln_profiler.atfork_registered)
        kiln_profiler.atfork_registered = pthread_atfork(kiln_profiler_fork_prepare, kiln_profiler_fork_parent,
                                                         kiln_profiler_fork_child) == 0;
    }
  } else if (!kiln_heap_exact()) {
    rc = -EINVAL;
  }
  pthread_mutex_unlock(&kiln_profiler_lock);
  kiln_heap_guard_leave();
  return rc;
}

void kiln_profiler_start_env(void) {
  kiln_config_t cfg;
  kiln_tree_start(NULL); /* below the top, even a bad KILN_* value is not said on stderr */
  if (kiln_options_from_env(&cfg) != 0) return;
  kiln_profiler_start_cfg(&cfg);
}

bool kiln_profiler_active(void) { return atomic_load(&kiln_profiler.active); }

void kiln_profiler_before_thread(void) {
  if (!atomic_load(&kiln_profiler.active) || !kiln_profiler_sampling() || !kiln_sampler_solo())
    return;
  kiln_heap_guard_enter();
  kiln_collector_drain(); /* the solo ring's samples, before it goes */
  kiln_sampler_leave_solo();
  kiln_heap_guard_leave();
}

void kiln_profiler_thread_begin(bool parent_covered) {
  if (!atomic_load(&kiln_profiler.active) || !kiln_profiler_sampling() ||
      kiln_sampler_stepped_aside())
    return;
  kiln_heap_guard_enter();
  kiln_sampler_thread_inherit(parent_covered);
  kiln_profiler_add_self(true);
  kiln_heap_guard_leave();
}

void kiln_profiler_thread_end(void) {
  if (atomic_load(&kiln_profiler.active) && kiln_profiler_sampling()) {
    char name[17] = "";
    prctl(PR_GET_NAME, name, 0, 0, 0);
    kiln_collector_thread_exit((pid_t)syscall(SYS_gettid), name);
    if (kiln_profiler.cfg.mode & KILN_MODE_WALL_BIT) kiln_wall_thread_exit((pid_t)syscall(SYS_gettid));
  }
  kiln_thread_t *t = kiln_tls_thread;
  /* The slot may have been retired by kiln_stop and reused since. */
  if (t == NULL || t->tid != (pid_t)syscall(SYS_gettid) ||
      atomic_load(&t->state) != KILN_SLOT_ACTIVE)
    return;
  /* The thread is ending: no signal may run on its slot from here on. */
  sigset_t prof;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  pthread_sigmask(SIG_BLOCK, &prof, NULL);
  kiln_sampler_thread_disarm(t);
  kiln_threads_retire(t);
}

/* ------------------------------------------------------------------ dump */

typedef struct kiln_profiler_report {
  kiln_thread_totals_t threads;
  kiln_stacktab_stats_t table;
  kiln_heap_stats_t heap;
  kiln_perf_stats_t perf;
  kiln_collector_stats_t coll;
  kiln_lock_stats_t lock;
  uint64_t cpu_total, wall_total;
  kiln_wall_stats_t wallstats;
  uint64_t samples, dropped, truncated, kernel_samples, threads_seen; /* over the run */
  uint64_t unsampled;        /* live threads with CPU time and no sample */
  double unsampled_seconds;  /* their CPU time */
  char unsampled_names[160];
  double user, sys, wall, profiler_cpu, delivered_hz;
} kiln_profiler_report_t;

/* One "threads_list" entry of meta.json. */
static void kiln_profiler_meta_thread(const kiln_thread_seen_t *t, void *ctx) {
  kiln_buf_t *b = ctx;
  if (b->len == 0 || b->data[b->len - 1] != '[') kiln_buf_puts(b, ", ");
  kiln_buf_printf(b, "{\"tid\": %d, \"name\": \"", (int)t->tid);
  for (const char *p = t->name; *p; p++)
    if ((unsigned char)*p >= 0x20 && *p != '"' && *p != '\\') kiln_buf_put(b, p, 1);
  kiln_buf_printf(b, "\", \"samples\": %llu, \"kernel_samples\": %llu}", (unsigned long long)t->samples,
                  (unsigned long long)t->kernel);
}

/* Live threads that used CPU time but gave no sample: sampling could not
 * see them (threads the inheritance and the wrappers both missed). */
static void kiln_profiler_unsampled(kiln_profiler_report_t *r, int hz) {
  DIR *d = opendir("/proc/self/task");
  if (d == NULL) return;
  long tick = sysconf(_SC_CLK_TCK);
  pid_t collector = 0, self = (pid_t)syscall(SYS_gettid);
  struct dirent *e;
  size_t len = 0;
  while ((e = readdir(d)) != NULL) {
    pid_t tid = (pid_t)atoi(e->d_name);
    /* The dumping thread's time includes this dump's own work, which no
     * sample can see. */
    if (tid <= 0 || tid == self || kiln_collector_thread_seen(tid)) continue;
    char path[64], stat[512], comm[32] = "?";
    kiln_fmt(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "re");
    if (f == NULL) continue;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    char *open = strchr(stat, '('), *close = strrchr(stat, ')');
    if (open == NULL || close == NULL) continue;
    kiln_fmt(comm, sizeof comm, "%.*s", (int)(close - open - 1), open + 1);
    if (strcmp(comm, "kiln-collector") == 0) {
      collector = tid;
      continue;
    }
    unsigned long long utime = 0, stime = 0;
    /* fields after the name: state ppid ... utime(14) stime(15) */
    if (sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) continue;
    double cpu = (double)(utime + stime) / (double)tick;
    if (cpu * hz < 3) continue; /* too little CPU time to expect a sample */
    r->unsampled++;
    r->unsampled_seconds += cpu;
    if (len < sizeof r->unsampled_names - 40)
      len += (size_t)kiln_fmt(r->unsampled_names + len, sizeof r->unsampled_names - len, "%s%s[%d]",
                              len ? ", " : "", comm, (int)tid);
  }
  (void)collector;
  closedir(d);
}

/* One profile set being written. */
typedef struct kiln_profiler_set {
  kiln_dump_reason_t reason;
  bool tagged;     /* an interval/on-demand set: <prog>.<pid>.<tag>.<kind> */
  bool delta;      /* counts since the last tagged set */
  kiln_dump_mode_t mode; /* chosen by the call site */
  int fatal_signal;
  unsigned seq;
  char tag[40];
  double from_unix, until_unix;
  char pprof_files[3][320]; /* cpu, heap, lock */
  kiln_health_t health;
} kiln_profiler_set_t;

/* The files of a dump: the count kind each holds and its name suffix;
 * leak: written only after a leak scan with KILN_LEAK_CHECK=full. */
static const struct {
  kiln_count_kind_t kind;
  unsigned mode;
  const char *suffix;
  bool leak;
} kiln_profiler_files[] = {
    {KILN_COUNT_CPU, KILN_MODE_CPU_BIT, "cpu", false},
    {KILN_COUNT_WALL, KILN_MODE_WALL_BIT, "wall", false},
    {KILN_COUNT_ALLOC_BYTES, KILN_MODE_ALLOC_BIT, "alloc_bytes", false},
    {KILN_COUNT_ALLOC_COUNT, KILN_MODE_ALLOC_BIT, "alloc_count", false},
    {KILN_COUNT_LIVE_BYTES, KILN_MODE_ALLOC_BIT, "leak_bytes", false},
    {KILN_COUNT_LIVE_COUNT, KILN_MODE_ALLOC_BIT, "leak_count", false},
    {KILN_COUNT_PEAK_BYTES, KILN_MODE_ALLOC_BIT, "peak_bytes", false},
    {KILN_COUNT_TEMP_COUNT, KILN_MODE_ALLOC_BIT, "temp_count", false},
    {KILN_COUNT_DEFINITE_BYTES, KILN_MODE_ALLOC_BIT, "definite_bytes", true},
    {KILN_COUNT_DEFINITE_COUNT, KILN_MODE_ALLOC_BIT, "definite_count", true},
    {KILN_COUNT_INDIRECT_BYTES, KILN_MODE_ALLOC_BIT, "indirect_bytes", true},
    {KILN_COUNT_INDIRECT_COUNT, KILN_MODE_ALLOC_BIT, "indirect_count", true},
    {KILN_COUNT_POSSIBLE_BYTES, KILN_MODE_ALLOC_BIT, "possible_bytes", true},
    {KILN_COUNT_POSSIBLE_COUNT, KILN_MODE_ALLOC_BIT, "possible_count", true},
    {KILN_COUNT_REACHABLE_BYTES, KILN_MODE_ALLOC_BIT, "reachable_bytes", true},
    {KILN_COUNT_REACHABLE_COUNT, KILN_MODE_ALLOC_BIT, "reachable_count", true},
    {KILN_COUNT_LOCK_WAIT_NS, KILN_MODE_LOCK_BIT, "lock_wait_ns", false},
    {KILN_COUNT_LOCK_WAIT_COUNT, KILN_MODE_LOCK_BIT, "lock_wait_count", false},
};
enum { KILN_PROFILER_FILES = sizeof kiln_profiler_files / sizeof kiln_profiler_files[0] };

static const char *const kiln_profiler_reasons[] = {"exit", "interval", "signal", "api",
                                                     "exec", "_exit", "exit-signal"};

static void kiln_profiler_meta(kiln_buf_t *b, const kiln_profiler_report_t *r, char names[][320], int nfiles,
                               const kiln_profiler_set_t *set) {
  const kiln_config_t *c = &kiln_profiler.cfg;
  bool cpu = kiln_profiler_sampling(), alloc = c->mode & KILN_MODE_ALLOC_BIT;
  kiln_buf_printf(b, "{\n  \"kiln_version\": \"%s\",\n  \"prog\": \"%s\",\n  \"pid\": %d,\n",
                  KILN_VERSION, kiln_profiler.prog, (int)kiln_profiler.pid);
  kiln_buf_printf(b, "  \"dump_reason\": \"%s\",\n  \"dump_seq\": %u,\n", kiln_profiler_reasons[set->reason],
                  set->seq);
  if (set->fatal_signal) kiln_buf_printf(b, "  \"fatal_signal\": %d,\n", set->fatal_signal);
  if (set->tagged)
    kiln_buf_printf(b, "  \"tag\": \"%s\",\n  \"interval_mode\": \"%s\",\n  \"from_unix\": %.3f,\n"
                       "  \"until_unix\": %.3f,\n",
                    set->tag, set->delta ? "delta" : "cumulative", set->from_unix, set->until_unix);
  kiln_health_json(b, &set->health);
  bool lock = c->mode & KILN_MODE_LOCK_BIT;
  char mode[40];
  kiln_fmt(mode, sizeof mode, "%s%s%s%s", c->mode & KILN_MODE_CPU_BIT ? ",cpu" : "", alloc ? ",alloc" : "",
           c->mode & KILN_MODE_WALL_BIT ? ",wall" : "", lock ? ",lock" : "");
  kiln_buf_printf(b, "  \"mode\": \"%s\",\n  \"unwinder\": \"%s\",\n  \"max_depth\": %d,\n", mode + (mode[0] == ','),
                  kiln_unwind_name(c->unwind), c->max_depth);
  if (c->mode & KILN_MODE_WALL_BIT) {
    const kiln_wall_stats_t *w = &r->wallstats;
    char e[64] = "";
    if (w->probe_errno) kiln_fmt_errno(w->probe_errno, e, sizeof e);
    kiln_buf_printf(b, "  \"wall_hz\": %d,\n  \"wall_period_ns\": %lld,\n  \"wall_samples\": %llu,\n  \"wall_wait_samples\": %llu,\n"
                       "  \"wall_samples_in_profile\": %llu,\n",
                    w->hz, w->hz > 0 ? 1000000000LL / w->hz : 0, (unsigned long long)w->samples, (unsigned long long)w->wait_samples,
                    (unsigned long long)r->wall_total);
    kiln_buf_printf(b, "  \"wall_ticks\": %llu,\n  \"wall_probes\": %llu,\n  \"wall_probes_failed\": %llu,\n"
                       "  \"wall_probe_error\": \"%s\",\n  \"wall_copies_moved\": %llu,\n"
                       "  \"wall_threads_untracked\": %llu,\n  \"wall_run_queue_read\": %s,\n"
                       "  \"wall_cpu_samples_over_clock\": %llu,\n",
                    (unsigned long long)w->ticks, (unsigned long long)w->probes,
                    (unsigned long long)w->probe_failures, e, (unsigned long long)w->moved,
                    (unsigned long long)w->full, w->schedstat ? "true" : "false", (unsigned long long)w->cpu_over);
  }
  if (cpu) {
    kiln_buf_printf(b, "  \"timer\": \"%s\",\n", kiln_sampler_timer_name(kiln_sampler_timer()));
    kiln_buf_printf(b, "  \"hz_requested\": %d,\n  \"sample_period_ns\": %lld,\n  \"hz_delivered\": %.1f,\n",
                    c->hz, 1000000000LL / c->hz, r->delivered_hz);
    kiln_buf_printf(b, "  \"samples\": %llu,\n  \"samples_in_profile\": %llu,\n",
                    (unsigned long long)r->samples, (unsigned long long)r->cpu_total);
    kiln_buf_printf(b, "  \"kernel_time_sampled\": %s,\n  \"cpu_kernel_samples\": %llu,\n"
                       "  \"cpu_user_samples\": %llu,\n",
                    kiln_sampler_kernel() ? "true" : "false", (unsigned long long)r->kernel_samples,
                    (unsigned long long)(r->samples - r->kernel_samples));
    kiln_buf_printf(b, "  \"dropped\": %llu,\n  \"truncated\": %llu,\n  \"unwind_skipped\": %llu,\n",
                    (unsigned long long)r->dropped, (unsigned long long)r->truncated,
                    (unsigned long long)r->threads.skipped);
    kiln_buf_printf(b, "  \"kiln_hook_samples\": %llu,\n  \"profiler_thread_samples\": %llu,\n",
                    (unsigned long long)r->coll.kiln_frames, (unsigned long long)r->coll.own_samples);
    kiln_buf_printf(b, "  \"kiln_own_samples\": %llu,\n  \"perf_rings_opened\": %llu,\n",
                    (unsigned long long)r->coll.kiln_own, (unsigned long long)r->perf.opened);
    kiln_buf_printf(b, "  \"copy_unwinder_loaded\": %s,\n", kiln_unwind_copy_loaded() ? "true" : "false");
    kiln_buf_printf(b, "  \"unwinder_pool_bytes\": %llu,\n", (unsigned long long)kiln_pool_bytes());
    kiln_buf_printf(b, "  \"threads\": %llu,\n  \"threads_unsampled\": %llu,\n"
                       "  \"threads_unsampled_cpu_seconds\": %.3f,\n",
                    (unsigned long long)r->threads_seen, (unsigned long long)(r->unsampled + r->threads.unregistered),
                    r->unsampled_seconds);
    if (!(set->mode == KILN_DUMP_MODE_EMERGENCY)) {
      uint64_t count;
      kiln_buf_puts(b, "  \"threads_list\": [");
      kiln_collector_threads(kiln_profiler_meta_thread, b, &count);
      kiln_buf_puts(b, "],\n");
    }
    kiln_buf_printf(b, "  \"stepped_aside\": %s,\n", kiln_sampler_stepped_aside() ? "true" : "false");
  }
  if (alloc) {
    const kiln_heap_stats_t *h = &r->heap;
    kiln_buf_printf(b, "  \"alloc_sample_bytes\": %llu,\n", (unsigned long long)h->sample);
    kiln_buf_printf(b, "  \"alloc_bytes\": %llu,\n  \"alloc_count\": %llu,\n",
                    (unsigned long long)h->alloc_bytes, (unsigned long long)h->alloc_count);
    kiln_buf_printf(b, "  \"freed_bytes\": %llu,\n  \"freed_count\": %llu,\n",
                    (unsigned long long)h->freed_bytes, (unsigned long long)h->freed_count);
    kiln_buf_printf(b, "  \"live_bytes\": %lld,\n  \"live_count\": %lld,\n  \"peak_bytes\": %lld,\n",
                    (long long)h->live_bytes, (long long)h->live_count, (long long)h->peak_bytes);
    kiln_buf_printf(b, "  \"tracked_blocks\": %llu,\n  \"untracked_frees\": %llu,\n  \"map_failures\": %llu,\n",
                    (unsigned long long)h->tracked_blocks, (unsigned long long)h->untracked_frees,
                    (unsigned long long)h->map_failures);
    kiln_buf_printf(b, "  \"live_map_bytes\": %llu,\n", (unsigned long long)h->map_bytes);
    kiln_buf_printf(b, "  \"live_map_peak_bytes\": %llu,\n", (unsigned long long)h->map_peak_bytes);
    kiln_buf_printf(b, "  \"alloc_unwind_fallbacks\": %llu,\n  \"alloc_unwind_rules\": %llu,\n"
                       "  \"alloc_unwind_learns\": %llu,\n",
                    (unsigned long long)h->unwind.fallbacks, (unsigned long long)h->unwind.rules,
                    (unsigned long long)h->unwind.learns);
    if (h->unwind.verify)
      kiln_buf_printf(b, "  \"alloc_verify\": {\"checked\": %llu, \"mismatches\": %llu},\n",
                      (unsigned long long)h->unwind.verified, (unsigned long long)h->unwind.mismatches);
    kiln_scan_totals_t lk;
    kiln_scan_totals(&lk);
    if (lk.ran) {
      static const char *const cat[] = {"definite", "indirect", "possible", "reachable"};
      kiln_buf_printf(b, "  \"leak_check\": \"%s\",\n", lk.files ? "full" : "summary");
      for (int k = 0; k < KILN_LEAK_KINDS; k++)
        kiln_buf_printf(b, "  \"%s_bytes\": %llu,\n  \"%s_count\": %llu,\n", cat[k],
                        (unsigned long long)lk.bytes[k], cat[k], (unsigned long long)lk.count[k]);
      kiln_buf_printf(b, "  \"suppressed_bytes\": %llu,\n  \"suppressed_count\": %llu,\n",
                      (unsigned long long)lk.suppressed_bytes, (unsigned long long)lk.suppressed_count);
      kiln_buf_printf(b, "  \"leak_scan_blocks\": %llu,\n  \"leak_scan_threads\": %llu,\n"
                      "  \"leak_scan_threads_traced\": %llu,\n"
                      "  \"leak_scan_threads_unstopped\": %llu,\n  \"leak_scan_seconds\": %.6f,\n",
                      (unsigned long long)lk.blocks, (unsigned long long)lk.threads,
                      (unsigned long long)lk.threads_traced, (unsigned long long)lk.threads_unstopped, lk.seconds);
    }
  }
  if (lock) {
    /* Over the run (a tagged set's files hold its interval's part). */
    kiln_buf_printf(b, "  \"lock_waits\": %llu,\n  \"lock_wait_ns\": %llu,\n",
                    (unsigned long long)r->lock.total_waits, (unsigned long long)r->lock.total_ns);
    kiln_buf_puts(b, "  \"lock_waits_by_kind\": {");
    for (int k = 0; k < KILN_LOCK_WHATS; k++)
      kiln_buf_printf(b, "%s\"%s\": {\"waits\": %llu, \"ns\": %llu}", k ? ", " : "",
                      kiln_lock_what_name((kiln_lock_what_t)k), (unsigned long long)r->lock.waits[k],
                      (unsigned long long)r->lock.ns[k]);
    kiln_buf_puts(b, "},\n");
  }
  kiln_buf_printf(b, "  \"stacks\": %llu,\n  \"table_full\": %llu,\n  \"table_bytes\": %llu,\n",
                  (unsigned long long)r->table.stacks, (unsigned long long)r->table.full_hits,
                  (unsigned long long)r->table.bytes);
  kiln_buf_printf(b, "  \"memory_refusals\": %llu,\n", (unsigned long long)kiln_mem_refused());
  kiln_buf_printf(b, "  \"user_seconds\": %.3f,\n  \"system_seconds\": %.3f,\n  \"wall_seconds\": %.3f,\n",
                  r->user, r->sys, r->wall);
  kiln_buf_printf(b, "  \"profiler_cpu_seconds\": %.3f,\n  \"files\": [", r->profiler_cpu);
  if (set->pprof_files[0][0]) kiln_buf_printf(b, "\"%s\", ", set->pprof_files[0]);
  if (set->pprof_files[1][0]) kiln_buf_printf(b, "\"%s\", ", set->pprof_files[1]);
  if (set->pprof_files[2][0]) kiln_buf_printf(b, "\"%s\", ", set->pprof_files[2]);
  for (int i = 0; i < nfiles; i++) kiln_buf_printf(b, "%s\"%s\"", i ? ", " : "", names[i]);
  kiln_buf_puts(b, "]\n}\n");
}

/* "12.3 MiB" */
static const char *kiln_profiler_size(double bytes, char *buf, size_t cap) {
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
  kiln_fmt(buf, cap, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
  return buf;
}

static void kiln_profiler_summary(const kiln_profiler_report_t *r, const kiln_scan_totals_t *leaks,
                                  const kiln_profiler_set_t *set, const char *dir, const char *first, int rc) {
  const kiln_config_t *c = &kiln_profiler.cfg;
  char path[4096 + 256];
  kiln_fmt(path, sizeof path, "%s/%s", dir, first);
  if (c->mode & KILN_MODE_WALL_BIT)
    kiln_log("%s[%d]: wall: %llu samples at %d Hz a thread (%.0f%% waiting)", kiln_profiler.prog,
             (int)kiln_profiler.pid, (unsigned long long)r->wall_total, r->wallstats.hz,
             r->wallstats.samples ? 100.0 * (double)r->wallstats.wait_samples / (double)r->wallstats.samples : 0.0);
  if (kiln_profiler_sampling())
    kiln_log("%s[%d]: %llu samples at %.0f Hz (%d requested; %s, %s), threads %llu, "
             "dropped %llu, truncated %llu%s%s",
             kiln_profiler.prog, (int)kiln_profiler.pid, (unsigned long long)r->samples, r->delivered_hz,
             c->hz, kiln_sampler_timer_name(kiln_sampler_timer()), kiln_unwind_name(c->unwind),
             (unsigned long long)r->threads_seen, (unsigned long long)r->dropped,
             (unsigned long long)r->truncated, rc == 0 ? " -> " : "", rc == 0 ? path : "");
  if (c->mode & KILN_MODE_ALLOC_BIT) {
    const kiln_heap_stats_t *h = &r->heap;
    char a[32], f[32], l[32], p[32], lost[512] = "";
    if (leaks->ran) {
      static const char *const cat[] = {"definitely lost", "indirectly lost", "possibly lost", "still reachable"};
      size_t len = 0;
      for (int k = 0; k < KILN_LEAK_KINDS && len < sizeof lost; k++)
        len += (size_t)kiln_fmt(lost + len, sizeof lost - len, "%s %s %s in %llu%s", k ? "," : ";", cat[k],
                                kiln_profiler_size((double)leaks->bytes[k], a, sizeof a),
                                (unsigned long long)leaks->count[k], k ? "" : " blocks");
      if (leaks->suppressed_count && len < sizeof lost)
        kiln_fmt(lost + len, sizeof lost - len, ", suppressed %s in %llu",
                 kiln_profiler_size((double)leaks->suppressed_bytes, a, sizeof a),
                 (unsigned long long)leaks->suppressed_count);
    }
    kiln_log("%s[%d]: heap%s: allocated %s in %llu blocks, freed %s in %llu, live at exit %s in %lld "
             "blocks, peak %s%s%s%s",
             kiln_profiler.prog, (int)kiln_profiler.pid, h->sample ? " (sampled estimates)" : "",
             kiln_profiler_size((double)h->alloc_bytes, a, sizeof a), (unsigned long long)h->alloc_count,
             kiln_profiler_size((double)h->freed_bytes, f, sizeof f), (unsigned long long)h->freed_count,
             kiln_profiler_size((double)h->live_bytes, l, sizeof l), (long long)h->live_count,
             kiln_profiler_size((double)h->peak_bytes, p, sizeof p), lost, rc == 0 ? " -> " : "",
             rc == 0 ? dir : "");
  }
  if (c->mode & KILN_MODE_LOCK_BIT) {
    const kiln_lock_stats_t *l = &r->lock;
    uint64_t cond = l->waits[KILN_LOCK_COND], cond_ns = l->ns[KILN_LOCK_COND];
    kiln_log("%s[%d]: locks: %llu contended waits, %.3f s waited; condition waits %llu, %.3f s%s%s",
             kiln_profiler.prog, (int)kiln_profiler.pid, (unsigned long long)(l->total_waits - cond),
             (double)(l->total_ns - cond_ns) / 1e9, (unsigned long long)cond, (double)cond_ns / 1e9,
             rc == 0 ? " -> " : "", rc == 0 ? dir : "");
  }
  if (set->health.nwarnings > 0)
    kiln_log("%s[%d]: health: %s%s", kiln_profiler.prog, (int)kiln_profiler.pid, set->health.warnings[0],
             set->health.nwarnings > 1 ? " (more in the meta file)" : "");
}

/* What the processes below the top reported (kiln_tree.c), in one line. */
static void kiln_profiler_tree_summary(const char *dir, bool print) {
  kiln_tree_totals_t t;
  if (kiln_tree_collect(&t, true) != 0 || !print || (t.processes == 0 && t.warnings == 0)) return;
  char progs[600] = "";
  size_t len = 0;
  for (int i = 0; i < t.nprogs && len < sizeof progs; i++)
    len += (size_t)kiln_fmt(progs + len, sizeof progs - len, "%s%llu %s", i ? ", " : "",
                            (unsigned long long)t.progs[i].count, t.progs[i].name);
  if (t.other && len < sizeof progs)
    kiln_fmt(progs + len, sizeof progs - len, ", %llu other", (unsigned long long)t.other);
  uint64_t profiled = t.processes - t.empty;
  kiln_log("%s[%d]: tree: %llu process%s below: %llu profiled%s%s%s, %llu recorded nothing (no files written); "
           "%llu files -> %s",
           kiln_profiler.prog, (int)kiln_profiler.pid, (unsigned long long)t.processes, t.processes == 1 ? "" : "es",
           (unsigned long long)profiled, profiled ? " (" : "", profiled ? progs : "", profiled ? ")" : "",
           (unsigned long long)t.empty, (unsigned long long)t.files, dir);
  if (t.failed)
    kiln_log("%s[%d]: tree: %llu process%s below could not write their profiles", kiln_profiler.prog,
             (int)kiln_profiler.pid, (unsigned long long)t.failed, t.failed == 1 ? "" : "es");
  if (t.warnings)
    kiln_log("%s[%d]: tree: %llu kiln message%s below (not shown on their stderr), the first: %s",
             kiln_profiler.prog, (int)kiln_profiler.pid, (unsigned long long)t.warnings, t.warnings == 1 ? "" : "s",
             t.first_warning);
}

/* Delta mode: DELTA_* = current - MARK_* for every stack; after the set
 * is written, MARK_* += DELTA_*, so each count lands in exactly one set. */
static void kiln_profiler_delta_stack(kiln_stack_t *s, void *ctx) {
  bool commit = *(bool *)ctx;
  static const kiln_count_kind_t cur[] = {KILN_COUNT_CPU, KILN_COUNT_ALLOC_BYTES, KILN_COUNT_ALLOC_COUNT,
                                          KILN_COUNT_LOCK_WAIT_NS, KILN_COUNT_LOCK_WAIT_COUNT, KILN_COUNT_WALL};
  static const kiln_count_kind_t mark[] = {KILN_COUNT_MARK_CPU, KILN_COUNT_MARK_ALLOC_BYTES,
                                           KILN_COUNT_MARK_ALLOC_COUNT, KILN_COUNT_MARK_LOCK_WAIT_NS,
                                           KILN_COUNT_MARK_LOCK_WAIT_COUNT, KILN_COUNT_MARK_WALL};
  static const kiln_count_kind_t delta[] = {KILN_COUNT_DELTA_CPU, KILN_COUNT_DELTA_ALLOC_BYTES,
                                            KILN_COUNT_DELTA_ALLOC_COUNT, KILN_COUNT_DELTA_LOCK_WAIT_NS,
                                            KILN_COUNT_DELTA_LOCK_WAIT_COUNT, KILN_COUNT_DELTA_WALL};
  for (int k = 0; k < (int)(sizeof cur / sizeof cur[0]); k++) {
    if (commit) {
      atomic_fetch_add(&s->counts[mark[k]], atomic_load(&s->counts[delta[k]]));
    } else {
      uint64_t d = atomic_load(&s->counts[cur[k]]) - atomic_load(&s->counts[mark[k]]);
      atomic_store(&s->counts[delta[k]], (int64_t)d > 0 ? d : 0);
    }
  }
}

/* The pprof files of a set: CPU (samples, cpu nanoseconds), heap (alloc
 * and inuse objects/space) and locks (contentions, delay), as Go's
 * profiles name them. */
static int kiln_profiler_pprof(const char *dir, const char *base, kiln_profiler_set_t *set) {
  const kiln_config_t *c = &kiln_profiler.cfg;
  bool emergency = set->mode == KILN_DUMP_MODE_EMERGENCY;
  int rc = 0;
  int64_t now_ns = (int64_t)(set->until_unix * 1e9), dur_ns = (int64_t)((set->until_unix - set->from_unix) * 1e9);
  if (c->mode & KILN_MODE_CPU_BIT) {
    kiln_count_kind_t k = set->delta ? KILN_COUNT_DELTA_CPU : KILN_COUNT_CPU;
    kiln_count_kind_t kinds[2] = {k, k};
    uint64_t scale[2] = {1, 1000000000ull / (uint64_t)c->hz};
    const char *types[2] = {"samples", "cpu"}, *units[2] = {"count", "nanoseconds"};
    kiln_pprof_spec_t spec = {kinds, scale, types, units, 2, "cpu", "nanoseconds",
                              (int64_t)(1000000000 / c->hz), now_ns - dur_ns, dur_ns, false};
    kiln_buf_t out = {0};
    kiln_pprof_render(&spec, &out);
    kiln_fmt(set->pprof_files[0], sizeof set->pprof_files[0], "%s.cpu.pb.gz", base);
    rc = out.failed ? -ENOMEM : kiln_out_write_file(dir, set->pprof_files[0], out.data, out.len, emergency);
    kiln_buf_free(&out);
  }
  if (rc == 0 && (c->mode & KILN_MODE_ALLOC_BIT)) {
    kiln_count_kind_t kinds[4] = {set->delta ? KILN_COUNT_DELTA_ALLOC_COUNT : KILN_COUNT_ALLOC_COUNT,
                                  set->delta ? KILN_COUNT_DELTA_ALLOC_BYTES : KILN_COUNT_ALLOC_BYTES,
                                  KILN_COUNT_LIVE_COUNT, KILN_COUNT_LIVE_BYTES};
    const char *types[4] = {"alloc_objects", "alloc_space", "inuse_objects", "inuse_space"};
    const char *units[4] = {"count", "bytes", "count", "bytes"};
    kiln_pprof_spec_t spec = {kinds, NULL, types, units, 4, "space", "bytes", 0, now_ns - dur_ns, dur_ns, true};
    kiln_buf_t out = {0};
    kiln_pprof_render(&spec, &out);
    kiln_fmt(set->pprof_files[1], sizeof set->pprof_files[1], "%s.heap.pb.gz", base);
    rc = out.failed ? -ENOMEM : kiln_out_write_file(dir, set->pprof_files[1], out.data, out.len, emergency);
    kiln_buf_free(&out);
  }
  if (rc == 0 && (c->mode & KILN_MODE_LOCK_BIT)) {
    /* Go's mutex and block profiles' sample types. */
    kiln_count_kind_t kinds[2] = {set->delta ? KILN_COUNT_DELTA_LOCK_WAIT_COUNT : KILN_COUNT_LOCK_WAIT_COUNT,
                                  set->delta ? KILN_COUNT_DELTA_LOCK_WAIT_NS : KILN_COUNT_LOCK_WAIT_NS};
    const char *types[2] = {"contentions", "delay"}, *units[2] = {"count", "nanoseconds"};
    kiln_pprof_spec_t spec = {kinds, NULL, types, units, 2, "contentions", "count", 1, now_ns - dur_ns, dur_ns,
                              false};
    kiln_buf_t out = {0};
    kiln_pprof_render(&spec, &out);
    kiln_fmt(set->pprof_files[2], sizeof set->pprof_files[2], "%s.lock.pb.gz", base);
    rc = out.failed ? -ENOMEM : kiln_out_write_file(dir, set->pprof_files[2], out.data, out.len, emergency);
    kiln_buf_free(&out);
  }
  return rc;
}

static int kiln_profiler_dump_set_names(const char *dir, kiln_profiler_set_t *set, bool summary);

/* One set: a symbol session held through it (not in an emergency). */
static int kiln_profiler_dump_set(const char *dir, kiln_profiler_set_t *set, bool summary) {
  bool hold = set->mode != KILN_DUMP_MODE_EMERGENCY;
  kiln_heap_guard_enter();
  if (hold) {
    kiln_symbols_demangle(true);
    kiln_symbols_hold();
    kiln_out_batch(true);
  }
  int rc = kiln_profiler_dump_set_names(dir, set, summary);
  if (hold) {
    kiln_out_batch(false);
    kiln_symbols_release();
  }
  kiln_heap_guard_leave();
  return rc;
}

static int kiln_profiler_dump_set_names(const char *dir, kiln_profiler_set_t *set, bool summary) {
  kiln_heap_guard_enter();
  const kiln_config_t *c = &kiln_profiler.cfg;
  bool emergency = set->mode == KILN_DUMP_MODE_EMERGENCY;
  if (kiln_profiler_sampling()) {
    if (emergency) kiln_collector_try_drain();
    else kiln_collector_drain();
  }
  kiln_symbols_demangle(!emergency); /* __cxa_demangle mallocs */
  /* Kernel function names cost a read of /proc/kallsyms (~50 ms): only
   * for runs long enough to make that small; "[kernel]" marks the rest. */
  kiln_symbols_kernel_names(!emergency && kiln_profiler_now(CLOCK_MONOTONIC) - kiln_profiler.wall_start >= 1.0);
  set->until_unix = kiln_profiler_now(CLOCK_REALTIME);
  set->from_unix = set->tagged && set->delta ? kiln_profiler.last_set_unix : kiln_profiler.wall_start_unix;
  char base[200];
  if (set->tagged) {
    set->seq = ++kiln_profiler.dump_seq;
    kiln_fmt_tm_t tm;
    kiln_fmt_utc((int64_t)set->until_unix, &tm);
    kiln_fmt(set->tag, sizeof set->tag, "%04d%02d%02dT%02d%02d%02dZ-%04u", tm.year, tm.month, tm.day, tm.hour,
             tm.minute, tm.second, set->seq % 10000);
    kiln_fmt(base, sizeof base, "%s.%d.%s", kiln_profiler.prog, (int)kiln_profiler.pid, set->tag);
  } else {
    set->seq = kiln_profiler.dump_seq;
    kiln_fmt(base, sizeof base, "%s.%d", kiln_profiler.prog, (int)kiln_profiler.pid);
  }
  kiln_profiler_report_t r;
  memset(&r, 0, sizeof r);
  kiln_count_kind_t kinds[KILN_PROFILER_FILES];
  char names[KILN_PROFILER_FILES][320];
  const char *suffixes[KILN_PROFILER_FILES];
  uint64_t totals[KILN_PROFILER_FILES];
  kiln_buf_t outs[KILN_PROFILER_FILES];
  memset(outs, 0, sizeof outs);
  kiln_scan_totals_t leaks;
  kiln_scan_totals(&leaks);
  int n = 0;
  for (int i = 0; i < KILN_PROFILER_FILES; i++) {
    const char *suffix = kiln_profiler_files[i].suffix;
    kiln_count_kind_t kind = kiln_profiler_files[i].kind;
    if (!(c->mode & kiln_profiler_files[i].mode)) continue;
    if (set->tagged) {
      /* A tagged set: CPU and allocations of the interval (or so far),
       * and what is live now. */
      if (kiln_profiler_files[i].leak || kind == KILN_COUNT_PEAK_BYTES) continue;
      if (kind == KILN_COUNT_LIVE_BYTES) suffix = "live_bytes";
      if (kind == KILN_COUNT_LIVE_COUNT) suffix = "live_count";
      if (set->delta && kind == KILN_COUNT_CPU) kind = KILN_COUNT_DELTA_CPU;
      if (set->delta && kind == KILN_COUNT_WALL) kind = KILN_COUNT_DELTA_WALL;
      if (set->delta && kind == KILN_COUNT_ALLOC_BYTES) kind = KILN_COUNT_DELTA_ALLOC_BYTES;
      if (set->delta && kind == KILN_COUNT_ALLOC_COUNT) kind = KILN_COUNT_DELTA_ALLOC_COUNT;
      if (set->delta && kind == KILN_COUNT_LOCK_WAIT_NS) kind = KILN_COUNT_DELTA_LOCK_WAIT_NS;
      if (set->delta && kind == KILN_COUNT_LOCK_WAIT_COUNT) kind = KILN_COUNT_DELTA_LOCK_WAIT_COUNT;
    } else if (kiln_profiler_files[i].leak && !leaks.files) {
      continue;
    } else if (set->reason == KILN_DUMP_EXEC && (kind == KILN_COUNT_LIVE_BYTES || kind == KILN_COUNT_LIVE_COUNT)) {
      /* exec gives every block back: what is live then did not leak (nor
       * does valgrind say so), and naming the blocks a shell's fork child
       * inherited cost each of its commands more than the command. */
      continue;
    }
    kinds[n] = kind;
    suffixes[n] = suffix;
    kiln_fmt(names[n], sizeof names[n], "%s.%s.folded", base, suffix);
    n++;
  }
  if (c->mode & KILN_MODE_ALLOC_BIT) {
    kiln_heap_settle();
    kiln_heap_stats(&r.heap);
  }
  /* CPU time before this dump's own work (symbolizing, writing), which the
   * sampler no longer sees. */
  double user, sys;
  kiln_profiler_rusage(&user, &sys);
  /* The last set of this process image (exit, exec, _exit, a signal). */
  bool final = !set->tagged && set->reason != KILN_DUMP_API;
  kiln_threads_totals(&r.threads);
  kiln_perf_stats(&r.perf);
  kiln_collector_stats(&r.coll);
  uint64_t cpu_seen = r.perf.samples - (r.coll.own_samples < r.perf.samples ? r.coll.own_samples : r.perf.samples) +
                      r.threads.samples;
  /* Samples of kiln's own start-up and dumps ("[kiln]") are not the
   * program's: a /bin/true below a profiled shell takes one, in kiln's
   * constructor, and three files for it cost more than the program. */
  uint64_t kiln_own = r.coll.kiln_own < cpu_seen ? r.coll.kiln_own : cpu_seen;
  kiln_lock_stats(&r.lock);
  if (final && !kiln_tree_is_top() && cpu_seen - kiln_own == 0 && r.heap.alloc_count == 0 &&
      r.lock.total_waits == 0) {
    /* A process below the top that recorded nothing of its own: no files,
     * one record for the top's summary. */
    kiln_tree_rec_t rec = {kiln_profiler.prog, true, 0, 0, 0, 0, set->fatal_signal};
    kiln_tree_report(&rec);
    kiln_symbols_demangle(true);
    kiln_heap_guard_leave();
    return 0;
  }
  if (!emergency) kiln_modules_refresh(); /* a lock, and the loader's */
  bool commit = false;
  if (set->tagged && set->delta) kiln_stacktab_foreach(kiln_profiler_delta_stack, &commit);
  /* The stacks file (addresses and module map, for the tool's source
   * lines): not in an emergency, where less is more. */
  kiln_buf_t stacks = {0};
  /* Samples keep coming while the stacks are named: drain them meanwhile
   * (not in an emergency: no locks there). */
  void (*tick)(void) =
      set->mode == KILN_DUMP_MODE_EMERGENCY || !kiln_profiler_sampling() ? NULL : kiln_collector_drain_if_free;
  kiln_symbols_set_tick(tick);
  kiln_folded_render(kinds, suffixes, n, outs, totals, (set->mode == KILN_DUMP_MODE_EMERGENCY) ? NULL : &stacks);
  for (int i = 0; i < n; i++)
    if (kinds[i] == KILN_COUNT_CPU || kinds[i] == KILN_COUNT_DELTA_CPU) r.cpu_total = totals[i];
    else if (kinds[i] == KILN_COUNT_WALL || kinds[i] == KILN_COUNT_DELTA_WALL) r.wall_total = totals[i];
  kiln_threads_totals(&r.threads);
  kiln_stacktab_stats(&r.table);
  kiln_perf_stats(&r.perf);
  kiln_collector_stats(&r.coll);
  kiln_wall_stats(&r.wallstats);
  uint64_t own = r.coll.own_samples < r.perf.samples ? r.coll.own_samples : r.perf.samples;
  r.samples = r.perf.samples - own + r.threads.samples;
  r.kernel_samples = r.perf.kernel_samples;
  r.dropped = r.threads.dropped + r.perf.lost;
  r.truncated = r.coll.truncated;
  if (!(set->mode == KILN_DUMP_MODE_EMERGENCY)) kiln_collector_threads(NULL, NULL, &r.threads_seen);
  r.user = user - kiln_profiler.user_start;
  r.sys = sys - kiln_profiler.sys_start;
  r.wall = kiln_profiler_now(CLOCK_MONOTONIC) - kiln_profiler.wall_start;
  r.profiler_cpu = kiln_collector_cpu_seconds();
  /* What the timer counts: user and system time (perf with kernel time,
   * and the signal timers), or user time only; less the collector's. */
  bool counts_sys = kiln_sampler_timer() != KILN_TIMER_PERF || kiln_sampler_kernel();
  double counted = r.user + (counts_sys ? r.sys : 0) - r.profiler_cpu;
  if (counted < 0) counted = 0;
  r.delivered_hz = counted > 0.001 ? (double)r.samples / counted : 0;
  if (kiln_profiler_sampling() && !(set->mode == KILN_DUMP_MODE_EMERGENCY)) kiln_profiler_unsampled(&r, c->hz);

  kiln_health_input_t hin = {.cfg = c,
                             .samples = r.samples,
                             .counted_seconds = counted,
                             .dropped = r.dropped,
                             .truncated = r.truncated,
                             .copy_ended = r.coll.copy_ended,
                             .copy_bytes = kiln_sampler_timer() == KILN_TIMER_PERF ? KILN_STACK_COPY_PERF : KILN_STACK_COPY,
                             .skipped = r.threads.skipped,
                             .table_full = r.table.full_hits,
                             .memory_bytes = r.table.bytes + r.heap.map_bytes + r.perf.ring_bytes,
                             .threads = kiln_profiler_sampling() ? r.threads_seen : 0,
                             .stepped_aside = kiln_sampler_stepped_aside(),
                             .dump_signal_refused = c->dump_signal > 0 && !kiln_profiler.dump_signal_on,
                             .crash = emergency};
  hin.kernel_missing = kiln_profiler_sampling() && kiln_sampler_timer() == KILN_TIMER_PERF &&
                       !kiln_sampler_kernel() && c->cpu_time != KILN_CPU_USER;
  hin.user_seconds = r.user;
  hin.sys_seconds = r.sys;
  hin.unsampled = r.unsampled;
  hin.unsampled_seconds = r.unsampled_seconds;
  hin.unsampled_names = r.unsampled_names;
  hin.kiln_hook_samples = r.coll.kiln_frames;
  hin.wall_probe_failures = r.wallstats.probe_failures;
  hin.wall_probe_errno = r.wallstats.probe_errno;
  hin.mem_refused = kiln_mem_refused();
  kiln_health_assess(&hin, &set->health);

  if (final && !kiln_tree_is_top()) {
    /* Below the top, an empty profile is not written (its meta.json lists
     * what was): a forked child that leaks one block has nothing indirect,
     * possible or reachable, and each file costs more than such a child. */
    int k = 0;
    for (int i = 0; i < n; i++) {
      if (outs[i].len == 0 && !outs[i].failed) {
        kiln_buf_free(&outs[i]);
        continue;
      }
      if (k != i) {
        outs[k] = outs[i];
        kinds[k] = kinds[i];
        suffixes[k] = suffixes[i];
        memcpy(names[k], names[i], sizeof names[k]);
        memset(&outs[i], 0, sizeof outs[i]);
      }
      k++;
    }
    n = k;
  }
  int rc = kiln_out_mkdirs(dir, emergency);
  for (int i = 0; i < n && rc == 0; i++) {
    kiln_symbols_maybe_tick(); /* each file takes a while on a slow disk */
    if (outs[i].failed) rc = -ENOMEM;
    else rc = kiln_out_write_file(dir, names[i], outs[i].data ? outs[i].data : "", outs[i].len, emergency);
  }
  if (rc == 0 && n > 0 && !(set->mode == KILN_DUMP_MODE_EMERGENCY) && !stacks.failed) {
    char stacks_name[220];
    kiln_fmt(stacks_name, sizeof stacks_name, "%s.stacks", base);
    rc = kiln_out_write_file(dir, stacks_name, stacks.data ? stacks.data : "", stacks.len, false);
  }
  kiln_buf_free(&stacks);
  if (rc == 0 && c->pprof && set->tagged) rc = kiln_profiler_pprof(dir, base, set);
  kiln_symbols_set_tick(NULL);
  /* The meta file last: when it is there, the whole set is. */
  kiln_buf_t meta = {0};
  char meta_name[300];
  kiln_fmt(meta_name, sizeof meta_name, "%s.meta.json", base);
  kiln_profiler_meta(&meta, &r, names, n, set);
  if (rc == 0) rc = meta.failed ? -ENOMEM : kiln_out_write_file(dir, meta_name, meta.data, meta.len, emergency);
  if (rc == 0 && set->tagged && set->delta) {
    commit = true;
    kiln_stacktab_foreach(kiln_profiler_delta_stack, &commit);
  }
  if (rc == 0 && set->tagged) kiln_profiler.last_set_unix = set->until_unix;
  if (rc < 0 && !kiln_profiler.out_warned) {
    kiln_profiler.out_warned = true;
    kiln_log("cannot write profiles to %s: %s", dir, kiln_out_error(rc)); /* kiln_fmt: emergencies too */
  }
  if (final && !kiln_tree_is_top()) {
    kiln_tree_rec_t rec = {kiln_profiler.prog, false, rc == 0 ? (unsigned)n + 1 : 0, r.samples,
                           r.heap.alloc_count, rc, set->fatal_signal};
    kiln_tree_report(&rec);
  } else if (summary) {
    if (!c->quiet) kiln_profiler_summary(&r, &leaks, set, kiln_out_where(dir), names[0], rc);
    /* The top's last image: the processes below, in one line. */
    if (final && set->reason != KILN_DUMP_EXEC) kiln_profiler_tree_summary(dir, !c->quiet);
  }
  for (int i = 0; i < n; i++) kiln_buf_free(&outs[i]);
  kiln_buf_free(&meta);
  kiln_symbols_demangle(true);
  kiln_heap_guard_leave();
  return rc;
}

static int kiln_profiler_dump_locked(const char *dir, kiln_dump_reason_t reason, bool summary) {
  kiln_profiler_set_t set;
  memset(&set, 0, sizeof set);
  set.reason = reason;
  set.tagged = reason == KILN_DUMP_INTERVAL || reason == KILN_DUMP_SIGNAL;
  set.delta = set.tagged && !kiln_profiler.cfg.interval_cumulative;
  return kiln_profiler_dump_set(dir, &set, summary);
}

static int kiln_profiler_dump_signal(void) {
  return kiln_profiler.dump_signal_on ? kiln_profiler.cfg.dump_signal : 0;
}

/* The last sets of a process that ends now (a signal, _exit): the last
 * interval, so that the intervals add up to the whole, then the whole run.
 * Under the lock, the profiler just made inactive. */
static void kiln_profiler_final_sets(kiln_dump_reason_t reason, int sig, kiln_dump_mode_t mode) {
  kiln_heap_guard_enter();
  if (kiln_profiler_sampling()) {
    if (mode == KILN_DUMP_MODE_EMERGENCY) kiln_sampler_halt(); /* takes no lock */
    else kiln_sampler_stop(kiln_collector_sink, NULL);
  }
  kiln_profiler_set_t set;
  memset(&set, 0, sizeof set);
  set.reason = reason;
  set.mode = mode;
  set.fatal_signal = sig;
  if (kiln_profiler.cfg.interval_ns) {
    kiln_profiler_set_t last = set;
    last.tagged = true;
    last.delta = !kiln_profiler.cfg.interval_cumulative;
    kiln_profiler_dump_set(kiln_profiler.cfg.out_dir, &last, false);
  }
  kiln_profiler_dump_set(kiln_profiler.cfg.out_dir, &set, true);
  kiln_heap_guard_leave();
}

static void kiln_profiler_exit_wake(int state) {
  atomic_store(&kiln_profiler.exit_state, state);
  syscall(SYS_futex, &kiln_profiler.exit_state, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

/* On the collector: the dump an exit signal asked for, in normal mode (it
 * is not a signal context). The lock is waited for a bounded time: the
 * signal's thread may be the one holding it. */
static void kiln_profiler_exit_dump(void) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += 300000000L;
  if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
  if (pthread_mutex_timedlock(&kiln_profiler_lock, &until) != 0) return;
  if (atomic_exchange(&kiln_profiler.active, false))
    kiln_profiler_final_sets(KILN_DUMP_FATAL, kiln_profiler.exit_sig, KILN_DUMP_MODE_NORMAL);
  pthread_mutex_unlock(&kiln_profiler_lock);
}

/* From the collector thread: an interval is up, the dump signal came, or
 * an exit signal's thread hands its dump over. */
static void kiln_profiler_on_dump(kiln_dump_reason_t reason) {
  int want = KILN_PROFILER_EXIT_REQUESTED;
  if (atomic_compare_exchange_strong(&kiln_profiler.exit_state, &want, KILN_PROFILER_EXIT_RUNNING)) {
    kiln_profiler_exit_dump();
    kiln_profiler_exit_wake(KILN_PROFILER_EXIT_DONE);
    return;
  }
  if (want != KILN_PROFILER_EXIT_IDLE) return; /* the process is ending */
  pthread_mutex_lock(&kiln_profiler_lock);
  if (atomic_load(&kiln_profiler.active)) kiln_profiler_dump_locked(kiln_profiler.cfg.out_dir, reason, false);
  pthread_mutex_unlock(&kiln_profiler_lock);
}

/* Waits while exit_state is `state`, at most `ms`; the state then. */
KILN_SIGNAL_SAFE static int kiln_profiler_exit_wait(int state, long ms) {
  struct timespec now, end;
  clock_gettime(CLOCK_MONOTONIC, &end);
  end.tv_sec += ms / 1000;
  end.tv_nsec += (ms % 1000) * 1000000L;
  if (end.tv_nsec >= 1000000000L) end.tv_sec++, end.tv_nsec -= 1000000000L;
  int st;
  while ((st = atomic_load(&kiln_profiler.exit_state)) == state) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long left = (long long)(end.tv_sec - now.tv_sec) * 1000000000LL + (end.tv_nsec - now.tv_nsec);
    if (left <= 0) break;
    struct timespec ts = {(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
    syscall(SYS_futex, &kiln_profiler.exit_state, FUTEX_WAIT_PRIVATE, state, &ts, NULL, 0);
  }
  return st;
}

/* _exit and fatal signals: whatever state the program is in, write what
 * can be written in emergency mode (no lock waited on, no malloc, no stdio
 * or locale, no loader call); never twice. Returns at once if a dump is
 * under way elsewhere. */
void kiln_profiler_emergency(kiln_dump_reason_t reason, int sig) {
  if (getpid() != kiln_profiler.pid || !atomic_load(&kiln_profiler.active)) return;
  if (pthread_mutex_trylock(&kiln_profiler_lock) != 0) return;
  if (atomic_exchange(&kiln_profiler.active, false)) kiln_profiler_final_sets(reason, sig, KILN_DUMP_MODE_EMERGENCY);
  pthread_mutex_unlock(&kiln_profiler_lock);
}

/* An exit signal with its default action, in its handler on any thread of
 * the program: the collector writes the profile in normal mode while this
 * thread waits (bounded), unless there is no collector, or this thread was
 * inside kiln or the loader (it may hold what a normal dump needs), or the
 * collector does not take the request within 0.5 s: then this thread
 * writes it in emergency mode. */
void kiln_profiler_exit_signal(int sig) {
  if (getpid() != kiln_profiler.pid || !atomic_load(&kiln_profiler.active)) return;
  bool inside = kiln_tls_hook_guard > 0 || kiln_tls_unsafe > 0;
  if (kiln_profiler.collector_on && !inside) {
    int idle = KILN_PROFILER_EXIT_IDLE;
    kiln_profiler.exit_sig = sig;
    if (!atomic_compare_exchange_strong(&kiln_profiler.exit_state, &idle, KILN_PROFILER_EXIT_REQUESTED))
      return; /* another thread's exit signal is being written */
    kiln_collector_request_dump();
    int st = kiln_profiler_exit_wait(KILN_PROFILER_EXIT_REQUESTED, 500);
    int want = KILN_PROFILER_EXIT_REQUESTED;
    if (st != KILN_PROFILER_EXIT_REQUESTED ||
        !atomic_compare_exchange_strong(&kiln_profiler.exit_state, &want, KILN_PROFILER_EXIT_ABANDONED)) {
      /* The collector writes it: symbolizing a large program takes a
       * while, but a process told to end must end. */
      kiln_profiler_exit_wait(KILN_PROFILER_EXIT_RUNNING, 10000);
      return;
    }
  }
  kiln_profiler_emergency(KILN_DUMP_FATAL, sig);
}

bool kiln_profiler_is_self(void) { return kiln_profiler.pid != 0 && getpid() == kiln_profiler.pid; }

/* Out of line: its buffer must not widen kiln_profiler_at_exit's frame,
 * whose stale bytes the leak scan would read as roots. */
__attribute__((noinline)) static void kiln_profiler_tree_drop(void) {
  kiln_tree_totals_t t;
  kiln_tree_collect(&t, true);
}

void kiln_profiler_at_exit(void) {
  /* A vfork child shares this memory: it must not touch the state. */
  if (getpid() != kiln_profiler.pid) return;
  if (!atomic_load(&kiln_profiler.active)) {
    kiln_profiler_tree_drop(); /* stopped earlier (kiln_stop): the tree file goes */
    return;
  }
  kiln_heap_guard_enter();
  /* The collector may be writing a set under the lock: stop it first.
   * Joined when the leak scan follows: the scan would have to pause it (a
   * thread that blocks every signal: a ptrace helper), and even left out
   * of the pause, a collector still running beside the scan and the dump
   * cost more than the join (200 cpu,alloc fork children that leak: 657
   * ms against 485, 7 alternating runs). Else it is left to the exit. */
  if (kiln_profiler_sampling()) kiln_sampler_stop(kiln_collector_sink, NULL);
  if (kiln_profiler.cfg.mode & KILN_MODE_ALLOC_BIT) kiln_collector_stop();
  else kiln_collector_abandon();
  pthread_mutex_lock(&kiln_profiler_lock);
  if (atomic_exchange(&kiln_profiler.active, false)) {
    kiln_symbols_demangle(true);
    kiln_symbols_hold(); /* one reading of each module's symbols for all of the below */
    if (kiln_profiler.cfg.interval_ns) /* the last interval: the sets add up to the whole run */
      kiln_profiler_dump_locked(kiln_profiler.cfg.out_dir, KILN_DUMP_INTERVAL, false);
    if (kiln_profiler.cfg.mode & KILN_MODE_ALLOC_BIT) {
      kiln_freeres_at_exit();
      kiln_scan_run(&kiln_profiler.cfg); /* leak categories, when asked */
    }
    kiln_profiler_dump_locked(kiln_profiler.cfg.out_dir, KILN_DUMP_EXIT, true);
    kiln_symbols_release();
  }
  pthread_mutex_unlock(&kiln_profiler_lock);
  kiln_heap_guard_leave();
}

/* Whether exec of path can succeed: an executable file there. An exec
 * that surely fails costs no dump. (execvp's search asks each directory
 * itself: kiln_interpose.c.) */
static bool kiln_profiler_exec_may_work(const char *path) {
  if (path == NULL) return true; /* fexecve: unknown */
  return *path != '\0' && access(path, X_OK) == 0;
}

bool kiln_profiler_exec_watched(void) {
  /* A vfork child shares our memory but is another process: hands off. */
  return atomic_load(&kiln_profiler.active) && getpid() == kiln_profiler.pid;
}

void kiln_profiler_before_exec(const char *path) {
  if (kiln_profiler_exec_watched() && kiln_profiler_exec_may_work(path)) kiln_profiler_exec_dump();
}

void kiln_profiler_exec_dump(void) {
  if (!kiln_profiler_exec_watched()) return;
  pthread_mutex_lock(&kiln_profiler_lock);
  kiln_profiler_dump_locked(kiln_profiler.cfg.out_dir, KILN_DUMP_EXEC, true);
  kiln_sampler_quiesce();
  kiln_profiler.exec_quiesced = true;
  pthread_mutex_unlock(&kiln_profiler_lock);
  /* The collector ends before the exec, outside the lock (it may be
   * waiting on it for a dump): exec would kill it, but waits longer for
   * that than a join takes (0.15 ms more a fork-and-exec here). */
  if (kiln_profiler.collector_on) {
    kiln_collector_stop();
    kiln_profiler.collector_on = false;
    kiln_profiler.exec_collector = true;
  }
}

void kiln_profiler_exec_failed(void) {
  if (!atomic_load(&kiln_profiler.active) || getpid() != kiln_profiler.pid || !kiln_profiler.exec_quiesced) return;
  kiln_profiler.exec_quiesced = false;
  kiln_sampler_resume();
  if (kiln_profiler.exec_collector) {
    kiln_profiler.exec_collector = false;
    kiln_profiler_collector_start();
  }
}

/* ------------------------------------------------------------ public API */

KILN_EXPORT int kiln_start(const kiln_options_t *opts) {
  kiln_config_t cfg;
  int rc = kiln_options_from_env(&cfg);
  if (rc < 0) return rc;
  if (opts != NULL) {
    if (opts->mode != 0)
      cfg.mode = (opts->mode & KILN_MODE_CPU ? KILN_MODE_CPU_BIT : 0) |
                 (opts->mode & KILN_MODE_WALL ? KILN_MODE_WALL_BIT : 0) |
                 (opts->mode & KILN_MODE_ALLOC ? KILN_MODE_ALLOC_BIT : 0) |
                 (opts->mode & KILN_MODE_LOCK ? KILN_MODE_LOCK_BIT : 0);
    if (opts->hz != 0) {
      if (opts->hz < KILN_HZ_MIN || opts->hz > KILN_HZ_MAX) {
        kiln_log("kiln_start: hz %d out of range %d..%d", opts->hz, KILN_HZ_MIN, KILN_HZ_MAX);
        return -EINVAL;
      }
      cfg.hz = opts->hz;
    }
    if (opts->max_depth != 0) {
      if (opts->max_depth < KILN_DEPTH_MIN || opts->max_depth > KILN_DEPTH_MAX) {
        kiln_log("kiln_start: max_depth %d out of range %d..%d", opts->max_depth, KILN_DEPTH_MIN,
                 KILN_DEPTH_MAX);
        return -EINVAL;
      }
      cfg.max_depth = opts->max_depth;
    }
    if (opts->unwind == KILN_UNWIND_WITH_LIBUNWIND) cfg.unwind = KILN_UNWIND_LIBUNWIND;
    if (opts->unwind == KILN_UNWIND_WITH_FP) cfg.unwind = KILN_UNWIND_FP;
    if (opts->quiet) cfg.quiet = true;
    if (opts->out_dir != NULL) {
      if (strlen(opts->out_dir) >= sizeof cfg.out_dir - 256) return -ENAMETOOLONG;
      strcpy(cfg.out_dir, opts->out_dir);
      if ((rc = kiln_options_resolve_out(&cfg)) < 0) return rc;
    }
  }
  if (rc == 1 || cfg.mode == 0) return 0; /* KILN_MODE=off */
  /* A set-user-ID program runs in its caller's directory, which KILN_OUT
   * (ignored there: secure_getenv) cannot move it out of: no root-owned
   * files in someone else's directory, unless the program names one. */
  if ((opts == NULL || opts->out_dir == NULL) && kiln_out_secure()) {
    kiln_log("kiln_start: a set-user-ID or set-group-ID program must name its output directory "
             "(kiln_options_t.out_dir); profiling disabled");
    return -EPERM;
  }
  rc = kiln_profiler_start_cfg(&cfg);
  static bool atexit_registered;
  if (rc == 0 && !atexit_registered) atexit_registered = atexit(kiln_profiler_at_exit) == 0;
  return rc;
}

KILN_EXPORT void kiln_stop(void) {
  pthread_mutex_lock(&kiln_profiler_lock);
  bool was = atomic_exchange(&kiln_profiler.active, false);
  if (was) {
    kiln_heap_stop();
    kiln_lock_stop();
    kiln_sampler_stop(kiln_collector_sink, NULL);
    kiln_wall_stop();
    int high = kiln_threads_high();
    for (int i = 0; i < high; i++) {
      kiln_thread_t *t = kiln_threads_slot(i);
      if (atomic_load(&t->state) == KILN_SLOT_ACTIVE) kiln_threads_retire(t);
    }
  }
  pthread_mutex_unlock(&kiln_profiler_lock);
  /* Outside the lock: the collector may be waiting on it for a dump. */
  if (was) kiln_collector_stop();
}

KILN_EXPORT int kiln_dump(const char *dir) {
  pthread_mutex_lock(&kiln_profiler_lock);
  int rc = -ENODATA;
  if (kiln_profiler.pid != 0) {
    char abs[sizeof kiln_profiler.cfg.out_dir];
    if (dir == NULL) {
      rc = kiln_profiler_dump_locked(kiln_profiler.cfg.out_dir, KILN_DUMP_API, false);
    } else {
      kiln_config_t tmp;
      memset(&tmp, 0, sizeof tmp);
      if (strlen(dir) < sizeof tmp.out_dir - 256) {
        strcpy(tmp.out_dir, dir);
        if (kiln_options_resolve_out(&tmp) == 0) {
          strcpy(abs, tmp.out_dir);
          rc = kiln_profiler_dump_locked(abs, KILN_DUMP_API, false);
        }
      } else {
        rc = -ENAMETOOLONG;
      }
    }
  }
  pthread_mutex_unlock(&kiln_profiler_lock);
  return rc;
}

KILN_EXPORT void kiln_reset(void) {
  pthread_mutex_lock(&kiln_profiler_lock);
  kiln_collector_drain();
  kiln_stacktab_clear_counts(KILN_COUNTS_ALL);
  kiln_heap_reset();
  kiln_lock_reset();
  pthread_mutex_unlock(&kiln_profiler_lock);
}
