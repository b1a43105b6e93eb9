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
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define NRUNS 3000
#define NP    8 /* param keys */
#define NT    6 /* tag keys */
#define NM    8 /* metric keys */
#define VLEN  24

/* the last of each is a key no run has */
static const char *const pkeys[NP + 1] = {"opt", "lr",   "n_layers", "mix",   "sched.warmup",
                                          "idx", "word", "rare-one", "absent"};
static const char *const tkeys[NT + 1] = {"team", "note",       "prio",  "flag",
                                          "v",    "sparse tag", "absent"};
static const char *const mkeys[NM + 1] = {"loss",  "acc",    "train.loss", "val loss", "neg",
                                          "nanny", "sparse", "const",      "absent"};
static const int p_pct[NP] = {90, 85, 80, 75, 70, 100, 60, 1};
static const int t_pct[NT] = {70, 50, 60, 80, 50, 2};
static const int m_pct[NM] = {95, 90, 80, 70, 60, 50, 1, 85};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))
static const char *const opt_vals[] = {"adam", "sgd", "Adam", "rmsprop", "adagrad"};
static const char *const lr_vals[] = {"0.1", "0.01", "1e-3", "1e-2", "0.001", "3e-4", "1E-3"};
static const char *const mix_vals[] = {"abc1", "",     "1e",   "1-2",   ".5",  "-.5e1", "12abc",
                                       "e5",   "inf",  "0x10", "1e400", "-",   "+.5",   "1.2.3",
                                       "--1",  "it's", "a_b",  "a%b",   "A_B", "7",     "+5"};
static const char *const word_vals[] = {"alpha", "beta", "gamma", "delta", "Alpha", "beta2", "x y"};
static const char *const team_vals[] = {"red", "blue", "green", "Red"};
static const char *const note_vals[] = {"ok", "", "7", "12", "x1", "0.5", "hello world"};
static const char *const flag_vals[] = {"true", "false"};
static const char *const names[] = {"trial", "base", "Base", "run-1", "it's", "trial_2", "x%y"};
static const char *const users[] = {"alice", "bob", "", "Carol"};
static const char *const exps[] = {"exp-a", "exp-b", "exp-c"}; /* exp-c has no runs */
static const char *const status_names[] = {"", "RUNNING", "FINISHED", "FAILED", "KILLED"};

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

/* ---- the model's runs --------------------------------------------------------- */

struct mrun {
    int exp, status, deleted;
    const char *name, *user;
    int64_t start, end, row; /* end 0 while running */
    char hex[33];
    int has_p[NP], has_t[NT], has_m[NM];
    char p[NP][VLEN], t[NT][VLEN];
    int last_null[NM], mm_null[NM]; /* last NaN; no non-NaN point (no min, max) */
    double last[NM], min[NM], max[NM];
};

struct world {
    char dir[256];
    struct store *st;
    struct mrun *r;
    int n;
    int64_t now; /* the model's now_ms (durations of running runs; "1d") */
};

static struct store_err err;

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int rnd(uint64_t *s, int n)
{
    *s = mix64(*s);
    return (int)(*s % (uint64_t)n);
}

static double runif(uint64_t *s)
{
    *s = mix64(*s);
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0);
}

static const char *pick(uint64_t *s, const char *const *v, int n)
{
    return v[rnd(s, n)];
}
#define PICK(s, a) pick((s), (a), COUNT(a))

/* the filter language's "looks numeric" (filter.h), written from its words */
static int looks_numeric(const char *s)
{
    int digit = 0;
    if (!strchr("0123456789+.-", s[0]) || !s[0])
        return 0;
    for (; *s; s++) {
        if (isdigit((unsigned char)*s))
            digit = 1;
        else if (!strchr("eE.+-", *s))
            return 0;
    }
    return digit;
}

/* CAST(text AS REAL): the longest numeric prefix, 0 when there is none;
 * checked against SQLite's own on every stored value (check_cast) */
static double cast_real(const char *s)
{
    return strtod(s, NULL);
}

static void gen_param(uint64_t *s, int k, int i, char *out)
{
    switch (k) {
    case 0:
        snprintf(out, VLEN, "%s", PICK(s, opt_vals));
        break;
    case 1:
        snprintf(out, VLEN, "%s", PICK(s, lr_vals));
        break;
    case 2: {
        int x = rnd(s, 16);
        snprintf(out, VLEN, "%s", x == 13 ? "007" : x == 14 ? "-3" : x == 15 ? "+5" : "");
        if (x < 13)
            snprintf(out, VLEN, "%d", x);
        break;
    }
    case 3:
        snprintf(out, VLEN, "%s", PICK(s, mix_vals));
        break;
    case 4:
        snprintf(out, VLEN, "%s%d.%02d", rnd(s, 8) ? "" : "-", rnd(s, 10), rnd(s, 100));
        break;
    case 5:
        snprintf(out, VLEN, "%d", i);
        break;
    case 6:
        snprintf(out, VLEN, "%s", PICK(s, word_vals));
        break;
    default:
        snprintf(out, VLEN, "%s", rnd(s, 2) ? "yes" : "no");
    }
}

