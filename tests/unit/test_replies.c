/*
 * test_replies.c: libtrack's check of the daemon's replies (cl_check_reply,
 * cl_check_history_page in client/lib/reads.c), fed crafted responses: a
 * column shorter than its siblings, an id of the wrong length or a missing
 * sub-message is refused as "malformed reply from server: field X" with
 * TRACK_E_INTERNAL, and a well-formed reply passes. The end-to-end cases
 * (a fake server sending such replies) are in integration/test_paging.c.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "lib/internal.h"

static int64_t i64[3] = {1, 2, 3};
static double dbl[3] = {0.1, 0.2, 0.3};
static uint8_t id16[16] = {1}, id3[3] = {1, 2, 3};

static void expect_malformed(const Track__V1__Response *rs, const char *field)
{
    struct track_err err = {0};
    char want[128];
    snprintf(want, sizeof(want), "malformed reply from server: field %s", field);
    cr_assert_eq(cl_check_reply(rs, &err), TRACK_E_INTERNAL, "accepted (want %s)", field);
    cr_assert_eq(err.code, TRACK_E_INTERNAL);
    cr_assert(strstr(err.msg, want), "message \"%s\", want \"%s\"", err.msg, want);
}

static void expect_ok(const Track__V1__Response *rs)
{
    struct track_err err = {0};
    cr_assert_eq(cl_check_reply(rs, &err), 0, "refused: %s", err.msg);
}

Test(replies, history_columns_must_match_values)
{
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    Track__V1__MetricHistoryResult h = TRACK__V1__METRIC_HISTORY_RESULT__INIT;
    Track__V1__MetricSeries s = TRACK__V1__METRIC_SERIES__INIT;
    rs.result_case = TRACK__V1__RESPONSE__RESULT_METRIC_HISTORY;
    rs.metric_history = &h;
    h.series = &s;
    s.key = (char *)"loss";
    s.values = dbl;
    s.n_values = 3;
    s.steps = i64;
    s.n_steps = 3;
    s.times_ms = i64;
    s.n_times_ms = 3;
    expect_ok(&rs);
    s.n_steps = 2;
    expect_malformed(&rs, "metric_history.series.steps");
    s.n_steps = 3;
    s.n_times_ms = 1;
    expect_malformed(&rs, "metric_history.series.times_ms");
    s.n_times_ms = 3;
    h.next_seq = -1;
    expect_malformed(&rs, "metric_history.next_seq");
    rs.metric_history = NULL;
    expect_malformed(&rs, "metric_history");
}

Test(replies, curve_columns_must_match_steps)
{
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    Track__V1__MetricCurveResult c = TRACK__V1__METRIC_CURVE_RESULT__INIT;
    rs.result_case = TRACK__V1__RESPONSE__RESULT_METRIC_CURVE;
    rs.metric_curve = &c;
    c.steps = i64;
    c.n_steps = 3;
    c.mins = c.maxs = c.lasts = dbl;
    c.n_mins = c.n_maxs = c.n_lasts = 3;
    expect_ok(&rs);
    c.n_maxs = 2;
    expect_malformed(&rs, "metric_curve.maxs");
    c.n_maxs = 3;
    c.n_lasts = 4;
    expect_malformed(&rs, "metric_curve.lasts");
}

Test(replies, runs_need_ids_of_16_bytes_and_whole_entries)
{
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    Track__V1__RunListResult l = TRACK__V1__RUN_LIST_RESULT__INIT;
    Track__V1__Run r = TRACK__V1__RUN__INIT, *runs[1] = {&r};
    Track__V1__MetricSummary m = TRACK__V1__METRIC_SUMMARY__INIT, *ms[2] = {&m, NULL};
    rs.result_case = TRACK__V1__RESPONSE__RESULT_RUN_LIST;
    rs.run_list = &l;
    l.runs = runs;
    l.n_runs = 1;
    r.run_id.data = id16;
    r.run_id.len = 16;
    r.metrics = ms;
    r.n_metrics = 1;
    m.key = (char *)"loss";
    expect_ok(&rs);
    r.n_metrics = 2; /* an entry missing */
    expect_malformed(&rs, "run_list.runs.metrics");
    r.n_metrics = 1;
    r.parent_id.data = id3;
    r.parent_id.len = 3;
    expect_malformed(&rs, "run_list.runs.parent_id");
    r.parent_id.len = 0;
    r.run_id.data = id3;
    r.run_id.len = 3;
    expect_malformed(&rs, "run_list.runs.run_id");

    Track__V1__RunGetResult g = TRACK__V1__RUN_GET_RESULT__INIT;
    rs.result_case = TRACK__V1__RESPONSE__RESULT_RUN_GET;
    rs.run_get = &g;
    expect_malformed(&rs, "run_get.run");
    g.run = &r;
    expect_malformed(&rs, "run_get.run.run_id");
}

Test(replies, resolve_and_lists_are_checked)
{
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    Track__V1__RunResolveResult rr = TRACK__V1__RUN_RESOLVE_RESULT__INIT;
    rs.result_case = TRACK__V1__RESPONSE__RESULT_RUN_RESOLVE;
    rs.run_resolve = &rr;
    rr.run_id.data = id3;
    rr.run_id.len = 3;
    expect_malformed(&rs, "run_resolve.run_id");

    Track__V1__ExperimentListResult el = TRACK__V1__EXPERIMENT_LIST_RESULT__INIT;
    Track__V1__Experiment *none[1] = {NULL};
    rs.result_case = TRACK__V1__RESPONSE__RESULT_EXPERIMENT_LIST;
    rs.experiment_list = &el;
    el.experiments = none;
    el.n_experiments = 1;
    expect_malformed(&rs, "experiment_list.experiments");
}

Test(replies, an_empty_history_page_promising_more_names_run_and_key)
{
    Track__V1__Response rs = TRACK__V1__RESPONSE__INIT;
    Track__V1__MetricHistoryResult h = TRACK__V1__METRIC_HISTORY_RESULT__INIT;
    struct track_err err = {0};
    rs.result_case = TRACK__V1__RESPONSE__RESULT_METRIC_HISTORY;
    rs.metric_history = &h;
    h.next_seq = 10;
    h.more = 1;
    cr_assert_eq(cl_check_history_page(&rs, "0123abcd", "loss", &err), TRACK_E_INTERNAL);
    cr_assert(strstr(err.msg, "\"loss\"") && strstr(err.msg, "0123abcd") &&
                  strstr(err.msg, "inconsistent"),
              "%s", err.msg);
    h.more = 0; /* the end of a history: fine */
    cr_assert_eq(cl_check_history_page(&rs, "0123abcd", "loss", &err), 0);
}
