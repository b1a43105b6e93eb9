/*
 * store_sqlite.c: the SQLite implementation of store.h. This file owns the
 * schema, its migrations and every SQL statement trackd runs; the filter
 * language is compiled to SQL fragments by filter.c and the metric chunk
 * bytes are chunk.c's business. Nothing here logs, prints or aborts: every
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
 * the summary keeps the last value's exact bits in last_bits; `last` (NULL
 * for NaN), `min` and `max` are for sorting and filtering only.
 *
 * Hot statements are prepared once at open (SQLITE_PREPARE_PERSISTENT) and
 * reset after each use. Metric key ids and the last run looked up are cached
 * in struct store; both caches are dropped on every rollback and every
 * SQLite error, since a rolled-back transaction may take cached rows with it.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "chunk.h"
#include "filter.h"
#include "store.h"

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
    CLIP_LEN = 100, /* bytes of a user's string quoted in a message */
};

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
};

#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

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

static const char *const stmt_sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVE] = "SAVEPOINT store_request",
    [Q_RELEASE] = "RELEASE store_request",
    [Q_ROLLBACK_TO] = "ROLLBACK TO store_request",
    [Q_RUN_ID] = "SELECT id FROM runs WHERE uuid = ?1",
    [Q_KEY_GET] = "SELECT id FROM metric_keys WHERE name = ?1",
    [Q_KEY_PUT] = "INSERT INTO metric_keys(name) VALUES(?1)",
    [Q_SUM_GET] = "SELECT min, max, count FROM metric_summary WHERE run = ?1 AND key_id = ?2",
    [Q_SUM_PUT] = "INSERT INTO metric_summary(run, key_id, last, last_bits, min, max, count,"
                  " last_step, last_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
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
    [Q_PARAM_PUT] = "INSERT INTO params(run, key, value) VALUES(?1, ?2, ?3)",
    [Q_TAG_PUT] = "INSERT INTO tags(run, key, value) VALUES(?1, ?2, ?3)"
                  " ON CONFLICT(run, key) DO UPDATE SET value = excluded.value",
    [Q_REQ_GET] = "SELECT response, digest FROM requests WHERE id = ?1",
    [Q_REQ_PUT] = "INSERT INTO requests(id, ms, response, digest) VALUES(?1, ?2, ?3, ?4)",
    /* per-run reads: prepared once, since listing many runs with their
     * details runs them once per run */
    [Q_RUN_GET] = "SELECT r.uuid, r.name, e.name, r.status, r.start_ms, r.end_ms, r.user,"
                  " r.parent_uuid FROM runs r JOIN experiments e ON e.id = r.experiment_id"
                  " WHERE r.uuid = ?1",
    [Q_PARAM_LIST] = "SELECT key, value FROM params WHERE run = ?1 ORDER BY key",
    [Q_TAG_LIST] = "SELECT key, value FROM tags WHERE run = ?1 ORDER BY key",
    [Q_SUM_LIST] = "SELECT k.name, s.last_bits, s.min, s.max, s.count, s.last_step, s.last_ms"
                   " FROM metric_summary s JOIN metric_keys k ON k.id = s.key_id"
                   " WHERE s.run = ?1 ORDER BY k.name",
};

#define RUN_SELECT                                                                                 \
    "SELECT r.uuid, r.name, e.name, r.status, r.start_ms, r.end_ms, r.user, r.parent_uuid"         \
    " FROM runs r JOIN experiments e ON e.id = r.experiment_id"

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

    int wal_pages; /* frames in the WAL after the last commit (wal_hook) */
};

/* ---- errors ---------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int fail(struct store_err *err, int code,
                                                      const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void err_clear(struct store_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

static int code_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return STORE_E_FULL;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_E_BUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return STORE_E_CORRUPT;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return STORE_E_IO;
    case SQLITE_TOOBIG:
        return STORE_E_INVALID;
    default:
        return STORE_E_INTERNAL;
    }
}

static void key_cache_clear(struct store *st)
{
    for (int i = 0; i < KEY_CACHE_SLOTS; i++) {
        free(st->keys[i].name);
        st->keys[i].name = NULL;
    }
    st->n_keys = 0;
}

/* Forgets everything a rolled-back transaction may have made stale. */
static void cache_drop(struct store *st)
{
    key_cache_clear(st);
    st->run_cached = 0;
    st->compact_mark = 0;
}

/* A failed SQLite call: the code for rc, `what` and SQLite's words in err.
 * Drops the caches, since SQLite may have rolled the transaction back. */
static int db_fail(struct store *st, int rc, struct store_err *err, const char *what)
{
    int code = code_of(rc);

    cache_drop(st);
    if (code == STORE_E_FULL)
        return fail(err, code, "%s: database or disk is full", what);
    return fail(err, code, "%s: %s", what,
                rc == sqlite3_errcode(st->db) ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
}

/* What a callback's non-zero answer becomes: it stops the listing and is
 * returned; err is filled unless the callback already did. */
static int cb_stop(struct store_err *err, int rc)
{
    if (rc < 0 && err && err->code != rc)
        fail(err, rc, "stopped by the callback (%d)", rc);
    return rc;
}

/* A user's string for a message: at most CLIP_LEN bytes, cut on a UTF-8
 * character boundary, "..." appended when cut. */
static const char *clip(const char *s, char *buf, size_t cap)
{
    size_t len = strlen(s), keep;

    if (len <= CLIP_LEN || cap < CLIP_LEN + 4)
        return s;
    keep = CLIP_LEN;
    while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80)
        keep--;
    memcpy(buf, s, keep);
    memcpy(buf + keep, "...", 4);
    return buf;
}

static void hex_of(const uint8_t id[16], char out[33])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[32] = '\0';
}

static const char *status_name(int status)
{
    switch (status) {
    case STORE_RUNNING:
        return "RUNNING";
    case STORE_FINISHED:
        return "FINISHED";
    case STORE_FAILED:
        return "FAILED";
    case STORE_KILLED:
        return "KILLED";
    default:
        return "UNKNOWN";
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double real_or_nan(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL ? NAN : sqlite3_column_double(s, col);
}

static void bind_real_or_null(sqlite3_stmt *s, int i, int have, double v)
{
    if (have)
        sqlite3_bind_double(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

static int writable(struct store *st, struct store_err *err)
{
    if (st->readonly)
        return fail(err, STORE_E_INVALID, "store is open read-only");
    return 0;
}

/* ---- small SQL helpers ------------------------------------------------------ */

/* Prepares a statement used once (the hot ones are in st->q). */
static int prep(struct store *st, const char *sql, sqlite3_stmt **s, struct store_err *err)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);

    if (rc != SQLITE_OK) {
        *s = NULL;
        return db_fail(st, rc, err, "preparing a query");
    }
    return 0;
}

/* Steps a statement that returns no rows (or whose rows do not matter). */
static int run_q(struct store *st, enum stmt_id id, struct store_err *err, const char *what)
{
    sqlite3_stmt *s = st->q[id];
    int rc = sqlite3_step(s), ret = 0;

    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = db_fail(st, rc, err, what);
    sqlite3_reset(s);
    return ret;
}

static int exec_sql(struct store *st, const char *sql, struct store_err *err, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return db_fail(st, rc, err, what);
    return 0;
}

static int user_version(struct store *st, int *v, struct store_err *err, const char *what)
{
    sqlite3_stmt *s = NULL;
    int rc, ret = prep(st, "PRAGMA user_version", &s, err);

    if (ret)
        return ret;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int(s, 0);
    else
        ret = db_fail(st, rc, err, what);
    sqlite3_finalize(s);
    return ret;
}

/* A string built for one query, capped at SQL_MAX_LEN. */
struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
};

__attribute__((format(printf, 2, 3))) static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = cap <= SQL_MAX_LEN ? realloc(b->p, cap) : NULL;
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* ---- buffers ----------------------------------------------------------------- */

static int enc_reserve(struct store *st, size_t need, struct store_err *err)
{
    size_t max = chunk_bound(CHUNK_MAX_POINTS), cap;
    uint8_t *p;

    if (need <= st->enc_cap)
        return 0;
    if (need > max)
        return fail(err, STORE_E_INTERNAL, "chunk of %zu bytes exceeds the %zu-byte buffer", need,
                    max);
    cap = st->enc_cap ? st->enc_cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > max)
        cap = max;
    p = realloc(st->enc, cap);
    if (p == NULL)
        return fail(err, STORE_E_INTERNAL, "out of memory for a %zu-byte chunk", cap);
    st->enc = p;
    st->enc_cap = cap;
    return 0;
}

/* Room for `need` points in the decoding buffers; contents are kept. */
static int dec_reserve(struct store *st, size_t need, struct store_err *err)
{
    size_t cap;
    void *p;

    if (need <= st->d_cap)
        return 0;
    if (need > DECODE_MAX_POINTS)
        return fail(err, STORE_E_CORRUPT, "chunk of %zu points exceeds the %d-point limit", need,
                    DECODE_MAX_POINTS);
    cap = st->d_cap ? st->d_cap : 1024;
    while (cap < need)
        cap *= 2;
    if ((p = realloc(st->d_steps, cap * sizeof(int64_t))) == NULL)
        goto oom;
    st->d_steps = p;
    if ((p = realloc(st->d_times, cap * sizeof(int64_t))) == NULL)
        goto oom;
    st->d_times = p;
    if ((p = realloc(st->d_vals, cap * sizeof(double))) == NULL)
        goto oom;
    st->d_vals = p;
    st->d_cap = cap;
    return 0;
oom:
    return fail(err, STORE_E_INTERNAL, "out of memory decoding %zu points", need);
}

/* Decodes a chunk blob into the decoding buffers at offset `at`, checking
 * that it holds `expect` points (a stored chunk is never empty). */
static int decode_into(struct store *st, const void *blob, int len, size_t at, int64_t expect,
                       struct store_err *err)
{
    size_t n = 0;
    int ret;

