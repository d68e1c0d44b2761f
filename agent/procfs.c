/* procfs.c -- parsers of what the kernel tells about processes:
 * /proc/kallsyms, /proc/PID/maps, /proc/PID/stat, /proc/PID/cgroup, and the
 * JIT perf maps runtimes write into /tmp.  Pure functions over text already read (the
 * callers read the files, capped), so that they are unit-tested and fuzzed
 * on any input: a malformed line is an error naming its number, never a
 * crash, and every table is capped. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

/* ---- lines and fields ------------------------------------------------------- */

typedef struct cursor {
    const char *p, *end;
    size_t line_no;
} cursor;

/* The next line of c (without its '\n') into [*s, *e); false at the end. */
static bool next_line(cursor *c, const char **s, const char **e)
{
    if (c->p >= c->end)
        return false;
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    *s = c->p;
    *e = nl ? nl : c->end;
    c->p = nl ? nl + 1 : c->end;
    c->line_no++;
    return true;
}

static const char *skip_spaces(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* A hex number at *p (an optional 0x first); false when there is no digit
 * or it overflows 64 bits. */
static bool parse_hex(const char **p, const char *e, uint64_t *out)
{
    const char *q = *p;
    if (e - q >= 2 && q[0] == '0' && (q[1] == 'x' || q[1] == 'X'))
        q += 2;
    uint64_t v = 0;
    const char *digits = q;
    while (q < e && isxdigit((unsigned char)*q)) {
        if (v >> 60)
            return false;
        int d = isdigit((unsigned char)*q) ? *q - '0' : (tolower((unsigned char)*q) - 'a' + 10);
        v = v << 4 | (uint64_t)d;
        q++;
    }
    if (q == digits)
        return false;
    *p = q;
    *out = v;
    return true;
}

static bool parse_dec(const char **p, const char *e, uint64_t *out)
{
    const char *q = *p;
    uint64_t v = 0;
    while (q < e && isdigit((unsigned char)*q)) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*q - '0');
        q++;
    }
    if (q == *p)
        return false;
    *p = q;
    *out = v;
    return true;
}

/* ---- /proc/kallsyms ------------------------------------------------------------ */

