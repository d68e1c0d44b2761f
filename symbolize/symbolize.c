/* symbolize.c -- addresses of ELF files to the frames pprof wants, with
 * elfutils' libdwfl: the session both symbolizers open (firn's own in
 * selfprof/, firn-agent's for other processes), build ids, and the inline
 * chain at an address from DWARF or else the symbol table, with an index of
 * compilation units for files that have no .debug_aranges, and the
 * readable names of mangled C++ and Rust symbols (libiberty).
 */
#include <assert.h>
#include <demangle.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "symbolize/symbolize.h"

/* ---- finding the files ----------------------------------------------------- */

size_t symbolize_without_deleted(const char *path, size_t len)
{
    static const char deleted[] = " (deleted)";
    if (len >= sizeof deleted - 1 &&
        memcmp(path + len - (sizeof deleted - 1), deleted, sizeof deleted - 1) == 0)
        len -= sizeof deleted - 1;
    return len;
}

/* libdwfl's find_elf for this process, which also finds the executable
 * after it was replaced on disk (rebuilt, upgraded): libdwfl sees the
 * module as "PATH (deleted)", opens nothing, and every frame of firn's own
 * would stay a bare address; /proc/self/exe still opens the file that
 * runs. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *module_name,
                    Dwarf_Addr base, char **file_name, Elf **elfp)
{
    size_t len = strlen(module_name);
    if (symbolize_without_deleted(module_name, len) != len) {
        char exe[4096];
        ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe);
        if (exe_len > 0 && (size_t)exe_len == len && memcmp(exe, module_name, len) == 0) {
            int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                *file_name = firn_xstrdup("/proc/self/exe");   /* libdwfl frees it */
                return fd;
            }
        }
    }
    return dwfl_linux_proc_find_elf(mod, userdata, module_name, base, file_name, elfp);
}

/* No separate debug-info files (/usr/lib/debug, debuglink): only the DWARF
 * inside the mapped files themselves.  firn's own binary carries its DWARF,
 * so its frames keep file and line; system libraries are named from their
 * symbol tables.  Inflating a distribution's compressed debug info (libc6-dbg)
 * cost tens of milliseconds per profile and dominated an idle firn's own
 * CPU profile. */
static int no_separate_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
                                 Dwarf_Addr base, const char *file_name,
                                 const char *debuglink_file, GElf_Word debuglink_crc,
                                 char **debuginfo_file_name)
{
    (void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
    (void)debuglink_file, (void)debuglink_crc, (void)debuginfo_file_name;
    return -1;
}

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = find_elf,
    .find_debuginfo = no_separate_debuginfo,
};

Dwfl *symbolize_dwfl_begin(void)
{
    return dwfl_begin(&dwfl_callbacks);
}

void symbolize_build_id_hex(Dwfl_Module *mod, char *out, size_t cap)
{
    out[0] = '\0';
    GElf_Addr bias;
    if (!mod || !dwfl_module_getelf(mod, &bias))   /* the id is read from the ELF */
        return;
    const unsigned char *bits;
    GElf_Addr vaddr;
    int len = dwfl_module_build_id(mod, &bits, &vaddr);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < len && (size_t)(2 * i + 2) < cap; i++) {
        out[2 * i] = hex[bits[i] >> 4];
        out[2 * i + 1] = hex[bits[i] & 15];
        out[2 * i + 2] = '\0';
    }
}

static const char *attr_string(Dwarf_Die *die, unsigned int name)
{
    Dwarf_Attribute attr;
    return dwarf_formstring(dwarf_attr_integrate(die, name, &attr));
}

/* The inline chain at pc (a DWARF address: module address - bias) from the
 * scopes of its CU, innermost first.  file:line is where pc is; each
 * inlined call's call_file:call_line is where its caller is. */