    if (blob == NULL || len <= 0 || expect < 1 ||
        chunk_decode_header(blob, (size_t)len, &n) != CHUNK_OK || (int64_t)n != expect)
        return fail(err, STORE_E_CORRUPT, "bad chunk header");
    ret = dec_reserve(st, at + n, err);
    if (ret)
        return ret;
    if (chunk_decode(blob, (size_t)len, st->d_steps + at, st->d_times + at, st->d_vals + at,
                     st->d_cap - at, &n) != CHUNK_OK)
        return fail(err, STORE_E_CORRUPT, "bad chunk data");
    return 0;
}

/* ---- caches and lookups ------------------------------------------------------ */

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct key_slot *key_slot_of(struct store *st, const char *name)
{
    uint32_t i = name_hash(name) & (KEY_CACHE_SLOTS - 1);

    while (st->keys[i].name && strcmp(st->keys[i].name, name) != 0)
        i = (i + 1) & (KEY_CACHE_SLOTS - 1);
    return &st->keys[i];
}

static void key_cache_put(struct store *st, const char *name, int64_t id)
{
    struct key_slot *k;

    if (st->n_keys >= KEY_CACHE_SLOTS * 3 / 4)
        key_cache_clear(st);
    k = key_slot_of(st, name);
    if (k->name)
        return;
    k->name = strdup(name);
    if (k->name == NULL)
        return; /* only a cache */
    k->id = id;
    st->n_keys++;
}

/* The id of metric key `name`: 0 when found (or created, if `create`), 1
 * when missing and not created, or a negative code. */
static int key_find(struct store *st, const char *name, int create, int64_t *id,
                    struct store_err *err)
{
    struct key_slot *k = key_slot_of(st, name);
    sqlite3_stmt *s;
    int rc, ret = 1;

    if (k->name) {
        *id = k->id;
        return 0;
    }
    s = st->q[Q_KEY_GET];
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        ret = 0;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "looking up a metric key");
    }
    sqlite3_reset(s);
    if (ret == 1 && create) {
        s = st->q[Q_KEY_PUT];
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
            *id = sqlite3_last_insert_rowid(st->db);
            ret = 0;
        } else {
            ret = db_fail(st, rc, err, "adding a metric key");
        }
        sqlite3_reset(s);
    }
    if (ret == 0)
        key_cache_put(st, name, *id);
    return ret;
}

/* The row id of run `uuid`; STORE_E_NOT_FOUND naming `what` ("run",
 * "parent run") when there is none. */
static int run_find(struct store *st, const uint8_t uuid[16], int64_t *id, const char *what,
                    struct store_err *err)
{
    sqlite3_stmt *s = st->q[Q_RUN_ID];
    char hex[33];
    int rc, ret = 0;

    if (st->run_cached && memcmp(st->run_uuid, uuid, 16) == 0) {
        *id = st->run_id;
        return 0;
    }
    sqlite3_bind_blob(s, 1, uuid, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        memcpy(st->run_uuid, uuid, 16);
        st->run_id = *id;
        st->run_cached = 1;
    } else if (rc == SQLITE_DONE) {
        hex_of(uuid, hex);
        ret = fail(err, STORE_E_NOT_FOUND, "%s %s not found", what, hex);
    } else {
        ret = db_fail(st, rc, err, "looking up a run");
    }
    sqlite3_reset(s);
    return ret;
}

/* ---- open and close -------------------------------------------------------- */

static int migrate(struct store *st, const char *path, struct store_err *err)
{
    char sql[64];
    int v = 0, ret;

    for (;;) {
        /* version read inside the write lock: two openers never both migrate */
        ret = exec_sql(st, "BEGIN IMMEDIATE", err, "starting the schema migration");
        if (ret)
            return ret;
        ret = user_version(st, &v, err, "reading the schema version");
        if (ret)
            goto fail_tx;
        if (v > SCHEMA_VERSION) {
            ret = fail(err, STORE_E_INVALID,
                       "database \"%s\" has schema version %d, newer than this build's %d", path, v,
                       SCHEMA_VERSION);
            goto fail_tx;
        }
        if (v == SCHEMA_VERSION)
            return exec_sql(st, "COMMIT", err, "finishing the schema migration");
        ret = exec_sql(st, migrations[v], err, "migrating the schema");
        if (ret)
            goto fail_tx;
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        ret = exec_sql(st, sql, err, "migrating the schema");
        if (ret)
            goto fail_tx;
        ret = exec_sql(st, "COMMIT", err, "committing the schema migration");
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
    int v = 0, ret = user_version(st, &v, err, "reading the schema version");

    if (ret)
        return ret;
    if (v == 0)
        return fail(err, STORE_E_INVALID,
                    "database \"%s\" has no track schema yet; open it read-write first", path);
    if (v > SCHEMA_VERSION)
        return fail(err, STORE_E_INVALID,
                    "database \"%s\" has schema version %d, newer than this build's %d", path, v,
                    SCHEMA_VERSION);
    if (v < SCHEMA_VERSION)
        return fail(err, STORE_E_INVALID,
                    "database \"%s\" has schema version %d, older than this build's %d; "
                    "open it read-write once to migrate it",
                    path, v, SCHEMA_VERSION);
    return 0;
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    ((struct store *)arg)->wal_pages = pages;
    return SQLITE_OK;
}

static int configure(struct store *st, int durability, const char *path, struct store_err *err)
{
    char what[128];
    int ret;

    snprintf(what, sizeof what, "opening \"%.100s\"", path);
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, 5000);
    ret = exec_sql(st,
                   "PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;"
                   " PRAGMA temp_store = MEMORY;",
                   err, what);
    if (ret)
        return ret;
    if (st->readonly)
        return check_version(st, path, err);
    ret = exec_sql(st, "PRAGMA journal_mode = WAL", err, what);
    if (ret)
        return ret;
    ret = exec_sql(st,
                   durability == STORE_DURABILITY_FULL ? "PRAGMA synchronous = FULL"
                                                       : "PRAGMA synchronous = NORMAL",
                   err, what);
    if (ret)
        return ret;
    /* no checkpoint inside a commit: SQLite's automatic one would make the
     * request whose commit crosses the threshold wait for two fsyncs. The
     * hook counts the WAL instead, and the owner checkpoints when it suits
     * (store_checkpoint) */
    sqlite3_wal_hook(st->db, wal_hook, st);
    return migrate(st, path, err);
}

/* Opens the database; see store.h. A read-only handle needs the database to
 * exist at this build's schema version. */
int store_open(const char *path, const struct store_opts *opts, struct store **out,
               struct store_err *err)
{
    struct store *st = NULL;
    int durability = opts ? opts->durability : STORE_DURABILITY_NORMAL;
    int flags, rc, ret = 0;

    err_clear(err);
    if (out == NULL || path == NULL || path[0] == '\0')
        return fail(err, STORE_E_INVALID, "database path is missing");
    *out = NULL;
    if (durability != STORE_DURABILITY_NORMAL && durability != STORE_DURABILITY_FULL)
        return fail(err, STORE_E_INVALID, "durability %d is neither NORMAL (0) nor FULL (1)",
                    durability);
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return fail(err, STORE_E_INTERNAL, "out of memory");
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
        ret = fail(err, code_of(rc), "cannot open database \"%s\": %s", path,
                   st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
        goto out;
    }
    ret = configure(st, durability, path, err);
    if (ret)
        goto out;
    for (int i = 0; i < Q_COUNT; i++) {
        rc =
            sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st->q[i], NULL);
        if (rc != SQLITE_OK) {
            ret = db_fail(st, rc, err, "preparing statements");
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
    sqlite3_close(st->db);
    cache_drop(st);
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
    err_clear(err);
    return run_q(st, st->readonly ? Q_BEGIN_READ : Q_BEGIN, err, "beginning a transaction");
}

/* On failure the transaction may still be open: call store_rollback. */
int store_commit(struct store *st, struct store_err *err)
{
    err_clear(err);
    return run_q(st, Q_COMMIT, err, "committing");
}

void store_rollback(struct store *st)
{
    if (st == NULL)
        return;
    if (!sqlite3_get_autocommit(st->db))
        run_q(st, Q_ROLLBACK, NULL, "rolling back");
    cache_drop(st);
}

/* Savepoints nest: each store_save is matched by one store_release or one
 * store_rollback_to (which also releases it). */
int store_save(struct store *st, struct store_err *err)
{
    err_clear(err);
    return run_q(st, Q_SAVE, err, "setting a savepoint");
}

void store_release(struct store *st)
{
    if (st)
        run_q(st, Q_RELEASE, NULL, "releasing a savepoint");
}

void store_rollback_to(struct store *st)
{
    if (st == NULL)
        return;
    run_q(st, Q_ROLLBACK_TO, NULL, "rolling back to a savepoint");
    run_q(st, Q_RELEASE, NULL, "releasing a savepoint");
    cache_drop(st);
}

/* ---- checkpoints ------------------------------------------------------------ */

int store_wal_pages(struct store *st)
{
    return st->wal_pages;
}

int store_checkpoint(struct store *st, struct store_err *err)
{
    int log = 0, done = 0, rc;

    err_clear(err);
    if (st->readonly)
        return 0;
    rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return db_fail(st, rc, err, "checkpointing the WAL");
    st->wal_pages = log > done ? log - done : 0;
    return 0;
}

int store_checkpoint_truncate(struct store *st, struct store_err *err)
{
    int log = 0, done = 0, rc;

    err_clear(err);
    if (st->readonly)
        return 0;
    rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    if (rc != SQLITE_OK)
        return db_fail(st, rc, err, "checkpointing and truncating the WAL");
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

    err_clear(err);
    if (id == NULL || resp == NULL || len == NULL)
        return fail(err, STORE_E_INVALID, "request id or output missing");
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
            hex_of(id, hex);
            ret = fail(err, STORE_E_CONFLICT,
                       "request_id: %s was reused with a different body; a retry must resend "
                       "the same request, a new request needs a new id",
                       hex);
            goto out;
        }
        *resp = malloc(n ? n : 1);
        if (*resp == NULL) {
            ret = fail(err, STORE_E_INTERNAL, "out of memory for a %zu-byte response", n);
            goto out;
        }
        if (n)
            memcpy(*resp, b, n);
        *len = n;
        ret = 1;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "looking up a request id");
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

    err_clear(err);
    if (id == NULL || (resp == NULL && len > 0))
        return fail(err, STORE_E_INVALID, "request id or response missing");
    if (len > INT32_MAX)
        return fail(err, STORE_E_INVALID, "response of %zu bytes is too large", len);
    if ((ret = writable(st, err)) != 0)
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
        hex_of(id, hex);
        ret = fail(err, STORE_E_EXISTS, "request %s already recorded", hex);
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "recording a request id");
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

    err_clear(err);
    if (pruned)
        *pruned = 0;
    if ((ret = writable(st, err)) != 0)
        return ret;
    ret = prep(st, "SELECT coalesce(max(seq), 0) FROM requests", &s, err);
    if (ret)
        return ret;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        cut = sqlite3_column_int64(s, 0) - (keep_last > 0 ? keep_last : 0);
    else
        ret = db_fail(st, rc, err, "counting request ids");
    sqlite3_finalize(s);
    s = NULL;
    if (ret || cut <= 0)
        return ret;
    ret = prep(st,
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
        ret = db_fail(st, rc, err, "pruning request ids");
    else if (pruned)
        *pruned = sqlite3_changes(st->db);
    sqlite3_finalize(s);
    return ret;
}

