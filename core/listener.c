/* SPDX-License-Identifier: MIT */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "socket-activation.h"

static bool fill_inet_address(const corral_listener_config *config,
                              struct sockaddr_storage *addr, socklen_t *len)
{
    struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
    const char *host = config->address;

    memset(addr, 0, sizeof(*addr));
    if (strcmp(host, "*") == 0 || inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        if (strcmp(host, "*") == 0)
            in4->sin_addr.s_addr = htonl(INADDR_ANY);
        in4->sin_family = AF_INET;
        in4->sin_port = htons(config->port);
        *len = sizeof(*in4);
        return true;
    }
    if (strcmp(host, "::") == 0 || inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(config->port);
        *len = sizeof(*in6);
        return true;
    }
    return false;
}

static int open_inet(const corral_listener_config *config, const char *label, int backlog,
                     GError **error)
{
    struct sockaddr_storage addr;
    socklen_t len;
    int fd, on = 1;

    if (!fill_inet_address(config, &addr, &len)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "listener %s: not a numeric address", label);
        return -1;
    }
    fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    /* "[::]" must not also claim IPv4, so that "*" can be listed beside it. */
    if (addr.ss_family == AF_INET6)
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    if (bind(fd, (struct sockaddr *)&addr, len) < 0 || listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "listener %s: %s", label,
                g_strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/* A path that accepts connections belongs to a running program; one that
 * refuses them is a leftover from a master that died. */
static bool unix_socket_is_live(const struct sockaddr_un *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live;

    if (fd < 0)
        return false;
    live = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
    close(fd);
    return live;
}

static bool chown_unix_socket(const corral_listener_config *config, const char *path,
                              GError **error)
{
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;

    if (geteuid() != 0 || (config->user == NULL && config->group == NULL))
        return true;
    if (config->user != NULL) {
        struct passwd *pw = getpwnam(config->user);
        if (pw == NULL) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "listener %s: unknown user '%s'", path, config->user);
            return false;
        }
        uid = pw->pw_uid;
    }
    if (config->group != NULL) {
        struct group *gr = getgrnam(config->group);
        if (gr == NULL) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "listener %s: unknown group '%s'", path, config->group);
            return false;
        }
        gid = gr->gr_gid;
    }
    if (chown(path, uid, gid) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "listener %s: chown() failed: %s", path, g_strerror(errno));
        return false;
    }
    return true;
}

static int open_unix(const corral_listener_config *config, const char *path, int backlog,
                     GError **error)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    mode_t old_umask;
    bool bound;
    int fd, saved_errno;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "listener %s: path too long for a unix socket", path);
        return -1;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;

    old_umask = umask(0777 & ~config->mode);
    bound = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    if (!bound && errno == EADDRINUSE && !unix_socket_is_live(&addr)) {
        (void)unlink(path);
        bound = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    }
    saved_errno = errno;
    umask(old_umask);
    if (!bound) {
        if (saved_errno == EADDRINUSE) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "listener %s: another process is listening there", path);
            close(fd);
            return -1;
        }
        errno = saved_errno;
        goto fail;
    }
    if (listen(fd, backlog) < 0)
        goto fail;
    if (!chown_unix_socket(config, path, error)) {
        close(fd);
        (void)unlink(path);
        return -1;
    }
    return fd;
fail:
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "listener %s: %s",
                path, g_strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

corral_listener *corral_listener_open(const corral_listener_config *config, int backlog,
                                      GError **error)
{
    corral_listener *listener = g_new0(corral_listener, 1);
    int passed = corral_socket_activation_take(config);

    listener->config = config;
    if (config->kind == CORRAL_LISTENER_UNIX) {
        listener->label = g_strdup(config->path);
        listener->fd = passed >= 0 ? passed : open_unix(config, config->path, backlog, error);
    } else {
        listener->label = strchr(config->address, ':') != NULL
                              ? g_strdup_printf("[%s]:%u", config->address, config->port)
                              : g_strdup_printf("%s:%u", config->address, config->port);
        listener->fd = passed >= 0 ? passed : open_inet(config, listener->label, backlog, error);
    }
    /* A passed unix socket's path belongs to the service manager. */
    listener->keep_path = passed >= 0;
    if (listener->fd < 0) {
        g_free(listener->label);
        g_free(listener);
        return NULL;
    }
    return listener;
}

