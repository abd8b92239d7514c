/* explain.c — `kiln explain`: the flame-graph reading guide applied to a
 * profile. Shapes (plateaus, dispatchers with many small calls, similar
 * peaks, deep narrow spikes, recursion stairs) and culprit families
 * (allocation, strings, locks, hashing, serialization, interpreters, C++
 * runtime costs, kernel time by system call; allocating and leaking sites
 * in heap profiles), each ranked by its share of the total with where it is
 * called from and the usual fix (names shown without perf's annotations).
 * Also feeds the top of `kiln report`. */
#include "kiln.h"

#include <getopt.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char kiln_explain_usage[] =
    "usage: kiln explain [-n N] [--strict] FILE|DIR...\n"
    "\n"
    "Reads a profile (a folded FILE, or every kind of each process's run in a\n"
    "DIR, as 'kiln report' does) and says what its shape means, ranked by\n"
    "share: plateaus (a function's own code), dispatchers (many small calls),\n"
    "similar peaks, deep narrow spikes, recursion; and the usual culprits:\n"
    "allocation, string work, lock contention, hashing, serialization,\n"
    "interpreter loops, C++ runtime costs, kernel time by system call; in\n"
    "allocation and leak profiles the top sites. Each finding gives its share\n"
    "of the total, where it is called from and the usual fix.\n"
    "\n"
    "  -n, --findings N   at most N findings per kind (10)\n"
    "  --strict           a malformed input line is an error, not a warning\n"
    "  -h, --help         this help\n";

/* Thresholds, as shares of the total. */
#define KILN_EXPLAIN_PLATEAU 0.10  /* self share of a plateau */
#define KILN_EXPLAIN_FAMILY 0.02   /* share worth a family finding */
#define KILN_EXPLAIN_BASE 0.20     /* a dispatcher's total */
#define KILN_EXPLAIN_PEAK 0.05     /* each of several similar peaks */
#define KILN_EXPLAIN_SITE 0.01     /* an allocating site */

typedef struct kiln_explain_family_s {
    const char *name, *pattern, *advice;
} kiln_explain_family_t;

static const kiln_explain_family_t kiln_explain_families[] = {
    {"memory allocation",
     "^(malloc|free|calloc|realloc|cfree|valloc|pvalloc|memalign|posix_memalign|aligned_alloc|"
     "reallocarray|_int_malloc|_int_free|_int_realloc|_int_memalign|malloc_consolidate|"
     "sysmalloc|tcache_.*|__libc_(malloc|free|calloc|realloc)|operator new.*|operator delete.*|"
     "je_.*|tc_.*|mi_.*|tcmalloc::.*|__gnu_cxx::new_allocator.*|std::allocator.*)( |\\(|$)",
     "pre-allocate, reuse buffers, use a pool or arena, reserve() containers"},
    {"string work",
     "^(__)?(mem(cpy|move|cmp)|str(len|nlen|cmp|ncmp|casecmp|cpy|ncpy|cat|ncat|chr|rchr|str|dup|"
     "ndup|tok|coll))([_.].*)?$|basic_string|std::string|std::__cxx11::basic_string|"
     "char_traits",
     "build strings once (a builder or reserve()), avoid repeated concatenation and "
     "strlen on the same string, pass lengths along"},
    {"lock contention",
     "^(pthread_mutex_(lock|unlock|trylock|timedlock)|__pthread_mutex_(un)?lock.*|"
     "__lll_lock_wait.*|__lll_lock_wake.*|lll_lock_wait|futex.*|__futex.*|do_futex.*|"
     "pthread_rwlock_.*|pthread_spin_.*|pthread_cond_(wait|timedwait|signal|broadcast)|"
     "__pthread_cond_.*|sem_(wait|timedwait|post)|std::mutex::.*|std::unique_lock.*|"
     "std::lock_guard.*|std::condition_variable.*|__GI___lll_lock_wait.*)( |\\(|$|_\\[k\\])",
     "shorten critical sections, partition the data (one lock per shard), use per-thread "
     "state or lock-free counters"},
    {"hashing",
     "std::hash|std::_Hashtable|_Hash_bytes|std::unordered_(map|set)|siphash|SipHash|"
     "murmur|Murmur|xxhash|XXH|city_?hash|CityHash|fnv|crc32|hash_bytes",
     "use a faster hasher, pre-size the table (reserve), avoid re-hashing the same key"},
    {"serialization",
     "json|JSON|Json|protobuf|google::protobuf|serializ|Serializ|deserializ|msgpack|"
     "rapidjson|nlohmann|yaml|xml|XML|cbor|flatbuffers|capnp",
     "use a binary format, serialize once and cache, keep encoding off the hot path"},
    {"interpreter loop",
     "^_PyEval_EvalFrameDefault|^PyEval_|^luaV_execute|^lua_|^rb_vm_|^vm_exec|"
     "JS_Interpret|Interpreter::|^ExecuteStatement",
     "the time is in interpreted code: profile at the interpreter's level, move the hot "
     "loop to native code, or cache results"},
    {"C++ runtime",
     "__dynamic_cast|__cxa_throw|__cxa_begin_catch|_Unwind_|__gxx_personality|"
     "std::shared_ptr|std::__shared_ptr|_Sp_counted_base|std::__shared_count|"
     "__cxxabiv1::|std::type_info|std::function<|_M_invoke",
     "avoid dynamic_cast on the hot path (virtual calls or variants), pass shared_ptr by "
     "reference and move it, do not use exceptions for control flow"},
    /* The runtime's own time: "[kiln]" (start, dumps) and the marker
     * leaves of kiln_contract.h ("[kiln: allocation tracking]"). Said as
     * such, not as a plateau of the program. */
    {"kiln's own time",
     "^\\[kiln(: [^]]*)?\\]$",
     "the profiler's cost, not the program's: sampled allocations (KILN_ALLOC_SAMPLE, e.g. "
     "524288) instead of every one, a lower KILN_HZ or fewer interval dumps make it smaller"},
};
#define KILN_EXPLAIN_NFAMILIES (sizeof kiln_explain_families / sizeof kiln_explain_families[0])

