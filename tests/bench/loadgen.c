/* SPDX-License-Identifier: MIT */
/*
 * loadgen - a bounded loopback TCP load generator (one thread, epoll).
 *
 *   loadgen -p PORT [-a 127.0.0.1] [-n 20000] [-c 20] [-m echo|first|eof]
 *           [-l LINE] [-t CONN_TIMEOUT_MS] [-T TIME_LIMIT_S] [-S SOURCES] [-j]
 *
 * Opens -n connections in all, at most -c at a time.  Each connection
 * sends LINE (default "ping\n") and then, by mode:
 *   echo   waits for the whole line to come back, then closes (default);
 *   first  waits for the first byte back, then closes;
 *   eof    half-closes after sending and waits for the echo and EOF.
 * A connection that fails is counted by cause and is not retried: refused
 * (ECONNREFUSED), reset (ECONNRESET, EPIPE), timeout (no answer within
 * -t ms), eof (the server closed before the echo was complete), addr
 * (EADDRNOTAVAIL: no local port left) and other.  After -T seconds the
 * run stops whatever is left; connections still open count as unfinished.
 *
 * Sources: the client binds to 127.0.0.1 .. 127.0.0.S in turn (with
 * IP_BIND_ADDRESS_NO_PORT), so that TIME_WAIT sockets of earlier
 * connections do not exhaust the local ports of one address.
 *
 * Prints one human line, or with -j one JSON object, on stdout.  Exit
 * status 0 if every connection succeeded, 1 otherwise, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { MODE_ECHO, MODE_FIRST, MODE_EOF };

enum failure {
    FAIL_REFUSED,
    FAIL_RESET,
    FAIL_TIMEOUT,
    FAIL_EOF,
    FAIL_ADDR,
    FAIL_OTHER,
    FAIL_KINDS,
};

static const char *const failure_names[FAIL_KINDS] = {
    "refused", "reset", "timeout", "eof", "addr", "other",
};

enum conn_state { CONN_FREE, CONN_CONNECTING, CONN_WAITING };

struct conn {
    int fd;
    enum conn_state state;
    uint64_t start_ns;
    size_t received;
};

struct options {
    const char *address;
    unsigned port;
    unsigned long total;
    unsigned concurrency;
    enum mode mode;
    const char *line;
    unsigned timeout_ms;
    double time_limit_s;
    unsigned sources;
    bool json;
};

struct run {
    struct options opt;
    size_t line_length;
    int epoll_fd;
    struct conn *conns;
    struct sockaddr_in target;
    unsigned long launched;
    unsigned long finished;
    unsigned long ok;
    unsigned long failures[FAIL_KINDS];
    unsigned active;
    uint32_t *latency_us; /* of each successful connection */
    unsigned next_source;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static enum failure classify(int error)
{
    switch (error) {
    case ECONNREFUSED: return FAIL_REFUSED;
    case ECONNRESET:
    case EPIPE: return FAIL_RESET;
    case ETIMEDOUT: return FAIL_TIMEOUT;
    case EADDRNOTAVAIL:
    case EADDRINUSE: return FAIL_ADDR;
    default: return FAIL_OTHER;
    }
}

static void conn_end(struct run *run, struct conn *conn)
{
    if (conn->fd >= 0)
        close(conn->fd); /* also removes it from the epoll set */
    conn->fd = -1;
    conn->state = CONN_FREE;
    run->active--;
    run->finished++;
}

static void conn_fail(struct run *run, struct conn *conn, enum failure why)
{
    run->failures[why]++;
    conn_end(run, conn);
}

static void conn_succeed(struct run *run, struct conn *conn)
{
    uint64_t elapsed_us = (now_ns() - conn->start_ns) / 1000u;

    run->latency_us[run->ok++] = elapsed_us > UINT32_MAX ? UINT32_MAX : (uint32_t)elapsed_us;
    conn_end(run, conn);
}

static void conn_send_line(struct run *run, struct conn *conn)
{
    ssize_t sent = send(conn->fd, run->opt.line, run->line_length, MSG_NOSIGNAL);
    struct epoll_event event = { .events = EPOLLIN, .data.ptr = conn };

    /* A line shorter than the socket buffer goes out whole or not at all. */
    if (sent != (ssize_t)run->line_length) {
        conn_fail(run, conn, sent < 0 ? classify(errno) : FAIL_OTHER);
        return;
    }
    if (run->opt.mode == MODE_EOF && shutdown(conn->fd, SHUT_WR) < 0) {
        conn_fail(run, conn, classify(errno));
        return;
    }
    conn->state = CONN_WAITING;
    if (epoll_ctl(run->epoll_fd, EPOLL_CTL_MOD, conn->fd, &event) < 0)
        conn_fail(run, conn, FAIL_OTHER);
}

