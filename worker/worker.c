/* SPDX-License-Identifier: MIT */
/*
 * worker.c - the worker's life: accepting clients, counting them against
 * the client limit and the service count, the master's signals and the
 * dead pipe.  docs/protocol.md describes the rules implemented here.
 */
#include "worker-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* How long accepting pauses after accept() failed for lack of resources,
 * instead of spinning on a listener that stays readable. */
#define CW_ACCEPT_RETRY_MSECS 1000

/* Signals whose disposition a worker changes, and restores at free. */
static const int taken_signals[CW_TAKEN_SIGNAL_COUNT] = { SIGINT, SIGTERM, SIGUSR1, SIGQUIT,
                                                          SIGPIPE };

/* The one worker of the process, for the SIGQUIT handler. */
static corral_worker *volatile process_worker;

static unsigned client_count(const corral_worker *worker)
{
    return worker->total_available - worker->available;
}

/* ------------------------------------------------------------------ */
/* Listeners.                                                          */

static void listener_ready(struct cw_watch *watch, uint32_t revents);

static void listener_set_polled(corral_worker *worker, struct cw_listener *listener, bool on)
{
    if (on == (listener->polled != 0))
        return;
    if (!on) {
        cw_watch_unset(&worker->loop, &listener->watch);
        listener->polled = 0;
        return;
    }
    /* Marked first, so that SIGQUIT never swaps out an fd as it is being
     * added; if it already did, the add fails and the listener stays off. */
    listener->polled = 1;
    if (cw_watch_set(&worker->loop, &listener->watch, EPOLLIN | EPOLLEXCLUSIVE) < 0) {
        listener->polled = 0;
        if (!listener->replaced)
            corral_worker_log_error("Cannot watch listener fd %d: %m", (int)listener->fd);
    }
}

/* Watches the listeners exactly while this process can take a client. */
static void listeners_update(corral_worker *worker)
{
    bool wanted = worker->running && !worker->stopping && !worker->accepting_stopped &&
                  !worker->accept_paused && worker->available > 0;

    for (unsigned i = 0; i < worker->listener_count; i++) {
        struct cw_listener *listener = &worker->listeners[i];

        if (listener->fd >= 0 && !listener->replaced)
            listener_set_polled(worker, listener, wanted);
    }
}

static void listeners_close(corral_worker *worker)
{
    for (unsigned i = 0; i < worker->listener_count; i++) {
        struct cw_listener *listener = &worker->listeners[i];
        int fd = listener->fd;

        if (fd < 0)
            continue;
        listener_set_polled(worker, listener, false);
        /* Hidden from the SIGQUIT handler before the number is freed. */
        listener->fd = -1;
        close(fd);
    }
}

static void accept_retry(void *data)
{
    corral_worker *worker = data;

    worker->accept_paused = false;
    listeners_update(worker);
}

static void accept_failed(corral_worker *worker, const struct cw_listener *listener)
{
    corral_worker_log_error("accept() on listener %s (fd %d) failed: %m",
                            listener->info.name, (int)listener->fd);
    if (cw_timer_arm(worker->accept_retry_timer, CW_ACCEPT_RETRY_MSECS, false) == 0) {
        worker->accept_paused = true;
        listeners_update(worker);
    }
}

