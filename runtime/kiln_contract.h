/* kiln_contract.h — what the runtime writes and the `kiln` tool reads, in
 * one place: profile kinds, the file-name grammar, the meta.json keys the
 * tool relies on, the marker frames, the dump-signal grammar and the format
 * version. Included by both sides; macros and static inline functions only,
 * so neither side links the other. Normal context (option parsing at start,
 * the offline tool): nothing here may run in the signal handler.
 *
 * Changing anything a reader depends on (a name, a key's meaning, the
 * grammar) bumps KILN_CONTRACT_VERSION, which meta.json carries. */
#ifndef KILN_CONTRACT_H
#define KILN_CONTRACT_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define KILN_CONTRACT_VERSION 1

/* ---------------------------------------------------------------- kinds
 * PROG.PID[.TAG].KIND.folded, one count per stack. The exit set has
 * leak_*, the tagged (interval / on-demand) sets live_* instead. */
#define KILN_KIND_CPU "cpu"
#define KILN_KIND_ALLOC_BYTES "alloc_bytes"
#define KILN_KIND_ALLOC_COUNT "alloc_count"
#define KILN_KIND_LIVE_BYTES "live_bytes"
#define KILN_KIND_LIVE_COUNT "live_count"
#define KILN_KIND_LEAK_BYTES "leak_bytes"
#define KILN_KIND_LEAK_COUNT "leak_count"
#define KILN_KIND_PEAK_BYTES "peak_bytes"
/* Wall-clock time of every thread, running or waiting, in samples at
 * KILN_WALL_HZ (meta "wall_hz"): a waiting stack ends in a KILN_MARK_WAIT_PREFIX
 * frame, a running one as in the cpu profile. */
#define KILN_KIND_WALL "wall"
/* KILN_MODE=lock: nanoseconds waited / waits, per stack of the waiter. */
#define KILN_KIND_LOCK_WAIT_NS "lock_wait_ns"
#define KILN_KIND_LOCK_WAIT_COUNT "lock_wait_count"
/* Leak categories: CATEGORY_bytes / CATEGORY_count, valgrind's order. */
#define KILN_LEAK_CATEGORY_DEFINITE "definite"
#define KILN_LEAK_CATEGORY_INDIRECT "indirect"
#define KILN_LEAK_CATEGORY_POSSIBLE "possible"
#define KILN_LEAK_CATEGORY_REACHABLE "reachable"

/* The kinds a reader may ask for, NULL-terminated (what `--kind` takes). */
static inline const char *const *kiln_contract_kinds(void)
{
    static const char *const kinds[] = {
        KILN_KIND_CPU,        KILN_KIND_ALLOC_BYTES, KILN_KIND_ALLOC_COUNT,
        KILN_KIND_LIVE_BYTES, KILN_KIND_LIVE_COUNT,  KILN_KIND_LEAK_BYTES,
        KILN_KIND_LEAK_COUNT, KILN_KIND_PEAK_BYTES,  KILN_KIND_WALL,
        KILN_KIND_LOCK_WAIT_NS, KILN_KIND_LOCK_WAIT_COUNT, NULL};
    return kinds;
}

/* ---------------------------------------------------------------- file names
 * PROG.PID.KIND.folded        the exit set (no tag)
 * PROG.PID.TAG.KIND.folded    a tagged set; TAG = YYYYmmddTHHMMSSZ-NNNN
 *                             (UTC time of the dump, then dump_seq % 10000)
 * PROG.PID[.TAG].cpu.pb.gz / .heap.pb.gz / .lock.pb.gz   pprof, with KILN_PPROF
 * PROG.PID[.TAG].meta.json    written last: the set is whole once it exists
 * .NAME.PID.SEQ.tmp           a file being written (hidden, renamed to NAME);
 *                             one left behind is the debris of a killed
 *                             writer, never part of a set. */
#define KILN_FILE_FOLDED_EXT ".folded"
#define KILN_FILE_META "meta.json"
#define KILN_FILE_PPROF_CPU "cpu.pb.gz"
#define KILN_FILE_PPROF_HEAP "heap.pb.gz"
#define KILN_FILE_PPROF_LOCK "lock.pb.gz"
#define KILN_FILE_TMP_PREFIX "."
#define KILN_FILE_TMP_SUFFIX ".tmp"
#define KILN_TAG_LEN 21
#define KILN_TAG_FORMAT "%04d%02d%02dT%02d%02d%02dZ-%04u"
/* Process ids in file names have at most this many digits. */
#define KILN_PID_DIGITS_MAX 9

/* ---------------------------------------------------------------- meta.json
 * A flat JSON object, one key a line; the keys a reader relies on. Counts
 * are unsigned decimal integers (64-bit), times decimal seconds. */
