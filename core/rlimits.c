/* SPDX-License-Identifier: MIT */
#include "rlimits.h"

#include <errno.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

/* Raises `resource` to at least `wanted` where allowed; returns the soft
 * limit in force afterwards. */
static rlim_t raise_limit(int resource, rlim_t wanted)
{
    struct rlimit limit;

    if (getrlimit(resource, &limit) < 0)
        return RLIM_INFINITY;
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= wanted)
        return limit.rlim_cur;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted && geteuid() == 0)
        limit.rlim_max = wanted;
    limit.rlim_cur = limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= wanted
                         ? wanted : limit.rlim_max;
    if (setrlimit(resource, &limit) < 0) {
        log_warning("setrlimit() failed: %s", g_strerror(errno));
        getrlimit(resource, &limit);
    }
    return limit.rlim_cur;
}

void corral_limits_check(const corral_config *config)
{
    guint64 processes = 1; /* corrald itself */
    unsigned widest_client_limit = 0;
    const char *widest = NULL;
    rlim_t nproc, nofile;

    for (guint i = 0; i < config->services->len; i++) {
        const corral_service_config *sc = g_ptr_array_index(config->services, i);
        processes += sc->process_limit;
        if (sc->client_limit > widest_client_limit) {
            widest_client_limit = sc->client_limit;
            widest = sc->name;
        }
    }
    nproc = raise_limit(RLIMIT_NPROC, (rlim_t)processes);
    if (nproc != RLIM_INFINITY && nproc < processes)
        log_warning("RLIMIT_NPROC is %llu, below the %" G_GUINT64_FORMAT " processes the "
                    "services may run (the sum of process_limit, plus corrald): raise it "
                    "(ulimit -u, or LimitNPROC= in the unit) or lower process_limit",
                    (unsigned long long)nproc, processes);
    if (widest == NULL)
        return;
    nofile = raise_limit(RLIMIT_NOFILE, (rlim_t)widest_client_limit + CORRAL_WORKER_SPARE_FDS);
    if (nofile != RLIM_INFINITY && nofile < (rlim_t)widest_client_limit + CORRAL_WORKER_SPARE_FDS)
        log_warning("RLIMIT_NOFILE is %llu, too low for service %s's client_limit %u: raise "
                    "it (ulimit -n, or LimitNOFILE= in the unit) or lower client_limit",
                    (unsigned long long)nofile, widest, widest_client_limit);
}
