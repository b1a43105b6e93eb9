/*
 * main.c: the `track` command. One table maps "noun verb" (or a single
 * word) to the function that runs it and to its usage text; --help and the
 * command list come from the same table, so a new command is one file and
 * one row.
 *
 * Global options may stand before the command: track [--server URI]
 * [--run RUN] [--json] COMMAND ...; each command accepts them too.
 */
#include "cli.h"

#include <string.h>

struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *args;
    const char *summary;
};

static const struct cli_cmd commands[] = {
    {"experiment create", cmd_experiment_create, "NAME", "create an experiment"},
    {"experiment list", cmd_experiment_list, "[--json]", "list experiments with run counts"},
    {"run start", cmd_run_start,
     "[--experiment NAME] [--name NAME] [--param K=V]... [--tag K=V]... [--parent RUN] "
     "[--export]",
     "start a run and print its id (--export: as `export TRACK_RUN_ID=...`)"},
    {"run end", cmd_run_end, "[--run RUN] [--status finished|failed|killed]",
     "end a run (default status finished)"},
    {"run list", cmd_run_list, "[--experiment NAME]... [--limit N] [--json]",
     "list runs, newest first"},
    {"run show", cmd_run_show, "RUN [--json]", "show a run: params, tags, metric summaries"},
    {"log-param", cmd_log_param, "[--run RUN] K=V...", "log params (immutable)"},
    {"tag", cmd_tag, "[--run RUN] K=V...", "set tags (mutable)"},
    {"log-metric", cmd_log_metric, "[--run RUN] KEY VALUE [--step N] [--time MS] | --stdin",
     "log a metric point; --stdin reads lines \"KEY VALUE [STEP]\" and sends them batched"},
    {"metric history", cmd_metric_history, "RUN KEY [--json|--csv]",
     "print every point of a metric"},
    {"exec", cmd_exec,
     "[--experiment NAME] [--name NAME] [--param K=V]... [--tag K=V]... -- CMD [ARGS...]",
     "run CMD inside a new run: records the command, git state and exit status"},
    {"runs", cmd_runs,
     "[--experiment NAME]... [--filter EXPR] [--order-by EXPR] [--limit N] [--json|--csv]",
     "search runs: filter by metrics, params, tags and attributes; sort; list"},
    {"compare", cmd_compare,
     "RUN RUN... | --filter EXPR [--experiment NAME] [--metric KEY]... [--all-params] "
     "[--goal KEY=min|max]... [--format table|markdown|csv|json] "
     "[--plot FILE.svg [--smooth K] [--log-y] [--x step|time|relative]]",
     "compare runs side by side: params that differ, metrics with the best marked"},
    {"watch", cmd_watch, "[RUN] [--metric KEY]... [--interval MS]",
     "live view of a running run (one line per update without a terminal)"},
    {"export", cmd_export,
     "(--experiment NAME | RUN...) --format csv|jsonl|json [--history] [-o FILE]",
     "export runs with params, tags and metric summaries (--history: every point)"},
    {"status", cmd_status, "[--json]", "server version, uptime, data directory and counts"},
    {"sync", cmd_sync, "", "deliver writes spooled while trackd was unreachable"},
    {"backup", cmd_backup, "FILE",
     "consistent online copy of the database while writes go on (trackd --restore FILE)"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cli_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

void cli_usage(const char *name, int to_stderr)
{
    FILE *f = to_stderr ? stderr : stdout;
    const struct cli_cmd *c = find_cmd(name);
    if (!c)
        return;
    fprintf(f, "usage: track %s %s\n\n  %s\n\n", c->name, c->args, c->summary);
    fprintf(f, "common options: --server URI (else $TRACK_SERVER, else the local default),\n"
               "  --run RUN (else $TRACK_RUN_ID), --json, --help\n");
}

static void usage_all(FILE *f)
{
    fprintf(f, "usage: track [--server URI] [--run RUN] [--json] COMMAND [ARGS]\n\n"
               "track is an experiment tracker; trackd stores what these commands log.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-20s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`track COMMAND --help` for a command's options. Exit status: 0 success,\n"
               "1 error, 2 usage. Environment: TRACK_SERVER, TRACK_RUN_ID,\n"
               "TRACK_NO_AUTOSTART=1 (do not start a personal trackd).\n");
}

int main(int argc, char **argv)
{
    int i = 1;

    /* global options before the command */
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage_all(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("track %s\n", TRACK_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            cli_opt.json = 1;
            i++;
        } else if ((strcmp(argv[i], "--server") == 0 || strcmp(argv[i], "--run") == 0) &&
                   i + 1 < argc) {
            if (argv[i][2] == 's')
                cli_opt.server = argv[i + 1];
            else
                cli_opt.run = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "--server=", 9) == 0) {
            cli_opt.server = argv[i++] + 9;
        } else if (strncmp(argv[i], "--run=", 6) == 0) {
            cli_opt.run = argv[i++] + 6;
        } else {
            fprintf(stderr, "track: unknown option %s\n", argv[i]);
            usage_all(stderr);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage_all(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 < argc) {
            char name[128];
            snprintf(name, sizeof(name), "%s%s%s", argv[i + 1], i + 2 < argc ? " " : "",
                     i + 2 < argc ? argv[i + 2] : "");
            if (find_cmd(name) || find_cmd(argv[i + 1])) {
                cli_usage(find_cmd(name) ? name : argv[i + 1], 0);
                return 0;
            }
        }
        usage_all(stdout);
        return 0;
    }
    /* "noun verb" first, then a single word */
    if (i + 1 < argc) {
        char name[128];
        snprintf(name, sizeof(name), "%s %s", argv[i], argv[i + 1]);
        const struct cli_cmd *c = find_cmd(name);
        if (c) {
            argv[i + 1] = (char *)(uintptr_t)c->name;
            return c->fn(argc - i - 1, argv + i + 1);
        }
    }
    const struct cli_cmd *c = find_cmd(argv[i]);
    if (c)
        return c->fn(argc - i, argv + i);
    /* a noun alone, or a noun with an unknown verb */
    int noun = 0;
    for (size_t k = 0; k < N_COMMANDS; k++) {
        size_t n = strlen(argv[i]);
        if (strncmp(commands[k].name, argv[i], n) == 0 && commands[k].name[n] == ' ') {
            if (!noun)
                fprintf(stderr, "track: %s needs a verb:\n", argv[i]);
            fprintf(stderr, "  track %-18s %s\n", commands[k].name, commands[k].summary);
            noun = 1;
        }
    }
    if (!noun)
        fprintf(stderr, "track: unknown command \"%s\" (see track --help)\n", argv[i]);
    return EXIT_USAGE;
}
