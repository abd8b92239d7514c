/* kiln_check.c — the checks a test makes from code (include/kiln.h):
 * allocation statistics, scoped leak checks and allocation budgets, and
 * their reports, symbolized in process. Normal context, any thread; every
 * entry point holds the hook guard, so that what kiln allocates for a
 * report (and what stdio allocates to print it) is never the program's. */
#include "kiln_internal.h"
#include "kiln.h"

#include <errno.h>
#include <string.h>

KILN_EXPORT void kiln_alloc_stats(kiln_alloc_stats_t *out) {
  memset(out, 0, sizeof *out);
  if (!kiln_heap_started()) return;
  kiln_heap_stats_t h;
  kiln_heap_stats(&h);
  out->alloc_count = h.alloc_count;
  out->alloc_bytes = h.alloc_bytes;
  out->free_count = h.freed_count;
  out->free_bytes = h.freed_bytes;
  out->live_count = (size_t)h.live_count;
  out->live_bytes = (size_t)h.live_bytes;
  out->peak_bytes = (size_t)h.peak_bytes;
}

/* ---------------------------------------------------------------- sites */

typedef struct kiln_check_block {
  uint32_t stack_id;
  uint64_t bytes, count;
} kiln_check_block_t;

static int kiln_check_by_stack(const void *a, const void *b) {
  const kiln_check_block_t *x = a, *y = b;
  return x->stack_id < y->stack_id ? -1 : x->stack_id > y->stack_id;
}

static int kiln_check_by_bytes(const void *a, const void *b) {
  const kiln_leak_site_t *x = a, *y = b;
  if (x->bytes != y->bytes) return x->bytes > y->bytes ? -1 : 1;
  return x->blocks > y->blocks ? -1 : x->blocks < y->blocks;
}

/* Sites with the same frames, next to each other. */
static int kiln_check_by_frames(const void *a, const void *b) {
  const kiln_leak_site_t *x = a, *y = b;
  if (x->depth != y->depth) return x->depth < y->depth ? -1 : 1;
  for (size_t k = 0; k < x->depth; k++)
    if (x->frames[k] != y->frames[k]) return (uintptr_t)x->frames[k] < (uintptr_t)y->frames[k] ? -1 : 1;
  return 0;
}

static const char kiln_check_self; /* an address in kiln's own module */

/* A frame of kiln itself (its pthread_create wrapper, its thread start):
 * in kiln's module, named kiln_* or for the function kiln interposes. */
static bool kiln_check_kiln_frame(const kiln_module_t *self, uintptr_t pc, const kiln_buf_t *name) {
  if (self == NULL || pc - 1 < self->lo || pc - 1 >= self->hi || name->data == NULL) return false;
  return (name->len > 5 && memcmp(name->data, "kiln_", 5) == 0) ||
         (name->len == 14 && memcmp(name->data, "pthread_create", 14) == 0);
}

/* Blocks glibc frees at exit (a thread's DTV, locale data:
 * kiln_freeres_glibc_stack) are not a scope's leaks: left out. */
static size_t kiln_check_drop_glibc(kiln_check_block_t *recs, size_t n) {
  kiln_sort(recs, n, sizeof *recs, kiln_check_by_stack);
  kiln_modules_refresh();
  kiln_symbols_t *sy = kiln_symbols_open();
  kiln_buf_t name = {0};
  size_t m = 0;
  bool glibc = false;
  for (size_t i = 0; i < n; i++) {
    if (i == 0 || recs[i].stack_id != recs[i - 1].stack_id)
      glibc = kiln_freeres_glibc_stack(kiln_stacktab_get(recs[i].stack_id), sy, &name);
    if (!glibc) recs[m++] = recs[i];
  }
  kiln_buf_free(&name);
  kiln_symbols_close(sy);
  return m;
}

/* Builds a report from per-stack (stack_id, bytes, count) records: one
 * mapping holds the sites and their frames. A site's frames start at the caller of operator new and leave
 * kiln's own frames out; sites whose frames are then the same are one. */
