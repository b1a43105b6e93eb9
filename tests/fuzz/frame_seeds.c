/*
 * frame_seeds.c: writes a seed corpus for fuzz_frame into a directory: one
 * packed track.v1.Request per operation, valid enough to reach storage
 * (they name fuzz_frame's run by the prefix "0001"), then sequences of
 * frames in fuzz_frame's sequence format ("TSEQ", then each frame as a 2-byte
 * big-endian length and its bytes; an empty upload_id stands for the one the
 * sequence's last ArtifactBegin answered) that upload an artifact on a fresh
 * store (begin, chunks, commit) and go on to read, verify, register, alias,
 * tag, fetch and trace it, so the fuzzer starts past the commit path.
 * Generated at test time so no binary files live in the repository.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "wire.h"

static uint8_t rid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static int n_written;

static int emit(const char *dir, Track__V1__Request *rq)
{
    char path[1024];
    size_t len = track__v1__request__get_packed_size(rq);
    uint8_t *buf = malloc(len + 1);
    if (!buf)
        return -1;
    track__v1__request__pack(rq, buf);
    snprintf(path, sizeof(path), "%s/seed-%02d", dir, n_written++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len) {
        free(buf);
        return -1;
    }
    fclose(f);
    free(buf);
    return 0;
}

/* ---- sequences (fuzz_frame.c's format) ------------------------------------ */

#define SEQ_BYTES 8192

struct seq {
    uint8_t buf[SEQ_BYTES];
    size_t len;
    int bad;
};

static void seq_start(struct seq *q)
{
    memcpy(q->buf, "TSEQ", 4);
    q->len = 4;
    q->bad = 0;
}

static void seq_add(struct seq *q, Track__V1__Request *rq)
{
    size_t len = track__v1__request__get_packed_size(rq);
    if (len > 0xffff || q->len + 2 + len > sizeof(q->buf)) {
        q->bad = 1;
        return;
    }
    q->buf[q->len++] = (uint8_t)(len >> 8);
    q->buf[q->len++] = (uint8_t)len;
    track__v1__request__pack(rq, q->buf + q->len);
    q->len += len;
}

static int seq_emit(const char *dir, const struct seq *q)
{
    char path[1024];
    if (q->bad)
        return -1;
    snprintf(path, sizeof(path), "%s/seed-%02d", dir, n_written++);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int rc = fwrite(q->buf, 1, q->len, f) == q->len ? 0 : -1;
    return fclose(f) || rc ? -1 : 0;
}

/* ---- artifact and model requests ------------------------------------------ */

static char run_prefix[] = "0001";
static char empty[] = "";
static char zero_id[] = "00000000000000000000000000000000";

struct art {
    Track__V1__Request rq;
    Track__V1__ArtifactBegin begin;
    Track__V1__ArtifactChunk chunk;
    Track__V1__ArtifactCommit commit;
    uint8_t digest[32];
};

static void art_init(struct art *a, const char *content, size_t n)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactBegin b = TRACK__V1__ARTIFACT_BEGIN__INIT;
    Track__V1__ArtifactChunk c = TRACK__V1__ARTIFACT_CHUNK__INIT;
    Track__V1__ArtifactCommit m = TRACK__V1__ARTIFACT_COMMIT__INIT;
    a->rq = rq;
    a->rq.request_id.data = rid;
    a->rq.request_id.len = 16;
    a->begin = b;
    a->chunk = c;
    a->commit = m;
    crypto_generichash(a->digest, sizeof(a->digest), (const uint8_t *)content, n, NULL, 0);
    a->begin.run = run_prefix;
    a->begin.size = (int64_t)n;
    a->begin.digest.data = a->digest;
    a->begin.digest.len = sizeof(a->digest);
    a->chunk.upload_id = empty;
    a->commit.upload_id = empty;
    a->commit.run = run_prefix;
}

static Track__V1__Request *art_begin(struct art *a, char *path)
{
    a->begin.path = path;
    a->rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_BEGIN;
    a->rq.artifact_begin = &a->begin;
    return &a->rq;
}

