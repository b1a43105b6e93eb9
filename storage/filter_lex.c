/*
 * filter_lex.c: the tokenizer of the run search language (the grammar and
 * its rules are in filter.c's header comment). It owns the tokens: words,
 * prefix.key with bare or quoted keys, strings, numbers and durations,
 * parentheses, commas and comparison operators; the decoding of quoted text;
 * keyword matching; and the "filter: column N: ..." syntax errors, N the
 * 1-based byte offset where the offending token starts. It writes no SQL and
 * binds nothing. Shared with filter.c through filter_internal.h.
 *
 * Numbers are read with strtod/strtoll, which follow the C locale's decimal
 * point: the process must not switch LC_NUMERIC (trackd never does).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <stdlib.h>

#include "filter.h"
#include "filter_internal.h"

__attribute__((format(printf, 3, 4))) int filter_i_perr(struct parser *p, size_t pos,
                                                        const char *fmt, ...)
{
    struct cstate *c = p->c;
    va_list ap;
    int n;
    if (c->rc)
        return -1;
    c->rc = STORE_E_INVALID;
    c->err->code = STORE_E_INVALID;
    n = snprintf(c->err->msg, sizeof c->err->msg, "%s: column %zu: ", p->ctx, pos + 1);
    if (n < 0 || (size_t)n >= sizeof c->err->msg)
        return -1;
    va_start(ap, fmt);
    vsnprintf(c->err->msg + n, sizeof c->err->msg - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Writes a short printable rendering of token `t` into buf for messages. */
