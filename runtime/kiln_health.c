/* kiln_health.c — the health report of every dump (meta.json "health",
 * and a summary line when something is wrong): samples taken against the
 * samples the requested rate implies, what was dropped or cut, where
 * stacks end early (a module without frame pointers under the fp
 * unwinder, or without unwind tables), the profiler's own memory, and what
 * kiln shares the process with (another SIGPROF handler, another
 * allocator). Dump time, normal context; no malloc in crash mode. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <stdio.h>
#include <sys/auxv.h>
#include <stdarg.h>
#include <string.h>

typedef struct kiln_health_walk {
  kiln_count_kind_t kind;
  uint64_t total;
  kiln_buf_t name;
  struct { char module[96]; uint64_t count; } ends[32];
  int nends;
  kiln_symbols_t *sy;
} kiln_health_walk_t;

/* Frames where a whole stack legitimately ends. */
static bool kiln_health_is_root(const char *s, size_t n) {
  static const char *const roots[] = {"_start", "__libc_start_main", "__libc_start_call_main", "clone",
                                      "clone3", "__clone", "__clone3", "start_thread", "__GI___clone3"};
  for (size_t i = 0; i < sizeof roots / sizeof *roots; i++)
    if (strlen(roots[i]) == n && memcmp(roots[i], s, n) == 0) return true;
  return false;
}

static void kiln_health_stack(kiln_stack_t *s, void *ctx) {
  kiln_health_walk_t *w = ctx;
  uint64_t v = atomic_load_explicit(&s->counts[w->kind], memory_order_relaxed);
  if (v == 0 || (int64_t)v < 0) return;
  w->total += v;
  if (s->depth == 0 || (s->flags & (KILN_STACK_TRUNCATED | KILN_STACK_SKIPPED | KILN_STACK_FULL))) return;
  uint64_t root = s->pcs[s->depth - 1];
  /* The program's entry point ends the main thread's stacks, named or not
   * (a stripped program's _start has no name). */
  uint64_t entry = getauxval(AT_ENTRY);
  if (entry != 0 && root - 1 >= entry && root - 1 < entry + 64) return;
  w->name.len = 0;
  kiln_symbols_name(w->sy, root, &w->name);
  if (w->name.data != NULL && kiln_health_is_root(w->name.data, w->name.len)) return;
  /* Blame the deepest frame in a module: a walk that lost its way may
   * have taken a stray word for a frame or two beyond it. */
  const kiln_module_t *m = NULL;
  for (uint32_t i = s->depth; i-- > 0 && m == NULL;) m = kiln_modules_find((uintptr_t)s->pcs[i] - 1);
  const char *module = m ? m->name : "[unknown]";
  int i = 0;
  while (i < w->nends && strcmp(w->ends[i].module, module) != 0) i++;
  if (i == w->nends) {
    if (w->nends == 32) return;
    kiln_fmt(w->ends[w->nends++].module, sizeof w->ends[0].module, "%s", module);
  }
  w->ends[i].count += v;
}