static Track__V1__Request *art_chunk(struct art *a, const char *data, size_t off, size_t n)
{
    a->chunk.offset = (int64_t)off;
    a->chunk.data.data = (uint8_t *)(uintptr_t)(data + off);
    a->chunk.data.len = n;
    a->rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_CHUNK;
    a->rq.artifact_chunk = &a->chunk;
    return &a->rq;
}

static Track__V1__Request *art_commit(struct art *a, char *path)
{
    a->commit.path = path;
    a->rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_COMMIT;
    a->rq.artifact_commit = &a->commit;
    return &a->rq;
}

/* The artifact, model, lifecycle and lineage requests, one of each kind,
 * filled in `r` (which names them by op_case). */
struct reqs {
    Track__V1__Request rq;
    Track__V1__ArtifactList list;
    Track__V1__ArtifactGet get;
    Track__V1__ArtifactRead read;
    Track__V1__ArtifactVerify verify;
    Track__V1__ModelRegister reg;
    Track__V1__KeyValue tag;
    Track__V1__KeyValue *tags[1];
    Track__V1__ModelList mlist;
    Track__V1__ModelShow show;
    Track__V1__ModelAlias alias;
    Track__V1__ModelTag mtag;
    Track__V1__ModelGet mget;
    Track__V1__LifecycleSet life;
    Track__V1__Gc gc;
    Track__V1__Lineage lineage;
};

static void reqs_init(struct reqs *r, uint8_t digest[32], char *path)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactList l = TRACK__V1__ARTIFACT_LIST__INIT;
    Track__V1__ArtifactGet g = TRACK__V1__ARTIFACT_GET__INIT;
    Track__V1__ArtifactRead rd = TRACK__V1__ARTIFACT_READ__INIT;
    Track__V1__ArtifactVerify v = TRACK__V1__ARTIFACT_VERIFY__INIT;
    Track__V1__ModelRegister mr = TRACK__V1__MODEL_REGISTER__INIT;
    Track__V1__KeyValue kv = TRACK__V1__KEY_VALUE__INIT;
    Track__V1__ModelList ml = TRACK__V1__MODEL_LIST__INIT;
    Track__V1__ModelShow ms = TRACK__V1__MODEL_SHOW__INIT;
    Track__V1__ModelAlias ma = TRACK__V1__MODEL_ALIAS__INIT;
    Track__V1__ModelTag mt = TRACK__V1__MODEL_TAG__INIT;
    Track__V1__ModelGet mg = TRACK__V1__MODEL_GET__INIT;
    Track__V1__LifecycleSet ls = TRACK__V1__LIFECYCLE_SET__INIT;
    Track__V1__Gc gc = TRACK__V1__GC__INIT;
    Track__V1__Lineage ln = TRACK__V1__LINEAGE__INIT;

    r->rq = rq;
    r->rq.request_id.data = rid;
    r->rq.request_id.len = 16;
    r->list = l;
    r->list.run = run_prefix;
    r->list.prefix = wire_str("model/");
    r->get = g;
    r->get.run = run_prefix;
    r->get.path = path;
    r->read = rd;
    r->read.digest.data = digest;
    r->read.digest.len = 32;
    r->read.offset = 1;
    r->read.max_bytes = 3;
    r->verify = v;
    r->verify.run = run_prefix;
    r->reg = mr;
    r->reg.name = wire_str("iris");
    r->reg.run = run_prefix;
    r->reg.path = path;
    r->reg.description = wire_str("best iris run");
    r->tag = kv;
    r->tag.key = wire_str("framework");
    r->tag.value = wire_str("numpy");
    r->tags[0] = &r->tag;
    r->reg.tags = r->tags;
    r->reg.n_tags = 1;
    r->mlist = ml;
    r->show = ms;
    r->show.name = wire_str("iris");
    r->alias = ma;
    r->alias.name = wire_str("iris");
    r->alias.alias = wire_str("production");
    r->alias.version = wire_str("1");
    r->alias.user = wire_str("fuzz");
    r->mtag = mt;
    r->mtag.target = wire_str("iris@production");
    r->mtag.key = wire_str("stage");
    r->mtag.value = wire_str("prod");
    r->mget = mg;
    r->mget.ref = wire_str("iris@production");
    r->life = ls;
    r->life.run = run_prefix;
    r->life.deleted = 1;
    r->gc = gc;
    r->gc.dry_run = 1;
    r->lineage = ln;
    r->lineage.run = run_prefix;
}

