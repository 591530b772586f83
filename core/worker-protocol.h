/* SPDX-License-Identifier: MIT */
/*
 * worker-protocol.h - how a service's processes are told about their
 * sockets, and what the master can learn from them.
 *
 *   dovecot  Dovecot 2.3's lib-master protocol (docs/protocol.md): the
 *            listeners from fd 7, a status pipe, the master-dead pipe.  The
 *            default.
 *   systemd  socket activation as systemd does it (sd_listen_fds(3)): the
 *            listeners from fd 3 with LISTEN_FDS, LISTEN_FDNAMES and
 *            LISTEN_PID.  No status pipe: a process counts as started when
 *            it is spawned, and its load is measured from the kernel
 *            (socket-diag.h).
 *   inetd    xinetd's wait = no, systemd's Accept=yes: the master accepts
 *            each connection and starts the program with it on fds 0 and 1
 *            (and 2 unless inetd_stderr = log).  One process per
 *            connection; process_limit caps the connections served at once.
 *
 * This file reads and checks the protocol's keys; the service carries the
 * protocol out (service.c, inetd.c).
 */
#ifndef CORRAL_WORKER_PROTOCOL_H
#define CORRAL_WORKER_PROTOCOL_H

#include <stdbool.h>

struct corral_service_config;

typedef enum corral_worker_protocol {
    CORRAL_WORKER_PROTOCOL_DOVECOT = 0,
    CORRAL_WORKER_PROTOCOL_SYSTEMD,
    CORRAL_WORKER_PROTOCOL_INETD,
} corral_worker_protocol;

typedef struct corral_protocol_config {
    corral_worker_protocol protocol;
    /* inetd only. */
    bool stderr_to_log;      /* inetd_stderr = log: fd 2 is the service's log pipe */
    unsigned per_source;     /* connections at once from one address; 0 = any */
    unsigned cps_limit;      /* connections per second before a pause; 0 = any */
    unsigned cps_wait_secs;  /* the pause */
} corral_protocol_config;

const char *corral_worker_protocol_name(corral_worker_protocol protocol);

void corral_protocol_config_init(corral_protocol_config *protocol);

/* Parses `key` when it is one of this file's keys: sets *known and returns
 * false with *problem (g_free it) on a bad value. */
bool corral_protocol_config_parse_key(corral_protocol_config *protocol, const char *key,
                                      const char *value, bool *known, char **problem);

/* Checks the combination of the protocol with the service's other keys,
 * once the group is read and its defaults applied; `explicit_keys` tells
 * which keys the file set (name -> anything).  Adjusts the limits the
 * protocol implies (inetd: one client per process).  On a conflict returns
 * false with the key to blame in *key and the reason in *problem. */
bool corral_protocol_config_check(struct corral_service_config *service,
                                  bool (*is_set)(const struct corral_service_config *service,
                                                 const char *key),
                                  const char **key, char **problem);

#endif
