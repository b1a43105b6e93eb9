/*
 * test_review.c: the run-review commands against a real trackd: `track
 * runs` (filters of many forms, order-by with missing values, syntax errors
 * with their column, injection-looking values), `track compare` (every
 * format on fixed runs, best-run marking, folding, prefixes, a 10^6-point
 * metric, the SVG plot), `track watch` in its line mode, and `track export`
 * round trips. Usage errors and --help of each command too.
 *
 * Fixtures are written with libtrack straight from the test (fast and
 * deterministic: explicit steps and times); the commands run as the built
 * `track` binary (fx_track). Run ids are random, so expected outputs are
 * built around the ids the fixtures got; durations depend on the clock and
 * are checked loosely, everything else exactly.
 *
 * JSON is parsed with jansson, as the CLI writes it.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

#define T0 1700000000000LL /* fixture point times: T0 + 1000 * step */

static struct fx_daemon D;
static struct track_client *C;

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    unsetenv("NO_COLOR");
    fx_daemon_client_start(&D, &C, 0);
}

static void teardown(void)
{
    fx_daemon_client_cleanup(&D, &C);
}

/* ---- fixtures --------------------------------------------------------------------- */

#define KV(...) ((const struct track_kv[]){__VA_ARGS__})

static void run_start(const char *exp, const char *name, const struct track_kv *params, size_t np,
                      const struct track_kv *tags, size_t nt, char hex[33])
{
    struct track_run_opts ro = {.experiment = exp,
                                .name = name,
                                .params = params,
                                .n_params = np,
                                .tags = tags,
                                .n_tags = nt};
    struct track_err err = {0};
    track_run_id id;
    cr_assert_eq(track_run_start(C, &ro, &id, &err), 0, "run start %s: %s", name, err.msg);
    track_run_id_hex(&id, hex);
}

static void point(const char *key, double v, int64_t step)
{
    struct track_err err = {0};
    cr_assert_eq(track_log_metric(C, key, v, step, T0 + 1000 * step, &err), 0, "%s", err.msg);
}

static void points(const char *key, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        point(key, v[i], (int64_t)i);
}

static void run_end(void)
{
    struct track_err err = {0};
    cr_assert_eq(track_run_end(C, TRACK_FINISHED, &err), 0, "%s", err.msg);
}

/* Three runs in experiment "cmp": alpha and beta share opt and seed, gamma
 * has NaN and -Inf values and no acc. */
static char A[33], B[33], G[33];

static void trio(void)
{
    static const double la[] = {1.0, 0.5, 0.25, 0.125}, aa[] = {0.5, 0.6, 0.7, 0.8};
    static const double lb[] = {1.0, 0.8, 0.6, 0.4}, ab[] = {0.5, 0.7, 0.9, 0.95};
    static const double lg[] = {2.0, NAN, 0.3}, gg[] = {-INFINITY, NAN};

    run_start("cmp", "alpha", KV({"lr", "0.1"}, {"opt", "adam"}, {"seed", "1"}), 3,
              KV({"team", "a"}), 1, A);
    points("loss", la, 4);
    points("acc", aa, 4);
    run_end();
    run_start("cmp", "beta", KV({"lr", "0.01"}, {"opt", "adam"}, {"seed", "1"}), 3, NULL, 0, B);
    points("loss", lb, 4);
    points("acc", ab, 4);
    run_end();
    run_start("cmp", "gamma", KV({"lr", "0.1"}, {"opt", "sgd"}, {"seed", "1"}), 3, NULL, 0, G);
    points("loss", lg, 3);
    points("grad", gg, 2);
    run_end();
}

/* Four runs in experiment "search" for the filter tests. */
static void search_runs(void)
{
    char h[33];
    run_start("search", "alpha-1", KV({"lr", "0.1"}, {"opt", "adam"}), 2, KV({"team", "a"}), 1, h);
    point("loss", 0.5, 1);
    point("acc", 0.7, 1);
    point("val loss", 1.5, 1);
    run_end();
    run_start("search", "alpha-2", KV({"lr", "0.01"}, {"opt", "sgd"}), 2, KV({"team", "b"}), 1, h);
    point("loss", 0.2, 1);
    point("acc", 0.9, 1);
    run_end();
    run_start("search", "beta-1", KV({"lr", "0.001"}, {"opt", "sgd"}), 2, KV({"team", "c"}), 1, h);
    point("acc", 0.95, 1);
    run_end();
    run_start("search", "x' OR '1'='1", KV({"lr", "1e-2"}, {"opt", "adam"}), 2, NULL, 0, h);
    point("loss", 0.9, 1);
    run_end();
}

/* ---- helpers ---------------------------------------------------------------------- */

#define TRACK(out, err, ...) fx_track(&D, NULL, NULL, out, err, __VA_ARGS__, NULL)

/* Checks a finished `track` call; returns its stdout (caller frees). */
static char *checked(int rc, int want, char *out, char *err, const char *args)
{
    cr_assert_eq(rc, want, "track %s: exit %d, want %d\nstdout: %s\nstderr: %s", args, rc, want,
                 out, err);
    free(err);
    return out;
}

/* Runs track with extra environment `env` and expects exit status `want`. */
#define RUN(want, env, ...)                                                                        \
    ({                                                                                             \
        char *o_ = NULL, *e_ = NULL;                                                               \
        int r_ = fx_track(&D, env, NULL, &o_, &e_, __VA_ARGS__, NULL);                             \
        checked(r_, want, o_, e_, #__VA_ARGS__);                                                   \
    })

/* The second CSV field of every line after the header, joined by '|'. */
static char *csv_names(const char *csv)
{
    static char buf[4096];
    const char *p = strchr(csv, '\n');
    buf[0] = '\0';
    while (p && p[1]) {
        const char *f = strchr(p + 1, ',');
        const char *e = f ? strchr(f + 1, ',') : NULL;
        cr_assert_not_null(e, "bad csv line in %s", csv);
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof(buf) - l, "%s%.*s", l ? "|" : "", (int)(e - f - 1), f + 1);
        p = strchr(p + 1, '\n');
    }
    return buf;
}

