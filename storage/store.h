/*
 * store.h: the storage layer of trackd. Everything above storage/ speaks only
 * these functions and types; nothing here knows of sockets, protobuf or the
 * daemon. The first implementation is SQLite (store_core.c and one
 * store_<noun>.c per entity); a PostgreSQL one can stand beside it behind
 * the same functions.
 *
 * Errors: every function returns 0 or a negative STORE_E_* code and, where a
 * `struct store_err *` is passed, a message naming the field or limit.
 * Nothing here logs or aborts on input.
 *
 * Threads: a `struct store` is used by one thread at a time. The daemon opens
 * one read-write handle for all writes and one read-only handle per worker.
 *
 * Writes happen inside store_begin()/store_commit(). Each request inside a
 * group commit is wrapped in store_save()/store_release()/store_rollback_to()
 * so that one failing request does not undo the others.
 */
#ifndef TRACK_STORE_H
#define TRACK_STORE_H

#include <stddef.h>
#include <stdint.h>

enum store_code {
    STORE_OK = 0,
    STORE_E_INVALID = -1, /* bad argument (the message names it) */
    STORE_E_NOT_FOUND = -2,
    STORE_E_EXISTS = -3,
    STORE_E_CONFLICT = -4, /* e.g. a param logged again with another value */
    STORE_E_FULL = -5,     /* disk or database full */
    STORE_E_BUSY = -6,     /* locked beyond the busy timeout */
    STORE_E_CORRUPT = -7,
    STORE_E_IO = -8,
    STORE_E_INTERNAL = -9,
    STORE_E_AMBIGUOUS = -10, /* a run prefix matches several runs */
};

struct store_err {
    int code;
    char msg[512];
};

enum store_status {
    STORE_RUNNING = 1,
    STORE_FINISHED = 2,
    STORE_FAILED = 3,
    STORE_KILLED = 4,
};

enum store_durability {
    STORE_DURABILITY_NORMAL = 0, /* survives a process crash (WAL, synchronous=NORMAL) */
    STORE_DURABILITY_FULL = 1,   /* also survives power loss (synchronous=FULL) */
};

struct store_opts {
    int readonly;
    int durability;
    int cache_kib; /* the page cache, KiB; 0: STORE_CACHE_KIB_WRITE or _READ */
    /* called before each schema migration of a database that has a schema
     * already (from its version to the next; a large store's can take
     * seconds: a log line says why the start waits); may be NULL */
    void (*migrating)(void *ctx, int from, int to);
    void *migrating_ctx;
};

/* SQLite's page cache of one handle, in KiB: the writer's (trackd has one)
 * and a read handle's (one per read worker). What they hold past that is
 * read again from the OS's page cache (~2 us a 4 KiB page); a read cache
 * smaller than what one query reads (B5's compare reads 31 MB) helps it
 * nothing. trackd gives them back after 5 s without a request
 * (store_release_memory), so an idle daemon holds little. */
#define STORE_CACHE_KIB_WRITE "16384"
#define STORE_CACHE_KIB_READ  "32768"

struct store;

/* Opens (creating if needed) the database at `path`, runs migrations, sets
 * WAL and pragmas. On success *out is a new handle to pass to store_close. */
int store_open(const char *path, const struct store_opts *opts, struct store **out,
               struct store_err *err);
void store_close(struct store *st);

/* Runs the full integrity check. 0 when clean; STORE_E_CORRUPT with the
 * first problem in err otherwise. */
int store_check(struct store *st, struct store_err *err);
/* Makes a store_check (or any statement) running on st in another thread
 * stop soon with an error (sqlite3_interrupt); safe from any thread. */
void store_interrupt(struct store *st);
/* Frees the page cache pages st holds and does not use now
 * (sqlite3_db_release_memory): an idle trackd gives its caches back. */
void store_release_memory(struct store *st);

/* Online copy of the whole database into `dest_path` (SQLite backup API),
 * which must not exist: written to a 0600 tmp file beside it, fsynced, then
 * renamed, so dest_path never holds half a copy. */
int store_backup(struct store *st, const char *dest_path, struct store_err *err);

/* ---- files (store_backup.c) ---------------------------------------------
 * The database's files are private to their owner: 0600 whatever the
 * umask. */
/* Creates `db_path` 0600 when missing and takes group/other bits off it
 * and off its -wal and -shm when present. */
int store_secure_files(const char *db_path, struct store_err *err);
/* Creates `path` (must not exist; a symlink there is refused) empty, 0600. */
int store_file_create_private(const char *path, struct store_err *err);
/* fsyncs the file `path`; store_dir_sync fsyncs the directory holding it. */
int store_file_sync(const char *path, struct store_err *err);
int store_dir_sync(const char *path, struct store_err *err);
/* Folds the WAL of the closed database `db_path` into it (opens it without
 * migrating, checkpoints with TRUNCATE, closes), so the file alone holds
 * every committed write. For a database no process has open. */
int store_checkpoint_file(const char *db_path, struct store_err *err);

/* Checkpoints: the read-write handle never checkpoints inside a commit.
 * store_wal_pages tells how many frames the WAL holds; store_checkpoint
 * copies what it can back into the database without waiting for readers
 * (SQLite's PASSIVE mode) and must be called outside a transaction. */
int store_wal_pages(struct store *st);
int store_checkpoint(struct store *st, struct store_err *err);
/* Copies every WAL frame back and truncates the WAL to zero bytes, waiting
 * for readers (the busy timeout). For recovery from a full disk: gives the
 * WAL's space back once its frames are in the database. */
int store_checkpoint_truncate(struct store *st, struct store_err *err);

int store_begin(struct store *st, struct store_err *err);
int store_commit(struct store *st, struct store_err *err);
void store_rollback(struct store *st);
int store_save(struct store *st, struct store_err *err);
void store_release(struct store *st);
void store_rollback_to(struct store *st);

