/* SPDX-License-Identifier: MIT */
/*
 * setup.c - turns the environment, the arguments and the inherited
 * descriptors into a worker's settings and listeners, or into one clear
 * error message.  Nothing here touches signals or the event loop.
 */
#include "worker-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The marker byte of Dovecot's tab escaping in SOCKET<n>_SETTINGS. */
#define CW_ESCAPE '\001'
#define CW_LISTEN_BACKLOG 128

void cw_error(char **error, const char *fmt, ...)
{
    va_list args;

    if (error == NULL)
        return;
    va_start(args, fmt);
    if (vasprintf(error, fmt, args) < 0)
        *error = NULL;
    va_end(args);
}

/* Decimal digits only: no sign, no blanks, nothing after. */
static bool parse_uint(const char *text, unsigned *value)
{
    unsigned long long result = 0;

    if (*text == '\0')
        return false;
    for (; *text != '\0'; text++) {
        if (*text < '0' || *text > '9')
            return false;
        result = result * 10 + (unsigned)(*text - '0');
        if (result > UINT_MAX)
            return false;
    }
    *value = (unsigned)result;
    return true;
}

/* Reads an optional numeric variable; false with *error if malformed. */
static bool env_uint(const char *name, unsigned *value, bool *present, char **error)
{
    const char *text = getenv(name);

    *present = text != NULL;
    if (text == NULL)
        return true;
    if (!parse_uint(text, value)) {
        cw_error(error, "Invalid %s: '%s' is not a number", name, text);
        return false;
    }
    return true;
}

/* Undoes Dovecot's tab escaping in place: \001 followed by 1, t, r or n
 * stands for \001, TAB, CR or LF. */
static void unescape_name(char *name)
{
    char *out = name;

    for (const char *in = name; *in != '\0'; in++) {
        if (*in != CW_ESCAPE || in[1] == '\0') {
            *out++ = *in;
            continue;
        }
        in++;
        switch (*in) {
        case '1': *out++ = CW_ESCAPE; break;
        case 't': *out++ = '\t'; break;
        case 'r': *out++ = '\r'; break;
        case 'n': *out++ = '\n'; break;
        default: *out++ = *in; break;
        }
    }
    *out = '\0';
}

/* SOCKET<n>_SETTINGS: the escaped name, then "ssl" and/or "haproxy",
 * separated by tabs.  Unknown words are ignored, as newer masters may
 * add some. */
static bool parse_listener_settings(struct cw_listener *listener, const char *settings,
                                    char **error)
{
    char *copy = strdup(settings != NULL ? settings : "");
    if (copy == NULL) {
        cw_error(error, "Out of memory");
        return false;
    }

    char *word_end = strchr(copy, '\t');
    char *word = word_end != NULL ? word_end + 1 : NULL;

    if (word_end != NULL)
        *word_end = '\0';
    unescape_name(copy);
    listener->info.name = copy;
    while (word != NULL) {
        word_end = strchr(word, '\t');
        if (word_end != NULL)
            *word_end++ = '\0';
        if (strcmp(word, "ssl") == 0)
            listener->info.ssl = true;
        else if (strcmp(word, "haproxy") == 0)
            listener->info.haproxy = true;
        word = word_end;
    }
    return true;
}

static bool check_listener_fd(int fd, unsigned index, unsigned count, char **error)
{
    int accepting = 0;
    socklen_t length = sizeof(accepting);
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0) {
        cw_error(error, "fd %d (listener %u of SOCKET_COUNT=%u) is not open", fd, index, count);
        return false;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) < 0) {
        cw_error(error, "fd %d (listener %u) is not a socket: only stream listeners are "
                 "supported", fd, index);
        return false;
    }
    if (!accepting) {
        cw_error(error, "fd %d (listener %u) is not a listening socket", fd, index);
        return false;
    }
    /* Masters pass listeners non-blocking already; without it, losing an
     * accept race to another worker would block this one. */
    if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        cw_error(error, "fcntl(fd %d, O_NONBLOCK) failed: %s", fd, strerror(errno));
        return false;
    }
    return true;
}

