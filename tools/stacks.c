/* stacks.c — the runtime's stacks file (PROG.PID[.TAG].stacks, format in
 * runtime/kiln_folded.c): the module map and every stack of each kind as
 * module addresses. When a folded file has one beside it, whose stacks of
 * its kind add up to the folded file's total, the tool reads the stacks
 * instead of the folded lines: each frame is looked up in its module's
 * DWARF (dwarf.c), so that inlined functions become frames of their own
 * and every frame gets its file:line. A frame without DWARF keeps the
 * runtime's name. A folded file without a stacks file, or with one that
 * does not match it, is read as it always was. */
#include "kiln.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct kiln_stacks_module_s {
    char *path, *build_id;
    uint64_t bias, lo, hi, file_off;
    kiln_dwarf_t *dwarf;
    bool tried;
} kiln_stacks_module_t;

/* ------------------------------------------------------------- parsing */

/* Splits LINE (NUL-terminated, no newline) at tabs into at most MAX fields. */
static int kiln_stacks_fields(char *line, char **f, int max)
{
    int n = 0;
    while (n < max) {
        f[n++] = line;
        char *tab = strchr(line, '\t');
        if (!tab)
            break;
        *tab = '\0';
        line = tab + 1;
    }
    return n;
}

static bool kiln_stacks_hex(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (end == s || *end != '\0' || errno)
        return false;
    *out = v;
    return true;
}

static bool kiln_stacks_dec(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s < '0' || *s > '9')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno)
        return false;
    *out = v;
    return true;
}

/* The stacks file of a folded file and the kind it holds: "D/X.K.folded"
 * gives "D/X.stacks" and "K". NULL when the name is not of that form. */
char *kiln_stacks_path(const char *folded, char **kind)
{
    size_t len = strlen(folded);
    const char *slash = strrchr(folded, '/');
    size_t base = slash ? (size_t)(slash - folded) + 1 : 0;
    if (len < base + 8 || strcmp(folded + len - 7, ".folded") != 0)
        return NULL;
    size_t end = len - 7, dot = end;
    while (dot > base && folded[dot - 1] != '.')
        dot--;
    if (dot <= base + 1 || dot == end)
        return NULL;
    *kind = kiln_util_xmalloc(end - dot + 1);
    memcpy(*kind, folded + dot, end - dot);
    (*kind)[end - dot] = '\0';
    char *path = kiln_util_xmalloc(dot + 8);
    memcpy(path, folded, dot);
    memcpy(path + dot, "stacks", 7);
    return path;
}

/* The sum of a folded file's counts (one-count lines), or -1. */
static double kiln_stacks_folded_total(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    double total = 0;
    while ((got = getline(&line, &cap, fp)) >= 0) {
        size_t len = (size_t)got, stack_len;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        kiln_folded_count_t counts[2];
        int nc;
        if (len == 0)
            continue;
        if (kiln_folded_parse_line(line, len, &stack_len, counts, &nc) || nc != 1 || counts[0].frac != 0) {
            total = -1;
            break;
        }
        total += (double)counts[0].whole;
    }
    free(line);
    fclose(fp);
    return total;
}

static void kiln_stacks_bad(const char *path, long lineno, const char *what)
{
    kiln_util_err("%s:%ld: %s; its folded file is read without source lines", path, lineno, what);
}

