/*
 * store_feedback.c: feedback scores (store.h "feedback"): adding one (its
 * name's type fixed by the first value, the (run, name) summary and label
 * counts updated in the same transaction), listing them with a keyset
 * cursor, and the summaries read by `track feedback summary` and compare.
 * The filter language reaches feedback_summary.score itself (filter_term.c);
 * gc removes a run's rows (store_lifecycle.c). The schema is migration 8 in
 * store_core.c.
 *
 * The insert path prepares its statements once per handle (st->fb_q), since
 * an LLM judge may send 10^4 scores in one batch.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

enum { FQ_NAME_GET, FQ_NAME_PUT, FQ_NAME_SET_KIND, FQ_INSERT, FQ_SUM_PUT, FQ_LABEL_PUT, FQ_COUNT };

static const char *const fb_sql[FQ_COUNT] = {
    [FQ_NAME_GET] = "SELECT id, kind FROM feedback_names WHERE name = ?1",
    [FQ_NAME_PUT] = "INSERT INTO feedback_names(name, kind) VALUES(?1, ?2)",
    [FQ_NAME_SET_KIND] = "UPDATE feedback_names SET kind = ?2 WHERE id = ?1",
    [FQ_INSERT] = "INSERT INTO feedback(run, target_kind, target, trace_id, span_id, name_id,"
                  " kind, num, label, comment, rationale, source, source_id, created_ms)"
                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    /* ?4 1 when the score has a value, ?5 1 with a comment, ?6 its number
     * (NULL: none), ?7 1 for a true boolean */
    [FQ_SUM_PUT] =
        "INSERT INTO feedback_summary(run, name_id, kind, count, comments, sum, min, max,"
        " true_count, score) VALUES(?1, ?2, ?3, ?4, ?5, coalesce(?6, 0), ?6, ?6, ?7,"
        " CASE WHEN ?3 IN (1, 2) AND ?4 > 0 THEN coalesce(?6, 0) END)"
        " ON CONFLICT(run, name_id) DO UPDATE SET kind = max(kind, excluded.kind),"
        " count = count + excluded.count, comments = comments + excluded.comments,"
        " sum = sum + excluded.sum, min = min(coalesce(min, excluded.min), coalesce(excluded.min,"
        " min)), max = max(coalesce(max, excluded.max), coalesce(excluded.max, max)),"
        " true_count = true_count + excluded.true_count,"
        " score = CASE WHEN max(kind, excluded.kind) = 1 AND count + excluded.count > 0"
        "   THEN (sum + excluded.sum) / (count + excluded.count)"
        "   WHEN max(kind, excluded.kind) = 2 AND count + excluded.count > 0"
        "   THEN CAST(true_count + excluded.true_count AS REAL) / (count + excluded.count) END",
    [FQ_LABEL_PUT] = "INSERT INTO feedback_labels(run, name_id, label, count) VALUES(?1, ?2, ?3, 1)"
                     " ON CONFLICT(run, name_id, label) DO UPDATE SET count = count + 1",
};

void sq_feedback_close(struct store *st)
{
    for (int i = 0; i < FQ_COUNT; i++) {
        sqlite3_finalize(st->fb_q[i]);
        st->fb_q[i] = NULL;
    }
}

static sqlite3_stmt *fq(struct store *st, int id, struct store_err *err)
{
    return sq_prep_once(st, &st->fb_q[id], fb_sql[id], err, "preparing a feedback query");
}

static const char *const kind_names[] = {"comments", "numbers", "booleans", "labels"};

static int step_done(struct store *st, sqlite3_stmt *s, struct store_err *err, const char *what)
{
    int rc = sqlite3_step(s), ret = 0;
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, what);
    sqlite3_reset(s);
    return ret;
}

/* The id of name (created with `kind` when new) and the kind it holds; a
 * first value fixes a name that held only comments. */
static int name_fix(struct store *st, const char *name, int kind, int64_t *id, int *held,
                    struct store_err *err)
{
    sqlite3_stmt *s = fq(st, FQ_NAME_GET, err);
    int rc, ret = 0;

