/* regex.c -- PCRE2 regexes with Prometheus's semantics, and label matchers.
 *
 * Prometheus compiles a matcher's regex as RE2's ^(?s:re)$.  The same is had
 * here with compile options instead of a textual wrapper, which a pattern
 * could otherwise close early ("a)|(b") or swallow ("\Qa" quotes to the end
 * of the pattern): PCRE2_ANCHORED and PCRE2_ENDANCHORED make the whole
 * subject match, PCRE2_DOTALL is (?s), and PCRE2_DOLLAR_ENDONLY makes "$" the
 * end of the text as in RE2 (not "before a final newline").  RE2 also
 * accepts a quantified empty-width assertion ("$*bar", "bar^+"), which PCRE2
 * rejects; such a pattern is compiled again with the assertion put in a
 * group, "(?:$)*bar", which means the same.
 *
 * Relabeling also needs the capture groups of a match and Go's
 * regexp.Expand to fill "$1"/"${name}" templates from them; PCRE2's own
 * substitution syntax differs, so Expand is written out here.
 *
 * PCRE2 backtracks, so every match runs under a match, depth and heap limit:
 * a pathological pattern fails with an error instead of spinning.
 *
 * Threads: a compiled firn_regex is never written after compile.  The
 * scratch a match needs (match data, match context, JIT stack) is kept per
 * thread and freed when the thread exits.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "model/regex.h"

#include "model/alloc.h"
#include "model/buf.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REGEX_PATTERN_MAX (64 * 1024)
#define REGEX_MATCH_LIMIT 1000000
#define REGEX_DEPTH_LIMIT 100000
#define REGEX_HEAP_LIMIT_KIB (64 * 1024)
#define REGEX_JIT_STACK_START (32 * 1024)
#define REGEX_JIT_STACK_MAX (1024 * 1024)
#define REGEX_SHOW_MAX 200   /* bytes of a pattern shown in an error */

#define REGEX_OPTIONS                                                                  \
    (PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED |      \
     PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C)

struct firn_regex {
    pcre2_code *code;
    char *pattern;   /* for error messages */
};

/* ---- per-thread match scratch ------------------------------------------ */

