/*
 * cmd_runs.c: `track runs`, the run search. The filter and order-by texts
 * go to the daemon untouched (storage/filter.c owns the language and its
 * errors, which come back as INVALID_ARGUMENT naming the column); this file
 * only chooses the columns and prints a table, JSON or CSV.
 *
 * The table fits the terminal (cli_term_width). Beside the fixed columns
 * (8-character ids as git's short hashes unless --full-ids; EXPERIMENT only
 * when the runs are of more than one) it shows the metrics, params and tags
 * the order-by and the filter mention (order-by first: the sort key is what
 * a reader looks for; found by a light scan in render.c), then the params
 * and metrics whose values differ between the listed runs, as many as fit.
 * Long names and labels lose their middle to "…", so their ends, which
 * tell sweeps apart, stay; values print as render_num's 6 digits.
 *
 * Also home of review_runs_csv (render.h), the runs-as-CSV writer that
 * `track export --format csv` shares.
 */
#include "cli.h"
#include "render.h"

#include <math.h>
#include <string.h>
#include <time.h>

#define TABLE_ROWS 100 /* rows of the table when no --limit is given */

#define MAX_EXPERIMENTS 64
#define MAX_EXTRA_COLS  8  /* key columns the filter and order-by add */
#define MAX_KEY_COLS    64 /* key columns in all */
#define NAME_COL_MAX    20 /* display columns; longer names lose their middle to "…" */
#define FULL_MAX        40 /* a name or label grows to this when the line has room */
#define EXP_COL_MAX     16
#define KEY_COL_MAX     24
#define LABEL_MIN       12 /* a key column shows at least this much of its label */

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

/* The text of key column k for run r, cut to `max` columns with an ellipsis
 * in the middle: "-" when the run lacks it. */
static void key_cell(const struct track_run_info *r, const struct render_key *k, size_t max,
                     char *buf, size_t len)
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
    render_fit_middle(s ? s : "-", max, buf, len);
}

/* Whether the runs disagree on param (or metric: last value) `key`; a run
 * lacking it disagrees with one that has it. NaN equals NaN here. */
static int key_differs(const struct track_run_info *runs, size_t n, int metric, const char *key)
{
    if (metric) {
        const struct track_metric_summary *m0 = metric_of(&runs[0], key);
        for (size_t i = 1; i < n; i++) {
            const struct track_metric_summary *m = metric_of(&runs[i], key);
            if (!m != !m0)
                return 1;
            if (m && !(isnan(m->last) && isnan(m0->last)) && m->last != m0->last)
                return 1;
        }
        return 0;
    }
    const char *v0 = param_of(&runs[0], key);
    for (size_t i = 1; i < n; i++) {
        const char *v = param_of(&runs[i], key);
        if (!v != !v0 || (v && strcmp(v, v0) != 0))
            return 1;
    }
    return 0;
}

/* The table's columns: the fixed ones, then key columns. */
enum { C_RUN, C_NAME, C_EXP, C_STATUS, C_START, C_DUR, C_KEY };

struct tcol {
    int kind;    /* C_* */
    size_t key;  /* index into keys[] for C_KEY */
    size_t w;    /* display columns */
    size_t full; /* what it would take with room to spare: the whole label or name */
    int right;
};

struct table {
    const struct track_run_info *runs;
    size_t n;
    struct render_key keys[MAX_KEY_COLS];
    size_t nk;
    struct tcol cols[6 + MAX_KEY_COLS];
    size_t ncols;
    int full_ids, short_dates;
    int64_t now;
};

static size_t table_width(const struct table *t)
{
    size_t w = 0;
    for (size_t c = 0; c < t->ncols; c++)
        w += t->cols[c].w + (c ? 2 : 0);
    return w;
}

static const char *const fixed_head[] = {"RUN",    "NAME",    "EXPERIMENT",
                                         "STATUS", "STARTED", "DURATION"};

/* The text of column c for run r, at most `max` columns wide. */
static void cell_text(const struct table *t, const struct tcol *c, const struct track_run_info *r,
                      size_t max, char *cell, size_t len)
{
    char hex[33];
    switch (c->kind) {
    case C_RUN:
        track_run_id_hex(&r->id, hex);
        snprintf(cell, len, "%.*s", t->full_ids ? 32 : 8, hex);
        break;
    case C_NAME:
        render_fit_middle(r->name, max, cell, len);
        break;
    case C_EXP:
        render_fit_middle(r->experiment, max, cell, len);
        break;
    case C_STATUS:
        snprintf(cell, len, "%s", cli_status_name(r->status));
        break;
    case C_START:
        if (r->start_ms <= 0) {
            snprintf(cell, len, "-");
        } else {
            time_t s = (time_t)(r->start_ms / 1000);
            struct tm tm;
            localtime_r(&s, &tm);
            strftime(cell, len, t->short_dates ? "%m-%d %H:%M" : "%Y-%m-%d", &tm);
        }
        break;
    case C_DUR:
        /* a running run's duration runs up to now, as in the filter */
        if (r->start_ms <= 0)
            snprintf(cell, len, "-");
        else
            cli_fmt_duration((r->end_ms > 0 ? r->end_ms : t->now) - r->start_ms, cell, len);
        break;
    default:
        key_cell(r, &t->keys[c->key], max, cell, len);
    }
}