kiln_stacks_t *kiln_stacks_load(const char *folded)
{
    char *kind = NULL, *path = kiln_stacks_path(folded, &kind);
    if (!path)
        return NULL;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        free(path);
        free(kind);
        return NULL;
    }
    kiln_stacks_t *s = kiln_util_xcalloc(1, sizeof *s);
    s->path = path;
    s->kind = kind;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long lineno = 0;
    bool in_kind = false, seen_kind = false, ok = true;
    double total = -1;
    while (ok && (got = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        line[len] = '\0';
        if (memchr(line, '\0', len)) {
            kiln_stacks_bad(path, lineno, "NUL byte");
            ok = false;
            break;
        }
        char *f[8];
        if (lineno == 1) {
            int n = kiln_stacks_fields(line, f, 2);
            if (n != 2 || strcmp(f[0], "kiln-stacks") != 0 || strcmp(f[1], "1") != 0) {
                kiln_stacks_bad(path, lineno, "not a kiln stacks file of version 1");
                ok = false;
            }
            continue;
        }
        if (line[0] >= '0' && line[0] <= '9') {
            if (!in_kind)
                continue;
            char *tab = strchr(line, '\t');
            uint64_t count;
            if (!tab) {
                kiln_stacks_bad(path, lineno, "a stack line without frames");
                ok = false;
                break;
            }
            *tab = '\0';
            if (!kiln_stacks_dec(line, &count)) {
                kiln_stacks_bad(path, lineno, "bad count");
                ok = false;
                break;
            }
            size_t first = s->nids;
            for (char *p = tab + 1; *p;) {
                char *end;
                errno = 0;
                unsigned long id = strtoul(p, &end, 10);
                if (end == p || errno || id == 0 || id >= s->nframes || !s->frames[id].name) {
                    kiln_stacks_bad(path, lineno, "unknown frame id");
                    ok = false;
                    break;
                }
                if (s->nids == s->ids_cap) {
                    s->ids_cap = s->ids_cap ? s->ids_cap * 2 : 4096;
                    s->ids = kiln_util_xrealloc(s->ids, s->ids_cap * sizeof *s->ids);
                }
                s->ids[s->nids++] = (uint32_t)id;
                p = end;
                while (*p == ' ')
                    p++;
            }
            if (!ok)
                break;
            if (s->nstacks == s->stacks_cap) {
                s->stacks_cap = s->stacks_cap ? s->stacks_cap * 2 : 1024;
                s->starts = kiln_util_xrealloc(s->starts, (s->stacks_cap + 1) * sizeof *s->starts);
                s->counts = kiln_util_xrealloc(s->counts, s->stacks_cap * sizeof *s->counts);
            }
            s->starts[s->nstacks] = first;
            s->counts[s->nstacks++] = (double)count;
            s->starts[s->nstacks] = s->nids;
            continue;
        }
        int n = kiln_stacks_fields(line, f, 8);
        uint64_t id, v[5];
        if (strcmp(f[0], "module") == 0) {
            if (n != 8 || !kiln_stacks_dec(f[1], &id) || id == 0 || id > (1u << 20) ||
                !kiln_stacks_hex(f[3], &v[0]) || !kiln_stacks_hex(f[4], &v[1]) ||
                !kiln_stacks_hex(f[5], &v[2]) || !kiln_stacks_hex(f[6], &v[3])) {
                kiln_stacks_bad(path, lineno, "bad module line");
                ok = false;
                break;
            }
            if (id >= s->nmodules) {
                s->modules = kiln_util_xrealloc(s->modules, (id + 1) * sizeof *s->modules);
                memset(s->modules + s->nmodules, 0, (id + 1 - s->nmodules) * sizeof *s->modules);
                s->nmodules = (size_t)id + 1;
            }
            kiln_stacks_module_t *m = &s->modules[id];
            free(m->path);
            free(m->build_id);
            m->build_id = kiln_util_xstrdup(f[2]);
            m->bias = v[0];
            m->lo = v[1];
            m->hi = v[2];
            m->file_off = v[3];
            m->path = kiln_util_xstrdup(f[7]);
        } else if (strcmp(f[0], "frame") == 0) {
            if (n != 6 || !kiln_stacks_dec(f[1], &id) || id == 0 || id > (1u << 26) ||
                !kiln_stacks_dec(f[2], &v[0]) || v[0] >= (s->nmodules ? s->nmodules : 1) ||
                !kiln_stacks_hex(f[3], &v[1]) || f[5][0] == '\0') {
                kiln_stacks_bad(path, lineno, "bad frame line");
                ok = false;
                break;
            }
            if (id >= s->nframes) {
                size_t ncap = s->nframes ? s->nframes : 64;
                while (ncap <= id)
                    ncap *= 2;
                s->frames = kiln_util_xrealloc(s->frames, ncap * sizeof *s->frames);
                memset(s->frames + s->nframes, 0, (ncap - s->nframes) * sizeof *s->frames);
                s->nframes = ncap;
            }
            kiln_stacks_frame_t *fr = &s->frames[id];
            if (fr->name) {
                kiln_stacks_bad(path, lineno, "frame id given twice");
                ok = false;
                break;
            }
            fr->module = (uint32_t)v[0];
            fr->addr = v[1];
            fr->raw = strcmp(f[4], "-") ? kiln_util_xstrdup(f[4]) : NULL;
            fr->name = kiln_util_xstrdup(f[5]);
        } else if (strcmp(f[0], "kind") == 0) {
            if (n != 3 || !kiln_stacks_dec(f[2], &v[0])) {
                kiln_stacks_bad(path, lineno, "bad kind line");
                ok = false;
                break;
            }
            in_kind = strcmp(f[1], kind) == 0;
            if (in_kind) {
                seen_kind = true;
                total = (double)v[0];
            }
        }
        /* Other lines: a later version's additions, ignored. */
    }
    free(line);
    bool read_error = ferror(fp);
    fclose(fp);
    if (ok && read_error) {
        kiln_stacks_bad(path, lineno, "read error");
        ok = false;
    }
    if (ok && (!seen_kind || kiln_stacks_folded_total(folded) != total)) {
        /* Not this folded file's stacks (edited, or from another run):
         * the folded file is what the user gave, so it wins, silently. */
        ok = false;
    }
    if (!ok) {
        kiln_stacks_free(s);
        return NULL;
    }
    return s;
}