static void kiln_health_warn(kiln_health_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kiln_health_warn(kiln_health_t *h, const char *fmt, ...) {
  if (h->nwarnings == KILN_HEALTH_WARNINGS) return;
  va_list ap;
  va_start(ap, fmt);
  kiln_fmt_v(h->warnings[h->nwarnings++], sizeof h->warnings[0], fmt, ap);
  va_end(ap);
}

void kiln_health_assess(const kiln_health_input_t *in, kiln_health_t *h) {
  memset(h, 0, sizeof *h);
  const kiln_config_t *c = in->cfg;
  bool cpu = c->mode & (KILN_MODE_CPU_BIT | KILN_MODE_WALL_BIT);
  h->memory_bytes = in->memory_bytes +
                    in->threads * ((kiln_sampler_timer() == KILN_TIMER_PERF ? 0 : KILN_RING_WORDS * 8) + 8192);
  /* First: the summary line shows the first warning, and this one says
   * the rest of the profile cannot be trusted whole. */
  if (in->mem_refused)
    kiln_health_warn(h, "out of address space: %llu of kiln's memory maps were refused (ulimit -v?); "
                        "this profile is partial",
                     (unsigned long long)in->mem_refused);
  if (cpu) {
    h->expected_samples = in->counted_seconds * c->hz;
    h->delivered_share = h->expected_samples > 0 ? (double)in->samples / h->expected_samples : 0;
    if (in->stepped_aside)
      kiln_health_warn(h, "another SIGPROF handler: the program installed its own; CPU sampling stopped");
    if (h->expected_samples >= 100 && h->delivered_share < 0.9)
      kiln_health_warn(h, "delivered %.0f%% of the requested %d Hz (timer: %s)", 100 * h->delivered_share, c->hz,
                       kiln_sampler_timer_name(kiln_sampler_timer()));
    if (in->dropped)
      kiln_health_warn(h, "%llu samples dropped: a thread's ring was full", (unsigned long long)in->dropped);
    uint64_t copy_ended = in->copy_ended < in->truncated ? in->copy_ended : in->truncated;
    uint64_t too_deep = in->truncated - copy_ended;
    if (in->samples && too_deep * 100 > in->samples)
      kiln_health_warn(h, "%.0f%% of stacks deeper than KILN_MAX_DEPTH=%d: raise it",
                       100.0 * (double)too_deep / (double)in->samples, c->max_depth);
    if (in->samples && copy_ended * 100 > in->samples)
      kiln_health_warn(h, "%.0f%% of stacks went on past the %llu KiB of stack a sample copies (a frame that large: "
                          "a big local array?): their outer frames are not known ([kiln: truncated])",
                       100.0 * (double)copy_ended / (double)in->samples,
                       (unsigned long long)((in->copy_bytes + 1023) / 1024));
    if (in->samples && in->skipped * 20 > in->samples)
      kiln_health_warn(h, "%.0f%% of samples fell inside the dynamic loader and kept only their leaf",
                       100.0 * (double)in->skipped / (double)in->samples);
    double cpu_seconds = in->user_seconds + in->sys_seconds;
    if (in->kernel_missing && cpu_seconds > 0 && in->sys_seconds / cpu_seconds >= 0.01)
      kiln_health_warn(h, "%.0f%% of this process's CPU time was in the kernel and is not in this profile: "
                          "run as root or with perf_event_paranoid <= 1",
                       100.0 * in->sys_seconds / cpu_seconds);
    if ((c->mode & KILN_MODE_WALL_BIT) && in->wall_probe_failures) {
      char e[64];
      kiln_health_warn(h, "wall: %llu looks at a blocked thread failed (/proc/self/task/TID/syscall: %s): "
                          "their waits are [wait: unknown], without stacks",
                       (unsigned long long)in->wall_probe_failures,
                       kiln_fmt_errno(in->wall_probe_errno, e, sizeof e));
    }
    if (in->unsampled)
      kiln_health_warn(h, "%llu threads were not sampled (%.2f s of CPU time): %s",
                       (unsigned long long)in->unsampled, in->unsampled_seconds,
                       in->unsampled_names ? in->unsampled_names : "");
    if (in->samples && in->kiln_hook_samples * 10 > in->samples)
      kiln_health_warn(h, "%.0f%% of CPU samples are kiln's own allocation tracking ([kiln: allocation "
                          "tracking]); KILN_ALLOC_SAMPLE makes it cheaper",
                       100.0 * (double)in->kiln_hook_samples / (double)in->samples);
  }
  if (in->table_full)
    kiln_health_warn(h, "stack table full: %llu samples or allocations counted under [kiln: table full]",
                     (unsigned long long)in->table_full);
  if (in->dump_signal_refused)
    kiln_health_warn(h, "KILN_DUMP_SIGNAL: the program handles that signal itself; on-demand dumps off");
  /* Who serves malloc: kiln forwards to the next allocator in line. From
   * kiln's module list, not dladdr: no loader lock, also in emergencies. */
  const kiln_module_t *am = kiln_libc.malloc != NULL ? kiln_modules_find((uintptr_t)*(void **)&kiln_libc.malloc) : NULL;
  if (am != NULL && am->name[0] != '\0') {
    kiln_fmt(h->allocator, sizeof h->allocator, "%s", am->name);
    if (strncmp(h->allocator, "libc.so", 7) != 0)
      kiln_health_warn(h, "another allocator: %s serves malloc (kiln forwards every call to it)", h->allocator);
  }
  if (in->crash) return; /* no symbol pass in an emergency */
  /* Where do stacks end, if not at a thread's or the program's root? */
  kiln_health_walk_t w;
  memset(&w, 0, sizeof w);
  w.kind = cpu ? KILN_COUNT_CPU : KILN_COUNT_ALLOC_COUNT;
  w.sy = kiln_symbols_open();
  kiln_stacktab_foreach(kiln_health_stack, &w);
  kiln_symbols_close(w.sy);
  kiln_buf_free(&w.name);
  for (int i = 0; i < w.nends; i++) {
    double share = w.total ? (double)w.ends[i].count / (double)w.total : 0;
    if (share < 0.10 || w.ends[i].count < 20) continue;
    if (h->nmodules < KILN_HEALTH_MODULES) {
      kiln_fmt(h->modules[h->nmodules].name, sizeof h->modules[0].name, "%s", w.ends[i].module);
      h->modules[h->nmodules++].share = share;
    }
    if (c->unwind == KILN_UNWIND_FP)
      kiln_health_warn(h, "%s: %.0f%% of stacks end here: build it with -fno-omit-frame-pointer, or use the "
                          "libunwind unwinder (KILN_UNWIND=libunwind)", w.ends[i].module, 100 * share);
    else
      kiln_health_warn(h, "%s: %.0f%% of stacks end here: it may lack unwind tables (build with "
                          "-fasynchronous-unwind-tables)", w.ends[i].module, 100 * share);
  }
}

static void kiln_health_json_string(kiln_buf_t *b, const char *s) {
  kiln_buf_put(b, "\"", 1);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') kiln_buf_put(b, "\\", 1);
    if ((unsigned char)*s < 0x20) continue;
    kiln_buf_put(b, s, 1);
  }
  kiln_buf_put(b, "\"", 1);
}

void kiln_health_json(kiln_buf_t *b, const kiln_health_t *h) {
  kiln_buf_printf(b, "  \"health\": {\n    \"expected_samples\": %.0f,\n    \"delivered_share\": %.3f,\n",
                  h->expected_samples, h->delivered_share);
  kiln_buf_printf(b, "    \"profiler_memory_bytes\": %llu,\n    \"allocator\": ", (unsigned long long)h->memory_bytes);
  kiln_health_json_string(b, h->allocator);
  kiln_buf_puts(b, ",\n    \"stacks_ending_early\": [");
  for (int i = 0; i < h->nmodules; i++) {
    kiln_buf_printf(b, "%s{\"module\": ", i ? ", " : "");
    kiln_health_json_string(b, h->modules[i].name);
    kiln_buf_printf(b, ", \"share\": %.3f}", h->modules[i].share);
  }
  kiln_buf_puts(b, "],\n    \"warnings\": [");
  for (int i = 0; i < h->nwarnings; i++) {
    if (i) kiln_buf_puts(b, ", ");
    kiln_health_json_string(b, h->warnings[i]);
  }
  kiln_buf_puts(b, "]\n  },\n");
}