static void gen_tag(uint64_t *s, int k, char *out)
{
    switch (k) {
    case 0:
        snprintf(out, VLEN, "%s", PICK(s, team_vals));
        break;
    case 1:
        snprintf(out, VLEN, "%s", PICK(s, note_vals));
        break;
    case 2:
        snprintf(out, VLEN, "%d", rnd(s, 7) == 6 ? 10 : rnd(s, 6));
        break;
    case 3:
        snprintf(out, VLEN, "%s", PICK(s, flag_vals));
        break;
    case 4:
        snprintf(out, VLEN, "%s", rnd(s, 2) ? "1" : "2.5");
        break;
    default:
        snprintf(out, VLEN, "s");
    }
}

static double gen_metric(uint64_t *s, int k)
{
    switch (k) {
    case 0:
        return round(runif(s) * 300) / 100;
    case 1:
        return rnd(s, 21) * 0.05;
    case 2: {
        int x = rnd(s, 100);
        return x == 0 ? 1e300 : x == 1 ? -1e300 : runif(s) * 2;
    }
    case 3:
        return rnd(s, 13) / 4.0 - 1;
    case 4: {
        int x = rnd(s, 20);
        return x == 0 ? -0.0 : x == 1 ? 0.0 : -runif(s) * 100;
    }
    case 5:
        return rnd(s, 100) < 35 ? NAN : (double)rnd(s, 5);
    case 6:
        return runif(s);
    default:
        return 1.0;
    }
}

static void must(int rc, const char *what)
{
    cr_assert_eq(rc, 0, "%s: rc %d: %s", what, rc, err.msg);
}

static int row_cb(void *ctx, const struct store_run *r)
{
    *(int64_t *)ctx = r->row;
    return 0;
}

static void run_id(int i, uint64_t seed, uint8_t id[16])
{
    uint64_t a = mix64(seed ^ (uint64_t)i), b = mix64(a);
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 4);
    id[12] = (uint8_t)(i >> 24);
    id[13] = (uint8_t)(i >> 16);
    id[14] = (uint8_t)(i >> 8);
    id[15] = (uint8_t)i;
}

/* Every param and tag value that looks numeric casts in SQLite as in the
 * model: the model's numbers are the store's. */
static void check_cast(const struct world *w)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT CAST(?1 AS REAL)", -1, &s, NULL), SQLITE_OK);
    for (int i = 0; i < w->n; i++)
        for (int k = 0; k < NP + NT; k++) {
            const char *v = k < NP ? w->r[i].p[k] : w->r[i].t[k - NP];
            int has = k < NP ? w->r[i].has_p[k] : w->r[i].has_t[k - NP];
            if (!has || !looks_numeric(v))
                continue;
            sqlite3_bind_text(s, 1, v, -1, SQLITE_STATIC);
            cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
            double d = sqlite3_column_double(s, 0);
            cr_assert(d == cast_real(v), "CAST('%s' AS REAL) is %.17g, the model says %.17g", v, d,
                      cast_real(v));
            sqlite3_reset(s);
        }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* Builds the store and its model: n runs in exp-a (2/3) and exp-b. */
