/*
 * cmd_admin.c: `track admin user|grant|revoke|grants|token|audit ...` and
 * `track whoami` (README "Roles and grants"). One function per verb, each a
 * thin layer over libtrack's identity calls (track.h); --json on every
 * read, in README's JSON convention (snake_case keys, times as integer ms,
 * run ids as 32 hex, null for "none").
 */
#include "cli.h"

#include <string.h>
#include <time.h>

/* Parses the options common to every command (and `extra`, handled by fn);
 * returns optind. nargs: the exact count of positional arguments (-1: any). */
static int parse(int argc, char **argv, const struct option *longopts, int nargs, const char *what,
                 int (*fn)(int opt, void *ctx), void *ctx)
{
    const char *name = argv[0];
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!(fn && fn(opt, ctx)) && !cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (nargs >= 0 && argc - optind != nargs)
        cli_usage_error(name, "expected %s", what);
    return optind;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* TIME: a duration ago ("90d", "1h30m"), a date YYYY-MM-DD (UTC midnight) or
 * milliseconds since the epoch; -1 when it is none of them. */
static int parse_time(const char *s, int64_t *ms)
{
    int64_t d;
    int y, mo, da;
    char tail;

    if (sscanf(s, "%4d-%2d-%2d%c", &y, &mo, &da, &tail) == 3 && y >= 1970 && mo >= 1 && mo <= 12 &&
        da >= 1 && da <= 31) {
        struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = da};
        *ms = (int64_t)timegm(&tm) * 1000;
        return 0;
    }
    if (strspn(s, "0123456789") == strlen(s) && strlen(s) >= 10 && cli_parse_i64(s, ms) == 0)
        return 0;
    if (cli_parse_duration(s, &d) == 0 && d <= now_ms()) {
        *ms = now_ms() - d;
        return 0;
    }
    return -1;
}

static json_t *json_str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static void print_time(int64_t ms)
{
    char t[32];
    if (ms) {
        cli_fmt_time(ms, t, sizeof t);
        printf("%-19s", t);
    } else {
        printf("%-19s", "never");
    }
}

/* ---- users ----------------------------------------------------------------------- */

struct user_add_opts {
    const char *key, *role;
};

static int user_add_opt(int opt, void *ctx)
{
    struct user_add_opts *o = ctx;
    if (opt == 'k')
        o->key = optarg;
    else if (opt == 'r')
        o->role = optarg;
    else
        return 0;
    return 1;
}

int cmd_admin_user_add(int argc, char **argv)
{
    static const struct option longopts[] = {{"key", required_argument, NULL, 'k'},
                                             {"role", required_argument, NULL, 'r'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    struct user_add_opts o = {NULL, NULL};
    struct track_err err = {0};
    int i = parse(argc, argv, longopts, 1, "one user NAME", user_add_opt, &o);

    if (!o.role)
        cli_usage_error(argv[0], "--role reader|writer|admin is required");
    struct track_client *c = cli_client();
    int rc = track_user_add(c, argv[i], o.role, o.key, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *j = json_object();
        json_object_set_new(j, "name", json_string(argv[i]));
        json_object_set_new(j, "role", json_string(o.role));
        json_object_set_new(j, "key", json_str_or_null(o.key));
        return cli_json_print(j);
    }
    printf("added user %s, role %s%s\n", argv[i], o.role, o.key ? ", with a key" : ", no key yet");
    return 0;
}

int cmd_admin_user_list(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    struct track_admin_result *res = NULL;
    const struct track_user *u = NULL;
    struct track_err err = {0};
    size_t n = 0;

    parse(argc, argv, longopts, 0, "no arguments", NULL, NULL);
    struct track_client *c = cli_client();
    int rc = track_user_list(c, &res, &u, &n, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *a = json_array();
        for (size_t k = 0; k < n; k++) {
            json_t *j = json_object();
            json_object_set_new(j, "name", json_string(u[k].name));
            json_object_set_new(j, "role", json_string(u[k].role));
            json_object_set_new(j, "key", json_str_or_null(u[k].key));
            json_object_set_new(j, "created_time", cli_json_time(u[k].created_ms));
            json_array_append_new(a, j);
        }
        json_t *o = json_object();
        json_object_set_new(o, "users", a);
        track_admin_result_free(res);
        return cli_json_print(o);
    }
    printf("%-20s %-7s %-19s %s\n", "NAME", "ROLE", "CREATED", "KEY");
    for (size_t k = 0; k < n; k++) {
        printf("%-20s %-7s ", u[k].name, u[k].role);
        print_time(u[k].created_ms);
        printf(" %s\n", *u[k].key ? u[k].key : "-");
    }
    track_admin_result_free(res);
    return 0;
}

/* The commands taking NAME [ARG] and answering "done". */
static int simple(int argc, char **argv, int nargs, const char *what,
                  int (*fn)(struct track_client *c, char **args, struct track_err *err),
                  const char *done_fmt)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    struct track_err err = {0};
    int i = parse(argc, argv, longopts, nargs, what, NULL, NULL);
    struct track_client *c = cli_client();
    int rc = fn(c, argv + i, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "done", json_true());
        return cli_json_print(o);
    }
    printf(done_fmt, argv[i], nargs > 1 ? argv[i + 1] : "");
    return 0;
}

