/*
 * filter_internal.h: what filter.c (the parser and SQL compiler),
 * filter_term.c (binds, terms, values) and filter_lex.c (the tokenizer) share and nothing outside
 * them sees: the compiler state, the token and parser types, and the tokenizer's functions (prefix
 * filter_i_). The public contract is filter.h.
 */
#ifndef TRACK_FILTER_INTERNAL_H
#define TRACK_FILTER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "filter.h"

/* ---- compiler state shared by the filter and order-by passes -------------- */

struct cstate {
    struct filter_bind *binds;
    int n_binds, cap_binds;
    int now_bind; /* ?N holding now_ms, 0 until first needed */
    int64_t now_ms;
    int lifecycle;                                    /* the filter named lifecycle */
    struct filter_driver drivers[FILTER_MAX_DRIVERS]; /* filter.h */
    int n_drivers;
    int top_or; /* the filter's top level is an OR: no term can drive */
    int rc;     /* first error, 0 while none */
    struct store_err *err;
};

enum tok_type {
    TK_EOF,
    TK_WORD,     /* [A-Za-z_][A-Za-z0-9_]* */
    TK_DOTTED,   /* word "." key */
    TK_STRING,   /* '...' or "..." */
    TK_NUMBER,   /* plain number */
    TK_DURATION, /* number with unit(s), in ms */
    TK_LPAREN,
    TK_RPAREN,
    TK_COMMA,
    TK_OP, /* comparison operator */
};

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

struct token {
    int type;
    size_t pos, len;   /* raw span in the text */
    size_t plen;       /* TK_DOTTED: length of the prefix word */
    size_t kpos, klen; /* TK_DOTTED key / TK_STRING content, raw (still quoted) */
    char quote;        /* 0 for a bare key, else the quote character */
    int op;            /* TK_OP */
    int is_int;        /* TK_NUMBER: written as an integer that fits int64 */
    int64_t i;         /* TK_NUMBER when is_int, TK_DURATION */
    double d;          /* TK_NUMBER */
};

struct parser {
    struct cstate *c;
    const char *s; /* the text, NUL-terminated */
    size_t n;
    size_t pos;       /* next byte to tokenize */
    const char *ctx;  /* "filter" or "order-by" */
    struct token tok; /* the current token */
    int depth, terms;
};

/* Records a STORE_E_INVALID error "CTX: column POS+1: ..." in p->c unless an
 * error is already recorded; returns -1. */
__attribute__((format(printf, 3, 4))) int filter_i_perr(struct parser *p, size_t pos,
                                                        const char *fmt, ...);
/* Writes a short printable rendering of token `t` into buf for messages. */
const char *filter_i_tok_desc(const struct parser *p, const struct token *t, char *buf,
                              size_t size);
/* Decodes quoted content (without its quotes) into dst, which has room for
 * n bytes; returns the decoded length. A bare key (q == 0) is copied. */
size_t filter_i_unquote(const char *src, size_t n, char q, char *dst);
/* Reads the next token into p->tok; 0, or -1 with the error recorded. */
int filter_i_lex(struct parser *p);
/* Is the current token the word `kw` (case-insensitive)? */
int filter_i_is_kw(const struct parser *p, const char *kw);
/* Is the span s[0..n) the word `word` (case-insensitive)? */
int filter_i_span_is(const char *s, size_t n, const char *word);

/* ---- shared by filter.c (expressions, entry points) and filter_term.c
 * (binds, terms, values, LIKE patterns) ------------------------------------ */

/* A bounded SQL text buffer (FILTER_MAX_SQL). */
struct sbuf {
    char *p;
    size_t len, cap;
    int oom;  /* an allocation failed */
    int over; /* FILTER_MAX_SQL would be exceeded */
};

enum kind {
    K_METRIC,
    K_FEEDBACK, /* feedback.NAME: the per-run mean or true ratio */
    K_PARAM,
    K_TAG,
    K_STATUS,
    K_NAME,
    K_USER,
    K_EXPERIMENT,
    K_START,
    K_END,
    K_DURATION,
    K_RUNID,
    K_LIFECYCLE,
};

enum agg { AGG_LAST, AGG_MIN, AGG_MAX };

struct term {
    int kind;
    int agg;
    int key_bind;    /* ?N of the key (metrics, feedback, params, tags) */
    size_t pos, len; /* raw text, for messages */
};

void filter_i_sb_str(struct sbuf *b, const char *s);
void filter_i_sb_param(struct sbuf *b, int idx);
__attribute__((format(printf, 3, 4))) int filter_i_cerr(struct cstate *c, int code, const char *fmt,
                                                        ...);
int filter_i_bind_text_take(struct parser *p, size_t pos, char *s);
/* Append an int64 or a double bind; its 1-based index, or -1 recorded. */
int filter_i_bind_int(struct parser *p, size_t pos, int64_t v);
int filter_i_bind_double(struct parser *p, size_t pos, double v);
char *filter_i_dup_unquoted(struct parser *p, size_t kpos, size_t klen, char q, size_t *out_len);
int filter_i_kind_is_text(int kind);
int filter_i_parse_term(struct parser *p, struct term *out);
void filter_i_emit_term(struct parser *p, struct sbuf *b, const struct term *t, int numeric);
void filter_i_ascii_lower(char *s);
int filter_i_parse_value(struct parser *p, const struct term *t, int ordering, const char *after,
                         int *numeric);
char *filter_i_like_to_glob(const char *pat, int *bad);

#endif
