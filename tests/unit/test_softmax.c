/*
 * test_softmax.c: unit tests of examples/softmax.c, the model behind the
 * train_softmax example: CSV loading and its rejections, the seeded PRNG
 * and split, training on iris and wine, and the metrics. No daemon.
 *
 * Needs the track_softmax library and examples/ on the include path. Data
 * files are found under TRACK_SOURCE_DIR (defined by tests/CMakeLists.txt;
 * "." when built by hand from the repository root).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "softmax.h"

#ifndef TRACK_SOURCE_DIR
#define TRACK_SOURCE_DIR "."
#endif
#define IRIS TRACK_SOURCE_DIR "/examples/data/iris.csv"
#define WINE TRACK_SOURCE_DIR "/examples/data/wine_data.csv"

/* ---- helpers ---------------------------------------------------------------- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_softmax.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/data.csv", tmpdir);
    unlink(p);
    rmdir(tmpdir);
}

/* Writes `text` to a file in tmpdir and tries to load it; returns the code
 * and leaves the message in *err. */
static int load_text(const char *text, struct sm_dataset **d, struct sm_err *err)
{
    char p[128];
    snprintf(p, sizeof p, "%s/data.csv", tmpdir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    memset(err, 0, sizeof *err);
    return sm_dataset_load(p, d, err);
}

static void expect_rejected(const char *text, int code, const char *needle)
{
    struct sm_dataset *d = (struct sm_dataset *)1;
    struct sm_err err;
    int rc = load_text(text, &d, &err);
    cr_expect_eq(rc, code, "rc %d for %s (msg: %s)", rc, text, err.msg);
    cr_expect_eq(err.code, code);
    cr_expect_null(d, "*out stays NULL on failure");
    cr_expect_not_null(strstr(err.msg, needle), "message '%s' should contain '%s'", err.msg,
                       needle);
}

static struct sm_dataset *load_ok(const char *path)
{
    struct sm_dataset *d = NULL;
    struct sm_err err = {0};
    int rc = sm_dataset_load(path, &d, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    cr_assert_not_null(d);
    return d;
}

/* Trains for `epochs` epochs; records the training loss after each. */
static struct sm_trainer *train(const struct sm_dataset *d, const struct sm_config *cfg,
                                double *train_loss)
{
    struct sm_trainer *t = NULL;
    struct sm_err err = {0};
    cr_assert_eq(sm_trainer_new(d, cfg, &t, &err), 0, "%s", err.msg);
    for (int e = 0; e < cfg->epochs; e++) {
        struct sm_metrics m;
        cr_assert_eq(sm_train_epoch(t, NULL, NULL, &err), 0, "%s", err.msg);
        sm_evaluate(t, SM_TRAIN, &m);
        if (train_loss)
            train_loss[e] = m.loss;
    }
    return t;
}

/* ---- loading ----------------------------------------------------------------- */

Test(load, iris_has_150_rows_4_features_3_classes)
{
    struct sm_dataset *d = load_ok(IRIS);
    cr_expect_eq(d->n_rows, 150);
    cr_expect_eq(d->n_features, 4);
    cr_expect_eq(d->n_classes, 3);
    cr_expect_str_eq(d->class_names[0], "setosa");
    cr_expect_str_eq(d->class_names[2], "virginica");
    cr_expect_float_eq(d->x[0], 5.1, 1e-12);
    cr_expect_float_eq(d->x[149 * 4 + 3], 1.8, 1e-12);
    size_t per_class[3] = {0};
    for (size_t i = 0; i < d->n_rows; i++)
        per_class[d->y[i]]++;
    cr_expect_eq(per_class[0], 50);
    cr_expect_eq(per_class[1], 50);
    cr_expect_eq(per_class[2], 50);
    sm_dataset_free(d);
}

Test(load, wine_has_178_rows_13_features_3_classes)
{
    struct sm_dataset *d = load_ok(WINE);
    cr_expect_eq(d->n_rows, 178);
    cr_expect_eq(d->n_features, 13);
    cr_expect_eq(d->n_classes, 3);
    cr_expect_str_eq(d->class_names[1], "class_1");
    sm_dataset_free(d);
}

Test(load, crlf_and_trailing_empty_lines_are_accepted, .init = make_tmpdir, .fini = remove_tmpdir)
{
    struct sm_dataset *d = NULL;
    struct sm_err err;
    cr_assert_eq(load_text("2,1,a,b\r\n1.5,0\r\n-2e1,1\r\n\n\n", &d, &err), 0, "%s", err.msg);
    cr_expect_eq(d->n_rows, 2);
    cr_expect_float_eq(d->x[1], -20.0, 1e-12);
    cr_expect_eq(d->y[1], 1);
    sm_dataset_free(d);
}

Test(load, missing_file_is_an_io_error)
{
    struct sm_dataset *d = NULL;
    struct sm_err err = {0};
    cr_expect_eq(sm_dataset_load("/nonexistent/x.csv", &d, &err), SM_E_IO);
    cr_expect_not_null(strstr(err.msg, "/nonexistent/x.csv"));
    cr_expect_null(d);
}

Test(load, malformed_feature_is_rejected_naming_the_line, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    expect_rejected("3,2,a,b\n1.0,2.0,0\n1.0,oops,1\n3.0,4.0,1\n", SM_E_FORMAT, "line 3");
    expect_rejected("3,2,a,b\n1.0,2.0,0\n1.0,oops,1\n3.0,4.0,1\n", SM_E_FORMAT, "oops");
}

Test(load, malformed_lines_are_rejected, .init = make_tmpdir, .fini = remove_tmpdir)
{
    /* header */
    expect_rejected("", SM_E_FORMAT, "line 1: missing header");
    expect_rejected("x,2,a,b\n", SM_E_FORMAT, "line 1");
    expect_rejected("2,0,a,b\n", SM_E_FORMAT, "line 1");
    expect_rejected("2,2,a\n", SM_E_FORMAT, "at least 2");
    expect_rejected("2,2,a,,c\n", SM_E_FORMAT, "class name 1 is empty");
    /* rows */
    expect_rejected("2,2,a,b\n1,2,0\n1,2\n", SM_E_FORMAT, "line 3");
    expect_rejected("2,2,a,b\n1,2,0\n1,2,0,7\n", SM_E_FORMAT, "line 3: more than 3 fields");
    expect_rejected("2,2,a,b\n1,2,0\n1,2,2\n", SM_E_FORMAT, "line 3: class 2 is outside 0..1");
    expect_rejected("2,2,a,b\n1,2,-1\n1,2,0\n", SM_E_FORMAT, "line 2: class -1");
    expect_rejected("2,2,a,b\n1,2,0.5\n1,2,0\n", SM_E_FORMAT, "line 2: class '0.5'");
    expect_rejected("2,2,a,b\n1,nan,0\n1,2,0\n", SM_E_FORMAT, "line 2: feature 2");
    expect_rejected("2,2,a,b\n1,1e999,0\n1,2,0\n", SM_E_FORMAT, "line 2: feature 2");
    expect_rejected("2,2,a,b\n1,,0\n1,2,0\n", SM_E_FORMAT, "line 2: feature 2");
    expect_rejected("2,2,a,b\n1,2,0\n\n1,2,1\n", SM_E_FORMAT, "line 3");
    /* row count */
    expect_rejected("3,2,a,b\n1,2,0\n1,2,1\n", SM_E_FORMAT, "file ends after 2 of the header's 3");
    expect_rejected("1,2,a,b\n1,2,0\n1,2,1\n", SM_E_FORMAT, "line 3: more rows than");
}

Test(load, sizes_over_the_caps_are_rejected_before_allocating, .init = make_tmpdir,
     .fini = remove_tmpdir)
{
    expect_rejected("100001,2,a,b\n", SM_E_LIMIT, "cap");
    expect_rejected("10,1025,a,b\n", SM_E_LIMIT, "cap");
    expect_rejected("100000,1000,a,b\n", SM_E_LIMIT, "cap");
    expect_rejected("99999999999999999999999,2,a,b\n", SM_E_FORMAT, "line 1");
}

Test(load, overlong_line_is_rejected, .init = make_tmpdir, .fini = remove_tmpdir)
{
    size_t n = SM_MAX_LINE + 100;
    char *text = malloc(n + 32);
    cr_assert_not_null(text);
    int off = snprintf(text, 32, "1,1,a,b\n");
    memset(text + off, '1', n);
    text[off + n] = '\0';
    expect_rejected(text, SM_E_FORMAT, "line 2: longer than");
    free(text);
}

/* ---- PRNG and split ------------------------------------------------------- */

Test(rng, same_seed_gives_same_sequence_and_below_stays_in_range)
{
    struct sm_rng a, b;
    sm_rng_seed(&a, 42);
    sm_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(sm_rng_next(&a), sm_rng_next(&b));
    size_t hist[7] = {0};
    for (int i = 0; i < 7000; i++) {
        size_t v = sm_rng_below(&a, 7);
        cr_assert_lt(v, 7);
        hist[v]++;
    }
    for (int i = 0; i < 7; i++)
        cr_expect(hist[i] > 800 && hist[i] < 1200, "bucket %d has %zu", i, hist[i]);
}

Test(rng, shuffle_is_a_permutation)
{
    struct sm_rng r;
    size_t idx[50], seen[50] = {0};
    sm_rng_seed(&r, 7);
    for (size_t i = 0; i < 50; i++)
        idx[i] = i;
    sm_rng_shuffle(&r, idx, 50);
    for (size_t i = 0; i < 50; i++)
        seen[idx[i]]++;
    for (size_t i = 0; i < 50; i++)
        cr_assert_eq(seen[i], 1);
}

Test(split, iris_split_is_stratified_80_20_and_standardized_on_train)
{
    struct sm_dataset *d = load_ok(IRIS);
    struct sm_config cfg;
    struct sm_trainer *t = NULL;
    struct sm_err err = {0};
    sm_config_default(&cfg);
    cr_assert_eq(sm_trainer_new(d, &cfg, &t, &err), 0, "%s", err.msg);
    cr_expect_eq(t->n_train, 120);
    cr_expect_eq(t->n_val, 30);
    size_t per_class[3] = {0};
    for (size_t i = 0; i < t->n_val; i++)
        per_class[t->y_val[i]]++;
    for (int c = 0; c < 3; c++)
        cr_expect_eq(per_class[c], 10, "class %d has %zu validation rows", c, per_class[c]);
    for (size_t j = 0; j < t->n_features; j++) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < t->n_train; i++)
            mean += t->x_train[i * t->n_features + j];
        mean /= (double)t->n_train;
        for (size_t i = 0; i < t->n_train; i++) {
            double dv = t->x_train[i * t->n_features + j] - mean;
            var += dv * dv;
        }
        var /= (double)t->n_train;
        cr_expect_float_eq(mean, 0.0, 1e-9, "feature %zu mean %g", j, mean);
        cr_expect_float_eq(var, 1.0, 1e-9, "feature %zu variance %g", j, var);
    }
    sm_trainer_free(t);
    sm_dataset_free(d);
}