static int compare_ksym(const void *a, const void *b)
{
    const agent_ksym *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int agent_kallsyms_parse(const char *text, size_t len, agent_kallsyms *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    if (len > AGENT_KALLSYMS_MAX_BYTES)
        return firn_errf(err, FIRN_ETOOBIG, "kallsyms: %zu bytes, more than the %u allowed",
                         len, AGENT_KALLSYMS_MAX_BYTES);
    out->arena = firn_arena_new(0);
    size_t cap = 0;
    bool any_address = false;
    cursor c = {text, text + len, 0};
    const char *s, *e;
    while (next_line(&c, &s, &e)) {
        if (s == e)
            continue;
        const char *p = s;
        uint64_t addr;
        if (!parse_hex(&p, e, &addr) || p == e || *p != ' ') {
            agent_kallsyms_free(out);
            return firn_errf(err, FIRN_EINVAL, "kallsyms:%zu: want \"ADDRESS TYPE NAME\"",
                             c.line_no);
        }
        p = skip_spaces(p, e);
        if (p == e || !isalpha((unsigned char)*p) || p + 1 == e || p[1] != ' ') {
            agent_kallsyms_free(out);
            return firn_errf(err, FIRN_EINVAL, "kallsyms:%zu: bad symbol type", c.line_no);
        }
        char type = *p;
        p = skip_spaces(p + 1, e);
        const char *name = p;
        while (p < e && *p != '\t' && *p != ' ')
            p++;
        size_t name_len = (size_t)(p - name);
        if (name_len == 0 || name_len > 1024) {
            agent_kallsyms_free(out);
            return firn_errf(err, FIRN_EINVAL, "kallsyms:%zu: bad symbol name", c.line_no);
        }
        if (addr)
            any_address = true;
        if (type != 't' && type != 'T' && type != 'w' && type != 'W')
            continue;
        /* "name\t[module]" becomes "name [module]" */
        const char *mod = skip_spaces(p, e);
        size_t mod_len = (size_t)(e - mod);
        if (mod_len > 256)
            mod_len = 256;
        out->syms = firn_grow(out->syms, out->n, &cap, sizeof *out->syms, 4096);
        char *copy = firn_arena_alloc(out->arena, name_len + mod_len + 2);
        memcpy(copy, name, name_len);
        if (mod_len) {
            copy[name_len] = ' ';
            memcpy(copy + name_len + 1, mod, mod_len);
            copy[name_len + 1 + mod_len] = '\0';
        } else {
            copy[name_len] = '\0';
        }
        out->syms[out->n++] = (agent_ksym){addr, copy};
    }
    if (!any_address && out->n > 0) {
        agent_kallsyms_free(out);
        return firn_errf(err, FIRN_EINVAL, "kallsyms: every address is 0: the kernel hides "
                         "them (kernel.kptr_restrict) from a reader without CAP_SYSLOG");
    }
    firn_sort(out->syms, out->n, sizeof *out->syms, compare_ksym);
    return 0;
}

const agent_ksym *agent_kallsyms_lookup(const agent_kallsyms *k, uint64_t addr)
{
    size_t i = firn_sorted_count_le(k->syms, k->n, sizeof *k->syms, offsetof(agent_ksym, addr),
                                    addr);
    return i > 0 ? &k->syms[i - 1] : NULL;
}

void agent_kallsyms_free(agent_kallsyms *k)
{
    free(k->syms);
    firn_arena_free(k->arena);
    memset(k, 0, sizeof *k);
}

/* ---- /proc/PID/maps ----------------------------------------------------------------- */

static const char DELETED[] = " (deleted)";

int agent_maps_parse(const char *text, size_t len, agent_maps *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    if (len > AGENT_MAPS_MAX_BYTES)
        return firn_errf(err, FIRN_ETOOBIG, "maps: %zu bytes, more than the %u allowed", len,
                         AGENT_MAPS_MAX_BYTES);
    out->arena = firn_arena_new(0);
    size_t cap = 0, entries = 0;
    cursor c = {text, text + len, 0};
    const char *s, *e;
    while (next_line(&c, &s, &e)) {
        if (s == e)
            continue;
        if (++entries > AGENT_MAPS_MAX_ENTRIES) {
            agent_maps_free(out);
            return firn_errf(err, FIRN_ETOOBIG, "maps: more than %u entries",
                             AGENT_MAPS_MAX_ENTRIES);
        }
        /* start-limit perms offset major:minor inode [path] */
        const char *p = s;
        agent_map m = {0};
        uint64_t maj, min;
        bool ok = parse_hex(&p, e, &m.start) && p < e && *p++ == '-' &&
                  parse_hex(&p, e, &m.limit) && p < e && *p++ == ' ';
        const char *perms = p;
        if (ok) {
            while (p < e && *p != ' ')
                p++;
            ok = p - perms == 4 && p < e && *p++ == ' ';
        }
        ok = ok && parse_hex(&p, e, &m.offset) && p < e && *p++ == ' ' &&
             parse_hex(&p, e, &maj) && p < e && *p++ == ':' && parse_hex(&p, e, &min) &&
             p < e && *p++ == ' ' && parse_dec(&p, e, &m.inode) && maj <= UINT32_MAX &&
             min <= UINT32_MAX && m.start <= m.limit;
        if (!ok || (p < e && *p != ' ')) {
            agent_maps_free(out);
            return firn_errf(err, FIRN_EINVAL, "maps:%zu: want \"START-END PERMS OFFSET "
                             "DEV INODE [PATH]\"", c.line_no);
        }
        m.exec = perms[2] == 'x';
        if (!m.exec)
            continue;
        m.dev_major = (uint32_t)maj;
        m.dev_minor = (uint32_t)min;
        const char *path = skip_spaces(p, e);
        size_t path_len = (size_t)(e - path);
        if (path_len >= sizeof DELETED - 1 &&
            memcmp(e - (sizeof DELETED - 1), DELETED, sizeof DELETED - 1) == 0) {
            path_len -= sizeof DELETED - 1;
            m.deleted = true;
        }
        out->maps = firn_grow(out->maps, out->n, &cap, sizeof *out->maps, 64);
        m.path = firn_arena_strndup(out->arena, path, path_len);
        out->maps[out->n++] = m;
    }
    return 0;
}

const agent_map *agent_maps_find(const agent_maps *m, uint64_t addr)
{
    size_t i = firn_sorted_count_le(m->maps, m->n, sizeof *m->maps, offsetof(agent_map, start),
                                    addr);
    return i > 0 && addr < m->maps[i - 1].limit ? &m->maps[i - 1] : NULL;
}

void agent_maps_free(agent_maps *m)
{
    free(m->maps);
    firn_arena_free(m->arena);
    memset(m, 0, sizeof *m);
}

/* ---- /proc/PID/stat ----------------------------------------------------------------- */

int agent_proc_stat_parse(const char *text, size_t len, agent_proc_stat *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    const char *open = memchr(text, '(', len);
    const char *close = NULL;
    for (const char *q = text + len; q > text && !close; q--)
        if (q[-1] == ')')
            close = q - 1;
    if (!open || !close || close < open)
        return firn_errf(err, FIRN_EINVAL, "/proc/PID/stat: no (comm)");
    size_t n = (size_t)(close - open - 1);
    memcpy(out->comm, open + 1, n < sizeof out->comm ? n : sizeof out->comm - 1);
    /* Fields 3 (state) onwards; we want 22 (starttime), 26 (startcode) and
     * 28 (startstack). */
    const char *p = close + 1, *end = text + len;
    for (int field = 3; field <= 28; field++) {
        p = skip_spaces(p, end);
        const char *f = p;
        while (p < end && *p != ' ' && *p != '\n')
            p++;
        if (p == f)
            return firn_errf(err, FIRN_EINVAL, "/proc/PID/stat: %d fields, want 28", field - 1);
        uint64_t *want = field == 22 ? &out->start_time
                         : field == 26 ? &out->start_code
                         : field == 28 ? &out->start_stack
                                       : NULL;
        if (want) {
            char num[24];
            size_t k = (size_t)(p - f);
            char *num_end;
            if (k >= sizeof num)
                return firn_errf(err, FIRN_EINVAL, "/proc/PID/stat: field %d too long", field);
            memcpy(num, f, k);
            num[k] = '\0';
            errno = 0;
            *want = strtoull(num, &num_end, 10);
            if (*num_end || errno || num[0] == '-')
                return firn_errf(err, FIRN_EINVAL, "/proc/PID/stat: field %d: bad number \"%s\"",
                                 field, num);
        }
    }
    return 0;
}

/* ---- JIT perf maps ------------------------------------------------------------------ */

static int compare_perf_sym(const void *a, const void *b)
{
    const agent_perf_sym *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int agent_perf_map_parse(const char *text, size_t len, agent_perf_map *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    if (len > AGENT_PERF_MAP_MAX_BYTES)
        return firn_errf(err, FIRN_ETOOBIG, "perf map: %zu bytes, more than the %u allowed",
                         len, AGENT_PERF_MAP_MAX_BYTES);
    out->arena = firn_arena_new(0);
    size_t cap = 0;
    cursor c = {text, text + len, 0};
    const char *s, *e;
    while (next_line(&c, &s, &e)) {
        if (s == e)
            continue;
        if (out->n == AGENT_PERF_MAP_MAX_ENTRIES) {
            agent_perf_map_free(out);
            return firn_errf(err, FIRN_ETOOBIG, "perf map: more than %u entries",
                             AGENT_PERF_MAP_MAX_ENTRIES);
        }
        const char *p = s;
        agent_perf_sym sym;
        if (!parse_hex(&p, e, &sym.start) || p == e || *p != ' ' ||
            !(p = skip_spaces(p, e), parse_hex(&p, e, &sym.size)) || p == e || *p != ' ' ||
            skip_spaces(p, e) == e) {
            agent_perf_map_free(out);
            return firn_errf(err, FIRN_EINVAL, "perf map:%zu: want \"START SIZE NAME\"",
                             c.line_no);
        }
        const char *name = skip_spaces(p, e);
        size_t name_len = (size_t)(e - name);
        if (name_len > 4096)
            name_len = 4096;
        out->syms = firn_grow(out->syms, out->n, &cap, sizeof *out->syms, 256);
        sym.name = firn_arena_strndup(out->arena, name, name_len);
        out->syms[out->n++] = sym;
    }
    /* Stable order of equal starts is not needed: the last entry written
     * for an address (code regenerated in place) is as good as any. */
    firn_sort(out->syms, out->n, sizeof *out->syms, compare_perf_sym);
    return 0;
}

const agent_perf_sym *agent_perf_map_lookup(const agent_perf_map *m, uint64_t addr)
{
    size_t i = firn_sorted_count_le(m->syms, m->n, sizeof *m->syms,
                                    offsetof(agent_perf_sym, start), addr);
    return i > 0 && addr - m->syms[i - 1].start < m->syms[i - 1].size ? &m->syms[i - 1] : NULL;
}

void agent_perf_map_free(agent_perf_map *m)
{
    free(m->syms);
    firn_arena_free(m->arena);
    memset(m, 0, sizeof *m);
}

/* ---- cgroups ------------------------------------------------------------------------ */

/* Whether [s, e) names the cpu controller among its comma-separated list. */
static bool has_controller(const char *s, const char *e, const char *want)
{
    size_t wl = strlen(want);
    while (s < e) {
        const char *comma = memchr(s, ',', (size_t)(e - s));
        const char *end = comma ? comma : e;
        if ((size_t)(end - s) == wl && memcmp(s, want, wl) == 0)
            return true;
        s = comma ? comma + 1 : e;
    }
    return false;
}

int agent_cgroup_path(const char *text, size_t len, char *out, size_t size, firn_err *err)
{
    if (size == 0)
        return firn_errf(err, FIRN_EINVAL, "cgroup: no room for the path");
    out[0] = '\0';
    if (len > AGENT_CGROUP_MAX_BYTES)
        return firn_errf(err, FIRN_ETOOBIG, "cgroup: %zu bytes, more than the %u allowed", len,
                         AGENT_CGROUP_MAX_BYTES);
    /* rank: 3 unified, 2 cpu, 1 name=systemd, 0 first */
    int best = -1;
    cursor c = {text, text + len, 0};
    const char *s, *e;
    while (next_line(&c, &s, &e)) {
        if (s == e)
            continue;
        /* hierarchy-ID:controller-list:cgroup-path */
        const char *c1 = memchr(s, ':', (size_t)(e - s));
        const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(e - c1 - 1)) : NULL;
        const char *p = s;
        uint64_t id;
        if (!c2 || !parse_dec(&p, c1, &id) || p != c1 || c2 + 1 == e || c2[1] != '/')
            return firn_errf(err, FIRN_EINVAL, "cgroup:%zu: want \"ID:CONTROLLERS:/PATH\"",
                             c.line_no);
        int rank = 0;
        if (id == 0 && c2 == c1 + 1)
            rank = 3;
        else if (has_controller(c1 + 1, c2, "cpu"))
            rank = 2;
        else if (has_controller(c1 + 1, c2, "name=systemd"))
            rank = 1;
        if (rank > best) {
            best = rank;
            size_t n = (size_t)(e - c2 - 1);
            if (n >= size)
                n = size - 1;
            memcpy(out, c2 + 1, n);
            out[n] = '\0';
        }
    }
    return 0;
}

static bool all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    return true;
}

