/*
 * store_trace.c: traces and their spans (DESIGN.md "Traces"; schema 10 in
 * store_core.c). A span is one row of its trace; the trace's row keeps the
 * rollups a list shows (spans, errors, tokens, cost, first start, last end,
 * the root's name) and trace_models the spans per model.
 *
 * Rollups stay exact whatever the order and number of requests a trace's
 * spans come in: a new span adds its share; a span sent again (an exporter's
 * retry) first takes its old share back, so counts never double, and the
 * trace's first start and last end are read again from its spans (the old
 * span may have been the extreme one). A batch's shares are summed in
 * memory per trace and written once per trace (struct acc). The insert
 * path's statements are prepared once per handle (st->tr_q), as the
 * feedback path's are.
 */
#include <stdio.h>
#include <string.h>

#include "filter.h"
#include "store_internal.h"

enum {
    TQ_TRACE_FIND,
    TQ_TRACE_NEW,
    TQ_SPAN_OLD,
    TQ_SPAN_ADD,
    TQ_SPAN_PUT,
    TQ_TRACE_ADD,
    TQ_TRACE_EXTENT,
    TQ_MODEL_ADD,
    TQ_COUNT
};

#define SPAN_COLS                                                                                  \
    "(trace, span_id, parent, name, kind, start_ns, end_ns, status, status_message, model,"        \
    " operation, tokens_in, tokens_out, tokens_total, cost, attributes)"                           \
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"

static const char *const tr_sql[TQ_COUNT] = {
    [TQ_TRACE_FIND] = "SELECT id FROM traces WHERE trace_id = ?1",
    [TQ_TRACE_NEW] = "INSERT INTO traces(trace_id, experiment_id, run_uuid, start_ns, end_ns,"
                     " created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [TQ_SPAN_OLD] = "SELECT status, tokens_in, tokens_out, tokens_total, cost, model"
                    " FROM spans WHERE trace = ?1 AND span_id = ?2",
    /* a new span: most are; one sent before fails its primary key and is
     * replaced by TQ_SPAN_PUT after its old share is taken back */
    [TQ_SPAN_ADD] = "INSERT INTO spans" SPAN_COLS,
    [TQ_SPAN_PUT] = "INSERT OR REPLACE INTO spans" SPAN_COLS,
    /* ?2..?7: spans' shares (negative to take one back); ?8 ?9 their times,
     * ?10 a root's name (NULL: keep), ?11 a run (NULL: keep) */
    [TQ_TRACE_ADD] = "UPDATE traces SET spans = spans + ?2, errors = errors + ?3,"
                     " tokens_in = tokens_in + ?4, tokens_out = tokens_out + ?5,"
                     " tokens_total = tokens_total + ?6, cost = cost + ?7,"
                     " start_ns = min(start_ns, ?8), end_ns = max(end_ns, ?9),"
                     " root_name = coalesce(?10, root_name), run_uuid = coalesce(run_uuid, ?11)"
                     " WHERE id = ?1",
    [TQ_TRACE_EXTENT] = "UPDATE traces SET (start_ns, end_ns) = (SELECT min(start_ns), max(end_ns)"
                        " FROM spans WHERE trace = ?1) WHERE id = ?1",
    [TQ_MODEL_ADD] = "INSERT INTO trace_models(trace, model, spans) VALUES(?1, ?2, ?3)"
                     " ON CONFLICT(trace, model) DO UPDATE SET spans = spans + excluded.spans",
};

void sq_trace_close(struct store *st)
{
    for (int i = 0; i < TQ_COUNT; i++) {
        sqlite3_finalize(st->tr_q[i]);
        st->tr_q[i] = NULL;
    }
}

/* A hot statement, reset and cleared for its next use. */
static sqlite3_stmt *tq(struct store *st, int id, struct store_err *err)
{
    sqlite3_stmt *s = sq_prep_once(st, &st->tr_q[id], tr_sql[id], err, "preparing a trace query");
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    return s;
}

static int done(struct store *st, sqlite3_stmt *s, struct store_err *err, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? 0 : sq_db_fail(st, rc, err, what);
}

