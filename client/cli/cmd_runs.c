/*
 * cmd_runs.c: `track runs`, the run search. The filter and order-by texts
 * go to the daemon untouched (storage/filter.c owns the language and its
 * errors, which come back as INVALID_ARGUMENT naming the column); this file
 * only chooses the columns and prints a table, JSON or CSV.
 *
 * The table shows, beside the fixed columns, the metrics, params and tags
 * the order-by and the filter mention (order-by first: the sort key is what
 * a reader looks for), found by a light scan in render.c.
 *
 * Also home of review_runs_csv (render.h), the runs-as-CSV writer that
 * `track export --format csv` shares.
 */
#include "cli.h"
#include "render.h"

#include <string.h>
#include <time.h>

#define MAX_EXPERIMENTS 64
#define MAX_EXTRA_COLS  8  /* key columns beyond the fixed ones */
#define NAME_COL_MAX    24 /* display columns, longer names end in "…" */
#define EXP_COL_MAX     16
#define KEY_COL_MAX     24

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- CSV ------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The sorted union of keys: params (which == 0) or metric keys. Returns a
 * malloc'd array of pointers into runs (caller frees), or NULL when empty or
 * out of memory (*n tells). */
static const char **key_union(const struct track_run_info *runs, size_t n, int metrics, size_t *nk)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        total += metrics ? runs[i].n_metrics : runs[i].n_params;
    *nk = 0;
    if (!total)
        return NULL;
    const char **keys = malloc(total * sizeof(*keys));
    if (!keys)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t m = metrics ? runs[i].n_metrics : runs[i].n_params;
        for (size_t j = 0; j < m; j++)
            keys[k++] = metrics ? runs[i].metrics[j].key : runs[i].params[j].key;
    }
    qsort(keys, k, sizeof(*keys), cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(keys[u - 1], keys[i]) != 0)
            keys[u++] = keys[i];
    *nk = u;
    return keys;
}

static const char *param_of(const struct track_run_info *r, const char *key)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].key, key) == 0)
            return r->params[i].value;
    return NULL;
}

static const char *tag_of(const struct track_run_info *r, const char *key)
{
    for (size_t i = 0; i < r->n_tags; i++)
        if (strcmp(r->tags[i].key, key) == 0)
            return r->tags[i].value;
    return NULL;
}

static const struct track_metric_summary *metric_of(const struct track_run_info *r, const char *key)
{
    for (size_t i = 0; i < r->n_metrics; i++)
        if (strcmp(r->metrics[i].key, key) == 0)
            return &r->metrics[i];
    return NULL;
}

int review_runs_csv(FILE *f, const struct track_run_info *runs, size_t n)
{
    size_t np, nm;
    const char **pk = key_union(runs, n, 0, &np), **mk = key_union(runs, n, 1, &nm);
    int rc = 0;

    if ((!pk && np) || (!mk && nm)) {
        rc = cli_error("out of memory");
        goto out;
    }
    fputs("run_id,name,experiment,status,start_time,end_time", f);
    for (size_t k = 0; k < np; k++) {
        char h[300];
        snprintf(h, sizeof(h), "params.%s", pk[k]);
        fputc(',', f);
        render_csv_put(f, h);
    }
    for (size_t k = 0; k < nm; k++) {
        char h[300];
        snprintf(h, sizeof(h), "metrics.%s", mk[k]);
        fputc(',', f);
        render_csv_put(f, h);
    }
    fputc('\n', f);
    for (size_t i = 0; i < n; i++) {
        const struct track_run_info *r = &runs[i];
        char hex[33];
        track_run_id_hex(&r->id, hex);
        fprintf(f, "%s,", hex);
        render_csv_put(f, r->name);
        fputc(',', f);
        render_csv_put(f, r->experiment);
        fprintf(f, ",%s,", cli_status_name(r->status));
        if (r->start_ms > 0)
            fprintf(f, "%lld", (long long)r->start_ms);
        fputc(',', f);
        if (r->end_ms > 0)
            fprintf(f, "%lld", (long long)r->end_ms);
        for (size_t k = 0; k < np; k++) {
            const char *v = param_of(r, pk[k]);
            fputc(',', f);
            if (v)
                render_csv_put(f, v);
        }
        for (size_t k = 0; k < nm; k++) {
            const struct track_metric_summary *m = metric_of(r, mk[k]);
            fputc(',', f);
            if (m) {
                char v[40];
                render_double(m->last, v, sizeof(v));
                fputs(v, f);
            }
        }
        fputc('\n', f);
    }
out:
    free(pk);
    free(mk);
    return rc;
}

/* ---- table ------------------------------------------------------------------ */

/* The text of key column k for run r: "-" when the run lacks it. */
static void key_cell(const struct track_run_info *r, const struct render_key *k, char *buf,
                     size_t len)
{
    const char *s = NULL;
    if (k->kind == RENDER_KEY_METRIC) {
        const struct track_metric_summary *m = metric_of(r, k->key);
        if (m) {
            double v = k->agg == RENDER_AGG_MIN   ? m->min
                       : k->agg == RENDER_AGG_MAX ? m->max
                                                  : m->last;
            render_num(v, buf, len);
            return;
        }
    } else {
        s = k->kind == RENDER_KEY_PARAM ? param_of(r, k->key) : tag_of(r, k->key);
    }
    render_fit(s ? s : "-", KEY_COL_MAX, buf, len);
}

