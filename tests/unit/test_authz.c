/*
 * test_authz.c: dispatch's permission check and audit (daemon/authz.c,
 * audit.c, op_admin.c) driven through srv_dispatch on a real store in a
 * mkdtemp directory, with callers built as the sealed transport will build
 * them. Writes run as the loop runs them (a transaction, a savepoint per
 * request, the savepoint rolled back on failure and srv_audit_refusal
 * after it), reads in a read transaction as a worker does.
 *
 * Users: alice writer, bob reader, carol writer granted write on "secret"
 * (so restricted), dave admin. "iris" is open.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "op.h"

static char dir[256];
static struct srv srv;
static struct store *st;
static struct store_err err;
static struct srv_caller alice, bob, carol, dave;
static uint8_t run_iris[16] = {0xa1, 1}, run_secret[16] = {0xb2, 2}, run_child[16] = {0xc3, 3};
static char hex_iris[33], hex_secret[33], hex_child[33];
static unsigned next_id;

struct res {
    int code;
    char msg[600];
    Track__V1__Response rs;
    struct srv_call call;
};

static void caller_of(struct srv_caller *c, const char *name)
{
    struct store_user u;
    cr_assert_eq(store_user_by_name(st, name, &u, &err), 0, "%s", err.msg);
    memset(c, 0, sizeof *c);
    c->user_id = u.id;
    c->role = u.role;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->has_key = u.has_key;
    memcpy(c->key, u.key, STORE_KEY_BYTES);
}

/* Runs rq as caller c; write: as the loop does, else as a worker. */
static void run_rq(struct res *r, const struct srv_caller *c, Track__V1__Request *rq, int write)
{
    uint8_t id[16] = {0};
    struct store_err e = {0};

    next_id++;
    memcpy(id, &next_id, sizeof next_id);
    rq->request_id.data = id;
    rq->request_id.len = 16;
    memset(r, 0, sizeof *r);
    track__v1__response__init(&r->rs);
    r->call = (struct srv_call){.caller = c, .srv = &srv, .st = st, .rq = rq, .rs = &r->rs};
    if (write) {
        cr_assert_eq(store_begin(st, &e), 0, "%s", e.msg);
        cr_assert_eq(store_save(st, &e), 0, "%s", e.msg);
    } else if (!srv_op_own_txn(rq)) {
        cr_assert_eq(store_begin(st, &e), 0, "%s", e.msg);
    }
    srv_dispatch(&r->call);
    if (r->rs.error) {
        r->code = (int)r->rs.error->code;
        snprintf(r->msg, sizeof r->msg, "%s", r->rs.error->message);
    }
    if (write) {
        if (r->rs.error) {
            store_rollback_to(st);
            srv_audit_refusal(&r->call, 1);
        } else {
            store_release(st);
        }
        cr_assert_eq(store_commit(st, &e), 0, "%s", e.msg);
    } else if (!srv_op_own_txn(rq)) {
        store_rollback(st);
    }
}

static void done(struct res *r)
{
    srv_arena_free(&r->call.arena);
}

static int log_batch(const struct srv_caller *c, const char *run, char *msg, size_t cap)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LogBatch lb = TRACK__V1__LOG_BATCH__INIT;
    Track__V1__KeyValue kv = TRACK__V1__KEY_VALUE__INIT, *kvp = &kv;
    struct res r;
    kv.key = (char *)"k";
    kv.value = (char *)"v";
    lb.run = (char *)run;
    lb.tags = &kvp;
    lb.n_tags = 1;
    rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
    rq.log_batch = &lb;
    run_rq(&r, c, &rq, 1);
    if (msg)
        snprintf(msg, cap, "%s", r.msg);
    done(&r);
    return r.code;
}

static int run_get(const struct srv_caller *c, const char *run, char *msg, size_t cap)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunGet g = TRACK__V1__RUN_GET__INIT;
    struct res r;
    g.run = (char *)run;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
    rq.run_get = &g;
    run_rq(&r, c, &rq, 0);
    if (msg)
        snprintf(msg, cap, "%s", r.msg);
    done(&r);
    return r.code;
}

