/* SPDX-License-Identifier: MIT */
#include "orphans.h"

#include <glib.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "log.h"

static uint64_t reaped_total;
static int64_t last_line_usec;
static bool logged_once;

/* Asked each time rather than once: a wrapper may make corrald a subreaper
 * before exec, and the answer costs one system call per stray pid. */
static bool adopts_orphans(void)
{
    int subreaper = 0;

    return getpid() == 1 || (prctl(PR_GET_CHILD_SUBREAPER, &subreaper) == 0 && subreaper != 0);
}

void corral_orphans_reaped(pid_t pid)
{
    int64_t now;

    if (!adopts_orphans()) {
        log_error("waitpid() returned unknown PID %d", (int)pid);
        return;
    }
    reaped_total++;
    now = g_get_monotonic_time();
    if (!logged_once || now - last_line_usec >= G_USEC_PER_SEC) {
        log_debug("reaped PID %d, an adopted orphan (%" PRIu64 " reaped so far)", (int)pid,
                  reaped_total);
        last_line_usec = now;
        logged_once = true;
    }
}
