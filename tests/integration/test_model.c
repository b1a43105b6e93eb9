/*
 * test_model.c: the model registry end to end: libtrack -> trackd -> the
 * store and back. Artifacts cannot be uploaded by a client yet, so each test
 * starts its runs through trackd, stops it, writes the runs' artifact rows
 * straight into its database with the sqlite3 library (what a finished
 * upload commits), and starts trackd again; everything after goes through
 * the real protocol: register, alias, tag, list, show, get, and every error.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon d;
static int passed;
static char run1[33], run2[33];

static struct track_client *client(void)
{
    struct track_opts o = {.server = d.uri, .timeout_ms = 20000, .no_spool = 1};
    struct track_client *c = NULL;
    struct track_err err = {0};
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "open: %s", err.msg);
    return c;
}

static void digest_of(uint8_t dg[32], unsigned k)
{
    for (int i = 0; i < 32; i++)
        dg[i] = (uint8_t)(k * 29u + (unsigned)i);
}

/* With trackd stopped: (run, path) -> digest k, size, as an upload's commit
 * would leave it (replacing a row already there). */
static void put_artifact_row(const char *run_hex, const char *path, unsigned k, int64_t size)
{
    char db[400];
    sqlite3 *h = NULL;
    sqlite3_stmt *s = NULL;
    uint8_t dg[32];

    digest_of(dg, k);
    snprintf(db, sizeof(db), "%s/track.db", d.dir);
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
    cr_assert_eq(sqlite3_changes(h), 1, "run %s not in the database", run_hex);
    sqlite3_finalize(s);
    sqlite3_close(h);
}

static void start_run(struct track_client *c, const char *name, char hex[33])
{
    struct track_run_opts o = {.name = name};
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(c, &o, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
}

static void setup(void)
{
    passed = 0;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
    struct track_client *c = client();
    start_run(c, "one", run1);
    start_run(c, "two", run2);
    track_client_close(c);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    put_artifact_row(run1, "weights.bin", 1, 100);
    put_artifact_row(run2, "model/w.bin", 2, 200);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not start again");
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, !passed);
}

TestSuite(model, .init = setup, .fini = teardown, .timeout = 120);

static int64_t reg(struct track_client *c, const char *name, const char *run, const char *path)
{
    struct track_model_result *res = NULL;
    const struct track_model_version *v = NULL;
    struct track_err err = {0};
    cr_assert_eq(track_model_register(c, name, run, path, NULL, NULL, 0, &res, &v, &err), 0,
                 "register: %s", err.msg);
    int64_t n = v->version;
    track_model_result_free(res);
    return n;
}

static int get_rc(struct track_client *c, const char *ref, struct track_model_result **res,
                  const struct track_model_version **v, struct track_err *err)
{
    memset(err, 0, sizeof(*err));
    return track_model_get(c, ref, res, v, err);
}

Test(model, register_numbers_versions_and_get_answers_run_path_digest_size)
{
    struct track_client *c = client();
    struct track_model_result *res = NULL;
    const struct track_model_version *v = NULL;
    struct track_err err = {0};
    uint8_t d2[32];
    char hex[33];
    struct track_kv tag = {"data", "v2"};

    cr_assert_eq(reg(c, "iris", run1, "weights.bin"), 1);
    cr_assert_eq(
        track_model_register(c, "iris", run2, "model/w.bin", "second", &tag, 1, &res, &v, &err), 0,
        "%s", err.msg);
    cr_assert_eq(v->version, 2);
    cr_assert_str_eq(v->description, "second");
    cr_assert_eq(v->n_tags, 1);
    track_model_result_free(res);
    cr_assert_eq(get_rc(c, "iris/2", &res, &v, &err), 0, "%s", err.msg);
    track_run_id_hex(&v->run, hex);
    cr_assert_str_eq(hex, run2);
    cr_assert_str_eq(v->path, "model/w.bin");
    digest_of(d2, 2);
    cr_assert_eq(memcmp(v->digest, d2, 32), 0);
    cr_assert_eq(v->size, 200);
    cr_assert_str_eq(v->tags[0].key, "data");
    track_model_result_free(res);
    /* a run prefix works as the run */
    char prefix[9];
    memcpy(prefix, run1, 8);
    prefix[8] = '\0';
    cr_assert_eq(reg(c, "iris", prefix, "weights.bin"), 3);
    track_client_close(c);
    passed = 1;
}

