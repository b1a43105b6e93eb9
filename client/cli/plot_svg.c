/*
 * plot_svg.c: axes, smoothing and the SVG charts of `track compare --plot`
 * (see plot.h). Writes only to the FILE the caller hands in.
 *
 * What a chart shows is only what the data holds. Curves come downsampled
 * to buckets that keep their first, last, min and max points (M4), and a
 * series' line goes through all four in x order: at a bucket or two per
 * pixel that draws the same picture as the full series would, every spike
 * and fast wobble included, and never a slow wave the data lacks (a line
 * through one value per bucket aliases). Under fewer than five series, a
 * light band from each bucket's min to its max stresses the envelope; with
 * five or more, lines get thin and translucent instead, so a tangle of noisy
 * runs stays readable. A point without a finite neighbour gets a marker,
 * since a path through one point draws nothing. Axis ranges come from what
 * is drawn, widened by 3%, with round ticks inside them (matplotlib's habit)
 * rather than out to the next tick.
 */
#include "plot.h"
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- axes -------------------------------------------------------------------- */

/* Heckbert's "nice numbers" (Graphics Gems, 1990): 1, 2, 5 or 10 times a
 * power of ten, rounded to the nearest or taken as the next above. */
static double nice_num(double x, int round_it)
{
    double e = floor(log10(x)), f = x / pow(10, e), nf;

    if (round_it)
        nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    else
        nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
    return nf * pow(10, e);
}

size_t render_ticks(double lo, double hi, int target, double *out, size_t cap, double *step)
{
    size_t n = 0;

    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0;
        hi = 1;
    }
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi - lo < 1e-300 || !isfinite(hi - lo)) {
        /* one value (or a span too wide to subtract): widen around it */
        double m = fabs(lo) > 1e-300 ? fabs(lo) * 0.1 : 1;
        if (!isfinite(hi - lo)) {
            lo = -1e307;
            hi = 1e307;
        } else {
            lo -= m;
            hi += m;
        }
    }
    if (target < 2)
        target = 2;
    double d = nice_num(nice_num(hi - lo, 0) / target, 1);
    double first = floor(lo / d) * d, last = ceil(hi / d) * d;
    *step = d;
    for (double k = 0; n < cap; k++) {
        double t = first + k * d;
        /* t = k * d from a rounded start: snap to the grid so 0.1 * 3 prints
         * as 0.3, and 0 stays 0 */
        t = round(t / d) * d;
        if (fabs(t) < d * 1e-9)
            t = 0;
        out[n++] = t;
        if (t >= last - d * 1e-9)
            break;
    }
    return n;
}

void render_tick_label(double v, double step, char *buf, size_t len)
{
    if (fabs(v) < step * 1e-9)
        v = 0;
    int dec = step > 0 ? (int)-floor(log10(step) + 1e-9) : 0;
    if (dec < 0)
        dec = 0;
    if (dec > 6 || fabs(v) >= 1e7) {
        /* enough digits to tell ticks `step` apart: -3.21800e+07 and
         * -3.21801e+07, not twice -3.218e+07 */
        int dig = step > 0 && v != 0 ? (int)ceil(log10(fabs(v) / step) - 1e-9) + 1 : 4;
        dig = dig < 4 ? 4 : dig > 17 ? 17 : dig;
        snprintf(buf, len, "%.*g", dig, v);
    } else
        snprintf(buf, len, "%.*f", dec, v);
}

/* The next lower round spacing below d (1, 2, 5 times a power of ten). */
static double nice_below(double d)
{
    double e = floor(log10(d) + 1e-9), f = d / pow(10, e);
    return f > 5.0001 ? 5 * pow(10, e) : f > 2.0001 ? 2 * pow(10, e) : pow(10, e - 1) * 5;
}

static void ticks_inside(struct render_axis *a, double d)
{
    double first = ceil(a->lo / d - 1e-9) * d;

    a->step = d;
    a->n = 0;
    for (double k = 0; a->n < RENDER_AXIS_TICKS; k++) {
        double t = round((first + k * d) / d) * d;
        if (t > a->hi + d * 1e-9)
            break;
        if (fabs(t) < d * 1e-9)
            t = 0;
        a->ticks[a->n++] = t;
    }
}

