/*
 * test_team.c: issue 15's "done when", end to end. One real trackd with a
 * sealed tcp:// listener on loopback and its ipc socket; its admin (the
 * local owner, over ipc) adds two users with their own keys through the
 * admin API; alice (writer) and bob (reader) then work over sealed TCP
 * through libtrack:
 *
 *   - each sees only what they are granted: a restricted experiment and its
 *     runs vanish from the other's listings and answer NOT_FOUND;
 *   - a reader cannot write (PERMISSION_DENIED naming the need), a writer
 *     cannot manage (run delete) nor administer (user add), nor take a
 *     backup;
 *   - a grant and a revocation take effect on the very next request;
 *   - every write and every refused write is in the audit, with the user
 *     and key, and stays after run delete;
 *   - a key over its request budget (trackd.conf limit_requests, re-read on
 *     SIGHUP) is answered RESOURCE_EXHAUSTED naming the limit while the
 *     other key is served;
 *   - whoami says who each one is.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon D;
static char home[256], tcp_uri[64], server_pk[TRACK_KEY_TEXT_BYTES];
static char alice_key[400], bob_key[400];
static struct track_client *admin, *alice, *bob;
static int passed;

static struct track_client *sealed_client(const char *key_path)
{
    struct track_opts o = {.server = tcp_uri,
                           .timeout_ms = 5000,
                           .no_spool = 1,
                           .key_path = key_path,
                           .server_key = server_pk};
    struct track_client *c = NULL;
    struct track_err err = {0};
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "open: %s", err.msg);
    return c;
}

static void setup(void)
{
    char p[300], listening[128], *out = NULL, *err = NULL;
    char apk[TRACK_KEY_TEXT_BYTES], bpk[TRACK_KEY_TEXT_BYTES];
    struct track_err e = {0};

    passed = 0;
    snprintf(home, sizeof(home), "/tmp/track-team-XXXXXX");
    cr_assert_not_null(mkdtemp(home));
    setenv("HOME", home, 1);
    snprintf(p, sizeof(p), "%s/.config", home);
    setenv("XDG_CONFIG_HOME", p, 1);
    unsetenv("TRACK_KEY");
    unsetenv("TRACK_SERVER_KEY");
    unsetenv("TRACK_SERVER");
    unsetenv("TRACK_RUN_ID");

    snprintf(tcp_uri, sizeof(tcp_uri), "tcp://127.0.0.1:%d", fx_free_port());
    const char *extra[] = {"--listen", tcp_uri, NULL};
    cr_assert_eq(fx_daemon_start(&D, extra), 0, "trackd did not start");
    snprintf(listening, sizeof(listening), "listening uri=%s sealed", tcp_uri);
    cr_assert(fx_wait_log(&D, 0, listening, 5000), "no \"%s\" in the log", listening);
    const char *argv[] = {TRACKD_BIN, "--data-dir", D.dir, "--print-public-key", NULL};
    cr_assert_eq(fx_run(argv, NULL, NULL, &out, &err), 0, "%s", err);
    snprintf(server_pk, sizeof(server_pk), "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    free(err);

    snprintf(alice_key, sizeof(alice_key), "%s/alice.key", home);
    snprintf(bob_key, sizeof(bob_key), "%s/bob.key", home);
    cr_assert_eq(track_keygen(alice_key, apk, &e), 0, "%s", e.msg);
    cr_assert_eq(track_keygen(bob_key, bpk, &e), 0, "%s", e.msg);

    /* the admin is the daemon's owner, over ipc */
    admin = fx_client_open(&D, 5000);
    cr_assert_eq(track_user_add(admin, "alice", "writer", apk, &e), 0, "%s", e.msg);
    cr_assert_eq(track_user_add(admin, "bob", "reader", bpk, &e), 0, "%s", e.msg);
    alice = sealed_client(alice_key);
    bob = sealed_client(bob_key);
}

static void teardown(void)
{
    track_client_close(alice);
    track_client_close(bob);
    track_client_close(admin);
    fx_daemon_cleanup(&D, !passed);
    fx_rmtree(home);
}

TestSuite(team, .init = setup, .fini = teardown, .timeout = 120);

static void start_run(struct track_client *c, const char *exp, const char *name, char hex[33])
{
    struct track_run_opts ro = {.experiment = exp, .name = name};
    struct track_err e = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(c, &ro, &id, &e), 0, "%s/%s: %s", exp, name, e.msg);
    track_run_id_hex(&id, hex);
}

/* How many runs c sees in experiment exp (NULL: all); -1 when the
 * experiment answers NOT_FOUND (absent, or not visible to c: the same). */
static long runs_seen(struct track_client *c, const char *exp)
{
    const char *exps[] = {exp, NULL};
    struct track_run_query q = {.experiments = exp ? exps : NULL};
    struct track_result *res = NULL;
    struct track_run_info *runs;
    struct track_err e = {0};
    size_t n = 0;
    int rc = track_run_list(c, &q, &res, &runs, &n, &e);
    if (rc == TRACK_E_NOT_FOUND) {
        cr_assert(strstr(e.msg, "not found"), "%s", e.msg);
        return -1;
    }
    cr_assert_eq(rc, 0, "%s", e.msg);
    track_result_free(res);
    return (long)n;
}