static size_t dwarf_frames(Dwarf_Die *cu, Dwarf_Addr pc, const char *symbol, const char *file,
                           int line, symbolize_frame *out)
{
    Dwarf_Die *scopes = NULL;
    int n_scopes = dwarf_getscopes(cu, pc, &scopes);
    if (n_scopes <= 0)
        return 0;
    Dwarf_Files *files = NULL;
    size_t n_files = 0;
    if (dwarf_getsrcfiles(cu, &files, &n_files) != 0)
        files = NULL;

    size_t n = 0;
    bool outermost = false;
    for (int i = 0; i < n_scopes && n < SYMBOLIZE_MAX_INLINE_DEPTH && !outermost; i++) {
        Dwarf_Die *die = &scopes[i];
        int tag = dwarf_tag(die);
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine)
            continue;
        outermost = tag == DW_TAG_subprogram;
        const char *name = dwarf_diename(die);
        const char *linkage = attr_string(die, DW_AT_linkage_name);
        if (!linkage)
            linkage = attr_string(die, DW_AT_MIPS_linkage_name);
        /* The symbol names the code that runs (foo.isra.0); DWARF the
         * function it came from (foo). */
        const char *system_name = linkage ? linkage : outermost && symbol ? symbol : name;
        if (!name)
            name = system_name;
        if (!name)
            continue;
        const char *decl_file = dwarf_decl_file(die);
        int decl_line = 0;
        if (dwarf_decl_line(die, &decl_line) != 0)
            decl_line = 0;
        out[n++] = (symbolize_frame){name, system_name, decl_file ? decl_file : file, decl_line,
                                    line};

        if (!outermost) {   /* the caller continues at this call's site */
            Dwarf_Attribute attr;
            Dwarf_Word w;
            line = dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &w) == 0 ? (int)w : 0;
            file = files && dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &w) == 0
                       ? dwarf_filesrc(files, w, NULL, NULL)
                       : NULL;
        }
    }
    free(scopes);
    /* Scopes that ended on an inlined call (no subprogram DIE covers pc):
     * the symbol stands for the function it was inlined into. */
    if (n > 0 && !outermost && symbol && n < SYMBOLIZE_MAX_INLINE_DEPTH)
        out[n++] = (symbolize_frame){symbol, symbol, file, 0, line};
    return n;
}

/* ---- compilation units by address ------------------------------------------
 * libdwfl finds the compilation unit of an address (dwfl_module_getsrc,
 * dwfl_module_addrdie) through libdw's dwarf_getaranges, and elfutils 0.188
 * reads those from .debug_aranges only: a file without that section has no
 * CU at any address ("address out of range").  Go never writes it, nor
 * clang by default, so their file:line and inlined frames were lost.  The
 * index holds what .debug_aranges would have said, from the CUs' own DIEs
 * (DW_AT_low_pc/high_pc, DW_AT_ranges). */

struct cu_range {
    uint64_t low, high;   /* DWARF addresses [low, high) */
    Dwarf_Off die;        /* the CU's DIE */
};

struct symbolize_cu_index {
    Dwarf *dwarf;         /* NULL: the module has no DWARF */
    Dwarf_Addr bias;
    struct cu_range *ranges;   /* sorted by low */
    size_t n;
};

static int compare_cu_range(const void *a, const void *b)
{
    const struct cu_range *x = a, *y = b;
    return x->low < y->low ? -1 : x->low > y->low;
}

/* The index of mod. */
static symbolize_cu_index *cu_index_new(Dwfl_Module *mod)
{
    symbolize_cu_index *cus = firn_xcalloc(1, sizeof *cus);
    cus->dwarf = dwfl_module_getdwarf(mod, &cus->bias);
    size_t cap = 0;
    Dwarf_CU *unit = NULL;
    Dwarf_Die cu;
    uint8_t unit_type;
    while (cus->dwarf &&
           dwarf_get_units(cus->dwarf, unit, &unit, NULL, &unit_type, &cu, NULL) == 0) {
        if (unit_type != DW_UT_compile && unit_type != DW_UT_partial &&
            unit_type != DW_UT_skeleton)
            continue;
        Dwarf_Addr base, low, high;
        for (ptrdiff_t at = 0; (at = dwarf_ranges(&cu, at, &base, &low, &high)) > 0;) {
            if (low >= high)
                continue;
            cus->ranges = firn_grow(cus->ranges, cus->n, &cap, sizeof *cus->ranges, 64);
            cus->ranges[cus->n++] = (struct cu_range){low, high, dwarf_dieoffset(&cu)};
        }
    }
    firn_sort(cus->ranges, cus->n, sizeof *cus->ranges, compare_cu_range);
    return cus;
}

