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

guint64 corral_limits_master_fds(const corral_config *config)
{
    guint64 fds = CORRAL_MASTER_BASE_FDS + CORRAL_OPERATOR_FDS;

    for (guint i = 0; i < config->services->len; i++) {
        const corral_service_config *sc = g_ptr_array_index(config->services, i);
        fds += CORRAL_SERVICE_FDS + sc->listeners->len;
    }
    return fds;
}

void corral_limits_check(const corral_config *config)
{
    guint64 own_fds, worker_fds;
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
    own_fds = corral_limits_master_fds(config);
    worker_fds = (guint64)widest_client_limit + CORRAL_WORKER_SPARE_FDS;
    nofile = raise_limit(RLIMIT_NOFILE, (rlim_t)MAX(own_fds, worker_fds));
    if (nofile != RLIM_INFINITY && nofile < own_fds)
        log_warning("RLIMIT_NOFILE is %llu, below the %" G_GUINT64_FORMAT " descriptors "
                    "corrald itself may need (its services' pipes and listeners and the "
                    "operator sockets' clients): raise it (ulimit -n, or LimitNOFILE= in the "
                    "unit)", (unsigned long long)nofile, own_fds);
    if (widest != NULL && nofile != RLIM_INFINITY && nofile < worker_fds)
        log_warning("RLIMIT_NOFILE is %llu, too low for service %s's client_limit %u: raise "
                    "it (ulimit -n, or LimitNOFILE= in the unit) or lower client_limit",
                    (unsigned long long)nofile, widest, widest_client_limit);
}
