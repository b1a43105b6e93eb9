/*
 * test_feedback_store.c: feedback scores in the store (storage/store_feedback.c)
 * through store.h: validation, a name's one type, summaries kept by every
 * insert (counts, means, distributions, true ratios, label counts), the
 * keyset listing, filters and order-by on feedback.NAME, and gc removing a
 * deleted run's scores. Each test opens a fresh database in a temp dir.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static char dir[256];
static char dbpath[512];
static struct store *st;
static struct store_err err;
static int64_t exp_id;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/track-fbstore-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/track.db", dir);
    cr_assert_eq(store_open(dbpath, &(struct store_opts){0}, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(store_experiment_ensure(st, "e", 1000, &exp_id, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    char p[600];
    store_close(st);
    st = NULL;
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", dbpath, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

TestSuite(fbstore, .init = setup, .fini = teardown);

static void run_of(uint8_t id[16], unsigned k)
{
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(k * 41u + (unsigned)i * 7u + 1u);
}

static void start(const uint8_t id[16], int64_t start_ms)
{
    struct store_run_start r = {
        .experiment_id = exp_id, .name = "r", .start_ms = start_ms, .user = "u"};
    memcpy(r.id, id, 16);
    cr_assert_eq(store_run_start(st, &r, &err), 0, "%s", err.msg);
}

static struct store_score score(const uint8_t run[16], const char *target, const char *name)
{
    struct store_score s = {.has_run = 1,
                            .target = target,
                            .name = name,
                            .source = STORE_FB_HUMAN,
                            .source_id = "ann",
                            .time_ms = 5000};
    memcpy(s.run, run, 16);
    s.target_kind = target && *target ? STORE_FB_T_ID : STORE_FB_T_RUN;
    return s;
}

static int add_num(const uint8_t run[16], const char *target, const char *name, double v)
{
    struct store_score s = score(run, target, name);
    s.kind = STORE_FB_NUMBER;
    s.number = v;
    return store_feedback_add(st, &s, NULL, &err);
}

static int add_bool(const uint8_t run[16], const char *target, const char *name, int v)
{
    struct store_score s = score(run, target, name);
    s.kind = STORE_FB_BOOL;
    s.boolean = v;
    return store_feedback_add(st, &s, NULL, &err);
}

static int add_label(const uint8_t run[16], const char *target, const char *name, const char *v)
{
    struct store_score s = score(run, target, name);
    s.kind = STORE_FB_LABEL;
    s.label = v;
    return store_feedback_add(st, &s, NULL, &err);
}

struct sums {
    int n;
    struct {
        char name[64], target[64];
        int64_t cursor_run, cursor_name;
        int kind;
        int64_t count, comments, true_count, other_labels;
        double sum, min, max;
        size_t n_labels, n_dist;
        char labels[8][32];
        int64_t label_counts[8];
        double dist_values[16];
        int64_t dist_counts[16];
        int binned;
    } it[16];
};

static int collect_sum(void *ctx, const struct store_feedback_summary *s)
{
    struct sums *o = ctx;
    cr_assert_lt(o->n, 16);
    typeof(o->it[0]) *t = &o->it[o->n++];
    snprintf(t->name, sizeof t->name, "%s", s->name);
    snprintf(t->target, sizeof t->target, "%s", s->target ? s->target : "-");
    t->cursor_run = s->cursor_run;
    t->cursor_name = s->cursor_name;
    t->kind = s->kind;
    t->count = s->count;
    t->comments = s->comments;
    t->true_count = s->true_count;
    t->other_labels = s->other_labels;
    t->sum = s->sum;
    t->min = s->min;
    t->max = s->max;
    t->n_labels = s->n_labels;
    for (size_t i = 0; i < s->n_labels && i < 8; i++) {
        snprintf(t->labels[i], sizeof t->labels[i], "%s", s->labels[i]);
        t->label_counts[i] = s->label_counts[i];
    }
    t->n_dist = s->n_dist;
    t->binned = s->dist_binned;
    for (size_t i = 0; i < s->n_dist && i < 16; i++) {
        t->dist_values[i] = s->dist_values[i];
        t->dist_counts[i] = s->dist_counts[i];
    }
    return 0;
}

Test(fbstore, validation_names_what_is_wrong)
{
    uint8_t run[16], ghost[16];
    run_of(run, 1);
    run_of(ghost, 2);
    start(run, 1000);

    cr_assert_eq(add_num(run, "", "q", NAN), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "finite"), "%s", err.msg);
    cr_assert_eq(add_num(run, "", "q", INFINITY), STORE_E_INVALID);
    struct store_score s = score(run, "", "q");
    s.kind = STORE_FB_NONE;
    cr_assert_eq(store_feedback_add(st, &s, NULL, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "neither a value nor a comment"), "%s", err.msg);
    cr_assert_eq(add_num(ghost, "", "q", 1), STORE_E_NOT_FOUND);
    cr_assert(strstr(err.msg, "run "), "%s", err.msg);
    cr_assert_eq(add_num(run, "", "", 1), STORE_E_INVALID);
}

Test(fbstore, a_name_keeps_one_type_and_a_comment_alone_fixes_none)
{
    uint8_t run[16];
    run_of(run, 1);
    start(run, 1000);

    struct store_score c = score(run, "s1", "helpfulness");
    c.comment = "no value yet";
    cr_assert_eq(store_feedback_add(st, &c, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(add_num(run, "s1", "helpfulness", 4), 0, "%s", err.msg);
    cr_assert_eq(add_label(run, "s1", "helpfulness", "good"), STORE_E_CONFLICT);
    cr_assert_str_eq(err.msg, "feedback \"helpfulness\" holds numbers; got a label \"good\"");
    cr_assert_eq(add_bool(run, "s1", "helpfulness", 1), STORE_E_CONFLICT);
    cr_assert(strstr(err.msg, "holds numbers; got a boolean true"), "%s", err.msg);
    cr_assert_eq(add_label(run, "s1", "tone", "warm"), 0, "%s", err.msg);
    cr_assert_eq(add_num(run, "s1", "tone", 3), STORE_E_CONFLICT);
    cr_assert(strstr(err.msg, "feedback \"tone\" holds labels; got a number 3"), "%s", err.msg);
    /* a comment on a typed name is fine */
    c.name = "tone";
    cr_assert_eq(store_feedback_add(st, &c, NULL, &err), 0, "%s", err.msg);
}

