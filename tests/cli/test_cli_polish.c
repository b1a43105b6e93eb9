/*
 * test_cli_polish.c: the `track` CLI as a new user meets it, run as the built
 * binary against a real trackd: --help on stdout with exit 0 for every
 * command and noun (and `track help filter`, which names every operator,
 * term and attribute of storage/filter.c), usage errors on stderr with exit
 * 2 naming the unknown option, command or verb with git's "did you mean",
 * numbers parsed strictly the same way everywhere, the warning when a write
 * lands in a run that has ended, the error alone when a metric is missing,
 * and tables that fit 80 and 200 columns: `run show` aligned at 6 digits,
 * `track runs` showing the params and metrics that differ (names cut in
 * the middle, 8-character ids), `track compare` of 6 runs transposed
 * rather than folded.
 *
 * Fixtures are made with libtrack (fast, deterministic) except where the
 * CLI's own path is what is tested.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon D;
static struct track_client *C;

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    unsetenv("COLUMNS");
    fx_daemon_client_start(&D, &C, 0);
}

static void teardown(void)
{
    fx_daemon_client_cleanup(&D, &C);
}

TestSuite(polish, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ---------------------------------------------------------------------- */

#define ENV(...) ((const char *const[]){__VA_ARGS__, NULL})

struct res {
    int rc;
    char *out, *err;
};

/* Runs `track --server URI args...` (NULL-terminated) with env and stdin. */
static struct res trk(const char *const *env, const char *in, ...)
{
    const char *args[32];
    struct res r = {0};
    va_list ap;
    size_t n = 0;

    va_start(ap, in);
    for (const char *a; n < 31 && (a = va_arg(ap, const char *)) != NULL;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    /* fx_track takes varargs: pass up to 12 through */
    cr_assert_leq(n, 12, "trk: too many arguments");
    const char *p[12] = {0};
    for (size_t i = 0; i < n; i++)
        p[i] = args[i];
    r.rc = fx_track(&D, env, in, &r.out, &r.err, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
                    p[8], p[9], p[10], p[11], NULL);
    cr_assert_not_null(r.out);
    cr_assert_not_null(r.err);
    return r;
}

#define T(...)           trk(NULL, NULL, __VA_ARGS__, NULL)
#define TE(env, in, ...) trk(env, in, __VA_ARGS__, NULL)

static void res_free(struct res *r)
{
    free(r->out);
    free(r->err);
}

/* Asserts a usage error: exit 2, nothing on stdout, stderr holding each of
 * the NULL-terminated needles. */
static void expect_usage(struct res r, ...)
{
    va_list ap;
    cr_assert_eq(r.rc, 2, "exit %d, want 2\nstdout: %s\nstderr: %s", r.rc, r.out, r.err);
    cr_assert_str_empty(r.out, "a usage error printed on stdout: %s", r.out);
    va_start(ap, r);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;)
        cr_assert_not_null(strstr(r.err, s), "stderr lacks \"%s\": %s", s, r.err);
    va_end(ap);
    res_free(&r);
}

/* Display columns of a UTF-8 line (code points). */
static size_t width_of(const char *s, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++)
        w += ((unsigned char)s[i] & 0xc0) != 0x80;
    return w;
}

/* Asserts every line of text is at most `width` columns; returns the lines. */
static size_t assert_lines_fit(const char *text, size_t width, const char *what)
{
    size_t lines = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        cr_assert_leq(width_of(p, len), width, "%s: line wider than %zu: [%.*s]\n%s", what, width,
                      (int)len, p, text);
        lines++;
        p += len + (e ? 1 : 0);
    }
    return lines;
}

/* The line of `text` starting with `prefix` (static copy), or NULL. */
static const char *line_of(const char *text, const char *prefix)
{
    static char buf[8192];
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            size_t l = strcspn(p, "\n");
            snprintf(buf, sizeof(buf), "%.*s", (int)l, p);
            return buf;
        }
    }
    return NULL;
}

#define KV(...) ((const struct track_kv[]){__VA_ARGS__})

