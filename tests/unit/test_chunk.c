/*
 * test_chunk.c: the metric chunk codec (storage/chunk.c). Round trips must be
 * bit-exact for every int64 and every double bit pattern; corrupt input must
 * be rejected without reading past the blob (ASan watches); a regular series
 * must cost under 8 bytes a point.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    /* splitmix64: deterministic, so a failure reproduces */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

struct series {
    int64_t *steps, *times;
    double *vals;
    size_t n;
};

static struct series series_new(size_t n)
{
    struct series s = {calloc(n + 1, 8), calloc(n + 1, 8), calloc(n + 1, 8), n};
    cr_assert(s.steps && s.times && s.vals);
    return s;
}

static void series_free(struct series *s)
{
    free(s->steps);
    free(s->times);
    free(s->vals);
}

/* Encodes and decodes s, asserting a bit-exact round trip; returns the
 * encoded size. Also checks that exactly-sized output works and one byte
 * less does not. */
static size_t round_trip(const struct series *s)
{
    size_t cap = chunk_bound(s->n), len = 0, n = 0, hn = 0;
    uint8_t *buf = malloc(cap);
    struct series d = series_new(s->n);

    cr_assert(buf);
    cr_assert_eq(chunk_encode(s->steps, s->times, s->vals, s->n, buf, cap, &len), CHUNK_OK);
    cr_assert_leq(len, cap);
    cr_assert_eq(chunk_decode_header(buf, len, &hn), CHUNK_OK);
    cr_assert_eq(hn, s->n);
    cr_assert_eq(chunk_decode(buf, len, d.steps, d.times, d.vals, s->n, &n), CHUNK_OK);
    cr_assert_eq(n, s->n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(d.steps[i], s->steps[i], "step %zu", i);
        cr_assert_eq(d.times[i], s->times[i], "time %zu", i);
        cr_assert(memcmp(&d.vals[i], &s->vals[i], 8) == 0, "value %zu not bit-exact", i);
    }

    uint8_t *exact = malloc(len);
    size_t len2 = 0;
    cr_assert(exact);
    cr_assert_eq(chunk_encode(s->steps, s->times, s->vals, s->n, exact, len, &len2), CHUNK_OK);
    cr_assert_eq(len2, len);
    cr_assert(memcmp(exact, buf, len) == 0);
    cr_assert_eq(chunk_encode(s->steps, s->times, s->vals, s->n, exact, len - 1, &len2),
                 CHUNK_E_SPACE);
    free(exact);

    free(buf);
    series_free(&d);
    return len;
}

Test(chunk, empty_and_tiny_series_round_trip)
{
    for (size_t n = 0; n <= 3; n++) {
        struct series s = series_new(n);
        for (size_t i = 0; i < n; i++) {
            s.steps[i] = (int64_t)i * 7;
            s.times[i] = 1700000000000 + (int64_t)i * 3;
            s.vals[i] = 1.0 / (double)(i + 3);
        }
        round_trip(&s);
        series_free(&s);
    }
    /* n == 0 needs no arrays at all */
    uint8_t buf[16];
    size_t len = 0, n = 99;
    cr_assert_eq(chunk_encode(NULL, NULL, NULL, 0, buf, sizeof buf, &len), CHUNK_OK);
    cr_assert_eq(chunk_decode(buf, len, NULL, NULL, NULL, 0, &n), CHUNK_OK);
    cr_assert_eq(n, 0);
}

Test(chunk, regular_series_round_trips_and_is_small)
{
    struct series s = series_new(1000);
    for (size_t i = 0; i < s.n; i++) {
        s.steps[i] = (int64_t)i;
        s.times[i] = 1764000000000 + 100 * (int64_t)i;
        s.vals[i] = 2.3 * exp(-(double)i / 250.0) + 0.05;
    }
    size_t len = round_trip(&s);
    double per_point = (double)len / (double)s.n;
    cr_assert_lt(per_point, 8.0, "%.3f bytes a point", per_point);
    series_free(&s);
}

