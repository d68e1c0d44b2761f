/* template.c -- the Go text/template subset Prometheus 2.42's alert
 * templates use: lexing, parsing (with Go's error texts, which `promtool
 * check rules` prints) and execution over an alert's data.
 *
 * Grammar (Go's text/template/parse): text and actions {{ ... }} with trim
 * markers "{{- " and " -}}", comments (a C-style comment inside braces); an action is a
 * keyword (if, else, else if, end, range, with) or a pipeline: optional
 * variable declarations ($x := / $x =) then commands separated by "|",
 * each a list of operands (a function name, .Field chains, $var chains,
 * ".", strings, raw strings, numbers, booleans, nil, parenthesized
 * pipelines).  The previous command's value is the last argument of the
 * next.
 *
 * Values are Go's dynamic values reduced to what alert data holds: nil,
 * string, float64, int, bool, time and maps of strings (labels).  Printing
 * is fmt's %v: a float64 with the shortest digits that read back, in
 * exponent form iff its decimal exponent is < -4 or >= 6 (strconv's 'g'
 * with precision -1).  Execution errors become the text
 * "<error expanding template: ...>", as in Prometheus.
 *
 * `query` runs an expression through the caller's rules_query_fn (at the
 * rule's evaluation time); first, label, value, strvalue and sortByLabel
 * work on its samples, and range iterates them.  Not supported (refused at
 * parse with Go's "function not defined"): args, and define/template/block
 * (Prometheus's alert templates are one text each).
 */
#include "rules/rules.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static int64_t go_int64(double v);

#define PREAMBLE \
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := " \
    ".ExternalURL}}{{$value := .Value}}"
#define MAX_DEPTH 100
#define MAX_OUTPUT (1u << 20)
#define MAX_STEPS 1000000

/* ---- lexer ------------------------------------------------------------------ */

enum tok {
    T_EOF, T_ERROR, T_TEXT, T_LEFT, T_RIGHT, T_SPACE, T_IDENT, T_FIELD, T_VAR, T_DOT, T_STRING,
    T_RAW, T_CHAR, T_NUMBER, T_BOOL, T_NIL, T_LPAREN, T_RPAREN, T_PIPE, T_DECLARE, T_ASSIGN,
    T_COMMA, T_OTHER, T_IF, T_ELSE, T_END, T_RANGE, T_WITH, T_DEFINE, T_TEMPLATE, T_BLOCK,
    T_BREAK, T_CONTINUE
};

struct token {
    enum tok t;
    const char *s;
    size_t len;
    int line;
};

struct lexer {
    const char *src, *p, *end;
    int line;
    bool in_action;
    int paren;
    bool trim_next;               /* the action just closed with " -}}" */
    char err[160];
};

static const char *const KEYWORDS[] = {"if", "else", "end", "range", "with", "define",
                                       "template", "block", "break", "continue", "nil",
                                       "true", "false"};
static const enum tok KEYWORD_TOKS[] = {T_IF, T_ELSE, T_END, T_RANGE, T_WITH, T_DEFINE,
                                        T_TEMPLATE, T_BLOCK, T_BREAK, T_CONTINUE, T_NIL,
                                        T_BOOL, T_BOOL};