void kiln_stacks_free(kiln_stacks_t *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nmodules; i++) {
        free(s->modules[i].path);
        free(s->modules[i].build_id);
        kiln_dwarf_close(s->modules[i].dwarf);
    }
    for (size_t i = 0; i < s->nframes; i++) {
        kiln_stacks_frame_t *f = &s->frames[i];
        free(f->raw);
        free(f->name);
        for (uint32_t k = 0; k < f->nx; k++) {
            if (f->x[k].name != f->name)
                free(f->x[k].name);
            free(f->x[k].file);
        }
        free(f->x);
    }
    free(s->modules);
    free(s->frames);
    free(s->ids);
    free(s->starts);
    free(s->counts);
    free(s->path);
    free(s->kind);
    free(s);
}

/* ---------------------------------------------------------- expansion */

const kiln_stacks_loc_t *kiln_stacks_expand(kiln_stacks_t *s, uint32_t id, uint32_t *n)
{
    kiln_stacks_frame_t *f = &s->frames[id];
    if (!f->expanded) {
        f->expanded = true;
        kiln_stacks_module_t *m = f->module ? &s->modules[f->module] : NULL;
        if (m && !m->tried) {
            m->tried = true;
            if (m->path && m->path[0] == '/')
                m->dwarf = kiln_dwarf_open(m->path, m->build_id);
        }
        kiln_dwarf_frame_t *df = NULL;
        size_t nd = m ? kiln_dwarf_lookup(m->dwarf, f->addr, &df) : 0;
        if (nd == 0) {
            f->x = kiln_util_xcalloc(1, sizeof *f->x);
            f->x[0].name = f->name;
            f->nx = 1;
        } else {
            f->x = kiln_util_xcalloc(nd, sizeof *f->x);
            for (size_t i = 0; i < nd; i++) {
                /* The outermost function keeps the runtime's name (the one
                 * the folded file and every other view use), unless the
                 * runtime had none. */
                bool runtime_name = i == 0 && (!df[i].name || !strstr(f->name, "+0x"));
                f->x[i].name = runtime_name ? f->name : df[i].name ? df[i].name
                                                                   : kiln_util_xstrdup(f->name);
                if (runtime_name)
                    free(df[i].name);
                f->x[i].file = df[i].file;
                f->x[i].line = df[i].line;
            }
            free(df);
            f->nx = (uint32_t)nd;
        }
    }
    *n = f->nx;
    return f->x;
}

const char *kiln_stacks_module_path(const kiln_stacks_t *s, uint32_t module)
{
    return module && module < s->nmodules ? s->modules[module].path : NULL;
}

void kiln_stacks_module_span(const kiln_stacks_t *s, uint32_t module, uint64_t *lo, uint64_t *hi,
                             uint64_t *file_off, uint64_t *bias, const char **build_id)
{
    const kiln_stacks_module_t *m = &s->modules[module];
    *lo = m->lo;
    *hi = m->hi;
    *file_off = m->file_off;
    *bias = m->bias;
    *build_id = m->build_id && strcmp(m->build_id, "-") ? m->build_id : "";
}

/* A frame's label: "name", or with lines "name file:line" (the file's
 * base name, as pprof -lines and perf print it). */
static uint32_t kiln_stacks_label(kiln_profile_t *p, const kiln_stacks_loc_t *x, bool lines,
                                  kiln_buf_t *tmp)
{
    tmp->len = 0;
    kiln_buf_adds(tmp, x->name);
    if (lines && x->file && x->line > 0) {
        const char *slash = strrchr(x->file, '/');
        kiln_buf_printf(tmp, " %s:%d", slash ? slash + 1 : x->file, x->line);
    }
    return kiln_names_intern(&p->names, tmp->data, tmp->len);
}

/* (node, line) -> weight, to give each node the line most of its samples
 * went through. Open addressing, grown at half full. */
typedef struct kiln_stacks_where_s {
    uint64_t *keys; /* node << 32 | name id of "file:line", +1; 0 = empty */
    double *weight;
    size_t cap, n;
} kiln_stacks_where_t;

static void kiln_stacks_where_add(kiln_stacks_where_t *w, uint64_t key, double v)
{
    if ((w->n + 1) * 2 > w->cap) {
        kiln_stacks_where_t g = {0};
        g.cap = w->cap ? w->cap * 2 : 4096;
        g.keys = kiln_util_xcalloc(g.cap, sizeof *g.keys);
        g.weight = kiln_util_xcalloc(g.cap, sizeof *g.weight);
        for (size_t i = 0; i < w->cap; i++)
            if (w->keys[i])
                kiln_stacks_where_add(&g, w->keys[i] - 1, w->weight[i]);
        free(w->keys);
        free(w->weight);
        *w = g;
    }
    size_t j = (size_t)((key + 1) * 0x9e3779b97f4a7c15ull >> 17) & (w->cap - 1);
    while (w->keys[j] && w->keys[j] != key + 1)
        j = (j + 1) & (w->cap - 1);
    if (!w->keys[j]) {
        w->keys[j] = key + 1;
        w->n++;
    }
    w->weight[j] += v;
}

