/*
 * client.c: libtrack's write API. Requests are built on the stack with
 * protobuf-c's generated structs pointing at the caller's data, packed into
 * one reusable buffer, and sent by cl_write, which spools them when the
 * daemon is away. Metric points are buffered per key in column arrays that
 * grow geometrically (no allocation per point) and go out as one LogBatch
 * when the buffer is due, exactly as the daemon stores them.
 *
 * Ordering: while the spool holds anything, new writes are appended behind
 * it rather than sent ahead of it, so a run's points keep their order.
 */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "track_limits.h"
#include "paths.h"
#include "seal.h"

#define DOWN_BACKOFF_MIN 500
#define DOWN_BACKOFF_MAX 30000

static const char *const code_names[] = {
    "OK",          "INVALID_ARGUMENT", "NOT_FOUND",         "ALREADY_EXISTS",
    "CONFLICT",    "UNAUTHENTICATED",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
    "UNAVAILABLE", "INTERNAL",         "SPOOLED",
};

const char *track_code_name(int code)
{
    if (code > 0 || code < -10)
        return "UNKNOWN";
    return code_names[-code];
}

void track_run_id_hex(const track_run_id *id, char out[33])
{
    wire_hex(id->b, out);
}

int track_run_id_parse(const char *hex, track_run_id *id)
{
    return wire_unhex(hex, id->b) == 0 ? 0 : TRACK_E_INVALID_ARGUMENT;
}

int track_default_server(char *buf, size_t len)
{
    return paths_default_server(buf, len) ? TRACK_E_INVALID_ARGUMENT : 0;
}

int track_default_data_dir(char *buf, size_t len)
{
    return paths_default_data_dir(buf, len) ? TRACK_E_INVALID_ARGUMENT : 0;
}

int track_client_open(const struct track_opts *opts, struct track_client **out,
                      struct track_err *err)
{
    struct track_opts o = {0};
    struct track_config cfg;
    struct track_client *c;
    const char *env;
    int rc;

    if (opts)
        o = *opts;
    if (sodium_init() < 0)
        return cl_fail(err, TRACK_E_INTERNAL, "libsodium failed to initialise");
    c = calloc(1, sizeof(*c));
    if (!c)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    c->sock = -1;
    env = getenv("TRACK_SERVER");
    if (o.server && *o.server) {
        snprintf(c->server, sizeof(c->server), "%s", o.server);
        c->server_explicit = 1;
    } else if (env && *env) {
        snprintf(c->server, sizeof(c->server), "%s", env);
        c->server_explicit = 1;
    } else if ((rc = track_config_read(&cfg, err)) != 0) {
        /* a config naming a server that cannot be read must not send the
         * writes meant for it to the local default instead */
        free(c);
        return rc;
    } else if (cfg.server[0]) {
        snprintf(c->server, sizeof(c->server), "%s", cfg.server);
        c->server_explicit = 1;
    } else if (paths_default_server(c->server, sizeof(c->server))) {
        free(c);
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot work out the default server");
    }
    if (strncmp(c->server, "ipc://", 6) != 0 && strncmp(c->server, "tcp://", 6) != 0) {
        rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                     "server: \"%s\" is not ipc://PATH or tcp://HOST:PORT", c->server);
        free(c);
        return rc;
    }
    if ((o.key_path && strlen(o.key_path) >= sizeof(c->opt_key_path)) ||
        (o.server_key && strlen(o.server_key) >= sizeof(c->opt_server_key))) {
        free(c);
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "key_path or server_key: too long");
    }
    snprintf(c->opt_key_path, sizeof(c->opt_key_path), "%s", o.key_path ? o.key_path : "");
    snprintf(c->opt_server_key, sizeof(c->opt_server_key), "%s", o.server_key ? o.server_key : "");
    env = getenv("TRACK_TEST_PLAIN_TCP");
    c->plain_tcp = env && strcmp(env, "1") == 0;
    c->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 2000;
    c->flush_points = o.flush_points > 0 ? o.flush_points : 8192;
    if (c->flush_points > LIMIT_BATCH_POINTS)
        c->flush_points = LIMIT_BATCH_POINTS;
    c->flush_interval_ms = o.flush_interval_ms > 0 ? o.flush_interval_ms : 1000;
    c->no_spool = o.no_spool;
    c->autostart = o.autostart;
    c->spool_max = o.spool_max_bytes > 0 ? o.spool_max_bytes : (256LL << 20);
    c->down_backoff_ms = DOWN_BACKOFF_MIN;
    if (o.spool_path && *o.spool_path) {
        snprintf(c->spool_path, sizeof(c->spool_path), "%s", o.spool_path);
    } else {
        char dir[1024];
        if (paths_state_dir(dir, sizeof(dir))) {
            free(c);
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot work out the spool path");
        }
        snprintf(c->spool_path, sizeof(c->spool_path), "%s/spool-%u.bin", dir, (unsigned)getuid());
    }
    *out = c;
    return 0;
}

