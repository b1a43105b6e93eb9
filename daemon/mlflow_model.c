/*
 * mlflow_model.c: MLflow's model registry endpoints on track's registry
 * (registered-models/..., model-versions/...), through the loop (http.h).
 *
 * A version pins one artifact of its run (track's registry, README "Model
 * registry"). MLflow's source names a directory, the logged model
 * (`mlflow-artifacts:/<exp>/<run>/artifacts/model` or `runs:/<run>/model`):
 * when the run has no artifact at that exact path, the version pins the
 * directory's MLmodel file, the file that names an MLflow model, and reads
 * back with the directory as its source. A version is READY as soon as it
 * is created (the client polls otherwise); stages are not kept
 * (current_stage is "None": MLflow deprecated them for aliases).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"

#define MLMODEL    "/MLmodel"
#define SOURCE_TAG "mlflow.source" /* a version tag: the source it was registered from */

static json_t *version_json(const Track__V1__ModelVersion *v)
{
    char hex[33] = "", ver[24], src[LIMIT_KEY_BYTES * 2 + 64];
    if (v->run_id.len == 16)
        wire_hex(v->run_id.data, hex);
    snprintf(ver, sizeof(ver), "%lld", (long long)v->version);
    size_t pl = strlen(v->path), ml = strlen(MLMODEL);
    int dir = pl > ml && strcmp(v->path + pl - ml, MLMODEL) == 0;
    snprintf(src, sizeof(src), "runs:/%s/%.*s", hex, (int)(dir ? pl - ml : pl), v->path);
    json_t *tags = json_array(), *aliases = json_array();
    for (size_t i = 0; tags && i < v->n_tags; i++) {
        if (strcmp(v->tags[i]->key, SOURCE_TAG) == 0) { /* the source as the client gave it */
            snprintf(src, sizeof(src), "%s", v->tags[i]->value);
            continue;
        }
        json_array_append_new(tags, json_pack("{s:o, s:o}", "key", http_json_str(v->tags[i]->key),
                                              "value", http_json_str(v->tags[i]->value)));
    }
    for (size_t i = 0; aliases && i < v->n_aliases; i++)
        json_array_append_new(aliases, http_json_str(v->aliases[i]));
    return json_pack("{s:o, s:s, s:I, s:I, s:o, s:s, s:o, s:o, s:s, s:s, s:o, s:o}", "name",
                     http_json_str(v->model), "version", ver, "creation_timestamp",
                     (json_int_t)v->created_ms, "last_updated_timestamp", (json_int_t)v->created_ms,
                     "user_id", http_json_str(v->user), "current_stage", "None", "description",
                     http_json_str(v->description), "source", http_json_str(src), "run_id", hex,
                     "status", "READY", "tags", tags, "aliases", aliases);
}

/* registered_model of a ModelInfo; latest (may be NULL) its newest version */
static json_t *model_json(const Track__V1__ModelInfo *m, const Track__V1__ModelVersion *latest)
{
    json_t *tags = json_array(), *aliases = json_array(), *lv = json_array();
    for (size_t i = 0; tags && i < m->n_tags; i++)
        json_array_append_new(tags, json_pack("{s:o, s:o}", "key", http_json_str(m->tags[i]->key),
                                              "value", http_json_str(m->tags[i]->value)));
    for (size_t i = 0; aliases && i < m->n_aliases; i++) {
        char ver[24];
        snprintf(ver, sizeof(ver), "%lld", (long long)m->aliases[i]->to_version);
        json_array_append_new(
            aliases,
            json_pack("{s:o, s:s}", "alias", http_json_str(m->aliases[i]->alias), "version", ver));
    }
    if (latest && lv)
        json_array_append_new(lv, version_json(latest));
    return json_pack("{s:o, s:I, s:I, s:s, s:o, s:o, s:o}", "name", http_json_str(m->name),
                     "creation_timestamp", (json_int_t)m->created_ms, "last_updated_timestamp",
                     (json_int_t)m->created_ms, "description", "", "latest_versions", lv, "tags",
                     tags, "aliases", aliases);
}

