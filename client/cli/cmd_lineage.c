/*
 * cmd_lineage.c: `track lineage RUN | NAME@ALIAS | NAME/VERSION [--json]`:
 * where a run came from (its parent chain up to the root, its git commit
 * and command from the sys.* tags) and what came of it (child runs,
 * artifacts with digests, model versions made from it), from
 * track_lineage_get.
 *
 * The --json shape (stable; documented in README.md "### Lineage"):
 *   {"run": RUN, "parent": RUN|null, "ancestors": [RUN...] (parent first),
 *    "children": [RUN...], "git_commit": str|null, "command": str|null,
 *    "artifacts": [{"path", "digest", "size"}...],
 *    "model_versions": [{"model", "version", "path", "digest"}...],
 *    "truncated": bool}
 * with RUN = {"run_id", "name", "experiment", "status", "lifecycle",
 * "start_time"}. The arrays are empty when there is nothing (or no
 * artifact or model store on the server).
 *
 * `track lineage NAME@ALIAS | NAME/VERSION` resolves the version to its run
 * (track_model_get) and shows that run's lineage, after a line naming the
 * version; --json then has one more key, "model_version": {"model",
 * "version", "digest"} (the version's pinned digest), and is otherwise the
 * same. A RUN's --json has no such key.
 */
#include "cli.h"

#include <string.h>

static json_t *json_lrun(const struct track_lineage_run *r)
{
    json_t *o = json_object();
    char hex[33];
    track_run_id_hex(&r->id, hex);
    json_object_set_new(o, "run_id", json_string(hex));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "experiment", json_string(r->experiment));
    json_object_set_new(o, "status", json_string(cli_status_name(r->status)));
    json_object_set_new(o, "lifecycle", json_string(r->deleted ? "deleted" : "active"));
    json_object_set_new(o, "start_time", cli_json_time(r->start_ms));
    return o;
}

static json_t *json_str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static int print_json(const struct track_lineage *l, const struct track_model_version *mv)
{
    json_t *o = json_object(), *anc = json_array(), *kids = json_array(), *arts = json_array(),
           *vers = json_array();
    char hex[65];

    for (size_t i = 0; i < l->n_ancestors; i++)
        json_array_append_new(anc, json_lrun(&l->ancestors[i]));
    for (size_t i = 0; i < l->n_children; i++)
        json_array_append_new(kids, json_lrun(&l->children[i]));
    for (size_t i = 0; i < l->n_artifacts; i++) {
        json_t *a = json_object();
        cli_hex(l->artifacts[i].digest, 32, hex);
        json_object_set_new(a, "path", json_string(l->artifacts[i].path));
        json_object_set_new(a, "digest", json_string(hex));
        json_object_set_new(a, "size", json_integer(l->artifacts[i].size));
        json_array_append_new(arts, a);
    }
    for (size_t i = 0; i < l->n_model_versions; i++) {
        json_t *v = json_object();
        cli_hex(l->model_versions[i].digest, 32, hex);
        json_object_set_new(v, "model", json_string(l->model_versions[i].model));
        json_object_set_new(v, "version", json_integer(l->model_versions[i].version));
        json_object_set_new(v, "path", json_string(l->model_versions[i].path));
        json_object_set_new(v, "digest", json_string(hex));
        json_array_append_new(vers, v);
    }
    json_object_set_new(o, "run", json_lrun(&l->run));
    json_object_set_new(o, "parent", l->n_ancestors ? json_lrun(&l->ancestors[0]) : json_null());
    json_object_set_new(o, "ancestors", anc);
    json_object_set_new(o, "children", kids);
    json_object_set_new(o, "git_commit", json_str_or_null(l->git_commit));
    json_object_set_new(o, "command", json_str_or_null(l->command));
    json_object_set_new(o, "artifacts", arts);
    json_object_set_new(o, "model_versions", vers);
    json_object_set_new(o, "truncated", json_boolean(l->truncated));
    if (mv) {
        json_t *m = json_object();
        cli_hex(mv->digest, 32, hex);
        json_object_set_new(m, "model", json_string(mv->model));
        json_object_set_new(m, "version", json_integer(mv->version));
        json_object_set_new(m, "digest", json_string(hex));
        json_object_set_new(o, "model_version", m);
    }
    return cli_json_print(o);
}

static void print_run(const char *indent, const struct track_lineage_run *r)
{
    char hex[33];
    track_run_id_hex(&r->id, hex);
    printf("%s%s  %s  %s  %s%s\n", indent, hex, r->name, r->experiment, cli_status_name(r->status),
           r->deleted ? "  (deleted)" : "");
}

int cmd_lineage(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0], *run;
    struct track_lineage l;
    struct track_err err = {0};
    char hex[65];
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind + 1 == argc)
        run = argv[optind];
    else if (optind == argc && cli_run_arg())
        run = cli_run_arg();
    else
        cli_usage_error(name, "expected one RUN, NAME@ALIAS or NAME/VERSION");
    const char *ref = run;
    struct track_model_result *res = NULL;
    const struct track_model_version *mv = NULL;
    char run_hex[33];
    struct track_client *c = cli_client();
    int rc = 0;
    /* run ids and prefixes are hex: '@' or '/' is a model version */
    if (strchr(run, '@') || strchr(run, '/')) {
        rc = track_model_get(c, run, &res, &mv, &err);
        if (rc == 0) {
            track_run_id_hex(&mv->run, run_hex);
            run = run_hex;
        }
    }
    if (rc == 0)
        rc = track_lineage_get(c, run, &l, &err);
    track_client_close(c);
    if (rc) {
        track_model_result_free(res);
        return cli_track_error(&err);
    }
    if (cli_opt.json) {
        rc = print_json(&l, mv);
        track_lineage_free(&l);
        track_model_result_free(res);
        return rc;
    }
    if (mv) {
        cli_hex(mv->digest, 32, hex);
        printf("version   %s/%lld", mv->model, (long long)mv->version);
        if (strchr(ref, '@'))
            printf(" (%s)", ref);
        printf("  %s  %s\n", mv->path, hex);
        track_model_result_free(res);
        res = NULL;
    }
    print_run("run       ", &l.run);
    printf("commit    %s\n", *l.git_commit ? l.git_commit : "-");
    printf("command   %s\n", *l.command ? l.command : "-");
    if (l.n_ancestors) {
        printf("parents   (nearest first, up to the root)\n");
        for (size_t i = 0; i < l.n_ancestors; i++)
            print_run("  ", &l.ancestors[i]);
    } else {
        printf("parents   none (a root run)\n");
    }
    printf("children  %zu\n", l.n_children);
    for (size_t i = 0; i < l.n_children; i++)
        print_run("  ", &l.children[i]);
    printf("artifacts %zu\n", l.n_artifacts);
    for (size_t i = 0; i < l.n_artifacts; i++) {
        cli_hex(l.artifacts[i].digest, 32, hex);
        printf("  %s  %lld bytes  %s\n", l.artifacts[i].path, (long long)l.artifacts[i].size, hex);
    }
    printf("models    %zu\n", l.n_model_versions);
    for (size_t i = 0; i < l.n_model_versions; i++) {
        cli_hex(l.model_versions[i].digest, 32, hex);
        printf("  %s/%lld  %s  %s\n", l.model_versions[i].model,
               (long long)l.model_versions[i].version, l.model_versions[i].path, hex);
    }
    if (l.truncated)
        printf("(lists cut at 1000 entries, 64 ancestors)\n");
    track_lineage_free(&l);
    return 0;
}
