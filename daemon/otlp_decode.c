/*
 * otlp_decode.c: an OTLP ExportTraceServiceRequest, protobuf or JSON, into
 * track Spans grouped by experiment and run (otlp.h). What it reads and
 * how is described in otlp.c's header and README "Traces"; this file only
 * decodes, so the fuzz target (tests/fuzz/fuzz_otlp.c) runs it alone.
 */
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "otlp_trace.pb-c.h"

/* ---- one export's spans, grouped by where they go ---------------------------------- */
void otlp_reject(struct otlp_export *x, int64_t n, const char *fmt, ...)
{
    x->rejected += n;
    if (!x->why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->why, sizeof(x->why), fmt, ap);
        va_end(ap);
    }
}

static void span_free(Track__V1__Span *s)
{
    if (!s)
        return;
    free(s->trace_id.data);
    free(s->name);
    free(s->status_message);
    free(s->model);
    free(s->operation);
    free(s->attributes);
    free(s);
}

static struct otlp_group *group_of(struct otlp_export *x, const char *exp, const char *run)
{
    for (size_t i = 0; i < x->n_groups; i++)
        if (strcmp(x->groups[i].experiment, exp) == 0 && strcmp(x->groups[i].run, run) == 0)
            return &x->groups[i];
    struct otlp_group *g = realloc(x->groups, (x->n_groups + 1) * sizeof(*g));
    if (!g)
        return NULL;
    x->groups = g;
    g = &x->groups[x->n_groups++];
    memset(g, 0, sizeof(*g));
    snprintf(g->experiment, sizeof(g->experiment), "%s", exp);
    snprintf(g->run, sizeof(g->run), "%s", run);
    return g;
}

/* ---- attribute values as JSON --------------------------------------------------------- */
/* A string cut to OTLP_MAX_VALUE bytes on a UTF-8 boundary; *cut its length when cut. */
static json_t *text_value(const char *s, size_t n, size_t *cut)
{
    *cut = 0;
    if (n > OTLP_MAX_VALUE) {
        *cut = n;
        n = OTLP_MAX_VALUE;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    json_t *j = json_stringn(s, n);
    if (!j) { /* not UTF-8: kept as its bytes' hex, marked */
        char *hex = malloc(n * 2 + 1);
        if (!hex)
            return NULL;
        sodium_bin2hex(hex, n * 2 + 1, (const unsigned char *)s, n);
        j = json_pack("{s:s}", "@hex", hex);
        free(hex);
    }
    return j;
}

static json_t *pb_value(const Otlp__AnyValue *v, size_t *cut, int depth)
{
    *cut = 0;
    if (!v || depth > OTLP_MAX_DEPTH)
        return json_null();
    switch (v->value_case) {
    case OTLP__ANY_VALUE__VALUE_STRING_VALUE:
        return text_value(v->string_value, strlen(v->string_value), cut);
    case OTLP__ANY_VALUE__VALUE_BOOL_VALUE:
        return json_boolean(v->bool_value);
    case OTLP__ANY_VALUE__VALUE_INT_VALUE:
        return json_integer(v->int_value);
    case OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return http_json_double(v->double_value);
    case OTLP__ANY_VALUE__VALUE_BYTES_VALUE: {
        size_t n =
            v->bytes_value.len > OTLP_MAX_VALUE / 2 ? OTLP_MAX_VALUE / 2 : v->bytes_value.len;
        char *b64 = malloc(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL));
        if (!b64)
            return NULL;
        sodium_bin2base64(b64, sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL),
                          v->bytes_value.data, n, sodium_base64_VARIANT_ORIGINAL);
        if (n < v->bytes_value.len)
            *cut = v->bytes_value.len;
        json_t *j = json_string(b64);
        free(b64);
        return j;
    }
    case OTLP__ANY_VALUE__VALUE_ARRAY_VALUE: {
        json_t *a = json_array();
        size_t c;
        for (size_t i = 0;
             a && v->array_value && i < v->array_value->n_values && i < OTLP_MAX_ATTRS; i++)
            json_array_append_new(a, pb_value(v->array_value->values[i], &c, depth + 1));
        return a;
    }
    case OTLP__ANY_VALUE__VALUE_KVLIST_VALUE: {
        json_t *o = json_object();
        size_t c;
        for (size_t i = 0;
             o && v->kvlist_value && i < v->kvlist_value->n_values && i < OTLP_MAX_ATTRS; i++) {
            const Otlp__KeyValue *kv = v->kvlist_value->values[i];
            json_t *e = pb_value(kv->value, &c, depth + 1);
            if (e)
                json_object_set_new(o, kv->key, e); /* takes e, also when it fails */
        }
        return o;
    }
    default:
        return json_null();
    }
}