/* ---- experiments ----------------------------------------------------------------- */

static int check_name(const char *name, const char *what, struct store_err *err)
{
    if (name == NULL || name[0] == '\0')
        return fail(err, STORE_E_INVALID, "%s is empty", what);
    return 0;
}

/* STORE_E_EXISTS when the name is taken. */
int store_experiment_create(struct store *st, const char *name, int64_t now, int64_t *id,
                            struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char cbuf[CLIP_LEN + 4];
    int rc, ret;

    err_clear(err);
    if ((ret = check_name(name, "experiment name", err)) != 0 || (ret = writable(st, err)) != 0)
        return ret;
    ret =
        prep(st, "INSERT INTO experiments(name, archived, created_ms) VALUES(?1, 0, ?2)", &s, err);
    if (ret)
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, now);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        if (id)
            *id = sqlite3_last_insert_rowid(st->db);
    } else if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        ret = fail(err, STORE_E_EXISTS, "experiment \"%s\" already exists",
                   clip(name, cbuf, sizeof cbuf));
    } else {
        ret = db_fail(st, rc, err, "creating an experiment");
    }
    sqlite3_finalize(s);
    return ret;
}

static int experiment_id_of(struct store *st, const char *name, int64_t *id, int *found,
                            struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret = prep(st, "SELECT id FROM experiments WHERE name = ?1", &s, err);

    *found = 0;
    if (ret)
        return ret;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "looking up an experiment");
    }
    sqlite3_finalize(s);
    return ret;
}

/* Finds `name`, creating it (not archived, created at now) when missing. */
int store_experiment_ensure(struct store *st, const char *name, int64_t now, int64_t *id,
                            struct store_err *err)
{
    int64_t found_id = 0;
    int found = 0, ret;

    err_clear(err);
    if ((ret = check_name(name, "experiment name", err)) != 0)
        return ret;
    ret = experiment_id_of(st, name, &found_id, &found, err);
    if (ret)
        return ret;
    if (!found)
        return store_experiment_create(st, name, now, id, err);
    if (id)
        *id = found_id;
    return 0;
}

/* Calls cb for every experiment in creation order; a non-zero answer from
 * cb stops the listing and is returned. */
int store_experiment_list(struct store *st, store_experiment_cb cb, void *ctx,
                          struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    err_clear(err);
    if (cb == NULL)
        return fail(err, STORE_E_INVALID, "callback missing");
    ret = prep(st,
               "SELECT e.id, e.name, e.archived, e.created_ms,"
               " (SELECT count(*) FROM runs r WHERE r.experiment_id = e.id)"
               " FROM experiments e ORDER BY e.id",
               &s, err);
    if (ret)
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_experiment e = {
            .id = sqlite3_column_int64(s, 0),
            .name = (const char *)sqlite3_column_text(s, 1),
            .archived = sqlite3_column_int(s, 2),
            .created_ms = sqlite3_column_int64(s, 3),
            .run_count = sqlite3_column_int64(s, 4),
        };
        if (e.name == NULL)
            e.name = "";
        ret = cb(ctx, &e);
        if (ret) {
            ret = cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "listing experiments");
out:
    sqlite3_finalize(s);
    return ret;
}

/* ---- runs -------------------------------------------------------------------- */

static const char *const name_adjectives[] = {
    "amber",  "bold",   "brave",  "bright", "calm",   "clever", "cosmic", "crisp",
    "eager",  "fancy",  "gentle", "glad",   "golden", "happy",  "hidden", "jolly",
    "keen",   "lively", "lucky",  "mellow", "nimble", "noble",  "quiet",  "rapid",
    "rustic", "silent", "sleek",  "snowy",  "sunny",  "swift",  "vivid",  "witty",
};

static const char *const name_nouns[] = {
    "badger", "bee",     "cloud",   "comet",  "crane",  "delta",  "falcon", "fern",
    "finch",  "fox",     "glacier", "harbor", "heron",  "lake",   "lynx",   "maple",
    "meadow", "moon",    "otter",   "owl",    "panda",  "pine",   "river",  "robin",
    "salmon", "sparrow", "star",    "tiger",  "valley", "willow", "wolf",   "zebra",
};

static void run_name_generate(char *buf, size_t cap)
{
    const size_t na = sizeof name_adjectives / sizeof name_adjectives[0];
    const size_t nn = sizeof name_nouns / sizeof name_nouns[0];
    uint32_t r = 0;

    sqlite3_randomness(sizeof r, &r);
    snprintf(buf, cap, "%s-%s-%02u", name_adjectives[r % na], name_nouns[(r / na) % nn],
             (unsigned)((r / (na * nn)) % 100));
}

/* Idempotent for a replay with the same id and experiment; STORE_E_EXISTS
 * for the same id in another experiment; STORE_E_NOT_FOUND for a missing
 * experiment or parent. */
int store_run_start(struct store *st, const struct store_run_start *r, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char hex[33], gen[64], cbuf[CLIP_LEN + 4];
    const char *name;
    int64_t parent_row;
    int rc, ret;

    err_clear(err);
    if (r == NULL)
        return fail(err, STORE_E_INVALID, "run missing");
    if ((ret = writable(st, err)) != 0)
        return ret;
    hex_of(r->id, hex);

    ret = prep(st,
               "SELECT r.experiment_id, e.name FROM runs r"
               " JOIN experiments e ON e.id = r.experiment_id WHERE r.uuid = ?1",
               &s, err);
    if (ret)
        return ret;
    sqlite3_bind_blob(s, 1, r->id, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_int64(s, 0) != r->experiment_id)
            ret = fail(err, STORE_E_EXISTS, "run %s already exists in experiment \"%s\"", hex,
                       clip((const char *)sqlite3_column_text(s, 1), cbuf, sizeof cbuf));
        goto out; /* a replay: nothing to do */
    }
    if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "looking up a run");
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;

    ret = prep(st, "SELECT 1 FROM experiments WHERE id = ?1", &s, err);
    if (ret)
        goto out;
    sqlite3_bind_int64(s, 1, r->experiment_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        ret =
            fail(err, STORE_E_NOT_FOUND, "experiment %lld not found", (long long)r->experiment_id);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        ret = db_fail(st, rc, err, "looking up an experiment");
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;

    if (r->has_parent) {
        if (memcmp(r->parent, r->id, 16) == 0) {
            ret = fail(err, STORE_E_INVALID, "run %s cannot be its own parent", hex);
            goto out;
        }
        ret = run_find(st, r->parent, &parent_row, "parent run", err);
        if (ret)
            goto out;
    }
    name = r->name;
    if (name == NULL || name[0] == '\0') {
        run_name_generate(gen, sizeof gen);
        name = gen;
    }

    ret = prep(st,
               "INSERT INTO runs(uuid, hex, experiment_id, name, status, start_ms, end_ms, user,"
               " parent_uuid) VALUES(?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)",
               &s, err);
    if (ret)
        goto out;
    sqlite3_bind_blob(s, 1, r->id, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, hex, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, r->experiment_id);
    sqlite3_bind_text(s, 4, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, STORE_RUNNING);
    sqlite3_bind_int64(s, 6, r->start_ms);
    sqlite3_bind_text(s, 7, r->user ? r->user : "", -1, SQLITE_STATIC);
    if (r->has_parent)
        sqlite3_bind_blob(s, 8, r->parent, 16, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, 8);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "starting a run");
out:
    sqlite3_finalize(s);
    return ret;
}

/* status is FINISHED, FAILED or KILLED. Ending an ended run again with the
 * same status is accepted and keeps the first end time; with another status
 * it is STORE_E_CONFLICT. */
int store_run_end(struct store *st, const uint8_t id[16], int status, int64_t end_ms,
                  struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char hex[33];
    int rc, ret, cur;
    int64_t start;

    err_clear(err);
    if (id == NULL)
        return fail(err, STORE_E_INVALID, "run id missing");
    if (status < STORE_FINISHED || status > STORE_KILLED)
        return fail(err, STORE_E_INVALID,
                    "status %d is not an end status (2 FINISHED, 3 FAILED, 4 KILLED)", status);
    if ((ret = writable(st, err)) != 0)
        return ret;
    hex_of(id, hex);
    ret = prep(st, "SELECT status, start_ms FROM runs WHERE uuid = ?1", &s, err);
    if (ret)
        return ret;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        ret = fail(err, STORE_E_NOT_FOUND, "run %s not found", hex);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        ret = db_fail(st, rc, err, "looking up a run");
        goto out;
    }
    cur = sqlite3_column_int(s, 0);
    start = sqlite3_column_int64(s, 1);
    sqlite3_finalize(s);
    s = NULL;
    if (cur == status)
        goto out;
    if (end_ms == 0) {
        end_ms = now_ms();
        if (end_ms < start)
            end_ms = start;
    } else if (end_ms < start) {
        ret = fail(err, STORE_E_INVALID,
                   "end_ms: %lld is before the run's start_ms %lld; a run cannot end before it "
                   "starts",
                   (long long)end_ms, (long long)start);
        goto out;
    }
    if (cur != STORE_RUNNING) {
        ret = fail(err, STORE_E_CONFLICT, "run %s already ended as %s, cannot end it as %s", hex,
                   status_name(cur), status_name(status));
        goto out;
    }
    ret = prep(st, "UPDATE runs SET status = ?2, end_ms = ?3 WHERE uuid = ?1", &s, err);
    if (ret)
        goto out;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, status);
    sqlite3_bind_int64(s, 3, end_ms);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "ending a run");
