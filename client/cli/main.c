/*
 * main.c: the `track` command. One table maps "noun verb" (or a single
 * word) to the function that runs it, its usage text and its help: what
 * each option does and its default, more words, examples. --help, `track
 * help ...` and the command list come from the same table, so a new command
 * is one file and one row. `track help COMMAND` runs the command itself with
 * --help, so the help lists the long options it really takes and marks any
 * the table forgot. Unknown commands, verbs and options get git's "did you
 * mean" (cli_edit_distance in util.c); `track help filter` documents the
 * search language of storage/filter.c.
 *
 * Global options may stand before the command: track [--server URI]
 * [--run RUN] [--json] COMMAND ...; each command accepts them too.
 */
#include "cli.h"

#include <string.h>

/* One option of a command, as its help shows it: "--step N" and what it
 * does, its default included. */
struct cli_optdoc {
    const char *opt;
    const char *text;
};

struct cli_cmd {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *args;
    const char *summary;
    const struct cli_optdoc *opts; /* {NULL} ends; every long option of the command */
    const char *about;             /* more on what it does, or NULL */
    const char *examples;          /* one per line */
};

#define OPTS(...) ((const struct cli_optdoc[]){__VA_ARGS__, {NULL, NULL}})
#define NO_OPTS   ((const struct cli_optdoc[]){{NULL, NULL}})

