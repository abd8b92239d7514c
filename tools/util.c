/* util.c — what every `kiln` command shares: "kiln:" error lines, memory that
 * never returns NULL (the tool exits on exhaustion), growable buffers, number
 * parsing and output files that appear whole (temporary name, then rename). */
#include "kiln.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void kiln_util_verr(const char *fmt, va_list ap)
{
    fputs("kiln: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void kiln_util_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_util_verr(fmt, ap);
    va_end(ap);
}

_Noreturn void kiln_util_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kiln_util_verr(fmt, ap);
    va_end(ap);
    exit(KILN_EXIT_FAIL);
}

_Noreturn void kiln_util_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kiln: %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'kiln %s --help')\n", cmd);
    va_end(ap);
    exit(KILN_EXIT_USAGE);
}

_Noreturn void kiln_util_bad_option(const char *cmd, int c, char *const argv[])
{
    /* getopt_long leaves the offending word at argv[optind - 1]. */
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        kiln_util_usage_error(cmd, "option '%s' needs a value", word);
    if (optopt && optopt != '?' && !(word[0] == '-' && word[1] == '-'))
        kiln_util_usage_error(cmd, "unknown option '-%c'", optopt);
    kiln_util_usage_error(cmd, "unknown option '%s'", word);
}

/* The argv being parsed: a new one starts getopt over. */
static char **kiln_util_opt_argv;

int kiln_util_getopt(int argc, char **argv, const char *shortopts,
                     const struct option *longopts, const char *cmd, const char *usage)
{
    char spec[64];
    bool in_order = shortopts[0] == '+';
    snprintf(spec, sizeof spec, "%s:%sh", in_order ? "+" : "", shortopts + in_order);
    if (argv != kiln_util_opt_argv) {
        kiln_util_opt_argv = argv;
        optind = 1;
        opterr = 0;
    }
    int c = getopt_long(argc, argv, spec, longopts, NULL);
    if (c == 'h') {
        fputs(usage, stdout);
        exit(fflush(stdout) == 0 ? 0 : KILN_EXIT_FAIL);
    }
    if (c == '?' || c == ':')
        kiln_util_bad_option(cmd, c, argv);
    return c;
}

long kiln_util_opt_count(const char *cmd, const char *opt, const char *arg)
{
    long v;
    if (kiln_util_parse_long(arg, 0, 1000000000, &v) != 0)
        kiln_util_usage_error(cmd, "%s needs a count, not '%s'", opt, arg);
    return v;
}

void *kiln_util_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        kiln_util_die("out of memory (%zu bytes)", n);
    return p;
}

void *kiln_util_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        kiln_util_die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *kiln_util_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        kiln_util_die("out of memory (%zu bytes)", n);
    return q;
}

char *kiln_util_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = kiln_util_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

