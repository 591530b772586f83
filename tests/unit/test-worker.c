/* SPDX-License-Identifier: MIT */
/*
 * test-worker.c - libcorral-worker against the protocol, through the real
 * corral-echo-worker binary.
 *
 * Most tests play the master: they build the descriptor layout a master
 * builds (status FIFO at fd 5, dead pipe at fd 6, a non-blocking TCP
 * listener at fd 7, stderr on a pipe), start the worker with a master's
 * environment, and assert on what crosses the pipes and sockets.  A few
 * build the same layout inside this process to look at the API directly.
 *
 * Every wait is bounded and waits on a real event: a readable pipe or
 * socket, the worker's stderr closing as it exits, or state in /proc.
 *
 * Usage: test-worker PATH-TO-corral-echo-worker (or ECHO_WORKER=PATH).
 */
#include <corral/worker.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* Upper bound of every wait; only reached when a test fails. */
#define WAIT_MSECS 10000
/* Test-owned descriptors are kept at or above this, clear of the
 * protocol's fds 2 to 8 that the tests lay out. */
#define HIGH_FD 20
#define GENERATION 7u
#define GENERATION_ENV "GENERATION=7"
#define MASTER_ENV "SOCKET_COUNT=1", "SOCKET0_SETTINGS=echo", "SERVICE_NAME=echo"

static const char *echo_worker_path;

/* Variables any test may set in this process; cleared after each. */
static const char *const worker_variables[] = {
    "GENERATION", "CLIENT_LIMIT", "SERVICE_COUNT", "SOCKET_COUNT", "SOCKET0_SETTINGS",
    "SOCKET1_SETTINGS", "PROCESS_LIMIT", "PROCESS_MIN_AVAIL", "IDLE_KILL", "SERVICE_NAME",
    "LOG_SERVICE", "CORRAL_LISTEN",
};

struct status_record {
    int32_t pid;
    uint32_t generation;
    uint32_t available_count;
};

/* ------------------------------------------------------------------ */
/* Small helpers.                                                      */

static int64_t now_msecs(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int msecs_left(int64_t deadline)
{
    int64_t left = deadline - now_msecs();

    return left > 0 ? (int)left : 0;
}

/* Moves a new descriptor above the protocol's range, close-on-exec. */
static int high_fd(int fd)
{
    assert_true(fd >= 0);
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD);

    assert_true(moved >= HIGH_FD);
    close(fd);
    return moved;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static bool wait_fd(int fd, short events, int timeout_msecs)
{
    struct pollfd pfd = { .fd = fd, .events = events };
    int ret;

    do
        ret = poll(&pfd, 1, timeout_msecs);
    while (ret < 0 && errno == EINTR);
    assert_true(ret >= 0);
    return ret == 1;
}

/* A non-blocking TCP listener on 127.0.0.1 with a kernel-chosen port. */
static int make_listener(struct sockaddr_in *address)
{
    socklen_t length = sizeof(*address);
    int fd = high_fd(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));

    *address = (struct sockaddr_in){ .sin_family = AF_INET,
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)address, sizeof(*address)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)address, &length), 0);
    return fd;
}

static int connect_to(const struct sockaddr_in *address)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)address, sizeof(*address)), 0);
    return fd;
}

