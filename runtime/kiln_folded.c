/* kiln_folded.c — the stack table as folded text, root first:
 * "main;parse;strlen 42". Each distinct pc is named once; stacks whose
 * names are equal (two call sites in one function) are merged, and lines
 * are sorted, so the same profile always gives the same bytes. Stacks cut
 * at the depth limit start with "[kiln: truncated]"; samples taken where
 * unwinding was unsafe are "[kiln: unwind skipped];leaf". Dump time.
 *
 * Beside the folded files, the set's stacks file (PROG.PID[.TAG].stacks)
 * keeps what naming threw away, for the tool to find source lines and
 * inlined frames offline without slowing the program's exit. Tab-separated
 * lines:
 *   kiln-stacks  1
 *   module  ID  BUILD_ID|-  BIAS  LO  HI  FILE_OFF  PATH     (hex numbers)
 *   frame   ID  MODULE_ID|0  ADDRESS  RAW|-  NAME
 *   kind    KIND  TOTAL
 *   COUNT   ID ID ID ...                  (one stack of that kind, root first)
 * ADDRESS is pc-1 as the module's link-time address (what DWARF and
 * addr2line take), or the address itself outside modules; RAW the stored
 * (mangled) symbol; NAME the frame exactly as the folded files spell it.
 * Frames 1-4 are the marker frames and "[unknown]". A stack of a kind is
 * a line of that kind's folded file before merging: the counts of a kind
 * add up to the same total. */
#include "kiln_internal.h"

#include <string.h>

typedef struct kiln_line {
  size_t off, len; /* in the lines buffer, without the count */
  uint64_t count;
} kiln_line_t;

/* pc -> (frame id, name), open addressing; names live in one buffer. The
 * table is sized from the number of pcs in the stack table (a bound on
 * distinct pcs) and kept at most half full: stacks interned while the dump
 * runs (kiln_dump in a running program) make it grow, never fill. */
typedef struct kiln_names {
  char *mem;
  size_t bytes;
  uint64_t *pcs;
  size_t *off, *len;
  uint32_t *ids;
  size_t cap, count;
  kiln_buf_t text;
} kiln_names_t;

static size_t kiln_folded_slot_bytes(void) { return sizeof(uint64_t) + 2 * sizeof(size_t) + sizeof(uint32_t); }

static bool kiln_folded_names_alloc(kiln_names_t *nm, size_t cap) {
  size_t bytes = cap * kiln_folded_slot_bytes();
  char *mem = kiln_mem_map(bytes);
  if (mem == NULL) return false;
  nm->mem = mem;
  nm->bytes = bytes;
  nm->cap = cap;
  nm->pcs = (uint64_t *)mem;
  nm->off = (size_t *)(mem + cap * sizeof(uint64_t));
  nm->len = nm->off + cap;
  nm->ids = (uint32_t *)(nm->len + cap);
  return true;
}

static size_t kiln_folded_slot(const kiln_names_t *nm, uint64_t pc) {
  size_t mask = nm->cap - 1, i = (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 20) & mask;
  while (nm->pcs[i] != 0 && nm->pcs[i] != pc) i = (i + 1) & mask;
  return i;
}

/* Doubles the table; false (table unchanged) when memory is short. */
static bool kiln_folded_names_grow(kiln_names_t *nm) {
  kiln_names_t old = *nm;
  if (!kiln_folded_names_alloc(nm, old.cap * 2)) {
    *nm = old;
    return false;
  }
  for (size_t i = 0; i < old.cap; i++) {
    if (old.pcs[i] == 0) continue;
    size_t j = kiln_folded_slot(nm, old.pcs[i]);
    nm->pcs[j] = old.pcs[i];
    nm->off[j] = old.off[i];
    nm->len[j] = old.len[i];
    nm->ids[j] = old.ids[i];
  }
  kiln_mem_unmap(old.mem, old.bytes);
  return true;
}

typedef struct kiln_folded_ctx {
  kiln_count_kind_t kind;
  kiln_symbols_t *sy;
  kiln_names_t names;
  kiln_buf_t lines;
  kiln_buf_t recs;   /* kiln_line_t array */
  kiln_buf_t *stacks; /* the stacks file, or NULL */
  kiln_buf_t frames;  /* its frame lines, written as frames are named */
  kiln_buf_t raw;
} kiln_folded_ctx_t;

enum { KILN_FOLDED_FRAME_FULL = 1, KILN_FOLDED_FRAME_TRUNCATED, KILN_FOLDED_FRAME_SKIPPED,
       KILN_FOLDED_FRAME_UNKNOWN, KILN_FOLDED_FIRST_ID };

static const char *kiln_folded_lines_base;

/* Numbers for the stacks file, without printf (the file has one number a
 * frame of every stack: formatting is most of its cost). */
