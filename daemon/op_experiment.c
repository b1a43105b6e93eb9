/*
 * op_experiment.c: the handlers of experiments: ExperimentCreate and
 * ExperimentList (paged by the reply's byte budget, op.h). The table is
 * dispatch.c's; runs of an experiment are op_run.c's.
 */
#include "op.h"

#include "track_limits.h"

int srv_op_experiment_create(struct srv_call *call)
{
    const Track__V1__ExperimentCreate *q = call->rq->experiment_create;
    struct store_err err = {0};
    char msg[400];
    int64_t id;
    int rc;

    if (limits_check_name("experiment name", q->name, 0, msg, sizeof(msg)))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    rc = store_experiment_create(call->st, q->name, wire_now_ms(), &id, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    Track__V1__Experiment *e = srv_alloc(&call->arena, sizeof(*e));
    if (!e)
        return srv_op_oom(call);
    track__v1__experiment__init(e);
    e->id = id;
    e->name = q->name;
    e->created_ms = wire_now_ms();
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_EXPERIMENT;
    call->rs->experiment = e;
    return 0;
}

struct exp_list {
    struct srv_call *call;
    Track__V1__Experiment **items;
    size_t n, cap;
    struct page *pg; /* NULL: no bound */
    int64_t skip, seen;
};

static int exp_collect(void *ctx, const struct store_experiment *x)
{
    struct exp_list *l = ctx;
    struct srv_arena *a = &l->call->arena;

    if (l->seen++ < l->skip)
        return 0;
    if (srv_op_grow(a, (void ***)&l->items, l->n, &l->cap))
        return -1;
    Track__V1__Experiment *e = srv_alloc(a, sizeof(*e));
    if (!e)
        return -1;
    track__v1__experiment__init(e);
    e->id = x->id;
    e->name = srv_strdup(a, x->name);
    if (!e->name)
        return -1;
    e->archived = x->archived != 0;
    e->created_ms = x->created_ms;
    e->run_count = x->run_count;
    if (l->pg) {
        size_t cost = srv_op_item_cost(track__v1__experiment__get_packed_size(e));
        if (cost > l->pg->left) {
            l->pg->full = 1;
            return 1;
        }
        l->pg->left -= cost;
    }
    l->items[l->n++] = e;
    return 0;
}

int srv_op_experiment_list(struct srv_call *call)
{
    struct page_cursor cur;
    struct page pg = srv_op_page_new(0);
    struct exp_list l = {.call = call, .pg = &pg};
    struct store_err err = {0};

    if (srv_op_token_decode(call, call->rq->experiment_list->page_token, &cur))
        return -1;
    l.skip = cur.run_index; /* experiments of earlier pages */
    struct store_viewer vb; /* only what the caller may read (authz.c) */
    int rc = store_experiment_list_as(call->st, srv_viewer(call, &vb), exp_collect, &l, &err);
    if (rc < 0)
        return err.msg[0] ? srv_op_fail_store(call, rc, &err) : srv_op_oom(call);
    Track__V1__ExperimentListResult *r = srv_alloc(&call->arena, sizeof(*r));
    if (!r)
        return srv_op_oom(call);
    track__v1__experiment_list_result__init(r);
    r->experiments = l.items;
    r->n_experiments = l.n;
    pg.section = 0;
    pg.key[0] = '\0';
    if (pg.full &&
        srv_op_token_encode(call, cur.run_index + (int64_t)l.n, &pg, &r->next_page_token))
        return -1;
    call->rs->result_case = TRACK__V1__RESPONSE__RESULT_EXPERIMENT_LIST;
    call->rs->experiment_list = r;
    return 0;
}