/* ---- request ids (exactly-once) ----------------------------------------
 * The daemon records each applied write's 16-byte id with its packed
 * response, and the digest of the request's body, in the same transaction
 * as the write. Ids are numbered in the order they are recorded. */
#define STORE_DIGEST_BYTES 32
/* 1 and a malloc'd copy in *resp (caller frees) when known; 0 when not;
 * STORE_E_CONFLICT (nothing in *resp) when `digest` (may be NULL: not
 * compared) differs from the one recorded with the id. */
int store_request_lookup(struct store *st, const uint8_t id[16],
                         const uint8_t digest[STORE_DIGEST_BYTES], uint8_t **resp, size_t *len,
                         struct store_err *err);
/* `digest` may be NULL (then any body replays the response). */
int store_request_put(struct store *st, const uint8_t id[16],
                      const uint8_t digest[STORE_DIGEST_BYTES], const uint8_t *resp, size_t len,
                      int64_t now_ms, struct store_err *err);
/* Forgets ids older than `before_ms` that are not among the newest
 * `keep_last` recorded, oldest first, at most `limit` of them (0: all);
 * *pruned (may be NULL) gets how many. A wall clock set forward cannot make
 * it forget the newest keep_last ids. */
int store_request_prune(struct store *st, int64_t before_ms, int64_t keep_last, int limit,
                        int *pruned, struct store_err *err);

struct store_viewer; /* store_grant.c */

/* ---- experiments --------------------------------------------------------- */
struct store_experiment {
    int64_t id;
    const char *name; /* valid during the callback only */
    int archived;
    int64_t created_ms;
    int64_t run_count;
};

int store_experiment_create(struct store *st, const char *name, int64_t now_ms, int64_t *id,
                            struct store_err *err);
/* Returns the id of `name`, creating it when missing (for run start). */
int store_experiment_ensure(struct store *st, const char *name, int64_t now_ms, int64_t *id,
                            struct store_err *err);
typedef int (*store_experiment_cb)(void *ctx, const struct store_experiment *e);
int store_experiment_list(struct store *st, store_experiment_cb cb, void *ctx,
                          struct store_err *err);
/* The same, only the experiments v may read (NULL: all). */
int store_experiment_list_as(struct store *st, const struct store_viewer *v, store_experiment_cb cb,
                             void *ctx, struct store_err *err);

/* ---- runs -------------------------------------------------------------------- */
struct store_run {
    uint8_t id[16];
    const char *name;
    const char *experiment;
    int status;
    int64_t start_ms;
    int64_t end_ms; /* 0 while running */
    const char *user;
    int has_parent;
    uint8_t parent[16];
    int deleted;        /* soft-deleted (store_run_delete) */
    int64_t deleted_ms; /* when, 0 while active */
    int64_t row;        /* the store's row id (ties in the default order; page seeks) */
};

struct store_run_start {
    uint8_t id[16];
    int64_t experiment_id;
    const char *name; /* NULL or "": generated adjective-noun-NN */
    int64_t start_ms;
    const char *user;
    int has_parent;
    uint8_t parent[16];
};

/* Creates the run. Starting the same id again with the same experiment is
 * accepted (replays); with anything else STORE_E_EXISTS. */
int store_run_start(struct store *st, const struct store_run_start *r, struct store_err *err);
/* Ends a RUNNING run. end_ms 0 means now (or the run's start, when the
 * start lies ahead of this clock); an end_ms before the run's start_ms is
 * STORE_E_INVALID naming end_ms. Ending it again with the same status is
 * accepted; with another, STORE_E_CONFLICT. */
int store_run_end(struct store *st, const uint8_t id[16], int status, int64_t end_ms,
                  struct store_err *err);

/* Resolves 4..32 hex characters to a run id. STORE_E_NOT_FOUND, or
 * STORE_E_AMBIGUOUS with the candidates (up to 8) listed in err. */
int store_run_resolve(struct store *st, const char *hex, uint8_t id[16], struct store_err *err);

typedef int (*store_run_cb)(void *ctx, const struct store_run *r);
int store_run_get(struct store *st, const uint8_t id[16], store_run_cb cb, void *ctx,
                  struct store_err *err);

struct store_run_query {
    const char *const *experiments; /* NULL-terminated names, or NULL: all */
    const char *filter;             /* filter expression, or NULL */
    const char *order_by;           /* order expression, or NULL: start_time DESC */
    int limit;                      /* 0: no limit */
    /* whose list (store_grant.c): experiments it cannot read are NOT_FOUND
     * when named and their runs left out; NULL: everything */
    const struct store_viewer *viewer;
    int force_scan; /* tests: read every run, whatever the planner would choose */
    /* With the default order (newest first) only: start after the run
     * (seek_start_ms, seek_row), or at it when seek_inclusive, reading no
     * run before it (a page of a long listing costs its own runs only). */
    int seek;
    int seek_inclusive;
    int64_t seek_start_ms, seek_row;
};
/* Calls cb for each matching run, in order. A bad filter or order answers
 * STORE_E_INVALID with the column and what was expected in err. */
int store_run_list(struct store *st, const struct store_run_query *q, store_run_cb cb, void *ctx,
                   struct store_err *err);
/* The plan store_run_list would choose for q ("scan", "order", "term N" or
 * "none") and SQLite's EXPLAIN QUERY PLAN of its query, a line each, into
 * out: what tests hold the planned shape to (store_search.c). */
int store_run_list_plan(struct store *st, const struct store_run_query *q, char *out, size_t cap,
                        struct store_err *err);

/* ---- params and tags ------------------------------------------------------------ */
/* Params are immutable: the same value again is accepted; another value is
 * STORE_E_CONFLICT naming both values. */
int store_param_put(struct store *st, const uint8_t run[16], const char *key, const char *value,
                    struct store_err *err);
int store_tag_put(struct store *st, const uint8_t run[16], const char *key, const char *value,
                  struct store_err *err);
/* Removes the tag; NOT_FOUND naming the key when the run has no such tag. */
int store_tag_delete(struct store *st, const uint8_t run[16], const char *key,
                     struct store_err *err);
