/* profile.c — the profile trie every view is drawn from: one node per frame
 * under its parent, with self counts while parsing, totals after. Built while the
 * folded parser streams; child lookup goes through one hash table keyed by
 * (parent, name id), so a line costs one probe per frame. */
#include "kiln.h"

#include <stdlib.h>
#include <string.h>

static uint32_t kiln_profile_slot_hash(uint32_t parent, uint32_t name)
{
    uint64_t k = ((uint64_t)parent << 32 | name) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(k >> 32) ^ (uint32_t)k;
}

static uint32_t kiln_profile_new_node(kiln_profile_t *p, uint32_t parent, uint32_t name)
{
    if (p->count == UINT32_MAX - 1)
        kiln_util_die("too many frames in the profile");
    if (p->count == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 4096;
        p->nodes = kiln_util_xrealloc(p->nodes, (size_t)p->cap * sizeof *p->nodes);
        if (p->delta)
            p->delta = kiln_util_xrealloc(p->delta, (size_t)p->cap * sizeof *p->delta);
        if (p->start)
            p->start = kiln_util_xrealloc(p->start, (size_t)p->cap * sizeof *p->start);
    }
    uint32_t id = p->count++;
    kiln_node_t *n = &p->nodes[id];
    memset(n, 0, sizeof *n);
    n->name = name;
    n->parent = parent;
    n->child = KILN_NONE;
    n->sibling = KILN_NONE;
    if (p->delta)
        p->delta[id] = 0;
    if (p->start)
        p->start[id] = p->cursor;
    if (parent != KILN_NONE) {
        n->sibling = p->nodes[parent].child;
        p->nodes[parent].child = id;
    }
    return id;
}

double *kiln_profile_starts(kiln_profile_t *p)
{
    if (!p->start)
        p->start = kiln_util_xcalloc(p->cap, sizeof *p->start);
    return p->start;
}

void kiln_profile_init(kiln_profile_t *p, bool flamechart)
{
    memset(p, 0, sizeof *p);
    kiln_names_init(&p->names);
    p->flamechart = flamechart;
    p->mask = 4095;
    p->slots = kiln_util_xcalloc(p->mask + 1, sizeof *p->slots);
    kiln_profile_new_node(p, KILN_NONE, kiln_names_intern(&p->names, "all", 3));
    if (flamechart)
        kiln_profile_starts(p); /* times are taken as frames are created */
}

void kiln_profile_free(kiln_profile_t *p)
{
    kiln_names_free(&p->names);
    free(p->nodes);
    free(p->slots);
    free(p->delta);
    free(p->start);
    free(p->where);
    for (size_t i = 0; i < p->nstacks; i++)
        kiln_stacks_free(p->stacks[i]);
    free(p->stacks);
    memset(p, 0, sizeof *p);
}

static void kiln_profile_grow_slots(kiln_profile_t *p)
{
    uint32_t mask = p->mask * 2 + 1;
    uint32_t *slots = kiln_util_xcalloc((size_t)mask + 1, sizeof *slots);
    for (uint32_t id = 1; id < p->count; id++) {
        uint32_t i = kiln_profile_slot_hash(p->nodes[id].parent, p->nodes[id].name) & mask;
        while (slots[i])
            i = (i + 1) & mask;
        slots[i] = id + 1;
    }
    free(p->slots);
    p->slots = slots;
    p->mask = mask;
}

uint32_t kiln_profile_child(kiln_profile_t *p, uint32_t parent, uint32_t name)
{
    if (p->flamechart) {
        /* A flame chart keeps time order: only the latest child can be
         * extended, anything else starts a new frame. */
        uint32_t last = p->nodes[parent].child;
        if (last != KILN_NONE && p->nodes[last].name == name)
            return last;
        return kiln_profile_new_node(p, parent, name);
    }
    uint32_t i = kiln_profile_slot_hash(parent, name) & p->mask;
    /* Grown before 3/4 full: the probe meets an empty slot within mask + 1
     * steps (checked, as in names.c). */
    uint32_t probes = 0;
    for (uint32_t id; (id = p->slots[i]) != 0; i = (i + 1) & p->mask) {
        const kiln_node_t *n = &p->nodes[id - 1];
        if (n->parent == parent && n->name == name)
            return id - 1;
        if (++probes > p->mask)
            kiln_util_die("internal error: frame table full");
    }
    uint32_t id = kiln_profile_new_node(p, parent, name);
    p->slots[i] = id + 1;
    if ((uint64_t)p->count * 4 > (uint64_t)(p->mask + 1) * 3)
        kiln_profile_grow_slots(p);
    return id;
}

