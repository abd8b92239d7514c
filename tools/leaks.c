/* leaks.c — `kiln leaks`: the memcheck-style report of what a process still
 * had allocated at exit, read from the runtime's leak_bytes / leak_count
 * files (or, when present, the per-category definite / indirect / possible /
 * reachable files). The bytes and count files of a process go into one trie,
 * so each stack's bytes and blocks are paired by the node they land on. */
#include "kiln.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char kiln_leaks_usage[] =
    "usage: kiln leaks [-n MAX_SITES] [--error-exitcode N] [--fail-possible] DIR|FILE...\n"
    "\n"
    "Reports the memory each process still had allocated at exit, like\n"
    "valgrind's memcheck: a header per process (N bytes in M blocks), then the\n"
    "allocation sites, largest first, each with its stack leaf first. A DIR is\n"
    "searched for PROG.PID.leak_bytes.folded and .leak_count.folded files (one\n"
    "section per process, then a total line); a FILE's bytes/count sibling is\n"
    "read with it. Either file alone works: the missing value is shown as '?'.\n"
    "When a process has category files (PROG.PID.definite_bytes.folded,\n"
    "indirect_, possible_, reachable_; _bytes and _count), sites are reported\n"
    "per category, definitely lost first, with a LEAK SUMMARY.\n"
    "\n"
    "  -n, --sites N          show at most N sites per process and category\n"
    "                         (20; 0 for all)\n"
    "  --error-exitcode N     exit N (1-255; 0: off) when a leak is found; with category\n"
    "                         files, only definitely lost memory counts\n"
    "  --fail-possible        with category files, possibly lost memory counts too\n"
    "  -h, --help             this help\n"
    "\n"
    "exit status: 0 (or N, see above), 1 bad input, 2 usage error.\n";

/* Part 0 is the plain "still allocated at exit" pair; 1-4 the categories,
 * in the order valgrind reports them. */
#define KILN_LEAKS_PARTS 5
static const struct {
    const char *kind;  /* file name stem: KIND_bytes / KIND_count */
    const char *verb;  /* "N bytes in M blocks are VERB" */
    const char *label; /* LEAK SUMMARY row, right-aligned like memcheck's */
} kiln_leaks_parts[KILN_LEAKS_PARTS] = {
    {"leak", "still allocated at exit", NULL},
    {"definite", "definitely lost", "definitely lost"},
    {"indirect", "indirectly lost", "indirectly lost"},
    {"possible", "possibly lost", "  possibly lost"},
    {"reachable", "still reachable", "still reachable"},
};
enum { KILN_LEAKS_PLAIN = 0, KILN_LEAKS_DEFINITE = 1, KILN_LEAKS_POSSIBLE = 3 };
/* A count whose file is missing (printed '?'). */
#define KILN_LEAKS_UNKNOWN UINT64_MAX

/* One process: PREFIX is "DIR/PROG.PID" (or a lone file's path), and the
 * bytes/count file of each part when it exists. */
typedef struct kiln_leaks_proc_s {
    char *prefix;
    char *files[KILN_LEAKS_PARTS][2];
    bool named[KILN_LEAKS_PARTS][2]; /* an operand; else found in a directory
                                        or as a sibling: regular files only */
} kiln_leaks_proc_t;

typedef struct kiln_leaks_site_s {
    uint32_t node, order; /* order: pre-order rank, the stable tie-break */
    kiln_count_t bytes, blocks; /* KILN_LEAKS_UNKNOWN: that file is missing */
} kiln_leaks_site_t;

typedef struct kiln_leaks_total_s {
    kiln_count_t bytes, blocks; /* saturate below KILN_LEAKS_UNKNOWN */
    bool bytes_unknown, blocks_unknown;
} kiln_leaks_total_t;

typedef struct kiln_leaks_s {
    FILE *out;
    const kiln_leaks_opts_t *o;
    kiln_leaks_proc_t *procs;
    size_t nprocs;
    bool any_dir, found;
    kiln_leaks_total_t total[KILN_LEAKS_PARTS];
    bool categories_seen;
} kiln_leaks_t;