static const char kiln_explain_alloc_re[] =
    "^(malloc|free|calloc|realloc|reallocarray|valloc|pvalloc|memalign|posix_memalign|"
    "aligned_alloc|operator new.*|operator delete.*|__libc_.*|_int_.*|strdup|strndup|"
    "__strdup|__GI_.*|std::allocator.*|__gnu_cxx::new_allocator.*|\\[kiln: .*\\])( |\\(|$)";

/* Lock profiles: the marker and the lock function below the waiting site. */
static const char kiln_explain_lock_re[] =
    "^(\\[lock: .*\\]|pthread_mutex_(timed|clock)?lock|pthread_rwlock_(timed|clock)?(rd|wr)lock|"
    "pthread_cond_(timed|clock)?wait|sem_(timed|clock)?wait|__gthread_.*|std::__condvar::wait.*|"
    "std::condition_variable::wait.*|std::mutex::lock.*|std::shared_mutex::lock.*|"
    "std::shared_mutex::lock_shared.*)( |\\(|$)";

typedef struct kiln_explain_ctx_s {
    const kiln_profile_t *p;
    uint32_t skip;
    double all;
    uint32_t *depth;
    kiln_finding_t *out;
    size_t n, cap;
} kiln_explain_ctx_t;

static const char *kiln_explain_str(const kiln_profile_t *p, uint32_t node, kiln_buf_t *b)
{
    const kiln_name_t *nm = kiln_profile_name(p, node);
    b->len = 0;
    kiln_buf_add(b, nm->str, kiln_color_strip(nm->str, nm->len));
    return b->data;
}

static kiln_finding_t *kiln_explain_add(kiln_explain_ctx_t *c, double share, const char *what,
                                        const char *advice)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->out = kiln_util_xrealloc(c->out, c->cap * sizeof *c->out);
    }
    kiln_finding_t *f = &c->out[c->n++];
    memset(f, 0, sizeof *f);
    f->share = share;
    f->what = what;
    f->advice = advice;
    return f;
}

static char *kiln_explain_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *kiln_explain_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        kiln_util_die("out of memory");
    va_end(ap);
    return s;
}

static char *kiln_explain_name(const kiln_profile_t *p, uint32_t node)
{
    const kiln_name_t *nm = kiln_profile_name(p, node);
    return strndup(nm->str, kiln_color_strip(nm->str, nm->len));
}

/* "called from A (60%), B (30%)": the callers (nearest ancestor frames for
 * which SKIPPED is false) of the HITS nodes, weighted by WEIGHT. */