const char *track_client_server(const struct track_client *c)
{
    return c->server;
}

int cl_client_clone(const struct track_client *c, struct track_client **out, struct track_err *err)
{
    struct track_client *n = calloc(1, sizeof(*n));
    if (!n)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    n->sock = -1;
    memcpy(n->server, c->server, sizeof(n->server));
    n->server_explicit = c->server_explicit;
    n->timeout_ms = c->timeout_ms;
    n->flush_points = c->flush_points;
    n->flush_interval_ms = c->flush_interval_ms;
    n->no_spool = c->no_spool;
    n->autostart = 0; /* the clone's owner has reached (or started) the server already */
    n->down_backoff_ms = DOWN_BACKOFF_MIN;
    memcpy(n->spool_path, c->spool_path, sizeof(n->spool_path));
    n->spool_max = c->spool_max;
    n->has_run = c->has_run;
    memcpy(n->run, c->run, sizeof(n->run));
    memcpy(n->run_hex, c->run_hex, sizeof(n->run_hex));
    memcpy(n->opt_key_path, c->opt_key_path, sizeof(n->opt_key_path));
    memcpy(n->opt_server_key, c->opt_server_key, sizeof(n->opt_server_key));
    n->plain_tcp = c->plain_tcp;
    n->artifact_fsync = c->artifact_fsync;
    *out = n;
    return 0;
}

void track_client_close(struct track_client *c)
{
    if (!c)
        return;
    cl_sysmet_stop(c);
    track_flush(c, NULL);
    cl_disconnect(c);
    for (size_t i = 0; i < c->n_series; i++) {
        free(c->series[i].steps);
        free(c->series[i].times);
        free(c->series[i].values);
    }
    free(c->series);
    cl_feedback_free(c);
    free(c->pack);
    seal_client_free(c->seal);
    free(c);
}

int cl_pack(struct track_client *c, Track__V1__Request *rq, size_t *len, struct track_err *err)
{
    size_t n;

    randombytes_buf(c->rid, sizeof(c->rid));
    rq->request_id.data = c->rid;
    rq->request_id.len = sizeof(c->rid);
    n = track__v1__request__get_packed_size(rq);
    if (n > LIMIT_FRAME_BYTES)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "request of %zu bytes exceeds the frame limit of %u", n, LIMIT_FRAME_BYTES);
    if (n > c->pack_cap) {
        size_t cap = c->pack_cap ? c->pack_cap : 4096;
        while (cap < n)
            cap *= 2;
        uint8_t *p = realloc(c->pack, cap);
        if (!p)
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        c->pack = p;
        c->pack_cap = cap;
    }
    *len = track__v1__request__pack(rq, c->pack);
    return 0;
}

static int spool_it(struct track_client *c, const uint8_t *req, size_t len, const char *why,
                    struct track_err *err)
{
    struct track_err e2 = {0};
    struct cl_spool_note n;
    char extra[1400] = "";
    size_t used = 0;