static const struct cli_cmd commands[] = {
    {"experiment create", cmd_experiment_create, "NAME", "create an experiment", NO_OPTS,
     "Prints the new experiment's id. A run started with --experiment NAME creates it as well; "
     "an existing NAME is an ALREADY_EXISTS error (exit 1).",
     "track experiment create mnist\n"},
    {"experiment list", cmd_experiment_list, "[--json]", "list experiments with run counts",
     NO_OPTS, "One line per experiment: id, name, number of runs, creation time.",
     "track experiment list\ntrack experiment list --json\n"},
    {"run start", cmd_run_start,
     "[--experiment NAME] [--name NAME] [--param K=V]... [--tag K=V]... [--parent RUN] "
     "[--export]",
     "start a run and print its id (--export: as `export TRACK_RUN_ID=...`)",
     OPTS({"--experiment NAME", "the run's experiment, created if new (default: Default)"},
          {"--name NAME", "the run's name (default: a generated adjective-noun-NN)"},
          {"--param K=V", "a param (immutable), repeatable (default: none)"},
          {"--tag K=V", "a tag (mutable), repeatable (default: none)"},
          {"--parent RUN", "the parent run, for sweeps and lineage (default: none)"},
          {"--export", "print `export TRACK_RUN_ID=ID`, for eval in a shell (default: the id "
                       "alone)"}),
     "Later commands find the run through --run RUN or TRACK_RUN_ID.",
     "eval \"$(track run start --experiment mnist --param lr=0.01 --export)\"\n"
     "track run start --name baseline --tag stage=pretrain\n"},
    {"run end", cmd_run_end, "[--run RUN] [--status finished|failed|killed]",
     "end a run (default status finished)",
     OPTS({"--status S", "finished, failed or killed, in any case (default finished)"}),
     "Ends the run named by --run or TRACK_RUN_ID.",
     "track run end\ntrack run end --run 3f2a --status failed\n"},
    {"run list", cmd_run_list, "[--experiment NAME]... [--limit N] [--json]",
     "list runs, newest first",
     OPTS({"--experiment NAME", "only runs of this experiment, repeatable (default: all)"},
          {"--limit N", "at most N runs, 1 to 100000 (default: all, up to 100000)"}),
     "For search, sorting and metric columns see `track runs`.",
     "track run list --experiment mnist --limit 20\n"},
    {"run show", cmd_run_show, "RUN [--json]", "show a run: params, tags, metric summaries",
     NO_OPTS,
     "RUN is an id or a unique prefix of 4 or more hex characters (default: --run or "
     "TRACK_RUN_ID). Tables show values to about 6 significant digits; --json has them in "
     "full.",
     "track run show 3f2a\ntrack run show 3f2a --json\n"},
    {"run delete", cmd_run_delete, "RUN [--json]",
     "delete a run (soft: restorable until `track gc` removes it)", NO_OPTS,
     "The run leaves `track runs`, `run list` and `compare` (a filter on lifecycle still finds "
     "it: --filter \"lifecycle = 'deleted'\"); `run show` still shows it, marked deleted. "
     "Logging into it is refused (CONFLICT naming the run). `track gc` removes it for good "
     "once it has been deleted longer than the grace period (default 7 days). Deleting a "
     "deleted run again changes nothing.",
     "track run delete 3f2a\ntrack runs --filter \"lifecycle = 'deleted'\"\n"},
    {"run restore", cmd_run_restore, "RUN [--json]", "bring back a deleted run", NO_OPTS,
     "Until `track gc` has removed it, a deleted run comes back whole: params, tags, metrics, "
     "artifacts.",
     "track run restore 3f2a\n"},
    {"log-param", cmd_log_param, "[--run RUN] K=V...", "log params (immutable)", NO_OPTS,
     "The same value again is fine; a different one is a CONFLICT error naming both values. "
     "Logging into a run that has ended works, with a warning naming the run and its status.",
     "track log-param lr=0.01 batch=64 optimizer=adam\n"},
    {"tag", cmd_tag, "[--run RUN] K=V...", "set tags (mutable)", NO_OPTS,
     "A tag set again takes the new value. Tags named sys.* are written by track itself.",
     "track tag stage=finetune note='first try'\n"},
    {"log-metric", cmd_log_metric, "[--run RUN] KEY VALUE [--step N] [--time MS] | --stdin",
     "log a metric point; --stdin reads lines \"KEY VALUE [STEP]\" and sends them batched",
     OPTS({"--step N", "the point's step, a whole number >= 0 (default 0)"},
          {"--time MS", "the point's time in milliseconds since the epoch (default: now)"},
          {"--stdin", "read lines \"KEY VALUE [STEP]\" from stdin instead, sent in batches; a "
                      "line without STEP takes its key's next step (0, 1, 2, ...), a line "
                      "starting with # is skipped, the first bad line stops with its number "
                      "(default: KEY VALUE from the arguments)"}),
     "VALUE and STEP are plain decimal numbers: 0.31, -2, 1e-4 (no hex, no blanks around "
     "them). VALUE may also be nan, inf or -inf (any case): NaN and +-Inf are legitimate "
     "metric values and are stored as they are. Logging into a run that has ended works, with "
     "a warning naming the run and its status. With trackd unreachable the point is spooled "
     "(exit 0, one warning) and `track sync` delivers it.",
     "track log-metric loss 0.31 --step 120\n"
     "track log-metric val_acc nan --step 3\n"
     "printf 'loss 0.30 121\\nacc 0.91 121\\n' | track log-metric --stdin\n"},
    {"metric history", cmd_metric_history, "RUN KEY [--json|--csv]",
     "print every point of a metric",
     OPTS({"--csv", "CSV with the columns step,timestamp,value, values in full (default: a "
                    "table)"}),
     "Points come in logged order. The table shows values to about 6 significant digits; "
     "--csv and --json have them in full, the time as `timestamp` (ms since the epoch).",
     "track metric history 3f2a loss\ntrack metric history 3f2a loss --csv > loss.csv\n"},
    {"exec", cmd_exec,
     "[--experiment NAME] [--name NAME] [--param K=V]... [--tag K=V]... "
     "[--system-metrics[=SECONDS]] -- CMD [ARGS...]",
     "run CMD inside a new run: records the command, git state and exit status",
     OPTS({"--experiment NAME", "the run's experiment (default: Default)"},
          {"--name NAME", "the run's name (default: generated)"},
          {"--param K=V", "a param of the run, repeatable (default: none)"},
          {"--tag K=V", "a tag of the run, repeatable (default: none)"},
          {"--system-metrics[=SECONDS]",
           "sample CMD's process tree, the host and NVIDIA GPUs every SECONDS (0.1 to "
           "86400; 5 when given alone) as system/... metrics (default: off)"}),
     "CMD gets TRACK_RUN_ID and TRACK_SERVER in its environment. Tags recorded: sys.command, "
     "sys.cwd, sys.host, and in a git work tree sys.git.commit, sys.git.branch, sys.git.dirty; "
     "sys.exit_code at the end (the user is the run's user field). The run ends FINISHED on "
     "exit 0, FAILED otherwise, KILLED on a signal; track exits with CMD's status (128+N for "
     "signal N). --system-metrics logs, with step = the sample number: system/cpu_percent "
     "(CMD and its descendants, 100 = one core), system/rss_bytes, system/threads, "
     "system/mem_used_bytes, system/mem_available_bytes, system/disk_read_bytes_per_s, "
     "system/disk_write_bytes_per_s, system/net_rx_bytes_per_s, system/net_tx_bytes_per_s "
     "(the host's), and system/gpuN_util_percent, system/gpuN_mem_used_bytes when "
     "libnvidia-ml.so.1 loads (else one info line, no GPU metrics).",
     "track exec --experiment sweep --param lr=0.01 -- ./train --lr 0.01\n"},
    {"runs", cmd_runs,
     "[--experiment NAME]... [--filter EXPR] [--order-by EXPR] [--limit N] [--json|--csv] "
     "[--full-ids]",
     "search runs: filter by metrics, params, tags and attributes; sort; list",
     OPTS({"--experiment NAME", "only runs of this experiment, repeatable (default: all)"},
          {"--filter EXPR", "only runs matching EXPR, see `track help filter` (default: all)"},
          {"--order-by EXPR", "sort by terms, each ASC or DESC, comma-separated (default: "
                              "newest first)"},
          {"--limit N", "at most N runs, 1 to 100000 (default: the first 100 in the table, "
                        "with a note when more match; all, up to 100000, with --csv or "
                        "--json)"},
          {"--csv", "CSV: every param and metric (last value) of the runs, in full (default: "
                    "a table)"},
          {"--full-ids", "show whole 32-character run ids (default: 8 characters, as git's "
                         "short hashes)"}),
     "The table shows the terms the filter and order-by mention, then the params and metrics "
     "whose values differ between the listed runs, as many as fit the terminal (COLUMNS, else "
     "the terminal's width, else 80); long names shrink with an ellipsis in the middle. "
     "--json prints whole run objects.",
     "track runs --experiment mnist --order-by 'metrics.val_loss ASC' --limit 10\n"
     "track runs --filter \"params.opt = 'adam' and metrics.loss < 0.5\"\n"
     "track runs --filter 'status = \"RUNNING\" and start_time > 1d' --csv\n"},
    {"compare", cmd_compare,
     "RUN RUN... | --filter EXPR [--experiment NAME] [--metric KEY]... [--all-params] "
     "[--goal KEY=min|max]... [--format table|markdown|csv|json] [--columns runs|metrics] "
     "[--plot FILE.svg [--smooth K] [--log-y] [--x step|time|relative]]",
     "compare runs side by side: params that differ, metrics with the best marked",
     OPTS({"--filter EXPR", "compare the runs matching EXPR (`track help filter`) instead of "
                            "RUN arguments"},
          {"--experiment NAME", "compare the runs of this experiment, repeatable"},
          {"--metric KEY", "show this metric, repeatable (default: every metric of the runs)"},
          {"--all-params", "show every param (default: only those that differ)"},
          {"--goal KEY=min|max", "whether lower or higher is best for KEY, repeatable "
                                 "(default min)"},
          {"--format F", "table, markdown, csv or json (default table; --json is json)"},
          {"--plot FILE.svg", "also write the metric curves as an SVG file (default: none)"},
          {"--smooth K", "with --plot: draw an exponential moving average of weight K, 0 to "
                         "below 1 (TensorBoard's debiased smoothing), the raw curve faint behind "
                         "(default 0: none)"},
          {"--log-y", "with --plot: a logarithmic y axis; values <= 0 are skipped and noted "
                      "(default: linear)"},
          {"--x X", "with --plot: step, time (wall clock) or relative (seconds since each "
                    "run's start) on the x axis (default step)"},
          {"--columns C", "runs: a column per run (blocks folded to the terminal's width); "
                          "metrics: a row per run and a column per param and metric, its last "
                          "value (default: whichever needs fewer blocks, runs on a tie; table "
                          "format only)"}),
     "2 to 50 runs. The best run of each metric (by its last value) is marked *. When a run "
     "has LLM traces (tied by track.run_id), rows of their count, latency p50 and p95 (nearest "
     "rank), tokens in, out and total, cost and error rate follow the metrics; json has a "
     "traces object per run, null without. Tables show values to about 6 significant digits; "
     "csv and json have them in full.",
     "track compare 3f2a 9bc1 77d0\n"
     "track compare --experiment mnist --goal val_acc=max --plot mnist.svg\n"
     "track compare --experiment sweep --plot sweep.svg --smooth 0.9 --log-y\n"
     "track compare --filter \"params.opt = 'adam'\" --format markdown\n"},
    {"watch", cmd_watch, "[RUN] [--metric KEY]... [--interval MS]",
     "live view of a running run (one line per update without a terminal)",
     OPTS({"--metric KEY", "show this metric, repeatable (default: every metric)"},
          {"--interval MS", "refresh every MS milliseconds, 50 to 60000 (default 250)"}),
     "RUN defaults to --run or TRACK_RUN_ID. q quits; the view ends when the run ends.",
     "track watch 3f2a --metric loss --metric val_acc\n"},
    {"export", cmd_export,
     "(--experiment NAME | RUN...) --format csv|jsonl|json [--history] [-o FILE]",
     "export runs with params, tags and metric summaries (--history: every point)",
     OPTS({"--experiment NAME", "export the runs of this experiment, repeatable"},
          {"--format F", "csv, jsonl or json (required; --json means json)"},
          {"--history", "add every metric point (default: summaries only)"},
          {"--output FILE", "write FILE, atomically (also -o FILE; default: stdout)"}),
     "Values are written in full precision; NaN and +-Inf as in the JSON conventions.",
     "track export --experiment mnist --format csv -o mnist.csv\n"
     "track export 3f2a --format jsonl --history > run.jsonl\n"},
    {"gc", cmd_gc, "[--dry-run] [--grace DURATION] [--json]",
     "remove runs deleted before the grace period, then blobs nothing live references",
     OPTS({"--dry-run", "print what would go (runs, blobs) and how many bytes, remove nothing "
                        "(default: remove)"},
          {"--grace DURATION", "only runs deleted longer ago than this: 0, or e.g. 30s, 5m, 2h, "
                               "7d, 1h30m (default 7d)"}),
     "Runs go with their params, tags, metrics and artifact rows, a few hundred rows per "
     "transaction, so logging by other clients goes on meanwhile. A run that a model version "
     "was made from stays (deleted). Then every blob that no active run, no run inside the "
     "grace period and no model version references is removed, except one an upload "
     "commits or pins while gc runs: that one is always kept.",
     "track gc --dry-run\ntrack gc\ntrack gc --grace 0 --json\n"},
    {"lineage", cmd_lineage, "RUN | NAME@ALIAS | NAME/VERSION [--json]",
     "where a run came from and what came of it: parents, children, commit, artifacts, models",
     NO_OPTS,
     "Prints the run, its git commit and command (the sys.git.commit and sys.command tags "
     "`track exec` records), its parent chain up to the root, its child runs, its artifacts "
     "with their digests and the model versions made from it. RUN is an id or a unique prefix "
     "(default: --run or TRACK_RUN_ID). A model version (NAME@ALIAS or NAME/VERSION) shows "
     "the lineage of the run it was registered from, after a line naming the version, its "
     "path and pinned digest (--json: one more key, \"model_version\": {\"model\", "
     "\"version\", \"digest\"}). --json's shape is in README.md (Lineage).",
     "track lineage 3f2a\ntrack lineage 3f2a --json\ntrack lineage iris@production\n"},
    {"traces", cmd_traces,
     "[--experiment NAME]... [--run RUN] [--filter EXPR] [--min-tokens N] [--min-duration D] "
     "[--errors] [--limit N] [--json|--csv]",
     "list the traces OTLP exporters sent (newest first): duration, spans, tokens, cost, model",
     OPTS({"--experiment NAME", "only this experiment's traces, repeatable (default: all)"},
          {"--filter EXPR", "only traces matching EXPR over duration, status, spans, errors, "
                            "cost, tokens.input/output/total, model, name, experiment, "
                            "attributes.KEY (default: all)"},
          {"--min-tokens N", "only traces of at least N tokens in all (default 0)"},
          {"--min-duration D", "only traces lasting at least D: 250ms, 2s (default 0)"},
          {"--errors", "only traces with a span in error"},
          {"--limit N", "at most N traces, 1 to 10000 (default 50)"},
          {"--csv", "CSV, values in full"}),
     "Traces reach trackd at its HTTP front's /v1/traces (`trackd --http`; README \"Traces\"). "
     "--run (or TRACK_RUN_ID) keeps the traces tied to that run (the track.run_id attribute).",
     "track traces --experiment chatbot --min-tokens 1000\ntrack traces --errors --json\n"
     "track traces --filter \"duration > 2s and model = 'gpt-4o'\"\n"
     "track traces --filter \"status = 'error' or attributes.user.tier = 'pro'\"\n"},
    {"trace export", cmd_trace_export,
     "--format jsonl [--experiment NAME]... [--run RUN] [--filter EXPR] [--min-tokens N] "
     "[--errors] [-o FILE]",
     "write traces with all their spans, a JSON line a trace, newest first",
     OPTS({"--format jsonl", "the format: one JSON object a line (required)"},
          {"--experiment NAME", "only this experiment's traces, repeatable (default: all)"},
          {"--filter EXPR", "only traces matching EXPR, as `track traces --filter`"},
          {"--min-tokens N", "only traces of at least N tokens (default 0)"},
          {"--errors", "only traces with a span in error"},
          {"--output FILE", "write FILE, atomically (also -o FILE; default: stdout)"}),
     "Each line is `track trace show --json`'s object: the trace's rollups and its span_list. "
     "Pages go by start time, so two traces that started in the same nanosecond at a page's "
     "edge may be written once only.",
     "track trace export --format jsonl --experiment chatbot -o chatbot.jsonl\n"},
    {"trace show", cmd_trace_show, "TRACE [--depth N] [--json]",
     "print one trace as its span tree: duration bar, model, tokens, cost, errors",
     OPTS({"--depth N", "levels shown below the roots, 1 to 1000 (default 64)"}),
     "Spans come in start order under their parent; a span with more than 50 children shows "
     "the first 20 and the last 5 and says how many are between. A span whose parent never "
     "arrived is shown as a root. --json gives the trace and every span with its attributes.",
     "track trace show 4bf92f3577b34da6a3ce929d0e0e4736\n"},
    {"eval", cmd_eval,
     "[--run RUN] --labels FILE --predictions FILE [--column NAME] [--labels-column NAME]"
     " [--predictions-column NAME] [--average macro|micro|weighted]"
     " [--prefix eval.] [--step N] [--json]",
     "score predictions against labels: accuracy, precision, recall, F1, confusion matrix",
     OPTS({"--labels FILE", "the true class of each sample, one per line (or a CSV: --column)"},
          {"--predictions FILE", "the predicted class of each sample, in the same order"},
          {"--column NAME", "read both files as CSV with a header, taking column NAME"},
          {"--labels-column NAME", "the labels' CSV column (overrides --column)"},
          {"--predictions-column NAME", "the predictions' CSV column (overrides --column); "
                                        "with both, one CSV may hold labels and predictions"},
          {"--average MODE", "the average logged as PREFIX{precision,recall,f1}: macro (default), "
                             "micro or weighted; all three are printed"},
          {"--prefix P", "metric key prefix (default \"eval.\"); the matrix goes to "
                         "P/confusion_matrix.csv"},
          {"--step N", "the step of the logged metrics (default 0)"}),
     "Definitions are scikit-learn's: precision tp/(tp+fp), recall tp/(tp+fn), F1 "
     "2tp/(2tp+fp+fn), support the true samples of a class; macro is the mean over classes, "
     "weighted the mean weighted by support, micro the figures of all samples together. A class "
     "never predicted (or never true) has precision (or recall) 0/0: taken as 0, with a warning "
     "naming the class. Classes are every label in either file, in byte order. With a run "
     "(--run or TRACK_RUN_ID) the figures are logged as metrics (PREFIXaccuracy, "
     "PREFIXprecision, PREFIXrecall, PREFIXf1 and PREFIX{precision,recall,f1}.CLASS) and the "
     "confusion matrix (rows true, columns predicted) is stored as a CSV artifact. Files may "
     "start with a UTF-8 byte order mark and end lines with CRLF; a blank line before a label, "
     "a control character, a label over 256 bytes, a ragged CSV row or differing counts are "
     "errors naming the file and line.",
     "track eval --labels y_true.txt --predictions y_pred.txt\n"
     "track eval --run 3f2a --labels test.csv --predictions pred.csv --column species\n"
     "track eval --labels y.txt --predictions p.txt --average weighted --json\n"
     "track eval --labels val.csv --labels-column true --predictions val.csv "
     "--predictions-column predicted\n"},
    {"status", cmd_status, "[--json]", "server version, uptime, data directory and counts", NO_OPTS,
     NULL, "track status\ntrack status --json\n"},
    {"sync", cmd_sync, "", "deliver writes spooled while trackd was unreachable", NO_OPTS,
     "Any successful write delivers the spool too; sync does it on its own.", "track sync\n"},
    {"keygen", cmd_keygen, "[--show] [--json]",
     "make this user's key for sealed tcp:// servers and print its public key",
     OPTS({"--show", "print the public key of the existing key instead of making one"}),
     "Writes the secret key to $TRACK_KEY, else $XDG_CONFIG_HOME/track/key (~/.config/track/key), "
     "mode 0600, and never overwrites one. Give the printed public key (trk1:...) to the "
     "server's admin: track admin user add NAME --key KEY --role writer.",
     "track keygen\ntrack keygen --show\n"},
    {"config set", cmd_config_set, "server URI [--server-key KEY]",
     "set the default server and pin its public key",
     OPTS({"--server-key KEY",
           "the server's public key (trk1:..., from trackd --print-public-key); "
           "required for tcp://"}),
     "Writes $XDG_CONFIG_HOME/track/config (~/.config/track/config, 0600). Every track command "
     "and libtrack program without --server or TRACK_SERVER then talks to URI; a tcp:// server "
     "must answer with the pinned key, else the client refuses it (server key mismatch).",
     "track config set server tcp://tracker.lab:7171 --server-key trk1:...\n"},
    {"config show", cmd_config_show, "[--json]",
     "show the client config, key and pinned server key", NO_OPTS,
     "Prints the config file's path, the server, its pinned key, the client key's path and "
     "public key.",
     "track config show\ntrack config show --json\n"},
    {"backup", cmd_backup, "FILE",
     "consistent online copy of the database while writes go on (trackd --restore FILE)", NO_OPTS,
     "trackd makes a snapshot and streams it; this command writes FILE (which must not exist) "
     "with your rights, checked against the snapshot's digest, fsynced, then linked into "
     "place, so a killed backup never leaves a partial FILE. Artifacts' files live in the "
     "data directory's blobs/, which the backup names: copy it after the backup.",
     "track backup /var/backups/track-$(date +%F).db\n"},
    {"artifact put", cmd_artifact_put, "[--run RUN] FILE|DIR [--as PATH]",
     "store a file or a directory with a run (each file once, by its digest)",
     OPTS({"--as PATH", "the artifact path in the run (default: FILE's or DIR's last segment); "
                        "a directory's files go under PATH/, keeping their structure"}),
     "A file the daemon already holds, from any run, sends no bytes: a file is hashed "
     "(BLAKE2b-256) first, except one of 4 MiB or more whose size no stored blob has, which "
     "trackd hashes as it arrives (one pass instead of two). Files move in chunks of 1 MiB; "
     "an upload cut short resumes from what arrived when run again. The run's row appears "
     "only once the whole file is stored (and synced, with trackd --durability full). Artifact "
     "paths are relative, '/'-separated, without '..', '.' or empty segments "
     "or backslashes, at most 1024 bytes. A symbolic link inside DIR is stored as the file it "
     "points to when that stays inside DIR, and refused (nothing stored) otherwise. The same "
     "PATH again with another file replaces it.",
     "track artifact put model.pt\n"
     "track artifact put --run 3f2a checkpoints/ --as ckpt\n"
     "track artifact put preds.csv --as eval/preds.csv\n"},
    {"artifact list", cmd_artifact_list, "[RUN] [--json]",
     "list a run's artifacts: path, size, digest, logged time", NO_OPTS,
     "RUN defaults to --run or $TRACK_RUN_ID. Paths are listed in byte order; --json gives the "
     "full digests.",
     "track artifact list 3f2a\ntrack artifact list --json\n"},
    {"artifact get", cmd_artifact_get, "[RUN] PATH [-o OUT] [--fsync]",
     "fetch an artifact: a file, or every file under PATH/ (a directory)",
     OPTS({"--output OUT", "-o OUT: where to write (default: PATH's last segment in the current "
                           "directory); a file goes into OUT when OUT is an existing directory, "
                           "a directory's files go into OUT, created when missing"},
          {"--fsync", "fsync each file before renaming it into place, so that it survives a "
                      "power loss once the command returns (off: as cp, it is on disk when the "
                      "kernel writes it back)"}),
     "RUN defaults to --run or $TRACK_RUN_ID. Each file is written as NAME.tmp, checked "
     "against its digest while it arrives, and renamed into place (fsynced first with "
     "--fsync): a mismatch is an error and nothing is kept. Nothing is written outside OUT, "
     "whatever the stored paths, "
     "and no symbolic link below OUT is followed.",
     "track artifact get 3f2a model.pt\n"
     "track artifact get 3f2a ckpt -o /tmp/ckpt\n"
     "track artifact get eval/preds.csv -o preds.csv\n"},
    {"artifact verify", cmd_artifact_verify, "[RUN] [--json]",
     "re-hash the blobs a run's artifacts point at (daemon side)", NO_OPTS,
     "RUN defaults to --run or $TRACK_RUN_ID; without either, every run's artifacts. Each "
     "blob is read back and hashed by trackd; an artifact whose blob is missing or does not "
     "match its digest is printed and the exit status is 1.",
     "track artifact verify 3f2a\ntrack artifact verify\n"},
    {"feedback add", cmd_feedback_add,
     "[--run RUN] [--target ID | --trace TRACE [--span SPAN]] NAME [VALUE] [--comment TEXT] "
     "[--rationale TEXT] [--source human|llm_judge|code] [--by NAME]",
     "record a judgement of a run, of a target inside it (a sample id, an artifact path), or "
     "of a trace or one of its spans",
     OPTS({"--target ID", "what inside the run is judged: a sample id or an artifact path, 1 "
                          "to 1024 bytes (default: the run itself)"},
          {"--trace TRACE", "judge a trace (32 hex, `track traces`): its run, if it has one, "
                            "holds the score (default: a run)"},
          {"--span SPAN", "judge one span of --trace (16 hex, `track trace show --json`)"},
          {"--comment TEXT", "free text beside the value, or alone without a VALUE, at most "
                             "64 KiB (default: none)"},
          {"--rationale TEXT", "why: a judge's reasoning, at most 64 KiB (default: none)"},
          {"--source S", "human, llm_judge or code (default: human)"},
          {"--by NAME", "who judged: a person, a judge model, a script (default: $USER)"}),
     "VALUE true, false, yes or no (any case) is a boolean; a decimal number (1 and 0 "
     "included) is a number, which must be finite (NaN and infinities are refused); anything "
     "else is a label of 1 to 250 bytes without control characters. NAME is a key like a "
     "metric's and keeps the type of its first value: another type is a CONFLICT naming both. "
     "The run must exist (NOT_FOUND naming it); the target is any id inside it. With trackd "
     "away the score is spooled (exit 0, one warning).",
     "track feedback add helpfulness 4 --target sample-17 --comment 'clear, a bit long'\n"
     "track feedback add correct true --target eval/answers/17.txt --source code --by grader.py\n"
     "track feedback add tone warm --source llm_judge --by gpt-judge --rationale 'polite'\n"
     "track feedback add note --comment 'retry with a lower lr'\n"},
    {"feedback list", cmd_feedback_list,
     "[RUN] [--experiment NAME] [--trace TRACE] [--target ID] [--name NAME] [--json]",
     "list the judgements of a run (or of every run of an experiment, or of a trace), by target",
     OPTS({"--experiment NAME", "every active run of this experiment instead of one run "
                                "(default: RUN, --run or TRACK_RUN_ID)"},
          {"--trace TRACE", "the scores of this trace and of its spans instead, with or without "
                            "a run (32 hex digits), in the order they were added"},
          {"--target ID", "only scores of this target (default: all)"},
          {"--name NAME", "only scores of this name (default: all)"}),
     "Scores come in run, target and logged order. --json has README's \"Feedback\" shape, "
     "values typed (number, boolean, string, or null for a comment alone).",
     "track feedback list 3f2a\ntrack feedback list --experiment chat --name helpfulness --json\n"},
    {"feedback summary", cmd_feedback_summary, "(RUN | --experiment NAME) [--by-target] [--json]",
     "count, mean, distribution, true ratio and label counts per feedback name",
     OPTS({"--experiment NAME", "merge every active run of this experiment (default: RUN, "
                                "--run or TRACK_RUN_ID)"},
          {"--by-target", "one line per run, target and name (default: one per name)"}),
     "Numbers show their count, mean, min, max and distribution (each distinct value with "
     "its count, or ten equal bins past 32 distinct values); booleans their true ratio; labels "
     "their counts, most frequent first. The per-run means and true ratios are what "
     "`feedback.NAME` compares in `track runs --filter` and --order-by, and what `track "
     "compare` shows.",
     "track feedback summary 3f2a\ntrack feedback summary --experiment chat --by-target --json\n"},
    {"feedback export", cmd_feedback_export,
     "--experiment NAME [--name NAME] --format jsonl|csv [-o FILE]",
     "export an experiment's judgements, one record per target, for the next fine-tuning set",
     OPTS({"--experiment NAME", "the experiment whose active runs are exported (required)"},
          {"--name NAME", "only scores of this name (default: all)"},
          {"--format F", "jsonl (one JSON object per line) or csv (required)"},
          {"--output FILE", "-o FILE: write there (default: stdout)"}),
     "Each record: run_id, run_name, target, the run's params, the target's text when the "
     "target is an artifact path of the run holding text (at most 64 KiB: text_truncated says "
     "when it was cut; text_bytes is its full size), and the target's scores (name, kind, "
     "value, comment, rationale, source, source_id, time). CSV has one row per target with "
     "params and scores as JSON text. See README \"Feedback\".",
     "track feedback export --experiment chat --format jsonl -o judged.jsonl\n"
     "track feedback export --experiment chat --name helpfulness --format csv > h.csv\n"},
    {"model register", cmd_model_register,
     "NAME --run RUN --path ARTIFACT_PATH [--description TEXT] [--tag K=V]...",
     "register a run's artifact as the next version of model NAME and print NAME/VERSION",
     OPTS({"--path PATH", "the artifact's path in the run (required, no default)"},
          {"--description TEXT", "what this version is (default: empty)"},
          {"--tag K=V", "a tag of the version, repeatable (default: none)"}),
     "The run holding the artifact is --run RUN (default: TRACK_RUN_ID; one is required). "
     "NAME is 1 to 250 letters, digits, _ - or . and is created at its first register. "
     "Versions number 1, 2, 3... per model. A version pins the run, the path and the "
     "artifact's digest and size at register time: replacing the artifact later does not "
     "change it. An unknown run or path is NOT_FOUND naming it.",
     "track model register iris --run 3f2a --path weights.bin\n"
     "track model register iris --run 3f2a --path weights.bin --description 'C=1' "
     "--tag data=v2\n"},
    {"model list", cmd_model_list, "[--json]", "list models with their versions and aliases",
     NO_OPTS, "One line per model: name, number of versions, latest version, aliases.",
     "track model list\ntrack model list --json\n"},
    {"model show", cmd_model_show, "NAME [--json]",
     "show a model: its versions, aliases and the history of every alias move", NO_OPTS,
     "The alias history is printed oldest first: when, alias, from and to version, who.",
     "track model show iris\ntrack model show iris --json\n"},
    {"model alias", cmd_model_alias, "NAME ALIAS VERSION",
     "point ALIAS (production, staging, candidate...) of model NAME at VERSION", NO_OPTS,
     "VERSION is a version number or another alias of the model (`track model alias iris "
     "production staging` promotes what staging points at). ALIAS is letters, digits, _ and -, "
     "not all digits. Every move is kept with who made it ($USER) and when; a version that "
     "does not exist is NOT_FOUND naming it.",
     "track model alias iris production 3\ntrack model alias iris production staging\n"},
    {"model tag", cmd_model_tag, "NAME[/VERSION] K=V",
     "set a tag on a model, or on one of its versions", NO_OPTS,
     "NAME tags the model; NAME/VERSION or NAME@ALIAS tags that version. A tag set again takes "
     "the new value.",
     "track model tag iris owner=ml-team\ntrack model tag iris/3 validated=yes\n"
     "track model tag iris@production reviewed=2026-12-01\n"},
    {"model get", cmd_model_get, "NAME@ALIAS | NAME/VERSION [-o DIR] [--json]",
     "resolve a model version to its run, artifact path, digest and size; -o fetches it",
     OPTS({"--output DIR", "-o DIR: download the version's file into DIR (created when "
                           "missing), named as its artifact path's last segment (default: "
                           "download nothing, print where the bytes are)"}),
     "Without -o, prints the version and the `track artifact get` command that downloads the "
     "run's artifact. With -o, the bytes fetched are the version's own: the blob of the digest "
     "pinned at register time, even when the run's artifact at that path was replaced since. "
     "The file is written as NAME.tmp, checked against that digest and size, and "
     "renamed; a mismatch is an error and nothing is kept. A DIR that exists and is not a "
     "directory is an error.",
     "track model get iris@production\ntrack model get iris/3 --json\n"
     "track model get iris@production -o /srv/models/iris\n"},
    {"whoami", cmd_whoami, "[--json]",
     "who trackd takes you for: name, role, local or key, and the experiments you can see", NO_OPTS,
     "A local caller (over the ipc socket) is the daemon's owner, with every permission; a "
     "sealed tcp:// caller is the user holding the client's key. Each experiment the caller "
     "may see is listed with its level: read, write or manage (README: Roles and grants).",
     "track whoami\ntrack whoami --json\n"},
    {"admin user add", cmd_admin_user_add, "NAME --role reader|writer|admin [--key PUBKEY]",
     "add a user with a role and (optionally) the public key they connect with",
     OPTS({"--role ROLE", "reader, writer or admin (required)"},
          {"--key PUBKEY", "the user's sealed-TCP public key, trk1:... text as `track keygen` "
                           "prints it (default: none yet; set it later with set-key)"}),
     "Admin role only, as every `track admin` command. Names are 1 to 64 letters, digits and "
     "_ - . (not starting with - or .). A key belongs to one user at most.",
     "track admin user add bob --role reader --key trk1:...\n"},
    {"admin user list", cmd_admin_user_list, "[--json]", "list users, their roles and keys",
     NO_OPTS, NULL, "track admin user list\ntrack admin user list --json\n"},
    {"admin user remove", cmd_admin_user_remove, "NAME",
     "remove a user with their grants and tokens (their audit rows stay)", NO_OPTS, NULL,
     "track admin user remove bob\n"},
    {"admin user set-key", cmd_admin_user_set_key, "NAME KEY",
     "replace a user's public key (KEY none: remove it)", NO_OPTS, NULL,
     "track admin user set-key bob trk1:...\n"},
    {"admin user set-role", cmd_admin_user_set_role, "NAME ROLE",
     "change a user's role (reader, writer or admin); counts from their next request", NO_OPTS,
     NULL, "track admin user set-role bob writer\n"},
    {"admin grant", cmd_admin_grant, "NAME EXPERIMENT read|write|manage",
     "give a user a level on an experiment, which becomes restricted", NO_OPTS,
     "An experiment with no grants is open: a reader reads it, a writer writes it, an admin "
     "manages it. With one grant or more it is restricted: only its grantees, at their granted "
     "level (above or below their role), and admins may see or touch it; to everyone else its "
     "runs do not exist. Manage adds deleting and restoring runs. Counts from the next request.",
     "track admin grant bob iris write\n"},
    {"admin revoke", cmd_admin_revoke, "NAME EXPERIMENT",
     "take a user's grant on an experiment away (the last one makes it open again)", NO_OPTS, NULL,
     "track admin revoke bob iris\n"},
    {"admin grants", cmd_admin_grants, "[NAME | --experiment EXP] [--json]",
     "list grants: of one user, on one experiment, or all",
     OPTS({"--experiment EXP", "only the grants on this experiment (default: all)"}), NULL,
     "track admin grants\ntrack admin grants bob\ntrack admin grants --experiment iris --json\n"},
    {"admin token create", cmd_admin_token_create, "NAME [--expires DURATION] [--json]",
     "make a bearer token for a user (for the HTTP front), printed once",
     OPTS({"--expires DURATION", "lifetime, e.g. 90d or 12h, or never (default: never)"}),
     "The token (trkt_ and 43 characters) is made here from libsodium's random bytes; only its "
     "BLAKE2b-256 hash is sent to trackd and kept. It is printed this once on stdout.",
     "track admin token create bob --expires 90d\n"},
    {"admin token list", cmd_admin_token_list, "NAME [--json]",
     "list a user's tokens: id, creation, expiry (never the tokens)", NO_OPTS, NULL,
     "track admin token list bob\n"},
    {"admin token revoke", cmd_admin_token_revoke, "ID", "revoke a token by its id", NO_OPTS, NULL,
     "track admin token revoke 3\n"},
    {"admin audit", cmd_admin_audit,
     "[--user NAME] [--since TIME] [--experiment EXP] [--limit N] [--prune-before TIME] [--json]",
     "the audit table: every write and admin action, and refused writes, newest first",
     OPTS({"--user NAME", "only this user's rows (default: all)"},
          {"--since TIME", "only rows from TIME on: a duration ago (7d), a date (2026-01-31, "
                           "UTC) or ms since the epoch (default: all)"},
          {"--experiment EXP", "only rows about this experiment (default: all)"},
          {"--limit N", "at most N rows (default 100)"},
          {"--prune-before TIME", "instead of listing, remove the rows older than TIME (how "
                                  "the table is kept bounded; itself audited)"}),
     "Each row: time, user (the owner's login name for a local caller), key, operation, "
     "experiment, run, a short detail and the code (OK, or why it was refused). Rows are never "
     "changed and outlive run deletion and gc; only --prune-before removes them.",
     "track admin audit --since 1d\ntrack admin audit --user bob --json\n"
     "track admin audit --prune-before 180d\n"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cli_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Writes text wrapped at 80 columns, the first line after `used` columns
 * already written, every further line indented by `indent`. */
static void put_wrapped(FILE *f, const char *text, size_t used, size_t indent)
{
    size_t col = used;
    int first = 1;

    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t wl = strcspn(p, " ");
        if (!first && col + 1 + wl > 80) {
            fprintf(f, "\n%*s", (int)indent, "");
            col = indent;
        } else if (!first) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, wl, f);
        col += wl;
        p += wl;
        first = 0;
    }
    fputc('\n', f);
}

