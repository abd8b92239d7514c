/* dump.c — `kiln dump`: asks a running process for a profile set now. Finds
 * the dump signal and the output directory in /proc/PID, checks that the
 * process catches the signal (its default action could end it), sends it,
 * and polls the directory until a new set's meta.json (written last)
 * appears. Runs outside the profiled process; never touches its memory. */
#include "kiln.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char kiln_dump_usage[] =
    "usage: kiln dump [--signal SIG] [--timeout S] [--dir DIR] PID\n"
    "\n"
    "Asks process PID, running under libkiln with KILN_DUMP_SIGNAL set, for a\n"
    "profile set now: sends it the dump signal, waits for the new set\n"
    "(PROG.PID.TAG.*, whole once its meta.json is written) and prints its\n"
    "files, one a line. Then, e.g.: kiln top DIR/PROG.PID.TAG.cpu.folded\n"
    "\n"
    "  --signal SIG   the signal, as KILN_DUMP_SIGNAL spells it: USR1 USR2 HUP\n"
    "                 URG PWR WINCH VTALRM (SIG optional), 1-64 or RTMIN+N;\n"
    "                 default: KILN_DUMP_SIGNAL from /proc/PID/environ, which\n"
    "                 it must match when set. For a process whose environment\n"
    "                 kiln cannot read or that rewrote it (redis), or that\n"
    "                 chose its signal another way\n"
    "  --dir DIR      where the process writes (default: KILN_OUT from its\n"
    "                 environment, a relative one taken from its working\n"
    "                 directory now, else that directory). The runtime resolves\n"
    "                 KILN_OUT once, at start: if the process changed directory\n"
    "                 since, pass --dir.\n"
    "  --timeout S    give up after S seconds (10)\n"
    "  -h, --help     this help\n"
    "\n"
    "PID must catch the signal (its default action would end most programs):\n"
    "kiln checks /proc/PID/status first and refuses otherwise. The answer is a\n"
    "new meta.json the process wrote after the signal (owner, time, pid, tag\n"
    "and dump number checked), never a FIFO, device or link. Exit status 0\n"
    "with the files listed, 1 when no set came (no such process, permission\n"
    "denied, not a kiln process, timeout), 2 on a usage error.\n";

#define KILN_DUMP_POLL_NS 20000000L /* 20 ms between directory scans */

/* A signal as KILN_DUMP_SIGNAL spells it, by the runtime's own grammar
 * (kiln_contract_signal_parse): what it refuses is refused here, so a
 * program's own SIGTERM, SIGINT or SIGALRM handler is never set off by
 * mistake. 0 if refused. */
static int kiln_dump_signal(const char *spec)
{
    return kiln_contract_signal_parse(spec);
}

/* "SIGUSR2", or "SIGRTMIN+3" for real-time signals. */
static void kiln_dump_signame(int sig, char *out, size_t n)
{
    char name[16];
    kiln_contract_signal_name(sig, name, sizeof name);
    snprintf(out, n, "%s%s", name[0] >= '0' && name[0] <= '9' ? "signal " : "SIG", name);
}

/* /proc/PID/FILE whole, up to 1 MiB; NULL with errno set. */
static char *kiln_dump_proc_read(long pid, const char *file, size_t *len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/%s", pid, file);
    kiln_buf_t b = {0};
    if (kiln_buf_read_file(&b, path, 1u << 20) < 0)
        return NULL;
    *len = b.len;
    return b.data;
}

/* The value of NAME in a NUL-separated environment block, or NULL. */
static const char *kiln_dump_env(const char *env, size_t len, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < len; i += strlen(env + i) + 1)
        if (strncmp(env + i, name, n) == 0 && env[i + n] == '=')
            return env + i + n + 1;
    return NULL;
}

static bool kiln_dump_env_has_kiln(const char *env, size_t len)
{
    for (size_t i = 0; i < len; i += strlen(env + i) + 1)
        if (strncmp(env + i, "KILN_", 5) == 0)
            return true;
    return false;
}

/* The process's state letter from /proc/PID/stat ('Z' zombie, 'T' stopped),
 * or 0 when it is gone. */
