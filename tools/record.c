/* record.c — `kiln record`: runs a program with libkiln.so preloaded and the
 * runtime's KILN_* environment set, forwards the signals a user sends to
 * kiln, waits, lists what the runtime wrote and prints the top functions of
 * each CPU profile. Exits with the program's status, as a shell would. */
#include "kiln.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char kiln_record_usage[] =
    "usage: kiln record [-F HZ] [-o DIR] [--unwind fp|libunwind] [--alloc] [--wall] [--lock] -- CMD [ARGS...]\n"
    "\n"
    "Runs CMD with libkiln.so preloaded (prepended to any LD_PRELOAD), waits for\n"
    "it, lists the profiles written and prints the top functions of each CPU\n"
    "profile (on stderr, so CMD's output stays its own), then writes DIR/report.html\n"
    "('kiln report') and prints its path last. Exits with CMD's\n"
    "status: 128+N if it was killed by signal N, 127 if it could not be run.\n"
    "SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to kiln are\n"
    "passed on to CMD.\n"
    "\n"
    "  -F, --freq HZ       sampling rate (KILN_HZ; default: the runtime's)\n"
    "  -o, --output DIR    profile directory (KILN_OUT; default\n"
    "                      ./kiln-CMD-YYYYmmdd-HHMMSS, created)\n"
    "  --unwind METHOD     fp or libunwind (KILN_UNWIND)\n"
    "  --alloc             profile allocations too (KILN_MODE=cpu,alloc); the\n"
    "                      summary adds the top allocating functions and the\n"
    "                      leak report's top 5 sites per process\n"
    "  --wall              profile wall-clock time too (KILN_MODE=cpu,wall): every\n"
    "                      thread, running or waiting ([wait: futex], ...); the\n"
    "                      summary adds the top functions of the wall profile\n"
    "  --lock              time lock waits too (KILN_MODE=...,lock): contended\n"
    "                      mutexes, rwlocks, semaphores and condition waits; the\n"
    "                      summary adds what was waited for and the functions\n"
    "                      that waited longest\n"
    "  -h, --help          this help\n"
    "\n"
    "libkiln.so is looked for next to the kiln binary, then in ../lib.\n"
    "A statically linked CMD never loads it: kiln says so and runs CMD\n"
    "unprofiled (build such programs dynamically linked with libkiln.a and call kiln_start()).\n";

static const int kiln_record_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
static volatile sig_atomic_t kiln_record_child = 0;

/* Passes on signals that someone sent to kiln. A signal from the terminal
 * (si_code SI_KERNEL) already reached the child, which shares kiln's
 * process group, so it is not sent twice. Async-signal-safe: kill only. */
static void kiln_record_forward(int sig, siginfo_t *info, void *uc)
{
    (void)uc;
    int saved = errno;
    if (kiln_record_child > 0 && (!info || info->si_code != SI_KERNEL))
        kill((pid_t)kiln_record_child, sig);
    errno = saved;
}

/* libkiln.so beside /proc/self/exe, or in ../lib from there. */
static char *kiln_record_find_lib(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        kiln_util_err("record: cannot read /proc/self/exe: %s", strerror(errno));
        return NULL;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    static const char *const rel[] = {"/libkiln.so", "/../lib/libkiln.so"};
    for (size_t i = 0; i < 2; i++) {
        char *path = kiln_util_xmalloc(strlen(exe) + strlen(rel[i]) + 1);
        strcpy(path, exe);
        strcat(path, rel[i]);
        if (access(path, R_OK) == 0) {
            char *real = realpath(path, NULL);
            free(path);
            return real ? real : NULL;
        }
        free(path);
    }
    kiln_util_err("record: libkiln.so not found in %s or %s/../lib", exe, exe);
    return NULL;
}

static char *kiln_record_default_dir(const char *cmd)
{
    const char *base = strrchr(cmd, '/');
    base = base ? base + 1 : cmd;
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    kiln_buf_t b = {0};
    kiln_buf_printf(&b, "kiln-%s-%s", base, stamp);
    struct stat st;
    if (lstat(b.data, &st) == 0) /* two runs in one second: keep them apart */
        kiln_buf_printf(&b, "-%ld", (long)getpid());
    return b.data;
}

