/*
 * test_curve.c: the downsampled curve (track_metric_curve_m4) through a real
 * trackd: each bucket keeps its first, last, smallest and largest point with
 * their steps and times (M4), so a signal whose period is shorter than a
 * bucket keeps its full swing in every bucket (the last value alone would
 * alias it into slow waves) and a single spike survives any bucket count.
 * Both of the store's paths are run: buckets of whole chunks (few buckets)
 * and buckets of single points (more buckets than chunks).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "track.h"

#define T0     1700000000000LL
#define N      100000
#define PERIOD 314.0
#define SPIKE  54321

static struct fx_daemon D;
static struct track_client *C;
static char RUN_HEX[33];

static double wave(int64_t step)
{
    return sin(2 * M_PI * (double)step / PERIOD);
}

static void setup(void)
{
    struct track_err err = {0};
    struct track_run_opts ro = {.experiment = "curve", .name = "m4"};
    track_run_id id;

    cr_assert_eq(fx_daemon_start(&D, NULL), 0, "trackd did not start");
    C = fx_client_open(&D, 0);
    cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, RUN_HEX);
    for (int64_t s = 0; s < N; s++) {
        cr_assert_eq(track_log_metric(C, "wave", wave(s), s, T0 + 10 * s, &err), 0, "%s", err.msg);
        cr_assert_eq(track_log_metric(C, "spike", s == SPIKE ? 1000.0 : 0.0, s, T0 + 10 * s, &err),
                     0, "%s", err.msg);
    }
    cr_assert_eq(track_flush(C, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    if (C)
        track_client_close(C);
    C = NULL;
    fx_daemon_cleanup(&D, 0);
}

TestSuite(curve, .init = setup, .fini = teardown);

/* Every point of every bucket is a real point: its value is the signal's at
 * its step, its time the step's time, and it lies inside its bucket's
 * [min, max]; buckets come in step order. */
static void expect_real_points(const struct track_curve_bucket *b, size_t n, double (*f)(int64_t))
{
    for (size_t i = 0; i < n; i++) {
        const struct track_curve_point *p[4] = {&b[i].first, &b[i].min, &b[i].max, &b[i].last};
        for (int k = 0; k < 4; k++) {
            cr_assert_eq(p[k]->value, f(p[k]->step), "bucket %zu point %d step %lld", i, k,
                         (long long)p[k]->step);
            cr_assert_eq(p[k]->time_ms, T0 + 10 * p[k]->step);
            cr_assert_geq(p[k]->value, b[i].min.value);
            cr_assert_leq(p[k]->value, b[i].max.value);
        }
        cr_assert_leq(b[i].lo_step, b[i].first.step);
        if (i)
            cr_assert_gt(b[i].lo_step, b[i - 1].lo_step);
    }
}

static double spike(int64_t s)
{
    return s == SPIKE ? 1000.0 : 0.0;
}

Test(curve, a_period_shorter_than_a_bucket_keeps_its_full_swing_in_every_bucket)
{
    static const int sizes[] = {10, 100, 2000};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        struct track_curve_bucket *b = NULL;
        struct track_err err = {0};
        size_t n = 0;
        int64_t count = 0;
        cr_assert_eq(track_metric_curve_m4(C, RUN_HEX, "wave", sizes[t], &b, &n, &count, &err), 0,
                     "%s", err.msg);
        cr_assert_eq(count, N);
        cr_assert_gt(n, (size_t)sizes[t] / 2, "buckets=%d n=%zu", sizes[t], n);
        cr_assert_leq(n, (size_t)sizes[t]);
        expect_real_points(b, n, wave);
        /* 2000 buckets of 50 steps hold a sixth of a period: only the
         * coarser ones must span the whole swing */
        double lo_last = INFINITY, hi_last = -INFINITY;
        for (size_t i = 0; i < n && sizes[t] <= 100; i++) {
            cr_assert_lt(b[i].min.value, -0.999, "buckets=%d bucket %zu", sizes[t], i);
            cr_assert_gt(b[i].max.value, 0.999, "buckets=%d bucket %zu", sizes[t], i);
            lo_last = fmin(lo_last, b[i].last.value);
            hi_last = fmax(hi_last, b[i].last.value);
        }
        if (sizes[t] == 100)
            /* what the old last-value curve drew: its own slow pattern */
            cr_assert_lt(hi_last - lo_last, 2.0);
        free(b);
    }
}

Test(curve, a_single_spike_survives_downsampling)
{
    static const int sizes[] = {1, 7, 100, 4096};
    for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
        struct track_curve_bucket *b = NULL;
        struct track_err err = {0};
        size_t n = 0, seen = 0;
        int64_t count = 0;
        cr_assert_eq(track_metric_curve_m4(C, RUN_HEX, "spike", sizes[t], &b, &n, &count, &err), 0,
                     "%s", err.msg);
        expect_real_points(b, n, spike);
        for (size_t i = 0; i < n; i++) {
            if (b[i].max.value == 1000.0) {
                seen++;
                cr_assert_eq(b[i].max.step, SPIKE);
            } else {
                cr_assert_eq(b[i].max.value, 0.0);
            }
            cr_assert_eq(b[i].min.value, 0.0);
        }
        cr_assert_eq(seen, 1, "buckets=%d: the spike in exactly one bucket", sizes[t]);
        free(b);
    }
}

Test(curve, the_older_reply_fields_still_agree)
{
    struct track_curve_bucket *b = NULL;
    struct track_result *res = NULL;
    struct track_err err = {0};
    const int64_t *steps;
    const double *mins, *maxs, *lasts;
    size_t n = 0, n4 = 0;
    int64_t count = 0;

    cr_assert_eq(track_metric_curve(C, RUN_HEX, "wave", 50, &res, &steps, &mins, &maxs, &lasts, &n,
                                    &count, &err),
                 0, "%s", err.msg);
    cr_assert_eq(track_metric_curve_m4(C, RUN_HEX, "wave", 50, &b, &n4, &count, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, n4);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(steps[i], b[i].lo_step);
        cr_assert_eq(mins[i], b[i].min.value);
        cr_assert_eq(maxs[i], b[i].max.value);
        cr_assert_eq(lasts[i], b[i].last.value);
    }
    free(b);
    track_result_free(res);
    b = NULL;
    cr_assert_eq(track_metric_curve_m4(C, RUN_HEX, "nosuch", 50, &b, &n4, &count, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n4, 0);
    cr_assert_null(b);
}
