/*
 * feedback.c: libtrack's feedback scores (track.h "feedback"): reading a
 * value as typed, checking a score against track_limits.h as the daemon
 * will, the buffer of scores that goes out as FeedbackBatch requests
 * (flushed by count, bytes and time from track_feedback_add, and by
 * track_flush through cl_feedback_flush), and the reads: the paged listing,
 * the summaries, and an artifact's text for exports.
 *
 * A buffered score is one malloc'd block: its Track__V1__Score followed by
 * copies of its strings, so a batch is an array of pointers to them and a
 * flush frees each block once it is delivered, spooled, or refused for good.
 */
#include "internal.h"

#include <sodium.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "track_limits.h"

#define BATCH_BYTES (1u << 20) /* packed scores in one FeedbackBatch, about */

static const char *const kind_names[] = {"none", "number", "boolean", "label"};
static const char *const source_names[] = {"", "human", "llm_judge", "code"};

const char *track_score_kind_name(int kind)
{
    return kind >= 0 && kind <= 3 ? kind_names[kind] : "unknown";
}

const char *track_score_source_name(int source)
{
    return source >= 1 && source <= 3 ? source_names[source] : "unknown";
}

int track_score_source_parse(const char *s)
{
    for (int i = 1; s && i <= 3; i++)
        if (strcmp(s, source_names[i]) == 0)
            return i;
    return 0;
}

int track_feedback_parse_value(const char *text, struct track_score *s, struct track_err *err)
{
    char msg[400];
    char *end;
    int numeric = 1;

    if (!text || !*text)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "feedback value: empty");
    if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") || !strcasecmp(text, "false") ||
        !strcasecmp(text, "no")) {
        s->kind = TRACK_SCORE_BOOL;
        s->boolean = !strcasecmp(text, "true") || !strcasecmp(text, "yes");
        return 0;
    }
    /* a decimal number only: no hex, and "nan"/"inf" are numbers to refuse */
    for (const char *p = text; *p; p++)
        if (!(isdigit((unsigned char)*p) || strchr("+-.eE", *p)))
            numeric = 0;
    const char *w = text + (*text == '+' || *text == '-');
    if (!strcasecmp(w, "nan") || !strcasecmp(w, "inf") || !strcasecmp(w, "infinity"))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "feedback value: %s is not a finite number (a judgement is one)", text);
    if (numeric) {
        errno = 0;
        double v = strtod(text, &end);
        if (end != text && *end == '\0') {
            if (!isfinite(v) || errno == ERANGE)
                return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                               "feedback value: %s is not a finite number (a judgement is one)",
                               text);
            s->kind = TRACK_SCORE_NUMBER;
            s->number = v;
            return 0;
        }
    }
    if (limits_check_label("feedback label", text, msg, sizeof msg))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    s->kind = TRACK_SCORE_LABEL;
    s->label = text;
    return 0;
}

static int nonempty(const char *s)
{
    return s && *s;
}

int track_feedback_check(const struct track_score *s, struct track_err *err)
{
    char msg[400];

    if (limits_check_key("feedback name", s->name, msg, sizeof msg))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    if (s->kind < TRACK_SCORE_NONE || s->kind > TRACK_SCORE_LABEL)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "feedback kind %d: unknown", s->kind);
    if (s->kind == TRACK_SCORE_NUMBER && !isfinite(s->number))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "feedback value: %s is not a finite number (a judgement is one)",
                       isnan(s->number) ? "NaN"
                       : s->number > 0  ? "Infinity"
                                        : "-Infinity");
    if (s->kind == TRACK_SCORE_LABEL &&
        limits_check_label("feedback label", s->label, msg, sizeof msg))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    if (limits_check_feedback_text("comment", s->comment, msg, sizeof msg) ||
        limits_check_feedback_text("rationale", s->rationale, msg, sizeof msg))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    if (s->kind == TRACK_SCORE_NONE && !nonempty(s->comment))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "feedback \"%.250s\": neither a value nor a comment", s->name);
    if (nonempty(s->target) && limits_check_target("target", s->target, msg, sizeof msg))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    if (s->source < 0 || s->source > TRACK_SOURCE_CODE)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "feedback source %d: expected human, llm_judge or code", s->source);
    if (nonempty(s->by) && limits_check_name("feedback by", s->by, 0, msg, sizeof msg))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", msg);
    if (s->time_ms < 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "feedback time: negative");
    if (nonempty(s->run) && !wire_is_run_prefix(s->run))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "run: \"%.40s\" is not a run id (4 to 32 hex characters)", s->run);
    return 0;
}

