/*
 * filter_model.c: the store of random runs that test_filter_property.c
 * searches, and the same runs in memory with a plain evaluation in C of the
 * search language over them (filter_model.h). See test_filter_property.c's
 * header comment for the rules the model follows and where they come from.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "filter_model.h"

/* the last of each is a key no run has */
const char *const fm_pkeys[NP + 1] = {"opt", "lr",   "n_layers", "mix",   "sched.warmup",
                                      "idx", "word", "rare-one", "absent"};
const char *const fm_tkeys[NT + 1] = {"team", "note", "prio", "flag", "v", "sparse tag", "absent"};
const char *const fm_mkeys[NM + 1] = {"loss",  "acc",    "train.loss", "val loss", "neg",
                                      "nanny", "sparse", "const",      "absent"};
static const int p_pct[NP] = {90, 85, 80, 75, 70, 100, 60, 1};
static const int t_pct[NT] = {70, 50, 60, 80, 50, 2};
static const int m_pct[NM] = {95, 90, 80, 70, 60, 50, 1, 85};

static const char *const opt_vals[] = {"adam", "sgd", "Adam", "rmsprop", "adagrad"};
static const char *const lr_vals[] = {"0.1", "0.01", "1e-3", "1e-2", "0.001", "3e-4", "1E-3"};
static const char *const mix_vals[] = {"abc1", "",     "1e",   "1-2",   ".5",  "-.5e1", "12abc",
                                       "e5",   "inf",  "0x10", "1e400", "-",   "+.5",   "1.2.3",
                                       "--1",  "it's", "a_b",  "a%b",   "A_B", "7",     "+5"};
static const char *const word_vals[] = {"alpha", "beta", "gamma", "delta", "Alpha", "beta2", "x y"};
static const char *const team_vals[] = {"red", "blue", "green", "Red"};
static const char *const note_vals[] = {"ok", "", "7", "12", "x1", "0.5", "hello world"};
static const char *const flag_vals[] = {"true", "false"};
const char *const fm_names[] = {"trial", "base", "Base", "run-1", "it's", "trial_2", "x%y"};
const char *const fm_users[] = {"alice", "bob", "", "Carol"};
const char *const fm_exp_names[] = {"exp-a", "exp-b", "exp-c"}; /* exp-c has no runs */
const char *const fm_status_names[] = {"", "RUNNING", "FINISHED", "FAILED", "KILLED"};

/* ---- the model's runs --------------------------------------------------------- */

struct store_err fm_err;

uint64_t fm_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int fm_rnd(uint64_t *s, int n)
{
    *s = fm_mix64(*s);
    return (int)(*s % (uint64_t)n);
}

double fm_runif(uint64_t *s)
{
    *s = fm_mix64(*s);
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0);
}

const char *fm_pick(uint64_t *s, const char *const *v, int n)
{
    return v[fm_rnd(s, n)];
}

/* the filter language's "looks numeric" (filter.h), written from its words */
int fm_looks_numeric(const char *s)
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
double fm_cast_real(const char *s)
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
        int x = fm_rnd(s, 16);
        snprintf(out, VLEN, "%s", x == 13 ? "007" : x == 14 ? "-3" : x == 15 ? "+5" : "");
        if (x < 13)
            snprintf(out, VLEN, "%d", x);
        break;
    }
    case 3:
        snprintf(out, VLEN, "%s", PICK(s, mix_vals));
        break;
    case 4:
        snprintf(out, VLEN, "%s%d.%02d", fm_rnd(s, 8) ? "" : "-", fm_rnd(s, 10), fm_rnd(s, 100));
        break;
    case 5:
        snprintf(out, VLEN, "%d", i);
        break;
    case 6:
        snprintf(out, VLEN, "%s", PICK(s, word_vals));
        break;
    default:
        snprintf(out, VLEN, "%s", fm_rnd(s, 2) ? "yes" : "no");
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
        snprintf(out, VLEN, "%d", fm_rnd(s, 7) == 6 ? 10 : fm_rnd(s, 6));
        break;
    case 3:
        snprintf(out, VLEN, "%s", PICK(s, flag_vals));
        break;
    case 4:
        snprintf(out, VLEN, "%s", fm_rnd(s, 2) ? "1" : "2.5");
        break;
    default:
        snprintf(out, VLEN, "s");
    }
}

