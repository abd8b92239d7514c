/* flamegraph.c — `kiln flamegraph`: options in the spelling flamegraph.pl and
 * inferno users know, the parse, and the SVG written whole (stdout, or -o
 * through a temporary file). */
#include "kiln.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char kiln_flamegraph_usage[] =
    "usage: kiln flamegraph [OPTIONS] [FILE|DIR...]\n"
    "\n"
    "Draws folded stacks (stdin when no FILE; several files are merged) as one\n"
    "self-contained interactive SVG: click to zoom, Ctrl-F to search by regex.\n"
    "Lines with two counts ('stack BEFORE AFTER', from 'kiln diff') make a\n"
    "differential graph: widths from AFTER, red where a frame grew, blue where\n"
    "it shrank. A DIR is each process's run ('kiln top --help').\n"
    "\n"
    "  -o, --output FILE   write FILE (appears whole) instead of stdout\n"
    "  --title TEXT        title (default: Flame Graph / Icicle Graph / Flame Chart)\n"
    "  --subtitle TEXT     second title line\n"
    "  --width PX          image width (1200)\n"
    "  --height PX         frame height (16)\n"
    "  --minwidth W        omit frames narrower than W pixels, or W% of the\n"
    "                      total with a % sign (default 0.1 px, raised as needed\n"
    "                      to keep the SVG to about 16000 frames)\n"
    "  --fontsize PT       font size (12)\n"
    "  --fontwidth F       average glyph width / font size (0.59)\n"
    "  --countname NAME    count unit in tooltips (samples)\n"
    "  --nametype TEXT     details line prefix (Function:)\n"
    "  --colors PALETTE    hot, mem, io, red, green, blue, aqua, yellow, purple,\n"
    "                      orange (hot)\n"
    "  --hash              colour by name: the same function, the same colour\n"
    "  --reverse           merge from the leaves (stacks reversed)\n"
    "  --inverted          icicle graph: root at the top\n"
    "  --flamechart        keep input order (time), merge only adjacent stacks\n"
    "  --negate            differential: widths from BEFORE, hues swapped\n"
    "  --factor F          multiply the counts shown in tooltips by F\n"
    "  --notes TEXT        embed TEXT in the SVG (<desc id=\"notes\">)\n"
    "  --base SYM          re-root at frame SYM: keep only stacks through it\n"
    "  --kind KIND         the files a DIR stands for (cpu)\n"
    "  --strict            a malformed input line is an error, not a warning\n"
    "  --lines             one frame per function and source line (\"f file.c:42\"),\n"
    "                      from the stacks file beside a kiln folded file\n"
    "  -h, --help          this help\n";

enum {
    KILN_FG_TITLE = 256, KILN_FG_SUBTITLE, KILN_FG_WIDTH, KILN_FG_HEIGHT, KILN_FG_MINWIDTH,
    KILN_FG_FONTSIZE, KILN_FG_FONTWIDTH, KILN_FG_COUNTNAME, KILN_FG_NAMETYPE, KILN_FG_COLORS,
    KILN_FG_HASH, KILN_FG_REVERSE, KILN_FG_INVERTED, KILN_FG_FLAMECHART, KILN_FG_NEGATE,
    KILN_FG_FACTOR, KILN_FG_NOTES, KILN_FG_BASE, KILN_FG_STRICT, KILN_FG_KIND, KILN_FG_LINES,
};

