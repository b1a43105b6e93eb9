/*
 * mlflow_run.c: MLflow's run and metric endpoints (runs/..., metrics/
 * get-history) translated into track's Requests (http.h: through the
 * loop, never the store). What the MLflow client sends and reads back is in
 * README "HTTP front"; the choices that are ours:
 *
 *   - MLflow's own tags are stored as sent and also fill track's fields:
 *     mlflow.user the user, mlflow.runName the name (set-tag of it renames
 *     the run), mlflow.parentRunId the parent, mlflow.source.name and
 *     mlflow.source.git.commit/branch the sys.command and sys.git.* tags
 *     `track compare` and `track lineage` read (shown to MLflow only under
 *     their MLflow names); a run read back always carries mlflow.runName;
 *   - keys are MLflow's: at most 250 characters of letters, digits and
 *     `_ - . / space :`, a normal relative path, checked before any call;
 *   - page tokens are track's own, in hex (runs/search) or a point count
 *     (metrics/get-history). */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define ML_BATCH_PARAMS 100
#define ML_BATCH_TAGS   100
#define ML_BATCH_TOTAL  1000
#define ML_KEY_CHARS    250
#define ML_SEARCH_MAX   50000 /* runs/search max_results */
#define ML_HISTORY_MAX  25000 /* metrics/get-history's page */

/* ---- runs --------------------------------------------------------------------------- */
int ml_arg_run(struct http_req *r, const char **run)
{
    uint8_t id[16];
    if (http_arg_str(r, "run_id", 0, run))
        return -1;
    if ((!*run || !**run) && http_arg_str(r, "run_uuid", 0, run))
        return -1;
    if (!*run || !**run)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Missing value for required parameter 'run_id'");
    if (strlen(*run) != 32 || wire_unhex(*run, id))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid run ID: '%.64s' (expected 32 hex digits)", *run);
    return 0;
}

/* MLflow's key rule; -1 with r failed naming what. */
int ml_check_key(struct http_req *r, const char *what, const char *k)
{
    size_t n = strlen(k);
    if (!n || n > ML_KEY_CHARS)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid %s name: '%.60s': 1 to %d characters", what, k, ML_KEY_CHARS);
    for (const unsigned char *p = (const unsigned char *)k; *p; p++)
        if (!(*p >= 0x80 || (*p >= '0' && *p <= '9') || ((*p | 32) >= 'a' && (*p | 32) <= 'z') ||
              strchr("_-./ :", *p)))
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                             "Invalid %s name: '%.60s'. Names may only contain alphanumerics, "
                             "underscores (_), dashes (-), periods (.), spaces ( ), colons (:) "
                             "and slashes (/).",
                             what, k);
    /* MLflow's: the name is its own normal path (posixpath.normpath) */
    if (strstr(k, "..") == k || k[0] == '/' || strstr(k, "//") || strstr(k, "/./") ||
        strstr(k, "/../") || k[n - 1] == '/' || strcmp(k, ".") == 0 || strncmp(k, "./", 2) == 0 ||
        (n >= 3 && strcmp(k + n - 3, "/..") == 0) || (n >= 2 && strcmp(k + n - 2, "/.") == 0))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid %s name: '%.60s' (a normal relative path: no empty, . or .. "
                         "parts)",
                         what, k);
    return 0;
}

/* MLflow has no UNKNOWN: a run of no status it reads as running */
static const char *status_name(int s)
{
    const char *n = http_status_name(s);
    return strcmp(n, "UNKNOWN") == 0 ? "RUNNING" : n;
}

static json_t *kv_json(const char *k, const char *v)
{
    return json_pack("{s:o, s:o}", "key", http_json_str(k), "value", http_json_str(v));
}

