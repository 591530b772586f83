/* SPDX-License-Identifier: MIT */
/*
 * corral/worker.h - the child side of the master protocol: libcorral-worker.
 *
 * A worker is a process that a master (corrald, or a Dovecot 2.3 master)
 * starts with listening sockets already open.  The library owns the event
 * loop: it accepts connections, keeps the master told how many more
 * clients this process can take, obeys the master's signals, and notices
 * when the master goes away.  The application only handles its clients.
 * The wire protocol is Dovecot 2.3 lib-master compatible; docs/protocol.md
 * describes it for workers written without this library.
 *
 * Worked example: a worker that answers every connection with one line.
 *
 *   #include <corral/worker.h>
 *   #include <stdlib.h>
 *   #include <sys/socket.h>
 *
 *   static void greet(corral_conn *conn, void *context)
 *   {
 *       static const char hello[] = "hello\n";
 *       (void)context;
 *       send(corral_conn_fd(conn), hello, sizeof(hello) - 1, MSG_DONTWAIT);
 *       corral_conn_close(conn);
 *   }
 *
 *   int main(int argc, char **argv)
 *   {
 *       char *error;
 *       corral_worker *worker = corral_worker_new("hello", argc, argv, 0, &error);
 *       if (worker == NULL)
 *           corral_worker_fatal("%s", error);
 *       corral_worker_callbacks callbacks = { .connected = greet };
 *       corral_worker_set_callbacks(worker, &callbacks, NULL);
 *       int status = corral_worker_run(worker);
 *       corral_worker_free(worker);
 *       return status;
 *   }
 *
 * Under a master it serves the sockets at fds 7 and up.  Run by hand it
 * serves `--listen 127.0.0.1:7000` (or CORRAL_LISTEN) instead, and started
 * the inetd way (xinetd, tcpserver, systemd Accept=yes), with neither, it
 * serves the one client connected on stdin and exits.
 *
 * What the library does on the application's behalf:
 *   - Reads the environment the master sets (GENERATION, CLIENT_LIMIT,
 *     SERVICE_COUNT, SOCKET_COUNT, SOCKET<n>_SETTINGS, ...).  Without
 *     GENERATION the process runs standalone: no status records, no
 *     master-death watch, one client and then exit unless CLIENT_LIMIT and
 *     SERVICE_COUNT say otherwise.
 *   - Sends 12-byte status records on fd 5 at the times Dovecot's
 *     lib-master does: at once when the count reaches or leaves 0, at most
 *     once a second otherwise.
 *   - Accepts from the listeners with EPOLLEXCLUSIVE, so one connection
 *     wakes one idle worker rather than all of them, and never accepts
 *     more clients than CLIENT_LIMIT.  While full it stops watching the
 *     listeners and the master takes over.
 *   - Exits (corral_worker_run returns) when SERVICE_COUNT clients have
 *     been served, on an idle kill (SIGINT with no clients), on SIGTERM,
 *     and once the master is gone and the last client has left.
 *   - On SIGQUIT frees every listener it is not watching, so a restarting
 *     master can bind the port again.
 *
 * Rules of the road:
 *   - One worker per process, single-threaded.  Every callback runs from
 *     corral_worker_run and must not block.
 *   - The library blocks SIGINT and SIGTERM (and SIGUSR1 with
 *     CORRAL_WORKER_LOGIN) to read them from a signalfd, ignores SIGPIPE
 *     and handles SIGQUIT; corral_worker_free puts all of that back.  A
 *     worker that starts other programs should unblock those signals in
 *     the child before exec.
 *   - Never close fds 4 to 7+SOCKET_COUNT-1: they belong to the protocol.
 *     The library closes the listeners itself when it stops accepting.
 *   - Log through corral_worker_log_*(): under a master, stderr is a log
 *     pipe that expects Dovecot's internal line format.
 */
#ifndef CORRAL_WORKER_H
#define CORRAL_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Creating and running a worker.                                      */

/* The worker.  One per process; created by corral_worker_new. */
typedef struct corral_worker corral_worker;
/* One accepted client.  Valid from the connected callback until the
 * closing callback returns. */
typedef struct corral_conn corral_conn;

/* Flags for corral_worker_new. */
enum {
    /*
     * The service is a login service (Dovecot's type=login): the master
     * passes the login-notify fd 4 and sends SIGUSR1 when every process of
     * the service is full, or no longer full.  The library reads the new
     * state and reports it through the login_state callback.  Without this
     * flag SIGUSR1 keeps its default action (it terminates the process),
     * as in Dovecot.
     */
    CORRAL_WORKER_LOGIN = 1u << 0,
};

/* Exit status of corral_worker_fatal; Dovecot's master reports it as
 * "Fatal failure". */
#define CORRAL_WORKER_EXIT_FATAL 89

/* IDLE_KILL's value for "never", as the master passes it. */
#define CORRAL_WORKER_IDLE_KILL_NEVER 4294967295u

