/* kiln_fmt.c — the runtime's own snprintf: digits and strings into a
 * caller's buffer, with no locale, no malloc, no lock and no errno, so that
 * the dumps made in a signal handler or after _exit (kiln_profiler.c's
 * emergency mode) can name files, write meta.json and the summary line.
 * The subset the runtime uses: flags "-0+ ", width and precision (numbers
 * or '*'), lengths hh h l ll z j t, conversions d i u x X c s p f %.
 * Async-signal-safe; any context. */
#include "kiln_internal.h"

#include <errno.h>
#include <string.h>

typedef struct kiln_fmt_out {
  char *p;
  size_t cap, len; /* len counts what would be written, like snprintf */
} kiln_fmt_out_t;

KILN_SIGNAL_SAFE static void kiln_fmt_putc(kiln_fmt_out_t *o, char c) {
  if (o->len + 1 < o->cap) o->p[o->len] = c;
  o->len++;
}

KILN_SIGNAL_SAFE static void kiln_fmt_pad(kiln_fmt_out_t *o, char c, int n) {
  while (n-- > 0) kiln_fmt_putc(o, c);
}

/* A converted field: sign/prefix, zeros, digits or text, with the width. */
KILN_SIGNAL_SAFE static void kiln_fmt_field(kiln_fmt_out_t *o, const char *prefix, const char *body, size_t n,
                                            int width, bool left, bool zero) {
  size_t np = strlen(prefix);
  int fill = width > (int)(np + n) ? width - (int)(np + n) : 0;
  if (!left && !zero) kiln_fmt_pad(o, ' ', fill);
  for (size_t i = 0; i < np; i++) kiln_fmt_putc(o, prefix[i]);
  if (!left && zero) kiln_fmt_pad(o, '0', fill);
  for (size_t i = 0; i < n; i++) kiln_fmt_putc(o, body[i]);
  if (left) kiln_fmt_pad(o, ' ', fill);
}

/* v in base 10 or 16 into the end of buf; returns the first digit. */
KILN_SIGNAL_SAFE static char *kiln_fmt_digits(char *end, unsigned long long v, unsigned base, bool upper) {
  const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char *p = end;
  do {
    *--p = d[v % base];
    v /= base;
  } while (v != 0);
  return p;
}

/* %.Nf: the value rounded to N decimals (N <= 9), as integer and fraction
 * digits; exact below 2^64 (the magnitudes the runtime prints), larger
 * values clamped; NaN and infinities get printf's words. */

/* a * b - p exactly, p being a * b rounded (Dekker's product with
 * Veltkamp's split; a < 1 and b <= 1e9 here, far from overflow): what fma
 * gives, without libm, whose fma is a call where the CPU has no FMA. */
KILN_SIGNAL_SAFE static double kiln_fmt_product_error(double a, double b, double p) {
  double ca = 134217729.0 * a, cb = 134217729.0 * b;
  double ah = ca - (ca - a), al = a - ah, bh = cb - (cb - b), bl = b - bh;
  return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
}

KILN_SIGNAL_SAFE static void kiln_fmt_double(kiln_fmt_out_t *o, double v, int prec, int width, bool left,
                                             bool zero, const char *sign_pos) {
  char buf[64];
  const char *prefix = "";
  if (v != v) {
    kiln_fmt_field(o, "", "nan", 3, width, left, false);
    return;
  }
  if (v < 0) {
    prefix = "-";
    v = -v;
  } else {
    prefix = sign_pos;
  }
  if (v > 1e300) {
    kiln_fmt_field(o, prefix, "inf", 3, width, left, false);
    return;
  }
  if (prec > 9) prec = 9;
  unsigned long long scale = 1;
  for (int i = 0; i < prec; i++) scale *= 10;
  if (v > 1.8e19) v = 1.8e19;
  /* Integer part, then the scaled fraction rounded half to even, as
   * glibc rounds the exact binary value. */
  unsigned long long ip = (unsigned long long)v, fp;
  double frac = v - (double)ip, x = frac * (double)scale;
  double err = kiln_fmt_product_error(frac, (double)scale, x); /* what the product rounded off */
  fp = (unsigned long long)x;
  double rest = x - (double)fp;
  bool odd = prec == 0 ? (ip & 1) : (fp & 1);
  if (rest > 0.5 || (rest == 0.5 && (err > 0 || (err == 0 && odd)))) fp++;
  if (fp >= scale) fp -= scale, ip++;
  char *end = buf + sizeof buf, *p = end;
  if (prec > 0) {
    for (int i = 0; i < prec; i++) {
      *--p = (char)('0' + fp % 10);
      fp /= 10;
    }
    *--p = '.';
  }
  p = kiln_fmt_digits(p, ip, 10, false);
  kiln_fmt_field(o, prefix, p, (size_t)(end - p), width, left, zero);
}

