/* symbolize.c -- program counters of this process to pprof mappings,
 * locations and functions, with elfutils' libdwfl.
 *
 * Mappings are taken as Go's runtime/pprof takes them: every executable
 * entry of /proc/self/maps with a name, its own start/limit/offset, so that
 * pprof can relate an address to the file.  The main binary comes first
 * because pprof (and Go's tools) treat mapping 1 as the program.  Build ids
 * come from libdwfl's view of the same modules.
 *
 * An address is resolved once per profile: the symbol table gives the
 * function's symbol, the line table file:line, and the DWARF scopes at the
 * address the chain of inlined calls (innermost first, as pprof wants a
 * location's lines).  Without DWARF a location still gets its function from
 * the symbol table; without libdwfl at all it keeps its bare address, and
 * pprof can symbolize it later from the mapping.  The mappings' has_*
 * flags tell pprof which of these happened (selfprof.h).  An executable
 * replaced on disk since it started is read through /proc/self/exe.
 */
#include "selfprof/internal.h"

#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Executable mappings considered; firn maps a few dozen. */
#define MAX_MAPPINGS 4096

struct map_range {
    uint64_t start, limit;
    uint32_t index;   /* builder mapping index */
};

struct selfprof_symbolizer {
    pprof_builder *b;
    Dwfl *dwfl;               /* NULL when libdwfl could not report us */
    struct map_range *maps;   /* sorted by start */
    size_t n_maps;
    firn_u64map cache;        /* pc -> builder location index */
};

/* ---- finding the files ----------------------------------------------------- */

/* The length of path[0..len) without the " (deleted)" the kernel appends
 * to files replaced since they were mapped (the name is still the name). */
static size_t without_deleted(const char *path, size_t len)
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
    if (without_deleted(module_name, len) != len) {
        char exe[4096];
        ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe);
        if (exe_len > 0 && (size_t)exe_len == len && memcmp(exe, module_name, len) == 0) {
            int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                *file_name = strdup("/proc/self/exe");
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

Dwfl *selfprof_dwfl_begin(void)
{
    return dwfl_begin(&dwfl_callbacks);
}

/* ---- mappings ----------------------------------------------------------- */

struct proc_map {
    uint64_t start, limit, offset;
    char *path;
};

static void free_proc_maps(struct proc_map *maps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(maps[i].path);
    free(maps);
}

/* The executable, named entries of /proc/self/maps, in address order.
 * Returns -1 when the file cannot be read or memory runs out. */
static int read_proc_maps(struct proc_map **out, size_t *n_out)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -1;
    struct proc_map *maps = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    int rc = 0;
    while (getline(&line, &line_cap, f) > 0) {
        unsigned long long start, limit, offset;
        char perms[8];
        int path_at = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &limit, perms, &offset,
                   &path_at) < 4 || path_at == 0)
            continue;
        if (strlen(perms) < 3 || perms[2] != 'x')
            continue;   /* only code is ever sampled */
        char *path = line + path_at;
        size_t len = without_deleted(path, strcspn(path, "\n"));
        if (len == 0)
            continue;   /* anonymous: nothing to name it by (Go skips these too) */
        if (n == MAX_MAPPINGS)
            break;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct proc_map *nm = realloc(maps, ncap * sizeof *nm);
            if (!nm) {
                rc = -1;
                break;
            }
            maps = nm;
            cap = ncap;
        }
        char *copy = strndup(path, len);
        if (!copy) {
            rc = -1;
            break;
        }
        maps[n++] = (struct proc_map){start, limit, offset, copy};
    }
    free(line);
    fclose(f);
    if (rc < 0) {
        free_proc_maps(maps, n);
        return -1;
    }
    *out = maps;
    *n_out = n;
    return 0;
}

void selfprof_build_id_hex(Dwfl_Module *mod, char *out, size_t cap)
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

static int64_t str(pprof_builder *b, const char *s)
{
    return pprof_builder_string(b, s ? s : "", s ? strlen(s) : 0);
}

