/*
 * web_run.c: the dashboard's API for experiments and runs (README
 * "Dashboard"): the experiment list, a search of runs (the filter language
 * of `track runs`), one run with its metric curves, artifacts (listed and
 * downloaded), lineage and feedback. Replies have the shapes of the CLI's
 * --json (a run as `track runs --json` prints it), so a script and the page
 * read the same thing. Each handler translates its call into track.v1
 * Requests through the loop (http_call), so permissions are dispatch's.
 *
 * Replies are bounded: a search returns at most WEB_RUNS_MAX runs a page
 * (gathered from the daemon's byte-paged replies, a run continued across
 * its pages merged into one), artifact and feedback lists stop at their
 * caps and say so, and a curve has at most WEB_CURVE_MAX buckets (four
 * points each: first, min, max, last), whatever the series' length.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define WEB_RUNS_MAX      10000
#define WEB_CURVE_MAX     10000
#define WEB_ARTIFACTS_MAX 10000
#define WEB_SCORES_MAX    10000

/* The details of x (params, tags, metric summaries) into o's objects. */
static void run_details(json_t *o, const Track__V1__Run *x)
{
    json_t *params = json_object_get(o, "params"), *tags = json_object_get(o, "tags"),
           *metrics = json_object_get(o, "metrics");
    for (size_t i = 0; i < x->n_params; i++)
        json_object_set_new(params, x->params[i]->key, http_json_str(x->params[i]->value));
    for (size_t i = 0; i < x->n_tags; i++)
        json_object_set_new(tags, x->tags[i]->key, http_json_str(x->tags[i]->value));
    for (size_t i = 0; i < x->n_metrics; i++) {
        const Track__V1__MetricSummary *m = x->metrics[i];
        json_object_set_new(metrics, m->key,
                            json_pack("{s:o, s:o, s:o, s:I, s:I, s:o}", "last",
                                      http_json_double(m->last), "min", http_json_double(m->min),
                                      "max", http_json_double(m->max), "count",
                                      (json_int_t)m->count, "last_step", (json_int_t)m->last_step,
                                      "last_time", web_json_time(m->last_ms)));
    }
}

/* A run as `track runs --json` prints it (cli_json_run). */
static json_t *run_json(const Track__V1__Run *x)
{
    char id[33] = "", parent[33] = "";
    if (x->run_id.len == 16)
        web_hex(x->run_id.data, 16, id);
    if (x->parent_id.len == 16)
        web_hex(x->parent_id.data, 16, parent);
    json_t *o = json_pack(
        "{s:s, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:{}, s:{}, s:{}}", "run_id", id, "name",
        http_json_str(x->name), "experiment", http_json_str(x->experiment), "status",
        http_status_name(x->status), "start_time", web_json_time(x->start_ms), "end_time",
        web_json_time(x->end_ms), "user", http_json_str(x->user), "parent_run_id",
        parent[0] ? json_string(parent) : json_null(), "params", "tags", "metrics");
    if (o)
        run_details(o, x);
    return o;
}

/* ---- experiments ------------------------------------------------------------------ */
static int experiments(struct http_req *r)
{
    json_t *list = json_array();
    uint8_t tok[512];
    size_t tl = 0;
    int more;

    if (!list)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ExperimentList q = TRACK__V1__EXPERIMENT_LIST__INIT;
        Track__V1__Response *rs;
        q.page_token.data = tok;
        q.page_token.len = tl;
        rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_LIST;
        rq.experiment_list = &q;
        if (http_call(r, &rq, &rs)) {
            json_decref(list);
            return -1;
        }
        const Track__V1__ExperimentListResult *l = rs->experiment_list;
        for (size_t i = 0; i < l->n_experiments; i++) {
            const Track__V1__Experiment *e = l->experiments[i];
            json_array_append_new(list,
                                  json_pack("{s:o, s:I, s:I, s:o, s:b}", "name",
                                            http_json_str(e->name), "id", (json_int_t)e->id,
                                            "run_count", (json_int_t)e->run_count, "created_time",
                                            web_json_time(e->created_ms), "archived", e->archived));
        }
        more = web_next_token(&l->next_page_token, tok, sizeof(tok), &tl);
        http_response_free(rs);
    } while (more);
    return http_ok(r, json_pack("{s:o}", "experiments", list));
}

