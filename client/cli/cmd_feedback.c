/*
 * cmd_feedback.c: `track feedback add|list|summary|export`, judgements of a
 * run or of targets inside it (track.h "feedback"; README "Feedback").
 * add reads VALUE as libtrack does (track_feedback_parse_value: booleans,
 * numbers, else a label) and sends the score at once (track_flush), so a
 * refusal is this command's error. list and summary print a table or, with
 * --json, README's shapes. export streams an experiment's scores in (run,
 * target) order and writes one record per target: the run, its params, the
 * target's text when it is a text artifact of the run (at most 64 KiB), and
 * the target's scores, as JSON lines or CSV. A run's artifact paths are
 * listed once (up to EXPORT_PATHS_MAX), so only targets that are artifacts
 * cost a read.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

#define EXPORT_TEXT_MAX 65536
/* artifact paths of one run held to tell which targets have text; past
 * this many, every target is asked for (one round trip each) */
#define EXPORT_PATHS_MAX 200000

static json_t *score_value_json(const struct track_score *s)
{
    switch (s->kind) {
    case TRACK_SCORE_NUMBER:
        return cli_json_double(s->number);
    case TRACK_SCORE_BOOL:
        return json_boolean(s->boolean);
    case TRACK_SCORE_LABEL:
        return json_string(s->label);
    default:
        return json_null();
    }
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

/* A score as README's "Feedback" shows it; with_run adds run_id and target. */
static json_t *score_json(const struct track_score *s, int with_run)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(s->id));
    if (with_run) {
        json_object_set_new(o, "run_id", s->run && *s->run ? json_string(s->run) : json_null());
        json_object_set_new(o, "target", json_string(s->target ? s->target : ""));
        /* a score of a trace or of one of its spans */
        if (s->trace)
            json_object_set_new(o, "trace_id", json_string(s->trace));
        if (s->span)
            json_object_set_new(o, "span_id", json_string(s->span));
    }
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "kind", json_string(track_score_kind_name(s->kind)));
    json_object_set_new(o, "value", score_value_json(s));
    json_object_set_new(o, "comment", str_or_null(s->comment));
    json_object_set_new(o, "rationale", str_or_null(s->rationale));
    json_object_set_new(o, "source", json_string(track_score_source_name(s->source)));
    json_object_set_new(o, "source_id", json_string(s->by ? s->by : ""));
    json_object_set_new(o, "time", cli_json_time(s->time_ms));
    return o;
}

static void value_text(const struct track_score *s, char *buf, size_t len)
{
    switch (s->kind) {
    case TRACK_SCORE_NUMBER:
        render_num(s->number, buf, len);
        break;
    case TRACK_SCORE_BOOL:
        snprintf(buf, len, "%s", s->boolean ? "true" : "false");
        break;
    case TRACK_SCORE_LABEL:
        snprintf(buf, len, "%s", s->label);
        break;
    default:
        snprintf(buf, len, "-");
    }
}

/* ---- add --------------------------------------------------------------------------- */

