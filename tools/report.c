/* report.c — `kiln report`: one self-contained HTML page of a run (or of two
 * runs, --diff). Collects every kind of profile the run wrote, per process,
 * with the run's interval sets and meta.json facts; report_data.c writes it
 * as compact JSON inside the page whose script (report_page.js, embedded
 * through report_assets.c) draws it. Offline; also called by `kiln record`. */
#include "kiln.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char kiln_report_usage[] =
    "usage: kiln report [OPTIONS] [DIR|FILE...]\n"
    "       kiln report [OPTIONS] --diff BEFORE AFTER\n"
    "\n"
    "Writes one self-contained HTML page (no network, no external script or\n"
    "font) with every kind of profile found: CPU (kernel time marked),\n"
    "allocations, leaks by category, peak and live heap. Views: flame graph,\n"
    "icicle, sandwich (callers and callees of a function), top table and call\n"
    "tree; focus / ignore / hide by regex, collapse recursion, group by\n"
    "process, search with the matched share; interval sets as a time chart\n"
    "whose spans can be selected; 'kiln explain' findings at the top.\n"
    "A DIR is read with its subdirectories (one level): each process's run,\n"
    "as 'kiln top' reads it, plus its interval sets. A FILE is one profile,\n"
    "its kind from its name (PROG.PID.KIND.folded), else cpu.\n"
    "With --diff, BEFORE and AFTER (files or directories) are compared kind by\n"
    "kind: widths from AFTER, each frame coloured by its own change.\n"
    "\n"
    "  -o, --output FILE   write FILE (appears whole) instead of stdout\n"
    "  --title TEXT        page title\n"
    "  --diff              two operands: BEFORE and AFTER\n"
    "  --max-nodes N       frames kept per kind (200000; the smallest are folded\n"
    "                      into their parents beyond that, the top table stays exact)\n"
    "  --strict            a malformed input line is an error, not a warning\n"
    "  -h, --help          this help\n";

static const kiln_report_kindinfo_t kiln_report_kinds[] = {
    {"cpu", "CPU", "samples", true},
    {"wall", "wall clock (running and waiting)", "samples", true},
    {"alloc_bytes", "allocated bytes", "bytes", true},
    {"alloc_count", "allocations", "calls", true},
    {"temp_count", "temporary allocations", "calls", true},
    {"temp_bytes", "temporary allocation bytes", "bytes", true},
    {"peak_bytes", "heap at peak", "bytes", false},
    {"live_bytes", "live heap", "bytes", false},
    {"live_count", "live blocks", "blocks", false},
    {"leak_bytes", "leaked bytes (all)", "bytes", false},
    {"leak_count", "leaked blocks (all)", "blocks", false},
    {"definite_bytes", "definitely lost", "bytes", false},
    {"definite_count", "definitely lost blocks", "blocks", false},
    {"indirect_bytes", "indirectly lost", "bytes", false},
    {"indirect_count", "indirectly lost blocks", "blocks", false},
    {"possible_bytes", "possibly lost", "bytes", false},
    {"possible_count", "possibly lost blocks", "blocks", false},
    {"reachable_bytes", "still reachable", "bytes", false},
    {"reachable_count", "still reachable blocks", "blocks", false},
    {"lock_wait_ns", "lock waits (time)", "nanoseconds", true},
    {"lock_wait_count", "lock waits", "waits", true},
};
#define KILN_REPORT_NKINDS (sizeof kiln_report_kinds / sizeof kiln_report_kinds[0])

/* The table entry of KIND; unknown kinds get a generic one (order last). */
static const kiln_report_kindinfo_t *kiln_report_kindinfo(const char *kind, size_t *order)
{
    static const kiln_report_kindinfo_t other = {NULL, NULL, "count", false};
    for (size_t i = 0; i < KILN_REPORT_NKINDS; i++) {
        if (strcmp(kind, kiln_report_kinds[i].kind) == 0) {
            *order = i;
            return &kiln_report_kinds[i];
        }
    }
    *order = KILN_REPORT_NKINDS;
    return &other;
}