/*
 * Reads the environment and arguments, checks the descriptors the master
 * passed and prepares the event loop.  Nothing is accepted and no status is
 * sent until corral_worker_run.
 *
 * `name` is the log prefix when stderr is a plain terminal or file and
 * SERVICE_NAME is not set ("echo" gives "echo: Info: ...").
 *
 * Arguments: only `--listen ADDRESS:PORT` (or `--listen=...`) is
 * understood, repeatable, standalone only: `127.0.0.1:7000`, `[::1]:7000`,
 * `*:7000` for every IPv4 address, `[::]:7000` for every address.  Any other argument is an error, so an
 * application with options of its own handles them first and passes the
 * rest (argc 1 for none).  CORRAL_LISTEN may hold the same addresses,
 * separated by commas or spaces.
 *
 * Returns NULL when the process cannot work as a worker: CLIENT_LIMIT
 * missing under a master, fd 5 not a FIFO, a listener fd not open, a
 * malformed number, a standalone start with nothing to listen on, a
 * second worker in the process.  *error then holds a message for
 * corral_worker_fatal; free() it if you carry on.  Logging is already set
 * up for the right stderr format when this returns, even on failure.
 */
corral_worker *corral_worker_new(const char *name, int argc, char *const argv[],
                                 unsigned flags, char **error);

/*
 * Closes every client still connected (each gets its closing callback),
 * the listeners and the library's own descriptors, discards signals that
 * arrived for the worker and restores the signal mask and dispositions.
 * fds 4, 5 and 6 stay open.  Not from a callback.  Accepts NULL.
 */
void corral_worker_free(corral_worker *worker);

/* Callbacks for the application.  Any may be NULL. */
typedef struct corral_worker_callbacks {
    /* A client was accepted.  Its socket is non-blocking and close-on-
     * exec, and the library watches it for reading (see
     * corral_conn_want_read).  Attach state with corral_conn_set_data. */
    void (*connected)(corral_conn *conn, void *context);
    /* The socket is readable, or has hung up or failed: read until EAGAIN
     * or EOF, and close the connection on EOF or error.  Without this
     * callback, clients are not watched for reading. */
    void (*readable)(corral_conn *conn, void *context);
    /* The socket can take more output; only while corral_conn_want_write
     * is on. */
    void (*writable)(corral_conn *conn, void *context);
    /* The connection is being closed, by corral_conn_close or by the
     * library.  The fd is still open; free the connection's data here. */
    void (*closing)(corral_conn *conn, void *context);

    /* The master asked an idle process to exit (SIGINT with no client
     * connected).  Return false to stay: the library then sends a status
     * record anyway so that the master sees the process is alive.  NULL
     * means always agree. */
    bool (*idle_kill)(void *context);
    /* CORRAL_WORKER_LOGIN only: the master signalled a change; `full` is
     * true while every process of the service is full.  A login service
     * usually drops its oldest unauthenticated client then. */
    void (*login_state)(bool full, void *context);
} corral_worker_callbacks;

/* Installs the callbacks (copied) and the context they receive. */
void corral_worker_set_callbacks(corral_worker *worker,
                                 const corral_worker_callbacks *callbacks,
                                 void *context);

/*
 * Sends the first status record (available_count = client limit), starts
 * accepting, and runs the event loop until the worker should exit.
 * Returns the process exit status to use: EXIT_SUCCESS for every normal
 * end, including kills from the master, EXIT_FAILURE if the loop itself
 * failed.  Call it once; do slow setup before it, because a Dovecot master
 * kills a process that has not sent a status record within 30 seconds.
 */
int corral_worker_run(corral_worker *worker);

/* Makes corral_worker_run return EXIT_SUCCESS once the callbacks of the
 * current loop iteration have run; stops accepting at once. */
void corral_worker_stop(corral_worker *worker);

/* ------------------------------------------------------------------ */
/* What the master said.                                               */

typedef struct corral_worker_settings {
    /* SERVICE_NAME, or the name passed to corral_worker_new. */
    const char *service_name;
    /* No GENERATION: started by hand, not by a master. */
    bool standalone;
    /* GENERATION: this process's spawn number, echoed in status records. */
    uint32_t generation;
    /* Clients served at once: CLIENT_LIMIT, capped at SERVICE_COUNT. */
    unsigned client_limit;
    /* Clients served before exiting; 0 means unlimited. */
    unsigned service_count;
    /* Stored for the application; 0 when the master did not set them. */
    unsigned process_limit;
    unsigned process_min_avail;
    unsigned idle_kill_secs; /* CORRAL_WORKER_IDLE_KILL_NEVER = never */
    /* LOG_SERVICE=1: stderr is the master's log pipe. */
    bool log_service;
    /* Standalone with no listener, serving the client connected on stdin
     * (moved to a descriptor of its own; stdin, and stdout and stderr
     * where they held the client too, then read and write /dev/null). */
    bool inetd;
} corral_worker_settings;

