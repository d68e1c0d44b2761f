/* relabel.c -- Prometheus's relabel_config (model/relabel/relabel.go):
 * validation with Prometheus's messages, and the rules applied in order to
 * a label set.
 *
 * The label set being rewritten mirrors Prometheus's labels.Builder closely
 * enough to give the same answers: an empty value is an absent label, and
 * labelmap visits the labels in the Builder's Range order -- the labels no
 * rule has set yet, by name, then the ones rules have set, in the order
 * they were first set -- so that when two names map to the same new name
 * the same one wins.  Each entry carries that order (0 = untouched).
 *
 * Differences from Prometheus, all from firn's legacy label names:
 * - a target_label (or labelmap replacement) that is not a legacy name is
 *   refused at validation (Prometheus 3 accepts any UTF-8 by default);
 * - labelmap skips a produced name that is not a valid name (Prometheus
 *   sets it anyway, e.g. "" when the replacement expands to nothing);
 * - names are also held to FIRN_LABEL_NAME_MAX bytes, produced values to
 *   FIRN_LABEL_VALUE_MAX, and a set to FIRN_RELABEL_LABELS_MAX labels.
 *
 * lowercase and uppercase map runes exactly as Go's unicode.ToLower and
 * ToUpper (checked rune by rune against Go) in U+0000-U+017F (ASCII,
 * Latin-1, Latin Extended-A), U+0386-U+03CE (Greek), U+0400-U+045F
 * (Cyrillic), and for the Ohm, Kelvin and Angstrom signs.  Every other rune
 * is left as it is, where Go would also map Latin Extended-B, the rest of
 * Greek and Cyrillic, Armenian, Georgian, Glagolitic, fullwidth Latin and
 * so on.  Like Go's strings.Map, an invalid UTF-8 byte becomes U+FFFD.
 */
#include "model/relabel.h"

#include "model/alloc.h"
#include "model/buf.h"
#include "model/table.h"
#include "model/text.h"

#include <assert.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOW_MAX 128   /* bytes of a name shown in an error */
#define SHOW_BUF (SHOW_MAX * 10 + 8)

static const char *const action_names[] = {
    [FIRN_RELABEL_REPLACE] = "replace",     [FIRN_RELABEL_KEEP] = "keep",
    [FIRN_RELABEL_DROP] = "drop",           [FIRN_RELABEL_KEEPEQUAL] = "keepequal",
    [FIRN_RELABEL_DROPEQUAL] = "dropequal", [FIRN_RELABEL_HASHMOD] = "hashmod",
    [FIRN_RELABEL_LABELMAP] = "labelmap",   [FIRN_RELABEL_LABELDROP] = "labeldrop",
    [FIRN_RELABEL_LABELKEEP] = "labelkeep", [FIRN_RELABEL_LOWERCASE] = "lowercase",
    [FIRN_RELABEL_UPPERCASE] = "uppercase",
};
#define N_ACTIONS (sizeof action_names / sizeof action_names[0])

/* ---- case mapping ------------------------------------------------------------ */

static uint32_t rune_lower(uint32_t r)
{
    if (r >= 'A' && r <= 'Z')
        return r + 32;
    if (r < 0x80)
        return r;
    if (r >= 0xc0 && r <= 0xde && r != 0xd7)
        return r + 32;
    if (r >= 0x100 && r <= 0x17f) {
        if (r == 0x130)
            return 'i';
        if (r == 0x178)
            return 0xff;
        bool even_upper = r <= 0x12f || (r >= 0x132 && r <= 0x137) ||
                          (r >= 0x14a && r <= 0x177);
        bool odd_upper = (r >= 0x139 && r <= 0x148) || (r >= 0x179 && r <= 0x17e);
        if ((even_upper && r % 2 == 0) || (odd_upper && r % 2 == 1))
            return r + 1;
        return r;
    }
    if (r == 0x386)
        return 0x3ac;
    if (r >= 0x388 && r <= 0x38a)
        return r + 37;
    if (r == 0x38c)
        return 0x3cc;
    if (r == 0x38e || r == 0x38f)
        return r + 63;
    if (r >= 0x391 && r <= 0x3ab && r != 0x3a2)
        return r + 32;
    if (r >= 0x400 && r <= 0x40f)
        return r + 80;
    if (r >= 0x410 && r <= 0x42f)
        return r + 32;
    if (r == 0x2126)   /* OHM SIGN */
        return 0x3c9;
    if (r == 0x212a)   /* KELVIN SIGN */
        return 'k';
    if (r == 0x212b)   /* ANGSTROM SIGN */
        return 0xe5;
    return r;
}

