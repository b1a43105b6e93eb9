/*
 * cmd_config.c: `track config set server URI [--server-key KEY]` and
 * `track config show`: the client config file (~/.config/track/config,
 * 0600), whose server is the default of every track command and libtrack
 * program, and whose server_key pins that server's public key (required for
 * tcp://: every frame is sealed for it, and a reply sealed by any other key
 * is refused).
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cmd_config_set(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server-key", required_argument, NULL, 'k'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0], *key = NULL;
    struct track_err err = {0};
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 'k')
            key = optarg;
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (optind + 2 != argc || strcmp(argv[optind], "server") != 0)
        cli_usage_error(name, "expected: server URI (the only setting so far)");
    if (track_config_set_server(argv[optind + 1], key, &err))
        return cli_track_error(&err);
    return 0;
}

int cmd_config_show(int argc, char **argv)
{
    static const struct option longopts[] = {CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_config cfg;
    struct track_err err = {0};
    char pk[TRACK_KEY_TEXT_BYTES] = "";
    int opt;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1)
        if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    if (track_config_read(&cfg, &err))
        return cli_track_error(&err);
    struct track_err kerr = {0};
    int has_key = track_key_public(cfg.key_path, pk, &kerr) == 0;
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(cfg.path));
        json_object_set_new(o, "server", cfg.server[0] ? json_string(cfg.server) : json_null());
        json_object_set_new(o, "server_key",
                            cfg.server_key[0] ? json_string(cfg.server_key) : json_null());
        json_object_set_new(o, "key_path", json_string(cfg.key_path));
        json_object_set_new(o, "public_key", has_key ? json_string(pk) : json_null());
        return cli_json_print(o);
    }
    printf("config      %s\n", cfg.path);
    printf("server      %s\n", cfg.server[0] ? cfg.server : "(not set: the local default)");
    printf("server_key  %s\n", cfg.server_key[0] ? cfg.server_key : "(not set)");
    printf("key         %s\n", cfg.key_path);
    printf("public_key  %s\n", has_key ? pk : kerr.msg);
    return 0;
}
