/* report_data.c — writes `kiln report`'s page: the embedded style and script
 * (report_assets.c) around one JSON document holding every kind's trie in
 * a compact form: a frame-name table, then per kind the nodes in pre-order
 * as parallel arrays (levels up from the previous node, name id, self),
 * interval cells and explain's findings. Beyond --max-nodes the lightest
 * subtrees are folded into their parent's "rest", so the page stays a few
 * MB whatever the input; the top table of such a kind is sent exact. */
#include "kiln.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KILN_REPORT_TOP_ROWS 20000
#define KILN_REPORT_FLUSH (1u << 20)

typedef struct kiln_report_out_s {
    FILE *fp;
    kiln_buf_t b;
    kiln_names_t names; /* the page's frame-name table */
} kiln_report_out_t;

static void kiln_report_flush(kiln_report_out_t *o, bool force)
{
    if (o->b.len && (force || o->b.len >= KILN_REPORT_FLUSH)) {
        fwrite(o->b.data, 1, o->b.len, o->fp);
        o->b.len = 0;
    }
}

/* A JSON string inside <script>: no '<', '>' or '&' (so neither "</script"
 * nor "<!--" can appear). */
static void kiln_report_str(kiln_buf_t *b, const char *s, size_t len)
{
    kiln_buf_t tmp = {0};
    kiln_escape_json(&tmp, s, len);
    kiln_buf_addc(b, '"');
    for (size_t i = 0; i < tmp.len; i++) {
        char c = tmp.data[i];
        if (c == '<' || c == '>' || c == '&')
            kiln_buf_printf(b, "\\u%04x", (unsigned)c);
        else
            kiln_buf_addc(b, c);
    }
    kiln_buf_addc(b, '"');
    kiln_buf_free(&tmp);
}

static void kiln_report_strz(kiln_buf_t *b, const char *s)
{
    if (s)
        kiln_report_str(b, s, strlen(s));
    else
        kiln_buf_adds(b, "null");
}

static void kiln_report_num(kiln_buf_t *b, double v)
{
    if (!isfinite(v))
        kiln_buf_adds(b, "0");
    else if (v == floor(v) && fabs(v) < 1e15)
        kiln_buf_printf(b, "%.0f", v);
    else
        kiln_buf_printf(b, "%.10g", v);
}

/* A count of P exactly, in the input's unit: digits, and the thousandths
 * of a profile with fractions (JSON numbers; the page computes in double,
 * the data stays exact). */
static void kiln_report_count(kiln_buf_t *b, const kiln_profile_t *p, kiln_count_t v)
{
    if (!p->scale) {
        kiln_buf_printf(b, "%llu", (unsigned long long)v);
        return;
    }
    unsigned long long whole = v / KILN_COUNT_FRAC_UNIT;
    unsigned frac = (unsigned)(v % KILN_COUNT_FRAC_UNIT);
    if (frac == 0) {
        kiln_buf_printf(b, "%llu", whole);
        return;
    }
    char digits[8];
    snprintf(digits, sizeof digits, "%03u", frac);
    size_t n = strlen(digits);
    while (n > 1 && digits[n - 1] == '0')
        n--;
    kiln_buf_printf(b, "%llu.%.*s", whole, (int)n, digits);
}

static int kiln_report_cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

/* Per node: the totals of SELF (COUNT entries, the rest 0) summed up. */
static kiln_count_t *kiln_report_totals(const kiln_profile_t *p, const kiln_count_t *self,
                                       uint32_t count)
{
    kiln_count_t *t = kiln_util_xcalloc(p->count, sizeof *t);
    for (uint32_t i = 0; i < count && i < p->count; i++)
        t[i] = self[i];
    for (uint32_t i = p->count; i-- > 1;)
        t[p->nodes[i].parent] += t[i];
    return t;
}

static bool kiln_report_is_kernel(const kiln_name_t *nm)
{
    return (nm->len == 8 && memcmp(nm->str, "[kernel]", 8) == 0) ||
           (nm->len > 4 && memcmp(nm->str + nm->len - 4, "_[k]", 4) == 0);
}

/* Share of the total whose stack has a kernel frame (shared_decisions:
 * "[kernel]" after the last user frame, or perf's "_[k]" names). */
