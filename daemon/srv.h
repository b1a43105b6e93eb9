/*
 * srv.h: trackd's internals (prefix srv_). The daemon is three parts:
 *
 *   loop.c      poll(2), group commit, replies (knows nanomsg); its
 *               listening sockets are listen.c's (loop.h)
 *   dispatch.c  the operation table; its handlers are op_<noun>.c (op.h)
 *               (know protobuf and store_*, never a socket: any front end
 *               can call them)
 *   workers.c   threads with read-only store handles for reads
 *
 * plus seal_srv.c (the server key and the sealed frames of tcp://
 * listeners, the loop's thread only), arena.c (per-request memory), log.c
 * and main.c (options, config),
 * op_backup.c (backups streamed to the client), restore.c (--restore and
 * its recovery at start) and reserve.c (space kept for a full disk).
 */
#ifndef TRACK_SRV_H
#define TRACK_SRV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "seal.h"
#include "limiter.h"
#include "store.h"
#include "store_trace.h"
#include "track_limits.h"
#include "wire.h"

/* ---- logging -------------------------------------------------------------- */
enum srv_log_level { SRV_LOG_ERROR = 0, SRV_LOG_WARN, SRV_LOG_INFO, SRV_LOG_DEBUG };
/* Written by the loop (SIGHUP), read by every thread: atomic. */
extern _Atomic int srv_log_level;
/* One line to stderr: "level component: message". */
void srv_log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int srv_log_level_parse(const char *s);

/* ---- per-request memory ------------------------------------------------------
 * Responses are built in an arena: one allocation per block, never per
 * point, all freed at once after the response is packed. */
struct srv_arena {
    struct srv_block *head;
    size_t total;
};
void *srv_alloc(struct srv_arena *a, size_t n);       /* zeroed; NULL on OOM */
void *srv_alloc_raw(struct srv_arena *a, size_t n);   /* not zeroed; NULL on OOM */
char *srv_strdup(struct srv_arena *a, const char *s); /* NULL on OOM */
void srv_arena_free(struct srv_arena *a);

/* ---- server-wide state ------------------------------------------------------ */
#define SRV_MAX_LISTEN 8

struct srv_config {
    char data_dir[1024];
    char db_path[1100];
    const char *listen[SRV_MAX_LISTEN];
    int n_listen;
    int durability;
    int workers;
    char config_path[1100];
    unsigned socket_mode; /* of ipc socket files: 0600 (default), 0660 or 0666 */
    int plain_tcp;
    char http[300];           /* --http ADDR:PORT, "" when the HTTP front is off */
    int trace_retention_days; /* --trace-retention: older traces are deleted; 0 keeps all */
    struct srv_limits_cfg limits;
    /* per-key budgets of sealed callers (limiter.h) */ /* tcp:// listeners take plain frames,
                                                           loopback only (tests) */
};

struct blob_store;

struct srv {
    struct srv_config cfg;
    struct store *wst;        /* the one read-write handle, main thread only */
    struct blob_store *blobs; /* the blob store (blob.h; any thread) */
    struct seal_keypair key;  /* the server key of sealed tcp:// listeners (empty if none) */
    int64_t started_ms;
    int64_t requests; /* served, all kinds */
    pthread_mutex_t stats_lock;
    struct srv_check *check; /* the integrity check at start (check.c) */
};

/* ---- the integrity check at start (check.c) ------------------------------------ */
/* Inline for a small database (-1: it failed, refuse to start unless
 * force), in the background for a big one; 0 to go on. */
int srv_check_start(struct srv *srv, int force);
/* Interrupts a background check still running and frees it. */
void srv_check_stop(struct srv *srv);
/* 1 with the failure in msg when the background check failed: writes are
 * then refused. */
int srv_check_failed(const struct srv *srv, char *msg, size_t cap);

/* ---- identity -------------------------------------------------------------------
 * Who a request comes from, resolved by its transport before dispatch
 * (DESIGN.md "Identity"): an ipc caller is the daemon's owner (local = 1,
 * allowed everything); a sealed tcp:// caller is the user holding the
 * frame's public key (store_user_by_key). dispatch.c checks the operation's
 * need against it before the handler runs. */
struct srv_caller {
    int local;       /* 1: the daemon's owner over ipc (every permission) */
    int64_t user_id; /* users.id; 0 when local */
    int role;        /* STORE_ROLE_*; STORE_ROLE_ADMIN when local */
    char name[STORE_USER_NAME_MAX + 1];
    int has_key;
    uint8_t key[STORE_KEY_BYTES]; /* the sealed frame's key, for the audit */
};

/* What dispatch's permission check found a request is about (authz.c), for
 * the check's messages and the audit row: the experiment's name ("" when
 * none) and the run. */
struct srv_subject {
    char experiment[LIMIT_NAME_BYTES + 1];
    int has_run;
    uint8_t run[16];
};