void kiln_stacks_add(kiln_profile_t *p, kiln_stacks_t *s, const kiln_folded_opts_t *o)
{
    kiln_buf_t tmp = {0};
    uint32_t *names = NULL, *wheres = NULL;
    size_t cap = 0;
    kiln_stacks_where_t w = {0};
    uint32_t base_name = o->base ? kiln_names_intern(&p->names, o->base, strlen(o->base)) : KILN_NONE;
    for (size_t k = 0; k < s->nstacks; k++) {
        size_t n = 0;
        for (size_t i = s->starts[k]; i < s->starts[k + 1]; i++) {
            uint32_t nx;
            const kiln_stacks_loc_t *x = kiln_stacks_expand(s, s->ids[i], &nx);
            for (uint32_t j = 0; j < nx; j++) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 256;
                    names = kiln_util_xrealloc(names, cap * sizeof *names);
                    wheres = kiln_util_xrealloc(wheres, cap * sizeof *wheres);
                }
                names[n] = kiln_stacks_label(p, &x[j], o->lines, &tmp);
                wheres[n] = KILN_NONE;
                /* With lines in the names, the node is its line already. */
                if (!o->lines && x[j].file && x[j].line > 0) {
                    tmp.len = 0;
                    kiln_buf_printf(&tmp, "%s:%d", x[j].file, x[j].line);
                    wheres[n] = kiln_names_intern(&p->names, tmp.data, tmp.len);
                }
                n++;
            }
        }
        if (o->reverse) {
            for (size_t i = 0; i < n / 2; i++) {
                uint32_t t = names[i], u = wheres[i];
                names[i] = names[n - 1 - i];
                wheres[i] = wheres[n - 1 - i];
                names[n - 1 - i] = t;
                wheres[n - 1 - i] = u;
            }
        }
        size_t from = 0;
        if (o->base) {
            while (from < n && names[from] != base_name)
                from++;
            if (from == n)
                continue;
        }
        uint32_t node = 0;
        for (size_t i = from; i < n; i++) {
            node = kiln_profile_child(p, node, names[i]);
            if (wheres[i] != KILN_NONE)
                kiln_stacks_where_add(&w, (uint64_t)node << 32 | wheres[i], s->counts[k]);
        }
        kiln_profile_add(p, node, s->counts[k], 0);
    }
    /* Each node's line: the heaviest; ties to the first in name order. */
    if (w.n) {
        if (p->where_cap < p->count) {
            p->where = kiln_util_xrealloc(p->where, p->count * sizeof *p->where);
            for (uint32_t i = p->where_cap; i < p->count; i++)
                p->where[i] = KILN_NONE;
            p->where_cap = p->count;
        }
        double *best = kiln_util_xcalloc(p->count, sizeof *best);
        for (size_t i = 0; i < w.cap; i++) {
            if (!w.keys[i])
                continue;
            uint32_t node = (uint32_t)((w.keys[i] - 1) >> 32), where = (uint32_t)(w.keys[i] - 1);
            if (w.weight[i] > best[node] ||
                (w.weight[i] == best[node] && p->where[node] != KILN_NONE && kiln_names_cmp(&p->names, where, p->where[node]) < 0)) {
                best[node] = w.weight[i];
                p->where[node] = where;
            }
        }
        free(best);
    }
    free(w.keys);
    free(w.weight);
    free(names);
    free(wheres);
    kiln_buf_free(&tmp);
}

const char *kiln_stacks_where(const kiln_profile_t *p, uint32_t node, size_t *len)
{
    if (!p->where || node >= p->where_cap || p->where[node] == KILN_NONE)
        return NULL;
    const kiln_name_t *nm = &p->names.names[p->where[node]];
    *len = nm->len;
    return nm->str;
}

bool kiln_stacks_where_short(const kiln_profile_t *p, uint32_t node, kiln_buf_t *b)
{
    size_t len;
    const char *w = kiln_stacks_where(p, node, &len);
    if (!w)
        return false;
    /* "dir/file.c:42" -> "file.c:42": the directory is in pprof's view. */
    const char *slash = memrchr(w, '/', len);
    if (slash) {
        len -= (size_t)(slash + 1 - w);
        w = slash + 1;
    }
    kiln_buf_add(b, w, len);
    return true;
}
