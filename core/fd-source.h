/* SPDX-License-Identifier: MIT */
/*
 * fd-source.h - what the master's own fd GSources (status-watch.c,
 * toggle-watch.c) share: each owns its GPollFD, so that it can change the
 * events it polls for in place, without GLib's wakeup eventfd, and each
 * may recurse.
 */
#ifndef CORRAL_FD_SOURCE_H
#define CORRAL_FD_SOURCE_H

#include <glib.h>

/* Names `source`, polls `pollfd` (which lives inside the source) and
 * attaches it to the thread-default main context. */
static inline void corral_fd_source_attach(GSource *source, GPollFD *pollfd, const char *name)
{
    g_source_set_name(source, name);
    g_source_add_poll(source, pollfd);
    /* A source that may not recurse has its fd taken out of the poll set
     * and put back around every dispatch, two eventfd writes; corrald
     * never iterates the main loop from a callback. */
    g_source_set_can_recurse(source, TRUE);
    g_source_attach(source, g_main_context_get_thread_default());
}

/* Safe from the source's own dispatch: GLib holds a reference until it
 * returns.  NULL is ignored. */
static inline void corral_fd_source_free(GSource *source)
{
    if (source == NULL)
        return;
    g_source_destroy(source);
    g_source_unref(source);
}

#endif