/* run.info of a Run header; exp_id its MLflow experiment id. */
static json_t *info_json(const Track__V1__Run *run, const char *exp_id)
{
    char hex[33], uri[128];
    if (run->run_id.len == 16)
        wire_hex(run->run_id.data, hex);
    else
        hex[0] = '\0';
    snprintf(uri, sizeof(uri), "mlflow-artifacts:/%s/%s/artifacts", exp_id, hex);
    json_t *i = json_pack(
        "{s:s, s:s, s:o, s:s, s:o, s:s, s:I, s:s, s:s}", "run_id", hex, "run_uuid", hex, "run_name",
        http_json_str(run->name), "experiment_id", exp_id, "user_id", http_json_str(run->user),
        "status", status_name(run->status), "start_time", (json_int_t)run->start_ms, "artifact_uri",
        uri, "lifecycle_stage", run->deleted ? "deleted" : "active");
    if (i && run->end_ms > 0)
        json_object_set_new(i, "end_time", json_integer(run->end_ms));
    return i;
}

/* Adds one page of a run's details to the data arrays. */
static void data_add(json_t *data, const Track__V1__Run *run)
{
    json_t *m = json_object_get(data, "metrics"), *p = json_object_get(data, "params"),
           *t = json_object_get(data, "tags");
    for (size_t i = 0; i < run->n_metrics; i++) {
        const Track__V1__MetricSummary *s = run->metrics[i];
        json_array_append_new(m,
                              json_pack("{s:o, s:o, s:I, s:I}", "key", http_json_str(s->key),
                                        "value", http_json_double(s->last), "timestamp",
                                        (json_int_t)s->last_ms, "step", (json_int_t)s->last_step));
    }
    for (size_t i = 0; i < run->n_params; i++)
        json_array_append_new(p, kv_json(run->params[i]->key, run->params[i]->value));
    for (size_t i = 0; i < run->n_tags; i++)
        json_array_append_new(t, kv_json(run->tags[i]->key, run->tags[i]->value));
}

static int has_tag(const json_t *tags, const char *key)
{
    size_t i;
    json_t *v;
    json_array_foreach(tags, i, v) if (strcmp(json_string_value(json_object_get(v, "key")), key) ==
                                       0) return 1;
    return 0;
}

static const struct {
    const char *mlflow, *sys;
} sys_tags[] = {
    {"mlflow.source.name", "sys.command"},
    {"mlflow.source.git.commit", "sys.git.commit"},
    {"mlflow.source.git.branch", "sys.git.branch"},
};
#define N_SYS (sizeof(sys_tags) / sizeof(sys_tags[0]))

/* Appends to kv[given..] the sys.* copy of each of kv[0..given) that is one
 * of MLflow's own (room for N_SYS more is the caller's); the new count. */
static size_t add_sys_tags(Track__V1__KeyValue *kv, Track__V1__KeyValue **kp, size_t given)
{
    size_t n = given;
    for (size_t i = 0; i < given; i++)
        for (size_t j = 0; j < N_SYS; j++)
            if (strcmp(kv[i].key, sys_tags[j].mlflow) == 0) {
                track__v1__key_value__init(&kv[n]);
                kv[n].key = (char *)sys_tags[j].sys;
                kv[n].value = kv[i].value;
                kp[n] = &kv[n];
                n++;
            }
    return n;
}

/* The tags MLflow reads back that track keeps as fields; the sys.* copies
 * of MLflow's own tags are track's, not shown to MLflow. */
static void data_finish(json_t *data, const Track__V1__Run *run)
{
    json_t *t = json_object_get(data, "tags");
    for (size_t j = 0; j < N_SYS; j++) {
        if (!has_tag(t, sys_tags[j].mlflow))
            continue;
        size_t i;
        json_t *v;
        json_array_foreach(
            t, i, v) if (strcmp(json_string_value(json_object_get(v, "key")), sys_tags[j].sys) == 0)
        {
            json_array_remove(t, i);
            break;
        }
    }
    if (!has_tag(t, "mlflow.runName"))
        json_array_append_new(t, kv_json("mlflow.runName", run->name));
    if (run->parent_id.len == 16 && !has_tag(t, "mlflow.parentRunId")) {
        char hex[33];
        wire_hex(run->parent_id.data, hex);
        json_array_append_new(t, kv_json("mlflow.parentRunId", hex));
    }
}

static json_t *data_new(void)
{
    return json_pack("{s:[], s:[], s:[]}", "metrics", "params", "tags");
}

