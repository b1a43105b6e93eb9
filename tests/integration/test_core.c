/*
 * test_core.c: the core of track end to end through libtrack (track.h)
 * against a real trackd on a temporary data directory: experiments, runs,
 * params (immutable), tags (mutable), buffered metrics read back through
 * paged history and summaries, NaN/±Inf faithfully stored, run end, run
 * lists, the spool while the daemon is away, durability across a SIGTERM
 * drain, a SIGKILL and restarts on the same directory (also in the middle of
 * a stream of batches), history cursors across background compaction, and
 * clients in several threads.
 *
 * Each test starts its own trackd (fork+exec, before this process opens a
 * nanomsg socket) and prints the daemon's log when it fails.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon d;
static struct track_client *c;
static int passed; /* set by the last line of a test: fini shows the log otherwise */

#define PASS() (passed = 1)

static struct track_client *open_client_timeout(int timeout_ms)
{
    struct track_opts o = {0};
    struct track_client *cl = NULL;
    struct track_err err = {0};
    o.server = d.uri;
    o.spool_path = d.spool;
    o.timeout_ms = timeout_ms;
    cr_assert_eq(track_client_open(&o, &cl, &err), 0, "open: %s", err.msg);
    return cl;
}

static struct track_client *open_client(void)
{
    return open_client_timeout(5000);
}

static void setup(void)
{
    passed = 0;
    c = NULL;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
    c = open_client();
}

static void teardown(void)
{
    track_client_close(c);
    c = NULL;
    fx_daemon_cleanup(&d, !passed);
}

TestSuite(core, .init = setup, .fini = teardown, .timeout = 120);

#define OK(call)                                                                                   \
    do {                                                                                           \
        struct track_err e_ = {0};                                                                 \
        int rc_ = (call);                                                                          \
        (void)e_;                                                                                  \
        cr_assert_eq(rc_, 0, "%s -> %s", #call, track_code_name(rc_));                             \
    } while (0)

static void start_run(const char *experiment, const char *name, track_run_id *id, char hex[33])
{
    struct track_run_opts ro = {0};
    struct track_err err = {0};
    ro.experiment = experiment;
    ro.name = name;
    cr_assert_eq(track_run_start(c, &ro, id, &err), 0, "run start: %s: %s",
                 track_code_name(err.code), err.msg);
    cr_assert_neq(err.code, TRACK_E_SPOOLED, "run start went to the spool: %s", err.msg);
    track_run_id_hex(id, hex);
}

static const char *kv_get(const struct track_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

static const struct track_metric_summary *summary_of(const struct track_run_info *r,
                                                     const char *key)
{
    for (size_t i = 0; i < r->n_metrics; i++)
        if (strcmp(r->metrics[i].key, key) == 0)
            return &r->metrics[i];
    return NULL;
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof(a)) == 0;
}

/* ---- runs, params, tags ---------------------------------------------------- */

Test(core, run_start_records_experiment_name_params_tags_and_user)
{
    struct track_kv params[] = {{"lr", "0.01"}, {"optimizer", "adam"}};
    struct track_kv tags[] = {{"stage", "dev"}, {"note", "first try"}};
    struct track_run_opts ro = {0};
    struct track_err err = {0};
    struct track_result *res;
    struct track_run_info r;
    track_run_id id, cur;
    char hex[33], hex2[33];

    ro.experiment = "vision";
    ro.name = "baseline";
    ro.params = params;
    ro.n_params = 2;
    ro.tags = tags;
    ro.n_tags = 2;
    cr_assert_eq(track_run_start(c, &ro, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
    cr_assert_eq(strlen(hex), 32);
    cr_assert_eq(strspn(hex, "0123456789abcdef"), 32, "run id %s is not lowercase hex", hex);
    cr_assert_eq(track_run_current(c, &cur), 0);
    cr_assert_eq(memcmp(cur.b, id.b, 16), 0, "the new run is not the current one");

    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(r.id.b, id.b, 16), 0);
    cr_assert_str_eq(r.name, "baseline");
    cr_assert_str_eq(r.experiment, "vision");
    cr_assert_eq(r.status, TRACK_RUNNING);
    cr_assert_gt(r.start_ms, 1500000000000LL);
    cr_assert_eq(r.end_ms, 0);
    cr_assert_not(r.has_parent);
    cr_assert_eq(r.n_params, 2);
    cr_assert_str_eq(kv_get(r.params, r.n_params, "lr"), "0.01");
    cr_assert_str_eq(kv_get(r.params, r.n_params, "optimizer"), "adam");
    cr_assert_str_eq(kv_get(r.tags, r.n_tags, "stage"), "dev");
    cr_assert_str_eq(kv_get(r.tags, r.n_tags, "note"), "first try");
    if (getenv("USER") && *getenv("USER"))
        cr_assert_str_eq(r.user, getenv("USER"));
    cr_assert_eq(r.n_metrics, 0);
    track_result_free(res);

    /* a child run names its parent by a prefix; a generated name when none */
    struct track_run_opts child = {0};
    char prefix[9];
    memcpy(prefix, hex, 8);
    prefix[8] = '\0';
    child.experiment = "vision";
    child.parent = prefix;
    track_run_id cid;
    cr_assert_eq(track_run_start(c, &child, &cid, &err), 0, "%s", err.msg);
    track_run_id_hex(&cid, hex2);
    cr_assert_eq(track_run_get(c, hex2, &res, &r, &err), 0, "%s", err.msg);
    cr_assert(r.has_parent, "child run lost its parent");
    cr_assert_eq(memcmp(r.parent.b, id.b, 16), 0);
    cr_assert(r.name && strlen(r.name) > 3, "no generated name");
    cr_assert(strchr(r.name, '-'), "generated name \"%s\" is not adjective-noun-NN", r.name);
    track_result_free(res);
    PASS();
}

Test(core, run_without_experiment_lands_in_default)
{
    track_run_id id;
    char hex[33];
    struct track_result *res;
    struct track_run_info r;
    struct track_err err = {0};
    const struct track_experiment_info *e;
    size_t n;

    start_run(NULL, NULL, &id, hex);
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.experiment, "Default");
    track_result_free(res);

    cr_assert_eq(track_experiment_list(c, &res, &e, &n, &err), 0, "%s", err.msg);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].name, "Default") == 0) {
            found++;
            cr_assert_eq(e[i].run_count, 1);
        }
    cr_assert_eq(found, 1, "Default listed %d times", found);
    track_result_free(res);
    PASS();
}

