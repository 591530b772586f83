/* SPDX-License-Identifier: MIT */
#include "stream-server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"

/* Plenty for operators and scrapers; beyond it a client is turned away
 * rather than letting connections eat the master's descriptors. */
#define MAX_CLIENTS 64
/* One TCP peer address may hold this many: a scraper on another host
 * still gets in while one host floods. */
#define MAX_CLIENTS_PER_PEER 8
/* A TCP client that has sent nothing yet is idle: it is closed this soon,
 * and first when room is needed for a newcomer, but only once it has had
 * this long to speak, so that clients cannot evict each other in a loop. */
#define TCP_FIRST_BYTE_TIMEOUT_MSECS 2000
#define EVICTABLE_AFTER_USEC (200 * G_TIME_SPAN_MILLISECOND)
/* Out of descriptors, accepting pauses this long. */
#define ACCEPT_BACKOFF_MSECS 1000
#define LISTEN_BACKLOG 16
#define READ_CHUNK 4096
/* Answers a client has not read: past the first, its requests are not read
 * either until they are; past the second, it is disconnected. */
#define OUTPUT_PAUSE_BYTES (256 * 1024)
#define OUTPUT_MAX_BYTES (8 * 1024 * 1024)

struct corral_stream_server {
    const corral_stream_protocol *protocol;
    void *data;
    corral_listener *listener;
    guint accept_watch;
    GList *clients;               /* corral_stream_client*, newest first */
    unsigned client_count;
    GHashTable *per_peer;         /* TCP peer address -> clients, as a pointer */
    int spare_fd;                 /* a descriptor kept free for EMFILE */
    guint backoff_timer;          /* accepting paused after EMFILE */
    gint64 out_of_fds_logged_usec; /* a shortage is logged once a minute */
    uint64_t out_of_fds_unlogged;
    gint64 refused_warned_sec;
    uint64_t refused_since_warning;
};

struct corral_stream_client {
    corral_stream_server *server;
    GList link;                   /* in server->clients */
    int fd;
    char *peer;
    char *peer_host;              /* TCP only: the address without the port */
    gint64 connected_usec;
    bool spoke;                   /* has sent something */
    GString *input;
    GString *output;
    guint read_watch;
    guint write_watch;
    guint timeout;
    bool finishing;               /* close once the output is written */
    bool paused;                  /* not read while its answers pile up */
    bool overflowed;              /* answers past OUTPUT_MAX_BYTES: close */
    bool held;
    void *state;
    GDestroyNotify state_free;
};

static void client_free(corral_stream_client *client)
{
    corral_stream_server *server = client->server;

    server->clients = g_list_remove_link(server->clients, &client->link);
    server->client_count--;
    if (client->peer_host != NULL) {
        unsigned count = GPOINTER_TO_UINT(g_hash_table_lookup(server->per_peer,
                                                              client->peer_host));
        if (count <= 1)
            g_hash_table_remove(server->per_peer, client->peer_host);
        else
            g_hash_table_insert(server->per_peer, g_strdup(client->peer_host),
                                GUINT_TO_POINTER(count - 1));
    }
    g_free(client->peer_host);
    if (client->read_watch != 0)
        g_source_remove(client->read_watch);
    if (client->write_watch != 0)
        g_source_remove(client->write_watch);
    if (client->timeout != 0)
        g_source_remove(client->timeout);
    close(client->fd);
    if (client->state_free != NULL)
        client->state_free(client->state);
    g_string_free(client->input, TRUE);
    g_string_free(client->output, TRUE);
    g_free(client->peer);
    g_free(client);
}

static unsigned timeout_msecs(const corral_stream_client *client)
{
    unsigned msecs = client->server->protocol->request_timeout_msecs;

    return client->peer_host != NULL && !client->spoke
               ? MIN(msecs, TCP_FIRST_BYTE_TIMEOUT_MSECS) : msecs;
}

static gboolean on_timeout(gpointer data)
{
    corral_stream_client *client = data;

    client->timeout = 0;
    log_debug("%s: %s: no complete request in %u ms, disconnecting",
              client->server->protocol->name, client->peer, timeout_msecs(client));
    client_free(client);
    return G_SOURCE_REMOVE;
}

static void restart_timeout(corral_stream_client *client)
{
    if (client->timeout != 0)
        g_source_remove(client->timeout);
    client->timeout = client->held ? 0
                                   : g_timeout_add(timeout_msecs(client), on_timeout, client);
}

static gboolean on_writable(int fd, GIOCondition condition, gpointer data);
static gboolean on_readable(int fd, GIOCondition condition, gpointer data);

/* Writes what it can without blocking.  Returns false when the client is
 * gone (freed). */
