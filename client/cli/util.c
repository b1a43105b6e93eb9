/*
 * util.c: helpers the subcommands share (see cli.h): option handling,
 * error lines, the client, number parsing, time and JSON formatting.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

struct cli_common cli_opt;

int cli_common_opt(int opt, const char *name)
{
    switch (opt) {
    case 0x100:
        cli_opt.server = optarg;
        return 1;
    case 0x101:
        cli_opt.run = optarg;
        return 1;
    case 0x102:
        cli_opt.json = 1;
        return 1;
    case 'h':
        cli_usage(name, 0);
        exit(0);
    case '?':
        if (optopt)
            cli_usage_error(name, "option -%c is unknown or needs a value", optopt);
        cli_usage_error(name, "unknown option, or an option without its value");
    case ':':
        cli_usage_error(name, "an option needs a value");
    default:
        return 0;
    }
}

void cli_usage_error(const char *name, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "track %s: ", name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    cli_usage(name, 1);
    exit(EXIT_USAGE);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "track: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return 1;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "track: warning: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

int cli_track_error(const struct track_err *err)
{
    return cli_error("%s: %s", track_code_name(err->code), err->msg);
}

struct track_client *cli_client(void)
{
    /* 1.8 s: a server that does not answer is reported within 2 s */
    struct track_opts o = {.server = cli_opt.server, .autostart = 1, .timeout_ms = 1800};
    struct track_client *c;
    struct track_err err = {0};

    if (track_client_open(&o, &c, &err)) {
        cli_track_error(&err);
        exit(1);
    }
    return c;
}

const char *cli_run_arg(void)
{
    const char *r = cli_opt.run;
    if (!r || !*r)
        r = getenv("TRACK_RUN_ID");
    return r && *r ? r : NULL;
}

int cli_use_run(struct track_client *c)
{
    struct track_err err = {0};
    const char *r = cli_run_arg();

    if (!r)
        return cli_error("no run: pass --run RUN or set TRACK_RUN_ID "
                         "(eval \"$(track run start --export)\")");
    if (track_run_use(c, r, &err))
        return cli_track_error(&err);
    return 0;
}

int cli_split_kv(char *s, struct track_kv *kv)
{
    char *eq = strchr(s, '=');
    if (!eq || eq == s)
        return -1;
    *eq = '\0';
    kv->key = s;
    kv->value = eq + 1;
    return 0;
}

void cli_add_kv(const char *cmd, struct cli_kv_args *a, int param, char *arg)
{
    struct track_kv kv;
    if (cli_split_kv(arg, &kv))
        cli_usage_error(cmd, "--%s: expected K=V, got \"%s\"", param ? "param" : "tag", arg);
    if ((param ? a->n_params : a->n_tags) == CLI_MAX_KV)
        cli_usage_error(cmd, "more than %d --%s options", CLI_MAX_KV, param ? "param" : "tag");
    if (param)
        a->params[a->n_params++] = kv;
    else
        a->tags[a->n_tags++] = kv;
}

int cli_parse_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *v = x;
    return 0;
}

int cli_parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    /* strtod takes "nan", "inf", "infinity" in any case: all are wanted */
    double x = strtod(s, &end);
    if (end == s || *end || (errno == ERANGE && isinf(x)))
        return -1;
    *v = x;
    return 0;
}

void cli_fmt_time(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

void cli_fmt_duration(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(buf, len, "%lldms", (long long)ms);
    else if (ms < 60 * 1000)
        snprintf(buf, len, "%.1fs", (double)ms / 1000);
    else if (ms < 3600 * 1000)
        snprintf(buf, len, "%lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
    else
        snprintf(buf, len, "%lldh%02lldm", (long long)(ms / 3600000), (long long)(ms / 60000 % 60));
}

void cli_fmt_double(double v, char *buf, size_t len)
{
    if (isnan(v)) {
        snprintf(buf, len, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "inf" : "-inf");
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

const char *cli_status_name(int status)
{
    switch (status) {
    case TRACK_RUNNING:
        return "RUNNING";
    case TRACK_FINISHED:
        return "FINISHED";
    case TRACK_FAILED:
        return "FAILED";
    case TRACK_KILLED:
        return "KILLED";
    default:
        return "UNKNOWN";
    }
}

json_t *cli_json_double(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

json_t *cli_json_time(int64_t ms)
{
    return ms > 0 ? json_integer(ms) : json_null();
}

json_t *cli_json_run(const struct track_run_info *r)
{
    char hex[33];
    json_t *o = json_object(), *params = json_object(), *tags = json_object(),
           *metrics = json_object();

    track_run_id_hex(&r->id, hex);
    json_object_set_new(o, "run_id", json_string(hex));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "experiment", json_string(r->experiment));
    json_object_set_new(o, "status", json_string(cli_status_name(r->status)));
    json_object_set_new(o, "start_time", cli_json_time(r->start_ms));
    json_object_set_new(o, "end_time", cli_json_time(r->end_ms));
    json_object_set_new(o, "user", json_string(r->user));
    if (r->has_parent) {
        track_run_id_hex(&r->parent, hex);
        json_object_set_new(o, "parent_run_id", json_string(hex));
    } else {
        json_object_set_new(o, "parent_run_id", json_null());
    }
    for (size_t i = 0; i < r->n_params; i++)
        json_object_set_new(params, r->params[i].key, json_string(r->params[i].value));
    for (size_t i = 0; i < r->n_tags; i++)
        json_object_set_new(tags, r->tags[i].key, json_string(r->tags[i].value));
    for (size_t i = 0; i < r->n_metrics; i++) {
        const struct track_metric_summary *m = &r->metrics[i];
        json_t *s = json_object();
        json_object_set_new(s, "last", cli_json_double(m->last));
        json_object_set_new(s, "min", cli_json_double(m->min));
        json_object_set_new(s, "max", cli_json_double(m->max));
        json_object_set_new(s, "count", json_integer(m->count));
        json_object_set_new(s, "last_step", json_integer(m->last_step));
        json_object_set_new(s, "last_time", cli_json_time(m->last_ms));
        json_object_set_new(metrics, m->key, s);
    }
    json_object_set_new(o, "params", params);
    json_object_set_new(o, "tags", tags);
    json_object_set_new(o, "metrics", metrics);
    return o;
}

int cli_json_print(json_t *v)
{
    int rc = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(v);
    fputc('\n', stdout);
    return rc ? 1 : 0;
}
