/* SPDX-License-Identifier: MIT */
#include "toggle-watch.h"

#include <glib.h>

#include "fd-source.h"

struct corral_toggle_watch {
    GSource source;
    GPollFD pollfd;        /* ours, so the events can change in place */
    corral_toggle_watch_fn *fn;
    void *data;
};

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
     * the owner asks again, rather than spin. */
    return watch->pollfd.events != 0 &&
           (watch->pollfd.revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) != 0;
}

static gboolean watch_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    corral_toggle_watch *watch = (corral_toggle_watch *)source;

    (void)callback;
    (void)user_data;
    /* Another source dispatched in this iteration may have switched us off. */
    if (watch->pollfd.events != 0)
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
    watch->pollfd.events = on ? G_IO_IN : 0;
}

bool corral_toggle_watch_is_on(const corral_toggle_watch *watch)
{
    return watch->pollfd.events != 0;
}