void symbolize_cu_index_free(symbolize_cu_index *cus)
{
    if (!cus)
        return;
    free(cus->ranges);
    free(cus);
}

/* The CU whose ranges hold DWARF address pc, into *cu. */
static bool cu_index_find(const symbolize_cu_index *cus, Dwarf_Addr pc, Dwarf_Die *cu)
{
    size_t i = firn_sorted_count_le(cus->ranges, cus->n, sizeof *cus->ranges,
                                    offsetof(struct cu_range, low), pc);
    return i > 0 && pc < cus->ranges[i - 1].high &&
           dwarf_offdie(cus->dwarf, cus->ranges[i - 1].die, cu) != NULL;
}

/* ---- symbols by address -------------------------------------------------------
 * dwfl_module_addrinfo (elfutils 0.188) looks at every symbol of the
 * module on each call; for a profiler's stream of new addresses in large
 * files that was most of firn-agent's CPU.  The index holds the same
 * symbols (named, defined, not sections, files or TLS), sorted once, for a
 * binary search, and makes libdwfl's choice: the nearest symbol at or
 * below the address whose size covers it (at one address: global before
 * weak before local, then the smaller), else a sizeless one (assembly
 * labels) at the nearest address below when no sized symbol below ends
 * past it.
 *
 * Asked to, the index copies the names into one block of its own, so that
 * it serves after the module's Dwfl is gone: firn-agent then closes a file
 * without DWARF as soon as it is indexed, and its pages (symbol and string
 * tables, all read once to build the index, and the kernel's read-around
 * of each page) leave the agent's RSS.  A file kept open keeps its names
 * where they are: a copy would hold them twice. */

struct sym_entry {
    uint64_t addr;      /* module address (bias applied) */
    uint64_t size;
    uint64_t reach;     /* the largest addr + size of this and every entry before */
    uint64_t reach_g;   /* the same over the entries that are not local */
    const char *name;   /* in the index's own block, or libelf's string (see names) */
    uint32_t section;   /* sizeless: index into the index's section ranges
                         * (sized: unused, see in_section) */
    uint8_t rank;       /* 0 global, 1 weak (or unique), 2 local */
};

/* The addresses of a sizeless symbol's section (absolute: its own address
 * only); libdwfl matches a sizeless symbol only there. */
struct sym_section {
    uint64_t lo, hi;
};

struct symbolize_symtab {
    struct sym_entry *v;   /* sorted by addr, rank, sized before sizeless, size */
    size_t n;
    struct sym_section *sections;
    size_t n_sections;
    char *names;           /* the names (NULL: they point into the module) */
    size_t names_bytes;
};

static int compare_sym(const void *a, const void *b)
{
    const struct sym_entry *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if ((x->size == 0) != (y->size == 0))
        return x->size == 0 ? 1 : -1;
    return x->size < y->size ? -1 : x->size > y->size;
}

/* The index of the section range [lo, hi) in t->sections; by_shndx (for
 * shndx < SHN_LORESERVE) remembers those of sections seen. */
static uint32_t sym_section(symbolize_symtab *t, size_t *cap, firn_u64map *by_shndx,
                            const Elf *elf, GElf_Word shndx, uint64_t lo, uint64_t hi)
{
    /* a module's symbols may come from two files (libdwfl's auxiliary
     * symbol table): the key is the file and the section, shndx < 2^16 */
    uint64_t key = (uint64_t)(uintptr_t)elf << 16 | shndx;
    uint32_t idx;
    if (shndx < SHN_LORESERVE && firn_u64map_get(by_shndx, key, &idx))
        return idx;
    assert(t->n_sections < UINT32_MAX);   /* at most one per symbol, an int */
    t->sections = firn_grow(t->sections, t->n_sections, cap, sizeof *t->sections, 16);
    idx = (uint32_t)t->n_sections++;
    t->sections[idx] = (struct sym_section){lo, hi};
    if (shndx < SHN_LORESERVE)
        firn_u64map_put(by_shndx, key, idx, NULL);
    return idx;
}