Test(chunk, float32_values_compress_further)
{
    struct series s = series_new(1000);
    for (size_t i = 0; i < s.n; i++) {
        s.steps[i] = (int64_t)i * 10;
        s.times[i] = 1764000000000 + 250 * (int64_t)i;
        s.vals[i] = (double)(float)(1.0 / (1.0 + (double)i * 0.01));
    }
    size_t len = round_trip(&s);
    cr_assert_lt((double)len / (double)s.n, 6.0);
    series_free(&s);
}

Test(chunk, irregular_and_negative_deltas_round_trip)
{
    struct series s = series_new(5000);
    int64_t step = 1000000, t = 1764000000000;
    for (size_t i = 0; i < s.n; i++) {
        step += (int64_t)(rnd() % 2001) - 1000; /* goes backwards too */
        t += (int64_t)(rnd() % 50) - 5;
        s.steps[i] = step;
        s.times[i] = t;
        s.vals[i] = (double)(int64_t)(rnd() % 1000) / 7.0 - 50.0;
    }
    round_trip(&s);
    series_free(&s);
}

Test(chunk, extreme_integers_round_trip)
{
    const int64_t ex[] = {INT64_MIN, INT64_MAX, 0,  -1, 1,         INT64_MIN + 1, INT64_MAX - 1,
                          INT64_MIN, INT64_MIN, -1, 0,  INT64_MAX, INT64_MAX,     42};
    size_t m = sizeof ex / sizeof ex[0];
    struct series s = series_new(m * m);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++) {
            s.steps[i * m + j] = ex[i];
            s.times[i * m + j] = ex[j];
            s.vals[i * m + j] = (double)i;
        }
    round_trip(&s);
    series_free(&s);

    s = series_new(20000);
    for (size_t i = 0; i < s.n; i++) {
        s.steps[i] = (int64_t)rnd();
        s.times[i] = (int64_t)rnd();
        s.vals[i] = from_bits(rnd());
    }
    size_t len = round_trip(&s);
    cr_assert_leq(len, chunk_bound(s.n));
    series_free(&s);
}

Test(chunk, special_doubles_round_trip_bit_exactly)
{
    const uint64_t bits[] = {
        0x7ff8000000000000ULL, /* quiet NaN */
        0xfff8000000000000ULL, /* negative quiet NaN */
        0x7ff0000000000001ULL, /* signalling NaN */
        0x7ffdeadbeef00001ULL, /* NaN with a payload */
        0xfff0000000000abcULL, /* negative NaN with a payload */
        0x7ff0000000000000ULL, /* +Inf */
        0xfff0000000000000ULL, /* -Inf */
        0x8000000000000000ULL, /* -0.0 */
        0x0000000000000000ULL, /* +0.0 */
        0x0000000000000001ULL, /* smallest denormal */
        0x800fffffffffffffULL, /* largest negative denormal */
        0x0010000000000000ULL, /* DBL_MIN */
        0x7fefffffffffffffULL, /* DBL_MAX */
        0xffefffffffffffffULL, /* -DBL_MAX */
        0x3ff0000000000000ULL, /* 1.0 */
    };
    size_t m = sizeof bits / sizeof bits[0];
    struct series s = series_new(m * m * 2);
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++) {
            s.vals[k++] = from_bits(bits[i]);
            s.vals[k++] = from_bits(bits[j]);
        }
    for (size_t i = 0; i < s.n; i++) {
        s.steps[i] = (int64_t)i;
        s.times[i] = (int64_t)i;
    }
    round_trip(&s);
    series_free(&s);
}

Test(chunk, random_doubles_round_trip)
{
    struct series s = series_new(100000);
    for (size_t i = 0; i < s.n; i++) {
        s.steps[i] = (int64_t)i;
        s.times[i] = 1764000000000 + (int64_t)i * 17;
        switch (rnd() % 4) {
        case 0:
            s.vals[i] = from_bits(rnd());
            break;
        case 1:
            s.vals[i] = (double)(rnd() >> 11) / 9007199254740992.0;
            break;
        case 2:
            s.vals[i] = i ? s.vals[i - 1] : 0.0;
            break;
        default:
            s.vals[i] = from_bits(rnd() & 0x800fffffffffffffULL); /* denormals */
        }
    }
    round_trip(&s);
    series_free(&s);
}