static int count_lines(const char *a, const char *b)
{
    int n = 0;
    for (; a < b; a++)
        n += *a == '\n';
    return n;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alnum_(char c)
{
    return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

static struct token mk(struct lexer *l, enum tok t, const char *s, size_t len)
{
    struct token k = {t, s, len, l->line};
    l->line += count_lines(s, s + len);
    return k;
}

static struct token lex_error(struct lexer *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static struct token lex_error(struct lexer *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err, sizeof l->err, fmt, ap);
    va_end(ap);
    struct token k = {T_ERROR, l->err, strlen(l->err), l->line};
    l->p = l->end;
    return k;
}

/* Whether p starts a right delimiter, with its trim marker: returns its
 * length (2, or 4 for " -}}"), 0 if none. */
static size_t right_delim(const struct lexer *l, const char *p)
{
    if (p + 4 <= l->end && is_space(p[0]) && p[1] == '-' && p[2] == '}' && p[3] == '}')
        return 4;
    if (p + 2 <= l->end && p[0] == '}' && p[1] == '}')
        return 2;
    return 0;
}

static struct token lex_next(struct lexer *l)
{
    if (!l->in_action) {
        if (l->p >= l->end)
            return mk(l, T_EOF, l->p, 0);
        const char *start = l->p;
        if (l->trim_next) {
            while (start < l->end && is_space(*start)) {
                l->line += *start == '\n';
                start++;
            }
            l->trim_next = false;
            l->p = start;
            if (l->p >= l->end)
                return mk(l, T_EOF, l->p, 0);
        }
        const char *open = NULL;
        for (const char *q = start; q + 1 < l->end; q++)
            if (q[0] == '{' && q[1] == '{') {
                open = q;
                break;
            }
        if (open != start) {
            const char *stop = open ? open : l->end;
            const char *text_end = stop;
            if (open && open + 3 < l->end && open[2] == '-' && is_space(open[3]))
                while (text_end > start && is_space(text_end[-1]))
                    text_end--;
            l->p = stop;
            struct token k = mk(l, T_TEXT, start, (size_t)(text_end - start));
            l->line += count_lines(text_end, stop);
            return k;
        }
        /* {{ */
        const char *q = open + 2;
        if (q + 1 < l->end && q[0] == '-' && is_space(q[1]))
            q += 2;
        const char *c = q;
        while (c < l->end && is_space(*c))
            c++;
        if (c + 1 < l->end && c[0] == '/' && c[1] == '*') {
            /* a comment: up to the closing delimiter right after the end */
            const char *e = strstr(c + 2, "*/");
            if (!e || e >= l->end)
                return lex_error(l, "unclosed comment");
            const char *after = e + 2;
            const char *a = after;
            while (a < l->end && is_space(*a))
                a++;
            size_t rd = right_delim(l, after);
            if (!rd && a + 1 < l->end && a[0] == '-' && a[1] == '}')
                rd = 0;
            if (!rd && !(after + 2 <= l->end && after[0] == '}' && after[1] == '}'))
                return lex_error(l, "comment ends before closing delimiter");
            l->trim_next = rd == 4;
            l->line += count_lines(l->p, after + rd);
            l->p = after + rd;
            return lex_next(l);
        }
        l->in_action = true;
        l->paren = 0;
        l->p = q;
        return mk(l, T_LEFT, open, (size_t)(q - open));
    }
    const char *p = l->p;
    size_t rd = right_delim(l, p);
    if (rd) {
        if (l->paren)
            return lex_error(l, "unclosed left paren");
        l->in_action = false;
        l->trim_next = rd == 4;
        l->p = p + rd;
        return mk(l, T_RIGHT, p, rd);
    }
    if (p >= l->end)
        return lex_error(l, "unclosed action");
    if (is_space(*p)) {
        const char *q = p;
        while (q < l->end && is_space(*q) && !right_delim(l, q))
            q++;
        if (q == p)   /* " -}}" */
            q++;
        l->p = q;
        return mk(l, T_SPACE, p, (size_t)(q - p));
    }
    char ch = *p;
    if (ch == ':' && p + 1 < l->end && p[1] == '=') {
        l->p = p + 2;
        return mk(l, T_DECLARE, p, 2);
    }
    if (ch == '=' || ch == '|' || ch == ',' || ch == '(' || ch == ')') {
        l->p = p + 1;
        if (ch == '(')
            l->paren++;
        if (ch == ')') {
            if (--l->paren < 0)
                return lex_error(l, "unexpected right paren U+0029 ')'");
        }
        return mk(l, ch == '=' ? T_ASSIGN : ch == '|' ? T_PIPE : ch == ',' ? T_COMMA
                     : ch == '(' ? T_LPAREN : T_RPAREN, p, 1);
    }
    if (ch == '"') {
        const char *q = p + 1;
        while (q < l->end && *q != '"') {
            if (*q == '\\' && q + 1 < l->end)
                q++;
            if (*q == '\n')
                return lex_error(l, "unterminated quoted string");
            q++;
        }
        if (q >= l->end)
            return lex_error(l, "unterminated quoted string");
        l->p = q + 1;
        return mk(l, T_STRING, p, (size_t)(q + 1 - p));
    }
    if (ch == '`') {
        const char *q = memchr(p + 1, '`', (size_t)(l->end - p - 1));
        if (!q)
            return lex_error(l, "unterminated raw quoted string");
        l->p = q + 1;
        return mk(l, T_RAW, p, (size_t)(q + 1 - p));
    }
    if (ch == '\'') {
        const char *q = p + 1;
        while (q < l->end && *q != '\'') {
            if (*q == '\\' && q + 1 < l->end)
                q++;
            q++;
        }
        if (q >= l->end)
            return lex_error(l, "unterminated character constant");
        l->p = q + 1;
        return mk(l, T_CHAR, p, (size_t)(q + 1 - p));
    }
    if (ch == '$') {
        const char *q = p + 1;
        while (q < l->end && is_alnum_(*q))
            q++;
        l->p = q;
        return mk(l, T_VAR, p, (size_t)(q - p));
    }
    if (ch == '.') {
        if (p + 1 < l->end && isdigit((unsigned char)p[1]))
            goto number;
        const char *q = p + 1;
        while (q < l->end && is_alnum_(*q))
            q++;
        l->p = q;
        return mk(l, q == p + 1 ? T_DOT : T_FIELD, p, (size_t)(q - p));
    }
    if (isdigit((unsigned char)ch) || ((ch == '-' || ch == '+') && p + 1 < l->end &&
                                       (isdigit((unsigned char)p[1]) || p[1] == '.'))) {
number:;
        const char *q = p + 1;
        while (q < l->end && (isalnum((unsigned char)*q) || *q == '.' || *q == '_' ||
                              ((*q == '+' || *q == '-') && (q[-1] == 'e' || q[-1] == 'E' ||
                                                            q[-1] == 'p' || q[-1] == 'P'))))
            q++;
        l->p = q;
        return mk(l, T_NUMBER, p, (size_t)(q - p));
    }
    if (is_alnum_(ch)) {
        const char *q = p;
        while (q < l->end && is_alnum_(*q))
            q++;
        l->p = q;
        for (size_t i = 0; i < sizeof KEYWORDS / sizeof *KEYWORDS; i++)
            if (strlen(KEYWORDS[i]) == (size_t)(q - p) && memcmp(KEYWORDS[i], p, (size_t)(q - p)) == 0)
                return mk(l, KEYWORD_TOKS[i], p, (size_t)(q - p));
        return mk(l, T_IDENT, p, (size_t)(q - p));
    }
    if ((unsigned char)ch < 0x80 && isprint((unsigned char)ch)) {
        l->p = p + 1;
        return mk(l, T_OTHER, p, 1);
    }
    return lex_error(l, "unrecognized character in action: U+%04X", (unsigned char)ch);
}

/* ---- AST -------------------------------------------------------------------- */

enum node_kind { N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH, N_BREAK, N_CONTINUE };
enum arg_kind { A_DOT, A_NIL, A_BOOL, A_NUMBER, A_STRING, A_FIELD, A_VAR, A_FUNC, A_PIPE };

struct pipe;

struct arg {
    enum arg_kind k;
    const char *name;            /* A_VAR: "$x"; A_FUNC: name */
    char **fields;               /* chained .A.B after the operand (A_FIELD: all of it) */
    size_t n_fields;
    struct pipe *pipe;           /* A_PIPE */
    double num;
    bool is_int;
    int64_t inum;
    bool b;
    char *str;
    int line;
};

struct cmd {
    struct arg *args;
    size_t n;
};

struct pipe {
    char *vars[2];
    size_t n_vars;
    bool declare;                /* := rather than = */
    struct cmd *cmds;
    size_t n;
    int line;
};

struct node {
    enum node_kind k;
    char *text;                  /* N_TEXT */
    size_t len;
    struct pipe *pipe;
    struct node *list, *else_list;   /* linked by next */
    struct node *next;
};

struct rules_template {
    char *name;
    struct node *root;
    firn_arena *arena;
};

struct parser {
    struct lexer lx;
    struct token tok[3];
    int peeked;
    firn_arena *a;
    const char *name;
    int preamble_lines;
    char *vars[256];             /* declared variables in scope */
    size_t n_vars;
    int range_depth;
    int depth;
    firn_err *err;
    bool failed;
};

static struct token next(struct parser *p)
{
    if (p->peeked)
        return p->tok[--p->peeked];
    return lex_next(&p->lx);
}

static void backup(struct parser *p, struct token t)
{
    p->tok[p->peeked++] = t;
}

static struct token next_nonspace(struct parser *p)
{
    struct token t;
    do
        t = next(p);
    while (t.t == T_SPACE);
    return t;
}

static struct token peek_nonspace(struct parser *p)
{
    struct token t = next_nonspace(p);
    backup(p, t);
    return t;
}

static void perr(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void perr(struct parser *p, int line, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    firn_errf(p->err, FIRN_EINVAL, "template: %s:%d: %s", p->name, line, msg);
}

/* Go's String() of an item in "unexpected X in Y". */
static void tok_desc(const struct token *t, char *buf, size_t size)
{
    switch (t->t) {
    case T_EOF: snprintf(buf, size, "EOF"); break;
    case T_RIGHT: snprintf(buf, size, "<right>"); break;
    case T_LEFT: snprintf(buf, size, "<left>"); break;
    case T_SPACE: snprintf(buf, size, "<space>"); break;
    default:
        if (t->t >= T_IF)
            snprintf(buf, size, "<%.*s>", (int)t->len, t->s);
        else if (t->len > 10)
            snprintf(buf, size, "\"%.10s\"...", t->s);
        else
            snprintf(buf, size, "\"%.*s\"", (int)t->len, t->s);
    }
}

static void unexpected(struct parser *p, const struct token *t, const char *context)
{
    if (t->t == T_ERROR) {
        perr(p, t->line, "%.*s", (int)t->len, t->s);
        return;
    }
    char d[64];
    tok_desc(t, d, sizeof d);
    perr(p, t->line, "unexpected %s in %s", d, context);
}

static const char *const FUNCS[] = {
    /* Go's builtins */
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
    /* Prometheus 2.42's, less those that need query results */
    "reReplaceAll", "safeHtml", "match", "title", "toUpper", "toLower", "graphLink",
    "tableLink", "stripPort", "stripDomain", "humanize", "humanize1024", "humanizeDuration",
    "humanizePercentage", "humanizeTimestamp", "toTime", "pathPrefix", "externalURL",
    "parseDuration", "query", "first", "label", "value", "strvalue", "sortByLabel"};

static bool has_function(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof FUNCS / sizeof *FUNCS; i++)
        if (strlen(FUNCS[i]) == len && memcmp(FUNCS[i], name, len) == 0)
            return true;
    return false;
}

static char *adup(struct parser *p, const char *s, size_t n)
{
    return firn_arena_strndup(p->a, s, n);
}

/* Go's strconv.Unquote for "..." and '...' (the escapes Go knows). */
static bool unquote(struct parser *p, const struct token *t, char **out, size_t *out_len)
{
    char *d = firn_arena_alloc(p->a, t->len + 4);
    if (!d)
        return false;
    size_t n = 0;
    for (size_t i = 1; i + 1 < t->len; i++) {
        char c = t->s[i];
        if (c != '\\') {
            d[n++] = c;
            continue;
        }
        c = t->s[++i];
        switch (c) {
        case 'n': d[n++] = '\n'; break;
        case 't': d[n++] = '\t'; break;
        case 'r': d[n++] = '\r'; break;
        case 'a': d[n++] = '\a'; break;
        case 'b': d[n++] = '\b'; break;
        case 'f': d[n++] = '\f'; break;
        case 'v': d[n++] = '\v'; break;
        case '\\': case '"': case '\'': d[n++] = c; break;
        case 'x': {
            unsigned v;
            if (i + 2 >= t->len || sscanf(t->s + i + 1, "%2x", &v) != 1)
                return false;
            d[n++] = (char)v;
            i += 2;
            break;
        }
        case 'u': case 'U': {
            size_t w = c == 'u' ? 4 : 8;
            char hex[9] = {0};
            if (i + w >= t->len)
                return false;
            memcpy(hex, t->s + i + 1, w);
            unsigned long cp = strtoul(hex, NULL, 16);
            i += w;
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return false;   /* Go: invalid syntax */
            n += firn_utf8_encode((uint32_t)cp, d + n);
            break;
        }
        default:
            return false;
        }
    }
    d[n] = 0;
    *out = d;
    *out_len = n;
    return true;
}

static bool var_known(struct parser *p, const char *name, size_t len)
{
    for (size_t i = p->n_vars; i-- > 0;)
        if (strlen(p->vars[i]) == len && memcmp(p->vars[i], name, len) == 0)
            return true;
    return false;
}

static struct pipe *pipeline(struct parser *p, const char *context, enum tok end);

/* Field chain after an operand: .A.B */
static void chain(struct parser *p, struct arg *a)
{
    for (;;) {
        struct token t = next(p);
        if (t.t != T_FIELD) {
            backup(p, t);
            return;
        }
        char **nf = firn_arena_alloc(p->a, (a->n_fields + 1) * sizeof *nf);
        if (!nf)
            return;
        if (a->n_fields)
            memcpy(nf, a->fields, a->n_fields * sizeof *nf);
        nf[a->n_fields++] = adup(p, t.s + 1, t.len - 1);
        a->fields = nf;
    }
}

/* One operand into a; false when the next token is none. */
static bool operand(struct parser *p, struct arg *a)
{
    struct token t = next(p);
    memset(a, 0, sizeof *a);
    a->line = t.line;
    switch (t.t) {
    case T_IDENT:
        if (!has_function(t.s, t.len)) {
            perr(p, t.line, "function \"%.*s\" not defined", (int)t.len, t.s);
            return false;
        }
        a->k = A_FUNC;
        a->name = adup(p, t.s, t.len);
        return true;
    case T_DOT:
        a->k = A_DOT;
        break;
    case T_NIL:
        a->k = A_NIL;
        break;
    case T_BOOL:
        a->k = A_BOOL;
        a->b = t.s[0] == 't';
        break;
    case T_VAR:
        if (!var_known(p, t.s, t.len)) {
            perr(p, t.line, "undefined variable \"%.*s\"", (int)t.len, t.s);
            return false;
        }
        a->k = A_VAR;
        a->name = adup(p, t.s, t.len);
        break;
    case T_FIELD:
        a->k = A_FIELD;
        backup(p, t);
        break;
    case T_NUMBER: case T_CHAR: {
        a->k = A_NUMBER;
        if (t.t == T_CHAR) {
            char *s;
            size_t n;
            if (!unquote(p, &t, &s, &n) || n == 0) {
                perr(p, t.line, "malformed character constant: %.*s", (int)t.len, t.s);
                return false;
            }
            a->is_int = true;
            a->inum = (unsigned char)s[0];
            a->num = (double)a->inum;
            break;
        }
        char *s = adup(p, t.s, t.len), *end;
        long long v = strtoll(s, &end, 0);
        if (!*end) {
            a->is_int = true;
            a->inum = v;
            a->num = (double)v;
        } else {
            a->num = strtod(s, &end);
            if (*end) {
                perr(p, t.line, "bad number syntax: \"%s\"", s);
                return false;
            }
        }
        break;
    }
    case T_STRING: case T_RAW: {
        a->k = A_STRING;
        size_t n;
        if (t.t == T_RAW) {
            a->str = adup(p, t.s + 1, t.len - 2);
        } else if (!unquote(p, &t, &a->str, &n)) {
            perr(p, t.line, "invalid syntax");
            return false;
        }
        break;
    }
    case T_LPAREN:
        a->k = A_PIPE;
        a->pipe = pipeline(p, "parenthesized pipeline", T_RPAREN);
        if (!a->pipe)
            return false;
        break;
    default:
        backup(p, t);
        return false;
    }
    chain(p, a);
    return true;
}

static bool command(struct parser *p, struct cmd *c)
{
    memset(c, 0, sizeof *c);
    for (;;) {
        struct arg a;
        struct token t0 = next_nonspace(p);
        backup(p, t0);
        if (operand(p, &a)) {
            struct arg *na = firn_arena_alloc(p->a, (c->n + 1) * sizeof *na);
            if (!na)
                return false;
            if (c->n)
                memcpy(na, c->args, c->n * sizeof *na);
            na[c->n++] = a;
            c->args = na;
        } else if (p->failed) {
            return false;
        }
        struct token t = next(p);
        if (t.t == T_SPACE)
            continue;
        if (t.t == T_RIGHT || t.t == T_RPAREN || t.t == T_PIPE) {
            backup(p, t);
            break;
        }
        unexpected(p, &t, "operand");
        return false;
    }
    if (c->n == 0) {
        struct token t = next_nonspace(p);
        if (t.t == T_ERROR)
            unexpected(p, &t, "command");
        else
            perr(p, t.line, "empty command");
        return false;
    }
    return true;
}

static struct pipe *pipeline(struct parser *p, const char *context, enum tok end)
{
    struct pipe *pp = firn_arena_calloc(p->a, 1, sizeof *pp);
    struct token t = peek_nonspace(p);
    pp->line = t.line;
    if (t.t == T_VAR) {
        struct token v = next_nonspace(p);
        struct token after = next_nonspace(p);
        bool is_decl = after.t == T_DECLARE || after.t == T_ASSIGN ||
                       (after.t == T_COMMA && strcmp(context, "range") == 0);
        if (is_decl) {
            pp->vars[pp->n_vars++] = adup(p, v.s, v.len);
            if (after.t == T_COMMA) {
                struct token v2 = next_nonspace(p);
                if (v2.t != T_VAR) {
                    unexpected(p, &v2, context);
                    return NULL;
                }
                pp->vars[pp->n_vars++] = adup(p, v2.s, v2.len);
                after = next_nonspace(p);
                if (after.t != T_DECLARE && after.t != T_ASSIGN) {
                    unexpected(p, &after, context);
                    return NULL;
                }
            }
            pp->declare = after.t == T_DECLARE;
            if (!pp->declare)
                for (size_t i = 0; i < pp->n_vars; i++)
                    if (!var_known(p, pp->vars[i], strlen(pp->vars[i]))) {
                        perr(p, v.line, "undefined variable \"%s\"", pp->vars[i]);
                        return NULL;
                    }
        } else {
            backup(p, after);
            backup(p, v);
        }
    }
    for (;;) {
        t = next_nonspace(p);
        if (t.t == end) {
            if (pp->n == 0) {
                perr(p, t.line, "missing value for %s", context);
                return NULL;
            }
            for (size_t i = 1; i < pp->n; i++) {
                enum arg_kind k = pp->cmds[i].args[0].k;
                if (k != A_FUNC && k != A_FIELD && !(k == A_VAR && pp->cmds[i].args[0].n_fields) &&
                    !(k == A_DOT && pp->cmds[i].args[0].n_fields) && k != A_PIPE) {
                    perr(p, t.line, "non executable command in pipeline stage %zu", i + 1);
                    return NULL;
                }
            }
            if (end == T_RIGHT)
                backup(p, t);
            break;
        }
        if (t.t == T_IF || t.t == T_ELSE || t.t == T_END || t.t == T_RANGE || t.t == T_WITH ||
            t.t == T_EOF || t.t == T_ERROR || t.t == T_RIGHT || t.t == T_RPAREN) {
            unexpected(p, &t, context);
            return NULL;
        }
        backup(p, t);
        struct cmd c;
        if (!command(p, &c))
            return NULL;
        struct cmd *nc = firn_arena_alloc(p->a, (pp->n + 1) * sizeof *nc);
        if (!nc)
            return NULL;
        if (pp->n)
            memcpy(nc, pp->cmds, pp->n * sizeof *nc);
        nc[pp->n++] = c;
        pp->cmds = nc;
        struct token sep = next_nonspace(p);
        if (sep.t != T_PIPE)
            backup(p, sep);
    }
    for (size_t i = 0; i < pp->n_vars && pp->declare; i++)
        if (p->n_vars < sizeof p->vars / sizeof *p->vars)
            p->vars[p->n_vars++] = pp->vars[i];
    return pp;
}

static struct node *item_list(struct parser *p, enum tok *stop);

static struct node *new_node(struct parser *p, enum node_kind k)
{
    struct node *n = firn_arena_calloc(p->a, 1, sizeof *n);
    n->k = k;
    return n;
}

/* Expects the right delimiter. */
static bool close_action(struct parser *p, const char *context)
{
    struct token t = next_nonspace(p);
    if (t.t != T_RIGHT) {
        unexpected(p, &t, context);
        return false;
    }
    return true;
}

/* if / range / with: the pipeline, the list, an optional else list.
 * "{{else if ...}}" nests an if in the else list. */
static struct node *control(struct parser *p, enum node_kind k, const char *context)
{
    struct node *n = new_node(p, k);
    size_t mark = p->n_vars;
    if (++p->depth > MAX_DEPTH) {
        perr(p, p->lx.line, "template nested too deeply");
        return NULL;
    }
    n->pipe = pipeline(p, context, T_RIGHT);
    if (!n->pipe || !close_action(p, context))
        return NULL;
    if (k == N_RANGE)
        p->range_depth++;
    enum tok stop;
    n->list = item_list(p, &stop);
    if (p->failed)
        return NULL;
    if (stop == T_EOF) {
        perr(p, p->lx.line, "unexpected EOF");
        return NULL;
    }
    if (stop == T_ELSE) {
        struct token t = peek_nonspace(p);
        if (t.t == T_IF && k == N_IF) {
            next_nonspace(p);
            /* else if: a nested if whose {{end}} is ours */
            n->else_list = control(p, N_IF, "if");
            if (!n->else_list)
                return NULL;
            p->depth--;
            if (k == N_RANGE)
                p->range_depth--;
            p->n_vars = mark;
            return n;
        }
        if (t.t == T_WITH && k == N_WITH) {
            next_nonspace(p);
            n->else_list = control(p, N_WITH, "with");
            if (!n->else_list)
                return NULL;
            p->depth--;
            p->n_vars = mark;
            return n;
        }
        if (!close_action(p, "else"))
            return NULL;
        n->else_list = item_list(p, &stop);
        if (p->failed)
            return NULL;
        if (stop == T_EOF) {
            perr(p, p->lx.line, "unexpected EOF");
            return NULL;
        }
        if (stop != T_END) {
            perr(p, p->lx.line, "expected end; found {{else}}");
            return NULL;
        }
    }
    if (k == N_RANGE)
        p->range_depth--;
    p->depth--;
    p->n_vars = mark;
    return n;
}

/* Items up to {{end}}, {{else}} (stop says which) or EOF (T_EOF). */
static struct node *item_list(struct parser *p, enum tok *stop)
{
    struct node head = {0}, *tail = &head;
    for (;;) {
        struct token t = next(p);
        struct node *n = NULL;
        if (t.t == T_EOF) {
            *stop = T_EOF;
            return head.next;
        }
        if (t.t == T_ERROR) {
            perr(p, t.line, "%.*s", (int)t.len, t.s);
            return NULL;
        }
        if (t.t == T_TEXT) {
            n = new_node(p, N_TEXT);
            if (n) {
                n->text = adup(p, t.s, t.len);
                n->len = t.len;
            }
        } else if (t.t == T_LEFT) {
            struct token k = next_nonspace(p);
            switch (k.t) {
            case T_END:
                if (!close_action(p, "end"))
                    return NULL;
                *stop = T_END;
                return head.next;
            case T_ELSE:
                *stop = T_ELSE;
                return head.next;
            case T_IF:
                n = control(p, N_IF, "if");
                break;
            case T_RANGE:
                n = control(p, N_RANGE, "range");
                break;
            case T_WITH:
                n = control(p, N_WITH, "with");
                break;
            case T_BREAK: case T_CONTINUE:
                if (!p->range_depth) {
                    perr(p, k.line, "{{%.*s}} outside {{range}}", (int)k.len, k.s);
                    return NULL;
                }
                if (!close_action(p, k.t == T_BREAK ? "break" : "continue"))
                    return NULL;
                n = new_node(p, k.t == T_BREAK ? N_BREAK : N_CONTINUE);
                break;
            case T_DEFINE: case T_TEMPLATE: case T_BLOCK:
                perr(p, k.line, "{{%.*s}} is not supported in alert templates", (int)k.len, k.s);
                return NULL;
            default:
                backup(p, k);
                n = new_node(p, N_ACTION);
                if (!(n->pipe = pipeline(p, "command", T_RIGHT)))
                    return NULL;
                if (!close_action(p, "command"))
                    return NULL;
            }
        } else {
            unexpected(p, &t, "input");
            return NULL;
        }
        if (p->failed)
            return NULL;
        assert(n);   /* every case above made a node or failed */
        tail->next = n;
        tail = n;
    }
}

void rules_template_free(rules_template *t)
{
    if (t)
        firn_arena_free(t->arena);
}

rules_template *rules_template_parse(const char *name, const char *text, firn_err *err)
{
    firn_arena *a = firn_arena_new(0);
    rules_template *t = firn_arena_calloc(a, 1, sizeof *t);
    char *src = firn_xasprintf("%s%s", PREAMBLE, text);
    t->arena = a;
    t->name = firn_arena_strdup(a, name);
    struct parser p = {.a = a, .name = name, .err = err};
    p.vars[p.n_vars++] = "$";
    p.lx.src = p.lx.p = firn_arena_strdup(a, src);
    free(src);
    p.lx.end = p.lx.src + strlen(p.lx.src);
    p.lx.line = 1;
    enum tok stop = T_EOF;
    t->root = item_list(&p, &stop);
    if (!p.failed && stop == T_END)
        perr(&p, p.lx.line, "unexpected {{end}}");
    if (!p.failed && stop == T_ELSE)
        perr(&p, p.lx.line, "unexpected {{else}}");
    if (p.failed || (!p.failed && stop != T_EOF)) {
        firn_arena_free(a);
        return NULL;
    }
    return t;
}

/* ---- values ----------------------------------------------------------------- */

enum vkind { V_NIL, V_STR, V_FLOAT, V_INT, V_BOOL, V_MAP, V_DATA, V_TIME, V_SAMPLES, V_SAMPLE };

struct value {
    enum vkind k;
    const char *s;               /* V_STR */
    double f;                    /* V_FLOAT, V_TIME (unix seconds) */
    int64_t i;
    bool b;
    const firn_label *m;         /* V_MAP */
    size_t n;                    /* V_MAP, V_SAMPLES */
    const rules_sample *smp;     /* V_SAMPLES (n of them), V_SAMPLE */
};

struct exec {
    const rules_template *t;
    const rules_template_data *d;
    firn_buf out;
    firn_arena *a;
    struct { const char *name; struct value v; } vars[256];
    size_t n_vars;
    char err[512];
    bool failed;
    long steps;
    int brk;                     /* 1 break, 2 continue */
};

static void xerr(struct exec *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void xerr(struct exec *x, const char *fmt, ...)
{
    if (x->failed)
        return;
    x->failed = true;
    va_list ap;
    va_start(ap, fmt);
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(x->err, sizeof x->err, "template: %s: executing \"%s\": %s", x->t->name,
             x->t->name, msg);
}

static struct value vstr(const char *s)
{
    return (struct value){.k = V_STR, .s = s};
}

static struct value vfloat(double f)
{
    return (struct value){.k = V_FLOAT, .f = f};
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64) ('e' when force_e): the
 * shortest digits that read back as v. */
static void go_float(char *buf, size_t size, double v, bool force_e)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char e[40];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    snprintf(e, sizeof e, "%.*e", prec, v);
    /* e is [-]d[.ddd]e[+-]XX */
    char *ep = strchr(e, 'e');
    int exp = atoi(ep + 1);
    *ep = 0;
    char digits[40];
    size_t nd = 0;
    bool neg = e[0] == '-';
    for (const char *q = e + neg; *q; q++)
        if (*q != '.')
            digits[nd++] = *q;
    digits[nd] = 0;
    if (force_e || exp < -4 || exp >= 6) {
        snprintf(buf, size, "%s%c%s%s%se%c%02d", neg ? "-" : "", digits[0], nd > 1 ? "." : "",
                 nd > 1 ? digits + 1 : "", "", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    char out[64];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    if (exp < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = -1; i > exp; i--)
            out[o++] = '0';
        for (size_t i = 0; i < nd; i++)
            out[o++] = digits[i];
    } else {
        for (int i = 0; i <= exp; i++)
            out[o++] = (size_t)i < nd ? digits[i] : '0';
        if (nd > (size_t)exp + 1) {
            out[o++] = '.';
            for (size_t i = (size_t)exp + 1; i < nd; i++)
                out[o++] = digits[i];
        }
    }
    out[o] = 0;
    snprintf(buf, size, "%s", out);
}

void rules_format_float_e(char *buf, size_t size, double v)
{
    go_float(buf, size, v, true);
}

/* Go's %.4g (and %.Ng): C's, except for infinities and NaN. */
static void go_g(char *buf, size_t size, int prec, double v)
{
    if (isnan(v))
        snprintf(buf, size, "NaN");
    else if (isinf(v))
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    else
        snprintf(buf, size, "%.*g", prec, v);
}

static int cmp_label_name(const void *a, const void *b)
{
    return strcmp(((const firn_label *)a)->name, ((const firn_label *)b)->name);
}

/* fmt's %v. */
static void print_value(struct exec *x, firn_buf *b, const struct value *v)
{
    char tmp[64];
    switch (v->k) {
    case V_NIL: firn_buf_puts(b, "<no value>"); break;
    case V_STR: firn_buf_puts(b, v->s); break;
    case V_FLOAT: go_float(tmp, sizeof tmp, v->f, false); firn_buf_puts(b, tmp); break;
    case V_INT: firn_buf_printf(b, "%lld", (long long)v->i); break;
    case V_BOOL: firn_buf_puts(b, v->b ? "true" : "false"); break;
    case V_MAP: {
        firn_label *s = firn_arena_alloc(x->a, (v->n + 1) * sizeof *s);
        if (v->n)
            memcpy(s, v->m, v->n * sizeof *s);
        firn_sort(s, v->n, sizeof *s, cmp_label_name);
        firn_buf_puts(b, "map[");
        for (size_t i = 0; i < v->n; i++)
            firn_buf_printf(b, "%s%s:%s", i ? " " : "", s[i].name, s[i].value);
        firn_buf_puts(b, "]");
        break;
    }
    case V_DATA: firn_buf_puts(b, "{...}"); break;
    case V_SAMPLES: case V_SAMPLE: {
        size_t n = v->k == V_SAMPLE ? 1 : v->n;
        firn_buf_puts(b, v->k == V_SAMPLES ? "[" : "");
        for (size_t i = 0; i < n; i++) {
            char *ls = firn_labels_format(v->smp[i].labels, v->smp[i].n_labels);
            char num[64];
            go_float(num, sizeof num, v->smp[i].value, false);
            firn_buf_printf(b, "%s{%s %s}", i ? " " : "", ls ? ls : "{}", num);
            free(ls);
        }
        firn_buf_puts(b, v->k == V_SAMPLES ? "]" : "");
        break;
    }
    case V_TIME: {
        double secs = floor(v->f);
        time_t t = (time_t)go_int64(secs);
        struct tm tm = {0};
        if (!gmtime_r(&t, &tm))
            tm = (struct tm){.tm_mday = 1, .tm_year = 70};
        char d[64];
        strftime(d, sizeof d, "%Y-%m-%d %H:%M:%S", &tm);
        firn_buf_puts(b, d);
        long ns = (long)llround((v->f - secs) * 1e9);
        if (ns > 0) {
            char frac[24];
            snprintf(frac, sizeof frac, "%09ld", ns);
            size_t l = strlen(frac);
            while (l && frac[l - 1] == '0')
                frac[--l] = 0;
            firn_buf_printf(b, ".%s", frac);
        }
        firn_buf_puts(b, " +0000 UTC");
        break;
    }
    }
}

static const char *as_string(struct exec *x, const struct value *v)
{
    if (v->k == V_STR)
        return v->s;
    firn_buf b = {0};
    print_value(x, &b, v);
    char *s = firn_arena_strdup(x->a, b.data ? b.data : "");
    firn_buf_free(&b);
    return s;
}

static const char *type_name(const struct value *v)
{
    switch (v->k) {
    case V_NIL: return "<nil>";
    case V_STR: return "string";
    case V_FLOAT: return "float64";
    case V_INT: return "int";
    case V_BOOL: return "bool";
    case V_MAP: return "map[string]string";
    case V_TIME: return "time.Time";
    case V_SAMPLES: return "template.queryResult";
    case V_SAMPLE: return "*template.sample";
    default: return "*template.tmplData";
    }
}

/* Prometheus's convertToFloat. */
static bool to_float(struct exec *x, const struct value *v, double *out)
{
    switch (v->k) {
    case V_FLOAT: *out = v->f; return true;
    case V_INT: *out = (double)v->i; return true;
    case V_STR: {
        char *end;
        const char *s = v->s;
        if (strcmp(s, "+Inf") == 0 || strcmp(s, "Inf") == 0 || strcmp(s, "inf") == 0) {
            *out = INFINITY;
            return true;
        }
        *out = strtod(s, &end);
        if (*s && !*end)
            return true;
        xerr(x, "strconv.ParseFloat: parsing \"%s\": invalid syntax", s);
        return false;
    }
    default:
        xerr(x, "can't convert %s to float", type_name(v));
        return false;
    }
}

static bool truth(const struct value *v)
{
    switch (v->k) {
    case V_NIL: return false;
    case V_STR: return v->s[0] != 0;
    case V_FLOAT: return v->f != 0;
    case V_INT: return v->i != 0;
    case V_BOOL: return v->b;
    case V_MAP: case V_SAMPLES: return v->n > 0;
    default: return true;
    }
}

/* ---- functions ---------------------------------------------------------------- */

static struct value humanize_scaled(struct exec *x, double v, double base, const char *const *up,
                                    size_t n_up, bool down)
{
    char tmp[64];
    if (isinf(v) || isnan(v)) {
        go_g(tmp, sizeof tmp, 4, v);
        return vstr(firn_arena_strdup(x->a, tmp));
    }
    const char *prefix = "";
    if (fabs(v) >= 1 || !down) {
        for (size_t i = 0; i < n_up && fabs(v) >= base; i++) {
            prefix = up[i];
            v /= base;
        }
    } else {
        static const char *const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
        for (size_t i = 0; i < 8 && fabs(v) < 1 && v != 0; i++) {
            prefix = small[i];
            v *= 1000;
        }
    }
    go_g(tmp, sizeof tmp, 4, v);
    char *s = firn_xasprintf("%s%s", tmp, prefix);
    const char *r = firn_arena_strdup(x->a, s);
    free(s);
    return vstr(r);
}

/* Go's int64(v) on amd64: the truncated value where it fits, else (NaN
 * or out of range) the "integer indefinite" MinInt64.  C leaves those cases
 * undefined; Prometheus's templates print what Go gives. */
static int64_t go_int64(double v)
{
    return v >= -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v : INT64_MIN;
}

static struct value humanize_duration(struct exec *x, double v)
{
    char tmp[96];
    if (isinf(v) || isnan(v)) {
        go_g(tmp, sizeof tmp, 4, v);
    } else if (v == 0) {
        go_g(tmp, sizeof tmp, 4, v);
        strcat(tmp, "s");
    } else if (fabs(v) >= 1) {
        const char *sign = "";
        if (v < 0) {
            sign = "-";
            v = -v;
        }
        int64_t d = go_int64(v);
        int64_t secs = d % 60, mins = (d / 60) % 60, hours = (d / 3600) % 24, days = d / 86400;
        if (days)
            snprintf(tmp, sizeof tmp, "%s%lldd %lldh %lldm %llds", sign, (long long)days,
                     (long long)hours, (long long)mins, (long long)secs);
        else if (hours)
            snprintf(tmp, sizeof tmp, "%s%lldh %lldm %llds", sign, (long long)hours,
                     (long long)mins, (long long)secs);
        else if (mins)
            snprintf(tmp, sizeof tmp, "%s%lldm %llds", sign, (long long)mins, (long long)secs);
        else {
            char g[48];
            go_g(g, sizeof g, 4, v);
            snprintf(tmp, sizeof tmp, "%s%ss", sign, g);
        }
    } else {
        static const char *const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
        const char *prefix = "";
        for (size_t i = 0; i < 8 && fabs(v) < 1; i++) {
            prefix = small[i];
            v *= 1000;
        }
        char g[48];
        go_g(g, sizeof g, 4, v);
        snprintf(tmp, sizeof tmp, "%s%ss", g, prefix);
    }
    const char *r = firn_arena_strdup(x->a, tmp);
    return vstr(r ? r : "");
}

/* Go's fmt verbs over template values: %s %v %d %f %e %g %q %x %t %%,
 * with flags, width and precision. */
static struct value do_printf(struct exec *x, const struct value *args, size_t n)
{
    if (n < 1 || args[0].k != V_STR) {
        xerr(x, "error calling printf: wrong type for format");
        return vstr("");
    }
    const char *f = args[0].s;
    size_t ai = 1;
    firn_buf b = {0};
    for (const char *p = f; *p; p++) {
        if (*p != '%') {
            firn_buf_append(&b, p, 1);
            continue;
        }
        const char *spec = p++;
        while (*p && strchr("+-# 0", *p))
            p++;
        while (*p && (isdigit((unsigned char)*p) || *p == '.'))
            p++;
        if (!*p)
            break;
        char verb = *p;
        if (verb == '%') {
            firn_buf_puts(&b, "%");
            continue;
        }
        char cfmt[32];
        size_t fl = (size_t)(p - spec);
        if (fl > 20)
            fl = 20;
        memcpy(cfmt, spec, fl);
        cfmt[fl] = 0;
        if (ai >= n) {
            firn_buf_printf(&b, "%%!%c(MISSING)", verb);
            continue;
        }
        const struct value *v = &args[ai++];
        char tmp[512];
        switch (verb) {
        case 'd':
            if (v->k == V_INT) {
                snprintf(tmp, sizeof tmp, "%slld", cfmt);
                firn_buf_printf(&b, tmp, (long long)v->i);
            } else {
                firn_buf_printf(&b, "%%!d(%s=%s)", type_name(v), as_string(x, v));
            }
            break;
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
            double d;
            if (v->k == V_FLOAT || v->k == V_INT) {
                d = v->k == V_FLOAT ? v->f : (double)v->i;
                if (isnan(d) || isinf(d)) {
                    firn_buf_puts(&b, isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
                } else {
                    snprintf(tmp, sizeof tmp, "%s%c", cfmt, verb);
                    firn_buf_printf(&b, tmp, d);
                }
            } else {
                firn_buf_printf(&b, "%%!%c(%s=%s)", verb, type_name(v), as_string(x, v));
            }
            break;
        }
        case 's': case 'v': {
            const char *s = as_string(x, v);
            snprintf(tmp, sizeof tmp, "%ss", cfmt);
            firn_buf_printf(&b, tmp, s);
            break;
        }
        case 'q': {
            const char *s = as_string(x, v);
            firn_buf_puts(&b, "\"");
            for (const char *q = s; *q; q++) {
                if (*q == '"' || *q == '\\')
                    firn_buf_printf(&b, "\\%c", *q);
                else if (*q == '\n')
                    firn_buf_puts(&b, "\\n");
                else if (*q == '\t')
                    firn_buf_puts(&b, "\\t");
                else if ((unsigned char)*q < 0x20)
                    firn_buf_printf(&b, "\\x%02x", (unsigned char)*q);
                else
                    firn_buf_append(&b, q, 1);
            }
            firn_buf_puts(&b, "\"");
            break;
        }
        case 't':
            if (v->k == V_BOOL)
                firn_buf_puts(&b, v->b ? "true" : "false");
            else
                firn_buf_printf(&b, "%%!t(%s=%s)", type_name(v), as_string(x, v));
            break;
        case 'x': case 'X':
            if (v->k == V_INT) {
                snprintf(tmp, sizeof tmp, "%sll%c", cfmt, verb);
                firn_buf_printf(&b, tmp, (long long)v->i);
            } else {
                const char *s = as_string(x, v);
                for (const char *q = s; *q; q++)
                    firn_buf_printf(&b, verb == 'x' ? "%02x" : "%02X", (unsigned char)*q);
            }
            break;
        default:
            firn_buf_printf(&b, "%%!%c(%s=%s)", verb, type_name(v), as_string(x, v));
        }
    }
    for (; ai < n; ai++)   /* Go appends extra arguments */
        firn_buf_printf(&b, "%s%%!(EXTRA %s=%s)", "", type_name(&args[ai]),
                        as_string(x, &args[ai]));
    const char *s = firn_arena_strdup(x->a, b.data ? b.data : "");
    firn_buf_free(&b);
    return vstr(s ? s : "");
}

static int compare_values(struct exec *x, const struct value *a, const struct value *b, bool *ok)
{
    *ok = true;
    if ((a->k == V_FLOAT || a->k == V_INT) && (b->k == V_FLOAT || b->k == V_INT)) {
        if (a->k != b->k) {
            *ok = false;
            xerr(x, "error calling comparison: incompatible types for comparison");
            return 0;
        }
        double p = a->k == V_FLOAT ? a->f : (double)a->i, q = b->k == V_FLOAT ? b->f : (double)b->i;
        return p < q ? -1 : p > q;
    }
    if (a->k == V_STR && b->k == V_STR)
        return strcmp(a->s, b->s) < 0 ? -1 : strcmp(a->s, b->s) > 0;
    if (a->k == V_BOOL && b->k == V_BOOL)
        return a->b == b->b ? 0 : 2;
    *ok = false;
    xerr(x, "error calling comparison: incompatible types for comparison");
    return 0;
}

/* Go's regexp as PCRE2 (unanchored): match, and ReplaceAllString with $1. */
static pcre2_code *re_compile(struct exec *x, const char *pattern)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec,
                                   &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[128];
        pcre2_get_error_message(ec, msg, sizeof msg);
        xerr(x, "error calling regexp: error parsing regexp: %s: `%s`", (char *)msg, pattern);
    }
    return re;
}

static struct value call(struct exec *x, const char *fn, struct value *args, size_t n)
{
#define NEED(k)                                                                            \
    do {                                                                                   \
        if (n != (k)) {                                                                    \
            xerr(x, "wrong number of args for %s: want %d got %zu", fn, (int)(k), n);     \
            return vstr("");                                                               \
        }                                                                                  \
    } while (0)
    double d;
    if (strcmp(fn, "printf") == 0)
        return do_printf(x, args, n);
    if (strcmp(fn, "print") == 0 || strcmp(fn, "println") == 0) {
        firn_buf b = {0};
        for (size_t i = 0; i < n; i++) {
            bool str_pair = i > 0 && args[i].k == V_STR && args[i - 1].k == V_STR;
            if (i && (fn[5] == 'l' || !str_pair))
                firn_buf_puts(&b, " ");
            print_value(x, &b, &args[i]);
        }
        if (fn[5] == 'l')
            firn_buf_puts(&b, "\n");
        const char *s = firn_arena_strdup(x->a, b.data ? b.data : "");
        firn_buf_free(&b);
        return vstr(s ? s : "");
    }
    if (strcmp(fn, "len") == 0) {
        NEED(1);
        if (args[0].k == V_STR)
            return (struct value){.k = V_INT, .i = (int64_t)strlen(args[0].s)};
        if (args[0].k == V_MAP)
            return (struct value){.k = V_INT, .i = (int64_t)args[0].n};
        xerr(x, "error calling len: len of type %s", type_name(&args[0]));
        return vstr("");
    }
    if (strcmp(fn, "index") == 0) {
        if (n == 2 && args[0].k == V_MAP && args[1].k == V_STR) {
            const char *v = firn_labels_get(args[0].m, args[0].n, args[1].s);
            return vstr(v ? v : "");
        }
        xerr(x, "error calling index: can't index item of type %s", type_name(&args[0]));
        return vstr("");
    }
    if (strcmp(fn, "not") == 0) {
        NEED(1);
        return (struct value){.k = V_BOOL, .b = !truth(&args[0])};
    }
    if (strcmp(fn, "and") == 0 || strcmp(fn, "or") == 0) {
        bool want = fn[0] == 'o';
        for (size_t i = 0; i < n; i++)
            if (truth(&args[i]) == want || i + 1 == n)
                return args[i];
        return vstr("");
    }
    if (strcmp(fn, "eq") == 0 || strcmp(fn, "ne") == 0 || strcmp(fn, "lt") == 0 ||
        strcmp(fn, "le") == 0 || strcmp(fn, "gt") == 0 || strcmp(fn, "ge") == 0) {
        bool ok;
        if (strcmp(fn, "eq") == 0) {
            if (n < 2) {
                xerr(x, "error calling eq: missing argument for comparison");
                return vstr("");
            }
            for (size_t i = 1; i < n; i++) {
                int c = compare_values(x, &args[0], &args[i], &ok);
                if (!ok)
                    return vstr("");
                if (c == 0)
                    return (struct value){.k = V_BOOL, .b = true};
            }
            return (struct value){.k = V_BOOL, .b = false};
        }
        NEED(2);
        int c = compare_values(x, &args[0], &args[1], &ok);
        if (!ok)
            return vstr("");
        if (c == 2 && strcmp(fn, "ne") != 0) {
            xerr(x, "error calling %s: invalid type for comparison", fn);
            return vstr("");
        }
        bool r = strcmp(fn, "ne") == 0 ? c != 0 : strcmp(fn, "lt") == 0 ? c < 0
                 : strcmp(fn, "le") == 0 ? c <= 0 : strcmp(fn, "gt") == 0 ? c > 0 : c >= 0;
        return (struct value){.k = V_BOOL, .b = r};
    }
    if (strcmp(fn, "humanize") == 0) {
        NEED(1);
        static const char *const up[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
        if (!to_float(x, &args[0], &d))
            return vstr("");
        return humanize_scaled(x, d, 1000, up, 8, true);
    }
    if (strcmp(fn, "humanize1024") == 0) {
        NEED(1);
        static const char *const up[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
        if (!to_float(x, &args[0], &d))
            return vstr("");
        if (fabs(d) <= 1) {
            char tmp[48];
            go_g(tmp, sizeof tmp, 4, d);
            return vstr(firn_arena_strdup(x->a, tmp));
        }
        return humanize_scaled(x, d, 1024, up, 8, false);
    }
    if (strcmp(fn, "humanizeDuration") == 0) {
        NEED(1);
        if (!to_float(x, &args[0], &d))
            return vstr("");
        return humanize_duration(x, d);
    }
    if (strcmp(fn, "humanizePercentage") == 0) {
        NEED(1);
        if (!to_float(x, &args[0], &d))
            return vstr("");
        char tmp[48];
        go_g(tmp, sizeof tmp, 4, d * 100);
        strcat(tmp, "%");
        return vstr(firn_arena_strdup(x->a, tmp));
    }
    if (strcmp(fn, "humanizeTimestamp") == 0 || strcmp(fn, "toTime") == 0) {
        NEED(1);
        if (!to_float(x, &args[0], &d))
            return vstr("");
        if (isinf(d) || isnan(d)) {
            if (fn[0] == 't') {
                xerr(x, "error calling toTime: %g cannot be represented as a nanoseconds "
                     "timestamp since it overflows int64", d);
                return vstr("");
            }
            char tmp[48];
            go_g(tmp, sizeof tmp, 4, d);
            return vstr(firn_arena_strdup(x->a, tmp));
        }
        return (struct value){.k = V_TIME, .f = d};
    }
    if (strcmp(fn, "title") == 0 || strcmp(fn, "toUpper") == 0 || strcmp(fn, "toLower") == 0) {
        NEED(1);
        const char *s = as_string(x, &args[0]);
        char *r = firn_arena_strdup(x->a, s);
        bool start = true;
        for (char *q = r; *q; q++) {
            unsigned char c = (unsigned char)*q;
            if (fn[0] == 'l' || fn[2] == 'U')
                *q = (char)(fn[2] == 'U' ? toupper(c) : c);
            if (fn[2] == 'L')
                *q = (char)tolower(c);
            if (fn[0] == 't' && fn[1] == 'i') {
                if (start && islower(c))
                    *q = (char)toupper(c);
                start = !(isalnum(c) || c == '_' || c == '\'' || c >= 0x80);
            }
        }
        return vstr(r);
    }
    if (strcmp(fn, "match") == 0) {
        NEED(2);
        pcre2_code *re = re_compile(x, as_string(x, &args[0]));
        if (!re)
            return vstr("");
        const char *s = as_string(x, &args[1]);
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        if (!md)
            firn_oom(0);   /* PCRE2's own allocation failed */
        int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        return (struct value){.k = V_BOOL, .b = rc >= 0};
    }
    if (strcmp(fn, "reReplaceAll") == 0) {
        NEED(3);
        pcre2_code *re = re_compile(x, as_string(x, &args[0]));
        if (!re)
            return vstr("");
        const char *repl = as_string(x, &args[1]), *s = as_string(x, &args[2]);
        PCRE2_SIZE cap = strlen(s) * 4 + strlen(repl) * 4 + 256;
        char *out = firn_arena_alloc(x->a, cap);
        int rc = pcre2_substitute(re, (PCRE2_SPTR)s, strlen(s), 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_UNSET_EMPTY |
                                      PCRE2_SUBSTITUTE_UNKNOWN_UNSET,
                                  NULL, NULL, (PCRE2_SPTR)repl, strlen(repl), (PCRE2_UCHAR *)out,
                                  &cap);
        pcre2_code_free(re);
        if (rc < 0) {
            xerr(x, "error calling reReplaceAll: replacement failed");
            return vstr("");
        }
        return vstr(out);
    }
    if (strcmp(fn, "safeHtml") == 0 || strcmp(fn, "html") == 0 || strcmp(fn, "js") == 0 ||
        strcmp(fn, "urlquery") == 0) {
        NEED(1);
        const char *s = as_string(x, &args[0]);
        if (fn[0] == 's')
            return vstr(s);
        firn_buf b = {0};
        for (const char *q = s; *q; q++) {
            unsigned char c = (unsigned char)*q;
            if (fn[0] == 'h') {
                const char *e = c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;"
                                : c == '"' ? "&#34;" : c == '\'' ? "&#39;" : NULL;
                if (e)
                    firn_buf_puts(&b, e);
                else
                    firn_buf_append(&b, q, 1);
            } else if (fn[0] == 'u') {
                if (isalnum(c) || strchr("-_.~", c))
                    firn_buf_append(&b, q, 1);
                else if (c == ' ')
                    firn_buf_puts(&b, "+");
                else
                    firn_buf_printf(&b, "%%%02X", c);
            } else {
                if (c == '\\' || c == '\'' || c == '"')
                    firn_buf_printf(&b, "\\%c", c);
                else if (c == '<' || c == '>' || c == '&' || c == '=' || c < 0x20)
                    firn_buf_printf(&b, "\\u%04X", c);
                else
                    firn_buf_append(&b, q, 1);
            }
        }
        const char *r = firn_arena_strdup(x->a, b.data ? b.data : "");
        firn_buf_free(&b);
        return vstr(r ? r : "");
    }
    if (strcmp(fn, "stripPort") == 0 || strcmp(fn, "stripDomain") == 0) {
        NEED(1);
        const char *s = as_string(x, &args[0]);
        char *r = firn_arena_strdup(x->a, s);
        if (fn[5] == 'P') {
            /* net.SplitHostPort: [v6]:port or host:port with one colon */
            char *colon = strrchr(r, ':');
            if (r[0] == '[') {
                char *close = strchr(r, ']');
                if (close && close[1] == ':') {
                    *close = 0;
                    return vstr(r + 1);
                }
            } else if (colon && strchr(r, ':') == colon) {
                *colon = 0;
            }
            return vstr(r);
        }
        /* stripDomain: keep the first label of a host name, the port too */
        if (strchr(r, '[') || (strchr(r, ':') && strchr(r, ':') != strrchr(r, ':')))
            return vstr(r);
        char *port = strrchr(r, ':');
        char *dot = strchr(r, '.');
        bool ip = true;
        for (char *q = r; *q && q != port; q++)
            ip &= isdigit((unsigned char)*q) || *q == '.';
        if (ip || !dot || (port && dot > port))
            return vstr(r);
        char *out = firn_xasprintf("%.*s%s", (int)(dot - r), r, port ? port : "");
        r = firn_arena_strdup(x->a, out);
        free(out);
        return vstr(r);
    }
    if (strcmp(fn, "graphLink") == 0 || strcmp(fn, "tableLink") == 0) {
        NEED(1);
        const char *s = as_string(x, &args[0]);
        firn_buf b = {0};
        firn_buf_puts(&b, "/graph?g0.expr=");
        for (const char *q = s; *q; q++) {
            unsigned char c = (unsigned char)*q;
            if (isalnum(c) || strchr("-_.~", c))
                firn_buf_append(&b, q, 1);
            else if (c == ' ')
                firn_buf_puts(&b, "+");
            else
                firn_buf_printf(&b, "%%%02X", c);
        }
        firn_buf_printf(&b, "&g0.tab=%d", fn[0] == 'g' ? 0 : 1);
        const char *r = firn_arena_strdup(x->a, b.data ? b.data : "");
        firn_buf_free(&b);
        return vstr(r ? r : "");
    }
    if (strcmp(fn, "externalURL") == 0 || strcmp(fn, "pathPrefix") == 0) {
        NEED(0);
        const char *u = x->d->external_url ? x->d->external_url : "";
        if (fn[0] == 'e')
            return vstr(u);
        const char *sl = strstr(u, "://");
        const char *path = sl ? strchr(sl + 3, '/') : NULL;
        return vstr(path ? path : "");
    }
    if (strcmp(fn, "parseDuration") == 0) {
        NEED(1);
        int64_t ms;
        firn_err e = {0};
        const char *s = as_string(x, &args[0]);
        if (firn_duration_parse(s, &ms, &e) < 0) {
            xerr(x, "error calling parseDuration: not a valid duration string: \"%s\"", s);
            return vstr("");
        }
        return vfloat((double)ms / 1000.0);
    }
    if (strcmp(fn, "query") == 0) {
        NEED(1);
        const char *q = as_string(x, &args[0]);
        rules_sample *out = NULL;
        size_t count = 0;
        firn_err e = {0};
        if (!x->d->query) {
            xerr(x, "error calling query: no query engine here");
            return vstr("");
        }
        if (x->d->query(x->d->query_ctx, q, x->a, &out, &count, &e) < 0) {
            xerr(x, "error calling query: %s", e.msg);
            return vstr("");
        }
        return (struct value){.k = V_SAMPLES, .smp = out, .n = count};
    }
    if (strcmp(fn, "first") == 0) {
        NEED(1);
        if (args[0].k != V_SAMPLES) {
            xerr(x, "error calling first: wrong type %s", type_name(&args[0]));
            return vstr("");
        }
        if (args[0].n == 0) {
            xerr(x, "error calling first: first() called on vector with no elements");
            return vstr("");
        }
        return (struct value){.k = V_SAMPLE, .smp = args[0].smp};
    }
    if (strcmp(fn, "label") == 0 || strcmp(fn, "value") == 0 || strcmp(fn, "strvalue") == 0) {
        const struct value *sv = &args[n ? n - 1 : 0];
        NEED(fn[0] == 'l' ? 2 : 1);
        if (sv->k != V_SAMPLE) {
            xerr(x, "error calling %s: wrong type %s", fn, type_name(sv));
            return vstr("");
        }
        if (fn[0] == 'v')
            return vfloat(sv->smp->value);
        const char *lv = firn_labels_get(sv->smp->labels, sv->smp->n_labels,
                                         fn[0] == 'l' ? as_string(x, &args[0]) : "__value__");
        return vstr(lv ? lv : "");
    }
    if (strcmp(fn, "sortByLabel") == 0) {
        NEED(2);
        if (args[1].k != V_SAMPLES) {
            xerr(x, "error calling sortByLabel: wrong type %s", type_name(&args[1]));
            return vstr("");
        }
        rules_sample *c = firn_arena_alloc(x->a, (args[1].n + 1) * sizeof *c);
        if (!c)
            return vstr("");
        if (args[1].n)
            memcpy(c, args[1].smp, args[1].n * sizeof *c);
        const char *key = as_string(x, &args[0]);
        /* stable insertion sort by the label's value */
        for (size_t i = 1; i < args[1].n; i++)
            for (size_t j = i; j > 0; j--) {
                const char *a = firn_labels_get(c[j - 1].labels, c[j - 1].n_labels, key);
                const char *b = firn_labels_get(c[j].labels, c[j].n_labels, key);
                if (strcmp(a ? a : "", b ? b : "") <= 0)
                    break;
                rules_sample t = c[j];
                c[j] = c[j - 1];
                c[j - 1] = t;
            }
        return (struct value){.k = V_SAMPLES, .smp = c, .n = args[1].n};
    }
    xerr(x, "function \"%s\" not supported", fn);
    return vstr("");
#undef NEED
}

/* ---- execution ---------------------------------------------------------------- */

static bool lookup_var(struct exec *x, const char *name, struct value *out)
{
    for (size_t i = x->n_vars; i-- > 0;)
        if (strcmp(x->vars[i].name, name) == 0) {
            *out = x->vars[i].v;
            return true;
        }
    xerr(x, "undefined variable: %s", name);
    return false;
}

static void set_var(struct exec *x, const char *name, struct value v, bool declare)
{
    if (!declare)
        for (size_t i = x->n_vars; i-- > 0;)
            if (strcmp(x->vars[i].name, name) == 0) {
                x->vars[i].v = v;
                return;
            }
    if (x->n_vars >= sizeof x->vars / sizeof *x->vars) {
        xerr(x, "too many variables");
        return;
    }
    x->vars[x->n_vars].name = name;
    x->vars[x->n_vars].v = v;
    x->n_vars++;
}

static struct value field(struct exec *x, struct value v, const char *name)
{
    if (v.k == V_MAP) {
        const char *s = firn_labels_get(v.m, v.n, name);
        return vstr(s ? s : "");
    }
    if (v.k == V_DATA) {
        if (strcmp(name, "Labels") == 0)
            return (struct value){.k = V_MAP, .m = x->d->labels, .n = x->d->n_labels};
        if (strcmp(name, "ExternalLabels") == 0)
            return (struct value){.k = V_MAP, .m = x->d->external_labels,
                                  .n = x->d->n_external_labels};
        if (strcmp(name, "ExternalURL") == 0)
            return vstr(x->d->external_url ? x->d->external_url : "");
        if (strcmp(name, "Value") == 0)
            return vfloat(x->d->value);
    }
    if (v.k == V_SAMPLE && strcmp(name, "Labels") == 0)
        return (struct value){.k = V_MAP, .m = v.smp->labels, .n = v.smp->n_labels};
    if (v.k == V_SAMPLE && strcmp(name, "Value") == 0)
        return vfloat(v.smp->value);
    if (v.k == V_TIME && strcmp(name, "Unix") == 0)
        return (struct value){.k = V_INT, .i = go_int64(floor(v.f))};
    if (v.k == V_NIL)
        xerr(x, "nil pointer evaluating interface {}.%s", name);
    else
        xerr(x, "can't evaluate field %s in type %s", name, type_name(&v));
    return vstr("");
}

static struct value eval_pipe(struct exec *x, const struct pipe *p, struct value dot);

static struct value eval_arg(struct exec *x, const struct arg *a, struct value dot)
{
    struct value v;
    switch (a->k) {
    case A_DOT: v = dot; break;
    case A_NIL: v = (struct value){.k = V_NIL}; break;
    case A_BOOL: v = (struct value){.k = V_BOOL, .b = a->b}; break;
    case A_NUMBER:
        v = a->is_int ? (struct value){.k = V_INT, .i = a->inum} : vfloat(a->num);
        break;
    case A_STRING: v = vstr(a->str); break;
    case A_FIELD: v = dot; break;
    case A_VAR:
        if (!lookup_var(x, a->name, &v))
            return vstr("");
        break;
    case A_PIPE: v = eval_pipe(x, a->pipe, dot); break;
    default: v = vstr(""); break;
    }
    for (size_t i = 0; i < a->n_fields && !x->failed; i++)
        v = field(x, v, a->fields[i]);
    return v;
}

static struct value eval_cmd(struct exec *x, const struct cmd *c, struct value dot,
                             const struct value *prev)
{
    const struct arg *first = &c->args[0];
    if (first->k != A_FUNC) {
        if (c->n > 1 || prev) {
            xerr(x, "can't give argument to non-function %s",
                 first->k == A_VAR ? first->name : ".");
            return vstr("");
        }
        return eval_arg(x, first, dot);
    }
    size_t n = c->n - 1 + (prev ? 1 : 0);
    struct value *args = firn_arena_alloc(x->a, (n + 1) * sizeof *args);
    bool lazy = strcmp(first->name, "and") == 0 || strcmp(first->name, "or") == 0;
    size_t k = 0;
    for (size_t i = 1; i < c->n && !x->failed; i++) {
        args[k++] = eval_arg(x, &c->args[i], dot);
        /* and/or stop at the first deciding argument, as Go 1.18+ */
        if (lazy && truth(&args[k - 1]) == (first->name[0] == 'o') && !prev)
            return args[k - 1];
    }
    if (prev)
        args[k++] = *prev;
    if (x->failed)
        return vstr("");
    return call(x, first->name, args, k);
}

static struct value eval_pipe(struct exec *x, const struct pipe *p, struct value dot)
{
    struct value v = {.k = V_NIL};
    for (size_t i = 0; i < p->n && !x->failed; i++)
        v = eval_cmd(x, &p->cmds[i], dot, i ? &v : NULL);
    for (size_t i = 0; i < p->n_vars && !x->failed; i++)
        set_var(x, p->vars[i], v, p->declare);
    return v;
}

static void run_list(struct exec *x, const struct node *n, struct value dot);

/* One element of a {{range}}: its variables declared ($v, or $k and $v),
 * the body run with elem as dot, the variables dropped again.  Whether a
 * {{break}} ends the range. */
static bool range_element(struct exec *x, const struct node *n, struct value key,
                          struct value elem)
{
    size_t inner = x->n_vars;
    if (n->pipe->n_vars == 1)
        set_var(x, n->pipe->vars[0], elem, true);
    else if (n->pipe->n_vars == 2) {
        set_var(x, n->pipe->vars[0], key, true);
        set_var(x, n->pipe->vars[1], elem, true);
    }
    run_list(x, n->list, elem);
    x->n_vars = inner;
    bool stop = x->brk == 1;
    x->brk = 0;
    return stop;
}

static void run_node(struct exec *x, const struct node *n, struct value dot)
{
    if (++x->steps > MAX_STEPS) {
        xerr(x, "template runs too long");
        return;
    }
    switch (n->k) {
    case N_TEXT:
        firn_buf_append(&x->out, n->text, n->len);
        break;
    case N_ACTION: {
        struct value v = eval_pipe(x, n->pipe, dot);
        if (!x->failed && n->pipe->n_vars == 0)
            print_value(x, &x->out, &v);
        break;
    }
    case N_IF: case N_WITH: {
        size_t mark = x->n_vars;
        struct value v = eval_pipe(x, n->pipe, dot);
        if (x->failed)
            return;
        if (truth(&v))
            run_list(x, n->list, n->k == N_WITH ? v : dot);
        else if (n->else_list)
            run_list(x, n->else_list, dot);
        x->n_vars = mark;
        break;
    }
    case N_RANGE: {
        size_t mark = x->n_vars;
        /* the pipeline's value without its declarations: they are per element */
        struct pipe bare = *n->pipe;
        bare.n_vars = 0;
        struct value v = eval_pipe(x, &bare, dot);
        if (x->failed)
            return;
        size_t count = 0;
        if (v.k == V_MAP) {
            firn_label *s = firn_arena_alloc(x->a, (v.n + 1) * sizeof *s);
            if (v.n)
                memcpy(s, v.m, v.n * sizeof *s);
            firn_sort(s, v.n, sizeof *s, cmp_label_name);
            for (size_t i = 0; i < v.n && !x->failed; i++) {
                count++;
                if (range_element(x, n, vstr(s[i].name), vstr(s[i].value)))
                    break;
            }
        } else if (v.k == V_SAMPLES) {
            for (size_t i = 0; i < v.n && !x->failed; i++) {
                count++;
                if (range_element(x, n, (struct value){.k = V_INT, .i = (int64_t)i},
                                  (struct value){.k = V_SAMPLE, .smp = &v.smp[i]}))
                    break;
            }
        } else if (v.k == V_INT) {
            for (int64_t i = 0; i < v.i && !x->failed; i++) {
                struct value elem = {.k = V_INT, .i = i};
                size_t inner = x->n_vars;
                if (n->pipe->n_vars >= 1)
                    set_var(x, n->pipe->vars[0], elem, true);
                run_list(x, n->list, elem);
                x->n_vars = inner;
                count++;
                if (x->brk == 1) {
                    x->brk = 0;
                    break;
                }
                x->brk = 0;
            }
        } else if (v.k != V_NIL) {
            xerr(x, "range can't iterate over %s", as_string(x, &v));
            return;
        }
        if (!count && n->else_list)
            run_list(x, n->else_list, dot);
        x->n_vars = mark;
        break;
    }
    case N_BREAK: x->brk = 1; break;
    case N_CONTINUE: x->brk = 2; break;
    }
    if (x->out.len > MAX_OUTPUT)
        xerr(x, "template output over %u bytes", MAX_OUTPUT);
}

static void run_list(struct exec *x, const struct node *n, struct value dot)
{
    for (; n && !x->failed && !x->brk; n = n->next)
        run_node(x, n, dot);
}

char *rules_template_expand(const rules_template *t, const rules_template_data *d)
{
    struct exec x = {.t = t, .d = d, .a = firn_arena_new(0)};
    struct value root = {.k = V_DATA};
    set_var(&x, "$", root, true);
    run_list(&x, t->root, root);
    char *out;
    if (x.failed) {
        firn_buf_free(&x.out);
        out = firn_xasprintf("<error expanding template: %s>", x.err);
    } else {
        out = firn_xstrdup(x.out.data ? x.out.data : "");   /* x.out has no cap */
    }
    firn_buf_free(&x.out);
    firn_arena_free(x.a);
    return out;
}

char *rules_template_expand_text(const char *name, const char *text,
                                 const rules_template_data *d)
{
    firn_err err = {0};
    rules_template *t = rules_template_parse(name, text, &err);
    if (!t)
        return firn_xasprintf("<error expanding template: %s>", err.msg);
    char *out = rules_template_expand(t, d);
    rules_template_free(t);
    return out;
}
