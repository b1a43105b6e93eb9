/*
 * track.h: libtrack, the C client of the track experiment tracker.
 *
 * A training loop opens a client, starts a run, logs params and metrics and
 * ends the run. Metric logging is buffered: track_log_metric() copies the
 * point into a per-key column buffer (no allocation per point) and returns at
 * once; buffers are sent in batches when they fill or when the flush interval
 * has passed, and on track_flush() and track_run_end().
 *
 * When trackd cannot be reached within the client's timeout, writes are
 * appended to a spool file and delivered, exactly once, by a later flush or
 * track_sync(). Nothing here aborts or exits the caller's process.
 *
 * Every function returns 0 or a negative track_code; details go into the
 * `struct track_err` the caller passes (may be NULL). A write that went to
 * the spool instead of the daemon returns 0 and sets err->code to
 * TRACK_E_SPOOLED with a message saying where it went.
 */
#ifndef TRACK_H
#define TRACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRACK_VERSION "0.1.0"

enum track_code {
    TRACK_OK = 0,
    TRACK_E_INVALID_ARGUMENT = -1,
    TRACK_E_NOT_FOUND = -2,
    TRACK_E_ALREADY_EXISTS = -3,
    TRACK_E_CONFLICT = -4,
    TRACK_E_UNAUTHENTICATED = -5,
    TRACK_E_PERMISSION_DENIED = -6,
    TRACK_E_RESOURCE_EXHAUSTED = -7,
    TRACK_E_UNAVAILABLE = -8,
    TRACK_E_INTERNAL = -9,
    TRACK_E_SPOOLED = -10, /* in err->code only: a write kept in the spool for later */
};

struct track_err {
    int code;
    char msg[512];
};

/* The words for a code ("NOT_FOUND", ...). Never NULL. */
const char *track_code_name(int code);

enum track_status {
    TRACK_RUNNING = 1,
    TRACK_FINISHED = 2,
    TRACK_FAILED = 3,
    TRACK_KILLED = 4,
};

struct track_opts {
    const char *server;      /* NULL: $TRACK_SERVER, then the local default */
    int timeout_ms;          /* per request; 0: 2000 */
    int flush_points;        /* flush when this many points are buffered; 0: 8192 */
    int flush_interval_ms;   /* flush when the oldest buffered point is older; 0: 1000 */
    const char *spool_path;  /* NULL: $XDG_STATE_HOME/track/spool-<uid>.bin */
    int64_t spool_max_bytes; /* 0: 256 MiB */
    int no_spool;            /* 1: fail writes instead of spooling (reads always fail) */
    int autostart;           /* 1: start a personal trackd when the default socket is dead */
    /* tcp:// servers take sealed frames only (README "Team server"): */
    const char *key_path;   /* client secret key; NULL: $TRACK_KEY, then
                             * $XDG_CONFIG_HOME/track/key (~/.config/track/key) */
    const char *server_key; /* the server's pinned public key, trk1:...; NULL:
                             * $TRACK_SERVER_KEY, then the config file's
                             * server_key when the server is the config's */
};

struct track_client;

/* Opens a client. Does not contact the daemon; the first request does.
 * *out must be released with track_client_close (which flushes). */
int track_client_open(const struct track_opts *opts, struct track_client **out,
                      struct track_err *err);
/* Flushes what is buffered (spooling it if the daemon is away) and frees. */
void track_client_close(struct track_client *c);

/* The server URI this client talks to. */
const char *track_client_server(const struct track_client *c);

/* ---- keys and the client config (sealed tcp:// servers) ----
 * The config directory is $XDG_CONFIG_HOME/track (~/.config/track): `key`
 * (the client's secret key, 0600) and `config` (`server = URI` and
 * `server_key = trk1:...`, 0600). The server a client opens is
 * track_opts.server, then $TRACK_SERVER, then the config's server, then
 * the local default. */
#define TRACK_KEY_TEXT_BYTES 49 /* "trk1:" + 43 base64url characters + NUL */
struct track_config {
    char path[1100];     /* the config file */
    char key_path[1100]; /* the client key: $TRACK_KEY or the default */
    char server[1100];   /* "" when not set */
    char server_key[64]; /* "" when not set */
};
/* Reads the config file (absent: all empty but the paths). */
int track_config_read(struct track_config *cfg, struct track_err *err);
/* Sets the default server and its pinned key (required for tcp://;
 * checked as key text), rewriting the config file 0600. */
int track_config_set_server(const char *server, const char *server_key, struct track_err *err);
/* The default client key path. */
int track_default_key_path(char *buf, size_t len);
/* Makes a client key pair at path (NULL: the default, its directory made
 * 0700); never overwrites (TRACK_E_ALREADY_EXISTS). pk_text gets its
 * public key. */
int track_keygen(const char *path, char pk_text[TRACK_KEY_TEXT_BYTES], struct track_err *err);
/* The public key of the key file at path (NULL: the default):
 * TRACK_E_NOT_FOUND when there is none. */
int track_key_public(const char *path, char pk_text[TRACK_KEY_TEXT_BYTES], struct track_err *err);

/* Local default socket URI for this user (ipc://$XDG_RUNTIME_DIR/track/trackd.sock
 * or ipc:///tmp/track-<uid>/trackd.sock), and the default data directory. */
