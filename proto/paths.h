/*
 * paths.h: where a user's track lives by default, shared by trackd and the
 * clients so both agree without configuration:
 *   socket   ipc://$XDG_RUNTIME_DIR/track/trackd.sock, or
 *            ipc:///tmp/track-<uid>/trackd.sock without XDG_RUNTIME_DIR
 *   data     $XDG_DATA_HOME/track, or ~/.local/share/track
 *   state    $XDG_STATE_HOME/track, or ~/.local/state/track (the spool)
 * Each returns 0, or -1 when the result does not fit in `len`.
 */
#ifndef TRACK_PATHS_H
#define TRACK_PATHS_H

#include <stddef.h>

int paths_default_server(char *buf, size_t len);
int paths_default_data_dir(char *buf, size_t len);
int paths_state_dir(char *buf, size_t len);
/* mkdir -p with mode for each missing component; 0 or -1 (errno set). */
int paths_mkdirs(const char *path, unsigned mode);

#endif
