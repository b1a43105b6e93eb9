/*
 * search_index.c: when the search indexes take the runs created since
 * their last merge (storage/store_search_index.c keeps the params' and the
 * metric summaries' indexes in batches).
 *
 * A merge adds thousands of runs' rows in one transaction, writing each
 * leaf page of the indexes once; the runs waiting for it cost every search
 * driven by an index a lookup each. So the writer merges when 4,096 runs
 * wait, even while busy (about 0.5 s at 10^4 runs; the requests meanwhile
 * wait in the sockets), and whatever waits once it has been idle 2 s.
 */
#include "loop.h"

#include "store.h"
#include "wire.h"

#define INDEX_BATCH_RUNS    4096  /* waiting runs: merge even while busy */
#define INDEX_IDLE_MS       2000  /* idle this long: merge whatever waits */
#define INDEX_CHECK_MS      250   /* how often a busy writer counts them */
#define INDEX_RETRY_MS      10000 /* after a failed merge */
#define INDEX_FULL_RETRY_MS 60000 /* after one that found the disk full */

void srv_search_index_tick(struct loop *l, int64_t now)
{
    struct store *st = l->srv->wst;
    struct store_err err = {0};
    int64_t waiting = 0, runs = 0, rows = 0;
    int idle = now - l->last_request_ms >= INDEX_IDLE_MS;

    if (now < l->index_next_ms)
        return;
    l->index_next_ms = now + INDEX_CHECK_MS;
    if (store_index_backlog(st, &waiting, &err) || waiting == 0 ||
        (!idle && waiting < INDEX_BATCH_RUNS))
        return;
    if (store_begin(st, &err) || store_index_merge(st, 0, &runs, &rows, &err) ||
        store_commit(st, &err)) {
        store_rollback(st);
        /* a full disk: the writes that are acknowledged come first, and
         * searches read the waiting runs meanwhile (slower, not wrong) */
        l->index_next_ms = now + (err.code == STORE_E_FULL ? INDEX_FULL_RETRY_MS : INDEX_RETRY_MS);
        srv_log(SRV_LOG_WARN, "store",
                "adding %lld runs to the search indexes failed: %s (again in %d s; searches read "
                "the waiting runs meanwhile)",
                (long long)waiting, err.msg,
                (err.code == STORE_E_FULL ? INDEX_FULL_RETRY_MS : INDEX_RETRY_MS) / 1000);
        return;
    }
    srv_log(SRV_LOG_DEBUG, "store", "runs indexed runs=%lld rows=%lld ms=%lld", (long long)runs,
            (long long)rows, (long long)(wire_mono_ms() - now));
}
