/*
 * mlflow_batch.c: the metric points of MLflow's log-batch and log-metric
 * into one LogBatch (ml_send_batch), and the fast path of runs/log-batch
 * (ml_log_batch_fast).
 *
 * The fast path. A training loop's log-batch is a run id and up to 1,000
 * metrics of four fields each; built as a JSON tree it costs ~3 us a point
 * (a value object per field, strtod, malloc and free), ten times the rest of
 * the request. So the body of that one shape is read in place: a strict
 * scanner of just this grammar,
 *
 *   { "run_id"|"run_uuid": STRING, "metrics": [ { "key": STRING,
 *     "value": NUMBER|"NaN"|"Infinity"|"-Infinity", "timestamp": INT,
 *     "step": INT }, ... ] }
 *
 * in any order of members, strings without escapes, ints as numbers or
 * digit strings. A first pass only looks; anything else (params, tags, an
 * escape, a duplicate, a syntax error, over the limits) answers "not
 * handled" and the route parses the body as JSON as before, so every error
 * is the one the general path gives. Only a body the scanner took whole is
 * then cut in place (NULs after its keys) and sent.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

/* ---- points into one LogBatch ------------------------------------------------------- */
static uint64_t key_hash(const char *k)
{
    uint64_t h = 1469598103934665603ull;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ull;
    return h;
}

int ml_send_batch(struct http_req *r, const char *run, const struct ml_point *pts, size_t n,
                  Track__V1__KeyValue **params, size_t np, Track__V1__KeyValue **tags, size_t nt,
                  const char *delete_tag, const char *rename)
{
    size_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    Track__V1__MetricSeries *ser = calloc(n ? n : 1, sizeof(*ser));
    Track__V1__MetricSeries **sp = calloc(n ? n : 1, sizeof(*sp));
    size_t *of = calloc(n ? n : 1, sizeof(size_t)), *table = malloc(slots * sizeof(size_t));
    size_t *fill = calloc(n ? n : 1, sizeof(size_t));
    int64_t *steps = malloc((n ? n : 1) * sizeof(int64_t));
    int64_t *times = malloc((n ? n : 1) * sizeof(int64_t));
    double *values = malloc((n ? n : 1) * sizeof(double));
    size_t ns = 0;
    int ret = -1;

    if (!ser || !sp || !of || !table || !fill || !steps || !times || !values) {
        http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
        goto out;
    }
    memset(table, 0xff, slots * sizeof(size_t));
    /* one series per key, in the order the keys first came */
    for (size_t i = 0; i < n; i++) {
        if (pts[i].ts < 0 || pts[i].step < 0) {
            http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                      "metrics[%zu] (%s): timestamp and step must not be negative", i, pts[i].key);
            goto out;
        }
        size_t at = (size_t)key_hash(pts[i].key) & (slots - 1);
        while (table[at] != (size_t)-1 && strcmp(ser[table[at]].key, pts[i].key) != 0)
            at = (at + 1) & (slots - 1);
        if (table[at] == (size_t)-1) {
            track__v1__metric_series__init(&ser[ns]);
            ser[ns].key = (char *)pts[i].key;
            sp[ns] = &ser[ns];
            table[at] = ns++;
        }
        of[i] = table[at];
        ser[of[i]].n_steps++;
    }
    /* each series' points laid out together, in their order */
    size_t base = 0;
    for (size_t s = 0; s < ns; s++) {
        fill[s] = base;
        ser[s].steps = steps + base;
        ser[s].times_ms = times + base;
        ser[s].values = values + base;
        ser[s].n_times_ms = ser[s].n_values = ser[s].n_steps;
        base += ser[s].n_steps;
    }
    int64_t now = wire_now_ms();
    for (size_t i = 0; i < n; i++) {
        size_t pos = fill[of[i]]++;
        steps[pos] = pts[i].step;
        times[pos] = pts[i].ts ? pts[i].ts : now;
        values[pos] = pts[i].value;
    }
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__LogBatch q = TRACK__V1__LOG_BATCH__INIT;
    Track__V1__Response *rs;
    char *del[1] = {(char *)delete_tag};
    q.run = (char *)run;
    q.params = params;
    q.n_params = np;
    q.tags = tags;
    q.n_tags = nt;
    q.metrics = sp;
    q.n_metrics = ns;
    if (delete_tag) {
        q.delete_tags = del;
        q.n_delete_tags = 1;
    }
    q.rename = (char *)(rename ? rename : "");
    rq.op_case = TRACK__V1__REQUEST__OP_LOG_BATCH;
    rq.log_batch = &q;
    if (http_call(r, &rq, &rs) == 0) {
        http_response_free(rs);
        ret = 0;
    }
