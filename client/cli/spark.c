/*
 * spark.c: sparklines, one Unicode block character per value (see plot.h).
 */
#include "plot.h"

#include <math.h>
#include <string.h>

/* ---- sparklines -------------------------------------------------------------- */

size_t render_sparkline(const double *v, size_t n, char *buf, size_t len)
{
    static const char *const bars[8] = {"\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83",
                                        "\xe2\x96\x84", "\xe2\x96\x85", "\xe2\x96\x86",
                                        "\xe2\x96\x87", "\xe2\x96\x88"};
    double lo = INFINITY, hi = -INFINITY;
    size_t cells = 0, off = 0;

    if (len == 0)
        return 0;
    buf[0] = '\0';
    if (n > RENDER_SPARK_MAX)
        n = RENDER_SPARK_MAX;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(v[i])) {
            lo = v[i] < lo ? v[i] : lo;
            hi = v[i] > hi ? v[i] : hi;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *cell;
        if (isnan(v[i])) {
            cell = " ";
        } else if (isinf(v[i])) {
            cell = v[i] > 0 ? bars[7] : bars[0];
        } else if (hi > lo) {
            /* (v - lo) / (hi - lo) overflows to inf for a range beyond
             * DBL_MAX; scaling both by 0.5 first keeps it finite */
            double t = (0.5 * v[i] - 0.5 * lo) / (0.5 * hi - 0.5 * lo);
            long k = lround(t * 7);
            cell = bars[k < 0 ? 0 : k > 7 ? 7 : k];
        } else {
            cell = bars[3]; /* a flat line sits mid-height */
        }
        size_t cl = strlen(cell);
        if (off + cl + 1 > len)
            break;
        memcpy(buf + off, cell, cl + 1);
        off += cl;
        cells++;
    }
    return cells;
}

size_t render_sparkline_range(const double *lo, const double *hi, size_t n, char *buf, size_t len)
{
    static const char *const bars[8] = {"\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83",
                                        "\xe2\x96\x84", "\xe2\x96\x85", "\xe2\x96\x86",
                                        "\xe2\x96\x87", "\xe2\x96\x88"};
    double a = INFINITY, b = -INFINITY;
    size_t cells = 0, off = 0;

    if (len == 0)
        return 0;
    buf[0] = '\0';
    if (n > RENDER_SPARK_MAX)
        n = RENDER_SPARK_MAX;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(lo[i]))
            a = lo[i] < a ? lo[i] : a;
        if (isfinite(hi[i])) {
            b = hi[i] > b ? hi[i] : b;
            a = hi[i] < a ? hi[i] : a; /* a bucket whose lo is not finite */
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *cell;
        double v = hi[i];
        if (isnan(v)) {
            cell = " ";
        } else if (isinf(v)) {
            cell = v > 0 ? bars[7] : bars[0];
        } else if (b > a) {
            double t = (0.5 * v - 0.5 * a) / (0.5 * b - 0.5 * a);
            long k = lround(t * 7);
            cell = bars[k < 0 ? 0 : k > 7 ? 7 : k];
        } else {
            cell = bars[3];
        }
        size_t cl = strlen(cell);
        if (off + cl + 1 > len)
            break;
        memcpy(buf + off, cell, cl + 1);
        off += cl;
        cells++;
    }
    return cells;
}

size_t render_spark_rows(const double *v, size_t n, double lo, double hi, int rows, char **lines,
                         size_t len)
{
    /* index k: k eighths of a cell filled, from the bottom */
    static const char *const part[9] = {" ",
                                        "\xe2\x96\x81",
                                        "\xe2\x96\x82",
                                        "\xe2\x96\x83",
                                        "\xe2\x96\x84",
                                        "\xe2\x96\x85",
                                        "\xe2\x96\x86",
                                        "\xe2\x96\x87",
                                        "\xe2\x96\x88"};
    size_t cells = n > RENDER_SPARK_MAX ? RENDER_SPARK_MAX : n;

    if (rows < 1)
        rows = 1;
    if (rows > 16)
        rows = 16;
    if (len < 1)
        return 0;
    if (cells > (len - 1) / 3)
        cells = (len - 1) / 3;
    int levels = rows * 8;
    for (int r = 0; r < rows; r++) {
        size_t off = 0;
        for (size_t i = 0; i < cells; i++) {
            long fill; /* eighths filled from the bottom of the whole chart */
            if (isnan(v[i]))
                fill = -1;
            else if (!(hi > lo))
                fill = levels / 2; /* a flat series sits mid-height */
            else {
                double t = (0.5 * v[i] - 0.5 * lo) / (0.5 * hi - 0.5 * lo);
                t = t < 0 ? 0 : t > 1 ? 1 : t;
                /* the lowest value still shows one eighth: "▁", not blank */
                fill = 1 + lround(t * (levels - 1));
            }
            long here = fill - (long)(rows - 1 - r) * 8; /* eighths within this row */
            const char *cell = fill < 0 || here <= 0 ? part[0] : here >= 8 ? part[8] : part[here];
            size_t cl = strlen(cell);
            memcpy(lines[r] + off, cell, cl);
            off += cl;
        }
        lines[r][off] = '\0';
    }
    return cells;
}