static int do_user_remove(struct track_client *c, char **a, struct track_err *err)
{
    return track_user_remove(c, a[0], err);
}
static int do_user_set_key(struct track_client *c, char **a, struct track_err *err)
{
    return track_user_set_key(c, a[0], strcmp(a[1], "none") == 0 ? NULL : a[1], err);
}
static int do_user_set_role(struct track_client *c, char **a, struct track_err *err)
{
    return track_user_set_role(c, a[0], a[1], err);
}

int cmd_admin_user_remove(int argc, char **argv)
{
    return simple(argc, argv, 1, "one user NAME", do_user_remove,
                  "removed user %s%s with their grants and tokens (audit rows stay)\n");
}

int cmd_admin_user_set_key(int argc, char **argv)
{
    return simple(argc, argv, 2, "NAME and KEY (trk1:..., or none)", do_user_set_key,
                  "user %s: key set to %s\n");
}

int cmd_admin_user_set_role(int argc, char **argv)
{
    return simple(argc, argv, 2, "NAME and ROLE (reader, writer or admin)", do_user_set_role,
                  "user %s: role %s\n");
}

/* ---- grants ---------------------------------------------------------------------- */

int cmd_admin_grant(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    struct track_err err = {0};
    int64_t grantees = 0;
    int i = parse(argc, argv, longopts, 3, "NAME EXPERIMENT read|write|manage", NULL, NULL);
    struct track_client *c = cli_client();
    int rc = track_grant_set(c, argv[i], argv[i + 1], argv[i + 2], &grantees, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "user", json_string(argv[i]));
        json_object_set_new(o, "experiment", json_string(argv[i + 1]));
        json_object_set_new(o, "level", json_string(argv[i + 2]));
        json_object_set_new(o, "grantees", json_integer(grantees));
        json_object_set_new(o, "restricted", json_true());
        return cli_json_print(o);
    }
    printf("%s has %s on %s\n", argv[i], argv[i + 2], argv[i + 1]);
    printf("experiment %s is now restricted: only its %lld grantee%s and admins may see it\n",
           argv[i + 1], (long long)grantees, grantees == 1 ? "" : "s");
    return 0;
}

int cmd_admin_revoke(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    struct track_err err = {0};
    int64_t grantees = 0;
    int removed = 0;
    int i = parse(argc, argv, longopts, 2, "NAME EXPERIMENT", NULL, NULL);
    struct track_client *c = cli_client();
    int rc = track_grant_revoke(c, argv[i], argv[i + 1], &removed, &grantees, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "user", json_string(argv[i]));
        json_object_set_new(o, "experiment", json_string(argv[i + 1]));
        json_object_set_new(o, "removed", json_boolean(removed));
        json_object_set_new(o, "grantees", json_integer(grantees));
        json_object_set_new(o, "restricted", json_boolean(grantees > 0));
        return cli_json_print(o);
    }
    if (!removed)
        printf("%s had no grant on %s\n", argv[i], argv[i + 1]);
    else
        printf("revoked %s's grant on %s\n", argv[i], argv[i + 1]);
    if (grantees == 0)
        printf("experiment %s is open: every user reaches it at their role's level\n", argv[i + 1]);
    return 0;
}

