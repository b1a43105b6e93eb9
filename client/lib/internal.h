/*
 * internal.h: libtrack's internals (not installed). The library is:
 *
 *   conn.c    the nanomsg REQ socket, one request/response with a timeout,
 *             sealed on tcp://, the liveness probe and the autostart of a
 *             personal trackd
 *   config.c  the client key and config file (~/.config/track), and which
 *             key and pinned server key a sealed client uses
 *   spool.c   the spool for writes made while trackd is away: what a full
 *             spool drops, delivery per server, the sync report
 *   spool_file.c  the spool's append-only file: frames, checksums, damage,
 *             the lock (spool.h: what the two share)
 *   client.c  the public write API: runs, params, tags, buffered metrics
 *   reads.c   the public read API and struct track_result
 *   pipe.c    extra connections that keep transfer requests in flight
 *   artifact.c, artifact_xfer.c  artifacts: listing and walking files, and
 *             the pipelined chunk and page transfers
 *   feedback.c  feedback scores: the buffer of FeedbackBatch, the reads
 *   sysmetrics.c  system metrics: a sampler thread reading /proc (and NVML)
 *             that logs system/... through a client of its own
 *
 * Threads: a client is used by one thread at a time (the caller serialises
 * calls); libtrack itself starts one thread only, the system metrics
 * sampler, which touches nothing but its own clone of the client.
 */
#ifndef TRACK_CLIENT_INTERNAL_H
#define TRACK_CLIENT_INTERNAL_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "track.h"
#include "wire.h"

#define CL_PIPE_MAX 8 /* connections a transfer keeps requests in flight on */

struct series {
    char key[256];
    size_t n, cap;
    int64_t *steps, *times;
    double *values;
};

struct track_client {
    char server[1100];
    int server_explicit; /* from opts or TRACK_SERVER: never autostart */
    int timeout_ms;
    int64_t deadline_ms; /* monotonic; while set, no round trip may pass it */
    int sock_timeout;    /* the timeout currently set on sock */
    int64_t last_ok_ms;  /* monotonic time of the last reply */
    int flush_points;
    int flush_interval_ms;
    int no_spool;
    int autostart;
    int sock;              /* -1 until first use */
    int64_t down_until_ms; /* after a failure, go straight to the spool until then */
    int down_backoff_ms;

    char spool_path[1100];
    int64_t spool_max;

    int has_run;
    uint8_t run[16];
    char run_hex[33];

    struct series *series;
    size_t n_series, cap_series, last_series;
    size_t buffered;
    int64_t oldest_ms; /* wall-clock time the oldest buffered point came */

    uint8_t rid[16]; /* request id of the request in c->pack */
    uint8_t *pack;   /* reusable packing buffer */
    size_t pack_cap;

    uint64_t server_frame; /* the server's frame limit from Hello; 0: not asked yet */
    int artifact_fsync;    /* downloads fsync each file before its rename (track.h) */

    /* sealed tcp:// (config.c, conn.c) */
    char opt_key_path[1100];  /* track_opts.key_path, "" when not given */
    char opt_server_key[64];  /* track_opts.server_key, "" when not given */
    int plain_tcp;            /* TRACK_TEST_PLAIN_TCP=1: plain frames on tcp (tests only) */
    struct seal_client *seal; /* NULL until the first tcp:// round trip */
    uint8_t server_pk[32];
    char server_key_text[49], key_text[49];
    int seal_fault; /* the last failure was this client's key setup or a key mismatch */
    /* pipe.c: more connections to the server, for transfers in flight */
    int n_pipe;                                  /* 0: none open */
    int pipe[CL_PIPE_MAX];                       /* REQ sockets */
    int pipe_busy[CL_PIPE_MAX];                  /* a request sent and its reply not yet taken */
    struct seal_ticket pipe_ticket[CL_PIPE_MAX]; /* of its sealed request (c->seal) */
    /* buffered feedback scores (feedback.c), each one malloc'd block */
    Track__V1__Score **fb;
    size_t fb_n, fb_cap, fb_bytes;
    int64_t fb_oldest_ms;     /* wall-clock time the oldest buffered score came */
    int64_t fb_batches;       /* FeedbackBatch requests sent or spooled */
    struct cl_sysmet *sysmet; /* the system metrics sampler (sysmetrics.c), NULL when none */
};

