/*
 * cmd_model.c: `track model register|list|show|alias|tag|get`, the model
 * registry (track.h "model registry"). Versions are named NAME/VERSION or
 * NAME@ALIAS; trackd resolves both. `model get` says where the version's
 * bytes are and prints the `track model get NAME/VERSION -o DIR` command
 * that fetches them;
 * with -o DIR it downloads them itself, by the version's pinned digest
 * (track_blob_get), so what arrives is what was registered even when the
 * run's artifact at that path was replaced since. A version always pins one
 * file (register takes an exact artifact path), never a directory.
 */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static json_t *json_kvs(const struct track_kv *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i].key, json_string(kv[i].value));
    return o;
}

static json_t *json_version(const struct track_model_version *v)
{
    char run[33], digest[65];
    json_t *o = json_object(), *a = json_array();

    track_run_id_hex(&v->run, run);
    cli_hex(v->digest, 32, digest);
    json_object_set_new(o, "model", json_string(v->model));
    json_object_set_new(o, "version", json_integer(v->version));
    json_object_set_new(o, "run_id", json_string(run));
    json_object_set_new(o, "path", json_string(v->path));
    json_object_set_new(o, "digest", json_string(digest));
    json_object_set_new(o, "size", json_integer(v->size));
    json_object_set_new(o, "description", json_string(v->description));
    json_object_set_new(o, "user", json_string(v->user));
    json_object_set_new(o, "created_time", cli_json_time(v->created_ms));
    json_object_set_new(o, "tags", json_kvs(v->tags, v->n_tags));
    for (size_t i = 0; i < v->n_aliases; i++)
        json_array_append_new(a, json_string(v->aliases[i]));
    json_object_set_new(o, "aliases", a);
    return o;
}

static json_t *json_model(const struct track_model_info *m)
{
    json_t *o = json_object(), *al = json_object();

    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "created_time", cli_json_time(m->created_ms));
    json_object_set_new(o, "versions", json_integer(m->versions));
    json_object_set_new(o, "latest_version", json_integer(m->latest_version));
    json_object_set_new(o, "tags", json_kvs(m->tags, m->n_tags));
    for (size_t i = 0; i < m->n_aliases; i++)
        json_object_set_new(al, m->aliases[i].alias, json_integer(m->aliases[i].to_version));
    json_object_set_new(o, "aliases", al);
    return o;
}

static json_t *json_move(const struct track_alias_move *h)
{
    json_t *o = json_object();
    json_object_set_new(o, "alias", json_string(h->alias));
    json_object_set_new(o, "from_version",
                        h->from_version ? json_integer(h->from_version) : json_null());
    json_object_set_new(o, "to_version", json_integer(h->to_version));
    json_object_set_new(o, "who", json_string(h->who));
    json_object_set_new(o, "time", cli_json_time(h->ms));
    return o;
}

/* Parses the options of a command taking no options of its own and
 * exactly `nargs` arguments (what: their names for the error). */
static void plain_args(int argc, char **argv, int nargs, const char *what)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, argv[0]))
            cli_usage_error(argv[0], "unknown option");
    if (argc - optind != nargs)
        cli_usage_error(argv[0], "expected %s", what);
}

static void print_version(const struct track_model_version *v)
{
    char run[33], digest[65], t[32];

    track_run_id_hex(&v->run, run);
    cli_hex(v->digest, 32, digest);
    cli_fmt_time(v->created_ms, t, sizeof(t));
    printf("%s/%lld\n", v->model, (long long)v->version);
    printf("  run:         %s\n", run);
    printf("  path:        %s\n", v->path);
    printf("  digest:      %s\n", digest);
    printf("  size:        %lld bytes\n", (long long)v->size);
    printf("  registered:  %s%s%s\n", t, v->user[0] ? " by " : "", v->user);
    if (v->description[0])
        printf("  description: %s\n", v->description);
    if (v->n_aliases) {
        printf("  aliases:    ");
        for (size_t i = 0; i < v->n_aliases; i++)
            printf(" %s", v->aliases[i]);
        printf("\n");
    }
    for (size_t i = 0; i < v->n_tags; i++)
        printf("  tag:         %s=%s\n", v->tags[i].key, v->tags[i].value);
}

