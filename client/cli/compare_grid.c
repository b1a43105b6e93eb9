/*
 * compare_grid.c: the rows of `track compare` as text (compare.h): a grid
 * of a label per row and a cell per run, filled from a struct cmp: run,
 * name, status, duration; the params shown; per metric its last, min and
 * max value, its point count and its trend (for people) or best flag (for
 * CSV); when a run has traces, their rollups (compare_trace.c); per
 * feedback name its cell (compare_feedback.c). The layouts
 * (compare_print.c) only place these strings.
 */
#include "compare.h"
#include "render.h"

#include <stdlib.h>
#include <string.h>

void cmp_grid_free(struct cmp_grid *g)
{
    for (size_t r = 0; r < g->nrows; r++) {
        free(g->labels[r]);
        for (size_t c = 0; c < g->ncols; c++)
            free(g->cells[r * g->ncols + c]);
    }
    free(g->labels);
    free(g->cells);
    free(g->flags);
    memset(g, 0, sizeof(*g));
}

/* Appends a row labelled `label` with empty cells; returns its index or -1. */
long cmp_grid_row(struct cmp_grid *g, const char *label)
{
    if (g->nrows == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        char **l = realloc(g->labels, cap * sizeof(*l));
        if (l)
            g->labels = l;
        char **c = realloc(g->cells, cap * g->ncols * sizeof(*c));
        if (c)
            g->cells = c;
        unsigned char *f = realloc(g->flags, cap * g->ncols);
        if (f)
            g->flags = f;
        if (!l || !c || !f)
            return -1;
        g->cap = cap;
    }
    size_t r = g->nrows;
    g->labels[r] = strdup(label);
    for (size_t c = 0; c < g->ncols; c++) {
        g->cells[r * g->ncols + c] = NULL;
        g->flags[r * g->ncols + c] = 0;
    }
    g->nrows++;
    return g->labels[r] ? (long)r : -1;
}

int cmp_grid_set(struct cmp_grid *g, long r, size_t c, const char *text, int flags)
{
    char **cell = &g->cells[(size_t)r * g->ncols + c];
    free(*cell);
    *cell = strdup(text);
    g->flags[(size_t)r * g->ncols + c] = (unsigned char)flags;
    return *cell ? 0 : -1;
}

const char *cmp_grid_cell(const struct cmp_grid *g, size_t r, size_t c)
{
    const char *s = g->cells[r * g->ncols + c];
    return s ? s : "";
}

/* Fills the grid. `machine`: CSV labels and full-precision values, no
 * sparklines; else the human labels and compact values. */