/* Sends `text` and asserts that exactly it comes back. */
static void assert_echo(int fd, const char *text)
{
    size_t length = strlen(text);
    char reply[256];
    size_t got = 0;
    int64_t deadline = now_msecs() + WAIT_MSECS;

    assert_true(length < sizeof(reply));
    assert_int_equal(send(fd, text, length, MSG_NOSIGNAL), (ssize_t)length);
    while (got < length) {
        assert_true(wait_fd(fd, POLLIN, msecs_left(deadline)));
        ssize_t n = recv(fd, reply + got, length - got, MSG_DONTWAIT);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_memory_equal(reply, text, length);
}

/* ------------------------------------------------------------------ */
/* Playing the master for a spawned echo worker.                       */

struct worker_child {
    pid_t pid;            /* 0 once reaped */
    int status_read;      /* our end of the status FIFO (fd 5) */
    int dead_read;        /* our end of the dead pipe (fd 6); close = master gone */
    int listener;         /* our copy of the listener (fd 7) */
    int log_read;         /* the worker's stderr; EOF when it exits */
    struct sockaddr_in address;
    char log[8192];       /* what has been read from log_read */
    size_t log_length;
};

struct fixture {
    struct worker_child child;
    int clients[8];
};

static int fixture_setup(void **state)
{
    struct fixture *fixture = calloc(1, sizeof(*fixture));

    assert_non_null(fixture);
    fixture->child = (struct worker_child){ .status_read = -1, .dead_read = -1,
                                            .listener = -1, .log_read = -1 };
    for (size_t i = 0; i < sizeof(fixture->clients) / sizeof(fixture->clients[0]); i++)
        fixture->clients[i] = -1;
    *state = fixture;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;

    if (child->pid > 0) {
        kill(child->pid, SIGKILL);
        waitpid(child->pid, NULL, 0);
    }
    for (size_t i = 0; i < sizeof(fixture->clients) / sizeof(fixture->clients[0]); i++)
        close_fd(&fixture->clients[i]);
    close_fd(&child->status_read);
    close_fd(&child->dead_read);
    close_fd(&child->listener);
    close_fd(&child->log_read);
    free(fixture);
    return 0;
}

enum status_fd_kind { STATUS_FIFO, STATUS_SOCKET };

/*
 * Starts the echo worker with exactly `env` and the layout a master gives:
 * fd 2 a pipe to us, fd 5 the status FIFO (or a socket, to break it), fd 6
 * the dead pipe, fd 7 the listener.  `args` follow argv[0].
 */
static void spawn_worker(struct worker_child *child, const char *const env[],
                         const char *const args[], enum status_fd_kind status_kind)
{
    int status[2], dead[2], log[2];
    const char *argv[8] = { echo_worker_path };

    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        assert_true(i + 1 < sizeof(argv) / sizeof(argv[0]) - 1);
        argv[i + 1] = args[i];
    }
    if (status_kind == STATUS_FIFO)
        assert_int_equal(pipe2(status, O_CLOEXEC | O_NONBLOCK), 0);
    else
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, status), 0);
    assert_int_equal(pipe2(dead, O_CLOEXEC), 0);
    assert_int_equal(pipe2(log, O_CLOEXEC), 0);
    child->status_read = high_fd(status[0]);
    child->dead_read = high_fd(dead[0]);
    child->log_read = high_fd(log[0]);
    int status_write = high_fd(status[1]);
    int dead_write = high_fd(dead[1]);
    int log_write = high_fd(log[1]);
    child->listener = make_listener(&child->address);

    child->pid = fork();
    assert_true(child->pid >= 0);
    if (child->pid == 0) {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* Sources are all at HIGH_FD and above, so no dup2 clobbers one. */
        if (dup2(log_write, STDERR_FILENO) < 0 || dup2(status_write, 5) < 0 ||
            dup2(dead_write, 6) < 0 || dup2(child->listener, 7) < 0)
            _exit(126);
        execve(echo_worker_path, (char *const *)argv, (char *const *)env);
        _exit(127);
    }
    close(status_write);
    close(dead_write);
    close(log_write);
}

/* Reads some of the worker's stderr into child->log, waiting at most
 * `timeout_msecs`.  Returns false on timeout; sets *eof at end of file. */
static bool read_log(struct worker_child *child, int timeout_msecs, bool *eof)
{
    char scratch[512];
    size_t room = sizeof(child->log) - 1 - child->log_length;
    ssize_t n;

    if (!wait_fd(child->log_read, POLLIN, timeout_msecs))
        return false;
    /* Past the buffer's end, keeps draining so the worker never blocks. */
    if (room > 0)
        n = read(child->log_read, child->log + child->log_length, room);
    else
        n = read(child->log_read, scratch, sizeof(scratch));
    assert_true(n >= 0);
    if (room > 0)
        child->log_length += (size_t)n;
    child->log[child->log_length] = '\0';
    *eof = n == 0;
    return true;
}

/* Waits for the worker to exit and returns its wait status.  Its stderr
 * closes when it exits, so the pipe's end of file is the event. */
static int wait_exit(struct worker_child *child)
{
    int64_t deadline = now_msecs() + WAIT_MSECS;
    bool eof = false;
    int status;

    while (!eof)
        if (!read_log(child, msecs_left(deadline), &eof))
            fail_msg("pid %d did not exit", (int)child->pid);
    assert_int_equal(waitpid(child->pid, &status, 0), child->pid);
    child->pid = 0;
    return status;
}

static void assert_exits_with(struct worker_child *child, int code)
{
    int status = wait_exit(child);

    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), code);
}

static void assert_alive(const struct worker_child *child)
{
    assert_int_equal(waitpid(child->pid, NULL, WNOHANG), 0);
}

static bool read_record(struct worker_child *child, struct status_record *record,
                        int timeout_msecs)
{
    if (!wait_fd(child->status_read, POLLIN, timeout_msecs))
        return false;
    ssize_t n = read(child->status_read, record, sizeof(*record));
    if (n == 0)
        fail_msg("the worker closed its status pipe (it exited)");
    assert_int_equal(n, sizeof(*record));
    assert_int_equal(record->pid, child->pid);
    assert_int_equal(record->generation, GENERATION);
    return true;
}

/* The next record must carry `available`. */
static void expect_record(struct worker_child *child, unsigned available)
{
    struct status_record record;

    if (!read_record(child, &record, WAIT_MSECS))
        fail_msg("no status record (expected available_count=%u)", available);
    assert_int_equal(record.available_count, available);
}

/* Reads records until one carries `available`; returns how many it read. */
static unsigned wait_record(struct worker_child *child, unsigned available)
{
    int64_t deadline = now_msecs() + WAIT_MSECS;
    struct status_record record;
    unsigned count = 0;

    do {
        if (!read_record(child, &record, msecs_left(deadline)))
            fail_msg("no status record with available_count=%u", available);
        count++;
    } while (record.available_count != available);
    return count;
}

/* Nothing waits in the status pipe right now. */
static void assert_no_record(struct worker_child *child)
{
    struct status_record record;

    assert_int_equal(read(child->status_read, &record, sizeof(record)), -1);
    assert_int_equal(errno, EAGAIN);
}

