/*
 * loop.h: the event loop's state, shared by loop.c (poll, drain, group
 * commit, replies, held-reply accounting, upkeep), listen.c (the
 * listening sockets and the descriptor watch) and search_index.c. Internal
 * to those three.
 */
#ifndef TRACK_LOOP_H
#define TRACK_LOOP_H

#include <poll.h>

#include "srv.h"

#define IDLE_TICK_MS 1000
#define FD_CHECK_MS  100 /* how often descriptors are counted when near the limit */

struct pending;
struct held;

struct loop {
    struct srv *srv;
    int socks[SRV_MAX_LISTEN];
    int eids[SRV_MAX_LISTEN];             /* endpoint of each listener, -1 while paused */
    uint32_t frame_limit[SRV_MAX_LISTEN]; /* NN_RCVMAXSIZE of each listener */
    int sealed[SRV_MAX_LISTEN];           /* 1: a tcp:// listener taking sealed frames only */
    int internal[SRV_MAX_LISTEN]; /* 1: the HTTP front's inproc socket (http.h: frames with a head)
                                   */
    struct srv_sealer *sealer;    /* opens and seals them (seal_srv.c); NULL if none */
    struct srv_caller local;      /* the caller of ipc (and --plain-tcp) requests */
    struct srv_limiter *limiter;  /* per-key budgets of sealed callers (limiter.h) */
    int n_socks;
    struct pollfd pfd[SRV_MAX_LISTEN + 2];
    struct srv_http *http; /* the HTTP front (http.h), NULL when off */
    int efd, sfd;
    struct srv_workers *workers;
    struct pending *batch;
    int64_t last_maint;
    int stop;
    struct held *held; /* oldest first */
    int n_held;
    size_t held_bytes;
    size_t freed_big; /* big buffers freed since the last malloc_trim */
    int64_t trimmed_ms;
    int served_since_trim;   /* requests answered since the last malloc_trim */
    int64_t last_request_ms; /* monotonic; when the last batch came in */
    int released;            /* the page caches were given back since */
    int64_t fd_checked_ms;
    int fd_busy;       /* a quarter of the descriptors in use: count every FD_CHECK_MS */
    int fd_warned;     /* warned about the descriptor limit (until usage falls) */
    int64_t resume_ms; /* when paused listeners bind again */
    int64_t pause_ms;  /* length of the next pause */
    int64_t last_pause_ms;
    int64_t index_next_ms; /* when search_index.c next counts the runs waiting */
};

/* ---- search_index.c: the search indexes' merges, the loop's thread only ---- */
/* Merges the runs waiting for the search indexes when enough wait or the
 * writer is idle; call it on every turn of the loop (now: monotonic ms). */
void srv_search_index_tick(struct loop *l, int64_t now);

/* ---- seal_srv.c: sealed frames, the loop's thread only ---- */
struct srv_sealer;
/* A sealer for srv->key (which must be loaded). 0, or -1 logged. */
int srv_sealer_new(struct srv *srv, struct srv_sealer **out);
void srv_sealer_free(struct srv_sealer *s);
/* Opens a frame from a sealed listener in place (no copy: the plaintext
 * is decrypted over the frame's ciphertext). 0: *plain points into frame
 * (valid while frame is) and holds the request, *peer its sender, *caller
 * the user whose key sealed it. Otherwise the wire code to answer (plain)
 * with the message in msg; the refusal is logged (rate-limited). */
int srv_sealer_open(struct srv_sealer *s, uint8_t *frame, size_t len, struct seal_peer *peer,
                    struct srv_caller *caller, const uint8_t **plain, size_t *plain_len, char *msg,
                    size_t msglen);
/* Seals a reply for peer: 0 and *out malloc'd, or -1 logged. */
int srv_sealer_seal(struct srv_sealer *s, const struct seal_peer *peer, const uint8_t *buf,
                    size_t len, uint8_t **out, size_t *out_len);

/* Opens every listener (cfg.listen) into l->socks and its NN_RCVFD into
 * l->pfd. A listener that fails is closed before returning. 0, or -1 logged. */
int srv_open_sockets(struct loop *l);
/* Counts descriptors now and then; pauses the busiest listener near the
 * limit and binds paused ones again when their pause is over. */
void srv_watch_fds(struct loop *l);
/* Closes every listener and unlinks the ipc socket files. */
void srv_close_sockets(struct loop *l);

#endif
