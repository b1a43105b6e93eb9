/*
 * test_model.c: `track model register|list|show|alias|tag|get` as the built
 * binary against a real trackd: text and --json shapes, the alias history
 * `show` prints, NAME@ALIAS resolution, every error's exit status and
 * message, usage errors and each command's --help. Runs are started with
 * `track run start`; their artifact rows are written straight into the
 * database with the sqlite3 library while trackd is stopped (no upload
 * command yet), as a finished upload would leave them.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

static struct fx_daemon D;
static char run1[33], run2[33];
static char digest1[65];

static void run_start(const char *name, char hex[33])
{
    char *out = NULL, *err = NULL;
    int rc = fx_track(&D, NULL, NULL, &out, &err, "run", "start", "--name", name, NULL);
    cr_assert_eq(rc, 0, "run start: %s", err);
    cr_assert_geq(strlen(out), 32, "%s", out);
    memcpy(hex, out, 32);
    hex[32] = '\0';
    free(out);
    free(err);
}

static void put_artifact_row(const char *run_hex, const char *path, unsigned k, int64_t size,
                             char hex_out[65])
{
    char db[400];
    sqlite3 *h = NULL;
    sqlite3_stmt *s = NULL;
    uint8_t dg[32];

    for (int i = 0; i < 32; i++) {
        dg[i] = (uint8_t)(k * 29u + (unsigned)i);
        if (hex_out)
            snprintf(hex_out + 2 * i, 3, "%02x", dg[i]);
    }
    snprintf(db, sizeof(db), "%s/track.db", D.dir);
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h,
                                    "INSERT OR REPLACE INTO artifacts(run, path, digest, size,"
                                    " logged_ms) SELECT id, ?2, ?3, ?4, 1 FROM runs WHERE hex = ?1",
                                    -1, &s, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_bind_text(s, 1, run_hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 3, dg, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, size);
    cr_assert_eq(sqlite3_step(s), SQLITE_DONE, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_changes(h), 1);
    sqlite3_finalize(s);
    sqlite3_close(h);
}

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    cr_assert_eq(fx_daemon_start(&D, NULL), 0, "trackd did not start");
    run_start("one", run1);
    run_start("two", run2);
    cr_assert_eq(fx_daemon_stop(&D), 0);
    put_artifact_row(run1, "weights.bin", 1, 100, digest1);
    put_artifact_row(run2, "it's/w.bin", 2, 200, NULL);
    cr_assert_eq(fx_daemon_restart(&D, NULL), 0);
}

static void teardown(void)
{
    fx_daemon_cleanup(&D, 0);
}

TestSuite(model_cli, .init = setup, .fini = teardown, .timeout = 120);

#define TRACK(out, err, ...) fx_track(&D, NULL, NULL, out, err, __VA_ARGS__, NULL)

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    cr_assert_not_null(j, "not JSON (%s): %s", je.text, s);
    return j;
}

static void ok(const char *what, int rc, char *out, char *err)
{
    cr_assert_eq(rc, 0, "%s: exit %d, stderr: %s", what, rc, err);
    (void)out;
}

Test(model_cli, register_prints_name_slash_version_and_json_has_its_shape)
{
    char *out = NULL, *err = NULL;
    int rc = TRACK(&out, &err, "model", "register", "iris", "--run", run1, "--path", "weights.bin");
    ok("register", rc, out, err);
    cr_assert_str_eq(out, "iris/1\n");
    free(out);
    free(err);
    rc = TRACK(&out, &err, "model", "register", "iris", "--run", run1, "--path", "weights.bin",
               "--description", "better", "--tag", "data=v2", "--json");
    ok("register --json", rc, out, err);
    json_t *j = parse(out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "model")), "iris");
    cr_assert_eq(json_integer_value(json_object_get(j, "version")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(j, "run_id")), run1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "weights.bin");
    cr_assert_str_eq(json_string_value(json_object_get(j, "digest")), digest1);
    cr_assert_eq(json_integer_value(json_object_get(j, "size")), 100);
    cr_assert_str_eq(json_string_value(json_object_get(j, "description")), "better");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "tags"), "data")), "v2");
    cr_assert(json_is_array(json_object_get(j, "aliases")));
    cr_assert(json_is_integer(json_object_get(j, "created_time")));
    cr_assert(json_is_string(json_object_get(j, "user")));
    json_decref(j);
    free(out);
    free(err);
}

Test(model_cli, show_prints_three_alias_moves_in_order)
{
    char *out = NULL, *err = NULL;
    for (int i = 0; i < 3; i++) {
        ok("register",
           TRACK(&out, &err, "model", "register", "iris", "--run", run1, "--path", "weights.bin"),
           out, err);
        free(out);
        free(err);
    }
    const char *to[] = {"1", "3", "2"};
    for (int i = 0; i < 3; i++) {
        ok("alias", TRACK(&out, &err, "model", "alias", "iris", "production", to[i]), out, err);
        free(out);
        free(err);
    }
    ok("show", TRACK(&out, &err, "model", "show", "iris"), out, err);
    const char *a = strstr(out, "production: new -> 1");
    const char *b = a ? strstr(a, "production: 1 -> 3") : NULL;
    const char *c = b ? strstr(b, "production: 3 -> 2") : NULL;
    cr_assert(a && b && c, "history not in order:\n%s", out);
    cr_assert(strstr(out, "production -> 2"), "%s", out);
    free(out);
    free(err);

    ok("show --json", TRACK(&out, &err, "model", "show", "iris", "--json"), out, err);
    json_t *j = parse(out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "iris");
    cr_assert_eq(json_integer_value(json_object_get(j, "versions")), 3);
    cr_assert_eq(json_integer_value(json_object_get(j, "latest_version")), 3);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "aliases"), "production")),
                 2);
    json_t *vl = json_object_get(j, "version_list"), *h = json_object_get(j, "alias_history");
    cr_assert_eq(json_array_size(vl), 3);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(vl, 2), "version")), 3);
    cr_assert_eq(json_array_size(h), 3);
    cr_assert(json_is_null(json_object_get(json_array_get(h, 0), "from_version")));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(h, 1), "from_version")), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(h, 1), "to_version")), 3);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(h, 2), "to_version")), 2);
    cr_assert(json_is_string(json_object_get(json_array_get(h, 2), "who")));
    cr_assert(json_is_integer(json_object_get(json_array_get(h, 2), "time")));
    json_decref(j);
    free(out);
    free(err);
}

Test(model_cli, get_by_alias_and_by_version_and_prints_the_fetch_command)
{
    char *out = NULL, *err = NULL;
    ok("register",
       TRACK(&out, &err, "model", "register", "iris", "--run", run1, "--path", "weights.bin"), out,
       err);
    free(out);
    free(err);
    ok("register",
       TRACK(&out, &err, "model", "register", "iris", "--run", run2, "--path", "it's/w.bin"), out,
       err);
    free(out);
    free(err);
    ok("alias", TRACK(&out, &err, "model", "alias", "iris", "staging", "2"), out, err);
    free(out);
    free(err);
    ok("alias by alias", TRACK(&out, &err, "model", "alias", "iris", "production", "staging"), out,
       err);
    cr_assert_str_eq(out, "iris@production: new -> 2\n");
    free(out);
    free(err);
    ok("tag", TRACK(&out, &err, "model", "tag", "iris@production", "reviewed=yes"), out, err);
    free(out);
    free(err);

    ok("get", TRACK(&out, &err, "model", "get", "iris@production"), out, err);
    char want[200];
    (void)run2;
    snprintf(want, sizeof(want), "track model get iris/");
    cr_assert(strstr(out, want) && strstr(out, " -o DIR"), "no fetch command %s in:\n%s", want,
              out);
    cr_assert(strstr(out, "reviewed=yes"), "%s", out);
    free(out);
    free(err);

    ok("get --json", TRACK(&out, &err, "model", "get", "iris/1", "--json"), out, err);
    json_t *j = parse(out);
    cr_assert_str_eq(json_string_value(json_object_get(j, "ref")), "iris/1");
    cr_assert_eq(json_integer_value(json_object_get(j, "version")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "run_id")), run1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "digest")), digest1);
    json_decref(j);
    free(out);
    free(err);

    ok("list --json", TRACK(&out, &err, "model", "list", "--json"), out, err);
    j = parse(out);
    cr_assert_eq(json_array_size(j), 1);
    json_t *m = json_array_get(j, 0);
    cr_assert_str_eq(json_string_value(json_object_get(m, "name")), "iris");
    cr_assert_eq(json_integer_value(json_object_get(m, "versions")), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(m, "aliases"), "staging")), 2);
    json_decref(j);
    free(out);
    free(err);

    ok("list", TRACK(&out, &err, "model", "list"), out, err);
    cr_assert(strstr(out, "iris") && strstr(out, "production=2"), "%s", out);
    free(out);
    free(err);
}

Test(model_cli, errors_exit_1_naming_what_is_wrong)
{
    struct {
        const char *argv[10];
        const char *needle;
    } cases[] = {
        {{"model", "register", "ir is", "--run", run1, "--path", "weights.bin"},
         "letters, digits and _ - ."},
        {{"model", "register", "iris", "--run", run1, "--path", "nope.bin"}, "nope.bin"},
        {{"model", "register", "iris", "--run", "0123456789abcdef0123456789abcdef", "--path",
          "weights.bin"},
         "0123456789abcdef0123456789abcdef"},
        {{"model", "get", "rose/1"}, "model \"rose\" not found"},
        {{"model", "show", "rose"}, "model \"rose\" not found"},
        {{"model", "alias", "rose", "production", "1"}, "model \"rose\" not found"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL, *err = NULL;
        const char *argv[16] = {TRACK_BIN, "--server", D.uri};
        size_t n = 3;
        for (size_t k = 0; cases[i].argv[k]; k++)
            argv[n++] = cases[i].argv[k];
        const char *env[] = {"TRACK_NO_AUTOSTART=1", NULL};
        int rc = fx_run(argv, env, NULL, &out, &err);
        cr_assert_eq(rc, 1, "case %zu: exit %d, stderr %s", i, rc, err);
        cr_assert(strstr(err, cases[i].needle), "case %zu: %s", i, err);
        free(out);
        free(err);
    }
    char *out = NULL, *err = NULL;
    ok("register",
       TRACK(&out, &err, "model", "register", "iris", "--run", run1, "--path", "weights.bin"), out,
       err);
    free(out);
    free(err);
    int rc = TRACK(&out, &err, "model", "alias", "iris", "production", "4");
    cr_assert_eq(rc, 1);
    cr_assert(strstr(err, "NOT_FOUND") && strstr(err, "no version 4"), "%s", err);
    free(out);
    free(err);
    rc = TRACK(&out, &err, "model", "get", "iris@production");
    cr_assert_eq(rc, 1);
    cr_assert(strstr(err, "no alias \"production\""), "%s", err);
    free(out);
    free(err);
    rc = TRACK(&out, &err, "model", "alias", "iris", "12", "1");
    cr_assert_eq(rc, 1);
    cr_assert(strstr(err, "all digits"), "%s", err);
    free(out);
    free(err);
}

Test(model_cli, usage_errors_exit_2)
{
    const char *cases[][8] = {
        {"model", "register", "iris", "--path", "weights.bin"}, /* no --run */
        {"model", "register", "iris", "--run", "abcd"},         /* no --path */
        {"model", "register"},
        {"model", "alias", "iris", "production"},
        {"model", "get"},
        {"model", "tag", "iris", "novalue"},
        {"model", "show", "--bogus", "iris"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL, *err = NULL;
        const char *argv[16] = {TRACK_BIN, "--server", D.uri};
        size_t n = 3;
        for (size_t k = 0; cases[i][k]; k++)
            argv[n++] = cases[i][k];
        const char *env[] = {"TRACK_NO_AUTOSTART=1", NULL};
        int rc = fx_run(argv, env, NULL, &out, &err);
        cr_assert_eq(rc, 2, "case %zu: exit %d, stderr %s", i, rc, err);
        cr_assert(strstr(err, "track model"), "case %zu: %s", i, err);
        free(out);
        free(err);
    }
}

