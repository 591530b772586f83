/* SPDX-License-Identifier: MIT */
/*
 * spawnloop - the bare limit of "one process per connection": accept a
 * connection, posix_spawn PROGRAM with it on stdin and stdout (the inetd
 * convention that xinetd and tcpserver follow), close it, reap children
 * with waitpid(-1, WNOHANG).  No configuration, logging or limits other
 * than -c children at once (accepting pauses while that many run).
 *
 *   spawnloop -p PORT [-a 127.0.0.1] [-c 100] [-b BACKLOG] -- PROGRAM [ARG]...
 *
 * Prints "ready" on stdout once listening.  SIGTERM or SIGINT: stop
 * accepting, wait for the children, exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int open_listener(const char *address, unsigned port, int backlog)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0 || inet_pton(AF_INET, address, &addr.sin_addr) != 1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, backlog) < 0) {
        perror("spawnloop: listener");
        exit(1);
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *address = "127.0.0.1";
    unsigned port = 0, max_children = 100, children = 0;
    int backlog = 128, c;
    unsigned long spawned = 0, spawn_failures = 0;
    bool stopping = false;

    while ((c = getopt(argc, argv, "a:p:c:b:")) != -1) {
        switch (c) {
        case 'a': address = optarg; break;
        case 'p': port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'c': max_children = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'b': backlog = atoi(optarg); break;
        default: goto usage;
        }
    }
    if (port == 0 || port > 65535 || max_children == 0 || optind >= argc)
        goto usage;
    char **program = argv + optind;

    sigset_t mask, empty;
    sigemptyset(&mask);
    sigemptyset(&empty);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    int listen_fd = open_listener(address, port, backlog);

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);

    printf("ready\n");
    fflush(stdout);
    while (!stopping || children > 0) {
        struct pollfd fds[2] = {
            { .fd = signal_fd, .events = POLLIN },
            { .fd = !stopping && children < max_children ? listen_fd : -1, .events = POLLIN },
        };

        if (poll(fds, 2, -1) < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN) {
            struct signalfd_siginfo info;

            while (read(signal_fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
                if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT)
                    stopping = true;
            }
            while (waitpid(-1, NULL, WNOHANG) > 0)
                children--;
        }
        while (fds[1].revents & POLLIN && !stopping && children < max_children) {
            int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
            posix_spawn_file_actions_t actions;
            pid_t pid;

            if (fd < 0)
                break; /* EAGAIN, or a client that already left */
            posix_spawn_file_actions_init(&actions);
            posix_spawn_file_actions_adddup2(&actions, fd, STDIN_FILENO);
            posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
            if (posix_spawn(&pid, program[0], &actions, &attr, program, environ) == 0) {
                children++;
                spawned++;
            } else {
                spawn_failures++;
            }
            posix_spawn_file_actions_destroy(&actions);
            close(fd);
        }
    }
    fprintf(stderr, "spawnloop: %lu spawned, %lu failed\n", spawned, spawn_failures);
    return 0;

usage:
    fprintf(stderr, "Usage: spawnloop -p PORT [-a ADDRESS] [-c MAX_CHILDREN] [-b BACKLOG] "
                    "-- PROGRAM [ARG]...\n");
    return 2;
}
