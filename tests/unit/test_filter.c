/*
 * test_filter.c: the run search language (storage/filter.c).
 *
 * Two layers. `compile` and `errors`/`limits` check filter_compile alone: the
 * SQL it writes uses only a fixed vocabulary (so no key or value from the
 * text can reach it), the binds carry the values with the right types, and
 * bad input is STORE_E_INVALID at the exact column. `exec` runs the compiled
 * fragments against an in-memory SQLite database built here with the schema
 * filter.h describes, and checks the exact runs returned, in order.
 */
#include <stdlib.h>

#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "filter.h"

#define NOW  1700000000000LL
#define MIN  (60LL * 1000)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

/* ---- helpers ------------------------------------------------------------- */

static struct filter_sql compile_ok(const char *filter, const char *order)
{
    struct filter_sql f;
    struct store_err err = {0};
    int rc = filter_compile(filter, order, NOW, &f, &err);
    cr_assert_eq(rc, 0, "filter [%s] order [%s]: rc %d: %s", filter ? filter : "(null)",
                 order ? order : "(null)", rc, err.msg);
    return f;
}

/* Expects STORE_E_INVALID with exactly `msg` (when it ends in '*', a prefix). */
static void expect_error(const char *filter, const char *order, const char *msg)
{
    struct filter_sql f;
    struct store_err err = {0};
    size_t n = strlen(msg);
    int rc = filter_compile(filter, order, NOW, &f, &err);
    cr_assert_eq(rc, STORE_E_INVALID, "filter [%s] order [%s]: rc %d (%s)",
                 filter ? filter : "(null)", order ? order : "(null)", rc, err.msg);
    cr_expect_eq(err.code, STORE_E_INVALID);
    cr_expect_null(f.where);
    cr_expect_null(f.order);
    cr_expect_null(f.binds);
    cr_expect_eq(f.n_binds, 0);
    if (n && msg[n - 1] == '*')
        cr_expect(strncmp(err.msg, msg, n - 1) == 0, "got   [%s]\nwanted [%s]", err.msg, msg);
    else
        cr_expect_str_eq(err.msg, msg);
}

static const char *const vocab[] = {
    "SELECT",      "FROM",     "JOIN",
    "ON",          "WHERE",    "AND",
    "OR",          "NOT",      "IN",
    "IS",          "NULL",     "LIKE",
    "GLOB",        "ESCAPE",   "CAST",
    "AS",          "REAL",     "COALESCE",
    "NULLIF",      "lower",    "ASC",
    "DESC",        "s",        "k",
    "p",           "t",        "metric_summary",
    "metric_keys", "params",   "tags",
    "s.last",      "s.min",    "s.max",
    "s.run",       "s.key_id", "k.id",
    "k.name",      "p.value",  "p.run",
    "p.key",       "t.value",  "t.run",
    "t.key",       "r.id",     "r.status",
    "r.name",      "r.user",   "e.name",
    "r.start_ms",  "r.end_ms", "r.hex",
    NULL,
};

static const char *const fixed_literals[] = {
    "'\\'", "'[0-9+.-]*'", "'*[0-9]*'", "'*[^0-9eE.+-]*'", NULL,
};

/* Asserts that `sql` holds nothing but our fixed words, column names, the
 * fixed GLOB/ESCAPE literals, ?N parameters, the 0 of NULLIF and operators:
 * no key or value from a filter can be in it. */
static void assert_sql_clean(const char *sql)
{
    size_t i = 0;
    if (!sql)
        return;
    while (sql[i]) {
        char c = sql[i];
        if (c == ' ') {
            i++;
        } else if (c == '?') {
            cr_assert(sql[i + 1] >= '1' && sql[i + 1] <= '9', "bad parameter in [%s]", sql);
            i++;
            while (sql[i] >= '0' && sql[i] <= '9')
                i++;
        } else if (c == '\'') {
            int ok = 0;
            for (int k = 0; fixed_literals[k]; k++) {
                size_t n = strlen(fixed_literals[k]);
                if (strncmp(sql + i, fixed_literals[k], n) == 0) {
                    i += n;
                    ok = 1;
                    break;
                }
            }
            cr_assert(ok, "unexpected literal at [%s] in [%s]", sql + i, sql);
        } else if (c == '0' && (sql[i + 1] == ')' || sql[i + 1] == ' ')) {
            i++;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_') {
            size_t s = i;
            int ok = 0;
            while ((sql[i] >= 'A' && sql[i] <= 'Z') || (sql[i] >= 'a' && sql[i] <= 'z') ||
                   (sql[i] >= '0' && sql[i] <= '9') || sql[i] == '_' || sql[i] == '.')
                i++;
            for (int k = 0; vocab[k]; k++)
                if (strlen(vocab[k]) == i - s && strncmp(vocab[k], sql + s, i - s) == 0)
                    ok = 1;
            cr_assert(ok, "unexpected word [%.*s] in [%s]", (int)(i - s), sql + s, sql);
        } else {
            cr_assert(strchr("(),=<>-", c) != NULL, "unexpected character '%c' in [%s]", c, sql);
            i++;
        }
    }
}

static void expect_text(const struct filter_sql *f, int i, const char *s)
{
    cr_assert_lt(i, f->n_binds, "bind %d missing", i + 1);
    cr_expect_eq(f->binds[i].type, FILTER_BIND_TEXT, "bind %d type %d", i + 1, f->binds[i].type);
    if (f->binds[i].type == FILTER_BIND_TEXT)
        cr_expect_str_eq(f->binds[i].s, s, "bind %d", i + 1);
}

static void expect_int(const struct filter_sql *f, int i, int64_t v)
{
    cr_assert_lt(i, f->n_binds, "bind %d missing", i + 1);
    cr_expect_eq(f->binds[i].type, FILTER_BIND_INT, "bind %d type %d", i + 1, f->binds[i].type);
    cr_expect_eq(f->binds[i].i, v, "bind %d: %lld", i + 1, (long long)f->binds[i].i);
}

static void expect_double(const struct filter_sql *f, int i, double v)
{
    cr_assert_lt(i, f->n_binds, "bind %d missing", i + 1);
    cr_expect_eq(f->binds[i].type, FILTER_BIND_DOUBLE, "bind %d type %d", i + 1, f->binds[i].type);
    cr_expect_eq(f->binds[i].d, v, "bind %d: %g", i + 1, f->binds[i].d);
}

/* Compiles, checks the SQL is clean and has `where`/`order` (when not NULL)
 * exactly. The caller checks the binds and frees. */
static struct filter_sql compile_clean(const char *filter, const char *order)
{
    struct filter_sql f = compile_ok(filter, order);
    assert_sql_clean(f.where);
    assert_sql_clean(f.order);
    for (int i = 0; i < f.n_binds; i++)
        cr_expect(f.binds[i].type == FILTER_BIND_INT || f.binds[i].type == FILTER_BIND_DOUBLE ||
                  (f.binds[i].type == FILTER_BIND_TEXT && f.binds[i].s));
    return f;
}