bool corral_listener_same_address(const corral_listener_config *a,
                                  const corral_listener_config *b)
{
    if (a->kind != b->kind)
        return false;
    if (a->kind == CORRAL_LISTENER_UNIX)
        return strcmp(a->path, b->path) == 0;
    return a->port == b->port && strcmp(a->address, b->address) == 0;
}

corral_listener *corral_listener_open_successor(const corral_listener_config *config,
                                                int backlog, corral_listener *running,
                                                GError **error)
{
    corral_listener *listener;

    if (running == NULL)
        return corral_listener_open(config, backlog, error);
    listener = g_new0(corral_listener, 1);
    listener->config = config;
    if (config->kind == CORRAL_LISTENER_INET) {
        listener->label = g_strdup(running->label);
        /* The same open socket: its queue and every waiting client carry
         * over.  listen() again applies the new backlog. */
        listener->fd = fcntl(running->fd, F_DUPFD_CLOEXEC, 0);
        if (listener->fd < 0 || listen(listener->fd, backlog) < 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                        "listener %s: cannot take over the running socket: %s",
                        listener->label, g_strerror(errno));
            corral_listener_free(listener);
            return NULL;
        }
        return listener;
    }
    listener->label = g_strdup(config->path);
    listener->pending_path = g_strdup_printf("%s.reload", config->path);
    listener->replaces = running;
    (void)unlink(listener->pending_path);
    listener->fd = open_unix(config, listener->pending_path, backlog, error);
    if (listener->fd < 0) {
        g_free(listener->pending_path);
        g_free(listener->label);
        g_free(listener);
        return NULL;
    }
    return listener;
}

bool corral_listener_commit(corral_listener *listener, GError **error)
{
    if (listener->pending_path == NULL)
        return true;
    if (rename(listener->pending_path, listener->config->path) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "listener %s: cannot move the new socket into place: %s",
                    listener->config->path, g_strerror(errno));
        return false;
    }
    g_free(listener->pending_path);
    listener->pending_path = NULL;
    if (listener->replaces != NULL)
        listener->replaces->keep_path = true;
    listener->replaces = NULL;
    return true;
}

void corral_listener_free(corral_listener *listener)
{
    if (listener == NULL)
        return;
    corral_toggle_watch_free(listener->watch);
    if (listener->fd >= 0) {
        close(listener->fd);
        if (listener->pending_path != NULL)
            (void)unlink(listener->pending_path);
        else if (listener->config->kind == CORRAL_LISTENER_UNIX && !listener->keep_path)
            (void)unlink(listener->config->path);
    }
    g_free(listener->pending_path);
    g_free(listener->label);
    g_free(listener);
}

unsigned corral_listener_queued(const corral_listener *listener)
{
    struct tcp_info info;
    socklen_t length = sizeof(info);

    if (listener->config->kind != CORRAL_LISTENER_INET || listener->fd < 0)
        return 0;
    /* On a listening socket Linux reports the accept queue's length in
     * tcpi_unacked (and its limit in tcpi_sacked). */
    if (getsockopt(listener->fd, IPPROTO_TCP, TCP_INFO, &info, &length) < 0 ||
        length < offsetof(struct tcp_info, tcpi_unacked) + sizeof(info.tcpi_unacked))
        return 0;
    return info.tcpi_unacked;
}

unsigned corral_listener_drop(corral_listener *listener, unsigned max)
{
    unsigned dropped = 0;

    while (max == 0 || dropped < max) {
        int fd = accept4(listener->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        close(fd);
        dropped++;
    }
    return dropped;
}
