/*
 * train_softmax.c: the example training program. Trains a softmax
 * regression (softmax.c) on a small CSV dataset and reports the run to
 * track through libtrack, the way a real training script would.
 *
 * This file owns the command line, the order of libtrack calls and the
 * summary line; the model and metrics belong to softmax.c, delivery and
 * spooling to libtrack.
 *
 * The run: under `track exec` (TRACK_RUN_ID set) the program adopts that
 * run with track_run_use() and leaves ending it to `track exec`; otherwise
 * it starts its own run with the params attached and ends it FINISHED (or
 * FAILED when training fails). Params are logged once, metrics every epoch
 * at step = epoch (train_loss, val_loss, val_accuracy, val_precision,
 * val_recall, val_f1) and every mini-batch as batch_loss at a global step.
 *
 * Errors: TRACK_E_SPOOLED means the daemon was away and libtrack kept the
 * write for later, so training goes on after one warning. Any other libtrack
 * error prints "train_softmax: <what>: <message>" and exits 1. Usage errors
 * exit 2.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "softmax.h"
#include "track.h"

#ifndef SM_DATA_DIR
#define SM_DATA_DIR "examples/data"
#endif

#define PROG          "train_softmax"
#define EXIT_USAGE    2
#define STOP_TRAINING 1 /* batch callback: a libtrack error, already reported */

struct options {
    const char *data, *experiment, *name, *server;
    const char *save, *eval; /* --save FILE: write the model; --eval FILE: score one */
    const char *predictions; /* --predictions FILE: the validation rows' classes, as CSV */
    struct sm_config cfg;
};

struct reporter {
    struct track_client *c;
    int warned_spool;
    int failed;
};

