/*
 * lifecycle.c: the public API of a run's lifecycle and lineage:
 * track_run_delete, track_run_restore, track_gc and track_lineage_get. Each
 * is one round trip. The delete and restore writes are sent as reads are
 * (cl_read: request id, no spool): a user deleting a run wants to know at
 * once whether it happened, not to find it queued for later; the request id
 * still makes a resend safe. The reports keep the unpacked response (their
 * strings point into it) in priv_ and are released by their *_free.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int malformed(struct track_err *err, const char *field)
{
    return cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: field %s", field);
}

static int round_trip(struct track_client *c, Track__V1__Request *rq, int want,
                      Track__V1__Response **out, struct track_err *err)
{
    int rc = cl_read(c, rq, out, err);
    if (rc)
        return rc;
    if ((int)(*out)->result_case != want) {
        track__v1__response__free_unpacked(*out, NULL);
        *out = NULL;
        return cl_fail(err, TRACK_E_INTERNAL, "unexpected reply from trackd (result %d)", want);
    }
    return 0;
}

static int set_lifecycle(struct track_client *c, const char *run, int deleted, int *changed,
                         struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LifecycleSet ls = TRACK__V1__LIFECYCLE_SET__INIT;
    Track__V1__Response *rs = NULL;
    int rc;

    if (changed)
        *changed = 0;
    if (!run || !*run)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "run: required");
    ls.run = wire_str(run);
    ls.deleted = deleted;
    rq.op_case = TRACK__V1__REQUEST__OP_LIFECYCLE_SET;
    rq.lifecycle_set = &ls;
    rc = round_trip(c, &rq, TRACK__V1__RESPONSE__RESULT_LIFECYCLE_SET, &rs, err);
    if (rc)
        return rc;
    if (!rs->lifecycle_set)
        rc = malformed(err, "lifecycle_set");
    else if (changed)
        *changed = rs->lifecycle_set->changed;
    track__v1__response__free_unpacked(rs, NULL);
    return rc;
}

int track_run_delete(struct track_client *c, const char *run, int *changed, struct track_err *err)
{
    return set_lifecycle(c, run, 1, changed, err);
}

int track_run_restore(struct track_client *c, const char *run, int *changed, struct track_err *err)
{
    return set_lifecycle(c, run, 0, changed, err);
}

/* ---- gc -------------------------------------------------------------------------- */

int track_gc(struct track_client *c, int dry_run, int64_t grace_ms, struct track_gc_report *rep,
             struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Gc g = TRACK__V1__GC__INIT;
    Track__V1__Response *rs = NULL;
    struct track_gc_run *runs = NULL;
    uint8_t(*digests)[32] = NULL;
    int saved = c->timeout_ms, rc;

    memset(rep, 0, sizeof *rep);
    if (grace_ms < 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "grace: must not be negative");
    g.dry_run = dry_run;
    g.grace_ms = grace_ms;
    rq.op_case = TRACK__V1__REQUEST__OP_GC;
    rq.gc = &g;
    /* gc works in short transactions for as long as it needs */
    if (c->timeout_ms < TRACK_GC_TIMEOUT_MS)
        c->timeout_ms = TRACK_GC_TIMEOUT_MS;
    rc = round_trip(c, &rq, TRACK__V1__RESPONSE__RESULT_GC, &rs, err);
    c->timeout_ms = saved;
    if (rc)
        return rc;
    Track__V1__GcResult *r = rs->gc;
    if (!r) {
        rc = malformed(err, "gc");
        goto fail;
    }
    runs = calloc(r->n_runs + 1, sizeof *runs);
    digests = calloc(r->n_blob_digests + 1, sizeof *digests);
    if (!runs || !digests) {
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < r->n_runs; i++) {
        const Track__V1__GcRun *m = r->runs[i];
        if (!m || m->run_id.len != 16 || !m->name) {
            rc = malformed(err, "gc.runs");
            goto fail;
        }
        memcpy(runs[i].id.b, m->run_id.data, 16);
        runs[i].name = m->name;
        runs[i].deleted_ms = m->deleted_ms;
        runs[i].bytes = m->bytes;
    }
    for (size_t i = 0; i < r->n_blob_digests; i++) {
        if (r->blob_digests[i].len != 32) {
            rc = malformed(err, "gc.blob_digests");
            goto fail;
        }
        memcpy(digests[i], r->blob_digests[i].data, 32);
    }
    rep->dry_run = r->dry_run;
    rep->runs = r->runs_count;
    rep->run_bytes = r->run_bytes;
    rep->blobs = r->blobs_count;
    rep->blob_bytes = r->blob_bytes;
    rep->blobs_kept = r->blobs_kept;
    rep->rows_removed = r->rows_removed;
    rep->transactions = r->transactions;
    rep->run_list = runs;
    rep->n_run_list = r->n_runs;
    rep->blob_digests = (const uint8_t(*)[32])digests;
    rep->n_blob_digests = r->n_blob_digests;
    rep->priv_ = rs;
    return 0;
fail:
    free(runs);
    free(digests);
    track__v1__response__free_unpacked(rs, NULL);
    return rc;
}

