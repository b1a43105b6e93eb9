/*
 * paths.h: where a user's track lives by default, shared by trackd and the
 * clients so both agree without configuration:
 *   socket   ipc://$XDG_RUNTIME_DIR/track/trackd.sock, or
 *            ipc://${TRACK_TMPDIR:-/tmp}/track-<uid>/trackd.sock without
 *            XDG_RUNTIME_DIR
 *   data     $XDG_DATA_HOME/track, or ~/.local/share/track
 *   state    $XDG_STATE_HOME/track, or ~/.local/state/track (the spool)
 * Each returns 0, or -1 when the result does not fit in `len`.
 *
 * The default socket's directory is private: made 0700 and, before every
 * use by trackd or a client, checked to be a real directory (not a
 * symlink) owned by the caller with no access for group or others, as tmux
 * and ssh-agent check theirs. Under a shared /tmp anyone could otherwise
 * create it first and receive every request.
 */
#ifndef TRACK_PATHS_H
#define TRACK_PATHS_H

#include <stddef.h>

int paths_default_server(char *buf, size_t len);
/* The directory of the default socket (no trailing slash). */
int paths_default_socket_dir(char *buf, size_t len);
int paths_default_data_dir(char *buf, size_t len);
int paths_state_dir(char *buf, size_t len);
/* mkdir -p with mode for each missing component; 0 or -1 (errno set). */
int paths_mkdirs(const char *path, unsigned mode);

/* 1 when `uri` (ipc://PATH) names a socket inside the default socket
 * directory, which must then pass paths_check_private_dir; 0 otherwise. */
int paths_is_default_socket(const char *uri);
/* Checks that `dir` is a directory (lstat: a symlink fails) owned by the
 * calling user with no permission bits for group or others. Returns 0 when
 * it is, 1 when it does not exist, -1 when it is unsafe or cannot be
 * examined, with a message in `msg` naming the path, its owner and mode. */
int paths_check_private_dir(const char *dir, char *msg, size_t msglen);
/* Creates `dir` 0700 when missing (its parent must exist), then checks it
 * as paths_check_private_dir does. 0, or -1 with a message in `msg`. */
int paths_prepare_private_dir(const char *dir, char *msg, size_t msglen);

#endif
