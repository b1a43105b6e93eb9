/*
 * store_internal.h: what the store_*.c files share and nothing outside
 * storage/ sees: the handle (struct store), the prepared statements' ids,
 * size limits, and the helpers of store_util.c (prefix sq_).
 */
#ifndef TRACK_STORE_INTERNAL_H
#define TRACK_STORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "chunk.h"
#include "filter.h"
#include "store.h"
#include "store_trace.h"

enum {
    /* largest chunk written: appends split, merges stop. 4096 points keep a
     * 10^5-point series at 25 chunks, enough for a sparkline to be drawn from
     * chunk rows alone, at ~40 bytes of row overhead per 28 KB chunk */
    CHUNK_MAX_POINTS = 4096,
    DECODE_MAX_POINTS = 1 << 20, /* largest chunk read back */
    KEY_CACHE_SLOTS = 512,       /* a power of two */
    RESOLVE_CANDIDATES = 8,
    BACKUP_PAGES_PER_STEP = 256,
    BACKUP_MAX_BUSY_WAITS = 1000, /* of 5 ms each */
    RUN_LIST_MAX_EXPERIMENTS = 1000,
    SQL_MAX_LEN = 1 << 20,
    CURVE_MAX_BUCKETS = 1 << 20,
    CLIP_LEN = 100,       /* bytes of a user's string quoted in a message */
    LIT_CACHE_SLOTS = 16, /* sq_prep_lit's statements */
};
/* ---- prepared statements ------------------------------------------------- */

enum stmt_id {
    Q_BEGIN,
    Q_BEGIN_READ,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVE,
    Q_RELEASE,
    Q_ROLLBACK_TO,
    Q_RUN_ID,
    Q_KEY_GET,
    Q_KEY_PUT,
    Q_SUM_GET,
    Q_SUM_PUT,
    Q_CHUNK_PUT,
    Q_CHUNKS_FROM,
    Q_CHUNK_AT,
    Q_CHUNK_LAST,
    Q_PARAM_GET,
    Q_PARAM_PUT,
    Q_TAG_PUT,
    Q_REQ_GET,
    Q_REQ_PUT,
    Q_RUN_GET,
    Q_PARAM_LIST,
    Q_TAG_LIST,
    Q_SUM_LIST,
    Q_COUNT
};
#define RUN_COLUMNS                                                                                \
    "r.uuid, r.name, e.name, r.status, r.start_ms, r.end_ms, r.user, r.parent_uuid,"               \
    " r.lifecycle, r.deleted_ms, r.id"
#define RUN_SELECT "SELECT " RUN_COLUMNS " FROM runs r JOIN experiments e ON e.id = r.experiment_id"

/* ---- the handle ---------------------------------------------------------- */

struct key_slot {
    char *name; /* NULL: empty slot */
    int64_t id;
};

struct store {
    sqlite3 *db;
    int readonly;
    sqlite3_stmt *q[Q_COUNT];

    struct key_slot keys[KEY_CACHE_SLOTS];
    int n_keys;
    int run_cached;
    uint8_t run_uuid[16];
    int64_t run_id;
    int run_deleted; /* the run of the last sq_run_find is deleted (never cached) */

    uint8_t *enc; /* chunk encoding buffer, at most chunk_bound(CHUNK_MAX_POINTS) */
    size_t enc_cap;
    int64_t *d_steps, *d_times; /* decoding buffers, d_cap points each */
    double *d_vals;
    size_t d_cap;

    /* every chunk with id <= compact_mark was looked at by the last complete
     * compaction with this `small`: only (run, key)s with newer small chunks
     * need another look */
    int64_t compact_mark;
    int compact_small;

    int wal_pages; /* frames in the WAL after the last commit (sq_wal_hook) */

    /* the search indexes' mark as this handle's writes see it (sq_put_mark):
     * read once a transaction, moved by store_index_merge */
    int64_t put_mark;
    int put_mark_known;

    /* store_feedback.c's hot statements, prepared on first use */
    sqlite3_stmt *fb_q[8];
    /* store_trace.c's */
    sqlite3_stmt *tr_q[10];

    /* statements of sq_prep_lit, by the address of their SQL literal */
    struct {
        const char *sql;
        sqlite3_stmt *s;
        int busy;
    } lit[LIT_CACHE_SLOTS];
};

/* A string built for one query, capped at SQL_MAX_LEN (sq_sb_add). */
struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
};

/* ---- helpers (store_util.c) ------------------------------------------------ */

__attribute__((format(printf, 3, 4))) int sq_fail(struct store_err *err, int code, const char *fmt,
                                                  ...);
