/* diff.c — `kiln diff`: two profiles joined stack by stack into
 * difffolded-compatible lines ("stack BEFORE AFTER"), the input of a
 * differential flame graph. Both files go into one trie; the first file's
 * per-stack counts are set aside before the second is read. */
#include "kiln.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char kiln_diff_usage[] =
    "usage: kiln diff [-n] [--strict] [-o FILE] BEFORE AFTER\n"
    "\n"
    "Writes one line per stack found in either profile: 'stack BEFORE AFTER'\n"
    "(difffolded format), stacks in byte order. Draw it with\n"
    "'kiln flamegraph': red frames grew, blue frames shrank.\n"
    "\n"
    "  -n, --normalize   scale BEFORE's counts to AFTER's total (rounded)\n"
    "  -o, --output FILE write FILE (appears whole) instead of stdout\n"
    "  --strict          a malformed input line is an error, not a warning\n"
    "  -h, --help        this help\n";

/* Writes every stack with a count in either profile, depth first in byte
 * order of the frames, keeping the current stack text in one buffer:
 * ends[d] is its length through the frame at depth d + 1. */
static void kiln_diff_emit(FILE *out, const kiln_profile_t *p, const kiln_count_t *before,
                           uint32_t nbefore, double scale)
{
    kiln_buf_t stack = {0}, line = {0};
    size_t *ends = NULL, ends_cap = 0;
    kiln_walk_t w;
    uint32_t id, depth;
    kiln_walk_init(&w, p);
    while (kiln_walk_next(&w, &id, &depth)) {
        if (depth == 0)
            continue;
        if (depth > ends_cap) {
            ends_cap = (size_t)depth * 2;
            ends = kiln_util_xrealloc(ends, ends_cap * sizeof *ends);
        }
        stack.len = depth > 1 ? ends[depth - 2] : 0;
        if (depth > 1)
            kiln_buf_addc(&stack, ';');
        const kiln_node_t *n = &p->nodes[id];
        const kiln_name_t *nm = &p->names.names[n->name];
        kiln_buf_add(&stack, nm->str, nm->len);
        ends[depth - 1] = stack.len;
        kiln_count_t b = id < nbefore ? before[id] : 0, a = n->self;
        if (b > 0 || a > 0) {
            line.len = 0;
            kiln_buf_add(&line, stack.data, stack.len);
            kiln_buf_addc(&line, ' ');
            if (scale != 1) /* normalized: an estimate, rounded */
                kiln_util_fmt_count(&line, round(kiln_profile_value(p, b) * scale), false);
            else
                kiln_profile_fmt(&line, p, b, false);
            kiln_buf_addc(&line, ' ');
            kiln_profile_fmt(&line, p, a, false);
            kiln_buf_addc(&line, '\n');
            fwrite(line.data, 1, line.len, out);
        }
    }
    kiln_walk_free(&w);
    free(ends);
    kiln_buf_free(&stack);
    kiln_buf_free(&line);
}

int kiln_diff_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"normalize", no_argument, NULL, 'n'},
        {"output", required_argument, NULL, 'o'},
        {"strict", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_folded_opts_t fo = {0};
    bool normalize = false;
    const char *output = NULL;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "no:", longopts, "diff",
                                 kiln_diff_usage)) != -1) {
        switch (c) {
        case 'n': normalize = true; break;
        case 'o': output = optarg; break;
        case 's': fo.strict = true; break;
        }
    }
    if (argc - optind != 2)
        kiln_util_usage_error("diff", "needs two files, BEFORE and AFTER");
    kiln_profile_t p;
    kiln_profile_init(&p, false);
    int rc = kiln_folded_read(&p, (const char *const *)argv + optind, 1, &fo);
    kiln_count_t *before = NULL;
    uint32_t nbefore = 0;
    double total_before = 0;
    unsigned before_scale = 0;
    if (rc == 0) {
        if (p.has_delta) {
            kiln_util_err("%s: already a differential profile (two counts per line)",
                          argv[optind]);
            rc = -1;
        }
        total_before = (double)p.nodes[0].total;
        before_scale = p.scale;
        before = kiln_profile_take_self(&p, &nbefore);
    }
    if (rc == 0)
        rc = kiln_folded_read(&p, (const char *const *)argv + optind + 1, 1, &fo);
    if (rc == 0 && p.has_delta) {
        kiln_util_err("%s: already a differential profile (two counts per line)",
                      argv[optind + 1]);
        rc = -1;
    }
    if (rc == 0 && before_scale != p.scale) {
        /* AFTER had fractions, BEFORE not: bring BEFORE to thousandths. */
        total_before *= KILN_COUNT_FRAC_UNIT;
        if (kiln_profile_rescale(&p, before, nbefore, before_scale) != 0) {
            kiln_util_err("%s: counts too large to compare with fractional counts",
                          argv[optind]);
            rc = -1;
        }
    }
    if (rc == 0) {
        double scale = normalize && total_before > 0 ? (double)p.nodes[0].total / total_before : 1;
        kiln_out_t out;
        rc = kiln_out_open(&out, output);
        if (rc == 0) {
            kiln_diff_emit(out.fp, &p, before, nbefore, scale);
            rc = kiln_out_commit(&out);
        }
    }
    free(before);
    kiln_profile_free(&p);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