    if (!s)
        return err->code;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        *held = sqlite3_column_int(s, 1);
    } else if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "looking up a feedback name");
    }
    sqlite3_reset(s);
    if (ret)
        return ret;
    if (rc == SQLITE_DONE) {
        if (!(s = fq(st, FQ_NAME_PUT, err)))
            return err->code;
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 2, kind);
        if ((ret = step_done(st, s, err, "adding a feedback name")) != 0)
            return ret;
        *id = sqlite3_last_insert_rowid(st->db);
        *held = kind;
        return 0;
    }
    if (*held == STORE_FB_NONE && kind != STORE_FB_NONE) {
        if (!(s = fq(st, FQ_NAME_SET_KIND, err)))
            return err->code;
        sqlite3_bind_int64(s, 1, *id);
        sqlite3_bind_int(s, 2, kind);
        if ((ret = step_done(st, s, err, "fixing a feedback name's type")) != 0)
            return ret;
        *held = kind;
    }
    return 0;
}

static int nonempty(const char *s)
{
    return s && *s;
}

int store_feedback_add(struct store *st, const struct store_score *sc, int64_t *id,
                       struct store_err *err)
{
    char cbuf[CLIP_LEN + 4];
    sqlite3_stmt *s;
    int64_t run_id = 0, name_id = 0;
    int held = 0, ret;
    double num = 0;

    sq_err_clear(err);
    if ((ret = sq_writable(st, err)) != 0 || (ret = sq_check_name(sc->name, "feedback name", err)))
        return ret;
    if (sc->kind < STORE_FB_NONE || sc->kind > STORE_FB_LABEL)
        return sq_fail(err, STORE_E_INVALID, "feedback kind %d: unknown", sc->kind);
    if (sc->source < STORE_FB_HUMAN || sc->source > STORE_FB_CODE)
        return sq_fail(err, STORE_E_INVALID, "feedback source %d: unknown", sc->source);
    if (sc->kind == STORE_FB_NONE && !nonempty(sc->comment))
        return sq_fail(err, STORE_E_INVALID, "feedback \"%s\": neither a value nor a comment",
                       sq_clip(sc->name, cbuf, sizeof cbuf));
    if (sc->kind == STORE_FB_NUMBER && !isfinite(sc->number))
        return sq_fail(err, STORE_E_INVALID, "feedback value: %g is not a finite number",
                       sc->number);
    if (sc->kind == STORE_FB_LABEL && !nonempty(sc->label))
        return sq_fail(err, STORE_E_INVALID, "feedback label is empty");
    if (!sc->has_run && !sc->has_trace)
        return sq_fail(err, STORE_E_INVALID, "feedback target: neither a run nor a trace");
    if (sc->target_kind < STORE_FB_T_RUN || sc->target_kind > STORE_FB_T_SPAN)
        return sq_fail(err, STORE_E_INVALID, "feedback target kind %d: unknown", sc->target_kind);
    if (sc->has_run && (ret = sq_run_find_live(st, sc->run, &run_id, err)) != 0)
        return ret;
    if ((ret = name_fix(st, sc->name, sc->kind, &name_id, &held, err)) != 0)
        return ret;
    if (sc->kind != STORE_FB_NONE && held != sc->kind) {
        char vbuf[64];
        if (sc->kind == STORE_FB_NUMBER)
            snprintf(vbuf, sizeof vbuf, "a number %.17g", sc->number);
        else if (sc->kind == STORE_FB_BOOL)
            snprintf(vbuf, sizeof vbuf, "a boolean %s", sc->boolean ? "true" : "false");
        else
            snprintf(vbuf, sizeof vbuf, "a label \"%.40s\"", sc->label);
        return sq_fail(err, STORE_E_CONFLICT, "feedback \"%s\" holds %s; got %s",
                       sq_clip(sc->name, cbuf, sizeof cbuf), kind_names[held], vbuf);
    }
    if (sc->kind == STORE_FB_NUMBER)
        num = sc->number;
    else if (sc->kind == STORE_FB_BOOL)
        num = sc->boolean ? 1 : 0;