struct match_scratch {
    pcre2_match_data *data;
    pcre2_match_context *context;
    pcre2_jit_stack *jit_stack;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;

static void scratch_free(void *p)
{
    struct match_scratch *s = p;
    if (!s)
        return;
    pcre2_match_data_free(s->data);
    pcre2_match_context_free(s->context);
    pcre2_jit_stack_free(s->jit_stack);
    free(s);
}

static void scratch_key_create(void)
{
    scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* This thread's scratch, created on first use.  Creating it fails only for
 * want of memory (one key, PCRE2's small allocations), which aborts as
 * model/alloc.h says. */
static struct match_scratch *scratch_get(void)
{
    pthread_once(&scratch_once, scratch_key_create);
    if (!scratch_key_ok)
        firn_oom(sizeof(pthread_key_t));
    struct match_scratch *s = pthread_getspecific(scratch_key);
    if (s)
        return s;
    s = firn_xcalloc(1, sizeof *s);
    /* Room for every group a later capture API may report. */
    s->data = pcre2_match_data_create(FIRN_REGEX_MAX_GROUPS + 1, NULL);
    s->context = pcre2_match_context_create(NULL);
    if (!s->data || !s->context)
        firn_oom(sizeof *s);
    pcre2_set_match_limit(s->context, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(s->context, REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(s->context, REGEX_HEAP_LIMIT_KIB);
    /* Without a stack of its own JIT gets 32 KiB of machine stack, which a
     * long subject under a repeated group exhausts.  No JIT, no stack. */
    s->jit_stack = pcre2_jit_stack_create(REGEX_JIT_STACK_START, REGEX_JIT_STACK_MAX, NULL);
    if (s->jit_stack)
        pcre2_jit_stack_assign(s->context, NULL, s->jit_stack);
    if (pthread_setspecific(scratch_key, s) != 0)   /* only ENOMEM */
        firn_oom(sizeof *s);
    return s;
}

/* ---- compile -------------------------------------------------------------- */

/* The pattern in double quotes for an error message, with quotes, backslashes
 * and control bytes escaped, cut to REGEX_SHOW_MAX bytes. */
static const char *show_pattern(char *buf, size_t size, const char *pattern)
{
    size_t pos = 0, i = 0;
    buf[pos++] = '"';
    for (; pattern[i] && i < REGEX_SHOW_MAX && pos + 10 < size; i++) {
        unsigned char c = (unsigned char)pattern[i];
        if (c == '"' || c == '\\')
            pos += (size_t)snprintf(buf + pos, size - pos, "\\%c", c);
        else if (c < ' ' || c == 0x7f)
            pos += (size_t)snprintf(buf + pos, size - pos, "\\x%02x", c);
        else
            buf[pos++] = (char)c;
    }
    if (pattern[i]) {
        memcpy(buf + pos, "...", 3);
        pos += 3;
    }
    buf[pos++] = '"';
    buf[pos] = '\0';
    return buf;
}

#define SHOW_BUF (REGEX_SHOW_MAX * 4 + 16)

static bool is_quantifier(char c)
{
    return c == '*' || c == '+' || c == '?' || c == '{';
}

/* The pattern with each quantified empty-width assertion (^ $ \b \B \A \z \Z
 * \G outside a character class and outside \Q...\E) put in a non-capturing
 * group; a malloc'd string, or NULL when there is none to rewrite.  len is
 * at most REGEX_PATTERN_MAX. */
static char *group_quantified_assertions(const char *p, size_t len)
{
    char *out = firn_xmalloc(len * 3 + 1);   /* "$" becomes "(?:$)": at most x3 */
    size_t o = 0, i = 0;
    bool in_class = false, in_quote = false, changed = false;
    size_t class_start = 0;
    while (i < len) {
        char c = p[i];
        if (in_quote) {
            if (c == '\\' && i + 1 < len && p[i + 1] == 'E') {
                in_quote = false;
                out[o++] = p[i++];
            }
            out[o++] = p[i++];
            continue;
        }
        if (c == '\\' && i + 1 < len) {
            char e = p[i + 1];
            if (e == 'Q') {
                in_quote = true;
            } else if (!in_class && strchr("bBAzZG", e) && i + 2 < len &&
                       is_quantifier(p[i + 2])) {
                memcpy(out + o, "(?:", 3);
                o += 3;
                out[o++] = c;
                out[o++] = e;
                out[o++] = ')';
                i += 2;
                changed = true;
                continue;
            }
            out[o++] = p[i++];
            out[o++] = p[i++];
            continue;
        }
        if (in_class) {
            if (c == '[' && i + 1 < len && p[i + 1] == ':') {
                /* [:alpha:] inside a class: its "]" does not close the class. */
                const char *end = NULL;
                for (size_t j = i + 2; j + 1 < len; j++)
                    if (p[j] == ':' && p[j + 1] == ']') {
                        end = p + j;
                        break;
                    }
                if (end) {
                    size_t n = (size_t)(end - (p + i)) + 2;
                    memcpy(out + o, p + i, n);
                    o += n;
                    i += n;
                    continue;
                }
            } else if (c == ']' && i > class_start) {
                in_class = false;
            }
            out[o++] = p[i++];
            continue;
        }
        if (c == '[') {
            in_class = true;
            out[o++] = p[i++];
            if (i < len && p[i] == '^')
                out[o++] = p[i++];
            class_start = i;   /* a "]" right here is a literal */
            continue;
        }
        if ((c == '^' || c == '$') && i + 1 < len && is_quantifier(p[i + 1])) {
            memcpy(out + o, "(?:", 3);
            o += 3;
            out[o++] = c;
            out[o++] = ')';
            i++;
            changed = true;
            continue;
        }
        out[o++] = p[i++];
    }
    out[o] = '\0';
    if (!changed) {
        free(out);
        return NULL;
    }
    return out;
}

static pcre2_code *compile(const char *pattern, size_t len, int *error_code,
                           PCRE2_SIZE *error_offset)
{
    return pcre2_compile((PCRE2_SPTR)pattern, len, REGEX_OPTIONS, error_code, error_offset,
                         NULL);
}

firn_regex *firn_regex_compile(const char *pattern, firn_err *err)
{
    char shown[SHOW_BUF];
    if (!pattern) {
        firn_errf(err, FIRN_EINVAL, "invalid regex: no pattern");
        return NULL;
    }
    size_t len = strnlen(pattern, REGEX_PATTERN_MAX + 1);
    if (len > REGEX_PATTERN_MAX) {
        firn_errf(err, FIRN_ETOOBIG, "invalid regex %s: longer than %d bytes",
                  show_pattern(shown, sizeof shown, pattern), REGEX_PATTERN_MAX);
        return NULL;
    }
    int error_code;
    PCRE2_SIZE error_offset;
    pcre2_code *code = compile(pattern, len, &error_code, &error_offset);
    if (!code && error_code == PCRE2_ERROR_QUANTIFIER_INVALID) {
        char *grouped = group_quantified_assertions(pattern, len);
        if (grouped) {
            int retry_code;
            PCRE2_SIZE retry_offset;
            code = compile(grouped, strlen(grouped), &retry_code, &retry_offset);
            free(grouped);
        }
    }
    if (!code) {
        /* Errors name offsets in the pattern as written, not as grouped. */
        PCRE2_UCHAR why[256];
        if (pcre2_get_error_message(error_code, why, sizeof why) < 0)
            snprintf((char *)why, sizeof why, "error %d", error_code);
        int status = FIRN_EINVAL;
        if (error_code == PCRE2_ERROR_NOMEMORY)
            status = FIRN_ENOMEM;
        else if (error_code == PCRE2_ERROR_PATTERN_TOO_LARGE ||
                 error_code == PCRE2_ERROR_PATTERN_TOO_COMPLICATED)
            status = FIRN_ETOOBIG;
        firn_errf(err, status, "invalid regex %s: offset %zu: %s",
                  show_pattern(shown, sizeof shown, pattern), (size_t)error_offset,
                  (const char *)why);
        return NULL;
    }
    /* JIT is an optimization: without it (unsupported CPU, W^X policy) the
     * interpreter gives the same answers. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);

    firn_regex *re = firn_xmalloc(sizeof *re);
    re->code = code;
    re->pattern = firn_xstrndup(pattern, len);
    return re;
}

void firn_regex_free(firn_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    free(re->pattern);
    free(re);
}

/* The error for a failed pcre2_match (rc < 0, not "no match"). */
static int match_error(const firn_regex *re, int rc, size_t subject_len, firn_err *err)
{
    char shown[SHOW_BUF];
    PCRE2_UCHAR why[256];
    if (pcre2_get_error_message(rc, why, sizeof why) < 0)
        snprintf((char *)why, sizeof why, "error %d", rc);
    int status = FIRN_EINVAL;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT)
        status = FIRN_ETOOBIG;
    else if (rc == PCRE2_ERROR_NOMEMORY)
        status = FIRN_ENOMEM;
    return firn_errf(err, status, "regex %s: matching %zu bytes: %s",
                     show_pattern(shown, sizeof shown, re->pattern), subject_len,
                     (const char *)why);
}

/* Run re over s into this thread's match data: 1 matched, 0 not, negative
 * (with err) on failure.  *scratch_out is the match data's owner. */
static int run_match(const firn_regex *re, const char *s, size_t len,
                     struct match_scratch **scratch_out, firn_err *err)
{
    struct match_scratch *scratch = scratch_get();
    *scratch_out = scratch;
    PCRE2_SPTR subject = (PCRE2_SPTR)(s ? s : "");
    size_t subject_len = s ? len : 0;
    int rc = pcre2_match(re->code, subject, subject_len, 0, 0, scratch->data,
                         scratch->context);
    /* The interpreter keeps its backtracking state on the heap, under the
     * heap and depth limits, where JIT ran out of its fixed stack. */
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re->code, subject, subject_len, 0, PCRE2_NO_JIT, scratch->data,
                         scratch->context);
    if (rc >= 0)   /* 0: matched, with more groups than the match data holds */
        return 1;
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    return match_error(re, rc, subject_len, err);
}

int firn_regex_match(const firn_regex *re, const char *s, size_t len, firn_err *err)
{
    struct match_scratch *scratch;
    return run_match(re, s, len, &scratch, err);
}

/* ---- capture groups and Go's Expand ------------------------------------- */

int firn_regex_group_count(const firn_regex *re)
{
    uint32_t count = 0;
    if (pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT, &count) != 0)
        return 0;
    return (int)count;
}

int firn_regex_match_groups(const firn_regex *re, const char *s, size_t len,
                            size_t *ovector, size_t *n_groups, firn_err *err)
{
    char shown[SHOW_BUF];
    int count = firn_regex_group_count(re);
    if (count >= FIRN_REGEX_MAX_GROUPS)
        return firn_errf(err, FIRN_ETOOBIG, "regex %s: %d capture groups, more than %d",
                         show_pattern(shown, sizeof shown, re->pattern), count,
                         FIRN_REGEX_MAX_GROUPS - 1);
    struct match_scratch *scratch;
    int rc = run_match(re, s, len, &scratch, err);
    if (rc != 1)
        return rc;
    /* The match data holds FIRN_REGEX_MAX_GROUPS + 1 pairs, more than count
     * + 1, so every group has its pair; PCRE2 marks unset ones PCRE2_UNSET,
     * which is SIZE_MAX. */
    const PCRE2_SIZE *pairs = pcre2_get_ovector_pointer(scratch->data);
    uint32_t have = pcre2_get_ovector_count(scratch->data);
    size_t n = (size_t)count + 1;
    for (size_t i = 0; i < n; i++) {
        bool set = i < have && pairs[2 * i] != PCRE2_UNSET;
        ovector[2 * i] = set ? (size_t)pairs[2 * i] : SIZE_MAX;
        ovector[2 * i + 1] = set ? (size_t)pairs[2 * i + 1] : SIZE_MAX;
    }
    *n_groups = n;
    return 1;
}

int firn_regex_group_index(const firn_regex *re, const char *name)
{
    if (!name || !*name)
        return -1;
    int n = pcre2_substring_number_from_name(re->code, (PCRE2_SPTR)name);
    return n > 0 ? n : -1;
}

/* Go's Expand reads a name as the longest run of Unicode letters, decimal
 * digits and "_" (unicode.IsLetter, unicode.IsDigit).  PCRE2 has those
 * tables: this start-anchored pattern, compiled once per process and kept
 * for its life, measures the run. */
static pcre2_code *name_run_code;
static pthread_once_t name_run_once = PTHREAD_ONCE_INIT;

static void name_run_compile(void)
{
    int error_code;
    PCRE2_SIZE error_offset;
    name_run_code = pcre2_compile((PCRE2_SPTR) "[\\p{L}\\p{Nd}_]*", PCRE2_ZERO_TERMINATED,
                                  PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_ANCHORED,
                                  &error_code, &error_offset, NULL);
    if (name_run_code)
        (void)pcre2_jit_compile(name_run_code, PCRE2_JIT_COMPLETE);
}

/* Bytes of the name run at s[at..len), or -1 when PCRE2 failed (it could
 * not compile the constant pattern, or matching hit a limit). */
static long name_run(const char *s, size_t len, size_t at, struct match_scratch *scratch)
{
    pthread_once(&name_run_once, name_run_compile);
    if (!name_run_code)
        return -1;
    int rc = pcre2_match(name_run_code, (PCRE2_SPTR)s, len, at, 0, scratch->data,
                         scratch->context);
    if (rc < 0)   /* the pattern matches the empty string: only failures land here */
        return -1;
    const PCRE2_SIZE *pairs = pcre2_get_ovector_pointer(scratch->data);
    return (long)(pairs[1] - at);
}

/* The group a reference names: an all-digit name (no leading zero, below
 * 1e8, as Go) is an index, anything else a group name; -1 for none. */
static long reference_group(const firn_regex *re, const char *name, size_t len)
{
    long num = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] < '0' || name[i] > '9' || num >= 100000000) {
            num = -1;
            break;
        }
        num = num * 10 + (name[i] - '0');
    }
    if (name[0] == '0' && len > 1)
        num = -1;
    if (num >= 0)
        return num;
    char copy[256];   /* PCRE2 names are at most 32 code units */
    if (len >= sizeof copy)
        return -1;
    memcpy(copy, name, len);
    copy[len] = '\0';
    return firn_regex_group_index(re, copy);
}

