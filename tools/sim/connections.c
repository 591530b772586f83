/* SPDX-License-Identifier: MIT */
#include "connections.h"

static void set_fate(sim_connections *connections, sim_connection *connection, sim_fate fate)
{
    connections->in_fate[connection->fate]--;
    connections->in_fate[fate]++;
    connection->fate = fate;
}

sim_connections *sim_connections_new(const sim_trace *trace, uint64_t epoch_usec,
                                     unsigned backlog_capacity)
{
    sim_connections *connections = g_new0(sim_connections, 1);

    connections->count = trace->entries->len;
    connections->all = g_new0(sim_connection, connections->count > 0 ? connections->count : 1);
    for (size_t i = 0; i < connections->count; i++) {
        const sim_trace_entry *entry = &g_array_index(trace->entries, sim_trace_entry, i);

        connections->all[i].arrival_usec = epoch_usec + entry->arrival_usec;
        connections->all[i].duration_usec = entry->duration_usec;
        connections->all[i].fate = SIM_FATE_PENDING;
    }
    connections->in_fate[SIM_FATE_PENDING] = (unsigned)connections->count;
    g_queue_init(&connections->backlog);
    connections->backlog_capacity = backlog_capacity;
    connections->waits_usec = g_array_new(FALSE, FALSE, sizeof(uint64_t));
    return connections;
}

void sim_connections_free(sim_connections *connections)
{
    if (connections == NULL)
        return;
    g_queue_clear(&connections->backlog);
    g_array_unref(connections->waits_usec);
    g_free(connections->all);
    g_free(connections);
}

void sim_connections_arrive(sim_connections *connections, sim_connection *connection)
{
    if (connections->backlog.length >= connections->backlog_capacity) {
        set_fate(connections, connection, SIM_FATE_REFUSED);
        return;
    }
    set_fate(connections, connection, SIM_FATE_WAITING);
    g_queue_push_tail(&connections->backlog, connection);
    if (connections->backlog.length > connections->max_queued)
        connections->max_queued = connections->backlog.length;
}

unsigned sim_connections_queued(const sim_connections *connections)
{
    return connections->backlog.length;
}

sim_connection *sim_connections_accept(sim_connections *connections, uint64_t now_usec)
{
    sim_connection *connection = g_queue_pop_head(&connections->backlog);
    uint64_t wait;

    if (connection == NULL)
        return NULL;
    wait = now_usec - connection->arrival_usec;
    g_array_append_val(connections->waits_usec, wait);
    set_fate(connections, connection, SIM_FATE_SERVING);
    return connection;
}

void sim_connections_end(sim_connections *connections, sim_connection *connection, sim_fate fate)
{
    set_fate(connections, connection, fate);
}

unsigned sim_connections_drop(sim_connections *connections, unsigned max)
{
    unsigned dropped = 0;

    while (connections->backlog.length > 0 && (max == 0 || dropped < max)) {
        set_fate(connections, g_queue_pop_head(&connections->backlog), SIM_FATE_DROPPED);
        dropped++;
    }
    return dropped;
}
