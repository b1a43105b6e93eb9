/*
 * cmd_watch.c: `track watch`, a live view of a running run.
 *
 * Each refresh asks for the run (track_run_get: status and the summary of
 * every metric: last value, step, count) and then reads only the points
 * logged since the last refresh, with a history cursor per metric, to feed
 * the trend charts. A cursor never moves back, and when more points arrived
 * than a chart can show the cursor skips ahead to the last WINDOW of them,
 * so a fast run costs each refresh a bounded read and nothing is ever read
 * twice. A metric that appears mid-run shows up in the next refresh.
 *
 * The rows below the header are shared out among the metrics: with room,
 * each gets a block (a line with its value, last step, points per second and
 * the steps its chart covers, then a chart up to CHART_ROWS_MAX rows tall,
 * eight levels a row, its max and min at the left); with less, a line each
 * with a one-row chart between its min and max. A chart shows the last
 * WINDOW points, downsampled (M4) to its width when there are more, each
 * cell as high as the largest value it stands for. Points per second are
 * averaged over the last RATE_WINDOW_MS of refreshes, so they read steady
 * while the client flushes in batches.
 *
 * On a terminal the view is full-screen: the alternate screen, the cursor
 * hidden, stdin in non-canonical mode so `q` quits at once. Signals only
 * set a flag that the loop checks, and every exit path goes through one
 * restore; when the run ends the last frame is printed again on the normal
 * screen so it stays visible. Without a terminal on stdout it prints one
 * line per refresh that brought new points ("step=120 loss=0.31 acc=0.9")
 * and a last "status=FINISHED" line when the run ends.
 *
 * Exit status: 0 when the run ended or on `q`; 128+N after signal N (130
 * for Ctrl-C); 1 on an error.
 */
#include "cli.h"
#include "render.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_KEYS       64   /* metrics shown */
#define WINDOW         2048 /* recent points kept per metric for its chart */
#define KEY_COL_MAX    24
#define RATE_WINDOW_MS 5000 /* points per second are averaged over this long */
#define RATE_MIN_MS    1000 /* and shown once measured over at least this */
#define RATE_SAMPLES   128  /* refreshes kept for it: 5 s at the fastest interval */
#define CHART_ROWS_MAX 8
#define SCALE_W        10 /* a chart's min and max labels ("%.4g") */

struct wkey {
    char key[256];
    int present;    /* in the run's summaries */
    int64_t cursor; /* points of the series consumed (read or skipped) */
    double last;
    int64_t count, last_step, shown_count;
    double ring[WINDOW];
    int64_t ring_step[WINDOW];
    size_t ring_n, ring_at;
    int64_t rate_t[RATE_SAMPLES], rate_c[RATE_SAMPLES]; /* (time, count) of recent refreshes */
    size_t rate_n;
    double rate; /* NAN until measured over RATE_MIN_MS */
};

struct watch {
    struct track_client *c;
    char hex[33];
    char name[256], experiment[256];
    int status;
    int64_t start_ms, end_ms;
    struct wkey keys[MAX_KEYS];
    size_t nk;
    const char *const *sel;
    size_t n_sel;
    int tty;
    const char *problem; /* a transient error shown in the frame */
    char problem_buf[600];
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- terminal --------------------------------------------------------------------- */

struct term {
    int signals; /* handlers installed */
    int screen;  /* alternate screen entered */
    int raw;     /* stdin's termios changed */
    struct termios saved;
    struct sigaction old[3];
};

static const int stop_sigs[3] = {SIGINT, SIGTERM, SIGHUP};

static void signals_install(struct term *t)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* no SA_RESTART: the wait in the loop returns at once with EINTR */
    for (int i = 0; i < 3; i++)
        sigaction(stop_sigs[i], &sa, &t->old[i]);
    t->signals = 1;
}

static void term_enter(struct term *t)
{
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
        struct termios raw = t->saved;
        /* keystrokes at once and unechoed; ISIG stays so Ctrl-C is SIGINT,
         * but Ctrl-Z is off: a stopped job would leave the screen switched */
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        raw.c_cc[VSUSP] = _POSIX_VDISABLE;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0)
            t->raw = 1;
    }
    fputs("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J", stdout);
    fflush(stdout);
    t->screen = 1;
}

