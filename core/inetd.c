/* SPDX-License-Identifier: MIT */
#include "inetd.h"

#include <errno.h>
#include <glib.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "service.h"
#include "supervisor.h"
#include "toggle-watch.h"

/* Connections taken per wakeup of one listener, so that other services
 * and the reaper get their turn under a flood. */
#define ACCEPT_BATCH 16
/* Out of descriptors: accepting pauses this long rather than spin. */
#define FD_SHORTAGE_PAUSE_MSECS 100
/* A spawn that failed (the program is missing, say) would fail again for
 * the next client: accepting pauses, so that clients wait in the backlog
 * and the failure is logged about once a second rather than per client. */
#define SPAWN_FAILURE_PAUSE_MSECS 1000

typedef struct inetd_watch {
    struct corral_inetd *inetd;
    int fd;
    corral_toggle_watch *watch;
} inetd_watch;

struct corral_inetd {
    corral_service *svc;
    GPtrArray *watches;           /* inetd_watch*, one per listener */
    GHashTable *source_of_pid;    /* pid -> address (char*) */
    GHashTable *count_of_source;  /* address -> connections now (uint) */
    uint64_t cps_second;
    unsigned cps_count;
    guint pause_timer;
    uint64_t last_refusal_log_sec;
    unsigned refusals_unlogged;
};

