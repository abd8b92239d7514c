/* kiln.h — the internals of the offline `kiln` command, one section per file.
 * Glossary first, then every cross-file function under the file that defines
 * it. The tool shares the folded text format with the runtime, and the
 * contract of runtime/kiln_contract.h (kinds, file names, meta keys, marker
 * frames, dump-signal grammar): header only, the tool never links the
 * runtime.
 *
 * Glossary
 *   folded line   "frame;frame;frame COUNT" (root first), or with two counts
 *                 "stack BEFORE AFTER" (difffolded output).
 *   name id       index of a hash-consed frame name (kiln_names_t).
 *   node          one frame in the profile trie: a name under a parent.
 *                 total = samples of every stack through it, self = samples
 *                 of the stacks that end at it. Node 0 is the root "all".
 *   value         what a frame's width is made of: the count, or for a
 *                 two-count line the second count (first with --negate).
 *   delta         for two-count lines, after - before (negated with
 *                 --negate); drives the differential colours.
 */
#ifndef KILN_TOOLS_H
#define KILN_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kiln_contract.h"

#define KILN_VERSION "0.1.0"

/* Exit codes: 0 ok, 1 runtime failure (bad input, I/O), 2 usage. */
#define KILN_EXIT_FAIL 1
#define KILN_EXIT_USAGE 2

/* ------------------------------------------------------------ util.c */
/* Errors, memory that never returns NULL, growable byte buffers, output
 * files that appear whole. */
void kiln_util_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void kiln_util_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "kiln: CMD: unknown option ..." style usage errors and exits 2. */
_Noreturn void kiln_util_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void *kiln_util_xmalloc(size_t n);
void *kiln_util_xcalloc(size_t n, size_t size);
void *kiln_util_xrealloc(void *p, size_t n);
char *kiln_util_xstrdup(const char *s);
/* Parses a non-negative number ("12", "12.5", "12%"): 0 on success. */
int kiln_util_parse_double(const char *s, double *out);
int kiln_util_parse_long(const char *s, long min, long max, long *out);
/* Shared getopt_long error reporting: call when getopt_long returns '?' or ':'. */
_Noreturn void kiln_util_bad_option(const char *cmd, int c, char *const argv[]);
/* getopt_long with every command's conventions: parsing starts over for a
 * new argv, SHORTOPTS gets the ':' (missing values told apart) and 'h'
 * added (a leading '+' stays first: stop at the first operand), -h/--help
 * prints USAGE and exits 0, an unknown option or missing value is a usage
 * error (exit 2). Returns the option, or -1 at the end. */
struct option;
int kiln_util_getopt(int argc, char **argv, const char *shortopts,
                     const struct option *longopts, const char *cmd, const char *usage);
/* A count option's value (0 .. 1e9), or a usage error naming OPT. */
long kiln_util_opt_count(const char *cmd, const char *opt, const char *arg);

