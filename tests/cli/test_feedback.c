/*
 * test_feedback.c: `track feedback add|list|summary|export` as a user runs
 * them, the built `track` binary against a real trackd: values typed from
 * the command line, refusals with their exit status and message (NaN, Inf,
 * a control character, neither value nor comment, an unknown run, a type
 * conflict), list and summary in --json with exact counts, means,
 * distributions, true ratios and label counts, `feedback.NAME` in `track
 * runs --filter` and --order-by (and the error for a label name), `track
 * compare` showing the summaries, and the export round trip in jsonl and
 * csv with a sample's text read from an artifact (and a long one cut).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static struct fx_daemon d;
static char A[33], B[33];
static char ENV_A[64], ENV_B[64];

static void start_run(const char *name, char hex[33])
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(fx_track(&d, NULL, NULL, &out, &err, "run", "start", "--experiment", "chat",
                          "--name", name, "--param", "lr=0.1", NULL),
                 0, "%s", err);
    snprintf(hex, 33, "%.32s", out);
    free(out);
    free(err);
}

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
    start_run("alpha", A);
    start_run("beta", B);
    snprintf(ENV_A, sizeof ENV_A, "TRACK_RUN_ID=%s", A);
    snprintf(ENV_B, sizeof ENV_B, "TRACK_RUN_ID=%s", B);
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, 0);
}

TestSuite(cli_feedback, .init = setup, .fini = teardown, .timeout = 120);

/* Runs `track ARGS...` with env (one "K=V" or NULL); asserts the exit
 * status; returns stdout (caller frees), stderr in *errp when given. */
