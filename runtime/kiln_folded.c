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

/* A stack's line, named once for every kind of a render (the kinds that
 * share its trimming): the line's text, and its frame ids for the stacks
 * file, without the count. */
typedef struct kiln_line {
  size_t off, len;         /* in the set's lines buffer */
  size_t ids_off, ids_len; /* in its ids buffer: "ID ID ... " */
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

/* The lines of the kinds that name a stack alike: CPU samples keep their
 * frames whole, every other kind ends at the caller of the allocator. */
typedef struct kiln_folded_set {
  const kiln_count_kind_t *kinds[KILN_COUNT_KINDS];
  int nkinds, which[KILN_COUNT_KINDS]; /* the caller's index of each */
  bool trim;                          /* allocation wrappers left out */
  kiln_buf_t lines, ids;
  kiln_buf_t recs;   /* kiln_line_t, in the stack table's order */
  kiln_buf_t counts; /* uint64_t[nkinds] a record */
  uint32_t *order;   /* records sorted by line */
  size_t n, order_bytes;
} kiln_folded_set_t;

typedef struct kiln_folded_ctx {
  kiln_symbols_t *sy;
  kiln_names_t names;
  kiln_folded_set_t *set;
  bool stacks;       /* the stacks file is written */
  kiln_buf_t frames; /* its frame lines, written as frames are named */
  kiln_buf_t raw;
} kiln_folded_ctx_t;

enum { KILN_FOLDED_FRAME_FULL = 1, KILN_FOLDED_FRAME_TRUNCATED, KILN_FOLDED_FRAME_SKIPPED,
       KILN_FOLDED_FRAME_UNKNOWN, KILN_FOLDED_FIRST_ID };

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
    if (c->stacks && !nm->text.failed && nm->len[i] > 0)
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
  kiln_folded_set_t *set = c->set;
  kiln_symbols_maybe_tick();
  /* Zero, or below zero for a moment while another thread was in a hook:
   * not in that kind's file. A stack in none of the set's is not named. */
  uint64_t counts[KILN_COUNT_KINDS];
  bool any = false;
  for (int k = 0; k < set->nkinds; k++) {
    uint64_t v = atomic_load_explicit(&s->counts[*set->kinds[k]], memory_order_relaxed);
    counts[k] = (int64_t)v > 0 ? v : 0;
    any |= counts[k] != 0;
  }
  if (!any) return;
  const char *name;
  size_t n;
  uint32_t id;
  /* Allocation stacks end at the caller of operator new, not inside it. */
  uint32_t lo = 0;
  if (set->trim) {
    while (lo + 1 < s->depth) {
      kiln_folded_name(c, s->pcs[lo], &name, &n, &id);
      if (!kiln_symbols_is_alloc_wrapper(name, n)) break;
      lo++;
    }
  }
  kiln_buf_t *lines = &set->lines, *st = c->stacks ? &set->ids : NULL;
  size_t start = lines->len, ids = set->ids.len;
  if (s->flags & KILN_STACK_FULL) {
    kiln_buf_puts(lines, "[kiln: table full]");
    if (st) kiln_buf_puts(st, "1 ");
  }
  if (s->flags & KILN_STACK_TRUNCATED) {
    if (lines->len > start) kiln_buf_put(lines, ";", 1);
    kiln_buf_puts(lines, "[kiln: truncated]");
    if (st) kiln_buf_puts(st, "2 ");
  }
  if (s->flags & KILN_STACK_SKIPPED) {
    if (lines->len > start) kiln_buf_put(lines, ";", 1);
    kiln_buf_puts(lines, "[kiln: unwind skipped]");
    if (st) kiln_buf_puts(st, "3 ");
  }
  for (uint32_t i = s->depth; i-- > lo;) {
    kiln_folded_name(c, s->pcs[i], &name, &n, &id);
    if (n == 0) continue; /* a frame the symbolizer leaves out (kernel names not read) */
    if (lines->len > start) kiln_buf_put(lines, ";", 1);
    kiln_buf_put(lines, name, n);
    if (st) kiln_folded_put_num(st, id, 10, ' ');
  }
  if (lines->len == start) {
    kiln_buf_puts(lines, "[unknown]");
    if (st) kiln_buf_puts(st, "4 ");
  }
  /* A record and its counts, or neither (the two arrays stay in step). */
  uint64_t *cs = kiln_buf_reserve(&set->counts, (size_t)set->nkinds * sizeof *cs);
  if (cs == NULL) return;
  kiln_line_t *rec = kiln_buf_reserve(&set->recs, sizeof *rec);
  if (rec == NULL) {
    set->counts.len -= (size_t)set->nkinds * sizeof *cs;
    return;
  }
  rec->off = start;
  rec->len = lines->len - start;
  rec->ids_off = ids;
  rec->ids_len = set->ids.len - ids;
  memcpy(cs, counts, (size_t)set->nkinds * sizeof *cs);
  set->n++;
}

static int kiln_folded_cmp(const kiln_folded_set_t *set, uint32_t a, uint32_t b) {
  const kiln_line_t *recs = (const kiln_line_t *)set->recs.data, *x = &recs[a], *y = &recs[b];
  size_t n = x->len < y->len ? x->len : y->len;
  int r = memcmp(set->lines.data + x->off, set->lines.data + y->off, n);
  if (r != 0) return r;
  return x->len < y->len ? -1 : x->len > y->len;
}

