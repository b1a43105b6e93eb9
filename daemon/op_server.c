/*
 * op_server.c: the handlers about the server itself: Hello (version,
 * protocol and limits, before any other request) and Status (counts,
 * uptime, listeners, requests served). The table is dispatch.c's.
 */
#include "op.h"

#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "track_limits.h"

int srv_op_hello(struct srv_call *call)
{
    Track__V1__HelloResult *h = srv_alloc(&call->arena, sizeof(*h));
    if (!h)
        return srv_op_oom(call);
    track__v1__hello_result__init(h);
    h->server_version = wire_str(TRACKD_VERSION);
    h->protocol = WIRE_PROTOCOL;
    h->max_frame_bytes = call->frame_limit ? call->frame_limit : LIMIT_FRAME_BYTES;
    h->max_batch_points = LIMIT_BATCH_POINTS;
    h->max_key_bytes = LIMIT_KEY_BYTES;
    h->max_value_bytes = LIMIT_VALUE_BYTES;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_HELLO;
    call->rs->hello = h;
    return 0;
}

int srv_op_status(struct srv_call *call)
{
    struct store_counts c = {0};
    struct store_err err = {0};
    struct srv *srv = call->srv;
    Track__V1__StatusResult *s;
    int rc = store_counts(call->st, &c, &err);

    int64_t artifacts = 0, artifact_bytes = 0;
    if (rc == 0)
        rc = store_artifact_count(call->st, NULL, &artifacts, &artifact_bytes, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    s = srv_alloc(&call->arena, sizeof(*s));
    if (!s)
        return srv_op_oom(call);
    track__v1__status_result__init(s);
    s->server_version = wire_str(TRACKD_VERSION);
    s->uptime_ms = wire_now_ms() - srv->started_ms;
    s->data_dir = srv->cfg.data_dir;
    s->experiments = c.experiments;
    s->runs = c.runs;
    s->metric_points = c.metric_points;
    s->db_bytes = c.db_bytes;
    s->listen = (char **)(uintptr_t)srv->cfg.listen;
    s->n_listen = (size_t)srv->cfg.n_listen;
    pthread_mutex_lock(&srv->stats_lock);
    s->requests = srv->requests;
    pthread_mutex_unlock(&srv->stats_lock);
    s->pid = (int64_t)getpid();
    s->artifacts = artifacts;
    s->artifact_bytes = artifact_bytes;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_STATUS;
    call->rs->status = s;
    return 0;
}