/* Round clock spacings in seconds, then days. */
static double time_step(double span, int target)
{
    static const double s[] = {1,     2,     5,     10,    15,        30,       60,
                               120,   300,   600,   900,   1800,      3600,     7200,
                               10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400};
    for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        if (span / s[i] <= target)
            return s[i];
    return nice_num(span / target / 86400, 0) * 86400;
}

static long utc_offset(double t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    return localtime_r(&tt, &tm) ? tm.tm_gmtoff : 0;
}

void render_axis_make(int kind, double dlo, double dhi, int target, struct render_axis *a)
{
    memset(a, 0, sizeof(*a));
    a->kind = kind;
    if (!isfinite(dlo) || !isfinite(dhi)) {
        dlo = 0;
        dhi = 1;
    }
    if (dlo > dhi) {
        double t = dlo;
        dlo = dhi;
        dhi = t;
    }
    if (target < 2)
        target = 2;
    double span = dhi - dlo;
    if (!isfinite(span)) {
        dlo = -1e307;
        dhi = 1e307;
        span = dhi - dlo;
    }
    if (span <= fabs(dlo) * 1e-12 || span < 1e-300) {
        /* one value: widen around it */
        double m = kind == RENDER_AXIS_LOG ? 0.5 : fabs(dlo) > 1e-300 ? fabs(dlo) * 0.05 : 1;
        if (kind == RENDER_AXIS_INTEGER || kind == RENDER_AXIS_TIME)
            m = m > 1 ? m : 1;
        a->lo = dlo - m;
        a->hi = dhi + m;
    } else {
        a->lo = dlo - span * 0.03;
        a->hi = dhi + span * 0.03;
    }
    span = a->hi - a->lo;
    if (kind == RENDER_AXIS_TIME) {
        double d = time_step(span, target), off = (double)utc_offset(a->lo);
        double first = ceil((a->lo + off) / d) * d - off;
        a->step = d;
        for (double t = first; t <= a->hi && a->n < RENDER_AXIS_TICKS; t += d)
            a->ticks[a->n++] = t;
        return;
    }
    if (kind == RENDER_AXIS_LOG && span >= 3) {
        double d = ceil(span / (target + 2)); /* decades are short labels: a few more */
        ticks_inside(a, d);
        return;
    }
    if (kind == RENDER_AXIS_LOG) {
        /* under 3 decades: 1, 2 and 5 times each power of ten, thinned to
         * the target */
        double e0 = floor(a->lo), mult[3] = {1, 2, 5};
        for (int pass = 0; pass < 2; pass++) {
            a->n = 0;
            for (double e = e0; e <= ceil(a->hi) && a->n < RENDER_AXIS_TICKS; e++)
                for (int m = 0; m < 3; m++) {
                    double t = e + log10(mult[m]);
                    if (pass == 1 && m == 1)
                        continue;
                    if (t >= a->lo - 1e-9 && t <= a->hi + 1e-9 && a->n < RENDER_AXIS_TICKS)
                        a->ticks[a->n++] = t;
                }
            if (a->n <= (size_t)target + 2 && a->n >= 2)
                break;
        }
        a->step = 0;
        return;
    }
    double d = nice_num(span / target, 1);
    if (kind == RENDER_AXIS_INTEGER && d < 1)
        d = 1;
    ticks_inside(a, d);
    while (a->n < 3 && !(kind == RENDER_AXIS_INTEGER && d <= 1)) {
        /* too few round values inside: a finer spacing */
        d = nice_below(d);
        if (kind == RENDER_AXIS_INTEGER && d < 1)
            d = 1;
        ticks_inside(a, d);
    }
}

void render_axis_label(const struct render_axis *a, double v, char *buf, size_t len)
{
    if (a->kind == RENDER_AXIS_LOG) {
        snprintf(buf, len, "%g", pow(10, v));
        return;
    }
    if (a->kind == RENDER_AXIS_TIME) {
        time_t t = (time_t)floor(v);
        struct tm tm;
        const char *fmt = a->step < 60                ? "%H:%M:%S"
                          : a->hi - a->lo > 86400 * 2 ? (a->step < 86400 ? "%m-%d %H:%M" : "%m-%d")
                                                      : "%H:%M";
        if (!localtime_r(&t, &tm) || !strftime(buf, len, fmt, &tm))
            snprintf(buf, len, "%.0f", v);
        return;
    }
    render_tick_label(v, a->step, buf, len);
}

