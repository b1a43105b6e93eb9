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

/* ---- axes -------------------------------------------------------------------- */

/* Round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]
 * with about `target` intervals: the first tick is at or below lo, the last
 * at or above hi (so they make the axis range). Writes at most cap values
 * into out and the spacing into *step; returns how many. lo == hi is widened
 * around the value; non-finite bounds give 0..1. */
size_t render_ticks(double lo, double hi, int target, double *out, size_t cap, double *step);

/* A tick label with as many decimals as the spacing needs ("0.2", "1500"),
 * or 4 significant digits for very large or small values; never "-0". */
void render_tick_label(double v, double step, char *buf, size_t len);

/* ---- SVG --------------------------------------------------------------------- */

struct render_series {
    const char *name;    /* legend text */
    const double *x, *y; /* n points; non-finite ones are skipped */
    size_t n;
};

struct render_panel {
    const char *title; /* e.g. the metric key */
    const struct render_series *series;
    size_t n_series; /* series i is drawn in render_color(i) in every panel */
};

/* A distinct colour for series i as "#rrggbb" (ten hand-picked ones, then
 * hues spread by the golden angle). */
void render_color(size_t i, char buf[8]);

/* Writes a self-contained SVG document to f: the panels stacked, each with
 * its title, axes with round ticks and grid lines, x labelled `xlabel`, one
 * polyline per series (always one, even when it has no finite point), and a
 * legend of the series names in their colours. Returns 0, or -1 when f
 * reports a write error. */
int render_svg(FILE *f, const char *title, const char *xlabel, const struct render_panel *panels,
               size_t n_panels);

/* The same in pieces, for callers that fetch one panel's data at a time:
 * open with the sum of the panels' heights, then each panel at its top (the
 * sum of the heights before it), then close (0, or -1 on a write error). */
double render_svg_panel_height(size_t n_series);
void render_svg_open(FILE *f, const char *title, double height);
void render_svg_panel(FILE *f, const struct render_panel *p, double top, const char *xlabel);
int render_svg_close(FILE *f);

#endif