static void put_opt(FILE *f, const char *opt, const char *text)
{
    fprintf(f, "  %-20s", opt);
    if (strlen(opt) > 20) {
        fprintf(f, "\n%*s", 22, "");
    }
    put_wrapped(f, text, 22, 22);
}

/* The doc of long option `name`: the one whose text starts "--name". */
static const struct cli_optdoc *find_doc(const struct cli_cmd *c, const char *name)
{
    size_t n = strlen(name);
    for (const struct cli_optdoc *d = c->opts; d && d->opt; d++)
        if (strncmp(d->opt, "--", 2) == 0 && strncmp(d->opt + 2, name, n) == 0 &&
            (d->opt[2 + n] == '\0' || d->opt[2 + n] == ' ' || d->opt[2 + n] == '=' ||
             d->opt[2 + n] == '['))
            return d;
    return NULL;
}

void cli_usage(const char *name, int to_stderr)
{
    FILE *f = to_stderr ? stderr : stdout;
    const struct cli_cmd *c = find_cmd(name);
    if (!c)
        return;
    if (!to_stderr) {
        cli_help(name, NULL);
        return;
    }
    fprintf(f, "usage: track %s%s%s\n(see 'track %s --help')\n", c->name, *c->args ? " " : "",
            c->args, c->name);
}

