/*
 * store_search_index.c: the two search indexes kept in batches (migration
 * 12): params_search (key, num, value) and metric_summary_key (key, last).
 *
 * Kept up to date row by row, a run of 50 params and 20 metrics lands at 70
 * places of those indexes, one per key's range: 70 random leaf pages
 * written to the WAL and again at the checkpoint, most of what creating the
 * run wrote (and at 10^5 runs the leaves no longer in the cache are read
 * first). So each index holds the rows of the runs at or below a mark
 * (marks.runs_indexed; such a row has ix = 1, the indexes' WHERE), and a
 * merge moves the mark up over the runs created since, adding their rows
 * in each index's own order: a leaf is written once for the thousands of
 * runs' entries it takes.
 *
 * Invariant: a param or summary row has ix = 1 exactly when its run's id
 * is at or below the mark. Q_PARAM_PUT and Q_SUM_PUT set ix so when they
 * insert (a param or metric logged later on an old run goes into the index
 * at once; a summary's update keeps its ix); a merge sets it for every row
 * of the runs it passes, in the transaction that moves the mark. Run ids
 * only grow (a rowid reused after the newest run is deleted is above the
 * mark or, at it, gets ix = 1 as any run at or below it). A search finds
 * the runs above the mark by their own rows (store_search.c).
 */
#include <stdio.h>

#include "store_internal.h"

int sq_index_mark(struct store *st, int64_t *mark, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret = sq_prep_lit(st, "SELECT value FROM marks WHERE name = 'runs_indexed'", &s, err);

    if (ret)
        return ret;
    *mark = 0;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *mark = sqlite3_column_int64(s, 0);
    else if (rc == SQLITE_DONE) /* then searches would list runs twice */
        ret = sq_fail(err, STORE_E_CORRUPT,
                      "the search indexes' mark (table marks, row runs_indexed) is missing: the "
                      "database was changed outside trackd");
    else
        ret = sq_db_fail(st, rc, err, "reading the search indexes' mark");
    sq_release(st, s);
    return ret;
}

int sq_put_mark(struct store *st, int64_t *mark, struct store_err *err)
{
    int ret;

    if (!st->put_mark_known) {
        if ((ret = sq_index_mark(st, &st->put_mark, err)) != 0)
            return ret;
        st->put_mark_known = 1;
    }
    *mark = st->put_mark;
    return 0;
}

int sq_top_run(struct store *st, int64_t *top, struct store_err *err)
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

int store_index_backlog(struct store *st, int64_t *runs, struct store_err *err)
{
    int64_t mark = 0, top = 0;
    int ret;

    sq_err_clear(err);
    *runs = 0;
    if ((ret = sq_index_mark(st, &mark, err)) != 0 || (ret = sq_top_run(st, &top, err)) != 0)
        return ret;
    *runs = top > mark ? top - mark : 0;
    return 0;
}

/* Sets ix = 1 on every row of `sel` (its runs in (?1, ?2], in the index's
 * order), one `up` by primary key each; *n counts them. The sort reads
 * all the rows before the first is changed, and consecutive inserts land
 * on the same leaf. */
static int move_in(struct store *st, const char *sel_sql, const char *up_sql, int64_t mark,
                   int64_t top, int64_t *n, struct store_err *err)
{
    sqlite3_stmt *sel = NULL, *up = NULL;
    int rc, ret = sq_prep_lit(st, sel_sql, &sel, err);

    if (ret == 0)
        ret = sq_prep_lit(st, up_sql, &up, err);
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
        ++*n;
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "adding rows to a search index");
out:
    sq_release(st, sel);
    sq_release(st, up);
    return ret;
}

int store_index_merge(struct store *st, int64_t max_runs, int64_t *runs, int64_t *rows,
                      struct store_err *err)
{
    sqlite3_stmt *mk = NULL;
    int64_t mark = 0, top = 0, n = 0;
    int rc, ret;

    sq_err_clear(err);
    *runs = *rows = 0;
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    if ((ret = sq_index_mark(st, &mark, err)) != 0 || (ret = sq_top_run(st, &top, err)) != 0)
        return ret;
    if (top <= mark)
        return 0;
    if (max_runs > 0 && top - mark > max_runs)
        top = mark + max_runs;
    ret = move_in(st,
                  "SELECT run, key FROM params WHERE run > ?1 AND run <= ?2"
                  " ORDER BY key, num, value",
                  "UPDATE params SET ix = 1 WHERE run = ?1 AND key = ?2", mark, top, &n, err);
    if (ret == 0)
        ret = move_in(st,
                      "SELECT run, key_id FROM metric_summary WHERE run > ?1 AND run <= ?2"
                      " ORDER BY key_id, last",
                      "UPDATE metric_summary SET ix = 1 WHERE run = ?1 AND key_id = ?2", mark, top,
                      &n, err);
    if (ret == 0)
        ret = sq_prep_lit(st, "UPDATE marks SET value = ?1 WHERE name = 'runs_indexed'", &mk, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(mk, 1, top);
    if ((rc = sqlite3_step(mk)) != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "moving the search indexes' mark");
    else if (sqlite3_changes(st->db) != 1)
        ret = sq_fail(err, STORE_E_CORRUPT, "the search indexes' mark is missing");
    sq_release(st, mk);
    if (ret)
        return ret;
    st->put_mark = top; /* a rollback drops it (sq_cache_drop) */
    st->put_mark_known = 1;
    *runs = top - mark;
    *rows = n;
    return 0;
}

/* store_check's part: a row out of its index is one no search driven by
 * its key finds. */
int sq_check_search_index(struct store *st, const char *table, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char sql[160];
    int64_t mark = 0, bad = 0;
    int rc, ret = sq_index_mark(st, &mark, err);

    if (ret)
        return ret;
    snprintf(sql, sizeof sql, "SELECT count(*), min(run) FROM %s WHERE ix != (run <= ?1)", table);
    if ((ret = sq_prep(st, sql, &s, err)) != 0)
        return ret;
    sqlite3_bind_int64(s, 1, mark);
    if ((rc = sqlite3_step(s)) != SQLITE_ROW)
        ret = sq_db_fail(st, rc, err, "checking a search index");
    else if ((bad = sqlite3_column_int64(s, 0)) > 0)
        ret =
            sq_fail(err, STORE_E_CORRUPT,
                    "search index: %lld rows of %s on the wrong side of its mark %lld (the "
                    "first of run %lld)",
                    (long long)bad, table, (long long)mark, (long long)sqlite3_column_int64(s, 1));
    sqlite3_finalize(s);
    return ret;
}
