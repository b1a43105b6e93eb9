/*
 * store_core.c: the core of the SQLite implementation of store.h: the
 * schema and its migrations, the prepared statements, open and close,
 * transactions, checkpoints, request ids, counts, check and backup. Each
 * entity's operations live in a file of their own (store_experiment.c,
 * store_run.c for runs, params and tags, store_metric.c), sharing the
 * handle and helpers of store_internal.h (store_util.c). The filter language
 * is compiled to SQL fragments by filter.c and the metric chunk bytes are
 * chunk.c's business. Nothing in storage logs, prints or aborts: every
 * failure becomes a STORE_E_* code and a message in the caller's store_err.
 *
 * Schema. Migrations are the entries of migrations[]; entry i takes the
 * database from version i to i + 1 (PRAGMA user_version), each in its own
 * IMMEDIATE transaction, so a new version is one appended string. A
 * read-only handle runs none and refuses a database of another version.
 *
 * Metrics. Each append of n points to one (run, key) becomes one row of
 * metric_chunks holding a packed chunk (split at CHUNK_MAX_POINTS), and
 * updates the (run, key) row of metric_summary. Points are numbered in
 * logged order ("seq", from 0) within their (run, key); a chunk's first_seq
 * is the summary count before the append, so history cursors are seqs and
 * survive compaction, which only merges consecutive chunks and keeps the
 * first one's first_seq. Columns first_step/last_step hold the smallest and
 * largest step in the chunk (the first and last when steps increase, as they
 * nearly always do), vmin/vmax the smallest and largest non-NaN value (NULL
 * when all are NaN), so that curves of long series are downsampled from
 * chunk rows in SQL without decoding them.
 *
 * SQLite stores a NaN REAL as NULL and may store -0.0 as the integer 0, so
 * the summary keeps the last value's exact bits in last_bits when `last`
 * cannot (NaN, -0.0), else 0, which takes no bytes on disk (rows written
 * before always have the bits; both read the same); `last` (NULL for NaN),
 * `min` and `max` are what sorting and filtering use.
 *
 * Hot statements are prepared once at open (SQLITE_PREPARE_PERSISTENT) and
 * reset after each use. Metric key ids and the last run looked up are cached
 * in struct store; both caches are dropped on every rollback and every
 * SQLite error, since a rolled-back transaction may take cached rows with it.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store_internal.h"

/* ---- schema --------------------------------------------------------------- */