static uint32_t rune_upper(uint32_t r)
{
    if (r >= 'a' && r <= 'z')
        return r - 32;
    if (r < 0x80)
        return r;
    if (r == 0xb5)   /* MICRO SIGN */
        return 0x39c;
    if (r >= 0xe0 && r <= 0xfe && r != 0xf7)
        return r - 32;
    if (r == 0xff)
        return 0x178;
    if (r >= 0x100 && r <= 0x17f) {
        if (r == 0x131)
            return 'I';
        if (r == 0x17f)
            return 'S';
        bool odd_lower = r <= 0x12f || (r >= 0x132 && r <= 0x137) ||
                         (r >= 0x14a && r <= 0x177);
        bool even_lower = (r >= 0x139 && r <= 0x148) || (r >= 0x179 && r <= 0x17e);
        if ((odd_lower && r % 2 == 1) || (even_lower && r % 2 == 0))
            return r - 1;
        return r;
    }
    if (r == 0x3ac)
        return 0x386;
    if (r >= 0x3ad && r <= 0x3af)
        return r - 37;
    if (r == 0x3c2)   /* final sigma */
        return 0x3a3;
    if (r >= 0x3b1 && r <= 0x3cb)
        return r - 32;
    if (r == 0x3cc)
        return 0x38c;
    if (r == 0x3cd || r == 0x3ce)
        return r - 63;
    if (r >= 0x430 && r <= 0x44f)
        return r - 32;
    if (r >= 0x450 && r <= 0x45f)
        return r - 80;
    return r;
}

/* s mapped rune by rune into out, as Go's strings.Map: an invalid byte
 * becomes U+FFFD.  No mapped rune is longer than its source, so 3 bytes per
 * input byte (U+FFFD for each invalid one), plus the NUL, always suffice.
 * Returns the length written. */
static size_t map_case_into(char *out, const char *s, size_t len, bool upper)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t r;
        size_t n = firn_utf8_decode(p + i, len - i, &r);
        if (n == 0) {
            r = 0xfffd;
            n = 1;
        } else {
            r = upper ? rune_upper(r) : rune_lower(r);
        }
        o += firn_utf8_encode(r, out + o);
        i += n;
    }
    out[o] = '\0';
    return o;
}

/* len is a joined label set's length, far below SIZE_MAX / 3. */
static char *map_case(firn_arena *arena, const char *s, size_t len, bool upper)
{
    char *out = firn_arena_alloc(arena, len * 3 + 1);
    assert(out);
    map_case_into(out, s, len, upper);
    return out;
}

/* ---- actions and validation ----------------------------------------------------- */

int firn_relabel_action_parse(const char *s, firn_relabel_action *out)
{
    enum { LONGEST = 16 };
    if (!s)
        return -1;
    size_t len = strnlen(s, LONGEST + 1);
    if (len > LONGEST)
        return -1;
    /* Go lowercases with unicode.ToLower: "\u212Aeep" (Kelvin sign) is keep. */
    char lowered[LONGEST * 3 + 1];
    map_case_into(lowered, s, len, false);
    for (size_t i = 0; i < N_ACTIONS; i++)
        if (strcmp(lowered, action_names[i]) == 0) {
            *out = (firn_relabel_action)i;
            return 0;
        }
    return -1;
}

const char *firn_relabel_action_name(firn_relabel_action a)
{
    if ((unsigned)a >= N_ACTIONS)
        return "unknown";
    return action_names[a];
}

/* A name firn accepts: legacy characters, at most FIRN_LABEL_NAME_MAX bytes. */
static bool name_ok(const char *name)
{
    return strnlen(name, FIRN_LABEL_NAME_MAX + 1) <= FIRN_LABEL_NAME_MAX &&
           firn_label_name_valid(name);
}

static bool is_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_';
}

/* A "$\w+" or "${\w+}" at s[i] (s[i] == '$'): the index after it, or 0. */
static size_t template_var_end(const char *s, size_t i)
{
    i++;
    bool brace = s[i] == '{';
    if (brace)
        i++;
    size_t start = i;
    while (is_word(s[i]))
        i++;
    if (i == start)
        return 0;
    if (brace) {
        if (s[i] != '}')
            return 0;
        i++;
    }
    return i;
}

