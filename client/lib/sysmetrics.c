/*
 * sysmetrics.c: the system metrics sampler (track_system_metrics_start).
 *
 * One thread per client, started by its owner and stopped by it (or by
 * track_client_close). The thread logs through a clone of the owner's client
 * (cl_client_clone): its own socket, its own buffers, the same run, so the
 * owner never needs a lock and the thread never touches the owner's client.
 * Every nanomsg socket the clone opens is opened and closed on this thread.
 *
 * A sample reads, in this order:
 *   - /proc/[pid]/stat of every process, to find the tree under the root
 *     (parent links, a few passes until nothing new joins) and sum its
 *     threads, RSS and CPU ticks. CPU % is the ticks a process spent since
 *     the previous sample (all of them for a process new since then) over
 *     the wall time between the samples: 100 is one core busy. A process
 *     that ended in between is not counted for its last stretch;
 *   - /proc/meminfo: MemTotal and MemAvailable (used = total - available);
 *   - /proc/diskstats: sectors read and written by whole disks (the names
 *     in /sys/block, less loop, ram, zram and device-mapper devices, which
 *     would count the same bytes twice), as bytes per second;
 *   - /proc/net/dev: bytes received and sent by every interface but lo;
 *   - NVML, when libnvidia-ml.so.1 was loaded at start (dlopen): each
 *     GPU's utilisation and memory used.
 * The first sample is taken at start and only primes the rates; samples
 * logged are those at 1, 2, ... intervals after it, steps 0, 1, ...; a run
 * that stops before its first interval still gets one, step 0, at the stop
 * (its rates over the time it ran), so every tracked run has its system
 * metrics.
 *
 * The cost is one open/read/close per process per sample plus four small
 * files: about 1 ms on a host with a few hundred processes.
 */
#include "internal.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SM_MAX_PROCS 65536 /* processes read per sample, at most */
#define SM_MAX_DISKS 64
#define SM_MAX_GPUS  16

struct sm_proc {
    int pid, ppid;
    int64_t ticks; /* utime + stime */
    int64_t threads, rss_pages;
    int in_tree;
};

/* NVML's C API, declared here: nvml.h is not installed where it is absent */
typedef int (*nvml_void_fn)(void);
typedef int (*nvml_count_fn)(unsigned int *);
typedef int (*nvml_handle_fn)(unsigned int, void **);
struct nvml_util {
    unsigned int gpu, memory;
};
struct nvml_mem {
    unsigned long long total, free, used;
};
typedef int (*nvml_util_fn)(void *, struct nvml_util *);
typedef int (*nvml_mem_fn)(void *, struct nvml_mem *);

struct cl_sysmet {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop; /* under mu */
    struct track_client *own;
    pid_t root;
    int interval_ms;
    long hz, page;

    struct sm_proc *procs; /* this sample's processes, sorted by pid */
    size_t n_procs, cap_procs;
    struct sm_proc *prev; /* the previous sample's tree, sorted by pid */
    size_t n_prev, cap_prev;
    int64_t prev_ms;
    char disks[SM_MAX_DISKS][32];
    int n_disks;
    int64_t prev_rd, prev_wr, prev_rx, prev_tx; /* bytes, cumulative; -1: not read */

    void *nvml;
    unsigned int n_gpus;
    void *gpu[SM_MAX_GPUS];
    nvml_util_fn gpu_util;
    nvml_mem_fn gpu_mem;
    nvml_void_fn gpu_shutdown;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads a small file into buf (NUL-terminated); its length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t o = 0;
    while (o + 1 < len) {
        ssize_t r = read(fd, buf + o, len - 1 - o);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        o += (size_t)r;
    }
    close(fd);
    buf[o] = '\0';
    return (ssize_t)o;
}

/* One /proc/PID/stat into p; 0, or -1 (gone, unreadable, malformed). The
 * command name may hold spaces and parentheses: fields follow its last ')'. */
static int read_stat(int pid, struct sm_proc *p)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (slurp(path, buf, sizeof(buf)) <= 0)
        return -1;
    char *s = strrchr(buf, ')');
    if (!s)
        return -1;
    s += 2; /* field 3, the state */
    if (*s == 'Z' || *s == 'X')
        return -1; /* a zombie has spent its time and frees nothing more */
    s++;
    long long f[25]; /* f[k]: field k, in proc(5)'s numbering */
    for (int k = 4; k <= 24; k++) {
        char *end;
        f[k] = strtoll(s, &end, 10);
        if (end == s)
            return -1;
        s = end;
    }
    p->pid = pid;
    p->ppid = (int)f[4];
    p->ticks = f[14] + f[15];
    p->threads = f[20];
    p->rss_pages = f[24];
    p->in_tree = 0;
    return 0;
}

