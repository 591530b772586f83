/* SPDX-License-Identifier: MIT */
/*
 * corral-echo-worker - writes back every byte a client sends.
 *
 * Under corrald or a Dovecot master it serves the listeners it is given;
 * by hand, `corral-echo-worker --listen 127.0.0.1:7000`; from inetd,
 * xinetd or tcpserver, the client on stdin.  Each client gets a small
 * buffer.  A client that sends more while not reading its echo fills the
 * buffer and is disconnected.
 */
#include <corral/worker.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ECHO_BUFFER_SIZE 4096

struct echo_client {
    size_t pending; /* bytes read but not written back yet */
    char buffer[ECHO_BUFFER_SIZE];
};

static void echo_connected(corral_conn *conn, void *context)
{
    struct echo_client *client = calloc(1, sizeof(*client));

    (void)context;
    if (client == NULL) {
        corral_worker_log_error("Out of memory: dropping a client");
        corral_conn_close(conn);
        return;
    }
    corral_conn_set_data(conn, client);
}

/* Writes back what is pending, and waits for the socket to drain if it is
 * full.  Returns false if the client is gone (and `client` freed). */
static bool echo_flush(corral_conn *conn, struct echo_client *client)
{
    size_t sent = 0;

    while (sent < client->pending) {
        ssize_t written = send(corral_conn_fd(conn), client->buffer + sent,
                               client->pending - sent, MSG_NOSIGNAL);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0 && errno == EAGAIN)
            break;
        if (written < 0) {
            corral_conn_close(conn);
            return false;
        }
        sent += (size_t)written;
    }
    memmove(client->buffer, client->buffer + sent, client->pending - sent);
    client->pending -= sent;
    corral_conn_want_write(conn, client->pending > 0);
    return true;
}

static void echo_readable(corral_conn *conn, void *context)
{
    struct echo_client *client = corral_conn_data(conn);

    (void)context;
    if (client->pending == sizeof(client->buffer)) {
        /* Full: the client has not been reading its echo.  It may have
         * just started to, so try once more before giving up on it. */
        if (!echo_flush(conn, client))
            return;
        if (client->pending == sizeof(client->buffer)) {
            corral_worker_log_warning("Client sends without reading its echo: disconnecting");
            corral_conn_close(conn);
            return;
        }
    }
    ssize_t got = recv(corral_conn_fd(conn), client->buffer + client->pending,
                       sizeof(client->buffer) - client->pending, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        corral_conn_close(conn);
        return;
    }
    if (got > 0) {
        client->pending += (size_t)got;
        echo_flush(conn, client);
    }
}

static void echo_writable(corral_conn *conn, void *context)
{
    (void)context;
    echo_flush(conn, corral_conn_data(conn));
}

static void echo_closing(corral_conn *conn, void *context)
{
    (void)context;
    free(corral_conn_data(conn));
}

static void usage(const char *program)
{
    printf("Usage: %s [--listen ADDRESS:PORT]...\n"
           "Echoes every byte back to its client.  Started by corrald or a Dovecot\n"
           "master it uses the sockets passed to it; by hand it listens on each\n"
           "--listen address (or CORRAL_LISTEN), serving CLIENT_LIMIT clients at\n"
           "once (default 1) and SERVICE_COUNT in all (default 1, 0 = no limit).\n"
           "Started by inetd, xinetd or tcpserver it serves the client on stdin.\n",
           program);
}

int main(int argc, char **argv)
{
    static const corral_worker_callbacks callbacks = {
        .connected = echo_connected,
        .readable = echo_readable,
        .writable = echo_writable,
        .closing = echo_closing,
    };
    char *error;

    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(argv[0]);
        return EXIT_SUCCESS;
    }
    corral_worker *worker = corral_worker_new("echo", argc, argv, 0, &error);
    if (worker == NULL)
        corral_worker_fatal("%s", error);
    corral_worker_set_callbacks(worker, &callbacks, NULL);
    int status = corral_worker_run(worker);
    corral_worker_free(worker);
    return status;
}