int cmd_model_register(int argc, char **argv)
{
    static const struct option longopts[] = {{"path", required_argument, NULL, 'p'},
                                             {"description", required_argument, NULL, 'd'},
                                             {"tag", required_argument, NULL, 't'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    static struct cli_kv_args kv;
    const char *name = argv[0], *path = NULL, *description = NULL;
    const struct track_model_version *v;
    struct track_model_result *res;
    struct track_err err = {0};
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 'p')
            path = optarg;
        else if (opt == 'd')
            description = optarg;
        else if (opt == 't')
            cli_add_kv(name, &kv, 0, optarg);
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (optind + 1 != argc)
        cli_usage_error(name, "expected one model NAME");
    if (!cli_run_arg())
        cli_usage_error(name, "--run RUN is required (or TRACK_RUN_ID)");
    if (!path)
        cli_usage_error(name, "--path ARTIFACT_PATH is required");
    struct track_client *c = cli_client();
    int rc = track_model_register(c, argv[optind], cli_run_arg(), path, description, kv.tags,
                                  kv.n_tags, &res, &v, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_version(v);
        track_model_result_free(res);
        return cli_json_print(o);
    }
    printf("%s/%lld\n", v->model, (long long)v->version);
    track_model_result_free(res);
    return 0;
}

int cmd_model_list(int argc, char **argv)
{
    const struct track_model_info *m;
    struct track_model_result *res;
    struct track_err err = {0};
    size_t n;

    plain_args(argc, argv, 0, "no arguments");
    struct track_client *c = cli_client();
    int rc = track_model_list(c, &res, &m, &n, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, json_model(&m[i]));
        track_model_result_free(res);
        return cli_json_print(a);
    }
    printf("%-32s %8s %7s  %s\n", "NAME", "VERSIONS", "LATEST", "ALIASES");
    for (size_t i = 0; i < n; i++) {
        printf("%-32s %8lld %7lld ", m[i].name, (long long)m[i].versions,
               (long long)m[i].latest_version);
        for (size_t j = 0; j < m[i].n_aliases; j++)
            printf(" %s=%lld", m[i].aliases[j].alias, (long long)m[i].aliases[j].to_version);
        printf("\n");
    }
    track_model_result_free(res);
    return 0;
}

int cmd_model_show(int argc, char **argv)
{
    const struct track_model_info *m;
    const struct track_model_version *v;
    const struct track_alias_move *h;
    struct track_model_result *res;
    struct track_err err = {0};
    size_t nv, nh;

    plain_args(argc, argv, 1, "one model NAME");
    struct track_client *c = cli_client();
    int rc = track_model_show(c, argv[optind], &res, &m, &v, &nv, &h, &nh, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_model(m), *va = json_array(), *ha = json_array();
        for (size_t i = 0; i < nv; i++)
            json_array_append_new(va, json_version(&v[i]));
        for (size_t i = 0; i < nh; i++)
            json_array_append_new(ha, json_move(&h[i]));
        json_object_set_new(o, "version_list", va);
        json_object_set_new(o, "alias_history", ha);
        track_model_result_free(res);
        return cli_json_print(o);
    }
    char t[32];
    cli_fmt_time(m->created_ms, t, sizeof(t));
    printf("model %s: %lld version%s, created %s\n", m->name, (long long)m->versions,
           m->versions == 1 ? "" : "s", t);
    for (size_t i = 0; i < m->n_tags; i++)
        printf("  tag: %s=%s\n", m->tags[i].key, m->tags[i].value);
    printf("\nversions:\n");
    for (size_t i = 0; i < nv; i++)
        print_version(&v[i]);
    printf("\naliases:\n");
    for (size_t i = 0; i < m->n_aliases; i++)
        printf("  %s -> %lld\n", m->aliases[i].alias, (long long)m->aliases[i].to_version);
    printf("\nalias history (oldest first):\n");
    for (size_t i = 0; i < nh; i++) {
        cli_fmt_time(h[i].ms, t, sizeof(t));
        if (h[i].from_version)
            printf("  %s  %s: %lld -> %lld  by %s\n", t, h[i].alias, (long long)h[i].from_version,
                   (long long)h[i].to_version, h[i].who[0] ? h[i].who : "-");
        else
            printf("  %s  %s: new -> %lld  by %s\n", t, h[i].alias, (long long)h[i].to_version,
                   h[i].who[0] ? h[i].who : "-");
    }
    track_model_result_free(res);
    return 0;
}

int cmd_model_alias(int argc, char **argv)
{
    struct track_err err = {0};
    int64_t from = 0, to = 0;

    plain_args(argc, argv, 3, "NAME ALIAS VERSION");
    const char *model = argv[optind], *alias = argv[optind + 1], *version = argv[optind + 2];
    struct track_client *c = cli_client();
    int rc = track_model_alias(c, model, alias, version, &from, &to, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(model));
        json_object_set_new(o, "alias", json_string(alias));
        json_object_set_new(o, "from_version", from ? json_integer(from) : json_null());
        json_object_set_new(o, "to_version", json_integer(to));
        return cli_json_print(o);
    }
    if (from == to)
        printf("%s@%s already at version %lld\n", model, alias, (long long)to);
    else if (from)
        printf("%s@%s: %lld -> %lld\n", model, alias, (long long)from, (long long)to);
    else
        printf("%s@%s: new -> %lld\n", model, alias, (long long)to);
    return 0;
}

