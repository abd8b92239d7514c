/* kiln_interpose.c — the libc functions kiln wraps, each of which resolves
 * the real one (kiln_libc), tells the runtime, and forwards:
 *   pthread_create   new threads register and arm their timer first thing
 *   dlopen/dlclose   the module list follows; unwinding is unsafe inside
 *   dl_iterate_phdr  unwinding is unsafe inside (the loader's lock)
 *   sigaction/signal a program that takes SIGPROF gets it; kiln steps aside;
 *                    the exit and fatal signals: the program's view
 *   exec*            the profile so far is written and no kiln signal or
 *                    timer survives into the new image
 *   mmap/munmap      the leak scan learns which mappings the allocator
 *                    made (its bookkeeping, never the program's roots)
 *   setuid & co.     a root process about to become another user gets a
 *                    place that user may write its profile in; before any
 *                    id change (and after capset) kiln's collector thread
 *                    takes on the caller's capabilities
 *   pipe/pipe2       refused to libunwind while kiln sets it up
 *   sigprocmask      answered without the kernel inside kiln's unwinds
 * Runs in whatever thread the program calls from; never in the handler.
 * The wrappers that only forward live in the kiln_pass section: a CPU
 * sample drops their frames, so that stacks read as without kiln. */
#include "kiln_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ----------------------------------------------------------- threads */

/* Start records for new threads: a fixed pool from mmap (the profiler must
 * not call the program's malloc here), claimed with a CAS. */
typedef struct kiln_start_rec {
  _Atomic int used;
  bool covered; /* the creator is sampled by an inherited perf event */
  void *(*fn)(void *);
  void *arg;
} kiln_start_rec_t;

enum { KILN_START_RECS = 1024 };
static kiln_start_rec_t *kiln_start_recs;
static _Atomic unsigned kiln_start_hint;

static kiln_start_rec_t *kiln_interpose_rec_claim(void) {
  if (kiln_start_recs == NULL) {
    kiln_start_rec_t *p = kiln_mem_map(sizeof(kiln_start_rec_t) * KILN_START_RECS);
    kiln_start_rec_t *expect = NULL;
    if (p == NULL) return NULL;
    if (!atomic_compare_exchange_strong((_Atomic(kiln_start_rec_t *) *)&kiln_start_recs, &expect, p))
      kiln_mem_unmap(p, sizeof(kiln_start_rec_t) * KILN_START_RECS);
  }
  for (unsigned k = 0; k < KILN_START_RECS; k++) {
    unsigned i = atomic_fetch_add_explicit(&kiln_start_hint, 1, memory_order_relaxed) % KILN_START_RECS;
    int expect = 0;
    if (atomic_compare_exchange_strong(&kiln_start_recs[i].used, &expect, 1)) return &kiln_start_recs[i];
  }
  return NULL;
}

#ifdef KILN_SANITIZER_FORWARD
/* Sanitizer builds: a thread's hooks are off until its start routine runs
 * (kiln_tls_hook_guard starts at 1, see kiln_heap.c): the sanitizer sets
 * a new thread up (pthread_getattr_np, which allocates) before its own
 * state exists, and instrumented hook code would crash there. The main
 * thread's are turned on once the sanitizer is initialised. */
__attribute__((constructor)) static void kiln_interpose_san_main(void) { kiln_tls_hook_guard = 0; }
#endif

KILN_PASS_TEXT static void *kiln_interpose_thread_start(void *p) {
#ifdef KILN_SANITIZER_FORWARD
  kiln_tls_hook_guard = 0;
#endif
  kiln_start_rec_t *rec = p;
  void *(*fn)(void *) = rec->fn;
  void *arg = rec->arg;
  bool covered = rec->covered;
  atomic_store_explicit(&rec->used, 0, memory_order_release);
  kiln_profiler_thread_begin(covered);
#ifdef KILN_SANITIZER_FORWARD
  /* ...and off again once it returns: the thread's exit (glibc's freeres,
   * key destructors) runs after the sanitizer let go of its state. */
  void *ret = fn(arg);
  kiln_tls_hook_guard++;
  return ret;
#else
  return fn(arg);
#endif
}