/* One version by ref (NAME/3, NAME@alias); NULL with r failed. */
static json_t *version_get(struct http_req *r, const char *ref)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelGet q = TRACK__V1__MODEL_GET__INIT;
    Track__V1__Response *rs;

    q.ref = (char *)ref;
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_GET;
    rq.model_get = &q;
    if (http_call(r, &rq, &rs))
        return NULL;
    json_t *v = version_json(rs->model_get->version);
    http_response_free(rs);
    if (!v)
        http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    return v;
}

static int arg_name(struct http_req *r, const char **name)
{
    if (http_arg_str(r, "name", 1, name))
        return -1;
    if (!**name || strlen(*name) > STORE_MODEL_NAME_MAX)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Registered model name must be 1 to %d bytes", STORE_MODEL_NAME_MAX);
    return 0;
}

/* A registry request's tags ([{key, value}], at most 100) into kv and kp;
 * -1 with r failed. */
static int tag_list(struct http_req *r, const json_t *tags, Track__V1__KeyValue *kv,
                    Track__V1__KeyValue **kp, size_t *n)
{
    size_t i;
    json_t *v;

    *n = 0;
    if (tags && json_array_size(tags) > 100)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "tags: at most 100");
    json_array_foreach(tags, i, v)
    {
        const char *k = json_string_value(json_object_get(v, "key"));
        const char *val = json_string_value(json_object_get(v, "value"));
        if (!k || !val)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                             "tags[%zu]: 'key' and 'value' must be strings", i);
        track__v1__key_value__init(&kv[*n]);
        kv[*n].key = (char *)k;
        kv[*n].value = (char *)val;
        kp[*n] = &kv[*n];
        (*n)++;
    }
    return 0;
}

static int models_create(struct http_req *r)
{
    const char *name;
    json_t *tags;
    size_t n = 0;

    if (arg_name(r, &name) || http_arg_array(r, "tags", &tags))
        return -1;
    Track__V1__KeyValue kv[100], *kp[100];
    if (tag_list(r, tags, kv, kp, &n))
        return -1;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelCreate q = TRACK__V1__MODEL_CREATE__INIT;
    Track__V1__Response *rs;
    q.name = (char *)name;
    q.tags = kp;
    q.n_tags = n;
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_CREATE;
    rq.model_create = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    Track__V1__ModelInfo *m = rs->model_create->model;
    m->tags = kp; /* as asked: the reply names only the model */
    m->n_tags = n;
    json_t *o = json_pack("{s:o}", "registered_model", model_json(m, NULL));
    m->tags = NULL;
    m->n_tags = 0;
    http_response_free(rs);
    return http_ok(r, o);
}

static int models_get(struct http_req *r)
{
    const char *name;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelShow q = TRACK__V1__MODEL_SHOW__INIT;
    Track__V1__Response *rs;

    if (arg_name(r, &name))
        return -1;
    q.name = (char *)name;
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_SHOW;
    rq.model_show = &q;
    if (http_call(r, &rq, &rs)) {
        if (r->status == 404)
            http_fail(r, 404, "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=%s not found",
                      name);
        return -1;
    }
    Track__V1__ModelInfo *m = rs->model_show->model;
    json_t *latest = NULL;
    /* the newest version, by its own ref (ModelShow pages versions oldest first) */
    char ref[STORE_MODEL_NAME_MAX + 30];
    if (m->latest_version > 0) {
        snprintf(ref, sizeof(ref), "%s/%lld", name, (long long)m->latest_version);
        if (!(latest = version_get(r, ref))) {
            http_response_free(rs);
            return -1;
        }
    }
    json_t *o = model_json(m, NULL);
    http_response_free(rs);
    if (o && latest)
        json_array_append_new(json_object_get(o, "latest_versions"), latest);
    else
        json_decref(latest);
    return http_ok(r, json_pack("{s:o}", "registered_model", o));
}

