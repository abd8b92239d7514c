/* kiln_out.c — putting files in the output directory safely. The directory
 * is reached (and missing parts created) by walking it from "/" one
 * component at a time with openat(O_NOFOLLOW | O_DIRECTORY) and mkdirat,
 * so that a symlink planted in a shared directory (/tmp) cannot send the
 * files elsewhere; it is walked at start (errors show early) and again for
 * each use, the descriptor closed after it, so that a program that counts
 * or closes its descriptors sees none of kiln's. A process about to change
 * its user keeps it instead, at the top of the fd range (close-on-exec),
 * opened while it still has the rights it started with. Each file is written under an unpredictable
 * temporary name (getrandom) created O_CREAT|O_EXCL|O_NOFOLLOW in it, then
 * renamed over the final name, so a reader sees the old file or the new
 * one, never half of one. A process that gives up root for another user
 * (nginx workers) writes into a subdirectory made for that user while it
 * was still root. Normal context (start, exit, dump, before exec, setuid),
 * and emergency dumps (kiln_profiler.c): no stdio, no malloc (kiln_fmt),
 * and a lock they only take when free (else they write without it). */
#include "kiln_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h> /* renameat */
#include <string.h>
#include <sys/auxv.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* A directory kept open: the path it was reached by and what it is, so
 * that a program that closes or dup2s over the descriptor is noticed. */
typedef struct kiln_out_dir {
  char path[4096];
  int fd; /* -1: none */
  char where[4096]; /* where fd really is: path, or path/uid-N after a setuid */
  dev_t dev;
  ino_t ino;
  bool keep; /* fd stays open between writes (after a setuid) */
} kiln_out_dir_t;

static struct {
  /* A recursive lock of kiln's own (a fatal signal during a write may dump
   * again on the same thread): the owner's tid, and how deep it holds it.
   * An emergency dump never waits on it. */
  _Atomic pid_t owner;
  unsigned depth;
  kiln_out_dir_t main;  /* the run's output directory (kiln_out_open) */
  kiln_out_dir_t other; /* the last other one (kiln_dump(dir)) */
  bool atfork;
  unsigned batch;       /* kiln_out_batch: descriptors stay open meanwhile */
  char detail[600];     /* the last failure, in words, for kiln_out_error */
  char errbuf[32];
} kiln_out = {0, 0, {"", -1, "", 0, 0, false}, {"", -1, "", 0, 0, false}, false, 0, "", ""};

/* Takes the lock (waiting for another thread to let go), or, in an
 * emergency, only when free or already ours: false then. */
static bool kiln_out_lock(bool emergency) {
  pid_t self = (pid_t)syscall(SYS_gettid);
  if (atomic_load(&kiln_out.owner) == self) {
    kiln_out.depth++;
    return true;
  }
  for (;;) {
    pid_t none = 0;
    if (atomic_compare_exchange_strong(&kiln_out.owner, &none, self)) break;
    if (emergency) return false;
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
  }
  kiln_out.depth = 1;
  return true;
}

static void kiln_out_unlock(void) {
  if (--kiln_out.depth == 0) atomic_store(&kiln_out.owner, 0);
}

/* Says why in kiln_out.detail; returns rc. */
__attribute__((format(printf, 2, 3))) static int kiln_out_fail(int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  kiln_fmt_v(kiln_out.detail, sizeof kiln_out.detail, fmt, ap);
  va_end(ap);
  return rc;
}

/* strerror without the locale. */
static const char *kiln_out_strerror(int e) { return kiln_fmt_errno(e, kiln_out.errbuf, sizeof kiln_out.errbuf); }

bool kiln_out_secure(void) {
  return getauxval(AT_SECURE) != 0 || geteuid() != getuid() || getegid() != getgid();
}

const char *kiln_out_where(const char *dir) {
  return kiln_out.main.path[0] != '\0' && strcmp(kiln_out.main.path, dir) == 0 ? kiln_out.main.where : dir;
}

