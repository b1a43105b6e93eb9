/*
 * restore.c: `trackd --restore FILE` as a sequence that a crash at any
 * point leaves either finished or undone, never half done, and the check at
 * every start that finishes or undoes one that was interrupted.
 *
 * The sequence, in DIR (the data directory, locked by the caller):
 *
 *   1. the backup is opened read-only and integrity-checked (nothing moves
 *      if it fails);
 *   2. the journal DIR/restore.journal is written (tmp, fsync, rename,
 *      fsync of DIR) with step=copying and the names used below;
 *   3. the backup is copied to DIR/track.db.restore-new (store_backup:
 *      0600, fsynced, renamed into place);
 *   4. the old track.db's WAL is folded into it (store_checkpoint_file), so
 *      the copy kept aside is whole by itself;
 *   5. the journal says step=moving; track.db-wal, track.db-shm and
 *      track.db are renamed to ASIDE-wal, ASIDE-shm and ASIDE (ASIDE is
 *      track.db.before-restore-MS), each rename followed by a fsync of DIR;
 *   6. the journal says step=installing; track.db.restore-new becomes
 *      track.db; DIR is fsynced; the journal is removed.
 *
 * At start (srv_restore_recover), a journal at step copying is undone (the
 * partial new copy removed: the old database never moved), one at moving or
 * installing is finished (the new copy is whole, fsynced before the step
 * changed). Either way trackd then serves a database that was whole before:
 * the old one or the restored one, never an empty one. trackd also refuses
 * to start, rather than create an empty database, when track.db is missing
 * but a restore left files behind.
 *
 * A test hook, compiled in every build: TRACK_TEST_RESTORE_KILL_AT=STEP
 * makes trackd raise SIGKILL at that step (srv_restore_kill_points lists
 * them), so tests can prove the recovery at every step.
 */
#include "srv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_NAME "restore.journal"
#define STAGED_SFX   ".restore-new"
#define ASIDE_SFX    ".before-restore-"

const char *const srv_restore_kill_points[] = {
    "marked",    "copied",   "checkpointed", "moving",    "wal-aside",
    "shm-aside", "db-aside", "installing",   "installed", NULL,
};

static void kill_point(const char *step)
{
    const char *k = getenv("TRACK_TEST_RESTORE_KILL_AT");
    if (k && strcmp(k, step) == 0) {
        fflush(NULL);
        raise(SIGKILL);
    }
}

struct journal {
    char step[32];
    char staged[1200];
    char aside[1200];
};

static void journal_path(const struct srv_config *cfg, char *buf, size_t len)
{
    snprintf(buf, len, "%s/" JOURNAL_NAME, cfg->data_dir);
}

