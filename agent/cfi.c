/* cfi.c -- a file's call frame information (.eh_frame, else .debug_frame)
 * compiled into the unwind rows the BPF program walks stacks with
 * (bpf/profile.h explains the rows).
 *
 * elfutils interprets the CFI: dwarf_cfi_addrframe gives the rules at an
 * address and, through dwarf_frame_info, the range of addresses that share
 * them, which is one row.  What elfutils does not offer is the list of
 * FDEs, so dwarf_next_cfi walks the section and each FDE's address range
 * is decoded here (the pointer encodings x86-64 toolchains write), with
 * where its instructions start (past its augmentation data).  Each FDE's
 * range is then walked row by row, which libdw does by running the FDE's
 * instructions from its start again for each row: FDEs whose CIE and
 * instruction bytes are the same (about half of them) share the rows of
 * one, relative to its start.  A gap between FDEs gets a row
 * without rules, so that an address no FDE covers is a miss rather than
 * the previous function's rules.  Consecutive rows with the same rules are
 * merged.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <gelf.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "agent/agent.h"

#define REG_RBP 6
#define REG_RSP 7
#define REG_RIP 16

typedef struct fde_range {
    uint64_t start, end;
    uint64_t cie;                  /* its CIE's offset */
    const uint8_t *ins;            /* its instructions (NULL: not found) */
    size_t ins_len;
} fde_range;

typedef struct cie_enc {
    uint64_t offset;
    uint8_t enc;       /* the FDE pointer encoding ('R'), DW_EH_PE_absptr without one */
    bool aug_data;     /* 'z': FDEs carry augmentation data before their instructions */
} cie_enc;

/* A set of FDEs with the same CIE and instructions: at the same offset
 * from their starts they have the same rules, so the rows libdw gave for
 * one (kept with pcs relative to its start) serve every other no longer
 * than it. */
typedef struct fde_group {
    uint32_t first_fde;            /* its first member, by address */
    uint32_t members;
    uint64_t len;                  /* length of the member whose rows are kept, 0: none */
    uint32_t first, n;             /* those rows in the kept list */
} fde_group;

#define NO_GROUP UINT32_MAX

/* Bytes of a pointer in encoding enc (ELF64), 0 when not fixed-size. */
static size_t enc_size(uint8_t enc)
{
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr: return 8;
    case DW_EH_PE_udata2: case DW_EH_PE_sdata2: return 2;
    case DW_EH_PE_udata4: case DW_EH_PE_sdata4: return 4;
    case DW_EH_PE_udata8: case DW_EH_PE_sdata8: return 8;
    default: return 0;
    }
}

/* The value of a little-endian pointer at p (its format only). */
static bool read_enc(const uint8_t *p, const uint8_t *end, uint8_t enc, int64_t *v)
{
    size_t n = enc_size(enc);
    if (n == 0 || (size_t)(end - p) < n)
        return false;
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++)
        u |= (uint64_t)p[i] << (8 * i);
    if ((enc & 0x0f) == DW_EH_PE_sdata2)
        *v = (int16_t)u;
    else if ((enc & 0x0f) == DW_EH_PE_sdata4)
        *v = (int32_t)u;
    else
        *v = (int64_t)u;
    return true;
}

/* The FDE pointer encoding of an .eh_frame CIE: the 'R' entry of its
 * augmentation data, after the 'L' and 'P' ones. */
static bool cie_fde_encoding(const Dwarf_CIE *cie, uint8_t *enc)
{
    *enc = DW_EH_PE_absptr;
    const char *aug = cie->augmentation;
    if (!aug || aug[0] != 'z')
        return aug && aug[0] == '\0';
    const uint8_t *d = cie->augmentation_data;
    const uint8_t *end = d + cie->augmentation_data_size;
    for (const char *c = aug + 1; *c; c++) {
        if (*c == 'L') {
            d++;
        } else if (*c == 'P') {
            if (d >= end)
                return false;
            uint8_t penc = *d++;
            size_t n = enc_size(penc);
            if (n == 0)
                return false;
            d += n;
        } else if (*c == 'R') {
            if (d >= end)
                return false;
            *enc = *d;
            return true;
        } else if (*c != 'S' && *c != 'B') {
            return false;
        }
    }
    return true;
}

/* The instructions of an FDE whose address fields end at p: after its
 * augmentation data (a ULEB128 length, then that many bytes) when its
 * CIE says 'z'.  Left NULL when they run past end. */