    if (c->no_spool)
        return cl_fail(err, TRACK_E_UNAVAILABLE, "%s", why);
    int rc = cl_spool_append(c, req, len, &n, &e2);
    if (rc) {
        if (err)
            *err = e2;
        return rc;
    }
    /* say exactly what the append cost: nothing is lost without a word */
    if (n.moved[0])
        used += (size_t)snprintf(extra + used, sizeof(extra) - used,
                                 "; its header was damaged: moved it to %s and kept the %d valid "
                                 "records found in it",
                                 n.moved, n.salvaged);
    if (n.cut_bytes && used < sizeof(extra))
        used += (size_t)snprintf(extra + used, sizeof(extra) - used,
                                 "; cut a torn record of %lld bytes off its end",
                                 (long long)n.cut_bytes);
    if ((n.dropped_batches || n.dropped_other) && used < sizeof(extra))
        used += (size_t)snprintf(extra + used, sizeof(extra) - used,
                                 "; it was full: dropped the %d oldest spooled metric batch%s "
                                 "(%lld points)",
                                 n.dropped_batches, n.dropped_batches == 1 ? "" : "es",
                                 (long long)n.dropped_points);
    if (n.dropped_other && used < sizeof(extra))
        snprintf(extra + used, sizeof(extra) - used,
                 " and then the %d oldest other requests (run starts and ends, params, tags)",
                 n.dropped_other);
    cl_fail(err, TRACK_E_SPOOLED, "%s; kept in the spool %s for later delivery%s", why,
            c->spool_path, extra);
    return 0;
}

/* What a delivery nobody asked for (before a write) found: the one place
 * libtrack writes to stderr, since these records would otherwise be
 * lost or set aside without a word. */
static void spool_warn(const struct track_client *c, const struct track_sync_report *r)
{
    if (r->moved[0])
        fprintf(stderr,
                "track: warning: spool %s had a damaged header: moved it to %s, kept the %d "
                "valid records found in it\n",
                c->spool_path, r->moved, r->salvaged);
    if (r->damaged)
        fprintf(stderr, "track: warning: spool %s: skipped %d damaged record%s (%lld bytes)\n",
                c->spool_path, r->damaged, r->damaged == 1 ? "" : "s", (long long)r->damaged_bytes);
    if (r->rejected)
        fprintf(stderr, "track: warning: %d spooled request%s refused for good, moved to %s: %s\n",
                r->rejected, r->rejected == 1 ? "" : "s", r->rejected_path, r->rejected_reasons[0]);
}

static void mark_down(struct track_client *c)
{
    c->down_until_ms = wire_mono_ms() + c->down_backoff_ms;
    c->down_backoff_ms *= 2;
    if (c->down_backoff_ms > DOWN_BACKOFF_MAX)
        c->down_backoff_ms = DOWN_BACKOFF_MAX;
}

/* One deadline per public call, set by the outermost: 1 when this caller
 * set it (and must clear it with call_end). */
static int call_begin(struct track_client *c)
{
    if (c->deadline_ms)
        return 0;
    c->deadline_ms = wire_mono_ms() + c->timeout_ms;
    return 1;
}

static void call_end(struct track_client *c, int owned)
{
    if (owned)
        c->deadline_ms = 0;
}

int cl_write(struct track_client *c, const uint8_t *req, size_t len, Track__V1__Response **out,
             struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    struct track_err e2 = {0};
    int rc, owned;

    if (out)
        *out = NULL;
    if (err)
        err->code = 0;
    /* the whole write, spool delivery and append included, fits in one
     * timeout (the enclosing call's, when there is one) */
    owned = call_begin(c);
    if (c->down_until_ms && wire_mono_ms() < c->down_until_ms) {
        rc = spool_it(c, req, len, "trackd was unreachable moments ago", err);
        goto out;
    }
    /* older spooled writes go first, so a run's points keep their order */
    if (!c->no_spool) {
        struct track_sync_report r;
        rc = cl_spool_deliver(c, c->timeout_ms, 0, &r, &e2);
        spool_warn(c, &r);
        if (rc) {
            if (rc < 0)
                mark_down(c);
            rc = spool_it(c, req, len,
                          rc > 0 ? "older spooled writes are still being delivered" : e2.msg, err);
            goto out;
        }
    }
    rc = cl_roundtrip(c, req, len, &rs, &e2);
    if (rc == TRACK_E_UNAVAILABLE) {
        mark_down(c);
        rc = spool_it(c, req, len, e2.msg, err);
        goto out;
    }
    if (rc) {
        if (err)
            *err = e2;
        goto out;
    }
    c->down_until_ms = 0;
    c->down_backoff_ms = DOWN_BACKOFF_MIN;
    rc = cl_response_error(rs, err);
    if (rc == 0 && out)
        *out = rs;
    else
        track__v1__response__free_unpacked(rs, NULL);
out:
    call_end(c, owned);
    return rc;
}