static char *kiln_explain_where(const kiln_explain_ctx_t *c, const uint32_t *hits,
                                const double *weight, size_t nhits, const bool *skipped_name)
{
    const kiln_profile_t *p = c->p;
    double *by = kiln_util_xcalloc(p->names.count, sizeof *by), sum = 0;
    for (size_t i = 0; i < nhits; i++) {
        uint32_t a = p->nodes[hits[i]].parent;
        while (a != 0 && c->depth[a] > c->skip && skipped_name && skipped_name[p->nodes[a].name])
            a = p->nodes[a].parent;
        sum += weight[i];
        if (a != 0 && c->depth[a] > c->skip)
            by[p->nodes[a].name] += weight[i];
    }
    kiln_buf_t b = {0};
    for (int k = 0; k < 3; k++) {
        uint32_t best = KILN_NONE;
        for (uint32_t n = 0; n < p->names.count; n++)
            if (by[n] > 0 && (best == KILN_NONE || by[n] > by[best]))
                best = n;
        if (best == KILN_NONE)
            break;
        const kiln_name_t *nm = &p->names.names[best];
        kiln_buf_printf(&b, "%s%.*s (%.0f%%)", k ? ", " : "called from ",
                        (int)kiln_color_strip(nm->str, nm->len), nm->str,
                        100 * by[best] / sum);
        by[best] = 0;
    }
    free(by);
    return b.data;
}

/* Per-name self and total (a stack counted once per name), frames below
 * the skipped levels only. */
static void kiln_explain_rows(const kiln_explain_ctx_t *c, double *self, double *total)
{
    const kiln_profile_t *p = c->p;
    uint32_t *onpath = kiln_util_xcalloc(p->names.count, sizeof *onpath);
    size_t top = 0, cap = 1024;
    uint64_t *stack = kiln_util_xmalloc(cap * sizeof *stack);
    stack[top++] = 0;
    while (top) {
        uint64_t e = stack[--top];
        uint32_t id = (uint32_t)(e >> 1);
        const kiln_node_t *n = &p->nodes[id];
        bool counted = c->depth[id] > c->skip;
        if (e & 1) {
            onpath[n->name]--;
            continue;
        }
        if (counted) {
            if (onpath[n->name]++ == 0)
                total[n->name] += n->total;
            self[n->name] += n->self;
        }
        size_t need = top + 1;
        for (uint32_t ch = n->child; ch != KILN_NONE; ch = p->nodes[ch].sibling)
            need++;
        while (need > cap)
            stack = kiln_util_xrealloc(stack, (cap *= 2) * sizeof *stack);
        if (counted)
            stack[top++] = e | 1;
        for (uint32_t ch = n->child; ch != KILN_NONE; ch = p->nodes[ch].sibling)
            stack[top++] = (uint64_t)ch << 1;
    }
    free(stack);
    free(onpath);
}

/* Nodes of names in MATCH with no ancestor of a matching name: their
 * totals add up to the share of stacks through the family. */
static size_t kiln_explain_outermost(const kiln_explain_ctx_t *c, const bool *match,
                                     uint32_t **hits, double **weight, double *share)
{
    const kiln_profile_t *p = c->p;
    bool *in = kiln_util_xcalloc(p->count, sizeof *in);
    size_t n = 0, cap = 0;
    *hits = NULL;
    *weight = NULL;
    *share = 0;
    for (uint32_t i = 1; i < p->count; i++) {
        bool m = c->depth[i] > c->skip && match[p->nodes[i].name];
        in[i] = in[p->nodes[i].parent] || m;
        if (m && !in[p->nodes[i].parent]) {
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                *hits = kiln_util_xrealloc(*hits, cap * sizeof **hits);
                *weight = kiln_util_xrealloc(*weight, cap * sizeof **weight);
            }
            (*hits)[n] = i;
            (*weight)[n++] = p->nodes[i].total;
            *share += p->nodes[i].total;
        }
    }
    free(in);
    *share /= c->all;
    return n;
}

static bool *kiln_explain_match(const kiln_profile_t *p, const char *pattern)
{
    regex_t re;
    bool *m = kiln_util_xcalloc(p->names.count, sizeof *m);
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return m;
    kiln_buf_t b = {0};
    for (uint32_t i = 0; i < p->names.count; i++) {
        b.len = 0;
        kiln_buf_add(&b, p->names.names[i].str, p->names.names[i].len);
        m[i] = regexec(&re, b.data, 0, NULL, 0) == 0;
    }
    kiln_buf_free(&b);
    regfree(&re);
    return m;
}

/* Each family with its share; MEMBER collects the names of every family
 * found, so that plateaus do not repeat them. */
