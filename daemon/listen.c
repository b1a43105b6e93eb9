/*
 * listen.c: trackd's listeners. Opens every --listen URI as a raw REP
 * nanomsg socket with its frame limit (NN_RCVMAXSIZE: LIMIT_FRAME_BYTES on
 * ipc, SRV_TCP_FRAME_BYTES on tcp), makes an ipc socket's directory (the
 * default one private), binds the socket file with the configured mode,
 * and removes a stale socket file only when nothing listens on it. Closes
 * the listeners (and unlinks their socket files) at exit. A tcp:// listener
 * is sealed (loop.h: sealed[]) unless --plain-tcp; which tcp hosts may be
 * listened on is main.c's rule, checked before the loop starts.
 *
 * Descriptors. nanomsg's accept retries without pause when accept fails
 * with EMFILE (one thread at 100% while a connection waits), so the loop
 * counts open descriptors (every second, every FD_CHECK_MS once a quarter
 * are in use): it logs once at 90% of the limit,
 * and when fewer than FD_RESERVE are left it shuts the busiest listener
 * (which closes that listener's connections; their REQ clients resend
 * after reconnecting) and binds it again after a pause that doubles while
 * it keeps happening.
 */
#include "loop.h"

#include <dirent.h>
#include <errno.h>
#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"
#include "paths.h"
#include "track_limits.h"

#define FD_RESERVE   32   /* descriptors kept free: below it, a listener pauses */
#define PAUSE_MIN_MS 1000 /* first pause of a listener; doubles up to PAUSE_MAX_MS */
#define PAUSE_MAX_MS 30000

/* 1 when something accepts connections on the unix socket `path`, 0 when
 * nothing does (ECONNREFUSED: a stale file), -1 when it cannot be told
 * (errno set). A full backlog (EAGAIN) is someone listening. */
static int ipc_listener_alive(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd, rc;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN ||
        errno == EINPROGRESS)
        rc = 1;
    else
        rc = errno == ECONNREFUSED ? 0 : -1;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Makes the socket's directory (the default one private: 0700, ours, no
 * symlink) and clears the way for bind: a stale socket from a crashed
 * daemon is removed, but a socket someone still listens on, or a file that
 * is not a socket, is left alone and trackd refuses to start. */
