/* dwarf.c — source lines and inlined frames of one module's code address,
 * from its DWARF, with elfutils' libdw (the library heaptrack and systemtap
 * use: a hand-written DWARF reader would be thousands of lines). The module
 * is opened offline at its link-time addresses, which are the addresses the
 * runtime's stacks file records; its debug information may be in the file
 * itself or in a separate debug file (build-id or .gnu_debuglink, found by
 * libdwfl's standard search). A file whose build-id is not the one recorded
 * (rebuilt since the run) is not used: wrong lines are worse than none. */
#include "kiln.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>

struct kiln_dwarf_s {
    Dwfl *dwfl;
    Dwfl_Module *mod;
    Dwarf_Addr place; /* where libdwfl placed the file, less its link-time address */
};

/* The C++ runtime's demangler (the tool links libstdc++ for it). */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *n, int *status);

static char *kiln_dwarf_debuginfo_path;
static const Dwfl_Callbacks kiln_dwarf_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &kiln_dwarf_debuginfo_path,
};

kiln_dwarf_t *kiln_dwarf_open(const char *path, const char *build_id)
{
    Dwfl *dwfl = dwfl_begin(&kiln_dwarf_callbacks);
    if (!dwfl)
        return NULL;
    Dwfl_Module *mod = dwfl_report_offline(dwfl, "", path, -1);
    dwfl_report_end(dwfl, NULL, NULL);
    if (!mod) {
        dwfl_end(dwfl);
        return NULL;
    }
    if (build_id && build_id[0] && strcmp(build_id, "-") != 0) {
        const unsigned char *bits;
        GElf_Addr vaddr;
        int n = dwfl_module_build_id(mod, &bits, &vaddr);
        char hex[160];
        if (n > 0 && (size_t)n * 2 < sizeof hex) {
            for (int i = 0; i < n; i++)
                snprintf(hex + 2 * i, 3, "%02x", bits[i]);
            if (strcmp(hex, build_id) != 0) {
                dwfl_end(dwfl);
                return NULL;
            }
        }
    }
    /* Offline, a shared object is placed at an address of libdwfl's
     * choosing; the stacks file has link-time addresses. */
    GElf_Addr place = 0;
    if (!dwfl_module_getelf(mod, &place)) {
        dwfl_end(dwfl);
        return NULL;
    }
    kiln_dwarf_t *d = kiln_util_xcalloc(1, sizeof *d);
    d->dwfl = dwfl;
    d->mod = mod;
    d->place = place;
    return d;
}

void kiln_dwarf_close(kiln_dwarf_t *d)
{
    if (!d)
        return;
    dwfl_end(d->dwfl);
    free(d);
}

/* A function DIE's name as people read it: the demangled linkage name
 * (through abstract origins and specifications), else DW_AT_name. */
static char *kiln_dwarf_die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
    if (!linkage)
        linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
    if (linkage) {
        int status = -1;
        char *d = __cxa_demangle(linkage, NULL, NULL, &status);
        if (d && status == 0)
            return d;
        free(d);
        return kiln_util_xstrdup(linkage);
    }
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
    if (!name)
        return NULL;
    /* No linkage name (GCC leaves it out of functions that exist only
     * inlined, lambdas among them): qualify the name with the scopes
     * around its definition, the demangler's way ("ns::Class::f",
     * "hot_lambda::{lambda}::operator()"). */
    Dwarf_Die origin, *def = die, *scopes = NULL;
    if (dwarf_attr(die, DW_AT_abstract_origin, &attr) && dwarf_formref_die(&attr, &origin))
        def = &origin;
    if (dwarf_attr(def, DW_AT_specification, &attr) && dwarf_formref_die(&attr, &origin))
        def = &origin;
    kiln_buf_t b = {0};
    int n = dwarf_getscopes_die(def, &scopes);
    for (int i = n - 1; i >= 1; i--) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_namespace && tag != DW_TAG_class_type && tag != DW_TAG_structure_type &&
            tag != DW_TAG_union_type && tag != DW_TAG_subprogram)
            continue;
        const char *scope = dwarf_diename(&scopes[i]);
        kiln_buf_adds(&b, scope ? scope : tag == DW_TAG_namespace ? "(anonymous namespace)" : "{lambda}");
        kiln_buf_adds(&b, "::");
    }
    free(scopes);
    kiln_buf_adds(&b, name);
    return b.data;
}

