/*
 * filter_term.c: the filter language's operands, for filter.c's parser:
 * bind parameters (every value reaches SQL as a ?N, never as text), terms
 * (metrics.K, feedback.NAME, params.K, tags.K with min()/max(), and run attributes) and the
 * SQL each compiles to, values checked against their term's type (numbers,
 * durations like 5m, quoted text, statuses), and LIKE patterns turned into
 * GLOB ones. The grammar and the expression parser are in filter.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "filter_internal.h"

/* ---- bind parameters ------------------------------------------------------- */

/* Appends a bind; returns its 1-based index, or -1. Text binds take
 * ownership of b.s (freed here on failure). */
static int bind_add(struct parser *p, size_t pos, struct filter_bind b)
{
    struct cstate *c = p->c;
    if (c->n_binds >= FILTER_MAX_BINDS) {
        free(b.s);
        return filter_i_perr(p, pos, "more than %d values and keys (limit %d)", FILTER_MAX_BINDS,
                             FILTER_MAX_BINDS);
    }
    if (c->n_binds == c->cap_binds) {
        int cap = c->cap_binds ? c->cap_binds * 2 : 16;
        struct filter_bind *nb = realloc(c->binds, (size_t)cap * sizeof *nb);
        if (!nb) {
            free(b.s);
            return filter_i_cerr(c, STORE_E_INTERNAL, "%s: out of memory", p->ctx);
        }
        c->binds = nb;
        c->cap_binds = cap;
    }
    c->binds[c->n_binds++] = b;
    return c->n_binds;
}

int filter_i_bind_int(struct parser *p, size_t pos, int64_t v)
{
    struct filter_bind b = {.type = FILTER_BIND_INT, .i = v};
    return bind_add(p, pos, b);
}

int filter_i_bind_double(struct parser *p, size_t pos, double v)
{
    struct filter_bind b = {.type = FILTER_BIND_DOUBLE, .d = v};
    return bind_add(p, pos, b);
}

int filter_i_bind_text_take(struct parser *p, size_t pos, char *s)
{
    struct filter_bind b = {.type = FILTER_BIND_TEXT, .s = s};
    return bind_add(p, pos, b);
}

/* Decodes the quoted (or bare) span into a new NUL-terminated string. */
char *filter_i_dup_unquoted(struct parser *p, size_t kpos, size_t klen, char q, size_t *out_len)
{
    char *s = malloc(klen + 1);
    size_t n;
    if (!s) {
        filter_i_cerr(p->c, STORE_E_INTERNAL, "%s: out of memory", p->ctx);
        return NULL;
    }
    n = filter_i_unquote(p->s + kpos, klen, q, s);
    s[n] = '\0';
    if (out_len)
        *out_len = n;
    return s;
}

static int bind_now(struct parser *p, size_t pos)
{
    struct cstate *c = p->c;
    if (!c->now_bind) {
        int idx = filter_i_bind_int(p, pos, c->now_ms);
        if (idx < 0)
            return -1;
        c->now_bind = idx;
    }
    return c->now_bind;
}

/* ---- terms ------------------------------------------------------------------ */

static const struct {
    const char *name;
    int kind;
} attributes[] = {
    {"status", K_STATUS},    {"name", K_NAME},           {"run_name", K_NAME},
    {"user", K_USER},        {"user_id", K_USER},        {"experiment", K_EXPERIMENT},
    {"start_time", K_START}, {"end_time", K_END},        {"duration", K_DURATION},
    {"run_id", K_RUNID},     {"lifecycle", K_LIFECYCLE},
};

#define ATTRIBUTE_LIST                                                                             \
    "status, name, user, experiment, start_time, end_time, duration, run_id, lifecycle"

static const char *const status_names[] = {NULL, "RUNNING", "FINISHED", "FAILED", "KILLED"};

int filter_i_kind_is_text(int kind)
{
    return kind == K_PARAM || kind == K_TAG || kind == K_NAME || kind == K_USER ||
           kind == K_EXPERIMENT || kind == K_RUNID || kind == K_LIFECYCLE;
}