static void world_build(struct world *w, int n, uint64_t seed)
{
    int64_t exp_id[2];
    uint64_t s = seed;
    struct timespec ts;

    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/track-prop-XXXXXX");
    cr_assert_not_null(mkdtemp(w->dir));
    char path[300];
    snprintf(path, sizeof path, "%s/track.db", w->dir);
    must(store_open(path, &(struct store_opts){0}, &w->st, &err), "store_open");
    must(store_experiment_ensure(w->st, "exp-a", 1000, &exp_id[0], &err), "experiment");
    must(store_experiment_ensure(w->st, "exp-b", 1000, &exp_id[1], &err), "experiment");
    w->r = calloc((size_t)n, sizeof *w->r);
    cr_assert_not_null(w->r);
    w->n = n;
    must(store_begin(w->st, &err), "begin");
    for (int i = 0; i < n; i++) {
        struct mrun *r = &w->r[i];
        uint8_t id[16];
        run_id(i, seed, id);
        for (int b = 0; b < 16; b++)
            snprintf(r->hex + 2 * b, 3, "%02x", id[b]);
        r->exp = rnd(&s, 3) == 0;
        r->name = PICK(&s, names);
        r->user = PICK(&s, users);
        r->start = 1000000 + rnd(&s, 1500); /* ~2 runs a millisecond: ties */
        struct store_run_start rs = {.experiment_id = exp_id[r->exp],
                                     .name = r->name,
                                     .start_ms = r->start,
                                     .user = r->user};
        memcpy(rs.id, id, 16);
        must(store_run_start(w->st, &rs, &err), "run start");
        for (int k = 0; k < NP; k++) {
            if (rnd(&s, 100) >= p_pct[k])
                continue;
            r->has_p[k] = 1;
            gen_param(&s, k, i, r->p[k]);
            must(store_param_put(w->st, id, pkeys[k], r->p[k], &err), "param put");
        }
        for (int k = 0; k < NT; k++) {
            int puts = k == 4 ? 1 + rnd(&s, 2) : 1; /* tags are replaced: the last one holds */
            if (rnd(&s, 100) >= t_pct[k])
                continue;
            r->has_t[k] = 1;
            while (puts--) {
                gen_tag(&s, k, r->t[k]);
                must(store_tag_put(w->st, id, tkeys[k], r->t[k], &err), "tag put");
            }
        }
        for (int k = 0; k < NM; k++) {
            double v[3];
            int64_t steps[3] = {0, 1, 2}, times[3] = {10, 11, 12};
            int np = 1 + rnd(&s, 3), first = 0;
            if (rnd(&s, 100) >= m_pct[k])
                continue;
            r->has_m[k] = 1;
            r->mm_null[k] = 1;
            for (int j = 0; j < np; j++) {
                v[j] = gen_metric(&s, k);
                if (!isnan(v[j]) && (r->mm_null[k] || v[j] < r->min[k]))
                    r->min[k] = v[j];
                if (!isnan(v[j]) && (r->mm_null[k] || v[j] > r->max[k]))
                    r->max[k] = v[j];
                if (!isnan(v[j]))
                    r->mm_null[k] = 0;
            }
            r->last[k] = v[np - 1];
            r->last_null[k] = isnan(v[np - 1]);
            if (np > 1 && rnd(&s, 2)) { /* two appends: the summary merges them */
                must(store_metric_append(w->st, id, mkeys[k], steps, times, v, 1, &err), "append");
                first = 1;
            }
            must(store_metric_append(w->st, id, mkeys[k], steps + first, times + first, v + first,
                                     (size_t)(np - first), &err),
                 "append");
        }
        if (rnd(&s, 5)) {
            r->status = 2 + rnd(&s, 3);
            r->end = r->start + (rnd(&s, 10) == 0 ? 0 : rnd(&s, 2000000));
            must(store_run_end(w->st, id, r->status, r->end, &err), "run end");
        } else {
            r->status = STORE_RUNNING;
        }
    }
    must(store_commit(w->st, &err), "commit");
    for (int i = 0; i < n; i++) {
        uint8_t id[16];
        run_id(i, seed, id);
        must(store_run_get(w->st, id, row_cb, &w->r[i].row, &err), "run get");
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    w->now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    check_cast(w);
}

static void world_free(struct world *w)
{
    DIR *d = opendir(w->dir);
    struct dirent *e;
    char p[600];
    store_close(w->st);
    free(w->r);
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", w->dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(w->dir);
}

/* ---- the filter's syntax tree and its evaluation -------------------------------- */

enum term_kind {
    T_METRIC,
    T_PARAM,
    T_TAG,
    T_STATUS,
    T_NAME,
    T_USER,
    T_EXP,
    T_START,
    T_END,
    T_DUR,
    T_RUNID,
    T_LIFE,
};
enum agg { A_LAST, A_MIN, A_MAX };
enum cmp_op { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE, C_IN, C_LIKE, C_ILIKE, C_ISNULL };
enum lit_kind { L_NUM, L_STR, L_DUR };
enum node_kind { N_CMP, N_AND, N_OR, N_NOT };
enum truth { F = 0, T = 1, U = 2 };

struct term {
    int kind, agg, key; /* key: index into pkeys/tkeys/mkeys */
};

struct lit {
    int kind;
    char text[48]; /* L_NUM, L_DUR: as written; L_STR: the string (decoded) */
    double d;      /* L_NUM */
    int64_t ms;    /* L_DUR */
};

#define MAX_IN    4
#define MAX_NODES 32

struct node {
    int kind, a, b; /* N_AND, N_OR: a and b; N_NOT: a */
    struct term t;
    int op, neg; /* neg: NOT IN, NOT LIKE, NOT ILIKE, IS NOT NULL */
    int nv;
    struct lit v[MAX_IN];
};

struct val {
    int null, text;
    double d;
    const char *s;
};

/* The value a term has for run r; `numeric`: a param or tag as a number. */
static struct val term_val(const struct world *w, const struct mrun *r, const struct term *t,
                           int numeric)
{
    struct val v = {0};
    int k = t->key;
    switch (t->kind) {
    case T_METRIC:
        if (k >= NM || !r->has_m[k] || (t->agg == A_LAST ? r->last_null[k] : r->mm_null[k]))
            v.null = 1;
        else
            v.d = t->agg == A_LAST ? r->last[k] : t->agg == A_MIN ? r->min[k] : r->max[k];
        return v;
    case T_PARAM:
    case T_TAG: {
        int n = t->kind == T_PARAM ? NP : NT;
        int has = k < n && (t->kind == T_PARAM ? r->has_p[k] : r->has_t[k]);
        const char *s = has ? (t->kind == T_PARAM ? r->p[k] : r->t[k]) : NULL;
        if (!s || (numeric && !looks_numeric(s)))
            v.null = 1;
        else if (numeric)
            v.d = cast_real(s);
        else
            v.text = 1, v.s = s;
        return v;
    }
    case T_STATUS:
        v.d = r->status;
        return v;
    case T_START:
        v.d = (double)r->start;
        return v;
    case T_END:
        v.null = r->end == 0;
        v.d = (double)r->end;
        return v;
    case T_DUR:
        v.d = (double)((r->end ? r->end : w->now) - r->start);
        return v;
    default:
        v.text = 1;
        v.s = t->kind == T_NAME    ? r->name
              : t->kind == T_USER  ? r->user
              : t->kind == T_EXP   ? exps[r->exp]
              : t->kind == T_RUNID ? r->hex
                                   : (r->deleted ? "deleted" : "active");
        return v;
    }
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static int status_code(const char *s)
{
    for (int i = 1; i <= 4; i++)
        if (strcasecmp(s, status_names[i]) == 0)
            return i;
    return 0;
}

/* -1, 0, 1: value x against literal l, for term kind `kind` */
static int cmp_lit(const struct world *w, const struct val *x, const struct lit *l, int kind)
{
    if (x->text) {
        char s[48];
        snprintf(s, sizeof s, "%s", l->text);
        if (kind == T_RUNID)
            lower(s);
        int c = strcmp(x->s, s);
        return (c > 0) - (c < 0);
    }
    double d = l->kind == L_NUM   ? l->d
               : l->kind == L_DUR ? (double)(kind == T_DUR ? l->ms : w->now - l->ms)
                                  : (double)status_code(l->text);
    return (x->d > d) - (x->d < d);
}

/* LIKE: % any run, _ one byte, backslash makes the next byte literal */
static int like(const char *p, const char *s, int fold)
{
    for (; *p; p++) {
        if (*p == '%') {
            for (;; s++) {
                if (like(p + 1, s, fold))
                    return 1;
                if (!*s)
                    return 0;
            }
        }
        if (*p == '_') {
            if (!*s++)
                return 0;
            continue;
        }
        if (*p == '\\' && p[1])
            p++;
        if (!*s)
            return 0;
        if (fold ? tolower((unsigned char)*p) != tolower((unsigned char)*s) : *p != *s)
            return 0;
        s++;
    }
    return !*s;
}

static int eval(const struct world *w, const struct node *nodes, int id, const struct mrun *r)
{
    const struct node *n = &nodes[id];
    int a, b;
    switch (n->kind) {
    case N_NOT:
        a = eval(w, nodes, n->a, r);
        return a == U ? U : !a;
    case N_AND:
        a = eval(w, nodes, n->a, r);
        b = eval(w, nodes, n->b, r);
        return a == F || b == F ? F : a == U || b == U ? U : T;
    case N_OR:
        a = eval(w, nodes, n->a, r);
        b = eval(w, nodes, n->b, r);
        return a == T || b == T ? T : a == U || b == U ? U : F;
    }
    int numeric = n->op >= C_LT && n->op <= C_GE && n->v[0].kind == L_NUM &&
                  (n->t.kind == T_PARAM || n->t.kind == T_TAG);
    struct val x = term_val(w, r, &n->t, numeric);
    if (n->op == C_ISNULL)
        return x.null != n->neg ? T : F;
    if (x.null)
        return U;
    int c, res = 0;
    switch (n->op) {
    case C_EQ:
        return cmp_lit(w, &x, &n->v[0], n->t.kind) == 0;
    case C_NE:
        return cmp_lit(w, &x, &n->v[0], n->t.kind) != 0;
    case C_LT:
        return cmp_lit(w, &x, &n->v[0], n->t.kind) < 0;
    case C_LE:
        return cmp_lit(w, &x, &n->v[0], n->t.kind) <= 0;
    case C_GT:
        return cmp_lit(w, &x, &n->v[0], n->t.kind) > 0;
    case C_GE:
        return cmp_lit(w, &x, &n->v[0], n->t.kind) >= 0;
    case C_IN:
        for (int i = 0; i < n->nv; i++)
            if (cmp_lit(w, &x, &n->v[i], n->t.kind) == 0)
                res = 1;
        return res != n->neg;
    default: {
        char pat[48];
        snprintf(pat, sizeof pat, "%s", n->v[0].text);
        if (n->t.kind == T_RUNID)
            lower(pat);
        c = like(pat, x.s, n->op == C_ILIKE);
        return c != n->neg;
    }
    }
}

/* ---- the order ------------------------------------------------------------------ */

#define MAX_ORDER 3

struct order {
    int n;
    struct term t[MAX_ORDER];
    int desc[MAX_ORDER];
};

static const struct world *sort_w;
static const struct order *sort_o;

static int cmp_runs(const void *pa, const void *pb)
{
    const struct mrun *a = &sort_w->r[*(const int *)pa], *b = &sort_w->r[*(const int *)pb];
    for (int i = 0; i < sort_o->n; i++) {
        struct val x = term_val(sort_w, a, &sort_o->t[i], 0);
        struct val y = term_val(sort_w, b, &sort_o->t[i], 0);
        int c;
        if (x.null || y.null) {
            if (x.null && y.null)
                continue;
            return x.null ? 1 : -1; /* missing last, either direction */
        }
        c = x.text ? strcmp(x.s, y.s) : (x.d > y.d) - (x.d < y.d);
        c = (c > 0) - (c < 0);
        if (c)
            return sort_o->desc[i] ? -c : c;
    }
    if (a->start != b->start)
        return a->start > b->start ? -1 : 1;
    return a->row > b->row ? -1 : a->row < b->row;
}

/* ---- the generator -------------------------------------------------------------- */

struct gen {
    uint64_t s;
    const struct world *w;
    int lifecycle; /* may name lifecycle; set when it did */
    int named_lifecycle;
    struct node nodes[MAX_NODES];
    int nn;
    char text[4096];
    size_t len;
};

__attribute__((format(printf, 2, 3))) static void ap(struct gen *g, const char *fmt, ...)
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
    int mode = rnd(&g->s, 3);
    snprintf(b, 16, "%s", upper);
    for (int i = 0; b[i]; i++)
        if (mode == 1 || (mode == 2 && i > 0))
            b[i] = (char)tolower((unsigned char)b[i]);
    return b;
}

static void lit_num(struct lit *l, const char *text)
{
    l->kind = L_NUM;
    snprintf(l->text, sizeof l->text, "%s", text);
    l->d = strtod(text, NULL);
}

static void lit_numd(struct lit *l, double d)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", d);
    lit_num(l, b);
}

