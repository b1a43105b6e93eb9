/*
 * cmd_compare.c: `track compare`, runs side by side, one column per run.
 *
 * Rows: name, status, duration; the params whose values differ between the
 * runs (all of them with --all-params); then per metric its last, min and max
 * value, its point count and a sparkline of its curve; then per feedback name
 * its mean, true ratio or top label (compare_feedback.c). The best run of each
 * metric is the one with the best *last* value (lowest by default, highest
 * under --goal KEY=max), as the filter language's metrics.KEY is the last
 * value too; NaN is never best, ties are all marked.
 *
 * Everything but the sparklines and the plot comes from the run summaries
 * the daemon keeps current, and the curves are downsampled by the daemon
 * from stored chunks, so comparing runs of a million points costs about the
 * same as comparing short ones.
 *
 * The same rows are printed four ways: a table, a GitHub markdown table,
 * CSV (one row per row label, a column per run, full precision) and JSON.
 * --plot adds an SVG file. The table has a column per run (folded into
 * blocks that fit the terminal, render_fold) unless a transposed table, a
 * row per run and a column per param and metric (its last value) as `track
 * runs` prints them, needs fewer blocks; --columns runs|metrics chooses.
 */
#include "cli.h"
#include "render.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS      50
#define MAX_METRICS   256
#define MAX_SEL       64 /* --metric, --goal and --experiment options */
#define MAX_PARAMS    1024
#define SPARK_BUCKETS 20
#define LABEL_COL_MAX 32
#define CELL_COL_MAX  24

enum fmt { FMT_TABLE, FMT_MARKDOWN, FMT_CSV, FMT_JSON };

/* Cell flags. */
#define CELL_BEST   1
#define CELL_DIFFER 2

struct cmp {
    struct track_client *c;
    struct track_result *res[MAX_RUNS];
    size_t n_res;
    struct track_run_info runs[MAX_RUNS];
    char hex[MAX_RUNS][33];
    int64_t duration[MAX_RUNS];
    size_t n;
    const char *metrics[MAX_METRICS];
    int goal_max[MAX_METRICS];
    size_t nm;
    const char **params; /* shown params, sorted */
    size_t np;
    unsigned char *param_differs; /* per shown param */
    unsigned char best[MAX_METRICS][MAX_RUNS];
    char *spark[MAX_METRICS][MAX_RUNS]; /* malloc'd, NULL when absent */
    struct cmp_feedback fb;             /* compare_feedback.c */
};

/* A table of strings: nrows labels, nrows * ncols cells with flags. */
struct grid {
    size_t nrows, cap, ncols;
    char **labels;
    char **cells;
    unsigned char *flags;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const struct track_metric_summary *metric_of(const struct track_run_info *r, const char *key)
{
    for (size_t i = 0; i < r->n_metrics; i++)
        if (strcmp(r->metrics[i].key, key) == 0)
            return &r->metrics[i];
    return NULL;
}

static const char *param_of(const struct track_run_info *r, const char *key)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].key, key) == 0)
            return r->params[i].value;
    return NULL;
}

/* ---- the grid ------------------------------------------------------------------------ */

static void grid_free(struct grid *g)
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
static long grid_row(struct grid *g, const char *label)
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

static int grid_set(struct grid *g, long r, size_t c, const char *text, int flags)
{
    char **cell = &g->cells[(size_t)r * g->ncols + c];
    free(*cell);
    *cell = strdup(text);
    g->flags[(size_t)r * g->ncols + c] = (unsigned char)flags;
    return *cell ? 0 : -1;
}

static const char *grid_cell(const struct grid *g, size_t r, size_t c)
{
    const char *s = g->cells[r * g->ncols + c];
    return s ? s : "";
}

/* Fills the grid. `machine`: CSV labels and full-precision values, no
 * sparklines; else the human labels and compact values. */
