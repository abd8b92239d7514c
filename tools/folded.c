/* folded.c — the streaming folded-stack parser. Reads line by line (never the
 * whole file), checks each line, interns its frames and adds it to the trie.
 * Consecutive lines usually share a prefix (sorted input, deep stacks), so
 * the frames of the previous line are reused up to the first difference. */
#include "kiln.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KILN_FOLDED_SHOWN_ERRORS 10

static bool kiln_folded_space(char c) { return c == ' ' || c == '\t'; }

/* A count is digits with an optional fraction ("12", "0.5"). 0 or -1. */
static int kiln_folded_number(const char *s, size_t len, double *out)
{
    double v = 0;
    size_t i = 0;
    if (len == 0 || s[0] < '0' || s[0] > '9')
        return -1;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (s[i] - '0');
    if (i < len && s[i] == '.') {
        double scale = 0.1;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            v += (s[i] - '0') * scale;
    }
    if (i != len || v > 1e300)
        return -1;
    *out = v;
    return 0;
}

const char *kiln_folded_parse_line(const char *line, size_t len, size_t *stack_len,
                                   double counts[2], int *ncounts)
{
    while (len > 0 && (kiln_folded_space(line[len - 1]) || line[len - 1] == '\r'))
        len--;
    size_t tok = len;
    while (tok > 0 && !kiln_folded_space(line[tok - 1]))
        tok--;
    if (tok == 0)
        return "no count (expected 'frame;frame;... COUNT')";
    if (line[tok] == '-')
        return "negative count";
    if (kiln_folded_number(line + tok, len - tok, &counts[0]) != 0)
        return "count is not a number";
    *ncounts = 1;
    /* One blank separates the stack from its count, as flamegraph.pl's
     * "(.*)\s+?(\d+)" reads it: more blanks belong to the last frame's
     * name (perf writes C++ names such as "std::function<bool ").  */
    size_t end = tok - 1;
    /* A second number before the count makes a differential line. */
    size_t tok2 = end;
    while (tok2 > 0 && !kiln_folded_space(line[tok2 - 1]))
        tok2--;
    double before;
    if (tok2 > 0 && kiln_folded_number(line + tok2, end - tok2, &before) == 0) {
        counts[1] = counts[0];
        counts[0] = before;
        *ncounts = 2;
        end = tok2 - 1;
    } else if (tok2 > 0 && line[tok2] == '-' &&
               kiln_folded_number(line + tok2 + 1, end - tok2 - 1, &before) == 0) {
        return "negative count";
    }
    if (end == 0)
        return "empty stack";
    *stack_len = end;
    return NULL;
}

const char *const kiln_folded_kinds[] = {"cpu", "alloc_bytes", "alloc_count", "live_bytes",
                                         "live_count", "leak_bytes", "leak_count",
                                         "peak_bytes", NULL};

const char *kiln_folded_opt_kind(const char *cmd, const char *arg)
{
    for (size_t i = 0; kiln_folded_kinds[i]; i++)
        if (strcmp(arg, kiln_folded_kinds[i]) == 0)
            return kiln_folded_kinds[i];
    kiln_util_usage_error(cmd, "unknown kind '%s' (cpu, alloc_bytes, alloc_count, live_bytes, "
                          "live_count, leak_bytes, leak_count, peak_bytes)", arg);
}

const char *kiln_folded_kind(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; kiln_folded_kinds[i]; i++) {
        char pat[32];
        snprintf(pat, sizeof pat, ".%s.folded", kiln_folded_kinds[i]);
        const char *hit = strstr(base, pat);
        if (hit && hit[strlen(pat)] == '\0')
            return kiln_folded_kinds[i];
    }
    return NULL;
}

typedef struct kiln_folded_state_s {
    kiln_profile_t *p;
    const kiln_folded_opts_t *opts;
    uint32_t *path;   /* node of each frame of the current line */
    size_t *ends;     /* byte offset where each frame of the previous line ends */
    size_t cap, depth;
    kiln_buf_t prev;  /* previous stack, for prefix reuse */
    uint32_t *names;  /* reversed / re-rooted lines: name ids */
    size_t names_cap;
    long errors, valid;
    uint32_t base_name;
    uint32_t root;    /* where stacks start: node 0, or opts->prefix's node */
} kiln_folded_state_t;