static void expect_filter(const char *filter, const char *names)
{
    char *out = NULL, *err = NULL;
    int rc = TRACK(&out, &err, "runs", "--experiment", "search", "--filter", filter, "--order-by",
                   "name ASC", "--csv");
    cr_assert_eq(rc, 0, "filter [%s]: exit %d: %s", filter, rc, err);
    cr_expect_str_eq(csv_names(out), names, "filter [%s]", filter);
    free(out);
    free(err);
}

/* Display columns of a UTF-8 line (code points). */
static size_t width_of(const char *s, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++)
        w += ((unsigned char)s[i] & 0xc0) != 0x80;
    return w;
}

/* The line of `text` starting with `prefix`, copied into a static buffer. */
static const char *line_of(const char *text, const char *prefix)
{
    static char buf[8192];
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, prefix, strlen(prefix)) == 0) {
            const char *e = strchr(p, '\n');
            size_t l = e ? (size_t)(e - p) : strlen(p);
            snprintf(buf, sizeof(buf), "%.*s", (int)l, p);
            return buf;
        }
    }
    return NULL;
}

/* ---- JSON ------------------------------------------------------------------------ */

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    cr_assert_not_null(j, "JSON: %s at line %d: %s", e.text, e.line, text);
    return j;
}

/* Follows a path of object keys and array indexes ("runs", "0", "name"). */
static json_t *at(json_t *j, const char *path)
{
    char buf[512], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, "/", &save); k && j; k = strtok_r(NULL, "/", &save)) {
        if (json_is_array(j))
            j = json_array_get(j, strtoul(k, NULL, 10));
        else
            j = json_object_get(j, k);
    }
    cr_assert_not_null(j, "no %s", path);
    return j;
}

static const char *str_at(json_t *j, const char *path)
{
    json_t *v = at(j, path);
    cr_assert(json_is_string(v), "%s is not a string", path);
    return json_string_value(v);
}

static double num_at(json_t *j, const char *path)
{
    json_t *v = at(j, path);
    cr_assert(json_is_number(v), "%s is not a number", path);
    return json_number_value(v);
}

/* ---- a small XML well-formedness check (as in tests/unit/test_render.c) --------- */

static int xml_name(const char **p)
{
    const char *s = *p;
    if (!(isalpha((unsigned char)*s) || *s == '_' || *s == ':'))
        return -1;
    while (isalnum((unsigned char)*s) || *s == '_' || *s == ':' || *s == '.' || *s == '-')
        s++;
    *p = s;
    return 0;
}

static int xml_text(const char *s, const char *end)
{
    static const char *const ents[] = {"amp;", "lt;", "gt;", "quot;", "apos;"};
    for (; s < end; s++) {
        int ok = *s != '<';
        if (*s == '&') {
            ok = 0;
            for (size_t i = 0; i < 5 && !ok; i++)
                ok = strncmp(s + 1, ents[i], strlen(ents[i])) == 0;
        }
        if (!ok)
            return -1;
    }
    return 0;
}

static int xml_check(const char *doc, const char **why)
{
    const char *stack[64], *p = doc;
    size_t lens[64], depth = 0, roots = 0;

    if (strncmp(p, "<?xml", 5) == 0 && (p = strstr(p, "?>")) != NULL)
        p += 2;
    if (!p)
        return *why = "unterminated prolog", -1;
    while (*p) {
        const char *lt = strchr(p, '<'), *end = lt ? lt : p + strlen(p);
        if (xml_text(p, end))
            return *why = "bad text", -1;
        for (const char *q = p; depth == 0 && q < end; q++)
            if (!isspace((unsigned char)*q))
                return *why = "text outside the root", -1;
        if (!lt)
            break;
        p = lt + 1;
        if (*p == '/') {
            const char *n = ++p;
            if (xml_name(&p) || depth == 0)
                return *why = "bad end tag", -1;
            depth--;
            if ((size_t)(p - n) != lens[depth] || strncmp(n, stack[depth], lens[depth]) != 0)
                return *why = "mismatched end tag", -1;
            if (*p++ != '>')
                return *why = "bad end tag", -1;
            continue;
        }
        const char *n = p;
        if (xml_name(&p))
            return *why = "bad element name", -1;
        size_t nl = (size_t)(p - n);
        for (;;) {
            int space = isspace((unsigned char)*p);
            while (isspace((unsigned char)*p))
                p++;
            if (*p == '>' || (p[0] == '/' && p[1] == '>'))
                break;
            if (!space || xml_name(&p) || *p++ != '=' || (*p != '"' && *p != '\''))
                return *why = "bad attribute", -1;
            char q = *p++;
            const char *ve = strchr(p, q);
            if (!ve || xml_text(p, ve))
                return *why = "bad attribute value", -1;
            p = ve + 1;
        }
        if (depth == 0)
            roots++;
        if (*p == '/') {
            p += 2;
        } else {
            p++;
            if (depth == 64)
                return *why = "too deep", -1;
            stack[depth] = n;
            lens[depth++] = nl;
        }
    }
    if (depth || roots != 1)
        return *why = depth ? "unclosed element" : "not one root", -1;
    return 0;
}

/* ==== runs ========================================================================== */

TestSuite(runs, .init = setup, .fini = teardown);

