/* SPDX-License-Identifier: MIT */
#include "log-limit.h"

bool corral_log_limit_allow(corral_log_limit *limit, uint64_t now_usec, uint64_t *suppressed)
{
    if (limit->window_start_usec == 0 ||
        now_usec - limit->window_start_usec >= CORRAL_LOG_LIMIT_WINDOW_USEC) {
        limit->window_start_usec = now_usec;
        limit->used = 0;
    }
    if (limit->used >= CORRAL_LOG_LIMIT_LINES) {
        limit->suppressed++;
        return false;
    }
    limit->used++;
    *suppressed = limit->suppressed;
    limit->suppressed = 0;
    return true;
}

uint64_t corral_log_limit_take_suppressed(corral_log_limit *limit)
{
    uint64_t suppressed = limit->suppressed;

    limit->suppressed = 0;
    return suppressed;
}