static double gen_metric(uint64_t *s, int k)
{
    switch (k) {
    case 0:
        return round(fm_runif(s) * 300) / 100;
    case 1:
        return fm_rnd(s, 21) * 0.05;
    case 2: {
        int x = fm_rnd(s, 100);
        return x == 0 ? 1e300 : x == 1 ? -1e300 : fm_runif(s) * 2;
    }
    case 3:
        return fm_rnd(s, 13) / 4.0 - 1;
    case 4: {
        int x = fm_rnd(s, 20);
        return x == 0 ? -0.0 : x == 1 ? 0.0 : -fm_runif(s) * 100;
    }
    case 5:
        return fm_rnd(s, 100) < 35 ? NAN : (double)fm_rnd(s, 5);
    case 6:
        return fm_runif(s);
    default:
        return 1.0;
    }
}

void fm_must(int rc, const char *what)
{
    cr_assert_eq(rc, 0, "%s: rc %d: %s", what, rc, fm_err.msg);
}

static int row_cb(void *ctx, const struct store_run *r)
{
    *(int64_t *)ctx = r->row;
    return 0;
}

void fm_run_id(int i, uint64_t seed, uint8_t id[16])
{
    uint64_t a = fm_mix64(seed ^ (uint64_t)i), b = fm_mix64(a);
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
            if (!has || !fm_looks_numeric(v))
                continue;
            sqlite3_bind_text(s, 1, v, -1, SQLITE_STATIC);
            cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
            double d = sqlite3_column_double(s, 0);
            cr_assert(d == fm_cast_real(v), "CAST('%s' AS REAL) is %.17g, the model says %.17g", v,
                      d, fm_cast_real(v));
            sqlite3_reset(s);
        }
    sqlite3_finalize(s);
    sqlite3_close(db);
}

/* Builds the store and its model: n runs in exp-a (2/3) and exp-b. */
void fm_world_build(struct world *w, int n, uint64_t seed)
{
    int64_t exp_id[2];
    uint64_t s = seed;
    struct timespec ts;

    memset(w, 0, sizeof *w);
    snprintf(w->dir, sizeof w->dir, "/tmp/track-prop-XXXXXX");
    cr_assert_not_null(mkdtemp(w->dir));
    char path[300];
    snprintf(path, sizeof path, "%s/track.db", w->dir);
    fm_must(store_open(path, &(struct store_opts){0}, &w->st, &fm_err), "store_open");
    fm_must(store_experiment_ensure(w->st, "exp-a", 1000, &exp_id[0], &fm_err), "experiment");
    fm_must(store_experiment_ensure(w->st, "exp-b", 1000, &exp_id[1], &fm_err), "experiment");
    w->r = calloc((size_t)n, sizeof *w->r);
    cr_assert_not_null(w->r);
    w->n = n;
    fm_must(store_begin(w->st, &fm_err), "begin");
    for (int i = 0; i < n; i++) {
        struct mrun *r = &w->r[i];
        uint8_t id[16];
        fm_run_id(i, seed, id);
        for (int b = 0; b < 16; b++)
            snprintf(r->hex + 2 * b, 3, "%02x", id[b]);
        r->exp = fm_rnd(&s, 3) == 0;
        r->name = PICK(&s, fm_names);
        r->user = PICK(&s, fm_users);
        r->start = 1000000 + fm_rnd(&s, 1500); /* ~2 runs a millisecond: ties */
        struct store_run_start rs = {.experiment_id = exp_id[r->exp],
                                     .name = r->name,
                                     .start_ms = r->start,
                                     .user = r->user};
        memcpy(rs.id, id, 16);
        fm_must(store_run_start(w->st, &rs, &fm_err), "run start");
        for (int k = 0; k < NP; k++) {
            if (fm_rnd(&s, 100) >= p_pct[k])
                continue;
            r->has_p[k] = 1;
            gen_param(&s, k, i, r->p[k]);
            fm_must(store_param_put(w->st, id, fm_pkeys[k], r->p[k], &fm_err), "param put");
        }
        for (int k = 0; k < NT; k++) {
            int puts = k == 4 ? 1 + fm_rnd(&s, 2) : 1; /* tags are replaced: the last one holds */
            if (fm_rnd(&s, 100) >= t_pct[k])
                continue;
            r->has_t[k] = 1;
            while (puts--) {
                gen_tag(&s, k, r->t[k]);
                fm_must(store_tag_put(w->st, id, fm_tkeys[k], r->t[k], &fm_err), "tag put");
            }
        }
        for (int k = 0; k < NM; k++) {
            double v[3];
            int64_t steps[3] = {0, 1, 2}, times[3] = {10, 11, 12};
            int np = 1 + fm_rnd(&s, 3), first = 0;
            if (fm_rnd(&s, 100) >= m_pct[k])
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
            if (np > 1 && fm_rnd(&s, 2)) { /* two appends: the summary merges them */
                fm_must(store_metric_append(w->st, id, fm_mkeys[k], steps, times, v, 1, &fm_err),
                        "append");
                first = 1;
            }
            fm_must(store_metric_append(w->st, id, fm_mkeys[k], steps + first, times + first,
                                        v + first, (size_t)(np - first), &fm_err),
                    "append");
        }
        if (fm_rnd(&s, 5)) {
            r->status = 2 + fm_rnd(&s, 3);
            r->end = r->start + (fm_rnd(&s, 10) == 0 ? 0 : fm_rnd(&s, 2000000));
            fm_must(store_run_end(w->st, id, r->status, r->end, &fm_err), "run end");
        } else {
            r->status = STORE_RUNNING;
        }
    }
    fm_must(store_commit(w->st, &fm_err), "commit");
    for (int i = 0; i < n; i++) {
        uint8_t id[16];
        fm_run_id(i, seed, id);
        fm_must(store_run_get(w->st, id, row_cb, &w->r[i].row, &fm_err), "run get");
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    w->now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    check_cast(w);
}

void fm_world_free(struct world *w)
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

/* The value a term has for run r; `numeric`: a param or tag as a number. */
struct val fm_term_val(const struct world *w, const struct mrun *r, const struct term *t,
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
        if (!s || (numeric && !fm_looks_numeric(s)))
            v.null = 1;
        else if (numeric)
            v.d = fm_cast_real(s);
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
              : t->kind == T_EXP   ? fm_exp_names[r->exp]
              : t->kind == T_RUNID ? r->hex
                                   : (r->deleted ? "deleted" : "active");
        return v;
    }
}