/* ---- the buffer ------------------------------------------------------------------- */

static const char *who_am_i(void)
{
    const char *u = getenv("USER");
    if (u && *u)
        return u;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_name ? pw->pw_name : "";
}

/* Copies src into the block at *p, returns the copy. */
static char *put_str(char **p, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    char *d = *p;
    if (n)
        memcpy(d, src, n);
    d[n] = '\0';
    *p += n + 1;
    return d;
}

int64_t track_feedback_batches(const struct track_client *c)
{
    return c ? c->fb_batches : 0;
}

int track_feedback_add(struct track_client *c, const struct track_score *s, struct track_err *err)
{
    int on_trace = nonempty(s->trace);
    const char *run = nonempty(s->run) ? s->run : on_trace ? "" : c->has_run ? c->run_hex : NULL;
    uint8_t tid[16], sid[8];
    size_t got = 0;
    const char *by = nonempty(s->by) ? s->by : who_am_i();
    const char *label = s->kind == TRACK_SCORE_LABEL ? s->label : "";
    int rc;

    if (err)
        err->code = 0;
    if ((rc = track_feedback_check(s, err)) != 0)
        return rc;
    if (!run)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "feedback: no run given and no current run");
    if (on_trace && (strlen(s->trace) != 32 ||
                     sodium_hex2bin(tid, 16, s->trace, 32, NULL, &got, NULL) || got != 16))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "feedback trace: expected 32 hex digits");
    if (nonempty(s->span) && (!on_trace || strlen(s->span) != 16 ||
                              sodium_hex2bin(sid, 8, s->span, 16, NULL, &got, NULL) || got != 8))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "feedback span: expected 16 hex digits, with its trace");
    if (on_trace && nonempty(s->target))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "feedback: a trace or span is the target; no --target beside it");
    if (strlen(by) > LIMIT_USER_BYTES)
        by = "";
    size_t need = sizeof(Track__V1__Score) + strlen(run) + strlen(s->target ? s->target : "") +
                  strlen(s->name) + strlen(label ? label : "") +
                  strlen(s->comment ? s->comment : "") + strlen(s->rationale ? s->rationale : "") +
                  strlen(by) + 7 + 24;
    if (c->fb_n == c->fb_cap) {
        size_t cap = c->fb_cap ? c->fb_cap * 2 : 64;
        Track__V1__Score **n = realloc(c->fb, cap * sizeof(*n));
        if (!n)
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
        c->fb = n;
        c->fb_cap = cap;
    }
    Track__V1__Score *m = malloc(need);
    if (!m)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    char *p = (char *)(m + 1);
    int64_t now = wire_now_ms();
    track__v1__score__init(m);
    m->run = put_str(&p, run);
    m->target = put_str(&p, s->target);
    m->target_kind = nonempty(s->span) ? 3 : on_trace ? 2 : nonempty(s->target) ? 1 : 0;
    if (on_trace) {
        memcpy(p, tid, 16);
        m->trace_id = (ProtobufCBinaryData){.len = 16, .data = (uint8_t *)p};
        p += 16;
        if (nonempty(s->span)) {
            memcpy(p, sid, 8);
            m->span_id = (ProtobufCBinaryData){.len = 8, .data = (uint8_t *)p};
            p += 8;
        }
    }
    m->name = put_str(&p, s->name);
    m->kind = s->kind;
    m->number = s->kind == TRACK_SCORE_NUMBER ? s->number : 0;
    m->boolean = s->kind == TRACK_SCORE_BOOL && s->boolean;
    m->label = put_str(&p, label);
    m->comment = put_str(&p, s->comment);
    m->rationale = put_str(&p, s->rationale);
    m->source = s->source ? s->source : TRACK_SOURCE_HUMAN;
    m->source_id = put_str(&p, by);
    m->time_ms = s->time_ms ? s->time_ms : now;
    c->fb[c->fb_n++] = m;
    c->fb_bytes += need;
    if (c->fb_n == 1)
        c->fb_oldest_ms = now;
    if (c->fb_n >= TRACK_FEEDBACK_BATCH || c->fb_bytes >= BATCH_BYTES ||
        now - c->fb_oldest_ms >= c->flush_interval_ms || now < c->fb_oldest_ms)
        return cl_feedback_flush(c, err);
    return 0;
}

