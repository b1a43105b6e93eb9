/*
 * test_sysmetrics.c: `track exec --system-metrics` as the built binary
 * against a real trackd: a child that keeps one core busy for 3.5 s,
 * sampled every second, leaves system/cpu_percent with three or more
 * points showing the busy core, its RSS and threads, and the host's memory,
 * disk and network rates, with steps 0, 1, 2, ...; without NVML one info
 * line says GPU metrics are skipped and the run still finishes; a bad
 * interval is a usage error. The metrics are read back with libtrack.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "track.h"

static struct fx_daemon D;
static struct track_client *C;

static void setup(void)
{
    unsetenv("TRACK_RUN_ID");
    fx_daemon_client_start(&D, &C, 0);
}

static void teardown(void)
{
    fx_daemon_client_cleanup(&D, &C);
}

TestSuite(sysmetrics_cli, .init = setup, .fini = teardown, .timeout = 120);

/* The one run of experiment `exp` with its metric summaries (caller frees res). */
static struct track_run_info *only_run(const char *exp, struct track_result **res)
{
    const char *exps[] = {exp, NULL};
    struct track_run_query q = {.experiments = exps, .with_details = 1};
    struct track_run_info *runs;
    size_t n = 0;
    struct track_err err = {0};
    cr_assert_eq(track_run_list(C, &q, res, &runs, &n, &err), 0, "run list: %s", err.msg);
    cr_assert_eq(n, 1, "experiment %s has %zu runs", exp, n);
    return &runs[0];
}

static const struct track_metric_summary *metric(const struct track_run_info *r, const char *key)
{
    for (size_t i = 0; i < r->n_metrics; i++)
        if (strcmp(r->metrics[i].key, key) == 0)
            return &r->metrics[i];
    cr_assert_fail("the run has no metric %s (%zu metrics)", key, r->n_metrics);
    return NULL;
}

Test(sysmetrics_cli, a_busy_child_shows_its_core_memory_and_the_hosts_rates)
{
    char *out = NULL, *err = NULL;
    /* timeout's child spins for 3.5 s; the wrapper exits 0 so the run finishes */
    int rc =
        fx_track(&D, NULL, NULL, &out, &err, "exec", "--experiment", "sysmet", "--system-metrics=1",
                 "--", "sh", "-c", "timeout 3.5 sh -c 'while :; do :; done'; exit 0", NULL);
    cr_assert_eq(rc, 0, "exec: exit %d, stderr: %s", rc, err);

    struct track_result *res = NULL;
    struct track_run_info *r = only_run("sysmet", &res);
    cr_assert_eq(r->status, TRACK_FINISHED);
    const struct track_metric_summary *cpu = metric(r, "system/cpu_percent");
    cr_assert_geq(cpu->count, 3, "%lld samples in 3.5 s at 1 s", (long long)cpu->count);
    cr_assert_leq(cpu->count, 4, "%lld samples in 3.5 s at 1 s", (long long)cpu->count);
    cr_assert_eq(cpu->last_step, cpu->count - 1, "steps are the sample numbers from 0");
    cr_assert_gt(cpu->max, 20, "a spinning shell showed %.1f%% at most", cpu->max);
    cr_assert_lt(cpu->max, 250, "one spinning shell showed %.1f%%", cpu->max);
    cr_assert_gt(metric(r, "system/rss_bytes")->min, 0);
    cr_assert_geq(metric(r, "system/threads")->min, 1);
    cr_assert_gt(metric(r, "system/mem_available_bytes")->min, 0);
    cr_assert_gt(metric(r, "system/mem_used_bytes")->min, 0);
    const char *rates[] = {"system/disk_read_bytes_per_s", "system/disk_write_bytes_per_s",
                           "system/net_rx_bytes_per_s", "system/net_tx_bytes_per_s"};
    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        const struct track_metric_summary *m = metric(r, rates[i]);
        cr_assert_eq(m->count, cpu->count, "%s: %lld points", rates[i], (long long)m->count);
        cr_assert_geq(m->min, 0, "%s: %g", rates[i], m->min);
    }

    void *nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (nvml) {
        dlclose(nvml);
    } else {
        const char *line = "track: info: no GPU metrics";
        const char *at = strstr(err, line);
        cr_assert_not_null(at, "no info line about GPUs: %s", err);
        cr_assert_null(strstr(at + 1, line), "the GPU line came twice: %s", err);
        for (size_t i = 0; i < r->n_metrics; i++)
            cr_assert_null(strstr(r->metrics[i].key, "gpu"), "%s without NVML", r->metrics[i].key);
    }
    track_result_free(res);
    free(out);
    free(err);
}

Test(sysmetrics_cli, the_default_interval_is_5_s_and_a_bad_one_is_a_usage_error)
{
    char *out = NULL, *err = NULL;
    /* a run of 1.5 s: at the default 5 s it gets one sample, the one taken
     * when it stops (step 0); an interval of a second or less would give two */
    int rc = fx_track(&D, NULL, NULL, &out, &err, "exec", "--experiment", "quick",
                      "--system-metrics", "--", "sleep", "1.5", NULL);
    cr_assert_eq(rc, 0, "exec: exit %d, stderr: %s", rc, err);
    free(out);
    free(err);
    struct track_result *res = NULL;
    struct track_run_info *r = only_run("quick", &res);
    cr_assert_eq(r->status, TRACK_FINISHED);
    int sys = 0;
    for (size_t i = 0; i < r->n_metrics; i++) {
        if (strncmp(r->metrics[i].key, "system/", 7) != 0)
            continue;
        sys++;
        cr_assert_eq(r->metrics[i].count, 1, "%s: %lld samples in 1.5 s at the default 5 s",
                     r->metrics[i].key, (long long)r->metrics[i].count);
        cr_assert_eq(r->metrics[i].last_step, 0, "%s", r->metrics[i].key);
    }
    cr_assert_geq(sys, 3, "a run shorter than the interval still gets its sample at the end");
    track_result_free(res);

    const char *bad[] = {"--system-metrics=0.01", "--system-metrics=x", "--system-metrics=1e9"};
    for (size_t i = 0; i < 3; i++) {
        rc = fx_track(&D, NULL, NULL, &out, &err, "exec", bad[i], "--", "true", NULL);
        cr_assert_eq(rc, 2, "%s: exit %d", bad[i], rc);
        cr_assert_not_null(strstr(err, "--system-metrics"), "%s: %s", bad[i], err);
        free(out);
        free(err);
    }
}