/* OTLP JSON's AnyValue ({"stringValue": ...} and the others) */
static json_t *js_value(const json_t *v, size_t *cut, int depth)
{
    json_t *x;
    *cut = 0;
    if (!json_is_object(v) || depth > OTLP_MAX_DEPTH)
        return json_null();
    if ((x = json_object_get(v, "stringValue")) && json_is_string(x))
        return text_value(json_string_value(x), json_string_length(x), cut);
    if ((x = json_object_get(v, "boolValue")))
        return json_boolean(json_is_true(x));
    if ((x = json_object_get(v, "intValue"))) {
        int64_t n;
        return http_json_i64(x, &n) ? json_null() : json_integer(n);
    }
    if ((x = json_object_get(v, "doubleValue"))) {
        if (json_is_number(x))
            return http_json_double(json_number_value(x));
        if (json_is_string(x)) /* "NaN", "Infinity" in proto3's JSON */
            return json_string(json_string_value(x));
        return json_null();
    }
    if ((x = json_object_get(v, "bytesValue")) && json_is_string(x))
        return text_value(json_string_value(x), json_string_length(x), cut);
    if ((x = json_object_get(v, "arrayValue"))) {
        json_t *a = json_array(), *vals = json_object_get(x, "values"), *e;
        size_t i, c;
        json_array_foreach(vals, i, e)
        {
            if (!a || i >= OTLP_MAX_ATTRS)
                break;
            json_array_append_new(a, js_value(e, &c, depth + 1));
        }
        return a;
    }
    if ((x = json_object_get(v, "kvlistValue"))) {
        json_t *o = json_object(), *vals = json_object_get(x, "values"), *e;
        size_t i, c;
        json_array_foreach(vals, i, e)
        {
            const char *k = json_string_value(json_object_get(e, "key"));
            if (!o || !k || i >= OTLP_MAX_ATTRS)
                continue;
            json_object_set_new(o, k, js_value(json_object_get(e, "value"), &c, depth + 1));
        }
        return o;
    }
    return json_null();
}

/* Adds one attribute to attrs within the caps. */
static void attr_add(json_t *attrs, const char *key, json_t *val, size_t cut)
{
    if (!val)
        return;
    if (!key || !key[0]) {
        json_decref(val);
        return;
    }
    if (json_object_size(attrs) >= OTLP_MAX_ATTRS + 2) {
        json_t *d = json_object_get(attrs, "@dropped_attributes");
        json_object_set_new(attrs, "@dropped_attributes",
                            json_integer(d ? json_integer_value(d) + 1 : 1));
        json_decref(val);
        return;
    }
    if (json_object_set_new(attrs, key, val))
        return;
    if (cut) {
        json_t *t = json_object_get(attrs, "@truncated");
        if (!t) {
            t = json_object();
            json_object_set_new(attrs, "@truncated", t);
        }
        if (t)
            json_object_set_new(t, key, json_integer((json_int_t)cut));
    }
}

static json_t *pb_attrs(Otlp__KeyValue **kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        size_t cut = 0;
        json_t *v = pb_value(kv[i]->value, &cut, 0); /* before cut is read */
        attr_add(o, kv[i]->key, v, cut);
    }
    return o;
}

static json_t *js_attrs(const json_t *list)
{
    json_t *o = json_object(), *e;
    size_t i;
    json_array_foreach(list, i, e)
    {
        const char *k = json_string_value(json_object_get(e, "key"));
        size_t cut = 0;
        if (o && k) {
            json_t *v = js_value(json_object_get(e, "value"), &cut, 0); /* before cut is read */
            attr_add(o, k, v, cut);
        }
    }
    return o;
}

/* ---- what the conventions say ---------------------------------------------------------- */
static const char *attr_text(const json_t *attrs, const char *const *keys)
{
    for (; *keys; keys++) {
        const char *s = json_string_value(json_object_get(attrs, *keys));
        if (s && s[0])
            return s;
    }
    return NULL;
}

