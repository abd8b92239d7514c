/* pprof.c — writes a profile as pprof's profile.proto, gzip-compressed with
 * zlib. The protobuf encoding is done by hand (varints, length-delimited
 * fields): the message is small and fixed, and a protobuf library would be
 * a build dependency for four field types. Each top-level field is encoded
 * into a small buffer and streamed through deflate, so memory stays bounded
 * by the largest single sample, not the output. */
#include "kiln.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* profile.proto field numbers (Profile, ValueType, Sample, Location, Line,
 * Function). */
enum {
    KILN_PB_SAMPLE_TYPE = 1, KILN_PB_SAMPLE = 2, KILN_PB_MAPPING = 3, KILN_PB_LOCATION = 4,
    KILN_PB_FUNCTION = 5, KILN_PB_STRING_TABLE = 6, KILN_PB_PERIOD_TYPE = 11,
    KILN_PB_PERIOD = 12, KILN_PB_COMMENT = 13, KILN_PB_DEFAULT_SAMPLE_TYPE = 14,
};

typedef struct kiln_pprof_s {
    FILE *out;
    z_stream zs;
    unsigned char zbuf[1 << 16];
    int failed;
} kiln_pprof_t;

static void kiln_pprof_varint(kiln_buf_t *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    kiln_buf_add(b, tmp, n);
}

static void kiln_pprof_key(kiln_buf_t *b, unsigned field, unsigned wire)
{
    kiln_pprof_varint(b, (uint64_t)field << 3 | wire);
}

static void kiln_pprof_uint(kiln_buf_t *b, unsigned field, uint64_t v)
{
    kiln_pprof_key(b, field, 0);
    kiln_pprof_varint(b, v);
}

static void kiln_pprof_bytes(kiln_buf_t *b, unsigned field, const void *p, size_t n)
{
    kiln_pprof_key(b, field, 2);
    kiln_pprof_varint(b, n);
    kiln_buf_add(b, p, n);
}

/* Compresses B and empties it. */
static void kiln_pprof_emit(kiln_pprof_t *w, kiln_buf_t *b, int flush)
{
    w->zs.next_in = (unsigned char *)b->data;
    w->zs.avail_in = (uInt)b->len;
    do {
        w->zs.next_out = w->zbuf;
        w->zs.avail_out = sizeof w->zbuf;
        int zrc = deflate(&w->zs, flush);
        if (zrc == Z_STREAM_ERROR) {
            w->failed = 1;
            break;
        }
        size_t have = sizeof w->zbuf - w->zs.avail_out;
        if (have && fwrite(w->zbuf, 1, have, w->out) != have)
            w->failed = 1;
    } while (w->zs.avail_out == 0 || w->zs.avail_in > 0);
    b->len = 0;
}

static void kiln_pprof_value_type(kiln_buf_t *b, unsigned field, uint64_t type, uint64_t unit)
{
    kiln_buf_t vt = {0};
    kiln_pprof_uint(&vt, 1, type);
    kiln_pprof_uint(&vt, 2, unit);
    kiln_pprof_bytes(b, field, vt.data, vt.len);
    kiln_buf_free(&vt);
}

/* The sample type and unit of a kind, as Go's profiles name them. */
static void kiln_pprof_type(const char *kind, const char **type, const char **unit)
{
    static const char *const types[][3] = {
        {"cpu", "samples", "count"},          {"alloc_bytes", "alloc_space", "bytes"},
        {"alloc_count", "alloc_objects", "count"},
        {"live_bytes", "inuse_space", "bytes"},
        {"live_count", "inuse_objects", "count"},  {"leak_bytes", "leak_space", "bytes"},
        {"leak_count", "leak_objects", "count"},   {"peak_bytes", "peak_space", "bytes"},
        {"wall", "samples", "count"},
        /* Go's mutex and block profiles' names. */
        {"lock_wait_ns", "delay", "nanoseconds"},  {"lock_wait_count", "contentions", "count"},
    };
    *type = "samples";
    *unit = "count";
    size_t n = kind ? strlen(kind) : 0;
    if (n > 6 && strcmp(kind + n - 6, "_bytes") == 0) { /* definite_bytes: definite_space */
        *type = "space";
        *unit = "bytes";
    } else if (n > 6 && strcmp(kind + n - 6, "_count") == 0) {
        *type = "objects";
    }
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (kind && strcmp(kind, types[i][0]) == 0) {
            *type = types[i][1];
            *unit = types[i][2];
        }
    }
}

static int kiln_pprof_write_stacks(FILE *out, const kiln_profile_t *p, const char *kind,
                                   double period_ns);

