/*
 * plot.h: the pictures of the review commands: sparklines (`track compare`,
 * `track watch`), round axis ticks and the SVG charts of `track compare
 * --plot`. Pure code as render.h's: no daemon, no globals (spark.c and
 * plot_svg.c; tests/unit/test_plot.c compiles them on their own).
 */
#ifndef TRACK_PLOT_H
#define TRACK_PLOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- sparklines -------------------------------------------------------------- */

#define RENDER_SPARK_MAX 512 /* cells; a sparkline takes 3 bytes per cell */

/* Draws v[0..n) as one cell each from "▁▂▃▄▅▆▇█", scaled between the finite
 * minimum and maximum (all equal: every cell "▄"). NaN is a space, +Inf
 * "█", -Inf "▁". At most RENDER_SPARK_MAX cells; buf needs 3 * cells + 1
 * bytes, else the line is cut at a cell boundary. Returns the cells drawn. */
size_t render_sparkline(const double *v, size_t n, char *buf, size_t len);

/* The same for downsampled buckets: cell i stands for a bucket whose values
 * span lo[i]..hi[i], and its bar reaches hi[i], scaled between the smallest
 * finite lo and the largest finite hi, so a spike anywhere in a bucket shows
 * (a last value would hide it). A bucket with no finite hi is a space. */
size_t render_sparkline_range(const double *lo, const double *hi, size_t n, char *buf, size_t len);

/* A sparkline `rows` lines tall (1..16, 8 levels a row, row 0 on top) of
 * v[0..n) scaled between lo and hi (the caller's, so it can print them; a
 * value outside is clamped, NaN a blank column). lines[r] receives row r and
 * needs len >= 3 * n + 1 bytes; at most RENDER_SPARK_MAX cells. Returns the
 * cells drawn per row. */
size_t render_spark_rows(const double *v, size_t n, double lo, double hi, int rows, char **lines,
                         size_t len);

/* ---- axes -------------------------------------------------------------------- */

/* Round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]
 * with about `target` intervals: the first tick is at or below lo, the last
 * at or above hi. Writes at most cap values into out and the spacing into
 * *step; returns how many. lo == hi is widened around the value; non-finite
 * bounds give 0..1. */
size_t render_ticks(double lo, double hi, int target, double *out, size_t cap, double *step);

/* A tick label with as many decimals as the spacing needs ("0.2", "1500"),
 * or 4 significant digits for very large or small values; never "-0". */
void render_tick_label(double v, double step, char *buf, size_t len);

#define RENDER_AXIS_TICKS 24

enum render_axis_kind {
    RENDER_AXIS_LINEAR = 0,
    RENDER_AXIS_INTEGER = 1, /* linear, ticks on whole numbers (steps) */
    RENDER_AXIS_LOG = 2,     /* lo, hi and ticks are log10 of the values */
    RENDER_AXIS_TIME = 3,    /* seconds since the epoch, labelled as local clock times */
};

/* An axis: its range [lo, hi] and round ticks inside it. */
struct render_axis {
    int kind; /* enum render_axis_kind */
    double lo, hi, step;
    double ticks[RENDER_AXIS_TICKS];
    size_t n;
};

/* The axis for data spanning [dlo, dhi] (for RENDER_AXIS_LOG: log10 of the
 * positive values): the data's range widened by 3% a side, never padded to
 * the next tick, with about `target` intervals of round ticks inside it:
 * 1, 2 or 5 times a power of ten (whole numbers only on an INTEGER axis),
 * powers of ten on a LOG axis spanning 3 decades or more (1, 2, 5 times
 * them below that), and clock steps (1, 2, 5, 10, 15, 30 s or min; 1, 2, 3,
 * 6, 12 h; days) on a TIME axis. One value is widened around it (by 5% of
 * it, or 1 for 0); non-finite bounds give 0..1. */
void render_axis_make(int kind, double dlo, double dhi, int target, struct render_axis *a);

/* The label of tick v of axis a: render_tick_label's for linear axes, the
 * value (not its log) with %g for LOG, "HH:MM[:SS]" (with "MM-DD" when the
 * axis spans days) in local time for TIME. */
void render_axis_label(const struct render_axis *a, double v, char *buf, size_t len);

/* ---- smoothing --------------------------------------------------------------- */

/* TensorBoard's smoothing: an exponential moving average of the finite
 * values of y[0..n) with weight w in [0, 1) (0: none), debiased so the start
 * is not pulled towards 0; non-finite values and a constant series are
 * copied as they are. out may be y. */
void render_smooth(const double *y, size_t n, double w, double *out);

/* ---- SVG --------------------------------------------------------------------- */