KILN_EXPORT KILN_PASS_TEXT int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                               void *(*start)(void *), void *arg) {
  kiln_libc_resolve();
  if (kiln_libc.pthread_create == NULL) return ENOSYS;
#ifndef KILN_SANITIZER_FORWARD /* there every thread starts through kiln (above) */
  if (!kiln_profiler_active()) return kiln_libc.pthread_create(thread, attr, start, arg);
#endif
  kiln_profiler_before_thread();
  kiln_start_rec_t *rec = kiln_interpose_rec_claim();
  if (rec == NULL) return kiln_libc.pthread_create(thread, attr, start, arg);
  rec->fn = start;
  rec->arg = arg;
  rec->covered = kiln_sampler_covered();
  int rc = kiln_libc.pthread_create(thread, attr, kiln_interpose_thread_start, rec);
  if (rc != 0) atomic_store(&rec->used, 0);
  return rc;
}

/* ----------------------------------------------------------- the loader */

KILN_EXPORT KILN_PASS_TEXT void *dlopen(const char *file, int mode) {
  kiln_libc_resolve();
  if (kiln_libc.dlopen == NULL) return NULL;
  kiln_unwind_unsafe_enter();
  void *h = kiln_libc.dlopen(file, mode);
  kiln_unwind_unsafe_leave();
  atomic_fetch_add_explicit(&kiln_unwind_copy_loader_gen, 1, memory_order_release);
  if (h != NULL && kiln_hookstack_guessed_outside()) kiln_hookstack_forget_rules();
  if (h != NULL && kiln_profiler_active()) kiln_modules_refresh();
  return h;
}

KILN_EXPORT KILN_PASS_TEXT int dlclose(void *handle) {
  kiln_libc_resolve();
  if (kiln_libc.dlclose == NULL) return -1;
  /* Record the module while it is still mapped, so it can be named later. */
  if (kiln_profiler_active()) kiln_modules_refresh();
  kiln_unwind_unsafe_enter();
  int rc = kiln_libc.dlclose(handle);
  kiln_unwind_unsafe_leave();
  atomic_fetch_add_explicit(&kiln_unwind_copy_loader_gen, 1, memory_order_release);
  if (rc == 0) kiln_hookstack_forget_rules(); /* its addresses may hold other code next */
  if (kiln_profiler_active()) kiln_modules_refresh();
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *), void *data) {
  kiln_libc_resolve();
  if (kiln_libc.dl_iterate_phdr == NULL) return 0;
  kiln_unwind_unsafe_enter();
  int rc = kiln_libc.dl_iterate_phdr(cb, data);
  kiln_unwind_unsafe_leave();
  return rc;
}

/* ----------------------------------------------------------- mappings */

/* Forwarded as the system call itself: an allocator maps memory before
 * anything is resolved (jemalloc in its constructor), and dlsym there
 * could re-enter it. */
#ifdef KILN_SANITIZER_FORWARD
/* Sanitizer builds (make asan, make tsan): mappings go through the
 * sanitizer's own mmap and munmap, which reset its shadow memory (with
 * the raw system calls, ThreadSanitizer takes a reused address for a race).
 * Resolved at first use; while resolving, the system call. */