static int grants_opt(int opt, void *ctx)
{
    if (opt != 'e')
        return 0;
    *(const char **)ctx = optarg;
    return 1;
}

int cmd_admin_grants(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"experiment", required_argument, NULL, 'e'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    struct track_admin_result *res = NULL;
    const struct track_grant *g = NULL;
    const char *exp = NULL;
    struct track_err err = {0};
    size_t n = 0;
    int i = parse(argc, argv, longopts, -1, "", grants_opt, (void *)&exp);

    if (argc - i > 1)
        cli_usage_error(argv[0], "expected at most one user NAME");
    struct track_client *c = cli_client();
    int rc = track_grant_list(c, argc > i ? argv[i] : NULL, exp, &res, &g, &n, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *a = json_array();
        for (size_t k = 0; k < n; k++) {
            json_t *j = json_object();
            json_object_set_new(j, "user", json_string(g[k].user));
            json_object_set_new(j, "experiment", json_string(g[k].experiment));
            json_object_set_new(j, "level", json_string(g[k].level));
            json_array_append_new(a, j);
        }
        json_t *o = json_object();
        json_object_set_new(o, "grants", a);
        track_admin_result_free(res);
        return cli_json_print(o);
    }
    printf("%-24s %-20s %s\n", "EXPERIMENT", "USER", "LEVEL");
    for (size_t k = 0; k < n; k++)
        printf("%-24s %-20s %s\n", g[k].experiment, g[k].user, g[k].level);
    track_admin_result_free(res);
    return 0;
}

/* ---- tokens ---------------------------------------------------------------------- */

static int token_opt(int opt, void *ctx)
{
    if (opt != 'x')
        return 0;
    *(const char **)ctx = optarg;
    return 1;
}

int cmd_admin_token_create(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"expires", required_argument, NULL, 'x'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    char token[TRACK_TOKEN_TEXT_BYTES];
    const char *expires = NULL;
    struct track_err err = {0};
    int64_t id = 0, exp_ms = 0, d;
    int i = parse(argc, argv, longopts, 1, "one user NAME", token_opt, (void *)&expires);

    if (expires && strcmp(expires, "never") != 0) {
        if (cli_parse_duration(expires, &d) || d <= 0 || d > INT64_MAX - now_ms())
            cli_usage_error(argv[0],
                            "--expires: \"%.40s\" is not a duration (e.g. 90d, 12h) or never",
                            expires);
        exp_ms = now_ms() + d;
    }
    struct track_client *c = cli_client();
    int rc = track_token_create(c, argv[i], exp_ms, token, &id, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(id));
        json_object_set_new(o, "user", json_string(argv[i]));
        json_object_set_new(o, "token", json_string(token));
        json_object_set_new(o, "expires_time", cli_json_time(exp_ms));
        return cli_json_print(o);
    }
    printf("%s\n", token);
    char t[32] = "never";
    if (exp_ms)
        cli_fmt_time(exp_ms, t, sizeof t);
    fprintf(stderr, "token %lld for %s, expires %s: shown this once, kept nowhere\n", (long long)id,
            argv[i], t);
    return 0;
}

