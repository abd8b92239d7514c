/* tree.c — `kiln tree`: the call tree as indented text, each node with its
 * share of all samples (and its self share), children heaviest first,
 * branches below --min pruned with a note of what was left out. The view to
 * paste into a review; the frames and numbers are the SVG's. */
#include "kiln.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char kiln_tree_usage[] =
    "usage: kiln tree [--min PCT] [--depth N] [--max-lines N] [--reverse] [--kind KIND]\n"
    "                 [--strict] [--lines] [FILE|DIR...]\n"
    "\n"
    "Prints the call tree, one frame a line, indented by depth:\n"
    "  [61.0%] serialize_response  (self 2.0%)\n"
    "    [42.0%] json_dumps\n"
    "Children come heaviest first; branches under PCT are left out (a line\n"
    "says how many and how much). Past 32 levels the indentation stops\n"
    "growing and each line starts with its depth: <DEPTH>. A function calling\n"
    "itself N times in a row (nothing else in between) is one line, marked\n"
    "(xN: recursion, one line), and its callees follow at depth <DEPTH>.\n"
    "So the output stays proportional to the input.\n"
    "Several files are merged; a DIR is each process's run ('kiln top --help').\n"
    "\n"
    "  --min PCT       prune branches under PCT percent of all samples (1)\n"
    "  --depth N       show at most N levels below the root (all)\n"
    "  --max-lines N   stop after N lines, saying so (20000; 0 for all)\n"
    "  --reverse       merge from the leaves (callers under each function)\n"
    "  --kind KIND     the files a DIR stands for (cpu)\n"
    "  --strict        a malformed input line is an error, not a warning\n"
    "  --lines         one frame per function and source line (from the stacks\n"
    "                  file beside a kiln folded file; without it each frame\n"
    "                  shows its hottest line: \"at file.c:42\")\n"
    "  -h, --help      this help\n";

/* Output stays proportional to the input: indentation stops growing at
 * KILN_TREE_INDENT_MAX levels (deeper lines say their depth), a chain of
 * one function calling itself is one line, and at most --max-lines lines are
 * written. (A 4.9 MB folded file of one 2.45M-frame recursion used to give
 * 222 MB of indentation; it now gives one line.) */
#define KILN_TREE_INDENT_MAX 32u
#define KILN_TREE_LINES_DEFAULT 20000L

typedef struct kiln_tree_item_s {
    uint32_t node, depth; /* node KILN_NONE: a "N more" note; depth: frames below the root */
    uint32_t level;       /* lines above it in the drawn tree (indentation) */
    double share, more;   /* notes only */
} kiln_tree_item_t;

static void kiln_tree_name(kiln_buf_t *b, const kiln_name_t *nm)
{
    kiln_escape_term(b, nm->str, nm->len);
}

/* The last node of the run of NODE calling itself with nothing else in
 * between (one child, same name, no self count), and the run's length. */
static uint32_t kiln_tree_run(const kiln_profile_t *p, uint32_t node, uint32_t *len)
{
    *len = 1;
    for (;;) {
        const kiln_node_t *n = &p->nodes[node];
        uint32_t c = n->child;
        if (node == 0 || c == KILN_NONE || p->nodes[c].sibling != KILN_NONE || n->self != 0 ||
            p->nodes[c].name != n->name)
            return node;
        node = c;
        (*len)++;
    }
}

