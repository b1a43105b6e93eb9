/*
 * mlflow_experiment.c: MLflow's experiment endpoints (experiments/create,
 * get, get-by-name, search) and the mapping between MLflow's experiment ids
 * and track's experiments, for every MLflow route (http.h).
 *
 * MLflow's ids are track's experiment numbers as text, except that track's
 * `Default` is MLflow's "0": it exists for MLflow before its first run, as
 * MLflow's own does, and is made by that run (RunStart with no experiment).
 * Names and numbers never change, so this file keeps a small cache of them
 * (EXP_CACHE, oldest replaced first) and lists the experiments again only
 * for a name or number it has not seen. Experiment tags and
 * artifact_location are not kept (track has neither): the location is
 * always mlflow-artifacts:/ID, this front's artifact proxy.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define ML_SEARCH_MAX 50000 /* experiments/search max_results */
#define EXP_CACHE     1024

/* ---- experiments: names and MLflow ids ------------------------------------------------ */

static struct {
    pthread_mutex_t lock;
    struct ml_experiment e[EXP_CACHE];
    int n, next;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void cache_put(const struct ml_experiment *x)
{
    pthread_mutex_lock(&cache.lock);
    int i;
    for (i = 0; i < cache.n; i++)
        if (cache.e[i].id == x->id)
            break;
    if (i == cache.n) {
        if (cache.n < EXP_CACHE)
            i = cache.n++;
        else
            i = cache.next++ % EXP_CACHE;
    }
    cache.e[i] = *x;
    pthread_mutex_unlock(&cache.lock);
}

/* by name (id < 0) or by id; 1 when found */
static int cache_get(const char *name, int64_t id, struct ml_experiment *out)
{
    int found = 0;
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < cache.n && !found; i++)
        if (name ? strcmp(cache.e[i].name, name) == 0 : cache.e[i].id == id) {
            *out = cache.e[i];
            found = 1;
        }
    pthread_mutex_unlock(&cache.lock);
    return found;
}

typedef int (*exp_cb)(void *ctx, const struct ml_experiment *x); /* 1 stops */

/* Walks every experiment (pages of ExperimentList); -1 with r failed. */
static int exp_scan(struct http_req *r, exp_cb cb, void *ctx)
{
    ProtobufCBinaryData token = {0};
    uint8_t tok[256];
    int stop = 0;

    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ExperimentList q = TRACK__V1__EXPERIMENT_LIST__INIT;
        Track__V1__Response *rs;
        q.page_token = token;
        rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_LIST;
        rq.experiment_list = &q;
        if (http_call(r, &rq, &rs))
            return -1;
        Track__V1__ExperimentListResult *l = rs->experiment_list;
        for (size_t i = 0; l && i < l->n_experiments && !stop; i++) {
            struct ml_experiment x = {.id = l->experiments[i]->id,
                                      .archived = l->experiments[i]->archived,
                                      .created_ms = l->experiments[i]->created_ms};
            snprintf(x.name, sizeof(x.name), "%s", l->experiments[i]->name);
            cache_put(&x);
            stop = cb(ctx, &x);
        }
        token.len = 0;
        if (!stop && l && l->next_page_token.len && l->next_page_token.len <= sizeof(tok)) {
            memcpy(tok, l->next_page_token.data, l->next_page_token.len);
            token.data = tok;
            token.len = l->next_page_token.len;
        }
        http_response_free(rs);
    } while (token.len);
    return 0;
}

struct exp_find {
    const char *name;
    int64_t id;
    struct ml_experiment *out;
    int found;
};

static int find_cb(void *ctx, const struct ml_experiment *x)
{
    struct exp_find *f = ctx;
    if (f->name ? strcmp(x->name, f->name) == 0 : x->id == f->id) {
        *f->out = *x;
        f->found = 1;
        return 1;
    }
    return 0;
}

/* The experiment named `name` or numbered `id` (name NULL): 1 found, 0
 * not, -1 r failed. */
static int exp_find(struct http_req *r, const char *name, int64_t id, struct ml_experiment *out)
{
    struct exp_find f = {.name = name, .id = id, .out = out};
    if (cache_get(name, id, out))
        return 1;
    if (exp_scan(r, find_cb, &f))
        return -1;
    return f.found;
}