/* Prometheus's relabelTargetLegacy, ^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$,
 * scanned by hand: the nested repetition would make a backtracking engine
 * take exponential time on a near miss.  The language is: a letter, "_" or
 * variable first, then any run of word characters and variables. */
static bool legacy_template_ok(const char *s)
{
    size_t i = 0;
    bool first = true;
    while (s[i]) {
        char c = s[i];
        if (c == '$') {
            size_t end = template_var_end(s, i);
            if (!end)
                return false;
            i = end;
        } else if (first ? ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
                         : is_word(c)) {
            i++;
        } else {
            return false;
        }
        first = false;
    }
    return !first;
}

static const char *show(char *buf, const char *s)
{
    size_t len = strnlen(s, SHOW_MAX + 1);
    bool cut = len > SHOW_MAX;
    if (cut)
        len = SHOW_MAX;
    size_t n = firn_go_quote(buf, s, len);
    if (cut) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static bool is_one_of(firn_relabel_action a, unsigned mask)
{
    return (mask >> a) & 1u;
}
#define BIT(a) (1u << (a))

/* Config.Validate, check by check in Prometheus's order. */
static int validate(const firn_relabel_config *c, firn_err *err)
{
    char shown[SHOW_BUF];
    firn_relabel_action a = c->action;
    if ((unsigned)a >= N_ACTIONS)
        return firn_errf(err, FIRN_EINVAL, "relabel action cannot be empty");
    const char *name = action_names[a];
    const char *target = c->target_label ? c->target_label : "";
    const char *replacement = c->replacement ? c->replacement : "$1";
    const char *separator = c->separator ? c->separator : ";";
    bool regex_given = c->has_regex || c->regex;
    bool target_has_var = strchr(target, '$') != NULL;
    const unsigned case_or_equal = BIT(FIRN_RELABEL_LOWERCASE) | BIT(FIRN_RELABEL_UPPERCASE) |
                                   BIT(FIRN_RELABEL_KEEPEQUAL) | BIT(FIRN_RELABEL_DROPEQUAL);
    const unsigned equal = BIT(FIRN_RELABEL_KEEPEQUAL) | BIT(FIRN_RELABEL_DROPEQUAL);
    const unsigned needs_target = case_or_equal | BIT(FIRN_RELABEL_REPLACE) |
                                  BIT(FIRN_RELABEL_HASHMOD);

    if (a == FIRN_RELABEL_HASHMOD && c->modulus == 0)
        return firn_errf(err, FIRN_EINVAL,
                         "relabel configuration for hashmod requires non-zero modulus");
    if (is_one_of(a, needs_target) && !*target)
        return firn_errf(err, FIRN_EINVAL,
                         "relabel configuration for %s action requires 'target_label' value",
                         name);
    bool bad_target = false;
    if (a == FIRN_RELABEL_REPLACE)
        bad_target = target_has_var ? !legacy_template_ok(target) : !name_ok(target);
    else if (is_one_of(a, case_or_equal))
        bad_target = !name_ok(target);
    if (bad_target)
        return firn_errf(err, FIRN_EINVAL, "%s is invalid 'target_label' for %s action",
                         show(shown, target), name);
    if (is_one_of(a, case_or_equal) && strcmp(replacement, "$1") != 0)
        return firn_errf(err, FIRN_EINVAL, "'replacement' can not be set for %s action", name);
    if (a == FIRN_RELABEL_LABELMAP && !legacy_template_ok(replacement))
        return firn_errf(err, FIRN_EINVAL, "%s is invalid 'replacement' for %s action",
                         show(shown, replacement), name);
    if (a == FIRN_RELABEL_HASHMOD && !name_ok(target))
        return firn_errf(err, FIRN_EINVAL, "%s is invalid 'target_label' for %s action",
                         show(shown, target), name);
    if (is_one_of(a, equal) && (regex_given || c->modulus != 0 || strcmp(separator, ";") != 0 ||
                                strcmp(replacement, "$1") != 0))
        return firn_errf(err, FIRN_EINVAL,
                         "%s action requires only 'source_labels' and `target_label`, and no "
                         "other fields",
                         name);
    if ((a == FIRN_RELABEL_LABELDROP || a == FIRN_RELABEL_LABELKEEP) &&
        (c->source_labels || c->n_source_labels > 0 || *target || c->modulus != 0 ||
         strcmp(separator, ";") != 0 || strcmp(replacement, "$1") != 0))
        return firn_errf(err, FIRN_EINVAL,
                         "%s action requires only 'regex', and no other fields", name);
    return FIRN_OK;
}

int firn_relabel_config_init(firn_relabel_config *c, firn_err *err)
{
    c->compiled = NULL;
    int rc = validate(c, err);
    if (rc < 0)
        return rc;
    firn_err compile_err = {0};
    firn_regex *re = firn_regex_compile(c->regex ? c->regex : "(.*)", &compile_err);
    if (!re) {
        if (err)
            *err = compile_err;
        return compile_err.code;
    }
    int groups = firn_regex_group_count(re);
    if (groups >= FIRN_REGEX_MAX_GROUPS) {
        firn_regex_free(re);
        return firn_errf(err, FIRN_ETOOBIG, "relabel regex has %d capture groups, more than %d",
                         groups, FIRN_REGEX_MAX_GROUPS - 1);
    }
    c->compiled = re;
    return FIRN_OK;
}

void firn_relabel_config_destroy(firn_relabel_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_source_labels; i++)
        free(c->source_labels[i]);
    free(c->source_labels);
    free(c->separator);
    free(c->target_label);
    free(c->regex);
    free(c->replacement);
    firn_regex_free(c->compiled);
    memset(c, 0, sizeof *c);
}

