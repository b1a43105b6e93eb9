/*
 * test_eval.c: `track eval` as the built binary. Exact figures against
 * values scikit-learn's documentation publishes for the same inputs (the
 * classification_report example and the precision_recall_fscore_support
 * example), each average, zero division with its warnings, logging to a
 * real trackd (metrics and the confusion matrix artifact, fetched back),
 * CSV columns with a BOM and CRLF, and every input error naming its file
 * and line.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon D;
static struct track_client *C;
static char T[400], P[400];

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    fx_daemon_client_start(&D, &C, 0);
    snprintf(T, sizeof T, "%s/truth.txt", D.dir);
    snprintf(P, sizeof P, "%s/pred.txt", D.dir);
}

static void teardown(void)
{
    fx_daemon_client_cleanup(&D, &C);
}

TestSuite(eval_cli, .init = setup, .fini = teardown, .timeout = 120);

static void put(const char *path, const char *text)
{
    fx_write_file(path, text, strlen(text));
}

/* track eval ARGS: its exit status, stdout and stderr (caller frees). */
static int eval(char **out, char **err, const char *a1, const char *a2, const char *a3,
                const char *a4)
{
    return fx_track(&D, NULL, NULL, out, err, "eval", "--labels", T, "--predictions", P, a1, a2, a3,
                    a4, NULL);
}

static json_t *eval_json(const char *extra1, const char *extra2)
{
    char *out = NULL, *err = NULL;
    int rc = eval(&out, &err, "--json", extra1, extra2, NULL);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert_not_null(j, "not JSON: %s\n%s", je.text, out);
    free(out);
    free(err);
    return j;
}

static double num(json_t *o, const char *path)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = o;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    cr_assert(json_is_number(v), "%s is not a number", path);
    return json_number_value(v);
}

#define NEAR(a, b) cr_assert(fabs((a) - (b)) < 1e-12, "%s = %.17g, expected %.17g", #a, a, b)

/* classification_report's documented example: y_true [0, 1, 2, 2, 2],
 * y_pred [0, 0, 2, 2, 1]: class 0 0.50/1.00/0.67, class 1 0/0/0, class 2
 * 1.00/0.67/0.80, accuracy 0.60, macro 0.50/0.56/0.49, weighted
 * 0.70/0.60/0.61 (exact: 5/9, 22/45, 46/75). */
Test(eval_cli, classification_report_example_exact)
{
    put(T, "0\n1\n2\n2\n2\n");
    put(P, "0\n0\n2\n2\n1\n");
    json_t *j = eval_json(NULL, NULL);
    NEAR(num(j, "accuracy"), 0.6);
    NEAR(num(j, "macro.precision"), 0.5);
    NEAR(num(j, "macro.recall"), 5.0 / 9);
    NEAR(num(j, "macro.f1"), 22.0 / 45);
    NEAR(num(j, "weighted.precision"), 0.7);
    NEAR(num(j, "weighted.recall"), 0.6);
    NEAR(num(j, "weighted.f1"), 46.0 / 75);
    NEAR(num(j, "micro.f1"), 0.6);
    json_t *cls = json_object_get(j, "classes");
    cr_assert_eq(json_array_size(cls), 3);
    double want[3][3] = {{0.5, 1, 2.0 / 3}, {0, 0, 0}, {1, 2.0 / 3, 0.8}};
    int support[3] = {1, 1, 3};
    for (int i = 0; i < 3; i++) {
        json_t *c = json_array_get(cls, (size_t)i);
        char label[2] = {(char)('0' + i), 0};
        cr_assert_str_eq(json_string_value(json_object_get(c, "label")), label);
        NEAR(num(c, "precision"), want[i][0]);
        NEAR(num(c, "recall"), want[i][1]);
        NEAR(num(c, "f1"), want[i][2]);
        cr_assert_eq(json_integer_value(json_object_get(c, "support")), support[i]);
    }
    /* rows true, columns predicted */
    json_t *rows = json_object_get(json_object_get(j, "confusion_matrix"), "rows");
    long long cm[3][3] = {{1, 0, 0}, {1, 0, 0}, {0, 1, 2}};
    for (size_t r = 0; r < 3; r++)
        for (size_t c = 0; c < 3; c++)
            cr_assert_eq(json_integer_value(json_array_get(json_array_get(rows, r), c)), cm[r][c],
                         "cm[%zu][%zu]", r, c);
    json_decref(j);
}

/* precision_recall_fscore_support's documented example: y_true [cat, dog,
 * pig, cat, dog, pig], y_pred [cat, pig, dog, cat, cat, dog]: macro
 * (0.22, 0.33, 0.26), micro (0.33, 0.33, 0.33), weighted (0.22, 0.33,
 * 0.26); per class cat (0.66, 1, 0.8), dog and pig 0. */
