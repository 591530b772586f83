/* SPDX-License-Identifier: MIT */
/*
 * worker-private.h - what the files of libcorral-worker share.
 *
 *   loop.c     epoll watches, timers, deferred frees; the public io/timer API
 *   log.c      stderr in plain or log-pipe format
 *   setup.c    environment, arguments and descriptor checks
 *   status.c   status records on fd 5 and when to send them
 *   worker.c   accepting, counting clients, signals, the dead pipe
 *
 * Everything here is hidden from the shared library's exports and carries
 * the cw_ prefix so that it cannot clash with an application's names when
 * linked statically.
 */
#ifndef CORRAL_WORKER_PRIVATE_H
#define CORRAL_WORKER_PRIVATE_H

#include <corral/worker.h>

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CW_HIDDEN __attribute__((visibility("hidden")))

#define CW_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* The fixed descriptors of the protocol. */
#define CW_LOGIN_NOTIFY_FD 4
#define CW_STATUS_FD 5
#define CW_DEAD_FD 6
#define CW_FIRST_LISTENER_FD 7

/* SIGINT, SIGTERM, SIGUSR1, SIGQUIT and SIGPIPE: see take_signals(). */
#define CW_TAKEN_SIGNAL_COUNT 5

/* ------------------------------------------------------------------ */
/* loop.c                                                              */

struct cw_watch;
typedef void cw_watch_fn(struct cw_watch *watch, uint32_t revents);

/* One descriptor in the epoll set.  Embedded in the object that owns it. */
struct cw_watch {
    int fd;
    bool registered;      /* in the epoll set right now */
    cw_watch_fn *handler;
    void *release;        /* block to free() once no event can name it */
    struct cw_watch *next_released;
};

struct cw_loop {
    int epoll_fd;
    /* Watches whose owners are gone but whose events may still sit in the
     * batch being dispatched; freed after the batch. */
    struct cw_watch *released;
};

CW_HIDDEN int cw_loop_init(struct cw_loop *loop);
CW_HIDDEN void cw_loop_deinit(struct cw_loop *loop);
/* One epoll_wait and its callbacks.  -1 with errno on failure. */
CW_HIDDEN int cw_loop_iterate(struct cw_loop *loop);
/* Frees released watches' blocks.  Only outside a dispatch. */
CW_HIDDEN void cw_loop_reap(struct cw_loop *loop);

CW_HIDDEN void cw_watch_init(struct cw_watch *watch, int fd, cw_watch_fn *handler);
/* Adds or modifies the watch (EPOLLERR/EPOLLHUP are always reported).
 * EPOLLEXCLUSIVE works only on a watch that is not registered yet. */
CW_HIDDEN int cw_watch_set(struct cw_loop *loop, struct cw_watch *watch, uint32_t events);
CW_HIDDEN void cw_watch_unset(struct cw_loop *loop, struct cw_watch *watch);
/* Unsets the watch and frees `block` once the current batch is done. */
CW_HIDDEN void cw_watch_release(struct cw_loop *loop, struct cw_watch *watch, void *block);

/* A timer starts disarmed.  Internal timers are made once, up front, so
 * that arming one never needs a new fd (accept() may have just failed for
 * the lack of one). */
CW_HIDDEN corral_worker_timer *cw_timer_new(struct cw_loop *loop, corral_worker_timer_fn *fn,
                                            void *data);
/* Fires after `msecs`, then every `msecs` if `repeat`; 0 disarms. */
CW_HIDDEN int cw_timer_arm(corral_worker_timer *timer, unsigned msecs, bool repeat);
CW_HIDDEN void cw_timer_free(struct cw_loop *loop, corral_worker_timer *timer);

/* Seconds on the monotonic clock. */
CW_HIDDEN int64_t cw_monotonic_secs(void);

/* ------------------------------------------------------------------ */
/* log.c                                                               */

enum cw_log_level { CW_LOG_INFO, CW_LOG_WARNING, CW_LOG_ERROR, CW_LOG_FATAL };

/* Sets the format for every later line of the process. */
CW_HIDDEN void cw_log_setup(const char *prefix, bool log_service);
CW_HIDDEN void cw_logv(enum cw_log_level level, const char *fmt, va_list args)
    __attribute__((format(printf, 2, 0)));

/* ------------------------------------------------------------------ */
/* The worker.                                                         */

struct cw_listener {
    corral_worker_listener info;
    corral_worker *worker;
    struct cw_watch watch;
    /* Read by the SIGQUIT handler, hence sig_atomic_t. */
    volatile sig_atomic_t fd;       /* -1 once closed */
    volatile sig_atomic_t polled;   /* in the epoll set */
    volatile sig_atomic_t replaced; /* dup2()ed to /dev/null by SIGQUIT */
};

struct cw_status {
    bool enabled;            /* under a master, until a write fails */
    bool quiet;              /* the master is gone: failures are expected */
    unsigned last_sent;      /* 0 before the first record */
    int64_t last_sent_secs;
    corral_worker_timer *delay_timer;
    bool delay_armed;        /* a change waits for the next second */
    struct cw_watch writable;
};

struct corral_conn {
    corral_worker *worker;
    const struct cw_listener *listener;
    struct cw_watch watch;
    int fd;
    bool want_read, want_write;
    bool closed;
    void *data;
    corral_conn *prev, *next;
};

struct corral_worker {
    struct cw_loop loop;
    corral_worker_settings settings;
    unsigned flags;
    pid_t pid;

    corral_worker_callbacks callbacks;
    void *context;

    /*
     * The counters of the protocol (docs/protocol.md, "Counting").
     * available counts down per accepted client; total is how many slots
     * this process still offers in all; the difference is the number of
     * connected clients.  service_count_left is UINT_MAX when unlimited.
     */
    unsigned available;
    unsigned total_available;
    unsigned service_count_left;

    struct cw_listener *listeners;
    unsigned listener_count;
    bool accepting_stopped;  /* the master is gone: listeners closed */
    corral_worker_timer *accept_retry_timer;
    bool accept_paused;      /* accept() failed; the timer resumes it */
    bool slot_freed;         /* a client left during this loop iteration */
    int inetd_fd;            /* the client passed on stdin, until run() takes it; else -1 */

    struct cw_status status;
    struct cw_watch dead_watch;
    bool master_dead;

    int signal_fd;
    struct cw_watch signal_watch;
    bool signals_taken;      /* the two below hold what to restore */
    sigset_t saved_mask;
    struct sigaction saved_actions[CW_TAKEN_SIGNAL_COUNT];
    int devnull_fd;          /* for the SIGQUIT handler */

    bool login_full;

    corral_conn *conns;
    bool running, stopping;
};

/* setup.c: fills the settings, listeners and fd checks of `worker`.  On
 * failure returns false with *error set; the caller frees the worker. */
CW_HIDDEN bool cw_setup(corral_worker *worker, int argc, char *const argv[], char **error);
CW_HIDDEN void cw_error(char **error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* status.c */
CW_HIDDEN bool cw_status_init(corral_worker *worker, char **error);
/* Sends the current count if the rules say so now, or schedules it. */
CW_HIDDEN void cw_status_update(corral_worker *worker);
/* Writes the current count now, even if unchanged. */
CW_HIDDEN void cw_status_send(corral_worker *worker, bool important);
CW_HIDDEN void cw_status_deinit(corral_worker *worker);

#endif /* CORRAL_WORKER_PRIVATE_H */