out:
    free(ser), free(sp), free(of), free(table), free(fill), free(steps), free(times), free(values);
    return ret;
}

/* ---- the fast path ------------------------------------------------------------------ */
struct scan {
    const char *p, *end;
};

static void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int lit(struct scan *s, char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

/* A string without escapes or control bytes: [*at, *at + *len) */
static int str(struct scan *s, const char **at, size_t *len)
{
    if (!lit(s, '"'))
        return 0;
    const char *b = s->p;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\' || (unsigned char)*s->p < 0x20)
            return 0;
        s->p++;
    }
    if (s->p >= s->end)
        return 0;
    *at = b;
    *len = (size_t)(s->p - b);
    s->p++;
    return 1;
}

static int is(const char *at, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(at, word, len) == 0;
}

/* A JSON number (its grammar exactly) into *d; *integral when it has no
 * fraction or exponent. */
static int number(struct scan *s, double *d, int *integral)
{
    char buf[64];
    ws(s);
    const char *b = s->p;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end || *s->p < '0' || *s->p > '9')
        return 0;
    if (*s->p == '0')
        s->p++;
    else
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    *integral = 1;
    if (s->p < s->end && *s->p == '.') {
        *integral = 0;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        *integral = 0;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
            s->p++;
    }
    size_t n = (size_t)(s->p - b);
    if (n >= sizeof(buf))
        return 0; /* the general path says what is wrong with it */
    memcpy(buf, b, n);
    buf[n] = '\0';
    errno = 0;
    *d = strtod(buf, NULL);
    return errno == 0 && isfinite(*d);
}

/* An int64 as a JSON integer or a string of digits. */
static int int64(struct scan *s, int64_t *v)
{
    double d;
    int integral;
    const char *at;
    size_t len;

    ws(s);
    if (s->p < s->end && *s->p == '"') {
        if (!str(s, &at, &len) || !len || len > 18)
            return 0;
        int64_t n = 0;
        for (size_t i = 0; i < len; i++) {
            if (at[i] < '0' || at[i] > '9')
                return 0;
            n = n * 10 + (at[i] - '0');
        }
        *v = n;
        return 1;
    }
    if (!number(s, &d, &integral) || !integral || d < -9e15 || d > 9e15)
        return 0;
    *v = (int64_t)d;
    return 1;
}

