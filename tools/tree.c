/* tree.c — `kiln tree`: the call tree as indented text, each node with its
 * share of all samples (and its self share), children heaviest first,
 * branches below --min pruned with a note of what was left out. The view to
 * paste into a review; the frames and numbers are the SVG's. */
#include "kiln.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char kiln_tree_usage[] =
    "usage: kiln tree [--min PCT] [--depth N] [--reverse] [--kind KIND] [--strict]\n"
    "                 [--lines] [FILE|DIR...]\n"
    "\n"
    "Prints the call tree, one frame a line, indented by depth:\n"
    "  [61.0%] serialize_response  (self 2.0%)\n"
    "    [42.0%] json_dumps\n"
    "Children come heaviest first; branches under PCT are left out (a line\n"
    "says how many and how much). Past 100 levels the indentation stops\n"
    "growing and each line starts with its depth: <DEPTH>.\n"
    "Several files are merged; a DIR is each process's run ('kiln top --help').\n"
    "\n"
    "  --min PCT       prune branches under PCT percent of all samples (1)\n"
    "  --depth N       show at most N levels below the root (all)\n"
    "  --reverse       merge from the leaves (callers under each function)\n"
    "  --kind KIND     the files a DIR stands for (cpu)\n"
    "  --strict        a malformed input line is an error, not a warning\n"
    "  --lines         one frame per function and source line (from the stacks\n"
    "                  file beside a kiln folded file; without it each frame\n"
    "                  shows its hottest line: \"at file.c:42\")\n"
    "  -h, --help      this help\n";

#define KILN_TREE_INDENT_MAX 100u

typedef struct kiln_tree_item_s {
    uint32_t node, depth; /* node KILN_NONE: a "N more" note */
    double share, more;   /* notes only */
} kiln_tree_item_t;

static void kiln_tree_name(kiln_buf_t *b, const kiln_name_t *nm)
{
    for (uint32_t i = 0; i < nm->len; i++) {
        unsigned char c = (unsigned char)nm->str[i];
        kiln_buf_addc(b, c < 0x20 || c == 0x7f ? '?' : (char)c);
    }
}

/* Pre-order with an explicit stack (stacks may be deeper than C's). */
static void kiln_tree_print(FILE *out, const kiln_profile_t *p, double min_pct, long max_depth)
{
    double all = p->nodes[0].total;
    kiln_buf_t line = {0};
    uint32_t *kids = NULL;
    size_t kids_cap = 0, top = 0, cap = 1024;
    kiln_tree_item_t *stack = kiln_util_xmalloc(cap * sizeof *stack);
    stack[top++] = (kiln_tree_item_t){0, 0, 0, 0};
    while (top) {
        kiln_tree_item_t it = stack[--top];
        line.len = 0;
        /* Indentation stops growing past KILN_TREE_INDENT_MAX levels (a
         * label says the depth), so a 100000-frame stack stays linear. */
        uint32_t indent = it.depth < KILN_TREE_INDENT_MAX ? it.depth : KILN_TREE_INDENT_MAX;
        for (uint32_t i = 0; i < indent; i++)
            kiln_buf_adds(&line, "  ");
        if (it.depth > KILN_TREE_INDENT_MAX)
            kiln_buf_printf(&line, "<%u> ", it.depth);
        if (it.node == KILN_NONE) {
            kiln_buf_printf(&line, "[%.1f%%] (%.0f more under %.3g%%)\n", it.share, it.more,
                            min_pct);
            fwrite(line.data, 1, line.len, out);
            continue;
        }
        const kiln_node_t *n = &p->nodes[it.node];
        kiln_buf_printf(&line, "[%.1f%%] ", 100 * n->total / all);
        kiln_tree_name(&line, &p->names.names[n->name]);
        size_t at = line.len;
        kiln_buf_adds(&line, "  at ");
        if (!kiln_stacks_where_short(p, it.node, &line))
            line.len = at;
        if (it.node == 0) {
            kiln_buf_adds(&line, "  (");
            kiln_util_fmt_count(&line, all, true);
            kiln_buf_addc(&line, ')');
        }
        if (n->self > 0 && n->child != KILN_NONE)
            kiln_buf_printf(&line, "  (self %.1f%%)", 100 * n->self / all);
        kiln_buf_addc(&line, '\n');
        fwrite(line.data, 1, line.len, out);
        if (max_depth >= 0 && it.depth >= (uint32_t)max_depth)
            continue;
        size_t k = kiln_profile_children_by_weight(p, it.node, &kids, &kids_cap);
        if (top + k + 1 > cap) {
            while (top + k + 1 > cap)
                cap *= 2;
            stack = kiln_util_xrealloc(stack, cap * sizeof *stack);
        }
        size_t shown = 0;
        double rest = 0;
        while (shown < k && 100 * p->nodes[kids[shown]].total / all >= min_pct)
            shown++;
        for (size_t i = shown; i < k; i++)
            rest += p->nodes[kids[i]].total;
        if (shown < k)
            stack[top++] = (kiln_tree_item_t){KILN_NONE, it.depth + 1, 100 * rest / all,
                                              (double)(k - shown)};
        for (size_t i = shown; i-- > 0;)
            stack[top++] = (kiln_tree_item_t){kids[i], it.depth + 1, 0, 0};
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
        {"reverse", no_argument, NULL, 'r'},
        {"strict", no_argument, NULL, 's'},
        {"kind", required_argument, NULL, 'k'},
        {"lines", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kiln_folded_opts_t fo = {0};
    double min_pct = 1;
    long depth = -1;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "", longopts, "tree",
                                 kiln_tree_usage)) != -1) {
        switch (c) {
        case 'm':
            if (kiln_util_parse_double(optarg, &min_pct) != 0 || min_pct > 100)
                kiln_util_usage_error("tree", "--min needs a percentage, not '%s'", optarg);
            break;
        case 'd': depth = kiln_util_opt_count("tree", "--depth", optarg); break;
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
        kiln_tree_print(stdout, &p, min_pct, depth);
        if (fflush(stdout) != 0 || ferror(stdout)) {
            kiln_util_err("<stdout>: write error");
            rc = -1;
        }
    }
    kiln_profile_free(&p);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
