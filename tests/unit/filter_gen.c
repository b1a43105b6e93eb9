/*
 * filter_gen.c: random filters and orders for test_filter_property.c: a
 * syntax tree (filter_model.h) of 1-5 comparisons nested AND/OR/NOT to
 * depth 3, drawn from the keys and values the runs have, and its text in a
 * random spelling (prefix aliases, keyword case, quoting, redundant
 * parentheses). Everything comes from the seeded generator: a case is its
 * (seed, number).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_model.h"

/* literals of the grammar, besides values taken from the runs */
static const char *const metric_lits[] = {"0",   "1",    "-1", "0.5",  "2.5", "-2.5", "1e-3",
                                          "100", "0.25", "3",  ".5",   "1e3", "0.1",  "-0.5",
                                          "2",   "1.5",  "5.", "0.75", "-3",  "-0",   "1E+2"};
static const char *const param_num_lits[] = {"0",     "1",  "2",    "5",    "7",    "10",
                                             "12",    "-3", "007",  "0.1",  "0.01", "1e-3",
                                             "0.001", ".5", "3e-4", "1e-2", "1E-3", "-.5e1"};
static const struct {
    const char *text;
    int64_t ms;
} dur_lits[] = {{"0", 0},        {"500ms", 500},     {"1500", 1500},   {"30s", 30000},
                {"5m", 300000},  {"1m30s", 90000},   {"20m", 1200000}, {"1000000", 1000000},
                {"2h", 7200000}, {"1h30m", 5400000}, {"1d", 86400000}};

/* ---- the generator -------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) void fm_ap(struct gen *g, const char *fmt, ...)
{
    va_list a;
    va_start(a, fmt);
    int n = vsnprintf(g->text + g->len, sizeof g->text - g->len, fmt, a);
    va_end(a);
    cr_assert(n >= 0 && (size_t)n < sizeof g->text - g->len, "filter text too long");
    g->len += (size_t)n;
}

/* a keyword in a random case */
static const char *kw(struct gen *g, const char *upper)
{
    static char buf[8][16];
    static int at;
    char *b = buf[at++ % 8];
    int mode = fm_rnd(&g->s, 3);
    snprintf(b, 16, "%s", upper);
    for (int i = 0; b[i]; i++)
        if (mode == 1 || (mode == 2 && i > 0))
            b[i] = (char)tolower((unsigned char)b[i]);
    return b;
}

void fm_lit_num(struct lit *l, const char *text)
{
    l->kind = L_NUM;
    snprintf(l->text, sizeof l->text, "%s", text);
    l->d = strtod(text, NULL);
}

static void lit_numd(struct lit *l, double d)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", d);
    fm_lit_num(l, b);
}

void fm_lit_str(struct lit *l, const char *s)
{
    l->kind = L_STR;
    snprintf(l->text, sizeof l->text, "%s", s);
}

static const struct mrun *any_run(struct gen *g)
{
    return &g->w->r[fm_rnd(&g->s, g->w->n)];
}

/* a value some run has for param/tag key k (NULL: none found) */
static const char *kv_value(struct gen *g, int kind, int k)
{
    for (int tries = 0; tries < 40; tries++) {
        const struct mrun *r = any_run(g);
        if (kind == T_PARAM && k < NP && r->has_p[k])
            return r->p[k];
        if (kind == T_TAG && k < NT && r->has_t[k])
            return r->t[k];
    }
    return NULL;
}

static void metric_lit(struct gen *g, const struct term *t, struct lit *l)
{
    for (int tries = 0; tries < 40 && t->key < NM && (tries || fm_rnd(&g->s, 2)); tries++) {
        const struct mrun *r = any_run(g);
        struct val v = fm_term_val(g->w, r, t, 0);
        if (!v.null && isfinite(v.d)) {
            lit_numd(l, v.d);
            return;
        }
    }
    fm_lit_num(l, PICK(&g->s, metric_lits));
}

