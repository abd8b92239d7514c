/* folded.c — the streaming folded-stack parser. Reads line by line (never the
 * whole file), checks each line, interns its frames and adds it to the trie.
 * Consecutive lines usually share a prefix (sorted input, deep stacks), so
 * the frames of the previous line are reused up to the first difference. */
#include "kiln.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KILN_FOLDED_SHOWN_ERRORS 10

static bool kiln_folded_space(char c) { return c == ' ' || c == '\t'; }

/* A count is digits with an optional fraction ("12", "0.5"): exact, the
 * whole part up to 2^64-1, the fraction to three decimals (more are cut).
 * 0, -1 when it is not a number, -2 when it is too large. */
static int kiln_folded_number(const char *s, size_t len, kiln_folded_count_t *out)
{
    uint64_t v = 0;
    uint32_t frac = 0, unit = KILN_COUNT_FRAC_UNIT;
    size_t i = 0;
    bool big = false;
    if (len == 0 || s[0] < '0' || s[0] > '9')
        return -1;
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            big = true;
        else
            v = v * 10 + d;
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            unit /= 10;
            frac += (uint32_t)(s[i] - '0') * unit;
        }
    }
    if (i != len)
        return -1;
    if (big)
        return -2;
    out->whole = v;
    out->frac = frac;
    return 0;
}

const char *kiln_folded_parse_line(const char *line, size_t len, size_t *stack_len,
                                   kiln_folded_count_t counts[2], int *ncounts)
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
    int num = kiln_folded_number(line + tok, len - tok, &counts[0]);
    if (num == -2)
        return "count is larger than 18446744073709551615";
    if (num != 0)
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
    kiln_folded_count_t before;
    if (tok2 > 0 && (num = kiln_folded_number(line + tok2, end - tok2, &before)) == -2)
        return "count is larger than 18446744073709551615";
    if (tok2 > 0 && num == 0) {
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

const char *const kiln_folded_kinds[] = {
    KILN_KIND_CPU,        KILN_KIND_ALLOC_BYTES, KILN_KIND_ALLOC_COUNT,
    KILN_KIND_LIVE_BYTES, KILN_KIND_LIVE_COUNT,  KILN_KIND_LEAK_BYTES,
    KILN_KIND_LEAK_COUNT, KILN_KIND_PEAK_BYTES,  "temp_count", KILN_KIND_WALL,
    KILN_KIND_LOCK_WAIT_NS, KILN_KIND_LOCK_WAIT_COUNT, NULL};

const char *kiln_folded_opt_kind(const char *cmd, const char *arg)
{
    for (size_t i = 0; kiln_folded_kinds[i]; i++)
        if (strcmp(arg, kiln_folded_kinds[i]) == 0)
            return kiln_folded_kinds[i];
    kiln_util_usage_error(cmd, "unknown kind '%s' (cpu, alloc_bytes, alloc_count, live_bytes, "
                          "live_count, leak_bytes, leak_count, peak_bytes, temp_count, wall, "
                          "lock_wait_ns, lock_wait_count)", arg);
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
static int kiln_folded_add_forward(kiln_folded_state_t *st, const char *s, size_t len,
                                   kiln_count_t value, double delta)
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
    return kiln_profile_add(st->p, depth ? st->path[depth - 1] : st->root, value, delta);
}

/* --reverse and --base: intern every frame, then reorder or cut. */
static int kiln_folded_add_general(kiln_folded_state_t *st, const char *s, size_t len,
                                   kiln_count_t value, double delta)
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
            return 0; /* not under the base frame: not part of this view */
    }
    uint32_t parent = st->root;
    kiln_folded_reserve(st, n);
    for (size_t i = from; i < n; i++) {
        parent = kiln_profile_child(st->p, parent, st->names[i]);
        st->path[i - from] = parent;
    }
    return kiln_profile_add(st->p, n > from ? st->path[n - from - 1] : st->root, value, delta);
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
        kiln_folded_count_t counts[2];
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
        if ((counts[0].frac || (ncounts == 2 && counts[1].frac)) &&
            kiln_profile_to_fractions(st->p) != 0) {
            kiln_util_err("%s:%ld: a fractional count among counts this large (past %llu): "
                          "they cannot be added exactly", label, lineno,
                          (unsigned long long)(UINT64_MAX / KILN_COUNT_FRAC_UNIT));
            rc = -1;
            break;
        }
        /* In the profile's units: exact integers, or thousandths. */
        kiln_count_t units[2] = {0, 0};
        bool fits = true;
        for (int k = 0; k < ncounts; k++) {
            units[k] = counts[k].whole;
            if (st->p->scale)
                fits &= !__builtin_mul_overflow(counts[k].whole, KILN_COUNT_FRAC_UNIT, &units[k]) &&
                        !__builtin_add_overflow(units[k], counts[k].frac, &units[k]);
        }
        kiln_count_t value = units[0];
        double delta = 0;
        if (ncounts == 2) {
            st->p->has_delta = true;
            value = st->opts->negate ? units[0] : units[1];
            delta = st->opts->negate ? (double)units[0] - (double)units[1]
                                     : (double)units[1] - (double)units[0];
        }
        if (value == 0 && delta == 0 && fits)
            continue;
        if (!fits || (st->opts->reverse || st->opts->base
                          ? kiln_folded_add_general(st, line, stack_len, value, delta)
                          : kiln_folded_add_forward(st, line, stack_len, value, delta)) != 0) {
            kiln_util_err("%s:%ld: counts add up past %s", label, lineno,
                          st->p->scale ? "the largest sum of fractional counts kept exactly"
                                       : "18446744073709551615");
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(fp)) {
        kiln_util_err("%s: read error: %s", label, strerror(errno ? errno : EIO));
        rc = -1;
    }
    free(line);
    return rc;
}

/* A named input: a regular file, or a pipe or FIFO the user named (kiln
 * flamegraph <(zcat x.gz)); never a device, and for a file found in a
 * directory (FROM_DIR) only a regular file that is not a symbolic link. */
static FILE *kiln_folded_open(const char *path, bool from_dir)
{
    int fd = kiln_util_open_regular(path, from_dir, !from_dir);
    if (fd < 0)
        return NULL;
    FILE *fp = fdopen(fd, "r");
    if (!fp) {
        int err = errno;
        close(fd);
        errno = err;
    }
    return fp;
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
    if (kiln_profile_finish(st->p) != 0 && rc == 0) {
        kiln_util_err("%s: counts add up past 18446744073709551615", label);
        rc = -1;
    }
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
    unsigned char *from_dir;
    if (kiln_sets_expand(paths, npaths, opts->dir_kind, &expanded, &nexpanded, &from_dir) != 0) {
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
        /* The runtime's stacks file, when one matches: inlined frames and
         * source lines (stacks.c). */
        kiln_stacks_t *stacks = use_stdin || st.p->flamechart ? NULL : kiln_stacks_load(paths[i]);
        if (stacks) {
            kiln_stacks_add(st.p, stacks, opts);
            st.valid++;
            st.p->stacks = kiln_util_xrealloc(st.p->stacks, (st.p->nstacks + 1) * sizeof *st.p->stacks);
            st.p->stacks[st.p->nstacks++] = stacks;
            continue;
        }
        st.p->stacks_partial = true;
        FILE *fp = use_stdin ? stdin
                             : kiln_folded_open(paths[i], from_dir[i] || opts->dir_files);
        if (!fp) {
            kiln_util_err("%s: cannot open: %s", label, kiln_util_strerror(errno));
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
    free(from_dir);
    return rc;
}