Test(core, param_same_value_again_is_accepted_a_different_one_is_a_conflict_naming_both)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    struct track_result *res;
    struct track_run_info r;

    start_run("params", NULL, &id, hex);
    cr_assert_eq(track_log_param(c, "lr", "0.1", &err), 0, "%s", err.msg);
    cr_assert_eq(track_log_param(c, "lr", "0.1", &err), 0, "same value again: %s", err.msg);
    int rc = track_log_param(c, "lr", "0.2", &err);
    cr_assert_eq(rc, TRACK_E_CONFLICT, "different value: got %s", track_code_name(rc));
    cr_assert_eq(err.code, TRACK_E_CONFLICT);
    cr_assert_not_null(strstr(err.msg, "0.1"), "message \"%s\" lacks the old value", err.msg);
    cr_assert_not_null(strstr(err.msg, "0.2"), "message \"%s\" lacks the new value", err.msg);
    cr_assert_not_null(strstr(err.msg, "lr"), "message \"%s\" lacks the key", err.msg);

    /* several at once: applied atomically, a conflict keeps none of them */
    struct track_kv batch[] = {{"epochs", "10"}, {"lr", "0.3"}};
    rc = track_log_params(c, batch, 2, &err);
    cr_assert_eq(rc, TRACK_E_CONFLICT);
    struct track_kv ok[] = {{"epochs", "10"}, {"batch", "64"}};
    cr_assert_eq(track_log_params(c, ok, 2, &err), 0, "%s", err.msg);

    /* bad keys never leave the client */
    cr_assert_eq(track_log_param(c, "bad key!", "1", &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.msg, "param key"), "%s", err.msg);

    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.n_params, 3);
    cr_assert_str_eq(kv_get(r.params, r.n_params, "lr"), "0.1");
    cr_assert_str_eq(kv_get(r.params, r.n_params, "epochs"), "10");
    cr_assert_str_eq(kv_get(r.params, r.n_params, "batch"), "64");
    track_result_free(res);
    PASS();
}

Test(core, tags_are_overwritten)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    struct track_result *res;
    struct track_run_info r;

    start_run("tags", NULL, &id, hex);
    cr_assert_eq(track_set_tag(c, "stage", "dev", &err), 0, "%s", err.msg);
    cr_assert_eq(track_set_tag(c, "stage", "prod", &err), 0, "%s", err.msg);
    cr_assert_eq(track_set_tag(c, "empty", "", &err), 0, "%s", err.msg);
    struct track_kv kv[] = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
    cr_assert_eq(track_set_tags(c, kv, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.n_tags, 4);
    cr_assert_str_eq(kv_get(r.tags, r.n_tags, "stage"), "prod");
    cr_assert_str_eq(kv_get(r.tags, r.n_tags, "empty"), "");
    cr_assert_str_eq(kv_get(r.tags, r.n_tags, "a"), "3", "the later of two in one call wins");
    cr_assert_str_eq(kv_get(r.tags, r.n_tags, "b"), "2");
    track_result_free(res);
    PASS();
}

/* ---- metrics --------------------------------------------------------------- */

#define N_POINTS 100000

static double value_of(int key, int64_t step)
{
    return (key + 1) * 1000.0 - (double)step * 0.001 + (step % 7) * 0.25;
}

