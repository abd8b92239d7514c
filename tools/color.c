/* color.c — frame colours for the SVG, as flamegraph.pl picks them: its named
 * palettes (a base hue varied by up to three numbers in [0,1)), the
 * multi-hue palettes that read perf's annotations (_[k] kernel, _[j] jit,
 * _[i] inlined, _[w] waker) and language naming (java, js, perl, wakeup,
 * chain), and its three ways to choose the numbers: by default from the
 * name's code points summed as the seed of Perl's drand48 (one colour per
 * name, on the palette's line), --hash from the first characters of the
 * name and its reverse, --random from a sequence (fixed-seed here, so output
 * stays stable). Also the red/blue scale of differential graphs and the
 * background gradients. */
#include "kiln.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kiln_color_names[] = {
    "hot", "mem", "io", "red", "green", "blue", "aqua", "yellow", "purple", "orange",
    "java", "js", "perl", "wakeup", "chain",
};

int kiln_color_palette(const char *name, kiln_palette_t *out)
{
    for (size_t i = 0; i < sizeof kiln_color_names / sizeof kiln_color_names[0]; i++) {
        if (strcmp(name, kiln_color_names[i]) == 0) {
            *out = (kiln_palette_t)i;
            return 0;
        }
    }
    return -1;
}

const char *kiln_color_palette_names(void)
{
    return "hot, mem, io, wakeup, chain, java, js, perl, red, green, blue, aqua, yellow, "
           "purple, orange";
}

int kiln_color_background(const char *name, kiln_palette_t pal, const char **top,
                          const char **bottom)
{
    static char flat[8];
    if (!name || !*name) {
        /* flamegraph.pl's defaults: green for mem, blue for io, wakeup and
         * chain, grey for the flat palettes, yellow otherwise. */
        name = pal == KILN_PAL_MEM ? "green"
               : pal == KILN_PAL_IO || pal == KILN_PAL_WAKEUP || pal == KILN_PAL_CHAIN ? "blue"
               : pal >= KILN_PAL_RED && pal <= KILN_PAL_ORANGE ? "grey"
                                                                : "yellow";
    }
    if (strcmp(name, "yellow") == 0) {
        *top = "#eeeeee";
        *bottom = "#eeeeb0";
    } else if (strcmp(name, "blue") == 0) {
        *top = "#eeeeee";
        *bottom = "#e0e0ff";
    } else if (strcmp(name, "green") == 0) {
        *top = "#eef2ee";
        *bottom = "#e0ffe0";
    } else if (strcmp(name, "grey") == 0 || strcmp(name, "gray") == 0) {
        *top = "#f8f8f8";
        *bottom = "#e8e8e8";
    } else if (name[0] == '#' && strlen(name) == 7 && strspn(name + 1, "0123456789abcdefABCDEF") == 6) {
        memcpy(flat, name, 8);
        *top = *bottom = flat;
    } else {
        return -1;
    }
    return 0;
}

/* The next code point of S (invalid UTF-8: U+FFFD, one byte), as Perl sees
 * a name read through the :utf8 layer. */
static uint32_t kiln_color_cp(const unsigned char *s, size_t len, size_t *i)
{
    unsigned c = s[*i];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || *i + n > len) {
        (*i)++;
        return 0xfffd;
    }
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < n; k++) {
        if ((s[*i + k] & 0xc0) != 0x80) {
            (*i)++;
            return 0xfffd;
        }
        cp = cp << 6 | (s[*i + k] & 0x3f);
    }
    *i += n;
    return cp;
}

double kiln_color_name_value(const char *name, size_t len)
{
    /* srand(sum of the code points, mod 2^32); rand(1): Perl's drand48,
     * X0 = seed << 16 | 0x330e, X1 = (0x5deece66d X0 + 0xb) mod 2^48. */
    uint32_t sum = 0;
    for (size_t i = 0; i < len;)
        sum += kiln_color_cp((const unsigned char *)name, len, &i);
    uint64_t x = ((uint64_t)sum << 16) | 0x330e;
    x = (x * 0x5deece66dull + 0xb) & 0xffffffffffffull;
    return (double)x / 281474976710656.0;
}

