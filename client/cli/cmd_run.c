/*
 * cmd_run.c: `track run start|end|list|show|delete|restore`. `run show`
 * fits its tables to the terminal (cli_term_width) with render.c's text
 * helpers.
 */
#include "cli.h"
#include "render.h"

#include <string.h>

int cmd_run_start(int argc, char **argv)
{
    static const struct option longopts[] = {{"experiment", required_argument, NULL, 'e'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"param", required_argument, NULL, 'p'},
                                             {"tag", required_argument, NULL, 't'},
                                             {"parent", required_argument, NULL, 'P'},
                                             {"export", no_argument, NULL, 'x'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    static struct cli_kv_args kv;
    const char *name = argv[0];
    struct track_run_opts ro = {0};
    struct track_err err = {0};
    track_run_id id;
    int opt, export = 0;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'e':
            ro.experiment = optarg;
            break;
        case 'n':
            ro.name = optarg;
            break;
        case 'p':
            cli_add_kv(name, &kv, 1, optarg);
            break;
        case 't':
            cli_add_kv(name, &kv, 0, optarg);
            break;
        case 'P':
            ro.parent = optarg;
            break;
        case 'x':
            export = 1;
            break;
        default:
            if (!cli_common_opt(opt, name))
                cli_usage_error(name, "unknown option");
        }
    }
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    ro.params = kv.params;
    ro.n_params = kv.n_params;
    ro.tags = kv.tags;
    ro.n_tags = kv.n_tags;
    struct track_client *c = cli_client();
    int rc = track_run_start(c, &ro, &id, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (err.code == TRACK_E_SPOOLED)
        cli_warn("%s", err.msg);
    char hex[33];
    track_run_id_hex(&id, hex);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "run_id", json_string(hex));
        json_object_set_new(o, "spooled", json_boolean(err.code == TRACK_E_SPOOLED));
        return cli_json_print(o);
    }
    if (export)
        printf("export TRACK_RUN_ID=%s\n", hex);
    else
        printf("%s\n", hex);
    return 0;
}

static int parse_status(const char *s)
{
    if (strcasecmp(s, "finished") == 0)
        return TRACK_FINISHED;
    if (strcasecmp(s, "failed") == 0)
        return TRACK_FAILED;
    if (strcasecmp(s, "killed") == 0)
        return TRACK_KILLED;
    return -1;
}

int cmd_run_end(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"status", required_argument, NULL, 's'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_err err = {0};
    int opt, status = TRACK_FINISHED;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 's') {
            if ((status = parse_status(optarg)) < 0)
                cli_usage_error(name, "--status: expected finished, failed or killed, got \"%s\"",
                                optarg);
        } else if (!cli_common_opt(opt, name)) {
            cli_usage_error(name, "unknown option");
        }
    }
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    struct track_client *c = cli_client();
    if (cli_use_run(c)) {
        track_client_close(c);
        return 1;
    }
    int rc = track_run_end(c, status, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (err.code == TRACK_E_SPOOLED)
        cli_warn("%s", err.msg);
    return 0;
}

int cmd_run_list(int argc, char **argv)
{
    static const struct option longopts[] = {{"experiment", required_argument, NULL, 'e'},
                                             {"limit", required_argument, NULL, 'l'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    static const char *exps[65];
    const char *name = argv[0];
    struct track_run_query q = {0};
    struct track_run_info *runs;
    struct track_result *res;
    struct track_err err = {0};
    size_t n, n_exp = 0;
    int64_t limit = 0;
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 'e') {
            if (n_exp == 64)
                cli_usage_error(name, "at most 64 --experiment options");
            exps[n_exp++] = optarg;
        } else if (opt == 'l') {
            limit = cli_arg_i64(name, "--limit", optarg, 1, 100000);
        } else if (!cli_common_opt(opt, name)) {
            cli_usage_error(name, "unknown option");
        }
    }
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    q.experiments = n_exp ? exps : NULL;
    q.limit = (int)limit;
    q.with_details = cli_opt.json;
    struct track_client *c = cli_client();
    int rc = track_run_list(c, &q, &res, &runs, &n, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, cli_json_run(&runs[i]));
        track_result_free(res);
        return cli_json_print(a);
    }
    printf("%-32s  %-24s  %-16s  %-8s  %-19s  %s\n", "RUN", "NAME", "EXPERIMENT", "STATUS",
           "STARTED", "DURATION");
    for (size_t i = 0; i < n; i++) {
        char hex[33], t[32], d[32];
        const struct track_run_info *r = &runs[i];
        track_run_id_hex(&r->id, hex);
        cli_fmt_time(r->start_ms, t, sizeof(t));
        if (r->end_ms)
            cli_fmt_duration(r->end_ms - r->start_ms, d, sizeof(d));
        else
            snprintf(d, sizeof(d), "-");
        printf("%-32s  %-24.24s  %-16.16s  %-8s  %-19s  %s\n", hex, r->name, r->experiment,
               cli_status_name(r->status), t, d);
    }
    track_result_free(res);
    return 0;
}

/* Params, tags and the metric table of `run show`, fitted to the terminal:
 * keys shrink with an ellipsis in the middle, values print to 6 significant
 * digits (--json has them in full), every column aligned. */