/* ---- dispatch ------------------------------------------------------------------ */
struct srv_call {
    /* who asks; NULL is the local owner (tests, tools that open the store) */
    const struct srv_caller *caller;
    struct srv *srv;
    struct store *st; /* the handle this call may use */
    const Track__V1__Request *rq;
    Track__V1__Response *rs;
    struct srv_arena arena;
    int code; /* wire code of the failure, 0 on success */
    char msg[600];
    Track__V1__Error oom_err; /* the error when even the arena is out of memory */
    uint32_t frame_limit; /* the listener's largest request frame (Hello); 0: LIMIT_FRAME_BYTES */
    struct srv_subject subj; /* filled by dispatch's check (authz.c) */
    /* dispatch refused this write for permission: its audit row is to be
     * appended after the rollback of the request (srv_audit_refusal) */
    int audit_refused;
};

enum srv_kind { SRV_READ = 1, SRV_WRITE = 2, SRV_OWN_TXN = 4 };

/* READ or WRITE for an operation, 0 for an unknown one. */
int srv_op_kind(const Track__V1__Request *rq);
const char *srv_op_name(const Track__V1__Request *rq);
/* 1 for a read that must not run inside the worker's read transaction
 * (an online backup, which makes its own snapshot). */
int srv_op_own_txn(const Track__V1__Request *rq);

/* Runs the handler of call->rq on call->st and fills call->rs (result or
 * error). Never fails: every failure becomes an error response. Writes must
 * be called inside a store transaction owned by the caller. */
void srv_dispatch(struct srv_call *call);

/* The loop calls this after rolling a failed write back (its savepoint, or
 * the whole transaction when it was alone: in_txn 0): a write refused for
 * permission is audited all the same (audit.c), in the loop's transaction
 * when in_txn, else in one of its own. Does nothing for any other failure. */
void srv_audit_refusal(struct srv_call *call, int in_txn);

/* Packs a response into a buffer from malloc (caller frees); NULL on OOM.
 * A response larger than the frame limit becomes a RESOURCE_EXHAUSTED error. */
uint8_t *srv_pack_response(Track__V1__Response *rs, size_t *len);
/* Fills rs as an error with a formatted message. */
void srv_error_response(Track__V1__Response *rs, Track__V1__Error *e, int code, const char *msg);

/* ---- memory bounds -------------------------------------------------------------
 * What a client can make trackd hold is bounded in bytes, not only in count:
 *
 *   - a request frame: LIMIT_FRAME_BYTES (16 MiB) on ipc, SRV_TCP_FRAME_BYTES
 *     on tcp, where anyone who reaches the port may declare a frame; nanomsg
 *     allocates the declared size at once, but its pages become resident
 *     only as the bytes arrive, so N connections that each stop inside a
 *     frame hold what they sent, at most N x the frame limit (100 x 8 MiB =
 *     800 MiB over tcp): with one unread reply per connection (at most
 *     LIMIT_FRAME_BYTES), the one bound that grows with connections;
 *   - reads queued or running: SRV_MAX_READ_BYTES of request frames;
 *   - replies built and waiting for the loop: SRV_MAX_DONE_BYTES (a worker
 *     waits before starting the next read past it);
 *   - replies handed to nanomsg that their client has not yet read:
 *     SRV_MAX_HELD_BYTES (estimated, see loop.c);
 *   - on sealed tcp, the replay cache: 2^20 frames per generation, 64 MiB at
 *     most, resident as it fills (seal_srv.c); full, it refuses frames.
 * Past the read and held bounds a read is answered RESOURCE_EXHAUSTED with a
 * message naming the limit; writes are never refused for it (their replies
 * are small and their requests are freed once applied). */
/* a full LogBatch (LIMIT_BATCH_POINTS, 262,144 points) packs to 4.3 MiB with
 * steps under 2^21 and times in ms (17 bytes a point), 7 MiB at the widest
 * varints (28 bytes a point) */
#define SRV_TCP_FRAME_BYTES (8u << 20)
#define SRV_MAX_READ_BYTES  (64u << 20)  /* request bytes of reads queued or running */
#define SRV_MAX_DONE_BYTES  (64u << 20)  /* replies built, not yet sent */
#define SRV_MAX_HELD_BYTES  (128u << 20) /* replies sent, not yet read by their client */
#define SRV_HELD_MIN_BYTES  (64u << 10)  /* smaller replies are not tracked */
#define SRV_HELD_KEEP_MS    10000        /* a tracked reply is forgotten after this */

