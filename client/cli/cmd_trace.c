/*
 * cmd_trace.c: `track traces` (the traces OTLP exporters sent, newest
 * first, with their rollups) and `track trace show TRACE` (one trace as its
 * span tree: name, duration bar, model, tokens, status). Wide levels fold:
 * past FOLD_SHOW children of one span, the first FOLD_HEAD and the last
 * FOLD_TAIL are printed and a line says how many are between, so a trace of
 * 50,000 spans prints in a screen or two and in well under a second.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#include "cli.h"
#include "render.h"

#define FOLD_SHOW 50
#define FOLD_HEAD 20
#define FOLD_TAIL 5
#define BAR_WIDTH 20

static void ms_text(int64_t ns, char *buf, size_t len)
{
    double ms = (double)ns / 1e6;
    if (ms < 1)
        snprintf(buf, len, "%.2f ms", ms);
    else if (ms < 10000)
        snprintf(buf, len, "%.0f ms", ms);
    else
        snprintf(buf, len, "%.1f s", ms / 1000);
}

static void when_text(int64_t ns, char *buf, size_t len)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static json_t *trace_json(const struct track_trace_info *t)
{
    char id[33], run[33] = "";
    cli_hex(t->trace_id, 16, id);
    if (t->has_run)
        track_run_id_hex(&t->run, run);
    json_t *models = json_array();
    for (size_t i = 0; models && i < t->n_models; i++)
        json_array_append_new(models, json_string(t->models[i]));
    return json_pack("{s:s, s:s, s:s?, s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:f, s:o}",
                     "trace_id", id, "experiment", t->experiment, "run_id", t->has_run ? run : NULL,
                     "root", t->root_name, "start_ns", (json_int_t)t->start_ns, "end_ns",
                     (json_int_t)t->end_ns, "duration_ms", (double)(t->end_ns - t->start_ns) / 1e6,
                     "spans", (json_int_t)t->spans, "errors", (json_int_t)t->errors, "tokens_in",
                     (json_int_t)t->tokens_in, "tokens_out", (json_int_t)t->tokens_out,
                     "tokens_total", (json_int_t)t->tokens_total, "cost", t->cost, "models",
                     models);
}

int cmd_traces(int argc, char **argv)
{
    static const struct option longopts[] = {{"experiment", required_argument, NULL, 'e'},
                                             {"filter", required_argument, NULL, 'F'},
                                             {"limit", required_argument, NULL, 'n'},
                                             {"min-tokens", required_argument, NULL, 't'},
                                             {"min-duration", required_argument, NULL, 'd'},
                                             {"errors", no_argument, NULL, 'E'},
                                             {"csv", no_argument, NULL, 'c'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *name = argv[0], *exps[65] = {NULL};
    struct track_trace_query q = {.experiments = exps, .limit = 50};
    int n_exp = 0, csv = 0, opt;
    int64_t v;

    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'e':
            if (n_exp == 64)
                cli_usage_error(name, "--experiment: at most 64");
            exps[n_exp++] = optarg;
            break;
        case 'F':
            q.filter = optarg;
            break;
        case 'n':
            if (cli_parse_i64(optarg, &v) || v < 1 || v > 10000)
                cli_usage_error(name, "--limit: expected 1 to 10000, got \"%s\"", optarg);
            q.limit = (int)v;
            break;
        case 't':
            if (cli_parse_i64(optarg, &v) || v < 0)
                cli_usage_error(name, "--min-tokens: expected a count >= 0, got \"%s\"", optarg);
            q.min_tokens = v;
            break;
        case 'd':
            if (cli_parse_duration(optarg, &v) || v < 0)
                cli_usage_error(name, "--min-duration: expected a duration (250ms, 2s), got \"%s\"",
                                optarg);
            q.min_duration_ns = v * 1000000;
            break;
        case 'E':
            q.errors_only = 1;
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
    q.run = cli_run_arg();
    struct track_client *c = cli_client();
    struct track_trace_result *res = NULL;
    const struct track_trace_info *t = NULL;
    struct track_err err = {0};
    size_t n = 0;
    int more = 0;
    int rc = track_trace_list(c, &q, &res, &t, &n, &more, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
            json_array_append_new(a, trace_json(&t[i]));
        rc = cli_json_print(a);
        track_trace_result_free(res);
        return rc;
    }
    if (csv)
        printf("trace_id,experiment,run_id,root,start_ns,duration_ms,spans,errors,tokens_in,"
               "tokens_out,tokens_total,cost,models\n");
    else if (n)
        printf("%-32s  %-19s  %9s  %6s  %4s  %9s  %9s  %-20s  %s\n", "TRACE", "START", "DURATION",
               "SPANS", "ERR", "TOKENS", "COST", "MODEL", "ROOT");
    for (size_t i = 0; i < n; i++) {
        char id[33], when[32], dur[32], run[33] = "", models[256] = "", cost[32];
        cli_hex(t[i].trace_id, 16, id);
        when_text(t[i].start_ns, when, sizeof(when));
        ms_text(t[i].end_ns - t[i].start_ns, dur, sizeof(dur));
        for (size_t m = 0; m < t[i].n_models; m++) {
            size_t l = strlen(models);
            snprintf(models + l, sizeof(models) - l, "%s%s", m ? "," : "", t[i].models[m]);
        }
        if (csv) {
            if (t[i].has_run)
                track_run_id_hex(&t[i].run, run);
            printf("%s,", id);
            render_csv_put(stdout, t[i].experiment);
            printf(",%s,", run);
            render_csv_put(stdout, t[i].root_name);
            printf(",%lld,%.3f,%lld,%lld,%lld,%lld,%lld,%.17g,", (long long)t[i].start_ns,
                   (double)(t[i].end_ns - t[i].start_ns) / 1e6, (long long)t[i].spans,
                   (long long)t[i].errors, (long long)t[i].tokens_in, (long long)t[i].tokens_out,
                   (long long)t[i].tokens_total, t[i].cost);
            render_csv_put(stdout, models);
            putchar('\n');
            continue;
        }
        char mfit[32], rfit[64];
        render_fit(models[0] ? models : "-", 20, mfit, sizeof(mfit));
        render_fit(t[i].root_name, 60, rfit, sizeof(rfit));
        if (t[i].cost > 0)
            snprintf(cost, sizeof(cost), "%.4f", t[i].cost);
        else
            snprintf(cost, sizeof(cost), "-");
        printf("%s  %-19s  %9s  %6lld  %4lld  %9lld  %9s  ", id, when, dur, (long long)t[i].spans,
               (long long)t[i].errors, (long long)t[i].tokens_total, cost);
        render_pad(stdout, mfit, 20, 0, NULL);
        printf("  %s\n", rfit);
    }
    if (!csv && !n)
        printf("no traces\n");
    if (!csv && more)
        printf("(more: raise --limit, or narrow with --experiment, --min-tokens, --errors)\n");
    track_trace_result_free(res);
    return 0;
}

/* ---- trace show --------------------------------------------------------------------- */
struct tree {
    const struct track_span_info *s;
    size_t n;
    size_t *first, *next, *count; /* children as lists in start order; SIZE_MAX ends */
    int64_t t0, total_ns;
    int depth_max;
};