out:
    sqlite3_finalize(s);
    return ret;
}

static int hex_digit(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Accepts 4..32 hex digits in either case; the message of
 * STORE_E_AMBIGUOUS lists up to 8 candidates as "hex (name)". */
int store_run_resolve(struct store *st, const char *hex, uint8_t id[16], struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char lo[33], hi[33], msg[sizeof err->msg], cbuf[CLIP_LEN + 4];
    size_t len, used;
    int rc, ret, n = 0;

    err_clear(err);
    if (hex == NULL || id == NULL)
        return fail(err, STORE_E_INVALID, "run id missing");
    len = strnlen(hex, 33);
    if (len < 4 || len > 32)
        return fail(err, STORE_E_INVALID, "run id \"%.40s\" must be 4 to 32 hex digits", hex);
    for (size_t i = 0; i < len; i++) {
        int c = hex[i];
        if (c >= 'A' && c <= 'F')
            c += 'a' - 'A';
        if (!hex_digit(c))
            return fail(err, STORE_E_INVALID,
                        "run id \"%.40s\" has '%c' at column %zu; expected a hex digit", hex,
                        hex[i] >= 0x20 && hex[i] < 0x7f ? hex[i] : '?', i + 1);
        lo[i] = (char)c;
    }
    lo[len] = '\0';
    /* every id starting with lo sorts in [lo, lo with its last digit + 1) */
    memcpy(hi, lo, len + 1);
    hi[len - 1]++;

    ret = prep(st,
               "SELECT uuid, hex, name FROM runs WHERE hex >= ?1 AND hex < ?2 ORDER BY hex"
               " LIMIT 9",
               &s, err);
    if (ret)
        return ret;
    sqlite3_bind_text(s, 1, lo, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, hi, (int)len, SQLITE_STATIC);
    used = (size_t)snprintf(msg, sizeof msg, "run id \"%s\" is ambiguous:", lo);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == 0) {
            if (sqlite3_column_bytes(s, 0) != 16) {
                ret = fail(err, STORE_E_CORRUPT, "run %s has a malformed id",
                           (const char *)sqlite3_column_text(s, 1));
                goto out;
            }
            memcpy(id, sqlite3_column_blob(s, 0), 16);
        }
        if (n < RESOLVE_CANDIDATES && used < sizeof msg) {
            const char *name = (const char *)sqlite3_column_text(s, 2);
            used += (size_t)snprintf(msg + used, sizeof msg - used, "%s %s (%s)", n ? "," : "",
                                     (const char *)sqlite3_column_text(s, 1),
                                     clip(name ? name : "", cbuf, sizeof cbuf));
        } else if (n == RESOLVE_CANDIDATES && used < sizeof msg) {
            used += (size_t)snprintf(msg + used, sizeof msg - used, ", and more");
        }
        n++;
    }
    if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "resolving a run id");
        goto out;
    }
    if (n == 0)
        ret = fail(err, STORE_E_NOT_FOUND, "no run id starts with \"%s\"", lo);
    else if (n > 1)
        ret = fail(err, STORE_E_AMBIGUOUS, "%s", msg);
out:
    if (ret && n > 0)
        memset(id, 0, 16);
    sqlite3_finalize(s);
    return ret;
}

/* Fills r from a row of RUN_SELECT; the strings live until the next step. */
static int run_of_row(sqlite3_stmt *s, struct store_run *r, struct store_err *err)
{
    memset(r, 0, sizeof *r);
    if (sqlite3_column_bytes(s, 0) != 16)
        return fail(err, STORE_E_CORRUPT, "a run has a malformed id");
    memcpy(r->id, sqlite3_column_blob(s, 0), 16);
    r->name = (const char *)sqlite3_column_text(s, 1);
    r->experiment = (const char *)sqlite3_column_text(s, 2);
    r->status = sqlite3_column_int(s, 3);
    r->start_ms = sqlite3_column_int64(s, 4);
    r->end_ms = sqlite3_column_int64(s, 5); /* NULL reads as 0 */
    r->user = (const char *)sqlite3_column_text(s, 6);
    if (sqlite3_column_bytes(s, 7) == 16) {
        r->has_parent = 1;
        memcpy(r->parent, sqlite3_column_blob(s, 7), 16);
    }
    if (r->name == NULL)
        r->name = "";
    if (r->experiment == NULL)
        r->experiment = "";
    if (r->user == NULL)
        r->user = "";
    return 0;
}

/* Calls cb once with the run, or answers STORE_E_NOT_FOUND. */
int store_run_get(struct store *st, const uint8_t id[16], store_run_cb cb, void *ctx,
                  struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    struct store_run r;
    char hex[33];
    int rc, ret;

    err_clear(err);
    if (id == NULL || cb == NULL)
        return fail(err, STORE_E_INVALID, "run id or callback missing");
    s = st->q[Q_RUN_GET];
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        ret = run_of_row(s, &r, err);
        if (ret == 0 && (ret = cb(ctx, &r)) != 0)
            ret = cb_stop(err, ret);
    } else if (rc == SQLITE_DONE) {
        hex_of(id, hex);
        ret = fail(err, STORE_E_NOT_FOUND, "run %s not found", hex);
    } else {
        ret = db_fail(st, rc, err, "reading a run");
    }
    sqlite3_reset(s);
    return ret;
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
    sqlite3_stmt *s = NULL;
    int64_t *exp_ids = NULL;
    struct store_run r;
    char cbuf[CLIP_LEN + 4];
    const char *order;
    size_t olen;
    int n_exp = 0, have_filter = 0, rc, ret, p;

    err_clear(err);
    if (q == NULL || cb == NULL)
        return fail(err, STORE_E_INVALID, "query or callback missing");
    if (q->limit < 0)
        return fail(err, STORE_E_INVALID, "limit %d is negative", q->limit);
    if (q->experiments) {
        while (q->experiments[n_exp])
            n_exp++;
        if (n_exp > RUN_LIST_MAX_EXPERIMENTS)
            return fail(err, STORE_E_INVALID, "%d experiments given; at most %d", n_exp,
                        RUN_LIST_MAX_EXPERIMENTS);
        exp_ids = calloc((size_t)n_exp + 1, sizeof *exp_ids);
        if (exp_ids == NULL)
            return fail(err, STORE_E_INTERNAL, "out of memory");
        for (int i = 0; i < n_exp; i++) {
            int found = 0;
            ret = experiment_id_of(st, q->experiments[i], &exp_ids[i], &found, err);
            if (ret)
                goto out;
            if (!found) {
                ret = fail(err, STORE_E_NOT_FOUND, "experiment \"%s\" not found",
                           clip(q->experiments[i], cbuf, sizeof cbuf));
                goto out;
            }
        }
    }
    ret = filter_compile(q->filter, q->order_by, now_ms(), &f, err);
    if (ret)
        goto out;
    have_filter = 1;

    /* the filter's binds are ?1..?n_binds; ours follow */
    p = f.n_binds;
    sb_add(&sql, RUN_SELECT " WHERE 1");
    if (n_exp > 0) {
        sb_add(&sql, " AND r.experiment_id IN (");
        for (int i = 0; i < n_exp; i++)
            sb_add(&sql, "%s?%d", i ? ", " : "", p + 1 + i);
        sb_add(&sql, ")");
    }
    if (f.where)
        sb_add(&sql, " AND (%s)", f.where);
    order = f.order ? f.order : "r.start_ms DESC";
    olen = strlen(order);
    /* newest-created first among ties, unless the order already says so */
    sb_add(&sql, " ORDER BY %s%s LIMIT ?%d", order,
           olen >= 9 && strcmp(order + olen - 9, "r.id DESC") == 0 ? "" : ", r.id DESC",
           p + n_exp + 1);
    if (sql.failed) {
        ret = fail(err, STORE_E_INVALID, "query too long");
        goto out;
    }
    ret = prep(st, sql.p, &s, err);
    if (ret)
        goto out;
    for (int i = 0; i < f.n_binds; i++) {
        const struct filter_bind *b = &f.binds[i];
        if (b->type == FILTER_BIND_INT)
            sqlite3_bind_int64(s, i + 1, b->i);
        else if (b->type == FILTER_BIND_DOUBLE)
            sqlite3_bind_double(s, i + 1, b->d);
        else if (b->type == FILTER_BIND_TEXT)
            sqlite3_bind_text(s, i + 1, b->s ? b->s : "", -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(s, i + 1);
    }
    for (int i = 0; i < n_exp; i++)
        sqlite3_bind_int64(s, p + 1 + i, exp_ids[i]);
    sqlite3_bind_int(s, p + n_exp + 1, q->limit > 0 ? q->limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        ret = run_of_row(s, &r, err);
        if (ret)
            goto out;
        ret = cb(ctx, &r);
        if (ret) {
            ret = cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "listing runs");
out:
    sqlite3_finalize(s);
    if (have_filter)
        filter_sql_free(&f);
    free(sql.p);
    free(exp_ids);
    return ret;
}

/* ---- params and tags --------------------------------------------------------- */

int store_param_put(struct store *st, const uint8_t run[16], const char *key, const char *value,
                    struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char c1[CLIP_LEN + 4], c2[CLIP_LEN + 4], c3[CLIP_LEN + 4];
    int64_t run_id;
    int rc, ret;

    err_clear(err);
    if (run == NULL || value == NULL)
        return fail(err, STORE_E_INVALID, "run id or param value missing");
    if ((ret = check_name(key, "param key", err)) != 0 || (ret = writable(st, err)) != 0)
        return ret;
    ret = run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    s = st->q[Q_PARAM_GET];
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *old = (const char *)sqlite3_column_text(s, 0);
        if (old == NULL)
            old = "";
        if (strcmp(old, value) != 0)
            ret = fail(err, STORE_E_CONFLICT,
                       "param \"%s\" already logged as \"%s\", cannot change it to \"%s\"",
                       clip(key, c1, sizeof c1), clip(old, c2, sizeof c2),
                       clip(value, c3, sizeof c3));
        sqlite3_reset(s);
        return ret;
    }
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "reading a param");
    sqlite3_reset(s);
    if (ret)
        return ret;
    s = st->q[Q_PARAM_PUT];
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "logging a param");
    sqlite3_reset(s);
    return ret;
}

