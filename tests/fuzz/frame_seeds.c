/*
 * frame_seeds.c: writes a seed corpus for fuzz_frame into a directory: one
 * packed track.v1.Request per operation, valid enough to reach storage
 * (they name fuzz_frame's run by the prefix "0001"). Generated at test time
 * so no binary files live in the repository.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

    return rc ? 1 : 0;
}