static void lit_str(struct lit *l, const char *s)
{
    l->kind = L_STR;
    snprintf(l->text, sizeof l->text, "%s", s);
}

static const struct mrun *any_run(struct gen *g)
{
    return &g->w->r[rnd(&g->s, g->w->n)];
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
    for (int tries = 0; tries < 40 && t->key < NM && (tries || rnd(&g->s, 2)); tries++) {
        const struct mrun *r = any_run(g);
        struct val v = term_val(g->w, r, t, 0);
        if (!v.null && isfinite(v.d)) {
            lit_numd(l, v.d);
            return;
        }
    }
    lit_num(l, PICK(&g->s, metric_lits));
}

/* a LIKE pattern for value s: exact, prefix%, %suffix, with _ or %, escaped */
static void like_pat(struct gen *g, const char *s, int fold, struct lit *l)
{
    size_t n = strlen(s), cut = n ? (size_t)rnd(&g->s, (int)n + 1) : 0, o = 0;
    int mode = rnd(&g->s, 5);
    char *p = l->text;
    l->kind = L_STR;
    if (mode == 4) {
        snprintf(p, sizeof l->text, "%s", rnd(&g->s, 2) ? "%" : "%e%");
        return;
    }
    if (mode == 2)
        p[o++] = '%';
    for (size_t i = mode == 2 ? cut : 0; i < (mode == 1 ? cut : n) && o < 40; i++) {
        char c = s[i];
        if (mode == 3 && rnd(&g->s, 4) == 0) {
            p[o++] = '_';
            continue;
        }
        if (c == '%' || c == '_')
            p[o++] = '\\';
        if (fold && rnd(&g->s, 2))
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
    int x = rnd(&g->s, 100);
    n->t.kind = T_METRIC;
    n->t.key = rnd(&g->s, 100) < 4 ? NM : rnd(&g->s, NM);
    n->t.agg = x < 80 ? A_LAST : x < 90 ? A_MIN : A_MAX;
    x = rnd(&g->s, 100);
    if (x < 70) {
        n->op = rnd(&g->s, 6);
        n->nv = 1;
    } else if (x < 82) {
        n->op = C_IN;
        n->neg = rnd(&g->s, 2);
        n->nv = 1 + rnd(&g->s, MAX_IN);
    } else {
        n->op = C_ISNULL;
        n->neg = rnd(&g->s, 2);
    }
    for (int i = 0; i < n->nv; i++)
        metric_lit(g, &n->t, &n->v[i]);
}

static void kv_lit(struct gen *g, const struct term *t, int as_num, int ordering, struct lit *l)
{
    const char *v = kv_value(g, t->kind, t->key);
    if (!as_num) {
        lit_str(l, v ? v : "zzz");
    } else if (ordering && v && looks_numeric(v) && isfinite(cast_real(v)) && rnd(&g->s, 2)) {
        lit_numd(l, cast_real(v));
    } else if (t->key == 5 && t->kind == T_PARAM && rnd(&g->s, 2)) {
        char b[16];
        snprintf(b, sizeof b, "%d", rnd(&g->s, g->w->n + 10) - 5);
        lit_num(l, b);
    } else {
        lit_num(l, PICK(&g->s, param_num_lits));
    }
}

static void gen_kv_cmp(struct gen *g, struct node *n, int kind)
{
    int nk = kind == T_PARAM ? NP : NT, x = rnd(&g->s, 100);
    n->t.kind = kind;
    n->t.key = rnd(&g->s, 100) < 4 ? nk : rnd(&g->s, nk);
    if (x < 35) {
        n->op = rnd(&g->s, 2) ? C_EQ : C_NE;
        n->nv = 1;
        kv_lit(g, &n->t, rnd(&g->s, 10) < 3, 0, &n->v[0]);
    } else if (x < 65) {
        n->op = C_LT + rnd(&g->s, 4);
        n->nv = 1;
        kv_lit(g, &n->t, rnd(&g->s, 10) < 7, 1, &n->v[0]);
    } else if (x < 75) {
        n->op = C_IN;
        n->neg = rnd(&g->s, 2);
        n->nv = 1 + rnd(&g->s, MAX_IN);
        for (int i = 0; i < n->nv; i++)
            kv_lit(g, &n->t, rnd(&g->s, 10) < 4, 0, &n->v[i]);
    } else if (x < 88) {
        const char *v = kv_value(g, kind, n->t.key);
        n->op = rnd(&g->s, 2) ? C_LIKE : C_ILIKE;
        n->neg = rnd(&g->s, 4) == 0;
        n->nv = 1;
        like_pat(g, v ? v : "q%", n->op == C_ILIKE, &n->v[0]);
    } else {
        n->op = C_ISNULL;
        n->neg = rnd(&g->s, 2);
    }
}

/* a text attribute: every operator, string literals */
static void gen_text_cmp(struct gen *g, struct node *n, const char *(*value)(struct gen *))
{
    int x = rnd(&g->s, 100);
    n->nv = 1;
    if (x < 50) {
        n->op = rnd(&g->s, 6);
        lit_str(&n->v[0], value(g));
    } else if (x < 65) {
        n->op = C_IN;
        n->neg = rnd(&g->s, 2);
        n->nv = 1 + rnd(&g->s, MAX_IN);
        for (int i = 0; i < n->nv; i++)
            lit_str(&n->v[i], value(g));
    } else if (x < 92) {
        n->op = rnd(&g->s, 2) ? C_LIKE : C_ILIKE;
        n->neg = rnd(&g->s, 4) == 0;
        like_pat(g, value(g), n->op == C_ILIKE, &n->v[0]);
    } else {
        n->op = C_ISNULL;
        n->neg = rnd(&g->s, 2);
        n->nv = 0;
    }
}

static const char *v_name(struct gen *g)
{
    return PICK(&g->s, names);
}
static const char *v_user(struct gen *g)
{
    return PICK(&g->s, users);
}
static const char *v_exp(struct gen *g)
{
    return PICK(&g->s, exps);
}
static const char *v_hex(struct gen *g)
{
    static char b[40];
    snprintf(b, sizeof b, "%s", any_run(g)->hex);
    if (rnd(&g->s, 3) == 0)
        for (char *c = b; *c; c++)
            *c = (char)toupper((unsigned char)*c);
    if (rnd(&g->s, 2)) /* a prefix: LIKE 'ab%' then reads it as one */
        b[1 + rnd(&g->s, 3)] = '\0';
    return b;
}
static const char *v_life(struct gen *g)
{
    return rnd(&g->s, 2) ? "active" : "deleted";
}

static void gen_time_cmp(struct gen *g, struct node *n, int kind)
{
    const struct mrun *r = any_run(g);
    char b[40];
    int x = rnd(&g->s, 100);
    n->op = rnd(&g->s, 6);
    n->nv = 1;
    if (kind == T_END && x < 25) {
        n->op = C_ISNULL;
        n->neg = rnd(&g->s, 2);
        n->nv = 0;
        return;
    }
    if (kind == T_DUR && x < 40) {
        int d = rnd(&g->s, COUNT(dur_lits));
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
        v = 1000000 + rnd(&g->s, 2000000);
    snprintf(b, sizeof b, "%lld%s", (long long)v, x < 15 ? ".5" : "");
    lit_num(&n->v[0], b);
    if (x >= 15 && x < 25) {
        n->op = C_IN;
        n->neg = rnd(&g->s, 2);
        lit_numd(&n->v[1], (double)any_run(g)->start);
        n->nv = kind == T_START ? 2 : 1;
    }
}

static void gen_attr_cmp(struct gen *g, struct node *n)
{
    int x = rnd(&g->s, g->lifecycle ? 115 : 100);
    if (x < 15) {
        n->t.kind = T_STATUS;
        x = rnd(&g->s, 100);
        n->op = x < 60 ? (rnd(&g->s, 2) ? C_EQ : C_NE) : x < 90 ? C_IN : C_ISNULL;
        n->neg = rnd(&g->s, 2);
        n->nv = n->op == C_ISNULL ? 0 : n->op == C_IN ? 1 + rnd(&g->s, 3) : 1;
        for (int i = 0; i < n->nv; i++) {
            char b[16];
            snprintf(b, sizeof b, "%s", status_names[1 + rnd(&g->s, 4)]);
            if (rnd(&g->s, 2))
                lower(b);
            lit_str(&n->v[i], b);
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
    int id = new_node(g, N_CMP, 0, 0), x = rnd(&g->s, 100);
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
        int op = rnd(&g->s, 2) ? N_AND : N_OR;
        id = gen_leaf(g);
        while (--terms)
            id = new_node(g, op, id, gen_leaf(g));
    } else {
        int k = 1 + rnd(&g->s, terms - 1);
        int a = gen_tree(g, k, depth + 1), b = gen_tree(g, terms - k, depth + 1);
        id = new_node(g, rnd(&g->s, 100) < (depth ? 50 : 70) ? N_AND : N_OR, a, b);
    }
    if (depth < 3 && rnd(&g->s, 100) < 12)
        id = new_node(g, N_NOT, id, 0);
    return id;
}

/* ---- printing ------------------------------------------------------------------- */

static void print_key(struct gen *g, const char *k)
{
    int bare = rnd(&g->s, 10) != 0;
    for (const char *c = k; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("_-./:", *c))
            bare = 0;
    if (bare)
        ap(g, "%s", k);
    else if (rnd(&g->s, 2))
        ap(g, "`%s`", k);
    else
        ap(g, "\"%s\"", k);
}

static void print_string(struct gen *g, const char *s)
{
    char q = rnd(&g->s, 2) ? '\'' : '"';
    ap(g, "%c", q);
    for (; *s; s++) {
        if (*s == q)
            ap(g, "%c", rnd(&g->s, 2) ? q : '\\');
        ap(g, "%c", *s);
    }
    ap(g, "%c", q);
}

static void print_term(struct gen *g, const struct term *t)
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
            ap(g, "%s(", kw(g, t->agg == A_MIN ? "MIN" : "MAX"));
        ap(g, "%s.", PICK(&g->s, mp));
        print_key(g, mkeys[t->key]);
        if (t->agg != A_LAST)
            ap(g, ")");
        break;
    case T_PARAM:
        ap(g, "%s.", PICK(&g->s, pp));
        print_key(g, pkeys[t->key]);
        break;
    case T_TAG:
        ap(g, "%s.", PICK(&g->s, tp));
        print_key(g, tkeys[t->key]);
        break;
    default: {
        const char *a = attr[t->kind - T_STATUS];
        int x = rnd(&g->s, 4);
        if (t->kind == T_NAME && x == 0)
            a = "run_name";
        if (t->kind == T_USER && x == 0)
            a = "user_id";
        ap(g, "%s%s", PICK(&g->s, ap_), a);
    }
    }
}

static void print_lit(struct gen *g, const struct lit *l)
{
    if (l->kind == L_STR)
        print_string(g, l->text);
    else
        ap(g, "%s", l->text);
}

static void print_cmp(struct gen *g, const struct node *n)
{
    static const char *const ops[][2] = {{"=", "=="},  {"!=", "<>"}, {"<", "<"},
                                         {"<=", "<="}, {">", ">"},   {">=", ">="}};
    print_term(g, &n->t);
    if (n->op <= C_GE) {
        ap(g, " %s ", ops[n->op][rnd(&g->s, 2)]);
        print_lit(g, &n->v[0]);
    } else if (n->op == C_IN) {
        ap(g, " %s%s (", n->neg ? "NOT " : "", kw(g, "IN"));
        for (int i = 0; i < n->nv; i++) {
            ap(g, "%s", i ? ", " : "");
            print_lit(g, &n->v[i]);
        }
        ap(g, ")");
    } else if (n->op == C_ISNULL) {
        ap(g, " %s %s%s", kw(g, "IS"), n->neg ? "NOT " : "", kw(g, "NULL"));
    } else {
        ap(g, " %s%s ", n->neg ? "NOT " : "", kw(g, n->op == C_LIKE ? "LIKE" : "ILIKE"));
        print_lit(g, &n->v[0]);
    }
}

/* ctx: 0 an OR's operand or the top, 1 an AND's, 2 a NOT's */
static void print_node(struct gen *g, int id, int ctx)
{
    const struct node *n = &g->nodes[id];
    int paren =
        (n->kind == N_OR && ctx >= 1) || (n->kind == N_AND && ctx == 2) || rnd(&g->s, 100) < 8;
    if (paren)
        ap(g, "(");
    if (n->kind == N_AND || n->kind == N_OR) {
        print_node(g, n->a, n->kind == N_AND);
        ap(g, " %s ", kw(g, n->kind == N_AND ? "AND" : "OR"));
        print_node(g, n->b, n->kind == N_AND);
    } else if (n->kind == N_NOT) {
        ap(g, "%s ", kw(g, "NOT"));
        print_node(g, n->a, 2);
    } else {
        print_cmp(g, n);
    }
    if (paren)
        ap(g, ")");
}

/* ---- one case: the store's answer against the model's ------------------------------ */

struct query {
    char filter[4096], order_text[4096];
    int root; /* -1: no filter */
    int named_lifecycle;
    struct node nodes[MAX_NODES];
    struct order order;
    int limit;
    int exps; /* bit 0 exp-a, bit 1 exp-b; 0: all (NULL) */
};

struct got {
    int n, bad;
    int idx[NRUNS];
};

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

static int model_list(const struct world *w, const struct query *q, int *out)
{
    int n = 0;
    for (int i = 0; i < w->n; i++) {
        const struct mrun *r = &w->r[i];
        if (r->deleted && !q->named_lifecycle)
            continue;
        if (q->exps && !(q->exps & (1 << r->exp)))
            continue;
        if (q->root >= 0 && eval(w, q->nodes, q->root, r) != T)
            continue;
        out[n++] = i;
    }
    sort_w = w;
    sort_o = &q->order;
    qsort(out, (size_t)n, sizeof *out, cmp_runs);
    return q->limit && n > q->limit ? q->limit : n;
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
        store_run_list_plan(w->st, &sq, plan, plan_cap, &err);
    }
    return store_run_list(w->st, &sq, got_cb, got, &err);
}

