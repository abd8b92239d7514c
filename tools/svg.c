/* svg.c — lays out the profile trie as a flame graph and writes the SVG.
 * The geometry is flamegraph.pl's (x padding, frame height, self samples
 * before the children, alphabetical siblings, minwidth pruning), so the
 * same options give the same rectangles; each frame also carries its exact
 * start and count (kiln:s, kiln:n) for the script's zoom and search. */
#include "kiln.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KILN_SVG_NS "urn:x-kiln:flamegraph"
#define KILN_SVG_XPAD 10.0
#define KILN_SVG_FRAMEPAD 1.0

typedef struct kiln_svg_item_s {
    uint32_t node;
    uint32_t depth;
} kiln_svg_item_t;

/* Exact numbers for the script: integers as such, fractions in full. */
static void kiln_svg_num(kiln_buf_t *b, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        kiln_buf_printf(b, "%.0f", v);
    else
        kiln_buf_printf(b, "%.17g", v);
}

/* A JS string literal inside CDATA: JSON rules, and no '<' '>' '&' so that
 * "]]>" can never appear. */
static void kiln_svg_js_string(kiln_buf_t *b, const char *s)
{
    kiln_buf_t tmp = {0};
    kiln_escape_json(&tmp, s, strlen(s));
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

static void kiln_svg_text(kiln_buf_t *b, const char *s)
{
    kiln_escape_xml(b, s, strlen(s), 0);
}

static int kiln_svg_cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

/* The smallest total a drawn frame may have. With no explicit --minwidth,
 * the default 0.1 px is raised until at most frame_budget frames remain, so
 * any input gives an SVG of a few MB that opens fast. */
static double kiln_svg_threshold(const kiln_profile_t *p, const kiln_svg_opts_t *o,
                                 double wpt, bool *budget_hit)
{
    double total = p->nodes[0].total;
    double t = o->minwidth_pct ? o->minwidth / 100.0 * total : o->minwidth / wpt;
    *budget_hit = false;
    if (o->minwidth_set || o->frame_budget <= 0)
        return t;
    size_t n = 0, cap = 1024;
    double *totals = kiln_util_xmalloc(cap * sizeof *totals);
    for (uint32_t i = 0; i < p->count; i++) {
        double v = p->nodes[i].total;
        if (v > 0 && v >= t) {
            if (n == cap) {
                cap *= 2;
                totals = kiln_util_xrealloc(totals, cap * sizeof *totals);
            }
            totals[n++] = v;
        }
    }
    if (n > (size_t)o->frame_budget) {
        /* Nodes reachable only through pruned parents are counted too; that
         * only makes the cut stricter, never the file larger. */
        size_t k = (size_t)o->frame_budget;
        qsort(totals, n, sizeof *totals, kiln_svg_cmp_desc);
        /* Strictly above the k-th largest: ties never push past the budget. */
        t = nextafter(totals[k], INFINITY);
        *budget_hit = true;
    }
    free(totals);
    return t;
}

static double kiln_svg_delta(const kiln_profile_t *p, uint32_t id)
{
    return p->delta ? p->delta[id] : 0;
}

static bool kiln_svg_kept(const kiln_node_t *n, double t) { return n->total > 0 && n->total >= t; }

/* Positions every kept frame (start in samples, into p->start) and
 * returns the deepest depth. Pre-order with an explicit stack: stacks can
 * be deeper than the C stack. */
static uint32_t kiln_svg_layout(kiln_profile_t *p, double t)
{
    uint32_t *kids = NULL, depth_max = 0;
    size_t kids_cap = 0, top = 0, cap = 256;
    kiln_svg_item_t *stack = kiln_util_xmalloc(cap * sizeof *stack);
    double *start = kiln_profile_starts(p);
    if (!p->flamechart)
        start[0] = 0;
    stack[top++] = (kiln_svg_item_t){0, 0};
    while (top) {
        kiln_svg_item_t it = stack[--top];
        kiln_node_t *n = &p->nodes[it.node];
        if (it.depth > depth_max)
            depth_max = it.depth;
        size_t k = kiln_profile_children(p, it.node, &kids, &kids_cap);
        double x = start[it.node] + n->self;
        if (top + k > cap) {
            while (top + k > cap)
                cap *= 2;
            stack = kiln_util_xrealloc(stack, cap * sizeof *stack);
        }
        for (size_t i = 0; i < k; i++) {
            if (!p->flamechart)
                start[kids[i]] = x;
            x += p->nodes[kids[i]].total;
        }
        for (size_t i = k; i-- > 0;)
            if (kiln_svg_kept(&p->nodes[kids[i]], t))
                stack[top++] = (kiln_svg_item_t){kids[i], it.depth + 1};
    }
    free(stack);
    free(kids);
    return depth_max;
}

static void kiln_svg_header(FILE *out, const kiln_profile_t *p, const kiln_svg_opts_t *o,
                            double height, double ypad2, double y0, bool diff)
{
    kiln_buf_t b = {0};
    double w = o->width, fs = o->font_size;
    kiln_buf_printf(&b,
                    "<?xml version=\"1.0\" standalone=\"no\"?>\n"
                    "<svg version=\"1.1\" width=\"%.0f\" height=\"%.0f\" onload=\"init(evt)\" "
                    "viewBox=\"0 0 %.0f %.0f\" xmlns=\"http://www.w3.org/2000/svg\" "
                    "xmlns:xlink=\"http://www.w3.org/1999/xlink\" xmlns:kiln=\"" KILN_SVG_NS
                    "\">\n<!-- Flame graph stack visualization by kiln " KILN_VERSION
                    ". Click a frame to zoom, Ctrl-F to search. -->\n",
                    w, height, w, height);
    if (o->notes) {
        kiln_buf_adds(&b, "<desc id=\"notes\">");
        kiln_svg_text(&b, o->notes);
        kiln_buf_adds(&b, "</desc>\n");
    }
    bool hot = o->palette == KILN_PAL_HOT && !diff;
    kiln_buf_printf(&b,
                    "<defs>\n<linearGradient id=\"background\" y1=\"0\" y2=\"1\" x1=\"0\" "
                    "x2=\"0\">\n<stop stop-color=\"%s\" offset=\"5%%\"/>\n<stop "
                    "stop-color=\"%s\" offset=\"95%%\"/>\n</linearGradient>\n</defs>\n",
                    hot ? "#eeeeee" : "#f8f8f8", hot ? "#eeeeb0" : "#e8e8e8");
    kiln_buf_adds(&b, "<style type=\"text/css\"><![CDATA[\n");
    for (size_t i = 0; kiln_svg_style[i]; i++)
        kiln_buf_adds(&b, kiln_svg_style[i]);
    kiln_buf_printf(&b, "text { font-size: %.17gpx; }\n#title { font-size: %.17gpx; }\n"
                        "]]></style>\n", fs, fs + 5);
    kiln_buf_adds(&b, "<script type=\"text/ecmascript\"><![CDATA[\nvar kiln_cfg = {");
    kiln_buf_printf(&b, "width: %.17g, xpad: %.17g, frame_height: %.17g, font_size: %.17g, "
                        "font_width: %.17g, inverted: %s, y0: %.17g, total: ",
                    w, KILN_SVG_XPAD, o->frame_height, fs, o->font_width,
                    o->inverted ? "true" : "false", y0);
    kiln_svg_num(&b, p->nodes[0].total);
    /* The script shows count * factor: counts kept in thousandths
     * (fractional input) come with a factor a million times smaller. */
    kiln_buf_printf(&b, ", factor: %.17g, diff: %s, countname: ",
                    p->scale ? o->factor / KILN_COUNT_FRAC_UNIT : o->factor,
                    diff ? "true" : "false");
    kiln_svg_js_string(&b, o->countname);
    kiln_buf_adds(&b, ", nametype: ");
    kiln_svg_js_string(&b, o->nametype);
    kiln_buf_adds(&b, "};\n");
    for (size_t i = 0; kiln_svg_script[i]; i++)
        kiln_buf_adds(&b, kiln_svg_script[i]);
    kiln_buf_adds(&b, "]]></script>\n");
    kiln_buf_printf(&b, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
                        "fill=\"url(#background)\"/>\n", w, height);
    kiln_buf_printf(&b, "<text id=\"title\" x=\"%.2f\" y=\"%.2f\">", w / 2, fs * 2);
    kiln_svg_text(&b, o->title);
    kiln_buf_adds(&b, "</text>\n");
    if (o->subtitle) {
        kiln_buf_printf(&b, "<text id=\"subtitle\" x=\"%.2f\" y=\"%.2f\">", w / 2, fs * 4);
        kiln_svg_text(&b, o->subtitle);
        kiln_buf_adds(&b, "</text>\n");
    }
    kiln_buf_printf(&b, "<text id=\"details\" x=\"%.2f\" y=\"%.2f\"> </text>\n", KILN_SVG_XPAD,
                    height - ypad2 / 2);
    kiln_buf_printf(&b, "<text id=\"unzoom\" class=\"hide\" x=\"%.2f\" y=\"%.2f\">Reset Zoom"
                        "</text>\n", KILN_SVG_XPAD, fs * 2);
    kiln_buf_printf(&b, "<text id=\"search\" x=\"%.2f\" y=\"%.2f\">Search</text>\n",
                    w - KILN_SVG_XPAD - 100, fs * 2);
    kiln_buf_printf(&b, "<text id=\"ignorecase\" x=\"%.2f\" y=\"%.2f\">ic</text>\n",
                    w - KILN_SVG_XPAD - 16, fs * 2);
    kiln_buf_printf(&b, "<text id=\"matched\" x=\"%.2f\" y=\"%.2f\"> </text>\n",
                    w - KILN_SVG_XPAD - 100, height - ypad2 / 2);
    fwrite(b.data, 1, b.len, out);
    kiln_buf_free(&b);
}

int kiln_svg_write(FILE *out, kiln_profile_t *p, const kiln_svg_opts_t *o)
{
    double total = p->nodes[0].total;
    if (!(total > 0)) {
        kiln_util_err("nothing to draw: the total count is zero");
        return -1;
    }
    bool diff = p->has_delta;
    double fs = o->font_size, fh = o->frame_height;
    double wpt = (o->width - 2 * KILN_SVG_XPAD) / total;
    bool budget_hit;
    double t = kiln_svg_threshold(p, o, wpt, &budget_hit);
    uint32_t depth_max = kiln_svg_layout(p, t);
    double ypad1 = fs * 3, ypad2 = fs * 2 + 10;
    if (o->subtitle)
        ypad1 += fs * 2;
    double height = (depth_max + 1) * fh + ypad1 + ypad2;
    double y0 = o->inverted ? ypad1 : height - ypad2 - fh + KILN_SVG_FRAMEPAD;

    double max_abs = 0;
    if (diff)
        for (uint32_t i = 0; i < p->count; i++)
            if (kiln_svg_kept(&p->nodes[i], t) && fabs(kiln_svg_delta(p, i)) > max_abs)
                max_abs = fabs(kiln_svg_delta(p, i));

    kiln_svg_header(out, p, o, height, ypad2, y0, diff);
    fputs("<g id=\"frames\">\n", out);
    kiln_buf_t b = {0};
    uint64_t seed = 0;
    uint32_t *kids = NULL;
    size_t kids_cap = 0, top = 0, cap = 256;
    kiln_svg_item_t *stack = kiln_util_xmalloc(cap * sizeof *stack);
    stack[top++] = (kiln_svg_item_t){0, 0};
    while (top) {
        kiln_svg_item_t it = stack[--top];
        const kiln_node_t *n = &p->nodes[it.node];
        const kiln_name_t *nm = &p->names.names[n->name];
        double x0 = p->start[it.node], delta = kiln_svg_delta(p, it.node);
        double x1 = KILN_SVG_XPAD + x0 * wpt;
        double x2 = KILN_SVG_XPAD + (x0 + n->total) * wpt;
        double y1, y2;
        if (o->inverted) {
            y1 = ypad1 + it.depth * fh;
            y2 = ypad1 + (it.depth + 1) * fh - KILN_SVG_FRAMEPAD;
        } else {
            y1 = height - ypad2 - (it.depth + 1) * fh + KILN_SVG_FRAMEPAD;
            y2 = height - ypad2 - it.depth * fh;
        }
        b.len = 0;
        kiln_buf_adds(&b, "<g>\n<title>");
        kiln_escape_xml(&b, nm->str, nm->len, 0);
        kiln_buf_adds(&b, " (");
        if (o->factor == 1)
            kiln_profile_fmt(&b, p, n->total, true); /* exact */
        else
            kiln_util_fmt_count(&b, kiln_profile_value(p, n->total) * o->factor, true);
        kiln_buf_addc(&b, ' ');
        kiln_svg_text(&b, o->countname);
        if (it.node == 0)
            kiln_buf_adds(&b, ", 100%");
        else
            kiln_buf_printf(&b, ", %.2f%%", 100.0 * (double)n->total / total);
        if (diff) {
            double dp = 100 * delta / total;
            kiln_buf_printf(&b, "; %s%.2f%%", dp > 0 ? "+" : "", dp);
        }
        /* The frame's hottest source line, inside the parentheses: the
         * script takes the name as what precedes the last " (". */
        size_t at = b.len;
        kiln_buf_adds(&b, "; at ");
        if (kiln_stacks_where_short(p, it.node, &b)) {
            kiln_buf_t esc = {0};
            kiln_escape_xml(&esc, b.data + at, b.len - at, 0);
            b.len = at;
            kiln_buf_add(&b, esc.data, esc.len);
            kiln_buf_free(&esc);
        } else {
            b.len = at;
        }
        kiln_buf_printf(&b, ")</title><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                            "height=\"%.1f\" fill=\"", x1, y1, x2 - x1, y2 - y1);
        if (diff)
            kiln_color_diff(&b, delta, max_abs);
        else
            kiln_color_frame(&b, o->palette, o->hash, nm->str, nm->len, &seed);
        kiln_buf_adds(&b, "\" rx=\"2\" ry=\"2\" kiln:s=\"");
        kiln_svg_num(&b, x0);
        kiln_buf_adds(&b, "\" kiln:n=\"");
        kiln_svg_num(&b, n->total);
        if (diff) {
            kiln_buf_adds(&b, "\" kiln:d=\"");
            kiln_svg_num(&b, delta);
        }
        kiln_buf_printf(&b, "\"/>\n<text x=\"%.2f\" y=\"%.2f\">", x1 + 3, 3 + (y1 + y2) / 2);
        long chars = (long)((x2 - x1) / (fs * o->font_width));
        if (chars >= 3)
            kiln_escape_xml(&b, nm->str, nm->len, (size_t)chars);
        kiln_buf_adds(&b, "</text>\n</g>\n");
        fwrite(b.data, 1, b.len, out);

        size_t k = kiln_profile_children(p, it.node, &kids, &kids_cap);
        if (top + k > cap) {
            while (top + k > cap)
                cap *= 2;
            stack = kiln_util_xrealloc(stack, cap * sizeof *stack);
        }
        for (size_t i = k; i-- > 0;)
            if (kiln_svg_kept(&p->nodes[kids[i]], t))
                stack[top++] = (kiln_svg_item_t){kids[i], it.depth + 1};
    }
    fputs("</g>\n</svg>\n", out);
    if (budget_hit)
        fprintf(stderr, "kiln: note: frames narrower than %.3g %s left out to keep the SVG "
                        "small (use --minwidth to choose)\n",
                t * o->factor / (p->scale ? KILN_COUNT_FRAC_UNIT : 1), o->countname);
    free(stack);
    free(kids);
    kiln_buf_free(&b);
    return 0;
}
