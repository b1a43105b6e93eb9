/*
 * test_paging.c: replies and requests that grow with the data stay under the
 * frame limit (issue 12, items 13, 21, 27 and 30).
 *
 *   - a run of 70,000 metric keys with 239-byte names (summaries of about
 *     20 MB, past the 16 MiB frame limit) is read whole by `run show`,
 *     `run list --json`, `runs --json`, `compare` and `export`: the daemon
 *     pages the reply by bytes and libtrack follows the cursor; trackd's
 *     peak RSS stays bounded;
 *   - a batch of params bigger than a frame is split by libtrack; a run start
 *     that cannot be split is refused before it is sent, naming its size and
 *     the server's limit, which the client learns from Hello (a fake server
 *     with a 1 MiB limit shows it);
 *   - a metric history whose summary counts more points than are stored
 *     ends, with a message naming run and key, instead of looping;
 *   - a reply whose columns disagree is refused as malformed.
 *
 * The fake server is this binary exec'd again (a constructor serves before
 * Criterion's main): Criterion's runner uses nanomsg itself, whose threads
 * do not survive a fork (DESIGN.md).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"
#include "track.pb-c.h"
#include "wire.h"

#ifndef N_KEYS
#define N_KEYS 70000
#endif
#define KEYS_PER_RQ 4000
/* trackd's peak resident set (VmHWM) under ASan with a 40 MB database, and
 * how much all the reads of the big run (20 MB of summaries, read 8 times)
 * may add to the peak the writes left: each read worker's SQLite page cache
 * (32 MB, 2 workers) plus one page being built (4 MiB packed, a few times
 * that unpacked) and ASan's quarantine (16 MB here). Measured: 88 MB after
 * the writes, 200 MB after the reads, the same after the first read as
 * after the eighth. */
#define RSS_BOUND_KB      (300 * 1024)
#define RSS_READS_GROW_KB (128 * 1024)

static struct fx_daemon d;
static int passed;

static void setup(void)
{
    passed = 0;
    /* ASan keeps freed memory in a quarantine (256 MB by default), which
     * would be measured as trackd's own: keep it small for this suite */
    setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:quarantine_size_mb=16", 1);
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, !passed);
}

static struct track_client *client(const char *uri)
{
    struct track_opts o = {.server = uri, .timeout_ms = 20000, .no_spool = 1};
    struct track_client *c = NULL;
    struct track_err err = {0};
    cr_assert_eq(track_client_open(&o, &c, &err), 0, "open: %s", err.msg);
    return c;
}

static void key_of(size_t i, char *buf, size_t cap)
{
    /* 2 + 230 + 1 + 6 = 239 bytes: ~284 with their summary, 20 MB in all */
    static char pad[231];
    if (!pad[0])
        memset(pad, 'a', 230);
    snprintf(buf, cap, "m/%s/%06zu", pad, i);
}

/* Logs one point for each of n keys of run `hex` in raw LogBatch frames of
 * KEYS_PER_RQ series (libtrack's buffer holds 4096 keys at most). */
static void log_keys(const char *hex, size_t n)
{
    int s = nn_socket(AF_SP, NN_REQ), t = 30000;
    cr_assert_geq(s, 0);
    nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &t, sizeof(t));
    cr_assert_geq(nn_connect(s, d.uri), 0);
    static char keys[KEYS_PER_RQ][256];
    static Track__V1__MetricSeries ms[KEYS_PER_RQ];
    static Track__V1__MetricSeries *mp[KEYS_PER_RQ];
    int64_t step = 7, when = 1700000000000;
    double val = 0.5;
    for (size_t at = 0; at < n; at += KEYS_PER_RQ) {
        size_t k = n - at < KEYS_PER_RQ ? n - at : KEYS_PER_RQ;
        for (size_t i = 0; i < k; i++) {
            key_of(at + i, keys[i], sizeof(keys[i]));
            track__v1__metric_series__init(&ms[i]);
            ms[i].key = keys[i];
            ms[i].steps = &step;
            ms[i].n_steps = 1;
            ms[i].times_ms = &when;
            ms[i].n_times_ms = 1;
            ms[i].values = &val;
            ms[i].n_values = 1;
            mp[i] = &ms[i];
        }
        Track__V1__LogBatch lb = TRACK__V1__LOG_BATCH__INIT;
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        uint8_t rid[16];
        for (int i = 0; i < 16; i++)
            rid[i] = (uint8_t)(rand() & 0xff);
        lb.run = (char *)(uintptr_t)hex;
        lb.metrics = mp;
        lb.n_metrics = k;
        rq.request_id.data = rid;
        rq.request_id.len = 16;
        rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
        rq.log_batch = &lb;
        size_t len = track__v1__request__get_packed_size(&rq);
        uint8_t *buf = malloc(len);
        track__v1__request__pack(&rq, buf);
        cr_assert_geq(nn_send(s, buf, len, 0), 0);
        free(buf);
        void *msg = NULL;
        int got = nn_recv(s, &msg, NN_MSG, 0);
        cr_assert_gt(got, 0, "no reply to a log batch: %s", nn_strerror(nn_errno()));
        Track__V1__Response *rs = track__v1__response__unpack(NULL, (size_t)got, msg);
        nn_freemsg(msg);
        cr_assert_not_null(rs);
        cr_assert(!rs->error || rs->error->code == 0, "log batch: %s", rs->error->message);
        track__v1__response__free_unpacked(rs, NULL);
    }
    nn_close(s);
}