int cl_read(struct track_client *c, Track__V1__Request *rq, Track__V1__Response **out,
            struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    size_t len;
    int rc;

    *out = NULL;
    rc = track_flush(c, NULL);
    (void)rc; /* a read never fails because buffered writes went to the spool */
    rc = cl_pack(c, rq, &len, err);
    if (rc)
        return rc;
    rc = cl_roundtrip(c, c->pack, len, &rs, err);
    if (rc)
        return rc;
    rc = cl_response_error(rs, err);
    if (rc) {
        track__v1__response__free_unpacked(rs, NULL);
        return rc;
    }
    *out = rs;
    return 0;
}

/* ---- runs ---------------------------------------------------------------- */

static void kvs_to_proto(const struct track_kv *kv, size_t n, Track__V1__KeyValue *store,
                         Track__V1__KeyValue **ptrs)
{
    for (size_t i = 0; i < n; i++) {
        track__v1__key_value__init(&store[i]);
        store[i].key = wire_str(kv[i].key);
        store[i].value = wire_str(kv[i].value);
        ptrs[i] = &store[i];
    }
}

static int check_kvs(const char *what, const struct track_kv *kv, size_t n, struct track_err *err)
{
    char field[64], msg[400];
    if (n > LIMIT_BATCH_KV)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s: more than %d entries", what,
                       LIMIT_BATCH_KV);
    for (size_t i = 0; i < n; i++) {
        snprintf(field, sizeof(field), "%s key", what);
        if (limits_check_key(field, kv[i].key, msg, sizeof(msg)))
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
        snprintf(field, sizeof(field), "%s \"%.40s\" value", what, kv[i].key);
        if (limits_check_value(field, kv[i].value, msg, sizeof(msg)))
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    }
    return 0;
}

static const char *user_name(void)
{
    const char *u = getenv("USER");
    if (u && *u)
        return u;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_name ? pw->pw_name : "";
}

static void set_run(struct track_client *c, const uint8_t id[16])
{
    memcpy(c->run, id, 16);
    wire_hex(id, c->run_hex);
    c->has_run = 1;
}

int track_run_start(struct track_client *c, const struct track_run_opts *o, track_run_id *id,
                    struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunStart rs = TRACK__V1__RUN_START__INIT;
    struct track_run_opts none = {0};
    Track__V1__KeyValue *kvs = NULL, **ptrs = NULL;
    char msg[400];
    uint8_t rid[16];
    size_t len, n;
    int rc, owned = 0;

    if (!o)
        o = &none;
    if (err)
        err->code = 0;
    if (limits_check_name("experiment name", o->experiment, 1, msg, sizeof(msg)) ||
        limits_check_name("run name", o->name, 1, msg, sizeof(msg)))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    if (o->parent && *o->parent && !wire_is_run_prefix(o->parent))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "parent: \"%.40s\" is not a run id (4 to 32 hex characters)", o->parent);
    rc = check_kvs("param", o->params, o->n_params, err);
    if (!rc)
        rc = check_kvs("tag", o->tags, o->n_tags, err);
    if (rc)
        return rc;
    owned = call_begin(c); /* the flush and the start within one timeout */
    rc = track_flush(c, NULL);
    n = o->n_params + o->n_tags;
    if (n) {
        kvs = calloc(n, sizeof(*kvs));
        ptrs = calloc(n, sizeof(*ptrs));
        if (!kvs || !ptrs) {
            rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
            goto out;
        }
        kvs_to_proto(o->params, o->n_params, kvs, ptrs);
        kvs_to_proto(o->tags, o->n_tags, kvs + o->n_params, ptrs + o->n_params);
    }
    randombytes_buf(rid, sizeof(rid));
    rs.run_id.data = rid;
    rs.run_id.len = 16;
    rs.experiment = wire_str(o->experiment);
    rs.name = wire_str(o->name);
    rs.start_ms = wire_now_ms();
    rs.user = wire_str(user_name());
    rs.parent = wire_str(o->parent);
    rs.params = ptrs;
    rs.n_params = o->n_params;
    rs.tags = ptrs ? ptrs + o->n_params : NULL;
    rs.n_tags = o->n_tags;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_START;
    rq.run_start = &rs;
    rc = cl_pack(c, &rq, &len, err);
    if (rc)
        goto out;
    rc = cl_write(c, c->pack, len, NULL, err);
    if (rc)
        goto out;
    set_run(c, rid);
    if (id)
        memcpy(id->b, rid, 16);
