/*
 * filter.c: compiles the run search language of `track runs --filter EXPR
 * --order-by EXPR` into a parameterized SQL fragment (see filter.h for the
 * table aliases). A hand-written tokenizer (filter_lex.c) feeds a
 * recursive-descent parser, here, that writes SQL straight into a bounded
 * growable buffer; there is no syntax tree and no global state, so the
 * compiler is reentrant. This file owns the language (below), the
 * expression parser, the SQL text and the entry points; the operands (bind
 * parameters, terms, values, LIKE patterns) are filter_term.c's, and the
 * types the three files share are in filter_internal.h.
 *
 * Nothing from the text is ever pasted into SQL. Keys and values become bind
 * parameters ?1..?n, numbered in the order they appear (struct filter_bind);
 * the SQL text holds only fixed words, column names and ?N.
 *
 * Grammar (EBNF sketch; keywords, prefixes and attribute names are
 * case-insensitive, keys are not; whitespace may separate any two tokens):
 *
 *   filter     = [ or_expr ] ;
 *   or_expr    = and_expr { "OR" and_expr } ;
 *   and_expr   = not_expr { "AND" not_expr } ;
 *   not_expr   = "NOT" not_expr | "(" or_expr ")" | comparison ;
 *   comparison = term ( cmp_op value
 *                     | [ "NOT" ] ( "LIKE" | "ILIKE" ) string
 *                     | [ "NOT" ] "IN" "(" value { "," value } ")"
 *                     | "IS" [ "NOT" ] "NULL" ) ;
 *   cmp_op     = "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ;
 *   order_by   = [ order_item { "," order_item } ] ;
 *   order_item = term [ "ASC" | "DESC" ] ;
 *   term       = attribute
 *              | attr_prefix "." key           (key names an attribute)
 *              | series_prefix "." key
 *              | ( "min" | "max" ) "(" metric_prefix "." key ")" ;
 *   attribute  = "status" | "name" | "run_name" | "user" | "user_id" | "experiment"
 *              | "start_time" | "end_time" | "duration" | "run_id" | "lifecycle" ;
 *   attr_prefix   = "attributes" | "attribute" | "attr" | "run" ;
 *   metric_prefix = "metrics" | "metric" ;
 *   series_prefix = metric_prefix | "params" | "param" | "parameter" | "parameters"
 *                 | "tags" | "tag" | "feedback" ;
 *   key        = 1*( letter | digit | "_" | "-" | "." | "/" | ":" )
 *              | "`" chars "`" | '"' chars '"' ;
 *   value      = string | number | duration ;
 *   string     = "'" chars "'" | '"' chars '"' ;
 *   number     = [ "-" ] ( digits [ "." [ digits ] ] | "." digits )
 *                [ ( "e" | "E" ) [ "+" | "-" ] digits ] ;
 *   duration   = [ "-" ] 1*( decimal unit ) ;       e.g. 500ms 30s 5m 2h 1d 1h30m
 *   unit       = "ms" | "s" | "m" | "h" | "d" ;
 *
 * Inside quotes (strings and quoted keys) a doubled quote, or a backslash
 * before the quote, stands for the quote, and "\\" for one backslash; any
 * other backslash is kept as it is (so LIKE patterns can escape % and _).
 * A quoted key may hold any bytes but control characters, 1..250 of them;
 * a key that was never logged simply matches nothing.
 *
 * Precedence: NOT binds tighter than AND, AND tighter than OR. NULL may
 * only follow IS.
 *
 * Comparison rules (SQL NULL semantics throughout: a run that lacks the
 * metric, param or tag matches no comparison, not even != or NOT IN, nor
 * the NOT of one; it matches IS NULL):
 *   metrics.KEY      the last logged value; min(metrics.KEY), max(metrics.KEY)
 *                    the summary's min and max. Numeric: = != < <= > >= IN IS,
 *                    number literals only.
 *   feedback.NAME    the run's feedback summary for NAME: the mean of a
 *                    number name, the true ratio (0..1) of a boolean one;
 *                    compared like a metric. A name holding labels is refused
 *                    by store_run_list (labels have no order).
 *   params.KEY,      strings. = != IN LIKE ILIKE compare as text; a number
 *   tags.KEY         literal is then compared as the text it was written as
 *                    (params.lr = 0.01 matches the value "0.01", not "1e-2").
 *                    < <= > >= against a string literal compare as text (byte
 *                    order); against a number literal they compare the value
 *                    as a number, CAST(value AS REAL), and only values that
 *                    look like a number (start with a digit, sign or point,
 *                    contain a digit, and hold nothing but digits, signs,
 *                    points and e/E) take part: others behave as missing.
 *   status           = != IN only, with RUNNING FINISHED FAILED KILLED in any
 *                    case, compiled to the integers 1..4 of r.status.
 *   name, user,      strings (string literals only); all operators.
 *   experiment
 *   run_id           r.hex, 32 lowercase hex; the literal is lowercased. =
 *                    is exact (no prefix match; use LIKE 'abcd%').
 *   start_time,      ms since the epoch: a number, or a duration meaning that
 *   end_time         long before now_ms (start_time > 1d: started in the
 *                    last day). A run still running has no end_time (r.end_ms
 *                    NULL or 0 both count as "not ended").
 *   duration         ms: a number or a duration. A running run's duration runs
 *                    up to now_ms.
 *   lifecycle        r.lifecycle, 'active' or 'deleted' (string literals only).
 *                    A filter that names lifecycle anywhere sets
 *                    filter_sql.lifecycle: the caller then lists deleted runs
 *                    too, as the filter says; otherwise it lists active runs only.
 * LIKE is case-sensitive, as in MLflow and PostgreSQL: SQLite's LIKE ignores
 * ASCII case, so LIKE is compiled to GLOB with the pattern translated (% to
 * *, _ to ?, GLOB's own * ? [ bracketed, \x to a literal x). ILIKE compiles
 * to lower(x) LIKE lower(?) ESCAPE '\', which folds ASCII letters only.
 * Both use backslash as the escape character; a pattern ending in a lone
 * backslash is an error.
 *
 * ORDER BY: each term is emitted as "x IS NULL, x ASC|DESC" so that runs
 * lacking the value sort last in both directions; params and tags sort as
 * text. "r.start_ms DESC, r.id DESC" always ends the order.
 *
 * Errors are STORE_E_INVALID with "filter: column N: ..." or "order-by:
 * column N: ...", N the 1-based byte offset in the original text where the
 * offending token starts; STORE_E_INTERNAL when memory runs out.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "filter.h"
#include "filter_internal.h"

/* ---- bounded SQL text buffer -------------------------------------------- */

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom || b->over)
        return;
    if (n > FILTER_MAX_SQL - b->len) {
        b->over = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > (size_t)FILTER_MAX_SQL + 1)
            cap = (size_t)FILTER_MAX_SQL + 1;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void filter_i_sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