/* A whole run as MLflow's Run (every page of RunGet); NULL with r failed. */
static json_t *run_fetch(struct http_req *r, const char *run, int info_only)
{
    ProtobufCBinaryData token = {0};
    uint8_t tok[LIMIT_KEY_BYTES + 64];
    json_t *data = data_new(), *info = NULL;
    Track__V1__Run head = TRACK__V1__RUN__INIT;
    char exp_id[24], name[LIMIT_NAME_BYTES + 1] = "", user[LIMIT_NAME_BYTES + 1] = "";
    uint8_t rid[16], pid[16];

    if (!data) {
        http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
        return NULL;
    }
    do {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__RunGet q = TRACK__V1__RUN_GET__INIT;
        Track__V1__Response *rs;
        q.run = (char *)run;
        q.page_token = token;
        rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
        rq.run_get = &q;
        if (http_call(r, &rq, &rs))
            goto fail;
        const Track__V1__Run *x = rs->run_get->run;
        if (!info) {
            if (ml_experiment_id(r, x->experiment, exp_id)) {
                http_response_free(rs);
                goto fail;
            }
            info = info_json(x, exp_id);
            head = *x; /* scalars only past this response: copy what data_finish reads */
            snprintf(name, sizeof(name), "%s", x->name);
            snprintf(user, sizeof(user), "%s", x->user);
            head.name = name;
            head.user = user;
            if (x->run_id.len == 16)
                memcpy(rid, x->run_id.data, 16), head.run_id.data = rid;
            if (x->parent_id.len == 16)
                memcpy(pid, x->parent_id.data, 16), head.parent_id.data = pid;
        }
        if (!info_only)
            data_add(data, x);
        token.len = 0;
        if (!info_only && rs->run_get->next_page_token.len &&
            rs->run_get->next_page_token.len <= sizeof(tok)) {
            memcpy(tok, rs->run_get->next_page_token.data, rs->run_get->next_page_token.len);
            token.data = tok;
            token.len = rs->run_get->next_page_token.len;
        }
        http_response_free(rs);
    } while (token.len);
    if (info_only) {
        json_decref(data);
        return info;
    }
    data_finish(data, &head);
    json_t *o = json_pack("{s:o, s:o, s:{}}", "info", info, "data", data, "inputs");
    if (!o)
        http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    return o;
fail:
    json_decref(info);
    json_decref(data);
    return NULL;
}

static int runs_get(struct http_req *r)
{
    const char *run;
    json_t *o;
    if (ml_arg_run(r, &run) || !(o = run_fetch(r, run, 0)))
        return -1;
    return http_ok(r, json_pack("{s:o}", "run", o));
}

/* A list of {key, value} objects (tags, params) checked and copied into
 * kv[] (strings point into the JSON); *n their count. */
static int kv_list(struct http_req *r, const char *field, const char *what, const json_t *list,
                   Track__V1__KeyValue *kv, Track__V1__KeyValue **ptr, size_t max, size_t *n)
{
    size_t i;
    json_t *v;

    *n = 0;
    if (!list)
        return 0;
    if (!json_is_array(list))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "'%s' must be a list", field);
    if (json_array_size(list) > max)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "A batch logging request can contain at most %zu %s. Got %zu %s.", max,
                         field, json_array_size(list), field);
    json_array_foreach(list, i, v)
    {
        const char *k = json_string_value(json_object_get(v, "key"));
        json_t *jv = json_object_get(v, "value");
        char num[40];
        if (!k)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "%s[%zu]: missing 'key'", field, i);
        if (ml_check_key(r, what, k))
            return -1;
        const char *val = json_string_value(jv);
        if (!val && json_is_number(jv)) /* a client that did not stringify */
            snprintf(num, sizeof(num), "%.17g", json_number_value(jv)), val = num;
        if (!val)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                             "%s[%zu] (%s): 'value' must be a string", field, i, k);
        track__v1__key_value__init(&kv[*n]);
        kv[*n].key = (char *)k;
        kv[*n].value = val == num ? NULL : (char *)val;
        if (val == num) {
            json_object_set_new(v, "value", json_string(num)); /* owned by the JSON */
            kv[*n].value = (char *)json_string_value(json_object_get(v, "value"));
        }
        ptr[*n] = &kv[*n];
        (*n)++;
    }
    return 0;
}

