/*
 * test_filter_property.c: results at scale are the same as at small scale
 * (issue 17). A store of a few thousand runs with random params, tags and
 * metrics is searched with random filters and orders, and every answer of
 * store_run_list is held to a plain evaluation in C of the same filter over
 * the same runs: the same runs, in the same order, the same first N with a
 * limit. Whatever plan the store's planner picks (a scan, a driving term's
 * index, the order's index), the answer must be the model's.
 *
 * The model is this file's own reading of the language (storage/filter.c's
 * header comment, filter.h, README "track runs"):
 *   - SQL three-valued logic: a comparison with a missing value is unknown,
 *     NOT unknown is unknown, a run matches when the whole filter is true;
 *   - metrics.K the last value, min()/max() the summary's over non-NaN
 *     points; a NaN last value is stored as NULL (store_core.c), so it is
 *     missing, and a series of NaN only has no min or max;
 *   - params and tags are text; against a bare number, < <= > >= compare
 *     CAST(value AS REAL) of values that look numeric (others are missing),
 *     and = != IN compare the number as the text it was written as;
 *   - LIKE is case-sensitive, ILIKE folds ASCII case, backslash escapes;
 *   - an order term sorts missing values last in both directions; ties go
 *     to the later start, then the newer row;
 *   - deleted runs are left out unless the filter names lifecycle.
 *
 * The filters come from a grammar of terms over the generated keys, nested
 * AND/OR/NOT to depth 3 with 1-5 comparisons, in random spellings. Every
 * case derives from (seed, case number), both printed on a failure with the
 * filter, order, limit and experiments; TRACK_PROP_CASE=N runs case N alone.
 * A disagreement is reported with the first differing position, whether a
 * forced scan agrees with the store or with the model, and the store's plan.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter_model.h"

/* ---- one case: the store's answer against the model's ------------------------------ */

static int got_cb(void *ctx, const struct store_run *r)
{
    struct got *g = ctx;
    int i = r->id[12] << 24 | r->id[13] << 16 | r->id[14] << 8 | r->id[15];
    if (g->n >= NRUNS || i < 0 || i >= NRUNS)
        g->bad = 1;
    else
        g->idx[g->n++] = i;
    return 0;
}

static int store_list(const struct world *w, const struct query *q, int force_scan, struct got *got,
                      char *plan, size_t plan_cap)
{
    const char *both[] = {"exp-a", "exp-b", NULL}, *a[] = {"exp-a", NULL}, *b[] = {"exp-b", NULL};
    struct store_run_query sq = {.experiments = q->exps == 3   ? both
                                                : q->exps == 1 ? a
                                                : q->exps == 2 ? b
                                                               : NULL,
                                 .filter = q->root >= 0 ? q->filter : NULL,
                                 .order_by = q->order.n ? q->order_text : NULL,
                                 .limit = q->limit,
                                 .force_scan = force_scan};
    got->n = got->bad = 0;
    if (plan) {
        plan[0] = '\0';
        store_run_list_plan(w->st, &sq, plan, plan_cap, &fm_err);
    }
    return store_run_list(w->st, &sq, got_cb, got, &fm_err);
}

static int same(const int *m, int mn, const struct got *g)
{
    if (g->bad || g->n != mn)
        return 0;
    for (int i = 0; i < mn; i++)
        if (m[i] != g->idx[i])
            return 0;
    return 1;
}

/* Runs q on the store and the model; logs and counts a disagreement. */
static void check_query(const struct world *w, const struct query *q, uint64_t seed, int casen,
                        struct stats *st)
{
    static int model[NRUNS];
    static struct got got, scan;
    char plan[4096], msg[4096];
    int mn = fm_model_list(w, q, model), rc = store_list(w, q, 0, &got, plan, sizeof plan);
    int matches = mn, active = 0;

    st->cases++;
    for (int i = 0; i < w->n; i++)
        active += !w->r[i].deleted;
    if (q->limit && mn == q->limit)
        st->limited++;
    else if (mn == 0)
        st->empty++;
    else if (mn == 1)
        st->one++;
    else if (mn == active && !q->exps)
        st->all++;
    else
        st->some++;
    st->plans[plan[0] == 't' ? 1 : plan[0] == 'o' ? 2 : plan[0] == 'n' ? 3 : 0]++;
    if (getenv("TRACK_PROP_VERBOSE"))
        fprintf(stderr, "case %d: %d runs, limit %d, exps %d, plan %.*s: %s | %s\n", casen, mn,
                q->limit, q->exps, (int)strcspn(plan, "\n"), plan, q->filter, q->order_text);
    if (rc == 0 && same(model, mn, &got))
        return;

