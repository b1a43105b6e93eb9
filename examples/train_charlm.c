/*
 * train_charlm.c: trains the character-level language model of charlm.c on
 * a word list and reports every step of the work to track, the way an LLM
 * fine-tuning job would:
 *
 *   1. data preparation: the word list filtered to lowercase words, shuffled
 *      with --seed, split into train and validation; the counts as params,
 *      the vocabulary as the artifact data/vocab.txt;
 *   2. model choice: context, embedding and hidden sizes as params;
 *   3. training: batch_loss every step, train_loss, val_loss,
 *      val_perplexity and tokens_per_s every --eval-every steps;
 *      checkpoints as artifacts (checkpoints/step-N.bin, model/charlm.bin);
 *      --init NAME@ALIAS starts from a registered model version (fetched by
 *      its pinned digest) and records the version's run as the parent;
 *   4. evaluation: the final validation perplexity, and --samples words
 *      drawn from the model, stored as artifacts samples/NNN.txt: each path
 *      is the target id people (or a judge) rate with
 *      `track feedback add --target samples/007.txt`.
 *
 * Under `track exec` (TRACK_RUN_ID set) the program logs into that run;
 * otherwise it starts its own (experiment --experiment, default "charlm").
 * --no-track trains the same way and reports nothing (bench B14 compares
 * the two). libtrack's TRACK_E_SPOOLED (daemon away) warns once and goes
 * on; another libtrack error exits 1; usage errors exit 2.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "charlm.h"
#include "track.h"

#define PROG       "train_charlm"
#define EXIT_USAGE 2
#define MAX_WORDS  2000000

struct options {
    const char *data, *experiment, *name, *server, *init, *init_file, *save;
    struct lm_config cfg;
    double lr, val_frac, temp;
    enum lm_optimizer opt;
    long steps, eval_every, checkpoint_every, max_words;
    int batch, samples, no_track;
    uint64_t seed;
};

struct reporter {
    struct track_client *c; /* NULL with --no-track */
    int warned_spool;
};