static void kiln_explain_families_find(kiln_explain_ctx_t *c, bool *member)
{
    for (size_t k = 0; k < KILN_EXPLAIN_NFAMILIES; k++) {
        const kiln_explain_family_t *fam = &kiln_explain_families[k];
        bool *m = kiln_explain_match(c->p, fam->pattern);
        uint32_t *hits;
        double *w, share;
        size_t n = kiln_explain_outermost(c, m, &hits, &w, &share);
        if (n && share >= KILN_EXPLAIN_FAMILY) {
            /* The family's heaviest member names the finding. */
            double *by = kiln_util_xcalloc(c->p->names.count, sizeof *by);
            for (size_t i = 0; i < n; i++)
                by[c->p->nodes[hits[i]].name] += w[i];
            uint32_t best = 0;
            for (uint32_t i = 0; i < c->p->names.count; i++)
                if (by[i] > by[best])
                    best = i;
            const kiln_name_t *nm = &c->p->names.names[best];
            kiln_finding_t *f = kiln_explain_add(c, share, "family", fam->advice);
            f->title = kiln_explain_printf("%s: %.1f%% of the total (mostly %.*s)", fam->name,
                                           100 * share, (int)kiln_color_strip(nm->str, nm->len), nm->str);
            f->where = kiln_explain_where(c, hits, w, n, m);
            f->frame = strndup(nm->str, kiln_color_strip(nm->str, nm->len));
            free(by);
            for (uint32_t i = 0; i < c->p->names.count; i++)
                member[i] = member[i] || m[i];
        }
        free(hits);
        free(w);
        free(m);
    }
}

/* Kernel time by system call: the frame right before "[kernel]" (the
 * syscall wrapper), or before the first "_[k]" frame. */
static void kiln_explain_kernel(kiln_explain_ctx_t *c)
{
    const kiln_profile_t *p = c->p;
    bool *m = kiln_util_xcalloc(p->names.count, sizeof *m);
    for (uint32_t i = 0; i < p->names.count; i++) {
        const kiln_name_t *nm = &p->names.names[i];
        m[i] = (nm->len == 8 && memcmp(nm->str, "[kernel]", 8) == 0) ||
               (nm->len > 4 && memcmp(nm->str + nm->len - 4, "_[k]", 4) == 0);
    }
    uint32_t *hits;
    double *w, share;
    size_t n = kiln_explain_outermost(c, m, &hits, &w, &share);
    if (n && share >= KILN_EXPLAIN_FAMILY) {
        double *by = kiln_util_xcalloc(p->names.count, sizeof *by);
        for (size_t i = 0; i < n; i++) {
            uint32_t a = p->nodes[hits[i]].parent;
            if (a != 0 && c->depth[a] > c->skip)
                by[p->nodes[a].name] += w[i];
        }
        kiln_buf_t b = {0};
        for (int k = 0; k < 3; k++) {
            uint32_t best = 0;
            for (uint32_t i = 1; i < p->names.count; i++)
                if (by[i] > by[best])
                    best = i;
            if (!(by[best] > 0))
                break;
            const kiln_name_t *nm = &p->names.names[best];
            kiln_buf_printf(&b, "%s%.*s %.1f%%", k ? ", " : "",
                            (int)kiln_color_strip(nm->str, nm->len), nm->str,
                            100 * by[best] / c->all);
            by[best] = 0;
        }
        kiln_finding_t *f = kiln_explain_add(
            c, share, "kernel",
            "fewer, larger system calls (buffering, batching), avoid polling; check whether "
            "the time is page faults (touching new memory) rather than calls");
        f->title = kiln_explain_printf("kernel time: %.1f%% of the total, by system call: %s",
                                       100 * share, b.data ? b.data : "?");
        f->frame = kiln_util_xstrdup("[kernel]");
        kiln_buf_free(&b);
        free(by);
    }
    free(hits);
    free(w);
    free(m);
}

/* Plateaus: a large self share. Members of a culprit family and kernel
 * frames are left to the family and kernel findings, which say more. */