/* Pre-order with an explicit stack (stacks may be deeper than C's). */
static void kiln_tree_print(FILE *out, const kiln_profile_t *p, double min_pct, long max_depth,
                            long max_lines)
{
    double all = (double)p->nodes[0].total;
    kiln_buf_t line = {0};
    uint32_t *kids = NULL;
    size_t kids_cap = 0, top = 0, cap = 1024;
    long lines = 0;
    kiln_tree_item_t *stack = kiln_util_xmalloc(cap * sizeof *stack);
    stack[top++] = (kiln_tree_item_t){0, 0, 0, 0, 0};
    while (top) {
        if (max_lines > 0 && lines == max_lines) {
            fprintf(out, "(output stops at %ld lines; --max-lines 0 shows all)\n", max_lines);
            break;
        }
        lines++;
        kiln_tree_item_t it = stack[--top];
        line.len = 0;
        uint32_t indent = it.level < KILN_TREE_INDENT_MAX ? it.level : KILN_TREE_INDENT_MAX;
        for (uint32_t i = 0; i < indent; i++)
            kiln_buf_adds(&line, "  ");
        if (it.level > KILN_TREE_INDENT_MAX || it.depth != it.level)
            kiln_buf_printf(&line, "<%u> ", it.depth);
        if (it.node == KILN_NONE) {
            kiln_buf_printf(&line, "[%.1f%%] (%.0f more under %.3g%%)\n", it.share, it.more,
                            min_pct);
            fwrite(line.data, 1, line.len, out);
            continue;
        }
        uint32_t run;
        uint32_t last = kiln_tree_run(p, it.node, &run);
        if (max_depth >= 0 && it.depth + (uint64_t)run - 1 > (uint64_t)max_depth) {
            run = (uint32_t)(max_depth - it.depth + 1);
            last = it.node;
            for (uint32_t i = 1; i < run; i++)
                last = p->nodes[last].child;
        }
        const kiln_node_t *n = &p->nodes[it.node];
        kiln_buf_printf(&line, "[%.1f%%] ", 100 * (double)n->total / all);
        kiln_tree_name(&line, &p->names.names[n->name]);
        if (run > 1)
            kiln_buf_printf(&line, "  (x%u: recursion, one line)", run);
        size_t at = line.len;
        kiln_buf_adds(&line, "  at ");
        if (!kiln_stacks_where_short(p, it.node, &line))
            line.len = at;
        if (it.node == 0) {
            kiln_buf_adds(&line, "  (");
            kiln_profile_fmt(&line, p, p->nodes[0].total, true);
            kiln_buf_addc(&line, ')');
        }
        n = &p->nodes[last];
        if (n->self > 0 && n->child != KILN_NONE)
            kiln_buf_printf(&line, "  (self %.1f%%)", 100 * (double)n->self / all);
        kiln_buf_addc(&line, '\n');
        fwrite(line.data, 1, line.len, out);
        uint32_t depth = it.depth + run - 1;
        if (max_depth >= 0 && depth >= (uint32_t)max_depth)
            continue;
        size_t k = kiln_profile_children_by_weight(p, last, &kids, &kids_cap);
        if (top + k + 1 > cap) {
            while (top + k + 1 > cap)
                cap *= 2;
            stack = kiln_util_xrealloc(stack, cap * sizeof *stack);
        }
        size_t shown = 0;
        double rest = 0;
        while (shown < k && 100 * (double)p->nodes[kids[shown]].total / all >= min_pct)
            shown++;
        for (size_t i = shown; i < k; i++)
            rest += (double)p->nodes[kids[i]].total;
        if (shown < k)
            stack[top++] = (kiln_tree_item_t){KILN_NONE, depth + 1, it.level + 1,
                                              100 * rest / all, (double)(k - shown)};
        for (size_t i = shown; i-- > 0;)
            stack[top++] = (kiln_tree_item_t){kids[i], depth + 1, it.level + 1, 0, 0};
    }
    free(stack);
    free(kids);
    kiln_buf_free(&line);
}

int kiln_tree_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"min", required_argument, NULL, 'm'},
        {"depth", required_argument, NULL, 'd'},
        {"max-lines", required_argument, NULL, 'L'},
        {"reverse", no_argument, NULL, 'r'},
        {"strict", no_argument, NULL, 's'},
        {"kind", required_argument, NULL, 'k'},
        {"lines", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_folded_opts_t fo = {0};
    double min_pct = 1;
    long depth = -1, max_lines = KILN_TREE_LINES_DEFAULT;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "", longopts, "tree",
                                 kiln_tree_usage)) != -1) {
        switch (c) {
        case 'm':
            if (kiln_util_parse_double(optarg, &min_pct) != 0 || min_pct > 100)
                kiln_util_usage_error("tree", "--min needs a percentage, not '%s'", optarg);
            break;
        case 'd': depth = kiln_util_opt_count("tree", "--depth", optarg); break;
        case 'L': max_lines = kiln_util_opt_count("tree", "--max-lines", optarg); break;
        case 'r': fo.reverse = true; break;
        case 's': fo.strict = true; break;
        case 'k': fo.dir_kind = kiln_folded_opt_kind("tree", optarg); break;
        case 'l': fo.lines = true; break;
        }
    }
    kiln_profile_t p;
    kiln_profile_init(&p, false);
    int rc = kiln_folded_read(&p, (const char *const *)argv + optind, argc - optind, &fo);
    if (rc == 0 && !(p.nodes[0].total > 0)) {
        kiln_util_err("nothing to show: the total count is zero");
        rc = -1;
    }
    if (rc == 0) {
        kiln_tree_print(stdout, &p, min_pct, depth, max_lines);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            kiln_util_err("<stdout>: write error");
            rc = -1;
        }
    }
    kiln_profile_free(&p);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