static int model_add(struct store *st, int64_t trace, const char *model, int64_t n,
                     struct store_err *err)
{
    sqlite3_stmt *s;
    if (!model || !model[0] || !n)
        return 0;
    if (!(s = tq(st, TQ_MODEL_ADD, err)))
        return err->code;
    sqlite3_bind_int64(s, 1, trace);
    sqlite3_bind_text(s, 2, model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, n);
    return done(st, s, err, "counting a trace's model");
}

/* What a run of spans of one trace adds to its row, kept in memory and
 * written once when the trace changes or the batch ends: a batch of 2,000
 * spans of 20 traces is 2,000 inserts and 20 updates, not 10,000 statements. */
#define ACC_MODELS 8
struct acc {
    int64_t trace; /* 0: empty */
    uint8_t trace_id[STORE_TRACE_ID_BYTES];
    const uint8_t *run;
    int64_t spans, errors, tokens_in, tokens_out, tokens_total;
    double cost;
    int64_t start_ns, end_ns;
    const char *root; /* a root's name, the caller's */
    int replaced;     /* a span came again: its times are read back at the flush */
    const char *model[ACC_MODELS];
    int64_t model_n[ACC_MODELS];
    int n_models;
};

static int acc_flush_models(struct store *st, struct acc *a, struct store_err *err)
{
    for (int i = 0; i < a->n_models; i++) {
        int ret = model_add(st, a->trace, a->model[i], a->model_n[i], err);
        if (ret)
            return ret;
    }
    a->n_models = 0;
    return 0;
}

/* Writes what a holds into its trace's row and empties it. */
static int acc_flush(struct store *st, struct acc *a, struct store_err *err)
{
    sqlite3_stmt *s;
    int ret;

    if (!a->trace)
        return 0;
    if (!(s = tq(st, TQ_TRACE_ADD, err)))
        return err->code;
    sqlite3_bind_int64(s, 1, a->trace);
    sqlite3_bind_int64(s, 2, a->spans);
    sqlite3_bind_int64(s, 3, a->errors);
    sqlite3_bind_int64(s, 4, a->tokens_in);
    sqlite3_bind_int64(s, 5, a->tokens_out);
    sqlite3_bind_int64(s, 6, a->tokens_total);
    sqlite3_bind_double(s, 7, a->cost);
    sqlite3_bind_int64(s, 8, a->start_ns);
    sqlite3_bind_int64(s, 9, a->end_ns);
    if (a->root)
        sqlite3_bind_text(s, 10, a->root, -1, SQLITE_STATIC);
    if (a->run)
        sqlite3_bind_blob(s, 11, a->run, 16, SQLITE_STATIC);
    if ((ret = done(st, s, err, "updating a trace")) != 0 ||
        (ret = acc_flush_models(st, a, err)) != 0)
        return ret;
    if (a->replaced) {
        if (!(s = tq(st, TQ_TRACE_EXTENT, err)))
            return err->code;
        sqlite3_bind_int64(s, 1, a->trace);
        if ((ret = done(st, s, err, "updating a trace's times")) != 0)
            return ret;
    }
    a->trace = 0;
    return 0;
}