static int cmp_pid(const void *a, const void *b)
{
    const struct sm_proc *x = a, *y = b;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Reads every process and marks the tree under s->root (in_tree). */
static void read_procs(struct cl_sysmet *s)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    s->n_procs = 0;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        if (s->n_procs == s->cap_procs) {
            size_t cap = s->cap_procs ? s->cap_procs * 2 : 512;
            if (cap > SM_MAX_PROCS)
                break;
            struct sm_proc *np = realloc(s->procs, cap * sizeof(*np));
            if (!np)
                break;
            s->procs = np;
            s->cap_procs = cap;
        }
        long pid = strtol(e->d_name, NULL, 10);
        if (pid > 0 && pid < 1L << 30 && read_stat((int)pid, &s->procs[s->n_procs]) == 0)
            s->n_procs++;
    }
    closedir(d);
    qsort(s->procs, s->n_procs, sizeof(*s->procs), cmp_pid);
    /* parents usually precede their children in pid order, so one pass
     * finds most of the tree; pid reuse after wrap-around needs more */
    for (size_t i = 0; i < s->n_procs; i++)
        s->procs[i].in_tree = s->procs[i].pid == (int)s->root;
    for (int changed = 1, pass = 0; changed && pass < 64; pass++) {
        changed = 0;
        for (size_t i = 0; i < s->n_procs; i++) {
            struct sm_proc *p = &s->procs[i];
            if (p->in_tree)
                continue;
            struct sm_proc key = {.pid = p->ppid};
            struct sm_proc *par = bsearch(&key, s->procs, s->n_procs, sizeof(*s->procs), cmp_pid);
            if (par && par->in_tree) {
                p->in_tree = 1;
                changed = 1;
            }
        }
    }
}

/* Cumulative bytes read and written by the whole disks. */
static void read_disks(struct cl_sysmet *s, int64_t *rd, int64_t *wr)
{
    static char buf[65536];
    *rd = *wr = -1;
    if (slurp("/proc/diskstats", buf, sizeof(buf)) <= 0)
        return;
    *rd = *wr = 0;
    for (char *line = buf; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        unsigned maj, min;
        char name[64];
        unsigned long long f[8];
        if (sscanf(line, "%u %u %63s %llu %llu %llu %llu %llu %llu %llu %llu", &maj, &min, name,
                   &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7]) != 11)
            continue;
        for (int i = 0; i < s->n_disks; i++)
            if (strcmp(name, s->disks[i]) == 0) {
                *rd += (int64_t)f[2] * 512; /* sectors read: always 512-byte units */
                *wr += (int64_t)f[6] * 512;
            }
    }
}

/* Cumulative bytes received and sent by every interface but lo. */
static void read_net(int64_t *rx, int64_t *tx)
{
    static char buf[32768];
    *rx = *tx = -1;
    if (slurp("/proc/net/dev", buf, sizeof(buf)) <= 0)
        return;
    *rx = *tx = 0;
    for (char *line = buf; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        char *colon = strchr(line, ':');
        char *nl = strchr(line, '\n');
        if (!colon || (nl && colon > nl))
            continue;
        char *name = line;
        while (*name == ' ')
            name++;
        if (colon - name == 2 && strncmp(name, "lo", 2) == 0)
            continue;
        unsigned long long f[9];
        if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2],
                   &f[3], &f[4], &f[5], &f[6], &f[7], &f[8]) == 9) {
            *rx += (int64_t)f[0];
            *tx += (int64_t)f[8];
        }
    }
}

/* The whole disks: /sys/block's entries that are not virtual stand-ins. */
static void find_disks(struct cl_sysmet *s)
{
    static const char *const skip[] = {"loop", "ram", "zram", "dm-", "md", "nbd", "sr"};
    DIR *d = opendir("/sys/block");
    struct dirent *e;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL && s->n_disks < SM_MAX_DISKS) {
        int bad = e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(s->disks[0]);
        for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]) && !bad; i++)
            bad = strncmp(e->d_name, skip[i], strlen(skip[i])) == 0;
        if (!bad)
            memcpy(s->disks[s->n_disks++], e->d_name, strlen(e->d_name) + 1);
    }
    closedir(d);
}

static int said_no_gpu; /* the info line goes out once per process */