/* ---- runs ------------------------------------------------------------------------ */
/* runs?experiment=&filter=&order_by=&limit=: the first `limit` runs of the
 * search, whole (every page of the daemon's followed), and whether more
 * match (one more is asked for, and dropped). */
static int runs(struct http_req *r)
{
    const char *exp, *filter, *order;
    int64_t limit;
    uint8_t tok[512];
    size_t tl = 0;
    json_t *list = json_array();
    char *names[1];
    int ret = -1, more;

    if (!list)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    if (http_arg_str(r, "experiment", 0, &exp) || http_arg_str(r, "filter", 0, &filter) ||
        http_arg_str(r, "order_by", 0, &order) ||
        web_arg_limit(r, "limit", 1000, WEB_RUNS_MAX, &limit))
        goto out;
    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__RunList q = TRACK__V1__RUN_LIST__INIT;
        Track__V1__Response *rs;
        if (exp && exp[0]) {
            names[0] = (char *)exp;
            q.experiments = names;
            q.n_experiments = 1;
        }
        q.filter = (char *)(filter ? filter : "");
        q.order_by = (char *)(order ? order : "");
        q.limit = (int32_t)limit + 1;
        q.with_details = 1;
        q.page_token.data = tok;
        q.page_token.len = tl;
        rq.op_case = TRACK__V1__REQUEST__OP_RUN_LIST;
        rq.run_list = &q;
        if (http_call(r, &rq, &rs)) {
            web_fail_filter(r, strncmp(r->message, "order-by", 8) == 0 ? "order_by" : "filter");
            goto out;
        }
        const Track__V1__RunListResult *l = rs->run_list;
        for (size_t i = 0; i < l->n_runs; i++) {
            const Track__V1__Run *x = l->runs[i];
            size_t n = json_array_size(list);
            json_t *last = n ? json_array_get(list, n - 1) : NULL;
            char id[33] = "";
            if (x->run_id.len == 16)
                web_hex(x->run_id.data, 16, id);
            /* a run continued from the previous page: its details join it */
            if (i == 0 && last &&
                strcmp(json_string_value(json_object_get(last, "run_id")), id) == 0)
                run_details(last, x);
            else if (json_array_append_new(list, run_json(x))) {
                http_response_free(rs);
                http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
                goto out;
            }
        }
        more = web_next_token(&l->next_page_token, tok, sizeof(tok), &tl);
        http_response_free(rs);
    } while (more);
    more = (int64_t)json_array_size(list) > limit;
    if (more)
        json_array_remove(list, (size_t)limit);
    ret = http_ok(r, json_pack("{s:O, s:b}", "runs", list, "more", more));
out:
    json_decref(list);
    return ret;
}

/* ---- one run ---------------------------------------------------------------------- */
/* runs/RUN: the run, whole (its details may span the daemon's pages) */
static int run_get(struct http_req *r, const char *run)
{
    uint8_t tok[512];
    size_t tl = 0;
    json_t *o = NULL;
    int more;

    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__RunGet q = TRACK__V1__RUN_GET__INIT;
        Track__V1__Response *rs;
        q.run = (char *)run;
        q.page_token.data = tok;
        q.page_token.len = tl;
        rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
        rq.run_get = &q;
        if (http_call(r, &rq, &rs)) {
            json_decref(o);
            return -1;
        }
        const Track__V1__Run *x = rs->run_get->run;
        if (x && !o && (o = run_json(x))) {
            json_object_set_new(o, "artifacts", json_integer(x->artifacts));
            json_object_set_new(o, "artifact_bytes", json_integer(x->artifact_bytes));
            json_object_set_new(o, "deleted", json_boolean(x->deleted));
        } else if (x && o)
            run_details(o, x);
        more = web_next_token(&rs->run_get->next_page_token, tok, sizeof(tok), &tl);
        http_response_free(rs);
    } while (more && o);
    return http_ok(r, o);
}

