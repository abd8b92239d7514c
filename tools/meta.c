/* meta.c — reading a profile set's meta.json: a strict JSON parser for the
 * one object the runtime writes, keeping its top-level keys (nested values
 * are checked and skipped). Counts are exact unsigned 64-bit integers,
 * never floating point; a malformed file is "FILE:LINE: what". The files
 * come from a shared output directory, so they are opened as regular files
 * only (kiln_util_open_regular) and read up to a size cap. Offline. */
#include "kiln.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KILN_META_DEPTH_MAX 32

typedef struct kiln_meta_parser_s {
    const char *s, *end;
    long line;
    const char *what; /* first error, NULL while fine */
    kiln_meta_t *m;
} kiln_meta_parser_t;

static void kiln_meta_fail(kiln_meta_parser_t *ps, const char *what)
{
    if (!ps->what)
        ps->what = what;
}

static void kiln_meta_blank(kiln_meta_parser_t *ps)
{
    while (ps->s < ps->end && (*ps->s == ' ' || *ps->s == '\t' || *ps->s == '\r' || *ps->s == '\n')) {
        if (*ps->s == '\n')
            ps->line++;
        ps->s++;
    }
}

static int kiln_meta_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void kiln_meta_utf8(kiln_buf_t *b, uint32_t cp)
{
    char u[4];
    if (cp < 0x80) {
        kiln_buf_addc(b, (char)cp);
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3f));
        kiln_buf_add(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        kiln_buf_add(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        kiln_buf_add(b, u, 4);
    }
}

/* A string at ps->s (on the quote), decoded into OUT when not NULL. */
static void kiln_meta_string(kiln_meta_parser_t *ps, kiln_buf_t *out)
{
    long start_line = ps->line;
    ps->s++;
    while (ps->s < ps->end && *ps->s != '"') {
        unsigned char c = (unsigned char)*ps->s;
        if (c < 0x20) {
            /* JSON strings hold no raw control bytes: a newline here is
             * an unterminated string, reported where it started. */
            ps->line = start_line;
            kiln_meta_fail(ps, c == '\n' ? "unterminated string" : "control character in a string");
            return;
        }
        if (c != '\\') {
            if (out)
                kiln_buf_addc(out, (char)c);
            ps->s++;
            continue;
        }
        if (ps->end - ps->s < 2)
            break;
        char e = ps->s[1];
        ps->s += 2;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple && e) {
            static const char repl[] = "\"\\/\b\f\n\r\t";
            if (out)
                kiln_buf_addc(out, repl[simple - "\"\\/bfnrt"]);
            continue;
        }
        if (e != 'u' || ps->end - ps->s < 4) {
            kiln_meta_fail(ps, "bad escape in a string");
            return;
        }
        uint32_t cp = 0;
        for (int i = 0; i < 4; i++) {
            int h = kiln_meta_hex(ps->s[i]);
            if (h < 0) {
                kiln_meta_fail(ps, "bad \\u escape in a string");
                return;
            }
            cp = cp << 4 | (uint32_t)h;
        }
        ps->s += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && ps->end - ps->s >= 6 && ps->s[0] == '\\' &&
            ps->s[1] == 'u') {
            uint32_t lo = 0;
            int ok = 1;
            for (int i = 0; i < 4; i++) {
                int h = kiln_meta_hex(ps->s[2 + i]);
                ok &= h >= 0;
                lo = lo << 4 | (uint32_t)(h < 0 ? 0 : h);
            }
            if (ok && lo >= 0xdc00 && lo < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                ps->s += 6;
            }
        }
        if (cp >= 0xd800 && cp < 0xe000)
            cp = 0xfffd; /* a lone surrogate */
        if (out)
            kiln_meta_utf8(out, cp);
    }
    if (ps->s >= ps->end) {
        ps->line = start_line;
        kiln_meta_fail(ps, "unterminated string");
        return;
    }
    ps->s++;
}

