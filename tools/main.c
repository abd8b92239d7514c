/* main.c — the `kiln` command's entry: global options and dispatch to one
 * module per command. Runs offline; reads only folded files (record aside,
 * which starts the profiled program under the preload library, and dump,
 * which signals a running one). */
#include "kiln.h"

#include <stdlib.h>
#include <string.h>

typedef struct kiln_command_s {
    const char *name;
    int (*run)(int argc, char **argv); /* NULL: planned, not in this version */
    const char *summary;
} kiln_command_t;

static const kiln_command_t kiln_commands[] = {
    {"record", kiln_record_main, "run a program under the profiler, then summarise"},
    {"flamegraph", kiln_flamegraph_main, "folded stacks -> interactive flame graph SVG"},
    {"diff", kiln_diff_main, "two profiles -> 'stack before after' lines"},
    {"top", kiln_top_main, "self and total count per function"},
    {"tree", kiln_tree_main, "the call tree as indented text"},
    {"convert", kiln_convert_main, "export to speedscope JSON or pprof"},
    {"leaks", kiln_leaks_main, "memory still allocated at exit, per site (memcheck style)"},
    {"push", kiln_push_main, "send profiles to a Pyroscope-compatible server"},
    {"dump", kiln_dump_main, "ask a running process for a profile set now"},
    {"lines", kiln_lines_main, "source lines and inlined functions at addresses (addr2line -i)"},
};
#define KILN_NCOMMANDS (sizeof kiln_commands / sizeof kiln_commands[0])

static void kiln_main_help(FILE *out)
{
    fputs("usage: kiln COMMAND [OPTIONS] [ARGS]\n"
          "       kiln --help | --version\n"
          "\n"
          "kiln is an in-process profiler for C and C++ on Linux. 'kiln record'\n"
          "runs a program with libkiln.so preloaded; the other commands read the\n"
          "folded stack files it writes (or any folded file: perf +\n"
          "stackcollapse, async-profiler, py-spy...).\n"
          "\n"
          "commands:\n", out);
    for (size_t i = 0; i < KILN_NCOMMANDS; i++)
        fprintf(out, "  %-11s %s\n", kiln_commands[i].name, kiln_commands[i].summary);
    fputs("\n"
          "'kiln COMMAND --help' describes each command.\n"
          "\n"
          "A long-running program started with KILN_INTERVAL=SECONDS or\n"
          "KILN_DUMP_SIGNAL=SIG writes a set of profiles while it runs\n"
          "(PROG.PID.TAG.KIND.folded); 'kiln dump PID' asks for one now. A\n"
          "directory given to top, tree, flamegraph, convert or diff stands for\n"
          "the whole run of each process in it (--kind chooses the kind).\n"
          "\n"
          "Folded input: one stack per line, frames root first joined by ';', a\n"
          "space and a count ('main;parse;strlen 42'); two counts ('stack BEFORE\n"
          "AFTER') make a differential profile. Malformed lines are reported as\n"
          "'kiln: FILE:LINE: what' and skipped (--strict makes them fatal).\n"
          "\n"
          "kiln record writes into -o DIR, by default ./kiln-PROGRAM-YYYYmmdd-HHMMSS\n"
          "in the current directory, and sets KILN_HZ, KILN_OUT, KILN_UNWIND and\n"
          "KILN_MODE for the runtime.\n"
          "\n"
          "exit status: 0 ok, 1 failure (bad input, I/O), 2 usage error;\n"
          "kiln record exits with the program's status (128+N if killed by\n"
          "signal N, 127 if it could not be run).\n", out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        kiln_main_help(stderr);
        return KILN_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        kiln_main_help(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("kiln %s\n", KILN_VERSION);
        return 0;
    }
    if (cmd[0] == '-') {
        kiln_util_err("unknown option '%s' (see 'kiln --help')", cmd);
        return KILN_EXIT_USAGE;
    }
    for (size_t i = 0; i < KILN_NCOMMANDS; i++) {
        if (strcmp(cmd, kiln_commands[i].name) != 0)
            continue;
        if (!kiln_commands[i].run) {
            kiln_util_err("%s: not available in kiln %s yet", cmd, KILN_VERSION);
            return KILN_EXIT_USAGE;
        }
        return kiln_commands[i].run(argc - 1, argv + 1);
    }
    kiln_util_err("unknown command '%s' (see 'kiln --help')", cmd);
    return KILN_EXIT_USAGE;
}