static __thread int kiln_interpose_san_resolving __attribute__((tls_model("initial-exec")));
static void *(*kiln_interpose_san_mmap)(void *, size_t, int, int, int, off_t);
static int (*kiln_interpose_san_munmap)(void *, size_t);
static void kiln_interpose_san_resolve(void) {
  if (kiln_interpose_san_munmap != NULL || kiln_interpose_san_resolving) return;
  kiln_interpose_san_resolving = 1;
  *(void **)&kiln_interpose_san_mmap = dlsym(RTLD_NEXT, "mmap");
  *(void **)&kiln_interpose_san_munmap = dlsym(RTLD_NEXT, "munmap");
  kiln_interpose_san_resolving = 0;
}
#define KILN_SYS_MMAP(a, l, p, f, fd, o)                                                            \
  (kiln_interpose_san_resolve(), kiln_interpose_san_mmap != NULL                                    \
                                     ? (long)kiln_interpose_san_mmap(a, l, p, f, fd, o)             \
                                     : syscall(SYS_mmap, a, l, p, f, fd, o))
#define KILN_SYS_MUNMAP(a, l)                                                                       \
  (kiln_interpose_san_resolve(), kiln_interpose_san_munmap != NULL ? kiln_interpose_san_munmap(a, l) \
                                                                   : (int)syscall(SYS_munmap, a, l))
#else
#define KILN_SYS_MMAP(a, l, p, f, fd, o) syscall(SYS_mmap, a, l, p, f, fd, o)
#define KILN_SYS_MUNMAP(a, l) ((int)syscall(SYS_munmap, a, l))
#endif

KILN_PASS_TEXT static void *kiln_interpose_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off, void *caller) {
  long r = KILN_SYS_MMAP(addr, len, prot, flags, fd, off);
  if (r < 0 && r > -4096) return MAP_FAILED; /* syscall() set errno */
  kiln_allocmaps_on_mmap((void *)r, len, prot, flags, caller);
  return (void *)r;
}

KILN_EXPORT KILN_PASS_TEXT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return kiln_interpose_mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

KILN_EXPORT KILN_PASS_TEXT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  return kiln_interpose_mmap(addr, len, prot, flags, fd, off, __builtin_return_address(0));
}

KILN_EXPORT KILN_PASS_TEXT int munmap(void *addr, size_t len) {
  int rc = KILN_SYS_MUNMAP(addr, len);
  if (rc == 0) kiln_allocmaps_on_munmap(addr, len);
  return rc;
}

/* ----------------------------------------------------------- identity */

KILN_PASS_TEXT static void kiln_interpose_become(uid_t uid) {
  if (kiln_profiler_active()) kiln_collector_share_creds();
  if (uid == (uid_t)-1 || !kiln_profiler_active() || geteuid() != 0 || uid == 0) return;
  kiln_tree_before_setuid();
  kiln_out_before_setuid(uid);
}

KILN_EXPORT KILN_PASS_TEXT int setuid(uid_t uid) {
  kiln_libc_resolve();
  if (kiln_libc.setuid == NULL) return errno = ENOSYS, -1;
  kiln_interpose_become(uid);
  return kiln_libc.setuid(uid);
}

KILN_EXPORT KILN_PASS_TEXT int seteuid(uid_t euid) {
  kiln_libc_resolve();
  if (kiln_libc.seteuid == NULL) return errno = ENOSYS, -1;
  kiln_interpose_become(euid);
  return kiln_libc.seteuid(euid);
}

KILN_EXPORT KILN_PASS_TEXT int setreuid(uid_t ruid, uid_t euid) {
  kiln_libc_resolve();
  if (kiln_libc.setreuid == NULL) return errno = ENOSYS, -1;
  kiln_interpose_become(euid != (uid_t)-1 ? euid : ruid);
  return kiln_libc.setreuid(ruid, euid);
}

KILN_EXPORT KILN_PASS_TEXT int setresuid(uid_t ruid, uid_t euid, uid_t suid) {
  kiln_libc_resolve();
  if (kiln_libc.setresuid == NULL) return errno = ENOSYS, -1;
  kiln_interpose_become(euid != (uid_t)-1 ? euid : ruid);
  return kiln_libc.setresuid(ruid, euid, suid);
}

/* The group ids: no new place to write, but the collector must be able to
 * take the same change (kiln_collector_share_creds). */