/* The header of column c, cut to its width. */
static void head_text(const struct table *t, const struct tcol *c, char *buf, size_t len)
{
    char label[300];
    if (c->kind != C_KEY) {
        snprintf(buf, len, "%s", fixed_head[c->kind]);
        return;
    }
    render_key_label(&t->keys[c->key], label, sizeof(label));
    render_fit_middle(label, c->w, buf, len);
}

/* Compact width of a column: its widest cell up to `cap`, and of its label
 * as much as fits beside the cells (at least LABEL_MIN of it). Sets c->full
 * to the width of the whole label (or of the widest name, up to FULL_MAX). */
static size_t col_width(const struct table *t, struct tcol *c, size_t cap)
{
    char cell[300], label[300];
    size_t w = 0, full = 0;
    for (size_t i = 0; i < t->n; i++) {
        cell_text(t, c, &t->runs[i], c->kind == C_NAME ? FULL_MAX : cap, cell, sizeof(cell));
        size_t cw = render_width(cell);
        full = cw > full ? cw : full;
        w = (cw > cap ? cap : cw) > w ? (cw > cap ? cap : cw) : w;
    }
    if (c->kind == C_KEY) {
        render_key_label(&t->keys[c->key], label, sizeof(label));
        size_t lw = render_width(label);
        full = lw > w ? lw : w;
        lw = lw > LABEL_MIN ? (w > LABEL_MIN ? (lw < w ? lw : w) : LABEL_MIN) : lw;
        w = lw > w ? lw : w;
    } else {
        w = strlen(fixed_head[c->kind]) > w ? strlen(fixed_head[c->kind]) : w;
        full = full > w ? full : w;
    }
    c->full = full > FULL_MAX ? FULL_MAX : full;
    return w > cap ? cap : w;
}

/* Gives the room left on the line to columns shown narrower than they
 * would like: key labels first, then names. */
static void expand(struct table *t, size_t width)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t c = 0; c < t->ncols; c++) {
            struct tcol *col = &t->cols[c];
            size_t tw = table_width(t);
            if ((pass == 0) != (col->kind == C_KEY) || col->full <= col->w || tw >= width)
                continue;
            size_t more = col->full - col->w;
            col->w += more < width - tw ? more : width - tw;
        }
    }
}

/* Adds key column k if it fits in `room` more columns of the line. */
static int add_key_col(struct table *t, const struct render_key *k, size_t room)
{
    if (t->nk == MAX_KEY_COLS)
        return 0;
    t->keys[t->nk] = *k;
    struct tcol c = {.kind = C_KEY, .key = t->nk, .right = k->kind == RENDER_KEY_METRIC};
    c.w = col_width(t, &c, KEY_COL_MAX);
    if (c.w + 2 > room)
        return 0;
    t->cols[t->ncols++] = c;
    t->nk++;
    return 1;
}

/* Chooses the columns: the fixed ones (EXPERIMENT only when the runs are of
 * more than one), the keys the filter and order-by mention (always), then
 * the params and metrics that differ between the runs, as many as fit
 * `width`, params taking at most half the room while metrics wait. */
