/* sets.c — profile sets: the files one dump of a process writes,
 * PROG.PID[.TAG].KIND.EXT. Parses those names, reads the meta.json fields
 * the tool needs and turns a directory operand into the files that make up
 * each process's run. Offline; shared by dump, push and the folded reader. */
#include "kiln.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

static bool kiln_sets_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

/* "YYYYmmddTHHMMSSZ-NNNN" at S, followed by a dot. */
static bool kiln_sets_is_tag(const char *s)
{
    return strlen(s) > KILN_SETS_TAG_LEN && kiln_sets_digits(s, 8) && s[8] == 'T' &&
           kiln_sets_digits(s + 9, 6) && s[15] == 'Z' && s[16] == '-' &&
           kiln_sets_digits(s + 17, 4) && s[KILN_SETS_TAG_LEN] == '.';
}

bool kiln_sets_parse(const char *base, kiln_sets_name_t *out)
{
    /* The pid is the last ".DIGITS." whose rest (after an optional tag)
     * starts with a letter: PROG may hold dots and digits, KIND never
     * starts with a digit, and a tag is never all digits. */
    bool found = false;
    for (const char *dot = strchr(base, '.'); dot; dot = strchr(dot + 1, '.')) {
        if (dot == base)
            continue;
        size_t nd = strspn(dot + 1, "0123456789");
        const char *after = dot + 1 + nd;
        if (nd == 0 || nd > 9 || *after != '.')
            continue;
        kiln_sets_name_t n = {.prog_len = (size_t)(dot - base)};
        n.pid = strtol(dot + 1, NULL, 10);
        const char *rest = after + 1;
        if (kiln_sets_is_tag(rest)) {
            n.tag_off = (size_t)(rest - base);
            n.tag_len = KILN_SETS_TAG_LEN;
            rest += KILN_SETS_TAG_LEN + 1;
        }
        if ((*rest >= 'a' && *rest <= 'z') || (*rest >= 'A' && *rest <= 'Z')) {
            n.rest_off = (size_t)(rest - base);
            *out = n;
            found = true;
        }
    }
    return found;
}

char *kiln_sets_meta_string(const char *path, const char *key)
{
    kiln_meta_t m;
    if (kiln_meta_read(&m, path, false) != 0)
        return NULL;
    const kiln_meta_entry_t *e = kiln_meta_get(&m, key);
    char *value = e && e->type != KILN_META_OTHER ? kiln_util_xstrdup(e->value) : NULL;
    kiln_meta_free(&m);
    return value;
}

static int kiln_sets_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **kiln_sets_list(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = kiln_util_xrealloc(names, cap * sizeof *names);
        }
        names[n++] = kiln_util_xstrdup(de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, kiln_sets_cmp);
    *count = n;
    return names ? names : kiln_util_xcalloc(1, sizeof *names);
}

void kiln_sets_list_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* Kinds whose delta sets add up to the run; the others (live, leak, peak)
 * are snapshots, where only the latest set counts. */
static bool kiln_sets_additive(const char *kind)
{
    return strcmp(kind, "cpu") == 0 || strcmp(kind, "wall") == 0 || strcmp(kind, "alloc_bytes") == 0 ||
           strcmp(kind, "alloc_count") == 0 || strcmp(kind, "lock_wait_ns") == 0 ||
           strcmp(kind, "lock_wait_count") == 0;
}

/* The growing result of kiln_sets_expand. */
typedef struct kiln_sets_out_s {
    const char **paths;
    unsigned char *from_dir;
    int n;
    size_t cap;
} kiln_sets_out_t;

static void kiln_sets_push(kiln_sets_out_t *o, char *path, bool from_dir)
{
    if ((size_t)o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 16;
        o->paths = kiln_util_xrealloc(o->paths, o->cap * sizeof *o->paths);
        o->from_dir = kiln_util_xrealloc(o->from_dir, o->cap);
    }
    o->from_dir[o->n] = from_dir;
    o->paths[o->n++] = path;
}

/* Whether DIR/NAME is a regular file (not a FIFO, device or symbolic link
 * someone planted under a runtime name). */
static bool kiln_sets_regular(const char *dir, const char *name)
{
    kiln_buf_t b = {0};
    struct stat st;
    kiln_buf_printf(&b, "%s/%s", dir, name);
    bool ok = lstat(b.data, &st) == 0 && S_ISREG(st.st_mode);
    kiln_buf_free(&b);
    return ok;
}