#define METRIC(col, n)                                                                             \
    "(SELECT s." col " FROM metric_summary s JOIN metric_keys k ON k.id = s.key_id"                \
    " WHERE s.run = r.id AND k.name = ?" n ")"
#define PARAM(n) "(SELECT p.value FROM params p WHERE p.run = r.id AND p.key = ?" n ")"
#define PARAM_NUM(n)                                                                               \
    "(SELECT CAST(p.value AS REAL) FROM params p WHERE p.run = r.id AND p.key = ?" n               \
    " AND p.value GLOB '[0-9+.-]*' AND p.value GLOB '*[0-9]*'"                                     \
    " AND p.value NOT GLOB '*[^0-9eE.+-]*')"
#define TAG(n)   "(SELECT t.value FROM tags t WHERE t.run = r.id AND t.key = ?" n ")"
#define TIEBREAK "r.start_ms DESC, r.id DESC"

/* ---- compile: valid forms ----------------------------------------------- */

Test(compile, blank_filter_and_order_give_no_condition_and_default_order)
{
    const char *blanks[] = {NULL, "", "   ", "\t\n "};
    for (int i = 0; i < 4; i++) {
        struct filter_sql f = compile_clean(blanks[i], blanks[i]);
        cr_expect_null(f.where);
        cr_expect_str_eq(f.order, TIEBREAK);
        cr_expect_eq(f.n_binds, 0);
        filter_sql_free(&f);
    }
}

Test(compile, status_name_becomes_an_int_bind)
{
    struct filter_sql f = compile_clean("status = 'finished'", NULL);
    cr_expect_str_eq(f.where, "(r.status = ?1)");
    cr_expect_eq(f.n_binds, 1);
    expect_int(&f, 0, STORE_FINISHED);
    filter_sql_free(&f);

    f = compile_clean("attributes.status IN (\"Running\", 'KILLED', 'failed')", NULL);
    cr_expect_str_eq(f.where, "(r.status IN (?1, ?2, ?3))");
    expect_int(&f, 0, STORE_RUNNING);
    expect_int(&f, 1, STORE_KILLED);
    expect_int(&f, 2, STORE_FAILED);
    filter_sql_free(&f);

    f = compile_clean("STATUS <> 'running' AND status != 'Finished'", NULL);
    cr_expect_str_eq(f.where, "(r.status <> ?1 AND r.status <> ?2)");
    filter_sql_free(&f);
}

Test(compile, metric_key_and_value_are_binds)
{
    struct filter_sql f = compile_clean("metrics.loss < 0.5", NULL);
    cr_expect_str_eq(f.where, "(" METRIC("last", "1") " < ?2)");
    cr_expect_eq(f.n_binds, 2);
    expect_text(&f, 0, "loss");
    expect_double(&f, 1, 0.5);
    filter_sql_free(&f);

    f = compile_clean("min(metrics.`val/loss`) >= -1e-3 or MAX(metric.acc) = 1", NULL);
    cr_expect_str_eq(f.where, "(" METRIC("min", "1") " >= ?2 OR " METRIC("max", "3") " = ?4)");
    expect_text(&f, 0, "val/loss");
    expect_double(&f, 1, -1e-3);
    expect_text(&f, 2, "acc");
    expect_double(&f, 3, 1.0);
    filter_sql_free(&f);
}

Test(compile, all_comparison_operators)
{
    const char *ops[][2] = {{"=", " = "}, {"==", " = "},  {"!=", " <> "}, {"<>", " <> "},
                            {"<", " < "}, {"<=", " <= "}, {">", " > "},   {">=", " >= "}};
    for (int i = 0; i < 8; i++) {
        char filter[64], want[512];
        snprintf(filter, sizeof filter, "metrics.m%s2", ops[i][0]);
        snprintf(want, sizeof want, "(" METRIC("last", "1") "%s?2)", ops[i][1]);
        struct filter_sql f = compile_clean(filter, NULL);
        cr_expect_str_eq(f.where, want, "%s", filter);
        expect_double(&f, 1, 2.0);
        filter_sql_free(&f);
    }
}

Test(compile, quoted_keys_in_backticks_and_double_quotes)
{
    struct filter_sql f = compile_clean(
        "metrics.`val loss` > 1 and params.\"batch size\" = '32' and tags.`a``b` = 'x'"
        " and tags.\"q\"\"r\" = 'y' and param.`s:/.-_` IS NULL",
        NULL);
    expect_text(&f, 0, "val loss");
    expect_text(&f, 2, "batch size");
    expect_text(&f, 3, "32");
    expect_text(&f, 4, "a`b");
    expect_text(&f, 6, "q\"r");
    expect_text(&f, 8, "s:/.-_");
    cr_expect_eq(f.n_binds, 9);
    filter_sql_free(&f);

    f = compile_clean("params.a-b/c:d.e_f = 'v'", NULL);
    expect_text(&f, 0, "a-b/c:d.e_f");
    filter_sql_free(&f);
}

Test(compile, string_escapes)
{
    struct filter_sql f = compile_clean("name = 'it''s' or name = 'it\\'s' or name = \"say "
                                        "\"\"hi\"\"\" or name = 'back\\\\slash' or name = 'a\\b'",
                                        NULL);
    expect_text(&f, 0, "it's");
    expect_text(&f, 1, "it's");
    expect_text(&f, 2, "say \"hi\"");
    expect_text(&f, 3, "back\\slash");
    expect_text(&f, 4, "a\\b");
    filter_sql_free(&f);
}

Test(compile, params_compare_as_text_except_ordering_against_numbers)
{
    struct filter_sql f = compile_clean("params.lr = 0.01", NULL);
    cr_expect_str_eq(f.where, "(" PARAM("1") " = ?2)");
    expect_text(&f, 1, "0.01");
    filter_sql_free(&f);

    f = compile_clean("params.lr > 1e-3", NULL);
    cr_expect_str_eq(f.where, "(" PARAM_NUM("1") " > ?2)");
    expect_double(&f, 1, 1e-3);
    filter_sql_free(&f);

    f = compile_clean("params.lr > '1e-3'", NULL);
    cr_expect_str_eq(f.where, "(" PARAM("1") " > ?2)");
    expect_text(&f, 1, "1e-3");
    filter_sql_free(&f);

    f = compile_clean("params.n IN (1, '2', -3.50)", NULL);
    cr_expect_str_eq(f.where, "(" PARAM("1") " IN (?2, ?3, ?4))");
    expect_text(&f, 1, "1");
    expect_text(&f, 2, "2");
    expect_text(&f, 3, "-3.50");
    filter_sql_free(&f);

    f = compile_clean("tags.team != 'cv'", NULL);
    cr_expect_str_eq(f.where, "(" TAG("1") " <> ?2)");
    filter_sql_free(&f);
}

