/* SPDX-License-Identifier: MIT */
#include "socket-activation.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* sd_listen_fds(3): passed descriptors start here. */
#define LISTEN_FDS_START 3

typedef struct passed_socket {
    int fd;            /* -1 once taken or closed */
    char *name;        /* from LISTEN_FDNAMES, or "fd N" */
    struct sockaddr_storage addr;
    socklen_t addr_len;
} passed_socket;

static GArray *passed; /* passed_socket, in fd order; NULL when none */

static void passed_socket_clear(gpointer data)
{
    passed_socket *socket_info = data;

    g_free(socket_info->name);
}

/* A listening stream socket, or false with a warning. */
static bool usable(int fd, const char *name)
{
    int type = 0, listening = 0;
    socklen_t len = sizeof(type);

    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
        log_warning("LISTEN_FDS: %s (fd %d) is not a socket: %s", name, fd, g_strerror(errno));
        return false;
    }
    len = sizeof(listening);
    if (type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
        log_warning("LISTEN_FDS: %s (fd %d) is not a listening stream socket", name, fd);
        return false;
    }
    return true;
}

void corral_socket_activation_init(void)
{
    const char *pid_text = getenv("LISTEN_PID");
    const char *count_text = getenv("LISTEN_FDS");
    const char *names_text = getenv("LISTEN_FDNAMES");
    char **names = names_text != NULL ? g_strsplit(names_text, ":", -1) : NULL;
    guint64 pid = 0, count = 0;

    if (pid_text == NULL || count_text == NULL)
        goto done;
    /* Sockets meant for another process are none of our business. */
    if (!g_ascii_string_to_unsigned(pid_text, 10, 1, G_MAXINT, &pid, NULL) ||
        (pid_t)pid != getpid())
        goto done;
    if (!g_ascii_string_to_unsigned(count_text, 10, 0, 4096, &count, NULL)) {
        log_warning("LISTEN_FDS=%s is not a count of descriptors; ignoring it", count_text);
        goto done;
    }
    passed = g_array_new(FALSE, TRUE, sizeof(passed_socket));
    g_array_set_clear_func(passed, passed_socket_clear);
    for (int i = 0; i < (int)count; i++) {
        passed_socket socket_info = { .fd = LISTEN_FDS_START + i };
        bool named = names != NULL && i < (int)g_strv_length(names) && *names[i] != '\0';

        socket_info.name = named ? g_strdup_printf("'%s'", names[i])
                                 : g_strdup_printf("socket %d", i + 1);
        /* Workers get listeners only through the fd map. */
        (void)fcntl(socket_info.fd, F_SETFD, FD_CLOEXEC);
        socket_info.addr_len = sizeof(socket_info.addr);
        if (!usable(socket_info.fd, socket_info.name) ||
            getsockname(socket_info.fd, (struct sockaddr *)&socket_info.addr,
                        &socket_info.addr_len) < 0) {
            close(socket_info.fd);
            socket_info.fd = -1;
        }
        g_array_append_val(passed, socket_info);
    }
done:
    g_strfreev(names);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
}

/* "127.0.0.1:7070", "[::1]:7070" or the path, for messages. */
static char *describe_config(const corral_listener_config *config)
{
    if (config->kind == CORRAL_LISTENER_UNIX)
        return g_strdup(config->path);
    return strchr(config->address, ':') != NULL
               ? g_strdup_printf("[%s]:%u", config->address, config->port)
               : g_strdup_printf("%s:%u", config->address, config->port);
}

static char *describe_socket(const passed_socket *socket_info)
{
    const struct sockaddr_storage *addr = &socket_info->addr;
    char host[INET6_ADDRSTRLEN] = "?";

    switch (addr->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        return g_strdup_printf("%s:%u", host, ntohs(in4->sin_port));
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        return g_strdup_printf("[%s]:%u", host, ntohs(in6->sin6_port));
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
        size_t max = socket_info->addr_len > offsetof(struct sockaddr_un, sun_path)
                         ? socket_info->addr_len - offsetof(struct sockaddr_un, sun_path)
                         : 0;
        return max > 0 && un->sun_path[0] != '\0' ? g_strndup(un->sun_path, max)
                                                   : g_strdup("an unnamed unix socket");
    }
    default:
        return g_strdup_printf("address family %d", addr->ss_family);
    }
}

static bool same_inet_address(const corral_listener_config *config,
                              const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)addr;
        struct in_addr want;

        if (strcmp(config->address, "*") == 0)
            want.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, config->address, &want) != 1)
            return false;
        return ntohs(in4->sin_port) == config->port && in4->sin_addr.s_addr == want.s_addr;
    }
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        struct in6_addr want;

        if (inet_pton(AF_INET6, config->address, &want) != 1)
            return false;
        return ntohs(in6->sin6_port) == config->port &&
               memcmp(&in6->sin6_addr, &want, sizeof(want)) == 0;
    }
    return false;
}

static bool same_address(const corral_listener_config *config, const passed_socket *socket_info)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)&socket_info->addr;
    size_t path_len;

    if (config->kind == CORRAL_LISTENER_INET)
        return same_inet_address(config, &socket_info->addr);
    if (socket_info->addr.ss_family != AF_UNIX ||
        socket_info->addr_len <= offsetof(struct sockaddr_un, sun_path))
        return false;
    path_len = strnlen(un->sun_path, socket_info->addr_len - offsetof(struct sockaddr_un, sun_path));
    return strlen(config->path) == path_len && memcmp(un->sun_path, config->path, path_len) == 0;
}

int corral_socket_activation_take(const corral_listener_config *config)
{
    for (guint i = 0; passed != NULL && i < passed->len; i++) {
        passed_socket *socket_info = &g_array_index(passed, passed_socket, i);
        int fd = socket_info->fd;
        char *label;

        if (fd < 0 || !same_address(config, socket_info))
            continue;
        /* Like the sockets corrald opens itself: the master only ever
         * accepts to drop, and must never block doing so. */
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        socket_info->fd = -1;
        label = describe_config(config);
        log_info("listener %s: using %s passed by the service manager (fd %d)", label,
                 socket_info->name, fd);
        g_free(label);
        return fd;
    }
    return -1;
}

void corral_socket_activation_close_unused(void)
{
    for (guint i = 0; passed != NULL && i < passed->len; i++) {
        passed_socket *socket_info = &g_array_index(passed, passed_socket, i);
        char *address;

        if (socket_info->fd < 0)
            continue;
        address = describe_socket(socket_info);
        log_warning("LISTEN_FDS: %s (fd %d, %s) matches no configured listener's address; "
                    "closing it", socket_info->name, socket_info->fd, address);
        g_free(address);
        close(socket_info->fd);
    }
    if (passed != NULL)
        g_array_unref(passed);
    passed = NULL;
}
