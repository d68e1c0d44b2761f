/* test_agent_cfi.c -- agent/cfi.c, the CFI -> unwind rows compiler, on real
 * files of this machine (Debian's libc, and the e2e's unwind workload built
 * with -O2 -fomit-frame-pointer) against binutils' reading of the same CFI:
 * `readelf --debug-dump=frames-interp` prints every FDE's rows (LOC, CFA
 * rule, one column per register); at each LOC the compiled table must give
 * the same CFA rule, return address rule and rbp rule, and a pc just past
 * an FDE that no other FDE covers must give no rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"

#ifndef UNWIND_WORKLOAD
#error "UNWIND_WORKLOAD: the path of the unwind workload binary"
#endif
#define LIBC "/usr/lib/x86_64-linux-gnu/libc.so.6"

typedef struct checked {
    size_t rows, exprs, ends, gaps, rbp_saved;
} checked;

/* What readelf's row says, as our row kinds. */
static void expect_row(const char *cfa, const char *ra, const char *rbp,
                       const struct profile_unwind_row *got, uint64_t loc, checked *c)
{
    char where[64];
    snprintf(where, sizeof where, "pc 0x%" PRIx64, loc);
    assert_non_null(got);
    if (strcmp(ra, "u") == 0) {
        if (got->cfa != PROFILE_CFA_END)
            fail_msg("%s: readelf: ra undefined (outermost), got cfa kind %u", where, got->cfa);
        c->ends++;
        return;
    }
    if (strcmp(cfa, "exp") == 0) {
        /* the two expressions of glibc: .plt entries and __restore_rt */
        if (got->cfa != PROFILE_CFA_PLT && got->cfa != PROFILE_CFA_SIGNAL)
            fail_msg("%s: readelf: CFA expression, got cfa kind %u", where, got->cfa);
        c->exprs++;
        return;
    }
    int off;
    char reg[8];
    if (strcmp(ra, "c-8") != 0 || sscanf(cfa, "%3[a-z0-9]%d", reg, &off) != 2 ||
        (strcmp(reg, "rsp") != 0 && strcmp(reg, "rbp") != 0)) {
        if (got->cfa != PROFILE_CFA_NONE)
            fail_msg("%s: readelf: CFA %s ra %s (not followed), got cfa kind %u", where, cfa,
                     ra, got->cfa);
        return;
    }
    unsigned want = strcmp(reg, "rsp") == 0 ? PROFILE_CFA_RSP : PROFILE_CFA_RBP;
    if (got->cfa != want || got->cfa_off != off)
        fail_msg("%s: readelf: CFA %s, got kind %u offset %d", where, cfa, got->cfa,
                 got->cfa_off);
    int saved;
    if (rbp && sscanf(rbp, "c%d", &saved) == 1) {
        if (got->rbp != PROFILE_RBP_CFA || got->rbp_off != saved)
            fail_msg("%s: readelf: rbp at %s, got kind %u offset %d", where, rbp, got->rbp,
                     got->rbp_off);
        c->rbp_saved++;
    } else if (got->rbp != PROFILE_RBP_SAME) {
        fail_msg("%s: readelf: rbp %s, got kind %u", where, rbp ? rbp : "(no column)", got->rbp);
    }
    c->rows++;
}

static void compile_file(const char *path, agent_unwind_table *t)
{
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    assert_non_null(elf);
    firn_err err = {0};
    if (agent_cfi_compile(elf, t, &err) != 0)
        fail_msg("%s: %s", path, err.msg);
    elf_end(elf);
    close(fd);
}

/* One row of readelf's: the rules from loc on. */
typedef struct rrow {
    uint64_t loc;
    char cfa[32], ra[32], rbp[32];   /* rbp "" when the table has no rbp column */
} rrow;

typedef struct fde {
    uint64_t start, end, cie;
    size_t first, n;                 /* its rows in the row list */
} fde;

typedef struct cie {
    uint64_t offset;
    rrow initial;
    bool has_initial;
} cie;

/* The values of a row line after its LOC: register rules such as
 * "r10 (r10)" are one value. */