static Track__V1__Request *req(struct reqs *r, Track__V1__Request__OpCase op)
{
    r->rq.op_case = op;
    switch (op) {
    case TRACK__V1__REQUEST__OP_ARTIFACT_LIST:
        r->rq.artifact_list = &r->list;
        break;
    case TRACK__V1__REQUEST__OP_ARTIFACT_GET:
        r->rq.artifact_get = &r->get;
        break;
    case TRACK__V1__REQUEST__OP_ARTIFACT_READ:
        r->rq.artifact_read = &r->read;
        break;
    case TRACK__V1__REQUEST__OP_ARTIFACT_VERIFY:
        r->rq.artifact_verify = &r->verify;
        break;
    case TRACK__V1__REQUEST__OP_MODEL_REGISTER:
        r->rq.model_register = &r->reg;
        break;
    case TRACK__V1__REQUEST__OP_MODEL_LIST:
        r->rq.model_list = &r->mlist;
        break;
    case TRACK__V1__REQUEST__OP_MODEL_SHOW:
        r->rq.model_show = &r->show;
        break;
    case TRACK__V1__REQUEST__OP_MODEL_ALIAS:
        r->rq.model_alias = &r->alias;
        break;
    case TRACK__V1__REQUEST__OP_MODEL_TAG:
        r->rq.model_tag = &r->mtag;
        break;
    case TRACK__V1__REQUEST__OP_MODEL_GET:
        r->rq.model_get = &r->mget;
        break;
    case TRACK__V1__REQUEST__OP_LIFECYCLE_SET:
        r->rq.lifecycle_set = &r->life;
        break;
    case TRACK__V1__REQUEST__OP_GC:
        r->rq.gc = &r->gc;
        break;
    case TRACK__V1__REQUEST__OP_LINEAGE:
        r->rq.lineage = &r->lineage;
        break;
    default:
        abort();
    }
    return &r->rq;
}

static const Track__V1__Request__OpCase single_ops[] = {
    TRACK__V1__REQUEST__OP_ARTIFACT_LIST,  TRACK__V1__REQUEST__OP_ARTIFACT_GET,
    TRACK__V1__REQUEST__OP_ARTIFACT_READ,  TRACK__V1__REQUEST__OP_ARTIFACT_VERIFY,
    TRACK__V1__REQUEST__OP_MODEL_REGISTER, TRACK__V1__REQUEST__OP_MODEL_LIST,
    TRACK__V1__REQUEST__OP_MODEL_SHOW,     TRACK__V1__REQUEST__OP_MODEL_ALIAS,
    TRACK__V1__REQUEST__OP_MODEL_TAG,      TRACK__V1__REQUEST__OP_MODEL_GET,
    TRACK__V1__REQUEST__OP_LIFECYCLE_SET,  TRACK__V1__REQUEST__OP_GC,
    TRACK__V1__REQUEST__OP_LINEAGE,
};

