/*
 * conn.c: libtrack's transport: a cooked nanomsg REQ socket with send and
 * receive timeouts, so no call waits longer than the client's timeout.
 *
 * For ipc:// servers a plain connect(2) on the socket file first tells at
 * once whether a daemon listens (nanomsg would queue the request and wait
 * out the timeout). When nobody listens on the user's default socket and
 * autostart is on, a personal trackd is started in the background (as
 * gpg-agent is): fork before any nanomsg socket exists, exec at once. The
 * start is bounded by the call's deadline, and a daemon that exits instead
 * of listening is noticed at once (a pipe it holds closes) and its reason
 * read from its log.
 *
 * tcp:// servers take sealed frames only (proto/seal.h): every request is
 * sealed with the client key for the pinned server key (config.c says which
 * keys), and a reply must open with that key and answer that very request.
 * A plain reply is believed only as an error (the server refusing before it
 * could seal: an unknown key, a stale clock), never as a result. nanomsg's
 * REQ resend would send the identical sealed bytes, which the server's
 * replay cache refuses, so it is set to an hour: a retry is libtrack's (the
 * spool), and every one is sealed afresh from the plaintext. A request is
 * sealed straight into nanomsg's message buffer and sent zero-copy; it goes
 * in envelope version 2 (AES-256-GCM) on a CPU with AES-NI, and in version
 * 1 after a server said it speaks only 1 (seal.h).
 *
 * The default socket's directory is checked before every connect (paths.h):
 * one that is not ours and private is refused, never used. A socket the
 * caller may not open is reported as permission denied, not as absent.
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
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "track_limits.h"
#include "paths.h"
#include "seal.h"

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

/* 1 when something accepts connections on the ipc socket, 0 when not,
 * with the reason in *why (an errno: ENOENT, ECONNREFUSED, EACCES...). */
static int ipc_probe(const char *uri, int *why)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = uri + 6;
    int fd, ok;

    *why = ENAMETOOLONG;
    if (strlen(path) >= sizeof(sa.sun_path))
        return 0;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why = errno;
        return 0;
    }
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    *why = ok ? 0 : errno;
    close(fd);
    return ok;
}

static int ipc_alive(const char *uri)
{
    int why;
    return ipc_probe(uri, &why);
}

/* For the default socket: its directory must be ours and private. 0, or
 * TRACK_E_PERMISSION_DENIED with a message naming path, owner and mode. */
static int check_socket_dir(const struct track_client *c, struct track_err *err)
{
    char dir[1024], msg[700];

    if (!paths_is_default_socket(c->server) || paths_default_socket_dir(dir, sizeof(dir)))
        return 0;
    if (paths_check_private_dir(dir, msg, sizeof(msg)) < 0)
        return cl_fail(err, TRACK_E_PERMISSION_DENIED, "cannot use trackd at %s: %s", c->server,
                       msg);
    return 0;
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

/* The last error line trackd wrote to its log from `off` on, into buf
 * (empty when there is none). */
static void log_reason(const char *logpath, off_t off, char *buf, size_t len)
{
    char chunk[8192];
    int fd = open(logpath, O_RDONLY | O_CLOEXEC);
    ssize_t n = 0;

    buf[0] = '\0';
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size - off > (off_t)sizeof(chunk) - 1)
        off = size - (off_t)sizeof(chunk) + 1;
    if (off >= 0 && lseek(fd, off, SEEK_SET) == off)
        n = read(fd, chunk, sizeof(chunk) - 1);
    close(fd);
    if (n <= 0)
        return;
    chunk[n] = '\0';
    for (char *line = chunk, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strncmp(line, "error ", 6) == 0) {
            const char *m = strstr(line, ": ");
            snprintf(buf, len, "%s", m ? m + 2 : line + 6);
        } else if (strncmp(line, "trackd: ", 8) == 0) {
            snprintf(buf, len, "%s", line + 8);
        }
    }
}

/* How long a client whose trackd exited at start still waits for another
 * one (started by a concurrent client) to listen. */
#define AUTOSTART_GRACE_MS 1000

/* Starts `trackd --data-dir <default> --listen <uri>` detached, then waits
 * until its socket accepts, it exits (a pipe only it holds closes; then
 * briefly for a concurrent client's trackd), or the deadline (monotonic
 * ms) passes. */