KILN_SIGNAL_SAFE int kiln_fmt_v(char *out, size_t cap, const char *fmt, va_list ap) {
  kiln_fmt_out_t o = {out, cap, 0};
  for (const char *f = fmt; *f; f++) {
    if (*f != '%') {
      kiln_fmt_putc(&o, *f);
      continue;
    }
    f++;
    bool left = false, zero = false;
    const char *sign_pos = "";
    for (;; f++) {
      if (*f == '-') left = true;
      else if (*f == '0') zero = true;
      else if (*f == '+') sign_pos = "+";
      else if (*f == ' ') sign_pos = *sign_pos ? sign_pos : " ";
      else if (*f != '#') break;
    }
    int width = 0, prec = -1;
    if (*f == '*') {
      width = va_arg(ap, int);
      if (width < 0) left = true, width = -width;
      f++;
    } else {
      while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
    }
    if (*f == '.') {
      f++;
      prec = 0;
      if (*f == '*') {
        prec = va_arg(ap, int);
        f++;
      } else {
        while (*f >= '0' && *f <= '9') prec = prec * 10 + (*f++ - '0');
      }
    }
    int lng = 0; /* 0 int, 1 long, 2 long long, 3 size_t, -1 short, -2 char */
    for (;; f++) {
      if (*f == 'l') lng = lng == 1 ? 2 : 1;
      else if (*f == 'h') lng = lng == -1 ? -2 : -1;
      else if (*f == 'z' || *f == 't') lng = 3;
      else if (*f == 'j') lng = 2;
      else break;
    }
    char num[32], *end = num + sizeof num, *p;
    switch (*f) {
    case 'd':
    case 'i': {
      long long v = lng == 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long)
                  : lng == 3 ? (long long)va_arg(ap, ssize_t) : va_arg(ap, int);
      if (lng == -1) v = (short)v;
      if (lng == -2) v = (signed char)v;
      unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
      p = kiln_fmt_digits(end, u, 10, false);
      while (prec > 0 && end - p < prec) *--p = '0';
      kiln_fmt_field(&o, v < 0 ? "-" : sign_pos, p, (size_t)(end - p), width, left, zero && prec < 0);
      break;
    }
    case 'u':
    case 'x':
    case 'X':
    case 'p': {
      unsigned long long v;
      if (*f == 'p') v = (unsigned long long)(uintptr_t)va_arg(ap, void *);
      else v = lng == 2 ? va_arg(ap, unsigned long long) : lng == 1 ? va_arg(ap, unsigned long)
             : lng == 3 ? va_arg(ap, size_t) : va_arg(ap, unsigned);
      if (lng == -1) v = (unsigned short)v;
      if (lng == -2) v = (unsigned char)v;
      p = kiln_fmt_digits(end, v, *f == 'u' ? 10 : 16, *f == 'X');
      while (prec > 0 && end - p < prec) *--p = '0';
      kiln_fmt_field(&o, *f == 'p' ? "0x" : "", p, (size_t)(end - p), width, left, zero && prec < 0);
      break;
    }
    case 'c':
      num[0] = (char)va_arg(ap, int);
      kiln_fmt_field(&o, "", num, 1, width, left, false);
      break;
    case 's': {
      const char *s = va_arg(ap, const char *);
      if (s == NULL) s = "(null)";
      size_t n = 0;
      while (s[n] && (prec < 0 || n < (size_t)prec)) n++;
      kiln_fmt_field(&o, "", s, n, width, left, false);
      break;
    }
    case 'f':
    case 'F':
    case 'g':
    case 'e':
      kiln_fmt_double(&o, va_arg(ap, double), prec < 0 ? 6 : prec, width, left, zero, sign_pos);
      break;
    case '%':
      kiln_fmt_putc(&o, '%');
      break;
    default: /* unknown: written as it stands */
      kiln_fmt_putc(&o, '%');
      if (*f == '\0') f--;
      else kiln_fmt_putc(&o, *f);
      break;
    }
  }
  if (cap > 0) out[o.len < cap ? o.len : cap - 1] = '\0';
  return o.len > (size_t)0x7fffffff ? 0x7fffffff : (int)o.len;
}

KILN_SIGNAL_SAFE int kiln_fmt(char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = kiln_fmt_v(out, cap, fmt, ap);
  va_end(ap);
  return n;
}

/* Howard Hinnant's civil_from_days: the UTC calendar date of a day count,
 * the arithmetic gmtime_r does, minus its lock and its time zone state. */
KILN_SIGNAL_SAFE void kiln_fmt_utc(int64_t unix_seconds, kiln_fmt_tm_t *out) {
  int64_t days = unix_seconds / 86400, secs = unix_seconds % 86400;
  if (secs < 0) secs += 86400, days--;
  days += 719468;
  int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  int64_t doe = days - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  out->year = (int)(yoe + era * 400 + (m <= 2));
  out->month = (int)m;
  out->day = (int)d;
  out->hour = (int)(secs / 3600);
  out->minute = (int)(secs / 60 % 60);
  out->second = (int)(secs % 60);
}

/* strerror's text for the errors that writing a profile meets; others by
 * number. No locale, no static buffer shared with the program. */
KILN_SIGNAL_SAFE const char *kiln_fmt_errno(int e, char *buf, size_t cap) {
  static const struct { int e; const char *text; } known[] = {
      {EPERM, "Operation not permitted"}, {ENOENT, "No such file or directory"},
      {EIO, "Input/output error"}, {ENOMEM, "Cannot allocate memory"},
      {EACCES, "Permission denied"}, {EEXIST, "File exists"}, {ENOTDIR, "Not a directory"},
      {EISDIR, "Is a directory"}, {EMFILE, "Too many open files"}, {ENFILE, "Too many open files in system"},
      {EFBIG, "File too large"}, {ENOSPC, "No space left on device"}, {EROFS, "Read-only file system"},
      {ENAMETOOLONG, "File name too long"}, {ELOOP, "Too many levels of symbolic links"},
      {EDQUOT, "Disk quota exceeded"}, {EBUSY, "Device or resource busy"}, {EINVAL, "Invalid argument"},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (known[i].e == e) return known[i].text;
  kiln_fmt(buf, cap, "error %d", e);
  return buf;
}