static const char *const migrations[] = {
    /* 1: the first schema */
    "CREATE TABLE experiments(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  archived INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL);"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, uuid BLOB NOT NULL UNIQUE,"
    "  hex TEXT NOT NULL UNIQUE,"
    "  experiment_id INTEGER NOT NULL REFERENCES experiments(id), name TEXT NOT NULL,"
    "  status INTEGER NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER,"
    "  user TEXT NOT NULL DEFAULT '', parent_uuid BLOB);"
    "CREATE INDEX runs_experiment ON runs(experiment_id, start_ms);"
    "CREATE TABLE params(run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY(run, key)) WITHOUT ROWID;"
    "CREATE TABLE tags(run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY(run, key)) WITHOUT ROWID;"
    "CREATE TABLE metric_keys(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE metric_summary(run INTEGER NOT NULL, key_id INTEGER NOT NULL,"
    "  last REAL, last_bits INTEGER NOT NULL, min REAL, max REAL, count INTEGER NOT NULL,"
    "  last_step INTEGER NOT NULL, last_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(run, key_id)) WITHOUT ROWID;"
    "CREATE INDEX metric_summary_key ON metric_summary(key_id, last);"
    "CREATE TABLE metric_chunks(id INTEGER PRIMARY KEY, run INTEGER NOT NULL,"
    "  key_id INTEGER NOT NULL, first_seq INTEGER NOT NULL, n INTEGER NOT NULL,"
    "  first_step INTEGER NOT NULL, last_step INTEGER NOT NULL, vmin REAL, vmax REAL,"
    "  data BLOB NOT NULL);"
    "CREATE UNIQUE INDEX metric_chunks_seq ON metric_chunks(run, key_id, first_seq);"
    "CREATE TABLE requests(id BLOB PRIMARY KEY, ms INTEGER NOT NULL,"
    "  response BLOB NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX requests_ms ON requests(ms);",
    /* 2: each chunk's last value beside its min and max, so a downsampled
     * curve's per-bucket last value needs no decoding (NULL for chunks
     * written before, and when the last value is NaN: then it decodes) */
    "ALTER TABLE metric_chunks ADD COLUMN vlast REAL;",
    /* 3: request ids numbered in the order they were applied (seq), so that
     * pruning can keep the newest ones whatever the wall clock did, and the
     * digest of each request's body, so that an id reused for a different
     * request is refused (NULL for ids recorded before: replayed as before) */
    "CREATE TABLE requests_v3(seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
    "  ms INTEGER NOT NULL, digest BLOB, response BLOB NOT NULL);"
    "INSERT INTO requests_v3(id, ms, response) SELECT id, ms, response FROM requests"
    "  ORDER BY ms, id;"
    "DROP TABLE requests;"
    "ALTER TABLE requests_v3 RENAME TO requests;"
    "CREATE INDEX requests_ms ON requests(ms);",
    /* 4: soft deletion (store_lifecycle.c): a run is 'active' or 'deleted'
     * (since deleted_ms); lists leave deleted runs out, gc removes those
     * deleted before its grace period */
    "ALTER TABLE runs ADD COLUMN lifecycle TEXT NOT NULL DEFAULT 'active';"
    "ALTER TABLE runs ADD COLUMN deleted_ms INTEGER;"
    "CREATE INDEX runs_deleted ON runs(lifecycle, deleted_ms);",
    /* 5: artifacts: (run, path) -> the digest of a blob in blobs/ (blob.h);
     * run is runs.id; the digest index serves gc and check */
    "CREATE TABLE artifacts(run INTEGER NOT NULL, path TEXT NOT NULL, digest BLOB NOT NULL,"
    "  size INTEGER NOT NULL, logged_ms INTEGER NOT NULL, PRIMARY KEY(run, path)) WITHOUT ROWID;"
    "CREATE INDEX artifacts_digest ON artifacts(digest);",
    /* 6: the model registry (store_model.c). A version pins the run's uuid
     * (not its row id, so it outlives the run's row), the artifact path and
     * the digest copied at register time. Tags with version 0 are the
     * model's own. Every alias move is a row of model_alias_history. */
    "CREATE TABLE models(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE model_versions(model INTEGER NOT NULL, version INTEGER NOT NULL,"
    "  run BLOB NOT NULL, path TEXT NOT NULL, digest BLOB NOT NULL, size INTEGER NOT NULL,"
    "  description TEXT NOT NULL, user TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(model, version)) WITHOUT ROWID;"
    "CREATE INDEX model_versions_run ON model_versions(run);"
    "CREATE INDEX model_versions_digest ON model_versions(digest);"
    "CREATE TABLE model_tags(model INTEGER NOT NULL, version INTEGER NOT NULL,"
    "  key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(model, version, key)) WITHOUT ROWID;"
    "CREATE TABLE model_aliases(model INTEGER NOT NULL, alias TEXT NOT NULL,"
    "  version INTEGER NOT NULL, PRIMARY KEY(model, alias)) WITHOUT ROWID;"
    "CREATE TABLE model_alias_history(id INTEGER PRIMARY KEY, model INTEGER NOT NULL,"
    "  alias TEXT NOT NULL, from_version INTEGER NOT NULL, to_version INTEGER NOT NULL,"
    "  who TEXT NOT NULL, ms INTEGER NOT NULL);"
    "CREATE INDEX model_alias_history_model ON model_alias_history(model, id);",
    /* 7: identity (store_user.c, store_grant.c, store_audit.c; DESIGN.md
     * "Identity"). A user has a role (1 reader, 2 writer, 3 admin) and at
     * most one sealed-TCP public key (32 bytes). A grant gives one user a
     * level (1 read, 2 write, 3 manage) on one experiment. Tokens are kept
     * as BLAKE2b-256 hashes. Audit rows copy the user's name and key (they
     * outlive the user) and are never updated by an operation. */
    "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  role INTEGER NOT NULL, key BLOB UNIQUE, created_ms INTEGER NOT NULL);"
    "CREATE TABLE grants(user INTEGER NOT NULL, experiment INTEGER NOT NULL,"
    "  level INTEGER NOT NULL, PRIMARY KEY(user, experiment)) WITHOUT ROWID;"
    "CREATE INDEX grants_experiment ON grants(experiment);"
    "CREATE TABLE tokens(id INTEGER PRIMARY KEY, user INTEGER NOT NULL,"
    "  hash BLOB NOT NULL UNIQUE, created_ms INTEGER NOT NULL, expires_ms INTEGER);"
    "CREATE INDEX tokens_user ON tokens(user);"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, ms INTEGER NOT NULL, user TEXT NOT NULL,"
    "  key BLOB, op TEXT NOT NULL, experiment TEXT, run BLOB, detail TEXT NOT NULL,"
    "  code INTEGER NOT NULL);"
    "CREATE INDEX audit_user ON audit(user, id);"
    "CREATE INDEX audit_ms ON audit(ms);",
    /* 8: feedback (store_feedback.c; DESIGN.md "Feedback"). A score's run is
     * runs.id, NULL for a trace-only score; target_kind 0 the run, 1 a free
     * id (target), 2 a trace, 3 a span (trace_id, span_id, for later). kind 0
     * a comment alone, 1 a number (num), 2 a boolean (num 0 or 1), 3 a label.
     * A name's kind is fixed by its first value (feedback_names.kind, 0 until
     * then). The summaries are kept current by every insert; `score` is the
     * mean (numbers) or true ratio (booleans), NULL otherwise. */
    "CREATE TABLE feedback_names(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  kind INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE feedback(id INTEGER PRIMARY KEY, run INTEGER, target_kind INTEGER NOT NULL,"
    "  target TEXT NOT NULL, trace_id BLOB, span_id BLOB, name_id INTEGER NOT NULL,"
    "  kind INTEGER NOT NULL, num REAL, label TEXT, comment TEXT, rationale TEXT,"
    "  source INTEGER NOT NULL, source_id TEXT NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE INDEX feedback_run ON feedback(run, target, id);"
    "CREATE INDEX feedback_group ON feedback(run, target, name_id);"
    "CREATE INDEX feedback_name ON feedback(name_id, run);"
    "CREATE INDEX feedback_trace ON feedback(trace_id, span_id) WHERE trace_id IS NOT NULL;"
    "CREATE TABLE feedback_summary(run INTEGER NOT NULL, name_id INTEGER NOT NULL,"
    "  kind INTEGER NOT NULL, count INTEGER NOT NULL, comments INTEGER NOT NULL,"
    "  sum REAL NOT NULL, min REAL, max REAL, true_count INTEGER NOT NULL, score REAL,"
    "  PRIMARY KEY(run, name_id)) WITHOUT ROWID;"
    "CREATE INDEX feedback_summary_name ON feedback_summary(name_id, score);"
    "CREATE TABLE feedback_labels(run INTEGER NOT NULL, name_id INTEGER NOT NULL,"
    "  label TEXT NOT NULL, count INTEGER NOT NULL,"
    "  PRIMARY KEY(run, name_id, label)) WITHOUT ROWID;",
    /* 9: search at scale (store_run.c's planner). Each param's value as a
     * number when it reads as one by the filter language's rule (filter.h,
     * filter_looks_numeric), else NULL, and an index over (key, number,
     * text, run) that answers both `params.K > 50` and `params.K = 'adam'`
     * without reading the runs that do not match */
    "ALTER TABLE params ADD COLUMN num REAL;"
    "UPDATE params SET num = CAST(value AS REAL) WHERE value GLOB '[0-9+.-]*'"
    "  AND value GLOB '*[0-9]*' AND value NOT GLOB '*[^0-9eE.+-]*';"
    "CREATE INDEX params_search ON params(key, num, value);",
    /* 10: traces (store_trace.c; DESIGN.md "Traces"). A span is one row of
     * its trace (OTLP's 8-byte id within the 16-byte trace id); a trace row
     * keeps the rollups, updated as each span arrives, in any order and any
     * number of requests; trace_models counts the spans of each model */
    "CREATE TABLE traces(id INTEGER PRIMARY KEY, trace_id BLOB NOT NULL UNIQUE,"
    "  experiment_id INTEGER NOT NULL REFERENCES experiments(id), run_uuid BLOB,"
    "  root_name TEXT NOT NULL DEFAULT '', start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,"
    "  spans INTEGER NOT NULL DEFAULT 0, errors INTEGER NOT NULL DEFAULT 0,"
    "  tokens_in INTEGER NOT NULL DEFAULT 0, tokens_out INTEGER NOT NULL DEFAULT 0,"
    "  tokens_total INTEGER NOT NULL DEFAULT 0, cost REAL NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE INDEX traces_experiment ON traces(experiment_id, start_ns);"
    "CREATE INDEX traces_start ON traces(start_ns);"
    "CREATE INDEX traces_run ON traces(run_uuid) WHERE run_uuid IS NOT NULL;"
    "CREATE TABLE spans(trace INTEGER NOT NULL, span_id BLOB NOT NULL, parent BLOB,"
    "  name TEXT NOT NULL, kind INTEGER NOT NULL, start_ns INTEGER NOT NULL,"
    "  end_ns INTEGER NOT NULL, status INTEGER NOT NULL, status_message TEXT NOT NULL,"
    "  model TEXT NOT NULL, operation TEXT NOT NULL, tokens_in INTEGER NOT NULL,"
    "  tokens_out INTEGER NOT NULL, tokens_total INTEGER NOT NULL, cost REAL NOT NULL,"
    "  attributes TEXT NOT NULL, PRIMARY KEY(trace, span_id)) WITHOUT ROWID;"
    "CREATE INDEX spans_start ON spans(trace, start_ns);"
    "CREATE TABLE trace_models(trace INTEGER NOT NULL, model TEXT NOT NULL,"
    "  spans INTEGER NOT NULL, PRIMARY KEY(trace, model)) WITHOUT ROWID;",
    /* 11: a run's traces newest first by the index alone (`track compare`
     * lists each run's traces in pages by start time) */
    "DROP INDEX traces_run;"
    "CREATE INDEX traces_run ON traces(run_uuid, start_ns) WHERE run_uuid IS NOT NULL;",
    /* 12: the search indexes kept in batches (store_search_index.c). A
     * param's or a metric summary's row is in params_search or
     * metric_summary_key once its run is at or below the mark runs_indexed
     * (ix = 1); a newer run's rows (ix = 0) wait for the next merge, which
     * adds thousands of runs' entries in each index's order, each leaf
     * page written once, where a run at a time wrote one random leaf per
     * param and per metric (70 pages of 4 KiB for a run of 50 params and
     * 20 metrics, most of what creating it wrote). A search reads the runs
     * above the mark by their own rows (store_search.c). ix is in each
     * index too, or reading d.ix (the WHERE that picks it) would read the
     * row: 1 is stored in the record's header alone */
    "ALTER TABLE params ADD COLUMN ix INTEGER NOT NULL DEFAULT 1;"
    "DROP INDEX params_search;"
    "CREATE INDEX params_search ON params(key, num, value, ix) WHERE ix = 1;"
    "ALTER TABLE metric_summary ADD COLUMN ix INTEGER NOT NULL DEFAULT 1;"
    "DROP INDEX metric_summary_key;"
    "CREATE INDEX metric_summary_key ON metric_summary(key_id, last, ix) WHERE ix = 1;"
    "CREATE TABLE marks(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO marks VALUES('runs_indexed', (SELECT coalesce(max(id), 0) FROM runs));",
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))
static const char *const stmt_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVE] = "SAVEPOINT store_request",
    [Q_RELEASE] = "RELEASE store_request",
    [Q_ROLLBACK_TO] = "ROLLBACK TO store_request",
    [Q_RUN_ID] = "SELECT id, lifecycle = 'deleted' FROM runs WHERE uuid = ?1",
    [Q_KEY_GET] = "SELECT id FROM metric_keys WHERE name = ?1",
    [Q_KEY_PUT] = "INSERT INTO metric_keys(name) VALUES(?1)",
    [Q_SUM_GET] = "SELECT min, max, count FROM metric_summary WHERE run = ?1 AND key_id = ?2",
    /* ?10: ix, as a param's (migration 12); an update keeps it */
    [Q_SUM_PUT] = "INSERT INTO metric_summary(run, key_id, last, last_bits, min, max, count,"
                  " last_step, last_ms, ix) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                  " ON CONFLICT(run, key_id) DO UPDATE SET last = excluded.last,"
                  " last_bits = excluded.last_bits, min = excluded.min, max = excluded.max,"
                  " count = excluded.count, last_step = excluded.last_step,"
                  " last_ms = excluded.last_ms",
    [Q_CHUNK_PUT] = "INSERT INTO metric_chunks(run, key_id, first_seq, n, first_step, last_step,"
                    " vmin, vmax, data, vlast) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [Q_CHUNK_LAST] = "SELECT vlast FROM metric_chunks"
                     " WHERE run = ?1 AND key_id = ?2 AND first_seq = ?3",
    /* the chunks holding seq ?3 and after, in order */
    [Q_CHUNKS_FROM] = "SELECT first_seq, n, data FROM metric_chunks"
                      " WHERE run = ?1 AND key_id = ?2 AND first_seq >= coalesce("
                      "(SELECT max(first_seq) FROM metric_chunks"
                      " WHERE run = ?1 AND key_id = ?2 AND first_seq <= ?3), 0)"
                      " ORDER BY first_seq",
    [Q_CHUNK_AT] = "SELECT n, data FROM metric_chunks"
                   " WHERE run = ?1 AND key_id = ?2 AND first_seq = ?3",
    [Q_PARAM_GET] = "SELECT value FROM params WHERE run = ?1 AND key = ?2",
    /* in the index at once when the run is at or below the mark (migration 12) */
    /* ?4: filter_looks_numeric(value), migration 9's rule; ?5: ix */
    [Q_PARAM_PUT] = "INSERT INTO params(run, key, value, num, ix) VALUES(?1, ?2, ?3,"
                    " CASE WHEN ?4 THEN CAST(?3 AS REAL) END, ?5)"
                    " ON CONFLICT(run, key) DO NOTHING",
    [Q_TAG_PUT] = "INSERT INTO tags(run, key, value) VALUES(?1, ?2, ?3)"
                  " ON CONFLICT(run, key) DO UPDATE SET value = excluded.value",
    [Q_REQ_GET] = "SELECT response, digest FROM requests WHERE id = ?1",
    [Q_REQ_PUT] = "INSERT INTO requests(id, ms, response, digest) VALUES(?1, ?2, ?3, ?4)",
    /* per-run reads: prepared once, since listing many runs with their
     * details runs them once per run */
    [Q_RUN_GET] = RUN_SELECT " WHERE r.uuid = ?1",
    [Q_PARAM_LIST] = "SELECT key, value FROM params WHERE run = ?1 ORDER BY key",
    [Q_TAG_LIST] = "SELECT key, value FROM tags WHERE run = ?1 ORDER BY key",
    [Q_SUM_LIST] = "SELECT k.name, s.last_bits, s.min, s.max, s.count, s.last_step, s.last_ms,"
                   " s.last"
                   " FROM metric_summary s JOIN metric_keys k ON k.id = s.key_id"
                   " WHERE s.run = ?1 ORDER BY k.name",
};