#define NONE ((size_t)-1)

static size_t find(const struct tree *t, const size_t *slots, size_t cap, const uint8_t id[8])
{
    uint64_t h = 0;
    int bits = 0;
    memcpy(&h, id, 8);
    while (((size_t)1 << bits) < cap)
        bits++;
    /* Fibonacci hashing: the product's top bits depend on every bit of the
     * id (ids that differ only in their last bytes, as counters do, spread) */
    h = (h ^ (h >> 29)) * 0x9E3779B97F4A7C15ull;
    for (size_t i = (size_t)(h >> (64 - bits));; i = (i + 1) & (cap - 1)) {
        if (slots[i] == NONE || memcmp(t->s[slots[i]].span_id, id, 8) == 0)
            return i;
    }
}

static void print_span(const struct tree *t, size_t i, int depth)
{
    const struct track_span_info *s = &t->s[i];
    char dur[32], bar[BAR_WIDTH + 1], nm[72];
    int64_t len = s->end_ns - s->start_ns;
    size_t from = t->total_ns ? (size_t)((s->start_ns - t->t0) * BAR_WIDTH / t->total_ns) : 0;
    size_t w = t->total_ns ? (size_t)(len * BAR_WIDTH / t->total_ns) : BAR_WIDTH;
    if (from >= BAR_WIDTH)
        from = BAR_WIDTH - 1;
    if (w < 1)
        w = 1;
    if (from + w > BAR_WIDTH)
        w = BAR_WIDTH - from;
    for (size_t b = 0; b < BAR_WIDTH; b++)
        bar[b] = b >= from && b < from + w ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    ms_text(len, dur, sizeof(dur));
    render_fit(s->name, (size_t)(60 - (depth > 20 ? 40 : depth * 2)), nm, sizeof(nm));
    printf("%s %9s  %*s%s", bar, dur, depth * 2, "", nm);
    if (s->model[0])
        printf("  [%s]", s->model);
    if (s->tokens_total)
        printf("  %lld tok (%lld in, %lld out)", (long long)s->tokens_total,
               (long long)s->tokens_in, (long long)s->tokens_out);
    if (s->cost > 0)
        printf("  $%.4f", s->cost);
    if (s->status == 2)
        printf("  ERROR%s%s", s->status_message[0] ? ": " : "", s->status_message);
    putchar('\n');
}