static size_t split_values(char *text, char vals[][32], size_t cap)
{
    size_t n = 0;
    for (char *tok = strtok(text, " \n"); tok; tok = strtok(NULL, " \n")) {
        if (tok[0] == '(' && n > 0)
            continue;   /* the second half of "rN (name)" */
        if (n < cap)
            snprintf(vals[n++], 32, "%s", tok);
    }
    return n;
}

/* Compare the table of path with readelf's rows of its .eh_frame. */
static checked compare_with_readelf(const char *path)
{
    agent_unwind_table t;
    compile_file(path, &t);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "readelf --debug-dump=frames-interp '%s'", path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    rrow *rows = NULL;
    size_t n_rows = 0;
    fde *fdes = NULL;
    size_t n_fdes = 0;
    cie cies[64];
    size_t n_cies = 0;
    enum { NONE, IN_CIE, IN_FDE } in = NONE;
    bool in_eh = false;
    int col_rbp = -1, col_ra = -1;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        uint64_t a, b, c;
        char kind[8];
        if (strstr(line, "Contents of the ")) {
            in_eh = strstr(line, ".eh_frame section") != NULL;
            in = NONE;
        } else if (!in_eh) {
            continue;
        } else if (sscanf(line, "%" SCNx64 " %" SCNx64 " %" SCNx64 " %7s", &a, &b, &c, kind) ==
                       4 && strcmp(kind, "CIE") == 0) {
            assert_true(n_cies < 64);
            cies[n_cies++] = (cie){.offset = a};
            in = IN_CIE;
        } else if (strstr(line, " FDE cie=")) {
            fde d = {.first = n_rows};
            assert_int_equal(sscanf(strstr(line, "cie="), "cie=%" SCNx64, &d.cie), 1);
            assert_int_equal(sscanf(strstr(line, "pc="), "pc=%" SCNx64 "..%" SCNx64, &d.start,
                                    &d.end), 2);
            fdes = realloc(fdes, (n_fdes + 1) * sizeof *fdes);
            assert_non_null(fdes);
            fdes[n_fdes++] = d;
            in = IN_FDE;
        } else if (strncmp(line, "   LOC", 6) == 0) {
            char cols[64][32];
            size_t n = split_values(line + 6, cols, 64);
            col_rbp = col_ra = -1;
            for (size_t i = 0; i < n; i++) {
                if (strcmp(cols[i], "rbp") == 0)
                    col_rbp = (int)i;
                if (strcmp(cols[i], "ra") == 0)
                    col_ra = (int)i;
            }
        } else if (in != NONE && strlen(line) > 17 && line[16] == ' ' &&
                   sscanf(line, "%" SCNx64, &a) == 1) {
            char vals[64][32];
            size_t n = split_values(line + 17, vals, 64);
            assert_true(col_ra >= 0 && (size_t)col_ra < n);
            rrow r = {.loc = a};
            snprintf(r.cfa, sizeof r.cfa, "%s", vals[0]);
            snprintf(r.ra, sizeof r.ra, "%s", vals[col_ra]);
            if (col_rbp >= 0 && (size_t)col_rbp < n)
                snprintf(r.rbp, sizeof r.rbp, "%s", vals[col_rbp]);
            if (in == IN_CIE) {
                cies[n_cies - 1].initial = r;
                cies[n_cies - 1].has_initial = true;
                continue;
            }
            fde *d = &fdes[n_fdes - 1];
            if (d->n > 0 && rows[n_rows - 1].loc == r.loc) {
                rows[n_rows - 1] = r;   /* a later row at the same LOC wins */
                continue;
            }
            rows = realloc(rows, (n_rows + 1) * sizeof *rows);
            assert_non_null(rows);
            rows[n_rows++] = r;
            d->n++;
        }
    }
    /* readelf 2.40 exits 1, silently, on Debian's libc (which has no
     * .debug_* sections) after printing all of .eh_frame: its status is
     * not the test; the FDEs it printed are */
    pclose(f);
    assert_true(n_fdes > 0);

    checked c = {0};
    for (size_t i = 0; i < n_fdes; i++) {
        const fde *d = &fdes[i];
        if (d->n == 0) {
            /* no instructions: the CIE's initial rules over the whole FDE */
            const cie *ci = NULL;
            for (size_t k = 0; k < n_cies; k++)
                if (cies[k].offset == d->cie)
                    ci = &cies[k];
            assert_non_null(ci);
            assert_true(ci->has_initial);
            expect_row(ci->initial.cfa, ci->initial.ra, ci->initial.rbp[0] ? ci->initial.rbp : NULL,
                       agent_unwind_lookup(&t, d->start), d->start, &c);
        }
        for (size_t k = d->first; k < d->first + d->n; k++) {
            const rrow *r = &rows[k];
            if (r->loc >= d->end)
                continue;   /* an advance past the FDE's end */
            expect_row(r->cfa, r->ra, r->rbp[0] ? r->rbp : NULL, agent_unwind_lookup(&t, r->loc),
                       r->loc, &c);
        }
        /* the end of an FDE that no other FDE continues: no rule */
        bool continued = d->end == d->start;
        for (size_t k = 0; k < n_fdes && !continued; k++)
            continued = fdes[k].start <= d->end && d->end < fdes[k].end;
        if (!continued) {
            const struct profile_unwind_row *r = agent_unwind_lookup(&t, d->end);
            assert_non_null(r);
            if (r->cfa != PROFILE_CFA_NONE)
                fail_msg("%s: pc 0x%" PRIx64 " past an FDE: got cfa kind %u", path, d->end,
                         r->cfa);
            c.gaps++;
        }
    }
    free(rows);
    free(fdes);
    agent_unwind_table_free(&t);
    return c;
}