const char *kiln_out_error(int rc) { return kiln_out.detail[0] != '\0' ? kiln_out.detail : kiln_out_strerror(-rc); }

/* Moves fd to the top of the descriptor range (close-on-exec), out of the
 * way of a program that expects its low numbers free. */
int kiln_out_high_fd(int fd) {
  struct rlimit rl;
  /* Not above 1024: a descriptor near a limit of a million would make the
   * kernel grow the program's fd table to match. */
  int top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024 ? (int)rl.rlim_cur : 1024;
  for (int want = top - 1; want >= 3 && want >= top - 64 && want > fd; want--) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, want);
    if (high < 0) continue;
    close(fd);
    return high;
  }
  return fd;
}

/* Whether to follow a symlink met on the way: one owned by root or by this
 * process's user, or one owned by the owner of a directory nobody else may
 * write. A link planted in a shared directory (world- or group-writable,
 * like /tmp) by another user is refused, as the kernel's protected_symlinks
 * refuses it in sticky directories. */
static bool kiln_out_trust_link(const struct stat *link, const struct stat *dir) {
  if (link->st_uid == 0 || link->st_uid == geteuid()) return true;
  return !(dir->st_mode & (S_IWGRP | S_IWOTH)) && dir->st_uid == link->st_uid;
}

/* Opens the absolute path dir, creating what is missing (0755), without
 * following an untrusted symlink. The fd, or -errno with kiln_out.detail. */
static int kiln_out_walk(const char *dir) {
  char path[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof path) return kiln_out_fail(-ENAMETOOLONG, "%s: path too long", dir);
  if (dir[0] != '/') return kiln_out_fail(-EINVAL, "%s: not an absolute path", dir);
  memcpy(path, dir, n + 1);
  int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  for (char *comp = path; *comp != '\0';) {
    while (*comp == '/') comp++;
    if (*comp == '\0') break;
    char *end = strchr(comp, '/');
    char save = end != NULL ? *end : '\0';
    if (end != NULL) *end = '\0';
    int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT) {
      if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
        int e = errno;
        close(fd);
        return kiln_out_fail(-e, "cannot create %.*s: %s", (int)(comp + strlen(comp) - path), path, kiln_out_strerror(e));
      }
      next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0 && (errno == ELOOP || errno == ENOTDIR)) {
      struct stat ls, ds;
      if (fstatat(fd, comp, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode) && fstat(fd, &ds) == 0) {
        if (!kiln_out_trust_link(&ls, &ds)) {
          close(fd);
          return kiln_out_fail(-ELOOP, "%.*s is a symlink owned by uid %u in a directory others may write; not followed",
                               (int)(comp + strlen(comp) - path), path, (unsigned)ls.st_uid);
        }
        next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      } else {
        close(fd);
        return kiln_out_fail(-ENOTDIR, "%.*s is not a directory", (int)(comp + strlen(comp) - path), path);
      }
    }
    if (next < 0) {
      int e = errno;
      close(fd);
      return kiln_out_fail(-e, "%.*s: %s", (int)(comp + strlen(comp) - path), path, kiln_out_strerror(e));
    }
    close(fd);
    fd = next;
    if (end == NULL) break;
    *end = save;
    comp = end;
  }
  return fd;
}

