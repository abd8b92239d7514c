/* diff.c — `kiln diff`: two profiles joined stack by stack into
 * difffolded-compatible lines ("stack BEFORE AFTER"), the input of a
 * differential flame graph. Both files go into one trie; the first file's
 * per-stack counts are set aside before the second is read. */
#include "kiln.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char kiln_diff_usage[] =
    "usage: kiln diff [-n] [--strict] [-o FILE] BEFORE AFTER\n"
    "\n"
    "Writes one line per stack found in either profile: 'stack BEFORE AFTER'\n"
    "(difffolded format), stacks in byte order. Draw it with\n"
    "'kiln flamegraph': red frames grew, blue frames shrank.\n"
    "\n"
    "  -n, --normalize   scale BEFORE's counts to AFTER's total (rounded so that\n"
    "                    they add up to it exactly: no change at the root)\n"
    "  -o, --output FILE write FILE (appears whole) instead of stdout\n"
    "  --strict          a malformed input line is an error, not a warning\n"
    "  -h, --help        this help\n";

/* Writes every stack with a count in either profile, depth first in byte
 * order of the frames, keeping the current stack text in one buffer:
 * ends[d] is its length through the frame at depth d + 1. */
static void kiln_diff_emit(FILE *out, const kiln_profile_t *p, const kiln_count_t *before,
                           uint32_t nbefore)
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

typedef struct kiln_diff_rem_s {
    kiln_count_t rem;
    uint32_t id;
} kiln_diff_rem_t;

static int kiln_diff_cmp_rem(const void *a, const void *b)
{
    const kiln_diff_rem_t *x = a, *y = b;
    if (x->rem != y->rem)
        return x->rem > y->rem ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* -n: BEFORE's counts (in AFTER's unit: whole counts or thousandths) scaled
 * to TARGET (AFTER's total) and rounded by the largest remainders, so that
 * they add up to TARGET exactly and the root shows no change that is only
 * rounding. The products are taken in 128 bits: exact for any uint64
 * counts. */
__extension__ typedef unsigned __int128 kiln_diff_wide_t; /* GCC and clang have it */

static void kiln_diff_normalize(kiln_count_t *before, uint32_t n, kiln_count_t target)
{
    kiln_diff_wide_t sum = 0;
    for (uint32_t i = 0; i < n; i++)
        sum += before[i];
    if (sum == 0)
        return;
    kiln_diff_rem_t *rem = kiln_util_xmalloc((n ? n : 1) * sizeof *rem);
    size_t nr = 0;
    kiln_count_t floors = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (before[i] == 0)
            continue;
        kiln_diff_wide_t v = (kiln_diff_wide_t)before[i] * target;
        /* v / sum <= target and v % sum < sum: both fit in 64 bits, as
         * BEFORE's total (sum) is itself one kiln_count_t. */
        rem[nr++] = (kiln_diff_rem_t){(kiln_count_t)(v % sum), i};
        before[i] = (kiln_count_t)(v / sum);
        floors += before[i];
    }
    qsort(rem, nr, sizeof *rem, kiln_diff_cmp_rem);
    kiln_count_t left = target - floors; /* below nr: each floor lost < 1 */
    for (size_t k = 0; k < nr && left > 0; k++, left--)
        before[rem[k].id] += 1;
    free(rem);
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
        if (normalize && total_before > 0)
            kiln_diff_normalize(before, nbefore, p.nodes[0].total);
        kiln_out_t out;
        rc = kiln_out_open(&out, output);
        if (rc == 0) {
            kiln_diff_emit(out.fp, &p, before, nbefore);
            rc = kiln_out_commit(&out);
        }
    }
    free(before);
    kiln_profile_free(&p);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
