/*
 * store_util.c: the helpers every store_*.c file shares (declared in
 * store_internal.h, prefix sq_): error messages and SQLite's codes mapped to
 * STORE_E_*, small SQL helpers, the query string builder, the chunk
 * encoding and decoding buffers, and the metric-key and run-id caches.
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

#include "store_internal.h"

/* ---- errors ---------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) int sq_fail(struct store_err *err, int code, const char *fmt,
                                                  ...)
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

void sq_err_clear(struct store_err *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}

int sq_code_of(int rc)
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
void sq_cache_drop(struct store *st)
{
    key_cache_clear(st);
    st->run_cached = 0;
    st->compact_mark = 0;
    st->put_mark_known = 0;
}

/* A failed SQLite call: the code for rc, `what` and SQLite's words in err.
 * Drops the caches, since SQLite may have rolled the transaction back. */
int sq_db_fail(struct store *st, int rc, struct store_err *err, const char *what)
{
    int code = sq_code_of(rc);

    sq_cache_drop(st);
    if (code == STORE_E_FULL)
        return sq_fail(err, code, "%s: database or disk is full", what);
    return sq_fail(err, code, "%s: %s", what,
                   rc == sqlite3_errcode(st->db) ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
}

/* What a callback's non-zero answer becomes: it stops the listing and is
 * returned; err is filled unless the callback already did. */
int sq_cb_stop(struct store_err *err, int rc)
{
    if (rc < 0 && err && err->code != rc)
        sq_fail(err, rc, "stopped by the callback (%d)", rc);
    return rc;
}

/* A user's string for a message: at most CLIP_LEN bytes, cut on a UTF-8
 * character boundary, "..." appended when cut. */
const char *sq_clip(const char *s, char *buf, size_t cap)
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

void sq_hex_of(const uint8_t id[16], char out[33])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < 16; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[32] = '\0';
}

const char *sq_status_name(int status)
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

int64_t sq_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double sq_real_or_nan(sqlite3_stmt *s, int col)
{
    return sqlite3_column_type(s, col) == SQLITE_NULL ? NAN : sqlite3_column_double(s, col);
}

int sq_run_q_bind(struct store *st, const uint8_t run[16], int have_cb, enum stmt_id q,
                  sqlite3_stmt **s, struct store_err *err)
{
    int64_t run_id;
    int ret;

    sq_err_clear(err);
    if (run == NULL || !have_cb)
        return sq_fail(err, STORE_E_INVALID, "run id or callback missing");
    if ((ret = sq_run_find(st, run, &run_id, "run", err)) != 0)
        return ret;
    *s = st->q[q];
    sqlite3_bind_int64(*s, 1, run_id);
    return 0;
}

void sq_summary_of(sqlite3_stmt *s, struct store_metric_summary *m)
{
    const char *k = (const char *)sqlite3_column_text(s, 0);
    uint64_t bits = (uint64_t)sqlite3_column_int64(s, 1);

    m->key = k ? k : "";
    if (bits == 0 && sqlite3_column_type(s, 7) != SQLITE_NULL)
        m->last = sqlite3_column_double(s, 7); /* `last` is exact (store_core.c) */
    else
        memcpy(&m->last, &bits, sizeof m->last);
    m->min = sq_real_or_nan(s, 2);
    m->max = sq_real_or_nan(s, 3);
    m->count = sqlite3_column_int64(s, 4);
    m->last_step = sqlite3_column_int64(s, 5);
    m->last_ms = sqlite3_column_int64(s, 6);
}

void sq_bind_real_or_null(sqlite3_stmt *s, int i, int have, double v)
{
    if (have)
        sqlite3_bind_double(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

int sq_writable(struct store *st, struct store_err *err)
{
    if (st->readonly)
        return sq_fail(err, STORE_E_INVALID, "store is open read-only");
    return 0;
}

/* ---- small SQL helpers ------------------------------------------------------ */

int sq_prep_lit(struct store *st, const char *sql, sqlite3_stmt **s, struct store_err *err)
{
    int free_slot = -1;
    for (int i = 0; i < LIT_CACHE_SLOTS; i++) {
        if (st->lit[i].sql == sql && st->lit[i].s && !st->lit[i].busy) {
            st->lit[i].busy = 1;
            *s = st->lit[i].s;
            return 0;
        }
        if (!st->lit[i].sql && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0) /* full, or that one is in use: an ordinary statement */
        return sq_prep(st, sql, s, err);
    int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);
    if (rc != SQLITE_OK) {
        *s = NULL;
        return sq_db_fail(st, rc, err, "preparing a statement");
    }
    st->lit[free_slot].sql = sql;
    st->lit[free_slot].s = *s;
    st->lit[free_slot].busy = 1;
    return 0;
}

void sq_release(struct store *st, sqlite3_stmt *s)
{
    if (!s)
        return;
    for (int i = 0; i < LIT_CACHE_SLOTS; i++)
        if (st->lit[i].s == s) {
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            st->lit[i].busy = 0;
            return;
        }
    sqlite3_finalize(s);
}

sqlite3_stmt *sq_prep_once(struct store *st, sqlite3_stmt **slot, const char *sql,
                           struct store_err *err, const char *what)
{
    if (!*slot) {
        int rc = sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (rc != SQLITE_OK) {
            *slot = NULL;
            sq_db_fail(st, rc, err, what);
            return NULL;
        }
    }
    return *slot;
}

/* Prepares a statement used once (the hot ones are in st->q). */
int sq_prep(struct store *st, const char *sql, sqlite3_stmt **s, struct store_err *err)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);

    if (rc != SQLITE_OK) {
        *s = NULL;
        return sq_db_fail(st, rc, err, "preparing a query");
    }
    return 0;
}