int track_default_server(char *buf, size_t len);
int track_default_data_dir(char *buf, size_t len);

/* Run ids are 16 bytes, shown as 32 lowercase hex characters. */
typedef struct {
    uint8_t b[16];
} track_run_id;
void track_run_id_hex(const track_run_id *id, char out[33]);
int track_run_id_parse(const char *hex, track_run_id *id); /* full 32 chars only */

struct track_kv {
    const char *key;
    const char *value;
};

struct track_run_opts {
    const char *experiment; /* NULL: "Default" */
    const char *name;       /* NULL: generated by the daemon */
    const char *parent;     /* NULL, or a run id / unique prefix */
    const struct track_kv *params;
    size_t n_params;
    const struct track_kv *tags;
    size_t n_tags;
};

/* Starts a run with a fresh random id (made here, so it works offline: the
 * start is spooled then). Sets it as the client's current run. */
int track_run_start(struct track_client *c, const struct track_run_opts *o, track_run_id *id,
                    struct track_err *err);
/* Makes `run` (32 hex or a unique 4+ prefix) the current run; resolves a
 * prefix with the daemon. */
int track_run_use(struct track_client *c, const char *run, struct track_err *err);
int track_run_current(const struct track_client *c, track_run_id *id);
/* Flushes, then ends the current run with `status`. */
int track_run_end(struct track_client *c, int status, struct track_err *err);

/* Params and tags of the current run, sent at once (synchronous). */
int track_log_param(struct track_client *c, const char *key, const char *value,
                    struct track_err *err);
int track_log_params(struct track_client *c, const struct track_kv *kv, size_t n,
                     struct track_err *err);
int track_set_tag(struct track_client *c, const char *key, const char *value,
                  struct track_err *err);
int track_set_tags(struct track_client *c, const struct track_kv *kv, size_t n,
                   struct track_err *err);

/* Buffers one point of the current run. time_ms 0: now. Returns at once
 * unless the buffer is due, then flushes (bounded by the timeout). */
int track_log_metric(struct track_client *c, const char *key, double value, int64_t step,
                     int64_t time_ms, struct track_err *err);
/* Sends everything buffered (err->code TRACK_E_SPOOLED when it was spooled). */
int track_flush(struct track_client *c, struct track_err *err);
/* System metrics: starts a thread that, every interval_ms (0: 5000; 100 to
 * 86400000), samples the process tree under `root` (CPU % over the interval,
 * RSS, threads), the host (memory used and available, disk and network bytes
 * per second) and NVIDIA GPUs when libnvidia-ml.so.1 can be loaded at run
 * time (else one info line on stderr, and no GPU metrics), and logs them into
 * the current run as system/cpu_percent, system/rss_bytes, system/threads,
 * system/mem_used_bytes, system/mem_available_bytes,
 * system/disk_read_bytes_per_s, system/disk_write_bytes_per_s,
 * system/net_rx_bytes_per_s, system/net_tx_bytes_per_s,
 * system/gpuN_util_percent and system/gpuN_mem_used_bytes, with step = the
 * sample number (0, 1, ...; the first at one interval after the start).
 * The thread logs through a clone of c (same server, keys, spool and run) of
 * its own, so c's owner keeps calling c without a lock. Needs a current run;
 * TRACK_E_ALREADY_EXISTS when one is running on c. The sampler costs well
 * under 1% of a core at a 1 s interval. */
int track_system_metrics_start(struct track_client *c, pid_t root, int interval_ms,
                               struct track_err *err);
/* Stops the sampler (woken at once; a sample under way ends first), flushes
 * and closes its clone (bounded by the client's timeout). 0 also when none
 * was running. track_run_end does not stop it; track_client_close does. */
int track_system_metrics_stop(struct track_client *c, struct track_err *err);
/* Delivers this client's server's spooled requests. *sent is the number
 * delivered. 0 when all were delivered; TRACK_E_UNAVAILABLE when some are
 * kept for later; the first rejection's code when some were refused for good
 * (moved to the rejected file; see track_spool_deliver). */
int track_sync(struct track_client *c, int *sent, struct track_err *err);
/* Requests waiting in the spool, and its size in bytes. */
int track_spool_pending(struct track_client *c, int64_t *requests, int64_t *bytes,
                        struct track_err *err);

/* What one delivery of the spool did. Every spooled request belongs to the
 * server it was written for and is only ever sent there. */
struct track_sync_report {
    int delivered;     /* applied by their servers */
    int rejected;      /* refused for good: moved to rejected_path with the reason */
    int rejected_code; /* the first one's code */
    int kept;          /* left in the spool, in order, for a later sync */
    int other_servers; /* left for other servers (a delivery of one server only) */
    int damaged;       /* damaged stretches of the spool skipped (their bytes lost) */
    int64_t damaged_bytes;
    int n_rejected_reasons; /* the first reasons: "SERVER: CODE: message" */
    char rejected_reasons[3][300];
    int n_kept_reasons; /* why records were kept, one per server */
    char kept_reasons[4][300];
    char rejected_path[1200]; /* set when something was rejected */
    char moved[1200];         /* a spool with a damaged header, moved aside to here */
    int salvaged;             /* valid records taken from it into a new spool */
};
/* Delivers the spool: every server's records (all = 1) or this client's
 * server's only (all = 0), each to its own server. A request refused for good
 * (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, CONFLICT, PERMISSION_DENIED)
 * goes to `<spool>.rejected`; one refused for now (RESOURCE_EXHAUSTED,
 * UNAVAILABLE, INTERNAL, UNAUTHENTICATED) or for an unreachable server stays,
 * with that server's later ones. Returns 0 when nothing is left to deliver,
 * TRACK_E_UNAVAILABLE when records were kept, another negative code when the
 * spool could not be read; r (may be NULL) says what happened either way. */
