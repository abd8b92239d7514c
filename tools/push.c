/* push.c — `kiln push`: sends folded or pprof profiles to a
 * Pyroscope-compatible ingest endpoint, one POST /ingest per file, over a
 * plain HTTP/1.1 connection written here (one request, Connection: close,
 * bounded in time and size). TLS is not spoken: https:// is refused. */
#include "kiln.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char kiln_push_usage[] =
    "usage: kiln push --url URL [--name APP] [--from T] [--until T] [--timeout S] FILE...\n"
    "\n"
    "Sends each FILE (folded stacks, or a gzip pprof profile such as 'kiln\n"
    "convert --to pprof' writes) to a Pyroscope-compatible server:\n"
    "  POST URL/ingest?name=APP.TYPE{}&from=T&until=T&format=folded|pprof&...\n"
    "TYPE is Pyroscope's name for the kiln profile kind: cpu -> cpu,\n"
    "alloc_bytes -> alloc_space, alloc_count -> alloc_objects, leak_bytes and\n"
    "live_bytes, leak_bytes and peak_bytes -> inuse_space, live_count and\n"
    "leak_count -> inuse_objects (leak and peak labelled kiln_profile=leak|peak),\n"
    "lock_wait_ns -> block_duration, lock_wait_count -> block_count.\n"
    "An interval set's file (PROG.PID.TAG.KIND.folded) is sent under PROG, for\n"
    "the span its meta.json gives (from_unix, until_unix).\n"
    "\n"
    "  --url URL       the server, http://HOST[:PORT][/PATH] (https is not spoken)\n"
    "  --name APP      application name (default: PROG from PROG.PID.KIND.folded);\n"
    "                  with '{', the full name, sent as given\n"
    "  --from T        start, UNIX seconds (default: the set's from_unix, else\n"
    "                  until minus wall_seconds from PROG.PID.meta.json, else\n"
    "                  until - 1)\n"
    "  --until T       end, UNIX seconds (default: the set's until_unix, else\n"
    "                  the file's modification time)\n"
    "  --timeout S     seconds allowed for each request as a whole: connect,\n"
    "                  send and the whole reply (30)\n"
    "  -h, --help      this help\n"
    "\n"
    "Folded files are checked line by line first (malformed lines are\n"
    "reported and left out; two-count lines are refused). Stops at the first\n"
    "failure: exit 1 with one kiln: line.\n";

#define KILN_PUSH_MAX_BODY (512u << 20)
#define KILN_PUSH_MAX_REPLY 65536

typedef struct kiln_push_url_s {
    char *host, *port, *base; /* base: path prefix, no trailing '/' */
} kiln_push_url_t;

typedef struct kiln_push_opts_s {
    kiln_push_url_t url;
    const char *url_text, *name;
    long from, until;
    bool from_set, until_set;
    int timeout_ms;
} kiln_push_opts_t;

static int64_t kiln_push_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before DEADLINE (0 when past). */
static int kiln_push_left(int64_t deadline)
{
    int64_t left = deadline - kiln_push_now_ms();
    return left > 0 ? (int)left : 0;
}

/* Waits until FD is ready for EVENTS or DEADLINE passes: 1 ready, 0 timed
 * out, -1 error. */
static int kiln_push_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int ready = poll(&pfd, 1, kiln_push_left(deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0 && kiln_push_left(deadline) > 0)
            continue;
        return ready < 0 ? -1 : ready > 0;
    }
}

static void kiln_push_url_free(kiln_push_url_t *u)
{
    free(u->host);
    free(u->port);
    free(u->base);
}