static const struct option kiln_flamegraph_longopts[] = {
    {"output", required_argument, NULL, 'o'},
    {"title", required_argument, NULL, KILN_FG_TITLE},
    {"subtitle", required_argument, NULL, KILN_FG_SUBTITLE},
    {"width", required_argument, NULL, KILN_FG_WIDTH},
    {"height", required_argument, NULL, KILN_FG_HEIGHT},
    {"minwidth", required_argument, NULL, KILN_FG_MINWIDTH},
    {"fontsize", required_argument, NULL, KILN_FG_FONTSIZE},
    {"fontwidth", required_argument, NULL, KILN_FG_FONTWIDTH},
    {"countname", required_argument, NULL, KILN_FG_COUNTNAME},
    {"nametype", required_argument, NULL, KILN_FG_NAMETYPE},
    {"colors", required_argument, NULL, KILN_FG_COLORS},
    {"hash", no_argument, NULL, KILN_FG_HASH},
    {"reverse", no_argument, NULL, KILN_FG_REVERSE},
    {"inverted", no_argument, NULL, KILN_FG_INVERTED},
    {"flamechart", no_argument, NULL, KILN_FG_FLAMECHART},
    {"negate", no_argument, NULL, KILN_FG_NEGATE},
    {"factor", required_argument, NULL, KILN_FG_FACTOR},
    {"notes", required_argument, NULL, KILN_FG_NOTES},
    {"base", required_argument, NULL, KILN_FG_BASE},
    {"strict", no_argument, NULL, KILN_FG_STRICT},
    {"kind", required_argument, NULL, KILN_FG_KIND},
    {"lines", no_argument, NULL, KILN_FG_LINES},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* A positive number option, or a usage error naming it. */
static double kiln_flamegraph_positive(const char *opt, const char *arg, double max)
{
    double v;
    if (kiln_util_parse_double(arg, &v) != 0 || strchr(arg, '%') || !(v > 0) || v > max)
        kiln_util_usage_error("flamegraph", "%s needs a positive number, not '%s'", opt, arg);
    return v;
}

int kiln_flamegraph_main(int argc, char **argv)
{
    kiln_svg_opts_t o = {
        .title = NULL, .countname = "samples", .nametype = "Function:",
        .width = 1200, .frame_height = 16, .font_size = 12, .font_width = 0.59,
        .minwidth = 0.1, .factor = 1, .palette = KILN_PAL_HOT, .frame_budget = 16000,
    };
    kiln_folded_opts_t fo = {0};
    bool flamechart = false, countname_set = false;
    const char *output = NULL;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "o:", kiln_flamegraph_longopts, "flamegraph",
                                 kiln_flamegraph_usage)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case KILN_FG_TITLE: o.title = optarg; break;
        case KILN_FG_SUBTITLE: o.subtitle = optarg; break;
        case KILN_FG_WIDTH: o.width = kiln_flamegraph_positive("--width", optarg, 1e6); break;
        case KILN_FG_HEIGHT:
            o.frame_height = kiln_flamegraph_positive("--height", optarg, 1e4);
            break;
        case KILN_FG_FONTSIZE:
            o.font_size = kiln_flamegraph_positive("--fontsize", optarg, 1e3);
            break;
        case KILN_FG_FONTWIDTH:
            o.font_width = kiln_flamegraph_positive("--fontwidth", optarg, 10);
            break;
        case KILN_FG_MINWIDTH:
            if (kiln_util_parse_double(optarg, &o.minwidth) != 0)
                kiln_util_usage_error("flamegraph", "--minwidth needs pixels or a percentage, "
                                      "not '%s'", optarg);
            o.minwidth_pct = strchr(optarg, '%') != NULL;
            o.minwidth_set = true;
            break;
        case KILN_FG_COUNTNAME: o.countname = optarg; countname_set = true; break;
        case KILN_FG_NAMETYPE: o.nametype = optarg; break;
        case KILN_FG_COLORS:
            if (kiln_color_palette(optarg, &o.palette) != 0)
                kiln_util_usage_error("flamegraph", "unknown palette '%s' (known: %s)", optarg,
                                      kiln_color_palette_names());
            break;
        case KILN_FG_HASH: o.hash = true; break;
        case KILN_FG_REVERSE: fo.reverse = true; break;
        case KILN_FG_INVERTED: o.inverted = true; break;
        case KILN_FG_FLAMECHART: flamechart = true; break;
        case KILN_FG_NEGATE: fo.negate = o.negate = true; break;
        case KILN_FG_FACTOR:
            o.factor = kiln_flamegraph_positive("--factor", optarg, 1e300);
            break;
        case KILN_FG_NOTES: o.notes = optarg; break;
        case KILN_FG_BASE:
            if (!*optarg)
                kiln_util_usage_error("flamegraph", "--base needs a frame name");
            fo.base = optarg;
            break;
        case KILN_FG_STRICT: fo.strict = true; break;
        case KILN_FG_KIND: fo.dir_kind = kiln_folded_opt_kind("flamegraph", optarg); break;
        case KILN_FG_LINES: fo.lines = true; break;
        }
    }
    if (!o.title)
        o.title = flamechart ? "Flame Chart" : o.inverted ? "Icicle Graph" : "Flame Graph";
    /* The unit from the profile kind: a byte profile counts bytes. */
    char *kind = NULL;
    if (!countname_set && fo.dir_kind)
        o.countname = kiln_convert_unit(fo.dir_kind);
    else if (!countname_set && optind < argc) {
        char *stacks = kiln_stacks_path(argv[optind], &kind);
        if (stacks)
            o.countname = kiln_convert_unit(kind);
        free(stacks);
    }

    kiln_profile_t p;
    kiln_profile_init(&p, flamechart);
    int rc = kiln_folded_read(&p, (const char *const *)argv + optind, argc - optind, &fo);
    if (rc == 0) {
        kiln_out_t out;
        rc = kiln_out_open(&out, output);
        if (rc == 0)
            rc = kiln_out_close(&out, kiln_svg_write(out.fp, &p, &o));
    }
    kiln_profile_free(&p);
    free(kind);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
