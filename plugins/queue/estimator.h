/* SPDX-License-Identifier: MIT */
/*
 * estimator.h - arrival rate and service time of a service, from its
 * status records alone.
 *
 * Every record says how many slots of one process are free.  A drop in
 * that count is clients arriving, a rise is clients leaving.  Between
 * records the number of taken slots over all processes is known, so its
 * integral over time (slot-seconds of service) is known too.  Each tick
 * closes a window and turns it into two samples:
 *
 *   arrival rate   lambda = arrivals / window length
 *   service time   S      = slot-seconds / completions   (if any completed)
 *
 * each folded into an exponentially weighted moving average whose weight
 * follows the window length: alpha = 1 - exp(-window / smoothing).  A
 * window in which nobody left carries its slot-seconds over to the next,
 * so a client served across several windows is counted whole.
 * README.md explains why the product lambda * S is what matters.
 */
#ifndef CORRAL_QUEUE_ESTIMATOR_H
#define CORRAL_QUEUE_ESTIMATOR_H

#include <stdbool.h>
#include <stdint.h>

typedef struct queue_estimator {
    uint64_t smoothing_usec;

    /* The open window. */
    uint64_t window_start_usec;
    uint64_t last_change_usec;
    unsigned busy_slots;       /* taken right now, over every process */
    double busy_slot_usec;     /* integral of busy_slots since the last
                                * window with a completion */
    unsigned arrivals, completions;

    /* The averages. */
    double arrival_rate;       /* clients per second */
    double last_arrival_rate;  /* the last window's own sample */
    double service_time;       /* seconds */
    bool have_service_time;    /* some window has seen a completion */
} queue_estimator;

void queue_estimator_init(queue_estimator *est, uint64_t now_usec, uint64_t smoothing_usec);

/* A record took `count` slots (arrivals) or freed them (completions). */
void queue_estimator_taken(queue_estimator *est, uint64_t now_usec, unsigned count);
void queue_estimator_freed(queue_estimator *est, uint64_t now_usec, unsigned count);
/* A process went with `count` slots still taken: they stop being busy
 * without completing. */
void queue_estimator_dropped(queue_estimator *est, uint64_t now_usec, unsigned count);

/* Closes the window and updates the averages. */
void queue_estimator_tick(queue_estimator *est, uint64_t now_usec);

/* lambda * S: the slots the service keeps busy on average (Little's law). */
double queue_estimator_load(const queue_estimator *est);
/* The same with the larger of the average arrival rate and the last
 * window's: it follows a rise within one window, a fall only as fast as
 * the average does. */
double queue_estimator_rising_load(const queue_estimator *est);

#endif
