/*
 * store_run.c: runs and what hangs on them by key: start (with its params
 * and tags), end, resolve a hex prefix, get (the search is store_search.c);
 * params (immutable: another value is a CONFLICT naming both) and tags
 * (mutable); and the paged listings of a run's details (params, tags and
 * metric summaries from a key onward), used by replies bounded in bytes.
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

    sq_err_clear(err);
    if (r == NULL)
        return sq_fail(err, STORE_E_INVALID, "run missing");
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    sq_hex_of(r->id, hex);

    ret = sq_prep_lit(st,
                      "SELECT r.experiment_id, e.name FROM runs r"
                      " JOIN experiments e ON e.id = r.experiment_id WHERE r.uuid = ?1",
                      &s, err);
    if (ret)
        return ret;
    sqlite3_bind_blob(s, 1, r->id, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_int64(s, 0) != r->experiment_id)
            ret = sq_fail(err, STORE_E_EXISTS, "run %s already exists in experiment \"%s\"", hex,
                          sq_clip((const char *)sqlite3_column_text(s, 1), cbuf, sizeof cbuf));
        goto out; /* a replay: nothing to do */
    }
    if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "looking up a run");
        goto out;
    }
    sq_release(st, s);
    s = NULL;

    ret = sq_prep_lit(st, "SELECT 1 FROM experiments WHERE id = ?1", &s, err);
    if (ret)
        goto out;
    sqlite3_bind_int64(s, 1, r->experiment_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        ret = sq_fail(err, STORE_E_NOT_FOUND, "experiment %lld not found",
                      (long long)r->experiment_id);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        ret = sq_db_fail(st, rc, err, "looking up an experiment");
        goto out;
    }
    sq_release(st, s);
    s = NULL;

    if (r->has_parent) {
        if (memcmp(r->parent, r->id, 16) == 0) {
            ret = sq_fail(err, STORE_E_INVALID, "run %s cannot be its own parent", hex);
            goto out;
        }
        ret = sq_run_find(st, r->parent, &parent_row, "parent run", err);
        if (ret)
            goto out;
    }
    name = r->name;
    if (name == NULL || name[0] == '\0') {
        run_name_generate(gen, sizeof gen);
        name = gen;
    }

    ret = sq_prep_lit(
        st,
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
        ret = sq_db_fail(st, rc, err, "starting a run");
out:
    sq_release(st, s);
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

    sq_err_clear(err);
    if (id == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id missing");
    if (status < STORE_FINISHED || status > STORE_KILLED)
        return sq_fail(err, STORE_E_INVALID,
                       "status %d is not an end status (2 FINISHED, 3 FAILED, 4 KILLED)", status);
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    sq_hex_of(id, hex);
    if ((ret = sq_run_find_live(st, id, &start, err)) != 0 && ret != STORE_E_NOT_FOUND)
        return ret;
    ret = sq_prep_lit(st, "SELECT status, start_ms FROM runs WHERE uuid = ?1", &s, err);
    if (ret)
        return ret;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        ret = sq_fail(err, STORE_E_NOT_FOUND, "run %s not found", hex);
        goto out;
    }
    if (rc != SQLITE_ROW) {
        ret = sq_db_fail(st, rc, err, "looking up a run");
        goto out;
    }
    cur = sqlite3_column_int(s, 0);
    start = sqlite3_column_int64(s, 1);
    sq_release(st, s);
    s = NULL;
    if (cur == status)
        goto out;
    if (end_ms == 0) {
        end_ms = sq_now_ms();
        if (end_ms < start)
            end_ms = start;
    } else if (end_ms < start) {
        ret = sq_fail(err, STORE_E_INVALID,
                      "end_ms: %lld is before the run's start_ms %lld; a run cannot end before it "
                      "starts",
                      (long long)end_ms, (long long)start);
        goto out;
    }
    if (cur != STORE_RUNNING) {
        ret = sq_fail(err, STORE_E_CONFLICT, "run %s already ended as %s, cannot end it as %s", hex,
                      sq_status_name(cur), sq_status_name(status));
        goto out;
    }
    ret = sq_prep_lit(st, "UPDATE runs SET status = ?2, end_ms = ?3 WHERE uuid = ?1", &s, err);
    if (ret)
        goto out;
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, status);
    sqlite3_bind_int64(s, 3, end_ms);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "ending a run");