/* Reads the worker's stderr until `text` shows up in it. */
static void wait_log(struct worker_child *child, const char *text)
{
    int64_t deadline = now_msecs() + WAIT_MSECS;
    bool eof = false;

    while (strstr(child->log, text) == NULL) {
        if (eof || !read_log(child, msecs_left(deadline), &eof))
            fail_msg("'%s' not logged; log so far: %s", text, child->log);
    }
}

/* Waits until the worker has taken `signo` off its pending set, which it
 * does by reading its signalfd just before acting on the signal. */
static void wait_signal_taken(pid_t pid, int signo)
{
    char path[64];
    int64_t deadline = now_msecs() + WAIT_MSECS;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    for (;;) {
        FILE *file = fopen(path, "re");
        char line[256];
        unsigned long long pending = ~0ull;

        assert_non_null(file);
        while (fgets(line, sizeof(line), file) != NULL)
            if (sscanf(line, "ShdPnd: %llx", &pending) == 1)
                break;
        fclose(file);
        if (!(pending & (1ull << (signo - 1))))
            return;
        if (msecs_left(deadline) == 0)
            fail_msg("signal %d still pending in pid %d", signo, (int)pid);
        poll(NULL, 0, 1);
    }
}

/* Where the worker's fd 7 points, or "" if it is closed. */
static void child_fd7(pid_t pid, char *target, size_t size)
{
    char path[64];
    ssize_t length;

    snprintf(path, sizeof(path), "/proc/%d/fd/7", (int)pid);
    length = readlink(path, target, size - 1);
    target[length > 0 ? length : 0] = '\0';
}

/* ------------------------------------------------------------------ */
/* Status records and counting.                                        */

static void test_first_status_is_client_limit(void **state)
{
    struct fixture *fixture = *state;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=10", MASTER_ENV, NULL };

    spawn_worker(&fixture->child, env, NULL, STATUS_FIFO);
    expect_record(&fixture->child, 10);
    assert_alive(&fixture->child);
}

static void test_client_takes_and_returns_a_slot(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=10", MASTER_ENV, NULL };

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 10);
    fixture->clients[0] = connect_to(&child->address);
    assert_echo(fixture->clients[0], "hello\n");
    expect_record(child, 9);
    close_fd(&fixture->clients[0]);
    expect_record(child, 10);
    assert_alive(child);
}

/* Changes to and from 0 are written before anything else happens. */
static void test_full_and_free_are_sent_at_once(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=1", MASTER_ENV, NULL };
    struct status_record record;

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 1);
    fixture->clients[0] = connect_to(&child->address);
    assert_echo(fixture->clients[0], "ping\n");
    /* The worker writes the record when it accepts, before it reads the
     * client, so it must be there already. */
    assert_true(read_record(child, &record, 0));
    assert_int_equal(record.available_count, 0);
    close_fd(&fixture->clients[0]);
    expect_record(child, 1);
}

/* Other changes go out at most once per clock second, the last one
 * through a timer: eight quick accepts make a record or two, plus one for
 * each second boundary they happen to straddle; never eight. */
static void test_other_changes_are_coalesced(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=10", MASTER_ENV, NULL };

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 10);
    for (int i = 0; i < 8; i++) {
        fixture->clients[i] = connect_to(&child->address);
        assert_echo(fixture->clients[i], "x");
    }
    assert_true(wait_record(child, 2) <= 4);
}

static void test_service_count_one_exits_after_one_client(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=5", "SERVICE_COUNT=1", MASTER_ENV,
                          NULL };
    struct status_record record;

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 1); /* the client limit is capped at the service count */
    fixture->clients[0] = connect_to(&child->address);
    assert_echo(fixture->clients[0], "once\n");
    expect_record(child, 0);
    close_fd(&fixture->clients[0]);
    assert_exits_with(child, 0);
    /* It left without announcing a free slot. */
    assert_int_equal(read(child->status_read, &record, sizeof(record)), 0);
}

/*
 * CLIENT_LIMIT=2, SERVICE_COUNT=3: after the first client leaves one more
 * may come; after the second leaves no slot is given back, because the two
 * clients still connected use up the service count.
 */
static void test_service_count_keeps_last_slots(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=2", "SERVICE_COUNT=3", MASTER_ENV,
                          NULL };

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 2);
    fixture->clients[0] = connect_to(&child->address);
    fixture->clients[1] = connect_to(&child->address);
    assert_echo(fixture->clients[0], "a");
    assert_echo(fixture->clients[1], "b");
    wait_record(child, 0);

    /* Full: a third client waits in the queue for the master. */
    int queued = connect_to(&child->address);
    close(queued);
    int taken = accept(child->listener, NULL, NULL);
    assert_true(taken >= 0);
    close(taken);

    close_fd(&fixture->clients[0]);
    expect_record(child, 1);
    fixture->clients[2] = connect_to(&child->address);
    assert_echo(fixture->clients[2], "c");
    expect_record(child, 0);

    /* Once the worker has closed the second client and handled a request
     * after that, a slot given back would have been announced. */
    char byte;
    assert_int_equal(shutdown(fixture->clients[1], SHUT_WR), 0);
    assert_true(wait_fd(fixture->clients[1], POLLIN, WAIT_MSECS));
    assert_int_equal(recv(fixture->clients[1], &byte, 1, 0), 0);
    assert_echo(fixture->clients[2], "still served");
    assert_no_record(child);
    /* No slot came back: the worker is not accepting. */
    fixture->clients[3] = connect_to(&child->address);
    taken = accept(child->listener, NULL, NULL);
    assert_true(taken >= 0);
    close(taken);

    close_fd(&fixture->clients[2]);
    assert_exits_with(child, 0);
}