static void fde_instructions(fde_range *f, const uint8_t *p, const uint8_t *end, bool aug_data)
{
    if (p > end)
        return;
    if (aug_data) {
        uint64_t n = 0;
        unsigned shift = 0;
        uint8_t b;
        do {
            if (p >= end || shift > 56)
                return;
            b = *p++;
            n |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
        } while (b & 0x80);
        if (n > (uint64_t)(end - p))
            return;
        p += n;
    }
    f->ins = p;
    f->ins_len = (size_t)(end - p);
}

static int compare_range(const void *x, const void *y)
{
    const fde_range *a = x, *b = y;
    return a->start < b->start ? -1 : a->start > b->start;
}

/* Every FDE's [start, end) of the CFI section scn, sorted. */
static int list_fdes(Elf *elf, Elf_Scn *scn, bool eh, fde_range **out, size_t *n_out,
                     firn_err *err)
{
    GElf_Shdr sh;
    Elf_Data *data = elf_getdata(scn, NULL);
    if (!gelf_getshdr(scn, &sh) || !data || !data->d_buf)
        return firn_errf(err, FIRN_EINVAL, "cannot read the CFI section: %s", elf_errmsg(-1));
    const unsigned char *ident = (const unsigned char *)elf_getident(elf, NULL);
    cie_enc *cies = NULL;
    size_t n_cies = 0, cap_cies = 0;
    fde_range *fdes = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    /* two passes: an FDE may come before its CIE */
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        Dwarf_Off off = 0, next;
        Dwarf_CFI_Entry e;
        int r;
        while ((r = dwarf_next_cfi(ident, data, eh, off, &next, &e)) == 0) {
            if (pass == 0 && dwarf_cfi_cie_p(&e)) {
                cies = firn_grow(cies, n_cies, &cap_cies, sizeof *cies, 16);
                cies[n_cies].offset = off;
                if (!eh)
                    cies[n_cies].enc = DW_EH_PE_absptr;
                else if (!cie_fde_encoding(&e.cie, &cies[n_cies].enc))
                    cies[n_cies].enc = 0xff;   /* FDEs of it are skipped */
                cies[n_cies].aug_data = e.cie.augmentation && e.cie.augmentation[0] == 'z';
                n_cies++;
            } else if (pass == 1 && !dwarf_cfi_cie_p(&e)) {
                uint8_t enc = 0xff;
                bool aug_data = false;
                for (size_t i = 0; i < n_cies; i++)
                    if (cies[i].offset == e.fde.CIE_pointer) {
                        enc = cies[i].enc;
                        aug_data = cies[i].aug_data;
                    }
                if (!eh && gelf_getclass(elf) == ELFCLASS32)
                    enc = DW_EH_PE_udata4;
                int64_t loc, len;
                const uint8_t *end = (const uint8_t *)data->d_buf + data->d_size;
                if (enc == 0xff || (enc & 0x80) || ((enc & 0x70) != 0 && (enc & 0x70) != 0x10) ||
                    !read_enc(e.fde.start, end, enc, &loc) ||
                    !read_enc(e.fde.start + enc_size(enc), end, enc & 0x0f, &len)) {
                    off = next;
                    continue;   /* an encoding x86-64 toolchains do not write */
                }
                if ((enc & 0x70) == 0x10)   /* pc-relative: to the field's own address */
                    loc += (int64_t)(sh.sh_addr +
                                     (uint64_t)(e.fde.start - (const uint8_t *)data->d_buf));
                if (len > 0) {
                    fdes = firn_grow(fdes, n, &cap, sizeof *fdes, 256);
                    fdes[n] = (fde_range){(uint64_t)loc, (uint64_t)loc + (uint64_t)len,
                                          e.fde.CIE_pointer, NULL, 0};
                    fde_instructions(&fdes[n], e.fde.start + 2 * enc_size(enc), e.fde.end,
                                     aug_data);
                    n++;
                }
            }
            off = next;
        }
        if (r < 0 && rc == 0 && n == 0 && pass == 1)
            rc = firn_errf(err, FIRN_EINVAL, "malformed CFI at offset %llu: %s",
                           (unsigned long long)off, dwarf_errmsg(-1));
    }
    free(cies);
    if (rc < 0) {
        free(fdes);
        return rc;
    }
    firn_sort(fdes, n, sizeof *fdes, compare_range);
    *out = fdes;
    *n_out = n;
    return 0;
}