static void print_table(const struct track_run_info *runs, size_t n, const struct render_key *keys,
                        size_t nk)
{
    /* cells: run, name, experiment, status, start, duration, keys... */
    enum { FIXED = 6 };
    static const char *const head[FIXED] = {"RUN",    "NAME",    "EXPERIMENT",
                                            "STATUS", "STARTED", "DURATION"};
    size_t w[FIXED + MAX_EXTRA_COLS];
    char labels[MAX_EXTRA_COLS][300], cell[128];
    int64_t now = now_ms();

    for (size_t c = 0; c < FIXED; c++)
        w[c] = strlen(head[c]);
    for (size_t k = 0; k < nk; k++) {
        render_key_label(&keys[k], labels[k], sizeof(labels[k]));
        char fit[300];
        render_fit(labels[k], KEY_COL_MAX, fit, sizeof(fit));
        snprintf(labels[k], sizeof(labels[k]), "%s", fit);
        w[FIXED + k] = render_width(labels[k]);
    }
    /* two passes over the rows, one to size the columns, one to print */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            for (size_t c = 0; c < FIXED + nk; c++) {
                int right = c >= FIXED && keys[c - FIXED].kind == RENDER_KEY_METRIC;
                render_pad(stdout, c < FIXED ? head[c] : labels[c - FIXED],
                           right || c + 1 < FIXED + nk ? w[c] : 0, right, NULL);
                fputs(c + 1 < FIXED + nk ? "  " : "\n", stdout);
            }
        }
        for (size_t i = 0; i < n; i++) {
            const struct track_run_info *r = &runs[i];
            for (size_t c = 0; c < FIXED + nk; c++) {
                char hex[33];
                switch (c) {
                case 0:
                    track_run_id_hex(&r->id, hex);
                    snprintf(cell, sizeof(cell), "%.8s", hex);
                    break;
                case 1:
                    render_fit(r->name, NAME_COL_MAX, cell, sizeof(cell));
                    break;
                case 2:
                    render_fit(r->experiment, EXP_COL_MAX, cell, sizeof(cell));
                    break;
                case 3:
                    snprintf(cell, sizeof(cell), "%s", cli_status_name(r->status));
                    break;
                case 4:
                    cli_fmt_time(r->start_ms, cell, sizeof(cell));
                    break;
                case 5:
                    /* a running run's duration runs up to now, as in the filter */
                    if (r->start_ms <= 0)
                        snprintf(cell, sizeof(cell), "-");
                    else
                        cli_fmt_duration((r->end_ms > 0 ? r->end_ms : now) - r->start_ms, cell,
                                         sizeof(cell));
                    break;
                default:
                    key_cell(r, &keys[c - FIXED], cell, sizeof(cell));
                }
                if (pass == 0) {
                    size_t cw = render_width(cell);
                    w[c] = cw > w[c] ? cw : w[c];
                } else {
                    int right = c >= FIXED && keys[c - FIXED].kind == RENDER_KEY_METRIC;
                    /* no trailing blanks after a left-aligned last column */
                    render_pad(stdout, cell, right || c + 1 < FIXED + nk ? w[c] : 0, right, NULL);
                    fputs(c + 1 < FIXED + nk ? "  " : "\n", stdout);
                }
            }
        }
    }
}

int cmd_runs(int argc, char **argv)
{
    static const struct option longopts[] = {{"experiment", required_argument, NULL, 'e'},
                                             {"filter", required_argument, NULL, 'f'},
                                             {"order-by", required_argument, NULL, 'o'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {"csv", no_argument, NULL, 'c'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    static const char *exps[MAX_EXPERIMENTS + 1];
    const char *name = argv[0];
    struct track_run_query q = {0};
    struct track_run_info *runs;
    struct track_result *res;
    struct track_err err = {0};
    struct render_key keys[MAX_EXTRA_COLS];
    size_t n, n_exp = 0, nk = 0;
    int64_t limit = 0;
    int opt, csv = 0;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "+h", longopts)) != -1) {
        switch (opt) {
        case 'e':
            if (n_exp == MAX_EXPERIMENTS)
                cli_usage_error(name, "--experiment: at most %d", MAX_EXPERIMENTS);
            exps[n_exp++] = optarg;
            break;
        case 'f':
            q.filter = optarg;
            break;
        case 'o':
            q.order_by = optarg;
            break;
        case 'l':
            limit = cli_arg_i64(name, "--limit", optarg, 1, 100000);
            break;
        case 'c':
            csv = 1;
            break;
        default:
            if (!cli_common_opt(opt, name))
                cli_usage_error(name, "unknown option");
        }
    }
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    if (csv && cli_opt.json)
        cli_usage_error(name, "--csv and --json exclude each other");
    if (q.filter && strlen(q.filter) > 65536)
        cli_usage_error(name, "--filter: longer than 65536 bytes");
    if (q.order_by && strlen(q.order_by) > 65536)
        cli_usage_error(name, "--order-by: longer than 65536 bytes");
    exps[n_exp] = NULL;
    q.experiments = n_exp ? exps : NULL;
    q.limit = (int)limit;
    if (!csv && !cli_opt.json) {
        nk = render_expr_keys(q.order_by, keys, 0, MAX_EXTRA_COLS);
        nk = render_expr_keys(q.filter, keys, nk, MAX_EXTRA_COLS);
    }
    q.with_details = csv || cli_opt.json || nk > 0;

    struct track_client *c = cli_client();
    int rc = track_run_list(c, &q, &res, &runs, &n, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, cli_json_run(&runs[i]));
        rc = cli_json_print(a);
    } else if (csv) {
        rc = review_runs_csv(stdout, runs, n);
    } else {
        print_table(runs, n, keys, nk);
    }
    track_result_free(res);
    if (!rc && fflush(stdout))
        rc = cli_error("writing the output failed");
    return rc;
}
