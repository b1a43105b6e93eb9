/*
 * filter_trace.c: the filter language over traces (`track traces
 * --filter`), compiled to a parameterized SQL fragment over `traces t`
 * (and `experiments e`, joined by the caller). The same tokens as the run
 * filter (filter_lex.c: numbers, quoted strings, durations like 250ms or
 * 2s, comparison operators) and the same and / or / not / parentheses;
 * the terms are a trace's:
 *
 *   duration (ms, or a duration), spans, errors, cost, tokens.input,
 *   tokens.output, tokens.total: numbers, any comparison;
 *   status = 'error' | 'ok' (a span in error, or none), != too;
 *   model = 'M' (a span of the trace used M), != too;
 *   name (the root span's), experiment: text, any comparison;
 *   attributes.KEY: a span of the trace whose attribute KEY compares so
 *   (a number compares as a number, a string as text);
 *   feedback.NAME: the mean of the trace's (and its spans') numeric and
 *   boolean scores of that name (`track feedback add --trace`).
 *
 * No value is pasted into SQL: every literal and key is a bind parameter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "filter_internal.h"

static const char *const op_sql[] = {" = ", " != ", " < ", " <= ", " > ", " >= "};

static int parse_or(struct parser *p, struct sbuf *b);

/* The value after an operator: a bind of the right type; *is_text says a
 * string came. `ms` scales a plain number to nanoseconds (duration). */
static int value(struct parser *p, int ms, int *is_text)
{
    struct token *t = &p->tok;
    int idx;

    *is_text = 0;
    if (t->type == TK_STRING) {
        size_t n;
        char *s = filter_i_dup_unquoted(p, t->kpos, t->klen, t->quote, &n);
        if (!s)
            return -1;
        if (ms) {
            free(s);
            return filter_i_perr(p, t->pos,
                                 "duration compares with a number of ms or a "
                                 "duration (250ms, 2s), not a string");
        }
        *is_text = 1;
        idx = filter_i_bind_text_take(p, t->pos, s);
    } else if (t->type == TK_DURATION) {
        if (!ms)
            return filter_i_perr(p, t->pos, "a duration compares only with duration");
        idx = filter_i_bind_int(p, t->pos, t->i * 1000000);
    } else if (t->type == TK_NUMBER) {
        if (ms)
            idx = filter_i_bind_double(p, t->pos, t->d * 1e6);
        else
            idx = t->is_int ? filter_i_bind_int(p, t->pos, t->i)
                            : filter_i_bind_double(p, t->pos, t->d);
    } else {
        char d[64];
        return filter_i_perr(p, t->pos, "expected a value, got %s",
                             filter_i_tok_desc(p, t, d, sizeof(d)));
    }
    if (idx < 0)
        return -1;
    if (filter_i_lex(p))
        return -1;
    return idx;
}

