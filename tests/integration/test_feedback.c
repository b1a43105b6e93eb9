/*
 * test_feedback.c: feedback scores end to end on a real trackd: the daemon's
 * own checks of FeedbackBatch spoken in raw frames (so libtrack's checks do
 * not hide them: NaN, infinities, a 10 MB comment, control characters in a
 * label, neither value nor comment, an unknown run), libtrack's checks
 * naming the same fields, a name's one type across requests, exact
 * summaries, paging of a listing larger than one reply, 10^4 scores from C
 * in 10 requests, and the spool holding scores while the daemon is away
 * and delivering them after.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"
#include "track.pb-c.h"
#include "wire.h"

static struct fx_daemon d;
static struct track_client *c;

static void setup(void)
{
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
    c = fx_client_for(d.uri, d.spool, 10000, 0);
}

static void teardown(void)
{
    if (c)
        track_client_close(c);
    c = NULL;
    fx_daemon_cleanup(&d, 0);
}

TestSuite(feedback, .init = setup, .fini = teardown, .timeout = 120);

static void new_run(char hex[33])
{
    struct track_err err = {0};
    track_run_id id;
    struct track_run_opts o = {.experiment = "judged"};
    cr_assert_eq(track_run_start(c, &o, &id, &err), 0, "%s", err.msg);
    track_run_id_hex(&id, hex);
}

/* ---- raw frames: the daemon's own checks ------------------------------------- */

static Track__V1__Response *raw_batch_id(Track__V1__Score *s, const uint8_t *fixed_rid);

static Track__V1__Response *raw_batch(Track__V1__Score *s)
{
    return raw_batch_id(s, NULL);
}

/* One FeedbackBatch of score s in a raw frame, with request id fixed_rid
 * (NULL: a fresh one). */
static Track__V1__Response *raw_batch_id(Track__V1__Score *s, const uint8_t *fixed_rid)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__FeedbackBatch b = TRACK__V1__FEEDBACK_BATCH__INIT;
    Track__V1__Score *list[1] = {s};
    static uint64_t k;
    uint8_t rid[16] = {0};
    uint64_t t = (uint64_t)fx_now_ms() ^ ((uint64_t)getpid() << 40);
    memcpy(rid, &t, 8);
    k++;
    memcpy(rid + 8, &k, 8);
    if (fixed_rid)
        memcpy(rid, fixed_rid, 16);
    rq.request_id.data = rid;
    rq.request_id.len = 16;
    b.scores = list;
    b.n_scores = 1;
    rq.op_case = TRACK__V1__REQUEST__OP_FEEDBACK_BATCH;
    rq.feedback_batch = &b;

    size_t len = track__v1__request__get_packed_size(&rq);
    uint8_t *buf = malloc(len);
    cr_assert_not_null(buf);
    track__v1__request__pack(&rq, buf);
    int sock = nn_socket(AF_SP, NN_REQ), tmo = 20000, unlimited = -1;
    cr_assert_geq(sock, 0);
    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &tmo, sizeof tmo);
    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &unlimited, sizeof unlimited);
    cr_assert_geq(nn_connect(sock, d.uri), 0);
    cr_assert_geq(nn_send(sock, buf, len, 0), 0, "%s", nn_strerror(nn_errno()));
    free(buf);
    void *msg = NULL;
    int n = nn_recv(sock, &msg, NN_MSG, 0);
    cr_assert_geq(n, 0, "no reply: %s", nn_strerror(nn_errno()));
    Track__V1__Response *rs = track__v1__response__unpack(NULL, (size_t)n, msg);
    nn_freemsg(msg);
    nn_close(sock);
    cr_assert_not_null(rs);
    return rs;
}