void cli_help(const char *name, const struct option *longopts)
{
    const struct cli_cmd *c = find_cmd(name);
    FILE *f = stdout;
    int any = 0;

    if (!c)
        return;
    fprintf(f, "usage: track %s%s%s\n\n", c->name, *c->args ? " " : "", c->args);
    fprintf(f, "  ");
    put_wrapped(f, c->summary, 2, 2);
    if (c->about) {
        fprintf(f, "\n  ");
        put_wrapped(f, c->about, 2, 2);
    }
    for (const struct cli_optdoc *d = c->opts; d && d->opt; d++) {
        if (!any++)
            fprintf(f, "\noptions:\n");
        put_opt(f, d->opt, d->text);
    }
    /* an option the table forgot still shows, marked, so it is noticed */
    for (const struct option *o = longopts; o && o->name; o++) {
        if (o->val == 0x100 || o->val == 0x101 || o->val == 0x102 || o->val == 'h' ||
            find_doc(c, o->name))
            continue;
        if (!any++)
            fprintf(f, "\noptions:\n");
        char opt[128];
        snprintf(opt, sizeof(opt), "--%s", o->name);
        put_opt(f, opt, "(undocumented)");
    }
    fprintf(f, "\ncommon options:\n");
    put_opt(f, "--server URI",
            "the trackd to use: ipc://PATH or tcp://HOST:PORT (default "
            "$TRACK_SERVER, else the user's own socket)");
    put_opt(f, "--run RUN",
            "the run: an id or a unique prefix of 4+ hex characters (default "
            "$TRACK_RUN_ID)");
    put_opt(f, "--json", "print JSON (default: text)");
    put_opt(f, "--help, -h", "this help");
    if (c->examples) {
        fprintf(f, "\nexamples:\n");
        for (const char *p = c->examples; *p;) {
            size_t l = strcspn(p, "\n");
            fprintf(f, "  %.*s\n", (int)l, p);
            p += l + (p[l] == '\n');
        }
    }
}