/* Renames a live run. */
int store_run_rename(struct store *st, const uint8_t run[16], const char *name,
                     struct store_err *err);
typedef int (*store_kv_cb)(void *ctx, const char *key, const char *value);
int store_param_list(struct store *st, const uint8_t run[16], store_kv_cb cb, void *ctx,
                     struct store_err *err);
int store_tag_list(struct store *st, const uint8_t run[16], store_kv_cb cb, void *ctx,
                   struct store_err *err);

/* ---- metrics ---------------------------------------------------------------------- */
/* Appends n points of one (run, key) as one packed chunk and updates the
 * (run, key) summary. The arrays are the caller's; nothing is allocated per
 * point. Steps must be >= 0 (checked by the caller). */
int store_metric_append(struct store *st, const uint8_t run[16], const char *key,
                        const int64_t *steps, const int64_t *times_ms, const double *values,
                        size_t n, struct store_err *err);

struct store_metric_summary {
    const char *key;
    double last, min, max; /* min/max ignore NaN; NaN when every point is NaN */
    int64_t count;
    int64_t last_step;
    int64_t last_ms;
};
/* Points logged for (run, key); STORE_E_NOT_FOUND when the run has none. */
int store_metric_count(struct store *st, const uint8_t run[16], const char *key, int64_t *count,
                       struct store_err *err);
typedef int (*store_summary_cb)(void *ctx, const struct store_metric_summary *s);
int store_metric_summaries(struct store *st, const uint8_t run[16], store_summary_cb cb, void *ctx,
                           struct store_err *err);

/* Paged forms of store_param_list, store_tag_list and store_metric_summaries:
 * keys after `after` (NULL or "": from the first), by key, at most `limit`
 * rows (0: no limit). A callback's answer > 0 stops the listing and is
 * returned (a full page, not an error); < 0 stops it as an error. */
int store_param_list_after(struct store *st, const uint8_t run[16], const char *after, int limit,
                           store_kv_cb cb, void *ctx, struct store_err *err);
int store_tag_list_after(struct store *st, const uint8_t run[16], const char *after, int limit,
                         store_kv_cb cb, void *ctx, struct store_err *err);
int store_metric_summaries_after(struct store *st, const uint8_t run[16], const char *after,
                                 int limit, store_summary_cb cb, void *ctx, struct store_err *err);

/* Calls cb with consecutive slices of the points of (run, key), in logged
 * order, starting after the first `after_seq` points, until `max_points`
 * were given (0: all). *next_seq is the cursor for the next call. The
 * slices are valid during the callback only. */
typedef int (*store_points_cb)(void *ctx, const int64_t *steps, const int64_t *times_ms,
                               const double *values, size_t n);
int store_metric_history(struct store *st, const uint8_t run[16], const char *key,
                         int64_t after_seq, int64_t max_points, store_points_cb cb, void *ctx,
                         int64_t *next_seq, struct store_err *err);

/* Downsamples (run, key) into at most `buckets` buckets by step: for each,
 * its first step, min, max and last value. Cost is bounded by the number of
 * stored chunks, not points. *n is the number of buckets filled. */
int store_metric_curve(struct store *st, const uint8_t run[16], const char *key, int buckets,
                       int64_t *steps, double *mins, double *maxs, double *lasts, int *n,
                       int64_t *count, struct store_err *err);

/* One point of a downsampled curve, and one bucket of it (M4: the first and
 * last logged points, the first smallest and largest non-NaN value, each with
 * its step and time; min and max are the first point when all are NaN).
 * lo_step is the bucket's smallest step. */
struct store_curve_point {
    int64_t step, time_ms;
    double value;
};
struct store_bucket {
    int64_t lo_step;
    struct store_curve_point first, min, max, last;
};

/* Downsamples (run, key) as store_metric_curve does, keeping four points per
 * bucket in out[0..buckets), so that a drawn envelope shows every spike and
 * no bucket's value stands for a pattern the data lacks. Cost: the chunk
 * rows, plus at most four decoded chunks per bucket. *n is the number of
 * buckets filled (empty ones are left out), in step order. */
int store_metric_m4(struct store *st, const uint8_t run[16], const char *key, int buckets,
                    struct store_bucket *out, int *n, int64_t *count, struct store_err *err);

/* The search indexes (params, metric summaries) are kept in batches
 * (store_search_index.c): the runs created since the last merge are found
 * by a search without them. *runs is how many runs wait. */
int store_index_backlog(struct store *st, int64_t *runs, struct store_err *err);
/* Adds the params and summaries of at most max_runs of the waiting runs (0
 * or less: all), oldest first, to their indexes, in the caller's
 * transaction; *runs and *rows say how many runs and rows it added. */
int store_index_merge(struct store *st, int64_t max_runs, int64_t *runs, int64_t *rows,
                      struct store_err *err);

/* Merges runs of small consecutive chunks (fewer than `small` points) into
 * one chunk each, at most `max_groups` groups per call, in the caller's
 * transaction. *merged is how many chunks were merged away. */
int store_metric_compact(struct store *st, int small, int max_groups, int *merged,
                         struct store_err *err);

/* ---- lifecycle: soft deletion, restore, gc (store_lifecycle.c) -------------------
 * A run is active or deleted. A deleted run keeps every row: store_run_get
 * and the per-run reads still answer (struct store_run.deleted says so),
 * store_run_list leaves it out unless the filter names lifecycle, and writes
 * into it (params, tags, metrics, end) answer STORE_E_CONFLICT naming it.
 * gc removes the rows of runs deleted before its grace period, a bounded
 * number of rows per call so that each call fits a short transaction. */

/* Marks the run deleted at now_ms (0: now). *changed (may be NULL) is 0 when
 * it was deleted already (then its first deleted_ms stays). */
int store_run_delete(struct store *st, const uint8_t id[16], int64_t now_ms, int *changed,
                     struct store_err *err);