/* Undoes term_enter and signals_install; safe to call twice. */
static void term_restore(struct term *t)
{
    if (t->screen) {
        fputs("\x1b[?25h\x1b[?1049l", stdout);
        fflush(stdout);
        t->screen = 0;
    }
    if (t->raw) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &t->saved);
        t->raw = 0;
    }
}

static void signals_restore(struct term *t)
{
    for (int i = 0; t->signals && i < 3; i++)
        sigaction(stop_sigs[i], &t->old[i], NULL);
    t->signals = 0;
}

static void term_size(int *cols, int *rows)
{
    struct winsize ws;
    *cols = 80;
    *rows = 24;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        *cols = ws.ws_col;
        *rows = ws.ws_row > 0 ? ws.ws_row : 24;
    }
    *cols = render_term_width(getenv("COLUMNS"), *cols);
    if (*rows < 6)
        *rows = 6;
    if (*rows > 1000)
        *rows = 1000;
}

/* ---- data ------------------------------------------------------------------------- */

static int selected(const struct watch *w, const char *key)
{
    if (!w->n_sel)
        return 1;
    for (size_t i = 0; i < w->n_sel; i++)
        if (strcmp(w->sel[i], key) == 0)
            return 1;
    return 0;
}

static struct wkey *find_key(struct watch *w, const char *key, int add)
{
    for (size_t i = 0; i < w->nk; i++)
        if (strcmp(w->keys[i].key, key) == 0)
            return &w->keys[i];
    if (!add || w->nk == MAX_KEYS || strlen(key) >= sizeof(w->keys[0].key))
        return NULL;
    struct wkey *k = &w->keys[w->nk++];
    memset(k, 0, sizeof(*k));
    snprintf(k->key, sizeof(k->key), "%s", key);
    k->rate = NAN;
    return k;
}

static void ring_push(struct wkey *k, int64_t step, double v)
{
    k->ring[k->ring_at] = v;
    k->ring_step[k->ring_at] = step;
    k->ring_at = (k->ring_at + 1) % WINDOW;
    if (k->ring_n < WINDOW)
        k->ring_n++;
}

/* Adds this refresh's (time, count) and averages the rate over the samples
 * of the last RATE_WINDOW_MS: one refresh's count over one interval jumps
 * with every batch the client flushes; five seconds of them read steady. */
static void rate_sample(struct wkey *k, int64_t now)
{
    if (k->rate_n == RATE_SAMPLES) {
        memmove(k->rate_t, k->rate_t + 1, (RATE_SAMPLES - 1) * sizeof(k->rate_t[0]));
        memmove(k->rate_c, k->rate_c + 1, (RATE_SAMPLES - 1) * sizeof(k->rate_c[0]));
        k->rate_n--;
    }
    k->rate_t[k->rate_n] = now;
    k->rate_c[k->rate_n++] = k->count;
    /* drop samples older than the window, keeping one at or beyond it */
    size_t drop = 0;
    while (drop + 2 < k->rate_n && k->rate_t[drop + 1] <= now - RATE_WINDOW_MS)
        drop++;
    if (drop) {
        memmove(k->rate_t, k->rate_t + drop, (k->rate_n - drop) * sizeof(k->rate_t[0]));
        memmove(k->rate_c, k->rate_c + drop, (k->rate_n - drop) * sizeof(k->rate_c[0]));
        k->rate_n -= drop;
    }
    int64_t span = now - k->rate_t[0];
    k->rate = span >= RATE_MIN_MS ? (double)(k->count - k->rate_c[0]) * 1000.0 / (double)span : NAN;
}

/* Reads the points of k logged since its cursor, up to `count` (what the
 * summary said), skipping ahead to the last WINDOW of them. */
static int read_new(struct watch *w, struct wkey *k, struct track_err *err)
{
    /* on first sight the cursor is 0, so this starts near the end rather
     * than at the run's beginning */
    int64_t from = k->count > WINDOW ? k->count - WINDOW : 0;

    from = from > k->cursor ? from : k->cursor;
    while (from < k->count) {
        const int64_t *steps, *times;
        const double *vals;
        struct track_result *res;
        size_t n;
        int64_t next;
        int more;
        if (track_metric_history(w->c, w->hex, k->key, from, k->count - from, &res, &steps, &times,
                                 &vals, &n, &next, &more, err))
            return -1;
        for (size_t i = 0; i < n; i++)
            ring_push(k, steps[i], vals[i]);
        track_result_free(res);
        if (n == 0 || next <= from)
            break; /* the daemon has fewer than its summary said: wait */
        from = next;
    }
    k->cursor = from;
    return 0;
}

