/*
 * cmd_run.c: `track run start|end|list|show`.
 */
#include "cli.h"

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
        rc = cli_json_print(cli_json_run(&r));
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
    if (r.n_params) {
        printf("\nparams\n");
        for (size_t i = 0; i < r.n_params; i++)
            printf("  %-24s %s\n", r.params[i].key, r.params[i].value);
    }
    if (r.n_tags) {
        printf("\ntags\n");
        for (size_t i = 0; i < r.n_tags; i++)
            printf("  %-24s %s\n", r.tags[i].key, r.tags[i].value);
    }
    if (r.n_metrics) {
        printf("\n  %-22s %14s %14s %14s %8s %8s\n", "metric", "last", "min", "max", "step",
               "points");
        for (size_t i = 0; i < r.n_metrics; i++) {
            const struct track_metric_summary *m = &r.metrics[i];
            char l[32], mn[32], mx[32];
            cli_fmt_double(m->last, l, sizeof(l));
            cli_fmt_double(m->min, mn, sizeof(mn));
            cli_fmt_double(m->max, mx, sizeof(mx));
            printf("  %-22s %14s %14s %14s %8lld %8lld\n", m->key, l, mn, mx,
                   (long long)m->last_step, (long long)m->count);
        }
    }
    track_result_free(res);
    return 0;
}
