/*
 * web_model.c: the dashboard's API for the model registry (README
 * "Dashboard"): the registered models with their aliases, and one model's
 * versions and alias history, in the shapes of `track model list --json`
 * and `track model show --json`. Both follow the daemon's pages to the end
 * (a registry is small next to runs), up to WEB_MODELS_MAX entries. And a
 * version's file, by the digest it was pinned with.
 */
#include <stdio.h>
#include <string.h>

#include "http.h"

#define WEB_MODELS_MAX 10000

static json_t *tags_json(Track__V1__KeyValue **kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++)
        json_object_set_new(o, kv[i]->key, http_json_str(kv[i]->value));
    return o;
}

static json_t *model_json(const Track__V1__ModelInfo *m)
{
    json_t *aliases = json_object();
    for (size_t i = 0; aliases && i < m->n_aliases; i++)
        json_object_set_new(aliases, m->aliases[i]->alias, json_integer(m->aliases[i]->to_version));
    return json_pack("{s:o, s:o, s:I, s:I, s:o, s:o}", "name", http_json_str(m->name),
                     "created_time", web_json_time(m->created_ms), "versions",
                     (json_int_t)m->versions, "latest_version", (json_int_t)m->latest_version,
                     "tags", tags_json(m->tags, m->n_tags), "aliases", aliases);
}

static json_t *version_json(const Track__V1__ModelVersion *v)
{
    char run[33] = "", dg[65] = "";
    if (v->run_id.len == 16)
        web_hex(v->run_id.data, 16, run);
    if (v->digest.len == 32)
        web_hex(v->digest.data, 32, dg);
    json_t *aliases = json_array();
    for (size_t i = 0; aliases && i < v->n_aliases; i++)
        json_array_append_new(aliases, http_json_str(v->aliases[i]));
    return json_pack("{s:I, s:s, s:o, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "version",
                     (json_int_t)v->version, "run_id", run, "path", http_json_str(v->path),
                     "digest", dg, "size", (json_int_t)v->size, "description",
                     http_json_str(v->description), "user", http_json_str(v->user), "created_time",
                     web_json_time(v->created_ms), "tags", tags_json(v->tags, v->n_tags), "aliases",
                     aliases);
}

static json_t *move_json(const Track__V1__ModelAliasMove *m)
{
    return json_pack("{s:o, s:I, s:I, s:o, s:o}", "alias", http_json_str(m->alias), "from_version",
                     (json_int_t)m->from_version, "to_version", (json_int_t)m->to_version, "who",
                     http_json_str(m->who), "time", web_json_time(m->ms));
}

static int models(struct http_req *r)
{
    char after[LIMIT_NAME_BYTES + 1] = "";
    json_t *list = json_array();
    int more;

    if (!list)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    do {
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
        for (size_t i = 0; i < l->n_models; i++)
            json_array_append_new(list, model_json(l->models[i]));
        more = l->next_after && l->next_after[0] && strcmp(l->next_after, after) != 0;
        if (more)
            snprintf(after, sizeof(after), "%s", l->next_after);
        http_response_free(rs);
    } while (more && json_array_size(list) < WEB_MODELS_MAX);
    return http_ok(r, json_pack("{s:o, s:b}", "models", list, "more", more));
}

/* models/NAME: the model, every version, the alias history oldest first */
static int model_show(struct http_req *r)
{
    json_t *model = NULL, *versions = json_array(), *history = json_array();
    int64_t after_version = 0, after_move = 0;
    int done = 0, more;

    if (!versions || !history)
        goto oom;
    if (!r->path[0] || strlen(r->path) > LIMIT_NAME_BYTES) {
        json_decref(versions);
        json_decref(history);
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "model name: 1 to %d bytes after models/", LIMIT_NAME_BYTES);
    }
    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__ModelShow q = TRACK__V1__MODEL_SHOW__INIT;
        Track__V1__Response *rs;
        q.name = (char *)r->path;
        q.after_version = after_version;
        q.after_move = after_move;
        q.versions_done = done;
        rq.op_case = TRACK__V1__REQUEST__OP_MODEL_SHOW;
        rq.model_show = &q;
        if (http_call(r, &rq, &rs)) {
            json_decref(model);
            json_decref(versions);
            json_decref(history);
            return -1;
        }
        const Track__V1__ModelShowResult *m = rs->model_show;
        if (!model && m->model)
            model = model_json(m->model);
        for (size_t i = 0; i < m->n_versions; i++)
            json_array_append_new(versions, version_json(m->versions[i]));
        for (size_t i = 0; i < m->n_history; i++)
            json_array_append_new(history, move_json(m->history[i]));
        /* a page that moves no cursor would be asked for again forever */
        more = m->more && (m->next_after_version != after_version ||
                           m->next_after_move != after_move || m->versions_done != done);
        after_version = m->next_after_version;
        after_move = m->next_after_move;
        done = m->versions_done;
        http_response_free(rs);
    } while (more && json_array_size(versions) + json_array_size(history) < WEB_MODELS_MAX);
    return http_ok(r, json_pack("{s:o, s:o, s:o, s:b}", "model", model ? model : json_null(),
                                "versions", versions, "history", history, "more", more));
oom:
    json_decref(versions);
    json_decref(history);
    return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
}

/* model-file?ref=NAME/VERSION|NAME@ALIAS: the version's file as it was
 * pinned at register time (its digest), whatever the run's artifact at
 * that path holds now, as `track model get REF -o FILE` fetches it */
static int model_file(struct http_req *r)
{
    const char *ref;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ModelGet q = TRACK__V1__MODEL_GET__INIT;
    Track__V1__Response *rs;

    if (http_arg_str(r, "ref", 1, &ref))
        return -1;
    if (strlen(ref) > 2 * LIMIT_NAME_BYTES + 1)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "ref: longer than %d bytes",
                         2 * LIMIT_NAME_BYTES + 1);
    q.ref = (char *)ref;
    rq.op_case = TRACK__V1__REQUEST__OP_MODEL_GET;
    rq.model_get = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    const Track__V1__ModelVersion *v = rs->model_get->version;
    if (!v || v->digest.len != 32) {
        http_response_free(rs);
        return http_fail(r, 500, "INTERNAL_ERROR", "model %s: no pinned digest", ref);
    }
    int ret = ml_blob_send(r, v->digest.data, v->size, v->path);
    http_response_free(rs);
    return ret;
}

const struct http_route web_model_routes[] = {
    {"GET", "model-file", model_file, NULL, 0, 0, 0},
    {"GET", "models", models, NULL, 0, 0, 0},
    {"GET", "models/", model_show, NULL, 0, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