/* Makes a deleted run active again; *changed 0 when it was active. */
int store_run_restore(struct store *st, const uint8_t id[16], int *changed, struct store_err *err);

/* A run gc would remove: deleted before the cutoff, and no model version
 * made from it (a version keeps its run, so its lineage stays whole).
 * bytes: its metric chunks, params and tags as stored (an estimate of the
 * space its rows take). */
struct store_gc_run {
    uint8_t id[16];
    const char *name; /* valid during the callback only */
    int64_t deleted_ms;
    int64_t bytes;
};
typedef int (*store_gc_run_cb)(void *ctx, const struct store_gc_run *r);
/* Calls cb for each run gc would remove with this cutoff (deleted_ms <=
 * before_ms: a grace of 0 takes a run deleted this very millisecond too),
 * oldest deletion first; a non-zero answer stops and is returned. */
int store_gc_runs(struct store *st, int64_t before_ms, store_gc_run_cb cb, void *ctx,
                  struct store_err *err);
/* One bounded step of gc, in the caller's write transaction: removes at most
 * `max_rows` rows of the first run store_gc_runs would give (its metric
 * chunks and summaries, params, tags and artifact rows; the run's row last,
 * once nothing hangs on it). Never touches other tables (request ids, audit).
 * *rows gets the rows removed, *runs 1 when a run's row went, *more 1 when
 * work is left (call again, in a new transaction). */
int store_gc_step(struct store *st, int64_t before_ms, int max_rows, int64_t *rows, int *runs,
                  int *more, struct store_err *err);

/* The digests that must keep their blobs: those of the artifacts of every run
 * gc keeps with this cutoff (active runs, and deleted runs inside the grace
 * period, which a restore brings back whole), and those of every model
 * version (a version keeps its blob even when its run is deleted). Each
 * table is read only if it exists (artifacts and models are other modules'),
 * so this answers nothing, not an error, on a store without them. A digest
 * may come more than once. before_ms INT64_MIN: every run's artifacts. */
typedef int (*store_digest_cb)(void *ctx, const uint8_t digest[32]);
int store_gc_live_digests(struct store *st, int64_t before_ms, store_digest_cb cb, void *ctx,
                          struct store_err *err);

/* ---- lineage (store_lineage.c) --------------------------------------------------------
 * What a run was made from and what was made from it. The artifacts and
 * model-version tables belong to other modules; each listing below answers
 * no rows (not an error) when its table does not exist. */
/* Calls cb for each child run (parent = id), oldest first, at most limit. */
int store_lineage_children(struct store *st, const uint8_t id[16], int limit, store_run_cb cb,
                           void *ctx, struct store_err *err);
struct store_lineage_artifact {
    const char *path; /* valid during the callback only */
    uint8_t digest[32];
    int64_t size;
};
typedef int (*store_lineage_artifact_cb)(void *ctx, const struct store_lineage_artifact *a);
/* The run's artifacts by path, at most limit. */
int store_lineage_artifacts(struct store *st, const uint8_t id[16], int limit,
                            store_lineage_artifact_cb cb, void *ctx, struct store_err *err);
struct store_lineage_version {
    const char *model; /* valid during the callback only */
    int64_t version;
    const char *path;
    uint8_t digest[32];
};
typedef int (*store_lineage_version_cb)(void *ctx, const struct store_lineage_version *v);
/* The model versions made from the run, by model and version, at most limit. */
int store_lineage_versions(struct store *st, const uint8_t id[16], int limit,
                           store_lineage_version_cb cb, void *ctx, struct store_err *err);
/* Removes the run's artifact at `path`, or every one under `path`/ when it
 * names a directory (every one of the run when path is empty); *n gets the
 * rows removed, NOT_FOUND when none. The blobs stay for gc. */
int store_artifact_delete(struct store *st, const uint8_t run[16], const char *path, int64_t *n,
                          struct store_err *err);
/* ---- artifacts (store_artifact.c) ------------------------------------------------
 * (run, path) -> the BLAKE2b-256 digest and size of a blob, and when it was
 * logged. put replaces the row of an existing (run, path); get answers
 * STORE_E_NOT_FOUND naming the run and the path (or the run alone when it
 * does not exist). */
int store_artifact_put(struct store *st, const uint8_t run[16], const char *path,
                       const uint8_t digest[32], int64_t size, int64_t logged_ms,
                       struct store_err *err);
int store_artifact_get(struct store *st, const uint8_t run[16], const char *path,
                       uint8_t digest[32], int64_t *size, int64_t *logged_ms,
                       struct store_err *err);

/* ---- model registry (store_model.c) ----------------------------------------------
 * A model is a name; its versions number 1, 2, 3... in register order (the
 * next number is taken inside the write transaction, so two registers get
 * two numbers). A version pins (run, artifact path, digest, size) copied at
 * register time: replacing the run's artifact later changes nothing. An
 * alias names one version of a model and moves; each move is a history row
 * (who, when, from, to; from 0 for a new alias). Tags belong to a model
 * (version 0) or to one version.
 *
 * Names: a model's is 1..STORE_MODEL_NAME_MAX bytes of letters, digits and
 * `_ - .`; an alias's 1..STORE_MODEL_NAME_MAX of letters, digits, `_ -`,
 * not all digits. Others are STORE_E_INVALID naming the rule.
 *
 * A reference to a version is "NAME/VERSION" or "NAME@ALIAS"; every
 * function taking `ref` resolves it with store_model_resolve. */
#define STORE_MODEL_NAME_MAX 250
struct store_model_version {
    const char *model; /* strings valid during the callback only */
    int64_t version;
    uint8_t run[16];
    const char *path;
    uint8_t digest[32];
    int64_t size;
    const char *description;
    const char *user; /* the run's user at register time */
    int64_t created_ms;
};
struct store_model {
    const char *name;
    int64_t created_ms;
    int64_t versions;       /* how many */
    int64_t latest_version; /* 0: none */
};
struct store_alias_move {
    const char *alias;
    int64_t from_version; /* 0: the alias was new */
    int64_t to_version;
    const char *who;
    int64_t ms;
    int64_t id; /* the move's row, for paging (store_model_history_after) */
};
typedef int (*store_model_cb)(void *ctx, const struct store_model *m);
typedef int (*store_model_version_cb)(void *ctx, const struct store_model_version *v);
typedef int (*store_alias_move_cb)(void *ctx, const struct store_alias_move *m);
typedef int (*store_alias_cb)(void *ctx, const char *alias, int64_t version);