Test(split, bad_configuration_is_rejected)
{
    struct sm_dataset *d = load_ok(IRIS);
    struct sm_trainer *t = (struct sm_trainer *)1;
    struct sm_config cfg;
    struct sm_err err = {0};
    sm_config_default(&cfg);
    cfg.momentum = 1.0;
    cr_expect_eq(sm_trainer_new(d, &cfg, &t, &err), SM_E_ARG);
    cr_expect_null(t);
    cr_expect_not_null(strstr(err.msg, "momentum"));
    sm_config_default(&cfg);
    cfg.lr = -1;
    cr_expect_eq(sm_trainer_new(d, &cfg, &t, &err), SM_E_ARG);
    sm_config_default(&cfg);
    cfg.val_fraction = 0.001; /* no class gets a validation row */
    cr_expect_eq(sm_trainer_new(d, &cfg, &t, &err), SM_E_ARG);
    sm_dataset_free(d);
}

/* ---- training ---------------------------------------------------------------- */

Test(train, iris_lr_0_1_100_epochs_reaches_90_percent_and_loss_decreases)
{
    struct sm_dataset *d = load_ok(IRIS);
    struct sm_config cfg;
    double loss[100];
    struct sm_metrics m0, val, tr;
    struct sm_trainer *t = NULL;
    struct sm_err err = {0};

    sm_config_default(&cfg);
    cfg.lr = 0.1;
    cfg.epochs = 100;
    cfg.seed = 1; /* 30 validation rows: 27 right is exactly 0.9 */
    cr_assert_eq(sm_trainer_new(d, &cfg, &t, &err), 0, "%s", err.msg);
    sm_evaluate(t, SM_TRAIN, &m0);
    cr_expect_float_eq(m0.loss, log(3.0), 1e-12, "zero weights give ln(K)");
    sm_trainer_free(t);

    t = train(d, &cfg, loss);
    sm_evaluate(t, SM_VAL, &val);
    sm_evaluate(t, SM_TRAIN, &tr);
    cr_expect_geq(val.accuracy, 0.9 - 1e-12, "validation accuracy %.3f", val.accuracy);
    cr_expect_geq(val.f1, 0.85, "validation F1 %.6f", val.f1);
    cr_expect_eq(val.n, 30);
    cr_expect_lt(loss[0], m0.loss);
    cr_expect_lt(loss[99], loss[0] * 0.5, "loss %g -> %g", loss[0], loss[99]);
    cr_expect_lt(loss[99], loss[9]);
    cr_expect_eq(t->epoch, 100);
    cr_expect_eq(t->step, 100 * 8, "120 rows in batches of 16: 8 steps an epoch");
    sm_trainer_free(t);
    sm_dataset_free(d);
}

