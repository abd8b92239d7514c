/* svg.c — lays out the profile trie as a flame graph and writes the SVG.
 * The geometry is flamegraph.pl's (x padding, frame height, self samples
 * before the children, alphabetical siblings, minwidth pruning), so the
 * same options give the same rectangles, and so are its colours (color.c),
 * annotations (perf's _[k] _[j] _[i] _[w] stripped from what is shown, kept
 * for colour), separators (grey "--" and "-"), --cp palette map, --nameattr
 * and --total. Each frame also carries its exact start and count (kiln:s,
 * kiln:n) for the script's zoom and search; frames the size budget leaves
 * out but flamegraph.pl would draw are listed for the search. */
#include "kiln.h"

#include <errno.h>
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

/* pprof's simplified names: parameter lists and template arguments
 * dropped ("ns::Map<int>::find(int const&) const" -> "ns::Map::find"),
 * "operator()" and the like kept. Bracketed markers stay as they are. */
static void kiln_svg_simplify(kiln_buf_t *b, const char *s, size_t len)
{
    size_t start = b->len;
    int angle = 0, paren = 0;
    if (len && s[0] == '[') {
        kiln_buf_add(b, s, len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (len - i > 9 && memcmp(s + i, "operator", 8) == 0 && strchr("<>()", s[i + 8])) {
            size_t n = s[i + 8] == '(' && s[i + 9] == ')' ? 10 : s[i + 9] == s[i + 8] ? 10 : 9;
            if (angle == 0 && paren == 0)
                kiln_buf_add(b, s + i, n);
            i += n - 1;
            continue;
        }
        if (c == '<') { angle++; continue; }
        if (c == '>' && angle > 0) { angle--; continue; }
        if (c == '(') { paren++; continue; }
        if (c == ')' && paren > 0) { paren--; continue; }
        if (angle == 0 && paren == 0)
            kiln_buf_addc(b, c);
    }
    while (b->len > start && b->data[b->len - 1] == ' ')
        b->data[--b->len] = '\0';
    if (b->len - start > 6 && strcmp(b->data + b->len - 6, " const") == 0)
        b->data[b->len -= 6] = '\0';
    if (b->len == start)
        kiln_buf_add(b, s, len);
}

/* A copy of P with every frame renamed: simplified (SHORT: frames that
 * become equal merge) and, for the chain palette, frames after the first
 * "--" separator marked as wakers ("_[w]", as flamegraph.pl annotates
 * them). Self counts and own deltas carried over. */
static void kiln_svg_rename(kiln_profile_t *p, bool short_names, bool chain)
{
    kiln_profile_t q;
    kiln_profile_init(&q, p->flamechart);
    q.scale = p->scale; /* the counts are carried as they are */
    double *own = NULL;
    if (p->delta) {
        own = kiln_util_xmalloc((size_t)p->count * sizeof *own);
        memcpy(own, p->delta, (size_t)p->count * sizeof *own);
        for (uint32_t i = 1; i < p->count; i++)
            own[p->nodes[i].parent] -= p->delta[i];
    }
    uint32_t *map = kiln_util_xmalloc((size_t)p->count * sizeof *map);
    bool *waker = kiln_util_xcalloc(p->count, sizeof *waker);
    kiln_buf_t b = {0};
    map[0] = 0;
    for (uint32_t i = 1; i < p->count; i++) {
        const kiln_name_t *nm = kiln_profile_name(p, i);
        bool sep = nm->len == 2 && memcmp(nm->str, "--", 2) == 0;
        uint32_t par = p->nodes[i].parent;
        waker[i] = waker[par] || (sep && par != 0 && chain);
        b.len = 0;
        if (short_names)
            kiln_svg_simplify(&b, nm->str, nm->len);
        else
            kiln_buf_add(&b, nm->str, nm->len);
        if (waker[par] && !sep)
            kiln_buf_adds(&b, "_[w]");
        map[i] = kiln_profile_child(&q, map[p->nodes[i].parent],
                                    kiln_names_intern(&q.names, b.data, b.len));
        if (q.flamechart)
            q.start[map[i]] = p->start[i];
        q.cursor = 0;
        kiln_profile_add(&q, map[i], p->nodes[i].self, own ? own[i] : 0);
    }
    q.has_delta = p->has_delta;
    kiln_profile_finish(&q);
    /* Each renamed frame keeps the hottest source line of the heaviest
     * frame merged into it (stacks files; tooltips show it). */
    if (p->where) {
        q.where = kiln_util_xmalloc((size_t)q.count * sizeof *q.where);
        q.where_cap = q.count;
        kiln_count_t *best = kiln_util_xcalloc(q.count, sizeof *best);
        for (uint32_t i = 0; i < q.count; i++)
            q.where[i] = KILN_NONE;
        for (uint32_t i = 1; i < p->count; i++) {
            size_t len;
            const char *w = kiln_stacks_where(p, i, &len);
            if (w && (q.where[map[i]] == KILN_NONE || p->nodes[i].total > best[map[i]])) {
                q.where[map[i]] = kiln_names_intern(&q.names, w, len);
                best[map[i]] = p->nodes[i].total;
            }
        }
        free(best);
    }
    kiln_buf_free(&b);
    free(map);
    free(waker);
    free(own);
    kiln_profile_free(p);
    *p = q;
}

/* --cp: flamegraph.pl's palette.map, "NAME->rgb(r,g,b)" a line. */
typedef struct kiln_svg_palmap_s {
    kiln_names_t names;
    char **colors; /* by name id */
    uint32_t cap;
} kiln_svg_palmap_t;

static void kiln_svg_palmap_set(kiln_svg_palmap_t *m, const char *name, size_t len,
                                const char *color, size_t clen)
{
    uint32_t id = kiln_names_intern(&m->names, name, len);
    if (id >= m->cap) {
        uint32_t cap = m->cap ? m->cap : 64;
        while (cap <= id)
            cap *= 2;
        m->colors = kiln_util_xrealloc(m->colors, cap * sizeof *m->colors);
        memset(m->colors + m->cap, 0, (cap - m->cap) * sizeof *m->colors);
        m->cap = cap;
    }
    if (!m->colors[id])
        m->colors[id] = strndup(color, clen);
}

static void kiln_svg_palmap_read(kiln_svg_palmap_t *m, const char *path)
{
    kiln_names_init(&m->names);
    kiln_buf_t f = {0};
    if (kiln_buf_read_file(&f, path, 64u << 20) != 0)
        return; /* no map yet: this run starts it */
    for (char *line = f.data; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char *arrow = NULL;
        for (size_t i = 0; i + 1 < n; i++)
            if (line[i] == '-' && line[i + 1] == '>')
                arrow = line + i;
        if (arrow)
            kiln_svg_palmap_set(m, line, (size_t)(arrow - line), arrow + 2,
                                n - (size_t)(arrow + 2 - line));
        line = nl ? nl + 1 : NULL;
    }
    kiln_buf_free(&f);
}

static int kiln_svg_palmap_cmp(const void *a, const void *b, void *ctx)
{
    return kiln_names_cmp(ctx, *(const uint32_t *)a, *(const uint32_t *)b);
}

static int kiln_svg_palmap_write(kiln_svg_palmap_t *m, const char *path)
{
    uint32_t *ids = kiln_util_xmalloc((m->names.count + 1) * sizeof *ids);
    for (uint32_t i = 0; i < m->names.count; i++)
        ids[i] = i;
    qsort_r(ids, m->names.count, sizeof *ids, kiln_svg_palmap_cmp, &m->names);
    kiln_out_t out;
    int rc = kiln_out_open(&out, path);
    if (rc == 0) {
        for (uint32_t i = 0; i < m->names.count; i++) {
            const kiln_name_t *nm = &m->names.names[ids[i]];
            fprintf(out.fp, "%.*s->%s\n", (int)nm->len, nm->str, m->colors[ids[i]]);
        }
        rc = kiln_out_commit(&out);
    }
    free(ids);
    return rc;
}

static void kiln_svg_palmap_free(kiln_svg_palmap_t *m)
{
    for (uint32_t i = 0; i < m->cap; i++)
        free(m->colors[i]);
    free(m->colors);
    kiln_names_free(&m->names);
}

/* --nameattr: "FUNCTION<tab>name=value<tab>..." a line; the attributes go
 * on the function's <g> (a "title" replaces its tooltip). */
typedef struct kiln_svg_attrs_s {
    kiln_names_t names;
    char **attrs, **titles; /* by name id */
} kiln_svg_attrs_t;

static int kiln_svg_attrs_read(kiln_svg_attrs_t *a, const char *path)
{
    kiln_names_init(&a->names);
    a->attrs = a->titles = NULL;
    kiln_buf_t f = {0};
    if (kiln_buf_read_file(&f, path, 64u << 20) != 0) {
        kiln_util_err("%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    long lineno = 0;
    int rc = 0;
    for (char *line = f.data; line && *line && rc == 0;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        char *tab = strchr(line, '\t');
        if (!tab) {
            kiln_util_err("%s:%ld: expected 'FUNCTION<tab>name=value...'", path, lineno);
            rc = -1;
            break;
        }
        uint32_t id = kiln_names_intern(&a->names, line, (size_t)(tab - line));
        a->attrs = kiln_util_xrealloc(a->attrs, a->names.count * sizeof *a->attrs);
        a->titles = kiln_util_xrealloc(a->titles, a->names.count * sizeof *a->titles);
        kiln_buf_t b = {0};
        char *title = NULL;
        for (char *kv = tab + 1; kv;) {
            char *next = strchr(kv, '\t');
            if (next)
                *next++ = '\0';
            char *eq = strchr(kv, '=');
            if (eq && eq > kv) {
                *eq = '\0';
                bool ok = strspn(kv, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-") == strlen(kv);
                if (strcmp(kv, "title") == 0) {
                    free(title);
                    title = kiln_util_xstrdup(eq + 1);
                } else if (ok) {
                    kiln_buf_printf(&b, " %s=\"", kv);
                    kiln_svg_text(&b, eq + 1);
                    kiln_buf_addc(&b, '"');
                }
            }
            kv = next;
        }
        a->attrs[id] = b.data;
        a->titles[id] = title;
        line = nl ? nl + 1 : NULL;
    }
    kiln_buf_free(&f);
    return rc;
}

static void kiln_svg_attrs_free(kiln_svg_attrs_t *a)
{
    for (uint32_t i = 0; a->attrs && i < a->names.count; i++) {
        free(a->attrs[i]);
        free(a->titles[i]);
    }
    free(a->attrs);
    free(a->titles);
    kiln_names_free(&a->names);
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

static void kiln_svg_header(FILE *out, const kiln_svg_opts_t *o, double timemax, double unit,
                            double height, double ypad2, double y0, bool diff,
                            const kiln_buf_t *extra)
{
    kiln_buf_t b = {0};
    double w = o->width, fs = o->font_size;
    const char *bg1, *bg2;
    kiln_color_background(o->bgcolors, o->palette, &bg1, &bg2);
    kiln_buf_adds(&b, "<?xml version=\"1.0\"");
    if (o->encoding) {
        kiln_buf_adds(&b, " encoding=\"");
        kiln_svg_text(&b, o->encoding);
        kiln_buf_addc(&b, '"');
    }
    kiln_buf_printf(&b,
                    " standalone=\"no\"?>\n"
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
    kiln_buf_printf(&b,
                    "<defs>\n<linearGradient id=\"background\" y1=\"0\" y2=\"1\" x1=\"0\" "
                    "x2=\"0\">\n<stop stop-color=\"%s\" offset=\"5%%\"/>\n<stop "
                    "stop-color=\"%s\" offset=\"95%%\"/>\n</linearGradient>\n</defs>\n",
                    bg1, bg2);
    kiln_buf_adds(&b, "<style type=\"text/css\"><![CDATA[\n");
    for (size_t i = 0; kiln_svg_style[i]; i++)
        kiln_buf_adds(&b, kiln_svg_style[i]);
    if (o->fonttype) {
        /* The font name is the user's: kept to characters CSS takes as is. */
        kiln_buf_adds(&b, "text { font-family: ");
        for (const char *c = o->fonttype; *c; c++)
            if (*c == ' ' || *c == ',' || *c == '-' || *c == '_' || (*c >= '0' && *c <= '9') ||
                (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'))
                kiln_buf_addc(&b, *c);
        kiln_buf_adds(&b, "; }\n");
    }
    kiln_buf_printf(&b, "text { font-size: %.17gpx; }\n#title { font-size: %.17gpx; }\n"
                        "]]></style>\n", fs, fs + 5);
    kiln_buf_adds(&b, "<script type=\"text/ecmascript\"><![CDATA[\nvar kiln_cfg = {");
    kiln_buf_printf(&b, "width: %.17g, xpad: %.17g, frame_height: %.17g, font_size: %.17g, "
                        "font_width: %.17g, inverted: %s, y0: %.17g, total: ",
                    w, KILN_SVG_XPAD, o->frame_height, fs, o->font_width,
                    o->inverted ? "true" : "false", y0);
    kiln_svg_num(&b, timemax);
    /* The script shows count * factor: counts kept in thousandths
     * (fractional input) come with a factor a thousand times smaller. */
    kiln_buf_printf(&b, ", factor: %.17g, diff: %s, countname: ", o->factor / unit,
                    diff ? "true" : "false");
    kiln_svg_js_string(&b, o->countname);
    kiln_buf_adds(&b, ", nametype: ");
    kiln_svg_js_string(&b, o->nametype);
    if (extra && extra->len) {
        kiln_buf_adds(&b, ",\n");
        kiln_buf_add(&b, extra->data, extra->len);
    }
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

/* About 25 bytes each: the list adds at most a few MB to the SVG. */
#define KILN_SVG_EXTRA_MAX 150000

/* The frames flamegraph.pl would draw (at least T_FG wide) that the size
 * budget (T) left out, for the search: "extra: [name, start, count, depth,
 * ...]" and their names. Starts must have been laid out with T_FG. */
static void kiln_svg_extra(kiln_buf_t *out, const kiln_profile_t *p, double t_fg, double t)
{
    kiln_names_t names;
    kiln_names_init(&names);
    kiln_buf_t list = {0};
    uint32_t *kids = NULL;
    size_t kcap = 0, top = 0, cap = 256, n = 0;
    kiln_svg_item_t *stack = kiln_util_xmalloc(cap * sizeof *stack);
    bool complete = true;
    stack[top++] = (kiln_svg_item_t){0, 0};
    while (top) {
        kiln_svg_item_t it = stack[--top];
        const kiln_node_t *nd = &p->nodes[it.node];
        if (!kiln_svg_kept(nd, t)) {
            if (n == KILN_SVG_EXTRA_MAX) {
                complete = false;
                break;
            }
            const kiln_name_t *nm = kiln_profile_name(p, it.node);
            kiln_buf_printf(&list, "%s%u,", n ? "," : "",
                            kiln_names_intern(&names, nm->str, kiln_color_strip(nm->str, nm->len)));
            kiln_svg_num(&list, p->start[it.node]);
            kiln_buf_addc(&list, ',');
            kiln_svg_num(&list, nd->total);
            kiln_buf_printf(&list, ",%u", it.depth);
            n++;
        }
        size_t k = kiln_profile_children(p, it.node, &kids, &kcap);
        while (top + k > cap)
            stack = kiln_util_xrealloc(stack, (cap *= 2) * sizeof *stack);
        for (size_t i = k; i-- > 0;)
            if (kiln_svg_kept(&p->nodes[kids[i]], t_fg))
                stack[top++] = (kiln_svg_item_t){kids[i], it.depth + 1};
    }
    if (n) {
        kiln_buf_printf(out, "extra_complete: %s,\nextra_names: [", complete ? "true" : "false");
        for (uint32_t i = 0; i < names.count; i++) {
            if (i)
                kiln_buf_addc(out, ',');
            kiln_buf_t name = {0};
            kiln_buf_add(&name, names.names[i].str, names.names[i].len);
            kiln_svg_js_string(out, name.data);
            kiln_buf_free(&name);
        }
        kiln_buf_adds(out, "],\nextra: [");
        kiln_buf_add(out, list.data, list.len);
        kiln_buf_addc(out, ']');
    }
    kiln_buf_free(&list);
    kiln_names_free(&names);
    free(stack);
    free(kids);
}

int kiln_svg_write(FILE *out, kiln_profile_t *p, const kiln_svg_opts_t *o)
{
    if (o->short_names || o->palette == KILN_PAL_CHAIN)
        kiln_svg_rename(p, o->short_names, o->palette == KILN_PAL_CHAIN);
    double total = (double)p->nodes[0].total;
    if (!(total > 0)) {
        kiln_util_err("nothing to draw: the total count is zero");
        return -1;
    }
    /* Geometry is in the profile's own units: thousandths once a fraction
     * was read. UNIT turns them back into the input's counts. */
    double unit = p->scale ? KILN_COUNT_FRAC_UNIT : 1;
    /* --total: what 100% is (flamegraph.pl ignores a value below the sum). */
    double timemax = total;
    if (o->total > 0 && o->total * unit < total) {
        if (o->total * unit / total > 0.02)
            kiln_util_err("note: --total %.17g is less than the actual total %.17g, so ignored",
                          o->total, total / unit);
    } else if (o->total > 0) {
        timemax = o->total * unit;
    }
    kiln_svg_attrs_t attrs = {0};
    if (o->nameattr && kiln_svg_attrs_read(&attrs, o->nameattr) != 0) {
        kiln_svg_attrs_free(&attrs);
        return -1;
    }
    /* Profile name id -> --nameattr entry. */
    uint32_t *amap = NULL, namap = 0;
    if (o->nameattr) {
        namap = p->names.count;
        amap = kiln_util_xmalloc((size_t)namap * sizeof *amap);
        for (uint32_t i = 0; i < namap; i++)
            amap[i] = KILN_NONE;
        for (uint32_t a = 0; a < attrs.names.count; a++) {
            uint32_t id = kiln_names_intern(&p->names, attrs.names.names[a].str,
                                            attrs.names.names[a].len);
            if (id < namap)
                amap[id] = a;
        }
    }
    kiln_svg_palmap_t palmap = {0};
    if (o->palette_map)
        kiln_svg_palmap_read(&palmap, o->palette_map);
    bool diff = p->has_delta;
    double fs = o->font_size, fh = o->frame_height;
    double wpt = (o->width - 2 * KILN_SVG_XPAD) / timemax;
    bool budget_hit;
    double t = kiln_svg_threshold(p, o, wpt, &budget_hit);
    kiln_buf_t extra = {0};
    if (budget_hit) {
        /* Lay out down to flamegraph.pl's own minimum width first, so the
         * search also sees the frames it would draw. */
        double t_fg = o->minwidth_pct ? o->minwidth / 100.0 * timemax : o->minwidth / wpt;
        kiln_svg_layout(p, t_fg);
        kiln_svg_extra(&extra, p, t_fg, t);
    }
    uint32_t depth_max = kiln_svg_layout(p, t);
    double ypad1 = fs * 3, ypad2 = fs * 2 + 10;
    if (o->subtitle)
        ypad1 += fs * 2;
    double height = (depth_max + 1) * fh + ypad1 + ypad2;
    double y0 = o->inverted ? ypad1 : height - ypad2 - fh + KILN_SVG_FRAMEPAD;

    /* Differential colour is each frame's own change (flamegraph.pl's:
     * the stacks that end at it), not its subtree's. */
    double *own = NULL, max_abs = 1;
    if (diff) {
        own = kiln_util_xcalloc(p->count, sizeof *own);
        if (p->delta) {
            memcpy(own, p->delta, (size_t)p->count * sizeof *own);
            for (uint32_t i = 1; i < p->count; i++)
                own[p->nodes[i].parent] -= p->delta[i];
        }
        for (uint32_t i = 0; i < p->count; i++)
            if (kiln_svg_kept(&p->nodes[i], t) && fabs(own[i]) > max_abs)
                max_abs = fabs(own[i]);
    }

    kiln_svg_header(out, o, timemax, unit, height, ypad2, y0, diff, &extra);
    kiln_buf_free(&extra);
    fputs("<g id=\"frames\">\n", out);
    kiln_buf_t b = {0}, sname = {0};
    uint64_t seed = 0;
    uint32_t *kids = NULL;
    size_t kids_cap = 0, top = 0, cap = 256;
    kiln_svg_item_t *stack = kiln_util_xmalloc(cap * sizeof *stack);
    stack[top++] = (kiln_svg_item_t){0, 0};
    while (top) {
        kiln_svg_item_t it = stack[--top];
        const kiln_node_t *n = &p->nodes[it.node];
        const kiln_name_t *nm = &p->names.names[n->name];
        size_t shown = kiln_color_strip(nm->str, nm->len);
        double x0 = p->start[it.node], width = it.node == 0 ? timemax : n->total;
        double delta = own ? (o->negate ? -own[it.node] : own[it.node]) : 0;
        double x1 = KILN_SVG_XPAD + x0 * wpt;
        double x2 = KILN_SVG_XPAD + (x0 + width) * wpt;
        double y1, y2;
        if (o->inverted) {
            y1 = ypad1 + it.depth * fh;
            y2 = ypad1 + (it.depth + 1) * fh - KILN_SVG_FRAMEPAD;
        } else {
            y1 = height - ypad2 - (it.depth + 1) * fh + KILN_SVG_FRAMEPAD;
            y2 = height - ypad2 - it.depth * fh;
        }
        uint32_t aid = amap && n->name < namap ? amap[n->name] : KILN_NONE;
        b.len = 0;
        kiln_buf_adds(&b, "<g");
        if (aid != KILN_NONE && attrs.attrs[aid])
            kiln_buf_adds(&b, attrs.attrs[aid]);
        kiln_buf_adds(&b, ">\n<title>");
        if (aid != KILN_NONE && attrs.titles[aid]) {
            kiln_svg_text(&b, attrs.titles[aid]);
        } else {
            kiln_escape_xml(&b, nm->str, shown, 0);
            kiln_buf_adds(&b, " (");
            if (o->factor == 1 && width == (double)n->total)
                kiln_profile_fmt(&b, p, n->total, true); /* exact */
            else
                kiln_util_fmt_count(&b, width / unit * o->factor, true);
            kiln_buf_addc(&b, ' ');
            kiln_svg_text(&b, o->countname);
            if (it.node == 0)
                kiln_buf_adds(&b, ", 100%");
            else
                kiln_buf_printf(&b, ", %.2f%%", 100 * width / timemax);
            if (diff && it.node != 0) {
                double dp = 100 * delta / timemax;
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
            kiln_buf_addc(&b, ')');
        }
        /* flamegraph.pl rounds both edges, then takes the width between
         * them: the same widths to the tenth of a pixel. */
        char e1[64], e2[64];
        snprintf(e1, sizeof e1, "%.1f", x1);
        snprintf(e2, sizeof e2, "%.1f", x2);
        kiln_buf_printf(&b, "</title><rect x=\"%s\" y=\"%.1f\" width=\"%.1f\" "
                            "height=\"%.1f\" fill=\"", e1, y1, strtod(e2, NULL) - strtod(e1, NULL),
                        y2 - y1);
        if (nm->len == 2 && memcmp(nm->str, "--", 2) == 0) {
            kiln_buf_adds(&b, "rgb(160,160,160)");
        } else if (nm->len == 1 && nm->str[0] == '-') {
            kiln_buf_adds(&b, "rgb(200,200,200)");
        } else if (diff) {
            kiln_color_diff(&b, delta, max_abs);
        } else if (o->palette_map) {
            uint32_t id = kiln_names_intern(&palmap.names, nm->str, nm->len);
            if (id >= palmap.cap || !palmap.colors[id]) {
                sname.len = 0;
                kiln_color_frame(&sname, o->palette, o->color_mode, nm->str, nm->len, &seed);
                kiln_svg_palmap_set(&palmap, nm->str, nm->len, sname.data, sname.len);
            }
            kiln_buf_adds(&b, palmap.colors[id]);
        } else if (it.node == 0) {
            /* The root is flamegraph.pl's frame with the empty name. */
            kiln_color_frame(&b, o->palette, o->color_mode, "", 0, &seed);
        } else {
            kiln_color_frame(&b, o->palette, o->color_mode, nm->str, nm->len, &seed);
        }
        kiln_buf_adds(&b, "\" rx=\"2\" ry=\"2\" kiln:s=\"");
        kiln_svg_num(&b, x0);
        kiln_buf_adds(&b, "\" kiln:n=\"");
        kiln_svg_num(&b, width);
        if (diff) {
            kiln_buf_adds(&b, "\" kiln:d=\"");
            kiln_svg_num(&b, delta);
        }
        kiln_buf_printf(&b, "\"/>\n<text x=\"%.2f\" y=\"%.2f\">", x1 + 3, 3 + (y1 + y2) / 2);
        long chars = (long)((x2 - x1) / (fs * o->font_width));
        if (chars >= 3)
            kiln_escape_xml(&b, nm->str, shown, (size_t)chars);
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
                        "small (use --minwidth to choose); the search still counts them\n",
                t / unit * o->factor, o->countname);
    int rc = 0;
    if (o->palette_map)
        rc = kiln_svg_palmap_write(&palmap, o->palette_map);
    kiln_svg_palmap_free(&palmap);
    kiln_svg_attrs_free(&attrs);
    free(amap);
    free(own);
    free(stack);
    free(kids);
    kiln_buf_free(&b);
    kiln_buf_free(&sname);
    return rc;
}
