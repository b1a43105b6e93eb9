/*
 * store_metric.c: metric points: appends as packed chunks with their
 * (run, key) summary kept current, counts, summaries, history pages by seq,
 * downsampled curves (M4: first, min, max, last per bucket, from chunk rows
 * where they suffice), and the background compaction of small chunks. The
 * chunk format and its invariants are described in store_core.c.
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

/* chunk row ids one store_metric_compact call looks at, at most */
#define COMPACT_WINDOW 65536

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
    ret = sq_enc_reserve(st, chunk_bound(n), err);
    if (ret)
        return ret;
    if (chunk_encode(steps, times, vals, n, st->enc, st->enc_cap, &len) != CHUNK_OK)
        return sq_fail(err, STORE_E_INTERNAL, "encoding a chunk of %zu points failed", n);
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    sqlite3_bind_int64(s, 3, first_seq);
    sqlite3_bind_int64(s, 4, (int64_t)n);
    sqlite3_bind_int64(s, 5, smin);
    sqlite3_bind_int64(s, 6, smax);
    sq_bind_real_or_null(s, 7, have_v, vmin);
    sq_bind_real_or_null(s, 8, have_v, vmax);
    sqlite3_bind_blob(s, 9, st->enc, (int)len, SQLITE_STATIC);
    sq_bind_real_or_null(s, 10, !isnan(vals[n - 1]), vals[n - 1]);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "storing a metric chunk");
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
    int64_t run_id, key_id, count = 0, mark = 0;
    double smin = 0, smax = 0;
    int have_min = 0, have_max = 0, rc, ret;
    uint64_t last_bits;

    sq_err_clear(err);
    if (run == NULL || (n > 0 && (steps == NULL || times_ms == NULL || values == NULL)))
        return sq_fail(err, STORE_E_INVALID, "run id or metric points missing");
    if ((ret = sq_check_name(key, "metric key", err)) != 0 || (ret = sq_writable(st, err)) != 0)
        return ret;
    if (n > (size_t)INT64_MAX / 2)
        return sq_fail(err, STORE_E_INVALID, "%zu points is too many", n);
    ret = sq_run_find_live(st, run, &run_id, err);
    if (ret || n == 0)
        return ret;
    ret = sq_key_find(st, key, 1, &key_id, err);
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
        ret = sq_db_fail(st, rc, err, "reading a metric summary");
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

    /* 0 (no bytes on disk) when `last` holds the value exactly: every
     * value but NaN and -0.0 (store_core.c, "metric_summary") */
    memcpy(&last_bits, &values[n - 1], sizeof last_bits);
    if (!isnan(values[n - 1]) && !(values[n - 1] == 0 && signbit(values[n - 1])))
        last_bits = 0;
    if ((ret = sq_put_mark(st, &mark, err)) != 0)
        return ret;
    s = st->q[Q_SUM_PUT];
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    sq_bind_real_or_null(s, 3, !isnan(values[n - 1]), values[n - 1]);
    sqlite3_bind_int64(s, 4, (int64_t)last_bits);
    sq_bind_real_or_null(s, 5, have_min, smin);
    sq_bind_real_or_null(s, 6, have_max, smax);
    sqlite3_bind_int64(s, 7, count + (int64_t)n);
    sqlite3_bind_int64(s, 8, steps[n - 1]);
    sqlite3_bind_int64(s, 9, times_ms[n - 1]);
    sqlite3_bind_int(s, 10, run_id <= mark);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "updating a metric summary");
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

    sq_err_clear(err);
    if (run == NULL || key == NULL || count == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id, key or count missing");
    ret = sq_run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    ret = sq_key_find(st, key, 0, &key_id, err);
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
            ret = sq_db_fail(st, rc, err, "reading a metric summary");
        sqlite3_reset(s);
        if (ret <= 0)
            return ret;
    }
    sq_hex_of(run, hex);
    return sq_fail(err, STORE_E_NOT_FOUND, "metric \"%s\": not logged in run %s",
                   sq_clip(key, cbuf, sizeof cbuf), hex);
}

/* One call of cb per metric of the run, by key name; `last` is bit-exact,
 * `min`/`max` NaN when every point is NaN. A non-zero answer stops. */
int store_metric_summaries(struct store *st, const uint8_t run[16], store_summary_cb cb, void *ctx,
                           struct store_err *err)
{
    sqlite3_stmt *s = NULL;
    int rc, ret;

    if ((ret = sq_run_q_bind(st, run, cb != NULL, Q_SUM_LIST, &s, err)) != 0)
        return ret;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_metric_summary m;
        sq_summary_of(s, &m);
        ret = cb(ctx, &m);
        if (ret) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "reading metric summaries");
out:
    sqlite3_reset(s);
    return ret;
}