/* ------------------------------------------------------------------ */
/* Signals and the dead pipe.                                          */

static void test_sigint_when_idle_exits(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=4", MASTER_ENV, NULL };

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 4);
    assert_int_equal(kill(child->pid, SIGINT), 0);
    assert_exits_with(child, 0);
    assert_string_equal(child->log, "");
}

static void test_sigint_with_a_client_is_ignored(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=1", MASTER_ENV, NULL };

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 1);
    fixture->clients[0] = connect_to(&child->address);
    expect_record(child, 0);

    assert_int_equal(kill(child->pid, SIGINT), 0);
    wait_signal_taken(child->pid, SIGINT);
    assert_echo(fixture->clients[0], "after SIGINT\n");
    assert_alive(child);
    assert_no_record(child);

    close_fd(&fixture->clients[0]);
    expect_record(child, 1);
    assert_int_equal(kill(child->pid, SIGINT), 0);
    assert_exits_with(child, 0);
}

static void test_sigterm_logs_to_the_log_service(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=2", "LOG_SERVICE=1", MASTER_ENV, NULL };
    char expected[256];

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 2);
    assert_int_equal(kill(child->pid, SIGTERM), 0);
    pid_t pid = child->pid;
    assert_exits_with(child, 0);
    snprintf(expected, sizeof(expected),
             "\x01\x03%d Killed with signal 15 (by pid=%d uid=%u code=kill)\n", (int)pid,
             (int)getpid(), (unsigned)getuid());
    assert_string_equal(child->log, expected);
}

static void test_dead_pipe_when_idle_exits(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=3", MASTER_ENV, NULL };

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 3);
    close_fd(&child->dead_read);
    assert_exits_with(child, 0);
}

/* With a client, the master's death closes the listeners and makes that
 * client the last one. */
static void test_dead_pipe_with_a_client_drains(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=3", MASTER_ENV, NULL };
    char target[256];

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 3);
    fixture->clients[0] = connect_to(&child->address);
    assert_echo(fixture->clients[0], "before\n");

    close_fd(&child->dead_read);
    wait_record(child, 0);
    child_fd7(child->pid, target, sizeof(target));
    assert_string_equal(target, "");
    assert_echo(fixture->clients[0], "after\n");
    assert_alive(child);

    close_fd(&fixture->clients[0]);
    assert_exits_with(child, 0);
}

/* While full the worker does not watch its listener; SIGQUIT then points
 * fd 7 at /dev/null so that the port is free for a new master. */
static void test_sigquit_frees_listener_while_full(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=1", MASTER_ENV, NULL };
    char target[256];
    int64_t deadline;

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 1);
    child_fd7(child->pid, target, sizeof(target));
    assert_non_null(strstr(target, "socket:"));
    fixture->clients[0] = connect_to(&child->address);
    expect_record(child, 0);

    assert_int_equal(kill(child->pid, SIGQUIT), 0);
    deadline = now_msecs() + WAIT_MSECS;
    do {
        child_fd7(child->pid, target, sizeof(target));
        if (strcmp(target, "/dev/null") == 0)
            break;
        poll(NULL, 0, 1);
    } while (msecs_left(deadline) > 0);
    assert_string_equal(target, "/dev/null");

    assert_echo(fixture->clients[0], "still here\n");
    close_fd(&fixture->clients[0]);
    expect_record(child, 1);
    close_fd(&child->dead_read);
    assert_exits_with(child, 0);
}

/* ------------------------------------------------------------------ */
/* Start-up, logging, standalone, echo.                                */

static void test_status_fd_not_fifo_is_fatal(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=1", MASTER_ENV, NULL };

    spawn_worker(child, env, NULL, STATUS_SOCKET);
    assert_exits_with(child, CORRAL_WORKER_EXIT_FATAL);
    assert_string_equal(child->log,
                        "echo: Fatal: fd 5 is not a FIFO: a worker must be started by a "
                        "master process (corrald or dovecot)\n");
}

static void test_missing_client_limit_is_fatal(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "LOG_SERVICE=1", MASTER_ENV, NULL };
    char expected[128];

    spawn_worker(child, env, NULL, STATUS_FIFO);
    pid_t pid = child->pid;
    assert_exits_with(child, CORRAL_WORKER_EXIT_FATAL);
    snprintf(expected, sizeof(expected), "\x01\x05%d CLIENT_LIMIT missing\n", (int)pid);
    assert_string_equal(child->log, expected);
}