static void layout(struct table *t, const struct render_key *mentioned, size_t nm, size_t width)
{
    int many_exps = 0, this_year = 1;
    struct tm now_tm, tm;
    time_t now_s = (time_t)(t->now / 1000);
    localtime_r(&now_s, &now_tm);
    for (size_t i = 0; i < t->n; i++) {
        time_t st = (time_t)(t->runs[i].start_ms / 1000);
        localtime_r(&st, &tm);
        this_year &= tm.tm_year == now_tm.tm_year;
        many_exps |= strcmp(t->runs[i].experiment, t->runs[0].experiment) != 0;
    }
    /* this year's runs show month, day and time; older ones their date */
    t->short_dates = this_year;
    for (int k = C_RUN; k <= C_DUR; k++) {
        if (k == C_EXP && !many_exps)
            continue;
        struct tcol c = {.kind = k};
        c.w = col_width(t, &c, k == C_NAME ? NAME_COL_MAX : k == C_EXP ? EXP_COL_MAX : 64);
        t->cols[t->ncols++] = c;
    }
    for (size_t k = 0; k < nm && t->nk < MAX_KEY_COLS; k++) {
        t->keys[t->nk] = mentioned[k];
        struct tcol c = {
            .kind = C_KEY, .key = t->nk, .right = mentioned[k].kind == RENDER_KEY_METRIC};
        c.w = col_width(t, &c, KEY_COL_MAX);
        t->cols[t->ncols++] = c;
        t->nk++;
    }
    /* too wide already: names and mentioned keys give way down to a floor */
    for (size_t c = 0; c < t->ncols && table_width(t) > width; c++) {
        struct tcol *col = &t->cols[c];
        size_t floor = col->kind == C_NAME ? 12 : col->kind == C_KEY ? 8 : col->w;
        size_t over = table_width(t) - width;
        if (col->w > floor)
            col->w = col->w - floor > over ? col->w - over : floor;
    }
    if (t->n < 2) {
        expand(t, width);
        return;
    }
    size_t np, nmk;
    const char **pk = key_union(t->runs, t->n, 0, &np), **mk = key_union(t->runs, t->n, 1, &nmk);
    int metrics_differ = 0;
    for (size_t k = 0; k < nmk && !metrics_differ; k++)
        metrics_differ = key_differs(t->runs, t->n, 1, mk[k]);
    for (int round = 0; round < 3; round++) {
        /* round 0: params in half the room; 1: metrics; 2: params again */
        int metric = round == 1;
        const char **keys = metric ? mk : pk;
        size_t nkeys = metric ? nmk : np;
        size_t limit = width > table_width(t) ? width - table_width(t) : 0;
        if (round == 0 && metrics_differ)
            limit /= 2;
        size_t start = table_width(t);
        for (size_t k = 0; keys && k < nkeys; k++) {
            struct render_key rk = {.kind = metric ? RENDER_KEY_METRIC : RENDER_KEY_PARAM};
            size_t used = table_width(t) - start;
            if (strlen(keys[k]) >= sizeof(rk.key) || used >= limit)
                continue;
            snprintf(rk.key, sizeof(rk.key), "%s", keys[k]);
            int dup = 0;
            for (size_t j = 0; j < t->nk; j++)
                dup |= t->keys[j].kind == rk.kind && t->keys[j].agg == 0 &&
                       strcmp(t->keys[j].key, rk.key) == 0;
            if (dup || !key_differs(t->runs, t->n, metric, keys[k]))
                continue;
            add_key_col(t, &rk, limit - used);
        }
    }
    free(pk);
    free(mk);
    expand(t, width);
}

static void print_table(struct table *t, const struct render_key *mentioned, size_t nm)
{
    char cell[300];

    layout(t, mentioned, nm, (size_t)cli_term_width());
    for (size_t c = 0; c < t->ncols; c++) {
        const struct tcol *col = &t->cols[c];
        head_text(t, col, cell, sizeof(cell));
        /* no trailing blanks after a left-aligned last column */
        render_pad(stdout, cell, col->right || c + 1 < t->ncols ? col->w : 0, col->right, NULL);
        fputs(c + 1 < t->ncols ? "  " : "\n", stdout);
    }
    for (size_t i = 0; i < t->n; i++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const struct tcol *col = &t->cols[c];
            cell_text(t, col, &t->runs[i], col->w, cell, sizeof(cell));
            render_pad(stdout, cell, col->right || c + 1 < t->ncols ? col->w : 0, col->right, NULL);
            fputs(c + 1 < t->ncols ? "  " : "\n", stdout);
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
                                             {"full-ids", no_argument, NULL, 'I'},
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
    int opt, csv = 0, full_ids = 0;

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
        case 'I':
            full_ids = 1;
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
    /* the table shows the params and metrics that differ: details always.
     * A table is for reading, so without --limit it shows the first
     * TABLE_ROWS (one more is asked for, to know whether more match);
     * --csv and --json give every run */
    q.with_details = 1;
    int capped = 0;
    if (!csv && !cli_opt.json && limit == 0) {
        q.limit = TABLE_ROWS + 1;
        capped = 1;
    }

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
        struct table *t = calloc(1, sizeof(*t));
        if (!t) {
            rc = cli_error("out of memory");
        } else {
            int more = capped && n > TABLE_ROWS;
            *t = (struct table){
                .runs = runs, .n = more ? TABLE_ROWS : n, .full_ids = full_ids, .now = now_ms()};
            print_table(t, keys, nk);
            free(t);
            if (more)
                fprintf(stderr,
                        "track runs: the first %d runs are shown; more match (--limit N for "
                        "more, --csv or --json for all)\n",
                        TABLE_ROWS);
        }
    }
    track_result_free(res);
    if (!rc && fflush(stdout))
        rc = cli_error("writing the output failed");
    return rc;
}