Test(compile, like_is_glob_and_ilike_is_lower_like)
{
    struct filter_sql f = compile_clean("name LIKE 'a%b_c*d?e[f]\\%\\_'", NULL);
    cr_expect_str_eq(f.where, "(r.name GLOB ?1)");
    expect_text(&f, 0, "a*b?c[*]d[?]e[[]f]%_");
    filter_sql_free(&f);

    f = compile_clean("tags.x not like 'a%'", NULL);
    cr_expect_str_eq(f.where, "(" TAG("1") " NOT GLOB ?2)");
    filter_sql_free(&f);

    f = compile_clean("user ILIKE 'Al%'", NULL);
    cr_expect_str_eq(f.where, "(lower(r.user) LIKE lower(?1) ESCAPE '\\')");
    expect_text(&f, 0, "Al%");
    filter_sql_free(&f);

    f = compile_clean("experiment NOT ILIKE 'x\\%'", NULL);
    cr_expect_str_eq(f.where, "(lower(e.name) NOT LIKE lower(?1) ESCAPE '\\')");
    filter_sql_free(&f);
}

Test(compile, run_id_is_lowercased_and_exact)
{
    struct filter_sql f = compile_clean("run_id = 'ABCDEF'", NULL);
    cr_expect_str_eq(f.where, "(r.hex = ?1)");
    expect_text(&f, 0, "abcdef");
    filter_sql_free(&f);

    f = compile_clean("attributes.run_id LIKE 'AB%'", NULL);
    cr_expect_str_eq(f.where, "(r.hex GLOB ?1)");
    expect_text(&f, 0, "ab*");
    filter_sql_free(&f);
}

Test(compile, times_and_durations)
{
    struct filter_sql f = compile_clean("duration > 5m and duration <= 1h30m and duration < 500ms"
                                        " and duration >= 30s and duration != 1d and duration > "
                                        "1.5h",
                                        NULL);
    cr_expect_eq(f.n_binds, 7);
    expect_int(&f, 0, NOW); /* one now bind, shared */
    expect_int(&f, 1, 5 * MIN);
    expect_int(&f, 2, 90 * MIN);
    expect_int(&f, 3, 500);
    expect_int(&f, 4, 30000);
    expect_int(&f, 5, DAY);
    expect_int(&f, 6, 90 * MIN);
    cr_expect(strstr(f.where, "(COALESCE(NULLIF(r.end_ms, 0), ?1) - r.start_ms) > ?2") != NULL,
              "%s", f.where);
    filter_sql_free(&f);

    f = compile_clean("start_time > 2d and end_time < 1700000000000 and start_time >= 1.5", NULL);
    cr_expect_str_eq(f.where,
                     "(r.start_ms > ?1 AND NULLIF(r.end_ms, 0) < ?2 AND r.start_ms >= ?3)");
    expect_int(&f, 0, NOW - 2 * DAY);
    expect_int(&f, 1, 1700000000000LL);
    expect_double(&f, 2, 1.5);
    filter_sql_free(&f);

    f = compile_clean("end_time IS NULL and duration > 100", NULL);
    cr_expect_str_eq(f.where, "(NULLIF(r.end_ms, 0) IS NULL AND "
                              "(COALESCE(NULLIF(r.end_ms, 0), ?1) - r.start_ms) > ?2)");
    expect_int(&f, 1, 100);
    filter_sql_free(&f);
}

Test(compile, attribute_aliases)
{
    const char *forms[][2] = {
        {"run_name = 'a'", "(r.name = ?1)"},
        {"attributes.run_name = 'a'", "(r.name = ?1)"},
        {"attribute.name = 'a'", "(r.name = ?1)"},
        {"attr.user_id = 'a'", "(r.user = ?1)"},
        {"run.experiment = 'a'", "(e.name = ?1)"},
        {"Attributes.`start_time` > 5", "(r.start_ms > ?1)"},
        {"attributes.\"end_time\" > 5", "(NULLIF(r.end_ms, 0) > ?1)"},
        {"USER = 'a'", "(r.user = ?1)"},
        {"Experiment = 'a'", "(e.name = ?1)"},
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        struct filter_sql f = compile_clean(forms[i][0], NULL);
        cr_expect_str_eq(f.where, forms[i][1], "%s", forms[i][0]);
        filter_sql_free(&f);
    }
}

Test(compile, precedence_not_over_and_over_or)
{
    struct filter_sql f =
        compile_clean("name = 'a' or not name = 'b' and name = 'c' or name = 'd'", NULL);
    cr_expect_str_eq(f.where, "(r.name = ?1 OR (NOT r.name = ?2 AND r.name = ?3) OR r.name = ?4)");
    filter_sql_free(&f);

    f = compile_clean("(name = 'a' or name = 'b') and not (name = 'c' and user = 'd')", NULL);
    cr_expect_str_eq(f.where,
                     "((r.name = ?1 OR r.name = ?2) AND NOT (r.name = ?3 AND r.user = ?4))");
    filter_sql_free(&f);

    f = compile_clean("((((name = 'a'))))", NULL);
    cr_expect_str_eq(f.where, "(r.name = ?1)");
    filter_sql_free(&f);

    f = compile_clean("((name = 'a' OR name = 'b'))", NULL);
    cr_expect_str_eq(f.where, "(r.name = ?1 OR r.name = ?2)");
    filter_sql_free(&f);

    f = compile_clean("NOT NOT name IS NOT NULL", NULL);
    cr_expect_str_eq(f.where, "(NOT NOT r.name IS NOT NULL)");
    filter_sql_free(&f);

    f = compile_clean("name='a'AND(user='b'OR user='c')", NULL);
    cr_expect_str_eq(f.where, "(r.name = ?1 AND (r.user = ?2 OR r.user = ?3))");
    filter_sql_free(&f);
}

Test(compile, order_by_terms)
{
    struct filter_sql f = compile_clean(NULL, "metrics.loss ASC, start_time DESC");
    cr_expect_str_eq(f.order,
                     METRIC("last", "1") " IS NULL, " METRIC(
                         "last", "1") " ASC, r.start_ms IS NULL, r.start_ms DESC, " TIEBREAK);
    expect_text(&f, 0, "loss");
    cr_expect_eq(f.n_binds, 1);
    filter_sql_free(&f);

    f = compile_clean(NULL, "max(metrics.acc) desc,params.lr,tags.`t t` asc, name");
    cr_expect_str_eq(
        f.order,
        METRIC("max", "1") " IS NULL, " METRIC("max", "1") " DESC, " PARAM("2") " IS NULL, " PARAM(
            "2") " ASC, " TAG("3") " IS NULL, " TAG("3") " ASC, r.name IS NULL, r.name "
                                                         "ASC, " TIEBREAK);
    expect_text(&f, 2, "t t");
    filter_sql_free(&f);
}