static void test_standalone_listens_and_serves_one_client(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { NULL };
    const char *args[] = { "--listen", "127.0.0.1:0", NULL };
    struct status_record record;
    unsigned port;

    spawn_worker(child, env, args, STATUS_FIFO);
    wait_log(child, "\n");
    assert_int_equal(sscanf(child->log, "echo: Info: Listening on 127.0.0.1:%u", &port), 1);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    fixture->clients[0] = connect_to(&address);
    assert_echo(fixture->clients[0], "by hand\n");
    close_fd(&fixture->clients[0]);
    assert_exits_with(child, 0);
    /* Nobody to report to: the status pipe got nothing. */
    assert_int_equal(read(child->status_read, &record, sizeof(record)), 0);
}

/* Started the inetd way: the client on fds 0 and 1, no master fds, no
 * GENERATION.  It serves that client, and when it closes the client the
 * connection closes (stdin and stdout no longer hold it), and it exits. */
static void test_inetd_serves_the_client_on_stdin_and_exits(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *argv[] = { echo_worker_path, NULL };
    const char *env[] = { NULL };
    int pair[2], log[2];
    char byte;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    assert_int_equal(pipe2(log, O_CLOEXEC), 0);
    fixture->clients[0] = high_fd(pair[0]);
    int server_end = high_fd(pair[1]);
    int log_write = high_fd(log[1]);
    child->log_read = high_fd(log[0]);

    child->pid = fork();
    assert_true(child->pid >= 0);
    if (child->pid == 0) {
        if (dup2(server_end, STDIN_FILENO) < 0 || dup2(server_end, STDOUT_FILENO) < 0 ||
            dup2(log_write, STDERR_FILENO) < 0)
            _exit(126);
        execve(echo_worker_path, (char *const *)argv, (char *const *)env);
        _exit(127);
    }
    close(server_end);
    close(log_write);

    assert_echo(fixture->clients[0], "from inetd\n");
    assert_echo(fixture->clients[0], "twice\n");
    assert_int_equal(shutdown(fixture->clients[0], SHUT_WR), 0);
    assert_true(wait_fd(fixture->clients[0], POLLIN, WAIT_MSECS));
    assert_int_equal(recv(fixture->clients[0], &byte, 1, MSG_DONTWAIT), 0);
    assert_exits_with(child, 0);
    assert_int_equal(child->log_length, 0);
}

static void test_echo_streams_a_megabyte(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=1", MASTER_ENV, NULL };
    /* Never more unanswered than the client's socket buffers hold, so a
     * well-behaved client is never taken for a flooding one. */
    enum { total = 1 << 20, window = 16 << 10 };
    static char sent_data[total], echoed[total];
    size_t sent = 0, received = 0;
    int64_t deadline = now_msecs() + WAIT_MSECS;

    for (size_t i = 0; i < total; i++)
        sent_data[i] = (char)(i * 31 + i / 251);
    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 1);
    int fd = fixture->clients[0] = connect_to(&child->address);

    while (received < total) {
        bool may_send = sent < total && sent - received < window;
        struct pollfd pfd = { .fd = fd, .events = POLLIN | (may_send ? POLLOUT : 0) };

        assert_int_equal(poll(&pfd, 1, msecs_left(deadline)), 1);
        assert_false(pfd.revents & (POLLERR | POLLHUP));
        if (pfd.revents & POLLOUT) {
            size_t chunk = window - (sent - received);
            ssize_t n = send(fd, sent_data + sent, chunk < total - sent ? chunk : total - sent,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
            assert_true(n > 0 || errno == EAGAIN);
            sent += n > 0 ? (size_t)n : 0;
        }
        if (pfd.revents & POLLIN) {
            ssize_t n = recv(fd, echoed + received, total - received, MSG_DONTWAIT);
            assert_true(n > 0);
            received += (size_t)n;
        }
    }
    assert_memory_equal(echoed, sent_data, total);
}

/* A client that sends without ever reading overflows its buffer and is
 * dropped, which gives its slot back. */
static void test_client_that_never_reads_is_dropped(void **state)
{
    struct fixture *fixture = *state;
    struct worker_child *child = &fixture->child;
    const char *env[] = { GENERATION_ENV, "CLIENT_LIMIT=1", MASTER_ENV, NULL };
    static char chunk[64 << 10];
    const size_t limit = (size_t)256 << 20;
    size_t sent = 0;
    int64_t deadline = now_msecs() + WAIT_MSECS;
    bool dropped = false;

    spawn_worker(child, env, NULL, STATUS_FIFO);
    expect_record(child, 1);
    int fd = fixture->clients[0] = connect_to(&child->address);
    expect_record(child, 0);

    while (!dropped && sent < limit) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };

        assert_int_equal(poll(&pfd, 1, msecs_left(deadline)), 1);
        ssize_t n = send(fd, chunk, sizeof(chunk), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else
            dropped = errno == ECONNRESET || errno == EPIPE;
    }
    assert_true(dropped);
    expect_record(child, 1);
    wait_log(child, "echo: Warning: Client sends without reading its echo: disconnecting\n");
}

/* ------------------------------------------------------------------ */
/* The API inside this process, with a layout made here.               */

struct in_process {
    int status_read;
    int dead_read;
    int listeners[2];  /* our copies of fds 7 and 8 */
    struct sockaddr_in addresses[2];
};

