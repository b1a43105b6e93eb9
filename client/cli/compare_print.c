/*
 * compare_print.c: the four outputs of `track compare` (compare.h): the
 * grid (compare_grid.c) as a table with a column per run folded to the
 * terminal's width, as the turned table (a row per run, a column per param
 * and metric), as a GitHub markdown table or as CSV; and the JSON document,
 * built from the struct cmp itself, since it keeps numbers as numbers.
 */
#include "compare.h"
#include "render.h"

#include <string.h>

/* The runs-as-columns table's label width and column widths, and the
 * blocks it folds into at the terminal's width (their first columns in
 * starts); the count of blocks. */
static size_t table_layout(const struct cmp_grid *g, size_t *label_w, size_t *col_w, size_t *starts)
{
    *label_w = 0;
    for (size_t r = 0; r < g->nrows; r++) {
        size_t w = render_width(g->labels[r]);
        *label_w = w > *label_w ? w : *label_w;
    }
    *label_w = *label_w > CMP_LABEL_COL_MAX ? CMP_LABEL_COL_MAX : *label_w;
    for (size_t c = 0; c < g->ncols; c++) {
        col_w[c] = 0;
        for (size_t r = 0; r < g->nrows; r++) {
            /* the best mark " *" is added at print time */
            size_t w = render_width(cmp_grid_cell(g, r, c)) +
                       ((g->flags[r * g->ncols + c] & CMP_CELL_BEST) ? 2 : 0);
            col_w[c] = w > col_w[c] ? w : col_w[c];
        }
    }
    return render_fold(*label_w, col_w, g->ncols, (size_t)cli_term_width(), 2, starts);
}

void cmp_print_table(const struct cmp_grid *g, int colour)
{
    size_t label_w, col_w[CMP_MAX_RUNS], starts[CMP_MAX_RUNS];
    char lab[CMP_LABEL_COL_MAX * 4 + 8];
    size_t ng = table_layout(g, &label_w, col_w, starts);
    for (size_t k = 0; k < ng; k++) {
        size_t c0 = starts[k], c1 = k + 1 < ng ? starts[k + 1] : g->ncols;
        if (k)
            fputc('\n', stdout);
        for (size_t r = 0; r < g->nrows; r++) {
            render_fit(g->labels[r], CMP_LABEL_COL_MAX, lab, sizeof(lab));
            render_pad(stdout, lab, label_w, 0, NULL);
            for (size_t c = c0; c < c1; c++) {
                int fl = g->flags[r * g->ncols + c];
                char cell[600];
                const char *sgr = NULL;
                snprintf(cell, sizeof(cell), "%s%s", cmp_grid_cell(g, r, c),
                         (fl & CMP_CELL_BEST) ? " *" : "");
                if (colour && (fl & CMP_CELL_BEST))
                    sgr = "1";
                else if (colour && (fl & CMP_CELL_DIFFER))
                    sgr = "33";
                fputs("  ", stdout);
                /* no trailing blanks after the last column */
                render_pad(stdout, cell, c + 1 < c1 ? col_w[c] : 0, 0, sgr);
            }
            fputc('\n', stdout);
        }
    }
}

/* How many blocks the runs-as-columns table folds into at the terminal's
 * width (as print_table lays it out). */
size_t cmp_table_blocks(const struct cmp_grid *g)
{
    size_t label_w, col_w[CMP_MAX_RUNS], starts[CMP_MAX_RUNS];
    return table_layout(g, &label_w, col_w, starts);
}

/* The transposed table (--columns metrics, or when it needs fewer blocks
 * than a column per run): a row per run; columns run, name, status,
 * duration, the params shown (params.K) and each metric's last value
 * (metrics.K, the best marked *), the language's names as in `track runs`;
 * then the trace rollups but tokens in and out, under their row labels, and
 * each feedback name (feedback.NAME). Columns that do not fit fold into further blocks, each
 * repeating run and name. With `dry`, prints nothing and returns the number of blocks. */