KILN_PASS_TEXT static void kiln_interpose_regroup(void) {
  if (kiln_profiler_active()) kiln_collector_share_creds();
}

KILN_EXPORT KILN_PASS_TEXT int setgid(gid_t gid) {
  kiln_libc_resolve();
  if (kiln_libc.setgid == NULL) return errno = ENOSYS, -1;
  kiln_interpose_regroup();
  return kiln_libc.setgid(gid);
}

KILN_EXPORT KILN_PASS_TEXT int setegid(gid_t egid) {
  kiln_libc_resolve();
  if (kiln_libc.setegid == NULL) return errno = ENOSYS, -1;
  kiln_interpose_regroup();
  return kiln_libc.setegid(egid);
}

KILN_EXPORT KILN_PASS_TEXT int setregid(gid_t rgid, gid_t egid) {
  kiln_libc_resolve();
  if (kiln_libc.setregid == NULL) return errno = ENOSYS, -1;
  kiln_interpose_regroup();
  return kiln_libc.setregid(rgid, egid);
}

KILN_EXPORT KILN_PASS_TEXT int setresgid(gid_t rgid, gid_t egid, gid_t sgid) {
  kiln_libc_resolve();
  if (kiln_libc.setresgid == NULL) return errno = ENOSYS, -1;
  kiln_interpose_regroup();
  return kiln_libc.setresgid(rgid, egid, sgid);
}

KILN_EXPORT KILN_PASS_TEXT int setgroups(size_t n, const gid_t *groups) {
  kiln_libc_resolve();
  if (kiln_libc.setgroups == NULL) return errno = ENOSYS, -1;
  kiln_interpose_regroup();
  return kiln_libc.setgroups(n, groups);
}

/* Capabilities are per thread too: the collector keeps the caller's, so
 * that it holds none the program gave up. */
int capset(cap_user_header_t header, const cap_user_data_t data);
KILN_EXPORT KILN_PASS_TEXT int capset(cap_user_header_t header, const cap_user_data_t data) {
  int rc = (int)syscall(SYS_capset, header, data);
  if (rc == 0 && kiln_profiler_active()) kiln_collector_share_creds();
  return rc;
}

/* glibc's initgroups calls its own setgroups, which no interposer sees. */
KILN_EXPORT KILN_PASS_TEXT int initgroups(const char *user, gid_t group) {
  kiln_libc_resolve();
  if (kiln_libc.initgroups == NULL) return errno = ENOSYS, -1;
  kiln_interpose_regroup();
  return kiln_libc.initgroups(user, group);
}

/* ----------------------------------------------------------- pipes */

KILN_EXPORT int pipe2(int fds[2], int flags) {
  if (kiln_unwind_refusing_pipes()) return errno = EMFILE, -1;
  return (int)syscall(SYS_pipe2, fds, flags);
}

KILN_EXPORT int pipe(int fds[2]) { return pipe2(fds, 0); }

/* ----------------------------------------------------------- signals */

/* libunwind blocks every signal around its unwind-info cache, two system
 * calls per frame. On kiln's collector thread, inside kiln_unwind_copy,
 * and in a hook's call into libunwind (kiln_unwind_sigs_hold), every
 * signal is blocked already: the calls would change nothing and cost most
 * of the unwind, so they are answered without the kernel. Everywhere else
 * this forwards. */
KILN_EXPORT KILN_PASS_TEXT int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
  if (kiln_unwind_copy_active() || kiln_tls_sigs_held) {
    if (old != NULL) sigfillset(old);
    return 0;
  }
  kiln_libc_resolve();
  if (kiln_libc.sigprocmask == NULL) return errno = ENOSYS, -1;
  return kiln_libc.sigprocmask(how, set, old);
}