/* ---- command line ------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [options]\n"
            "Trains a softmax regression on a CSV dataset and logs the run to track.\n"
            "\n"
            "  --data FILE        dataset (default " SM_DATA_DIR "/iris.csv)\n"
            "  --lr X             learning rate >= 0 (default 0.1)\n"
            "  --epochs N         passes over the training rows (default 100)\n"
            "  --batch N          mini-batch size (default 16)\n"
            "  --l2 X             L2 weight decay >= 0 (default 0.0001)\n"
            "  --momentum X       momentum in [0, 1) (default 0)\n"
            "  --seed N           seed of the split and the shuffles (default 1)\n"
            "  --experiment NAME  experiment (default <dataset>-softmax, e.g. iris-softmax)\n"
            "  --name NAME        run name (default: chosen by trackd)\n"
            "  --server URI       trackd address (default $TRACK_SERVER, then the local socket)\n"
            "  --save FILE        after training, write the model to FILE and store it with\n"
            "                     the run as the artifact model/weights.txt (default: none)\n"
            "  --eval FILE        train nothing, log nothing: score the model in FILE on the\n"
            "                     validation rows of --data and --seed, and print the metrics\n"
            "  --predictions FILE with --eval: also write each validation row's true and\n"
            "                     predicted class to FILE as CSV (columns true,predicted), the\n"
            "                     input of `track eval`\n"
            "  -h, --help         show this help\n"
            "\n"
            "Under `track exec`, TRACK_RUN_ID names the run to log into.\n");
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry '" PROG " --help'.\n", stderr);
    return EXIT_USAGE;
}

static int parse_double_opt(const char *opt, const char *s, double lo, double hi, int hi_open,
                            double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v) || v < lo ||
        (hi_open ? v >= hi : v > hi))
        return usage_error("--%s: '%s' is not a number in [%g, %g%s", opt, s, lo, hi,
                           hi_open ? ")" : "]");
    *out = v;
    return 0;
}

static int parse_int_opt(const char *opt, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi)
        return usage_error("--%s: '%s' is not an integer in [%ld, %ld]", opt, s, lo, hi);
    *out = (int)v;
    return 0;
}

static int parse_seed_opt(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0)
        return usage_error("--seed: '%s' is not an unsigned 64-bit integer", s);
    *out = (uint64_t)v;
    return 0;
}

static int nonempty_opt(const char *opt, const char *s)
{
    return s[0] ? 0 : usage_error("--%s: must not be empty", opt);
}

/* Returns 0 to go on, -1 after printing the help, or EXIT_USAGE. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"lr", required_argument, NULL, 'l'},
        {"epochs", required_argument, NULL, 'e'},
        {"batch", required_argument, NULL, 'b'},
        {"l2", required_argument, NULL, 'w'},
        {"momentum", required_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 's'},
        {"experiment", required_argument, NULL, 'x'},
        {"name", required_argument, NULL, 'n'},
        {"server", required_argument, NULL, 'S'},
        {"save", required_argument, NULL, 'o'},
        {"eval", required_argument, NULL, 'E'},
        {"predictions", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch, rc = 0;

    memset(o, 0, sizeof *o);
    o->data = SM_DATA_DIR "/iris.csv";
    sm_config_default(&o->cfg);
    while (rc == 0 && (ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            rc = nonempty_opt("data", optarg);
            o->data = optarg;
            break;
        case 'l':
            rc = parse_double_opt("lr", optarg, 0, 1e6, 0, &o->cfg.lr);
            break;
        case 'e':
            rc = parse_int_opt("epochs", optarg, 1, 1000000, &o->cfg.epochs);
            break;
        case 'b':
            rc = parse_int_opt("batch", optarg, 1, SM_MAX_ROWS, &o->cfg.batch);
            break;
        case 'w':
            rc = parse_double_opt("l2", optarg, 0, 1e6, 0, &o->cfg.l2);
            break;
        case 'm':
            rc = parse_double_opt("momentum", optarg, 0, 1, 1, &o->cfg.momentum);
            break;
        case 's':
            rc = parse_seed_opt(optarg, &o->cfg.seed);
            break;
        case 'x':
            rc = nonempty_opt("experiment", optarg);
            o->experiment = optarg;
            break;
        case 'n':
            rc = nonempty_opt("name", optarg);
            o->name = optarg;
            break;
        case 'S':
            rc = nonempty_opt("server", optarg);
            o->server = optarg;
            break;
        case 'o':
            rc = nonempty_opt("save", optarg);
            o->save = optarg;
            break;
        case 'E':
            rc = nonempty_opt("eval", optarg);
            o->eval = optarg;
            break;
        case 'P':
            rc = nonempty_opt("predictions", optarg);
            o->predictions = optarg;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default: /* getopt_long has named the option */
            fputs("Try '" PROG " --help'.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (rc == 0 && optind < argc)
        rc = usage_error("unexpected argument '%s'", argv[optind]);
    if (rc == 0 && o->predictions && !o->eval)
        rc = usage_error("--predictions goes with --eval FILE (the model to predict with)");
    return rc;
}

/* ---- reporting through libtrack ------------------------------------------- */

/* Decides what a libtrack return means here: 0 and TRACK_E_SPOOLED go on
 * (the spool delivers later; warn once), anything else is reported and
 * returns -1. */
static int tk_check(struct reporter *r, int rc, const struct track_err *err, const char *what)
{
    if (rc == TRACK_OK)
        return 0;
    if (rc == TRACK_E_SPOOLED) {
        if (!r->warned_spool)
            fprintf(stderr,
                    PROG ": warning: trackd is unreachable; writes are kept in the spool "
                         "until a later flush or `track sync` (%s)\n",
                    err->msg[0] ? err->msg : track_code_name(rc));
        r->warned_spool = 1;
        return 0;
    }
    fprintf(stderr, PROG ": %s: %s\n", what, err->msg[0] ? err->msg : track_code_name(rc));
    r->failed = 1;
    return -1;
}

static int log_metric(struct reporter *r, const char *key, double value, int64_t step)
{
    struct track_err err = {0};
    int rc = track_log_metric(r->c, key, value, step, 0, &err);
    return tk_check(r, rc, &err, key);
}

static int on_batch(void *ud, int64_t step, double batch_loss)
{
    return log_metric(ud, "batch_loss", batch_loss, step) == 0 ? 0 : STOP_TRAINING;
}