static void raw_expect(Track__V1__Score *s, int code, const char *needle, const char *what)
{
    Track__V1__Response *rs = raw_batch(s);
    int got = rs->error ? (int)rs->error->code : 0;
    const char *m = rs->error && rs->error->message ? rs->error->message : "";
    cr_assert_eq(got, code, "%s: code %d, want %d: %s", what, got, code, m);
    if (needle)
        cr_assert(strstr(m, needle), "%s: \"%s\" does not name \"%s\"", what, m, needle);
    track__v1__response__free_unpacked(rs, NULL);
}

static Track__V1__Score raw_score(const char *run, const char *name)
{
    Track__V1__Score s = TRACK__V1__SCORE__INIT;
    s.run = (char *)run;
    s.name = (char *)name;
    s.kind = 1;
    s.number = 3;
    s.source = 1;
    s.source_id = (char *)"tester";
    return s;
}

Test(feedback, the_daemon_refuses_bad_scores_naming_the_field)
{
    char run[33];
    new_run(run);
    const int INV = TRACK__V1__CODE__INVALID_ARGUMENT;

    Track__V1__Score s = raw_score(run, "q");
    s.number = NAN;
    raw_expect(&s, INV, "feedback value: NaN is not a finite number", "NaN");
    s.number = INFINITY;
    raw_expect(&s, INV, "Infinity is not a finite number", "+Inf");
    s.number = -INFINITY;
    raw_expect(&s, INV, "-Infinity is not a finite number", "-Inf");

    s = raw_score(run, "q");
    char *big = malloc(10u << 20 | 1);
    memset(big, 'a', 10u << 20);
    big[10u << 20] = '\0';
    s.comment = big;
    raw_expect(&s, INV, "comment: 10485760 bytes, longer than the limit of 65536", "10 MB comment");
    s.comment = NULL;
    s.rationale = big;
    raw_expect(&s, INV, "rationale: 10485760 bytes", "10 MB rationale");
    free(big);

    s = raw_score(run, "tone");
    s.kind = 3;
    s.label = (char *)"go\nod";
    raw_expect(&s, INV, "feedback label: control character at byte 3", "control character");
    s.label = (char *)"";
    raw_expect(&s, INV, "feedback label: must not be empty", "empty label");

    s = raw_score(run, "q");
    s.kind = 0;
    raw_expect(&s, INV, "neither a value nor a comment", "no value, no comment");

    s = raw_score("0123456789abcdef0123456789abcdef", "q");
    raw_expect(&s, TRACK__V1__CODE__NOT_FOUND, "run 0123456789abcdef0123456789abcdef not found",
               "unknown run");
    s = raw_score(run, "bad key\x01");
    raw_expect(&s, INV, "feedback name", "bad name");
    s = raw_score(run, "q");
    s.target_kind = 1;
    s.target = (char *)"";
    raw_expect(&s, INV, "target: must not be empty", "empty target");

    /* and a good one still goes in */
    s = raw_score(run, "q");
    raw_expect(&s, 0, NULL, "good score");
}

static int count_scores(void *ctx, const struct track_score *s)
{
    (void)s;
    (*(int64_t *)ctx)++;
    return 0;
}