Test(core, hundred_thousand_buffered_points_come_back_in_order_exactly_once)
{
    static const char *const keys[3] = {"train/loss", "train/acc", "lr"};
    int64_t count[3] = {0}, last_step[3] = {-1, -1, -1};
    double vmin[3], vmax[3], last[3];
    track_run_id id;
    char hex[33];
    struct track_err err = {0};

    start_run("bulk", "bulk", &id, hex);
    long long t0 = fx_now_ms();
    for (int i = 0; i < N_POINTS; i++) {
        int k = i % 3;
        int64_t step = i / 3;
        double v = value_of(k, step);
        int rc = track_log_metric(c, keys[k], v, step, 1700000000000LL + i, &err);
        cr_assert_eq(rc, 0, "point %d: %.400s", i, err.msg);
        cr_assert_neq(err.code, TRACK_E_SPOOLED, "point %d spooled: %s", i, err.msg);
        if (count[k] == 0 || v < vmin[k])
            vmin[k] = v;
        if (count[k] == 0 || v > vmax[k])
            vmax[k] = v;
        last[k] = v;
        last_step[k] = step;
        count[k]++;
    }
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    cr_assert_neq(err.code, TRACK_E_SPOOLED, "flush spooled: %s", err.msg);
    cr_log_info("logged %d points in %lld ms", N_POINTS, fx_now_ms() - t0);

    /* history in pages whose size is no multiple of anything */
    for (int k = 0; k < 3; k++) {
        int64_t cursor = 0, seen = 0;
        int more = 1, pages = 0;
        while (more) {
            struct track_result *res;
            const int64_t *steps, *times;
            const double *vals;
            size_t n;
            int64_t next;
            cr_assert_eq(track_metric_history(c, hex, keys[k], cursor, 7001, &res, &steps, &times,
                                              &vals, &n, &next, &more, &err),
                         0, "%s page %d: %s", keys[k], pages, err.msg);
            cr_assert_leq(n, 7001);
            cr_assert_eq(next, cursor + (int64_t)n, "cursor does not advance by the page");
            cr_assert(n > 0 || !more, "an empty page that says there is more");
            for (size_t i = 0; i < n; i++) {
                int64_t step = seen + (int64_t)i;
                int64_t point = step * 3 + k;
                cr_assert_eq(steps[i], step, "%s: point %lld has step %lld", keys[k],
                             (long long)step, (long long)steps[i]);
                cr_assert_eq(times[i], 1700000000000LL + point);
                cr_assert(same_bits(vals[i], value_of(k, step)), "%s step %lld: %.17g != %.17g",
                          keys[k], (long long)step, vals[i], value_of(k, step));
            }
            seen += (int64_t)n;
            cursor = next;
            track_result_free(res);
            pages++;
        }
        cr_assert_eq(seen, count[k], "%s: %lld points read, %lld logged", keys[k], (long long)seen,
                     (long long)count[k]);
        cr_assert_geq(pages, 4);

        /* past the end: nothing, and no more */
        struct track_result *res;
        const int64_t *steps, *times;
        const double *vals;
        size_t n;
        int64_t next;
        cr_assert_eq(track_metric_history(c, hex, keys[k], count[k], 10, &res, &steps, &times,
                                          &vals, &n, &next, &more, &err),
                     0, "%s", err.msg);
        cr_assert_eq(n, 0);
        cr_assert_not(more);
        track_result_free(res);
    }

    /* summaries */
    struct track_result *res;
    struct track_run_info r;
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.n_metrics, 3);
    for (int k = 0; k < 3; k++) {
        const struct track_metric_summary *s = summary_of(&r, keys[k]);
        cr_assert_not_null(s, "no summary for %s", keys[k]);
        cr_assert_eq(s->count, count[k], "%s count", keys[k]);
        cr_assert_eq(s->last_step, last_step[k], "%s last_step", keys[k]);
        cr_assert(same_bits(s->last, last[k]), "%s last %.17g != %.17g", keys[k], s->last, last[k]);
        cr_assert(same_bits(s->min, vmin[k]), "%s min %.17g != %.17g", keys[k], s->min, vmin[k]);
        cr_assert(same_bits(s->max, vmax[k]), "%s max %.17g != %.17g", keys[k], s->max, vmax[k]);
        int64_t last_point = last_step[k] * 3 + k;
        cr_assert_eq(s->last_ms, 1700000000000LL + last_point, "%s last_ms", keys[k]);
    }
    track_result_free(res);

    struct track_server_status st;
    cr_assert_eq(track_status(c, &res, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(st.metric_points, N_POINTS);
    cr_assert_eq(st.runs, 1);
    track_result_free(res);
    PASS();
}

Test(core, nan_and_infinities_round_trip_and_summaries_skip_nan)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    const double vals_in[] = {1.5,  NAN,  INFINITY, -INFINITY,
                              -0.5, -0.0, 5e-324,   1.7976931348623157e308};
    const size_t n_in = sizeof(vals_in) / sizeof(vals_in[0]);

    start_run("nan", NULL, &id, hex);
    for (size_t i = 0; i < n_in; i++)
        OK(track_log_metric(c, "weird", vals_in[i], (int64_t)i, 0, &e_));
    OK(track_log_metric(c, "allnan", NAN, 0, 0, &e_));
    OK(track_log_metric(c, "allnan", NAN, 1, 0, &e_));
    OK(track_log_metric(c, "endsnan", 2.0, 0, 0, &e_));
    OK(track_log_metric(c, "endsnan", NAN, 1, 0, &e_));
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);

    struct track_result *res;
    const int64_t *steps, *times;
    const double *vals;
    size_t n;
    int64_t next;
    int more;
    cr_assert_eq(track_metric_history(c, hex, "weird", 0, 0, &res, &steps, &times, &vals, &n, &next,
                                      &more, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, n_in);
    for (size_t i = 0; i < n; i++) {
        if (isnan(vals_in[i]))
            cr_assert(isnan(vals[i]), "point %zu: NaN came back as %g", i, vals[i]);
        else
            cr_assert(same_bits(vals[i], vals_in[i]), "point %zu: %.17g came back as %.17g", i,
                      vals_in[i], vals[i]);
        cr_assert_gt(times[i], 1500000000000LL, "time 0 should mean now");
    }
    track_result_free(res);

    struct track_run_info r;
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    const struct track_metric_summary *s = summary_of(&r, "weird");
    cr_assert_not_null(s);
    cr_assert_eq(s->count, (int64_t)n_in);
    cr_assert(same_bits(s->last, 1.7976931348623157e308));
    cr_assert(isinf(s->min) && s->min < 0, "min %g", s->min);
    cr_assert(isinf(s->max) && s->max > 0, "max %g", s->max);
    cr_assert_eq(s->last_step, (int64_t)n_in - 1);
    s = summary_of(&r, "allnan");
    cr_assert_not_null(s);
    cr_assert_eq(s->count, 2);
    cr_assert(isnan(s->last) && isnan(s->min) && isnan(s->max), "all-NaN summary %g %g %g", s->last,
              s->min, s->max);
    s = summary_of(&r, "endsnan");
    cr_assert_not_null(s);
    cr_assert(isnan(s->last), "last should be the NaN logged last, got %g", s->last);
    cr_assert_eq(s->min, 2.0);
    cr_assert_eq(s->max, 2.0);
    track_result_free(res);
    PASS();
}

