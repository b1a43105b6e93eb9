/*
 * test_admin.c: `track admin ...` and `track whoami` as the built binary
 * against a real trackd, as the local owner (every permission): users,
 * grants making an experiment restricted and revocation opening it again,
 * tokens printed once, the audit table with its rows for each action, its
 * --json shapes, pruning, and usage and refusal errors with their exit
 * status. The checks of remote callers' permissions are unit/test_authz.c's.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static struct fx_daemon D;

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    cr_assert_eq(fx_daemon_start(&D, NULL), 0, "trackd did not start");
}

static void teardown(void)
{
    fx_daemon_cleanup(&D, 0);
}

TestSuite(admin_cli, .init = setup, .fini = teardown, .timeout = 120);

#define TRACK(out, err, ...) fx_track(&D, NULL, NULL, out, err, __VA_ARGS__, NULL)

static json_t *parse(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    cr_assert_not_null(j, "not JSON (%s): %s", je.text, s);
    return j;
}

static void ok(const char *what, int rc, char **out, char **err)
{
    (void)out;
    cr_assert_eq(rc, 0, "%s: exit %d, stderr: %s", what, rc, *err);
    free(*err);
    *err = NULL;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_string(v), "%s: not a string", k);
    return json_string_value(v);
}

#define KEY "trk1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

Test(admin_cli, users_are_added_listed_changed_and_removed)
{
    char *out = NULL, *err = NULL;

    ok("add", TRACK(&out, &err, "admin", "user", "add", "bob", "--role", "reader"), &out, &err);
    cr_assert_str_eq(out, "added user bob, role reader, no key yet\n");
    free(out);
    ok("add", TRACK(&out, &err, "admin", "user", "add", "dave", "--role", "admin", "--key", KEY),
       &out, &err);
    free(out);
    ok("list", TRACK(&out, &err, "admin", "user", "list", "--json"), &out, &err);
    json_t *j = parse(out), *users = json_object_get(j, "users");
    cr_assert_eq(json_array_size(users), 2);
    json_t *b = json_array_get(users, 0), *d = json_array_get(users, 1);
    cr_assert_str_eq(jstr(b, "name"), "bob");
    cr_assert_str_eq(jstr(b, "role"), "reader");
    cr_assert(json_is_null(json_object_get(b, "key")));
    cr_assert(json_is_integer(json_object_get(b, "created_time")));
    cr_assert_str_eq(jstr(d, "key"), KEY);
    json_decref(j);
    free(out);

    ok("set-role", TRACK(&out, &err, "admin", "user", "set-role", "bob", "writer"), &out, &err);
    free(out);
    ok("set-key", TRACK(&out, &err, "admin", "user", "set-key", "dave", "none"), &out, &err);
    free(out);
    ok("list", TRACK(&out, &err, "admin", "user", "list"), &out, &err);
    cr_assert(strstr(out, "bob                  writer"), "%s", out);
    cr_assert_null(strstr(out, "trk1:"), "%s", out);
    free(out);
    ok("remove", TRACK(&out, &err, "admin", "user", "remove", "dave"), &out, &err);
    free(out);

    /* refusals: exit 1 with the reason; usage: exit 2 */
    cr_assert_eq(TRACK(&out, &err, "admin", "user", "add", "bob", "--role", "reader"), 1);
    cr_assert(strstr(err, "user \"bob\" already exists"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "admin", "user", "set-role", "bob", "boss"), 1);
    cr_assert(strstr(err, "role \"boss\": must be reader, writer or admin"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(
        TRACK(&out, &err, "admin", "user", "add", "eve", "--role", "reader", "--key", "trk1:short"),
        1);
    cr_assert(strstr(err, "key"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "admin", "user", "add", "eve"), 2);
    cr_assert(strstr(err, "--role"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "admin", "user", "remove", "nobody"), 1);
    cr_assert(strstr(err, "user \"nobody\" not found"), "%s", err);
    free(out);
    free(err);
}

Test(admin_cli, a_grant_restricts_and_the_last_revocation_opens)
{
    char *out = NULL, *err = NULL;

    ok("add", TRACK(&out, &err, "admin", "user", "add", "bob", "--role", "reader"), &out, &err);
    free(out);
    ok("run", TRACK(&out, &err, "run", "start", "--experiment", "iris"), &out, &err);
    free(out);
    ok("grant", TRACK(&out, &err, "admin", "grant", "bob", "iris", "write"), &out, &err);
    cr_assert(strstr(out, "experiment iris is now restricted"), "%s", out);
    free(out);
    ok("grants", TRACK(&out, &err, "admin", "grants", "--experiment", "iris", "--json"), &out,
       &err);
    json_t *j = parse(out), *g = json_object_get(j, "grants");
    cr_assert_eq(json_array_size(g), 1);
    cr_assert_str_eq(jstr(json_array_get(g, 0), "user"), "bob");
    cr_assert_str_eq(jstr(json_array_get(g, 0), "experiment"), "iris");
    cr_assert_str_eq(jstr(json_array_get(g, 0), "level"), "write");
    json_decref(j);
    free(out);
    ok("grants bob", TRACK(&out, &err, "admin", "grants", "bob"), &out, &err);
    cr_assert(strstr(out, "iris"), "%s", out);
    free(out);
    ok("revoke", TRACK(&out, &err, "admin", "revoke", "bob", "iris", "--json"), &out, &err);
    j = parse(out);
    cr_assert(json_is_true(json_object_get(j, "removed")));
    cr_assert(json_is_false(json_object_get(j, "restricted")));
    json_decref(j);
    free(out);
    cr_assert_eq(TRACK(&out, &err, "admin", "grant", "bob", "nope", "read"), 1);
    cr_assert(strstr(err, "experiment \"nope\" not found"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "admin", "grant", "bob", "iris", "own"), 1);
    cr_assert(strstr(err, "must be read, write or manage"), "%s", err);
    free(out);
    free(err);
}

Test(admin_cli, a_token_is_printed_once_listed_and_revoked)
{
    char *out = NULL, *err = NULL;

    ok("add", TRACK(&out, &err, "admin", "user", "add", "bob", "--role", "reader"), &out, &err);
    free(out);
    cr_assert_eq(TRACK(&out, &err, "admin", "token", "create", "bob", "--expires", "90d"), 0, "%s",
                 err);
    cr_assert_eq(strlen(out), 49, "%s", out); /* trkt_ + 43 + newline */
    cr_assert_eq(strncmp(out, "trkt_", 5), 0, "%s", out);
    cr_assert(strstr(err, "shown this once"), "%s", err);
    free(out);
    free(err);
    ok("create", TRACK(&out, &err, "admin", "token", "create", "bob", "--json"), &out, &err);
    json_t *j = parse(out);
    cr_assert_eq(strncmp(jstr(j, "token"), "trkt_", 5), 0);
    cr_assert(json_is_null(json_object_get(j, "expires_time")));
    json_int_t id = json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    free(out);
    ok("list", TRACK(&out, &err, "admin", "token", "list", "bob", "--json"), &out, &err);
    j = parse(out);
    json_t *t = json_object_get(j, "tokens");
    cr_assert_eq(json_array_size(t), 2);
    cr_assert(json_is_integer(json_object_get(json_array_get(t, 0), "expires_time")));
    cr_assert_null(strstr(out, "trkt_"), "a list never shows tokens: %s", out);
    json_decref(j);
    free(out);
    char ids[32];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    ok("revoke", TRACK(&out, &err, "admin", "token", "revoke", ids), &out, &err);
    free(out);
    cr_assert_eq(TRACK(&out, &err, "admin", "token", "revoke", ids), 1);
    cr_assert(strstr(err, "not found"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "admin", "token", "create", "bob", "--expires", "soon"), 2);
    free(out);
    free(err);
}

Test(admin_cli, the_audit_names_each_action_and_prunes)
{
    char *out = NULL, *err = NULL;

    ok("add", TRACK(&out, &err, "admin", "user", "add", "bob", "--role", "reader"), &out, &err);
    free(out);
    ok("run", TRACK(&out, &err, "run", "start", "--experiment", "iris"), &out, &err);
    char run[33];
    memcpy(run, out, 32);
    run[32] = '\0';
    free(out);
    ok("grant", TRACK(&out, &err, "admin", "grant", "bob", "iris", "read"), &out, &err);
    free(out);
    ok("delete", TRACK(&out, &err, "run", "delete", run), &out, &err);
    free(out);
    ok("audit", TRACK(&out, &err, "admin", "audit", "--json"), &out, &err);
    json_t *j = parse(out), *e = json_object_get(j, "entries");
    cr_assert_eq(json_array_size(e), 4, "%s", out);
    json_t *del = json_array_get(e, 0), *gr = json_array_get(e, 1), *rs = json_array_get(e, 2);
    cr_assert_str_eq(jstr(del, "op"), "lifecycle_set");
    cr_assert_str_eq(jstr(del, "detail"), "run delete");
    cr_assert_str_eq(jstr(del, "run_id"), run);
    cr_assert_str_eq(jstr(del, "experiment"), "iris");
    cr_assert_str_eq(jstr(del, "code"), "OK");
    cr_assert(json_is_null(json_object_get(del, "key")));
    cr_assert(json_is_integer(json_object_get(del, "time")));
    cr_assert_str_eq(jstr(gr, "op"), "grant_set");
    cr_assert_str_eq(jstr(gr, "detail"), "grant bob read");
    cr_assert_str_eq(jstr(rs, "op"), "run_start");
    cr_assert_str_eq(jstr(rs, "run_id"), run);
    cr_assert_str_eq(jstr(json_array_get(e, 3), "detail"), "user add bob role=reader");
    json_decref(j);
    free(out);

    ok("filtered",
       TRACK(&out, &err, "admin", "audit", "--experiment", "iris", "--limit", "1", "--json"), &out,
       &err);
    j = parse(out);
    cr_assert_eq(json_array_size(json_object_get(j, "entries")), 1);
    json_decref(j);
    free(out);
    ok("since", TRACK(&out, &err, "admin", "audit", "--since", "1h"), &out, &err);
    cr_assert(strstr(out, "lifecycle_set"), "%s", out);
    free(out);

    /* prune everything older than a moment from now: the four rows go */
    ok("prune", TRACK(&out, &err, "admin", "audit", "--prune-before", "2999-01-01", "--json"), &out,
       &err);
    j = parse(out);
    cr_assert_eq(json_integer_value(json_object_get(j, "removed")), 4, "%s", out);
    json_decref(j);
    free(out);
    ok("audit", TRACK(&out, &err, "admin", "audit", "--json"), &out, &err);
    j = parse(out);
    e = json_object_get(j, "entries");
    cr_assert_eq(json_array_size(e), 1, "%s", out);
    cr_assert_str_eq(jstr(json_array_get(e, 0), "op"), "audit_prune");
    json_decref(j);
    free(out);
    cr_assert_eq(TRACK(&out, &err, "admin", "audit", "--since", "yesterday"), 2);
    free(out);
    free(err);
}

Test(admin_cli, whoami_as_the_local_owner)
{
    char *out = NULL, *err = NULL;

    ok("run", TRACK(&out, &err, "run", "start", "--experiment", "iris"), &out, &err);
    free(out);
    ok("whoami", TRACK(&out, &err, "whoami", "--json"), &out, &err);
    json_t *j = parse(out);
    cr_assert(json_is_true(json_object_get(j, "local")));
    cr_assert_str_eq(jstr(j, "role"), "admin");
    cr_assert(json_is_null(json_object_get(j, "key")));
    json_t *x = json_object_get(j, "experiments");
    cr_assert_eq(json_array_size(x), 1);
    cr_assert_str_eq(jstr(json_array_get(x, 0), "experiment"), "iris");
    cr_assert_str_eq(jstr(json_array_get(x, 0), "level"), "manage");
    json_decref(j);
    free(out);
    ok("whoami", TRACK(&out, &err, "whoami"), &out, &err);
    cr_assert(strstr(out, "role admin, local owner"), "%s", out);
    free(out);
    ok("help", TRACK(&out, &err, "help", "admin", "token", "create"), &out, &err);
    cr_assert(strstr(out, "--expires DURATION"), "%s", out);
    free(out);
}