static int lookup_attribute(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < sizeof attributes / sizeof attributes[0]; i++)
        if (filter_i_span_is(s, n, attributes[i].name))
            return attributes[i].kind;
    return -1;
}

/* Checks a decoded key and binds it. */
static int bind_key(struct parser *p, const struct token *t)
{
    size_t n, i;
    char *key = filter_i_dup_unquoted(p, t->kpos, t->klen, t->quote, &n);
    if (!key)
        return -1;
    if (n == 0 || n > FILTER_MAX_KEY) {
        free(key);
        return filter_i_perr(p, t->kpos, "a key must be 1 to %d bytes long (this one is %zu)",
                             FILTER_MAX_KEY, n);
    }
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch < 0x20 || ch == 0x7f) {
            free(key);
            return filter_i_perr(p, t->kpos, "a key may not contain control characters");
        }
    }
    return filter_i_bind_text_take(p, t->kpos, key);
}

/* term: an attribute, prefix.key, or min/max(metrics.key). Consumes it. */
int filter_i_parse_term(struct parser *p, struct term *out)
{
    struct token t = p->tok;
    char d[64];
    memset(out, 0, sizeof *out);
    out->pos = t.pos;
    out->agg = AGG_LAST;

    if (t.type == TK_WORD) {
        const char *w = p->s + t.pos;
        if (filter_i_span_is(w, t.len, "min") || filter_i_span_is(w, t.len, "max")) {
            size_t save = p->pos;
            if (filter_i_lex(p))
                return -1;
            if (p->tok.type == TK_LPAREN) {
                out->agg = filter_i_span_is(w, t.len, "min") ? AGG_MIN : AGG_MAX;
                if (filter_i_lex(p))
                    return -1;
                struct token k = p->tok;
                if (k.type != TK_DOTTED || !(filter_i_span_is(p->s + k.pos, k.plen, "metrics") ||
                                             filter_i_span_is(p->s + k.pos, k.plen, "metric")))
                    return filter_i_perr(p, k.pos,
                                         "%.*s() takes a metric: expected metrics.KEY but "
                                         "found %s",
                                         (int)t.len, w, filter_i_tok_desc(p, &k, d, sizeof d));
                out->kind = K_METRIC;
                out->key_bind = bind_key(p, &k);
                if (out->key_bind < 0 || filter_i_lex(p))
                    return -1;
                if (p->tok.type != TK_RPAREN)
                    return filter_i_perr(p, p->tok.pos, "expected ')' after %.*s(%.*s but found %s",
                                         (int)t.len, w, (int)(k.len > 60 ? 60 : k.len),
                                         p->s + k.pos, filter_i_tok_desc(p, &p->tok, d, sizeof d));
                out->len = p->tok.pos + 1 - t.pos;
                return filter_i_lex(p);
            }
            p->pos = save; /* not a function: fall through to the attribute check */
            p->tok = t;
        }
        out->kind = lookup_attribute(w, t.len);
        if (out->kind < 0)
            return filter_i_perr(p, t.pos,
                                 "unknown attribute \"%.*s\" (expected one of " ATTRIBUTE_LIST ")",
                                 (int)(t.len > 40 ? 40 : t.len), w);
        out->len = t.len;
        if (out->kind == K_LIFECYCLE)
            p->c->lifecycle = 1;
        if (out->kind == K_DURATION && bind_now(p, t.pos) < 0)
            return -1;
        return filter_i_lex(p);
    }
    if (t.type == TK_DOTTED) {
        const char *pre = p->s + t.pos;
        size_t pl = t.plen;
        out->len = t.len;
        if (filter_i_span_is(pre, pl, "metrics") || filter_i_span_is(pre, pl, "metric"))
            out->kind = K_METRIC;
        else if (filter_i_span_is(pre, pl, "feedback"))
            out->kind = K_FEEDBACK;
        else if (filter_i_span_is(pre, pl, "params") || filter_i_span_is(pre, pl, "param") ||
                 filter_i_span_is(pre, pl, "parameters") || filter_i_span_is(pre, pl, "parameter"))
            out->kind = K_PARAM;
        else if (filter_i_span_is(pre, pl, "tags") || filter_i_span_is(pre, pl, "tag"))
            out->kind = K_TAG;
        else if (filter_i_span_is(pre, pl, "attributes") ||
                 filter_i_span_is(pre, pl, "attribute") || filter_i_span_is(pre, pl, "attr") ||
                 filter_i_span_is(pre, pl, "run")) {
            char name[32];
            size_t n = 0;
            if (t.klen < sizeof name)
                n = filter_i_unquote(p->s + t.kpos, t.klen, t.quote, name);
            out->kind = t.klen < sizeof name ? lookup_attribute(name, n) : -1;
            if (out->kind < 0)
                return filter_i_perr(
                    p, t.kpos, "unknown attribute \"%.*s\" (expected one of " ATTRIBUTE_LIST ")",
                    (int)(t.klen > 40 ? 40 : t.klen), p->s + t.kpos);
            if (out->kind == K_LIFECYCLE)
                p->c->lifecycle = 1;
            if (out->kind == K_DURATION && bind_now(p, t.pos) < 0)
                return -1;
            return filter_i_lex(p);
        } else
            return filter_i_perr(p, t.pos,
                                 "unknown prefix \"%.*s\" (expected metrics, feedback, params, "
                                 "tags or attributes)",
                                 (int)(pl > 40 ? 40 : pl), pre);
        out->key_bind = bind_key(p, &t);
        if (out->key_bind < 0)
            return -1;
        if (out->kind == K_FEEDBACK)
            p->c->binds[out->key_bind - 1].feedback_key = 1;
        return filter_i_lex(p);
    }
    return filter_i_perr(p, t.pos,
                         "expected a term (status, name, user, experiment, start_time, "
                         "end_time, duration, run_id, metrics.KEY, feedback.NAME, params.KEY "
                         "or tags.KEY) but found %s",
                         filter_i_tok_desc(p, &t, d, sizeof d));
}