static bool setup_master_listeners(corral_worker *worker, char **error)
{
    unsigned count = 1;
    bool present;

    if (!env_uint("SOCKET_COUNT", &count, &present, error))
        return false;
    /* Checking the fds first also bounds the allocation below. */
    for (unsigned i = 0; i < count; i++) {
        if (i > (unsigned)(INT_MAX - CW_FIRST_LISTENER_FD) ||
            !check_listener_fd(CW_FIRST_LISTENER_FD + (int)i, i, count, error))
            return false;
    }
    worker->listeners = calloc(count > 0 ? count : 1, sizeof(*worker->listeners));
    if (worker->listeners == NULL) {
        cw_error(error, "Out of memory");
        return false;
    }
    for (unsigned i = 0; i < count; i++) {
        struct cw_listener *listener = &worker->listeners[i];
        char variable[32];

        listener->info.index = i;
        listener->fd = CW_FIRST_LISTENER_FD + (int)i;
        worker->listener_count++;
        snprintf(variable, sizeof(variable), "SOCKET%u_SETTINGS", i);
        if (!parse_listener_settings(listener, getenv(variable), error))
            return false;
    }
    return true;
}

/* Opens a listening socket on "ADDRESS:PORT", "[IPV6]:PORT" or "*:PORT". */
static int open_listen_address(const char *address, char **error)
{
    char host[256];
    const char *port = strrchr(address, ':');
    size_t host_length = port != NULL ? (size_t)(port - address) : 0;

    if (port == NULL || port[1] == '\0' || host_length >= sizeof(host)) {
        cw_error(error, "Invalid listen address '%s': expected ADDRESS:PORT", address);
        return -1;
    }
    port++;
    memcpy(host, address, host_length);
    host[host_length] = '\0';
    if (host_length >= 2 && host[0] == '[' && host[host_length - 1] == ']') {
        memmove(host, host + 1, host_length - 2);
        host[host_length - 2] = '\0';
    }

    /* "*" is IPv4's any address; "[::]" also covers IPv4 where the
     * system maps it. */
    bool any = host[0] == '\0' || strcmp(host, "*") == 0;
    struct addrinfo hints = {
        .ai_family = any ? AF_INET : AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV,
    };
    struct addrinfo *found;
    int ret = getaddrinfo(any ? NULL : host, port, &hints, &found);

    if (ret != 0) {
        cw_error(error, "Invalid listen address '%s': %s", address, gai_strerror(ret));
        return -1;
    }

    int fd = socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int reuse = 1;

    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) < 0 ||
        bind(fd, found->ai_addr, found->ai_addrlen) < 0 || listen(fd, CW_LISTEN_BACKLOG) < 0) {
        cw_error(error, "Cannot listen on %s: %s", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(found);
    return fd;
}

static void log_listening(int fd, const char *address)
{
    struct sockaddr_storage bound;
    socklen_t length = sizeof(bound);
    char host[NI_MAXHOST], port[NI_MAXSERV];

    /* Shows the real port when the address asked for port 0. */
    if (getsockname(fd, (struct sockaddr *)&bound, &length) < 0 ||
        getnameinfo((struct sockaddr *)&bound, length, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        corral_worker_log_info("Listening on %s", address);
        return;
    }
    bool ipv6 = strchr(host, ':') != NULL;

    corral_worker_log_info("Listening on %s%s%s:%s", ipv6 ? "[" : "", host, ipv6 ? "]" : "",
                           port);
}

static bool add_standalone_listener(corral_worker *worker, const char *address, char **error)
{
    struct cw_listener *grown = realloc(worker->listeners,
                                        (worker->listener_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        cw_error(error, "Out of memory");
        return false;
    }
    worker->listeners = grown;

    struct cw_listener *listener = &grown[worker->listener_count];
    *listener = (struct cw_listener){ .info.index = worker->listener_count, .fd = -1 };
    listener->info.name = strdup(address);
    if (listener->info.name == NULL) {
        cw_error(error, "Out of memory");
        return false;
    }
    worker->listener_count++;
    listener->fd = open_listen_address(address, error);
    if (listener->fd < 0)
        return false;
    log_listening(listener->fd, address);
    return true;
}

/* --listen ADDRESS, --listen=ADDRESS (repeatable); then CORRAL_LISTEN. */
static bool parse_arguments(corral_worker *worker, int argc, char *const argv[], char **error)
{
    static const char option[] = "--listen";
    const size_t option_length = sizeof(option) - 1;

    for (int i = 1; i < argc; i++) {
        const char *address;

        if (strcmp(argv[i], option) == 0 && i + 1 < argc)
            address = argv[++i];
        else if (strncmp(argv[i], option, option_length) == 0 && argv[i][option_length] == '=')
            address = argv[i] + option_length + 1;
        else if (strcmp(argv[i], option) == 0) {
            cw_error(error, "--listen needs an ADDRESS:PORT");
            return false;
        } else {
            cw_error(error, "Unknown argument: %s", argv[i]);
            return false;
        }
        if (!worker->settings.standalone) {
            cw_error(error, "--listen is for standalone use: a master passes the listeners");
            return false;
        }
        if (!add_standalone_listener(worker, address, error))
            return false;
    }

    const char *from_env = getenv("CORRAL_LISTEN");
    if (from_env == NULL)
        return true;
    if (!worker->settings.standalone) {
        cw_error(error, "CORRAL_LISTEN is for standalone use: a master passes the listeners");
        return false;
    }

    char *addresses = strdup(from_env);
    char *saveptr = NULL;
    bool ok = addresses != NULL;

    if (!ok)
        cw_error(error, "Out of memory");
    for (char *address = ok ? strtok_r(addresses, ", ", &saveptr) : NULL;
         ok && address != NULL; address = strtok_r(NULL, ", ", &saveptr))
        ok = add_standalone_listener(worker, address, error);
    free(addresses);
    return ok;
}

/* Started the inetd way (xinetd, tcpserver, systemd Accept=yes): stdin is
 * a connected stream socket.  The client moves to a descriptor of its own
 * and every standard descriptor that holds it goes to /dev/null, so that
 * closing the client really closes the connection.  False without an error when stdin is something
 * else. */
static bool take_inetd_client(corral_worker *worker, char **error)
{
    struct stat in_stat, out_stat;
    int type = 0, listening = 1;
    socklen_t length = sizeof(type);

    if (fstat(STDIN_FILENO, &in_stat) < 0 || !S_ISSOCK(in_stat.st_mode) ||
        getsockopt(STDIN_FILENO, SOL_SOCKET, SO_TYPE, &type, &length) < 0 ||
        type != SOCK_STREAM)
        return false;
    length = sizeof(listening);
    if (getsockopt(STDIN_FILENO, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) < 0 ||
        listening)
        return false;

    int fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    int flags = fd < 0 ? -1 : fcntl(fd, F_GETFL);

    if (fd < 0 || null_fd < 0 || flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        cw_error(error, "Cannot take the client on stdin: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        if (null_fd >= 0)
            close(null_fd);
        return false;
    }
    /* xinetd also puts the client on stderr: log lines must not reach it. */
    dup2(null_fd, STDIN_FILENO);
    for (int std_fd = STDOUT_FILENO; std_fd <= STDERR_FILENO; std_fd++) {
        if (fstat(std_fd, &out_stat) == 0 && out_stat.st_dev == in_stat.st_dev &&
            out_stat.st_ino == in_stat.st_ino)
            dup2(null_fd, std_fd);
    }
    close(null_fd);
    worker->inetd_fd = fd;
    worker->settings.inetd = true;
    return true;
}

/* The master's descriptors other than the listeners. */
static bool check_master_fds(corral_worker *worker, char **error)
{
    struct stat status_stat;

    if (fstat(CW_STATUS_FD, &status_stat) < 0 || !S_ISFIFO(status_stat.st_mode)) {
        cw_error(error, "fd %d is not a FIFO: a worker must be started by a master process "
                 "(corrald or dovecot)", CW_STATUS_FD);
        return false;
    }
    /* Status writes must never block the loop; masters set this already
     * on the pipe they share between their workers. */
    int flags = fcntl(CW_STATUS_FD, F_GETFL);
    if (flags < 0 || (!(flags & O_NONBLOCK) &&
                      fcntl(CW_STATUS_FD, F_SETFL, flags | O_NONBLOCK) < 0)) {
        cw_error(error, "fcntl(fd %d, O_NONBLOCK) failed: %s", CW_STATUS_FD, strerror(errno));
        return false;
    }
    if (fcntl(CW_DEAD_FD, F_GETFD) < 0) {
        cw_error(error, "fd %d (the master's dead pipe) is not open", CW_DEAD_FD);
        return false;
    }
    if ((worker->flags & CORRAL_WORKER_LOGIN) &&
        lseek(CW_LOGIN_NOTIFY_FD, 0, SEEK_CUR) < 0) {
        cw_error(error, "fd %d (login notify) is not usable: %s; is the service type=login?",
                 CW_LOGIN_NOTIFY_FD, strerror(errno));
        return false;
    }
    return true;
}

static bool setup_counts(corral_worker *worker, char **error)
{
    corral_worker_settings *settings = &worker->settings;
    unsigned client_limit = 1, service_count = 1;
    bool present;

    if (!env_uint("CLIENT_LIMIT", &client_limit, &present, error))
        return false;
    if (!settings->standalone && (!present || client_limit == 0)) {
        cw_error(error, "CLIENT_LIMIT missing");
        return false;
    }
    if (client_limit == 0)
        client_limit = 1;
    /* UINT_MAX is the "unlimited" mark of the service count left. */
    if (client_limit == UINT_MAX)
        client_limit--;
    if (!env_uint("SERVICE_COUNT", &service_count, &present, error))
        return false;
    if (!present && !settings->standalone)
        service_count = 0;

    /* Serving more at once than in all would leave slots never used. */
    if (service_count != 0 && client_limit > service_count)
        client_limit = service_count;
    settings->client_limit = client_limit;
    settings->service_count = service_count;
    worker->total_available = client_limit;
    worker->available = client_limit;
    worker->service_count_left = service_count != 0 ? service_count : UINT_MAX;

    return env_uint("PROCESS_LIMIT", &settings->process_limit, &present, error) &&
           env_uint("PROCESS_MIN_AVAIL", &settings->process_min_avail, &present, error) &&
           env_uint("IDLE_KILL", &settings->idle_kill_secs, &present, error);
}

bool cw_setup(corral_worker *worker, int argc, char *const argv[], char **error)
{
    corral_worker_settings *settings = &worker->settings;
    const char *generation = getenv("GENERATION");

    unsigned generation_number = 0;

    settings->standalone = generation == NULL;
    if (generation != NULL && !parse_uint(generation, &generation_number)) {
        cw_error(error, "Invalid GENERATION: '%s' is not a number", generation);
        return false;
    }
    settings->generation = generation_number;
    if (!setup_counts(worker, error))
        return false;
    if (settings->standalone) {
        if (!parse_arguments(worker, argc, argv, error))
            return false;
        if (worker->listener_count == 0 && !take_inetd_client(worker, error)) {
            if (error == NULL || *error == NULL)
                cw_error(error, "Nothing to listen on: GENERATION is not set, so no master "
                         "passed listeners; give --listen ADDRESS:PORT or CORRAL_LISTEN, or "
                         "start it from inetd with the client on stdin");
            return false;
        }
        return true;
    }
    return parse_arguments(worker, argc, argv, error) && check_master_fds(worker, error) &&
           setup_master_listeners(worker, error);
}
