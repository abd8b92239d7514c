/* top.c — `kiln top`: the flat per-function list people read first. Self is
 * the count of stacks ending in the function; total counts each stack the
 * function appears in once, however often it recurses. Shared with
 * `kiln record`'s summary through kiln_top_print. */
#include "kiln.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char kiln_top_usage[] =
    "usage: kiln top [-n N] [--total] [--lines] [--kind KIND] [--strict] [FILE|DIR...]\n"
    "\n"
    "Lists functions by self count (or by total with --total): self and total\n"
    "count and their share of all samples. Several files are merged; stdin when\n"
    "no FILE. A DIR stands for the whole run of each process in it, from its\n"
    "KIND files: the exit set, else the sum of its delta interval sets, else\n"
    "its latest cumulative set (one interval: name its file).\n"
    "\n"
    "  -n N            show N functions (20; 0 for all)\n"
    "  --total         sort by total (inclusive) count instead of self\n"
    "  --lines         one row per function and source line (\"f file.c:42\"), from\n"
    "                  the stacks file the runtime writes beside its folded files\n"
    "  --kind KIND     the files a DIR stands for: cpu (default), alloc_bytes,\n"
    "                  alloc_count, live_bytes, live_count, leak_bytes...,\n"
    "                  lock_wait_ns, lock_wait_count\n"
    "  --strict        a malformed input line is an error, not a warning\n"
    "  -h, --help      this help\n";

typedef struct kiln_top_row_s {
    uint32_t name;
    kiln_count_t self, total; /* sums of disjoint subtrees: never past the root's */
} kiln_top_row_t;

typedef struct kiln_top_ctx_s {
    const kiln_profile_t *p;
    bool by_total;
} kiln_top_ctx_t;

static int kiln_top_cmp(const void *a, const void *b, void *arg)
{
    const kiln_top_ctx_t *ctx = arg;
    const kiln_top_row_t *x = a, *y = b;
    kiln_count_t kx = ctx->by_total ? x->total : x->self, ky = ctx->by_total ? y->total : y->self;
    if (kx != ky)
        return kx > ky ? -1 : 1;
    kiln_count_t lx = ctx->by_total ? x->self : x->total, ly = ctx->by_total ? y->self : y->total;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return kiln_names_cmp(&ctx->p->names, x->name, y->name);
}

/* Per-name self and total. Depth-first with explicit enter/leave entries:
 * a node adds to its name's total only when no ancestor has the same name. */
static kiln_top_row_t *kiln_top_rows(const kiln_profile_t *p, size_t *nrows)
{
    uint32_t nn = p->names.count;
    kiln_top_row_t *rows = kiln_util_xcalloc(nn, sizeof *rows);
    uint32_t *onpath = kiln_util_xcalloc(nn, sizeof *onpath);
    /* Each node is pushed once to enter and once to leave, so 2 * count
     * entries always suffice: the proven bound, allocated once (the root's
     * children alone may be any number). */
    size_t top = 0, cap = 2 * (size_t)p->count;
    uint64_t *stack = kiln_util_xmalloc(cap * sizeof *stack); /* node << 1 | leaving */
    for (uint32_t c = p->nodes[0].child; c != KILN_NONE; c = p->nodes[c].sibling)
        stack[top++] = (uint64_t)c << 1;
    while (top) {
        uint64_t e = stack[--top];
        const kiln_node_t *n = &p->nodes[e >> 1];
        if (e & 1) {
            onpath[n->name]--;
            continue;
        }
        if (onpath[n->name]++ == 0)
            rows[n->name].total += n->total;
        rows[n->name].self += n->self;
        stack[top++] = e | 1;
        for (uint32_t c = n->child; c != KILN_NONE; c = p->nodes[c].sibling)
            stack[top++] = (uint64_t)c << 1;
    }
    size_t k = 0;
    for (uint32_t i = 0; i < nn; i++) {
        if (rows[i].total > 0 || rows[i].self > 0) {
            rows[k] = rows[i];
            rows[k].name = i;
            k++;
        }
    }
    free(stack);
    free(onpath);
    *nrows = k;
    return rows;
}