int track_spool_deliver(struct track_client *c, int all, struct track_sync_report *r,
                        struct track_err *err);

/* ---- reads --------------------------------------------------------------- */

struct track_metric_summary {
    const char *key;
    double last, min, max;
    int64_t count, last_step, last_ms;
};

struct track_run_info {
    track_run_id id;
    const char *name;
    const char *experiment;
    int status;
    int64_t start_ms, end_ms;
    const char *user;
    int has_parent;
    track_run_id parent;
    const struct track_kv *params;
    size_t n_params;
    const struct track_kv *tags;
    size_t n_tags;
    const struct track_metric_summary *metrics;
    size_t n_metrics;
    int deleted;                       /* soft-deleted (track_run_delete); still readable */
    int64_t deleted_ms;                /* when; 0 while active */
    int64_t artifacts, artifact_bytes; /* the run's artifacts (track_run_get only) */
};

/* A reply to a read, owned by the caller: free with track_result_free. */
struct track_result;
void track_result_free(struct track_result *r);

struct track_experiment_info {
    int64_t id;
    const char *name;
    int archived;
    int64_t created_ms;
    int64_t run_count;
};

int track_experiment_create(struct track_client *c, const char *name, int64_t *id,
                            struct track_err *err);
int track_experiment_list(struct track_client *c, struct track_result **res,
                          const struct track_experiment_info **exps, size_t *n,
                          struct track_err *err);

int track_run_get(struct track_client *c, const char *run, struct track_result **res,
                  struct track_run_info *info, struct track_err *err);

struct track_run_query {
    const char *const *experiments; /* NULL-terminated, or NULL */
    const char *filter;
    const char *order_by;
    int limit;
    int with_details; /* fill params, tags and metrics */
};
/* Lists runs; *runs is an array of *n infos owned by *res. */
int track_run_list(struct track_client *c, const struct track_run_query *q,
                   struct track_result **res, struct track_run_info **runs, size_t *n,
                   struct track_err *err);

/* Reads up to max_points (0: server limit) points of (run, key) after the
 * cursor `after_seq`. Arrays are owned by *res; *next_seq is the next cursor
 * and *more says whether points remain. */
int track_metric_history(struct track_client *c, const char *run, const char *key,
                         int64_t after_seq, int64_t max_points, struct track_result **res,
                         const int64_t **steps, const int64_t **times_ms, const double **values,
                         size_t *n, int64_t *next_seq, int *more, struct track_err *err);

/* A curve of (run, key) downsampled to at most `buckets` buckets. */
int track_metric_curve(struct track_client *c, const char *run, const char *key, int buckets,
                       struct track_result **res, const int64_t **steps, const double **mins,
                       const double **maxs, const double **lasts, size_t *n, int64_t *count,
                       struct track_err *err);

/* One point of a downsampled curve, and one bucket: its first and last logged
 * points and its smallest and largest value (the first of each), with the
 * steps and times where they occur (M4). Drawing the four through every
 * bucket shows each spike and swing the full series has, and no pattern it
 * lacks. In a bucket of NaN only, min and max are its first point. */
struct track_curve_point {
    int64_t step, time_ms;
    double value;
};
struct track_curve_bucket {
    int64_t lo_step; /* the bucket's smallest step */
    struct track_curve_point first, min, max, last;
};

/* The curve of (run, key) in at most `buckets` buckets (1..4096), in step
 * order, empty buckets left out: *b is an array of *n that the caller frees
 * with free(); *count is the series' point count. An unknown key gives
 * *n = 0. A daemon too old to send the M4 points answers TRACK_E_INTERNAL
 * ("malformed curve reply"). */
int track_metric_curve_m4(struct track_client *c, const char *run, const char *key, int buckets,
                          struct track_curve_bucket **b, size_t *n, int64_t *count,
                          struct track_err *err);

struct track_server_status {
    const char *server_version;
    int64_t uptime_ms;
    const char *data_dir;
    int64_t experiments, runs, metric_points, db_bytes, requests, pid;
    int64_t artifacts, artifact_bytes; /* (run, path) rows and their sizes summed */
};
int track_status(struct track_client *c, struct track_result **res, struct track_server_status *st,
                 struct track_err *err);

/* Writes a consistent online copy of the daemon's database to `path`, a
 * file on the caller's machine written with the caller's rights (mode 0600;
 * must not exist yet); *bytes its size. The daemon streams a snapshot in
 * chunks; the copy is checked against its size and digest and lands under
 * `path` only whole (PATH.tmp-PID first, fsynced; such files left by a
 * killed backup are removed by the next one). The first request may wait
 * up to TRACK_BACKUP_BEGIN_TIMEOUT_MS while the snapshot is made. */
