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
    KILN_PB_SAMPLE_TYPE = 1, KILN_PB_SAMPLE = 2, KILN_PB_LOCATION = 4, KILN_PB_FUNCTION = 5,
    KILN_PB_STRING_TABLE = 6, KILN_PB_PERIOD_TYPE = 11, KILN_PB_PERIOD = 12,
    KILN_PB_COMMENT = 13,
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

int kiln_pprof_write(FILE *out, const kiln_profile_t *p, const char *kind)
{
    static const char *const types[][3] = {
        {"cpu", "samples", "count"},          {"alloc_bytes", "alloc_space", "bytes"},
        {"alloc_count", "alloc_objects", "count"},
        {"live_bytes", "inuse_space", "bytes"},
        {"live_count", "inuse_objects", "count"},  {"leak_bytes", "leak_space", "bytes"},
        {"leak_count", "leak_objects", "count"},   {"peak_bytes", "peak_space", "bytes"},
    };
    const char *type = "samples", *unit = "count";
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (kind && strcmp(kind, types[i][0]) == 0) {
            type = types[i][1];
            unit = types[i][2];
        }
    }
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

    /* One function and one location per name; string index = 3 + id. */
    for (uint32_t i = 0; i < p->names.count; i++) {
        uint32_t f = func_of[i];
        if (f == KILN_NONE)
            continue;
        msg.len = 0;
        kiln_pprof_uint(&msg, 1, f);
        kiln_pprof_uint(&msg, 2, 3 + f);
        kiln_pprof_uint(&msg, 3, 3 + f);
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
