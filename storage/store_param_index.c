/*
 * store_param_index.c: the params index kept in batches (migration 12).
 *
 * params_search (key, num, value) answers a search's param terms. Kept up
 * to date row by row, a run of 50 params lands at 50 places of the index,
 * one per key's range: 50 random leaf pages written to the WAL and again
 * at the checkpoint, half of what creating the run wrote (and at 10^5 runs
 * the leaves no longer in the cache are read first). So the index holds
 * the rows of runs at or below a mark (marks.params_indexed; such a row has
 * ix = 1, the index's WHERE), and a merge moves the mark up over the runs
 * created since, adding their rows in the index's own order: each leaf is
 * written once for the thousands of runs' entries it takes.
 *
 * Invariant: a param row has ix = 1 exactly when its run's id is at or
 * below the mark. Q_PARAM_PUT sets ix so (a param logged later on an old
 * run goes into the index at once); a merge sets it for every row of the
 * runs it passes, in the transaction that moves the mark. Run ids only
 * grow (a rowid reused after the newest run is deleted is above the mark
 * or, at it, gets ix = 1 as any run at or below it). A search finds the
 * runs above the mark by their own rows (store_search.c).
 */
#include "store_internal.h"

int sq_params_mark(struct store *st, int64_t *mark, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret = sq_prep_lit(st, "SELECT value FROM marks WHERE name = 'params_indexed'", &s, err);

    if (ret)
        return ret;
    *mark = 0;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *mark = sqlite3_column_int64(s, 0);
    else if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "reading the params index's mark");
    sq_release(st, s);
    return ret;
}

/* The newest run's id (0: none). */
static int top_run(struct store *st, int64_t *top, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret = sq_prep_lit(st, "SELECT coalesce(max(id), 0) FROM runs", &s, err);

    if (ret)
        return ret;
    rc = sqlite3_step(s);
    *top = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    if (rc != SQLITE_ROW)
        ret = sq_db_fail(st, rc, err, "reading the newest run");
    sq_release(st, s);
    return ret;
}

int store_params_backlog(struct store *st, int64_t *runs, struct store_err *err)
{
    int64_t mark = 0, top = 0;
    int ret;

    sq_err_clear(err);
    *runs = 0;
    if ((ret = sq_params_mark(st, &mark, err)) != 0 || (ret = top_run(st, &top, err)) != 0)
        return ret;
    *runs = top > mark ? top - mark : 0;
    return 0;
}

int store_params_index(struct store *st, int64_t max_runs, int64_t *runs, int64_t *rows,
                       struct store_err *err)
{
    sqlite3_stmt *sel = NULL, *up = NULL, *mk = NULL;
    int64_t mark = 0, top = 0, n = 0;
    int rc, ret;

    sq_err_clear(err);
    *runs = *rows = 0;
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    if ((ret = sq_params_mark(st, &mark, err)) != 0 || (ret = top_run(st, &top, err)) != 0)
        return ret;
    if (top <= mark)
        return 0;
    if (max_runs > 0 && top - mark > max_runs)
        top = mark + max_runs;
    /* the rows sorted in the index's order before the first is changed (the
     * sort reads them all first), then each moved in: consecutive inserts
     * land on the same leaf */
    ret = sq_prep_lit(st,
                      "SELECT run, key FROM params WHERE run > ?1 AND run <= ?2"
                      " ORDER BY key, num, value",
                      &sel, err);
    if (ret == 0)
        ret = sq_prep_lit(st, "UPDATE params SET ix = 1 WHERE run = ?1 AND key = ?2", &up, err);
    if (ret == 0)
        ret = sq_prep_lit(st, "UPDATE marks SET value = ?1 WHERE name = 'params_indexed'", &mk,
                          err);
    if (ret)
        goto out;
    sqlite3_bind_int64(sel, 1, mark);
    sqlite3_bind_int64(sel, 2, top);
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        sqlite3_bind_int64(up, 1, sqlite3_column_int64(sel, 0));
        sqlite3_bind_value(up, 2, sqlite3_column_value(sel, 1));
        rc = sqlite3_step(up);
        sqlite3_reset(up);
        if (rc != SQLITE_DONE)
            break;
        n++;
    }
    if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "adding params to their index");
        goto out;
    }
    sqlite3_bind_int64(mk, 1, top);
    if ((rc = sqlite3_step(mk)) != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "moving the params index's mark");
        goto out;
    }
    *runs = top - mark;
    *rows = n;
out:
    sq_release(st, sel);
    sq_release(st, up);
    sq_release(st, mk);
    return ret;
}
