/* SPDX-License-Identifier: MIT */
/*
 * toggle-watch.h - a watch on one descriptor, switched on and off cheaply.
 *
 * The dovecot policy watches a service's listeners only while no process
 * has a free slot (rule M3), so under load listening goes on and off as
 * often as every other status record.  With g_unix_fd_add() and
 * g_source_remove() each switch allocates a GSource and writes twice to
 * GLib's wakeup eventfd, which then costs the loop an extra iteration; a
 * busy pool at concurrency 20 made some 1,800 such writes per 20,000
 * connections.  A toggle watch stays attached from its first use and
 * switches by changing the events it asks poll() for: no allocation and
 * no system call.  While off, its descriptor stays in the poll set with no
 * events, which costs poll() a readiness check of that socket.
 *
 * It may recurse (GLib would otherwise take its fd out of the poll set and
 * put it back, with two more eventfd writes, around every dispatch):
 * corrald never iterates the main loop from a callback.
 */
#ifndef CORRAL_TOGGLE_WATCH_H
#define CORRAL_TOGGLE_WATCH_H

#include <stdbool.h>

typedef struct corral_toggle_watch corral_toggle_watch;

/* Called while on and the descriptor is readable (or in error). */
typedef void corral_toggle_watch_fn(void *data);

/* Watches `fd` (not owned) on the thread-default main context; starts off. */
corral_toggle_watch *corral_toggle_watch_new(int fd, corral_toggle_watch_fn *fn, void *data);
/* Safe from inside the callback.  NULL is ignored. */
void corral_toggle_watch_free(corral_toggle_watch *watch);

void corral_toggle_watch_set(corral_toggle_watch *watch, bool on);
bool corral_toggle_watch_is_on(const corral_toggle_watch *watch);
/* Calls `fn` once, on or off, when the descriptor hangs up, fails or is
 * shut down for reading (POLLHUP, POLLERR, POLLNVAL, POLLRDHUP), and
 * stops polling it: a listening socket a process shut down reports
 * exactly that, for ever. */
void corral_toggle_watch_on_broken(corral_toggle_watch *watch, corral_toggle_watch_fn *fn);

#endif