/* ---- command line ---------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(
        f, "usage: " PROG " [options]\n"
           "Trains a character-level MLP language model (Bengio et al. 2003) on a word\n"
           "list and logs the run to track.\n"
           "\n"
           "  --data FILE          words, one per line (default /usr/share/dict/american-english,\n"
           "                       Debian's wamerican); only lowercase a-z words are kept\n"
           "  --max-words N        use at most N words after shuffling (default all)\n"
           "  --val-frac X         share of words for validation, (0, 0.5] (default 0.1)\n"
           "  --context N          characters of context, 1..16 (default 3)\n"
           "  --embed N            embedding size, 1..64 (default 10)\n"
           "  --hidden N           hidden units, 1..1024 (default 128)\n"
           "  --optimizer NAME     adam (default) or sgd\n"
           "  --lr X               learning rate > 0 (default 0.01 adam, 0.1 sgd)\n"
           "  --steps N            training steps (default 3000)\n"
           "  --batch N            examples per step (default 64)\n"
           "  --eval-every N       steps between validation losses (default 250)\n"
           "  --checkpoint-every N store a checkpoint artifact every N steps (default 0: the\n"
           "                       final model only)\n"
           "  --samples N          words drawn at the end, stored as artifacts (default 20)\n"
           "  --temperature X      sampling temperature > 0 (default 1)\n"
           "  --seed N             seed of the split, the initialisation, the batches and the\n"
           "                       samples (default 1)\n"
           "  --init REF           start from model version REF (NAME@ALIAS or NAME/VERSION):\n"
           "                       fine-tuning; its run becomes this run's parent\n"
           "  --init-file FILE     start from a model file (no track lookup)\n"
           "  --save FILE          also write the final model to FILE\n"
           "  --experiment NAME    experiment (default charlm)\n"
           "  --name NAME          run name (default: chosen by trackd)\n"
           "  --server URI         trackd address (default $TRACK_SERVER, then the local socket)\n"
           "  --no-track           report nothing to track (same training)\n"
           "  -h, --help           show this help\n");
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see " PROG " --help)\n");
    return EXIT_USAGE;
}

static int num_opt(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return usage_error("%s: \"%s\" is not a number in [%g, %g]", opt, s, lo, hi);
    *out = v;
    return 0;
}

static int long_opt(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return usage_error("%s: \"%s\" is not a whole number in [%ld, %ld]", opt, s, lo, hi);
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    enum {
        O_DATA = 1,
        O_MAXW,
        O_VAL,
        O_CTX,
        O_EMB,
        O_HID,
        O_OPT,
        O_LR,
        O_STEPS,
        O_BATCH,
        O_EVAL,
        O_CKPT,
        O_SAMPLES,
        O_TEMP,
        O_SEED,
        O_INIT,
        O_INITF,
        O_SAVE,
        O_EXP,
        O_NAME,
        O_SERVER,
        O_NOTRACK
    };
    static const struct option longopts[] = {
        {"data", 1, NULL, O_DATA},       {"max-words", 1, NULL, O_MAXW},
        {"val-frac", 1, NULL, O_VAL},    {"context", 1, NULL, O_CTX},
        {"embed", 1, NULL, O_EMB},       {"hidden", 1, NULL, O_HID},
        {"optimizer", 1, NULL, O_OPT},   {"lr", 1, NULL, O_LR},
        {"steps", 1, NULL, O_STEPS},     {"batch", 1, NULL, O_BATCH},
        {"eval-every", 1, NULL, O_EVAL}, {"checkpoint-every", 1, NULL, O_CKPT},
        {"samples", 1, NULL, O_SAMPLES}, {"temperature", 1, NULL, O_TEMP},
        {"seed", 1, NULL, O_SEED},       {"init", 1, NULL, O_INIT},
        {"init-file", 1, NULL, O_INITF}, {"save", 1, NULL, O_SAVE},
        {"experiment", 1, NULL, O_EXP},  {"name", 1, NULL, O_NAME},
        {"server", 1, NULL, O_SERVER},   {"no-track", 0, NULL, O_NOTRACK},
        {"help", 0, NULL, 'h'},          {NULL, 0, NULL, 0}};
    double lr = 0;
    long v;
    int opt, rc = 0;

    *o = (struct options){.data = "/usr/share/dict/american-english",
                          .cfg = {.context = 3, .embed = 10, .hidden = 128},
                          .val_frac = 0.1,
                          .temp = 1.0,
                          .opt = LM_ADAM,
                          .steps = 3000,
                          .eval_every = 250,
                          .batch = 64,
                          .samples = 20,
                          .seed = 1};
    opterr = 0;
    while (rc == 0 && (opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return -1;
        case O_DATA:
            o->data = optarg;
            break;
        case O_MAXW:
            rc = long_opt("--max-words", optarg, 0, MAX_WORDS, &o->max_words);
            break;
        case O_VAL:
            rc = num_opt("--val-frac", optarg, 1e-6, 0.5, &o->val_frac);
            break;
        case O_CTX:
            rc = long_opt("--context", optarg, 1, LM_MAX_CONTEXT, &v);
            o->cfg.context = (int)v;
            break;
        case O_EMB:
            rc = long_opt("--embed", optarg, 1, LM_MAX_EMBED, &v);
            o->cfg.embed = (int)v;
            break;
        case O_HID:
            rc = long_opt("--hidden", optarg, 1, LM_MAX_HIDDEN, &v);
            o->cfg.hidden = (int)v;
            break;
        case O_OPT:
            if (strcmp(optarg, "adam") == 0)
                o->opt = LM_ADAM;
            else if (strcmp(optarg, "sgd") == 0)
                o->opt = LM_SGD;
            else
                rc = usage_error("--optimizer: \"%s\"; expected adam or sgd", optarg);
            break;
        case O_LR:
            rc = num_opt("--lr", optarg, 1e-12, 100, &lr);
            break;
        case O_STEPS:
            rc = long_opt("--steps", optarg, 1, 100000000, &o->steps);
            break;
        case O_BATCH:
            rc = long_opt("--batch", optarg, 1, 65536, &v);
            o->batch = (int)v;
            break;
        case O_EVAL:
            rc = long_opt("--eval-every", optarg, 1, 100000000, &o->eval_every);
            break;
        case O_CKPT:
            rc = long_opt("--checkpoint-every", optarg, 0, 100000000, &o->checkpoint_every);
            break;
        case O_SAMPLES:
            rc = long_opt("--samples", optarg, 0, 999, &v);
            o->samples = (int)v;
            break;
        case O_TEMP:
            rc = num_opt("--temperature", optarg, 1e-3, 100, &o->temp);
            break;
        case O_SEED:
            rc = long_opt("--seed", optarg, 0, 0x7fffffffL, &v);
            o->seed = (uint64_t)v;
            break;
        case O_INIT:
            o->init = optarg;
            break;
        case O_INITF:
            o->init_file = optarg;
            break;
        case O_SAVE:
            o->save = optarg;
            break;
        case O_EXP:
            o->experiment = optarg;
            break;
        case O_NAME:
            o->name = optarg;
            break;
        case O_SERVER:
            o->server = optarg;
            break;
        case O_NOTRACK:
            o->no_track = 1;
            break;
        default:
            rc = usage_error("unknown option or missing value: %s", argv[optind - 1]);
        }
    }
    if (rc == 0 && optind < argc)
        rc = usage_error("unexpected argument '%s'", argv[optind]);
    if (rc == 0 && o->init && o->init_file)
        rc = usage_error("--init and --init-file: give one");
    if (rc == 0 && o->init && o->no_track)
        rc = usage_error("--init looks the model up in track: not with --no-track");
    o->lr = lr > 0 ? lr : (o->opt == LM_ADAM ? 0.01 : 0.1);
    return rc;
}

/* ---- data ------------------------------------------------------------------------ */