/* 0 when `name` is a valid model (alias: store_model_check_alias) name, else
 * STORE_E_INVALID naming the rule. */
int store_model_check_name(const char *name, struct store_err *err);
int store_model_check_alias(const char *alias, struct store_err *err);

/* The one resolver: "NAME/VERSION" or "NAME@ALIAS" to the model's id and
 * the version's number. STORE_E_INVALID for another shape, STORE_E_NOT_FOUND
 * naming the model, the alias or the version that does not exist. */
int store_model_resolve(struct store *st, const char *ref, int64_t *model_id, int64_t *version,
                        struct store_err *err);

/* Registers (path of run) as the next version of model `name`, created when
 * new. The artifact must exist (STORE_E_NOT_FOUND naming run and path);
 * its digest and size are copied. n tags (may be 0) go on the version.
 * *version (may be NULL) gets the number. */
int store_model_register(struct store *st, const char *name, const uint8_t run[16],
                         const char *path, const char *description, const char *const *tag_keys,
                         const char *const *tag_values, size_t n_tags, int64_t now_ms,
                         int64_t *version, struct store_err *err);
/* The version `ref` names, given to cb once. */
int store_model_version_get(struct store *st, const char *ref, store_model_version_cb cb, void *ctx,
                            struct store_err *err);
/* Points `alias` of model `name` at the version `target` names ("3", or an
 * alias of the same model) and records the move with `who` at now_ms
 * (NULL: the user of the run the version was registered from). *from
 * (may be NULL) gets the version it pointed at before (0: none), *to the
 * one it points at now. Pointing it where it already points records
 * nothing. */
int store_model_alias_set(struct store *st, const char *name, const char *alias, const char *target,
                          const char *who, int64_t now_ms, int64_t *from, int64_t *to,
                          struct store_err *err);
/* Removes `alias` of model `name` (NOT_FOUND when it has none), recorded
 * in the history as a move to version 0 by `who`; *from the version it
 * pointed at. */
int store_model_alias_delete(struct store *st, const char *name, const char *alias, const char *who,
                             int64_t now_ms, int64_t *from, struct store_err *err);
/* Sets tag key=value on model `target` ("NAME") or on a version ("NAME/3",
 * "NAME@production"). */
int store_model_tag_put(struct store *st, const char *target, const char *key, const char *value,
                        struct store_err *err);
/* A model without versions yet (MLflow's registered-models/create);
 * STORE_E_EXISTS when the name is taken. */
int store_model_create(struct store *st, const char *name, int64_t now_ms, struct store_err *err);
/* Every model, by name. */
int store_model_list(struct store *st, store_model_cb cb, void *ctx, struct store_err *err);
/* Pages of the listings below for paged replies: the models named after
 * `after` (NULL: from the first), the versions numbered after `after`, the
 * alias moves after the move with id `after_id`; at most `limit` (0: all). */
int store_model_list_after(struct store *st, const char *after, int limit, store_model_cb cb,
                           void *ctx, struct store_err *err);
int store_model_versions_after(struct store *st, const char *name, int64_t after, int limit,
                               store_model_version_cb cb, void *ctx, struct store_err *err);
int store_model_history_after(struct store *st, const char *name, int64_t after_id, int limit,
                              store_alias_move_cb cb, void *ctx, struct store_err *err);
/* The pieces of `track model show NAME` (STORE_E_NOT_FOUND for an unknown
 * model): the model, its versions in order, its aliases by name, the alias
 * history oldest first, and the tags of the model (version 0) or of one
 * version, by key. */
int store_model_get(struct store *st, const char *name, store_model_cb cb, void *ctx,
                    struct store_err *err);
int store_model_versions(struct store *st, const char *name, store_model_version_cb cb, void *ctx,
                         struct store_err *err);
int store_model_aliases(struct store *st, const char *name, store_alias_cb cb, void *ctx,
                        struct store_err *err);
int store_model_history(struct store *st, const char *name, store_alias_move_cb cb, void *ctx,
                        struct store_err *err);
int store_model_tags(struct store *st, const char *name, int64_t version, store_kv_cb cb, void *ctx,
                     struct store_err *err);

/* For gc: calls cb with the digest of every model version (a digest held by
 * several versions comes once). Those blobs must be kept whatever became of
 * their runs. */
int store_model_version_each_digest(struct store *st,
                                    void (*cb)(void *ctx, const uint8_t digest[32]), void *ctx,
                                    struct store_err *err);
/* For lineage: calls cb with (model name, version, digest) of every version
 * registered from `run`, by model name then version. Strings are valid
 * during the callback only; a non-zero answer stops and is returned. */
typedef int (*store_run_version_cb)(void *ctx, const char *model, int64_t version,
                                    const uint8_t digest[32]);
int store_model_versions_of_run(struct store *st, const uint8_t run[16], store_run_version_cb cb,
                                void *ctx, struct store_err *err);

/* ---- feedback (store_feedback.c) -------------------------------------------------
 * DESIGN.md "Feedback": one row type for every judgement. A score has a name,
 * a typed value (a finite number, a boolean, a label, or none when it is a
 * comment alone), an optional comment and rationale, a source (human,
 * llm_judge, code) with who, a target and a time. The target is the run
 * itself (kind RUN, target ""), a free id inside it (a sample id or an
 * artifact path), or, later, a trace or span (run may then be absent). A
 * name keeps one type: the first value fixes it, a value of another type is
 * STORE_E_CONFLICT naming both. Per (run, name) a summary row (count, sum,
 * min, max, true count, comments) and per (run, name, label) a count are
 * updated in the same transaction as the insert; their mean (numbers) or
 * true ratio (booleans) is what `feedback.NAME` compares in filters.
 *
 * Strings are checked by the caller against track_limits.h; here only what
 * the schema needs: a name, finite numbers, a known kind and source. */