Test(feedback, a_batch_sent_again_with_its_request_id_is_applied_once)
{
    char run[33];
    struct track_err err = {0};
    const uint8_t rid[16] = {0xfe, 0xed, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    new_run(run);
    Track__V1__Score s = raw_score(run, "q");
    for (int i = 0; i < 3; i++) {
        Track__V1__Response *rs = raw_batch_id(&s, rid);
        cr_assert_null(rs->error, "send %d: %s", i, rs->error ? rs->error->message : "");
        cr_assert_eq(rs->result_case, TRACK__V1__RESPONSE__RESULT_FEEDBACK_BATCH);
        cr_assert_eq(rs->feedback_batch->added, 1);
        track__v1__response__free_unpacked(rs, NULL);
    }
    int64_t n = 0;
    struct track_feedback_query q = {.run = run};
    cr_assert_eq(track_feedback_list(c, &q, count_scores, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 1, "applied %lld times", (long long)n);
}

/* ---- libtrack ------------------------------------------------------------------ */

Test(feedback, libtrack_checks_scores_before_buffering_them)
{
    char run[33];
    struct track_err err = {0};
    new_run(run);

    struct track_score s = {.run = run, .name = "q", .kind = TRACK_SCORE_NUMBER, .number = NAN};
    cr_assert_eq(track_feedback_add(c, &s, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "feedback value: NaN"), "%s", err.msg);
    s.number = -INFINITY;
    cr_assert_eq(track_feedback_add(c, &s, &err), TRACK_E_INVALID_ARGUMENT);
    s = (struct track_score){.run = run, .name = "q", .kind = TRACK_SCORE_LABEL, .label = "a\tb"};
    cr_assert_eq(track_feedback_add(c, &s, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "feedback label: control character"), "%s", err.msg);
    s = (struct track_score){.run = run, .name = "q"};
    cr_assert_eq(track_feedback_add(c, &s, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert(strstr(err.msg, "neither a value nor a comment"), "%s", err.msg);

    /* VALUE as typed */
    struct track_score v = {0};
    cr_assert_eq(track_feedback_parse_value("Yes", &v, &err), 0);
    cr_assert_eq(v.kind, TRACK_SCORE_BOOL);
    cr_assert_eq(v.boolean, 1);
    cr_assert_eq(track_feedback_parse_value("1", &v, &err), 0);
    cr_assert_eq(v.kind, TRACK_SCORE_NUMBER, "1 is a number");
    cr_assert_eq(track_feedback_parse_value("-2.5e1", &v, &err), 0);
    cr_assert_float_eq(v.number, -25.0, 0);
    cr_assert_eq(track_feedback_parse_value("0x10", &v, &err), 0);
    cr_assert_eq(v.kind, TRACK_SCORE_LABEL, "hex is not a number here");
    cr_assert_eq(track_feedback_parse_value("nan", &v, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert_eq(track_feedback_parse_value("-inf", &v, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert_eq(track_feedback_parse_value("1e999", &v, &err), TRACK_E_INVALID_ARGUMENT);
    cr_assert_eq(track_feedback_parse_value("good", &v, &err), 0);
    cr_assert_eq(v.kind, TRACK_SCORE_LABEL);

    /* an unknown run is the daemon's to refuse: at the flush */
    s = (struct track_score){.run = "0123456789abcdef0123456789abcdef",
                             .name = "q",
                             .kind = TRACK_SCORE_NUMBER,
                             .number = 1};
    cr_assert_eq(track_feedback_add(c, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(track_flush(c, &err), TRACK_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "run 0123456789abcdef0123456789abcdef not found"), "%s", err.msg);
}

Test(feedback, a_name_keeps_its_type_across_requests)
{
    char run[33];
    struct track_err err = {0};
    new_run(run);
    struct track_score s = {
        .run = run, .name = "helpfulness", .kind = TRACK_SCORE_NUMBER, .number = 4};
    cr_assert_eq(track_feedback_add(c, &s, &err), 0);
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    s.kind = TRACK_SCORE_LABEL;
    s.label = "good";
    track_feedback_add(c, &s, &err);
    cr_assert_eq(track_flush(c, &err), TRACK_E_CONFLICT);
    cr_assert(strstr(err.msg, "feedback \"helpfulness\" holds numbers; got a label \"good\""), "%s",
              err.msg);
}

struct sums {
    int n;
    char name[8][32];
    int kind[8];
    int64_t count[8], true_count[8];
    double mean[8], min[8], max[8];
    char labels[8][64];
};

static int take_sum(void *ctx, const struct track_feedback_summary *s)
{
    struct sums *o = ctx;
    int i = o->n++;
    snprintf(o->name[i], 32, "%s", s->name);
    o->kind[i] = s->kind;
    o->count[i] = s->count;
    o->true_count[i] = s->true_count;
    o->mean[i] = s->mean;
    o->min[i] = s->min;
    o->max[i] = s->max;
    size_t used = 0;
    for (size_t k = 0; k < s->n_labels && used < 60; k++)
        used += (size_t)snprintf(o->labels[i] + used, 64 - used, "%s%s=%lld", k ? "," : "",
                                 s->labels[k], (long long)s->label_counts[k]);
    return 0;
}

Test(feedback, ten_thousand_scores_go_in_ten_requests_and_sum_exactly)
{
    char run[33], tgt[32];
    struct track_err err = {0};
    new_run(run);
    int64_t before = track_feedback_batches(c);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 10000; i++) {
        snprintf(tgt, sizeof tgt, "sample-%05d", i);
        struct track_score s = {.run = run,
                                .target = tgt,
                                .name = "quality",
                                .kind = TRACK_SCORE_NUMBER,
                                .number = i % 5 + 1,
                                .source = TRACK_SOURCE_LLM_JUDGE,
                                .by = "judge-7b",
                                .rationale = "a judge's reasons"};
        cr_assert_eq(track_feedback_add(c, &s, &err), 0, "%d: %s", i, err.msg);
        struct track_score b = {.run = run,
                                .target = tgt,
                                .name = "correct",
                                .kind = TRACK_SCORE_BOOL,
                                .boolean = i % 4 == 0,
                                .source = TRACK_SOURCE_CODE,
                                .by = "grader.py"};
        cr_assert_eq(track_feedback_add(c, &b, &err), 0, "%d: %s", i, err.msg);
    }
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t batches = track_feedback_batches(c) - before;
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("feedback: 20000 scores in %lld FeedbackBatch requests, %.3f s (%.0f scores/s)\n",
           (long long)batches, secs, 20000 / secs);
    cr_assert_eq(batches, 20, "20000 scores should take 20 requests of 1000, took %lld",
                 (long long)batches);

    struct sums o = {0};
    cr_assert_eq(track_feedback_summary(c, run, NULL, 0, take_sum, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(o.n, 2);
    cr_assert_str_eq(o.name[0], "correct");
    cr_assert_eq(o.count[0], 10000);
    cr_assert_eq(o.true_count[0], 2500);
    cr_assert_float_eq(o.mean[0], 0.25, 1e-12);
    cr_assert_str_eq(o.name[1], "quality");
    cr_assert_eq(o.count[1], 10000);
    cr_assert_float_eq(o.mean[1], 3.0, 1e-12);
    cr_assert_float_eq(o.min[1], 1.0, 0);
    cr_assert_float_eq(o.max[1], 5.0, 0);
}

struct listed {
    int64_t n;
    int64_t last_id;
    int ordered;
    char first_by[32];
};

static int take_score(void *ctx, const struct track_score *s)
{
    struct listed *l = ctx;
    if (l->n == 0)
        snprintf(l->first_by, sizeof l->first_by, "%s", s->by);
    if (l->n > 0 && s->id <= l->last_id)
        l->ordered = 0;
    l->last_id = s->id;
    l->n++;
    return 0;
}

Test(feedback, a_listing_larger_than_one_reply_comes_in_pages)
{
    char run[33];
    struct track_err err = {0};
    static char comment[60001];
    memset(comment, 'c', 60000);
    new_run(run);
    /* 25000 scores on one target: 3 pages of the 10000-score cap; then
     * 200 with 60 KB comments: past one page's byte budget */
    for (int i = 0; i < 25000; i++) {
        struct track_score s = {.run = run,
                                .target = "t",
                                .name = "n",
                                .kind = TRACK_SCORE_NUMBER,
                                .number = i,
                                .by = "me"};
        cr_assert_eq(track_feedback_add(c, &s, &err), 0, "%s", err.msg);
    }
    for (int i = 0; i < 200; i++) {
        struct track_score s = {.run = run,
                                .target = "u",
                                .name = "n",
                                .comment = comment,
                                .kind = TRACK_SCORE_NUMBER,
                                .number = i,
                                .by = "me"};
        cr_assert_eq(track_feedback_add(c, &s, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    struct listed l = {.ordered = 1};
    struct track_feedback_query q = {.run = run};
    cr_assert_eq(track_feedback_list(c, &q, take_score, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(l.n, 25200);
    cr_assert(l.ordered, "scores of one target come in logged order");
    cr_assert_str_eq(l.first_by, "me");
    struct listed u = {.ordered = 1};
    q.target = "u";
    q.has_target = 1;
    cr_assert_eq(track_feedback_list(c, &q, take_score, &u, &err), 0, "%s", err.msg);
    cr_assert_eq(u.n, 200);
}

static int count_items(void *ctx, const struct track_feedback_summary *s)
{
    int64_t *n = ctx;
    char want[32];
    /* by target, in target order: sample-00000, sample-00001, ... */
    snprintf(want, sizeof want, "sample-%05lld", (long long)(*n / 2));
    cr_assert_str_eq(s->target, want);
    (*n)++;
    return 0;
}

Test(feedback, a_summary_by_target_of_thousands_comes_in_pages)
{
    char run[33], tgt[32];
    struct track_err err = {0};
    new_run(run);
    for (int i = 0; i < 2500; i++) {
        snprintf(tgt, sizeof tgt, "sample-%05d", i);
        struct track_score s = {
            .run = run, .target = tgt, .name = "a", .kind = TRACK_SCORE_NUMBER, .number = i};
        cr_assert_eq(track_feedback_add(c, &s, &err), 0, "%s", err.msg);
        s.name = "b";
        s.kind = TRACK_SCORE_LABEL;
        s.label = i % 2 ? "odd" : "even";
        cr_assert_eq(track_feedback_add(c, &s, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    int64_t n = 0;
    cr_assert_eq(track_feedback_summary(c, run, NULL, 1, count_items, &n, &err), 0, "%s", err.msg);
    cr_assert_eq(n, 5000, "every (target, name) once, in order: %lld", (long long)n);
    n = 0;
    cr_assert_eq(track_feedback_summary(c, NULL, "judged", 1, count_items, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 5000);
}

Test(feedback, the_spool_keeps_scores_while_trackd_is_away_and_delivers_them)
{
    char run[33];
    struct track_err err = {0};
    new_run(run);
    cr_assert_eq(fx_daemon_stop(&d), 0);
    for (int i = 0; i < 1500; i++) {
        struct track_score s = {.run = run,
                                .target = "x",
                                .name = "thumbs",
                                .kind = TRACK_SCORE_BOOL,
                                .boolean = i % 3 != 0};
        cr_assert_eq(track_feedback_add(c, &s, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(track_flush(c, &err), 0, "%s", err.msg);
    cr_assert_eq(err.code, TRACK_E_SPOOLED, "spooled: %s", err.msg);
    int64_t requests = 0, bytes = 0;
    cr_assert_eq(track_spool_pending(c, &requests, &bytes, &err), 0, "%s", err.msg);
    cr_assert_eq(requests, 2, "1500 scores: two spooled batches, got %lld", (long long)requests);

    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not restart");
    int sent = 0;
    cr_assert_eq(track_sync(c, &sent, &err), 0, "%s", err.msg);
    cr_assert_eq(sent, 2);
    struct sums o = {0};
    cr_assert_eq(track_feedback_summary(c, run, NULL, 0, take_sum, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(o.n, 1);
    cr_assert_eq(o.count[0], 1500);
    cr_assert_eq(o.true_count[0], 1000);
    /* delivered exactly once: a second sync sends nothing */
    cr_assert_eq(track_sync(c, &sent, &err), 0, "%s", err.msg);
    cr_assert_eq(sent, 0);
}