/* a LIKE pattern for value s: exact, prefix%, %suffix, with _ or %, escaped */
static void like_pat(struct gen *g, const char *s, int fold, struct lit *l)
{
    size_t n = strlen(s), cut = n ? (size_t)fm_rnd(&g->s, (int)n + 1) : 0, o = 0;
    int mode = fm_rnd(&g->s, 5);
    char *p = l->text;
    l->kind = L_STR;
    if (mode == 4) {
        snprintf(p, sizeof l->text, "%s", fm_rnd(&g->s, 2) ? "%" : "%e%");
        return;
    }
    if (mode == 2)
        p[o++] = '%';
    for (size_t i = mode == 2 ? cut : 0; i < (mode == 1 ? cut : n) && o < 40; i++) {
        char c = s[i];
        if (mode == 3 && fm_rnd(&g->s, 4) == 0) {
            p[o++] = '_';
            continue;
        }
        if (c == '%' || c == '_')
            p[o++] = '\\';
        if (fold && fm_rnd(&g->s, 2))
            c = (char)(isupper((unsigned char)c) ? tolower((unsigned char)c)
                                                 : toupper((unsigned char)c));
        p[o++] = c;
    }
    if (mode == 1)
        p[o++] = '%';
    p[o] = '\0';
}

static void gen_metric_cmp(struct gen *g, struct node *n)
{
    int x = fm_rnd(&g->s, 100);
    n->t.kind = T_METRIC;
    n->t.key = fm_rnd(&g->s, 100) < 4 ? NM : fm_rnd(&g->s, NM);
    n->t.agg = x < 80 ? A_LAST : x < 90 ? A_MIN : A_MAX;
    x = fm_rnd(&g->s, 100);
    if (x < 70) {
        n->op = fm_rnd(&g->s, 6);
        n->nv = 1;
    } else if (x < 82) {
        n->op = C_IN;
        n->neg = fm_rnd(&g->s, 2);
        n->nv = 1 + fm_rnd(&g->s, MAX_IN);
    } else {
        n->op = C_ISNULL;
        n->neg = fm_rnd(&g->s, 2);
    }
    for (int i = 0; i < n->nv; i++)
        metric_lit(g, &n->t, &n->v[i]);
}

static void kv_lit(struct gen *g, const struct term *t, int as_num, int ordering, struct lit *l)
{
    const char *v = kv_value(g, t->kind, t->key);
    if (!as_num) {
        fm_lit_str(l, v ? v : "zzz");
    } else if (ordering && v && fm_looks_numeric(v) && isfinite(fm_cast_real(v)) &&
               fm_rnd(&g->s, 2)) {
        lit_numd(l, fm_cast_real(v));
    } else if (t->key == 5 && t->kind == T_PARAM && fm_rnd(&g->s, 2)) {
        char b[16];
        snprintf(b, sizeof b, "%d", fm_rnd(&g->s, g->w->n + 10) - 5);
        fm_lit_num(l, b);
    } else {
        fm_lit_num(l, PICK(&g->s, param_num_lits));
    }
}

static void gen_kv_cmp(struct gen *g, struct node *n, int kind)
{
    int nk = kind == T_PARAM ? NP : NT, x = fm_rnd(&g->s, 100);
    n->t.kind = kind;
    n->t.key = fm_rnd(&g->s, 100) < 4 ? nk : fm_rnd(&g->s, nk);
    if (x < 35) {
        n->op = fm_rnd(&g->s, 2) ? C_EQ : C_NE;
        n->nv = 1;
        kv_lit(g, &n->t, fm_rnd(&g->s, 10) < 3, 0, &n->v[0]);
    } else if (x < 65) {
        n->op = C_LT + fm_rnd(&g->s, 4);
        n->nv = 1;
        kv_lit(g, &n->t, fm_rnd(&g->s, 10) < 7, 1, &n->v[0]);
    } else if (x < 75) {
        n->op = C_IN;
        n->neg = fm_rnd(&g->s, 2);
        n->nv = 1 + fm_rnd(&g->s, MAX_IN);
        for (int i = 0; i < n->nv; i++)
            kv_lit(g, &n->t, fm_rnd(&g->s, 10) < 4, 0, &n->v[i]);
    } else if (x < 88) {
        const char *v = kv_value(g, kind, n->t.key);
        n->op = fm_rnd(&g->s, 2) ? C_LIKE : C_ILIKE;
        n->neg = fm_rnd(&g->s, 4) == 0;
        n->nv = 1;
        like_pat(g, v ? v : "q%", n->op == C_ILIKE, &n->v[0]);
    } else {
        n->op = C_ISNULL;
        n->neg = fm_rnd(&g->s, 2);
    }
}