/* One refresh: the run and its new points. -1 with err set on failure. */
static int refresh(struct watch *w, struct track_err *err)
{
    struct track_result *res;
    struct track_run_info info;
    int64_t now = mono_ms();

    if (track_run_get(w->c, w->hex, &res, &info, err))
        return -1;
    snprintf(w->name, sizeof(w->name), "%s", info.name);
    snprintf(w->experiment, sizeof(w->experiment), "%s", info.experiment);
    w->status = info.status;
    w->start_ms = info.start_ms;
    w->end_ms = info.end_ms;
    for (size_t i = 0; i < info.n_metrics; i++) {
        const struct track_metric_summary *m = &info.metrics[i];
        if (!selected(w, m->key))
            continue;
        struct wkey *k = find_key(w, m->key, 1);
        if (!k)
            continue;
        k->present = 1;
        k->last = m->last;
        k->count = m->count;
        k->last_step = m->last_step;
        rate_sample(k, now);
    }
    track_result_free(res);
    for (size_t i = 0; i < w->nk; i++)
        if (w->keys[i].present && read_new(w, &w->keys[i], err))
            return -1;
    return 0;
}

/* ---- output ----------------------------------------------------------------------- */

/* The chart's values: the last points of k, downsampled (M4) to at most
 * `cells` buckets when there are more, each cell then as high as its
 * bucket's largest value, so a spike between cells still shows. *lo and *hi
 * are the finite range drawn, *s0 and *s1 the steps it covers. Returns the
 * cells. */
static size_t chart_values(const struct wkey *k, size_t cells, double *v, double *lo, double *hi,
                           int64_t *s0, int64_t *s1)
{
    static double xs[WINDOW], ys[WINDOW];
    static struct render_m4 m4[WINDOW];
    size_t n = k->ring_n, out;

    *lo = INFINITY;
    *hi = -INFINITY;
    *s0 = *s1 = 0;
    if (n == 0 || cells == 0)
        return 0;
    for (size_t j = 0; j < n; j++) {
        size_t at = (k->ring_at + WINDOW - n + j) % WINDOW;
        xs[j] = (double)k->ring_step[at];
        ys[j] = k->ring[at];
        if (isfinite(ys[j])) {
            *lo = fmin(*lo, ys[j]);
            *hi = fmax(*hi, ys[j]);
        }
    }
    *s0 = k->ring_step[(k->ring_at + WINDOW - n) % WINDOW];
    *s1 = k->ring_step[(k->ring_at + WINDOW - 1) % WINDOW];
    if (n <= cells) {
        memcpy(v, ys, n * sizeof(double));
        return n;
    }
    out = render_m4_downsample(xs, ys, n, cells, m4);
    for (size_t j = 0; j < out; j++)
        v[j] = m4[j].y[2];
    return out;
}

/* A chart's scale: 4 significant digits, at most SCALE_W columns. */
static void scale_label(double v, char *buf, size_t len)
{
    if (!isfinite(v))
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.4g", v == 0 ? 0.0 : v);
}

/* One metric as a block: a line with its value, step, rate and the steps the
 * chart covers, then a chart `rows` tall with its max and min at the left. */
