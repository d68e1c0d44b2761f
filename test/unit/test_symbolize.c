/* test_symbolize.c -- symbolize/'s symbol index against libdwfl's own
 * look-up, and its demangled names against binutils.
 *
 * symbolize_symbol with an index must name every address as
 * dwfl_module_addrinfo names it (the peer: elfutils scanning every symbol),
 * at each symbol's start, middle, last byte and the bytes around it that
 * are code (what a profile's frames hold), in
 * Debian's libc (dynamic symbols only, IFUNCs and aliases) and in this
 * test program (a full .symtab with local and global symbols) -- also
 * after the file was closed, from the names the index copied.  Whether a
 * file has DWARF units is what binutils' readelf -S lists.
 *
 * The expected names come from `nm -C` (GNU binutils) on an object that
 * `as` assembles with one symbol per name: nm -C prints the names as
 * firn wants them (parameters and qualifiers, no Rust hashes).  c++filt,
 * the other binutils peer, adds DMGL_VERBOSE (Rust's ::h<hash> suffixes
 * and crate disambiguators, std::basic_string<...> spelled out), so its
 * output differs from nm -C's on exactly those names and is not the peer.
 * The C++ names are GCC 12's (g++ -O2) for templates, constructors,
 * operators, lambdas, anonymous namespaces and clones; the Rust ones are
 * rustc 1.63's, legacy and v0 (-C symbol-mangling-version=v0).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <elfutils/libdwfl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "symbolize/symbolize.h"

static const char *const names[] = {
    /* C: no mangling, nm prints them as they are */
    "main",
    "qsort",
    "_start",
    "__restore_rt",
    /* C++ (Itanium ABI) */
    "_ZN3app10use_hiddenEv",
    "_ZN3app11lambda_userEi",
    "_ZN3app6Widget1fEv",
    "_ZN3app6WidgetC1Ei",
    "_ZN3app6WidgetD2Ev",
    "_ZNK3app3BoxIPKcE3getEv",
    "_ZNK3app3BoxIlE3getEv",
    "_ZNK3app6WidgetclERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
    "_ZNSt17_Function_handlerIFiiEZN3app11lambda_userEiEUliE_E9_M_invokeERKSt9_Any_dataOi",
    "_ZN12_GLOBAL__N_16hiddenEPSt6vectorISt3mapIiNSt7__cxx1112basic_stringIcSt11char_"
    "traitsIcESaIcEEESt4lessIiESaISt4pairIKiS6_EEESaISC_EE",
    "_ZNKSs4sizeEv",
    "_ZTVN3app6WidgetE",
    "_Z3fooPKc.isra.0",
    "_Z7cmp_intPKvS0_.cold",
    "_GLOBAL__sub_I_main",
    "_ZSt4endlIcSt11char_traitsIcEERSt13basic_ostreamIT_T0_ES6_",
    /* Rust legacy */
    "_ZN1r3hot17h161d3e5a3165264bE",
    "_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17ha86af84d9cc65291E",
    "_ZN4core3ops8function6FnOnce40call_once$u7b$$u7b$vtable.shim$u7d$$u7d$"
    "17h42e08618e5619cfaE",
    /* Rust v0 */
    "_RNvCs6GmmlP4bgsG_1r3hot",
    "_RNvXsZ_NtCslNYArtu3iFV_5alloc6stringNtB5_6StringNtNtCsgEmfK2I1SDS_4core3fmt5Write9write_str",
    "_RINvNtCsgEmfK2I1SDS_4core3ptr13drop_in_placeINtNtCslNYArtu3iFV_5alloc3vec3VechEECsjrHSEGnQ3l"
    "9_3std",
    "_RNvXs1g_NtCsgEmfK2I1SDS_4core3fmtRDNtB6_5DebugEL_Bx_3fmtB8_",
    "_RNvYNtNtNtNtCsjrHSEGnQ3l9_3std3sys5stdio4unix6StderrNtNtBa_2io5Write9write_fmtBa_",
    /* not valid manglings: nm prints them unchanged */
    "_Zfoo",
    "_RNv",
    "_ZN3fooE_trailing",
};
#define N_NAMES (sizeof names / sizeof *names)

/* nm -C's name of every entry of names, by the symbol's address (its
 * index), from one object assembled with `as`. */
