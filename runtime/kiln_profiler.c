/* kiln_profiler.c — the top of the runtime: starts and stops the parts in
 * order, follows the process through fork and exec and thread exits, and
 * writes the profiles and the summary at dump time. Implements the public
 * API of kiln.h. Normal context only; fork handlers run in the forking
 * thread (the child's with only that thread alive). */
#include "kiln_internal.h"
#include "kiln.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
} kiln_profiler;

static pthread_mutex_t kiln_profiler_lock = PTHREAD_MUTEX_INITIALIZER;
static void kiln_profiler_on_dump(kiln_dump_reason_t reason);
static int kiln_profiler_dump_signal(void);
static __thread sigset_t kiln_tls_fork_mask;

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

/* Registers and arms the calling thread. */
static void kiln_profiler_add_self(void) {
  kiln_unwind_thread_init(kiln_profiler.cfg.unwind);
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

static void kiln_profiler_fork_prepare(void) {
  sigset_t prof;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  pthread_sigmask(SIG_BLOCK, &prof, &kiln_tls_fork_mask);
  /* No shard of the live map may be mid-update (or locked) in the child. */
  kiln_heap_fork_prepare();
}

static void kiln_profiler_fork_parent(void) {
  kiln_heap_fork_release();
  pthread_sigmask(SIG_SETMASK, &kiln_tls_fork_mask, NULL);
}

static void kiln_profiler_fork_child(void) {
  kiln_heap_fork_release();
  pthread_mutex_init(&kiln_profiler_lock, NULL);
  if (atomic_load(&kiln_profiler.active)) {
    /* The child starts a profile of its own: none of the parent's samples,
     * threads, events or allocations over the run come along. The blocks
     * live at fork are live in the child too, and stay tracked. */
    kiln_heap_guard_enter();
    kiln_sampler_after_fork_child();
    kiln_threads_after_fork_child();
    kiln_stacktab_clear_counts(KILN_COUNTS_CPU | (1u << KILN_COUNT_MARK_CPU) |
                               (1u << KILN_COUNT_MARK_ALLOC_BYTES) | (1u << KILN_COUNT_MARK_ALLOC_COUNT));
    kiln_heap_after_fork_child();
    kiln_profiler.dump_seq = 0;
    kiln_modules_after_fork_child();
    kiln_collector_after_fork_child();
    kiln_profiler_baseline();
    kiln_profiler.out_warned = false;
    if (kiln_profiler.cfg.mode & KILN_MODE_CPU_BIT) {
      kiln_profiler_add_self();
      kiln_sampler_resume();
      kiln_collector_start(kiln_profiler.cfg.hz, kiln_profiler.cfg.interval_ns, kiln_profiler_dump_signal(), kiln_profiler_on_dump);
    } else if (kiln_profiler.cfg.interval_ns || kiln_profiler.dump_signal_on) {
      kiln_collector_start(0, kiln_profiler.cfg.interval_ns, kiln_profiler_dump_signal(), kiln_profiler_on_dump);
    }
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
  if ((rc = kiln_threads_init()) < 0 || (rc = kiln_stacktab_init(1u << 18)) < 0 ||
      (rc = kiln_modules_init()) < 0) {
    kiln_log("cannot map the profiler's memory; profiling disabled");
    goto out;
  }
  kiln_unwind_init(&kiln_profiler.cfg.unwind);
  if (!kiln_profiler.key_created)
    kiln_profiler.key_created =
        pthread_key_create(&kiln_profiler.thread_key, kiln_profiler_thread_key_dtor) == 0;
  bool cpu = kiln_profiler.cfg.mode & KILN_MODE_CPU_BIT, alloc = kiln_profiler.cfg.mode & KILN_MODE_ALLOC_BIT;
  if (cpu && (rc = kiln_sampler_start(&kiln_profiler.cfg)) < 0) {
    if (!alloc) goto out;
    kiln_profiler.cfg.mode &= ~KILN_MODE_CPU_BIT; /* the heap goes on alone */
    cpu = false;
    rc = 0;
  }
  kiln_profiler_baseline();
  atomic_store(&kiln_profiler.active, true);
  kiln_crash_start(&kiln_profiler.cfg);
  kiln_profiler.dump_signal_on = kiln_profiler.cfg.dump_signal > 0 && kiln_crash_dump_signal_on();
  kiln_profiler.dump_seq = 0;
  kiln_profiler.last_set_unix = kiln_profiler_now(CLOCK_REALTIME);
  if (cpu || kiln_profiler.cfg.interval_ns || kiln_profiler.dump_signal_on) {
    if (cpu) {
      kiln_profiler_add_self();
      kiln_profiler_add_existing();
    }
    if ((rc = kiln_collector_start(cpu ? kiln_profiler.cfg.hz : 0, kiln_profiler.cfg.interval_ns,
                                   kiln_profiler_dump_signal(), kiln_profiler_on_dump)) < 0) {
      kiln_log("cannot start the collector thread (%s); profiling disabled", strerror(-rc));
      kiln_sampler_stop();
      atomic_store(&kiln_profiler.active, false);
      goto out;
    }
  }
  if (alloc) kiln_scan_prepare(&kiln_profiler.cfg); /* before the first tracked block */
  if (alloc && (rc = kiln_heap_start(&kiln_profiler.cfg)) < 0)
    kiln_log("cannot map the allocation tracker's memory; allocation profiling off");
  if (!kiln_profiler.atfork_registered)
    kiln_profiler.atfork_registered = pthread_atfork(kiln_profiler_fork_prepare, kiln_profiler_fork_parent,
                                                     kiln_profiler_fork_child) == 0;
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
      kiln_unwind_init(&cfg.unwind);
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
  if (kiln_options_from_env(&cfg) != 0) return;
  kiln_profiler_start_cfg(&cfg);
}

bool kiln_profiler_active(void) { return atomic_load(&kiln_profiler.active); }

void kiln_profiler_thread_begin(void) {
  if (!atomic_load(&kiln_profiler.active) || !(kiln_profiler.cfg.mode & KILN_MODE_CPU_BIT) ||
      kiln_sampler_stepped_aside())
    return;
  kiln_heap_guard_enter();
  kiln_profiler_add_self();
  kiln_heap_guard_leave();
}

void kiln_profiler_thread_end(void) {
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
  uint64_t cpu_total;
  double user, sys, wall, profiler_cpu, delivered_hz;
} kiln_profiler_report_t;

/* One profile set being written. */
typedef struct kiln_profiler_set {
  kiln_dump_reason_t reason;
  bool tagged;     /* an interval/on-demand set: <prog>.<pid>.<tag>.<kind> */
  bool delta;      /* counts since the last tagged set */
  bool crash;      /* emergency: no locks waited on, no malloc */
  int fatal_signal;
  unsigned seq;
  char tag[40];
  double from_unix, until_unix;
  char pprof_files[2][320];
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
    {KILN_COUNT_ALLOC_BYTES, KILN_MODE_ALLOC_BIT, "alloc_bytes", false},
    {KILN_COUNT_ALLOC_COUNT, KILN_MODE_ALLOC_BIT, "alloc_count", false},
    {KILN_COUNT_LIVE_BYTES, KILN_MODE_ALLOC_BIT, "leak_bytes", false},
    {KILN_COUNT_LIVE_COUNT, KILN_MODE_ALLOC_BIT, "leak_count", false},
    {KILN_COUNT_PEAK_BYTES, KILN_MODE_ALLOC_BIT, "peak_bytes", false},
    {KILN_COUNT_DEFINITE_BYTES, KILN_MODE_ALLOC_BIT, "definite_bytes", true},
    {KILN_COUNT_DEFINITE_COUNT, KILN_MODE_ALLOC_BIT, "definite_count", true},
    {KILN_COUNT_INDIRECT_BYTES, KILN_MODE_ALLOC_BIT, "indirect_bytes", true},
    {KILN_COUNT_INDIRECT_COUNT, KILN_MODE_ALLOC_BIT, "indirect_count", true},
    {KILN_COUNT_POSSIBLE_BYTES, KILN_MODE_ALLOC_BIT, "possible_bytes", true},
    {KILN_COUNT_POSSIBLE_COUNT, KILN_MODE_ALLOC_BIT, "possible_count", true},
    {KILN_COUNT_REACHABLE_BYTES, KILN_MODE_ALLOC_BIT, "reachable_bytes", true},
    {KILN_COUNT_REACHABLE_COUNT, KILN_MODE_ALLOC_BIT, "reachable_count", true},
};
enum { KILN_PROFILER_FILES = sizeof kiln_profiler_files / sizeof kiln_profiler_files[0] };

static const char *const kiln_profiler_reasons[] = {"exit", "interval", "signal", "api",
                                                     "exec", "_exit", "exit-signal"};

static void kiln_profiler_meta(kiln_buf_t *b, const kiln_profiler_report_t *r, char names[][320], int nfiles,
                               const kiln_profiler_set_t *set) {
  const kiln_config_t *c = &kiln_profiler.cfg;
  bool cpu = c->mode & KILN_MODE_CPU_BIT, alloc = c->mode & KILN_MODE_ALLOC_BIT;
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
  kiln_buf_printf(b, "  \"mode\": \"%s\",\n  \"unwinder\": \"%s\",\n  \"max_depth\": %d,\n",
                  cpu && alloc ? "cpu,alloc" : cpu ? "cpu" : "alloc", kiln_unwind_name(c->unwind), c->max_depth);
  if (cpu) {
    kiln_buf_printf(b, "  \"timer\": \"%s\",\n", kiln_sampler_timer_name(kiln_sampler_timer()));
    kiln_buf_printf(b, "  \"hz_requested\": %d,\n  \"sample_period_ns\": %lld,\n  \"hz_delivered\": %.1f,\n",
                    c->hz, 1000000000LL / c->hz, r->delivered_hz);
    kiln_buf_printf(b, "  \"samples\": %llu,\n  \"samples_in_profile\": %llu,\n",
                    (unsigned long long)r->threads.samples, (unsigned long long)r->cpu_total);
    kiln_buf_printf(b, "  \"dropped\": %llu,\n  \"truncated\": %llu,\n  \"unwind_skipped\": %llu,\n",
                    (unsigned long long)r->threads.dropped, (unsigned long long)r->threads.truncated,
                    (unsigned long long)r->threads.skipped);
    kiln_buf_printf(b, "  \"threads\": %llu,\n  \"threads_unsampled\": %llu,\n",
                    (unsigned long long)r->threads.threads, (unsigned long long)r->threads.unregistered);
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
  kiln_buf_printf(b, "  \"stacks\": %llu,\n  \"table_full\": %llu,\n  \"table_bytes\": %llu,\n",
                  (unsigned long long)r->table.stacks, (unsigned long long)r->table.full_hits,
                  (unsigned long long)r->table.bytes);
  kiln_buf_printf(b, "  \"user_seconds\": %.3f,\n  \"system_seconds\": %.3f,\n  \"wall_seconds\": %.3f,\n",
                  r->user, r->sys, r->wall);
  kiln_buf_printf(b, "  \"profiler_cpu_seconds\": %.3f,\n  \"files\": [", r->profiler_cpu);
  if (set->pprof_files[0][0]) kiln_buf_printf(b, "\"%s\", ", set->pprof_files[0]);
  if (set->pprof_files[1][0]) kiln_buf_printf(b, "\"%s\", ", set->pprof_files[1]);
  for (int i = 0; i < nfiles; i++) kiln_buf_printf(b, "%s\"%s\"", i ? ", " : "", names[i]);
  kiln_buf_puts(b, "]\n}\n");
}

/* "12.3 MiB" */
static const char *kiln_profiler_size(double bytes, char *buf, size_t cap) {
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
  snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
  return buf;
}

static void kiln_profiler_summary(const kiln_profiler_report_t *r, const kiln_scan_totals_t *leaks,
                                  const kiln_profiler_set_t *set, const char *dir, const char *first, int rc) {
  const kiln_config_t *c = &kiln_profiler.cfg;
  char path[4096 + 256];
  snprintf(path, sizeof path, "%s/%s", dir, first);
  if (c->mode & KILN_MODE_CPU_BIT)
    kiln_log("%s[%d]: %llu samples at %.0f Hz (%d requested; %s, %s), threads %llu, "
             "dropped %llu, truncated %llu%s%s",
             kiln_profiler.prog, (int)kiln_profiler.pid, (unsigned long long)r->threads.samples, r->delivered_hz,
             c->hz, kiln_sampler_timer_name(kiln_sampler_timer()), kiln_unwind_name(c->unwind),
             (unsigned long long)r->threads.threads, (unsigned long long)r->threads.dropped,
             (unsigned long long)r->threads.truncated, rc == 0 ? " -> " : "", rc == 0 ? path : "");
  if (c->mode & KILN_MODE_ALLOC_BIT) {
    const kiln_heap_stats_t *h = &r->heap;
    char a[32], f[32], l[32], p[32], lost[512] = "";
    if (leaks->ran) {
      static const char *const cat[] = {"definitely lost", "indirectly lost", "possibly lost", "still reachable"};
      size_t len = 0;
      for (int k = 0; k < KILN_LEAK_KINDS && len < sizeof lost; k++)
        len += (size_t)snprintf(lost + len, sizeof lost - len, "%s %s %s in %llu%s", k ? "," : ";", cat[k],
                                kiln_profiler_size((double)leaks->bytes[k], a, sizeof a),
                                (unsigned long long)leaks->count[k], k ? "" : " blocks");
      if (leaks->suppressed_count && len < sizeof lost)
        snprintf(lost + len, sizeof lost - len, ", suppressed %s in %llu",
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
  if (set->health.nwarnings > 0)
    kiln_log("%s[%d]: health: %s%s", kiln_profiler.prog, (int)kiln_profiler.pid, set->health.warnings[0],
             set->health.nwarnings > 1 ? " (more in the meta file)" : "");
}

/* Delta mode: DELTA_* = current - MARK_* for every stack; after the set
 * is written, MARK_* += DELTA_*, so each count lands in exactly one set. */
static void kiln_profiler_delta_stack(kiln_stack_t *s, void *ctx) {
  bool commit = *(bool *)ctx;
  static const kiln_count_kind_t cur[3] = {KILN_COUNT_CPU, KILN_COUNT_ALLOC_BYTES, KILN_COUNT_ALLOC_COUNT};
  static const kiln_count_kind_t mark[3] = {KILN_COUNT_MARK_CPU, KILN_COUNT_MARK_ALLOC_BYTES,
                                            KILN_COUNT_MARK_ALLOC_COUNT};
  static const kiln_count_kind_t delta[3] = {KILN_COUNT_DELTA_CPU, KILN_COUNT_DELTA_ALLOC_BYTES,
                                             KILN_COUNT_DELTA_ALLOC_COUNT};
  for (int k = 0; k < 3; k++) {
    if (commit) {
      atomic_fetch_add(&s->counts[mark[k]], atomic_load(&s->counts[delta[k]]));
    } else {
      uint64_t d = atomic_load(&s->counts[cur[k]]) - atomic_load(&s->counts[mark[k]]);
      atomic_store(&s->counts[delta[k]], (int64_t)d > 0 ? d : 0);
    }
  }
}

/* The pprof files of a set: CPU (samples, cpu nanoseconds) and heap
 * (alloc and inuse objects/space), as Go's profiles name them. */
static int kiln_profiler_pprof(const char *dir, const char *base, kiln_profiler_set_t *set) {
  const kiln_config_t *c = &kiln_profiler.cfg;
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
    snprintf(set->pprof_files[0], sizeof set->pprof_files[0], "%s.cpu.pb.gz", base);
    rc = out.failed ? -ENOMEM : kiln_out_write_file(dir, set->pprof_files[0], out.data, out.len);
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
    snprintf(set->pprof_files[1], sizeof set->pprof_files[1], "%s.heap.pb.gz", base);
    rc = out.failed ? -ENOMEM : kiln_out_write_file(dir, set->pprof_files[1], out.data, out.len);
    kiln_buf_free(&out);
  }
  return rc;
}

static int kiln_profiler_dump_set(const char *dir, kiln_profiler_set_t *set, bool summary) {
  kiln_heap_guard_enter();
  const kiln_config_t *c = &kiln_profiler.cfg;
  if (c->mode & KILN_MODE_CPU_BIT) {
    if (set->crash) kiln_collector_try_drain();
    else kiln_collector_drain();
  }
  if (!set->crash) kiln_modules_refresh();
  kiln_symbols_demangle(!set->crash); /* __cxa_demangle mallocs: not in a crash */
  set->until_unix = kiln_profiler_now(CLOCK_REALTIME);
  set->from_unix = set->tagged && set->delta ? kiln_profiler.last_set_unix : kiln_profiler.wall_start_unix;
  char base[200];
  if (set->tagged) {
    set->seq = ++kiln_profiler.dump_seq;
    time_t t = (time_t)set->until_unix;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(set->tag, sizeof set->tag, "%04d%02d%02dT%02d%02d%02dZ-%04u", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, set->seq % 10000);
    snprintf(base, sizeof base, "%s.%d.%s", kiln_profiler.prog, (int)kiln_profiler.pid, set->tag);
  } else {
    set->seq = kiln_profiler.dump_seq;
    snprintf(base, sizeof base, "%s.%d", kiln_profiler.prog, (int)kiln_profiler.pid);
  }
  kiln_profiler_report_t r;
  memset(&r, 0, sizeof r);
  kiln_count_kind_t kinds[KILN_PROFILER_FILES];
  char names[KILN_PROFILER_FILES][320];
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
      if (set->delta && kind == KILN_COUNT_ALLOC_BYTES) kind = KILN_COUNT_DELTA_ALLOC_BYTES;
      if (set->delta && kind == KILN_COUNT_ALLOC_COUNT) kind = KILN_COUNT_DELTA_ALLOC_COUNT;
    } else if (kiln_profiler_files[i].leak && !leaks.files) {
      continue;
    }
    kinds[n] = kind;
    snprintf(names[n], sizeof names[n], "%s.%s.folded", base, suffix);
    n++;
  }
  if (c->mode & KILN_MODE_ALLOC_BIT) {
    kiln_heap_settle();
    kiln_heap_stats(&r.heap);
  }
  bool commit = false;
  if (set->tagged && set->delta) kiln_stacktab_foreach(kiln_profiler_delta_stack, &commit);
  kiln_folded_render(kinds, n, outs, totals);
  for (int i = 0; i < n; i++)
    if (kinds[i] == KILN_COUNT_CPU || kinds[i] == KILN_COUNT_DELTA_CPU) r.cpu_total = totals[i];
  kiln_threads_totals(&r.threads);
  kiln_stacktab_stats(&r.table);
  double user, sys;
  kiln_profiler_rusage(&user, &sys);
  r.user = user - kiln_profiler.user_start;
  r.sys = sys - kiln_profiler.sys_start;
  r.wall = kiln_profiler_now(CLOCK_MONOTONIC) - kiln_profiler.wall_start;
  r.profiler_cpu = kiln_collector_cpu_seconds();
  /* The perf timer counts user time; the others user and system time. */
  double counted = r.user + (kiln_sampler_timer() == KILN_TIMER_PERF ? 0 : r.sys) - r.profiler_cpu;
  r.delivered_hz = counted > 0.001 ? (double)r.threads.samples / counted : 0;

  kiln_health_input_t hin = {c, r.threads.samples, counted, r.threads.dropped, r.threads.truncated,
                             r.threads.skipped, r.table.full_hits, r.table.bytes + r.heap.map_bytes,
                             (c->mode & KILN_MODE_CPU_BIT) ? r.threads.threads : 0, kiln_sampler_stepped_aside(),
                             c->dump_signal > 0 && !kiln_profiler.dump_signal_on, set->crash};
  kiln_health_assess(&hin, &set->health);

  int rc = kiln_out_mkdirs(dir);
  for (int i = 0; i < n && rc == 0; i++) {
    if (outs[i].failed) rc = -ENOMEM;
    else rc = kiln_out_write_file(dir, names[i], outs[i].data ? outs[i].data : "", outs[i].len);
  }
  if (rc == 0 && c->pprof && set->tagged) rc = kiln_profiler_pprof(dir, base, set);
  /* The meta file last: when it is there, the whole set is. */
  kiln_buf_t meta = {0};
  char meta_name[300];
  snprintf(meta_name, sizeof meta_name, "%s.meta.json", base);
  kiln_profiler_meta(&meta, &r, names, n, set);
  if (rc == 0) rc = meta.failed ? -ENOMEM : kiln_out_write_file(dir, meta_name, meta.data, meta.len);
  if (rc == 0 && set->tagged && set->delta) {
    commit = true;
    kiln_stacktab_foreach(kiln_profiler_delta_stack, &commit);
  }
  if (rc == 0 && set->tagged) kiln_profiler.last_set_unix = set->until_unix;
  if (rc < 0 && !kiln_profiler.out_warned) {
    kiln_profiler.out_warned = true;
    kiln_log("cannot write profiles to %s: %s", dir, kiln_out_error(rc));
  }
  if (summary && !c->quiet) kiln_profiler_summary(&r, &leaks, set, kiln_out_where(dir), names[0], rc);
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

/* From the collector thread: an interval is up, or the dump signal came. */
static void kiln_profiler_on_dump(kiln_dump_reason_t reason) {
  pthread_mutex_lock(&kiln_profiler_lock);
  if (atomic_load(&kiln_profiler.active)) kiln_profiler_dump_locked(kiln_profiler.cfg.out_dir, reason, false);
  pthread_mutex_unlock(&kiln_profiler_lock);
}

/* _exit and fatal signals: whatever state the program is in, write what
 * can be written without waiting on a lock and without malloc; never
 * twice. Returns at once if a dump is under way elsewhere. */
void kiln_profiler_emergency(kiln_dump_reason_t reason, int sig) {
  if (getpid() != kiln_profiler.pid || !atomic_load(&kiln_profiler.active)) return;
  if (pthread_mutex_trylock(&kiln_profiler_lock) != 0) return;
  if (atomic_exchange(&kiln_profiler.active, false)) {
    kiln_heap_guard_enter();
    if (kiln_profiler.cfg.mode & KILN_MODE_CPU_BIT) kiln_sampler_stop();
    kiln_profiler_set_t set;
    memset(&set, 0, sizeof set);
    set.reason = reason;
    set.crash = sig != 0;
    set.fatal_signal = sig;
    if (kiln_profiler.cfg.interval_ns) {
      /* the last interval, so that the intervals add up to the whole */
      kiln_profiler_set_t last = set;
      last.tagged = true;
      last.delta = !kiln_profiler.cfg.interval_cumulative;
      kiln_profiler_dump_set(kiln_profiler.cfg.out_dir, &last, false);
    }
    kiln_profiler_dump_set(kiln_profiler.cfg.out_dir, &set, true);
    kiln_heap_guard_leave();
  }
  pthread_mutex_unlock(&kiln_profiler_lock);
}

void kiln_profiler_at_exit(void) {
  /* A vfork child shares this memory: it must not touch the state. */
  if (getpid() != kiln_profiler.pid || !atomic_load(&kiln_profiler.active)) return;
  kiln_heap_guard_enter();
  /* The collector may be writing a set under the lock: stop it first. */
  if (kiln_profiler.cfg.mode & KILN_MODE_CPU_BIT) kiln_sampler_stop();
  kiln_collector_stop();
  pthread_mutex_lock(&kiln_profiler_lock);
  if (atomic_exchange(&kiln_profiler.active, false)) {
    if (kiln_profiler.cfg.interval_ns) /* the last interval: the sets add up to the whole run */
      kiln_profiler_dump_locked(kiln_profiler.cfg.out_dir, KILN_DUMP_INTERVAL, false);
    if (kiln_profiler.cfg.mode & KILN_MODE_ALLOC_BIT) {
      kiln_freeres_at_exit();
      kiln_scan_run(&kiln_profiler.cfg); /* leak categories, when asked */
    }
    kiln_profiler_dump_locked(kiln_profiler.cfg.out_dir, KILN_DUMP_EXIT, true);
  }
  pthread_mutex_unlock(&kiln_profiler_lock);
  kiln_heap_guard_leave();
}

void kiln_profiler_before_exec(void) {
  /* A vfork child shares our memory but is another process: hands off. */
  if (!atomic_load(&kiln_profiler.active) || getpid() != kiln_profiler.pid) return;
  pthread_mutex_lock(&kiln_profiler_lock);
  kiln_profiler_dump_locked(kiln_profiler.cfg.out_dir, KILN_DUMP_EXEC, true);
  kiln_sampler_quiesce();
  pthread_mutex_unlock(&kiln_profiler_lock);
}

void kiln_profiler_exec_failed(void) {
  if (!atomic_load(&kiln_profiler.active) || getpid() != kiln_profiler.pid) return;
  kiln_sampler_resume();
}

/* ------------------------------------------------------------ public API */

KILN_EXPORT int kiln_start(const kiln_options_t *opts) {
  kiln_config_t cfg;
  int rc = kiln_options_from_env(&cfg);
  if (rc < 0) return rc;
  if (opts != NULL) {
    if (opts->mode != 0)
      cfg.mode = (opts->mode & KILN_MODE_CPU ? KILN_MODE_CPU_BIT : 0) |
                 (opts->mode & KILN_MODE_ALLOC ? KILN_MODE_ALLOC_BIT : 0);
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
    kiln_sampler_stop();
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
  pthread_mutex_unlock(&kiln_profiler_lock);
}