static void metric_block(const struct wkey *k, FILE *f, const char *eol, int cols, int rows,
                         size_t key_w)
{
    char key[KEY_COL_MAX * 4 + 8], val[32], rate[32], line[700], buf[700];
    char lo_s[32], hi_s[32], row[CHART_ROWS_MAX][RENDER_SPARK_MAX * 3 + 1];
    char *rowp[CHART_ROWS_MAX];
    double v[RENDER_SPARK_MAX], lo, hi;
    int64_t s0, s1;
    /* the scale at the left; a one-row chart has its max at the right too */
    int scale = SCALE_W + 2 + (rows == 1 ? SCALE_W + 2 : 0);
    size_t cells = cols > scale + 1 ? (size_t)(cols - scale - 1) : 1;
    cells = cells > RENDER_SPARK_MAX ? RENDER_SPARK_MAX : cells;
    render_fit(k->key, key_w, key, sizeof(key));
    render_num(k->last, val, sizeof(val));
    if (isnan(k->rate))
        snprintf(rate, sizeof(rate), "-");
    else
        snprintf(rate, sizeof(rate), "%.1f", k->rate);
    size_t n = chart_values(k, cells, v, &lo, &hi, &s0, &s1);
    snprintf(line, sizeof(line), "%s  %s  step %lld  %s pts/s  chart: steps %lld-%lld", key, val,
             (long long)k->last_step, rate, (long long)s0, (long long)s1);
    render_fit(line, (size_t)cols - 1, buf, sizeof(buf));
    fprintf(f, "\x1b[1m%s\x1b[0m%s", buf, eol);
    for (int r = 0; r < rows; r++)
        rowp[r] = row[r];
    if (!isfinite(lo)) {
        lo = 0;
        hi = 0;
    }
    render_spark_rows(v, n, lo, hi, rows, rowp, sizeof(row[0]));
    scale_label(hi, hi_s, sizeof(hi_s));
    scale_label(lo, lo_s, sizeof(lo_s));
    if (rows == 1) {
        fprintf(f, "%*s ┤%s├ %s%s", SCALE_W, lo_s, row[0], hi_s, eol);
        return;
    }
    for (int r = 0; r < rows; r++) {
        const char *lab = r == 0 ? hi_s : r == rows - 1 ? lo_s : "";
        fprintf(f, "%*s %s%s%s", SCALE_W, lab, r == 0 || r == rows - 1 ? "┤" : "│", row[r], eol);
    }
}

/* The frame into f; `screen`: cursor home, every line cleared to its end
 * and the rest of the screen cleared, else plain lines. The rows below the
 * header are shared by the metrics: as blocks with charts up to
 * CHART_ROWS_MAX tall when there is room, else a line each (a one-row chart
 * between its min and max). */