static void conn_start(struct run *run, struct conn *conn)
{
    struct sockaddr_in source = { .sin_family = AF_INET };
    struct epoll_event event = { .events = EPOLLOUT, .data.ptr = conn };
    int one = 1;

    run->launched++;
    run->active++;
    conn->received = 0;
    conn->start_ns = now_ns();
    conn->state = CONN_CONNECTING;
    conn->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (conn->fd < 0) {
        conn_fail(run, conn, FAIL_OTHER);
        return;
    }
    if (run->opt.sources > 1) {
        source.sin_addr.s_addr = htonl(INADDR_LOOPBACK + run->next_source);
        run->next_source = (run->next_source + 1) % run->opt.sources;
        (void)setsockopt(conn->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(conn->fd, (struct sockaddr *)&source, sizeof(source)) < 0) {
            conn_fail(run, conn, classify(errno));
            return;
        }
    }
    if (connect(conn->fd, (struct sockaddr *)&run->target, sizeof(run->target)) < 0 &&
        errno != EINPROGRESS) {
        conn_fail(run, conn, classify(errno));
        return;
    }
    if (epoll_ctl(run->epoll_fd, EPOLL_CTL_ADD, conn->fd, &event) < 0)
        conn_fail(run, conn, FAIL_OTHER);
}

static void conn_writable(struct run *run, struct conn *conn)
{
    int error = 0;
    socklen_t length = sizeof(error);

    if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0)
        error = errno;
    if (error != 0) {
        conn_fail(run, conn, classify(error));
        return;
    }
    conn_send_line(run, conn);
}

static void conn_readable(struct run *run, struct conn *conn)
{
    char buffer[4096];

    for (;;) {
        ssize_t got = recv(conn->fd, buffer, sizeof(buffer), 0);

        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            conn_fail(run, conn, classify(errno));
            return;
        }
        if (got == 0) {
            if (run->opt.mode == MODE_EOF && conn->received >= run->line_length)
                conn_succeed(run, conn);
            else
                conn_fail(run, conn, FAIL_EOF);
            return;
        }
        conn->received += (size_t)got;
        if (run->opt.mode == MODE_FIRST ||
            (run->opt.mode == MODE_ECHO && conn->received >= run->line_length)) {
            conn_succeed(run, conn);
            return;
        }
    }
}

static void check_timeouts(struct run *run, uint64_t now)
{
    uint64_t limit_ns = (uint64_t)run->opt.timeout_ms * 1000000u;

    for (unsigned i = 0; i < run->opt.concurrency; i++) {
        struct conn *conn = &run->conns[i];

        if (conn->state != CONN_FREE && now - conn->start_ns > limit_ns)
            conn_fail(run, conn, FAIL_TIMEOUT);
    }
}

static void refill(struct run *run)
{
    for (unsigned i = 0; i < run->opt.concurrency && run->launched < run->opt.total; i++) {
        if (run->conns[i].state == CONN_FREE)
            conn_start(run, &run->conns[i]);
    }
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static double percentile_ms(const uint32_t *sorted, unsigned long count, double fraction)
{
    unsigned long index;

    if (count == 0)
        return 0.0;
    index = (unsigned long)(fraction * (double)(count - 1) + 0.5);
    return sorted[index] / 1000.0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: loadgen -p PORT [-a ADDRESS] [-n TOTAL] [-c CONCURRENCY]\n"
            "               [-m echo|first|eof] [-l LINE] [-t CONN_TIMEOUT_MS]\n"
            "               [-T TIME_LIMIT_S] [-S SOURCES] [-j]\n"
            "Defaults: 127.0.0.1, -n 20000, -c 20, -m echo, -l 'ping\\n', -t 10000,\n"
            "-T 60, -S 8 (client addresses 127.0.0.1 to 127.0.0.8).\n");
}

static bool parse_options(int argc, char **argv, struct options *opt)
{
    int c;

    *opt = (struct options){
        .address = "127.0.0.1",
        .total = 20000,
        .concurrency = 20,
        .mode = MODE_ECHO,
        .line = "ping\n",
        .timeout_ms = 10000,
        .time_limit_s = 60.0,
        .sources = 8,
    };
    while ((c = getopt(argc, argv, "a:p:n:c:m:l:t:T:S:jh")) != -1) {
        switch (c) {
        case 'a': opt->address = optarg; break;
        case 'p': opt->port = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'n': opt->total = strtoul(optarg, NULL, 10); break;
        case 'c': opt->concurrency = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'm':
            if (strcmp(optarg, "echo") == 0)
                opt->mode = MODE_ECHO;
            else if (strcmp(optarg, "first") == 0)
                opt->mode = MODE_FIRST;
            else if (strcmp(optarg, "eof") == 0)
                opt->mode = MODE_EOF;
            else
                return false;
            break;
        case 'l': opt->line = optarg; break;
        case 't': opt->timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'T': opt->time_limit_s = strtod(optarg, NULL); break;
        case 'S': opt->sources = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'j': opt->json = true; break;
        case 'h': usage(stdout); exit(0);
        default: return false;
        }
    }
    if (opt->port == 0 || opt->port > 65535 || opt->total == 0 || opt->total > 10000000 ||
        opt->concurrency == 0 || opt->concurrency > 65536 || opt->line[0] == '\0' ||
        opt->timeout_ms == 0 || !(opt->time_limit_s > 0) || opt->time_limit_s > 3600 ||
        opt->sources == 0 || opt->sources > 250)
        return false;
    if (opt->concurrency > opt->total)
        opt->concurrency = (unsigned)opt->total;
    return true;
}