static double kiln_report_kernel(const kiln_profile_t *p)
{
    bool *in = kiln_util_xcalloc(p->count, sizeof *in);
    kiln_count_t k = 0;
    for (uint32_t i = 1; i < p->count; i++) {
        bool here = kiln_report_is_kernel(kiln_profile_name(p, i));
        in[i] = in[p->nodes[i].parent] || here;
        if (here && !in[p->nodes[i].parent])
            k += p->nodes[i].total;
    }
    free(in);
    return p->nodes[0].total > 0 ? (double)k / (double)p->nodes[0].total : 0;
}

/* The exact per-function table (as `kiln top`: a function's total counts a
 * stack once however often it recurses), below the process level. */
static void kiln_report_top(kiln_report_out_t *o, const kiln_profile_t *p)
{
    uint32_t nn = p->names.count;
    kiln_count_t *self = kiln_util_xcalloc(nn, sizeof *self);
    kiln_count_t *total = kiln_util_xcalloc(nn, sizeof *total);
    uint32_t *onpath = kiln_util_xcalloc(nn, sizeof *onpath);
    size_t top = 0, cap = 1024;
    uint64_t *stack = kiln_util_xmalloc(cap * sizeof *stack);
    for (uint32_t pr = p->nodes[0].child; pr != KILN_NONE; pr = p->nodes[pr].sibling)
        for (uint32_t c = p->nodes[pr].child; c != KILN_NONE; c = p->nodes[c].sibling) {
            if (top == cap)
                stack = kiln_util_xrealloc(stack, (cap *= 2) * sizeof *stack);
            stack[top++] = (uint64_t)c << 1;
        }
    while (top) {
        uint64_t e = stack[--top];
        const kiln_node_t *n = &p->nodes[e >> 1];
        if (e & 1) {
            onpath[n->name]--;
            continue;
        }
        if (onpath[n->name]++ == 0)
            total[n->name] += n->total;
        self[n->name] += n->self;
        size_t need = top + 1;
        for (uint32_t c = n->child; c != KILN_NONE; c = p->nodes[c].sibling)
            need++;
        while (need > cap)
            stack = kiln_util_xrealloc(stack, (cap *= 2) * sizeof *stack);
        stack[top++] = e | 1;
        for (uint32_t c = n->child; c != KILN_NONE; c = p->nodes[c].sibling)
            stack[top++] = (uint64_t)c << 1;
    }
    /* The heaviest rows by self, then by total, up to the cap. */
    double *keys = kiln_util_xmalloc((size_t)nn * sizeof *keys);
    size_t nk = 0;
    for (uint32_t i = 0; i < nn; i++)
        if (total[i] > 0)
            keys[nk++] = (double)total[i];
    double cut = 0;
    if (nk > KILN_REPORT_TOP_ROWS) {
        qsort(keys, nk, sizeof *keys, kiln_report_cmp_desc);
        cut = keys[KILN_REPORT_TOP_ROWS];
    }
    kiln_buf_adds(&o->b, ",\"top\":[");
    bool first = true;
    for (uint32_t i = 0; i < nn; i++) {
        if (!((double)total[i] > cut) && !((double)self[i] > cut && self[i] > 0))
            continue;
        const kiln_name_t *nm = &p->names.names[i];
        kiln_buf_printf(&o->b, "%s[%u,", first ? "" : ",",
                        kiln_names_intern(&o->names, nm->str, nm->len));
        kiln_report_count(&o->b, p, self[i]);
        kiln_buf_addc(&o->b, ',');
        kiln_report_count(&o->b, p, total[i]);
        kiln_buf_addc(&o->b, ']');
        first = false;
        kiln_report_flush(o, false);
    }
    kiln_buf_addc(&o->b, ']');
    free(keys);
    free(stack);
    free(onpath);
    free(self);
    free(total);
}

/* Cumulative interval sets of an additive kind become deltas: each set
 * minus the one before it of the same process. */