/* ---- open and close -------------------------------------------------------- */

static int migrate(struct store *st, const char *path, const struct store_opts *opts,
                   struct store_err *err)
{
    char sql[64];
    int v = 0, ret;

    for (;;) {
        /* version read inside the write lock: two openers never both migrate */
        ret = sq_exec_sql(st, "BEGIN IMMEDIATE", err, "starting the schema migration");
        if (ret)
            return ret;
        ret = sq_user_version(st, &v, err, "reading the schema version");
        if (ret)
            goto fail_tx;
        if (v > SCHEMA_VERSION) {
            ret = sq_fail(err, STORE_E_INVALID,
                          "database \"%s\" has schema version %d, newer than this build's %d", path,
                          v, SCHEMA_VERSION);
            goto fail_tx;
        }
        if (v == SCHEMA_VERSION)
            return sq_exec_sql(st, "COMMIT", err, "finishing the schema migration");
        if (v > 0 && opts && opts->migrating)
            opts->migrating(opts->migrating_ctx, v, v + 1);
        ret = sq_exec_sql(st, migrations[v], err, "migrating the schema");
        if (ret)
            goto fail_tx;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        ret = sq_exec_sql(st, sql, err, "migrating the schema");
        if (ret)
            goto fail_tx;
        ret = sq_exec_sql(st, "COMMIT", err, "committing the schema migration");
        if (ret)
            goto fail_tx;
    }
fail_tx:
    if (!sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

static int check_version(struct store *st, const char *path, struct store_err *err)
{
    int v = 0, ret = sq_user_version(st, &v, err, "reading the schema version");

    if (ret)
        return ret;
    if (v == 0)
        return sq_fail(err, STORE_E_INVALID,
                       "database \"%s\" has no track schema yet; open it read-write first", path);
    if (v > SCHEMA_VERSION)
        return sq_fail(err, STORE_E_INVALID,
                       "database \"%s\" has schema version %d, newer than this build's %d", path, v,
                       SCHEMA_VERSION);
    if (v < SCHEMA_VERSION)
        return sq_fail(err, STORE_E_INVALID,
                       "database \"%s\" has schema version %d, older than this build's %d; "
                       "open it read-write once to migrate it",
                       path, v, SCHEMA_VERSION);
    return 0;
}

int sq_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    ((struct store *)arg)->wal_pages = pages;
    return SQLITE_OK;
}

static int configure(struct store *st, int durability, int cache_kib, const char *path,
                     const struct store_opts *opts, struct store_err *err)
{
    char what[128];
    int ret;

    snprintf(what, sizeof what, "opening \"%.100s\"", path);
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, 5000);
    /* page caches bounded per handle (store.h): what trackd's RSS holds at
     * most for them is the writer's plus each read worker's */
    ret = sq_exec_sql(st,
                      st->readonly
                          ? "PRAGMA foreign_keys = ON; PRAGMA cache_size = -" STORE_CACHE_KIB_READ
                            "; PRAGMA temp_store = MEMORY;"
                          : "PRAGMA foreign_keys = ON; PRAGMA cache_size = -" STORE_CACHE_KIB_WRITE
                            "; PRAGMA temp_store = MEMORY;",
                      err, what);
    if (ret)
        return ret;
    if (cache_kib > 0) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA cache_size = -%d", cache_kib);
        if ((ret = sq_exec_sql(st, pragma, err, what)) != 0)
            return ret;
    }
    if (st->readonly)
        return check_version(st, path, err);
    ret = sq_exec_sql(st, "PRAGMA journal_mode = WAL", err, what);
    if (ret)
        return ret;
    ret = sq_exec_sql(st,
                      durability == STORE_DURABILITY_FULL ? "PRAGMA synchronous = FULL"
                                                          : "PRAGMA synchronous = NORMAL",
                      err, what);
    if (ret)
        return ret;
    /* no checkpoint inside a commit: SQLite's automatic one would make the
     * request whose commit crosses the threshold wait for two fsyncs. The
     * hook counts the WAL instead, and the owner checkpoints when it suits
     * (store_checkpoint) */
    sqlite3_wal_hook(st->db, sq_wal_hook, st);
    return migrate(st, path, opts, err);
}

