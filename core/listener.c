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

#include "dir-trust.h"
#include "log.h"
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
static bool unix_socket_is_live(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live;

    if (fd < 0)
        return false;
    g_strlcpy(addr.sun_path, path, sizeof(addr.sun_path));
    live = connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return live;
}

static bool lookup_owner(const corral_listener_config *config, const char *path, uid_t *uid,
                         gid_t *gid, GError **error)
{
    *uid = (uid_t)-1;
    *gid = (gid_t)-1;
    if (config->user != NULL) {
        struct passwd *pw = getpwnam(config->user);
        if (pw == NULL) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "listener %s: unknown user '%s'", path, config->user);
            return false;
        }
        *uid = pw->pw_uid;
    }
    if (config->group != NULL) {
        struct group *gr = getgrnam(config->group);
        if (gr == NULL) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "listener %s: unknown group '%s'", path, config->group);
            return false;
        }
        *gid = gr->gr_gid;
    }
    return true;
}

/* What may be at a unix listener's path before the new socket takes it:
 * nothing, or a socket nobody answers on.  Anything else is someone's
 * file, never ours to replace or delete. */
static bool path_is_free_for_socket(const char *path, GError **error)
{
    struct stat st;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return true;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "listener %s: %s", path, g_strerror(errno));
        return false;
    }
    if (!S_ISSOCK(st.st_mode)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                    "listener %s: the path exists and is not a socket; refusing to replace it",
                    path);
        return false;
    }
    if (unix_socket_is_live(path)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "listener %s: another process is listening there", path);
        return false;
    }
    return true;
}

/* A unix socket is made, given its owner and mode, in a folder of its own
 * that only corrald can enter, beside its final path: nobody can swap a
 * symlink in under the chown, and rename() puts the finished socket in
 * place without following anything.  Fills `staged` with the folder and
 * the socket's identity. */
static int open_unix_staged(const corral_listener_config *config, int backlog,
                            corral_listener *staged, GError **error)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    char *folder = g_path_get_dirname(config->path);
    char *stage = g_build_filename(folder, ".corral-stage-XXXXXX", NULL);
    uid_t uid;
    gid_t gid;
    struct stat st;
    mode_t old_umask;
    int fd = -1, stage_fd = -1, saved_errno;
    GError *local = NULL;
    bool bound;

    if (strlen(config->path) >= sizeof(addr.sun_path)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "listener %s: path too long for a unix socket", config->path);
        g_free(folder);
        goto out;
    }
    if (!corral_dir_is_trusted(folder, &local)) {
        g_set_error(error, local->domain, local->code, "listener %s: %s", config->path,
                    local->message);
        g_error_free(local);
        g_free(folder);
        goto out;
    }
    g_free(folder);
    if (!lookup_owner(config, config->path, &uid, &gid, error))
        goto out;
    if (g_mkdtemp_full(stage, 0700) == NULL) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "listener %s: cannot create a private folder beside it: %s", config->path,
                    g_strerror(errno));
        goto out;
    }
    stage_fd = open(stage, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (stage_fd < 0 || strlen(stage) + strlen("/socket") >= sizeof(addr.sun_path)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "listener %s: cannot use the private folder %s: %s", config->path, stage,
                    stage_fd < 0 ? g_strerror(errno) : "path too long for a unix socket");
        goto fail;
    }
    /* bind() takes a path: the folder was made by us, 0700, a moment ago;
     * were it swapped since, fstatat() below would not find our socket. */
    g_snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/socket", stage);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail_errno;
    old_umask = umask(0777 & ~config->mode);
    bound = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    saved_errno = errno;
    umask(old_umask);
    errno = saved_errno;
    if (!bound || listen(fd, backlog) < 0)
        goto fail_errno;
    if (geteuid() == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1) &&
        fchownat(stage_fd, "socket", uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "listener %s: chown() failed: %s", config->path, g_strerror(errno));
        goto fail;
    }
    if (fstatat(stage_fd, "socket", &st, AT_SYMLINK_NOFOLLOW) < 0)
        goto fail_errno;
    if (!S_ISSOCK(st.st_mode)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "listener %s: the private folder %s was tampered with", config->path,
                    stage);
        goto fail;
    }
    staged->staging_dir = stage;
    staged->staging_fd = stage_fd;
    staged->dev = st.st_dev;
    staged->ino = st.st_ino;
    return fd;

fail_errno:
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "listener %s: %s",
                config->path, g_strerror(errno));