static int kiln_record_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether NAME (in DIR) is a profile of kind WANT that the runtime wrote
 * (a regular file, not a link planted there): then its path and size. */
static bool kiln_record_kind_file(const char *dir, const char *name, const char *want, kiln_buf_t *path,
                                  off_t *size)
{
    const char *kind = kiln_folded_kind(name);
    if (!kind || strcmp(kind, want) != 0)
        return false;
    kiln_buf_printf(path, "%s/%s", dir, name);
    struct stat st;
    if (lstat(path->data, &st) != 0 || !S_ISREG(st.st_mode)) {
        kiln_buf_free(path);
        return false;
    }
    *size = st.st_size;
    return true;
}

/* With --alloc: the leak report's headers and top 5 sites, the top
 * allocating functions of each alloc_bytes profile, and the top 5 by
 * temporary allocations. */
static void kiln_record_alloc_summary(const char *dir, char **names, size_t n)
{
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        kiln_buf_t path = {0};
        off_t size;
        if (!kiln_record_kind_file(dir, names[i], "alloc_bytes", &path, &size))
            continue;
        const char *one[] = {path.data};
        any = true;
        if (size == 0) {
            fprintf(stderr, "\n%s: no allocations\n", path.data);
        } else {
            fprintf(stderr, "\n%s: top allocating functions by self (bytes)\n", path.data);
            kiln_top_print(stderr, one, 1, 10, 0, NULL);
        }
        kiln_buf_free(&path);
    }
    /* Temporary allocations: blocks freed before their thread allocated
     * again, the buffers a program could reuse. */
    for (size_t i = 0; i < n; i++) {
        kiln_buf_t path = {0};
        off_t size;
        if (!kiln_record_kind_file(dir, names[i], "temp_count", &path, &size))
            continue;
        const char *one[] = {path.data};
        if (size > 0) {
            fprintf(stderr, "\n%s: top functions by temporary allocations (blocks freed before "
                    "the thread's next allocation)\n", path.data);
            kiln_top_print(stderr, one, 1, 5, 0, NULL);
        }
        kiln_buf_free(&path);
    }
    kiln_leaks_opts_t lo = {.max_sites = 5, .quiet_missing = true};
    bool found;
    fputc('\n', stderr);
    int rc = kiln_leaks_print(stderr, &dir, 1, &lo, &found);
    if (rc == 1 && !any)
        kiln_util_err("record: no allocation profile was written in %s "
                      "(does this libkiln.so profile allocations?)", dir);
    else if (rc == 1)
        kiln_util_err("record: no leak profile was written in %s", dir);
}

/* The sets a process wrote while it ran (KILN_INTERVAL, KILN_DUMP_SIGNAL)
 * are one line per process, not one per file: their names are taken out of
 * NAMES (sorted, so a process's tagged names are adjacent), which keeps the
 * exit set's files. */
static void kiln_record_list_sets(const char *dir, char **names, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < *n;) {
        kiln_sets_name_t nm;
        if (!kiln_sets_parse(names[i], &nm) || !nm.tag_len) {
            names[k++] = names[i++];
            continue;
        }
        size_t sets = 0, end = i;
        const char *first = NULL, *last = NULL;
        for (; end < *n; end++) {
            kiln_sets_name_t e;
            if (!kiln_sets_parse(names[end], &e) || !e.tag_len || e.pid != nm.pid ||
                e.prog_len != nm.prog_len || strncmp(names[end], names[i], nm.prog_len) != 0)
                break;
            if (strcmp(names[end] + e.rest_off, "meta.json") == 0) {
                sets++;
                first = first ? first : names[end] + e.tag_off;
                last = names[end] + e.tag_off;
            }
        }
        if (sets)
            fprintf(stderr, "kiln: wrote %zu profile set%s of %.*s while it ran in %s (%.*s to "
                    "%.*s): 'kiln top %s' reads the run, 'kiln top FILE' one set\n",
                    sets, sets == 1 ? "" : "s", (int)(nm.tag_off - 1), names[i], dir,
                    KILN_SETS_TAG_LEN, first, KILN_SETS_TAG_LEN, last, dir);
        for (; i < end; i++)
            free(names[i]);
    }
    *n = k;
}