static bool flush(corral_stream_client *client)
{
    if (client->overflowed) {
        client_free(client);
        return false;
    }
    while (client->output->len > 0) {
        ssize_t written = send(client->fd, client->output->str, client->output->len,
                               MSG_NOSIGNAL | MSG_DONTWAIT);

        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (written < 0) {
            log_debug("%s: %s: write failed: %s", client->server->protocol->name, client->peer,
                      g_strerror(errno));
            client_free(client);
            return false;
        }
        g_string_erase(client->output, 0, written);
    }
    if (client->output->len > 0) {
        if (client->write_watch == 0)
            client->write_watch = g_unix_fd_add(client->fd, G_IO_OUT, on_writable, client);
        return true;
    }
    if (client->write_watch != 0) {
        g_source_remove(client->write_watch);
        client->write_watch = 0;
    }
    if (client->paused && !client->finishing) {
        client->paused = false;
        client->read_watch = g_unix_fd_add(client->fd, G_IO_IN, on_readable, client);
    }
    if (client->finishing && !client->held) {
        client_free(client);
        return false;
    }
    return true;
}

static gboolean on_writable(int fd, GIOCondition condition, gpointer data)
{
    corral_stream_client *client = data;

    (void)fd;
    (void)condition;
    /* flush() removes this watch itself once the output is gone. */
    if (flush(client) && client->write_watch != 0)
        return G_SOURCE_CONTINUE;
    return G_SOURCE_REMOVE;
}

/* Reads what is there.  Returns false on EOF or a read error. */
static bool read_available(corral_stream_client *client, bool *failed)
{
    char chunk[READ_CHUNK];

    for (;;) {
        ssize_t got = recv(client->fd, chunk, sizeof(chunk), MSG_DONTWAIT);

        if (got > 0) {
            if (!client->spoke) {
                client->spoke = true;
                restart_timeout(client);
            }
            g_string_append_len(client->input, chunk, got);
            if (client->input->len > client->server->protocol->input_max)
                return true; /* judged by the caller */
            continue;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        *failed = got < 0;
        return false;
    }
}

static gboolean on_readable(int fd, GIOCondition condition, gpointer data)
{
    corral_stream_client *client = data;
    const corral_stream_protocol *protocol = client->server->protocol;
    bool failed = false;
    bool eof;

    (void)fd;
    (void)condition;
    eof = !read_available(client, &failed);
    if (failed) {
        log_debug("%s: %s: read failed: %s", protocol->name, client->peer, g_strerror(errno));
        client->read_watch = 0;
        client_free(client);
        return G_SOURCE_REMOVE;
    }
    if (client->held) {
        /* Nothing more is expected: only notice that the client left. */
        g_string_truncate(client->input, 0);
        if (eof) {
            client->read_watch = 0;
            client_free(client);
            return G_SOURCE_REMOVE;
        }
        return G_SOURCE_CONTINUE;
    }
    protocol->input(client, client->input, eof, client->server->data);
    if (!client->finishing && client->input->len > protocol->input_max) {
        log_warning("%s: %s: request longer than %zu bytes, disconnecting", protocol->name,
                    client->peer, protocol->input_max);
        client->read_watch = 0;
        client_free(client);
        return G_SOURCE_REMOVE;
    }
    if (eof && !client->held)
        client->finishing = true;
    if (client->finishing || eof) {
        /* Whatever else arrives is not read. */
        client->read_watch = 0;
        (void)flush(client);
        return G_SOURCE_REMOVE;
    }
    if (!flush(client))
        return G_SOURCE_REMOVE;
    if (client->output->len >= OUTPUT_PAUSE_BYTES) {
        /* flush() reads on once the client has taken its answers. */
        client->paused = true;
        client->read_watch = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

char *corral_stream_describe_peer(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    char host[INET6_ADDRSTRLEN] = "?";

    if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0 && addr.ss_family == AF_UNIX) {
        struct ucred cred;
        socklen_t cred_len = sizeof(cred);

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0)
            return g_strdup_printf("pid=%d uid=%u", (int)cred.pid, (unsigned)cred.uid);
        return g_strdup("unix peer");
    }
    len = sizeof(addr);
    if (getpeername(fd, (struct sockaddr *)&addr, &len) < 0)
        return g_strdup("unknown peer");
    if (addr.ss_family == AF_INET) {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;
        inet_ntop(AF_INET, &in4->sin_addr, host, sizeof(host));
        return g_strdup_printf("%s:%u", host, ntohs(in4->sin_port));
    }
    if (addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        return g_strdup_printf("[%s]:%u", host, ntohs(in6->sin6_port));
    }
    return g_strdup("unknown peer");
}

/* The TCP peer's address, without the port; NULL on a unix socket. */
static char *peer_host_of(const char *peer, int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);

    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0 || addr.ss_family == AF_UNIX)
        return NULL;
    return g_strndup(peer, strrchr(peer, ':') != NULL ? (gsize)(strrchr(peer, ':') - peer)
                                                       : strlen(peer));
}