static void kiln_report_deltas(const kiln_report_t *r, kiln_report_kind_t *k)
{
    if (!k->info->additive)
        return;
    double *prev = kiln_util_xcalloc(k->p.count, sizeof *prev);
    for (size_t pr = 0; pr < r->nprocs; pr++) {
        kiln_report_iv_t *last = NULL;
        for (size_t j = 0; j < k->niv; j++) {
            kiln_report_iv_t *iv = &k->iv[j];
            if (iv->proc != pr || !r->procs[pr].sets[iv->set].cumulative)
                continue;
            double *cur = kiln_util_xmalloc((iv->n ? iv->n : 1) * sizeof *cur);
            for (size_t c = 0; c < iv->n; c++) {
                cur[c] = iv->value[c];
                iv->value[c] -= prev[iv->node[c]];
            }
            if (last)
                for (size_t c = 0; c < last->n; c++)
                    prev[last->node[c]] = 0;
            for (size_t c = 0; c < iv->n; c++)
                prev[iv->node[c]] = cur[c];
            free(cur);
            last = iv;
        }
        if (last)
            for (size_t c = 0; c < last->n; c++)
                prev[last->node[c]] = 0;
    }
    free(prev);
}

typedef struct kiln_report_item_s {
    uint32_t node, depth;
} kiln_report_item_t;

static void kiln_report_counts(kiln_report_out_t *o, const char *key, const kiln_profile_t *p,
                               const kiln_count_t *v, size_t n)
{
    kiln_buf_printf(&o->b, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        if (i)
            kiln_buf_addc(&o->b, ',');
        kiln_report_count(&o->b, p, v[i]);
        kiln_report_flush(o, false);
    }
    kiln_buf_addc(&o->b, ']');
}