static char *run_track(const char *env, int want, char **errp, ...)
{
    const char *argv[40];
    const char *envv[2] = {env, NULL};
    char *out = NULL, *err = NULL;
    va_list ap;
    int n = 0;

    va_start(ap, errp);
    while (n < 39 && (argv[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    /* fx_track takes a sentinel-ended list: pass up to 16 words */
    int rc = fx_track(&d, env ? envv : NULL, NULL, &out, &err, argv[0], n > 1 ? argv[1] : NULL,
                      n > 2 ? argv[2] : NULL, n > 3 ? argv[3] : NULL, n > 4 ? argv[4] : NULL,
                      n > 5 ? argv[5] : NULL, n > 6 ? argv[6] : NULL, n > 7 ? argv[7] : NULL,
                      n > 8 ? argv[8] : NULL, n > 9 ? argv[9] : NULL, n > 10 ? argv[10] : NULL,
                      n > 11 ? argv[11] : NULL, n > 12 ? argv[12] : NULL, n > 13 ? argv[13] : NULL,
                      n > 14 ? argv[14] : NULL, n > 15 ? argv[15] : NULL, NULL);
    cr_assert_eq(rc, want, "track %s %s %s: exit %d, want %d; stderr: %s", argv[0],
                 n > 1 ? argv[1] : "", n > 2 ? argv[2] : "", rc, want, err);
    if (errp)
        *errp = err;
    else
        free(err);
    return out;
}

static json_t *run_json(const char *env, ...)
{
    const char *argv[20];
    const char *envv[2] = {env, NULL};
    char *out = NULL, *err = NULL;
    va_list ap;
    int n = 0;

    va_start(ap, env);
    while (n < 19 && (argv[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    for (int i = n; i < 20; i++)
        argv[i] = NULL;
    int rc = fx_track(&d, env ? envv : NULL, NULL, &out, &err, argv[0], argv[1], argv[2], argv[3],
                      argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], argv[10], NULL);
    cr_assert_eq(rc, 0, "track %s %s: exit %d: %s", argv[0], argv[1], rc, err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert_not_null(j, "not JSON (%s): %s", je.text, out);
    free(out);
    free(err);
    return j;
}

static void add_ok(const char *env, ...)
{
    const char *argv[16];
    const char *envv[2] = {env, NULL};
    char *out = NULL, *err = NULL;
    va_list ap;
    int n = 0;

    va_start(ap, env);
    while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    for (int i = n; i < 16; i++)
        argv[i] = NULL;
    int rc = fx_track(&d, envv, NULL, &out, &err, "feedback", "add", argv[0], argv[1], argv[2],
                      argv[3], argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], NULL);
    cr_assert_eq(rc, 0, "feedback add %s %s: exit %d: %s", argv[0], argv[1] ? argv[1] : "", rc,
                 err);
    free(out);
    free(err);
}

static void expect_refusal(const char *env, int want, const char *needle, ...)
{
    const char *argv[16];
    const char *envv[2] = {env, NULL};
    char *out = NULL, *err = NULL;
    va_list ap;
    int n = 0;

    va_start(ap, needle);
    while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    for (int i = n; i < 16; i++)
        argv[i] = NULL;
    int rc = fx_track(&d, env ? envv : NULL, NULL, &out, &err, "feedback", "add", argv[0], argv[1],
                      argv[2], argv[3], argv[4], argv[5], NULL);
    cr_assert_eq(rc, want, "feedback add %s %s: exit %d, want %d: %s", argv[0],
                 argv[1] ? argv[1] : "", rc, want, err);
    cr_assert(strstr(err, needle), "stderr \"%s\" does not say \"%s\"", err, needle);
    free(out);
    free(err);
}

Test(cli_feedback, bad_values_and_targets_are_refused_naming_the_field)
{
    expect_refusal(ENV_A, 1, "feedback value: nan is not a finite number", "q", "nan", NULL);
    expect_refusal(ENV_A, 1, "feedback value: -Inf is not a finite number", "q", "-Inf", NULL);
    expect_refusal(ENV_A, 1, "feedback value: 1e999 is not a finite number", "q", "1e999", NULL);
    expect_refusal(ENV_A, 1, "feedback label: control character at byte 3", "tone", "go\x01od",
                   NULL);
    expect_refusal(ENV_A, 2, "expected a VALUE or --comment TEXT", "q", NULL);
    expect_refusal(ENV_A, 2, "--source: \"robot\" is not human, llm_judge or code", "q", "1",
                   "--source", "robot", NULL);
    expect_refusal("TRACK_RUN_ID=0123456789abcdef0123456789abcdef", 1,
                   "NOT_FOUND: run 0123456789abcdef0123456789abcdef not found", "q", "1", NULL);
    expect_refusal("TRACK_RUN_ID=", 1, "no run", "q", "1", NULL);
    add_ok(ENV_A, "helpfulness", "4", NULL);
    expect_refusal(ENV_A, 1,
                   "CONFLICT: feedback \"helpfulness\" holds numbers; got a label \"good\"",
                   "helpfulness", "good", NULL);
    expect_refusal(ENV_A, 1, "holds numbers; got a boolean true", "helpfulness", "yes", NULL);

    /* a 70 KB comment: over the 64 KiB limit, named */
    char *big = malloc(70001);
    memset(big, 'x', 70000);
    big[70000] = '\0';
    expect_refusal(ENV_A, 1, "comment: 70000 bytes, longer than the limit of 65536", "q", "1",
                   "--comment", big, NULL);
    free(big);
}

Test(cli_feedback, list_and_summary_show_exact_figures)
{
    add_ok(ENV_A, "helpfulness", "5", "--target", "s1", "--comment", "clear", NULL);
    add_ok(ENV_A, "helpfulness", "4", "--target", "s1", NULL);
    add_ok(ENV_A, "helpfulness", "4", "--target", "s2", "--source", "llm_judge", "--by", "judge",
           "--rationale", "mostly right", NULL);
    add_ok(ENV_A, "helpfulness", "2", "--target", "s3", NULL);
    add_ok(ENV_A, "correct", "true", "--target", "s1", NULL);
    add_ok(ENV_A, "correct", "no", "--target", "s2", NULL);
    add_ok(ENV_A, "correct", "YES", "--target", "s3", NULL);
    add_ok(ENV_A, "tone", "warm", "--target", "s1", NULL);
    add_ok(ENV_A, "tone", "cold", "--target", "s2", NULL);
    add_ok(ENV_A, "tone", "warm", "--target", "s3", NULL);
    add_ok(ENV_A, "note", "--comment", "retry with a lower lr", NULL);

    json_t *l = run_json(ENV_A, "feedback", "list", "--json", NULL);
    cr_assert_eq(json_array_size(l), 11);
    /* the run's own score (target "") comes first, then s1, s2, s3 */
    json_t *first = json_array_get(l, 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "name")), "note");
    cr_assert(json_is_null(json_object_get(first, "value")));
    cr_assert_str_eq(json_string_value(json_object_get(first, "kind")), "none");
    json_t *s1 = json_array_get(l, 1);
    cr_assert_str_eq(json_string_value(json_object_get(s1, "target")), "s1");
    cr_assert_eq(json_real_value(json_object_get(s1, "value")), 5.0);
    cr_assert_str_eq(json_string_value(json_object_get(s1, "comment")), "clear");
    cr_assert_str_eq(json_string_value(json_object_get(s1, "source")), "human");
    cr_assert_str_eq(json_string_value(json_object_get(s1, "run_id")), A);
    cr_assert(json_is_integer(json_object_get(s1, "time")));
    json_decref(l);

    l = run_json(ENV_A, "feedback", "list", "--target", "s2", "--name", "helpfulness", "--json",
                 NULL);
    cr_assert_eq(json_array_size(l), 1);
    json_t *j = json_array_get(l, 0);
    cr_assert_str_eq(json_string_value(json_object_get(j, "source")), "llm_judge");
    cr_assert_str_eq(json_string_value(json_object_get(j, "source_id")), "judge");
    cr_assert_str_eq(json_string_value(json_object_get(j, "rationale")), "mostly right");
    json_decref(l);

    json_t *s = run_json(NULL, "feedback", "summary", A, "--json", NULL);
    cr_assert_eq(json_array_size(s), 4);
    json_t *c = json_array_get(s, 0), *h = json_array_get(s, 1), *t = json_array_get(s, 3);
    cr_assert_str_eq(json_string_value(json_object_get(c, "name")), "correct");
    cr_assert_eq(json_integer_value(json_object_get(c, "count")), 3);
    cr_assert_eq(json_integer_value(json_object_get(c, "true_count")), 2);
    cr_assert_float_eq(json_real_value(json_object_get(c, "true_ratio")), 2.0 / 3, 1e-12);
    cr_assert_str_eq(json_string_value(json_object_get(h, "name")), "helpfulness");
    cr_assert_eq(json_integer_value(json_object_get(h, "count")), 4);
    cr_assert_eq(json_integer_value(json_object_get(h, "comments")), 1);
    cr_assert_float_eq(json_real_value(json_object_get(h, "mean")), 15.0 / 4, 1e-12);
    cr_assert_eq(json_real_value(json_object_get(h, "min")), 2.0);
    cr_assert_eq(json_real_value(json_object_get(h, "max")), 5.0);
    json_t *dist = json_object_get(h, "distribution");
    cr_assert_eq(json_array_size(dist), 3);
    cr_assert_eq(json_real_value(json_object_get(json_array_get(dist, 1), "value")), 4.0);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(dist, 1), "count")), 2);
    cr_assert_str_eq(json_string_value(json_object_get(t, "name")), "tone");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(t, "labels"), "warm")), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(t, "labels"), "cold")), 1);
    json_decref(s);

    s = run_json(ENV_A, "feedback", "summary", "--by-target", "--json", NULL);
    /* "" note; s1: helpfulness, correct, tone (first-use order); s2: 3; s3: 3 */
    cr_assert_eq(json_array_size(s), 10);
    json_t *s1h = json_array_get(s, 1);
    cr_assert_str_eq(json_string_value(json_object_get(s1h, "target")), "s1");
    cr_assert_str_eq(json_string_value(json_object_get(s1h, "name")), "helpfulness");
    cr_assert_float_eq(json_real_value(json_object_get(s1h, "mean")), 4.5, 1e-12);
    json_decref(s);

    add_ok(ENV_B, "helpfulness", "1", NULL);
    s = run_json(NULL, "feedback", "summary", "--experiment", "chat", "--json", NULL);
    h = json_array_get(s, 1);
    cr_assert_eq(json_integer_value(json_object_get(h, "count")), 5);
    cr_assert_float_eq(json_real_value(json_object_get(h, "mean")), 16.0 / 5, 1e-12);
    json_decref(s);

    char *out = run_track(NULL, 0, NULL, "feedback", "summary", A, NULL);
    cr_assert(strstr(out, "helpfulness"), "%s", out);
    cr_assert(strstr(out, "3.75"), "%s", out);
    cr_assert(strstr(out, "warm:2 cold:1"), "%s", out);
    free(out);
}

