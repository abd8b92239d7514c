/* suid_start — a program linking libkiln.a that starts profiling with
 * kiln_start(NULL) (no output directory): installed set-user-ID root by
 * test_outdir.sh and run by another user, it must not leave root-owned
 * files in that user's working directory. With an argument it names a
 * directory (kiln_options_t.out_dir) and writes there. Prints kiln_start's
 * return value. */
#include <kiln.h>
#include <stdio.h>

int main(int argc, char **argv) {
  kiln_options_t opts = {0};
  opts.mode = KILN_MODE_CPU;
  opts.quiet = 1;
  opts.out_dir = argc > 1 ? argv[1] : NULL;
  int rc = kiln_start(argc > 1 ? &opts : NULL);
  printf("kiln_start: %d\n", rc);
  return 0;
}