/* The first of keys that holds a number (or a numeric string): 1 and *out. */
static int attr_num(const json_t *attrs, const char *const *keys, double *out)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(attrs, *keys);
        if (json_is_number(v)) {
            *out = json_number_value(v);
            return 1;
        }
        if (json_is_string(v)) {
            char *end;
            double d = strtod(json_string_value(v), &end);
            if (end != json_string_value(v) && !*end) {
                *out = d;
                return 1;
            }
        }
    }
    return 0;
}

static const char *const k_model[] = {"gen_ai.response.model", "gen_ai.request.model",
                                      "llm.model_name", NULL};
static const char *const k_op[] = {"gen_ai.operation.name", "openinference.span.kind", NULL};
static const char *const k_in[] = {"gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                                   "llm.token_count.prompt", NULL};
static const char *const k_out[] = {"gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                                    "llm.token_count.completion", NULL};
static const char *const k_total[] = {"llm.token_count.total", "gen_ai.usage.total_tokens", NULL};
static const char *const k_cost[] = {"llm.cost.total", "gen_ai.usage.cost", NULL};
static const char *const k_cost_in[] = {"llm.cost.prompt", NULL};
static const char *const k_cost_out[] = {"llm.cost.completion", NULL};
static const char *const k_run[] = {"track.run_id", NULL};

static int64_t count_of(double d)
{
    return isfinite(d) && d >= 0 && d < 9e15 ? (int64_t)d : 0;
}

static char *dup_capped(const char *s, size_t cap)
{
    size_t n = s ? strlen(s) : 0;
    if (n > cap)
        n = cap;
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s ? s : "", n);
        c[n] = '\0';
    }
    return c;
}