static int log_point(struct track_client *c, const char *run, struct track_err *e)
{
    memset(e, 0, sizeof(*e));
    int rc = track_run_use(c, run, e);
    if (rc)
        return rc;
    rc = track_log_metric(c, "loss", 0.5, 1, 0, e);
    return rc ? rc : track_flush(c, e);
}

Test(team, each_sees_only_what_they_are_granted_and_rights_hold)
{
    char a_run[33], shared[33];
    struct track_err e = {0};

    /* alice writes in two experiments; one is made hers alone */
    start_run(alice, "alice-private", "a1", a_run);
    start_run(alice, "shared", "s1", shared);
    cr_assert_eq(track_grant_set(admin, "alice", "alice-private", "manage", NULL, &e), 0, "%s",
                 e.msg);

    /* bob, a reader: sees the open experiment, not the restricted one */
    cr_assert_eq(runs_seen(bob, "shared"), 1);
    cr_assert_eq(runs_seen(bob, "alice-private"), -1,
                 "restricted: to bob it is as absent as a name never used");
    cr_assert_eq(runs_seen(bob, "never-made"), -1);
    cr_assert_eq(runs_seen(bob, NULL), 1, "bob's whole listing has only the shared run");
    struct track_result *res = NULL;
    struct track_run_info info;
    cr_assert_eq(track_run_get(bob, a_run, &res, &info, &e), TRACK_E_NOT_FOUND,
                 "a run bob may not read answers NOT_FOUND, as if absent: %s", e.msg);
    cr_assert_eq(runs_seen(alice, NULL), 2, "alice sees both");

    /* a reader cannot write, even where it can read */
    cr_assert_eq(log_point(bob, shared, &e), TRACK_E_PERMISSION_DENIED, "%s", e.msg);
    cr_assert(strstr(e.msg, "bob") && strstr(e.msg, "needs write"), "%s", e.msg);
    struct track_run_opts ro = {.experiment = "shared", .name = "b1"};
    track_run_id id;
    memset(&e, 0, sizeof(e));
    cr_assert_eq(track_run_start(bob, &ro, &id, &e), TRACK_E_PERMISSION_DENIED, "%s", e.msg);

    /* a writer writes, but cannot manage an open experiment or administer */
    cr_assert_eq(log_point(alice, shared, &e), 0, "%s", e.msg);
    int changed = 0;
    memset(&e, 0, sizeof(e));
    cr_assert_eq(track_run_delete(alice, shared, &changed, &e), TRACK_E_PERMISSION_DENIED, "%s",
                 e.msg);
    cr_assert(strstr(e.msg, "manage"), "%s", e.msg);
    memset(&e, 0, sizeof(e));
    cr_assert_eq(track_user_add(alice, "mallory", "admin", NULL, &e), TRACK_E_PERMISSION_DENIED,
                 "%s", e.msg);
    char bk[400];
    snprintf(bk, sizeof(bk), "%s/stolen.db", home);
    memset(&e, 0, sizeof(e));
    cr_assert_neq(track_backup(alice, bk, NULL, &e), 0, "a writer cannot take a backup");
    cr_assert_eq(access(bk, F_OK), -1, "and no file was written");
    /* ... but manages where granted */
    memset(&e, 0, sizeof(e));
    cr_assert_eq(track_run_delete(alice, a_run, &changed, &e), 0, "manage grant: %s", e.msg);

    /* a grant takes effect at the very next request, and so does a revocation */
    cr_assert_eq(track_grant_set(admin, "bob", "shared", "write", NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(log_point(bob, shared, &e), 0, "granted write: %s", e.msg);
    cr_assert_eq(runs_seen(alice, "shared"), -1,
                 "shared is restricted now: alice, without a grant, no longer sees it");
    int removed = 0;
    cr_assert_eq(track_grant_revoke(admin, "bob", "shared", &removed, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(removed, 1);
    cr_assert_eq(log_point(bob, shared, &e), TRACK_E_PERMISSION_DENIED, "revoked: %s", e.msg);
    cr_assert_eq(runs_seen(alice, "shared"), 1, "open again: alice sees it");

    /* whoami */
    struct track_admin_result *ar = NULL;
    const struct track_whoami *who = NULL;
    cr_assert_eq(track_whoami(bob, &ar, &who, &e), 0, "%s", e.msg);
    cr_assert_str_eq(who->name, "bob");
    cr_assert_str_eq(who->role, "reader");
    cr_assert_eq(who->local, 0);
    cr_assert(strncmp(who->key, "trk1:", 5) == 0);
    track_admin_result_free(ar);

    /* the audit has the writes and the refusals, with who and from which key */
    struct track_audit_query aq = {.limit = 1000};
    const struct track_audit_entry *rows = NULL;
    size_t n = 0;
    int64_t next = 0;
    cr_assert_eq(track_audit_list(admin, &aq, &ar, &rows, &n, &next, &e), 0, "%s", e.msg);
    int alice_writes = 0, bob_refused = 0, grants = 0, deletes = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].user, "alice") == 0 && strcmp(rows[i].code, "OK") == 0 &&
            strncmp(rows[i].key, "trk1:", 5) == 0)
            alice_writes++;
        if (strcmp(rows[i].user, "bob") == 0 && strcmp(rows[i].code, "PERMISSION_DENIED") == 0)
            bob_refused++;
        if (strstr(rows[i].op, "grant"))
            grants++;
        if (strcmp(rows[i].user, "alice") == 0 && strstr(rows[i].op, "lifecycle"))
            deletes += strcmp(rows[i].code, "OK") == 0 ? 1 : 100;
    }
    track_admin_result_free(ar);
    cr_assert_geq(alice_writes, 4, "alice's run starts, logs and delete: %d", alice_writes);
    cr_assert_geq(bob_refused, 2, "bob's refused writes: %d", bob_refused);
    cr_assert_geq(grants, 3, "the grant changes: %d", grants);
    cr_assert_eq(deletes, 101, "alice's delete that happened and the one refused: %d", deletes);
    passed = 1;
}