/* ---- the label set being rewritten ------------------------------------------------ */

struct entry {
    const char *name;    /* in the arena */
    const char *value;   /* in the arena, never "" */
    uint32_t order;      /* 0: as given; else when a rule first set it */
};

struct labelset {
    struct entry *e;     /* sorted by name */
    size_t n, cap;
    uint32_t next_order;
    firn_arena *arena;
};

/* Whether name is in the set; *pos is where it is or would go. */
static bool find(const struct labelset *set, const char *name, size_t *pos)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(set->e[mid].name, name);
        if (c == 0) {
            *pos = mid;
            return true;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

static const char *get(const struct labelset *set, const char *name)
{
    size_t pos;
    return find(set, name, &pos) ? set->e[pos].value : "";
}

static void del(struct labelset *set, const char *name)
{
    size_t pos;
    if (!find(set, name, &pos))
        return;
    memmove(set->e + pos, set->e + pos + 1, (set->n - pos - 1) * sizeof *set->e);
    set->n--;
}

/* Builder.Set: an empty value deletes.  name and value are arena strings. */
static int set_label(struct labelset *set, const char *name, const char *value, firn_err *err)
{
    char shown[SHOW_BUF];
    if (!*value) {
        del(set, name);
        return FIRN_OK;
    }
    if (strnlen(value, FIRN_LABEL_VALUE_MAX + 1) > FIRN_LABEL_VALUE_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "relabel: label %s: value longer than %d bytes",
                         show(shown, name), FIRN_LABEL_VALUE_MAX);
    size_t pos;
    if (find(set, name, &pos)) {
        struct entry *e = &set->e[pos];
        if (e->order == 0)
            e->order = ++set->next_order;
        e->value = value;
        return FIRN_OK;
    }
    if (set->n >= FIRN_RELABEL_LABELS_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "relabel: label set grows past %d labels",
                         FIRN_RELABEL_LABELS_MAX);
    set->e = firn_grow(set->e, set->n, &set->cap, sizeof *set->e, 16);
    memmove(set->e + pos + 1, set->e + pos, (set->n - pos) * sizeof *set->e);
    set->e[pos] = (struct entry){name, value, ++set->next_order};
    set->n++;
    return FIRN_OK;
}

static int compare_name(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* Builder.Range order: untouched labels by name, then set ones as first set. */
static int compare_range_order(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* ---- the rules --------------------------------------------------------------- */

/* The source labels' values joined with the separator, in the arena. */
static char *join_sources(const firn_relabel_config *c, const struct labelset *set,
                          size_t *len_out)
{
    const char *separator = c->separator ? c->separator : ";";
    size_t sep_len = strlen(separator), len = 0;
    for (size_t i = 0; i < c->n_source_labels; i++)
        len += strlen(get(set, c->source_labels[i])) + (i > 0 ? sep_len : 0);
    char *val = firn_arena_alloc(set->arena, len + 1);
    assert(val);   /* labels within their caps: len cannot overflow */
    size_t pos = 0;
    for (size_t i = 0; i < c->n_source_labels; i++) {
        if (i > 0) {
            memcpy(val + pos, separator, sep_len);
            pos += sep_len;
        }
        const char *v = get(set, c->source_labels[i]);
        size_t n = strlen(v);
        memcpy(val + pos, v, n);
        pos += n;
    }
    val[pos] = '\0';
    *len_out = pos;
    return val;
}

static int replace(const firn_relabel_config *c, struct labelset *set, const char *val,
                   size_t val_len, firn_err *err)
{
    const char *target = c->target_label;
    const char *replacement = c->replacement ? c->replacement : "$1";
    /* Prometheus's fast path to add or delete a label: the default regex
     * matches "" with group 1 empty, so there is nothing to expand. */
    if (val_len == 0 && !c->regex && !strchr(target, '$') && !strchr(replacement, '$')) {
        return set_label(set, firn_arena_strdup(set->arena, target),
                         firn_arena_strdup(set->arena, replacement), err);
    }
    size_t ovector[2 * FIRN_REGEX_MAX_GROUPS], n_groups;
    int rc = firn_regex_match_groups(c->compiled, val, val_len, ovector, &n_groups, err);
    if (rc <= 0)
        return rc;   /* no match: no replacement */
    char *name = firn_regex_expand(c->compiled, target, val, ovector, n_groups);
    if (!name)
        return firn_errf(err, FIRN_EINVAL, "relabel: expanding target_label failed");
    if (!name_ok(name)) {
        free(name);
        return FIRN_OK;
    }
    char *value = firn_regex_expand(c->compiled, replacement, val, ovector, n_groups);
    if (!value) {
        free(name);
        return firn_errf(err, FIRN_EINVAL, "relabel: expanding replacement failed");
    }
    char *name_a = firn_arena_strdup(set->arena, name);
    char *value_a = firn_arena_strdup(set->arena, value);
    free(name);
    free(value);
    return set_label(set, name_a, value_a, err);
}

static int hashmod(const firn_relabel_config *c, struct labelset *set, const char *val,
                   size_t val_len, firn_err *err)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (!EVP_Digest(val, val_len, digest, &digest_len, EVP_md5(), NULL) || digest_len != 16)
        return firn_errf(err, FIRN_EIO, "relabel: hashmod: MD5 unavailable from libcrypto");
    /* The last 8 bytes, big-endian, as Prometheus (for its older results). */
    uint64_t h = 0;
    for (int i = 8; i < 16; i++)
        h = (h << 8) | digest[i];
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)(h % c->modulus));
    return set_label(set, firn_arena_strdup(set->arena, c->target_label),
                     firn_arena_strdup(set->arena, buf), err);
}