static int runs_create(struct http_req *r)
{
    const char *exp_id, *user, *name;
    json_t *tags;
    int64_t start;
    struct ml_experiment x;
    Track__V1__KeyValue kv[ML_BATCH_TAGS + N_SYS], *kp[ML_BATCH_TAGS + N_SYS];
    size_t n = 0;
    uint8_t id[16];
    char parent[40] = "";

    if (http_arg_str(r, "experiment_id", 0, &exp_id) || http_arg_str(r, "user_id", 0, &user) ||
        http_arg_str(r, "run_name", 0, &name) || http_arg_i64(r, "start_time", 0, 0, &start) ||
        http_arg_array(r, "tags", &tags))
        return -1;
    if (ml_experiment_by_id(r, exp_id && exp_id[0] ? exp_id : "0", &x))
        return -1;
    if (kv_list(r, "tags", "tag", tags, kv, kp, ML_BATCH_TAGS, &n))
        return -1;
    size_t given = n;
    for (size_t i = 0; i < given; i++) {
        if (strcmp(kv[i].key, "mlflow.user") == 0 && (!user || !user[0]))
            user = kv[i].value;
        else if (strcmp(kv[i].key, "mlflow.runName") == 0 && (!name || !name[0]))
            name = kv[i].value;
        else if (strcmp(kv[i].key, "mlflow.parentRunId") == 0)
            snprintf(parent, sizeof(parent), "%s", kv[i].value);
    }
    n = add_sys_tags(kv, kp, given);
    if (start < 0)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "start_time must not be negative");
    randombytes_buf(id, sizeof(id));
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunStart q = TRACK__V1__RUN_START__INIT;
    Track__V1__Response *rs;
    q.run_id.data = id;
    q.run_id.len = sizeof(id);
    q.experiment = strcmp(x.name, "Default") == 0 ? wire_str("") : x.name;
    q.name = (char *)(name ? name : "");
    q.start_ms = start;
    q.user = (char *)(user ? user : "");
    q.parent = parent;
    q.tags = kp;
    q.n_tags = n;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_START;
    rq.run_start = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    char eid[24];
    ml_experiment_mlflow_id(&x, eid);
    json_t *data = data_new();
    if (data) {
        for (size_t i = 0; i < given; i++)
            json_array_append_new(json_object_get(data, "tags"), kv_json(kv[i].key, kv[i].value));
        data_finish(data, rs->run);
    }
    json_t *o = json_pack("{s:{s:o, s:o, s:{}}}", "run", "info", info_json(rs->run, eid), "data",
                          data, "inputs");
    http_response_free(rs);
    return http_ok(r, o);
}

/* One LogBatch for the run from MLflow's lists (any may be NULL) and the
 * tag deletions and rename; -1 with r failed. */