/* The filter language, as storage/filter.c compiles it. */
static void help_filter(FILE *f)
{
    fputs("usage: track runs --filter EXPR [--order-by EXPR]\n"
          "       track compare --filter EXPR\n"
          "\n"
          "  The language of run search (MLflow's, extended). Keywords, prefixes and\n"
          "  attribute names are case-insensitive; keys are not.\n"
          "\n"
          "terms:\n"
          "  metrics.KEY           a metric's last logged value (prefix also metric.)\n"
          "  min(metrics.KEY)      its smallest value; max(metrics.KEY) its largest\n"
          "  params.KEY            a param, a string (also param., parameters., parameter.)\n"
          "  tags.KEY              a tag, a string (also tag.)\n"
          "  feedback.NAME         the run's feedback: the mean of a number name, the\n"
          "                        true ratio (0..1) of a boolean one; a label name is an\n"
          "                        error (labels have no order)\n"
          "  status                RUNNING, FINISHED, FAILED or KILLED, quoted, any case\n"
          "  name                  the run's name (also run_name)\n"
          "  user                  the run's user (also user_id)\n"
          "  experiment            the experiment's name\n"
          "  run_id                the 32-hex id, any case; LIKE 'ab12%' for a prefix\n"
          "  start_time, end_time  ms since the epoch; a running run has no end_time\n"
          "  duration              ms; a running run's duration runs up to now\n"
          "  lifecycle             'active' or 'deleted' (track run delete). Deleted runs\n"
          "                        are left out unless the filter names lifecycle:\n"
          "                        lifecycle = 'deleted' lists only them\n"
          "  Attributes may also be written attributes.NAME (or attribute., attr., run.).\n"
          "  A key of letters, digits and _ - . / : is written as it is; any other key in\n"
          "  backticks or double quotes: metrics.`val loss`. Keys are 1 to 250 bytes.\n"
          "\n"
          "operators:\n"
          "  =  ==  !=  <>  <  <=  >  >=     compare with a value\n"
          "  [NOT] LIKE 'pattern'           % any text, _ one character; case-sensitive\n"
          "  [NOT] ILIKE 'pattern'          the same ignoring ASCII case\n"
          "  [NOT] IN (v1, v2, ...)         one of the values (up to 1000)\n"
          "  IS NULL, IS NOT NULL           the run lacks / has the term (NULL only here)\n"
          "  AND, OR, NOT, ( )              NOT binds tighter than AND, AND than OR\n"
          "  In patterns a backslash escapes % and _ (and itself).\n"
          "\n"
          "values:\n"
          "  'text' or \"text\"       a string; a doubled quote or \\' stands for the quote\n"
          "  12, -0.5, 1e-3         a number\n"
          "  500ms 30s 5m 2h 1d     a duration (also combined: 1h30m); compared with\n"
          "                         start_time or end_time it means that long before now:\n"
          "                         start_time > 1d is \"started in the last day\"\n"
          "\n"
          "rules:\n"
          "  metrics take numbers: = != < <= > >= IN IS. A metric whose last value is\n"
          "    NaN counts as missing there (IS NULL matches it).\n"
          "  params and tags are strings: = != IN LIKE ILIKE compare text, and a number\n"
          "    compares as the text it is written as (params.lr = 0.01 matches \"0.01\",\n"
          "    not \"1e-2\"). < <= > >= with a number compare numerically, and only values\n"
          "    that look like numbers take part; with a string they compare bytes.\n"
          "  status takes = != IN and IS NULL only.\n"
          "  name, user, experiment, run_id and lifecycle take strings only, every\n"
          "    operator.\n"
          "  start_time, end_time and duration take numbers (ms) or durations.\n"
          "  A run that lacks the metric, param or tag matches no comparison, not even !=\n"
          "  or NOT IN, nor the NOT of one: only IS NULL.\n"
          "\n"
          "order-by:\n"
          "  TERM [ASC|DESC], ...   runs lacking the value sort last either way; params\n"
          "                         and tags sort as text; then newest first\n"
          "\n"
          "limits: 65536 bytes of text, 1000 comparisons, 64 levels of nesting.\n"
          "A mistake is an error naming its column: filter: column 15: ...\n"
          "\n"
          "examples:\n"
          "  track runs --filter \"metrics.val_loss < 0.2 and params.lr >= 0.01\"\n"
          "  track runs --filter \"status = 'RUNNING' and start_time > 2h\"\n"
          "  track runs --filter \"name LIKE 'resnet%' or tags.stage IN ('ft', 'eval')\"\n"
          "  track runs --filter \"min(metrics.loss) < 0.1 and duration < 30m\"\n"
          "  track runs --order-by \"metrics.val_acc DESC, params.lr\"\n"
          "  track runs --filter \"lifecycle = 'deleted'\"\n",
          f);
}

