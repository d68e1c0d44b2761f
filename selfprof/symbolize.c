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
#include "symbolize/symbolize.h"

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
    symbolize_names *names;   /* demangled names of dwfl's strings (NULL: none) */
    struct map_range *maps;   /* sorted by start */
    size_t n_maps;
    firn_u64map cache;        /* pc -> builder location index */
};


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
 * Returns -1 when the file cannot be read. */
static int read_proc_maps(struct proc_map **out, size_t *n_out)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return -1;
    struct proc_map *maps = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
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
        size_t len = symbolize_without_deleted(path, strcspn(path, "\n"));
        if (len == 0)
            continue;   /* anonymous: nothing to name it by (Go skips these too) */
        if (n == MAX_MAPPINGS)
            break;
        maps = firn_grow(maps, n, &cap, sizeof *maps, 64);
        maps[n++] = (struct proc_map){start, limit, offset, firn_xstrndup(path, len)};
    }
    free(line);
    fclose(f);
    *out = maps;
    *n_out = n;
    return 0;
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
static void add_mappings(selfprof_symbolizer *s)
{
    struct proc_map *maps;
    size_t n;
    if (read_proc_maps(&maps, &n) < 0) {
        firn_log(FIRN_LOG_WARN, "selfprof", "cannot read /proc/self/maps; profile has no mappings",
                 NULL);
        return;
    }
    char exe[4096];
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[exe_len > 0 ? symbolize_without_deleted(exe, (size_t)exe_len) : 0] = '\0';

    s->maps = firn_xcalloc(n ? n : 1, sizeof *s->maps);
    /* Two passes: the main binary's entries, then everything else. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if ((strcmp(maps[i].path, exe) == 0) != (pass == 0))
                continue;
            Dwfl_Module *mod = s->dwfl ? dwfl_addrmodule(s->dwfl, maps[i].start) : NULL;
            char build_id[2 * 64 + 1];
            symbolize_build_id_hex(mod, build_id, sizeof build_id);
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
}

static uint32_t mapping_of(const selfprof_symbolizer *s, uint64_t addr)
{
    size_t i = firn_sorted_count_le(s->maps, s->n_maps, sizeof *s->maps,
                                    offsetof(struct map_range, start), addr);
    return i > 0 && addr < s->maps[i - 1].limit ? s->maps[i - 1].index : PPROF_NONE;
}

/* ---- functions and lines -------------------------------------------------- */

static pprof_line make_line(selfprof_symbolizer *s, const symbolize_frame *f)
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


static size_t symbolize(selfprof_symbolizer *s, uint64_t addr, pprof_line *out)
{
    if (!s->dwfl)
        return 0;
    Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, addr);
    if (!mod)
        return 0;
    symbolize_frame frames[SYMBOLIZE_MAX_INLINE_DEPTH];
    size_t n = symbolize_dwfl_frames(mod, NULL, NULL, s->names, addr, frames);
    for (size_t i = 0; i < n; i++)
        out[i] = make_line(s, &frames[i]);
    return n;
}

/* ---- the symbolizer ------------------------------------------------------- */

selfprof_symbolizer *selfprof_symbolizer_new(pprof_builder *b)
{
    selfprof_symbolizer *s = firn_xcalloc(1, sizeof *s);
    firn_u64map_init(&s->cache, 1024);
    s->b = b;
    s->dwfl = symbolize_dwfl_begin();
    s->names = symbolize_names_new();
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
    add_mappings(s);
    return s;
}

uint32_t selfprof_symbolizer_location(selfprof_symbolizer *s, uintptr_t pc)
{
    uint32_t idx;
    if (firn_u64map_get(&s->cache, pc, &idx))
        return idx;
    uint64_t addr = pc - 1;   /* return-PC form: the frame's instruction */
    pprof_line lines[SYMBOLIZE_MAX_INLINE_DEPTH];
    pprof_location l = {
        .mapping = mapping_of(s, addr),
        .address = addr,
        .lines = lines,
        .n_lines = symbolize(s, addr, lines),
    };
    idx = pprof_builder_location(s->b, &l);
    firn_u64map_put(&s->cache, pc, idx, NULL);
    return idx;
}

void selfprof_symbolizer_free(selfprof_symbolizer *s)
{
    if (!s)
        return;
    symbolize_names_free(s->names);
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