/* The shortest decimal that reads back as the same double. */
static void fmt_double(char *buf, size_t len, double v)
{
    snprintf(buf, len, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, len, "%.17g", v);
}

/* "iris.csv" from "examples/data/iris.csv"; "iris" into stem. */
static const char *dataset_base(const char *path, char *stem, size_t len)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    snprintf(stem, len, "%.*s", (int)(n < len ? n : len - 1), base);
    return base;
}

/* The validation rows' true and predicted classes, by name, as CSV. */
static int write_predictions(struct sm_trainer *t, const struct sm_dataset *d, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "true,predicted\n");
    for (size_t i = 0; i < t->n_val; i++) {
        int truth;
        size_t p = sm_predict(t, SM_VAL, i, &truth);
        fprintf(f, "%s,%s\n", d->class_names[truth], d->class_names[p]);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, PROG ": cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* ---- main ---------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct options o;
    struct sm_dataset *data = NULL;
    struct sm_trainer *t = NULL;
    struct sm_err serr = {0};
    struct track_err err = {0};
    struct reporter rep = {0};
    struct track_opts topts;
    struct sm_metrics tr = {0}, val = {0};
    track_run_id id;
    char hex[33] = "", stem[64], experiment[96];
    char v_lr[32], v_epochs[16], v_batch[16], v_l2[32], v_mom[32], v_seed[24], v_ntr[24], v_nva[24];
    const char *run_env = NULL, *base;
    int started = 0, status = 1, rc;

    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;

    if (sm_dataset_load(o.data, &data, &serr) != 0 ||
        sm_trainer_new(data, &o.cfg, &t, &serr) != 0) {
        fprintf(stderr, PROG ": %s\n", serr.msg);
        goto out;
    }
    if (o.eval) {
        /* the fetched model scored on the same validation rows: its metrics
         * are those its run logged at its last epoch */
        if (sm_model_load(t, o.eval, &serr) != 0) {
            fprintf(stderr, PROG ": %s\n", serr.msg);
            goto out;
        }
        sm_evaluate(t, SM_VAL, &val);
        if (o.predictions && write_predictions(t, data, o.predictions) != 0)
            goto out;
        printf("model %s val_accuracy=%.3f val_f1=%.3f val_precision=%.3f val_recall=%.3f "
               "val_loss=%.4f\n",
               o.eval, val.accuracy, val.f1, val.precision, val.recall, val.loss);
        status = 0;
        goto out;
    }
    base = dataset_base(o.data, stem, sizeof stem);
    snprintf(experiment, sizeof experiment, "%s-softmax", stem);

    memset(&topts, 0, sizeof topts);
    topts.server = o.server; /* NULL: libtrack reads $TRACK_SERVER, then its default */
    rc = track_client_open(&topts, &rep.c, &err);
    if (tk_check(&rep, rc, &err, "open client") != 0)
        goto out;

    fmt_double(v_lr, sizeof v_lr, o.cfg.lr);
    fmt_double(v_l2, sizeof v_l2, o.cfg.l2);
    fmt_double(v_mom, sizeof v_mom, o.cfg.momentum);
    snprintf(v_epochs, sizeof v_epochs, "%d", o.cfg.epochs);
    snprintf(v_batch, sizeof v_batch, "%d", o.cfg.batch);
    snprintf(v_seed, sizeof v_seed, "%llu", (unsigned long long)o.cfg.seed);
    snprintf(v_ntr, sizeof v_ntr, "%zu", t->n_train);
    snprintf(v_nva, sizeof v_nva, "%zu", t->n_val);
    const struct track_kv params[] = {
        {"lr", v_lr},      {"epochs", v_epochs}, {"batch", v_batch},
        {"l2", v_l2},      {"momentum", v_mom},  {"seed", v_seed},
        {"dataset", base}, {"n_train", v_ntr},   {"n_val", v_nva},
    };
    const size_t n_params = sizeof params / sizeof params[0];

    run_env = getenv("TRACK_RUN_ID");
    if (run_env && run_env[0]) {
        /* `track exec` made the run and will end it from our exit status. */
        if (o.experiment || o.name)
            fprintf(stderr, PROG ": warning: TRACK_RUN_ID is set; --experiment and --name "
                                 "are ignored\n");
        rc = track_run_use(rep.c, run_env, &err);
        if (tk_check(&rep, rc, &err, "use run") != 0)
            goto out;
        rc = track_log_params(rep.c, params, n_params, &err);
        if (tk_check(&rep, rc, &err, "log params") != 0)
            goto out;
    } else {
        struct track_run_opts ro = {
            .experiment = o.experiment ? o.experiment : experiment,
            .name = o.name,
            .params = params,
            .n_params = n_params,
        };
        rc = track_run_start(rep.c, &ro, &id, &err);
        if (tk_check(&rep, rc, &err, "start run") != 0)
            goto out;
        started = 1;
    }
    if (track_run_current(rep.c, &id) == 0)
        track_run_id_hex(&id, hex);

    for (int epoch = 1; epoch <= o.cfg.epochs; epoch++) {
        rc = sm_train_epoch(t, on_batch, &rep, &serr);
        if (rc == STOP_TRAINING)
            goto out;
        if (rc != 0) {
            fprintf(stderr, PROG ": %s\n", serr.msg);
            goto out;
        }
        sm_evaluate(t, SM_TRAIN, &tr);
        sm_evaluate(t, SM_VAL, &val);
        if (log_metric(&rep, "train_loss", tr.loss, epoch) != 0 ||
            log_metric(&rep, "val_loss", val.loss, epoch) != 0 ||
            log_metric(&rep, "val_accuracy", val.accuracy, epoch) != 0 ||
            log_metric(&rep, "val_precision", val.precision, epoch) != 0 ||
            log_metric(&rep, "val_recall", val.recall, epoch) != 0 ||
            log_metric(&rep, "val_f1", val.f1, epoch) != 0)
            goto out;
    }

    const struct track_kv tags[] = {
        {"model", "softmax"},
        {"optimizer", o.cfg.momentum > 0 ? "sgd-momentum" : "sgd"},
        {"dataset", stem},
    };
    rc = track_set_tags(rep.c, tags, sizeof tags / sizeof tags[0], &err);
    if (tk_check(&rep, rc, &err, "set tags") != 0)
        goto out;
    rc = track_flush(rep.c, &err);
    if (tk_check(&rep, rc, &err, "flush") != 0)
        goto out;
    if (o.save) {
        /* the weights beside the numbers that judge them: a registered
         * model version can then pin this very file */
        if (sm_model_save(t, o.save, &serr) != 0) {
            fprintf(stderr, PROG ": %s\n", serr.msg);
            goto out;
        }
        rc = track_artifact_put(rep.c, o.save, "model/weights.txt", &err);
        if (rc == TRACK_E_UNAVAILABLE)
            /* files are not spooled; the training is not lost for it */
            fprintf(stderr,
                    PROG ": warning: trackd is unreachable, the model stays in %s (store it "
                         "later: track artifact put --run %s %s --as model/weights.txt)\n",
                    o.save, hex[0] ? hex : "RUN", o.save);
        else if (tk_check(&rep, rc, &err, "store the model as an artifact") != 0)
            goto out;
    }
    if (started) {
        rc = track_run_end(rep.c, TRACK_FINISHED, &err);
        started = 0;
        if (tk_check(&rep, rc, &err, "end run") != 0)
            goto out;
    }

    printf("run %s%s%s val_accuracy=%.3f val_f1=%.3f val_precision=%.3f val_recall=%.3f "
           "val_loss=%.4f train_loss=%.4f epochs=%d\n",
           hex, o.name && !run_env ? " " : "", o.name && !run_env ? o.name : "", val.accuracy,
           val.f1, val.precision, val.recall, val.loss, tr.loss, o.cfg.epochs);
    status = 0;
out:
    if (started) {
        /* Our own run failed part-way: say so rather than leave it RUNNING. */
        struct track_err end_err = {0};
        (void)track_run_end(rep.c, TRACK_FAILED, &end_err);
    }
    if (rep.c)
        track_client_close(rep.c);
    sm_trainer_free(t);
    sm_dataset_free(data);
    return status;
}
