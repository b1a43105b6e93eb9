/*
 * test_lifecycle.c: the lifecycle commands as the built `track` binary
 * against a real trackd: `track run delete` hides a run from `track runs`,
 * `run list` and `compare --filter`, `--filter "lifecycle = 'deleted'"`
 * finds it, `run show` says deleted, `run restore` brings it back; logging
 * into a deleted run exits 1 naming it; `track gc --dry-run` prints what
 * would go and its bytes and removes nothing, `track gc --grace 0` removes;
 * `--grace` parsing; `track lineage` across a 3-deep chain in text and in
 * its documented --json shape; the help pages.
 */
/* GCC 12 at -O2 takes the pointers this file walks inside Criterion's
 * asserts for ones into the assert's own locals (a false
 * -Wdangling-pointer, seen only in Release builds) */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon D;
static struct track_client *C;

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    fx_daemon_client_start(&D, &C, 0);
}

static void teardown(void)
{
    fx_daemon_client_cleanup(&D, &C);
}

TestSuite(lifecycle_cli, .init = setup, .fini = teardown, .timeout = 120);

/* Runs track ARGS, asserts its exit status, returns stdout (caller frees). */
#define RUN(want, ...)                                                                             \
    ({                                                                                             \
        char *o_ = NULL, *e_ = NULL;                                                               \
        int r_ = fx_track(&D, NULL, NULL, &o_, &e_, __VA_ARGS__, NULL);                            \
        cr_assert_eq(r_, want, "track %s: exit %d, stderr: %s", #__VA_ARGS__, r_, e_);             \
        free(e_);                                                                                  \
        o_;                                                                                        \
    })
#define RUN_ERR(want, err_out, ...)                                                                \
    do {                                                                                           \
        char *o_ = NULL;                                                                           \
        int r_ = fx_track(&D, NULL, NULL, &o_, err_out, __VA_ARGS__, NULL);                        \
        cr_assert_eq(r_, want, "track %s: exit %d, stderr: %s", #__VA_ARGS__, r_, *(err_out));     \
        free(o_);                                                                                  \
    } while (0)

static void start(const char *name, const char *parent, const char *lr, char hex[33])
{
    struct track_kv kv = {"lr", lr};
    struct track_run_opts ro = {
        .experiment = "cli", .name = name, .parent = parent, .params = &kv, .n_params = lr ? 1 : 0};
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(track_log_metric(C, "loss", 0.25, 1, 1700000000000LL, &err), 0);
    cr_assert_eq(track_flush(C, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
}

Test(lifecycle_cli, delete_hides_run_filter_shows_it_restore_brings_it_back)
{
    char a[33], b[33], c[33], *out;
    start("alpha", NULL, "0.1", a);
    start("bravo", NULL, "0.2", b);
    start("charlie", NULL, "0.3", c);

    out = RUN(0, "run", "delete", b);
    cr_assert(strstr(out, "deleted run") && strstr(out, b), "%s", out);
    free(out);

    out = RUN(0, "runs", "--full-ids");
    cr_assert(strstr(out, a) && strstr(out, c) && !strstr(out, b), "runs:\n%s", out);
    free(out);
    out = RUN(0, "run", "list");
    cr_assert(strstr(out, "alpha") && !strstr(out, "bravo"), "run list:\n%s", out);
    free(out);
    out = RUN(0, "compare", "--filter", "params.lr != '9'", "--format", "csv");
    cr_assert(strstr(out, "alpha") && strstr(out, "charlie") && !strstr(out, "bravo"),
              "compare:\n%s", out);
    free(out);
    out = RUN(0, "runs", "--filter", "lifecycle = 'deleted'", "--full-ids");
    cr_assert(strstr(out, b) && !strstr(out, a), "filter on lifecycle:\n%s", out);
    free(out);
    out = RUN(0, "run", "show", b);
    cr_assert(strstr(out, "lifecycle   deleted"), "run show says deleted:\n%s", out);
    free(out);
    out = RUN(0, "run", "show", b, "--json");
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "lifecycle")), "deleted");
    cr_assert(json_is_integer(json_object_get(j, "deleted_time")));
    json_decref(j);
    free(out);

    char *err = NULL;
    RUN_ERR(1, &err, "log-param", "--run", b, "x=1");
    cr_assert(strstr(err, "CONFLICT") && strstr(err, b) && strstr(err, "deleted"), "%s", err);
    free(err);
    err = NULL;
    RUN_ERR(1, &err, "log-metric", "--run", b, "loss", "0.1");
    cr_assert(strstr(err, "deleted"), "%s", err);
    free(err);

    out = RUN(0, "run", "restore", b);
    cr_assert(strstr(out, "restored run"), "%s", out);
    free(out);
    out = RUN(0, "runs", "--full-ids");
    cr_assert(strstr(out, a) && strstr(out, b) && strstr(out, c), "restored:\n%s", out);
    free(out);
    out = RUN(0, "run", "restore", b);
    cr_assert(strstr(out, "is not deleted"), "%s", out);
    free(out);
    err = NULL;
    RUN_ERR(2, &err, "run", "delete");
    free(err);
}

Test(lifecycle_cli, gc_dry_run_reports_bytes_and_removes_nothing_then_gc_removes)
{
    char a[33], b[33], *out;
    start("keep", NULL, "0.1", a);
    start("drop", NULL, "0.2", b);
    free(RUN(0, "run", "delete", b));

    out = RUN(0, "gc", "--dry-run");
    cr_assert(strstr(out, "would remove 0 runs"), "default grace 7d keeps it:\n%s", out);
    free(out);
    out = RUN(0, "gc", "--dry-run", "--grace", "0");
    cr_assert(strstr(out, "would remove 1 run ("), "%s", out);
    cr_assert(strstr(out, b) && strstr(out, "bytes") && strstr(out, "dry run: nothing removed"),
              "%s", out);
    long long bytes = -1;
    const char *p = strstr(out, "bytes in all");
    cr_assert_not_null(p);
    while (p > out && p[-1] == ' ')
        p--;
    while (p > out && p[-1] >= '0' && p[-1] <= '9')
        p--;
    bytes = atoll(p);
    cr_assert_gt(bytes, 0, "bytes reported: %s", out);
    free(out);
    out = RUN(0, "runs", "--filter", "lifecycle = 'deleted'", "--full-ids");
    cr_assert(strstr(out, b), "dry run removed nothing:\n%s", out);
    free(out);

    out = RUN(0, "gc", "--grace", "0", "--json");
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    cr_assert(json_is_false(json_object_get(j, "dry_run")));
    cr_assert_eq(json_integer_value(json_object_get(j, "run_count")), 1);
    cr_assert_eq(json_integer_value(json_object_get(j, "run_bytes")), bytes);
    cr_assert_eq(json_array_size(json_object_get(j, "runs")), 1);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "runs"), 0), "run_id")),
        b);
    cr_assert(json_is_array(json_object_get(j, "blobs")));
    json_decref(j);
    free(out);
    char *err = NULL;
    RUN_ERR(1, &err, "run", "show", b);
    cr_assert(strstr(err, "NOT_FOUND"), "%s", err);
    free(err);
    out = RUN(0, "run", "show", a);
    cr_assert(strstr(out, "keep") && strstr(out, "loss"), "%s", out);
    free(out);

    static const char *const good[] = {"0", "30s", "5m", "2h", "7d", "1h30m", "500ms"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        free(RUN(0, "gc", "--dry-run", "--grace", good[i]));
    static const char *const bad[] = {"", "7", "-1d", "5x", "d", "1.5h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = NULL;
        RUN_ERR(2, &err, "gc", "--grace", bad[i]);
        cr_assert(strstr(err, "--grace"), "%s: %s", bad[i], err);
        free(err);
    }
}