Test(team, a_key_over_its_budget_is_refused_and_the_other_is_served)
{
    char conf[400], run[33];
    struct track_err e = {0};

    start_run(alice, "rate", "r1", run);
    snprintf(conf, sizeof(conf), "%s/trackd.conf", D.dir);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "limit_requests = 20\n");
    fclose(f);
    long from = fx_log_size(&D);
    cr_assert_eq(kill(D.pid, SIGHUP), 0);
    cr_assert(fx_wait_log(&D, from, "reloaded", 5000), "no reload in the log");

    int refused = 0, ok = 0;
    for (int i = 0; i < 200 && !refused; i++) {
        struct track_result *res = NULL;
        struct track_run_info info;
        memset(&e, 0, sizeof(e));
        int rc = track_run_get(alice, run, &res, &info, &e);
        if (rc == 0) {
            ok++;
            track_result_free(res);
        } else {
            cr_assert_eq(rc, TRACK_E_RESOURCE_EXHAUSTED, "%s", e.msg);
            cr_assert(strstr(e.msg, "limit_requests"), "names the limit: %s", e.msg);
            refused = 1;
        }
    }
    cr_assert(refused, "20 a second, and %d requests passed", ok);
    cr_assert_leq(ok, 25, "about one second's budget passed: %d", ok);
    /* bob has a budget of his own, and ipc is not limited */
    cr_assert_eq(runs_seen(bob, "rate"), 1);
    cr_assert_eq(runs_seen(admin, "rate"), 1);
    /* a second later alice is served again */
    fx_sleep_ms(1100);
    struct track_result *res = NULL;
    struct track_run_info info;
    cr_assert_eq(track_run_get(alice, run, &res, &info, &e), 0, "%s", e.msg);
    track_result_free(res);
    passed = 1;
}

static int count_score(void *ctx, const struct track_score *s)
{
    (void)s;
    (*(int *)ctx)++;
    return 0;
}

/* Feedback goes through the same rules: writing a score is a write on its
 * run's experiment, reading scores a read; a restricted run's scores are as
 * absent as the run. */
Test(team, feedback_follows_the_rights_of_its_runs)
{
    char open_run[33], private_run[33];
    struct track_err e = {0};

    start_run(alice, "fb-open", "o1", open_run);
    start_run(alice, "fb-private", "p1", private_run);
    cr_assert_eq(track_grant_set(admin, "alice", "fb-private", "write", NULL, &e), 0, "%s", e.msg);

    struct track_score s = {
        .run = open_run, .name = "helpful", .kind = TRACK_SCORE_NUMBER, .number = 4, .by = "alice"};
    cr_assert_eq(track_feedback_add(alice, &s, &e), 0, "%s", e.msg);
    s.run = private_run;
    cr_assert_eq(track_feedback_add(alice, &s, &e), 0, "%s", e.msg);
    cr_assert_eq(track_flush(alice, &e), 0, "alice's scores: %s", e.msg);

    /* bob reads the open run's scores, not the private one's, and writes none */
    int n = 0;
    struct track_feedback_query q = {.run = open_run};
    cr_assert_eq(track_feedback_list(bob, &q, count_score, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 1);
    q.run = private_run;
    memset(&e, 0, sizeof(e));
    cr_assert_eq(track_feedback_list(bob, &q, count_score, &n, &e), TRACK_E_NOT_FOUND, "%s", e.msg);
    struct track_feedback_query qe = {.experiment = "fb-private"};
    memset(&e, 0, sizeof(e));
    cr_assert_eq(track_feedback_list(bob, &qe, count_score, &n, &e), TRACK_E_NOT_FOUND, "%s",
                 e.msg);
    s.run = open_run;
    s.by = "bob";
    memset(&e, 0, sizeof(e));
    int rc = track_feedback_add(bob, &s, &e);
    if (rc == 0)
        rc = track_flush(bob, &e);
    cr_assert_eq(rc, TRACK_E_PERMISSION_DENIED, "a reader's score is refused: %s", e.msg);
    passed = 1;
}