static bool kiln_out_still(const kiln_out_dir_t *d) {
  struct stat st;
  return d->fd >= 0 && fstat(d->fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == d->dev && st.st_ino == d->ino;
}

/* d holds dir open (walking it again if need be): its fd or -errno. */
static int kiln_out_hold(kiln_out_dir_t *d, const char *dir) {
  bool ours = kiln_out_still(d); /* else closed or reused by the program: not ours to close */
  if (ours && strcmp(d->path, dir) == 0) return d->fd;
  if (ours) close(d->fd);
  d->fd = -1;
  int fd = kiln_out_walk(dir);
  if (fd < 0) return fd;
  fd = kiln_out_high_fd(fd);
  struct stat st;
  if (fstat(fd, &st) < 0) {
    close(fd);
    return -errno;
  }
  kiln_fmt(d->path, sizeof d->path, "%s", dir);
  kiln_fmt(d->where, sizeof d->where, "%s", dir);
  d->fd = fd;
  d->dev = st.st_dev;
  d->ino = st.st_ino;
  return fd;
}

/* The record of dir, the run's directory or another. Under the lock. */
static kiln_out_dir_t *kiln_out_dir_of(const char *dir) {
  kiln_out.detail[0] = '\0';
  if (kiln_out.main.path[0] != '\0' && strcmp(kiln_out.main.path, dir) == 0) return &kiln_out.main;
  return &kiln_out.other;
}

/* After a use: the descriptor is closed again unless kept, so that a
 * program that counts or closes its descriptors sees none of kiln's. */
static void kiln_out_let_go(kiln_out_dir_t *d) {
  if (d->keep || d->fd < 0 || kiln_out.batch > 0) return;
  close(d->fd);
  d->fd = -1;
}

void kiln_out_batch(bool on) {
  kiln_out_lock(false);
  if (on) {
    kiln_out.batch++;
  } else if (kiln_out.batch > 0 && --kiln_out.batch == 0) {
    kiln_out_let_go(&kiln_out.main);
    kiln_out_let_go(&kiln_out.other);
  }
  kiln_out_unlock();
}

static void kiln_out_fork_prepare(void) { kiln_out_lock(false); }
static void kiln_out_fork_parent(void) { kiln_out_unlock(); }
/* The child's thread is not the owner the lock remembers: free again (the
 * state it guards is whole: the parent held it across fork). */
static void kiln_out_fork_child(void) {
  kiln_out.depth = 0;
  atomic_store(&kiln_out.owner, 0);
}

int kiln_out_open(const char *dir) {
  kiln_out_lock(false);
  if (!kiln_out.atfork)
    kiln_out.atfork = pthread_atfork(kiln_out_fork_prepare, kiln_out_fork_parent, kiln_out_fork_child) == 0;
  kiln_out.detail[0] = '\0';
  int rc = kiln_out_hold(&kiln_out.main, dir);
  kiln_out_let_go(&kiln_out.main);
  kiln_out_unlock();
  return rc < 0 ? rc : 0;
}

/* An emergency dump that found the lock taken: the run's directory as it
 * is held, else dir walked into a descriptor of its own (*own, closed by
 * the caller); nothing shared is changed. */
static int kiln_out_dir_fd_unlocked(const char *dir, int *own) {
  *own = -1;
  if (kiln_out.main.path[0] != '\0' && strcmp(kiln_out.main.path, dir) == 0 && kiln_out_still(&kiln_out.main))
    return kiln_out.main.fd;
  int fd = kiln_out_walk(dir);
  if (fd >= 0) *own = fd;
  return fd;
}

int kiln_out_mkdirs(const char *dir, bool emergency) {
  int own = -1, rc;
  if (kiln_out_lock(emergency)) {
    kiln_out_dir_t *d = kiln_out_dir_of(dir);
    rc = kiln_out_hold(d, dir);
    kiln_out_let_go(d);
    kiln_out_unlock();
  } else {
    rc = kiln_out_dir_fd_unlocked(dir, &own);
    if (own >= 0) close(own);
  }
  return rc < 0 ? rc : 0;
}

/* A temporary name nobody can guess: .NAME.<64 random bits>.tmp */
static int kiln_out_tmp_name(char *out, size_t size, const char *name) {
  uint64_t r = 0;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r ^= (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)&r;
  }
  return kiln_fmt(out, size, ".%s.%016llx.tmp", name, (unsigned long long)r) < (int)size ? 0 : -ENAMETOOLONG;
}

