/* SPDX-License-Identifier: MIT */
/*
 * rawpool - N processes sharing one listening socket with no supervisor
 * logic: the practical limit a pre-forking master is measured against.
 *
 *   rawpool -p PORT -n N [-a 127.0.0.1] [-b BACKLOG] -m builtin
 *   rawpool -p PORT -n N ... -m poll
 *   rawpool -p PORT -n N ... -m exec [-l CLIENT_LIMIT] [-s SERVICE_COUNT] -- WORKER [ARG]...
 *
 * builtin  fork()s N children; each blocks in accept(), echoes every byte
 *          of the connection until the client closes, and accepts again.
 *          No event loop, no status, no master: nothing cheaper serves the
 *          same per-connection behaviour.  (The kernel wakes one blocked
 *          accept() per connection.)
 * poll     the same children, but each waits in poll() on the listener and
 *          then accepts without blocking: every idle child wakes for every
 *          connection, so this mode shows what a thundering herd costs.
 * exec     posix_spawn()s N copies of a lib-master WORKER (for example
 *          corral-echo-worker) with the descriptors and environment a
 *          Dovecot 2.3 master gives (listener on fd 7, status pipe on fd 5,
 *          dead pipe on fd 6, GENERATION, CLIENT_LIMIT, SERVICE_COUNT), reads
 *          and discards the status records, and starts a new copy whenever
 *          one exits.  The same worker binary as under corrald and dovecot,
 *          with a "master" that does nothing else.  With -s 1 it is the bare
 *          spawn loop of one process per connection.
 *
 * Prints "ready" on stdout once the N processes are started.  SIGTERM or
 * SIGINT: the children are stopped (dead pipe closed for exec; SIGTERM for
 * the others), reaped, and rawpool exits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_BUILTIN, MODE_POLL, MODE_EXEC };

/* Where the exec mode keeps its own descriptors, clear of 0-7. */
#define HIGH_FD 100

static int move_high(int fd)
{
    int high = fcntl(fd, F_DUPFD_CLOEXEC, HIGH_FD);

    if (high < 0) {
        perror("rawpool: fcntl(F_DUPFD_CLOEXEC)");
        exit(1);
    }
    close(fd);
    return high;
}

static int open_listener(const char *address, unsigned port, int backlog, bool nonblocking)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    int one = 1;

    if (fd < 0 || inet_pton(AF_INET, address, &addr.sin_addr) != 1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, backlog) < 0) {
        perror("rawpool: listener");
        exit(1);
    }
    return fd;
}

/* ------------------------------------------------------------------ */
/* builtin and poll: forked children with a plain accept-echo loop.    */

static void echo_connection(int fd)
{
    char buffer[4096];

    for (;;) {
        ssize_t got = read(fd, buffer, sizeof(buffer));

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return;
        for (ssize_t sent = 0; sent < got;) {
            ssize_t written = send(fd, buffer + sent, (size_t)(got - sent), MSG_NOSIGNAL);

            if (written < 0 && errno == EINTR)
                continue;
            if (written <= 0)
                return;
            sent += written;
        }
    }
}

static _Noreturn void serve_forever(int listen_fd, enum mode mode)
{
    for (;;) {
        if (mode == MODE_POLL) {
            struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };

            if (poll(&pfd, 1, -1) < 0)
                continue;
        }
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                continue;
            _exit(1);
        }
        echo_connection(fd);
        close(fd);
    }
}

static pid_t fork_server(int listen_fd, enum mode mode)
{
    pid_t pid = fork();

    if (pid == 0) {
        sigset_t none;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        serve_forever(listen_fd, mode);
    }
    return pid;
}

/* ------------------------------------------------------------------ */
/* exec: a lib-master worker with a master that only restarts it.      */

struct exec_pool {
    char **argv;
    char **envp;
    int listen_fd;
    int status_read;
    int status_write;
    int dead_read;
    int dead_write;
    int devnull;
    posix_spawnattr_t attr;
};

static char **build_env(unsigned client_limit, unsigned service_count)
{
    char **env = calloc(16, sizeof(*env));
    int n = 0;
    const char *path = getenv("PATH");

    if (env == NULL)
        exit(1);
    if (path != NULL && asprintf(&env[n++], "PATH=%s", path) < 0)
        exit(1);
    env[n++] = strdup("GENERATION=1");
    env[n++] = strdup("SERVICE_NAME=raw");
    env[n++] = strdup("SOCKET_COUNT=1");
    env[n++] = strdup("SOCKET0_SETTINGS=raw");
    if (asprintf(&env[n++], "CLIENT_LIMIT=%u", client_limit) < 0)
        exit(1);
    if (service_count != 0 && asprintf(&env[n++], "SERVICE_COUNT=%u", service_count) < 0)
        exit(1);
    env[n] = NULL;
    return env;
}

