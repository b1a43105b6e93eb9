/*
 * track_limits.h: every limit of the protocol and data model, and the one place
 * that checks keys, names and values against them. The daemon checks every
 * request here before it reaches storage; clients check early with the same
 * code so a user sees the same message either way.
 */
#ifndef TRACK_LIMITS_H
#define TRACK_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#define LIMIT_FRAME_BYTES    (16u << 20) /* largest frame either way */
#define LIMIT_BATCH_POINTS   262144      /* points in one LogBatch */
#define LIMIT_BATCH_SERIES   4096        /* (run, key) columns in one LogBatch */
#define LIMIT_BATCH_KV       4096        /* params + tags in one request */
#define LIMIT_KEY_BYTES      250
#define LIMIT_VALUE_BYTES    65536 /* params and tags */
#define LIMIT_NAME_BYTES     250   /* experiment and run names */
#define LIMIT_USER_BYTES     250
#define LIMIT_FILTER_BYTES   65536
#define LIMIT_HISTORY_POINTS 500000 /* points in one MetricHistory reply: under 16 MiB */
#define LIMIT_CURVE_BUCKETS  4096
#define LIMIT_RUN_LIST       100000
#define LIMIT_ARTIFACT_PATH  1024       /* bytes of an artifact path */
#define LIMIT_ARTIFACT_CHUNK (1u << 20) /* bytes in one ArtifactChunk or ArtifactRead */

/* feedback scores (DESIGN.md "Feedback") */
#define LIMIT_FEEDBACK_TEXT   65536 /* bytes of a feedback comment, and of a rationale */
#define LIMIT_FEEDBACK_TARGET 1024  /* bytes of a feedback target id */
#define LIMIT_FEEDBACK_LABEL  250   /* bytes of a feedback label */
#define LIMIT_FEEDBACK_BATCH  16384 /* scores in one FeedbackBatch (and the frame limit) */
#define LIMIT_FEEDBACK_PAGE   10000 /* scores in one FeedbackList reply (and REPLY_PAGE_BYTES) */

/* Each check returns 0 when `s` is acceptable, else -1 with a message
 * naming `field` and the rule in msg (never NULL, at most cap bytes). */

/* Key names: 1..250 bytes of letters, digits and `_ - . / : space`, no `..`
 * path segment, no leading `/`. */
int limits_check_key(const char *field, const char *s, char *msg, size_t cap);
/* Param and tag values: valid UTF-8, at most 64 KiB. */
int limits_check_value(const char *field, const char *s, char *msg, size_t cap);
/* Experiment and run names: 1..250 bytes of valid UTF-8 without control
 * characters. Empty allowed when `optional`. */
int limits_check_name(const char *field, const char *s, int optional, char *msg, size_t cap);
/* Artifact paths: 1..1024 bytes of valid UTF-8, relative and `/`-separated:
 * no leading `/`, no empty, `.` or `..` segment, no backslash, no NUL (a
 * string holding one never reaches here whole: `len` is its real length). */
int limits_check_artifact_path(const char *field, const char *s, size_t len, char *msg, size_t cap);
/* Feedback (DESIGN.md "Feedback"). The name is checked as a key
 * (limits_check_key). A label: 1..250 bytes of valid UTF-8 without control
 * characters. A comment or rationale: valid UTF-8, at most 64 KiB. A
 * target id: 1..1024 bytes of valid UTF-8 without control characters. */
int limits_check_label(const char *field, const char *s, char *msg, size_t cap);
int limits_check_feedback_text(const char *field, const char *s, char *msg, size_t cap);
int limits_check_target(const char *field, const char *s, char *msg, size_t cap);
/* Valid UTF-8 (no overlongs, no surrogates), of length len. */
int limits_utf8_valid(const char *s, size_t len);

#endif