static void add_client(corral_stream_server *server, int fd, char *peer, char *peer_host)
{
    corral_stream_client *client = g_new0(corral_stream_client, 1);

    client->server = server;
    client->fd = fd;
    client->peer = peer;
    client->peer_host = peer_host;
    client->connected_usec = g_get_monotonic_time();
    client->input = g_string_new(NULL);
    client->output = g_string_new(NULL);
    client->link.data = client;
    server->clients = g_list_concat(&client->link, server->clients);
    server->client_count++;
    if (peer_host != NULL)
        g_hash_table_insert(server->per_peer, g_strdup(peer_host),
                            GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(
                                server->per_peer, peer_host)) + 1));
    client->read_watch = g_unix_fd_add(fd, G_IO_IN, on_readable, client);
    restart_timeout(client);
    if (server->protocol->connected != NULL) {
        server->protocol->connected(client, server->data);
        (void)flush(client);
    }
}

/* Closes the oldest client (of `peer_host`, or of anyone when NULL) that
 * has sent nothing and waits for nothing, if it has had its chance to
 * speak.  Returns whether one was closed. */
static bool evict_oldest_idle(corral_stream_server *server, const char *peer_host)
{
    gint64 now = g_get_monotonic_time();

    for (GList *link = g_list_last(server->clients); link != NULL; link = link->prev) {
        corral_stream_client *client = link->data;

        if (client->spoke || client->held || client->output->len > 0 ||
            now - client->connected_usec < EVICTABLE_AFTER_USEC)
            continue;
        if (peer_host != NULL && g_strcmp0(client->peer_host, peer_host) != 0)
            continue;
        log_debug("%s: %s: idle, closed to make room", server->protocol->name, client->peer);
        client_free(client);
        return true;
    }
    return false;
}

static void refuse(corral_stream_server *server, int fd, const char *why)
{
    gint64 now_sec = g_get_monotonic_time() / G_USEC_PER_SEC;

    close(fd);
    server->refused_since_warning++;
    if (server->refused_warned_sec == now_sec)
        return;
    server->refused_warned_sec = now_sec;
    log_warning("%s: %s, refused %" G_GUINT64_FORMAT " connection%s", server->protocol->name,
                why, server->refused_since_warning, server->refused_since_warning == 1 ? "" : "s");
    server->refused_since_warning = 0;
}

/* Makes room for a newcomer from `peer_host`: per peer first, then in all. */
static bool admit(corral_stream_server *server, int fd, char *peer, char *peer_host)
{
    char *why = NULL;

    if (peer_host != NULL &&
        GPOINTER_TO_UINT(g_hash_table_lookup(server->per_peer, peer_host)) >=
            MAX_CLIENTS_PER_PEER &&
        !evict_oldest_idle(server, peer_host))
        why = g_strdup_printf("%s has %u connections already", peer_host,
                              MAX_CLIENTS_PER_PEER);
    else if (server->client_count >= MAX_CLIENTS && !evict_oldest_idle(server, NULL))
        why = g_strdup_printf("%u clients connected already", MAX_CLIENTS);
    if (why != NULL) {
        refuse(server, fd, why);
        g_free(why);
        g_free(peer);
        g_free(peer_host);
        return false;
    }
    add_client(server, fd, peer, peer_host);
    return true;
}

static gboolean on_acceptable(int listen_fd, GIOCondition condition, gpointer data);

static gboolean on_backoff_over(gpointer data)
{
    corral_stream_server *server = data;

    server->backoff_timer = 0;
    if (server->spare_fd < 0)
        server->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    server->accept_watch = g_unix_fd_add(server->listener->fd, G_IO_IN, on_acceptable, server);
    return G_SOURCE_REMOVE;
}

/* accept() found no descriptor free.  The spare one lets us take the
 * connection anyway and close an idle client for it, or turn it away
 * with a close rather than leave it hanging.  Accepting then pauses, so
 * that a listener that stays readable cannot make the loop spin; the
 * shortage is logged at most once a minute, with a count of the rest. */
