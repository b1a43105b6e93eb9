/*
 * test_core_cli.c: the core `track` commands, run as the built binary against
 * a real trackd on a temporary directory: experiments, runs (start, end,
 * list, show, id prefixes), params and tags, metric points (one by one and
 * batched from stdin, NaN/±Inf included), metric history, `track exec`
 * wrapping a child process (exit status, signals, git state), status, usage
 * and exit codes, and what happens when the daemon is not there (a fast,
 * one-line failure for reads; the spool and `track sync` for writes).
 *
 * JSON output is checked by parsing it with the small reader below (the
 * test binaries do not link jansson), so key names and types are pinned,
 * not just substrings.
 *
 * Every test starts its own trackd and prints its log when the test fails.
 * libtrack is used directly only to make many runs quickly; the client is
 * closed before the CLI runs, and fx_run forks only to exec at once.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon d;
static int passed; /* set by the last line of a test: fini shows the log otherwise */

#define PASS() (passed = 1)

static void setup(void)
{
    passed = 0;
    cr_assert_eq(fx_daemon_start(&d, NULL), 0, "trackd did not start");
}

static void teardown(void)
{
    fx_daemon_cleanup(&d, !passed);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 120);

/* ---- a small JSON reader ----------------------------------------------------------
 * Enough of RFC 8259 for the CLI's output: objects, arrays, strings (with
 * escapes, \u to UTF-8), numbers, true, false, null. Rejects trailing junk. */

enum jtype { J_NULL, J_BOOL, J_INT, J_REAL, J_STR, J_ARR, J_OBJ };

struct jv {
    enum jtype t;
    int b;
    long long i;
    double num;
    char *str;
    struct jv **items;
    char **keys;
    size_t n;
};

struct jparser {
    const char *p;
    int depth;
};

