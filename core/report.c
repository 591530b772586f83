/* SPDX-License-Identifier: MIT */
#include "report.h"

#include <string.h>

#include "proc-usage.h"

int64_t corral_report_unix_time(uint64_t host_usec)
{
    int64_t ago_usec;

    if (host_usec == 0)
        return 0;
    ago_usec = (int64_t)(corral_supervisor_now_usec() - host_usec);
    return (g_get_real_time() - ago_usec) / G_USEC_PER_SEC;
}

/* doveadm's fields: the core's view, then what the policy knows better. */
static void fill_policy_view(const corral_service *svc, corral_service_report *report)
{
    corral_policy_report_fn *fill = corral_policy_module_report(svc->policy_module);
    corral_policy_report view = {
        .throttle_secs = report->throttle_secs,
        .last_drop_warning_usec = svc->last_drop_usec,
        .listen_pending = report->listen_pending,
    };

    if (fill != NULL && svc->policy_state != NULL)
        fill(svc->policy_state, &view);
    report->doveadm_throttle_secs = view.throttle_secs;
    report->last_drop_warning = corral_report_unix_time(view.last_drop_warning_usec);
    report->doveadm_listen_pending = view.listen_pending;
}

void corral_service_report_fill(const corral_service *svc, corral_service_report *report)
{
    const corral_service_state *st = &svc->state;

    memset(report, 0, sizeof(*report));
    report->name = svc->config->name;
    report->policy = svc->policy_module->name;
    report->worker_protocol = corral_worker_protocol_name(svc->config->protocol.protocol);
    report->stopped = svc->stopped_by_operator;
    report->process_count = st->process_count;
    report->process_avail = st->process_avail;
    report->process_limit = st->process_limit;
    report->client_limit = st->client_limit;
    report->process_min_avail = st->process_min_avail;

    report->throttled = st->throttled;
    if (st->throttled) {
        report->throttled_until = corral_report_unix_time(svc->throttled_until_usec);
        report->throttle_secs = (svc->throttle_msecs + 999) / 1000;
    }
    report->listening = st->listening;
    report->listen_pending = svc->monitoring && !st->stopping && !st->throttled &&
                             !st->listening && st->process_avail == 0 &&
                             st->process_count >= st->process_limit;

    fill_policy_view(svc, report);

    report->queued = corral_service_queued_clients(svc);
    report->queued_max = MAX(svc->queued_max, report->queued);
    report->process_limit_reached = svc->process_limit_reached_total;
    report->processes_spawned = svc->spawned_total;
    report->connections_dropped = svc->connections_dropped;
    report->last_drop = corral_report_unix_time(svc->last_drop_usec);
    report->exit_failures = svc->exit_failures_total;
    report->exit_failures_in_sec = st->exit_failures_in_sec;
    report->exit_failure_last =
        corral_report_unix_time(st->exit_failure_last_sec * (uint64_t)G_USEC_PER_SEC);
    report->have_success = st->have_success;
    report->status_records = svc->status_records_total;
    report->status_reads = svc->status_reads_total;
    report->listeners_recreated = svc->listeners_recreated;
    report->listeners_dead = svc->listeners_dead;
}

void corral_process_report_fill(const corral_service *svc, const corral_process_record *record,
                                corral_process_report *report)
{
    const corral_process *proc = &record->view;
    corral_proc_usage usage;

    memset(report, 0, sizeof(*report));
    report->service = svc->config->name;
    report->pid = proc->pid;
    report->available_count = proc->available_count;
    report->clients_seen = proc->clients_seen;
    report->initialized = proc->initialized;
    report->started = corral_report_unix_time(proc->created_usec);
    report->idle_since = corral_report_unix_time(proc->idle_since_usec);
    report->idle_start = corral_report_unix_time(record->idle_record_usec);
    report->last_status = corral_report_unix_time(proc->last_status_usec);
    report->last_kill = corral_report_unix_time(proc->last_kill_usec);
    report->age_secs = (corral_supervisor_now_usec() - proc->created_usec) / G_USEC_PER_SEC;
    (void)corral_proc_usage_read(proc->pid, &usage);
    report->rss_bytes = usage.rss_bytes;
    report->cpu_usecs = usage.cpu_usecs;
}

corral_service *corral_report_find_service(corral_supervisor *supervisor, const char *name)
{
    GPtrArray *services = corral_supervisor_services(supervisor);

    for (guint i = 0; i < services->len; i++) {
        corral_service *svc = g_ptr_array_index(services, i);
        if (strcmp(svc->config->name, name) == 0)
            return svc;
    }
    return NULL;
}