static int log_batch(struct http_req *r, const char *run, json_t *metrics, json_t *params,
                     json_t *tags, const char *delete_tag)
{
    Track__V1__KeyValue pkv[ML_BATCH_PARAMS], *pp[ML_BATCH_PARAMS];
    Track__V1__KeyValue tkv[ML_BATCH_TAGS + N_SYS], *tp[ML_BATCH_TAGS + N_SYS];
    size_t np = 0, nt = 0, nm = metrics ? json_array_size(metrics) : 0;
    const char *rename = "";
    int ret = -1;

    if (metrics && !json_is_array(metrics))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "'metrics' must be a list");
    if (nm > ML_BATCH_METRICS)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "A batch logging request can contain at most %d metrics. Got %zu "
                         "metrics.",
                         ML_BATCH_METRICS, nm);
    if (kv_list(r, "params", "param", params, pkv, pp, ML_BATCH_PARAMS, &np) ||
        kv_list(r, "tags", "tag", tags, tkv, tp, ML_BATCH_TAGS, &nt))
        return -1;
    if (nm + np + nt > ML_BATCH_TOTAL)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "A batch logging request can contain at most %d metrics, params and "
                         "tags in total. Got %zu.",
                         ML_BATCH_TOTAL, nm + np + nt);
    for (size_t i = 0; i < nt; i++)
        if (strcmp(tkv[i].key, "mlflow.runName") == 0 && tkv[i].value[0])
            rename = tkv[i].value;
    nt = add_sys_tags(tkv, tp, nt);
    struct ml_point *pts = calloc(nm ? nm : 1, sizeof(*pts));
    if (!pts)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    for (size_t i = 0; i < nm; i++) {
        json_t *m = json_array_get(metrics, i);
        const char *k = json_string_value(json_object_get(m, "key"));
        json_t *v = json_object_get(m, "value");
        if (!k) {
            http_fail(r, 400, "INVALID_PARAMETER_VALUE", "metrics[%zu]: missing 'key'", i);
            goto out;
        }
        if (ml_check_key(r, "metric", k))
            goto out;
        struct http_req sub = {.args = m};
        if (!v || http_arg_double(&sub, "value", 1, &pts[i].value) ||
            http_arg_i64(&sub, "timestamp", 0, 0, &pts[i].ts) ||
            http_arg_i64(&sub, "step", 0, 0, &pts[i].step)) {
            http_fail(r, 400, "INVALID_PARAMETER_VALUE", "metrics[%zu] (%s): %s", i, k,
                      v ? sub.message : "missing 'value'");
            goto out;
        }
        pts[i].key = k;
    }
    ret = ml_send_batch(r, run, pts, nm, pp, np, tp, nt, delete_tag, rename);
out:
    free(pts);
    return ret;
}

static int runs_log_batch(struct http_req *r)
{
    const char *run;
    /* the raw body: the common shape read in place, any other as JSON */
    if (!r->args && ml_log_batch_fast(r))
        return r->error_code ? -1 : 0;
    if (!r->args && http_parse_args(r))
        return -1;
    json_t *m, *p, *t;
    if (ml_arg_run(r, &run) || http_arg_array(r, "metrics", &m) ||
        http_arg_array(r, "params", &p) || http_arg_array(r, "tags", &t) ||
        log_batch(r, run, m, p, t, NULL))
        return -1;
    return http_ok(r, json_object());
}

/* log-parameter and set-tag: one {key, value} as a list of one */
static int log_kv(struct http_req *r, int param)
{
    const char *run, *key;
    json_t *v = json_object_get(r->args, "value");
    if (ml_arg_run(r, &run) || http_arg_str(r, "key", 1, &key))
        return -1;
    if (!v)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Missing value for required parameter 'value'");
    json_t *list = json_pack("[{s:s, s:O}]", "key", key, "value", v);
    if (!list)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "'value' must be a string");
    int rc = log_batch(r, run, NULL, param ? list : NULL, param ? NULL : list, NULL);
    json_decref(list);
    return rc ? -1 : http_ok(r, json_object());
}

static int runs_log_parameter(struct http_req *r)
{
    return log_kv(r, 1);
}

static int runs_set_tag(struct http_req *r)
{
    return log_kv(r, 0);
}

static int runs_log_metric(struct http_req *r)
{
    const char *run, *key;
    if (ml_arg_run(r, &run) || http_arg_str(r, "key", 1, &key))
        return -1;
    json_t *one = json_object();
    const char *fields[] = {"key", "value", "timestamp", "step"};
    for (size_t i = 0; one && i < 4; i++) {
        json_t *v = json_object_get(r->args, fields[i]);
        if (v && json_is_array(v) && json_array_size(v) == 1)
            v = json_array_get(v, 0);
        if (v)
            json_object_set(one, fields[i], v);
    }
    json_t *list = json_array();
    if (!one || !list || json_array_append_new(list, one)) {
        json_decref(list);
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    }
    int rc = log_batch(r, run, list, NULL, NULL, NULL);
    json_decref(list);
    return rc ? -1 : http_ok(r, json_object());
}

static int runs_delete_tag(struct http_req *r)
{
    const char *run, *key;
    if (ml_arg_run(r, &run) || http_arg_str(r, "key", 1, &key) || ml_check_key(r, "tag", key) ||
        log_batch(r, run, NULL, NULL, NULL, key))
        return -1;
    return http_ok(r, json_object());
}