static int chunk_corrupt(struct store_err *err, const uint8_t run[16], const char *key, int64_t seq,
                         const char *what)
{
    char hex[33], cbuf[CLIP_LEN + 4];

    sq_hex_of(run, hex);
    return sq_fail(err, STORE_E_CORRUPT, "metric \"%s\" of run %s: %s at seq %lld",
                   sq_clip(key, cbuf, sizeof cbuf), hex, what, (long long)seq);
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

    sq_err_clear(err);
    if (next_seq)
        *next_seq = after_seq;
    if (run == NULL || cb == NULL || next_seq == NULL)
        return sq_fail(err, STORE_E_INVALID, "run id, callback or cursor missing");
    if (after_seq < 0 || max_points < 0)
        return sq_fail(err, STORE_E_INVALID, "after_seq and max_points must be >= 0");
    if ((ret = sq_check_name(key, "metric key", err)) != 0)
        return ret;
    ret = sq_run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    ret = sq_key_find(st, key, 0, &key_id, err);
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
        ret = sq_decode_into(st, sqlite3_column_blob(s, 2), sqlite3_column_bytes(s, 2), 0, n, err);
        if (ret) {
            if (ret == STORE_E_CORRUPT)
                ret = chunk_corrupt(err, run, key, first, "an unreadable chunk");
            goto out;
        }
        skip = after_seq > first ? after_seq - first : 0;
        give = n - skip < left ? n - skip : left;
        ret = cb(ctx, st->d_steps + skip, st->d_times + skip, st->d_vals + skip, (size_t)give);
        if (ret) {
            ret = sq_cb_stop(err, ret);
            goto out;
        }
        seq = first + skip + give;
        *next_seq = seq;
        left -= give;
    }
    if (left > 0 && rc != SQLITE_DONE)
        ret = sq_db_fail(st, rc, err, "reading metric history");
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
        return sq_fail(err, STORE_E_INTERNAL, "out of memory for %d buckets", buckets);
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    sqlite3_bind_int64(s, 3, 0);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(s, 1);
        ret = sq_decode_into(st, sqlite3_column_blob(s, 2), sqlite3_column_bytes(s, 2), 0, n, err);
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
        ret = sq_db_fail(st, rc, err, "reading a metric curve");
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
                     int64_t key_id, int64_t seq, const struct m4_chunks *c, struct store_bucket *b,
                     struct store_err *err)
{
    sqlite3_stmt *at = st->q[Q_CHUNK_AT];
    int rc, ret = 0;

    sqlite3_bind_int64(at, 1, run_id);
    sqlite3_bind_int64(at, 2, key_id);
    sqlite3_bind_int64(at, 3, seq);
    rc = sqlite3_step(at);
    if (rc != SQLITE_ROW) {
        ret =
            sq_db_fail(st, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, err, "reading a metric curve");
        goto out;
    }
    int64_t n = sqlite3_column_int64(at, 0);
    ret = sq_decode_into(st, sqlite3_column_blob(at, 1), sqlite3_column_bytes(at, 1), 0, n, err);
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
        ret = sq_fail(err, STORE_E_INTERNAL, "out of memory for %d buckets", buckets);
        goto out;
    }
    for (int b = 0; b < buckets; b++)
        slot[b] = -1;
    ret = sq_prep(st,
                  "SELECT first_seq, first_step, vmin, vmax FROM metric_chunks"
                  " WHERE run = ?1 AND key_id = ?2 ORDER BY first_seq",
                  &s, err);
    if (ret)
        goto out;
    sqlite3_bind_int64(s, 1, run_id);
    sqlite3_bind_int64(s, 2, key_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t seq = sqlite3_column_int64(s, 0), step = sqlite3_column_int64(s, 1);
        double vmin = sq_real_or_nan(s, 2), vmax = sq_real_or_nan(s, 3);
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
        ret = sq_db_fail(st, rc, err, "reading a metric curve");
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

    sq_err_clear(err);
    if (n)
        *n = 0;
    if (count)
        *count = 0;
    if (run == NULL || !out || !n || !count)
        return sq_fail(err, STORE_E_INVALID, "run id or curve output missing");
    if (buckets < 1 || buckets > CURVE_MAX_BUCKETS)
        return sq_fail(err, STORE_E_INVALID, "buckets %d is not in 1..%d", buckets,
                       CURVE_MAX_BUCKETS);
    if ((ret = sq_check_name(key, "metric key", err)) != 0)
        return ret;
    ret = sq_run_find(st, run, &run_id, "run", err);
    if (ret)
        return ret;
    ret = sq_key_find(st, key, 0, &key_id, err);
    if (ret)
        return ret < 0 ? ret : 0;
    ret = sq_prep(st,
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
        ret = sq_db_fail(st, rc, err, "reading a metric curve");
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
        return sq_fail(err, STORE_E_INVALID, "run id or curve output missing");
    if (buckets < 1 || buckets > CURVE_MAX_BUCKETS)
        return sq_fail(err, STORE_E_INVALID, "buckets %d is not in 1..%d", buckets,
                       CURVE_MAX_BUCKETS);
    b = malloc((size_t)buckets * sizeof *b);
    if (b == NULL)
        return sq_fail(err, STORE_E_INTERNAL, "out of memory for %d buckets", buckets);
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

    ret = sq_dec_reserve(st, (size_t)points, err);
    if (ret)
        return ret;
    for (size_t i = 0; i < count; i++) {
        sqlite3_bind_int64(at, 1, m[i].run);
        sqlite3_bind_int64(at, 2, m[i].key);
        sqlite3_bind_int64(at, 3, m[i].first_seq);
        rc = sqlite3_step(at);
        if (rc == SQLITE_ROW)
            ret = sq_decode_into(st, sqlite3_column_blob(at, 1), sqlite3_column_bytes(at, 1), off,
                                 m[i].n, err);
        else
            ret = sq_db_fail(st, rc == SQLITE_DONE ? SQLITE_CORRUPT : rc, err, "reading a chunk");
        sqlite3_reset(at);
        if (ret) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            return sq_fail(err, ret, "chunk %lld cannot be merged: %s", (long long)m[i].id, why);
        }
        off += (size_t)m[i].n;
    }
    for (size_t i = 0; i < count; i++) {
        sqlite3_bind_int64(del, 1, m[i].id);
        rc = sqlite3_step(del);
        sqlite3_reset(del);
        if (rc != SQLITE_DONE)
            return sq_db_fail(st, rc, err, "deleting a merged chunk");
    }
    return chunk_put(st, m[0].run, m[0].key, m[0].first_seq, st->d_steps, st->d_times, st->d_vals,
                     off, err);
}