static void usage_all(FILE *f)
{
    fprintf(f, "usage: track [--server URI] [--run RUN] [--json] COMMAND [ARGS]\n\n"
               "track is an experiment tracker; trackd stores what these commands log.\n\n"
               "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-20s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`track COMMAND --help` (or `track help COMMAND`) for a command's options,\n"
               "`track help filter` for the search language. Exit status: 0 success,\n"
               "1 error, 2 usage. Environment: TRACK_SERVER, TRACK_RUN_ID,\n"
               "TRACK_NO_AUTOSTART=1 (do not start a personal trackd), COLUMNS.\n");
}

/* Whether `word` is the noun of some "noun verb" command. */
static int is_noun(const char *word)
{
    size_t n = strlen(word);
    for (size_t k = 0; k < N_COMMANDS; k++)
        if (strncmp(commands[k].name, word, n) == 0 && commands[k].name[n] == ' ')
            return 1;
    return 0;
}

/* The verbs of a noun: "track run VERB" lines, or one comma-separated list. */
static void noun_verbs(FILE *f, const char *noun, int long_form)
{
    size_t n = strlen(noun);
    int k = 0, width = 18; /* wider for a noun with longer commands (admin user set-role) */
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strncmp(commands[i].name, noun, n) == 0 && commands[i].name[n] == ' ' &&
            (int)strlen(commands[i].name) > width)
            width = (int)strlen(commands[i].name);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strncmp(commands[i].name, noun, n) != 0 || commands[i].name[n] != ' ')
            continue;
        if (long_form)
            fprintf(f, "  track %-*s %s\n", width, commands[i].name, commands[i].summary);
        else
            fprintf(f, "%s%s", k ? ", " : "", commands[i].name + n + 1);
        k++;
    }
}

