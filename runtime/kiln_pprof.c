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

/* One location and one function per distinct pc (pprof merges functions
 * by name). The marker frames get pseudo pcs below 16. */
typedef struct kiln_pprof_ctx {
  const kiln_count_kind_t *kinds;
  const uint64_t *scale;
  int nkinds;
  bool alloc; /* cut operator new frames, as the folded files do */
  kiln_pprof_strings_t strings;
  uint64_t *pcs, *loc_ids; /* pc -> location id, open addressing */
  size_t cap, nlocs;
  kiln_buf_t locations, functions, samples, sub, sub2, name;
  kiln_buf_t sample, packed; /* a sample being built (locations use sub, sub2) */
  bool failed;
} kiln_pprof_ctx_t;

enum { KILN_PPROF_TRUNCATED = 1, KILN_PPROF_SKIPPED = 2, KILN_PPROF_FULL = 3 };

static uint64_t kiln_pprof_location(kiln_pprof_ctx_t *c, uint64_t pc) {
  size_t j = (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 20) & (c->cap - 1);
  while (c->pcs[j] != 0 && c->pcs[j] != pc) j = (j + 1) & (c->cap - 1);
  if (c->pcs[j] == pc) return c->loc_ids[j];
  c->pcs[j] = pc;
  uint64_t id = c->loc_ids[j] = ++c->nlocs;
  c->name.len = 0;
  if (pc == KILN_PPROF_TRUNCATED) kiln_buf_puts(&c->name, "[kiln: truncated]");
  else if (pc == KILN_PPROF_SKIPPED) kiln_buf_puts(&c->name, "[kiln: unwind skipped]");
  else if (pc == KILN_PPROF_FULL) kiln_buf_puts(&c->name, "[kiln: table full]");
  else kiln_symbols_name(pc, &c->name);
  uint64_t name = kiln_pprof_string(&c->strings, c->name.data ? c->name.data : "", c->name.len);
  /* Function id = location id: one function per location. */
  kiln_pprof_int(&c->sub, 1, id);
  kiln_pprof_int(&c->sub, 2, name);
  kiln_pprof_int(&c->sub, 3, name);
  kiln_pprof_msg(&c->functions, 5, &c->sub);
  kiln_pprof_int(&c->sub2, 1, id); /* Line.function_id */
  kiln_pprof_int(&c->sub, 1, id);
  kiln_pprof_int(&c->sub, 3, pc > 16 ? pc - 1 : 0);
  kiln_pprof_msg(&c->sub, 4, &c->sub2);
  kiln_pprof_msg(&c->locations, 4, &c->sub);
  return id;
}

static bool kiln_pprof_is_new(kiln_pprof_ctx_t *c, uint64_t pc) {
  c->name.len = 0;
  kiln_symbols_name(pc, &c->name);
  return kiln_symbols_is_alloc_wrapper(c->name.data, c->name.len);
}

static void kiln_pprof_stack(kiln_stack_t *s, void *vctx) {
  kiln_pprof_ctx_t *c = vctx;
  bool any = false;
  for (int k = 0; k < c->nkinds; k++) {
    uint64_t v = atomic_load_explicit(&s->counts[c->kinds[k]], memory_order_relaxed);
    if (v != 0 && (int64_t)v > 0) any = true;
  }
  if (!any) return;
  uint32_t lo = 0;
  if (c->alloc)
    while (lo + 1 < s->depth && kiln_pprof_is_new(c, s->pcs[lo])) lo++;
  /* Sample.location_id, packed, leaf first; markers at the root end. */
  for (uint32_t i = lo; i < s->depth; i++) kiln_pprof_varint(&c->packed, kiln_pprof_location(c, s->pcs[i]));
  if (s->flags & KILN_STACK_TRUNCATED) kiln_pprof_varint(&c->packed, kiln_pprof_location(c, KILN_PPROF_TRUNCATED));
  if (s->flags & KILN_STACK_SKIPPED) kiln_pprof_varint(&c->packed, kiln_pprof_location(c, KILN_PPROF_SKIPPED));
  if (s->flags & KILN_STACK_FULL) kiln_pprof_varint(&c->packed, kiln_pprof_location(c, KILN_PPROF_FULL));
  kiln_pprof_msg(&c->sample, 1, &c->packed);
  for (int k = 0; k < c->nkinds; k++) {
    uint64_t v = atomic_load_explicit(&s->counts[c->kinds[k]], memory_order_relaxed);
    kiln_pprof_varint(&c->packed, (int64_t)v > 0 ? v * (c->scale ? c->scale[k] : 1) : 0);
  }
  kiln_pprof_msg(&c->sample, 2, &c->packed);
  kiln_pprof_msg(&c->samples, 2, &c->sample);
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
  size_t npcs = 0;
  kiln_stacktab_stats_t st;
  kiln_stacktab_stats(&st);
  npcs = st.stacks * 8 + 64;
  c.cap = 1024;
  while (c.cap < npcs) c.cap <<= 1;
  c.pcs = kiln_mem_map(c.cap * 8);
  c.loc_ids = kiln_mem_map(c.cap * 8);
  if (c.pcs == NULL || c.loc_ids == NULL) {
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
  kiln_symbols_begin();
  kiln_stacktab_foreach(kiln_pprof_stack, &c);
  kiln_symbols_end();
  kiln_buf_put(&profile, c.samples.data ? c.samples.data : "", c.samples.len);
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
  if (profile.failed || c.samples.failed || c.locations.failed || c.functions.failed || c.strings.table.failed)
    out->failed = true;
  else
    kiln_pprof_gzip(&profile, out);
  kiln_buf_free(&profile);
done:
  kiln_mem_unmap(c.pcs, c.cap * 8);
  kiln_mem_unmap(c.loc_ids, c.cap * 8);
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
