/* SPDX-License-Identifier: MIT */
#include "status-watch.h"

#include <glib.h>

#include "fd-source.h"

/*
 * A GSource of our own rather than g_unix_fd_add(): while a read is put
 * off, the pipe must leave the poll set (it stays readable) and the poll
 * must time out at the end of the interval.  g_source_modify_unix_fd() and
 * g_source_set_ready_time() would both do that, but each also writes to
 * GLib's wakeup eventfd; owning the GPollFD and the timeout costs nothing.
 */
struct corral_status_watch {
    GSource source;
    GPollFD pollfd;
    uint64_t interval_usec;
    corral_status_watch_read_fn *read;
    corral_status_watch_urgent_fn *urgent;
    void *data;

    bool have_read;
    int64_t last_read_usec;   /* monotonic, of the last read */
    bool deferring;           /* the pipe is out of the poll set until read_at */
    int64_t read_at_usec;
};

static gboolean watch_prepare(GSource *source, gint *timeout)
{
    corral_status_watch *watch = (corral_status_watch *)source;
    int64_t left;

    if (!watch->deferring) {
        *timeout = -1;
        return FALSE;
    }
    left = watch->read_at_usec - g_source_get_time(source);
    if (left <= 0) {
        *timeout = 0;
        return TRUE;
    }
    /* poll() counts in milliseconds: round up, never wake early. */
    *timeout = (gint)MIN((left + 999) / 1000, G_MAXINT);
    return FALSE;
}

static gboolean watch_check(GSource *source)
{
    corral_status_watch *watch = (corral_status_watch *)source;

    if (watch->deferring)
        return g_source_get_time(source) >= watch->read_at_usec;
    return (watch->pollfd.revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) != 0;
}

static bool should_defer(corral_status_watch *watch, int64_t now)
{
    if (watch->interval_usec == 0 || !watch->have_read)
        return false;
    if (now - watch->last_read_usec >= (int64_t)watch->interval_usec)
        return false; /* quiet long enough: this record is the first of a new burst */
    return watch->urgent == NULL || !watch->urgent(watch->data);
}

static gboolean watch_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    corral_status_watch *watch = (corral_status_watch *)source;
    int64_t now = g_source_get_time(source);

    (void)callback;
    (void)user_data;
    if (watch->deferring) {
        watch->deferring = false;
        watch->pollfd.events = G_IO_IN;
    } else if (should_defer(watch, now)) {
        watch->deferring = true;
        watch->read_at_usec = watch->last_read_usec + (int64_t)watch->interval_usec;
        watch->pollfd.events = 0;
        return G_SOURCE_CONTINUE;
    }
    watch->have_read = true;
    watch->last_read_usec = now;
    /* May free the watch; GLib holds a reference until we return. */
    watch->read(watch->data);
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs watch_funcs = {
    .prepare = watch_prepare,
    .check = watch_check,
    .dispatch = watch_dispatch,
};

corral_status_watch *corral_status_watch_new(int fd, uint64_t interval_usec,
                                             corral_status_watch_read_fn *read,
                                             corral_status_watch_urgent_fn *urgent,
                                             void *data)
{
    GSource *source = g_source_new(&watch_funcs, sizeof(corral_status_watch));
    corral_status_watch *watch = (corral_status_watch *)source;

    watch->pollfd.fd = fd;
    watch->pollfd.events = G_IO_IN;
    watch->interval_usec = interval_usec;
    watch->read = read;
    watch->urgent = urgent;
    watch->data = data;
    corral_fd_source_attach(source, &watch->pollfd, "corral status pipe");
    return watch;
}

void corral_status_watch_free(corral_status_watch *watch)
{
    corral_fd_source_free(watch != NULL ? &watch->source : NULL);
}
