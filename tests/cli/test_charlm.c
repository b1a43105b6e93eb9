/*
 * test_charlm.c: the language-model example (examples/train_charlm.c) run
 * for a few hundred steps against a real trackd, as the README's demo runs
 * it: its params, metrics (the validation loss falls), vocabulary, model
 * and sample artifacts are all in the run; the model registered and
 * promoted, then a fine-tune with --init NAME@production on another word
 * list records the version's run as its parent and starts from its
 * weights (its first loss is far below a fresh model's); and the errors a
 * user meets are named.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon D;
static struct track_client *C;
static char words[400];

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    fx_daemon_client_start(&D, &C, 0);
    snprintf(words, sizeof words, "%s/other-words.txt", D.dir);
}

static void teardown(void)
{
    fx_daemon_client_cleanup(&D, &C);
}

TestSuite(charlm, .init = setup, .fini = teardown, .timeout = 240);

/* Runs train_charlm with args against D; its exit status, stdout, stderr. */
static int train(char **out, char **err, const char *const *args)
{
    const char *argv[40];
    char state[400];
    int n = 0;
    argv[n++] = TRAIN_CHARLM_BIN;
    argv[n++] = "--server";
    argv[n++] = D.uri;
    for (int i = 0; args[i] && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(state, sizeof state, "XDG_STATE_HOME=%s/state", D.dir);
    const char *env[] = {state, "TRACK_NO_AUTOSTART=1", NULL};
    return fx_run(argv, env, NULL, out, err);
}

/* The run id on the summary line "..., run HEX". */
static void run_of(const char *out, char hex[33])
{
    const char *p = strstr(out, ", run ");
    cr_assert_not_null(p, "no run id in:\n%s", out);
    memcpy(hex, p + 6, 32);
    hex[32] = '\0';
}

static const char *param(const struct track_run_info *r, const char *key)
{
    for (size_t i = 0; i < r->n_params; i++)
        if (strcmp(r->params[i].key, key) == 0)
            return r->params[i].value;
    return NULL;
}

static size_t history(const char *run, const char *key, double *v, size_t cap)
{
    struct track_result *res = NULL;
    const int64_t *steps, *times;
    const double *vals;
    size_t n = 0;
    int64_t next;
    int more;
    struct track_err err = {0};
    cr_assert_eq(track_metric_history(C, run, key, 0, 1000, &res, &steps, &times, &vals, &n, &next,
                                      &more, &err),
                 0, "%s: %s", key, err.msg);
    for (size_t i = 0; i < n && i < cap; i++)
        v[i] = vals[i];
    track_result_free(res);
    return n;
}

static int has_artifact(const char *run, const char *path)
{
    char *out = NULL, *err = NULL;
    int rc = fx_track(&D, NULL, NULL, &out, &err, "artifact", "list", run, NULL);
    cr_assert_eq(rc, 0, "%s", err);
    int yes = strstr(out, path) != NULL;
    free(out);
    free(err);
    return yes;
}

static const char *const BASE[] = {
    "--max-words", "4000",      "--steps", "300",          "--eval-every", "100",    "--batch",
    "32",          "--samples", "5",       "--experiment", "lm",           "--name", "base",
    "--seed",      "1",         NULL};

Test(charlm, a_short_run_is_tracked_whole_and_its_loss_falls)
{
    char *out = NULL, *err = NULL, run[33];
    int rc = train(&out, &err, BASE);
    cr_assert_eq(rc, 0, "exit %d\nstdout:\n%s\nstderr:\n%s", rc, out, err);
    run_of(out, run);

    struct track_result *res = NULL;
    struct track_run_info info;
    struct track_err e = {0};
    cr_assert_eq(track_run_get(C, run, &res, &info, &e), 0, "%s", e.msg);
    cr_assert_eq(info.status, TRACK_FINISHED);
    cr_assert_str_eq(param(&info, "context"), "3");
    cr_assert_str_eq(param(&info, "hidden"), "128");
    cr_assert_str_eq(param(&info, "optimizer"), "adam");
    cr_assert_str_eq(param(&info, "init"), "scratch");
    cr_assert_not_null(param(&info, "data.train_words"));
    cr_assert_eq(strtol(param(&info, "data.train_words"), NULL, 10) +
                     strtol(param(&info, "data.val_words"), NULL, 10),
                 4000);
    track_result_free(res);

    double v[8];
    cr_assert_eq(history(run, "val_loss", v, 8), 3, "val_loss at 100, 200, 300");
    cr_assert_lt(v[0], log(27.0), "below a uniform guess already: %g", v[0]);
    cr_assert_lt(v[2], v[0] - 0.05, "the loss falls: %g -> %g", v[0], v[2]);
    cr_assert_eq(history(run, "batch_loss", v, 8), 300, "every step");
    cr_assert_eq(history(run, "val_perplexity", v, 8), 3);
    cr_assert_eq(history(run, "tokens_per_s", v, 8), 3);
    cr_assert_eq(history(run, "final_val_loss", v, 8), 1);

    cr_assert(has_artifact(run, "data/vocab.txt"));
    cr_assert(has_artifact(run, "model/charlm.bin"));
    cr_assert(has_artifact(run, "samples/001.txt"));
    cr_assert(has_artifact(run, "samples/005.txt"));
    cr_assert(!has_artifact(run, "samples/006.txt"));
    free(out);
    free(err);
}

Test(charlm, fine_tuning_from_name_at_production_records_the_parent)
{
    char *out = NULL, *err = NULL, base[33], tuned[33];
    int rc = train(&out, &err, BASE);
    cr_assert_eq(rc, 0, "%s", err);
    run_of(out, base);
    free(out);
    free(err);

    /* a second word list that the base never saw, in its letters */
    const char *other[] = {"schreiben", "lesen",  "rechnen", "gehen", "stehen", "laufen",
                           "sprechen",  "denken", "machen",  "sagen", "haben",  "werden"};
    FILE *f = fopen(words, "w");
    cr_assert_not_null(f);
    for (int k = 0; k < 40; k++)
        for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
            fprintf(f, "%s\n", other[i]);
    fclose(f);

    out = err = NULL;
    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "model", "register", "charlm", "--run", base,
                          "--path", "model/charlm.bin", NULL),
                 0, "%s", err);
    free(out);
    free(err);
    out = err = NULL;
    cr_assert_eq(
        fx_track(&D, NULL, NULL, &out, &err, "model", "alias", "charlm", "production", "1", NULL),
        0, "%s", err);
    free(out);
    free(err);

    const char *tune[] = {"--data",
                          words,
                          "--init",
                          "charlm@production",
                          "--steps",
                          "100",
                          "--eval-every",
                          "50",
                          "--batch",
                          "32",
                          "--samples",
                          "2",
                          "--experiment",
                          "lm",
                          "--name",
                          "tuned",
                          NULL};
    out = err = NULL;
    rc = train(&out, &err, tune);
    cr_assert_eq(rc, 0, "exit %d\n%s\n%s", rc, out, err);
    cr_assert(strstr(out, "from charlm@production"), "%s", out);
    run_of(out, tuned);
    free(out);
    free(err);

    struct track_result *res = NULL;
    struct track_run_info info;
    struct track_err e = {0};
    cr_assert_eq(track_run_get(C, tuned, &res, &info, &e), 0, "%s", e.msg);
    cr_assert(info.has_parent, "the fine-tune has a parent");
    char ph[33];
    track_run_id_hex(&info.parent, ph);
    cr_assert_str_eq(ph, base, "its parent is the version's run");
    cr_assert_str_eq(param(&info, "init"), "charlm@production");
    cr_assert_str_eq(param(&info, "vocab_size"), "27", "the base's vocabulary");
    track_result_free(res);
    double v[4];
    cr_assert_eq(history(tuned, "batch_loss", v, 1), 100);
    cr_assert_lt(v[0], log(27.0) - 0.3, "the first step starts from trained weights: %g", v[0]);

    out = err = NULL;
    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "lineage", tuned, NULL), 0, "%s", err);
    cr_assert(strstr(out, base), "lineage names the base run:\n%s", out);
    free(out);
    free(err);
}