Test(cli_feedback, runs_filter_and_order_by_feedback_and_compare_shows_it)
{
    add_ok(ENV_A, "helpfulness", "5", NULL);
    add_ok(ENV_A, "helpfulness", "4", NULL); /* 4.5 */
    add_ok(ENV_B, "helpfulness", "3", NULL); /* 3 */
    add_ok(ENV_A, "correct", "false", NULL); /* 0 */
    add_ok(ENV_B, "correct", "true", NULL);  /* 1 */
    add_ok(ENV_A, "tone", "warm", NULL);

    json_t *r = run_json(NULL, "runs", "--filter", "feedback.helpfulness > 4", "--json", NULL);
    cr_assert_eq(json_array_size(r), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r, 0), "run_id")), A);
    json_decref(r);
    r = run_json(NULL, "runs", "--filter", "feedback.correct = 1", "--json", NULL);
    cr_assert_eq(json_array_size(r), 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r, 0), "run_id")), B);
    json_decref(r);
    r = run_json(NULL, "runs", "--order-by", "feedback.helpfulness ASC", "--json", NULL);
    cr_assert_eq(json_array_size(r), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r, 0), "run_id")), B);
    json_decref(r);
    r = run_json(NULL, "runs", "--order-by", "feedback.helpfulness DESC", "--json", NULL);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(r, 0), "run_id")), A);
    json_decref(r);

    char *err = NULL;
    char *out = run_track(NULL, 1, &err, "runs", "--filter", "feedback.tone > 1", NULL);
    cr_assert(strstr(err, "feedback.tone holds labels, which cannot be compared"), "%s", err);
    free(out);
    free(err);
    out = run_track(NULL, 1, &err, "runs", "--order-by", "feedback.tone", NULL);
    cr_assert(strstr(err, "feedback.tone holds labels"), "%s", err);
    free(out);
    free(err);

    json_t *c = run_json(NULL, "compare", A, B, "--json", NULL);
    json_t *runs = json_object_get(c, "runs");
    json_t *fa = json_object_get(json_array_get(runs, 0), "feedback");
    json_t *fb = json_object_get(json_array_get(runs, 1), "feedback");
    cr_assert_float_eq(json_real_value(json_object_get(json_object_get(fa, "helpfulness"), "mean")),
                       4.5, 1e-12);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(fa, "helpfulness"), "count")),
                 2);
    cr_assert_float_eq(
        json_real_value(json_object_get(json_object_get(fb, "correct"), "true_ratio")), 1.0, 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(fa, "tone"), "top_label")),
                     "warm");
    json_decref(c);
    out = run_track(NULL, 0, NULL, "compare", A, B, "--format", "csv", NULL);
    cr_assert(strstr(out, "\nfeedback.helpfulness,4.5,3\n"), "%s", out);
    free(out);
    out = run_track(NULL, 0, NULL, "compare", A, B, "--columns", "runs", NULL);
    cr_assert(strstr(out, "feedback helpfulness"), "%s", out);
    cr_assert(strstr(out, "4.5 (n=2)"), "%s", out);
    free(out);
}