    if (!(s = fq(st, FQ_INSERT, err)))
        return err->code;
    if (sc->has_run)
        sqlite3_bind_int64(s, 1, run_id);
    else
        sqlite3_bind_null(s, 1);
    sqlite3_bind_int(s, 2, sc->target_kind);
    sqlite3_bind_text(s, 3, sc->target ? sc->target : "", -1, SQLITE_STATIC);
    if (sc->has_trace)
        sqlite3_bind_blob(s, 4, sc->trace, 16, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    if (sc->has_span)
        sqlite3_bind_blob(s, 5, sc->span, 8, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 5);
    sqlite3_bind_int64(s, 6, name_id);
    sqlite3_bind_int(s, 7, sc->kind);
    if (sc->kind == STORE_FB_NUMBER || sc->kind == STORE_FB_BOOL)
        sqlite3_bind_double(s, 8, num);
    else
        sqlite3_bind_null(s, 8);
    if (sc->kind == STORE_FB_LABEL)
        sqlite3_bind_text(s, 9, sc->label, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 9);
    if (nonempty(sc->comment))
        sqlite3_bind_text(s, 10, sc->comment, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 10);
    if (nonempty(sc->rationale))
        sqlite3_bind_text(s, 11, sc->rationale, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 11);
    sqlite3_bind_int(s, 12, sc->source);
    sqlite3_bind_text(s, 13, sc->source_id ? sc->source_id : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 14, sc->time_ms);
    if ((ret = step_done(st, s, err, "adding a feedback score")) != 0)
        return ret;
    if (id)
        *id = sqlite3_last_insert_rowid(st->db);
    if (!sc->has_run)
        return 0; /* traces keep rollups of their own */

    if (!(s = fq(st, FQ_SUM_PUT, err)))
        return err->code;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, name_id);
    sqlite3_bind_int(s, 3, held);
    sqlite3_bind_int(s, 4, sc->kind != STORE_FB_NONE);
    sqlite3_bind_int(s, 5, nonempty(sc->comment));
    if (sc->kind == STORE_FB_NUMBER || sc->kind == STORE_FB_BOOL)
        sqlite3_bind_double(s, 6, num);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_int(s, 7, sc->kind == STORE_FB_BOOL && sc->boolean);
    if ((ret = step_done(st, s, err, "updating a feedback summary")) != 0)
        return ret;
    if (sc->kind != STORE_FB_LABEL)
        return 0;
    if (!(s = fq(st, FQ_LABEL_PUT, err)))
        return err->code;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, name_id);
    sqlite3_bind_text(s, 3, sc->label, -1, SQLITE_STATIC);
    return step_done(st, s, err, "counting a feedback label");
}

int store_feedback_name_kind(struct store *st, const char *name, int *kind, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    sq_err_clear(err);
    *kind = STORE_FB_NONE;
    if ((ret = sq_prep(st, "SELECT kind FROM feedback_names WHERE name = ?1", &s, err)) != 0)
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *kind = sqlite3_column_int(s, 0);
    else if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "looking up a feedback name");
    sqlite3_finalize(s);
    return ret;
}

/* ---- listing ----------------------------------------------------------------------- */