static void kiln_explain_plateaus(kiln_explain_ctx_t *c, const double *self, const bool *family)
{
    const kiln_profile_t *p = c->p;
    bool *same = kiln_util_xcalloc(p->names.count, sizeof *same);
    for (uint32_t nmid = 0; nmid < p->names.count; nmid++) {
        double share = self[nmid] / c->all;
        if (share < KILN_EXPLAIN_PLATEAU || family[nmid])
            continue;
        const kiln_name_t *nm = &p->names.names[nmid];
        if ((nm->len == 8 && memcmp(nm->str, "[kernel]", 8) == 0) ||
            (nm->len > 4 && memcmp(nm->str + nm->len - 4, "_[k]", 4) == 0))
            continue;
        uint32_t *hits = NULL;
        double *w = NULL;
        size_t n = 0;
        for (uint32_t i = 1; i < p->count; i++) {
            if (p->nodes[i].name != nmid || p->nodes[i].self == 0 || c->depth[i] <= c->skip)
                continue;
            hits = kiln_util_xrealloc(hits, (n + 1) * sizeof *hits);
            w = kiln_util_xrealloc(w, (n + 1) * sizeof *w);
            hits[n] = i;
            w[n++] = p->nodes[i].self;
        }
        kiln_finding_t *f = kiln_explain_add(
            c, share, "plateau",
            "optimise this function: the time is in its own code (a better algorithm, fewer "
            "passes over the data, cache-friendlier layout)");
        f->title = kiln_explain_printf("plateau: %.*s spends %.1f%% of the total in its own code",
                                       (int)kiln_color_strip(nm->str, nm->len), nm->str, 100 * share);
        same[nmid] = true; /* a recursive function's callers are the outer ones */
        f->where = kiln_explain_where(c, hits, w, n, same);
        same[nmid] = false;
        f->frame = strndup(nm->str, kiln_color_strip(nm->str, nm->len));
        free(hits);
        free(w);
    }
    free(same);
}

/* Dispatchers (a wide frame whose time is spread over many small callees)
 * and similar peaks (a few callees of about the same width). */
static void kiln_explain_bases(kiln_explain_ctx_t *c)
{
    const kiln_profile_t *p = c->p;
    uint32_t *kids = NULL;
    size_t kcap = 0;
    bool *said = kiln_util_xcalloc(p->names.count, sizeof *said);
    for (uint32_t i = 1; i < p->count; i++) {
        const kiln_node_t *n = &p->nodes[i];
        if (c->depth[i] <= c->skip || n->total / c->all < KILN_EXPLAIN_BASE / 2)
            continue;
        size_t k = kiln_profile_children_by_weight(p, i, &kids, &kcap);
        if (k == 0)
            continue;
        double big = p->nodes[kids[0]].total;
        if (n->total / c->all >= KILN_EXPLAIN_BASE && k >= 8 && big < n->total / 4.0 &&
            n->self < n->total / 4.0 && !said[n->name]) {
            said[n->name] = true;
            kiln_finding_t *f = kiln_explain_add(
                c, n->total / c->all, "dispatcher",
                "many small calls under one dispatcher: inline the small callees, batch the "
                "work, or call less often");
            char *name = kiln_explain_name(p, i);
            f->title = kiln_explain_printf("wide base, narrow tops: %s (%.1f%%) spreads its time "
                                           "over %zu callees, none above %.1f%%",
                                           name, 100.0 * n->total / c->all, k,
                                           100 * big / c->all);
            f->frame = name;
            continue;
        }
        /* Peaks: at least three callees each above the threshold, the
         * smallest of them at least half the widest. */
        size_t m = 0;
        while (m < k && p->nodes[kids[m]].total / c->all >= KILN_EXPLAIN_PEAK &&
               (double)p->nodes[kids[m]].total * 3 >= big * 2)
            m++;
        if (m >= 3 && !said[n->name]) {
            said[n->name] = true;
            double sum = 0;
            kiln_buf_t b = {0}, nb = {0};
            for (size_t j = 0; j < m; j++) {
                sum += p->nodes[kids[j]].total;
                if (j < 4)
                    kiln_buf_printf(&b, "%s%s %.1f%%", j ? ", " : "",
                                    kiln_explain_str(p, kids[j], &nb),
                                    100.0 * p->nodes[kids[j]].total / c->all);
            }
            kiln_finding_t *f = kiln_explain_add(
                c, sum / c->all, "peaks",
                "several similar peaks: each is worth optimising, widest first (they often "
                "share a cause, e.g. the same data structure)");
            char *name = kiln_explain_name(p, i);
            f->title = kiln_explain_printf("%zu similar peaks under %s: %s%s", m, name, b.data,
                                           m > 4 ? ", ..." : "");
            f->frame = kiln_explain_name(p, kids[0]);
            free(name);
            kiln_buf_free(&b);
            kiln_buf_free(&nb);
        }
    }
    free(said);
    free(kids);
}

/* Deep narrow spikes: leaves far deeper than the profile's typical depth
 * with little weight; recursion stairs: a function on its own stack three
 * or more times in a row. */