/* a text attribute: every operator, string literals */
static void gen_text_cmp(struct gen *g, struct node *n, const char *(*value)(struct gen *))
{
    int x = fm_rnd(&g->s, 100);
    n->nv = 1;
    if (x < 50) {
        n->op = fm_rnd(&g->s, 6);
        fm_lit_str(&n->v[0], value(g));
    } else if (x < 65) {
        n->op = C_IN;
        n->neg = fm_rnd(&g->s, 2);
        n->nv = 1 + fm_rnd(&g->s, MAX_IN);
        for (int i = 0; i < n->nv; i++)
            fm_lit_str(&n->v[i], value(g));
    } else if (x < 92) {
        n->op = fm_rnd(&g->s, 2) ? C_LIKE : C_ILIKE;
        n->neg = fm_rnd(&g->s, 4) == 0;
        like_pat(g, value(g), n->op == C_ILIKE, &n->v[0]);
    } else {
        n->op = C_ISNULL;
        n->neg = fm_rnd(&g->s, 2);
        n->nv = 0;
    }
}

static const char *v_name(struct gen *g)
{
    return PICK(&g->s, fm_names);
}
static const char *v_user(struct gen *g)
{
    return PICK(&g->s, fm_users);
}
static const char *v_exp(struct gen *g)
{
    return PICK(&g->s, fm_exp_names);
}
static const char *v_hex(struct gen *g)
{
    static char b[40];
    snprintf(b, sizeof b, "%s", any_run(g)->hex);
    if (fm_rnd(&g->s, 3) == 0)
        for (char *c = b; *c; c++)
            *c = (char)toupper((unsigned char)*c);
    if (fm_rnd(&g->s, 2)) /* a prefix: LIKE 'ab%' then reads it as one */
        b[1 + fm_rnd(&g->s, 3)] = '\0';
    return b;
}
static const char *v_life(struct gen *g)
{
    return fm_rnd(&g->s, 2) ? "active" : "deleted";
}

static void gen_time_cmp(struct gen *g, struct node *n, int kind)
{
    const struct mrun *r = any_run(g);
    char b[40];
    int x = fm_rnd(&g->s, 100);
    n->op = fm_rnd(&g->s, 6);
    n->nv = 1;
    if (kind == T_END && x < 25) {
        n->op = C_ISNULL;
        n->neg = fm_rnd(&g->s, 2);
        n->nv = 0;
        return;
    }
    if (kind == T_DUR && x < 40) {
        int d = fm_rnd(&g->s, COUNT(dur_lits));
        n->v[0].kind = L_DUR;
        snprintf(n->v[0].text, sizeof n->v[0].text, "%s", dur_lits[d].text);
        n->v[0].ms = dur_lits[d].ms;
        return;
    }
    if (kind != T_DUR && x < 5) { /* "1d": since a day ago, after every run here */
        n->v[0].kind = L_DUR;
        snprintf(n->v[0].text, sizeof n->v[0].text, "1d");
        n->v[0].ms = 86400000;
        return;
    }
    int64_t v = kind == T_START ? r->start : kind == T_END ? r->end : r->end - r->start;
    if (kind != T_START && !r->end)
        v = 1000000 + fm_rnd(&g->s, 2000000);
    snprintf(b, sizeof b, "%lld%s", (long long)v, x < 15 ? ".5" : "");
    fm_lit_num(&n->v[0], b);
    if (x >= 15 && x < 25) {
        n->op = C_IN;
        n->neg = fm_rnd(&g->s, 2);
        lit_numd(&n->v[1], (double)any_run(g)->start);
        n->nv = kind == T_START ? 2 : 1;
    }
}