static int models_search(struct http_req *r)
{
    const char *filter, *token;
    char pat[STORE_MODEL_NAME_MAX + 1] = "", after[STORE_MODEL_NAME_MAX + 1] = "";
    int64_t max;
    int op;

    if (http_arg_str(r, "filter", 0, &filter) || http_arg_i64(r, "max_results", 0, 100, &max) ||
        http_arg_str(r, "page_token", 0, &token) ||
        http_name_filter(r, filter, &op, pat, sizeof(pat)))
        return -1;
    if (max < 1 || max > 1000)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter 'max_results': %lld (1 to 1000)",
                         (long long)max);
    if (token)
        snprintf(after, sizeof(after), "%s", token);
    json_t *list = json_array();
    int more = 0;
    char last[STORE_MODEL_NAME_MAX + 1] = "";
    for (;;) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ModelList q = TRACK__V1__MODEL_LIST__INIT;
        Track__V1__Response *rs;
        q.after = after;
        rq.op_case = TRACK__V1__REQUEST__OP_MODEL_LIST;
        rq.model_list = &q;
        if (http_call(r, &rq, &rs)) {
            json_decref(list);
            return -1;
        }
        const Track__V1__ModelListResult *l = rs->model_list;
        for (size_t i = 0; i < l->n_models && !more; i++) {
            const Track__V1__ModelInfo *m = l->models[i];
            if (!http_name_match(op, m->name, pat)) {
                snprintf(last, sizeof(last), "%s", m->name);
                continue;
            }
            if ((int64_t)json_array_size(list) == max) {
                more = 1;
                break;
            }
            json_array_append_new(list, model_json(m, NULL));
            snprintf(last, sizeof(last), "%s", m->name);
        }
        snprintf(after, sizeof(after), "%s", l->next_after);
        int done = more || !l->next_after[0];
        http_response_free(rs);
        if (done)
            break;
    }
    json_t *o = json_object();
    if (o && json_array_size(list))
        json_object_set(o, "registered_models", list);
    json_decref(list);
    if (o && more)
        json_object_set_new(o, "next_page_token", http_json_str(last));
    return http_ok(r, o);
}

/* The run id and artifact path an MLflow source names: runs:/RUN/PATH or
 * mlflow-artifacts:/EXP/RUN/artifacts/PATH; -1 with r failed. */
static int parse_source(struct http_req *r, const char *src, char run[33], const char **path)
{
    const char *p;
    if (strncmp(src, "runs:/", 6) == 0)
        p = src + 6;
    else if (strncmp(src, "mlflow-artifacts:/", 18) == 0 && (p = strchr(src + 18, '/')))
        p++;
    else
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "source '%.200s': this server registers runs:/RUN/PATH or "
                         "mlflow-artifacts:/EXP/RUN/artifacts/PATH",
                         src);
    while (*p == '/')
        p++;
    if (strlen(p) < 32 || (p[32] && p[32] != '/'))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "source '%.200s': no run id in it",
                         src);
    memcpy(run, p, 32);
    run[32] = '\0';
    p += 32;
    while (*p == '/')
        p++;
    if (strncmp(src, "mlflow-artifacts:/", 18) == 0) {
        if (strncmp(p, "artifacts", 9) != 0 || (p[9] && p[9] != '/'))
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                             "source '%.200s': expected .../RUN/artifacts/PATH", src);
        p += 9;
        while (*p == '/')
            p++;
    }
    if (!*p)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "source '%.200s': names no artifact in the run", src);
    *path = p;
    return 0;
}