static void kiln_explain_depths(kiln_explain_ctx_t *c)
{
    const kiln_profile_t *p = c->p;
    double sum = 0, weight = 0;
    uint32_t deepest = 0;
    for (uint32_t i = 1; i < p->count; i++) {
        if (p->nodes[i].self > 0) {
            sum += (double)c->depth[i] * p->nodes[i].self;
            weight += p->nodes[i].self;
        }
        if (c->depth[i] > c->depth[deepest])
            deepest = i;
    }
    double mean = weight > 0 ? sum / weight : 0;
    uint32_t dd = c->depth[deepest];
    if (deepest && dd >= 16 + c->skip && dd >= 2 * mean) {
        /* The spike starts where its path leaves the typical depth. */
        uint32_t a = deepest;
        while (c->depth[a] > (uint32_t)ceil(mean) && p->nodes[p->nodes[a].parent].parent != 0)
            a = p->nodes[a].parent;
        double share = p->nodes[a].total / c->all;
        if (share < 0.05) {
            kiln_finding_t *f = kiln_explain_add(
                c, share, "spike",
                "deep but narrow: usually harmless (deep call chains, callbacks, recursion "
                "with little work); look elsewhere first");
            char *name = kiln_explain_name(p, a);
            f->title = kiln_explain_printf("deep narrow spike: %u frames deep from %s, %.1f%% of "
                                           "the total (typical depth %.0f)",
                                           dd - c->skip, name, 100 * share, mean - c->skip);
            f->frame = name;
        }
    }
    /* Direct recursion: the outermost node of each run of 3+. */
    uint32_t *run = kiln_util_xcalloc(p->count, sizeof *run);
    bool *said = kiln_util_xcalloc(p->names.count, sizeof *said);
    double *share_by = kiln_util_xcalloc(p->names.count, sizeof *share_by);
    uint32_t *deep = kiln_util_xcalloc(p->names.count, sizeof *deep);
    for (uint32_t i = 1; i < p->count; i++) {
        uint32_t par = p->nodes[i].parent;
        run[i] = par && p->nodes[par].name == p->nodes[i].name ? run[par] + 1 : 1;
        if (run[i] > deep[p->nodes[i].name])
            deep[p->nodes[i].name] = run[i];
    }
    bool *in = kiln_util_xcalloc(p->count, sizeof *in);
    for (uint32_t i = 1; i < p->count; i++) {
        uint32_t nm = p->nodes[i].name, par = p->nodes[i].parent;
        bool starts = run[i] == 1 && deep[nm] >= 3 && c->depth[i] > c->skip;
        /* Only the outermost recursion of each name counts its total. */
        in[i] = in[par];
        if (starts && !in[par]) {
            uint32_t ch;
            for (ch = p->nodes[i].child; ch != KILN_NONE; ch = p->nodes[ch].sibling)
                if (p->nodes[ch].name == nm)
                    break;
            if (ch != KILN_NONE) {
                share_by[nm] += p->nodes[i].total;
                in[i] = true;
            }
        }
    }
    for (uint32_t nm = 0; nm < p->names.count; nm++) {
        if (deep[nm] < 3 || share_by[nm] / c->all < KILN_EXPLAIN_FAMILY || said[nm])
            continue;
        said[nm] = true;
        const kiln_name_t *n = &p->names.names[nm];
        kiln_finding_t *f = kiln_explain_add(
            c, share_by[nm] / c->all, "recursion",
            "recursion stairs: turn the recursion into iteration, or memoise repeated "
            "sub-problems");
        f->title = kiln_explain_printf("recursion: %.*s calls itself up to %u deep, %.1f%% of "
                                       "the total",
                                       (int)kiln_color_strip(n->str, n->len), n->str, deep[nm], 100 * share_by[nm] / c->all);
        f->frame = strndup(n->str, kiln_color_strip(n->str, n->len));
    }
    free(in);
    free(run);
    free(said);
    free(share_by);
    free(deep);
}

/* The five sites with the most of by[] (indexed by name), each a finding
 * with the places it is called from; by[] is used up. */