static json_t *record_of(json_t *recs, const char *run, const char *target)
{
    for (size_t i = 0; i < json_array_size(recs); i++) {
        json_t *r = json_array_get(recs, i);
        if (!strcmp(json_string_value(json_object_get(r, "run_id")), run) &&
            !strcmp(json_string_value(json_object_get(r, "target")), target))
            return r;
    }
    return NULL;
}

/* A minimal RFC 4180 reader for the export: fields of one row. */
static size_t csv_row(const char **p, char **fields, size_t max)
{
    size_t n = 0;
    const char *s = *p;
    while (*s && n < max) {
        char *f = malloc(strlen(s) + 1), *o = f;
        if (*s == '"') {
            s++;
            for (;;) {
                if (*s == '"' && s[1] == '"') {
                    *o++ = '"';
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    *o++ = *s++;
                }
            }
        } else {
            while (*s && *s != ',' && *s != '\r')
                *o++ = *s++;
        }
        *o = '\0';
        fields[n++] = f;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r')
            s++;
        if (*s == '\n')
            s++;
        break;
    }
    *p = s;
    return n;
}

Test(cli_feedback, export_round_trips_in_jsonl_and_csv_with_sample_text)
{
    char path[400], big[400], jl[400], csv[400];
    snprintf(path, sizeof path, "%s/answer.txt", d.dir);
    fx_write_file(path, "Paris is the capital of France.\n", 32);
    snprintf(big, sizeof big, "%s/long.txt", d.dir);
    char *text = malloc(100000);
    for (int i = 0; i < 100000; i++)
        text[i] = (char)('a' + i % 26);
    fx_write_file(big, text, 100000);
    free(text);
    free(run_track(ENV_A, 0, NULL, "artifact", "put", path, "--as", "samples/1.txt", NULL));
    free(run_track(ENV_A, 0, NULL, "artifact", "put", big, "--as", "samples/2.txt", NULL));

    add_ok(ENV_A, "helpfulness", "5", "--target", "samples/1.txt", "--comment", "exact", "--by",
           "ann", NULL);
    add_ok(ENV_A, "correct", "true", "--target", "samples/1.txt", "--source", "code", "--by",
           "grader.py", NULL);
    add_ok(ENV_A, "helpfulness", "2", "--target", "samples/2.txt", "--rationale",
           "rambles \"a lot\", then stops", "--source", "llm_judge", "--by", "judge", NULL);
    add_ok(ENV_B, "helpfulness", "3", "--target", "q-17", NULL);

    snprintf(jl, sizeof jl, "%s/out.jsonl", d.dir);
    free(run_track(NULL, 0, NULL, "feedback", "export", "--experiment", "chat", "--format", "jsonl",
                   "-o", jl, NULL));
    char *body = fx_read_text(jl);
    cr_assert_eq(fx_count_of(body, "\n"), 3, "one line per target: %s", body);
    json_t *recs = json_array();
    for (char *line = body, *nl; *line; line = nl + 1) {
        json_error_t je;
        nl = strchr(line, '\n');
        cr_assert_not_null(nl, "a line without its newline: %s", line);
        *nl = '\0';
        json_t *r = json_loads(line, 0, &je);
        cr_assert_not_null(r, "%s: %s", je.text, line);
        json_array_append_new(recs, r);
    }
    free(body);
    json_t *r1 = record_of(recs, A, "samples/1.txt"), *r2 = record_of(recs, A, "samples/2.txt"),
           *r3 = record_of(recs, B, "q-17");
    cr_assert(r1 && r2 && r3);
    cr_assert_str_eq(json_string_value(json_object_get(r1, "run_name")), "alpha");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r1, "params"), "lr")),
                     "0.1");
    cr_assert_str_eq(json_string_value(json_object_get(r1, "text")),
                     "Paris is the capital of France.\n");
    cr_assert(json_is_false(json_object_get(r1, "text_truncated")));
    json_t *sc = json_object_get(r1, "scores");
    cr_assert_eq(json_array_size(sc), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(sc, 0), "name")),
                     "helpfulness");
    cr_assert_eq(json_real_value(json_object_get(json_array_get(sc, 0), "value")), 5.0);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(sc, 0), "comment")), "exact");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(sc, 0), "source_id")), "ann");
    cr_assert(json_is_true(json_object_get(json_array_get(sc, 1), "value")));
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(sc, 1), "source")), "code");
    cr_assert_eq(strlen(json_string_value(json_object_get(r2, "text"))), 65536);
    cr_assert(json_is_true(json_object_get(r2, "text_truncated")));
    cr_assert_eq(json_integer_value(json_object_get(r2, "text_bytes")), 100000);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(r2, "scores"), 0), "rationale")),
                     "rambles \"a lot\", then stops");
    cr_assert(json_is_null(json_object_get(r3, "text")), "a sample id has no text");

    /* csv: the same records, field by field */
    snprintf(csv, sizeof csv, "%s/out.csv", d.dir);
    free(run_track(NULL, 0, NULL, "feedback", "export", "--experiment", "chat", "--format", "csv",
                   "-o", csv, NULL));
    char *cb = fx_read_text(csv);
    const char *p = cb;
    char *f[8];
    size_t n = csv_row(&p, f, 8);
    cr_assert_eq(n, 7);
    const char *head[] = {"run_id", "run_name",       "target", "params",
                          "text",   "text_truncated", "scores"};
    for (size_t i = 0; i < 7; i++) {
        cr_assert_str_eq(f[i], head[i]);
        free(f[i]);
    }
    int rows = 0;
    while (*p) {
        n = csv_row(&p, f, 8);
        cr_assert_eq(n, 7, "row %d has %zu fields", rows, n);
        json_t *r = record_of(recs, f[0], f[2]);
        cr_assert_not_null(r, "csv row %s %s not in the jsonl export", f[0], f[2]);
        cr_assert_str_eq(f[1], json_string_value(json_object_get(r, "run_name")));
        json_t *params = json_loads(f[3], 0, NULL), *scores = json_loads(f[6], 0, NULL);
        cr_assert(json_equal(params, json_object_get(r, "params")), "params %s", f[3]);
        cr_assert(json_equal(scores, json_object_get(r, "scores")), "scores %s", f[6]);
        json_t *t = json_object_get(r, "text");
        cr_assert_str_eq(f[4], json_is_null(t) ? "" : json_string_value(t));
        cr_assert_str_eq(f[5],
                         json_is_true(json_object_get(r, "text_truncated")) ? "true" : "false");
        json_decref(params);
        json_decref(scores);
        for (size_t i = 0; i < n; i++)
            free(f[i]);
        rows++;
    }
    cr_assert_eq(rows, 3);
    free(cb);

    /* --name narrows it */
    char *o = run_track(NULL, 0, NULL, "feedback", "export", "--experiment", "chat", "--name",
                        "correct", "--format", "jsonl", NULL);
    cr_assert_eq(fx_count_of(o, "\n"), 1, "%s", o);
    free(o);
    json_decref(recs);
}