static int runs_update(struct http_req *r)
{
    const char *run, *status, *name;
    int64_t end;
    json_t *info;

    if (ml_arg_run(r, &run) || http_arg_str(r, "status", 0, &status) ||
        http_arg_str(r, "run_name", 0, &name) || http_arg_i64(r, "end_time", 0, 0, &end))
        return -1;
    if (name && name[0]) {
        json_t *t = json_pack("[{s:s, s:s}]", "key", "mlflow.runName", "value", name);
        int rc = log_batch(r, run, NULL, NULL, t, NULL);
        json_decref(t);
        if (rc)
            return -1;
    }
    int st = 0;
    if (status && strcmp(status, "FINISHED") == 0)
        st = TRACK__V1__RUN_STATUS__FINISHED;
    else if (status && strcmp(status, "FAILED") == 0)
        st = TRACK__V1__RUN_STATUS__FAILED;
    else if (status && strcmp(status, "KILLED") == 0)
        st = TRACK__V1__RUN_STATUS__KILLED;
    else if (status && status[0] && strcmp(status, "RUNNING") != 0 &&
             strcmp(status, "SCHEDULED") != 0)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter 'status': '%.40s'", status);
    if (st) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__RunEnd q = TRACK__V1__RUN_END__INIT;
        Track__V1__Response *rs;
        q.run = (char *)run;
        q.status = st;
        q.end_ms = end > 0 ? end : wire_now_ms();
        rq.op_case = TRACK__V1__REQUEST__OP_RUN_END;
        rq.run_end = &q;
        if (http_call(r, &rq, &rs))
            return -1;
        http_response_free(rs);
    }
    if (!(info = run_fetch(r, run, 1)))
        return -1;
    return http_ok(r, json_pack("{s:o}", "run_info", info));
}

static int lifecycle(struct http_req *r, int deleted)
{
    const char *run;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LifecycleSet q = TRACK__V1__LIFECYCLE_SET__INIT;
    Track__V1__Response *rs;

    if (ml_arg_run(r, &run))
        return -1;
    q.run = (char *)run;
    q.deleted = deleted;
    rq.op_case = TRACK__V1__REQUEST__OP_LIFECYCLE_SET;
    rq.lifecycle_set = &q;
    if (http_call(r, &rq, &rs))
        return -1;
    http_response_free(rs);
    return http_ok(r, json_object());
}

static int runs_delete(struct http_req *r)
{
    return lifecycle(r, 1);
}

static int runs_restore(struct http_req *r)
{
    return lifecycle(r, 0);
}

/* runs/log-model: appended to the tag mlflow.log-model.history, as MLflow does */
static int runs_log_model(struct http_req *r)
{
    const char *run, *model;
    json_t *o, *hist = NULL;
    json_error_t je;

    if (ml_arg_run(r, &run) || http_arg_str(r, "model_json", 1, &model))
        return -1;
    json_t *m = json_loads(model, 0, &je);
    if (!m)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "model_json is not JSON: %s", je.text);
    if (!(o = run_fetch(r, run, 0))) {
        json_decref(m);
        return -1;
    }
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(json_object_get(o, "data"), "tags"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "key")), "mlflow.log-model.history"))
            continue;
        hist = json_loads(json_string_value(json_object_get(t, "value")), 0, &je);
        if (hist && !json_is_array(hist))
            json_decref(hist), hist = NULL;
    }
    json_decref(o);
    if (!hist)
        hist = json_array();
    json_array_append_new(hist, m);
    char *text = json_dumps(hist, JSON_COMPACT);
    json_decref(hist);
    if (!text)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    if (strlen(text) > LIMIT_VALUE_BYTES) {
        free(text);
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "mlflow.log-model.history would pass %d bytes", LIMIT_VALUE_BYTES);
    }
    json_t *tags = json_pack("[{s:s, s:s}]", "key", "mlflow.log-model.history", "value", text);
    free(text);
    int rc = log_batch(r, run, NULL, NULL, tags, NULL);
    json_decref(tags);
    return rc ? -1 : http_ok(r, json_object());
}

