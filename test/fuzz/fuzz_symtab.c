/* fuzz_symtab.c -- symbolize/'s symbol index on any bytes read as an ELF
 * file (through libdwfl, as firn-agent reads the files processes map): no
 * crash; an index that copied its names names every probed address as the
 * index over the file's own strings does, and still does once the file is
 * closed (the agent's way with files without DWARF; ASan sees any name
 * left pointing into the closed file).  Seeded with a small real
 * executable, with and without DWARF (test/fuzz/CMakeLists.txt). */
#include <elfutils/libdwfl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "symbolize/symbolize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PROBES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-symtab", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    /* opened again through /proc/self/fd, as firn-agent opens a file */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    Dwfl *dwfl = symbolize_dwfl_begin();
    dwfl_report_begin(dwfl);
    Dwfl_Module *mod = dwfl_report_elf(dwfl, "fuzz", path, -1, 0, false);
    dwfl_report_end(dwfl, NULL, NULL);
    close(fd);
    if (!mod) {
        dwfl_end(dwfl);
        return 0;
    }
    (void)symbolize_has_dwarf(mod);
    /* the probes: each symbol's address, the bytes around it, its end */
    uint64_t probes[MAX_PROBES];
    size_t n = 0;
    int n_syms = dwfl_module_getsymtab(mod);
    for (int i = 1; i < n_syms && n + 3 <= MAX_PROBES; i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        if (!dwfl_module_getsym_info(mod, i, &sym, &addr, NULL, NULL, NULL))
            continue;
        probes[n++] = addr;
        probes[n++] = addr - 1;
        probes[n++] = addr + sym.st_size;
    }
    symbolize_symtab *in_file = NULL;
    const char *want[MAX_PROBES];
    for (size_t i = 0; i < n; i++)
        want[i] = symbolize_symbol(mod, &in_file, probes[i]);
    symbolize_symtab *copied = symbolize_symtab_new(mod, true);
    bool owned = symbolize_symtab_owns_names(copied);
    for (size_t i = 0; i < n; i++) {
        const char *got = symbolize_symbol(mod, &copied, probes[i]);
        if ((got == NULL) != (want[i] == NULL) || (got && strcmp(got, want[i]) != 0))
            abort();
    }
    symbolize_symtab_free(in_file);
    dwfl_end(dwfl);
    if (owned) {
        symbolize_names *names = symbolize_names_new();
        for (size_t i = 0; i < n; i++) {
            symbolize_frame frames[SYMBOLIZE_MAX_INLINE_DEPTH];
            size_t nf = symbolize_dwfl_frames(NULL, NULL, &copied, names, probes[i], frames);
            if (nf > 1 || (nf == 1 && !frames[0].name[0]))
                abort();
        }
        symbolize_names_free(names);
    }
    symbolize_symtab_free(copied);
    return 0;
}
