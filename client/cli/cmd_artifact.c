/*
 * cmd_artifact.c: `track artifact put|list|get|verify`: files kept with a
 * run, stored once each by the daemon under their digest (libtrack's
 * track_artifact_* do the moving, checking and path rules; this file reads
 * arguments and prints).
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* "12.3 MiB", "512 B" */
static void fmt_bytes(int64_t n, char *buf, size_t len)
{
    if (n < 1024)
        snprintf(buf, len, "%lld B", (long long)n);
    else if (n < 1024 * 1024)
        snprintf(buf, len, "%.1f KiB", (double)n / 1024.0);
    else if (n < 1024LL * 1024 * 1024)
        snprintf(buf, len, "%.1f MiB", (double)n / 1048576.0);
    else
        snprintf(buf, len, "%.2f GiB", (double)n / 1073741824.0);
}

int cmd_artifact_put(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"as", required_argument, NULL, 'a'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0], *as = NULL;
    struct track_artifact_put_stats st;
    struct track_err err = {0};
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 'a')
            as = optarg;
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (optind + 1 != argc)
        cli_usage_error(name, "expected one FILE or DIR");
    if (as && track_artifact_check_path(as, &err))
        cli_usage_error(name, "--as: %s", err.msg);
    struct track_client *c = cli_client();
    if (cli_use_run(c)) {
        track_client_close(c);
        return 1;
    }
    int rc = track_artifact_put_ex(c, argv[optind], as, &st, &err);
    track_run_id id;
    char hex[33] = "";
    if (track_run_current(c, &id) == 0)
        track_run_id_hex(&id, hex);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "run_id", json_string(hex));
        json_object_set_new(o, "files", json_integer(st.files));
        json_object_set_new(o, "bytes", json_integer(st.bytes));
        json_object_set_new(o, "sent_bytes", json_integer(st.sent));
        json_object_set_new(o, "deduplicated", json_integer(st.deduped));
        return cli_json_print(o);
    }
    char b[32], s[32];
    fmt_bytes(st.bytes, b, sizeof(b));
    fmt_bytes(st.sent, s, sizeof(s));
    printf("stored %lld file%s (%s) in run %.8s: %s sent, %lld already stored\n",
           (long long)st.files, st.files == 1 ? "" : "s", b, hex, s, (long long)st.deduped);
    return 0;
}

struct list_out {
    json_t *arr;
    int64_t n;
};

static int list_cb(void *ctx, const struct track_artifact_info *a)
{
    struct list_out *l = ctx;
    l->n++;
    if (l->arr) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(a->path));
        json_object_set_new(o, "size", json_integer(a->size));
        json_object_set_new(o, "digest", json_string(a->digest_hex));
        json_object_set_new(o, "logged_ms", cli_json_time(a->logged_ms));
        json_array_append_new(l->arr, o);
        return 0;
    }
    char t[32], b[32];
    cli_fmt_time(a->logged_ms, t, sizeof(t));
    fmt_bytes(a->size, b, sizeof(b));
    printf("%-40s %10s  %.16s  %s\n", a->path, b, a->digest_hex, t);
    return 0;
}

/* The run of list/get: the positional RUN when given, else --run or
 * TRACK_RUN_ID; NULL after a usage error message when there is none. */
static const char *run_of(const char *name, const char *positional)
{
    const char *r = positional ? positional : cli_run_arg();
    if (!r)
        cli_usage_error(name, "no run: give RUN, --run RUN or set TRACK_RUN_ID");
    return r;
}

/* Reads the common options of a command (argv[0]) that takes at most one
 * positional argument; that argument, or NULL. Exits with a usage error on
 * an unknown option or a second argument. */
static const char *optional_arg(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind + 1 < argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind + 1]);
    return optind < argc ? argv[optind] : NULL;
}

int cmd_artifact_list(int argc, char **argv)
{
    const char *name = argv[0];
    struct track_err err = {0};
    struct list_out l = {0};
    const char *run = run_of(name, optional_arg(argc, argv));
    struct track_client *c = cli_client();
    if (cli_opt.json)
        l.arr = json_array();
    else
        printf("%-40s %10s  %-16s  %s\n", "PATH", "SIZE", "DIGEST", "LOGGED");
    int rc = track_artifact_list(c, run, NULL, list_cb, &l, &err);
    track_client_close(c);
    if (rc) {
        json_decref(l.arr);
        return cli_track_error(&err);
    }
    if (l.arr)
        return cli_json_print(l.arr);
    return 0;
}

struct exact {
    const char *path;
    int found;
};