/* The value range of one bucket over [x0, x1], drawn as a filled band. */
struct render_band {
    double x0, x1, lo, hi;
};

struct render_series {
    const double *x, *y; /* the line through n points; a non-finite one breaks it */
    size_t n;
    const struct render_band *band; /* n_band buckets drawn as its envelope; may be NULL */
    size_t n_band;
};

/* One downsampled bucket as drawn: its first, min, max and last points, in
 * that order, x already in axis units. */
struct render_m4 {
    double x[4], y[4];
};

/* M4 downsampling of the points (x[i], y[i]), x ascending, into at most
 * `buckets` buckets splitting [x[0], x[n-1]] evenly, as trackd does by step:
 * each keeps its first and last point and its first smallest and largest
 * finite value (the first point when it has none). Empty buckets are left
 * out; returns how many were written to out. */
size_t render_m4_downsample(const double *x, const double *y, size_t n, size_t buckets,
                            struct render_m4 *out);

/* Shapes n buckets into s: the line through each bucket's points in x order
 * (a point that is two of them, as first == min, once), the band from each
 * bucket's min to its max over the x its points cover. xs and ys need room
 * for 4 * n values, band for n; s points into them. */
void render_m4_series(const struct render_m4 *b, size_t n, double *xs, double *ys,
                      struct render_band *band, struct render_series *s);

struct render_panel {
    const char *title; /* e.g. the metric key */
    const struct render_series *series;
    size_t n_series; /* series i is names[i] in render_color(i) in every panel */
};

/* What applies to the whole figure. */
struct render_plot {
    const char *title, *xlabel;
    int x_kind;    /* RENDER_AXIS_INTEGER, _LINEAR or _TIME */
    int log_y;     /* a log10 y axis; values <= 0 are left out and counted in a note */
    double smooth; /* TensorBoard's EMA weight in [0, 1), 0: off; the raw curve stays, faint */
    const char *const *names; /* the legend: one per figure, for n_names series */
    size_t n_names;
};

/* A distinct colour for series i as "#rrggbb": Tableau's ten, ten more
 * chosen to stay apart from them and each other (CIELAB distance >= 27),
 * then hues spread by the golden angle. */
void render_color(size_t i, char buf[8]);

/* Writes a self-contained SVG document to f: the title, one legend of the
 * names in their colours, then the panels stacked, each with its title,
 * axes with round ticks and grid lines inside a range chosen from what it
 * draws, and per series its line (a path; for a downsampled curve, through
 * each bucket's M4 points), under fewer than five series its envelope (a
 * light band from each bucket's min to its max), and a marker on each point
 * without a finite neighbour (a one-point series shows as a dot). With
 * o->smooth the raw line is drawn faint and the smoothed one over it. Five
 * or more series are drawn thin and translucent, so a tangle stays
 * readable. Returns 0, or -1 when f reports a write error. */
int render_svg(FILE *f, const struct render_plot *o, const struct render_panel *panels,
               size_t n_panels);

/* The same in pieces, for callers that fetch one panel's data at a time:
 * open (with the number of panels to come), each panel by its index, then
 * close (0, or -1 on a write error). */
void render_svg_open(FILE *f, const struct render_plot *o, size_t n_panels);
void render_svg_panel(FILE *f, const struct render_plot *o, const struct render_panel *p,
                      size_t index);
int render_svg_close(FILE *f);

/* ---- the curves of `track compare` (plot_compare.c; needs libtrack) ------------ */

struct track_client;

enum plot_x { PLOT_X_STEP = 0, PLOT_X_TIME = 1, PLOT_X_RELATIVE = 2 };

struct plot_run {
    const char *hex;  /* the full run id */
    const char *name; /* legend text */
    int64_t start_ms; /* for PLOT_X_RELATIVE */
};

struct plot_opts {
    double smooth; /* EMA weight in [0, 1); 0: off */
    int log_y;
    int x; /* enum plot_x */
};

/* Writes the SVG of `track compare --plot` to `path` (atomically, through
 * review_file_*): one panel per metric, one envelope and line per run from
 * the daemon's M4 curve, fetched a panel at a time. Returns 0, or 1 after
 * printing an error. */
int plot_compare(struct track_client *c, const struct plot_run *runs, size_t n,
                 const char *const *metrics, size_t nm, const struct plot_opts *o,
                 const char *path);

/* The sparkline of (run, key) over `buckets` buckets, each cell as high as
 * its bucket's largest value (render_sparkline_range), into buf. Returns 0
 * with *found set (0 when the run lacks the key), or 1 after printing an
 * error. */
int plot_sparkline(struct track_client *c, const char *run, const char *key, int buckets, char *buf,
                   size_t len, int *found);

#endif