#define TRACK_BACKUP_BEGIN_TIMEOUT_MS 600000
int track_backup(struct track_client *c, const char *path, int64_t *bytes, struct track_err *err);

/* ---- lifecycle: delete, restore, gc, lineage (lifecycle.c) --------------
 * A deleted run leaves run lists, compare and search (unless a filter names
 * lifecycle: "lifecycle = 'deleted'"), still answers track_run_get (with
 * deleted = 1), refuses new writes (TRACK_E_CONFLICT naming the run), and is
 * removed for good by track_gc once older than its grace period. */

/* Soft-deletes (track_run_delete) or restores a run given by id or unique
 * prefix. *changed (may be NULL) is 0 when it was in that state already.
 * Never spooled: a daemon that cannot be reached is TRACK_E_UNAVAILABLE. */
int track_run_delete(struct track_client *c, const char *run, int *changed, struct track_err *err);
int track_run_restore(struct track_client *c, const char *run, int *changed, struct track_err *err);

struct track_gc_run {
    track_run_id id;
    const char *name;
    int64_t deleted_ms;
    int64_t bytes; /* its rows as stored: metric chunks, params, tags */
};
struct track_gc_report {
    int dry_run;
    int64_t runs, run_bytes;   /* runs removed (or that would be) and their bytes */
    int64_t blobs, blob_bytes; /* blobs likewise */
    int64_t blobs_kept;        /* unreferenced but pinned while gc ran: kept */
    int64_t rows_removed, transactions;
    const struct track_gc_run *run_list; /* the first 1000 runs */
    size_t n_run_list;
    const uint8_t (*blob_digests)[32]; /* the first 1000 blobs */
    size_t n_blob_digests;
    void *priv_; /* owns the strings above */
};
/* Removes runs deleted more than grace_ms ago (0: every deleted run), then
 * the blobs nothing live references; dry_run removes nothing and reports what
 * would go. On success *rep is filled and released with
 * track_gc_report_free. Waits up to TRACK_GC_TIMEOUT_MS. */
#define TRACK_GC_TIMEOUT_MS 600000
int track_gc(struct track_client *c, int dry_run, int64_t grace_ms, struct track_gc_report *rep,
             struct track_err *err);
void track_gc_report_free(struct track_gc_report *rep);

struct track_lineage_run {
    track_run_id id;
    const char *name;
    const char *experiment;
    int status;
    int deleted;
    int64_t start_ms;
};
struct track_lineage_artifact {
    const char *path;
    uint8_t digest[32];
    int64_t size;
};
struct track_lineage_version {
    const char *model;
    int64_t version;
    const char *path;
    uint8_t digest[32];
};
struct track_lineage {
    struct track_lineage_run run;
    const struct track_lineage_run *ancestors; /* parent first, up to the root */
    size_t n_ancestors;
    const struct track_lineage_run *children;
    size_t n_children;
    const char *git_commit; /* "" when the run has no sys.git.commit tag */
    const char *command;    /* sys.command, or "" */
    const struct track_lineage_artifact *artifacts;
    size_t n_artifacts;
    const struct track_lineage_version *model_versions;
    size_t n_model_versions;
    int truncated; /* a list stopped at its cap (1000; 64 ancestors) */
    void *priv_;
};
/* Where run came from and what came of it. On success *out is filled and
 * released with track_lineage_free. */
int track_lineage_get(struct track_client *c, const char *run, struct track_lineage *out,
                      struct track_err *err);
void track_lineage_free(struct track_lineage *l);
/* ---- artifacts -------------------------------------------------------------
 * Files kept with a run, each stored once in the daemon's data directory
 * under its BLAKE2b-256 digest: the same file logged by ten runs takes the
 * space of one, and a second upload of it sends no bytes. A file of
 * TRACK_STREAM_MIN bytes or more (default 4 MiB) whose size no stored blob
 * has is sent without being hashed here first (the daemon hashes it as it
 * arrives and names the blob; one pass over the file instead of two); any
 * other is hashed first so that one stored already sends nothing. Files move in
 * chunks of at most 1 MiB, so memory stays bounded whatever their size;
 * the digest is checked on arrival (nothing is kept on a mismatch) and
 * again on download. An upload cut short (client or daemon gone) leaves no
 * row; a retry resumes from the bytes that arrived.
 *
 * Artifact paths are relative and '/'-separated: no leading '/', no empty,
 * '.' or '..' segment, no backslash, no NUL, at most 1024 bytes; anything
 * else is TRACK_E_INVALID_ARGUMENT naming the path. */

/* 0 when `path` is an acceptable artifact path, else INVALID_ARGUMENT. */
int track_artifact_check_path(const char *path, struct track_err *err);

