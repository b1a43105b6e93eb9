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
    Track__V1__Response **pages; /* the pages after the first of a paged read */
    size_t n_pages, cap_pages;
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
    for (size_t i = 0; i < r->n_pages; i++)
        track__v1__response__free_unpacked(r->pages[i], NULL);
    free(r->pages);
    free(r);
}

/* Keeps one more page of a paged read in r (freed with it); on failure the
 * page is freed here. */
static int keep_page(struct track_result *r, Track__V1__Response *rs, struct track_err *err)
{
    if (r->n_pages == r->cap_pages) {
        size_t cap = r->cap_pages ? r->cap_pages * 2 : 8;
        Track__V1__Response **p = realloc(r->pages, cap * sizeof(*p));
        if (!p) {
            track__v1__response__free_unpacked(rs, NULL);
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        }
        r->pages = p;
        r->cap_pages = cap;
    }
    r->pages[r->n_pages++] = rs;
    return 0;
}

/* ---- checking replies ----------------------------------------------------------
 * A reply is checked as the daemon checks a request: every column's length
 * against the others, every id's length, every sub-message present, before
 * any of it is handed to the caller. */

static int malformed(struct track_err *err, const char *field, const char *why)
{
    return cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: field %s (%s)", field, why);
}

static int check_str(const char *s, const char *field, struct track_err *err)
{
    return s ? 0 : malformed(err, field, "missing");
}

static int check_run(const Track__V1__Run *m, const char *where, struct track_err *err)
{
    char f[96];

    if (!m) {
        snprintf(f, sizeof(f), "%s", where);
        return malformed(err, f, "missing");
    }
    if (m->run_id.len != 16) {
        snprintf(f, sizeof(f), "%s.run_id", where);
        return malformed(err, f, "not 16 bytes");
    }
    if (m->parent_id.len != 0 && m->parent_id.len != 16) {
        snprintf(f, sizeof(f), "%s.parent_id", where);
        return malformed(err, f, "neither empty nor 16 bytes");
    }
    snprintf(f, sizeof(f), "%s.name", where);
    if (check_str(m->name, f, err) || check_str(m->experiment, f, err) ||
        check_str(m->user, f, err))
        return TRACK_E_INTERNAL;
    for (size_t i = 0; i < m->n_params + m->n_tags; i++) {
        const Track__V1__KeyValue *kv = i < m->n_params ? m->params[i] : m->tags[i - m->n_params];
        snprintf(f, sizeof(f), "%s.%s", where, i < m->n_params ? "params" : "tags");
        if (!kv || !kv->key || !kv->value)
            return malformed(err, f, "an entry without key or value");
    }
    for (size_t i = 0; i < m->n_metrics; i++) {
        snprintf(f, sizeof(f), "%s.metrics", where);
        if (!m->metrics[i] || !m->metrics[i]->key)
            return malformed(err, f, "an entry without key");
    }
    return 0;
}

static int check_series(const Track__V1__MetricSeries *s, struct track_err *err)
{
    if (!s)
        return 0;
    if (!s->key)
        return malformed(err, "metric_history.series.key", "missing");
    if (s->n_steps != s->n_values)
        return malformed(err, "metric_history.series.steps", "length differs from values");
    if (s->n_times_ms != s->n_values)
        return malformed(err, "metric_history.series.times_ms", "length differs from values");
    return 0;
}