Test(model, a_version_keeps_its_digest_after_the_artifact_is_replaced)
{
    struct track_client *c = client();
    struct track_model_result *res = NULL;
    const struct track_model_version *v = NULL;
    struct track_err err = {0};
    uint8_t d1[32], d7[32];

    cr_assert_eq(reg(c, "iris", run1, "weights.bin"), 1);
    track_client_close(c);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    put_artifact_row(run1, "weights.bin", 7, 777); /* the run's artifact replaced */
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    c = client();
    digest_of(d1, 1);
    digest_of(d7, 7);
    cr_assert_eq(get_rc(c, "iris/1", &res, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(v->digest, d1, 32), 0, "version 1 changed with the artifact");
    cr_assert_eq(v->size, 100);
    track_model_result_free(res);
    cr_assert_eq(reg(c, "iris", run1, "weights.bin"), 2);
    cr_assert_eq(get_rc(c, "iris/2", &res, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(v->digest, d7, 32), 0);
    track_model_result_free(res);
    track_client_close(c);
    passed = 1;
}

Test(model, alias_moves_three_times_and_show_has_the_history_in_order)
{
    struct track_client *c = client();
    struct track_model_result *res = NULL;
    const struct track_model_info *m = NULL;
    const struct track_model_version *vs = NULL;
    const struct track_alias_move *h = NULL;
    struct track_err err = {0};
    size_t nv = 0, nh = 0;
    int64_t from = -1, to = -1;

    for (int i = 0; i < 3; i++)
        reg(c, "iris", run1, "weights.bin");
    cr_assert_eq(track_model_alias(c, "iris", "production", "1", &from, &to, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(from, 0);
    cr_assert_eq(track_model_alias(c, "iris", "production", "3", &from, &to, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(from, 1);
    cr_assert_eq(track_model_alias(c, "iris", "production", "2", &from, &to, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(from, 3);
    cr_assert_eq(to, 2);
    cr_assert_eq(track_model_show(c, "iris", &res, &m, &vs, &nv, &h, &nh, &err), 0, "%s", err.msg);
    cr_assert_eq(nv, 3);
    cr_assert_eq(nh, 3);
    int64_t want[3][2] = {{0, 1}, {1, 3}, {3, 2}};
    const char *user = getenv("USER");
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(h[i].alias, "production");
        cr_assert_eq(h[i].from_version, want[i][0], "move %zu", i);
        cr_assert_eq(h[i].to_version, want[i][1], "move %zu", i);
        if (user && *user)
            cr_assert_str_eq(h[i].who, user);
        cr_assert(i == 0 || h[i].ms >= h[i - 1].ms);
    }
    cr_assert_eq(m->n_aliases, 1);
    cr_assert_eq(m->aliases[0].to_version, 2);
    cr_assert_eq(vs[1].n_aliases, 1, "version 2 carries the alias");
    cr_assert_str_eq(vs[1].aliases[0], "production");
    track_model_result_free(res);
    track_client_close(c);
    passed = 1;
}

Test(model, name_at_alias_resolves_in_get_tag_and_alias)
{
    struct track_client *c = client();
    struct track_model_result *res = NULL;
    const struct track_model_version *v = NULL;
    struct track_err err = {0};
    char hex[33];
    int64_t to = 0;

    reg(c, "iris", run1, "weights.bin");
    reg(c, "iris", run2, "model/w.bin");
    cr_assert_eq(track_model_alias(c, "iris", "staging", "2", NULL, NULL, &err), 0, "%s", err.msg);
    /* get */
    cr_assert_eq(get_rc(c, "iris@staging", &res, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(v->version, 2);
    track_run_id_hex(&v->run, hex);
    cr_assert_str_eq(hex, run2);
    track_model_result_free(res);
    /* alias: production takes what staging points at */
    cr_assert_eq(track_model_alias(c, "iris", "production", "staging", NULL, &to, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(to, 2);
    /* tag */
    cr_assert_eq(track_model_tag(c, "iris@production", "reviewed", "yes", &err), 0, "%s", err.msg);
    cr_assert_eq(track_model_tag(c, "iris", "owner", "ml", &err), 0, "%s", err.msg);
    cr_assert_eq(get_rc(c, "iris/2", &res, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(v->n_tags, 1);
    cr_assert_str_eq(v->tags[0].key, "reviewed");
    cr_assert_eq(v->n_aliases, 2);
    track_model_result_free(res);

    const struct track_model_info *m = NULL;
    size_t n = 0;
    cr_assert_eq(track_model_list(c, &res, &m, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(m[0].name, "iris");
    cr_assert_eq(m[0].versions, 2);
    cr_assert_eq(m[0].n_tags, 1);
    cr_assert_str_eq(m[0].tags[0].value, "ml");
    cr_assert_eq(m[0].n_aliases, 2);
    track_model_result_free(res);
    track_client_close(c);
    passed = 1;
}

Test(model, every_error_is_named)
{
    struct track_client *c = client();
    struct track_model_result *res = NULL;
    const struct track_model_version *v = NULL;
    struct track_err err = {0};

    /* a run that does not exist */
    cr_assert_eq(track_model_register(c, "iris", "0123456789abcdef0123456789abcdef", "weights.bin",
                                      NULL, NULL, 0, &res, &v, &err),
                 TRACK_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "0123456789abcdef0123456789abcdef"), "%s", err.msg);
    /* a path that does not exist in the run */
    cr_assert_eq(track_model_register(c, "iris", run1, "nope.bin", NULL, NULL, 0, &res, &v, &err),
                 TRACK_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "nope.bin") && strstr(err.msg, run1), "%s", err.msg);
    /* a model name with odd characters */
    cr_assert_eq(
        track_model_register(c, "ir is", run1, "weights.bin", NULL, NULL, 0, &res, &v, &err),
        TRACK_E_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "letters, digits and _ - ."), "%s", err.msg);
    cr_assert_eq(
        track_model_register(c, "iris;rm", run1, "weights.bin", NULL, NULL, 0, &res, &v, &err),
        TRACK_E_INVALID_ARGUMENT);

    reg(c, "iris", run1, "weights.bin");
    /* an alias to a version that does not exist */
    cr_assert_eq(track_model_alias(c, "iris", "production", "5", NULL, NULL, &err),
                 TRACK_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "no version 5"), "%s", err.msg);
    cr_assert_eq(track_model_alias(c, "iris", "production", "staging", NULL, NULL, &err),
                 TRACK_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "no alias \"staging\""), "%s", err.msg);
    /* a bad alias name */
    cr_assert_eq(track_model_alias(c, "iris", "42", "1", NULL, NULL, &err),
                 TRACK_E_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "all digits"), "%s", err.msg);
    /* unknown model, alias, version */
    cr_assert_eq(get_rc(c, "rose/1", &res, &v, &err), TRACK_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "model \"rose\""), "%s", err.msg);
    cr_assert_eq(get_rc(c, "iris@gone", &res, &v, &err), TRACK_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "alias \"gone\""), "%s", err.msg);
    cr_assert_eq(get_rc(c, "iris/9", &res, &v, &err), TRACK_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "no version 9"), "%s", err.msg);
    cr_assert_eq(get_rc(c, "iris", &res, &v, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "NAME/VERSION or NAME@ALIAS"), "%s", err.msg);
    const struct track_model_info *m;
    const struct track_alias_move *h;
    size_t nv, nh;
    cr_assert_eq(track_model_show(c, "rose", &res, &m, &v, &nv, &h, &nh, &err), TRACK_E_NOT_FOUND);
    cr_assert_eq(track_model_tag(c, "rose", "k", "v", &err), TRACK_E_NOT_FOUND);
    cr_assert_eq(track_model_tag(c, "iris/4", "k", "v", &err), TRACK_E_NOT_FOUND);
    track_client_close(c);
    passed = 1;
}

#define EACH 15
struct reg_thread {
    int64_t got[EACH];
    int failed;
    char msg[512];
};

static void *register_many(void *arg)
{
    struct reg_thread *t = arg;
    struct track_opts o = {.server = d.uri, .timeout_ms = 20000, .no_spool = 1};
    struct track_client *c = NULL;
    struct track_err err = {0};

    if (track_client_open(&o, &c, &err)) {
        t->failed = 1;
        snprintf(t->msg, sizeof(t->msg), "%s", err.msg);
        return NULL;
    }
    for (int i = 0; i < EACH && !t->failed; i++) {
        struct track_model_result *res = NULL;
        const struct track_model_version *v = NULL;
        if (track_model_register(c, "iris", run1, "weights.bin", NULL, NULL, 0, &res, &v, &err)) {
            t->failed = 1;
            snprintf(t->msg, sizeof(t->msg), "%s", err.msg);
        } else {
            t->got[i] = v->version;
            track_model_result_free(res);
        }
    }
    track_client_close(c);
    return NULL;
}

Test(model, concurrent_registers_from_two_clients_get_distinct_versions)
{
    struct reg_thread a = {0}, b = {0};
    pthread_t ta, tb;
    char seen[2 * EACH + 1] = {0};

    cr_assert_eq(pthread_create(&ta, NULL, register_many, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, register_many, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_not(a.failed, "%s", a.msg);
    cr_assert_not(b.failed, "%s", b.msg);
    for (int i = 0; i < EACH; i++) {
        int64_t v[2] = {a.got[i], b.got[i]};
        for (int k = 0; k < 2; k++) {
            cr_assert(v[k] >= 1 && v[k] <= 2 * EACH, "version %lld", (long long)v[k]);
            cr_assert_not(seen[v[k]], "version %lld given twice", (long long)v[k]);
            seen[v[k]] = 1;
        }
    }
    passed = 1;
}

/* More versions, alias moves and models than one page holds (128 versions,
 * 512 moves, 128 models a page): show and list gather every page, in
 * order, with nothing twice and nothing lost. */
Test(model, show_and_list_page_through_hundreds_of_versions_moves_and_models)
{
    struct track_client *c = client();
    struct track_model_result *res = NULL;
    const struct track_model_info *m = NULL;
    const struct track_model_version *v = NULL;
    const struct track_alias_move *h = NULL;
    size_t nv = 0, nh = 0, nm = 0;
    struct track_err err = {0};
    enum { VERSIONS = 300, MOVES = 700, MODELS = 150 };

    for (int i = 1; i <= VERSIONS; i++)
        cr_assert_eq(reg(c, "big", run1, "weights.bin"), i);
    for (int i = 0; i < MOVES; i++) {
        char to[16];
        snprintf(to, sizeof to, "%d", i % 2 ? 2 : 1);
        cr_assert_eq(track_model_alias(c, "big", "flip", to, NULL, NULL, &err), 0, "%s", err.msg);
    }
    for (int i = 0; i < MODELS; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%03d", i);
        reg(c, name, run2, "model/w.bin");
    }

    cr_assert_eq(track_model_show(c, "big", &res, &m, &v, &nv, &h, &nh, &err), 0, "%s", err.msg);
    cr_assert_eq(nv, VERSIONS, "every version: %zu", nv);
    for (size_t i = 0; i < nv; i++)
        cr_assert_eq(v[i].version, (int64_t)i + 1, "in order at %zu", i);
    cr_assert_eq(nh, MOVES, "every move: %zu", nh);
    for (size_t i = 0; i < nh; i++) {
        cr_assert_eq(h[i].to_version, i % 2 ? 2 : 1, "move %zu", i);
        cr_assert_eq(h[i].from_version, i == 0 ? 0 : (i % 2 ? 1 : 2), "move %zu", i);
    }
    cr_assert_eq(m->versions, VERSIONS);
    track_model_result_free(res);

    cr_assert_eq(track_model_list(c, &res, &m, &nm, &err), 0, "%s", err.msg);
    cr_assert_eq(nm, MODELS + 1, "every model: %zu", nm);
    cr_assert_str_eq(m[0].name, "big");
    for (size_t i = 1; i < nm; i++) {
        char name[32];
        snprintf(name, sizeof name, "m%03d", (int)(i - 1));
        cr_assert_str_eq(m[i].name, name, "in name order at %zu", i);
    }
    track_model_result_free(res);
    track_client_close(c);
    passed = 1;
}