int cmd_admin_token_list(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    struct track_admin_result *res = NULL;
    const struct track_token *t = NULL;
    struct track_err err = {0};
    size_t n = 0;
    int i = parse(argc, argv, longopts, 1, "one user NAME", NULL, NULL);
    struct track_client *c = cli_client();
    int rc = track_token_list(c, argv[i], &res, &t, &n, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *a = json_array();
        for (size_t k = 0; k < n; k++) {
            json_t *j = json_object();
            json_object_set_new(j, "id", json_integer(t[k].id));
            json_object_set_new(j, "user", json_string(t[k].user));
            json_object_set_new(j, "created_time", cli_json_time(t[k].created_ms));
            json_object_set_new(j, "expires_time", cli_json_time(t[k].expires_ms));
            json_object_set_new(j, "expired",
                                json_boolean(t[k].expires_ms && t[k].expires_ms <= now_ms()));
            json_array_append_new(a, j);
        }
        json_t *o = json_object();
        json_object_set_new(o, "tokens", a);
        track_admin_result_free(res);
        return cli_json_print(o);
    }
    printf("%-6s %-19s %-19s\n", "ID", "CREATED", "EXPIRES");
    for (size_t k = 0; k < n; k++) {
        printf("%-6lld ", (long long)t[k].id);
        print_time(t[k].created_ms);
        printf(" ");
        print_time(t[k].expires_ms);
        printf("%s\n", t[k].expires_ms && t[k].expires_ms <= now_ms() ? " (expired)" : "");
    }
    track_admin_result_free(res);
    return 0;
}

int cmd_admin_token_revoke(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    struct track_err err = {0};
    int i = parse(argc, argv, longopts, 1, "one token ID", NULL, NULL);
    int64_t id = cli_arg_i64(argv[0], "token ID", argv[i], 1, INT64_MAX);
    struct track_client *c = cli_client();
    int rc = track_token_revoke(c, id, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(id));
        json_object_set_new(o, "revoked", json_true());
        return cli_json_print(o);
    }
    printf("revoked token %lld\n", (long long)id);
    return 0;
}

/* ---- audit ----------------------------------------------------------------------- */

struct audit_opts {
    struct track_audit_query q;
    const char *since, *prune;
    int64_t limit;
};

static int audit_opt(int opt, void *ctx)
{
    struct audit_opts *o = ctx;
    switch (opt) {
    case 'u':
        o->q.user = optarg;
        return 1;
    case 'e':
        o->q.experiment = optarg;
        return 1;
    case 's':
        o->since = optarg;
        return 1;
    case 'l':
        o->limit = cli_arg_i64("admin audit", "--limit", optarg, 1, 1000000);
        return 1;
    case 'p':
        o->prune = optarg;
        return 1;
    default:
        return 0;
    }
}

static int audit_prune(const char *name, const char *when)
{
    struct track_err err = {0};
    int64_t before = 0, removed = 0;

    if (parse_time(when, &before))
        cli_usage_error(name, "--prune-before: \"%.40s\" is not a TIME (90d, 2026-01-31 or ms)",
                        when);
    struct track_client *c = cli_client();
    int rc = track_audit_prune(c, before, &removed, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "before_time", cli_json_time(before));
        json_object_set_new(o, "removed", json_integer(removed));
        return cli_json_print(o);
    }
    char t[32];
    cli_fmt_time(before, t, sizeof t);
    printf("removed %lld audit row%s older than %s\n", (long long)removed, removed == 1 ? "" : "s",
           t);
    return 0;
}

static json_t *audit_json(const struct track_audit_entry *e)
{
    char hex[33];
    json_t *j = json_object();
    json_object_set_new(j, "id", json_integer(e->id));
    json_object_set_new(j, "time", json_integer(e->ms));
    json_object_set_new(j, "user", json_string(e->user));
    json_object_set_new(j, "key", json_str_or_null(e->key));
    json_object_set_new(j, "op", json_string(e->op));
    json_object_set_new(j, "experiment", json_str_or_null(e->experiment));
    if (e->has_run) {
        track_run_id_hex(&e->run, hex);
        json_object_set_new(j, "run_id", json_string(hex));
    } else {
        json_object_set_new(j, "run_id", json_null());
    }
    json_object_set_new(j, "detail", json_string(e->detail));
    json_object_set_new(j, "code", json_string(e->code));
    return j;
}

