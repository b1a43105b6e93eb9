/*
 * cmd_status.c: commands about the daemon and this user's client state:
 * `track status` (the daemon's figures), `track sync` (deliver the spool),
 * `track backup FILE` (a consistent online copy of the database, streamed
 * from the daemon and written here with the caller's rights, mode 0600).
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

int cmd_status(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_server_status st;
    struct track_result *res;
    struct track_err err = {0};
    int64_t spooled = 0, spool_bytes = 0;
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    struct track_client *c = cli_client();
    int rc = track_status(c, &res, &st, &err);
    struct track_err serr = {0};
    track_spool_pending(c, &spooled, &spool_bytes, &serr);
    if (rc) {
        track_client_close(c);
        return cli_track_error(&err);
    }
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "server", json_string(track_client_server(c)));
        json_object_set_new(o, "server_version", json_string(st.server_version));
        json_object_set_new(o, "pid", json_integer(st.pid));
        json_object_set_new(o, "uptime_ms", json_integer(st.uptime_ms));
        json_object_set_new(o, "data_dir", json_string(st.data_dir));
        json_object_set_new(o, "experiments", json_integer(st.experiments));
        json_object_set_new(o, "runs", json_integer(st.runs));
        json_object_set_new(o, "metric_points", json_integer(st.metric_points));
        json_object_set_new(o, "db_bytes", json_integer(st.db_bytes));
        json_object_set_new(o, "artifacts", json_integer(st.artifacts));
        json_object_set_new(o, "artifact_bytes", json_integer(st.artifact_bytes));
        json_object_set_new(o, "requests", json_integer(st.requests));
        json_object_set_new(o, "spooled_requests", json_integer(spooled));
        rc = cli_json_print(o);
    } else {
        char up[32];
        cli_fmt_duration(st.uptime_ms, up, sizeof(up));
        printf("server          %s\n", track_client_server(c));
        printf("version         trackd %s (pid %lld)\n", st.server_version, (long long)st.pid);
        printf("uptime          %s\n", up);
        printf("data dir        %s\n", st.data_dir);
        printf("experiments     %lld\n", (long long)st.experiments);
        printf("runs            %lld\n", (long long)st.runs);
        printf("metric points   %lld\n", (long long)st.metric_points);
        printf("database        %.1f MiB\n", (double)st.db_bytes / 1048576.0);
        printf("artifacts       %lld (%.1f MiB)\n", (long long)st.artifacts,
               (double)st.artifact_bytes / 1048576.0);
        printf("requests        %lld\n", (long long)st.requests);
        printf("spooled         %lld requests\n", (long long)spooled);
    }
    track_result_free(res);
    track_client_close(c);
    return rc;
}

int cmd_sync(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_err err = {0};
    int sent = 0, opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    struct track_client *c = cli_client();
    int rc = track_sync(c, &sent, &err);
    track_client_close(c);
    if (rc) {
        cli_error("delivered %d spooled requests, then: %s", sent, err.msg);
        return 1;
    }
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "delivered", json_integer(sent));
        return cli_json_print(o);
    }
    printf("delivered %d spooled requests\n", sent);
    return 0;
}

int cmd_backup(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_err err = {0};
    int64_t bytes = 0;
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind + 1 != argc)
        cli_usage_error(name, "expected one FILE");
    /* the daemon streams the copy; this process writes FILE with the
     * caller's rights, wherever the daemon runs */
    const char *path = argv[optind];
    struct track_client *c = cli_client();
    int rc = track_backup(c, path, &bytes, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(path));
        json_object_set_new(o, "bytes", json_integer(bytes));
        return cli_json_print(o);
    }
    printf("backup written to %s (%.1f MiB)\n", path, (double)bytes / 1048576.0);
    return 0;
}
