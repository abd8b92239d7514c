/* convert.c — `kiln convert`: folded stacks to other viewers' formats
 * (speedscope JSON, pprof), and the speedscope writer itself. The profile
 * kind (cpu, alloc_bytes, ...) comes from the file name or --kind and names
 * the units. */
#include "kiln.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char kiln_convert_usage[] =
    "usage: kiln convert --to speedscope|pprof [-o OUT] [--kind KIND] [FILE...]\n"
    "\n"
    "Converts folded stacks (several files are merged; stdin when no FILE):\n"
    "  speedscope  JSON in speedscope's file format (one sampled profile)\n"
    "  pprof       gzip-compressed profile.proto, for 'pprof' and Go tooling\n"
    "The profile kind names the sample type and unit: cpu (samples), alloc_bytes,\n"
    "alloc_count, live_bytes, live_count, leak_bytes, leak_count, peak_bytes,\n"
    "lock_wait_ns, lock_wait_count.\n"
    "It is taken from a kiln file name (PROG.PID.KIND.folded) unless --kind\n"
    "says otherwise. A directory reads the KIND files of each process's run in\n"
    "it, as 'kiln top DIR' does.\n"
    "\n"
    "  --to FORMAT       speedscope or pprof (required)\n"
    "  -o, --output OUT  write OUT (appears whole) instead of stdout\n"
    "  --kind KIND       the profile kind (default: from the file name, else cpu)\n"
    "  --strict          a malformed input line is an error, not a warning\n"
    "  -h, --help        this help\n";

const char *kiln_convert_unit(const char *kind)
{
    size_t n = kind ? strlen(kind) : 0;
    if (n > 6 && strcmp(kind + n - 6, "_bytes") == 0)
        return "bytes";
    if (kind && strcmp(kind, "alloc_count") == 0)
        return "allocations";
    if (n > 3 && strcmp(kind + n - 3, "_ns") == 0)
        return "nanoseconds";
    if (kind && strcmp(kind, KILN_KIND_LOCK_WAIT_COUNT) == 0)
        return "waits";
    if (n > 6 && strcmp(kind + n - 6, "_count") == 0)
        return "blocks";
    return "samples";
}

static void kiln_speedscope_flush(FILE *out, kiln_buf_t *b, bool force)
{
    if (b->len >= (1u << 16) || (force && b->len)) {
        fwrite(b->data, 1, b->len, out);
        b->len = 0;
    }
}

/* Frames are (name, source line) pairs: the same function at two lines
 * is two speedscope frames, each with its file and line. */
typedef struct kiln_speedscope_frames_s {
    uint64_t *keys; /* name << 32 | where (KILN_NONE: none), +1; 0 = empty */
    uint32_t *index;
    size_t cap, n;
} kiln_speedscope_frames_t;

static uint32_t *kiln_speedscope_slot(kiln_speedscope_frames_t *f, uint64_t key, bool *fresh)
{
    if ((f->n + 1) * 2 > f->cap) {
        kiln_speedscope_frames_t g = {0};
        g.cap = f->cap ? f->cap * 2 : 1024;
        g.keys = kiln_util_xcalloc(g.cap, sizeof *g.keys);
        g.index = kiln_util_xcalloc(g.cap, sizeof *g.index);
        for (size_t i = 0; i < f->cap; i++) {
            if (!f->keys[i])
                continue;
            bool unused;
            *kiln_speedscope_slot(&g, f->keys[i] - 1, &unused) = f->index[i];
        }
        free(f->keys);
        free(f->index);
        *f = g;
    }
    size_t j = (size_t)((key + 1) * 0x9e3779b97f4a7c15ull >> 19) & (f->cap - 1);
    while (f->keys[j] && f->keys[j] != key + 1)
        j = (j + 1) & (f->cap - 1);
    *fresh = !f->keys[j];
    if (*fresh) {
        f->keys[j] = key + 1;
        f->n++;
    }
    return &f->index[j];
}

int kiln_speedscope_write(FILE *out, const kiln_profile_t *p, const char *kind,
                          const char *profile_name)
{
    return kiln_speedscope_write_scaled(out, p, kind, profile_name, 0);
}