static int versions_create(struct http_req *r)
{
    const char *name, *source, *run_id, *desc, *path = NULL;
    json_t *tags;
    char run[33], dir[LIMIT_KEY_BYTES * 2 + 16];
    size_t n = 0;

    if (arg_name(r, &name) || http_arg_str(r, "source", 1, &source) ||
        http_arg_str(r, "run_id", 0, &run_id) || http_arg_str(r, "description", 0, &desc) ||
        http_arg_array(r, "tags", &tags) || parse_source(r, source, run, &path))
        return -1;
    if (run_id && run_id[0] && strcmp(run_id, run) != 0)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "run_id %.40s and the run of source %.200s differ", run_id, source);
    if (strlen(source) > LIMIT_VALUE_BYTES)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "source: at most %d bytes",
                         LIMIT_VALUE_BYTES);
    Track__V1__KeyValue kv[101], *kp[101];
    if (tag_list(r, tags, kv, kp, &n))
        return -1;
    track__v1__key_value__init(&kv[n]);
    kv[n].key = wire_str(SOURCE_TAG);
    kv[n].value = (char *)source;
    kp[n] = &kv[n];
    n++;
    for (int attempt = 0; attempt < 2; attempt++) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ModelRegister q = TRACK__V1__MODEL_REGISTER__INIT;
        Track__V1__Response *rs;
        q.name = (char *)name;
        q.run = run;
        q.path = (char *)path;
        q.description = (char *)(desc ? desc : "");
        q.tags = kp;
        q.n_tags = n;
        rq.op_case = TRACK__V1__REQUEST__OP_MODEL_REGISTER;
        rq.model_register = &q;
        if (http_call(r, &rq, &rs) == 0) {
            json_t *o =
                json_pack("{s:o}", "model_version", version_json(rs->model_register->version));
            http_response_free(rs);
            r->error_code = NULL;
            return http_ok(r, o);
        }
        /* no artifact at that path: the directory of an MLflow model */
        if (r->status == 404 && strstr(r->message, "has no artifact")) {
            if (attempt || strlen(path) + sizeof(MLMODEL) > sizeof(dir))
                return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                                 "source %.300s: run %s has no artifact %.300s nor %.300s%s; a "
                                 "version pins a logged artifact, so log the model first",
                                 source, run, attempt ? dir : path, attempt ? "" : path,
                                 attempt ? "" : MLMODEL);
        } else
            return -1;
        snprintf(dir, sizeof(dir), "%s%s", path, MLMODEL);
        path = dir;
    }
    return -1;
}

static int versions_get(struct http_req *r)
{
    const char *name, *ver;
    char ref[STORE_MODEL_NAME_MAX + 40];
    json_t *v;

    if (arg_name(r, &name) || http_arg_str(r, "version", 1, &ver))
        return -1;
    if (!ver[0] || strlen(ver) > 18 || strspn(ver, "0123456789") != strlen(ver))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Model version must be an integer, got '%.40s'", ver);
    snprintf(ref, sizeof(ref), "%s/%s", name, ver);
    if (!(v = version_get(r, ref)))
        return -1;
    return http_ok(r, json_pack("{s:o}", "model_version", v));
}

/* model-versions/search: `name = 'X'` (the versions of one model) */
static int versions_search(struct http_req *r)
{
    const char *filter, *token;
    char pat[STORE_MODEL_NAME_MAX + 1];
    int64_t max, after = 0;
    int op;

    if (http_arg_str(r, "filter", 0, &filter) || http_arg_i64(r, "max_results", 0, 10000, &max) ||
        http_arg_str(r, "page_token", 0, &token) ||
        http_name_filter(r, filter, &op, pat, sizeof(pat)))
        return -1;
    if (op != HTTP_NAME_EQ)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "filter: this server searches the versions of one model: name = 'X'");
    if (max < 1 || max > 200000)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter 'max_results': %lld", (long long)max);
    if (token && token[0]) {
        char *end;
        after = strtoll(token, &end, 10);
        if (*end || after < 0)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "page_token: not one of ours");
    }
    json_t *list = json_array();
    int more = 0;
    int64_t last = after;
    for (;;) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ModelShow q = TRACK__V1__MODEL_SHOW__INIT;
        Track__V1__Response *rs;
        q.name = pat;
        q.after_version = after;
        rq.op_case = TRACK__V1__REQUEST__OP_MODEL_SHOW;
        rq.model_show = &q;
        if (http_call(r, &rq, &rs)) {
            json_decref(list);
            if (r->status == 404) { /* no such model: no versions */
                r->error_code = NULL;
                return http_ok(r, json_object());
            }
            return -1;
        }
        const Track__V1__ModelShowResult *s = rs->model_show;
        for (size_t i = 0; i < s->n_versions; i++) {
            if ((int64_t)json_array_size(list) == max) {
                more = 1;
                break;
            }
            json_array_append_new(list, version_json(s->versions[i]));
            last = s->versions[i]->version;
        }
        int done = more || !s->more || s->versions_done || !s->n_versions;
        after = s->next_after_version;
        http_response_free(rs);
        if (done)
            break;
    }
    json_t *o = json_object();
    if (o && json_array_size(list))
        json_object_set(o, "model_versions", list);
    json_decref(list);
    if (o && more) {
        char next[24];
        snprintf(next, sizeof(next), "%lld", (long long)last);
        json_object_set_new(o, "next_page_token", json_string(next));
    }
    return http_ok(r, o);
}