/* http://HOST[:PORT][/PATH], HOST a name, an IPv4 address or [IPv6]. */
static int kiln_push_parse_url(const char *s, kiln_push_url_t *u)
{
    memset(u, 0, sizeof *u);
    /* The URL goes into the request line and Host header as it is: a CR or
     * LF would inject headers, a space would end the request target. */
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f)
            kiln_util_usage_error("push", "--url must not contain spaces, control characters "
                                  "or non-ASCII bytes (percent-encode them): byte 0x%02x at "
                                  "offset %zu", *c, (size_t)(c - (const unsigned char *)s));
    if (strncmp(s, "https://", 8) == 0)
        kiln_util_usage_error("push", "https is not supported: kiln push speaks plain HTTP "
                              "(use http:// or a local TLS-terminating proxy)");
    if (strncmp(s, "http://", 7) != 0)
        kiln_util_usage_error("push", "--url must start with http://, not '%s'", s);
    const char *h = s + 7, *end = h + strcspn(h, "/?#");
    if (*end == '?' || *end == '#' || strchr(end, '?') || strchr(end, '#'))
        kiln_util_usage_error("push", "--url takes no query or fragment: '%s'", s);
    if (memchr(h, '@', (size_t)(end - h)))
        kiln_util_usage_error("push", "--url with user information is not supported");
    const char *port = NULL, *hend = end;
    if (*h == '[') {
        const char *close = memchr(h, ']', (size_t)(end - h));
        if (!close)
            kiln_util_usage_error("push", "--url: unterminated IPv6 address in '%s'", s);
        if (close + 1 < end && close[1] == ':')
            port = close + 2;
        else if (close + 1 != end)
            kiln_util_usage_error("push", "--url: bad host in '%s'", s);
        u->host = strndup(h + 1, (size_t)(close - h - 1));
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        if (colon) {
            port = colon + 1;
            hend = colon;
        }
        u->host = strndup(h, (size_t)(hend - h));
    }
    long pv;
    char *pstr = port ? strndup(port, (size_t)(end - port)) : kiln_util_xstrdup("80");
    if (!u->host || !pstr || !*u->host || kiln_util_parse_long(pstr, 1, 65535, &pv) != 0)
        kiln_util_usage_error("push", "--url: bad host or port in '%s'", s);
    u->port = pstr;
    size_t blen = strlen(end);
    while (blen > 0 && end[blen - 1] == '/')
        blen--;
    u->base = strndup(end, blen);
    return 0;
}

/* Appends S percent-encoded for a query value (RFC 3986 unreserved kept). */
static void kiln_push_qvalue(kiln_buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            kiln_buf_addc(b, (char)c);
        else
            kiln_buf_printf(b, "%%%02X", c);
    }
}

/* The whole file, bounded. NULL after a kiln: line. */
static char *kiln_push_slurp(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        kiln_util_err("%s: cannot open: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        kiln_util_err("%s: %s", path, S_ISREG(st.st_mode) ? "too large to send" : "not a file");
        close(fd);
        return NULL;
    }
    kiln_buf_t b = {0};
    kiln_buf_reserve(&b, (size_t)st.st_size);
    for (;;) {
        kiln_buf_reserve(&b, 65536);
        ssize_t got = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            kiln_util_err("%s: read error: %s", path, strerror(errno));
            close(fd);
            kiln_buf_free(&b);
            return NULL;
        }
        if (got == 0)
            break;
        b.len += (size_t)got;
        if (b.len > max) {
            kiln_util_err("%s: too large to send", path);
            close(fd);
            kiln_buf_free(&b);
            return NULL;
        }
    }
    close(fd);
    kiln_buf_addc(&b, '\0');
    *len = b.len - 1;
    return b.data;
}

/* Checks folded text and keeps its valid lines, reporting the others like
 * every folded reader. -1 after a kiln: line, else the number of lines. */
