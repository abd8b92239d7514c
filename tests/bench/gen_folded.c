/* gen_folded.c — writes a synthetic folded profile for the renderer
 * benchmark: LINES stacks of C++-like frames (about 1.7 KB a line, like the
 * 171 MB / 100k-line file the issue measured flamegraph.pl on), each line a
 * distinct stack from a skewed random walk over a fixed call graph, so the
 * trie shares prefixes the way real profiles do. Deterministic for a seed.
 * usage: gen_folded LINES [SEED] > FILE */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KILN_GEN_FUNCS 6000
#define KILN_GEN_FANOUT 6

static uint64_t kiln_gen_state;

static uint64_t kiln_gen_next(void)
{
    uint64_t x = (kiln_gen_state += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static const char *const kiln_gen_ns[] = {"net", "db", "json", "http", "core", "util",
                                          "storage", "sched", "crypto", "render"};
static const char *const kiln_gen_verbs[] = {"process", "handle", "parse", "encode", "decode",
                                             "dispatch", "flush", "update", "lookup", "compute"};
static const char *const kiln_gen_nouns[] = {"Request", "Buffer", "Record", "Frame", "Batch",
                                             "Token", "Message", "Index", "Segment", "Node"};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gen_folded LINES [SEED]\n");
        return 2;
    }
    long lines = atol(argv[1]);
    kiln_gen_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 42;
    static char names[KILN_GEN_FUNCS][96];
    static uint16_t callees[KILN_GEN_FUNCS][KILN_GEN_FANOUT];
    for (int f = 0; f < KILN_GEN_FUNCS; f++) {
        uint64_t r = kiln_gen_next();
        snprintf(names[f], sizeof names[f], "%s::%s%u::%s%s<vector<int>>(Context&)",
                 kiln_gen_ns[r % 10], kiln_gen_nouns[(r >> 8) % 10], (unsigned)(f % 97),
                 kiln_gen_verbs[(r >> 16) % 10], kiln_gen_nouns[(r >> 24) % 10]);
        for (int k = 0; k < KILN_GEN_FANOUT; k++)
            callees[f][k] = (uint16_t)(kiln_gen_next() % KILN_GEN_FUNCS);
    }
    static char line[65536];
    for (long i = 0; i < lines; i++) {
        size_t len = 0;
        int depth = 20 + (int)(kiln_gen_next() % 30);
        int f = (int)(kiln_gen_next() % 8); /* a few entry points */
        len += (size_t)snprintf(line + len, sizeof line - len, "main");
        for (int d = 0; d < depth; d++) {
            /* Mostly the first callee: shared prefixes, as in real programs. */
            uint64_t r = kiln_gen_next() % 100;
            int k = r < 70 ? 0 : r < 85 ? 1 : r < 93 ? 2 : 3 + (int)(r % 3);
            f = callees[f][k];
            len += (size_t)snprintf(line + len, sizeof line - len, ";%s", names[f]);
        }
        len += (size_t)snprintf(line + len, sizeof line - len, " %u\n",
                                (unsigned)(1 + kiln_gen_next() % 100));
        fwrite(line, 1, len, stdout);
    }
    return ferror(stdout) ? 1 : 0;
}
