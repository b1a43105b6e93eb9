/*
 * reads.c: libtrack's read API. A read returns views into its unpacked
 * response; struct track_result owns the response and the few arrays made
 * to present it through track.h's types (which never expose protobuf).
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "track_limits.h"

struct track_result {
    Track__V1__Response *rs;
    void *mem[8]; /* arrays made for the caller's view */
    int n_mem;
};

void track_result_free(struct track_result *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_mem; i++)
        free(r->mem[i]);
    if (r->rs)
        track__v1__response__free_unpacked(r->rs, NULL);
    free(r);
}

static void *keep(struct track_result *r, size_t n)
{
    if (r->n_mem == (int)(sizeof(r->mem) / sizeof(r->mem[0])))
        return NULL;
    void *p = calloc(1, n ? n : 1);
    if (p)
        r->mem[r->n_mem++] = p;
    return p;
}

/* Sends rq and checks that the reply carries `want`. */
static int call(struct track_client *c, Track__V1__Request *rq, int want, struct track_result **out,
                struct track_err *err)
{
    Track__V1__Response *rs;
    int rc = cl_read(c, rq, &rs, err);

    *out = NULL;
    if (rc)
        return rc;
    if ((int)rs->result_case != want) {
        track__v1__response__free_unpacked(rs, NULL);
        return cl_fail(err, TRACK_E_INTERNAL, "unexpected reply from trackd (result %d)",
                       (int)rs->result_case);
    }
    *out = calloc(1, sizeof(**out));
    if (!*out) {
        track__v1__response__free_unpacked(rs, NULL);
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    }
    (*out)->rs = rs;
    return 0;
}

int track_experiment_create(struct track_client *c, const char *name, int64_t *id,
                            struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ExperimentCreate ec = TRACK__V1__EXPERIMENT_CREATE__INIT;
    Track__V1__Response *rs = NULL;
    char msg[400];
    size_t len;
    int rc;

    if (limits_check_name("experiment name", name, 0, msg, sizeof(msg)))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    ec.name = wire_str(name);
    rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_CREATE;
    rq.experiment_create = &ec;
    /* creating an experiment is answered by the daemon or not at all: a
     * spooled create could not report ALREADY_EXISTS */
    rc = track_flush(c, NULL);
    rc = cl_pack(c, &rq, &len, err);
    if (rc)
        return rc;
    rc = cl_roundtrip(c, c->pack, len, &rs, err);
    if (rc)
        return rc;
    rc = cl_response_error(rs, err);
    if (!rc && id && rs->result_case == TRACK__V1__RESPONSE__RESULT_EXPERIMENT)
        *id = rs->experiment->id;
    track__v1__response__free_unpacked(rs, NULL);
    return rc;
}

int track_experiment_list(struct track_client *c, struct track_result **res,
                          const struct track_experiment_info **exps, size_t *n,
                          struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ExperimentList el = TRACK__V1__EXPERIMENT_LIST__INIT;
    int rc;

    rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_LIST;
    rq.experiment_list = &el;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_EXPERIMENT_LIST, res, err);
    if (rc)
        return rc;
    Track__V1__ExperimentListResult *l = (*res)->rs->experiment_list;
    struct track_experiment_info *v = keep(*res, l->n_experiments * sizeof(*v));
    if (!v) {
        track_result_free(*res);
        *res = NULL;
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (size_t i = 0; i < l->n_experiments; i++) {
        v[i].id = l->experiments[i]->id;
        v[i].name = l->experiments[i]->name;
        v[i].archived = l->experiments[i]->archived;
        v[i].created_ms = l->experiments[i]->created_ms;
        v[i].run_count = l->experiments[i]->run_count;
    }
    *exps = v;
    *n = l->n_experiments;
    return 0;
}