static long kiln_push_check_folded(const char *path, const char *text, size_t len,
                                   kiln_buf_t *body)
{
    long lineno = 0, valid = 0, errors = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - pos;
        const char *line = text + pos;
        pos = end + 1;
        lineno++;
        size_t blank = 0;
        while (blank < n && (line[blank] == ' ' || line[blank] == '\t' || line[blank] == '\r'))
            blank++;
        if (blank == n)
            continue;
        size_t stack_len;
        kiln_folded_count_t counts[2];
        int ncounts;
        const char *what = kiln_folded_parse_line(line, n, &stack_len, counts, &ncounts);
        if (!what && ncounts == 2) {
            kiln_util_err("%s:%ld: a differential line (two counts) cannot be pushed", path,
                          lineno);
            return -1;
        }
        if (what) {
            if (++errors <= 10)
                kiln_util_err("%s:%ld: %s; line not sent", path, lineno, what);
            continue;
        }
        valid++;
        kiln_buf_add(body, line, n);
        kiln_buf_addc(body, '\n');
    }
    if (errors > 10)
        kiln_util_err("%s: %ld malformed lines not sent in all (first 10 shown)", path, errors);
    if (valid == 0 && errors > 0) {
        kiln_util_err("%s: no valid folded line ('frame;frame;... COUNT')", path);
        return -1;
    }
    return valid;
}

/* PROG.PID[.TAG].KIND from a file name: the program, the kind (NULL if the
 * name is not kiln's) and the "DIR/PROG.PID[.TAG]" prefix for the meta file. */
static void kiln_push_names(const char *path, char **prog, const char **kind, char **prefix)
{
    static const char *const exts[] = {".folded", ".pb.gz", ".pprof", ".pb"};
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcmp(base + n - e, exts[i]) == 0) {
            n -= e;
            break;
        }
    }
    char *stem = strndup(base, n);
    if (!stem)
        kiln_util_die("out of memory");
    *kind = NULL;
    *prefix = NULL;
    /* kiln_folded_kind wants ".KIND.folded": ask it with the stem. */
    kiln_buf_t probe = {0};
    kiln_buf_printf(&probe, "%s.folded", stem);
    const char *k = kiln_folded_kind(probe.data);
    kiln_buf_free(&probe);
    char *dot = k ? stem + n - strlen(k) - 1 : NULL; /* ".KIND" */
    if (dot && dot > stem) {
        *dot = '\0';
        *kind = k;
        *prefix = strndup(path, (size_t)(base - path) + (size_t)(dot - stem));
        char *pid = strrchr(stem, '.');
        if (pid && pid > stem && pid[1] && strspn(pid + 1, "0123456789") == strlen(pid + 1))
            *pid = '\0';
    }
    kiln_sets_name_t nm; /* an interval set: PROG.PID.TAG.KIND */
    if (kiln_sets_parse(base, &nm) && nm.tag_len)
        stem[nm.prog_len] = '\0';
    *prog = stem;
}


/* Connects within DEADLINE; the socket stays non-blocking, every later
 * send and receive waits with kiln_push_wait against the same deadline. */
static int kiln_push_connect(const kiln_push_opts_t *o, int64_t deadline)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(o->url.host, o->url.port, &hints, &res);
    if (gai != 0) {
        kiln_util_err("push: %s: cannot resolve: %s", o->url.host, gai_strerror(gai));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                int ready = kiln_push_wait(fd, POLLOUT, deadline);
                socklen_t sl = sizeof err;
                if (ready == 0)
                    err = ETIMEDOUT;
                else if (ready < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
                    err = errno;
            }
        }
        if (err) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) {
        kiln_util_err("push: cannot connect to %s port %s: %s", o->url.host, o->url.port,
                      err == ETIMEDOUT ? "timed out" : strerror(err ? err : ECONNREFUSED));
        return -1;
    }
    return fd;
}