/* runs/search: RunList over the named experiments, filter and order_by as
 * MLflow writes them (track's filter language takes MLflow's) */
static int runs_search(struct http_req *r)
{
    json_t *ids, *order, *list = NULL;
    const char *filter, *view, *token;
    int64_t max;
    char names[64][LIMIT_NAME_BYTES + 1], *np[64], ord[4096] = "", *where = NULL;
    uint8_t tok[512];
    size_t n = 0, i;
    json_t *v;
    int ret = -1;

    if (http_arg_array(r, "experiment_ids", &ids) || http_arg_str(r, "filter", 0, &filter) ||
        http_arg_str(r, "run_view_type", 0, &view) || http_arg_array(r, "order_by", &order) ||
        http_arg_i64(r, "max_results", 0, 1000, &max) || http_arg_str(r, "page_token", 0, &token))
        return -1;
    if (max < 1 || max > ML_SEARCH_MAX)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid value for parameter 'max_results': %lld (1 to %d)",
                         (long long)max, ML_SEARCH_MAX);
    if (ids && json_array_size(ids) > 64)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "experiment_ids: at most 64 experiments in one search");
    json_array_foreach(ids, i, v)
    {
        const char *id = json_string_value(v);
        char num[24];
        if (!id && json_is_integer(v))
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v)), id = num;
        if (!id)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                             "experiment_ids[%zu]: expected a string", i);
        if (ml_experiment_name(r, id, names[n], sizeof(names[n])))
            return -1;
        np[n] = names[n];
        n++;
    }
    json_array_foreach(order, i, v)
    {
        const char *o = json_string_value(v);
        if (!o)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "order_by[%zu]: expected a string",
                             i);
        size_t len = strlen(ord);
        if (len + strlen(o) + 3 >= sizeof(ord))
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "order_by: too long");
        snprintf(ord + len, sizeof(ord) - len, "%s%s", len ? ", " : "", o);
    }
    const char *life = NULL;
    if (view && strcmp(view, "DELETED_ONLY") == 0)
        life = "lifecycle = 'deleted'";
    else if (view && strcmp(view, "ALL") == 0)
        life = "(lifecycle = 'deleted' or lifecycle = 'active')";
    else if (view && view[0] && strcmp(view, "ACTIVE_ONLY") != 0)
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "run_view_type: unknown value '%s'",
                         view);
    if (life) {
        size_t fl = filter ? strlen(filter) : 0, wl = fl + strlen(life) + 16;
        if (!(where = malloc(wl)))
            return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
        if (fl)
            snprintf(where, wl, "(%s) and %s", filter, life);
        else
            snprintf(where, wl, "%s", life);
    }
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunList q = TRACK__V1__RUN_LIST__INIT;
    Track__V1__Response *rs = NULL;
    q.experiments = np;
    q.n_experiments = n;
    q.filter = where ? where : (char *)(filter ? filter : "");
    q.order_by = ord;
    q.limit = (int32_t)max;
    q.with_details = 1;
    if (token && token[0]) {
        size_t tl = strlen(token);
        if (tl % 2 || tl / 2 > sizeof(tok) ||
            sodium_hex2bin(tok, sizeof(tok), token, tl, NULL, &q.page_token.len, NULL)) {
            http_fail(r, 400, "INVALID_PARAMETER_VALUE", "page_token: not one of ours");
            goto out;
        }
        q.page_token.data = tok;
    }
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_LIST;
    rq.run_list = &q;
    if (http_call(r, &rq, &rs))
        goto out;
    if (!(list = json_array()))
        goto oom;
    for (i = 0; i < rs->run_list->n_runs; i++) {
        const Track__V1__Run *x = rs->run_list->runs[i];
        char eid[24];
        json_t *data = data_new();
        if (!data || ml_experiment_id(r, x->experiment, eid)) {
            json_decref(data);
            goto out;
        }
        data_add(data, x);
        data_finish(data, x);
        json_array_append_new(
            list, json_pack("{s:o, s:o, s:{}}", "info", info_json(x, eid), "data", data, "inputs"));
    }
    json_t *o = json_object();
    if (!o)
        goto oom;
    if (json_array_size(list))
        json_object_set(o, "runs", list);
    if (rs->run_list->next_page_token.len) {
        size_t hl = rs->run_list->next_page_token.len * 2 + 1;
        char *hex = malloc(hl);
        if (hex) {
            sodium_bin2hex(hex, hl, rs->run_list->next_page_token.data,
                           rs->run_list->next_page_token.len);
            json_object_set_new(o, "next_page_token", json_string(hex));
            free(hex);
        }
    }
    ret = http_ok(r, o);
    goto out;