static void out_of_descriptors(corral_stream_server *server, int listen_fd, int accept_errno)
{
    gint64 now = g_get_monotonic_time();

    if (server->out_of_fds_logged_usec == 0 ||
        now - server->out_of_fds_logged_usec >= 60 * G_USEC_PER_SEC) {
        log_error("%s: accept() failed: %s; closing idle clients and pausing accepts for "
                  "%u ms at a time until descriptors are free (raise RLIMIT_NOFILE?); "
                  "%" G_GUINT64_FORMAT " more since the last report",
                  server->protocol->name, g_strerror(accept_errno), ACCEPT_BACKOFF_MSECS,
                  server->out_of_fds_unlogged);
        server->out_of_fds_logged_usec = now;
        server->out_of_fds_unlogged = 0;
    } else {
        server->out_of_fds_unlogged++;
    }
    if (server->spare_fd >= 0) {
        int fd;

        close(server->spare_fd);
        server->spare_fd = -1;
        fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            char *peer = corral_stream_describe_peer(fd);
            char *peer_host = peer_host_of(peer, fd);

            if (evict_oldest_idle(server, NULL))
                (void)admit(server, fd, peer, peer_host);
            else {
                refuse(server, fd, "out of descriptors");
                g_free(peer);
                g_free(peer_host);
            }
        }
        server->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (server->accept_watch != 0) {
        g_source_remove(server->accept_watch);
        server->accept_watch = 0;
    }
    server->backoff_timer = g_timeout_add(ACCEPT_BACKOFF_MSECS, on_backoff_over, server);
}

static gboolean on_acceptable(int listen_fd, GIOCondition condition, gpointer data)
{
    corral_stream_server *server = data;

    (void)condition;
    /* A bounded batch per wakeup leaves room for everything else. */
    for (int i = 0; i < 16; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        char *peer;

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Removes this watch and arms the timer that restores it. */
                server->accept_watch = 0;
                out_of_descriptors(server, listen_fd, errno);
                return G_SOURCE_REMOVE;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_error("%s: accept() failed: %s", server->protocol->name, g_strerror(errno));
            break;
        }
        peer = corral_stream_describe_peer(fd);
        (void)admit(server, fd, peer, peer_host_of(peer, fd));
    }
    return G_SOURCE_CONTINUE;
}

corral_stream_server *corral_stream_server_open(const corral_listener_config *listener,
                                               const corral_stream_protocol *protocol,
                                               void *data, GError **error)
{
    corral_stream_server *server = g_new0(corral_stream_server, 1);

    server->protocol = protocol;
    server->data = data;
    server->per_peer = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    server->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    server->listener = corral_listener_open(listener, LISTEN_BACKLOG, error);
    if (server->listener == NULL) {
        if (server->spare_fd >= 0)
            close(server->spare_fd);
        g_hash_table_destroy(server->per_peer);
        g_free(server);
        return NULL;
    }
    server->accept_watch = g_unix_fd_add(server->listener->fd, G_IO_IN, on_acceptable, server);
    return server;
}

void corral_stream_server_free(corral_stream_server *server)
{
    if (server == NULL)
        return;
    while (server->clients != NULL)
        client_free(server->clients->data);
    if (server->accept_watch != 0)
        g_source_remove(server->accept_watch);
    if (server->backoff_timer != 0)
        g_source_remove(server->backoff_timer);
    if (server->spare_fd >= 0)
        close(server->spare_fd);
    g_hash_table_destroy(server->per_peer);
    corral_listener_free(server->listener);
    g_free(server);
}

void corral_stream_client_write(corral_stream_client *client, const char *data, size_t len)
{
    if (client->overflowed)
        return;
    if (client->output->len + len > OUTPUT_MAX_BYTES) {
        log_warning("%s: %s: does not read its answers (%zu bytes waiting), disconnecting",
                    client->server->protocol->name, client->peer, client->output->len);
        client->overflowed = true;
        g_string_truncate(client->output, 0);
        return;
    }
    g_string_append_len(client->output, data, (gssize)len);
    restart_timeout(client);
}

void corral_stream_client_finish(corral_stream_client *client)
{
    client->finishing = true;
}

void corral_stream_client_hold(corral_stream_client *client)
{
    client->held = true;
    restart_timeout(client);
}

void corral_stream_client_set_state(corral_stream_client *client, void *state,
                                    GDestroyNotify free)
{
    if (client->state_free != NULL)
        client->state_free(client->state);
    client->state = state;
    client->state_free = free;
}

void *corral_stream_client_get_state(const corral_stream_client *client)
{
    return client->state;
}

bool corral_stream_client_peer_uid(const corral_stream_client *client, uid_t *uid)
{
    struct ucred cred;
    socklen_t cred_len = sizeof(cred);
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);

    if (getsockname(client->fd, (struct sockaddr *)&addr, &len) < 0 || addr.ss_family != AF_UNIX ||
        getsockopt(client->fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0)
        return false;
    *uid = cred.uid;
    return true;
}

const char *corral_stream_client_peer(const corral_stream_client *client)
{
    return client->peer;
}