static void frame(const struct watch *w, FILE *f, int screen)
{
    const char *eol = screen ? "\x1b[K\n" : "\n";
    int cols, rows;
    char el[32], head[700], buf[700];
    size_t key_w = 6;

    /* the last frame, left on the normal screen, keeps the live one's
     * layout: it fits the terminal as that did */
    term_size(&cols, &rows);
    int64_t end = w->end_ms > 0 ? w->end_ms : wall_ms();
    cli_fmt_duration(w->start_ms > 0 ? end - w->start_ms : 0, el, sizeof(el));
    if (screen)
        fputs("\x1b[H", f);
    snprintf(head, sizeof(head), "track watch  %s (%.8s)  experiment %s", w->name, w->hex,
             w->experiment);
    render_fit(head, (size_t)cols, buf, sizeof(buf));
    fprintf(f, "%s%s", buf, eol);
    snprintf(head, sizeof(head), "status %s  elapsed %s%s%s", cli_status_name(w->status), el,
             w->problem ? "  " : "", w->problem ? w->problem : "");
    render_fit(head, (size_t)cols - (screen ? 10 : 0), buf, sizeof(buf));
    fputs(buf, f);
    /* "q: quit" at the right, short of the last column (no pending wrap) */
    size_t used = render_width(buf);
    if (screen && used + 9 <= (size_t)cols)
        fprintf(f, "%*sq: quit", (int)((size_t)cols - 1 - used - 7), "");
    fputs(eol, f);
    fputs(eol, f);
    for (size_t i = 0; i < w->nk; i++) {
        size_t kw = render_width(w->keys[i].key);
        key_w = kw > key_w ? kw : key_w;
    }
    key_w = key_w > KEY_COL_MAX ? KEY_COL_MAX : key_w;
    int room = rows - 4; /* three header lines, and the last row left empty */
    int shown = 0;
    for (size_t i = 0; i < w->nk; i++)
        shown += w->keys[i].present;
    if (w->nk == 0) {
        fprintf(f, "no metrics logged yet%s", eol);
    } else if (shown && room / shown >= 2) {
        /* blocks: a line, a chart, and a blank line between when it fits */
        int per = room / shown, chart = per >= 4 ? per - 2 : per - 1;
        chart = chart > CHART_ROWS_MAX ? CHART_ROWS_MAX : chart;
        int first = 1;
        for (size_t i = 0; i < w->nk; i++) {
            const struct wkey *k = &w->keys[i];
            if (!k->present)
                continue;
            if (!first && per >= 4)
                fputs(eol, f);
            first = 0;
            metric_block(k, f, eol, cols, chart, key_w);
        }
        for (size_t i = 0; i < w->nk; i++) {
            char key[KEY_COL_MAX * 4 + 8];
            if (w->keys[i].present)
                continue;
            render_fit(w->keys[i].key, key_w, key, sizeof(key));
            fprintf(f, "%s  (not logged yet)%s", key, eol);
        }
    } else {
        /* metric, value, step, pts/s, min, the chart, max */
        int fixed = (int)key_w + 2 + 12 + 2 + 10 + 2 + 9 + 2 + SCALE_W + 1 + 1 + SCALE_W + 1;
        size_t cells = cols - fixed > 8 ? (size_t)(cols - fixed) : 8;
        cells = cells > RENDER_SPARK_MAX ? RENDER_SPARK_MAX : cells;
        render_pad(f, "METRIC", key_w, 0, NULL);
        fprintf(f, "  %12s  %10s  %9s  %*s %-*s MAX%s", "VALUE", "STEP", "PTS/S", SCALE_W, "MIN",
                (int)cells, "TREND", eol);
        room--;
        for (size_t i = 0; i < w->nk; i++) {
            const struct wkey *k = &w->keys[i];
            char key[KEY_COL_MAX * 4 + 8], val[32], rate[32], spark[RENDER_SPARK_MAX * 3 + 1];
            char lo_s[32], hi_s[32];
            double v[RENDER_SPARK_MAX], lo, hi;
            int64_t s0, s1;
            if (room <= 1 && i + 1 < w->nk) {
                fprintf(f, "... %zu more (choose with --metric)%s", w->nk - i, eol);
                break;
            }
            room--;
            render_fit(k->key, key_w, key, sizeof(key));
            render_pad(f, key, key_w, 0, NULL);
            if (!k->present) {
                fprintf(f, "  %12s%s", "(not logged yet)", eol);
                continue;
            }
            render_num(k->last, val, sizeof(val));
            if (isnan(k->rate))
                snprintf(rate, sizeof(rate), "-");
            else
                snprintf(rate, sizeof(rate), "%.1f", k->rate);
            size_t n = chart_values(k, cells, v, &lo, &hi, &s0, &s1);
            render_sparkline(v, n, spark, sizeof(spark));
            scale_label(lo, lo_s, sizeof(lo_s));
            scale_label(hi, hi_s, sizeof(hi_s));
            fprintf(f, "  %12s  %10lld  %9s  %*s %s %s%s", val, (long long)k->last_step, rate,
                    SCALE_W, lo_s, spark, hi_s, eol);
        }
    }
    if (screen)
        fputs("\x1b[J", f);
}

static int draw(const struct watch *w, int screen)
{
    char *mem = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&mem, &len);
    if (!f)
        return -1;
    /* built whole, then written at once: no half-drawn frame flickers */
    frame(w, f, screen);
    fclose(f);
    fwrite(mem, 1, len, stdout);
    free(mem);
    return fflush(stdout) ? -1 : 0;
}

/* Line mode: one line when some metric got new points since the last line. */
static int line(struct watch *w)
{
    int changed = 0;
    int64_t step = 0;

    for (size_t i = 0; i < w->nk; i++) {
        struct wkey *k = &w->keys[i];
        if (!k->present)
            continue;
        changed |= k->count != k->shown_count;
        step = k->last_step > step ? k->last_step : step;
    }
    if (!changed)
        return 0;
    printf("step=%lld", (long long)step);
    for (size_t i = 0; i < w->nk; i++) {
        struct wkey *k = &w->keys[i];
        char v[32];
        if (!k->present)
            continue;
        render_num(k->last, v, sizeof(v));
        printf(" %s=%s", k->key, v);
        k->shown_count = k->count;
    }
    putchar('\n');
    return fflush(stdout) ? -1 : 0;
}

