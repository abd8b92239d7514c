/* names.c — hash-consed frame names for the offline tool. Every distinct
 * frame string is stored once in an arena of large chunks, and known by a
 * 32-bit id from then on: the trie, the renderers and the converters all
 * work on ids, so memory follows the number of distinct names, not the
 * size of the input. */
#include "kiln.h"

#include <stdlib.h>
#include <string.h>

#define KILN_NAMES_CHUNK (1u << 20)

/* A word-at-a-time multiplicative hash: names are often long C++ symbols,
 * and the parser hashes every frame of every line. */
static uint32_t kiln_names_hash(const char *s, size_t len)
{
    uint64_t h = 0x243f6a8885a308d3ull ^ (len * 0x9e3779b97f4a7c15ull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
        s += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, len);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 29;
    return (uint32_t)h;
}

void kiln_names_init(kiln_names_t *t)
{
    memset(t, 0, sizeof *t);
    t->mask = 1023;
    t->slots = kiln_util_xcalloc(t->mask + 1, sizeof *t->slots);
}

void kiln_names_free(kiln_names_t *t)
{
    for (size_t i = 0; i < t->nchunks; i++)
        free(t->chunks[i]);
    free(t->chunks);
    free(t->names);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

static const char *kiln_names_store(kiln_names_t *t, const char *s, size_t len)
{
    if (t->chunk_used + len + 1 > t->chunk_cap) {
        size_t cap = len + 1 > KILN_NAMES_CHUNK ? len + 1 : KILN_NAMES_CHUNK;
        t->chunks = kiln_util_xrealloc(t->chunks, (t->nchunks + 1) * sizeof *t->chunks);
        t->chunk = kiln_util_xmalloc(cap);
        t->chunks[t->nchunks++] = t->chunk;
        t->chunk_cap = cap;
        t->chunk_used = 0;
    }
    char *d = t->chunk + t->chunk_used;
    memcpy(d, s, len);
    d[len] = '\0';
    t->chunk_used += len + 1;
    return d;
}

static void kiln_names_grow(kiln_names_t *t)
{
    uint32_t mask = t->mask * 2 + 1;
    uint32_t *slots = kiln_util_xcalloc((size_t)mask + 1, sizeof *slots);
    for (uint32_t id = 0; id < t->count; id++) {
        uint32_t i = t->names[id].hash & mask;
        while (slots[i])
            i = (i + 1) & mask;
        slots[i] = id + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->mask = mask;
}

uint32_t kiln_names_intern(kiln_names_t *t, const char *s, size_t len)
{
    if (len > UINT32_MAX - 1)
        kiln_util_die("frame name too long (%zu bytes)", len);
    uint32_t h = kiln_names_hash(s, len);
    uint32_t i = h & t->mask;
    /* The table is grown before it is 3/4 full, so an empty slot is always
     * there and the probe ends within mask + 1 steps (the bound is checked
     * all the same: a broken invariant must fail, not spin). */
    uint32_t probes = 0;
    for (uint32_t id; (id = t->slots[i]) != 0; i = (i + 1) & t->mask) {
        const kiln_name_t *n = &t->names[id - 1];
        if (n->hash == h && n->len == len && memcmp(n->str, s, len) == 0)
            return id - 1;
        if (++probes > t->mask)
            kiln_util_die("internal error: name table full");
    }
    if (t->count == UINT32_MAX - 1)
        kiln_util_die("too many distinct frame names");
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->names = kiln_util_xrealloc(t->names, (size_t)t->cap * sizeof *t->names);
    }
    uint32_t id = t->count++;
    t->names[id].str = kiln_names_store(t, s, len);
    t->names[id].len = (uint32_t)len;
    t->names[id].hash = h;
    t->slots[i] = id + 1;
    if ((uint64_t)t->count * 4 > (uint64_t)(t->mask + 1) * 3)
        kiln_names_grow(t);
    return id;
}

int kiln_names_cmp(const kiln_names_t *t, uint32_t a, uint32_t b)
{
    const kiln_name_t *x = &t->names[a], *y = &t->names[b];
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, n);
    if (c)
        return c < 0 ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len ? 1 : 0;
}