static void run_start(const char *exp, const char *name, const struct track_kv *params, size_t np,
                      char hex[33])
{
    struct track_run_opts ro = {.experiment = exp, .name = name, .params = params, .n_params = np};
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "run start %s: %s", name, err.msg);
    track_run_id_hex(&id, hex);
}

static void point(const char *key, double v, int64_t step)
{
    struct track_err err = {0};
    cr_assert_eq(track_log_metric(C, key, v, step, 0, &err), 0, "%s", err.msg);
}

static void flush(void)
{
    struct track_err err = {0};
    cr_assert_eq(track_flush(C, &err), 0, "%s", err.msg);
}

static void run_end(void)
{
    struct track_err err = {0};
    cr_assert_eq(track_run_end(C, TRACK_FINISHED, &err), 0, "%s", err.msg);
}

static int64_t count_points(const char *hex, const char *key)
{
    struct track_result *res;
    struct track_run_info info;
    struct track_err err = {0};
    int64_t n = 0;
    cr_assert_eq(track_run_get(C, hex, &res, &info, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < info.n_metrics; i++)
        if (strcmp(info.metrics[i].key, key) == 0)
            n = info.metrics[i].count;
    track_result_free(res);
    return n;
}

/* ---- help ------------------------------------------------------------------------- */

static const char *const commands[] = {
    "experiment create",
    "experiment list",
    "run start",
    "run end",
    "run list",
    "run show",
    "log-param",
    "tag",
    "log-metric",
    "metric history",
    "exec",
    "runs",
    "compare",
    "watch",
    "export",
    "status",
    "sync",
    "backup",
};

Test(polish, help_of_every_command_is_on_stdout_exit_0_and_documents_each_option)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        char noun[32] = "", verb[32] = "", want[64];
        sscanf(commands[i], "%31s %31s", noun, verb);
        snprintf(want, sizeof(want), "usage: track %s", commands[i]);
        struct res r = verb[0] ? T(noun, verb, "--help") : T(noun, "--help");
        cr_assert_eq(r.rc, 0, "%s --help: exit %d: %s", commands[i], r.rc, r.err);
        cr_assert_str_empty(r.err, "%s --help wrote to stderr: %s", commands[i], r.err);
        cr_assert_not_null(strstr(r.out, want), "%s --help: %s", commands[i], r.out);
        char after = strstr(r.out, want)[strlen(want)];
        cr_assert(after == ' ' || after == '\n', "%s --help: %s", commands[i], r.out);
        const char *ex = strstr(r.out, "\nexamples:\n  ");
        cr_assert(ex && strstr(ex, "track "), "%s: no example: %s", commands[i], r.out);
        cr_assert_null(strstr(r.out, "(undocumented)"), "%s: an option without help: %s",
                       commands[i], r.out);
        /* every --option of the usage line has its own described line */
        const char *usage = strstr(r.out, want);
        size_t ul = strcspn(usage, "\n");
        for (const char *p = usage; (p = strstr(p, "--")) && p < usage + ul; p += 2) {
            char opt[40], line[48];
            size_t n = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");
            if (n == 0)
                continue; /* "-- CMD" of exec */
            snprintf(opt, sizeof(opt), "--%.*s", (int)n, p + 2);
            snprintf(line, sizeof(line), "\n  %s", opt);
            cr_assert_not_null(strstr(r.out, line), "%s: %s is not described: %s", commands[i], opt,
                               r.out);
        }
        cr_assert_not_null(strstr(r.out, "default"), "%s: no default named", commands[i]);
        /* `track help X` prints the same */
        struct res h = verb[0] ? T("help", noun, verb) : T("help", noun);
        cr_assert_eq(h.rc, 0);
        cr_assert_str_eq(h.out, r.out, "track help %s differs from --help", commands[i]);
        cr_assert_str_empty(h.err);
        res_free(&h);
        /* -h too */
        struct res s = verb[0] ? T(noun, verb, "-h") : T(noun, "-h");
        cr_assert_eq(s.rc, 0);
        cr_assert_str_eq(s.out, r.out);
        res_free(&s);
        res_free(&r);
    }
}