/* The settings read at corral_worker_new; valid until corral_worker_free. */
const corral_worker_settings *corral_worker_get_settings(const corral_worker *worker);

/* One listening socket. */
typedef struct corral_worker_listener {
    /* Position: SOCKET<index>_SETTINGS, fd 7+index under a master. */
    unsigned index;
    /* The listener's name from SOCKET<n>_SETTINGS, unescaped ("" if the
     * master gave none); the address as written when standalone. */
    const char *name;
    /* Flags that follow the name in SOCKET<n>_SETTINGS.  The library
     * only reports them: TLS and the PROXY protocol are the
     * application's to speak. */
    bool ssl;
    bool haproxy;
} corral_worker_listener;

/* The listener at `index`, or NULL past the last one.  Iterate from 0. */
const corral_worker_listener *corral_worker_listener_at(const corral_worker *worker,
                                                        unsigned index);

/* Clients connected right now. */
unsigned corral_worker_client_count(const corral_worker *worker);

/* CORRAL_WORKER_LOGIN only: the last login state read from fd 4 (at
 * corral_worker_new and on every SIGUSR1); true means every process of
 * the service is full. */
bool corral_worker_login_full(const corral_worker *worker);

/* ------------------------------------------------------------------ */
/* Clients.                                                            */

/* The client socket; -1 once the connection is closed. */
int corral_conn_fd(const corral_conn *conn);
/* The listener that accepted the client; in inetd mode a listener named
 * "stdin" at index 0. */
const corral_worker_listener *corral_conn_listener(const corral_conn *conn);
/* The worker that accepted the client. */
corral_worker *corral_conn_worker(const corral_conn *conn);

/* Application data for the connection; NULL until set. */
void corral_conn_set_data(corral_conn *conn, void *data);
void *corral_conn_data(const corral_conn *conn);

/* Turns the readable / writable callbacks on or off.  Reading is on after
 * connected (when a readable callback exists), writing off.  Turn reading
 * off while output is backed up; turn writing on after a short send. */
void corral_conn_want_read(corral_conn *conn, bool on);
void corral_conn_want_write(corral_conn *conn, bool on);

/*
 * Closes the connection: calls closing, closes the fd and gives the slot
 * back, which may send a status record, start accepting again, or end
 * corral_worker_run when SERVICE_COUNT is used up.  Safe to call from any
 * callback, also for another connection, and more than once.  The
 * pointer stays readable until the current callback returns, then is
 * freed.
 */
void corral_conn_close(corral_conn *conn);

/* ------------------------------------------------------------------ */
/* Other descriptors and timers in the same loop.                      */

typedef struct corral_worker_io corral_worker_io;
typedef struct corral_worker_timer corral_worker_timer;

/* Events for corral_worker_io_add, and what its callback receives. */
enum {
    CORRAL_WORKER_IO_READ = 1u << 0,
    CORRAL_WORKER_IO_WRITE = 1u << 1,
    /* Only ever received: error or hangup, reported whatever was asked. */
    CORRAL_WORKER_IO_ERROR = 1u << 2,
};

typedef void corral_worker_io_fn(int fd, unsigned events, void *data);
typedef void corral_worker_timer_fn(void *data);

/*
 * Watches `fd` (level-triggered) for `events`.  The fd stays the
 * caller's: remove the watch before closing it.  Returns NULL with errno
 * set if the kernel refuses the fd (regular files cannot be watched).
 */
corral_worker_io *corral_worker_io_add(corral_worker *worker, int fd, unsigned events,
                                       corral_worker_io_fn *fn, void *data);
/* Stops watching; allowed inside the io's own callback.  Accepts NULL. */
void corral_worker_io_remove(corral_worker *worker, corral_worker_io *io);

/* Calls `fn` every `msecs` milliseconds (at least 1) until removed.  For a
 * one-shot timer, remove it in its callback.  NULL with errno on failure. */
corral_worker_timer *corral_worker_timer_add(corral_worker *worker, unsigned msecs,
                                             corral_worker_timer_fn *fn, void *data);
/* Stops the timer; allowed inside its own callback.  Accepts NULL. */
void corral_worker_timer_remove(corral_worker *worker, corral_worker_timer *timer);

/* ------------------------------------------------------------------ */
/* Logging.                                                            */

/*
 * printf-style logging, one line per message (embedded newlines start new
 * lines).  With LOG_SERVICE=1 the lines use the log pipe's format, each
 * shorter than PIPE_BUF so lines from many processes never interleave;
 * otherwise they read "NAME: Info: text".  errno is preserved, and %m
 * works.  Usable before corral_worker_new (plain format, no name).
 */
void corral_worker_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void corral_worker_log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void corral_worker_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logs at fatal level and exits with CORRAL_WORKER_EXIT_FATAL. */
void corral_worker_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#ifdef __cplusplus
}
#endif

#endif /* CORRAL_WORKER_H */