    int at = 0;
    while (at < mn && at < got.n && model[at] == got.idx[at])
        at++;
    store_list(w, q, 1, &scan, NULL, 0);
    int n = snprintf(
        msg, sizeof msg,
        "seed %#llx case %d (TRACK_PROP_CASE=%d)\n  filter:   %s\n  order-by: %s\n"
        "  limit %d, experiments %s\n  store rc %d (%s): %d runs, model %d; first "
        "difference at %d: store %s, model %s\n  forced scan: %d runs, %s the "
        "model, %s the store\n  plan: %.200s",
        (unsigned long long)seed, casen, casen, q->root >= 0 ? q->filter : "(none)",
        q->order.n ? q->order_text : "(default)", q->limit,
        q->exps == 3   ? "exp-a,exp-b"
        : q->exps == 1 ? "exp-a"
        : q->exps      ? "exp-b"
                       : "all",
        rc, rc ? fm_err.msg : "ok", got.n, matches, at,
        at < got.n ? w->r[got.idx[at]].hex : "(end)", at < mn ? w->r[model[at]].hex : "(end)",
        scan.n, same(model, mn, &scan) ? "agrees with" : "differs from",
        scan.n == got.n && !memcmp(scan.idx, got.idx, sizeof(int) * (size_t)got.n) ? "agrees with"
                                                                                   : "differs from",
        plan);
    if (at < got.n && q->root >= 0)
        snprintf(msg + n, sizeof msg - (size_t)n, "\n  the store's run %s: the model's filter %s",
                 w->r[got.idx[at]].hex,
                 (const char *[]){"false", "true",
                                  "unknown"}[fm_eval(w, q->nodes, q->root, &w->r[got.idx[at]])]);
    cr_log_error("%s", msg);
    if (!st->failures++)
        snprintf(st->first, sizeof st->first, "%s", msg);
}

static void run_random(const struct world *w, uint64_t seed, int cases, int lifecycle,
                       struct stats *st)
{
    static struct query q;
    const char *only = getenv("TRACK_PROP_CASE");
    for (int c = 0; c < cases; c++) {
        if (only && strtol(only, NULL, 10) != c)
            continue;
        fm_gen_query(w, seed, c, lifecycle, &q);
        check_query(w, &q, seed, c, st);
    }
}

static void report(const char *what, const struct stats *st)
{
    fprintf(stderr,
            "%s: %d cases (%d with no run, %d with one, %d with all, %d some, %d cut by the "
            "limit); plans: %d scan, %d term, %d order, %d none; %d disagree\n",
            what, st->cases, st->empty, st->one, st->all, st->some, st->limited, st->plans[0],
            st->plans[1], st->plans[2], st->plans[3], st->failures);
    cr_assert_eq(st->failures, 0, "%d of %d searches disagree with the model; the first:\n%s",
                 st->failures, st->cases, st->first);
}

#define SEED_RANDOM  0x7f4a7c15b97f4a7cull
#define SEED_DELETED 0x2545f4914f6cdd1dull

Test(filter_property, random_filters_match_the_model)
{
    static struct world w;
    struct stats st = {0};
    fm_world_build(&w, NRUNS, SEED_RANDOM);
    run_random(&w, SEED_RANDOM, 1200, 0, &st);
    fm_world_free(&w);
    report("random", &st);
}

/* The search indexes holding two thirds of the runs, the others waiting for
 * them (storage/store_search_index.c): every plan reads both kinds. The
 * other tests search a store where every run waits. */
Test(filter_property, random_filters_match_the_model_with_the_indexes_part_merged)
{
    static struct world w;
    struct stats st = {0};
    int64_t runs = 0, rows = 0, waiting = 0;
    fm_world_build(&w, NRUNS, SEED_RANDOM);
    fm_must(store_begin(w.st, &fm_err), "begin");
    fm_must(store_index_merge(w.st, NRUNS * 2 / 3, &runs, &rows, &fm_err), "index merge");
    fm_must(store_commit(w.st, &fm_err), "commit");
    fm_must(store_index_backlog(w.st, &waiting, &fm_err), "index backlog");
    cr_assert(runs == NRUNS * 2 / 3 && waiting > 0 && rows > runs, "%lld runs merged, %lld wait",
              (long long)runs, (long long)waiting);
    run_random(&w, SEED_RANDOM ^ 1, 600, 0, &st);
    fm_world_free(&w);
    report("random, indexes part merged", &st);
}

/* ---- directed cases: what a planner driving from one index gets wrong ------------- */