static void jfree(struct jv *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        jfree(v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
    free(v);
}

static void jskip(struct jparser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static char *jstring(struct jparser *ps)
{
    size_t cap = 64, n = 0;
    char *s = malloc(cap);
    if (*ps->p != '"')
        goto bad;
    ps->p++;
    for (;;) {
        unsigned char c = (unsigned char)*ps->p;
        char buf[4];
        size_t k = 1;
        if (c == '\0' || c < 0x20)
            goto bad;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c == '\\') {
            char e = ps->p[1];
            ps->p += 2;
            switch (e) {
            case '"':
                buf[0] = '"';
                break;
            case '\\':
                buf[0] = '\\';
                break;
            case '/':
                buf[0] = '/';
                break;
            case 'b':
                buf[0] = '\b';
                break;
            case 'f':
                buf[0] = '\f';
                break;
            case 'n':
                buf[0] = '\n';
                break;
            case 'r':
                buf[0] = '\r';
                break;
            case 't':
                buf[0] = '\t';
                break;
            case 'u': {
                unsigned cp;
                if (hex4(ps->p, &cp))
                    goto bad;
                ps->p += 4;
                if (cp >= 0xd800 && cp < 0xdc00 && ps->p[0] == '\\' && ps->p[1] == 'u') {
                    unsigned lo;
                    if (hex4(ps->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                        goto bad;
                    ps->p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (cp < 0x80) {
                    buf[0] = (char)cp;
                } else if (cp < 0x800) {
                    buf[0] = (char)(0xc0 | cp >> 6);
                    buf[1] = (char)(0x80 | (cp & 0x3f));
                    k = 2;
                } else if (cp < 0x10000) {
                    buf[0] = (char)(0xe0 | cp >> 12);
                    buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[2] = (char)(0x80 | (cp & 0x3f));
                    k = 3;
                } else {
                    buf[0] = (char)(0xf0 | cp >> 18);
                    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[3] = (char)(0x80 | (cp & 0x3f));
                    k = 4;
                }
                break;
            }
            default:
                goto bad;
            }
        } else {
            buf[0] = (char)c;
            ps->p++;
        }
        if (n + k + 1 > cap) {
            cap *= 2;
            s = realloc(s, cap);
        }
        memcpy(s + n, buf, k);
        n += k;
    }
    s[n] = '\0';
    return s;
bad:
    free(s);
    return NULL;
}

static struct jv *jvalue(struct jparser *ps);

static int jpush(struct jv *v, struct jv *item, char *key)
{
    v->items = realloc(v->items, (v->n + 1) * sizeof(*v->items));
    if (v->t == J_OBJ)
        v->keys = realloc(v->keys, (v->n + 1) * sizeof(*v->keys));
    v->items[v->n] = item;
    if (v->t == J_OBJ)
        v->keys[v->n] = key;
    v->n++;
    return 0;
}

static struct jv *jvalue(struct jparser *ps)
{
    struct jv *v = calloc(1, sizeof(*v));
    jskip(ps);
    if (++ps->depth > 64)
        goto bad;
    if (*ps->p == '{' || *ps->p == '[') {
        char close = *ps->p == '{' ? '}' : ']';
        v->t = *ps->p == '{' ? J_OBJ : J_ARR;
        ps->p++;
        jskip(ps);
        if (*ps->p == close) {
            ps->p++;
            ps->depth--;
            return v;
        }
        for (;;) {
            char *key = NULL;
            jskip(ps);
            if (v->t == J_OBJ) {
                key = jstring(ps);
                if (!key)
                    goto bad;
                jskip(ps);
                if (*ps->p != ':') {
                    free(key);
                    goto bad;
                }
                ps->p++;
            }
            struct jv *item = jvalue(ps);
            if (!item) {
                free(key);
                goto bad;
            }
            jpush(v, item, key);
            jskip(ps);
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == close) {
                ps->p++;
                break;
            }
            goto bad;
        }
    } else if (*ps->p == '"') {
        v->t = J_STR;
        v->str = jstring(ps);
        if (!v->str)
            goto bad;
    } else if (strncmp(ps->p, "true", 4) == 0 || strncmp(ps->p, "false", 5) == 0) {
        v->t = J_BOOL;
        v->b = *ps->p == 't';
        ps->p += v->b ? 4 : 5;
    } else if (strncmp(ps->p, "null", 4) == 0) {
        v->t = J_NULL;
        ps->p += 4;
    } else if (*ps->p == '-' || isdigit((unsigned char)*ps->p)) {
        const char *start = ps->p;
        int real = 0;
        if (*ps->p == '-')
            ps->p++;
        if (!isdigit((unsigned char)*ps->p))
            goto bad;
        while (isdigit((unsigned char)*ps->p) || strchr(".eE+-", *ps->p)) {
            if (strchr(".eE", *ps->p))
                real = 1;
            ps->p++;
        }
        char num[64];
        size_t len = (size_t)(ps->p - start);
        if (len >= sizeof(num))
            goto bad;
        memcpy(num, start, len);
        num[len] = '\0';
        char *end;
        v->num = strtod(num, &end);
        if (*end)
            goto bad;
        v->t = real ? J_REAL : J_INT;
        if (!real)
            v->i = strtoll(num, NULL, 10);
    } else {
        goto bad;
    }
    ps->depth--;
    return v;
bad:
    jfree(v);
    return NULL;
}

/* Parses a whole document; asserts that it is JSON. Free with jfree. */
static struct jv *jparse(const char *text)
{
    struct jparser ps = {.p = text};
    struct jv *v = jvalue(&ps);
    cr_assert_not_null(v, "not JSON: %s", text);
    jskip(&ps);
    cr_assert_eq(*ps.p, '\0', "junk after JSON: %s", ps.p);
    return v;
}

static struct jv *jget(const struct jv *o, const char *key)
{
    if (!o || o->t != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return o->items[i];
    return NULL;
}

/* The member `key` of object o, asserted present and of type t. */
static struct jv *jreq(const struct jv *o, const char *key, enum jtype t)
{
    cr_assert_not_null(o, "no object to take \"%s\" from", key);
    cr_assert_eq(o->t, J_OBJ, "not an object (looking for \"%s\")", key);
    struct jv *v = jget(o, key);
    cr_assert_not_null(v, "key \"%s\" missing", key);
    cr_assert_eq(v->t, t, "key \"%s\" has JSON type %d, expected %d", key, (int)v->t, (int)t);
    return v;
}

static const char *jstr(const struct jv *o, const char *key)
{
    return jreq(o, key, J_STR)->str;
}

static long long jint(const struct jv *o, const char *key)
{
    return jreq(o, key, J_INT)->i;
}

/* A metric value: a JSON number, or "NaN", "Infinity", "-Infinity". */
static double jmetric(const struct jv *v)
{
    cr_assert_not_null(v);
    if (v->t == J_INT || v->t == J_REAL)
        return v->num;
    cr_assert_eq(v->t, J_STR, "metric value is neither number nor string");
    if (strcmp(v->str, "NaN") == 0)
        return NAN;
    if (strcmp(v->str, "Infinity") == 0)
        return INFINITY;
    if (strcmp(v->str, "-Infinity") == 0)
        return -INFINITY;
    cr_assert_fail("metric value string \"%s\" is not NaN/Infinity/-Infinity", v->str);
    return 0;
}

/* ---- running the CLI ---------------------------------------------------------------- */

static char state_env[400];

/* `track --server URI args...` with TRACK_NO_AUTOSTART=1, XDG_STATE_HOME in
 * the daemon's dir, and extra env (may be NULL). */
static int trk_at(const char *uri, const char *const *env, const char *in, char **out, char **err,
                  const char *const *args)
{
    const char *argv[80], *envv[40];
    int n = 0, ne = 0;
    argv[n++] = TRACK_BIN;
    argv[n++] = "--server";
    argv[n++] = uri;
    for (int i = 0; args[i] && n < 79; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    snprintf(state_env, sizeof(state_env), "XDG_STATE_HOME=%s/state", d.dir);
    envv[ne++] = state_env;
    envv[ne++] = "TRACK_NO_AUTOSTART=1";
    for (int i = 0; env && env[i] && ne < 39; i++)
        envv[ne++] = env[i];
    envv[ne] = NULL;
    return fx_run(argv, envv, in, out, err);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
/* T(&out, &err, "run", "list"): out/err may be NULL */
#define T(out, err, ...)           trk_at(d.uri, NULL, NULL, out, err, ARGS(__VA_ARGS__))
#define TE(env, in, out, err, ...) trk_at(d.uri, env, in, out, err, ARGS(__VA_ARGS__))

/* Runs and asserts exit 0; returns stdout (caller frees). */
static char *ok_at(const char *const *env, const char *in, const char *const *args)
{
    char *out = NULL, *err = NULL;
    int rc = trk_at(d.uri, env, in, &out, &err, args);
    char cmd[512] = "";
    for (int i = 0; args[i]; i++) {
        size_t l = strlen(cmd);
        snprintf(cmd + l, sizeof(cmd) - l, " %s", args[i]);
    }
    if (rc != 0) {
        static char why[8192];
        snprintf(why, sizeof(why), "track%s: exit %d\nstdout: %.3000s\nstderr: %.3000s", cmd, rc,
                 out, err);
        free(out);
        free(err);
        cr_assert_fail("%s", why);
    }
    free(err);
    return out;
}

#define OKOUT(...) ok_at(NULL, NULL, ARGS(__VA_ARGS__))
#define OKRUN(...) free(ok_at(NULL, NULL, ARGS(__VA_ARGS__)))

/* Runs and asserts exit `want`; returns stderr (caller frees). */
static char *fail_at(int want, const char *const *env, const char *in, const char *const *args)
{
    char *out = NULL, *err = NULL;
    int rc = trk_at(d.uri, env, in, &out, &err, args);
    if (rc != want) {
        static char why[8192];
        snprintf(why, sizeof(why),
                 "track %s %s ...: exit %d, expected %d\nstdout: %.3000s\n"
                 "stderr: %.3000s",
                 args[0], args[1] ? args[1] : "", rc, want, out, err);
        free(out);
        free(err);
        cr_assert_fail("%s", why);
    }
    free(out);
    return err;
}

#define FAILS(want, ...) fail_at(want, NULL, NULL, ARGS(__VA_ARGS__))

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int is_run_id(const char *s)
{
    return strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

/* Starts a run with the CLI; extra options after "run start". */
static void cli_start(char hex[33], const char *const *extra)
{
    const char *args[40] = {"run", "start"};
    int n = 2;
    for (int i = 0; extra && extra[i] && n < 39; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    char *out = ok_at(NULL, NULL, args);
    size_t len = strlen(out);
    cr_assert(len == 33 && out[32] == '\n', "run start printed \"%s\"", out);
    out[32] = '\0';
    cr_assert(is_run_id(out), "run start printed \"%s\", not 32 hex", out);
    memcpy(hex, out, 33);
    free(out);
}

/* `track --json run show RUN`, parsed. */
static struct jv *show_json(const char *run)
{
    char *out = OKOUT("--json", "run", "show", run);
    struct jv *v = jparse(out);
    free(out);
    cr_assert_eq(v->t, J_OBJ);
    return v;
}

/* `track --json metric history RUN KEY`, parsed (an array). */
static struct jv *history_json(const char *run, const char *key)
{
    char *out = OKOUT("--json", "metric", "history", run, key);
    struct jv *v = jparse(out);
    free(out);
    cr_assert_eq(v->t, J_ARR, "metric history --json is not an array");
    return v;
}

/* ---- experiments ----------------------------------------------------------------------- */

Test(cli, experiment_create_prints_id_and_a_duplicate_is_already_exists_exit_1)
{
    char *out = OKOUT("experiment", "create", "vision");
    char *end;
    long id = strtol(out, &end, 10);
    cr_assert(id > 0 && strcmp(end, "\n") == 0, "experiment create printed \"%s\"", out);
    free(out);

    char *err = FAILS(1, "experiment", "create", "vision");
    cr_assert_not_null(strstr(err, "ALREADY_EXISTS"), "stderr: %s", err);
    cr_assert_not_null(strstr(err, "vision"), "stderr: %s", err);
    cr_assert_eq(count_lines(err), 1, "error is not one line: %s", err);
    free(err);

    err = FAILS(1, "experiment", "create", "");
    cr_assert_not_null(strstr(err, "INVALID_ARGUMENT"), "stderr: %s", err);
    free(err);
    err = FAILS(2, "experiment", "create");
    free(err);
    err = FAILS(2, "experiment", "create", "a", "b");
    free(err);

    out = OKOUT("--json", "experiment", "create", "audio");
    struct jv *v = jparse(out);
    cr_assert_gt(jint(v, "experiment_id"), id);
    cr_assert_str_eq(jstr(v, "name"), "audio");
    jfree(v);
    free(out);
    PASS();
}

Test(cli, experiment_list_json_has_the_documented_shape)
{
    OKRUN("experiment", "create", "empty-one");
    char hex[33];
    cli_start(hex, ARGS("--experiment", "busy"));
    cli_start(hex, ARGS("--experiment", "busy"));

    char *out = OKOUT("experiment", "list", "--json");
    struct jv *v = jparse(out);
    free(out);
    cr_assert_eq(v->t, J_ARR);
    cr_assert_eq(v->n, 2);
    int seen = 0;
    for (size_t i = 0; i < v->n; i++) {
        struct jv *e = v->items[i];
        cr_assert_gt(jint(e, "experiment_id"), 0);
        const char *name = jstr(e, "name");
        cr_assert_eq(jreq(e, "archived", J_BOOL)->b, 0);
        cr_assert_gt(jint(e, "created_time"), 1500000000000LL, "times are epoch ms");
        long long runs = jint(e, "run_count");
        if (strcmp(name, "empty-one") == 0) {
            cr_assert_eq(runs, 0);
            seen |= 1;
        } else if (strcmp(name, "busy") == 0) {
            cr_assert_eq(runs, 2);
            seen |= 2;
        }
    }
    cr_assert_eq(seen, 3);
    jfree(v);

    out = OKOUT("experiment", "list");
    cr_assert_not_null(strstr(out, "busy"), "table: %s", out);
    cr_assert_not_null(strstr(out, "empty-one"), "table: %s", out);
    free(out);
    PASS();
}

/* ---- runs ---------------------------------------------------------------------------------- */

Test(cli, run_start_prints_the_id_and_records_every_option)
{
    char parent[33], hex[33];
    cli_start(parent, ARGS("--experiment", "sweep", "--name", "parent"));
    cli_start(hex,
              ARGS("--experiment", "sweep", "--name", "child-1", "--param", "lr=0.01", "--param",
                   "layers=4", "--tag", "stage=dev", "--tag", "note=a b=c", "--parent", parent));

    struct jv *r = show_json(hex);
    cr_assert_str_eq(jstr(r, "run_id"), hex);
    cr_assert_str_eq(jstr(r, "name"), "child-1");
    cr_assert_str_eq(jstr(r, "experiment"), "sweep");
    cr_assert_str_eq(jstr(r, "status"), "RUNNING");
    cr_assert_str_eq(jstr(r, "parent_run_id"), parent);
    struct jv *params = jreq(r, "params", J_OBJ), *tags = jreq(r, "tags", J_OBJ);
    cr_assert_eq(params->n, 2);
    cr_assert_str_eq(jstr(params, "lr"), "0.01");
    cr_assert_str_eq(jstr(params, "layers"), "4");
    cr_assert_str_eq(jstr(tags, "stage"), "dev");
    cr_assert_str_eq(jstr(tags, "note"), "a b=c", "only the first '=' splits K=V");
    jfree(r);

    /* --export prints a line for eval */
    char *out = OKOUT("run", "start", "--export");
    cr_assert_eq(strncmp(out, "export TRACK_RUN_ID=", 20), 0, "--export printed \"%s\"", out);
    cr_assert_eq(strlen(out), 20 + 32 + 1, "--export printed \"%s\"", out);
    out[52] = '\0';
    cr_assert(is_run_id(out + 20));
    /* and without --experiment the run is in Default */
    r = show_json(out + 20);
    cr_assert_str_eq(jstr(r, "experiment"), "Default");
    cr_assert(strlen(jstr(r, "name")) > 0, "no generated name");
    jfree(r);
    free(out);

    char *err = FAILS(2, "run", "start", "--param", "novalue");
    free(err);
    err = FAILS(2, "run", "start", "stray");
    free(err);
    err = FAILS(1, "run", "start", "--parent", "zz");
    cr_assert_not_null(strstr(err, "INVALID_ARGUMENT"), "%s", err);
    free(err);
    PASS();
}

Test(cli, run_show_json_has_the_documented_keys_and_metric_summaries)
{
    char hex[33];
    cli_start(hex, ARGS("--experiment", "shape", "--param", "p=1"));
    OKRUN("log-metric", "--run", hex, "loss", "0.5", "--step", "1", "--time", "1700000000001");
    OKRUN("log-metric", "--run", hex, "loss", "0.25", "--step", "2", "--time", "1700000000002");
    OKRUN("log-metric", "--run", hex, "loss", "0.75", "--step", "3", "--time", "1700000000003");

    struct jv *r = show_json(hex);
    static const char *const keys[] = {"run_id",     "name",     "experiment", "status",
                                       "start_time", "end_time", "user",       "parent_run_id",
                                       "params",     "tags",     "metrics"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        cr_assert_not_null(jget(r, keys[i]), "run show --json lacks \"%s\"", keys[i]);
    cr_assert_gt(jint(r, "start_time"), 1500000000000LL);
    cr_assert_eq(jreq(r, "end_time", J_NULL)->t, J_NULL, "a running run has no end_time");
    cr_assert_eq(jreq(r, "parent_run_id", J_NULL)->t, J_NULL);
    jreq(r, "user", J_STR);
    struct jv *m = jreq(jreq(r, "metrics", J_OBJ), "loss", J_OBJ);
    cr_assert_eq(jmetric(jget(m, "last")), 0.75);
    cr_assert_eq(jmetric(jget(m, "min")), 0.25);
    cr_assert_eq(jmetric(jget(m, "max")), 0.75);
    cr_assert_eq(jint(m, "count"), 3);
    cr_assert_eq(jint(m, "last_step"), 3);
    cr_assert_eq(jint(m, "last_time"), 1700000000003LL);
    jfree(r);

    /* the human form names the same things */
    char *out = OKOUT("run", "show", hex);
    cr_assert_not_null(strstr(out, hex), "%s", out);
    cr_assert_not_null(strstr(out, "shape"), "%s", out);
    cr_assert_not_null(strstr(out, "loss"), "%s", out);
    free(out);
    PASS();
}

/* The usage says `track run show RUN [--json]`: --json after the run. */
Test(cli, run_show_accepts_json_after_the_run)
{
    char hex[33];
    cli_start(hex, ARGS("--name", "order"));
    char *out = OKOUT("run", "show", hex, "--json");
    struct jv *r = jparse(out);
    cr_assert_str_eq(jstr(r, "run_id"), hex);
    jfree(r);
    free(out);
    PASS();
}

Test(cli, run_end_sets_the_status_and_a_bad_status_is_usage_exit_2)
{
    char a[33], b[33], c[33];
    cli_start(a, NULL);
    cli_start(b, NULL);
    cli_start(c, NULL);

    OKRUN("run", "end", "--run", a);
    char env_b[64];
    snprintf(env_b, sizeof(env_b), "TRACK_RUN_ID=%s", b);
    free(ok_at(ARGS(env_b), NULL, ARGS("run", "end", "--status", "failed")));
    OKRUN("run", "end", "--run", c, "--status", "KILLED");

    struct jv *r = show_json(a);
    cr_assert_str_eq(jstr(r, "status"), "FINISHED");
    cr_assert_geq(jint(r, "end_time"), jint(r, "start_time"));
    jfree(r);
    r = show_json(b);
    cr_assert_str_eq(jstr(r, "status"), "FAILED");
    jfree(r);
    r = show_json(c);
    cr_assert_str_eq(jstr(r, "status"), "KILLED");
    jfree(r);

    char *err = FAILS(2, "run", "end", "--run", a, "--status", "bogus");
    cr_assert_not_null(strstr(err, "bogus"), "%s", err);
    free(err);
    err = FAILS(2, "run", "end", "--run", a, "--status", "running");
    free(err);
    /* ending an ended run differently is refused */
    err = FAILS(1, "run", "end", "--run", a, "--status", "failed");
    cr_assert_not_null(strstr(err, "CONFLICT"), "%s", err);
    free(err);
    /* without a run at all */
    err = FAILS(1, "run", "end");
    cr_assert_not_null(strstr(err, "TRACK_RUN_ID"), "%s", err);
    free(err);
    PASS();
}

Test(cli, run_list_filters_by_experiment_and_prints_json)
{
    char a1[33], a2[33], b1[33];
    cli_start(a1, ARGS("--experiment", "A", "--name", "a-one", "--param", "k=v"));
    cli_start(a2, ARGS("--experiment", "A", "--name", "a-two"));
    cli_start(b1, ARGS("--experiment", "B", "--name", "b-one"));

    char *out = OKOUT("run", "list", "--experiment", "A", "--json");
    struct jv *v = jparse(out);
    free(out);
    cr_assert_eq(v->t, J_ARR);
    cr_assert_eq(v->n, 2, "runs of A: %zu", v->n);
    int seen = 0;
    for (size_t i = 0; i < v->n; i++) {
        struct jv *r = v->items[i];
        cr_assert_str_eq(jstr(r, "experiment"), "A");
        jreq(r, "params", J_OBJ);
        jreq(r, "tags", J_OBJ);
        jreq(r, "metrics", J_OBJ);
        if (strcmp(jstr(r, "run_id"), a1) == 0) {
            cr_assert_str_eq(jstr(jreq(r, "params", J_OBJ), "k"), "v");
            seen |= 1;
        }
        if (strcmp(jstr(r, "run_id"), a2) == 0)
            seen |= 2;
    }
    cr_assert_eq(seen, 3);
    jfree(v);

    out = OKOUT("run", "list");
    cr_assert_eq(count_lines(out), 4, "header and three runs: %s", out);
    cr_assert_not_null(strstr(out, a1));
    cr_assert_not_null(strstr(out, b1));
    /* newest first */
    cr_assert_lt(strstr(out, b1), strstr(out, a1), "not newest first: %s", out);
    free(out);

    out = OKOUT("run", "list", "--experiment", "B");
    cr_assert_eq(count_lines(out), 2, "%s", out);
    cr_assert_not_null(strstr(out, "b-one"));
    free(out);
    PASS();
}

Test(cli, run_id_prefixes_resolve_when_unique_and_list_candidates_when_ambiguous)
{
    /* make runs through libtrack until two ids share their first 4 hex chars
     * (expected after ~320 runs; 5000 without one is odds of 1 in 10^80) */
    static char ids[5000][33];
    struct track_opts o = {0};
    struct track_client *cl;
    struct track_err err = {0};
    int n = 0, x = -1, y = -1;
    o.server = d.uri;
    o.spool_path = d.spool;
    o.no_spool = 1;
    cr_assert_eq(track_client_open(&o, &cl, &err), 0, "%s", err.msg);
    struct track_run_opts ro = {0};
    ro.experiment = "prefixes";
    ro.name = "p";
    while (x < 0 && n < 5000) {
        track_run_id id;
        cr_assert_eq(track_run_start(cl, &ro, &id, &err), 0, "%s", err.msg);
        track_run_id_hex(&id, ids[n]);
        for (int i = 0; i < n; i++)
            if (memcmp(ids[i], ids[n], 4) == 0) {
                x = i;
                y = n;
                break;
            }
        n++;
    }
    track_client_close(cl);
    cr_assert_geq(x, 0, "no shared prefix among %d runs", n);
    cr_log_info("two of %d runs share the prefix %.4s", n, ids[x]);

    /* ambiguous: exit 1, naming the candidates */
    char shared[5];
    memcpy(shared, ids[x], 4);
    shared[4] = '\0';
    char *e = FAILS(1, "run", "show", shared);
    cr_assert_not_null(strstr(e, "ambiguous"), "stderr: %s", e);
    cr_assert_not_null(strstr(e, ids[x]), "candidate %s not listed: %s", ids[x], e);
    cr_assert_not_null(strstr(e, ids[y]), "candidate %s not listed: %s", ids[y], e);
    cr_assert_eq(count_lines(e), 1, "%s", e);
    free(e);
    e = FAILS(1, "log-param", "--run", shared, "k=v");
    cr_assert_not_null(strstr(e, "ambiguous"), "stderr: %s", e);
    free(e);

    /* unique prefixes: the shortest unique one of ids[x], and a unique 4-char one */
    size_t len = 4;
    for (;; len++) {
        int clash = 0;
        for (int i = 0; i < n && !clash; i++)
            clash = i != x && memcmp(ids[i], ids[x], len) == 0;
        if (!clash)
            break;
    }
    char pre[33];
    memcpy(pre, ids[x], len);
    pre[len] = '\0';
    struct jv *r = show_json(pre);
    cr_assert_str_eq(jstr(r, "run_id"), ids[x], "prefix %s resolved to another run", pre);
    jfree(r);
    int u = -1;
    for (int i = 0; i < n && u < 0; i++) {
        int clash = 0;
        for (int k = 0; k < n && !clash; k++)
            clash = k != i && memcmp(ids[i], ids[k], 4) == 0;
        if (!clash)
            u = i;
    }
    cr_assert_geq(u, 0);
    memcpy(pre, ids[u], 4);
    pre[4] = '\0';
    r = show_json(pre);
    cr_assert_str_eq(jstr(r, "run_id"), ids[u]);
    jfree(r);
    /* upper case is the same id */
    for (int i = 0; i < 4; i++)
        pre[i] = (char)toupper((unsigned char)pre[i]);
    r = show_json(pre);
    cr_assert_str_eq(jstr(r, "run_id"), ids[u]);
    jfree(r);
    /* writes by prefix land on the full id */
    OKRUN("log-param", "--run", pre, "via=prefix");
    r = show_json(ids[u]);
    cr_assert_str_eq(jstr(jreq(r, "params", J_OBJ), "via"), "prefix");
    jfree(r);

    /* shorter than 4, or not hex: INVALID_ARGUMENT */
    static const char *const bad[] = {"a", "ab", "abc", "zz", "xyzw"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e = FAILS(1, "run", "show", bad[i]);
        cr_assert_not_null(strstr(e, "INVALID_ARGUMENT"), "run %s: %s", bad[i], e);
        free(e);
    }
    /* a prefix nobody has */
    char none[5] = "0000";
    for (int i = 0; i < 65536; i++) {
        snprintf(none, sizeof(none), "%04x", i);
        int used = 0;
        for (int k = 0; k < n && !used; k++)
            used = memcmp(ids[k], none, 4) == 0;
        if (!used)
            break;
    }
    e = FAILS(1, "run", "show", none);
    cr_assert_not_null(strstr(e, "NOT_FOUND"), "%s", e);
    free(e);
    PASS();
}

/* ---- params and tags --------------------------------------------------------------------- */

Test(cli, log_param_is_immutable_and_a_changed_value_is_a_conflict_naming_both)
{
    char hex[33], env[64];
    cli_start(hex, NULL);
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);

    OKRUN("log-param", "--run", hex, "lr=0.1", "epochs=3");
    OKRUN("log-param", "--run", hex, "lr=0.1");
    free(ok_at(ARGS(env), NULL, ARGS("log-param", "lr=0.1", "batch=32")));

    char *e = FAILS(1, "log-param", "--run", hex, "lr=0.2");
    cr_assert_not_null(strstr(e, "CONFLICT"), "%s", e);
    cr_assert_not_null(strstr(e, "0.1"), "old value not named: %s", e);
    cr_assert_not_null(strstr(e, "0.2"), "new value not named: %s", e);
    cr_assert_eq(count_lines(e), 1, "%s", e);
    free(e);
    e = fail_at(1, ARGS(env), NULL, ARGS("log-param", "lr=0.3"));
    cr_assert_not_null(strstr(e, "CONFLICT"), "%s", e);
    free(e);

    e = FAILS(2, "log-param", "--run", hex, "novalue");
    free(e);
    e = FAILS(2, "log-param", "--run", hex);
    free(e);
    e = FAILS(1, "log-param", "--run", hex, "bad key!=1");
    cr_assert_not_null(strstr(e, "INVALID_ARGUMENT"), "%s", e);
    free(e);
    e = FAILS(1, "log-param", "k=v");
    cr_assert_not_null(strstr(e, "no run"), "%s", e);
    free(e);

    struct jv *r = show_json(hex);
    struct jv *p = jreq(r, "params", J_OBJ);
    cr_assert_eq(p->n, 3);
    cr_assert_str_eq(jstr(p, "lr"), "0.1");
    cr_assert_str_eq(jstr(p, "epochs"), "3");
    cr_assert_str_eq(jstr(p, "batch"), "32");
    jfree(r);
    PASS();
}

Test(cli, tags_are_set_with_run_or_env_and_overwritten)
{
    char hex[33], env[64];
    cli_start(hex, ARGS("--tag", "stage=init"));
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);

    OKRUN("tag", "--run", hex, "stage=dev", "owner=me");
    free(ok_at(ARGS(env), NULL, ARGS("tag", "stage=prod")));
    OKRUN("tag", "--run", hex, "empty=");

    struct jv *r = show_json(hex);
    struct jv *t = jreq(r, "tags", J_OBJ);
    cr_assert_str_eq(jstr(t, "stage"), "prod");
    cr_assert_str_eq(jstr(t, "owner"), "me");
    cr_assert_str_eq(jstr(t, "empty"), "");
    jfree(r);
    /* --run wins over TRACK_RUN_ID */
    char other[33];
    cli_start(other, NULL);
    free(ok_at(ARGS(env), NULL, ARGS("tag", "--run", other, "which=flag")));
    r = show_json(other);
    cr_assert_str_eq(jstr(jreq(r, "tags", J_OBJ), "which"), "flag");
    jfree(r);
    r = show_json(hex);
    cr_assert_null(jget(jreq(r, "tags", J_OBJ), "which"), "--run did not win over TRACK_RUN_ID");
    jfree(r);
    PASS();
}

/* ---- metrics ----------------------------------------------------------------------------------
 */

Test(cli, log_metric_stores_negatives_nan_and_infinities_faithfully)
{
    char hex[33];
    cli_start(hex, NULL);
    OKRUN("log-metric", "--run", hex, "x", "-0.5", "--step", "0", "--time", "1700000000100");
    OKRUN("log-metric", "--run", hex, "x", "nan", "--step", "1");
    OKRUN("log-metric", "--run", hex, "x", "inf", "--step", "2");
    OKRUN("log-metric", "--run", hex, "x", "-inf", "--step", "3");
    OKRUN("log-metric", "--run", hex, "--step", "4", "x", "-1e-300");
    OKRUN("log-metric", "--run", hex, "x", "0.1", "--step", "5");
    free(ok_at(NULL, "x -Infinity 6\nx NaN 7\n", ARGS("log-metric", "--run", hex, "--stdin")));

    struct jv *h = history_json(hex, "x");
    cr_assert_eq(h->n, 8);
    for (size_t i = 0; i < h->n; i++) {
        cr_assert_eq(jint(h->items[i], "step"), (long long)i);
        cr_assert_gt(jint(h->items[i], "timestamp"), 1500000000000LL);
    }
    cr_assert_eq(jint(h->items[0], "timestamp"), 1700000000100LL);
    cr_assert_eq(jmetric(jget(h->items[0], "value")), -0.5);
    struct jv *v1 = jget(h->items[1], "value"), *v2 = jget(h->items[2], "value"),
              *v3 = jget(h->items[3], "value");
    cr_assert(v1->t == J_STR && strcmp(v1->str, "NaN") == 0, "NaN not written as \"NaN\"");
    cr_assert(v2->t == J_STR && strcmp(v2->str, "Infinity") == 0, "inf not \"Infinity\"");
    cr_assert(v3->t == J_STR && strcmp(v3->str, "-Infinity") == 0, "-inf not \"-Infinity\"");
    cr_assert_eq(jmetric(jget(h->items[4], "value")), -1e-300);
    cr_assert_eq(jmetric(jget(h->items[5], "value")), 0.1, "0.1 did not round-trip exactly");
    cr_assert(isinf(jmetric(jget(h->items[6], "value"))));
    cr_assert(isnan(jmetric(jget(h->items[7], "value"))));
    jfree(h);

    struct jv *r = show_json(hex);
    struct jv *m = jreq(jreq(r, "metrics", J_OBJ), "x", J_OBJ);
    cr_assert_eq(jint(m, "count"), 8);
    cr_assert_eq(jint(m, "last_step"), 7);
    cr_assert(isnan(jmetric(jget(m, "last"))));
    cr_assert(isinf(jmetric(jget(m, "min"))) && jmetric(jget(m, "min")) < 0);
    cr_assert(isinf(jmetric(jget(m, "max"))) && jmetric(jget(m, "max")) > 0);
    jfree(r);

    /* usage errors: exit 2, nothing stored */
    char *e = FAILS(2, "log-metric", "--run", hex, "x", "1", "--step", "-1");
    cr_assert_not_null(strstr(e, "step"), "%s", e);
    free(e);
    e = FAILS(2, "log-metric", "--run", hex, "x", "abc");
    free(e);
    e = FAILS(2, "log-metric", "--run", hex, "x");
    free(e);
    e = FAILS(2, "log-metric", "--run", hex, "x", "1", "--step", "1.5");
    free(e);
    e = FAILS(2, "log-metric", "--run", hex, "x", "1", "--time", "-5");
    free(e);
    e = FAILS(1, "log-metric", "--run", hex, "bad*key", "1");
    cr_assert_not_null(strstr(e, "INVALID_ARGUMENT"), "%s", e);
    free(e);
    r = show_json(hex);
    cr_assert_eq(jint(jreq(jreq(r, "metrics", J_OBJ), "x", J_OBJ), "count"), 8);
    jfree(r);
    PASS();
}

Test(cli, log_metric_stdin_sends_lines_in_batches_and_names_a_bad_line)
{
    char hex[33], env[64];
    cli_start(hex, NULL);
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);

    const char *in = "loss 0.5\n"
                     "loss 0.4\n"
                     "acc 0.9 10\n"
                     "# a comment\n"
                     "\n"
                     "loss\t0.3\n"
                     "acc 0.8\n"
                     "lr -inf 3\n";
    free(ok_at(ARGS(env), in, ARGS("log-metric", "--stdin")));
    struct jv *h = history_json(hex, "loss");
    cr_assert_eq(h->n, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(jint(h->items[i], "step"), (long long)i, "lines without STEP count up");
    cr_assert_eq(jmetric(jget(h->items[2], "value")), 0.3);
    jfree(h);
    h = history_json(hex, "acc");
    cr_assert_eq(h->n, 2);
    cr_assert_eq(jint(h->items[0], "step"), 10);
    cr_assert_eq(jint(h->items[1], "step"), 11, "after step 10 comes 11");
    jfree(h);
    h = history_json(hex, "lr");
    cr_assert_eq(h->n, 1);
    cr_assert_str_eq(jreq(h->items[0], "value", J_STR)->str, "-Infinity");
    jfree(h);

    /* many lines in one process */
    size_t n = 20000, cap = n * 24 + 1, off = 0;
    char *big = malloc(cap);
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(big + off, cap - off, "bulk/%zu %zu.25 %zu\n", i % 2, i, i / 2);
    free(ok_at(ARGS(env), big, ARGS("log-metric", "--stdin")));
    free(big);
    struct jv *r = show_json(hex);
    struct jv *metrics = jreq(r, "metrics", J_OBJ);
    cr_assert_eq(jint(jreq(metrics, "bulk/0", J_OBJ), "count"), 10000);
    cr_assert_eq(jint(jreq(metrics, "bulk/1", J_OBJ), "count"), 10000);
    cr_assert_eq(jint(jreq(metrics, "bulk/1", J_OBJ), "last_step"), 9999);
    cr_assert_eq(jmetric(jget(jreq(metrics, "bulk/1", J_OBJ), "last")), 19999.25);
    jfree(r);

    /* a bad line: exit 1 and its number */
    static const char *const bad[][2] = {
        {"ok 1\nok 2\nloss abc\nok 3\n", "line 3"},
        {"ok 1 2 3\n", "line 1"},
        {"ok 1\nok 1 -2\n", "line 2"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *e = fail_at(1, ARGS(env), bad[i][0], ARGS("log-metric", "--stdin"));
        cr_assert_not_null(strstr(e, bad[i][1]), "input %zu: stderr \"%s\" lacks \"%s\"", i, e,
                           bad[i][1]);
        free(e);
    }
    char *e = fail_at(2, ARGS(env), "x 1\n", ARGS("log-metric", "--stdin", "x", "1"));
    free(e);
    PASS();
}

Test(cli, metric_history_prints_table_csv_and_json)
{
    char hex[33];
    cli_start(hex, NULL);
    OKRUN("log-metric", "--run", hex, "loss", "2.5", "--step", "10", "--time", "1700000000000");
    OKRUN("log-metric", "--run", hex, "loss", "-0.125", "--step", "20", "--time", "1700000001000");

    char *out = OKOUT("metric", "history", hex, "loss", "--csv");
    cr_assert_str_eq(out, "step,timestamp,value\n"
                          "10,1700000000000,2.5\n"
                          "20,1700000001000,-0.125\n");
    free(out);
    out = OKOUT("metric", "history", hex, "loss");
    cr_assert_eq(count_lines(out), 3, "%s", out);
    cr_assert_not_null(strstr(out, "STEP"), "%s", out);
    cr_assert_not_null(strstr(out, "-0.125"), "%s", out);
    free(out);
    out = OKOUT("metric", "history", "--json", hex, "loss");
    struct jv *h = jparse(out);
    free(out);
    cr_assert_eq(h->n, 2);
    cr_assert_eq(jint(h->items[1], "step"), 20);
    cr_assert_eq(jint(h->items[1], "timestamp"), 1700000001000LL);
    cr_assert_eq(jmetric(jget(h->items[1], "value")), -0.125);
    jfree(h);

    char *e = FAILS(1, "metric", "history", hex, "nope");
    cr_assert_not_null(strstr(e, "NOT_FOUND"), "%s", e);
    free(e);
    e = FAILS(2, "metric", "history", hex);
    free(e);
    e = FAILS(2, "metric", "history", hex, "loss", "--csv", "--json");
    free(e);
    PASS();
}

/* ---- exec -------------------------------------------------------------------------------------
 */

static char track_bin_env[400];

/* Writes the child script into the daemon's dir; returns its path (static). */
static const char *child_script(void)
{
    static char path[400];
    snprintf(path, sizeof(path), "%s/child.sh", d.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("#!/bin/sh\n"
          "# a training job: prints, logs a metric through the CLI, exits\n"
          "printf 'epoch 1 done\\n\\tstill me\\nno newline at the end'\n"
          "printf 'to stderr\\n' >&2\n"
          "\"$TRACK_BIN\" log-metric acc 0.75 --step 1 || exit 99\n"
          "[ -n \"$TRACK_RUN_ID\" ] || exit 98\n"
          "case \"${CHILD_MODE:-ok}\" in\n"
          "  fail) exit 3 ;;\n"
          "  kill) kill -9 $$ ;;\n"
          "esac\n"
          "exit 0\n",
          f);
    fclose(f);
    chmod(path, 0755);
    snprintf(track_bin_env, sizeof(track_bin_env), "TRACK_BIN=%s", TRACK_BIN);
    return path;
}

/* The one run of experiment `exp`, parsed from run list --json. */
static struct jv *only_run_of(const char *exp)
{
    char *out = OKOUT("--json", "run", "list", "--experiment", exp);
    struct jv *v = jparse(out);
    free(out);
    cr_assert_eq(v->t, J_ARR);
    cr_assert_eq(v->n, 1, "experiment %s has %zu runs", exp, v->n);
    struct jv *r = v->items[0];
    v->items[0] = NULL;
    v->n = 0;
    jfree(v);
    return r;
}

Test(cli, exec_records_a_finished_run_and_passes_output_through)
{
    const char *script = child_script();
    char *out = NULL, *err = NULL;
    int rc = TE(ARGS(track_bin_env), NULL, &out, &err, "exec", "--experiment", "exec-ok", "--name",
                "wrapped", "--param", "lr=0.5", "--tag", "kind=test", "--", script, "arg one");
    cr_assert_eq(rc, 0, "exec: exit %d, stderr: %s", rc, err);
    cr_assert_str_eq(out, "epoch 1 done\n\tstill me\nno newline at the end",
                     "child stdout was altered");
    cr_assert_str_eq(err, "to stderr\n", "child stderr was altered (or exec added to it)");
    free(out);
    free(err);

    struct jv *r = only_run_of("exec-ok");
    cr_assert_str_eq(jstr(r, "status"), "FINISHED");
    cr_assert_str_eq(jstr(r, "name"), "wrapped");
    cr_assert_neq(jreq(r, "end_time", J_INT)->i, 0);
    cr_assert_str_eq(jstr(jreq(r, "params", J_OBJ), "lr"), "0.5");
    struct jv *tags = jreq(r, "tags", J_OBJ);
    cr_assert_str_eq(jstr(tags, "kind"), "test");
    cr_assert_str_eq(jstr(tags, "sys.exit_code"), "0");
    const char *cmd = jstr(tags, "sys.command");
    cr_assert_not_null(strstr(cmd, script), "sys.command \"%s\"", cmd);
    cr_assert_not_null(strstr(cmd, "'arg one'"), "sys.command \"%s\" lost the quoting", cmd);
    char cwd[1024];
    cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
    cr_assert_str_eq(jstr(tags, "sys.cwd"), cwd);
    char host[256] = "";
    gethostname(host, sizeof(host));
    cr_assert_str_eq(jstr(tags, "sys.host"), host);
    struct jv *acc = jreq(jreq(r, "metrics", J_OBJ), "acc", J_OBJ);
    cr_assert_eq(jint(acc, "count"), 1, "the child's metric did not land in the exec's run");
    cr_assert_eq(jmetric(jget(acc, "last")), 0.75);
    jfree(r);
    PASS();
}

Test(cli, exec_of_a_failing_child_records_failed_and_exits_with_its_code)
{
    const char *script = child_script();
    char *out = NULL, *err = NULL;
    int rc = TE(ARGS(track_bin_env, "CHILD_MODE=fail"), NULL, &out, &err, "exec", "--experiment",
                "exec-fail", "--", script);
    cr_assert_eq(rc, 3, "exec: exit %d, stderr: %s", rc, err);
    free(out);
    free(err);
    struct jv *r = only_run_of("exec-fail");
    cr_assert_str_eq(jstr(r, "status"), "FAILED");
    cr_assert_str_eq(jstr(jreq(r, "tags", J_OBJ), "sys.exit_code"), "3");
    cr_assert_eq(jint(jreq(jreq(r, "metrics", J_OBJ), "acc", J_OBJ), "count"), 1);
    jfree(r);

    /* a command that does not exist: 127, as a shell says */
    rc = TE(NULL, NULL, &out, &err, "exec", "--experiment", "exec-missing", "--",
            "/nonexistent/program");
    cr_assert_eq(rc, 127, "exit %d, stderr %s", rc, err);
    free(out);
    free(err);
    r = only_run_of("exec-missing");
    cr_assert_str_eq(jstr(r, "status"), "FAILED");
    jfree(r);
    char *e = FAILS(2, "exec", "--experiment", "x");
    free(e);
    PASS();
}

Test(cli, exec_of_a_child_killed_by_a_signal_records_killed_and_exits_128_plus_n)
{
    const char *script = child_script();
    char *out = NULL, *err = NULL;
    int rc = TE(ARGS(track_bin_env, "CHILD_MODE=kill"), NULL, &out, &err, "exec", "--experiment",
                "exec-kill", "--", script);
    cr_assert_eq(rc, 137, "exec: exit %d, stderr: %s", rc, err);
    free(out);
    free(err);
    struct jv *r = only_run_of("exec-kill");
    cr_assert_str_eq(jstr(r, "status"), "KILLED");
    const char *code = jstr(jreq(r, "tags", J_OBJ), "sys.exit_code");
    cr_assert_not_null(strstr(code, "9"), "sys.exit_code \"%s\"", code);
    jfree(r);
    PASS();
}

/* sh -c SCRIPT with the CLI's environment; asserts exit 0, returns stdout */
static char *shell_ok(const char *script)
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    char *out = NULL, *err = NULL;
    snprintf(state_env, sizeof(state_env), "XDG_STATE_HOME=%s/state", d.dir);
    const char *env[] = {state_env,
                         "TRACK_NO_AUTOSTART=1",
                         "GIT_CONFIG_NOSYSTEM=1",
                         "GIT_AUTHOR_NAME=t",
                         "GIT_AUTHOR_EMAIL=t@example.com",
                         "GIT_COMMITTER_NAME=t",
                         "GIT_COMMITTER_EMAIL=t@example.com",
                         NULL};
    int rc = fx_run(argv, env, NULL, &out, &err);
    cr_assert_eq(rc, 0, "sh -c '%s': exit %d\nstdout: %s\nstderr: %s", script, rc, out, err);
    free(err);
    return out;
}

Test(cli, exec_inside_a_git_work_tree_records_commit_branch_and_dirty)
{
    char cmd[2048], repo[400];
    snprintf(repo, sizeof(repo), "%s/repo", d.dir);
    snprintf(cmd, sizeof(cmd),
             "set -e; mkdir %s; cd %s; git init -q .; echo one > f.txt; git add f.txt;"
             " git commit -q -m first; git checkout -q -b feature-x; git rev-parse HEAD",
             repo, repo);
    char *head = shell_ok(cmd);
    head[strcspn(head, "\n")] = '\0';
    cr_assert_eq(strlen(head), 40, "git rev-parse printed \"%s\"", head);

    /* clean */
    snprintf(cmd, sizeof(cmd), "cd %s && exec %s --server %s exec --experiment git-clean -- true",
             repo, TRACK_BIN, d.uri);
    free(shell_ok(cmd));
    struct jv *r = only_run_of("git-clean");
    struct jv *tags = jreq(r, "tags", J_OBJ);
    cr_assert_str_eq(jstr(tags, "sys.git.commit"), head);
    cr_assert_str_eq(jstr(tags, "sys.git.branch"), "feature-x");
    cr_assert_str_eq(jstr(tags, "sys.git.dirty"), "false");
    cr_assert_str_eq(jstr(tags, "sys.cwd"), repo);
    jfree(r);

    /* a tracked file changed */
    snprintf(cmd, sizeof(cmd),
             "cd %s && echo two >> f.txt && exec %s --server %s exec --experiment git-dirty -- "
             "true",
             repo, TRACK_BIN, d.uri);
    free(shell_ok(cmd));
    r = only_run_of("git-dirty");
    tags = jreq(r, "tags", J_OBJ);
    cr_assert_str_eq(jstr(tags, "sys.git.commit"), head);
    cr_assert_str_eq(jstr(tags, "sys.git.dirty"), "true");
    jfree(r);

    /* outside any work tree: no git tags */
    snprintf(cmd, sizeof(cmd), "cd %s && exec %s --server %s exec --experiment no-git -- true",
             d.dir, TRACK_BIN, d.uri);
    free(shell_ok(cmd));
    r = only_run_of("no-git");
    tags = jreq(r, "tags", J_OBJ);
    cr_assert_null(jget(tags, "sys.git.commit"), "git tags outside a work tree");
    cr_assert_str_eq(jstr(tags, "sys.exit_code"), "0");
    jfree(r);
    free(head);
    PASS();
}

/* ---- status, usage ----------------------------------------------------------------------------
 */

Test(cli, status_json_reports_version_uptime_data_dir_and_counts)
{
    char hex[33];
    cli_start(hex, ARGS("--experiment", "s1"));
    OKRUN("log-metric", "--run", hex, "m", "1");
    OKRUN("log-metric", "--run", hex, "m", "2", "--step", "1");

    char *out = OKOUT("status", "--json");
    struct jv *s = jparse(out);
    free(out);
    cr_assert_str_eq(jstr(s, "server_version"), TRACK_VERSION);
    cr_assert_geq(jint(s, "uptime_ms"), 0);
    cr_assert_str_eq(jstr(s, "data_dir"), d.dir);
    cr_assert_eq(jint(s, "experiments"), 1);
    cr_assert_eq(jint(s, "runs"), 1);
    cr_assert_eq(jint(s, "metric_points"), 2);
    cr_assert_eq(jint(s, "pid"), d.pid);
    cr_assert_str_eq(jstr(s, "server"), d.uri);
    jfree(s);

    out = OKOUT("status");
    cr_assert_not_null(strstr(out, d.dir), "%s", out);
    cr_assert_not_null(strstr(out, TRACK_VERSION), "%s", out);
    free(out);
    PASS();
}

Test(cli, help_works_on_every_command_and_usage_errors_exit_2)
{
    static const char *const cmds[][2] = {
        {"experiment", "create"}, {"experiment", "list"}, {"run", "start"},    {"run", "end"},
        {"run", "list"},          {"run", "show"},        {"log-param", NULL}, {"tag", NULL},
        {"log-metric", NULL},     {"metric", "history"},  {"exec", NULL},      {"status", NULL},
        {"sync", NULL},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        char want[64], *out = NULL, *err = NULL;
        const char *a = cmds[i][0], *b = cmds[i][1];
        snprintf(want, sizeof(want), "usage: track %s%s%s", a, b ? " " : "", b ? b : "");
        int rc = b ? T(&out, &err, a, b, "--help") : T(&out, &err, a, "--help");
        cr_assert_eq(rc, 0, "%s --help: exit %d, stderr %s", want + 13, rc, err);
        cr_assert_not_null(strstr(out, want), "%s --help printed: %s", want + 13, out);
        free(out);
        free(err);
    }
    /* an unknown option, through each way commands parse their options */
    static const char *const bad[][2] = {
        {"run", "start"}, {"log-metric", NULL}, {"metric", "history"},
        {"exec", NULL},   {"status", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *out = NULL, *err = NULL;
        const char *a = bad[i][0], *b = bad[i][1];
        int rc = b ? T(&out, &err, a, b, "--no-such-option") : T(&out, &err, a, "--no-such-option");
        cr_assert_eq(rc, 2, "%s %s --no-such-option: exit %d", a, b ? b : "", rc);
        cr_assert_not_null(strstr(err, "usage"), "%s: stderr %s", a, err);
        free(out);
        free(err);
    }

    char *out = NULL, *err = NULL;
    const char *argv[] = {TRACK_BIN, NULL};
    cr_assert_eq(fx_run(argv, NULL, NULL, &out, &err), 2, "track without arguments");
    cr_assert_not_null(strstr(err, "usage"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(T(&out, &err, "--help"), 0);
    cr_assert_not_null(strstr(out, "commands"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(T(&out, &err, "help", "run", "start"), 0);
    cr_assert_not_null(strstr(out, "usage: track run start"), "%s", out);
    free(out);
    free(err);
    cr_assert_eq(T(&out, &err, "no-such-command"), 2);
    free(out);
    free(err);
    cr_assert_eq(T(&out, &err, "run"), 2, "a noun without its verb");
    cr_assert_not_null(strstr(err, "run start"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(T(&out, &err, "run", "frobnicate"), 2);
    free(out);
    free(err);
    cr_assert_eq(T(&out, &err, "--bogus-global", "status"), 2);
    free(out);
    free(err);
    PASS();
}

/* ---- the daemon is not there ------------------------------------------------------------------
 */

Test(cli, a_read_without_a_daemon_fails_fast_with_one_line_naming_the_address)
{
    char uri[400], *out = NULL, *err = NULL;
    snprintf(uri, sizeof(uri), "ipc://%s/nobody-listens.sock", d.dir);
    long long t0 = fx_now_ms();
    int rc = trk_at(uri, NULL, NULL, &out, &err, ARGS("run", "list"));
    long long ms = fx_now_ms() - t0;
    cr_assert_eq(rc, 1, "exit %d", rc);
    cr_assert_lt(ms, 2000, "took %lld ms", ms);
    cr_assert_eq(count_lines(err), 1, "not one line: %s", err);
    cr_assert_not_null(strstr(err, uri), "the address is not named: %s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);

    /* a stale socket file (a daemon that died) is the same */
    char stale[300];
    snprintf(stale, sizeof(stale), "%s/stale.sock", d.dir);
    FILE *f = fopen(stale, "w");
    fclose(f);
    snprintf(uri, sizeof(uri), "ipc://%s", stale);
    t0 = fx_now_ms();
    rc = trk_at(uri, NULL, NULL, &out, &err, ARGS("status"));
    ms = fx_now_ms() - t0;
    cr_assert_eq(rc, 1);
    cr_assert_lt(ms, 2000, "took %lld ms", ms);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    free(out);
    free(err);

    /* tcp: bounded by the client's timeout (2 s), and names the address */
    t0 = fx_now_ms();
    rc = trk_at("tcp://127.0.0.1:1", NULL, NULL, &out, &err, ARGS("experiment", "list"));
    ms = fx_now_ms() - t0;
    cr_assert_eq(rc, 1);
    cr_assert_lt(ms, 4500, "took %lld ms", ms);
    cr_assert_eq(count_lines(err), 1, "%s", err);
    cr_assert_not_null(strstr(err, "tcp://127.0.0.1:1"), "%s", err);
    free(out);
    free(err);
    PASS();
}

Test(cli, log_metric_without_a_daemon_is_spooled_and_sync_delivers_it_once)
{
    char hex[33], env[64], spool[400];
    struct stat sb;
    cli_start(hex, ARGS("--experiment", "offline"));
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);
    cr_assert_eq(fx_daemon_stop(&d), 0, "trackd did not exit 0 on SIGTERM");

    char *out = NULL, *err = NULL;
    long long t0 = fx_now_ms();
    int rc = TE(ARGS(env), NULL, &out, &err, "log-metric", "loss", "0.125", "--step", "7");
    long long ms = fx_now_ms() - t0;
    cr_assert_eq(rc, 0, "log-metric with the daemon down: exit %d, stderr %s", rc, err);
    cr_assert_lt(ms, 3000, "log-metric stalled %lld ms", ms);
    cr_assert_eq(count_lines(err), 1, "expected one warning line, got: %s", err);
    cr_assert_not_null(strstr(err, "warning"), "%s", err);
    cr_assert_not_null(strstr(err, "spool"), "the warning does not say it was spooled: %s", err);
    cr_assert_str_eq(out, "");
    free(out);
    free(err);
    snprintf(spool, sizeof(spool), "%s/state/track/spool-%u.bin", d.dir, (unsigned)getuid());
    cr_assert_eq(stat(spool, &sb), 0, "no spool at %s", spool);
    cr_assert_gt(sb.st_size, 32);
    /* params too */
    rc = TE(ARGS(env), NULL, &out, &err, "log-param", "mode=offline");
    cr_assert_eq(rc, 0, "log-param with the daemon down: %s", err);
    free(out);
    free(err);
    /* reads cannot be spooled */
    err = FAILS(1, "run", "show", hex);
    free(err);

    cr_assert_eq(fx_daemon_restart(&d, NULL), 0, "trackd did not restart");
    out = OKOUT("sync");
    cr_assert_str_eq(out, "delivered 2 spooled requests\n");
    free(out);
    out = OKOUT("sync");
    cr_assert_str_eq(out, "delivered 0 spooled requests\n");
    free(out);

    struct jv *h = history_json(hex, "loss");
    cr_assert_eq(h->n, 1, "%zu points after sync, expected exactly 1", h->n);
    cr_assert_eq(jint(h->items[0], "step"), 7);
    cr_assert_eq(jmetric(jget(h->items[0], "value")), 0.125);
    jfree(h);
    struct jv *r = show_json(hex);
    cr_assert_str_eq(jstr(jreq(r, "params", J_OBJ), "mode"), "offline");
    jfree(r);
    out = OKOUT("--json", "status");
    struct jv *s = jparse(out);
    cr_assert_eq(jint(s, "spooled_requests"), 0);
    cr_assert_eq(jint(s, "metric_points"), 1);
    jfree(s);
    free(out);
    PASS();
}

/* `track exec` must never stop a training job because the tracker is away:
 * the run, the child's points and the end are spooled, `track sync` delivers. */
Test(cli, exec_without_a_daemon_runs_the_child_and_sync_delivers_the_whole_run)
{
    const char *script = child_script();
    cr_assert_eq(fx_daemon_stop(&d), 0);
    char *out = NULL, *err = NULL;
    long long t0 = fx_now_ms();
    int rc = TE(ARGS(track_bin_env), NULL, &out, &err, "exec", "--experiment", "offline-exec", "--",
                script);
    long long ms = fx_now_ms() - t0;
    cr_assert_eq(rc, 0, "exec with the daemon down: exit %d, stderr %s", rc, err);
    cr_assert_str_eq(out, "epoch 1 done\n\tstill me\nno newline at the end");
    cr_assert_lt(ms, 5000, "exec stalled %lld ms", ms);
    free(out);
    free(err);

    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    out = OKOUT("--json", "sync");
    struct jv *s = jparse(out);
    cr_assert_geq(jint(s, "delivered"), 3);
    jfree(s);
    free(out);
    struct jv *r = only_run_of("offline-exec");
    cr_assert_str_eq(jstr(r, "status"), "FINISHED");
    cr_assert_str_eq(jstr(jreq(r, "tags", J_OBJ), "sys.exit_code"), "0");
    cr_assert_eq(jint(jreq(jreq(r, "metrics", J_OBJ), "acc", J_OBJ), "count"), 1);
    jfree(r);
    PASS();
}

/* A SIGTERM to `track exec` (a scheduler cancelling the job) reaches the
 * child; the run ends KILLED and exec exits 128+15. */
Test(cli, exec_forwards_sigterm_to_the_child_and_records_killed)
{
    char *out = NULL, *err = NULL;
    /* the child waits a moment so exec has its handlers in place, then
     * signals its parent (exec) and sleeps until the forwarded signal */
    int rc = T(&out, &err, "exec", "--experiment", "cancelled", "--", "/bin/sh", "-c",
               "sleep 0.3; kill -TERM $PPID; exec sleep 10");
    cr_assert_eq(rc, 143, "exec: exit %d, stderr %s", rc, err);
    free(out);
    free(err);
    struct jv *r = only_run_of("cancelled");
    cr_assert_str_eq(jstr(r, "status"), "KILLED");
    cr_assert_not_null(strstr(jstr(jreq(r, "tags", J_OBJ), "sys.exit_code"), "15"));
    jfree(r);
    PASS();
}

/* Many points from stdin with the daemon down: spooled in batches, a warning
 * or two (not one per line), all delivered once by `track sync`. */
Test(cli, log_metric_stdin_without_a_daemon_warns_once_not_per_line)
{
    char hex[33], env[64];
    cli_start(hex, NULL);
    snprintf(env, sizeof(env), "TRACK_RUN_ID=%s", hex);
    cr_assert_eq(fx_daemon_stop(&d), 0);

    size_t n = 10000, cap = n * 20 + 1, off = 0;
    char *in = malloc(cap);
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(in + off, cap - off, "loss %zu\n", i);
    char *out = NULL, *err = NULL;
    int rc = TE(ARGS(env), in, &out, &err, "log-metric", "--stdin");
    free(in);
    cr_assert_eq(rc, 0, "exit %d: %.500s", rc, err);
    int lines = count_lines(err);
    char first[300];
    snprintf(first, sizeof(first), "%.*s", (int)strcspn(err, "\n"), err);
    free(out);
    free(err);

    cr_assert_eq(fx_daemon_restart(&d, NULL), 0);
    OKRUN("sync");
    struct jv *r = show_json(hex);
    struct jv *m = jreq(jreq(r, "metrics", J_OBJ), "loss", J_OBJ);
    long long count = jint(m, "count"), last_step = jint(m, "last_step");
    jfree(r);
    cr_assert_eq(count, (long long)n, "points after sync");
    cr_assert_eq(last_step, (long long)n - 1);
    cr_assert_leq(lines, 3, "%d warning lines for %zu input lines (first: %s)", lines, n, first);
    PASS();
}
