/*
 * prog.c: a program built against an installed libtrack the way a user
 * builds one (`cc prog.c $(pkg-config --cflags --libs track)`), by
 * tests/package/check.sh. It starts a run in experiment "pkg", logs a param
 * and three points of "loss", ends the run and prints the run's id.
 * Exit 0, or 1 with the error on stderr.
 */
#include <stdio.h>
#include <track.h>

int main(void)
{
    struct track_opts o = {.no_spool = 1};
    struct track_run_opts ro = {.experiment = "pkg"};
    struct track_client *c = NULL;
    struct track_err err = {0};
    track_run_id id;
    char hex[33];
    int rc = 1;

    if (track_client_open(&o, &c, &err) || track_run_start(c, &ro, &id, &err) ||
        track_log_param(c, "built", "pkg-config", &err))
        goto out;
    for (int step = 0; step < 3; step++)
        if (track_log_metric(c, "loss", 1.0 / (step + 1), step, 0, &err))
            goto out;
    if (track_run_end(c, TRACK_FINISHED, &err))
        goto out;
    track_run_id_hex(&id, hex);
    printf("%s\n", hex);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "prog: %s\n", err.msg);
    track_client_close(c);
    return rc;
}