/* Fills info from m; kv and metric arrays are allocated into r. */
static int run_view(struct track_result *r, const Track__V1__Run *m, struct track_run_info *info,
                    struct track_kv *kvs, struct track_metric_summary *ms)
{
    memset(info, 0, sizeof(*info));
    if (m->run_id.len == 16)
        memcpy(info->id.b, m->run_id.data, 16);
    info->name = m->name;
    info->experiment = m->experiment;
    info->status = (int)m->status;
    info->start_ms = m->start_ms;
    info->end_ms = m->end_ms;
    info->user = m->user;
    if (m->parent_id.len == 16) {
        info->has_parent = 1;
        memcpy(info->parent.b, m->parent_id.data, 16);
    }
    (void)r;
    for (size_t i = 0; i < m->n_params; i++) {
        kvs[i].key = m->params[i]->key;
        kvs[i].value = m->params[i]->value;
    }
    for (size_t i = 0; i < m->n_tags; i++) {
        kvs[m->n_params + i].key = m->tags[i]->key;
        kvs[m->n_params + i].value = m->tags[i]->value;
    }
    info->params = kvs;
    info->n_params = m->n_params;
    info->tags = kvs + m->n_params;
    info->n_tags = m->n_tags;
    for (size_t i = 0; i < m->n_metrics; i++) {
        const Track__V1__MetricSummary *s = m->metrics[i];
        ms[i] = (struct track_metric_summary){s->key,   s->last,      s->min,    s->max,
                                              s->count, s->last_step, s->last_ms};
    }
    info->metrics = ms;
    info->n_metrics = m->n_metrics;
    return 0;
}

/* Views for `n` runs, with their kv and metric arrays in two allocations. */
static int runs_view(struct track_result *r, Track__V1__Run **runs, size_t n,
                     struct track_run_info **out, struct track_err *err)
{
    size_t n_kv = 0, n_m = 0;
    for (size_t i = 0; i < n; i++) {
        n_kv += runs[i]->n_params + runs[i]->n_tags;
        n_m += runs[i]->n_metrics;
    }
    struct track_run_info *infos = keep(r, n * sizeof(*infos));
    struct track_kv *kvs = keep(r, n_kv * sizeof(*kvs));
    struct track_metric_summary *ms = keep(r, n_m * sizeof(*ms));
    if (!infos || !kvs || !ms)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    for (size_t i = 0; i < n; i++) {
        run_view(r, runs[i], &infos[i], kvs, ms);
        kvs += runs[i]->n_params + runs[i]->n_tags;
        ms += runs[i]->n_metrics;
    }
    *out = infos;
    return 0;
}

int track_run_get(struct track_client *c, const char *run, struct track_result **res,
                  struct track_run_info *info, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunGet rg = TRACK__V1__RUN_GET__INIT;
    struct track_run_info *v = NULL;
    int rc;

    rg.run = wire_str(run);
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
    rq.run_get = &rg;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_RUN_GET, res, err);
    if (rc)
        return rc;
    if (!(*res)->rs->run_get->run) {
        track_result_free(*res);
        *res = NULL;
        return cl_fail(err, TRACK_E_INTERNAL, "empty reply to run_get");
    }
    rc = runs_view(*res, &(*res)->rs->run_get->run, 1, &v, err);
    if (rc) {
        track_result_free(*res);
        *res = NULL;
        return rc;
    }
    *info = *v;
    return 0;
}

int track_run_list(struct track_client *c, const struct track_run_query *q,
                   struct track_result **res, struct track_run_info **runs, size_t *n,
                   struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunList rl = TRACK__V1__RUN_LIST__INIT;
    size_t ne = 0;
    int rc;

    if (q && q->experiments)
        while (q->experiments[ne])
            ne++;
    rl.experiments = ne ? (char **)(uintptr_t)q->experiments : NULL;
    rl.n_experiments = ne;
    rl.filter = wire_str(q ? q->filter : NULL);
    rl.order_by = wire_str(q ? q->order_by : NULL);
    rl.limit = q ? q->limit : 0;
    rl.with_details = q ? q->with_details != 0 : 0;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_LIST;
    rq.run_list = &rl;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_RUN_LIST, res, err);
    if (rc)
        return rc;
    Track__V1__RunListResult *l = (*res)->rs->run_list;
    rc = runs_view(*res, l->runs, l->n_runs, runs, err);
    if (rc) {
        track_result_free(*res);
        *res = NULL;
        return rc;
    }
    *n = l->n_runs;
    return 0;
}