static char kiln_dump_state(long pid)
{
    size_t len;
    char *stat = kiln_dump_proc_read(pid, "stat", &len);
    if (!stat)
        return 0;
    const char *paren = strrchr(stat, ')'); /* the name may hold anything */
    char state = paren && paren[1] == ' ' ? paren[2] : '?';
    free(stat);
    return state;
}

/* Whether the process has a handler for SIG (SigCgt in /proc/PID/status);
 * -1 when that cannot be read. */
static int kiln_dump_catches(long pid, int sig)
{
    size_t len;
    char *status = kiln_dump_proc_read(pid, "status", &len);
    if (!status)
        return -1;
    const char *line = strstr(status, "\nSigCgt:");
    int rc = -1;
    if (line) {
        unsigned long long mask = strtoull(line + 8, NULL, 16);
        rc = (mask >> (sig - 1)) & 1;
    }
    free(status);
    return rc;
}

/* The meta.json names of PID's tagged sets in DIR ("*.PID.TAG.meta.json"),
 * sorted; the rest of NAMES is freed. */
static char **kiln_dump_metas(const char *dir, long pid, size_t *count)
{
    size_t n;
    char **names = kiln_sets_list(dir, &n);
    if (!names) {
        *count = 0;
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        kiln_sets_name_t nm;
        if (kiln_sets_parse(names[i], &nm) && nm.pid == pid && nm.tag_len &&
            strcmp(names[i] + nm.rest_off, "meta.json") == 0)
            names[k++] = names[i];
        else
            free(names[i]);
    }
    *count = k;
    return names;
}

static bool kiln_dump_known(char **names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

/* What the answer to our signal must look like: a meta.json that the
 * process itself wrote (its file owner), after we asked (its mtime), for
 * this pid, under the tag of its file name, with a dump number past every
 * set the process had written before, and the "signal" reason (an interval
 * set that happened to land now is not ours). Anything else in a shared
 * directory (planted, copied, stale) is not taken as the answer. */
typedef struct kiln_dump_expect_s {
    long pid;
    long fsuid;         /* -1: unknown, not checked */
    struct timespec asked; /* CLOCK_REALTIME just before the signal */
    uint64_t last_seq;  /* dump_seq of the latest set before, 0 if none */
    const char *why;    /* why the last candidate was refused */
} kiln_dump_expect_t;

static bool kiln_dump_is_ours(const char *dir, const char *name, kiln_dump_expect_t *x)
{
    kiln_buf_t path = {0};
    kiln_buf_printf(&path, "%s/%s", dir, name);
    struct stat st;
    kiln_meta_t m;
    bool ours = false;
    kiln_sets_name_t nm;
    uint64_t pid, seq;
    const char *tag, *reason;
    /* File timestamps come from a coarse clock (up to a tick behind). */
    double asked = (double)x->asked.tv_sec + x->asked.tv_nsec / 1e9 - 0.05;
    if (lstat(path.data, &st) != 0 || !S_ISREG(st.st_mode))
        x->why = "not a regular file";
    else if (x->fsuid >= 0 && st.st_uid != (uid_t)x->fsuid)
        x->why = "owned by another user than the process";
    else if ((double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9 < asked)
        x->why = "older than the request";
    else if (kiln_meta_read(&m, path.data, true) != 0)
        x->why = "not a valid meta.json";
    else {
        kiln_sets_parse(name, &nm);
        if (kiln_meta_u64(&m, KILN_META_PID, &pid) != 0 || pid != (uint64_t)x->pid)
            x->why = "its \"pid\" is not the process's";
        else if (!(tag = kiln_meta_str(&m, KILN_META_TAG)) || strlen(tag) != nm.tag_len ||
                 strncmp(tag, name + nm.tag_off, nm.tag_len) != 0)
            x->why = "its \"tag\" is not its file name's";
        else if (kiln_meta_u64(&m, KILN_META_DUMP_SEQ, &seq) != 0 || seq <= x->last_seq ||
                 (long)(seq % 10000) != strtol(tag + KILN_TAG_LEN - 4, NULL, 10))
            x->why = "its \"dump_seq\" is not the next dump's";
        else if (!(reason = kiln_meta_str(&m, KILN_META_DUMP_REASON)) ||
                 strcmp(reason, KILN_REASON_SIGNAL) != 0)
            x->why = "not a signal's set (an interval set?)";
        else
            ours = true;
        kiln_meta_free(&m);
    }
    kiln_buf_free(&path);
    return ours;
}

/* The file-system uid the process creates files with (/proc/PID/status
 * "Uid:" real, effective, saved, fs), or -1. */
static long kiln_dump_fsuid(long pid)
{
    size_t len;
    char *status = kiln_dump_proc_read(pid, "status", &len);
    long uid = -1;
    const char *line = status ? strstr(status, "\nUid:") : NULL;
    unsigned long r, e, sv, fs;
    if (line && sscanf(line + 5, "%lu %lu %lu %lu", &r, &e, &sv, &fs) == 4)
        uid = (long)fs;
    free(status);
    return uid;
}

/* Whether libkiln.so is mapped into the process (/proc/PID/maps): 1, 0,
 * or -1 when that cannot be read. */
static int kiln_dump_maps_kiln(long pid)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%ld/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "/libkiln.so") != NULL;
    fclose(f);
    return found;
}