/* Sets or replaces the tag. */
int store_tag_put(struct store *st, const uint8_t run[16], const char *key, const char *value,
                  struct store_err *err)
{
    sqlite3_stmt *s;
    int64_t run_id;
    int rc, ret;

    err_clear(err);
    if (run == NULL || value == NULL)
        return fail(err, STORE_E_INVALID, "run id or tag value missing");
    if ((ret = check_name(key, "tag key", err)) != 0 || (ret = writable(st, err)) != 0)
        return ret;
    ret = run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    s = st->q[Q_TAG_PUT];
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "setting a tag");
    sqlite3_reset(s);
    return ret;
}

static int kv_list(struct store *st, const uint8_t run[16], enum stmt_id q, store_kv_cb cb,
                   void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t run_id;
    int rc, ret;

    err_clear(err);
    if (run == NULL || cb == NULL)
        return fail(err, STORE_E_INVALID, "run id or callback missing");
    ret = run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    s = st->q[q];
    sqlite3_bind_int64(s, 1, run_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        const char *v = (const char *)sqlite3_column_text(s, 1);
        ret = cb(ctx, k ? k : "", v ? v : "");
        if (ret) {
            ret = cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "listing");
out:
    sqlite3_reset(s);
    return ret;
}

/* Calls cb for each param of the run, by key; a non-zero answer stops. */
int store_param_list(struct store *st, const uint8_t run[16], store_kv_cb cb, void *ctx,
                     struct store_err *err)
{
    return kv_list(st, run, Q_PARAM_LIST, cb, ctx, err);
}

/* Calls cb for each tag of the run, by key; a non-zero answer stops. */
int store_tag_list(struct store *st, const uint8_t run[16], store_kv_cb cb, void *ctx,
                   struct store_err *err)
{
    return kv_list(st, run, Q_TAG_LIST, cb, ctx, err);
}

/* ---- metrics ------------------------------------------------------------------ */

/* Encodes n (<= CHUNK_MAX_POINTS) points and inserts them as the chunk of
 * (run, key) starting at first_seq. */
static int chunk_put(struct store *st, int64_t run_id, int64_t key_id, int64_t first_seq,
                     const int64_t *steps, const int64_t *times, const double *vals, size_t n,
                     struct store_err *err)
{
    sqlite3_stmt *s = st->q[Q_CHUNK_PUT];
    int64_t smin = steps[0], smax = steps[0];
    double vmin = 0, vmax = 0;
    int have_v = 0, rc, ret;
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        double v = vals[i];
        if (steps[i] < smin)
            smin = steps[i];
        if (steps[i] > smax)
            smax = steps[i];
        if (isnan(v))
            continue;
        if (!have_v) {
            vmin = vmax = v;
            have_v = 1;
        } else if (v < vmin) {
            vmin = v;
        } else if (v > vmax) {
            vmax = v;
        }
    }
    ret = enc_reserve(st, chunk_bound(n), err);
    if (ret)
        return ret;
    if (chunk_encode(steps, times, vals, n, st->enc, st->enc_cap, &len) != CHUNK_OK)
        return fail(err, STORE_E_INTERNAL, "encoding a chunk of %zu points failed", n);
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    sqlite3_bind_int64(s, 3, first_seq);
    sqlite3_bind_int64(s, 4, (int64_t)n);
    sqlite3_bind_int64(s, 5, smin);
    sqlite3_bind_int64(s, 6, smax);
    bind_real_or_null(s, 7, have_v, vmin);
    bind_real_or_null(s, 8, have_v, vmax);
    sqlite3_bind_blob(s, 9, st->enc, (int)len, SQLITE_STATIC);
    bind_real_or_null(s, 10, !isnan(vals[n - 1]), vals[n - 1]);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "storing a metric chunk");
    sqlite3_reset(s);
    return ret;
}

/* One chunk per CHUNK_MAX_POINTS points; the summary row is rewritten once.
 * n == 0 only checks that the run exists. */
int store_metric_append(struct store *st, const uint8_t run[16], const char *key,
                        const int64_t *steps, const int64_t *times_ms, const double *values,
                        size_t n, struct store_err *err)
{
    sqlite3_stmt *s;
    int64_t run_id, key_id, count = 0;
    double smin = 0, smax = 0;
    int have_min = 0, have_max = 0, rc, ret;
    uint64_t last_bits;

    err_clear(err);
    if (run == NULL || (n > 0 && (steps == NULL || times_ms == NULL || values == NULL)))
        return fail(err, STORE_E_INVALID, "run id or metric points missing");
    if ((ret = check_name(key, "metric key", err)) != 0 || (ret = writable(st, err)) != 0)
        return ret;
    if (n > (size_t)INT64_MAX / 2)
        return fail(err, STORE_E_INVALID, "%zu points is too many", n);
    ret = run_find(st, run, &run_id, "run", err);
    if (ret || n == 0)
        return ret;
    ret = key_find(st, key, 1, &key_id, err);
    if (ret)
        return ret;

    s = st->q[Q_SUM_GET];
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        have_min = sqlite3_column_type(s, 0) != SQLITE_NULL;
        smin = sqlite3_column_double(s, 0);
        have_max = sqlite3_column_type(s, 1) != SQLITE_NULL;
        smax = sqlite3_column_double(s, 1);
        count = sqlite3_column_int64(s, 2);
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "reading a metric summary");
    }
    sqlite3_reset(s);
    if (ret)
        return ret;

    for (size_t off = 0; off < n; off += CHUNK_MAX_POINTS) {
        size_t m = n - off < CHUNK_MAX_POINTS ? n - off : CHUNK_MAX_POINTS;
        ret = chunk_put(st, run_id, key_id, count + (int64_t)off, steps + off, times_ms + off,
                        values + off, m, err);
        if (ret)
            return ret;
    }
    for (size_t i = 0; i < n; i++) {
        double v = values[i];
        if (isnan(v))
            continue;
        if (!have_min || v < smin) {
            smin = v;
            have_min = 1;
        }
        if (!have_max || v > smax) {
            smax = v;
            have_max = 1;
        }
    }

    memcpy(&last_bits, &values[n - 1], sizeof last_bits);
    s = st->q[Q_SUM_PUT];
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    bind_real_or_null(s, 3, !isnan(values[n - 1]), values[n - 1]);
    sqlite3_bind_int64(s, 4, (int64_t)last_bits);
    bind_real_or_null(s, 5, have_min, smin);
    bind_real_or_null(s, 6, have_max, smax);
    sqlite3_bind_int64(s, 7, count + (int64_t)n);
    sqlite3_bind_int64(s, 8, steps[n - 1]);
    sqlite3_bind_int64(s, 9, times_ms[n - 1]);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "updating a metric summary");
    sqlite3_reset(s);
    return ret;
}

/* The number of points of (run, key); STORE_E_NOT_FOUND naming the key
 * when the run never logged it. */
int store_metric_count(struct store *st, const uint8_t run[16], const char *key, int64_t *count,
                       struct store_err *err)
{
    char hex[33], cbuf[CLIP_LEN + 4];
    int64_t run_id, key_id;
    sqlite3_stmt *s;
    int rc, ret;

    err_clear(err);
    if (run == NULL || key == NULL || count == NULL)
        return fail(err, STORE_E_INVALID, "run id, key or count missing");
    ret = run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    ret = key_find(st, key, 0, &key_id, err);
    if (ret < 0)
        return ret;
    if (ret == 0) {
        s = st->q[Q_SUM_GET];
        sqlite3_bind_int64(s, 1, run_id);
        sqlite3_bind_int64(s, 2, key_id);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            *count = sqlite3_column_int64(s, 2);
        else if (rc == SQLITE_DONE)
            ret = 1;
        else
            ret = db_fail(st, rc, err, "reading a metric summary");
        sqlite3_reset(s);
        if (ret <= 0)
            return ret;
    }
    hex_of(run, hex);
    return fail(err, STORE_E_NOT_FOUND, "metric \"%s\": not logged in run %s",
                clip(key, cbuf, sizeof cbuf), hex);
}

/* One call of cb per metric of the run, by key name; `last` is bit-exact,
 * `min`/`max` NaN when every point is NaN. A non-zero answer stops. */