Test(compile, filter_and_order_share_one_numbering)
{
    struct filter_sql f =
        compile_clean("duration > 1m and metrics.a < 1", "duration desc, metrics.b");
    cr_expect_eq(f.n_binds, 5);
    expect_int(&f, 0, NOW);
    expect_int(&f, 1, MIN);
    expect_text(&f, 2, "a");
    expect_double(&f, 3, 1.0);
    expect_text(&f, 4, "b");
    cr_expect(strstr(f.order, "(COALESCE(NULLIF(r.end_ms, 0), ?1) - r.start_ms) DESC") != NULL,
              "%s", f.order);
    cr_expect(strstr(f.order, "k.name = ?5") != NULL, "%s", f.order);
    filter_sql_free(&f);
}

Test(compile, injection_attempts_stay_in_binds)
{
    struct filter_sql f = compile_clean("name = 'x'' OR 1=1 --'", NULL);
    cr_expect_str_eq(f.where, "(r.name = ?1)");
    expect_text(&f, 0, "x' OR 1=1 --");
    filter_sql_free(&f);

    f = compile_clean("params.`a'; DROP TABLE runs;--` = 1", NULL);
    cr_expect_str_eq(f.where, "(" PARAM("1") " = ?2)");
    expect_text(&f, 0, "a'; DROP TABLE runs;--");
    expect_text(&f, 1, "1");
    filter_sql_free(&f);

    f = compile_clean("tags.\"x\"\") OR 1=1; --\" = \"'); DELETE FROM runs; --\"",
                      "metrics.`loss) DESC; DROP TABLE runs; --` desc");
    expect_text(&f, 0, "x\") OR 1=1; --");
    expect_text(&f, 1, "'); DELETE FROM runs; --");
    expect_text(&f, 2, "loss) DESC; DROP TABLE runs; --");
    filter_sql_free(&f);

    f = compile_clean("user LIKE '%'' OR ''1''=''1' and experiment ILIKE '\\'; --'", NULL);
    expect_text(&f, 0, "*' OR '1'='1");
    expect_text(&f, 1, "'; --");
    filter_sql_free(&f);
}

Test(compile, every_form_gives_clean_sql)
{
    const char *forms[] = {
        "status = 'RUNNING' and name != 'n' and user < 'u' and experiment >= 'e'",
        "run_id in ('a', 'b') and start_time <= 3d and end_time > -1 and duration < 1.5h",
        "metrics.a is null or metrics.b is not null or min(metrics.c) in (1,2) or max(metrics.d) "
        "not in (3)",
        "params.p like 'x%' or params.q ilike 'y_' or tags.t not like 'z' or tags.u not ilike "
        "'w'",
        "params.p < 3 or params.p >= '3' or tags.t > -2.5e3 or tags.t <> 7",
        "not (name = 'a' or not user = 'b') and (experiment = 'c')",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        struct filter_sql f =
            compile_clean(forms[i], "status desc, duration, min(metrics.x), tags.`a b` DESC");
        cr_expect_not_null(f.where);
        filter_sql_free(&f);
    }
}

Test(compile, free_is_safe_on_zeroed_and_twice)
{
    struct filter_sql f;
    memset(&f, 0, sizeof f);
    filter_sql_free(&f);
    filter_sql_free(NULL);
    cr_expect_null(f.where);
    cr_expect_null(f.order);
    f = compile_ok("name = 'a'", NULL);
    cr_expect_not_null(f.where);
    cr_expect_eq(f.n_binds, 1);
    filter_sql_free(&f);
    /* a freed filter_sql is zeroed, so a second free is a no-op */
    cr_expect_null(f.where);
    cr_expect_null(f.order);
    cr_expect_null(f.binds);
    cr_expect_eq(f.n_binds, 0);
    filter_sql_free(&f);
    cr_expect_null(f.where);
}

Test(compile, err_may_be_null)
{
    struct filter_sql f;
    cr_expect_eq(filter_compile("name =", NULL, NOW, &f, NULL), STORE_E_INVALID);
    cr_expect_eq(filter_compile("name = 'x'", NULL, NOW, &f, NULL), 0);
    filter_sql_free(&f);
}

/* ---- errors --------------------------------------------------------------- */

Test(errors, missing_value_names_column_and_operator)
{
    expect_error("metrics.loss >= ", NULL,
                 "filter: column 17: expected a value after '>=' but found end of input");
    expect_error("name = 'a' and user =", NULL,
                 "filter: column 22: expected a value after '=' but found end of input");
    expect_error("name = )", NULL, "filter: column 8: expected a value after '=' but found ')'");
}

Test(errors, unknown_attribute_lists_the_valid_ones)
{
    expect_error("  stauts = 1", NULL,
                 "filter: column 3: unknown attribute \"stauts\" (expected one of status, name, "
                 "user, experiment, start_time, end_time, duration, run_id, lifecycle)");
    expect_error("name = 'a' and attributes.colour = 'x'", NULL,
                 "filter: column 27: unknown attribute \"colour\" (expected one of status, name, "
                 "user, experiment, start_time, end_time, duration, run_id, lifecycle)");
    expect_error("foo.bar = 1", NULL,
                 "filter: column 1: unknown prefix \"foo\" (expected metrics, feedback, params, "
                 "tags or attributes)");
}

Test(errors, unknown_status_lists_the_valid_ones)
{
    expect_error("status = 'finsihed'", NULL,
                 "filter: column 10: unknown status 'finsihed' (expected one of RUNNING, "
                 "FINISHED, FAILED, KILLED)");
    expect_error("status in ('running', 'done')", NULL, "filter: column 23: unknown status*");
    expect_error("status = 2", NULL,
                 "filter: column 10: expected a status name (RUNNING, FINISHED, FAILED or "
                 "KILLED) in quotes but found \"2\"");
    expect_error("status > 'running'", NULL,
                 "filter: column 8: status can only be compared with =, !=, IN or IS NULL");
    expect_error("status like 'r%'", NULL,
                 "filter: column 8: LIKE applies to strings; status is not one");
}

Test(errors, order_by_direction)
{
    expect_error(NULL, "metrics.loss UP", "order-by: column 14: expected ASC or DESC*");
    expect_error(NULL, "metrics.loss desc x",
                 "order-by: column 19: expected ASC, DESC, ',' or end of input but found \"x\"");
    expect_error(NULL, "name,", "order-by: column 6: expected a term*");
    expect_error(NULL, ",name", "order-by: column 1: expected a term*");
    expect_error(NULL, "name = 'x'", "order-by: column 6: expected ASC, DESC, ',' or end*");
    expect_error("name = 'a'", "bogus", "order-by: column 1: unknown attribute \"bogus\"*");
}