Test(train, wine_with_momentum_reaches_90_percent)
{
    struct sm_dataset *d = load_ok(WINE);
    struct sm_config cfg;
    struct sm_metrics val;
    sm_config_default(&cfg);
    cfg.lr = 0.05;
    cfg.momentum = 0.9;
    cfg.epochs = 50;
    struct sm_trainer *t = train(d, &cfg, NULL);
    sm_evaluate(t, SM_VAL, &val);
    cr_expect_geq(val.accuracy, 0.9 - 1e-12, "validation accuracy %.3f", val.accuracy);
    sm_trainer_free(t);
    sm_dataset_free(d);
}

Test(train, learning_rate_0_leaves_the_loss_unchanged)
{
    struct sm_dataset *d = load_ok(IRIS);
    struct sm_config cfg;
    double loss[20];
    struct sm_metrics m0;
    struct sm_trainer *t = NULL;
    struct sm_err err = {0};

    sm_config_default(&cfg);
    cfg.lr = 0.0;
    cfg.momentum = 0.9;
    cfg.l2 = 0.01;
    cfg.epochs = 20;
    cr_assert_eq(sm_trainer_new(d, &cfg, &t, &err), 0, "%s", err.msg);
    sm_evaluate(t, SM_TRAIN, &m0);
    sm_trainer_free(t);
    t = train(d, &cfg, loss);
    for (int e = 0; e < 20; e++)
        cr_expect_eq(loss[e], m0.loss, "epoch %d: %.17g != %.17g", e, loss[e], m0.loss);
    sm_trainer_free(t);
    sm_dataset_free(d);
}

