/* SPDX-License-Identifier: MIT */
/*
 * log-limit.h - a budget for log lines someone else can trigger.
 *
 * Workers (and through them anyone) can make the master log: invalid or
 * partial status records, stderr output.  Each such source gets a budget
 * of lines per window; beyond it lines are counted, not written, and the
 * count is told with the next line the budget allows, or by the owner
 * when the window is over (corral_log_limit_take_suppressed).
 */
#ifndef CORRAL_LOG_LIMIT_H
#define CORRAL_LOG_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct corral_log_limit {
    uint64_t window_start_usec;
    unsigned used;                /* lines written in this window */
    uint64_t suppressed;          /* lines held back since the last one written */
} corral_log_limit;

/* The lines a budget allows per window, and the window. */
#define CORRAL_LOG_LIMIT_LINES 10
#define CORRAL_LOG_LIMIT_WINDOW_USEC (5 * 1000000ull)

/* True when one more line may be written at `now_usec` (any monotonic
 * clock).  Then *suppressed receives how many were held back before it,
 * for the line to mention; otherwise the line is counted as held back. */
bool corral_log_limit_allow(corral_log_limit *limit, uint64_t now_usec, uint64_t *suppressed);
/* Returns the lines held back so far and forgets them. */
uint64_t corral_log_limit_take_suppressed(corral_log_limit *limit);

#endif
