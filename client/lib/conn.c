/*
 * conn.c: libtrack's transport: a cooked nanomsg REQ socket with send and
 * receive timeouts, so no call waits longer than the client's timeout.
 *
 * For ipc:// servers a plain connect(2) on the socket file first tells at
 * once whether a daemon listens (nanomsg would queue the request and wait
 * out the timeout). When nobody listens on the user's default socket and
 * autostart is on, a personal trackd is started in the background (as
 * gpg-agent is): fork before any nanomsg socket exists, exec at once.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <netdb.h>
#include <poll.h>
#include <sodium.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "track_limits.h"
#include "paths.h"

int cl_fail(struct track_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

/* 1 when something accepts connections on the ipc socket, 0 when not. */
static int ipc_alive(const char *uri)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = uri + 6;
    int fd, ok;

    if (strlen(path) >= sizeof(sa.sun_path))
        return 0;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* 1 when something accepts TCP connections at tcp://HOST:PORT within
 * wait_ms, 0 when not (refused, unreachable, or no answer in time). */
static int tcp_alive(const char *uri, int wait_ms)
{
    char host[512], *colon;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int ok = 0;

    snprintf(host, sizeof(host), "%s", uri + 6);
    colon = strrchr(host, ':');
    if (!colon)
        return 0;
    *colon = '\0';
    /* nanomsg spells "any interface" as '*'; a client means this machine */
    const char *h = strcmp(host, "*") == 0 ? "127.0.0.1" : host;
    if (h[0] == '[') { /* [::1] */
        h++;
        char *close_br = strchr(host, ']');
        if (close_br)
            *close_br = '\0';
    }
    if (getaddrinfo(h, colon + 1, &hints, &res) != 0)
        return 0;
    for (struct addrinfo *ai = res; ai && !ok; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            ok = 1;
        } else if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t len = sizeof(soerr);
            if (poll(&p, 1, wait_ms) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
                ok = 1;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return ok;
}

static void trackd_path(char *buf, size_t len)
{
    const char *env = getenv("TRACKD");
    char self[1024];
    ssize_t n;

    if (env && *env) {
        snprintf(buf, len, "%s", env);
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(buf, len, "%s/trackd", self);
            if (access(buf, X_OK) == 0)
                return;
        }
    }
    snprintf(buf, len, "trackd");
}

/* Starts `trackd --data-dir <default> --listen <uri>` detached, then waits
 * up to 3 s for its socket. */
static int autostart(struct track_client *c, struct track_err *err)
{
    char bin[1100], data[1024], logpath[1100];
    pid_t pid;
    int status;

    if (paths_default_data_dir(data, sizeof(data)) || paths_mkdirs(data, 0700))
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot create the data directory %s", data);
    trackd_path(bin, sizeof(bin));
    snprintf(logpath, sizeof(logpath), "%s/trackd.log", data);
    pid = fork();
    if (pid < 0)
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot start trackd: %s", strerror(errno));
    if (pid == 0) {
        /* double fork: the daemon is nobody's child and leaves no zombie */
        if (setsid() < 0 || fork() != 0)
            _exit(0);
        int in = open("/dev/null", O_RDONLY);
        int out = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (in >= 0)
            dup2(in, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execlp(bin, bin, "--data-dir", data, "--listen", c->server, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    for (int i = 0; i < 300; i++) {
        if (ipc_alive(c->server))
            return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return cl_fail(err, TRACK_E_UNAVAILABLE,
                   "started %s but it did not listen on %s within 3 s (see %s)", bin, c->server,
                   logpath);
}

static int connect_sock(struct track_client *c, struct track_err *err)
{
    int s, maxsize = (int)LIMIT_FRAME_BYTES + (1 << 20), resend = 3600 * 1000;

    if (c->sock >= 0)
        return 0;
    if (strncmp(c->server, "ipc://", 6) == 0 && !ipc_alive(c->server)) {
        int rc = TRACK_E_UNAVAILABLE;
        if (c->autostart && !c->server_explicit && !getenv("TRACK_NO_AUTOSTART"))
            rc = autostart(c, err);
        else
            cl_fail(err, rc, "cannot reach trackd at %s: no daemon listens there", c->server);
        if (rc)
            return rc;
    }
    /* nanomsg would queue the request for a peer that never comes; ask the
     * network first, so an absent server is an error at once */
    if (strncmp(c->server, "tcp://", 6) == 0 &&
        !tcp_alive(c->server, c->timeout_ms < 1000 ? c->timeout_ms : 1000))
        return cl_fail(err, TRACK_E_UNAVAILABLE,
                       "cannot reach trackd at %s: nothing accepts connections there", c->server);
    s = nn_socket(AF_SP, NN_REQ);
    if (s < 0)
        return cl_fail(err, TRACK_E_UNAVAILABLE, "nn_socket: %s", nn_strerror(nn_errno()));
    if (nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &c->timeout_ms, sizeof(int)) < 0 ||
        nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &c->timeout_ms, sizeof(int)) < 0 ||
        nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsize, sizeof(int)) < 0 ||
        nn_setsockopt(s, NN_REQ, NN_REQ_RESEND_IVL, &resend, sizeof(int)) < 0 ||
        nn_connect(s, c->server) < 0) {
        int e = nn_errno();
        nn_close(s);
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot connect to %s: %s", c->server,
                       nn_strerror(e));
    }
    c->sock = s;
    c->sock_timeout = c->timeout_ms;
    return 0;
}