int kiln_profile_add(kiln_profile_t *p, uint32_t leaf, kiln_count_t value, double delta)
{
    if (__builtin_add_overflow(p->nodes[leaf].self, value, &p->nodes[leaf].self))
        return -1;
    if (delta != 0) {
        if (!p->delta)
            p->delta = kiln_util_xcalloc(p->cap, sizeof *p->delta);
        p->delta[leaf] += delta;
    }
    p->cursor += (double)value;
    return 0;
}

int kiln_profile_to_fractions(kiln_profile_t *p)
{
    if (p->scale)
        return 0;
    for (uint32_t i = 0; i < p->count; i++) {
        kiln_node_t *n = &p->nodes[i];
        if (__builtin_mul_overflow(n->self, KILN_COUNT_FRAC_UNIT, &n->self) ||
            __builtin_mul_overflow(n->total, KILN_COUNT_FRAC_UNIT, &n->total))
            return -1;
        if (p->delta)
            p->delta[i] *= KILN_COUNT_FRAC_UNIT;
        if (p->start)
            p->start[i] *= KILN_COUNT_FRAC_UNIT;
    }
    p->cursor *= KILN_COUNT_FRAC_UNIT;
    p->scale = KILN_COUNT_FRAC_DIGITS;
    return 0;
}

int kiln_profile_rescale(const kiln_profile_t *p, kiln_count_t *v, uint32_t n, unsigned from)
{
    if (from == p->scale)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (__builtin_mul_overflow(v[i], KILN_COUNT_FRAC_UNIT, &v[i]))
            return -1;
    return 0;
}

int kiln_profile_finish(kiln_profile_t *p)
{
    for (uint32_t i = 0; i < p->count; i++)
        p->nodes[i].total = p->nodes[i].self;
    int rc = 0;
    for (uint32_t i = p->count; i-- > 1;) {
        kiln_count_t *t = &p->nodes[p->nodes[i].parent].total;
        if (__builtin_add_overflow(*t, p->nodes[i].total, t)) {
            *t = UINT64_MAX;
            rc = -1;
        }
    }
    if (p->delta && !p->delta_summed) {
        for (uint32_t i = p->count; i-- > 1;)
            p->delta[p->nodes[i].parent] += p->delta[i];
        p->delta_summed = true;
    }
    return rc;
}

/* Appends V with a comma every three digits. */
static void kiln_profile_digits(kiln_buf_t *b, uint64_t v, bool commas)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    for (int i = 0; i < n; i++) {
        kiln_buf_addc(b, digits[i]);
        int left = n - i - 1;
        if (commas && left > 0 && left % 3 == 0)
            kiln_buf_addc(b, ',');
    }
}

void kiln_profile_fmt(kiln_buf_t *b, const kiln_profile_t *p, kiln_count_t v, bool commas)
{
    if (!p->scale || v % KILN_COUNT_FRAC_UNIT == 0) {
        kiln_profile_digits(b, p->scale ? v / KILN_COUNT_FRAC_UNIT : v, commas);
        return;
    }
    /* Two decimals, rounded half up, as "%.2f" would (without commas,
     * like flamegraph.pl's fractional counts). */
    uint64_t whole = v / KILN_COUNT_FRAC_UNIT;
    uint64_t cents = (v % KILN_COUNT_FRAC_UNIT + KILN_COUNT_FRAC_UNIT / 200) / (KILN_COUNT_FRAC_UNIT / 100);
    if (cents == 100) {
        whole++;
        cents = 0;
    }
    kiln_profile_digits(b, whole, false);
    kiln_buf_printf(b, ".%02u", (unsigned)cents);
}