int kiln_pprof_write(FILE *out, const kiln_profile_t *p, const char *kind)
{
    return kiln_pprof_write_period(out, p, kind, 0);
}

int kiln_pprof_write_period(FILE *out, const kiln_profile_t *p, const char *kind, double period_ns)
{
    if (p->nstacks > 0 && !p->stacks_partial)
        return kiln_pprof_write_stacks(out, p, kind, period_ns);
    const char *type, *unit;
    kiln_pprof_type(kind, &type, &unit);
    kiln_pprof_t *w = kiln_util_xcalloc(1, sizeof *w);
    w->out = out;
    if (deflateInit2(&w->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(w);
        kiln_util_err("pprof: zlib initialisation failed");
        return -1;
    }
    kiln_buf_t b = {0}, msg = {0}, sub = {0};

    /* Strings: "" first (required), then type, unit, comment, then one per
     * function name. Function and location ids are the function's position + 1. */
    uint32_t *func_of = kiln_util_xmalloc((size_t)p->names.count * sizeof *func_of);
    for (uint32_t i = 0; i < p->names.count; i++)
        func_of[i] = KILN_NONE;
    for (uint32_t i = 1; i < p->count; i++)
        func_of[p->nodes[i].name] = 0;
    char comment[64];
    snprintf(comment, sizeof comment, "kiln %s: %s profile", KILN_VERSION, kind ? kind : "cpu");
    const char *fixed[] = {"", type, unit, comment};
    for (size_t i = 0; i < 4; i++)
        kiln_pprof_bytes(&b, KILN_PB_STRING_TABLE, fixed[i], strlen(fixed[i]));
    uint32_t nfuncs = 0;
    for (uint32_t i = 0; i < p->names.count; i++) {
        if (func_of[i] == KILN_NONE)
            continue;
        func_of[i] = ++nfuncs;
        kiln_pprof_bytes(&b, KILN_PB_STRING_TABLE, p->names.names[i].str, p->names.names[i].len);
        if (b.len > (1u << 16))
            kiln_pprof_emit(w, &b, Z_NO_FLUSH);
    }
    kiln_pprof_value_type(&b, KILN_PB_SAMPLE_TYPE, 1, 2);
    kiln_pprof_value_type(&b, KILN_PB_PERIOD_TYPE, 1, 2);
    kiln_pprof_uint(&b, KILN_PB_PERIOD, 1);
    kiln_pprof_uint(&b, KILN_PB_COMMENT, 3);

    /* One function and one location per name; string index = 3 + id. The
     * system name is left empty: pprof would take a name equal to it for
     * one to demangle, and strip the template arguments of C++ names. */
    for (uint32_t i = 0; i < p->names.count; i++) {
        uint32_t f = func_of[i];
        if (f == KILN_NONE)
            continue;
        msg.len = 0;
        kiln_pprof_uint(&msg, 1, f);
        kiln_pprof_uint(&msg, 2, 3 + f);
        kiln_pprof_bytes(&b, KILN_PB_FUNCTION, msg.data, msg.len);
        msg.len = 0;
        sub.len = 0;
        kiln_pprof_uint(&sub, 1, f); /* Line.function_id */
        kiln_pprof_uint(&msg, 1, f); /* Location.id */
        kiln_pprof_bytes(&msg, 4, sub.data, sub.len);
        kiln_pprof_bytes(&b, KILN_PB_LOCATION, msg.data, msg.len);
        if (b.len > (1u << 16))
            kiln_pprof_emit(w, &b, Z_NO_FLUSH);
    }

    /* Samples: every node with self counts, locations leaf first. */
    kiln_walk_t walk;
    uint32_t id, depth;
    kiln_walk_init(&walk, p);
    while (kiln_walk_next(&walk, &id, &depth)) {
        const kiln_node_t *n = &p->nodes[id];
        if (!(n->self > 0) || depth == 0)
            continue;
        sub.len = 0;
        for (uint32_t d = depth; d-- > 0;)
            kiln_pprof_varint(&sub, func_of[p->nodes[walk.path[d]].name]);
        msg.len = 0;
        kiln_pprof_bytes(&msg, 1, sub.data, sub.len); /* packed location_id */
        sub.len = 0;
        /* pprof values are integers: fractional counts are rounded. */
        kiln_pprof_varint(&sub, p->scale ? (n->self + KILN_COUNT_FRAC_UNIT / 2) / KILN_COUNT_FRAC_UNIT
                                         : n->self);
        kiln_pprof_bytes(&msg, 2, sub.data, sub.len); /* packed value */
        kiln_pprof_bytes(&b, KILN_PB_SAMPLE, msg.data, msg.len);
        if (b.len > (1u << 16))
            kiln_pprof_emit(w, &b, Z_NO_FLUSH);
    }
    kiln_walk_free(&walk);
    kiln_pprof_emit(w, &b, Z_FINISH);
    deflateEnd(&w->zs);
    int rc = 0;
    if (w->failed) {
        kiln_util_err("pprof: compression or write failed");
        rc = -1;
    }
    free(func_of);
    free(w);
    kiln_buf_free(&b);
    kiln_buf_free(&msg);
    kiln_buf_free(&sub);
    return rc;
}

/* ------------------------------------------------------- from stacks files */

/* Interned strings of the profile, in string_table order. */
static uint64_t kiln_pprof_str(kiln_names_t *st, const char *s)
{
    return kiln_names_intern(st, s ? s : "", s ? strlen(s) : 0);
}

static void kiln_pprof_value_types(kiln_names_t *st, kiln_buf_t *b, const char *kind, bool ns)
{
    const char *type, *unit;
    kiln_pprof_type(kind, &type, &unit);
    kiln_pprof_value_type(b, KILN_PB_SAMPLE_TYPE, kiln_pprof_str(st, type), kiln_pprof_str(st, unit));
    if (ns) /* "wall" is Go's and async-profiler's name for wall-clock time */
        kiln_pprof_value_type(b, KILN_PB_SAMPLE_TYPE,
                              kiln_pprof_str(st, strcmp(kind, "wall") == 0 ? "wall" : "cpu"),
                              kiln_pprof_str(st, "nanoseconds"));
}

/* Every stacks file's module as a mapping, every frame as a location at
 * its address with its inlined frames as lines (innermost first, as
 * profile.proto orders them), one function per (name, file). */
static int kiln_pprof_write_stacks(FILE *out, const kiln_profile_t *p, const char *kind,
                                   double period_ns)
{
    bool ns = period_ns > 0 && kind && (strcmp(kind, "cpu") == 0 || strcmp(kind, "wall") == 0);
    kiln_pprof_t *w = kiln_util_xcalloc(1, sizeof *w);
    w->out = out;
    if (deflateInit2(&w->zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(w);
        kiln_util_err("pprof: zlib initialisation failed");
        return -1;
    }
    kiln_names_t st, funcs;
    kiln_names_init(&st);
    kiln_names_init(&funcs);
    kiln_pprof_str(&st, ""); /* string 0 */
    kiln_buf_t b = {0}, msg = {0}, sub = {0}, key = {0};
    kiln_pprof_value_types(&st, &b, kind, ns);
    uint64_t map_base = 0, loc_base = 0;
    for (size_t k = 0; k < p->nstacks; k++) {
        kiln_stacks_t *s = p->stacks[k];
        /* Mappings. */
        for (uint32_t m = 1; m < s->nmodules; m++) {
            const char *path = kiln_stacks_module_path(s, m);
            if (!path)
                continue;
            uint64_t lo, hi, off, bias;
            const char *build_id;
            kiln_stacks_module_span(s, m, &lo, &hi, &off, &bias, &build_id);
            msg.len = 0;
            kiln_pprof_uint(&msg, 1, map_base + m);
            kiln_pprof_uint(&msg, 2, lo);
            kiln_pprof_uint(&msg, 3, hi);
            kiln_pprof_uint(&msg, 4, off);
            kiln_pprof_uint(&msg, 5, kiln_pprof_str(&st, path));
            kiln_pprof_uint(&msg, 6, kiln_pprof_str(&st, build_id));
            kiln_pprof_uint(&msg, 7, 1); /* has_functions: pprof keeps kiln's names */
            kiln_pprof_uint(&msg, 8, 1); /* has_filenames */
            kiln_pprof_uint(&msg, 9, 1); /* has_line_numbers */
            kiln_pprof_uint(&msg, 10, 1); /* has_inline_frames */
            kiln_pprof_bytes(&b, KILN_PB_MAPPING, msg.data, msg.len);
        }
        /* Locations and their functions (each frame id, once). */
        for (uint32_t id = 1; id < s->nframes; id++) {
            kiln_stacks_frame_t *fr = &s->frames[id];
            if (!fr->name)
                continue;
            uint32_t nx;
            const kiln_stacks_loc_t *x = kiln_stacks_expand(s, id, &nx);
            uint64_t lo = 0, hi, off, bias = 0;
            const char *build_id;
            if (fr->module)
                kiln_stacks_module_span(s, fr->module, &lo, &hi, &off, &bias, &build_id);
            msg.len = 0;
            kiln_pprof_uint(&msg, 1, loc_base + id);
            if (fr->module)
                kiln_pprof_uint(&msg, 2, map_base + fr->module);
            if (id > 4)
                kiln_pprof_uint(&msg, 3, fr->addr + (fr->module ? bias : 0));
            for (uint32_t j = nx; j-- > 0;) {
                const char *sys = j == 0 && fr->raw && strcmp(fr->raw, x[j].name) ? fr->raw : "";
                key.len = 0;
                kiln_buf_printf(&key, "%s%c%s%c%s", x[j].name, 1, x[j].file ? x[j].file : "", 1, sys);
                uint32_t before = funcs.count;
                uint64_t fid = (uint64_t)kiln_names_intern(&funcs, key.data, key.len) + 1;
                if (funcs.count != before) {
                    sub.len = 0;
                    kiln_pprof_uint(&sub, 1, fid);
                    kiln_pprof_uint(&sub, 2, kiln_pprof_str(&st, x[j].name));
                    if (sys[0])
                        kiln_pprof_uint(&sub, 3, kiln_pprof_str(&st, sys));
                    if (x[j].file)
                        kiln_pprof_uint(&sub, 4, kiln_pprof_str(&st, x[j].file));
                    kiln_pprof_bytes(&b, KILN_PB_FUNCTION, sub.data, sub.len);
                }
                sub.len = 0;
                kiln_pprof_uint(&sub, 1, fid);
                if (x[j].line > 0)
                    kiln_pprof_uint(&sub, 2, (uint64_t)x[j].line);
                kiln_pprof_bytes(&msg, 4, sub.data, sub.len);
            }
            kiln_pprof_bytes(&b, KILN_PB_LOCATION, msg.data, msg.len);
            if (b.len > (1u << 16))
                kiln_pprof_emit(w, &b, Z_NO_FLUSH);
        }
        /* Samples, locations leaf first. */
        for (size_t i = 0; i < s->nstacks; i++) {
            sub.len = 0;
            for (size_t j = s->starts[i + 1]; j-- > s->starts[i];)
                kiln_pprof_varint(&sub, loc_base + s->ids[j]);
            msg.len = 0;
            kiln_pprof_bytes(&msg, 1, sub.data, sub.len);
            sub.len = 0;
            kiln_pprof_varint(&sub, (uint64_t)llround(s->counts[i]));
            if (ns)
                kiln_pprof_varint(&sub, (uint64_t)llround(s->counts[i] * period_ns));
            kiln_pprof_bytes(&msg, 2, sub.data, sub.len);
            kiln_pprof_bytes(&b, KILN_PB_SAMPLE, msg.data, msg.len);
            if (b.len > (1u << 16))
                kiln_pprof_emit(w, &b, Z_NO_FLUSH);
        }
        map_base += s->nmodules;
        loc_base += s->nframes;
    }
    char comment[64];
    snprintf(comment, sizeof comment, "kiln %s: %s profile", KILN_VERSION, kind ? kind : "cpu");
    uint64_t comment_id = kiln_pprof_str(&st, comment);
    if (ns) {
        kiln_pprof_value_type(&b, KILN_PB_PERIOD_TYPE,
                              kiln_pprof_str(&st, strcmp(kind, "wall") == 0 ? "wall" : "cpu"),
                              kiln_pprof_str(&st, "nanoseconds"));
        kiln_pprof_uint(&b, KILN_PB_PERIOD, (uint64_t)llround(period_ns));
    } else {
        const char *type, *unit;
        kiln_pprof_type(kind, &type, &unit);
        kiln_pprof_value_type(&b, KILN_PB_PERIOD_TYPE, kiln_pprof_str(&st, type), kiln_pprof_str(&st, unit));
        kiln_pprof_uint(&b, KILN_PB_PERIOD, 1);
    }
    kiln_pprof_uint(&b, KILN_PB_COMMENT, comment_id);
    for (uint32_t i = 0; i < st.count; i++) {
        kiln_pprof_bytes(&b, KILN_PB_STRING_TABLE, st.names[i].str, st.names[i].len);
        if (b.len > (1u << 16))
            kiln_pprof_emit(w, &b, Z_NO_FLUSH);
    }
    kiln_pprof_emit(w, &b, Z_FINISH);
    deflateEnd(&w->zs);
    int rc = 0;
    if (w->failed) {
        kiln_util_err("pprof: compression or write failed");
        rc = -1;
    }
    free(w);
    kiln_names_free(&st);
    kiln_names_free(&funcs);
    kiln_buf_free(&b);
    kiln_buf_free(&msg);
    kiln_buf_free(&sub);
    kiln_buf_free(&key);
    return rc;
}