/* flamegraph.pl's --hash: the first three characters (after a "module`"
 * prefix, which is dropped), each weighted less than the one before. */
static double kiln_color_namehash(const uint32_t *cps, size_t n)
{
    size_t start = 0;
    for (size_t i = 1; i < n; i++) {
        if (cps[i] == '`') {
            start = i + 1;
            break;
        }
    }
    double vector = 0, weight = 1, max = 1;
    unsigned mod = 10;
    for (size_t i = start; i < n; i++) {
        vector += (double)(cps[i] % mod) / (double)(mod - 1) * weight;
        mod++;
        max += weight;
        weight *= 0.70;
        if (mod > 12)
            break;
    }
    return 1 - vector / max;
}

static bool kiln_color_ends(const char *s, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static bool kiln_color_has(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(s + i, needle, n) == 0)
            return true;
    return false;
}

/* The multi-hue palettes pick a flat palette from the name. */
static kiln_palette_t kiln_color_pick(kiln_palette_t pal, const char *s, size_t len)
{
    switch (pal) {
    case KILN_PAL_JAVA: {
        if (kiln_color_ends(s, len, "_[j]"))
            return KILN_PAL_GREEN;
        if (kiln_color_ends(s, len, "_[i]"))
            return KILN_PAL_AQUA;
        static const char *const pkgs[] = {"java/", "javax/", "jdk/", "net/", "org/", "com/",
                                           "io/", "sun/"};
        const char *t = s;
        size_t tl = len;
        if (tl && t[0] == 'L') {
            t++;
            tl--;
        }
        for (size_t i = 0; i < sizeof pkgs / sizeof pkgs[0]; i++) {
            size_t n = strlen(pkgs[i]);
            if ((tl >= n && memcmp(t, pkgs[i], n) == 0) ||
                (len >= n && memcmp(s, pkgs[i], n) == 0))
                return KILN_PAL_GREEN;
        }
        if (kiln_color_has(s, len, ":::"))
            return KILN_PAL_GREEN;
        if (kiln_color_has(s, len, "::"))
            return KILN_PAL_YELLOW;
        if (kiln_color_ends(s, len, "_[k]"))
            return KILN_PAL_ORANGE;
        return KILN_PAL_RED;
    }
    case KILN_PAL_PERL:
        if (kiln_color_has(s, len, "::"))
            return KILN_PAL_YELLOW;
        if (kiln_color_has(s, len, "Perl") || kiln_color_has(s, len, ".pl"))
            return KILN_PAL_GREEN;
        if (kiln_color_ends(s, len, "_[k]"))
            return KILN_PAL_ORANGE;
        return KILN_PAL_RED;
    case KILN_PAL_JS: {
        if (kiln_color_ends(s, len, "_[j]"))
            return kiln_color_has(s, len, "/") ? KILN_PAL_GREEN : KILN_PAL_AQUA;
        if (kiln_color_has(s, len, "::"))
            return KILN_PAL_YELLOW;
        const char *slash = memchr(s, '/', len);
        if (slash && kiln_color_has(slash, len - (size_t)(slash - s), ".js"))
            return KILN_PAL_GREEN;
        if (memchr(s, ':', len))
            return KILN_PAL_AQUA;
        if (len == 1 && s[0] == ' ')
            return KILN_PAL_GREEN;
        if (kiln_color_has(s, len, "_[k]"))
            return KILN_PAL_ORANGE;
        return KILN_PAL_RED;
    }
    case KILN_PAL_WAKEUP:
        return KILN_PAL_AQUA;
    case KILN_PAL_CHAIN:
        return kiln_color_has(s, len, "_[w]") ? KILN_PAL_AQUA : KILN_PAL_BLUE;
    default:
        return pal;
    }
}

