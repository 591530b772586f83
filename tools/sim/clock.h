/* SPDX-License-Identifier: MIT */
/*
 * clock.h - the simulator's virtual clock and main loop.
 *
 * Everything that happens in the simulated machine is an event at an
 * instant, in microseconds.  The loop runs in iterations, as corrald's
 * GLib loop does: an iteration takes the earliest instant that has events,
 * moves the clock there and runs the events due then that existed when
 * the iteration began, in the order they were scheduled.  An event
 * scheduled for "now" from inside an iteration runs in the next one, so a
 * repeating 0 ms timer advances one step per iteration, as in GLib.
 */
#ifndef CORRAL_SIM_CLOCK_H
#define CORRAL_SIM_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

typedef void sim_event_fn(void *data);
typedef struct sim_event sim_event;
typedef struct sim_clock sim_clock;

sim_clock *sim_clock_new(uint64_t start_usec);
/* Frees the clock and every event still pending. */
void sim_clock_free(sim_clock *clock);

uint64_t sim_clock_now(const sim_clock *clock);

/* Schedules `fn(data)` at `usec` (the past means now).  The handle may be
 * cancelled until the event runs; forget it then. */
sim_event *sim_clock_at(sim_clock *clock, uint64_t usec, sim_event_fn *fn, void *data);
sim_event *sim_clock_after(sim_clock *clock, uint64_t delay_usec, sim_event_fn *fn, void *data);
/* The same, with `discard(data)` called if the event is cancelled or the
 * clock freed before it runs; a running event owns its data. */
sim_event *sim_clock_after_full(sim_clock *clock, uint64_t delay_usec, sim_event_fn *fn,
                                void *data, void (*discard)(void *data));
void sim_clock_cancel(sim_clock *clock, sim_event *event);

/* The instant of the next iteration; false if nothing is pending. */
bool sim_clock_next_instant(sim_clock *clock, uint64_t *usec);
/* Runs one iteration's events (see above); false if nothing is pending. */
bool sim_clock_run_iteration(sim_clock *clock);

#endif
