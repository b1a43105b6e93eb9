/*
 * main.c: trackd's entry point: options, the config file, the data
 * directory and its lock, start-up checks, then the loop. trackd stays in
 * the foreground (as systemd expects) and logs to stderr.
 *
 *   trackd [--data-dir DIR] [--listen URI]... [--log-level LEVEL]
 *          [--durability normal|full] [--workers N] [--config FILE]
 *          [--socket-mode 0600|0660|0666] [--plain-tcp] [--print-public-key]
 *          [--force] [--check] [--restore FILE]
 *
 * Who may connect: an ipc socket file gets --socket-mode (0600 unless told);
 * the default socket's directory must be private (see paths.h). A tcp://
 * listener takes sealed frames only (seal_srv.c): the server key pair is
 * DATA_DIR/server.key, made at the first start with a tcp:// listener, and
 * only keys of users in the store get in, so it may listen on any address.
 * --plain-tcp (testing and benchmarks only) makes tcp:// listeners take
 * plain frames instead, and is refused for anything but loopback.
 *
 * Files it keeps in the data directory are 0600 and its directories 0700,
 * whatever the umask. The restore sequence is restore.c's; the disk-full
 * reserve is reserve.c's.
 */
#include "srv.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "http.h"
#include "paths.h"

static const char usage[] =
    "usage: trackd [options]\n"
    "\n"
    "The track daemon: stores experiments, runs, params, metrics and tags in\n"
    "SQLite and serves track clients over nanomsg. Stays in the foreground.\n"
    "\n"
    "  --data-dir DIR        data directory (default $XDG_DATA_HOME/track)\n"
    "  --listen URI          ipc://PATH or tcp://HOST:PORT; repeatable\n"
    "                        (default: the user's socket, see `track status`)\n"
    "  --http ADDR:PORT      also serve HTTP there: MLflow's REST API (point\n"
    "                        MLFLOW_TRACKING_URI at it), OTLP traces (/v1/traces),\n"
    "                        the dashboard (open http://ADDR:PORT/), /health; off\n"
    "                        by default; PORT 0 takes a free port, named in the log.\n"
    "                        On a loopback address requests act as this daemon's\n"
    "                        owner; on any other, users must exist and every\n"
    "                        request needs a token (`track admin token create`)\n"
    "  --trace-retention DAYS  delete traces (/v1/traces) older than DAYS, in the\n"
    "                        background (default 0: keep them)\n"
    "  --log-level LEVEL     error, warn, info (default) or debug\n"
    "  --durability MODE     normal (default): an acknowledged write survives a\n"
    "                        crash of trackd; full: it also survives power loss\n"
    "  --workers N           read threads (default 2)\n"
    "  --config FILE         config file (default DIR/trackd.conf if present);\n"
    "                        lines `key = value`: log_level, durability, workers,\n"
    "                        socket_mode, http, trace_retention, and each sealed\n"
    "                        key's budgets:\n"
    "                        limit_requests (a second, default 5000), limit_bytes\n"
    "                        (MiB a second, 128), limit_runs (started a minute,\n"
    "                        6000), limit_uploads (in flight, 8); 0: unlimited;\n"
    "                        SIGHUP re-reads log_level and the limits; a flag given\n"
    "                        here wins\n"
    "  --socket-mode MODE    mode of ipc socket files: 0600 (default: only this\n"
    "                        user), 0660 (and the daemon's group) or 0666 (anyone)\n"
    "  --print-public-key    print the server's public key (trk1:...), making the\n"
    "                        key pair DIR/server.key first if absent, and exit\n"
    "  --add-user NAME --role ROLE --key KEY\n"
    "                        add a user of sealed tcp:// (ROLE reader, writer or\n"
    "                        admin; KEY from `track keygen`) to the store and exit\n"
    "  --plain-tcp           testing only: tcp:// listeners take plain frames,\n"
    "                        unauthenticated; refused for non-loopback addresses\n"
    "  --force               start even if the database fails its integrity check\n"
    "  --check               verify the database and exit (0 clean, 1 not)\n"
    "  --restore FILE        replace the database with the backup FILE and exit; the\n"
    "                        old one is kept whole as track.db.before-restore-MS, and a\n"
    "                        restore cut short is finished or undone at the next start\n"
    "  --version, --help\n";

static void die_usage(const char *msg)
{
    fprintf(stderr, "trackd: %s\n%s", msg, usage);
    exit(2);
}