void ml_experiment_mlflow_id(const struct ml_experiment *x, char out[24])
{
    if (strcmp(x->name, "Default") == 0)
        snprintf(out, 24, "0");
    else
        snprintf(out, 24, "%lld", (long long)x->id);
}

int ml_experiment_id(struct http_req *r, const char *name, char out[24])
{
    struct ml_experiment x;
    int rc;

    if (!name[0] || strcmp(name, "Default") == 0) {
        snprintf(out, 24, "0");
        return 0;
    }
    if ((rc = exp_find(r, name, 0, &x)) < 0)
        return -1;
    if (!rc)
        return http_fail(r, 404, "RESOURCE_DOES_NOT_EXIST", "No experiment named '%s'", name);
    ml_experiment_mlflow_id(&x, out);
    return 0;
}

/* The id text as a number; -1 with r failed. */
static int parse_exp_id(struct http_req *r, const char *id, int64_t *n)
{
    size_t len = strlen(id);
    if (!len || len > 18 || strspn(id, "0123456789") != len)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid experiment ID: '%.40s' (expected digits)", id);
    *n = strtoll(id, NULL, 10);
    return 0;
}

/* x for MLflow id `id`; 0 ok, -1 r failed (404 when none). Default is
 * always there, made at its first run when it does not exist yet. */
int ml_experiment_by_id(struct http_req *r, const char *id, struct ml_experiment *x)
{
    int64_t n = 0;
    int rc;

    if (parse_exp_id(r, id, &n))
        return -1;
    if (n == 0) {
        if ((rc = exp_find(r, "Default", 0, x)) < 0)
            return -1;
        if (!rc)
            *x = (struct ml_experiment){.id = 0, .name = "Default"};
        return 0;
    }
    if ((rc = exp_find(r, NULL, n, x)) < 0)
        return -1;
    if (!rc || strcmp(x->name, "Default") == 0)
        return http_fail(r, 404, "RESOURCE_DOES_NOT_EXIST", "No Experiment with id=%s exists", id);
    return 0;
}

int ml_experiment_name(struct http_req *r, const char *id, char *out, size_t cap)
{
    struct ml_experiment x;
    if (ml_experiment_by_id(r, id, &x))
        return -1;
    snprintf(out, cap, "%s", x.name);
    return 0;
}

static json_t *exp_json(const struct ml_experiment *x)
{
    char id[24], loc[64];
    ml_experiment_mlflow_id(x, id);
    snprintf(loc, sizeof(loc), "mlflow-artifacts:/%s", id);
    return json_pack("{s:s, s:o, s:s, s:s, s:I, s:I, s:[]}", "experiment_id", id, "name",
                     http_json_str(x->name), "artifact_location", loc, "lifecycle_stage",
                     x->archived ? "deleted" : "active", "creation_time", (json_int_t)x->created_ms,
                     "last_update_time", (json_int_t)x->created_ms, "tags");
}

static int experiments_create(struct http_req *r)
{
    const char *name;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ExperimentCreate q = TRACK__V1__EXPERIMENT_CREATE__INIT;
    Track__V1__Response *rs;
    char id[24];

    if (http_arg_str(r, "name", 1, &name))
        return -1;
    if (!name[0])
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid experiment name: must not be empty");
    q.name = (char *)name;
    rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_CREATE;
    rq.experiment_create = &q;
    if (http_call(r, &rq, &rs)) {
        if (r->status == 400 && strcmp(r->error_code, "RESOURCE_ALREADY_EXISTS") == 0)
            http_fail(r, 400, "RESOURCE_ALREADY_EXISTS", "Experiment(name=%s) already exists.",
                      name);
        return -1;
    }
    struct ml_experiment x = {.id = rs->experiment->id, .created_ms = rs->experiment->created_ms};
    snprintf(x.name, sizeof(x.name), "%s", rs->experiment->name);
    http_response_free(rs);
    cache_put(&x);
    ml_experiment_mlflow_id(&x, id);
    return http_ok(r, json_pack("{s:s}", "experiment_id", id));
}