static bool is_op(const Dwarf_Op *op, uint8_t atom, int64_t number)
{
    return op->atom == atom && (int64_t)op->number == number;
}

static bool fits16(int64_t v)
{
    return v >= INT16_MIN && v <= INT16_MAX;
}

/* The rules of one frame state as a row (its pc set by the caller). */
static struct profile_unwind_row frame_row(Dwarf_Frame *frame, int ra_reg)
{
    struct profile_unwind_row row = {0};
    Dwarf_Op mem[3], *ops;
    size_t n;
    if (dwarf_frame_cfa(frame, &ops, &n) != 0 || n == 0)
        return row;
    /* DW_CFA_def_cfa comes as DW_OP_bregx (register, offset) */
    int64_t reg = -1, off = 0;
    if (n == 1 && ops[0].atom == DW_OP_bregx) {
        reg = (int64_t)ops[0].number;
        off = (int64_t)ops[0].number2;
    } else if (n == 1 && ops[0].atom >= DW_OP_breg0 && ops[0].atom <= DW_OP_breg31) {
        reg = ops[0].atom - DW_OP_breg0;
        off = (int64_t)ops[0].number;
    }
    if ((reg == REG_RSP || reg == REG_RBP) && off >= INT32_MIN && off <= INT32_MAX) {
        row.cfa = reg == REG_RSP ? PROFILE_CFA_RSP : PROFILE_CFA_RBP;
        row.cfa_off = (int32_t)off;
    } else if (n == 2 && ops[0].atom == DW_OP_breg0 + REG_RSP && ops[1].atom == DW_OP_deref &&
               fits16((int64_t)ops[0].number)) {
        /* glibc's __restore_rt: CFA = *(rsp + offsetof(ucontext, uc_mcontext.rsp)) */
        row.cfa = PROFILE_CFA_SIGNAL;
        row.cfa_off = (int32_t)(int64_t)ops[0].number;
        return row;
    } else if (n == 9 && ops[0].atom == DW_OP_breg0 + REG_RSP && fits16((int64_t)ops[0].number) &&
               is_op(&ops[1], DW_OP_breg0 + REG_RIP, 0) && is_op(&ops[2], DW_OP_lit15, 0) &&
               ops[3].atom == DW_OP_and && ops[4].atom >= DW_OP_lit0 &&
               ops[4].atom <= DW_OP_lit15 && ops[5].atom == DW_OP_ge &&
               is_op(&ops[6], DW_OP_lit3, 0) && ops[7].atom == DW_OP_shl &&
               ops[8].atom == DW_OP_plus) {
        /* the .plt's expression: 8 more once the entry's push has run */
        row.cfa = PROFILE_CFA_PLT;
        row.cfa_off = (int32_t)(int64_t)ops[0].number;
        row.rbp_off = (int16_t)(ops[4].atom - DW_OP_lit0);
        return row;
    } else {
        return row;   /* an expression we do not evaluate */
    }

    /* the return address: at CFA - 8, or undefined in the outermost frame */
    if (dwarf_frame_register(frame, ra_reg, mem, &ops, &n) != 0)
        return (struct profile_unwind_row){0};
    if (n == 0 && ops == mem) {
        row.cfa = PROFILE_CFA_END;
        row.cfa_off = 0;
        return row;
    }
    if (!(n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst &&
          (int64_t)ops[1].number == -8))
        return (struct profile_unwind_row){0};

    if (dwarf_frame_register(frame, REG_RBP, mem, &ops, &n) == 0 && n >= 1 &&
        ops[0].atom == DW_OP_call_frame_cfa) {
        int64_t saved = n >= 2 && ops[1].atom == DW_OP_plus_uconst ? (int64_t)ops[1].number : 0;
        if ((n == 1 || (n == 2 && ops[1].atom == DW_OP_plus_uconst)) && fits16(saved)) {
            row.rbp = PROFILE_RBP_CFA;
            row.rbp_off = (int16_t)saved;
        }
    }
    return row;
}

static bool same_rules(const struct profile_unwind_row *a, const struct profile_unwind_row *b)
{
    return a->cfa == b->cfa && a->rbp == b->rbp && a->cfa_off == b->cfa_off &&
           a->rbp_off == b->rbp_off;
}