static int parse_durability(const char *s)
{
    if (strcmp(s, "normal") == 0)
        return STORE_DURABILITY_NORMAL;
    if (strcmp(s, "full") == 0)
        return STORE_DURABILITY_FULL;
    return -1;
}

/* Settings of the config file that the command line may already have given
 * (-1: not yet): kept here, not in read_config's arguments, as SIGHUP does
 * not apply them (a listener's mode or address is fixed at start). */
static int opt_socket_mode = -1;
/* Where read_config puts the per-key limits (reset to their defaults at
 * each read, so a key taken out of the file is back to its default). */
static struct srv_limits_cfg *cfg_limits;

static void limits_default(struct srv_limits_cfg *c)
{
    *c = (struct srv_limits_cfg){.requests_per_s = SRV_LIMIT_DEFAULT_REQUESTS,
                                 .bytes_per_s = SRV_LIMIT_DEFAULT_BYTES,
                                 .runs_per_min = SRV_LIMIT_DEFAULT_RUNS,
                                 .uploads = SRV_LIMIT_DEFAULT_UPLOADS};
}

/* A limit's value: a whole number >= 0 (0: unlimited), at most max. */
static int parse_limit(const char *v, double max, double *out)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0 || (double)n > max)
        return -1;
    *out = (double)n;
    return 0;
}

/* "0600", "0660" or "0666" (also without the leading 0); -1 for anything
 * else: a socket mode needs read and write for whoever may connect, and
 * nothing else means anything on a socket. */
static int parse_socket_mode(const char *s)
{
    char *end;
    long m;

    if (strlen(s) < 3 || strlen(s) > 4 || strspn(s, "01234567") != strlen(s))
        return -1;
    m = strtol(s, &end, 8);
    if (*end || (m != 0600 && m != 0660 && m != 0666))
        return -1;
    return (int)m;
}

/* 1 when tcp://HOST:PORT names a loopback host (127.0.0.0/8, ::1,
 * localhost), 0 otherwise ("*", 0.0.0.0, any other address or interface). */
static int tcp_is_loopback(const char *uri)
{
    char host[256], *colon;
    unsigned char a[16];
    size_t n;

    snprintf(host, sizeof(host), "%s", uri + 6);
    colon = strrchr(host, ':');
    if (!colon)
        return 0;
    *colon = '\0';
    n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host[n - 1] = '\0';
        memmove(host, host + 1, n - 1);
    }
    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1)
        return memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
    return 0;
}

/* Sealed tcp:// listeners may bind any address. With --plain-tcp they
 * take plain frames, so they are refused beyond loopback and warned about.
 * Sets *any_tcp when a tcp:// listener is configured. 0, or -1 logged. */
static int check_tcp_listeners(const struct srv_config *cfg, int *any_tcp)
{
    *any_tcp = 0;
    for (int i = 0; i < cfg->n_listen; i++) {
        const char *uri = cfg->listen[i];
        if (strncmp(uri, "tcp://", 6) != 0)
            continue;
        *any_tcp = 1;
        if (!cfg->plain_tcp)
            continue;
        if (!tcp_is_loopback(uri)) {
            srv_log(SRV_LOG_ERROR, "main",
                    "refusing to listen on %s with --plain-tcp: plain TCP is neither "
                    "authenticated nor encrypted, so it is for loopback only (127.0.0.0/8, "
                    "::1, localhost); drop --plain-tcp to serve sealed frames on any address",
                    uri);
            return -1;
        }
        srv_log(SRV_LOG_WARN, "main",
                "%s takes plain frames (--plain-tcp, testing only): every user of this machine "
                "can connect and read or write all data",
                uri);
    }
    return 0;
}

/* --add-user NAME --role ROLE --key KEY: one user in the store, then exit
 * (the data directory is locked by the caller, so no trackd runs on it). */
static int add_user(const struct srv_config *cfg, const char *name, const char *role,
                    const char *key)
{
    struct store_opts so = {.durability = STORE_DURABILITY_FULL};
    struct store_err err = {0};
    struct seal_err se = {0};
    uint8_t pk[SEAL_PUBLIC_BYTES];
    struct store *st = NULL;
    int r = role ? store_role_parse(role) : 0;

    if (!r) {
        fprintf(stderr, "trackd: --role: expected reader, writer or admin\n");
        return 2;
    }
    if (!key || seal_key_from_text(key, pk, &se)) {
        fprintf(stderr, "trackd: --key: %s\n", key ? se.msg : "required (trk1:...)");
        return 2;
    }
    if (store_open(cfg->db_path, &so, &st, &err) ||
        store_user_add(st, name, r, pk, wire_now_ms(), NULL, &err)) {
        fprintf(stderr, "trackd: --add-user %s: %s\n", name, err.msg);
        store_close(st);
        return 1;
    }
    store_close(st);
    printf("added user %s (%s) key %s\n", name, store_role_name(r), key);
    return 0;
}