/* a comparison: lits '|'-separated, a leading ' marks a string, else a number */
static int leaf(struct query *q, int *nn, int kind, int agg, int key, int op, int neg,
                const char *lits)
{
    struct node *n = &q->nodes[*nn];
    char buf[256], *save = NULL;
    memset(n, 0, sizeof *n);
    n->kind = N_CMP;
    n->t = (struct term){kind, agg, key};
    n->op = op;
    n->neg = neg;
    snprintf(buf, sizeof buf, "%s", lits ? lits : "");
    for (char *v = strtok_r(buf, "|", &save); v && n->nv < MAX_IN; v = strtok_r(NULL, "|", &save))
        if (v[0] == '\'')
            fm_lit_str(&n->v[n->nv++], v + 1);
        else
            fm_lit_num(&n->v[n->nv++], v);
    return (*nn)++;
}

static int join(struct query *q, int *nn, int kind, int a, int b)
{
    struct node *n = &q->nodes[*nn];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->a = a;
    n->b = b;
    return (*nn)++;
}

#define M(k, op, v)    leaf(q, &nn, T_METRIC, A_LAST, k, op, 0, v)
#define P(k, op, v)    leaf(q, &nn, T_PARAM, 0, k, op, 0, v)
#define ISNULL(kd, k)  leaf(q, &nn, kd, A_LAST, k, C_ISNULL, 0, NULL)
#define NOTNULL(kd, k) leaf(q, &nn, kd, A_LAST, k, C_ISNULL, 1, NULL)
#define LIFE(op, v)    leaf(q, &nn, T_LIFE, 0, 0, op, 0, v)
#define AND(a, b)      join(q, &nn, N_AND, a, b)
#define OR(a, b)       join(q, &nn, N_OR, a, b)
#define NOT(a)         join(q, &nn, N_NOT, a, 0)
#define LOSS           0
#define ACC            1
#define NANNY          5
#define SPARSE         6
#define CONST          7
#define OPT            0
#define LR             1
#define LAYERS         2
#define MIX            3
#define IDX            5

/* Builds directed filter number `i` into q; 0 when there is none. */
static int directed_filter(struct query *q, int i, int lifecycle)
{
    int nn = 0;
    q->named_lifecycle = 0;
    switch (lifecycle ? i + 100 : i) {
    case 0:
        q->root = OR(M(LOSS, C_LT, "0.1"), P(IDX, C_EQ, "5"));
        break;
    case 1:
        q->root = NOT(M(ACC, C_GT, "0.5"));
        break;
    case 2:
        q->root = M(NM, C_LT, "1");
        break;
    case 3:
        q->root = P(NP, C_EQ, "'x");
        break;
    case 4:
        q->root = ISNULL(T_METRIC, NM);
        break;
    case 5:
        q->root = AND(ISNULL(T_PARAM, NP), M(LOSS, C_LT, "1"));
        break;
    case 6:
        q->root = OR(M(NM, C_LT, "1"), P(OPT, C_EQ, "'adam"));
        break;
    case 7:
        q->root = ISNULL(T_METRIC, SPARSE);
        break;
    case 8:
        q->root = NOT(ISNULL(T_METRIC, SPARSE));
        break;
    case 9:
        q->root = ISNULL(T_METRIC, NANNY);
        break;
    case 10:
        q->root = P(IDX, C_EQ, "-1");
        break;
    case 11:
        q->root = P(IDX, C_EQ, "17");
        break;
    case 12:
        q->root = AND(P(IDX, C_EQ, "'17"), M(LOSS, C_LT, "100"));
        break;
    case 13:
        q->root = AND(M(LOSS, C_LT, "0.05"), P(OPT, C_EQ, "'adam"));
        break;
    case 14:
        q->root = AND(P(IDX, C_GT, "2990"), NOT(P(OPT, C_EQ, "'sgd")));
        break;
    case 15:
        q->root = P(LR, C_EQ, "1e-3");
        break;
    case 16:
        q->root = P(LR, C_EQ, "'0.001");
        break;
    case 17:
        q->root = P(LAYERS, C_EQ, "007");
        break;
    case 18:
        q->root = P(MIX, C_EQ, "'");
        break;
    case 19:
        q->root = P(MIX, C_GT, "0");
        break;
    case 20:
        q->root = P(MIX, C_LT, "1e300");
        break;
    case 21:
        q->root = M(CONST, C_EQ, "1");
        break;
    case 22:
        q->root = M(4, C_EQ, "0");
        break;
    case 23:
        q->root = NOT(AND(M(LOSS, C_LT, "1"), M(ACC, C_GT, "0.5")));
        break;
    case 24:
        q->root = AND(M(LOSS, C_LT, "1"), NOTNULL(T_METRIC, NANNY));
        break;
    case 25:
        q->root = NOT(M(NANNY, C_GT, "1"));
        break;
    case 26:
        q->root = OR(M(SPARSE, C_GT, "0"), ISNULL(T_METRIC, SPARSE));
        break;
    case 27:
        q->root = leaf(q, &nn, T_METRIC, A_MAX, NANNY, C_ISNULL, 0, NULL);
        break;
    case 28:
        q->root = AND(P(IDX, C_GE, "0"), OR(P(OPT, C_EQ, "'adam"), M(LOSS, C_LT, "1")));
        break;
    case 29:
        q->root = -1;
        break;
    case 100:
        q->root = LIFE(C_EQ, "'deleted");
        break;
    case 101:
        q->root = OR(LIFE(C_EQ, "'deleted"), P(IDX, C_LT, "100"));
        break;
    case 102:
        q->root = NOT(LIFE(C_EQ, "'active"));
        break;
    case 103:
        q->root = AND(NOTNULL(T_LIFE, 0), M(LOSS, C_LT, "1"));
        break;
    case 104:
        q->root = AND(LIFE(C_NE, "'active"), M(LOSS, C_LT, "0.5"));
        break;
    case 105:
        q->root = AND(P(IDX, C_LT, "500"), M(LOSS, C_LT, "2"));
        break;
    case 106:
        q->root = ISNULL(T_METRIC, NM);
        break;
    default:
        return 0;
    }
    q->named_lifecycle = lifecycle && i <= 4;
    return 1;
}

