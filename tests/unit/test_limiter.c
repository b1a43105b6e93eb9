/*
 * test_limiter.c: the per-key budgets of daemon/limiter.c with a clock the
 * test moves: each limit refuses past its budget with a message naming it,
 * refills with time and only with time (a clock going back refills
 * nothing), keeps keys apart, lets a frame bigger than a second's bytes
 * through once, counts uploads in flight and forgets idle ones, and keeps
 * at most max_keys users.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "limiter.h"

static char msg[300];

static struct srv_limiter *make(double req, double bytes, double runs, int uploads, size_t keys)
{
    struct srv_limits_cfg c = {.requests_per_s = req,
                               .bytes_per_s = bytes,
                               .runs_per_min = runs,
                               .uploads = uploads,
                               .max_keys = keys,
                               .upload_idle_ms = 1000};
    struct srv_limiter *l = NULL;
    cr_assert_eq(srv_limiter_new(&c, &l, msg, sizeof msg), 0, "%s", msg);
    return l;
}

Test(limiter, requests_past_the_rate_are_refused_and_refill_with_time)
{
    struct srv_limiter *l = make(10, 0, 0, 0, 0);
    int64_t t = 5000;

    for (int i = 0; i < 10; i++)
        cr_assert_eq(srv_limiter_charge(l, 1, 100, 0, 0, t, msg, sizeof msg), 0, "request %d", i);
    cr_assert_eq(srv_limiter_charge(l, 1, 100, 0, 0, t, msg, sizeof msg), SRV_LIMIT_REQUESTS);
    cr_assert(strstr(msg, "limit_requests"), "%s", msg);
    cr_assert(strstr(msg, "10 requests a second"), "%s", msg);
    cr_assert_eq(srv_limiter_charge(l, 2, 100, 0, 0, t, msg, sizeof msg), 0,
                 "another key has its own budget");
    cr_assert_eq(srv_limiter_charge(l, 1, 100, 0, 0, t + 50, msg, sizeof msg), SRV_LIMIT_REQUESTS,
                 "half a token after 50 ms");
    cr_assert_eq(srv_limiter_charge(l, 1, 100, 0, 0, t + 100, msg, sizeof msg), 0,
                 "one token after 100 ms");
    cr_assert_eq(srv_limiter_charge(l, 1, 100, 0, 0, t - 100000, msg, sizeof msg),
                 SRV_LIMIT_REQUESTS, "a clock going back refills nothing");
    /* a long pause refills to one second's worth, no more */
    int ok = 0;
    while (srv_limiter_charge(l, 1, 1, 0, 0, t + 100000, msg, sizeof msg) == 0)
        ok++;
    cr_assert_eq(ok, 10, "capacity is one second: %d", ok);
    srv_limiter_free(l);
}

Test(limiter, bytes_allow_one_big_frame_then_make_it_wait)
{
    struct srv_limiter *l = make(0, 1000, 0, 0, 0);

    cr_assert_eq(srv_limiter_charge(l, 7, 5000, 0, 0, 0, msg, sizeof msg), 0,
                 "a frame of 5 s of budget passes from a full bucket");
    cr_assert_eq(srv_limiter_charge(l, 7, 1, 0, 0, 1000, msg, sizeof msg), SRV_LIMIT_BYTES,
                 "then the debt is paid first");
    cr_assert(strstr(msg, "limit_bytes"), "%s", msg);
    cr_assert(strstr(msg, "retry in 3000 ms"), "%s", msg);
    cr_assert_eq(srv_limiter_charge(l, 7, 1, 0, 0, 4000, msg, sizeof msg), 0);
    srv_limiter_free(l);
}

Test(limiter, run_starts_per_minute)
{
    struct srv_limiter *l = make(0, 0, 3, 0, 0);

    for (int i = 0; i < 3; i++)
        cr_assert_eq(srv_limiter_charge(l, 1, 10, 1, 0, 0, msg, sizeof msg), 0);
    cr_assert_eq(srv_limiter_charge(l, 1, 10, 0, 0, 0, msg, sizeof msg), 0,
                 "other requests are not run starts");
    cr_assert_eq(srv_limiter_charge(l, 1, 10, 1, 0, 0, msg, sizeof msg), SRV_LIMIT_RUNS);
    cr_assert(strstr(msg, "limit_runs"), "%s", msg);
    cr_assert_eq(srv_limiter_charge(l, 1, 10, 1, 0, 20000, msg, sizeof msg), 0,
                 "a minute / 3 later");
    srv_limiter_free(l);
}

Test(limiter, uploads_in_flight_are_counted_ended_and_forgotten_when_idle)
{
    struct srv_limiter *l = make(0, 0, 0, 2, 0);

    cr_assert_eq(srv_limiter_charge(l, 1, 10, 0, 1, 0, msg, sizeof msg), 0);
    cr_assert_eq(srv_limiter_charge(l, 1, 10, 0, 1, 0, msg, sizeof msg), 0);
    cr_assert_eq(srv_limiter_charge(l, 1, 10, 0, 1, 0, msg, sizeof msg), SRV_LIMIT_UPLOADS);
    cr_assert(strstr(msg, "limit_uploads"), "%s", msg);
    cr_assert_eq(srv_limiter_charge(l, 1, 10, 0, 0, 0, msg, sizeof msg), 0,
                 "chunks and other requests still pass");
    srv_limiter_upload_end(l, 1, 10);
    cr_assert_eq(srv_limiter_charge(l, 1, 10, 0, 1, 20, msg, sizeof msg), 0, "one ended");
    cr_assert_eq(srv_limiter_charge(l, 1, 10, 0, 1, 30, msg, sizeof msg), SRV_LIMIT_UPLOADS);
    cr_assert_eq(srv_limiter_charge(l, 1, 10, 0, 1, 1025, msg, sizeof msg), 0,
                 "uploads idle past upload_idle_ms are forgotten");
    srv_limiter_upload_end(l, 99, 0); /* unknown user: nothing */
    srv_limiter_free(l);
}

Test(limiter, at_most_max_keys_users_are_tracked_and_lookups_survive_eviction)
{
    struct srv_limiter *l = make(2, 0, 0, 0, 8);

    for (int64_t u = 1; u <= 100; u++)
        cr_assert_eq(srv_limiter_charge(l, u, 1, 0, 0, u, msg, sizeof msg), 0);
    cr_assert_eq(srv_limiter_tracked(l), 8);
    /* the newest 8 keep their state: a second request each passes, a third not */
    for (int64_t u = 93; u <= 100; u++) {
        cr_assert_eq(srv_limiter_charge(l, u, 1, 0, 0, 100, msg, sizeof msg), 0, "user %ld",
                     (long)u);
        cr_assert_eq(srv_limiter_charge(l, u, 1, 0, 0, 100, msg, sizeof msg), SRV_LIMIT_REQUESTS,
                     "user %ld", (long)u);
    }
    srv_limiter_free(l);
}

Test(limiter, bad_rates_are_refused_by_name)
{
    struct srv_limits_cfg c = {.requests_per_s = -1};
    struct srv_limiter *l = NULL;

    cr_assert_eq(srv_limiter_new(&c, &l, msg, sizeof msg), -1);
    cr_assert(strstr(msg, "limit_requests"), "%s", msg);
    c = (struct srv_limits_cfg){.uploads = 1000};
    cr_assert_eq(srv_limiter_new(&c, &l, msg, sizeof msg), -1);
    cr_assert(strstr(msg, "limit_uploads"), "%s", msg);
    cr_assert_null(l);
}