Test(polish, help_of_a_noun_lists_its_verbs_on_stdout_exit_0)
{
    static const char *const nouns[][2] = {{"run", "track run start"},
                                           {"experiment", "track experiment create"},
                                           {"metric", "track metric history"}};
    for (size_t i = 0; i < 3; i++) {
        struct res forms[3] = {T(nouns[i][0], "--help"), T(nouns[i][0], "-h"),
                               T("help", nouns[i][0])};
        for (int f = 0; f < 3; f++) {
            cr_assert_eq(forms[f].rc, 0, "%s form %d: exit %d: %s", nouns[i][0], f, forms[f].rc,
                         forms[f].err);
            cr_assert_str_empty(forms[f].err, "%s form %d: %s", nouns[i][0], f, forms[f].err);
            cr_assert_not_null(strstr(forms[f].out, nouns[i][1]), "%s", forms[f].out);
            res_free(&forms[f]);
        }
    }
    /* a noun without a verb is still a usage error */
    expect_usage(T("run"), "run start", NULL);
    /* the top level */
    struct res r = T("--help");
    cr_assert_eq(r.rc, 0);
    cr_assert_str_empty(r.err);
    cr_assert_not_null(strstr(r.out, "help filter"), "%s", r.out);
    res_free(&r);
    r = T("help");
    cr_assert_eq(r.rc, 0);
    cr_assert_not_null(strstr(r.out, "commands:"));
    res_free(&r);
}

Test(polish, help_filter_documents_every_operator_term_and_attribute)
{
    /* the words storage/filter.c accepts (its grammar and attribute table) */
    static const char *const words[] = {
        "metrics.KEY",
        "min(metrics.KEY)",
        "max(metrics.KEY)",
        "params.KEY",
        "tags.KEY",
        "metric.",
        "param.",
        "parameters.",
        "parameter.",
        "tag.",
        "attributes.",
        "attribute.",
        "attr.",
        "run.",
        "status",
        "RUNNING",
        "FINISHED",
        "FAILED",
        "KILLED",
        "name",
        "run_name",
        "user",
        "user_id",
        "experiment",
        "run_id",
        "start_time",
        "end_time",
        "duration",
        " = ",
        "==",
        "!=",
        "<>",
        " < ",
        "<=",
        " > ",
        ">=",
        "LIKE",
        "ILIKE",
        "NOT",
        "IN (",
        "IS NULL",
        "IS NOT NULL",
        "AND",
        "OR",
        "( )",
        "ASC",
        "DESC",
        "ms",
        "30s",
        "5m",
        "2h",
        "1d",
        "1h30m",
        "backticks",
        "NaN",
        "%",
        "_ one character",
        "1e-3",
    };
    struct res r = T("help", "filter");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_str_empty(r.err);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        cr_assert_not_null(strstr(r.out, words[i]), "help filter lacks \"%s\"", words[i]);
    assert_lines_fit(r.out, 80, "help filter");
    res_free(&r);
}

/* ---- usage errors ------------------------------------------------------------------- */

Test(polish, an_unknown_option_is_named_with_the_closest_as_a_suggestion)
{
    expect_usage(T("log-metric", "loss", "1", "--stpe", "5"), "unknown option '--stpe'",
                 "did you mean '--step'?", "usage: track log-metric", NULL);
    expect_usage(T("runs", "--fliter", "x"), "unknown option '--fliter'",
                 "did you mean '--filter'?", NULL);
    expect_usage(T("compare", "--experimnt", "x"), "did you mean '--experiment'?", NULL);
    expect_usage(T("run", "start", "--parnet", "abcd"), "did you mean '--parent'?", NULL);
    expect_usage(T("export", "--histroy"), "did you mean '--history'?", NULL);
    expect_usage(T("experiment", "list", "--jsno"), "did you mean '--json'?", NULL);
    /* nothing close: named, no suggestion */
    struct res r = T("run", "start", "--xyzzy");
    cr_assert_null(strstr(r.err, "did you mean"), "%s", r.err);
    expect_usage(r, "unknown option '--xyzzy'", NULL);
    /* an abbreviation of two, a value missing, a value not wanted */
    expect_usage(T("log-metric", "--st", "1"), "'--st' is ambiguous", "'--step'", "'--stdin'",
                 NULL);
    expect_usage(T("runs", "--limit"), "option '--limit' needs a value", NULL);
    expect_usage(T("log-metric", "--stdin=1"), "option '--stdin' takes no value", NULL);
    expect_usage(T("status", "-x"), "unknown option '-x'", NULL);
}

