/* SPDX-License-Identifier: MIT */
#include "load-sampler.h"

#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#include "listener.h"
#include "log.h"
#include "service.h"
#include "socket-diag.h"

/* A process group deeper or wider than this is not walked further. */
#define MAX_GROUP_PROCESSES 4096

struct corral_load_sampler {
    corral_service *svc;
    unsigned interval_msecs;
    guint timer;
    bool warned;
};

static gboolean on_tick(gpointer data);

static void arm(corral_load_sampler *sampler)
{
    if (sampler->timer != 0)
        g_source_remove(sampler->timer);
    sampler->timer = g_timeout_add(sampler->interval_msecs, on_tick, sampler);
}

corral_load_sampler *corral_load_sampler_new(corral_service *svc)
{
    corral_load_sampler *sampler = g_new0(corral_load_sampler, 1);

    sampler->svc = svc;
    sampler->interval_msecs = CORRAL_LOAD_SAMPLE_DEFAULT_MSECS;
    arm(sampler);
    return sampler;
}

void corral_load_sampler_free(corral_load_sampler *sampler)
{
    if (sampler == NULL)
        return;
    if (sampler->timer != 0)
        g_source_remove(sampler->timer);
    g_free(sampler);
}

void corral_load_sampler_set_interval(corral_load_sampler *sampler, unsigned msecs)
{
    unsigned wanted = msecs == 0 ? CORRAL_LOAD_SAMPLE_DEFAULT_MSECS
                                 : CLAMP(msecs, CORRAL_LOAD_SAMPLE_MIN_MSECS,
                                         CORRAL_LOAD_SAMPLE_MAX_MSECS);

    if (wanted == sampler->interval_msecs)
        return;
    sampler->interval_msecs = wanted;
    arm(sampler);
}

unsigned corral_load_sampler_interval(const corral_load_sampler *sampler)
{
    return sampler->interval_msecs;
}

/* Adds the children of every thread of `pid` to `pids`. */
static void add_children(pid_t pid, GArray *pids)
{
    char path[64];
    DIR *tasks;
    struct dirent *task;

    g_snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    tasks = opendir(path);
    if (tasks == NULL)
        return;
    while ((task = readdir(tasks)) != NULL && pids->len < MAX_GROUP_PROCESSES) {
        char children_path[96];
        FILE *children;
        long child;

        if (task->d_name[0] == '.')
            continue;
        g_snprintf(children_path, sizeof(children_path), "/proc/%d/task/%s/children",
                   (int)pid, task->d_name);
        children = fopen(children_path, "re");
        if (children == NULL)
            continue;
        while (fscanf(children, "%ld", &child) == 1 && pids->len < MAX_GROUP_PROCESSES) {
            pid_t child_pid = (pid_t)child;
            g_array_append_val(pids, child_pid);
        }
        fclose(children);
    }
    closedir(tasks);
}

/* The connections held by `leader` and everything it forked. */
static unsigned count_connections(pid_t leader, GHashTable *inodes)
{
    GHashTable *seen = corral_socket_inode_set_new();
    GArray *pids = g_array_new(FALSE, FALSE, sizeof(pid_t));
    unsigned total = 0;

    g_array_append_val(pids, leader);
    for (guint i = 0; i < pids->len; i++) {
        pid_t pid = g_array_index(pids, pid_t, i);
        total += corral_socket_count_held(pid, inodes, seen);
        add_children(pid, pids);
    }
    g_array_free(pids, TRUE);
    g_hash_table_unref(seen);
    return total;
}

void corral_load_sampler_sample(corral_load_sampler *sampler)
{
    corral_service *svc = sampler->svc;
    GArray *ports = g_array_new(FALSE, FALSE, sizeof(guint16));
    GHashTable *inodes;

    for (guint i = 0; i < svc->listeners->len; i++) {
        const corral_listener *listener = g_ptr_array_index(svc->listeners, i);
        if (listener->config->kind == CORRAL_LISTENER_INET)
            g_array_append_val(ports, listener->config->port);
    }
    inodes = corral_socket_inode_set_new();
    if (!corral_socket_diag_established((guint16 *)(void *)ports->data, ports->len, inodes)) {
        if (!sampler->warned)
            corral_log(CORRAL_LEVEL_WARNING,
                       "service(%s): cannot measure connections (sock_diag): %s",
                       svc->config->name, g_strerror(errno));
        sampler->warned = true;
    } else {
        /* Counting may end in a policy's status_changed, which may spawn
         * or signal: take the records first. */
        GPtrArray *records = g_ptr_array_new();
        for (GList *link = svc->processes.head; link != NULL; link = link->next)
            g_ptr_array_add(records, link->data);
        for (guint i = 0; i < records->len; i++) {
            corral_process_record *record = g_ptr_array_index(records, i);
            pid_t pid = record->view.pid;
            unsigned connections = count_connections(pid, inodes);
            /* A policy callback may have reaped nothing (the reaper runs
             * on its own), so the record is still valid. */
            corral_service_measured_load(svc, record, connections);
        }
        g_ptr_array_free(records, TRUE);
    }
    g_hash_table_unref(inodes);
    g_array_free(ports, TRUE);
}

static gboolean on_tick(gpointer data)
{
    corral_load_sampler *sampler = data;

    corral_load_sampler_sample(sampler);
    return G_SOURCE_CONTINUE;
}
