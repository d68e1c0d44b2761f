/* symbolize.h -- ELF/DWARF symbolization with elfutils' libdwfl, shared by
 * firn's own profiles (selfprof/) and firn-agent's (agent/, which
 * symbolizes other processes' files): one address of a libdwfl module as
 * the frames pprof wants in a location's lines.
 *
 * Owns the libdwfl session's policy (only the DWARF inside the files: no
 * separate debug files, no debuginfod; a replaced executable of this
 * process read through /proc/self/exe), build ids, and the index of
 * compilation units that libdwfl 0.188 lacks for files without
 * .debug_aranges, and readable names for mangled C++ and Rust symbols.
 * Nothing here knows where the addresses came from.
 * Threads: a Dwfl and what it returns belong to one thread at a time.
 */
#ifndef FIRN_SYMBOLIZE_H
#define FIRN_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct Dwfl_Module;
struct Dwfl;

/* A libdwfl session (dwfl_end frees it) that reads only the DWARF inside
 * the files themselves: no separate debug files, no debuginfod (see
 * symbolize.c).  Its find_elf serves dwfl_linux_proc_report of this
 * process; modules reported with dwfl_report_elf never call it. */
struct Dwfl *symbolize_dwfl_begin(void);

/* Inlined frames kept per address (the outermost function always is). */
#define SYMBOLIZE_MAX_INLINE_DEPTH 16

typedef struct symbolize_frame {
    const char *name;          /* the function: the demangled linkage name or symbol,
                                * else DWARF's name, else the symbol */
    const char *system_name;   /* the linkage name or symbol as in the file (mangled);
                                * may be NULL */
    const char *file;          /* may be NULL */
    int start_line, line;      /* 0 when unknown */
} symbolize_frame;

/* The hex GNU build id of mod (may be NULL) into out (cap bytes, 129 hold
 * any), "" when unknown. */
void symbolize_build_id_hex(struct Dwfl_Module *mod, char *out, size_t cap);

/* The compilation units of one module by address, for files without
 * .debug_aranges (Go's, clang's by default), where libdwfl 0.188 finds no
 * CU and so no file:line (symbolize.c).  Built by symbolize_dwfl_frames the
 * first time libdwfl finds no CU; its owner frees it. */
typedef struct symbolize_cu_index symbolize_cu_index;
void symbolize_cu_index_free(symbolize_cu_index *cus);

/* The symbol table of one module by address, for files whose symbols
 * libdwfl would scan whole at every look-up (dwfl_module_addrinfo in
 * 0.188).  Built by symbolize_symbol the first time (names: the module's
 * strings), or by symbolize_symtab_new; its owner frees it.  With
 * copy_names it holds a copy of the names, so that it serves after the
 * module's Dwfl ended, unless they take more than
 * SYMBOLIZE_SYMTAB_MAX_NAME_BYTES or twice the file's string tables (a
 * hostile file's symbols can all name one long string): then they are the
 * module's strings too. */
typedef struct symbolize_symtab symbolize_symtab;
#define SYMBOLIZE_SYMTAB_MAX_NAME_BYTES (64u << 20)
symbolize_symtab *symbolize_symtab_new(struct Dwfl_Module *mod, bool copy_names);
void symbolize_symtab_free(symbolize_symtab *syms);
/* Whether the names are the index's own copy. */
bool symbolize_symtab_owns_names(const symbolize_symtab *syms);
/* The bytes the index holds (entries and names). */
size_t symbolize_symtab_bytes(const symbolize_symtab *syms);

/* The name of the symbol at addr (an address in mod's own terms) as
 * dwfl_module_addrinfo chooses it (symbolize.c says how), by binary search
 * in *syms (built on need); syms NULL: dwfl_module_addrinfo itself.  NULL
 * when no symbol names addr.  The string lives as long as the module, or
 * as *syms when it owns its names (then mod may be NULL). */
const char *symbolize_symbol(struct Dwfl_Module *mod, symbolize_symtab **syms, uint64_t addr);

/* Whether mod's file has DWARF units (a .debug_info section, compressed or
 * not): without them its frames are its symbols' (symbolize_dwfl_frames),
 * which an index that owns its names gives with the file closed. */
bool symbolize_has_dwarf(struct Dwfl_Module *mod);

/* Readable names of mangled symbols, with libiberty's demangler (the one
 * binutils' nm -C and c++filt use): C++ (the Itanium ABI of GCC and
 * clang) and Rust (legacy and v0), with parameter types and qualifiers
 * (DMGL_PARAMS | DMGL_ANSI, as nm -C; no Rust hash suffixes or crate
 * disambiguators, which DMGL_VERBOSE would add).  A store remembers each
 * name by the address of its mangled string, so it serves the strings of
 * one Dwfl (or one symbol index that owns its names) only and is freed no
 * later than that. */
typedef struct symbolize_names symbolize_names;

/* Mangled names longer than this stay as they are: a demangled name grows
 * with the mangled one and bounds nothing else. */
#define SYMBOLIZE_DEMANGLE_MAX 8192

symbolize_names *symbolize_names_new(void);
void symbolize_names_free(symbolize_names *names);

/* The readable name of mangled (owned by names), or NULL when mangled is
 * no mangled name libiberty reads (C's "main") or is too long. */
const char *symbolize_demangle(symbolize_names *names, const char *mangled);

/* The frames at addr (an address in mod's own terms) innermost first: the
 * inline chain from DWARF when mod has it, else the symbol table's
 * function; 0 when nothing names addr.  cus (NULL: none) points to the
 * module's CU index, NULL until built; syms likewise to its symbol index
 * (NULL: libdwfl's own look-up, for a few addresses once).  mod NULL: a
 * file without DWARF (symbolize_has_dwarf) whose Dwfl ended, named by
 * *syms alone, which must own its names.  names (NULL: names stay as in
 * the file) is the module's Dwfl's (or *syms') store of demangled names.
 * The strings belong to libdw, *syms or names and live as long as the
 * module's Dwfl (mod NULL: as *syms). */
size_t symbolize_dwfl_frames(struct Dwfl_Module *mod, symbolize_cu_index **cus,
                            symbolize_symtab **syms, symbolize_names *names, uint64_t addr,
                            symbolize_frame out[SYMBOLIZE_MAX_INLINE_DEPTH]);

/* The length of path[0..len) without the " (deleted)" the kernel appends
 * to files replaced since they were mapped (the name is still the name). */
size_t symbolize_without_deleted(const char *path, size_t len);

#endif