static int autostart(struct track_client *c, int64_t deadline, struct track_err *err)
{
    char bin[1100], data[1024], logpath[1100], reason[600];
    struct stat sb;
    off_t log_off;
    pid_t pid;
    int status, hold[2];

    if (paths_default_data_dir(data, sizeof(data)) || paths_mkdirs(data, 0700))
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot create the data directory %s", data);
    trackd_path(bin, sizeof(bin));
    snprintf(logpath, sizeof(logpath), "%s/trackd.log", data);
    log_off = stat(logpath, &sb) == 0 ? sb.st_size : 0;
    if (pipe2(hold, O_CLOEXEC) < 0)
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot start trackd: %s", strerror(errno));
    pid = fork();
    if (pid < 0) {
        close(hold[0]);
        close(hold[1]);
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot start trackd: %s", strerror(errno));
    }
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
        /* the write end stays open in trackd for as long as it runs */
        close(hold[0]);
        fcntl(hold[1], F_SETFD, 0);
        execlp(bin, bin, "--data-dir", data, "--listen", c->server, (char *)NULL);
        static const char msg[] = "trackd: cannot run the trackd program\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(127);
    }
    close(hold[1]);
    waitpid(pid, &status, 0);
    for (;;) {
        if (ipc_alive(c->server)) {
            close(hold[0]);
            return 0;
        }
        int64_t left = deadline - wire_mono_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = hold[0], .events = POLLIN};
        if (poll(&p, 1, left < 10 ? (int)left : 10) == 1) {
            /* EOF: trackd exited (or could not be run) without listening */
            close(hold[0]);
            log_reason(logpath, log_off, reason, sizeof(reason));
            /* clients started together each start a trackd and all but one
             * find the data directory locked: the one that won may be a
             * moment from listening on this very socket */
            int64_t grace = wire_mono_ms() + AUTOSTART_GRACE_MS;
            if (strstr(reason, "cannot run the trackd program"))
                grace = 0;
            for (;;) {
                if (ipc_alive(c->server))
                    return 0;
                if (wire_mono_ms() >= grace || wire_mono_ms() >= deadline)
                    break;
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
            if (!reason[0])
                snprintf(reason, sizeof(reason), "%.500s exited at once", bin);
            return cl_fail(err, TRACK_E_UNAVAILABLE, "could not start trackd: %s (log: %s)", reason,
                           logpath);
        }
    }
    close(hold[0]);
    return cl_fail(err, TRACK_E_UNAVAILABLE,
                   "started %s but it did not listen on %s within the call's %d ms (see %s)", bin,
                   c->server, c->timeout_ms, logpath);
}

int cl_sock_new(struct track_client *c, int timeout_ms, int *out, struct track_err *err)
{
    int s, maxsize = (int)LIMIT_FRAME_BYTES + (1 << 20), resend = 3600 * 1000;
    /* nanomsg speaks IPv4 only unless told: an IPv6 literal ([::1]) needs it */
    int v4only = 0, ipv6 = strncmp(c->server, "tcp://[", 7) == 0;

    s = nn_socket(AF_SP, NN_REQ);
    if (s < 0)
        return cl_fail(err, TRACK_E_UNAVAILABLE, "nn_socket: %s", nn_strerror(nn_errno()));
    if (nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &timeout_ms, sizeof(int)) < 0 ||
        nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout_ms, sizeof(int)) < 0 ||
        nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsize, sizeof(int)) < 0 ||
        nn_setsockopt(s, NN_REQ, NN_REQ_RESEND_IVL, &resend, sizeof(int)) < 0 ||
        (ipv6 && nn_setsockopt(s, NN_SOL_SOCKET, NN_IPV4ONLY, &v4only, sizeof(int)) < 0) ||
        nn_connect(s, c->server) < 0) {
        int e = nn_errno();
        nn_close(s);
        return cl_fail(err, TRACK_E_UNAVAILABLE, "cannot connect to %s: %s", c->server,
                       nn_strerror(e));
    }
    *out = s;
    return 0;
}

/* Connects c->sock if it is not; `deadline` (monotonic ms) bounds an
 * autostart. */