Test(polish, an_unknown_command_or_verb_lists_the_closest)
{
    expect_usage(T("stauts"), "'stauts' is not a track command", "The most similar command is",
                 "\tstatus", NULL);
    expect_usage(T("comapre"), "\tcompare", NULL);
    struct res r = T("frobnicate");
    cr_assert_null(strstr(r.err, "most similar"), "%s", r.err);
    expect_usage(r, "'frobnicate' is not a track command", NULL);
    expect_usage(T("run", "purge"), "'purge' is not a verb of 'track run'",
                 "start, end, list, show", NULL);
    expect_usage(T("run", "strat"), "did you mean 'track run start'?", NULL);
    expect_usage(T("experiment", "lsit"), "did you mean 'track experiment list'?", NULL);
    expect_usage(T("help", "stauts"), "\tstatus", NULL);
}

/* ---- numbers ------------------------------------------------------------------------ */

Test(polish, numbers_are_parsed_strictly_and_alike_everywhere)
{
    char hex[33], env[64];
    run_start("nums", "n", NULL, 0, hex);
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);
    const char *const *e = ENV(env);

    /* VALUE */
    static const char *const bad_values[] = {"0x10", " 1.5",  "1.5 ",  "1,5",   "nan(1)", "",
                                             "1e",   "0x1p3", "1.5e+", "-0x10", "-1,5"};
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
        expect_usage(TE(e, NULL, "log-metric", "v", bad_values[i]), "VALUE", "is not a number",
                     NULL);
    expect_usage(TE(e, NULL, "log-metric", "v", "1e400"), "VALUE", "\"1e400\" is out of range",
                 NULL);
    expect_usage(TE(e, NULL, "log-metric", "v", "-1e400"), "out of range", NULL);
    expect_usage(TE(e, NULL, "log-metric", "v", "1e-400"), "out of range", NULL);
    cr_assert_eq(count_points(hex, "v"), 0, "a refused value was stored");

    /* accepted forms, NaN and infinities included */
    static const char *const good[] = {"1.5",  "-2",  "+3",  ".5",   "1.",       "1e-4",
                                       "2E+3", "nan", "NaN", "-inf", "Infinity", "007"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct res r = TE(e, NULL, "log-metric", "v", good[i]);
        cr_assert_eq(r.rc, 0, "\"%s\" refused: %s", good[i], r.err);
        res_free(&r);
    }
    cr_assert_eq(count_points(hex, "v"), 12);

    /* whole numbers: --step, --time, --limit, --interval */
    static const char *const bad_ints[] = {"0x10", " 1", "1 ", "1.5", "1e3", ""};
    for (size_t i = 0; i < sizeof(bad_ints) / sizeof(bad_ints[0]); i++) {
        expect_usage(TE(e, NULL, "log-metric", "s", "1", "--step", bad_ints[i]), "--step", NULL);
        expect_usage(TE(e, NULL, "log-metric", "s", "1", "--time", bad_ints[i]), "--time", NULL);
        expect_usage(T("runs", "--limit", bad_ints[i]), "--limit", NULL);
        expect_usage(T("run", "list", "--limit", bad_ints[i]), "--limit", NULL);
        expect_usage(T("watch", hex, "--interval", bad_ints[i]), "--interval", NULL);
    }
    expect_usage(TE(e, NULL, "log-metric", "s", "1", "--step", "99999999999999999999"), "--step",
                 "out of range", NULL);
    expect_usage(T("runs", "--limit", "100001"), "--limit", "out of range", NULL);
    cr_assert_eq(count_points(hex, "s"), 0);

    /* the same rules on stdin lines, which name the line */
    struct res r = TE(e, "a 1\na 0x10\n", "log-metric", "--stdin");
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "line 2") && strstr(r.err, "not a number"), "%s", r.err);
    res_free(&r);
    r = TE(e, "b 1e400\n", "log-metric", "--stdin");
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "line 1") && strstr(r.err, "out of range"), "%s", r.err);
    res_free(&r);
    r = TE(e, "c 1 0x10\n", "log-metric", "--stdin");
    cr_assert_eq(r.rc, 1);
    cr_assert(strstr(r.err, "line 1") && strstr(r.err, "step"), "%s", r.err);
    res_free(&r);
}