void fm_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static int status_code(const char *s)
{
    for (int i = 1; i <= 4; i++)
        if (strcasecmp(s, fm_status_names[i]) == 0)
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
            fm_lower(s);
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

int fm_eval(const struct world *w, const struct node *nodes, int id, const struct mrun *r)
{
    const struct node *n = &nodes[id];
    int a, b;
    switch (n->kind) {
    case N_NOT:
        a = fm_eval(w, nodes, n->a, r);
        return a == U ? U : !a;
    case N_AND:
        a = fm_eval(w, nodes, n->a, r);
        b = fm_eval(w, nodes, n->b, r);
        return a == F || b == F ? F : a == U || b == U ? U : T;
    case N_OR:
        a = fm_eval(w, nodes, n->a, r);
        b = fm_eval(w, nodes, n->b, r);
        return a == T || b == T ? T : a == U || b == U ? U : F;
    }
    int numeric = n->op >= C_LT && n->op <= C_GE && n->v[0].kind == L_NUM &&
                  (n->t.kind == T_PARAM || n->t.kind == T_TAG);
    struct val x = fm_term_val(w, r, &n->t, numeric);
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
            fm_lower(pat);
        c = like(pat, x.s, n->op == C_ILIKE);
        return c != n->neg;
    }
    }
}

/* ---- the order ------------------------------------------------------------------ */

static const struct world *sort_w;
static const struct order *sort_o;

static int cmp_runs(const void *pa, const void *pb)
{
    const struct mrun *a = &sort_w->r[*(const int *)pa], *b = &sort_w->r[*(const int *)pb];
    for (int i = 0; i < sort_o->n; i++) {
        struct val x = fm_term_val(sort_w, a, &sort_o->t[i], 0);
        struct val y = fm_term_val(sort_w, b, &sort_o->t[i], 0);
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

int fm_model_list(const struct world *w, const struct query *q, int *out)
{
    int n = 0;
    for (int i = 0; i < w->n; i++) {
        const struct mrun *r = &w->r[i];
        if (r->deleted && !q->named_lifecycle)
            continue;
        if (q->exps && !(q->exps & (1 << r->exp)))
            continue;
        if (q->root >= 0 && fm_eval(w, q->nodes, q->root, r) != T)
            continue;
        out[n++] = i;
    }
    sort_w = w;
    sort_o = &q->order;
    qsort(out, (size_t)n, sizeof *out, cmp_runs);
    return q->limit && n > q->limit ? q->limit : n;
}