Test(lifecycle_cli, lineage_three_deep_text_and_json_shape)
{
    char root[33], mid[33], leaf[33], *out;
    struct track_err e = {0};
    start("root", NULL, NULL, root);
    start("mid", root, NULL, mid);
    cr_assert_eq(track_set_tag(C, "sys.git.commit", "feedbeef", &e), 0);
    cr_assert_eq(track_set_tag(C, "sys.command", "./train", &e), 0);
    start("leaf", mid, NULL, leaf);

    out = RUN(0, "lineage", mid);
    cr_assert(strstr(out, "commit    feedbeef") && strstr(out, "command   ./train"), "%s", out);
    cr_assert(strstr(out, root) && strstr(out, leaf) && strstr(out, "children  1"), "%s", out);
    free(out);

    out = RUN(0, "lineage", leaf, "--json");
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    static const char *const keys[] = {"run",       "parent",         "ancestors",
                                       "children",  "git_commit",     "command",
                                       "artifacts", "model_versions", "truncated"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert_not_null(json_object_get(j, keys[i]), "key %s missing:\n%s", keys[i], out);
    cr_assert_eq(json_object_size(j), sizeof keys / sizeof keys[0], "no other keys:\n%s", out);
    json_t *run = json_object_get(j, "run");
    cr_assert_str_eq(json_string_value(json_object_get(run, "run_id")), leaf);
    cr_assert_str_eq(json_string_value(json_object_get(run, "name")), "leaf");
    cr_assert_str_eq(json_string_value(json_object_get(run, "status")), "RUNNING");
    cr_assert_str_eq(json_string_value(json_object_get(run, "lifecycle")), "active");
    cr_assert(json_is_integer(json_object_get(run, "start_time")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "parent"), "run_id")),
                     mid);
    json_t *anc = json_object_get(j, "ancestors");
    cr_assert_eq(json_array_size(anc), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(anc, 1), "run_id")), root);
    cr_assert_eq(json_array_size(json_object_get(j, "children")), 0);
    cr_assert(json_is_null(json_object_get(j, "git_commit")), "leaf has no commit tag");
    cr_assert(json_is_array(json_object_get(j, "artifacts")));
    cr_assert_eq(json_array_size(json_object_get(j, "artifacts")), 0);
    cr_assert_eq(json_array_size(json_object_get(j, "model_versions")), 0);
    cr_assert(json_is_false(json_object_get(j, "truncated")));
    json_decref(j);
    free(out);

    out = RUN(0, "lineage", root, "--json");
    j = json_loads(out, 0, NULL);
    cr_assert(json_is_null(json_object_get(j, "parent")), "a root has no parent");
    cr_assert_eq(json_array_size(json_object_get(j, "children")), 1);
    json_decref(j);
    free(out);

    char *err = NULL;
    /* a model reference is resolved (test_model_fetch.c): an unknown model is NOT_FOUND */
    RUN_ERR(1, &err, "lineage", "model@production");
    cr_assert(strstr(err, "model \"model\" not found"), "%s", err);
    free(err);
}

Test(lifecycle_cli, help_pages_document_lifecycle)
{
    char *out = RUN(0, "help", "filter");
    cr_assert(strstr(out, "lifecycle") && strstr(out, "'deleted'"), "%s", out);
    free(out);
    out = RUN(0, "gc", "--help");
    cr_assert(strstr(out, "--dry-run") && strstr(out, "--grace") && strstr(out, "default 7d"), "%s",
              out);
    free(out);
    out = RUN(0, "help", "lineage");
    cr_assert(strstr(out, "track lineage 3f2a --json"), "%s", out);
    free(out);
    out = RUN(0, "help", "run", "delete");
    cr_assert(strstr(out, "track gc"), "%s", out);
    free(out);
}