const char *filter_i_tok_desc(const struct parser *p, const struct token *t, char *buf, size_t size)
{
    size_t i, o = 0, max = 40;
    char open = '"';
    if (t->type == TK_EOF)
        return "end of input";
    if (t->type == TK_STRING)
        open = 0; /* already quoted */
    else if (t->type == TK_OP || t->type == TK_LPAREN || t->type == TK_RPAREN ||
             t->type == TK_COMMA)
        open = '\'';
    if (open)
        buf[o++] = open;
    for (i = 0; i < t->len && i < max && o + 6 < size; i++) {
        unsigned char ch = (unsigned char)p->s[t->pos + i];
        buf[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (i < t->len && o + 6 < size) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    if (open)
        buf[o++] = open;
    buf[o] = '\0';
    return buf;
}

/* ---- tokenizer -------------------------------------------------------------- */

static int is_word_start(int ch)
{
    return isascii(ch) && (isalpha(ch) || ch == '_');
}

static int is_word_char(int ch)
{
    return isascii(ch) && (isalnum(ch) || ch == '_');
}

static int is_key_char(int ch)
{
    return is_word_char(ch) || ch == '-' || ch == '.' || ch == '/' || ch == ':';
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

/* Scans a quoted run starting at the quote at `at`; *end is one past the
 * closing quote. The escapes match filter_i_unquote(). */
static int scan_quoted(struct parser *p, size_t at, size_t *end, const char *what)
{
    const char *s = p->s;
    char q = s[at];
    size_t i = at + 1;
    for (;;) {
        char ch = s[i];
        if (ch == '\0')
            return filter_i_perr(p, at, "unterminated %s: the closing %c is missing", what, q);
        if (ch == '\\' && (s[i + 1] == q || s[i + 1] == '\\'))
            i += 2;
        else if (ch == q && s[i + 1] == q)
            i += 2;
        else if (ch == q)
            break;
        else
            i++;
    }
    *end = i + 1;
    return 0;
}

/* Decodes quoted content (without its quotes) into dst, which has room for
 * n bytes; returns the decoded length. A bare key (q == 0) is copied. */
size_t filter_i_unquote(const char *src, size_t n, char q, char *dst)
{
    size_t i = 0, o = 0;
    while (i < n) {
        if (q && i + 1 < n &&
            ((src[i] == '\\' && (src[i + 1] == q || src[i + 1] == '\\')) ||
             (src[i] == q && src[i + 1] == q))) {
            dst[o++] = src[i + 1];
            i += 2;
        } else {
            dst[o++] = src[i++];
        }
    }
    return o;
}

static int lex_number(struct parser *p, struct token *t)
{
    const char *s = p->s;
    size_t i = p->pos, seg, nlen;
    int neg = 0, has_exp = 0, has_unit = 0;
    double total_ms = 0;
    char num[128];

    if (s[i] == '-') {
        neg = 1;
        i++;
    }
    for (;;) {
        int digits = 0;
        seg = i;
        while (is_digit(s[i])) {
            i++;
            digits++;
        }
        if (s[i] == '.') {
            i++;
            while (is_digit(s[i])) {
                i++;
                digits++;
            }
        }
        if (!digits)
            return filter_i_perr(p, t->pos, "invalid number");
        if (!has_unit && (s[i] == 'e' || s[i] == 'E')) {
            size_t e = i + 1;
            if (s[e] == '+' || s[e] == '-')
                e++;
            if (is_digit(s[e])) {
                while (is_digit(s[e]))
                    e++;
                i = e;
                has_exp = 1;
            }
        }
        nlen = i - seg;
        if (nlen >= sizeof num)
            return filter_i_perr(p, t->pos, "number longer than %zu characters", sizeof num - 1);
        memcpy(num, s + seg, nlen);
        num[nlen] = '\0';
        if (!isascii((unsigned char)s[i]) || !isalpha((unsigned char)s[i])) {
            if (has_unit)
                return filter_i_perr(p, t->pos,
                                     "invalid duration: expected a unit (ms, s, m, h or d) "
                                     "after the last number");
            break;
        }
        /* a unit follows: this is (part of) a duration */
        size_t u = i;
        double unit_ms;
        while (isascii((unsigned char)s[i]) && isalpha((unsigned char)s[i]))
            i++;
        if (i - u == 2 && s[u] == 'm' && s[u + 1] == 's')
            unit_ms = 1;
        else if (i - u == 1 && s[u] == 's')
            unit_ms = 1000;
        else if (i - u == 1 && s[u] == 'm')
            unit_ms = 60e3;
        else if (i - u == 1 && s[u] == 'h')
            unit_ms = 3600e3;
        else if (i - u == 1 && s[u] == 'd')
            unit_ms = 86400e3;
        else
            return filter_i_perr(p, u, "unknown unit \"%.*s\" (expected ms, s, m, h or d)",
                                 (int)(i - u > 20 ? 20 : i - u), s + u);
        if (has_exp)
            return filter_i_perr(p, t->pos, "a duration cannot have an exponent");
        total_ms += strtod(num, NULL) * unit_ms;
        has_unit = 1;
        if (!is_digit(s[i]) && s[i] != '.')
            break;
    }
    if (is_word_char((unsigned char)s[i]) || s[i] == '.')
        return filter_i_perr(p, t->pos, "invalid number");
    t->len = i - t->pos;
    p->pos = i;
    if (has_unit) {
        if (!(total_ms < 9.2e18))
            return filter_i_perr(p, t->pos, "duration out of range");
        t->type = TK_DURATION;
        t->i = (int64_t)(total_ms + 0.5);
        if (neg)
            t->i = -t->i;
        return 0;
    }
    /* a plain number: re-read it whole, sign and exponent included */
    nlen = t->len;
    if (nlen >= sizeof num)
        return filter_i_perr(p, t->pos, "number longer than %zu characters", sizeof num - 1);
    memcpy(num, s + t->pos, nlen);
    num[nlen] = '\0';
    t->type = TK_NUMBER;
    errno = 0;
    t->d = strtod(num, NULL);
    if (isinf(t->d))
        return filter_i_perr(p, t->pos, "number out of range");
    t->is_int = 0;
    if (!memchr(num, '.', nlen) && !has_exp) {
        errno = 0;
        long long v = strtoll(num, NULL, 10);
        if (errno == 0) {
            t->is_int = 1;
            t->i = (int64_t)v;
        }
    }
    return 0;
}

/* Reads the next token into p->tok. */
int filter_i_lex(struct parser *p)
{
    const char *s = p->s;
    struct token *t = &p->tok;
    size_t i;
    unsigned char ch;

    while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r' ||
           s[p->pos] == '\f' || s[p->pos] == '\v')
        p->pos++;
    memset(t, 0, sizeof *t);
    t->pos = p->pos;
    i = p->pos;
    ch = (unsigned char)s[i];
    if (ch == '\0') {
        t->type = TK_EOF;
        return 0;
    }
    if (is_word_start(ch)) {
        while (is_word_char((unsigned char)s[i]))
            i++;
        t->type = TK_WORD;
        if (s[i] == '.') {
            size_t k = i + 1;
            t->type = TK_DOTTED;
            t->plen = i - t->pos;
            if (s[k] == '`' || s[k] == '"') {
                size_t end;
                if (scan_quoted(p, k, &end, "quoted key"))
                    return -1;
                t->quote = s[k];
                t->kpos = k + 1;
                t->klen = end - k - 2;
                i = end;
            } else {
                while (is_key_char((unsigned char)s[k]))
                    k++;
                if (k == i + 1)
                    return filter_i_perr(p, i + 1, "expected a key after \"%.*s.\"",
                                         (int)(t->plen > 40 ? 40 : t->plen), s + t->pos);
                t->kpos = i + 1;
                t->klen = k - i - 1;
                i = k;
            }
        }
        t->len = i - t->pos;
        p->pos = i;
        return 0;
    }
    if (is_digit(ch) || (ch == '.' && is_digit(s[i + 1])) ||
        (ch == '-' && (is_digit(s[i + 1]) || (s[i + 1] == '.' && is_digit(s[i + 2])))))
        return lex_number(p, t);
    if (ch == '\'' || ch == '"') {
        size_t end;
        if (scan_quoted(p, i, &end, "string"))
            return -1;
        t->type = TK_STRING;
        t->quote = (char)ch;
        t->kpos = i + 1;
        t->klen = end - i - 2;
        t->len = end - i;
        p->pos = end;
        return 0;
    }
    t->len = 1;
    switch (ch) {
    case '(':
        t->type = TK_LPAREN;
        break;
    case ')':
        t->type = TK_RPAREN;
        break;
    case ',':
        t->type = TK_COMMA;
        break;
    case '=':
        t->type = TK_OP;
        t->op = OP_EQ;
        if (s[i + 1] == '=')
            t->len = 2;
        break;
    case '!':
        if (s[i + 1] != '=')
            return filter_i_perr(p, i, "unexpected character '!' (did you mean '!='?)");
        t->type = TK_OP;
        t->op = OP_NE;
        t->len = 2;
        break;
    case '<':
        t->type = TK_OP;
        t->op = OP_LT;
        if (s[i + 1] == '=') {
            t->op = OP_LE;
            t->len = 2;
        } else if (s[i + 1] == '>') {
            t->op = OP_NE;
            t->len = 2;
        }
        break;
    case '>':
        t->type = TK_OP;
        t->op = OP_GT;
        if (s[i + 1] == '=') {
            t->op = OP_GE;
            t->len = 2;
        }
        break;
    default:
        if (ch >= 0x20 && ch < 0x7f)
            return filter_i_perr(p, i, "unexpected character '%c'", ch);
        return filter_i_perr(p, i, "unexpected byte 0x%02x", ch);
    }
    p->pos = i + t->len;
    return 0;
}

/* Is the current token the word `kw` (case-insensitive)? */
int filter_i_is_kw(const struct parser *p, const char *kw)
{
    const struct token *t = &p->tok;
    return t->type == TK_WORD && strlen(kw) == t->len &&
           strncasecmp(p->s + t->pos, kw, t->len) == 0;
}

int filter_i_span_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}