/* a's trace becomes sp's, found or made (*fresh then 1); a was flushed. */
static int acc_open(struct store *st, struct acc *a, int64_t experiment_id, const uint8_t *run,
                    const struct store_span *sp, int *fresh, struct store_err *err)
{
    sqlite3_stmt *s;
    int64_t trace = 0;
    int rc, ret;

    *fresh = 0;
    if (!(s = tq(st, TQ_TRACE_FIND, err)))
        return err->code;
    sqlite3_bind_blob(s, 1, sp->trace_id, STORE_TRACE_ID_BYTES, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        trace = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_db_fail(st, rc, err, "finding a trace");
    if (!trace) {
        if (!(s = tq(st, TQ_TRACE_NEW, err)))
            return err->code;
        sqlite3_bind_blob(s, 1, sp->trace_id, STORE_TRACE_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, experiment_id);
        if (run)
            sqlite3_bind_blob(s, 3, run, 16, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, sp->start_ns);
        sqlite3_bind_int64(s, 5, sp->end_ns);
        sqlite3_bind_int64(s, 6, sq_now_ms());
        if ((ret = done(st, s, err, "adding a trace")) != 0)
            return ret;
        trace = sqlite3_last_insert_rowid(st->db);
        *fresh = 1;
    }
    memset(a, 0, sizeof(*a));
    a->trace = trace;
    memcpy(a->trace_id, sp->trace_id, STORE_TRACE_ID_BYTES);
    a->run = run;
    a->start_ns = INT64_MAX;
    a->end_ns = INT64_MIN;
    return 0;
}

static void bind_span(sqlite3_stmt *s, int64_t trace, const struct store_span *sp)
{
    sqlite3_bind_int64(s, 1, trace);
    sqlite3_bind_blob(s, 2, sp->span_id, STORE_SPAN_ID_BYTES, SQLITE_STATIC);
    if (sp->has_parent)
        sqlite3_bind_blob(s, 3, sp->parent, STORE_SPAN_ID_BYTES, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, sp->name ? sp->name : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, sp->kind);
    sqlite3_bind_int64(s, 6, sp->start_ns);
    sqlite3_bind_int64(s, 7, sp->end_ns);
    sqlite3_bind_int(s, 8, sp->status);
    sqlite3_bind_text(s, 9, sp->status_message ? sp->status_message : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 10, sp->model ? sp->model : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 11, sp->operation ? sp->operation : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 12, sp->tokens_in);
    sqlite3_bind_int64(s, 13, sp->tokens_out);
    sqlite3_bind_int64(s, 14, sp->tokens_total);
    sqlite3_bind_double(s, 15, sp->cost);
    sqlite3_bind_text(s, 16, sp->attributes ? sp->attributes : "{}", -1, SQLITE_STATIC);
}

/* A span sent before: its old share is taken back (written now, as the
 * accumulated shares are), then the span replaced. */
static int replace_span(struct store *st, struct acc *a, const struct store_span *sp,
                        struct store_err *err)
{
    sqlite3_stmt *s;
    int rc, ret;

    if ((ret = acc_flush_models(st, a, err)) != 0)
        return ret;
    if (!(s = tq(st, TQ_SPAN_OLD, err)))
        return err->code;
    sqlite3_bind_int64(s, 1, a->trace);
    sqlite3_bind_blob(s, 2, sp->span_id, STORE_SPAN_ID_BYTES, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return sq_db_fail(st, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, err, "reading a span");
    }
    a->spans -= 1;
    a->errors -= sqlite3_column_int(s, 0) == STORE_SPAN_ERROR;
    a->tokens_in -= sqlite3_column_int64(s, 1);
    a->tokens_out -= sqlite3_column_int64(s, 2);
    a->tokens_total -= sqlite3_column_int64(s, 3);
    a->cost -= sqlite3_column_double(s, 4);
    char model[STORE_TRACE_MODEL_MAX + 1];
    snprintf(model, sizeof(model), "%s", (const char *)sqlite3_column_text(s, 5));
    sqlite3_reset(s);
    a->replaced = 1;
    if ((ret = model_add(st, a->trace, model, -1, err)) != 0)
        return ret;
    if (!(s = tq(st, TQ_SPAN_PUT, err)))
        return err->code;
    bind_span(s, a->trace, sp);
    return done(st, s, err, "storing a span");
}

static void acc_add(struct acc *a, const struct store_span *sp)
{
    a->spans++;
    a->errors += sp->status == STORE_SPAN_ERROR;
    a->tokens_in += sp->tokens_in;
    a->tokens_out += sp->tokens_out;
    a->tokens_total += sp->tokens_total;
    a->cost += sp->cost;
    if (sp->start_ns < a->start_ns)
        a->start_ns = sp->start_ns;
    if (sp->end_ns > a->end_ns)
        a->end_ns = sp->end_ns;
    if (!sp->has_parent)
        a->root = sp->name ? sp->name : "";
}

int store_spans_put(struct store *st, int64_t experiment_id, const uint8_t *run,
                    const struct store_span *spans, size_t n, int64_t *new_traces,
                    struct store_err *err)
{
    struct acc a = {0};
    int ret;

    sq_err_clear(err);
    if (new_traces)
        *new_traces = 0;
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    int64_t run_row;
    if (run && (ret = sq_run_find(st, run, &run_row, "run", err)) != 0)
        return ret;
    for (size_t i = 0; i < n; i++) {
        const struct store_span *sp = &spans[i];
        if (sp->end_ns < sp->start_ns)
            return sq_fail(err, STORE_E_INVALID, "span \"%.100s\": ends before it starts",
                           sp->name);
        if (!a.trace || memcmp(a.trace_id, sp->trace_id, STORE_TRACE_ID_BYTES) != 0) {
            int fresh;
            if ((ret = acc_flush(st, &a, err)) != 0 ||
                (ret = acc_open(st, &a, experiment_id, run, sp, &fresh, err)) != 0)
                return ret;
            if (new_traces)
                *new_traces += fresh;
        }
        sqlite3_stmt *s = tq(st, TQ_SPAN_ADD, err);
        if (!s)
            return err->code;
        bind_span(s, a.trace, sp);
        int rc = sqlite3_step(s);
        sqlite3_reset(s);
        if (rc == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_CONSTRAINT) {
            if ((ret = replace_span(st, &a, sp, err)) != 0)
                return ret;
        } else if (rc != SQLITE_DONE)
            return sq_db_fail(st, rc, err, "storing a span");
        acc_add(&a, sp);
        /* the model's count, kept for the flush (a few models a trace) */
        if (sp->model && sp->model[0]) {
            int m;
            for (m = 0; m < a.n_models; m++)
                if (strcmp(a.model[m], sp->model) == 0)
                    break;
            if (m == a.n_models && m == ACC_MODELS) {
                if ((ret = acc_flush_models(st, &a, err)) != 0)
                    return ret;
                m = 0;
            }
            if (m == a.n_models) {
                a.model[m] = sp->model;
                a.model_n[m] = 0;
                a.n_models++;
            }
            a.model_n[m]++;
        }
    }
    return acc_flush(st, &a, err);
}

/* ---- reads ------------------------------------------------------------------------ */
#define TRACE_COLS                                                                                 \
    "t.trace_id, e.name, t.run_uuid, t.root_name, t.start_ns, t.end_ns, t.spans, t.errors,"        \
    " t.tokens_in, t.tokens_out, t.tokens_total, t.cost,"                                          \
    " (SELECT group_concat(model, ',') FROM (SELECT model FROM trace_models m"                     \
    "   WHERE m.trace = t.id AND m.spans > 0 ORDER BY m.spans DESC, m.model))"

static int trace_row(sqlite3_stmt *s, store_trace_cb cb, void *ctx)
{
    struct store_trace t = {0};
    if (sqlite3_column_bytes(s, 0) == STORE_TRACE_ID_BYTES)
        memcpy(t.trace_id, sqlite3_column_blob(s, 0), STORE_TRACE_ID_BYTES);
    t.experiment = (const char *)sqlite3_column_text(s, 1);
    if (sqlite3_column_bytes(s, 2) == 16) {
        t.has_run = 1;
        memcpy(t.run, sqlite3_column_blob(s, 2), 16);
    }
    t.root_name = (const char *)sqlite3_column_text(s, 3);
    t.start_ns = sqlite3_column_int64(s, 4);
    t.end_ns = sqlite3_column_int64(s, 5);
    t.spans = sqlite3_column_int64(s, 6);
    t.errors = sqlite3_column_int64(s, 7);
    t.tokens_in = sqlite3_column_int64(s, 8);
    t.tokens_out = sqlite3_column_int64(s, 9);
    t.tokens_total = sqlite3_column_int64(s, 10);
    t.cost = sqlite3_column_double(s, 11);
    t.models = (const char *)sqlite3_column_text(s, 12);
    if (!t.experiment)
        t.experiment = "";
    if (!t.root_name)
        t.root_name = "";
    if (!t.models)
        t.models = "";
    return cb(ctx, &t);
}

int store_trace_list(struct store *st, const struct store_trace_query *q, store_trace_cb cb,
                     void *ctx, int *more, struct store_err *err)
{
    char grant[700] = "1", exps[1600] = "1";
    struct filter_sql f = {0};
    sqlite3_stmt *s = NULL;
    char *sql = NULL;
    int rc, ret = 0, n = 0, limit = q->limit > 0 ? q->limit : 100;

    sq_err_clear(err);
    *more = 0;
    if (q->n_experiments > 64)
        return sq_fail(err, STORE_E_INVALID, "at most 64 experiments in one trace list");
    if (q->viewer &&
        store_grant_sql(q->viewer, "t.experiment_id", STORE_LEVEL_READ, grant, sizeof grant))
        return sq_fail(err, STORE_E_INVALID, "grant predicate too long");
    if (q->filter && q->filter[0] && (ret = filter_trace_compile(q->filter, &f, err)) != 0)
        return ret;
    if (q->n_experiments) {
        size_t len = (size_t)snprintf(exps, sizeof exps, "t.experiment_id IN (");
        for (size_t i = 0; i < q->n_experiments; i++)
            len += (size_t)snprintf(exps + len, sizeof exps - len, "%s:e%zu", i ? ", " : "", i);
        snprintf(exps + len, sizeof exps - len, ")");
    }
    /* the filter's binds are ?1..?N; this query's own are named, numbered after them */
    size_t cap = 4096 + (f.where ? strlen(f.where) : 0);
    if (!(sql = malloc(cap))) {
        ret = sq_fail(err, STORE_E_INTERNAL, "out of memory");
        goto out;
    }
    snprintf(sql, cap,
             "SELECT " TRACE_COLS " FROM traces t JOIN experiments e ON e.id = t.experiment_id"
             " WHERE %s AND %s AND %s AND %s AND %s AND t.tokens_total >= :mintok"
             " AND t.end_ns - t.start_ns >= :mindur AND (:errs = 0 OR t.errors > 0)"
             " ORDER BY t.start_ns DESC, t.id DESC LIMIT :lim",
             f.where ? f.where : "1", exps, grant,
             /* only the terms asked for, so that SQLite can use an index for
              * them: a run's traces by traces_run rather than by scanning
              * them all, a page by seeking rather than from the newest */
             q->run ? "t.run_uuid = :run" : "1", q->before_start_ns ? "t.start_ns < :before" : "1");
    if ((ret = sq_prep(st, sql, &s, err)) != 0)
        goto out;
    for (int i = 0; i < f.n_binds; i++) {
        const struct filter_bind *b = &f.binds[i];
        if (b->type == FILTER_BIND_INT)
            sqlite3_bind_int64(s, i + 1, b->i);
        else if (b->type == FILTER_BIND_DOUBLE)
            sqlite3_bind_double(s, i + 1, b->d);
        else
            sqlite3_bind_text(s, i + 1, b->s, -1, SQLITE_STATIC);
    }
    if (q->run)
        sqlite3_bind_blob(s, sqlite3_bind_parameter_index(s, ":run"), q->run, 16, SQLITE_STATIC);
    if (q->before_start_ns)
        sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":before"), q->before_start_ns);
    sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":mintok"), q->min_tokens);
    sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, ":mindur"), q->min_duration_ns);
    sqlite3_bind_int(s, sqlite3_bind_parameter_index(s, ":errs"), q->errors_only);
    sqlite3_bind_int(s, sqlite3_bind_parameter_index(s, ":lim"), limit + 1);
    for (size_t i = 0; i < q->n_experiments; i++) {
        char name[32];
        snprintf(name, sizeof name, ":e%zu", i);
        sqlite3_bind_int64(s, sqlite3_bind_parameter_index(s, name), q->experiment_ids[i]);
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n++ == limit) {
            *more = 1;
            break;
        }
        if ((ret = trace_row(s, cb, ctx)) != 0)
            break;
    }
    if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing traces");
    if (ret < 0)
        ret = sq_cb_stop(err, ret);