int cl_feedback_flush(struct track_client *c, struct track_err *err)
{
    size_t done = 0, len;
    int rc = 0;

    if (err)
        err->code = 0;
    while (done < c->fb_n) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__FeedbackBatch fb = TRACK__V1__FEEDBACK_BATCH__INIT;
        size_t k = 0, bytes = 0;
        while (done + k < c->fb_n && k < TRACK_FEEDBACK_BATCH && (k == 0 || bytes < BATCH_BYTES)) {
            bytes += track__v1__score__get_packed_size(c->fb[done + k]) + 4;
            k++;
        }
        fb.scores = c->fb + done;
        fb.n_scores = k;
        rq.op_case = TRACK__V1__REQUEST__OP_FEEDBACK_BATCH;
        rq.feedback_batch = &fb;
        struct track_err e2 = {0};
        int brc = cl_pack(c, &rq, &len, &e2);
        if (!brc)
            brc = cl_write(c, c->pack, len, NULL, &e2);
        if (brc == TRACK_E_UNAVAILABLE) {
            /* neither sent nor spooled: kept, in order, for the next flush */
            if (!rc) {
                rc = brc;
                if (err)
                    *err = e2;
            }
            break;
        }
        c->fb_batches++;
        for (size_t j = 0; j < k; j++)
            free(c->fb[done + j]);
        done += k;
        /* the first refusal is the one reported; later batches still go */
        if (!rc && err && (brc || e2.code))
            *err = e2;
        if (!rc)
            rc = brc;
    }
    if (done) {
        memmove(c->fb, c->fb + done, (c->fb_n - done) * sizeof(*c->fb));
        c->fb_n -= done;
    }
    c->fb_bytes = 0;
    for (size_t i = 0; i < c->fb_n; i++)
        c->fb_bytes += track__v1__score__get_packed_size(c->fb[i]);
    if (c->fb_n)
        c->fb_oldest_ms = wire_now_ms();
    return rc;
}

void cl_feedback_free(struct track_client *c)
{
    for (size_t i = 0; i < c->fb_n; i++)
        free(c->fb[i]);
    free(c->fb);
    c->fb = NULL;
    c->fb_n = c->fb_cap = 0;
}

/* ---- reads ------------------------------------------------------------------------- */