static void kiln_folded_reserve(kiln_folded_state_t *st, size_t depth)
{
    if (depth < st->cap)
        return;
    while (st->cap <= depth)
        st->cap = st->cap ? st->cap * 2 : 256;
    st->path = kiln_util_xrealloc(st->path, st->cap * sizeof *st->path);
    st->ends = kiln_util_xrealloc(st->ends, st->cap * sizeof *st->ends);
}

/* The plain case: frames in file order, reusing the previous line's prefix. */
static void kiln_folded_add_forward(kiln_folded_state_t *st, const char *s, size_t len,
                                    double value, double delta)
{
    const char *prev = st->prev.data;
    size_t plen = st->prev.len, m = 0, keep = 0;
    size_t lim = len < plen ? len : plen;
    while (m < lim && s[m] == prev[m])
        m++;
    /* Frame j of the previous line is also frame j of this one when the
     * bytes up to its end agree and this line has a boundary there too. */
    while (keep < st->depth) {
        size_t e = st->ends[keep];
        if (e < m || (e == m && (m == len || s[m] == ';') && (m == plen || prev[m] == ';')))
            keep++;
        else
            break;
    }
    size_t pos = keep ? st->ends[keep - 1] + 1 : 0;
    size_t depth = keep;
    uint32_t parent = keep ? st->path[keep - 1] : st->root;
    if (!(keep && st->ends[keep - 1] >= len)) {
        for (;;) {
            const char *semi = memchr(s + pos, ';', len - pos);
            size_t e = semi ? (size_t)(semi - s) : len;
            kiln_folded_reserve(st, depth);
            uint32_t name = kiln_names_intern(&st->p->names, s + pos, e - pos);
            parent = kiln_profile_child(st->p, parent, name);
            st->path[depth] = parent;
            st->ends[depth] = e;
            depth++;
            if (!semi)
                break;
            pos = e + 1;
        }
    }
    st->depth = depth;
    st->prev.len = 0;
    kiln_buf_add(&st->prev, s, len);
    kiln_profile_add(st->p, depth ? st->path[depth - 1] : st->root, value, delta);
}

/* --reverse and --base: intern every frame, then reorder or cut. */
static void kiln_folded_add_general(kiln_folded_state_t *st, const char *s, size_t len,
                                    double value, double delta)
{
    size_t n = 0, pos = 0;
    for (;;) {
        const char *semi = memchr(s + pos, ';', len - pos);
        size_t e = semi ? (size_t)(semi - s) : len;
        if (n == st->names_cap) {
            st->names_cap = st->names_cap ? st->names_cap * 2 : 256;
            st->names = kiln_util_xrealloc(st->names, st->names_cap * sizeof *st->names);
        }
        st->names[n++] = kiln_names_intern(&st->p->names, s + pos, e - pos);
        if (!semi)
            break;
        pos = e + 1;
    }
    if (st->opts->reverse) {
        for (size_t i = 0; i < n / 2; i++) {
            uint32_t t = st->names[i];
            st->names[i] = st->names[n - 1 - i];
            st->names[n - 1 - i] = t;
        }
    }
    size_t from = 0;
    if (st->opts->base) {
        while (from < n && st->names[from] != st->base_name)
            from++;
        if (from == n)
            return; /* not under the base frame: not part of this view */
    }
    uint32_t parent = st->root;
    kiln_folded_reserve(st, n);
    for (size_t i = from; i < n; i++) {
        parent = kiln_profile_child(st->p, parent, st->names[i]);
        st->path[i - from] = parent;
    }
    kiln_profile_add(st->p, n > from ? st->path[n - from - 1] : st->root, value, delta);
}

