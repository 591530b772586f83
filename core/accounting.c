/* SPDX-License-Identifier: MIT */
#include "accounting.h"

#define USEC_PER_SEC 1000000u

unsigned corral_account_status(corral_service_state *st, corral_process *proc, unsigned count,
                               uint64_t now_usec)
{
    unsigned old_count = proc->available_count;

    proc->last_status_usec = now_usec;
    proc->initialized = true;
    if (count < old_count) {
        proc->clients_seen += old_count - count;
        proc->idle_since_usec = 0;
    }
    if (old_count > 0 && count == 0)
        st->process_avail--;
    else if (old_count == 0 && count > 0)
        st->process_avail++;
    proc->available_count = count;
    if (count == st->client_limit && proc->idle_since_usec == 0)
        proc->idle_since_usec = now_usec;
    return old_count;
}

void corral_account_exit(corral_service_state *st, corral_process *proc, int wait_status,
                         uint64_t now_usec, corral_exit *exit)
{
    *exit = (corral_exit){
        .process = proc,
        .wait_status = wait_status,
        .success = wait_status == 0,
        .before_first_status = !proc->initialized,
    };
    if (exit->success) {
        st->have_success = true;
        st->exit_failures_in_sec = 0;
    } else if (!exit->before_first_status && !st->have_success) {
        uint64_t now_sec = now_usec / USEC_PER_SEC;

        if (st->exit_failure_last_sec != now_sec) {
            st->exit_failure_last_sec = now_sec;
            st->exit_failures_in_sec = 0;
        }
        st->exit_failures_in_sec++;
    }
    st->process_count--;
    if (proc->available_count > 0)
        st->process_avail--;
}