static kiln_report_kind_t *kiln_report_kind(kiln_report_t *r, const char *kind)
{
    for (size_t i = 0; i < r->nkinds; i++)
        if (strcmp(r->kinds[i].kind, kind) == 0)
            return &r->kinds[i];
    r->kinds = kiln_util_xrealloc(r->kinds, (r->nkinds + 1) * sizeof *r->kinds);
    kiln_report_kind_t *k = &r->kinds[r->nkinds++];
    memset(k, 0, sizeof *k);
    k->kind = kiln_util_xstrdup(kind);
    k->info = kiln_report_kindinfo(kind, &k->order);
    kiln_profile_init(&k->p, false);
    return k;
}

/* The process called LABEL (created on first use). */
static size_t kiln_report_proc(kiln_report_t *r, const char *label, const char *dir,
                               const char *prefix)
{
    for (size_t i = 0; i < r->nprocs; i++)
        if (strcmp(r->procs[i].label, label) == 0)
            return i;
    r->procs = kiln_util_xrealloc(r->procs, (r->nprocs + 1) * sizeof *r->procs);
    kiln_report_proc_t *p = &r->procs[r->nprocs];
    memset(p, 0, sizeof *p);
    p->label = kiln_util_xstrdup(label);
    p->dir = dir ? kiln_util_xstrdup(dir) : NULL;
    p->prefix = prefix ? kiln_util_xstrdup(prefix) : NULL;
    return r->nprocs++;
}

/* The node of DST, under UNDER, for each node of SRC (created as needed;
 * no counts are added): how an interval set's stacks are found in the
 * kind's trie. *MAP_OUT is malloc'ed, SRC->count entries. */
static void kiln_report_graft(kiln_profile_t *dst, uint32_t under, const kiln_profile_t *src,
                              uint32_t **map_out)
{
    uint32_t *map = kiln_util_xmalloc((size_t)src->count * sizeof *map);
    map[0] = under;
    for (uint32_t i = 1; i < src->count; i++) {
        const kiln_name_t *nm = kiln_profile_name(src, i);
        uint32_t name = kiln_names_intern(&dst->names, nm->str, nm->len);
        map[i] = kiln_profile_child(dst, map[src->nodes[i].parent], name);
    }
    *map_out = map;
}

/* Reads PATHS (one process's files of one kind) into a fresh profile. */
static int kiln_report_read(kiln_profile_t *tmp, const char *const *paths, int n,
                            const kiln_report_t *r)
{
    /* Interval files are found in a directory: regular files only. */
    kiln_folded_opts_t fo = {.strict = r->strict, .allow_empty = true, .dir_files = true};
    kiln_profile_init(tmp, false);
    return kiln_folded_read(tmp, paths, n, &fo);
}

/* Adds the files of one process and kind under the process's frame: read
 * straight into the kind's trie, the frame as every stack's first. */
static int kiln_report_add_files(kiln_report_t *r, const char *kind, size_t proc,
                                 const char *const *paths, int n, bool from_dir)
{
    kiln_report_kind_t *k = kiln_report_kind(r, kind);
    const char *label = r->procs[proc].label;
    uint32_t pn = kiln_profile_child(&k->p, 0,
                                     kiln_names_intern(&k->p.names, label, strlen(label)));
    kiln_profile_finish(&k->p);
    kiln_count_t before = k->p.nodes[pn].total;
    unsigned scale = k->p.scale;
    kiln_folded_opts_t fo = {.strict = r->strict, .allow_empty = true, .prefix = label,
                             .dir_files = from_dir};
    int rc = kiln_folded_read(&k->p, paths, n, &fo);
    if (rc == 0 && scale != k->p.scale)
        before *= KILN_COUNT_FRAC_UNIT; /* this file brought fractions */
    if (rc == 0 && k->p.nodes[pn].total > before)
        r->added++;
    return rc;
}

/* "PROG [PID]" in a run; "PROG" in a diff, so both sides meet. A file whose
 * name is not the runtime's is labelled by its name. */