static int kiln_check_report(kiln_check_block_t *recs, size_t n, kiln_leak_report_t *out) {
  memset(out, 0, sizeof *out);
  kiln_sort(recs, n, sizeof *recs, kiln_check_by_stack);
  /* The report's own symbolizer: another thread may be dumping. */
  kiln_modules_refresh();
  kiln_symbols_t *sy = kiln_symbols_open();
  kiln_buf_t name = {0};
  size_t nsites = 0, nframes = 0;
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && recs[i].stack_id == recs[i - 1].stack_id) continue;
    nsites++;
    nframes += kiln_stacktab_get(recs[i].stack_id)->depth;
  }
  size_t size = nsites * sizeof(kiln_leak_site_t) + nframes * sizeof(void *) + 16;
  char *mem = kiln_mem_map(size);
  if (mem == NULL) {
    kiln_buf_free(&name);
    kiln_symbols_close(sy);
    return -ENOMEM;
  }
  kiln_leak_site_t *sites = (kiln_leak_site_t *)mem;
  const void **frames = (const void **)(mem + nsites * sizeof(kiln_leak_site_t));
  size_t s = 0;
  for (size_t i = 0; i < n; i++) {
    if (i == 0 || recs[i].stack_id != recs[i - 1].stack_id) {
      kiln_stack_t *st = kiln_stacktab_get(recs[i].stack_id);
      sites[s].depth = st->depth;
      sites[s].frames = frames;
      for (uint32_t k = 0; k < st->depth; k++) *frames++ = (const void *)(uintptr_t)st->pcs[k];
      s++;
    }
    sites[s - 1].bytes += recs[i].bytes;
    sites[s - 1].blocks += recs[i].count;
    out->bytes += recs[i].bytes;
    out->blocks += recs[i].count;
  }
  const kiln_module_t *self = kiln_modules_find((uintptr_t)&kiln_check_self);
  for (size_t i = 0; i < nsites; i++) {
    const void **f = (const void **)sites[i].frames;
    size_t kept = 0;
    bool leaf = true; /* still in the allocator's C++ wrapper */
    for (size_t k = 0; k < sites[i].depth; k++) {
      name.len = 0;
      kiln_symbols_name(sy, (uint64_t)(uintptr_t)f[k], &name);
      bool wrapper = leaf && k + 1 < sites[i].depth && kiln_symbols_is_alloc_wrapper(name.data, name.len);
      leaf = wrapper;
      if (wrapper || (kiln_check_kiln_frame(self, (uintptr_t)f[k], &name) && sites[i].depth > 1)) continue;
      f[kept++] = f[k];
    }
    if (kept > 0) sites[i].depth = kept;
  }
  kiln_buf_free(&name);
  kiln_symbols_close(sy);
  kiln_sort(sites, nsites, sizeof *sites, kiln_check_by_frames);
  size_t merged = 0;
  for (size_t i = 0; i < nsites; i++) {
    if (merged > 0 && kiln_check_by_frames(&sites[merged - 1], &sites[i]) == 0) {
      sites[merged - 1].bytes += sites[i].bytes;
      sites[merged - 1].blocks += sites[i].blocks;
    } else {
      sites[merged++] = sites[i];
    }
  }
  nsites = merged;
  kiln_sort(sites, nsites, sizeof *sites, kiln_check_by_bytes);
  out->nsites = nsites;
  out->sites = sites;
  out->priv = mem;
  out->priv_size = size;
  return 0;
}