/* Writes the journal whole or not at all: tmp, fsync, rename, fsync DIR. */
static int journal_write(const struct srv_config *cfg, const struct journal *j, char *msg,
                         size_t mlen)
{
    char path[1200], tmp[1300], text[3000];
    struct store_err err = {0};
    int n = snprintf(text, sizeof(text), "step=%s\nstaged=%s\naside=%s\n", j->step, j->staged,
                     j->aside);
    int fd, ok;

    journal_path(cfg, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(msg, mlen, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    ok = write(fd, text, (size_t)n) == (ssize_t)n && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(msg, mlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (store_dir_sync(path, &err)) {
        snprintf(msg, mlen, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* Copies a journal value; 1 when it does not fit (a cut path would name
 * another file: the journal is then unreadable, not half-read). */
static int journal_field(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return 1;
    memcpy(dst, src, n + 1);
    return 0;
}

/* 1 and *j filled when a journal exists, 0 when none, -1 when unreadable. */
static int journal_read(const struct srv_config *cfg, struct journal *j, char *msg, size_t mlen)
{
    char path[1200], line[1400];
    FILE *f;

    memset(j, 0, sizeof(*j));
    journal_path(cfg, path, sizeof(path));
    f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(msg, mlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int too_long = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "step=", 5) == 0)
            too_long |= journal_field(j->step, sizeof(j->step), line + 5);
        else if (strncmp(line, "staged=", 7) == 0)
            too_long |= journal_field(j->staged, sizeof(j->staged), line + 7);
        else if (strncmp(line, "aside=", 6) == 0)
            too_long |= journal_field(j->aside, sizeof(j->aside), line + 6);
    }
    fclose(f);
    if (too_long) {
        snprintf(msg, mlen, "%s has a value longer than this build takes", path);
        return -1;
    }
    if (!j->step[0] || !j->staged[0] || !j->aside[0]) {
        snprintf(msg, mlen, "%s is incomplete (step, staged and aside expected)", path);
        return -1;
    }
    return 1;
}

static int journal_remove(const struct srv_config *cfg, char *msg, size_t mlen)
{
    char path[1200];
    struct store_err err = {0};
    journal_path(cfg, path, sizeof(path));
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(msg, mlen, "cannot remove %s: %s", path, strerror(errno));
        return -1;
    }
    if (store_dir_sync(path, &err)) {
        snprintf(msg, mlen, "%s", err.msg);
        return -1;
    }
    return 0;
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* Renames from -> to when `from` exists (a step already done is skipped),
 * then fsyncs the directory. */
static int move_if_there(const char *from, const char *to, char *msg, size_t mlen)
{
    struct store_err err = {0};
    if (!exists(from))
        return 0;
    if (rename(from, to) != 0) {
        snprintf(msg, mlen, "cannot rename %s to %s: %s", from, to, strerror(errno));
        return -1;
    }
    if (store_dir_sync(to, &err)) {
        snprintf(msg, mlen, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* Removes `path` and every `path.tmp-*` beside it (a copy cut short). */
static void remove_with_tmps(const char *path)
{
    char dir[1200], prefix[400];
    const char *slash = strrchr(path, '/');
    DIR *d;
    struct dirent *e;

    unlink(path);
    if (!slash)
        return;
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    snprintf(prefix, sizeof(prefix), "%s.tmp-", slash + 1);
    d = opendir(dir);
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            char p[1600];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
}

/* Steps 5 and 6 from wherever they were cut: each rename is skipped when
 * already done. */
static int finish(const struct srv_config *cfg, struct journal *j, int from_moving, char *msg,
                  size_t mlen)
{
    static const char *const sfx[] = {"-wal", "-shm"};
    static const char *const kills[] = {"wal-aside", "shm-aside"};
    char from[1300], to[1300];

    if (from_moving) {
        for (int i = 0; i < 2; i++) {
            snprintf(from, sizeof(from), "%s%s", cfg->db_path, sfx[i]);
            snprintf(to, sizeof(to), "%s%s", j->aside, sfx[i]);
            if (move_if_there(from, to, msg, mlen))
                return -1;
            kill_point(kills[i]);
        }
        if (move_if_there(cfg->db_path, j->aside, msg, mlen))
            return -1;
        if (exists(j->aside))
            chmod(j->aside, 0600);
        kill_point("db-aside");
        snprintf(j->step, sizeof(j->step), "installing");
        if (journal_write(cfg, j, msg, mlen))
            return -1;
        kill_point("installing");
    }
    if (exists(j->staged)) {
        if (exists(cfg->db_path)) {
            snprintf(msg, mlen, "both %s and %s exist; move one of them away", cfg->db_path,
                     j->staged);
            return -1;
        }
        if (move_if_there(j->staged, cfg->db_path, msg, mlen))
            return -1;
    } else if (!exists(cfg->db_path)) {
        if ((size_t)snprintf(msg, mlen,
                             "neither %s nor the restored copy %s exists (the old one is %s)",
                             cfg->db_path, j->staged, j->aside) >= mlen)
            msg[mlen - 1] = '\0'; /* cut: it still names the database first */
        return -1;
    }
    kill_point("installed");
    return journal_remove(cfg, msg, mlen);
}

static int recover_journal(const struct srv_config *cfg)
{
    struct journal j;
    char msg[3000] = "";
    int rc = journal_read(cfg, &j, msg, sizeof(msg));

    if (rc < 0) {
        srv_log(SRV_LOG_ERROR, "restore", "%s; refusing to start", msg);
        return -1;
    }
    if (rc == 1) {
        if (strcmp(j.step, "copying") == 0) {
            remove_with_tmps(j.staged);
            if (journal_remove(cfg, msg, sizeof(msg)) == 0) {
                srv_log(SRV_LOG_WARN, "restore",
                        "an interrupted restore was rolled back: %s is the database it "
                        "would have replaced",
                        cfg->db_path);
                rc = 0;
            } else {
                rc = -1;
            }
        } else if (strcmp(j.step, "moving") == 0 || strcmp(j.step, "installing") == 0) {
            rc = finish(cfg, &j, strcmp(j.step, "moving") == 0, msg, sizeof(msg));
            if (rc == 0)
                srv_log(SRV_LOG_WARN, "restore",
                        "an interrupted restore was completed: %s is the restored copy; "
                        "the old database is %s",
                        cfg->db_path, j.aside);
        } else {
            snprintf(msg, sizeof(msg), "unknown step \"%s\" in %s/" JOURNAL_NAME, j.step,
                     cfg->data_dir);
            rc = -1;
        }
        if (rc) {
            srv_log(SRV_LOG_ERROR, "restore", "cannot finish an interrupted restore: %s", msg);
            return -1;
        }
    }
    return 0;
}

int srv_restore_recover(const struct srv_config *cfg)
{
    char aside_any[1500] = "";

    if (recover_journal(cfg))
        return -1;
    /* a restore cut short by a trackd without the journal leaves no
     * track.db and the data aside: never start an empty one over it */
    if (!exists(cfg->db_path)) {
        DIR *d = opendir(cfg->data_dir);
        struct dirent *e;
        const char *base = strrchr(cfg->db_path, '/');
        char prefix[1200];
        base = base ? base + 1 : cfg->db_path;
        snprintf(prefix, sizeof(prefix), "%s" ASIDE_SFX, base);
        while (d && (e = readdir(d)) != NULL) {
            size_t n = strlen(e->d_name);
            if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 &&
                !(n > 4 && (strcmp(e->d_name + n - 4, "-wal") == 0 ||
                            strcmp(e->d_name + n - 4, "-shm") == 0))) {
                snprintf(aside_any, sizeof(aside_any), "%s/%s", cfg->data_dir, e->d_name);
                break;
            }
        }
        if (d)
            closedir(d);
        if (aside_any[0]) {
            srv_log(SRV_LOG_ERROR, "restore",
                    "%s is missing but %s is there (a restore did not finish): refusing to "
                    "start with an empty database; rename it to %s (with its -wal) to serve "
                    "it, or move it out of %s to start afresh",
                    cfg->db_path, aside_any, cfg->db_path, cfg->data_dir);
            return -1;
        }
    }
    return 0;
}

int srv_restore(const struct srv_config *cfg, const char *from)
{
    struct store_opts so = {.readonly = 1};
    struct store_err err = {0};
    struct store *st = NULL;
    struct journal j;
    char msg[3000] = "";
    int had_db, rc;

    memset(&j, 0, sizeof(j));
    {
        const char *k = getenv("TRACK_TEST_RESTORE_KILL_AT");
        int known = !k || !*k;
        for (int i = 0; !known && srv_restore_kill_points[i]; i++)
            known = strcmp(k, srv_restore_kill_points[i]) == 0;
        if (!known)
            fprintf(stderr, "trackd: TRACK_TEST_RESTORE_KILL_AT=%s names no step of a restore\n",
                    k);
    }
    /* an earlier restore cut short is finished or undone first */
    if (recover_journal(cfg))
        return 1;
    rc = store_open(from, &so, &st, &err);
    if (!rc)
        rc = store_check(st, &err);
    if (rc) {
        fprintf(stderr, "trackd: restore from %s: %s\n", from, err.msg);
        store_close(st);
        return 1;
    }
    had_db = exists(cfg->db_path);
    snprintf(j.step, sizeof(j.step), "copying");
    snprintf(j.staged, sizeof(j.staged), "%s" STAGED_SFX, cfg->db_path);
    snprintf(j.aside, sizeof(j.aside), "%s" ASIDE_SFX "%lld", cfg->db_path,
             (long long)wire_now_ms());
    remove_with_tmps(j.staged);
    if (journal_write(cfg, &j, msg, sizeof(msg)))
        goto fail;
    kill_point("marked");
    rc = store_backup(st, j.staged, &err);
    store_close(st);
    st = NULL;
    if (rc) {
        snprintf(msg, sizeof(msg), "%s", err.msg);
        remove_with_tmps(j.staged);
        journal_remove(cfg, msg + strlen(msg), sizeof(msg) - strlen(msg));
        goto fail;
    }
    kill_point("copied");
    if (had_db && store_checkpoint_file(cfg->db_path, &err))
        /* its WAL moves aside with it instead */
        fprintf(stderr, "trackd: restore: %s (its -wal is kept beside the old copy)\n", err.msg);
    kill_point("checkpointed");
    snprintf(j.step, sizeof(j.step), "moving");
    if (journal_write(cfg, &j, msg, sizeof(msg)))
        goto fail;
    kill_point("moving");
    if (finish(cfg, &j, 1, msg, sizeof(msg)))
        goto fail;
    printf("restored %s from %s%s%s\n", cfg->db_path, from, had_db ? "; the old one is " : "",
           had_db ? j.aside : "");
    return 0;
fail:
    store_close(st);
    fprintf(stderr, "trackd: restore from %s: %s\n", from, msg);
    return 1;
}
