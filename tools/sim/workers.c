/* SPDX-License-Identifier: MIT */
#include "workers.h"

#include <glib.h>
#include <signal.h>

#define USEC_PER_SEC 1000000u
#define STATUS_DELAY_USEC 1000000u /* the library's one record a second */
#define UNLIMITED G_MAXUINT

typedef struct sim_worker sim_worker;

/* One client in service, until its duration is over. */
typedef struct sim_client {
    sim_worker *worker;
    sim_connection *connection;
    sim_event *done;
} sim_client;

struct sim_worker {
    sim_workers *workers;
    pid_t pid;
    bool up;               /* has sent its first record */
    bool watching;         /* waits on the listeners */
    uint64_t watch_seq;    /* its place in the listeners' wait queue */
    unsigned total, available, left;
    unsigned last_sent;
    uint64_t last_sent_sec;
    sim_event *startup;
    sim_event *status_timer;
    GPtrArray *clients;    /* sim_client* */
};

struct sim_workers {
    sim_clock *clock;
    sim_connections *connections;
    sim_worker_settings settings;
    sim_worker_listener listener;
    GHashTable *by_pid;    /* pid -> sim_worker* */
    uint64_t next_watch_seq;
    unsigned busy_slots;
};

/* A status record or an exit on its way to the master. */
typedef struct sim_message {
    sim_workers *workers;
    pid_t pid;
    unsigned value;        /* available count, or wait status */
} sim_message;

static void deliver_status(void *data)
{
    sim_message *message = data;
    const sim_worker_listener *listener = &message->workers->listener;

    listener->status(listener->context, message->pid, message->value);
    g_free(message);
}

static void deliver_exit(void *data)
{
    sim_message *message = data;
    const sim_worker_listener *listener = &message->workers->listener;

    listener->exited(listener->context, message->pid, (int)message->value);
    g_free(message);
}

static void send_message(sim_worker *worker, sim_event_fn *deliver, unsigned value)
{
    sim_message *message = g_new(sim_message, 1);

    message->workers = worker->workers;
    message->pid = worker->pid;
    message->value = value;
    sim_clock_after_full(worker->workers->clock, 0, deliver, message, g_free);
}

static uint64_t now_sec(const sim_worker *worker)
{
    return sim_clock_now(worker->workers->clock) / USEC_PER_SEC;
}

/* ------------------------------------------------------------------ */
/* Life and death.                                                     */

static void free_worker(gpointer data)
{
    sim_worker *worker = data;
    sim_clock *clock = worker->workers->clock;

    if (worker->startup != NULL)
        sim_clock_cancel(clock, worker->startup);
    if (worker->status_timer != NULL)
        sim_clock_cancel(clock, worker->status_timer);
    for (guint i = 0; i < worker->clients->len; i++) {
        sim_client *client = g_ptr_array_index(worker->clients, i);
        sim_clock_cancel(clock, client->done);
    }
    g_ptr_array_unref(worker->clients);
    g_free(worker);
}

/* The process ends: its clients are cut off and the master will reap it. */
static void worker_exit(sim_worker *worker, int wait_status)
{
    sim_workers *workers = worker->workers;

    for (guint i = 0; i < worker->clients->len; i++) {
        sim_client *client = g_ptr_array_index(worker->clients, i);
        sim_connections_end(workers->connections, client->connection, SIM_FATE_ABORTED);
        workers->busy_slots--;
    }
    send_message(worker, deliver_exit, (unsigned)wait_status);
    g_hash_table_remove(workers->by_pid, GINT_TO_POINTER(worker->pid));
}

/* ------------------------------------------------------------------ */
/* Status records, rate-limited as the library does.                    */

static void update_status(sim_worker *worker);

static void status_timeout(void *data)
{
    sim_worker *worker = data;

    worker->status_timer = NULL;
    update_status(worker);
}

static void send_status(sim_worker *worker)
{
    send_message(worker, deliver_status, worker->available);
    worker->last_sent = worker->available;
    worker->last_sent_sec = now_sec(worker);
}

static void update_status(sim_worker *worker)
{
    if (worker->available == worker->last_sent) {
        if (worker->status_timer != NULL) {
            sim_clock_cancel(worker->workers->clock, worker->status_timer);
            worker->status_timer = NULL;
        }
        return;
    }
    /* "Full" and "no longer full" matter to the master at once. */
    if (worker->available == 0 || worker->last_sent == 0 ||
        now_sec(worker) != worker->last_sent_sec) {
        send_status(worker);
    } else if (worker->status_timer == NULL) {
        worker->status_timer =
            sim_clock_after(worker->workers->clock, STATUS_DELAY_USEC, status_timeout, worker);
    }
}

/* ------------------------------------------------------------------ */
/* Clients.                                                            */