/* ---- smoothing --------------------------------------------------------------- */

void render_smooth(const double *y, size_t n, double w, double *out)
{
    double last = 0, first = NAN;
    int constant = 1;
    size_t acc = 0;

    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]))
            continue;
        if (isnan(first))
            first = y[i];
        else if (y[i] != first)
            constant = 0;
    }
    for (size_t i = 0; i < n; i++) {
        double v = y[i];
        if (!(w > 0) || constant || !isfinite(v)) {
            out[i] = v;
            continue;
        }
        last = last * w + (1 - w) * v;
        acc++;
        out[i] = last / (1 - pow(w, (double)acc));
    }
}

/* ---- M4 ---------------------------------------------------------------------- */

static void m4_fold(struct render_m4 *b, int seen, double x, double y)
{
    if (!seen) {
        for (int k = 0; k < 4; k++) {
            b->x[k] = x;
            b->y[k] = y;
        }
        return;
    }
    if (isfinite(y)) {
        if (!isfinite(b->y[1]) || y < b->y[1]) {
            b->x[1] = x;
            b->y[1] = y;
        }
        if (!isfinite(b->y[2]) || y > b->y[2]) {
            b->x[2] = x;
            b->y[2] = y;
        }
    }
    b->x[3] = x;
    b->y[3] = y;
}

size_t render_m4_downsample(const double *x, const double *y, size_t n, size_t buckets,
                            struct render_m4 *out)
{
    size_t k = 0;
    long cur = -1;

    if (n == 0 || buckets == 0)
        return 0;
    double lo = x[0], span = x[n - 1] - x[0];
    for (size_t i = 0; i < n; i++) {
        double f = span > 0 ? (x[i] - lo) / span * (double)buckets : 0;
        long b = !(f >= 0) ? 0 : f >= (double)buckets ? (long)buckets - 1 : (long)f;
        if (b < cur)
            b = cur; /* x not ascending: stay in the bucket */
        if (b != cur)
            k++;
        m4_fold(&out[k - 1], b == cur, x[i], y[i]);
        cur = b;
    }
    return k;
}

void render_m4_series(const struct render_m4 *b, size_t n, double *xs, double *ys,
                      struct render_band *band, struct render_series *s)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        int order[4] = {0, 1, 2, 3};
        /* insertion sort of four by x; ties keep first, min, max, last */
        for (int j = 1; j < 4; j++)
            for (int q = j; q > 0 && b[i].x[order[q]] < b[i].x[order[q - 1]]; q--) {
                int t = order[q];
                order[q] = order[q - 1];
                order[q - 1] = t;
            }
        band[i] = (struct render_band){b[i].x[order[0]], b[i].x[order[3]], b[i].y[1], b[i].y[2]};
        for (int j = 0; j < 4; j++) {
            double x = b[i].x[order[j]], y = b[i].y[order[j]];
            if (j && x == xs[k - 1] && (y == ys[k - 1] || (isnan(y) && isnan(ys[k - 1]))))
                continue; /* the same point in two roles */
            xs[k] = x;
            ys[k++] = y;
        }
    }
    s->x = xs;
    s->y = ys;
    s->n = k;
    s->band = band;
    s->n_band = n;
}

/* ---- SVG --------------------------------------------------------------------- */

void render_color(size_t i, char buf[8])
{
    /* Tableau's ten, distinct on white and for the common colour blindnesses,
     * then ten picked greedily for the largest CIELAB distance to all before */
    static const char *const twenty[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                         "#000000", "#000075", "#f032e6", "#637939", "#ff1493",
                                         "#8b008b", "#b8860b", "#1e90ff", "#393b79", "#800000"};
    if (i < 20) {
        memcpy(buf, twenty[i], 8);
        return;
    }
    /* then hues 137.5 degrees apart (never close to the last few), with
     * lightness stepping so that runs 10 apart differ in more than hue */
    double h = fmod((double)(i - 20) * 137.508 + 15, 360) / 60, l = 0.35 + 0.1 * (double)(i % 3);
    double s = 0.75, c = (1 - fabs(2 * l - 1)) * s, x = c * (1 - fabs(fmod(h, 2) - 1));
    double m = l - c / 2, r = 0, g = 0, b = 0;
    switch ((int)h) {
    case 0:
        r = c, g = x;
        break;
    case 1:
        r = x, g = c;
        break;
    case 2:
        g = c, b = x;
        break;
    case 3:
        g = x, b = c;
        break;
    case 4:
        r = x, b = c;
        break;
    default:
        r = c, b = x;
        break;
    }
    snprintf(buf, 8, "#%02x%02x%02x", (unsigned)lround((r + m) * 255),
             (unsigned)lround((g + m) * 255), (unsigned)lround((b + m) * 255));
}

