/* SPDX-License-Identifier: MIT */
/*
 * status.c - status records to the master on fd 5.
 *
 * A record tells the master how many more clients this process accepts.
 * The master cares most about 0 ("full": it must listen itself) and about
 * leaving 0, so those changes go out at once.  Other changes go out at
 * most once per clock second, through a 1000 ms timer.  The timer is not
 * pushed back by further changes: a steady stream of them would otherwise
 * hold the count back indefinitely.
 */
#include "worker-private.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* The record layout is fixed by the protocol: native byte order, no
 * padding, written whole by one write(). */
struct cw_status_record {
    int32_t pid;
    uint32_t generation;
    uint32_t available_count;
};
_Static_assert(sizeof(struct cw_status_record) == 12, "status records are 12 bytes");

static void delay_over(void *data)
{
    corral_worker *worker = data;

    worker->status.delay_armed = false;
    cw_status_update(worker);
}

static void status_writable(struct cw_watch *watch, uint32_t revents)
{
    corral_worker *worker = CW_CONTAINER_OF(watch, corral_worker, status.writable);

    (void)revents;
    cw_status_update(worker);
}

static void cancel_delay(struct cw_status *status)
{
    if (status->delay_armed)
        cw_timer_arm(status->delay_timer, 0, false);
    status->delay_armed = false;
}

static void cancel_pending(corral_worker *worker)
{
    cancel_delay(&worker->status);
    cw_watch_unset(&worker->loop, &worker->status.writable);
}

bool cw_status_init(corral_worker *worker, char **error)
{
    struct cw_status *status = &worker->status;

    *status = (struct cw_status){ .enabled = !worker->settings.standalone };
    cw_watch_init(&status->writable, CW_STATUS_FD, status_writable);
    if (!status->enabled)
        return true;
    status->delay_timer = cw_timer_new(&worker->loop, delay_over, worker);
    if (status->delay_timer == NULL) {
        cw_error(error, "Cannot create a timer: %s", strerror(errno));
        return false;
    }
    return true;
}

void cw_status_deinit(corral_worker *worker)
{
    struct cw_status *status = &worker->status;

    cw_watch_unset(&worker->loop, &status->writable);
    cw_timer_free(&worker->loop, status->delay_timer);
    status->delay_timer = NULL;
    status->delay_armed = false;
    status->enabled = false;
}

static bool is_important(const corral_worker *worker)
{
    return worker->available == 0 || worker->status.last_sent == 0;
}

void cw_status_update(corral_worker *worker)
{
    struct cw_status *status = &worker->status;

    if (!status->enabled)
        return;
    if (worker->available == status->last_sent) {
        cancel_pending(worker);
        return;
    }
    if (!is_important(worker) && status->last_sent_secs == cw_monotonic_secs()) {
        if (!status->delay_armed && cw_timer_arm(status->delay_timer, 1000, false) == 0)
            status->delay_armed = true;
        cw_watch_unset(&worker->loop, &status->writable);
        return;
    }
    cw_status_send(worker, is_important(worker));
}

void cw_status_send(corral_worker *worker, bool important)
{
    struct cw_status *status = &worker->status;
    struct cw_status_record record = {
        .pid = (int32_t)worker->pid,
        .generation = worker->settings.generation,
        .available_count = worker->available,
    };
    ssize_t written;

    if (!status->enabled)
        return;
    cancel_delay(status);
    do
        written = write(CW_STATUS_FD, &record, sizeof(record));
    while (written < 0 && errno == EINTR);

    if (written == (ssize_t)sizeof(record)) {
        cw_watch_unset(&worker->loop, &status->writable);
        status->last_sent = record.available_count;
        status->last_sent_secs = cw_monotonic_secs();
        return;
    }
    if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        /* The master is behind.  A change to or from 0 must get through;
         * any other is stale soon and is dropped. */
        if (important && !status->writable.registered &&
            cw_watch_set(&worker->loop, &status->writable, EPOLLOUT) < 0)
            corral_worker_log_error("Cannot wait for fd %d to be writable: %m", CW_STATUS_FD);
        return;
    }
    /* A broken pipe means the master is gone, which the dead pipe reports
     * on its own; anything else is worth a line.  Either way the master
     * cannot follow any more, so stop writing. */
    if (written >= 0)
        corral_worker_log_error("write(fd %d) wrote %zd of %zu bytes of a status record",
                                CW_STATUS_FD, written, sizeof(record));
    else if (errno != EPIPE && !status->quiet)
        corral_worker_log_error("write(fd %d) failed: %m", CW_STATUS_FD);
    cancel_pending(worker);
    status->enabled = false;
}
