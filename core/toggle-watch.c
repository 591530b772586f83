/* SPDX-License-Identifier: MIT */
#include "toggle-watch.h"

#include <glib.h>
#include <poll.h>

#include "fd-source.h"

struct corral_toggle_watch {
    GSource source;
    GPollFD pollfd;        /* ours, so the events can change in place */
    corral_toggle_watch_fn *fn;
    corral_toggle_watch_fn *broken_fn; /* until it has been called */
    void *data;
};

/* What poll() reports of a socket that has stopped working: hung up, in
 * error, or shut down for reading (a unix listener a process shut down). */
#define BROKEN_EVENTS (G_IO_HUP | G_IO_ERR | G_IO_NVAL | POLLRDHUP)

static void set_events(corral_toggle_watch *watch, bool on)
{
    watch->pollfd.events = (on ? G_IO_IN : 0) | (watch->broken_fn != NULL ? POLLRDHUP : 0);
}

static bool is_broken(const corral_toggle_watch *watch)
{
    return watch->broken_fn != NULL && (watch->pollfd.revents & BROKEN_EVENTS) != 0;
}

static gboolean watch_prepare(GSource *source, gint *timeout)
{
    (void)source;
    *timeout = -1;
    return FALSE;
}

static gboolean watch_check(GSource *source)
{
    corral_toggle_watch *watch = (corral_toggle_watch *)source;

    /* Off, poll() may still report an error condition: ignore it until
     * the owner asks again, rather than spin, unless the owner wants to
     * hear of it. */
    return is_broken(watch) ||
           ((watch->pollfd.events & G_IO_IN) != 0 &&
            (watch->pollfd.revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) != 0);
}

static gboolean watch_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    corral_toggle_watch *watch = (corral_toggle_watch *)source;

    (void)callback;
    (void)user_data;
    if (is_broken(watch)) {
        corral_toggle_watch_fn *broken_fn = watch->broken_fn;

        /* Told once, and the descriptor polled no more: never a spin. */
        watch->broken_fn = NULL;
        watch->pollfd.events = 0;
        g_source_remove_poll(source, &watch->pollfd);
        broken_fn(watch->data); /* may free us */
        return G_SOURCE_CONTINUE;
    }
    /* Another source dispatched in this iteration may have switched us off. */
    if ((watch->pollfd.events & G_IO_IN) != 0)
        watch->fn(watch->data); /* may free us: GLib holds a reference */
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs watch_funcs = {
    .prepare = watch_prepare,
    .check = watch_check,
    .dispatch = watch_dispatch,
};

corral_toggle_watch *corral_toggle_watch_new(int fd, corral_toggle_watch_fn *fn, void *data)
{
    GSource *source = g_source_new(&watch_funcs, sizeof(corral_toggle_watch));
    corral_toggle_watch *watch = (corral_toggle_watch *)source;

    watch->pollfd.fd = fd;
    watch->pollfd.events = 0;
    watch->fn = fn;
    watch->data = data;
    corral_fd_source_attach(source, &watch->pollfd, "corral toggle watch");
    return watch;
}

void corral_toggle_watch_free(corral_toggle_watch *watch)
{
    corral_fd_source_free(watch != NULL ? &watch->source : NULL);
}

void corral_toggle_watch_set(corral_toggle_watch *watch, bool on)
{
    set_events(watch, on);
}

bool corral_toggle_watch_is_on(const corral_toggle_watch *watch)
{
    return (watch->pollfd.events & G_IO_IN) != 0;
}

void corral_toggle_watch_on_broken(corral_toggle_watch *watch, corral_toggle_watch_fn *fn)
{
    bool on = corral_toggle_watch_is_on(watch);

    watch->broken_fn = fn;
    set_events(watch, on);
}