/* 0, or -1 with errno (ETIMEDOUT past the deadline). */
static int kiln_push_send_all(int fd, const char *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int ready = kiln_push_wait(fd, POLLOUT, deadline);
            if (ready == 0)
                errno = ETIMEDOUT;
            if (ready <= 0)
                return -1;
            continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends one request and reads the status. 0 on 2xx, else -1 after a kiln:
 * line (the server's reason and the start of its reply body). */
static int kiln_push_request(const kiln_push_opts_t *o, const char *target,
                             const char *content_type, const char *body, size_t body_len)
{
    /* --timeout bounds the whole request (connect, send, reply): a server
     * that trickles a byte at a time cannot hold kiln past it. */
    int64_t deadline = kiln_push_now_ms() + o->timeout_ms;
    int fd = kiln_push_connect(o, deadline);
    if (fd < 0)
        return -1;
    kiln_buf_t req = {0}, reply = {0};
    bool v6 = strchr(o->url.host, ':') != NULL;
    kiln_buf_printf(&req, "POST %s HTTP/1.1\r\nHost: %s%s%s%s%s\r\n", target, v6 ? "[" : "",
                    o->url.host, v6 ? "]" : "", strcmp(o->url.port, "80") ? ":" : "",
                    strcmp(o->url.port, "80") ? o->url.port : "");
    kiln_buf_printf(&req, "User-Agent: kiln/%s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                          "Connection: close\r\n\r\n", KILN_VERSION, content_type, body_len);
    int rc = 0;
    if (kiln_push_send_all(fd, req.data, req.len, deadline) != 0 ||
        kiln_push_send_all(fd, body, body_len, deadline) != 0) {
        kiln_util_err("push: %s: send failed: %s", o->url_text,
                      errno == ETIMEDOUT ? "timed out" : strerror(errno));
        rc = -1;
    }
    /* The status line and headers, and a little of the body for errors. */
    while (rc == 0 && reply.len < KILN_PUSH_MAX_REPLY) {
        kiln_buf_reserve(&reply, 4096);
        ssize_t got = recv(fd, reply.data + reply.len, 4096, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int ready = kiln_push_wait(fd, POLLIN, deadline);
            if (ready > 0)
                continue;
            if (ready == 0)
                errno = ETIMEDOUT;
        }
        if (got < 0) {
            kiln_util_err("push: %s: no %sreply: %s", o->url_text, reply.len ? "whole " : "",
                          errno == ETIMEDOUT ? "timed out" : strerror(errno));
            rc = -1;
            break;
        }
        if (got == 0)
            break;
        reply.len += (size_t)got;
        reply.data[reply.len] = '\0';
        char *hdr_end = strstr(reply.data, "\r\n\r\n");
        if (hdr_end && reply.len - (size_t)(hdr_end + 4 - reply.data) >= 200)
            break;
    }
    close(fd);
    int status = 0;
    char reason[64] = "";
    if (rc == 0 && (reply.len < 12 || sscanf(reply.data, "HTTP/1.%*1[01] %3d %63[^\r\n]",
                                              &status, reason) < 1)) {
        kiln_util_err("push: %s: not an HTTP reply", o->url_text);
        rc = -1;
    }
    if (rc == 0 && (status < 200 || status > 299)) {
        /* One line: the reason and the first line of the body, with every
         * byte a terminal could act on escaped (\xHH). */
        kiln_buf_t why = {0}, said = {0};
        kiln_escape_bytes(&said, reason, strlen(reason));
        char *b = strstr(reply.data, "\r\n\r\n");
        size_t blen = 0;
        for (b = b ? b + 4 : NULL; b && b[blen] && b[blen] != '\n' && blen < 160; blen++)
            ;
        if (b && blen && b[blen - 1] == '\r')
            blen--;
        if (b)
            kiln_escape_bytes(&why, b, blen);
        kiln_util_err("push: %s: HTTP %d %s%s%s", o->url_text, status, said.len ? said.data : "",
                      why.len ? ": " : "", why.len ? why.data : "");
        kiln_buf_free(&why);
        kiln_buf_free(&said);
        rc = -1;
    }
    kiln_buf_free(&req);
    kiln_buf_free(&reply);
    return rc;
}

/* Pyroscope's profile type names (its ingest adapter rejects others). */
static const char *kiln_push_type(const char *kind, const char **label, const char **units,
                                  const char **aggregation)
{
    static const char *const map[][5] = {
        {"cpu", "cpu", "", "samples", "sum"},
        {"wall", "wall", "", "samples", "sum"},
        {"alloc_bytes", "alloc_space", "", "bytes", "sum"},
        {"alloc_count", "alloc_objects", "", "objects", "sum"},
        {"live_bytes", "inuse_space", "", "bytes", "average"},
        {"live_count", "inuse_objects", "", "objects", "average"},
        {"leak_bytes", "inuse_space", "kiln_profile=leak", "bytes", "average"},
        {"leak_count", "inuse_objects", "kiln_profile=leak", "objects", "average"},
        {"peak_bytes", "inuse_space", "kiln_profile=peak", "bytes", "average"},
        {"lock_wait_ns", "block_duration", "", "lock_nanoseconds", "sum"},
        {"lock_wait_count", "block_count", "", "lock_samples", "sum"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (kind && strcmp(kind, map[i][0]) == 0) {
            *label = map[i][2];
            *units = map[i][3];
            *aggregation = map[i][4];
            return map[i][1];
        }
    }
    *label = "";
    *units = "samples";
    *aggregation = "sum";
    return "cpu";
}

static int kiln_push_file(const kiln_push_opts_t *o, const char *path)
{
    size_t len;
    char *data = kiln_push_slurp(path, KILN_PUSH_MAX_BODY, &len);
    if (!data)
        return -1;
    bool pprof = len >= 2 && (unsigned char)data[0] == 0x1f && (unsigned char)data[1] == 0x8b;
    kiln_buf_t body = {0};
    if (!pprof) {
        long lines = kiln_push_check_folded(path, data, len, &body);
        if (lines < 0) {
            free(data);
            kiln_buf_free(&body);
            return -1;
        }
        if (lines == 0) {
            fprintf(stderr, "kiln: %s: empty profile, not sent\n", path);
            free(data);
            kiln_buf_free(&body);
            return 0;
        }
    }
    char *prog, *prefix;
    const char *kind, *label, *units, *aggregation;
    kiln_push_names(path, &prog, &kind, &prefix);
    const char *type = kiln_push_type(kind, &label, &units, &aggregation);

    /* Time range and rate: the options, else the file and its meta.json. */
    struct stat st;
    long until = o->until_set ? o->until : stat(path, &st) == 0 ? (long)st.st_mtime
                                                                 : (long)time(NULL);
    double wall = 0, hz = 0, wall_hz = 0, set_from = 0, set_until = 0;
    if (prefix) {
        kiln_buf_t meta_path = {0};
        kiln_buf_printf(&meta_path, "%s.meta.json", prefix);
        struct stat mst;
        kiln_meta_t meta;
        /* Read as every meta.json is (a regular file only: a FIFO planted
         * there must not block); a bad one is said and the defaults used. */
        if (lstat(meta_path.data, &mst) == 0 && kiln_meta_read(&meta, meta_path.data, false) == 0) {
            kiln_meta_seconds(&meta, KILN_META_WALL_SECONDS, &wall);
            kiln_meta_seconds(&meta, KILN_META_HZ_REQUESTED, &hz);
            kiln_meta_seconds(&meta, KILN_META_WALL_HZ, &wall_hz);
            /* A dump's set says the span it covers. */
            if (kiln_meta_seconds(&meta, KILN_META_FROM_UNIX, &set_from) != 0 ||
                kiln_meta_seconds(&meta, KILN_META_UNTIL_UNIX, &set_until) != 0 ||
                !(set_until >= set_from && set_from > 0))
                set_from = set_until = 0;
            kiln_meta_free(&meta);
        }
        kiln_buf_free(&meta_path);
    }
    long span = wall >= 1 ? (long)ceil(wall) : 1;
    if (set_until > 0 && !o->until_set && !o->from_set) {
        until = (long)ceil(set_until);
        span = until - (long)floor(set_from);
        span = span > 0 ? span : 1;
    }
    long from = o->from_set ? o->from : until - span;
    if (o->from_set && !o->until_set && until <= from)
        until = from + span;

    kiln_buf_t name = {0}, target = {0};
    if (o->name && strchr(o->name, '{'))
        kiln_buf_adds(&name, o->name);
    else
        kiln_buf_printf(&name, "%s.%s{%s}", o->name ? o->name : prog, type, label);
    kiln_buf_printf(&target, "%s/ingest?name=", o->url.base);
    kiln_push_qvalue(&target, name.data);
    kiln_buf_printf(&target, "&from=%ld&until=%ld&format=%s&spyName=kiln", from, until,
                    pprof ? "pprof" : "folded");
    if (!pprof) {
        if (hz >= 1 && strcmp(type, "cpu") == 0)
            kiln_buf_printf(&target, "&sampleRate=%.0f", hz);
        else if (wall_hz >= 1 && strcmp(type, "wall") == 0)
            kiln_buf_printf(&target, "&sampleRate=%.0f", wall_hz);
        kiln_buf_printf(&target, "&units=%s&aggregationType=%s", units, aggregation);
    }
    const char *payload = pprof ? data : body.data;
    size_t payload_len = pprof ? len : body.len;
    int rc = kiln_push_request(o, target.data,
                               pprof ? "application/octet-stream" : "text/plain; charset=utf-8",
                               payload, payload_len);
    if (rc == 0)
        printf("pushed %s as %s (%s, %zu bytes, from %ld until %ld)\n", path, name.data,
               pprof ? "pprof" : "folded", payload_len, from, until);
    free(data);
    free(prog);
    free(prefix);
    kiln_buf_free(&body);
    kiln_buf_free(&name);
    kiln_buf_free(&target);
    return rc;
}

static long kiln_push_time(const char *opt, const char *arg)
{
    long v;
    if (kiln_util_parse_long(arg, 0, 253402300799L, &v) != 0)
        kiln_util_usage_error("push", "%s needs UNIX seconds, not '%s'", opt, arg);
    return v;
}

int kiln_push_main(int argc, char **argv)
{
    enum { KILN_PUSH_URL = 256, KILN_PUSH_NAME, KILN_PUSH_FROM, KILN_PUSH_UNTIL,
           KILN_PUSH_TIMEOUT };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, KILN_PUSH_URL},
        {"name", required_argument, NULL, KILN_PUSH_NAME},
        {"from", required_argument, NULL, KILN_PUSH_FROM},
        {"until", required_argument, NULL, KILN_PUSH_UNTIL},
        {"timeout", required_argument, NULL, KILN_PUSH_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_push_opts_t o = {.timeout_ms = 30000};
    double secs;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "", longopts, "push", kiln_push_usage)) != -1) {
        switch (c) {
        case KILN_PUSH_URL: o.url_text = optarg; break;
        case KILN_PUSH_NAME:
            if (!*optarg || strpbrk(optarg, " \t\r\n"))
                kiln_util_usage_error("push", "--name needs a name without spaces");
            o.name = optarg;
            break;
        case KILN_PUSH_FROM: o.from = kiln_push_time("--from", optarg); o.from_set = true; break;
        case KILN_PUSH_UNTIL:
            o.until = kiln_push_time("--until", optarg);
            o.until_set = true;
            break;
        case KILN_PUSH_TIMEOUT:
            if (kiln_util_parse_double(optarg, &secs) != 0 || strchr(optarg, '%') ||
                !(secs >= 0.001) || secs > 3600)
                kiln_util_usage_error("push", "--timeout needs seconds (0.001 to 3600), not '%s'",
                                      optarg);
            o.timeout_ms = (int)ceil(secs * 1000);
            break;
        }
    }
    if (!o.url_text)
        kiln_util_usage_error("push", "--url is required");
    if (optind >= argc)
        kiln_util_usage_error("push", "needs at least one profile file");
    if (o.from_set && o.until_set && o.from >= o.until)
        kiln_util_usage_error("push", "--from must be before --until");
    kiln_push_parse_url(o.url_text, &o.url);
    int rc = 0;
    for (int i = optind; i < argc && rc == 0; i++)
        rc = kiln_push_file(&o, argv[i]);
    kiln_push_url_free(&o.url);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        kiln_util_err("<stdout>: write error");
        rc = -1;
    }
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