/* A 64-hex container id within the path element [s, s+n): the element
 * itself, or after a runtime prefix ("docker-", "cri-containerd-",
 * "crio-", "libpod-", "containerd-") and before ".scope". */
static bool element_container_id(const char *s, size_t n, char *out)
{
    static const char scope[] = ".scope";
    if (n > sizeof scope - 1 && memcmp(s + n - (sizeof scope - 1), scope, sizeof scope - 1) == 0)
        n -= sizeof scope - 1;
    if (n < AGENT_CONTAINER_ID_LEN)
        return false;
    const char *id = s + n - AGENT_CONTAINER_ID_LEN;
    if (!all_hex(id, AGENT_CONTAINER_ID_LEN))
        return false;
    if (id != s && id[-1] != '-' && id[-1] != ':')
        return false;   /* part of a longer name */
    memcpy(out, id, AGENT_CONTAINER_ID_LEN);
    out[AGENT_CONTAINER_ID_LEN] = '\0';
    return true;
}

/* A pod uid in the element: "pod" + uid (cgroupfs: dashes; systemd: the
 * dashes become underscores, "...-pod<uid>.slice"). */
static bool element_pod_uid(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i + 3 + AGENT_POD_UID_LEN <= n; i++) {
        if (memcmp(s + i, "pod", 3) != 0 || (i > 0 && s[i - 1] != '-' && s[i - 1] != '/'))
            continue;
        const char *u = s + i + 3;
        bool ok = true;
        for (size_t k = 0; k < AGENT_POD_UID_LEN && ok; k++) {
            bool dash = k == 8 || k == 13 || k == 18 || k == 23;
            ok = dash ? (u[k] == '-' || u[k] == '_') : isxdigit((unsigned char)u[k]) != 0;
        }
        size_t rest = n - (i + 3 + AGENT_POD_UID_LEN);
        if (!ok || (rest > 0 && !(rest == 6 && memcmp(u + AGENT_POD_UID_LEN, ".slice", 6) == 0)))
            continue;
        for (size_t k = 0; k < AGENT_POD_UID_LEN; k++)
            out[k] = u[k] == '_' ? '-' : u[k];
        out[AGENT_POD_UID_LEN] = '\0';
        return true;
    }
    return false;
}