KILN_EXPORT KILN_PASS_TEXT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  kiln_libc_resolve();
  if (kiln_libc.sigaction == NULL) return errno = ENOSYS, -1;
  if (sig == SIGPROF) return kiln_sampler_program_sigaction(act, old, kiln_libc.sigaction);
  if (kiln_crash_is_exit_signal(sig)) return kiln_crash_program_sigaction(sig, act, old);
  if (kiln_sampler_claimed(sig)) return kiln_sampler_program_claimed_sigaction(sig, act, old);
  return kiln_libc.sigaction(sig, act, old);
}

/* signal() with the given flags, through the SIGPROF logic above. */
static sighandler_t kiln_interpose_signal(int sig, sighandler_t handler, int flags) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, &old) < 0) return SIG_ERR;
  return old.sa_handler;
}

KILN_EXPORT KILN_PASS_TEXT sighandler_t signal(int sig, sighandler_t handler) {
  kiln_libc_resolve();
  if (sig != SIGPROF && !kiln_sampler_claimed(sig) && !kiln_crash_is_exit_signal(sig) && kiln_libc.signal != NULL)
    return kiln_libc.signal(sig, handler);
  return kiln_interpose_signal(sig, handler, SA_RESTART); /* glibc: BSD semantics */
}

KILN_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler) { return signal(sig, handler); }

KILN_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler) {
  return kiln_interpose_signal(sig, handler, SA_RESETHAND | SA_NODEFER);
}

/* ----------------------------------------------------------- exec */

extern char **environ;

static int kiln_interpose_exec_done(int rc) {
  int saved = errno;
  kiln_profiler_exec_failed();
  errno = saved;
  return rc;
}

KILN_EXPORT KILN_PASS_TEXT int execve(const char *path, char *const argv[], char *const envp[]) {
  kiln_libc_resolve();
  if (kiln_libc.execve == NULL) return errno = ENOSYS, -1;
  kiln_profiler_before_exec(path);
  return kiln_interpose_exec_done(kiln_libc.execve(path, argv, envp));
}

/* A file without an executable format (ENOEXEC), run by the shell as
 * glibc's execvp does: /bin/sh, the file, then the arguments after the
 * first (none: just the two). */
static void kiln_interpose_exec_script(const char *file, char *const argv[], char *const envp[]) {
  size_t argc = 0;
  while (argv[argc] != NULL) argc++;
  if (argc >= INT_MAX - 1) {
    errno = E2BIG;
    return;
  }
  char *sh[argc > 1 ? argc + 2 : 3];
  sh[0] = (char *)"/bin/sh";
  sh[1] = (char *)file;
  size_t n = 2;
  for (size_t i = 1; i < argc; i++) sh[n++] = argv[i];
  sh[n] = NULL;
  kiln_libc.execve(sh[0], sh, envp);
}

/* execvp's search of PATH, done here: kiln must know before an exec
 * whether it can work (the profile so far is written then), and asking
 * access(2) in every directory first, then letting libc try execve in each
 * again, doubled the system calls of every search (1,000 failed execvp:
 * 38 us a call against 21 unprofiled). Each directory is asked once here:
 * faccessat with the effective ids (as execve checks them); only where it
 * says yes is the profile written and execve tried. As glibc's: the order,
 * the default path, an entry as long as PATH_MAX skipped, the errors that
 * go on to the next directory (EACCES remembered), the empty entry (the
 * current directory) and the shell for a file of no known format. A name
 * without a slash longer than NAME_MAX can be exec'd nowhere: glibc's
 * call, no dump; a path (a slash) is not searched: glibc's, after the
 * dump if it may work. */
