/*
 * cmd_experiment.c: `track experiment create|list`.
 */
#include "cli.h"

int cmd_experiment_create(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_err err = {0};
    int64_t id = 0;
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind + 1 != argc)
        cli_usage_error(name, "expected one experiment NAME");
    struct track_client *c = cli_client();
    int rc = track_experiment_create(c, argv[optind], &id, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "experiment_id", json_integer(id));
        json_object_set_new(o, "name", json_string(argv[optind]));
        return cli_json_print(o);
    }
    printf("%lld\n", (long long)id);
    return 0;
}

int cmd_experiment_list(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    const struct track_experiment_info *e;
    struct track_result *res;
    struct track_err err = {0};
    size_t n;
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    struct track_client *c = cli_client();
    int rc = track_experiment_list(c, &res, &e, &n, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_object();
            json_object_set_new(o, "experiment_id", json_integer(e[i].id));
            json_object_set_new(o, "name", json_string(e[i].name));
            json_object_set_new(o, "archived", json_boolean(e[i].archived));
            json_object_set_new(o, "created_time", cli_json_time(e[i].created_ms));
            json_object_set_new(o, "run_count", json_integer(e[i].run_count));
            json_array_append_new(a, o);
        }
        track_result_free(res);
        return cli_json_print(a);
    }
    printf("%-6s %-32s %6s  %s\n", "ID", "NAME", "RUNS", "CREATED");
    for (size_t i = 0; i < n; i++) {
        char t[32];
        cli_fmt_time(e[i].created_ms, t, sizeof(t));
        printf("%-6lld %-32s %6lld  %s%s\n", (long long)e[i].id, e[i].name,
               (long long)e[i].run_count, t, e[i].archived ? " (archived)" : "");
    }
    track_result_free(res);
    return 0;
}