static void kiln_explain_top_sites(kiln_explain_ctx_t *c, double *by, const char *what, const char *advice)
{
    const kiln_profile_t *p = c->p;
    for (int k = 0; k < 5; k++) {
        uint32_t best = 0;
        for (uint32_t i = 1; i < p->names.count; i++)
            if (by[i] > by[best])
                best = i;
        if (!(by[best] > 0) || by[best] / c->all < KILN_EXPLAIN_SITE)
            break;
        const kiln_name_t *nm = &p->names.names[best];
        uint32_t *hits = NULL;
        double *w = NULL;
        size_t n = 0;
        for (uint32_t i = 1; i < p->count; i++) {
            if (p->nodes[i].name != best || c->depth[i] <= c->skip)
                continue;
            hits = kiln_util_xrealloc(hits, (n + 1) * sizeof *hits);
            w = kiln_util_xrealloc(w, (n + 1) * sizeof *w);
            hits[n] = i;
            w[n++] = p->nodes[i].total;
        }
        kiln_finding_t *f = kiln_explain_add(c, by[best] / c->all, "site", advice);
        f->title = kiln_explain_printf("%s: %.*s, %.1f%% of the total", what,
                                       (int)kiln_color_strip(nm->str, nm->len), nm->str,
                                       100 * by[best] / c->all);
        f->where = kiln_explain_where(c, hits, w, n, NULL);
        f->frame = strndup(nm->str, kiln_color_strip(nm->str, nm->len));
        free(hits);
        free(w);
        by[best] = 0;
    }
}

/* Heap profiles: the sites (first frame above the allocator) by share. */
static void kiln_explain_sites(kiln_explain_ctx_t *c, const char *kind)
{
    const kiln_profile_t *p = c->p;
    bool *alloc = kiln_explain_match(p, kiln_explain_alloc_re);
    double *by = kiln_util_xcalloc(p->names.count, sizeof *by);
    for (uint32_t i = 1; i < p->count; i++) {
        if (p->nodes[i].self == 0)
            continue;
        uint32_t a = i;
        while (a != 0 && c->depth[a] > c->skip + 1 && alloc[p->nodes[a].name])
            a = p->nodes[a].parent;
        if (a != 0 && c->depth[a] > c->skip)
            by[p->nodes[a].name] += p->nodes[i].self;
    }
    bool leak = strstr(kind, "leak") || strstr(kind, "definite") || strstr(kind, "possible") ||
                strstr(kind, "indirect") || strstr(kind, "reachable");
    bool temp = strncmp(kind, "temp", 4) == 0;
    bool live = strncmp(kind, "peak", 4) == 0 || strncmp(kind, "live", 4) == 0;
    const char *what = leak ? "leaking site" : temp ? "temporary allocations"
                       : live ? "heap holder" : "allocating site";
    const char *advice = leak ? "free what this site allocates (or keep a reference on purpose "
                                "and say so in a suppression)"
                         : temp ? "allocated and freed almost at once: keep the buffer on the "
                                  "stack, reuse it, or reserve once"
                         : live ? "this site holds the memory: shrink the structure, release it "
                                  "earlier, or bound the cache"
                                : "allocates the most: pre-allocate, reuse buffers, pools or "
                                  "arenas, reserve() containers";
    kiln_explain_top_sites(c, by, what, advice);
    free(by);
    free(alloc);
}

/* Lock profiles: the sites that wait (the first frame above the lock
 * call), contention and condition waits apart (the leaf marker says which):
 * the advice differs. */
static void kiln_explain_locks(kiln_explain_ctx_t *c)
{
    const kiln_profile_t *p = c->p;
    bool *lockfn = kiln_explain_match(p, kiln_explain_lock_re);
    double *by[2] = {kiln_util_xcalloc(p->names.count, sizeof(double)),
                     kiln_util_xcalloc(p->names.count, sizeof(double))};
    for (uint32_t i = 1; i < p->count; i++) {
        if (p->nodes[i].self == 0)
            continue;
        const kiln_name_t *leaf = &p->names.names[p->nodes[i].name];
        bool cond = leaf->len >= 17 && memcmp(leaf->str, "[lock: cond wait]", 17) == 0;
        uint32_t a = i;
        while (a != 0 && c->depth[a] > c->skip + 1 && lockfn[p->nodes[a].name])
            a = p->nodes[a].parent;
        if (a != 0 && c->depth[a] > c->skip)
            by[cond][p->nodes[a].name] += p->nodes[i].self;
    }
    static const char *const what[2] = {"lock contention", "condition wait"};
    static const char *const advice[2] = {
        "threads wait here for a lock another thread holds: hold it for less (move work out of "
        "the critical section), split it (per bucket, per thread), or use a reader-writer lock "
        "for read-mostly data",
        "threads wait here for a signal: mostly idle time (no work for them yet), not contention; "
        "if throughput is low, look at whoever should signal (the producer) or at the queue's "
        "lock"};
    for (int kind = 0; kind < 2; kind++)
        kiln_explain_top_sites(c, by[kind], what[kind], advice[kind]);
    free(by[0]);
    free(by[1]);
    free(lockfn);
}