static void watch(sim_worker *worker)
{
    if (!worker->watching) {
        worker->watching = true;
        worker->watch_seq = worker->workers->next_watch_seq++;
    }
}

static void client_done(void *data);

static bool accept_one(sim_worker *worker)
{
    sim_workers *workers = worker->workers;
    sim_connection *connection = sim_connections_accept(workers->connections,
                                                        sim_clock_now(workers->clock));
    sim_client *client;

    if (connection == NULL)
        return false;
    worker->available--;
    if (worker->available == 0)
        worker->watching = false;
    update_status(worker);

    client = g_new(sim_client, 1);
    client->worker = worker;
    client->connection = connection;
    client->done = sim_clock_after(workers->clock, connection->duration_usec, client_done, client);
    g_ptr_array_add(worker->clients, client);
    workers->busy_slots++;
    return true;
}

/* The library's "on client finished", service_count included. */
static void client_done(void *data)
{
    sim_client *client = data;
    sim_worker *worker = client->worker;
    sim_workers *workers = worker->workers;

    sim_connections_end(workers->connections, client->connection, SIM_FATE_SERVED);
    workers->busy_slots--;
    g_ptr_array_remove_fast(worker->clients, client); /* frees it */

    if (worker->left != UNLIMITED && worker->left == worker->total) {
        worker->total--;
        worker->left--;
    } else {
        if (worker->left != UNLIMITED)
            worker->left--;
        worker->available++;
    }
    if (worker->left == 0) {
        worker_exit(worker, 0);
        return;
    }
    if (worker->available > 0)
        watch(worker);
    update_status(worker);
    sim_workers_dispatch(workers);
}

static void worker_up(void *data)
{
    sim_worker *worker = data;

    worker->startup = NULL;
    worker->up = true;
    send_status(worker);
    if (worker->available > 0)
        watch(worker);
    sim_workers_dispatch(worker->workers);
}

/* ------------------------------------------------------------------ */
/* The interface.                                                       */

sim_workers *sim_workers_new(sim_clock *clock, sim_connections *connections,
                             const sim_worker_settings *settings,
                             const sim_worker_listener *listener)
{
    sim_workers *workers = g_new0(sim_workers, 1);

    workers->clock = clock;
    workers->connections = connections;
    workers->settings = *settings;
    workers->listener = *listener;
    workers->by_pid = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, free_worker);
    return workers;
}

void sim_workers_free(sim_workers *workers)
{
    if (workers == NULL)
        return;
    g_hash_table_destroy(workers->by_pid);
    g_free(workers);
}

void sim_workers_start(sim_workers *workers, pid_t pid)
{
    sim_worker *worker = g_new0(sim_worker, 1);
    unsigned count = workers->settings.service_count;

    worker->workers = workers;
    worker->pid = pid;
    worker->total = count != 0 && count < workers->settings.client_limit
                        ? count : workers->settings.client_limit;
    worker->available = worker->total;
    worker->left = count != 0 ? count : UNLIMITED;
    worker->clients = g_ptr_array_new_with_free_func(g_free);
    worker->startup = sim_clock_after(workers->clock, workers->settings.startup_usec, worker_up,
                                      worker);
    g_hash_table_insert(workers->by_pid, GINT_TO_POINTER(pid), worker);
}

bool sim_workers_signal(sim_workers *workers, pid_t pid, int signo)
{
    sim_worker *worker = g_hash_table_lookup(workers->by_pid, GINT_TO_POINTER(pid));

    if (worker == NULL)
        return false;
    if (!worker->up) {
        worker_exit(worker, signo); /* the default action: killed by it */
        return true;
    }
    switch (signo) {
    case SIGINT:
        if (worker->available == worker->total)
            worker_exit(worker, 0);
        break;
    case SIGTERM:
        worker_exit(worker, 0);
        break;
    case SIGUSR1:
        if (!workers->settings.login)
            worker_exit(worker, SIGUSR1);
        break;
    default:
        worker_exit(worker, signo);
        break;
    }
    return true;
}

/* The worker that has watched the longest, among those that can take a
 * client. */
static sim_worker *next_acceptor(const sim_workers *workers)
{
    sim_worker *best = NULL;
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, workers->by_pid);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        sim_worker *worker = value;

        if (worker->watching && worker->available > 0 &&
            (best == NULL || worker->watch_seq < best->watch_seq))
            best = worker;
    }
    return best;
}

void sim_workers_dispatch(sim_workers *workers)
{
    sim_worker *worker;

    while (sim_connections_queued(workers->connections) > 0 &&
           (worker = next_acceptor(workers)) != NULL) {
        /* The library's accept loop: as many as it has slots for. */
        while (worker->available > 0 && accept_one(worker))
            ;
    }
}

unsigned sim_workers_busy_slots(const sim_workers *workers)
{
    return workers->busy_slots;
}