int store_metric_summaries(struct store *st, const uint8_t run[16], store_summary_cb cb, void *ctx,
                           struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t run_id;
    int rc, ret;

    err_clear(err);
    if (run == NULL || cb == NULL)
        return fail(err, STORE_E_INVALID, "run id or callback missing");
    ret = run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    s = st->q[Q_SUM_LIST];
    sqlite3_bind_int64(s, 1, run_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_metric_summary m;
        uint64_t bits = (uint64_t)sqlite3_column_int64(s, 1);
        m.key = (const char *)sqlite3_column_text(s, 0);
        if (m.key == NULL)
            m.key = "";
        memcpy(&m.last, &bits, sizeof m.last);
        m.min = real_or_nan(s, 2);
        m.max = real_or_nan(s, 3);
        m.count = sqlite3_column_int64(s, 4);
        m.last_step = sqlite3_column_int64(s, 5);
        m.last_ms = sqlite3_column_int64(s, 6);
        ret = cb(ctx, &m);
        if (ret) {
            ret = cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "reading metric summaries");
out:
    sqlite3_reset(s);
    return ret;
}

/* ---- paged detail listings ------------------------------------------------------ */

/* The key-ordered listings above, from the first key after `after`, at most
 * `limit` rows. Prepared per call: a page is far dearer than a prepare.
 *
 * Params and tags come in key order from their primary key. Summaries are
 * keyed by key id, so their name order costs a sort of the run's rows, in
 * memory: fine for a run of a few thousand keys, but a sort of 10^6 names on
 * every page would grow with the run. A run with more than SUMMARY_SORT_MAX
 * keys is read in name order from metric_keys' name index instead, each name
 * looked up in the run's summaries (CROSS JOIN keeps that loop order): no
 * sort, and the pages of one listing walk the index once between them. */
#define SUMMARY_SORT_MAX 8192
static const char *const after_sql[] = {
    "SELECT key, value FROM params WHERE run = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
    "SELECT key, value FROM tags WHERE run = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
    "SELECT k.name, s.last_bits, s.min, s.max, s.count, s.last_step, s.last_ms"
    " FROM metric_summary s JOIN metric_keys k ON k.id = s.key_id"
    " WHERE s.run = ?1 AND k.name > ?2 ORDER BY k.name LIMIT ?3",
    "SELECT k.name, s.last_bits, s.min, s.max, s.count, s.last_step, s.last_ms"
    " FROM metric_keys k CROSS JOIN metric_summary s"
    " WHERE k.name > ?2 AND s.run = ?1 AND s.key_id = k.id ORDER BY k.name LIMIT ?3",
};

/* 1 when the run has more than SUMMARY_SORT_MAX metric keys. */
static int many_summaries(struct store *st, int64_t run_id, int *many, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int ret = prep(
        st, "SELECT count(*) FROM (SELECT 1 FROM metric_summary WHERE run = ?1 LIMIT ?2)", &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int(s, 2, SUMMARY_SORT_MAX + 1);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *many = sqlite3_column_int(s, 0) > SUMMARY_SORT_MAX;
    else
        ret = db_fail(st, rc, err, "counting metric summaries");
    sqlite3_finalize(s);
    return ret;
}

static int list_after(struct store *st, const uint8_t run[16], int which, const char *after,
                      int limit, store_kv_cb kv_cb, store_summary_cb sum_cb, void *ctx,
                      struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t run_id;
    int rc, ret;

    err_clear(err);
    if (run == NULL || (kv_cb == NULL && sum_cb == NULL))
        return fail(err, STORE_E_INVALID, "run id or callback missing");
    ret = run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    if (which == 2) {
        int many = 0;
        ret = many_summaries(st, run_id, &many, err);
        if (ret)
            return ret;
        which += many;
    }
    ret = prep(st, after_sql[which], &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, after ? after : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, limit > 0 ? limit : -1);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        if (kv_cb) {
            const char *v = (const char *)sqlite3_column_text(s, 1);
            ret = kv_cb(ctx, k ? k : "", v ? v : "");
        } else {
            struct store_metric_summary m;
            uint64_t bits = (uint64_t)sqlite3_column_int64(s, 1);
            m.key = k ? k : "";
            memcpy(&m.last, &bits, sizeof m.last);
            m.min = real_or_nan(s, 2);
            m.max = real_or_nan(s, 3);
            m.count = sqlite3_column_int64(s, 4);
            m.last_step = sqlite3_column_int64(s, 5);
            m.last_ms = sqlite3_column_int64(s, 6);
            ret = sum_cb(ctx, &m);
        }
        if (ret) {
            ret = cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "listing run details");
out:
    sqlite3_finalize(s);
    return ret;
}

int store_param_list_after(struct store *st, const uint8_t run[16], const char *after, int limit,
                           store_kv_cb cb, void *ctx, struct store_err *err)
{
    return list_after(st, run, 0, after, limit, cb, NULL, ctx, err);
}

int store_tag_list_after(struct store *st, const uint8_t run[16], const char *after, int limit,
                         store_kv_cb cb, void *ctx, struct store_err *err)
{
    return list_after(st, run, 1, after, limit, cb, NULL, ctx, err);
}

int store_metric_summaries_after(struct store *st, const uint8_t run[16], const char *after,
                                 int limit, store_summary_cb cb, void *ctx, struct store_err *err)
{
    return list_after(st, run, 2, after, limit, NULL, cb, ctx, err);
}

static int chunk_corrupt(struct store_err *err, const uint8_t run[16], const char *key, int64_t seq,
                         const char *what)
{
    char hex[33], cbuf[CLIP_LEN + 4];

    hex_of(run, hex);
    return fail(err, STORE_E_CORRUPT, "metric \"%s\" of run %s: %s at seq %lld",
                clip(key, cbuf, sizeof cbuf), hex, what, (long long)seq);
}

/* One slice per stored chunk. A key the run never logged gives no points
 * (and *next_seq = after_seq), as an empty history. cb must not call into
 * this store; a non-zero answer stops, and *next_seq then counts only the
 * slices cb accepted. */
int store_metric_history(struct store *st, const uint8_t run[16], const char *key,
                         int64_t after_seq, int64_t max_points, store_points_cb cb, void *ctx,
                         int64_t *next_seq, struct store_err *err)
{
    sqlite3_stmt *s = st->q[Q_CHUNKS_FROM];
    int64_t run_id, key_id, seq = after_seq, expect = -1;
    int64_t left = max_points > 0 ? max_points : INT64_MAX;
    int rc = SQLITE_DONE, ret;

    err_clear(err);
    if (next_seq)
        *next_seq = after_seq;
    if (run == NULL || cb == NULL || next_seq == NULL)
        return fail(err, STORE_E_INVALID, "run id, callback or cursor missing");
    if (after_seq < 0 || max_points < 0)
        return fail(err, STORE_E_INVALID, "after_seq and max_points must be >= 0");
    if ((ret = check_name(key, "metric key", err)) != 0)
        return ret;
    ret = run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    ret = key_find(st, key, 0, &key_id, err);
    if (ret)
        return ret < 0 ? ret : 0;

    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    sqlite3_bind_int64(s, 3, after_seq);
    while (left > 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t first = sqlite3_column_int64(s, 0), n = sqlite3_column_int64(s, 1);
        int64_t skip, give;

        if ((expect >= 0 && first != expect) || (expect < 0 && first > after_seq) || n <= 0) {
            ret = chunk_corrupt(err, run, key, expect >= 0 ? expect : first, "a gap");
            goto out;
        }
        expect = first + n;
        if (expect <= after_seq)
            continue;
        ret = decode_into(st, sqlite3_column_blob(s, 2), sqlite3_column_bytes(s, 2), 0, n, err);
        if (ret) {
            if (ret == STORE_E_CORRUPT)
                ret = chunk_corrupt(err, run, key, first, "an unreadable chunk");
            goto out;
        }
        skip = after_seq > first ? after_seq - first : 0;
        give = n - skip < left ? n - skip : left;
        ret = cb(ctx, st->d_steps + skip, st->d_times + skip, st->d_vals + skip, (size_t)give);
        if (ret) {
            ret = cb_stop(err, ret);
            goto out;
        }
        seq = first + skip + give;
        *next_seq = seq;
        left -= give;
    }
    if (left > 0 && rc != SQLITE_DONE)
        ret = db_fail(st, rc, err, "reading metric history");
out:
    sqlite3_reset(s);
    return ret;
}

static int bucket_of(int64_t step, int64_t lo, double scale, int buckets)
{
    double f = (double)((uint64_t)step - (uint64_t)lo) * scale;

    if (!(f >= 0))
        return 0;
    if (f >= buckets)
        return buckets - 1;
    return (int)f;
}

/* Folds the point (step, t, v) into bucket b: the bucket's first and last
 * points are the first and last logged, its min and max the first smallest
 * and largest non-NaN value (both stay NaN at the first point while every
 * value is NaN). */
static void m4_add(struct store_bucket *b, int seen, int64_t step, int64_t t, double v)
{
    struct store_curve_point p = {step, t, v};

    if (!seen) {
        b->lo_step = step;
        b->first = b->min = b->max = b->last = p;
        return;
    }
    if (step < b->lo_step)
        b->lo_step = step;
    if (!isnan(v)) {
        if (isnan(b->min.value) || v < b->min.value)
            b->min = p;
        if (isnan(b->max.value) || v > b->max.value)
            b->max = p;
    }
    b->last = p;
}

/* Buckets every point: for series with few chunks. */
static int curve_points(struct store *st, const uint8_t run[16], const char *key, int64_t run_id,
                        int64_t key_id, int64_t lo, int64_t hi, int buckets,
                        struct store_bucket *out, int *nb, struct store_err *err)
{
    sqlite3_stmt *s = st->q[Q_CHUNKS_FROM];
    double scale = (double)buckets / ((double)((uint64_t)hi - (uint64_t)lo) + 1.0);
    uint8_t *seen = calloc((size_t)buckets, 1);
    int rc, ret = 0, k = 0;

    if (seen == NULL)
        return fail(err, STORE_E_INTERNAL, "out of memory for %d buckets", buckets);
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    sqlite3_bind_int64(s, 3, 0);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(s, 1);
        ret = decode_into(st, sqlite3_column_blob(s, 2), sqlite3_column_bytes(s, 2), 0, n, err);
        if (ret) {
            if (ret == STORE_E_CORRUPT)
                ret =
                    chunk_corrupt(err, run, key, sqlite3_column_int64(s, 0), "an unreadable chunk");
            goto out;
        }
        for (int64_t i = 0; i < n; i++) {
            int b = bucket_of(st->d_steps[i], lo, scale, buckets);
            m4_add(&out[b], seen[b], st->d_steps[i], st->d_times[i], st->d_vals[i]);
            seen[b] = 1;
        }
    }
    if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "reading a metric curve");
        goto out;
    }
    for (int b = 0; b < buckets; b++)
        if (seen[b])
            out[k++] = out[b];
    *nb = k;
out:
    sqlite3_reset(s);
    free(seen);
    return ret;
}

/* Which chunks (by first_seq) hold a bucket's four points, from chunk rows. */
struct m4_chunks {
    int64_t first, last, min, max;
    double vmin, vmax; /* NaN until a chunk with a non-NaN value */
};

