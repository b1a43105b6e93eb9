/*
 * config.c: the user's side of sealed tcp:// servers: the client key and
 * the config file, both under $XDG_CONFIG_HOME/track (~/.config/track):
 *
 *   key      the client's secret key (proto/seal_key.c's file: 0600, never
 *            overwritten, refused when others may read it); `track keygen`
 *   config   `key = value` lines: server (the default server URI) and
 *            server_key (the pinned public key of that server, trk1:...);
 *            `track config set server URI --server-key KEY`; 0600
 *
 * Which key and pin a client uses (cl_seal_setup): track_opts.key_path,
 * then $TRACK_KEY, then the default key file; track_opts.server_key, then
 * $TRACK_SERVER_KEY, then the config's server_key when the client's server
 * is the config's server (a pin never follows another URI). The config file
 * is rewritten whole (a temporary file beside it, renamed), so a reader never
 * sees half of it.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "seal.h"

#define CONFIG_LINE_MAX 2048

static const char *home(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir ? pw->pw_dir : "/";
}

int cl_config_dir(char *buf, size_t len)
{
    const char *x = getenv("XDG_CONFIG_HOME");
    int n = x && *x ? snprintf(buf, len, "%s/track", x)
                    : snprintf(buf, len, "%s/.config/track", home());
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int config_file(char *path, size_t len, const char *name)
{
    char dir[1024];
    if (cl_config_dir(dir, sizeof(dir)))
        return -1;
    int n = snprintf(path, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

int track_default_key_path(char *buf, size_t len)
{
    return config_file(buf, len, "key") ? TRACK_E_INVALID_ARGUMENT : 0;
}

/* Trims spaces and tabs at both ends in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

int track_config_read(struct track_config *cfg, struct track_err *err)
{
    char line[CONFIG_LINE_MAX];
    int lineno = 0;

    memset(cfg, 0, sizeof(*cfg));
    if (config_file(cfg->path, sizeof(cfg->path), "config") ||
        config_file(cfg->key_path, sizeof(cfg->key_path), "key"))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot work out the config directory");
    const char *k = getenv("TRACK_KEY");
    if (k && *k)
        snprintf(cfg->key_path, sizeof(cfg->key_path), "%s", k);
    FILE *f = fopen(cfg->path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot read %s: %s", cfg->path,
                       strerror(errno));
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *p = trim(line), *eq;
        if (!*p || *p == '#')
            continue;
        eq = strchr(p, '=');
        if (!eq) {
            fclose(f);
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s:%d: expected key = value", cfg->path,
                           lineno);
        }
        *eq = '\0';
        char *key = trim(p), *val = trim(eq + 1);
        if (strcmp(key, "server") == 0 && strlen(val) < sizeof(cfg->server)) {
            snprintf(cfg->server, sizeof(cfg->server), "%s", val);
        } else if (strcmp(key, "server_key") == 0 && strlen(val) < sizeof(cfg->server_key)) {
            snprintf(cfg->server_key, sizeof(cfg->server_key), "%s", val);
        } else {
            fclose(f);
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s:%d: unknown or too long key \"%s\"",
                           cfg->path, lineno, key);
        }
    }
    fclose(f);
    return 0;
}

int track_config_set_server(const char *server, const char *server_key, struct track_err *err)
{
    struct track_config cfg;
    char dir[1024], tmp[1200];
    uint8_t pk[SEAL_PUBLIC_BYTES];
    struct seal_err se = {0};
    int rc = track_config_read(&cfg, err);

    if (rc)
        return rc;
    if (!server || (strncmp(server, "ipc://", 6) != 0 && strncmp(server, "tcp://", 6) != 0) ||
        strlen(server) >= sizeof(cfg.server) || strchr(server, '\n'))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "server: \"%s\" is not ipc://PATH or tcp://HOST:PORT", server ? server : "");
    if (server_key && seal_key_from_text(server_key, pk, &se))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "--server-key: %s", se.msg);
    if (!server_key && strncmp(server, "tcp://", 6) == 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "a tcp:// server needs its key pinned: --server-key trk1:... (the key "
                       "`trackd --print-public-key` prints on the server)");
    snprintf(cfg.server, sizeof(cfg.server), "%s", server);
    snprintf(cfg.server_key, sizeof(cfg.server_key), "%s", server_key ? server_key : "");
    if (cl_config_dir(dir, sizeof(dir)) || paths_mkdirs(dir, 0700))
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot create %s: %s", dir, strerror(errno));
    snprintf(tmp, sizeof(tmp), "%s.tmp-%d", cfg.path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot write %s: %s", tmp, strerror(errno));
    FILE *f = fdopen(fd, "w");
    if (!f || fchmod(fd, 0600) != 0) {
        if (f)
            fclose(f);
        else
            close(fd);
        unlink(tmp);
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot write %s: %s", tmp, strerror(errno));
    }
    fprintf(f, "# track's client config (track config set server URI --server-key KEY)\n");
    fprintf(f, "server = %s\n", cfg.server);
    if (cfg.server_key[0])
        fprintf(f, "server_key = %s\n", cfg.server_key);
    int bad = fflush(f) != 0 || fsync(fd) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, cfg.path) != 0) {
        int e = errno;
        unlink(tmp);
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot write %s: %s", cfg.path, strerror(e));
    }
    return 0;
}

int track_keygen(const char *path, char pk_text[TRACK_KEY_TEXT_BYTES], struct track_err *err)
{
    char def[1100], dir[1100];
    struct seal_keypair kp = {0};
    struct seal_err se = {0};

    if (!path || !*path) {
        if (track_default_key_path(def, sizeof(def)))
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot work out the key path");
        path = def;
    }
    /* its directory, when missing, is made private */
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (paths_mkdirs(dir, 0700))
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot create %s: %s", dir,
                           strerror(errno));
    }
    if (seal_keypair_generate(&kp, &se))
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "%s", se.msg);
    int rc = seal_key_file_write(path, kp.sk, &se);
    if (rc == 0)
        seal_key_to_text(kp.pk, pk_text);
    seal_keypair_clear(&kp);
    if (rc == SEAL_E_EXISTS)
        return cl_fail(err, TRACK_E_ALREADY_EXISTS,
                       "%s already exists: never overwritten (its public key: track keygen "
                       "--show; to replace it, move it away first and give the server the new "
                       "key)",
                       path);
    if (rc)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "%s", se.msg);
    return 0;
}