/* Writes the SQL expression of term t. `numeric` selects the CAST form of a
 * param or tag (see the comparison rules above). */
void filter_i_emit_term(struct parser *p, struct sbuf *b, const struct term *t, int numeric)
{
    static const char *const agg_col[] = {"last", "min", "max"};
    const char *tbl = t->kind == K_PARAM ? "params" : "tags";
    const char *a = t->kind == K_PARAM ? "p" : "t";
    char tmp[64];

    switch (t->kind) {
    case K_METRIC:
        filter_i_sb_str(b, "(SELECT s.");
        filter_i_sb_str(b, agg_col[t->agg]);
        filter_i_sb_str(b, " FROM metric_summary s JOIN metric_keys k ON k.id = s.key_id"
                           " WHERE s.run = r.id AND k.name = ");
        filter_i_sb_param(b, t->key_bind);
        filter_i_sb_str(b, ")");
        break;
    case K_FEEDBACK:
        /* numbers: the mean; booleans: the true ratio; NULL for labels (the
         * store refuses a filter naming a label name before it runs) */
        filter_i_sb_str(b, "(SELECT s.score FROM feedback_summary s JOIN feedback_names k"
                           " ON k.id = s.name_id WHERE s.run = r.id AND k.name = ");
        filter_i_sb_param(b, t->key_bind);
        filter_i_sb_str(b, ")");
        break;
    case K_PARAM:
    case K_TAG:
        if (numeric)
            snprintf(tmp, sizeof tmp, "(SELECT CAST(%s.value AS REAL)", a);
        else
            snprintf(tmp, sizeof tmp, "(SELECT %s.value", a);
        filter_i_sb_str(b, tmp);
        snprintf(tmp, sizeof tmp, " FROM %s %s WHERE %s.run = r.id AND %s.key = ", tbl, a, a, a);
        filter_i_sb_str(b, tmp);
        filter_i_sb_param(b, t->key_bind);
        if (numeric) {
            snprintf(tmp, sizeof tmp, " AND %s.value GLOB '[0-9+.-]*'", a);
            filter_i_sb_str(b, tmp);
            snprintf(tmp, sizeof tmp, " AND %s.value GLOB '*[0-9]*'", a);
            filter_i_sb_str(b, tmp);
            snprintf(tmp, sizeof tmp, " AND %s.value NOT GLOB '*[^0-9eE.+-]*'", a);
            filter_i_sb_str(b, tmp);
        }
        filter_i_sb_str(b, ")");
        break;
    case K_STATUS:
        filter_i_sb_str(b, "r.status");
        break;
    case K_NAME:
        filter_i_sb_str(b, "r.name");
        break;
    case K_USER:
        filter_i_sb_str(b, "r.user");
        break;
    case K_EXPERIMENT:
        filter_i_sb_str(b, "e.name");
        break;
    case K_START:
        filter_i_sb_str(b, "r.start_ms");
        break;
    case K_END:
        filter_i_sb_str(b, "NULLIF(r.end_ms, 0)");
        break;
    case K_DURATION:
        filter_i_sb_str(b, "(COALESCE(NULLIF(r.end_ms, 0), ");
        filter_i_sb_param(b, p->c->now_bind);
        filter_i_sb_str(b, ") - r.start_ms)");
        break;
    case K_RUNID:
        filter_i_sb_str(b, "r.hex");
        break;
    case K_LIFECYCLE:
        filter_i_sb_str(b, "r.lifecycle");
        break;
    }
}