/* A number; *is_u64 and *u when it is a plain unsigned integer that fits. */
static void kiln_meta_number(kiln_meta_parser_t *ps, bool *is_u64, uint64_t *u)
{
    const char *p = ps->s;
    bool neg = p < ps->end && *p == '-';
    if (neg)
        p++;
    const char *digits = p;
    uint64_t v = 0;
    bool fits = true;
    while (p < ps->end && *p >= '0' && *p <= '9') {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            fits = false;
        else
            v = v * 10 + d;
        p++;
    }
    if (p == digits || (*digits == '0' && p - digits > 1)) {
        kiln_meta_fail(ps, "bad number");
        return;
    }
    bool integer = true;
    if (p < ps->end && *p == '.') {
        integer = false;
        const char *f = ++p;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
        if (p == f) {
            kiln_meta_fail(ps, "bad number");
            return;
        }
    }
    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        integer = false;
        p++;
        if (p < ps->end && (*p == '+' || *p == '-'))
            p++;
        const char *x = p;
        while (p < ps->end && *p >= '0' && *p <= '9')
            p++;
        if (p == x) {
            kiln_meta_fail(ps, "bad number");
            return;
        }
    }
    *is_u64 = integer && !neg && fits;
    *u = v;
    ps->s = p;
}

static void kiln_meta_literal(kiln_meta_parser_t *ps, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->s) < n || memcmp(ps->s, word, n) != 0) {
        kiln_meta_fail(ps, "unexpected character");
        return;
    }
    ps->s += n;
}

static void kiln_meta_value(kiln_meta_parser_t *ps, int depth, kiln_meta_entry_t *e);

/* An object or array at ps->s; the top-level object's keys go to ps->m. */
static void kiln_meta_container(kiln_meta_parser_t *ps, int depth)
{
    bool object = *ps->s == '{';
    char close = object ? '}' : ']';
    if (depth >= KILN_META_DEPTH_MAX) {
        kiln_meta_fail(ps, "nested too deeply");
        return;
    }
    ps->s++;
    kiln_meta_blank(ps);
    if (ps->s < ps->end && *ps->s == close) {
        ps->s++;
        return;
    }
    for (;;) {
        kiln_meta_entry_t *e = NULL;
        kiln_buf_t key = {0};
        if (object) {
            kiln_meta_blank(ps);
            if (ps->s >= ps->end || *ps->s != '"') {
                kiln_meta_fail(ps, ps->s >= ps->end ? "unexpected end of file" : "expected a key");
                return;
            }
            kiln_meta_string(ps, depth == 0 ? &key : NULL);
            if (ps->what) {
                kiln_buf_free(&key);
                return;
            }
            kiln_meta_blank(ps);
            if (ps->s >= ps->end || *ps->s != ':') {
                kiln_buf_free(&key);
                kiln_meta_fail(ps, "expected ':'");
                return;
            }
            ps->s++;
            if (depth == 0) {
                kiln_meta_t *m = ps->m;
                if (m->count == m->cap) {
                    m->cap = m->cap ? m->cap * 2 : 32;
                    m->entries = kiln_util_xrealloc(m->entries, m->cap * sizeof *m->entries);
                }
                e = &m->entries[m->count++];
                memset(e, 0, sizeof *e);
                e->key = key.data ? key.data : kiln_util_xstrdup("");
                e->line = ps->line;
            }
        }
        kiln_meta_value(ps, depth + 1, e);
        if (ps->what)
            return;
        kiln_meta_blank(ps);
        if (ps->s >= ps->end) {
            kiln_meta_fail(ps, "unexpected end of file");
            return;
        }
        if (*ps->s == ',') {
            ps->s++;
            continue;
        }
        if (*ps->s == close) {
            ps->s++;
            return;
        }
        kiln_meta_fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
        return;
    }
}

