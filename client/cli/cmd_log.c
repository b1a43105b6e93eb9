/*
 * cmd_log.c: writes to a run from the command line: `track log-param`,
 * `track tag`, `track log-metric` (one point, or batched lines from stdin),
 * and the matching read `track metric history`.
 */
#include "cli.h"
#include "render.h"

#include <string.h>

#define MAX_KV 1024

static int log_kvs(int argc, char **argv, int params)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    static struct track_kv kv[MAX_KV];
    const char *name = argv[0];
    struct track_err err = {0};
    size_t n = 0;
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind == argc)
        cli_usage_error(name, "expected K=V");
    for (int i = optind; i < argc; i++) {
        if (n == MAX_KV)
            cli_usage_error(name, "more than %d K=V arguments", MAX_KV);
        if (cli_split_kv(argv[i], &kv[n]))
            cli_usage_error(name, "expected K=V, got \"%s\"", argv[i]);
        n++;
    }
    struct track_client *c = cli_client();
    int rc = cli_use_run(c);
    if (!rc) {
        rc = params ? track_log_params(c, kv, n, &err) : track_set_tags(c, kv, n, &err);
        if (rc)
            rc = cli_track_error(&err);
        else if (err.code == TRACK_E_SPOOLED)
            cli_warn("%s", err.msg);
        else
            cli_warn_if_ended(c);
    }
    track_client_close(c);
    return rc;
}

int cmd_log_param(int argc, char **argv)
{
    return log_kvs(argc, argv, 1);
}

int cmd_tag(int argc, char **argv)
{
    return log_kvs(argc, argv, 0);
}

/* Reads "KEY VALUE [STEP]" lines; a line without STEP takes the next step
 * of its key (0, 1, 2, ...). Stops at the first bad line. */
static int log_stdin(struct track_client *c, int64_t *points, struct track_err *err)
{
    char line[4096];
    long lineno = 0;
    struct stepc {
        char key[256];
        int64_t next;
    } *steps = NULL;
    size_t n_steps = 0, cap = 0;
    int rc = 0, warned = 0;

    while (fgets(line, sizeof(line), stdin)) {
        char *save = NULL, *key, *val, *st, *extra;
        double v;
        int64_t step = -1;
        lineno++;
        if (!strchr(line, '\n') && !feof(stdin)) {
            rc = cli_error("stdin line %ld: longer than %zu bytes", lineno, sizeof(line) - 1);
            break;
        }
        key = strtok_r(line, " \t\r\n", &save);
        if (!key || key[0] == '#')
            continue;
        val = strtok_r(NULL, " \t\r\n", &save);
        st = strtok_r(NULL, " \t\r\n", &save);
        extra = strtok_r(NULL, " \t\r\n", &save);
        if (!val || extra) {
            rc = cli_error("stdin line %ld: expected \"KEY VALUE [STEP]\"", lineno);
            break;
        }
        int nrc = cli_parse_double(val, &v);
        if (nrc) {
            rc = cli_error("stdin line %ld: value \"%s\" %s", lineno, val,
                           nrc == CLI_NUM_RANGE ? "is out of range" : "is not a number");
            break;
        }
        if (st && ((nrc = cli_parse_i64(st, &step)) || step < 0)) {
            rc = cli_error("stdin line %ld: step \"%s\" %s", lineno, st,
                           nrc == CLI_NUM_RANGE ? "is out of range" : "is not a whole number >= 0");
            break;
        }
        size_t k = 0;
        while (k < n_steps && strcmp(steps[k].key, key) != 0)
            k++;
        if (k == n_steps && strlen(key) < sizeof(steps[0].key)) {
            if (n_steps == cap) {
                cap = cap ? cap * 2 : 16;
                struct stepc *ns = realloc(steps, cap * sizeof(*ns));
                if (!ns) {
                    rc = cli_error("out of memory");
                    break;
                }
                steps = ns;
            }
            snprintf(steps[n_steps].key, sizeof(steps[0].key), "%s", key);
            steps[n_steps++].next = 0;
        }
        if (step < 0 && k < n_steps && steps[k].next < 0) {
            /* the step before was INT64_MAX: there is no next one */
            rc = cli_error("stdin line %ld: no step after %lld for \"%s\"; give the STEP", lineno,
                           (long long)INT64_MAX, key);
            break;
        }
        if (step < 0)
            step = k < n_steps ? steps[k].next : 0;
        if (k < n_steps)
            steps[k].next = step < INT64_MAX ? step + 1 : -1;
        err->code = 0;
        if (track_log_metric(c, key, v, step, 0, err)) {
            rc = cli_error("stdin line %ld: %s: %s", lineno, track_code_name(err->code), err->msg);
            break;
        }
        /* once is enough: later batches follow the first into the spool */
        if (err->code == TRACK_E_SPOOLED && !warned++)
            cli_warn("%s", err->msg);
        (*points)++;
    }
    free(steps);
    return rc;
}