/* Steps a statement that returns no rows (or whose rows do not matter). */
int sq_run_q(struct store *st, enum stmt_id id, struct store_err *err, const char *what)
{
    sqlite3_stmt *s = st->q[id];
    int rc = sqlite3_step(s), ret = 0;

    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = sq_db_fail(st, rc, err, what);
    sqlite3_reset(s);
    return ret;
}

int sq_exec_sql(struct store *st, const char *sql, struct store_err *err, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return sq_db_fail(st, rc, err, what);
    return 0;
}

int sq_user_version(struct store *st, int *v, struct store_err *err, const char *what)
{
    sqlite3_stmt *s = NULL;
    int rc, ret = sq_prep(st, "PRAGMA user_version", &s, err);

    if (ret)
        return ret;
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int(s, 0);
    else
        ret = sq_db_fail(st, rc, err, what);
    sqlite3_finalize(s);
    return ret;
}

/* A string built for one query, capped at SQL_MAX_LEN. */
__attribute__((format(printf, 2, 3))) void sq_sb_add(struct sbuf *b, const char *fmt, ...)
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

int sq_enc_reserve(struct store *st, size_t need, struct store_err *err)
{
    size_t max = chunk_bound(CHUNK_MAX_POINTS), cap;
    uint8_t *p;

    if (need <= st->enc_cap)
        return 0;
    if (need > max)
        return sq_fail(err, STORE_E_INTERNAL, "chunk of %zu bytes exceeds the %zu-byte buffer",
                       need, max);
    cap = st->enc_cap ? st->enc_cap : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > max)
        cap = max;
    p = realloc(st->enc, cap);
    if (p == NULL)
        return sq_fail(err, STORE_E_INTERNAL, "out of memory for a %zu-byte chunk", cap);
    st->enc = p;
    st->enc_cap = cap;
    return 0;
}

/* Room for `need` points in the decoding buffers; contents are kept. */
int sq_dec_reserve(struct store *st, size_t need, struct store_err *err)
{
    size_t cap;
    void *p;

    if (need <= st->d_cap)
        return 0;
    if (need > DECODE_MAX_POINTS)
        return sq_fail(err, STORE_E_CORRUPT, "chunk of %zu points exceeds the %d-point limit", need,
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
    return sq_fail(err, STORE_E_INTERNAL, "out of memory decoding %zu points", need);
}

/* Decodes a chunk blob into the decoding buffers at offset `at`, checking
 * that it holds `expect` points (a stored chunk is never empty). */
int sq_decode_into(struct store *st, const void *blob, int len, size_t at, int64_t expect,
                   struct store_err *err)
{
    size_t n = 0;
    int ret;

    if (blob == NULL || len <= 0 || expect < 1 ||
        chunk_decode_header(blob, (size_t)len, &n) != CHUNK_OK || (int64_t)n != expect)
        return sq_fail(err, STORE_E_CORRUPT, "bad chunk header");
    ret = sq_dec_reserve(st, at + n, err);
    if (ret)
        return ret;
    if (chunk_decode(blob, (size_t)len, st->d_steps + at, st->d_times + at, st->d_vals + at,
                     st->d_cap - at, &n) != CHUNK_OK)
        return sq_fail(err, STORE_E_CORRUPT, "bad chunk data");
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
int sq_key_find(struct store *st, const char *name, int create, int64_t *id, struct store_err *err)
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
        ret = sq_db_fail(st, rc, err, "looking up a metric key");
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
            ret = sq_db_fail(st, rc, err, "adding a metric key");
        }
        sqlite3_reset(s);
    }
    if (ret == 0)
        key_cache_put(st, name, *id);
    return ret;
}

/* The row id of run `uuid`; STORE_E_NOT_FOUND naming `what` ("run",
 * "parent run") when there is none. */
int sq_run_find(struct store *st, const uint8_t uuid[16], int64_t *id, const char *what,
                struct store_err *err)
{
    sqlite3_stmt *s = st->q[Q_RUN_ID];
    char hex[33];
    int rc, ret = 0;

    st->run_deleted = 0;
    if (st->run_cached && memcmp(st->run_uuid, uuid, 16) == 0) {
        *id = st->run_id;
        return 0;
    }
    sqlite3_bind_blob(s, 1, uuid, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        /* a deleted run is not cached: gc may remove its row meanwhile */
        st->run_deleted = sqlite3_column_int(s, 1);
        memcpy(st->run_uuid, uuid, 16);
        st->run_id = *id;
        st->run_cached = !st->run_deleted;
    } else if (rc == SQLITE_DONE) {
        sq_hex_of(uuid, hex);
        ret = sq_fail(err, STORE_E_NOT_FOUND, "%s %s not found", what, hex);
    } else {
        ret = sq_db_fail(st, rc, err, "looking up a run");
    }
    sqlite3_reset(s);
    return ret;
}