/* Prints span i and its subtree, folding wide levels; iterative over the
 * siblings, recursive over depth (bounded by --depth, and by the spans'
 * own nesting, which a cycle cannot fake: each span is printed once). */
static void print_tree(const struct tree *t, size_t i, int depth, unsigned char *seen)
{
    if (seen[i])
        return;
    seen[i] = 1;
    print_span(t, i, depth);
    if (depth + 1 > t->depth_max) {
        if (t->first[i] != NONE)
            printf("%*s%*s… %zu children below --depth %d\n", BAR_WIDTH + 12, "", (depth + 1) * 2,
                   "", t->count[i], t->depth_max);
        return;
    }
    size_t k = 0, c = t->count[i];
    for (size_t ch = t->first[i]; ch != NONE; ch = t->next[ch], k++) {
        if (c > FOLD_SHOW && k == FOLD_HEAD)
            printf("%*s%*s… %zu more children\n", BAR_WIDTH + 12, "", (depth + 1) * 2, "",
                   c - FOLD_HEAD - FOLD_TAIL);
        if (c > FOLD_SHOW && k >= FOLD_HEAD && k < c - FOLD_TAIL)
            continue;
        print_tree(t, ch, depth + 1, seen);
    }
}

static json_t *span_json(const struct track_span_info *s)
{
    char id[17], parent[17] = "";
    json_error_t je;
    cli_hex(s->span_id, 8, id);
    if (s->has_parent)
        cli_hex(s->parent, 8, parent);
    json_t *attrs = json_loads(s->attributes, 0, &je);
    return json_pack("{s:s, s:s?, s:s, s:i, s:I, s:I, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:f, "
                     "s:o}",
                     "span_id", id, "parent_span_id", s->has_parent ? parent : NULL, "name",
                     s->name, "kind", s->kind, "start_ns", (json_int_t)s->start_ns, "end_ns",
                     (json_int_t)s->end_ns, "status",
                     s->status == 2   ? "error"
                     : s->status == 1 ? "ok"
                                      : "unset",
                     "status_message", s->status_message, "model", s->model, "operation",
                     s->operation, "tokens_in", (json_int_t)s->tokens_in, "tokens_out",
                     (json_int_t)s->tokens_out, "tokens_total", (json_int_t)s->tokens_total, "cost",
                     s->cost, "attributes", attrs ? attrs : json_object());
}