static long status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, strlen(field)) == 0)
            kb = strtol(line + strlen(field) + 1, NULL, 10);
    fclose(f);
    return kb;
}

/* Every key 0..N_KEYS-1 is a member of object `metrics`, with count 1. */
static void assert_all_keys(json_t *metrics, const char *what)
{
    char key[256];
    cr_assert(json_is_object(metrics), "%s: no metrics object", what);
    cr_assert_eq(json_object_size(metrics), N_KEYS, "%s: %zu metrics, expected %d", what,
                 json_object_size(metrics), N_KEYS);
    for (size_t i = 0; i < N_KEYS; i += 997) {
        key_of(i, key, sizeof(key));
        json_t *m = json_object_get(metrics, key);
        cr_assert_not_null(m, "%s: key %zu missing", what, i);
        cr_assert_eq(json_integer_value(json_object_get(m, "count")), 1);
    }
    key_of(N_KEYS - 1, key, sizeof(key));
    cr_assert_not_null(json_object_get(metrics, key), "%s: the last key is missing", what);
}

static void phase(const char *what, long long *t0)
{
    fprintf(stderr, "paging: %s in %lld ms, trackd VmHWM %ld kB\n", what, fx_now_ms() - *t0,
            status_kb(d.pid, "VmHWM:"));
    *t0 = fx_now_ms();
}

static json_t *parse(const char *out, const char *what)
{
    json_error_t je;
    json_t *j = json_loads(out ? out : "", 0, &je);
    cr_assert_not_null(j, "%s: output is not JSON: %s", what, je.text);
    return j;
}

TestSuite(paging, .init = setup, .fini = teardown, .timeout = 280);