static void kiln_check_print_sites(const kiln_leak_site_t *sites, size_t n, size_t max, const char *what,
                                   FILE *f) {
  kiln_modules_refresh();
  kiln_symbols_t *sy = kiln_symbols_open();
  kiln_buf_t name = {0};
  for (size_t i = 0; i < n && i < max; i++) {
    fprintf(f, "kiln: %zu bytes in %zu blocks %s (site %zu of %zu)\n", sites[i].bytes, sites[i].blocks, what,
            i + 1, n);
    for (size_t k = 0; k < sites[i].depth; k++) {
      name.len = 0;
      kiln_symbols_name(sy, (uint64_t)(uintptr_t)sites[i].frames[k], &name);
      fprintf(f, "kiln:    %s %.*s\n", k == 0 ? "at" : "by", (int)name.len, name.data ? name.data : "");
    }
  }
  if (n > max) fprintf(f, "kiln: (%zu more sites)\n", n - max);
  kiln_buf_free(&name);
  kiln_symbols_close(sy);
}

/* ---------------------------------------------------------- leak scopes */

KILN_EXPORT kiln_leak_scope_t kiln_leak_begin(void) {
  kiln_leak_scope_t scope = {0, 0};
  if (kiln_profiler_ensure_heap() < 0) return scope;
  scope.first = kiln_heap_scope_begin();
  scope.valid = 1;
  return scope;
}

static void kiln_check_collect(uint64_t addr, uint64_t size, uint32_t stack_id, void *ctx) {
  if (kiln_freeres_is_std_buffer(addr)) return; /* glibc's, not the scope's */
  kiln_check_block_t *rec = kiln_buf_reserve(ctx, sizeof *rec);
  if (rec == NULL) return;
  rec->stack_id = stack_id;
  rec->bytes = size;
  rec->count = 1;
}

KILN_EXPORT int kiln_leak_end(kiln_leak_scope_t scope, kiln_leak_report_t *out) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (!scope.valid) return -EINVAL;
  kiln_heap_guard_enter();
  kiln_buf_t recs = {0};
  kiln_heap_scope_end(scope.first, kiln_check_collect, &recs);
  size_t n = recs.failed ? 0 : kiln_check_drop_glibc((kiln_check_block_t *)recs.data, recs.len / sizeof(kiln_check_block_t));
  size_t blocks = 0;
  for (size_t i = 0; i < n; i++) blocks += ((kiln_check_block_t *)recs.data)[i].count;
  int rc = recs.failed ? -ENOMEM : (int)blocks;
  if (rc >= 0 && out != NULL) {
    int e = kiln_check_report((kiln_check_block_t *)recs.data, n, out);
    if (e < 0) rc = e;
  }
  kiln_buf_free(&recs);
  kiln_heap_guard_leave();
  return rc;
}

KILN_EXPORT void kiln_leak_report_print(const kiln_leak_report_t *r, FILE *f) {
  kiln_heap_guard_enter();
  if (r->blocks == 0) {
    fprintf(f, "kiln: no leaks\n");
  } else {
    fprintf(f, "kiln: %zu bytes in %zu blocks leaked in the scope, from %zu sites\n", r->bytes, r->blocks,
            r->nsites);
    kiln_check_print_sites(r->sites, r->nsites, (size_t)-1, "leaked", f);
  }
  fflush(f);
  kiln_heap_guard_leave();
}

KILN_EXPORT void kiln_leak_report_free(kiln_leak_report_t *r) {
  if (r->priv != NULL) kiln_mem_unmap(r->priv, r->priv_size);
  memset(r, 0, sizeof *r);
}

/* -------------------------------------------------------------- budgets */

static void kiln_check_snapshot(kiln_stack_t *s, void *ctx) {
  uint64_t count = atomic_load_explicit(&s->counts[KILN_COUNT_ALLOC_COUNT], memory_order_relaxed);
  if (count == 0) return;
  kiln_check_block_t *rec = kiln_buf_reserve(ctx, sizeof *rec);
  if (rec == NULL) return;
  rec->stack_id = kiln_stacktab_id(s);
  rec->count = count;
  rec->bytes = atomic_load_explicit(&s->counts[KILN_COUNT_ALLOC_BYTES], memory_order_relaxed);
}