int cmd_trace_show(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"depth", required_argument, NULL, 'd'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    int depth = 64, opt, rc;
    int64_t v;

    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 'd') {
            if (cli_parse_i64(optarg, &v) || v < 1 || v > 1000)
                cli_usage_error(name, "--depth: expected 1 to 1000, got \"%s\"", optarg);
            depth = (int)v;
        } else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (optind + 1 != argc)
        cli_usage_error(name, "expected one TRACE (32 hex digits)");
    struct track_client *c = cli_client();
    struct track_trace_result *res = NULL;
    const struct track_trace_info *tr = NULL;
    const struct track_span_info *s = NULL;
    struct track_err err = {0};
    size_t n = 0;
    rc = track_trace_get(c, argv[optind], !cli_opt.json, &res, &tr, &s, &n, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = trace_json(tr), *a = json_array();
        for (size_t i = 0; a && i < n; i++)
            json_array_append_new(a, span_json(&s[i]));
        json_object_set_new(o, "span_list", a);
        rc = cli_json_print(o);
        track_trace_result_free(res);
        return rc;
    }
    /* the tree: a span's parent by id (open addressing), children in start order */
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    struct tree t = {.s = s,
                     .n = n,
                     .t0 = tr->start_ns,
                     .total_ns = tr->end_ns - tr->start_ns,
                     .depth_max = depth};
    size_t *slots = malloc(cap * sizeof(size_t)), *last = malloc((n + 1) * sizeof(size_t));
    unsigned char *seen = calloc(n + 1, 1);
    t.first = malloc((n + 1) * sizeof(size_t));
    t.next = malloc((n + 1) * sizeof(size_t));
    t.count = calloc(n + 1, sizeof(size_t));
    if (!slots || !last || !seen || !t.first || !t.next || !t.count) {
        rc = cli_error("out of memory for a trace of %zu spans", n);
        goto out;
    }
    memset(slots, 0xff, cap * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        t.first[i] = t.next[i] = last[i] = NONE;
        size_t at = find(&t, slots, cap, s[i].span_id);
        if (slots[at] == NONE)
            slots[at] = i;
    }
    char id[33], when[32], dur[32];
    cli_hex(tr->trace_id, 16, id);
    when_text(tr->start_ns, when, sizeof(when));
    ms_text(tr->end_ns - tr->start_ns, dur, sizeof(dur));
    printf("trace %s  %s  %s  %lld spans, %lld errors, %lld tokens", id, when, dur,
           (long long)tr->spans, (long long)tr->errors, (long long)tr->tokens_total);
    if (tr->cost > 0)
        printf(", $%.4f", tr->cost);
    printf("  (%s)\n", tr->experiment);
    size_t roots_first = NONE, roots_last = NONE, n_roots = 0;
    for (size_t i = 0; i < n; i++) {
        size_t p = NONE;
        if (s[i].has_parent) {
            size_t at = find(&t, slots, cap, s[i].parent);
            p = slots[at];
            if (p == i)
                p = NONE;
        }
        if (p == NONE) { /* a root, or a span whose parent never arrived */
            if (roots_last == NONE)
                roots_first = i;
            else
                t.next[roots_last] = i;
            roots_last = i;
            n_roots++;
            continue;
        }
        if (last[p] == NONE)
            t.first[p] = i;
        else
            t.next[last[p]] = i;
        last[p] = i;
        t.count[p]++;
    }
    size_t k = 0;
    for (size_t r = roots_first; r != NONE; r = t.next[r], k++) {
        if (n_roots > FOLD_SHOW && k == FOLD_HEAD)
            printf("… %zu more roots\n", n_roots - FOLD_HEAD - FOLD_TAIL);
        if (n_roots > FOLD_SHOW && k >= FOLD_HEAD && k < n_roots - FOLD_TAIL)
            continue;
        print_tree(&t, r, 0, seen);
    }
    /* spans on a cycle of parents are no root's descendants: shown, not lost
     * (reached: an iterative walk from the roots, whatever was folded) */
    memset(seen, 0, n + 1);
    size_t top = 0;
    for (size_t r = roots_first; r != NONE; r = t.next[r])
        last[top++] = r; /* `last` is free now: the walk's stack */
    while (top) {
        size_t i = last[--top];
        seen[i] = 1;
        for (size_t ch = t.first[i]; ch != NONE; ch = t.next[ch])
            if (!seen[ch])
                last[top++] = ch;
    }
    int header = 0;
    for (size_t i = 0; i < n; i++)
        if (!seen[i]) {
            if (!header++)
                printf("(spans in a cycle of parent ids)\n");
            print_tree(&t, i, 0, seen);
        }
    rc = 0;