/* One decoded span (ids already checked) into its group; takes attrs and events. */
static void add_span(struct otlp_export *x, const char *exp, const char *res_run,
                     const uint8_t tid[16], const uint8_t sid[8], const uint8_t *parent,
                     const char *name, int kind, int64_t start, int64_t end, int status,
                     const char *status_msg, json_t *attrs, json_t *events)
{
    char run[33] = "";
    double d;
    Track__V1__Span *s = calloc(1, sizeof(*s));
    uint8_t *ids = malloc(32);

    if (!s || !ids || !attrs) {
        free(s);
        free(ids);
        json_decref(attrs);
        json_decref(events);
        x->oom = 1;
        return;
    }
    track__v1__span__init(s);
    memcpy(ids, tid, 16);
    memcpy(ids + 16, sid, 8);
    s->trace_id = (ProtobufCBinaryData){.len = 16, .data = ids};
    s->span_id = (ProtobufCBinaryData){.len = 8, .data = ids + 16};
    if (parent) {
        memcpy(ids + 24, parent, 8);
        s->parent_span_id = (ProtobufCBinaryData){.len = 8, .data = ids + 24};
    }
    const char *span_run = attr_text(attrs, k_run);
    snprintf(run, sizeof(run), "%s", span_run ? span_run : res_run ? res_run : "");
    s->kind = kind;
    s->start_ns = start;
    s->end_ns = end < start ? start : end;
    s->status = status >= 0 && status <= 2 ? status : 0;
    s->model = dup_capped(attr_text(attrs, k_model), STORE_TRACE_MODEL_MAX);
    s->operation = dup_capped(attr_text(attrs, k_op), LIMIT_KEY_BYTES);
    if (attr_num(attrs, k_in, &d))
        s->tokens_in = count_of(d);
    if (attr_num(attrs, k_out, &d))
        s->tokens_out = count_of(d);
    s->tokens_total = attr_num(attrs, k_total, &d) ? count_of(d) : s->tokens_in + s->tokens_out;
    if (attr_num(attrs, k_cost, &d))
        s->cost = isfinite(d) && d >= 0 ? d : 0;
    else {
        double a = 0, b = 0;
        int ha = attr_num(attrs, k_cost_in, &a), hb = attr_num(attrs, k_cost_out, &b);
        if ((ha || hb) && isfinite(a + b) && a + b >= 0)
            s->cost = a + b;
    }
    if (events && json_array_size(events))
        json_object_set_new(attrs, "@events", events);
    else
        json_decref(events);
    char *text = json_dumps(attrs, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(attrs);
    /* the caps hold it under 64 KiB but for many long array values: those go */
    if (text && strlen(text) > (60u << 10)) {
        free(text);
        text = dup_capped("{\"@dropped_attributes\":\"over 60 KiB in all\"}", 100);
    }
    s->attributes = text;
    s->name = dup_capped(name, LIMIT_VALUE_BYTES);
    s->status_message = dup_capped(status_msg, 4096);
    if (!s->model || !s->operation || !s->attributes || !s->name || !s->status_message) {
        span_free(s);
        x->oom = 1;
        return;
    }
    if (run[0]) {
        uint8_t rid[16];
        if (strlen(run) != 32 || wire_unhex(run, rid)) {
            otlp_reject(x, 1, "span \"%.60s\": track.run_id \"%.40s\" is not a run id (32 hex)",
                        s->name, run);
            span_free(s);
            return;
        }
    }
    struct otlp_group *g = group_of(x, exp, run);
    if (!g || (g->n == g->cap &&
               !(g->spans =
                     realloc(g->spans, (g->cap = g->cap ? g->cap * 2 : 64) * sizeof(*g->spans))))) {
        span_free(s);
        x->oom = 1;
        return;
    }
    g->spans[g->n++] = s;
}

/* The experiment of a resource: the header, track.experiment, service.name. */
static const char *experiment_of(const struct otlp_export *x, const json_t *res)
{
    static const char *const keys[] = {"track.experiment", "service.name", NULL};
    const char *e = x->header_experiment;
    if (!e || !e[0])
        e = attr_text(res, keys);
    return e && e[0] ? e : "Default";
}

/* ---- the two encodings -------------------------------------------------------------- */
static int decode_pb(struct otlp_export *x, const uint8_t *buf, size_t len)
{
    Otlp__ExportTraceServiceRequest *rq =
        otlp__export_trace_service_request__unpack(NULL, len, buf);
    if (!rq)
        return http_fail(x->r, 400, "INVALID_PARAMETER_VALUE",
                         "body is not an OTLP ExportTraceServiceRequest (protobuf)");
    for (size_t i = 0; i < rq->n_resource_spans && !x->oom; i++) {
        const Otlp__ResourceSpans *rs = rq->resource_spans[i];
        json_t *res = rs->resource ? pb_attrs(rs->resource->attributes, rs->resource->n_attributes)
                                   : json_object();
        static const char *const rk[] = {"track.run_id", NULL};
        const char *exp = experiment_of(x, res), *rrun = attr_text(res, rk);
        for (size_t j = 0; j < rs->n_scope_spans && !x->oom; j++) {
            const Otlp__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans && !x->oom; k++) {
                const Otlp__Span *sp = ss->spans[k];
                if (sp->trace_id.len != 16 || sp->span_id.len != 8 ||
                    (sp->parent_span_id.len != 0 && sp->parent_span_id.len != 8)) {
                    otlp_reject(x, 1, "span \"%.60s\": trace_id must be 16 bytes, span_id 8",
                                sp->name);
                    continue;
                }
                if (sp->start_time_unix_nano > INT64_MAX || sp->end_time_unix_nano > INT64_MAX) {
                    otlp_reject(x, 1, "span \"%.60s\": a time past 2262", sp->name);
                    continue;
                }
                json_t *events = json_array();
                for (size_t e = 0; events && e < sp->n_events && e < OTLP_MAX_EVENTS; e++)
                    json_array_append_new(
                        events, json_pack("{s:s, s:I, s:o}", "name", sp->events[e]->name, "time_ns",
                                          (json_int_t)sp->events[e]->time_unix_nano, "attributes",
                                          pb_attrs(sp->events[e]->attributes,
                                                   sp->events[e]->n_attributes)));
                add_span(x, exp, rrun, sp->trace_id.data, sp->span_id.data,
                         sp->parent_span_id.len ? sp->parent_span_id.data : NULL, sp->name,
                         sp->kind, (int64_t)sp->start_time_unix_nano,
                         (int64_t)sp->end_time_unix_nano, sp->status ? sp->status->code : 0,
                         sp->status ? sp->status->message : "",
                         pb_attrs(sp->attributes, sp->n_attributes), events);
            }
        }
        json_decref(res);
    }
    otlp__export_trace_service_request__free_unpacked(rq, NULL);
    return 0;
}

/* A hex id of n bytes (or "" for none when optional); 1 ok, 0 bad, -1 absent. */
static int hex_id(const json_t *v, uint8_t *out, size_t n)
{
    const char *s = json_string_value(v);
    size_t got = 0;
    if (!s || !s[0])
        return -1;
    if (strlen(s) != n * 2 || sodium_hex2bin(out, n, s, n * 2, NULL, &got, NULL) || got != n)
        return 0;
    return 1;
}

