/*
 * otlp.c: OTLP/HTTP's trace export at POST /v1/traces (DESIGN.md "Traces",
 * README "Traces"). Takes what the OpenTelemetry specification says an
 * exporter sends: ExportTraceServiceRequest as application/x-protobuf
 * (proto/otlp/, our own copy of the messages) or as application/json (hex
 * ids, lowerCamelCase keys, 64-bit integers as strings or numbers, enums as
 * integers, unknown fields ignored), optionally gzip'd; the decompressed
 * body is bounded (OTLP_MAX_BODY, 413 past it). It answers in the request's
 * content type: 200 with partial_success naming the spans it refused, 400
 * for a body it cannot read.
 *
 * Each span becomes a track Span: its ids, times, status, and what its
 * attributes say in either convention in use, OpenTelemetry's GenAI
 * (gen_ai.*) or OpenInference (llm.*, openinference.span.kind), lifted into
 * columns (model, operation, tokens, cost); the other attributes and the
 * events are kept as one JSON object within the caps (OTLP_MAX_ATTRS,
 * OTLP_MAX_VALUE: a longer value is cut and "@truncated" records its
 * length; OTLP_MAX_EVENTS). A trace goes to the experiment the
 * x-track-experiment header names, else the resource's track.experiment,
 * else its service.name; track.run_id (on the span or the resource) ties
 * it to a run. The spans are sent to the loop as SpanBatch requests of at
 * most OTLP_BATCH_SPANS, through the same dispatch as everything else.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "otlp.h"
#include "otlp_trace.pb-c.h"

/* ---- the route ---------------------------------------------------------------------- */
/* Inflates a gzip body into *out (malloc'd, at most OTLP_MAX_BODY); -1 r failed. */
static int gunzip(struct http_req *r, const char *in, size_t n, char **out, size_t *out_len)
{
    z_stream z = {0};
    size_t cap = n * 4 + 4096, len = 0;
    char *buf;
    int rc;

    if (cap > OTLP_MAX_BODY)
        cap = OTLP_MAX_BODY;
    if (!(buf = malloc(cap)))
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "zlib failed to start");
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    for (;;) {
        z.next_out = (Bytef *)buf + len;
        z.avail_out = (uInt)(cap - len);
        rc = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            inflateEnd(&z);
            free(buf);
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                             "Content-Encoding gzip: the body does not inflate (%s)",
                             z.msg ? z.msg : "corrupt");
        }
        if (z.avail_out == 0) {
            if (cap >= OTLP_MAX_BODY) {
                inflateEnd(&z);
                free(buf);
                return http_fail(r, 413, "INVALID_PARAMETER_VALUE",
                                 "body inflates past %u bytes (the limit)", OTLP_MAX_BODY);
            }
            cap = cap * 2 > OTLP_MAX_BODY ? OTLP_MAX_BODY : cap * 2;
            char *b = realloc(buf, cap);
            if (!b) {
                inflateEnd(&z);
                free(buf);
                return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
            }
            buf = b;
        } else if (z.avail_in == 0) {
            inflateEnd(&z);
            free(buf);
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                             "Content-Encoding gzip: the body ends inside the stream");
        }
    }
    inflateEnd(&z);
    *out = buf;
    *out_len = len;
    return 0;
}

/* Sends every group's spans; the spans a group's batch could not store are
 * rejected with the daemon's reason, a transport failure fails r (503). */
static int send_groups(struct otlp_export *x)
{
    for (size_t g = 0; g < x->n_groups; g++) {
        struct otlp_group *gr = &x->groups[g];
        for (size_t at = 0; at < gr->n; at += OTLP_BATCH_SPANS) {
            size_t n = gr->n - at < OTLP_BATCH_SPANS ? gr->n - at : OTLP_BATCH_SPANS;
            Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
            Track__V1__SpanBatch q = TRACK__V1__SPAN_BATCH__INIT;
            Track__V1__Response *rs;
            q.experiment = gr->experiment;
            q.run = gr->run;
            q.spans = gr->spans + at;
            q.n_spans = n;
            rq.op_case = TRACK__V1__REQUEST__OP_SPAN_BATCH;
            rq.span_batch = &q;
            if (http_call(x->r, &rq, &rs) == 0) {
                http_response_free(rs);
                continue;
            }
            if (x->r->status >= 500)
                return -1; /* the exporter retries the whole export */
            otlp_reject(x, (int64_t)n, "%s", x->r->message);
            x->r->error_code = NULL;
            x->r->status = 0;
        }
    }
    return 0;
}