struct batch_log {
    int64_t last_step;
    int calls;
    int stop_at;
};

static int on_batch(void *ud, int64_t step, double batch_loss)
{
    struct batch_log *bl = ud;
    cr_expect_eq(step, bl->last_step + 1);
    cr_expect(isfinite(batch_loss) && batch_loss >= 0);
    bl->last_step = step;
    bl->calls++;
    return bl->calls == bl->stop_at ? 99 : 0;
}

Test(train, batch_callback_sees_every_step_and_can_stop_the_epoch)
{
    struct sm_dataset *d = load_ok(IRIS);
    struct sm_config cfg;
    struct sm_trainer *t = NULL;
    struct sm_err err = {0};
    struct batch_log bl = {0, 0, 0};

    sm_config_default(&cfg);
    cfg.batch = 50; /* 120 rows: 50 + 50 + 20 */
    cr_assert_eq(sm_trainer_new(d, &cfg, &t, &err), 0, "%s", err.msg);
    cr_expect_eq(sm_train_epoch(t, on_batch, &bl, &err), 0);
    cr_expect_eq(sm_train_epoch(t, on_batch, &bl, &err), 0);
    cr_expect_eq(bl.calls, 6);
    cr_expect_eq(t->step, 6);
    bl.stop_at = 8;
    cr_expect_eq(sm_train_epoch(t, on_batch, &bl, &err), 99);
    cr_expect_eq(t->epoch, 2, "a stopped epoch is not counted");
    sm_trainer_free(t);
    sm_dataset_free(d);
}