static int prepare_ipc_dir(const char *uri)
{
    char path[1024], msg[600], *slash;
    const char *sock = uri + 6;
    struct stat sb;

    if (strncmp(uri, "ipc://", 6) != 0)
        return 0;
    snprintf(path, sizeof(path), "%s", sock);
    slash = strrchr(path, '/');
    if (slash && slash != path) {
        *slash = '\0';
        if (paths_is_default_socket(uri)) {
            if (paths_prepare_private_dir(path, msg, sizeof(msg))) {
                srv_log(SRV_LOG_ERROR, "loop", "%s", msg);
                return -1;
            }
        } else if (mkdir(path, 0700) && errno != EEXIST) {
            srv_log(SRV_LOG_ERROR, "loop", "cannot create socket directory %s: %s", path,
                    strerror(errno));
            return -1;
        }
    }
    if (lstat(sock, &sb) < 0) {
        if (errno == ENOENT)
            return 0;
        srv_log(SRV_LOG_ERROR, "loop", "cannot examine %s: %s", sock, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(sb.st_mode)) {
        srv_log(SRV_LOG_ERROR, "loop",
                "%s exists and is not a socket; refusing to remove it (choose another --listen)",
                sock);
        return -1;
    }
    switch (ipc_listener_alive(sock)) {
    case 0:
        break;
    case 1:
        srv_log(SRV_LOG_ERROR, "loop",
                "another daemon listens on %s; refusing to start (stop it, or give this one "
                "another --listen)",
                sock);
        return -1;
    default:
        srv_log(SRV_LOG_ERROR, "loop",
                "cannot tell whether a daemon listens on %s (%s); refusing to replace it", sock,
                strerror(errno));
        return -1;
    }
    /* a stale socket from a crashed daemon would make bind fail */
    if (unlink(sock) < 0 && errno != ENOENT) {
        srv_log(SRV_LOG_ERROR, "loop", "cannot remove the stale socket %s: %s", sock,
                strerror(errno));
        return -1;
    }
    srv_log(SRV_LOG_INFO, "loop", "removed a stale socket path=%s", sock);
    return 0;
}

static unsigned socket_mode(const struct loop *l)
{
    return l->srv->cfg.socket_mode ? l->srv->cfg.socket_mode : 0600;
}

/* Binds an ipc socket with the configured mode. The umask keeps the file
 * private between bind and chmod. 0, or -1 logged. */
static int bind_ipc(struct loop *l, int s, const char *uri)
{
    /* the socket file is born with its mode (a client never sees a moment
     * of another one); the chmod below only makes sure */
    mode_t old = umask((mode_t)(0777 & ~socket_mode(l)));
    int rc = nn_bind(s, uri);
    int e = nn_errno();

    umask(old);
    if (rc < 0) {
        srv_log(SRV_LOG_ERROR, "loop", "cannot listen uri=%s: %s", uri, nn_strerror(e));
        return -1;
    }
    if (chmod(uri + 6, (mode_t)socket_mode(l)) < 0) {
        srv_log(SRV_LOG_ERROR, "loop", "cannot set mode %04o on %s: %s", socket_mode(l), uri + 6,
                strerror(errno));
        nn_shutdown(s, rc);
        unlink(uri + 6); /* ours: bound a moment ago */
        return -1;
    }
    return rc;
}

/* Opens every listener. A listener that fails is closed before returning,
 * so srv_close_sockets never unlinks a socket path this daemon did not bind
 * (another daemon's, refused above). */
int srv_open_sockets(struct loop *l)
{
    for (int i = 0; i < l->srv->cfg.n_listen; i++) {
        const char *uri = l->srv->cfg.listen[i];
        int ipc = strncmp(uri, "ipc://", 6) == 0;
        int inproc = strncmp(uri, "inproc://", 9) == 0;
        int s = nn_socket(AF_SP_RAW, NN_REP);
        int fd;
        size_t fdsz = sizeof(fd);
        /* over tcp anyone who reaches the port may declare a frame: no more
         * than the largest batch needs (Hello reports it) */
        int maxsize = strncmp(uri, "tcp://", 6) == 0 ? (int)SRV_TCP_FRAME_BYTES
                      : inproc ? (int)(LIMIT_FRAME_BYTES + sizeof(struct srv_http_head))
                               : (int)LIMIT_FRAME_BYTES;

        if (s < 0) {
            srv_log(SRV_LOG_ERROR, "loop", "nn_socket: %s", nn_strerror(nn_errno()));
            return -1;
        }
        if (nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsize, sizeof(maxsize)) < 0) {
            srv_log(SRV_LOG_ERROR, "loop", "cannot listen uri=%s: %s", uri,
                    nn_strerror(nn_errno()));
            nn_close(s);
            return -1;
        }
        l->eids[l->n_socks] = -1;
        if (ipc && (prepare_ipc_dir(uri) < 0 || (l->eids[l->n_socks] = bind_ipc(l, s, uri)) < 0)) {
            nn_close(s);
            return -1;
        }
        /* nanomsg binds IPv4 only unless told: an IPv6 literal ([::1]) needs it */
        int v4only = 0;
        if (!ipc && strchr(uri + 6, '[') &&
            nn_setsockopt(s, NN_SOL_SOCKET, NN_IPV4ONLY, &v4only, sizeof(v4only)) < 0) {
            srv_log(SRV_LOG_ERROR, "loop", "cannot listen uri=%s: %s", uri,
                    nn_strerror(nn_errno()));
            nn_close(s);
            return -1;
        }
        if (!ipc && (l->eids[l->n_socks] = nn_bind(s, uri)) < 0) {
            srv_log(SRV_LOG_ERROR, "loop", "cannot listen uri=%s: %s", uri,
                    nn_strerror(nn_errno()));
            nn_close(s);
            return -1;
        }
        /* bound: from here srv_close_sockets owns it (and unlinks its file) */
        l->frame_limit[l->n_socks] = (uint32_t)maxsize;
        l->sealed[l->n_socks] = !ipc && !inproc && !l->srv->cfg.plain_tcp;
        l->internal[l->n_socks] = inproc;
        l->socks[l->n_socks++] = s;
        if (nn_getsockopt(s, NN_SOL_SOCKET, NN_RCVFD, &fd, &fdsz) < 0) {
            srv_log(SRV_LOG_ERROR, "loop", "cannot listen uri=%s: %s", uri,
                    nn_strerror(nn_errno()));
            return -1;
        }
        l->pfd[i] = (struct pollfd){.fd = fd, .events = POLLIN};
        if (ipc)
            srv_log(SRV_LOG_INFO, "loop", "listening uri=%s mode=%04o", uri, socket_mode(l));
        else
            srv_log(SRV_LOG_INFO, "loop", "listening uri=%s %s", uri,
                    l->sealed[l->n_socks - 1] ? "sealed" : "plain");
    }
    return 0;
}

/* ---- descriptors ---------------------------------------------------------------- */