Test(eval_cli, precision_recall_fscore_support_example_each_average)
{
    put(T, "cat\ndog\npig\ncat\ndog\npig\n");
    put(P, "cat\npig\ndog\ncat\ncat\ndog\n");
    json_t *j = eval_json("--average", "weighted");
    cr_assert_str_eq(json_string_value(json_object_get(j, "average")), "weighted");
    NEAR(num(j, "macro.precision"), 2.0 / 9);
    NEAR(num(j, "macro.recall"), 1.0 / 3);
    NEAR(num(j, "macro.f1"), 0.8 / 3);
    NEAR(num(j, "micro.precision"), 1.0 / 3);
    NEAR(num(j, "micro.recall"), 1.0 / 3);
    NEAR(num(j, "micro.f1"), 1.0 / 3);
    NEAR(num(j, "weighted.precision"), 2.0 / 9);
    NEAR(num(j, "weighted.recall"), 1.0 / 3);
    NEAR(num(j, "weighted.f1"), 0.8 / 3);
    json_t *cat = json_array_get(json_object_get(j, "classes"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(cat, "label")), "cat");
    NEAR(num(cat, "precision"), 2.0 / 3);
    NEAR(num(cat, "f1"), 0.8);
    json_decref(j);
}

Test(eval_cli, zero_division_is_zero_with_a_warning_naming_the_class)
{
    char *out = NULL, *err = NULL;
    put(T, "a\na\nb\n");
    put(P, "a\na\nc\n");
    cr_assert_eq(eval(&out, &err, NULL, NULL, NULL, NULL), 0, "%s", err);
    cr_assert(strstr(err, "class \"b\" is never predicted: its precision is 0/0, taken as 0"), "%s",
              err);
    cr_assert(strstr(err, "class \"c\" has no true sample: its recall is 0/0, taken as 0"), "%s",
              err);
    cr_assert(strstr(out, "not logged: no --run"), "%s", out);
    free(out);
    free(err);
    json_t *j = eval_json(NULL, NULL);
    json_t *b = json_array_get(json_object_get(j, "classes"), 1);
    NEAR(num(b, "precision"), 0.0);
    cr_assert(json_is_true(json_object_get(b, "zero_division")));
    NEAR(num(j, "accuracy"), 2.0 / 3);
    json_decref(j);
}

Test(eval_cli, with_a_run_logs_metrics_and_the_matrix_artifact)
{
    struct track_run_opts ro = {.experiment = "eval", .name = "iris"};
    struct track_err e = {0};
    track_run_id id;
    char hex[33], *out = NULL, *err = NULL, csv[400];
    cr_assert_eq(track_run_start(C, &ro, &id, &e), 0, "%s", e.msg);
    track_run_id_hex(&id, hex);
    put(T, "setosa\nversicolor\nvirginica\nvirginica\n");
    put(P, "setosa\nvirginica\nvirginica\nvirginica\n");
    cr_assert_eq(eval(&out, &err, "--run", hex, "--step", "7"), 0, "%s", err);
    cr_assert(strstr(out, "logged 13 metrics (macro average) and eval/confusion_matrix.csv"), "%s",
              out);
    free(out);
    free(err);

    int64_t steps[4];
    cr_assert_eq(fx_metric_steps(&D, hex, "eval.accuracy", steps, 4), 1);
    cr_assert_eq(steps[0], 7);
    cr_assert_eq(fx_metric_steps(&D, hex, "eval.f1.virginica", steps, 4), 1);
    cr_assert_eq(fx_metric_steps(&D, hex, "eval.precision", steps, 4), 1);

    snprintf(csv, sizeof csv, "%s/cm.csv", D.dir);
    out = NULL;
    err = NULL;
    int rc = fx_track(&D, NULL, NULL, &out, &err, "artifact", "get", hex,
                      "eval/confusion_matrix.csv", "-o", csv, NULL);
    cr_assert_eq(rc, 0, "%s", err);
    free(out);
    free(err);
    char *text = fx_read_text(csv);
    cr_assert_str_eq(text, "true\\predicted,setosa,versicolor,virginica\n"
                           "setosa,1,0,0\n"
                           "versicolor,0,0,1\n"
                           "virginica,0,0,2\n");
    free(text);
}

Test(eval_cli, csv_columns_with_bom_and_crlf_are_read)
{
    put(T, "\xEF\xBB\xBFid,species\r\n1,setosa\r\n2,\"vir, ginica\"\r\n3,setosa\r\n");
    put(P, "id,species,score\n1,setosa,0.9\n2,setosa,0.4\n3,setosa,0.8\n\n");
    json_t *j = eval_json("--column", "species");
    NEAR(num(j, "accuracy"), 2.0 / 3);
    json_t *cls = json_object_get(j, "classes");
    cr_assert_eq(json_array_size(cls), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cls, 1), "label")),
                     "vir, ginica", "quoted field with a comma");
    json_decref(j);
}

