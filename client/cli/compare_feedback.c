/*
 * compare_feedback.c: the feedback rows of `track compare` (cmd_compare.c):
 * each compared run's feedback summaries (one FeedbackSummary read per
 * run), gathered into one row per feedback name, a cell per run: the mean
 * of a number name, the true ratio of a boolean one (as `feedback.NAME`
 * compares them in filters), the most frequent label of a label name, each
 * with its count; and the same per run for --json.
 */
#include "compare.h"
#include "render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct load_ctx {
    struct cmp_feedback *fb;
    size_t run;
};

static int take(void *ctx, const struct track_feedback_summary *s)
{
    struct load_ctx *l = ctx;
    struct cmp_feedback *fb = l->fb;
    size_t k = 0;

    while (k < fb->nn && strcmp(fb->names[k], s->name) != 0)
        k++;
    if (k == fb->nn) {
        if (fb->nn == CMP_FB_NAMES)
            return 0; /* more names than rows: the first ones, by name */
        if (!(fb->names[k] = strdup(s->name)))
            return -1;
        fb->kinds[k] = s->kind;
        fb->nn++;
    }
    struct cmp_fb_cell *c = &fb->cells[k][l->run];
    c->have = 1;
    c->kind = s->kind;
    c->count = s->count;
    c->comments = s->comments;
    c->mean = s->mean;
    if (s->n_labels) {
        snprintf(c->top, sizeof c->top, "%s", s->labels[0]);
        c->top_count = s->label_counts[0];
    }
    return 0;
}

int cmp_feedback_load(struct track_client *c, const char (*hex)[33], size_t n,
                      struct cmp_feedback *fb, struct track_err *err)
{
    memset(fb, 0, sizeof *fb);
    for (size_t i = 0; i < n && i < CMP_FB_RUNS; i++) {
        struct load_ctx l = {fb, i};
        int rc = track_feedback_summary(c, hex[i], NULL, 0, take, &l, err);
        if (rc)
            return rc;
    }
    return 0;
}

void cmp_feedback_free(struct cmp_feedback *fb)
{
    for (size_t k = 0; k < fb->nn; k++)
        free(fb->names[k]);
    fb->nn = 0;
}

void cmp_feedback_cell(const struct cmp_feedback *fb, size_t k, size_t run, int machine, char *buf,
                       size_t len)
{
    const struct cmp_fb_cell *c = &fb->cells[k][run];
    char v[64];

    if (!c->have || (c->count == 0 && c->kind != TRACK_SCORE_LABEL)) {
        snprintf(buf, len, machine ? "" : "-");
        return;
    }
    if (c->kind == TRACK_SCORE_LABEL) {
        if (machine)
            snprintf(buf, len, "%s", c->top);
        else
            snprintf(buf, len, "%.24s (%lld/%lld)", c->top, (long long)c->top_count,
                     (long long)c->count);
        return;
    }
    if (machine) {
        render_double(c->mean, buf, len);
        return;
    }
    render_num(c->mean, v, sizeof v);
    snprintf(buf, len, "%s (n=%lld)", v, (long long)c->count);
}

json_t *cmp_feedback_json(const struct cmp_feedback *fb, size_t run)
{
    json_t *o = json_object();
    for (size_t k = 0; k < fb->nn; k++) {
        const struct cmp_fb_cell *c = &fb->cells[k][run];
        if (!c->have)
            continue;
        json_t *s = json_object();
        json_object_set_new(s, "kind", json_string(track_score_kind_name(c->kind)));
        json_object_set_new(s, "count", json_integer(c->count));
        json_object_set_new(s, "comments", json_integer(c->comments));
        if (c->kind == TRACK_SCORE_NUMBER)
            json_object_set_new(s, "mean", c->count ? cli_json_double(c->mean) : json_null());
        else if (c->kind == TRACK_SCORE_BOOL)
            json_object_set_new(s, "true_ratio", c->count ? cli_json_double(c->mean) : json_null());
        else if (c->kind == TRACK_SCORE_LABEL)
            json_object_set_new(s, "top_label", c->top_count ? json_string(c->top) : json_null());
        json_object_set_new(o, fb->names[k], s);
    }
    return o;
}