static int kiln_explain_cmp(const void *a, const void *b)
{
    const kiln_finding_t *x = a, *y = b;
    if (x->share != y->share)
        return x->share > y->share ? -1 : 1;
    return strcmp(x->title, y->title);
}

size_t kiln_explain_profile(const kiln_profile_t *p, uint32_t skip, const char *kind,
                            kiln_finding_t **out, size_t max)
{
    kiln_explain_ctx_t c = {.p = p, .skip = skip, .all = p->nodes[0].total};
    *out = NULL;
    if (!(c.all > 0))
        return 0;
    c.depth = kiln_util_xcalloc(p->count, sizeof *c.depth);
    for (uint32_t i = 1; i < p->count; i++)
        c.depth[i] = c.depth[p->nodes[i].parent] + 1;
    bool cpu = !kind || strcmp(kind, "cpu") == 0 || strcmp(kind, "wall") == 0; /* time, running or not */
    if (cpu) {
        double *self = kiln_util_xcalloc(p->names.count, sizeof *self);
        double *total = kiln_util_xcalloc(p->names.count, sizeof *total);
        bool *family = kiln_util_xcalloc(p->names.count, sizeof *family);
        kiln_explain_rows(&c, self, total);
        kiln_explain_families_find(&c, family);
        kiln_explain_plateaus(&c, self, family);
        kiln_explain_bases(&c);
        kiln_explain_depths(&c);
        kiln_explain_kernel(&c);
        free(family);
        free(self);
        free(total);
    } else if (strncmp(kind, "lock_", 5) == 0) {
        kiln_explain_locks(&c);
    } else {
        kiln_explain_sites(&c, kind);
    }
    free(c.depth);
    if (c.n > 1)
        qsort(c.out, c.n, sizeof *c.out, kiln_explain_cmp);
    if (c.n > max) {
        kiln_explain_free(c.out + max, c.n - max);
        c.n = max;
    }
    *out = c.out;
    return c.n;
}

/* Frees what each finding owns; the array is the caller's to free. */
void kiln_explain_free(kiln_finding_t *f, size_t n)
{
    for (size_t i = 0; f && i < n; i++) {
        free(f[i].title);
        free(f[i].where);
        free(f[i].frame);
    }
}

static void kiln_explain_print_kind(FILE *out, const kiln_report_kind_t *k, long max)
{
    kiln_finding_t *f;
    size_t n = kiln_explain_profile(&k->p, 1, k->kind, &f, (size_t)max);
    kiln_buf_t b = {0};
    kiln_util_fmt_count(&b, k->p.nodes[0].total, true);
    fprintf(out, "%s: %s %s\n", k->info->label ? k->info->label : k->kind, b.data,
            k->info->unit);
    if (n == 0)
        fprintf(out, "  nothing stands out: no function, family or shape above the thresholds\n");
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%3zu. %5.1f%%  %s\n", i + 1, 100 * f[i].share, f[i].title);
        if (f[i].where)
            fprintf(out, "             %s\n", f[i].where);
        fprintf(out, "             fix: %s\n", f[i].advice);
    }
    kiln_explain_free(f, n);
    free(f);
    kiln_buf_free(&b);
}

int kiln_explain_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"findings", required_argument, NULL, 'n'},
        {"strict", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_report_t r = {.max_nodes = KILN_REPORT_MAX_NODES};
    long max = 10;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "n:", longopts, "explain", kiln_explain_usage)) !=
           -1) {
        switch (c) {
        case 'n': max = kiln_util_opt_count("explain", "-n", optarg); break;
        case 's': r.strict = true; break;
        }
    }
    if (optind >= argc)
        kiln_util_usage_error("explain", "needs a folded file or a directory");
    if (max == 0)
        max = 1000;
    int rc = kiln_report_collect(&r, (const char *const *)argv + optind, argc - optind);
    for (size_t i = 0; rc == 0 && i < r.nkinds; i++) {
        if (i)
            fputc('\n', stdout);
        kiln_explain_print_kind(stdout, &r.kinds[i], max);
    }
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        kiln_util_err("<stdout>: write error");
        rc = -1;
    }
    kiln_report_free(&r);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