/* Decodes the chunk at first_seq `seq` and folds what it holds for the roles
 * it plays in bucket b (first point, last point, minimum, maximum). */
static int m4_decode(struct store *st, const uint8_t run[16], const char *key, int64_t run_id,
                     int64_t key_id, int64_t seq, const struct m4_chunks *c,
                     struct store_bucket *b, struct store_err *err)
{
    sqlite3_stmt *at = st->q[Q_CHUNK_AT];
    int rc, ret = 0;

    sqlite3_bind_int64(at, 1, run_id);
    sqlite3_bind_int64(at, 2, key_id);
    sqlite3_bind_int64(at, 3, seq);
    rc = sqlite3_step(at);
    if (rc != SQLITE_ROW) {
        ret = db_fail(st, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, err, "reading a metric curve");
        goto out;
    }
    int64_t n = sqlite3_column_int64(at, 0);
    ret = decode_into(st, sqlite3_column_blob(at, 1), sqlite3_column_bytes(at, 1), 0, n, err);
    if (ret) {
        if (ret == STORE_E_CORRUPT)
            ret = chunk_corrupt(err, run, key, seq, "an unreadable chunk");
        goto out;
    }
    const int64_t *sp = st->d_steps, *tp = st->d_times;
    const double *vp = st->d_vals;
    if (seq == c->first)
        b->first = (struct store_curve_point){sp[0], tp[0], vp[0]};
    if (seq == c->last)
        b->last = (struct store_curve_point){sp[n - 1], tp[n - 1], vp[n - 1]};
    for (int64_t i = 0; i < n && (seq == c->min || seq == c->max); i++) {
        struct store_curve_point p = {sp[i], tp[i], vp[i]};
        if (isnan(vp[i]))
            continue;
        if (seq == c->min && (isnan(b->min.value) || vp[i] < b->min.value))
            b->min = p;
        if (seq == c->max && (isnan(b->max.value) || vp[i] > b->max.value))
            b->max = p;
    }
out:
    sqlite3_reset(at);
    return ret;
}

/* Buckets whole chunks by their smallest step, from the chunk rows (their
 * vmin/vmax say which chunk holds a bucket's extremes), then decodes only the
 * chunks that hold one of a bucket's four points: at most four per bucket,
 * and never more than the chunks there are. */
static int curve_chunks(struct store *st, const uint8_t run[16], const char *key, int64_t run_id,
                        int64_t key_id, int64_t lo, int64_t hi, int buckets,
                        struct store_bucket *out, int *nb, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    double scale = (double)buckets / ((double)((uint64_t)hi - (uint64_t)lo) + 1.0);
    struct m4_chunks *c = calloc((size_t)buckets, sizeof *c);
    int *slot = malloc((size_t)buckets * sizeof *slot);
    int rc, ret, k = 0;

    if (c == NULL || slot == NULL) {
        ret = fail(err, STORE_E_INTERNAL, "out of memory for %d buckets", buckets);
        goto out;
    }
    for (int b = 0; b < buckets; b++)
        slot[b] = -1;
    ret = prep(st,
               "SELECT first_seq, first_step, vmin, vmax FROM metric_chunks"
               " WHERE run = ?1 AND key_id = ?2 ORDER BY first_seq",
               &s, err);
    if (ret)
        goto out;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(s, 0), step = sqlite3_column_int64(s, 1);
        double vmin = real_or_nan(s, 2), vmax = real_or_nan(s, 3);
        int b = bucket_of(step, lo, scale, buckets);
        if (slot[b] < 0) {
            slot[b] = 1;
            c[b] = (struct m4_chunks){seq, seq, seq, seq, vmin, vmax};
            out[b].lo_step = step;
            out[b].min.value = out[b].max.value = NAN;
            continue;
        }
        c[b].last = seq;
        if (step < out[b].lo_step)
            out[b].lo_step = step;
        if (!isnan(vmin) && (isnan(c[b].vmin) || vmin < c[b].vmin)) {
            c[b].vmin = vmin;
            c[b].min = seq;
        }
        if (!isnan(vmax) && (isnan(c[b].vmax) || vmax > c[b].vmax)) {
            c[b].vmax = vmax;
            c[b].max = seq;
        }
    }
    if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "reading a metric curve");
        goto out;
    }
    for (int b = 0; b < buckets; b++) {
        if (slot[b] < 0)
            continue;
        int64_t seqs[4] = {c[b].first, c[b].min, c[b].max, c[b].last};
        for (int i = 0; i < 4 && !ret; i++) {
            int dup = 0;
            for (int j = 0; j < i; j++)
                dup |= seqs[j] == seqs[i];
            if (!dup)
                ret = m4_decode(st, run, key, run_id, key_id, seqs[i], &c[b], &out[b], err);
        }
        if (ret)
            goto out;
        /* a bucket of NaN only: its extremes are its first point */
        if (isnan(out[b].min.value))
            out[b].min = out[b].max = out[b].first;
        out[k++] = out[b];
    }
    *nb = k;
out:
    sqlite3_finalize(s);
    free(c);
    free(slot);
    return ret;
}

int store_metric_m4(struct store *st, const uint8_t run[16], const char *key, int buckets,
                    struct store_bucket *out, int *n, int64_t *count, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t run_id, key_id, chunks = 0, lo = 0, hi = 0;
    int rc, ret;

    err_clear(err);
    if (n)
        *n = 0;
    if (count)
        *count = 0;
    if (run == NULL || !out || !n || !count)
        return fail(err, STORE_E_INVALID, "run id or curve output missing");
    if (buckets < 1 || buckets > CURVE_MAX_BUCKETS)
        return fail(err, STORE_E_INVALID, "buckets %d is not in 1..%d", buckets, CURVE_MAX_BUCKETS);
    if ((ret = check_name(key, "metric key", err)) != 0)
        return ret;
    ret = run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    ret = key_find(st, key, 0, &key_id, err);
    if (ret)
        return ret < 0 ? ret : 0;
    ret = prep(st,
               "SELECT count(*), min(first_step), max(last_step),"
               " (SELECT count FROM metric_summary WHERE run = ?1 AND key_id = ?2)"
               " FROM metric_chunks WHERE run = ?1 AND key_id = ?2",
               &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        ret = db_fail(st, rc, err, "reading a metric curve");
        goto out;
    }
    chunks = sqlite3_column_int64(s, 0);
    lo = sqlite3_column_int64(s, 1);
    hi = sqlite3_column_int64(s, 2);
    *count = sqlite3_column_int64(s, 3);
    sqlite3_finalize(s);
    s = NULL;
    if (chunks == 0)
        goto out;
    if (chunks >= (int64_t)buckets)
        ret = curve_chunks(st, run, key, run_id, key_id, lo, hi, buckets, out, n, err);
    else
        ret = curve_points(st, run, key, run_id, key_id, lo, hi, buckets, out, n, err);
out:
    sqlite3_finalize(s);
    return ret;
}

/* The older four-column form, kept for its callers: steps[] is each bucket's
 * smallest step, lasts[] its last logged value. */
int store_metric_curve(struct store *st, const uint8_t run[16], const char *key, int buckets,
                       int64_t *steps, double *mins, double *maxs, double *lasts, int *n,
                       int64_t *count, struct store_err *err)
{
    struct store_bucket *b;
    int ret;

    if (!steps || !mins || !maxs || !lasts)
        return fail(err, STORE_E_INVALID, "run id or curve output missing");
    if (buckets < 1 || buckets > CURVE_MAX_BUCKETS)
        return fail(err, STORE_E_INVALID, "buckets %d is not in 1..%d", buckets, CURVE_MAX_BUCKETS);
    b = malloc((size_t)buckets * sizeof *b);
    if (b == NULL)
        return fail(err, STORE_E_INTERNAL, "out of memory for %d buckets", buckets);
    ret = store_metric_m4(st, run, key, buckets, b, n, count, err);
    for (int i = 0; ret == 0 && i < *n; i++) {
        steps[i] = b[i].lo_step;
        mins[i] = b[i].min.value;
        maxs[i] = b[i].max.value;
        lasts[i] = b[i].last.value;
    }
    free(b);
    return ret;
}

struct member {
    int64_t id, run, key, first_seq, n;
};

struct group {
    size_t start, count;
    int64_t points;
};

/* Replaces the chunks m[0..count) (consecutive, of one (run, key)) by one. */
static int merge_group(struct store *st, sqlite3_stmt *del, const struct member *m, size_t count,
                       int64_t points, struct store_err *err)
{
    sqlite3_stmt *at = st->q[Q_CHUNK_AT];
    size_t off = 0;
    int rc, ret;

    ret = dec_reserve(st, (size_t)points, err);
    if (ret)
        return ret;
    for (size_t i = 0; i < count; i++) {
        sqlite3_bind_int64(at, 1, m[i].run);
        sqlite3_bind_int64(at, 2, m[i].key);
        sqlite3_bind_int64(at, 3, m[i].first_seq);
        rc = sqlite3_step(at);
        if (rc == SQLITE_ROW)
            ret = decode_into(st, sqlite3_column_blob(at, 1), sqlite3_column_bytes(at, 1), off,
                              m[i].n, err);
        else
            ret = db_fail(st, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, err, "reading a chunk");
        sqlite3_reset(at);
        if (ret) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            return fail(err, ret, "chunk %lld cannot be merged: %s", (long long)m[i].id, why);
        }
        off += (size_t)m[i].n;
    }
    for (size_t i = 0; i < count; i++) {
        sqlite3_bind_int64(del, 1, m[i].id);
        rc = sqlite3_step(del);
        sqlite3_reset(del);
        if (rc != SQLITE_DONE)
            return db_fail(st, rc, err, "deleting a merged chunk");
    }
    return chunk_put(st, m[0].run, m[0].key, m[0].first_seq, st->d_steps, st->d_times, st->d_vals,
                     off, err);
}