enum store_fb_kind {
    STORE_FB_NONE = 0, /* a comment alone */
    STORE_FB_NUMBER = 1,
    STORE_FB_BOOL = 2,
    STORE_FB_LABEL = 3,
};
enum store_fb_source { STORE_FB_HUMAN = 1, STORE_FB_LLM_JUDGE = 2, STORE_FB_CODE = 3 };
enum store_fb_target {
    STORE_FB_T_RUN = 0,   /* the run itself */
    STORE_FB_T_ID = 1,    /* a sample id or artifact path inside the run */
    STORE_FB_T_TRACE = 2, /* reserved: a trace (trace id set) */
    STORE_FB_T_SPAN = 3,  /* reserved: a span (trace and span ids set) */
};
#define STORE_FB_SUMMARY_LABELS 32 /* labels listed per summary, most frequent first */
#define STORE_FB_DIST_VALUES    32 /* distinct numbers listed before binning */
#define STORE_FB_DIST_BINS      10

struct store_score {
    int64_t id; /* set by list; ignored by add */
    int has_run;
    uint8_t run[16];
    int target_kind;
    const char *target; /* "" (or NULL) for the run itself */
    int has_trace, has_span;
    uint8_t trace[16], span[8];
    const char *name;
    int kind;
    double number; /* STORE_FB_NUMBER */
    int boolean;   /* STORE_FB_BOOL */
    const char *label;
    const char *comment;   /* NULL or "": none */
    const char *rationale; /* NULL or "": none */
    int source;
    const char *source_id;
    int64_t time_ms;
};

/* Adds one score (a live run must exist: NOT_FOUND naming it, CONFLICT when
 * deleted), updating the summaries. *id (may be NULL) gets its row id. */
int store_feedback_add(struct store *st, const struct store_score *s, int64_t *id,
                       struct store_err *err);
/* The kind a name holds (STORE_FB_NONE: unknown, or comments only). */
int store_feedback_name_kind(struct store *st, const char *name, int *kind, struct store_err *err);

struct store_feedback_query {
    int has_run;
    uint8_t run[16];        /* one run, or */
    const char *experiment; /* every active run of an experiment (NOT_FOUND when unknown), or */
    int has_trace;          /* the scores of one trace and its spans, with or without a run, */
    uint8_t trace[16];      /* in id order (the cursor: after_id alone) */
    const char *target;     /* NULL: any */
    const char *name;       /* NULL: any */
    /* keyset cursor: rows after (after_run, after_target, after_id) in the
     * listing's order (run row, target, id); all zero/NULL from the first */
    int64_t after_run;
    const char *after_target;
    int64_t after_id;
    int limit; /* 0: no limit */
};
/* run_row is the cursor's after_run for this row. Strings are valid during
 * the callback only; > 0 stops (returned), < 0 stops as an error. */
typedef int (*store_score_cb)(void *ctx, const struct store_score *s, int64_t run_row);
int store_feedback_list(struct store *st, const struct store_feedback_query *q, store_score_cb cb,
                        void *ctx, struct store_err *err);

struct store_feedback_summary {
    int has_run;
    uint8_t run[16];    /* the run summarised (none for an experiment's summary) */
    const char *target; /* by target: the target ("" the run itself); else NULL */
    const char *name;
    int kind;
    int64_t count;        /* scores with a value */
    int64_t comments;     /* scores with a comment */
    double sum, min, max; /* numbers and booleans (0/1); min/max NaN when count is 0 */
    int64_t true_count;
    size_t n_labels; /* label names: most frequent first, ties by label */
    const char *const *labels;
    const int64_t *label_counts;
    int64_t other_labels;      /* scores with labels beyond those listed */
    size_t n_dist;             /* numbers: (value, count) by value, or bins of equal width */
    const double *dist_values; /* binned: each bin's lower edge */
    const int64_t *dist_counts;
    int dist_binned;
    int64_t cursor_run, cursor_name; /* by target: this item's place, for store_feedback_after */
};
typedef int (*store_feedback_summary_cb)(void *ctx, const struct store_feedback_summary *s);
/* A cursor of store_feedback_summaries: by target, the items after the one
 * whose cursor_run, target and cursor_name these are; otherwise the names
 * after `name`. */
struct store_feedback_after {
    int64_t run_row, name_id;
    const char *target;
    const char *name;
};
/* One item per name of run `run` (or of every active run of `experiment`,
 * when run is NULL, merged), by name; with by_target one per (run, target,
 * name) instead, by run (in start order), target, and name (in the order
 * names were first used), read in index order so a page costs its rows. Only items after `after`
 * (NULL: from the first), at most `limit` (0: all). Everything pointed to is valid during the
 * callback only. */
int store_feedback_summaries(struct store *st, const uint8_t *run, const char *experiment,
                             int by_target, const struct store_feedback_after *after, int limit,
                             store_feedback_summary_cb cb, void *ctx, struct store_err *err);

/* ---- whole-store figures ---------------------------------------------------------- */
struct store_counts {
    int64_t experiments, runs, metric_points, metric_chunks, db_bytes;
};
int store_counts(struct store *st, struct store_counts *c, struct store_err *err);

/* ---- artifacts (store_artifact.c) -----------------------------------------
 * A run's artifacts: (run, path) -> (digest, size, logged_ms), the digest
 * naming a blob of the blob store (blob.h), which this layer never touches.
 * Paths are checked by the caller (limits_check_artifact_path); here only
 * their presence and length (1..1024 bytes). */
