/* SPDX-License-Identifier: MIT */
/*
 * loop.c - the worker's event loop: one epoll set, level-triggered.
 *
 * Callbacks may close any connection or remove any watch, including ones
 * whose events are still waiting in the batch being dispatched.  So a
 * removed watch is only unregistered at once; its memory is freed after
 * the batch, and the dispatcher skips events of unregistered watches.
 */
#include "worker-private.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define CW_EVENTS_PER_WAIT 64

struct corral_worker_timer {
    struct cw_watch watch;  /* on a timerfd */
    corral_worker_timer_fn *fn;
    void *data;
};

struct corral_worker_io {
    struct cw_watch watch;
    corral_worker_io_fn *fn;
    void *data;
};

int64_t cw_monotonic_secs(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec;
}

int cw_loop_init(struct cw_loop *loop)
{
    loop->released = NULL;
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    return loop->epoll_fd < 0 ? -1 : 0;
}

void cw_loop_deinit(struct cw_loop *loop)
{
    cw_loop_reap(loop);
    if (loop->epoll_fd >= 0)
        close(loop->epoll_fd);
    loop->epoll_fd = -1;
}

void cw_watch_init(struct cw_watch *watch, int fd, cw_watch_fn *handler)
{
    *watch = (struct cw_watch){ .fd = fd, .handler = handler };
}

int cw_watch_set(struct cw_loop *loop, struct cw_watch *watch, uint32_t events)
{
    struct epoll_event event = { .events = events, .data.ptr = watch };
    int op = watch->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

    if (epoll_ctl(loop->epoll_fd, op, watch->fd, &event) < 0)
        return -1;
    watch->registered = true;
    return 0;
}

void cw_watch_unset(struct cw_loop *loop, struct cw_watch *watch)
{
    if (!watch->registered)
        return;
    /* Fails harmlessly if the owner already closed the fd, which drops it
     * from the set by itself. */
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, watch->fd, NULL);
    watch->registered = false;
}

void cw_watch_release(struct cw_loop *loop, struct cw_watch *watch, void *block)
{
    cw_watch_unset(loop, watch);
    watch->release = block;
    watch->next_released = loop->released;
    loop->released = watch;
}

void cw_loop_reap(struct cw_loop *loop)
{
    while (loop->released != NULL) {
        struct cw_watch *watch = loop->released;

        loop->released = watch->next_released;
        free(watch->release);
    }
}

int cw_loop_iterate(struct cw_loop *loop)
{
    struct epoll_event events[CW_EVENTS_PER_WAIT];
    int count = epoll_wait(loop->epoll_fd, events, CW_EVENTS_PER_WAIT, -1);

    if (count < 0)
        return errno == EINTR ? 0 : -1;
    for (int i = 0; i < count; i++) {
        struct cw_watch *watch = events[i].data.ptr;

        if (watch->registered)
            watch->handler(watch, events[i].events);
    }
    cw_loop_reap(loop);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Timers: one timerfd each, so they share the epoll set.              */

static void timer_expired(struct cw_watch *watch, uint32_t revents)
{
    corral_worker_timer *timer = CW_CONTAINER_OF(watch, corral_worker_timer, watch);
    uint64_t expirations;

    (void)revents;
    /* Reading clears the readiness; missed periods collapse into one
     * call.  Nothing to read means the timer was re-set after it fired. */
    if (read(watch->fd, &expirations, sizeof(expirations)) < 0)
        return;
    timer->fn(timer->data);
}

corral_worker_timer *cw_timer_new(struct cw_loop *loop, corral_worker_timer_fn *fn, void *data)
{
    corral_worker_timer *timer = calloc(1, sizeof(*timer));
    int fd = timer != NULL ? timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC) : -1;

    if (fd >= 0) {
        cw_watch_init(&timer->watch, fd, timer_expired);
        timer->fn = fn;
        timer->data = data;
        if (cw_watch_set(loop, &timer->watch, EPOLLIN) == 0)
            return timer;
    }

    int saved_errno = errno;

    if (fd >= 0)
        close(fd);
    free(timer);
    errno = saved_errno;
    return NULL;
}

int cw_timer_arm(corral_worker_timer *timer, unsigned msecs, bool repeat)
{
    struct timespec period = { .tv_sec = msecs / 1000, .tv_nsec = (msecs % 1000) * 1000000L };
    struct itimerspec spec = { .it_value = period };

    if (repeat)
        spec.it_interval = period;
    /* Setting the time also forgets expirations not read yet. */
    return timerfd_settime(timer->watch.fd, 0, &spec, NULL);
}

void cw_timer_free(struct cw_loop *loop, corral_worker_timer *timer)
{
    if (timer == NULL)
        return;
    cw_watch_unset(loop, &timer->watch);
    close(timer->watch.fd);
    cw_watch_release(loop, &timer->watch, timer);
}

corral_worker_timer *corral_worker_timer_add(corral_worker *worker, unsigned msecs,
                                             corral_worker_timer_fn *fn, void *data)
{
    corral_worker_timer *timer = cw_timer_new(&worker->loop, fn, data);

    if (timer != NULL && cw_timer_arm(timer, msecs > 0 ? msecs : 1, true) < 0) {
        int saved_errno = errno;

        cw_timer_free(&worker->loop, timer);
        errno = saved_errno;
        return NULL;
    }
    return timer;
}

void corral_worker_timer_remove(corral_worker *worker, corral_worker_timer *timer)
{
    cw_timer_free(&worker->loop, timer);
}

/* ------------------------------------------------------------------ */
/* Application descriptors.                                            */

static void io_ready(struct cw_watch *watch, uint32_t revents)
{
    corral_worker_io *io = CW_CONTAINER_OF(watch, corral_worker_io, watch);
    unsigned events = 0;

    if (revents & EPOLLIN)
        events |= CORRAL_WORKER_IO_READ;
    if (revents & EPOLLOUT)
        events |= CORRAL_WORKER_IO_WRITE;
    if (revents & (EPOLLERR | EPOLLHUP))
        events |= CORRAL_WORKER_IO_ERROR;
    io->fn(watch->fd, events, io->data);
}

corral_worker_io *corral_worker_io_add(corral_worker *worker, int fd, unsigned events,
                                       corral_worker_io_fn *fn, void *data)
{
    corral_worker_io *io = calloc(1, sizeof(*io));
    if (io == NULL)
        return NULL;

    uint32_t epoll_events = 0;
    if (events & CORRAL_WORKER_IO_READ)
        epoll_events |= EPOLLIN;
    if (events & CORRAL_WORKER_IO_WRITE)
        epoll_events |= EPOLLOUT;

    cw_watch_init(&io->watch, fd, io_ready);
    io->fn = fn;
    io->data = data;
    if (cw_watch_set(&worker->loop, &io->watch, epoll_events) < 0) {
        int saved_errno = errno;

        free(io);
        errno = saved_errno;
        return NULL;
    }
    return io;
}

void corral_worker_io_remove(corral_worker *worker, corral_worker_io *io)
{
    if (io != NULL)
        cw_watch_release(&worker->loop, &io->watch, io);
}