Test(polish, stdin_refuses_a_step_after_int64_max_naming_the_line)
{
    char hex[33], env[64];
    run_start("nums", "big", NULL, 0, hex);
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);
    struct res r = TE(ENV(env), "x 1 9223372036854775807\ny 5\nx 2\n", "log-metric", "--stdin");
    cr_assert_eq(r.rc, 1, "exit %d: %s", r.rc, r.err);
    cr_assert_not_null(strstr(r.err, "stdin line 3"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "9223372036854775807"), "%s", r.err);
    cr_assert_null(strstr(r.err, "runtime error"), "UBSan: %s", r.err);
    res_free(&r);
    /* the largest step itself is a step like any other */
    cr_assert_eq(count_points(hex, "x"), 1);
    /* with its STEP given, the line is fine */
    r = TE(ENV(env), "x 2 9223372036854775807\n", "log-metric", "--stdin");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    res_free(&r);
}

/* ---- writes into an ended run ------------------------------------------------------------ */

Test(polish, writing_into_an_ended_run_succeeds_with_one_warning_naming_it)
{
    struct res r = T("run", "start", "--name", "last-week");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    char hex[33];
    snprintf(hex, sizeof(hex), "%.32s", r.out);
    res_free(&r);
    char env[64], short_id[9];
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);
    snprintf(short_id, sizeof(short_id), "%.8s", hex);

    /* running: no warning */
    r = TE(ENV(env), NULL, "log-metric", "loss", "0.5");
    cr_assert_eq(r.rc, 0);
    cr_assert_str_empty(r.err, "%s", r.err);
    res_free(&r);

    r = TE(ENV(env), NULL, "run", "end", "--status", "failed");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    res_free(&r);

    struct res w[4] = {
        TE(ENV(env), NULL, "log-metric", "loss", "0.4", "--step", "1"),
        TE(ENV(env), "loss 0.3 2\nloss 0.2 3\n", "log-metric", "--stdin"),
        TE(ENV(env), NULL, "log-param", "lr=0.1"),
        TE(ENV(env), NULL, "tag", "note=late"),
    };
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(w[i].rc, 0, "write %d: exit %d: %s", i, w[i].rc, w[i].err);
        cr_assert_eq(fx_count_of(w[i].err, "\n"), 1, "write %d: not one line: %s", i, w[i].err);
        cr_assert_not_null(strstr(w[i].err, "warning"), "%s", w[i].err);
        cr_assert_not_null(strstr(w[i].err, short_id), "the run is not named: %s", w[i].err);
        cr_assert_not_null(strstr(w[i].err, "last-week"), "%s", w[i].err);
        cr_assert_not_null(strstr(w[i].err, "FAILED"), "its status: %s", w[i].err);
        res_free(&w[i]);
    }
    cr_assert_eq(count_points(hex, "loss"), 4, "the points were logged");
    /* a prefix given with --run warns the same */
    char prefix[7];
    snprintf(prefix, sizeof(prefix), "%.6s", hex);
    r = T("log-metric", "--run", prefix, "loss", "0.1", "--step", "4");
    cr_assert_eq(r.rc, 0);
    cr_assert_not_null(strstr(r.err, short_id), "%s", r.err);
    res_free(&r);
}