struct track_artifact_put_stats {
    int64_t files;   /* files stored */
    int64_t bytes;   /* their sizes summed */
    int64_t sent;    /* bytes sent (less than bytes when some were there already) */
    int64_t deduped; /* files the daemon had already: no bytes sent */
};
/* Stores the file or directory `local_path` in the current run (the one
 * track_run_start or track_run_use chose) as `artifact_path` (NULL: the
 * local path's last segment). A directory keeps its structure: FILE under
 * DIR becomes ARTIFACT_PATH/FILE. Symbolic links inside a directory are
 * stored as what they point at when that stays inside the directory, and
 * refused (nothing uploaded) otherwise, as are other special files. The
 * same path again with another file replaces the row. */
int track_artifact_put(struct track_client *c, const char *local_path, const char *artifact_path,
                       struct track_err *err);
int track_artifact_put_ex(struct track_client *c, const char *local_path, const char *artifact_path,
                          struct track_artifact_put_stats *stats, struct track_err *err);

struct track_artifact_get_stats {
    int64_t files, bytes;
};
/* Downloads (track_artifact_get, track_blob_get) fsync each file before
 * renaming it into place when `on` (survives a power loss as soon as the
 * call returns); off, the default, they rely on the digest check and the
 * rename alone, as cp does: a crash of the process never leaves a partial
 * file under the destination's name either way. */
void track_artifact_set_fsync(struct track_client *c, int on);

/* Fetches artifact `artifact_path` of `run` (hex or unique prefix; NULL:
 * the current run) into `local_path`: a file when the run has that
 * artifact, else every artifact under ARTIFACT_PATH/ into the directory
 * `local_path` (made when missing), keeping their structure. Each file is
 * written as NAME.tmp beside its destination, checked against its digest,
 * fsynced (track_artifact_set_fsync) and renamed; a mismatch is
 * TRACK_E_INTERNAL and nothing is kept.
 * Nothing is written outside local_path (directories below it are opened
 * with O_NOFOLLOW). NOT_FOUND when there is neither. */
int track_artifact_get(struct track_client *c, const char *run, const char *artifact_path,
                       const char *local_path, struct track_err *err);
int track_artifact_get_ex(struct track_client *c, const char *run, const char *artifact_path,
                          const char *local_path, struct track_artifact_get_stats *stats,
                          struct track_err *err);
/* Fetches the blob with BLAKE2b-256 `digest` (`size` bytes, as a model
 * version or an artifact listing gave them) into the file `local_path`,
 * whose directory must exist: written as NAME.tmp beside it, checked
 * against digest and size, renamed (fsynced first if asked), as
 * track_artifact_get does.
 * The bytes are the digest's whatever a run's artifact rows say now (a
 * version pins its bytes). A mismatch is TRACK_E_INTERNAL and nothing is
 * kept; a digest the daemon does not hold is TRACK_E_NOT_FOUND. */
int track_blob_get(struct track_client *c, const uint8_t digest[32], int64_t size,
                   const char *local_path, struct track_err *err);

struct track_artifact_info {
    track_run_id run;
    const char *path; /* valid during the callback */
    uint8_t digest[32];
    char digest_hex[65];
    int64_t size, logged_ms;
};
/* A non-zero answer stops the listing and is returned. */
typedef int (*track_artifact_cb)(void *ctx, const struct track_artifact_info *a);
/* Calls cb for each artifact of `run` (NULL: the current run) whose path
 * starts with `prefix` (NULL: all), in path order. */
int track_artifact_list(struct track_client *c, const char *run, const char *prefix,
                        track_artifact_cb cb, void *ctx, struct track_err *err);

struct track_artifact_verify_result {
    int64_t checked;  /* distinct blobs re-hashed */
    int64_t bytes;    /* their sizes */
    int64_t problems; /* artifacts whose blob is missing or corrupt */
};
struct track_artifact_problem {
    char run_hex[33];
    const char *path;
    char digest_hex[65];
    const char *problem; /* "missing" or "corrupt" */
};
typedef int (*track_artifact_problem_cb)(void *ctx, const struct track_artifact_problem *p);
/* Has the daemon re-hash every blob the artifacts of `run` (NULL: of every
 * run) point at; cb (may be NULL) gets each problem (the first 100).
 * Reading every blob takes a while: the call waits up to 10 minutes. */
int track_artifact_verify(struct track_client *c, const char *run,
                          struct track_artifact_verify_result *out, track_artifact_problem_cb cb,
                          void *ctx, struct track_err *err);
/* ---- model registry ---------------------------------------------------------
 * A model is a name (1..250 bytes of letters, digits and `_ - .`) with
 * versions numbered 1, 2, 3... in register order. A version pins a run's
 * artifact path and the digest and size the artifact had when registered.
 * Aliases (letters, digits, `_ -`, not all digits) point at one version
 * each and move; every move is kept. Wherever a version is taken, `ref` is
 * "NAME/VERSION" or "NAME@ALIAS". These calls are answered by trackd or
 * fail (never spooled). Results are owned by *res: free it with
 * track_model_result_free. */
struct track_model_version {
    const char *model;
    int64_t version;
    track_run_id run;
    const char *path;
    uint8_t digest[32]; /* BLAKE2b-256 */
    int64_t size;
    const char *description;
    const char *user; /* the run's user */
    int64_t created_ms;
    const struct track_kv *tags;
    size_t n_tags;
    const char *const *aliases; /* the aliases pointing at this version */
    size_t n_aliases;
};
struct track_alias_move {
    const char *alias;
    int64_t from_version; /* 0: the alias was new */
    int64_t to_version;
    const char *who;
    int64_t ms;
};
struct track_model_info {
    const char *name;
    int64_t created_ms, versions, latest_version;
    const struct track_kv *tags;
    size_t n_tags;
    const struct track_alias_move *aliases; /* current: alias and to_version */
    size_t n_aliases;
};
struct track_model_result;
void track_model_result_free(struct track_model_result *r);

