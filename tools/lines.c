/* lines.c — `kiln lines`: what the tool's DWARF reading (dwarf.c) finds at
 * code addresses of a file, printed as `addr2line -i -f -C` prints them
 * (innermost inlined function first, each as a name line and a file:line
 * line), so that the two can be compared and a reader can check a frame. */
#include "kiln.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char kiln_lines_usage[] =
    "usage: kiln lines -e FILE ADDR...\n"
    "\n"
    "Prints the functions (inlined ones first) and source lines at each ADDR\n"
    "(hex, the file's link-time address, as in a stacks file or addr2line) of\n"
    "FILE, from its DWARF or its separate debug file; \"?\?\" and \"?\?:0\" when\n"
    "nothing is known (as addr2line prints it).\n"
    "\n"
    "  -e, --exe FILE  the ELF file (program or shared library)\n"
    "  -h, --help      this help\n";

int kiln_lines_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"exe", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *exe = NULL;
    int c;
    while ((c = kiln_util_getopt(argc, argv, "e:", longopts, "lines", kiln_lines_usage)) != -1)
        if (c == 'e')
            exe = optarg;
    if (!exe)
        kiln_util_usage_error("lines", "-e FILE is required");
    if (optind == argc)
        kiln_util_usage_error("lines", "no address given");
    kiln_dwarf_t *d = kiln_dwarf_open(exe, NULL);
    if (!d) {
        kiln_util_err("%s: cannot read it as an ELF file", exe);
        return KILN_EXIT_FAIL;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        char *end;
        errno = 0;
        unsigned long long addr = strtoull(argv[i], &end, 16);
        if (end == argv[i] || *end || errno) {
            kiln_util_err("lines: '%s' is not a hex address", argv[i]);
            rc = -1;
            break;
        }
        kiln_dwarf_frame_t *f;
        size_t n = kiln_dwarf_lookup(d, addr, &f);
        if (n == 0)
            printf("?\?\n?\?:?\n");
        for (size_t k = n; k-- > 0;) {
            if (f[k].file)
                printf("%s\n%s:%d\n", f[k].name ? f[k].name : "?\?", f[k].file, f[k].line);
            else
                printf("%s\n?\?:?\n", f[k].name ? f[k].name : "?\?");
        }
        kiln_dwarf_frames_free(f, n);
    }
    kiln_dwarf_close(d);
    return rc == 0 ? 0 : KILN_EXIT_FAIL;
}