int cmd_admin_audit(int argc, char **argv)
{
    static const struct option longopts[] = {{"user", required_argument, NULL, 'u'},
                                             {"experiment", required_argument, NULL, 'e'},
                                             {"since", required_argument, NULL, 's'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {"prune-before", required_argument, NULL, 'p'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    struct audit_opts o = {.limit = 100};
    struct track_err err = {0};
    int64_t shown = 0;
    int rc = 0;

    parse(argc, argv, longopts, 0, "no arguments", audit_opt, &o);
    if (o.prune)
        return audit_prune(argv[0], o.prune);
    if (o.since && parse_time(o.since, &o.q.since_ms))
        cli_usage_error(argv[0], "--since: \"%.40s\" is not a TIME (90d, 2026-01-31 or ms)",
                        o.since);
    json_t *all = cli_opt.json ? json_array() : NULL;
    struct track_client *c = cli_client();
    if (!all)
        printf("%-19s %-12s %-15s %-16s %-8s %-17s %s\n", "TIME", "USER", "OP", "EXPERIMENT", "RUN",
               "CODE", "DETAIL");
    /* pages, newest first, until --limit rows or the oldest */
    while (shown < o.limit) {
        struct track_admin_result *res = NULL;
        const struct track_audit_entry *e = NULL;
        size_t n = 0;
        int64_t next = 0;
        o.q.limit = (int)(o.limit - shown > 10000 ? 10000 : o.limit - shown);
        rc = track_audit_list(c, &o.q, &res, &e, &n, &next, &err);
        if (rc)
            break;
        for (size_t k = 0; k < n; k++) {
            if (all) {
                json_array_append_new(all, audit_json(&e[k]));
                continue;
            }
            char t[32], hex[33] = "-";
            cli_fmt_time(e[k].ms, t, sizeof t);
            if (e[k].has_run) {
                track_run_id_hex(&e[k].run, hex);
                hex[8] = '\0';
            }
            printf("%-19s %-12s %-15s %-16s %-8s %-17s %s\n", t, e[k].user, e[k].op,
                   *e[k].experiment ? e[k].experiment : "-", hex, e[k].code, e[k].detail);
        }
        shown += (int64_t)n;
        track_admin_result_free(res);
        if (!next || n == 0)
            break;
        o.q.before_id = next;
    }
    track_client_close(c);
    if (rc) {
        json_decref(all);
        return cli_track_error(&err);
    }
    if (all) {
        json_t *obj = json_object();
        json_object_set_new(obj, "entries", all);
        return cli_json_print(obj);
    }
    return 0;
}

/* ---- whoami ---------------------------------------------------------------------- */

int cmd_whoami(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    struct track_admin_result *res = NULL;
    const struct track_whoami *w = NULL;
    struct track_err err = {0};

    parse(argc, argv, longopts, 0, "no arguments", NULL, NULL);
    struct track_client *c = cli_client();
    int rc = track_whoami(c, &res, &w, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object(), *a = json_array();
        json_object_set_new(o, "name", json_string(w->name));
        json_object_set_new(o, "role", json_string(w->role));
        json_object_set_new(o, "local", json_boolean(w->local));
        json_object_set_new(o, "key", json_str_or_null(w->key));
        for (size_t k = 0; k < w->n_experiments; k++) {
            json_t *j = json_object();
            json_object_set_new(j, "experiment", json_string(w->experiments[k].experiment));
            json_object_set_new(j, "level", json_string(w->experiments[k].level));
            json_array_append_new(a, j);
        }
        json_object_set_new(o, "experiments", a);
        track_admin_result_free(res);
        return cli_json_print(o);
    }
    printf("%s, role %s, %s%s\n", w->name, w->role, w->local ? "local owner" : "key ",
           w->local ? "" : (*w->key ? w->key : "(none)"));
    for (size_t k = 0; k < w->n_experiments; k++)
        printf("  %-8s %s\n", w->experiments[k].level, w->experiments[k].experiment);
    track_admin_result_free(res);
    return 0;
}