/* ---- values ------------------------------------------------------------------ */

/* The C form of the GLOB tests filter_i_emit_term writes for a numeric
 * param or tag (and migration 9 and Q_PARAM_PUT store as params.num). */
int filter_looks_numeric(const char *s)
{
    int digit = 0;
    if (!s || !*s || !((*s >= '0' && *s <= '9') || *s == '+' || *s == '.' || *s == '-'))
        return 0;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9')
            digit = 1;
        else if (!(*s == 'e' || *s == 'E' || *s == '.' || *s == '+' || *s == '-'))
            return 0;
    }
    return digit;
}

/* Lowercases ASCII in place (run ids are stored lowercase). */
void filter_i_ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* Reads one value for term t and binds it. `ordering` is set for < <= > >=.
 * `after` names what preceded the value, for messages. On success *numeric
 * tells whether a param/tag value was bound as a number. Consumes the value. */
int filter_i_parse_value(struct parser *p, const struct term *t, int ordering, const char *after,
                         int *numeric)
{
    struct token v = p->tok;
    struct cstate *c = p->c;
    char d[64];
    int idx = -1;
    const int tl = (int)(t->len > 60 ? 60 : t->len);
    const char *tn = p->s + t->pos;

    *numeric = 0;
    if (v.type == TK_WORD && filter_i_span_is(p->s + v.pos, v.len, "null"))
        return filter_i_perr(p, v.pos, "NULL can only follow IS (write IS NULL or IS NOT NULL)");
    if (v.type == TK_WORD)
        return filter_i_perr(
            p, v.pos, "expected a value after %s but found %s (quote strings: '%.*s')", after,
            filter_i_tok_desc(p, &v, d, sizeof d), (int)(v.len > 40 ? 40 : v.len), p->s + v.pos);
    if (v.type != TK_STRING && v.type != TK_NUMBER && v.type != TK_DURATION)
        return filter_i_perr(p, v.pos, "expected a value after %s but found %s", after,
                             filter_i_tok_desc(p, &v, d, sizeof d));

    switch (t->kind) {
    case K_METRIC:
    case K_FEEDBACK:
        if (v.type != TK_NUMBER)
            return filter_i_perr(p, v.pos, "expected a number to compare with %.*s but found %s",
                                 tl, tn, filter_i_tok_desc(p, &v, d, sizeof d));
        idx = filter_i_bind_double(p, v.pos, v.d);
        break;
    case K_PARAM:
    case K_TAG:
        if (v.type == TK_DURATION)
            return filter_i_perr(p, v.pos,
                                 "a duration compares only with duration, start_time or "
                                 "end_time, not %.*s",
                                 tl, tn);
        if (v.type == TK_NUMBER && ordering) {
            *numeric = 1;
            idx = filter_i_bind_double(p, v.pos, v.d);
        } else if (v.type == TK_NUMBER) {
            /* compared as the text it was written as */
            char *s = filter_i_dup_unquoted(p, v.pos, v.len, 0, NULL);
            idx = s ? filter_i_bind_text_take(p, v.pos, s) : -1;
        } else {
            char *s = filter_i_dup_unquoted(p, v.kpos, v.klen, v.quote, NULL);
            idx = s ? filter_i_bind_text_take(p, v.pos, s) : -1;
        }
        break;
    case K_STATUS: {
        char name[16];
        size_t n, i;
        int code = 0;
        if (v.type != TK_STRING)
            return filter_i_perr(p, v.pos,
                                 "expected a status name (RUNNING, FINISHED, FAILED or "
                                 "KILLED) in quotes but found %s",
                                 filter_i_tok_desc(p, &v, d, sizeof d));
        if (v.klen < sizeof name) {
            n = filter_i_unquote(p->s + v.kpos, v.klen, v.quote, name);
            for (i = 1; i <= 4; i++)
                if (filter_i_span_is(name, n, status_names[i]))
                    code = (int)i;
        }
        if (!code)
            return filter_i_perr(p, v.pos,
                                 "unknown status %s (expected one of RUNNING, FINISHED, "
                                 "FAILED, KILLED)",
                                 filter_i_tok_desc(p, &v, d, sizeof d));
        idx = filter_i_bind_int(p, v.pos, code);
        break;
    }
    case K_NAME:
    case K_USER:
    case K_EXPERIMENT:
    case K_RUNID:
    case K_LIFECYCLE: {
        char *s;
        if (v.type != TK_STRING)
            return filter_i_perr(p, v.pos,
                                 "expected a string in quotes to compare with %.*s but found %s",
                                 tl, tn, filter_i_tok_desc(p, &v, d, sizeof d));
        s = filter_i_dup_unquoted(p, v.kpos, v.klen, v.quote, NULL);
        if (s && t->kind == K_RUNID)
            filter_i_ascii_lower(s);
        idx = s ? filter_i_bind_text_take(p, v.pos, s) : -1;
        break;
    }
    case K_START:
    case K_END:
    case K_DURATION:
        if (v.type == TK_STRING)
            return filter_i_perr(p, v.pos,
                                 "expected a number of milliseconds or a duration (such as "
                                 "5m) to compare with %.*s but found %s",
                                 tl, tn, filter_i_tok_desc(p, &v, d, sizeof d));
        if (v.type == TK_DURATION && t->kind != K_DURATION) {
            int64_t at;
            if (__builtin_sub_overflow(c->now_ms, v.i, &at))
                return filter_i_perr(p, v.pos, "duration out of range");
            idx = filter_i_bind_int(p, v.pos, at);
        } else if (v.type == TK_DURATION || v.is_int) {
            idx = filter_i_bind_int(p, v.pos, v.i);
        } else {
            idx = filter_i_bind_double(p, v.pos, v.d);
        }
        break;
    }
    if (idx < 0)
        return -1;
    return filter_i_lex(p);
}

/* ---- LIKE patterns ------------------------------------------------------------ */

/* Translates a LIKE pattern (escape '\') into an equivalent case-sensitive
 * GLOB pattern; a new string, or NULL with *bad set when the pattern ends in
 * a lone escape. */
char *filter_i_like_to_glob(const char *pat, int *bad)
{
    size_t n = strlen(pat), i, o = 0;
    char *g = malloc(3 * n + 1);
    *bad = 0;
    if (!g)
        return NULL;
    for (i = 0; i < n; i++) {
        char ch = pat[i];
        if (ch == '%') {
            g[o++] = '*';
            continue;
        }
        if (ch == '_') {
            g[o++] = '?';
            continue;
        }
        if (ch == '\\') {
            if (++i == n) {
                free(g);
                *bad = 1;
                return NULL;
            }
            ch = pat[i];
        }
        if (ch == '*' || ch == '?' || ch == '[') {
            g[o++] = '[';
            g[o++] = ch;
            g[o++] = ']';
        } else {
            g[o++] = ch;
        }
    }
    g[o] = '\0';
    return g;
}