int track_key_public(const char *path, char pk_text[TRACK_KEY_TEXT_BYTES], struct track_err *err)
{
    char def[1100];
    struct seal_keypair kp = {0};
    struct seal_err se = {0};

    if (!path || !*path) {
        if (track_default_key_path(def, sizeof(def)))
            return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "cannot work out the key path");
        path = def;
    }
    int rc = seal_key_file_read(path, &kp, &se);
    if (rc == SEAL_E_IO && access(path, F_OK) != 0)
        return cl_fail(err, TRACK_E_NOT_FOUND, "no key at %s: make one with `track keygen`", path);
    if (rc)
        return cl_fail(err,
                       rc == SEAL_E_PERM ? TRACK_E_PERMISSION_DENIED : TRACK_E_INVALID_ARGUMENT,
                       "%s", se.msg);
    seal_key_to_text(kp.pk, pk_text);
    seal_keypair_clear(&kp);
    return 0;
}

/* The "needs a key" message, with the commands that fix it. */
static int setup_hint(struct track_client *c, const char *what, struct track_err *err)
{
    c->seal_fault = 1;
    return cl_fail(err, TRACK_E_UNAUTHENTICATED,
                   "%s needs a sealed client: %s; run `track keygen` (then give the server's "
                   "admin its public key), and `track config set server %s --server-key "
                   "trk1:...` with the key `trackd --print-public-key` prints on the server",
                   c->server, what, c->server);
}

int cl_seal_setup(struct track_client *c, struct track_err *err)
{
    struct track_config cfg;
    struct seal_keypair kp = {0};
    struct seal_err se = {0};
    const char *pin = c->opt_server_key[0] ? c->opt_server_key : getenv("TRACK_SERVER_KEY");
    int rc;

    if (c->seal)
        return 0;
    rc = track_config_read(&cfg, err);
    if (rc)
        return rc;
    if ((!pin || !*pin) && cfg.server_key[0] && strcmp(cfg.server, c->server) == 0)
        pin = cfg.server_key;
    if (!pin || !*pin)
        return setup_hint(c, "no pinned server key", err);
    if (seal_key_from_text(pin, c->server_pk, &se)) {
        c->seal_fault = 1;
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "server key of %s: %s", c->server, se.msg);
    }
    seal_key_to_text(c->server_pk, c->server_key_text);
    const char *kpath = c->opt_key_path[0] ? c->opt_key_path : cfg.key_path;
    rc = seal_key_file_read(kpath, &kp, &se);
    if (rc == SEAL_E_IO && access(kpath, F_OK) != 0) {
        char what[1300];
        snprintf(what, sizeof(what), "no client key at %s", kpath);
        return setup_hint(c, what, err);
    }
    if (rc) {
        c->seal_fault = 1;
        return cl_fail(err,
                       rc == SEAL_E_PERM ? TRACK_E_PERMISSION_DENIED : TRACK_E_INVALID_ARGUMENT,
                       "client key: %s", se.msg);
    }
    seal_key_to_text(kp.pk, c->key_text);
    rc = seal_client_new(kp.sk, kp.pk, c->server_pk, &c->seal, &se);
    seal_keypair_clear(&kp);
    if (rc)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "%s", se.msg);
    return 0;
}
