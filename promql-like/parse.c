/* parse.c -- query text to AST: PromQL's lexer and grammar for the subset
 * pql.h describes.
 *
 * The lexer follows Prometheus's promql/parser/lex.go: it knows whether it
 * is inside braces, where only label names, matching operators, strings,
 * commas and comments may appear, so a keyword there is a plain label name
 * ({on="x"}, {NaN!="a"}).  Keywords are identifiers the parser recognizes by
 * position (case-insensitively, as PromQL), which is how `by` or `offset` can
 * still name a metric.  Tokens are lexed on demand, one ahead at most.
 *
 * The parser is recursive descent with precedence climbing for the binary
 * operators (* / over + - over comparisons, all left-associative; unary
 * minus binds tighter than all of them).  A second pass checks types as
 * Prometheus's checkAST does, so a syntax error anywhere wins over a type
 * error, and the messages are Prometheus's.
 *
 * Errors start with the 1-based line and byte column of the offending token
 * ("1:17: unexpected ..."), as Prometheus prints its ParseErr.
 *
 * Limits: PQL_QUERY_MAX bytes of text, PQL_DEPTH_MAX levels of parser
 * recursion and of AST height, so neither the parser nor whatever walks the
 * tree afterwards (check, eval, format, free) can run out of stack.
 *
 * Memory: nodes and strings live in the query's arena; only firn_matchers
 * own heap memory.  Every selector is put on a list as soon as it holds a
 * matcher, so that on an error their matchers are destroyed before the arena
 * is freed.
 */
#include "promql-like/pql.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


#define SHOW_MAX 64 /* bytes of a token shown in an error */

typedef enum tok_type {
    T_EOF,
    T_ERROR,
    T_NUMBER,
    T_STRING,
    T_DURATION,
    T_IDENT,
    T_LBRACE,
    T_RBRACE,
    T_LPAREN,
    T_RPAREN,
    T_LBRACKET,
    T_RBRACKET,
    T_COMMA,
    T_ASSIGN,    /* = */
    T_EQLC,      /* == */
    T_NEQ,       /* != */
    T_LSS,
    T_LTE,
    T_GTR,
    T_GTE,
    T_ADD,
    T_SUB,
    T_MUL,
    T_DIV,
    T_POW,       /* lexed to say it is not supported */
    T_MOD,
    T_EQL_REGEX, /* =~ */
    T_NEQ_REGEX, /* !~ */
    T_AT,
} tok_type;

typedef struct token {
    tok_type type;
    size_t pos, end;       /* the token's bytes in the text */
    int line, col;
    double number;         /* T_NUMBER */
    int64_t ms;            /* T_DURATION */
    const char *str;       /* T_STRING: the decoded value, in the arena */
} token;

/* A node and what only the parser needs of it.  The pql_expr comes first,
 * so the parser's pql_expr pointers are node pointers. */
typedef struct node {
    pql_expr expr;
    int height;             /* 1 for a leaf */
    int op_line, op_col;    /* binary: position of the operator */
    bool has_offset;        /* selector: offset given (possibly 0) */
    bool unary_plus;        /* written with a unary "+" (which is dropped) */
    struct node *next_selector;
} node;

typedef struct parser {
    const char *text;
    size_t len;
    size_t pos;             /* lexer position */
    int line;
    size_t line_start;      /* offset of the current line's first byte */
    bool in_braces;
    token tok;              /* the current token */
    token ahead;            /* the next one, when have_ahead */
    bool have_ahead;
    int depth;              /* parse_unary recursion */
    bool failed;
    firn_arena *arena;
    node *selectors;        /* every selector holding matchers */
    firn_err *err;
} parser;

/* ---- errors ------------------------------------------------------------------ */