/* Opens the database; see store.h. A read-only handle needs the database to
 * exist at this build's schema version. */
/* Before SQLite's first use: no memory statistics. Kept, they take a
 * global mutex on every sqlite3_malloc and free (5 % of trackd's writer
 * thread storing spans, in pthread_mutex_lock and unlock); nothing here
 * reads them. Fails harmlessly (SQLITE_MISUSE) when SQLite is already
 * initialised. */
static pthread_once_t sq_config_once = PTHREAD_ONCE_INIT;
static void sq_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store_open(const char *path, const struct store_opts *opts, struct store **out,
               struct store_err *err)
{
    struct store *st = NULL;
    int durability = opts ? opts->durability : STORE_DURABILITY_NORMAL;
    int flags, rc, ret = 0;

    pthread_once(&sq_config_once, sq_config);
    sq_err_clear(err);
    if (out == NULL || path == NULL || path[0] == '\0')
        return sq_fail(err, STORE_E_INVALID, "database path is missing");
    *out = NULL;
    if (durability != STORE_DURABILITY_NORMAL && durability != STORE_DURABILITY_FULL)
        return sq_fail(err, STORE_E_INVALID, "durability %d is neither NORMAL (0) nor FULL (1)",
                       durability);
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return sq_fail(err, STORE_E_INTERNAL, "out of memory");
    st->readonly = opts && opts->readonly;
    /* SQLite would create the file 0644 & ~umask, and its WAL and SHM take
     * the database's mode: make it 0600 first (and close a wider one) */
    if (!st->readonly && strcmp(path, ":memory:") != 0 && strncmp(path, "file:", 5) != 0) {
        ret = store_secure_files(path, err);
        if (ret)
            goto out;
    }
    flags = st->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    rc = sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        ret = sq_fail(err, sq_code_of(rc), "cannot open database \"%s\": %s", path,
                      st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        goto out;
    }
    ret = configure(st, durability, opts ? opts->cache_kib : 0, path, opts, err);
    if (ret)
        goto out;
    for (int i = 0; i < Q_COUNT; i++) {
        rc =
            sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->q[i], NULL);
        if (rc != SQLITE_OK) {
            ret = sq_db_fail(st, rc, err, "preparing statements");
            goto out;
        }
    }
