/* fuzz_folded.c — libFuzzer entry for the folded parser and everything that
 * reads its trie: the input is parsed as a folded file (plain, reversed,
 * re-rooted or as a flame chart, chosen by the first byte), explained, then
 * drawn as an SVG (hashed colours, chain palette, simplified names) and
 * converted to speedscope and pprof into a null stream. Built
 * with ASan and UBSan by 'make fuzz' and the bounded run in 'make test'. */
#include "kiln.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *kiln_fuzz_null;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (!kiln_fuzz_null)
        kiln_fuzz_null = fopen("/dev/null", "w");
    unsigned mode = data[0];
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
            .factor = 1, .palette = (mode & 64) ? KILN_PAL_CHAIN : KILN_PAL_HOT,
            .color_mode = (mode & 64) ? KILN_COLOR_HASH : KILN_COLOR_NAME,
            .short_names = (mode & 2) != 0, .negate = (mode & 2) != 0,
            .inverted = (mode & 128) != 0, .frame_budget = 2000,
        };
        kiln_finding_t *f;
        size_t nf = kiln_explain_profile(&p, 0, (mode & 1) ? "alloc_bytes" : "cpu", &f, 20);
        kiln_explain_free(f, nf);
        free(f);
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
