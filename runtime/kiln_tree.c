/* kiln_tree.c — one summary for a process tree. The first profiled process
 * (the top) names itself and a tree file in KILN_TREE ("PID:PATH"), which
 * its children inherit through fork and exec. Processes below the top never
 * write to stderr: their kiln: lines and, at their end, one record of what
 * they wrote go to the tree file (O_APPEND, one write(2) a record, so
 * records never interleave); the top reads it for its summary and removes
 * it. The file has a random part in its name, is created (by the first
 * process below that reports) O_NOFOLLOW, mode 0600, and is written and
 * read only if it is a regular file of this user. Start and top in normal context; the records
 * and kiln: lines of processes below are written with kiln_fmt and raw
 * system calls, so that emergency dumps may write them. */
#include "kiln_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
  bool started;
  bool top;
  pid_t top_pid;
  char path[4096 + 64];
  /* Opened by a process below before it gives up root (a daemon's
   * worker), which then could not open the file by its path. -1: none. */
  int kept_fd;
  dev_t kept_dev;
  ino_t kept_ino;
} kiln_tree = {.kept_fd = -1};

/* The parts of "PID:PATH". */
static bool kiln_tree_parse(const char *v, pid_t *pid, const char **path) {
  long p = 0;
  const char *s = v;
  while (*s >= '0' && *s <= '9' && p < 1 << 30) p = p * 10 + (*s++ - '0');
  /* An empty PATH: the top could not create the file; still the top. */
  if (s == v || *s != ':' || (s[1] != '/' && s[1] != '\0') || p <= 0) return false;
  *pid = (pid_t)p;
  *path = s + 1;
  return true;
}

/* Lines of processes below go to the tree file, not to the program's
 * stderr. */
static void kiln_tree_log_sink(const char *line, size_t n) {
  char rec[1200];
  int k = kiln_fmt(rec, sizeof rec, "W %d %.*s", (int)getpid(), (int)n, line);
  if (k > 0) kiln_tree_append(rec, (size_t)k < sizeof rec ? (size_t)k : sizeof rec - 1);
}

/* First call (out_dir NULL, before the options are read): this process's
 * place in the tree, from KILN_TREE. A later call with out_dir: the top
 * creates the tree file there and names it in KILN_TREE. */
int kiln_tree_start(const char *out_dir) {
  if (!kiln_tree.started) {
    kiln_tree.started = true;
    const char *v = secure_getenv("KILN_TREE"), *path;
    pid_t pid;
    if (v != NULL && kiln_tree_parse(v, &pid, &path) && strlen(path) < sizeof kiln_tree.path) {
      strcpy(kiln_tree.path, path);
      kiln_tree.top_pid = pid;
      /* The top itself after an exec is still the top. */
      kiln_tree.top = pid == getpid();
      if (!kiln_tree.top) kiln_log_sink = kiln_tree_log_sink;
    } else {
      kiln_tree.top = true;
      kiln_tree.top_pid = getpid();
    }
  }
  if (!kiln_tree.top || out_dir == NULL || kiln_tree.path[0] != '\0') return 0;
  unsigned char rnd[8];
  if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    memcpy(rnd, &x, sizeof rnd);
  }
  uint64_t tag;
  memcpy(&tag, rnd, sizeof tag);
  /* The file itself is made by the first process below that reports: a
   * top without children leaves nothing behind, even if it never reaches
   * its end (an exec into a program without kiln, kiln_stop). */
  kiln_fmt(kiln_tree.path, sizeof kiln_tree.path, "%s/.kiln-tree.%d.%016llx", out_dir, (int)getpid(),
           (unsigned long long)tag);
  /* The directory is there for the children (the top writes into it at
   * its end anyway; an error is reported then). */
  if (kiln_out_mkdirs(out_dir, false) < 0) kiln_tree.path[0] = '\0';
  char env[sizeof kiln_tree.path + 16];
  kiln_fmt(env, sizeof env, "%d:%s", (int)getpid(), kiln_tree.path);
  setenv("KILN_TREE", env, 1);
  return 0;
}

bool kiln_tree_is_top(void) { return !kiln_tree.started || kiln_tree.top; }

void kiln_tree_after_fork_child(void) {
  if (!kiln_tree.started) return;
  kiln_tree.top = false;
  kiln_log_sink = kiln_tree_log_sink;
}

/* The kept descriptor, if it is still the tree file (the program may have
 * closed it, or reused its number). */