int cl_check_reply(const Track__V1__Response *rs, struct track_err *err)
{
    switch (rs->result_case) {
    case TRACK__V1__RESPONSE__RESULT_RUN:
        return check_run(rs->run, "run", err);
    case TRACK__V1__RESPONSE__RESULT_RUN_GET:
        if (!rs->run_get)
            return malformed(err, "run_get", "missing");
        return check_run(rs->run_get->run, "run_get.run", err);
    case TRACK__V1__RESPONSE__RESULT_RUN_LIST:
        if (!rs->run_list)
            return malformed(err, "run_list", "missing");
        for (size_t i = 0; i < rs->run_list->n_runs; i++)
            if (check_run(rs->run_list->runs[i], "run_list.runs", err))
                return TRACK_E_INTERNAL;
        return 0;
    case TRACK__V1__RESPONSE__RESULT_METRIC_HISTORY:
        if (!rs->metric_history)
            return malformed(err, "metric_history", "missing");
        if (rs->metric_history->next_seq < 0)
            return malformed(err, "metric_history.next_seq", "negative");
        return check_series(rs->metric_history->series, err);
    case TRACK__V1__RESPONSE__RESULT_METRIC_CURVE: {
        const Track__V1__MetricCurveResult *c = rs->metric_curve;
        if (!c)
            return malformed(err, "metric_curve", "missing");
        if (c->n_mins != c->n_steps)
            return malformed(err, "metric_curve.mins", "length differs from steps");
        if (c->n_maxs != c->n_steps)
            return malformed(err, "metric_curve.maxs", "length differs from steps");
        if (c->n_lasts != c->n_steps)
            return malformed(err, "metric_curve.lasts", "length differs from steps");
        return 0;
    }
    case TRACK__V1__RESPONSE__RESULT_EXPERIMENT_LIST:
        if (!rs->experiment_list)
            return malformed(err, "experiment_list", "missing");
        for (size_t i = 0; i < rs->experiment_list->n_experiments; i++)
            if (!rs->experiment_list->experiments[i] || !rs->experiment_list->experiments[i]->name)
                return malformed(err, "experiment_list.experiments", "an entry without name");
        return 0;
    case TRACK__V1__RESPONSE__RESULT_RUN_RESOLVE:
        if (!rs->run_resolve || rs->run_resolve->run_id.len != 16)
            return malformed(err, "run_resolve.run_id", "not 16 bytes");
        return 0;
    case TRACK__V1__RESPONSE__RESULT_STATUS:
        if (!rs->status)
            return malformed(err, "status", "missing");
        if (!rs->status->server_version || !rs->status->data_dir)
            return malformed(err, "status.server_version", "missing");
        return 0;
    case TRACK__V1__RESPONSE__RESULT_HELLO:
        if (!rs->hello)
            return malformed(err, "hello", "missing");
        return 0;
    case TRACK__V1__RESPONSE__RESULT_BACKUP:
        if (!rs->backup)
            return malformed(err, "backup", "missing");
        return 0;
    default:
        return 0;
    }
}

int cl_check_history_page(const Track__V1__Response *rs, const char *run, const char *key,
                          struct track_err *err)
{
    const Track__V1__MetricHistoryResult *h = rs->metric_history;
    size_t n = h && h->series ? h->series->n_values : 0;

    /* a page with no points that says more follow would be asked for again
     * and again: the server's summary counts points it does not have */
    if (h && h->more && n == 0)
        return cl_fail(err, TRACK_E_INTERNAL,
                       "metric \"%.250s\" of run %.40s: the server says more points follow "
                       "seq %lld but sent none; its data is inconsistent (run trackd --check)",
                       key ? key : "", run ? run : "", (long long)h->next_seq);
    return 0;
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

int cl_read_want(struct track_client *c, Track__V1__Request *rq, int want,
                 Track__V1__Response **out, struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    int rc = cl_read(c, rq, &rs, err);

    *out = NULL;
    if (rc)
        return rc;
    if ((int)rs->result_case != want) {
        track__v1__response__free_unpacked(rs, NULL);
        return cl_fail(err, TRACK_E_INTERNAL, "unexpected reply from trackd (result %d)",
                       (int)rs->result_case);
    }
    *out = rs;
    return 0;
}

/* Sends rq and checks that the reply carries `want`. */
static int call(struct track_client *c, Track__V1__Request *rq, int want, struct track_result **out,
                struct track_err *err)
{
    Track__V1__Response *rs;
    int rc = cl_read_want(c, rq, want, &rs, err);

    *out = NULL;
    if (rc)
        return rc;
    rc = cl_check_reply(rs, err);
    if (rc) {
        track__v1__response__free_unpacked(rs, NULL);
        return rc;
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

/* A paged read's runs as they came: one piece per Run message, a piece
 * with `cont` set continuing the details of the run before it. */
struct pieces {
    const Track__V1__Run **m;
    unsigned char *cont;
    size_t n, cap;
};

static int piece_add(struct pieces *p, const Track__V1__Run *m, int cont, struct track_err *err)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        const Track__V1__Run **nm = realloc(p->m, cap * sizeof(*nm));
        if (nm)
            p->m = nm;
        unsigned char *nc = realloc(p->cont, cap);
        if (nc)
            p->cont = nc;
        if (!nm || !nc)
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        p->cap = cap;
    }
    p->m[p->n] = m;
    p->cont[p->n++] = (unsigned char)(cont != 0);
    return 0;
}

static void pieces_free(struct pieces *p)
{
    free(p->m);
    free(p->cont);
}

/* Adds a page's runs to p. The first may continue the last run before it
 * (same id); a page that promises more must bring something new, else a
 * server sending the same page forever would keep us here forever. */
static int pieces_page(struct pieces *p, Track__V1__Run **runs, size_t n, int more,
                       struct track_err *err)
{
    size_t items = 0, fresh = 0;