static void kiln_report_kind_json(kiln_report_out_t *o, const kiln_report_t *r,
                                  kiln_report_kind_t *k)
{
    kiln_profile_t *p = &k->p;
    uint32_t n = p->count;
    kiln_report_deltas(r, k);
    kiln_count_t *tb = k->has_before ? kiln_report_totals(p, k->before, k->nbefore) : NULL;
    /* Weights compare trie counts with interval cells in the input's unit. */
    double unit = p->scale ? KILN_COUNT_FRAC_UNIT : 1;
    double *ivs = kiln_util_xcalloc(n, sizeof *ivs);
    for (size_t j = 0; j < k->niv; j++)
        for (size_t c = 0; c < k->iv[j].n; c++)
            ivs[k->iv[j].node[c]] += fabs(k->iv[j].value[c]);
    for (uint32_t i = n; i-- > 1;)
        ivs[p->nodes[i].parent] += ivs[i];
    double *w = kiln_util_xmalloc((size_t)n * sizeof *w);
    for (uint32_t i = 0; i < n; i++) {
        w[i] = (double)p->nodes[i].total / unit;
        if (tb && (double)tb[i] / unit > w[i])
            w[i] = (double)tb[i] / unit;
        if (ivs[i] > w[i])
            w[i] = ivs[i];
    }
    /* The weight a node needs to be kept: the max_nodes-th heaviest. */
    double t = 0;
    bool pruned = false;
    if ((long)n > r->max_nodes) {
        double *sorted = kiln_util_xmalloc((size_t)n * sizeof *sorted);
        memcpy(sorted, w, (size_t)n * sizeof *sorted);
        qsort(sorted, n, sizeof *sorted, kiln_report_cmp_desc);
        t = nextafter(sorted[r->max_nodes], INFINITY);
        free(sorted);
        pruned = true;
    }
    /* Pre-order, children in name order, pruned children into "rest". */
    uint32_t *idx = kiln_util_xmalloc((size_t)n * sizeof *idx);
    for (uint32_t i = 0; i < n; i++)
        idx[i] = KILN_NONE;
    size_t cap = 256, top = 0, ne = 0;
    kiln_report_item_t *stack = kiln_util_xmalloc(cap * sizeof *stack);
    uint32_t *order = kiln_util_xmalloc((size_t)n * sizeof *order);
    uint32_t *up = kiln_util_xmalloc((size_t)n * sizeof *up);
    kiln_count_t *rest = kiln_util_xcalloc(n, sizeof *rest);
    kiln_count_t *rest0 = kiln_util_xcalloc(n, sizeof *rest0);
    uint32_t *kids = NULL, prev_depth = 0;
    size_t kids_cap = 0, nrest = 0;
    stack[top++] = (kiln_report_item_t){0, 0};
    while (top) {
        kiln_report_item_t it = stack[--top];
        idx[it.node] = (uint32_t)ne;
        up[ne] = ne ? prev_depth + 1 - it.depth : 0;
        order[ne++] = it.node;
        prev_depth = it.depth;
        size_t kn = kiln_profile_children(p, it.node, &kids, &kids_cap);
        while (top + kn > cap)
            stack = kiln_util_xrealloc(stack, (cap *= 2) * sizeof *stack);
        for (size_t i = kn; i-- > 0;) {
            uint32_t c = kids[i];
            if (w[c] > 0 && w[c] >= t) {
                stack[top++] = (kiln_report_item_t){c, it.depth + 1};
            } else if (w[c] > 0) {
                if (rest[it.node] == 0 && rest0[it.node] == 0)
                    nrest++;
                rest[it.node] += p->nodes[c].total;
                if (tb)
                    rest0[it.node] += tb[c];
            }
        }
    }
    kiln_buf_adds(&o->b, "{\"kind\":");
    kiln_report_strz(&o->b, k->kind);
    kiln_buf_adds(&o->b, ",\"label\":");
    kiln_report_strz(&o->b, k->info->label ? k->info->label : k->kind);
    kiln_buf_adds(&o->b, ",\"unit\":");
    kiln_report_strz(&o->b, k->info->unit);
    kiln_buf_printf(&o->b, ",\"additive\":%s,\"pruned\":%s,\"nodes\":%u,\"kept\":%zu,\"total\":",
                    k->info->additive ? "true" : "false", pruned ? "true" : "false", n, ne);
    kiln_report_count(&o->b, p, p->nodes[0].total);
    if (tb) {
        kiln_buf_adds(&o->b, ",\"total0\":");
        kiln_report_count(&o->b, p, tb[0]);
    }
    if (strcmp(k->kind, "cpu") == 0) {
        kiln_buf_adds(&o->b, ",\"kernel\":");
        kiln_report_num(&o->b, kiln_report_kernel(p));
    }
    kiln_buf_adds(&o->b, ",\"up\":[");
    for (size_t i = 0; i < ne; i++) {
        kiln_buf_printf(&o->b, i ? ",%u" : "%u", up[i]);
        kiln_report_flush(o, false);
    }
    kiln_buf_adds(&o->b, "],\"name\":[");
    for (size_t i = 0; i < ne; i++) {
        const kiln_name_t *nm = kiln_profile_name(p, order[i]);
        kiln_buf_printf(&o->b, i ? ",%u" : "%u", kiln_names_intern(&o->names, nm->str, nm->len));
        kiln_report_flush(o, false);
    }
    kiln_buf_addc(&o->b, ']');
    /* Each node's hottest source line (stacks files), "file.c:42" as
     * kiln tree shows it: pairs of node index and name id. */
    bool any = false;
    kiln_buf_t where = {0};
    for (size_t i = 0; i < ne; i++) {
        where.len = 0;
        if (!kiln_stacks_where_short(p, order[i], &where))
            continue;
        kiln_buf_printf(&o->b, "%s%zu,%u", any ? "," : ",\"where\":[", i,
                        kiln_names_intern(&o->names, where.data, where.len));
        any = true;
        kiln_report_flush(o, false);
    }
    if (any)
        kiln_buf_addc(&o->b, ']');
    kiln_buf_free(&where);
    kiln_count_t *vals = kiln_util_xmalloc((ne ? ne : 1) * sizeof *vals);
    for (size_t i = 0; i < ne; i++)
        vals[i] = p->nodes[order[i]].self;
    kiln_report_counts(o, "self", p, vals, ne);
    if (tb) {
        for (size_t i = 0; i < ne; i++)
            vals[i] = order[i] < k->nbefore ? k->before[order[i]] : 0;
        kiln_report_counts(o, "self0", p, vals, ne);
    }
    free(vals);
    if (nrest) {
        kiln_buf_adds(&o->b, ",\"rest\":[");
        bool first = true;
        for (size_t i = 0; i < ne; i++) {
            uint32_t id = order[i];
            if (rest[id] == 0 && rest0[id] == 0)
                continue;
            kiln_buf_printf(&o->b, "%s%zu,", first ? "" : ",", i);
            kiln_report_count(&o->b, p, rest[id]);
            kiln_buf_addc(&o->b, ',');
            kiln_report_count(&o->b, p, rest0[id]);
            first = false;
            kiln_report_flush(o, false);
        }
        kiln_buf_addc(&o->b, ']');
    }
    if (pruned)
        kiln_report_top(o, p);
    if (k->niv) {
        kiln_buf_adds(&o->b, ",\"iv\":[");
        for (size_t j = 0; j < k->niv; j++) {
            const kiln_report_iv_t *iv = &k->iv[j];
            kiln_buf_printf(&o->b, "%s{\"p\":%zu,\"s\":%zu,\"c\":[", j ? "," : "", iv->proc,
                            iv->set);
            for (size_t c = 0; c < iv->n; c++) {
                /* A pruned node's count goes to its kept ancestor's rest:
                 * encoded -(index + 1). */
                uint32_t id = iv->node[c];
                long at;
                if (idx[id] != KILN_NONE) {
                    at = idx[id];
                } else {
                    while (idx[id] == KILN_NONE)
                        id = p->nodes[id].parent;
                    at = -(long)idx[id] - 1;
                }
                kiln_buf_printf(&o->b, "%s%ld,", c ? "," : "", at);
                kiln_report_num(&o->b, iv->value[c]);
                kiln_report_flush(o, false);
            }
            kiln_buf_adds(&o->b, "]}");
        }
        kiln_buf_addc(&o->b, ']');
    }
    kiln_finding_t *f = NULL;
    size_t nf = kiln_explain_profile(p, 1, k->kind, &f, 12);
    kiln_buf_adds(&o->b, ",\"findings\":[");
    for (size_t i = 0; i < nf; i++) {
        kiln_buf_adds(&o->b, i ? ",{\"share\":" : "{\"share\":");
        kiln_report_num(&o->b, f[i].share);
        kiln_buf_adds(&o->b, ",\"what\":");
        kiln_report_strz(&o->b, f[i].what);
        kiln_buf_adds(&o->b, ",\"title\":");
        kiln_report_strz(&o->b, f[i].title);
        kiln_buf_adds(&o->b, ",\"where\":");
        kiln_report_strz(&o->b, f[i].where);
        kiln_buf_adds(&o->b, ",\"advice\":");
        kiln_report_strz(&o->b, f[i].advice);
        kiln_buf_adds(&o->b, ",\"frame\":");
        kiln_report_strz(&o->b, f[i].frame);
        kiln_buf_addc(&o->b, '}');
    }
    kiln_buf_adds(&o->b, "]}");
    kiln_explain_free(f, nf);
    free(f);
    free(kids);
    free(stack);
    free(order);
    free(up);
    free(rest);
    free(rest0);
    free(idx);
    free(w);
    free(ivs);
    free(tb);
}