Test(polish, history_of_a_missing_metric_prints_the_error_alone)
{
    char hex[33];
    run_start("h", "h", NULL, 0, hex);
    point("loss", 0.5, 0);
    flush();
    for (int form = 0; form < 3; form++) {
        struct res r = form == 0   ? T("metric", "history", hex, "nosuch")
                       : form == 1 ? T("metric", "history", hex, "nosuch", "--csv")
                                   : T("metric", "history", hex, "nosuch", "--json");
        cr_assert_eq(r.rc, 1, "form %d: exit %d", form, r.rc);
        cr_assert_str_empty(r.out, "form %d printed before the error: %s", form, r.out);
        cr_assert_not_null(strstr(r.err, "NOT_FOUND"), "%s", r.err);
        cr_assert_eq(fx_count_of(r.err, "\n"), 1, "%s", r.err);
        res_free(&r);
    }
    /* the CSV's time column has JSON's and export's name */
    struct res r = T("metric", "history", hex, "loss", "--csv");
    cr_assert_eq(r.rc, 0);
    cr_assert_eq(strncmp(r.out, "step,timestamp,value\n0,", 23), 0, "%s", r.out);
    res_free(&r);
}

/* ---- tables ------------------------------------------------------------------------------ */

/* Three runs of experiment "tbl": lr and name differ, epochs does not; loss
 * differs, const does not; 17-digit values. */
static char R1[33], R2[33], R3[33];

static void table_runs(void)
{
    static const char *const names[] = {"resnet50-cosine-warmup-with-restarts-batch512-lr3e-4",
                                        "resnet50-cosine-warmup-with-restarts-batch512-lr1e-3",
                                        "baseline"};
    static const char *const lrs[] = {"3e-4", "1e-3", "0.1"};
    char *ids[] = {R1, R2, R3};
    for (int i = 0; i < 3; i++) {
        run_start("tbl", names[i], KV({"lr", lrs[i]}, {"epochs", "10"}, {"seed", "7"}), 3, ids[i]);
        point("loss", 0.12345678901234567 * (i + 1), 0);
        point("val/accuracy_on_the_holdout_set", 1.0 / 3.0 + i, 0);
        point("const", 42, 0);
        point("big", 12345678901234567.0 * (i + 1), 0);
        run_end();
    }
}

Test(polish, tables_fit_80_and_200_columns)
{
    table_runs();
    static const char *const widths[] = {"COLUMNS=80", "COLUMNS=200"};
    for (int k = 0; k < 2; k++) {
        size_t w = k ? 200 : 80;
        struct res r = TE(ENV(widths[k]), NULL, "runs");
        cr_assert_eq(r.rc, 0, "%s", r.err);
        cr_assert_eq(assert_lines_fit(r.out, w, "runs"), 4);
        res_free(&r);
        r = TE(ENV(widths[k]), NULL, "runs", "--order-by", "metrics.loss", "--filter",
               "params.lr != 'x'");
        cr_assert_eq(r.rc, 0, "%s", r.err);
        assert_lines_fit(r.out, w, "runs --order-by");
        res_free(&r);
        r = TE(ENV(widths[k]), NULL, "compare", "--experiment", "tbl");
        cr_assert_eq(r.rc, 0, "%s", r.err);
        assert_lines_fit(r.out, w, "compare");
        res_free(&r);
        r = TE(ENV(widths[k]), NULL, "compare", "--experiment", "tbl", "--columns", "metrics");
        cr_assert_eq(r.rc, 0, "%s", r.err);
        assert_lines_fit(r.out, w, "compare --columns metrics");
        res_free(&r);
        r = TE(ENV(widths[k]), NULL, "run", "show", R1);
        cr_assert_eq(r.rc, 0, "%s", r.err);
        /* the metric table: every line fits and ends at the same column */
        const char *m = strstr(r.out, "\n  metric");
        cr_assert_not_null(m, "%s", r.out);
        assert_lines_fit(m + 1, w, "run show");
        size_t first = strcspn(m + 1, "\n"), lines = 0;
        for (const char *p = m + 1; *p; p += strcspn(p, "\n") + 1, lines++)
            cr_assert_eq(width_of(p, strcspn(p, "\n")), width_of(m + 1, first),
                         "run show's columns are out of line:\n%s", m + 1);
        cr_assert_eq(lines, 5, "%s", m + 1);
        res_free(&r);
    }
}