Test(fbstore, summaries_count_mean_distribution_ratio_and_labels_exactly)
{
    uint8_t run[16];
    run_of(run, 1);
    start(run, 1000);
    const double v[] = {5, 4, 4, 2, 5, 5};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(add_num(run, i < 3 ? "a" : "b", "helpfulness", v[i]), 0, "%s", err.msg);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(add_bool(run, "a", "correct", i != 2), 0, "%s", err.msg);
    const char *lab[] = {"good", "bad", "good", "meh", "good"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(add_label(run, "a", "tone", lab[i]), 0, "%s", err.msg);
    struct store_score c = score(run, "a", "tone");
    c.comment = "mixed";
    cr_assert_eq(store_feedback_add(st, &c, NULL, &err), 0, "%s", err.msg);

    struct sums o = {0};
    cr_assert_eq(store_feedback_summaries(st, run, NULL, 0, NULL, 0, collect_sum, &o, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(o.n, 3);
    /* by name: correct, helpfulness, tone */
    cr_assert_str_eq(o.it[0].name, "correct");
    cr_assert_eq(o.it[0].kind, STORE_FB_BOOL);
    cr_assert_eq(o.it[0].count, 4);
    cr_assert_eq(o.it[0].true_count, 3);
    cr_assert_str_eq(o.it[1].name, "helpfulness");
    cr_assert_eq(o.it[1].count, 6);
    cr_assert_float_eq(o.it[1].sum, 25.0, 1e-12);
    cr_assert_float_eq(o.it[1].min, 2.0, 1e-12);
    cr_assert_float_eq(o.it[1].max, 5.0, 1e-12);
    cr_assert_eq(o.it[1].n_dist, 3);
    cr_assert_float_eq(o.it[1].dist_values[0], 2.0, 0);
    cr_assert_eq(o.it[1].dist_counts[0], 1);
    cr_assert_eq(o.it[1].dist_counts[1], 2);
    cr_assert_eq(o.it[1].dist_counts[2], 3);
    cr_assert_str_eq(o.it[2].name, "tone");
    cr_assert_eq(o.it[2].count, 5);
    cr_assert_eq(o.it[2].comments, 1);
    cr_assert_eq(o.it[2].n_labels, 3);
    cr_assert_str_eq(o.it[2].labels[0], "good");
    cr_assert_eq(o.it[2].label_counts[0], 3);
    cr_assert_str_eq(o.it[2].labels[1], "bad");
    cr_assert_str_eq(o.it[2].labels[2], "meh");

    struct sums t = {0};
    cr_assert_eq(store_feedback_summaries(st, run, NULL, 1, NULL, 0, collect_sum, &t, &err), 0,
                 "%s", err.msg);
    /* (a: helpfulness, correct, tone: names in first-use order), (b: helpfulness) */
    cr_assert_eq(t.n, 4);
    cr_assert_str_eq(t.it[0].target, "a");
    cr_assert_str_eq(t.it[0].name, "helpfulness");
    cr_assert_float_eq(t.it[0].sum, 13.0, 1e-12);
    cr_assert_str_eq(t.it[1].name, "correct");
    cr_assert_str_eq(t.it[3].target, "b");
    cr_assert_float_eq(t.it[3].sum, 12.0, 1e-12);
    cr_assert_eq(t.it[3].n_dist, 2);
}

Test(fbstore, many_distinct_values_are_binned)
{
    uint8_t run[16];
    run_of(run, 1);
    start(run, 1000);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(add_num(run, "", "score", i), 0, "%s", err.msg);
    struct sums o = {0};
    cr_assert_eq(store_feedback_summaries(st, run, NULL, 0, NULL, 0, collect_sum, &o, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(o.it[0].binned, 1);
    cr_assert_eq(o.it[0].n_dist, STORE_FB_DIST_BINS);
    int64_t total = 0;
    for (int i = 0; i < STORE_FB_DIST_BINS; i++)
        total += o.it[0].dist_counts[i];
    cr_assert_eq(total, 100);
    cr_assert_eq(o.it[0].dist_counts[0], 10); /* width 9.9: [0, 9.9) holds 0..9 */
    cr_assert_eq(o.it[0].dist_counts[9], 10); /* and the last 90..99 */
}

Test(fbstore, experiment_summary_merges_runs)
{
    uint8_t a[16], b[16];
    run_of(a, 1);
    run_of(b, 2);
    start(a, 1000);
    start(b, 2000);
    add_num(a, "", "h", 1);
    add_num(b, "", "h", 3);
    add_num(b, "", "h", 5);
    add_label(a, "", "t", "x");
    add_label(b, "", "t", "x");
    struct sums o = {0};
    cr_assert_eq(store_feedback_summaries(st, NULL, "e", 0, NULL, 0, collect_sum, &o, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(o.it[0].count, 3);
    cr_assert_float_eq(o.it[0].sum, 9.0, 1e-12);
    cr_assert_eq(o.it[1].label_counts[0], 2);
    cr_assert_eq(store_feedback_summaries(st, NULL, "nope", 0, NULL, 0, collect_sum, &o, &err),
                 STORE_E_NOT_FOUND);
}

Test(fbstore, summaries_page_with_a_cursor)
{
    uint8_t a[16], b[16];
    run_of(a, 1);
    run_of(b, 2);
    start(a, 1000);
    start(b, 2000);
    const char *targets[] = {"x", "y", "z"};
    for (int t = 0; t < 3; t++) {
        add_num(a, targets[t], "h", t);
        add_num(b, targets[t], "h", t);
        add_label(a, targets[t], "l", "q");
    }
    struct sums all = {0};
    cr_assert_eq(store_feedback_summaries(st, NULL, "e", 1, NULL, 0, collect_sum, &all, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(all.n, 9);
    /* pages of two, each after the last item of the one before */
    struct sums paged = {0};
    struct store_feedback_after after;
    int pages = 0;
    for (;;) {
        struct sums one = {0};
        cr_assert_eq(store_feedback_summaries(st, NULL, "e", 1, pages ? &after : NULL, 2,
                                              collect_sum, &one, &err),
                     0, "%s", err.msg);
        for (int i = 0; i < one.n; i++)
            paged.it[paged.n++] = one.it[i];
        if (one.n < 2)
            break;
        after.run_row = paged.it[paged.n - 1].cursor_run;
        after.name_id = paged.it[paged.n - 1].cursor_name;
        after.target = paged.it[paged.n - 1].target;
        after.name = paged.it[paged.n - 1].name;
        pages++;
    }
    cr_assert_eq(paged.n, 9);
    for (int i = 0; i < 9; i++) {
        cr_assert_str_eq(paged.it[i].target, all.it[i].target);
        cr_assert_str_eq(paged.it[i].name, all.it[i].name);
    }
}

struct ids {
    int n;
    int64_t id[64], run_row[64];
    char target[64][16];
};

static int collect_ids(void *ctx, const struct store_score *s, int64_t run_row)
{
    struct ids *o = ctx;
    if (o->n >= 64)
        return 1;
    o->id[o->n] = s->id;
    o->run_row[o->n] = run_row;
    snprintf(o->target[o->n], 16, "%s", s->target);
    o->n++;
    return 0;
}

Test(fbstore, the_listing_pages_by_run_target_and_id)
{
    uint8_t a[16], b[16];
    run_of(a, 1);
    run_of(b, 2);
    start(a, 1000);
    start(b, 2000);
    for (int i = 0; i < 10; i++)
        add_num(i % 2 ? a : b, i % 3 ? "x" : "y", "h", i);
    struct ids all = {0};
    struct store_feedback_query q = {.experiment = "e"};
    cr_assert_eq(store_feedback_list(st, &q, collect_ids, &all, &err), 0, "%s", err.msg);
    cr_assert_eq(all.n, 10);
    /* pages of 3 rebuild the same listing */
    struct ids paged = {0};
    q.limit = 3;
    for (;;) {
        int before = paged.n;
        cr_assert_eq(store_feedback_list(st, &q, collect_ids, &paged, &err), 0, "%s", err.msg);
        if (paged.n == before)
            break;
        q.after_run = paged.run_row[paged.n - 1];
        q.after_target = paged.target[paged.n - 1];
        q.after_id = paged.id[paged.n - 1];
    }
    cr_assert_eq(paged.n, 10);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(paged.id[i], all.id[i]);
    struct ids one = {0};
    struct store_feedback_query q2 = {.has_run = 1, .target = "y"};
    memcpy(q2.run, a, 16);
    cr_assert_eq(store_feedback_list(st, &q2, collect_ids, &one, &err), 0, "%s", err.msg);
    cr_assert_eq(one.n, 2); /* i = 3, 9 */
}

struct names {
    int n;
    char name[8][32];
};

static int collect_run(void *ctx, const struct store_run *r)
{
    struct names *o = ctx;
    snprintf(o->name[o->n++], 32, "%s", r->name);
    return 0;
}

static void start_named(const uint8_t id[16], const char *name, int64_t t)
{
    struct store_run_start r = {.experiment_id = exp_id, .name = name, .start_ms = t, .user = "u"};
    memcpy(r.id, id, 16);
    cr_assert_eq(store_run_start(st, &r, &err), 0, "%s", err.msg);
}

Test(fbstore, filters_and_order_by_use_the_mean_and_true_ratio_and_refuse_labels)
{
    uint8_t a[16], b[16], c[16];
    run_of(a, 1);
    run_of(b, 2);
    run_of(c, 3);
    start_named(a, "a", 1000);
    start_named(b, "b", 2000);
    start_named(c, "c", 3000);
    add_num(a, "", "helpfulness", 5);
    add_num(a, "", "helpfulness", 4); /* 4.5 */
    add_num(b, "", "helpfulness", 3); /* 3 */
    add_bool(a, "", "correct", 1);
    add_bool(b, "", "correct", 1);
    add_bool(b, "", "correct", 0); /* 0.5 */
    add_bool(c, "", "correct", 0);
    add_label(a, "", "tone", "warm");

    struct names o = {0};
    struct store_run_query q = {.filter = "feedback.helpfulness > 4"};
    cr_assert_eq(store_run_list(st, &q, collect_run, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(o.n, 1);
    cr_assert_str_eq(o.name[0], "a");

    memset(&o, 0, sizeof o);
    q.filter = "feedback.correct >= 0.5";
    q.order_by = "feedback.correct ASC";
    cr_assert_eq(store_run_list(st, &q, collect_run, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(o.n, 2);
    cr_assert_str_eq(o.name[0], "b");
    cr_assert_str_eq(o.name[1], "a");

    memset(&o, 0, sizeof o);
    q.filter = NULL;
    q.order_by = "feedback.helpfulness DESC";
    cr_assert_eq(store_run_list(st, &q, collect_run, &o, &err), 0, "%s", err.msg);
    cr_assert_eq(o.n, 3);
    cr_assert_str_eq(o.name[0], "a");
    cr_assert_str_eq(o.name[1], "b");
    cr_assert_str_eq(o.name[2], "c"); /* none: last */

    q.filter = "feedback.tone = 1";
    q.order_by = NULL;
    cr_assert_eq(store_run_list(st, &q, collect_run, &o, &err), STORE_E_INVALID);
    cr_assert(strstr(err.msg, "feedback.tone holds labels"), "%s", err.msg);
    q.filter = NULL;
    q.order_by = "feedback.tone";
    cr_assert_eq(store_run_list(st, &q, collect_run, &o, &err), STORE_E_INVALID);
    q.order_by = NULL;
    q.filter = "feedback.helpfulness > 'x'";
    cr_assert_eq(store_run_list(st, &q, collect_run, &o, &err), STORE_E_INVALID);
}

Test(fbstore, gc_removes_a_deleted_runs_scores)
{
    uint8_t a[16];
    run_of(a, 1);
    start(a, 1000);
    add_num(a, "s", "h", 1);
    add_label(a, "s", "t", "x");
    int changed = 0;
    cr_assert_eq(store_run_delete(st, a, 2000, &changed, &err), 0, "%s", err.msg);
    cr_assert_eq(add_num(a, "s", "h", 1), STORE_E_CONFLICT);
    int64_t rows = 0;
    int runs = 0, more = 1;
    while (more)
        cr_assert_eq(store_gc_step(st, 1LL << 60, 1000, &rows, &runs, &more, &err), 0, "%s",
                     err.msg);
    struct ids all = {0};
    struct store_feedback_query q = {.experiment = "e"};
    cr_assert_eq(store_feedback_list(st, &q, collect_ids, &all, &err), 0, "%s", err.msg);
    cr_assert_eq(all.n, 0);
}