/* The bytes of the string tables of mod's file.  Its symbols' names are in
 * them (libdwfl's auxiliary symbol table aside); a copy of each name takes
 * about as much, a little more where names share a tail, while symbols of
 * a hostile file can all name one long string. */
static uint64_t string_table_bytes(Dwfl_Module *mod)
{
    GElf_Addr bias;
    Elf *elf = dwfl_module_getelf(mod, &bias);
    uint64_t bytes = 0;
    for (Elf_Scn *scn = elf ? elf_nextscn(elf, NULL) : NULL; scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr shdr;
        if (gelf_getshdr(scn, &shdr) && shdr.sh_type == SHT_STRTAB && shdr.sh_size < (1ull << 40))
            bytes += shdr.sh_size;
    }
    return bytes;
}

symbolize_symtab *symbolize_symtab_new(Dwfl_Module *mod, bool copy_names)
{
    symbolize_symtab *t = firn_xcalloc(1, sizeof *t);
    int n = dwfl_module_getsymtab(mod);
    size_t cap = 0, cap_sections = 0, names_bytes = 0;
    firn_u64map by_shndx;
    firn_u64map_init(&by_shndx, 64);
    for (int i = 1; i < n; i++) {   /* 0 is the null symbol */
        GElf_Sym sym;
        GElf_Addr addr, bias = 0;
        GElf_Word shndx;
        Elf *elf = NULL;
        const char *name = dwfl_module_getsym_info(mod, i, &sym, &addr, &shndx, &elf, &bias);
        unsigned type = GELF_ST_TYPE(sym.st_info), bind = GELF_ST_BIND(sym.st_info);
        if (!name || !name[0] || shndx == SHN_UNDEF || type == STT_SECTION ||
            type == STT_FILE || type == STT_TLS)
            continue;
        t->v = firn_grow(t->v, t->n, &cap, sizeof *t->v, 256);
        struct sym_entry *e = &t->v[t->n++];
        *e = (struct sym_entry){
            .addr = addr,
            .size = sym.st_size,
            .name = name,
            .rank = bind == STB_GLOBAL ? 0 : bind == STB_LOCAL ? 2 : 1,
        };
        if (sym.st_size == 0) {
            GElf_Shdr shdr;
            Elf_Scn *scn = shndx < SHN_LORESERVE && elf ? elf_getscn(elf, shndx) : NULL;
            if (scn && gelf_getshdr(scn, &shdr))
                e->section = sym_section(t, &cap_sections, &by_shndx, elf, shndx, shdr.sh_addr + bias,
                                         shdr.sh_addr + shdr.sh_size + bias);
            else
                e->section = sym_section(t, &cap_sections, &by_shndx, elf, SHN_ABS, addr, addr + 1);
        }
        /* a string of libelf's ends inside the file's mapped string table */
        size_t len = strlen(name) + 1;
        names_bytes = names_bytes + len < names_bytes ? SIZE_MAX : names_bytes + len;
    }
    firn_u64map_destroy(&by_shndx);
    if (copy_names && names_bytes <= SYMBOLIZE_SYMTAB_MAX_NAME_BYTES &&
        names_bytes <= 2 * string_table_bytes(mod) + 4096) {
        t->names = firn_xmalloc(names_bytes ? names_bytes : 1);
        t->names_bytes = names_bytes;
        size_t at = 0;
        for (size_t i = 0; i < t->n; i++) {
            size_t len = strlen(t->v[i].name) + 1;
            memcpy(t->names + at, t->v[i].name, len);
            t->v[i].name = t->names + at;
            at += len;
        }
        assert(at == names_bytes);
    }
    firn_sort(t->v, t->n, sizeof *t->v, compare_sym);
    uint64_t reach = 0, reach_g = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t end = t->v[i].addr + t->v[i].size;
        reach = end > reach ? end : reach;
        if (t->v[i].rank < 2 && end > reach_g)
            reach_g = end;
        t->v[i].reach = reach;
        t->v[i].reach_g = reach_g;
    }
    return t;
}

bool symbolize_symtab_owns_names(const symbolize_symtab *syms)
{
    return syms->names != NULL;
}