Test(polish, tables_show_6_digits_and_json_and_csv_keep_full_precision)
{
    table_runs();
    struct res r = T("run", "show", R1);
    cr_assert_eq(r.rc, 0);
    cr_assert_not_null(strstr(r.out, "0.123457"), "%s", r.out);
    cr_assert_null(strstr(r.out, "0.12345678901234"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "1.23457e+16"), "%s", r.out);
    res_free(&r);
    r = T("run", "show", R1, "--json");
    cr_assert_not_null(strstr(r.out, "0.12345678901234566") || strstr(r.out, "0.12345678901234567"),
                       "%s", r.out);
    res_free(&r);
    r = T("runs", "--experiment", "tbl", "--csv");
    cr_assert_not_null(strstr(r.out, "0.12345678901234567") || strstr(r.out, "0.12345678901234566"),
                       "%s", r.out);
    res_free(&r);
    r = T("metric", "history", R1, "loss");
    cr_assert_not_null(strstr(r.out, "0.123457\n"), "%s", r.out);
    res_free(&r);
    r = T("metric", "history", R1, "loss", "--csv");
    cr_assert(strstr(r.out, ",0.12345678901234567\n") || strstr(r.out, ",0.12345678901234566\n"),
              "%s", r.out);
    res_free(&r);
}

Test(polish, runs_shows_the_params_and_metrics_that_differ_and_not_the_equal_ones)
{
    table_runs();
    struct res r = TE(ENV("COLUMNS=200"), NULL, "runs", "--experiment", "tbl");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    const char *head = line_of(r.out, "RUN ");
    cr_assert_not_null(head, "%s", r.out);
    cr_assert_not_null(strstr(head, "params.lr"), "%s", r.out);
    cr_assert_not_null(strstr(head, "metrics.loss"), "%s", r.out);
    cr_assert_null(strstr(head, "params.epochs"), "an equal param shown: %s", r.out);
    cr_assert_null(strstr(head, "params.seed"), "%s", r.out);
    cr_assert_null(strstr(head, "metrics.const"), "an equal metric shown: %s", r.out);
    cr_assert_null(strstr(head, "EXPERIMENT"), "one experiment needs no column: %s", r.out);
    /* values of the differing param in their rows */
    cr_assert_not_null(strstr(r.out, "3e-4"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "1e-3"), "%s", r.out);
    /* ids are 8 characters, as git's short hashes */
    char s1[10], full[34];
    snprintf(s1, sizeof(s1), "%.8s ", R1);
    snprintf(full, sizeof(full), "%s", R1);
    cr_assert_not_null(line_of(r.out, s1), "%s", r.out);
    cr_assert_null(strstr(r.out, full), "a full id in the table: %s", r.out);
    res_free(&r);
    r = TE(ENV("COLUMNS=200"), NULL, "runs", "--experiment", "tbl", "--full-ids");
    cr_assert_not_null(line_of(r.out, full), "--full-ids: %s", r.out);
    res_free(&r);
    r = T("runs", "--experiment", "tbl", "--json");
    cr_assert_not_null(strstr(r.out, full), "--json: %s", r.out);
    res_free(&r);
    /* at 80 columns at least one of the differing keys still shows, and
     * fewer than at 200 */
    r = TE(ENV("COLUMNS=80"), NULL, "runs", "--experiment", "tbl");
    head = line_of(r.out, "RUN ");
    cr_assert(strstr(head, "params.") || strstr(head, "metrics."), "%s", r.out);
    cr_assert_null(strstr(head, "metrics.const"));
    res_free(&r);
    /* two experiments: the column appears */
    char other[33];
    run_start("tbl-2", "other", NULL, 0, other);
    r = TE(ENV("COLUMNS=200"), NULL, "runs");
    cr_assert_not_null(strstr(line_of(r.out, "RUN "), "EXPERIMENT"), "%s", r.out);
    res_free(&r);
}