struct store_artifact {
    const char *path; /* valid during the callback only */
    uint8_t digest[32];
    int64_t size;
    int64_t logged_ms;
};
typedef int (*store_artifact_cb)(void *ctx, const struct store_artifact *a);
/* Records (run, path) -> (digest, size, logged_ms). The same path again with
 * the same digest is fine (0; the first logged_ms is kept); another digest
 * replaces the row (the old blob is then gc's to judge). NOT_FOUND for an
 * unknown run; inside the caller's write transaction. */
int store_artifact_put(struct store *st, const uint8_t run[16], const char *path,
                       const uint8_t digest[32], int64_t size, int64_t logged_ms,
                       struct store_err *err);
/* The row of (run, path); NOT_FOUND naming run and path when there is none. */
int store_artifact_get(struct store *st, const uint8_t run[16], const char *path,
                       uint8_t digest[32], int64_t *size, int64_t *logged_ms,
                       struct store_err *err);
/* Calls cb for each artifact of run whose path starts with `prefix` (NULL or
 * "": all), in path order (bytewise); a non-zero answer stops the walk and is
 * returned. NOT_FOUND for an unknown run. */
int store_artifact_list(struct store *st, const uint8_t run[16], const char *prefix,
                        store_artifact_cb cb, void *ctx, struct store_err *err);
/* The same, only paths after `after` (NULL: from the start), at most `limit`
 * rows (0: no limit), for paged replies. */
int store_artifact_list_after(struct store *st, const uint8_t run[16], const char *prefix,
                              const char *after, int limit, store_artifact_cb cb, void *ctx,
                              struct store_err *err);
/* Calls cb once for each distinct digest any artifact row names (gc, check). */
int store_artifact_each_digest(struct store *st, void (*cb)(void *ctx, const uint8_t digest[32]),
                               void *ctx, struct store_err *err);
/* Calls cb for every artifact row of every run (run is runs.uuid), in (run,
 * path) order; a non-zero answer stops the walk and is returned. */
typedef int (*store_artifact_row_cb)(void *ctx, const uint8_t run[16],
                                     const struct store_artifact *a);
int store_artifact_each(struct store *st, store_artifact_row_cb cb, void *ctx,
                        struct store_err *err);
/* How many artifact rows and how many bytes (sizes summed) run has, or the
 * whole store has when run is NULL. */
int store_artifact_count(struct store *st, const uint8_t run[16], int64_t *count, int64_t *bytes,
                         struct store_err *err);

/* ---- identity (store_user.c): users, their roles and keys ---------------------
 * DESIGN.md "Identity". A user has a name (1..STORE_USER_NAME_MAX of letters,
 * digits, `_ - .`, not starting with `-` or `.`), a role, and at most one
 * sealed-TCP public key; a key belongs to one user at most. Grants, tokens
 * and audit rows are store_grant.c's and store_audit.c's. */
enum store_role { STORE_ROLE_READER = 1, STORE_ROLE_WRITER = 2, STORE_ROLE_ADMIN = 3 };
#define STORE_USER_NAME_MAX 64
#define STORE_KEY_BYTES     32

struct store_user {
    int64_t id;
    char name[STORE_USER_NAME_MAX + 1];
    int role;
    int has_key;
    uint8_t key[STORE_KEY_BYTES];
    int64_t created_ms;
};
typedef int (*store_user_cb)(void *ctx, const struct store_user *u);

/* "reader", "writer", "admin"; "unknown" otherwise. */
const char *store_role_name(int role);
/* The role named s, or 0. */
int store_role_parse(const char *s);
int store_user_check_name(const char *name, struct store_err *err);
/* Adds a user (key NULL: none yet). EXISTS naming the name, or naming the
 * user that already holds the key. */
int store_user_add(struct store *st, const char *name, int role, const uint8_t *key, int64_t now_ms,
                   int64_t *id, struct store_err *err);
/* The user holding key, or NOT_FOUND (the message does not echo the key). */
int store_user_by_key(struct store *st, const uint8_t key[STORE_KEY_BYTES], struct store_user *out,
                      struct store_err *err);
/* The user named name, or NOT_FOUND naming it. */
int store_user_by_name(struct store *st, const char *name, struct store_user *out,
                       struct store_err *err);
/* Every user in name order; a non-zero answer of cb stops and is returned. */
int store_user_list(struct store *st, store_user_cb cb, void *ctx, struct store_err *err);
/* Removes a user with their grants and tokens (audit rows stay); NOT_FOUND. */
int store_user_remove(struct store *st, const char *name, struct store_err *err);
/* Replaces a user's key (NULL: removes it); EXISTS when another user holds it. */
int store_user_set_key(struct store *st, const char *name, const uint8_t *key,
                       struct store_err *err);
int store_user_set_role(struct store *st, const char *name, int role, struct store_err *err);

/* ---- grants (store_grant.c) ------------------------------------------------------
 * README "Roles and grants". Levels: none 0 < read 1 < write 2 < manage 3.
 * An experiment with no grant rows is open: a user has the level of their
 * role there (reader read, writer write, admin manage: the numbers match).
 * One with grant rows is restricted: only its grantees, at their granted
 * level (above or below their role), and admins reach it. A viewer with
 * `all` set (the daemon's local owner) has manage everywhere. Levels are
 * read from the tables on every call: a grant counts from the next request. */
enum store_level {
    STORE_LEVEL_NONE = 0,
    STORE_LEVEL_READ = 1,
    STORE_LEVEL_WRITE = 2,
    STORE_LEVEL_MANAGE = 3
};
struct store_viewer {
    int all;         /* the local owner: every level everywhere */
    int64_t user_id; /* users.id */
    int role;        /* STORE_ROLE_* */
};
/* "none", "read", "write", "manage". */
const char *store_level_name(int level);
/* The level named s ("read", "write", "manage"), or 0. */
int store_level_parse(const char *s);
/* The viewer's level on experiment `experiment_id` (v NULL: manage). */
int store_grant_level(struct store *st, const struct store_viewer *v, int64_t experiment_id,
                      int *level, struct store_err *err);