static void help_noun(FILE *f, const char *noun)
{
    fprintf(f, "usage: track %s VERB [ARGS]\n\nverbs:\n", noun);
    noun_verbs(f, noun, 1);
    fprintf(f, "\n`track %s VERB --help` for a verb's options.\n", noun);
}

/* git's answer to a word that is no command: the closest ones, if any. */
static int unknown_command(const char *word)
{
    static char cands[N_COMMANDS + 1][32]; /* first words, each once, and "help" */
    size_t nc = 0;
    int best = 99;

    for (size_t i = 0; i < N_COMMANDS; i++) {
        size_t l = strcspn(commands[i].name, " ");
        int dup = 0;
        snprintf(cands[nc], sizeof(cands[nc]), "%.*s", (int)l, commands[i].name);
        for (size_t k = 0; k < nc; k++)
            dup |= strcmp(cands[k], cands[nc]) == 0;
        if (!dup)
            nc++;
    }
    snprintf(cands[nc++], sizeof(cands[0]), "help");
    int dist[N_COMMANDS + 1];
    for (size_t k = 0; k < nc; k++) {
        dist[k] = cli_edit_distance(word, strlen(word), cands[k], strlen(cands[k]));
        best = dist[k] < best ? dist[k] : best;
    }
    fprintf(stderr, "track: '%s' is not a track command. See 'track --help'.\n", word);
    if (cli_is_close(strlen(word), best)) {
        int many = 0;
        for (size_t k = 0; k < nc; k++)
            many += dist[k] == best;
        fprintf(stderr, "\n%s\n",
                many > 1 ? "The most similar commands are" : "The most similar command is");
        for (size_t k = 0; k < nc; k++)
            if (dist[k] == best)
                fprintf(stderr, "\t%s\n", cands[k]);
    }
    return EXIT_USAGE;
}