out:
    sq_release(st, s);
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

    sq_err_clear(err);
    if (hex == NULL || id == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id missing");
    len = strnlen(hex, 33);
    if (len < 4 || len > 32)
        return sq_fail(err, STORE_E_INVALID, "run id \"%.40s\" must be 4 to 32 hex digits", hex);
    for (size_t i = 0; i < len; i++) {
        int c = hex[i];
        if (c >= 'A' && c <= 'F')
            c += 'a' - 'A';
        if (!hex_digit(c))
            return sq_fail(err, STORE_E_INVALID,
                           "run id \"%.40s\" has '%c' at column %zu; expected a hex digit", hex,
                           hex[i] >= 0x20 && hex[i] < 0x7f ? hex[i] : '?', i + 1);
        lo[i] = (char)c;
    }
    lo[len] = '\0';
    /* every id starting with lo sorts in [lo, lo with its last digit + 1) */
    memcpy(hi, lo, len + 1);
    hi[len - 1]++;

    ret = sq_prep(st,
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
                ret = sq_fail(err, STORE_E_CORRUPT, "run %s has a malformed id",
                              (const char *)sqlite3_column_text(s, 1));
                goto out;
            }
            memcpy(id, sqlite3_column_blob(s, 0), 16);
        }
        if (n < RESOLVE_CANDIDATES && used < sizeof msg) {
            const char *name = (const char *)sqlite3_column_text(s, 2);
            used += (size_t)snprintf(msg + used, sizeof msg - used, "%s %s (%s)", n ? "," : "",
                                     (const char *)sqlite3_column_text(s, 1),
                                     sq_clip(name ? name : "", cbuf, sizeof cbuf));
        } else if (n == RESOLVE_CANDIDATES && used < sizeof msg) {
            used += (size_t)snprintf(msg + used, sizeof msg - used, ", and more");
        }
        n++;
    }
    if (rc != SQLITE_DONE) {
        ret = sq_db_fail(st, rc, err, "resolving a run id");
        goto out;
    }
    if (n == 0)
        ret = sq_fail(err, STORE_E_NOT_FOUND, "no run id starts with \"%s\"", lo);
    else if (n > 1)
        ret = sq_fail(err, STORE_E_AMBIGUOUS, "%s", msg);
out:
    if (ret && n > 0)
        memset(id, 0, 16);
    sqlite3_finalize(s);
    return ret;
}

/* Fills r from a row of RUN_SELECT; the strings live until the next step. */
int sq_run_of_row(sqlite3_stmt *s, struct store_run *r, struct store_err *err)
{
    memset(r, 0, sizeof *r);
    if (sqlite3_column_bytes(s, 0) != 16)
        return sq_fail(err, STORE_E_CORRUPT, "a run has a malformed id");
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
    r->deleted =
        sqlite3_column_bytes(s, 8) == 7 && memcmp(sqlite3_column_text(s, 8), "deleted", 7) == 0;
    r->deleted_ms = sqlite3_column_int64(s, 9);
    r->row = sqlite3_column_int64(s, 10);
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

    sq_err_clear(err);
    if (id == NULL || cb == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id or callback missing");
    s = st->q[Q_RUN_GET];
    sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        ret = sq_run_of_row(s, &r, err);
        if (ret == 0 && (ret = cb(ctx, &r)) != 0)
            ret = sq_cb_stop(err, ret);
    } else if (rc == SQLITE_DONE) {
        sq_hex_of(id, hex);
        ret = sq_fail(err, STORE_E_NOT_FOUND, "run %s not found", hex);
    } else {
        ret = sq_db_fail(st, rc, err, "reading a run");
    }
    sqlite3_reset(s);
    return ret;
}

/* ---- params and tags --------------------------------------------------------- */

int store_param_put(struct store *st, const uint8_t run[16], const char *key, const char *value,
                    struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    char c1[CLIP_LEN + 4], c2[CLIP_LEN + 4], c3[CLIP_LEN + 4];
    int64_t run_id, mark = 0;
    int rc, ret;

    sq_err_clear(err);
    if (run == NULL || value == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id or param value missing");
    if ((ret = sq_check_name(key, "param key", err)) != 0 || (ret = sq_writable(st, err)) != 0)
        return ret;
    ret = sq_run_find_live(st, run, &run_id, err);
    if (ret)
        return ret;
    /* inserted unless the key is there: only then is the old value read
     * (a run's start with 50 params reads none) */
    if ((ret = sq_put_mark(st, &mark, err)) != 0)
        return ret;
    s = st->q[Q_PARAM_PUT];
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, filter_looks_numeric(value));
    sqlite3_bind_int(s, 5, run_id <= mark);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return sq_db_fail(st, rc, err, "logging a param");
    if (sqlite3_changes(st->db) == 1)
        return 0;
    s = st->q[Q_PARAM_GET];
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const char *old = (const char *)sqlite3_column_text(s, 0);
        if (old == NULL)
            old = "";
        if (strcmp(old, value) != 0)
            ret = sq_fail(err, STORE_E_CONFLICT,
                          "param \"%s\" already logged as \"%s\", cannot change it to \"%s\"",
                          sq_clip(key, c1, sizeof c1), sq_clip(old, c2, sizeof c2),
                          sq_clip(value, c3, sizeof c3));
        sqlite3_reset(s);
        return ret;
    }
    ret = rc == SQLITE_DONE
              ? sq_fail(err, STORE_E_INTERNAL, "param \"%s\" neither stored nor found",
                        sq_clip(key, c1, sizeof c1))
              : sq_db_fail(st, rc, err, "reading a param");
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

    sq_err_clear(err);
    if (run == NULL || value == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id or tag value missing");
    if ((ret = sq_check_name(key, "tag key", err)) != 0 || (ret = sq_writable(st, err)) != 0)
        return ret;
    ret = sq_run_find_live(st, run, &run_id, err);
    if (ret)
        return ret;
    s = st->q[Q_TAG_PUT];
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "setting a tag");
    sqlite3_reset(s);
    return ret;
}