static int experiments_get(struct http_req *r)
{
    const char *id;
    struct ml_experiment x;

    if (http_arg_str(r, "experiment_id", 1, &id) || ml_experiment_by_id(r, id, &x))
        return -1;
    return http_ok(r, json_pack("{s:o}", "experiment", exp_json(&x)));
}

static int experiments_get_by_name(struct http_req *r)
{
    const char *name;
    struct ml_experiment x;
    int rc;

    if (http_arg_str(r, "experiment_name", 1, &name))
        return -1;
    if ((rc = exp_find(r, name, 0, &x)) < 0)
        return -1;
    if (!rc && strcmp(name, "Default") == 0)
        x = (struct ml_experiment){.id = 0, .name = "Default"}, rc = 1;
    if (!rc)
        return http_fail(r, 404, "RESOURCE_DOES_NOT_EXIST",
                         "Could not find experiment with name '%s'", name);
    return http_ok(r, json_pack("{s:o}", "experiment", exp_json(&x)));
}

/* experiments/search's filter: empty, `name = 'X'`, `name LIKE 'P'` or
 * `name ILIKE 'P'` (% and _ wildcards). */
struct exp_search {
    json_t *list;
    int view; /* 1 active, 2 deleted, 3 all */
    int op;   /* http_name_filter's */
    char pat[LIMIT_NAME_BYTES + 3];
    int64_t skip, max, seen;
    int more, has_default;
};

static int search_cb(void *ctx, const struct ml_experiment *x)
{
    struct exp_search *q = ctx;
    if (!(q->view & (x->archived ? 2 : 1)))
        return 0;
    if (!http_name_match(q->op, x->name, q->pat))
        return 0;
    q->has_default |= strcmp(x->name, "Default") == 0;
    if (q->seen++ < q->skip)
        return 0;
    if ((int64_t)json_array_size(q->list) == q->max) {
        q->more = 1;
        return 1;
    }
    json_array_append_new(q->list, exp_json(x));
    return 0;
}

static int experiments_search(struct http_req *r)
{
    struct exp_search q = {.view = 1};
    const char *view, *filter, *token;
    int64_t max;

    if (http_arg_i64(r, "max_results", 0, 1000, &max) || http_arg_str(r, "view_type", 0, &view) ||
        http_arg_str(r, "filter", 0, &filter) || http_arg_str(r, "page_token", 0, &token))
        return -1;
    if (max < 1 || max > ML_SEARCH_MAX)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter 'max_results': %lld (1 to %d)",
                         (long long)max, ML_SEARCH_MAX);
    if (view && strcmp(view, "DELETED_ONLY") == 0)
        q.view = 2;
    else if (view && strcmp(view, "ALL") == 0)
        q.view = 3;
    else if (view && view[0] && strcmp(view, "ACTIVE_ONLY") != 0)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "view_type: unknown value '%s'", view);
    if (http_name_filter(r, filter, &q.op, q.pat, sizeof(q.pat)))
        return -1;
    if (token && token[0]) {
        char *end;
        q.skip = strtoll(token, &end, 10);
        if (*end || q.skip < 0)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "page_token: not one of ours");
    }
    q.max = max;
    if (!(q.list = json_array()))
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    if (exp_scan(r, search_cb, &q)) {
        json_decref(q.list);
        return -1;
    }
    /* Default ("0") exists for MLflow before its first run */
    struct ml_experiment d = {.name = "Default"};
    if (!q.has_default && !q.more && q.skip == 0 && (int64_t)json_array_size(q.list) < max)
        search_cb(&q, &d);
    json_t *o = json_pack("{s:o}", "experiments", q.list);
    if (o && q.more) {
        char next[24];
        snprintf(next, sizeof(next), "%lld", (long long)(q.skip + max));
        json_object_set_new(o, "next_page_token", json_string(next));
    }
    return http_ok(r, o);
}

const struct http_route ml_experiment_routes[] = {
    {"GET", "experiments/get-by-name", experiments_get_by_name, NULL, 0, 0, 0},
    {"POST", "experiments/create", experiments_create, NULL, 1, 0, 0},
    {"GET", "experiments/get", experiments_get, NULL, 0, 0, 0},
    {"POST", "experiments/search", experiments_search, NULL, 0, 0, 0},
    {"GET", "experiments/search", experiments_search, NULL, 0, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