Test(chunk, large_regular_series_round_trips)
{
    struct series s = series_new(100000);
    for (size_t i = 0; i < s.n; i++) {
        s.steps[i] = (int64_t)i;
        s.times[i] = 1764000000000 + (int64_t)i * 100 + (i % 97 == 0 ? 3 : 0);
        s.vals[i] = 1.0 / (1.0 + (double)i);
    }
    round_trip(&s);
    series_free(&s);
}

Test(chunk, small_output_arrays_are_refused)
{
    int64_t st[4] = {1, 2, 3, 4}, tm[4] = {5, 6, 7, 8};
    double v[4] = {1, 2, 3, 4};
    uint8_t buf[256];
    size_t len = 0, n = 0;

    cr_assert_eq(chunk_encode(st, tm, v, 4, buf, sizeof buf, &len), CHUNK_OK);
    cr_assert_eq(chunk_decode(buf, len, st, tm, v, 3, &n), CHUNK_E_SPACE);
    cr_assert_eq(n, 4);
    cr_assert_eq(chunk_encode(st, tm, v, 4, buf, 0, &len), CHUNK_E_SPACE);
    cr_assert_eq(chunk_bound(SIZE_MAX), SIZE_MAX);
}

Test(chunk, truncated_and_extended_chunks_are_rejected)
{
    struct series s = series_new(300);
    for (size_t i = 0; i < s.n; i++) {
        s.steps[i] = (int64_t)(i * i);
        s.times[i] = 1764000000000 + (int64_t)(rnd() % 100000);
        s.vals[i] = from_bits(rnd());
    }
    size_t cap = chunk_bound(s.n), len = 0, n = 0;
    uint8_t *buf = malloc(cap + 1);
    struct series d = series_new(s.n);
    cr_assert_eq(chunk_encode(s.steps, s.times, s.vals, s.n, buf, cap, &len), CHUNK_OK);

    for (size_t cut = 0; cut < len; cut++) {
        /* a fresh allocation of exactly `cut` bytes, so ASan sees any overread */
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, buf, cut);
        cr_assert_eq(chunk_decode(t, cut, d.steps, d.times, d.vals, d.n, &n), CHUNK_E_CORRUPT,
                     "prefix of %zu bytes accepted", cut);
        free(t);
    }
    buf[len] = 0;
    cr_assert_eq(chunk_decode(buf, len + 1, d.steps, d.times, d.vals, d.n, &n), CHUNK_E_CORRUPT);
    buf[0] = CHUNK_VERSION + 1;
    cr_assert_eq(chunk_decode(buf, len, d.steps, d.times, d.vals, d.n, &n), CHUNK_E_CORRUPT);
    cr_assert_eq(chunk_decode(NULL, 0, d.steps, d.times, d.vals, d.n, &n), CHUNK_E_CORRUPT);
    cr_assert_eq(chunk_decode_header(NULL, 0, &n), CHUNK_E_CORRUPT);
    free(buf);
    series_free(&s);
    series_free(&d);
}

Test(chunk, header_never_claims_more_points_than_bytes)
{
    uint8_t buf[12] = {CHUNK_VERSION, 0xff, 0xff, 0xff, 0xff, 0x0f};
    size_t n = 0;
    cr_assert_eq(chunk_decode_header(buf, 6, &n), CHUNK_E_CORRUPT);
    /* an 11-byte varint is not a varint */
    memset(buf + 1, 0xff, 11);
    cr_assert_eq(chunk_decode_header(buf, sizeof buf, &n), CHUNK_E_CORRUPT);
}

/* An accepted chunk must mean exactly one series: its header agrees on the
 * count, one more byte makes it corrupt, and its points re-encode to a
 * chunk that decodes to the same bits. */