static int lifecycle(const struct srv_caller *c, const char *run, int deleted, char *msg,
                     size_t cap)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LifecycleSet l = TRACK__V1__LIFECYCLE_SET__INIT;
    struct res r;
    l.run = (char *)run;
    l.deleted = deleted;
    rq.op_case = TRACK__V1__REQUEST__OP_LIFECYCLE_SET;
    rq.lifecycle_set = &l;
    run_rq(&r, c, &rq, 1);
    if (msg)
        snprintf(msg, cap, "%s", r.msg);
    done(&r);
    return r.code;
}

static int grant(const struct srv_caller *c, const char *user, const char *exp, const char *level)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__GrantSet g = TRACK__V1__GRANT_SET__INIT;
    struct res r;
    g.user = (char *)user;
    g.experiment = (char *)exp;
    g.level = (char *)level;
    rq.op_case = TRACK__V1__REQUEST__OP_GRANT_SET;
    rq.grant_set = &g;
    run_rq(&r, c, &rq, 1);
    done(&r);
    return r.code;
}

static int do_revoke(const struct srv_caller *c, const char *user, const char *exp)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__GrantRevoke g = TRACK__V1__GRANT_REVOKE__INIT;
    struct res r;
    g.user = (char *)user;
    g.experiment = (char *)exp;
    rq.op_case = TRACK__V1__REQUEST__OP_GRANT_REVOKE;
    rq.grant_revoke = &g;
    run_rq(&r, c, &rq, 1);
    done(&r);
    return r.code;
}

static void start_run(const uint8_t id[16], const char *exp, const char *parent)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunStart s = TRACK__V1__RUN_START__INIT;
    struct res r;
    s.run_id.data = (uint8_t *)id;
    s.run_id.len = 16;
    s.experiment = (char *)exp;
    s.start_ms = 1000;
    s.parent = (char *)(parent ? parent : "");
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_START;
    rq.run_start = &s;
    run_rq(&r, NULL, &rq, 1);
    cr_assert_eq(r.code, 0, "run_start: %s", r.msg);
    done(&r);
}

static void setup(void)
{
    struct store_opts o = {0};

    snprintf(dir, sizeof dir, "/tmp/track-authz-XXXXXX");
    cr_assert(mkdtemp(dir));
    memset(&srv, 0, sizeof srv);
    snprintf(srv.cfg.data_dir, sizeof srv.cfg.data_dir, "%s", dir);
    snprintf(srv.cfg.db_path, sizeof srv.cfg.db_path, "%s/track.db", dir);
    cr_assert_eq(store_open(srv.cfg.db_path, &o, &st, &err), 0, "%s", err.msg);
    srv.wst = st;
    cr_assert_eq(store_begin(st, &err), 0);
    cr_assert_eq(store_user_add(st, "alice", STORE_ROLE_WRITER, NULL, 1, NULL, &err), 0);
    cr_assert_eq(store_user_add(st, "bob", STORE_ROLE_READER, NULL, 1, NULL, &err), 0);
    cr_assert_eq(store_user_add(st, "carol", STORE_ROLE_WRITER, NULL, 1, NULL, &err), 0);
    cr_assert_eq(store_user_add(st, "dave", STORE_ROLE_ADMIN, NULL, 1, NULL, &err), 0);
    cr_assert_eq(store_commit(st, &err), 0);
    caller_of(&alice, "alice");
    caller_of(&bob, "bob");
    caller_of(&carol, "carol");
    caller_of(&dave, "dave");
    wire_hex(run_iris, hex_iris);
    wire_hex(run_secret, hex_secret);
    wire_hex(run_child, hex_child);
    start_run(run_iris, "iris", NULL);
    start_run(run_secret, "secret", NULL);
    start_run(run_child, "iris", hex_secret); /* a child in iris of a secret run */
    cr_assert_eq(grant(&dave, "carol", "secret", "write"), 0);
}