static int term(struct parser *p, struct sbuf *b)
{
    struct token t = p->tok;
    char d[64];
    static const struct {
        const char *name, *sql;
        int text, ms;
    } cols[] = {
        {"duration", "(t.end_ns - t.start_ns)", 0, 1},
        {"spans", "t.spans", 0, 0},
        {"errors", "t.errors", 0, 0},
        {"cost", "t.cost", 0, 0},
        {"name", "t.root_name", 1, 0},
        {"experiment", "e.name", 1, 0},
    };

    if (++p->terms > FILTER_MAX_TERMS)
        return filter_i_perr(p, t.pos, "more than %d comparisons", FILTER_MAX_TERMS);
    if (filter_i_lex(p))
        return -1;
    if (p->tok.type != TK_OP)
        return filter_i_perr(p, p->tok.pos, "expected a comparison after %.*s, got %s", (int)t.len,
                             p->s + t.pos, filter_i_tok_desc(p, &p->tok, d, sizeof(d)));
    int op = p->tok.op, is_text, idx;
    size_t op_pos = p->tok.pos;
    if (filter_i_lex(p))
        return -1;
    if (t.type == TK_DOTTED && filter_i_span_is(p->s + t.pos, t.plen, "tokens")) {
        const char *k = p->s + t.kpos;
        const char *col = filter_i_span_is(k, t.klen, "input")    ? "t.tokens_in"
                          : filter_i_span_is(k, t.klen, "output") ? "t.tokens_out"
                          : filter_i_span_is(k, t.klen, "total")  ? "t.tokens_total"
                                                                  : NULL;
        if (!col)
            return filter_i_perr(p, t.pos,
                                 "tokens.%.*s: expected tokens.input, tokens.output "
                                 "or tokens.total",
                                 (int)t.klen, k);
        if ((idx = value(p, 0, &is_text)) < 0)
            return -1;
        if (is_text)
            return filter_i_perr(p, t.pos, "tokens compare with numbers");
        filter_i_sb_str(b, col);
        filter_i_sb_str(b, op_sql[op]);
        filter_i_sb_param(b, idx);
        return 0;
    }
    if (t.type == TK_DOTTED && filter_i_span_is(p->s + t.pos, t.plen, "attributes")) {
        size_t n;
        char *key = filter_i_dup_unquoted(p, t.kpos, t.klen, t.quote, &n);
        if (!key)
            return -1;
        if (strpbrk(key, "\"\\") || !n) {
            free(key);
            return filter_i_perr(p, t.pos, "attributes.KEY: a key without quotes or backslashes");
        }
        size_t pl = n + 5;
        char *path = malloc(pl);
        if (!path) {
            free(key);
            return filter_i_perr(p, t.pos, "out of memory");
        }
        snprintf(path, pl, "$.\"%s\"", key);
        free(key);
        int kidx = filter_i_bind_text_take(p, t.pos, path);
        if (kidx < 0 || (idx = value(p, 0, &is_text)) < 0)
            return -1;
        filter_i_sb_str(b, "EXISTS (SELECT 1 FROM spans sa WHERE sa.trace = t.id AND ");
        filter_i_sb_str(b, "CAST(json_extract(sa.attributes, ");
        filter_i_sb_param(b, kidx);
        filter_i_sb_str(b, is_text ? ") AS TEXT)" : ") AS REAL)");
        filter_i_sb_str(b, op_sql[op]);
        filter_i_sb_param(b, idx);
        filter_i_sb_str(b, " AND json_extract(sa.attributes, ");
        filter_i_sb_param(b, kidx);
        filter_i_sb_str(b, ") IS NOT NULL)");
        return 0;
    }
    if (t.type == TK_DOTTED && filter_i_span_is(p->s + t.pos, t.plen, "feedback")) {
        size_t n;
        char *fname = filter_i_dup_unquoted(p, t.kpos, t.klen, t.quote, &n);
        if (!fname)
            return -1;
        int kidx = filter_i_bind_text_take(p, t.pos, fname);
        if (kidx < 0 || (idx = value(p, 0, &is_text)) < 0)
            return -1;
        if (is_text)
            return filter_i_perr(p, t.pos, "feedback.NAME compares its mean with a number");
        /* the mean of the trace's numeric and boolean scores of that name */
        filter_i_sb_str(b, "(SELECT avg(fb.num) FROM feedback fb JOIN feedback_names fn ON"
                           " fn.id = fb.name_id WHERE fb.trace_id = t.trace_id AND fn.name = ");
        filter_i_sb_param(b, kidx);
        filter_i_sb_str(b, " AND fb.num IS NOT NULL)");
        filter_i_sb_str(b, op_sql[op]);
        filter_i_sb_param(b, idx);
        return 0;
    }
    if (t.type != TK_WORD)
        return filter_i_perr(p, t.pos,
                             "expected a trace term (duration, status, spans, errors, "
                             "cost, tokens.input/output/total, model, name, "
                             "experiment, attributes.KEY), got %.*s",
                             (int)t.len, p->s + t.pos);
    const char *w = p->s + t.pos;
    if (filter_i_span_is(w, t.len, "status") || filter_i_span_is(w, t.len, "model")) {
        int status = filter_i_span_is(w, t.len, "status");
        if (op != OP_EQ && op != OP_NE)
            return filter_i_perr(p, op_pos, "%s takes = or != only", status ? "status" : "model");
        if (p->tok.type != TK_STRING) {
            char dd[64];
            return filter_i_perr(p, p->tok.pos, "%s compares with a string, got %s",
                                 status ? "status ('error' or 'ok')" : "model",
                                 filter_i_tok_desc(p, &p->tok, dd, sizeof(dd)));
        }
        if (status) {
            char v[16] = "";
            size_t n = p->tok.klen < sizeof(v) - 1 ? p->tok.klen : sizeof(v) - 1;
            memcpy(v, p->s + p->tok.kpos, n);
            int err = filter_i_span_is(v, n, "error"), ok = filter_i_span_is(v, n, "ok");
            if (!err && !ok)
                return filter_i_perr(p, p->tok.pos, "status: 'error' or 'ok'");
            if (filter_i_lex(p))
                return -1;
            filter_i_sb_str(b, (err == (op == OP_EQ)) ? "t.errors > 0" : "t.errors = 0");
            return 0;
        }
        if ((idx = value(p, 0, &is_text)) < 0)
            return -1;
        filter_i_sb_str(b, op == OP_EQ ? "EXISTS" : "NOT EXISTS");
        filter_i_sb_str(b, " (SELECT 1 FROM trace_models tm WHERE tm.trace = t.id AND tm.spans > 0"
                           " AND tm.model = ");
        filter_i_sb_param(b, idx);
        filter_i_sb_str(b, ")");
        return 0;
    }
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
        if (!filter_i_span_is(w, t.len, cols[i].name))
            continue;
        if ((idx = value(p, cols[i].ms, &is_text)) < 0)
            return -1;
        if (is_text != cols[i].text)
            return filter_i_perr(p, t.pos, "%s compares with %s", cols[i].name,
                                 cols[i].text ? "a string" : "a number");
        filter_i_sb_str(b, cols[i].sql);
        filter_i_sb_str(b, op_sql[op]);
        filter_i_sb_param(b, idx);
        return 0;
    }
    return filter_i_perr(p, t.pos,
                         "unknown trace term %.*s (expected duration, status, spans, "
                         "errors, cost, tokens.input/output/total, model, name, "
                         "experiment, attributes.KEY)",
                         (int)t.len, w);
}