fail:
    if (fd >= 0)
        close(fd);
    fd = -1;
    if (stage_fd >= 0) {
        (void)unlinkat(stage_fd, "socket", 0);
        close(stage_fd);
    }
    (void)rmdir(stage);
out:
    g_free(stage);
    return fd;
}

/* Moves the staged socket to its path (replacing what is there) and
 * checks that the path then names it. */
static bool rename_staged(corral_listener *listener, GError **error)
{
    const char *path = listener->config->path;
    struct stat st;

    if (renameat(listener->staging_fd, "socket", AT_FDCWD, path) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "listener %s: cannot move the new socket into place: %s", path,
                    g_strerror(errno));
        return false;
    }
    close(listener->staging_fd);
    listener->staging_fd = -1;
    (void)rmdir(listener->staging_dir);
    g_clear_pointer(&listener->staging_dir, g_free);
    if (lstat(path, &st) < 0 || st.st_dev != listener->dev || st.st_ino != listener->ino) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "listener %s: the path was replaced as the socket moved there", path);
        return false;
    }
    return true;
}

/* The staged socket takes its final path, when that holds nothing or a
 * dead socket. */
static bool move_into_place(corral_listener *listener, GError **error)
{
    return path_is_free_for_socket(listener->config->path, error) &&
           rename_staged(listener, error);
}

/* Removes the staged socket and its private folder. */
static void discard_staged(corral_listener *listener)
{
    if (listener->staging_fd < 0)
        return;
    (void)unlinkat(listener->staging_fd, "socket", 0);
    close(listener->staging_fd);
    listener->staging_fd = -1;
    (void)rmdir(listener->staging_dir);
    g_clear_pointer(&listener->staging_dir, g_free);
}

/* Our socket is still the one at the path: a path someone else replaced
 * (a file, a symlink, another socket) is left alone. */
static bool path_still_ours(const corral_listener *listener)
{
    struct stat st;

    return lstat(listener->config->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
           st.st_dev == listener->dev && st.st_ino == listener->ino;
}

corral_listener *corral_listener_open(const corral_listener_config *config, int backlog,
                                      GError **error)
{
    corral_listener *listener = g_new0(corral_listener, 1);
    int passed = corral_socket_activation_take(config);

    listener->config = config;
    listener->staging_fd = -1;
    if (config->kind == CORRAL_LISTENER_UNIX) {
        listener->label = g_strdup(config->path);
        listener->fd = passed >= 0 ? passed : open_unix_staged(config, backlog, listener, error);
        if (listener->fd >= 0 && passed < 0 && !move_into_place(listener, error)) {
            /* The socket may have been moved already: only our own path
             * is unlinked, and only while it names this socket. */
            discard_staged(listener);
            if (path_still_ours(listener))
                (void)unlink(config->path);
            close(listener->fd);
            listener->fd = -1;
        }
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
    listener->staging_fd = -1;
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
    listener->replaces = running;
    listener->fd = open_unix_staged(config, backlog, listener, error);
    if (listener->fd < 0) {
        g_free(listener->label);
        g_free(listener);
        return NULL;
    }
    return listener;
}

bool corral_listener_commit(corral_listener *listener, GError **error)
{
    bool moved;

    if (listener->staging_fd < 0)
        return true;
    /* The running socket is ours to replace; anything else at the path
     * (a file or symlink swapped in) is refused by move_into_place(). */
    moved = listener->replaces != NULL && path_still_ours(listener->replaces)
                ? rename_staged(listener, error)
                : move_into_place(listener, error);
    if (!moved)
        return false;
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
        if (listener->staging_fd >= 0)
            discard_staged(listener);
        else if (listener->config->kind == CORRAL_LISTENER_UNIX && !listener->keep_path &&
                 path_still_ours(listener))
            (void)unlink(listener->config->path);
    }
    g_free(listener->staging_dir);
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
    static gint64 out_of_fds_logged_usec;
    unsigned dropped = 0;

    while (max == 0 || dropped < max) {
        int fd = accept4(listener->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            gint64 now = g_get_monotonic_time();

            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            /* Without a descriptor nothing can be dropped: the clients stay
             * queued, and this is said once a minute, not once a call. */
            if ((errno == EMFILE || errno == ENFILE) &&
                (out_of_fds_logged_usec == 0 ||
                 now - out_of_fds_logged_usec >= 60 * G_USEC_PER_SEC)) {
                out_of_fds_logged_usec = now;
                log_error("listener %s: accept() to drop a queued client failed: %s "
                          "(raise RLIMIT_NOFILE?)", listener->label, g_strerror(errno));
            }
            break;
        }
        close(fd);
        dropped++;
    }
    return dropped;
}
