/* kiln_out.c — putting files in the output directory safely: the directory
 * is created if missing; each file is written under a temporary name made
 * with O_CREAT|O_EXCL|O_NOFOLLOW (a planted symlink is never followed), then
 * renamed over the final name, so a reader sees the old file or the new
 * one, never half of one. Normal context (exit, dump, before exec). */
#include "kiln_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int kiln_out_mkdirs(const char *dir) {
  char path[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof path) return -ENAMETOOLONG;
  memcpy(path, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    char c = path[i];
    path[i] = '\0';
    if (mkdir(path, 0755) < 0 && errno != EEXIST) return -errno;
    path[i] = c;
  }
  struct stat st;
  if (stat(dir, &st) < 0) return -errno;
  return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

int kiln_out_write_file(const char *dir, const char *name, const char *data, size_t len) {
  static _Atomic unsigned kiln_out_seq;
  char tmp[4096], final[4096];
  if (kiln_fmt(final, sizeof final, "%s/%s", dir, name) >= (int)sizeof final) return -ENAMETOOLONG;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    unsigned seq = atomic_fetch_add(&kiln_out_seq, 1);
    if (kiln_fmt(tmp, sizeof tmp, "%s/.%s.%d.%u.tmp", dir, name, (int)getpid(), seq) >= (int)sizeof tmp)
      return -ENAMETOOLONG;
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) return -errno;
  }
  if (fd < 0) return -EEXIST;
  int rc = 0;
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      rc = w < 0 ? -errno : -EIO;
      break;
    }
    off += (size_t)w;
  }
  if (close(fd) < 0 && rc == 0) rc = -errno;
  if (rc == 0 && rename(tmp, final) < 0) rc = -errno;
  if (rc != 0) unlink(tmp);
  return rc;
}