/* Append a row at pc unless the last one has the same rules. */
static int add_row(agent_unwind_table *t, size_t *cap, uint64_t pc,
                   struct profile_unwind_row row, firn_err *err)
{
    if (pc > UINT32_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "code at 0x%llx: unwind rows address 4 GiB",
                         (unsigned long long)pc);
    row.pc = (uint32_t)pc;
    if (t->n > 0 && same_rules(&t->rows[t->n - 1], &row))
        return 0;
    if (t->n > 0 && t->rows[t->n - 1].pc == row.pc) {   /* an empty range before it */
        t->rows[t->n - 1] = row;
        return 0;
    }
    if (t->n >= AGENT_UNWIND_MAX_ROWS)
        return firn_errf(err, FIRN_ETOOBIG, "more than %u unwind rows",
                         (unsigned)AGENT_UNWIND_MAX_ROWS);
    t->rows = firn_grow(t->rows, t->n, cap, sizeof *t->rows, 1024);
    t->rows[t->n++] = row;
    return 0;
}

typedef struct rel_row {
    uint64_t rel;                  /* pc - the FDE's start */
    struct profile_unwind_row row;
} rel_row;

/* libdw's rows of FDE f, appended to *rows: one dwarf_cfi_addrframe per
 * row, dwarf_frame_info giving where its rules end.  An address libdw
 * finds no rules for ends the FDE with a row without rules.  More rows
 * than a whole table may hold is an error (before they are allocated). */
static int fde_rows(Dwarf_CFI *cfi, const fde_range *f, rel_row **rows, size_t *n, size_t *cap,
                    firn_err *err)
{
    size_t first = *n;
    for (uint64_t pc = f->start; pc < f->end;) {
        Dwarf_Frame *frame = NULL;
        Dwarf_Addr start, end;
        bool signal;
        int ra;
        if (*n - first >= AGENT_UNWIND_MAX_ROWS)
            return firn_errf(err, FIRN_ETOOBIG, "an FDE at 0x%llx with more than %u rows",
                             (unsigned long long)f->start, (unsigned)AGENT_UNWIND_MAX_ROWS);
        *rows = firn_grow(*rows, *n, cap, sizeof **rows, 256);
        if (dwarf_cfi_addrframe(cfi, pc, &frame) != 0 ||
            (ra = dwarf_frame_info(frame, &start, &end, &signal)) < 0) {
            free(frame);
            (*rows)[(*n)++] = (rel_row){pc - f->start, {0}};
            return 0;
        }
        (*rows)[(*n)++] = (rel_row){pc - f->start, frame_row(frame, ra)};
        free(frame);
        pc = end > pc && end < f->end ? end : f->end;
    }
    return 0;
}

/* group[i]: the group of FDEs fdes[i] shares its CIE and instructions
 * with (NO_GROUP when its instructions are unknown). */
static void group_fdes(const fde_range *fdes, size_t n_fdes, uint32_t **group_out,
                       fde_group **groups_out)
{
    uint32_t *group = firn_xmalloc((n_fdes ? n_fdes : 1) * sizeof *group);
    fde_group *groups = NULL;
    size_t n_groups = 0, cap = 0;
    firn_u64map by_hash;
    firn_u64map_init(&by_hash, n_fdes);
    for (size_t i = 0; i < n_fdes; i++) {
        const fde_range *f = &fdes[i];
        group[i] = NO_GROUP;
        if (!f->ins || i > UINT32_MAX)
            continue;
        uint64_t h = XXH3_64bits_withSeed(f->ins, f->ins_len, f->cie);
        uint32_t gi = (uint32_t)n_groups;
        if (firn_u64map_put(&by_hash, h, gi, &gi) == 1) {
            groups = firn_grow(groups, n_groups, &cap, sizeof *groups, 256);
            groups[n_groups++] = (fde_group){.first_fde = (uint32_t)i, .members = 1};
            group[i] = gi;
        } else {
            const fde_range *g = &fdes[groups[gi].first_fde];
            if (g->cie == f->cie && g->ins_len == f->ins_len &&
                memcmp(g->ins, f->ins, f->ins_len) == 0) {
                groups[gi].members++;
                group[i] = gi;
            }   /* else a collision: computed on its own */
        }
    }
    firn_u64map_destroy(&by_hash);
    *group_out = group;
    *groups_out = groups;
}

