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

static json_t *json_strings(const char (*list)[300], int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(list[i]));
    return a;
}

/* `track sync`: every spooled request goes to the server it was written
 * for. Exit 0: all delivered; 1: something was refused for good (see the
 * rejected file), kept for a later sync, or damaged in the spool. */
int cmd_sync(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_err err = {0};
    struct track_sync_report r;
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    struct track_client *c = cli_client();
    int rc = track_spool_deliver(c, 1, &r, &err);
    track_client_close(c);
    if (rc && !(rc == TRACK_E_UNAVAILABLE && r.kept)) {
        cli_error("delivered %d spooled requests, then: %s", r.delivered, err.msg);
        return 1;
    }
    int bad = r.rejected || r.kept || r.damaged || r.moved[0];
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "delivered", json_integer(r.delivered));
        json_object_set_new(o, "rejected", json_integer(r.rejected));
        json_object_set_new(o, "kept", json_integer(r.kept));
        json_object_set_new(o, "damaged", json_integer(r.damaged));
        json_object_set_new(o, "damaged_bytes", json_integer(r.damaged_bytes));
        json_object_set_new(o, "rejected_file",
                            r.rejected ? json_string(r.rejected_path) : json_null());
        json_object_set_new(o, "rejected_reasons",
                            json_strings(r.rejected_reasons, r.n_rejected_reasons));
        json_object_set_new(o, "kept_reasons", json_strings(r.kept_reasons, r.n_kept_reasons));
        json_object_set_new(o, "moved_to", r.moved[0] ? json_string(r.moved) : json_null());
        json_object_set_new(o, "salvaged", json_integer(r.salvaged));
        rc = cli_json_print(o);
        return rc ? rc : bad;
    }
    printf("delivered %d spooled requests\n", r.delivered);
    fflush(stdout);
    if (r.moved[0])
        cli_warn("the spool's header was damaged: moved it to %s; kept the %d valid records "
                 "found in it",
                 r.moved, r.salvaged);
    if (r.damaged)
        cli_warn("skipped %d damaged spool record%s (%lld bytes): lost", r.damaged,
                 r.damaged == 1 ? "" : "s", (long long)r.damaged_bytes);
    if (r.rejected) {
        cli_error("%d spooled request%s refused for good, moved to %s:", r.rejected,
                  r.rejected == 1 ? "" : "s", r.rejected_path);
        for (int i = 0; i < r.n_rejected_reasons; i++)
            fprintf(stderr, "  %s\n", r.rejected_reasons[i]);
    }
    if (r.kept) {
        cli_error("%d spooled request%s kept for a later `track sync`:", r.kept,
                  r.kept == 1 ? "" : "s");
        for (int i = 0; i < r.n_kept_reasons; i++)
            fprintf(stderr, "  %s\n", r.kept_reasons[i]);
    }
    return bad;
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
    struct track_result *res = NULL;
    struct track_server_status st = {0};
    /* artifacts are files beside the database: say how they are kept */
    int have_status = rc == 0 && track_status(c, &res, &st, &err) == 0;
    if (rc) {
        track_client_close(c);
        return cli_track_error(&err);
    }
    char blobs[1200];
    snprintf(blobs, sizeof(blobs), "%s/blobs", have_status && st.data_dir ? st.data_dir : "DATA");
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(path));
        json_object_set_new(o, "bytes", json_integer(bytes));
        json_object_set_new(o, "blobs_dir", json_string(blobs));
        json_object_set_new(o, "artifacts", json_integer(have_status ? st.artifacts : -1));
        json_object_set_new(o, "artifact_bytes",
                            json_integer(have_status ? st.artifact_bytes : -1));
        track_result_free(res);
        track_client_close(c);
        return cli_json_print(o);
    }
    printf("backup written to %s (%.1f MiB)\n", path, (double)bytes / 1048576.0);
    /* blobs never change once in place, and the copy only names blobs that
     * were complete before it began: a copy of blobs/ taken now holds every
     * one it names (and perhaps newer ones, harmless; gc removes them) */
    if (have_status && st.artifacts > 0)
        printf("artifacts: the backup names %lld artifact%s (%.1f MiB) whose files live in %s; "
               "copy that directory now, after this backup (e.g. cp -a %s DEST/), and put it "
               "beside the restored track.db\n",
               (long long)st.artifacts, st.artifacts == 1 ? "" : "s",
               (double)st.artifact_bytes / 1048576.0, blobs, blobs);
    track_result_free(res);
    track_client_close(c);
    return 0;
}