Test(polish, long_names_shrink_with_an_ellipsis_in_the_middle_keeping_their_end)
{
    table_runs();
    struct res r = TE(ENV("COLUMNS=80"), NULL, "runs", "--experiment", "tbl");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    char s1[9], s2[9];
    snprintf(s1, sizeof(s1), "%.8s", R1);
    snprintf(s2, sizeof(s2), "%.8s", R2);
    const char *l1 = strstr(r.out, s1), *l2 = strstr(r.out, s2);
    cr_assert(l1 && l2, "%s", r.out);
    char a[512], b[512];
    snprintf(a, sizeof(a), "%.*s", (int)strcspn(l1, "\n"), l1);
    snprintf(b, sizeof(b), "%.*s", (int)strcspn(l2, "\n"), l2);
    cr_assert_not_null(strstr(a, "\xe2\x80\xa6"), "no ellipsis: %s", a);
    cr_assert_not_null(strstr(a, "resnet50"), "the start is kept: %s", a);
    cr_assert_not_null(strstr(a, "lr3e-4 "), "the end is kept: %s", a);
    cr_assert_not_null(strstr(b, "lr1e-3 "), "the end is kept: %s", b);
    res_free(&r);
    /* compare's transposed table does the same */
    r = TE(ENV("COLUMNS=80"), NULL, "compare", "--experiment", "tbl", "--columns", "metrics");
    cr_assert_not_null(strstr(r.out, "lr3e-4"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "lr1e-3"), "%s", r.out);
    res_free(&r);
}

Test(polish, compare_of_6_runs_at_80_columns_is_transposed_not_folded)
{
    char ids[6][33];
    for (int i = 0; i < 6; i++) {
        char name[32], lr[16];
        snprintf(name, sizeof(name), "six-run-%d", i);
        snprintf(lr, sizeof(lr), "0.%d", i + 1);
        run_start("six", name, KV({"lr", lr}, {"same", "1"}), 2, ids[i]);
        for (int s = 0; s < 10; s++) {
            point("loss", 1.0 / (s + 1 + i), s);
            point("acc", 0.1 * s + 0.01 * i, s);
        }
        run_end();
    }
    struct res r = TE(ENV("COLUMNS=80"), NULL, "compare", "--experiment", "six");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_null(strstr(r.out, "\n\n"), "folded into blocks:\n%s", r.out);
    cr_assert_eq(assert_lines_fit(r.out, 80, "compare"), 7, "a header and a row per run:\n%s",
                 r.out);
    const char *head = line_of(r.out, "run ");
    cr_assert_not_null(head, "%s", r.out);
    cr_assert(strstr(head, "params.lr") && strstr(head, "metrics.loss") &&
                  strstr(head, "metrics.acc"),
              "%s", head);
    cr_assert_null(strstr(head, "params.same"), "%s", head);
    for (int i = 0; i < 6; i++) {
        char s[32];
        snprintf(s, sizeof(s), "%.8s  six-run-%d", ids[i], i);
        cr_assert_eq(fx_count_of(r.out, s), 1, "run %d is not one row:\n%s", i, r.out);
    }
    /* the best loss (run 0: lowest last value) and acc (lowest: min goal) */
    cr_assert_eq(fx_count_of(r.out, " *"), 2, "%s", r.out);
    res_free(&r);

    /* --columns runs keeps a column per run, folded to fit */
    r = TE(ENV("COLUMNS=80"), NULL, "compare", "--experiment", "six", "--columns", "runs");
    cr_assert_eq(r.rc, 0);
    cr_assert_not_null(strstr(r.out, "\n\n"), "%s", r.out);
    assert_lines_fit(r.out, 80, "compare --columns runs");
    cr_assert_not_null(strstr(r.out, "loss trend"), "%s", r.out);
    res_free(&r);
    /* wide enough: a column per run without asking */
    r = TE(ENV("COLUMNS=200"), NULL, "compare", "--experiment", "six");
    cr_assert_not_null(line_of(r.out, "name "), "%s", r.out);
    cr_assert_null(strstr(r.out, "\n\n"), "%s", r.out);
    res_free(&r);
    /* two runs transposed on request */
    r = T("compare", ids[0], ids[1], "--columns", "metrics");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cr_assert_eq(fx_count_of(r.out, "\n"), 3, "%s", r.out);
    res_free(&r);
    expect_usage(T("compare", ids[0], ids[1], "--columns", "rows"), "--columns", NULL);
    expect_usage(T("compare", ids[0], ids[1], "--columns", "metrics", "--format", "csv"),
                 "--columns", NULL);
}