#define inetd_log(inetd, level, fmt, ...) \
    corral_log(level, "service(%s): " fmt, (inetd)->svc->config->name, ##__VA_ARGS__)

static void watch_free(gpointer data)
{
    inetd_watch *watch = data;

    corral_toggle_watch_free(watch->watch);
    g_free(watch);
}

corral_inetd *corral_inetd_new(corral_service *svc)
{
    corral_inetd *inetd = g_new0(corral_inetd, 1);

    inetd->svc = svc;
    inetd->watches = g_ptr_array_new_with_free_func(watch_free);
    inetd->source_of_pid = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    inetd->count_of_source = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return inetd;
}

void corral_inetd_free(corral_inetd *inetd)
{
    if (inetd == NULL)
        return;
    if (inetd->pause_timer != 0)
        g_source_remove(inetd->pause_timer);
    g_ptr_array_unref(inetd->watches);
    g_hash_table_unref(inetd->source_of_pid);
    g_hash_table_unref(inetd->count_of_source);
    g_free(inetd);
}

static bool below_limit(const corral_inetd *inetd)
{
    const corral_service_state *st = &inetd->svc->state;

    return st->process_count < st->process_limit;
}

static bool may_accept(const corral_inetd *inetd)
{
    const corral_service_state *st = &inetd->svc->state;

    return inetd->svc->monitoring && !st->stopping && !st->throttled &&
           inetd->pause_timer == 0 && !corral_supervisor_is_stopping(inetd->svc->supervisor);
}

/* Refusals are triggered by clients: one line a second at most. */
static void log_refusal(corral_inetd *inetd, const char *what, const char *source)
{
    uint64_t now_sec = corral_supervisor_now_usec() / G_USEC_PER_SEC;

    if (now_sec == inetd->last_refusal_log_sec) {
        inetd->refusals_unlogged++;
        return;
    }
    inetd_log(inetd, CORRAL_LEVEL_WARNING, "connection from %s refused: %s%s", source, what,
              inetd->refusals_unlogged > 0 ? " (and earlier refusals not logged)" : "");
    inetd->last_refusal_log_sec = now_sec;
    inetd->refusals_unlogged = 0;
}

static void count_drop(corral_inetd *inetd)
{
    inetd->svc->connections_dropped++;
    inetd->svc->last_drop_usec = corral_supervisor_now_usec();
}

static gboolean on_pause_over(gpointer data)
{
    corral_inetd *inetd = data;

    inetd->pause_timer = 0;
    corral_inetd_update(inetd);
    return G_SOURCE_REMOVE;
}

static void pause_accepting(corral_inetd *inetd, unsigned msecs)
{
    if (inetd->pause_timer == 0)
        inetd->pause_timer = g_timeout_add(msecs, on_pause_over, inetd);
    corral_inetd_update(inetd);
}

/* xinetd's cps: more than RATE connections within one second pause the
 * service for WAIT seconds. */
static bool cps_allows(corral_inetd *inetd)
{
    const corral_protocol_config *protocol = &inetd->svc->config->protocol;
    uint64_t now_sec = corral_supervisor_now_usec() / G_USEC_PER_SEC;

    if (protocol->cps_limit == 0)
        return true;
    if (now_sec != inetd->cps_second) {
        inetd->cps_second = now_sec;
        inetd->cps_count = 0;
    }
    if (++inetd->cps_count <= protocol->cps_limit)
        return true;
    inetd_log(inetd, CORRAL_LEVEL_WARNING,
              "more than %u connections per second (cps): not accepting for %u seconds",
              protocol->cps_limit, protocol->cps_wait_secs);
    pause_accepting(inetd, protocol->cps_wait_secs * 1000u);
    return false;
}

static void address_text(const struct sockaddr *addr, socklen_t len, char *host,
                         size_t host_size, char *port, size_t port_size)
{
    if ((addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
        getnameinfo(addr, len, host, (socklen_t)host_size, port, (socklen_t)port_size,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        g_strlcpy(host, "", host_size);
        g_strlcpy(port, "", port_size);
    }
}

/* The variables xinetd (REMOTE_*) and tcpserver (TCP*, PROTO) set. */
static char **connection_environment(int fd, const struct sockaddr *peer, socklen_t peer_len,
                                     const char *remote_ip, const char *remote_port)
{
    struct sockaddr_storage local;
    socklen_t local_len = sizeof(local);
    char local_ip[NI_MAXHOST], local_port[NI_MAXSERV];
    GPtrArray *env = g_ptr_array_new();

    if (peer->sa_family == AF_UNIX) {
        g_ptr_array_add(env, g_strdup("PROTO=UNIX"));
    } else {
        if (getsockname(fd, (struct sockaddr *)&local, &local_len) == 0)
            address_text((struct sockaddr *)&local, local_len, local_ip, sizeof(local_ip),
                         local_port, sizeof(local_port));
        else
            local_ip[0] = local_port[0] = '\0';
        (void)peer_len;
        g_ptr_array_add(env, g_strdup("PROTO=TCP"));
        g_ptr_array_add(env, g_strdup_printf("REMOTE_ADDR=%s", remote_ip));
        g_ptr_array_add(env, g_strdup_printf("REMOTE_PORT=%s", remote_port));
        g_ptr_array_add(env, g_strdup_printf("TCPREMOTEIP=%s", remote_ip));
        g_ptr_array_add(env, g_strdup_printf("TCPREMOTEPORT=%s", remote_port));
        g_ptr_array_add(env, g_strdup_printf("TCPLOCALIP=%s", local_ip));
        g_ptr_array_add(env, g_strdup_printf("TCPLOCALPORT=%s", local_port));
    }
    g_ptr_array_add(env, NULL);
    return (char **)g_ptr_array_free(env, FALSE);
}

/* Starts a process for one accepted connection, or refuses it; closes the
 * master's copy either way. */
static bool serve(corral_inetd *inetd, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    const corral_protocol_config *protocol = &inetd->svc->config->protocol;
    char remote_ip[NI_MAXHOST], remote_port[NI_MAXSERV];
    const char *source;
    unsigned from_source;
    char **env;
    bool setup_failed;
    pid_t pid;

    address_text(peer, peer_len, remote_ip, sizeof(remote_ip), remote_port,
                 sizeof(remote_port));
    source = remote_ip[0] != '\0' ? remote_ip : "local";
    if (!cps_allows(inetd)) {
        count_drop(inetd);
        close(fd);
        return false;
    }
    from_source = GPOINTER_TO_UINT(g_hash_table_lookup(inetd->count_of_source, source));
    if (protocol->per_source > 0 && from_source >= protocol->per_source) {
        count_drop(inetd);
        log_refusal(inetd, "per_source limit reached", source);
        close(fd);
        return false;
    }
    env = connection_environment(fd, peer, peer_len, remote_ip, remote_port);
    pid = corral_service_spawn_connection(inetd->svc, fd, env, &setup_failed);
    g_strfreev(env);
    close(fd);
    if (pid <= 0) {
        pause_accepting(inetd, SPAWN_FAILURE_PAUSE_MSECS);
        return false;
    }
    /* The process exists and is about to exit 84 or 89: it is counted as
     * any other until reaped, and the next client would fail the same way. */
    if (setup_failed)
        pause_accepting(inetd, SPAWN_FAILURE_PAUSE_MSECS);
    g_hash_table_replace(inetd->count_of_source, g_strdup(source),
                         GUINT_TO_POINTER(from_source + 1));
    g_hash_table_replace(inetd->source_of_pid, GINT_TO_POINTER(pid), g_strdup(source));
    return true;
}

/* Accepts one connection from `fd`: 1 served or refused, 0 none waits,
 * -1 accepting must pause. */
static int accept_one(corral_inetd *inetd, int listen_fd, bool *spawned)
{
    struct sockaddr_storage peer;
    socklen_t peer_len = sizeof(peer);
    int fd = accept4(listen_fd, (struct sockaddr *)&peer, &peer_len, SOCK_CLOEXEC);

    *spawned = false;
    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
            errno == ECONNABORTED)
            return 0;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            log_refusal(inetd, g_strerror(errno), "the listen queue");
            pause_accepting(inetd, FD_SHORTAGE_PAUSE_MSECS);
            return -1;
        }
        inetd_log(inetd, CORRAL_LEVEL_ERROR, "accept() failed: %s", g_strerror(errno));
        pause_accepting(inetd, FD_SHORTAGE_PAUSE_MSECS);
        return -1;
    }
    *spawned = serve(inetd, fd, (struct sockaddr *)&peer, peer_len);
    return 1;
}