Test(errors, syntax_errors_at_exact_columns)
{
    expect_error("name = 'a' xyz", NULL,
                 "filter: column 12: expected AND, OR or end of input but found \"xyz\"");
    expect_error("(name = 'a'", NULL,
                 "filter: column 12: expected ')' to close the '(' at column 1 but found end of "
                 "input");
    expect_error("name = 'a')", NULL, "filter: column 11: unmatched ')'");
    expect_error("name = 'abc", NULL,
                 "filter: column 8: unterminated string: the closing ' is missing");
    expect_error("metrics.`abc = 1", NULL,
                 "filter: column 9: unterminated quoted key: the closing ` is missing");
    expect_error("name # 'a'", NULL, "filter: column 6: unexpected character '#'");
    expect_error("name ! 'a'", NULL, "filter: column 6: unexpected character '!'*");
    expect_error("name = '\xc3\xa9' and \xc3\xa9", NULL, "filter: column 17: unexpected byte 0xc3");
    expect_error("name 'a'", NULL,
                 "filter: column 6: expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN "
                 "or IS) after name but found 'a'");
    expect_error("name = 'a' and", NULL, "filter: column 15: expected a term*");
    expect_error("and name = 'a'", NULL, "filter: column 1: unknown attribute \"and\"*");
    expect_error("metrics. = 1", NULL, "filter: column 9: expected a key after \"metrics.\"");
    expect_error("name IN ()", NULL, "filter: column 10: expected a value after '(' but found ')'");
    expect_error("name IN ('a' 'b')", NULL,
                 "filter: column 14: expected ',' or ')' in the IN list but found 'b'");
    expect_error("name IN ('a',)", NULL,
                 "filter: column 14: expected a value after ',' but found ')'");
    expect_error("name IN 'a'", NULL, "filter: column 9: expected '(' after IN but found 'a'");
    expect_error("name NOT = 'a'", NULL,
                 "filter: column 10: expected LIKE, ILIKE or IN after NOT but found '='");
    expect_error("status IS 'x'", NULL,
                 "filter: column 11: expected NULL or NOT NULL after IS but found 'x'");
    expect_error("status = null", NULL,
                 "filter: column 10: NULL can only follow IS (write IS NULL or IS NOT NULL)");
    expect_error("status = FINISHED", NULL,
                 "filter: column 10: expected a value after '=' but found \"FINISHED\" (quote "
                 "strings: 'FINISHED')");
    expect_error("min(params.x) = 1", NULL,
                 "filter: column 5: min() takes a metric: expected metrics.KEY but found "
                 "\"params.x\"");
    expect_error("max(metrics.x = 1", NULL,
                 "filter: column 15: expected ')' after max(metrics.x but found '='");
    expect_error("min = 1", NULL, "filter: column 1: unknown attribute \"min\"*");
}

Test(errors, values_of_the_wrong_kind)
{
    expect_error("metrics.x = 'a'", NULL,
                 "filter: column 13: expected a number to compare with metrics.x but found 'a'");
    expect_error("metrics.x = 5m", NULL,
                 "filter: column 13: expected a number to compare with metrics.x but found \"5m\"");
    expect_error("params.x = 5m", NULL,
                 "filter: column 12: a duration compares only with duration, start_time or "
                 "end_time, not params.x");
    expect_error("name = 5", NULL,
                 "filter: column 8: expected a string in quotes to compare with name but found "
                 "\"5\"");
    expect_error("duration > '5m'", NULL,
                 "filter: column 12: expected a number of milliseconds or a duration (such as "
                 "5m) to compare with duration but found '5m'");
    expect_error("name like 5", NULL,
                 "filter: column 11: expected a pattern in quotes after 'like' but found \"5\"");
    expect_error("metrics.loss like 'a'", NULL,
                 "filter: column 14: LIKE applies to strings; metrics.loss is not one");
    expect_error("duration ilike 'a'", NULL,
                 "filter: column 10: ILIKE applies to strings; duration is not one");
    expect_error("name like 'abc\\\\'", NULL,
                 "filter: column 11: the pattern ends with a lone escape character '\\'");
    expect_error("name ilike 'abc\\\\'", NULL,
                 "filter: column 12: the pattern ends with a lone escape character '\\'");
}

Test(errors, bad_numbers_and_durations)
{
    expect_error("duration > 5x", NULL,
                 "filter: column 13: unknown unit \"x\" (expected ms, s, m, h or d)");
    expect_error("duration > 1h30", NULL,
                 "filter: column 12: invalid duration: expected a unit (ms, s, m, h or d) after "
                 "the last number");
    expect_error("duration > 1e3s", NULL, "filter: column 12: a duration cannot have an exponent");
    expect_error("metrics.a > 1.2.3", NULL, "filter: column 13: invalid number");
    expect_error("metrics.a > 1_0", NULL, "filter: column 13: invalid number");
    expect_error("metrics.a > 1e999", NULL, "filter: column 13: number out of range");
    expect_error("metrics.a > -", NULL, "filter: column 13: unexpected character '-'");
    expect_error("duration > 999999999999d", NULL, "filter: column 12: duration out of range");
}

Test(errors, keys_are_checked)
{
    char buf[400];
    char key[300];
    memset(key, 'k', 251);
    key[251] = '\0';
    snprintf(buf, sizeof buf, "metrics.%s = 1", key);
    expect_error(buf, NULL,
                 "filter: column 9: a key must be 1 to 250 bytes long (this one is 251)");
    key[250] = '\0';
    snprintf(buf, sizeof buf, "metrics.%s = 1", key);
    struct filter_sql f = compile_ok(buf, NULL);
    cr_expect_eq(strlen(f.binds[0].s), 250);
    filter_sql_free(&f);

    expect_error("params.`` = 'a'", NULL,
                 "filter: column 9: a key must be 1 to 250 bytes long (this one is 0)");
    expect_error("params.`a\tb` = 'a'", NULL,
                 "filter: column 9: a key may not contain control characters");
}

/* ---- limits ---------------------------------------------------------------- */

/* Builds `n` copies of `unit` between `head` and `tail`, joined by `sep`. */
static char *repeat(const char *head, const char *unit, const char *sep, int n, const char *tail)
{
    size_t cap = strlen(head) + (size_t)n * (strlen(unit) + strlen(sep)) + strlen(tail) + 1;
    char *s = malloc(cap), *o = s;
    cr_assert_not_null(s);
    o += snprintf(o, cap, "%s", head);
    for (int i = 0; i < n; i++)
        o += snprintf(o, cap - (size_t)(o - s), "%s%s", i ? sep : "", unit);
    snprintf(o, cap - (size_t)(o - s), "%s", tail);
    return s;
}

Test(limits, text_length)
{
    char *s = malloc(FILTER_MAX_TEXT + 2);
    cr_assert_not_null(s);
    memset(s, ' ', FILTER_MAX_TEXT + 1);
    memcpy(s, "name = 'a'", 10);
    s[FILTER_MAX_TEXT + 1] = '\0';
    expect_error(s, NULL, "filter: longer than 65536 bytes (limit 65536)");
    expect_error(NULL, s, "order-by: longer than 65536 bytes (limit 65536)");
    s[FILTER_MAX_TEXT] = '\0';
    struct filter_sql f = compile_ok(s, NULL);
    filter_sql_free(&f);
    free(s);
}

