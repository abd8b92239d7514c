/* escape.c — turning arbitrary frame bytes into text that XML and JSON
 * accept. Folded files come from many tools and may hold markup characters,
 * control bytes or broken UTF-8; the renderers must stay well-formed, so each
 * name is decoded here, repaired to U+FFFD where needed, and escaped. */
#include "kiln.h"

#include <string.h>

#define KILN_REPLACEMENT "\xef\xbf\xbd" /* U+FFFD */

/* Decodes one UTF-8 sequence at S. Returns its length and sets *cp, or 0
 * for an invalid sequence (overlong, surrogate, past U+10FFFF, truncated). */
static size_t kiln_escape_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if ((c & 0xe0) == 0xc0) {
        n = 2; v = c & 0x1f; min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3; v = c & 0x0f; min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4; v = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return n;
}

/* Characters XML 1.0 does not allow in a document, and the C0/C1 controls
 * nobody wants to see in a label. */
static bool kiln_escape_unwanted(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0xfffe ||
           cp == 0xffff;
}

size_t kiln_escape_chars(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t chars = 0;
    for (size_t i = 0; i < len; chars++) {
        uint32_t cp;
        size_t n = kiln_escape_decode(u + i, len - i, &cp);
        i += n ? n : 1;
    }
    return chars;
}

void kiln_escape_xml(kiln_buf_t *b, const char *s, size_t len, size_t max_chars)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t limit = SIZE_MAX;
    if (max_chars > 0 && kiln_escape_chars(s, len) > max_chars)
        limit = max_chars >= 2 ? max_chars - 2 : 0;
    size_t chars = 0;
    kiln_buf_reserve(b, len + 16);
    for (size_t i = 0; i < len && chars < limit; chars++) {
        uint32_t cp;
        size_t n = kiln_escape_decode(u + i, len - i, &cp);
        if (n == 0 || kiln_escape_unwanted(cp)) {
            kiln_buf_add(b, KILN_REPLACEMENT, 3);
            i += n ? n : 1;
            continue;
        }
        switch (cp) {
        case '<': kiln_buf_add(b, "&lt;", 4); break;
        case '>': kiln_buf_add(b, "&gt;", 4); break;
        case '&': kiln_buf_add(b, "&amp;", 5); break;
        case '"': kiln_buf_add(b, "&quot;", 6); break;
        case '\'': kiln_buf_add(b, "&apos;", 6); break;
        default: kiln_buf_add(b, s + i, n); break;
        }
        i += n;
    }
    if (limit != SIZE_MAX)
        kiln_buf_add(b, "..", 2);
}

void kiln_escape_json(kiln_buf_t *b, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    kiln_buf_reserve(b, len + 8);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = kiln_escape_decode(u + i, len - i, &cp);
        if (n == 0) {
            kiln_buf_add(b, KILN_REPLACEMENT, 3);
            i++;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            kiln_buf_addc(b, '\\');
            kiln_buf_addc(b, (char)cp);
        } else if (cp < 0x20 || cp == 0x7f || cp == 0x2028 || cp == 0x2029) {
            kiln_buf_printf(b, "\\u%04x", (unsigned)cp);
        } else {
            kiln_buf_add(b, s + i, n);
        }
        i += n;
    }
}

void kiln_escape_term(kiln_buf_t *b, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    kiln_buf_reserve(b, len);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = kiln_escape_decode(u + i, len - i, &cp);
        /* C0, DEL and C1 (U+0080-U+009F, and the bare bytes 0x80-0x9f a
         * terminal may take as C1) start escape sequences: never raw. */
        if (n == 0 || cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
            kiln_buf_addc(b, '?');
            i += n ? n : 1;
            continue;
        }
        kiln_buf_add(b, s + i, n);
        i += n;
    }
}

void kiln_escape_bytes(kiln_buf_t *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            kiln_buf_addc(b, (char)c);
        else
            kiln_buf_printf(b, "\\x%02x", c);
    }
}