Test(runs, filters_of_many_forms_select_exact_run_sets)
{
    search_runs();
    expect_filter("", "alpha-1|alpha-2|beta-1|x' OR '1'='1");
    expect_filter("metrics.loss < 0.6", "alpha-1|alpha-2");
    expect_filter("params.opt = 'sgd' and metrics.acc >= 0.9", "alpha-2|beta-1");
    expect_filter("tags.team IN ('a', 'c')", "alpha-1|beta-1");
    expect_filter("name LIKE 'alpha%'", "alpha-1|alpha-2");
    expect_filter("metrics.loss IS NULL", "beta-1");
    expect_filter("not (params.opt = 'adam')", "alpha-2|beta-1");
    expect_filter("metrics.`val loss` > 1", "alpha-1");
    expect_filter("params.lr > 0.005", "alpha-1|alpha-2|x' OR '1'='1");
    expect_filter("status = 'finished' AND (metrics.acc > 0.8 OR tags.team = 'a')",
                  "alpha-1|alpha-2|beta-1");
    expect_filter("duration < 1h and start_time > 1d", "alpha-1|alpha-2|beta-1|x' OR '1'='1");
    expect_filter("max(metrics.acc) >= 0.95 or min(metrics.loss) > 0.8", "beta-1|x' OR '1'='1");
}

Test(runs, order_by_a_metric_puts_runs_without_it_last)
{
    search_runs();
    char *out = RUN(0, NULL, "runs", "--order-by", "metrics.loss ASC", "--csv");
    cr_assert_str_eq(csv_names(out), "alpha-2|alpha-1|x' OR '1'='1|beta-1");
    free(out);
    out = RUN(0, NULL, "runs", "--order-by", "metrics.loss DESC", "--csv");
    cr_assert_str_eq(csv_names(out), "x' OR '1'='1|alpha-1|alpha-2|beta-1");
    free(out);
    /* the table shows the order-by metric as a column, "-" where missing */
    out = RUN(0, NULL, "runs", "--order-by", "metrics.loss", "--filter", "params.lr != '0'");
    const char *head = line_of(out, "RUN ");
    cr_assert_not_null(head, "%s", out);
    cr_assert(strstr(head, "metrics.loss") && strstr(head, "params.lr"), "%s", head);
    const char *beta = strstr(out, "beta-1");
    cr_assert_not_null(beta);
    const char *eol = strchr(beta, '\n');
    cr_assert(memmem(beta, (size_t)(eol - beta), "  -  ", 5), "%s", out);
    cr_assert(strstr(out, "0.001"), "the params.lr column: %s", out);
    free(out);
    out = RUN(0, NULL, "runs", "--limit", "2", "--order-by", "name ASC", "--csv");
    cr_assert_str_eq(csv_names(out), "alpha-1|alpha-2");
    free(out);
}

Test(runs, a_syntax_error_names_its_column_and_exits_1)
{
    search_runs();
    char *out = NULL, *err = NULL;
    cr_assert_eq(TRACK(&out, &err, "runs", "--filter", "metrics.loss >"), 1);
    cr_assert(strstr(err, "track: INVALID_ARGUMENT: filter: column 15"), "%s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "runs", "--order-by", "metrics.loss SIDEWAYS"), 1);
    cr_assert(strstr(err, "order-by: column 14"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "runs", "--filter", "params.x = 'open"), 1);
    cr_assert(strstr(err, "column 12"), "%s", err);
    free(out);
    free(err);
}

Test(runs, injection_looking_values_are_plain_values)
{
    search_runs();
    /* the quote doubled inside the literal: the value is the run's odd name */
    expect_filter("name = 'x'' OR ''1''=''1'", "x' OR '1'='1");
    expect_filter("name = 'nobody'' OR 1=1 --'", "");
    expect_filter("params.opt = 'adam; DROP TABLE runs; --'", "");
    expect_filter("tags.`team'; DELETE FROM runs; --` = 'a'", "");
    expect_filter("", "alpha-1|alpha-2|beta-1|x' OR '1'='1");
}

Test(runs, json_and_csv_carry_the_details)
{
    trio();
    char *out = RUN(0, NULL, "runs", "--order-by", "name ASC", "--json");
    json_t *j = parse(out);
    cr_assert_eq(json_array_size(j), 3);
    cr_assert_str_eq(str_at(j, "0/run_id"), A);
    cr_assert_str_eq(str_at(j, "0/name"), "alpha");
    cr_assert_str_eq(str_at(j, "0/experiment"), "cmp");
    cr_assert_str_eq(str_at(j, "0/status"), "FINISHED");
    cr_assert_str_eq(str_at(j, "0/params/lr"), "0.1");
    cr_assert_str_eq(str_at(j, "0/tags/team"), "a");
    cr_assert_float_eq(num_at(j, "0/metrics/loss/last"), 0.125, 0);
    cr_assert_float_eq(num_at(j, "0/metrics/loss/count"), 4, 0);
    cr_assert_str_eq(str_at(j, "2/metrics/grad/last"), "NaN");
    cr_assert_str_eq(str_at(j, "2/metrics/grad/min"), "-Infinity");
    json_delete(j);
    free(out);
    out = RUN(0, NULL, "runs", "--order-by", "name ASC", "--csv");
    const char *want_head = "run_id,name,experiment,status,start_time,end_time,params.lr,"
                            "params.opt,params.seed,metrics.acc,metrics.grad,metrics.loss\n";
    cr_assert(strncmp(out, want_head, strlen(want_head)) == 0, "%s", out);
    char row[256];
    snprintf(row, sizeof(row), "%s,gamma,cmp,FINISHED,", G);
    const char *g = strstr(out, row);
    cr_assert_not_null(g, "%s", out);
    cr_assert(strstr(g, ",0.1,sgd,1,,nan,0.3\n"), "%s", out);
    free(out);
}

Test(runs, usage_errors_name_the_option)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(TRACK(&out, &err, "runs", "--limit", "0"), 2);
    cr_assert(strstr(err, "--limit"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "runs", "--csv", "--json"), 2);
    cr_assert(strstr(err, "--csv"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "runs", "stray"), 2);
    free(out);
    free(err);
    for (int i = 0; i < 4; i++) {
        static const char *const cmds[] = {"runs", "compare", "watch", "export"};
        char want[64];
        cr_assert_eq(TRACK(&out, &err, cmds[i], "--help"), 0);
        snprintf(want, sizeof(want), "usage: track %s ", cmds[i]);
        cr_assert(strncmp(out, want, strlen(want)) == 0, "%s", out);
        free(out);
        free(err);
    }
}