    for (size_t i = 0; i < n; i++) {
        int cont =
            i == 0 && p->n && memcmp(p->m[p->n - 1]->run_id.data, runs[0]->run_id.data, 16) == 0;
        items += runs[i]->n_params + runs[i]->n_tags + runs[i]->n_metrics;
        fresh += !cont;
        if (piece_add(p, runs[i], cont, err))
            return TRACK_E_RESOURCE_EXHAUSTED;
    }
    if (more && items == 0 && fresh == 0)
        return malformed(err, "next_page_token", "a page that brought nothing promises more");
    return 0;
}

/* Views for the runs of p: one info per run, its params, tags and metrics
 * gathered from all of its pieces, in three allocations kept in r. */
static int runs_view(struct track_result *r, const struct pieces *p, struct track_run_info **out,
                     size_t *n_out, struct track_err *err)
{
    size_t n_kv = 0, n_m = 0, n = 0;
    for (size_t i = 0; i < p->n; i++) {
        n_kv += p->m[i]->n_params + p->m[i]->n_tags;
        n_m += p->m[i]->n_metrics;
        n += !p->cont[i];
    }
    struct track_run_info *infos = keep(r, n * sizeof(*infos));
    struct track_kv *kvs = keep(r, n_kv * sizeof(*kvs));
    struct track_metric_summary *ms = keep(r, n_m * sizeof(*ms));
    if (!infos || !kvs || !ms)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    size_t g = 0;
    for (size_t i = 0; i < p->n;) {
        const Track__V1__Run *m = p->m[i];
        struct track_run_info *info = &infos[g++];
        size_t end = i + 1;
        while (end < p->n && p->cont[end])
            end++;
        memset(info, 0, sizeof(*info));
        memcpy(info->id.b, m->run_id.data, 16);
        info->name = m->name;
        info->experiment = m->experiment;
        info->status = (int)m->status;
        info->start_ms = m->start_ms;
        info->end_ms = m->end_ms;
        info->user = m->user;
        info->deleted = m->deleted;
        info->deleted_ms = m->deleted_ms;
        info->artifacts = m->artifacts;
        info->artifact_bytes = m->artifact_bytes;
        if (m->parent_id.len == 16) {
            info->has_parent = 1;
            memcpy(info->parent.b, m->parent_id.data, 16);
        }
        info->params = kvs;
        for (size_t k = i; k < end; k++)
            for (size_t j = 0; j < p->m[k]->n_params; j++)
                *kvs++ = (struct track_kv){p->m[k]->params[j]->key, p->m[k]->params[j]->value};
        info->n_params = (size_t)(kvs - info->params);
        info->tags = kvs;
        for (size_t k = i; k < end; k++)
            for (size_t j = 0; j < p->m[k]->n_tags; j++)
                *kvs++ = (struct track_kv){p->m[k]->tags[j]->key, p->m[k]->tags[j]->value};
        info->n_tags = (size_t)(kvs - info->tags);
        info->metrics = ms;
        for (size_t k = i; k < end; k++)
            for (size_t j = 0; j < p->m[k]->n_metrics; j++) {
                const Track__V1__MetricSummary *s = p->m[k]->metrics[j];
                *ms++ = (struct track_metric_summary){s->key,   s->last,      s->min,    s->max,
                                                      s->count, s->last_step, s->last_ms};
            }
        info->n_metrics = (size_t)(ms - info->metrics);
        i = end;
    }
    *out = infos;
    *n_out = n;
    return 0;
}

/* Sends rq again for the page after `token`, keeping the reply in r. */
static int next_page(struct track_client *c, Track__V1__Request *rq, ProtobufCBinaryData *slot,
                     ProtobufCBinaryData token, int want, struct track_result *r,
                     Track__V1__Response **page, struct track_err *err)
{
    struct track_result *one;
    int rc;

    *slot = token;
    rc = call(c, rq, want, &one, err);
    if (rc)
        return rc;
    *page = one->rs;
    one->rs = NULL;
    track_result_free(one);
    return keep_page(r, *page, err);
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
    /* follow the pages; each must bring experiments, or it would never end */
    Track__V1__ExperimentListResult *l = (*res)->rs->experiment_list;
    size_t total = l->n_experiments;
    while (l->next_page_token.len) {
        Track__V1__Response *page;
        if (l->n_experiments == 0) {
            rc = malformed(err, "next_page_token", "a page that brought nothing promises more");
            break;
        }
        rc = next_page(c, &rq, &el.page_token, l->next_page_token,
                       TRACK__V1__RESPONSE__RESULT_EXPERIMENT_LIST, *res, &page, err);
        if (rc)
            break;
        l = page->experiment_list;
        total += l->n_experiments;
    }
    struct track_experiment_info *v = rc ? NULL : keep(*res, total * sizeof(*v));
    if (!rc && !v)
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    if (rc) {
        track_result_free(*res);
        *res = NULL;
        return rc;
    }
    size_t at = 0;
    for (size_t p = 0; p <= (*res)->n_pages; p++) {
        const Track__V1__Response *rs = p ? (*res)->pages[p - 1] : (*res)->rs;
        const Track__V1__ExperimentListResult *pl = rs->experiment_list;
        for (size_t i = 0; i < pl->n_experiments; i++, at++) {
            v[at].id = pl->experiments[i]->id;
            v[at].name = pl->experiments[i]->name;
            v[at].archived = pl->experiments[i]->archived;
            v[at].created_ms = pl->experiments[i]->created_ms;
            v[at].run_count = pl->experiments[i]->run_count;
        }
    }
    *exps = v;
    *n = total;
    return 0;
}

int track_run_get(struct track_client *c, const char *run, struct track_result **res,
                  struct track_run_info *info, struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__RunGet rg = TRACK__V1__RUN_GET__INIT;
    struct track_run_info *v = NULL;
    struct pieces p = {0};
    size_t n = 0;
    int rc;

    rg.run = wire_str(run);
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
    rq.run_get = &rg;
    rc = call(c, &rq, TRACK__V1__RESPONSE__RESULT_RUN_GET, res, err);
    if (rc)
        return rc;
    /* the run's details come page by page: follow the cursor to the end,
     * asking by the full id so every page is of the same run */
    Track__V1__RunGetResult *g = (*res)->rs->run_get;
    char hex[33];
    wire_hex(g->run->run_id.data, hex);
    rg.run = hex;
    rc = pieces_page(&p, &g->run, 1, g->next_page_token.len != 0, err);
    while (!rc && g->next_page_token.len) {
        Track__V1__Response *page;
        rc = next_page(c, &rq, &rg.page_token, g->next_page_token,
                       TRACK__V1__RESPONSE__RESULT_RUN_GET, *res, &page, err);
        if (rc)
            break;
        g = page->run_get;
        if (memcmp(g->run->run_id.data, p.m[0]->run_id.data, 16) != 0)
            rc = malformed(err, "run_get.run.run_id", "another run on a later page");
        else
            rc = pieces_page(&p, &g->run, 1, g->next_page_token.len != 0, err);
    }
    if (!rc)
        rc = runs_view(*res, &p, &v, &n, err);
    pieces_free(&p);
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
    struct pieces p = {0};
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
    rc = pieces_page(&p, l->runs, l->n_runs, l->next_page_token.len != 0, err);
    while (!rc && l->next_page_token.len) {
        Track__V1__Response *page;
        rc = next_page(c, &rq, &rl.page_token, l->next_page_token,
                       TRACK__V1__RESPONSE__RESULT_RUN_LIST, *res, &page, err);
        if (rc)
            break;
        l = page->run_list;
        rc = pieces_page(&p, l->runs, l->n_runs, l->next_page_token.len != 0, err);
    }
    if (!rc)
        rc = runs_view(*res, &p, runs, n, err);
    pieces_free(&p);
    if (rc) {
        track_result_free(*res);
        *res = NULL;
        return rc;
    }
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
    rc = cl_check_history_page((*res)->rs, run, key, err);
    if (rc) {
        track_result_free(*res);
        *res = NULL;
        return rc;
    }
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
    st->artifacts = r->artifacts;
    st->artifact_bytes = r->artifact_bytes;
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
