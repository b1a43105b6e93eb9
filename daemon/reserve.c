/*
 * reserve.c: space kept back for recovery from a full disk. A WAL database
 * that fills its disk can be stuck for good: new writes need the WAL to
 * restart, which needs a complete checkpoint, which needs room in the
 * database file for the WAL's new pages, and a little space freed by the
 * user is eaten by each failing checkpoint attempt. So trackd holds
 * DIR/reserve (SRV_RESERVE_BYTES, allocated, 0600). When a commit or a
 * checkpoint fails because the disk is full, the reserve is given back, the
 * WAL is checkpointed and truncated (its space returns too), and the
 * reserve is taken again; the writes that follow succeed as soon as the
 * disk has room for them. If the reserve cannot be taken again, the idle
 * tick retries it. Warnings are rate-limited: one line per event, not one a
 * second.
 */
#include "srv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RETRY_MS 5000 /* between attempts to take the reserve back */

static char reserve_path[1200];
static int held;            /* the reserve is allocated */
static int64_t last_try_ms; /* monotonic */
static int warned_missing;

/* Allocates the whole reserve, or nothing (a part would give false hope). */
static int take(void)
{
    int fd = open(reserve_path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    int rc;

    if (fd < 0)
        return errno;
    fchmod(fd, 0600);
    rc = posix_fallocate(fd, 0, (off_t)SRV_RESERVE_BYTES);
    if (rc == 0 && fsync(fd) != 0)
        rc = errno;
    close(fd);
    if (rc) {
        unlink(reserve_path);
        return rc;
    }
    held = 1;
    return 0;
}

void srv_reserve_init(const struct srv_config *cfg)
{
    snprintf(reserve_path, sizeof(reserve_path), "%s/reserve", cfg->data_dir);
    last_try_ms = wire_mono_ms();
    int rc = take();
    if (rc) {
        warned_missing = 1;
        srv_log(SRV_LOG_WARN, "store",
                "cannot keep %lld MiB in reserve at %s (%s): a full disk may need space freed "
                "by hand before writes resume",
                SRV_RESERVE_BYTES >> 20, reserve_path, strerror(rc));
    }
}

void srv_reserve_on_full(struct srv *srv)
{
    static int64_t last_full_ms, last_log_ms;
    static int last_outcome = -1;
    struct store_err err = {0};
    int gave = held, outcome;
    int64_t now = wire_mono_ms();

    /* a disk that stays full fails every checkpoint: one attempt per
     * RETRY_MS, one log line a minute unless the outcome changes */
    if (!reserve_path[0] || (last_full_ms && now - last_full_ms < RETRY_MS))
        return;
    last_full_ms = now;
    if (held) {
        unlink(reserve_path);
        held = 0;
    }
    int rc = store_checkpoint_truncate(srv->wst, &err);
    last_try_ms = wire_mono_ms();
    int again = take();
    warned_missing = again != 0;
    outcome = (gave ? 4 : 0) | (rc ? 2 : 0) | (again ? 1 : 0);
    if (outcome == last_outcome && now - last_log_ms < 60000)
        return;
    last_outcome = outcome;
    last_log_ms = now;
    srv_log(SRV_LOG_WARN, "store", "disk full: %s%s%s; %s",
            gave ? "gave back the reserve so the WAL could be checkpointed"
                 : "no reserve to give back",
            rc ? ", but the checkpoint failed: " : ", checkpointed", rc ? err.msg : "",
            again == 0 ? "reserve taken again; writes resume when the disk has room"
                       : "the reserve is not back yet (retrying)");
}

void srv_reserve_tick(struct srv *srv)
{
    (void)srv;
    if (held || !reserve_path[0] || wire_mono_ms() - last_try_ms < RETRY_MS)
        return;
    last_try_ms = wire_mono_ms();
    if (take() == 0 && warned_missing) {
        warned_missing = 0;
        srv_log(SRV_LOG_INFO, "store", "reserve of %lld MiB taken again at %s",
                SRV_RESERVE_BYTES >> 20, reserve_path);
    }
}