int cmd_log_metric(int argc, char **argv)
{
    static const struct option longopts[] = {{"step", required_argument, NULL, 's'},
                                             {"time", required_argument, NULL, 't'},
                                             {"stdin", no_argument, NULL, 'i'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_err err = {0};
    int64_t step = 0, time_ms = 0, points = 0;
    int opt, from_stdin = 0;
    double value = 0;

    /* KEY VALUE may stand anywhere among the options (track log-metric loss
     * 0.3 --step 10), and VALUE may be negative (-0.5, -inf): set the
     * positionals aside so getopt does not take "-inf" for options */
    char **opts = calloc((size_t)argc + 1, sizeof(*opts));
    char *pos[3];
    int n_opts = 0, n_pos = 0;
    if (!opts)
        return cli_error("out of memory");
    opts[n_opts++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double dummy;
        int takes_value = strcmp(a, "--step") == 0 || strcmp(a, "--time") == 0 ||
                          strcmp(a, "--run") == 0 || strcmp(a, "--server") == 0;
        if (takes_value && i + 1 < argc) {
            opts[n_opts++] = argv[i++];
            opts[n_opts++] = argv[i];
        } else if (a[0] == '-' && a[1] != '\0' && !(a[1] >= '0' && a[1] <= '9') && a[1] != '.' &&
                   cli_parse_double(a, &dummy) == CLI_NUM_BAD) {
            /* an option; "-0x10" or "-1,5" is a VALUE, refused as one */
            opts[n_opts++] = argv[i];
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            free(opts);
            cli_usage_error(name, "unexpected argument \"%s\"", a);
        }
    }
    opterr = 0;
    while ((opt = cli_getopt(n_opts, opts, "+h", longopts)) != -1) {
        if (opt == 's') {
            step = cli_arg_i64(name, "--step", optarg, 0, INT64_MAX);
        } else if (opt == 't') {
            time_ms = cli_arg_i64(name, "--time (ms since the epoch)", optarg, 1, INT64_MAX);
        } else if (opt == 'i') {
            from_stdin = 1;
        } else if (!cli_common_opt(opt, name)) {
            cli_usage_error(name, "unknown option");
        }
    }
    int extra = optind < n_opts;
    free(opts);
    if (extra)
        cli_usage_error(name, "unexpected argument");
    if (from_stdin) {
        if (n_pos)
            cli_usage_error(name, "--stdin takes no KEY VALUE arguments");
    } else {
        if (n_pos != 2)
            cli_usage_error(name, "expected KEY VALUE");
        value = cli_arg_double(name, "VALUE", pos[1]);
    }
    struct track_client *c = cli_client();
    int rc = cli_use_run(c);
    if (rc)
        goto out;
    if (from_stdin) {
        rc = log_stdin(c, &points, &err);
    } else if (track_log_metric(c, pos[0], value, step, time_ms, &err)) {
        rc = cli_track_error(&err);
        goto out;
    }
    struct track_err ferr = {0};
    if (track_flush(c, &ferr)) {
        rc = cli_track_error(&ferr);
    } else if (ferr.code == TRACK_E_SPOOLED) {
        cli_warn("trackd unreachable: %s spooled (%s); `track sync` delivers %s",
                 from_stdin ? "points" : "the point", ferr.msg, from_stdin ? "them" : "it");
    } else if (points || !from_stdin) {
        cli_warn_if_ended(c);
    }
out:
    track_client_close(c);
    return rc;
}

int cmd_metric_history(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"csv", no_argument, NULL, 'c'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_err err = {0};
    int opt, csv = 0, more = 1, rc = 0;
    int64_t cursor = 0;
    json_t *arr = NULL;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 'c')
            csv = 1;
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (argc - optind != 2)
        cli_usage_error(name, "expected RUN KEY");
    if (csv && cli_opt.json)
        cli_usage_error(name, "--csv and --json exclude each other");
    const char *run = argv[optind], *key = argv[optind + 1];
    struct track_client *c = cli_client();
    if (cli_opt.json)
        arr = json_array();
    /* the header waits for the first reply: an error prints alone */
    int header = !arr;
    while (more) {
        const int64_t *steps, *times;
        const double *vals;
        struct track_result *res;
        size_t n;
        if (track_metric_history(c, run, key, cursor, 0, &res, &steps, &times, &vals, &n, &cursor,
                                 &more, &err)) {
            rc = cli_track_error(&err);
            break;
        }
        if (header) {
            if (csv)
                printf("step,timestamp,value\n");
            else
                printf("%10s  %-23s  %s\n", "STEP", "TIME", "VALUE");
            header = 0;
        }
        for (size_t i = 0; i < n; i++) {
            char v[40];
            if (arr) {
                json_t *o = json_object();
                json_object_set_new(o, "step", json_integer(steps[i]));
                json_object_set_new(o, "timestamp", json_integer(times[i]));
                json_object_set_new(o, "value", cli_json_double(vals[i]));
                json_array_append_new(arr, o);
                continue;
            }
            if (csv)
                cli_fmt_double(vals[i], v, sizeof(v));
            else
                render_num(vals[i], v, sizeof(v));
            if (csv) {
                printf("%lld,%lld,%s\n", (long long)steps[i], (long long)times[i], v);
            } else {
                char t[32];
                cli_fmt_time(times[i], t, sizeof(t));
                printf("%10lld  %-19s.%03d  %s\n", (long long)steps[i], t, (int)(times[i] % 1000),
                       v);
            }
        }
        track_result_free(res);
    }
    track_client_close(c);
    if (arr) {
        if (rc) {
            json_decref(arr);
            return rc;
        }
        return cli_json_print(arr);
    }
    return rc;
}