static void on_readable(void *data)
{
    inetd_watch *watch = data;
    corral_inetd *inetd = watch->inetd;
    bool spawned;

    if (!below_limit(inetd)) {
        /* At the limit the policy decides what the waiting client gets. */
        corral_service_client_waiting(inetd->svc);
    } else {
        for (int i = 0; i < ACCEPT_BATCH && below_limit(inetd) && may_accept(inetd); i++) {
            if (accept_one(inetd, watch->fd, &spawned) <= 0)
                break;
        }
    }
    corral_inetd_update(inetd);
}

/* One watch per listener; the listeners change when an operator stops and
 * starts the service. */
static void sync_watches(corral_inetd *inetd)
{
    GPtrArray *listeners = inetd->svc->listeners;
    bool same = inetd->watches->len == listeners->len;

    for (guint i = 0; same && i < listeners->len; i++) {
        const corral_listener *listener = g_ptr_array_index(listeners, i);
        same = ((inetd_watch *)g_ptr_array_index(inetd->watches, i))->fd == listener->fd;
    }
    if (same)
        return;
    g_ptr_array_set_size(inetd->watches, 0);
    for (guint i = 0; i < listeners->len; i++) {
        const corral_listener *listener = g_ptr_array_index(listeners, i);
        inetd_watch *watch = g_new0(inetd_watch, 1);

        watch->inetd = inetd;
        watch->fd = listener->fd;
        watch->watch = corral_toggle_watch_new(listener->fd, on_readable, watch);
        g_ptr_array_add(inetd->watches, watch);
    }
}

void corral_inetd_update(corral_inetd *inetd)
{
    bool on = may_accept(inetd) && (below_limit(inetd) || inetd->svc->state.listening);

    sync_watches(inetd);
    for (guint i = 0; i < inetd->watches->len; i++)
        corral_toggle_watch_set(((inetd_watch *)g_ptr_array_index(inetd->watches, i))->watch, on);
}

bool corral_inetd_spawn_one(corral_inetd *inetd)
{
    bool spawned = false;

    sync_watches(inetd);
    for (guint i = 0; i < inetd->watches->len && !spawned; i++) {
        inetd_watch *watch = g_ptr_array_index(inetd->watches, i);
        if (accept_one(inetd, watch->fd, &spawned) < 0)
            break;
    }
    corral_inetd_update(inetd);
    return spawned;
}

void corral_inetd_process_exited(corral_inetd *inetd, pid_t pid)
{
    const char *source = g_hash_table_lookup(inetd->source_of_pid, GINT_TO_POINTER(pid));
    unsigned count;

    if (source == NULL)
        return;
    count = GPOINTER_TO_UINT(g_hash_table_lookup(inetd->count_of_source, source));
    if (count <= 1)
        g_hash_table_remove(inetd->count_of_source, source);
    else
        g_hash_table_replace(inetd->count_of_source, g_strdup(source),
                             GUINT_TO_POINTER(count - 1));
    g_hash_table_remove(inetd->source_of_pid, GINT_TO_POINTER(pid));
}