Test(train, huge_learning_rate_never_yields_a_silent_nan)
{
    /* With standardized inputs and a stable log-sum-exp, even a silly rate
     * must never produce NaN silently: either finite or SM_E_DIVERGED. */
    struct sm_dataset *d = load_ok(WINE);
    struct sm_config cfg;
    struct sm_trainer *t = NULL;
    struct sm_err err = {0};
    sm_config_default(&cfg);
    cfg.lr = 1e6;
    cfg.momentum = 0.99;
    cr_assert_eq(sm_trainer_new(d, &cfg, &t, &err), 0, "%s", err.msg);
    for (int e = 0; e < 50; e++) {
        int rc = sm_train_epoch(t, NULL, NULL, &err);
        if (rc != 0) {
            cr_expect_eq(rc, SM_E_DIVERGED);
            cr_expect_not_null(strstr(err.msg, "diverged"));
            break;
        }
        struct sm_metrics m;
        sm_evaluate(t, SM_TRAIN, &m);
        cr_expect(!isnan(m.accuracy));
    }
    sm_trainer_free(t);
    sm_dataset_free(d);
}

Test(train, same_seed_gives_identical_results_and_another_seed_differs)
{
    struct sm_dataset *d = load_ok(IRIS);
    struct sm_config cfg;
    double la[30], lb[30], lc[30];
    sm_config_default(&cfg);
    cfg.epochs = 30;
    cfg.momentum = 0.5;
    cfg.seed = 1234;
    struct sm_trainer *a = train(d, &cfg, la);
    struct sm_trainer *b = train(d, &cfg, lb);
    cfg.seed = 1235;
    struct sm_trainer *c = train(d, &cfg, lc);

    cr_expect_eq(memcmp(la, lb, sizeof la), 0);
    cr_expect_eq(memcmp(a->w, b->w, a->n_classes * a->n_features * sizeof(double)), 0);
    cr_expect_eq(memcmp(a->y_val, b->y_val, a->n_val * sizeof(int)), 0);
    struct sm_metrics ma, mb;
    sm_evaluate(a, SM_VAL, &ma);
    sm_evaluate(b, SM_VAL, &mb);
    cr_expect_eq(ma.loss, mb.loss);
    cr_expect_eq(ma.f1, mb.f1);
    cr_expect_neq(memcmp(a->x_val, c->x_val, a->n_val * a->n_features * sizeof(double)), 0,
                  "another seed picks another validation set");
    sm_trainer_free(a);
    sm_trainer_free(b);
    sm_trainer_free(c);
    sm_dataset_free(d);
}

/* ---- metrics ---------------------------------------------------------------- */

Test(metrics, hand_made_confusion_matrix_gives_hand_computed_scores)
{
    /* rows: true class, columns: predicted
     *   5 1 0      class 0: P 5/7  R 5/6  F1 10/13
     *   2 3 1      class 1: P 3/4  R 1/2  F1 3/5
     *   0 0 4      class 2: P 4/5  R 1    F1 8/9 */
    const size_t cm[9] = {5, 1, 0, 2, 3, 1, 0, 0, 4};
    struct sm_metrics m = {.loss = 7.0};
    sm_metrics_from_confusion(cm, 3, &m);
    cr_expect_eq(m.n, 16);
    cr_expect_float_eq(m.accuracy, 12.0 / 16.0, 1e-12);
    cr_expect_float_eq(m.precision, (5.0 / 7 + 3.0 / 4 + 4.0 / 5) / 3, 1e-12);
    cr_expect_float_eq(m.recall, (5.0 / 6 + 1.0 / 2 + 1.0) / 3, 1e-12);
    cr_expect_float_eq(m.f1, (10.0 / 13 + 3.0 / 5 + 8.0 / 9) / 3, 1e-12);
    cr_expect_eq(m.loss, 7.0, "loss is not touched");
}

Test(metrics, never_predicted_class_counts_as_zero_and_absent_class_is_skipped)
{
    /* class 0: P 2/3 R 1 F1 0.8; class 1: never predicted, P 0 R 0 F1 0;
     * class 2: neither true nor predicted, left out of the macro average. */
    const size_t cm[9] = {2, 0, 0, 1, 0, 0, 0, 0, 0};
    struct sm_metrics m;
    sm_metrics_from_confusion(cm, 3, &m);
    cr_expect_float_eq(m.accuracy, 2.0 / 3, 1e-12);
    cr_expect_float_eq(m.precision, (2.0 / 3) / 2, 1e-12);
    cr_expect_float_eq(m.recall, 1.0 / 2, 1e-12);
    cr_expect_float_eq(m.f1, 0.8 / 2, 1e-12);
}

