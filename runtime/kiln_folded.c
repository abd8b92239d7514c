/* kiln_folded.c — the stack table as folded text, root first:
 * "main;parse;strlen 42". Each distinct pc is named once; stacks whose
 * names are equal (two call sites in one function) are merged, and lines
 * are sorted, so the same profile always gives the same bytes. Stacks cut
 * at the depth limit start with "[kiln: truncated]"; samples taken where
 * unwinding was unsafe are "[kiln: unwind skipped];leaf". Dump time. */
#include "kiln_internal.h"

#include <string.h>

typedef struct kiln_line {
  size_t off, len; /* in the lines buffer, without the count */
  uint64_t count;
} kiln_line_t;

/* pc -> name, open addressing; names live in one buffer. */
typedef struct kiln_names {
  uint64_t *pcs;
  size_t *off, *len;
  size_t cap;
  kiln_buf_t text;
} kiln_names_t;

typedef struct kiln_folded_ctx {
  kiln_count_kind_t kind;
  kiln_names_t names;
  kiln_buf_t lines;
  kiln_buf_t recs; /* kiln_line_t array */
} kiln_folded_ctx_t;

static const char *kiln_folded_lines_base;

static void kiln_folded_name(kiln_names_t *nm, uint64_t pc, const char **s, size_t *n) {
  size_t mask = nm->cap - 1, i = (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 20) & mask;
  while (nm->pcs[i] != 0 && nm->pcs[i] != pc) i = (i + 1) & mask;
  if (nm->pcs[i] == 0) {
    nm->pcs[i] = pc;
    nm->off[i] = nm->text.len;
    kiln_symbols_name(pc, &nm->text);
    nm->len[i] = nm->text.len - nm->off[i];
  }
  *s = nm->text.data + nm->off[i];
  *n = nm->len[i];
}

static void kiln_folded_count_pcs(kiln_stack_t *s, void *ctx) {
  size_t *total = ctx;
  *total += s->depth;
}

static void kiln_folded_stack(kiln_stack_t *s, void *vctx) {
  kiln_folded_ctx_t *c = vctx;
  uint64_t count = atomic_load_explicit(&s->counts[c->kind], memory_order_relaxed);
  /* Zero, or below zero for a moment while another thread was in a hook. */
  if (count == 0 || (int64_t)count < 0) return;
  /* Allocation stacks end at the caller of operator new, not inside it. */
  uint32_t lo = 0;
  if (c->kind != KILN_COUNT_CPU) {
    while (lo + 1 < s->depth) {
      const char *name;
      size_t n;
      kiln_folded_name(&c->names, s->pcs[lo], &name, &n);
      if (!kiln_symbols_is_alloc_wrapper(name, n)) break;
      lo++;
    }
  }
  size_t start = c->lines.len;
  if (s->flags & KILN_STACK_FULL) kiln_buf_puts(&c->lines, "[kiln: table full]");
  if (s->flags & KILN_STACK_TRUNCATED) kiln_buf_puts(&c->lines, "[kiln: truncated]");
  if (s->flags & KILN_STACK_SKIPPED) kiln_buf_puts(&c->lines, "[kiln: unwind skipped]");
  for (uint32_t i = s->depth; i-- > lo;) {
    const char *name;
    size_t n;
    kiln_folded_name(&c->names, s->pcs[i], &name, &n);
    if (n == 0) continue; /* a frame the symbolizer leaves out (kernel names not read) */
    if (c->lines.len > start) kiln_buf_put(&c->lines, ";", 1);
    kiln_buf_put(&c->lines, name, n);
  }
  if (c->lines.len == start) kiln_buf_puts(&c->lines, "[unknown]");
  kiln_line_t *rec = kiln_buf_reserve(&c->recs, sizeof *rec);
  if (rec == NULL) return;
  rec->off = start;
  rec->len = c->lines.len - start;
  rec->count = count;
}

static int kiln_folded_cmp(const void *a, const void *b) {
  const kiln_line_t *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int r = memcmp(kiln_folded_lines_base + x->off, kiln_folded_lines_base + y->off, n);
  if (r != 0) return r;
  return x->len < y->len ? -1 : x->len > y->len;
}

void kiln_folded_render(const kiln_count_kind_t *kinds, int nkinds, kiln_buf_t *outs, uint64_t *totals) {
  kiln_folded_ctx_t c;
  memset(&c, 0, sizeof c);
  size_t npcs = 0;
  kiln_stacktab_foreach(kiln_folded_count_pcs, &npcs);
  c.names.cap = 1024;
  while (c.names.cap < npcs * 2) c.names.cap <<= 1;
  size_t bytes = c.names.cap * (sizeof(uint64_t) + 2 * sizeof(size_t));
  char *mem = kiln_mem_map(bytes);
  for (int k = 0; k < nkinds; k++) totals[k] = 0;
  if (mem == NULL) {
    for (int k = 0; k < nkinds; k++) outs[k].failed = true;
    return;
  }
  c.names.pcs = (uint64_t *)mem;
  c.names.off = (size_t *)(mem + c.names.cap * sizeof(uint64_t));
  c.names.len = c.names.off + c.names.cap;

  kiln_symbols_begin(); /* one name cache for every kind */
  for (int k = 0; k < nkinds; k++) {
    c.kind = kinds[k];
    c.lines.len = c.recs.len = 0;
    kiln_stacktab_foreach(kiln_folded_stack, &c);
    kiln_line_t *recs = (kiln_line_t *)c.recs.data;
    size_t n = c.recs.len / sizeof(kiln_line_t);
    kiln_folded_lines_base = c.lines.data;
    kiln_sort(recs, n, sizeof *recs, kiln_folded_cmp);
    for (size_t i = 0; i < n;) {
      uint64_t count = recs[i].count;
      size_t j = i + 1;
      while (j < n && kiln_folded_cmp(&recs[i], &recs[j]) == 0) count += recs[j++].count;
      kiln_buf_put(&outs[k], c.lines.data + recs[i].off, recs[i].len);
      kiln_buf_printf(&outs[k], " %llu\n", (unsigned long long)count);
      totals[k] += count;
      i = j;
    }
    if (c.lines.failed || c.recs.failed || c.names.text.failed) outs[k].failed = true;
  }
  kiln_symbols_end();
  kiln_buf_free(&c.lines);
  kiln_buf_free(&c.recs);
  kiln_buf_free(&c.names.text);
  kiln_mem_unmap(mem, bytes);
}