static void gen_attr_cmp(struct gen *g, struct node *n)
{
    int x = fm_rnd(&g->s, g->lifecycle ? 115 : 100);
    if (x < 15) {
        n->t.kind = T_STATUS;
        x = fm_rnd(&g->s, 100);
        n->op = x < 60 ? (fm_rnd(&g->s, 2) ? C_EQ : C_NE) : x < 90 ? C_IN : C_ISNULL;
        n->neg = fm_rnd(&g->s, 2);
        n->nv = n->op == C_ISNULL ? 0 : n->op == C_IN ? 1 + fm_rnd(&g->s, 3) : 1;
        for (int i = 0; i < n->nv; i++) {
            char b[16];
            snprintf(b, sizeof b, "%s", fm_status_names[1 + fm_rnd(&g->s, 4)]);
            if (fm_rnd(&g->s, 2))
                fm_lower(b);
            fm_lit_str(&n->v[i], b);
        }
    } else if (x < 30) {
        n->t.kind = T_NAME;
        gen_text_cmp(g, n, v_name);
    } else if (x < 40) {
        n->t.kind = T_USER;
        gen_text_cmp(g, n, v_user);
    } else if (x < 50) {
        n->t.kind = T_EXP;
        gen_text_cmp(g, n, v_exp);
    } else if (x < 90) {
        n->t.kind = x < 65 ? T_START : x < 80 ? T_END : T_DUR;
        gen_time_cmp(g, n, n->t.kind);
    } else if (x < 100) {
        n->t.kind = T_RUNID;
        gen_text_cmp(g, n, v_hex);
    } else {
        n->t.kind = T_LIFE;
        gen_text_cmp(g, n, v_life);
        g->named_lifecycle = 1;
    }
}

static int new_node(struct gen *g, int kind, int a, int b)
{
    cr_assert(g->nn < MAX_NODES);
    struct node *n = &g->nodes[g->nn];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->a = a;
    n->b = b;
    return g->nn++;
}

static int gen_leaf(struct gen *g)
{
    int id = new_node(g, N_CMP, 0, 0), x = fm_rnd(&g->s, 100);
    struct node *n = &g->nodes[id];
    if (x < 35)
        gen_metric_cmp(g, n);
    else if (x < 65)
        gen_kv_cmp(g, n, T_PARAM);
    else if (x < 77)
        gen_kv_cmp(g, n, T_TAG);
    else
        gen_attr_cmp(g, n);
    return id;
}

/* a tree of `terms` comparisons; below depth 3 one flat AND or OR chain */
static int gen_tree(struct gen *g, int terms, int depth)
{
    int id;
    if (terms == 1) {
        id = gen_leaf(g);
    } else if (depth >= 3) {
        int op = fm_rnd(&g->s, 2) ? N_AND : N_OR;
        id = gen_leaf(g);
        while (--terms)
            id = new_node(g, op, id, gen_leaf(g));
    } else {
        int k = 1 + fm_rnd(&g->s, terms - 1);
        int a = gen_tree(g, k, depth + 1), b = gen_tree(g, terms - k, depth + 1);
        id = new_node(g, fm_rnd(&g->s, 100) < (depth ? 50 : 70) ? N_AND : N_OR, a, b);
    }
    if (depth < 3 && fm_rnd(&g->s, 100) < 12)
        id = new_node(g, N_NOT, id, 0);
    return id;
}