size_t symbolize_symtab_bytes(const symbolize_symtab *syms)
{
    return syms->n * sizeof *syms->v + syms->n_sections * sizeof *syms->sections +
           syms->names_bytes;
}

void symbolize_symtab_free(symbolize_symtab *syms)
{
    if (!syms)
        return;
    free(syms->v);
    free(syms->sections);
    free(syms->names);
    free(syms);
}

/* Of v[0..i) (the entries at or below addr), the best symbol whose size
 * covers addr at the nearest address that has one; globals: only the
 * entries that are not local.  reach (reach_g) tells when no entry
 * further down can cover it. */
static const char *sized_cover(const struct sym_entry *v, size_t i, uint64_t addr, bool globals)
{
    for (size_t j = i; j > 0 && (globals ? v[j - 1].reach_g : v[j - 1].reach) > addr; j--) {
        const struct sym_entry *e = &v[j - 1];
        if (e->size == 0 || addr - e->addr >= e->size || (globals && e->rank == 2))
            continue;
        size_t k = j - 1;
        while (k > 0 && v[k - 1].addr == e->addr)
            k--;
        while (v[k].size == 0 || addr - v[k].addr >= v[k].size || (globals && v[k].rank == 2))
            k++;   /* ends at j - 1 at the latest */
        return v[k].name;
    }
    return NULL;
}

/* Whether addr is in the section of the sizeless symbol e; a sized one
 * (its end past 2^64 in a hostile file) counts as [addr, addr + 1). */
static bool in_section(const symbolize_symtab *t, const struct sym_entry *e, uint64_t addr)
{
    if (e->size != 0)
        return addr == e->addr && e->addr != UINT64_MAX;
    assert(e->section < t->n_sections);
    return addr >= t->sections[e->section].lo && addr < t->sections[e->section].hi;
}

const char *symbolize_symbol(Dwfl_Module *mod, symbolize_symtab **syms, uint64_t addr)
{
    if (!syms) {
        GElf_Off offset;
        GElf_Sym sym;
        return dwfl_module_addrinfo(mod, addr, &offset, &sym, NULL, NULL, NULL);
    }
    if (!*syms)
        *syms = symbolize_symtab_new(mod, false);
    const struct sym_entry *v = (*syms)->v;
    size_t i = firn_sorted_count_le(v, (*syms)->n, sizeof *v, offsetof(struct sym_entry, addr),
                                    addr);
    if (i == 0)
        return NULL;
    /* libdwfl looks at the symbols that are not local first: one of them
     * whose size covers addr, or a sizeless one exactly at addr, wins */
    const char *name = sized_cover(v, i, addr, true);
    if (name)
        return name;
    for (size_t k = i; k > 0 && v[k - 1].addr == addr; k--)
        if (v[k - 1].rank < 2 && v[k - 1].size == 0 &&
            in_section(*syms, &v[k - 1], addr))
            name = v[k - 1].name;   /* the first at the address */
    if (name || (name = sized_cover(v, i, addr, false)))
        return name;
    /* none: a sizeless symbol (an assembly label) at the nearest address
     * below, when nothing at or below ends past that address (libdwfl's
     * min_label) and addr is in its section */
    uint64_t at = v[i - 1].addr;
    if (v[i - 1].reach > at)
        return NULL;
    size_t k = i - 1;
    while (k > 0 && v[k - 1].addr == at)
        k--;
    for (; k < i; k++)   /* the first in addr's section */
        if (in_section(*syms, &v[k], addr))
            return v[k].name;
    return NULL;
}

bool symbolize_has_dwarf(Dwfl_Module *mod)
{
    GElf_Addr bias;
    Elf *elf = dwfl_module_getelf(mod, &bias);
    size_t shstrndx;
    if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0)
        return false;
    for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr shdr;
        const char *name = gelf_getshdr(scn, &shdr) ? elf_strptr(elf, shstrndx, shdr.sh_name)
                                                   : NULL;
        /* libdw's CUs, whatever the compression (SHF_COMPRESSED or the
         * older .zdebug), the split units' sections too */
        if (name && (strncmp(name, ".debug_info", 11) == 0 ||
                     strncmp(name, ".zdebug_info", 12) == 0))
            return true;
    }
    return false;
}