int kiln_speedscope_write_scaled(FILE *out, const kiln_profile_t *p, const char *kind,
                                 const char *profile_name, double period_ns)
{
    const char *unit = kiln_convert_unit(kind);
    bool bytes = strcmp(unit, "bytes") == 0, ns = !bytes && period_ns > 0 &&
                                                   strcmp(unit, "samples") == 0;
    bool own_ns = strcmp(unit, "nanoseconds") == 0; /* lock_wait_ns: counted in ns already */
    double scale = ns ? period_ns : 1;
    /* Frames in first-seen order of the walk below. */
    kiln_speedscope_frames_t frames = {0};
    uint32_t *frame_of = kiln_util_xmalloc((size_t)p->count * sizeof *frame_of);
    uint32_t nframes = 0;
    kiln_buf_t b = {0}, weights = {0};
    kiln_buf_adds(&b, "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
                      "\"shared\":{\"frames\":[");
    /* Without source lines, frames go in the names' first-seen order (one
     * per name); with them, in the walk's order. */
    uint32_t *order = kiln_util_xmalloc((size_t)p->count * sizeof *order);
    uint32_t norder = 0;
    if (!p->where) {
        uint32_t *first = kiln_util_xmalloc((size_t)p->names.count * sizeof *first);
        for (uint32_t i = 0; i < p->names.count; i++)
            first[i] = KILN_NONE;
        for (uint32_t i = 1; i < p->count; i++)
            if (first[p->nodes[i].name] == KILN_NONE)
                first[p->nodes[i].name] = i;
        for (uint32_t i = 0; i < p->names.count; i++)
            if (first[i] != KILN_NONE)
                order[norder++] = first[i];
        free(first);
    }
    {
        kiln_walk_t w;
        uint32_t id, depth;
        kiln_walk_init(&w, p);
        for (uint32_t k = 0; k < norder; k++) { /* the name order's frames first */
            bool fresh;
            uint32_t *slot = kiln_speedscope_slot(&frames, (uint64_t)p->nodes[order[k]].name << 32 | KILN_NONE, &fresh);
            *slot = nframes;
            const kiln_name_t *nm = &p->names.names[p->nodes[order[k]].name];
            kiln_buf_adds(&b, nframes++ ? ",{\"name\":\"" : "{\"name\":\"");
            kiln_escape_json(&b, nm->str, nm->len);
            kiln_buf_adds(&b, "\"}");
            kiln_speedscope_flush(out, &b, false);
        }
        free(order);
        while (kiln_walk_next(&w, &id, &depth)) {
            if (id == 0)
                continue;
            uint32_t where = p->where && id < p->where_cap ? p->where[id] : KILN_NONE;
            bool fresh;
            uint32_t *slot = kiln_speedscope_slot(&frames, (uint64_t)p->nodes[id].name << 32 | where, &fresh);
            if (fresh) {
                *slot = nframes;
                const kiln_name_t *nm = &p->names.names[p->nodes[id].name];
                kiln_buf_adds(&b, nframes++ ? ",{\"name\":\"" : "{\"name\":\"");
                kiln_escape_json(&b, nm->str, nm->len);
                kiln_buf_addc(&b, '"');
                if (where != KILN_NONE) {
                    const kiln_name_t *wn = &p->names.names[where];
                    const char *colon = memrchr(wn->str, ':', wn->len);
                    if (colon) {
                        kiln_buf_adds(&b, ",\"file\":\"");
                        kiln_escape_json(&b, wn->str, (size_t)(colon - wn->str));
                        kiln_buf_printf(&b, "\",\"line\":%ld", strtol(colon + 1, NULL, 10));
                    }
                }
                kiln_buf_addc(&b, '}');
                kiln_speedscope_flush(out, &b, false);
            }
            frame_of[id] = *slot;
        }
        kiln_walk_free(&w);
    }
    free(frames.keys);
    free(frames.index);
    kiln_buf_adds(&b, "]},\"profiles\":[{\"type\":\"sampled\",\"name\":\"");
    kiln_escape_json(&b, profile_name, strlen(profile_name));
    kiln_buf_printf(&b, "\",\"unit\":\"%s\",\"startValue\":0,\"endValue\":",
                    bytes ? "bytes" : ns || own_ns ? "nanoseconds" : "none");
    if (scale != 1)
        kiln_util_fmt_count(&b, kiln_profile_value(p, p->nodes[0].total) * scale, false);
    else
        kiln_profile_fmt(&b, p, p->nodes[0].total, false);
    kiln_buf_adds(&b, ",\"samples\":[");

    /* Pre-order: one sample per node with self counts, its frames root first. */
    kiln_walk_t w;
    uint32_t id, depth;
    size_t nsamples = 0;
    kiln_walk_init(&w, p);
    while (kiln_walk_next(&w, &id, &depth)) {
        const kiln_node_t *n = &p->nodes[id];
        if (!(n->self > 0) || depth == 0)
            continue;
        kiln_buf_adds(&b, nsamples ? ",[" : "[");
        for (uint32_t d = 0; d < depth; d++)
            kiln_buf_printf(&b, d ? ",%u" : "%u", frame_of[w.path[d]]);
        kiln_buf_addc(&b, ']');
        if (nsamples)
            kiln_buf_addc(&weights, ',');
        if (scale != 1)
            kiln_util_fmt_count(&weights, kiln_profile_value(p, n->self) * scale, false);
        else
            kiln_profile_fmt(&weights, p, n->self, false);
        nsamples++;
        kiln_speedscope_flush(out, &b, false);
    }
    kiln_walk_free(&w);
    kiln_buf_adds(&b, "],\"weights\":[");
    kiln_speedscope_flush(out, &b, true);
    if (weights.len)
        fwrite(weights.data, 1, weights.len, out);
    kiln_buf_adds(&b, "]}],\"name\":\"");
    kiln_escape_json(&b, profile_name, strlen(profile_name));
    kiln_buf_adds(&b, "\",\"activeProfileIndex\":0,\"exporter\":\"kiln " KILN_VERSION "\"}\n");
    kiln_speedscope_flush(out, &b, true);
    free(frame_of);
    kiln_buf_free(&b);
    kiln_buf_free(&weights);
    return 0;
}