struct words {
    char **v;
    size_t n, cap;
    size_t read, kept;
};

static void words_free(struct words *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i]);
    free(w->v);
}

/* Reads the lowercase a-z words of 2..LM_MAX_WORD letters from path. */
static int words_load(const char *path, struct words *w)
{
    FILE *f = fopen(path, "r");
    char line[256];

    memset(w, 0, sizeof(*w));
    if (!f) {
        fprintf(stderr, PROG ": cannot open %s: %s%s\n", path, strerror(errno),
                errno == ENOENT ? " (Debian: apt-get install wamerican)" : "");
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        int ok = len >= 2 && len <= LM_MAX_WORD;
        line[len] = '\0';
        w->read++;
        for (size_t i = 0; ok && i < len; i++)
            ok = line[i] >= 'a' && line[i] <= 'z';
        if (!ok)
            continue;
        if (w->n == MAX_WORDS)
            break;
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 4096;
            char **v = realloc(w->v, cap * sizeof(*v));
            if (!v)
                break;
            w->v = v;
            w->cap = cap;
        }
        if (!(w->v[w->n] = strdup(line)))
            break;
        w->n++;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad || w->n < 10) {
        fprintf(stderr, PROG ": %s: %s\n", path,
                bad ? "read error" : "fewer than 10 lowercase words: not a word list");
        words_free(w);
        return -1;
    }
    return 0;
}