/* Removes the tag; NOT_FOUND naming it when the run has none of that key. */
int store_tag_delete(struct store *st, const uint8_t run[16], const char *key,
                     struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t run_id;
    int rc, ret;

    sq_err_clear(err);
    if ((ret = sq_check_name(key, "tag key", err)) != 0 || (ret = sq_writable(st, err)) != 0 ||
        (ret = sq_run_find_live(st, run, &run_id, err)) != 0)
        return ret;
    if ((ret = sq_prep_lit(st, "DELETE FROM tags WHERE run = ?1 AND key = ?2", &s, err)) != 0)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "deleting a tag");
    else if (sqlite3_changes(st->db) == 0)
        ret = sq_fail(err, STORE_E_NOT_FOUND, "No tag with name: %s", key);
    sq_release(st, s);
    return ret;
}

/* Gives the run another name (names need not be unique). */
int store_run_rename(struct store *st, const uint8_t run[16], const char *name,
                     struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t run_id;
    int rc, ret;

    sq_err_clear(err);
    if ((ret = sq_check_name(name, "run name", err)) != 0 || (ret = sq_writable(st, err)) != 0 ||
        (ret = sq_run_find_live(st, run, &run_id, err)) != 0)
        return ret;
    if ((ret = sq_prep_lit(st, "UPDATE runs SET name = ?2 WHERE id = ?1", &s, err)) != 0)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "renaming a run");
    sq_release(st, s);
    return ret;
}

static int kv_list(struct store *st, const uint8_t run[16], enum stmt_id q, store_kv_cb cb,
                   void *ctx, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_run_q_bind(st, run, cb != NULL, q, &s, err)) != 0)
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(s, 0);
        const char *v = (const char *)sqlite3_column_text(s, 1);
        ret = cb(ctx, k ? k : "", v ? v : "");
        if (ret) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing");
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
    "SELECT k.name, s.last_bits, s.min, s.max, s.count, s.last_step, s.last_ms, s.last"
    " FROM metric_summary s JOIN metric_keys k ON k.id = s.key_id"
    " WHERE s.run = ?1 AND k.name > ?2 ORDER BY k.name LIMIT ?3",
    "SELECT k.name, s.last_bits, s.min, s.max, s.count, s.last_step, s.last_ms, s.last"
    " FROM metric_keys k CROSS JOIN metric_summary s"
    " WHERE k.name > ?2 AND s.run = ?1 AND s.key_id = k.id ORDER BY k.name LIMIT ?3",
};

/* 1 when the run has more than SUMMARY_SORT_MAX metric keys. */
static int many_summaries(struct store *st, int64_t run_id, int *many, struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    /* kept prepared (sq_prep_lit): a search with details asks this per run */
    int ret = sq_prep_lit(
        st, "SELECT count(*) FROM (SELECT 1 FROM metric_summary WHERE run = ?1 LIMIT ?2)", &s, err);
    if (ret)
        return ret;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int(s, 2, SUMMARY_SORT_MAX + 1);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *many = sqlite3_column_int(s, 0) > SUMMARY_SORT_MAX;
    else
        ret = sq_db_fail(st, rc, err, "counting metric summaries");
    sq_release(st, s);
    return ret;
}

static int list_after(struct store *st, const uint8_t run[16], int which, const char *after,
                      int limit, store_kv_cb kv_cb, store_summary_cb sum_cb, void *ctx,
                      struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t run_id;
    int rc, ret;

    sq_err_clear(err);
    if (run == NULL || (kv_cb == NULL && sum_cb == NULL))
        return sq_fail(err, STORE_E_INVALID, "run id or callback missing");
    ret = sq_run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    if (which == 2) {
        int many = 0;
        ret = many_summaries(st, run_id, &many, err);
        if (ret)
            return ret;
        which += many;
    }
    /* kept prepared: a search with details reads these for every run it lists */
    ret = sq_prep_lit(st, after_sql[which], &s, err);
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
            sq_summary_of(s, &m);
            ret = sum_cb(ctx, &m);
        }
        if (ret) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "listing run details");
out:
    sq_release(st, s);
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
