/*
 * plot_compare.c: the pictures of `track compare` that need the daemon: the
 * SVG of --plot and the trend sparklines. Both read the daemon's M4 curve
 * (track_metric_curve_m4): per bucket its first, last, min and max points,
 * so a 10^6-point series costs a few hundred buckets and still shows every
 * spike. The drawing itself is plot_svg.c's and spark.c's.
 *
 * Each run's line goes through its buckets' first and last points (in x
 * order), its envelope spans each bucket's min..max over the x the bucket's
 * four points cover. x is the step, the wall-clock time (seconds since the
 * epoch, labelled as local time) or the seconds since the run's start.
 */
#include "cli.h"
#include "plot.h"
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PLOT_BUCKETS 400 /* about two pixels each across the plot area */

int plot_sparkline(struct track_client *c, const char *run, const char *key, int buckets, char *buf,
                   size_t len, int *found)
{
    struct track_curve_bucket *b = NULL;
    struct track_err err = {0};
    double lo[RENDER_SPARK_MAX], hi[RENDER_SPARK_MAX];
    size_t n = 0;
    int64_t count;

    *found = 0;
    if (len)
        buf[0] = '\0';
    if (buckets > RENDER_SPARK_MAX)
        buckets = RENDER_SPARK_MAX;
    if (track_metric_curve_m4(c, run, key, buckets, &b, &n, &count, &err)) {
        if (err.code == TRACK_E_NOT_FOUND)
            return 0;
        return cli_track_error(&err);
    }
    for (size_t i = 0; i < n && i < RENDER_SPARK_MAX; i++) {
        lo[i] = b[i].min.value;
        hi[i] = b[i].max.value;
    }
    render_sparkline_range(lo, hi, n < RENDER_SPARK_MAX ? n : RENDER_SPARK_MAX, buf, len);
    free(b);
    *found = n > 0;
    return 0;
}

static double x_of(const struct plot_opts *o, const struct plot_run *r,
                   const struct track_curve_point *p)
{
    if (o->x == PLOT_X_TIME)
        return (double)p->time_ms / 1000.0;
    if (o->x == PLOT_X_RELATIVE)
        return (double)(p->time_ms - r->start_ms) / 1000.0;
    return (double)p->step;
}

/* The line and band of one run from its buckets (render_m4_series); arrays
 * sized by the caller: 4 line points and 1 band bucket per curve bucket. */
static void shape(const struct plot_opts *o, const struct plot_run *r,
                  const struct track_curve_bucket *b, size_t n, struct render_m4 *m4, double *xs,
                  double *ys, struct render_band *band, struct render_series *s)
{
    for (size_t i = 0; i < n; i++) {
        const struct track_curve_point *p[4] = {&b[i].first, &b[i].min, &b[i].max, &b[i].last};
        for (int j = 0; j < 4; j++) {
            m4[i].x[j] = x_of(o, r, p[j]);
            m4[i].y[j] = p[j]->value;
        }
    }
    render_m4_series(m4, n, xs, ys, band, s);
}

int plot_compare(struct track_client *c, const struct plot_run *runs, size_t n,
                 const char *const *metrics, size_t nm, const struct plot_opts *o, const char *path)
{
    struct review_file rf;
    struct render_series *series = calloc(n ? n : 1, sizeof(*series));
    struct track_curve_bucket **bk = calloc(n ? n : 1, sizeof(*bk));
    double *xs = malloc(sizeof(double) * 4 * PLOT_BUCKETS * (n ? n : 1));
    double *ys = malloc(sizeof(double) * 4 * PLOT_BUCKETS * (n ? n : 1));
    struct render_band *bands = malloc(sizeof(*bands) * PLOT_BUCKETS * (n ? n : 1));
    struct render_m4 *m4 = malloc(sizeof(*m4) * PLOT_BUCKETS);
    const char **names = calloc(n ? n : 1, sizeof(*names));
    char(*labels)[300] = calloc(n ? n : 1, sizeof(*labels));
    char title[128], xlabel[64];
    int rc = 0, opened = 0;

    if (!series || !bk || !xs || !ys || !bands || !m4 || !names || !labels) {
        rc = cli_error("out of memory");
        goto out;
    }
    if (review_file_open(&rf, path)) {
        rc = 1;
        goto out;
    }
    opened = 1;
    for (size_t i = 0; i < n; i++) {
        snprintf(labels[i], sizeof(labels[i]), "%s (%.8s)", runs[i].name, runs[i].hex);
        names[i] = labels[i];
    }
    snprintf(title, sizeof(title), "track compare: %zu run%s", n, n == 1 ? "" : "s");
    snprintf(xlabel, sizeof(xlabel), "step");
    if (o->x == PLOT_X_RELATIVE)
        snprintf(xlabel, sizeof(xlabel), "seconds since the run's start");
    if (o->x == PLOT_X_TIME) {
        time_t now = time(NULL);
        struct tm tm;
        if (!localtime_r(&now, &tm) || !strftime(xlabel, sizeof(xlabel), "time (%Z)", &tm))
            snprintf(xlabel, sizeof(xlabel), "time");
    }
    struct render_plot plot = {
        .title = title,
        .xlabel = xlabel,
        .x_kind = o->x == PLOT_X_TIME       ? RENDER_AXIS_TIME
                  : o->x == PLOT_X_RELATIVE ? RENDER_AXIS_LINEAR
                                            : RENDER_AXIS_INTEGER,
        .log_y = o->log_y,
        .smooth = o->smooth,
        .names = names,
        .n_names = n,
    };
    render_svg_open(rf.f, &plot, nm);
    for (size_t m = 0; m < nm && !rc; m++) {
        for (size_t i = 0; i < n && !rc; i++) {
            struct track_err err = {0};
            size_t nb = 0;
            int64_t count;
            series[i] = (struct render_series){0};
            if (track_metric_curve_m4(c, runs[i].hex, metrics[m], PLOT_BUCKETS, &bk[i], &nb, &count,
                                      &err)) {
                if (err.code != TRACK_E_NOT_FOUND)
                    rc = cli_track_error(&err);
                continue;
            }
            nb = nb > PLOT_BUCKETS ? PLOT_BUCKETS : nb;
            shape(o, &runs[i], bk[i], nb, m4, xs + i * 4 * PLOT_BUCKETS, ys + i * 4 * PLOT_BUCKETS,
                  bands + i * PLOT_BUCKETS, &series[i]);
        }
        if (!rc) {
            struct render_panel p = {.title = metrics[m], .series = series, .n_series = n};
            render_svg_panel(rf.f, &plot, &p, m);
        }
        for (size_t i = 0; i < n; i++) {
            free(bk[i]);
            bk[i] = NULL;
        }
    }
    if (rc || render_svg_close(rf.f)) {
        review_file_abort(&rf);
        opened = 0;
        if (!rc)
            rc = cli_error("%s: writing failed", path);
        goto out;
    }
    opened = 0;
    rc = review_file_commit(&rf);
out:
    if (opened)
        review_file_abort(&rf);
    free(series);
    free(bk);
    free(xs);
    free(ys);
    free(bands);
    free(m4);
    free(names);
    free(labels);
    return rc;
}