static int kiln_folded_read_one(kiln_folded_state_t *st, FILE *fp, const char *label)
{
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    errno = 0;
    while ((got = getline(&line, &line_cap, fp)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t blank = 0;
        while (blank < len && kiln_folded_space(line[blank]))
            blank++;
        if (blank == len)
            continue;
        size_t stack_len;
        double counts[2];
        int ncounts;
        const char *what = kiln_folded_parse_line(line, len, &stack_len, counts, &ncounts);
        if (what) {
            st->errors++;
            if (st->opts->strict) {
                kiln_util_err("%s:%ld: %s (--strict)", label, lineno, what);
                rc = -1;
                break;
            }
            if (st->errors <= KILN_FOLDED_SHOWN_ERRORS)
                kiln_util_err("%s:%ld: %s; line skipped", label, lineno, what);
            continue;
        }
        st->valid++;
        double value = counts[0], delta = 0;
        if (ncounts == 2) {
            st->p->has_delta = true;
            value = st->opts->negate ? counts[0] : counts[1];
            delta = st->opts->negate ? counts[0] - counts[1] : counts[1] - counts[0];
        }
        if (value == 0 && delta == 0)
            continue;
        if (st->opts->reverse || st->opts->base)
            kiln_folded_add_general(st, line, stack_len, value, delta);
        else
            kiln_folded_add_forward(st, line, stack_len, value, delta);
    }
    if (rc == 0 && ferror(fp)) {
        kiln_util_err("%s: read error: %s", label, strerror(errno ? errno : EIO));
        rc = -1;
    }
    free(line);
    return rc;
}

static void kiln_folded_state_init(kiln_folded_state_t *st, kiln_profile_t *p,
                                   const kiln_folded_opts_t *opts)
{
    memset(st, 0, sizeof *st);
    st->p = p;
    st->opts = opts;
    if (opts->base)
        st->base_name = kiln_names_intern(&p->names, opts->base, strlen(opts->base));
    if (opts->prefix)
        st->root = kiln_profile_child(p, 0, kiln_names_intern(&p->names, opts->prefix,
                                                              strlen(opts->prefix)));
}

/* Reports the summary and the no-valid-line error; frees the state. */
static int kiln_folded_state_finish(kiln_folded_state_t *st, int rc, const char *label)
{
    kiln_profile_finish(st->p);
    if (rc == 0 && st->errors > KILN_FOLDED_SHOWN_ERRORS)
        kiln_util_err("%ld malformed lines skipped in all (first %d shown)", st->errors,
                      KILN_FOLDED_SHOWN_ERRORS);
    if (rc == 0 && st->valid == 0 && !(st->opts->allow_empty && st->errors == 0)) {
        kiln_util_err("%s: no valid folded line ('frame;frame;... COUNT')", label);
        rc = -1;
    }
    free(st->path);
    free(st->ends);
    free(st->names);
    kiln_buf_free(&st->prev);
    return rc;
}

int kiln_folded_read_fp(kiln_profile_t *p, FILE *fp, const char *label,
                        const kiln_folded_opts_t *opts)
{
    kiln_folded_state_t st;
    kiln_folded_state_init(&st, p, opts);
    int rc = kiln_folded_read_one(&st, fp, label);
    return kiln_folded_state_finish(&st, rc, label);
}

int kiln_folded_read(kiln_profile_t *p, const char *const *paths, int npaths,
                     const kiln_folded_opts_t *opts)
{
    static const char *const stdin_only[] = {"-"};
    kiln_folded_state_t st;
    kiln_folded_state_init(&st, p, opts);
    if (npaths == 0) {
        paths = stdin_only;
        npaths = 1;
    }
    const char **expanded;
    int nexpanded;
    if (kiln_sets_expand(paths, npaths, opts->dir_kind, &expanded, &nexpanded) != 0) {
        kiln_folded_state_finish(&st, -1, "input");
        return -1;
    }
    const char *label = nexpanded > 1 || npaths > 1 ? "input"
                        : strcmp(paths[0], "-") ? paths[0] : "<stdin>";
    paths = expanded;
    npaths = nexpanded;
    int rc = 0;
    for (int i = 0; i < npaths && rc == 0; i++) {
        bool use_stdin = strcmp(paths[i], "-") == 0;
        const char *label = use_stdin ? "<stdin>" : paths[i];
        FILE *fp = use_stdin ? stdin : fopen(paths[i], "r");
        if (!fp) {
            kiln_util_err("%s: cannot open: %s", label, strerror(errno));
            rc = -1;
            break;
        }
        /* A new file starts a new prefix. */
        st.depth = 0;
        st.prev.len = 0;
        rc = kiln_folded_read_one(&st, fp, label);
        if (!use_stdin)
            fclose(fp);
    }
    rc = kiln_folded_state_finish(&st, rc, label);
    kiln_sets_free(expanded, nexpanded);
    return rc;
}