Test(core, metric_input_errors_are_reported_without_spooling)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    struct track_result *res;
    const int64_t *steps, *times;
    const double *vals;
    size_t n;
    int64_t next;
    int more;

    /* no run yet */
    cr_assert_eq(track_log_metric(c, "loss", 1, 0, 0, &err), TRACK_E_INVALID_ARGUMENT);
    start_run("errors", NULL, &id, hex);
    cr_assert_eq(track_log_metric(c, "loss", 1, -1, 0, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(err.msg, "step"), "%s", err.msg);
    cr_assert_eq(track_log_metric(c, "", 1, 0, 0, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert_eq(track_log_metric(c, "a/../b", 1, 0, 0, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert_eq(track_log_metric(c, "loss", 1, 0, -5, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert_eq(track_flush(c, &err), 0);
    int64_t reqs = -1, bytes = -1;
    cr_assert_eq(track_spool_pending(c, &reqs, &bytes, &err), 0);
    cr_assert_eq(reqs, 0, "a refused write was spooled");

    /* reads of what does not exist */
    int rc = track_metric_history(c, hex, "never", 0, 0, &res, &steps, &times, &vals, &n, &next,
                                  &more, &err);
    cr_assert_eq(rc, TRACK_E_NOT_FOUND, "history of an unlogged key: %s", track_code_name(rc));
    struct track_run_info r;
    rc = track_run_get(c, "0000000000000000000000000000000f", &res, &r, &err);
    cr_assert_eq(rc, TRACK_E_NOT_FOUND, "%s", track_code_name(rc));
    rc = track_run_get(c, "abc", &res, &r, &err);
    cr_assert_eq(rc, TRACK_E_INVALID_ARGUMENT, "%s", track_code_name(rc));
    PASS();
}

Test(core, run_end_sets_status_and_end_time_once)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    struct track_result *res;
    struct track_run_info r;

    start_run("ends", NULL, &id, hex);
    OK(track_log_metric(c, "loss", 0.25, 3, 0, &e_));
    /* run end flushes what is buffered first */
    cr_assert_eq(track_run_end(c, TRACK_FAILED, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.status, TRACK_FAILED);
    cr_assert_geq(r.end_ms, r.start_ms);
    int64_t end = r.end_ms;
    const struct track_metric_summary *s = summary_of(&r, "loss");
    cr_assert_not_null(s, "buffered point lost at run end");
    cr_assert_eq(s->count, 1);
    track_result_free(res);

    /* the same status again is fine and keeps the first end time */
    cr_assert_eq(track_run_end(c, TRACK_FAILED, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.end_ms, end);
    track_result_free(res);
    /* another status is a conflict naming both */
    int rc = track_run_end(c, TRACK_FINISHED, &err);
    cr_assert_eq(rc, TRACK_E_CONFLICT, "%s", track_code_name(rc));
    cr_assert_not_null(strstr(err.msg, "FAILED"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "FINISHED"), "%s", err.msg);
    cr_assert_eq(track_run_end(c, TRACK_RUNNING, &err), TRACK_E_INVALID_ARGUMENT);

    /* track_run_use by prefix then end another run as KILLED */
    track_run_id id2;
    char hex2[33], prefix[7];
    start_run("ends", NULL, &id2, hex2);
    start_run("ends", NULL, &id, hex); /* current is now a third run */
    memcpy(prefix, hex2, 6);
    prefix[6] = '\0';
    cr_assert_eq(track_run_use(c, prefix, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_end(c, TRACK_KILLED, &err), 0, "%s", err.msg);
    cr_assert_eq(track_run_get(c, hex2, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.status, TRACK_KILLED);
    track_result_free(res);
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.status, TRACK_RUNNING, "the wrong run was ended");
    track_result_free(res);
    PASS();
}

Test(core, experiments_are_created_once_and_listed_with_run_counts)
{
    struct track_err err = {0};
    struct track_result *res;
    const struct track_experiment_info *e;
    size_t n;
    int64_t id_a = 0, id_b = 0;

    cr_assert_eq(track_experiment_create(c, "alpha", &id_a, &err), 0, "%s", err.msg);
    cr_assert_eq(track_experiment_create(c, "beta", &id_b, &err), 0, "%s", err.msg);
    cr_assert_gt(id_a, 0);
    cr_assert_neq(id_a, id_b);
    int rc = track_experiment_create(c, "alpha", NULL, &err);
    cr_assert_eq(rc, TRACK_E_ALREADY_EXISTS, "%s", track_code_name(rc));
    cr_assert_not_null(strstr(err.msg, "alpha"), "%s", err.msg);
    cr_assert_eq(track_experiment_create(c, "", NULL, &err), TRACK_E_INVALID_ARGUMENT);

    track_run_id id;
    char hex[33];
    start_run("alpha", NULL, &id, hex);
    start_run("alpha", NULL, &id, hex);
    start_run("beta", NULL, &id, hex);
    start_run("gamma", NULL, &id, hex); /* made on first use */

    cr_assert_eq(track_experiment_list(c, &res, &e, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3, "%zu experiments", n);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_gt(e[i].created_ms, 1500000000000LL);
        cr_assert_not(e[i].archived);
        if (strcmp(e[i].name, "alpha") == 0) {
            cr_assert_eq(e[i].id, id_a);
            cr_assert_eq(e[i].run_count, 2);
            seen |= 1;
        } else if (strcmp(e[i].name, "beta") == 0) {
            cr_assert_eq(e[i].id, id_b);
            cr_assert_eq(e[i].run_count, 1);
            seen |= 2;
        } else if (strcmp(e[i].name, "gamma") == 0) {
            cr_assert_eq(e[i].run_count, 1);
            seen |= 4;
        }
    }
    cr_assert_eq(seen, 7);
    track_result_free(res);
    PASS();
}

Test(core, run_list_filters_by_experiment)
{
    struct track_err err = {0};
    struct track_result *res;
    struct track_run_info *runs;
    size_t n;
    track_run_id id;
    char a1[33], a2[33], b1[33];

    start_run("A", "a1", &id, a1);
    OK(track_log_param(c, "p", "1", &e_));
    OK(track_log_metric(c, "m", 1.0, 0, 0, &e_));
    start_run("A", "a2", &id, a2);
    start_run("B", "b1", &id, b1);

    const char *only_a[] = {"A", NULL};
    struct track_run_query q = {0};
    q.experiments = only_a;
    q.with_details = 1;
    cr_assert_eq(track_run_list(c, &q, &res, &runs, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        char hex[33];
        track_run_id_hex(&runs[i].id, hex);
        cr_assert_str_eq(runs[i].experiment, "A");
        if (strcmp(hex, a1) == 0) {
            seen |= 1;
            cr_assert_str_eq(runs[i].name, "a1");
            cr_assert_eq(runs[i].n_params, 1, "details missing");
            cr_assert_eq(runs[i].n_metrics, 1, "details missing");
        } else if (strcmp(hex, a2) == 0) {
            seen |= 2;
        }
    }
    cr_assert_eq(seen, 3);
    track_result_free(res);

    const char *both[] = {"A", "B", NULL};
    q.experiments = both;
    cr_assert_eq(track_run_list(c, &q, &res, &runs, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    track_result_free(res);

    cr_assert_eq(track_run_list(c, NULL, &res, &runs, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 3);
    /* newest first */
    char hex[33];
    track_run_id_hex(&runs[0].id, hex);
    cr_assert_str_eq(hex, b1, "run list is not newest first");
    track_result_free(res);

    /* an experiment that does not exist: no runs, or NOT_FOUND naming it */
    const char *none[] = {"no-such-experiment", NULL};
    q.experiments = none;
    int rc = track_run_list(c, &q, &res, &runs, &n, &err);
    if (rc == 0) {
        cr_assert_eq(n, 0);
        track_result_free(res);
    } else {
        cr_assert_eq(rc, TRACK_E_NOT_FOUND, "%s: %s", track_code_name(rc), err.msg);
        cr_assert_not_null(strstr(err.msg, "no-such-experiment"), "%s", err.msg);
    }
    PASS();
}

/* ---- daemon lifetime --------------------------------------------------------- */

static void check_run_data(const char *hex, int64_t points)
{
    struct track_err err = {0};
    struct track_result *res;
    struct track_run_info r;
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "run after restart: %s", err.msg);
    cr_assert_str_eq(r.experiment, "durable");
    cr_assert_str_eq(kv_get(r.params, r.n_params, "seed"), "42");
    cr_assert_str_eq(kv_get(r.tags, r.n_tags, "phase"), "two");
    const struct track_metric_summary *s = summary_of(&r, "loss");
    cr_assert_not_null(s, "metric lost");
    cr_assert_eq(s->count, points, "%lld points after restart, %lld logged", (long long)s->count,
                 (long long)points);
    track_result_free(res);

    const int64_t *steps, *times;
    const double *vals;
    size_t n;
    int64_t next;
    int more;
    cr_assert_eq(track_metric_history(c, hex, "loss", 0, 0, &res, &steps, &times, &vals, &n, &next,
                                      &more, &err),
                 0, "%s", err.msg);
    cr_assert_eq((int64_t)n, points);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(steps[i], (int64_t)i);
        cr_assert_eq(vals[i], 1.0 / (double)(i + 1));
    }
    track_result_free(res);
}

static void log_durable(track_run_id *id, char hex[33], int64_t points)
{
    struct track_err err = {0};
    start_run("durable", NULL, id, hex);
    OK(track_log_param(c, "seed", "42", &e_));
    OK(track_set_tag(c, "phase", "one", &e_));
    OK(track_set_tag(c, "phase", "two", &e_));
    for (int64_t i = 0; i < points; i++)
        OK(track_log_metric(c, "loss", 1.0 / (double)(i + 1), i, 0, &e_));
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    cr_assert_neq(err.code, TRACK_E_SPOOLED, "%s", err.msg);
}

Test(core, sigterm_drains_and_exits_zero_and_data_survives_restart)
{
    track_run_id id;
    char hex[33];

    log_durable(&id, hex, 5000);
    track_client_close(c);
    c = NULL;
    cr_assert_eq(fx_daemon_stop(&d), 0, "trackd did not exit 0 on SIGTERM");
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not restart");
    c = open_client();
    check_run_data(hex, 5000);

    /* and again: a second restart on the same directory keeps everything */
    track_client_close(c);
    c = NULL;
    cr_assert_eq(fx_daemon_stop(&d), 0);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    c = open_client();
    check_run_data(hex, 5000);
    PASS();
}

Test(core, acknowledged_writes_survive_sigkill)
{
    track_run_id id;
    char hex[33];

    log_durable(&id, hex, 3000);
    fx_daemon_kill(&d);
    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not restart after SIGKILL");
    /* the same client reconnects by itself */
    check_run_data(hex, 3000);
    PASS();
}

Test(core, writes_while_the_daemon_is_down_are_spooled_and_delivered_once)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    struct stat sb;

    track_client_close(c);
    c = open_client_timeout(1000);
    start_run("spool", NULL, &id, hex);
    OK(track_log_metric(c, "loss", 1.0, 0, 0, &e_));
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    cr_assert_eq(fx_daemon_stop(&d), 0);

    /* the first write after the daemon went away may wait out the client's
     * timeout (1 s here) on the connected socket; the next ones must not */
    long long t0 = fx_now_ms();
    OK(track_log_metric(c, "loss", 2.0, 1, 0, &e_));
    OK(track_log_metric(c, "loss", 3.0, 2, 0, &e_));
    int rc = track_flush(c, &err);
    cr_assert_eq(rc, 0, "flush with the daemon down: %s", track_code_name(rc));
    cr_assert_eq(err.code, TRACK_E_SPOOLED, "expected SPOOLED, got %s: %s",
                 track_code_name(err.code), err.msg);
    long long first = fx_now_ms() - t0;
    cr_assert_lt(first, 1000 + 1500, "the first spooled write took %lld ms", first);
    cr_log_info("first write with the daemon down took %lld ms", first);
    t0 = fx_now_ms();
    cr_assert_eq(track_set_tag(c, "offline", "yes", &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED);
    cr_assert_lt(fx_now_ms() - t0, 900, "a write stalled while the daemon was known down");
    cr_assert_eq(stat(d.spool, &sb), 0, "no spool file at %s", d.spool);
    int64_t reqs = 0, bytes = 0;
    cr_assert_eq(track_spool_pending(c, &reqs, &bytes, &err), 0, "%s", err.msg);
    cr_assert_eq(reqs, 2, "%lld spooled requests", (long long)reqs);
    cr_assert_gt(bytes, 0);

    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    int sent = -1;
    cr_assert_eq(track_sync(c, &sent, &err), 0, "sync: %s", err.msg);
    cr_assert_eq(sent, 2);
    cr_assert_eq(track_sync(c, &sent, &err), 0, "second sync: %s", err.msg);
    cr_assert_eq(sent, 0);
    cr_assert_eq(track_spool_pending(c, &reqs, &bytes, &err), 0);
    cr_assert_eq(reqs, 0);

    struct track_result *res;
    const int64_t *steps, *times;
    const double *vals;
    size_t n;
    int64_t next;
    int more;
    cr_assert_eq(track_metric_history(c, hex, "loss", 0, 0, &res, &steps, &times, &vals, &n, &next,
                                      &more, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 3, "%zu points, expected 3 exactly once", n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(steps[i], (int64_t)i);
        cr_assert_eq(vals[i], (double)(i + 1));
    }
    track_result_free(res);
    struct track_run_info r;
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(kv_get(r.tags, r.n_tags, "offline"), "yes");
    track_result_free(res);
    PASS();
}

Test(core, a_run_started_offline_is_created_when_the_spool_is_delivered)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    struct track_run_opts ro = {0};

    cr_assert_eq(fx_daemon_stop(&d), 0);
    ro.experiment = "offline";
    ro.name = "started-offline";
    cr_assert_eq(track_run_start(c, &ro, &id, &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED);
    track_run_id_hex(&id, hex);
    OK(track_log_param(c, "k", "v", &e_));
    OK(track_log_metric(c, "m", 7.0, 0, 0, &e_));
    OK(track_run_end(c, TRACK_FINISHED, &e_));

    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    int sent = 0;
    cr_assert_eq(track_sync(c, &sent, &err), 0, "%s", err.msg);
    /* start, param, and the end carrying the point */
    cr_assert_eq(sent, 3, "%d requests delivered", sent);
    struct track_result *res;
    struct track_run_info r;
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_str_eq(r.name, "started-offline");
    cr_assert_str_eq(r.experiment, "offline");
    cr_assert_eq(r.status, TRACK_FINISHED);
    cr_assert_str_eq(kv_get(r.params, r.n_params, "k"), "v");
    const struct track_metric_summary *s = summary_of(&r, "m");
    cr_assert_not_null(s);
    cr_assert_eq(s->count, 1);
    track_result_free(res);
    PASS();
}

Test(core, status_reports_version_uptime_data_dir_and_counts)
{
    struct track_err err = {0};
    struct track_result *res;
    struct track_server_status st;
    track_run_id id;
    char hex[33];

    start_run("st", NULL, &id, hex);
    OK(track_log_metric(c, "m", 1, 0, 0, &e_));
    OK(track_log_metric(c, "m", 2, 1, 0, &e_));
    cr_assert_eq(track_status(c, &res, &st, &err), 0, "%s", err.msg);
    cr_assert_str_eq(st.server_version, TRACK_VERSION);
    cr_assert_geq(st.uptime_ms, 0);
    cr_assert_str_eq(st.data_dir, d.dir);
    cr_assert_eq(st.experiments, 1);
    cr_assert_eq(st.runs, 1);
    cr_assert_eq(st.metric_points, 2, "status must see points flushed before it");
    cr_assert_eq(st.pid, d.pid);
    cr_assert_gt(st.requests, 0);
    track_result_free(res);
    PASS();
}

/* The history of a long series, asked for with max_points 0 ("the server's
 * limit"), must come back in frames under the limit instead of failing:
 * `track metric history` asks exactly this way. Steps and times are made
 * large so that every varint on the wire takes 9 bytes: the worst case. */
Test(core, history_with_the_server_page_size_of_a_million_point_series_succeeds)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    const int64_t total = 1100000;

    start_run("long", NULL, &id, hex);
    for (int64_t i = 0; i < total; i++) {
        int rc = track_log_metric(c, "loss", (double)i * 0.5, i << 40, (1LL << 56) + i, &err);
        cr_assert_eq(rc, 0, "point %lld: %s", (long long)i, err.msg);
    }
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);

    int64_t cursor = 0, seen = 0;
    int more = 1;
    while (more) {
        struct track_result *res;
        const int64_t *steps, *times;
        const double *vals;
        size_t n;
        int rc = track_metric_history(c, hex, "loss", cursor, 0, &res, &steps, &times, &vals, &n,
                                      &cursor, &more, &err);
        cr_assert_eq(rc, 0, "history after %lld points: %s: %s", (long long)seen,
                     track_code_name(rc), err.msg);
        cr_assert_gt(n, 0);
        cr_assert_eq(steps[0], seen << 40);
        cr_assert_eq(times[n - 1], (1LL << 56) + seen + (int64_t)n - 1);
        seen += (int64_t)n;
        track_result_free(res);
    }
    cr_assert_eq(seen, total);
    PASS();
}

/* ---- background compaction ---------------------------------------------------- */

static int log_contains(const char *needle)
{
    FILE *f = fopen(d.log, "r");
    char line[2048];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

/* Single-point batches (as many CLI calls make) are merged in the background;
 * a reader paging through the history meanwhile sees every point once. */
Test(core, history_cursors_stay_valid_across_background_compaction)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    const int total = 600;

    start_run("compact", NULL, &id, hex);
    for (int i = 0; i < total; i++) {
        OK(track_log_metric(c, "loss", (double)i / 4, i, 1700000000000LL + i, &e_));
        cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    }

    struct track_result *res;
    const int64_t *steps, *times;
    const double *vals;
    size_t n;
    int64_t cursor = 0, seen = 0;
    int more = 1;
    cr_assert_eq(track_metric_history(c, hex, "loss", 0, 100, &res, &steps, &times, &vals, &n,
                                      &cursor, &more, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 100);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(steps[i], (int64_t)i);
    seen = (int64_t)n;
    track_result_free(res);

    /* the daemon merges chunks when idle (about a second) */
    long long until = fx_now_ms() + 15000;
    while (!log_contains("compacted") && fx_now_ms() < until) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    cr_assert(log_contains("compacted"), "no compaction within 15 s");

    while (more) {
        cr_assert_eq(track_metric_history(c, hex, "loss", cursor, 77, &res, &steps, &times, &vals,
                                          &n, &cursor, &more, &err),
                     0, "%s", err.msg);
        for (size_t i = 0; i < n; i++) {
            int64_t want = seen + (int64_t)i;
            cr_assert_eq(steps[i], want, "after compaction: step %lld where %lld was due",
                         (long long)steps[i], (long long)want);
            cr_assert_eq(vals[i], (double)want / 4);
            cr_assert_eq(times[i], 1700000000000LL + want);
        }
        seen += (int64_t)n;
        track_result_free(res);
    }
    cr_assert_eq(seen, total);

    /* appends after a merge carry on the sequence */
    OK(track_log_metric(c, "loss", -1.0, total, 0, &e_));
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    struct track_run_info r;
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    const struct track_metric_summary *s = summary_of(&r, "loss");
    cr_assert_eq(s->count, total + 1);
    cr_assert_eq(s->min, -1.0);
    cr_assert_eq(s->max, (double)(total - 1) / 4);
    cr_assert_eq(s->last_step, total);
    track_result_free(res);
    cr_assert_eq(track_metric_history(c, hex, "loss", total - 1, 0, &res, &steps, &times, &vals, &n,
                                      &cursor, &more, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(steps[0], total - 1);
    cr_assert_eq(steps[1], total);
    track_result_free(res);
    PASS();
}

Test(core, a_second_daemon_on_the_same_data_dir_refuses_to_start)
{
    char uri[400];
    char *out = NULL, *err = NULL;
    snprintf(uri, sizeof(uri), "ipc://%s/second.sock", d.dir);
    const char *argv[] = {"/usr/bin/timeout", "10", TRACKD_BIN, "--data-dir", d.dir,
                          "--listen",         uri,  NULL};
    int rc = fx_run(argv, NULL, NULL, &out, &err);
    cr_assert_eq(rc, 1, "second trackd: exit %d (124: it kept running)\n%s", rc, err);
    cr_assert_not_null(strstr(err, "another trackd"), "%s", err);
    free(out);
    free(err);
    /* the first one is unharmed */
    struct track_result *res;
    struct track_server_status st;
    struct track_err e = {0};
    cr_assert_eq(track_status(c, &res, &st, &e), 0, "%s", e.msg);
    track_result_free(res);
    PASS();
}

/* ---- clients in threads --------------------------------------------------------- */

struct thread_job {
    const char *run;
    const char *key;
    int points;
    int failures;
    char msg[512];
};

static void *log_in_thread(void *p)
{
    struct thread_job *j = p;
    struct track_client *cl = open_client();
    struct track_err err = {0};
    if (track_run_use(cl, j->run, &err)) {
        j->failures++;
        snprintf(j->msg, sizeof(j->msg), "run use: %.400s", err.msg);
    }
    for (int i = 0; i < j->points && !j->failures; i++) {
        /* one request per point: as many request ids as possible */
        if (track_log_metric(cl, j->key, (double)i, i, 0, &err) || track_flush(cl, &err) ||
            err.code == TRACK_E_SPOOLED) {
            j->failures++;
            snprintf(j->msg, sizeof(j->msg), "point %d: %.400s", i, err.msg);
        }
    }
    track_client_close(cl);
    return NULL;
}

/* Two threads, each with its own client (a data loader and a training loop,
 * say): their writes are independent and none is lost. A write whose request
 * id collided with another's would be answered as a replay and dropped. */
Test(core, clients_in_separate_threads_lose_no_writes)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    enum { THREADS = 4, POINTS = 1500 };
    struct thread_job jobs[THREADS];
    pthread_t th[THREADS];
    static const char *const keys[THREADS] = {"t0", "t1", "t2", "t3"};

    start_run("threads", NULL, &id, hex);
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct thread_job){.run = hex, .key = keys[i], .points = POINTS};
        cr_assert_eq(pthread_create(&th[i], NULL, log_in_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(jobs[i].failures, 0, "thread %d: %s", i, jobs[i].msg);

    struct track_result *res;
    struct track_run_info r;
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    int64_t counts[THREADS];
    for (int i = 0; i < THREADS; i++) {
        const struct track_metric_summary *s = summary_of(&r, keys[i]);
        counts[i] = s ? s->count : 0;
    }
    track_result_free(res);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(counts[i], POINTS, "thread %d: %lld of %d points stored", i,
                     (long long)counts[i], POINTS);
    PASS();
}

struct ingest_job {
    const char *run;
    int batches, per_batch;
    volatile int done_batches;
    int failures;
    int sent_by_sync;
    char msg[512];
};

static void *ingest_thread(void *p)
{
    struct ingest_job *j = p;
    struct track_client *cl = open_client();
    struct track_err err = {0};
    if (track_run_use(cl, j->run, &err)) {
        j->failures++;
        snprintf(j->msg, sizeof(j->msg), "run use: %.400s", err.msg);
    }
    for (int b = 0; b < j->batches && !j->failures; b++) {
        for (int k = 0; k < j->per_batch; k++) {
            int64_t step = (int64_t)b * j->per_batch + k;
            if (track_log_metric(cl, "ingest", (double)step, step, 0, &err)) {
                j->failures++;
                snprintf(j->msg, sizeof(j->msg), "log %lld: %.400s", (long long)step, err.msg);
                break;
            }
        }
        /* spooled is fine here: the daemon is restarting under us */
        if (track_flush(cl, &err)) {
            j->failures++;
            snprintf(j->msg, sizeof(j->msg), "flush %d: %s %.400s", b, track_code_name(err.code),
                     err.msg);
        }
        j->done_batches = b + 1;
    }
    /* deliver whatever went to the spool while the daemon was away */
    long long until = fx_now_ms() + 20000;
    int64_t reqs = 1, bytes = 0;
    while (!j->failures && fx_now_ms() < until) {
        int sent = 0;
        if (track_sync(cl, &sent, &err) == 0 && track_spool_pending(cl, &reqs, &bytes, &err) == 0 &&
            reqs == 0)
            break;
        j->sent_by_sync += sent;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (reqs != 0 && !j->failures) {
        j->failures++;
        snprintf(j->msg, sizeof(j->msg), "%lld requests still spooled", (long long)reqs);
    }
    track_client_close(cl);
    return NULL;
}

/* SIGTERM while a client streams metrics: the daemon answers what it took
 * in and exits 0; what was cut off is resent or spooled and delivered to the
 * restarted daemon. Every point ends up stored exactly once, in order. */
static void ingest_across_restart(int use_kill)
{
    track_run_id id;
    char hex[33];
    struct track_err err = {0};
    struct ingest_job j = {.batches = 120, .per_batch = 500};
    pthread_t th;

    start_run("ingest", NULL, &id, hex);
    j.run = hex;
    cr_assert_eq(pthread_create(&th, NULL, ingest_thread, &j), 0);
    long long until = fx_now_ms() + 20000;
    while (j.done_batches < 30 && fx_now_ms() < until) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int stopped = 0;
    if (use_kill)
        fx_daemon_kill(&d);
    else
        stopped = fx_daemon_stop(&d);
    int restarted = fx_daemon_restart(&d, NULL);
    pthread_join(th, NULL);
    cr_assert_eq(stopped, 0, "trackd did not exit 0 on SIGTERM during ingest");
    cr_assert_eq(restarted, 0, "trackd did not restart");
    cr_assert_eq(j.failures, 0, "%s", j.msg);
    cr_log_info("%s after 30 batches; %d spooled requests delivered by sync",
                use_kill ? "killed" : "stopped", j.sent_by_sync);

    const int64_t total = (int64_t)j.batches * j.per_batch;
    int64_t cursor = 0, seen = 0;
    int more = 1;
    while (more) {
        struct track_result *res;
        const int64_t *steps, *times;
        const double *vals;
        size_t n;
        cr_assert_eq(track_metric_history(c, hex, "ingest", cursor, 20000, &res, &steps, &times,
                                          &vals, &n, &cursor, &more, &err),
                     0, "%s", err.msg);
        for (size_t i = 0; i < n; i++) {
            int64_t want = seen + (int64_t)i;
            if (steps[i] != want) {
                int64_t got = steps[i];
                track_result_free(res);
                cr_assert_fail("point %lld has step %lld: %s", (long long)want, (long long)got,
                               got < want ? "a batch was stored twice" : "a batch was lost");
            }
        }
        seen += (int64_t)n;
        track_result_free(res);
    }
    cr_assert_eq(seen, total, "%lld points stored, %lld logged", (long long)seen, (long long)total);
}

Test(core, sigterm_during_ingest_loses_and_doubles_nothing)
{
    ingest_across_restart(0);
    PASS();
}

/* The same with SIGKILL: acknowledged batches were committed; the one in
 * flight is resent (same request id) and applied at most once. */
Test(core, sigkill_during_ingest_loses_and_doubles_nothing)
{
    ingest_across_restart(1);
    PASS();
}

/* A loop may log any number of distinct keys over a client's life: the
 * buffer makes room from keys that hold nothing, and sends what it holds
 * when every key has points. 10,000 keys, 3 points each, all stored. */
Test(core, ten_thousand_distinct_keys_from_one_client_are_all_stored)
{
    enum { KEYS = 10000, POINTS = 3 };
    track_run_id id;
    char hex[33], key[32];
    struct track_err err = {0};

    start_run("keys", "many-keys", &id, hex);
    for (int p = 0; p < POINTS; p++)
        for (int k = 0; k < KEYS; k++) {
            snprintf(key, sizeof(key), "class/%05d", k);
            int rc = track_log_metric(c, key, k + p * 0.5, p, 0, &err);
            cr_assert_eq(rc, 0, "key %d point %d: %s: %s", k, p, track_code_name(rc), err.msg);
            cr_assert_neq(err.code, TRACK_E_SPOOLED, "key %d spooled: %s", k, err.msg);
        }
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);

    struct track_result *res = NULL;
    struct track_run_info r;
    cr_assert_eq(track_run_get(c, hex, &res, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.n_metrics, (size_t)KEYS, "%zu keys stored of %d", r.n_metrics, KEYS);
    for (size_t i = 0; i < r.n_metrics; i++)
        cr_assert_eq(r.metrics[i].count, POINTS, "%s has %lld points", r.metrics[i].key,
                     (long long)r.metrics[i].count);
    track_result_free(res);
    PASS();
}

/* A run's last points go with its end (one request). When the end is
 * refused (the run ended already, as something else), the points are not
 * lost with it: they are sent on their own. */
Test(core, points_logged_just_before_an_end_are_stored_with_it_or_without_it)
{
    struct track_err err = {0};
    struct track_run_opts ro = {.experiment = "ends", .name = "short"};
    track_run_id id;
    char hex[33];
    const int64_t *steps, *times;
    const double *vals;
    struct track_result *res;
    size_t n;
    int64_t next;
    int more;

    cr_assert_eq(track_run_start(c, &ro, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
    for (int i = 0; i < 5; i++)
        OK(track_log_metric(c, "acc", 0.1 * i, i, 0, &e_));
    OK(track_run_end(c, TRACK_FINISHED, &e_));
    cr_assert_eq(track_metric_history(c, hex, "acc", 0, 0, &res, &steps, &times, &vals, &n, &next,
                                      &more, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 5, "%zu points with the end", n);
    track_result_free(res);

    /* the run ended FINISHED; ending it FAILED is refused, the point stays */
    cr_assert_eq(track_run_use(c, hex, &err), 0, "%s", err.msg);
    OK(track_log_metric(c, "late", 9.0, 7, 0, &e_));
    cr_assert_eq(track_run_end(c, TRACK_FAILED, &err), TRACK_E_CONFLICT, "%s", err.msg);
    cr_assert(strstr(err.msg, "already ended"), "%s", err.msg);
    cr_assert_eq(track_metric_history(c, hex, "late", 0, 0, &res, &steps, &times, &vals, &n, &next,
                                      &more, &err),
                 0, "%s", err.msg);
    cr_assert_eq(n, 1, "the point of a refused end was lost");
    cr_assert_eq(vals[0], 9.0);
    track_result_free(res);
    PASS();
}