static int labelmap(const firn_relabel_config *c, struct labelset *set, firn_err *err)
{
    if (set->n == 0)
        return FIRN_OK;
    size_t n = set->n;
    struct entry *snapshot = firn_xmemdup(set->e, n * sizeof *snapshot);
    firn_sort(snapshot, n, sizeof *snapshot, compare_range_order);
    const char *replacement = c->replacement ? c->replacement : "$1";
    firn_err replace_err = {0};
    int rc = FIRN_OK;
    for (size_t i = 0; i < n && rc == FIRN_OK; i++) {
        const char *name = snapshot[i].name;
        size_t len = strlen(name);
        int m = firn_regex_match(c->compiled, name, len, err);
        if (m <= 0) {
            rc = m;
            continue;
        }
        char *mapped = firn_regex_replace_all(c->compiled, name, len, replacement,
                                              &replace_err);
        if (!mapped) {
            rc = replace_err.code;
            if (err)
                *err = replace_err;
            continue;
        }
        if (name_ok(mapped))
            rc = set_label(set, firn_arena_strdup(set->arena, mapped), snapshot[i].value, err);
        free(mapped);
    }
    free(snapshot);
    return rc;
}

/* labeldrop (keep_matching false) and labelkeep (true). */
static int label_filter(const firn_relabel_config *c, struct labelset *set, bool keep_matching,
                        firn_err *err)
{
    size_t kept = 0;
    for (size_t i = 0; i < set->n; i++) {
        const char *name = set->e[i].name;
        int m = firn_regex_match(c->compiled, name, strlen(name), err);
        if (m < 0)
            return m;
        if ((m == 1) == keep_matching)
            set->e[kept++] = set->e[i];
    }
    set->n = kept;
    return FIRN_OK;
}