/* ---- printing ------------------------------------------------------------------- */

static void print_key(struct gen *g, const char *k)
{
    int bare = fm_rnd(&g->s, 10) != 0;
    for (const char *c = k; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("_-./:", *c))
            bare = 0;
    if (bare)
        fm_ap(g, "%s", k);
    else if (fm_rnd(&g->s, 2))
        fm_ap(g, "`%s`", k);
    else
        fm_ap(g, "\"%s\"", k);
}

static void print_string(struct gen *g, const char *s)
{
    char q = fm_rnd(&g->s, 2) ? '\'' : '"';
    fm_ap(g, "%c", q);
    for (; *s; s++) {
        if (*s == q)
            fm_ap(g, "%c", fm_rnd(&g->s, 2) ? q : '\\');
        fm_ap(g, "%c", *s);
    }
    fm_ap(g, "%c", q);
}

void fm_print_term(struct gen *g, const struct term *t)
{
    static const char *const mp[] = {"metrics", "metric", "METRICS"};
    static const char *const pp[] = {"params", "param", "parameter", "parameters", "Params"};
    static const char *const tp[] = {"tags", "tag", "TAGS"};
    static const char *const ap_[] = {"attributes.", "attribute.", "attr.", "run.", "", "", ""};
    static const char *const attr[] = {"status",   "name",     "user",   "experiment", "start_time",
                                       "end_time", "duration", "run_id", "lifecycle"};
    switch (t->kind) {
    case T_METRIC:
        if (t->agg != A_LAST)
            fm_ap(g, "%s(", kw(g, t->agg == A_MIN ? "MIN" : "MAX"));
        fm_ap(g, "%s.", PICK(&g->s, mp));
        print_key(g, fm_mkeys[t->key]);
        if (t->agg != A_LAST)
            fm_ap(g, ")");
        break;
    case T_PARAM:
        fm_ap(g, "%s.", PICK(&g->s, pp));
        print_key(g, fm_pkeys[t->key]);
        break;
    case T_TAG:
        fm_ap(g, "%s.", PICK(&g->s, tp));
        print_key(g, fm_tkeys[t->key]);
        break;
    default: {
        const char *a = attr[t->kind - T_STATUS];
        int x = fm_rnd(&g->s, 4);
        if (t->kind == T_NAME && x == 0)
            a = "run_name";
        if (t->kind == T_USER && x == 0)
            a = "user_id";
        fm_ap(g, "%s%s", PICK(&g->s, ap_), a);
    }
    }
}

static void print_lit(struct gen *g, const struct lit *l)
{
    if (l->kind == L_STR)
        print_string(g, l->text);
    else
        fm_ap(g, "%s", l->text);
}

static void print_cmp(struct gen *g, const struct node *n)
{
    static const char *const ops[][2] = {{"=", "=="},  {"!=", "<>"}, {"<", "<"},
                                         {"<=", "<="}, {">", ">"},   {">=", ">="}};
    fm_print_term(g, &n->t);
    if (n->op <= C_GE) {
        fm_ap(g, " %s ", ops[n->op][fm_rnd(&g->s, 2)]);
        print_lit(g, &n->v[0]);
    } else if (n->op == C_IN) {
        fm_ap(g, " %s%s (", n->neg ? "NOT " : "", kw(g, "IN"));
        for (int i = 0; i < n->nv; i++) {
            fm_ap(g, "%s", i ? ", " : "");
            print_lit(g, &n->v[i]);
        }
        fm_ap(g, ")");
    } else if (n->op == C_ISNULL) {
        fm_ap(g, " %s %s%s", kw(g, "IS"), n->neg ? "NOT " : "", kw(g, "NULL"));
    } else {
        fm_ap(g, " %s%s ", n->neg ? "NOT " : "", kw(g, n->op == C_LIKE ? "LIKE" : "ILIKE"));
        print_lit(g, &n->v[0]);
    }
}

