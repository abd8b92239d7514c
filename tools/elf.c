/* elf.c — what `kiln record` needs to know about the program it runs before
 * running it: the file execvp would pick, and whether it is a statically
 * linked ELF (no PT_INTERP: the dynamic loader, and so LD_PRELOAD, never
 * runs) that does not carry the kiln runtime itself. Reads headers only. */
#include "kiln.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

char *kiln_elf_resolve(const char *cmd)
{
    struct stat st;
    if (strchr(cmd, '/'))
        return kiln_util_xstrdup(cmd);
    /* glibc's execvp: PATH, or its default when unset; an empty entry is
     * the current directory. */
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    for (const char *p = path;; p++) {
        size_t n = strcspn(p, ":");
        kiln_buf_t cand = {0};
        kiln_buf_printf(&cand, "%.*s%s%s", (int)n, p, n ? "/" : "", cmd);
        if (access(cand.data, X_OK) == 0 && stat(cand.data, &st) == 0 && S_ISREG(st.st_mode))
            return cand.data;
        kiln_buf_free(&cand);
        p += n;
        if (!*p)
            break;
    }
    return NULL;
}

/* PT_INTERP among the program headers of the ELF image MAP (SIZE bytes):
 * 1 present, 0 absent, -1 not an ELF kiln can read. */
static int kiln_elf_has_interp(const unsigned char *map, size_t size)
{
    if (size < EI_NIDENT || memcmp(map, ELFMAG, SELFMAG) != 0)
        return -1;
    uint64_t phoff, phnum, phentsize;
    bool is64 = map[EI_CLASS] == ELFCLASS64;
    if (is64 && size >= sizeof(Elf64_Ehdr)) {
        const Elf64_Ehdr *eh = (const Elf64_Ehdr *)map;
        phoff = eh->e_phoff, phnum = eh->e_phnum, phentsize = eh->e_phentsize;
    } else if (map[EI_CLASS] == ELFCLASS32 && size >= sizeof(Elf32_Ehdr)) {
        const Elf32_Ehdr *eh = (const Elf32_Ehdr *)map;
        phoff = eh->e_phoff, phnum = eh->e_phnum, phentsize = eh->e_phentsize;
    } else {
        return -1;
    }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (map[EI_DATA] != ELFDATA2LSB)
        return -1;
#else
    if (map[EI_DATA] != ELFDATA2MSB)
        return -1;
#endif
    size_t need = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (phentsize < need || phoff > size || phnum > (size - phoff) / phentsize)
        return -1;
    for (uint64_t i = 0; i < phnum; i++) {
        const unsigned char *ph = map + phoff + i * phentsize;
        uint32_t type = is64 ? ((const Elf64_Phdr *)ph)->p_type : ((const Elf32_Phdr *)ph)->p_type;
        if (type == PT_INTERP)
            return 1;
    }
    return 0;
}

int kiln_elf_static_without_kiln(const char *path)
{
    /* The dynamic loader run as a program has no PT_INTERP either. */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (strncmp(base, "ld-", 3) == 0 || strncmp(base, "ld.so", 5) == 0 ||
        strncmp(base, "ld64.so", 7) == 0)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < EI_NIDENT) {
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -1;
    int interp = kiln_elf_has_interp(map, size);
    int rc = interp == 0 ? 1 : interp == 1 ? 0 : -1;
    /* libkiln.a linked in reads KILN_OUT: then it profiles itself. */
    if (rc == 1 && memmem(map, size, "KILN_OUT", 8))
        rc = 0;
    munmap(map, size);
    return rc;
}