static void check_accepted(const uint8_t *b, size_t len, const int64_t *st, const int64_t *tm,
                           const double *v, size_t n)
{
    size_t hn = 0, n2 = 0, cap = chunk_bound(n), elen = 0;
    uint8_t *longer = malloc(len + 1), *enc = malloc(cap ? cap : 1);
    int64_t *st2 = malloc((n ? n : 1) * 8), *tm2 = malloc((n ? n : 1) * 8);
    double *v2 = malloc((n ? n : 1) * 8);

    cr_assert_eq(chunk_decode_header(b, len, &hn), CHUNK_OK);
    cr_assert_eq(hn, n, "header says %zu points, decoding gave %zu", hn, n);
    cr_assert_leq(n, len, "%zu points from %zu bytes", n, len);
    memcpy(longer, b, len);
    longer[len] = 0;
    cr_assert_eq(chunk_decode(longer, len + 1, st2, tm2, v2, n, &n2), CHUNK_E_CORRUPT,
                 "a trailing byte was ignored");
    cr_assert_eq(chunk_encode(st, tm, v, n, enc, cap, &elen), CHUNK_OK);
    cr_assert_eq(chunk_decode(enc, elen, st2, tm2, v2, n, &n2), CHUNK_OK);
    cr_assert_eq(n2, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(st2[i], st[i]);
        cr_assert_eq(tm2[i], tm[i]);
        cr_assert(memcmp(&v2[i], &v[i], 8) == 0, "value %zu changed its bits", i);
    }
    free(longer);
    free(enc);
    free(st2);
    free(tm2);
    free(v2);
}

Test(chunk, random_garbage_is_rejected_or_decodes_to_one_consistent_series)
{
    enum { CAP = 512 };
    int64_t *st = malloc(CAP * 8), *tm = malloc(CAP * 8);
    double *v = malloc(CAP * 8);
    size_t accepted = 0, accepted_bad_version = 0, with_version = 0;

    for (int iter = 0; iter < 200000; iter++) {
        size_t len = (size_t)(rnd() % 48);
        uint8_t *b = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            b[i] = (uint8_t)rnd();
        if (len && (iter & 1))
            b[0] = CHUNK_VERSION; /* get past the version byte half the time */
        if (len && b[0] == CHUNK_VERSION)
            with_version++;
        size_t n = 0;
        int rc = chunk_decode(b, len, st, tm, v, CAP, &n);
        cr_assert(rc == CHUNK_OK || rc == CHUNK_E_CORRUPT, "rc %d", rc);
        if (rc == CHUNK_OK) {
            accepted++;
            if (!len || b[0] != CHUNK_VERSION)
                accepted_bad_version++;
            else
                check_accepted(b, len, st, tm, v, n);
        }
        free(b);
    }
    cr_assert_eq(accepted_bad_version, 0, "chunks without the version byte were accepted");
    cr_assert_gt(with_version, 90000);
    /* most garbage is caught: a count, columns and an exact end all have to
     * agree (measured: well under 1% of these inputs pass) */
    cr_assert_lt(accepted, with_version / 20, "%zu of %zu garbage inputs accepted", accepted,
                 with_version);
    cr_log_info("accepted %zu of %zu garbage inputs that had the version byte", accepted,
                with_version);

    /* flip bytes of a valid chunk */
    struct series s = series_new(200);
    for (size_t i = 0; i < s.n; i++) {
        s.steps[i] = (int64_t)i * 3;
        s.times[i] = 1764000000000 + (int64_t)(rnd() % 1000);
        s.vals[i] = sin((double)i);
    }
    size_t cap = chunk_bound(s.n), len = 0;
    uint8_t *good = malloc(cap);
    cr_assert_eq(chunk_encode(s.steps, s.times, s.vals, s.n, good, cap, &len), CHUNK_OK);
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t *b = malloc(len);
        memcpy(b, good, len);
        for (int k = 0; k < 1 + (int)(rnd() % 4); k++)
            b[rnd() % len] = (uint8_t)rnd();
        size_t n = 0;
        int rc = chunk_decode(b, len, st, tm, v, CAP, &n);
        /* a flipped count may ask for more room than CAP */
        cr_assert(rc == CHUNK_OK || rc == CHUNK_E_CORRUPT || (rc == CHUNK_E_SPACE && n > CAP));
        if (rc == CHUNK_OK)
            check_accepted(b, len, st, tm, v, n);
        free(b);
    }
    free(good);
    series_free(&s);
    free(st);
    free(tm);
    free(v);
}
