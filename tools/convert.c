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
    "alloc_count, live_bytes, live_count, leak_bytes, leak_count, peak_bytes.\n"
    "It is taken from a kiln file name (PROG.PID.KIND.folded) unless --kind\n"
    "says otherwise. A directory reads the KIND files of each process's run in\n"
    "it, as 'kiln top DIR' does.\n"
    "\n"
    "  --to FORMAT       speedscope or pprof (required)\n"
    "  -o, --output OUT  write OUT (appears whole) instead of stdout\n"
    "  --kind KIND       the profile kind (default: from the file name, else cpu)\n"
    "  --strict          a malformed input line is an error, not a warning\n"
    "  -h, --help        this help\n";

static void kiln_speedscope_flush(FILE *out, kiln_buf_t *b, bool force)
{
    if (b->len >= (1u << 16) || (force && b->len)) {
        fwrite(b->data, 1, b->len, out);
        b->len = 0;
    }
}

int kiln_speedscope_write(FILE *out, const kiln_profile_t *p, const char *kind,
                          const char *profile_name)
{
    bool bytes = kind && strstr(kind, "bytes");
    /* Frames: the names used below the root, in first-seen order. */
    uint32_t *frame_of = kiln_util_xmalloc((size_t)p->names.count * sizeof *frame_of);
    for (uint32_t i = 0; i < p->names.count; i++)
        frame_of[i] = KILN_NONE;
    for (uint32_t i = 1; i < p->count; i++)
        frame_of[p->nodes[i].name] = 0;
    uint32_t nframes = 0;
    kiln_buf_t b = {0}, weights = {0};
    kiln_buf_adds(&b, "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
                      "\"shared\":{\"frames\":[");
    for (uint32_t i = 0; i < p->names.count; i++) {
        if (frame_of[i] == KILN_NONE)
            continue;
        frame_of[i] = nframes;
        kiln_buf_adds(&b, nframes++ ? ",{\"name\":\"" : "{\"name\":\"");
        kiln_escape_json(&b, p->names.names[i].str, p->names.names[i].len);
        kiln_buf_adds(&b, "\"}");
        kiln_speedscope_flush(out, &b, false);
    }
    kiln_buf_adds(&b, "]},\"profiles\":[{\"type\":\"sampled\",\"name\":\"");
    kiln_escape_json(&b, profile_name, strlen(profile_name));
    kiln_buf_printf(&b, "\",\"unit\":\"%s\",\"startValue\":0,\"endValue\":",
                    bytes ? "bytes" : "none");
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
            kiln_buf_printf(&b, d ? ",%u" : "%u", frame_of[p->nodes[w.path[d]].name]);
        kiln_buf_addc(&b, ']');
        if (nsamples)
            kiln_buf_addc(&weights, ',');
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
    if (!kind)
        kind = kiln_folded_kind(first);
    if (!kind)
        kind = "cpu";
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
            rc = kiln_out_close(&out, pprof ? kiln_pprof_write(out.fp, &p, kind)
                       : kiln_speedscope_write(out.fp, &p, kind, profile_name));
    }
    kiln_profile_free(&p);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