/* ---- demangled names ------------------------------------------------------- */

struct symbolize_names {
    firn_u64map by_mangled;   /* address of the mangled string -> index into names */
    char **names;             /* NULL: not a mangled name */
    size_t n, cap;
};

symbolize_names *symbolize_names_new(void)
{
    symbolize_names *names = firn_xcalloc(1, sizeof *names);
    firn_u64map_init(&names->by_mangled, 256);
    return names;
}

void symbolize_names_free(symbolize_names *names)
{
    if (!names)
        return;
    for (size_t i = 0; i < names->n; i++)
        free(names->names[i]);
    free(names->names);
    firn_u64map_destroy(&names->by_mangled);
    free(names);
}

const char *symbolize_demangle(symbolize_names *names, const char *mangled)
{
    uint32_t idx;
    if (firn_u64map_get(&names->by_mangled, (uintptr_t)mangled, &idx))
        return names->names[idx];
    if (strnlen(mangled, SYMBOLIZE_DEMANGLE_MAX + 1) > SYMBOLIZE_DEMANGLE_MAX)
        return NULL;
    names->names = firn_grow(names->names, names->n, &names->cap, sizeof *names->names, 64);
    /* Auto style, as nm -C: Rust first (its legacy names are also valid
     * C++ names, which would keep the hash), then C++ (also "_GLOBAL__"
     * names); a C name comes back NULL and is remembered so.  libiberty bounds
     * its own recursion (no DMGL_NO_RECURSE_LIMIT), so hostile names in a
     * file of any process cannot exhaust the stack. */
    char *readable = cplus_demangle(mangled, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
    if (readable && !readable[0]) {
        /* Some hostile names demangle to nothing (the Rust v0 "_RC0"): the
         * mangled name reads better than an empty one. */
        free(readable);
        readable = NULL;
    }
    firn_u64map_put(&names->by_mangled, (uintptr_t)mangled, (uint32_t)names->n, NULL);
    names->names[names->n++] = readable;
    return readable;
}

/* ---- frames at an address --------------------------------------------------- */

size_t symbolize_dwfl_frames(Dwfl_Module *mod, symbolize_cu_index **cus, symbolize_symtab **syms,
                            symbolize_names *names, uint64_t addr,
                            symbolize_frame out[SYMBOLIZE_MAX_INLINE_DEPTH])
{
    assert(mod || (syms && *syms && symbolize_symtab_owns_names(*syms)));
    const char *symbol = symbolize_symbol(mod, syms, addr);
    const char *file = NULL;
    int line = 0;
    Dwfl_Line *dl = mod ? dwfl_module_getsrc(mod, addr) : NULL;
    if (dl)
        file = dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL);
    Dwarf_Addr bias;
    Dwarf_Die *cu = mod ? dwfl_module_addrdie(mod, addr, &bias) : NULL;
    Dwarf_Die cu_mem;
    if (!cu && mod && cus && (*cus || (*cus = cu_index_new(mod))) && (*cus)->dwarf &&
        cu_index_find(*cus, addr - (*cus)->bias, &cu_mem)) {
        cu = &cu_mem;
        bias = (*cus)->bias;
        Dwarf_Line *l = dl ? NULL : dwarf_getsrc_die(cu, addr - bias);
        if (l) {
            file = dwarf_linesrc(l, NULL, NULL);
            if (dwarf_lineno(l, &line) != 0)
                line = 0;
        }
    }
    size_t n = cu ? dwarf_frames(cu, addr - bias, symbol, file, line, out) : 0;
    if (n == 0 && symbol)
        out[n++] = (symbolize_frame){symbol, symbol, file, 0, line};
    /* The demangled linkage name says more than DWARF's bare name ("hot"
     * against "app::hot(int)"); system_name keeps the mangled one. */
    for (size_t i = 0; names && i < n; i++) {
        const char *readable = out[i].system_name ? symbolize_demangle(names, out[i].system_name)
                                                  : NULL;
        if (readable)
            out[i].name = readable;
    }
    return n;
}