int kiln_util_parse_double(const char *s, double *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return -1;
    if (*end == '%' && end[1] == '\0')
        end++;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

int kiln_util_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void kiln_buf_reserve(kiln_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = kiln_util_xrealloc(b->data, cap);
    b->cap = cap;
}

void kiln_buf_add(kiln_buf_t *b, const void *p, size_t n)
{
    kiln_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void kiln_buf_adds(kiln_buf_t *b, const char *s) { kiln_buf_add(b, s, strlen(s)); }

void kiln_buf_addc(kiln_buf_t *b, char c)
{
    kiln_buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void kiln_buf_printf(kiln_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    kiln_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void kiln_buf_free(kiln_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int kiln_util_open_regular(const char *path, bool nofollow, bool allow_pipe)
{
    /* O_NONBLOCK: opening a FIFO nobody writes to must not wait; O_NOCTTY:
     * a terminal device never becomes ours. Cleared again for the reads. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    if (!S_ISREG(st.st_mode) && !(allow_pipe && S_ISFIFO(st.st_mode))) {
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : KILN_ENOTREG;
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

const char *kiln_util_strerror(int err)
{
    if (err == KILN_ENOTREG)
        return "not a regular file";
    if (err == ELOOP)
        return "a symbolic link (not followed here)";
    return strerror(err);
}

int kiln_buf_read_file(kiln_buf_t *b, const char *path, size_t max)
{
    int fd = kiln_util_open_regular(path, false, false);
    if (fd < 0)
        return -1;
    return kiln_buf_read_fd(b, fd, max);
}

int kiln_buf_read_fd(kiln_buf_t *b, int fd, size_t max)
{
    int err = 0;
    for (;;) {
        kiln_buf_reserve(b, 4096);
        size_t room = b->cap - b->len - 1;
        ssize_t got = read(fd, b->data + b->len, room);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            err = errno;
            break;
        }
        if (got == 0)
            break;
        b->len += (size_t)got;
        if (b->len > max) {
            err = EFBIG;
            break;
        }
    }
    close(fd);
    if (err) {
        kiln_buf_free(b);
        errno = err;
        return -1;
    }
    kiln_buf_addc(b, '\0');
    b->len--;
    return 0;
}

void kiln_util_fmt_count(kiln_buf_t *b, double v, bool commas)
{
    char digits[64];
    if (v != floor(v) || fabs(v) >= 1e18) {
        kiln_buf_printf(b, "%.2f", v);
        return;
    }
    int n = snprintf(digits, sizeof digits, "%.0f", v);
    if (!commas || n <= 3) {
        kiln_buf_add(b, digits, (size_t)n);
        return;
    }
    int i = 0;
    if (digits[0] == '-') {
        kiln_buf_addc(b, '-');
        i = 1;
    }
    for (; i < n; i++) {
        kiln_buf_addc(b, digits[i]);
        int left = n - i - 1;
        if (left > 0 && left % 3 == 0)
            kiln_buf_addc(b, ',');
    }
}

/* The temporary file being written, removed if a signal ends the tool
 * (the target itself is only ever renamed into place whole). */
static char *volatile kiln_out_pending;

static void kiln_out_on_signal(int sig)
{
    char *tmp = kiln_out_pending; /* async-signal-safe: unlink, raise */
    if (tmp)
        unlink(tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void kiln_out_guard(char *tmp_path)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT};
    kiln_out_pending = tmp_path;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = tmp_path ? kiln_out_on_signal : SIG_DFL;
        sigemptyset(&sa.sa_mask);
        /* Leave alone a signal the caller chose to ignore. */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

/* The descriptor behind "/dev/stdout", "/dev/fd/N", "/proc/self/fd/N":
 * names of a descriptor kiln already has, written through it (what a shell
 * does with '>'), or -1. */
static int kiln_out_fd_name(const char *path)
{
    static const char *const prefixes[] = {"/dev/fd/", "/proc/self/fd/"};
    if (strcmp(path, "/dev/stdout") == 0)
        return 1;
    if (strcmp(path, "/dev/stderr") == 0)
        return 2;
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(prefixes[i]);
        long fd;
        if (strncmp(path, prefixes[i], n) == 0 && kiln_util_parse_long(path + n, 0, INT_MAX, &fd) == 0)
            return (int)fd;
    }
    return -1;
}

/* Writes straight into an existing target that is not a regular file (a
 * device such as /dev/null, a FIFO, a descriptor name): renaming over it
 * would replace the node itself. Nothing can be taken back on abort. */
static int kiln_out_open_in_place(kiln_out_t *o, const char *path, int fd_name)
{
    int fd = fd_name >= 0 ? fcntl(fd_name, F_DUPFD_CLOEXEC, 3)
                          : open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        kiln_util_err("%s: cannot open for writing: %s", path, strerror(errno));
        return -1;
    }
    o->fp = fdopen(fd, "w");
    if (!o->fp) {
        close(fd);
        kiln_util_die("%s: fdopen: %s", path, strerror(errno));
    }
    o->path = kiln_util_xstrdup(path);
    o->in_place = true;
    return 0;
}

int kiln_out_open(kiln_out_t *o, const char *path)
{
    memset(o, 0, sizeof *o);
    if (!path || strcmp(path, "-") == 0) {
        o->fp = stdout;
        return 0;
    }
    int fd_name = kiln_out_fd_name(path);
    struct stat st, lst;
    if (fd_name >= 0)
        return kiln_out_open_in_place(o, path, fd_name);
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode)) {
            kiln_util_err("%s: is a directory", path);
            return -1;
        }
        return kiln_out_open_in_place(o, path, -1);
    }
    /* A symbolic link to a regular file: the file is replaced (whole, by
     * rename in its own directory), the link stays a link. */
    char *target = NULL;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode) && (target = realpath(path, NULL)) != NULL)
        path = target;
    size_t n = strlen(path);
    o->path = kiln_util_xstrdup(path);
    free(target);
    path = o->path;
    o->tmp_path = kiln_util_xmalloc(n + 32);
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        snprintf(o->tmp_path, n + 32, "%s.tmp%ld.%d", path, (long)getpid(), attempt);
        fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        kiln_util_err("%s: cannot create: %s", path, strerror(errno));
        free(o->path);
        free(o->tmp_path);
        memset(o, 0, sizeof *o);
        return -1;
    }
    o->fp = fdopen(fd, "w");
    if (!o->fp) {
        close(fd);
        unlink(o->tmp_path);
        kiln_util_die("%s: fdopen: %s", path, strerror(errno));
    }
    setvbuf(o->fp, NULL, _IOFBF, 1 << 16);
    kiln_out_guard(o->tmp_path);
    return 0;
}

int kiln_out_commit(kiln_out_t *o)
{
    int rc = 0;
    if (!o->fp)
        return -1;
    if (o->fp == stdout) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
            kiln_util_err("<stdout>: write error: %s", strerror(errno));
            rc = -1;
        }
        o->fp = NULL;
        return rc;
    }
    if (ferror(o->fp) | fflush(o->fp)) {
        kiln_util_err("%s: write error: %s", o->path, strerror(errno));
        rc = -1;
    }
    if (fclose(o->fp) != 0 && rc == 0) {
        kiln_util_err("%s: write error: %s", o->path, strerror(errno));
        rc = -1;
    }
    o->fp = NULL;
    if (o->in_place) {
        free(o->path);
        o->path = NULL;
        return rc;
    }
    kiln_out_guard(NULL);
    if (rc == 0 && rename(o->tmp_path, o->path) != 0) {
        kiln_util_err("%s: cannot rename into place: %s", o->path, strerror(errno));
        rc = -1;
    }
    if (rc != 0)
        unlink(o->tmp_path);
    free(o->path);
    free(o->tmp_path);
    o->path = o->tmp_path = NULL;
    return rc;
}

int kiln_out_close(kiln_out_t *o, int rc)
{
    if (rc == 0)
        return kiln_out_commit(o);
    kiln_out_abort(o);
    return rc;
}

void kiln_out_abort(kiln_out_t *o)
{
    if (o->fp && o->fp != stdout) {
        fclose(o->fp);
        if (!o->in_place) { /* a device or FIFO is never removed */
            unlink(o->tmp_path);
            kiln_out_guard(NULL);
        }
    }
    free(o->path);
    free(o->tmp_path);
    memset(o, 0, sizeof *o);
}