static int in_process_setup(void **state)
{
    struct in_process *layout = calloc(1, sizeof(*layout));

    assert_non_null(layout);
    layout->status_read = layout->dead_read = -1;
    layout->listeners[0] = layout->listeners[1] = -1;
    for (int fd = 4; fd <= 8; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            fail_msg("fd %d is already in use in the test process", fd);
    *state = layout;
    return 0;
}

static int in_process_teardown(void **state)
{
    struct in_process *layout = *state;

    for (int fd = 4; fd <= 8; fd++)
        close(fd);
    close_fd(&layout->status_read);
    close_fd(&layout->dead_read);
    close_fd(&layout->listeners[0]);
    close_fd(&layout->listeners[1]);
    for (size_t i = 0; i < sizeof(worker_variables) / sizeof(worker_variables[0]); i++)
        unsetenv(worker_variables[i]);
    free(layout);
    return 0;
}

/* Lays out fds 5, 6 and 7.. in this process as a master would. */
static void lay_out_fds(struct in_process *layout, unsigned listener_count)
{
    int status[2], dead[2];

    assert_int_equal(pipe2(status, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(pipe2(dead, O_CLOEXEC), 0);
    layout->status_read = high_fd(status[0]);
    layout->dead_read = high_fd(dead[0]);
    int status_write = high_fd(status[1]), dead_write = high_fd(dead[1]);

    assert_int_equal(dup2(status_write, 5), 5);
    assert_int_equal(dup2(dead_write, 6), 6);
    close(status_write);
    close(dead_write);
    for (unsigned i = 0; i < listener_count; i++) {
        layout->listeners[i] = make_listener(&layout->addresses[i]);
        assert_int_equal(dup2(layout->listeners[i], 7 + (int)i), 7 + (int)i);
    }
}

static void expect_own_record(struct in_process *layout, unsigned available)
{
    struct status_record record;

    assert_int_equal(read(layout->status_read, &record, sizeof(record)), sizeof(record));
    assert_int_equal(record.pid, getpid());
    assert_int_equal(record.generation, GENERATION);
    assert_int_equal(record.available_count, available);
}

static void give_up(void *data)
{
    corral_worker *worker = data;

    fail_msg("the worker did not stop in time");
    corral_worker_stop(worker);
}

/* corral_worker_run with a deadline, so a bug cannot hang the suite. */
static void run_bounded(corral_worker *worker)
{
    corral_worker_timer *deadline = corral_worker_timer_add(worker, WAIT_MSECS, give_up, worker);

    assert_non_null(deadline);
    assert_int_equal(corral_worker_run(worker), EXIT_SUCCESS);
    corral_worker_timer_remove(worker, deadline);
}

static void test_settings_and_listener_names(void **state)
{
    struct in_process *layout = *state;
    char *error = NULL;

    lay_out_fds(layout, 2);
    setenv("GENERATION", "42", 1);
    setenv("CLIENT_LIMIT", "10", 1);
    setenv("SERVICE_COUNT", "3", 1);
    setenv("SOCKET_COUNT", "2", 1);
    /* Name "a<TAB>b<\001>c", escaped as the master escapes it. */
    setenv("SOCKET0_SETTINGS", "a\001tb\0011c\tssl\thaproxy", 1);
    setenv("PROCESS_LIMIT", "4", 1);
    setenv("PROCESS_MIN_AVAIL", "2", 1);
    setenv("IDLE_KILL", "4294967295", 1);
    setenv("SERVICE_NAME", "imap-login", 1);

    corral_worker *worker = corral_worker_new("test", 1, (char *[]){ "test", NULL }, 0, &error);
    assert_non_null(worker);
    assert_null(error);

    const corral_worker_settings *settings = corral_worker_get_settings(worker);
    assert_false(settings->standalone);
    assert_int_equal(settings->generation, 42);
    assert_int_equal(settings->client_limit, 3);
    assert_int_equal(settings->service_count, 3);
    assert_int_equal(settings->process_limit, 4);
    assert_int_equal(settings->process_min_avail, 2);
    assert_int_equal(settings->idle_kill_secs, CORRAL_WORKER_IDLE_KILL_NEVER);
    assert_string_equal(settings->service_name, "imap-login");
    assert_false(settings->log_service);

    const corral_worker_listener *first = corral_worker_listener_at(worker, 0);
    const corral_worker_listener *second = corral_worker_listener_at(worker, 1);
    assert_non_null(first);
    assert_string_equal(first->name, "a\tb\001c");
    assert_true(first->ssl);
    assert_true(first->haproxy);
    assert_non_null(second);
    assert_int_equal(second->index, 1);
    assert_string_equal(second->name, "");
    assert_false(second->ssl);
    assert_null(corral_worker_listener_at(worker, 2));
    assert_int_equal(corral_worker_client_count(worker), 0);

    /* The worker reads SIGINT and SIGTERM from a signalfd while it lives,
     * and gives them back when freed. */
    sigset_t mask;
    assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &mask), 0);
    assert_true(sigismember(&mask, SIGINT) && sigismember(&mask, SIGTERM));
    corral_worker_free(worker);
    assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &mask), 0);
    assert_false(sigismember(&mask, SIGINT) || sigismember(&mask, SIGTERM));
    /* The listeners were the worker's to close; the pipes were not. */
    assert_int_equal(fcntl(7, F_GETFD), -1);
    assert_int_equal(fcntl(8, F_GETFD), -1);
    assert_true(fcntl(5, F_GETFD) >= 0);
    assert_true(fcntl(6, F_GETFD) >= 0);
}

