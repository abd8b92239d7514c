/* fuzz_sets.c — libFuzzer entry for what the tool parses in an output
 * directory: file names (kiln_sets_parse, kiln_folded_kind, temporaries),
 * the dump-signal grammar shared with the runtime, and a directory of
 * those names expanded into each process's run (kiln_sets_expand). Each
 * input line is one name. Built with ASan and UBSan; the bounded run is
 * part of 'make test'. */
#include "kiln.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char kiln_fuzz_dir[80];

static void kiln_fuzz_clear(void)
{
    DIR *d = opendir(kiln_fuzz_dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        unlinkat(dirfd(d), de->d_name, 0);
    }
    if (d)
        closedir(d);
}

static void kiln_fuzz_name(const char *name, size_t len)
{
    kiln_sets_name_t nm;
    if (kiln_sets_parse(name, &nm)) {
        /* The parts stay inside the name and in order. */
        if (nm.prog_len == 0 || nm.prog_len >= len || nm.rest_off > len || nm.pid < 0 ||
            (nm.tag_len && (nm.tag_off <= nm.prog_len || nm.tag_off + nm.tag_len >= nm.rest_off)))
            abort();
    }
    kiln_folded_kind(name);
    long pid = kiln_sets_stale_pid(name);
    if (pid == 0 || pid < -1)
        abort();
    int sig = kiln_contract_signal_parse(name);
    if (sig < 0 || sig > SIGRTMAX || sig == SIGKILL || sig == SIGPROF || sig == SIGTERM)
        abort();
    if (sig) {
        /* What the grammar names, it reads back. */
        char spelled[16];
        kiln_contract_signal_name(sig, spelled, sizeof spelled);
        if (kiln_contract_signal_parse(spelled) != sig)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!kiln_fuzz_dir[0]) {
        /* Under TMPDIR, which the test removes afterwards. */
        const char *tmp = getenv("TMPDIR");
        snprintf(kiln_fuzz_dir, sizeof kiln_fuzz_dir, "%s/kiln-fuzz-sets.%d",
                 tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp", (int)getpid());
        mkdir(kiln_fuzz_dir, 0700);
    }
    if (size == 0)
        return 0;
    const char *kinds[] = {"cpu", "alloc_bytes", "live_bytes", "leak_count"};
    const char *kind = kinds[data[0] & 3];
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    int made = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        size_t len = strlen(line);
        kiln_fuzz_name(line, len);
        /* Also a file in the directory: names with no '/' that fit. */
        if (len == 0 || len > 200 || strchr(line, '/') || strcmp(line, ".") == 0 ||
            strcmp(line, "..") == 0 || made >= 32)
            continue;
        char path[300];
        snprintf(path, sizeof path, "%s/%s", kiln_fuzz_dir, line);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            if (data[0] & 4) {
                ssize_t w = write(fd, "main;f 1\n", 9);
                (void)w;
            }
            close(fd);
            made++;
        }
    }
    const char *dir = kiln_fuzz_dir, **out;
    int nout;
    unsigned char *from_dir;
    fflush(stderr);
    if (kiln_sets_expand(&dir, 1, kind, &out, &nout, &from_dir) == 0) {
        for (int i = 0; i < nout; i++)
            if (!from_dir[i] || strncmp(out[i], kiln_fuzz_dir, strlen(kiln_fuzz_dir)) != 0)
                abort();
        kiln_sets_free(out, nout);
        free(from_dir);
    }
    kiln_fuzz_clear();
    free(text);
    return 0;
}