static int alias_call(struct http_req *r, int remove)
{
    const char *name, *alias, *ver = "";
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelAlias q = TRACK__V1__MODEL_ALIAS__INIT;
    Track__V1__Response *rs;

    if (arg_name(r, &name) || http_arg_str(r, "alias", 1, &alias) ||
        (!remove && http_arg_str(r, "version", 1, &ver)))
        return -1;
    /* MLflow's rule: these read as version references in models:/ URIs */
    size_t al = strlen(alias);
    if (!remove &&
        (strcasecmp(alias, "latest") == 0 || ((alias[0] == 'v' || alias[0] == 'V') && al > 1 &&
                                              strspn(alias + 1, "0123456789") == al - 1)))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "'%s' is reserved and cannot be used as an alias", alias);
    q.name = (char *)name;
    q.alias = (char *)alias;
    q.version = (char *)ver;
    q.user = r->caller.name;
    q.remove = remove;
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_ALIAS;
    rq.model_alias = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    http_response_free(rs);
    return http_ok(r, json_object());
}

static int alias_set(struct http_req *r)
{
    return alias_call(r, 0);
}

static int alias_delete(struct http_req *r)
{
    return alias_call(r, 1);
}

static int alias_get(struct http_req *r)
{
    const char *name, *alias;
    char ref[2 * STORE_MODEL_NAME_MAX + 2];
    json_t *v;

    if (arg_name(r, &name) || http_arg_str(r, "alias", 1, &alias))
        return -1;
    if (strlen(alias) > STORE_MODEL_NAME_MAX)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "alias: at most %d bytes",
                         STORE_MODEL_NAME_MAX);
    snprintf(ref, sizeof(ref), "%s@%s", name, alias);
    if (!(v = version_get(r, ref))) {
        /* MLflow answers an unknown alias this way */
        if (r->status == 404)
            http_fail(r, 400, "INVALID_PARAMETER_VALUE", "Registered model alias %s not found.",
                      alias);
        return -1;
    }
    return http_ok(r, json_pack("{s:o}", "model_version", v));
}

const struct http_route ml_model_routes[] = {
    {"POST", "registered-models/create", models_create, NULL, 1, 0, 0},
    {"GET", "registered-models/get", models_get, NULL, 0, 0, 0},
    {"GET", "registered-models/search", models_search, NULL, 0, 0, 0},
    {"POST", "registered-models/alias", alias_set, NULL, 1, 0, 0},
    {"GET", "registered-models/alias", alias_get, NULL, 0, 0, 0},
    {"DELETE", "registered-models/alias", alias_delete, NULL, 1, 0, 0},
    {"POST", "model-versions/create", versions_create, NULL, 1, 0, 0},
    {"GET", "model-versions/get", versions_get, NULL, 0, 0, 0},
    {"GET", "model-versions/search", versions_search, NULL, 0, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