static char *kiln_sets_join(const char *dir, const char *name)
{
    kiln_buf_t b = {0};
    size_t n = strlen(dir);
    kiln_buf_printf(&b, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
    return b.data;
}

/* The files of KIND that make up each process's run in DIR (see kiln.h). */
static int kiln_sets_expand_dir(const char *dir, const char *kind, kiln_sets_out_t *o)
{
    size_t n;
    char **names = kiln_sets_list(dir, &n);
    if (!names) {
        kiln_util_err("%s: cannot read directory: %s", dir, strerror(errno));
        return -1;
    }
    char suffix[64];
    snprintf(suffix, sizeof suffix, ".%s.folded", kind);
    size_t slen = strlen(suffix);
    int before = o->n;
    size_t i = 0;
    while (i < n) {
        size_t len = strlen(names[i]);
        kiln_sets_name_t nm;
        if (len <= slen || strcmp(names[i] + len - slen, suffix) != 0) {
            i++;
            continue;
        }
        if (!kiln_sets_regular(dir, names[i])) {
            /* Planted, or not a profile: reading it could block or never end. */
            kiln_util_err("%s/%s: not a regular file, skipped", dir, names[i]);
            free(names[i]);
            memmove(names + i, names + i + 1, (n - i - 1) * sizeof *names);
            n--;
            continue;
        }
        if (!kiln_sets_parse(names[i], &nm) || nm.rest_off + slen - 1 != len) {
            /* not a runtime name: taken as is */
            kiln_sets_push(o, kiln_sets_join(dir, names[i]), true);
            i++;
            continue;
        }
        /* One process: every name with the same "PROG.PID." (sorted, so
         * adjacent; tagged names sort before the untagged exit set). */
        size_t key = nm.prog_len;
        while (names[i][key] != '.' || key == nm.prog_len)
            key++;
        key++;
        size_t end = i, exit_set = n;
        size_t *tagged = kiln_util_xmalloc((n - i) * sizeof *tagged);
        size_t ntagged = 0;
        for (; end < n && strncmp(names[end], names[i], key) == 0; end++) {
            kiln_sets_name_t e;
            size_t elen = strlen(names[end]);
            if (elen <= slen || strcmp(names[end] + elen - slen, suffix) != 0 ||
                !kiln_sets_parse(names[end], &e) || e.prog_len != nm.prog_len ||
                e.rest_off + slen - 1 != elen)
                continue;
            if (e.tag_len == 0) {
                exit_set = end;
                continue;
            }
            /* A set is whole once its meta.json exists (written last). */
            kiln_buf_t meta = {0};
            kiln_buf_printf(&meta, "%.*s.meta.json", (int)(e.rest_off - 1), names[end]);
            if (bsearch(&meta.data, names, n, sizeof *names, kiln_sets_cmp) &&
                kiln_sets_regular(dir, meta.data))
                tagged[ntagged++] = end;
            kiln_buf_free(&meta);
        }
        if (exit_set < n) {
            kiln_sets_push(o, kiln_sets_join(dir, names[exit_set]), true);
        } else if (ntagged > 0) {
            const char *last = names[tagged[ntagged - 1]];
            kiln_sets_name_t e;
            kiln_sets_parse(last, &e);
            kiln_buf_t meta = {0};
            kiln_buf_printf(&meta, "%s/%.*s.meta.json", dir, (int)(e.rest_off - 1), last);
            char *mode = kiln_sets_meta_string(meta.data, "interval_mode");
            bool sum = kiln_sets_additive(kind) &&
                       !(mode && strcmp(mode, KILN_INTERVAL_CUMULATIVE) == 0);
            for (size_t k = sum ? 0 : ntagged - 1; k < ntagged; k++)
                kiln_sets_push(o, kiln_sets_join(dir, names[tagged[k]]), true);
            free(mode);
            kiln_buf_free(&meta);
        }
        free(tagged);
        i = end;
    }
    kiln_sets_list_free(names, n);
    if (o->n == before) {
        kiln_util_err("%s: no *%s file in this directory (--kind chooses another kind)", dir,
                      suffix);
        return -1;
    }
    return 0;
}

int kiln_sets_expand(const char *const *paths, int npaths, const char *kind,
                     const char ***out, int *nout, unsigned char **from_dir)
{
    kiln_sets_out_t o = {0};
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        if (strcmp(paths[i], "-") != 0 && stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (kiln_sets_expand_dir(paths[i], kind ? kind : KILN_KIND_CPU, &o) != 0) {
                kiln_sets_free(o.paths, o.n);
                free(o.from_dir);
                *out = NULL;
                *nout = 0;
                if (from_dir)
                    *from_dir = NULL;
                return -1;
            }
        } else {
            kiln_sets_push(&o, kiln_util_xstrdup(paths[i]), false);
        }
    }
    *out = o.paths;
    *nout = o.n;
    if (from_dir)
        *from_dir = o.from_dir;
    else
        free(o.from_dir);
    return 0;
}

void kiln_sets_free(const char **paths, int npaths)
{
    for (int i = 0; i < npaths; i++)
        free((char *)paths[i]);
    free(paths);
}

long kiln_sets_stale_pid(const char *name)
{
    /* ".NAME.PID.SEQ.tmp": the writer's pid is the next-to-last number. */
    size_t n = strlen(name), pre = strlen(KILN_FILE_TMP_PREFIX), suf = strlen(KILN_FILE_TMP_SUFFIX);
    if (n <= pre + suf || strncmp(name, KILN_FILE_TMP_PREFIX, pre) != 0 ||
        strcmp(name + n - suf, KILN_FILE_TMP_SUFFIX) != 0)
        return -1;
    const char *end = name + n - suf, *p = end;
    while (p > name && p[-1] >= '0' && p[-1] <= '9')
        p--;
    if (p == end || p == name || p[-1] != '.')
        return -1; /* no SEQ */
    const char *seq_dot = p - 1;
    p = seq_dot;
    while (p > name && p[-1] >= '0' && p[-1] <= '9')
        p--;
    if (p == seq_dot || p - 1 <= name || p[-1] != '.' || seq_dot - p > KILN_PID_DIGITS_MAX)
        return -1;
    long pid = strtol(p, NULL, 10);
    return pid > 0 ? pid : -1;
}

long kiln_sets_clean_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    long removed = 0;
    struct dirent *de;
    kiln_buf_t path = {0};
    while ((de = readdir(d)) != NULL) {
        long pid = kiln_sets_stale_pid(de->d_name);
        struct stat st;
        if (pid <= 0)
            continue;
        path.len = 0;
        kiln_buf_printf(&path, "%s/%s", dir, de->d_name);
        /* Only what is ours, a plain file, and whose writer is gone: a
         * live writer is still renaming it into place. */
        if (lstat(path.data, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        if (unlink(path.data) == 0)
            removed++;
    }
    closedir(d);
    kiln_buf_free(&path);
    return removed;
}