struct setup_error_case {
    const char *variables[6]; /* NAME=value */
    const char *argument;     /* after argv[0], or NULL */
    const char *message;      /* expected in the error */
};

static void test_setup_errors(void **state)
{
    struct in_process *layout = *state;
    static const struct setup_error_case cases[] = {
        { { "GENERATION=1" }, NULL, "CLIENT_LIMIT missing" },
        { { "GENERATION=1", "CLIENT_LIMIT=0" }, NULL, "CLIENT_LIMIT missing" },
        { { "GENERATION=x1", "CLIENT_LIMIT=1" }, NULL, "Invalid GENERATION: 'x1'" },
        { { "GENERATION=1", "CLIENT_LIMIT=5 " }, NULL, "Invalid CLIENT_LIMIT: '5 '" },
        { { "GENERATION=1", "CLIENT_LIMIT=1", "SOCKET_COUNT=2" }, NULL,
          "fd 8 (listener 1 of SOCKET_COUNT=2) is not open" },
        { { "GENERATION=1", "CLIENT_LIMIT=1" }, "--listen=127.0.0.1:0", "standalone use" },
        { { "GENERATION=1", "CLIENT_LIMIT=1" }, "--verbose", "Unknown argument: --verbose" },
        { { NULL }, NULL, "Nothing to listen on" },
        { { NULL }, "--listen=999.0.0.1:7000", "Invalid listen address '999.0.0.1:7000'" },
        { { "CORRAL_LISTEN=127.0.0.1" }, NULL, "expected ADDRESS:PORT" },
    };
    lay_out_fds(layout, 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = { "test", (char *)cases[i].argument, NULL };
        char *error = NULL;

        for (size_t v = 0; v < sizeof(worker_variables) / sizeof(worker_variables[0]); v++)
            unsetenv(worker_variables[v]);
        for (size_t v = 0; cases[i].variables[v] != NULL; v++)
            assert_int_equal(putenv((char *)cases[i].variables[v]), 0);
        assert_null(corral_worker_new("test", cases[i].argument != NULL ? 2 : 1, argv, 0,
                                      &error));
        assert_non_null(error);
        if (strstr(error, cases[i].message) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, error, cases[i].message);
        free(error);
    }

    /* One worker per process. */
    unsetenv("CORRAL_LISTEN");
    setenv("GENERATION", "1", 1);
    setenv("CLIENT_LIMIT", "1", 1);
    char *error = NULL;
    corral_worker *worker = corral_worker_new("test", 1, (char *[]){ "test", NULL }, 0, &error);
    assert_non_null(worker);
    assert_null(corral_worker_new("test", 1, (char *[]){ "test", NULL }, 0, &error));
    assert_string_equal(error, "A worker already exists in this process");
    free(error);
    corral_worker_free(worker);
}

struct login_observer {
    corral_worker *worker;
    int calls;
    bool last_full;
};

static void record_login_state(bool full, void *context)
{
    struct login_observer *observer = context;

    observer->calls++;
    observer->last_full = full;
    corral_worker_stop(observer->worker);
}

/* A login service reads FULL/NONFULL from fd 4's offset at start and on
 * every SIGUSR1. */
static void test_login_state_follows_sigusr1(void **state)
{
    struct in_process *layout = *state;
    struct login_observer observer = { 0 };
    char *error = NULL;
    int notify = high_fd(memfd_create("login-notify", MFD_CLOEXEC));

    assert_int_equal(dup2(notify, 4), 4);
    close(notify);
    assert_int_equal(lseek(4, 1, SEEK_SET), 1); /* FULL */
    lay_out_fds(layout, 1);
    setenv("GENERATION", "7", 1);
    setenv("CLIENT_LIMIT", "3", 1);

    corral_worker *worker = corral_worker_new("login", 1, (char *[]){ "login", NULL },
                                              CORRAL_WORKER_LOGIN, &error);
    assert_non_null(worker);
    assert_true(corral_worker_login_full(worker));
    observer.worker = worker;
    corral_worker_set_callbacks(worker,
                                &(corral_worker_callbacks){ .login_state = record_login_state },
                                &observer);

    assert_int_equal(lseek(4, 0, SEEK_SET), 0); /* NONFULL */
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    run_bounded(worker);
    assert_int_equal(observer.calls, 1);
    assert_false(observer.last_full);
    assert_false(corral_worker_login_full(worker));
    expect_own_record(layout, 3);
    corral_worker_free(worker);
}

struct idle_observer {
    int calls;
};

/* Refuses the first idle kill and asks for another, accepts the second. */
static bool refuse_first_idle_kill(void *context)
{
    struct idle_observer *observer = context;

    if (++observer->calls == 1) {
        kill(getpid(), SIGINT);
        return false;
    }
    return true;
}