out:
    free(slots);
    free(last);
    free(seen);
    free(t.first);
    free(t.next);
    free(t.count);
    track_trace_result_free(res);
    return rc;
}

/* ---- trace export ------------------------------------------------------------------- */
/* trace export: one trace with all its spans as a JSON line */
struct export
{
    struct track_client *c;
    FILE *f;
    int64_t count;
    int failed; /* reported already (cli_error) */
    struct track_err err;
};

static int export_one(void *ctx, const struct track_trace_info *t)
{
    struct export *x = ctx;
    struct track_trace_result *one = NULL;
    const struct track_trace_info *ti = NULL;
    const struct track_span_info *s = NULL;
    size_t ns = 0;
    char id[33];
    int rc;

    cli_hex(t->trace_id, 16, id);
    if ((rc = track_trace_get(x->c, id, 0, &one, &ti, &s, &ns, &x->err)))
        return rc;
    json_t *o = trace_json(ti), *a = json_array();
    for (size_t k = 0; a && k < ns; k++)
        json_array_append_new(a, span_json(&s[k]));
    json_object_set_new(o, "span_list", a);
    char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    track_trace_result_free(one);
    if (!line || fprintf(x->f, "%s\n", line) < 0) {
        cli_error("writing the export: %s", line ? strerror(errno) : "out of memory");
        free(line);
        x->failed = 1;
        return TRACK_E_INTERNAL;
    }
    free(line);
    x->count++;
    return 0;
}

int cmd_trace_export(int argc, char **argv)
{
    static const struct option longopts[] = {{"experiment", required_argument, NULL, 'e'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"min-tokens", required_argument, NULL, 't'},
                                             {"errors", no_argument, NULL, 'E'},
                                             {"filter", required_argument, NULL, 'F'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *name = argv[0], *exps[65] = {NULL}, *out = NULL, *format = NULL;
    struct track_trace_query q = {.experiments = exps, .limit = 1000};
    int n_exp = 0, opt, rc = 0;
    int64_t v, count = 0;

    while ((opt = cli_getopt(argc, argv, "ho:", longopts)) != -1) {
        switch (opt) {
        case 'e':
            if (n_exp == 64)
                cli_usage_error(name, "--experiment: at most 64");
            exps[n_exp++] = optarg;
            break;
        case 'f':
            format = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 't':
            if (cli_parse_i64(optarg, &v) || v < 0)
                cli_usage_error(name, "--min-tokens: expected a count >= 0, got \"%s\"", optarg);
            q.min_tokens = v;
            break;
        case 'E':
            q.errors_only = 1;
            break;
        case 'F':
            q.filter = optarg;
            break;
        default:
            if (!cli_common_opt(opt, name))
                cli_usage_error(name, "unknown option");
        }
    }
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    if (!format || strcmp(format, "jsonl") != 0)
        cli_usage_error(name, "--format: jsonl is the one format (a JSON line a trace)");
    q.run = cli_run_arg();
    char tmp[4200] = "";
    FILE *f = stdout;
    if (out) {
        /* written aside and renamed into place: a reader never sees half a file */
        if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)getpid()) >= (int)sizeof(tmp))
            return cli_error("--output: path too long");
        if (!(f = fopen(tmp, "wx")))
            return cli_error("cannot create %s: %s", tmp, strerror(errno));
    }
    struct track_client *c = cli_client();
    struct export x = {.c = c, .f = f};
    /* every trace once, also those that share a start time across a page */
    if (track_trace_each(c, &q, export_one, &x, &x.err))
        rc = x.failed ? 1 : cli_track_error(&x.err);
    count = x.count;
    track_client_close(c);
    if (out) {
        if (fclose(f) != 0 && rc == 0)
            rc = cli_error("writing %s: %s", tmp, strerror(errno));
        if (rc == 0 && rename(tmp, out) != 0)
            rc = cli_error("cannot rename %s to %s: %s", tmp, out, strerror(errno));
        if (rc)
            unlink(tmp);
        else
            fprintf(stderr, "wrote %lld traces to %s\n", (long long)count, out);
    }
    return rc;
}