/* The active-run scope of an experiment: its id, NOT_FOUND naming it. */
static int experiment_scope(struct store *st, const char *name, int64_t *id, struct store_err *err)
{
    char cbuf[CLIP_LEN + 4];
    int found = 0, ret = sq_experiment_id_of(st, name, id, &found, err);

    if (ret == 0 && !found)
        ret = sq_fail(err, STORE_E_NOT_FOUND, "experiment \"%s\" not found",
                      sq_clip(name, cbuf, sizeof cbuf));
    return ret;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

/* The score in the current row of a listing (columns of SCORE_COLS). */
#define SCORE_COLS                                                                                 \
    "f.id, r.uuid, f.target_kind, f.target, f.trace_id, f.span_id, n.name, f.kind, f.num,"         \
    " f.label, f.comment, f.rationale, f.source, f.source_id, f.created_ms, f.run"

static void score_of(sqlite3_stmt *s, struct store_score *o)
{
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(s, 0);
    if (sqlite3_column_bytes(s, 1) == 16) {
        o->has_run = 1;
        memcpy(o->run, sqlite3_column_blob(s, 1), 16);
    }
    o->target_kind = sqlite3_column_int(s, 2);
    o->target = col_text(s, 3);
    if (sqlite3_column_bytes(s, 4) == 16) {
        o->has_trace = 1;
        memcpy(o->trace, sqlite3_column_blob(s, 4), 16);
    }
    if (sqlite3_column_bytes(s, 5) == 8) {
        o->has_span = 1;
        memcpy(o->span, sqlite3_column_blob(s, 5), 8);
    }
    o->name = col_text(s, 6);
    o->kind = sqlite3_column_int(s, 7);
    o->number = sqlite3_column_double(s, 8);
    o->boolean = o->kind == STORE_FB_BOOL && o->number != 0;
    o->label = col_text(s, 9);
    o->comment = col_text(s, 10);
    o->rationale = col_text(s, 11);
    o->source = sqlite3_column_int(s, 12);
    o->source_id = col_text(s, 13);
    o->time_ms = sqlite3_column_int64(s, 14);
}

int store_feedback_list(struct store *st, const struct store_feedback_query *q, store_score_cb cb,
                        void *ctx, struct store_err *err)
{
    struct sbuf sql = {0};
    sqlite3_stmt *s = NULL;
    int64_t run_id = 0, exp_id = 0;
    int rc, ret;

    sq_err_clear(err);
    if (!cb)
        return sq_fail(err, STORE_E_INVALID, "no callback");
    if (q->has_run && (ret = sq_run_find(st, q->run, &run_id, "run", err)) != 0)
        return ret;
    if (!q->has_run && q->experiment && (ret = experiment_scope(st, q->experiment, &exp_id, err)))
        return ret;
    sq_sb_add(&sql,
              "SELECT " SCORE_COLS " FROM feedback f JOIN feedback_names n ON n.id = f.name_id");
    /* a trace's scores may have no run */
    sq_sb_add(&sql, q->has_trace ? " LEFT JOIN runs r ON r.id = f.run WHERE f.trace_id = ?9"
                                 : " JOIN runs r ON r.id = f.run WHERE 1");
    if (q->has_run && !q->has_trace)
        sq_sb_add(&sql, " AND f.run = ?1");
    else if (q->experiment && !q->has_trace)
        sq_sb_add(&sql, " AND r.experiment_id = ?2 AND r.lifecycle = 'active'");
    if (q->target)
        sq_sb_add(&sql, " AND f.target = ?3");
    if (q->name)
        sq_sb_add(&sql, " AND n.name = ?4");
    sq_sb_add(&sql, q->has_trace ? " AND f.id > ?7 ORDER BY f.id LIMIT ?8"
                                 : " AND (f.run, f.target, f.id) > (?5, ?6, ?7)"
                                   " ORDER BY f.run, f.target, f.id LIMIT ?8");
    if (sql.failed) {
        free(sql.p);
        return sq_fail(err, STORE_E_INTERNAL, "out of memory building a query");
    }
    ret = sq_prep(st, sql.p, &s, err);
    free(sql.p);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, exp_id);
    if (q->target)
        sqlite3_bind_text(s, 3, q->target, -1, SQLITE_STATIC);
    if (q->name)
        sqlite3_bind_text(s, 4, q->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, q->after_run);
    sqlite3_bind_text(s, 6, q->after_target ? q->after_target : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, q->after_id);
    sqlite3_bind_int64(s, 8, q->limit > 0 ? q->limit : -1);
    if (q->has_trace)
        sqlite3_bind_blob(s, 9, q->trace, 16, SQLITE_STATIC);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_score sc;
        score_of(s, &sc);
        int r = cb(ctx, &sc, sqlite3_column_int64(s, 15));
        if (r) {
            ret = sq_cb_stop(err, r);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing feedback");
out:
    sqlite3_finalize(s);
    return ret;
}

/* ---- summaries ----------------------------------------------------------------------- */

/* Where the rows of one summary item are: ?1 run row (or 0), ?2 experiment
 * id (or 0), ?3 target (by target), ?4 name id. */
#define SCOPE_RUN " f.run = ?1"
#define SCOPE_EXP                                                                                  \
    " f.run IN (SELECT id FROM runs WHERE experiment_id = ?2 AND lifecycle = 'active')"
#define SCOPE_TARGET " f.run = ?1 AND f.target = ?3"

struct details {
    const char *labels[STORE_FB_SUMMARY_LABELS];
    char *label_mem[STORE_FB_SUMMARY_LABELS];
    int64_t label_counts[STORE_FB_SUMMARY_LABELS];
    double dist_values[STORE_FB_DIST_VALUES + 1];
    int64_t dist_counts[STORE_FB_DIST_VALUES + 1];
};

static void details_free(struct details *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(d->label_mem[i]);
        d->label_mem[i] = NULL;
    }
}

static int bind_scope(sqlite3_stmt *s, int64_t run_id, int64_t exp_id, const char *target,
                      int64_t name_id)
{
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, exp_id);
    sqlite3_bind_text(s, 3, target ? target : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, name_id);
    return 0;
}

/* Fills the label counts and the distribution of item o from the rows in
 * `scope` (labels from feedback_labels unless by target). */
/* The statement dq[i] for sql, prepared at its first use in a listing
 * (every item of one listing has the same scope) and reset for the next. */
static int detail_q(struct store *st, sqlite3_stmt **dq, int i, const char *sql, sqlite3_stmt **s,
                    struct store_err *err)
{
    int ret = 0;
    if (!dq[i])
        ret = sq_prep(st, sql, &dq[i], err);
    *s = dq[i];
    return ret;
}