static size_t kiln_profile_collect(const kiln_profile_t *p, uint32_t node, uint32_t **out,
                                   size_t *out_cap)
{
    size_t n = 0;
    for (uint32_t c = p->nodes[node].child; c != KILN_NONE; c = p->nodes[c].sibling) {
        if (n == *out_cap) {
            *out_cap = *out_cap ? *out_cap * 2 : 64;
            *out = kiln_util_xrealloc(*out, *out_cap * sizeof **out);
        }
        (*out)[n++] = c;
    }
    return n;
}

static int kiln_profile_cmp_name(const void *a, const void *b, void *ctx)
{
    const kiln_profile_t *p = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = kiln_names_cmp(&p->names, p->nodes[x].name, p->nodes[y].name);
    return c ? c : (x < y ? -1 : x > y);
}

static int kiln_profile_cmp_weight(const void *a, const void *b, void *ctx)
{
    const kiln_profile_t *p = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    kiln_count_t tx = p->nodes[x].total, ty = p->nodes[y].total;
    if (tx != ty)
        return tx > ty ? -1 : 1;
    return kiln_profile_cmp_name(a, b, ctx);
}

size_t kiln_profile_children(const kiln_profile_t *p, uint32_t node, uint32_t **out,
                             size_t *out_cap)
{
    size_t n = kiln_profile_collect(p, node, out, out_cap);
    if (p->flamechart) {
        for (size_t i = 0; i < n / 2; i++) {
            uint32_t t = (*out)[i];
            (*out)[i] = (*out)[n - 1 - i];
            (*out)[n - 1 - i] = t;
        }
    } else if (n > 1) {
        qsort_r(*out, n, sizeof **out, kiln_profile_cmp_name, (void *)p);
    }
    return n;
}

size_t kiln_profile_children_by_weight(const kiln_profile_t *p, uint32_t node,
                                       uint32_t **out, size_t *out_cap)
{
    size_t n = kiln_profile_collect(p, node, out, out_cap);
    if (n > 1)
        qsort_r(*out, n, sizeof **out, kiln_profile_cmp_weight, (void *)p);
    return n;
}

void kiln_walk_init(kiln_walk_t *w, const kiln_profile_t *p)
{
    memset(w, 0, sizeof *w);
    w->p = p;
    w->cap = 1024;
    w->todo = kiln_util_xmalloc(w->cap * sizeof *w->todo);
    w->todo[w->top++] = 0;
}

/* Pre-order with an explicit stack: a node's entry is node << 32 | depth, and
 * its children are pushed in reverse so they come out in drawing order. */
bool kiln_walk_next(kiln_walk_t *w, uint32_t *node, uint32_t *depth)
{
    if (w->top == 0)
        return false;
    uint64_t e = w->todo[--w->top];
    uint32_t id = (uint32_t)(e >> 32), d = (uint32_t)e;
    if (d > 0) {
        if (d > w->path_cap) {
            w->path_cap = (size_t)d * 2;
            w->path = kiln_util_xrealloc(w->path, w->path_cap * sizeof *w->path);
        }
        w->path[d - 1] = id;
    }
    size_t k = kiln_profile_children(w->p, id, &w->kids, &w->kids_cap);
    if (w->top + k > w->cap) {
        while (w->top + k > w->cap)
            w->cap *= 2;
        w->todo = kiln_util_xrealloc(w->todo, w->cap * sizeof *w->todo);
    }
    for (size_t i = k; i-- > 0;)
        w->todo[w->top++] = (uint64_t)w->kids[i] << 32 | (d + 1);
    *node = id;
    *depth = d;
    return true;
}

void kiln_walk_free(kiln_walk_t *w)
{
    free(w->todo);
    free(w->path);
    free(w->kids);
    memset(w, 0, sizeof *w);
}

kiln_count_t *kiln_profile_take_self(kiln_profile_t *p, uint32_t *count)
{
    kiln_count_t *self = kiln_util_xmalloc((size_t)p->count * sizeof *self);
    for (uint32_t i = 0; i < p->count; i++) {
        self[i] = p->nodes[i].self;
        p->nodes[i].self = p->nodes[i].total = 0;
    }
    *count = p->count;
    return self;
}