out:
    call_end(c, owned);
    free(kvs);
    free(ptrs);
    return rc;
}

int track_run_use(struct track_client *c, const char *run, struct track_err *err)
{
    uint8_t id[16];
    int rc;

    if (!run || !wire_is_run_prefix(run))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "run: \"%.40s\" is not a run id (4 to 32 hex characters)", run ? run : "");
    rc = track_flush(c, NULL);
    if (strlen(run) == 32) {
        wire_unhex(run, id);
        set_run(c, id);
        return 0;
    }
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunResolve rr = TRACK__V1__RUN_RESOLVE__INIT;
    Track__V1__Response *rs;
    rr.run = wire_str(run);
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_RESOLVE;
    rq.run_resolve = &rr;
    rc = cl_read(c, &rq, &rs, err);
    if (rc)
        return rc;
    if (rs->result_case != TRACK__V1__RESPONSE__RESULT_RUN_RESOLVE ||
        rs->run_resolve->run_id.len != 16) {
        track__v1__response__free_unpacked(rs, NULL);
        return cl_fail(err, TRACK_E_INTERNAL, "unexpected reply to run_resolve");
    }
    set_run(c, rs->run_resolve->run_id.data);
    track__v1__response__free_unpacked(rs, NULL);
    return 0;
}

int track_run_current(const struct track_client *c, track_run_id *id)
{
    if (!c->has_run)
        return TRACK_E_NOT_FOUND;
    memcpy(id->b, c->run, 16);
    return 0;
}

static int need_run(struct track_client *c, struct track_err *err)
{
    if (!c->has_run)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "no run: start one, or pass --run / set TRACK_RUN_ID");
    return 0;
}

/* A MetricSeries over a buffered series' arrays (no copy). */
static void series_view(const struct series *s, Track__V1__MetricSeries *m)
{
    track__v1__metric_series__init(m);
    m->key = (char *)s->key;
    m->steps = s->steps;
    m->n_steps = s->n;
    m->times_ms = s->times;
    m->n_times_ms = s->n;
    m->values = s->values;
    m->n_values = s->n;
}

/* The buffered points as the series of one request when they fit one
 * (64 series, well under the frame limit) and there is no feedback to send
 * first: they then go with the run's end. ms and mp hold 64. */
static size_t end_series(struct track_client *c, Track__V1__MetricSeries *ms,
                         Track__V1__MetricSeries **mp)
{
    size_t k = 0, bytes = 0;
    if (c->fb_n || c->buffered == 0)
        return 0;
    for (size_t i = 0; i < c->n_series; i++) {
        struct series *s = &c->series[i];
        if (!s->n)
            continue;
        if (k == 64)
            return 0;
        series_view(s, &ms[k]);
        mp[k] = &ms[k];
        bytes += track__v1__metric_series__get_packed_size(&ms[k]) + 8;
        k++;
    }
    return bytes + 1024 < CL_FRAME_ASK_ABOVE ? k : 0;
}