void agent_cgroup_parse(const char *path, agent_cgroup_info *out)
{
    memset(out, 0, sizeof *out);
    bool kubepods = strstr(path, "kubepods") != NULL;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - s);
        if (n == 0)
            break;
        char id[AGENT_CONTAINER_ID_LEN + 1];
        if (element_container_id(s, n, id)) {
            memcpy(out->container_id, id, sizeof id);
            continue;
        }
        if (kubepods && !out->pod_uid[0] && element_pod_uid(s, n, out->pod_uid))
            continue;
        if ((n > 8 && memcmp(s + n - 8, ".service", 8) == 0) ||
            (n > 6 && memcmp(s + n - 6, ".scope", 6) == 0)) {
            if (n >= sizeof out->systemd_unit)
                n = sizeof out->systemd_unit - 1;
            memcpy(out->systemd_unit, s, n);
            out->systemd_unit[n] = '\0';
        }
    }
}

bool agent_k8s_container_id(const char *status_id, char out[AGENT_CONTAINER_ID_LEN + 1])
{
    const char *sep = strstr(status_id, "://");
    const char *id = sep ? sep + 3 : status_id;
    if (strlen(id) != AGENT_CONTAINER_ID_LEN)
        return false;
    for (size_t i = 0; i < AGENT_CONTAINER_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return false;
    memcpy(out, id, AGENT_CONTAINER_ID_LEN + 1);
    return true;
}