oom:
    http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
out:
    json_decref(list);
    http_response_free(rs);
    free(where);
    return ret;
}

/* ---- metrics/get-history ---------------------------------------------------------------- */
static int metrics_history(struct http_req *r)
{
    const char *run, *key, *token;
    int64_t max, after = 0;
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricHistory q = TRACK__V1__METRIC_HISTORY__INIT;
    Track__V1__Response *rs;

    if (ml_arg_run(r, &run) || http_arg_str(r, "metric_key", 1, &key) ||
        http_arg_i64(r, "max_results", 0, ML_HISTORY_MAX, &max) ||
        http_arg_str(r, "page_token", 0, &token))
        return -1;
    if (max < 1 || max > ML_HISTORY_MAX)
        max = ML_HISTORY_MAX;
    if (token && token[0]) {
        char *end;
        after = strtoll(token, &end, 10);
        if (*end || after < 0)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE", "page_token: not one of ours");
    }
    q.run = (char *)run;
    q.key = (char *)key;
    q.after_seq = after;
    q.max_points = max;
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_HISTORY;
    rq.metric_history = &q;
    if (http_call(r, &rq, &rs)) {
        /* a key the run never logged is an empty history, an unknown run a 404 */
        if (r->status == 404) {
            json_t *info = run_fetch(r, run, 1);
            if (!info)
                return -1;
            json_decref(info);
            r->error_code = NULL;
            return http_ok(r, json_pack("{s:[]}", "metrics"));
        }
        return -1;
    }
    const Track__V1__MetricSeries *s = rs->metric_history->series;
    json_t *list = json_array();
    for (size_t i = 0; list && s && i < s->n_values; i++)
        json_array_append_new(list, json_pack("{s:s, s:o, s:I, s:I}", "key", key, "value",
                                              http_json_double(s->values[i]), "timestamp",
                                              (json_int_t)s->times_ms[i], "step",
                                              (json_int_t)s->steps[i]));
    json_t *o = json_pack("{s:o}", "metrics", list);
    if (o && rs->metric_history->more) {
        char next[24];
        snprintf(next, sizeof(next), "%lld", (long long)rs->metric_history->next_seq);
        json_object_set_new(o, "next_page_token", json_string(next));
    }
    http_response_free(rs);
    return http_ok(r, o);
}

const struct http_route ml_run_routes[] = {
    {"POST", "runs/create", runs_create, NULL, 1, 0, 0},
    {"GET", "runs/get", runs_get, NULL, 0, 0, 0},
    {"POST", "runs/update", runs_update, NULL, 1, 0, 0},
    {"POST", "runs/delete", runs_delete, NULL, 1, 0, 0},
    {"POST", "runs/restore", runs_restore, NULL, 1, 0, 0},
    {"POST", "runs/log-parameter", runs_log_parameter, NULL, 1, 0, 0},
    {"POST", "runs/log-metric", runs_log_metric, NULL, 1, 0, 0},
    {"POST", "runs/set-tag", runs_set_tag, NULL, 1, 0, 0},
    {"POST", "runs/delete-tag", runs_delete_tag, NULL, 1, 0, 0},
    {"POST", "runs/log-batch", runs_log_batch, NULL, 1, 0, 1},
    {"POST", "runs/search", runs_search, NULL, 0, 0, 0},
    {"POST", "runs/log-model", runs_log_model, NULL, 1, 0, 0},
    {"GET", "metrics/get-history", metrics_history, NULL, 0, 0, 0},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