/* ==== compare ======================================================================= */

TestSuite(compare, .init = setup, .fini = teardown);

Test(compare, markdown_is_exact_but_for_durations)
{
    trio();
    char *out = RUN(0, NULL, "compare", A, B, G, "--goal", "acc=max", "--format", "markdown");
    char want[4096];
    snprintf(want, sizeof(want),
             "| run | %.8s | %.8s | %.8s |\n"
             "|---|---|---|---|\n"
             "| name | alpha | beta | gamma |\n"
             "| status | FINISHED | FINISHED | FINISHED |\n"
             "| param lr | 0.1 | 0.01 | 0.1 |\n"
             "| param opt | adam | adam | sgd |\n"
             "| acc last | 0.8 | **0.95** | - |\n"
             "| acc min | 0.5 | 0.5 | - |\n"
             "| acc max | 0.8 | 0.95 | - |\n"
             "| acc points | 4 | 4 | - |\n"
             "| acc trend | ▁▃▆█ | ▁▄▇█ | - |\n"
             "| grad last | - | - | nan |\n"
             "| grad min | - | - | -inf |\n"
             "| grad max | - | - | -inf |\n"
             "| grad points | - | - | 2 |\n"
             "| grad trend | - | - | ▁  |\n"
             "| loss last | **0.125** | 0.4 | 0.3 |\n"
             "| loss min | 0.125 | 0.4 | 0.3 |\n"
             "| loss max | 1 | 1 | 2 |\n"
             "| loss points | 4 | 4 | 3 |\n"
             "| loss trend | █▄▂▁ | █▆▃▁ | █ ▁ |\n",
             A, B, G);
    /* durations depend on the clock: checked for shape, then dropped */
    char *d = strstr(out, "| duration | ");
    cr_assert_not_null(d, "%s", out);
    char *e = strchr(d, '\n');
    int cells = 0;
    for (char *p = d; p < e; p++)
        cells += *p == '|';
    cr_assert_eq(cells, 5);
    cr_assert(memmem(d, (size_t)(e - d), "s |", 3), "%.*s", (int)(e - d), d);
    memmove(d, e + 1, strlen(e + 1) + 1);
    cr_assert_str_eq(out, want);
    free(out);
}

Test(compare, csv_is_exact_but_for_durations)
{
    trio();
    char *out = RUN(0, NULL, "compare", A, B, G, "--format", "csv");
    char want[4096];
    snprintf(want, sizeof(want),
             "row,%s,%s,%s\n"
             "name,alpha,beta,gamma\n"
             "status,FINISHED,FINISHED,FINISHED\n"
             "params.lr,0.1,0.01,0.1\n"
             "params.opt,adam,adam,sgd\n"
             "metrics.acc.last,0.8,0.95,\n"
             "metrics.acc.min,0.5,0.5,\n"
             "metrics.acc.max,0.8,0.95,\n"
             "metrics.acc.count,4,4,\n"
             "metrics.acc.best,true,false,\n"
             "metrics.grad.last,,,nan\n"
             "metrics.grad.min,,,-inf\n"
             "metrics.grad.max,,,-inf\n"
             "metrics.grad.count,,,2\n"
             "metrics.grad.best,,,false\n"
             "metrics.loss.last,0.125,0.4,0.3\n"
             "metrics.loss.min,0.125,0.4,0.3\n"
             "metrics.loss.max,1,1,2\n"
             "metrics.loss.count,4,4,3\n"
             "metrics.loss.best,true,false,false\n",
             A, B, G);
    char *d = strstr(out, "\nduration_ms,");
    cr_assert_not_null(d, "%s", out);
    char *e = strchr(d + 1, '\n');
    long long ms[3];
    cr_assert_eq(sscanf(d + 13, "%lld,%lld,%lld", &ms[0], &ms[1], &ms[2]), 3);
    for (int i = 0; i < 3; i++)
        cr_assert(ms[i] >= 0 && ms[i] < 60000, "duration %lld", ms[i]);
    memmove(d + 1, e + 1, strlen(e + 1) + 1);
    cr_assert_str_eq(out, want);
    free(out);
}

