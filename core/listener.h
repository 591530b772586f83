/* SPDX-License-Identifier: MIT */
/*
 * listener.h - a service's listening sockets.
 *
 * The master opens every listener once, non-blocking and close-on-exec,
 * and passes the same open file to each child from fd 7 on.  It watches a
 * listener only while the policy asks it to, and accepts only to drop.
 */
#ifndef CORRAL_LISTENER_H
#define CORRAL_LISTENER_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "toggle-watch.h"

typedef struct corral_listener {
    const corral_listener_config *config; /* owned by the corral_config */
    char *label;    /* "127.0.0.1:7000" or the unix path, for messages */
    int fd;
    corral_toggle_watch *watch; /* from the first time it is watched */
    /* A unix socket made to replace a running one waits in a private
     * folder (staging_dir, open as staging_fd; -1 when none) until
     * corral_listener_commit() renames it into place. */
    char *staging_dir;
    int staging_fd;
    dev_t dev;      /* a unix socket's identity: its path is unlinked only */
    ino_t ino;      /* while it still names this socket */
    struct corral_listener *replaces;
    bool keep_path; /* its path belongs to a successor or, for a socket passed
                     * by systemd, to the service manager: do not unlink */
} corral_listener;

/* Connections waiting in the accept queue of a TCP listener (TCP_INFO);
 * 0 for a unix listener, whose queue cannot be read this way. */
unsigned corral_listener_queued(const corral_listener *listener);

/* Opens the socket described by `config` with `backlog`.  A unix socket is
 * made in a private folder beside its path, given its mode and, when
 * running as root, its owner there, and renamed into place: no symlink is
 * ever followed.  A stale socket at the path is replaced; a live one, or
 * anything that is not a socket, is an error. */
corral_listener *corral_listener_open(const corral_listener_config *config, int backlog,
                                      GError **error);
/* Opens a listener for a reload, where `running` is the current listener
 * of the same kind and address (or NULL).  An inet socket is shared with
 * it, so no client is refused while the generations change over; a unix
 * socket is created anew beside the running one and takes its path only
 * at commit. */
corral_listener *corral_listener_open_successor(const corral_listener_config *config,
                                                int backlog, corral_listener *running,
                                                GError **error);
/* Puts a successor's unix socket in place of the one it replaces. */
bool corral_listener_commit(corral_listener *listener, GError **error);
/* True when both configurations name the same socket. */
bool corral_listener_same_address(const corral_listener_config *a,
                                  const corral_listener_config *b);

/* Closes the socket and frees.  A unix socket's path is unlinked only
 * while it still names this very socket. */
void corral_listener_free(corral_listener *listener);

/* Accepts and closes queued connections: all of them when `max` is 0. */
unsigned corral_listener_drop(corral_listener *listener, unsigned max);

#endif