static void kiln_report_lines(kiln_report_out_t *o, const char *const *lines)
{
    for (size_t i = 0; lines[i]; i++)
        kiln_buf_adds(&o->b, lines[i]);
}

int kiln_report_html(FILE *out, kiln_report_t *r)
{
    kiln_report_out_t o = {.fp = out};
    kiln_names_init(&o.names);
    const char *title = r->title ? r->title : r->diff ? "kiln report: diff" : "kiln report";
    kiln_buf_adds(&o.b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                        "<meta name=\"generator\" content=\"kiln " KILN_VERSION "\">\n<title>");
    kiln_escape_xml(&o.b, title, strlen(title), 0);
    kiln_buf_adds(&o.b, "</title>\n<style>\n");
    kiln_report_lines(&o, kiln_report_style);
    kiln_buf_adds(&o.b, "</style>\n</head>\n<body>\n<noscript>This report draws its views "
                        "with JavaScript.</noscript>\n<div id=\"app\"></div>\n"
                        "<script type=\"application/json\" id=\"kiln-data\">{\"version\":1");
    kiln_buf_adds(&o.b, ",\"title\":");
    kiln_report_strz(&o.b, title);
    kiln_buf_printf(&o.b, ",\"diff\":%s", r->diff ? "true" : "false");
    if (r->diff) {
        kiln_buf_adds(&o.b, ",\"before\":");
        kiln_report_strz(&o.b, r->before_label);
        kiln_buf_adds(&o.b, ",\"after\":");
        kiln_report_strz(&o.b, r->after_label);
    }
    kiln_buf_adds(&o.b, ",\"procs\":[");
    for (size_t i = 0; i < r->nprocs; i++) {
        const kiln_report_proc_t *pr = &r->procs[i];
        kiln_buf_adds(&o.b, i ? ",{\"label\":" : "{\"label\":");
        kiln_report_strz(&o.b, pr->label);
        double period = -1;
        if (pr->prefix && pr->dir) {
            kiln_buf_t meta = {0};
            kiln_buf_printf(&meta, "%s/%s.meta.json", pr->dir, pr->prefix);
            /* No exit meta.json (a run still going, or files copied
             * without it) is no error: the period is optional. */
            struct stat st;
            char *v = lstat(meta.data, &st) == 0
                          ? kiln_sets_meta_string(meta.data, "sample_period_ns") : NULL;
            if (v) {
                period = strtod(v, NULL);
                free(v);
            }
            kiln_buf_free(&meta);
            if (period < 0 && pr->nsets) {
                /* No exit set (yet): the first interval set's meta. */
                size_t n;
                char **names = kiln_sets_list(pr->dir, &n);
                for (size_t j = 0; names && j < n && period < 0; j++) {
                    size_t pl = strlen(pr->prefix), nl = strlen(names[j]);
                    if (strncmp(names[j], pr->prefix, pl) == 0 && nl > 10 &&
                        strcmp(names[j] + nl - 10, ".meta.json") == 0) {
                        kiln_buf_printf(&meta, "%s/%s", pr->dir, names[j]);
                        char *p = kiln_sets_meta_string(meta.data, "sample_period_ns");
                        if (p) {
                            period = strtod(p, NULL);
                            free(p);
                        }
                        kiln_buf_free(&meta);
                    }
                }
                if (names)
                    kiln_sets_list_free(names, n);
            }
        }
        if (period > 0) {
            kiln_buf_adds(&o.b, ",\"period_ns\":");
            kiln_report_num(&o.b, period);
        }
        kiln_buf_adds(&o.b, ",\"sets\":[");
        for (size_t j = 0; j < pr->nsets; j++) {
            const kiln_report_set_t *s = &pr->sets[j];
            kiln_buf_adds(&o.b, j ? ",{\"t0\":" : "{\"t0\":");
            kiln_report_num(&o.b, s->t0);
            kiln_buf_adds(&o.b, ",\"t1\":");
            kiln_report_num(&o.b, s->t1);
            kiln_buf_adds(&o.b, ",\"live\":");
            kiln_report_num(&o.b, s->live_bytes);
            kiln_buf_adds(&o.b, ",\"alloc\":");
            kiln_report_num(&o.b, s->alloc_bytes);
            kiln_buf_adds(&o.b, ",\"samples\":");
            kiln_report_num(&o.b, s->samples);
            kiln_buf_printf(&o.b, ",\"cumulative\":%s}", s->cumulative ? "true" : "false");
        }
        kiln_buf_adds(&o.b, "]}");
    }
    kiln_buf_adds(&o.b, "],\"kinds\":[");
    for (size_t i = 0; i < r->nkinds; i++) {
        if (i)
            kiln_buf_addc(&o.b, ',');
        kiln_report_kind_json(&o, r, &r->kinds[i]);
        kiln_report_flush(&o, false);
    }
    kiln_buf_adds(&o.b, "]");
    if (r->leaks_text) {
        kiln_buf_adds(&o.b, ",\"leaks\":");
        kiln_report_strz(&o.b, r->leaks_text);
    }
    kiln_buf_adds(&o.b, ",\"names\":[");
    for (uint32_t i = 0; i < o.names.count; i++) {
        if (i)
            kiln_buf_addc(&o.b, ',');
        kiln_report_str(&o.b, o.names.names[i].str, o.names.names[i].len);
        kiln_report_flush(&o, false);
    }
    kiln_buf_adds(&o.b, "]}</script>\n<script>\n");
    kiln_report_lines(&o, kiln_report_script);
    kiln_buf_adds(&o.b, "</script>\n</body>\n</html>\n");
    kiln_report_flush(&o, true);
    kiln_buf_free(&o.b);
    kiln_names_free(&o.names);
    return ferror(out) ? -1 : 0;
}
