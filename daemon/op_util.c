/*
 * op_util.c: what the handlers of op_<noun>.c share: failing a call with a
 * code and a message (srv_op_fail and its shorthands), resolving a run id
 * or prefix, checking and storing params and tags, growing lists in the
 * call's arena, and the byte budget and page tokens of paged replies (see
 * op.h). The operation table is dispatch.c's; the handlers are the nouns'.
 */
#include "op.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "track_limits.h"

__attribute__((format(printf, 3, 4))) int srv_op_fail(struct srv_call *call, int code,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->msg, sizeof(call->msg), fmt, ap);
    va_end(ap);
    call->code = code;
    return -1;
}

int srv_op_fail_store(struct srv_call *call, int rc, const struct store_err *err)
{
    return srv_op_fail(call, srv_code_from_store(rc), "%s",
                       err->msg[0] ? err->msg : "storage error");
}

int srv_op_oom(struct srv_call *call)
{
    return srv_op_fail(call, TRACK__V1__CODE__RESOURCE_EXHAUSTED, "daemon out of memory");
}

/* Resolves `run` (32 hex or a unique prefix of 4+) named by `field`. */
int srv_op_resolve_run(struct srv_call *call, const char *field, const char *run, uint8_t id[16])
{
    struct store_err err = {0};
    int rc;

    if (!run || !*run)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s: required", field);
    if (!wire_is_run_prefix(run))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "%s: \"%.40s\" is not a run id (4 to 32 hex characters)", field, run);
    if (strlen(run) == 32 && wire_unhex(run, id) == 0)
        return 0;
    rc = store_run_resolve(call->st, run, id, &err);
    if (rc)
        return srv_op_fail_store(call, rc, &err);
    return 0;
}

int srv_op_check_kvs(struct srv_call *call, const char *what, Track__V1__KeyValue **kv, size_t n)
{
    char field[64], msg[400];

    if (n > LIMIT_BATCH_KV)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s: %zu entries, limit is %d",
                           what, n, LIMIT_BATCH_KV);
    for (size_t i = 0; i < n; i++) {
        snprintf(field, sizeof(field), "%s key", what);
        if (limits_check_key(field, kv[i]->key, msg, sizeof(msg)))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
        snprintf(field, sizeof(field), "%s \"%s\" value", what, kv[i]->key);
        if (limits_check_value(field, kv[i]->value, msg, sizeof(msg)))
            return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT, "%s", msg);
    }
    return 0;
}

int srv_op_put_kvs(struct srv_call *call, const uint8_t run[16], int params,
                   Track__V1__KeyValue **kv, size_t n)
{
    struct store_err err = {0};
    for (size_t i = 0; i < n; i++) {
        int rc = params ? store_param_put(call->st, run, kv[i]->key, kv[i]->value, &err)
                        : store_tag_put(call->st, run, kv[i]->key, kv[i]->value, &err);
        if (rc)
            return srv_op_fail_store(call, rc, &err);
    }
    return 0;
}

/* Makes room for one more pointer in a list built in the arena (doubling,
 * so a list of n costs log n allocations). */
int srv_op_grow(struct srv_arena *a, void ***items, size_t n, size_t *cap)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void **bigger = srv_alloc(a, ncap * sizeof(*bigger));
    if (!bigger)
        return -1;
    if (n)
        memcpy(bigger, *items, n * sizeof(*bigger));
    *items = bigger;
    *cap = ncap;
    return 0;
}

static size_t varint_len(size_t n)
{
    size_t len = 1;
    while (n >= 0x80) {
        n >>= 7;
        len++;
    }
    return len;
}

/* What a sub-message of packed size n costs inside a repeated field. */
size_t srv_op_item_cost(size_t n)
{
    return 1 + varint_len(n) + n;
}

int srv_op_token_decode(struct srv_call *call, ProtobufCBinaryData t, struct page_cursor *c)
{
    memset(c, 0, sizeof(*c));
    if (t.len == 0)
        return 0;
    size_t head = t.len >= 2 && t.data[1] == '2' ? TOKEN_HEAD + TOKEN_SEEK : TOKEN_HEAD;
    if (t.len < head || t.len > head + LIMIT_KEY_BYTES || t.data[0] != 'P' ||
        (t.data[1] != '1' && t.data[1] != '2') || t.data[10] > 2 ||
        (head > TOKEN_HEAD && t.data[TOKEN_HEAD + 16] > 1) ||
        memchr(t.data + head, 0, t.len - head))
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "page_token: not a token this server gave (%zu bytes)", t.len);
    if (head > TOKEN_HEAD) {
        uint64_t s = 0, r = 0;
        for (int i = 0; i < 8; i++) {
            s |= (uint64_t)t.data[TOKEN_HEAD + i] << (8 * i);
            r |= (uint64_t)t.data[TOKEN_HEAD + 8 + i] << (8 * i);
        }
        c->seek = 1;
        c->seek_start_ms = (int64_t)s;
        c->seek_row = (int64_t)r;
        c->seek_inclusive = t.data[TOKEN_HEAD + 16];
    }
    uint64_t idx = 0;
    for (int i = 0; i < 8; i++)
        idx |= (uint64_t)t.data[2 + i] << (8 * i);
    if (idx > (uint64_t)INT32_MAX)
        return srv_op_fail(call, TRACK__V1__CODE__INVALID_ARGUMENT,
                           "page_token: run index %llu out of range", (unsigned long long)idx);
    c->run_index = (int64_t)idx;
    c->section = t.data[10];
    memcpy(c->key, t.data + head, t.len - head);
    c->key[t.len - head] = '\0';
    return 0;
}

int srv_op_token_encode_seek(struct srv_call *call, int64_t run_index, const struct page *pg,
                             const struct page_cursor *seek, ProtobufCBinaryData *t)
{
    size_t klen = strlen(pg->key), head = seek ? TOKEN_HEAD + TOKEN_SEEK : TOKEN_HEAD;
    uint8_t *p = srv_alloc(&call->arena, head + klen);
    if (!p)
        return srv_op_oom(call);
    p[0] = 'P';
    p[1] = seek ? '2' : '1';
    for (int i = 0; i < 8; i++)
        p[2 + i] = (uint8_t)((uint64_t)run_index >> (8 * i));
    p[10] = (uint8_t)pg->section;
    if (seek) {
        for (int i = 0; i < 8; i++) {
            p[TOKEN_HEAD + i] = (uint8_t)((uint64_t)seek->seek_start_ms >> (8 * i));
            p[TOKEN_HEAD + 8 + i] = (uint8_t)((uint64_t)seek->seek_row >> (8 * i));
        }
        p[TOKEN_HEAD + 16] = (uint8_t)(seek->seek_inclusive ? 1 : 0);
    }
    memcpy(p + head, pg->key, klen);
    t->data = p;
    t->len = head + klen;
    return 0;
}

int srv_op_token_encode(struct srv_call *call, int64_t run_index, const struct page *pg,
                        ProtobufCBinaryData *t)
{
    return srv_op_token_encode_seek(call, run_index, pg, NULL, t);
}

struct page srv_op_page_new(size_t used)
{
    struct page pg = {0};
    pg.left = REPLY_PAGE_BYTES - REPLY_SLACK - (used < REPLY_PAGE_BYTES / 2 ? used : 0);
    return pg;
}
