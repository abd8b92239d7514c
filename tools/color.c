/* color.c — frame colours for the SVG: flamegraph.pl's named palettes (each a
 * base hue varied by up to three numbers in [0,1)), a stable per-name choice
 * for --hash, a fixed-seed sequence otherwise (so output never depends on the
 * run), and the red/blue scale of differential graphs. */
#include "kiln.h"

#include <math.h>
#include <string.h>

static const char *const kiln_color_names[] = {
    "hot", "mem", "io", "red", "green", "blue", "aqua", "yellow", "purple", "orange",
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
    return "hot, mem, io, red, green, blue, aqua, yellow, purple, orange";
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

/* Names that share a beginning get similar colours: the first characters
 * weigh most, as a reader scanning a graph groups frames by prefix. */
static double kiln_color_name_weight(const char *s, size_t len, bool from_end)
{
    double v = 0, max = 0, w = 1;
    for (size_t i = 0; i < len && i < 8; i++) {
        unsigned char c = (unsigned char)(from_end ? s[len - 1 - i] : s[i]);
        v += w * (double)(kiln_color_mix(c + 1 + i) % 1000) / 1000.0;
        max += w;
        w *= 0.6;
    }
    return max > 0 ? v / max : 0.5;
}

void kiln_color_frame(kiln_buf_t *b, kiln_palette_t pal, bool hash, const char *name,
                      size_t len, uint64_t *seed)
{
    double v1, v2, v3;
    if (hash) {
        v1 = kiln_color_name_weight(name, len, false);
        v2 = v3 = kiln_color_name_weight(name, len, true);
    } else {
        uint64_t r = kiln_color_mix(++*seed);
        v1 = (double)(r & 0xffff) / 65536.0;
        v2 = (double)((r >> 16) & 0xffff) / 65536.0;
        v3 = (double)((r >> 32) & 0xffff) / 65536.0;
    }
    int r = 0, g = 0, bl = 0;
    switch (pal) {
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
    }
    kiln_buf_printf(b, "rgb(%d,%d,%d)", r, g, bl);
}

void kiln_color_diff(kiln_buf_t *b, double delta, double max_abs)
{
    if (delta == 0 || max_abs <= 0) {
        kiln_buf_adds(b, "rgb(250,250,250)");
        return;
    }
    double ratio = fabs(delta) / max_abs;
    if (ratio > 1)
        ratio = 1;
    int fade = (int)lround(210 * (1 - ratio));
    if (delta > 0)
        kiln_buf_printf(b, "rgb(255,%d,%d)", fade, fade);
    else
        kiln_buf_printf(b, "rgb(%d,%d,255)", fade, fade);
}