void track_gc_report_free(struct track_gc_report *rep)
{
    if (!rep)
        return;
    free((void *)rep->run_list);
    free((void *)rep->blob_digests);
    if (rep->priv_)
        track__v1__response__free_unpacked(rep->priv_, NULL);
    memset(rep, 0, sizeof *rep);
}

/* ---- lineage ------------------------------------------------------------------------ */

static int lineage_run(const Track__V1__LineageRun *m, struct track_lineage_run *out,
                       struct track_err *err)
{
    if (!m || m->run_id.len != 16 || !m->name || !m->experiment)
        return malformed(err, "lineage run");
    memcpy(out->id.b, m->run_id.data, 16);
    out->name = m->name;
    out->experiment = m->experiment;
    out->status = (int)m->status;
    out->deleted = m->deleted;
    out->start_ms = m->start_ms;
    return 0;
}

int track_lineage_get(struct track_client *c, const char *run, struct track_lineage *out,
                      struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__Lineage q = TRACK__V1__LINEAGE__INIT;
    Track__V1__Response *rs = NULL;
    struct track_lineage_run *anc = NULL, *kids = NULL;
    struct track_lineage_artifact *arts = NULL;
    struct track_lineage_version *vers = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    if (!run || !*run)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "run: required");
    q.run = wire_str(run);
    rq.op_case = TRACK__V1__REQUEST__OP_LINEAGE;
    rq.lineage = &q;
    rc = round_trip(c, &rq, TRACK__V1__RESPONSE__RESULT_LINEAGE, &rs, err);
    if (rc)
        return rc;
    Track__V1__LineageResult *r = rs->lineage;
    if (!r) {
        rc = malformed(err, "lineage");
        goto fail;
    }
    anc = calloc(r->n_ancestors + 1, sizeof *anc);
    kids = calloc(r->n_children + 1, sizeof *kids);
    arts = calloc(r->n_artifacts + 1, sizeof *arts);
    vers = calloc(r->n_model_versions + 1, sizeof *vers);
    if (!anc || !kids || !arts || !vers) {
        rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        goto fail;
    }
    if ((rc = lineage_run(r->run, &out->run, err)) != 0)
        goto fail;
    for (size_t i = 0; i < r->n_ancestors; i++)
        if ((rc = lineage_run(r->ancestors[i], &anc[i], err)) != 0)
            goto fail;
    for (size_t i = 0; i < r->n_children; i++)
        if ((rc = lineage_run(r->children[i], &kids[i], err)) != 0)
            goto fail;
    for (size_t i = 0; i < r->n_artifacts; i++) {
        const Track__V1__LineageArtifact *m = r->artifacts[i];
        if (!m || !m->path || m->digest.len != 32) {
            rc = malformed(err, "lineage.artifacts");
            goto fail;
        }
        arts[i].path = m->path;
        memcpy(arts[i].digest, m->digest.data, 32);
        arts[i].size = m->size;
    }
    for (size_t i = 0; i < r->n_model_versions; i++) {
        const Track__V1__LineageModelVersion *m = r->model_versions[i];
        if (!m || !m->model || !m->path || m->digest.len != 32) {
            rc = malformed(err, "lineage.model_versions");
            goto fail;
        }
        vers[i].model = m->model;
        vers[i].version = m->version;
        vers[i].path = m->path;
        memcpy(vers[i].digest, m->digest.data, 32);
    }
    out->ancestors = anc;
    out->n_ancestors = r->n_ancestors;
    out->children = kids;
    out->n_children = r->n_children;
    out->git_commit = r->git_commit ? r->git_commit : "";
    out->command = r->command ? r->command : "";
    out->artifacts = arts;
    out->n_artifacts = r->n_artifacts;
    out->model_versions = vers;
    out->n_model_versions = r->n_model_versions;
    out->truncated = r->truncated;
    out->priv_ = rs;
    return 0;
fail:
    free(anc);
    free(kids);
    free(arts);
    free(vers);
    track__v1__response__free_unpacked(rs, NULL);
    memset(out, 0, sizeof *out);
    return rc;
}

void track_lineage_free(struct track_lineage *l)
{
    if (!l)
        return;
    free((void *)l->ancestors);
    free((void *)l->children);
    free((void *)l->artifacts);
    free((void *)l->model_versions);
    if (l->priv_)
        track__v1__response__free_unpacked(l->priv_, NULL);
    memset(l, 0, sizeof *l);
}