int track_run_end(struct track_client *c, int status, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunEnd re = TRACK__V1__RUN_END__INIT;
    Track__V1__MetricSeries ms[64], *mp[64];
    struct track_err ferr = {0};
    size_t len, k;
    int rc = need_run(c, err);

    if (rc)
        return rc;
    if (status < TRACK_FINISHED || status > TRACK_KILLED)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "status: must be finished, failed or killed");
    int owned = call_begin(c); /* the flush and the end within one timeout */
    /* a short run's last points ride with its end (one request, one
     * commit); more than one request's worth are flushed first */
    k = end_series(c, ms, mp);
    if (!k && (rc = track_flush(c, &ferr)) != 0) {
        call_end(c, owned);
        if (err)
            *err = ferr;
        return rc;
    }
    re.run = c->run_hex;
    re.status = (Track__V1__RunStatus)status;
    re.end_ms = wire_now_ms();
    re.metrics = k ? mp : NULL;
    re.n_metrics = k;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_END;
    rq.run_end = &re;
    rc = cl_pack(c, &rq, &len, err);
    if (!rc)
        rc = cl_write(c, c->pack, len, NULL, err);
    if (k && rc == 0) {
        /* stored with the end, or spooled with it: out of the buffer */
        for (size_t i = 0; i < c->n_series; i++) {
            c->buffered -= c->series[i].n;
            c->series[i].n = 0;
        }
    } else if (k && rc != TRACK_E_UNAVAILABLE) {
        /* the end was refused (and its points with it): the points go on
         * their own, as they would have without the end; the end's error
         * is the answer */
        track_flush(c, NULL);
    }
    call_end(c, owned);
    return rc;
}

static int send_kvs(struct track_client *c, int params, const struct track_kv *kv, size_t n,
                    struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LogBatch lb = TRACK__V1__LOG_BATCH__INIT;
    Track__V1__KeyValue *kvs = NULL, **ptrs = NULL;
    size_t len;
    int rc = need_run(c, err);

    if (rc)
        return rc;
    if (err)
        err->code = 0;
    rc = check_kvs(params ? "param" : "tag", kv, n, err);
    if (rc || n == 0)
        return rc;
    kvs = calloc(n, sizeof(*kvs));
    ptrs = calloc(n, sizeof(*ptrs));
    if (!kvs || !ptrs) {
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    kvs_to_proto(kv, n, kvs, ptrs);
    lb.run = c->run_hex;
    if (params) {
        lb.params = ptrs;
        lb.n_params = n;
    } else {
        lb.tags = ptrs;
        lb.n_tags = n;
    }
    rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
    rq.log_batch = &lb;
    /* more than a frame holds goes as several batches, each under the
     * server's limit (4096 values of 64 KiB would be 256 MiB) */
    size_t room = SIZE_MAX;
    if (track__v1__log_batch__get_packed_size(&lb) > CL_FRAME_ASK_ABOVE) {
        size_t limit = cl_frame_limit(c);
        room = limit > 4096 ? limit - 1024 : limit;
    }
    for (size_t at = 0; at < n && !rc;) {
        size_t k = 0, bytes = 0;
        while (at + k < n) {
            size_t one = track__v1__key_value__get_packed_size(ptrs[at + k]) + 6;
            if (k && bytes + one > room)
                break;
            bytes += one;
            k++;
        }
        if (params) {
            lb.params = ptrs + at;
            lb.n_params = k;
        } else {
            lb.tags = ptrs + at;
            lb.n_tags = k;
        }
        rc = cl_pack(c, &rq, &len, err);
        if (!rc) {
            struct track_err e2 = {0};
            rc = cl_write(c, c->pack, len, NULL, &e2);
            if (err && (rc || e2.code))
                *err = e2;
        }
        at += k;
    }
out:
    free(kvs);
    free(ptrs);
    return rc;
}

int track_log_param(struct track_client *c, const char *key, const char *value,
                    struct track_err *err)
{
    struct track_kv kv = {key, value};
    return send_kvs(c, 1, &kv, 1, err);
}

int track_log_params(struct track_client *c, const struct track_kv *kv, size_t n,
                     struct track_err *err)
{
    return send_kvs(c, 1, kv, n, err);
}

int track_set_tag(struct track_client *c, const char *key, const char *value, struct track_err *err)
{
    struct track_kv kv = {key, value};
    return send_kvs(c, 0, &kv, 1, err);
}

int track_set_tags(struct track_client *c, const struct track_kv *kv, size_t n,
                   struct track_err *err)
{
    return send_kvs(c, 0, kv, n, err);
}

/* ---- metrics ----------------------------------------------------------------- */

/* Frees the series that hold no points and closes the gaps, keeping the
 * others in their order (a flush sends them in it). Returns how many went. */
static size_t drop_empty_series(struct track_client *c)
{
    size_t w = 0, n = c->n_series;

    for (size_t i = 0; i < n; i++) {
        if (c->series[i].n == 0) {
            free(c->series[i].steps);
            free(c->series[i].times);
            free(c->series[i].values);
            continue;
        }
        if (w != i)
            c->series[w] = c->series[i];
        w++;
    }
    c->n_series = w;
    c->last_series = 0;
    return n - w;
}

static struct series *find_series(struct track_client *c, const char *key, struct track_err *err)
{
    char msg[400];

    if (c->last_series < c->n_series && strcmp(c->series[c->last_series].key, key) == 0)
        return &c->series[c->last_series];
    for (size_t i = 0; i < c->n_series; i++) {
        if (strcmp(c->series[i].key, key) == 0) {
            c->last_series = i;
            return &c->series[i];
        }
    }
    /* a new key: checked once here, not on every point */
    if (limits_check_key("metric key", key, msg, sizeof(msg))) {
        cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
        return NULL;
    }
    if (c->n_series == LIMIT_BATCH_SERIES && drop_empty_series(c) == 0) {
        /* every key holds points: send them, then make room */
        track_flush(c, NULL);
        drop_empty_series(c);
    }
    if (c->n_series == LIMIT_BATCH_SERIES) {
        cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED,
                "metric key: %d distinct keys hold unsent points (the limit of one batch); "
                "flush or wait for the server",
                LIMIT_BATCH_SERIES);
        return NULL;
    }
    if (c->n_series == c->cap_series) {
        size_t cap = c->cap_series ? c->cap_series * 2 : 8;
        struct series *s = realloc(c->series, cap * sizeof(*s));
        if (!s) {
            cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
            return NULL;
        }
        c->series = s;
        c->cap_series = cap;
    }
    struct series *s = &c->series[c->n_series];
    memset(s, 0, sizeof(*s));
    memcpy(s->key, key, strlen(key) + 1);
    c->last_series = c->n_series++;
    return s;
}