KILN_EXPORT KILN_PASS_TEXT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  kiln_libc_resolve();
  if (kiln_libc.execvpe == NULL || kiln_libc.execve == NULL) return errno = ENOSYS, -1;
  bool slash = strchr(file, '/') != NULL; /* a path: no search */
  size_t flen = slash ? 0 : strnlen(file, NAME_MAX + 1);
  if (!kiln_profiler_exec_watched() || slash || flen == 0 || flen > NAME_MAX) {
    if (slash) kiln_profiler_before_exec(file);
    return kiln_interpose_exec_done(kiln_libc.execvpe(file, argv, envp));
  }
  const char *path = getenv("PATH");
  if (path == NULL) path = "/bin:/usr/bin"; /* glibc's default (confstr's _CS_PATH) */
  size_t longest = strnlen(path, PATH_MAX - 1); /* an entry longer is skipped */
  char cand[PATH_MAX + NAME_MAX + 2];
  bool eacces = false;
  int err = ENOENT;
  for (const char *p = path;; p++) {
    const char *end = strchrnul(p, ':');
    size_t dl = (size_t)(end - p);
    if (dl > longest) {
      if (*end == '\0') break;
      p = end;
      continue;
    }
    memcpy(cand, p, dl);
    if (dl > 0) cand[dl++] = '/';
    memcpy(cand + dl, file, flen + 1);
    if (faccessat(AT_FDCWD, cand, X_OK, AT_EACCESS) != 0) {
      err = errno;
    } else {
      kiln_profiler_exec_dump();
      kiln_libc.execve(cand, argv, envp);
      if (errno == ENOEXEC) kiln_interpose_exec_script(cand, argv, envp);
      err = errno;
      kiln_profiler_exec_failed();
    }
    switch (err) {
    case EACCES:
      eacces = true;
      break;
    case ENOENT:
    case ESTALE:
    case ENOTDIR:
    case ENODEV:
    case ETIMEDOUT:
      break;
    default:
      errno = err;
      return -1;
    }
    if (*end == '\0') break;
    p = end;
  }
  errno = eacces ? EACCES : err;
  return -1;
}

KILN_EXPORT KILN_PASS_TEXT int fexecve(int fd, char *const argv[], char *const envp[]) {
  kiln_libc_resolve();
  if (kiln_libc.fexecve == NULL) return errno = ENOSYS, -1;
  kiln_profiler_before_exec(NULL);
  return kiln_interpose_exec_done(kiln_libc.fexecve(fd, argv, envp));
}

KILN_EXPORT KILN_PASS_TEXT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }
KILN_EXPORT KILN_PASS_TEXT int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

/* The list forms: count the arguments, then build argv on the stack. */
#define KILN_EXEC_ARGV(first, ap, argv, envp_out)                                                  \
  size_t argc_ = 1;                                                                                \
  va_start(ap, first);                                                                             \
  while (va_arg(ap, char *) != NULL) argc_++;                                                      \
  va_end(ap);                                                                                      \
  char *argv[argc_ + 1];                                                                           \
  va_start(ap, first);                                                                             \
  argv[0] = (char *)(first);                                                                       \
  for (size_t i_ = 1; i_ <= argc_; i_++) argv[i_] = va_arg(ap, char *);                            \
  envp_out;                                                                                        \
  va_end(ap)

KILN_EXPORT KILN_PASS_TEXT int execl(const char *path, const char *arg, ...) {
  va_list ap;
  KILN_EXEC_ARGV(arg, ap, argv, (void)0);
  return execve(path, argv, environ);
}

KILN_EXPORT KILN_PASS_TEXT int execlp(const char *file, const char *arg, ...) {
  va_list ap;
  KILN_EXEC_ARGV(arg, ap, argv, (void)0);
  return execvpe(file, argv, environ);
}

KILN_EXPORT KILN_PASS_TEXT int execle(const char *path, const char *arg, ...) {
  va_list ap;
  char **envp;
  KILN_EXEC_ARGV(arg, ap, argv, envp = va_arg(ap, char **));
  return execve(path, argv, envp);
}

/* ----------------------------------------------------------- _exit */

/* _exit skips atexit handlers and destructors: write the profile first. */
KILN_EXPORT __attribute__((noreturn)) void _exit(int status) {
  kiln_profiler_emergency(KILN_DUMP_UNDERSCORE_EXIT, 0);
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

KILN_EXPORT __attribute__((noreturn)) void _Exit(int status) { _exit(status); }
