/* gen_wide.c — writes LINES distinct folded stacks (a wide and deep profile
 * over a fixed random call graph of short C++-like names; deterministic),
 * the input of the report's scale test. usage: gen_wide LINES > FILE */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define KILN_WIDE_FUNCS 3000

static uint64_t kiln_wide_state = 7;

static uint64_t kiln_wide_next(void)
{
    uint64_t x = (kiln_wide_state += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gen_wide LINES\n");
        return 2;
    }
    long lines = atol(argv[1]);
    static uint16_t callees[KILN_WIDE_FUNCS][8];
    for (int f = 0; f < KILN_WIDE_FUNCS; f++)
        for (int k = 0; k < 8; k++)
            callees[f][k] = (uint16_t)(kiln_wide_next() % KILN_WIDE_FUNCS);
    /* Line i's stack: a walk whose choices are the base-8 digits of i
     * (so every line is distinct), under one of six entry points. */
    for (long i = 0; i < lines; i++) {
        int f = (int)(i % 6);
        long code = i / 6;
        printf("main;ns%d::step%d", f % 17, f);
        int depth = 8 + (int)(kiln_wide_next() % 10);
        for (int d = 0; d < depth; d++) {
            int k = d < 7 ? (int)(code % 8) : (int)(kiln_wide_next() % 3);
            if (d < 7)
                code /= 8;
            f = callees[f][k];
            printf(";ns%d::step%d", f % 17, f);
        }
        printf(" %u\n", (unsigned)(1 + kiln_wide_next() % 50));
    }
    return ferror(stdout) ? 1 : 0;
}