/* Geometry, in SVG user units. */
#define SVG_W          960
#define SVG_PLOT_X     84 /* left edge of the plot area */
#define SVG_PLOT_W     836
#define SVG_PLOT_H     250
#define SVG_PANEL_H    330 /* title, plot area, x labels */
#define SVG_PANEL_T    34  /* from the panel's top to the plot area */
#define SVG_LEGEND_Y   36
#define SVG_LEGEND_H   18 /* per legend row */
#define SVG_LEGEND_C   3  /* columns */
#define SVG_LEGEND_W   292
#define SVG_MAX_SMOOTH 8192

static size_t legend_rows(const struct render_plot *o)
{
    return (o->n_names + SVG_LEGEND_C - 1) / SVG_LEGEND_C;
}

static double panels_top(const struct render_plot *o)
{
    return SVG_LEGEND_Y + SVG_LEGEND_H * (double)legend_rows(o) + 8;
}

/* y as the axis holds it: log10 on a log axis, NaN when it cannot be drawn. */
static double ty(const struct render_plot *o, double y)
{
    if (!isfinite(y))
        return NAN;
    if (o->log_y)
        return y > 0 ? log10(y) : NAN;
    return y;
}

struct extent {
    double x0, x1, y0, y1;
    size_t skipped; /* values a log axis cannot show */
    int any;
};

static void grow(struct extent *e, double x, double y)
{
    if (!isfinite(x) || !isfinite(y))
        return;
    e->any = 1;
    e->x0 = fmin(e->x0, x);
    e->x1 = fmax(e->x1, x);
    e->y0 = fmin(e->y0, y);
    e->y1 = fmax(e->y1, y);
}

static void panel_extent(const struct render_plot *o, const struct render_panel *p,
                         struct extent *e)
{
    *e = (struct extent){INFINITY, -INFINITY, INFINITY, -INFINITY, 0, 0};
    for (size_t s = 0; s < p->n_series; s++) {
        const struct render_series *r = &p->series[s];
        for (size_t i = 0; i < r->n; i++) {
            if (isfinite(r->y[i]) && o->log_y && r->y[i] <= 0)
                e->skipped++;
            grow(e, r->x[i], ty(o, r->y[i]));
        }
        for (size_t i = 0; r->band && i < r->n_band; i++) {
            const struct render_band *b = &r->band[i];
            grow(e, b->x0, ty(o, b->hi));
            grow(e, b->x1, ty(o, b->hi));
            grow(e, b->x0, ty(o, b->lo));
        }
    }
    if (!e->any) {
        e->x0 = e->y0 = 0;
        e->x1 = e->y1 = 1;
    }
}

struct frame {
    double px, py, pw, ph;
    struct render_axis xa, ya;
};

static double fx(const struct frame *f, double x)
{
    double sp = f->xa.hi - f->xa.lo;
    return f->px + (x - f->xa.lo) / (sp > 0 ? sp : 1) * f->pw;
}

static double fy(const struct frame *f, double y)
{
    double sp = f->ya.hi - f->ya.lo;
    return f->py + f->ph - (y - f->ya.lo) / (sp > 0 ? sp : 1) * f->ph;
}

/* The envelope: one closed path per run of buckets with a finite range (the
 * top edge left to right, the bottom edge back). A bucket's bottom below a
 * log axis is drawn at the axis's floor. */
