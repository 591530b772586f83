/* SPDX-License-Identifier: MIT */
/*
 * status-watch.h - when the master reads a service's status pipe.
 *
 * Every status record that wakes the master costs it a sleep and a wakeup,
 * about 2.4 us of mostly kernel time, where a record read in a batch costs
 * about 0.2 us (docs/benchmarks.md).  A busy pool sends two records per
 * connection, so reading each one as it comes makes the master's cost per
 * connection a wakeup's.
 *
 * A status watch therefore reads at once when the pipe has been quiet for
 * `interval`, and otherwise at most once per interval, taking everything
 * that has piled up meanwhile: the first record after a pause is seen at
 * once, and under load records wait at most `interval`.  Two things keep
 * the wait from mattering:
 *   - the owner's `urgent` callback says when a waiting record could hold
 *     up a decision (for a service: when at most one process is free, so
 *     that the next record may be the one that leaves none), and the pipe
 *     is then read at once;
 *   - the core reads the pipe before it acts on any other event (a
 *     listener wakeup, a timer, an exit, an operator's query), so no
 *     decision is taken on a stale view.
 * An interval of 0 reads on every wakeup.
 *
 * The watch is a GSource of the thread-default main context.  It may
 * recurse: corrald never iterates the main loop from a callback, and a
 * source that may not recurse costs two wakeup-eventfd writes per dispatch.
 */
#ifndef CORRAL_STATUS_WATCH_H
#define CORRAL_STATUS_WATCH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct corral_status_watch corral_status_watch;

/* Reads the pipe until it is empty (or the owner gives up on it). */
typedef void corral_status_watch_read_fn(void *data);
/* True when a record left waiting could delay a decision. */
typedef bool corral_status_watch_urgent_fn(void *data);

/* Watches `fd` (not owned; the caller closes it after freeing the watch).
 * `urgent` may be NULL: never urgent. */
corral_status_watch *corral_status_watch_new(int fd, uint64_t interval_usec,
                                             corral_status_watch_read_fn *read,
                                             corral_status_watch_urgent_fn *urgent,
                                             void *data);
/* Safe from inside the read callback. NULL is ignored. */
void corral_status_watch_free(corral_status_watch *watch);

#endif
