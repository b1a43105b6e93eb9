/*
 * cmd_gc.c: `track gc [--dry-run] [--grace DURATION]`: removes the runs
 * deleted more than DURATION ago and the blobs nothing live references
 * (track_gc); --dry-run prints what would go and how many bytes.
 */
#include "cli.h"

#include <string.h>

#define GRACE_DEFAULT_MS (7LL * 24 * 3600 * 1000)

static int print_json(const struct track_gc_report *r, int64_t grace_ms)
{
    json_t *o = json_object(), *runs = json_array(), *blobs = json_array();
    char hex[65];

    for (size_t i = 0; i < r->n_run_list; i++) {
        const struct track_gc_run *g = &r->run_list[i];
        json_t *j = json_object();
        track_run_id_hex(&g->id, hex);
        json_object_set_new(j, "run_id", json_string(hex));
        json_object_set_new(j, "name", json_string(g->name));
        json_object_set_new(j, "deleted_time", cli_json_time(g->deleted_ms));
        json_object_set_new(j, "bytes", json_integer(g->bytes));
        json_array_append_new(runs, j);
    }
    for (size_t i = 0; i < r->n_blob_digests; i++) {
        cli_hex(r->blob_digests[i], 32, hex);
        json_array_append_new(blobs, json_string(hex));
    }
    json_object_set_new(o, "dry_run", json_boolean(r->dry_run));
    json_object_set_new(o, "grace_ms", json_integer(grace_ms));
    json_object_set_new(o, "run_count", json_integer(r->runs));
    json_object_set_new(o, "run_bytes", json_integer(r->run_bytes));
    json_object_set_new(o, "runs", runs);
    json_object_set_new(o, "blob_count", json_integer(r->blobs));
    json_object_set_new(o, "blob_bytes", json_integer(r->blob_bytes));
    json_object_set_new(o, "blobs", blobs);
    json_object_set_new(o, "blobs_kept", json_integer(r->blobs_kept));
    json_object_set_new(o, "bytes", json_integer(r->run_bytes + r->blob_bytes));
    json_object_set_new(o, "rows_removed", json_integer(r->rows_removed));
    json_object_set_new(o, "transactions", json_integer(r->transactions));
    return cli_json_print(o);
}

int cmd_gc(int argc, char **argv)
{
    static const struct option longopts[] = {{"dry-run", no_argument, NULL, 'n'},
                                             {"grace", required_argument, NULL, 'g'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_gc_report r;
    struct track_err err = {0};
    int64_t grace = GRACE_DEFAULT_MS;
    int opt, dry = 0;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (opt) {
        case 'n':
            dry = 1;
            break;
        case 'g':
            if (cli_parse_duration(optarg, &grace))
                cli_usage_error(name,
                                "--grace: \"%.40s\" is not a duration (0, or e.g. 30s, 5m, 2h, "
                                "7d, 1h30m)",
                                optarg);
            break;
        default:
            if (!cli_common_opt(opt, name))
                cli_usage_error(name, "unknown option");
        }
    }
    if (optind != argc)
        cli_usage_error(name, "takes no arguments");
    struct track_client *c = cli_client();
    int rc = track_gc(c, dry, grace, &r, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        rc = print_json(&r, grace);
        track_gc_report_free(&r);
        return rc;
    }
    const char *verb = dry ? "would remove" : "removed";
    char hex[65], t[32];
    printf("%s %lld run%s (%lld bytes of rows) and %lld blob%s (%lld bytes): %lld bytes in all\n",
           verb, (long long)r.runs, r.runs == 1 ? "" : "s", (long long)r.run_bytes,
           (long long)r.blobs, r.blobs == 1 ? "" : "s", (long long)r.blob_bytes,
           (long long)(r.run_bytes + r.blob_bytes));
    for (size_t i = 0; i < r.n_run_list; i++) {
        track_run_id_hex(&r.run_list[i].id, hex);
        cli_fmt_time(r.run_list[i].deleted_ms, t, sizeof t);
        printf("  run  %s  %s  deleted %s  %lld bytes\n", hex, r.run_list[i].name, t,
               (long long)r.run_list[i].bytes);
    }
    for (size_t i = 0; i < r.n_blob_digests; i++) {
        cli_hex(r.blob_digests[i], 32, hex);
        printf("  blob %s\n", hex);
    }
    if ((size_t)r.runs > r.n_run_list || (size_t)r.blobs > r.n_blob_digests)
        printf("  (lists cut at %zu runs and %zu blobs)\n", r.n_run_list, r.n_blob_digests);
    if (r.blobs_kept)
        printf("kept %lld unreferenced blob%s pinned by uploads while gc ran\n",
               (long long)r.blobs_kept, r.blobs_kept == 1 ? "" : "s");
    if (dry)
        printf("dry run: nothing removed\n");
    track_gc_report_free(&r);
    return 0;
}