/* Registers artifact `path` of `run` (id or unique prefix) as the next
 * version of model `name` (created when new), with an optional description
 * (may be NULL) and n tags. *v (with *res) is the new version. NOT_FOUND
 * names a run or path that does not exist; INVALID_ARGUMENT a bad name. */
int track_model_register(struct track_client *c, const char *name, const char *run,
                         const char *path, const char *description, const struct track_kv *tags,
                         size_t n_tags, struct track_model_result **res,
                         const struct track_model_version **v, struct track_err *err);
/* Points `alias` of model `name` at `version` ("3", or another alias of
 * the model), recording the move with this process's user name. *from
 * and *to (may be NULL) get the versions before and after (from 0: new). */
int track_model_alias(struct track_client *c, const char *name, const char *alias,
                      const char *version, int64_t *from, int64_t *to, struct track_err *err);
/* Sets tag key=value on a model ("NAME") or a version ("NAME/3",
 * "NAME@production"). */
int track_model_tag(struct track_client *c, const char *target, const char *key, const char *value,
                    struct track_err *err);
/* Every model, by name. */
int track_model_list(struct track_client *c, struct track_model_result **res,
                     const struct track_model_info **models, size_t *n, struct track_err *err);
/* One model, its versions in order and the history of its aliases, oldest
 * move first. */
int track_model_show(struct track_client *c, const char *name, struct track_model_result **res,
                     const struct track_model_info **model,
                     const struct track_model_version **versions, size_t *n_versions,
                     const struct track_alias_move **history, size_t *n_history,
                     struct track_err *err);
/* The version `ref` names. */
int track_model_get(struct track_client *c, const char *ref, struct track_model_result **res,
                    const struct track_model_version **v, struct track_err *err);

/* ---- identity (admin.c) -----------------------------------------------------
 * Users, roles, grants, tokens and the audit table (README "Roles and
 * grants"). Every call but track_whoami needs the admin role (the local
 * owner has it). Roles: "reader", "writer", "admin"; levels: "read",
 * "write", "manage". Keys are sealed-TCP public keys as "trk1:..." text.
 * Lists are owned by *res: free it with track_admin_result_free. Writes are
 * answered or fail, never spooled. */
struct track_user {
    const char *name;
    const char *role;
    const char *key; /* "trk1:..." or "" when none */
    int64_t created_ms;
};
struct track_grant {
    const char *user;
    const char *experiment;
    const char *level;
};
struct track_token {
    int64_t id;
    const char *user;
    int64_t created_ms;
    int64_t expires_ms; /* 0: never */
};
struct track_audit_entry {
    int64_t id, ms;
    const char *user;
    const char *key; /* "trk1:..." or "" for a local caller */
    const char *op;
    const char *experiment; /* "" when none */
    int has_run;
    track_run_id run;
    const char *detail;
    const char *code; /* "OK", or why it was refused ("PERMISSION_DENIED", ...) */
};
struct track_access {
    const char *experiment;
    const char *level;
};
struct track_whoami {
    const char *name;
    const char *role;
    int local;                              /* the daemon's owner over a local socket */
    const char *key;                        /* "trk1:..." or "" */
    const struct track_access *experiments; /* what the caller may see, by name */
    size_t n_experiments;
};
struct track_admin_result;
void track_admin_result_free(struct track_admin_result *r);

/* key (may be NULL or ""): "trk1:..." text. */
int track_user_add(struct track_client *c, const char *name, const char *role, const char *key,
                   struct track_err *err);
int track_user_list(struct track_client *c, struct track_admin_result **res,
                    const struct track_user **users, size_t *n, struct track_err *err);
int track_user_remove(struct track_client *c, const char *name, struct track_err *err);
/* key NULL or "": removes the user's key. */
int track_user_set_key(struct track_client *c, const char *name, const char *key,
                       struct track_err *err);
int track_user_set_role(struct track_client *c, const char *name, const char *role,
                        struct track_err *err);
/* *grantees (may be NULL): the users holding a grant on the experiment now
 * (1 or more: it is restricted). */
int track_grant_set(struct track_client *c, const char *user, const char *experiment,
                    const char *level, int64_t *grantees, struct track_err *err);
/* *removed 0 when there was no such grant; *grantees those left (0: open). */
int track_grant_revoke(struct track_client *c, const char *user, const char *experiment,
                       int *removed, int64_t *grantees, struct track_err *err);
/* user and experiment may be NULL (any). */
int track_grant_list(struct track_client *c, const char *user, const char *experiment,
                     struct track_admin_result **res, const struct track_grant **grants, size_t *n,
                     struct track_err *err);
