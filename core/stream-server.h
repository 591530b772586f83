/* SPDX-License-Identifier: MIT */
/*
 * stream-server.h - a listening socket for short exchanges of requests and
 * answers: the corralctl control socket, Dovecot's master socket for
 * doveadm, and the HTTP metrics endpoint.
 *
 * Clients are served on the main loop and never block it.  What a client
 * sends is buffered and handed to the protocol's handler, which consumes
 * whole requests and queues answers; answers are written as the client
 * reads them.  A client is disconnected, with a warning naming it, when
 * its unanswered input outgrows the protocol's cap, and quietly when it
 * does not complete a request within the protocol's timeout of connecting
 * or of its previous answer.
 */
#ifndef CORRAL_STREAM_SERVER_H
#define CORRAL_STREAM_SERVER_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

typedef struct corral_stream_server corral_stream_server;
typedef struct corral_stream_client corral_stream_client;

typedef struct corral_stream_protocol {
    const char *name;               /* for messages: "control socket", ... */
    size_t input_max;               /* unanswered bytes a client may send */
    unsigned request_timeout_msecs;
    /* Optional: a client has connected (Dovecot's master speaks first). */
    void (*connected)(corral_stream_client *client, void *data);
    /* Input has arrived.  Consume whole requests from the front of `input`
     * (g_string_erase) and answer with corral_stream_client_write(); leave
     * a partial request for the next call.  `eof` is set once the client
     * has shut down its sending side. */
    void (*input)(corral_stream_client *client, GString *input, bool eof, void *data);
} corral_stream_protocol;

/* Opens the socket `listener` describes (it must outlive the server) and
 * starts accepting clients that speak `protocol`. */
corral_stream_server *corral_stream_server_open(const corral_listener_config *listener,
                                               const corral_stream_protocol *protocol,
                                               void *data, GError **error);
/* Disconnects every client, closes the socket and frees. */
void corral_stream_server_free(corral_stream_server *server);

/* Queues part of an answer and restarts the client's request timeout. */
void corral_stream_client_write(corral_stream_client *client, const char *data, size_t len);
/* Closes the connection once everything queued has been written. */
void corral_stream_client_finish(corral_stream_client *client);
/* Keeps the connection open, with no timeout, until the server is freed:
 * the client reads EOF when corrald has finished. */
void corral_stream_client_hold(corral_stream_client *client);
/* What the protocol remembers about a client between requests; `free`
 * (may be NULL) runs when the client is gone. */
void corral_stream_client_set_state(corral_stream_client *client, void *state,
                                    GDestroyNotify free);
void *corral_stream_client_get_state(const corral_stream_client *client);
/* The peer's uid on a unix socket (SO_PEERCRED); false over TCP. */
bool corral_stream_client_peer_uid(const corral_stream_client *client, uid_t *uid);
/* "pid=123 uid=0" on a unix socket, "192.0.2.1:4321" over TCP. */
const char *corral_stream_client_peer(const corral_stream_client *client);

#endif
