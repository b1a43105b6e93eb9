/*
 * store_search.c: the run search (store_run_list) and its planner.
 *
 * filter.c compiles a filter into a WHERE over one run (`r`) that reaches
 * params, tags and metric summaries through correlated lookups by primary
 * key: cheap per run, but a plan that reads every run of the experiment
 * costs ~3 us a term a run, 300 ms at 10^5 runs. The planner picks where
 * the runs are read from, as a query planner does, and the WHERE is checked
 * whole on every run read, whichever plan:
 *
 *   SCAN   runs r by runs_experiment (experiment, start): the default order
 *          (newest first) comes from the index, so with a limit the scan
 *          stops early; any other order sorts every match.
 *   TERM   one term of the filter's top-level AND chain that an index
 *          answers (filter.h, struct filter_driver): the runs come from
 *          params_search or metric_summary_key, one row each, then sorted.
 *          Both indexes hold the runs up to their mark only (kept in
 *          batches, store_search_index.c): the runs above it come from
 *          their own row, looked up by its primary key.
 *   ORDER  the order-by's first term, a metric's last value: runs come in
 *          that order from metric_summary_key and the scan stops after the
 *          limit; the runs without a value (NULL, which sorts last) follow
 *          from a second, SCAN-planned query when the first came short.
 *          With runs above the mark, the first limit runs of the index and
 *          the first of those runs (sorted) are sorted together.
 *
 * Costs are in runs read. Each term's matches are counted first, up to
 * PROBE_CAP (a bounded index range count, ~1 ms at the cap). TERM costs its
 * count; ORDER the limit divided by the filter's selectivity (the product of
 * the terms' counts over the runs, as if independent; a capped count makes
 * it an overestimate); SCAN the runs, or with the default order in one
 * experiment the limit over the selectivity as ORDER. The cheapest wins,
 * SCAN on ties. Every query of one listing runs in one read transaction.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "store_internal.h"

#define PROBE_CAP 20000

enum plan_kind { PLAN_SCAN, PLAN_TERM, PLAN_ORDER };

struct plan {
    int kind;
    int driver;         /* PLAN_TERM: the index in f->drivers */
    int64_t order_key;  /* PLAN_ORDER: metric_keys.id of the order's metric */
    int64_t driver_key; /* PLAN_TERM on a metric: its metric_keys.id */
    int64_t mark, top;  /* the params index's mark, the newest run's id */
};