#define KILN_META_VERSION "kiln_version"
#define KILN_META_CONTRACT "contract_version"
#define KILN_META_PROG "prog"
#define KILN_META_PID "pid"
#define KILN_META_DUMP_REASON "dump_reason"
#define KILN_META_DUMP_SEQ "dump_seq"
#define KILN_META_TAG "tag"
#define KILN_META_INTERVAL_MODE "interval_mode"
#define KILN_META_FROM_UNIX "from_unix"
#define KILN_META_UNTIL_UNIX "until_unix"
#define KILN_META_WALL_SECONDS "wall_seconds"
#define KILN_META_HZ_REQUESTED "hz_requested"
/* Wall mode: samples per thread-second of the wall kind. */
#define KILN_META_WALL_HZ "wall_hz"
/* "dump_reason" values. */
#define KILN_REASON_EXIT "exit"
#define KILN_REASON_INTERVAL "interval"
#define KILN_REASON_SIGNAL "signal"
#define KILN_REASON_API "api"
#define KILN_REASON_EXEC "exec"
#define KILN_REASON_UNDERSCORE_EXIT "_exit"
#define KILN_REASON_FATAL "exit-signal"
/* "interval_mode" values. */
#define KILN_INTERVAL_DELTA "delta"
#define KILN_INTERVAL_CUMULATIVE "cumulative"

/* ---------------------------------------------------------------- markers
 * Frames the runtime writes that are not program functions. */
#define KILN_MARK_TABLE_FULL "[kiln: table full]"
#define KILN_MARK_TRUNCATED "[kiln: truncated]"
#define KILN_MARK_UNWIND_SKIPPED "[kiln: unwind skipped]"
#define KILN_MARK_ALLOC_TRACKING "[kiln: allocation tracking]"
#define KILN_MARK_KERNEL "[kernel]"
#define KILN_MARK_KERNEL_SUFFIX "_[k]"
/* Wall mode: the leaf of a waiting stack, "[wait: futex]" (the system call
 * the thread is blocked in), "[wait: cpu]" (runnable, waiting for a CPU),
 * "[wait: kernel]" (blocked outside a system call), "[wait: unknown]". */
#define KILN_MARK_WAIT_PREFIX "[wait: "
/* Lock mode: the leaf frame of a wait says what was waited for. */
#define KILN_MARK_LOCK_MUTEX "[lock: mutex]"
#define KILN_MARK_LOCK_RDLOCK "[lock: rwlock read]"
#define KILN_MARK_LOCK_WRLOCK "[lock: rwlock write]"
#define KILN_MARK_LOCK_COND "[lock: cond wait]"
#define KILN_MARK_LOCK_SEM "[lock: sem]"

/* ---------------------------------------------------------------- dump signal
 * KILN_DUMP_SIGNAL's grammar, the one parser both sides call:
 *   [SIG]NAME    NAME one of USR1 USR2 HUP URG PWR WINCH VTALRM
 *   [SIG]N       a number from 1 to 64
 *   [SIG]RTMIN+N N from 0 to 30
 * and never a signal whose default use matters to kiln or to the
 * program's life: SIGPROF (the sampler), SIGKILL, SIGSTOP, the fatal
 * signals (SEGV BUS FPE ILL ABRT TRAP SYS), the job-control ones (CHLD CONT
 * TSTP TTIN TTOU), PIPE, INT, TERM, QUIT; nor one past SIGRTMAX. Anything
 * else (ALRM, RTMAX-2, "RTMIN", a trailing blank) is refused.
 * Returns the signal number, or 0 when refused. */
static inline int kiln_contract_digits(const char *s, long lo, long hi)
{
    long v = 0;
    if (s == NULL || *s == '\0') return -1;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
        if (v > hi) return -1;
    }
    return v < lo ? -1 : (int)v;
}

static inline int kiln_contract_signal_parse(const char *spec)
{
    static const struct { const char *name; int sig; } names[] = {
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"HUP", SIGHUP},       {"URG", SIGURG},
        {"PWR", SIGPWR},   {"WINCH", SIGWINCH}, {"VTALRM", SIGVTALRM}};
    int sig = 0, n;
    if (spec == NULL) return 0;
    if (strncmp(spec, "SIG", 3) == 0) spec += 3;
    if ((n = kiln_contract_digits(spec, 1, 64)) > 0) {
        sig = n;
    } else if (strncmp(spec, "RTMIN+", 6) == 0 && (n = kiln_contract_digits(spec + 6, 0, 30)) >= 0) {
        sig = SIGRTMIN + n;
    } else {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcmp(spec, names[i].name) == 0) sig = names[i].sig;
    }
    switch (sig) {
    case SIGPROF: case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE:
    case SIGILL: case SIGABRT: case SIGCHLD: case SIGCONT: case SIGTSTP: case SIGTTIN:
    case SIGTTOU: case SIGPIPE: case SIGINT: case SIGTERM: case SIGQUIT: case SIGTRAP:
    case SIGSYS:
        return 0;
    default:
        return sig > 0 && sig <= SIGRTMAX ? sig : 0;
    }
}

/* SIG as the grammar spells it ("USR2", "RTMIN+3", else its number) into
 * OUT (at least 16 bytes). */
static inline void kiln_contract_signal_name(int sig, char *out, size_t n)
{
    static const struct { const char *name; int sig; } names[] = {
        {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"HUP", SIGHUP},       {"URG", SIGURG},
        {"PWR", SIGPWR},   {"WINCH", SIGWINCH}, {"VTALRM", SIGVTALRM}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].sig == sig) {
            snprintf(out, n, "%s", names[i].name);
            return;
        }
    }
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(out, n, "RTMIN+%d", sig - SIGRTMIN);
    else
        snprintf(out, n, "%d", sig);
}

#endif