void sq_err_clear(struct store_err *err);
int sq_code_of(int rc);
void sq_cache_drop(struct store *st);
int sq_db_fail(struct store *st, int rc, struct store_err *err, const char *what);
int sq_cb_stop(struct store_err *err, int rc);
const char *sq_clip(const char *s, char *buf, size_t cap);
void sq_hex_of(const uint8_t id[16], char out[33]);
const char *sq_status_name(int status);
int64_t sq_now_ms(void);
double sq_real_or_nan(sqlite3_stmt *s, int col);
/* The summary in the current row of s: columns key, last_bits (a double's
 * bits as an int64, or 0 when `last` is exact), min, max, count, last_step,
 * last_ms, last; the key stays s's. */
void sq_summary_of(sqlite3_stmt *s, struct store_metric_summary *m);
void sq_bind_real_or_null(sqlite3_stmt *s, int i, int have, double v);
int sq_writable(struct store *st, struct store_err *err);
int sq_prep(struct store *st, const char *sql, sqlite3_stmt **s, struct store_err *err);
/* The statement in *slot, prepared from sql (persistent) the first time;
 * NULL with err set (`what` names it) when it does not prepare. For a
 * module's hot statements kept in the handle (st->fb_q, st->tr_q). */
sqlite3_stmt *sq_prep_once(struct store *st, sqlite3_stmt **slot, const char *sql,
                           struct store_err *err, const char *what);
/* sq_prep for SQL that is a string literal, kept prepared across calls
 * (write paths that run once a request: preparing costs ~20 us); give the
 * statement back with sq_release. */
int sq_prep_lit(struct store *st, const char *sql, sqlite3_stmt **s, struct store_err *err);
/* Resets a statement of sq_prep_lit for its next use; finalizes any other
 * (NULL is fine). */
void sq_release(struct store *st, sqlite3_stmt *s);
int sq_run_q(struct store *st, enum stmt_id id, struct store_err *err, const char *what);
int sq_exec_sql(struct store *st, const char *sql, struct store_err *err, const char *what);
int sq_user_version(struct store *st, int *v, struct store_err *err, const char *what);
__attribute__((format(printf, 2, 3))) void sq_sb_add(struct sbuf *b, const char *fmt, ...);
int sq_enc_reserve(struct store *st, size_t need, struct store_err *err);
int sq_dec_reserve(struct store *st, size_t need, struct store_err *err);
int sq_decode_into(struct store *st, const void *blob, int len, size_t at, int64_t expect,
                   struct store_err *err);
int sq_key_find(struct store *st, const char *name, int create, int64_t *id, struct store_err *err);
/* Fills r from a row of RUN_SELECT's columns; the strings live until the
 * next step (store_run.c). */
int sq_run_of_row(sqlite3_stmt *s, struct store_run *r, struct store_err *err);
int sq_run_find(struct store *st, const uint8_t uuid[16], int64_t *id, const char *what,
                struct store_err *err);
/* For a listing of one run's rows by the prepared statement q (?1 the run's
 * row id): clears err, checks that run and a callback (have_cb) are given,
 * finds the run and binds it; *s is st->q[q], to be reset by the caller. */
int sq_run_q_bind(struct store *st, const uint8_t run[16], int have_cb, enum stmt_id q,
                  sqlite3_stmt **s, struct store_err *err);
/* sq_run_find for a write: a deleted run answers STORE_E_CONFLICT naming it
 * (store_lifecycle.c). */
int sq_run_find_live(struct store *st, const uint8_t uuid[16], int64_t *id, struct store_err *err);
/* *yes 1 when table `name` exists (store_lifecycle.c): for the tables of
 * modules that may not be in this build (artifacts, model_versions). */
int sq_table_exists(struct store *st, const char *name, int *yes, struct store_err *err);
/* A digest column: 32 bytes as a blob, or 64 hex characters; 0 or -1. */
int sq_digest_of(sqlite3_stmt *s, int col, uint8_t out[32]);
int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int pages);
int sq_check_name(const char *name, const char *what, struct store_err *err);
/* Finalizes store_feedback.c's statements (store_close). */
void sq_feedback_close(struct store *st);
void sq_trace_close(struct store *st);
/* The search indexes' mark (store_search_index.c): runs with an id at or
 * below it have their params in params_search and their metric summaries
 * in metric_summary_key. */
int sq_index_mark(struct store *st, int64_t *mark, struct store_err *err);
/* The same for a write (a param's or a summary's ix), kept for the rest of
 * the transaction. */
int sq_put_mark(struct store *st, int64_t *mark, struct store_err *err);
/* The newest run's id (0: none). */
int sq_top_run(struct store *st, int64_t *top, struct store_err *err);
/* Every row of `table` (params, metric_summary) in its search index exactly
 * when its run is at or below the mark; STORE_E_CORRUPT naming the first
 * run that is not. */
int sq_check_search_index(struct store *st, const char *table, struct store_err *err);
int sq_experiment_id_of(struct store *st, const char *name, int64_t *id, int *found,
                        struct store_err *err);

#endif