int cmp_grid_build(const struct cmp *x, struct cmp_grid *g, int machine)
{
    char buf[512], lab[600];
    long r;

    memset(g, 0, sizeof(*g));
    g->ncols = x->n;
    if (!machine) {
        if ((r = cmp_grid_row(g, "run")) < 0)
            return -1;
        for (size_t i = 0; i < x->n; i++) {
            snprintf(buf, sizeof(buf), "%.8s", x->hex[i]);
            if (cmp_grid_set(g, r, i, buf, 0))
                return -1;
        }
    }
    if ((r = cmp_grid_row(g, "name")) < 0)
        return -1;
    for (size_t i = 0; i < x->n; i++) {
        if (machine)
            snprintf(buf, sizeof(buf), "%s", x->runs[i].name);
        else
            render_fit_middle(x->runs[i].name, CMP_CELL_COL_MAX, buf, sizeof(buf));
        if (cmp_grid_set(g, r, i, buf, 0))
            return -1;
    }
    if ((r = cmp_grid_row(g, "status")) < 0)
        return -1;
    for (size_t i = 0; i < x->n; i++)
        if (cmp_grid_set(g, r, i, cli_status_name(x->runs[i].status), 0))
            return -1;
    if ((r = cmp_grid_row(g, machine ? "duration_ms" : "duration")) < 0)
        return -1;
    for (size_t i = 0; i < x->n; i++) {
        if (x->duration[i] < 0)
            snprintf(buf, sizeof(buf), machine ? "" : "-");
        else if (machine)
            snprintf(buf, sizeof(buf), "%lld", (long long)x->duration[i]);
        else
            cli_fmt_duration(x->duration[i], buf, sizeof(buf));
        if (cmp_grid_set(g, r, i, buf, 0))
            return -1;
    }
    for (size_t p = 0; p < x->np; p++) {
        snprintf(lab, sizeof(lab), machine ? "params.%s" : "param %s", x->params[p]);
        if ((r = cmp_grid_row(g, lab)) < 0)
            return -1;
        const char *base = cmp_param_of(&x->runs[0], x->params[p]);
        for (size_t i = 0; i < x->n; i++) {
            const char *v = cmp_param_of(&x->runs[i], x->params[p]);
            /* highlighted: differs from the first run, the baseline */
            int differs = i > 0 && (!v != !base || (v && strcmp(v, base) != 0));
            if (machine)
                snprintf(buf, sizeof(buf), "%s", v ? v : "");
            else
                render_fit(v ? v : "-", CMP_CELL_COL_MAX, buf, sizeof(buf));
            if (cmp_grid_set(g, r, i, buf, differs ? CMP_CELL_DIFFER : 0))
                return -1;
        }
    }
    static const char *const stats[] = {"last", "min", "max", "points", "trend", "best"};
    for (size_t m = 0; m < x->nm; m++) {
        for (size_t s = 0; s < 6; s++) {
            if ((machine && s == 4) || (!machine && s == 5))
                continue;
            if (machine)
                snprintf(lab, sizeof(lab), "metrics.%s.%s", x->metrics[m],
                         s == 3 ? "count" : stats[s]);
            else
                snprintf(lab, sizeof(lab), "%s %s", x->metrics[m], stats[s]);
            if ((r = cmp_grid_row(g, lab)) < 0)
                return -1;
            for (size_t i = 0; i < x->n; i++) {
                const struct track_metric_summary *ms = cmp_metric_of(&x->runs[i], x->metrics[m]);
                int flags = 0;
                double v = 0;
                if (!ms) {
                    snprintf(buf, sizeof(buf), machine ? "" : "-");
                } else if (s == 3) {
                    snprintf(buf, sizeof(buf), "%lld", (long long)ms->count);
                } else if (s == 4) {
                    snprintf(buf, sizeof(buf), "%s", x->spark[m][i] ? x->spark[m][i] : "-");
                } else if (s == 5) {
                    snprintf(buf, sizeof(buf), "%s", x->best[m][i] ? "true" : "false");
                } else {
                    v = s == 0 ? ms->last : s == 1 ? ms->min : ms->max;
                    if (machine)
                        render_double(v, buf, sizeof(buf));
                    else
                        render_num(v, buf, sizeof(buf));
                    if (s == 0 && x->best[m][i])
                        flags = CMP_CELL_BEST;
                }
                if (cmp_grid_set(g, r, i, buf, flags))
                    return -1;
            }
        }
    }
    for (size_t k = 0; x->tr.any && k < CMP_TRACE_ROWS; k++) {
        if ((r = cmp_grid_row(g, cmp_trace_label(k, machine))) < 0)
            return -1;
        for (size_t i = 0; i < x->n; i++) {
            cmp_trace_cell(&x->tr, k, i, machine, buf, sizeof(buf));
            if (cmp_grid_set(g, r, i, buf, 0))
                return -1;
        }
    }
    for (size_t k = 0; k < x->fb.nn; k++) {
        snprintf(lab, sizeof(lab), machine ? "feedback.%s" : "feedback %s", x->fb.names[k]);
        if ((r = cmp_grid_row(g, lab)) < 0)
            return -1;
        for (size_t i = 0; i < x->n; i++) {
            cmp_feedback_cell(&x->fb, k, i, machine, buf, sizeof(buf));
            if (cmp_grid_set(g, r, i, buf, 0))
                return -1;
        }
    }
    return 0;
}