static json_t *i64_array(const int64_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

static json_t *double_array(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, http_json_double(v[i]));
    return a;
}

/* runs/RUN/curve?key=K&buckets=N: the M4 curve (README "Dashboard") */
static int curve(struct http_req *r, const char *run)
{
    const char *key;
    int64_t buckets;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricCurve q = TRACK__V1__METRIC_CURVE__INIT;
    Track__V1__Response *rs;

    if (http_arg_str(r, "key", 1, &key) ||
        web_arg_limit(r, "buckets", 1000, WEB_CURVE_MAX, &buckets))
        return -1;
    q.run = (char *)run;
    q.key = (char *)key;
    q.buckets = (int32_t)buckets;
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_CURVE;
    rq.metric_curve = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    const Track__V1__MetricCurveResult *c = rs->metric_curve;
    size_t n = c->n_steps;
    /* every array as long as steps (the proto's promise, checked) */
    if (c->n_firsts != n || c->n_mins != n || c->n_maxs != n || c->n_lasts != n ||
        c->n_first_steps != n || c->n_min_steps != n || c->n_max_steps != n ||
        c->n_last_steps != n || c->n_first_times != n || c->n_min_times != n ||
        c->n_max_times != n || c->n_last_times != n) {
        http_response_free(rs);
        return http_fail(r, 500, "INTERNAL_ERROR", "curve of %s: arrays of unequal length", key);
    }
    json_t *o = json_pack("{s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
                          "key", http_json_str(key), "count", (json_int_t)c->count, "first_steps",
                          i64_array(c->first_steps, n), "firsts", double_array(c->firsts, n),
                          "min_steps", i64_array(c->min_steps, n), "mins", double_array(c->mins, n),
                          "max_steps", i64_array(c->max_steps, n), "maxs", double_array(c->maxs, n),
                          "last_steps", i64_array(c->last_steps, n), "lasts",
                          double_array(c->lasts, n), "first_times", i64_array(c->first_times, n),
                          "min_times", i64_array(c->min_times, n), "max_times",
                          i64_array(c->max_times, n), "last_times", i64_array(c->last_times, n));
    http_response_free(rs);
    return http_ok(r, o);
}

int web_each_artifact(struct http_req *r, const char *run, const char *prefix, size_t cap,
                      int (*fn)(void *ctx, const Track__V1__ArtifactInfo *a), void *ctx)
{
    char after[LIMIT_ARTIFACT_PATH + 1] = "";
    size_t seen = 0;
    int more;

    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ArtifactList q = TRACK__V1__ARTIFACT_LIST__INIT;
        Track__V1__Response *rs;
        q.run = (char *)run;
        q.prefix = (char *)prefix;
        q.after = after;
        rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_LIST;
        rq.artifact_list = &q;
        if (http_call(r, &rq, &rs))
            return -1;
        const Track__V1__ArtifactListResult *l = rs->artifact_list;
        for (size_t i = 0; i < l->n_artifacts; i++)
            if (fn(ctx, l->artifacts[i])) {
                http_response_free(rs);
                return -1;
            }
        seen += l->n_artifacts;
        more = l->more && l->n_artifacts;
        if (more)
            snprintf(after, sizeof(after), "%s", l->artifacts[l->n_artifacts - 1]->path);
        http_response_free(rs);
    } while (more && seen < cap);
    return more;
}

static int add_artifact(void *ctx, const Track__V1__ArtifactInfo *a)
{
    char dg[65] = "";
    if (a->digest.len == 32)
        web_hex(a->digest.data, 32, dg);
    json_array_append_new(ctx, json_pack("{s:o, s:I, s:s, s:o}", "path", http_json_str(a->path),
                                         "size", (json_int_t)a->size, "digest", dg, "logged_time",
                                         web_json_time(a->logged_ms)));
    return 0;
}