out:
    if (ret)
        store_close(st);
    else
        *out = st;
    return ret;
}

/* Closes the handle (NULL is fine); an open transaction is rolled back. */
void store_close(struct store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(st->q[i]);
    for (int i = 0; i < LIT_CACHE_SLOTS; i++)
        sqlite3_finalize(st->lit[i].s);
    sq_feedback_close(st);
    sq_trace_close(st);
    sqlite3_close(st->db);
    sq_cache_drop(st);
    free(st->enc);
    free(st->d_steps);
    free(st->d_times);
    free(st->d_vals);
    free(st);
}

/* ---- transactions ---------------------------------------------------------- */

/* BEGIN IMMEDIATE on a read-write handle (so a lock conflict shows here, not
 * at the first write); a plain BEGIN, for a consistent view, on a read-only
 * one. */
int store_begin(struct store *st, struct store_err *err)
{
    sq_err_clear(err);
    st->put_mark_known = 0;
    return sq_run_q(st, st->readonly ? Q_BEGIN_READ : Q_BEGIN, err, "beginning a transaction");
}

/* On failure the transaction may still be open: call store_rollback. */
int store_commit(struct store *st, struct store_err *err)
{
    sq_err_clear(err);
    return sq_run_q(st, Q_COMMIT, err, "committing");
}

void store_rollback(struct store *st)
{
    if (st == NULL)
        return;
    if (!sqlite3_get_autocommit(st->db))
        sq_run_q(st, Q_ROLLBACK, NULL, "rolling back");
    sq_cache_drop(st);
}

/* Savepoints nest: each store_save is matched by one store_release or one
 * store_rollback_to (which also releases it). */