/* --print-public-key: the server key's public half, made first if absent. */
static int print_public_key(const struct srv_config *cfg)
{
    struct seal_keypair kp = {0};
    char text[SEAL_KEY_TEXT_BYTES];

    if (srv_server_key_load(cfg, 1, &kp))
        return 1;
    seal_key_to_text(kp.pk, text);
    seal_keypair_clear(&kp);
    printf("%s\n", text);
    return 0;
}

/* nanomsg binds addresses and interface names, not host names: a
 * tcp://localhost:PORT listener binds 127.0.0.1 instead. */
static void loopback_by_address(struct srv_config *cfg)
{
    static char spelled[SRV_MAX_LISTEN][300];

    for (int i = 0; i < cfg->n_listen; i++) {
        if (strncmp(cfg->listen[i], "tcp://localhost:", 16) != 0)
            continue;
        snprintf(spelled[i], sizeof(spelled[i]), "tcp://127.0.0.1:%.250s", cfg->listen[i] + 16);
        cfg->listen[i] = spelled[i];
    }
}

/* --trace-retention, or trace_retention in the config file; -1: unset */
static int opt_trace_days = -1;

/* `http = ADDR:PORT` from the config file, when --http did not say */
static char cfg_http[300];

/* Reads `key = value` lines. Settings given on the command line win, so
 * this only fills what is still unset (-1 markers). Returns 0, or -1 with a
 * message naming the line. */
static int read_config(const char *path, int *log_level, int *durability, int *workers,
                       int required)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int lineno = 0;

    struct srv_limits_cfg lim;
    limits_default(&lim);
    if (!f) {
        if (!required && errno == ENOENT) {
            if (cfg_limits)
                *cfg_limits = lim;
            return 0;
        }
        srv_log(SRV_LOG_ERROR, "config", "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *k = line, *v, *end;
        lineno++;
        while (*k == ' ' || *k == '\t')
            k++;
        if (*k == '#' || *k == '\n' || *k == '\0')
            continue;
        v = strchr(k, '=');
        if (!v) {
            srv_log(SRV_LOG_ERROR, "config", "%s:%d: expected key = value", path, lineno);
            fclose(f);
            return -1;
        }
        *v++ = '\0';
        for (end = v + strlen(v);
             end > v && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r');)
            *--end = '\0';
        while (*v == ' ' || *v == '\t')
            v++;
        for (end = k + strlen(k); end > k && (end[-1] == ' ' || end[-1] == '\t');)
            *--end = '\0';
        if (strcmp(k, "log_level") == 0) {
            int lv = srv_log_level_parse(v);
            if (lv < 0)
                goto bad;
            if (*log_level < 0)
                *log_level = lv;
        } else if (strcmp(k, "durability") == 0) {
            int d = parse_durability(v);
            if (d < 0)
                goto bad;
            if (*durability < 0)
                *durability = d;
        } else if (strcmp(k, "workers") == 0) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 16)
                goto bad;
            if (*workers < 0)
                *workers = (int)n;
        } else if (strcmp(k, "socket_mode") == 0) {
            int m = parse_socket_mode(v);
            if (m < 0)
                goto bad;
            if (opt_socket_mode < 0)
                opt_socket_mode = m;
        } else if (strcmp(k, "trace_retention") == 0) {
            long d = strtol(v, &end, 10);
            if (*end || d < 0 || d > 36500)
                goto bad;
            if (opt_trace_days < 0)
                opt_trace_days = (int)d;
        } else if (strcmp(k, "http") == 0) {
            if (!*v || strlen(v) >= sizeof(cfg_http))
                goto bad;
            if (!cfg_http[0])
                snprintf(cfg_http, sizeof(cfg_http), "%s", v);
        } else if (strcmp(k, "limit_requests") == 0) {
            if (parse_limit(v, 1e9, &lim.requests_per_s))
                goto bad;
        } else if (strcmp(k, "limit_bytes") == 0) { /* MiB a second */
            double mib;
            if (parse_limit(v, 1e6, &mib))
                goto bad;
            lim.bytes_per_s = mib * 1048576.0;
        } else if (strcmp(k, "limit_runs") == 0) {
            if (parse_limit(v, 1e9, &lim.runs_per_min))
                goto bad;
        } else if (strcmp(k, "limit_uploads") == 0) {
            double u;
            if (parse_limit(v, 64, &u))
                goto bad;
            lim.uploads = (int)u;
        } else {
            srv_log(SRV_LOG_ERROR, "config", "%s:%d: unknown key \"%s\"", path, lineno, k);
            fclose(f);
            return -1;
        }
        continue;
    bad:
        srv_log(SRV_LOG_ERROR, "config", "%s:%d: bad value \"%s\" for %s", path, lineno, v, k);
        fclose(f);
        return -1;
    }
    fclose(f);
    if (cfg_limits)
        *cfg_limits = lim;
    return 0;
}

