/* SPDX-License-Identifier: MIT */
/*
 * status-flood - a lib-master child that sends status records on demand,
 * to measure what one record costs its master (corrald or dovecot).
 *
 *   status-flood COUNT busy|count [paced|burst]
 *
 * It sends its first status (CLIENT_LIMIT free), then waits on its
 * listener (fd 7).  For every connection it accepts, it writes COUNT more
 * records, alternating between a lower count and CLIENT_LIMIT, and ends at
 * CLIENT_LIMIT:
 *   busy   0, CLIENT_LIMIT, 0, ...  the records of a client_limit=1
 *          process taking and finishing clients (the master's "no process
 *          available" bookkeeping runs on each);
 *   count  CLIENT_LIMIT-1, CLIENT_LIMIT, ...  (needs CLIENT_LIMIT >= 2).
 * paced (default) waits until the master has read each record before the
 * next, so that every record costs the master one wakeup; burst writes as
 * fast as the pipe takes them.  Once the master has read the last one it
 * writes "done\n" to the client and closes it.  It exits when the master
 * closes the dead pipe (fd 6).
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define STATUS_FD 5
#define DEAD_FD 6
#define LISTEN_FD 7

struct status_record {
    int32_t pid;
    uint32_t generation;
    uint32_t available_count;
};

static uint32_t env_uint(const char *name)
{
    const char *value = getenv(name);
    return value != NULL ? (uint32_t)strtoul(value, NULL, 10) : 0;
}

static void wait_drained(void)
{
    for (;;) {
        int queued = 0;

        if (ioctl(STATUS_FD, FIONREAD, &queued) < 0 || queued == 0)
            return;
        sched_yield();
    }
}

static void send_record(const struct status_record *record)
{
    for (;;) {
        ssize_t written = write(STATUS_FD, record, sizeof(*record));

        if (written == (ssize_t)sizeof(*record))
            return;
        if (written < 0 && (errno == EINTR || errno == EAGAIN)) {
            struct pollfd out = { .fd = STATUS_FD, .events = POLLOUT };
            (void)poll(&out, 1, 100);
            continue;
        }
        _exit(90);
    }
}

int main(int argc, char **argv)
{
    unsigned long count = argc > 2 ? strtoul(argv[1], NULL, 10) : 0;
    int busy = argc > 2 && strcmp(argv[2], "busy") == 0;
    int paced = argc <= 3 || strcmp(argv[3], "burst") != 0;
    uint32_t limit = env_uint("CLIENT_LIMIT");
    struct status_record record = { (int32_t)getpid(), env_uint("GENERATION"), limit };

    if (count == 0 || limit == 0 || (!busy && limit < 2)) {
        fprintf(stderr, "usage: status-flood COUNT busy|count [paced|burst] "
                        "(under a master; count needs CLIENT_LIMIT >= 2)\n");
        return 2;
    }
    send_record(&record);
    for (;;) {
        struct pollfd fds[2] = {
            { .fd = DEAD_FD, .events = 0 },
            { .fd = LISTEN_FD, .events = POLLIN },
        };

        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL))
            return 0;
        if (!(fds[1].revents & POLLIN))
            continue;
        int client = accept(LISTEN_FD, NULL, NULL);
        if (client < 0)
            continue;
        for (unsigned long i = 0; i < count; i++) {
            record.available_count = (i % 2 == 0) ? (busy ? 0 : limit - 1) : limit;
            if (i + 1 == count)
                record.available_count = limit;
            if (paced)
                wait_drained();
            send_record(&record);
        }
        wait_drained();
        (void)send(client, "done\n", 5, MSG_NOSIGNAL);
        close(client);
    }
}