static char *kiln_report_label(const kiln_report_t *r, const char *base)
{
    kiln_sets_name_t nm;
    kiln_buf_t b = {0};
    if (kiln_sets_parse(base, &nm)) {
        if (r->diff)
            kiln_buf_printf(&b, "%.*s", (int)nm.prog_len, base);
        else
            kiln_buf_printf(&b, "%.*s [%ld]", (int)nm.prog_len, base, nm.pid);
    } else {
        size_t n = strlen(base);
        if (n > 7 && strcmp(base + n - 7, ".folded") == 0)
            n -= 7;
        if (r->diff)
            kiln_buf_adds(&b, "profile");
        else
            kiln_buf_printf(&b, "%.*s", (int)n, base);
    }
    return b.data;
}

static const char *kiln_report_base(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The kind of a runtime file name ("KIND.folded" after PROG.PID[.TAG]), or
 * NULL; *tagged says whether it belongs to an interval set. */
static char *kiln_report_file_kind(const char *base, bool *tagged)
{
    kiln_sets_name_t nm;
    if (!kiln_sets_parse(base, &nm))
        return NULL;
    const char *rest = base + nm.rest_off;
    size_t n = strlen(rest);
    if (n <= 7 || strcmp(rest + n - 7, ".folded") != 0)
        return NULL;
    for (size_t i = 0; i < n - 7; i++)
        if (!((rest[i] >= 'a' && rest[i] <= 'z') || rest[i] == '_' ||
              (rest[i] >= '0' && rest[i] <= '9')))
            return NULL;
    *tagged = nm.tag_len > 0;
    return strndup(rest, n - 7);
}

static double kiln_report_meta_num(const char *meta, const char *key, double dflt)
{
    char *v = kiln_sets_meta_string(meta, key);
    double d = dflt;
    if (v) {
        char *end;
        double x = strtod(v, &end);
        if (end != v)
            d = x;
        free(v);
    }
    return d;
}

/* The interval sets of process PROC (whole ones: their meta.json exists),
 * in time order, each with its cells per kind. */
static int kiln_report_intervals(kiln_report_t *r, size_t proc, char **names, size_t n)
{
    kiln_report_proc_t *pr = &r->procs[proc];
    size_t plen = strlen(pr->prefix);
    for (size_t i = 0; i < n; i++) {
        kiln_sets_name_t nm;
        const char *base = names[i];
        if (strncmp(base, pr->prefix, plen) != 0 || base[plen] != '.' ||
            !kiln_sets_parse(base, &nm) || nm.tag_len == 0 || nm.tag_off != plen + 1 ||
            strcmp(base + nm.rest_off, "meta.json") != 0)
            continue;
        kiln_buf_t meta = {0};
        kiln_buf_printf(&meta, "%s/%s", pr->dir, base);
        pr->sets = kiln_util_xrealloc(pr->sets, (pr->nsets + 1) * sizeof *pr->sets);
        kiln_report_set_t *s = &pr->sets[pr->nsets++];
        memset(s, 0, sizeof *s);
        s->t0 = kiln_report_meta_num(meta.data, "from_unix", 0);
        s->t1 = kiln_report_meta_num(meta.data, "until_unix", 0);
        s->live_bytes = kiln_report_meta_num(meta.data, "live_bytes", -1);
        s->alloc_bytes = kiln_report_meta_num(meta.data, "alloc_bytes", -1);
        s->samples = kiln_report_meta_num(meta.data, "samples_in_profile", -1);
        char *mode = kiln_sets_meta_string(meta.data, "interval_mode");
        s->cumulative = mode && strcmp(mode, "cumulative") == 0;
        free(mode);
        /* Each kind this set wrote. */
        for (size_t j = 0; j < n; j++) {
            kiln_sets_name_t e;
            bool tagged;
            if (strncmp(names[j], base, nm.rest_off) != 0 || !kiln_sets_parse(names[j], &e))
                continue;
            char *kind = kiln_report_file_kind(names[j], &tagged);
            if (!kind)
                continue;
            kiln_buf_t path = {0};
            kiln_buf_printf(&path, "%s/%s", pr->dir, names[j]);
            kiln_profile_t tmp;
            const char *one[] = {path.data};
            int rc = kiln_report_read(&tmp, one, 1, r);
            if (rc == 0 && tmp.nodes[0].total > 0) {
                kiln_report_kind_t *k = kiln_report_kind(r, kind);
                uint32_t pn = kiln_profile_child(
                    &k->p, 0, kiln_names_intern(&k->p.names, pr->label, strlen(pr->label)));
                uint32_t *map;
                /* The counts are kept apart, in the interval's cells. */
                kiln_report_graft(&k->p, pn, &tmp, &map);
                kiln_report_iv_t *iv;
                k->iv = kiln_util_xrealloc(k->iv, (k->niv + 1) * sizeof *k->iv);
                iv = &k->iv[k->niv++];
                memset(iv, 0, sizeof *iv);
                iv->proc = proc;
                iv->set = pr->nsets - 1;
                iv->node = kiln_util_xmalloc((size_t)tmp.count * sizeof *iv->node);
                iv->value = kiln_util_xmalloc((size_t)tmp.count * sizeof *iv->value);
                for (uint32_t t = 1; t < tmp.count; t++) {
                    if (tmp.nodes[t].self == 0)
                        continue;
                    iv->node[iv->n] = map[t];
                    iv->value[iv->n++] = kiln_profile_value(&tmp, tmp.nodes[t].self);
                }
                free(map);
            }
            kiln_profile_free(&tmp);
            kiln_buf_free(&path);
            free(kind);
        }
        kiln_buf_free(&meta);
    }
    return 0;
}

/* One directory: each kind's run per process (kiln_sets_expand's choice),
 * then every process's interval sets. */
static int kiln_report_add_dir(kiln_report_t *r, const char *dir, int depth)
{
    size_t n;
    char **names = kiln_sets_list(dir, &n);
    if (!names) {
        kiln_util_err("%s: cannot read directory: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    char **kinds = NULL;
    size_t nkinds = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        kiln_buf_t path = {0};
        kiln_buf_printf(&path, "%s/%s", dir, names[i]);
        struct stat st;
        if (depth == 0 && stat(path.data, &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = kiln_report_add_dir(r, path.data, 1);
            kiln_buf_free(&path);
            continue;
        }
        kiln_buf_free(&path);
        bool tagged;
        char *kind = kiln_report_file_kind(names[i], &tagged);
        if (!kind && strlen(names[i]) > 7 && strcmp(names[i] + strlen(names[i]) - 7, ".folded") == 0)
            kind = kiln_util_xstrdup("cpu");
        if (!kind)
            continue;
        bool seen = false;
        for (size_t k = 0; k < nkinds && !seen; k++)
            seen = strcmp(kinds[k], kind) == 0;
        if (seen) {
            free(kind);
            continue;
        }
        kinds = kiln_util_xrealloc(kinds, (nkinds + 1) * sizeof *kinds);
        kinds[nkinds++] = kind;
    }
    size_t first_proc = r->nprocs;
    for (size_t k = 0; k < nkinds && rc == 0; k++) {
        const char **files;
        int nfiles;
        const char *one[] = {dir};
        unsigned char *from_dir = NULL;
        if (kiln_sets_expand(one, 1, kinds[k], &files, &nfiles, &from_dir) != 0)
            continue; /* only unfinished interval sets of this kind */
        /* Group the files by process: runtime names by PROG.PID. */
        int i = 0;
        while (i < nfiles && rc == 0) {
            const char *base = kiln_report_base(files[i]);
            kiln_sets_name_t nm;
            bool runtime = kiln_sets_parse(base, &nm);
            int j = i + 1;
            if (runtime) {
                size_t key = (size_t)(strchr(base + nm.prog_len + 1, '.') - base);
                while (j < nfiles && strncmp(kiln_report_base(files[j]), base, key + 1) == 0)
                    j++;
            }
            char *label = kiln_report_label(r, base);
            kiln_buf_t prefix = {0};
            if (runtime)
                kiln_buf_printf(&prefix, "%.*s.%ld", (int)nm.prog_len, base, nm.pid);
            size_t proc = kiln_report_proc(r, label, dir, runtime ? prefix.data : NULL);
            /* A group's files all came out of this directory (one operand). */
            rc = kiln_report_add_files(r, kinds[k], proc, files + i, j - i,
                                       from_dir && from_dir[i]);
            free(label);
            kiln_buf_free(&prefix);
            i = j;
        }
        kiln_sets_free(files, nfiles);
        free(from_dir);
    }
    if (!r->diff)
        for (size_t p = first_proc; p < r->nprocs && rc == 0; p++)
            if (r->procs[p].prefix && r->procs[p].nsets == 0)
                rc = kiln_report_intervals(r, p, names, n);
    for (size_t k = 0; k < nkinds; k++)
        free(kinds[k]);
    free(kinds);
    kiln_sets_list_free(names, n);
    return rc;
}

static int kiln_report_add(kiln_report_t *r, const char *path)
{
    struct stat st;
    if (strcmp(path, "-") != 0 && stat(path, &st) != 0) {
        kiln_util_err("%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (strcmp(path, "-") != 0 && S_ISDIR(st.st_mode)) {
        size_t before = r->added;
        int rc = kiln_report_add_dir(r, path, 0);
        if (rc == 0 && r->added == before && !r->diff) {
            if (r->quiet_empty)
                return 0;
            kiln_util_err("%s: no folded profile with a count in this directory", path);
            rc = -1;
        }
        return rc;
    }
    const char *base = strcmp(path, "-") ? kiln_report_base(path) : "stdin";
    bool tagged;
    char *kind = kiln_report_file_kind(base, &tagged);
    const char *k = kind ? kind : kiln_folded_kind(base) ? kiln_folded_kind(base) : "cpu";
    char *label = kiln_report_label(r, base);
    size_t proc = kiln_report_proc(r, label, NULL, NULL);
    const char *one[] = {path};
    int rc = kiln_report_add_files(r, k, proc, one, 1, false);
    free(label);
    free(kind);
    return rc;
}

static int kiln_report_cmp_kind(const void *a, const void *b)
{
    const kiln_report_kind_t *x = a, *y = b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return strcmp(x->kind, y->kind);
}

void kiln_report_free(kiln_report_t *r)
{
    for (size_t i = 0; i < r->nkinds; i++) {
        kiln_report_kind_t *k = &r->kinds[i];
        kiln_profile_free(&k->p);
        free(k->before);
        for (size_t j = 0; j < k->niv; j++) {
            free(k->iv[j].node);
            free(k->iv[j].value);
        }
        free(k->iv);
        free(k->kind);
    }
    free(r->kinds);
    for (size_t i = 0; i < r->nprocs; i++) {
        free(r->procs[i].label);
        free(r->procs[i].dir);
        free(r->procs[i].prefix);
        free(r->procs[i].sets);
    }
    free(r->procs);
    free(r->leaks_text);
    memset(r, 0, sizeof *r);
}

/* The leak report's text of the directories among PATHS, for the page. */
static void kiln_report_leaks(kiln_report_t *r, const char *const *paths, int n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return;
    kiln_leaks_opts_t lo = {.max_sites = 10, .quiet_missing = true};
    bool found;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        rc = kiln_leaks_print(mem, paths + i, 1, &lo, &found);
    }
    fclose(mem);
    if (len > 0)
        r->leaks_text = text;
    else
        free(text);
}

int kiln_report_collect(kiln_report_t *r, const char *const *paths, int npaths)
{
    int rc = 0;
    if (r->diff) {
        rc = kiln_report_add(r, paths[0]);
        for (size_t i = 0; i < r->nkinds && rc == 0; i++) {
            kiln_report_kind_t *k = &r->kinds[i];
            kiln_profile_finish(&k->p);
            k->before = kiln_profile_take_self(&k->p, &k->nbefore);
            k->before_scale = k->p.scale;
            k->has_before = true;
        }
        if (rc == 0)
            rc = kiln_report_add(r, paths[1]);
        for (size_t i = 0; i < r->nkinds && rc == 0; i++) {
            kiln_report_kind_t *k = &r->kinds[i];
            k->has_before = true;
            /* AFTER brought fractions, BEFORE had none: to thousandths. */
            if (k->before && k->before_scale != k->p.scale &&
                kiln_profile_rescale(&k->p, k->before, k->nbefore, k->before_scale) != 0) {
                kiln_util_err("%s: counts too large to compare with fractional counts",
                              paths[0]);
                rc = -1;
            }
        }
    } else {
        for (int i = 0; i < npaths && rc == 0; i++)
            rc = kiln_report_add(r, paths[i]);
        if (rc == 0)
            kiln_report_leaks(r, paths, npaths);
    }
    /* Kinds whose files were all empty (no samples, no leak) are left out. */
    size_t kept = 0;
    for (size_t i = 0; i < r->nkinds; i++) {
        kiln_report_kind_t *k = &r->kinds[i];
        kiln_profile_finish(&k->p);
        bool before = false;
        for (uint32_t j = 0; k->before && j < k->nbefore && !before; j++)
            before = k->before[j] > 0;
        if (k->p.nodes[0].total > 0 || before || k->niv > 0) {
            r->kinds[kept++] = *k;
            continue;
        }
        kiln_profile_free(&k->p);
        free(k->before);
        free(k->kind);
    }
    r->nkinds = kept;
    if (r->nkinds > 1)
        qsort(r->kinds, r->nkinds, sizeof *r->kinds, kiln_report_cmp_kind);
    if (rc == 0 && r->nkinds == 0) {
        if (r->quiet_empty)
            return 1;
        kiln_util_err("nothing to report: no profile with a non-zero count");
        rc = -1;
    }
    return rc;
}

int kiln_report_write_run(const char *dir, const char *output, const char *title)
{
    kiln_report_t r = {.max_nodes = KILN_REPORT_MAX_NODES, .title = title, .quiet_empty = true};
    const char *one[] = {dir};
    int rc = kiln_report_collect(&r, one, 1);
    if (rc == 0) {
        kiln_out_t out;
        rc = kiln_out_open(&out, output);
        if (rc == 0)
            rc = kiln_out_close(&out, kiln_report_html(out.fp, &r));
    }
    kiln_report_free(&r);
    return rc;
}

int kiln_report_main(int argc, char **argv)
{
    enum { KILN_RP_TITLE = 256, KILN_RP_DIFF, KILN_RP_MAX, KILN_RP_STRICT };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"title", required_argument, NULL, KILN_RP_TITLE},
        {"diff", no_argument, NULL, KILN_RP_DIFF},
        {"max-nodes", required_argument, NULL, KILN_RP_MAX},
        {"strict", no_argument, NULL, KILN_RP_STRICT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_report_t r = {.max_nodes = KILN_REPORT_MAX_NODES};
    const char *output = NULL;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "o:", longopts, "report", kiln_report_usage)) !=
           -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case KILN_RP_TITLE: r.title = optarg; break;
        case KILN_RP_DIFF: r.diff = true; break;
        case KILN_RP_MAX: r.max_nodes = kiln_util_opt_count("report", "--max-nodes", optarg); break;
        case KILN_RP_STRICT: r.strict = true; break;
        }
    }
    int n = argc - optind;
    if (r.diff && n != 2)
        kiln_util_usage_error("report", "--diff needs two operands, BEFORE and AFTER");
    if (n == 0)
        kiln_util_usage_error("report", "needs a directory or folded file");
    if (r.max_nodes < 100)
        r.max_nodes = 100;
    const char *const *paths = (const char *const *)argv + optind;
    if (r.diff) {
        r.before_label = paths[0];
        r.after_label = paths[1];
    }
    int rc = kiln_report_collect(&r, paths, n);
    if (rc == 0) {
        kiln_out_t out;
        rc = kiln_out_open(&out, output);
        if (rc == 0)
            rc = kiln_out_close(&out, kiln_report_html(out.fp, &r));
    }
    kiln_report_free(&r);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