/* The program of a runtime file name: its length, and its pid (-1 when
 * the name is not the runtime's). */
static size_t kiln_record_prog(const char *name, long *pid)
{
    kiln_sets_name_t nm;
    if (!kiln_sets_parse(name, &nm)) {
        *pid = -1;
        return strlen(name);
    }
    *pid = nm.pid;
    return nm.prog_len;
}

/* NAMES[i .. end) are the files of one program (names sorted: a program's
 * files are adjacent). */
static size_t kiln_record_group_end(char **names, size_t n, size_t i)
{
    long pid;
    size_t len = kiln_record_prog(names[i], &pid), end = i + 1;
    if (pid < 0)
        return end;
    for (; end < n; end++) {
        long p2;
        size_t l2 = kiln_record_prog(names[end], &p2);
        if (p2 < 0 || l2 != len || strncmp(names[end], names[i], len) != 0)
            break;
    }
    return end;
}

/* The top table of the KIND profiles (cpu, wall) among NAMES[i .. end):
 * one file as it is, several processes of one program merged. */
static void kiln_record_kind_top(const char *dir, char **names, size_t i, size_t end, size_t procs,
                                 const char *want)
{
    const char **paths = kiln_util_xmalloc((end - i) * sizeof *paths);
    kiln_buf_t *bufs = kiln_util_xmalloc((end - i) * sizeof *bufs);
    int np = 0;
    for (size_t k = i; k < end; k++) {
        const char *kind = kiln_folded_kind(names[k]);
        if (!kind || strcmp(kind, want) != 0)
            continue;
        kiln_buf_t path = {0};
        kiln_buf_printf(&path, "%s/%s", dir, names[k]);
        struct stat st;
        if (stat(path.data, &st) == 0 && st.st_size == 0 && procs == 1) {
            fprintf(stderr, "\n%s: no samples\n", path.data);
            kiln_buf_free(&path);
            continue;
        }
        bufs[np] = path;
        paths[np] = bufs[np].data;
        np++;
    }
    if (np > 0) {
        char what[600];
        if (np == 1)
            snprintf(what, sizeof what, "%s", paths[0]);
        else {
            long pid;
            int plen = (int)kiln_record_prog(names[i], &pid);
            snprintf(what, sizeof what, "%s/%.*s.*.%s.folded (%d processes)", dir, plen, names[i], want,
                     np);
        }
        fprintf(stderr, "\n%s: top functions by self\n", what);
        if (kiln_top_print(stderr, paths, np, 10, 0, NULL) == 0) {
            fprintf(stderr, "\n%s: top functions by total\n", what);
            kiln_top_print(stderr, paths, np, 10, KILN_TOP_BY_TOTAL, NULL);
        }
    }
    for (int k = 0; k < np; k++)
        kiln_buf_free(&bufs[k]);
    free(bufs);
    free(paths);
}

/* With --lock: per lock_wait_ns profile, the time by what was waited for
 * (the leaf marker frames, self) and the functions that waited (total). */
static void kiln_record_lock_summary(const char *dir, char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kiln_buf_t path = {0};
        off_t size;
        if (!kiln_record_kind_file(dir, names[i], KILN_KIND_LOCK_WAIT_NS, &path, &size))
            continue;
        const char *one[] = {path.data};
        if (size == 0) {
            fprintf(stderr, "\n%s: no lock waits\n", path.data);
        } else {
            fprintf(stderr, "\n%s: time waited (ns) by what was waited for\n", path.data);
            kiln_top_print(stderr, one, 1, 5, 0, NULL);
            fprintf(stderr, "\n%s: functions by time waited below them (ns, total)\n", path.data);
            kiln_top_print(stderr, one, 1, 10, KILN_TOP_BY_TOTAL, NULL);
        }
        kiln_buf_free(&path);
    }
}

/* Lists DIR's profiles and prints top tables for the CPU ones (and the
 * allocation summary with --alloc, the lock summary with --lock). A program that ran as one process has
 * its files listed; one that ran as many (a shell script's commands, a
 * forking server) gets one line and one merged table. */