/* Fills err (may be NULL) and returns code. */
int cl_fail(struct track_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- conn.c ---- */
/* One request/response round trip. On success *out is the unpacked
 * response (free with track__v1__response__free_unpacked) and 0 is
 * returned, even if the response carries an error. Transport failures
 * (no daemon, timeout) return TRACK_E_UNAVAILABLE naming the address. */
int cl_roundtrip(struct track_client *c, const uint8_t *req, size_t len, Track__V1__Response **out,
                 struct track_err *err);
/* The largest request this client may send the server: its frame limit
 * from Hello (asked once per connection), less room for the transport's
 * header. When the server cannot be asked, our own limit. */
size_t cl_frame_limit(struct track_client *c);
/* Requests up to this size go without asking the server's limit: every
 * listener takes at least a full log batch, far more than this. */
#define CL_FRAME_ASK_ABOVE (256u << 10)
/* 0 when a request of len bytes fits cl_frame_limit, else
 * TRACK_E_INVALID_ARGUMENT: "request of N bytes exceeds the server's frame
 * limit of M bytes" (sent, it would only time out). Small requests are
 * never held up by asking. */
int cl_frame_check(struct track_client *c, size_t len, struct track_err *err);
/* Maps a response's error to a return code with its message; 0 if none. */
int cl_response_error(const Track__V1__Response *rs, struct track_err *err);
void cl_disconnect(struct track_client *c);
/* A new REQ socket connected to c's server with libtrack's options and
 * `timeout_ms` for sends and receives, in *out. */
int cl_sock_new(struct track_client *c, int timeout_ms, int *out, struct track_err *err);

/* ---- pipe.c ---- */
/* Opens (once; kept until cl_disconnect) up to n (<= CL_PIPE_MAX) more
 * connections to c's server, each carrying one request at a time, so a
 * transfer keeps n requests in flight while the daemon works on them on
 * several threads. c's own socket must have reached the server first.
 * Returns how many are open (at least 1) or a negative code. */
int cl_pipe_open(struct track_client *c, int n, struct track_err *err);
/* Sends rq (given a fresh request id) on connection i, which must be idle;
 * packs it straight into a nanomsg message (no copy). */
int cl_pipe_send(struct track_client *c, int i, Track__V1__Request *rq, int timeout_ms,
                 struct track_err *err);
/* Takes the reply of connection i's request: 0 and *out (the caller frees
 * it) when it carries result `want` and no error, else the reply's error
 * code (or TRACK_E_UNAVAILABLE, TRACK_E_INTERNAL) with its message. */
int cl_pipe_recv(struct track_client *c, int i, int want, int timeout_ms, Track__V1__Response **out,
                 struct track_err *err);
/* Closes the extra connections (requests in flight are abandoned). */
void cl_pipe_close(struct track_client *c);
/* Opens the reply (buf: nanomsg's, freed here) to the sealed request of
 * ticket: a sealed reply from the pinned server, or a plain error the
 * server gave before it could seal (conn.c). 0 and *out, or an error. */
int cl_open_reply(struct track_client *c, const struct seal_ticket *ticket, void *buf, size_t n,
                  Track__V1__Response **out, struct track_err *err);

/* ---- artifact_xfer.c ---- */
/* Bytes of a chunk sent or a page asked for: the daemon takes up to
 * LIMIT_ARTIFACT_CHUNK (1 MiB), but a frame of a full MiB plus its header
 * is just past the size at which trackd's malloc maps fresh memory for
 * each buffer (loop.c, M_MMAP_THRESHOLD), and faulting in a fresh MiB for
 * every frame, twice, cost more than a third of an upload's time. */
#define CL_CHUNK_BYTES     (LIMIT_ARTIFACT_CHUNK - 16384)
#define CL_OP_TIMEOUT_MS   30000  /* one chunk or page */
#define CL_LONG_TIMEOUT_MS 600000 /* a chunk that may seal a blob (fsync), a verify */
/* Requests in flight in a transfer: TRACK_TRANSFER_DEPTH, 1 to CL_PIPE_MAX. */
int cl_transfer_depth(void);
struct cl_send_result {
    int64_t sent; /* bytes of chunks acknowledged */
    int64_t have; /* the most bytes a reply said were hashed in order */
    int sealed;   /* a reply said have = size: the blob is sealed */
};
/* Sends bytes [from, size) of fd (the file `local`) as chunks of `chunk`
 * bytes of upload `id`, several in flight, reading through buf (chunk
 * bytes). Takes every reply sent for before returning. 0, or the worst
 * error among the replies (one a fresh begin cannot cure first). */
int cl_artifact_send(struct track_client *c, int fd, const char *local, const char *id,
                     int64_t size, int64_t from, uint8_t *buf, size_t chunk,
                     struct cl_send_result *res, struct track_err *err);
/* Reads blob `digest` (`size` bytes) in pages, several asked ahead, writing
 * them in order to fd and feeding h; `shown` names the file in errors. */
int cl_blob_fetch(struct track_client *c, const uint8_t digest[32], int64_t size, int fd,
                  const char *shown, crypto_generichash_state *h, struct track_err *err);

/* ---- config.c ---- */
/* $XDG_CONFIG_HOME/track (or ~/.config/track) into buf; 0 or -1. */
int cl_config_dir(char *buf, size_t len);
/* Makes c->seal from the client key and pinned server key (see config.c)
 * if not yet made. 0; or TRACK_E_UNAUTHENTICATED saying how to set them up
 * (track keygen, track config set server), another code for a bad key
 * file; c->seal_fault set on those. */
int cl_seal_setup(struct track_client *c, struct track_err *err);

/* ---- spool.c, spool_file.c ---- */
/* What an append had to do besides appending. */
struct cl_spool_note {
    int dropped_batches;    /* the spool was full: metric batches dropped, oldest first */
    int64_t dropped_points; /* their points */
    int dropped_other;      /* then other records (run starts and ends, params, tags) */
    int64_t cut_bytes;      /* a torn record cut off the end */
    char moved[1200];       /* a spool with a damaged header, moved aside to here */
    int salvaged;           /* valid records taken from it */
};
/* Appends one packed request for c's server, waiting for the lock no later
 * than c->deadline_ms (or one timeout when unset). note (may be NULL) says
 * what else happened. */
int cl_spool_append(struct track_client *c, const uint8_t *req, size_t len,
                    struct cl_spool_note *note, struct track_err *err);
/* Delivers spooled requests in order, each to its own server (all = 1) or
 * c's only (all = 0), until none is left, a server fails, or budget_ms (and
 * c->deadline_ms, when set) passes. r (may be NULL) is filled. Returns 0 when
 * nothing is left to deliver, 1 when the time ran out with records left (or
 * another process held the lock all that time: err says so),
 * TRACK_E_UNAVAILABLE when records were kept, another negative code on a
 * spool error. */
int cl_spool_deliver(struct track_client *c, int budget_ms, int all, struct track_sync_report *r,
                     struct track_err *err);
/* Calls fn for each live record in order (stops when fn returns nonzero);
 * damaged stretches go into r (may be NULL). */
int cl_spool_walk(struct track_client *c,
                  int (*fn)(void *arg, const char *uri, const uint8_t *req, size_t len), void *arg,
                  struct track_sync_report *r, struct track_err *err);
int cl_spool_stat(struct track_client *c, int64_t *requests, int64_t *bytes, struct track_err *err);

/* ---- client.c ---- */
/* Packs rq (after giving it a fresh request id) into c->pack. */
int cl_pack(struct track_client *c, Track__V1__Request *rq, size_t *len, struct track_err *err);
/* Sends a packed write; spools it when the daemon is away (returns 0 with
 * err->code TRACK_E_SPOOLED). *out (may be NULL) gets the response. */
int cl_write(struct track_client *c, const uint8_t *req, size_t len, Track__V1__Response **out,
             struct track_err *err);
/* Sends a read and returns its response, or an error. */
int cl_read(struct track_client *c, Track__V1__Request *rq, Track__V1__Response **out,
            struct track_err *err);

/* A new client (allocated; free with track_client_close) with c's server,
 * keys, timeouts, spool and current run, and nothing else: no socket, no
 * buffered points. For a thread that logs beside c's owner. */
int cl_client_clone(const struct track_client *c, struct track_client **out, struct track_err *err);

/* ---- sysmetrics.c ---- */
/* track_system_metrics_stop without an error report (track_client_close). */
void cl_sysmet_stop(struct track_client *c);

/* ---- feedback.c ---- */
/* Sends every buffered score (track_flush calls it); kept, in order, when
 * they could be neither sent nor spooled (TRACK_E_UNAVAILABLE). */
int cl_feedback_flush(struct track_client *c, struct track_err *err);
void cl_feedback_free(struct track_client *c);

/* ---- reads.c ---- */
/* Checks a reply as the daemon checks a request: every column's length
 * against the others, ids' lengths, sub-messages present. 0, or
 * TRACK_E_INTERNAL with "malformed reply from server: field X (why)". */
int cl_check_reply(const Track__V1__Response *rs, struct track_err *err);
/* cl_read, and a reply carrying result `want` (else TRACK_E_INTERNAL
 * "unexpected reply from trackd", the reply freed); *out owns the reply. */
int cl_read_want(struct track_client *c, Track__V1__Request *rq, int want,
                 Track__V1__Response **out, struct track_err *err);
/* A metric history page with no points that says more follow (a summary
 * counting points the server does not have): TRACK_E_INTERNAL naming run
 * and key, so a reader stops instead of asking again forever. */
int cl_check_history_page(const Track__V1__Response *rs, const char *run, const char *key,
                          struct track_err *err);

#endif