Test(charlm, errors_are_named)
{
    char *out = NULL, *err = NULL;
    const char *a1[] = {"--data", "/nonexistent/words", NULL};
    cr_assert_eq(train(&out, &err, a1), 1);
    cr_assert(strstr(err, "cannot open /nonexistent/words"), "%s", err);
    free(out);
    free(err);
    const char *a2[] = {"--init", "nosuch@production", "--steps", "1", NULL};
    out = err = NULL;
    cr_assert_eq(train(&out, &err, a2), 1);
    cr_assert(strstr(err, "nosuch"), "%s", err);
    free(out);
    free(err);
    const char *a3[] = {"--context", "99", NULL};
    out = err = NULL;
    cr_assert_eq(train(&out, &err, a3), 2);
    cr_assert(strstr(err, "--context"), "%s", err);
    free(out);
    free(err);
    const char *a4[] = {"--init-file", words, "--steps", "1", "--no-track", NULL};
    FILE *f = fopen(words, "w");
    fputs("not a model\n", f);
    fclose(f);
    out = err = NULL;
    cr_assert_eq(train(&out, &err, a4), 1);
    cr_assert(strstr(err, "not a charlm model file"), "%s", err);
    free(out);
    free(err);
}

/* The loop closes: samples scored by a judge script are kept with their
 * targets, summarised, and exported with the sample's text. */
Test(charlm, its_samples_are_rated_and_exported_with_their_text)
{
    char *out = NULL, *err = NULL, run[33], exp[400];
    cr_assert_eq(train(&out, &err, BASE), 0, "%s", err);
    run_of(out, run);
    free(out);
    free(err);
    for (int i = 1; i <= 5; i++) {
        char target[32];
        snprintf(target, sizeof target, "samples/%03d.txt", i);
        out = err = NULL;
        cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "feedback", "add", "--run", run,
                              "--target", target, "is_word", i % 2 ? "true" : "false", "--source",
                              "code", "--by", "dict-check", NULL),
                     0, "%s", err);
        free(out);
        free(err);
    }
    out = err = NULL;
    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "--json", "feedback", "summary", run, NULL),
                 0, "%s", err);
    cr_assert(strstr(out, "\"true_count\": 3"), "3 of 5 true:\n%s", out);
    free(out);
    free(err);
    snprintf(exp, sizeof exp, "%s/rated.jsonl", D.dir);
    out = err = NULL;
    cr_assert_eq(fx_track(&D, NULL, NULL, &out, &err, "feedback", "export", "--experiment", "lm",
                          "--format", "jsonl", "-o", exp, NULL),
                 0, "%s", err);
    free(out);
    free(err);
    char *text = fx_read_text(exp);
    cr_assert_eq(fx_count_of(text, "\n"), 5, "one record per rated sample:\n%s", text);
    cr_assert_eq(fx_count_of(text, "\"target\":\"samples/00"), 5, "%s", text);
    cr_assert_eq(fx_count_of(text, "\"text\":\""), 5, "each with its sample's text:\n%s", text);
    cr_assert(strstr(text, "\"hidden\":\"128\""), "with the run's params");
    free(text);
}