static void draw_band(FILE *f, const struct render_plot *o, const struct frame *fr,
                      const struct render_series *r, const char *col, double opacity)
{
    size_t i = 0;

    while (r->band && i < r->n_band) {
        size_t j = i;
        while (j < r->n_band && isfinite(ty(o, r->band[j].hi)) && isfinite(r->band[j].x0) &&
               isfinite(r->band[j].x1))
            j++;
        if (j == i) {
            i++;
            continue;
        }
        fprintf(f, "<path fill=\"%s\" fill-opacity=\"%.2f\" stroke=\"none\" d=\"", col, opacity);
        for (size_t k = i; k < j; k++) {
            double yh = fy(fr, ty(o, r->band[k].hi));
            fprintf(f, "%s%.1f %.1f L%.1f %.1f", k == i ? "M" : " L", fx(fr, r->band[k].x0), yh,
                    fx(fr, r->band[k].x1), yh);
        }
        for (size_t k = j; k-- > i;) {
            double l = ty(o, r->band[k].lo);
            double yl = isfinite(l) ? fy(fr, l) : fr->py + fr->ph;
            fprintf(f, " L%.1f %.1f L%.1f %.1f", fx(fr, r->band[k].x1), yl, fx(fr, r->band[k].x0),
                    yl);
        }
        fprintf(f, " Z\"/>\n");
        i = j;
    }
}

/* The line through y[0..n) (a non-finite point breaks it), then a marker on
 * each point with no finite neighbour. */
static void draw_line(FILE *f, const struct render_plot *o, const struct frame *fr, const double *x,
                      const double *y, size_t n, const char *col, double width, double opacity,
                      int markers)
{
    int pen = 0;

    fprintf(f,
            "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.2f\" stroke-opacity=\"%.2f\" "
            "stroke-linejoin=\"round\" stroke-linecap=\"round\" d=\"",
            col, width, opacity);
    for (size_t i = 0; i < n; i++) {
        double v = ty(o, y[i]);
        if (!isfinite(x[i]) || !isfinite(v)) {
            pen = 0;
            continue;
        }
        fprintf(f, "%s%.1f %.1f", pen ? " L" : (i ? " M" : "M"), fx(fr, x[i]), fy(fr, v));
        pen = 1;
    }
    fprintf(f, "\"/>\n");
    for (size_t i = 0; markers && i < n; i++) {
        double v = ty(o, y[i]);
        if (!isfinite(x[i]) || !isfinite(v))
            continue;
        int left = i > 0 && isfinite(x[i - 1]) && isfinite(ty(o, y[i - 1]));
        int right = i + 1 < n && isfinite(x[i + 1]) && isfinite(ty(o, y[i + 1]));
        if (!left && !right)
            fprintf(f, "<circle class=\"marker\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                    fx(fr, x[i]), fy(fr, v), col);
    }
}

void render_svg_panel(FILE *f, const struct render_plot *o, const struct render_panel *p,
                      size_t index)
{
    struct extent e;
    struct frame fr;
    double top = panels_top(o) + SVG_PANEL_H * (double)index;
    int many = p->n_series >= 5;

    panel_extent(o, p, &e);
    fr.px = SVG_PLOT_X;
    fr.py = top + SVG_PANEL_T;
    fr.pw = SVG_PLOT_W;
    fr.ph = SVG_PLOT_H;
    render_axis_make(o->x_kind, e.x0, e.x1, 8, &fr.xa);
    render_axis_make(o->log_y ? RENDER_AXIS_LOG : RENDER_AXIS_LINEAR, e.y0, e.y1, 5, &fr.ya);

    fprintf(f,
            "<g class=\"panel\">\n<text x=\"%d\" y=\"%.1f\" font-size=\"15\" "
            "font-weight=\"bold\">",
            SVG_PLOT_X, top + 22);
    render_xml_put(f, p->title);
    fprintf(f, "</text>\n");
    for (size_t i = 0; i < fr.xa.n; i++) {
        char lab[48];
        double x = fx(&fr, fr.xa.ticks[i]);
        render_axis_label(&fr.xa, fr.xa.ticks[i], lab, sizeof(lab));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                x, fr.py, x, fr.py + fr.ph);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", x,
                fr.py + fr.ph, x, fr.py + fr.ph + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x,
                fr.py + fr.ph + 19, lab);
    }
    for (size_t i = 0; i < fr.ya.n; i++) {
        char lab[48];
        double y = fy(&fr, fr.ya.ticks[i]);
        render_axis_label(&fr.ya, fr.ya.ticks[i], lab, sizeof(lab));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n",
                fr.px, y, fr.px + fr.pw, y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
                fr.px - 5, y, fr.px, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", fr.px - 8, y + 4,
                lab);
    }
    fprintf(f,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            fr.px, fr.py, fr.pw, fr.ph);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", fr.px + fr.pw / 2,
            fr.py + fr.ph + 38);
    render_xml_put(f, o->xlabel ? o->xlabel : "");
    fprintf(f, "</text>\n");
    if (!e.any)
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888\">"
                "no %svalues</text>\n",
                fr.px + fr.pw / 2, fr.py + fr.ph / 2, o->log_y ? "positive " : "finite ");
    if (e.skipped)
        fprintf(f,
                "<text class=\"note\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#a00\">"
                "log scale: %zu value%s &lt;= 0 not drawn</text>\n",
                fr.px + fr.pw, top + 22, e.skipped, e.skipped == 1 ? "" : "s");
    fprintf(f,
            "<clipPath id=\"clip%zu\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
            "height=\"%.1f\"/></clipPath>\n<g clip-path=\"url(#clip%zu)\">\n",
            index, fr.px, fr.py, fr.pw, fr.ph, index);
    double width = many ? 0.8 : 1.3, alpha = many ? 0.55 : 0.9, band = 0.18;
    int smooth = o->smooth > 0;
    for (size_t s = 0; !many && s < p->n_series; s++) {
        char col[8];
        render_color(s, col);
        draw_band(f, o, &fr, &p->series[s], col, smooth ? band * 0.6 : band);
    }
    for (size_t s = 0; s < p->n_series; s++) {
        const struct render_series *r = &p->series[s];
        char col[8];
        render_color(s, col);
        draw_line(f, o, &fr, r->x, r->y, r->n, col, smooth ? width * 0.8 : width,
                  smooth ? 0.25 : alpha, !smooth);
    }
    for (size_t s = 0; smooth && s < p->n_series; s++) {
        const struct render_series *r = &p->series[s];
        size_t n = r->n < SVG_MAX_SMOOTH ? r->n : SVG_MAX_SMOOTH;
        double *sm = malloc(sizeof(double) * (n ? n : 1));
        char col[8];
        if (!sm)
            continue;
        render_color(s, col);
        render_smooth(r->y, n, o->smooth, sm);
        draw_line(f, o, &fr, r->x, sm, n, col, width + 0.4, many ? 0.9 : 1.0, 1);
        free(sm);
    }
    fprintf(f, "</g>\n</g>\n");
}