Test(cli_feedback, a_negative_value_is_a_value_not_an_option)
{
    add_ok(ENV_B, "reward", "-2.5", "--comment", "-- not an option", NULL);
    add_ok(ENV_B, "--target", "s1", "reward", "-0.5", NULL);
    json_t *s = run_json(ENV_B, "feedback", "summary", "--json", NULL);
    json_t *r = json_array_get(s, 0);
    cr_assert_eq(json_integer_value(json_object_get(r, "count")), 2);
    cr_assert_float_eq(json_real_value(json_object_get(r, "mean")), -1.5, 1e-12);
    json_decref(s);
}

Test(cli_feedback, help_and_usage_errors)
{
    char *err = NULL;
    char *out = run_track(NULL, 0, NULL, "help", "feedback", "add", NULL);
    cr_assert(strstr(out, "--rationale"), "%s", out);
    cr_assert(strstr(out, "--by"), "%s", out);
    free(out);
    out = run_track(NULL, 2, &err, "feedback", "export", "--experiment", "chat", NULL);
    cr_assert(strstr(err, "--format jsonl or --format csv"), "%s", err);
    free(out);
    free(err);
    out = run_track(NULL, 2, &err, "feedback", "summary", NULL);
    cr_assert(strstr(err, "expected RUN or --experiment NAME"), "%s", err);
    free(out);
    free(err);
    out = run_track(NULL, 1, &err, "feedback", "summary", "--experiment", "nope", NULL);
    cr_assert(strstr(err, "experiment \"nope\" not found"), "%s", err);
    free(out);
    free(err);
}