static int build_grid(const struct cmp *x, struct grid *g, int machine)
{
    char buf[512], lab[600];
    long r;

    memset(g, 0, sizeof(*g));
    g->ncols = x->n;
    if (!machine) {
        if ((r = grid_row(g, "run")) < 0)
            return -1;
        for (size_t i = 0; i < x->n; i++) {
            snprintf(buf, sizeof(buf), "%.8s", x->hex[i]);
            if (grid_set(g, r, i, buf, 0))
                return -1;
        }
    }
    if ((r = grid_row(g, "name")) < 0)
        return -1;
    for (size_t i = 0; i < x->n; i++) {
        if (machine)
            snprintf(buf, sizeof(buf), "%s", x->runs[i].name);
        else
            render_fit_middle(x->runs[i].name, CELL_COL_MAX, buf, sizeof(buf));
        if (grid_set(g, r, i, buf, 0))
            return -1;
    }
    if ((r = grid_row(g, "status")) < 0)
        return -1;
    for (size_t i = 0; i < x->n; i++)
        if (grid_set(g, r, i, cli_status_name(x->runs[i].status), 0))
            return -1;
    if ((r = grid_row(g, machine ? "duration_ms" : "duration")) < 0)
        return -1;
    for (size_t i = 0; i < x->n; i++) {
        if (x->duration[i] < 0)
            snprintf(buf, sizeof(buf), machine ? "" : "-");
        else if (machine)
            snprintf(buf, sizeof(buf), "%lld", (long long)x->duration[i]);
        else
            cli_fmt_duration(x->duration[i], buf, sizeof(buf));
        if (grid_set(g, r, i, buf, 0))
            return -1;
    }
    for (size_t p = 0; p < x->np; p++) {
        snprintf(lab, sizeof(lab), machine ? "params.%s" : "param %s", x->params[p]);
        if ((r = grid_row(g, lab)) < 0)
            return -1;
        const char *base = param_of(&x->runs[0], x->params[p]);
        for (size_t i = 0; i < x->n; i++) {
            const char *v = param_of(&x->runs[i], x->params[p]);
            /* highlighted: differs from the first run, the baseline */
            int differs = i > 0 && (!v != !base || (v && strcmp(v, base) != 0));
            if (machine)
                snprintf(buf, sizeof(buf), "%s", v ? v : "");
            else
                render_fit(v ? v : "-", CELL_COL_MAX, buf, sizeof(buf));
            if (grid_set(g, r, i, buf, differs ? CELL_DIFFER : 0))
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
            if ((r = grid_row(g, lab)) < 0)
                return -1;
            for (size_t i = 0; i < x->n; i++) {
                const struct track_metric_summary *ms = metric_of(&x->runs[i], x->metrics[m]);
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
                        flags = CELL_BEST;
                }
                if (grid_set(g, r, i, buf, flags))
                    return -1;
            }
        }
    }
    for (size_t k = 0; k < x->fb.nn; k++) {
        snprintf(lab, sizeof(lab), machine ? "feedback.%s" : "feedback %s", x->fb.names[k]);
        if ((r = grid_row(g, lab)) < 0)
            return -1;
        for (size_t i = 0; i < x->n; i++) {
            cmp_feedback_cell(&x->fb, k, i, machine, buf, sizeof(buf));
            if (grid_set(g, r, i, buf, 0))
                return -1;
        }
    }
    return 0;
}

/* ---- output ---------------------------------------------------------------------- */