static int compare_range(const void *a, const void *b)
{
    const struct map_range *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Adds the mappings to the builder, the main binary's first. */
static int add_mappings(selfprof_symbolizer *s)
{
    struct proc_map *maps;
    size_t n;
    if (read_proc_maps(&maps, &n) < 0) {
        firn_log(FIRN_LOG_WARN, "selfprof", "cannot read /proc/self/maps; profile has no mappings",
                 NULL);
        return 0;
    }
    char exe[4096];
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[exe_len > 0 ? without_deleted(exe, (size_t)exe_len) : 0] = '\0';

    s->maps = calloc(n ? n : 1, sizeof *s->maps);
    if (!s->maps) {
        free_proc_maps(maps, n);
        return -1;
    }
    /* Two passes: the main binary's entries, then everything else. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if ((strcmp(maps[i].path, exe) == 0) != (pass == 0))
                continue;
            Dwfl_Module *mod = s->dwfl ? dwfl_addrmodule(s->dwfl, maps[i].start) : NULL;
            char build_id[2 * 64 + 1];
            selfprof_build_id_hex(mod, build_id, sizeof build_id);
            pprof_mapping m = {
                .memory_start = maps[i].start,
                .memory_limit = maps[i].limit,
                .file_offset = maps[i].offset,
                .filename = str(s->b, maps[i].path),
                .build_id = str(s->b, build_id),
                /* Every address in it will be looked up in mod: see
                 * selfprof.h on the has_* flags. */
                .has_functions = mod != NULL,
            };
            s->maps[s->n_maps++] = (struct map_range){
                maps[i].start, maps[i].limit, pprof_builder_mapping(s->b, &m)};
        }
    }
    free_proc_maps(maps, n);
    firn_sort(s->maps, s->n_maps, sizeof *s->maps, compare_range);
    return 0;
}

static uint32_t mapping_of(const selfprof_symbolizer *s, uint64_t addr)
{
    size_t i = firn_sorted_count_le(s->maps, s->n_maps, sizeof *s->maps,
                                    offsetof(struct map_range, start), addr);
    return i > 0 && addr < s->maps[i - 1].limit ? s->maps[i - 1].index : PPROF_NONE;
}

/* ---- functions and lines -------------------------------------------------- */

static pprof_line make_line(selfprof_symbolizer *s, const selfprof_frame *f)
{
    pprof_function fn = {
        .name = str(s->b, f->name),
        .system_name = str(s->b, f->system_name ? f->system_name : f->name),
        .filename = str(s->b, f->file),
        .start_line = f->start_line > 0 ? f->start_line : 0,
    };
    return (pprof_line){.function = pprof_builder_function(s->b, &fn),
                        .line = f->line > 0 ? f->line : 0};
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
                           int line, selfprof_frame *out)
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
    for (int i = 0; i < n_scopes && n < SELFPROF_MAX_INLINE_DEPTH && !outermost; i++) {
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
        out[n++] = (selfprof_frame){name, system_name, decl_file ? decl_file : file, decl_line,
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
    if (n > 0 && !outermost && symbol && n < SELFPROF_MAX_INLINE_DEPTH)
        out[n++] = (selfprof_frame){symbol, symbol, file, 0, line};
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

struct selfprof_cu_index {
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

/* The index of mod; NULL only when memory runs out. */
static selfprof_cu_index *cu_index_new(Dwfl_Module *mod)
{
    selfprof_cu_index *cus = calloc(1, sizeof *cus);
    if (!cus)
        return NULL;
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
            struct cu_range *r = firn_grow(cus->ranges, cus->n, &cap, sizeof *r, 64);
            if (!r) {
                selfprof_cu_index_free(cus);
                return NULL;
            }
            cus->ranges = r;
            r[cus->n++] = (struct cu_range){low, high, dwarf_dieoffset(&cu)};
        }
    }
    firn_sort(cus->ranges, cus->n, sizeof *cus->ranges, compare_cu_range);
    return cus;
}

void selfprof_cu_index_free(selfprof_cu_index *cus)
{
    if (!cus)
        return;
    free(cus->ranges);
    free(cus);
}

/* The CU whose ranges hold DWARF address pc, into *cu. */
static bool cu_index_find(const selfprof_cu_index *cus, Dwarf_Addr pc, Dwarf_Die *cu)
{
    size_t i = firn_sorted_count_le(cus->ranges, cus->n, sizeof *cus->ranges,
                                    offsetof(struct cu_range, low), pc);
    return i > 0 && pc < cus->ranges[i - 1].high &&
           dwarf_offdie(cus->dwarf, cus->ranges[i - 1].die, cu) != NULL;
}

size_t selfprof_dwfl_frames(Dwfl_Module *mod, selfprof_cu_index **cus, uint64_t addr,
                            selfprof_frame out[SELFPROF_MAX_INLINE_DEPTH])
{
    GElf_Off offset;
    GElf_Sym sym;
    const char *symbol = dwfl_module_addrinfo(mod, addr, &offset, &sym, NULL, NULL, NULL);
    const char *file = NULL;
    int line = 0;
    Dwfl_Line *dl = dwfl_module_getsrc(mod, addr);
    if (dl)
        file = dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL);
    Dwarf_Addr bias;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, &bias);
    Dwarf_Die cu_mem;
    if (!cu && cus && (*cus || (*cus = cu_index_new(mod))) && (*cus)->dwarf &&
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
        out[n++] = (selfprof_frame){symbol, symbol, file, 0, line};
    return n;
}