/* "track NOUN WORD" where WORD is no verb of NOUN. */
static int unknown_verb(const char *noun, const char *verb)
{
    size_t n = strlen(noun);
    int best = 99;

    fprintf(stderr, "track: '%s' is not a verb of 'track %s'; its verbs are: ", verb, noun);
    noun_verbs(stderr, noun, 0);
    fputc('\n', stderr);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const char *v = commands[i].name + n + 1;
        if (strncmp(commands[i].name, noun, n) != 0 || commands[i].name[n] != ' ')
            continue;
        int d = cli_edit_distance(verb, strlen(verb), v, strlen(v));
        best = d < best ? d : best;
    }
    if (cli_is_close(strlen(verb), best)) {
        for (size_t i = 0; i < N_COMMANDS; i++) {
            const char *v = commands[i].name + n + 1;
            if (strncmp(commands[i].name, noun, n) == 0 && commands[i].name[n] == ' ' &&
                cli_edit_distance(verb, strlen(verb), v, strlen(v)) == best)
                fprintf(stderr, "did you mean 'track %s'?\n", commands[i].name);
        }
    }
    return EXIT_USAGE;
}

static int is_help(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* `track help [TOPIC...]`: a command's help (through the command itself, so
 * it lists the options it really takes), a noun's verbs, or the filter. */
static int help_topic(int argc, char **argv, int i)
{
    char name[128];
    static char help_arg[] = "--help";

    if (i >= argc) {
        usage_all(stdout);
        return 0;
    }
    if (strcmp(argv[i], "filter") == 0 || strcmp(argv[i], "search") == 0) {
        help_filter(stdout);
        return 0;
    }
    snprintf(name, sizeof(name), "%s%s%s", argv[i], i + 1 < argc ? " " : "",
             i + 1 < argc ? argv[i + 1] : "");
    const struct cli_cmd *c = NULL;
    if (i + 2 < argc) {
        char three[300];
        snprintf(three, sizeof(three), "%s %s", name, argv[i + 2]);
        c = find_cmd(three);
    }
    if (!c)
        c = find_cmd(name);
    if (!c && !is_noun(argv[i]))
        c = find_cmd(argv[i]);
    if (c) {
        char *args[] = {(char *)(uintptr_t)c->name, help_arg, NULL};
        optind = 1;
        return c->fn(2, args);
    }
    if (is_noun(argv[i])) {
        if (i + 1 < argc)
            return unknown_verb(argv[i], argv[i + 1]);
        help_noun(stdout, argv[i]);
        return 0;
    }
    return unknown_command(argv[i]);
}

int main(int argc, char **argv)
{
    int i = 1;

    /* global options before the command */
    while (i < argc && argv[i][0] == '-') {
        if (is_help(argv[i])) {
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
            fprintf(stderr, "track: unknown option '%s' before the command\n", argv[i]);
            fprintf(stderr, "usage: track [--server URI] [--run RUN] [--json] COMMAND [ARGS]\n"
                            "(see 'track --help')\n");
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage_all(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0)
        return help_topic(argc, argv, i + 1);
    /* "noun noun verb" (admin user add), "noun verb", then a single word */
    if (i + 2 < argc) {
        char name[128];
        snprintf(name, sizeof(name), "%s %s %s", argv[i], argv[i + 1], argv[i + 2]);
        const struct cli_cmd *c = find_cmd(name);
        if (c) {
            argv[i + 2] = (char *)(uintptr_t)c->name;
            return c->fn(argc - i - 2, argv + i + 2);
        }
    }
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
    if (!is_noun(argv[i]))
        return unknown_command(argv[i]);
    /* a noun alone, with --help, or with an unknown verb */
    if (i + 1 < argc && is_help(argv[i + 1])) {
        help_noun(stdout, argv[i]);
        return 0;
    }
    if (i + 1 < argc)
        return unknown_verb(argv[i], argv[i + 1]);
    fprintf(stderr, "track: %s needs a verb:\n", argv[i]);
    noun_verbs(stderr, argv[i], 1);
    fprintf(stderr, "(see 'track %s --help')\n", argv[i]);
    return EXIT_USAGE;
}