static uint64_t kiln_color_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

void kiln_color_frame(kiln_buf_t *b, kiln_palette_t pal, kiln_color_mode_t mode,
                      const char *name, size_t len, uint64_t *seed)
{
    double v1, v2, v3;
    if (mode == KILN_COLOR_HASH) {
        uint32_t small[256] = {0}, *cps = len <= 256 ? small : kiln_util_xmalloc(len * sizeof *cps);
        size_t n = 0;
        for (size_t i = 0; i < len;)
            cps[n++] = kiln_color_cp((const unsigned char *)name, len, &i);
        v1 = kiln_color_namehash(cps, n);
        for (size_t i = 0; i < n / 2; i++) {
            uint32_t t = cps[i];
            cps[i] = cps[n - 1 - i];
            cps[n - 1 - i] = t;
        }
        v2 = v3 = kiln_color_namehash(cps, n);
        if (cps != small)
            free(cps);
    } else if (mode == KILN_COLOR_RANDOM) {
        uint64_t r = kiln_color_mix(++*seed);
        v1 = (double)(r & 0xffff) / 65536.0;
        v2 = (double)((r >> 16) & 0xffff) / 65536.0;
        v3 = (double)((r >> 32) & 0xffff) / 65536.0;
    } else {
        v1 = v2 = v3 = kiln_color_name_value(name, len);
    }
    int r = 0, g = 0, bl = 0;
    switch (kiln_color_pick(pal, name, len)) {
    case KILN_PAL_HOT: r = 205 + (int)(50 * v3); g = (int)(230 * v1); bl = (int)(55 * v2); break;
    case KILN_PAL_MEM: r = 0; g = 190 + (int)(50 * v2); bl = (int)(210 * v1); break;
    case KILN_PAL_IO: r = 80 + (int)(60 * v1); g = r; bl = 190 + (int)(55 * v2); break;
    case KILN_PAL_RED: r = 200 + (int)(55 * v1); g = 50 + (int)(80 * v1); bl = g; break;
    case KILN_PAL_GREEN: g = 200 + (int)(55 * v1); r = 50 + (int)(60 * v1); bl = r; break;
    case KILN_PAL_BLUE: bl = 205 + (int)(50 * v1); r = 80 + (int)(60 * v1); g = r; break;
    case KILN_PAL_AQUA: r = 50 + (int)(60 * v1); g = 165 + (int)(55 * v1); bl = g; break;
    case KILN_PAL_YELLOW: r = 175 + (int)(55 * v1); g = r; bl = 50 + (int)(20 * v1); break;
    case KILN_PAL_PURPLE: r = 190 + (int)(65 * v1); g = 80 + (int)(60 * v1); bl = r; break;
    case KILN_PAL_ORANGE: r = 190 + (int)(65 * v1); g = 90 + (int)(65 * v1); bl = 0; break;
    default: break;
    }
    kiln_buf_printf(b, "rgb(%d,%d,%d)", r, g, bl);
}

void kiln_color_diff(kiln_buf_t *b, double delta, double max_abs)
{
    /* flamegraph.pl's color_scale: white when unchanged, else red (grew)
     * or blue (shrank) deepening with |delta| / max. */
    int r = 255, g = 255, bl = 255;
    if (max_abs <= 0)
        max_abs = 1;
    if (delta > 0) {
        g = bl = (int)(210 * (max_abs - delta) / max_abs);
    } else if (delta < 0) {
        r = g = (int)(210 * (max_abs + delta) / max_abs);
    }
    kiln_buf_printf(b, "rgb(%d,%d,%d)", r, g, bl);
}

size_t kiln_color_strip(const char *name, size_t len)
{
    if (len >= 4 && name[len - 4] == '_' && name[len - 3] == '[' && name[len - 1] == ']' &&
        strchr("kwij", name[len - 2]))
        return len - 4;
    return len;
}