int track_metric_history(struct track_client *c, const char *run, const char *key,
                         int64_t after_seq, int64_t max_points, struct track_result **res,
                         const int64_t **steps, const int64_t **times_ms, const double **values,
                         size_t *n, int64_t *next_seq, int *more, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricHistory mh = TRACK__V1__METRIC_HISTORY__INIT;
    int rc;

    mh.run = wire_str(run);
    mh.key = wire_str(key);
    mh.after_seq = after_seq;
    mh.max_points = max_points;
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_HISTORY;
    rq.metric_history = &mh;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_METRIC_HISTORY, res, err);
    if (rc)
        return rc;
    Track__V1__MetricHistoryResult *h = (*res)->rs->metric_history;
    static const int64_t none64[1];
    static const double noned[1];
    if (h->series) {
        *steps = h->series->steps;
        *times_ms = h->series->times_ms;
        *values = h->series->values;
        *n = h->series->n_values;
    } else {
        *steps = none64;
        *times_ms = none64;
        *values = noned;
        *n = 0;
    }
    *next_seq = h->next_seq;
    *more = h->more;
    return 0;
}

int track_metric_curve(struct track_client *c, const char *run, const char *key, int buckets,
                       struct track_result **res, const int64_t **steps, const double **mins,
                       const double **maxs, const double **lasts, size_t *n, int64_t *count,
                       struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricCurve mc = TRACK__V1__METRIC_CURVE__INIT;
    int rc;

    mc.run = wire_str(run);
    mc.key = wire_str(key);
    mc.buckets = buckets;
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_CURVE;
    rq.metric_curve = &mc;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_METRIC_CURVE, res, err);
    if (rc)
        return rc;
    Track__V1__MetricCurveResult *r = (*res)->rs->metric_curve;
    *steps = r->steps;
    *mins = r->mins;
    *maxs = r->maxs;
    *lasts = r->lasts;
    *n = r->n_steps;
    if (r->n_mins != *n || r->n_maxs != *n || r->n_lasts != *n) {
        track_result_free(*res);
        *res = NULL;
        return cl_fail(err, TRACK_E_INTERNAL, "malformed curve reply");
    }
    *count = r->count;
    return 0;
}

int track_metric_curve_m4(struct track_client *c, const char *run, const char *key, int buckets,
                          struct track_curve_bucket **b, size_t *n, int64_t *count,
                          struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__MetricCurve mc = TRACK__V1__METRIC_CURVE__INIT;
    struct track_result *res = NULL;
    int rc;

    *b = NULL;
    *n = 0;
    *count = 0;
    mc.run = wire_str(run);
    mc.key = wire_str(key);
    mc.buckets = buckets;
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_CURVE;
    rq.metric_curve = &mc;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_METRIC_CURVE, &res, err);
    if (rc)
        return rc;
    Track__V1__MetricCurveResult *r = res->rs->metric_curve;
    size_t k = r->n_steps;
    if (r->n_mins != k || r->n_maxs != k || r->n_lasts != k || r->n_firsts != k ||
        r->n_first_steps != k || r->n_min_steps != k || r->n_max_steps != k ||
        r->n_last_steps != k || r->n_first_times != k || r->n_min_times != k ||
        r->n_max_times != k || r->n_last_times != k) {
        rc = cl_fail(err, TRACK_E_INTERNAL, "malformed curve reply");
        goto out;
    }
    if (k && !(*b = malloc(k * sizeof(**b)))) {
        rc = cl_fail(err, TRACK_E_INTERNAL, "out of memory for %zu curve buckets", k);
        goto out;
    }
    for (size_t i = 0; i < k; i++) {
        (*b)[i] = (struct track_curve_bucket){
            .lo_step = r->steps[i],
            .first = {r->first_steps[i], r->first_times[i], r->firsts[i]},
            .min = {r->min_steps[i], r->min_times[i], r->mins[i]},
            .max = {r->max_steps[i], r->max_times[i], r->maxs[i]},
            .last = {r->last_steps[i], r->last_times[i], r->lasts[i]},
        };
    }
    *n = k;
    *count = r->count;
