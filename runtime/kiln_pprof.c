/* kiln_pprof.c — the stack table as a pprof profile (profile.proto), for
 * continuous-profiling systems that ingest pprof: a CPU profile (samples,
 * cpu nanoseconds) and a heap profile (alloc_objects, alloc_space,
 * inuse_objects, inuse_space), each gzip-wrapped. The protobuf is encoded
 * by hand; the gzip container holds stored (uncompressed) deflate blocks,
 * so the runtime needs no zlib. Dump time, normal context. */
#include "kiln_internal.h"

#include <string.h>

/* ------------------------------------------------------------- protobuf */

static void kiln_pprof_varint(kiln_buf_t *b, uint64_t v) {
  char tmp[10];
  size_t n = 0;
  do {
    tmp[n++] = (char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v != 0);
  kiln_buf_put(b, tmp, n);
}

static void kiln_pprof_key(kiln_buf_t *b, unsigned field, unsigned wire) {
  kiln_pprof_varint(b, (uint64_t)field << 3 | wire);
}

static void kiln_pprof_int(kiln_buf_t *b, unsigned field, uint64_t v) {
  if (v == 0) return; /* proto3: defaults are left out */
  kiln_pprof_key(b, field, 0);
  kiln_pprof_varint(b, v);
}

static void kiln_pprof_bytes(kiln_buf_t *b, unsigned field, const char *data, size_t n) {
  kiln_pprof_key(b, field, 2);
  kiln_pprof_varint(b, n);
  kiln_buf_put(b, data, n);
}

/* Appends a sub-message held in sub, then empties sub for reuse. */
static void kiln_pprof_msg(kiln_buf_t *b, unsigned field, kiln_buf_t *sub) {
  kiln_pprof_bytes(b, field, sub->data ? sub->data : "", sub->len);
  sub->len = 0;
}

/* ------------------------------------------------------- string table */

/* Strings (function names) interned by content: open addressing over
 * offsets into one buffer. */
typedef struct kiln_pprof_strings {
  kiln_buf_t text;  /* each string NUL-terminated */
  uint64_t *offs;   /* offset + 1, 0 = empty slot */
  uint64_t *ids;
  size_t cap, n;
  kiln_buf_t table; /* the encoded string_table fields, in id order */
} kiln_pprof_strings_t;

static uint64_t kiln_pprof_hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

static bool kiln_pprof_strings_grow(kiln_pprof_strings_t *st) {
  size_t cap = st->cap ? st->cap * 2 : 1024;
  uint64_t *offs = kiln_mem_map(cap * 8), *ids = kiln_mem_map(cap * 8);
  if (offs == NULL || ids == NULL) {
    kiln_mem_unmap(offs, cap * 8);
    kiln_mem_unmap(ids, cap * 8);
    return false;
  }
  for (size_t i = 0; i < st->cap; i++) {
    if (st->offs[i] == 0) continue;
    const char *s = st->text.data + st->offs[i] - 1;
    size_t j = (size_t)kiln_pprof_hash(s, strlen(s)) & (cap - 1);
    while (offs[j] != 0) j = (j + 1) & (cap - 1);
    offs[j] = st->offs[i];
    ids[j] = st->ids[i];
  }
  kiln_mem_unmap(st->offs, st->cap * 8);
  kiln_mem_unmap(st->ids, st->cap * 8);
  st->offs = offs;
  st->ids = ids;
  st->cap = cap;
  return true;
}

/* The string's index in the table (0 on failure: the empty string). */
static uint64_t kiln_pprof_string(kiln_pprof_strings_t *st, const char *s, size_t n) {
  if ((st->n + 1) * 2 > st->cap && !kiln_pprof_strings_grow(st)) return 0;
  size_t j = (size_t)kiln_pprof_hash(s, n) & (st->cap - 1);
  for (; st->offs[j] != 0; j = (j + 1) & (st->cap - 1)) {
    const char *t = st->text.data + st->offs[j] - 1;
    if (strncmp(t, s, n) == 0 && t[n] == '\0') return st->ids[j];
  }
  st->offs[j] = st->text.len + 1;
  kiln_buf_put(&st->text, s, n);
  kiln_buf_put(&st->text, "", 1);
  st->ids[j] = st->n++;
  kiln_pprof_bytes(&st->table, 6, s, n);
  return st->ids[j];
}

/* ----------------------------------------------------------- locations */

/* One location per distinct pc (its address and mapping, so that pprof's
 * -addresses and -lines have something to show) and one function per
 * distinct name, with the stored (mangled) symbol as system_name: pprof
 * keeps a name that differs from its system_name as it is, where it would
 * strip the template arguments of an already demangled one and merge
 * geo::Grid<double>::relax with geo::Grid<float>::relax. The marker
 * frames get pseudo pcs below 16. */
typedef struct kiln_pprof_ctx {
  const kiln_count_kind_t *kinds;
  const uint64_t *scale;
  int nkinds;
  bool alloc; /* cut operator new frames, as the folded files do */
  kiln_symbols_t *sy;
  kiln_pprof_strings_t strings;
  uint64_t *pcs, *loc_ids; /* pc -> location id, open addressing */
  uint8_t *wrapper;        /* per slot: the frame is inside operator new */
  size_t cap, nlocs, nfuncs;
  kiln_buf_t func_of_name; /* uint64_t per string id: its function id, 0 = none */
  kiln_buf_t locations, functions, samples, sub, sub2, name, raw;
  kiln_buf_t sample, packed; /* a sample being built (locations use sub, sub2) */
  bool failed;
} kiln_pprof_ctx_t;

/* Locations of the flag frames (kiln_types.h's flag pcs). */
enum {
  KILN_PPROF_TRUNCATED = KILN_PC_FLAG_TRUNCATED,
  KILN_PPROF_SKIPPED = KILN_PC_FLAG_SKIPPED,
  KILN_PPROF_FULL = KILN_PC_FLAG_FULL
};

static uint64_t kiln_pprof_function(kiln_pprof_ctx_t *c, uint64_t name, uint64_t system_name) {
  size_t have = c->func_of_name.len / sizeof(uint64_t);
  if (name >= have) {
    uint64_t *more = kiln_buf_reserve(&c->func_of_name, (size_t)(name + 1 - have) * sizeof(uint64_t));
    if (more == NULL) return 0;
    memset(more, 0, (size_t)(name + 1 - have) * sizeof(uint64_t));
  }
  uint64_t *ids = (uint64_t *)c->func_of_name.data;
  if (ids[name] != 0) return ids[name];
  uint64_t id = ids[name] = ++c->nfuncs;
  kiln_pprof_int(&c->sub, 1, id);
  kiln_pprof_int(&c->sub, 2, name);
  kiln_pprof_int(&c->sub, 3, system_name);
  kiln_pprof_msg(&c->functions, 5, &c->sub);
  return id;
}

static size_t kiln_pprof_slot(const uint64_t *pcs, size_t cap, uint64_t pc) {
  size_t j = (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
  while (pcs[j] != 0 && pcs[j] != pc) j = (j + 1) & (cap - 1);
  return j;
}

/* Doubles the pc table (stacks interned while the profile is written can
 * pass the bound it was sized from); false when memory is short. */
static bool kiln_pprof_grow(kiln_pprof_ctx_t *c) {
  size_t cap = c->cap * 2;
  uint64_t *pcs = kiln_mem_map(cap * 8), *ids = kiln_mem_map(cap * 8);
  uint8_t *wrapper = kiln_mem_map(cap);
  if (pcs == NULL || ids == NULL || wrapper == NULL) {
    kiln_mem_unmap(pcs, cap * 8);
    kiln_mem_unmap(ids, cap * 8);
    kiln_mem_unmap(wrapper, cap);
    return false;
  }
  for (size_t i = 0; i < c->cap; i++) {
    if (c->pcs[i] == 0) continue;
    size_t j = kiln_pprof_slot(pcs, cap, c->pcs[i]);
    pcs[j] = c->pcs[i];
    ids[j] = c->loc_ids[i];
    wrapper[j] = c->wrapper[i];
  }
  kiln_mem_unmap(c->pcs, c->cap * 8);
  kiln_mem_unmap(c->loc_ids, c->cap * 8);
  kiln_mem_unmap(c->wrapper, c->cap);
  c->pcs = pcs;
  c->loc_ids = ids;
  c->wrapper = wrapper;
  c->cap = cap;
  return true;
}

/* The location of pc (interned); *wrapper: it is inside operator new. */
static uint64_t kiln_pprof_location(kiln_pprof_ctx_t *c, uint64_t pc, bool *wrapper) {
  size_t j = kiln_pprof_slot(c->pcs, c->cap, pc);
  /* At most half full, so the probe above always ends on a free slot. */
  if (c->pcs[j] == 0 && (c->nlocs + 1) * 2 > c->cap) {
    if (!kiln_pprof_grow(c)) {
      c->failed = true;
      return 0;
    }
    j = kiln_pprof_slot(c->pcs, c->cap, pc);
  }
  if (c->pcs[j] == pc) {
    if (wrapper) *wrapper = c->wrapper[j] != 0;
    return c->loc_ids[j];
  }
  c->pcs[j] = pc;
  uint64_t id = c->loc_ids[j] = ++c->nlocs;
  c->name.len = c->raw.len = 0;
  kiln_symbol_t sym = {KILN_SYM_NONE, NULL, 0, 0, NULL};
  if (pc == KILN_PPROF_TRUNCATED) kiln_buf_puts(&c->name, "[kiln: truncated]");
  else if (pc == KILN_PPROF_SKIPPED) kiln_buf_puts(&c->name, "[kiln: unwind skipped]");
  else if (pc == KILN_PPROF_FULL) kiln_buf_puts(&c->name, "[kiln: table full]");
  else {
    kiln_symbols_lookup(c->sy, pc, &sym);
    kiln_symbols_format(c->sy, &sym, &c->name);
    kiln_symbols_raw(&sym, &c->raw);
  }
  c->wrapper[j] = kiln_symbols_is_alloc_wrapper(c->name.data, c->name.len);
  if (wrapper) *wrapper = c->wrapper[j] != 0;
  uint64_t name = kiln_pprof_string(&c->strings, c->name.data ? c->name.data : "", c->name.len);
  uint64_t system_name = c->raw.len ? kiln_pprof_string(&c->strings, c->raw.data, c->raw.len) : name;
  uint64_t fn = kiln_pprof_function(c, name, system_name);
  kiln_pprof_int(&c->sub2, 1, fn); /* Line.function_id */
  kiln_pprof_int(&c->sub, 1, id);
  if (sym.module != NULL) kiln_pprof_int(&c->sub, 2, kiln_modules_index(sym.module) + 1);
  kiln_pprof_int(&c->sub, 3, pc > 16 ? pc - 1 : 0);
  kiln_pprof_msg(&c->sub, 4, &c->sub2);
  kiln_pprof_msg(&c->locations, 4, &c->sub);
  return id;
}

static void kiln_pprof_stack(kiln_stack_t *s, void *vctx) {
  kiln_pprof_ctx_t *c = vctx;
  kiln_symbols_maybe_tick();
  bool any = false;
  for (int k = 0; k < c->nkinds; k++) {
    uint64_t v = atomic_load_explicit(&s->counts[c->kinds[k]], memory_order_relaxed);
    if (v != 0 && (int64_t)v > 0) any = true;
  }
  if (!any || c->failed) return;
  uint32_t lo = 0;
  bool wrapper = false;
  if (c->alloc)
    while (lo + 1 < s->depth && (kiln_pprof_location(c, s->pcs[lo], &wrapper), wrapper)) lo++;
  /* Sample.location_id, packed, leaf first; markers at the root end. */
  for (uint32_t i = lo; i < s->depth; i++) kiln_pprof_varint(&c->packed, kiln_pprof_location(c, s->pcs[i], NULL));
  if (s->flags & KILN_STACK_TRUNCATED) kiln_pprof_varint(&c->packed, kiln_pprof_location(c, KILN_PPROF_TRUNCATED, NULL));
  if (s->flags & KILN_STACK_SKIPPED) kiln_pprof_varint(&c->packed, kiln_pprof_location(c, KILN_PPROF_SKIPPED, NULL));
  if (s->flags & KILN_STACK_FULL) kiln_pprof_varint(&c->packed, kiln_pprof_location(c, KILN_PPROF_FULL, NULL));
  kiln_pprof_msg(&c->sample, 1, &c->packed);
  for (int k = 0; k < c->nkinds; k++) {
    uint64_t v = atomic_load_explicit(&s->counts[c->kinds[k]], memory_order_relaxed);
    kiln_pprof_varint(&c->packed, (int64_t)v > 0 ? v * (c->scale ? c->scale[k] : 1) : 0);
  }
  kiln_pprof_msg(&c->sample, 2, &c->packed);
  kiln_pprof_msg(&c->samples, 2, &c->sample);
}

static void kiln_pprof_count_pcs(kiln_stack_t *s, void *ctx) {
  *(size_t *)ctx += s->depth;
}

/* Profile.mapping: every module, the program first (pprof takes the first
 * mapping for the main binary). has_functions: the names are kiln's, so
 * pprof does not symbolize again (and agrees with kiln top). */
static void kiln_pprof_mappings(kiln_pprof_ctx_t *c, kiln_buf_t *profile) {
  size_t n = kiln_modules_count();
  for (size_t i = 0; i < n; i++) {
    const kiln_module_t *m = kiln_modules_at(i);
    const char *file = m->mem_ehdr ? m->name : m->path;
    kiln_pprof_int(&c->sub, 1, i + 1);
    kiln_pprof_int(&c->sub, 2, m->lo);
    kiln_pprof_int(&c->sub, 3, m->hi);
    kiln_pprof_int(&c->sub, 4, m->file_off);
    kiln_pprof_int(&c->sub, 5, kiln_pprof_string(&c->strings, file, strlen(file)));
    kiln_pprof_int(&c->sub, 6, kiln_pprof_string(&c->strings, m->build_id, strlen(m->build_id)));
    kiln_pprof_int(&c->sub, 7, 1); /* has_functions */
    kiln_pprof_msg(profile, 3, &c->sub);
  }
}

/* ---------------------------------------------------------------- gzip */

static uint32_t kiln_pprof_crc32(const char *p, size_t n) {
  static uint32_t table[256];
  if (table[1] == 0)
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < n; i++) crc = table[(crc ^ (unsigned char)p[i]) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

/* A gzip member around stored deflate blocks: valid, if not small. */
static void kiln_pprof_gzip(const kiln_buf_t *raw, kiln_buf_t *out) {
  static const char header[10] = {0x1f, (char)0x8b, 8, 0, 0, 0, 0, 0, 0, (char)0xff};
  kiln_buf_put(out, header, sizeof header);
  size_t off = 0;
  do {
    size_t n = raw->len - off > 65535 ? 65535 : raw->len - off;
    char block[5] = {(char)(off + n == raw->len ? 1 : 0), (char)(n & 0xff), (char)(n >> 8),
                     (char)(~n & 0xff), (char)((~n >> 8) & 0xff)};
    kiln_buf_put(out, block, 5);
    if (n) kiln_buf_put(out, raw->data + off, n);
    off += n;
  } while (off < raw->len);
  uint32_t crc = kiln_pprof_crc32(raw->data ? raw->data : "", raw->len), size = (uint32_t)raw->len;
  char tail[8] = {(char)crc, (char)(crc >> 8), (char)(crc >> 16), (char)(crc >> 24),
                  (char)size, (char)(size >> 8), (char)(size >> 16), (char)(size >> 24)};
  kiln_buf_put(out, tail, 8);
}

/* ------------------------------------------------------------- profiles */

void kiln_pprof_render(const kiln_pprof_spec_t *spec, kiln_buf_t *out) {
  kiln_pprof_ctx_t c;
  memset(&c, 0, sizeof c);
  c.kinds = spec->kinds;
  c.scale = spec->scale;
  c.nkinds = spec->nkinds;
  c.alloc = spec->alloc;
  /* Distinct pcs are at most the pcs of all stacks (plus the markers): a
   * table twice that size never fills. */
  size_t npcs = 0;
  kiln_stacktab_foreach(kiln_pprof_count_pcs, &npcs);
  npcs += 4;
  c.cap = 1024;
  while (c.cap < npcs * 2) c.cap <<= 1;
  c.pcs = kiln_mem_map(c.cap * 8);
  c.loc_ids = kiln_mem_map(c.cap * 8);
  c.wrapper = kiln_mem_map(c.cap);
  c.sy = kiln_symbols_open();
  if (c.pcs == NULL || c.loc_ids == NULL || c.wrapper == NULL || c.sy == NULL) {
    out->failed = true;
    goto done;
  }
  kiln_pprof_string(&c.strings, "", 0);
  kiln_buf_t profile = {0};
  for (int k = 0; k < spec->nkinds; k++) { /* sample_type */
    kiln_pprof_int(&c.sub, 1, kiln_pprof_string(&c.strings, spec->types[k], strlen(spec->types[k])));
    kiln_pprof_int(&c.sub, 2, kiln_pprof_string(&c.strings, spec->units[k], strlen(spec->units[k])));
    kiln_pprof_msg(&profile, 1, &c.sub);
  }
  kiln_stacktab_foreach(kiln_pprof_stack, &c);
  kiln_buf_put(&profile, c.samples.data ? c.samples.data : "", c.samples.len);
  kiln_pprof_mappings(&c, &profile);
  kiln_buf_put(&profile, c.locations.data ? c.locations.data : "", c.locations.len);
  kiln_buf_put(&profile, c.functions.data ? c.functions.data : "", c.functions.len);
  uint64_t ptype = kiln_pprof_string(&c.strings, spec->period_type, strlen(spec->period_type));
  uint64_t punit = kiln_pprof_string(&c.strings, spec->period_unit, strlen(spec->period_unit));
  kiln_buf_put(&profile, c.strings.table.data, c.strings.table.len);
  kiln_pprof_int(&profile, 9, spec->time_nanos);
  kiln_pprof_int(&profile, 10, spec->duration_nanos);
  kiln_pprof_int(&c.sub, 1, ptype);
  kiln_pprof_int(&c.sub, 2, punit);
  kiln_pprof_msg(&profile, 11, &c.sub);
  kiln_pprof_int(&profile, 12, spec->period);
  if (c.failed || profile.failed || c.samples.failed || c.locations.failed || c.functions.failed || c.strings.table.failed)
    out->failed = true;
  else
    kiln_pprof_gzip(&profile, out);
  kiln_buf_free(&profile);
done:
  kiln_mem_unmap(c.pcs, c.cap * 8);
  kiln_mem_unmap(c.loc_ids, c.cap * 8);
  kiln_mem_unmap(c.wrapper, c.cap);
  kiln_symbols_close(c.sy);
  kiln_buf_free(&c.func_of_name);
  kiln_buf_free(&c.raw);
  kiln_mem_unmap(c.strings.offs, c.strings.cap * 8);
  kiln_mem_unmap(c.strings.ids, c.strings.cap * 8);
  kiln_buf_free(&c.strings.text);
  kiln_buf_free(&c.strings.table);
  kiln_buf_free(&c.locations);
  kiln_buf_free(&c.functions);
  kiln_buf_free(&c.samples);
  kiln_buf_free(&c.sub);
  kiln_buf_free(&c.sub2);
  kiln_buf_free(&c.sample);
  kiln_buf_free(&c.packed);
  kiln_buf_free(&c.name);
}