static void kiln_dwarf_push(kiln_dwarf_frame_t **out, size_t *n, size_t *cap, char *name,
                            const char *comp_dir, const char *file, int line)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *out = kiln_util_xrealloc(*out, *cap * sizeof **out);
    }
    (*out)[*n].name = name;
    /* Relative names are relative to the compilation directory. */
    if (file && file[0] != '/' && comp_dir) {
        kiln_buf_t b = {0};
        kiln_buf_printf(&b, "%s/%s", comp_dir, file);
        (*out)[*n].file = b.data;
    } else {
        (*out)[*n].file = file ? kiln_util_xstrdup(file) : NULL;
    }
    (*out)[*n].line = line;
    (*n)++;
}

size_t kiln_dwarf_lookup(kiln_dwarf_t *d, uint64_t addr, kiln_dwarf_frame_t **out)
{
    *out = NULL;
    size_t n = 0, cap = 0;
    if (!d)
        return 0;
    addr += d->place;
    const char *file = NULL;
    int line = 0;
    Dwfl_Line *dl = dwfl_module_getsrc(d->mod, addr);
    if (dl)
        file = dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL);
    if (line <= 0) /* line 0: "no source line" (code without debug info) */
        file = NULL, line = 0;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(d->mod, addr, &bias);
    Dwarf_Die *scopes = NULL;
    int nscopes = cu ? dwarf_getscopes(cu, addr - bias, &scopes) : 0;
    Dwarf_Attribute cattr;
    const char *comp_dir = cu ? dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &cattr)) : NULL;
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    if (cu && dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
        files = NULL;
    /* dwarf_getscopes gives the innermost function scope at ADDR (after an
     * inlined subroutine it goes on into the inlined function's abstract
     * definition); the concrete chain of callers around an inlined instance
     * comes from its own scopes (dwarf_getscopes_die), as eu-addr2line -i
     * walks it. Innermost first: each inlined subroutine gets the current
     * line, and its call site becomes the line of the function around it. */
    Dwarf_Die *chain = NULL;
    int nchain = 0;
    for (int i = 0; i < nscopes; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag == DW_TAG_subprogram) {
            chain = &scopes[i];
            nchain = 1;
            break;
        }
        if (tag == DW_TAG_inlined_subroutine) {
            Dwarf_Die inl = scopes[i];
            free(scopes);
            scopes = NULL;
            nscopes = dwarf_getscopes_die(&inl, &scopes);
            chain = scopes;
            nchain = nscopes > 0 ? nscopes : 0;
            break;
        }
    }
    for (int i = 0; i < nchain; i++) {
        int tag = dwarf_tag(&chain[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
            continue;
        char *name = kiln_dwarf_die_name(&chain[i]);
        if (!name)
            name = kiln_util_xstrdup("??");
        kiln_dwarf_push(out, &n, &cap, name, comp_dir, file, line);
        if (tag == DW_TAG_subprogram)
            break;
        Dwarf_Attribute attr;
        Dwarf_Word cfile = 0, cline = 0;
        dwarf_formudata(dwarf_attr(&chain[i], DW_AT_call_file, &attr), &cfile);
        dwarf_formudata(dwarf_attr(&chain[i], DW_AT_call_line, &attr), &cline);
        file = files && cfile < nfiles && cline > 0 ? dwarf_filesrc(files, cfile, NULL, NULL) : NULL;
        line = file ? (int)cline : 0;
    }
    free(scopes);
    /* No function DIE holds ADDR: whatever line row matched belongs to
     * code the linker dropped (its rows are left at address 0), not this. */
    /* Callers want the outermost first. */
    for (size_t i = 0; i < n / 2; i++) {
        kiln_dwarf_frame_t t = (*out)[i];
        (*out)[i] = (*out)[n - 1 - i];
        (*out)[n - 1 - i] = t;
    }
    return n;
}

void kiln_dwarf_frames_free(kiln_dwarf_frame_t *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(f[i].name);
        free(f[i].file);
    }
    free(f);
}