size_t cmp_print_transposed(const struct cmp *x, const struct cmp_grid *g, int colour, int dry)
{
    enum { MAXC = 4 + CMP_MAX_PARAMS + CMP_MAX_METRICS + CMP_FB_NAMES + CMP_TRACE_ROWS };
    size_t rows[MAXC], nr = 0; /* grid rows shown as columns */
    char *heads[MAXC];         /* their whole labels, malloc'd */
    size_t w[MAXC], full[MAXC], starts[MAXC];
    size_t width = (size_t)cli_term_width(), p = 0, m = 0;
    char buf[600];

    for (size_t r = 0; r < g->nrows; r++) {
        const char *l = g->labels[r];
        char label[600];
        if (r < 4) {
            snprintf(label, sizeof(label), "%s", l);
        } else if (strncmp(l, "param ", 6) == 0 && p < x->np) {
            snprintf(label, sizeof(label), "params.%s", x->params[p++]);
        } else if (m < x->nm && strlen(l) == strlen(x->metrics[m]) + 5 &&
                   strcmp(l + strlen(x->metrics[m]), " last") == 0) {
            snprintf(label, sizeof(label), "metrics.%s", x->metrics[m++]);
        } else if (x->tr.any && cmp_trace_turned(l)) {
            snprintf(label, sizeof(label), "%s", l);
        } else if (strncmp(l, "feedback ", 9) == 0) {
            snprintf(label, sizeof(label), "feedback.%s", l + 9);
        } else {
            continue;
        }
        size_t cw = 0;
        for (size_t c = 0; c < g->ncols; c++) {
            size_t cellw =
                r == 1 ? render_width(x->runs[c].name) : render_width(cmp_grid_cell(g, r, c));
            cellw += r >= 4 && strncmp(l, "param ", 6) != 0 ? 2 : 0; /* " *" or "  " */
            cw = cellw > cw ? cellw : cw;
        }
        size_t cap = r == 1 ? 24 : CMP_CELL_COL_MAX + 2, lw = render_width(label);
        cw = cw > cap ? cap : cw;
        /* a label gives way to narrow values down to 12 columns, and takes
         * its whole width back where the line has room */
        size_t hw = lw <= cw ? lw : cw > 12 ? cw : lw < 12 ? lw : 12;
        w[nr] = cw > hw ? cw : hw;
        full[nr] = lw > w[nr] ? (lw > 40 ? 40 : lw) : w[nr];
        if (!(heads[nr] = strdup(label)))
            break;
        rows[nr++] = r;
    }
    /* names give way (down to 12 columns) when that saves a fold */
    size_t total = 0;
    for (size_t j = 0; j < nr; j++)
        total += w[j] + (j ? 2 : 0);
    if (nr > 1 && total > width && w[1] > 12 && total - width <= w[1] - 12)
        w[1] -= total - width;
    /* run and name lead every block */
    size_t lead = w[0] + 2 + (nr > 1 ? w[1] : 0);
    size_t ng = nr > 2 ? render_fold(lead, w + 2, nr - 2, width, 2, starts) : 0;
    if (ng == 0) {
        ng = 1;
        starts[0] = 0;
    }
    for (size_t k = 0; k < ng; k++) {
        size_t c0 = 2 + starts[k], c1 = k + 1 < ng ? 2 + starts[k + 1] : nr, used = lead;
        for (size_t j = c0; j < c1; j++)
            used += 2 + w[j];
        for (size_t j = c0; j < c1 && used < width; j++) {
            size_t more = full[j] > w[j] ? full[j] - w[j] : 0;
            more = more < width - used ? more : width - used;
            w[j] += more;
            used += more;
        }
    }
    for (size_t k = 0; k < ng && !dry; k++) {
        size_t c0 = 2 + starts[k], c1 = k + 1 < ng ? 2 + starts[k + 1] : nr;
        if (k)
            fputc('\n', stdout);
        for (size_t line = 0; line <= g->ncols; line++) {
            for (size_t j = 0; j < c1; j++) {
                if (j >= 2 && j < c0)
                    continue;
                size_t r = rows[j], i = line - 1;
                int fl = line ? g->flags[r * g->ncols + i] : 0, last = j + 1 == c1;
                const char *sgr = NULL;
                if (line == 0)
                    render_fit_middle(heads[j], w[j], buf, sizeof(buf));
                else if (r == 1)
                    render_fit_middle(x->runs[i].name, w[j], buf, sizeof(buf));
                else /* "0.25 *" and "0.31  ": the digits stay aligned */
                    snprintf(buf, sizeof(buf), "%s%s", cmp_grid_cell(g, r, i),
                             (fl & CMP_CELL_BEST)  ? " *"
                             : j >= 4 + p && !last ? "  "
                                                   : "");
                if (colour && (fl & CMP_CELL_BEST))
                    sgr = "1";
                else if (colour && (fl & CMP_CELL_DIFFER))
                    sgr = "33";
                if (j)
                    fputs("  ", stdout);
                int right = j >= 4 + p;
                /* no trailing blanks after a left-aligned last column */
                size_t pw = last && !right ? 0 : w[j];
                if (last && right && line && !(fl & CMP_CELL_BEST))
                    pw -= 2; /* the "  " that keeps digits aligned, left out at the end */
                render_pad(stdout, buf, pw, right, sgr);
            }
            fputc('\n', stdout);
        }
    }
    for (size_t j = 0; j < nr; j++)
        free(heads[j]);
    return ng;
}