/* "KIND_bytes" / "KIND_count" suffix of a file name: part and which file
 * (0 bytes, 1 count), and the length of the prefix before ".KIND_x.folded". */
static bool kiln_leaks_match(const char *path, int *part, int *which, size_t *prefix_len)
{
    size_t n = strlen(path);
    for (int i = 0; i < KILN_LEAKS_PARTS; i++) {
        for (int j = 0; j < 2; j++) {
            char suffix[48];
            int k = snprintf(suffix, sizeof suffix, ".%s_%s.folded", kiln_leaks_parts[i].kind,
                             j ? "count" : "bytes");
            if (n > (size_t)k && strcmp(path + n - (size_t)k, suffix) == 0) {
                *part = i;
                *which = j;
                *prefix_len = n - (size_t)k;
                return true;
            }
        }
    }
    return false;
}

static kiln_leaks_proc_t *kiln_leaks_proc(kiln_leaks_t *lk, const char *prefix, size_t len)
{
    for (size_t i = 0; i < lk->nprocs; i++)
        if (strlen(lk->procs[i].prefix) == len && memcmp(lk->procs[i].prefix, prefix, len) == 0)
            return &lk->procs[i];
    lk->procs = kiln_util_xrealloc(lk->procs, (lk->nprocs + 1) * sizeof *lk->procs);
    kiln_leaks_proc_t *p = &lk->procs[lk->nprocs++];
    memset(p, 0, sizeof *p);
    p->prefix = kiln_util_xmalloc(len + 1);
    memcpy(p->prefix, prefix, len);
    p->prefix[len] = '\0';
    return p;
}

static void kiln_leaks_set(kiln_leaks_proc_t *p, int part, int which, const char *path,
                           bool named)
{
    if (!p->files[part][which]) {
        p->files[part][which] = kiln_util_xstrdup(path);
        p->named[part][which] = named;
    }
}

/* A named file also brings its sibling (bytes <-> count) when it exists. */
static void kiln_leaks_add_file(kiln_leaks_t *lk, const char *path)
{
    int part, which;
    size_t len;
    if (!kiln_leaks_match(path, &part, &which, &len)) {
        /* Not a kiln leak file: read it as the bytes of its own "process". */
        kiln_leaks_set(kiln_leaks_proc(lk, path, strlen(path)), KILN_LEAKS_PLAIN, 0, path, true);
        return;
    }
    kiln_leaks_proc_t *p = kiln_leaks_proc(lk, path, len);
    kiln_leaks_set(p, part, which, path, true);
    kiln_buf_t other = {0};
    kiln_buf_add(&other, path, len);
    kiln_buf_printf(&other, ".%s_%s.folded", kiln_leaks_parts[part].kind,
                    which ? "bytes" : "count");
    if (access(other.data, F_OK) == 0)
        kiln_leaks_set(p, part, !which, other.data, false);
    kiln_buf_free(&other);
}