static bool spawn_worker(struct exec_pool *pool)
{
    posix_spawn_file_actions_t actions;
    pid_t pid;
    int rc;

    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pool->devnull, 0);
    posix_spawn_file_actions_adddup2(&actions, pool->devnull, 3);
    posix_spawn_file_actions_adddup2(&actions, pool->devnull, 4);
    posix_spawn_file_actions_adddup2(&actions, pool->status_write, 5);
    posix_spawn_file_actions_adddup2(&actions, pool->dead_write, 6);
    posix_spawn_file_actions_adddup2(&actions, pool->listen_fd, 7);
    rc = posix_spawn(&pid, pool->argv[0], &actions, &pool->attr, pool->argv, pool->envp);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        fprintf(stderr, "rawpool: posix_spawn(%s): %s\n", pool->argv[0], strerror(rc));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "Usage: rawpool -p PORT -n N [-a ADDRESS] [-b BACKLOG] -m builtin|poll\n"
            "       rawpool -p PORT -n N [-a ADDRESS] [-b BACKLOG] -m exec [-l CLIENT_LIMIT]\n"
            "               [-s SERVICE_COUNT] -- WORKER [ARG]...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *address = "127.0.0.1";
    unsigned port = 0, count = 0, client_limit = 1, service_count = 0;
    int backlog = -1, c;
    enum mode mode = MODE_BUILTIN;
    unsigned long spawned = 0, records = 0;
    unsigned running = 0;
    bool stopping = false;

    while ((c = getopt(argc, argv, "a:p:n:b:m:l:s:")) != -1) {
        switch (c) {
        case 'a': address = optarg; break;
        case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'n': count = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'b': backlog = atoi(optarg); break;
        case 'l': client_limit = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': service_count = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'm':
            if (strcmp(optarg, "builtin") == 0)
                mode = MODE_BUILTIN;
            else if (strcmp(optarg, "poll") == 0)
                mode = MODE_POLL;
            else if (strcmp(optarg, "exec") == 0)
                mode = MODE_EXEC;
            else
                usage();
            break;
        default: usage();
        }
    }
    if (port == 0 || port > 65535 || count == 0 || count > 100000 || client_limit == 0 ||
        (mode == MODE_EXEC) != (optind < argc))
        usage();
    /* Dovecot's and corrald's default: process_limit x client_limit. */
    if (backlog < 0)
        backlog = (int)(count * client_limit) < 4 ? 4 : (int)(count * client_limit);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int signal_fd = move_high(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));

    struct exec_pool pool = { .argv = argv + optind };
    int listen_fd = move_high(open_listener(address, port, backlog, mode != MODE_BUILTIN));

    if (mode == MODE_EXEC) {
        int status[2], dead[2];
        sigset_t none;

        if (pipe2(status, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(dead, O_CLOEXEC) < 0) {
            perror("rawpool: pipe2");
            return 1;
        }
        pool.listen_fd = listen_fd;
        pool.status_read = move_high(status[0]);
        pool.status_write = move_high(status[1]);
        pool.dead_read = move_high(dead[0]);
        pool.dead_write = move_high(dead[1]);
        pool.devnull = move_high(open("/dev/null", O_RDWR | O_CLOEXEC));
        pool.envp = build_env(client_limit, service_count);
        sigemptyset(&none);
        posix_spawnattr_init(&pool.attr);
        posix_spawnattr_setsigmask(&pool.attr, &none);
        posix_spawnattr_setflags(&pool.attr, POSIX_SPAWN_SETSIGMASK);
    }
    for (unsigned i = 0; i < count; i++) {
        bool ok = mode == MODE_EXEC ? spawn_worker(&pool) : fork_server(listen_fd, mode) > 0;

        if (!ok)
            return 1;
        running++;
        spawned++;
    }
    printf("ready\n");
    fflush(stdout);

    struct timespec stop_started = { 0 };
    while (running > 0) {
        struct pollfd fds[2] = {
            { .fd = signal_fd, .events = POLLIN },
            { .fd = mode == MODE_EXEC ? pool.status_read : -1, .events = POLLIN },
        };

        if (poll(fds, 2, stopping ? 100 : -1) < 0 && errno != EINTR)
            break;
        if (fds[1].revents & POLLIN) {
            char buffer[12 * 512];
            ssize_t got;

            while ((got = read(pool.status_read, buffer, sizeof(buffer))) > 0)
                records += (unsigned long)got / 12;
        }
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo info;

            while (read(signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
                if ((info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) && !stopping) {
                    stopping = true;
                    clock_gettime(CLOCK_MONOTONIC, &stop_started);
                    if (mode == MODE_EXEC) {
                        /* The workers see the master go and leave. */
                        close(pool.dead_read);
                        close(pool.dead_write);
                    } else {
                        kill(0, SIGTERM);
                    }
                }
            }
            while (waitpid(-1, NULL, WNOHANG) > 0) {
                running--;
                if (!stopping && mode == MODE_EXEC && spawn_worker(&pool)) {
                    running++;
                    spawned++;
                }
            }
        }
        if (stopping) {
            struct timespec now;

            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - stop_started.tv_sec > 5)
                kill(0, SIGKILL);
        }
    }
    fprintf(stderr, "rawpool: %lu processes started, %lu status records read\n", spawned,
            records);
    return 0;
}