void cl_disconnect(struct track_client *c)
{
    if (c->sock >= 0) {
        nn_close(c->sock);
        c->sock = -1;
    }
    c->server_frame = 0; /* the next server may have another limit */
}

/* nanomsg's REQ header (4 bytes) inside the server's frame, and room for
 * an envelope around the request */
#define FRAME_HEADROOM 64

size_t cl_frame_limit(struct track_client *c)
{
    if (!c->server_frame) {
        Track__V1__Request rq = TRACK__V1__REQUEST__INIT;
        Track__V1__Hello h = TRACK__V1__HELLO__INIT;
        Track__V1__Response *rs = NULL;
        uint8_t rid[16], buf[128];
        struct track_err e2 = {0};

        randombytes_buf(rid, sizeof(rid));
        h.client_version = wire_str(TRACK_VERSION);
        rq.request_id.data = rid;
        rq.request_id.len = sizeof(rid);
        rq.op_case = TRACK__V1__REQUEST__OP_HELLO;
        rq.hello = &h;
        size_t len = track__v1__request__pack(&rq, buf);
        if (cl_roundtrip(c, buf, len, &rs, &e2) == 0 && !cl_response_error(rs, NULL) &&
            rs->result_case == TRACK__V1__RESPONSE__RESULT_HELLO && rs->hello->max_frame_bytes)
            c->server_frame = rs->hello->max_frame_bytes;
        if (rs)
            track__v1__response__free_unpacked(rs, NULL);
    }
    uint64_t f = c->server_frame ? c->server_frame : LIMIT_FRAME_BYTES;
    if (f > LIMIT_FRAME_BYTES)
        f = LIMIT_FRAME_BYTES; /* what our own socket and the spool take */
    if (f < 2 * FRAME_HEADROOM)
        f = 2 * FRAME_HEADROOM; /* a server's nonsense must not wrap below */
    return (size_t)(f - FRAME_HEADROOM);
}

int cl_frame_check(struct track_client *c, size_t len, struct track_err *err)
{
    if (len <= CL_FRAME_ASK_ABOVE)
        return 0;
    size_t limit = cl_frame_limit(c);
    if (len <= limit)
        return 0;
    return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                   "request of %zu bytes exceeds the server's frame limit of %zu bytes", len,
                   limit);
}

int cl_roundtrip(struct track_client *c, const uint8_t *req, size_t len, Track__V1__Response **out,
                 struct track_err *err)
{
    void *buf = NULL;
    int rc, n;

    *out = NULL;
    /* a daemon that died since our last exchange: a connected nanomsg
     * socket would wait out the timeout for it; the socket file says at
     * once (checked only after a quiet second, so it costs nothing when
     * busy) */
    if (c->sock >= 0 && strncmp(c->server, "ipc://", 6) == 0 &&
        wire_mono_ms() - c->last_ok_ms > 1000 && !ipc_alive(c->server))
        cl_disconnect(c);
    rc = connect_sock(c, err);
    if (rc)
        return rc;
    rc = cl_frame_check(c, len, err);
    if (rc)
        return rc;
    /* every call of the public API is bounded by one timeout in all: a
     * round trip gets what is left of the caller's deadline */
    int t = c->timeout_ms;
    if (c->deadline_ms) {
        int64_t left = c->deadline_ms - wire_mono_ms();
        if (left < 1)
            return cl_fail(err, TRACK_E_UNAVAILABLE,
                           "cannot reach trackd at %s: no time left within %d ms", c->server,
                           c->timeout_ms);
        if (left < t)
            t = (int)left;
    }
    if (t != c->sock_timeout) {
        nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_SNDTIMEO, &t, sizeof(t));
        nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_RCVTIMEO, &t, sizeof(t));
        c->sock_timeout = t;
    }
    if (nn_send(c->sock, req, len, 0) < 0) {
        int e = nn_errno();
        cl_disconnect(c);
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot reach trackd at %s: %s", c->server,
                       e == ETIMEDOUT ? "timed out sending" : nn_strerror(e));
    }
    n = nn_recv(c->sock, &buf, NN_MSG, 0);
    if (n < 0) {
        int e = nn_errno();
        cl_disconnect(c);
        if (e == ETIMEDOUT)
            return cl_fail(err, TRACK_E_UNAVAILABLE,
                           "cannot reach trackd at %s: no reply within %d ms", c->server,
                           c->sock_timeout);
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot reach trackd at %s: %s", c->server,
                       nn_strerror(e));
    }
    *out = track__v1__response__unpack(NULL, (size_t)n, buf);
    nn_freemsg(buf);
    c->last_ok_ms = wire_mono_ms();
    if (!*out)
        return cl_fail(err, TRACK_E_INTERNAL, "trackd at %s sent a reply that does not decode",
                       c->server);
    return 0;
}

int cl_response_error(const Track__V1__Response *rs, struct track_err *err)
{
    if (!rs->error || rs->error->code == TRACK__V1__CODE__OK)
        return 0;
    int code =
        rs->error->code > 0 && rs->error->code <= 9 ? -(int)rs->error->code : TRACK_E_INTERNAL;
    return cl_fail(err, code, "%s", rs->error->message ? rs->error->message : "");
}