Test(model_cli, help_of_each_command)
{
    const char *verbs[] = {"register", "list", "show", "alias", "tag", "get"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        char *out = NULL, *err = NULL;
        int rc = TRACK(&out, &err, "model", verbs[i], "--help");
        cr_assert_eq(rc, 0, "%s --help: %s", verbs[i], err);
        char usage[64];
        snprintf(usage, sizeof(usage), "usage: track model %s", verbs[i]);
        cr_assert(strstr(out, usage), "%s", out);
        cr_assert(strstr(out, "examples:"), "%s", out);
        cr_assert(strstr(out, "common options:"), "%s", out);
        cr_assert_null(strstr(out, "undocumented"), "%s", out);
        free(out);
        free(err);
    }
    char *out = NULL, *err = NULL;
    cr_assert_eq(TRACK(&out, &err, "model", "register", "--help"), 0);
    cr_assert(strstr(out, "--path PATH") && strstr(out, "--description TEXT") &&
                  strstr(out, "--tag K=V") && strstr(out, "(default: none)"),
              "%s", out);
    free(out);
    free(err);
}

/* Two `track model register` processes at once, ten registers each: twenty
 * distinct versions, 1..20. Each child reports its versions on a pipe. */
Test(model_cli, concurrent_register_processes_get_distinct_versions)
{
    enum { EACH = 10 };
    int fds[2][2];
    pid_t pid[2];
    char seen[2 * EACH + 1] = {0};

    for (int p = 0; p < 2; p++) {
        cr_assert_eq(pipe(fds[p]), 0);
        pid[p] = fork();
        cr_assert_geq(pid[p], 0);
        if (pid[p] == 0) {
            close(fds[p][0]);
            for (int i = 0; i < EACH; i++) {
                char *out = NULL, *err = NULL;
                int rc = TRACK(&out, &err, "model", "register", "iris", "--run", run1, "--path",
                               "weights.bin");
                if (rc != 0 || !out || write(fds[p][1], out, strlen(out)) < 0)
                    _exit(1);
                free(out);
                free(err);
            }
            _exit(0);
        }
        close(fds[p][1]);
    }
    for (int p = 0; p < 2; p++) {
        char buf[1024] = {0};
        size_t at = 0;
        ssize_t n;
        while (at < sizeof(buf) - 1 && (n = read(fds[p][0], buf + at, sizeof(buf) - 1 - at)) > 0)
            at += (size_t)n;
        close(fds[p][0]);
        int st = 0;
        cr_assert_eq(waitpid(pid[p], &st, 0), pid[p]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed", p);
        int lines = 0;
        for (char *l = buf; *l; lines++) {
            long v = 0;
            cr_assert_eq(sscanf(l, "iris/%ld", &v), 1, "%s", l);
            cr_assert(v >= 1 && v <= 2 * EACH, "version %ld", v);
            cr_assert_not(seen[v], "version %ld given twice", v);
            seen[v] = 1;
            char *nl = strchr(l, '\n');
            l = nl ? nl + 1 : l + strlen(l);
        }
        cr_assert_eq(lines, EACH);
    }
}