char *firn_regex_expand(const firn_regex *re, const char *tmpl, const char *subject,
                        const size_t *ovector, size_t n_groups)
{
    struct match_scratch *scratch = scratch_get();
    firn_buf out = {0};
    size_t len = strlen(tmpl), i = 0;
    while (i < len) {
        const char *dollar = memchr(tmpl + i, '$', len - i);
        if (!dollar)
            break;
        size_t at = (size_t)(dollar - tmpl);
        firn_buf_append(&out, tmpl + i, at - i);
        i = at + 1;
        if (i < len && tmpl[i] == '$') {   /* "$$" */
            firn_buf_append(&out, "$", 1);
            i++;
            continue;
        }
        bool brace = i < len && tmpl[i] == '{';
        size_t name_at = brace ? i + 1 : i;
        long run = name_run(tmpl, len, name_at, scratch);
        if (run < 0) {
            out.failed = true;
            break;
        }
        size_t name_len = (size_t)run;
        size_t end = name_at + name_len;
        bool ok = name_len > 0;
        if (ok && brace) {
            ok = end < len && tmpl[end] == '}';
            end++;
        }
        if (!ok) {   /* malformed: the "$" is text */
            firn_buf_append(&out, "$", 1);
            continue;
        }
        long group = reference_group(re, tmpl + name_at, name_len);
        if (group >= 0 && (size_t)group < n_groups && ovector[2 * group] != SIZE_MAX)
            firn_buf_append(&out, subject + ovector[2 * group],
                       ovector[2 * group + 1] - ovector[2 * group]);
        i = end;
    }
    firn_buf_append(&out, tmpl + i, len - i);
    return firn_buf_take(&out, NULL);   /* NULL when name_run failed */
}

char *firn_regex_replace_all(const firn_regex *re, const char *s, size_t len,
                             const char *replacement, firn_err *err)
{
    char shown[SHOW_BUF];
    size_t ovector[2 * FIRN_REGEX_MAX_GROUPS];
    size_t n_groups;
    int rc = firn_regex_match_groups(re, s, len, ovector, &n_groups, err);
    if (rc < 0)
        return NULL;
    char *out = rc == 1 ? firn_regex_expand(re, replacement, s, ovector, n_groups)
                        : firn_xstrndup(s, len);
    if (!out)
        firn_errf(err, FIRN_EINVAL, "regex %s: reading a reference in the replacement failed",
                  show_pattern(shown, sizeof shown, re->pattern));
    return out;
}