static size_t symbolize(selfprof_symbolizer *s, uint64_t addr, pprof_line *out)
{
    if (!s->dwfl)
        return 0;
    Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, addr);
    if (!mod)
        return 0;
    selfprof_frame frames[SELFPROF_MAX_INLINE_DEPTH];
    size_t n = selfprof_dwfl_frames(mod, NULL, addr, frames);
    for (size_t i = 0; i < n; i++)
        out[i] = make_line(s, &frames[i]);
    return n;
}

/* ---- the symbolizer ------------------------------------------------------- */

selfprof_symbolizer *selfprof_symbolizer_new(pprof_builder *b, firn_err *err)
{
    selfprof_symbolizer *s = calloc(1, sizeof *s);
    if (!s || firn_u64map_init(&s->cache, 1024) < 0) {
        free(s);
        firn_errf(err, FIRN_ENOMEM, "out of memory symbolizing a profile");
        return NULL;
    }
    s->b = b;
    s->dwfl = dwfl_begin(&dwfl_callbacks);
    if (s->dwfl && (dwfl_linux_proc_report(s->dwfl, getpid()) != 0 ||
                    dwfl_report_end(s->dwfl, NULL, NULL) != 0)) {
        dwfl_end(s->dwfl);
        s->dwfl = NULL;
    }
    if (!s->dwfl) {
        static atomic_bool warned;
        if (!atomic_exchange(&warned, true))
            firn_log(FIRN_LOG_WARN, "selfprof", "cannot symbolize this process; profiles "
                     "keep bare addresses", "err=\"%s\"", dwfl_errmsg(-1));
    }
    if (add_mappings(s) < 0) {
        selfprof_symbolizer_free(s);
        firn_errf(err, FIRN_ENOMEM, "out of memory symbolizing a profile");
        return NULL;
    }
    return s;
}

uint32_t selfprof_symbolizer_location(selfprof_symbolizer *s, uintptr_t pc)
{
    uint32_t idx;
    if (firn_u64map_get(&s->cache, pc, &idx))
        return idx;
    uint64_t addr = pc - 1;   /* return-PC form: the frame's instruction */
    pprof_line lines[SELFPROF_MAX_INLINE_DEPTH];
    pprof_location l = {
        .mapping = mapping_of(s, addr),
        .address = addr,
        .lines = lines,
        .n_lines = symbolize(s, addr, lines),
    };
    idx = pprof_builder_location(s->b, &l);
    if (idx != PPROF_NONE)
        (void)firn_u64map_put(&s->cache, pc, idx, NULL);   /* a cache miss later is fine */
    return idx;
}

void selfprof_symbolizer_free(selfprof_symbolizer *s)
{
    if (!s)
        return;
    if (s->dwfl)
        dwfl_end(s->dwfl);
    free(s->maps);
    firn_u64map_destroy(&s->cache);
    free(s);
}

void selfprof_mark_mappings(pprof_profile *p)
{
    for (size_t i = 0; i < p->n_locations; i++) {
        const pprof_location *l = &p->locations[i];
        if (l->mapping >= p->n_mappings)
            continue;
        pprof_mapping *mp = &p->mappings[l->mapping];
        for (size_t j = 0; j < l->n_lines; j++) {
            const pprof_line *ln = &l->lines[j];
            if (ln->function < p->n_functions &&
                pprof_str(p, p->functions[ln->function].filename)[0] != '\0')
                mp->has_filenames = true;
            if (ln->line > 0)
                mp->has_line_numbers = true;
        }
    }
    for (size_t m = 0; m < p->n_mappings; m++)
        p->mappings[m].has_inline_frames = p->mappings[m].has_line_numbers;
}
