/* SPDX-License-Identifier: MIT */
/*
 * socket-activation.h - listening sockets handed over by systemd.
 *
 * A socket unit opens the sockets and passes them from fd 3 on, with
 * LISTEN_PID (which must be ours), LISTEN_FDS (how many) and, optionally,
 * LISTEN_FDNAMES (a colon-separated name for each).  A passed socket
 * replaces the configured listener with the same address: for an
 * inet_listener the same address family, IP address and port ("*" is
 * 0.0.0.0, "::" is [::]); for a unix_listener the same path.  Names are
 * only used to describe the sockets in the log.  A socket that no listener
 * takes is closed, with a warning naming it.
 */
#ifndef CORRAL_SOCKET_ACTIVATION_H
#define CORRAL_SOCKET_ACTIVATION_H

#include "config.h"

/* Takes over the passed sockets, if LISTEN_PID is ours, and removes the
 * LISTEN_* variables from the environment.  Call first thing in main(). */
void corral_socket_activation_init(void);
/* The passed socket bound to the address `config` describes, or -1.  The
 * caller owns the descriptor from now on. */
int corral_socket_activation_take(const corral_listener_config *config);
/* Closes every passed socket that no listener took, with a warning, and
 * forgets the rest.  Call once every listener has been opened. */
void corral_socket_activation_close_unused(void);

#endif