out:
    sqlite3_finalize(s);
    free(sql);
    filter_sql_free(&f);
    return ret;
}

int store_trace_get(struct store *st, const uint8_t trace_id[16], const struct store_viewer *v,
                    store_trace_cb cb, void *ctx, struct store_err *err)
{
    char sql[1500], grant[700] = "1";
    sqlite3_stmt *s = NULL;
    int rc, ret;

    sq_err_clear(err);
    if (v && store_grant_sql(v, "t.experiment_id", STORE_LEVEL_READ, grant, sizeof grant))
        return sq_fail(err, STORE_E_INVALID, "grant predicate too long");
    snprintf(sql, sizeof sql,
             "SELECT " TRACE_COLS " FROM traces t JOIN experiments e ON e.id = t.experiment_id"
             " WHERE t.trace_id = ?1 AND %s",
             grant);
    if ((ret = sq_prep(st, sql, &s, err)) != 0)
        return ret;
    sqlite3_bind_blob(s, 1, trace_id, STORE_TRACE_ID_BYTES, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        ret = trace_row(s, cb, ctx);
    else if (rc == SQLITE_DONE) {
        char hex[33];
        sq_hex_of(trace_id, hex);
        ret = sq_fail(err, STORE_E_NOT_FOUND, "no trace %s", hex);
    } else
        ret = sq_db_fail(st, rc, err, "reading a trace");
    sqlite3_finalize(s);
    return ret;
}

int store_trace_spans(struct store *st, const uint8_t trace_id[16], const uint8_t *after_span,
                      int64_t after_start_ns, int limit, store_span_cb cb, void *ctx, int *more,
                      struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret, n = 0;

    sq_err_clear(err);
    *more = 0;
    if (limit <= 0)
        limit = 10000;
    ret = sq_prep(st,
                  "SELECT sp.span_id, sp.parent, sp.name, sp.kind, sp.start_ns, sp.end_ns,"
                  " sp.status, sp.status_message, sp.model, sp.operation, sp.tokens_in,"
                  " sp.tokens_out, sp.tokens_total, sp.cost, sp.attributes"
                  " FROM spans sp JOIN traces t ON t.id = sp.trace WHERE t.trace_id = ?1"
                  " AND (?2 IS NULL OR (sp.start_ns, sp.span_id) > (?3, ?2))"
                  " ORDER BY sp.start_ns, sp.span_id LIMIT ?4",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_blob(s, 1, trace_id, STORE_TRACE_ID_BYTES, SQLITE_STATIC);
    if (after_span) {
        sqlite3_bind_blob(s, 2, after_span, STORE_SPAN_ID_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, after_start_ns);
    }
    sqlite3_bind_int(s, 4, limit + 1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_span sp = {0};
        if (n++ == limit) {
            *more = 1;
            break;
        }
        memcpy(sp.trace_id, trace_id, STORE_TRACE_ID_BYTES);
        if (sqlite3_column_bytes(s, 0) == STORE_SPAN_ID_BYTES)
            memcpy(sp.span_id, sqlite3_column_blob(s, 0), STORE_SPAN_ID_BYTES);
        if (sqlite3_column_bytes(s, 1) == STORE_SPAN_ID_BYTES) {
            sp.has_parent = 1;
            memcpy(sp.parent, sqlite3_column_blob(s, 1), STORE_SPAN_ID_BYTES);
        }
        sp.name = (const char *)sqlite3_column_text(s, 2);
        sp.kind = sqlite3_column_int(s, 3);
        sp.start_ns = sqlite3_column_int64(s, 4);
        sp.end_ns = sqlite3_column_int64(s, 5);
        sp.status = sqlite3_column_int(s, 6);
        sp.status_message = (const char *)sqlite3_column_text(s, 7);
        sp.model = (const char *)sqlite3_column_text(s, 8);
        sp.operation = (const char *)sqlite3_column_text(s, 9);
        sp.tokens_in = sqlite3_column_int64(s, 10);
        sp.tokens_out = sqlite3_column_int64(s, 11);
        sp.tokens_total = sqlite3_column_int64(s, 12);
        sp.cost = sqlite3_column_double(s, 13);
        sp.attributes = (const char *)sqlite3_column_text(s, 14);
        if ((ret = cb(ctx, &sp)) != 0)
            break;
    }
    if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "reading spans");
    sqlite3_finalize(s);
    return ret < 0 ? sq_cb_stop(err, ret) : ret;
}

/* ---- retention ------------------------------------------------------------------ */
int store_trace_prune(struct store *st, int64_t before_ns, int max_spans, int64_t *spans,
                      int64_t *traces, struct store_err *err)
{
    sqlite3_stmt *s = NULL, *del = NULL;
    int ret, rc;
    int64_t budget = max_spans > 0 ? max_spans : 5000;

    sq_err_clear(err);
    *spans = *traces = 0;
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    /* the oldest traces first; a big one goes over several calls, its
     * spans first and its row last, so a trace is never left without its
     * row while spans remain */
    while (budget > 0) {
        int64_t trace = 0;
        if ((ret = sq_prep_lit(st,
                               "SELECT id FROM traces WHERE start_ns < ?1 ORDER BY start_ns"
                               " LIMIT 1",
                               &s, err)) != 0)
            return ret;
        sqlite3_bind_int64(s, 1, before_ns);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            trace = sqlite3_column_int64(s, 0);
        sq_release(st, s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return sq_db_fail(st, rc, err, "finding old traces");
        if (!trace)
            break;
        if ((ret = sq_prep_lit(st,
                               "DELETE FROM spans WHERE trace = ?1 AND span_id IN"
                               " (SELECT span_id FROM spans WHERE trace = ?1 LIMIT ?2)",
                               &del, err)) != 0)
            return ret;
        sqlite3_bind_int64(del, 1, trace);
        sqlite3_bind_int64(del, 2, budget);
        rc = sqlite3_step(del);
        sq_release(st, del);
        if (rc != SQLITE_DONE)
            return sq_db_fail(st, rc, err, "deleting old spans");
        int64_t n = sqlite3_changes(st->db);
        *spans += n;
        budget -= n;
        if (budget <= 0 && n > 0)
            break; /* this trace may have more: the next call goes on */
        if ((ret = sq_prep_lit(st, "DELETE FROM trace_models WHERE trace = ?1", &del, err)) != 0)
            return ret;
        sqlite3_bind_int64(del, 1, trace);
        rc = sqlite3_step(del);
        sq_release(st, del);
        if (rc != SQLITE_DONE)
            return sq_db_fail(st, rc, err, "deleting an old trace's models");
        if ((ret = sq_prep_lit(st, "DELETE FROM traces WHERE id = ?1", &del, err)) != 0)
            return ret;
        sqlite3_bind_int64(del, 1, trace);
        rc = sqlite3_step(del);
        sq_release(st, del);
        if (rc != SQLITE_DONE)
            return sq_db_fail(st, rc, err, "deleting an old trace");
        ++*traces;
        budget--;
    }
    return 0;
}

int store_trace_owner(struct store *st, const uint8_t trace_id[16], int64_t *experiment_id,
                      uint8_t run[16], int *has_run, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    sq_err_clear(err);
    *has_run = 0;
    if ((ret = sq_prep_lit(st, "SELECT experiment_id, run_uuid FROM traces WHERE trace_id = ?1", &s,
                           err)) != 0)
        return ret;
    sqlite3_bind_blob(s, 1, trace_id, STORE_TRACE_ID_BYTES, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *experiment_id = sqlite3_column_int64(s, 0);
        if (sqlite3_column_bytes(s, 1) == 16) {
            memcpy(run, sqlite3_column_blob(s, 1), 16);
            *has_run = 1;
        }
    } else if (rc == SQLITE_DONE) {
        char hex[33];
        sq_hex_of(trace_id, hex);
        ret = sq_fail(err, STORE_E_NOT_FOUND, "no trace %s", hex);
    } else
        ret = sq_db_fail(st, rc, err, "reading a trace");
    sq_release(st, s);
    return ret;
}
