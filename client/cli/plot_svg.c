/*
 * plot_svg.c: round axis ticks and the SVG charts of `track compare --plot`
 * (see plot.h). Writes only to the FILE the caller hands in.
 */
#include "plot.h"
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    if (dec > 6 || fabs(v) >= 1e7)
        snprintf(buf, len, "%.4g", v);
    else
        snprintf(buf, len, "%.*f", dec, v);
}

/* ---- SVG --------------------------------------------------------------------- */

void render_color(size_t i, char buf[8])
{
    /* Tableau's ten: distinct on white and for the common colour blindnesses */
    static const char *const ten[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    if (i < 10) {
        memcpy(buf, ten[i], 8);
        return;
    }
    /* then hues 137.5 degrees apart (never close to the last few), with
     * lightness stepping so that runs 10 apart differ in more than hue */
    double h = fmod((double)(i - 10) * 137.508 + 15, 360) / 60, l = 0.35 + 0.1 * (double)(i % 3);
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

/* Geometry of one panel, in SVG user units. */
#define SVG_W         960
#define SVG_PLOT_X    80 /* left edge of the plot area */
#define SVG_PLOT_W    600
#define SVG_PLOT_H    240
#define SVG_TOP       46 /* from the panel's top to the plot area */
#define SVG_LEGEND_X  710
#define SVG_LEGEND_H  18 /* per legend row */
#define SVG_MAX_TICKS 16

double render_svg_panel_height(size_t n_series)
{
    double plot = SVG_TOP + SVG_PLOT_H + 56,
           legend = SVG_TOP + SVG_LEGEND_H * (double)n_series + 20;
    return plot > legend ? plot : legend;
}

static void data_range(const struct render_panel *p, double *x0, double *x1, double *y0, double *y1,
                       int *any)
{
    *x0 = *y0 = INFINITY;
    *x1 = *y1 = -INFINITY;
    *any = 0;
    for (size_t s = 0; s < p->n_series; s++) {
        const struct render_series *r = &p->series[s];
        for (size_t i = 0; i < r->n; i++) {
            if (!isfinite(r->x[i]) || !isfinite(r->y[i]))
                continue;
            *any = 1;
            *x0 = fmin(*x0, r->x[i]);
            *x1 = fmax(*x1, r->x[i]);
            *y0 = fmin(*y0, r->y[i]);
            *y1 = fmax(*y1, r->y[i]);
        }
    }
    if (!*any) {
        *x0 = *y0 = 0;
        *x1 = *y1 = 1;
    }
}

void render_svg_panel(FILE *f, const struct render_panel *p, double top, const char *xlabel)
{
    double x0, x1, y0, y1, xs, ys, xt[SVG_MAX_TICKS + 2], yt[SVG_MAX_TICKS + 2];
    int any;
    const double px = SVG_PLOT_X, py = top + SVG_TOP, pw = SVG_PLOT_W, ph = SVG_PLOT_H;

    data_range(p, &x0, &x1, &y0, &y1, &any);
    size_t nx = render_ticks(x0, x1, 6, xt, SVG_MAX_TICKS + 2, &xs);
    if (xs < 1) {
        /* x is a step, a whole number: no ticks between two steps */
        double a = floor(x0), b = ceil(x1) > a ? ceil(x1) : a + 1;
        if (b - a < 2) {
            a -= 1;
            b += 1;
        }
        nx = render_ticks(a, b, b - a < 6 ? (int)(b - a) : 6, xt, SVG_MAX_TICKS + 2, &xs);
    }
    size_t ny = render_ticks(y0, y1, 5, yt, SVG_MAX_TICKS + 2, &ys);
    /* the outer ticks are the axis range, so every point lands inside */
    double ax0 = xt[0], ax1 = xt[nx - 1], ay0 = yt[0], ay1 = yt[ny - 1];
    double xsp = ax1 > ax0 ? ax1 - ax0 : 1, ysp = ay1 > ay0 ? ay1 - ay0 : 1;

    fprintf(f,
            "<g class=\"panel\">\n<text x=\"%g\" y=\"%.1f\" font-size=\"15\" "
            "font-weight=\"bold\">",
            px, top + 24);
    render_xml_put(f, p->title);
    fprintf(f, "</text>\n");
    fprintf(f,
            "<rect x=\"%g\" y=\"%.1f\" width=\"%g\" height=\"%g\" fill=\"none\" "
            "stroke=\"#444\"/>\n",
            px, py, pw, ph);
    for (size_t i = 0; i < nx; i++) {
        char lab[48];
        double x = px + (xt[i] - ax0) / xsp * pw;
        render_tick_label(xt[i], xs, lab, sizeof(lab));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x,
                py, x, py + ph);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", x,
                py + ph, x, py + ph + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", x,
                py + ph + 19, lab);
    }
    for (size_t i = 0; i < ny; i++) {
        char lab[48];
        double y = py + ph - (yt[i] - ay0) / ysp * ph;
        render_tick_label(yt[i], ys, lab, sizeof(lab));
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", px,
                y, px + pw, y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n",
                px - 5, y, px, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", px - 8, y + 4,
                lab);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", px + pw / 2, py + ph + 40);
    render_xml_put(f, xlabel);
    fprintf(f, "</text>\n");
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 %.1f %.1f)\">",
            px - 58, py + ph / 2, px - 58, py + ph / 2);
    render_xml_put(f, p->title);
    fprintf(f, "</text>\n");
    if (!any)
        fprintf(f,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888\">"
                "no finite values</text>\n",
                px + pw / 2, py + ph / 2);
    for (size_t s = 0; s < p->n_series; s++) {
        const struct render_series *r = &p->series[s];
        char col[8];
        render_color(s, col);
        fprintf(f,
                "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
                "stroke-linejoin=\"round\" points=\"",
                col);
        int first = 1;
        for (size_t i = 0; i < r->n; i++) {
            if (!isfinite(r->x[i]) || !isfinite(r->y[i]))
                continue;
            fprintf(f, "%s%.1f,%.1f", first ? "" : " ", px + (r->x[i] - ax0) / xsp * pw,
                    py + ph - (r->y[i] - ay0) / ysp * ph);
            first = 0;
        }
        fprintf(f, "\"><title>");
        render_xml_put(f, r->name);
        fprintf(f, "</title></polyline>\n");
    }
    for (size_t s = 0; s < p->n_series; s++) {
        char col[8];
        double y = top + SVG_TOP + SVG_LEGEND_H * (double)s;
        render_color(s, col);
        fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"14\" height=\"4\" fill=\"%s\"/>\n",
                SVG_LEGEND_X, y + 5, col);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\">", SVG_LEGEND_X + 20, y + 11);
        render_xml_put(f, p->series[s].name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</g>\n");
}

void render_svg_open(FILE *f, const char *title, double height)
{
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
            "viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n<title>",
            SVG_W, height, SVG_W, height);
    render_xml_put(f, title);
    fprintf(f, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
}

int render_svg_close(FILE *f)
{
    fprintf(f, "</svg>\n");
    return ferror(f) ? -1 : 0;
}

int render_svg(FILE *f, const char *title, const char *xlabel, const struct render_panel *panels,
               size_t n_panels)
{
    double h = 0, top = 0;

    for (size_t i = 0; i < n_panels; i++)
        h += render_svg_panel_height(panels[i].n_series);
    render_svg_open(f, title, h > 0 ? h : 60);
    for (size_t i = 0; i < n_panels; i++) {
        render_svg_panel(f, &panels[i], top, xlabel);
        top += render_svg_panel_height(panels[i].n_series);
    }
    return render_svg_close(f);
}