/* The records in line order: a bottom-up merge sort (lines of one program
 * share long prefixes, and a merge compares about half as often as the
 * heapsort kiln_sort is). False when memory is short. */
static bool kiln_folded_sort(kiln_folded_set_t *set) {
  size_t n = set->n;
  set->order_bytes = 2 * (n ? n : 1) * sizeof(uint32_t);
  set->order = kiln_mem_map(set->order_bytes);
  if (set->order == NULL) return false;
  uint32_t *a = set->order, *b = set->order + n;
  for (size_t i = 0; i < n; i++) a[i] = (uint32_t)i;
  for (size_t w = 1; w < n; w *= 2) {
    for (size_t lo = 0; lo < n; lo += 2 * w) {
      size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, i = lo, j = mid, k = lo;
      while (i < mid && j < hi) b[k++] = kiln_folded_cmp(set, a[j], a[i]) < 0 ? a[j++] : a[i++];
      while (i < mid) b[k++] = a[i++];
      while (j < hi) b[k++] = a[j++];
    }
    uint32_t *t = a;
    a = b;
    b = t;
  }
  if (a != set->order) memcpy(set->order, a, n * sizeof *a);
  return true;
}

static void kiln_folded_set_free(kiln_folded_set_t *set) {
  kiln_buf_free(&set->lines);
  kiln_buf_free(&set->ids);
  kiln_buf_free(&set->recs);
  kiln_buf_free(&set->counts);
  if (set->order != NULL) kiln_mem_unmap(set->order, set->order_bytes);
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

  /* Each stack named once for all the kinds of its set, the lines sorted
   * once; then each kind's file from them. */
  kiln_folded_set_t sets[2];
  memset(sets, 0, sizeof sets);
  for (int k = 0; k < nkinds && k < KILN_COUNT_KINDS; k++) {
    kiln_folded_set_t *set = &sets[kinds[k] != KILN_COUNT_CPU];
    set->trim = kinds[k] != KILN_COUNT_CPU;
    set->which[set->nkinds] = k;
    set->kinds[set->nkinds++] = &kinds[k];
  }
  c.stacks = stacks != NULL;
  bool sorted[2] = {false, false};
  for (int i = 0; i < 2; i++) {
    if (sets[i].nkinds == 0) continue;
    c.set = &sets[i];
    kiln_stacktab_foreach(kiln_folded_stack, &c);
    sorted[i] = !sets[i].recs.failed && !sets[i].counts.failed && !sets[i].lines.failed && kiln_folded_sort(&sets[i]);
  }
  for (int k = 0; k < nkinds && k < KILN_COUNT_KINDS; k++) {
    kiln_folded_set_t *set = &sets[kinds[k] != KILN_COUNT_CPU];
    int j = 0;
    while (set->which[j] != k) j++;
    const kiln_line_t *recs = (const kiln_line_t *)set->recs.data;
    const uint64_t *counts = (const uint64_t *)set->counts.data;
    size_t nk = (size_t)set->nkinds;
    const uint32_t *order = set->order;
    for (size_t i = 0; sorted[set->trim] && i < set->n;) {
      uint64_t count = counts[order[i] * nk + j];
      size_t e = i + 1;
      while (e < set->n && kiln_folded_cmp(set, order[i], order[e]) == 0) count += counts[order[e++] * nk + j];
      if (count != 0) {
        kiln_buf_put(&outs[k], set->lines.data + recs[order[i]].off, recs[order[i]].len);
        kiln_buf_printf(&outs[k], " %llu\n", (unsigned long long)count);
        totals[k] += count;
      }
      i = e;
    }
    if (stacks != NULL) {
      kiln_buf_printf(&kinds_text, "kind\t%s\t%llu\n", kind_names[k], (unsigned long long)totals[k]);
      for (size_t r = 0; sorted[set->trim] && r < set->n; r++) { /* the stack table's order */
        uint64_t count = counts[r * nk + j];
        if (count == 0) continue;
        kiln_folded_put_num(&kinds_text, count, 10, '\t');
        if (recs[r].ids_len > 0) {
          kiln_buf_put(&kinds_text, set->ids.data + recs[r].ids_off, recs[r].ids_len - 1);
          kiln_buf_put(&kinds_text, "\n", 1);
        } else {
          kiln_buf_put(&kinds_text, "\n", 1);
        }
      }
      if (set->ids.failed || !sorted[set->trim]) kinds_text.failed = true;
    }
    if (!sorted[set->trim] || set->lines.failed || set->recs.failed || set->counts.failed || c.names.text.failed)
      outs[k].failed = true;
  }
  for (int i = 0; i < 2; i++) kiln_folded_set_free(&sets[i]);
  if (stacks != NULL) {
    kiln_buf_put(stacks, c.frames.data ? c.frames.data : "", c.frames.len);
    kiln_buf_put(stacks, kinds_text.data ? kinds_text.data : "", kinds_text.len);
    if (c.frames.failed || kinds_text.failed) stacks->failed = true;
  }
  kiln_symbols_close(c.sy);
  kiln_buf_free(&kinds_text);
  kiln_buf_free(&c.frames);
  kiln_buf_free(&c.raw);
  kiln_buf_free(&c.names.text);
  kiln_mem_unmap(c.names.mem, c.names.bytes);
}