#define TRACK_TOKEN_TEXT_BYTES 49 /* "trkt_" + 43 base64url + NUL */
/* Makes a random token for `user` (expires_ms 0: never; else a time), sends
 * only its BLAKE2b-256 hash, and writes the token into `token`: it is shown
 * this once and kept nowhere. *id (may be NULL) gets its number. */
int track_token_create(struct track_client *c, const char *user, int64_t expires_ms,
                       char token[TRACK_TOKEN_TEXT_BYTES], int64_t *id, struct track_err *err);
int track_token_list(struct track_client *c, const char *user, struct track_admin_result **res,
                     const struct track_token **tokens, size_t *n, struct track_err *err);
int track_token_revoke(struct track_client *c, int64_t id, struct track_err *err);
struct track_audit_query {
    const char *user;       /* NULL: any */
    const char *experiment; /* NULL: any */
    int64_t since_ms;       /* 0: any */
    int64_t before_id;      /* 0: from the newest; else a page's next_before_id */
    int limit;              /* 0: 100; at most 10000 */
};
/* One page of audit rows, newest first; *next_before_id 0 when no more. */
int track_audit_list(struct track_client *c, const struct track_audit_query *q,
                     struct track_admin_result **res, const struct track_audit_entry **entries,
                     size_t *n, int64_t *next_before_id, struct track_err *err);
/* Removes the rows older than before_ms; *removed (may be NULL) how many. */
int track_audit_prune(struct track_client *c, int64_t before_ms, int64_t *removed,
                      struct track_err *err);
/* Who the daemon takes this client for, and what it may see. */
int track_whoami(struct track_client *c, struct track_admin_result **res,
                 const struct track_whoami **who, struct track_err *err);
/* ---- feedback (feedback.c; DESIGN.md "Feedback") -----------------------------
 * One score type for every judgement, whoever gives it: a name, a value
 * (a finite number, a boolean or a category label, or none when the score
 * is a comment alone), an optional comment and rationale, a source (human,
 * llm_judge, code) with who, a target inside a run (the run itself, or a
 * free id: a sample id, an artifact path) and a time. A name keeps one
 * type: a value of another type is TRACK_E_CONFLICT naming both.
 *
 * track_feedback_add is buffered like track_log_metric: it checks and
 * copies the score and returns; buffered scores go as FeedbackBatch
 * requests (up to TRACK_FEEDBACK_BATCH scores or 1 MiB each) when the
 * buffer is due (that many scores, or the flush interval), on track_flush
 * and at close, and to the spool when trackd is away. A batch is applied
 * whole or refused whole (the message names the score: "scores[i]: ..."). */
#define TRACK_FEEDBACK_BATCH 1000

enum track_score_kind {
    TRACK_SCORE_NONE = 0, /* a comment alone */
    TRACK_SCORE_NUMBER = 1,
    TRACK_SCORE_BOOL = 2,
    TRACK_SCORE_LABEL = 3,
};
enum track_score_source {
    TRACK_SOURCE_HUMAN = 1,
    TRACK_SOURCE_LLM_JUDGE = 2,
    TRACK_SOURCE_CODE = 3,
};

struct track_score {
    const char *run;    /* hex or a unique prefix; NULL: the current run */
    const char *target; /* NULL or "": the run itself */
    const char *name;
    int kind;
    double number;         /* TRACK_SCORE_NUMBER: finite */
    int boolean;           /* TRACK_SCORE_BOOL */
    const char *label;     /* TRACK_SCORE_LABEL: 1..250 bytes, no control characters */
    const char *comment;   /* NULL or "": none; at most 64 KiB */
    const char *rationale; /* NULL or "": none; at most 64 KiB */
    int source;            /* 0: human */
    const char *by;        /* who; NULL: $USER */
    int64_t time_ms;       /* 0: now */
    int64_t id;            /* in listings */
    /* a score of a trace (32 hex) or of one of its spans (16 hex): run may
     * then be NULL (the trace's run, if it has one, is taken); listings set
     * them for such scores (NULL otherwise) */
    const char *trace, *span;
};

/* "number", "boolean", "label", "none"; "human", "llm_judge", "code". */
const char *track_score_kind_name(int kind);
const char *track_score_source_name(int source);
/* The source named s, or 0. */
int track_score_source_parse(const char *s);
/* Reads a value as typed on a command line into s->kind and its field:
 * true/false/yes/no (any case) a boolean; a decimal number a number (1 and
 * 0 are numbers; NaN and infinities refused naming "feedback value");
 * anything else a label (checked as one). s->label points into text. */
int track_feedback_parse_value(const char *text, struct track_score *s, struct track_err *err);
/* Checks a score against the limits, as the daemon will. */
int track_feedback_check(const struct track_score *s, struct track_err *err);
/* Checks and buffers one score (see above). */
int track_feedback_add(struct track_client *c, const struct track_score *s, struct track_err *err);
/* FeedbackBatch requests this client has sent or spooled so far. */
int64_t track_feedback_batches(const struct track_client *c);

struct track_feedback_query {
    const char *run;        /* one run (hex or prefix), or */
    const char *experiment; /* every active run of an experiment, or */
    const char *trace;      /* 32 hex: a trace's scores and its spans' (with or without a run) */
    const char *target;     /* with has_target: only this target ("" the run itself) */
    int has_target;
    const char *name; /* NULL: any */
};
/* s->run is 32 hex; strings valid during the callback. A non-zero answer
 * stops the listing and is returned. */