Test(eval_cli, one_csv_holds_labels_and_predictions)
{
    char *out = NULL, *err = NULL;
    put(T, "true,predicted\nsetosa,setosa\nvirginica,versicolor\nversicolor,versicolor\n");
    int rc =
        fx_track(&D, NULL, NULL, &out, &err, "eval", "--json", "--labels", T, "--labels-column",
                 "true", "--predictions", T, "--predictions-column", "predicted", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert_not_null(j, "%s", out);
    NEAR(num(j, "accuracy"), 2.0 / 3);
    cr_assert_eq(json_integer_value(json_object_get(j, "samples")), 3);
    json_decref(j);
    free(out);
    free(err);
}

static void refused(int want, const char *needle, const char *a1, const char *a2)
{
    char *out = NULL, *err = NULL;
    int rc = eval(&out, &err, a1, a2, NULL, NULL);
    cr_assert_eq(rc, want, "exit %d (want %d), stderr: %s", rc, want, err);
    cr_assert(strstr(err, needle), "stderr lacks \"%s\": %s", needle, err);
    free(out);
    free(err);
}

Test(eval_cli, bad_input_is_named_by_file_and_line)
{
    char msg[1200];

    put(T, "a\nb\n");
    put(P, "a\n");
    snprintf(msg, sizeof msg, "%s has 2 labels but %s has 1", T, P);
    refused(1, msg, NULL, NULL);

    put(P, "");
    snprintf(msg, sizeof msg, "%s: no labels", P);
    refused(1, msg, NULL, NULL);

    put(P, "a\n\nb\n");
    snprintf(msg, sizeof msg, "%s line 2: empty line before more labels", P);
    refused(1, msg, NULL, NULL);

    put(P, "a\nb\x07\n");
    snprintf(msg, sizeof msg, "%s line 2: label holds control character 0x07", P);
    refused(1, msg, NULL, NULL);

    put(T, "x,y\n1,a\n2,b\n");
    put(P, "x,y\n1,a\n2,b,extra\n");
    snprintf(msg, sizeof msg, "%s line 3: 3 fields, the header has 2", P);
    refused(1, msg, "--column", "y");

    snprintf(msg, sizeof msg, "%s: no column \"z\"; the header has: x, y", T);
    refused(1, msg, "--column", "z");

    put(P, "x,y\n1,\"a\n");
    snprintf(msg, sizeof msg, "%s line 2: a quote that does not close", P);
    refused(1, msg, "--column", "y");

    refused(2, "--average: \"median\"; expected macro, micro or weighted", "--average", "median");

    char *out = NULL, *err = NULL;
    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "eval", "--labels", T, NULL), 2);
    cr_assert(strstr(err, "both --labels FILE and --predictions FILE are needed"), "%s", err);
    free(out);
    free(err);
    snprintf(msg, sizeof msg, "%s/missing.txt", D.dir);
    cr_assert_eq(
        fx_track(&D, NULL, NULL, &out, &err, "eval", "--labels", msg, "--predictions", P, NULL), 1);
    cr_assert(strstr(err, "cannot open") && strstr(err, "missing.txt"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "eval", "--help", NULL), 0);
    cr_assert(strstr(out, "scikit-learn") && strstr(out, "--average"), "%s", out);
    free(out);
    free(err);
}

/* The softmax example end to end: trained for a few epochs under `track
 * exec`, its weights stored, its validation predictions written by
 * --eval --predictions and scored by `track eval` into its run. */
Test(eval_cli, the_softmax_example_is_tracked_and_its_predictions_evaluated)
{
    char w[400], csv[400], data[400], *out = NULL, *err = NULL;
    snprintf(w, sizeof w, "%s/w.txt", D.dir);
    snprintf(csv, sizeof csv, "%s/val.csv", D.dir);
    snprintf(data, sizeof data, "%s/examples/data/iris.csv", TRACK_SOURCE_DIR);
    int rc = fx_track(&D, NULL, NULL, &out, &err, "exec", "--experiment", "iris", "--name", "ci",
                      "--", TRAIN_SOFTMAX_BIN, "--data", data, "--epochs", "20", "--seed", "2",
                      "--save", w, NULL);
    cr_assert_eq(rc, 0, "%s\n%s", out, err);
    const char *p = strstr(out, "run ");
    cr_assert_not_null(p, "%s", out);
    char run[33];
    memcpy(run, p + 4, 32);
    run[32] = '\0';
    free(out);
    free(err);
    int64_t steps[32];
    cr_assert_eq(fx_metric_steps(&D, run, "val_loss", steps, 32), 20, "a val_loss per epoch");
    const char *argv[] = {TRAIN_SOFTMAX_BIN, "--data", data, "--seed", "2", "--eval", w,
                          "--predictions",   csv,      NULL};
    out = err = NULL;
    cr_assert_eq(fx_run(argv, NULL, NULL, &out, &err), 0, "%s", err);
    free(out);
    free(err);
    out = err = NULL;
    rc = fx_track(&D, NULL, NULL, &out, &err, "eval", "--run", run, "--labels", csv,
                  "--labels-column", "true", "--predictions", csv, "--predictions-column",
                  "predicted", NULL);
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert(strstr(out, "logged 13 metrics"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(fx_metric_steps(&D, run, "eval.accuracy", steps, 32), 1);
    out = err = NULL;
    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "artifact", "list", run, NULL), 0);
    cr_assert(strstr(out, "model/weights.txt") && strstr(out, "eval/confusion_matrix.csv"), "%s",
              out);
    free(out);
    free(err);
}