/* Groups are maximal runs of consecutive chunks of one (run, key) each with
 * fewer than `small` points, cut so that none exceeds CHUNK_MAX_POINTS.
 * *merged counts the chunks that disappear (a group of k chunks: k - 1).
 * Only (run, key)s that got a small chunk since the last complete pass are
 * looked at (all of them after open or a rollback), so a call costs what
 * was appended since, not the size of the database. The work is wrapped in
 * a savepoint: on failure nothing of it is left in the caller's transaction.
 * max_groups above 2^20 counts as 2^20. */
int store_metric_compact(struct store *st, int small, int max_groups, int *merged,
                         struct store_err *err)
{
    sqlite3_stmt *s = NULL, *del = NULL;
    struct member *m = NULL;
    struct group *g = NULL;
    size_t n_m = 0, cap_m = 0, n_g = 0;
    int64_t top = 0;
    int rc, ret, total = 0, open_group = 0, complete = 1;

    err_clear(err);
    if (merged)
        *merged = 0;
    if (max_groups < 1)
        return fail(err, STORE_E_INVALID, "max_groups %d must be at least 1", max_groups);
    if ((ret = writable(st, err)) != 0)
        return ret;
    if (small < 2)
        return 0;
    if (max_groups > 1 << 20)
        max_groups = 1 << 20;
    g = calloc((size_t)max_groups + 1, sizeof *g);
    if (g == NULL)
        return fail(err, STORE_E_INTERNAL, "out of memory");
    ret = prep(st, "SELECT coalesce(max(id), 0) FROM metric_chunks", &s, err);
    if (ret)
        goto out;
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        ret = db_fail(st, rc, err, "finding small chunks");
        goto out;
    }
    top = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    s = NULL;
    /* NOT INDEXED and CROSS JOIN keep the planner on the rowid range and the
     * (run, key_id, first_seq) index, never a scan of the whole table */
    ret = prep(st,
               "SELECT c.id, c.run, c.key_id, c.first_seq, c.n FROM"
               " (SELECT DISTINCT run, key_id FROM metric_chunks NOT INDEXED"
               "  WHERE id > ?2 AND n < ?1) p"
               " CROSS JOIN metric_chunks c ON c.run = p.run AND c.key_id = p.key_id"
               " AND c.n < ?1 ORDER BY c.run, c.key_id, c.first_seq",
               &s, err);
    if (ret)
        goto out;
    sqlite3_bind_int(s, 1, small);
    sqlite3_bind_int64(s, 2, st->compact_small == small ? st->compact_mark : 0);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct member c = {sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1),
                           sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3),
                           sqlite3_column_int64(s, 4)};
        struct group *cur = open_group ? &g[n_g] : NULL;
        const struct member *last = cur ? &m[n_m - 1] : NULL;

        if (c.n <= 0)
            continue;
        if (!(cur && last->run == c.run && last->key == c.key &&
              last->first_seq + last->n == c.first_seq && cur->points + c.n <= CHUNK_MAX_POINTS)) {
            if (cur && cur->count >= 2) {
                if (++n_g == (size_t)max_groups) {
                    open_group = 0;
                    complete = 0;
                    break;
                }
            } else if (cur) {
                n_m = cur->start; /* a lone small chunk: nothing to merge it with */
            }
            g[n_g] = (struct group){n_m, 0, 0};
            open_group = 1;
            cur = &g[n_g];
        }
        if (n_m == cap_m) {
            size_t nc = cap_m ? cap_m * 2 : 256;
            struct member *p = realloc(m, nc * sizeof *m);
            if (p == NULL) {
                ret = fail(err, STORE_E_INTERNAL, "out of memory");
                goto out;
            }
            m = p;
            cap_m = nc;
        }
        m[n_m++] = c;
        cur->count++;
        cur->points += c.n;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        ret = db_fail(st, rc, err, "finding small chunks");
        goto out;
    }
    if (open_group && g[n_g].count >= 2)
        n_g++;
    sqlite3_finalize(s);
    s = NULL;

    if (n_g > 0) {
        ret = prep(st, "DELETE FROM metric_chunks WHERE id = ?1", &del, err);
        if (ret)
            goto out;
        ret = exec_sql(st, "SAVEPOINT store_compact", err, "compacting");
        if (ret)
            goto out;
        for (size_t i = 0; i < n_g && ret == 0; i++) {
            ret = merge_group(st, del, m + g[i].start, g[i].count, g[i].points, err);
            total += (int)g[i].count - 1;
        }
        if (ret) {
            sqlite3_exec(st->db, "ROLLBACK TO store_compact; RELEASE store_compact", NULL, NULL,
                         NULL);
            cache_drop(st);
            goto out;
        }
        ret = exec_sql(st, "RELEASE store_compact", err, "compacting");
        if (ret)
            goto out;
    }
    if (merged)
        *merged = total;
    if (complete) {
        st->compact_mark = top;
        st->compact_small = small;
    }
out:
    sqlite3_finalize(s);
    sqlite3_finalize(del);
    free(m);
    free(g);
    return ret;
}

/* ---- whole store ------------------------------------------------------------- */

int store_counts(struct store *st, struct store_counts *c, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    err_clear(err);
    if (c == NULL)
        return fail(err, STORE_E_INVALID, "counts output missing");
    memset(c, 0, sizeof *c);
    ret = prep(st,
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
        ret = db_fail(st, rc, err, "counting");
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

    ret = prep(st,
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
            hex_of(sqlite3_column_blob(s, 6), hex);
        if (run != prev_run || key != prev_key)
            expect = 0;
        prev_run = run;
        prev_key = key;
        if (sqlite3_column_type(s, 6) == SQLITE_NULL || name == NULL) {
            ret = fail(err, STORE_E_CORRUPT, "chunk %lld belongs to no run or no metric key",
                       (long long)id);
            goto out;
        }
        if (first != expect || n <= 0) {
            ret = fail(err, STORE_E_CORRUPT,
                       "chunk %lld of run %s, metric \"%s\": starts at seq %lld, expected %lld",
                       (long long)id, hex, clip(name, cbuf, sizeof cbuf), (long long)first,
                       (long long)expect);
            goto out;
        }
        expect = first + n;
        ret = decode_into(st, sqlite3_column_blob(s, 5), sqlite3_column_bytes(s, 5), 0, n, err);
        if (ret) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err ? err->msg : "unreadable");
            ret = fail(err, STORE_E_CORRUPT, "chunk %lld of run %s, metric \"%s\": %s",
                       (long long)id, hex, clip(name, cbuf, sizeof cbuf), why);
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "checking metric chunks");
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;

    ret = prep(st,
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
        ret = fail(err, STORE_E_CORRUPT,
                   "run %s, metric \"%s\": the summary counts %lld points, the chunks hold %lld",
                   hex ? hex : "(none)", clip(name ? name : "", cbuf, sizeof cbuf),
                   (long long)sqlite3_column_int64(s, 2), (long long)sqlite3_column_int64(s, 3));
    } else if (rc != SQLITE_DONE) {
        ret = db_fail(st, rc, err, "checking metric summaries");
    }
out:
    sqlite3_finalize(s);
    return ret;
}

/* PRAGMA integrity_check, then every chunk decoded and every summary's
 * count compared with its chunks. */
int store_check(struct store *st, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char msg[sizeof err->msg - 32] = "";
    size_t used = 0;
    int rc, ret, problems = 0;

    err_clear(err);
    ret = prep(st, "PRAGMA integrity_check(4)", &s, err);
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
        ret = db_fail(st, rc, err, "integrity check");
    else if (problems)
        ret = fail(err, STORE_E_CORRUPT, "integrity check: %s", msg);
    sqlite3_finalize(s);
    if (ret)
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

    err_clear(err);
    if (dest_path == NULL || dest_path[0] == '\0')
        return fail(err, STORE_E_INVALID, "backup path is missing");
    if (!sqlite3_get_autocommit(st->db))
        return fail(err, STORE_E_INVALID, "cannot back up inside a transaction");
    if (stat(dest_path, &sb) == 0)
        return fail(err, STORE_E_EXISTS, "backup file \"%s\" already exists", dest_path);
    len = strlen(dest_path) + 32;
    tmp = malloc(len);
    if (tmp == NULL)
        return fail(err, STORE_E_INTERNAL, "out of memory");
    snprintf(tmp, len, "%s.tmp-%ld", dest_path, (long)getpid());
    unlink(tmp);
    ret = store_file_create_private(tmp, err);
    if (ret)
        goto out;

    ret = run_q(st, Q_BEGIN_READ, err, "starting the backup");
    if (ret)
        goto out;
    in_read = 1;
    ret = prep(st, "SELECT count(*) FROM sqlite_schema", &s, err);
    if (ret)
        goto out;
    rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW) {
        ret = db_fail(st, rc, err, "starting the backup");
        goto out;
    }

    rc = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        ret = fail(err, code_of(rc), "cannot create backup \"%s\": %s", tmp,
                   dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
        goto out;
    }
    /* the tmp file is thrown away if anything fails: no journal needed */
    sqlite3_exec(dst, "PRAGMA journal_mode = OFF", NULL, NULL, NULL);
    b = sqlite3_backup_init(dst, "main", st->db, "main");
    if (b == NULL) {
        ret = fail(err, code_of(sqlite3_errcode(dst)), "backup to \"%s\": %s", dest_path,
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
        ret = fail(err, code_of(rc), "backup to \"%s\": %s", dest_path, sqlite3_errstr(rc));
        goto out;
    }
    rc = sqlite3_close(dst);
    dst = NULL;
    if (rc != SQLITE_OK) {
        ret = fail(err, code_of(rc), "closing backup \"%s\": %s", dest_path, sqlite3_errstr(rc));
        goto out;
    }
    ret = store_file_sync(tmp, err);
    if (ret)
        goto out;
    if (rename(tmp, dest_path) != 0)
        ret = fail(err, STORE_E_IO, "renaming backup to \"%s\": %s", dest_path, strerror(errno));
    else
        ret = store_dir_sync(dest_path, err);
out:
    if (b)
        sqlite3_backup_finish(b);
    if (dst)
        sqlite3_close(dst);
    if (in_read && !sqlite3_get_autocommit(st->db))
        run_q(st, Q_COMMIT, NULL, "ending the backup");
    if (ret && tmp)
        unlink(tmp);
    free(tmp);
    return ret;
}