out:
    track_result_free(res);
    return rc;
}

int track_status(struct track_client *c, struct track_result **res, struct track_server_status *st,
                 struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Status s = TRACK__V1__STATUS__INIT;
    int rc;

    rq.op_case = TRACK__V1__REQUEST__OP_STATUS;
    rq.status = &s;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_STATUS, res, err);
    if (rc)
        return rc;
    Track__V1__StatusResult *r = (*res)->rs->status;
    st->server_version = r->server_version;
    st->uptime_ms = r->uptime_ms;
    st->data_dir = r->data_dir;
    st->experiments = r->experiments;
    st->runs = r->runs;
    st->metric_points = r->metric_points;
    st->db_bytes = r->db_bytes;
    st->requests = r->requests;
    st->pid = r->pid;
    return 0;
}

/* Removes PATH.tmp-PID files beside `path` whose PID is gone: what a
 * `track backup` killed mid-way left. A live writer's file is kept. */
static void backup_sweep_tmps(const char *path)
{
    char dir[4096], prefix[1024];
    const char *slash = strrchr(path, '/');
    DIR *d;
    struct dirent *e;

    if (slash) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        if (!dir[0])
            snprintf(dir, sizeof(dir), "/");
    } else {
        snprintf(dir, sizeof(dir), ".");
    }
    snprintf(prefix, sizeof(prefix), "%s.tmp-", slash ? slash + 1 : path);
    d = opendir(dir);
    while (d && (e = readdir(d)) != NULL) {
        char *end, p[5200];
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        long pid = strtol(e->d_name + strlen(prefix), &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
}

static int backup_end(struct track_client *c, const char *id)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__BackupEnd be = TRACK__V1__BACKUP_END__INIT;
    struct track_result *res = NULL;
    int rc;

    be.id = wire_str(id);
    rq.op_case = TRACK__V1__REQUEST__OP_BACKUP_END;
    rq.backup_end = &be;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_BACKUP_END, &res, NULL);
    track_result_free(res);
    return rc;
}

/* Streams the daemon's snapshot into `path` (see track.h): PATH.tmp-PID
 * (O_EXCL, O_NOFOLLOW, 0600), checked against the size and BLAKE2b-256
 * digest the daemon announced, fsynced, then linked to `path` (which must
 * still not exist) and its directory fsynced. */
