/*
 * test_lifecycle.c: deletion, restore, gc and lineage of runs through
 * libtrack (track.h) against a real trackd on a temporary data directory:
 * a deleted run leaves run lists unless a filter names lifecycle, still
 * answers run get, refuses writes and comes back whole on restore; gc with
 * grace 0 removes a deleted run's rows and keeps an active run's, a grace
 * keeps a recent deletion, --dry-run removes nothing and reports bytes (runs
 * and an unreferenced blob placed in the data directory); gc of a deleted
 * run of 10^5 points in several short transactions while another client's
 * log-metric keeps being answered quickly; lineage across a parent chain.
 * The blob race (a blob pinned or committed while gc runs) is tested at the
 * daemon-handler level in tests/unit/test_lifecycle_gc.c, where the blob
 * store can be driven directly.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon d;
static struct track_client *c;
static int passed;

#define PASS() (passed = 1)

static void setup(void)
{
    passed = 0;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
    c = fx_client_open(&d, 10000);
}

static void teardown(void)
{
    track_client_close(c);
    c = NULL;
    fx_daemon_cleanup(&d, !passed);
}

TestSuite(lifecycle, .init = setup, .fini = teardown, .timeout = 240);

static void start(const char *name, const char *parent, char hex[33])
{
    struct track_run_opts ro = {.experiment = "lc", .name = name, .parent = parent};
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(c, &ro, &id, &err), 0, "start %s: %s", name, err.msg);
    track_run_id_hex(&id, hex);
}

static size_t count_runs(const char *filter, const char *want_hex, int *found)
{
    struct track_run_query q = {.filter = filter};
    struct track_result *res = NULL;
    struct track_run_info *runs = NULL;
    struct track_err err = {0};
    size_t n = 0;
    char hex[33];
    cr_assert_eq(track_run_list(c, &q, &res, &runs, &n, &err), 0, "list %s: %s",
                 filter ? filter : "", err.msg);
    *found = 0;
    for (size_t i = 0; i < n; i++) {
        track_run_id_hex(&runs[i].id, hex);
        if (strcmp(hex, want_hex) == 0)
            *found = 1;
    }
    track_result_free(res);
    return n;
}

static int get_run(const char *hex, struct track_run_info *info, struct track_result **res)
{
    struct track_err err = {0};
    return track_run_get(c, hex, res, info, &err);
}

Test(lifecycle, delete_hides_run_from_lists_filter_shows_it_restore_brings_it_back)
{
    char a[33], b[33];
    struct track_err err = {0};
    int found, changed = 0;
    start("keep", NULL, a);
    start("drop", NULL, b);
    cr_assert_eq(track_log_param(c, "lr", "0.1", &err), 0, "%s", err.msg);
    cr_assert_eq(track_log_metric(c, "loss", 0.5, 1, 0, &err), 0);
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);

    cr_assert_eq(track_run_delete(c, b, &changed, &err), 0, "%s", err.msg);
    cr_assert_eq(changed, 1);
    cr_assert_eq(track_run_delete(c, b, &changed, &err), 0, "%s", err.msg);
    cr_assert_eq(changed, 0, "deleting again changes nothing");

    cr_assert_eq(count_runs(NULL, b, &found), 1);
    cr_assert_eq(found, 0, "a deleted run is not listed");
    count_runs("params.lr = '0.1'", b, &found);
    cr_assert_eq(found, 0, "nor found by search");
    cr_assert_eq(count_runs("lifecycle = 'deleted'", b, &found), 1);
    cr_assert_eq(found, 1, "a filter on lifecycle finds it");
    cr_assert_eq(count_runs("lifecycle = 'deleted' and params.lr = '0.1'", b, &found), 1);
    cr_assert_eq(count_runs("lifecycle IN ('active', 'deleted')", b, &found), 2);
    cr_assert_eq(found, 1);

    struct track_run_info info;
    struct track_result *res = NULL;
    cr_assert_eq(get_run(b, &info, &res), 0, "run get of a deleted run still works");
    cr_assert_eq(info.deleted, 1);
    cr_assert_gt(info.deleted_ms, 0);
    cr_assert_eq(info.n_params, 1, "its rows are all there");
    cr_assert_eq(info.n_metrics, 1);
    track_result_free(res);

    cr_assert_eq(track_run_restore(c, b, &changed, &err), 0, "%s", err.msg);
    cr_assert_eq(changed, 1);
    cr_assert_eq(count_runs(NULL, b, &found), 2);
    cr_assert_eq(found, 1, "restored: listed again");
    count_runs("params.lr = '0.1'", b, &found);
    cr_assert_eq(found, 1);
    cr_assert_eq(get_run(b, &info, &res), 0);
    cr_assert_eq(info.deleted, 0);
    cr_assert_eq(info.deleted_ms, 0);
    cr_assert_eq(info.n_metrics, 1);
    track_result_free(res);
    cr_assert_eq(track_run_restore(c, b, &changed, &err), 0);
    cr_assert_eq(changed, 0);
    cr_assert_eq(track_run_delete(c, "ffffffffffffffffffffffffffffffff", NULL, &err),
                 TRACK_E_NOT_FOUND);
    PASS();
}

Test(lifecycle, logging_into_deleted_run_is_refused)
{
    char a[33];
    struct track_err err = {0};
    start("gone", NULL, a);
    cr_assert_eq(track_run_delete(c, a, NULL, &err), 0, "%s", err.msg);

    cr_assert_eq(track_log_param(c, "lr", "0.1", &err), TRACK_E_CONFLICT);
    cr_assert(strstr(err.msg, a) && strstr(err.msg, "deleted"), "names run and state: %s", err.msg);
    cr_assert_eq(track_set_tag(c, "k", "v", &err), TRACK_E_CONFLICT, "%s", err.msg);
    cr_assert_eq(track_log_metric(c, "loss", 1.0, 0, 0, &err), 0);
    cr_assert_eq(track_flush(c, &err), TRACK_E_CONFLICT, "%s", err.msg);
    cr_assert(strstr(err.msg, "deleted"), "%s", err.msg);
    cr_assert_eq(track_run_end(c, TRACK_FINISHED, &err), TRACK_E_CONFLICT, "%s", err.msg);

    struct track_run_info info;
    struct track_result *res = NULL;
    cr_assert_eq(get_run(a, &info, &res), 0);
    cr_assert_eq(info.n_params + info.n_tags + info.n_metrics, 0, "nothing was written");
    cr_assert_eq(info.status, TRACK_RUNNING);
    track_result_free(res);

    cr_assert_eq(track_run_restore(c, a, NULL, &err), 0);
    cr_assert_eq(track_log_param(c, "lr", "0.1", &err), 0, "restored: writable: %s", err.msg);
    PASS();
}

static void log_points(int n, const char *key)
{
    struct track_err err = {0};
    for (int i = 0; i < n; i++)
        cr_assert_eq(track_log_metric(c, key, i * 0.5, i, 1700000000000LL + i, &err), 0, "%s",
                     err.msg);
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
}

Test(lifecycle, gc_grace_0_removes_deleted_rows_and_keeps_active_runs)
{
    char keep[33], drop[33];
    struct track_err err = {0};
    struct track_gc_report r;
    start("keep", NULL, keep);
    cr_assert_eq(track_log_param(c, "lr", "0.1", &err), 0);
    log_points(500, "loss");
    start("drop", NULL, drop);
    cr_assert_eq(track_log_param(c, "lr", "0.2", &err), 0);
    cr_assert_eq(track_set_tag(c, "stage", "x", &err), 0);
    log_points(500, "loss");
    cr_assert_eq(track_run_delete(c, drop, NULL, &err), 0, "%s", err.msg);

    /* the default grace keeps a fresh deletion */
    cr_assert_eq(track_gc(c, 0, 7LL * 86400000, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.runs, 0);
    cr_assert_eq(r.rows_removed, 0);
    track_gc_report_free(&r);
    struct track_run_info info;
    struct track_result *res = NULL;
    cr_assert_eq(get_run(drop, &info, &res), 0, "inside the grace period: still there");
    track_result_free(res);

    cr_assert_eq(track_gc(c, 0, 0, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.dry_run, 0);
    cr_assert_eq(r.runs, 1);
    cr_assert_eq(r.n_run_list, 1);
    char hex[33];
    track_run_id_hex(&r.run_list[0].id, hex);
    cr_assert_str_eq(hex, drop);
    /* chunk(s) + summary + param + tag + the run's row */
    cr_assert_geq(r.rows_removed, 5, "rows %lld", (long long)r.rows_removed);
    track_gc_report_free(&r);

    cr_assert_eq(get_run(drop, &info, &res), TRACK_E_NOT_FOUND, "gone for good");
    int found;
    count_runs("lifecycle = 'deleted'", drop, &found);
    cr_assert_eq(found, 0);
    cr_assert_eq(get_run(keep, &info, &res), 0);
    cr_assert_eq(info.n_params, 1);
    cr_assert_eq(info.n_metrics, 1);
    cr_assert_eq(info.metrics[0].count, 500, "the active run keeps every point");
    track_result_free(res);

    const int64_t *steps, *times;
    const double *values;
    size_t n;
    int64_t next;
    int more;
    cr_assert_eq(track_metric_history(c, keep, "loss", 0, 0, &res, &steps, &times, &values, &n,
                                      &next, &more, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 500);
    track_result_free(res);
    cr_assert_eq(track_gc(c, 0, -1, &r, &err), TRACK_E_INVALID_ARGUMENT);
    PASS();
}

/* Writes an unreferenced blob into DIR/blobs as a committed one looks. */
static void orphan_blob(const char *content, char hex_out[65], size_t *size)
{
    uint8_t dg[32];
    char path[600];
    static const char x[] = "0123456789abcdef";
    cr_assert_geq(sodium_init(), 0);
    crypto_generichash(dg, 32, (const unsigned char *)content, strlen(content), NULL, 0);
    for (int i = 0; i < 32; i++) {
        hex_out[2 * i] = x[dg[i] >> 4];
        hex_out[2 * i + 1] = x[dg[i] & 15];
    }
    hex_out[64] = '\0';
    snprintf(path, sizeof path, "%s/blobs/%.2s", d.dir, hex_out);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/blobs/%.2s/%s", d.dir, hex_out, hex_out + 2);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(content, f);
    fclose(f);
    *size = strlen(content);
}

static int blob_file_exists(const char *hex)
{
    char path[600];
    struct stat sb;
    snprintf(path, sizeof path, "%s/blobs/%.2s/%s", d.dir, hex, hex + 2);
    return stat(path, &sb) == 0;
}

Test(lifecycle, dry_run_removes_nothing_and_reports_bytes)
{
    char drop[33], blob[65];
    size_t blob_size;
    struct track_err err = {0};
    struct track_gc_report r;
    start("drop", NULL, drop);
    log_points(1000, "loss");
    cr_assert_eq(track_run_delete(c, drop, NULL, &err), 0);
    orphan_blob("bytes no run references\n", blob, &blob_size);

    cr_assert_eq(track_gc(c, 1, 0, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.dry_run, 1);
    cr_assert_eq(r.runs, 1);
    cr_assert_gt(r.run_bytes, 100, "1000 points take bytes: %lld", (long long)r.run_bytes);
    cr_assert_eq(r.run_list[0].bytes, r.run_bytes);
    cr_assert_eq(r.blobs, 1);
    cr_assert_eq(r.blob_bytes, (int64_t)blob_size);
    char hex[65];
    static const char x[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = x[r.blob_digests[0][i] >> 4];
        hex[2 * i + 1] = x[r.blob_digests[0][i] & 15];
    }
    hex[64] = '\0';
    cr_assert_str_eq(hex, blob);
    cr_assert_eq(r.rows_removed, 0);
    cr_assert_eq(r.transactions, 0);
    track_gc_report_free(&r);

    struct track_run_info info;
    struct track_result *res = NULL;
    cr_assert_eq(get_run(drop, &info, &res), 0, "dry run: the run is still there");
    cr_assert_eq(info.metrics[0].count, 1000);
    track_result_free(res);
    cr_assert(blob_file_exists(blob), "dry run: the blob is still there");

    cr_assert_eq(track_gc(c, 0, 0, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.runs, 1);
    cr_assert_eq(r.blobs, 1);
    cr_assert_eq(r.blob_bytes, (int64_t)blob_size);
    track_gc_report_free(&r);
    cr_assert_eq(get_run(drop, &info, &res), TRACK_E_NOT_FOUND);
    cr_assert(!blob_file_exists(blob), "gc: the unreferenced blob went");
    PASS();
}

/* ---- gc beside ingest --------------------------------------------------------------- */

struct logger {
    struct track_client *cl;
    char run[33];
    volatile int stop;
    long long worst_ms;
    int n, failed;
    char msg[600];
};

static void *logger_main(void *p)
{
    struct logger *l = p;
    struct track_err err = {0};
    if (track_run_use(l->cl, l->run, &err)) {
        l->failed = 1;
        snprintf(l->msg, sizeof l->msg, "use: %s", err.msg);
        return NULL;
    }
    while (!l->stop) {
        long long t0 = fx_now_ms();
        if (track_log_metric(l->cl, "live", l->n, l->n, 0, &err) || track_flush(l->cl, &err)) {
            l->failed = 1;
            snprintf(l->msg, sizeof l->msg, "log: %s", err.msg);
            return NULL;
        }
        long long took = fx_now_ms() - t0;
        if (took > l->worst_ms)
            l->worst_ms = took;
        l->n++;
        if (l->n > 100000)
            break;
    }
    return NULL;
}

Test(lifecycle, gc_of_large_deleted_run_does_not_block_concurrent_log_metric)
{
    char big[33], live[33];
    struct track_err err = {0};
    struct track_gc_report r;
    start("live", NULL, live);
    start("big", NULL, big);
    /* 10^5 points in 20 keys, flushed 300 points a key at a time: about 340
     * chunk rows, more than one gc transaction takes */
    for (int i = 0; i < 100000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%02d", i % 20);
        cr_assert_eq(track_log_metric(c, key, i, i / 20, 1700000000000LL + i, &err), 0, "%s",
                     err.msg);
        if ((i + 1) % 6000 == 0)
            cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_delete(c, big, NULL, &err), 0, "%s", err.msg);

    struct logger l = {.cl = fx_client_open(&d, 10000)};
    memcpy(l.run, live, 33);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, logger_main, &l), 0);
    /* the logger is under way before gc starts */
    long long until = fx_now_ms() + 5000;
    while (l.n < 5 && !l.failed && fx_now_ms() < until)
        usleep(1000);
    long long t0 = fx_now_ms();
    int rc = track_gc(c, 0, 0, &r, &err);
    long long gc_ms = fx_now_ms() - t0;
    int during = l.n;
    l.stop = 1;
    pthread_join(th, NULL);
    track_client_close(l.cl);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_eq(l.failed, 0, "%s", l.msg);
    cr_assert_eq(r.runs, 1);
    cr_assert_geq(r.rows_removed, 300, "rows %lld", (long long)r.rows_removed);
    cr_assert_geq(r.transactions, 2, "bounded batches: %lld transactions",
                  (long long)r.transactions);
    fprintf(stderr,
            "gc of 10^5 points: %lld ms, %lld rows in %lld transactions; concurrent log-metric: "
            "%d flushes, slowest %lld ms\n",
            gc_ms, (long long)r.rows_removed, (long long)r.transactions, during, l.worst_ms);
    /* generous for a loaded 2-core machine under sanitizers; one long
     * transaction over the whole run would show as the whole gc time */
    cr_assert_lt(l.worst_ms, 1500, "a log-metric waited %lld ms", l.worst_ms);
    track_gc_report_free(&r);

    struct track_run_info info;
    struct track_result *res = NULL;
    cr_assert_eq(get_run(live, &info, &res), 0);
    cr_assert_eq(info.n_metrics, 1);
    cr_assert_eq(info.metrics[0].count, l.n, "every concurrent point kept");
    track_result_free(res);
    cr_assert_eq(get_run(big, &info, &res), TRACK_E_NOT_FOUND);
    PASS();
}

/* ---- lineage -------------------------------------------------------------------------- */

Test(lifecycle, lineage_across_three_deep_parent_chain)
{
    char root[33], mid[33], leaf[33], leaf2[33], hex[33];
    struct track_err err = {0};
    struct track_lineage l;
    start("root", NULL, root);
    start("mid", root, mid);
    const struct track_kv tags[] = {{"sys.git.commit", "0123abcd"},
                                    {"sys.command", "./train --lr 0.01"}};
    cr_assert_eq(track_set_tags(c, tags, 2, &err), 0, "%s", err.msg);
    start("leaf", mid, leaf);
    start("leaf2", mid, leaf2);

    cr_assert_eq(track_lineage_get(c, leaf, &l, &err), 0, "%s", err.msg);
    track_run_id_hex(&l.run.id, hex);
    cr_assert_str_eq(hex, leaf);
    cr_assert_eq(l.n_ancestors, 2);
    track_run_id_hex(&l.ancestors[0].id, hex);
    cr_assert_str_eq(hex, mid, "parent first");
    track_run_id_hex(&l.ancestors[1].id, hex);
    cr_assert_str_eq(hex, root, "then up to the root");
    cr_assert_str_eq(l.ancestors[1].name, "root");
    cr_assert_eq(l.n_children, 0);
    cr_assert_str_eq(l.git_commit, "");
    cr_assert_eq(l.n_artifacts, 0, "the leaf logged no artifact");
    cr_assert_eq(l.n_model_versions, 0);
    track_lineage_free(&l);

    cr_assert_eq(track_lineage_get(c, mid, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(l.n_ancestors, 1);
    cr_assert_eq(l.n_children, 2);
    track_run_id_hex(&l.children[0].id, hex);
    cr_assert_str_eq(hex, leaf);
    track_run_id_hex(&l.children[1].id, hex);
    cr_assert_str_eq(hex, leaf2);
    cr_assert_str_eq(l.git_commit, "0123abcd");
    cr_assert_str_eq(l.command, "./train --lr 0.01");
    cr_assert_eq(l.truncated, 0);
    track_lineage_free(&l);

    /* a deleted ancestor still shows, marked; the root has no parents */
    cr_assert_eq(track_run_delete(c, root, NULL, &err), 0);
    cr_assert_eq(track_lineage_get(c, leaf, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(l.n_ancestors, 2);
    cr_assert_eq(l.ancestors[1].deleted, 1);
    track_lineage_free(&l);
    cr_assert_eq(track_lineage_get(c, root, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(l.n_ancestors, 0);
    cr_assert_eq(l.n_children, 1);
    cr_assert_eq(l.run.deleted, 1);
    track_lineage_free(&l);
    cr_assert_eq(track_lineage_get(c, "ffff0000", &l, &err), TRACK_E_NOT_FOUND);
    PASS();
}

/* The artifacts a run logged and the model versions made from it, as the
 * artifact and model modules store them (artifacts by the run's row id,
 * versions by its uuid): both show in its lineage. */
Test(lifecycle, lineage_lists_the_runs_artifacts_and_model_versions)
{
    char run[33], file[300], hex[33];
    struct track_err err = {0};
    struct track_lineage l;
    struct track_model_result *res = NULL;
    const struct track_model_version *v = NULL;

    start("trained", NULL, run);
    snprintf(file, sizeof file, "%s/weights.txt", d.dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs("w 0.5 0.25\n", f);
    fclose(f);
    cr_assert_eq(track_artifact_put(c, file, "model/weights.txt", &err), 0, "%s", err.msg);
    cr_assert_eq(track_model_register(c, "lc-model", run, "model/weights.txt", NULL, NULL, 0, &res,
                                      &v, &err),
                 0, "%s", err.msg);
    track_model_result_free(res);

    cr_assert_eq(track_lineage_get(c, run, &l, &err), 0, "%s", err.msg);
    track_run_id_hex(&l.run.id, hex);
    cr_assert_str_eq(hex, run);
    cr_assert_eq(l.n_artifacts, 1, "%zu artifacts", l.n_artifacts);
    cr_assert_str_eq(l.artifacts[0].path, "model/weights.txt");
    cr_assert_eq(l.artifacts[0].size, (int64_t)strlen("w 0.5 0.25\n"));
    cr_assert_eq(l.n_model_versions, 1, "%zu versions", l.n_model_versions);
    cr_assert_str_eq(l.model_versions[0].model, "lc-model");
    cr_assert_eq(l.model_versions[0].version, 1);
    cr_assert_eq(memcmp(l.model_versions[0].digest, l.artifacts[0].digest, 32), 0,
                 "the version pins the artifact's digest");
    track_lineage_free(&l);
    PASS();
}