int track_feedback_list(struct track_client *c, const struct track_feedback_query *q,
                        track_score_cb cb, void *ctx, struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    uint8_t *token = NULL;
    size_t token_len = 0;
    int rc = 0, more = 1;

    uint8_t tid[16];
    size_t got = 0;
    if (nonempty(q->trace) &&
        (strlen(q->trace) != 32 || sodium_hex2bin(tid, 16, q->trace, 32, NULL, &got, NULL) ||
         got != 16))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "feedback list: trace: expected 32 hex digits");
    if (nonempty(q->trace) && (nonempty(q->run) || nonempty(q->experiment)))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "feedback list: a trace, or a run or an experiment, not both");
    if (!nonempty(q->run) && !nonempty(q->experiment) && !nonempty(q->trace))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "feedback list: a run, an experiment or a trace");
    while (more && !rc) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__FeedbackList l = TRACK__V1__FEEDBACK_LIST__INIT;
        l.run = (char *)(q->run ? q->run : "");
        l.experiment = (char *)(q->experiment ? q->experiment : "");
        l.target = (char *)(q->target ? q->target : "");
        l.has_target = q->has_target;
        l.name = (char *)(q->name ? q->name : "");
        if (nonempty(q->trace)) {
            l.trace_id.data = tid;
            l.trace_id.len = 16;
        }
        l.page_token.data = token;
        l.page_token.len = token_len;
        rq.op_case = TRACK__V1__REQUEST__OP_FEEDBACK_LIST;
        rq.feedback_list = &l;
        rc = cl_read_want(c, &rq, TRACK__V1__RESPONSE__RESULT_FEEDBACK_LIST, &rs, err);
        if (rc)
            break;
        Track__V1__FeedbackListResult *r = rs->feedback_list;
        for (size_t i = 0; i < r->n_scores && !rc; i++) {
            const Track__V1__Score *m = r->scores[i];
            char trace[33] = "", span[17] = "";
            if (m->trace_id.len == 16)
                sodium_bin2hex(trace, sizeof(trace), m->trace_id.data, 16);
            if (m->span_id.len == 8)
                sodium_bin2hex(span, sizeof(span), m->span_id.data, 8);
            struct track_score s = {
                .run = m->run,
                .target = m->target,
                .name = m->name,
                .kind = m->kind,
                .number = m->number,
                .boolean = m->boolean,
                .label = m->label,
                .comment = m->comment,
                .rationale = m->rationale,
                .source = m->source,
                .by = m->source_id,
                .time_ms = m->time_ms,
                .id = m->id,
                .trace = trace[0] ? trace : NULL,
                .span = span[0] ? span : NULL,
            };
            rc = cb(ctx, &s);
        }
        more = r->next_page_token.len > 0 && r->n_scores > 0;
        free(token);
        token = NULL;
        if (more) {
            token = malloc(r->next_page_token.len);
            if (!token)
                rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
            else
                memcpy(token, r->next_page_token.data, r->next_page_token.len);
            token_len = r->next_page_token.len;
        }
        track__v1__response__free_unpacked(rs, NULL);
        rs = NULL;
    }
    free(token);
    return rc;
}

int track_feedback_summary(struct track_client *c, const char *run, const char *experiment,
                           int by_target, track_feedback_summary_cb cb, void *ctx,
                           struct track_err *err)
{
    Track__V1__Response *rs = NULL;
    uint8_t *token = NULL;
    size_t token_len = 0;
    int rc = 0, more = 1;

    if (!nonempty(run) && !nonempty(experiment))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "feedback summary: a run or an experiment");
    while (more && !rc) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__FeedbackSummary q = TRACK__V1__FEEDBACK_SUMMARY__INIT;
        q.run = (char *)(run ? run : "");
        q.experiment = (char *)(experiment ? experiment : "");
        q.by_target = by_target;
        q.page_token.data = token;
        q.page_token.len = token_len;
        rq.op_case = TRACK__V1__REQUEST__OP_FEEDBACK_SUMMARY;
        rq.feedback_summary = &q;
        rc = cl_read_want(c, &rq, TRACK__V1__RESPONSE__RESULT_FEEDBACK_SUMMARY, &rs, err);
        if (rc)
            break;
        Track__V1__FeedbackSummaryResult *r = rs->feedback_summary;
        for (size_t i = 0; i < r->n_items && !rc; i++) {
            const Track__V1__FeedbackSummaryItem *m = r->items[i];
            if (m->n_labels != m->n_label_counts || m->n_dist_values != m->n_dist_counts) {
                rc = cl_fail(err, TRACK_E_INTERNAL,
                             "malformed reply from server: feedback summary columns");
                break;
            }
            struct track_feedback_summary s = {
                .run = m->run,
                .target = m->by_target ? m->target : NULL,
                .name = m->name,
                .kind = m->kind,
                .count = m->count,
                .comments = m->comments,
                .mean = NAN,
                .sum = m->sum,
                .min = m->min,
                .max = m->max,
                .true_count = m->true_count,
                .n_labels = m->n_labels,
                .labels = (const char *const *)m->labels,
                .label_counts = m->label_counts,
                .other_labels = m->other_labels,
                .n_dist = m->n_dist_values,
                .dist_values = m->dist_values,
                .dist_counts = m->dist_counts,
                .dist_binned = m->dist_binned,
            };
            if (m->count > 0 && m->kind == TRACK_SCORE_NUMBER)
                s.mean = m->sum / (double)m->count;
            else if (m->count > 0 && m->kind == TRACK_SCORE_BOOL)
                s.mean = (double)m->true_count / (double)m->count;
            rc = cb(ctx, &s);
        }
        more = r->next_page_token.len > 0 && r->n_items > 0;
        free(token);
        token = NULL;
        if (more) {
            token = malloc(r->next_page_token.len);
            if (!token)
                rc = cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
            else
                memcpy(token, r->next_page_token.data, r->next_page_token.len);
            token_len = r->next_page_token.len;
        }
        track__v1__response__free_unpacked(rs, NULL);
        rs = NULL;
    }
    free(token);
    return rc;
}