/* Groups are maximal runs of consecutive chunks of one (run, key) each with
 * fewer than `small` points, cut so that none exceeds CHUNK_MAX_POINTS.
 * *merged counts the chunks that disappear (a group of k chunks: k - 1).
 * Only (run, key)s that got a small chunk since the last complete pass are
 * looked at (all of them after open or a rollback), and of those only the
 * chunks of the next COMPACT_WINDOW row ids, so a call costs at most that
 * window whatever was appended since (10^5 runs of 20 short series are 2M
 * small chunks: one call over all of them held trackd's loop for seconds,
 * after a load and after every start); the next call goes on from there. The work is wrapped in
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

    sq_err_clear(err);
    if (merged)
        *merged = 0;
    if (max_groups < 1)
        return sq_fail(err, STORE_E_INVALID, "max_groups %d must be at least 1", max_groups);
    if ((ret = sq_writable(st, err)) != 0)
        return ret;
    if (small < 2)
        return 0;
    if (max_groups > 1 << 20)
        max_groups = 1 << 20;
    g = calloc((size_t)max_groups + 1, sizeof *g);
    if (g == NULL)
        return sq_fail(err, STORE_E_INTERNAL, "out of memory");
    ret = sq_prep(st, "SELECT coalesce(max(id), 0) FROM metric_chunks", &s, err);
    if (ret)
        goto out;
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        ret = sq_db_fail(st, rc, err, "finding small chunks");
        goto out;
    }
    top = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    s = NULL;
    int64_t from = st->compact_small == small ? st->compact_mark : 0;
    if (top - from > COMPACT_WINDOW)
        top = from + COMPACT_WINDOW;
    /* NOT INDEXED and CROSS JOIN keep the planner on the rowid range and the
     * (run, key_id, first_seq) index, never a scan of the whole table */
    ret = sq_prep(st,
                  "SELECT c.id, c.run, c.key_id, c.first_seq, c.n FROM"
                  " (SELECT DISTINCT run, key_id FROM metric_chunks NOT INDEXED"
                  "  WHERE id > ?2 AND id <= ?3 AND n < ?1) p"
                  " CROSS JOIN metric_chunks c ON c.run = p.run AND c.key_id = p.key_id"
                  " AND c.n < ?1 ORDER BY c.run, c.key_id, c.first_seq",
                  &s, err);
    if (ret)
        goto out;
    sqlite3_bind_int(s, 1, small);
    sqlite3_bind_int64(s, 2, from);
    sqlite3_bind_int64(s, 3, top);
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
                ret = sq_fail(err, STORE_E_INTERNAL, "out of memory");
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
        ret = sq_db_fail(st, rc, err, "finding small chunks");
        goto out;
    }
    if (open_group && g[n_g].count >= 2)
        n_g++;
    sqlite3_finalize(s);
    s = NULL;

    if (n_g > 0) {
        ret = sq_prep(st, "DELETE FROM metric_chunks WHERE id = ?1", &del, err);
        if (ret)
            goto out;
        ret = sq_exec_sql(st, "SAVEPOINT store_compact", err, "compacting");
        if (ret)
            goto out;
        for (size_t i = 0; i < n_g && ret == 0; i++) {
            ret = merge_group(st, del, m + g[i].start, g[i].count, g[i].points, err);
            total += (int)g[i].count - 1;
        }
        if (ret) {
            sqlite3_exec(st->db, "ROLLBACK TO store_compact; RELEASE store_compact", NULL, NULL,
                         NULL);
            sq_cache_drop(st);
            goto out;
        }
        ret = sq_exec_sql(st, "RELEASE store_compact", err, "compacting");
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