/* ctx: 0 an OR's operand or the top, 1 an AND's, 2 a NOT's */
void fm_print_node(struct gen *g, int id, int ctx)
{
    const struct node *n = &g->nodes[id];
    int paren =
        (n->kind == N_OR && ctx >= 1) || (n->kind == N_AND && ctx == 2) || fm_rnd(&g->s, 100) < 8;
    if (paren)
        fm_ap(g, "(");
    if (n->kind == N_AND || n->kind == N_OR) {
        fm_print_node(g, n->a, n->kind == N_AND);
        fm_ap(g, " %s ", kw(g, n->kind == N_AND ? "AND" : "OR"));
        fm_print_node(g, n->b, n->kind == N_AND);
    } else if (n->kind == N_NOT) {
        fm_ap(g, "%s ", kw(g, "NOT"));
        fm_print_node(g, n->a, 2);
    } else {
        print_cmp(g, n);
    }
    if (paren)
        fm_ap(g, ")");
}

static void gen_order(struct gen *g, struct query *q)
{
    int n = fm_rnd(&g->s, 4);
    size_t save = g->len;
    static const int attrs[] = {T_START, T_END, T_DUR, T_NAME, T_STATUS, T_EXP, T_USER, T_RUNID};
    g->len = 0;
    g->text[0] = '\0';
    q->order.n = n;
    for (int i = 0; i < n; i++) {
        struct term *t = &q->order.t[i];
        int x = fm_rnd(&g->s, 100), d = fm_rnd(&g->s, 5);
        memset(t, 0, sizeof *t);
        if (x < (i ? 30 : 55)) {
            t->kind = T_METRIC;
            t->key = fm_rnd(&g->s, 50) ? fm_rnd(&g->s, NM) : NM;
            t->agg = fm_rnd(&g->s, 5) ? A_LAST : fm_rnd(&g->s, 2) ? A_MIN : A_MAX;
        } else if (x < 70) {
            t->kind = T_PARAM;
            t->key = fm_rnd(&g->s, NP);
        } else if (x < 80) {
            t->kind = T_TAG;
            t->key = fm_rnd(&g->s, NT);
        } else {
            t->kind = attrs[fm_rnd(&g->s, COUNT(attrs))];
        }
        q->order.desc[i] = d >= 3;
        fm_ap(g, "%s", i ? ", " : "");
        fm_print_term(g, t);
        fm_ap(g, "%s",
              d == 0   ? ""
              : d == 1 ? " ASC"
              : d == 2 ? " asc"
              : d == 3 ? " DESC"
                       : " desc");
    }
    snprintf(q->order_text, sizeof q->order_text, "%s", g->text);
    g->len = save;
}

/* Case `casen` of seed `seed`: a random filter, order, limit and experiments. */
void fm_gen_query(const struct world *w, uint64_t seed, int casen, int lifecycle, struct query *q)
{
    static struct gen g;
    static const int limits[] = {0, 0, 0, 1, 10, 10, 100, 3, 1000};
    memset(&g, 0, sizeof g);
    memset(q, 0, sizeof *q);
    g.s = fm_mix64(seed ^ fm_mix64((uint64_t)casen + 1));
    g.w = w;
    g.lifecycle = lifecycle;
    q->root = fm_rnd(&g.s, 20) ? gen_tree(&g, 1 + fm_rnd(&g.s, 5), 0) : -1;
    if (q->root >= 0)
        fm_print_node(&g, q->root, 0);
    snprintf(q->filter, sizeof q->filter, "%s", g.text);
    memcpy(q->nodes, g.nodes, sizeof q->nodes);
    q->named_lifecycle = g.named_lifecycle;
    gen_order(&g, q);
    q->limit = limits[fm_rnd(&g.s, COUNT(limits))];
    q->exps = fm_rnd(&g.s, 2) ? 0 : fm_rnd(&g.s, 4);
}