int kiln_out_write_file(const char *dir, const char *name, const char *data, size_t len, bool emergency) {
  bool locked = kiln_out_lock(emergency);
  int own = -1;
  kiln_out_dir_t *d = locked ? kiln_out_dir_of(dir) : NULL;
  int dfd = locked ? kiln_out_hold(d, dir) : kiln_out_dir_fd_unlocked(dir, &own), rc = 0, fd = -1;
  char tmp[512];
  if (dfd < 0) {
    rc = dfd;
    goto out;
  }
  if (strchr(name, '/') != NULL || strlen(name) > 255 - 24) {
    rc = kiln_out_fail(-EINVAL, "%s: not a file name", name);
    goto out;
  }
  /* Planted names only make us draw again. */
  for (int attempt = 0; attempt < 64 && fd < 0; attempt++) {
    if ((rc = kiln_out_tmp_name(tmp, sizeof tmp, name)) < 0) goto out;
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) {
      rc = kiln_out_fail(-errno, "%s/%s: %s", dir, tmp, kiln_out_strerror(errno));
      goto out;
    }
  }
  if (fd < 0) {
    rc = kiln_out_fail(-EEXIST, "%s: 64 temporary names in a row were taken", dir);
    goto out;
  }
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      rc = w < 0 ? -errno : -EIO;
      (void)kiln_out_fail(rc, "%s/%s: %s", dir, name, kiln_out_strerror(-rc));
      break;
    }
    off += (size_t)w;
  }
  if (close(fd) < 0 && rc == 0) rc = kiln_out_fail(-errno, "%s/%s: %s", dir, name, kiln_out_strerror(errno));
  if (rc == 0 && renameat(dfd, tmp, dfd, name) < 0) {
    int e = errno;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      rc = kiln_out_fail(-e, "%s/%s is a directory", dir, name);
    else
      rc = kiln_out_fail(-e, "%s/%s: %s", dir, name, kiln_out_strerror(e));
  }
  if (rc != 0) unlinkat(dfd, tmp, 0);
out:
  if (own >= 0) close(own);
  if (locked) {
    kiln_out_let_go(d);
    kiln_out_unlock();
  }
  return rc;
}

void kiln_out_before_setuid(uid_t uid) {
  if (geteuid() != 0 || uid == 0 || uid == (uid_t)-1) return;
  kiln_out_lock(false);
  kiln_out_dir_t *d = &kiln_out.main;
  struct stat st;
  /* Held from now on: the new user may not reach the directory by its
   * path (a parent only root may enter). */
  if (d->path[0] == '\0' || kiln_out_hold(d, d->path) < 0) goto out;
  d->keep = true;
  if (fstat(d->fd, &st) < 0 || st.st_uid == uid || (st.st_mode & S_IWOTH)) goto out;
  /* uid could not write here: a directory of its own, made (and given to
   * it) while this process can. */
  char sub[32];
  kiln_fmt(sub, sizeof sub, "uid-%u", (unsigned)uid);
  if (mkdirat(d->fd, sub, 0755) < 0 && errno != EEXIST) goto out;
  int fd = openat(d->fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) goto out;
  /* Made now, or by a sibling (another worker) that may not have given it
   * away yet: root's, so give it; anyone else's is not used. */
  if (fstat(fd, &st) == 0 && st.st_uid == 0 && fchown(fd, uid, (gid_t)-1) == 0) st.st_uid = uid;
  if (st.st_uid != uid) {
    close(fd);
    goto out;
  }
  fd = kiln_out_high_fd(fd);
  close(d->fd);
  d->fd = fd; /* the run's path now names this subdirectory */
  size_t n = strlen(d->where);
  if (n + 1 + strlen(sub) < sizeof d->where) kiln_fmt(d->where + n, sizeof d->where - n, "/%s", sub);
  d->dev = st.st_dev;
  d->ino = st.st_ino;
out:
  kiln_out_unlock();
}