KILN_EXPORT kiln_budget_t kiln_budget_begin(void) {
  kiln_budget_t b;
  memset(&b, 0, sizeof b);
  if (kiln_profiler_ensure_heap() < 0) return b;
  kiln_heap_guard_enter();
  kiln_alloc_stats_t st;
  kiln_alloc_stats(&st);
  b.alloc_count = st.alloc_count;
  b.alloc_bytes = st.alloc_bytes;
  kiln_buf_t snap = {0};
  kiln_stacktab_foreach(kiln_check_snapshot, &snap);
  kiln_sort(snap.data, snap.len / sizeof(kiln_check_block_t), sizeof(kiln_check_block_t), kiln_check_by_stack);
  b.snapshot = snap.data;
  b.snapshot_size = snap.failed ? 0 : snap.len;
  b.valid = !snap.failed;
  if (snap.failed) kiln_buf_free(&snap);
  kiln_heap_guard_leave();
  return b;
}

typedef struct kiln_check_diff {
  const kiln_check_block_t *base;
  size_t nbase;
  kiln_buf_t out;
} kiln_check_diff_t;

/* What a stack allocated since the snapshot. */
static void kiln_check_since(kiln_stack_t *s, void *ctx) {
  kiln_check_diff_t *d = ctx;
  uint32_t id = kiln_stacktab_id(s);
  uint64_t count = atomic_load_explicit(&s->counts[KILN_COUNT_ALLOC_COUNT], memory_order_relaxed);
  uint64_t bytes = atomic_load_explicit(&s->counts[KILN_COUNT_ALLOC_BYTES], memory_order_relaxed);
  size_t lo = 0, hi = d->nbase;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (d->base[mid].stack_id < id) lo = mid + 1;
    else hi = mid;
  }
  if (lo < d->nbase && d->base[lo].stack_id == id) {
    count -= d->base[lo].count;
    bytes -= d->base[lo].bytes;
  }
  if (count == 0) return;
  kiln_check_block_t *rec = kiln_buf_reserve(&d->out, sizeof *rec);
  if (rec == NULL) return;
  rec->stack_id = id;
  rec->count = count;
  rec->bytes = bytes;
}

KILN_EXPORT int kiln_budget_end(kiln_budget_t *b, size_t max_allocs, size_t max_bytes, kiln_alloc_stats_t *used,
                                FILE *report) {
  if (used != NULL) memset(used, 0, sizeof *used);
  if (!b->valid) return -EINVAL;
  kiln_heap_guard_enter();
  kiln_alloc_stats_t st;
  kiln_alloc_stats(&st);
  size_t allocs = st.alloc_count - b->alloc_count, bytes = st.alloc_bytes - b->alloc_bytes;
  if (used != NULL) {
    used->alloc_count = allocs;
    used->alloc_bytes = bytes;
  }
  bool over = (max_allocs != 0 && allocs > max_allocs) || (max_bytes != 0 && bytes > max_bytes);
  if (over && report != NULL) {
    kiln_check_diff_t d = {b->snapshot, b->snapshot_size / sizeof(kiln_check_block_t), {0}};
    kiln_stacktab_foreach(kiln_check_since, &d);
    kiln_leak_report_t r;
    fprintf(report, "kiln: allocation budget exceeded: %zu allocations (limit %zu), %zu bytes (limit %zu)\n",
            allocs, max_allocs, bytes, max_bytes);
    if (kiln_check_report((kiln_check_block_t *)d.out.data, d.out.len / sizeof(kiln_check_block_t), &r) == 0) {
      kiln_check_print_sites(r.sites, r.nsites, 10, "allocated", report);
      kiln_leak_report_free(&r);
    }
    fflush(report);
    kiln_buf_free(&d.out);
  }
  if (b->snapshot != NULL) {
    kiln_buf_t snap = {b->snapshot, b->snapshot_size, b->snapshot_size, false, b->snapshot_size};
    kiln_buf_free(&snap);
  }
  b->snapshot = NULL;
  b->valid = 0;
  kiln_heap_guard_leave();
  return over ? 1 : 0;
}