typedef struct kiln_buf_s {
    char *data;
    size_t len, cap;
} kiln_buf_t;
void kiln_buf_reserve(kiln_buf_t *b, size_t extra);
void kiln_buf_add(kiln_buf_t *b, const void *p, size_t n);
void kiln_buf_adds(kiln_buf_t *b, const char *s);
void kiln_buf_addc(kiln_buf_t *b, char c);
void kiln_buf_printf(kiln_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kiln_buf_free(kiln_buf_t *b);
/* A whole (small) file, up to max bytes, NUL-terminated: 0 and b filled
 * (*len without the NUL), or -1 with errno set and b empty. */
int kiln_buf_read_file(kiln_buf_t *b, const char *path, size_t max);
/* The same from an open descriptor, which it closes. */
int kiln_buf_read_fd(kiln_buf_t *b, int fd, size_t max);
/* Opens PATH for reading only if it is a regular file (or, with
 * allow_pipe, a FIFO or pipe the user named): never blocks on a FIFO
 * without a writer, never opens a device; with nofollow a symbolic link is
 * refused (files found in a shared directory). An fd, or -1 with errno set
 * (KILN_ENOTREG for a device, socket or FIFO): say it with
 * kiln_util_strerror. */
#define KILN_ENOTREG 4097
int kiln_util_open_regular(const char *path, bool nofollow, bool allow_pipe);
const char *kiln_util_strerror(int err);

/* An output destination: stdout, or PATH written through a temporary file in
 * the same directory (O_CREAT|O_EXCL) and renamed on commit; abort unlinks
 * it, so a failed run never leaves a partial file. An existing PATH that is
 * not a regular file (/dev/null, a FIFO, /dev/stdout, /dev/fd/N) is written
 * in place, as a shell's '>' would: renaming over it would replace the node.
 * A symbolic link to a regular file: its target is replaced (temporary file
 * beside the target, then rename), the link is kept. */
typedef struct kiln_out_s {
    FILE *fp;
    char *path, *tmp_path;
    bool in_place;
} kiln_out_t;
int kiln_out_open(kiln_out_t *o, const char *path); /* NULL or "-": stdout */
int kiln_out_commit(kiln_out_t *o);                 /* 0, or -1 after a kiln: line */
void kiln_out_abort(kiln_out_t *o);
/* Commits when RC is 0 (returning the commit's result), else aborts and
 * returns RC: the end of every "write the whole output or nothing" path. */
int kiln_out_close(kiln_out_t *o, int rc);

/* Appends a count as flamegraph.pl prints it: integer with thousands commas,
 * or two decimals when fractional. */
void kiln_util_fmt_count(kiln_buf_t *b, double v, bool commas);

/* ------------------------------------------------------------ names.c */
/* Hash-consed frame names: each distinct byte string is stored once. */
typedef struct kiln_name_s {
    const char *str;
    uint32_t len;
    uint32_t hash;
} kiln_name_t;
typedef struct kiln_names_s {
    kiln_name_t *names;
    uint32_t count, cap;
    uint32_t *slots; /* open addressing: name id + 1, 0 = empty */
    uint32_t mask;
    char *chunk;     /* current arena chunk */
    size_t chunk_used, chunk_cap;
    char **chunks;
    size_t nchunks;
} kiln_names_t;
void kiln_names_init(kiln_names_t *t);
void kiln_names_free(kiln_names_t *t);
uint32_t kiln_names_intern(kiln_names_t *t, const char *s, size_t len);
/* -1, 0, 1 by byte order (shorter first on a common prefix). */
int kiln_names_cmp(const kiln_names_t *t, uint32_t a, uint32_t b);

/* ------------------------------------------------------------ profile.c */
#define KILN_NONE UINT32_MAX

/* Counts are exact unsigned integers, never floating point: a stack's
 * count and every sum of them up to 2^64-1 print as they were written
 * (a sum past that is an error, not a rounding). A profile whose input has
 * fractional counts ("0.5", flamegraph.pl accepts them) switches, once, to
 * thousandths: its counts are then value * 10^KILN_COUNT_FRAC_DIGITS
 * (scale), fractions beyond three digits are cut, and a sum must stay
 * under 2^64 thousandths (1.8e16). Shares and geometry are computed in
 * double from these exact values. */
typedef uint64_t kiln_count_t;
#define KILN_COUNT_FRAC_DIGITS 3u
#define KILN_COUNT_FRAC_UNIT 1000u

/* 32 bytes a frame: the trie is most of the tool's memory. While the parser
 * runs only self is kept; kiln_profile_finish sums the totals bottom-up (a
 * child's id is always above its parent's), so adding a line touches one
 * node, not its whole path. */
typedef struct kiln_node_s {
    uint32_t name, parent;
    uint32_t child, sibling; /* children list, most recent first */
    kiln_count_t total, self;
} kiln_node_t;

typedef struct kiln_profile_s {
    kiln_names_t names;
    kiln_node_t *nodes;
    uint32_t count, cap;
    uint32_t *slots; /* (parent, name) -> node id + 1 */
    uint32_t mask;
    bool flamechart; /* merge only with the most recent child */
    bool has_delta;  /* some line had two counts */
    bool delta_summed;
    unsigned scale;  /* 0, or KILN_COUNT_FRAC_DIGITS once a fraction was read */
    double cursor;   /* flame chart time */
    double *delta;   /* per node, when has_delta: self, then total after finish */
    double *start;   /* per node: flame chart creation time, then layout x */
    uint32_t *where; /* per node (below where_cap): name id of its hottest
                        "file:line" (stacks.c), KILN_NONE when unknown */
    uint32_t where_cap;
    struct kiln_stacks_s **stacks; /* the stacks files read (stacks.c) */
    size_t nstacks;
    bool stacks_partial; /* some input had no stacks file */
} kiln_profile_t;
void kiln_profile_init(kiln_profile_t *p, bool flamechart);
void kiln_profile_free(kiln_profile_t *p);
/* The child of PARENT named NAME, created when missing. */
uint32_t kiln_profile_child(kiln_profile_t *p, uint32_t parent, uint32_t name);
/* Adds VALUE (in the profile's units) and DELTA to the stack ending at LEAF
 * (0: the root). -1 when the stack's count would pass 2^64-1. */
int kiln_profile_add(kiln_profile_t *p, uint32_t leaf, kiln_count_t value, double delta);
/* Switches P to thousandths (scale KILN_COUNT_FRAC_DIGITS): every count is
 * multiplied by 10^3. 0, or -1 when one would pass 2^64-1. */
int kiln_profile_to_fractions(kiln_profile_t *p);
/* Multiplies N counts taken at scale FROM to P's scale: 0 or -1 (overflow). */
int kiln_profile_rescale(const kiln_profile_t *p, kiln_count_t *v, uint32_t n, unsigned from);
/* Computes every node's total (and total delta) from the self counts; call
 * after reading (kiln_folded_read does). Idempotent for totals. -1 when a
 * total would pass 2^64-1. */
int kiln_profile_finish(kiln_profile_t *p);
/* Appends count V of P as a person reads it: an integer (thousands commas
 * with COMMAS), or with two decimals when P has fractions and V is not
 * whole. Exact: no floating point. */
void kiln_profile_fmt(kiln_buf_t *b, const kiln_profile_t *p, kiln_count_t v, bool commas);
/* V as a number of P's input unit (V / 10^scale), for shares and scaling. */
static inline double kiln_profile_value(const kiln_profile_t *p, kiln_count_t v)
{
    return p->scale ? (double)v / KILN_COUNT_FRAC_UNIT : (double)v;
}
/* The per-node start array (allocated on first use). */
double *kiln_profile_starts(kiln_profile_t *p);
/* Children of NODE in drawing order (alphabetical, or input order for a
 * flame chart); returns the count, *out is reused between calls. */
size_t kiln_profile_children(const kiln_profile_t *p, uint32_t node, uint32_t **out,
                             size_t *out_cap);
/* Children heaviest first (ties by name): tree and top. */
size_t kiln_profile_children_by_weight(const kiln_profile_t *p, uint32_t node,
                                       uint32_t **out, size_t *out_cap);
/* Pre-order walk of every node from the root, children in drawing order
 * (kiln_profile_children). After kiln_walk_next returns NODE at DEPTH,
 * path[0..DEPTH-1] are the nodes from the root's child down to NODE. */
typedef struct kiln_walk_s {
    const kiln_profile_t *p;
    uint64_t *todo;
    size_t top, cap;
    uint32_t *path, *kids;
    size_t path_cap, kids_cap;
} kiln_walk_t;
void kiln_walk_init(kiln_walk_t *w, const kiln_profile_t *p);
bool kiln_walk_next(kiln_walk_t *w, uint32_t *node, uint32_t *depth);
void kiln_walk_free(kiln_walk_t *w);
/* Sets aside every node's self count (returned, COUNT entries, indexed by
 * node id) and zeroes self and total, so that another file read into P
 * lands on the same nodes: how diff and leaks pair per-stack counts. */
kiln_count_t *kiln_profile_take_self(kiln_profile_t *p, uint32_t *count);
static inline const kiln_name_t *kiln_profile_name(const kiln_profile_t *p, uint32_t node)
{
    return &p->names.names[p->nodes[node].name];
}

/* ------------------------------------------------------------ folded.c */
typedef struct kiln_folded_opts_s {
    bool strict;      /* a malformed line is fatal */
    bool reverse;     /* merge from the leaves: frames reversed */
    bool negate;      /* two-count lines: widths from the first count */
    const char *base; /* keep only stacks through this frame, re-rooted */
    bool allow_empty; /* a file with no line at all is an empty profile, not an error */
    const char *dir_kind; /* a directory operand reads its files of this kind
                             (kiln_sets_expand; NULL: cpu) */
    bool dir_files;       /* the paths were found in a directory: regular
                             files only, no symbolic link (kiln leaks) */
    bool lines;           /* frames named "function file:line" (from stacks files) */
} kiln_folded_opts_t;
/* Reads every path ("-" or none = stdin) into P. Malformed lines are reported
 * as "kiln: FILE:LINE: what" (the first ten, then a count). Returns 0, or -1
 * after a kiln: line (unreadable file, strict violation, no valid line). */
int kiln_folded_read(kiln_profile_t *p, const char *const *paths, int npaths,
                     const kiln_folded_opts_t *opts);
/* The same for one open stream, named LABEL in messages (the fuzzer's way in). */
int kiln_folded_read_fp(kiln_profile_t *p, FILE *fp, const char *label,
                        const kiln_folded_opts_t *opts);
/* A count as written: WHOLE, and its first KILN_COUNT_FRAC_DIGITS decimals
 * as FRAC / KILN_COUNT_FRAC_UNIT. */
typedef struct kiln_folded_count_s {
    uint64_t whole;
    uint32_t frac;
} kiln_folded_count_t;
/* Parses one line (no newline) into stack and counts. Returns NULL on
 * success or a static description of what is wrong (a count past 2^64-1
 * is one). *ncounts is 1 or 2. Exposed for the fuzzer. */
const char *kiln_folded_parse_line(const char *line, size_t len, size_t *stack_len,
                                   kiln_folded_count_t counts[2], int *ncounts);
/* Guesses the profile kind from a folded file name:
 * "cpu", "alloc_bytes", "alloc_count", "live_bytes", "live_count",
 * "leak_bytes", "leak_count", "peak_bytes", or NULL. */
const char *kiln_folded_kind(const char *path);
/* The same list, NULL-terminated: what --kind accepts. */
extern const char *const kiln_folded_kinds[];
/* The --kind option's value from that list, or a usage error of CMD. */
const char *kiln_folded_opt_kind(const char *cmd, const char *arg);

/* ------------------------------------------------------------ sets.c */
/* A profile set is what one dump of a process writes:
 *   PROG.PID.TAG.KIND.folded, PROG.PID.TAG.{cpu,heap}.pb.gz, and
 *   PROG.PID.TAG.meta.json, written last: a set is whole once it exists.
 * TAG is YYYYmmddTHHMMSSZ-NNNN (UTC time, then the process's dump number),
 * so a process's sets sort in time order. The exit set has no TAG.
 * meta.json says why ("dump_reason": interval, signal, exit...) and, for
 * interval sets, whether each holds the interval alone or everything so
 * far ("interval_mode": delta or cumulative). */
#define KILN_SETS_TAG_LEN KILN_TAG_LEN
typedef struct kiln_sets_name_s {
    size_t prog_len;         /* PROG is name[0 .. prog_len) */
    long pid;
    size_t tag_off, tag_len; /* tag_len 0: untagged (the exit set) */
    size_t rest_off;         /* "KIND.EXT" or "meta.json" */
} kiln_sets_name_t;
/* Splits a file name (no directory) of the runtime's. False if it is not one. */
bool kiln_sets_parse(const char *base, kiln_sets_name_t *out);
/* The value of "KEY" in the meta.json at PATH (a string's contents, or a
 * number's text), malloc'ed; NULL when the file or key is missing. */
char *kiln_sets_meta_string(const char *path, const char *key);
/* DIR's entries (no dot files), sorted; NULL (errno set) if unreadable. */
char **kiln_sets_list(const char *dir, size_t *count);
void kiln_sets_list_free(char **names, size_t count);
/* PATHS with each directory replaced by the PROG.PID*.KIND.folded files that
 * make up each process's run: its exit set if it has one; else for cpu and
 * alloc_* in delta mode every whole interval set (their sum); else (a
 * cumulative run, or a snapshot kind: live, leak, peak) the latest whole
 * set. Files whose name is not the runtime's are taken as they are. Other
 * operands are kept. *out is freed with kiln_sets_free; *from_dir (when
 * not NULL; free()d by the caller) says which came out of a directory,
 * where only regular files that are not symbolic links are read (a FIFO
 * or a link to /dev/zero planted there must not hang or feed a reader).
 * 0, or -1 after a
 * kiln: line (unreadable directory, no file of KIND in it). */
int kiln_sets_expand(const char *const *paths, int npaths, const char *kind,
                     const char ***out, int *nout, unsigned char **from_dir);
void kiln_sets_free(const char **paths, int npaths);
/* A writer's temporary (".NAME.PID.SEQ.tmp", dot files every reader skips):
 * the writer's pid, or -1 when NAME is not one. */
long kiln_sets_stale_pid(const char *name);
/* Removes DIR's temporaries left by writers that are gone (a SIGKILL in the
 * middle of a write), when they are regular files of this user. Returns how
 * many were removed. */
long kiln_sets_clean_stale(const char *dir);

/* ------------------------------------------------------------ meta.c */
/* A set's meta.json: its top-level keys (nested values checked, skipped).
 * Numbers keep their text; an unsigned integer that fits is also exact in
 * u64 (counts never go through floating point). */
#define KILN_META_MAX (1u << 20)
typedef enum { KILN_META_STRING, KILN_META_NUMBER, KILN_META_OTHER } kiln_meta_type_t;
typedef struct kiln_meta_entry_s {
    char *key, *value; /* value: a string's decoded bytes, a number's text */
    size_t value_len;
    kiln_meta_type_t type;
    bool is_u64;
    uint64_t u64;
    long line;
} kiln_meta_entry_t;
typedef struct kiln_meta_s {
    kiln_meta_entry_t *entries;
    size_t count, cap;
} kiln_meta_t;
/* Parses TEXT (LEN bytes, any content): 0, or -1 after "kiln: LABEL:LINE:
 * what" (unless quiet) with M empty. */
int kiln_meta_parse(kiln_meta_t *m, const char *text, size_t len, const char *label, bool quiet);
/* Reads PATH as a regular file only (no FIFO, device or symbolic link; at
 * most KILN_META_MAX bytes) and parses it. 0 or -1 (a kiln: line unless quiet). */
int kiln_meta_read(kiln_meta_t *m, const char *path, bool quiet);
void kiln_meta_free(kiln_meta_t *m);
const kiln_meta_entry_t *kiln_meta_get(const kiln_meta_t *m, const char *key);
/* A string value, or NULL (missing, or not a string). */
const char *kiln_meta_str(const kiln_meta_t *m, const char *key);
/* An exact count: 0, -1 missing, -2 not an unsigned 64-bit integer. */
int kiln_meta_u64(const kiln_meta_t *m, const char *key, uint64_t *out);
/* A time in seconds (non-negative, finite): 0 or -1. */
int kiln_meta_seconds(const kiln_meta_t *m, const char *key, double *out);

/* ------------------------------------------------------------ elf.c */
/* The file execvp(CMD) would run (PATH searched as glibc does), malloc'ed,
 * or NULL when none is found. */
char *kiln_elf_resolve(const char *cmd);
/* 1 when PATH is a statically linked ELF (no PT_INTERP, so LD_PRELOAD is
 * never read) without the kiln runtime linked in; 0 when it is dynamic,
 * carries the runtime, or is the dynamic loader itself; -1 when it is not
 * an ELF file kiln can read (a script, say). */
int kiln_elf_static_without_kiln(const char *path);

/* ------------------------------------------------------------ dwarf.c */
/* Source lines and inlined frames of a module's code from its DWARF
 * (elfutils' libdw), by link-time address. */
typedef struct kiln_dwarf_s kiln_dwarf_t;
typedef struct kiln_dwarf_frame_s {
    char *name; /* demangled; NULL when DWARF has lines but no function */
    char *file; /* the source file, NULL when unknown */
    int line;
} kiln_dwarf_frame_t;
/* NULL when PATH cannot be opened or its build-id is not BUILD_ID (hex;
 * NULL, "" or "-": not checked). */
kiln_dwarf_t *kiln_dwarf_open(const char *path, const char *build_id);
void kiln_dwarf_close(kiln_dwarf_t *d);
/* The frames at ADDR, outermost (the real function) first, then each
 * inlined call inside it: *out malloc'ed (kiln_dwarf_frames_free), the
 * count returned (0: nothing known). */
size_t kiln_dwarf_lookup(kiln_dwarf_t *d, uint64_t addr, kiln_dwarf_frame_t **out);
void kiln_dwarf_frames_free(kiln_dwarf_frame_t *f, size_t n);

/* ------------------------------------------------------------ stacks.c */
/* The runtime's stacks file beside a folded file (PROG.PID[.TAG].stacks
 * for PROG.PID[.TAG].KIND.folded): the same stacks as module addresses. */
typedef struct kiln_stacks_loc_s {
    char *name, *file; /* file NULL: unknown */
    int line;
} kiln_stacks_loc_t;
typedef struct kiln_stacks_frame_s {
    uint32_t module;   /* 0: none */
    uint64_t addr;     /* link-time address in the module (else absolute) */
    char *raw, *name;  /* the stored symbol (NULL), the runtime's name */
    bool expanded;
    uint32_t nx;
    kiln_stacks_loc_t *x; /* outermost first; x[0].name is name */
} kiln_stacks_frame_t;
typedef struct kiln_stacks_s {
    char *path, *kind;
    struct kiln_stacks_module_s *modules;
    size_t nmodules;
    kiln_stacks_frame_t *frames; /* by id */
    size_t nframes;
    uint32_t *ids;      /* every stack's frame ids, root first */
    size_t nids, ids_cap;
    size_t *starts;     /* stack k is ids[starts[k] .. starts[k+1]) */
    double *counts;
    size_t nstacks, stacks_cap;
} kiln_stacks_t;
/* "D/X.K.folded" -> "D/X.stacks" (malloc'ed) and *kind "K"; NULL if the
 * name has no kind. */
char *kiln_stacks_path(const char *folded, char **kind);
/* The stacks of FOLDED's kind when its stacks file exists and matches it
 * (same total); NULL otherwise (a malformed file is reported once). */
kiln_stacks_t *kiln_stacks_load(const char *folded);
void kiln_stacks_free(kiln_stacks_t *s);
/* Frame ID with its inlined frames and lines (looked up on first use). */
const kiln_stacks_loc_t *kiln_stacks_expand(kiln_stacks_t *s, uint32_t id, uint32_t *n);
const char *kiln_stacks_module_path(const kiln_stacks_t *s, uint32_t module);
void kiln_stacks_module_span(const kiln_stacks_t *s, uint32_t module, uint64_t *lo, uint64_t *hi,
                             uint64_t *file_off, uint64_t *bias, const char **build_id);
/* Adds S's stacks to P (inlined frames as frames; opts: reverse, base,
 * lines) and sets each new node's where. */
void kiln_stacks_add(kiln_profile_t *p, kiln_stacks_t *s, const kiln_folded_opts_t *o);
/* NODE's "file:line" (not NUL-terminated), or NULL. */
const char *kiln_stacks_where(const kiln_profile_t *p, uint32_t node, size_t *len);
/* Appends NODE's "file.c:42" (base name) to B; false when unknown. */
bool kiln_stacks_where_short(const kiln_profile_t *p, uint32_t node, kiln_buf_t *b);

/* ------------------------------------------------------------ escape.c */
/* Appends NAME escaped for XML text and attributes: <>&"' as entities,
 * control characters and invalid UTF-8 as U+FFFD. With max_chars > 0 and a
 * longer name, keeps max_chars-2 characters and appends "..". */
void kiln_escape_xml(kiln_buf_t *b, const char *s, size_t len, size_t max_chars);
/* Appends NAME as a JSON string body (no quotes), invalid UTF-8 replaced. */
void kiln_escape_json(kiln_buf_t *b, const char *s, size_t len);
/* Appends NAME for a terminal: valid UTF-8 kept; C0, DEL and C1 controls
 * and every invalid byte (0x80-0x9f alone among them) become '?', so no
 * escape sequence of a frame name reaches the screen. */
void kiln_escape_term(kiln_buf_t *b, const char *s, size_t len);
/* Appends S with every byte outside printable ASCII (and the backslash)
 * as \xHH: for text from a peer (an HTTP reason phrase). */
void kiln_escape_bytes(kiln_buf_t *b, const char *s, size_t len);
/* Number of characters (code points after repair) in S. */
size_t kiln_escape_chars(const char *s, size_t len);

/* ------------------------------------------------------------ color.c */
typedef enum {
    KILN_PAL_HOT, KILN_PAL_MEM, KILN_PAL_IO, KILN_PAL_RED, KILN_PAL_GREEN,
    KILN_PAL_BLUE, KILN_PAL_AQUA, KILN_PAL_YELLOW, KILN_PAL_PURPLE,
    KILN_PAL_ORANGE
} kiln_palette_t;
int kiln_color_palette(const char *name, kiln_palette_t *out);
const char *kiln_color_palette_names(void);
/* Writes "rgb(r,g,b)" for a frame. With hash, the colour depends only on the
 * name; otherwise on a fixed-seed sequence (*seed), so output is stable. */
void kiln_color_frame(kiln_buf_t *b, kiln_palette_t pal, bool hash, const char *name,
                      size_t len, uint64_t *seed);
/* Differential colour: red for growth, blue for shrink, by |delta|/max. */
void kiln_color_diff(kiln_buf_t *b, double delta, double max_abs);

/* ------------------------------------------------------------ svg.c */
typedef struct kiln_svg_opts_s {
    const char *title, *subtitle, *countname, *nametype, *notes;
    double width, frame_height, font_size, font_width;
    double minwidth;       /* pixels, or percent of the total with minwidth_pct */
    bool minwidth_pct, minwidth_set;
    double factor;
    kiln_palette_t palette;
    bool hash, inverted, negate;
    long frame_budget;     /* when minwidth is not given: cap on frames drawn */
} kiln_svg_opts_t;
/* Draws P as a flamegraph.pl-compatible interactive SVG. 0 or -1. */
int kiln_svg_write(FILE *out, kiln_profile_t *p, const kiln_svg_opts_t *o);

/* ------------------------------------------------------------ svg_script.c */
/* NULL-terminated lists of lines. */
extern const char *const kiln_svg_script[];
extern const char *const kiln_svg_style[];

/* ------------------------------------------------------------ commands */
int kiln_flamegraph_main(int argc, char **argv);  /* flamegraph.c */
int kiln_diff_main(int argc, char **argv);        /* diff.c */
int kiln_top_main(int argc, char **argv);         /* top.c */
int kiln_tree_main(int argc, char **argv);        /* tree.c */
int kiln_convert_main(int argc, char **argv);     /* convert.c */
int kiln_record_main(int argc, char **argv);      /* record.c */
int kiln_leaks_main(int argc, char **argv);       /* leaks.c */
int kiln_push_main(int argc, char **argv);        /* push.c */
int kiln_dump_main(int argc, char **argv);        /* dump.c */
int kiln_lines_main(int argc, char **argv);       /* lines.c */

/* leaks.c: the leak report of every process found in PATHS (directories,
 * or leak/category folded files), MAX_SITES sites per category (<= 0: all).
 * *found says whether a failing leak was found (any leak; with category
 * files, definitely lost, and possibly lost with fail_possible). 0, or -1
 * after a kiln: line. */
typedef struct kiln_leaks_opts_s {
    long max_sites;
    bool fail_possible;
    bool quiet_missing; /* a directory without leak files is not an error */
} kiln_leaks_opts_t;
int kiln_leaks_print(FILE *out, const char *const *paths, int npaths,
                     const kiln_leaks_opts_t *o, bool *found);

/* top.c: prints the flat list of PATHS merged (one table): self and total
 * count and share per function, sorted by self (or by total with
 * KILN_TOP_BY_TOTAL), at most N rows (N <= 0: all). Malformed lines are
 * reported on stderr (fatal with KILN_TOP_STRICT). A directory in PATHS
 * reads its KIND files (NULL: cpu; see kiln_sets_expand). 0, or -1 after a
 * kiln: line. */
#define KILN_TOP_BY_TOTAL 1u
#define KILN_TOP_STRICT 2u
#define KILN_TOP_LINES 4u /* rows per function and source line (stacks files) */
int kiln_top_print(FILE *out, const char *const *paths, int npaths, int n, unsigned flags,
                   const char *kind);

/* speedscope.c / pprof.c: write P (read from a file of KIND, see
 * kiln_folded_kind) in the converted format to OUT. 0 or -1. */
int kiln_speedscope_write(FILE *out, const kiln_profile_t *p, const char *kind,
                          const char *profile_name);
int kiln_pprof_write(FILE *out, const kiln_profile_t *p, const char *kind);
/* The same with CPU samples also given as time (period_ns > 0: the sample
 * period; 0: unknown). speedscope: unit nanoseconds, weights scaled; pprof:
 * a second sample type cpu/nanoseconds. pprof written from stacks files
 * (P's inputs all had one) has mappings, addresses, inlined frames and
 * lines; otherwise one location per name. */
int kiln_speedscope_write_scaled(FILE *out, const kiln_profile_t *p, const char *kind,
                                 const char *profile_name, double period_ns);
int kiln_pprof_write_period(FILE *out, const kiln_profile_t *p, const char *kind, double period_ns);
/* What a count of KIND counts, for labels: "bytes" (*_bytes), "allocations"
 * (alloc_count), "blocks" (other *_count), else "samples". convert.c */
const char *kiln_convert_unit(const char *kind);

#endif