int track_feedback_target_text(struct track_client *c, const char *run, const char *path, char *buf,
                               size_t cap, int *found, int64_t *size, int *cut,
                               struct track_err *err)
{
    Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
    Track__V1__ArtifactGet g = TRACK__V1__ARTIFACT_GET__INIT;
    Track__V1__ArtifactRead rd = TRACK__V1__ARTIFACT_READ__INIT;
    Track__V1__Response *rs = NULL;
    uint8_t digest[32];
    struct track_err e2 = {0};
    int rc;

    *found = 0;
    *size = 0;
    *cut = 0;
    buf[0] = '\0';
    if (cap > LIMIT_ARTIFACT_CHUNK)
        cap = LIMIT_ARTIFACT_CHUNK;
    if (!nonempty(path) ||
        limits_check_artifact_path("p", path, strlen(path), e2.msg, sizeof e2.msg))
        return 0; /* a sample id, not an artifact path */
    g.run = (char *)run;
    g.path = (char *)path;
    rq.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_GET;
    rq.artifact_get = &g;
    rc = cl_read_want(c, &rq, TRACK__V1__RESPONSE__RESULT_ARTIFACT_GET, &rs, &e2);
    if (rc == TRACK_E_NOT_FOUND)
        return 0;
    if (rc) {
        if (err)
            *err = e2;
        return rc;
    }
    if (!rs->artifact_get->artifact || rs->artifact_get->artifact->digest.len != 32) {
        track__v1__response__free_unpacked(rs, NULL);
        return cl_fail(err, TRACK_E_INTERNAL, "malformed reply from server: artifact digest");
    }
    memcpy(digest, rs->artifact_get->artifact->digest.data, 32);
    *size = rs->artifact_get->artifact->size;
    track__v1__response__free_unpacked(rs, NULL);
    rs = NULL;

    Track__V1__Request rq2 = TRACK__V1__REQUEST__INIT;
    rd.digest.data = digest;
    rd.digest.len = 32;
    rd.offset = 0;
    rd.max_bytes = (int32_t)cap;
    rq2.op_case = TRACK__V1__REQUEST__OP_ARTIFACT_READ;
    rq2.artifact_read = &rd;
    rc = cl_read_want(c, &rq2, TRACK__V1__RESPONSE__RESULT_ARTIFACT_READ, &rs, err);
    if (rc)
        return rc;
    size_t n = rs->artifact_read->data.len;
    if (n > cap)
        n = cap;
    memcpy(buf, rs->artifact_read->data.data, n);
    track__v1__response__free_unpacked(rs, NULL);
    if (memchr(buf, 0, n))
        return 0;
    *cut = (int64_t)n < *size;
    /* cut at a character's start: drop a torn UTF-8 sequence at the end */
    if (*cut) {
        size_t back = 0;
        while (back < 4 && back < n && ((unsigned char)buf[n - 1 - back] & 0xC0) == 0x80)
            back++;
        if (back < n && ((unsigned char)buf[n - 1 - back] & 0xC0) == 0xC0)
            n -= back + 1;
    }
    if (!limits_utf8_valid(buf, n))
        return 0;
    buf[n] = '\0';
    *found = 1;
    return 0;
}