static void show_sections(const struct track_run_info *r)
{
    size_t width = (size_t)cli_term_width(), cap = width / 2 > 32 ? 32 : width / 2;
    char key[1024];

    for (int sec = 0; sec < 2; sec++) {
        const struct track_kv *kv = sec ? r->tags : r->params;
        size_t n = sec ? r->n_tags : r->n_params;
        if (!n)
            continue;
        size_t kw = 0;
        for (size_t i = 0; i < n; i++)
            kw = render_width(kv[i].key) > kw ? render_width(kv[i].key) : kw;
        kw = kw > cap ? cap : kw;
        printf("\n%s\n", sec ? "tags" : "params");
        for (size_t i = 0; i < n; i++) {
            render_fit_middle(kv[i].key, kw, key, sizeof(key));
            fputs("  ", stdout);
            render_pad(stdout, key, kw, 0, NULL);
            printf("  %s\n", kv[i].value);
        }
    }
    if (!r->n_metrics)
        return;
    /* columns: metric, last, min, max, step, points */
    static const char *const head[6] = {"metric", "last", "min", "max", "step", "points"};
    size_t w[6];
    for (int c = 0; c < 6; c++)
        w[c] = strlen(head[c]);
    for (size_t i = 0; i < r->n_metrics; i++)
        w[0] = render_width(r->metrics[i].key) > w[0] ? render_width(r->metrics[i].key) : w[0];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            size_t rest = 2;
            for (int c = 1; c < 6; c++)
                rest += 2 + w[c];
            if (rest + w[0] > width)
                w[0] = width > rest + 8 ? width - rest : 8;
            fputs("\n  ", stdout);
            for (int c = 0; c < 6; c++) {
                render_pad(stdout, head[c], c < 5 ? w[c] : 0, c > 0, NULL);
                fputs(c < 5 ? "  " : "\n", stdout);
            }
        }
        for (size_t i = 0; i < r->n_metrics; i++) {
            const struct track_metric_summary *m = &r->metrics[i];
            char cell[6][40];
            render_num(m->last, cell[1], sizeof(cell[1]));
            render_num(m->min, cell[2], sizeof(cell[2]));
            render_num(m->max, cell[3], sizeof(cell[3]));
            snprintf(cell[4], sizeof(cell[4]), "%lld", (long long)m->last_step);
            snprintf(cell[5], sizeof(cell[5]), "%lld", (long long)m->count);
            for (int c = 1; c < 6 && pass == 0; c++)
                w[c] = strlen(cell[c]) > w[c] ? strlen(cell[c]) : w[c];
            if (pass == 0)
                continue;
            render_fit_middle(m->key, w[0], key, sizeof(key));
            fputs("  ", stdout);
            render_pad(stdout, key, w[0], 0, NULL);
            for (int c = 1; c < 6; c++) {
                fputs("  ", stdout);
                render_pad(stdout, cell[c], w[c], 1, NULL);
            }
            fputc('\n', stdout);
        }
    }
}

int cmd_run_show(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0], *run;
    struct track_run_info r;
    struct track_result *res;
    struct track_err err = {0};
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind + 1 == argc)
        run = argv[optind];
    else if (optind == argc && cli_run_arg())
        run = cli_run_arg();
    else
        cli_usage_error(name, "expected one RUN");
    struct track_client *c = cli_client();
    int rc = track_run_get(c, run, &res, &r, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = cli_json_run(&r);
        json_object_set_new(o, "lifecycle", json_string(r.deleted ? "deleted" : "active"));
        json_object_set_new(o, "deleted_time", cli_json_time(r.deleted ? r.deleted_ms : 0));
        json_object_set_new(o, "artifacts", json_integer(r.artifacts));
        json_object_set_new(o, "artifact_bytes", json_integer(r.artifact_bytes));
        rc = cli_json_print(o);
        track_result_free(res);
        return rc;
    }
    char hex[33], t[32], e[32], d[32];
    track_run_id_hex(&r.id, hex);
    cli_fmt_time(r.start_ms, t, sizeof(t));
    cli_fmt_time(r.end_ms, e, sizeof(e));
    printf("run         %s\n", hex);
    printf("name        %s\n", r.name);
    printf("experiment  %s\n", r.experiment);
    printf("status      %s\n", cli_status_name(r.status));
    if (r.deleted) {
        cli_fmt_time(r.deleted_ms, d, sizeof(d));
        printf("lifecycle   deleted %s (track run restore brings it back)\n", d);
    }
    printf("user        %s\n", r.user);
    printf("started     %s\n", t);
    printf("ended       %s\n", e);
    if (r.end_ms) {
        cli_fmt_duration(r.end_ms - r.start_ms, d, sizeof(d));
        printf("duration    %s\n", d);
    }
    if (r.has_parent) {
        track_run_id_hex(&r.parent, hex);
        printf("parent      %s\n", hex);
    }
    printf("artifacts   %lld (%lld bytes)\n", (long long)r.artifacts, (long long)r.artifact_bytes);
    show_sections(&r);
    track_result_free(res);
    return 0;
}

/* `track run delete RUN` and `track run restore RUN`. */
static int run_lifecycle(int argc, char **argv, int deleted)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0], *run;
    struct track_err err = {0};
    int opt, changed = 0;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind + 1 != argc)
        cli_usage_error(name, "expected one RUN");
    run = argv[optind];
    struct track_client *c = cli_client();
    int rc = deleted ? track_run_delete(c, run, &changed, &err)
                     : track_run_restore(c, run, &changed, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "run", json_string(run));
        json_object_set_new(o, "lifecycle", json_string(deleted ? "deleted" : "active"));
        json_object_set_new(o, "changed", json_boolean(changed));
        return cli_json_print(o);
    }
    if (deleted)
        printf(changed ? "deleted run %s (track run restore %s brings it back; track gc removes "
                         "it for good after the grace period)\n"
                       : "run %s was deleted already%.0s\n",
               run, run);
    else
        printf(changed ? "restored run %s\n" : "run %s is not deleted\n", run);
    return 0;
}

int cmd_run_delete(int argc, char **argv)
{
    return run_lifecycle(argc, argv, 1);
}

int cmd_run_restore(int argc, char **argv)
{
    return run_lifecycle(argc, argv, 0);
}