Test(metrics, perfect_and_empty_matrices)
{
    const size_t perfect[4] = {3, 0, 0, 4}, empty[4] = {0, 0, 0, 0};
    struct sm_metrics m;
    sm_metrics_from_confusion(perfect, 2, &m);
    cr_expect_eq(m.accuracy, 1.0);
    cr_expect_eq(m.precision, 1.0);
    cr_expect_eq(m.recall, 1.0);
    cr_expect_eq(m.f1, 1.0);
    sm_metrics_from_confusion(empty, 2, &m);
    cr_expect_eq(m.n, 0);
    cr_expect_eq(m.accuracy, 0.0);
    cr_expect_eq(m.f1, 0.0);
}

/* ---- the model as a file ---------------------------------------------------- */

static void remove_model_files(void)
{
    char p[160];
    snprintf(p, sizeof p, "%s/model.txt", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/model.txt.tmp", tmpdir);
    unlink(p);
    remove_tmpdir();
}

Test(model, saved_and_loaded_into_a_fresh_trainer_scores_the_same_bits, .init = make_tmpdir,
     .fini = remove_model_files)
{
    struct sm_dataset *d = load_ok(IRIS);
    struct sm_config cfg;
    double loss[30];
    struct sm_metrics a, b;
    struct sm_trainer *fresh = NULL;
    struct sm_err err = {0};
    char path[160];

    sm_config_default(&cfg);
    cfg.lr = 0.5;
    cfg.epochs = 30;
    cfg.seed = 2;
    struct sm_trainer *t = train(d, &cfg, loss);
    sm_evaluate(t, SM_VAL, &a);
    snprintf(path, sizeof path, "%s/model.txt", tmpdir);
    cr_assert_eq(sm_model_save(t, path, &err), 0, "%s", err.msg);

    cr_assert_eq(sm_trainer_new(d, &cfg, &fresh, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_model_load(fresh, path, &err), 0, "%s", err.msg);
    cr_assert_eq(memcmp(fresh->w, t->w, t->n_features * t->n_classes * sizeof(double)), 0,
                 "weights differ after a round trip");
    cr_assert_eq(memcmp(fresh->b, t->b, t->n_classes * sizeof(double)), 0);
    sm_evaluate(fresh, SM_VAL, &b);
    cr_assert_eq(memcmp(&a.loss, &b.loss, sizeof(double)), 0, "loss %.17g vs %.17g", a.loss,
                 b.loss);
    cr_assert_eq(a.accuracy, b.accuracy);
    cr_assert_eq(a.f1, b.f1);
    sm_trainer_free(fresh);
    sm_trainer_free(t);
    sm_dataset_free(d);
}

Test(model, another_split_or_a_damaged_file_is_refused_and_leaves_the_trainer_alone,
     .init = make_tmpdir, .fini = remove_model_files)
{
    struct sm_dataset *d = load_ok(IRIS);
    struct sm_config cfg;
    double loss[5];
    struct sm_trainer *other = NULL;
    struct sm_err err = {0};
    char path[160];

    sm_config_default(&cfg);
    cfg.epochs = 5;
    cfg.seed = 2;
    struct sm_trainer *t = train(d, &cfg, loss);
    snprintf(path, sizeof path, "%s/model.txt", tmpdir);
    cr_assert_eq(sm_model_save(t, path, &err), 0, "%s", err.msg);

    cfg.seed = 3; /* another split: another standardization */
    cr_assert_eq(sm_trainer_new(d, &cfg, &other, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_model_load(other, path, &err), SM_E_ARG);
    cr_assert(strstr(err.msg, "another training split"), "%s", err.msg);
    for (size_t i = 0; i < other->n_features * other->n_classes; i++)
        cr_assert_eq(other->w[i], 0.0, "a refused load changed the weights");

    /* cut the file in the middle of a weight line */
    FILE *f = fopen(path, "r+");
    cr_assert_not_null(f);
    cr_assert_eq(ftruncate(fileno(f), 120), 0);
    fclose(f);
    cfg.seed = 2;
    sm_trainer_free(other);
    other = NULL;
    cr_assert_eq(sm_trainer_new(d, &cfg, &other, &err), 0, "%s", err.msg);
    int rc = sm_model_load(other, path, &err);
    cr_assert(rc == SM_E_FORMAT, "a cut file: %d %s", rc, err.msg);
    cr_assert(strstr(err.msg, "model.txt"), "the message names the file: %s", err.msg);
    sm_trainer_free(other);
    sm_trainer_free(t);
    sm_dataset_free(d);
}