/* The answer in the request's encoding (status 200, or an error's). */
static int answer(struct http_req *r, int proto, int status, const char *msg, int64_t rejected)
{
    void *buf = NULL;
    size_t len = 0;

    if (proto) {
        if (status == 200) {
            Otlp__ExportTraceServiceResponse rs = OTLP__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
            Otlp__ExportTracePartialSuccess ps = OTLP__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
            if (rejected || (msg && msg[0])) {
                ps.rejected_spans = rejected;
                ps.error_message = (char *)(msg ? msg : "");
                rs.partial_success = &ps;
            }
            len = otlp__export_trace_service_response__get_packed_size(&rs);
            if ((buf = malloc(len ? len : 1)))
                otlp__export_trace_service_response__pack(&rs, buf);
        } else {
            Otlp__RpcStatus st = OTLP__RPC_STATUS__INIT;
            st.code = status == 413   ? 8
                      : status >= 500 ? 14
                                      : 3; /* RESOURCE_EXHAUSTED, UNAVAILABLE,
                                              INVALID_ARGUMENT */
            st.message = (char *)msg;
            len = otlp__rpc_status__get_packed_size(&st);
            if ((buf = malloc(len ? len : 1)))
                otlp__rpc_status__pack(&st, buf);
        }
    } else {
        json_t *j;
        if (status != 200)
            j = json_pack("{s:i, s:s}", "code",
                          status == 413   ? 8
                          : status >= 500 ? 14
                                          : 3,
                          "message", msg);
        else if (rejected || (msg && msg[0])) {
            char n[24];
            snprintf(n, sizeof(n), "%lld", (long long)rejected);
            j = json_pack("{s:{s:s, s:s}}", "partialSuccess", "rejectedSpans", n, "errorMessage",
                          msg ? msg : "");
        } else
            j = json_object();
        buf = j ? json_dumps(j, JSON_COMPACT) : NULL;
        len = buf ? strlen(buf) : 0;
        json_decref(j);
    }
    if (!buf)
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    r->raw = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!r->raw) {
        free(buf);
        return http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
    }
    MHD_add_response_header(r->raw, "Content-Type",
                            proto ? "application/x-protobuf" : "application/json");
    r->raw_status = status;
    r->error_code = NULL;
    return 0;
}

static int traces(struct http_req *r)
{
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
    const char *ce = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Encoding");
    struct otlp_export x = {.r = r};
    char *plain = NULL;
    const char *body = r->body;
    size_t len = r->body_len;
    int proto;

    if (ct && strncasecmp(ct, "application/x-protobuf", 22) == 0)
        proto = 1;
    else if (ct && strncasecmp(ct, "application/json", 16) == 0)
        proto = 0;
    else {
        http_fail(r, 415, "INVALID_PARAMETER_VALUE",
                  "Content-Type %.80s: OTLP/HTTP takes application/x-protobuf or "
                  "application/json",
                  ct ? ct : "(none)");
        return answer(r, 0, 415, r->message, 0);
    }
    x.header_experiment =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "x-track-experiment");
    if (ce && strcasecmp(ce, "gzip") == 0) {
        if (gunzip(r, body, len, &plain, &len))
            return answer(r, proto, r->status, r->message, 0);
        body = plain;
    } else if (ce && ce[0] && strcasecmp(ce, "identity") != 0) {
        http_fail(r, 415, "INVALID_PARAMETER_VALUE",
                  "Content-Encoding %.40s: this server takes gzip or none", ce);
        return answer(r, proto, 415, r->message, 0);
    } else if (len > OTLP_MAX_BODY) {
        http_fail(r, 413, "INVALID_PARAMETER_VALUE", "body over %u bytes", OTLP_MAX_BODY);
        return answer(r, proto, 413, r->message, 0);
    }
    int rc = otlp_decode(&x, proto, body, len);
    free(plain);
    if (rc == 0)
        rc = send_groups(&x);
    otlp_export_free(&x);
    if (rc)
        return answer(r, proto, r->status, r->message, 0);
    return answer(r, proto, 200, x.rejected ? x.why : "", x.rejected);
}

const struct http_route otlp_routes[] = {
    {"POST", "traces", traces, NULL, 1, 0, 1},
    {NULL, NULL, NULL, NULL, 0, 0, 0},
};