int cmd_feedback_add(int argc, char **argv)
{
    static const struct option longopts[] = {{"target", required_argument, NULL, 't'},
                                             {"trace", required_argument, NULL, 'T'},
                                             {"span", required_argument, NULL, 'S'},
                                             {"comment", required_argument, NULL, 'c'},
                                             {"rationale", required_argument, NULL, 'r'},
                                             {"source", required_argument, NULL, 's'},
                                             {"by", required_argument, NULL, 'b'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_score s = {0};
    struct track_err err = {0};
    char *pos[3];
    int opt, n_pos = 0;

    /* VALUE may be negative (-0.5, -2): set such words aside so getopt
     * does not take them for options; then the positionals, in order */
    char **opts = calloc((size_t)argc + 1, sizeof(*opts));
    char *neg = calloc((size_t)argc + 1, 1);
    int n_opts = 0;
    if (!opts || !neg) {
        free(opts);
        free(neg);
        return cli_error("out of memory");
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        double dummy;
        int takes_value = !strcmp(a, "--target") || !strcmp(a, "--trace") || !strcmp(a, "--span") ||
                          !strcmp(a, "--comment") || !strcmp(a, "--rationale") ||
                          !strcmp(a, "--source") || !strcmp(a, "--by") || !strcmp(a, "--run") ||
                          !strcmp(a, "--server");
        if (takes_value && i + 1 < argc) {
            opts[n_opts++] = argv[i++];
            opts[n_opts++] = argv[i];
        } else if (i > 0 && a[0] == '-' && a[1] != '-' &&
                   ((a[1] >= '0' && a[1] <= '9') || a[1] == '.' ||
                    cli_parse_double(a, &dummy) == 0)) {
            neg[i] = 1;
        } else {
            opts[n_opts++] = argv[i];
        }
    }
    opterr = 0;
    while ((opt = cli_getopt(n_opts, opts, "h", longopts)) != -1) {
        if (opt == 't')
            s.target = optarg;
        else if (opt == 'T')
            s.trace = optarg;
        else if (opt == 'S')
            s.span = optarg;
        else if (opt == 'c')
            s.comment = optarg;
        else if (opt == 'r')
            s.rationale = optarg;
        else if (opt == 's') {
            if (!(s.source = track_score_source_parse(optarg)))
                cli_usage_error(name, "--source: \"%s\" is not human, llm_judge or code", optarg);
        } else if (opt == 'b')
            s.by = optarg;
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    for (int i = 1; i < argc; i++) {
        int is_pos = neg[i];
        for (int k = optind; k < n_opts && !is_pos; k++)
            is_pos = opts[k] == argv[i];
        if (is_pos && n_pos < 3)
            pos[n_pos++] = argv[i];
        else if (is_pos)
            n_pos++;
    }
    free(opts);
    free(neg);
    if (n_pos < 1 || n_pos > 2)
        cli_usage_error(name, "expected NAME [VALUE] (a comment alone needs --comment TEXT)");
    s.name = pos[0];
    if (n_pos == 2 && track_feedback_parse_value(pos[1], &s, &err))
        return cli_track_error(&err);
    if (n_pos == 1 && !(s.comment && *s.comment))
        cli_usage_error(name, "expected a VALUE or --comment TEXT (or both)");
    if (s.span && *s.span && !(s.trace && *s.trace))
        cli_usage_error(name, "--span SPAN goes with its trace: --trace TRACE --span SPAN");
    if (s.trace && *s.trace && s.target && *s.target)
        cli_usage_error(name, "--target and --trace: one target only");
    if (track_feedback_check(&s, &err))
        return cli_track_error(&err);
    struct track_client *c = cli_client();
    /* a trace's score needs no run: the trace's own, if any, is taken */
    int rc = s.trace && *s.trace && !cli_run_arg() ? 0 : cli_use_run(c);
    if (!rc) {
        rc = track_feedback_add(c, &s, &err);
        if (!rc)
            rc = track_flush(c, &err);
        if (rc)
            rc = cli_track_error(&err);
        else if (err.code == TRACK_E_SPOOLED)
            cli_warn("%s", err.msg);
    }
    track_client_close(c);
    return rc;
}

/* ---- list -------------------------------------------------------------------------- */

struct list_out {
    json_t *arr;
    int64_t n;
};

static int list_one(void *ctx, const struct track_score *s)
{
    struct list_out *o = ctx;
    char t[32], v[300];

    o->n++;
    if (o->arr) {
        json_array_append_new(o->arr, score_json(s, 1));
        return 0;
    }
    cli_fmt_time(s->time_ms, t, sizeof t);
    value_text(s, v, sizeof v);
    printf("%-19s  %.8s  %-16s  %-16s  %-12s  %-9s  %-12s  %.60s\n", t, s->run,
           s->target && *s->target ? s->target : "(run)", s->name, v,
           track_score_source_name(s->source), s->by, s->comment ? s->comment : "");
    return 0;
}

int cmd_feedback_list(int argc, char **argv)
{
    static const struct option longopts[] = {{"target", required_argument, NULL, 't'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"experiment", required_argument, NULL, 'e'},
                                             {"trace", required_argument, NULL, 'T'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_feedback_query q = {0};
    struct track_err err = {0};
    struct list_out o = {0};
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 't') {
            q.target = optarg;
            q.has_target = 1;
        } else if (opt == 'n')
            q.name = optarg;
        else if (opt == 'e')
            q.experiment = optarg;
        else if (opt == 'T') {
            uint8_t id[16];
            if (track_trace_id_parse(optarg, id))
                cli_usage_error(name, "--trace: expected 32 hex digits, got \"%s\"", optarg);
            q.trace = optarg;
        } else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (argc - optind > 1)
        cli_usage_error(name, "expected at most one RUN");
    if (q.trace && (q.experiment || argc - optind == 1))
        cli_usage_error(name, "--trace lists one trace's scores: no RUN or --experiment beside it");
    q.run = argc - optind == 1 ? argv[optind] : q.experiment || q.trace ? NULL : cli_run_arg();
    if (!q.run && !q.experiment && !q.trace)
        cli_usage_error(name, "expected RUN (or --run, TRACK_RUN_ID, --experiment NAME, --trace "
                              "TRACE)");
    struct track_client *c = cli_client();
    if (cli_opt.json)
        o.arr = json_array();
    else
        printf("%-19s  %-8s  %-16s  %-16s  %-12s  %-9s  %-12s  %s\n", "TIME", "RUN", "TARGET",
               "NAME", "VALUE", "SOURCE", "BY", "COMMENT");
    int rc = track_feedback_list(c, &q, list_one, &o, &err);
    track_client_close(c);
    if (rc) {
        json_decref(o.arr);
        return cli_track_error(&err);
    }
    return o.arr ? cli_json_print(o.arr) : 0;
}

/* ---- summary ----------------------------------------------------------------------- */

/* A summary as README's "Feedback" shows it. */
static json_t *summary_json(const struct track_feedback_summary *s)
{
    json_t *o = json_object();
    if (s->run[0])
        json_object_set_new(o, "run_id", json_string(s->run));
    if (s->target)
        json_object_set_new(o, "target", json_string(s->target));
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "kind", json_string(track_score_kind_name(s->kind)));
    json_object_set_new(o, "count", json_integer(s->count));
    json_object_set_new(o, "comments", json_integer(s->comments));
    if (s->kind == TRACK_SCORE_NUMBER) {
        json_t *d = json_array();
        json_object_set_new(o, "mean", s->count ? cli_json_double(s->mean) : json_null());
        json_object_set_new(o, "sum", cli_json_double(s->sum));
        json_object_set_new(o, "min", s->count ? cli_json_double(s->min) : json_null());
        json_object_set_new(o, "max", s->count ? cli_json_double(s->max) : json_null());
        for (size_t i = 0; i < s->n_dist; i++) {
            json_t *b = json_object();
            if (s->dist_binned) {
                double w = (s->max - s->min) / (double)s->n_dist;
                json_object_set_new(b, "from", cli_json_double(s->dist_values[i]));
                json_object_set_new(
                    b, "to", cli_json_double(i + 1 == s->n_dist ? s->max : s->dist_values[i] + w));
            } else {
                json_object_set_new(b, "value", cli_json_double(s->dist_values[i]));
            }
            json_object_set_new(b, "count", json_integer(s->dist_counts[i]));
            json_array_append_new(d, b);
        }
        json_object_set_new(o, "distribution", d);
        json_object_set_new(o, "binned", json_boolean(s->dist_binned));
    } else if (s->kind == TRACK_SCORE_BOOL) {
        json_object_set_new(o, "true_count", json_integer(s->true_count));
        json_object_set_new(o, "true_ratio", s->count ? cli_json_double(s->mean) : json_null());
    } else if (s->kind == TRACK_SCORE_LABEL) {
        json_t *l = json_object();
        for (size_t i = 0; i < s->n_labels; i++)
            json_object_set_new(l, s->labels[i], json_integer(s->label_counts[i]));
        json_object_set_new(o, "labels", l);
        json_object_set_new(o, "other_labels", json_integer(s->other_labels));
    }
    return o;
}

struct sum_out {
    json_t *arr;
    int by_target;
};

static int summary_one(void *ctx, const struct track_feedback_summary *s)
{
    struct sum_out *o = ctx;
    char a[32], b[32], m[32], rest[512];
    size_t used = 0;

    if (o->arr) {
        json_array_append_new(o->arr, summary_json(s));
        return 0;
    }
    rest[0] = '\0';
    snprintf(a, sizeof a, "-");
    snprintf(b, sizeof b, "-");
    snprintf(m, sizeof m, "-");
    if (s->kind == TRACK_SCORE_NUMBER && s->count) {
        render_num(s->mean, m, sizeof m);
        render_num(s->min, a, sizeof a);
        render_num(s->max, b, sizeof b);
        for (size_t i = 0; i < s->n_dist && used < sizeof rest - 40; i++) {
            char v[32];
            render_num(s->dist_values[i], v, sizeof v);
            used += (size_t)snprintf(rest + used, sizeof rest - used, "%s%s%s:%lld", i ? " " : "",
                                     v, s->dist_binned ? "+" : "", (long long)s->dist_counts[i]);
        }
    } else if (s->kind == TRACK_SCORE_BOOL && s->count) {
        snprintf(m, sizeof m, "%.3f", s->mean);
        snprintf(rest, sizeof rest, "true %lld of %lld", (long long)s->true_count,
                 (long long)s->count);
    } else if (s->kind == TRACK_SCORE_LABEL) {
        for (size_t i = 0; i < s->n_labels && used < sizeof rest - 300; i++)
            used += (size_t)snprintf(rest + used, sizeof rest - used, "%s%s:%lld", i ? " " : "",
                                     s->labels[i], (long long)s->label_counts[i]);
        if (s->other_labels && used < sizeof rest)
            snprintf(rest + used, sizeof rest - used, " (others: %lld)",
                     (long long)s->other_labels);
    }
    if (o->by_target)
        printf("%.8s  %-16s  ", s->run, s->target && *s->target ? s->target : "(run)");
    printf("%-20s  %-8s  %6lld  %8lld  %-10s  %-10s  %-10s  %s\n", s->name,
           track_score_kind_name(s->kind), (long long)s->count, (long long)s->comments, m, a, b,
           rest);
    return 0;
}

int cmd_feedback_summary(int argc, char **argv)
{
    static const struct option longopts[] = {{"experiment", required_argument, NULL, 'e'},
                                             {"by-target", no_argument, NULL, 't'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *name = argv[0], *experiment = NULL, *run;
    struct track_err err = {0};
    struct sum_out o = {0};
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 'e')
            experiment = optarg;
        else if (opt == 't')
            o.by_target = 1;
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (argc - optind > 1)
        cli_usage_error(name, "expected at most one RUN");
    run = argc - optind == 1 ? argv[optind] : experiment ? NULL : cli_run_arg();
    if (run && experiment && argc - optind == 1)
        cli_usage_error(name, "RUN or --experiment NAME, not both");
    if (!run && !experiment)
        cli_usage_error(name, "expected RUN or --experiment NAME");
    struct track_client *c = cli_client();
    if (cli_opt.json)
        o.arr = json_array();
    else {
        if (o.by_target)
            printf("%-8s  %-16s  ", "RUN", "TARGET");
        printf("%-20s  %-8s  %6s  %8s  %-10s  %-10s  %-10s  %s\n", "NAME", "KIND", "COUNT",
               "COMMENTS", "MEAN", "MIN", "MAX", "DISTRIBUTION / LABELS");
    }
    int rc = track_feedback_summary(c, run, experiment, o.by_target, summary_one, &o, &err);
    track_client_close(c);
    if (rc) {
        json_decref(o.arr);
        return cli_track_error(&err);
    }
    return o.arr ? cli_json_print(o.arr) : 0;
}

/* ---- export ------------------------------------------------------------------------ */

struct exporter {
    struct track_client *c;
    FILE *out;
    int csv;
    char run[33];   /* the run of the current group ("" before the first) */
    char *target;   /* the target of the current group */
    json_t *scores; /* its scores */
    json_t *params; /* the run's params */
    char *run_name;
    char *text;   /* EXPORT_TEXT_MAX + 1 bytes */
    char **paths; /* the run's artifact paths, sorted */
    size_t n_paths, cap_paths;
    int paths_over; /* more than EXPORT_PATHS_MAX: ask for every target */
    int64_t records;
    struct track_err err;
    int failed;
};

static void csv_field(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int take_path(void *ctx, const struct track_artifact_info *a)
{
    struct exporter *x = ctx;
    if (x->n_paths == EXPORT_PATHS_MAX) {
        x->paths_over = 1;
        return 1;
    }
    if (x->n_paths == x->cap_paths) {
        size_t cap = x->cap_paths ? x->cap_paths * 2 : 64;
        char **p = realloc(x->paths, cap * sizeof(*p));
        if (!p)
            return -1;
        x->paths = p;
        x->cap_paths = cap;
    }
    if (!(x->paths[x->n_paths] = strdup(a->path)))
        return -1;
    x->n_paths++;
    return 0;
}

static void paths_free(struct exporter *x)
{
    for (size_t i = 0; i < x->n_paths; i++)
        free(x->paths[i]);
    free(x->paths);
    x->paths = NULL;
    x->n_paths = x->cap_paths = 0;
    x->paths_over = 0;
}

/* Whether target may be an artifact of the current run worth a read. */
static int maybe_artifact(struct exporter *x, const char *target)
{
    if (!target[0])
        return 0;
    if (x->paths_over)
        return 1;
    return x->n_paths &&
           bsearch(&target, x->paths, x->n_paths, sizeof(*x->paths), cmp_path) != NULL;
}

/* Writes the record of the current group and empties it. */
static int emit(struct exporter *x)
{
    int found = 0, cut = 0;
    int64_t size = 0;

    if (!x->scores)
        return 0;
    if (maybe_artifact(x, x->target) &&
        track_feedback_target_text(x->c, x->run, x->target, x->text, EXPORT_TEXT_MAX, &found, &size,
                                   &cut, &x->err))
        return -1;
    json_t *o = json_object();
    json_object_set_new(o, "run_id", json_string(x->run));
    json_object_set_new(o, "run_name", json_string(x->run_name ? x->run_name : ""));
    json_object_set_new(o, "target", json_string(x->target));
    json_object_set_new(o, "params", json_incref(x->params));
    json_object_set_new(o, "text", found ? json_string(x->text) : json_null());
    json_object_set_new(o, "text_bytes", found ? json_integer(size) : json_null());
    json_object_set_new(o, "text_truncated", json_boolean(found && cut));
    if (x->csv) {
        char *p = json_dumps(x->params, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *sc =
            json_dumps(x->scores, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        csv_field(x->out, x->run);
        fputc(',', x->out);
        csv_field(x->out, x->run_name ? x->run_name : "");
        fputc(',', x->out);
        csv_field(x->out, x->target);
        fputc(',', x->out);
        csv_field(x->out, p ? p : "{}");
        fputc(',', x->out);
        if (found)
            csv_field(x->out, x->text);
        fprintf(x->out, ",%s,", found && cut ? "true" : "false");
        csv_field(x->out, sc ? sc : "[]");
        fputs("\r\n", x->out);
        free(p);
        free(sc);
        json_decref(o);
    } else {
        json_object_set_new(o, "scores", json_incref(x->scores));
        json_dumpf(o, x->out, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        fputc('\n', x->out);
        json_decref(o);
    }
    json_decref(x->scores);
    x->scores = NULL;
    x->records++;
    return 0;
}

static int set_run(struct exporter *x, const char *run)
{
    struct track_result *res = NULL;
    struct track_run_info info;

    json_decref(x->params);
    x->params = json_object();
    free(x->run_name);
    x->run_name = NULL;
    paths_free(x);
    snprintf(x->run, sizeof x->run, "%s", run);
    if (track_run_get(x->c, run, &res, &info, &x->err))
        return -1;
    if (track_artifact_list(x->c, run, NULL, take_path, x, &x->err) < 0) {
        track_result_free(res);
        return -1;
    }
    if (x->n_paths)
        qsort(x->paths, x->n_paths, sizeof(*x->paths), cmp_path);
    for (size_t i = 0; i < info.n_params; i++)
        json_object_set_new(x->params, info.params[i].key, json_string(info.params[i].value));
    x->run_name = strdup(info.name);
    track_result_free(res);
    return 0;
}

static int export_one(void *ctx, const struct track_score *s)
{
    struct exporter *x = ctx;

    if (strcmp(x->run, s->run) != 0 || !x->target || strcmp(x->target, s->target) != 0) {
        if (emit(x))
            return -1;
        if (strcmp(x->run, s->run) != 0 && set_run(x, s->run))
            return -1;
        free(x->target);
        x->target = strdup(s->target);
        if (!x->target)
            return -1;
    }
    if (!x->scores)
        x->scores = json_array();
    json_t *o = score_json(s, 0);
    json_object_del(o, "id");
    json_array_append_new(x->scores, o);
    return 0;
}

int cmd_feedback_export(int argc, char **argv)
{
    static const struct option longopts[] = {{"experiment", required_argument, NULL, 'e'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"format", required_argument, NULL, 'f'},
                                             {"output", required_argument, NULL, 'o'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *name = argv[0], *format = NULL, *path = NULL;
    struct track_feedback_query q = {0};
    struct exporter x = {0};
    int opt, rc;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "ho:", longopts)) != -1) {
        if (opt == 'e')
            q.experiment = optarg;
        else if (opt == 'n')
            q.name = optarg;
        else if (opt == 'f')
            format = optarg;
        else if (opt == 'o')
            path = optarg;
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    if (!q.experiment)
        cli_usage_error(name, "--experiment NAME is required");
    if (!format || (strcmp(format, "jsonl") && strcmp(format, "csv")))
        cli_usage_error(name, "--format jsonl or --format csv is required");
    x.csv = !strcmp(format, "csv");
    x.text = malloc(EXPORT_TEXT_MAX + 1);
    if (!x.text)
        return cli_error("out of memory");
    x.out = path ? fopen(path, "w") : stdout;
    if (!x.out) {
        free(x.text);
        return cli_error("%s: cannot write: %m", path);
    }
    if (x.csv)
        fputs("run_id,run_name,target,params,text,text_truncated,scores\r\n", x.out);
    x.c = cli_client();
    rc = track_feedback_list(x.c, &q, export_one, &x, &x.err);
    if (!rc && emit(&x))
        rc = -1;
    track_client_close(x.c);
    json_decref(x.scores);
    json_decref(x.params);
    free(x.run_name);
    free(x.target);
    free(x.text);
    paths_free(&x);
    if (fflush(x.out) || (path && fclose(x.out))) {
        if (!rc)
            return cli_error("%s: write failed: %m", path ? path : "stdout");
    }
    if (rc)
        return x.err.code ? cli_track_error(&x.err) : cli_error("export failed");
    if (path)
        fprintf(stderr, "track: exported %lld record%s to %s\n", (long long)x.records,
                x.records == 1 ? "" : "s", path);
    return 0;
}
