/*
 * baseline.c: the baseline of B1, B2 and B10: what a naive tracker does with
 * the same points. It stores one SQLite row per point in a table shaped like
 * MLflow's `metrics` table (run id as 32 hex characters, key, step,
 * timestamp, value, with the primary key on (run, key, step, ts) as MLflow
 * has, as an ordinary rowid table with its automatic index, which is what
 * MLflow's SQLAlchemy schema becomes in SQLite), with trackd's pragmas
 * (storage/store_core.c: busy_timeout 5000, foreign_keys ON,
 * cache_size -32768, temp_store MEMORY, journal_mode WAL, synchronous
 * NORMAL), one prepared INSERT reused for every row and one transaction per
 * 1000 rows.
 *
 * What is timed: from the first BEGIN to the last COMMIT (opening the file
 * and creating the table are not, just as B1 does not time trackd's start).
 * The rows are bench_point(0..n-1) with the timestamp read from the clock
 * per row, exactly what the B1 client logs. After the timing a truncating
 * WAL checkpoint folds everything into the database file, whose size gives
 * the baseline's bytes per row (beside B9).
 */
#include "bench.h"

#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#define ROWS_PER_TX 1000

const char *const bench_base_schema =
    "CREATE TABLE metrics(run TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL,"
    " ts INTEGER NOT NULL, value REAL, PRIMARY KEY(run, key, step, ts))";
const char *const bench_base_insert =
    "INSERT INTO metrics(run, key, step, ts, value) VALUES(?1, ?2, ?3, ?4, ?5)";

static const char *const pragmas = "PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;"
                                   " PRAGMA temp_store = MEMORY; PRAGMA journal_mode = WAL;"
                                   " PRAGMA synchronous = NORMAL;";

static int sql_fail(sqlite3 *db, const char *what, char *msg, size_t cap)
{
    snprintf(msg, cap, "baseline: %s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return -1;
}

int bench_baseline(const char *path, int64_t n, struct bench_base_result *r, char *msg, size_t cap)
{
    static const char run[] = "0123456789abcdef0123456789abcdef";
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *begin = NULL, *commit = NULL;
    char wal[600];
    int ret = -1;

    memset(r, 0, sizeof(*r));
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(path);
    unlink(wal);
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        ret = sql_fail(db, "open", msg, cap);
        goto out;
    }
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, bench_base_schema, NULL, NULL, NULL) != SQLITE_OK) {
        ret = sql_fail(db, "schema", msg, cap);
        goto out;
    }
    if (sqlite3_prepare_v2(db, bench_base_insert, -1, &ins, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "BEGIN", -1, &begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK) {
        ret = sql_fail(db, "prepare", msg, cap);
        goto out;
    }

    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    int64_t t0 = bench_now_ns();
    for (int64_t i = 0; i < n; i++) {
        const char *key;
        int64_t step;
        double value;

        if (i % ROWS_PER_TX == 0) {
            if (sqlite3_step(begin) != SQLITE_DONE) {
                ret = sql_fail(db, "begin", msg, cap);
                goto out;
            }
            sqlite3_reset(begin);
        }
        bench_point(i, &key, &step, &value);
        sqlite3_bind_text(ins, 1, run, 32, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 3, step);
        sqlite3_bind_int64(ins, 4, bench_wall_ms());
        sqlite3_bind_double(ins, 5, value);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            ret = sql_fail(db, "insert", msg, cap);
            goto out;
        }
        sqlite3_reset(ins);
        if (i % ROWS_PER_TX == ROWS_PER_TX - 1 || i == n - 1) {
            if (sqlite3_step(commit) != SQLITE_DONE) {
                ret = sql_fail(db, "commit", msg, cap);
                goto out;
            }
            sqlite3_reset(commit);
        }
    }
    r->secs = (double)(bench_now_ns() - t0) / 1e9;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    r->cpu_secs = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;

    if (sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK) {
        ret = sql_fail(db, "checkpoint", msg, cap);
        goto out;
    }
    ret = 0;
out:
    sqlite3_finalize(ins);
    sqlite3_finalize(begin);
    sqlite3_finalize(commit);
    sqlite3_close(db);
    if (ret == 0)
        r->db_bytes = bench_file_size(path) + bench_file_size(wal);
    return ret;
}

/* The storage work of one set-tag request alone, for B3's ceiling: the
 * tables and statements trackd touches for it (tags, the exactly-once
 * requests row and its index; schema as in storage/store_core.c), the same
 * pragmas and no checkpoint inside a commit (as trackd), one transaction a
 * request: look the request id up, set the tag, keep the id. */
int bench_tag_commits(const char *path, int64_t n, double *us_each, char *msg, size_t cap)
{
    static const char *const schema =
        "CREATE TABLE tags(run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
        "  PRIMARY KEY(run, key)) WITHOUT ROWID;"
        "CREATE TABLE requests(id BLOB PRIMARY KEY, ms INTEGER NOT NULL,"
        "  response BLOB NOT NULL) WITHOUT ROWID;"
        "CREATE INDEX requests_ms ON requests(ms);";
    static const char *const sql[] = {
        "BEGIN IMMEDIATE",
        "SELECT response FROM requests WHERE id = ?1",
        "INSERT INTO tags(run, key, value) VALUES(1, 'progress', ?1)"
        " ON CONFLICT(run, key) DO UPDATE SET value = excluded.value",
        "INSERT INTO requests(id, ms, response) VALUES(?1, ?2, ?3)",
        "COMMIT",
    };
    sqlite3 *db = NULL;
    sqlite3_stmt *q[5] = {0};
    char wal[600], val[32];
    uint8_t id[16], resp[32] = {0};
    int ret = -1;

    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(path);
    unlink(wal);
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        ret = sql_fail(db, "tag schema", msg, cap);
        goto out;
    }
    sqlite3_wal_autocheckpoint(db, 0);
    for (int i = 0; i < 5; i++)
        if (sqlite3_prepare_v2(db, sql[i], -1, &q[i], NULL) != SQLITE_OK) {
            ret = sql_fail(db, sql[i], msg, cap);
            goto out;
        }
    int64_t t0 = bench_now_ns();
    for (int64_t i = 0; i < n; i++) {
        uint64_t a = bench_mix((uint64_t)i), b = bench_mix(a);
        memcpy(id, &a, 8);
        memcpy(id + 8, &b, 8);
        snprintf(val, sizeof(val), "%lld", (long long)i);
        sqlite3_bind_blob(q[1], 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_text(q[2], 1, val, -1, SQLITE_STATIC);
        sqlite3_bind_blob(q[3], 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(q[3], 2, i);
        sqlite3_bind_blob(q[3], 3, resp, sizeof(resp), SQLITE_STATIC);
        for (int k = 0; k < 5; k++) {
            int rc = sqlite3_step(q[k]);
            sqlite3_reset(q[k]);
            if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
                ret = sql_fail(db, sql[k], msg, cap);
                goto out;
            }
        }
    }
    *us_each = (double)(bench_now_ns() - t0) / 1000.0 / (double)n;
    ret = 0;
out:
    for (int i = 0; i < 5; i++)
        sqlite3_finalize(q[i]);
    sqlite3_close(db);
    unlink(path);
    unlink(wal);
    return ret;
}