/* The connection is gone, not the listener: try the next one. */
static bool accept_error_is_transient(int error)
{
    switch (error) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case EPERM: /* refused by a firewall rule */
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------ */
/* Connections and counting.                                           */

static void conn_ready(struct cw_watch *watch, uint32_t revents);

static void conn_update_watch(corral_conn *conn)
{
    uint32_t events = (conn->want_read ? EPOLLIN : 0) | (conn->want_write ? EPOLLOUT : 0);

    if (cw_watch_set(&conn->worker->loop, &conn->watch, events) < 0) {
        corral_worker_log_error("Cannot watch client fd %d: %m", conn->fd);
        corral_conn_close(conn);
    }
}

static void conn_accepted(corral_worker *worker, const struct cw_listener *listener, int fd)
{
    corral_conn *conn = calloc(1, sizeof(*conn));

    if (conn == NULL) {
        corral_worker_log_error("Out of memory: dropping a client");
        close(fd);
        return;
    }
    conn->worker = worker;
    conn->listener = listener;
    conn->fd = fd;
    conn->want_read = worker->callbacks.readable != NULL;
    cw_watch_init(&conn->watch, fd, conn_ready);
    conn->next = worker->conns;
    if (worker->conns != NULL)
        worker->conns->prev = conn;
    worker->conns = conn;

    worker->available--;
    /* Stop watching before telling the master we are full: it may act on
     * the record at once (SIGQUIT frees only unwatched listeners). */
    listeners_update(worker);
    cw_status_update(worker);

    conn_update_watch(conn);
    if (!conn->closed && worker->callbacks.connected != NULL)
        worker->callbacks.connected(conn, worker->context);
}

/* A client has left: give its slot back, unless the service count says
 * this process will serve no more clients than it still has. */
static void client_gone(corral_worker *worker)
{
    if (worker->service_count_left == worker->total_available) {
        worker->total_available--;
        worker->service_count_left--;
    } else {
        if (worker->service_count_left != UINT_MAX)
            worker->service_count_left--;
        worker->available++;
    }

    if (worker->service_count_left == 0) {
        corral_worker_stop(worker);
    } else if (worker->available == worker->total_available &&
               (worker->master_dead || worker->listener_count == 0)) {
        /* Nobody left to serve and nobody can send more. */
        corral_worker_stop(worker);
    } else {
        /* Settled after the loop iteration (take_waiting_clients), not in
         * the middle of a callback. */
        worker->slot_freed = true;
    }
}

/* Accepts one client if one waits.  False when the queue is empty or
 * accepting failed for good (then accept_failed has paused it). */
static bool accept_one(corral_worker *worker, struct cw_listener *listener)
{
    int fd = accept4(listener->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd >= 0) {
        conn_accepted(worker, listener, fd);
        return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return false;
    if (!accept_error_is_transient(errno)) {
        accept_failed(worker, listener);
        return false;
    }
    return true; /* that connection is lost, not the listener: try the next */
}

static void listener_ready(struct cw_watch *watch, uint32_t revents)
{
    struct cw_listener *listener = CW_CONTAINER_OF(watch, struct cw_listener, watch);

    (void)revents;
    /* Drains the queue, but never past the client limit: the polled flag
     * drops when the last slot is taken. */
    while (listener->polled && accept_one(listener->worker, listener))
        ;
}

/* Once per loop iteration in which clients left: a client already
 * waiting in a listener's queue is taken before going back to sleep.
 * Under load that saves watching the listener again and being woken for
 * it, and the two status records of a slot that would stay free for a few
 * microseconds: the count never leaves 0, so nothing is sent. */
static void take_waiting_clients(corral_worker *worker)
{
    unsigned budget = 64;

    worker->slot_freed = false;
    for (unsigned i = 0; i < worker->listener_count; i++) {
        struct cw_listener *listener = &worker->listeners[i];

        while (budget > 0 && worker->available > 0 && !worker->stopping &&
               !worker->accepting_stopped && !worker->accept_paused && listener->fd >= 0 &&
               !listener->replaced && accept_one(worker, listener))
            budget--;
    }
    listeners_update(worker);
    cw_status_update(worker);
}

static void conn_ready(struct cw_watch *watch, uint32_t revents)
{
    corral_conn *conn = CW_CONTAINER_OF(watch, corral_conn, watch);
    corral_worker *worker = conn->worker;
    bool failed = (revents & (EPOLLERR | EPOLLHUP)) != 0;

    if (failed && !conn->want_read && !conn->want_write) {
        /* Nobody would read the error, and it stays reported. */
        corral_conn_close(conn);
        return;
    }
    if (conn->want_read && (revents & EPOLLIN || failed))
        worker->callbacks.readable(conn, worker->context);
    if (!conn->closed && conn->want_write && (revents & EPOLLOUT || failed) &&
        worker->callbacks.writable != NULL)
        worker->callbacks.writable(conn, worker->context);
}

void corral_conn_close(corral_conn *conn)
{
    corral_worker *worker = conn->worker;

    if (conn->closed)
        return;
    conn->closed = true;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        worker->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;

    cw_watch_unset(&worker->loop, &conn->watch);
    if (worker->callbacks.closing != NULL)
        worker->callbacks.closing(conn, worker->context);
    close(conn->fd);
    conn->fd = -1;
    cw_watch_release(&worker->loop, &conn->watch, conn);
    /* Once the loop is over, nobody is counting any more. */
    if (worker->running)
        client_gone(worker);
}

int corral_conn_fd(const corral_conn *conn)
{
    return conn->fd;
}

const corral_worker_listener *corral_conn_listener(const corral_conn *conn)
{
    static const corral_worker_listener stdin_listener = { .index = 0, .name = "stdin" };

    return conn->listener != NULL ? &conn->listener->info : &stdin_listener;
}

corral_worker *corral_conn_worker(const corral_conn *conn)
{
    return conn->worker;
}

void corral_conn_set_data(corral_conn *conn, void *data)
{
    conn->data = data;
}

void *corral_conn_data(const corral_conn *conn)
{
    return conn->data;
}

void corral_conn_want_read(corral_conn *conn, bool on)
{
    if (conn->closed || conn->want_read == on)
        return;
    conn->want_read = on && conn->worker->callbacks.readable != NULL;
    conn_update_watch(conn);
}

void corral_conn_want_write(corral_conn *conn, bool on)
{
    if (conn->closed || conn->want_write == on)
        return;
    conn->want_write = on;
    conn_update_watch(conn);
}

/* ------------------------------------------------------------------ */
/* The master going away.                                              */

/* Closes the listeners and makes the clients already connected the last
 * ones this process serves. */
static void stop_new_connections(corral_worker *worker)
{
    unsigned clients = client_count(worker);

    if (worker->accepting_stopped)
        return;
    worker->accepting_stopped = true;
    listeners_close(worker);
    worker->total_available = clients;
    worker->service_count_left = clients;
    if (clients == 0) {
        corral_worker_stop(worker);
        return;
    }
    /* Keeps the master from counting this process as available. */
    worker->available = 0;
    cw_status_update(worker);
}

static void master_died(struct cw_watch *watch, uint32_t revents)
{
    corral_worker *worker = CW_CONTAINER_OF(watch, corral_worker, dead_watch);

    (void)revents;
    /* The error condition is level-triggered and stays: stop watching it
     * before anything else, or the loop spins. */
    cw_watch_unset(&worker->loop, watch);
    worker->master_dead = true;
    worker->status.quiet = true;
    stop_new_connections(worker);
}

/* ------------------------------------------------------------------ */
/* Signals.                                                            */

/*
 * SIGQUIT comes from a master that is shutting down and wants its ports
 * free for a successor at once.  Listeners that are being watched close
 * through the dead pipe soon anyway; the others (while full) might stay
 * open for as long as the last client does, so they are pointed at
 * /dev/null right here.  Only async-signal-safe calls.
 */
static void on_sigquit(int signo)
{
    corral_worker *worker = process_worker;
    int saved_errno = errno;

    (void)signo;
    if (worker == NULL)
        return;
    for (unsigned i = 0; i < worker->listener_count; i++) {
        struct cw_listener *listener = &worker->listeners[i];
        int fd = listener->fd;

        if (fd >= 0 && !listener->polled && !listener->replaced &&
            dup2(worker->devnull_fd, fd) >= 0)
            listener->replaced = 1;
    }
    errno = saved_errno;
}

static const char *signal_code_name(int32_t code, char *buffer, size_t size)
{
    /* As Dovecot's lib_signal_code_to_str names a termination signal's. */
    switch (code) {
    case SI_USER: return "kill";
    case SI_KERNEL: return "kernel";
    case SI_TIMER: return "timer";
    default:
        snprintf(buffer, size, "unknown %d", (int)code);
        return buffer;
    }
}

/* SIGINT is the master's idle kill: only an idle process obeys. */
static void idle_kill_requested(corral_worker *worker)
{
    if (worker->settings.standalone) {
        /* Someone pressed ^C. */
        corral_worker_stop(worker);
        return;
    }
    if (client_count(worker) > 0)
        return;
    if (worker->callbacks.idle_kill != NULL && !worker->callbacks.idle_kill(worker->context)) {
        /* Tells the master the signal was seen but declined. */
        cw_status_send(worker, false);
        return;
    }
    corral_worker_stop(worker);
}

static void login_state_changed(corral_worker *worker)
{
    off_t state = lseek(CW_LOGIN_NOTIFY_FD, 0, SEEK_CUR);

    if (state < 0) {
        corral_worker_log_error("lseek(fd %d) failed: %m", CW_LOGIN_NOTIFY_FD);
        return;
    }
    worker->login_full = state == 1;
    if (worker->callbacks.login_state != NULL)
        worker->callbacks.login_state(worker->login_full, worker->context);
}

static void signal_received(struct cw_watch *watch, uint32_t revents)
{
    corral_worker *worker = CW_CONTAINER_OF(watch, corral_worker, signal_watch);
    struct signalfd_siginfo info;
    char code[16];

    (void)revents;
    while (read(worker->signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        switch (info.ssi_signo) {
        case SIGINT:
            idle_kill_requested(worker);
            break;
        case SIGTERM:
            corral_worker_log_warning("Killed with signal %u (by pid=%u uid=%u code=%s)",
                                      info.ssi_signo, info.ssi_pid, info.ssi_uid,
                                      signal_code_name(info.ssi_code, code, sizeof(code)));
            corral_worker_stop(worker);
            break;
        case SIGUSR1:
            login_state_changed(worker);
            break;
        }
    }
}

/* Routes SIGINT, SIGTERM (and SIGUSR1 for login services) to a signalfd
 * in the loop, ignores SIGPIPE and, under a master, handles SIGQUIT. */
static bool take_signals(corral_worker *worker, char **error)
{
    sigset_t mask;
    struct sigaction action = { .sa_handler = SIG_DFL };

    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    if (worker->flags & CORRAL_WORKER_LOGIN)
        sigaddset(&mask, SIGUSR1);

    sigemptyset(&action.sa_mask);
    sigprocmask(SIG_BLOCK, NULL, &worker->saved_mask);
    for (size_t i = 0; i < CW_TAKEN_SIGNAL_COUNT; i++)
        sigaction(taken_signals[i], NULL, &worker->saved_actions[i]);
    worker->signals_taken = true;
    /* An ignored signal is never queued, so the signalfd would miss it:
     * shells start background jobs with SIGINT ignored. */
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    if (worker->flags & CORRAL_WORKER_LOGIN)
        sigaction(SIGUSR1, &action, NULL);
    action.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &action, NULL);

    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
        cw_error(error, "sigprocmask() failed: %s", strerror(errno));
        return false;
    }
    worker->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (worker->signal_fd < 0) {
        cw_error(error, "signalfd() failed: %s", strerror(errno));
        return false;
    }
    cw_watch_init(&worker->signal_watch, worker->signal_fd, signal_received);
    if (cw_watch_set(&worker->loop, &worker->signal_watch, EPOLLIN) < 0) {
        cw_error(error, "epoll_ctl(signalfd) failed: %s", strerror(errno));
        return false;
    }

    if (worker->settings.standalone)
        return true;
    worker->devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (worker->devnull_fd < 0) {
        cw_error(error, "open(/dev/null) failed: %s", strerror(errno));
        return false;
    }
    action.sa_handler = on_sigquit;
    action.sa_flags = SA_RESTART;
    sigaction(SIGQUIT, &action, NULL);
    return true;
}

static void give_signals_back(corral_worker *worker)
{
    struct signalfd_siginfo info;

    if (!worker->signals_taken)
        return;
    /* What arrived for this worker goes with it, rather than killing
     * the process with the default action on unblocking. */
    if (worker->signal_fd >= 0)
        while (read(worker->signal_fd, &info, sizeof(info)) > 0)
            ;
    for (size_t i = 0; i < CW_TAKEN_SIGNAL_COUNT; i++)
        sigaction(taken_signals[i], &worker->saved_actions[i], NULL);
    sigprocmask(SIG_SETMASK, &worker->saved_mask, NULL);
    worker->signals_taken = false;
}

/* ------------------------------------------------------------------ */
/* Life cycle.                                                         */

/* Points closed standard fds at /dev/null, so that no socket or pipe of
 * ours lands on them and receives stray output. */
static void ensure_standard_fds(void)
{
    for (int fd = 0; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        int null_fd = open("/dev/null", O_RDWR);

        if (null_fd >= 0 && null_fd != fd) {
            dup2(null_fd, fd);
            close(null_fd);
        }
    }
}

corral_worker *corral_worker_new(const char *name, int argc, char *const argv[],
                                 unsigned flags, char **error)
{
    const char *service_name = getenv("SERVICE_NAME");
    const char *log_service = getenv("LOG_SERVICE");
    bool to_log_service = log_service != NULL && strcmp(log_service, "1") == 0;

    if (error != NULL)
        *error = NULL;
    ensure_standard_fds();
    if (service_name == NULL || service_name[0] == '\0')
        service_name = name != NULL ? name : "";
    cw_log_setup(service_name, to_log_service);
    if (process_worker != NULL) {
        cw_error(error, "A worker already exists in this process");
        return NULL;
    }

    corral_worker *worker = calloc(1, sizeof(*worker));
    if (worker == NULL) {
        cw_error(error, "Out of memory");
        return NULL;
    }
    worker->flags = flags;
    worker->pid = getpid();
    worker->signal_fd = -1;
    worker->devnull_fd = -1;
    worker->inetd_fd = -1;
    worker->settings.log_service = to_log_service;
    worker->settings.service_name = strdup(service_name);
    cw_watch_init(&worker->dead_watch, CW_DEAD_FD, master_died);
    if (worker->settings.service_name == NULL) {
        cw_error(error, "Out of memory");
        free(worker);
        return NULL;
    }
    if (cw_loop_init(&worker->loop) < 0) {
        cw_error(error, "epoll_create1() failed: %s", strerror(errno));
        corral_worker_free(worker);
        return NULL;
    }
    /* Claims the process; the SIGQUIT handler looks here once installed. */
    process_worker = worker;
    if (!cw_setup(worker, argc, argv, error) || !take_signals(worker, error)) {
        corral_worker_free(worker);
        return NULL;
    }
    for (unsigned i = 0; i < worker->listener_count; i++) {
        worker->listeners[i].worker = worker;
        cw_watch_init(&worker->listeners[i].watch, worker->listeners[i].fd, listener_ready);
    }
    worker->accept_retry_timer = cw_timer_new(&worker->loop, accept_retry, worker);
    if (worker->accept_retry_timer == NULL) {
        cw_error(error, "Cannot create a timer: %s", strerror(errno));
        corral_worker_free(worker);
        return NULL;
    }
    if (!cw_status_init(worker, error)) {
        corral_worker_free(worker);
        return NULL;
    }
    if (worker->settings.standalone)
        return worker;

    /* Only errors are reported on the write end of a pipe, which is all
     * that is wanted from the dead pipe. */
    if (cw_watch_set(&worker->loop, &worker->dead_watch, 0) < 0) {
        cw_error(error, "Cannot watch fd %d (the master's dead pipe): %s", CW_DEAD_FD,
                 strerror(errno));
        corral_worker_free(worker);
        return NULL;
    }
    if (flags & CORRAL_WORKER_LOGIN)
        worker->login_full = lseek(CW_LOGIN_NOTIFY_FD, 0, SEEK_CUR) == 1;
    return worker;
}

void corral_worker_free(corral_worker *worker)
{
    if (worker == NULL)
        return;
    worker->running = false;
    while (worker->conns != NULL)
        corral_conn_close(worker->conns);
    if (worker->inetd_fd >= 0)
        close(worker->inetd_fd);
    cw_status_deinit(worker);
    cw_timer_free(&worker->loop, worker->accept_retry_timer);
    give_signals_back(worker);
    /* The handler may not look at the listeners once they are freed. */
    process_worker = NULL;
    listeners_close(worker);
    for (unsigned i = 0; i < worker->listener_count; i++)
        free((char *)worker->listeners[i].info.name);
    free(worker->listeners);
    cw_watch_unset(&worker->loop, &worker->dead_watch);
    cw_watch_unset(&worker->loop, &worker->signal_watch);
    if (worker->signal_fd >= 0)
        close(worker->signal_fd);
    if (worker->devnull_fd >= 0)
        close(worker->devnull_fd);
    cw_loop_deinit(&worker->loop);
    free((char *)worker->settings.service_name);
    free(worker);
}

void corral_worker_set_callbacks(corral_worker *worker,
                                 const corral_worker_callbacks *callbacks, void *context)
{
    worker->callbacks = *callbacks;
    worker->context = context;
}

int corral_worker_run(corral_worker *worker)
{
    int status = EXIT_SUCCESS;

    worker->running = true;
    cw_status_update(worker);
    listeners_update(worker);
    if (worker->inetd_fd >= 0) {
        int fd = worker->inetd_fd;

        worker->inetd_fd = -1;
        conn_accepted(worker, NULL, fd);
    }
    while (!worker->stopping) {
        if (cw_loop_iterate(&worker->loop) < 0) {
            corral_worker_log_error("epoll_wait() failed: %m");
            status = EXIT_FAILURE;
            break;
        }
        if (worker->slot_freed && !worker->stopping)
            take_waiting_clients(worker);
    }
    worker->running = false;
    listeners_update(worker);
    return status;
}

void corral_worker_stop(corral_worker *worker)
{
    worker->stopping = true;
    listeners_update(worker);
}

const corral_worker_settings *corral_worker_get_settings(const corral_worker *worker)
{
    return &worker->settings;
}

const corral_worker_listener *corral_worker_listener_at(const corral_worker *worker,
                                                        unsigned index)
{
    return index < worker->listener_count ? &worker->listeners[index].info : NULL;
}

unsigned corral_worker_client_count(const corral_worker *worker)
{
    return client_count(worker);
}

bool corral_worker_login_full(const corral_worker *worker)
{
    return worker->login_full;
}