int cmd_model_tag(int argc, char **argv)
{
    struct track_err err = {0};
    struct track_kv kv;

    plain_args(argc, argv, 2, "NAME[/VERSION] K=V");
    if (cli_split_kv(argv[optind + 1], &kv) || !kv.key[0])
        cli_usage_error(argv[0], "expected K=V, got \"%s\"", argv[optind + 1]);
    struct track_client *c = cli_client();
    int rc = track_model_tag(c, argv[optind], kv.key, kv.value, &err);
    track_client_close(c);
    if (rc)
        return cli_track_error(&err);
    return 0;
}

/* Makes directory `dir` and its missing parents (mkdir -p); an existing
 * path that is not a directory is an error naming it. */
static int make_dirs(const char *dir, struct track_err *err)
{
    char p[PATH_MAX];
    struct stat sb;
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof(p)) {
        err->code = TRACK_E_INVALID_ARGUMENT;
        snprintf(err->msg, sizeof(err->msg), "-o: directory name of %zu bytes", len);
        return err->code;
    }
    memcpy(p, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            err->code = TRACK_E_INVALID_ARGUMENT;
            snprintf(err->msg, sizeof(err->msg), "-o: cannot create directory %.300s: %s", p,
                     strerror(errno));
            return err->code;
        }
        if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            err->code = TRACK_E_INVALID_ARGUMENT;
            snprintf(err->msg, sizeof(err->msg),
                     "-o: %.300s exists and is not a directory (-o takes the directory to "
                     "write the version's file into)",
                     p);
            return err->code;
        }
        p[i] = saved;
    }
    return 0;
}

/* Downloads version v's pinned blob (by its digest, so a replaced
 * artifact row does not matter) as DIR/LAST-SEGMENT-OF-PATH into *local. */
static int fetch_version(struct track_client *c, const struct track_model_version *v,
                         const char *dir, char *local, size_t cap, struct track_err *err)
{
    int rc;

    /* the daemon's path decides the file name: it must be a safe one */
    if ((rc = track_artifact_check_path(v->path, err)) != 0)
        return rc;
    if ((rc = make_dirs(dir, err)) != 0)
        return rc;
    const char *slash = strrchr(v->path, '/');
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/')
        dl--;
    if ((size_t)snprintf(local, cap, "%.*s/%s", (int)dl, dir, slash ? slash + 1 : v->path) >= cap) {
        err->code = TRACK_E_INVALID_ARGUMENT;
        snprintf(err->msg, sizeof(err->msg), "-o: %.300s: the file's path would be too long", dir);
        return err->code;
    }
    return track_blob_get(c, v->digest, v->size, local, err);
}

int cmd_model_get(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const struct track_model_version *v;
    struct track_model_result *res = NULL;
    struct track_err err = {0};
    const char *name = argv[0], *out = NULL;
    char run[33], local[PATH_MAX + 1100];
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "ho:", longopts)) != -1) {
        if (opt == 'o')
            out = optarg;
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (optind + 1 != argc)
        cli_usage_error(name, "expected one NAME@ALIAS or NAME/VERSION");
    if (out && !out[0])
        cli_usage_error(name, "-o: empty directory name");
    const char *ref = argv[optind];
    struct track_client *c = cli_client();
    int rc = track_model_get(c, ref, &res, &v, &err);
    if (rc == 0 && out)
        rc = fetch_version(c, v, out, local, sizeof(local), &err);
    track_client_close(c);
    if (rc) {
        track_model_result_free(res);
        return cli_track_error(&err);
    }
    track_run_id_hex(&v->run, run);
    if (cli_opt.json) {
        json_t *o = json_version(v);
        json_object_set_new(o, "ref", json_string(ref));
        if (out)
            json_object_set_new(o, "output", json_string(local));
        track_model_result_free(res);
        return cli_json_print(o);
    }
    if (out) {
        char digest[65];
        cli_hex(v->digest, 32, digest);
        printf("wrote %s/%lld (%lld bytes, digest %s checked) to %s\n", v->model,
               (long long)v->version, (long long)v->size, digest, local);
        track_model_result_free(res);
        return 0;
    }
    print_version(v);
    /* by the version, not by the run's path: the run's artifact may have
     * been replaced since, the version's pinned bytes have not */
    printf("fetch it with:\n  track model get %s/%lld -o DIR\n", v->model, (long long)v->version);
    (void)run;
    track_model_result_free(res);
    return 0;
}