/* The --log-level given on the command line, -1 when none: it wins over
 * the config file at start and at every reload alike. */
static int flag_log_level = -1;

void srv_reload_config(struct srv *srv)
{
    int lv = flag_log_level, d = -1, w = -1;
    if (!srv->cfg.config_path[0])
        return;
    cfg_limits = &srv->cfg.limits;
    if (read_config(srv->cfg.config_path, &lv, &d, &w, 0) != 0)
        return;
    if (flag_log_level >= 0) {
        srv_log(SRV_LOG_INFO, "config", "reloaded; log_level=%d stays as --log-level set it",
                flag_log_level);
    } else if (lv >= 0) {
        srv_log_level = lv;
        srv_log(SRV_LOG_INFO, "config", "reloaded log_level=%d", lv);
    } else {
        srv_log(SRV_LOG_INFO, "config", "reloaded");
    }
}

/* Raises the soft descriptor limit to the hard one: every connection is a
 * descriptor, and a soft limit of 1024 (a shell's default) would make a
 * team server refuse clients long before the system would. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t soft = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl))
        srv_log(SRV_LOG_WARN, "main", "cannot raise the descriptor limit from %llu to %llu: %s",
                (unsigned long long)soft, (unsigned long long)rl.rlim_max, strerror(errno));
    else
        srv_log(SRV_LOG_INFO, "main", "descriptor limit raised from %llu to %llu (the hard limit)",
                (unsigned long long)soft, (unsigned long long)rl.rlim_max);
}

static int lock_data_dir(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/trackd.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        srv_log(SRV_LOG_ERROR, "main", "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        srv_log(SRV_LOG_ERROR, "main", "another trackd uses %s (lock %s held)", dir, path);
        close(fd);
        return -1;
    }
    return fd; /* held until exit */
}

/* ---- --check of the blob store ------------------------------------------------ */

struct blob_check {
    struct blob_store *bs;
    int bad; /* problems printed */
    int64_t blobs, rows;
};

/* Every stored blob hashes to its name. */
static int check_blob_cb(void *ctx, const struct blob_info *b)
{
    struct blob_check *k = ctx;
    struct store_err err = {0};
    char hex[BLOB_DIGEST_HEX + 1];

    k->blobs++;
    if (blob_verify(k->bs, b->digest, &err) != 0) {
        blob_digest_hex(b->digest, hex);
        fprintf(stderr, "trackd: check: %s\n", err.msg);
        k->bad++;
    }
    return 0;
}

/* Every artifact row points at a stored blob (named with its run and path). */
static int check_row_cb(void *ctx, const uint8_t run[16], const struct store_artifact *a)
{
    struct blob_check *k = ctx;
    char hex[BLOB_DIGEST_HEX + 1], rhex[33];

    k->rows++;
    if (blob_exists(k->bs, a->digest, NULL) == 1)
        return 0;
    blob_digest_hex(a->digest, hex);
    wire_hex(run, rhex);
    fprintf(stderr, "trackd: check: artifact \"%s\" of run %s: blob %s is missing\n", a->path, rhex,
            hex);
    k->bad++;
    return 0;
}