static int connect_sock(struct track_client *c, int64_t deadline, struct track_err *err)
{
    int s, why = 0;

    if (c->sock >= 0)
        return 0;
    if (strncmp(c->server, "ipc://", 6) == 0) {
        int rc = check_socket_dir(c, err);
        if (rc)
            return rc;
    }
    if (strncmp(c->server, "ipc://", 6) == 0 && !ipc_probe(c->server, &why)) {
        int rc = TRACK_E_UNAVAILABLE;
        if (why == EACCES || why == EPERM)
            return cl_fail(err, TRACK_E_PERMISSION_DENIED,
                           "cannot connect to trackd at %s: permission denied on %s or its "
                           "directory (ask the daemon's owner for access: --socket-mode and "
                           "group)",
                           c->server, c->server + 6);
        if (c->autostart && !c->server_explicit && !getenv("TRACK_NO_AUTOSTART"))
            rc = autostart(c, deadline, err);
        else
            cl_fail(err, rc, "cannot reach trackd at %s: no daemon listens there", c->server);
        if (rc)
            return rc;
        /* what was started made the directory: it is checked like any */
        rc = check_socket_dir(c, err);
        if (rc)
            return rc;
    }
    /* nanomsg would queue the request for a peer that never comes; ask the
     * network first, so an absent server is an error at once */
    int64_t probe = deadline - wire_mono_ms(); /* within the call's deadline, 1 s at most */
    if (probe > 1000)
        probe = 1000;
    if (strncmp(c->server, "tcp://", 6) == 0 && (probe < 1 || !tcp_alive(c->server, (int)probe)))
        return cl_fail(err, TRACK_E_UNAVAILABLE,
                       "cannot reach trackd at %s: nothing accepts connections there", c->server);
    int rc = cl_sock_new(c, c->timeout_ms, &s, err);
    if (rc)
        return rc;
    c->sock = s;
    c->sock_timeout = c->timeout_ms;
    return 0;
}

void cl_disconnect(struct track_client *c)
{
    cl_pipe_close(c);
    if (c->sock >= 0) {
        nn_close(c->sock);
        c->sock = -1;
    }
    c->server_frame = 0; /* the next server may have another limit */
}

/* nanomsg's REQ header (4 bytes) inside the server's frame, and room for
 * an envelope around the request; a sealed one adds SEAL_REQ_OVERHEAD_MAX */
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
    uint64_t room = FRAME_HEADROOM;
    if (strncmp(c->server, "tcp://", 6) == 0 && !c->plain_tcp)
        room += SEAL_REQ_OVERHEAD_MAX;
    if (f < 2 * room)
        f = 2 * room; /* a server's nonsense must not wrap below */
    return (size_t)(f - room);
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

static int mismatch(struct track_client *c, struct track_err *err)
{
    c->seal_fault = 1;
    cl_disconnect(c);
    return cl_fail(err, TRACK_E_UNAUTHENTICATED,
                   "server key mismatch: %s answered with a key other than the pinned %s; if "
                   "the server's key really changed, run track config set server %s "
                   "--server-key NEW",
                   c->server, c->server_key_text, c->server);
}

/* Opens the reply to a sealed request (buf: nanomsg's, freed here). A plain
 * reply counts only as an error the server gave before it could seal. */
