/* SPDX-License-Identifier: MIT */
#include "estimator.h"

#include <math.h>

#define USEC_PER_SEC 1e6

void queue_estimator_init(queue_estimator *est, uint64_t now_usec, uint64_t smoothing_usec)
{
    *est = (queue_estimator){
        .smoothing_usec = smoothing_usec,
        .window_start_usec = now_usec,
        .last_change_usec = now_usec,
    };
}

/* Adds the slot-time since the last change at the current count. */
static void advance(queue_estimator *est, uint64_t now_usec)
{
    if (now_usec > est->last_change_usec)
        est->busy_slot_usec += (double)est->busy_slots * (double)(now_usec - est->last_change_usec);
    est->last_change_usec = now_usec;
}

void queue_estimator_taken(queue_estimator *est, uint64_t now_usec, unsigned count)
{
    advance(est, now_usec);
    est->busy_slots += count;
    est->arrivals += count;
}

void queue_estimator_freed(queue_estimator *est, uint64_t now_usec, unsigned count)
{
    advance(est, now_usec);
    if (count > est->busy_slots)
        count = est->busy_slots; /* slots taken before the policy started */
    est->busy_slots -= count;
    est->completions += count;
}

void queue_estimator_dropped(queue_estimator *est, uint64_t now_usec, unsigned count)
{
    advance(est, now_usec);
    est->busy_slots -= count < est->busy_slots ? count : est->busy_slots;
}

void queue_estimator_tick(queue_estimator *est, uint64_t now_usec)
{
    double window, alpha;

    advance(est, now_usec);
    if (now_usec <= est->window_start_usec)
        return;
    window = (double)(now_usec - est->window_start_usec);
    alpha = 1.0 - exp(-window / (double)est->smoothing_usec);

    est->last_arrival_rate = (double)est->arrivals * USEC_PER_SEC / window;
    est->arrival_rate += alpha * (est->last_arrival_rate - est->arrival_rate);
    if (est->completions > 0) {
        double sample = est->busy_slot_usec / est->completions / USEC_PER_SEC;

        if (est->have_service_time)
            est->service_time += alpha * (sample - est->service_time);
        else
            est->service_time = sample;
        est->have_service_time = true;
        est->busy_slot_usec = 0;
    }
    est->window_start_usec = now_usec;
    est->arrivals = 0;
    est->completions = 0;
}

double queue_estimator_load(const queue_estimator *est)
{
    return est->arrival_rate * est->service_time;
}

double queue_estimator_rising_load(const queue_estimator *est)
{
    double rate = est->last_arrival_rate > est->arrival_rate ? est->last_arrival_rate
                                                             : est->arrival_rate;

    return rate * est->service_time;
}
