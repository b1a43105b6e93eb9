/*
 * util.c: helpers the subcommands share (see cli.h): option handling (with
 * git's "did you mean" from an edit distance), error lines, the client, the
 * ended-run warning, strict number parsing, time and JSON formatting.
 */
#include "cli.h"
#include "render.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

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

int cli_edit_distance(const char *a, size_t na, const char *b, size_t nb)
{
    enum { MAXL = 64 };
    int d[MAXL + 1][MAXL + 1];

    if (na > MAXL || nb > MAXL)
        return 99;
    for (size_t i = 0; i <= na; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        for (size_t j = 1; j <= nb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[na][nb] > 99 ? 99 : d[na][nb];
}

int cli_is_close(size_t typed_len, int distance)
{
    /* one slip in a short word, two in a longer one (git suggests on about
     * the same similarity) */
    return distance <= (typed_len < 5 ? 1 : typed_len < 9 ? 2 : 3);
}

static int is_common_val(int val)
{
    return val == 0x100 || val == 0x101 || val == 0x102 || val == 'h';
}

/* Reports an option getopt_long refused (exits 2). `elem` is the argument
 * it was reading (NULL when not known). */
__attribute__((noreturn)) static void
bad_option(const char *name, const char *elem, const char *shortopts, const struct option *longopts)
{
    char typed[128];
    size_t n;

    if (optopt && (!elem || strncmp(elem, "--", 2) != 0)) {
        const char *p = strchr(shortopts, optopt);
        if (p && p[1] == ':')
            cli_usage_error(name, "option '-%c' needs a value", optopt);
        cli_usage_error(name, "unknown option '-%c'", optopt);
    }
    if (!elem || strncmp(elem, "--", 2) != 0)
        cli_usage_error(name, "unknown option");
    n = strcspn(elem + 2, "=");
    snprintf(typed, sizeof(typed), "%.*s", (int)(n < 100 ? n : 100), elem + 2);
    if (optopt) {
        /* a known option: given a value it does not take, or none */
        for (const struct option *o = longopts; o->name; o++) {
            if (o->val != optopt || strncmp(o->name, typed, strlen(typed)) != 0)
                continue;
            if (elem[2 + n] == '=')
                cli_usage_error(name, "option '--%s' takes no value", o->name);
            cli_usage_error(name, "option '--%s' needs a value", o->name);
        }
    }
    /* an abbreviation of two or more options */
    char list[512] = "";
    int prefixed = 0;
    for (const struct option *o = longopts; o->name && n; o++) {
        if (strncmp(o->name, typed, strlen(typed)) == 0) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s'--%s'", prefixed++ ? ", " : "", o->name);
        }
    }
    if (prefixed > 1)
        cli_usage_error(name, "option '--%s' is ambiguous: it could be %s", typed, list);
    /* the closest options by edit distance */
    int best = 99, count = 0;
    for (const struct option *o = longopts; o->name; o++) {
        int dist = cli_edit_distance(typed, strlen(typed), o->name, strlen(o->name));
        best = dist < best ? dist : best;
    }
    list[0] = '\0';
    for (const struct option *o = longopts; o->name && cli_is_close(strlen(typed), best); o++) {
        if (cli_edit_distance(typed, strlen(typed), o->name, strlen(o->name)) == best) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s'--%s'", count++ ? ", " : "", o->name);
        }
    }
    if (count == 1)
        cli_usage_error(name, "unknown option '--%s'; did you mean %s?", typed, list);
    if (count > 1)
        cli_usage_error(name, "unknown option '--%s'; did you mean one of %s?", typed, list);
    cli_usage_error(name, "unknown option '--%s'", typed);
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    const char *name = argv[0];

    for (;;) {
        opterr = 0;
        int opt = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (opt == '?' || opt == ':') {
            /* a long option has moved optind past itself; a short one only
             * when it ended its cluster, and then optopt says which */
            const char *elem = optind > 0 && optind <= argc ? argv[optind - 1] : NULL;
            bad_option(name, elem, shortopts, longopts);
        }
        if (opt == 'h') {
            cli_help(name, longopts);
            exit(0);
        }
        if (opt != -1 && is_common_val(opt)) {
            cli_common_opt(opt, name);
            continue;
        }
        return opt;
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

void cli_warn_if_ended(struct track_client *c)
{
    track_run_id id;
    char hex[33], filter[64], t[32];
    struct track_run_query q = {.filter = filter, .limit = 1};
    struct track_run_info *runs;
    struct track_result *res;
    struct track_err err = {0};
    size_t n = 0;

    if (track_run_current(c, &id))
        return;
    track_run_id_hex(&id, hex);
    snprintf(filter, sizeof(filter), "run_id = '%s'", hex);
    if (track_run_list(c, &q, &res, &runs, &n, &err))
        return;
    if (n == 1 && runs[0].status != TRACK_RUNNING) {
        cli_fmt_time(runs[0].end_ms, t, sizeof(t));
        cli_warn("run %.8s (%s) is %s, ended %s; logged into it anyway (is TRACK_RUN_ID stale?)",
                 hex, runs[0].name, cli_status_name(runs[0].status), t);
    }
    track_result_free(res);
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

/* The length of the plain decimal number at s (sign, digits, for a double a
 * fraction and an exponent), 0 when s does not start with one. *nonzero says
 * whether a mantissa digit other than 0 was seen (an underflow to 0 is then
 * out of range, not the value 0). */
static size_t decimal_len(const char *s, int fraction, int *nonzero)
{
    size_t i = 0, digits = 0;

    *nonzero = 0;
    if (s[i] == '-' || s[i] == '+')
        i++;
    for (; s[i] >= '0' && s[i] <= '9'; i++, digits++)
        *nonzero |= s[i] != '0';
    if (fraction && s[i] == '.') {
        i++;
        for (; s[i] >= '0' && s[i] <= '9'; i++, digits++)
            *nonzero |= s[i] != '0';
    }
    if (!digits)
        return 0;
    if (fraction && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1, ed = 0;
        if (s[j] == '-' || s[j] == '+')
            j++;
        for (; s[j] >= '0' && s[j] <= '9'; j++)
            ed++;
        if (!ed)
            return 0;
        i = j;
    }
    return i;
}

int cli_parse_i64(const char *s, int64_t *v)
{
    char *end;
    int nz;

    if (!s || decimal_len(s, 0, &nz) != strlen(s) || !*s)
        return CLI_NUM_BAD;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*end)
        return CLI_NUM_BAD;
    if (errno == ERANGE)
        return CLI_NUM_RANGE;
    *v = x;
    return 0;
}

int cli_parse_double(const char *s, double *v)
{
    static const char *const special[] = {"nan", "inf", "infinity"};
    const char *t;
    char *end;
    int nz;

    if (!s || !*s)
        return CLI_NUM_BAD;
    t = s + (*s == '-' || *s == '+');
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++) {
        if (strcasecmp(t, special[i]) == 0) {
            double x = i == 0 ? NAN : INFINITY;
            *v = *s == '-' ? -x : x;
            return 0;
        }
    }
    /* strtod alone would also take hex ("0x10"), "nan(...)" and leading
     * blanks: only the plain decimal form reaches it */
    if (decimal_len(s, 1, &nz) != strlen(s))
        return CLI_NUM_BAD;
    errno = 0;
    double x = strtod(s, &end);
    if (*end)
        return CLI_NUM_BAD;
    if (errno == ERANGE && (isinf(x) || (x == 0 && nz)))
        return CLI_NUM_RANGE;
    *v = x;
    return 0;
}

int64_t cli_arg_i64(const char *cmd, const char *what, const char *s, int64_t min, int64_t max)
{
    int64_t v = 0;
    int rc = cli_parse_i64(s, &v);
    char range[96];

    if (min == 0 && max == INT64_MAX)
        snprintf(range, sizeof(range), "a whole number >= 0");
    else if (min == 1 && max == INT64_MAX)
        snprintf(range, sizeof(range), "a whole number >= 1");
    else
        snprintf(range, sizeof(range), "a whole number from %lld to %lld", (long long)min,
                 (long long)max);
    if (rc == CLI_NUM_BAD)
        cli_usage_error(cmd, "%s: expected %s, got \"%s\"", what, range, s);
    if (rc == CLI_NUM_RANGE || v < min || v > max)
        cli_usage_error(cmd, "%s: \"%s\" is out of range (expected %s)", what, s, range);
    return v;
}

double cli_arg_double(const char *cmd, const char *what, const char *s)
{
    double v = 0;
    int rc = cli_parse_double(s, &v);

    if (rc == CLI_NUM_BAD)
        cli_usage_error(cmd,
                        "%s: \"%s\" is not a number (expected a decimal such as 0.31, -2, "
                        "1e-4, or nan, inf, -inf)",
                        what, s);
    if (rc == CLI_NUM_RANGE)
        cli_usage_error(cmd, "%s: \"%s\" is out of range (a double holds about 1e-308 to 1e308)",
                        what, s);
    return v;
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

int cli_term_width(void)
{
    struct winsize ws;
    int cols = 0;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
        cols = ws.ws_col;
    return render_term_width(getenv("COLUMNS"), cols);
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

/* cli.h */
int cli_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    int64_t total = 0;

    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (!*s)
        return -1;
    while (*s) {
        int64_t n = 0, per = 0;
        if (*s < '0' || *s > '9')
            return -1;
        while (*s >= '0' && *s <= '9') {
            if (n > (INT64_MAX - 9) / 10)
                return -1;
            n = n * 10 + (*s++ - '0');
        }
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i].u);
            /* "ms" is tried before "m" */
            if (strncmp(s, units[i].u, l) == 0) {
                per = units[i].ms;
                s += l;
                break;
            }
        }
        if (!per || n > INT64_MAX / per || total > INT64_MAX - n * per)
            return -1;
        total += n * per;
    }
    *ms = total;
    return 0;
}

void cli_hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}