int track_backup(struct track_client *c, const char *path, int64_t *bytes, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__BackupBegin bb = TRACK__V1__BACKUP_BEGIN__INIT;
    struct track_result *res = NULL;
    crypto_generichash_state h;
    uint8_t digest[32], want_digest[32];
    char tmp[4200], id[40] = "";
    int64_t size = 0, off = 0;
    int saved_timeout = c->timeout_ms, fd = -1, rc;
    struct stat sb;

    if (!path || !path[0])
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "backup: FILE is missing");
    if (strlen(path) > 4000)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "backup: FILE is longer than 4000 bytes");
    backup_sweep_tmps(path);
    if (lstat(path, &sb) == 0)
        return cl_fail(err, TRACK_E_ALREADY_EXISTS, "backup: %s already exists", path);
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    unlink(tmp);

    /* the snapshot of a large database takes a while: this one call may
     * wait longer than the client's timeout */
    if (c->timeout_ms < TRACK_BACKUP_BEGIN_TIMEOUT_MS)
        c->timeout_ms = TRACK_BACKUP_BEGIN_TIMEOUT_MS;
    rq.op_case = TRACK__V1__REQUEST__OP_BACKUP_BEGIN;
    rq.backup_begin = &bb;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_BACKUP_BEGIN, &res, err);
    c->timeout_ms = saved_timeout;
    if (rc)
        return rc;
    {
        Track__V1__BackupBeginResult *b = res->rs->backup_begin;
        if (!b->id || strlen(b->id) >= sizeof(id) || b->bytes < 0 || b->digest.len != 32) {
            track_result_free(res);
            return cl_fail(err, TRACK_E_INTERNAL, "backup: malformed reply to backup_begin");
        }
        snprintf(id, sizeof(id), "%s", b->id);
        size = b->bytes;
        memcpy(want_digest, b->digest.data, 32);
    }
    track_result_free(res);
    res = NULL;

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = cl_fail(err, TRACK_E_INVALID_ARGUMENT, "backup: cannot create %s: %s", tmp,
                     strerror(errno));
        goto out;
    }
    fchmod(fd, 0600);
    crypto_generichash_init(&h, NULL, 0, 32);
    for (int eof = 0; !eof;) {
        Track__V1__Request cq = TRACK__V1__REQUEST__INIT;
        Track__V1__BackupChunk ch = TRACK__V1__BACKUP_CHUNK__INIT;
        ch.id = id;
        ch.offset = off;
        cq.op_case = TRACK__V1__REQUEST__OP_BACKUP_CHUNK;
        cq.backup_chunk = &ch;
        rc = call(c, &cq, TRACK__V1__RESPONSE__RESULT_BACKUP_CHUNK, &res, err);
        if (rc)
            goto out;
        Track__V1__BackupChunkResult *r = res->rs->backup_chunk;
        if (r->offset != off || (int64_t)r->data.len > size - off ||
            (r->data.len == 0 && !r->eof)) {
            rc = cl_fail(err, TRACK_E_INTERNAL,
                         "backup: chunk at offset %lld of %lld bytes does not fit the snapshot",
                         (long long)r->offset, (long long)r->data.len);
            goto out;
        }
        for (size_t w = 0; w < r->data.len;) {
            ssize_t n = write(fd, r->data.data + w, r->data.len - w);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "backup: writing %s: %s", tmp,
                             strerror(errno));
                goto out;
            }
            w += (size_t)n;
        }
        crypto_generichash_update(&h, r->data.data, r->data.len);
        off += (int64_t)r->data.len;
        eof = r->eof;
        track_result_free(res);
        res = NULL;
    }
    crypto_generichash_final(&h, digest, 32);
    if (off != size || sodium_memcmp(digest, want_digest, 32) != 0) {
        rc = cl_fail(err, TRACK_E_INTERNAL,
                     "backup: the copy received (%lld bytes) does not match the snapshot "
                     "(%lld bytes, BLAKE2b-256 digest)",
                     (long long)off, (long long)size);
        goto out;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "backup: fsync %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    /* link, not rename: a file that appeared at `path` meanwhile is kept */
    if (link(tmp, path) != 0) {
        rc = cl_fail(err, errno == EEXIST ? TRACK_E_ALREADY_EXISTS : TRACK_E_INVALID_ARGUMENT,
                     "backup: cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    unlink(tmp);
    {
        char dir[4200];
        const char *slash = strrchr(path, '/');
        if (slash)
            snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
        else
            snprintf(dir, sizeof(dir), ".");
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    if (bytes)
        *bytes = size;
    rc = 0;
out:
    track_result_free(res);
    if (fd >= 0)
        close(fd);
    if (rc)
        unlink(tmp);
    backup_end(c, id);
    return rc;
}