static int exact_cb(void *ctx, const struct track_artifact_info *a)
{
    struct exact *e = ctx;
    if (strcmp(a->path, e->path) == 0)
        e->found = 1;
    return 0;
}

int cmd_artifact_get(int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"fsync", no_argument, NULL, 'F'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    const char *name = argv[0], *out = NULL, *run, *path;
    int want_fsync = 0;
    struct track_artifact_get_stats st;
    struct track_err err = {0};
    char local[2 * PATH_MAX + 2], base[PATH_MAX];
    struct stat sb;
    int opt, rc;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "ho:", longopts)) != -1) {
        if (opt == 'o')
            out = optarg;
        else if (opt == 'F')
            want_fsync = 1;
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (optind + 2 == argc) {
        run = argv[optind];
        path = argv[optind + 1];
    } else if (optind + 1 == argc) {
        run = run_of(name, NULL);
        path = argv[optind];
    } else {
        cli_usage_error(name, "expected [RUN] PATH");
    }
    if (track_artifact_check_path(path, &err))
        cli_usage_error(name, "%s", err.msg);
    const char *slash = strrchr(path, '/');
    snprintf(base, sizeof(base), "%s", slash ? slash + 1 : path);
    struct track_client *c = cli_client();
    track_artifact_set_fsync(c, want_fsync);
    if (!out) {
        snprintf(local, sizeof(local), "%s", base);
    } else if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        /* an existing directory takes a file under its own name; a
         * directory artifact's contents go into it */
        struct exact e = {.path = path};
        rc = track_artifact_list(c, run, path, exact_cb, &e, &err);
        if (rc) {
            track_client_close(c);
            return cli_track_error(&err);
        }
        if (e.found)
            snprintf(local, sizeof(local), "%s/%s", out, base);
        else
            snprintf(local, sizeof(local), "%s", out);
    } else {
        snprintf(local, sizeof(local), "%s", out);
    }
    rc = track_artifact_get_ex(c, run, path, local, &st, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(local));
        json_object_set_new(o, "files", json_integer(st.files));
        json_object_set_new(o, "bytes", json_integer(st.bytes));
        return cli_json_print(o);
    }
    char b[32];
    fmt_bytes(st.bytes, b, sizeof(b));
    printf("wrote %lld file%s (%s) to %s, digests checked\n", (long long)st.files,
           st.files == 1 ? "" : "s", b, local);
    return 0;
}

struct problems {
    json_t *arr;
};

static int problem_cb(void *ctx, const struct track_artifact_problem *p)
{
    struct problems *pr = ctx;
    if (pr->arr) {
        json_t *o = json_object();
        json_object_set_new(o, "run_id", json_string(p->run_hex));
        json_object_set_new(o, "path", json_string(p->path));
        json_object_set_new(o, "digest", json_string(p->digest_hex));
        json_object_set_new(o, "problem", json_string(p->problem));
        json_array_append_new(pr->arr, o);
    } else {
        printf("%s  run %.8s  %s  (blob %.16s)\n", p->problem, p->run_hex, p->path, p->digest_hex);
    }
    return 0;
}

int cmd_artifact_verify(int argc, char **argv)
{
    struct track_artifact_verify_result r;
    struct track_err err = {0};
    struct problems pr = {0};
    const char *arg = optional_arg(argc, argv);
    const char *run = arg ? arg : cli_run_arg();
    struct track_client *c = cli_client();
    if (cli_opt.json)
        pr.arr = json_array();
    int rc = track_artifact_verify(c, run, &r, problem_cb, &pr, &err);
    track_client_close(c);
    if (rc) {
        json_decref(pr.arr);
        return cli_track_error(&err);
    }
    if (pr.arr) {
        json_t *o = json_object();
        json_object_set_new(o, "checked", json_integer(r.checked));
        json_object_set_new(o, "bytes", json_integer(r.bytes));
        json_object_set_new(o, "problems_total", json_integer(r.problems));
        json_object_set_new(o, "problems", pr.arr);
        rc = cli_json_print(o);
        return rc ? rc : r.problems ? 1 : 0;
    }
    char b[32];
    fmt_bytes(r.bytes, b, sizeof(b));
    if (r.problems) {
        fprintf(stderr, "track: %lld artifact%s of %s point at a missing or corrupt blob\n",
                (long long)r.problems, r.problems == 1 ? "" : "s", run ? "the run" : "all runs");
        return 1;
    }
    printf("ok: %lld blob%s (%s) re-hashed, every one matches its digest\n", (long long)r.checked,
           r.checked == 1 ? "" : "s", b);
    return 0;
}