static int kiln_leaks_add_dir(kiln_leaks_t *lk, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        kiln_util_err("%s: cannot open: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    kiln_buf_t path = {0};
    while ((de = readdir(d)) != NULL) {
        int part, which;
        size_t len;
        if (de->d_name[0] == '.' || !kiln_leaks_match(de->d_name, &part, &which, &len))
            continue;
        path.len = 0;
        kiln_buf_printf(&path, "%s/%s", dir, de->d_name);
        size_t dlen = path.len - strlen(de->d_name);
        struct stat st;
        if (lstat(path.data, &st) != 0 || !S_ISREG(st.st_mode)) {
            /* Planted, or not a profile: reading it could block or never end. */
            kiln_util_err("%s: not a regular file, skipped", path.data);
            continue;
        }
        kiln_leaks_set(kiln_leaks_proc(lk, path.data, dlen + len), part, which, path.data, false);
    }
    closedir(d);
    kiln_buf_free(&path);
    return 0;
}

static int kiln_leaks_cmp_proc(const void *a, const void *b)
{
    return strcmp(((const kiln_leaks_proc_t *)a)->prefix, ((const kiln_leaks_proc_t *)b)->prefix);
}

static int kiln_leaks_cmp_site(const void *a, const void *b)
{
    const kiln_leaks_site_t *x = a, *y = b;
    kiln_count_t kx = x->bytes != KILN_LEAKS_UNKNOWN ? x->bytes : x->blocks,
                 ky = y->bytes != KILN_LEAKS_UNKNOWN ? y->bytes : y->blocks;
    if (kx != ky)
        return kx > ky ? -1 : 1;
    if (x->blocks != y->blocks)
        return x->blocks > y->blocks ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Reads one file into P, for leaks: empty is fine, two counts are not. */
static int kiln_leaks_read(kiln_profile_t *p, const char *path, bool named)
{
    kiln_folded_opts_t fo = {.allow_empty = true, .dir_files = !named};
    if (kiln_folded_read(p, &path, 1, &fo) != 0)
        return -1;
    if (p->has_delta) {
        kiln_util_err("%s: a differential profile (two counts per line) is not a leak profile",
                      path);
        return -1;
    }
    if (p->scale) {
        kiln_util_err("%s: fractional counts: a leak profile counts whole bytes and blocks",
                      path);
        return -1;
    }
    return 0;
}

static void kiln_leaks_value(kiln_buf_t *b, kiln_count_t v)
{
    static const kiln_profile_t whole = {.scale = 0};
    if (v == KILN_LEAKS_UNKNOWN)
        kiln_buf_addc(b, '?');
    else
        kiln_profile_fmt(b, &whole, v, true);
}

/* "N bytes in M blocks" (either may be '?'). */
static void kiln_leaks_amount(kiln_buf_t *b, kiln_count_t bytes, kiln_count_t blocks)
{
    kiln_leaks_value(b, bytes);
    kiln_buf_adds(b, " bytes in ");
    kiln_leaks_value(b, blocks);
    kiln_buf_adds(b, " blocks");
}

static void kiln_leaks_frame(kiln_buf_t *b, const kiln_name_t *nm)
{
    kiln_escape_term(b, nm->str, nm->len);
}

/* A + B, held below KILN_LEAKS_UNKNOWN (a sum that large is not real). */
static kiln_count_t kiln_leaks_sum(kiln_count_t a, kiln_count_t b)
{
    kiln_count_t s;
    return __builtin_add_overflow(a, b, &s) || s == KILN_LEAKS_UNKNOWN ? KILN_LEAKS_UNKNOWN - 1 : s;
}

static void kiln_leaks_total_add(kiln_leaks_total_t *t, kiln_count_t bytes, kiln_count_t blocks)
{
    if (bytes == KILN_LEAKS_UNKNOWN)
        t->bytes_unknown = true;
    else
        t->bytes = kiln_leaks_sum(t->bytes, bytes);
    if (blocks == KILN_LEAKS_UNKNOWN)
        t->blocks_unknown = true;
    else
        t->blocks = kiln_leaks_sum(t->blocks, blocks);
}

/* Reads PART of process P and prints its sites into B; adds to *sum. */
static int kiln_leaks_part(kiln_leaks_t *lk, const kiln_leaks_proc_t *proc, int part,
                           kiln_buf_t *b, kiln_leaks_total_t *sum)
{
    const char *bytes_path = proc->files[part][0], *count_path = proc->files[part][1];
    kiln_profile_t p;
    kiln_profile_init(&p, false);
    kiln_count_t *bytes = NULL;
    uint32_t nbytes = 0;
    int rc = 0;
    if (bytes_path) {
        rc = kiln_leaks_read(&p, bytes_path, proc->named[part][0]);
        bytes = kiln_profile_take_self(&p, &nbytes);
    }
    if (rc == 0 && count_path)
        rc = kiln_leaks_read(&p, count_path, proc->named[part][1]);
    if (rc != 0) {
        free(bytes);
        kiln_profile_free(&p);
        return -1;
    }
    kiln_leaks_site_t *sites = NULL;
    size_t nsites = 0, cap = 0;
    kiln_walk_t w;
    uint32_t id, depth, order = 0;
    kiln_walk_init(&w, &p);
    while (kiln_walk_next(&w, &id, &depth)) {
        kiln_count_t nb = id < nbytes ? bytes[id] : 0, nc = p.nodes[id].self;
        order++;
        if (depth == 0 || !(nb > 0 || nc > 0))
            continue;
        if (nsites == cap) {
            cap = cap ? cap * 2 : 64;
            sites = kiln_util_xrealloc(sites, cap * sizeof *sites);
        }
        sites[nsites++] = (kiln_leaks_site_t){id, order, bytes_path ? nb : KILN_LEAKS_UNKNOWN,
                                              count_path ? nc : KILN_LEAKS_UNKNOWN};
    }
    kiln_walk_free(&w);
    if (nsites > 1) /* qsort wants a non-null base, even for 0 */
        qsort(sites, nsites, sizeof *sites, kiln_leaks_cmp_site);

    size_t shown = lk->o->max_sites > 0 && (size_t)lk->o->max_sites < nsites
                       ? (size_t)lk->o->max_sites : nsites;
    kiln_leaks_total_t rest = {0};
    for (size_t i = 0; i < nsites; i++) {
        kiln_leaks_total_add(sum, sites[i].bytes, sites[i].blocks);
        if (i >= shown) {
            kiln_leaks_total_add(&rest, sites[i].bytes, sites[i].blocks);
            continue;
        }
        kiln_buf_addc(b, '\n');
        kiln_leaks_amount(b, sites[i].bytes, sites[i].blocks);
        kiln_buf_printf(b, " are %s (site %zu of %zu)\n", kiln_leaks_parts[part].verb, i + 1,
                        nsites);
        /* Rebuild the stack from the leaf up: parents are the trie's. */
        bool leaf = true;
        for (uint32_t n = sites[i].node; n != 0; n = p.nodes[n].parent) {
            kiln_buf_adds(b, leaf ? "   at " : "   by ");
            kiln_leaks_frame(b, &p.names.names[p.nodes[n].name]);
            /* valgrind's "(file.c:42)", from the stacks file's DWARF lines. */
            size_t at = b->len;
            kiln_buf_adds(b, " (");
            if (kiln_stacks_where_short(&p, n, b))
                kiln_buf_addc(b, ')');
            else
                b->len = at;
            kiln_buf_addc(b, '\n');
            leaf = false;
        }
    }
    if (shown < nsites) {
        kiln_buf_printf(b, "\n(%zu more sites %s: ", nsites - shown, kiln_leaks_parts[part].verb);
        kiln_leaks_amount(b, rest.bytes_unknown ? KILN_LEAKS_UNKNOWN : rest.bytes,
                          rest.blocks_unknown ? KILN_LEAKS_UNKNOWN : rest.blocks);
        kiln_buf_adds(b, "; -n 0 shows all)\n");
    }
    if (!bytes_path)
        sum->bytes_unknown = true;
    if (!count_path)
        sum->blocks_unknown = true;
    free(sites);
    free(bytes);
    kiln_profile_free(&p);
    return 0;
}

static kiln_count_t kiln_leaks_known(kiln_count_t v, bool unknown)
{
    return unknown ? KILN_LEAKS_UNKNOWN : v;
}

/* One process's section; written only once every part has been read, so a
 * bad file leaves no half section behind. */
static int kiln_leaks_section(kiln_leaks_t *lk, const kiln_leaks_proc_t *proc)
{
    bool categories = false;
    for (int i = 1; i < KILN_LEAKS_PARTS; i++)
        if (proc->files[i][0] || proc->files[i][1])
            categories = true;
    kiln_leaks_total_t sums[KILN_LEAKS_PARTS] = {{0}}, all = {0};
    kiln_buf_t body = {0}, head = {0};
    int first = categories ? 1 : 0, last = categories ? KILN_LEAKS_PARTS - 1 : 0;
    for (int i = first; i <= last; i++) {
        if (kiln_leaks_part(lk, proc, i, &body, &sums[i]) != 0) {
            kiln_buf_free(&body);
            return -1;
        }
        kiln_leaks_total_add(&all, kiln_leaks_known(sums[i].bytes, sums[i].bytes_unknown),
                             kiln_leaks_known(sums[i].blocks, sums[i].blocks_unknown));
        kiln_leaks_total_add(&lk->total[i], kiln_leaks_known(sums[i].bytes, sums[i].bytes_unknown),
                             kiln_leaks_known(sums[i].blocks, sums[i].blocks_unknown));
    }
    if (categories) {
        lk->categories_seen = true;
        kiln_leaks_total_add(&lk->total[0], kiln_leaks_known(all.bytes, all.bytes_unknown),
                             kiln_leaks_known(all.blocks, all.blocks_unknown));
        lk->found |= sums[KILN_LEAKS_DEFINITE].bytes > 0 || sums[KILN_LEAKS_DEFINITE].blocks > 0;
        if (lk->o->fail_possible)
            lk->found |= sums[KILN_LEAKS_POSSIBLE].bytes > 0 ||
                         sums[KILN_LEAKS_POSSIBLE].blocks > 0;
    } else {
        lk->found |= all.bytes > 0 || all.blocks > 0;
    }

    const char *base = strrchr(proc->prefix, '/');
    base = base ? base + 1 : proc->prefix;
    kiln_buf_printf(&head, "== %s: ", base);
    if (all.bytes == 0 && all.blocks == 0)
        kiln_buf_adds(&head, "no leaks: ");
    kiln_leaks_amount(&head, kiln_leaks_known(all.bytes, all.bytes_unknown),
                      kiln_leaks_known(all.blocks, all.blocks_unknown));
    kiln_buf_adds(&head, " are still allocated at exit\n   from");
    if (categories) { /* name the set, not eight paths */
        kiln_buf_printf(&head, " %s.{definite,indirect,possible,reachable}_{bytes,count}.folded",
                        proc->prefix);
    } else {
        for (int j = 0; j < 2; j++)
            if (proc->files[0][j])
                kiln_buf_printf(&head, " %s", proc->files[0][j]);
    }
    kiln_buf_addc(&head, '\n');
    if (categories) {
        kiln_buf_adds(&body, "\nLEAK SUMMARY:\n");
        for (int i = 1; i < KILN_LEAKS_PARTS; i++) {
            kiln_buf_printf(&body, "   %s: ", kiln_leaks_parts[i].label);
            kiln_leaks_amount(&body, kiln_leaks_known(sums[i].bytes, sums[i].bytes_unknown),
                              kiln_leaks_known(sums[i].blocks, sums[i].blocks_unknown));
            kiln_buf_addc(&body, '\n');
        }
    }
    fwrite(head.data, 1, head.len, lk->out);
    if (body.len)
        fwrite(body.data, 1, body.len, lk->out);
    kiln_buf_free(&head);
    kiln_buf_free(&body);
    return 0;
}

int kiln_leaks_print(FILE *out, const char *const *paths, int npaths,
                     const kiln_leaks_opts_t *o, bool *found)
{
    kiln_leaks_t lk;
    memset(&lk, 0, sizeof lk);
    lk.out = out;
    lk.o = o;
    int rc = 0;
    for (int i = 0; i < npaths && rc == 0; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            kiln_util_err("%s: cannot open: %s", paths[i], strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            lk.any_dir = true;
            size_t before = lk.nprocs;
            rc = kiln_leaks_add_dir(&lk, paths[i]);
            if (rc == 0 && lk.nprocs == before && !o->quiet_missing) {
                kiln_util_err("%s: no *.leak_bytes.folded or *.leak_count.folded file "
                              "(was the program profiled with KILN_MODE=alloc?)", paths[i]);
                rc = -1;
            }
        } else {
            kiln_leaks_add_file(&lk, paths[i]);
        }
    }
    if (rc == 0 && lk.nprocs == 0)
        rc = 1; /* quiet_missing: nothing to report */
    qsort(lk.procs, lk.nprocs, sizeof *lk.procs, kiln_leaks_cmp_proc);
    for (size_t i = 0; i < lk.nprocs && rc == 0; i++) {
        if (i > 0)
            fputc('\n', out);
        rc = kiln_leaks_section(&lk, &lk.procs[i]);
    }
    if (rc == 0 && (lk.any_dir || lk.nprocs > 1)) {
        kiln_buf_t b = {0};
        const kiln_leaks_total_t *t = &lk.total[0];
        kiln_buf_printf(&b, "\ntotal: %s", t->bytes == 0 && t->blocks == 0 ? "no leaks: " : "");
        kiln_leaks_amount(&b, kiln_leaks_known(t->bytes, t->bytes_unknown),
                          kiln_leaks_known(t->blocks, t->blocks_unknown));
        kiln_buf_printf(&b, " are still allocated at exit in %zu process%s\n", lk.nprocs,
                        lk.nprocs == 1 ? "" : "es");
        for (int i = 1; lk.categories_seen && i < KILN_LEAKS_PARTS; i++) {
            kiln_buf_printf(&b, "   %s: ", kiln_leaks_parts[i].label);
            t = &lk.total[i];
            kiln_leaks_amount(&b, kiln_leaks_known(t->bytes, t->bytes_unknown),
                              kiln_leaks_known(t->blocks, t->blocks_unknown));
            kiln_buf_addc(&b, '\n');
        }
        fwrite(b.data, 1, b.len, out);
        kiln_buf_free(&b);
    }
    for (size_t i = 0; i < lk.nprocs; i++) {
        for (int j = 0; j < KILN_LEAKS_PARTS; j++) {
            free(lk.procs[i].files[j][0]);
            free(lk.procs[i].files[j][1]);
        }
        free(lk.procs[i].prefix);
    }
    free(lk.procs);
    *found = lk.found;
    return rc;
}

int kiln_leaks_main(int argc, char **argv)
{
    enum { KILN_LEAKS_ERROR_EXITCODE = 256, KILN_LEAKS_FAIL_POSSIBLE };
    static const struct option longopts[] = {
        {"sites", required_argument, NULL, 'n'},
        {"error-exitcode", required_argument, NULL, KILN_LEAKS_ERROR_EXITCODE},
        {"fail-possible", no_argument, NULL, KILN_LEAKS_FAIL_POSSIBLE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_leaks_opts_t o = {.max_sites = 20};
    long error_exitcode = 0;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "n:", longopts, "leaks", kiln_leaks_usage)) != -1) {
        switch (c) {
        case 'n': o.max_sites = kiln_util_opt_count("leaks", "-n", optarg); break;
        case KILN_LEAKS_ERROR_EXITCODE:
            if (kiln_util_parse_long(optarg, 0, 255, &error_exitcode) != 0)
                kiln_util_usage_error("leaks", "--error-exitcode needs 0 to 255, not '%s'",
                                      optarg);
            break;
        case KILN_LEAKS_FAIL_POSSIBLE: o.fail_possible = true; break;
        }
    }
    if (optind >= argc)
        kiln_util_usage_error("leaks", "needs a profile directory or leak files");
    bool found = false;
    int rc = kiln_leaks_print(stdout, (const char *const *)argv + optind, argc - optind, &o,
                              &found);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) {
        kiln_util_err("<stdout>: write error");
        rc = -1;
    }
    if (rc != 0)
        return KILN_EXIT_FAIL;
    return found && error_exitcode ? (int)error_exitcode : 0;
}
