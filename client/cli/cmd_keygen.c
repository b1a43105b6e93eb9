/*
 * cmd_keygen.c: `track keygen [--show]`: the client key of sealed tcp://
 * servers, ~/.config/track/key ($XDG_CONFIG_HOME/track/key, or $TRACK_KEY).
 * Makes a key pair (0600, never overwriting one) and prints its public key,
 * the text a server's admin adds for this user; --show prints the public key
 * of the key already there.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

int cmd_keygen(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"show", no_argument, NULL, 's'}, CLI_COMMON_LONGOPTS, {NULL, 0, NULL, 0}};
    const char *name = argv[0];
    struct track_err err = {0};
    char pk[TRACK_KEY_TEXT_BYTES], path[1100];
    int opt, show = 0;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 's')
            show = 1;
        else if (!cli_common_opt(opt, name))
            cli_usage_error(name, "unknown option");
    }
    if (optind != argc)
        cli_usage_error(name, "unexpected argument \"%s\"", argv[optind]);
    const char *env = getenv("TRACK_KEY");
    if (env && *env)
        snprintf(path, sizeof(path), "%s", env);
    else if (track_default_key_path(path, sizeof(path)))
        return cli_error("cannot work out the key path (set HOME or XDG_CONFIG_HOME)");
    int rc = show ? track_key_public(path, pk, &err) : track_keygen(path, pk, &err);
    if (rc)
        return cli_track_error(&err);
    if (cli_opt.json) {
        json_t *o = json_object();
        json_object_set_new(o, "public_key", json_string(pk));
        json_object_set_new(o, "path", json_string(path));
        return cli_json_print(o);
    }
    printf("%s\n", pk);
    if (!show)
        fprintf(stderr,
                "track: secret key written to %s (0600); give the public key above to "
                "the server's admin\n",
                path);
    return 0;
}