/* Single frames of every artifact, model and lifecycle op, then sequences. */
static int artifact_seeds(const char *dir)
{
    static const char hello[] = "hello", two[] = "hello, world";
    static char path[] = "model/weights.bin", path2[] = "model/copy.bin";
    struct art a, b, e;
    struct reqs r;
    struct seq q;
    int rc = 0;

    art_init(&a, hello, 5);
    reqs_init(&r, a.digest, path);
    rc |= emit(dir, art_begin(&a, path));
    a.chunk.upload_id = zero_id;
    a.commit.upload_id = zero_id;
    rc |= emit(dir, art_chunk(&a, hello, 0, 5));
    rc |= emit(dir, art_commit(&a, path));
    a.chunk.upload_id = empty;
    a.commit.upload_id = empty;
    for (size_t i = 0; i < sizeof(single_ops) / sizeof(single_ops[0]); i++)
        rc |= emit(dir, req(&r, single_ops[i]));
    r.gc.dry_run = 0;
    rc |= emit(dir, req(&r, TRACK__V1__REQUEST__OP_GC));
    r.gc.dry_run = 1;

    /* one chunk, then every read, and a second begin that dedups */
    seq_start(&q);
    seq_add(&q, art_begin(&a, path));
    seq_add(&q, art_chunk(&a, hello, 0, 5));
    seq_add(&q, art_commit(&a, path));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_ARTIFACT_LIST));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_ARTIFACT_GET));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_ARTIFACT_READ));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_ARTIFACT_VERIFY));
    seq_add(&q, art_begin(&a, path2));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_ARTIFACT_LIST));
    rc |= seq_emit(dir, &q);

    /* two chunks, a commit, a verify of every run */
    art_init(&b, two, sizeof(two) - 1);
    seq_start(&q);
    seq_add(&q, art_begin(&b, path));
    seq_add(&q, art_chunk(&b, two, 0, 5));
    seq_add(&q, art_chunk(&b, two, 5, sizeof(two) - 1 - 5));
    seq_add(&q, art_commit(&b, path));
    r.verify.run = empty;
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_ARTIFACT_VERIFY));
    r.verify.run = run_prefix;
    rc |= seq_emit(dir, &q);

    /* an empty file: sealed by the commit itself */
    art_init(&e, "", 0);
    seq_start(&q);
    seq_add(&q, art_begin(&e, path));
    seq_add(&q, art_commit(&e, path));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_ARTIFACT_GET));
    rc |= seq_emit(dir, &q);

    /* the registry on an uploaded artifact, lineage, deletion and restore */
    seq_start(&q);
    seq_add(&q, art_begin(&a, path));
    seq_add(&q, art_chunk(&a, hello, 0, 5));
    seq_add(&q, art_commit(&a, path));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_MODEL_REGISTER));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_MODEL_ALIAS));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_MODEL_TAG));
    r.mtag.target = wire_str("iris");
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_MODEL_TAG));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_MODEL_REGISTER));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_MODEL_LIST));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_MODEL_SHOW));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_MODEL_GET));
    r.mget.ref = wire_str("iris/2");
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_MODEL_GET));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_LINEAGE));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_LIFECYCLE_SET));
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_LINEAGE));
    r.life.deleted = 0;
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_LIFECYCLE_SET));
    rc |= seq_emit(dir, &q);

    /* gc before any write (its sweep runs), then an upload left uncommitted */
    seq_start(&q);
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_GC));
    r.gc.dry_run = 0;
    seq_add(&q, req(&r, TRACK__V1__REQUEST__OP_GC));
    seq_add(&q, art_begin(&b, path2));
    seq_add(&q, art_chunk(&b, two, 0, 5));
    rc |= seq_emit(dir, &q);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: frame_seeds DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    rq.request_id.data = rid;
    rq.request_id.len = 16;
    int rc = 0;

    Track__V1__Hello hello = TRACK__V1__HELLO__INIT;
    rq.op_case = TRACK__V1__REQUEST__OP_HELLO;
    rq.hello = &hello;
    rc |= emit(dir, &rq);

    Track__V1__Status status = TRACK__V1__STATUS__INIT;
    rq.op_case = TRACK__V1__REQUEST__OP_STATUS;
    rq.status = &status;
    rc |= emit(dir, &rq);

    Track__V1__ExperimentCreate ec = TRACK__V1__EXPERIMENT_CREATE__INIT;
    ec.name = wire_str("exp");
    rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_CREATE;
    rq.experiment_create = &ec;
    rc |= emit(dir, &rq);

    Track__V1__KeyValue kv = TRACK__V1__KEY_VALUE__INIT, *kvp = &kv;
    kv.key = wire_str("lr");
    kv.value = wire_str("0.1");
    uint8_t run_id[16] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    Track__V1__RunStart rs = TRACK__V1__RUN_START__INIT;
    rs.run_id.data = run_id;
    rs.run_id.len = 16;
    rs.experiment = wire_str("exp");
    rs.params = &kvp;
    rs.n_params = 1;
    rs.parent = wire_str("0001");
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_START;
    rq.run_start = &rs;
    rc |= emit(dir, &rq);

    int64_t steps[4] = {0, 1, 2, 3}, times[4] = {1000, 1100, 1200, 1300};
    double vals[4] = {0.5, 0.25, 0.125, 0.0625};
    Track__V1__MetricSeries ms = TRACK__V1__METRIC_SERIES__INIT, *msp = &ms;
    ms.key = wire_str("loss");
    ms.steps = steps;
    ms.n_steps = 4;
    ms.times_ms = times;
    ms.n_times_ms = 4;
    ms.values = vals;
    ms.n_values = 4;
    Track__V1__LogBatch lb = TRACK__V1__LOG_BATCH__INIT;
    lb.run = wire_str("0001");
    lb.metrics = &msp;
    lb.n_metrics = 1;
    lb.tags = &kvp;
    lb.n_tags = 1;
    rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
    rq.log_batch = &lb;
    rc |= emit(dir, &rq);

    Track__V1__RunEnd re = TRACK__V1__RUN_END__INIT;
    re.run = wire_str("000102030405060708090a0b0c0d0e0f");
    re.status = TRACK__V1__RUN_STATUS__FINISHED;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_END;
    rq.run_end = &re;
    rc |= emit(dir, &rq);

    Track__V1__RunGet rg = TRACK__V1__RUN_GET__INIT;
    rg.run = wire_str("0001");
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_GET;
    rq.run_get = &rg;
    rc |= emit(dir, &rq);

    char *exps[1] = {wire_str("fuzz")};
    Track__V1__RunList rl = TRACK__V1__RUN_LIST__INIT;
    rl.experiments = exps;
    rl.n_experiments = 1;
    rl.filter = wire_str("metrics.loss < 0.5 and params.lr = '0.1'");
    rl.order_by = wire_str("metrics.loss DESC");
    rl.with_details = 1;
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_LIST;
    rq.run_list = &rl;
    rc |= emit(dir, &rq);

    Track__V1__MetricHistory mh = TRACK__V1__METRIC_HISTORY__INIT;
    mh.run = wire_str("0001");
    mh.key = wire_str("loss");
    mh.after_seq = 1;
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_HISTORY;
    rq.metric_history = &mh;
    rc |= emit(dir, &rq);

    Track__V1__MetricCurve mc = TRACK__V1__METRIC_CURVE__INIT;
    mc.run = wire_str("0001");
    mc.key = wire_str("loss");
    mc.buckets = 8;
    rq.op_case = TRACK__V1__REQUEST__OP_METRIC_CURVE;
    rq.metric_curve = &mc;
    rc |= emit(dir, &rq);

    Track__V1__RunResolve rr = TRACK__V1__RUN_RESOLVE__INIT;
    rr.run = wire_str("0001");
    rq.op_case = TRACK__V1__REQUEST__OP_RUN_RESOLVE;
    rq.run_resolve = &rr;
    rc |= emit(dir, &rq);

    Track__V1__ExperimentList el = TRACK__V1__EXPERIMENT_LIST__INIT;
    rq.op_case = TRACK__V1__REQUEST__OP_EXPERIMENT_LIST;
    rq.experiment_list = &el;
    rc |= emit(dir, &rq);

    rc |= artifact_seeds(dir);
    return rc ? 1 : 0;
}