static int fill_details(struct store *st, sqlite3_stmt **dq, const char *scope, int by_target,
                        int64_t run_id, int64_t exp_id, const char *target, int64_t name_id,
                        struct store_feedback_summary *o, struct details *d, struct store_err *err)
{
    char sql[512];
    sqlite3_stmt *s = NULL;
    int rc, ret = 0;

    if (o->kind == STORE_FB_LABEL) {
        int64_t listed = 0, total = 0;
        if (by_target)
            snprintf(sql, sizeof sql,
                     "SELECT f.label, count(*) FROM feedback f WHERE%s AND f.name_id = ?4"
                     " AND f.kind = 3 GROUP BY f.label ORDER BY 2 DESC, 1",
                     scope);
        else
            snprintf(sql, sizeof sql,
                     "SELECT f.label, sum(f.count) FROM feedback_labels f WHERE%s"
                     " AND f.name_id = ?4 GROUP BY f.label ORDER BY 2 DESC, 1",
                     scope);
        if ((ret = detail_q(st, dq, 0, sql, &s, err)) != 0)
            return ret;
        bind_scope(s, run_id, exp_id, target, name_id);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            int64_t n = sqlite3_column_int64(s, 1);
            total += n;
            if (o->n_labels < STORE_FB_SUMMARY_LABELS) {
                char *m = strdup(col_text(s, 0));
                if (!m) {
                    ret = sq_fail(err, STORE_E_INTERNAL, "out of memory");
                    goto out;
                }
                d->label_mem[o->n_labels] = m;
                d->labels[o->n_labels] = m;
                d->label_counts[o->n_labels++] = n;
                listed += n;
            }
        }
        if (rc != SQLITE_DONE)
            ret = sq_db_fail(st, rc, err, "counting feedback labels");
        o->labels = d->labels;
        o->label_counts = d->label_counts;
        o->other_labels = total - listed;
        goto out;
    }
    if (o->kind != STORE_FB_NUMBER || o->count == 0)
        return 0;
    snprintf(sql, sizeof sql,
             "SELECT f.num, count(*) FROM feedback f WHERE%s AND f.name_id = ?4 AND f.kind = 1"
             " GROUP BY f.num ORDER BY f.num LIMIT %d",
             scope, STORE_FB_DIST_VALUES + 1);
    if ((ret = detail_q(st, dq, 1, sql, &s, err)) != 0)
        return ret;
    bind_scope(s, run_id, exp_id, target, name_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        d->dist_values[o->n_dist] = sqlite3_column_double(s, 0);
        d->dist_counts[o->n_dist++] = sqlite3_column_int64(s, 1);
    }
    if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "counting feedback values");
        goto out;
    }
    sqlite3_reset(s);
    s = NULL;
    if (o->n_dist > STORE_FB_DIST_VALUES) {
        /* many distinct values: bins of equal width between min and max */
        double w = (o->max - o->min) / STORE_FB_DIST_BINS;
        o->dist_binned = 1;
        o->n_dist = STORE_FB_DIST_BINS;
        for (int i = 0; i < STORE_FB_DIST_BINS; i++) {
            d->dist_values[i] = o->min + w * i;
            d->dist_counts[i] = 0;
        }
        snprintf(sql, sizeof sql,
                 "SELECT min(%d, CAST((f.num - ?5) / ?6 AS INTEGER)), count(*) FROM feedback f"
                 " WHERE%s AND f.name_id = ?4 AND f.kind = 1 GROUP BY 1",
                 STORE_FB_DIST_BINS - 1, scope);
        if ((ret = detail_q(st, dq, 2, sql, &s, err)) != 0)
            return ret;
        bind_scope(s, run_id, exp_id, target, name_id);
        sqlite3_bind_double(s, 5, o->min);
        sqlite3_bind_double(s, 6, w > 0 ? w : 1);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            int b = sqlite3_column_int(s, 0);
            if (b >= 0 && b < STORE_FB_DIST_BINS)
                d->dist_counts[b] += sqlite3_column_int64(s, 1);
        }
        if (rc != SQLITE_DONE)
            ret = sq_db_fail(st, rc, err, "binning feedback values");
    }
    o->dist_values = d->dist_values;
    o->dist_counts = d->dist_counts;
out:
    if (s)
        sqlite3_reset(s);
    return ret;
}