static void kiln_folded_put_num(kiln_buf_t *b, uint64_t v, unsigned base, char end) {
  char tmp[24];
  size_t n = sizeof tmp;
  tmp[--n] = end;
  do {
    tmp[--n] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  kiln_buf_put(b, tmp + n, sizeof tmp - n);
}

/* The frame line of the stacks file for a newly named pc. */
static void kiln_folded_frame_line(kiln_folded_ctx_t *c, uint32_t id, const kiln_symbol_t *sym, const char *name,
                                   size_t n) {
  size_t mod = sym->module ? kiln_modules_index(sym->module) + 1 : 0;
  c->raw.len = 0;
  kiln_symbols_raw(sym, &c->raw);
  kiln_buf_put(&c->frames, "frame\t", 6);
  kiln_folded_put_num(&c->frames, id, 10, '\t');
  kiln_folded_put_num(&c->frames, mod, 10, '\t');
  kiln_folded_put_num(&c->frames, sym->offset, 16, '\t');
  /* The stored symbol only when it says more than the name (C++'s). */
  if (c->raw.len != 0 && (c->raw.len != n || memcmp(c->raw.data, name, n) != 0))
    kiln_buf_put(&c->frames, c->raw.data, c->raw.len);
  else
    kiln_buf_put(&c->frames, "-", 1);
  kiln_buf_put(&c->frames, "\t", 1);
  kiln_buf_put(&c->frames, name, n);
  kiln_buf_put(&c->frames, "\n", 1);
}

static void kiln_folded_name(kiln_folded_ctx_t *c, uint64_t pc, const char **s, size_t *n, uint32_t *id) {
  kiln_names_t *nm = &c->names;
  size_t i = kiln_folded_slot(nm, pc);
  /* A new pc past half full: grow first (without memory, fill on: one
   * slot is always left, since the table only fills by one a call). */
  if (nm->pcs[i] == 0 && (nm->count + 1) * 2 > nm->cap && nm->count + 1 < nm->cap &&
      kiln_folded_names_grow(nm))
    i = kiln_folded_slot(nm, pc);
  if (nm->pcs[i] == 0 && nm->count + 1 >= nm->cap) {
    /* Full and cannot grow: name it, uncached. */
    *s = "[unknown]";
    *n = 9;
    *id = KILN_FOLDED_FRAME_UNKNOWN;
    return;
  }
  if (nm->pcs[i] == 0) {
    nm->pcs[i] = pc;
    nm->off[i] = nm->text.len;
    kiln_symbol_t sym;
    kiln_symbols_lookup(c->sy, pc, &sym);
    kiln_symbols_format(c->sy, &sym, &nm->text);
    nm->len[i] = nm->text.len - nm->off[i];
    nm->ids[i] = (uint32_t)(KILN_FOLDED_FIRST_ID + nm->count++);
    /* A frame left out (no name: kernel names not read) has no line, and
     * no stack lists it. */
    if (c->stacks != NULL && !nm->text.failed && nm->len[i] > 0)
      kiln_folded_frame_line(c, nm->ids[i], &sym, nm->text.data + nm->off[i], nm->len[i]);
  }
  *s = nm->text.data + nm->off[i];
  *n = nm->len[i];
  *id = nm->ids[i];
}

typedef struct kiln_folded_count {
  const kiln_count_kind_t *kinds;
  int nkinds;
  size_t pcs;
} kiln_folded_count_t;

/* The pcs of the stacks some kind will name: a fork child's table holds
 * every stack its parent made, and a names table sized for all of them
 * (several MB, touched all over by the hash) cost it more than naming. */
static void kiln_folded_count_pcs(kiln_stack_t *s, void *ctx) {
  kiln_folded_count_t *c = ctx;
  for (int k = 0; k < c->nkinds; k++)
    if (atomic_load_explicit(&s->counts[c->kinds[k]], memory_order_relaxed) != 0) {
      c->pcs += s->depth;
      return;
    }
}

static void kiln_folded_stack(kiln_stack_t *s, void *vctx) {
  kiln_folded_ctx_t *c = vctx;
  kiln_symbols_maybe_tick();
  uint64_t count = atomic_load_explicit(&s->counts[c->kind], memory_order_relaxed);
  /* Zero, or below zero for a moment while another thread was in a hook. */
  if (count == 0 || (int64_t)count < 0) return;
  const char *name;
  size_t n;
  uint32_t id;
  /* Allocation stacks end at the caller of operator new, not inside it. */
  uint32_t lo = 0;
  if (c->kind != KILN_COUNT_CPU) {
    while (lo + 1 < s->depth) {
      kiln_folded_name(c, s->pcs[lo], &name, &n, &id);
      if (!kiln_symbols_is_alloc_wrapper(name, n)) break;
      lo++;
    }
  }
  kiln_buf_t *st = c->stacks;
  if (st != NULL) kiln_folded_put_num(st, count, 10, '\t');
  size_t start = c->lines.len, ids = st ? st->len : 0;
  if (s->flags & KILN_STACK_FULL) {
    kiln_buf_puts(&c->lines, "[kiln: table full]");
    if (st) kiln_buf_puts(st, "1 ");
  }
  if (s->flags & KILN_STACK_TRUNCATED) {
    if (c->lines.len > start) kiln_buf_put(&c->lines, ";", 1);
    kiln_buf_puts(&c->lines, "[kiln: truncated]");
    if (st) kiln_buf_puts(st, "2 ");
  }
  if (s->flags & KILN_STACK_SKIPPED) {
    if (c->lines.len > start) kiln_buf_put(&c->lines, ";", 1);
    kiln_buf_puts(&c->lines, "[kiln: unwind skipped]");
    if (st) kiln_buf_puts(st, "3 ");
  }
  for (uint32_t i = s->depth; i-- > lo;) {
    kiln_folded_name(c, s->pcs[i], &name, &n, &id);
    if (n == 0) continue; /* a frame the symbolizer leaves out (kernel names not read) */
    if (c->lines.len > start) kiln_buf_put(&c->lines, ";", 1);
    kiln_buf_put(&c->lines, name, n);
    if (st) kiln_folded_put_num(st, id, 10, ' ');
  }
  if (c->lines.len == start) {
    kiln_buf_puts(&c->lines, "[unknown]");
    if (st) kiln_buf_puts(st, "4 ");
  }
  if (st != NULL && !st->failed) {
    if (st->len > ids) st->data[st->len - 1] = '\n';
    else kiln_buf_put(st, "\n", 1);
  }
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

/* The stacks file's head: its version and the module map. */
static void kiln_folded_modules(kiln_buf_t *b) {
  kiln_buf_puts(b, "kiln-stacks\t1\n");
  size_t n = kiln_modules_count();
  for (size_t i = 0; i < n; i++) {
    const kiln_module_t *m = kiln_modules_at(i);
    kiln_buf_printf(b, "module\t%zu\t%s\t%llx\t%llx\t%llx\t%llx\t", i + 1, m->build_id[0] ? m->build_id : "-",
                    (unsigned long long)m->base, (unsigned long long)m->lo, (unsigned long long)m->hi,
                    (unsigned long long)m->file_off);
    /* A path with a tab or a newline would break the line: such a file
     * gets no source lines, the profile stays readable. */
    size_t at = b->len;
    kiln_buf_puts(b, m->mem_ehdr ? m->name : m->path);
    for (size_t k = at; !b->failed && k < b->len; k++)
      if (b->data[k] == '\t' || b->data[k] == '\n' || b->data[k] == '\r') b->data[k] = '?';
    kiln_buf_put(b, "\n", 1);
  }
}

void kiln_folded_render(const kiln_count_kind_t *kinds, const char *const *kind_names, int nkinds,
                        kiln_buf_t *outs, uint64_t *totals, kiln_buf_t *stacks) {
  kiln_folded_ctx_t c;
  memset(&c, 0, sizeof c);
  kiln_folded_count_t count = {kinds, nkinds, 0};
  kiln_stacktab_foreach(kiln_folded_count_pcs, &count);
  size_t cap = 1024;
  while (cap < count.pcs * 2) cap <<= 1;
  for (int k = 0; k < nkinds; k++) totals[k] = 0;
  c.sy = kiln_symbols_open(); /* one name cache for every kind */
  if (!kiln_folded_names_alloc(&c.names, cap) || c.sy == NULL) {
    for (int k = 0; k < nkinds; k++) outs[k].failed = true;
    if (stacks) stacks->failed = true;
    kiln_mem_unmap(c.names.mem, c.names.bytes);
    kiln_symbols_close(c.sy);
    return;
  }
  kiln_buf_t kinds_text = {0};
  if (stacks != NULL) {
    kiln_folded_modules(stacks);
    kiln_buf_puts(&c.frames, "frame\t1\t0\t0\t-\t[kiln: table full]\nframe\t2\t0\t0\t-\t[kiln: truncated]\n"
                             "frame\t3\t0\t0\t-\t[kiln: unwind skipped]\nframe\t4\t0\t0\t-\t[unknown]\n");
  }

  for (int k = 0; k < nkinds; k++) {
    c.kind = kinds[k];
    c.lines.len = c.recs.len = 0;
    kiln_buf_t kind_stacks = {0}; /* after its header, which needs the total */
    if (stacks != NULL) c.stacks = &kind_stacks;
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
    if (stacks != NULL) {
      kiln_buf_printf(&kinds_text, "kind\t%s\t%llu\n", kind_names[k], (unsigned long long)totals[k]);
      kiln_buf_put(&kinds_text, kind_stacks.data ? kind_stacks.data : "", kind_stacks.len);
      if (kind_stacks.failed) kinds_text.failed = true;
      kiln_buf_free(&kind_stacks);
    }
    if (c.lines.failed || c.recs.failed || c.names.text.failed) outs[k].failed = true;
  }
  if (stacks != NULL) {
    kiln_buf_put(stacks, c.frames.data ? c.frames.data : "", c.frames.len);
    kiln_buf_put(stacks, kinds_text.data ? kinds_text.data : "", kinds_text.len);
    if (c.frames.failed || kinds_text.failed) stacks->failed = true;
  }
  kiln_symbols_close(c.sy);
  kiln_buf_free(&kinds_text);
  kiln_buf_free(&c.frames);
  kiln_buf_free(&c.raw);
  kiln_buf_free(&c.lines);
  kiln_buf_free(&c.recs);
  kiln_buf_free(&c.names.text);
  kiln_mem_unmap(c.names.mem, c.names.bytes);
}
