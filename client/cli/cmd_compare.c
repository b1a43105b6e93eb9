/*
 * cmd_compare.c: `track compare`, runs side by side, one column per run.
 *
 * Rows: name, status, duration; the params whose values differ between the
 * runs (all of them with --all-params); then per metric its last, min and max
 * value, its point count and a sparkline of its curve; then, when a run has
 * LLM traces, their count, latency p50 and p95, tokens, cost and error rate
 * (compare_trace.c); then per feedback name its mean, true ratio or top
 * label (compare_feedback.c). The best run of each
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
 *
 * This file reads the runs and chooses what is shown; compare_grid.c makes
 * the rows, compare_print.c lays them out (compare.h).
 */
#include "compare.h"
#include "render.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEL       64 /* --metric, --goal and --experiment options */
#define SPARK_BUCKETS 20

enum fmt { FMT_TABLE, FMT_MARKDOWN, FMT_CSV, FMT_JSON };

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

const struct track_metric_summary *cmp_metric_of(const struct track_run_info *r, const char *key)
{
    for (size_t i = 0; i < r->n_metrics; i++)
        if (strcmp(r->metrics[i].key, key) == 0)
            return &r->metrics[i];
    return NULL;
}

const char *cmp_param_of(const struct track_run_info *r, const char *key)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].key, key) == 0)
            return r->params[i].value;
    return NULL;
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
    if (x->n == CMP_MAX_RUNS)
        return cli_error("compare takes at most %d runs", CMP_MAX_RUNS);
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
        const char *base = cmp_param_of(&x->runs[0], keys[i]);
        int differs = 0;
        for (size_t r = 1; r < x->n && !differs; r++) {
            const char *v = cmp_param_of(&x->runs[r], keys[i]);
            differs = !v != !base || (v && strcmp(v, base) != 0);
        }
        if (!differs && !all)
            continue;
        if (u == CMP_MAX_PARAMS) {
            cli_warn("showing the first %d params only", CMP_MAX_PARAMS);
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
                found = cmp_metric_of(&x->runs[i], sel[s]) != NULL;
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
            if (x->nm == CMP_MAX_METRICS) {
                cli_warn("showing %d metrics only; choose with --metric", CMP_MAX_METRICS);
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
            const struct track_metric_summary *ms = cmp_metric_of(&x->runs[i], x->metrics[m]);
            if (!ms || isnan(ms->last))
                continue;
            if (isnan(best) || (x->goal_max[m] ? ms->last > best : ms->last < best))
                best = ms->last;
        }
        for (size_t i = 0; i < x->n; i++) {
            const struct track_metric_summary *ms = cmp_metric_of(&x->runs[i], x->metrics[m]);
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
            if (!cmp_metric_of(&x->runs[i], x->metrics[m]))
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
    struct plot_run runs[CMP_MAX_RUNS];

    for (size_t i = 0; i < x->n; i++)
        runs[i] = (struct plot_run){x->hex[i], x->runs[i].name, x->runs[i].start_ms};
    return plot_compare(x->c, runs, x->n, x->metrics, x->nm, o, path);
}

static void cmp_free(struct cmp *x)
{
    for (size_t m = 0; m < CMP_MAX_METRICS; m++)
        for (size_t i = 0; i < CMP_MAX_RUNS; i++)
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
    struct cmp_grid g = {0};
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
    } else if (n_args > CMP_MAX_RUNS) {
        cli_usage_error(name, "at most %d RUNs", CMP_MAX_RUNS);
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
        struct track_run_query q = {.filter = filter, .limit = CMP_MAX_RUNS + 1, .with_details = 1};
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
        if (n > CMP_MAX_RUNS) {
            cli_error("more than %d runs match; compare takes at most %d (narrow the filter)",
                      CMP_MAX_RUNS, CMP_MAX_RUNS);
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
    if (cmp_trace_load(x->c, (const char(*)[33])x->hex, x->n, &x->tr, &err) ||
        cmp_feedback_load(x->c, (const char(*)[33])x->hex, x->n, &x->fb, &err)) {
        cli_track_error(&err);
        goto out;
    }
    if ((fmt == FMT_TABLE || fmt == FMT_MARKDOWN) && make_sparklines(x))
        goto out;
    if (fmt == FMT_JSON) {
        if (cmp_print_json(x))
            goto out;
    } else {
        if (cmp_grid_build(x, &g, fmt == FMT_CSV)) {
            cli_error("out of memory");
            goto out;
        }
        if (fmt == FMT_CSV) {
            cmp_print_csv(x, &g);
        } else if (fmt == FMT_MARKDOWN) {
            cmp_print_markdown(&g);
        } else {
            const char *nc = getenv("NO_COLOR");
            int colour = !nc && isatty(STDOUT_FILENO);
            /* the layout that needs fewer blocks; a tie keeps a column per
             * run, which also shows min, max, points and the trend */
            if (columns == COLS_METRICS ||
                (columns == COLS_AUTO && cmp_print_transposed(x, &g, 0, 1) < cmp_table_blocks(&g)))
                cmp_print_transposed(x, &g, colour, 0);
            else
                cmp_print_table(&g, colour);
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
    cmp_grid_free(&g);
    cmp_free(x);
    return rc;
}