Test(limits, nesting_depth)
{
    char *ok = repeat("", "(", "", 64, "name = 'a'"), *bad = repeat("", "(", "", 65, "name = 'a'");
    char *ok2 = repeat("", "not ", "", 64, "name = 'a'");
    char *bad2 = repeat("", "not ", "", 65, "name = 'a'");
    /* unbalanced on purpose: the depth check comes first */
    expect_error(ok, NULL, "filter: column 75: expected ')' to close the '(' at column 64*");
    expect_error(bad, NULL, "filter: column 65: nesting deeper than 64 levels (limit 64)");
    struct filter_sql f = compile_ok(ok2, NULL);
    filter_sql_free(&f);
    expect_error(bad2, NULL, "filter: column 257: nesting deeper than 64 levels (limit 64)");
    free(ok);
    free(bad);
    free(ok2);
    free(bad2);

    char *balanced = malloc(200);
    cr_assert_not_null(balanced);
    memset(balanced, '(', 64);
    memcpy(balanced + 64, "name='a'", 8);
    memset(balanced + 72, ')', 64);
    balanced[136] = '\0';
    f = compile_ok(balanced, NULL);
    cr_expect_str_eq(f.where, "(r.name = ?1)");
    filter_sql_free(&f);
    free(balanced);
}

Test(limits, term_count)
{
    char *ok = repeat("", "metrics.a=1", " or ", 100, "");
    char *bad = repeat("", "metrics.a=1", " or ", 101, "");
    struct filter_sql f = compile_ok(ok, NULL);
    cr_expect_eq(f.n_binds, 200);
    filter_sql_free(&f);
    expect_error(bad, NULL, "filter: column 1501: more than 100 terms (limit 100)");
    free(ok);
    free(bad);

    ok = repeat("", "name", ",", 16, "");
    bad = repeat("", "name", ",", 17, "");
    f = compile_ok(NULL, ok);
    cr_expect_eq(f.n_binds, 0);
    cr_expect_not_null(strstr(f.order, "r.name IS NULL, r.name ASC"), "%s", f.order);
    filter_sql_free(&f);
    expect_error(NULL, bad, "order-by: column 81: more than 16 terms (limit 16)");
    free(ok);
    free(bad);
}

Test(limits, in_list_size)
{
    char *ok = repeat("metrics.a in (", "1", ",", 1000, ")");
    char *bad = repeat("metrics.a in (", "1", ",", 1001, ")");
    struct filter_sql f = compile_ok(ok, NULL);
    cr_expect_eq(f.n_binds, 1001);
    assert_sql_clean(f.where);
    filter_sql_free(&f);
    expect_error(bad, NULL,
                 "filter: column 2015: more than 1000 values in one IN list (limit 1000)");
    free(ok);
    free(bad);
}

Test(limits, bind_count)
{
    /* 11 lists of 999 values: more binds than FILTER_MAX_BINDS */
    char *list = repeat("metrics.a in (", "1", ",", 999, ")");
    char *s = repeat("", list, " or ", 11, "");
    struct filter_sql f;
    struct store_err err = {0};
    cr_expect_eq(filter_compile(s, NULL, NOW, &f, &err), STORE_E_INVALID);
    cr_expect(strstr(err.msg, "(limit 10000)") != NULL, "%s", err.msg);
    free(list);
    free(s);
}

/* ---- exec: against a real SQLite database ---------------------------------- */

static sqlite3 *db;

struct run_row {
    const char *hex;
    int exp;
    const char *name;
    int status;
    int64_t start, end; /* end: -1 NULL */
    const char *user;
};

/* Start times are all different, so the default order (start DESC) is
 * 8 4 5 6 9 3 10 2 1 7. */
static const struct run_row runs[] = {
    {NULL, 0, NULL, 0, 0, 0, NULL},
    {"aaaa0000000000000000000000000001", 2, "resnet-a", 2, NOW - 10 * DAY,
     NOW - 10 * DAY + 2 * HOUR, "alice"},
    {"aaaa0000000000000000000000000002", 2, "resnet-b", 2, NOW - 9 * DAY, NOW - 9 * DAY + 30 * MIN,
     "alice"},
    {"bbbb0000000000000000000000000003", 2, "vit-a", 3, NOW - 5 * DAY, NOW - 5 * DAY + 5 * MIN,
     "bob"},
    {"bbbb0000000000000000000000000004", 3, "bert-base", 1, NOW - 2 * HOUR, -1, "bob"},
    {"cccc0000000000000000000000000005", 3, "BERT-large", 4, NOW - DAY, NOW - DAY + HOUR, "carol"},
    {"cccc0000000000000000000000000006", 3, "gpt_small", 2, NOW - 3 * DAY,
     NOW - 3 * DAY + 10 * HOUR, "alice"},
    {"dddd0000000000000000000000000007", 1, "run 100%", 2, NOW - 20 * DAY, NOW - 20 * DAY + 1000,
     "dave"},
    {"dddd0000000000000000000000000008", 1, "x*y", 1, NOW - 30 * MIN, 0, "carol"},
    {"eeee0000000000000000000000000009", 1,
     "\xc3\x9c"
     "n\xc3\xaf"
     "code",
     3, NOW - 4 * DAY, NOW - 4 * DAY + 3 * HOUR, NULL},
    {"abcd0000000000000000000000000010", 2, "resnet-c", 2, NOW - 6 * DAY, NOW - 6 * DAY + 45 * MIN,
     "alice"},
};
#define N_RUNS 10

static const char *const schema =
    "CREATE TABLE experiments(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, uuid BLOB, hex TEXT NOT NULL UNIQUE,"
    " experiment_id INTEGER NOT NULL REFERENCES experiments(id), name TEXT,"
    " status INTEGER NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER, user TEXT,"
    " parent_uuid BLOB);"
    "CREATE TABLE params(run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY(run, key));"
    "CREATE TABLE tags(run INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY(run, key));"
    "CREATE TABLE metric_keys(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE metric_summary(run INTEGER NOT NULL, key_id INTEGER NOT NULL, last REAL,"
    " last_bits INTEGER, min REAL, max REAL, count INTEGER, last_step INTEGER, last_ms INTEGER,"
    " PRIMARY KEY(run, key_id));"
    "INSERT INTO experiments VALUES (1, 'Default'), (2, 'vision'), (3, 'NLP');"
    "INSERT INTO params VALUES"
    " (1, 'lr', '0.01'), (2, 'lr', '0.1'), (3, 'lr', '1e-3'), (5, 'lr', '0.001'),"
    " (6, 'lr', 'abc'), (10, 'lr', '0.05'),"
    " (1, 'epochs', '10'), (2, 'epochs', '9'), (3, 'epochs', '100'), (4, 'epochs', '20'),"
    " (1, 'optimizer', 'adam'), (2, 'optimizer', 'Adam'), (3, 'optimizer', 'sgd'),"
    " (5, 'optimizer', 'adamw');"
    "INSERT INTO tags VALUES"
    " (1, 'team', 'cv'), (2, 'team', 'cv'), (3, 'team', 'cv'), (4, 'team', 'nlp'),"
    " (5, 'team', 'nlp'), (1, 'val/split', 'a'), (6, 'val/split', 'b'),"
    " (2, 'release note', 'ok');"
    "INSERT INTO metric_keys VALUES (1, 'loss'), (2, 'acc'), (3, 'val/loss');"
    "INSERT INTO metric_summary(run, key_id, last, min, max, count) VALUES"
    " (1, 1, 0.20, 0.15, 2.0, 10), (2, 1, 0.35, 0.30, 2.1, 10), (3, 1, 1.5, 1.2, 3.0, 10),"
    " (4, 1, 0.50, 0.45, 2.5, 10), (5, 1, 0.25, 0.10, 1.9, 10), (6, 1, 0.40, 0.40, 1.0, 1),"
    " (10, 1, 0.20, 0.18, 2.2, 10),"
    " (1, 2, 0.9, 0.1, 0.9, 5), (2, 2, 0.8, 0.1, 0.8, 5), (3, 2, 0.5, 0.1, 0.6, 5),"
    " (6, 2, 0.7, 0.2, 0.7, 5),"
    " (1, 3, 0.3, 0.3, 0.3, 1), (5, 3, 0.28, 0.28, 0.28, 1);";