typedef int (*track_score_cb)(void *ctx, const struct track_score *s);
/* Calls cb for each score in (run, target, id) order (a trace's: in the
 * order they were added), page by page. */
int track_feedback_list(struct track_client *c, const struct track_feedback_query *q,
                        track_score_cb cb, void *ctx, struct track_err *err);

struct track_feedback_summary {
    const char *run;    /* 32 hex; "" for an experiment's merged summary */
    const char *target; /* by target: the target ("" the run itself); else NULL */
    const char *name;
    int kind;
    int64_t count;    /* scores with a value */
    int64_t comments; /* scores with a comment */
    double mean;      /* numbers: the mean; booleans: the true ratio; else NaN */
    double sum, min, max;
    int64_t true_count;
    size_t n_labels; /* most frequent first */
    const char *const *labels;
    const int64_t *label_counts;
    int64_t other_labels; /* label scores beyond the listed labels */
    size_t n_dist;        /* numbers: (value, count) by value, or equal bins */
    const double *dist_values;
    const int64_t *dist_counts;
    int dist_binned; /* dist_values are the bins' lower edges */
};
typedef int (*track_feedback_summary_cb)(void *ctx, const struct track_feedback_summary *s);
/* Summaries of one run (run) or of an experiment's active runs merged
 * (experiment), one per name by name; by_target: one per (run, target,
 * name). Everything is valid during the callback only. */
int track_feedback_summary(struct track_client *c, const char *run, const char *experiment,
                           int by_target, track_feedback_summary_cb cb, void *ctx,
                           struct track_err *err);
/* The text of artifact `path` of `run` for an export: at most cap bytes
 * into buf (NUL-terminated; cap + 1 bytes of room), cut at a UTF-8
 * boundary. *found 0 when the run has no such artifact or it is not text
 * (not UTF-8, or holds NUL); *size its full size; *cut 1 when not all of it
 * is in buf. */
int track_feedback_target_text(struct track_client *c, const char *run, const char *path, char *buf,
                               size_t cap, int *found, int64_t *size, int *cut,
                               struct track_err *err);

/* ---- traces (trackd's /v1/traces: OTLP from LLM applications) ---------------- */
struct track_trace_info {
    uint8_t trace_id[16];
    const char *experiment;
    int has_run;
    track_run_id run;
    const char *root_name; /* the root span's name */
    int64_t start_ns, end_ns;
    int64_t spans, errors, tokens_in, tokens_out, tokens_total;
    double cost;
    const char *const *models; /* most spans first */
    size_t n_models;
};
struct track_span_info {
    uint8_t span_id[8];
    int has_parent;
    uint8_t parent[8];
    const char *name;
    int kind; /* OTLP's SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer */
    int64_t start_ns, end_ns;
    int status; /* 0 unset, 1 ok, 2 error */
    const char *status_message, *model, *operation;
    int64_t tokens_in, tokens_out, tokens_total;
    double cost;
    const char *attributes; /* a JSON object: the other attributes, "@events", caps' marks */
};
struct track_trace_query {
    const char *const *experiments; /* NULL-terminated, or NULL: every one */
    const char *run;                /* only this run's traces, or NULL */
    int limit;                      /* 0: 100; at most 10,000 */
    int64_t before_start_ns;        /* paging: started before this; 0: the newest */
    int64_t min_tokens, min_duration_ns;
    int errors_only;
    const char *filter; /* `track traces --filter`'s language, or NULL */
};
struct track_trace_result;
void track_trace_result_free(struct track_trace_result *r);
/* 32 hex characters into a 16-byte trace id; -1 if not. */
int track_trace_id_parse(const char *hex, uint8_t id[16]);
/* Traces newest first (one page; *more when more match). */
int track_trace_list(struct track_client *c, const struct track_trace_query *q,
                     struct track_trace_result **res, const struct track_trace_info **traces,
                     size_t *n, int *more, struct track_err *err);
/* Every trace q matches, newest first, each exactly once: pages of q->limit
 * (0: 10,000) asked as "started before the last page's last start + 1ns",
 * the traces at that edge already seen recognised by id, so traces that
 * share a start time across a page's end are neither lost nor counted
 * twice (q->before_start_ns is the start bound). cb's non-zero return
 * stops and is returned. A page whose traces all start in one nanosecond
 * already seen (more than a page of them) is TRACK_E_RESOURCE_EXHAUSTED
 * ("... start in the same nanosecond"), never a loop. */
typedef int (*track_trace_cb)(void *ctx, const struct track_trace_info *t);
int track_trace_each(struct track_client *c, const struct track_trace_query *q, track_trace_cb cb,
                     void *ctx, struct track_err *err);
/* One trace and every span of it, by start time; without_attributes leaves
 * each span's attributes "" (a tree view's reads, a fraction of the bytes). */
int track_trace_get(struct track_client *c, const char *trace_hex, int without_attributes,
                    struct track_trace_result **res, const struct track_trace_info **trace,
                    const struct track_span_info **spans, size_t *n, struct track_err *err);

#ifdef __cplusplus
}
#endif
#endif