Test(compare, json_follows_the_json_conventions)
{
    trio();
    char *out = RUN(0, NULL, "compare", A, B, G, "--format", "json");
    json_t *j = parse(out);
    cr_assert_eq(json_array_size(at(j, "runs")), 3);
    cr_assert_str_eq(str_at(j, "runs/0/run_id"), A);
    cr_assert_str_eq(str_at(j, "runs/2/name"), "gamma");
    cr_assert_str_eq(str_at(j, "runs/1/status"), "FINISHED");
    cr_assert(num_at(j, "runs/0/duration_ms") >= 0);
    cr_assert_str_eq(str_at(j, "runs/0/params/seed"), "1");
    cr_assert_float_eq(num_at(j, "runs/0/metrics/loss/last"), 0.125, 0);
    cr_assert_float_eq(num_at(j, "runs/1/metrics/loss/max"), 1.0, 0);
    cr_assert_float_eq(num_at(j, "runs/2/metrics/loss/count"), 3, 0);
    cr_assert(json_is_true(at(j, "runs/0/metrics/loss/best")));
    cr_assert(json_is_false(at(j, "runs/2/metrics/loss/best")));
    cr_assert_str_eq(str_at(j, "runs/2/metrics/grad/last"), "NaN");
    cr_assert_str_eq(str_at(j, "runs/2/metrics/grad/max"), "-Infinity");
    cr_assert(json_is_false(at(j, "runs/2/metrics/grad/best")), "NaN is never best");
    cr_assert_null(json_object_get(at(j, "runs/2/metrics"), "acc"), "a missing metric is left out");
    cr_assert_eq(json_array_size(at(j, "differing_params")), 2);
    cr_assert_str_eq(str_at(j, "differing_params/0"), "lr");
    cr_assert_str_eq(str_at(j, "differing_params/1"), "opt");
    json_delete(j);
    free(out);
    /* --json is the same as --format json */
    char *out2 = RUN(0, NULL, "compare", A, B, "--json");
    j = parse(out2);
    cr_assert_eq(json_array_size(at(j, "runs")), 2);
    json_delete(j);
    free(out2);
}

Test(compare, best_run_by_min_and_max_goals_with_ties)
{
    char D4[33];
    trio();
    run_start("cmp", "delta", KV({"lr", "0.1"}), 1, NULL, 0, D4);
    point("loss", 0.125, 0);
    point("acc", 0.8, 0);
    run_end();
    static const struct {
        const char *goal, *metric;
        int best[4];
    } cases[] = {
        {NULL, "loss", {1, 0, 0, 1}},       /* min by default; alpha and delta tie */
        {"loss=max", "loss", {0, 1, 0, 0}}, /* beta's 0.4 */
        {NULL, "acc", {1, 0, 0, 1}},        /* min: 0.8 twice */
        {"acc=max", "acc", {0, 1, 0, 0}},   {"acc=min", "acc", {1, 0, 0, 1}},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char *out = cases[c].goal
                        ? RUN(0, NULL, "compare", A, B, G, D4, "--json", "--goal", cases[c].goal)
                        : RUN(0, NULL, "compare", A, B, G, D4, "--json");
        json_t *j = parse(out);
        for (int r = 0; r < 4; r++) {
            char path[64];
            snprintf(path, sizeof(path), "runs/%d/metrics", r);
            json_t *m = json_object_get(at(j, path), cases[c].metric);
            int best = m && json_is_true(json_object_get(m, "best"));
            cr_expect_eq(best, cases[c].best[r], "goal %s metric %s run %d",
                         cases[c].goal ? cases[c].goal : "(default)", cases[c].metric, r);
        }
        json_delete(j);
        free(out);
    }
    /* the table marks the best with " *" */
    char *out = RUN(0, NULL, "compare", A, B, "--metric", "loss");
    const char *l = line_of(out, "loss last");
    cr_assert_not_null(l, "%s", out);
    cr_assert(strstr(l, "0.125 *") && !strstr(l, "0.4 *"), "%s", l);
    cr_assert(!strchr(out, '\x1b'), "no colour when stdout is not a terminal");
    free(out);
}

Test(compare, differing_params_only_unless_all_params)
{
    trio();
    char *out = RUN(0, NULL, "compare", A, B, G, "--format", "csv", "--metric", "loss");
    cr_assert(strstr(out, "\nparams.lr,") && strstr(out, "\nparams.opt,"));
    cr_assert_null(strstr(out, "params.seed"), "%s", out);
    cr_assert_null(strstr(out, "metrics.acc"), "--metric selects: %s", out);
    free(out);
    out = RUN(0, NULL, "compare", A, B, G, "--format", "csv", "--all-params");
    cr_assert(strstr(out, "\nparams.seed,1,1,1\n"), "%s", out);
    free(out);
}

Test(compare, wide_tables_fold_to_the_terminal_width)
{
    char ids[6][33];
    for (int i = 0; i < 6; i++) {
        char name[32], lr[16];
        snprintf(name, sizeof(name), "fold-run-%d", i);
        snprintf(lr, sizeof(lr), "0.%d", i + 1);
        struct track_kv p[] = {{"lr", lr}};
        run_start("fold", name, p, 1, NULL, 0, ids[i]);
        for (int s = 0; s < 30; s++)
            point("loss", 1.0 / (s + 1 + i), s);
        run_end();
    }
    /* a column per run, as asked: folded (without --columns runs the table
     * is transposed instead, tests/cli/test_cli_polish.c) */
    const char *env80[] = {"COLUMNS=80", NULL};
    char *out = RUN(0, env80, "compare", "--experiment", "fold", "--columns", "runs");
    size_t blocks = 1;
    for (const char *p = out; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        cr_assert_leq(width_of(p, len), 80, "line wider than 80: %.*s", (int)len, p);
        blocks += len == 0;
        p += len + (e ? 1 : 0);
    }
    cr_assert_geq(blocks, 2, "%s", out);
    cr_assert_eq(fx_count_of(out, "\nname "), blocks, "labels repeat in every block");
    cr_assert_eq(fx_count_of(out, "loss trend"), blocks);
    for (int i = 0; i < 6; i++) {
        char s[16];
        snprintf(s, sizeof(s), "%.8s", ids[i]);
        cr_assert_eq(fx_count_of(out, s), 1, "run %d once: %s", i, out);
    }
    free(out);
    const char *env_wide[] = {"COLUMNS=400", NULL};
    out = RUN(0, env_wide, "compare", "--experiment", "fold");
    cr_assert_null(strstr(out, "\n\n"), "one block at 400 columns: %s", out);
    free(out);
    const char *env_junk[] = {"COLUMNS=junk", NULL};
    out = RUN(0, env_junk, "compare", "--experiment", "fold", "--columns", "runs");
    for (const char *p = out; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        cr_assert_leq(width_of(p, len), 80, "default width 80");
        p += len + (e ? 1 : 0);
    }
    free(out);
}