/* Waits up to ms for a key; returns 1 when the user asked to quit. */
static int wait_key(int ms, int keys)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(&p, keys ? 1 : 0, ms) > 0 && (p.revents & POLLIN)) {
        char buf[64];
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == 'q' || buf[i] == 'Q' || buf[i] == 3 /* ^C without ISIG */)
                return 1;
        if (n == 0)
            return 0;
    }
    return 0;
}

int cmd_watch(int argc, char **argv)
{
    static const struct option longopts[] = {{"metric", required_argument, NULL, 'm'},
                                             {"interval", required_argument, NULL, 'i'},
                                             CLI_COMMON_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    static const char *sel[MAX_KEYS];
    const char *name = argv[0], *run;
    struct watch *w = NULL;
    struct term t = {0};
    struct track_err err = {0};
    int64_t interval = 250;
    size_t n_sel = 0;
    int opt, rc = 1, quit = 0;

    opterr = 0;
    while ((opt = cli_getopt(argc, argv, "h", longopts)) != -1) {
        if (opt == 'm') {
            if (n_sel == MAX_KEYS)
                cli_usage_error(name, "--metric: at most %d", MAX_KEYS);
            if (!*optarg || strlen(optarg) > 250)
                cli_usage_error(name, "--metric: expected a key of 1 to 250 bytes");
            sel[n_sel++] = optarg;
        } else if (opt == 'i') {
            interval = cli_arg_i64(name, "--interval (ms)", optarg, 50, 60000);
        } else if (!cli_common_opt(opt, name)) {
            cli_usage_error(name, "unknown option");
        }
    }
    if (argc - optind > 1)
        cli_usage_error(name, "expected at most one RUN");
    run = optind < argc ? argv[optind] : cli_run_arg();
    if (!run)
        cli_usage_error(name, "no run: give RUN, --run RUN or set TRACK_RUN_ID");

    w = calloc(1, sizeof(*w));
    if (!w)
        return cli_error("out of memory");
    w->sel = sel;
    w->n_sel = n_sel;
    for (size_t i = 0; i < n_sel; i++)
        find_key(w, sel[i], 1); /* shown in the order asked, logged or not */
    w->c = cli_client();
    {
        /* resolve a prefix once; refreshes then use the full id */
        struct track_result *res;
        struct track_run_info info;
        if (track_run_get(w->c, run, &res, &info, &err)) {
            cli_track_error(&err);
            goto out;
        }
        track_run_id_hex(&info.id, w->hex);
        track_result_free(res);
    }
    w->tty = isatty(STDOUT_FILENO);
    stop_signal = 0;
    signals_install(&t);
    if (w->tty)
        term_enter(&t);

    int warned = 0;
    for (;;) {
        int64_t t0 = mono_ms();
        if (refresh(w, &err)) {
            if (stop_signal)
                break;
            /* trackd restarting is worth waiting for; anything else ends it */
            if (err.code != TRACK_E_UNAVAILABLE) {
                term_restore(&t);
                cli_track_error(&err);
                goto out;
            }
            snprintf(w->problem_buf, sizeof(w->problem_buf), "(%s: retrying)", err.msg);
            w->problem = w->problem_buf;
            if (!w->tty && !warned++)
                cli_warn("%s: retrying", err.msg);
        } else {
            w->problem = NULL;
            warned = 0;
        }
        if (w->tty ? draw(w, 1) : line(w))
            break; /* stdout went away */
        if (!w->problem && w->status != TRACK_RUNNING)
            break;
        int64_t left = interval - (mono_ms() - t0);
        if (!stop_signal && wait_key(left > 0 ? (int)left : 0, t.raw))
            quit = 1;
        if (quit || stop_signal)
            break;
    }
    term_restore(&t);
    if (stop_signal) {
        rc = 128 + stop_signal;
    } else if (quit) {
        rc = 0;
    } else if (w->status != TRACK_RUNNING) {
        /* the run ended: leave its last frame on the normal screen */
        if (w->tty)
            draw(w, 0);
        else
            printf("status=%s\n", cli_status_name(w->status));
        rc = fflush(stdout) ? 1 : 0;
    }
out:
    term_restore(&t);
    signals_restore(&t);
    if (w->c)
        track_client_close(w->c);
    free(w);
    return rc;
}