/* One rule: 1 keep, 0 drop, negative on error. */
static int relabel(const firn_relabel_config *c, struct labelset *set, firn_err *err)
{
    size_t val_len;
    char *val = join_sources(c, set, &val_len);
    int rc = FIRN_OK;
    switch (c->action) {
    case FIRN_RELABEL_DROP:
    case FIRN_RELABEL_KEEP: {
        int m = firn_regex_match(c->compiled, val, val_len, err);
        if (m < 0)
            return m;
        return (m == 1) == (c->action == FIRN_RELABEL_KEEP);
    }
    case FIRN_RELABEL_DROPEQUAL:
        return strcmp(get(set, c->target_label), val) != 0;
    case FIRN_RELABEL_KEEPEQUAL:
        return strcmp(get(set, c->target_label), val) == 0;
    case FIRN_RELABEL_REPLACE:
        rc = replace(c, set, val, val_len, err);
        break;
    case FIRN_RELABEL_LOWERCASE:
    case FIRN_RELABEL_UPPERCASE: {
        char *value = map_case(set->arena, val, val_len, c->action == FIRN_RELABEL_UPPERCASE);
        rc = set_label(set, firn_arena_strdup(set->arena, c->target_label), value, err);
        break;
    }
    case FIRN_RELABEL_HASHMOD:
        rc = hashmod(c, set, val, val_len, err);
        break;
    case FIRN_RELABEL_LABELMAP:
        rc = labelmap(c, set, err);
        break;
    case FIRN_RELABEL_LABELDROP:
        rc = label_filter(c, set, false, err);
        break;
    case FIRN_RELABEL_LABELKEEP:
        rc = label_filter(c, set, true, err);
        break;
    default:
        return firn_errf(err, FIRN_EINVAL, "relabel: unknown action %d", (int)c->action);
    }
    return rc < 0 ? rc : 1;
}

int firn_relabel_process(const firn_relabel_config *cfgs, size_t n, const firn_label *in,
                         size_t n_in, firn_arena *arena, firn_label **out, size_t *n_out,
                         firn_err *err)
{
    char shown[SHOW_BUF];
    *out = NULL;
    *n_out = 0;
    if (n_in > FIRN_RELABEL_LABELS_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "relabel: %zu labels, more than %d", n_in,
                         FIRN_RELABEL_LABELS_MAX);
    for (size_t i = 0; i < n; i++)
        if (!cfgs[i].compiled)
            return firn_errf(err, FIRN_EINVAL, "relabel: rule %zu was not initialized", i);
    struct labelset set = {.arena = arena};
    int rc = FIRN_OK;
    if (n_in > 0) {
        set.e = firn_xreallocarray(NULL, n_in, sizeof *set.e);
        set.cap = n_in;
    }
    for (size_t i = 0; i < n_in; i++) {
        if (!in[i].name) {
            free(set.e);
            return firn_errf(err, FIRN_EINVAL, "relabel: label %zu: no name", i);
        }
        if (!in[i].value || !in[i].value[0])
            continue;   /* an empty label is an absent label */
        set.e[set.n++] = (struct entry){firn_arena_strdup(arena, in[i].name),
                                        firn_arena_strdup(arena, in[i].value), 0};
    }
    firn_sort(set.e, set.n, sizeof *set.e, compare_name);
    for (size_t i = 1; i < set.n; i++)
        if (strcmp(set.e[i - 1].name, set.e[i].name) == 0) {
            rc = firn_errf(err, FIRN_EINVAL, "relabel: duplicate label name %s",
                           show(shown, set.e[i].name));
            free(set.e);
            return rc;
        }

    int keep = 1;
    for (size_t i = 0; i < n && keep == 1; i++)
        keep = relabel(&cfgs[i], &set, err);
    if (keep == 1 && set.n > 0) {
        firn_label *labels = firn_arena_calloc(arena, set.n, sizeof *labels);
        assert(labels);   /* at most FIRN_RELABEL_LABELS_MAX */
        for (size_t i = 0; i < set.n; i++)
            labels[i] = (firn_label){set.e[i].name, set.e[i].value};
        *out = labels;
        *n_out = set.n;
    }
    free(set.e);
    return keep;
}