Test(compare, prefixes_resolve_and_an_ambiguous_one_lists_candidates)
{
    /* two runs whose ids share 4 hex digits: about 300 runs make a pair
     * likely; stop at the first */
    static unsigned char seen[65536];
    static char hexes[65536][9];
    char hex[33], other[33] = "", prefix[5] = "";
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < 5000 && !prefix[0]; i++) {
        run_start("many", NULL, NULL, 0, NULL, 0, hex);
        run_end();
        unsigned v = (unsigned)strtoul((char[5]){hex[0], hex[1], hex[2], hex[3], 0}, NULL, 16);
        if (seen[v]) {
            snprintf(prefix, sizeof(prefix), "%.4s", hex);
            snprintf(other, sizeof(other), "%s", hexes[v]);
        }
        seen[v] = 1;
        snprintf(hexes[v], sizeof(hexes[v]), "%.8s", hex);
    }
    cr_assert(prefix[0], "no shared prefix in 5000 runs");
    char *out = NULL, *err = NULL;
    char last8[9];
    snprintf(last8, sizeof(last8), "%.8s", hex);
    cr_assert_eq(TRACK(&out, &err, "compare", prefix, last8), 1);
    cr_assert(strstr(err, "ambiguous"), "%s", err);
    cr_assert(strstr(err, other) && strstr(err, last8), "both candidates: %s", err);
    free(out);
    free(err);
    /* unique prefixes (8 digits here) resolve to the full ids */
    out = RUN(0, NULL, "compare", last8, other, "--format", "csv");
    cr_assert(strncmp(out, "row,", 4) == 0 && strstr(out, hex), "%s", out);
    free(out);
}