static int decode_json(struct otlp_export *x, const char *buf, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je), *rss, *rs;
    size_t i;

    if (!root || !json_is_object(root)) {
        json_decref(root);
        return http_fail(x->r, 400, "INVALID_PARAMETER_VALUE",
                         "body is not an OTLP ExportTraceServiceRequest in JSON: %s",
                         root ? "not an object" : je.text);
    }
    rss = json_object_get(root, "resourceSpans");
    json_array_foreach(rss, i, rs)
    {
        json_t *res = js_attrs(json_object_get(json_object_get(rs, "resource"), "attributes"));
        static const char *const rk[] = {"track.run_id", NULL};
        const char *exp = experiment_of(x, res), *rrun = attr_text(res, rk);
        json_t *sss = json_object_get(rs, "scopeSpans"), *ss;
        size_t j;
        json_array_foreach(sss, j, ss)
        {
            json_t *spans = json_object_get(ss, "spans"), *sp;
            size_t k;
            json_array_foreach(spans, k, sp)
            {
                uint8_t tid[16], sid[8], pid[8];
                const char *name = json_string_value(json_object_get(sp, "name"));
                int p = hex_id(json_object_get(sp, "parentSpanId"), pid, 8);
                int64_t start = 0, end = 0, kind = 0, code = 0;
                json_t *kv = json_object_get(sp, "kind"), *st = json_object_get(sp, "status");
                if (x->oom)
                    break;
                if (hex_id(json_object_get(sp, "traceId"), tid, 16) != 1 ||
                    hex_id(json_object_get(sp, "spanId"), sid, 8) != 1 || p == 0) {
                    otlp_reject(x, 1, "span \"%.60s\": traceId must be 32 hex digits, spanId 16",
                                name ? name : "");
                    continue;
                }
                if (http_json_i64(json_object_get(sp, "startTimeUnixNano"), &start) ||
                    http_json_i64(json_object_get(sp, "endTimeUnixNano"), &end) || start < 0) {
                    otlp_reject(x, 1,
                                "span \"%.60s\": startTimeUnixNano and endTimeUnixNano must be "
                                "integers (nanoseconds)",
                                name ? name : "");
                    continue;
                }
                if (kv)
                    http_json_i64(kv, &kind);
                if (st)
                    http_json_i64(json_object_get(st, "code"), &code);
                json_t *events = json_array(), *ev;
                size_t e;
                json_array_foreach(json_object_get(sp, "events"), e, ev)
                {
                    int64_t t = 0;
                    if (!events || e >= OTLP_MAX_EVENTS)
                        break;
                    http_json_i64(json_object_get(ev, "timeUnixNano"), &t);
                    const char *en = json_string_value(json_object_get(ev, "name"));
                    json_array_append_new(events,
                                          json_pack("{s:s, s:I, s:o}", "name", en ? en : "",
                                                    "time_ns", (json_int_t)t, "attributes",
                                                    js_attrs(json_object_get(ev, "attributes"))));
                }
                const char *msg = st ? json_string_value(json_object_get(st, "message")) : NULL;
                add_span(x, exp, rrun, tid, sid, p == 1 ? pid : NULL, name ? name : "",
                         (int)(kind >= 0 && kind <= 5 ? kind : 0), start, end,
                         (int)(code >= 0 && code <= 2 ? code : 0), msg ? msg : "",
                         js_attrs(json_object_get(sp, "attributes")), events);
            }
        }
        json_decref(res);
    }
    json_decref(root);
    return 0;
}

void otlp_export_free(struct otlp_export *x)
{
    for (size_t g = 0; g < x->n_groups; g++) {
        for (size_t i = 0; i < x->groups[g].n; i++)
            span_free(x->groups[g].spans[i]);
        free(x->groups[g].spans);
    }
    free(x->groups);
}

int otlp_decode(struct otlp_export *x, int proto, const char *body, size_t len)
{
    int rc = proto ? decode_pb(x, (const uint8_t *)body, len) : decode_json(x, body, len);
    if (rc == 0 && x->oom)
        rc = http_fail(x->r, 503, "TEMPORARILY_UNAVAILABLE", "trackd out of memory");
    return rc;
}