/* Loads NVML and finds the GPUs; one info line on stderr when it cannot. */
static void nvml_open(struct cl_sysmet *s)
{
    s->nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!s->nvml) {
        if (!__atomic_exchange_n(&said_no_gpu, 1, __ATOMIC_RELAXED))
            fprintf(stderr, "track: info: no GPU metrics (libnvidia-ml.so.1 not loaded)\n");
        return;
    }
    nvml_void_fn init = (nvml_void_fn)dlsym(s->nvml, "nvmlInit_v2");
    nvml_count_fn count = (nvml_count_fn)dlsym(s->nvml, "nvmlDeviceGetCount_v2");
    nvml_handle_fn handle = (nvml_handle_fn)dlsym(s->nvml, "nvmlDeviceGetHandleByIndex_v2");
    s->gpu_util = (nvml_util_fn)dlsym(s->nvml, "nvmlDeviceGetUtilizationRates");
    s->gpu_mem = (nvml_mem_fn)dlsym(s->nvml, "nvmlDeviceGetMemoryInfo");
    s->gpu_shutdown = (nvml_void_fn)dlsym(s->nvml, "nvmlShutdown");
    unsigned int n = 0;
    if (!init || !count || !handle || !s->gpu_util || !s->gpu_mem || !s->gpu_shutdown ||
        init() != 0) {
        if (!__atomic_exchange_n(&said_no_gpu, 1, __ATOMIC_RELAXED))
            fprintf(stderr, "track: info: no GPU metrics (NVML did not initialise)\n");
        dlclose(s->nvml);
        s->nvml = NULL;
        return;
    }
    if (count(&n) != 0)
        n = 0;
    for (unsigned int i = 0; i < n && s->n_gpus < SM_MAX_GPUS; i++)
        if (handle(i, &s->gpu[s->n_gpus]) == 0)
            s->n_gpus++;
}

static void nvml_close(struct cl_sysmet *s)
{
    if (!s->nvml)
        return;
    s->gpu_shutdown();
    dlclose(s->nvml);
    s->nvml = NULL;
}

static void put(struct cl_sysmet *s, const char *key, double v, int64_t step)
{
    /* errors (the daemon away: spooled; a run ended) are the owner's to
     * see on its own calls; the sampler goes on */
    track_log_metric(s->own, key, v, step, 0, NULL);
}

static double rate(int64_t now, int64_t prev, double secs)
{
    return now < 0 || prev < 0 || now < prev ? 0 : (double)(now - prev) / secs;
}

/* One sample: reads everything, logs it as `step` unless step < 0 (the
 * priming sample), and keeps what the next one's rates need. */
static void sample(struct cl_sysmet *s, int64_t step)
{
    int64_t now = mono_ms();
    double secs = (double)(now - s->prev_ms) / 1000.0;
    if (secs <= 0)
        secs = 1e-3;

    read_procs(s);
    int64_t ticks = 0, threads = 0, rss = 0, found = 0;
    for (size_t i = 0; i < s->n_procs; i++) {
        struct sm_proc *p = &s->procs[i];
        if (!p->in_tree)
            continue;
        found++;
        threads += p->threads;
        rss += p->rss_pages;
        struct sm_proc *old =
            s->n_prev ? bsearch(p, s->prev, s->n_prev, sizeof(*s->prev), cmp_pid) : NULL;
        int64_t d = old ? p->ticks - old->ticks : p->ticks;
        ticks += d > 0 ? d : 0;
    }
    /* the tree becomes the previous sample, in place of the last one */
    if (s->cap_prev < (size_t)found) {
        struct sm_proc *np = realloc(s->prev, (size_t)found * sizeof(*np));
        if (np) {
            s->prev = np;
            s->cap_prev = (size_t)found;
        }
    }
    s->n_prev = 0;
    for (size_t i = 0; i < s->n_procs && s->n_prev < s->cap_prev; i++)
        if (s->procs[i].in_tree)
            s->prev[s->n_prev++] = s->procs[i];

    char mem[4096];
    double total = -1, avail = -1;
    if (slurp("/proc/meminfo", mem, sizeof(mem)) > 0) {
        char *t = strstr(mem, "MemTotal:"), *a = strstr(mem, "MemAvailable:");
        if (t)
            total = strtod(t + 9, NULL) * 1024;
        if (a)
            avail = strtod(a + 13, NULL) * 1024;
    }
    int64_t rd, wr, rx, tx;
    read_disks(s, &rd, &wr);
    read_net(&rx, &tx);

    if (step >= 0) {
        if (found) {
            put(s, "system/cpu_percent", (double)ticks * 100.0 / (double)s->hz / secs, step);
            put(s, "system/rss_bytes", (double)rss * (double)s->page, step);
            put(s, "system/threads", (double)threads, step);
        }
        if (total >= 0 && avail >= 0) {
            put(s, "system/mem_used_bytes", total - avail, step);
            put(s, "system/mem_available_bytes", avail, step);
        }
        if (rd >= 0) {
            put(s, "system/disk_read_bytes_per_s", rate(rd, s->prev_rd, secs), step);
            put(s, "system/disk_write_bytes_per_s", rate(wr, s->prev_wr, secs), step);
        }
        if (rx >= 0) {
            put(s, "system/net_rx_bytes_per_s", rate(rx, s->prev_rx, secs), step);
            put(s, "system/net_tx_bytes_per_s", rate(tx, s->prev_tx, secs), step);
        }
        for (unsigned int i = 0; i < s->n_gpus; i++) {
            struct nvml_util u;
            struct nvml_mem m;
            char key[64];
            if (s->gpu_util(s->gpu[i], &u) == 0) {
                snprintf(key, sizeof(key), "system/gpu%u_util_percent", i);
                put(s, key, u.gpu, step);
            }
            if (s->gpu_mem(s->gpu[i], &m) == 0) {
                snprintf(key, sizeof(key), "system/gpu%u_mem_used_bytes", i);
                put(s, key, (double)m.used, step);
            }
        }
    }
    s->prev_ms = now;
    s->prev_rd = rd;
    s->prev_wr = wr;
    s->prev_rx = rx;
    s->prev_tx = tx;
}

