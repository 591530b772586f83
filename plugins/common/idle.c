/* SPDX-License-Identifier: MIT */
#include "idle.h"

#include <signal.h>

bool idle_process_is_leaving(const corral_process *proc)
{
    return proc->last_kill_usec != 0 && proc->last_kill_usec >= proc->last_status_usec;
}

bool idle_process_is_idle(const corral_service_state *state, const corral_process *proc)
{
    return proc->available_count == state->client_limit && proc->idle_since_usec != 0;
}

unsigned idle_count_available(const corral_host *host, corral_service *svc)
{
    unsigned count = 0;

    for (corral_process *p = host->process_next(svc, NULL); p != NULL;
         p = host->process_next(svc, p)) {
        if (p->available_count > 0 && !idle_process_is_leaving(p))
            count++;
    }
    return count;
}

unsigned idle_count_leaving(const corral_host *host, corral_service *svc)
{
    unsigned count = 0;

    for (corral_process *p = host->process_next(svc, NULL); p != NULL;
         p = host->process_next(svc, p)) {
        if (idle_process_is_leaving(p))
            count++;
    }
    return count;
}

bool idle_ask_longest_idle_to_leave(const corral_host *host, corral_service *svc)
{
    const corral_service_state *st = host->state(svc);
    corral_process *chosen = NULL;

    for (corral_process *p = host->process_next(svc, NULL); p != NULL;
         p = host->process_next(svc, p)) {
        if (!idle_process_is_idle(st, p) || idle_process_is_leaving(p))
            continue;
        if (chosen == NULL || p->idle_since_usec < chosen->idle_since_usec)
            chosen = p;
    }
    return chosen != NULL && host->signal(svc, chosen->pid, SIGINT);
}
