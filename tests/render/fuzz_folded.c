/* fuzz_folded.c — libFuzzer entry for the folded parser and everything that
 * reads its trie: the input is parsed as a folded file (plain, reversed,
 * re-rooted or as a flame chart, chosen by the first byte), then drawn as
 * an SVG and converted to speedscope and pprof into a null stream. An
 * input whose text starts "kiln-stacks" is a stacks file instead (parsed
 * beside a one-line folded file; when its total matches, read, expanded
 * and converted). Built with ASan and UBSan by 'make fuzz' and the bounded
 * run in 'make test'. */
#include "kiln.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *kiln_fuzz_null;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (!kiln_fuzz_null)
        kiln_fuzz_null = fopen("/dev/null", "w");
    unsigned mode = data[0];
    if (size > 12 && memcmp(data + 1, "kiln-stacks", 11) == 0) {
        static char dir[64];
        if (!dir[0]) {
            /* In the current directory: the test runs the fuzzer in its own. */
            snprintf(dir, sizeof dir, "kiln-fuzz-stacks.XXXXXX");
            if (!mkdtemp(dir))
                abort();
        }
        char sp[128], fpth[128];
        snprintf(sp, sizeof sp, "%s/p.1.stacks", dir);
        snprintf(fpth, sizeof fpth, "%s/p.1.cpu.folded", dir);
        FILE *s = fopen(sp, "w"), *f = fopen(fpth, "w");
        if (!s || !f)
            abort();
        fwrite(data + 1, 1, size - 1, s);
        fprintf(f, "a 3\n"); /* stacks totalling 3 are read instead */
        fclose(s);
        fclose(f);
        kiln_profile_t p;
        kiln_profile_init(&p, false);
        kiln_folded_opts_t fo = {.lines = mode & 1, .reverse = (mode & 2) != 0};
        const char *paths[] = {fpth};
        if (kiln_folded_read(&p, paths, 1, &fo) == 0) {
            kiln_speedscope_write(kiln_fuzz_null, &p, "cpu", "fuzz");
            kiln_pprof_write(kiln_fuzz_null, &p, "cpu");
        }
        kiln_profile_free(&p);
        unlink(sp);
        unlink(fpth);
        return 0;
    }
    FILE *fp = fmemopen((void *)(data + 1), size - 1 ? size - 1 : 1, "r");
    if (!fp || size == 1) {
        if (fp)
            fclose(fp);
        return 0;
    }
    kiln_folded_opts_t fo = {
        .reverse = mode & 1, .negate = mode & 2, .base = (mode & 4) ? "b" : NULL,
        .strict = (mode & 32) != 0,
    };
    kiln_profile_t p;
    kiln_profile_init(&p, (mode & 8) != 0);
    fflush(stderr);
    if (kiln_folded_read_fp(&p, fp, "fuzz", &fo) == 0) {
        kiln_svg_opts_t o = {
            .title = "fuzz", .countname = "samples", .nametype = "Function:",
            .width = 1200, .frame_height = 16, .font_size = 12, .font_width = 0.59,
            .minwidth = (mode & 16) ? 0 : 0.1, .minwidth_set = (mode & 16) != 0,
            .factor = 1, .palette = KILN_PAL_HOT, .hash = (mode & 64) != 0,
            .inverted = (mode & 128) != 0, .frame_budget = 2000,
        };
        kiln_svg_write(kiln_fuzz_null, &p, &o);
        if (!p.has_delta) {
            kiln_speedscope_write(kiln_fuzz_null, &p, "cpu", "fuzz");
            kiln_pprof_write(kiln_fuzz_null, &p, "alloc_bytes");
        }
    }
    fclose(fp);
    kiln_profile_free(&p);
    return 0;
}