static void bind_filter(sqlite3_stmt *s, const struct filter_sql *f)
{
    /* binds a statement does not use answer SQLITE_RANGE, which is fine */
    for (int i = 0; i < f->n_binds; i++) {
        const struct filter_bind *b = &f->binds[i];
        if (b->type == FILTER_BIND_INT)
            sqlite3_bind_int64(s, i + 1, b->i);
        else if (b->type == FILTER_BIND_DOUBLE)
            sqlite3_bind_double(s, i + 1, b->d);
        else if (b->type == FILTER_BIND_TEXT)
            sqlite3_bind_text(s, i + 1, b->s ? b->s : "", -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(s, i + 1);
    }
}

/* The condition a driver puts on its index row `d` (a param or a metric
 * summary); key_id is the metric's id (FILTER_DRIVE_METRIC). `indexed`:
 * the rows its index holds (the runs up to the mark). */
static void driver_cond(struct sbuf *b, const struct filter_driver *d, int64_t key_id, int indexed)
{
    switch (d->kind) {
    case FILTER_DRIVE_METRIC:
        sq_sb_add(b, "d.key_id = %lld AND d.last%s?%d", (long long)key_id, d->op, d->value_bind);
        break;
    case FILTER_DRIVE_PARAM_NUM:
        sq_sb_add(b, "d.key = ?%d AND d.num%s?%d", d->key_bind, d->op, d->value_bind);
        break;
    case FILTER_DRIVE_PARAM_TEXT:
        if (d->numeric)
            sq_sb_add(b, "d.key = ?%d AND d.num = CAST(?%d AS REAL) AND d.value = ?%d", d->key_bind,
                      d->value_bind, d->value_bind);
        else
            sq_sb_add(b, "d.key = ?%d AND d.num IS NULL AND d.value = ?%d", d->key_bind,
                      d->value_bind);
        break;
    }
    if (indexed)
        sq_sb_add(b, " AND d.ix = 1");
}

static const char *driver_table(const struct filter_driver *d)
{
    return d->kind == FILTER_DRIVE_METRIC ? "metric_summary" : "params";
}

/* *count = the driver's matching index rows, at most PROBE_CAP. */
static int probe(struct store *st, const struct filter_sql *f, const struct filter_driver *d,
                 int64_t key_id, int64_t *count, struct store_err *err)
{
    struct sbuf sql = {0};
    sqlite3_stmt *s = NULL;
    int ret, rc;

    sq_sb_add(&sql, "SELECT count(*) FROM (SELECT 1 FROM %s d WHERE ", driver_table(d));
    driver_cond(&sql, d, key_id, 1);
    sq_sb_add(&sql, " LIMIT %d)", PROBE_CAP);
    if (sql.failed) {
        free(sql.p);
        return sq_fail(err, STORE_E_INTERNAL, "out of memory");
    }
    ret = sq_prep(st, sql.p, &s, err);
    free(sql.p);
    if (ret)
        return ret;
    bind_filter(s, f);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(s, 0);
    else
        ret = sq_db_fail(st, rc, err, "counting a term's runs");
    sqlite3_finalize(s);
    return ret;
}

/* A metric key's id; *found 0 when no run ever logged it. */
static int metric_key(struct store *st, const struct filter_sql *f, int bind, int64_t *id,
                      int *found, struct store_err *err)
{
    const char *name = f->binds[bind - 1].s;
    int ret = sq_key_find(st, name ? name : "", 0, id, err);
    *found = ret == 0;
    return ret < 0 ? ret : 0;
}

/* Chooses the plan (see the header comment). */
static int choose(struct store *st, const struct store_run_query *q, const struct filter_sql *f,
                  int n_exp, struct plan *pl, struct store_err *err)
{
    double runs = 1, sel = 1, cost_scan, cost_order = INFINITY, cost_term = INFINITY;
    int64_t key_ids[FILTER_MAX_DRIVERS] = {0};
    int ret, found;

    memset(pl, 0, sizeof *pl);
    if (q->force_scan || (f->n_drivers == 0 && !f->order_metric_bind))
        return 0;
    if ((ret = sq_top_run(st, &pl->top, err)) != 0 ||
        (ret = sq_index_mark(st, &pl->mark, err)) != 0)
        return ret;
    if (pl->top > 0)
        runs = (double)pl->top;

    for (int i = 0; i < f->n_drivers; i++) {
        const struct filter_driver *d = &f->drivers[i];
        int64_t c = 0;
        if (d->kind == FILTER_DRIVE_METRIC) {
            if ((ret = metric_key(st, f, d->key_bind, &key_ids[i], &found, err)) != 0)
                return ret;
            if (!found) { /* no run has it: the AND is false for every run */
                pl->kind = PLAN_TERM;
                pl->driver = i;
                pl->driver_key = -1;
                return 0;
            }
        }
        if ((ret = probe(st, f, d, key_ids[i], &c, err)) != 0)
            return ret;
        /* the runs above the mark are read by every plan (SCAN reads all
         * runs): they cost none of them more than another */
        sel *= (double)c / runs;
        if (c < PROBE_CAP && (double)c * 1.2 < cost_term) {
            cost_term = (double)c * 1.2;
            pl->driver = i;
            pl->driver_key = key_ids[i];
        }
        if (c == 0)
            break;
    }
    cost_scan = runs;
    if (q->limit > 0 && sel > 0 && n_exp == 1 && f->order_default)
        cost_scan = fmin(runs, (double)q->limit / sel);
    if (f->order_metric_bind && q->limit > 0) {
        if ((ret = metric_key(st, f, f->order_metric_bind, &pl->order_key, &found, err)) != 0)
            return ret;
        if (found)
            cost_order = sel > 0 ? fmin(runs, (double)q->limit / sel) : runs;
    }
    if (cost_term < cost_scan && cost_term <= cost_order)
        pl->kind = PLAN_TERM;
    else if (cost_order < cost_scan)
        pl->kind = PLAN_ORDER;
    return 0;
}

/* What every plan checks on a run: the experiments (binds after the
 * filter's, from ?first_exp), the filter, the viewer's grants, lifecycle. */
static int add_conditions(struct sbuf *sql, const struct store_run_query *q,
                          const struct filter_sql *f, int n_exp, int first_exp,
                          struct store_err *err)
{
    if (n_exp > 0) {
        sq_sb_add(sql, " AND r.experiment_id IN (");
        for (int i = 0; i < n_exp; i++)
            sq_sb_add(sql, "%s?%d", i ? ", " : "", first_exp + i);
        sq_sb_add(sql, ")");
    }
    if (f->where)
        sq_sb_add(sql, " AND (%s)", f->where);
    if (q->viewer) {
        char pred[700];
        if (store_grant_sql(q->viewer, "r.experiment_id", STORE_LEVEL_READ, pred, sizeof pred))
            return sq_fail(err, STORE_E_INTERNAL, "grant query too long");
        sq_sb_add(sql, " AND %s", pred);
    }
    if (!f->lifecycle) /* deleted runs only when the filter asks for them */
        sq_sb_add(sql, " AND r.lifecycle = 'active'");
    if (q->seek) /* integers of ours, not the user's text */
        sq_sb_add(sql, " AND (r.start_ms < %lld OR (r.start_ms = %lld AND r.id %s %lld))",
                  (long long)q->seek_start_ms, (long long)q->seek_start_ms,
                  q->seek_inclusive ? "<=" : "<", (long long)q->seek_row);
    return 0;
}

/* Runs one planned query: the runs in order, at most `limit` (0: all), each
 * to cb; *got counts them. */
static int run_query(struct store *st, const char *sql, const struct filter_sql *f,
                     const int64_t *exp_ids, int n_exp, int limit, store_run_cb cb, void *ctx,
                     int *got, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    struct store_run r;
    int rc, ret = sq_prep(st, sql, &s, err);

    if (ret)
        return ret;
    bind_filter(s, f);
    for (int i = 0; i < n_exp; i++)
        sqlite3_bind_int64(s, f->n_binds + 1 + i, exp_ids[i]);
    sqlite3_bind_int(s, f->n_binds + n_exp + 1, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if ((ret = sq_run_of_row(s, &r, err)) != 0)
            goto out;
        (*got)++;
        if ((ret = cb(ctx, &r)) != 0) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing runs");
out:
    sqlite3_finalize(s);
    return ret;
}

/* the run of a row `alias` and its experiment */
#define JOIN_RUN(alias)                                                                            \
    " CROSS JOIN runs r ON r.id = " alias ".run"                                                   \
    " CROSS JOIN experiments e ON e.id = r.experiment_id"

/* PLAN_ORDER's runs with a value of the order metric, in its order, the
 * filter checked, at most `limit`, selecting `cols`: those its index holds
 * (read in order, stopping early), or with `waiting` those above the
 * index's mark (each by its own summary, then sorted). */
static int order_arm(struct sbuf *sql, const char *cols, int waiting, const struct plan *pl,
                     const struct store_run_query *q, const struct filter_sql *f, int n_exp,
                     const char *tie, struct store_err *err)
{
    int ret;

    if (waiting) {
        sq_sb_add(sql, "SELECT %s FROM runs n CROSS JOIN metric_summary d ON d.run = n.id", cols);
        sq_sb_add(sql, JOIN_RUN("d") " WHERE n.id > %lld AND", (long long)pl->mark);
    } else
        sq_sb_add(sql, "SELECT %s FROM metric_summary d" JOIN_RUN("d") " WHERE d.ix = 1 AND", cols);
    sq_sb_add(sql, " d.key_id = %lld AND d.last IS NOT NULL", (long long)pl->order_key);
    if ((ret = add_conditions(sql, q, f, n_exp, f->n_binds + 1, err)) != 0)
        return ret;
    sq_sb_add(sql, " ORDER BY d.last %s, %s%s LIMIT ?%d", f->order_desc ? "DESC" : "ASC",
              f->order_rest, tie, f->n_binds + n_exp + 1);
    return 0;
}

/* PLAN_ORDER's first query: the index's arm alone, or with runs above the
 * mark, its first `limit` runs and the waiting runs' first sorted together
 * (the first `limit` of all are among them). */
static int order_sql(const struct plan *pl, const struct store_run_query *q,
                     const struct filter_sql *f, int n_exp, const char *tie, struct sbuf *sql,
                     struct store_err *err)
{
    int ret;

    if (pl->top <= pl->mark)
        ret = order_arm(sql, RUN_COLUMNS, 0, pl, q, f, n_exp, tie, err);
    else {
        sq_sb_add(sql, RUN_SELECT " WHERE r.id IN (SELECT run FROM (");
        if ((ret = order_arm(sql, "d.run", 0, pl, q, f, n_exp, tie, err)) != 0)
            return ret;
        sq_sb_add(sql, ") UNION ALL SELECT run FROM (");
        if ((ret = order_arm(sql, "d.run", 1, pl, q, f, n_exp, tie, err)) != 0)
            return ret;
        sq_sb_add(sql, ")) ORDER BY %s%s LIMIT ?%d", f->order, tie, f->n_binds + n_exp + 1);
    }
    if (ret == 0 && sql->failed)
        ret = sq_fail(err, STORE_E_INVALID, "query too long");
    return ret;
}

/* The SQL of plan pl; phase 2 of PLAN_ORDER is a SCAN of the runs whose
 * order metric is NULL. */
static int plan_sql(const struct plan *pl, int phase2, const struct store_run_query *q,
                    const struct filter_sql *f, int n_exp, struct sbuf *sql, struct store_err *err)
{
    const char *order = f->order ? f->order : "r.start_ms DESC";
    size_t olen = strlen(order);
    /* newest-created first among ties, unless the order already says so */
    const char *tie = olen >= 9 && strcmp(order + olen - 9, "r.id DESC") == 0 ? "" : ", r.id DESC";
    int ret;

    if (pl->kind == PLAN_ORDER && !phase2)
        return order_sql(pl, q, f, n_exp, tie, sql, err);
    if (pl->kind == PLAN_TERM && pl->top > pl->mark) {
        /* the index's runs, then each run above its mark by its own row
         * (the two are disjoint: a row is in the index when its run is at
         * or below the mark) */
        const struct filter_driver *d = &f->drivers[pl->driver];
        sq_sb_add(sql, "SELECT " RUN_COLUMNS " FROM (SELECT d.run AS run FROM %s d WHERE ",
                  driver_table(d));
        driver_cond(sql, d, pl->driver_key, 1);
        sq_sb_add(sql,
                  " UNION ALL SELECT d.run FROM runs n CROSS JOIN %s d ON d.run = n.id"
                  " WHERE n.id > %lld AND ",
                  driver_table(d), (long long)pl->mark);
        driver_cond(sql, d, pl->driver_key, 0);
        sq_sb_add(sql, ") pr" JOIN_RUN("pr") " WHERE 1");
    } else if (pl->kind == PLAN_TERM) {
        const struct filter_driver *d = &f->drivers[pl->driver];
        sq_sb_add(sql, "SELECT " RUN_COLUMNS " FROM %s d" JOIN_RUN("d") " WHERE ", driver_table(d));
        driver_cond(sql, d, pl->driver_key, 1);
    } else {
        sq_sb_add(sql, RUN_SELECT " WHERE 1");
        if (phase2)
            sq_sb_add(sql,
                      " AND (SELECT s.last FROM metric_summary s WHERE s.run = r.id"
                      " AND s.key_id = %lld) IS NULL",
                      (long long)pl->order_key);
    }
    if ((ret = add_conditions(sql, q, f, n_exp, f->n_binds + 1, err)) != 0)
        return ret;
    sq_sb_add(sql, " ORDER BY %s%s LIMIT ?%d", order, tie, f->n_binds + n_exp + 1);
    if (sql->failed)
        return sq_fail(err, STORE_E_INVALID, "query too long");
    return 0;
}

/* Runs of the named experiments (NULL or an empty list: all; an unknown
 * name is STORE_E_NOT_FOUND) matching the filter, in the given order with
 * the newest-created first among ties, at most q->limit of them (0: all).
 * A non-zero answer from cb stops the listing and is returned. */
int store_run_list(struct store *st, const struct store_run_query *q, store_run_cb cb, void *ctx,
                   struct store_err *err)
{
    struct filter_sql f = {0};
    struct sbuf sql = {0};
    struct plan pl;
    int64_t *exp_ids = NULL;
    char cbuf[CLIP_LEN + 4];
    int n_exp = 0, have_filter = 0, ret, got = 0, own_txn = 0;

    sq_err_clear(err);
    if (q == NULL || cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "query or callback missing");
    if (q->limit < 0)
        return sq_fail(err, STORE_E_INVALID, "limit %d is negative", q->limit);
    if (sqlite3_get_autocommit(st->db)) { /* one view for the probes and the queries */
        if ((ret = sq_run_q(st, Q_BEGIN_READ, err, "beginning a search")) != 0)
            return ret;
        own_txn = 1;
    }
    if (q->experiments) {
        while (q->experiments[n_exp])
            n_exp++;
        if (n_exp > RUN_LIST_MAX_EXPERIMENTS) {
            ret = sq_fail(err, STORE_E_INVALID, "%d experiments given; at most %d", n_exp,
                          RUN_LIST_MAX_EXPERIMENTS);
            goto out;
        }
        exp_ids = calloc((size_t)n_exp + 1, sizeof *exp_ids);
        if (exp_ids == NULL) {
            ret = sq_fail(err, STORE_E_INTERNAL, "out of memory");
            goto out;
        }
        for (int i = 0; i < n_exp; i++) {
            int found = 0;
            ret = sq_experiment_id_of(st, q->experiments[i], &exp_ids[i], &found, err);
            if (ret)
                goto out;
            if (found && q->viewer) { /* one the viewer cannot read does not exist for it */
                int level = 0;
                ret = store_grant_level(st, q->viewer, exp_ids[i], &level, err);
                if (ret)
                    goto out;
                found = level >= STORE_LEVEL_READ;
            }
            if (!found) {
                ret = sq_fail(err, STORE_E_NOT_FOUND, "experiment \"%s\" not found",
                              sq_clip(q->experiments[i], cbuf, sizeof cbuf));
                goto out;
            }
        }
    }
    ret = filter_compile(q->filter, q->order_by, sq_now_ms(), &f, err);
    if (ret)
        goto out;
    have_filter = 1;
    if (q->seek && !f.order_default) {
        ret = sq_fail(err, STORE_E_INVALID, "a seek needs the default order");
        goto out;
    }
    for (int i = 0; i < f.n_binds; i++) {
        int kind = 0;
        if (!f.binds[i].feedback_key)
            continue;
        if ((ret = store_feedback_name_kind(st, f.binds[i].s, &kind, err)) != 0)
            goto out;
        if (kind == STORE_FB_LABEL) {
            ret = sq_fail(err, STORE_E_INVALID,
                          "feedback.%s holds labels, which cannot be compared or ordered "
                          "(only numbers, by their mean, and booleans, by their true ratio)",
                          sq_clip(f.binds[i].s, cbuf, sizeof cbuf));
            goto out;
        }
    }
    if ((ret = choose(st, q, &f, n_exp, &pl, err)) != 0)
        goto out;
    if (pl.kind == PLAN_TERM && pl.driver_key < 0)
        goto out; /* a term on a metric no run has: nothing matches */
    if ((ret = plan_sql(&pl, 0, q, &f, n_exp, &sql, err)) != 0)
        goto out;
    ret = run_query(st, sql.p, &f, exp_ids, n_exp, q->limit, cb, ctx, &got, err);
    if (ret == 0 && pl.kind == PLAN_ORDER && (q->limit == 0 || got < q->limit)) {
        int limit = q->limit ? q->limit - got : 0;
        free(sql.p);
        memset(&sql, 0, sizeof sql);
        if ((ret = plan_sql(&pl, 1, q, &f, n_exp, &sql, err)) != 0)
            goto out;
        ret = run_query(st, sql.p, &f, exp_ids, n_exp, limit, cb, ctx, &got, err);
    }
out:
    if (own_txn)
        sq_run_q(st, Q_COMMIT, NULL, "ending a search");
    if (have_filter)
        filter_sql_free(&f);
    free(sql.p);
    free(exp_ids);
    return ret;
}

/* The plan store_run_list would choose, as text ("scan", "term N",
 * "order"), and SQLite's EXPLAIN QUERY PLAN of its first query, one line
 * per step joined by '\n', into out (tests of the planned shape). */
int store_run_list_plan(struct store *st, const struct store_run_query *q, char *out, size_t cap,
                        struct store_err *err)
{
    struct filter_sql f = {0};
    struct sbuf sql = {0}, eqp = {0};
    struct plan pl;
    sqlite3_stmt *s = NULL;
    int n_exp = 0, ret, rc;

    sq_err_clear(err);
    if (!q || !out || cap == 0)
        return sq_fail(err, STORE_E_INVALID, "query or output missing");
    out[0] = '\0';
    if (q->experiments)
        while (q->experiments[n_exp])
            n_exp++;
    if ((ret = filter_compile(q->filter, q->order_by, sq_now_ms(), &f, err)) != 0)
        return ret;
    if ((ret = choose(st, q, &f, n_exp, &pl, err)) != 0)
        goto out;
    if (pl.kind == PLAN_TERM && pl.driver_key < 0) {
        snprintf(out, cap, "none\n");
        goto out;
    }
    if ((ret = plan_sql(&pl, 0, q, &f, n_exp, &sql, err)) != 0)
        goto out;
    if (pl.kind == PLAN_TERM)
        sq_sb_add(&eqp, "term %d\n", pl.driver);
    else
        sq_sb_add(&eqp, "%s\n", pl.kind == PLAN_ORDER ? "order" : "scan");
    {
        struct sbuf e = {0};
        sq_sb_add(&e, "EXPLAIN QUERY PLAN %s", sql.p);
        ret =
            e.failed ? sq_fail(err, STORE_E_INTERNAL, "out of memory") : sq_prep(st, e.p, &s, err);
        free(e.p);
    }
    if (ret)
        goto out;
    bind_filter(s, &f);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        sq_sb_add(&eqp, "%s\n", (const char *)sqlite3_column_text(s, 3));
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "explaining a search");
    else if (eqp.failed)
        ret = sq_fail(err, STORE_E_INTERNAL, "out of memory");
    else
        snprintf(out, cap, "%s", eqp.p);
out:
    sqlite3_finalize(s);
    filter_sql_free(&f);
    free(sql.p);
    free(eqp.p);
    return ret;
}