KILN_SIGNAL_SAFE static bool kiln_tree_kept_ok(void) {
  struct stat st;
  return kiln_tree.kept_fd >= 0 && fstat(kiln_tree.kept_fd, &st) == 0 && S_ISREG(st.st_mode) &&
         st.st_dev == kiln_tree.kept_dev && st.st_ino == kiln_tree.kept_ino;
}

void kiln_tree_before_setuid(void) {
  if (!kiln_tree.started || kiln_tree.top || kiln_tree.path[0] == '\0' || kiln_tree_kept_ok()) return;
  int fd = open(kiln_tree.path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    close(fd);
    return;
  }
  kiln_tree.kept_fd = kiln_out_high_fd(fd);
  kiln_tree.kept_dev = st.st_dev;
  kiln_tree.kept_ino = st.st_ino;
}

KILN_SIGNAL_SAFE void kiln_tree_append(const char *rec, size_t n) {
  if (kiln_tree.path[0] == '\0') return;
  if (kiln_tree_kept_ok()) {
    ssize_t w;
    do w = write(kiln_tree.kept_fd, rec, n);
    while (w < 0 && errno == EINTR);
    return;
  }
  int fd = open(kiln_tree.path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) {
    ssize_t w;
    do w = write(fd, rec, n);
    while (w < 0 && errno == EINTR);
  }
  close(fd);
}

KILN_SIGNAL_SAFE void kiln_tree_report(const kiln_tree_rec_t *r) {
  if (kiln_tree.top || kiln_tree.path[0] == '\0') return;
  char rec[512];
  int k = kiln_fmt(rec, sizeof rec, "P %d %s %u %llu %llu %d %d %s\n", (int)getpid(), r->empty ? "empty" : "wrote",
                   r->files, (unsigned long long)r->samples, (unsigned long long)r->allocs, r->rc,
                   r->fatal_signal, r->prog);
  if (k > 0 && (size_t)k < sizeof rec) kiln_tree_append(rec, (size_t)k);
}

/* Adds one "P ..." record to the totals. */
static void kiln_tree_count(kiln_tree_totals_t *t, const char *line, size_t n) {
  char buf[512];
  if (n >= sizeof buf) return;
  memcpy(buf, line, n);
  buf[n] = '\0';
  char *save = NULL, *f[9];
  int nf = 0;
  for (char *w = strtok_r(buf, " ", &save); w && nf < 9; w = strtok_r(NULL, " ", &save)) f[nf++] = w;
  if (nf < 9 || strcmp(f[0], "P") != 0) return;
  bool empty = strcmp(f[2], "empty") == 0;
  t->processes++;
  if (empty) t->empty++;
  t->files += strtoull(f[3], NULL, 10);
  if (atoi(f[6]) != 0) t->failed++;
  if (empty) return;
  const char *prog = f[8];
  int i = 0;
  for (; i < t->nprogs; i++)
    if (strcmp(t->progs[i].name, prog) == 0) break;
  if (i == t->nprogs) {
    if (t->nprogs == KILN_TREE_PROGS) {
      t->other++;
      return;
    }
    kiln_fmt(t->progs[i].name, sizeof t->progs[i].name, "%s", prog);
    t->progs[t->nprogs++].count = 0;
  }
  t->progs[i].count++;
}

int kiln_tree_collect(kiln_tree_totals_t *t, bool remove) {
  memset(t, 0, sizeof *t);
  if (!kiln_tree.top || kiln_tree.path[0] == '\0') return -ENOENT;
  int fd = open(kiln_tree.path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
    close(fd);
    return -EPERM;
  }
  char buf[16384];
  size_t have = 0;
  for (;;) {
    ssize_t r = read(fd, buf + have, sizeof buf - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    have += (size_t)r;
    size_t start = 0;
    for (size_t i = 0; i < have; i++) {
      if (buf[i] != '\n') continue;
      const char *line = buf + start;
      size_t n = i - start;
      if (n > 2 && line[0] == 'W') {
        if (t->warnings++ == 0) {
          const char *text = memchr(line + 2, ' ', n - 2); /* after the pid */
          size_t skip = text ? (size_t)(text + 1 - line) : n;
          if (n - skip > 6 && memcmp(line + skip, "kiln: ", 6) == 0) skip += 6;
          kiln_fmt(t->first_warning, sizeof t->first_warning, "%.*s", (int)(n - skip), line + skip);
        }
      } else {
        kiln_tree_count(t, line, n);
      }
      start = i + 1;
    }
    memmove(buf, buf + start, have - start);
    have -= start;
    if (have == sizeof buf) have = 0; /* a line longer than the buffer: dropped */
  }
  close(fd);
  if (remove) unlink(kiln_tree.path);
  return 0;
}