int store_feedback_summaries(struct store *st, const uint8_t *run, const char *experiment,
                             int by_target, const struct store_feedback_after *after, int limit,
                             store_feedback_summary_cb cb, void *ctx, struct store_err *err)
{
    char sql[1200];
    sqlite3_stmt *s = NULL, *dq[3] = {NULL, NULL, NULL};
    int64_t run_id = 0, exp_id = 0;
    int rc, ret;
    const char *scope;

    sq_err_clear(err);
    if (!cb)
        return sq_fail(err, STORE_E_INVALID, "no callback");
    if (run) {
        if ((ret = sq_run_find(st, run, &run_id, "run", err)) != 0)
            return ret;
    } else if (!experiment) {
        return sq_fail(err, STORE_E_INVALID, "feedback summary: a run or an experiment");
    } else if ((ret = experiment_scope(st, experiment, &exp_id, err)) != 0) {
        return ret;
    }
    scope = run ? SCOPE_RUN : SCOPE_EXP;
    if (by_target)
        /* columns: run uuid, target, name, kind, count, comments, sum, min,
         * max, true count, run row, name id */
        snprintf(sql, sizeof sql,
                 "SELECT r.uuid, f.target, n.name, n.kind, sum(f.kind <> 0),"
                 " sum(f.comment IS NOT NULL), total(f.num), min(f.num), max(f.num),"
                 " sum(f.kind = 2 AND f.num = 1), f.run, f.name_id"
                 " FROM feedback f JOIN feedback_names n ON n.id = f.name_id"
                 " JOIN runs r ON r.id = f.run WHERE%s%s"
                 " GROUP BY f.run, f.target, f.name_id ORDER BY f.run, f.target, f.name_id"
                 " LIMIT ?8",
                 scope, after ? " AND (f.run, f.target, f.name_id) > (?5, ?6, ?9)" : "");
    else
        snprintf(sql, sizeof sql,
                 "SELECT NULL, NULL, n.name, n.kind, sum(f.count), sum(f.comments), total(f.sum),"
                 " min(f.min), max(f.max), sum(f.true_count), 0, f.name_id"
                 " FROM feedback_summary f JOIN feedback_names n ON n.id = f.name_id WHERE%s%s"
                 " GROUP BY f.name_id ORDER BY n.name LIMIT ?8",
                 scope, after ? " AND n.name > ?7" : "");
    if ((ret = sq_prep(st, sql, &s, err)) != 0)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, exp_id);
    if (after) {
        sqlite3_bind_int64(s, 5, after->run_row);
        sqlite3_bind_text(s, 6, after->target ? after->target : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 7, after->name ? after->name : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 9, after->name_id);
    }
    sqlite3_bind_int64(s, 8, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_feedback_summary o;
        struct details d;
        int64_t item_run = run_id;

        memset(&o, 0, sizeof o);
        if (run) {
            o.has_run = 1;
            memcpy(o.run, run, 16);
        }
        if (by_target) {
            if (sqlite3_column_bytes(s, 0) == 16) {
                o.has_run = 1;
                memcpy(o.run, sqlite3_column_blob(s, 0), 16);
            }
            o.target = col_text(s, 1);
            item_run = sqlite3_column_int64(s, 10);
            o.cursor_run = item_run;
            o.cursor_name = sqlite3_column_int64(s, 11);
        }
        o.name = col_text(s, 2);
        o.kind = sqlite3_column_int(s, 3);
        o.count = sqlite3_column_int64(s, 4);
        o.comments = sqlite3_column_int64(s, 5);
        o.sum = sqlite3_column_double(s, 6);
        o.min = sq_real_or_nan(s, 7);
        o.max = sq_real_or_nan(s, 8);
        o.true_count = sqlite3_column_int64(s, 9);
        if (o.kind == STORE_FB_LABEL || o.kind == STORE_FB_NONE)
            o.sum = 0, o.min = NAN, o.max = NAN;
        ret = fill_details(st, dq, by_target ? SCOPE_TARGET : scope, by_target, item_run, exp_id,
                           o.target, sqlite3_column_int64(s, 11), &o, &d, err);
        if (ret == 0) {
            int r = cb(ctx, &o);
            if (r)
                ret = sq_cb_stop(err, r);
        }
        details_free(&d, o.n_labels);
        if (ret)
            goto out;
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "summarising feedback");
out:
    sqlite3_finalize(s);
    for (int i = 0; i < 3; i++)
        sqlite3_finalize(dq[i]);
    return ret;
}