static void db_setup(void)
{
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, schema, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "INSERT INTO runs(id, hex, experiment_id, name, status,"
                                    " start_ms, end_ms, user) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                                    -1, &st, NULL),
                 SQLITE_OK);
    for (int i = 1; i <= N_RUNS; i++) {
        const struct run_row *r = &runs[i];
        sqlite3_bind_int(st, 1, i);
        sqlite3_bind_text(st, 2, r->hex, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, r->exp);
        sqlite3_bind_text(st, 4, r->name, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, r->status);
        sqlite3_bind_int64(st, 6, r->start);
        if (r->end < 0)
            sqlite3_bind_null(st, 7);
        else
            sqlite3_bind_int64(st, 7, r->end);
        if (r->user)
            sqlite3_bind_text(st, 8, r->user, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 8);
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(db));
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
}

static void db_teardown(void)
{
    sqlite3_close(db);
    db = NULL;
}

/* Runs the compiled filter/order; returns the run numbers, space-separated
 * (malloc'd). */
static char *query(const char *filter, const char *order)
{
    struct filter_sql f = compile_ok(filter, order);
    size_t cap = 256 + (f.where ? strlen(f.where) : 0) + strlen(f.order);
    char *sql = malloc(cap), *out = calloc(1, 8 * N_RUNS + 1);
    sqlite3_stmt *st;
    int rc;
    cr_assert(sql && out);
    snprintf(sql, cap,
             "SELECT r.hex FROM runs r JOIN experiments e ON e.id = r.experiment_id%s%s"
             " ORDER BY %s",
             f.where ? " WHERE " : "", f.where ? f.where : "", f.order);
    rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    cr_assert_eq(rc, SQLITE_OK, "%s\n%s", sqlite3_errmsg(db), sql);
    cr_assert_eq(sqlite3_bind_parameter_count(st), f.n_binds, "%s", sql);
    for (int i = 0; i < f.n_binds; i++) {
        const struct filter_bind *b = &f.binds[i];
        if (b->type == FILTER_BIND_INT)
            rc = sqlite3_bind_int64(st, i + 1, b->i);
        else if (b->type == FILTER_BIND_DOUBLE)
            rc = sqlite3_bind_double(st, i + 1, b->d);
        else
            rc = sqlite3_bind_text(st, i + 1, b->s, -1, SQLITE_TRANSIENT);
        cr_assert_eq(rc, SQLITE_OK);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(st, 0);
        int found = 0;
        for (int i = 1; i <= N_RUNS; i++)
            if (strcmp(hex, runs[i].hex) == 0)
                found = i;
        cr_assert(found, "unknown run %s", hex);
        size_t n = strlen(out);
        snprintf(out + n, 8 * N_RUNS + 1 - n, "%s%d", n ? " " : "", found);
    }
    cr_assert_eq(rc, SQLITE_DONE, "%s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    free(sql);
    filter_sql_free(&f);
    return out;
}

#define expect_runs(filter, order, want)                                                           \
    do {                                                                                           \
        char *got_ = query(filter, order);                                                         \
        cr_expect_str_eq(got_, want, "filter [%s] order [%s]", (const char *)(filter),             \
                         (const char *)(order));                                                   \
        free(got_);                                                                                \
    } while (0)

TestSuite(exec, .init = db_setup, .fini = db_teardown);

Test(exec, no_filter_gives_all_runs_newest_first)
{
    expect_runs(NULL, NULL, "8 4 5 6 9 3 10 2 1 7");
    expect_runs("", "  ", "8 4 5 6 9 3 10 2 1 7");
}

Test(exec, status_names)
{
    expect_runs("status = 'finished'", NULL, "6 10 2 1 7");
    expect_runs("status != 'FINISHED'", NULL, "8 4 5 9 3");
    expect_runs("status IN ('running', 'killed')", NULL, "8 4 5");
    expect_runs("status NOT IN ('finished', 'failed')", NULL, "8 4 5");
    expect_runs("attributes.status = 'RUNNING'", NULL, "8 4");
}

Test(exec, metrics_last_min_max)
{
    expect_runs("metrics.loss < 0.3", NULL, "5 10 1");
    expect_runs("metrics.loss IS NULL", NULL, "8 9 7");
    expect_runs("metrics.loss IS NOT NULL", NULL, "4 5 6 3 10 2 1");
    expect_runs("metrics.loss != 0.2", NULL, "4 5 6 3 2");
    expect_runs("metrics.loss = 0.2", NULL, "10 1");
    expect_runs("min(metrics.loss) <= 0.15", NULL, "5 1");
    expect_runs("max(metrics.loss) > 2.1", NULL, "4 3 10");
    expect_runs("metrics.loss in (0.5, 1.5)", NULL, "4 3");
    expect_runs("metrics.`val/loss` < 0.29", NULL, "5");
    expect_runs("metric.acc >= 0.8", NULL, "2 1");
}

Test(exec, missing_values_follow_sql_null_semantics)
{
    /* runs without a loss match no comparison, not even its negation */
    expect_runs("NOT metrics.loss < 0.3", NULL, "4 6 3 2");
    expect_runs("params.optimizer != 'adam'", NULL, "5 3 2");
    expect_runs("NOT params.optimizer = 'adam'", NULL, "5 3 2");
    expect_runs("params.optimizer NOT IN ('adam')", NULL, "5 3 2");
    expect_runs("params.optimizer IS NULL", NULL, "8 4 6 9 10 7");
    expect_runs("user != 'alice'", NULL, "8 4 5 3 7");
    expect_runs("user IS NULL", NULL, "9");
}

Test(exec, and_or_not_precedence)
{
    expect_runs("status = 'finished' or status = 'failed' and user = 'bob'", NULL, "6 3 10 2 1 7");
    expect_runs("(status = 'finished' or status = 'failed') and user = 'bob'", NULL, "3");
    expect_runs("not user = 'alice' and status = 'finished'", NULL, "7");
    /* run 9 has no user: NULL AND false is false, so NOT makes it true */
    expect_runs("not (user = 'alice' and status = 'finished')", NULL, "8 4 5 9 3 7");
    expect_runs("experiment = 'NLP' and not (status = 'running' or metrics.loss > 0.3)", NULL, "5");
    expect_runs("NOT NOT experiment = 'NLP'", NULL, "4 5 6");
}

Test(exec, params_as_text_and_as_numbers)
{
    expect_runs("params.lr = '0.01'", NULL, "1");
    expect_runs("params.lr = 0.01", NULL, "1");
    expect_runs("params.lr = 1e-3", NULL, "3");
    expect_runs("params.lr < 0.01", NULL, "5 3");
    expect_runs("params.lr >= 0.01", NULL, "10 2 1");
    expect_runs("params.epochs > 9", NULL, "4 3 1");
    expect_runs("params.epochs > '9'", NULL, "");
    expect_runs("params.epochs < '2'", NULL, "3 1");
    expect_runs("params.lr IN ('0.01', '0.1')", NULL, "2 1");
    expect_runs("params.lr NOT IN ('0.01')", NULL, "5 6 3 10 2");
    expect_runs("params.`a'; DROP TABLE runs;--` = 1", NULL, "");
    expect_runs("name = 'x'' OR 1=1 --'", NULL, "");
    expect_runs(NULL, NULL, "8 4 5 6 9 3 10 2 1 7"); /* runs table still there */
}

Test(exec, like_is_case_sensitive_and_ilike_is_not)
{
    expect_runs("params.optimizer LIKE 'adam%'", NULL, "5 1");
    expect_runs("params.optimizer ILIKE 'adam%'", NULL, "5 2 1");
    expect_runs("params.optimizer NOT LIKE 'adam%'", NULL, "3 2");
    expect_runs("params.optimizer ILIKE 'ADAM'", NULL, "2 1");
    expect_runs("name LIKE 'bert%'", NULL, "4");
    expect_runs("name ILIKE 'bert%'", NULL, "4 5");
    expect_runs("name LIKE 'resnet-_'", NULL, "10 2 1");
    expect_runs("name LIKE 'run 100\\%'", NULL, "7");
    expect_runs("name LIKE '%\\%'", NULL, "7");
    expect_runs("name ILIKE '%\\%'", NULL, "7");
    expect_runs("name LIKE 'x*y'", NULL, "8");
    expect_runs("name LIKE 'x_y'", NULL, "8");
    expect_runs("name LIKE 'x?y'", NULL, "");
    expect_runs("name LIKE '*'", NULL, "");
    expect_runs("name LIKE '_n_code'", NULL, "9");
    expect_runs("experiment ILIKE 'nlp'", NULL, "4 5 6");
    expect_runs("experiment LIKE 'nlp'", NULL, "");
}

Test(exec, tags_and_quoted_keys)
{
    expect_runs("tags.team IN ('cv')", NULL, "3 2 1");
    expect_runs("tags.team = 'nlp' or tags.`val/split` = 'b'", NULL, "4 5 6");
    expect_runs("tags.`release note` IS NOT NULL", NULL, "2");
    expect_runs("tag.\"release note\" = 'ok'", NULL, "2");
    expect_runs("tags.team IS NULL", NULL, "8 6 9 10 7");
    expect_runs("tags.val/split = 'a'", NULL, "1");
}

Test(exec, names_users_experiments_run_ids)
{
    expect_runs("experiment = 'NLP'", NULL, "4 5 6");
    expect_runs("name = '\xc3\x9c"
                "n\xc3\xaf"
                "code'",
                NULL, "9");
    expect_runs("user IN ('bob', 'dave')", NULL, "4 3 7");
    expect_runs("name > 'v'", NULL, "8 9 3");
    expect_runs("run_id = 'AAAA0000000000000000000000000001'", NULL, "1");
    expect_runs("run_id = 'aaaa'", NULL, "");
    expect_runs("run_id LIKE 'BBBB%'", NULL, "4 3");
    expect_runs(
        "run_id in ('cccc0000000000000000000000000005', 'abcd0000000000000000000000000010')", NULL,
        "5 10");
}

Test(exec, durations_and_times)
{
    expect_runs("duration > 1h", NULL, "4 6 9 1");
    expect_runs("duration <= 30m", NULL, "8 3 2 7");
    expect_runs("duration < 500ms", NULL, "");
    expect_runs("duration < 1500ms", NULL, "7");
    expect_runs("duration = 1h", NULL, "5");
    expect_runs("duration >= 1h and duration <= 2h", NULL, "4 5 1");
    expect_runs("duration > 7200000", NULL, "6 9");
    expect_runs("end_time IS NULL", NULL, "8 4");
    expect_runs("end_time IS NOT NULL and start_time > 4d", NULL, "5 6");
    expect_runs("start_time > 2d", NULL, "8 4 5");
    expect_runs("start_time < 7d", NULL, "2 1 7");
    expect_runs("start_time >= 1699913600000", NULL, "8 4 5");
    expect_runs("start_time > 1d12h", NULL, "8 4 5");
}

Test(exec, order_by_metric_missing_values_last)
{
    expect_runs(NULL, "metrics.loss ASC", "10 1 5 2 6 4 3 8 9 7");
    expect_runs(NULL, "metrics.loss", "10 1 5 2 6 4 3 8 9 7");
    expect_runs(NULL, "metrics.loss DESC", "3 4 6 2 5 10 1 8 9 7");
    expect_runs(NULL, "min(metrics.loss) desc", "3 4 6 2 10 1 5 8 9 7");
    expect_runs(NULL, "metrics.loss asc, start_time asc", "1 10 5 2 6 4 3 7 9 8");
}

Test(exec, order_by_attributes_params_tags)
{
    expect_runs(NULL, "params.optimizer, start_time asc", "2 1 5 3 7 10 9 6 4 8");
    expect_runs(NULL, "duration desc", "6 9 4 1 5 10 8 2 3 7");
    expect_runs(NULL, "status, name desc", "8 4 7 10 2 1 6 9 3 5");
    expect_runs(NULL, "tags.team desc", "4 5 3 2 1 8 6 9 10 7");
    expect_runs(NULL, "start_time", "7 1 2 10 3 9 6 5 4 8");
    expect_runs(NULL, "attributes.end_time desc", "5 6 9 3 10 2 1 7 8 4");
    expect_runs(NULL, "user desc, run_id", "7 5 8 3 4 1 2 10 6 9");
}

Test(exec, filter_and_order_together)
{
    expect_runs("status = 'finished'", "metrics.acc desc", "1 2 6 10 7");
    expect_runs("duration < 3h", "duration asc, metrics.loss", "7 3 2 8 10 5 1 4");
    expect_runs("metrics.loss > 0.2 and params.lr IS NOT NULL", "params.lr desc", "6 3 2 5");
}
