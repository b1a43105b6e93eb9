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
 *
 * What a point costs is what the scan does per byte and per field, so: the
 * value goes through wire_json_number (proto/wire_number.c: strtod's double,
 * without strtod's multi-precision path for 17 digits), integers are read as
 * digits, field names are compared by length first, and each key is looked
 * up once in a hash table of the body's keys while scanning, so the key
 * rules (ml_check_key) run once a key, not once a point, and the series are
 * laid out from the scan's counts without grouping the points again.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "wire_number.h"

/* ---- points into one LogBatch ------------------------------------------------------- */
static uint64_t key_hash(const char *k)
{
    uint64_t h = 1469598103934665603ull;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ull;
    return h;
}

/* The series (their arrays laid out), params, tags, a tag to delete (may be
 * NULL) and a new name (NULL or "": none) as one LogBatch; -1 with r failed. */
static int send_series(struct http_req *r, const char *run, Track__V1__MetricSeries **sp, size_t ns,
                       Track__V1__KeyValue **params, size_t np, Track__V1__KeyValue **tags,
                       size_t nt, const char *delete_tag, const char *rename)
{
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
    if (http_call(r, &rq, &rs))
        return -1;
    http_response_free(rs);
    return 0;
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
    ret = send_series(r, run, sp, ns, params, np, tags, nt, delete_tag, rename);
out:
    free(ser), free(sp), free(of), free(table), free(fill), free(steps), free(times), free(values);
    return ret;
}

/* ---- the fast path ------------------------------------------------------------------ */
#define FAST_SLOTS 2048 /* > 2 * ML_BATCH_METRICS, a power of two */
#define ONES       0x0101010101010101ull
#define HIGHS      0x8080808080808080ull

struct scan {
    const char *p, *end;
};

/* One distinct key of the body, and how many points it has. */
struct fast_key {
    const char *at;
    size_t len, n;
};

/* What the scan keeps: the body's keys, each once, and the points in their
 * order (of: the key's index). slot is the keys' hash table, index + 1. */
struct fast {
    struct fast_key keys[ML_BATCH_METRICS];
    uint16_t slot[FAST_SLOTS];
    uint16_t of[ML_BATCH_METRICS];
    double value[ML_BATCH_METRICS];
    int64_t ts[ML_BATCH_METRICS], step[ML_BATCH_METRICS];
    size_t nkeys, n;
};

static inline void ws(struct scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* c next, after any white space: a body without any is the common one */
static inline int lit(struct scan *s, char c)
{
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

static inline int is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

static inline uint64_t load8(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The bytes of x (little-endian) that are '"', '\\' or below 0x20, as each
 * byte's high bit; the lowest one set is exact (borrows only run upwards). */
static inline uint64_t specials(uint64_t x)
{
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    return (((q - ONES) & ~q) | ((b - ONES) & ~b) | ((x - ONES * 0x20) & ~x)) & HIGHS;
}

/* A string without escapes or control bytes: [*at, *at + *len) */
static int str(struct scan *s, const char **at, size_t *len)
{
    if (!lit(s, '"'))
        return 0;
    const char *b = s->p, *p = b;
    for (; s->end - p >= 8; p += 8) {
        uint64_t m = specials(load8(p));
        if (m) {
            p += __builtin_ctzll(m) >> 3;
            goto found;
        }
    }
    while (p < s->end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
found:
    if (p >= s->end || *p != '"')
        return 0;
    *at = b;
    *len = (size_t)(p - b);
    s->p = p + 1;
    return 1;
}

/* A member name of a metric and its colon: 'k' key, 'v' value, 't'
 * timestamp, 's' step; 0 any other (the general path's). */
static int member(struct scan *s)
{
    if (!lit(s, '"'))
        return 0;
    const char *p = s->p;
    int m = 0;
    size_t n = 0;
    if (s->end - p >= 16) { /* the names, closing quote and colon as words */
        uint64_t x = load8(p), y = load8(p + 8);
        if ((x & 0xffffffffffull) == 0x3a2279656bull) /* key": */
            m = 'k', n = 5;
        else if ((x & 0xffffffffffffffull) == 0x3a2265756c6176ull) /* value": */
            m = 'v', n = 7;
        else if (x == 0x6d617473656d6974ull && (y & 0xffffffull) == 0x3a2270ull) /* timestamp": */
            m = 't', n = 11;
        else if ((x & 0xffffffffffffull) == 0x3a2270657473ull) /* step": */
            m = 's', n = 6;
        if (m) {
            s->p = p + n;
            return m;
        }
    }
    /* near the end, or white space before the colon */
    s->p--;
    const char *at;
    size_t len;
    if (!str(s, &at, &len) || !lit(s, ':'))
        return 0;
    if (len == 3 && memcmp(at, "key", 3) == 0)
        return 'k';
    if (len == 5 && memcmp(at, "value", 5) == 0)
        return 'v';
    if (len == 9 && memcmp(at, "timestamp", 9) == 0)
        return 't';
    if (len == 4 && memcmp(at, "step", 4) == 0)
        return 's';
    return 0;
}

/* How many of the 8 bytes of x, first to last, are ASCII digits before the
 * first that is not (0 to 8). */
static inline unsigned digit_run8(uint64_t x)
{
    /* zero where a byte is 0x30..0x39 (see wire_eight_digits) */
    uint64_t c = ((x & 0xf0f0f0f0f0f0f0f0ull) |
                  (((x + 0x0606060606060606ull) & 0xf0f0f0f0f0f0f0f0ull) >> 4)) ^
                 0x3333333333333333ull;
    /* each non-zero byte's high bit, without carries between bytes (a carry
     * out of a byte of 0xfa or more only reaches bytes after it) */
    uint64_t nz = (c | ((c & 0x7f7f7f7f7f7f7f7full) + 0x7f7f7f7f7f7f7f7full)) & HIGHS;
    return nz ? (unsigned)__builtin_ctzll(nz) >> 3 : 8;
}

/* The value of the first k (1 to 8) bytes of x, digits: moved to the end of
 * the word behind '0's. */
static inline uint64_t digits_value8(uint64_t x, unsigned k)
{
    if (k < 8)
        x = (x << (8 * (8 - k))) | (0x3030303030303030ull >> (8 * k));
    return wire_eight_digits_value(x);
}

/* Up to 16 digits at p into *n; the byte after them. */
static inline const char *digits16(const char *p, const char *end, int64_t *n)
{
    static const uint64_t pow10[9] = {1,      10,      100,      1000,     10000,
                                      100000, 1000000, 10000000, 100000000};
    const char *b = p;
    uint64_t w = 0;
    if (end - p >= 16) { /* two words: count the digits, then read them at once */
        uint64_t x = load8(p);
        unsigned k = digit_run8(x);
        if (k < 8) {
            *n = k ? (int64_t)digits_value8(x, k) : 0;
            return p + k;
        }
        uint64_t y = load8(p + 8);
        unsigned j = digit_run8(y);
        w = digits_value8(x, 8);
        if (j)
            w = w * pow10[j] + digits_value8(y, j);
        *n = (int64_t)w;
        return p + 8 + j;
    }
    for (; p < end && p - b < 16 && is_digit(*p); p++)
        w = w * 10 + (uint64_t)(*p - '0');
    *n = (int64_t)w;
    return p;
}

/* A metric's value: a JSON number, finite, as the general path reads it
 * (jansson: an integer through int64, so "-0" is 0, and one of 19 digits or
 * more is the general path's to judge; any other through strtod). */
static int value(struct scan *s, double *d)
{
    int integral;
    ws(s);
    const char *e = wire_json_number(s->p, s->end, d, &integral);
    if (!e || !isfinite(*d))
        return 0;
    if (integral) {
        const char *p = s->p + (*s->p == '-');
        int64_t n = 0;
        if (e - p > 18)
            return 0;
        for (; p < e; p++)
            n = n * 10 + (*p - '0');
        *d = (double)(*s->p == '-' ? -n : n);
    }
    s->p = e;
    return 1;
}

/* An int64 as a JSON integer of at most 9e15 (a fraction or exponent: the
 * general path's) or a string of 1 to 18 digits. */
static int int64(struct scan *s, int64_t *v)
{
    const char *at;
    size_t len;

    ws(s);
    if (s->p < s->end && *s->p == '"') {
        if (!str(s, &at, &len) || !len || len > 18)
            return 0;
        int64_t n = 0;
        for (size_t i = 0; i < len; i++) {
            if (!is_digit(at[i]))
                return 0;
            n = n * 10 + (at[i] - '0');
        }
        *v = n;
        return 1;
    }
    const char *p = s->p;
    int neg = p < s->end && *p == '-';
    p += neg;
    if (p >= s->end || !is_digit(*p))
        return 0;
    int64_t n = 0;
    if (*p == '0')
        p++;
    else
        p = digits16(p, s->end, &n);
    /* a 17th digit, "01", a fraction or an exponent */
    if (p < s->end && (is_digit(*p) || *p == '.' || *p == 'e' || *p == 'E'))
        return 0;
    if (n > 9000000000000000)
        return 0;
    *v = neg ? -n : n;
    s->p = p;
    return 1;
}

/* A hash of a key's bytes, eight at a time. */
static uint64_t bytes_hash(const char *at, size_t len)
{
    uint64_t h = len * 0x9e3779b97f4a7c15ull, w;
    for (; len >= 8; at += 8, len -= 8) {
        memcpy(&w, at, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
    }
    if (len) {
        w = 0;
        memcpy(&w, at, len);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    }
    return h ^ (h >> 32);
}

/* a[0..len) == b[0..len), both inside the body */
static inline int same_bytes(const char *a, const char *b, size_t len)
{
    if (len >= 8 && len <= 16)
        return load8(a) == load8(b) && load8(a + len - 8) == load8(b + len - 8);
    return memcmp(a, b, len) == 0;
}

static inline int same_key(const struct fast *f, size_t k, const char *at, size_t len)
{
    return f->keys[k].len == len && same_bytes(f->keys[k].at, at, len);
}

/* The index of key [at, at + len) in f->keys, added when new. */
static size_t key_index(struct fast *f, const char *at, size_t len)
{
    size_t i = (size_t)bytes_hash(at, len) & (FAST_SLOTS - 1);
    for (; f->slot[i]; i = (i + 1) & (FAST_SLOTS - 1)) {
        struct fast_key *k = &f->keys[f->slot[i] - 1];
        if (k->len == len && same_bytes(k->at, at, len))
            return f->slot[i] - 1u;
    }
    f->keys[f->nkeys] = (struct fast_key){.at = at, .len = len};
    f->slot[i] = (uint16_t)(f->nkeys + 1);
    return f->nkeys++;
}

/* One metric object into point f->n. */
static int metric(struct scan *s, struct fast *f)
{
    int seen = 0; /* 1 key, 2 value, 4 timestamp, 8 step */
    const char *kat = NULL, *v;
    size_t klen = 0, vl, i = f->n;

    f->ts[i] = f->step[i] = 0;
    if (!lit(s, '{'))
        return 0;
    do {
        switch (member(s)) {
        case 'k':
            if ((seen & 1) || !str(s, &kat, &klen))
                return 0;
            seen |= 1;
            break;
        case 'v':
            if (seen & 2)
                return 0;
            ws(s);
            if (s->p < s->end && *s->p == '"') {
                if (!str(s, &v, &vl))
                    return 0;
                if (vl == 3 && memcmp(v, "NaN", 3) == 0)
                    f->value[i] = NAN;
                else if (vl == 8 && memcmp(v, "Infinity", 8) == 0)
                    f->value[i] = INFINITY;
                else if (vl == 9 && memcmp(v, "-Infinity", 9) == 0)
                    f->value[i] = -INFINITY;
                else
                    return 0;
            } else if (!value(s, &f->value[i]))
                return 0;
            seen |= 2;
            break;
        case 't':
            if ((seen & 4) || !int64(s, &f->ts[i]))
                return 0;
            seen |= 4;
            break;
        case 's':
            if ((seen & 8) || !int64(s, &f->step[i]))
                return 0;
            seen |= 8;
            break;
        default:
            return 0; /* {}, another member: the general path names it */
        }
    } while (lit(s, ','));
    if (!lit(s, '}') || (seen & 3) != 3)
        return 0;
    /* a loop's keys come round in turn: the last two points' first */
    size_t k;
    if (i >= 1 && same_key(f, f->of[i - 1], kat, klen))
        k = f->of[i - 1];
    else if (i >= 2 && same_key(f, f->of[i - 2], kat, klen))
        k = f->of[i - 2];
    else
        k = key_index(f, kat, klen);
    f->of[i] = (uint16_t)k;
    f->keys[k].n++;
    f->n++;
    return 1;
}

/* The scanned points, checked as the general path checks them, into one
 * series per key (in the order the keys first came) and sent. */
static int send_fast(struct http_req *r, const char *run, struct fast *f)
{
    uint8_t id[16];
    size_t nk = f->nkeys, n = f->n;
    int ret = -1;

    if (wire_unhex(run, id))
        return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                         "Invalid run ID: '%.64s' (expected 32 hex digits)", run);
    /* a key once, however many points it has */
    for (size_t k = 0; k < nk; k++)
        if (ml_check_key(r, "metric", f->keys[k].at))
            return -1;
    for (size_t i = 0; i < n; i++)
        if (f->ts[i] < 0 || f->step[i] < 0)
            return http_fail(r, 400, "INVALID_PARAMETER_VALUE",
                             "metrics[%zu] (%s): timestamp and step must not be negative", i,
                             f->keys[f->of[i]].at);
    Track__V1__MetricSeries *ser = malloc((nk ? nk : 1) * sizeof(*ser));
    Track__V1__MetricSeries **sp = malloc((nk ? nk : 1) * sizeof(*sp));
    int64_t *steps = malloc((n ? n : 1) * sizeof(int64_t));
    int64_t *times = malloc((n ? n : 1) * sizeof(int64_t));
    double *values = malloc((n ? n : 1) * sizeof(double));
    size_t *fill = malloc((nk ? nk : 1) * sizeof(size_t));
    if (!ser || !sp || !steps || !times || !values || !fill) {
        http_fail(r, 503, "TEMPORARILY_UNAVAILABLE", "out of memory");
        goto out;
    }
    size_t base = 0;
    for (size_t k = 0; k < nk; k++) {
        track__v1__metric_series__init(&ser[k]);
        ser[k].key = (char *)f->keys[k].at;
        ser[k].steps = steps + base;
        ser[k].times_ms = times + base;
        ser[k].values = values + base;
        ser[k].n_steps = ser[k].n_times_ms = ser[k].n_values = f->keys[k].n;
        sp[k] = &ser[k];
        fill[k] = base;
        base += f->keys[k].n;
    }
    int64_t now = wire_now_ms();
    for (size_t i = 0; i < n; i++) {
        size_t pos = fill[f->of[i]]++;
        steps[pos] = f->step[i];
        times[pos] = f->ts[i] ? f->ts[i] : now;
        values[pos] = f->value[i];
    }
    ret = send_series(r, run, sp, nk, NULL, 0, NULL, 0, NULL, "");
out:
    free(ser), free(sp), free(steps), free(times), free(values), free(fill);
    return ret;
}

int ml_log_batch_fast(struct http_req *r)
{
    struct scan s = {.p = r->body, .end = r->body + r->body_len};
    struct fast *f = NULL;
    const char *run = NULL;
    size_t rl = 0;
    int seen_run = 0, seen_metrics = 0, ok = 0;

    if (!lit(&s, '{'))
        return 0;
    if (!(f = malloc(sizeof(*f))))
        return 0; /* the general path says it is out of memory */
    f->nkeys = f->n = 0;
    do {
        const char *at;
        size_t len;
        if (!str(&s, &at, &len) || !lit(&s, ':'))
            goto out;
        int which = len == 6 && memcmp(at, "run_id", 6) == 0     ? 1
                    : len == 8 && memcmp(at, "run_uuid", 8) == 0 ? 2
                                                                 : 0;
        if (which && !(seen_run & which)) {
            const char *v;
            size_t vl;
            seen_run |= which;
            if (!str(&s, &v, &vl))
                goto out;
            if (run && (vl != rl || memcmp(v, run, vl) != 0))
                goto out; /* two ids that differ: the general path decides */
            run = v;
            rl = vl;
        } else if (len == 7 && memcmp(at, "metrics", 7) == 0 && !seen_metrics) {
            seen_metrics = 1;
            if (!lit(&s, '['))
                goto out;
            memset(f->slot, 0, sizeof(f->slot));
            if (!lit(&s, ']')) {
                do {
                    if (f->n == ML_BATCH_METRICS)
                        goto out; /* over the limit: the general path's error */
                    if (!metric(&s, f))
                        goto out;
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
    /* a run id or key not ASCII (jansson judges its UTF-8), a key empty or
     * long: the general path's words */
    for (size_t i = 0; i < rl; i++)
        if ((unsigned char)run[i] >= 0x80)
            goto out;
    for (size_t k = 0; k < f->nkeys; k++) {
        if (!f->keys[k].len || f->keys[k].len > LIMIT_KEY_BYTES)
            goto out;
        for (size_t i = 0; i < f->keys[k].len; i++)
            if ((unsigned char)f->keys[k].at[i] >= 0x80)
                goto out;
    }
    /* taken whole: cut the strings in place (each is followed by its quote) */
    ((char *)run)[rl] = '\0';
    for (size_t k = 0; k < f->nkeys; k++)
        ((char *)f->keys[k].at)[f->keys[k].len] = '\0';
    ok = 1;
    if (send_fast(r, run, f) == 0)
        http_ok(r, json_object());
out:
    free(f);
    return ok;
}