static int grow_series(struct series *s, struct track_err *err)
{
    size_t cap = s->cap ? s->cap * 2 : 256;
    int64_t *st = realloc(s->steps, cap * sizeof(*st));
    if (st)
        s->steps = st;
    int64_t *tm = realloc(s->times, cap * sizeof(*tm));
    if (tm)
        s->times = tm;
    double *v = realloc(s->values, cap * sizeof(*v));
    if (v)
        s->values = v;
    if (!st || !tm || !v)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    s->cap = cap;
    return 0;
}

int track_log_metric(struct track_client *c, const char *key, double value, int64_t step,
                     int64_t time_ms, struct track_err *err)
{
    struct series *s;
    int rc = need_run(c, err);

    if (rc)
        return rc;
    if (step < 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "step: %lld is negative", (long long)step);
    if (time_ms < 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "time: %lld is negative", (long long)time_ms);
    s = find_series(c, key, err);
    if (!s)
        return err ? err->code : TRACK_E_INVALID_ARGUMENT;
    if (s->n == s->cap && (rc = grow_series(s, err)))
        return rc;
    /* one clock read per point, the wall clock, serves both the point's
     * time and the flush interval (a clock step at worst flushes early or
     * late once); reading it twice was most of this function's cost */
    int64_t now = wire_now_ms();
    s->steps[s->n] = step;
    s->times[s->n] = time_ms ? time_ms : now;
    s->values[s->n] = value;
    s->n++;
    if (c->buffered++ == 0)
        c->oldest_ms = now;
    if (c->buffered >= (size_t)c->flush_points || now - c->oldest_ms >= c->flush_interval_ms ||
        now < c->oldest_ms)
        return track_flush(c, err);
    return 0;
}

static int flush_metrics(struct track_client *c, struct track_err *err);

/* Feedback scores first, then metric points; the first failure is the one
 * returned and reported, and a spooling note of either when nothing failed. */