int kiln_convert_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"to", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"kind", required_argument, NULL, 'k'},
        {"strict", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_folded_opts_t fo = {0};
    const char *to = NULL, *output = NULL, *kind = NULL;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "o:", longopts, "convert",
                                 kiln_convert_usage)) != -1) {
        switch (c) {
        case 't': to = optarg; break;
        case 'o': output = optarg; break;
        case 'k': kind = kiln_folded_opt_kind("convert", optarg); break;
        case 's': fo.strict = true; break;
        }
    }
    if (!to)
        kiln_util_usage_error("convert", "--to speedscope or --to pprof is required");
    bool pprof = strcmp(to, "pprof") == 0;
    if (!pprof && strcmp(to, "speedscope") != 0)
        kiln_util_usage_error("convert", "unknown format '%s' (speedscope or pprof)", to);
    int nfiles = argc - optind;
    const char *first = nfiles > 0 ? argv[optind] : "-";
    /* The kind from the name: any PROG.PID.KIND.folded (leak categories
     * such as definite_bytes too). */
    char *name_kind = NULL, *stacks = NULL;
    if (!kind && strcmp(first, "-") != 0 && (stacks = kiln_stacks_path(first, &name_kind)))
        kind = name_kind;
    if (!kind)
        kind = "cpu";
    /* CPU and wall samples as time: the sample period from the set's
     * meta.json. */
    double period_ns = 0;
    bool wall = strcmp(kind, "wall") == 0;
    if (stacks && (strcmp(kind, "cpu") == 0 || wall)) {
        size_t n = strlen(stacks);
        char *meta = kiln_util_xmalloc(n + 4);
        memcpy(meta, stacks, n - 6);
        memcpy(meta + n - 6, "meta.json", 10);
        char *v = kiln_sets_meta_string(meta, wall ? "wall_period_ns" : "sample_period_ns");
        if (v)
            period_ns = strtod(v, NULL);
        if (!(period_ns > 0 && period_ns < 1e12))
            period_ns = 0;
        free(v);
        free(meta);
    }
    free(stacks);
    fo.dir_kind = kind;
    const char *slash = strrchr(first, '/');
    const char *profile_name = strcmp(first, "-") == 0 ? "stdin" : slash ? slash + 1 : first;

    kiln_profile_t p;
    kiln_profile_init(&p, false);
    int rc = kiln_folded_read(&p, (const char *const *)argv + optind, nfiles, &fo);
    if (rc == 0 && p.has_delta) {
        kiln_util_err("%s: a differential profile cannot be converted; convert each side",
                      first);
        rc = -1;
    }
    if (rc == 0) {
        kiln_out_t out;
        rc = kiln_out_open(&out, output);
        if (rc == 0)
            rc = kiln_out_close(&out, pprof ? kiln_pprof_write_period(out.fp, &p, kind, period_ns)
                       : kiln_speedscope_write_scaled(out.fp, &p, kind, profile_name, period_ns));
    }
    kiln_profile_free(&p);
    free(name_kind);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