static void teardown(void)
{
    char cmd[400];
    store_close(st);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(authz, .init = setup, .fini = teardown);

struct audit_rows {
    int n;
    char ops[64][32];
    char users[64][32];
    char details[64][128];
    char exps[64][32];
    int codes[64];
    int has_run[64];
};

static int audit_cb(void *ctx, const struct store_audit *a)
{
    struct audit_rows *r = ctx;
    if (r->n >= 64)
        return 1;
    snprintf(r->ops[r->n], 32, "%s", a->op);
    snprintf(r->users[r->n], 32, "%s", a->user);
    snprintf(r->details[r->n], 128, "%s", a->detail);
    snprintf(r->exps[r->n], 32, "%s", a->experiment ? a->experiment : "");
    r->codes[r->n] = a->code;
    r->has_run[r->n] = a->has_run;
    r->n++;
    return 0;
}

static void audit_rows(struct audit_rows *r)
{
    struct store_audit_query q = {.limit = 64};
    memset(r, 0, sizeof *r);
    cr_assert_eq(store_audit_list(st, &q, audit_cb, r, &err), 0, "%s", err.msg);
}

Test(authz, a_reader_cannot_write_and_is_told_the_need)
{
    char msg[600], want[300];
    cr_assert_eq(log_batch(&bob, hex_iris, msg, sizeof msg), TRACK__V1__CODE__PERMISSION_DENIED);
    snprintf(want, sizeof want,
             "permission denied: user bob has read on experiment \"iris\"; log_batch needs write");
    cr_assert_str_eq(msg, want);
    cr_assert_eq(run_get(&bob, hex_iris, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(log_batch(&alice, hex_iris, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(log_batch(NULL, hex_iris, msg, sizeof msg), 0, "the local owner: %s", msg);
}

Test(authz, a_writer_cannot_manage_without_a_manage_grant)
{
    char msg[600];
    /* open experiment: the writer role gives write, not manage */
    cr_assert_eq(lifecycle(&alice, hex_iris, 1, msg, sizeof msg),
                 TRACK__V1__CODE__PERMISSION_DENIED);
    cr_assert(
        strstr(msg, "user alice has write on experiment \"iris\"; lifecycle_set needs manage"),
        "%s", msg);
    /* restricted: carol has write there, and no more */
    cr_assert_eq(lifecycle(&carol, hex_secret, 1, msg, sizeof msg),
                 TRACK__V1__CODE__PERMISSION_DENIED);
    cr_assert_eq(grant(&dave, "carol", "secret", "manage"), 0);
    cr_assert_eq(lifecycle(&carol, hex_secret, 1, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(lifecycle(&carol, hex_secret, 0, msg, sizeof msg), 0, "%s", msg);
    /* an admin and the local owner may */
    cr_assert_eq(lifecycle(&dave, hex_iris, 1, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(lifecycle(NULL, hex_iris, 0, msg, sizeof msg), 0, "%s", msg);
}

Test(authz, a_writer_cannot_do_admin_operations)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__UserAdd ua = TRACK__V1__USER_ADD__INIT;
    Track__V1__Gc gc = TRACK__V1__GC__INIT;
    Track__V1__BackupBegin bb = TRACK__V1__BACKUP_BEGIN__INIT;
    Track__V1__AuditList al = TRACK__V1__AUDIT_LIST__INIT;
    struct res r;

    ua.name = (char *)"eve";
    ua.role = (char *)"admin";
    rq.op_case = TRACK__V1__REQUEST__OP_USER_ADD;
    rq.user_add = &ua;
    run_rq(&r, &alice, &rq, 1);
    cr_assert_eq(r.code, TRACK__V1__CODE__PERMISSION_DENIED);
    cr_assert_str_eq(
        r.msg, "permission denied: user alice has role writer; user_add needs the admin role");
    done(&r);
    rq.op_case = TRACK__V1__REQUEST__OP_GC;
    rq.gc = &gc;
    run_rq(&r, &alice, &rq, 0);
    cr_assert_eq(r.code, TRACK__V1__CODE__PERMISSION_DENIED, "%s", r.msg);
    done(&r);
    rq.op_case = TRACK__V1__REQUEST__OP_BACKUP_BEGIN;
    rq.backup_begin = &bb;
    run_rq(&r, &alice, &rq, 0);
    cr_assert_eq(r.code, TRACK__V1__CODE__PERMISSION_DENIED, "%s", r.msg);
    done(&r);
    rq.op_case = TRACK__V1__REQUEST__OP_AUDIT_LIST;
    rq.audit_list = &al;
    run_rq(&r, &bob, &rq, 0);
    cr_assert_eq(r.code, TRACK__V1__CODE__PERMISSION_DENIED, "%s", r.msg);
    done(&r);
    /* dave may (the oneof's pointers share one union: set it again) */
    rq.op_case = TRACK__V1__REQUEST__OP_USER_ADD;
    rq.user_add = &ua;
    run_rq(&r, &dave, &rq, 1);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    done(&r);
    struct store_user u;
    cr_assert_eq(store_user_by_name(st, "eve", &u, &err), 0);
    cr_assert_eq(u.role, STORE_ROLE_ADMIN);
}

Test(authz, a_grant_widens_and_a_revocation_narrows_on_the_next_call)
{
    char msg[600];
    cr_assert_eq(log_batch(&bob, hex_secret, msg, sizeof msg), TRACK__V1__CODE__NOT_FOUND);
    cr_assert_eq(grant(&dave, "bob", "secret", "write"), 0);
    cr_assert_eq(log_batch(&bob, hex_secret, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(grant(&dave, "bob", "secret", "read"), 0);
    cr_assert_eq(log_batch(&bob, hex_secret, msg, sizeof msg), TRACK__V1__CODE__PERMISSION_DENIED);
    cr_assert_eq(run_get(&bob, hex_secret, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(do_revoke(&dave, "bob", "secret"), 0);
    cr_assert_eq(run_get(&bob, hex_secret, msg, sizeof msg), TRACK__V1__CODE__NOT_FOUND);
    /* revoking the last grant opens the experiment again */
    cr_assert_eq(do_revoke(&dave, "carol", "secret"), 0);
    cr_assert_eq(run_get(&bob, hex_secret, msg, sizeof msg), 0, "%s", msg);
}

struct listed {
    int runs_secret, runs_iris, exp_secret, exp_iris;
};

Test(authz, a_restricted_experiment_vanishes_for_others)
{
    char msg[600], want[100];
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunList rl = TRACK__V1__RUN_LIST__INIT;
    Track__V1__ExperimentList el = TRACK__V1__EXPERIMENT_LIST__INIT;
    Track__V1__Lineage li = TRACK__V1__LINEAGE__INIT;
    struct res r;

    /* its run ids answer as missing ones do, full or prefix */
    cr_assert_eq(run_get(&alice, hex_secret, msg, sizeof msg), TRACK__V1__CODE__NOT_FOUND);
    snprintf(want, sizeof want, "run %s not found", hex_secret);
    cr_assert_str_eq(msg, want);
    char prefix[9];
    snprintf(prefix, sizeof prefix, "%.8s", hex_secret);
    cr_assert_eq(run_get(&alice, prefix, msg, sizeof msg), TRACK__V1__CODE__NOT_FOUND);
    snprintf(want, sizeof want, "no run id starts with \"%s\"", prefix);
    cr_assert_str_eq(msg, want);
    cr_assert_eq(log_batch(&alice, hex_secret, msg, sizeof msg), TRACK__V1__CODE__NOT_FOUND);
    cr_assert_eq(run_get(&carol, hex_secret, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(run_get(&dave, hex_secret, msg, sizeof msg), 0, "%s", msg);

    rq.op_case = TRACK__V1__REQUEST__OP_RUN_LIST;
    rq.run_list = &rl;
    run_rq(&r, &bob, &rq, 0);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    cr_assert_eq(r.rs.run_list->n_runs, 2); /* iris and its child */
    for (size_t i = 0; i < r.rs.run_list->n_runs; i++)
        cr_assert_str_eq(r.rs.run_list->runs[i]->experiment, "iris");
    done(&r);
    run_rq(&r, &carol, &rq, 0);
    cr_assert_eq(r.rs.run_list->n_runs, 3);
    done(&r);
    char *names[] = {(char *)"secret"};
    rl.experiments = names;
    rl.n_experiments = 1;
    run_rq(&r, &bob, &rq, 0);
    cr_assert_eq(r.code, TRACK__V1__CODE__NOT_FOUND, "%s", r.msg);
    cr_assert_str_eq(r.msg, "experiment \"secret\" not found");
    done(&r);

    rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_LIST;
    rq.experiment_list = &el;
    run_rq(&r, &bob, &rq, 0);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    for (size_t i = 0; i < r.rs.experiment_list->n_experiments; i++)
        cr_assert_str_neq(r.rs.experiment_list->experiments[i]->name, "secret");
    size_t bob_sees = r.rs.experiment_list->n_experiments;
    done(&r);
    run_rq(&r, NULL, &rq, 0);
    cr_assert_eq(r.rs.experiment_list->n_experiments, bob_sees + 1);
    done(&r);

    /* lineage: the child's secret parent is not among its ancestors */
    li.run = hex_child;
    rq.op_case = TRACK__V1__REQUEST__OP_LINEAGE;
    rq.lineage = &li;
    run_rq(&r, &bob, &rq, 0);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    cr_assert_eq(r.rs.lineage->n_ancestors, 0);
    done(&r);
    run_rq(&r, &carol, &rq, 0);
    cr_assert_eq(r.rs.lineage->n_ancestors, 1);
    done(&r);
    li.run = hex_secret;
    run_rq(&r, &carol, &rq, 0);
    cr_assert_eq(r.rs.lineage->n_children, 1);
    done(&r);
}

Test(authz, models_of_a_restricted_experiment_vanish)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelList ml = TRACK__V1__MODEL_LIST__INIT;
    Track__V1__ModelGet mg = TRACK__V1__MODEL_GET__INIT;
    Track__V1__ModelAlias ma = TRACK__V1__MODEL_ALIAS__INIT;
    uint8_t dg[32] = {7};
    struct res r;

    cr_assert_eq(store_begin(st, &err), 0);
    cr_assert_eq(store_artifact_put(st, run_secret, "m.bin", dg, 3, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(
        store_model_register(st, "hidden", run_secret, "m.bin", "", NULL, NULL, 0, 1, NULL, &err),
        0, "%s", err.msg);
    cr_assert_eq(store_commit(st, &err), 0);
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_LIST;
    rq.model_list = &ml;
    run_rq(&r, &bob, &rq, 0);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    cr_assert_eq(r.rs.model_list->n_models, 0);
    done(&r);
    run_rq(&r, &carol, &rq, 0);
    cr_assert_eq(r.rs.model_list->n_models, 1);
    done(&r);
    mg.ref = (char *)"hidden/1";
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_GET;
    rq.model_get = &mg;
    run_rq(&r, &bob, &rq, 0);
    cr_assert_eq(r.code, TRACK__V1__CODE__NOT_FOUND, "%s", r.msg);
    cr_assert_str_eq(r.msg, "model \"hidden\" not found");
    done(&r);
    ma.name = (char *)"hidden";
    ma.alias = (char *)"production";
    ma.version = (char *)"1";
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_ALIAS;
    rq.model_alias = &ma;
    run_rq(&r, &carol, &rq, 1);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    done(&r);
    struct audit_rows a;
    audit_rows(&a);
    cr_assert_str_eq(a.ops[0], "model_alias");
    cr_assert_str_eq(a.details[0], "model hidden alias production -> 1");
    cr_assert_str_eq(a.exps[0], "secret");
    cr_assert_str_eq(a.users[0], "carol");
}

Test(authz, audit_rows_for_writes_admin_actions_and_refusals_survive_delete_and_gc)
{
    char msg[600];
    struct audit_rows a, b;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Gc gc = TRACK__V1__GC__INIT;
    struct res r;

    cr_assert_eq(lifecycle(&alice, hex_iris, 1, msg, sizeof msg),
                 TRACK__V1__CODE__PERMISSION_DENIED);
    cr_assert_eq(log_batch(&alice, hex_iris, msg, sizeof msg), 0);
    audit_rows(&a);
    /* newest first: alice's log_batch, her refused delete, dave's grant, 3 run starts */
    cr_assert_eq(a.n, 6, "%d rows", a.n);
    cr_assert_str_eq(a.ops[0], "log_batch");
    cr_assert_str_eq(a.users[0], "alice");
    cr_assert_str_eq(a.exps[0], "iris");
    cr_assert(a.has_run[0]);
    cr_assert_str_eq(a.details[0], "params=0 tags=1 series=0 points=0");
    cr_assert_str_eq(a.ops[1], "lifecycle_set");
    cr_assert_eq(a.codes[1], TRACK__V1__CODE__PERMISSION_DENIED);
    cr_assert_str_eq(a.details[1], "run delete");
    cr_assert_str_eq(a.ops[2], "grant_set");
    cr_assert_str_eq(a.details[2], "grant carol write");
    cr_assert_str_eq(a.exps[2], "secret");
    cr_assert_str_eq(a.users[2], "dave");
    cr_assert_str_eq(a.ops[5], "run_start");
    cr_assert_str_eq(a.users[5], srv_owner_name());
    /* the local owner's writes are audited too, under the owner's login name */
    cr_assert_eq(log_batch(NULL, hex_iris, msg, sizeof msg), 0);
    audit_rows(&a);
    cr_assert_eq(a.n, 7);
    cr_assert_str_eq(a.ops[0], "log_batch");
    cr_assert_str_eq(a.users[0], srv_owner_name());

    /* delete and gc: the rows stay as they were, plus the two actions' own */
    cr_assert_eq(lifecycle(NULL, hex_iris, 1, msg, sizeof msg), 0, "%s", msg);
    gc.grace_ms = 0;
    rq.op_case = TRACK__V1__REQUEST__OP_GC;
    rq.gc = &gc;
    run_rq(&r, &dave, &rq, 0);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    cr_assert_eq(r.rs.gc->runs_count, 1);
    done(&r);
    cr_assert_eq(run_get(NULL, hex_iris, msg, sizeof msg), TRACK__V1__CODE__NOT_FOUND);
    audit_rows(&b);
    cr_assert_eq(b.n, 9, "%d rows", b.n);
    cr_assert_str_eq(b.ops[0], "gc");
    cr_assert_str_eq(b.users[0], "dave");
    cr_assert(strstr(b.details[0], "runs=1"), "%s", b.details[0]);
    cr_assert_str_eq(b.ops[1], "lifecycle_set");
    for (int i = 0; i < a.n; i++) {
        cr_assert_str_eq(b.ops[i + 2], a.ops[i]);
        cr_assert_str_eq(b.details[i + 2], a.details[i]);
        cr_assert_eq(b.codes[i + 2], a.codes[i]);
    }
}

Test(authz, a_refused_lone_write_is_audited_outside_its_rollback)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ExperimentCreate ec = TRACK__V1__EXPERIMENT_CREATE__INIT;
    struct srv_call call;
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    uint8_t id[16] = {9, 9};
    struct audit_rows a;

    ec.name = (char *)"new";
    rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_CREATE;
    rq.experiment_create = &ec;
    rq.request_id.data = id;
    rq.request_id.len = 16;
    call = (struct srv_call){.caller = &bob, .srv = &srv, .st = st, .rq = &rq, .rs = &rs};
    /* the loop's solo path: the whole transaction is rolled back */
    cr_assert_eq(store_begin(st, &err), 0);
    srv_dispatch(&call);
    cr_assert(rs.error);
    cr_assert_eq(rs.error->code, TRACK__V1__CODE__PERMISSION_DENIED);
    store_rollback(st);
    srv_audit_refusal(&call, 0);
    srv_arena_free(&call.arena);
    audit_rows(&a);
    cr_assert_str_eq(a.ops[0], "experiment_create");
    cr_assert_str_eq(a.users[0], "bob");
    cr_assert_eq(a.codes[0], TRACK__V1__CODE__PERMISSION_DENIED);
    cr_assert_str_eq(a.exps[0], "new");
}

Test(authz, backups_are_for_admins_and_no_path_is_written)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Backup b = TRACK__V1__BACKUP__INIT;
    const char *paths[] = {"../x", "/etc/x", "x"};
    struct res r;
    char p[600];

    rq.op_case = TRACK__V1__REQUEST__OP_BACKUP;
    rq.backup = &b;
    for (size_t i = 0; i < 3; i++) {
        b.path = (char *)paths[i];
        run_rq(&r, &bob, &rq, 0);
        cr_assert_eq(r.code, TRACK__V1__CODE__PERMISSION_DENIED, "%s", r.msg);
        done(&r);
        run_rq(&r, &dave, &rq, 0);
        cr_assert_eq(r.code, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", r.msg);
        cr_assert(strstr(r.msg, "no longer writes a file at a path"), "%s", r.msg);
        done(&r);
    }
    snprintf(p, sizeof p, "%s/../x", dir);
    cr_assert_neq(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/x", dir);
    cr_assert_neq(access(p, F_OK), 0);
}

Test(authz, whoami_lists_what_the_caller_sees)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Whoami w = TRACK__V1__WHOAMI__INIT;
    struct res r;

    rq.op_case = TRACK__V1__REQUEST__OP_WHOAMI;
    rq.whoami = &w;
    run_rq(&r, &carol, &rq, 0);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    cr_assert_str_eq(r.rs.whoami->name, "carol");
    cr_assert_str_eq(r.rs.whoami->role, "writer");
    cr_assert_not(r.rs.whoami->local);
    cr_assert_eq(r.rs.whoami->n_experiments, 2);
    cr_assert_str_eq(r.rs.whoami->experiments[0]->experiment, "iris");
    cr_assert_str_eq(r.rs.whoami->experiments[0]->level, "write");
    cr_assert_str_eq(r.rs.whoami->experiments[1]->experiment, "secret");
    cr_assert_str_eq(r.rs.whoami->experiments[1]->level, "write");
    done(&r);
    run_rq(&r, &bob, &rq, 0);
    cr_assert_eq(r.rs.whoami->n_experiments, 1);
    cr_assert_str_eq(r.rs.whoami->experiments[0]->level, "read");
    done(&r);
    run_rq(&r, NULL, &rq, 0);
    cr_assert(r.rs.whoami->local);
    cr_assert_str_eq(r.rs.whoami->role, "admin");
    cr_assert_eq(r.rs.whoami->n_experiments, 2);
    done(&r);
}

Test(authz, run_start_needs_write_there_and_a_new_experiment_the_writer_role)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunStart s = TRACK__V1__RUN_START__INIT;
    uint8_t id[16] = {0xd4, 4};
    struct res r;

    s.run_id.data = id;
    s.run_id.len = 16;
    s.start_ms = 5;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_START;
    rq.run_start = &s;
    s.experiment = (char *)"fresh";
    run_rq(&r, &bob, &rq, 1);
    cr_assert_eq(r.code, TRACK__V1__CODE__PERMISSION_DENIED, "%s", r.msg);
    cr_assert_str_eq(
        r.msg, "permission denied: user bob has role reader; run_start needs the writer role");
    done(&r);
    s.experiment = (char *)"secret";
    run_rq(&r, &alice, &rq, 1);
    cr_assert_eq(r.code, TRACK__V1__CODE__NOT_FOUND, "%s", r.msg);
    cr_assert_str_eq(r.msg, "experiment \"secret\" not found");
    done(&r);
    run_rq(&r, &carol, &rq, 1);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    done(&r);
    id[1] = 5;
    s.experiment = (char *)"fresh";
    run_rq(&r, &alice, &rq, 1);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    done(&r);
    struct audit_rows a;
    audit_rows(&a);
    cr_assert_str_eq(a.ops[0], "run_start");
    cr_assert_str_eq(a.exps[0], "fresh");
    cr_assert(a.has_run[0]);
    cr_assert_eq(a.codes[2], TRACK__V1__CODE__NOT_FOUND, "alice's refusal is audited");
    cr_assert_eq(a.codes[3], TRACK__V1__CODE__PERMISSION_DENIED, "bob's too");
}

Test(authz, blobs_verify_and_prefixes_reveal_nothing_hidden)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactRead ar = TRACK__V1__ARTIFACT_READ__INIT;
    Track__V1__ArtifactVerify av = TRACK__V1__ARTIFACT_VERIFY__INIT;
    Track__V1__ModelTag mt = TRACK__V1__MODEL_TAG__INIT;
    uint8_t dg[32] = {8}, other[32] = {9};
    uint8_t twin[16] = {0xb2, 2, 1}; /* shares a prefix with run_secret */
    char prefix[9], msg[600];
    struct res r;

    cr_assert_eq(store_begin(st, &err), 0);
    cr_assert_eq(store_artifact_put(st, run_secret, "w.bin", dg, 3, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(store_artifact_put(st, run_iris, "x.bin", other, 3, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(
        store_model_register(st, "m", run_secret, "w.bin", "", NULL, NULL, 0, 1, NULL, &err), 0,
        "%s", err.msg);
    cr_assert_eq(store_commit(st, &err), 0);
    start_run(twin, "secret", NULL);

    ar.digest.data = dg;
    ar.digest.len = 32;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_READ;
    rq.artifact_read = &ar;
    run_rq(&r, &bob, &rq, 0);
    cr_assert_eq(r.code, TRACK__V1__CODE__NOT_FOUND, "%s", r.msg);
    cr_assert_str_eq(r.msg, "blob not found");
    done(&r);
    cr_assert_eq(store_grant_set(st, "bob", "secret", STORE_LEVEL_READ, NULL, &err), 0);
    struct srv_call probe = {.caller = &bob, .st = st};
    int level = -1;
    cr_assert_eq(srv_authz_run_level(&probe, run_secret, &level), 0);
    cr_assert_eq(level, STORE_LEVEL_READ);
    cr_assert_eq(store_grant_revoke(st, "bob", "secret", NULL, NULL, &err), 0);

    /* verify of every run: admins only */
    av.run = (char *)"";
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_VERIFY;
    rq.artifact_verify = &av;
    run_rq(&r, &alice, &rq, 0);
    cr_assert_eq(r.code, TRACK__V1__CODE__PERMISSION_DENIED, "%s", r.msg);
    done(&r);

    /* a model's own tag is judged on its latest version's experiment */
    mt.target = (char *)"m";
    mt.key = (char *)"k";
    mt.value = (char *)"v";
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_TAG;
    rq.model_tag = &mt;
    run_rq(&r, &alice, &rq, 1);
    cr_assert_eq(r.code, TRACK__V1__CODE__NOT_FOUND, "%s", r.msg);
    cr_assert_str_eq(r.msg, "model \"m\" not found");
    done(&r);
    run_rq(&r, &carol, &rq, 1);
    cr_assert_eq(r.code, 0, "%s", r.msg);
    done(&r);

    /* an ambiguous prefix: its candidates only for those who see everything */
    snprintf(prefix, sizeof prefix, "%.4s", hex_secret);
    cr_assert_eq(run_get(&carol, prefix, msg, sizeof msg), TRACK__V1__CODE__INVALID_ARGUMENT);
    cr_assert_str_eq(msg, "run id \"b202\" is ambiguous; give more of its characters");
    cr_assert_eq(run_get(NULL, prefix, msg, sizeof msg), TRACK__V1__CODE__INVALID_ARGUMENT);
    cr_assert(strstr(msg, hex_secret), "%s", msg);
}