static int primary(struct parser *p, struct sbuf *b)
{
    if (p->tok.type == TK_LPAREN) {
        size_t at = p->tok.pos;
        if (++p->depth > FILTER_MAX_DEPTH)
            return filter_i_perr(p, at, "nested deeper than %d", FILTER_MAX_DEPTH);
        if (filter_i_lex(p))
            return -1;
        filter_i_sb_str(b, "(");
        if (parse_or(p, b))
            return -1;
        if (p->tok.type != TK_RPAREN)
            return filter_i_perr(p, at, "this ( is never closed");
        filter_i_sb_str(b, ")");
        p->depth--;
        return filter_i_lex(p);
    }
    return term(p, b);
}

static int parse_not(struct parser *p, struct sbuf *b)
{
    if (filter_i_is_kw(p, "not")) {
        if (++p->depth > FILTER_MAX_DEPTH)
            return filter_i_perr(p, p->tok.pos, "nested deeper than %d", FILTER_MAX_DEPTH);
        if (filter_i_lex(p))
            return -1;
        filter_i_sb_str(b, "NOT (");
        if (parse_not(p, b))
            return -1;
        filter_i_sb_str(b, ")");
        p->depth--;
        return 0;
    }
    return primary(p, b);
}

static int parse_and(struct parser *p, struct sbuf *b)
{
    if (parse_not(p, b))
        return -1;
    while (filter_i_is_kw(p, "and")) {
        if (filter_i_lex(p))
            return -1;
        filter_i_sb_str(b, " AND ");
        if (parse_not(p, b))
            return -1;
    }
    return 0;
}

static int parse_or(struct parser *p, struct sbuf *b)
{
    if (parse_and(p, b))
        return -1;
    while (filter_i_is_kw(p, "or")) {
        if (filter_i_lex(p))
            return -1;
        filter_i_sb_str(b, " OR ");
        if (parse_and(p, b))
            return -1;
    }
    return 0;
}

int filter_trace_compile(const char *filter, struct filter_sql *out, struct store_err *err)
{
    struct store_err scratch;
    struct cstate c;
    struct sbuf where = {0};
    struct parser p;

    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    c.err = err ? err : &scratch;
    if (!filter || strlen(filter) > FILTER_MAX_TEXT)
        return filter_i_cerr(&c, STORE_E_INVALID, "filter: at most %d bytes", FILTER_MAX_TEXT);
    memset(&p, 0, sizeof p);
    p.c = &c;
    p.s = filter;
    p.n = strlen(filter);
    p.ctx = "filter";
    filter_i_sb_str(&where, "(");
    if (filter_i_lex(&p) || parse_or(&p, &where))
        goto fail;
    if (p.tok.type != TK_EOF) {
        char d[64];
        filter_i_perr(&p, p.tok.pos, "expected and, or or the end, got %s",
                      filter_i_tok_desc(&p, &p.tok, d, sizeof(d)));
        goto fail;
    }
    filter_i_sb_str(&where, ")");
    if (where.oom || where.over) {
        filter_i_cerr(&c, where.oom ? STORE_E_INTERNAL : STORE_E_INVALID,
                      "filter: too long once compiled");
        goto fail;
    }
    out->where = where.p;
    out->binds = c.binds;
    out->n_binds = c.n_binds;
    return 0;
fail:
    free(where.p);
    for (int i = 0; i < c.n_binds; i++)
        free(c.binds[i].s);
    free(c.binds);
    return c.rc ? c.rc : STORE_E_INVALID;
}