static void shuffle(char **v, size_t n, struct lm_rng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(lm_rng_next(r) % i);
        char *t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* ---- reporting ----------------------------------------------------------------------- */

static int tk(struct reporter *r, int rc, const struct track_err *err, const char *what)
{
    if (rc == TRACK_OK)
        return 0;
    if (rc == TRACK_E_SPOOLED) {
        if (!r->warned_spool)
            fprintf(stderr, PROG ": warning: trackd is unreachable; writes are spooled (%s)\n",
                    err->msg);
        r->warned_spool = 1;
        return 0;
    }
    fprintf(stderr, PROG ": %s: %s\n", what, err->msg[0] ? err->msg : track_code_name(rc));
    return -1;
}

static int metric(struct reporter *r, const char *key, double v, int64_t step)
{
    struct track_err err = {0};
    if (!r->c)
        return 0;
    return tk(r, track_log_metric(r->c, key, v, step, 0, &err), &err, key);
}

static int put_file(struct reporter *r, const char *local, const char *path)
{
    struct track_err err = {0};
    if (!r->c)
        return 0;
    return tk(r, track_artifact_put(r->c, local, path, &err), &err, path);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Fetches model version ref into a file under dir and loads it; the
 * version's run into parent (hex). */
static int init_from_version(struct reporter *r, const char *ref, const char *dir,
                             struct lm_model *m, char parent[33], int64_t *version)
{
    struct track_model_result *res = NULL;
    const struct track_model_version *v = NULL;
    struct track_err err = {0};
    char path[1200], why[300];

    if (tk(r, track_model_get(r->c, ref, &res, &v, &err), &err, "--init"))
        return -1;
    snprintf(path, sizeof path, "%s/init.bin", dir);
    int rc = tk(r, track_blob_get(r->c, v->digest, v->size, path, &err), &err, "--init fetch");
    track_run_id_hex(&v->run, parent);
    *version = v->version;
    track_model_result_free(res);
    if (rc)
        return -1;
    if (lm_load(m, path, why, sizeof why)) {
        fprintf(stderr, PROG ": --init %s: %s\n", ref, why);
        return -1;
    }
    unlink(path);
    return 0;
}

/* ---- main --------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct options o;
    struct words w = {0};
    struct lm_model m = {0};
    struct lm_data train = {0}, val = {0};
    struct lm_trainer t = {0};
    struct lm_rng rng;
    struct reporter rep = {0};
    struct track_err err = {0};
    char dir[] = "/tmp/train-charlm-XXXXXX", parent[33] = "", hex[33] = "", path[1200];
    int64_t init_version = 0;
    int status = 1, started = 0, rc;
    size_t skipped = 0, skipped_val = 0;

    rc = parse_args(argc, argv, &o);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!mkdtemp(dir)) {
        fprintf(stderr, PROG ": cannot make a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    lm_rng_seed(&rng, o.seed);
    if (words_load(o.data, &w))
        goto out;
    shuffle(w.v, w.n, &rng);
    size_t n_used = o.max_words && (size_t)o.max_words < w.n ? (size_t)o.max_words : w.n;
    size_t n_val = (size_t)((double)n_used * o.val_frac);
    n_val = n_val < 1 ? 1 : n_val;
    size_t n_train = n_used - n_val;

    if (!o.no_track) {
        struct track_opts to = {.server = o.server};
        if (tk(&rep, track_client_open(&to, &rep.c, &err), &err, "open client"))
            goto out;
    }
    char why[300];
    if (o.init) {
        if (init_from_version(&rep, o.init, dir, &m, parent, &init_version))
            goto out;
    } else if (o.init_file) {
        if (lm_load(&m, o.init_file, why, sizeof why)) {
            fprintf(stderr, PROG ": --init-file: %s\n", why);
            goto out;
        }
    } else {
        char chars[LM_MAX_VOCAB];
        int vocab;
        if (lm_vocab_of((const char *const *)w.v, n_used, chars, &vocab) ||
            lm_init(&m, &o.cfg, chars, vocab, &rng)) {
            fprintf(stderr, PROG ": cannot build the model (vocabulary or memory)\n");
            goto out;
        }
    }
    if (lm_data_build(&m, (const char *const *)w.v, n_train, &train, &skipped) ||
        lm_data_build(&m, (const char *const *)w.v + n_train, n_val, &val, &skipped_val) ||
        lm_trainer_init(&t, &m, o.opt, o.lr, o.batch) || train.n == 0 || val.n == 0) {
        fprintf(stderr, PROG ": no training data in the model's vocabulary, or out of memory\n");
        goto out;
    }

    /* ---- the run and its params */
    char p[16][32];
    snprintf(p[0], 32, "%d", m.cfg.context);
    snprintf(p[1], 32, "%d", m.cfg.embed);
    snprintf(p[2], 32, "%d", m.cfg.hidden);
    snprintf(p[3], 32, "%.6g", o.lr);
    snprintf(p[4], 32, "%ld", o.steps);
    snprintf(p[5], 32, "%d", o.batch);
    snprintf(p[6], 32, "%llu", (unsigned long long)o.seed);
    snprintf(p[7], 32, "%d", m.vocab);
    snprintf(p[8], 32, "%zu", n_train - skipped);
    snprintf(p[9], 32, "%zu", n_val - skipped_val);
    snprintf(p[10], 32, "%zu", skipped + skipped_val);
    snprintf(p[11], 32, "%zu", m.n_params);
    snprintf(p[12], 32, "%zu", train.n);
    const char *base = strrchr(o.data, '/') ? strrchr(o.data, '/') + 1 : o.data;
    struct track_kv params[] = {
        {"context", p[0]},
        {"embed", p[1]},
        {"hidden", p[2]},
        {"lr", p[3]},
        {"steps", p[4]},
        {"batch", p[5]},
        {"seed", p[6]},
        {"vocab_size", p[7]},
        {"data.train_words", p[8]},
        {"data.val_words", p[9]},
        {"data.skipped", p[10]},
        {"n_params", p[11]},
        {"data.train_tokens", p[12]},
        {"data", base},
        {"optimizer", o.opt == LM_ADAM ? "adam" : "sgd"},
        {"init", o.init ? o.init : (o.init_file ? "file" : "scratch")},
    };
    size_t n_params = sizeof params / sizeof params[0];
    if (rep.c) {
        const char *run_env = getenv("TRACK_RUN_ID");
        if (run_env && run_env[0]) {
            if (o.init)
                fprintf(stderr, PROG ": warning: under track exec the run exists already, so "
                                     "its parent cannot be set to the --init version's run\n");
            if (tk(&rep, track_run_use(rep.c, run_env, &err), &err, "use run") ||
                tk(&rep, track_log_params(rep.c, params, n_params, &err), &err, "params"))
                goto out;
        } else {
            struct track_run_opts ro = {.experiment = o.experiment ? o.experiment : "charlm",
                                        .name = o.name,
                                        .parent = parent[0] ? parent : NULL,
                                        .params = params,
                                        .n_params = n_params};
            track_run_id id;
            if (tk(&rep, track_run_start(rep.c, &ro, &id, &err), &err, "start run"))
                goto out;
            started = 1;
        }
        track_run_id id;
        if (track_run_current(rep.c, &id) == 0)
            track_run_id_hex(&id, hex);
        /* data preparation's output: the vocabulary */
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        FILE *f = fopen(path, "w");
        if (f) {
            for (int i = 0; i < m.vocab; i++)
                fprintf(f, "%d %c\n", i, m.chars[i]);
            fclose(f);
        }
        if (put_file(&rep, path, "data/vocab.txt"))
            goto out;
    }
    printf(PROG ": %zu train / %zu validation words (%zu examples), vocabulary %d, %zu "
                "parameters%s%s\n",
           n_train - skipped, n_val - skipped_val, train.n, m.vocab, m.n_params,
           o.init ? ", from " : "", o.init ? o.init : "");

    /* ---- training */
    double t0 = now_s(), t_last = t0, sum = 0;
    long since = 0;
    for (long step = 1; step <= o.steps; step++) {
        double loss = lm_train_step(&m, &t, &train, &rng);
        sum += loss;
        since++;
        if (metric(&rep, "batch_loss", loss, step))
            goto out;
        if (step % o.eval_every == 0 || step == o.steps) {
            double vl = lm_loss(&m, &val, 20000), now = now_s();
            double tps = (double)since * o.batch / (now - t_last > 1e-9 ? now - t_last : 1e-9);
            if (metric(&rep, "train_loss", sum / (double)since, step) ||
                metric(&rep, "val_loss", vl, step) ||
                metric(&rep, "val_perplexity", exp(vl), step) ||
                metric(&rep, "tokens_per_s", tps, step))
                goto out;
            printf("step %6ld  train_loss %.4f  val_loss %.4f  val_perplexity %.3f  %.0f tok/s\n",
                   step, sum / (double)since, vl, exp(vl), tps);
            fflush(stdout);
            sum = 0;
            since = 0;
            t_last = now_s();
        }
        if (rep.c && o.checkpoint_every && step % o.checkpoint_every == 0 && step < o.steps) {
            char ap[64];
            snprintf(path, sizeof path, "%s/ckpt.bin", dir);
            snprintf(ap, sizeof ap, "checkpoints/step-%06ld.bin", step);
            if (lm_save(&m, path) || put_file(&rep, path, ap))
                goto out;
        }
    }
    double val_loss = lm_loss(&m, &val, 0);
    if (metric(&rep, "final_val_loss", val_loss, o.steps) ||
        metric(&rep, "final_val_perplexity", exp(val_loss), o.steps))
        goto out;

    /* ---- the model and its samples */
    snprintf(path, sizeof path, "%s/charlm.bin", dir);
    if (lm_save(&m, path) || (o.save && lm_save(&m, o.save))) {
        fprintf(stderr, PROG ": cannot write the model: %s\n", strerror(errno));
        goto out;
    }
    if (put_file(&rep, path, "model/charlm.bin"))
        goto out;
    if (o.samples > 0) {
        char sdir[64], word[LM_MAX_WORD + 1];
        snprintf(sdir, sizeof sdir, "%s/samples", dir);
        mkdir(sdir, 0700);
        printf("samples:");
        for (int i = 1; i <= o.samples; i++) {
            lm_sample(&m, &rng, o.temp, word, sizeof word);
            snprintf(path, sizeof path, "%s/%03d.txt", sdir, i);
            FILE *f = fopen(path, "w");
            if (!f || fprintf(f, "%s\n", word) < 0 || fclose(f)) {
                fprintf(stderr, PROG ": cannot write %s\n", path);
                goto out;
            }
            printf(" %s", word);
        }
        printf("\n");
        if (put_file(&rep, sdir, "samples"))
            goto out;
    }
    if (rep.c) {
        if (tk(&rep, track_flush(rep.c, &err), &err, "flush"))
            goto out;
        if (started && tk(&rep, track_run_end(rep.c, TRACK_FINISHED, &err), &err, "end run"))
            goto out;
        started = 0;
    }
    printf(PROG ": final val_loss %.4f, perplexity %.3f%s%s\n", val_loss, exp(val_loss),
           hex[0] ? ", run " : "", hex[0] ? hex : "");
    status = 0;
out:
    if (rep.c) {
        if (started) {
            struct track_err e2 = {0};
            (void)track_run_end(rep.c, TRACK_FAILED, &e2);
        }
        track_client_close(rep.c);
    }
    lm_trainer_free(&t);
    lm_data_free(&train);
    lm_data_free(&val);
    lm_free(&m);
    words_free(&w);
    char cmd[64];
    snprintf(path, sizeof path, "%s/samples", dir);
    for (int i = 1; i <= 999; i++) {
        snprintf(cmd, sizeof cmd, "/%03d.txt", i);
        char f[1300];
        snprintf(f, sizeof f, "%s%s", path, cmd);
        unlink(f);
    }
    rmdir(path);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/charlm.bin", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/ckpt.bin", dir);
    unlink(path);
    rmdir(dir);
    return status;
}