/* One metric object into *pt (its key not yet NUL-terminated: *klen). */
static int metric(struct scan *s, struct ml_point *pt, const char **kat, size_t *klen)
{
    int seen = 0; /* 1 key, 2 value, 4 timestamp, 8 step */
    if (!lit(s, '{'))
        return 0;
    if (lit(s, '}'))
        return 0; /* no key: the general path names it */
    do {
        const char *f, *v;
        size_t fl, vl;
        if (!str(s, &f, &fl) || !lit(s, ':'))
            return 0;
        if (is(f, fl, "key") && !(seen & 1)) {
            if (!str(s, kat, klen) || !*klen || *klen > LIMIT_KEY_BYTES)
                return 0;
            for (size_t i = 0; i < *klen; i++)
                if ((unsigned char)(*kat)[i] >= 0x80)
                    return 0; /* UTF-8 is checked on the general path */
            seen |= 1;
        } else if (is(f, fl, "value") && !(seen & 2)) {
            int integral;
            ws(s);
            if (s->p < s->end && *s->p == '"') {
                if (!str(s, &v, &vl))
                    return 0;
                if (is(v, vl, "NaN"))
                    pt->value = NAN;
                else if (is(v, vl, "Infinity"))
                    pt->value = INFINITY;
                else if (is(v, vl, "-Infinity"))
                    pt->value = -INFINITY;
                else
                    return 0;
            } else if (!number(s, &pt->value, &integral))
                return 0;
            seen |= 2;
        } else if (is(f, fl, "timestamp") && !(seen & 4)) {
            if (!int64(s, &pt->ts))
                return 0;
            seen |= 4;
        } else if (is(f, fl, "step") && !(seen & 8)) {
            if (!int64(s, &pt->step))
                return 0;
            seen |= 8;
        } else
            return 0;
    } while (lit(s, ','));
    return lit(s, '}') && (seen & 3) == 3;
}

int ml_log_batch_fast(struct http_req *r)
{
    struct scan s = {.p = r->body, .end = r->body + r->body_len};
    struct ml_point *pts = NULL;
    const char **kat = NULL, *run = NULL;
    size_t *klen = NULL, n = 0, rl = 0;
    int seen_run = 0, seen_metrics = 0, ok = 0;

    if (!lit(&s, '{'))
        return 0;
    do {
        const char *f;
        size_t fl;
        if (!str(&s, &f, &fl) || !lit(&s, ':'))
            goto out;
        if ((is(f, fl, "run_id") || is(f, fl, "run_uuid")) &&
            !(seen_run & (is(f, fl, "run_id") ? 1 : 2))) {
            const char *v;
            size_t vl;
            seen_run |= is(f, fl, "run_id") ? 1 : 2;
            if (!str(&s, &v, &vl))
                goto out;
            if (run && (vl != rl || memcmp(v, run, vl) != 0))
                goto out; /* two ids that differ: the general path decides */
            run = v;
            rl = vl;
        } else if (is(f, fl, "metrics") && !seen_metrics) {
            seen_metrics = 1;
            if (!lit(&s, '['))
                goto out;
            pts = malloc(ML_BATCH_METRICS * sizeof(*pts));
            kat = malloc(ML_BATCH_METRICS * sizeof(*kat));
            klen = malloc(ML_BATCH_METRICS * sizeof(*klen));
            if (!pts || !kat || !klen)
                goto out;
            if (!lit(&s, ']')) {
                do {
                    if (n == ML_BATCH_METRICS)
                        goto out; /* over the limit: the general path's error */
                    pts[n] = (struct ml_point){0};
                    if (!metric(&s, &pts[n], &kat[n], &klen[n]))
                        goto out;
                    n++;
                } while (lit(&s, ','));
                if (!lit(&s, ']'))
                    goto out;
            }
        } else
            goto out;
    } while (lit(&s, ','));
    if (!lit(&s, '}'))
        goto out;
    ws(&s);
    if (s.p != s.end || !run || rl != 32)
        goto out;
    /* taken whole: cut the strings in place (each is followed by its quote) */
    ((char *)run)[rl] = '\0';
    for (size_t i = 0; i < n; i++) {
        ((char *)kat[i])[klen[i]] = '\0';
        pts[i].key = kat[i];
    }
    ok = 1;
    uint8_t id[16];
    if (wire_unhex(run, id))
        http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                  "Invalid run ID: '%.64s' (expected 32 hex digits)", run);
    else {
        size_t i;
        for (i = 0; i < n; i++)
            if (ml_check_key(r, "metric", pts[i].key))
                break;
        if (i == n && ml_send_batch(r, run, pts, n, NULL, 0, NULL, 0, NULL, "") == 0)
            http_ok(r, json_object());
    }
out:
    free(pts);
    free(kat);
    free(klen);
    return ok;
}