int track_flush(struct track_client *c, struct track_err *err)
{
    struct track_err fe = {0}, me = {0};
    int frc = 0, mrc, owned = call_begin(c);

    if (c->fb_n)
        frc = cl_feedback_flush(c, &fe);
    mrc = flush_metrics(c, &me);
    call_end(c, owned);
    if (err)
        *err = frc || (fe.code && !mrc) ? fe : me;
    return frc ? frc : mrc;
}

static int flush_metrics(struct track_client *c, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LogBatch lb = TRACK__V1__LOG_BATCH__INIT;
    Track__V1__MetricSeries ms[64], *mp[64];
    size_t idx[64], len, i = 0;
    int rc = 0, owned;

    if (err)
        err->code = 0;
    if (c->buffered == 0)
        return 0;
    owned = call_begin(c); /* every batch of this flush within one timeout */
    /* 64 series per batch: a loop with more keys sends several batches. A
     * batch leaves the buffer exactly when the daemon answered it (applied,
     * or refused for good) or it is in the spool; one that could be neither
     * stays, with every later one, for the next flush */
    while (i < c->n_series) {
        size_t k = 0;
        for (; i < c->n_series && k < 64; i++) {
            struct series *s = &c->series[i];
            if (!s->n)
                continue;
            series_view(s, &ms[k]);
            mp[k] = &ms[k];
            idx[k] = i;
            k++;
        }
        if (!k)
            break;
        lb.run = c->run_hex;
        lb.metrics = mp;
        lb.n_metrics = k;
        rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
        rq.log_batch = &lb;
        /* a batch over the server's frame limit goes as smaller ones: the
         * series past the first half wait for the next round */
        while (k > 1 && track__v1__log_batch__get_packed_size(&lb) + 64 > CL_FRAME_ASK_ABOVE &&
               track__v1__log_batch__get_packed_size(&lb) + 64 > cl_frame_limit(c)) {
            size_t keep = k / 2;
            while (i > 0 && k > keep)
                if (c->series[--i].n)
                    k--;
            lb.n_metrics = k;
        }
        struct track_err e2 = {0};
        int brc = cl_pack(c, &rq, &len, &e2);
        if (!brc)
            brc = cl_write(c, c->pack, len, NULL, &e2);
        if (brc == TRACK_E_UNAVAILABLE) {
            if (!rc) {
                rc = brc;
                if (err)
                    *err = e2;
            }
            break;
        }
        for (size_t j = 0; j < k; j++) {
            c->buffered -= c->series[idx[j]].n;
            c->series[idx[j]].n = 0;
        }
        /* the first refusal is the one reported; later batches still go */
        if (!rc && err && (brc || e2.code))
            *err = e2; /* a refusal, or TRACK_E_SPOOLED saying where it went */
        if (!rc)
            rc = brc;
    }
    call_end(c, owned);
    return rc;
}

int track_sync(struct track_client *c, int *sent, struct track_err *err)
{
    struct track_sync_report r;
    int rc = track_flush(c, NULL);
    (void)rc;
    rc = track_spool_deliver(c, 0, &r, err);
    if (sent)
        *sent = r.delivered;
    if (rc == 0 && r.rejected)
        rc =
            cl_fail(err, r.rejected_code, "%d spooled request%s refused for good (moved to %s): %s",
                    r.rejected, r.rejected == 1 ? "" : "s", r.rejected_path, r.rejected_reasons[0]);
    return rc;
}

int track_spool_deliver(struct track_client *c, int all, struct track_sync_report *r,
                        struct track_err *err)
{
    struct track_sync_report local;
    int rc;

    if (!r)
        r = &local;
    if (err)
        err->code = 0;
    rc = cl_spool_deliver(c, 3600 * 1000, all, r, err);
    if (rc > 0 && err && err->code) /* the spool's lock stayed held */
        rc = err->code;
    else if (rc > 0)
        rc = cl_fail(err, TRACK_E_UNAVAILABLE, "spool delivery took longer than an hour");
    if (rc == 0) {
        c->down_until_ms = 0;
        c->down_backoff_ms = DOWN_BACKOFF_MIN;
    }
    return rc;
}

int track_spool_pending(struct track_client *c, int64_t *requests, int64_t *bytes,
                        struct track_err *err)
{
    return cl_spool_stat(c, requests, bytes, err);
}