static char **nm_demangled(void)
{
    char dir[] = "/tmp/firn-test-symbolize-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char src[128], obj[128], cmd[512];
    snprintf(src, sizeof src, "%s/names.s", dir);
    snprintf(obj, sizeof obj, "%s/names.o", dir);
    FILE *f = fopen(src, "w");
    assert_non_null(f);
    for (size_t i = 0; i < N_NAMES; i++)   /* quoted: '$' and '.' are in names */
        fprintf(f, ".globl \"%s\"\n\"%s\":\n.byte 0\n", names[i], names[i]);
    assert_int_equal(fclose(f), 0);
    snprintf(cmd, sizeof cmd, "as -o '%s' '%s' && nm -C '%s'", obj, src, obj);
    FILE *nm = popen(cmd, "r");
    assert_non_null(nm);
    char **got = calloc(N_NAMES, sizeof *got);
    assert_non_null(got);
    char line[16384];
    size_t n = 0;
    while (fgets(line, sizeof line, nm)) {
        uint64_t addr;
        char type;
        int at = 0;
        line[strcspn(line, "\n")] = '\0';
        assert_int_equal(sscanf(line, "%" SCNx64 " %c %n", &addr, &type, &at), 2);
        assert_true(at > 0 && addr < N_NAMES);
        assert_null(got[addr]);
        got[addr] = strdup(line + at);
        assert_non_null(got[addr]);
        n++;
    }
    assert_int_equal(pclose(nm), 0);
    assert_int_equal(n, N_NAMES);
    unlink(src);
    unlink(obj);
    rmdir(dir);
    return got;
}

static void test_demangle_as_nm(void **state)
{
    (void)state;
    char **want = nm_demangled();
    symbolize_names *store = symbolize_names_new();
    assert_non_null(store);
    size_t demangled = 0;
    for (size_t i = 0; i < N_NAMES; i++) {
        const char *readable = symbolize_demangle(store, names[i]);
        const char *shown = readable ? readable : names[i];
        if (strcmp(shown, want[i]) != 0)
            fail_msg("%s: nm -C says \"%s\", firn \"%s\"", names[i], want[i], shown);
        /* a name nm leaves alone is no mangled name for firn either */
        if (strcmp(want[i], names[i]) == 0)
            assert_null(readable);
        else
            demangled++;
        /* asked again: the remembered string itself */
        assert_ptr_equal(symbolize_demangle(store, names[i]), readable);
        free(want[i]);
    }
    free(want);
    /* the list is not trivially passed: most of its names are mangled */
    assert_true(demangled >= N_NAMES - 8);
    symbolize_names_free(store);
}

/* Longer than SYMBOLIZE_DEMANGLE_MAX: left as it is, never handed to
 * the demangler. */
static void test_demangle_too_long(void **state)
{
    (void)state;
    size_t len = SYMBOLIZE_DEMANGLE_MAX + 2;
    char *name = malloc(len + 1);
    assert_non_null(name);
    memcpy(name, "_ZN", 3);
    memset(name + 3, 'a', len - 3);
    name[len] = '\0';
    symbolize_names *store = symbolize_names_new();
    assert_non_null(store);
    assert_null(symbolize_demangle(store, name));
    symbolize_names_free(store);
    free(name);
}

/* A name the demangler turns into nothing (fuzz.demangle found the Rust v0
 * "_RC0") keeps its mangled form: no frame is ever named "". */
static void test_demangle_empty(void **state)
{
    (void)state;
    symbolize_names *store = symbolize_names_new();
    assert_non_null(store);
    const char *name = "_RC0";
    const char *readable = symbolize_demangle(store, name);
    assert_true(readable == NULL || readable[0] != '\0');
    symbolize_names_free(store);
}

/* Whether addr (module terms) is in an executable section: the agent
 * names code addresses only, and there the index must agree (data
 * symbols at section ends, which libdwfl ranks by rules of its own, are
 * no profile's frames). */
static bool in_code(Dwfl_Module *mod, uint64_t addr)
{
    GElf_Addr bias;
    Elf *elf = dwfl_module_getelf(mod, &bias);
    Elf_Scn *scn = NULL;
    while (elf && (scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_EXECINSTR) &&
            addr >= sh.sh_addr + bias && addr < sh.sh_addr + sh.sh_size + bias)
            return true;
    }
    return false;
}

/* Whether binutils' readelf lists a DWARF units section in path (the
 * peer of symbolize_has_dwarf). */
static bool readelf_has_dwarf(const char *path)
{
    char real[4096];   /* readelf's own /proc/self/exe would be readelf */
    assert_non_null(realpath(path, real));
    path = real;
    char cmd[4600];
    snprintf(cmd, sizeof cmd,
             "readelf -S --wide '%s' | grep -Eq '[[:space:]]\\.z?debug_info[[:space:]]'", path);
    int rc = system(cmd);
    assert_true(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) <= 1);
    return WEXITSTATUS(rc) == 0;
}