/* ---- read workers ------------------------------------------------------------ */
struct srv_job {
    struct srv_job *next;
    void *tag; /* the loop's reply address (nanomsg header) */
    int sock;
    uint32_t frame_limit;              /* of the listener the request came in on */
    size_t rq_bytes;                   /* the request's frame size, counted in SRV_MAX_READ_BYTES */
    uint8_t request_id[WIRE_ID_BYTES]; /* for an error reply after rq is freed */
    Track__V1__Request *rq;            /* unpacked; freed by the worker */
    struct srv_caller caller;          /* who asks (the worker's srv_call.caller) */
    int sealed;                        /* the reply is sealed for peer (by the loop) */
    struct seal_peer peer;
    uint8_t *reply; /* packed response, filled by the worker */
    size_t reply_len;
};

struct srv_workers;
int srv_workers_start(struct srv *srv, int n, int efd, struct srv_workers **out);
/* Reads waiting or running at most: past it a read is refused (the loop
 * answers RESOURCE_EXHAUSTED) rather than queued without bound. */
#define SRV_MAX_QUEUED_READS 4096
/* Queues a job; -1 (job still the caller's) when SRV_MAX_QUEUED_READS are
 * already in flight, -2 when job->rq_bytes would take the reads in flight
 * past SRV_MAX_READ_BYTES. */
int srv_workers_submit(struct srv_workers *w, struct srv_job *job);
/* Takes the list of finished jobs (may be NULL); their replies no longer
 * count in SRV_MAX_DONE_BYTES, so the caller sends them at once. */
struct srv_job *srv_workers_done(struct srv_workers *w);
void srv_workers_stop(struct srv_workers *w); /* joins; done jobs stay */
/* Asks each read worker to give its handle's page cache back and trim,
 * in its own thread (the handles have no mutex), before its next job. */
void srv_workers_release_memory(struct srv_workers *w);
void srv_workers_free(struct srv_workers *w);

/* ---- the loop --------------------------------------------------------------- */
/* Binds every listen URI and serves until SIGTERM/SIGINT; returns the exit
 * status for main. */
int srv_loop_run(struct srv *srv);

/* Re-reads the config file (SIGHUP): log level. */
void srv_reload_config(struct srv *srv);

/* Maps a STORE_E_* code to a wire code. */
int srv_code_from_store(int store_code);

/* ---- sealed tcp:// (seal_srv.c) --------------------------------------------- */
/* Reads DATA_DIR/server.key into kp; when create and the file is absent,
 * makes a fresh pair there first (0600, never overwritten). 0, or -1 logged. */
int srv_server_key_load(const struct srv_config *cfg, int create, struct seal_keypair *kp);
/* The caller of an ipc request: the daemon's owner (local, admin, named
 * after the daemon's user). It reads the user database (getpwuid, not
 * reentrant): call it once, at start, and copy what it gives. */
void srv_local_caller(struct srv_caller *c);

/* ---- backups streamed to the client (op_backup.c) -------------------------- */
/* Largest BackupChunk reply's data: far below the frame limit. */
#define SRV_BACKUP_CHUNK_BYTES (1 << 20)
/* Makes DIR/backups 0700 and empties it (snapshots left by a dead trackd). */
int srv_backup_prepare_dir(const struct srv_config *cfg);
int srv_op_backup_begin(struct srv_call *call);
int srv_op_backup_chunk(struct srv_call *call);
int srv_op_backup_end(struct srv_call *call);
/* Closes snapshots no client read for a while (any thread). */
void srv_backup_sweep(void);
/* Closes every snapshot not being read (at exit). */
void srv_backup_close_all(void);

/* ---- artifacts (op_artifact.c) -------------------------------------------- */
/* After each group commit (the loop's thread): releases the blob pins of the
 * artifact rows that commit made durable (or rolled back). */
void srv_artifact_after_commit(struct srv *srv);

/* ---- restore (restore.c) --------------------------------------------------- */
/* `trackd --restore FILE`: the exit status for main. The data directory is
 * locked by the caller. */
int srv_restore(const struct srv_config *cfg, const char *from);
/* At start: finishes or undoes a restore cut short; -1 (logged) when trackd
 * must not start (it would serve an empty database where data lies aside). */
int srv_restore_recover(const struct srv_config *cfg);
/* The steps TRACK_TEST_RESTORE_KILL_AT may name (a test hook), NULL-ended. */
extern const char *const srv_restore_kill_points[];

/* ---- disk-full reserve (reserve.c; the loop's thread only) ----------------- */
/* Space kept in DIR/reserve so a checkpoint can run on a full disk. */
#define SRV_RESERVE_BYTES (16LL << 20)
/* Creates the reserve (logs when the disk has no room for it). */
void srv_reserve_init(const struct srv_config *cfg);
/* A write or checkpoint failed with a full disk: gives the reserve back,
 * checkpoints with TRUNCATE, then takes the reserve again if it fits. */
void srv_reserve_on_full(struct srv *srv);
/* Idle tick: re-creates a reserve that was given back, when space allows. */
void srv_reserve_tick(struct srv *srv);

#endif