int store_save(struct store *st, struct store_err *err)
{
    sq_err_clear(err);
    return sq_run_q(st, Q_SAVE, err, "setting a savepoint");
}

void store_release(struct store *st)
{
    if (st)
        sq_run_q(st, Q_RELEASE, NULL, "releasing a savepoint");
}

void store_rollback_to(struct store *st)
{
    if (st == NULL)
        return;
    sq_run_q(st, Q_ROLLBACK_TO, NULL, "rolling back to a savepoint");
    sq_run_q(st, Q_RELEASE, NULL, "releasing a savepoint");
    sq_cache_drop(st);
}

/* ---- checkpoints ------------------------------------------------------------ */

int store_wal_pages(struct store *st)
{
    return st->wal_pages;
}

int store_checkpoint(struct store *st, struct store_err *err)
{
    int log = 0, done = 0, rc;

    sq_err_clear(err);
    if (st->readonly)
        return 0;
    rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return sq_db_fail(st, rc, err, "checkpointing the WAL");
    st->wal_pages = log > done ? log - done : 0;
    return 0;
}

int store_checkpoint_truncate(struct store *st, struct store_err *err)
{
    int log = 0, done = 0, rc;

    sq_err_clear(err);
    if (st->readonly)
        return 0;
    rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    if (rc != SQLITE_OK)
        return sq_db_fail(st, rc, err, "checkpointing and truncating the WAL");
    st->wal_pages = 0;
    return 0;
}

/* ---- request ids ---------------------------------------------------------------- */

/* See store.h; *resp is malloc'd (at least one byte, even for an empty
 * response) and the caller frees it. */
int store_request_lookup(struct store *st, const uint8_t id[16],
                         const uint8_t digest[STORE_DIGEST_BYTES], uint8_t **resp, size_t *len,
                         struct store_err *err)
{
    sqlite3_stmt *s = st->q[Q_REQ_GET];
    char hex[33];
    int rc, ret = 0;

    sq_err_clear(err);
    if (id == NULL || resp == NULL || len == NULL)
        return sq_fail(err, STORE_E_INVALID, "request id or output missing");
    *resp = NULL;
    *len = 0;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(s, 0);
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        const void *kept = sqlite3_column_blob(s, 1);
        /* an id recorded before digests were kept has none: replayed */
        if (digest && kept && sqlite3_column_bytes(s, 1) == STORE_DIGEST_BYTES &&
            memcmp(kept, digest, STORE_DIGEST_BYTES) != 0) {
            sq_hex_of(id, hex);
            ret = sq_fail(err, STORE_E_CONFLICT,
                          "request_id: %s was reused with a different body; a retry must resend "
                          "the same request, a new request needs a new id",
                          hex);
            goto out;
        }
        *resp = malloc(n ? n : 1);
        if (*resp == NULL) {
            ret = sq_fail(err, STORE_E_INTERNAL, "out of memory for a %zu-byte response", n);
            goto out;
        }
        if (n)
            memcpy(*resp, b, n);
        *len = n;
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "looking up a request id");
    }
out:
    sqlite3_reset(s);
    return ret;
}

/* Records a request id once: a second put of the same id is STORE_E_EXISTS
 * (the first response stands; the caller rolls back the duplicate). */
int store_request_put(struct store *st, const uint8_t id[16],
                      const uint8_t digest[STORE_DIGEST_BYTES], const uint8_t *resp, size_t len,
                      int64_t now, struct store_err *err)
{
    sqlite3_stmt *s = st->q[Q_REQ_PUT];
    char hex[33];
    int rc, ret = 0;

    sq_err_clear(err);
    if (id == NULL || (resp == NULL && len > 0))
        return sq_fail(err, STORE_E_INVALID, "request id or response missing");
    if (len > INT32_MAX)
        return sq_fail(err, STORE_E_INVALID, "response of %zu bytes is too large", len);
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    sqlite3_bind_blob(s, 3, resp ? (const void *)resp : "", (int)len, SQLITE_STATIC);
    if (digest)
        sqlite3_bind_blob(s, 4, digest, STORE_DIGEST_BYTES, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 4);
    rc = sqlite3_step(s);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        sq_hex_of(id, hex);
        ret = sq_fail(err, STORE_E_EXISTS, "request %s already recorded", hex);
    } else if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "recording a request id");
    }
    sqlite3_reset(s);
    return ret;
}

/* Deletes the oldest ids (by wall clock) that are both older than
 * before_ms and outside the newest keep_last (by seq, the order they were
 * recorded in, which no clock moves), at most `limit` (0 or less: all).
 * Walks the ms index, skipping at most keep_last rows; nothing at all
 * while the table holds no more than keep_last ids. */
int store_request_prune(struct store *st, int64_t before_ms, int64_t keep_last, int limit,
                        int *pruned, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t cut = 0;
    int rc, ret;

    sq_err_clear(err);
    if (pruned)
        *pruned = 0;
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    ret = sq_prep(st, "SELECT coalesce(max(seq), 0) FROM requests", &s, err);
    if (ret)
        return ret;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        cut = sqlite3_column_int64(s, 0) - (keep_last > 0 ? keep_last : 0);
    else
        ret = sq_db_fail(st, rc, err, "counting request ids");
    sqlite3_finalize(s);
    s = NULL;
    if (ret || cut <= 0)
        return ret;
    ret = sq_prep(st,
                  "DELETE FROM requests WHERE seq IN"
                  " (SELECT seq FROM requests WHERE ms < ?1 AND seq <= ?3 ORDER BY ms LIMIT ?2)",
                  &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, before_ms);
    sqlite3_bind_int(s, 2, limit > 0 ? limit : -1);
    sqlite3_bind_int64(s, 3, cut);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "pruning request ids");
    else if (pruned)
        *pruned = sqlite3_changes(st->db);
    sqlite3_finalize(s);
    return ret;
}

