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