static int check_blobs(struct srv *srv, struct store *st)
{
    struct blob_check k = {0};
    struct store_err err = {0};
    char blobs[1200];
    struct stat sb;
    int rc;

    /* a data directory that never held a blob: nothing to check, nothing made */
    snprintf(blobs, sizeof(blobs), "%s/blobs", srv->cfg.data_dir);
    if (stat(blobs, &sb) != 0 && errno == ENOENT)
        k.bs = NULL;
    else if (blob_store_open(srv->cfg.data_dir, &k.bs, &err)) {
        fprintf(stderr, "trackd: check: %s: %s\n", blobs, err.msg);
        return -1;
    }
    rc = k.bs ? blob_each(k.bs, check_blob_cb, &k, &err) : 0;
    if (rc == 0 && k.bs)
        rc = store_artifact_each(st, check_row_cb, &k, &err);
    else if (rc == 0)
        rc = store_artifact_count(st, NULL, &k.rows, NULL, &err);
    if (rc) {
        fprintf(stderr, "trackd: check: blobs: %s\n", err.msg);
        k.bad++;
    } else if (!k.bs && k.rows) {
        fprintf(stderr, "trackd: check: %lld artifacts but no %s\n", (long long)k.rows, blobs);
        k.bad++;
    }
    blob_store_close(k.bs);
    if (k.bad)
        return -1;
    printf("ok %s: %lld blobs, %lld artifacts\n", blobs, (long long)k.blobs, (long long)k.rows);
    return 0;
}

static int do_check(struct srv *srv)
{
    struct store_opts so = {.readonly = 1};
    struct store_err err = {0};
    struct store *st;
    int rc = store_open(srv->cfg.db_path, &so, &st, &err);
    if (rc) {
        fprintf(stderr, "trackd: check: %s: %s\n", srv->cfg.db_path, err.msg);
        return 1;
    }
    rc = store_check(st, &err);
    if (rc) {
        store_close(st);
        fprintf(stderr, "trackd: check: %s: %s\n", srv->cfg.db_path, err.msg);
        return 1;
    }
    rc = check_blobs(srv, st);
    store_close(st);
    if (rc)
        return 1;
    printf("ok %s\n", srv->cfg.db_path);
    return 0;
}

/* The data directory holds everything trackd knows: 0700 when trackd
 * makes it; an existing one keeps its mode (the owner may have reasons),
 * with one warning when others may enter it. */
static int check_data_dir(const char *dir)
{
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        srv_log(SRV_LOG_ERROR, "main", "data directory %s is not a directory", dir);
        return -1;
    }
    if (sb.st_mode & 077)
        srv_log(SRV_LOG_WARN, "main",
                "data directory %s is open to others (mode %04o): its files are 0600, but "
                "`chmod 700 %s` keeps even their names private",
                dir, (unsigned)(sb.st_mode & 07777), dir);
    return 0;
}

/* store_opts.migrating: why the start waits. ctx: the monotonic ms of the
 * first step (-1 until then). */