void filter_i_sb_param(struct sbuf *b, int idx)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "?%d", idx);
    sb_add(b, tmp, (size_t)n);
}

/* Inserts `s` at offset `at` (for the "(" of a group found to need one). */
static void sb_insert(struct sbuf *b, size_t at, const char *s)
{
    size_t n = strlen(s), tail = b->len - at;
    sb_add(b, s, n); /* grows the buffer; the bytes are moved below */
    if (b->oom || b->over)
        return;
    memmove(b->p + at + n, b->p + at, tail);
    memcpy(b->p + at, s, n);
}

/* ---- compiler state shared by the filter and order-by passes -------------- */

__attribute__((format(printf, 3, 4))) int filter_i_cerr(struct cstate *c, int code, const char *fmt,
                                                        ...)
{
    va_list ap;
    if (c->rc)
        return -1;
    c->rc = code;
    c->err->code = code;
    va_start(ap, fmt);
    vsnprintf(c->err->msg, sizeof c->err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *const op_sql[] = {" = ", " <> ", " < ", " <= ", " > ", " >= "};

/* ---- expressions -------------------------------------------------------------- */

static int parse_or(struct parser *p, struct sbuf *b, int *wrapped);

static int parse_like(struct parser *p, struct sbuf *b, const struct term *t, int negate, int ilike,
                      const struct token *optok)
{
    struct token v = p->tok;
    char d[64];
    char after[24];
    char *pat;
    size_t n;
    int idx;

    snprintf(after, sizeof after, "'%.*s'", (int)(optok->len > 8 ? 8 : optok->len),
             p->s + optok->pos);
    if (!filter_i_kind_is_text(t->kind))
        return filter_i_perr(p, optok->pos, "%s applies to strings; %.*s is not one",
                             ilike ? "ILIKE" : "LIKE", (int)(t->len > 60 ? 60 : t->len),
                             p->s + t->pos);
    if (v.type != TK_STRING)
        return filter_i_perr(p, v.pos, "expected a pattern in quotes after %s but found %s", after,
                             filter_i_tok_desc(p, &v, d, sizeof d));
    pat = filter_i_dup_unquoted(p, v.kpos, v.klen, v.quote, &n);
    if (!pat)
        return -1;
    if (t->kind == K_RUNID)
        filter_i_ascii_lower(pat);
    if (!ilike) {
        int bad;
        char *g = filter_i_like_to_glob(pat, &bad);
        free(pat);
        if (!g && bad)
            return filter_i_perr(p, v.pos, "the pattern ends with a lone escape character '\\'");
        if (!g)
            return filter_i_cerr(p->c, STORE_E_INTERNAL, "%s: out of memory", p->ctx);
        pat = g;
    } else if (n > 0 && pat[n - 1] == '\\') {
        size_t k = n;
        while (k > 0 && pat[k - 1] == '\\')
            k--;
        if ((n - k) % 2 == 1) {
            free(pat);
            return filter_i_perr(p, v.pos, "the pattern ends with a lone escape character '\\'");
        }
    }
    idx = filter_i_bind_text_take(p, v.pos, pat);
    if (idx < 0)
        return -1;
    if (ilike) {
        filter_i_sb_str(b, "lower(");
        filter_i_emit_term(p, b, t, 0);
        filter_i_sb_str(b, negate ? ") NOT LIKE lower(" : ") LIKE lower(");
        filter_i_sb_param(b, idx);
        filter_i_sb_str(b, ") ESCAPE '\\'");
    } else {
        filter_i_emit_term(p, b, t, 0);
        filter_i_sb_str(b, negate ? " NOT GLOB " : " GLOB ");
        filter_i_sb_param(b, idx);
    }
    return filter_i_lex(p);
}

static int parse_in(struct parser *p, struct sbuf *b, const struct term *t, int negate)
{
    char d[64];
    int first_idx = 0, count = 0, numeric, i;
    const char *after = "'('";

    if (filter_i_lex(p))
        return -1;
    if (p->tok.type != TK_LPAREN)
        return filter_i_perr(p, p->tok.pos, "expected '(' after IN but found %s",
                             filter_i_tok_desc(p, &p->tok, d, sizeof d));
    if (filter_i_lex(p))
        return -1;
    for (;;) {
        if (++count > FILTER_MAX_IN)
            return filter_i_perr(p, p->tok.pos, "more than %d values in one IN list (limit %d)",
                                 FILTER_MAX_IN, FILTER_MAX_IN);
        if (filter_i_parse_value(p, t, 0, after, &numeric))
            return -1;
        if (!first_idx)
            first_idx = p->c->n_binds;
        if (p->tok.type == TK_RPAREN)
            break;
        if (p->tok.type != TK_COMMA)
            return filter_i_perr(p, p->tok.pos, "expected ',' or ')' in the IN list but found %s",
                                 filter_i_tok_desc(p, &p->tok, d, sizeof d));
        after = "','";
        if (filter_i_lex(p))
            return -1;
    }
    /* the values are binds first_idx .. first_idx+count-1, consecutive */
    filter_i_emit_term(p, b, t, 0);
    filter_i_sb_str(b, negate ? " NOT IN (" : " IN (");
    for (i = 0; i < count; i++) {
        if (i)
            filter_i_sb_str(b, ", ");
        filter_i_sb_param(b, first_idx + i);
    }
    filter_i_sb_str(b, ")");
    return filter_i_lex(p);
}

/* Notes a comparison of the top-level AND chain that an index answers
 * (filter.h, struct filter_driver). */
static void note_driver(struct parser *p, const struct term *t, int op, int value_bind, int numeric)
{
    struct cstate *c = p->c;
    struct filter_driver d = {.op = op_sql[op], .key_bind = t->key_bind, .value_bind = value_bind};

    if (p->depth != 0 || c->n_drivers >= FILTER_MAX_DRIVERS)
        return;
    if (t->kind == K_METRIC && t->agg == AGG_LAST && op != OP_NE) {
        d.kind = FILTER_DRIVE_METRIC;
    } else if (t->kind == K_PARAM && numeric) {
        d.kind = FILTER_DRIVE_PARAM_NUM;
    } else if (t->kind == K_PARAM && op == OP_EQ) {
        const struct filter_bind *v = &c->binds[value_bind - 1];
        if (v->type != FILTER_BIND_TEXT || !v->s)
            return;
        d.kind = FILTER_DRIVE_PARAM_TEXT;
        d.numeric = filter_looks_numeric(v->s);
    } else {
        return;
    }
    c->drivers[c->n_drivers++] = d;
}

static int parse_comparison(struct parser *p, struct sbuf *b)
{
    struct term t;
    struct token op;
    char d[64];
    int negate = 0;

    if (++p->terms > FILTER_MAX_TERMS)
        return filter_i_perr(p, p->tok.pos, "more than %d terms (limit %d)", FILTER_MAX_TERMS,
                             FILTER_MAX_TERMS);
    if (filter_i_parse_term(p, &t))
        return -1;
    op = p->tok;
    if (op.type == TK_OP) {
        char after[8];
        int numeric, ordering = op.op >= OP_LT, idx;
        if (t.kind == K_STATUS && ordering)
            return filter_i_perr(p, op.pos,
                                 "status can only be compared with =, !=, IN or IS NULL");
        snprintf(after, sizeof after, "'%.*s'", (int)op.len, p->s + op.pos);
        if (filter_i_lex(p))
            return -1;
        if (filter_i_parse_value(p, &t, ordering, after, &numeric))
            return -1;
        idx = p->c->n_binds;
        note_driver(p, &t, op.op, idx, numeric);
        filter_i_emit_term(p, b, &t, numeric);
        filter_i_sb_str(b, op_sql[op.op]);
        filter_i_sb_param(b, idx);
        return 0;
    }
    if (op.type == TK_WORD && (filter_i_is_kw(p, "not") || filter_i_is_kw(p, "like") ||
                               filter_i_is_kw(p, "ilike") || filter_i_is_kw(p, "in"))) {
        if (filter_i_is_kw(p, "not")) {
            negate = 1;
            if (filter_i_lex(p))
                return -1;
            op = p->tok;
            if (!(filter_i_is_kw(p, "like") || filter_i_is_kw(p, "ilike") ||
                  filter_i_is_kw(p, "in")))
                return filter_i_perr(p, op.pos, "expected LIKE, ILIKE or IN after NOT but found %s",
                                     filter_i_tok_desc(p, &op, d, sizeof d));
        }
        if (filter_i_is_kw(p, "in"))
            return parse_in(p, b, &t, negate);
        {
            int ilike = filter_i_is_kw(p, "ilike");
            if (filter_i_lex(p))
                return -1;
            return parse_like(p, b, &t, negate, ilike, &op);
        }
    }
    if (filter_i_is_kw(p, "is")) {
        if (filter_i_lex(p))
            return -1;
        if (filter_i_is_kw(p, "not")) {
            negate = 1;
            if (filter_i_lex(p))
                return -1;
        }
        if (!filter_i_is_kw(p, "null"))
            return filter_i_perr(p, p->tok.pos, "expected NULL or NOT NULL after IS but found %s",
                                 filter_i_tok_desc(p, &p->tok, d, sizeof d));
        filter_i_emit_term(p, b, &t, 0);
        filter_i_sb_str(b, negate ? " IS NOT NULL" : " IS NULL");
        return filter_i_lex(p);
    }
    return filter_i_perr(p, op.pos,
                         "expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN or IS) "
                         "after %.*s but found %s",
                         (int)(t.len > 60 ? 60 : t.len), p->s + t.pos,
                         filter_i_tok_desc(p, &op, d, sizeof d));
}

/* not_expr; *wrapped tells whether the emitted SQL is one parenthesized group. */
static int parse_not(struct parser *p, struct sbuf *b, int *wrapped)
{
    char d[64];
    *wrapped = 0;
    if (filter_i_is_kw(p, "not") || p->tok.type == TK_LPAREN) {
        size_t at = p->tok.pos;
        int rc, is_not = p->tok.type != TK_LPAREN;
        if (++p->depth > FILTER_MAX_DEPTH)
            return filter_i_perr(p, at, "nesting deeper than %d levels (limit %d)",
                                 FILTER_MAX_DEPTH, FILTER_MAX_DEPTH);
        if (filter_i_lex(p))
            return -1;
        if (is_not) {
            int inner;
            filter_i_sb_str(b, "NOT ");
            rc = parse_not(p, b, &inner);
        } else {
            rc = parse_or(p, b, wrapped);
            if (!rc && p->tok.type != TK_RPAREN)
                rc = filter_i_perr(p, p->tok.pos,
                                   "expected ')' to close the '(' at column %zu but "
                                   "found %s",
                                   at + 1, filter_i_tok_desc(p, &p->tok, d, sizeof d));
            if (!rc)
                rc = filter_i_lex(p);
        }
        p->depth--;
        return rc;
    }
    return parse_comparison(p, b);
}

/* Parses one of and_expr (kw "and") or or_expr (kw "or"). */
static int parse_chain(struct parser *p, struct sbuf *b, int *wrapped, int is_or)
{
    size_t start = b->len;
    int n = 0, inner;
    const char *kw = is_or ? "or" : "and";
    for (;;) {
        int rc = is_or ? parse_chain(p, b, &inner, 0) : parse_not(p, b, &inner);
        if (rc)
            return -1;
        n++;
        if (!filter_i_is_kw(p, kw))
            break;
        if (filter_i_lex(p))
            return -1;
        filter_i_sb_str(b, is_or ? " OR " : " AND ");
    }
    if (n > 1 && is_or && p->depth == 0)
        p->c->top_or = 1;
    if (n > 1) {
        sb_insert(b, start, "(");
        filter_i_sb_str(b, ")");
        *wrapped = 1;
    } else {
        *wrapped = inner;
    }
    return 0;
}

static int parse_or(struct parser *p, struct sbuf *b, int *wrapped)
{
    return parse_chain(p, b, wrapped, 1);
}

/* ---- entry points --------------------------------------------------------------- */

static int is_blank(const char *s)
{
    if (!s)
        return 1;
    for (; *s; s++)
        if (!(*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v'))
            return 0;
    return 1;
}

static int parser_init(struct parser *p, struct cstate *c, const char *s, const char *ctx)
{
    memset(p, 0, sizeof *p);
    p->c = c;
    p->s = s;
    p->ctx = ctx;
    p->n = strnlen(s, (size_t)FILTER_MAX_TEXT + 1);
    if (p->n > FILTER_MAX_TEXT)
        return filter_i_cerr(c, STORE_E_INVALID, "%s: longer than %d bytes (limit %d)", ctx,
                             FILTER_MAX_TEXT, FILTER_MAX_TEXT);
    return filter_i_lex(p);
}

static int sb_check(struct parser *p, const struct sbuf *b)
{
    if (b->oom)
        return filter_i_cerr(p->c, STORE_E_INTERNAL, "%s: out of memory", p->ctx);
    if (b->over)
        return filter_i_cerr(p->c, STORE_E_INVALID,
                             "%s: compiled SQL longer than %d bytes (limit %d)", p->ctx,
                             FILTER_MAX_SQL, FILTER_MAX_SQL);
    return 0;
}

static int compile_where(struct cstate *c, const char *text, struct sbuf *b)
{
    struct parser p;
    char d[64];
    int wrapped;
    if (parser_init(&p, c, text, "filter"))
        return -1;
    if (parse_or(&p, b, &wrapped))
        return -1;
    if (p.tok.type != TK_EOF) {
        if (p.tok.type == TK_RPAREN)
            return filter_i_perr(&p, p.tok.pos, "unmatched ')'");
        return filter_i_perr(&p, p.tok.pos, "expected AND, OR or end of input but found %s",
                             filter_i_tok_desc(&p, &p.tok, d, sizeof d));
    }
    if (!wrapped) {
        sb_insert(b, 0, "(");
        filter_i_sb_str(b, ")");
    }
    return sb_check(&p, b);
}

static int compile_order(struct cstate *c, const char *text, struct sbuf *b, struct filter_sql *out,
                         size_t *rest_at)
{
    struct parser p;
    char d[64];
    int first = 1;
    if (parser_init(&p, c, text, "order-by"))
        return -1;
    for (;;) {
        struct term t;
        const char *dir = " ASC";
        if (++p.terms > FILTER_MAX_ORDER_TERMS)
            return filter_i_perr(&p, p.tok.pos, "more than %d terms (limit %d)",
                                 FILTER_MAX_ORDER_TERMS, FILTER_MAX_ORDER_TERMS);
        if (filter_i_parse_term(&p, &t))
            return -1;
        if (filter_i_is_kw(&p, "asc") || filter_i_is_kw(&p, "desc")) {
            if (filter_i_is_kw(&p, "desc"))
                dir = " DESC";
            if (filter_i_lex(&p))
                return -1;
        } else if (p.tok.type == TK_WORD) {
            return filter_i_perr(&p, p.tok.pos, "expected ASC or DESC but found %s",
                                 filter_i_tok_desc(&p, &p.tok, d, sizeof d));
        }
        filter_i_emit_term(&p, b, &t, 0);
        filter_i_sb_str(b, " IS NULL, ");
        filter_i_emit_term(&p, b, &t, 0);
        filter_i_sb_str(b, dir);
        filter_i_sb_str(b, ", ");
        if (first && t.kind == K_METRIC && t.agg == AGG_LAST) {
            out->order_metric_bind = t.key_bind;
            out->order_desc = dir[1] == 'D';
            *rest_at = b->len;
        }
        first = 0;
        if (p.tok.type == TK_EOF)
            break;
        if (p.tok.type != TK_COMMA)
            return filter_i_perr(&p, p.tok.pos,
                                 "expected ASC, DESC, ',' or end of input but found %s",
                                 filter_i_tok_desc(&p, &p.tok, d, sizeof d));
        if (filter_i_lex(&p))
            return -1;
    }
    filter_i_sb_str(b, "r.start_ms DESC, r.id DESC");
    return sb_check(&p, b);
}

int filter_compile(const char *filter, const char *order_by, int64_t now_ms, struct filter_sql *out,
                   struct store_err *err)
{
    struct store_err scratch;
    struct cstate c;
    struct sbuf where = {0}, order = {0};
    size_t rest_at = 0;
    int i;

    memset(&c, 0, sizeof c);
    c.err = err ? err : &scratch;
    c.now_ms = now_ms;
    if (!out)
        return filter_i_cerr(&c, STORE_E_INVALID, "filter: no output given");
    memset(out, 0, sizeof *out);

    if (!is_blank(filter) && compile_where(&c, filter, &where))
        goto fail;
    out->lifecycle = c.lifecycle; /* the filter's mention only, not the order's */
    if (is_blank(order_by)) {
        out->order_default = 1;
        filter_i_sb_str(&order, "r.start_ms DESC, r.id DESC");
        if (order.oom) {
            filter_i_cerr(&c, STORE_E_INTERNAL, "order-by: out of memory");
            goto fail;
        }
    } else if (compile_order(&c, order_by, &order, out, &rest_at)) {
        goto fail;
    }
    if (out->order_metric_bind) {
        out->order_rest = strdup(order.p + rest_at);
        if (!out->order_rest) {
            filter_i_cerr(&c, STORE_E_INTERNAL, "order-by: out of memory");
            goto fail;
        }
    }
    if (!c.top_or) {
        memcpy(out->drivers, c.drivers, sizeof c.drivers);
        out->n_drivers = c.n_drivers;
    }
    out->where = where.p;
    out->order = order.p;
    out->binds = c.binds;
    out->n_binds = c.n_binds;
    return 0;
fail:
    free(where.p);
    free(order.p);
    free(out->order_rest);
    memset(out, 0, sizeof *out);
    for (i = 0; i < c.n_binds; i++)
        free(c.binds[i].s);
    free(c.binds);
    return c.rc ? c.rc : STORE_E_INTERNAL;
}

void filter_sql_free(struct filter_sql *f)
{
    int i;
    if (!f)
        return;
    free(f->where);
    free(f->order);
    free(f->order_rest);
    for (i = 0; i < f->n_binds; i++)
        free(f->binds[i].s);
    free(f->binds);
    memset(f, 0, sizeof *f);
}