static void run_directed(const struct world *w, uint64_t seed, int lifecycle, struct stats *st)
{
    static struct query q;
    static struct gen g;
    static const struct order orders[] = {
        {0, {{0}}, {0}},
        {1, {{T_METRIC, A_LAST, LOSS}}, {0}},
        {1, {{T_METRIC, A_LAST, SPARSE}}, {1}},
        {2, {{T_PARAM, 0, OPT}, {T_METRIC, A_LAST, ACC}}, {0, 1}},
        {1, {{T_METRIC, A_MIN, NANNY}}, {1}},
        {2, {{T_METRIC, A_LAST, CONST}, {T_START, 0, 0}}, {1, 0}},
        {1, {{T_METRIC, A_LAST, NM}}, {1}},
    };
    static const int limits[] = {0, 1, 10, 5000};
    int casen = 0;
    for (int f = 0;; f++) {
        memset(&q, 0, sizeof q);
        if (!directed_filter(&q, f, lifecycle))
            break;
        memset(&g, 0, sizeof g);
        g.s = fm_mix64(seed + (uint64_t)f);
        g.w = w;
        memcpy(g.nodes, q.nodes, sizeof g.nodes);
        if (q.root >= 0)
            fm_print_node(&g, q.root, 0);
        snprintf(q.filter, sizeof q.filter, "%s", g.text);
        for (int o = 0; o < COUNT(orders); o++)
            for (int l = 0; l < COUNT(limits); l++) {
                q.order = orders[o];
                g.len = 0;
                g.text[0] = '\0';
                for (int t = 0; t < q.order.n; t++) {
                    fm_ap(&g, "%s", t ? ", " : "");
                    fm_print_term(&g, &q.order.t[t]);
                    fm_ap(&g, "%s", q.order.desc[t] ? " DESC" : "");
                }
                snprintf(q.order_text, sizeof q.order_text, "%s", g.text);
                q.limit = limits[l];
                q.exps = (o + l) % 3 == 2 ? 1 : 0;
                check_query(w, &q, seed, casen++, st);
            }
    }
}

Test(filter_property, directed_filters_match_the_model)
{
    static struct world w;
    struct stats st = {0};
    fm_world_build(&w, NRUNS, SEED_RANDOM);
    run_directed(&w, SEED_RANDOM, 0, &st);
    fm_world_free(&w);
    report("directed", &st);
}

/* A few runs deleted, a few of those restored: left out unless the filter
 * names lifecycle, which then picks among all runs. */
Test(filter_property, deleted_runs_are_left_out_unless_the_filter_names_lifecycle)
{
    static struct world w;
    struct stats st = {0};
    uint64_t s = SEED_DELETED;
    fm_world_build(&w, NRUNS, SEED_DELETED);
    for (int k = 0; k < 160; k++) {
        int i = fm_rnd(&s, w.n), changed = 0;
        uint8_t id[16];
        fm_run_id(i, SEED_DELETED, id);
        if (k < 150) {
            fm_must(store_run_delete(w.st, id, 5000, &changed, &fm_err), "run delete");
            w.r[i].deleted = 1;
        } else {
            fm_must(store_run_restore(w.st, id, &changed, &fm_err), "run restore");
            w.r[i].deleted = 0;
        }
    }
    run_random(&w, SEED_DELETED, 600, 1, &st);
    run_directed(&w, SEED_DELETED, 1, &st);
    fm_world_free(&w);
    report("deleted", &st);
}
