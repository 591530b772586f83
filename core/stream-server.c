/* SPDX-License-Identifier: MIT */
#include "stream-server.h"

#include <arpa/inet.h>
#include <errno.h>
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
#define LISTEN_BACKLOG 16
#define READ_CHUNK 4096

struct corral_stream_server {
    const corral_stream_protocol *protocol;
    void *data;
    corral_listener *listener;
    guint accept_watch;
    GList *clients;               /* corral_stream_client* */
    unsigned client_count;
    gint64 refused_warned_sec;
};

struct corral_stream_client {
    corral_stream_server *server;
    GList link;                   /* in server->clients */
    int fd;
    char *peer;
    GString *input;
    GString *output;
    guint read_watch;
    guint write_watch;
    guint timeout;
    bool finishing;               /* close once the output is written */
    bool held;
    void *state;
    GDestroyNotify state_free;
};

static void client_free(corral_stream_client *client)
{
    corral_stream_server *server = client->server;

    server->clients = g_list_remove_link(server->clients, &client->link);
    server->client_count--;
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

static gboolean on_timeout(gpointer data)
{
    corral_stream_client *client = data;

    client->timeout = 0;
    log_debug("%s: %s: no complete request in %u ms, disconnecting",
              client->server->protocol->name, client->peer,
              client->server->protocol->request_timeout_msecs);
    client_free(client);
    return G_SOURCE_REMOVE;
}

static void restart_timeout(corral_stream_client *client)
{
    if (client->timeout != 0)
        g_source_remove(client->timeout);
    client->timeout = client->held ? 0
                                   : g_timeout_add(client->server->protocol->request_timeout_msecs,
                                                   on_timeout, client);
}

static gboolean on_writable(int fd, GIOCondition condition, gpointer data);

/* Writes what it can without blocking.  Returns false when the client is
 * gone (freed). */
static bool flush(corral_stream_client *client)
{
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
    return flush(client) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static char *describe_peer(int fd)
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

static void add_client(corral_stream_server *server, int fd)
{
    corral_stream_client *client = g_new0(corral_stream_client, 1);

    client->server = server;
    client->fd = fd;
    client->peer = describe_peer(fd);
    client->input = g_string_new(NULL);
    client->output = g_string_new(NULL);
    client->link.data = client;
    server->clients = g_list_concat(&client->link, server->clients);
    server->client_count++;
    client->read_watch = g_unix_fd_add(fd, G_IO_IN, on_readable, client);
    restart_timeout(client);
    if (server->protocol->connected != NULL) {
        server->protocol->connected(client, server->data);
        (void)flush(client);
    }
}

static gboolean on_acceptable(int listen_fd, GIOCondition condition, gpointer data)
{
    corral_stream_server *server = data;

    (void)condition;
    /* A bounded batch per wakeup leaves room for everything else. */
    for (int i = 0; i < 16; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_error("%s: accept() failed: %s", server->protocol->name, g_strerror(errno));
            break;
        }
        if (server->client_count >= MAX_CLIENTS) {
            gint64 now_sec = g_get_monotonic_time() / G_USEC_PER_SEC;
            if (server->refused_warned_sec != now_sec) {
                server->refused_warned_sec = now_sec;
                log_warning("%s: %u clients connected already, refusing more",
                            server->protocol->name, MAX_CLIENTS);
            }
            close(fd);
            continue;
        }
        add_client(server, fd);
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
    server->listener = corral_listener_open(listener, LISTEN_BACKLOG, error);
    if (server->listener == NULL) {
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
    g_source_remove(server->accept_watch);
    corral_listener_free(server->listener);
    g_free(server);
}

void corral_stream_client_write(corral_stream_client *client, const char *data, size_t len)
{
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