int cl_open_reply(struct track_client *c, const struct seal_ticket *ticket, void *buf, size_t n,
                  Track__V1__Response **out, struct track_err *err)
{
    struct seal_err se = {0};
    uint8_t *plain = NULL;
    size_t plen = 0;
    int kind = seal_frame_kind(buf, n);

    if (kind != SEAL_KIND_REPLY) {
        Track__V1__Response *rs = track__v1__response__unpack(NULL, n, buf);
        nn_freemsg(buf);
        c->last_ok_ms = wire_mono_ms();
        if (rs && rs->error && rs->error->code != TRACK__V1__CODE__OK) {
            /* a refusal names the key of the server that gave it: another
             * one than ours means our request was sealed for a key it
             * does not hold */
            const char *m = rs->error->message ? strstr(rs->error->message, "(server key ") : NULL;
            if (m && strncmp(m + 12, c->server_key_text, strlen(c->server_key_text)) != 0) {
                track__v1__response__free_unpacked(rs, NULL);
                return mismatch(c, err);
            }
            *out = rs;
            return 0;
        }
        if (rs)
            track__v1__response__free_unpacked(rs, NULL);
        c->seal_fault = 1;
        return cl_fail(err, TRACK_E_UNAUTHENTICATED,
                       "trackd at %s answered a sealed request with a plain reply that is not "
                       "an error; not trusted (is it an older trackd, or someone else?)",
                       c->server);
    }
    int rc = seal_client_open_reply(c->seal, ticket, buf, n, &plain, &plen, &se);
    nn_freemsg(buf);
    if (rc == SEAL_E_WRONG_SERVER)
        return mismatch(c, err);
    if (rc) {
        /* a reply to another request (REPLAYED) or a broken frame: the
         * connection is out of step; start again on a fresh one */
        cl_disconnect(c);
        return cl_fail(err, TRACK_E_UNAVAILABLE, "trackd at %s sent a bad sealed reply: %s",
                       c->server, se.msg);
    }
    c->last_ok_ms = wire_mono_ms();
    *out = track__v1__response__unpack(NULL, plen, plain ? plain : (const uint8_t *)"");
    free(plain);
    if (!*out)
        return cl_fail(err, TRACK_E_INTERNAL, "trackd at %s sent a reply that does not decode",
                       c->server);
    return 0;
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
    /* every call of the public API is bounded by one timeout in all: a
     * round trip (and a daemon started for it) gets what is left of the
     * caller's deadline, or of this call's timeout when there is none */
    int64_t deadline = c->deadline_ms ? c->deadline_ms : wire_mono_ms() + c->timeout_ms;
    c->seal_fault = 0;
    if (strncmp(c->server, "tcp://", 6) == 0 && !c->plain_tcp) {
        rc = cl_seal_setup(c, err);
        if (rc)
            return rc;
    }
    rc = connect_sock(c, deadline, err);
    if (rc)
        return rc;
    rc = cl_frame_check(c, len, err);
    if (rc)
        return rc;
    int t = c->timeout_ms;
    {
        int64_t left = deadline - wire_mono_ms();
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
    const uint8_t *plain_req = req;
    size_t plain_len = len;
    int resealed = 0;
reseal:;
    struct seal_ticket ticket;
    if (c->seal) {
        /* sealed straight into nanomsg's message (sent zero-copy: NN_MSG) */
        struct seal_err se = {0};
        size_t slen, cap = seal_client_frame_bytes(c->seal, plain_len);
        void *msg = nn_allocmsg(cap, 0);
        if (!msg)
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED,
                           "cannot seal the request: no memory for %zu bytes", cap);
        if (seal_client_seal_into(c->seal, plain_req, plain_len, msg, cap, &slen, &ticket, &se)) {
            nn_freemsg(msg);
            return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "cannot seal the request: %s", se.msg);
        }
        rc = nn_send(c->sock, &msg, NN_MSG, 0);
        if (rc < 0)
            nn_freemsg(msg);
    } else {
        rc = nn_send(c->sock, req, len, 0);
    }
    if (rc < 0) {
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
    if (c->seal) {
        rc = cl_open_reply(c, &ticket, buf, (size_t)n, out, err);
        /* nanomsg's REQ resends the very bytes after a reconnect, and the
         * server refuses them as a replay when the first copy arrived: the
         * retry is ours, sealed afresh (the request id keeps a write from
         * applying twice) */
        if (rc == 0 && !resealed && (*out)->error &&
            (*out)->error->code == TRACK__V1__CODE__UNAUTHENTICATED && (*out)->error->message &&
            strstr((*out)->error->message, "already received (a replay)")) {
            track__v1__response__free_unpacked(*out, NULL);
            *out = NULL;
            resealed = 1;
            goto reseal;
        }
        /* a server that cannot open envelope version 2 (no AES-NI, or
         * older): seal again in version 1, and keep to it (proto/seal.h) */
        if (rc == 0 && (*out)->error && (*out)->error->message &&
            seal_client_version(c->seal) != SEAL_VERSION &&
            strstr((*out)->error->message, "this server speaks 1") &&
            seal_client_set_version(c->seal, SEAL_VERSION) == 0) {
            track__v1__response__free_unpacked(*out, NULL);
            *out = NULL;
            goto reseal;
        }
        return rc;
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