static Elf_Scn *find_section(Elf *elf, const char *name)
{
    size_t shstrndx;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return NULL;
    for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr sh;
        const char *n;
        if (gelf_getshdr(scn, &sh) && sh.sh_type != SHT_NOBITS &&
            (n = elf_strptr(elf, shstrndx, sh.sh_name)) && strcmp(n, name) == 0)
            return scn;
    }
    return NULL;
}

int agent_cfi_compile(struct Elf *elf, agent_unwind_table *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    const unsigned char *ident = (const unsigned char *)elf_getident(elf, NULL);
    GElf_Ehdr eh;
    if (!ident || !gelf_getehdr(elf, &eh))
        return firn_errf(err, FIRN_EINVAL, "not an ELF file: %s", elf_errmsg(-1));
    if (eh.e_machine != EM_X86_64 || ident[EI_DATA] != ELFDATA2LSB)
        return firn_errf(err, FIRN_EINVAL, "unwind tables are for x86-64 only (machine %u)",
                         (unsigned)eh.e_machine);
    Elf_Scn *scn = find_section(elf, ".eh_frame");
    bool is_eh = scn != NULL;
    Dwarf *dw = NULL;
    Dwarf_CFI *cfi = NULL;
    if (is_eh) {
        cfi = dwarf_getcfi_elf(elf);
    } else if ((scn = find_section(elf, ".debug_frame")) != NULL) {
        dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
        cfi = dw ? dwarf_getcfi(dw) : NULL;
    } else {
        return firn_errf(err, FIRN_EINVAL, "no .eh_frame or .debug_frame");
    }
    if (!cfi) {
        if (dw)
            dwarf_end(dw);
        return firn_errf(err, FIRN_EINVAL, "cannot read the CFI: %s", dwarf_errmsg(-1));
    }
    fde_range *fdes = NULL;
    size_t n_fdes = 0, cap = 0;
    int rc = list_fdes(elf, scn, is_eh, &fdes, &n_fdes, err);
    uint32_t *group = NULL;
    fde_group *groups = NULL;
    if (rc == 0)
        group_fdes(fdes, n_fdes, &group, &groups);
    rel_row *kept = NULL;          /* rows of groups' members, then scratch */
    size_t n_kept = 0, cap_kept = 0;
    uint64_t covered = 0;   /* end of the last FDE walked */
    for (size_t i = 0; rc == 0 && i < n_fdes; i++) {
        fde_range f = fdes[i];
        if (f.start < covered) {
            out->fdes_skipped++;   /* overlaps the previous one */
            continue;
        }
        out->fdes++;
        fde_group *g = group[i] == NO_GROUP ? NULL : &groups[group[i]];
        uint64_t len = f.end - f.start;
        size_t first = n_kept, n;
        if (g && g->len > 0 && len <= g->len) {
            first = g->first;   /* the rows of a member at least as long */
            n = g->n;
        } else {
            rc = fde_rows(cfi, &f, &kept, &n_kept, &cap_kept, err);
            n = n_kept - first;
            if (g && g->members > 1 && n_kept <= UINT32_MAX) {
                g->len = len;
                g->first = (uint32_t)first;
                g->n = (uint32_t)n;
            } else {
                n_kept = first;   /* no other member: scratch */
            }
        }
        for (size_t k = first; rc == 0 && k < first + n && kept[k].rel < len; k++) {
            if (kept[k].row.cfa == PROFILE_CFA_NONE)
                out->rows_unsupported++;
            rc = add_row(out, &cap, f.start + kept[k].rel, kept[k].row, err);
        }
        covered = f.end;
        /* the gap up to the next FDE, or the end of the last one */
        if (rc == 0 && (i + 1 == n_fdes || fdes[i + 1].start > f.end))
            rc = add_row(out, &cap, f.end, (struct profile_unwind_row){0}, err);
    }
    free(kept);
    free(group);
    free(groups);
    free(fdes);
    if (dw)
        dwarf_end(dw);   /* and the CFI it owns */
    else
        dwarf_cfi_end(cfi);
    if (rc < 0) {
        agent_unwind_table_free(out);
        return rc;
    }
    return 0;
}

const struct profile_unwind_row *agent_unwind_lookup(const agent_unwind_table *t, uint64_t pc)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->rows[mid].pc <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 ? &t->rows[lo - 1] : NULL;
}

void agent_unwind_table_free(agent_unwind_table *t)
{
    free(t->rows);
    memset(t, 0, sizeof *t);
}