/* ---- whole store ------------------------------------------------------------- */

int store_counts(struct store *st, struct store_counts *c, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    sq_err_clear(err);
    if (c == NULL)
        return sq_fail(err, STORE_E_INVALID, "counts output missing");
    memset(c, 0, sizeof *c);
    ret = sq_prep(st,
                  "SELECT (SELECT count(*) FROM experiments), (SELECT count(*) FROM runs),"
                  " (SELECT coalesce(sum(count), 0) FROM metric_summary),"
                  " (SELECT count(*) FROM metric_chunks),"
                  " (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())",
                  &s, err);
    if (ret)
        return ret;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        c->experiments = sqlite3_column_int64(s, 0);
        c->runs = sqlite3_column_int64(s, 1);
        c->metric_points = sqlite3_column_int64(s, 2);
        c->metric_chunks = sqlite3_column_int64(s, 3);
        c->db_bytes = sqlite3_column_int64(s, 4);
    } else {
        ret = sq_db_fail(st, rc, err, "counting");
    }
    sqlite3_finalize(s);
    return ret;
}

/* Every chunk decodes, holds the count its row says, and the chunks of each
 * (run, key) number their points 0, 1, ... without gaps or overlaps. */
static int check_chunks(struct store *st, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t prev_run = -1, prev_key = -1, expect = 0;
    int rc, ret;

    ret = sq_prep(st,
                  "SELECT c.id, c.run, c.key_id, c.first_seq, c.n, c.data, r.uuid, k.name"
                  " FROM metric_chunks c LEFT JOIN runs r ON r.id = c.run"
                  " LEFT JOIN metric_keys k ON k.id = c.key_id"
                  " ORDER BY c.run, c.key_id, c.first_seq",
                  &s, err);
    if (ret)
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(s, 0), run = sqlite3_column_int64(s, 1);
        int64_t key = sqlite3_column_int64(s, 2), first = sqlite3_column_int64(s, 3);
        int64_t n = sqlite3_column_int64(s, 4);
        const char *name = (const char *)sqlite3_column_text(s, 7);
        char hex[33] = "(no run)", cbuf[CLIP_LEN + 4];

        if (sqlite3_column_bytes(s, 6) == 16)
            sq_hex_of(sqlite3_column_blob(s, 6), hex);
        if (run != prev_run || key != prev_key)
            expect = 0;
        prev_run = run;
        prev_key = key;
        if (sqlite3_column_type(s, 6) == SQLITE_NULL || name == NULL) {
            ret = sq_fail(err, STORE_E_CORRUPT, "chunk %lld belongs to no run or no metric key",
                          (long long)id);
            goto out;
        }
        if (first != expect || n <= 0) {
            ret = sq_fail(err, STORE_E_CORRUPT,
                          "chunk %lld of run %s, metric \"%s\": starts at seq %lld, expected %lld",
                          (long long)id, hex, sq_clip(name, cbuf, sizeof cbuf), (long long)first,
                          (long long)expect);
            goto out;
        }
        expect = first + n;
        ret = sq_decode_into(st, sqlite3_column_blob(s, 5), sqlite3_column_bytes(s, 5), 0, n, err);
        if (ret) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err ? err->msg : "unreadable");
            ret = sq_fail(err, STORE_E_CORRUPT, "chunk %lld of run %s, metric \"%s\": %s",
                          (long long)id, hex, sq_clip(name, cbuf, sizeof cbuf), why);
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "checking metric chunks");
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;

    ret = sq_prep(st,
                  "SELECT r.hex, k.name, t.count, t.total FROM (SELECT s.run, s.key_id, s.count,"
                  " (SELECT coalesce(sum(c.n), 0) FROM metric_chunks c"
                  "  WHERE c.run = s.run AND c.key_id = s.key_id) AS total"
                  " FROM metric_summary s) t LEFT JOIN runs r ON r.id = t.run"
                  " LEFT JOIN metric_keys k ON k.id = t.key_id WHERE t.total != t.count"
                  " UNION ALL SELECT r.hex, k.name, 0, 1 FROM metric_chunks c"
                  " LEFT JOIN runs r ON r.id = c.run LEFT JOIN metric_keys k ON k.id = c.key_id"
                  " WHERE NOT EXISTS (SELECT 1 FROM metric_summary s"
                  "  WHERE s.run = c.run AND s.key_id = c.key_id) LIMIT 1",
                  &s, err);
    if (ret)
        return ret;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(s, 0);
        const char *name = (const char *)sqlite3_column_text(s, 1);
        char cbuf[CLIP_LEN + 4];
        ret = sq_fail(err, STORE_E_CORRUPT,
                      "run %s, metric \"%s\": the summary counts %lld points, the chunks hold %lld",
                      hex ? hex : "(none)", sq_clip(name ? name : "", cbuf, sizeof cbuf),
                      (long long)sqlite3_column_int64(s, 2), (long long)sqlite3_column_int64(s, 3));
    } else if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "checking metric summaries");
    }
out:
    sqlite3_finalize(s);
    return ret;
}

void store_release_memory(struct store *st)
{
    if (st && st->db)
        sqlite3_db_release_memory(st->db);
}

void store_interrupt(struct store *st)
{
    if (st && st->db)
        sqlite3_interrupt(st->db);
}

/* PRAGMA integrity_check, then the search indexes' mark, then every chunk
 * decoded and every summary's count compared with its chunks. */