Test(compare, usage_and_argument_errors)
{
    trio();
    char *out = NULL, *err = NULL;
    struct {
        int want;
        const char *a[6];
        const char *says;
    } cases[] = {
        {2, {"compare", A}, "at least two"},
        {2, {"compare", A, B, "--goal", "acc=best"}, "--goal"},
        {2, {"compare", A, B, "--goal", "=max"}, "--goal"},
        {2, {"compare", A, B, "--format", "xml"}, "--format"},
        {2, {"compare", A, B, "--filter", "x = 1"}, "not both"},
        {2, {"compare", A, B, "--bogus"}, "unknown"},
        {1, {"compare", A, B, "--metric", "nope"}, "not logged"},
        {1, {"compare", "--filter", "name = 'nobody'"}, "no run"},
        {1, {"compare", A, "ffffffffffffffffffffffffffffffff"}, "NOT_FOUND"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int rc = fx_track(&D, NULL, NULL, &out, &err, cases[c].a[0], cases[c].a[1], cases[c].a[2],
                          cases[c].a[3], cases[c].a[4], cases[c].a[5], NULL);
        cr_expect_eq(rc, cases[c].want, "case %zu: exit %d: %s", c, rc, err);
        cr_expect(strstr(err, cases[c].says), "case %zu: %s", c, err);
        free(out);
        free(err);
    }
    /* --filter with one match is fine; with --experiment too */
    out = RUN(0, NULL, "compare", "--experiment", "cmp", "--filter", "name = 'beta'", "--format",
              "csv");
    cr_assert(strstr(out, "name,beta\n"), "%s", out);
    free(out);
}

Test(compare, a_million_point_metric_compares_as_fast_as_a_short_one)
{
    char big[33], small[33];
    struct track_err err = {0};
    long long t0 = fx_now_ms();
    run_start("big", "big", NULL, 0, NULL, 0, big);
    for (int64_t i = 0; i < 1000000; i++)
        cr_assert_eq(track_log_metric(C, "x", (double)i, i, T0 + i, &err), 0, "%s", err.msg);
    run_end();
    run_start("big", "small", NULL, 0, NULL, 0, small);
    for (int64_t i = 0; i < 5; i++)
        point("x", (double)i, i);
    run_end();
    cr_log_info("logging 10^6 points took %lld ms", fx_now_ms() - t0);

    t0 = fx_now_ms();
    char *out = RUN(0, NULL, "compare", big, small, "--format", "markdown");
    long long took = fx_now_ms() - t0;
    cr_log_info("compare of a 10^6-point run took %lld ms", took);
    cr_assert_lt(took, 5000, "compare took %lld ms", took);
    const char *l = line_of(out, "| x points |");
    cr_assert_not_null(l, "%s", out);
    cr_assert_str_eq(l, "| x points | 1000000 | 5 |");
    l = line_of(out, "| x trend | ");
    cr_assert_not_null(l, "%s", out);
    const char *cell = l + strlen("| x trend | "), *end = strstr(cell, " |");
    cr_assert_eq(width_of(cell, (size_t)(end - cell)), 20, "20 buckets: %s", l);
    /* a rising line rises: every cell at least the one before */
    for (const char *p = cell + 3; p < end; p += 3)
        cr_assert_geq((unsigned char)p[2], (unsigned char)p[-1], "%s", l);
    cr_assert(strncmp(cell, "▁", 3) == 0 && strncmp(end - 3, "█", 3) == 0, "%s", l);
    cr_assert_str_eq(line_of(out, "| x last |"), "| x last | 999999 | **4** |");
    free(out);
}

Test(compare, the_plot_is_well_formed_svg_with_a_line_per_run_and_metric)
{
    char ids[3][33];
    static const char *const names[] = {"a&b <c> \"d\" 'e'", "plain", "third"};
    for (int r = 0; r < 3; r++) {
        run_start("plot", names[r], NULL, 0, NULL, 0, ids[r]);
        for (int s = 0; s < 500; s++) {
            /* no libm here: the cli suites do not link it */
            point("loss", (r + 1) * 100.0 / (s + 100.0), s);
            if (s % 5 == 0)
                point("acc", s == 100 ? NAN : s == 105 ? INFINITY : s / (s + 80.0), s);
        }
        run_end();
    }
    char path[400];
    snprintf(path, sizeof(path), "%s/plot.svg", D.dir);
    char *out = RUN(0, NULL, "compare", ids[0], ids[1], ids[2], "--plot", path, "--format", "csv");
    free(out);
    char *svg = fx_slurp(path);
    const char *why = "";
    cr_assert_eq(xml_check(svg, &why), 0, "%s", why);
    cr_assert_eq(fx_count_of(svg, "<path fill=\"none\""), 6, "3 runs x 2 metrics");
    cr_assert_eq(fx_count_of(svg, "<svg "), 1);
    cr_assert(strstr(svg, "a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;"));
    cr_assert_null(strstr(svg, "nan"), "non-finite values are skipped");
    cr_assert_null(strstr(svg, "inf"));
    cr_assert(strstr(svg, ">step</text>") && strstr(svg, ">loss</text>"));
    free(svg);
    /* no temporary file left beside it */
    DIR *d = opendir(D.dir);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        cr_assert_null(strstr(e->d_name, ".tmp"), "%s left behind", e->d_name);
    closedir(d);
}

/* ==== watch ========================================================================= */

TestSuite(watch, .init = setup, .fini = teardown);

/* Starts `track --server URI args...` with stdout on a pipe (fork + exec at
 * once: this process has nanomsg threads). */
static pid_t spawn_track(const char *const *args, int *out_fd)
{
    const char *argv[32];
    int n = 0, p[2];
    argv[n++] = TRACK_BIN;
    argv[n++] = "--server";
    argv[n++] = D.uri;
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    setenv("TRACK_NO_AUTOSTART", "1", 1);
    cr_assert_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(p[1]);
    *out_fd = p[0];
    return pid;
}

/* Reads from fd into buf until it holds `want` or timeout_ms pass. */
static int read_until(int fd, char *buf, size_t cap, size_t *len, const char *want, int timeout_ms)
{
    long long end = fx_now_ms() + timeout_ms;
    while (!strstr(buf, want)) {
        long long left = end - fx_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        ssize_t r = read(fd, buf + *len, cap - 1 - *len);
        if (r <= 0)
            return -1;
        *len += (size_t)r;
        buf[*len] = '\0';
    }
    return 0;
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    long long end = fx_now_ms() + timeout_ms;
    int st;
    while (fx_now_ms() < end) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

Test(watch, line_mode_prints_new_points_and_exits_when_the_run_ends)
{
    char run[33], buf[8192] = "";
    size_t len = 0;
    struct track_err err = {0};
    int fd;

    run_start("live", "live", NULL, 0, NULL, 0, run);
    const char *args[] = {"watch", run, "--interval", "100", NULL};
    pid_t pid = spawn_track(args, &fd);
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    point("loss", 0.5, 1);
    cr_assert_eq(track_flush(C, &err), 0, "%s", err.msg);
    long long t0 = fx_now_ms();
    cr_assert_eq(read_until(fd, buf, sizeof(buf), &len, "step=1 loss=0.5\n", 5000), 0, "got: %s",
                 buf);
    cr_log_info("watch saw a point after %lld ms", fx_now_ms() - t0);
    point("loss", 0.25, 2);
    point("acc", 0.9, 2);
    cr_assert_eq(track_flush(C, &err), 0, "%s", err.msg);
    cr_assert_eq(read_until(fd, buf, sizeof(buf), &len, "step=2 loss=0.25 acc=0.9\n", 5000), 0,
                 "got: %s", buf);
    run_end();
    cr_assert_eq(read_until(fd, buf, sizeof(buf), &len, "status=FINISHED\n", 5000), 0, "got: %s",
                 buf);
    cr_assert_eq(wait_exit(pid, 5000), 0);
    close(fd);
    /* one line per change, none repeated */
    cr_assert_eq(fx_count_of(buf, "step=1 loss=0.5\n"), 1, "%s", buf);
    cr_assert_eq(fx_count_of(buf, "\n"), fx_count_of(buf, "step=") + 1, "%s", buf);
}

Test(watch, a_finished_run_prints_its_state_once_and_exits)
{
    char run[33];
    static const double v[] = {3, 2, 1};
    run_start("live", "done", NULL, 0, NULL, 0, run);
    points("loss", v, 3);
    run_end();
    char *out = RUN(0, NULL, "watch", run);
    cr_assert_str_eq(out, "step=2 loss=1\nstatus=FINISHED\n");
    free(out);
    /* the run from --run, and a prefix */
    char prefix[9];
    snprintf(prefix, sizeof(prefix), "%.8s", run);
    out = RUN(0, NULL, "--run", prefix, "watch", "--metric", "loss");
    cr_assert_str_eq(out, "step=2 loss=1\nstatus=FINISHED\n");
    free(out);
}

Test(watch, usage_errors)
{
    char *out = NULL, *err = NULL;
    cr_assert_eq(TRACK(&out, &err, "watch"), 2);
    cr_assert(strstr(err, "no run"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "watch", "abcd", "--interval", "10"), 2);
    cr_assert(strstr(err, "--interval"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "watch", "abcd", "--interval", "60001"), 2);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "watch", "abcd", "efgh"), 2);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "watch", "abcd"), 1);
    cr_assert(strstr(err, "NOT_FOUND"), "%s", err);
    free(out);
    free(err);
}