struct stats {
    int cases, failures, empty, one, all, some, limited, plans[4];
    char first[4096];
};

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
    int mn = model_list(w, q, model), rc = store_list(w, q, 0, &got, plan, sizeof plan);
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
        rc, rc ? err.msg : "ok", got.n, matches, at, at < got.n ? w->r[got.idx[at]].hex : "(end)",
        at < mn ? w->r[model[at]].hex : "(end)", scan.n,
        same(model, mn, &scan) ? "agrees with" : "differs from",
        scan.n == got.n && !memcmp(scan.idx, got.idx, sizeof(int) * (size_t)got.n) ? "agrees with"
                                                                                   : "differs from",
        plan);
    if (at < got.n && q->root >= 0)
        snprintf(msg + n, sizeof msg - (size_t)n, "\n  the store's run %s: the model's filter %s",
                 w->r[got.idx[at]].hex,
                 (const char *[]){"false", "true",
                                  "unknown"}[eval(w, q->nodes, q->root, &w->r[got.idx[at]])]);
    cr_log_error("%s", msg);
    if (!st->failures++)
        snprintf(st->first, sizeof st->first, "%s", msg);
}

static void gen_order(struct gen *g, struct query *q)
{
    int n = rnd(&g->s, 4);
    size_t save = g->len;
    static const int attrs[] = {T_START, T_END, T_DUR, T_NAME, T_STATUS, T_EXP, T_USER, T_RUNID};
    g->len = 0;
    g->text[0] = '\0';
    q->order.n = n;
    for (int i = 0; i < n; i++) {
        struct term *t = &q->order.t[i];
        int x = rnd(&g->s, 100), d = rnd(&g->s, 5);
        memset(t, 0, sizeof *t);
        if (x < (i ? 30 : 55)) {
            t->kind = T_METRIC;
            t->key = rnd(&g->s, 50) ? rnd(&g->s, NM) : NM;
            t->agg = rnd(&g->s, 5) ? A_LAST : rnd(&g->s, 2) ? A_MIN : A_MAX;
        } else if (x < 70) {
            t->kind = T_PARAM;
            t->key = rnd(&g->s, NP);
        } else if (x < 80) {
            t->kind = T_TAG;
            t->key = rnd(&g->s, NT);
        } else {
            t->kind = attrs[rnd(&g->s, COUNT(attrs))];
        }
        q->order.desc[i] = d >= 3;
        ap(g, "%s", i ? ", " : "");
        print_term(g, t);
        ap(g, "%s", d == 0 ? "" : d == 1 ? " ASC" : d == 2 ? " asc" : d == 3 ? " DESC" : " desc");
    }
    snprintf(q->order_text, sizeof q->order_text, "%s", g->text);
    g->len = save;
}