int store_check(struct store *st, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char msg[sizeof err->msg - 32] = "";
    size_t used = 0;
    int rc, ret, problems = 0;

    sq_err_clear(err);
    ret = sq_prep(st, "PRAGMA integrity_check(4)", &s, err);
    if (ret)
        return ret;
    /* "ok", or up to 4 problems (the first often a "*** in database main ***"
     * heading), joined into one message */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *row = (const char *)sqlite3_column_text(s, 0);
        if (row == NULL)
            row = "failed";
        if (!problems && strcmp(row, "ok") == 0)
            continue;
        used += (size_t)snprintf(msg + used, used < sizeof msg ? sizeof msg - used : 0, "%s%s",
                                 problems ? "; " : "", row);
        if (used >= sizeof msg)
            used = sizeof msg;
        problems++;
    }
    /* one line, for a log */
    for (char *p = msg; (p = strchr(p, '\n')) != NULL;)
        *p = ' ';
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "integrity check");
    else if (problems)
        ret = sq_fail(err, STORE_E_CORRUPT, "integrity check: %s", msg);
    sqlite3_finalize(s);
    if (ret || (ret = sq_check_search_index(st, "params", err)) != 0 ||
        (ret = sq_check_search_index(st, "metric_summary", err)) != 0)
        return ret;
    return check_chunks(st, err);
}

/* Copies the database as of one moment into dest_path, which must not
 * exist. The copy goes to dest_path.tmp-PID first (created O_EXCL and
 * O_NOFOLLOW, mode 0600 whatever the umask, without a journal: a torn copy
 * is only ever a tmp file), is fsynced and renamed when done, then the
 * directory is fsynced, so dest_path never holds half a backup. The source
 * keeps a read snapshot for the duration: in WAL mode writers on other
 * connections go on, and the copy never restarts. Not inside a transaction
 * of st. */
int store_backup(struct store *st, const char *dest_path, struct store_err *err)
{
    sqlite3 *dst = NULL;
    sqlite3_backup *b = NULL;
    sqlite3_stmt *s = NULL;
    struct stat sb;
    char *tmp = NULL;
    size_t len;
    int rc, ret = 0, in_read = 0, busy = 0;

    sq_err_clear(err);
    if (dest_path == NULL || dest_path[0] == '\0')
        return sq_fail(err, STORE_E_INVALID, "backup path is missing");
    if (!sqlite3_get_autocommit(st->db))
        return sq_fail(err, STORE_E_INVALID, "cannot back up inside a transaction");
    if (stat(dest_path, &sb) == 0)
        return sq_fail(err, STORE_E_EXISTS, "backup file \"%s\" already exists", dest_path);
    len = strlen(dest_path) + 32;
    tmp = malloc(len);
    if (tmp == NULL)
        return sq_fail(err, STORE_E_INTERNAL, "out of memory");
    snprintf(tmp, len, "%s.tmp-%ld", dest_path, (long)getpid());
    unlink(tmp);
    ret = store_file_create_private(tmp, err);
    if (ret)
        goto out;

    ret = sq_run_q(st, Q_BEGIN_READ, err, "starting the backup");
    if (ret)
        goto out;
    in_read = 1;
    ret = sq_prep(st, "SELECT count(*) FROM sqlite_schema", &s, err);
    if (ret)
        goto out;
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW) {
        ret = sq_db_fail(st, rc, err, "starting the backup");
        goto out;
    }

    rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        ret = sq_fail(err, sq_code_of(rc), "cannot create backup \"%s\": %s", tmp,
                      dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        goto out;
    }
    /* the tmp file is thrown away if anything fails: no journal needed */
    sqlite3_exec(dst, "PRAGMA journal_mode = OFF", NULL, NULL, NULL);
    b = sqlite3_backup_init(dst, "main", st->db, "main");
    if (b == NULL) {
        ret = sq_fail(err, sq_code_of(sqlite3_errcode(dst)), "backup to \"%s\": %s", dest_path,
                      sqlite3_errmsg(dst));
        goto out;
    }
    for (;;) {
        rc = sqlite3_backup_step(b, BACKUP_PAGES_PER_STEP);
        if (rc == SQLITE_DONE)
            break;
        if (rc == SQLITE_OK)
            continue;
        if ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && ++busy < BACKUP_MAX_BUSY_WAITS) {
            sqlite3_sleep(5);
            continue;
        }
        break;
    }
    rc = sqlite3_backup_finish(b);
    b = NULL;
    if (rc != SQLITE_OK) {
        ret = sq_fail(err, sq_code_of(rc), "backup to \"%s\": %s", dest_path, sqlite3_errstr(rc));
        goto out;
    }
    rc = sqlite3_close(dst);
    dst = NULL;
    if (rc != SQLITE_OK) {
        ret = sq_fail(err, sq_code_of(rc), "closing backup \"%s\": %s", dest_path,
                      sqlite3_errstr(rc));
        goto out;
    }
    ret = store_file_sync(tmp, err);
    if (ret)
        goto out;
    if (rename(tmp, dest_path) != 0)
        ret = sq_fail(err, STORE_E_IO, "renaming backup to \"%s\": %s", dest_path, strerror(errno));
    else
        ret = store_dir_sync(dest_path, err);
out:
    if (b)
        sqlite3_backup_finish(b);
    if (dst)
        sqlite3_close(dst);
    if (in_read && !sqlite3_get_autocommit(st->db))
        sq_run_q(st, Q_COMMIT, NULL, "ending the backup");
    if (ret && tmp)
        unlink(tmp);
    free(tmp);
    return ret;
}