static void *sampler(void *arg)
{
    struct cl_sysmet *s = arg;
    struct timespec due;
    int64_t step = 0;

    clock_gettime(CLOCK_MONOTONIC, &due);
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        due.tv_sec += s->interval_ms / 1000;
        due.tv_nsec += (long)(s->interval_ms % 1000) * 1000000L;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!s->stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->cv, &s->mu, &due);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->mu);
        sample(s, step++);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    if (step == 0)
        sample(s, 0);
    return NULL;
}

static void sysmet_free(struct cl_sysmet *s)
{
    nvml_close(s);
    track_client_close(s->own); /* flushes the last samples */
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->procs);
    free(s->prev);
    free(s);
}

int track_system_metrics_start(struct track_client *c, pid_t root, int interval_ms,
                               struct track_err *err)
{
    struct cl_sysmet *s;
    pthread_condattr_t ca;
    int rc;

    if (c->sysmet)
        return cl_fail(err, TRACK_E_ALREADY_EXISTS,
                       "system metrics: already sampled on this "
                       "client (track_system_metrics_stop first)");
    if (!c->has_run)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT, "system metrics: no current run");
    if (interval_ms == 0)
        interval_ms = 5000;
    if (interval_ms < 100 || interval_ms > 86400000)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "system metrics: interval of %d ms is outside 100 to 86400000", interval_ms);
    if (root <= 0)
        return cl_fail(err, TRACK_E_INVALID_ARGUMENT,
                       "system metrics: root pid %d is not a process", (int)root);
    s = calloc(1, sizeof(*s));
    if (!s)
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "out of memory");
    if ((rc = cl_client_clone(c, &s->own, err)) != 0) {
        free(s);
        return rc;
    }
    /* the sampler's points may wait one interval, not the owner's flush interval */
    if (s->own->flush_interval_ms > interval_ms)
        s->own->flush_interval_ms = interval_ms;
    s->root = root;
    s->interval_ms = interval_ms;
    s->hz = sysconf(_SC_CLK_TCK);
    s->page = sysconf(_SC_PAGESIZE);
    if (s->hz <= 0)
        s->hz = 100;
    if (s->page <= 0)
        s->page = 4096;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    find_disks(s);
    nvml_open(s);
    s->prev_ms = mono_ms();
    sample(s, -1);
    if ((rc = pthread_create(&s->th, NULL, sampler, s)) != 0) {
        sysmet_free(s);
        return cl_fail(err, TRACK_E_RESOURCE_EXHAUSTED, "system metrics: cannot start a thread: %s",
                       strerror(rc));
    }
    pthread_setname_np(s->th, "track-sysmet");
    c->sysmet = s;
    return 0;
}

void cl_sysmet_stop(struct track_client *c)
{
    struct cl_sysmet *s = c->sysmet;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    c->sysmet = NULL;
    sysmet_free(s);
}

int track_system_metrics_stop(struct track_client *c, struct track_err *err)
{
    (void)err;
    cl_sysmet_stop(c);
    return 0;
}