static void test_refused_idle_kill_sends_status(void **state)
{
    struct in_process *layout = *state;
    struct idle_observer observer = { 0 };
    char *error = NULL;
    struct status_record record;

    lay_out_fds(layout, 1);
    setenv("GENERATION", "7", 1);
    setenv("CLIENT_LIMIT", "5", 1);
    corral_worker *worker = corral_worker_new("test", 1, (char *[]){ "test", NULL }, 0, &error);
    assert_non_null(worker);
    corral_worker_set_callbacks(
        worker, &(corral_worker_callbacks){ .idle_kill = refuse_first_idle_kill }, &observer);

    assert_int_equal(kill(getpid(), SIGINT), 0);
    run_bounded(worker);
    assert_int_equal(observer.calls, 2);
    expect_own_record(layout, 5); /* the first status */
    expect_own_record(layout, 5); /* unchanged, but sent for the refusal */
    assert_int_equal(read(layout->status_read, &record, sizeof(record)), -1);
    corral_worker_free(worker);
}

struct io_observer {
    corral_worker *worker;
    corral_worker_io *io;
    corral_worker_timer *timer;
    unsigned io_events;
    int timer_calls;
};

static void timer_fired(void *data)
{
    struct io_observer *observer = data;

    observer->timer_calls++;
    corral_worker_timer_remove(observer->worker, observer->timer);
    corral_worker_stop(observer->worker);
}

static void pipe_readable(int fd, unsigned events, void *data)
{
    struct io_observer *observer = data;
    char byte;

    observer->io_events = events;
    assert_int_equal(read(fd, &byte, 1), 1);
    corral_worker_io_remove(observer->worker, observer->io);
    observer->timer = corral_worker_timer_add(observer->worker, 1, timer_fired, observer);
    assert_non_null(observer->timer);
}

/* Application fds and timers share the worker's loop. */
static void test_application_io_and_timer(void **state)
{
    struct in_process *layout = *state;
    struct io_observer observer = { 0 };
    char *error = NULL;
    int app_pipe[2];

    lay_out_fds(layout, 1);
    setenv("GENERATION", "7", 1);
    setenv("CLIENT_LIMIT", "1", 1);
    observer.worker = corral_worker_new("test", 1, (char *[]){ "test", NULL }, 0, &error);
    assert_non_null(observer.worker);
    assert_int_equal(pipe2(app_pipe, O_CLOEXEC), 0);
    app_pipe[0] = high_fd(app_pipe[0]);
    app_pipe[1] = high_fd(app_pipe[1]);
    observer.io = corral_worker_io_add(observer.worker, app_pipe[0], CORRAL_WORKER_IO_READ,
                                       pipe_readable, &observer);
    assert_non_null(observer.io);
    assert_int_equal(write(app_pipe[1], "!", 1), 1);

    run_bounded(observer.worker);
    assert_int_equal(observer.io_events, CORRAL_WORKER_IO_READ);
    assert_int_equal(observer.timer_calls, 1);
    expect_own_record(layout, 1);
    corral_worker_free(observer.worker);
    close(app_pipe[0]);
    close(app_pipe[1]);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
#define SPAWNED(test) cmocka_unit_test_setup_teardown(test, fixture_setup, fixture_teardown)
#define IN_PROCESS(test) \
    cmocka_unit_test_setup_teardown(test, in_process_setup, in_process_teardown)
        SPAWNED(test_first_status_is_client_limit),
        SPAWNED(test_client_takes_and_returns_a_slot),
        SPAWNED(test_full_and_free_are_sent_at_once),
        SPAWNED(test_other_changes_are_coalesced),
        SPAWNED(test_service_count_one_exits_after_one_client),
        SPAWNED(test_service_count_keeps_last_slots),
        SPAWNED(test_sigint_when_idle_exits),
        SPAWNED(test_sigint_with_a_client_is_ignored),
        SPAWNED(test_sigterm_logs_to_the_log_service),
        SPAWNED(test_dead_pipe_when_idle_exits),
        SPAWNED(test_dead_pipe_with_a_client_drains),
        SPAWNED(test_sigquit_frees_listener_while_full),
        SPAWNED(test_status_fd_not_fifo_is_fatal),
        SPAWNED(test_missing_client_limit_is_fatal),
        SPAWNED(test_standalone_listens_and_serves_one_client),
        SPAWNED(test_inetd_serves_the_client_on_stdin_and_exits),
        SPAWNED(test_echo_streams_a_megabyte),
        SPAWNED(test_client_that_never_reads_is_dropped),
        IN_PROCESS(test_settings_and_listener_names),
        IN_PROCESS(test_setup_errors),
        IN_PROCESS(test_login_state_follows_sigusr1),
        IN_PROCESS(test_refused_idle_kill_sends_status),
        IN_PROCESS(test_application_io_and_timer),
#undef SPAWNED
#undef IN_PROCESS
    };

    echo_worker_path = argc > 1 ? argv[1] : getenv("ECHO_WORKER");
    if (echo_worker_path == NULL || access(echo_worker_path, X_OK) != 0) {
        fprintf(stderr, "usage: %s PATH-TO-corral-echo-worker (or set ECHO_WORKER)\n",
                argv[0]);
        return 2;
    }
    for (size_t i = 0; i < sizeof(worker_variables) / sizeof(worker_variables[0]); i++)
        unsetenv(worker_variables[i]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