/* runs/RUN/artifacts: every artifact (to WEB_ARTIFACTS_MAX, then more) */
static int artifacts(struct http_req *r, const char *run)
{
    json_t *list = json_array();
    if (!list)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    int more = web_each_artifact(r, run, "", WEB_ARTIFACTS_MAX, add_artifact, list);
    if (more < 0) {
        json_decref(list);
        return -1;
    }
    return http_ok(r, json_pack("{s:o, s:b}", "artifacts", list, "more", more));
}

static json_t *lineage_run(const Track__V1__LineageRun *x)
{
    char id[33] = "";
    if (!x)
        return json_null();
    if (x->run_id.len == 16)
        web_hex(x->run_id.data, 16, id);
    return json_pack("{s:s, s:o, s:o, s:s, s:b, s:o}", "run_id", id, "name", http_json_str(x->name),
                     "experiment", http_json_str(x->experiment), "status",
                     http_status_name(x->status), "deleted", x->deleted, "start_time",
                     web_json_time(x->start_ms));
}

/* runs/RUN/lineage: as `track lineage --json` */
static int lineage(struct http_req *r, const char *run)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Lineage q = TRACK__V1__LINEAGE__INIT;
    Track__V1__Response *rs;

    q.run = (char *)run;
    rq.op_case = TRACK__V1__REQUEST__OP_LINEAGE;
    rq.lineage = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    const Track__V1__LineageResult *l = rs->lineage;
    json_t *anc = json_array(), *kids = json_array(), *mv = json_array();
    for (size_t i = 0; anc && i < l->n_ancestors; i++)
        json_array_append_new(anc, lineage_run(l->ancestors[i]));
    for (size_t i = 0; kids && i < l->n_children; i++)
        json_array_append_new(kids, lineage_run(l->children[i]));
    for (size_t i = 0; mv && i < l->n_model_versions; i++) {
        const Track__V1__LineageModelVersion *v = l->model_versions[i];
        char dg[65] = "";
        if (v->digest.len == 32)
            web_hex(v->digest.data, 32, dg);
        json_array_append_new(
            mv, json_pack("{s:o, s:I, s:o, s:s}", "model", http_json_str(v->model), "version",
                          (json_int_t)v->version, "path", http_json_str(v->path), "digest", dg));
    }
    json_t *o =
        json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "run", lineage_run(l->run), "ancestors",
                  anc, "children", kids, "git_commit", http_json_str(l->git_commit), "command",
                  http_json_str(l->command), "model_versions", mv, "truncated", l->truncated);
    http_response_free(rs);
    return http_ok(r, o);
}

/* The run part of runs/RUN[/...]: 4 to 32 hex digits (a unique prefix, as
 * the CLI takes); -1 with r failed. */
static int run_part(struct http_req *r, char run[33], const char **rest)
{
    size_t n = strcspn(r->path, "/");
    if (n < 4 || n > 32 || strspn(r->path, "0123456789abcdef") < n)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "run: '%.40s' is not a run id (4 to 32 lowercase hex digits)", r->path);
    memcpy(run, r->path, n);
    run[n] = '\0';
    *rest = r->path[n] == '/' ? r->path + n + 1 : r->path + n;
    return 0;
}

static int run_sub(struct http_req *r)
{
    char run[33];
    const char *rest = NULL;

    if (run_part(r, run, &rest))
        return -1;
    if (!*rest)
        return run_get(r, run);
    if (strcmp(rest, "curve") == 0)
        return curve(r, run);
    if (strcmp(rest, "artifacts") == 0)
        return artifacts(r, run);
    if (strcmp(rest, "lineage") == 0)
        return lineage(r, run);
    if (strcmp(rest, "feedback") == 0)
        return web_run_feedback(r, run);
    if (strncmp(rest, "artifact/", 9) == 0 && rest[9])
        return ml_artifact_send(r, run, rest + 9, 1);
    return http_fail(r, 404, "ENDPOINT_NOT_FOUND", "no endpoint GET /api/track/v1/runs/%s/%.100s",
                     run, rest);
}

const struct http_route web_run_routes[] = {
    {"GET", "experiments", experiments, NULL, 0, 0, 0},
    {"GET", "runs", runs, NULL, 0, 0, 0},
    {"GET", "runs/", run_sub, NULL, 0, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