/* ==== export ======================================================================== */

TestSuite(export, .init = setup, .fini = teardown);

static void expect_point(json_t *j, const char *path, double step, double value)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/step", path);
    cr_assert_float_eq(num_at(j, p), step, 0);
    snprintf(p, sizeof(p), "%s/timestamp", path);
    cr_assert_float_eq(num_at(j, p), (double)(T0 + 1000 * (int64_t)step), 0);
    snprintf(p, sizeof(p), "%s/value", path);
    cr_assert_float_eq(num_at(j, p), value, 0, "%s", p);
}

Test(export, json_with_history_round_trips)
{
    trio();
    char path[400];
    snprintf(path, sizeof(path), "%s/runs.json", D.dir);
    char *out = RUN(0, NULL, "export", A, B, G, "--format", "json", "--history", "-o", path);
    cr_assert_str_eq(out, "", "-o: nothing on stdout");
    free(out);
    char *text = fx_slurp(path);
    json_t *j = parse(text);
    cr_assert_eq(json_array_size(j), 3);
    cr_assert_str_eq(str_at(j, "0/run_id"), A);
    cr_assert_str_eq(str_at(j, "0/name"), "alpha");
    cr_assert_str_eq(str_at(j, "0/params/lr"), "0.1");
    cr_assert_str_eq(str_at(j, "0/tags/team"), "a");
    cr_assert_float_eq(num_at(j, "0/metrics/loss/last"), 0.125, 0);
    cr_assert_float_eq(num_at(j, "0/metrics/acc/max"), 0.8, 0);
    static const double la[] = {1.0, 0.5, 0.25, 0.125}, ab[] = {0.5, 0.7, 0.9, 0.95};
    cr_assert_eq(json_array_size(at(j, "0/history/loss")), 4);
    for (int i = 0; i < 4; i++) {
        char p[64];
        snprintf(p, sizeof(p), "0/history/loss/%d", i);
        expect_point(j, p, i, la[i]);
        snprintf(p, sizeof(p), "1/history/acc/%d", i);
        expect_point(j, p, i, ab[i]);
    }
    /* gamma: NaN and -Infinity as strings, in the history and the summary */
    cr_assert_str_eq(str_at(j, "2/history/grad/0/value"), "-Infinity");
    cr_assert_str_eq(str_at(j, "2/history/grad/1/value"), "NaN");
    cr_assert_str_eq(str_at(j, "2/history/loss/1/value"), "NaN");
    cr_assert_float_eq(num_at(j, "2/history/loss/2/value"), 0.3, 0);
    cr_assert_float_eq(num_at(j, "2/history/loss/0/value"), 2.0, 0);
    cr_assert_str_eq(str_at(j, "2/metrics/grad/last"), "NaN");
    cr_assert_str_eq(str_at(j, "2/metrics/grad/min"), "-Infinity");
    cr_assert_eq(json_object_size(at(j, "2/history")), 2);
    json_delete(j);
    free(text);
    DIR *d = opendir(D.dir);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        cr_assert_null(strstr(e->d_name, ".tmp"), "%s left behind", e->d_name);
    closedir(d);
}

Test(export, jsonl_and_csv)
{
    trio();
    char *out = RUN(0, NULL, "export", "--experiment", "cmp", "--format", "jsonl");
    cr_assert_eq(fx_count_of(out, "\n"), 3);
    char *save = NULL;
    int n = 0;
    for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save), n++) {
        json_t *j = parse(l);
        cr_assert(json_is_object(j));
        cr_assert_null(json_object_get(j, "history"));
        cr_assert_eq(strlen(str_at(j, "run_id")), 32);
        json_delete(j);
    }
    cr_assert_eq(n, 3);
    free(out);

    out = RUN(0, NULL, "export", A, G, "--format", "csv");
    char want[1024];
    snprintf(want, sizeof(want),
             "run_id,name,experiment,status,start_time,end_time,params.lr,params.opt,"
             "params.seed,metrics.acc,metrics.grad,metrics.loss\n%s,alpha,cmp,FINISHED,",
             A);
    cr_assert(strncmp(out, want, strlen(want)) == 0, "%s", out);
    cr_assert(strstr(out, ",0.1,adam,1,0.8,,0.125\n"), "%s", out);
    cr_assert(strstr(out, ",0.1,sgd,1,,nan,0.3\n"), "%s", out);
    free(out);

    out = RUN(0, NULL, "export", A, G, "--format", "csv", "--history");
    cr_assert(strncmp(out, "run_id,key,step,timestamp,value\n", 32) == 0, "%s", out);
    cr_assert_eq(fx_count_of(out, "\n"), 1 + 8 + 5, "%s", out);
    char row[128];
    snprintf(row, sizeof(row), "%s,grad,0,%lld,-inf\n", G, T0);
    cr_assert(strstr(out, row), "%s", out);
    snprintf(row, sizeof(row), "%s,loss,3,%lld,0.125\n", A, T0 + 3000);
    cr_assert(strstr(out, row), "%s", out);
    free(out);
}

Test(export, errors)
{
    trio();
    char *out = NULL, *err = NULL;
    cr_assert_eq(TRACK(&out, &err, "export", A), 2);
    cr_assert(strstr(err, "--format"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "export", A, "--format", "xml"), 2);
    cr_assert(strstr(err, "--format"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "export", "--format", "json"), 2);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "export", A, "--experiment", "cmp", "--format", "json"), 2);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "export", A, "--format", "json", "-o", "/nonexistent/x.json"),
                 1);
    cr_assert(strstr(err, "/nonexistent/x.json"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(TRACK(&out, &err, "export", "ffff", "--format", "json"), 1);
    cr_assert(strstr(err, "NOT_FOUND"), "%s", err);
    free(out);
    free(err);
}