static void test_libc(void **state)
{
    (void)state;
    checked c = compare_with_readelf(LIBC);
    print_message("libc: %zu rows, %zu expressions, %zu outermost, %zu gaps, %zu rbp saved\n",
                  c.rows, c.exprs, c.ends, c.gaps, c.rbp_saved);
    assert_true(c.rows > 10000);     /* libc has thousands of functions */
    assert_true(c.exprs >= 2);       /* its .plt and __restore_rt */
    assert_true(c.rbp_saved > 100);
    assert_true(c.gaps > 100);
}

static void test_workload(void **state)
{
    (void)state;
    checked c = compare_with_readelf(UNWIND_WORKLOAD);
    print_message("workload: %zu rows, %zu expressions, %zu outermost, %zu gaps\n", c.rows,
                  c.exprs, c.ends, c.gaps);
    assert_true(c.rows >= 5);
    assert_true(c.ends >= 1);        /* _start: the return address is undefined */
}

/* What the BPF side needs of a lookup: below the first row nothing; every
 * row at its own pc. */
static void test_lookup(void **state)
{
    (void)state;
    agent_unwind_table t;
    compile_file(UNWIND_WORKLOAD, &t);
    assert_true(t.n > 0);
    assert_null(t.rows[0].pc > 0 ? agent_unwind_lookup(&t, t.rows[0].pc - 1) : NULL);
    for (size_t i = 0; i < t.n; i++) {
        assert_ptr_equal(agent_unwind_lookup(&t, t.rows[i].pc), &t.rows[i]);
        if (i > 0)
            assert_true(t.rows[i - 1].pc < t.rows[i].pc);
    }
    agent_unwind_table_free(&t);
}

/* Not ELF, or ELF without CFI: an error naming it, nothing allocated. */
static void test_errors(void **state)
{
    (void)state;
    elf_version(EV_CURRENT);
    char junk[] = "not an ELF file at all";
    Elf *elf = elf_memory(junk, sizeof junk);
    agent_unwind_table t;
    firn_err err = {0};
    assert_true(agent_cfi_compile(elf, &t, &err) < 0);
    assert_non_null(strstr(err.msg, "not an ELF"));
    assert_null(t.rows);
    elf_end(elf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libc),
        cmocka_unit_test(test_workload),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