/* The same predicate as SQL, for lists: writes into buf a boolean
 * expression true when v has at least `level` on the experiment whose id is
 * the column expression `col` (only our own integers are written into it,
 * never a user's string). v NULL or all: "1". -1 when cap is too small. */
int store_grant_sql(const struct store_viewer *v, const char *col, int level, char *buf,
                    size_t cap);
/* The experiment named `name`: its id, or NOT_FOUND naming it. */
int store_experiment_id(struct store *st, const char *name, int64_t *id, struct store_err *err);
/* The experiment of run `run` (id and name, name_cap bytes with the NUL);
 * NOT_FOUND "run HEX not found". */
int store_run_experiment(struct store *st, const uint8_t run[16], int64_t *experiment_id,
                         char *name, size_t name_cap, struct store_err *err);
/* 1 in *visible when v may read some version of model `name` (its run's
 * experiment), 0 otherwise (also for an unknown model). */
int store_model_visible(struct store *st, const struct store_viewer *v, const char *name,
                        int *visible, struct store_err *err);
/* The viewer's level on the experiment of run `run`; 0 when it does not exist. */
int store_grant_run_level(struct store *st, const struct store_viewer *v, const uint8_t run[16],
                          int *level, struct store_err *err);
/* 1 in *visible when some artifact row or model version naming `digest`
 * belongs to a run v may read. */
int store_digest_visible(struct store *st, const struct store_viewer *v, const uint8_t digest[32],
                         int *visible, struct store_err *err);
/* Gives `user` `level` on experiment `experiment` (replacing a grant it had);
 * *grantees (may be NULL) gets the users holding a grant there now. */
int store_grant_set(struct store *st, const char *user, const char *experiment, int level,
                    int64_t *grantees, struct store_err *err);
/* Takes the grant away; *removed 0 when there was none; *grantees what is left. */
int store_grant_revoke(struct store *st, const char *user, const char *experiment, int *removed,
                       int64_t *grantees, struct store_err *err);
struct store_grant {
    const char *user; /* valid during the callback only */
    const char *experiment;
    int level;
};
typedef int (*store_grant_cb)(void *ctx, const struct store_grant *g);
/* Grants of `user` and/or on `experiment` (NULL: any), by experiment then
 * user; NOT_FOUND naming a user or experiment that does not exist. */
int store_grant_list(struct store *st, const char *user, const char *experiment, store_grant_cb cb,
                     void *ctx, struct store_err *err);
/* Every experiment v may read, by name, with v's level on it. */
typedef int (*store_access_cb)(void *ctx, const char *experiment, int level);
int store_grant_visible(struct store *st, const struct store_viewer *v, store_access_cb cb,
                        void *ctx, struct store_err *err);

/* ---- tokens (store_token.c) -------------------------------------------------------
 * Bearer tokens for the HTTP front: "trkt_" and 43 base64url characters (32
 * random bytes), made by the client; the store keeps only their BLAKE2b-256
 * hash, with an expiry. */
#define STORE_TOKEN_HASH_BYTES 32
#define STORE_TOKEN_PREFIX     "trkt_"
#define STORE_TOKEN_TEXT_MAX   64
struct store_token {
    int64_t id;
    const char *user; /* valid during the callback only */
    int64_t created_ms;
    int64_t expires_ms; /* 0: never */
};
typedef int (*store_token_cb)(void *ctx, const struct store_token *t);
/* The BLAKE2b-256 hash of token text (as stored and as checked). */
void store_token_hash(const char *token, uint8_t hash[STORE_TOKEN_HASH_BYTES]);
/* Records a token of `user` by its hash; *id gets its number. EXISTS when
 * the hash is known already. */
int store_token_add(struct store *st, const char *user, const uint8_t hash[STORE_TOKEN_HASH_BYTES],
                    int64_t now_ms, int64_t expires_ms, int64_t *id, struct store_err *err);
/* The tokens of `user`, oldest first. */
int store_token_list(struct store *st, const char *user, store_token_cb cb, void *ctx,
                     struct store_err *err);
/* Removes token `id`; NOT_FOUND naming it. */
int store_token_revoke(struct store *st, int64_t id, struct store_err *err);
/* The user a token text belongs to, when it is known and not expired at
 * now_ms (0: now). Unknown, expired, revoked or malformed are one answer:
 * NOT_FOUND "token not valid", so a peer learns nothing from the message. */
int store_token_check(struct store *st, const char *token, int64_t now_ms, struct store_user *user,
                      struct store_err *err);

/* ---- audit (store_audit.c) ---------------------------------------------------------
 * One row per write or admin action (and per write refused for permission):
 * never updated, kept through run deletion and gc; only store_audit_prune,
 * an admin's explicit action, removes rows (those older than a time). */
#define STORE_AUDIT_DETAIL_MAX 300
struct store_audit {
    int64_t id;
    int64_t ms;
    const char *user; /* strings valid during the callback only */
    int has_key;
    uint8_t key[STORE_KEY_BYTES];
    const char *op;
    const char *experiment; /* NULL or "": none */
    int has_run;
    uint8_t run[16];
    const char *detail;
    int code; /* 0, or the wire code of the refusal */
};
/* Appends a (id and unset fields ignored); in the caller's transaction. */
int store_audit_add(struct store *st, const struct store_audit *a, struct store_err *err);
struct store_audit_query {
    const char *user;       /* NULL: any */
    const char *experiment; /* NULL: any */
    int64_t since_ms;       /* 0: any */
    int64_t before_id;      /* 0: from the newest */
    int limit;              /* rows, 1.. */
};
typedef int (*store_audit_cb)(void *ctx, const struct store_audit *a);
/* Matching rows, newest first. */
int store_audit_list(struct store *st, const struct store_audit_query *q, store_audit_cb cb,
                     void *ctx, struct store_err *err);
/* Removes the rows older than before_ms; *removed (may be NULL) how many. */
int store_audit_prune(struct store *st, int64_t before_ms, int64_t *removed, struct store_err *err);

#endif