int kiln_top_print(FILE *out, const char *const *paths, int npaths, int n, unsigned flags,
                   const char *kind)
{
    kiln_profile_t p;
    kiln_folded_opts_t fo = {.strict = (flags & KILN_TOP_STRICT) != 0, .dir_kind = kind,
                             .lines = (flags & KILN_TOP_LINES) != 0};
    bool by_total = (flags & KILN_TOP_BY_TOTAL) != 0;
    kiln_profile_init(&p, false);
    if (kiln_folded_read(&p, paths, npaths, &fo) != 0) {
        kiln_profile_free(&p);
        return -1;
    }
    if (p.has_delta)
        kiln_util_err("note: the input has two counts per line (a diff): this table is of the "
                      "second (AFTER) counts; 'kiln report --diff' compares both");
    size_t nrows;
    kiln_top_row_t *rows = kiln_top_rows(&p, &nrows);
    kiln_top_ctx_t ctx = {&p, by_total};
    qsort_r(rows, nrows, sizeof *rows, kiln_top_cmp, &ctx);
    kiln_count_t all = p.nodes[0].total;
    kiln_buf_t b = {0};
    kiln_profile_fmt(&b, &p, all, false);
    fprintf(out, "total %s in %zu functions; %s\n", b.data, nrows,
            by_total ? "by total (inclusive)" : "by self");
    fprintf(out, "%12s %7s %12s %7s  %s\n", "self", "self%", "total", "total%", "function");
    size_t shown = n > 0 && (size_t)n < nrows ? (size_t)n : nrows;
    for (size_t i = 0; i < shown; i++) {
        b.len = 0;
        kiln_profile_fmt(&b, &p, rows[i].self, false);
        kiln_buf_addc(&b, '\0');
        size_t mid = b.len;
        kiln_profile_fmt(&b, &p, rows[i].total, false);
        fprintf(out, "%12s %6.2f%% %12s %6.2f%%  ", b.data,
                all > 0 ? 100.0 * (double)rows[i].self / (double)all : 0, b.data + mid,
                all > 0 ? 100.0 * (double)rows[i].total / (double)all : 0);
        /* Names go to a terminal (kiln_escape_term). */
        const kiln_name_t *nm = &p.names.names[rows[i].name];
        b.len = 0;
        kiln_escape_term(&b, nm->str, nm->len);
        kiln_buf_addc(&b, '\n');
        fwrite(b.data, 1, b.len, out);
    }
    if (shown < nrows)
        fprintf(out, "(%zu more functions; -n 0 shows all)\n", nrows - shown);
    kiln_buf_free(&b);
    free(rows);
    kiln_profile_free(&p);
    return 0;
}

int kiln_top_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"lines", no_argument, NULL, 'l'},
        {"total", no_argument, NULL, 't'},
        {"strict", no_argument, NULL, 's'},
        {"kind", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *kind = NULL;
    long n = 20;
    bool by_total = false, strict = false, lines = false;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "n:", longopts, "top",
                                 kiln_top_usage)) != -1) {
        switch (c) {
        case 'n': n = kiln_util_opt_count("top", "-n", optarg); break;
        case 't': by_total = true; break;
        case 'l': lines = true; break;
        case 's': strict = true; break;
        case 'k': kind = kiln_folded_opt_kind("top", optarg); break;
        }
    }
    unsigned flags = (by_total ? KILN_TOP_BY_TOTAL : 0) | (strict ? KILN_TOP_STRICT : 0) |
                     (lines ? KILN_TOP_LINES : 0);
    int rc = kiln_top_print(stdout, (const char *const *)argv + optind, argc - optind, (int)n,
                            flags, kind);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        kiln_util_err("<stdout>: write error");
        rc = -1;
    }
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