static void kiln_meta_value(kiln_meta_parser_t *ps, int depth, kiln_meta_entry_t *e)
{
    kiln_meta_blank(ps);
    if (ps->s >= ps->end) {
        kiln_meta_fail(ps, "unexpected end of file");
        return;
    }
    const char *start = ps->s;
    char c = *ps->s;
    kiln_buf_t text = {0};
    if (c == '"') {
        if (e)
            e->type = KILN_META_STRING;
        kiln_meta_string(ps, e ? &text : NULL);
    } else if (c == '{' || c == '[') {
        if (e)
            e->type = KILN_META_OTHER;
        kiln_meta_container(ps, depth);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        bool is_u64 = false;
        uint64_t u = 0;
        kiln_meta_number(ps, &is_u64, &u);
        if (e) {
            e->type = KILN_META_NUMBER;
            e->is_u64 = is_u64;
            e->u64 = u;
            kiln_buf_add(&text, start, (size_t)(ps->s - start));
        }
    } else if (c == 't' || c == 'f' || c == 'n') {
        kiln_meta_literal(ps, c == 't' ? "true" : c == 'f' ? "false" : "null");
        if (e) {
            e->type = KILN_META_OTHER;
            kiln_buf_add(&text, start, (size_t)(ps->s - start));
        }
    } else {
        kiln_meta_fail(ps, "unexpected character");
    }
    if (e) {
        if (ps->what) {
            kiln_buf_free(&text);
            return;
        }
        e->value = text.data ? text.data : kiln_util_xstrdup("");
        e->value_len = text.len;
    } else {
        kiln_buf_free(&text);
    }
}

int kiln_meta_parse(kiln_meta_t *m, const char *text, size_t len, const char *label, bool quiet)
{
    memset(m, 0, sizeof *m);
    kiln_meta_parser_t ps = {text, text + len, 1, NULL, m};
    kiln_meta_blank(&ps);
    if (ps.s >= ps.end || *ps.s != '{') {
        kiln_meta_fail(&ps, ps.s >= ps.end ? "empty file, not a JSON object" : "not a JSON object");
    } else {
        kiln_meta_container(&ps, 0);
        if (!ps.what) {
            kiln_meta_blank(&ps);
            if (ps.s < ps.end)
                kiln_meta_fail(&ps, "text after the object");
        }
    }
    if (ps.what) {
        if (!quiet)
            kiln_util_err("%s:%ld: %s", label, ps.line, ps.what);
        kiln_meta_free(m);
        return -1;
    }
    return 0;
}

int kiln_meta_read(kiln_meta_t *m, const char *path, bool quiet)
{
    memset(m, 0, sizeof *m);
    /* A meta.json is found in a directory others may write to: a FIFO, a
     * device or a symbolic link in its place is refused, not waited on. */
    int fd = kiln_util_open_regular(path, true, false);
    kiln_buf_t b = {0};
    if (fd < 0 || kiln_buf_read_fd(&b, fd, KILN_META_MAX) != 0) {
        if (!quiet)
            kiln_util_err("%s: cannot read: %s", path,
                          errno == EFBIG ? "larger than 1 MiB, not a kiln meta.json"
                                         : kiln_util_strerror(errno));
        return -1;
    }
    int rc = kiln_meta_parse(m, b.data, b.len, path, quiet);
    kiln_buf_free(&b);
    return rc;
}

void kiln_meta_free(kiln_meta_t *m)
{
    for (size_t i = 0; i < m->count; i++) {
        free(m->entries[i].key);
        free(m->entries[i].value);
    }
    free(m->entries);
    memset(m, 0, sizeof *m);
}

const kiln_meta_entry_t *kiln_meta_get(const kiln_meta_t *m, const char *key)
{
    /* The last one wins, as in most JSON readers. */
    for (size_t i = m->count; i-- > 0;)
        if (strcmp(m->entries[i].key, key) == 0)
            return &m->entries[i];
    return NULL;
}

const char *kiln_meta_str(const kiln_meta_t *m, const char *key)
{
    const kiln_meta_entry_t *e = kiln_meta_get(m, key);
    return e && e->type == KILN_META_STRING ? e->value : NULL;
}

int kiln_meta_u64(const kiln_meta_t *m, const char *key, uint64_t *out)
{
    const kiln_meta_entry_t *e = kiln_meta_get(m, key);
    if (!e)
        return -1;
    if (e->type != KILN_META_NUMBER || !e->is_u64)
        return -2;
    *out = e->u64;
    return 0;
}

int kiln_meta_seconds(const kiln_meta_t *m, const char *key, double *out)
{
    const kiln_meta_entry_t *e = kiln_meta_get(m, key);
    if (!e || e->type != KILN_META_NUMBER || e->value[0] == '-')
        return -1;
    char *end;
    double v = strtod(e->value, &end);
    if (*end || !(v >= 0) || v > 1e15)
        return -1;
    *out = v;
    return 0;
}