/* Descriptors open in this process, or -1 (errno set). */
static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    if (!d)
        return -1;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* Shuts the listener with the most connections: nanomsg then stops
 * accepting on it (and closes its connections), the only way to stop it
 * accepting, which it would otherwise retry without pause on EMFILE. */
static void pause_busiest(struct loop *l, int used, long limit)
{
    int best = -1;
    uint64_t most = 0;

    for (int i = 0; i < l->n_socks; i++) {
        uint64_t c = nn_get_statistic(l->socks[i], NN_STAT_CURRENT_CONNECTIONS);
        /* the HTTP front's own socket: its connections are bounded there */
        if (l->internal[i])
            continue;
        if (l->eids[i] >= 0 && (best < 0 || (c != (uint64_t)-1 && c > most))) {
            best = i;
            most = c == (uint64_t)-1 ? 0 : c;
        }
    }
    if (best < 0)
        return;
    int64_t now = wire_mono_ms();
    /* pauses in a row double; a quiet minute starts again from the shortest */
    if (!l->pause_ms || now - l->last_pause_ms > 60000)
        l->pause_ms = PAUSE_MIN_MS;
    else if (l->pause_ms < PAUSE_MAX_MS)
        l->pause_ms *= 2;
    l->last_pause_ms = now;
    srv_log(SRV_LOG_WARN, "loop",
            "out of descriptors: %d of %ld in use (RLIMIT_NOFILE); closing uri=%s and its %llu "
            "connections, listening again in %lld ms",
            used, limit, l->srv->cfg.listen[best], (unsigned long long)most,
            (long long)l->pause_ms);
    nn_shutdown(l->socks[best], l->eids[best]);
    l->eids[best] = -1;
    l->resume_ms = now + l->pause_ms;
}

static void resume_listeners(struct loop *l)
{
    for (int i = 0; i < l->n_socks; i++) {
        const char *uri = l->srv->cfg.listen[i];
        if (l->eids[i] >= 0)
            continue;
        int ipc = strncmp(uri, "ipc://", 6) == 0;
        /* ipc: under the same umask and socket mode as srv_open_sockets */
        l->eids[i] = ipc ? bind_ipc(l, l->socks[i], uri) : nn_bind(l->socks[i], uri);
        if (l->eids[i] < 0) {
            srv_log(SRV_LOG_WARN, "loop", "cannot listen again uri=%s: %s; retrying", uri,
                    nn_strerror(nn_errno()));
            l->resume_ms = wire_mono_ms() + PAUSE_MIN_MS;
            continue;
        }
        srv_log(SRV_LOG_INFO, "loop", "listening again uri=%s", uri);
    }
}

/* Counts descriptors (every tick, and every FD_CHECK_MS when near the
 * limit), warns once at 90%, pauses a listener when fewer than FD_RESERVE
 * are left and resumes paused ones when their pause is over. */
void srv_watch_fds(struct loop *l)
{
    struct rlimit rl;
    int64_t now = wire_mono_ms();
    int paused = 0;

    for (int i = 0; i < l->n_socks; i++)
        paused |= l->eids[i] < 0;
    if (paused && now >= l->resume_ms)
        resume_listeners(l);
    if (now - l->fd_checked_ms < (l->fd_busy ? FD_CHECK_MS : IDLE_TICK_MS))
        return;
    l->fd_checked_ms = now;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
        return;
    long limit = (long)rl.rlim_cur;
    int used = count_fds();
    if (used < 0 && (errno == EMFILE || errno == ENFILE))
        used = (int)limit; /* not even one left to count them with */
    else if (used < 0)
        return;
    /* nothing wakes the loop when nanomsg accepts: look more often once a
     * quarter are in use, so a listener pauses within FD_CHECK_MS of the edge */
    l->fd_busy = used >= limit / 4;
    if (used >= limit - limit / 10) {
        if (!l->fd_warned)
            srv_log(SRV_LOG_WARN, "loop",
                    "descriptors: %d of %ld in use (RLIMIT_NOFILE, 90%% or more); past %ld "
                    "trackd stops accepting for a while",
                    used, limit, limit - FD_RESERVE);
        l->fd_warned = 1;
    } else if (used < limit - limit / 5) {
        l->fd_warned = 0; /* warn again next time */
    }
    if (used >= limit - FD_RESERVE)
        pause_busiest(l, used, limit);
}

void srv_close_sockets(struct loop *l)
{
    for (int i = 0; i < l->n_socks; i++) {
        const char *uri = l->srv->cfg.listen[i];
        nn_close(l->socks[i]);
        if (strncmp(uri, "ipc://", 6) == 0)
            unlink(uri + 6);
    }
}