static void print_table(const struct grid *g, int colour)
{
    size_t label_w = 0, col_w[MAX_RUNS], starts[MAX_RUNS];
    char lab[LABEL_COL_MAX * 4 + 8];

    for (size_t r = 0; r < g->nrows; r++) {
        size_t w = render_width(g->labels[r]);
        label_w = w > label_w ? w : label_w;
    }
    label_w = label_w > LABEL_COL_MAX ? LABEL_COL_MAX : label_w;
    for (size_t c = 0; c < g->ncols; c++) {
        col_w[c] = 0;
        for (size_t r = 0; r < g->nrows; r++) {
            /* the best mark " *" is added at print time */
            size_t w = render_width(grid_cell(g, r, c)) +
                       ((g->flags[r * g->ncols + c] & CELL_BEST) ? 2 : 0);
            col_w[c] = w > col_w[c] ? w : col_w[c];
        }
    }
    size_t ng = render_fold(label_w, col_w, g->ncols, (size_t)cli_term_width(), 2, starts);
    for (size_t k = 0; k < ng; k++) {
        size_t c0 = starts[k], c1 = k + 1 < ng ? starts[k + 1] : g->ncols;
        if (k)
            fputc('\n', stdout);
        for (size_t r = 0; r < g->nrows; r++) {
            render_fit(g->labels[r], LABEL_COL_MAX, lab, sizeof(lab));
            render_pad(stdout, lab, label_w, 0, NULL);
            for (size_t c = c0; c < c1; c++) {
                int fl = g->flags[r * g->ncols + c];
                char cell[600];
                const char *sgr = NULL;
                snprintf(cell, sizeof(cell), "%s%s", grid_cell(g, r, c),
                         (fl & CELL_BEST) ? " *" : "");
                if (colour && (fl & CELL_BEST))
                    sgr = "1";
                else if (colour && (fl & CELL_DIFFER))
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
static size_t table_blocks(const struct grid *g)
{
    size_t label_w = 0, col_w[MAX_RUNS], starts[MAX_RUNS];

    for (size_t r = 0; r < g->nrows; r++) {
        size_t w = render_width(g->labels[r]);
        label_w = w > label_w ? w : label_w;
    }
    label_w = label_w > LABEL_COL_MAX ? LABEL_COL_MAX : label_w;
    for (size_t c = 0; c < g->ncols; c++) {
        col_w[c] = 0;
        for (size_t r = 0; r < g->nrows; r++) {
            size_t w = render_width(grid_cell(g, r, c)) +
                       ((g->flags[r * g->ncols + c] & CELL_BEST) ? 2 : 0);
            col_w[c] = w > col_w[c] ? w : col_w[c];
        }
    }
    return render_fold(label_w, col_w, g->ncols, (size_t)cli_term_width(), 2, starts);
}

/* The transposed table (--columns metrics, or when it needs fewer blocks
 * than a column per run): a row per run; columns run, name, status,
 * duration, the params shown (params.K) and each metric's last value
 * (metrics.K, the best marked *), the language's names as in `track runs`.
 * Columns that do not fit fold into further blocks, each repeating run and
 * name. With `dry`, prints nothing and returns the number of blocks. */
static size_t print_transposed(const struct cmp *x, const struct grid *g, int colour, int dry)
{
    enum { MAXC = 4 + MAX_PARAMS + MAX_METRICS + CMP_FB_NAMES };
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
        } else if (strncmp(l, "feedback ", 9) == 0) {
            snprintf(label, sizeof(label), "feedback.%s", l + 9);
        } else {
            continue;
        }
        size_t cw = 0;
        for (size_t c = 0; c < g->ncols; c++) {
            size_t cellw =
                r == 1 ? render_width(x->runs[c].name) : render_width(grid_cell(g, r, c));
            cellw += r >= 4 && strncmp(l, "param ", 6) != 0 ? 2 : 0; /* " *" or "  " */
            cw = cellw > cw ? cellw : cw;
        }
        size_t cap = r == 1 ? 24 : CELL_COL_MAX + 2, lw = render_width(label);
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
                    snprintf(buf, sizeof(buf), "%s%s", grid_cell(g, r, i),
                             (fl & CELL_BEST)      ? " *"
                             : j >= 4 + p && !last ? "  "
                                                   : "");
                if (colour && (fl & CELL_BEST))
                    sgr = "1";
                else if (colour && (fl & CELL_DIFFER))
                    sgr = "33";
                if (j)
                    fputs("  ", stdout);
                int right = j >= 4 + p;
                /* no trailing blanks after a left-aligned last column */
                size_t pw = last && !right ? 0 : w[j];
                if (last && right && line && !(fl & CELL_BEST))
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

static void print_markdown(const struct grid *g)
{
    for (size_t r = 0; r < g->nrows; r++) {
        fputs("|", stdout);
        fputc(' ', stdout);
        md_put(g->labels[r]);
        for (size_t c = 0; c < g->ncols; c++) {
            int best = g->flags[r * g->ncols + c] & CELL_BEST;
            fputs(" | ", stdout);
            if (best)
                fputs("**", stdout);
            md_put(grid_cell(g, r, c));
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

static void print_csv(const struct cmp *x, const struct grid *g)
{
    fputs("row", stdout);
    for (size_t i = 0; i < x->n; i++)
        printf(",%s", x->hex[i]);
    fputc('\n', stdout);
    for (size_t r = 0; r < g->nrows; r++) {
        render_csv_put(stdout, g->labels[r]);
        for (size_t c = 0; c < g->ncols; c++) {
            fputc(',', stdout);
            render_csv_put(stdout, grid_cell(g, r, c));
        }
        fputc('\n', stdout);
    }
}

static int print_json(const struct cmp *x)
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
            const struct track_metric_summary *ms = metric_of(r, x->metrics[m]);
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

/* ---- data ------------------------------------------------------------------------ */

/* Adds run info r (a view into a result the caller keeps) unless the same
 * run is there already. */
static int add_run(struct cmp *x, const struct track_run_info *r, int64_t now)
{
    char hex[33];
    track_run_id_hex(&r->id, hex);
    for (size_t i = 0; i < x->n; i++)
        if (strcmp(x->hex[i], hex) == 0)
            return 0;
    if (x->n == MAX_RUNS)
        return cli_error("compare takes at most %d runs", MAX_RUNS);
    x->runs[x->n] = *r;
    memcpy(x->hex[x->n], hex, sizeof(hex));
    /* a running run's duration runs up to now, as in the filter language */
    x->duration[x->n] = r->start_ms <= 0 ? -1 : (r->end_ms > 0 ? r->end_ms : now) - r->start_ms;
    x->n++;
    return 0;
}

/* The union of params (all, or only those that differ) into x->params. */
static int pick_params(struct cmp *x, int all)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < x->n; i++)
        total += x->runs[i].n_params;
    if (!total)
        return 0;
    const char **keys = malloc(total * sizeof(*keys));
    x->param_differs = calloc(total, 1);
    if (!keys || !x->param_differs) {
        free(keys);
        return cli_error("out of memory");
    }
    for (size_t i = 0; i < x->n; i++)
        for (size_t j = 0; j < x->runs[i].n_params; j++)
            keys[k++] = x->runs[i].params[j].key;
    qsort(keys, k, sizeof(*keys), cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u && strcmp(keys[u - 1], keys[i]) == 0)
            continue;
        const char *base = param_of(&x->runs[0], keys[i]);
        int differs = 0;
        for (size_t r = 1; r < x->n && !differs; r++) {
            const char *v = param_of(&x->runs[r], keys[i]);
            differs = !v != !base || (v && strcmp(v, base) != 0);
        }
        if (!differs && !all)
            continue;
        if (u == MAX_PARAMS) {
            cli_warn("showing the first %d params only", MAX_PARAMS);
            break;
        }
        x->param_differs[u] = (unsigned char)differs;
        keys[u++] = keys[i];
    }
    x->params = keys;
    x->np = u;
    return 0;
}

/* The union of metric keys, sorted, unless --metric chose them. */
static int pick_metrics(struct cmp *x, const char *const *sel, size_t n_sel)
{
    if (n_sel) {
        for (size_t s = 0; s < n_sel; s++) {
            int found = 0;
            for (size_t i = 0; i < x->n && !found; i++)
                found = metric_of(&x->runs[i], sel[s]) != NULL;
            if (!found)
                return cli_error("metric \"%s\" is not logged in any of the runs", sel[s]);
            x->metrics[x->nm++] = sel[s];
        }
        return 0;
    }
    for (size_t i = 0; i < x->n; i++) {
        for (size_t j = 0; j < x->runs[i].n_metrics; j++) {
            const char *k = x->runs[i].metrics[j].key;
            size_t m = 0;
            while (m < x->nm && strcmp(x->metrics[m], k) != 0)
                m++;
            if (m < x->nm)
                continue;
            if (x->nm == MAX_METRICS) {
                cli_warn("showing %d metrics only; choose with --metric", MAX_METRICS);
                goto sorted;
            }
            x->metrics[x->nm++] = k;
        }
    }
sorted:
    qsort(x->metrics, x->nm, sizeof(x->metrics[0]), cmp_str);
    return 0;
}

static void mark_best(struct cmp *x)
{
    for (size_t m = 0; m < x->nm; m++) {
        double best = NAN;
        for (size_t i = 0; i < x->n; i++) {
            const struct track_metric_summary *ms = metric_of(&x->runs[i], x->metrics[m]);
            if (!ms || isnan(ms->last))
                continue;
            if (isnan(best) || (x->goal_max[m] ? ms->last > best : ms->last < best))
                best = ms->last;
        }
        for (size_t i = 0; i < x->n; i++) {
            const struct track_metric_summary *ms = metric_of(&x->runs[i], x->metrics[m]);
            x->best[m][i] = ms && !isnan(best) && ms->last == best;
        }
    }
}

static int make_sparklines(struct cmp *x)
{
    for (size_t m = 0; m < x->nm; m++) {
        for (size_t i = 0; i < x->n; i++) {
            char buf[SPARK_BUCKETS * 3 + 1];
            int found; /* an empty line when the series has no point */
            if (!metric_of(&x->runs[i], x->metrics[m]))
                continue;
            if (plot_sparkline(x->c, x->hex[i], x->metrics[m], SPARK_BUCKETS, buf, sizeof(buf),
                               &found))
                return 1;
            if (!(x->spark[m][i] = strdup(buf)))
                return cli_error("out of memory");
        }
    }
    return 0;
}

/* The --plot file: plot_compare.c draws the runs' curves. */
static int write_plot(struct cmp *x, const char *path, const struct plot_opts *o)
{
    struct plot_run runs[MAX_RUNS];

    for (size_t i = 0; i < x->n; i++)
        runs[i] = (struct plot_run){x->hex[i], x->runs[i].name, x->runs[i].start_ms};
    return plot_compare(x->c, runs, x->n, x->metrics, x->nm, o, path);
}

static void cmp_free(struct cmp *x)
{
    for (size_t m = 0; m < MAX_METRICS; m++)
        for (size_t i = 0; i < MAX_RUNS; i++)
            free(x->spark[m][i]);
    for (size_t i = 0; i < x->n_res; i++)
        track_result_free(x->res[i]);
    free(x->params);
    free(x->param_differs);
    cmp_feedback_free(&x->fb);
    if (x->c)
        track_client_close(x->c);
    free(x);
}

int cmd_compare(int argc, char **argv)
{
    static const struct option longopts[] = {{"filter", required_argument, NULL, 'f'},
                                             {"experiment", required_argument, NULL, 'e'},
                                             {"metric", required_argument, NULL, 'm'},
                                             {"all-params", no_argument, NULL, 'a'},
                                             {"goal", required_argument, NULL, 'g'},
                                             {"format", required_argument, NULL, 'F'},
                                             {"plot", required_argument, NULL, 'p'},
                                             {"smooth", required_argument, NULL, 'S'},
                                             {"log-y", no_argument, NULL, 'L'},
                                             {"x", required_argument, NULL, 'X'},
                                             {"columns", required_argument, NULL, 'C'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    static const char *exps[MAX_SEL + 1];
    const char *name = argv[0], *filter = NULL, *plot = NULL, *sel[MAX_SEL], *goal_key[MAX_SEL];
    int goal_max[MAX_SEL], opt, all_params = 0, rc = 1;
    size_t n_sel = 0, n_goal = 0, n_exp = 0;
    enum fmt fmt = FMT_TABLE;
    enum { COLS_AUTO, COLS_RUNS, COLS_METRICS } columns = COLS_AUTO;
    struct grid g = {0};
    struct plot_opts po = {0};
    const char *plot_flag = NULL; /* a plot option given, for the message without --plot */

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'f':
            if (strlen(optarg) > 65536)
                cli_usage_error(name, "--filter: longer than 65536 bytes");
            filter = optarg;
            break;
        case 'e':
            if (n_exp == MAX_SEL)
                cli_usage_error(name, "--experiment: at most %d", MAX_SEL);
            exps[n_exp++] = optarg;
            break;
        case 'm':
            if (n_sel == MAX_SEL)
                cli_usage_error(name, "--metric: at most %d", MAX_SEL);
            if (!*optarg || strlen(optarg) > 250)
                cli_usage_error(name, "--metric: expected a key of 1 to 250 bytes");
            sel[n_sel++] = optarg;
            break;
        case 'a':
            all_params = 1;
            break;
        case 'g': {
            char *eq = strrchr(optarg, '=');
            if (n_goal == MAX_SEL)
                cli_usage_error(name, "--goal: at most %d", MAX_SEL);
            if (!eq || eq == optarg || (strcmp(eq, "=min") != 0 && strcmp(eq, "=max") != 0))
                cli_usage_error(name, "--goal: expected KEY=min or KEY=max, got \"%s\"", optarg);
            goal_max[n_goal] = strcmp(eq, "=max") == 0;
            *eq = '\0';
            goal_key[n_goal++] = optarg;
            break;
        }
        case 'F':
            if (strcmp(optarg, "table") == 0)
                fmt = FMT_TABLE;
            else if (strcmp(optarg, "markdown") == 0 || strcmp(optarg, "md") == 0)
                fmt = FMT_MARKDOWN;
            else if (strcmp(optarg, "csv") == 0)
                fmt = FMT_CSV;
            else if (strcmp(optarg, "json") == 0)
                fmt = FMT_JSON;
            else
                cli_usage_error(name, "--format: expected table, markdown, csv or json, got \"%s\"",
                                optarg);
            break;
        case 'p':
            if (!*optarg)
                cli_usage_error(name, "--plot: expected a file name");
            plot = optarg;
            break;
        case 'S':
            if (cli_parse_double(optarg, &po.smooth) || !(po.smooth >= 0 && po.smooth < 1))
                cli_usage_error(name, "--smooth: expected a weight from 0 to below 1, got \"%s\"",
                                optarg);
            plot_flag = "--smooth";
            break;
        case 'L':
            po.log_y = 1;
            plot_flag = "--log-y";
            break;
        case 'X':
            if (strcmp(optarg, "step") == 0)
                po.x = PLOT_X_STEP;
            else if (strcmp(optarg, "time") == 0)
                po.x = PLOT_X_TIME;
            else if (strcmp(optarg, "relative") == 0)
                po.x = PLOT_X_RELATIVE;
            else
                cli_usage_error(name, "--x: expected step, time or relative, got \"%s\"", optarg);
            plot_flag = "--x";
            break;
        case 'C':
            if (strcmp(optarg, "runs") == 0)
                columns = COLS_RUNS;
            else if (strcmp(optarg, "metrics") == 0)
                columns = COLS_METRICS;
            else
                cli_usage_error(name, "--columns: expected runs or metrics, got \"%s\"", optarg);
            break;
        default:
            if (!cli_common_opt(opt, name))
                cli_usage_error(name, "unknown option");
        }
    }
    if (plot_flag && !plot)
        cli_usage_error(name, "%s: only with --plot FILE", plot_flag);
    if (cli_opt.json)
        fmt = FMT_JSON;
    if (columns != COLS_AUTO && fmt != FMT_TABLE)
        cli_usage_error(name, "--columns: applies to --format table only");
    int n_args = argc - optind;
    if (filter || n_exp) {
        if (n_args)
            cli_usage_error(name, "give either RUN arguments or --filter/--experiment, not both");
    } else if (n_args < 2) {
        cli_usage_error(name, "expected at least two RUNs (or --filter EXPR)");
    } else if (n_args > MAX_RUNS) {
        cli_usage_error(name, "at most %d RUNs", MAX_RUNS);
    }

    struct cmp *x = calloc(1, sizeof(*x));
    if (!x)
        return cli_error("out of memory");
    struct track_err err = {0};
    int64_t now = now_ms();
    x->c = cli_client();
    if (n_args) {
        for (int a = 0; a < n_args; a++) {
            struct track_run_info info;
            if (track_run_get(x->c, argv[optind + a], &x->res[x->n_res], &info, &err)) {
                cli_track_error(&err);
                goto out;
            }
            x->n_res++;
            if (add_run(x, &info, now))
                goto out;
        }
    } else {
        struct track_run_query q = {.filter = filter, .limit = MAX_RUNS + 1, .with_details = 1};
        struct track_run_info *runs;
        size_t n;
        exps[n_exp] = NULL;
        q.experiments = n_exp ? exps : NULL;
        if (track_run_list(x->c, &q, &x->res[0], &runs, &n, &err)) {
            cli_track_error(&err);
            goto out;
        }
        x->n_res = 1;
        if (n == 0) {
            cli_error("no run matches");
            goto out;
        }
        if (n > MAX_RUNS) {
            cli_error("more than %d runs match; compare takes at most %d (narrow the filter)",
                      MAX_RUNS, MAX_RUNS);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            add_run(x, &runs[i], now);
    }
    if (pick_params(x, all_params) || pick_metrics(x, sel, n_sel))
        goto out;
    for (size_t m = 0; m < x->nm; m++)
        for (size_t k = 0; k < n_goal; k++)
            if (strcmp(goal_key[k], x->metrics[m]) == 0)
                x->goal_max[m] = goal_max[k];
    mark_best(x);
    if (cmp_feedback_load(x->c, (const char(*)[33])x->hex, x->n, &x->fb, &err)) {
        cli_track_error(&err);
        goto out;
    }
    if ((fmt == FMT_TABLE || fmt == FMT_MARKDOWN) && make_sparklines(x))
        goto out;
    if (fmt == FMT_JSON) {
        if (print_json(x))
            goto out;
    } else {
        if (build_grid(x, &g, fmt == FMT_CSV)) {
            cli_error("out of memory");
            goto out;
        }
        if (fmt == FMT_CSV) {
            print_csv(x, &g);
        } else if (fmt == FMT_MARKDOWN) {
            print_markdown(&g);
        } else {
            const char *nc = getenv("NO_COLOR");
            int colour = !nc && isatty(STDOUT_FILENO);
            /* the layout that needs fewer blocks; a tie keeps a column per
             * run, which also shows min, max, points and the trend */
            if (columns == COLS_METRICS ||
                (columns == COLS_AUTO && print_transposed(x, &g, 0, 1) < table_blocks(&g)))
                print_transposed(x, &g, colour, 0);
            else
                print_table(&g, colour);
        }
    }
    if (fflush(stdout) || ferror(stdout)) {
        cli_error("writing the output failed");
        goto out;
    }
    if (plot && write_plot(x, plot, &po))
        goto out;
    rc = 0;
out:
    grid_free(&g);
    cmp_free(x);
    return rc;
}