/* The runtime's own thread, named kiln-collector: the one thread the dump
 * signal should go to, so that no thread of the program is interrupted
 * (a handled signal cuts a sleep short with EINTR). 0 if not found. */
static long kiln_dump_collector(long pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    long tid = 0;
    struct dirent *e;
    while (tid == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char comm_path[384], comm[32] = "";
        snprintf(comm_path, sizeof comm_path, "%s/%s/comm", path, e->d_name);
        FILE *f = fopen(comm_path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f) && strcmp(comm, "kiln-collector\n") == 0)
            tid = atol(e->d_name);
        fclose(f);
    }
    closedir(d);
    return tid;
}

static double kiln_dump_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Prints DIR/PREFIX* (the set's files), meta.json last. */
static void kiln_dump_print_set(const char *dir, const char *meta)
{
    size_t plen = strlen(meta) - strlen("meta.json"), n;
    char **names = kiln_sets_list(dir, &n);
    const char *sep = dir[strlen(dir) - 1] == '/' ? "" : "/";
    for (size_t i = 0; names && i < n; i++)
        if (strncmp(names[i], meta, plen) == 0 && strcmp(names[i], meta) != 0)
            printf("%s%s%s\n", dir, sep, names[i]);
    printf("%s%s%s\n", dir, sep, meta);
    kiln_sets_list_free(names, names ? n : 0);
}

/* The directory PID writes into, malloc'ed, or NULL after a kiln: line. */
static char *kiln_dump_dir(long pid, const char *env, size_t envlen)
{
    const char *out = env ? kiln_dump_env(env, envlen, "KILN_OUT") : NULL;
    if (out && out[0] == '/')
        return kiln_util_xstrdup(out);
    char link[64], cwd[PATH_MAX];
    snprintf(link, sizeof link, "/proc/%ld/cwd", pid);
    ssize_t n = readlink(link, cwd, sizeof cwd - 1);
    if (n <= 0) {
        kiln_util_err("dump: %ld: cannot read %s: %s (pass --dir)", pid, link,
                      errno == EACCES ? "permission denied" : strerror(errno));
        return NULL;
    }
    cwd[n] = '\0';
    kiln_buf_t b = {0};
    if (out && *out)
        kiln_buf_printf(&b, "%s%s%s", cwd, strcmp(cwd, "/") ? "/" : "", out);
    else
        kiln_buf_adds(&b, cwd);
    return b.data;
}

int kiln_dump_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"signal", required_argument, NULL, 's'},
        {"timeout", required_argument, NULL, 't'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir_opt = NULL;
    int sig = 0;
    double timeout = 10;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "", longopts, "dump", kiln_dump_usage)) != -1) {
        switch (c) {
        case 's':
            if ((sig = kiln_dump_signal(optarg)) == 0)
                kiln_util_usage_error("dump", "--signal needs a signal the runtime can take "
                                      "(USR1, USR2, HUP, RTMIN+N...), not '%s'", optarg);
            break;
        case 't':
            if (kiln_util_parse_double(optarg, &timeout) != 0 || strchr(optarg, '%') ||
                timeout <= 0 || timeout > 86400)
                kiln_util_usage_error("dump", "--timeout needs seconds, not '%s'", optarg);
            break;
        case 'd':
            if (!*optarg)
                kiln_util_usage_error("dump", "--dir needs a directory");
            dir_opt = optarg;
            break;
        }
    }
    long pid;
    if (argc - optind != 1)
        kiln_util_usage_error("dump", "needs one PID");
    if (kiln_util_parse_long(argv[optind], 1, INT_MAX, &pid) != 0 ||
        strspn(argv[optind], "0123456789") != strlen(argv[optind]))
        kiln_util_usage_error("dump", "PID must be a process id, not '%s'", argv[optind]);

    if (kill((pid_t)pid, 0) != 0) {
        if (errno == ESRCH)
            kiln_util_err("dump: no process %ld", pid);
        else if (errno == EPERM)
            kiln_util_err("dump: %ld: permission denied: it belongs to another user (run kiln "
                          "dump as that user or root)", pid);
        else
            kiln_util_err("dump: %ld: %s", pid, strerror(errno));
        return KILN_EXIT_FAIL;
    }
    char state = kiln_dump_state(pid);
    if (state == 'Z' || state == 'X') {
        kiln_util_err("dump: process %ld has exited (a zombie: its parent has not reaped it)",
                      pid);
        return KILN_EXIT_FAIL;
    }
    size_t envlen = 0;
    char *env = kiln_dump_proc_read(pid, "environ", &envlen);
    if (!env && (!sig || !dir_opt)) {
        kiln_util_err("dump: %ld: cannot read /proc/%ld/environ: %s (pass --signal and --dir)",
                      pid, pid, errno == EACCES ? "permission denied" : strerror(errno));
        return KILN_EXIT_FAIL;
    }
    if (env && !sig && !kiln_dump_env_has_kiln(env, envlen)) {
        if (kiln_dump_maps_kiln(pid) == 1)
            kiln_util_err("dump: %ld has libkiln loaded but no KILN_* variable in "
                          "/proc/%ld/environ: it rewrote its environment (redis and others do, "
                          "for their process title); pass --signal with its KILN_DUMP_SIGNAL "
                          "(and --dir with its KILN_OUT)", pid, pid);
        else
            kiln_util_err("dump: %ld is not a kiln process: no KILN_* variable in its environment "
                          "and no libkiln.so loaded (start it with KILN_DUMP_SIGNAL=USR2 and "
                          "libkiln; if it rewrote its environment, pass --signal and --dir)", pid);
        free(env);
        return KILN_EXIT_FAIL;
    }
    const char *spec = env ? kiln_dump_env(env, envlen, "KILN_DUMP_SIGNAL") : NULL;
    if (sig && spec && *spec && kiln_dump_signal(spec) != sig) {
        /* The runtime listens to its own signal only; another could set off
         * whatever the program does with it (reopen logs, reload...). */
        kiln_util_err("dump: %ld was started with KILN_DUMP_SIGNAL=%s, not the --signal given: "
                      "not sent", pid, spec);
        free(env);
        return KILN_EXIT_FAIL;
    }
    if (!sig) {
        if (!spec || !*spec) {
            kiln_util_err("dump: %ld was not started with KILN_DUMP_SIGNAL; restart it with "
                          "KILN_DUMP_SIGNAL=USR2 (or pass --signal if it set one another way)",
                          pid);
            free(env);
            return KILN_EXIT_FAIL;
        }
        if ((sig = kiln_dump_signal(spec)) == 0) {
            kiln_util_err("dump: %ld: KILN_DUMP_SIGNAL=%s is not a signal kiln can send", pid,
                          spec);
            free(env);
            return KILN_EXIT_FAIL;
        }
    }
    char signame[32];
    kiln_dump_signame(sig, signame, sizeof signame);
    if (kiln_dump_catches(pid, sig) == 0) {
        kiln_util_err("dump: %ld does not catch %s, so it would not write a profile (and the "
                      "signal could end it): not sent. Is libkiln loaded, and did it accept "
                      "KILN_DUMP_SIGNAL?", pid, signame);
        free(env);
        return KILN_EXIT_FAIL;
    }
    char *dir = dir_opt ? kiln_util_xstrdup(dir_opt) : kiln_dump_dir(pid, env, envlen);
    free(env);
    if (!dir)
        return KILN_EXIT_FAIL;

    size_t nbefore;
    char **before = kiln_dump_metas(dir, pid, &nbefore);
    if (!before) {
        kiln_util_err("dump: %s: %s (where %ld writes its profiles? pass --dir)", dir,
                      strerror(errno), pid);
        free(dir);
        return KILN_EXIT_FAIL;
    }
    kiln_dump_expect_t expect = {.pid = pid, .fsuid = kiln_dump_fsuid(pid)};
    if (nbefore > 0) {
        /* The sets sort in time order: the last one has the highest number. */
        kiln_buf_t last = {0};
        kiln_meta_t m;
        kiln_buf_printf(&last, "%s/%s", dir, before[nbefore - 1]);
        if (kiln_meta_read(&m, last.data, true) == 0) {
            kiln_meta_u64(&m, KILN_META_DUMP_SEQ, &expect.last_seq);
            kiln_meta_free(&m);
        }
        kiln_buf_free(&last);
    }
    clock_gettime(CLOCK_REALTIME, &expect.asked);
    long collector = kiln_dump_collector(pid);
    if (collector > 0 ? syscall(SYS_tgkill, (pid_t)pid, (pid_t)collector, sig) != 0
                      : kill((pid_t)pid, sig) != 0) {
        kiln_util_err("dump: %ld: cannot send %s: %s", pid, signame, strerror(errno));
        kiln_sets_list_free(before, nbefore);
        free(dir);
        return KILN_EXIT_FAIL;
    }
    double deadline = kiln_dump_now() + timeout;
    int rc = KILN_EXIT_FAIL;
    bool gone = false;
    for (;;) {
        size_t n;
        char **now = kiln_dump_metas(dir, pid, &n);
        const char *found = NULL;
        for (size_t i = 0; now && i < n && !found; i++) {
            if (kiln_dump_known(before, nbefore, now[i]))
                continue;
            if (kiln_dump_is_ours(dir, now[i], &expect))
                found = now[i];
        }
        if (found) {
            kiln_dump_print_set(dir, found);
            rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : KILN_EXIT_FAIL;
            if (rc)
                kiln_util_err("<stdout>: write error");
        }
        kiln_sets_list_free(now, now ? n : 0);
        if (found || gone)
            break;
        state = kiln_dump_state(pid);
        if (state == 0 || state == 'Z' || state == 'X') {
            gone = true; /* one more scan: it may have written the set, then exited */
            continue;
        }
        if (kiln_dump_now() >= deadline) {
            if (expect.why)
                kiln_util_err("dump: no new profile set from %ld in %s after %g s (a new "
                              "meta.json there was not its answer: %s)", pid, dir, timeout,
                              expect.why);
            else
                kiln_util_err("dump: no new profile set from %ld in %s after %g s (%s)", pid,
                              dir, timeout,
                              state == 'T' || state == 't'
                                  ? "the process is stopped: it writes once continued"
                                  : "is it busy or blocking the signal? if it changed "
                                    "directory after start, pass --dir");
            break;
        }
        nanosleep(&(struct timespec){0, KILN_DUMP_POLL_NS}, NULL);
    }
    if (gone && rc != 0)
        kiln_util_err("dump: process %ld exited before writing a profile set (its exit set, "
                      "if any, is in %s)", pid, dir);
    kiln_sets_list_free(before, nbefore);
    free(dir);
    return rc;
}