static void kiln_record_summary(const char *dir, bool alloc, bool wall, bool lock)
{
    long stale = kiln_sets_clean_stale(dir);
    if (stale > 0)
        kiln_util_err("record: removed %ld unfinished temporary file%s from %s (a process was "
                      "killed while writing its profile)", stale, stale == 1 ? "" : "s", dir);
    DIR *d = opendir(dir);
    if (!d) {
        kiln_util_err("record: %s: %s (no profile written)", dir, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        names = kiln_util_xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = kiln_util_xstrdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, kiln_record_cmp);
    if (n == 0)
        kiln_util_err("record: no profile written in %s", dir);
    kiln_record_list_sets(dir, names, &n);
    for (size_t i = 0; i < n;) {
        size_t end = kiln_record_group_end(names, n, i), procs = 0;
        long last = -1;
        long long bytes = 0;
        for (size_t k = i; k < end; k++) {
            long pid;
            kiln_record_prog(names[k], &pid);
            if (pid != last)
                procs++;
            last = pid;
            kiln_buf_t path = {0};
            kiln_buf_printf(&path, "%s/%s", dir, names[k]);
            struct stat st;
            if (lstat(path.data, &st) == 0 && S_ISREG(st.st_mode))
                bytes += (long long)st.st_size;
            kiln_buf_free(&path);
        }
        if (procs <= 1) {
            for (size_t k = i; k < end; k++) {
                kiln_buf_t path = {0};
                kiln_buf_printf(&path, "%s/%s", dir, names[k]);
                struct stat st;
                if (stat(path.data, &st) == 0 && S_ISREG(st.st_mode))
                    fprintf(stderr, "kiln: wrote %s (%lld bytes)\n", path.data, (long long)st.st_size);
                kiln_buf_free(&path);
            }
        } else {
            long pid;
            int plen = (int)kiln_record_prog(names[i], &pid);
            fprintf(stderr, "kiln: wrote %zu files of %zu %.*s processes in %s (%lld bytes): %.*s.PID.*\n",
                    end - i, procs, plen, names[i], dir, bytes, plen, names[i]);
        }
        i = end;
    }
    for (size_t i = 0; i < n;) {
        size_t end = kiln_record_group_end(names, n, i), procs = 0;
        long last = -1;
        for (size_t k = i; k < end; k++) {
            long pid;
            kiln_record_prog(names[k], &pid);
            if (pid != last)
                procs++;
            last = pid;
        }
        kiln_record_kind_top(dir, names, i, end, procs, "cpu");
        if (wall)
            kiln_record_kind_top(dir, names, i, end, procs, "wall");
        i = end;
    }
    if (alloc)
        kiln_record_alloc_summary(dir, names, n);
    if (lock)
        kiln_record_lock_summary(dir, names, n);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* The run's HTML report, its path printed last (the one file to open). */
static void kiln_record_report(const char *dir, const char *prog)
{
    kiln_buf_t path = {0}, title = {0};
    kiln_buf_printf(&path, "%s/report.html", dir);
    kiln_buf_printf(&title, "kiln report: %s", prog);
    if (kiln_report_write_run(dir, path.data, title.data) == 0)
        fprintf(stderr, "kiln: report: %s (open it in a browser)\n", path.data);
    kiln_buf_free(&path);
    kiln_buf_free(&title);
}

int kiln_record_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"freq", required_argument, NULL, 'F'},
        {"output", required_argument, NULL, 'o'},
        {"unwind", required_argument, NULL, 'u'},
        {"alloc", no_argument, NULL, 'a'},
        {"wall", no_argument, NULL, 'w'},
        {"lock", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *hz = NULL, *dir = NULL, *unwind = NULL;
    bool alloc = false, wall = false, lock = false;
    long v;
    int c;
    /* '+': stop at the first non-option, so CMD's own options stay its own. */
    while ((c = kiln_util_getopt(argc, argv, "+F:o:", longopts, "record",
                                 kiln_record_usage)) != -1) {
        switch (c) {
        case 'F':
            if (kiln_util_parse_long(optarg, 1, 1000000, &v) != 0)
                kiln_util_usage_error("record", "-F needs a rate in Hz, not '%s'", optarg);
            hz = optarg;
            break;
        case 'o':
            if (!*optarg)
                kiln_util_usage_error("record", "-o needs a directory");
            dir = optarg;
            break;
        case 'u':
            if (strcmp(optarg, "fp") != 0 && strcmp(optarg, "libunwind") != 0)
                kiln_util_usage_error("record", "--unwind is fp or libunwind, not '%s'", optarg);
            unwind = optarg;
            break;
        case 'a': alloc = true; break;
        case 'w': wall = true; break;
        case 'l': lock = true; break;
        }
    }
    if (optind >= argc)
        kiln_util_usage_error("record", "needs a command to run (kiln record -- CMD ARGS...)");
    char **cmd = argv + optind;
    char *exe = kiln_elf_resolve(cmd[0]);
    if (exe && kiln_elf_static_without_kiln(exe) == 1)
        kiln_util_err("record: %s is statically linked: LD_PRELOAD cannot load libkiln.so into "
                      "it, so no profile will be written for it; running it anyway (to profile "
                      "it, build it dynamically linked with libkiln.a and call kiln_start(), see include/kiln.h)",
                      exe);
    free(exe);
    char *lib = kiln_record_find_lib();
    if (!lib)
        return KILN_EXIT_FAIL;
    char *owned_dir = dir ? NULL : kiln_record_default_dir(cmd[0]);
    if (!dir)
        dir = owned_dir;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        kiln_util_err("record: cannot create %s: %s", dir, strerror(errno));
        return KILN_EXIT_FAIL;
    }

    kiln_buf_t preload = {0};
    const char *old = getenv("LD_PRELOAD");
    kiln_buf_adds(&preload, lib);
    if (old && *old)
        kiln_buf_printf(&preload, " %s", old);
    setenv("LD_PRELOAD", preload.data, 1);
    setenv("KILN_OUT", dir, 1);
    {
        char mode[32];
        snprintf(mode, sizeof mode, "cpu%s%s%s", alloc ? ",alloc" : "", wall ? ",wall" : "", lock ? ",lock" : "");
        setenv("KILN_MODE", mode, 1);
    }
    if (hz)
        setenv("KILN_HZ", hz, 1);
    if (unwind)
        setenv("KILN_UNWIND", unwind, 1);

    /* The child reports a failed exec through a close-on-exec pipe. */
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        kiln_util_die("record: pipe: %s", strerror(errno));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = kiln_record_forward;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof kiln_record_signals / sizeof kiln_record_signals[0]; i++)
        sigaction(kiln_record_signals[i], &sa, NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        kiln_util_die("record: fork: %s", strerror(errno));
    if (pid == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (size_t i = 0; i < sizeof kiln_record_signals / sizeof kiln_record_signals[0]; i++)
            sigaction(kiln_record_signals[i], &dfl, NULL);
        close(pipefd[0]);
        execvp(cmd[0], cmd);
        int err = errno;
        ssize_t w = write(pipefd[1], &err, sizeof err);
        (void)w;
        _exit(127);
    }
    kiln_record_child = pid;
    close(pipefd[1]);
    int exec_err = 0;
    ssize_t got;
    do
        got = read(pipefd[0], &exec_err, sizeof exec_err);
    while (got < 0 && errno == EINTR);
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            kiln_util_die("record: waitpid: %s", strerror(errno));
    }
    kiln_record_child = 0;
    if (got == (ssize_t)sizeof exec_err) {
        kiln_util_err("record: cannot run '%s': %s", cmd[0], strerror(exec_err));
        free(lib);
        free(owned_dir);
        kiln_buf_free(&preload);
        return 127;
    }
    int rc;
    if (WIFEXITED(status)) {
        rc = WEXITSTATUS(status);
        if (rc != 0)
            fprintf(stderr, "kiln: %s exited with status %d\n", cmd[0], rc);
    } else if (WIFSIGNALED(status)) {
        rc = 128 + WTERMSIG(status);
        fprintf(stderr, "kiln: %s killed by signal %d (%s)\n", cmd[0], WTERMSIG(status),
                strsignal(WTERMSIG(status)));
    } else {
        rc = 1;
    }
    kiln_record_summary(dir, alloc, wall, lock);
    kiln_record_report(dir, cmd[0]);
    free(lib);
    free(owned_dir);
    kiln_buf_free(&preload);
    return rc;
}