/* A markdown table cell: '|' escaped, line breaks as spaces. */
static void md_put(const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", stdout);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', stdout);
        else
            fputc(*s, stdout);
    }
}

void cmp_print_markdown(const struct cmp_grid *g)
{
    for (size_t r = 0; r < g->nrows; r++) {
        fputs("|", stdout);
        fputc(' ', stdout);
        md_put(g->labels[r]);
        for (size_t c = 0; c < g->ncols; c++) {
            int best = g->flags[r * g->ncols + c] & CMP_CELL_BEST;
            fputs(" | ", stdout);
            if (best)
                fputs("**", stdout);
            md_put(cmp_grid_cell(g, r, c));
            if (best)
                fputs("**", stdout);
        }
        fputs(" |\n", stdout);
        if (r == 0) {
            fputs("|---", stdout);
            for (size_t c = 0; c < g->ncols; c++)
                fputs("|---", stdout);
            fputs("|\n", stdout);
        }
    }
}

void cmp_print_csv(const struct cmp *x, const struct cmp_grid *g)
{
    fputs("row", stdout);
    for (size_t i = 0; i < x->n; i++)
        printf(",%s", x->hex[i]);
    fputc('\n', stdout);
    for (size_t r = 0; r < g->nrows; r++) {
        render_csv_put(stdout, g->labels[r]);
        for (size_t c = 0; c < g->ncols; c++) {
            fputc(',', stdout);
            render_csv_put(stdout, cmp_grid_cell(g, r, c));
        }
        fputc('\n', stdout);
    }
}

int cmp_print_json(const struct cmp *x)
{
    json_t *root = json_object(), *runs = json_array(), *diff = json_array();

    for (size_t i = 0; i < x->n; i++) {
        const struct track_run_info *r = &x->runs[i];
        json_t *o = json_object(), *params = json_object(), *metrics = json_object();
        json_object_set_new(o, "run_id", json_string(x->hex[i]));
        json_object_set_new(o, "name", json_string(r->name));
        json_object_set_new(o, "status", json_string(cli_status_name(r->status)));
        json_object_set_new(o, "duration_ms",
                            x->duration[i] < 0 ? json_null() : json_integer(x->duration[i]));
        for (size_t p = 0; p < r->n_params; p++)
            json_object_set_new(params, r->params[p].key, json_string(r->params[p].value));
        for (size_t m = 0; m < x->nm; m++) {
            const struct track_metric_summary *ms = cmp_metric_of(r, x->metrics[m]);
            if (!ms)
                continue;
            json_t *s = json_object();
            json_object_set_new(s, "last", cli_json_double(ms->last));
            json_object_set_new(s, "min", cli_json_double(ms->min));
            json_object_set_new(s, "max", cli_json_double(ms->max));
            json_object_set_new(s, "count", json_integer(ms->count));
            json_object_set_new(s, "best", json_boolean(x->best[m][i]));
            json_object_set_new(metrics, x->metrics[m], s);
        }
        json_object_set_new(o, "params", params);
        json_object_set_new(o, "metrics", metrics);
        json_object_set_new(o, "traces", cmp_trace_json(&x->tr, i));
        json_object_set_new(o, "feedback", cmp_feedback_json(&x->fb, i));
        json_array_append_new(runs, o);
    }
    for (size_t p = 0; p < x->np; p++)
        if (x->param_differs[p])
            json_array_append_new(diff, json_string(x->params[p]));
    json_object_set_new(root, "runs", runs);
    json_object_set_new(root, "differing_params", diff);
    return cli_json_print(root);
}