Test(paging, run_of_70k_long_keys_is_read_whole_by_every_command)
{
    struct track_client *c = client(d.uri);
    struct track_err err = {0};
    struct track_kv params[] = {{"lr", "0.01"}, {"batch", "64"}};
    struct track_run_opts ro = {.name = "big", .params = params, .n_params = 2};
    track_run_id big, small;
    char hex[33], hex2[33];

    cr_assert_eq(track_run_start(c, &ro, &big, &err), 0, "%s", err.msg);
    track_run_id_hex(&big, hex);
    ro.name = "small";
    cr_assert_eq(track_run_start(c, &ro, &small, &err), 0, "%s", err.msg);
    track_run_id_hex(&small, hex2);
    cr_assert_eq(track_log_metric(c, "loss", 1.0, 1, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    long long t0 = fx_now_ms();
    log_keys(hex, N_KEYS);
    fprintf(stderr, "paging: logged %d keys in %lld ms\n", N_KEYS, fx_now_ms() - t0);
    long hwm_writes = status_kb(d.pid, "VmHWM:");
    t0 = fx_now_ms();

    /* libtrack itself: every summary, in key order, params intact */
    struct track_result *res = NULL;
    struct track_run_info info;
    cr_assert_eq(track_run_get(c, hex, &res, &info, &err), 0, "run get: %s", err.msg);
    cr_assert_eq(info.n_metrics, N_KEYS, "%zu metrics", info.n_metrics);
    cr_assert_eq(info.n_params, 2);
    for (size_t i = 1; i < info.n_metrics; i++)
        cr_assert_lt(strcmp(info.metrics[i - 1].key, info.metrics[i].key), 0,
                     "keys out of order or repeated at %zu", i);
    track_result_free(res);
    track_client_close(c);
    fprintf(stderr, "paging: run get in %lld ms\n", fx_now_ms() - t0);
    t0 = fx_now_ms();

    char *out = NULL, *errs = NULL;
    int rc;

    rc = fx_track(&d, NULL, NULL, &out, &errs, "run", "show", hex, NULL);
    cr_assert_eq(rc, 0, "run show: %s", errs);
    phase("run show", &t0);
    size_t lines = 0;
    /* by hand: ASan's strstr measures the whole haystack on every call */
    for (const char *p = out; *p; p++)
        if (p[0] == '\n' && p[1] == ' ' && p[2] == ' ' && p[3] == 'm' && p[4] == '/')
            lines++;
    cr_assert_eq(lines, N_KEYS, "run show printed %zu metric rows", lines);
    free(out);
    free(errs);

    rc = fx_track(&d, NULL, NULL, &out, &errs, "run", "show", "--json", hex, NULL);
    cr_assert_eq(rc, 0, "run show --json: %s", errs);
    phase("run show --json", &t0);
    json_t *j = parse(out, "run show --json");
    assert_all_keys(json_object_get(j, "metrics"), "run show --json");
    json_decref(j);
    free(out);
    free(errs);

    const char *lists[][3] = {{"run", "list", "--json"}, {"runs", "--json", NULL}};
    for (int l = 0; l < 2; l++) {
        rc = fx_track(&d, NULL, NULL, &out, &errs, lists[l][0], lists[l][1], lists[l][2], NULL);
        cr_assert_eq(rc, 0, "%s %s: %s", lists[l][0], lists[l][1], errs);
        phase(lists[l][0], &t0);
        j = parse(out, lists[l][0]);
        cr_assert_eq(json_array_size(j), 2, "%s: %zu runs", lists[l][0], json_array_size(j));
        json_t *r = NULL;
        for (size_t i = 0; i < 2; i++)
            if (strcmp(json_string_value(json_object_get(json_array_get(j, i), "run_id")), hex) ==
                0)
                r = json_array_get(j, i);
        cr_assert_not_null(r, "%s: the big run is missing", lists[l][0]);
        assert_all_keys(json_object_get(r, "metrics"), lists[l][0]);
        json_decref(j);
        free(out);
        free(errs);
    }

    /* compare shows a bounded number of metrics and says so */
    rc = fx_track(&d, NULL, NULL, &out, &errs, "compare", "--format", "json", hex, hex2, NULL);
    cr_assert_eq(rc, 0, "compare: %s", errs);
    phase("compare", &t0);
    j = parse(out, "compare");
    cr_assert_eq(json_array_size(json_object_get(j, "runs")), 2);
    cr_assert(strstr(errs, "256") != NULL, "compare does not say it capped: %s", errs);
    json_decref(j);
    free(out);
    free(errs);

    const char *exports[][4] = {{hex, hex2, NULL, NULL}, {"--experiment", "Default", NULL, NULL}};
    for (int e = 0; e < 2; e++) {
        rc = fx_track(&d, NULL, NULL, &out, &errs, "export", "--format", "jsonl", exports[e][0],
                      exports[e][1], NULL);
        cr_assert_eq(rc, 0, "export %s: %s", exports[e][0], errs);
        phase("export", &t0);
        char *nl = strchr(out, '\n');
        cr_assert_not_null(nl);
        char *second = strdup(nl + 1);
        *nl = '\0';
        j = parse(out, "export");
        json_t *j2 = parse(second, "export, second line");
        json_t *r = strcmp(json_string_value(json_object_get(j, "run_id")), hex) == 0 ? j : j2;
        assert_all_keys(json_object_get(r, "metrics"), "export");
        json_decref(j);
        json_decref(j2);
        free(second);
        free(out);
        free(errs);
    }

    long hwm = status_kb(d.pid, "VmHWM:"), rss = status_kb(d.pid, "VmRSS:");
    fprintf(stderr,
            "paging: trackd VmHWM %ld kB after the writes, %ld kB after the reads (VmRSS %ld kB)\n",
            hwm_writes, hwm, rss);
    cr_assert_lt(hwm, RSS_BOUND_KB, "trackd peaked at %ld kB", hwm);
    cr_assert_lt(hwm - hwm_writes, RSS_READS_GROW_KB,
                 "the reads took trackd's peak from %ld to %ld kB", hwm_writes, hwm);
    passed = 1;
}

/* ---- item 21 against trackd: values at the limit, batches past a frame ------------ */

#define N_BIG 300

Test(paging, params_and_tags_of_20_mb_are_split_and_read_back_whole)
{
    struct track_client *c = client(d.uri);
    struct track_err err = {0};
    track_run_id id;
    char hex[33];
    static struct track_kv kv[N_BIG];
    static char keys[N_BIG][16], *vals[N_BIG];

    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
    /* 300 values of exactly 64 KiB, each its own: 19.7 MB, past a frame */
    for (int i = 0; i < N_BIG; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%03d", i);
        vals[i] = malloc(65537);
        memset(vals[i], 'a' + i % 26, 65536);
        vals[i][0] = (char)('A' + i % 26);
        vals[i][65536] = '\0';
        kv[i] = (struct track_kv){keys[i], vals[i]};
    }
    cr_assert_eq(track_log_params(c, kv, N_BIG, &err), 0, "log params: %s", err.msg);
    cr_assert_eq(err.code, 0, "%s", err.msg);
    cr_assert_eq(track_set_tags(c, kv, N_BIG, &err), 0, "set tags: %s", err.msg);

    struct track_result *res = NULL;
    struct track_run_info info;
    cr_assert_eq(track_run_get(c, hex, &res, &info, &err), 0, "run get: %s", err.msg);
    cr_assert_eq(info.n_params, N_BIG, "%zu params", info.n_params);
    cr_assert_eq(info.n_tags, N_BIG, "%zu tags", info.n_tags);
    for (int i = 0; i < N_BIG; i++) {
        cr_assert_str_eq(info.params[i].key, keys[i]);
        cr_assert_eq(memcmp(info.params[i].value, vals[i], 65537), 0, "param %d differs", i);
        cr_assert_str_eq(info.tags[i].key, keys[i]);
        cr_assert_eq(memcmp(info.tags[i].value, vals[i], 65537), 0, "tag %d differs", i);
    }
    track_result_free(res);

    /* a run start cannot be split: refused at once, naming size and limit */
    struct track_run_opts ro = {.params = kv, .n_params = N_BIG};
    long long t0 = fx_now_ms();
    cr_assert_eq(track_run_start(c, &ro, &id, &err), TRACK_E_INVALID_ARGUMENT, "%s", err.msg);
    cr_assert_lt(fx_now_ms() - t0, 5000);
    cr_assert(strstr(err.msg, "request of ") && strstr(err.msg, "exceeds"), "%s", err.msg);
    track_client_close(c);
    for (int i = 0; i < N_BIG; i++)
        free(vals[i]);
    passed = 1;
}

/* ---- experiments: the other list that grows with the data ------------------------ */

#define N_EXPS 72000

Test(paging, experiment_list_of_18_mb_is_read_whole)
{
    char db[400];

    /* 72,000 experiments with 239-byte names: 250 bytes each packed, 18 MB,
     * past the frame limit;
     * written straight into the database while trackd is stopped */
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(db, sizeof(db), "%s/track.db", d.dir);
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, "INSERT INTO experiments(name, created_ms) VALUES(?1, 1)",
                                    -1, &st, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    for (int i = 0; i < N_EXPS; i++) {
        char name[256];
        snprintf(name, sizeof(name), "e-%0230d-%06d", 0, i);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(h));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    cr_assert_eq(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not start again");

    struct track_client *c = client(d.uri);
    struct track_err err = {0};
    struct track_result *res = NULL;
    const struct track_experiment_info *e = NULL;
    size_t n = 0;
    cr_assert_eq(track_experiment_list(c, &res, &e, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, N_EXPS, "%zu experiments", n);
    for (size_t i = 0; i < n; i++) {
        char name[256];
        snprintf(name, sizeof(name), "e-%0230d-%06zu", 0, i);
        cr_assert_str_eq(e[i].name, name, "experiment %zu", i);
    }
    track_result_free(res);
    track_client_close(c);

    char *out = NULL, *errs = NULL;
    int rc = fx_track(&d, NULL, NULL, &out, &errs, "experiment", "list", "--json", NULL);
    cr_assert_eq(rc, 0, "experiment list: %s", errs);
    json_t *j = parse(out, "experiment list --json");
    cr_assert_eq(json_array_size(j), N_EXPS);
    json_decref(j);
    free(out);
    free(errs);
    passed = 1;
}

/* ---- the scale issue: a long listing's pages each read their own runs ----------- */

#define N_PAGED_RUNS 3000

/* The run ids of `runs --json [--limit N]`, in order, into ids (33 bytes each). */
static size_t listed_ids(const char *limit, char (*ids)[33])
{
    char *out = NULL, *errs = NULL;
    int rc = limit ? fx_track(&d, NULL, NULL, &out, &errs, "runs", "--json", "--limit", limit, NULL)
                   : fx_track(&d, NULL, NULL, &out, &errs, "runs", "--json", NULL);
    cr_assert_eq(rc, 0, "runs --json: %s", errs);
    json_t *j = parse(out, "runs --json");
    size_t n = json_array_size(j);
    for (size_t i = 0; i < n && i < N_PAGED_RUNS; i++) {
        json_t *r = json_array_get(j, i);
        snprintf(ids[i], 33, "%s", json_string_value(json_object_get(r, "run_id")));
        cr_assert_eq(json_object_size(json_object_get(r, "params")), 4, "run %zu's params", i);
    }
    json_decref(j);
    free(out);
    free(errs);
    return n;
}

Test(paging, a_listing_of_12_mb_in_the_default_order_is_whole_once_and_in_order)
{
    char db[400];
    static char a[N_PAGED_RUNS][33], b[N_PAGED_RUNS][33];

    /* 3,000 runs with 4 params of 1,000 bytes (12 MB of details: pages of
     * 4 MiB end between runs and inside one), start times tied in threes,
     * written straight into the database while trackd is stopped */
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(db, sizeof(db), "%s/track.db", d.dir);
    sqlite3 *h = NULL;
    sqlite3_stmt *run = NULL, *par = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(
        sqlite3_exec(h,
                     "BEGIN; DELETE FROM params; DELETE FROM metric_summary;"
                     " DELETE FROM metric_chunks; DELETE FROM tags; DELETE FROM runs;"
                     " INSERT OR IGNORE INTO experiments(name, created_ms) VALUES('p', 1);",
                     NULL, NULL, NULL),
        SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_prepare_v2(h,
                                    "INSERT INTO runs(uuid, hex, experiment_id, name, status,"
                                    " start_ms) VALUES(?1, lower(hex(?1)), (SELECT id FROM"
                                    " experiments WHERE name = 'p'), 'r', 1, ?2)",
                                    -1, &run, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_prepare_v2(h, "INSERT INTO params(run, key, value) VALUES(?1, ?2, ?3)", -1,
                                    &par, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    char value[1001];
    memset(value, 'v', 1000);
    value[1000] = '\0';
    for (int i = 0; i < N_PAGED_RUNS; i++) {
        uint8_t id[16];
        for (int k = 0; k < 16; k++)
            id[k] = (uint8_t)((i * 7919 + k * 31) >> (k % 3));
        id[0] = (uint8_t)(i >> 8);
        id[1] = (uint8_t)i;
        sqlite3_bind_blob(run, 1, id, 16, SQLITE_TRANSIENT);
        sqlite3_bind_int64(run, 2, 1000000 + i / 3);
        cr_assert_eq(sqlite3_step(run), SQLITE_DONE, "%s", sqlite3_errmsg(h));
        sqlite3_reset(run);
        int64_t row = sqlite3_last_insert_rowid(h);
        for (int k = 0; k < 4; k++) {
            char key[8];
            snprintf(key, sizeof(key), "k%d", k);
            sqlite3_bind_int64(par, 1, row);
            sqlite3_bind_text(par, 2, key, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(par, 3, value, -1, SQLITE_STATIC);
            cr_assert_eq(sqlite3_step(par), SQLITE_DONE, "%s", sqlite3_errmsg(h));
            sqlite3_reset(par);
        }
    }
    sqlite3_finalize(run);
    sqlite3_finalize(par);
    cr_assert_eq(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not start again");

    /* newest first: start time descending, then the newest-created */
    cr_assert_eq(listed_ids(NULL, a), N_PAGED_RUNS);
    for (int i = 0; i < N_PAGED_RUNS; i++) {
        int want = N_PAGED_RUNS - 1 - i; /* the rows were created oldest first */
        char hex[33];
        snprintf(hex, sizeof(hex), "%02x%02x", (unsigned)(want >> 8) & 0xff, (unsigned)want & 0xff);
        cr_assert(strncmp(a[i], hex, 4) == 0, "position %d: %s, wanted run %d", i, a[i], want);
    }
    /* a limit past the first page: exactly that many, the same first ones */
    cr_assert_eq(listed_ids("2500", b), 2500);
    for (int i = 0; i < 2500; i++)
        cr_assert_str_eq(a[i], b[i], "position %d", i);
    passed = 1;
}

/* ---- item 27: a summary counting more points than are stored ----------------- */

Test(paging, history_past_the_stored_points_ends_with_a_message)
{
    struct track_client *c = client(d.uri);
    struct track_err err = {0};
    track_run_id id;
    char hex[33], db[400];

    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(track_log_metric(c, "loss", 1.0 / (i + 1), i, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    track_client_close(c);

    /* damage the database while trackd is stopped: 10 points more in the
     * summary than its chunks hold */
    cr_assert_eq(fx_daemon_stop(&d), 0);
    snprintf(db, sizeof(db), "%s/track.db", d.dir);
    sqlite3 *h = NULL;
    cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h, "UPDATE metric_summary SET count = count + 10", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_changes(h), 1);
    sqlite3_close(h);
    const char *force[] = {"--force", NULL};
    cr_assert_eq(fx_daemon_restart(&d, force), 0, "trackd did not start again");

    const char *cmds[][6] = {{"metric", "history", hex, "loss", NULL, NULL},
                             {"export", "--history", "--format", "jsonl", hex, NULL}};
    for (int k = 0; k < 2; k++) {
        const char *argv[16] = {"/usr/bin/timeout", "20", TRACK_BIN, "--server", d.uri};
        int n = 5;
        for (int j = 0; cmds[k][j]; j++)
            argv[n++] = cmds[k][j];
        argv[n] = NULL;
        const char *env[] = {"TRACK_NO_AUTOSTART=1", NULL};
        char *out = NULL, *errs = NULL;
        long long t0 = fx_now_ms();
        int rc = fx_run(argv, env, NULL, &out, &errs);
        cr_assert_neq(rc, 124, "%s %s still running after 20 s", cmds[k][0], cmds[k][1]);
        cr_assert_eq(rc, 1, "%s: exit %d, stderr: %s", cmds[k][0], rc, errs);
        cr_assert_lt(fx_now_ms() - t0, 20000);
        cr_assert(strstr(errs, "inconsistent") && strstr(errs, hex) && strstr(errs, "\"loss\""),
                  "%s: the message does not name the inconsistency, run and key: %s", cmds[k][0],
                  errs);
        if (k == 0) /* the points that exist were shown before the error */
            cr_assert(strstr(out, "0.1000") || strstr(out, "0.1"), "no points shown: %s", out);
        free(out);
        free(errs);
    }
    passed = 1;
}

/* ---- a fake server: the client's side of items 21 and 30 ------------------------ */

static pid_t fake_pid = -1;
static int fake_rd = -1;
static char fake_dir[64], fake_uri[128];

#define FAKE_FRAME (1u << 20) /* the limit the fake announces in Hello */

/* Answers every request with a canned reply and reports "op bytes count"
 * lines on wfd. Runs in the child; never returns. */
static void fake_serve(int wfd)
{
    int s = nn_socket(AF_SP, NN_REP), unlimited = -1;
    if (s < 0 || nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &unlimited, sizeof(int)) < 0 ||
        nn_bind(s, fake_uri) < 0)
        _exit(2);
    for (;;) {
        void *msg = NULL;
        int n = nn_recv(s, &msg, NN_MSG, 0);
        if (n < 0)
            continue;
        Track__V1__Request *rq = track__v1__request__unpack(NULL, (size_t)n, msg);
        nn_freemsg(msg);
        if (!rq)
            _exit(3);
        Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
        Track__V1__HelloResult hello = TRACK__V1__HELLO_RESULT__INIT;
        Track__V1__LogBatchResult lbr = TRACK__V1__LOG_BATCH_RESULT__INIT;
        Track__V1__Run run = TRACK__V1__RUN__INIT;
        Track__V1__RunGetResult rg = TRACK__V1__RUN_GET_RESULT__INIT;
        Track__V1__MetricHistoryResult mh = TRACK__V1__METRIC_HISTORY_RESULT__INIT;
        Track__V1__MetricSeries ser = TRACK__V1__METRIC_SERIES__INIT;
        static int64_t steps[3] = {1, 2, 3}, times[3] = {10, 20, 30};
        static double vals[3] = {0.1, 0.2, 0.3};
        static uint8_t rid3[3] = {1, 2, 3};
        size_t count = 0;
        rs.request_id = rq->request_id;
        switch (rq->op_case) {
        case TRACK__V1__REQUEST__OP_HELLO:
            hello.max_frame_bytes = FAKE_FRAME;
            hello.server_version = (char *)"fake";
            rs.result_case = TRACK__V1__RESPONSE__RESULT_HELLO;
            rs.hello = &hello;
            break;
        case TRACK__V1__REQUEST__OP_LOG_BATCH:
            count = rq->log_batch->n_params + rq->log_batch->n_tags;
            for (size_t i = 0; i < rq->log_batch->n_metrics; i++)
                count += rq->log_batch->metrics[i]->n_values;
            rs.result_case = TRACK__V1__RESPONSE__RESULT_LOG_BATCH;
            rs.log_batch = &lbr;
            break;
        case TRACK__V1__REQUEST__OP_RUN_START:
            count = rq->run_start->n_params;
            run.run_id = rq->run_start->run_id;
            rs.result_case = TRACK__V1__RESPONSE__RESULT_RUN;
            rs.run = &run;
            break;
        case TRACK__V1__REQUEST__OP_RUN_GET:
            /* a run id of 3 bytes */
            run.run_id.data = rid3;
            run.run_id.len = 3;
            rg.run = &run;
            rs.result_case = TRACK__V1__RESPONSE__RESULT_RUN_GET;
            rs.run_get = &rg;
            break;
        case TRACK__V1__REQUEST__OP_METRIC_HISTORY:
            ser.key = rq->metric_history->key;
            if (strcmp(rq->metric_history->key, "empty") == 0) {
                mh.more = 1; /* no points, yet more to come: forever */
                mh.next_seq = rq->metric_history->after_seq;
            } else {
                /* three values, two steps, three times */
                ser.steps = steps;
                ser.n_steps = 2;
                ser.times_ms = times;
                ser.n_times_ms = 3;
                ser.values = vals;
                ser.n_values = 3;
                mh.next_seq = 3;
            }
            mh.series = &ser;
            rs.result_case = TRACK__V1__RESPONSE__RESULT_METRIC_HISTORY;
            rs.metric_history = &mh;
            break;
        default:
            break;
        }
        char line[96];
        int ll = snprintf(line, sizeof(line), "%d %d %zu\n", (int)rq->op_case, n, count);
        if (write(wfd, line, (size_t)ll) != ll)
            _exit(4);
        size_t len = track__v1__response__get_packed_size(&rs);
        uint8_t *buf = malloc(len ? len : 1);
        track__v1__response__pack(&rs, buf);
        nn_send(s, buf, len, 0);
        free(buf);
        track__v1__request__free_unpacked(rq, NULL);
    }
}

/* In the exec'd child, before Criterion's main: serve and never return. */
__attribute__((constructor)) static void fake_main(void)
{
    const char *uri = getenv("TRACK_TEST_FAKE_URI"), *fd = getenv("TRACK_TEST_FAKE_FD");
    if (!uri || !fd)
        return;
    snprintf(fake_uri, sizeof(fake_uri), "%s", uri);
    fake_serve((int)strtol(fd, NULL, 10));
}

static void fake_setup(void)
{
    int p[2];
    passed = 0;
    snprintf(fake_dir, sizeof(fake_dir), "/tmp/track-fake-XXXXXX");
    cr_assert_not_null(mkdtemp(fake_dir));
    snprintf(fake_uri, sizeof(fake_uri), "ipc://%s/fake.sock", fake_dir);
    cr_assert_eq(pipe(p), 0);
    /* Criterion's runner speaks nanomsg itself, so a forked child could not
     * use it: the child execs this binary again, whose constructor serves */
    fake_pid = fork();
    cr_assert_geq(fake_pid, 0);
    if (fake_pid == 0) {
        char fd[16];
        close(p[0]);
        /* gone with the test, whatever way it ends; never holding its pipes */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        snprintf(fd, sizeof(fd), "%d", p[1]);
        setenv("TRACK_TEST_FAKE_URI", fake_uri, 1);
        setenv("TRACK_TEST_FAKE_FD", fd, 1);
        execl("/proc/self/exe", "fake-trackd", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    fake_rd = p[0];
    char path[160];
    snprintf(path, sizeof(path), "%s/fake.sock", fake_dir);
    long long until = fx_now_ms() + 5000;
    while (access(path, F_OK) != 0 && fx_now_ms() < until)
        usleep(5000);
    cr_assert_eq(access(path, F_OK), 0, "the fake server did not bind %s", fake_uri);
}

static void fake_teardown(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGKILL);
        waitpid(fake_pid, NULL, 0);
    }
    if (fake_rd >= 0)
        close(fake_rd);
    fx_rmtree(fake_dir);
}

/* What the fake saw, after it is stopped: per request op, bytes, count. */
struct seen {
    int op[256];
    long bytes[256];
    long count[256];
    int n;
};

static void fake_seen(struct seen *s)
{
    static char buf[65536];
    size_t got = 0;
    ssize_t r;
    kill(fake_pid, SIGKILL);
    waitpid(fake_pid, NULL, 0);
    fake_pid = -1;
    while (got < sizeof(buf) - 1 && (r = read(fake_rd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    memset(s, 0, sizeof(*s));
    for (char *line = buf; *line && s->n < 256;) {
        char *end;
        s->op[s->n] = (int)strtol(line, &end, 10);
        s->bytes[s->n] = strtol(end, &end, 10);
        s->count[s->n] = strtol(end, &end, 10);
        s->n++;
        line = strchr(end, '\n');
        if (!line)
            break;
        line++;
    }
}

TestSuite(fake, .init = fake_setup, .fini = fake_teardown, .timeout = 60);

Test(fake, big_batches_are_split_below_the_limit_hello_gave)
{
    struct track_opts o = {.server = fake_uri,
                           .timeout_ms = 5000,
                           .no_spool = 1,
                           .flush_points = 262144,
                           .flush_interval_ms = 600000};
    struct track_client *c = NULL;
    struct track_err err = {0};
    track_run_id id;
    static char big[65538];
    static struct track_kv kv[30];
    static char keys[30][16];

    cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_start(c, NULL, &id, &err), 0, "run start: %s", err.msg);
    memset(big, 'v', 65536);
    for (int i = 0; i < 30; i++) {
        snprintf(keys[i], sizeof(keys[i]), "p%02d", i);
        kv[i] = (struct track_kv){keys[i], big};
    }
    /* 30 values of 64 KiB: 2 MB, twice the fake's limit */
    cr_assert_eq(track_log_params(c, kv, 30, &err), 0, "log params: %s", err.msg);
    /* a value of one byte over the limit is refused, naming it */
    big[65536] = 'v';
    cr_assert_eq(track_log_param(c, "over", big, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "65536"), "%s", err.msg);
    big[65536] = '\0';
    /* 64 keys x 2000 points: about 2 MB in one flush */
    for (int k = 0; k < 64; k++) {
        char key[16];
        snprintf(key, sizeof(key), "m%02d", k);
        for (int i = 0; i < 2000; i++)
            cr_assert_eq(track_log_metric(c, key, i * 0.5, i, 1700000000000 + i, &err), 0, "%s",
                         err.msg);
    }
    cr_assert_eq(track_flush(c, &err), 0, "flush: %s", err.msg);
    /* a run start cannot be split: refused before it is sent */
    struct track_run_opts ro = {.params = kv, .n_params = 20};
    long long t0 = fx_now_ms();
    cr_assert_eq(track_run_start(c, &ro, &id, &err), TRACK_E_INVALID_ARGUMENT, "run start: %d %s",
                 err.code, err.msg);
    cr_assert_lt(fx_now_ms() - t0, 2500, "the refusal waited for a timeout");
    cr_assert(strstr(err.msg, "exceeds the server's frame limit of 1048512 bytes") &&
                  strstr(err.msg, "request of "),
              "%s", err.msg);
    track_client_close(c);

    struct seen s;
    fake_seen(&s);
    long params = 0, points = 0;
    int hellos = 0, starts = 0, batches = 0;
    for (int i = 0; i < s.n; i++) {
        if (s.op[i] == TRACK__V1__REQUEST__OP_HELLO)
            hellos++;
        if (s.op[i] == TRACK__V1__REQUEST__OP_RUN_START)
            starts++;
        if (s.op[i] != TRACK__V1__REQUEST__OP_LOG_BATCH)
            continue;
        batches++;
        cr_assert_lt(s.bytes[i], (long)FAKE_FRAME, "a batch of %ld bytes was sent", s.bytes[i]);
        if (params < 30)
            params += s.count[i];
        else
            points += s.count[i];
    }
    cr_assert_geq(hellos, 1, "the client never asked the server's limit");
    cr_assert_eq(starts, 1, "the oversized run start reached the server");
    cr_assert_eq(params, 30, "%ld params arrived", params);
    cr_assert_eq(points, 64 * 2000, "%ld points arrived", points);
    cr_assert_geq(batches, 2 + 2, "%d batches: nothing was split", batches);
    passed = 1;
}

Test(fake, replies_whose_columns_disagree_are_refused)
{
    struct track_opts o = {.server = fake_uri, .timeout_ms = 5000, .no_spool = 1};
    struct track_client *c = NULL;
    struct track_err err = {0};
    struct track_result *res = NULL;
    const int64_t *steps, *times;
    const double *vals;
    size_t n = 0;
    int64_t next = 0;
    int more = 0;

    cr_assert_eq(track_client_open(&o, &c, &err), 0, "%s", err.msg);
    /* three values, two steps: the client would read past the steps */
    cr_assert_eq(track_metric_history(c, "abcd", "loss", 0, 0, &res, &steps, &times, &vals, &n,
                                      &next, &more, &err),
                 TRACK_E_INTERNAL, "history: %d", err.code);
    cr_assert_null(res);
    cr_assert(strstr(err.msg, "malformed reply from server: field metric_history.series.steps"),
              "%s", err.msg);
    /* an empty page that promises more: stop, naming run and key */
    cr_assert_eq(track_metric_history(c, "abcd", "empty", 0, 0, &res, &steps, &times, &vals, &n,
                                      &next, &more, &err),
                 TRACK_E_INTERNAL);
    cr_assert(strstr(err.msg, "inconsistent") && strstr(err.msg, "\"empty\"") &&
                  strstr(err.msg, "abcd"),
              "%s", err.msg);
    /* a run id of 3 bytes */
    struct track_run_info info;
    cr_assert_eq(track_run_get(c, "abcd", &res, &info, &err), TRACK_E_INTERNAL);
    cr_assert(strstr(err.msg, "malformed reply from server: field run_get.run.run_id"), "%s",
              err.msg);
    track_client_close(c);
    passed = 1;
}