static void migrating(void *ctx, int from, int to)
{
    int64_t *first = ctx;
    if (*first < 0)
        *first = wire_mono_ms();
    srv_log(SRV_LOG_INFO, "store",
            "migrating the database from schema %d to %d (once, before serving)%s", from, to,
            to == 12 ? ": it rebuilds the search indexes, about 1 s per 10^4 runs" : "");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"http", required_argument, NULL, 'H'},
        {"trace-retention", required_argument, NULL, 'T'},
        {"log-level", required_argument, NULL, 'L'},
        {"durability", required_argument, NULL, 'D'},
        {"workers", required_argument, NULL, 'w'},
        {"config", required_argument, NULL, 'c'},
        {"force", no_argument, NULL, 'f'},
        {"check", no_argument, NULL, 'C'},
        {"restore", required_argument, NULL, 'R'},
        {"socket-mode", required_argument, NULL, 'm'},
        {"plain-tcp", no_argument, NULL, 'P'},
        {"add-user", required_argument, NULL, 'U'},
        {"role", required_argument, NULL, 'r'},
        {"key", required_argument, NULL, 'k'},
        {"print-public-key", no_argument, NULL, 'K'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static char default_listen[1100];
    struct srv srv = {0};
    int log_level = -1, durability = -1, workers = -1, force = 0, check = 0, opt;
    int plain_tcp = 0, print_key = 0, any_tcp = 0;
    const char *data_dir = NULL, *config = NULL, *restore = NULL;
    const char *add_name = NULL, *add_role = NULL, *add_key = NULL;
    struct store_err err = {0};
    char *end;
    sigset_t mask;
    int status = 1;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            data_dir = optarg;
            break;
        case 'l':
            if (srv.cfg.n_listen == SRV_MAX_LISTEN)
                die_usage("--listen: at most 8 addresses");
            if (strncmp(optarg, "ipc://", 6) != 0 && strncmp(optarg, "tcp://", 6) != 0)
                die_usage("--listen: expected ipc://PATH or tcp://HOST:PORT");
            srv.cfg.listen[srv.cfg.n_listen++] = optarg;
            break;
        case 'H':
            if (strlen(optarg) >= sizeof(srv.cfg.http))
                die_usage("--http: address too long");
            snprintf(srv.cfg.http, sizeof(srv.cfg.http), "%s", optarg);
            break;
        case 'T': {
            long d = strtol(optarg, &end, 10);
            if (*end || d < 0 || d > 36500)
                die_usage("--trace-retention: expected days from 0 to 36500");
            opt_trace_days = (int)d;
            break;
        }
        case 'L':
            if ((log_level = srv_log_level_parse(optarg)) < 0)
                die_usage("--log-level: expected error, warn, info or debug");
            flag_log_level = log_level;
            break;
        case 'D':
            if ((durability = parse_durability(optarg)) < 0)
                die_usage("--durability: expected normal or full");
            break;
        case 'w':
            workers = (int)strtol(optarg, &end, 10);
            if (*end || workers < 1 || workers > 16)
                die_usage("--workers: expected a number from 1 to 16");
            break;
        case 'c':
            config = optarg;
            break;
        case 'f':
            force = 1;
            break;
        case 'C':
            check = 1;
            break;
        case 'R':
            restore = optarg;
            break;
        case 'm':
            if ((opt_socket_mode = parse_socket_mode(optarg)) < 0)
                die_usage("--socket-mode: expected 0600, 0660 or 0666");
            break;
        case 'P':
            plain_tcp = 1;
            break;
        case 'K':
            print_key = 1;
            break;
        case 'U':
            add_name = optarg;
            break;
        case 'r':
            add_role = optarg;
            break;
        case 'k':
            add_key = optarg;
            break;
        case 'V':
            printf("trackd %s\n", TRACKD_VERSION);
            return 0;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc)
        die_usage("unexpected argument");

    if (data_dir)
        snprintf(srv.cfg.data_dir, sizeof(srv.cfg.data_dir), "%s", data_dir);
    else if (paths_default_data_dir(srv.cfg.data_dir, sizeof(srv.cfg.data_dir)))
        die_usage("cannot work out the default data directory; use --data-dir");
    if (paths_mkdirs(srv.cfg.data_dir, 0700)) {
        srv_log(SRV_LOG_ERROR, "main", "cannot create data directory %s: %s", srv.cfg.data_dir,
                strerror(errno));
        return 1;
    }
    if (check_data_dir(srv.cfg.data_dir))
        return 1;
    snprintf(srv.cfg.db_path, sizeof(srv.cfg.db_path), "%s/track.db", srv.cfg.data_dir);
    if (config)
        snprintf(srv.cfg.config_path, sizeof(srv.cfg.config_path), "%s", config);
    else
        snprintf(srv.cfg.config_path, sizeof(srv.cfg.config_path), "%s/trackd.conf",
                 srv.cfg.data_dir);
    limits_default(&srv.cfg.limits);
    cfg_limits = &srv.cfg.limits;
    if (read_config(srv.cfg.config_path, &log_level, &durability, &workers, config != NULL))
        return 1;
    srv.cfg.trace_retention_days = opt_trace_days > 0 ? opt_trace_days : 0;
    if (!srv.cfg.http[0] && cfg_http[0])
        snprintf(srv.cfg.http, sizeof(srv.cfg.http), "%s", cfg_http);
    srv_log_level = log_level >= 0 ? log_level : SRV_LOG_INFO;
    srv.cfg.durability = durability >= 0 ? durability : STORE_DURABILITY_NORMAL;
    srv.cfg.workers = workers > 0 ? workers : 2;
    srv.cfg.socket_mode = opt_socket_mode > 0 ? (unsigned)opt_socket_mode : 0600;
    srv.cfg.plain_tcp = plain_tcp;
    if (!srv.cfg.n_listen) {
        if (paths_default_server(default_listen, sizeof(default_listen)))
            die_usage("cannot work out the default socket; use --listen");
        srv.cfg.listen[srv.cfg.n_listen++] = default_listen;
    }
    if (print_key)
        return print_public_key(&srv.cfg);
    /* the HTTP front's socket to the loop: one more listener (http.h) */
    if (srv.cfg.http[0]) {
        if (srv.cfg.n_listen == SRV_MAX_LISTEN)
            die_usage("--http takes one of the 8 listeners: give at most 7 --listen");
        srv.cfg.listen[srv.cfg.n_listen++] = SRV_HTTP_INPROC;
    }
    if (check_tcp_listeners(&srv.cfg, &any_tcp))
        return 1;
    loopback_by_address(&srv.cfg);

    if (check)
        return do_check(&srv);
    if (lock_data_dir(srv.cfg.data_dir) < 0)
        return 1;
    if (restore)
        return srv_restore(&srv.cfg, restore);
    if (add_name)
        return add_user(&srv.cfg, add_name, add_role, add_key);
    if (add_role || add_key)
        die_usage("--role and --key go with --add-user");
    /* before anything may create track.db: a restore cut short is finished
     * or undone, never covered by a fresh empty database */
    if (srv_restore_recover(&srv.cfg) || srv_backup_prepare_dir(&srv.cfg))
        return 1;

    /* block the signals the loop takes through signalfd, before any thread
     * (read workers, nanomsg's own) exists, so they all inherit the mask */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    /* two malloc arenas, not glibc's 8 a core: each thread's own arena
     * keeps what the page caches and replies freed, and with one per read
     * worker, trackd's RSS after a load was 69 MB where two arenas give 44
     * (B21j); the loop trims them when idle */
    mallopt(M_ARENA_MAX, 2);
    /* glibc's malloc is set up by its first call; under AddressSanitizer,
     * whose malloc (and mallopt) stand in for it, the first is malloc_trim,
     * and two threads trimming at once the first time race in that set-up
     * (a read worker's SEGV in mtrim): set it up here, on one thread */
    malloc_trim(0);

    int64_t migrate_ms = -1;
    struct store_opts so = {
        .durability = srv.cfg.durability, .migrating = migrating, .migrating_ctx = &migrate_ms};
    if (store_open(srv.cfg.db_path, &so, &srv.wst, &err)) {
        srv_log(SRV_LOG_ERROR, "store", "cannot open %s: %s", srv.cfg.db_path, err.msg);
        return 1;
    }
    if (migrate_ms >= 0)
        srv_log(SRV_LOG_INFO, "store", "schema migrated in %.1f s",
                (double)(wire_mono_ms() - migrate_ms) / 1000.0);
    if (srv_check_start(&srv, force))
        goto out;
    if (blob_store_open(srv.cfg.data_dir, &srv.blobs, &err)) {
        srv_log(SRV_LOG_ERROR, "blob", "cannot open %s/blobs: %s", srv.cfg.data_dir, err.msg);
        goto out;
    }
    /* seals fsync only when a write must survive power loss (blob.h, Uploads) */
    blob_store_set_sync(srv.blobs, srv.cfg.durability == STORE_DURABILITY_FULL);
    /* uploads abandoned long ago (a client that never came back) */
    if (blob_tmp_cleanup(srv.blobs, 7LL * 24 * 3600 * 1000, NULL, &err))
        srv_log(SRV_LOG_WARN, "blob", "cleaning %s/blobs/tmp: %s", srv.cfg.data_dir, err.msg);
    if (any_tcp && !srv.cfg.plain_tcp) {
        char text[SEAL_KEY_TEXT_BYTES];
        if (srv_server_key_load(&srv.cfg, 1, &srv.key))
            goto out;
        seal_key_to_text(srv.key.pk, text);
        srv_log(SRV_LOG_INFO, "seal", "sealed tcp:// listeners, server public key %s", text);
    }
    srv_reserve_init(&srv.cfg);
    srv.started_ms = wire_now_ms();
    pthread_mutex_init(&srv.stats_lock, NULL);
    srv_log(SRV_LOG_INFO, "main", "trackd %s starting db=%s durability=%s", TRACKD_VERSION,
            srv.cfg.db_path, srv.cfg.durability ? "full" : "normal");
    status = srv_loop_run(&srv);
    pthread_mutex_destroy(&srv.stats_lock);
    srv_log(SRV_LOG_INFO, "main", "stopped status=%d", status);
out:
    srv_check_stop(&srv);
    srv_backup_close_all();
    blob_store_close(srv.blobs);
    store_close(srv.wst);
    seal_keypair_clear(&srv.key);
    return status;
}