/* Case `casen` of seed `seed`: a random filter, order, limit and experiments. */
static void gen_query(const struct world *w, uint64_t seed, int casen, int lifecycle,
                      struct query *q)
{
    static struct gen g;
    static const int limits[] = {0, 0, 0, 1, 10, 10, 100, 3, 1000};
    memset(&g, 0, sizeof g);
    memset(q, 0, sizeof *q);
    g.s = mix64(seed ^ mix64((uint64_t)casen + 1));
    g.w = w;
    g.lifecycle = lifecycle;
    q->root = rnd(&g.s, 20) ? gen_tree(&g, 1 + rnd(&g.s, 5), 0) : -1;
    if (q->root >= 0)
        print_node(&g, q->root, 0);
    snprintf(q->filter, sizeof q->filter, "%s", g.text);
    memcpy(q->nodes, g.nodes, sizeof q->nodes);
    q->named_lifecycle = g.named_lifecycle;
    gen_order(&g, q);
    q->limit = limits[rnd(&g.s, COUNT(limits))];
    q->exps = rnd(&g.s, 2) ? 0 : rnd(&g.s, 4);
}

static void run_random(const struct world *w, uint64_t seed, int cases, int lifecycle,
                       struct stats *st)
{
    static struct query q;
    const char *only = getenv("TRACK_PROP_CASE");
    for (int c = 0; c < cases; c++) {
        if (only && strtol(only, NULL, 10) != c)
            continue;
        gen_query(w, seed, c, lifecycle, &q);
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
    world_build(&w, NRUNS, SEED_RANDOM);
    run_random(&w, SEED_RANDOM, 1200, 0, &st);
    world_free(&w);
    report("random", &st);
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
            lit_str(&n->v[n->nv++], v + 1);
        else
            lit_num(&n->v[n->nv++], v);
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
        g.s = mix64(seed + (uint64_t)f);
        g.w = w;
        memcpy(g.nodes, q.nodes, sizeof g.nodes);
        if (q.root >= 0)
            print_node(&g, q.root, 0);
        snprintf(q.filter, sizeof q.filter, "%s", g.text);
        for (int o = 0; o < COUNT(orders); o++)
            for (int l = 0; l < COUNT(limits); l++) {
                q.order = orders[o];
                g.len = 0;
                g.text[0] = '\0';
                for (int t = 0; t < q.order.n; t++) {
                    ap(&g, "%s", t ? ", " : "");
                    print_term(&g, &q.order.t[t]);
                    ap(&g, "%s", q.order.desc[t] ? " DESC" : "");
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
    world_build(&w, NRUNS, SEED_RANDOM);
    run_directed(&w, SEED_RANDOM, 0, &st);
    world_free(&w);
    report("directed", &st);
}

/* A few runs deleted, a few of those restored: left out unless the filter
 * names lifecycle, which then picks among all runs. */
Test(filter_property, deleted_runs_are_left_out_unless_the_filter_names_lifecycle)
{
    static struct world w;
    struct stats st = {0};
    uint64_t s = SEED_DELETED;
    world_build(&w, NRUNS, SEED_DELETED);
    for (int k = 0; k < 160; k++) {
        int i = rnd(&s, w.n), changed = 0;
        uint8_t id[16];
        run_id(i, SEED_DELETED, id);
        if (k < 150) {
            must(store_run_delete(w.st, id, 5000, &changed, &err), "run delete");
            w.r[i].deleted = 1;
        } else {
            must(store_run_restore(w.st, id, &changed, &err), "run restore");
            w.r[i].deleted = 0;
        }
    }
    run_random(&w, SEED_DELETED, 600, 1, &st);
    run_directed(&w, SEED_DELETED, 1, &st);
    world_free(&w);
    report("deleted", &st);
}