typedef struct named_addr {
    uint64_t addr;
    char *want;   /* libdwfl's name, NULL: none */
} named_addr;

/* The index, built from mod and then used with mod's Dwfl ended (as
 * firn-agent does with a file without DWARF), names every address of
 * checked as libdwfl did while it was open; and so do the frames
 * symbolize_dwfl_frames makes from it, named as nm -C would. */
static void compare_after_close(Dwfl *dwfl, Dwfl_Module *mod, const named_addr *checked,
                                size_t n)
{
    symbolize_symtab *syms = symbolize_symtab_new(mod, true);
    assert_true(symbolize_symtab_owns_names(syms));
    assert_true(symbolize_symtab_bytes(syms) > 0);
    dwfl_end(dwfl);   /* its files are closed: names must be the index's own */
    symbolize_names *store = symbolize_names_new();
    for (size_t i = 0; i < n; i++) {
        const char *got = symbolize_symbol(NULL, &syms, checked[i].addr);
        if ((checked[i].want == NULL) != (got == NULL) ||
            (got && strcmp(checked[i].want, got) != 0))
            fail_msg("0x%" PRIx64 ": libdwfl said %s, the closed index %s", checked[i].addr,
                     checked[i].want ? checked[i].want : "(none)", got ? got : "(none)");
        symbolize_frame frames[SYMBOLIZE_MAX_INLINE_DEPTH];
        size_t nf = symbolize_dwfl_frames(NULL, NULL, &syms, store, checked[i].addr, frames);
        assert_int_equal(nf, got ? 1 : 0);
        if (!got)
            continue;
        assert_string_equal(frames[0].system_name, got);
        assert_null(frames[0].file);
        const char *readable = symbolize_demangle(store, got);
        assert_string_equal(frames[0].name, readable ? readable : got);
    }
    symbolize_names_free(store);
    symbolize_symtab_free(syms);
}

static void compare_with_libdwfl(const char *path)
{
    Dwfl *dwfl = symbolize_dwfl_begin();
    assert_non_null(dwfl);
    dwfl_report_begin(dwfl);
    Dwfl_Module *mod = dwfl_report_elf(dwfl, "test", path, -1, 0, false);
    assert_non_null(mod);
    assert_int_equal(dwfl_report_end(dwfl, NULL, NULL), 0);
    symbolize_symtab *syms = NULL;
    int n = dwfl_module_getsymtab(mod);
    assert_true(n > 100);
    size_t checked = 0, named = 0, cap = 0;
    named_addr *seen = NULL;
    for (int i = 1; i < n; i++) {
        GElf_Sym sym;
        GElf_Addr start;
        if (!dwfl_module_getsym_info(mod, i, &sym, &start, NULL, NULL, NULL) || start < 2)
            continue;
        uint64_t at[] = {start - 1, start, start + 1, start + sym.st_size / 2,
                         start + sym.st_size - 1, start + sym.st_size,
                         start + sym.st_size + 1};
        for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
            if (!in_code(mod, at[k]))
                continue;
            const char *want = symbolize_symbol(mod, NULL, at[k]);
            const char *got = symbolize_symbol(mod, &syms, at[k]);
            if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0))
                fail_msg("%s: 0x%" PRIx64 ": libdwfl says %s, the index %s", path, at[k],
                         want ? want : "(none)", got ? got : "(none)");
            if (checked == cap) {
                cap = cap ? 2 * cap : 1024;
                seen = realloc(seen, cap * sizeof *seen);
                assert_non_null(seen);
            }
            seen[checked++] = (named_addr){at[k], got ? strdup(got) : NULL};
            named += got != NULL;
        }
    }
    assert_non_null(syms);
    assert_false(symbolize_symtab_owns_names(syms));   /* the file stays open */
    assert_true(named > checked / 2);   /* not a comparison of nothing */
    symbolize_symtab_free(syms);
    assert_int_equal(symbolize_has_dwarf(mod), readelf_has_dwarf(path));
    compare_after_close(dwfl, mod, seen, checked);
    for (size_t i = 0; i < checked; i++)
        free(seen[i].want);
    free(seen);
}

static void test_symbols_libc(void **state)
{
    (void)state;
    compare_with_libdwfl("/lib/x86_64-linux-gnu/libc.so.6");
}

static void test_symbols_self(void **state)
{
    (void)state;
    compare_with_libdwfl("/proc/self/exe");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demangle_as_nm),
        cmocka_unit_test(test_demangle_too_long),
        cmocka_unit_test(test_demangle_empty),
        cmocka_unit_test(test_symbols_libc),
        cmocka_unit_test(test_symbols_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