void render_svg_open(FILE *f, const struct render_plot *o, size_t n_panels)
{
    double h = panels_top(o) + SVG_PANEL_H * (double)(n_panels ? n_panels : 1) + 8;

    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
            "viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n<title>",
            SVG_W, h, SVG_W, h);
    render_xml_put(f, o->title ? o->title : "");
    fprintf(f, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"16\">", SVG_PLOT_X);
    render_xml_put(f, o->title ? o->title : "");
    if (o->smooth > 0 || o->log_y) {
        char sm[48] = "";
        if (o->smooth > 0)
            snprintf(sm, sizeof(sm), "smoothing %.3g%s", o->smooth, o->log_y ? ", " : "");
        fprintf(f, "<tspan dx=\"16\" fill=\"#666\" font-size=\"12\">%s%s</tspan>", sm,
                o->log_y ? "log scale" : "");
    }
    fprintf(f, "</text>\n<g class=\"legend\">\n");
    for (size_t i = 0; i < o->n_names; i++) {
        char col[8], name[200];
        double x = SVG_PLOT_X + SVG_LEGEND_W * (double)(i % SVG_LEGEND_C);
        double y = SVG_LEGEND_Y + SVG_LEGEND_H * (double)(i / SVG_LEGEND_C);
        render_color(i, col);
        render_fit(o->names[i] ? o->names[i] : "", 40, name, sizeof(name));
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"3\"/>\n",
                x, y + 8, x + 18, y + 8, col);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">", x + 24, y + 12);
        render_xml_put(f, name);
        fprintf(f, "<title>");
        render_xml_put(f, o->names[i] ? o->names[i] : "");
        fprintf(f, "</title></text>\n");
    }
    fprintf(f, "</g>\n");
}

int render_svg_close(FILE *f)
{
    fprintf(f, "</svg>\n");
    return ferror(f) ? -1 : 0;
}

int render_svg(FILE *f, const struct render_plot *o, const struct render_panel *panels,
               size_t n_panels)
{
    render_svg_open(f, o, n_panels);
    for (size_t i = 0; i < n_panels; i++)
        render_svg_panel(f, o, &panels[i], i);
    return render_svg_close(f);
}