int main(int argc, char **argv)
{
    struct run run = { .epoll_fd = -1 };
    struct epoll_event events[256];
    uint64_t start, deadline, last_scan, end;
    unsigned long unfinished;
    double elapsed;

    if (!parse_options(argc, argv, &run.opt)) {
        usage(stderr);
        return 2;
    }
    run.line_length = strlen(run.opt.line);
    run.target.sin_family = AF_INET;
    run.target.sin_port = htons((uint16_t)run.opt.port);
    if (inet_pton(AF_INET, run.opt.address, &run.target.sin_addr) != 1) {
        fprintf(stderr, "loadgen: not an IPv4 address: %s\n", run.opt.address);
        return 2;
    }
    run.conns = calloc(run.opt.concurrency, sizeof(*run.conns));
    run.latency_us = calloc(run.opt.total, sizeof(*run.latency_us));
    run.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (run.conns == NULL || run.latency_us == NULL || run.epoll_fd < 0) {
        perror("loadgen");
        return 2;
    }
    for (unsigned i = 0; i < run.opt.concurrency; i++)
        run.conns[i].fd = -1;

    start = last_scan = now_ns();
    deadline = start + (uint64_t)(run.opt.time_limit_s * 1e9);
    refill(&run);
    while (run.active > 0 || run.launched < run.opt.total) {
        int count = epoll_wait(run.epoll_fd, events, 256, run.active > 0 ? 50 : 0);
        uint64_t now;

        if (count < 0 && errno != EINTR) {
            perror("loadgen: epoll_wait");
            break;
        }
        for (int i = 0; i < count; i++) {
            struct conn *conn = events[i].data.ptr;

            /* An earlier event of this batch may have ended it. */
            if (conn->state == CONN_CONNECTING)
                conn_writable(&run, conn);
            else if (conn->state == CONN_WAITING)
                conn_readable(&run, conn);
        }
        now = now_ns();
        if (now >= deadline)
            break;
        if (now - last_scan > 50000000u) {
            check_timeouts(&run, now);
            last_scan = now;
        }
        refill(&run);
    }
    end = now_ns();
    unfinished = run.opt.total - run.finished;
    for (unsigned i = 0; i < run.opt.concurrency; i++) {
        if (run.conns[i].fd >= 0)
            close(run.conns[i].fd);
    }

    elapsed = (double)(end - start) / 1e9;
    qsort(run.latency_us, run.ok, sizeof(*run.latency_us), compare_u32);
    unsigned long failed = 0;
    for (int k = 0; k < FAIL_KINDS; k++)
        failed += run.failures[k];
    double rate = elapsed > 0 ? (double)run.ok / elapsed : 0.0;
    double p50 = percentile_ms(run.latency_us, run.ok, 0.50);
    double p99 = percentile_ms(run.latency_us, run.ok, 0.99);
    double max = run.ok > 0 ? run.latency_us[run.ok - 1] / 1000.0 : 0.0;

    if (run.opt.json) {
        printf("{\"total\": %lu, \"concurrency\": %u, \"ok\": %lu, \"failed\": %lu, "
               "\"unfinished\": %lu, \"elapsed_s\": %.6f, \"rate\": %.1f, \"p50_ms\": %.3f, "
               "\"p99_ms\": %.3f, \"max_ms\": %.3f, \"failures\": {",
               run.opt.total, run.opt.concurrency, run.ok, failed, unfinished, elapsed, rate,
               p50, p99, max);
        for (int k = 0; k < FAIL_KINDS; k++)
            printf("%s\"%s\": %lu", k > 0 ? ", " : "", failure_names[k], run.failures[k]);
        printf("}}\n");
    } else {
        printf("%lu connections at concurrency %u: %lu ok, %lu failed (", run.opt.total,
               run.opt.concurrency, run.ok, failed);
        for (int k = 0; k < FAIL_KINDS; k++)
            printf("%s%s %lu", k > 0 ? ", " : "", failure_names[k], run.failures[k]);
        printf("), %lu unfinished\n%.3f s, %.1f connections/s, latency p50 %.3f ms, "
               "p99 %.3f ms, max %.3f ms\n",
               unfinished, elapsed, rate, p50, p99, max);
    }
    free(run.latency_us);
    free(run.conns);
    close(run.epoll_fd);
    return failed == 0 && unfinished == 0 ? 0 : 1;
}