/* Records the first error only: later ones are consequences. */
__attribute__((format(printf, 4, 5))) static int fail_at(parser *p, int line, int col,
                                                         const char *fmt, ...)
{
    if (p->failed)
        return -1;
    char msg[FIRN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->failed = true;
    firn_errf(p->err, FIRN_EINVAL, "%d:%d: %s", line, col, msg);
    return -1;
}

/* s[0..len) Go-quoted into buf (of SHOW_BUF bytes), cut at SHOW_MAX bytes. */
#define SHOW_BUF (SHOW_MAX * 10 + 8)
static const char *show(char *buf, const char *s, size_t len)
{
    bool cut = len > SHOW_MAX;
    size_t n = firn_go_quote(buf, s, cut ? SHOW_MAX : len);
    if (cut) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* How Prometheus names a token in "unexpected ...": `"}"`, `identifier
 * "foo"`, `string "\"ab\""`, `end of input`. */
static const char *tok_desc(const parser *p, const token *t, char *buf, size_t size)
{
    char shown[SHOW_BUF];
    const char *text = p->text + t->pos;
    size_t len = t->end - t->pos;
    switch (t->type) {
    case T_EOF:
        snprintf(buf, size, "end of input");
        return buf;
    case T_IDENT:
        snprintf(buf, size, "identifier %s", show(shown, text, len));
        return buf;
    case T_NUMBER:
        snprintf(buf, size, "number %s", show(shown, text, len));
        return buf;
    case T_DURATION:
        snprintf(buf, size, "duration %s", show(shown, text, len));
        return buf;
    case T_STRING:
        snprintf(buf, size, "string %s", show(shown, text, len));
        return buf;
    default:
        snprintf(buf, size, "%s", show(shown, text, len));
        return buf;
    }
}

#define DESC_BUF (SHOW_BUF + 32)

/* "unexpected X[ in WHERE][, expected WHAT]" at the current token. */
static int unexpected(parser *p, const char *where, const char *expected)
{
    char desc[DESC_BUF];
    tok_desc(p, &p->tok, desc, sizeof desc);
    return fail_at(p, p->tok.line, p->tok.col, "unexpected %s%s%s%s%s", desc,
                   where ? " in " : "", where ? where : "", expected ? ", expected " : "",
                   expected ? expected : "");
}

/* ---- the lexer ------------------------------------------------------------------ */

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(int c)
{
    return is_alpha(c) || is_digit(c);
}

static bool is_hex(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int hex_value(int c)
{
    if (is_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 16;
}

static int peek_byte(const parser *p, size_t at)
{
    return at < p->len ? (unsigned char)p->text[at] : -1;
}

/* Length of the valid UTF-8 sequence at text[at], 0 when invalid. */
static size_t utf8_len_at(const parser *p, size_t at)
{
    unsigned char c = (unsigned char)p->text[at];
    size_t n = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (n == 0 || at + n > p->len || !firn_utf8_valid(p->text + at, n))
        return 0;
    return n;
}

/* The rune of a valid sequence of n bytes. */
static uint32_t rune_of(const unsigned char *s, size_t n)
{
    if (n == 1)
        return s[0];
    uint32_t r = s[0] & (0xff >> (n + 1));
    for (size_t i = 1; i < n; i++)
        r = (r << 6) | (s[i] & 0x3f);
    return r;
}

/* The character at text[at] as Go's %q writes a rune: 'x', '\n', '\x01',
 * '台'; an invalid byte is U+FFFD as Go decodes it. */
static const char *show_char(const parser *p, size_t at, char *buf, size_t size)
{
    if (at >= p->len) {
        snprintf(buf, size, "EOF");
        return buf;
    }
    unsigned char c = (unsigned char)p->text[at];
    size_t n = utf8_len_at(p, at);
    if (n == 0)
        snprintf(buf, size, "'\xef\xbf\xbd'");
    else if (n > 1)
        snprintf(buf, size, "'%.*s'", (int)n, p->text + at);
    else if (c == '\'' || c == '\\')
        snprintf(buf, size, "'\\%c'", c);
    else if (c >= 7 && c <= 13)
        snprintf(buf, size, "'\\%c'", "abtnvfr"[c - 7]);
    else if (c < 0x20 || c == 0x7f)
        snprintf(buf, size, "'\\x%02x'", c);
    else
        snprintf(buf, size, "'%c'", c);
    return buf;
}

/* A rune as Go's %#U: "U+002E '.'", or "U+000A" when not printable. */
static const char *show_rune_u(uint32_t r, const char *bytes, size_t n, char *buf, size_t size)
{
    if (r < 0x20 || (r >= 0x7f && r <= 0xa0))
        snprintf(buf, size, "U+%04X", (unsigned)r);
    else
        snprintf(buf, size, "U+%04X '%.*s'", (unsigned)r, (int)n, bytes);
    return buf;
}

/* The lexer's errors name the token's first byte, as Prometheus's do. */
__attribute__((format(printf, 3, 4))) static void lex_fail(parser *p, token *t,
                                                          const char *fmt, ...)
{
    char msg[FIRN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->type = T_ERROR;
    fail_at(p, t->line, t->col, "%s", msg);
}

/* Decodes the escape sequence at text[*at] (just past the backslash) into
 * out; false (with the error set) when it is not one. */
static bool lex_escape(parser *p, token *t, size_t *at, int quote, char *out, size_t *o)
{
    char shown[64];
    int c = peek_byte(p, *at);
    if (c < 0) {
        lex_fail(p, t, "escape sequence not terminated");
        return false;
    }
    static const char simple[] = "abfnrtv\\";
    static const char value[] = "\a\b\f\n\r\t\v\\";
    const char *s = c ? strchr(simple, c) : NULL;
    if (s || c == quote) {
        out[(*o)++] = c == quote ? (char)quote : value[s - simple];
        (*at)++;
        return true;
    }
    int digits, base;
    uint32_t max;
    if (c >= '0' && c <= '7') {
        digits = 3, base = 8, max = 255;
    } else if (c == 'x') {
        digits = 2, base = 16, max = 255;
        (*at)++;
    } else if (c == 'u') {
        digits = 4, base = 16, max = 0x10ffff;
        (*at)++;
    } else if (c == 'U') {
        digits = 8, base = 16, max = 0x10ffff;
        (*at)++;
    } else {
        size_t n = utf8_len_at(p, *at);
        uint32_t r = n ? rune_of((const unsigned char *)p->text + *at, n) : 0xfffd;
        lex_fail(p, t, "unknown escape sequence %s",
                 show_rune_u(r, n ? p->text + *at : "\xef\xbf\xbd", n ? n : 3, shown,
                             sizeof shown));
        return false;
    }
    uint32_t x = 0;
    for (int i = 0; i < digits; i++) {
        int d = peek_byte(p, *at);
        int v = d < 0 ? 16 : hex_value(d);
        if (v >= base) {
            if (d < 0) {
                lex_fail(p, t, "escape sequence not terminated");
            } else {
                size_t n = utf8_len_at(p, *at);
                uint32_t r = n ? rune_of((const unsigned char *)p->text + *at, n) : 0xfffd;
                lex_fail(p, t, "illegal character %s in escape sequence",
                         show_rune_u(r, n ? p->text + *at : "\xef\xbf\xbd", n ? n : 3, shown,
                                     sizeof shown));
            }
            return false;
        }
        x = x * (uint32_t)base + (uint32_t)v;
        (*at)++;
    }
    if (x > max || (x >= 0xd800 && x < 0xe000)) {
        lex_fail(p, t, "escape sequence is an invalid Unicode code point");
        return false;
    }
    if (max == 255)   /* \nnn and \xNN are bytes, as in Go */
        out[(*o)++] = (char)x;
    else
        *o += firn_utf8_encode(x, out + *o);
    return true;
}

/* A string in "..." or '...' (Go escapes, no newline) or `...` (raw). */
static void lex_string(parser *p, token *t)
{
    int quote = (unsigned char)p->text[p->pos];
    bool raw = quote == '`';
    /* First find the end, so the decoded value needs no more room than the
     * token: no escape is shorter than what it stands for. */
    size_t end = p->pos + 1;
    while (end < p->len && p->text[end] != quote && (raw || p->text[end] != '\n'))
        end += (!raw && p->text[end] == '\\' && end + 1 < p->len) ? 2 : 1;
    char *out = firn_arena_alloc(p->arena, end - p->pos);
    size_t at = p->pos + 1, o = 0;
    while (at < end) {
        unsigned char c = (unsigned char)p->text[at];
        if (!raw && c == '\\') {
            at++;
            if (!lex_escape(p, t, &at, quote, out, &o))
                return;
            continue;
        }
        size_t n = utf8_len_at(p, at);
        if (n == 0) {
            lex_fail(p, t, "invalid UTF-8 rune");
            return;
        }
        memcpy(out + o, p->text + at, n);
        o += n;
        at += n;
    }
    if (end >= p->len || p->text[end] != quote) {
        lex_fail(p, t, raw ? "unterminated raw string" : "unterminated quoted string");
        return;
    }
    if (memchr(out, '\0', o)) {
        lex_fail(p, t, "strings must not contain the NUL character");
        return;
    }
    out[o] = '\0';
    for (size_t i = p->pos; i < end; i++)   /* raw strings may span lines */
        if (p->text[i] == '\n') {
            p->line++;
            p->line_start = i + 1;
        }
    p->pos = end + 1;
    t->type = T_STRING;
    t->str = out;
}

/* Prometheus's duration syntax, (\d+(ms|s|m|h|d|w|y))+; returns the end,
 * or `at` when there is none here. */
static size_t scan_duration(const parser *p, size_t at)
{
    size_t end = at;
    for (;;) {
        size_t i = end;
        while (is_digit(peek_byte(p, i)))
            i++;
        if (i == end)
            return end;
        int u = peek_byte(p, i);
        if (u == 'm' && peek_byte(p, i + 1) == 's')
            i += 2;
        else if (u == 's' || u == 'm' || u == 'h' || u == 'd' || u == 'w' || u == 'y')
            i += 1;
        else
            return end;
        end = i;
    }
}

/* Prometheus's number syntax: decimal with optional fraction and exponent,
 * ".5", "5.", or hex; returns the end. */
static size_t scan_number(const parser *p, size_t at)
{
    size_t i = at;
    if (peek_byte(p, i) == '0' && (peek_byte(p, i + 1) == 'x' || peek_byte(p, i + 1) == 'X')) {
        i += 2;
        while (is_hex(peek_byte(p, i)))
            i++;
        return i;
    }
    while (is_digit(peek_byte(p, i)))
        i++;
    if (peek_byte(p, i) == '.') {
        i++;
        while (is_digit(peek_byte(p, i)))
            i++;
    }
    if (peek_byte(p, i) == 'e' || peek_byte(p, i) == 'E') {
        i++;
        if (peek_byte(p, i) == '+' || peek_byte(p, i) == '-')
            i++;
        while (is_digit(peek_byte(p, i)))
            i++;
    }
    return i;
}

static void lex_number_or_duration(parser *p, token *t)
{
    char text[128], why[FIRN_ERR_MSG_MAX];
    size_t end = scan_number(p, p->pos);
    if (!is_alnum(peek_byte(p, end))) {
        size_t n = end - p->pos;
        char *copy = firn_arena_strndup(p->arena, p->text + p->pos, n), *stop;
        t->number = strtod(copy, &stop);
        if (*stop) {
            lex_fail(p, t, "bad number or duration syntax: \"%.*s\"", (int)(n > 64 ? 64 : n),
                     copy);
            return;
        }
        t->type = T_NUMBER;
        p->pos = end;
        return;
    }
    end = scan_duration(p, p->pos);
    if (end > p->pos && !is_alnum(peek_byte(p, end)) && peek_byte(p, end) != '.') {
        size_t n = end - p->pos;
        firn_err err = {0};
        if (n >= sizeof text) {
            lex_fail(p, t, "duration out of range: \"%.64s...\"", p->text + p->pos);
            return;
        }
        memcpy(text, p->text + p->pos, n);
        text[n] = '\0';
        if (firn_duration_parse(text, &t->ms, &err) < 0) {
            snprintf(why, sizeof why, "%s", err.msg);
            lex_fail(p, t, "%s", why);
            return;
        }
        t->type = T_DURATION;
        p->pos = end;
        return;
    }
    end = p->pos;
    while (is_alnum(peek_byte(p, end)) || peek_byte(p, end) == '.')
        end++;
    size_t n = end - p->pos;
    lex_fail(p, t, "bad number or duration syntax: \"%.*s\"", (int)(n > 64 ? 64 : n),
             p->text + p->pos);
}

static void lex_inside_braces(parser *p, token *t)
{
    char shown[32];
    int c = peek_byte(p, p->pos);
    if (is_alpha(c)) {
        while (is_alnum(peek_byte(p, p->pos)))
            p->pos++;
        t->type = T_IDENT;
        return;
    }
    switch (c) {
    case '"':
    case '\'':
    case '`':
        lex_string(p, t);
        return;
    case ',':
        p->pos++;
        t->type = T_COMMA;
        return;
    case '}':
        p->pos++;
        p->in_braces = false;
        t->type = T_RBRACE;
        return;
    case '=':
        p->pos++;
        t->type = T_ASSIGN;
        if (peek_byte(p, p->pos) == '~') {
            p->pos++;
            t->type = T_EQL_REGEX;
        }
        return;
    case '!':
        p->pos++;
        if (peek_byte(p, p->pos) == '=' || peek_byte(p, p->pos) == '~') {
            t->type = peek_byte(p, p->pos) == '=' ? T_NEQ : T_NEQ_REGEX;
            p->pos++;
            return;
        }
        lex_fail(p, t, "unexpected character after '!' inside braces: %s",
                 show_char(p, p->pos, shown, sizeof shown));
        return;
    case '{':
        lex_fail(p, t, "unexpected left brace '{'");
        return;
    default:
        lex_fail(p, t, "unexpected character inside braces: %s",
                 show_char(p, p->pos, shown, sizeof shown));
        return;
    }
}

static void lex_statement(parser *p, token *t)
{
    char shown[32];
    int c = peek_byte(p, p->pos);
    int next = peek_byte(p, p->pos + 1);
    if (is_alpha(c) || c == ':') {
        size_t end = p->pos;
        while (is_alnum(peek_byte(p, end)) || peek_byte(p, end) == ':')
            end++;
        size_t n = end - p->pos;
        t->type = T_IDENT;
        if (n == 3 && (strncasecmp(p->text + p->pos, "inf", 3) == 0 ||
                       strncasecmp(p->text + p->pos, "nan", 3) == 0)) {
            t->type = T_NUMBER;
            t->number = (p->text[p->pos] | 0x20) == 'i' ? INFINITY : NAN;
        }
        p->pos = end;
        return;
    }
    if (is_digit(c) || (c == '.' && is_digit(next))) {
        lex_number_or_duration(p, t);
        return;
    }
    tok_type type;
    size_t n = 1;
    switch (c) {
    case '"':
    case '\'':
    case '`':
        lex_string(p, t);
        return;
    case '{':
        p->in_braces = true;
        type = T_LBRACE;
        break;
    case '(': type = T_LPAREN; break;
    case ')': type = T_RPAREN; break;
    case '[': type = T_LBRACKET; break;
    case ']': type = T_RBRACKET; break;
    case ',': type = T_COMMA; break;
    case '+': type = T_ADD; break;
    case '-': type = T_SUB; break;
    case '*': type = T_MUL; break;
    case '/': type = T_DIV; break;
    case '^': type = T_POW; break;
    case '%': type = T_MOD; break;
    case '@': type = T_AT; break;
    case '=':
        type = next == '=' ? T_EQLC : T_ASSIGN;
        n = next == '=' ? 2 : 1;
        break;
    case '!':
        if (next != '=') {
            lex_fail(p, t, "unexpected character after '!': %s",
                     show_char(p, p->pos + 1, shown, sizeof shown));
            return;
        }
        type = T_NEQ;
        n = 2;
        break;
    case '<':
        type = next == '=' ? T_LTE : T_LSS;
        n = next == '=' ? 2 : 1;
        break;
    case '>':
        type = next == '=' ? T_GTE : T_GTR;
        n = next == '=' ? 2 : 1;
        break;
    default:
        lex_fail(p, t, "unexpected character: %s", show_char(p, p->pos, shown, sizeof shown));
        return;
    }
    p->pos += n;
    t->type = type;
}

/* Lexes the next token into t.  On an error t->type is T_ERROR and the
 * parser's error is set. */
static void lex(parser *p, token *t)
{
    memset(t, 0, sizeof *t);
    for (;;) {
        int c = peek_byte(p, p->pos);
        if (c == ' ' || c == '\t' || c == '\r') {
            p->pos++;
        } else if (c == '\n') {
            p->pos++;
            p->line++;
            p->line_start = p->pos;
        } else if (c == '#') {
            while (p->pos < p->len && p->text[p->pos] != '\n')
                p->pos++;
        } else {
            break;
        }
    }
    t->pos = p->pos;
    t->line = p->line;
    t->col = (int)(p->pos - p->line_start) + 1;
    if (p->failed) {
        t->type = T_ERROR;
    } else if (p->pos >= p->len) {
        if (p->in_braces)
            lex_fail(p, t, "unexpected end of input inside braces");
        else
            t->type = T_EOF;
    } else if (p->in_braces) {
        lex_inside_braces(p, t);
    } else {
        lex_statement(p, t);
    }
    t->end = p->pos > t->pos ? p->pos : t->pos;
}

/* Moves to the next token; -1 on a lexer error. */
static int advance(parser *p)
{
    if (p->have_ahead) {
        p->tok = p->ahead;
        p->have_ahead = false;
    } else {
        lex(p, &p->tok);
    }
    return p->tok.type == T_ERROR ? -1 : 0;
}

/* The token after the current one; NULL on a lexer error. */
static const token *lookahead(parser *p)
{
    if (!p->have_ahead) {
        lex(p, &p->ahead);
        p->have_ahead = true;
    }
    return p->ahead.type == T_ERROR ? NULL : &p->ahead;
}

/* Whether t is the identifier word (case-insensitive, as PromQL keywords). */
static bool is_word(const parser *p, const token *t, const char *word)
{
    size_t n = strlen(word);
    return t->type == T_IDENT && t->end - t->pos == n &&
           strncasecmp(p->text + t->pos, word, n) == 0;
}

/* ---- building nodes ------------------------------------------------------------ */

/* Allocations below are in the parser's arena, sized by a query of at most
 * PQL_QUERY_MAX bytes: they never answer NULL (model/alloc.h). */

static pql_expr *new_node(parser *p, pql_kind kind, int line, int col)
{
    node *n = firn_arena_calloc(p->arena, 1, sizeof *n);
    n->expr.kind = kind;
    n->expr.line = line;
    n->expr.col = col;
    n->height = 1;
    return &n->expr;
}

static node *node_of(pql_expr *e)
{
    return (node *)e;
}

static int height_of(const pql_expr *e)
{
    return e ? ((const node *)e)->height : 0;
}

/* Sets e's height from its children's; fails past PQL_DEPTH_MAX. */
static int set_height(parser *p, pql_expr *e, const pql_expr *a, const pql_expr *b)
{
    int h = height_of(a) > height_of(b) ? height_of(a) : height_of(b);
    node_of(e)->height = h + 1;
    if (h + 1 > PQL_DEPTH_MAX)
        return fail_at(p, e->line, e->col, "expression nested too deeply (more than %d levels)",
                       PQL_DEPTH_MAX);
    return 0;
}

/* A growable array of pointers in the arena. */
typedef struct ptr_vec {
    void **items;
    size_t n, cap;
} ptr_vec;

static void vec_push(parser *p, ptr_vec *v, void *item)
{
    v->items = firn_arena_grow(p->arena, v->items, v->n, &v->cap, sizeof *v->items, 4);
    v->items[v->n++] = item;
}

static char *token_text(parser *p, const token *t)
{
    return firn_arena_strndup(p->arena, p->text + t->pos, t->end - t->pos);
}

/* ---- selectors --------------------------------------------------------------- */

typedef struct raw_matcher {
    firn_match_type type;
    const char *name;
    const char *value;
    int line, col;
} raw_matcher;

static void add_raw(parser *p, ptr_vec *v, firn_match_type type, const char *name,
                    const char *value, const token *at)
{
    raw_matcher *m = firn_arena_alloc(p->arena, sizeof *m);
    *m = (raw_matcher){type, name, value, at->line, at->col};
    vec_push(p, v, m);
}

/* The matchers between braces; the current token is "{". */
static int parse_matchers(parser *p, ptr_vec *raw)
{
    if (advance(p) < 0)
        return -1;
    for (;;) {
        if (p->tok.type == T_RBRACE)
            return advance(p);
        if (p->tok.type != T_IDENT && p->tok.type != T_STRING)
            return unexpected(p, "label matching", "identifier or \"}\"");
        token name = p->tok;
        const char *label = name.type == T_STRING ? name.str : token_text(p, &name);
        if (advance(p) < 0)
            return -1;
        firn_match_type type;
        switch (p->tok.type) {
        case T_ASSIGN: type = FIRN_MATCH_EQ; break;
        case T_NEQ: type = FIRN_MATCH_NE; break;
        case T_EQL_REGEX: type = FIRN_MATCH_RE; break;
        case T_NEQ_REGEX: type = FIRN_MATCH_NRE; break;
        default:
            if (name.type != T_STRING)
                return unexpected(p, "label matching", "label matching operator");
            /* {"metric.name"}: a quoted metric name (Prometheus 3). */
            add_raw(p, raw, FIRN_MATCH_EQ, FIRN_LABEL_NAME, label, &name);
            goto next;
        }
        if (name.type == T_STRING && !*label)
            return fail_at(p, name.line, name.col, "label name must not be empty");
        if (advance(p) < 0)
            return -1;
        if (p->tok.type != T_STRING)
            return unexpected(p, "label matching", "string");
        add_raw(p, raw, type, label, p->tok.str, &name);
        if (advance(p) < 0)
            return -1;
    next:
        if (p->tok.type == T_COMMA) {
            if (advance(p) < 0)
                return -1;
        } else if (p->tok.type != T_RBRACE) {
            return unexpected(p, "label matching", "\",\" or \"}\"");
        }
    }
}

/* A vector selector: `name`, `name{...}` or `{...}`; the current token is
 * the name (with_name) or "{". */
static pql_expr *parse_selector(parser *p, bool with_name)
{
    token start = p->tok;
    pql_expr *e = new_node(p, PQL_VECTOR_SELECTOR, start.line, start.col);
    ptr_vec raw = {0};
    if (with_name) {
        e->sel.name = token_text(p, &start);
        add_raw(p, &raw, FIRN_MATCH_EQ, FIRN_LABEL_NAME, e->sel.name, &start);
        if (advance(p) < 0)
            return NULL;
    }
    if (p->tok.type == T_LBRACE && parse_matchers(p, &raw) < 0)
        return NULL;
    char a[SHOW_BUF], b[SHOW_BUF];
    for (size_t i = 1; with_name && i < raw.n; i++) {
        const raw_matcher *m = raw.items[i];
        if (strcmp(m->name, FIRN_LABEL_NAME) == 0)
            return fail_at(p, start.line, start.col, "metric name must not be set twice: %s or %s",
                           show(a, e->sel.name, strlen(e->sel.name)),
                           show(b, m->value, strlen(m->value))),
                   NULL;
    }
    size_t n_filters = 0;
    for (size_t i = 0; i < raw.n; i++)
        n_filters += strcmp(((raw_matcher *)raw.items[i])->name, PQL_FUNCTION_LABEL) == 0;
    size_t n_matchers = raw.n - n_filters;
    e->sel.matchers = firn_arena_calloc(p->arena, n_matchers ? n_matchers : 1,
                                        sizeof *e->sel.matchers);
    e->sel.filters = firn_arena_calloc(p->arena, n_filters ? n_filters : 1,
                                       sizeof *e->sel.filters);
    /* On the list before the first matcher, so an error frees them all. */
    node_of(e)->next_selector = p->selectors;
    p->selectors = node_of(e);
    bool non_empty = false;
    for (size_t i = 0; i < raw.n; i++) {
        const raw_matcher *r = raw.items[i];
        bool filter = strcmp(r->name, PQL_FUNCTION_LABEL) == 0;
        firn_matcher *m = filter ? &e->sel.filters[e->sel.n_filters]
                                 : &e->sel.matchers[e->sel.n_matchers];
        firn_err err = {0};
        if (firn_matcher_init(m, r->type, r->name, r->value, &err) < 0)
            return fail_at(p, r->line, r->col, "%s", err.msg), NULL;
        if (filter)
            e->sel.n_filters++;
        else
            e->sel.n_matchers++;
        if (!firn_matcher_matches(m, ""))
            non_empty = true;
    }
    if (!non_empty)
        return fail_at(p, start.line, start.col,
                       "vector selector must contain at least one non-empty matcher"),
               NULL;
    return e;
}

/* A duration or a number of seconds (after "[" or "offset"), in ms. */
static int parse_duration(parser *p, const char *where, int64_t *ms)
{
    if (p->tok.type == T_DURATION) {
        *ms = p->tok.ms;
    } else if (p->tok.type == T_NUMBER) {
        double v = p->tok.number * 1000.0;
        if (!(v > -9.2e18 && v < 9.2e18))
            return fail_at(p, p->tok.line, p->tok.col, "duration out of range");
        *ms = (int64_t)(v < 0 ? v - 0.5 : v + 0.5);
    } else {
        return unexpected(p, where, "number or duration");
    }
    return 0;
}

/* selector[range]; the current token is "[". */
static int parse_range(parser *p, pql_expr *e)
{
    token bracket = p->tok;
    if (e->kind != PQL_VECTOR_SELECTOR)
        return fail_at(p, bracket.line, bracket.col, e->kind == PQL_MATRIX_SELECTOR
                       ? "subqueries are not supported"
                       : "ranges only allowed for vector selectors");
    if (node_of(e)->has_offset)
        return fail_at(p, bracket.line, bracket.col, "no offset modifiers allowed before range");
    if (advance(p) < 0)
        return -1;
    token d = p->tok;
    if (parse_duration(p, "range selector", &e->sel.range_ms) < 0)
        return -1;
    if (e->sel.range_ms <= 0)
        return fail_at(p, d.line, d.col, "duration must be greater than 0");
    if (advance(p) < 0)
        return -1;
    if (p->tok.type == T_IDENT && p->text[p->tok.pos] == ':')
        return fail_at(p, p->tok.line, p->tok.col, "subqueries are not supported");
    if (p->tok.type != T_RBRACKET)
        return unexpected(p, "range selector", "\"]\"");
    e->kind = PQL_MATRIX_SELECTOR;
    return advance(p);
}

/* offset [-]duration; the current token is "offset". */
static int parse_offset(parser *p, pql_expr *e)
{
    token kw = p->tok;
    if (e->kind != PQL_VECTOR_SELECTOR && e->kind != PQL_MATRIX_SELECTOR)
        return fail_at(p, kw.line, kw.col,
                       "offset modifier must be preceded by an instant vector selector or "
                       "range vector selector or a subquery");
    if (node_of(e)->has_offset)
        return fail_at(p, kw.line, kw.col, "offset may not be set multiple times");
    if (advance(p) < 0)
        return -1;
    bool negative = p->tok.type == T_SUB;
    if (negative && advance(p) < 0)
        return -1;
    int64_t ms = 0;   /* set by parse_duration; -O3 cannot tell */
    if (parse_duration(p, "offset", &ms) < 0)
        return -1;
    e->sel.offset_ms = negative ? -ms : ms;
    node_of(e)->has_offset = true;
    return advance(p);
}

/* ---- expressions ----------------------------------------------------------------- */

static pql_expr *parse_expr(parser *p, int min_precedence);

/* (label, ...) after by, without, on, ignoring; trailing comma allowed. */
static int parse_labels(parser *p, const char ***labels, size_t *n)
{
    if (p->tok.type != T_LPAREN)
        return unexpected(p, "grouping opts", "\"(\"");
    if (advance(p) < 0)
        return -1;
    ptr_vec v = {0};
    for (;;) {
        if (p->tok.type == T_RPAREN)
            break;
        const char *label;
        if (p->tok.type == T_IDENT && !memchr(p->text + p->tok.pos, ':', p->tok.end - p->tok.pos))
            label = token_text(p, &p->tok);
        else if (p->tok.type == T_STRING && p->tok.str[0])
            label = p->tok.str;
        else
            return unexpected(p, "grouping opts", "label");
        vec_push(p, &v, (void *)label);
        if (advance(p) < 0)
            return -1;
        if (p->tok.type == T_COMMA) {
            if (advance(p) < 0)
                return -1;
        } else if (p->tok.type != T_RPAREN) {
            return unexpected(p, "grouping opts", "\",\" or \")\"");
        }
    }
    *labels = (const char **)v.items;
    *n = v.n;
    return advance(p);
}

/* (expr, ...) of a call or an aggregation; trailing comma allowed. */
static int parse_args(parser *p, const char *where, ptr_vec *args)
{
    if (p->tok.type != T_LPAREN)
        return unexpected(p, where, "\"(\"");
    if (advance(p) < 0)
        return -1;
    while (p->tok.type != T_RPAREN) {
        pql_expr *arg = parse_expr(p, 0);
        if (!arg)
            return -1;
        vec_push(p, args, arg);
        if (p->tok.type == T_COMMA) {
            if (advance(p) < 0)
                return -1;
        } else if (p->tok.type != T_RPAREN) {
            return unexpected(p, where, "\",\" or \")\"");
        }
    }
    return advance(p);
}

static const struct {
    const char *name;
    pql_agg_op op;
} AGGREGATIONS[] = {
    {"sum", PQL_AGG_SUM}, {"avg", PQL_AGG_AVG}, {"min", PQL_AGG_MIN},
    {"max", PQL_AGG_MAX}, {"count", PQL_AGG_COUNT}, {"topk", PQL_AGG_TOPK},
    {"bottomk", PQL_AGG_BOTTOMK},
};

/* Each function with its argument count and type and its result type, as
 * Prometheus's parser.Functions declares them. */
static const struct {
    const char *name;
    pql_func fn;
    size_t n_args;
    pql_value_type arg, ret;
} FUNCTIONS[] = {
    {"rate", PQL_FN_RATE, 1, PQL_TYPE_MATRIX, PQL_TYPE_VECTOR},
    {"increase", PQL_FN_INCREASE, 1, PQL_TYPE_MATRIX, PQL_TYPE_VECTOR},
    {"sum_over_time", PQL_FN_SUM_OVER_TIME, 1, PQL_TYPE_MATRIX, PQL_TYPE_VECTOR},
    {"avg_over_time", PQL_FN_AVG_OVER_TIME, 1, PQL_TYPE_MATRIX, PQL_TYPE_VECTOR},
    {"max_over_time", PQL_FN_MAX_OVER_TIME, 1, PQL_TYPE_MATRIX, PQL_TYPE_VECTOR},
    {"min_over_time", PQL_FN_MIN_OVER_TIME, 1, PQL_TYPE_MATRIX, PQL_TYPE_VECTOR},
    {"count_over_time", PQL_FN_COUNT_OVER_TIME, 1, PQL_TYPE_MATRIX, PQL_TYPE_VECTOR},
    {"vector", PQL_FN_VECTOR, 1, PQL_TYPE_SCALAR, PQL_TYPE_VECTOR},
    {"time", PQL_FN_TIME, 0, PQL_TYPE_SCALAR, PQL_TYPE_SCALAR},
};

#define COUNT_OF(a) (sizeof(a) / sizeof *(a))

/* The aggregation named by the current token, or -1. */
static int aggregation_of(const parser *p)
{
    for (size_t i = 0; i < COUNT_OF(AGGREGATIONS); i++)
        if (is_word(p, &p->tok, AGGREGATIONS[i].name))
            return (int)i;
    return -1;
}

/* by (...) or without (...) of an aggregation; the current token is by
 * or without. */
static int parse_grouping(parser *p, pql_expr *e)
{
    e->agg.without = is_word(p, &p->tok, "without");
    if (advance(p) < 0)
        return -1;
    return parse_labels(p, &e->agg.labels, &e->agg.n_labels);
}

/* sum [by|without (...)] (expr) [by|without (...)]; topk and bottomk take
 * (k, expr). */
static pql_expr *parse_aggregate(parser *p, int which)
{
    pql_expr *e = new_node(p, PQL_AGGREGATE, p->tok.line, p->tok.col);
    if (advance(p) < 0)
        return NULL;
    e->agg.op = AGGREGATIONS[which].op;
    bool grouped = is_word(p, &p->tok, "by") || is_word(p, &p->tok, "without");
    if (grouped && parse_grouping(p, e) < 0)
        return NULL;
    ptr_vec args = {0};
    if (parse_args(p, "aggregation", &args) < 0)
        return NULL;
    size_t want = e->agg.op == PQL_AGG_TOPK || e->agg.op == PQL_AGG_BOTTOMK ? 2 : 1;
    if (args.n == 0)
        return fail_at(p, e->line, e->col, "no arguments for aggregate expression provided"),
               NULL;
    if (args.n != want)
        return fail_at(p, e->line, e->col,
                       "wrong number of arguments for aggregate expression provided, "
                       "expected %zu, got %zu",
                       want, args.n),
               NULL;
    e->agg.param = want == 2 ? args.items[0] : NULL;
    e->agg.expr = args.items[want - 1];
    if (!grouped && (is_word(p, &p->tok, "by") || is_word(p, &p->tok, "without")) &&
        parse_grouping(p, e) < 0)
        return NULL;
    return set_height(p, e, e->agg.param, e->agg.expr) < 0 ? NULL : e;
}

static pql_expr *parse_call(parser *p)
{
    token name = p->tok;
    size_t len = name.end - name.pos;
    int fn = -1;
    for (size_t i = 0; i < COUNT_OF(FUNCTIONS); i++)
        if (strlen(FUNCTIONS[i].name) == len &&
            strncmp(p->text + name.pos, FUNCTIONS[i].name, len) == 0)
            fn = (int)i;
    char shown[SHOW_BUF];
    if (fn < 0)
        return fail_at(p, name.line, name.col, "unknown function with name %s",
                       show(shown, p->text + name.pos, len)),
               NULL;
    pql_expr *e = new_node(p, PQL_CALL, name.line, name.col);
    if (advance(p) < 0)
        return NULL;
    e->call.fn = FUNCTIONS[fn].fn;
    ptr_vec args = {0};
    if (parse_args(p, "argument list", &args) < 0)
        return NULL;
    if (args.n != FUNCTIONS[fn].n_args)
        return fail_at(p, e->line, e->col, "expected %zu argument(s) in call to \"%s\", got %zu",
                       FUNCTIONS[fn].n_args, FUNCTIONS[fn].name, args.n),
               NULL;
    e->call.args = (pql_expr **)args.items;
    e->call.n_args = args.n;
    return set_height(p, e, args.n ? e->call.args[0] : NULL, NULL) < 0 ? NULL : e;
}

/* Keywords that can never start an expression (Prometheus lets the others,
 * such as by, offset and sum, name a metric). */
static bool is_reserved(const parser *p, const token *t)
{
    static const char *const words[] = {"bool", "on", "ignoring", "group_left", "group_right",
                                        "atan2"};
    for (size_t i = 0; i < COUNT_OF(words); i++)
        if (is_word(p, t, words[i]))
            return true;
    return false;
}

static pql_expr *parse_primary(parser *p)
{
    token t = p->tok;
    pql_expr *e;
    switch (t.type) {
    case T_NUMBER:
        e = new_node(p, PQL_NUMBER, t.line, t.col);
        e->number = t.number;
        return advance(p) < 0 ? NULL : e;
    case T_STRING:
        e = new_node(p, PQL_STRING, t.line, t.col);
        e->string = t.str;
        return advance(p) < 0 ? NULL : e;
    case T_LPAREN:
        e = new_node(p, PQL_PAREN, t.line, t.col);
        if (advance(p) < 0 || !(e->unary.expr = parse_expr(p, 0)))
            return NULL;
        if (p->tok.type != T_RPAREN)
            return unexpected(p, "paren expression", "\")\""), NULL;
        if (set_height(p, e, e->unary.expr, NULL) < 0 || advance(p) < 0)
            return NULL;
        return e;
    case T_LBRACE:
        return parse_selector(p, false);
    case T_IDENT: {
        const token *next = lookahead(p);
        if (!next)
            return NULL;
        int agg = aggregation_of(p);
        if (agg >= 0 && (next->type == T_LPAREN || is_word(p, next, "by") ||
                         is_word(p, next, "without")))
            return parse_aggregate(p, agg);
        if (next->type == T_LPAREN)
            return parse_call(p);
        if (is_reserved(p, &t))
            return unexpected(p, NULL, NULL), NULL;
        return parse_selector(p, true);
    }
    case T_AT:
        return fail_at(p, t.line, t.col, "the @ modifier is not supported"), NULL;
    default:
        return unexpected(p, NULL, NULL), NULL;
    }
}

/* Unary minus and plus, then a primary expression with its range and offset. */
static pql_expr *parse_unary(parser *p)
{
    token t = p->tok;
    if (++p->depth > PQL_DEPTH_MAX)
        return fail_at(p, t.line, t.col, "expression nested too deeply (more than %d levels)",
                       PQL_DEPTH_MAX),
               NULL;
    pql_expr *e;
    if (t.type == T_SUB || t.type == T_ADD) {
        if (advance(p) < 0)
            return NULL;
        pql_expr *operand = parse_unary(p);
        if (!operand)
            return NULL;
        if (operand->kind == PQL_NUMBER) {   /* folded, as Prometheus does */
            if (t.type == T_SUB)
                operand->number = -operand->number;
            operand->line = t.line;
            operand->col = t.col;
            e = operand;
        } else if (t.type == T_ADD) {
            node_of(operand)->unary_plus = true;
            e = operand;
        } else {
            e = new_node(p, PQL_UNARY_MINUS, t.line, t.col);
            e->unary.expr = operand;
            if (set_height(p, e, operand, NULL) < 0)
                return NULL;
        }
        p->depth--;
        return e;
    }
    if (!(e = parse_primary(p)))
        return NULL;
    for (;;) {
        if (p->tok.type == T_LBRACKET) {
            if (parse_range(p, e) < 0)
                return NULL;
        } else if (is_word(p, &p->tok, "offset")) {
            if (parse_offset(p, e) < 0)
                return NULL;
        } else if (p->tok.type == T_AT) {
            return fail_at(p, p->tok.line, p->tok.col, "the @ modifier is not supported"), NULL;
        } else {
            break;
        }
    }
    p->depth--;
    return e;
}

/* The binary operator of a token, and its precedence (0: none). */
static int binop_of(const token *t, pql_binop *op)
{
    switch (t->type) {
    case T_MUL: *op = PQL_OP_MUL; return 3;
    case T_DIV: *op = PQL_OP_DIV; return 3;
    case T_ADD: *op = PQL_OP_ADD; return 2;
    case T_SUB: *op = PQL_OP_SUB; return 2;
    case T_EQLC: *op = PQL_OP_EQ; return 1;
    case T_NEQ: *op = PQL_OP_NE; return 1;
    case T_GTR: *op = PQL_OP_GT; return 1;
    case T_LSS: *op = PQL_OP_LT; return 1;
    case T_GTE: *op = PQL_OP_GE; return 1;
    case T_LTE: *op = PQL_OP_LE; return 1;
    default: return 0;
    }
}

static bool is_comparison(pql_binop op)
{
    return op >= PQL_OP_EQ;
}

/* [bool] [on|ignoring (labels)] after a binary operator. */
static int parse_bin_modifiers(parser *p, pql_expr *e)
{
    if (is_word(p, &p->tok, "bool")) {
        e->bin.return_bool = true;
        if (advance(p) < 0)
            return -1;
    }
    if (is_word(p, &p->tok, "on") || is_word(p, &p->tok, "ignoring")) {
        e->bin.on = is_word(p, &p->tok, "on");
        e->bin.ignoring = !e->bin.on;
        if (advance(p) < 0 || parse_labels(p, &e->bin.labels, &e->bin.n_labels) < 0)
            return -1;
    }
    if (is_word(p, &p->tok, "group_left") || is_word(p, &p->tok, "group_right"))
        return fail_at(p, p->tok.line, p->tok.col,
                       "group_left and group_right modifiers are not supported");
    return 0;
}

static pql_expr *parse_expr(parser *p, int min_precedence)
{
    pql_expr *lhs = parse_unary(p);
    if (!lhs)
        return NULL;
    for (;;) {
        token t = p->tok;
        char shown[SHOW_BUF];
        if (t.type == T_POW || t.type == T_MOD || is_word(p, &t, "and") ||
            is_word(p, &t, "or") || is_word(p, &t, "unless") || is_word(p, &t, "atan2"))
            return fail_at(p, t.line, t.col, "operator %s is not supported",
                           show(shown, p->text + t.pos, t.end - t.pos)),
                   NULL;
        pql_binop op;
        int precedence = binop_of(&t, &op);
        if (precedence == 0 || precedence < min_precedence)
            return lhs;
        pql_expr *e = new_node(p, PQL_BINARY, lhs->line, lhs->col);
        e->bin.op = op;
        e->bin.lhs = lhs;
        node_of(e)->op_line = t.line;
        node_of(e)->op_col = t.col;
        if (advance(p) < 0 || parse_bin_modifiers(p, e) < 0)
            return NULL;
        /* precedence + 1: left-associative */
        if (!(e->bin.rhs = parse_expr(p, precedence + 1)))
            return NULL;
        if (set_height(p, e, lhs, e->bin.rhs) < 0)
            return NULL;
        lhs = e;
    }
}

/* ---- types ---------------------------------------------------------------------- */

/* As Prometheus's error messages name types. */
static const char *documented_type(pql_value_type t)
{
    switch (t) {
    case PQL_TYPE_SCALAR: return "scalar";
    case PQL_TYPE_VECTOR: return "instant vector";
    case PQL_TYPE_MATRIX: return "range vector";
    case PQL_TYPE_STRING: return "string";
    }
    return "?";
}

static int check(parser *p, pql_expr *e, pql_value_type *type);

static int expect_type(parser *p, pql_expr *e, pql_value_type want, const char *context)
{
    pql_value_type t;
    if (check(p, e, &t) < 0)
        return -1;
    if (t != want)
        return fail_at(p, e->line, e->col, "expected type %s in %s, got %s",
                       documented_type(want), context, documented_type(t));
    return 0;
}

/* Prometheus's checkAST: children first, then the node.  Recursion is
 * bounded by the tree's height. */
static int check(parser *p, pql_expr *e, pql_value_type *type)
{
    pql_value_type lt, rt;
    char context[64];
    switch (e->kind) {
    case PQL_NUMBER:
        *type = PQL_TYPE_SCALAR;
        break;
    case PQL_STRING:
        *type = PQL_TYPE_STRING;
        break;
    case PQL_VECTOR_SELECTOR:
        *type = PQL_TYPE_VECTOR;
        break;
    case PQL_MATRIX_SELECTOR:
        *type = PQL_TYPE_MATRIX;
        break;
    case PQL_PAREN:
        if (check(p, e->unary.expr, type) < 0)
            return -1;
        break;
    case PQL_UNARY_MINUS:
        if (check(p, e->unary.expr, type) < 0)
            return -1;
        if (*type != PQL_TYPE_SCALAR && *type != PQL_TYPE_VECTOR)
            return fail_at(p, e->line, e->col,
                           "unary expression only allowed on expressions of type scalar or "
                           "instant vector");
        break;
    case PQL_CALL:
    {
        size_t f = 0;
        while (f < COUNT_OF(FUNCTIONS) && FUNCTIONS[f].fn != e->call.fn)
            f++;
        assert(f < COUNT_OF(FUNCTIONS));
        snprintf(context, sizeof context, "call to function \"%s\"", pql_func_name(e->call.fn));
        for (size_t i = 0; i < e->call.n_args; i++)
            if (expect_type(p, e->call.args[i], FUNCTIONS[f].arg, context) < 0)
                return -1;
        *type = FUNCTIONS[f].ret;
        break;
    }
    case PQL_AGGREGATE:
        if (expect_type(p, e->agg.expr, PQL_TYPE_VECTOR, "aggregation expression") < 0)
            return -1;
        if (e->agg.param &&
            expect_type(p, e->agg.param, PQL_TYPE_SCALAR, "aggregation parameter") < 0)
            return -1;
        *type = PQL_TYPE_VECTOR;
        break;
    case PQL_BINARY: {
        if (check(p, e->bin.lhs, &lt) < 0 || check(p, e->bin.rhs, &rt) < 0)
            return -1;
        const node *n = node_of(e);
        if (e->bin.return_bool && !is_comparison(e->bin.op))
            return fail_at(p, n->op_line, n->op_col,
                           "bool modifier can only be used on comparison operators");
        if (is_comparison(e->bin.op) && !e->bin.return_bool && lt == PQL_TYPE_SCALAR &&
            rt == PQL_TYPE_SCALAR)
            return fail_at(p, n->op_line, n->op_col,
                           "comparisons between scalars must use BOOL modifier");
        if ((lt != PQL_TYPE_SCALAR && lt != PQL_TYPE_VECTOR) ||
            (rt != PQL_TYPE_SCALAR && rt != PQL_TYPE_VECTOR))
            return fail_at(p, e->line, e->col,
                           "binary expression must contain only scalar and instant vector types");
        if ((lt != PQL_TYPE_VECTOR || rt != PQL_TYPE_VECTOR) && (e->bin.on || e->bin.ignoring)) {
            if (e->bin.n_labels)
                return fail_at(p, e->line, e->col,
                               "vector matching only allowed between instant vectors");
            e->bin.on = e->bin.ignoring = false;
        }
        *type = lt == PQL_TYPE_SCALAR && rt == PQL_TYPE_SCALAR ? PQL_TYPE_SCALAR
                                                               : PQL_TYPE_VECTOR;
        break;
    }
    }
    if (node_of(e)->unary_plus && *type != PQL_TYPE_SCALAR && *type != PQL_TYPE_VECTOR)
        return fail_at(p, e->line, e->col,
                       "unary expression only allowed on expressions of type scalar or instant "
                       "vector");
    return 0;
}

/* ---- entry point ------------------------------------------------------------------ */

int pql_parse(const char *text, pql_query *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return firn_errf(err, FIRN_EINVAL, "no query");
    size_t len = strnlen(text, PQL_QUERY_MAX + 1);
    if (len > PQL_QUERY_MAX)
        return firn_errf(err, FIRN_ETOOBIG, "query is longer than %d bytes", PQL_QUERY_MAX);
    parser p = {.text = text, .len = len, .line = 1, .err = err};
    p.arena = firn_arena_new(0);
    pql_expr *root = NULL;
    pql_value_type type = PQL_TYPE_SCALAR;
    if (advance(&p) == 0 && (root = parse_expr(&p, 0)) != NULL) {
        if (p.tok.type != T_EOF)
            unexpected(&p, NULL, NULL);
        else
            check(&p, root, &type);
    }
    if (p.failed || !root) {
        for (node *n = p.selectors; n; n = n->next_selector) {
            for (size_t i = 0; i < n->expr.sel.n_matchers; i++)
                firn_matcher_destroy(&n->expr.sel.matchers[i]);
            for (size_t i = 0; i < n->expr.sel.n_filters; i++)
                firn_matcher_destroy(&n->expr.sel.filters[i]);
        }
        firn_arena_free(p.arena);
        return FIRN_EINVAL;
    }
    out->root = root;
    out->type = type;
    out->arena = p.arena;
    return 0;
}
