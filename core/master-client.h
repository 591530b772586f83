/* SPDX-License-Identifier: MIT */
/*
 * master-client.h - Dovecot's master socket, base_dir/master (mode 0600),
 * so that Debian's own doveadm can look into corrald:
 *
 *   doveadm -o base_dir=BASE_DIR service status [NAME...]
 *   doveadm -o base_dir=BASE_DIR process status [NAME...]
 *   doveadm -o base_dir=BASE_DIR service stop NAME...
 *
 * The protocol is Dovecot 2.3's master-client (src/master/master-client.c):
 * corrald greets with "VERSION\tmaster-server\t1\t0", the client with
 * "VERSION\tmaster-client\t1\t0"; then each command is a line of
 * tab-escaped, tab-separated words.
 *
 *   SERVICE-STATUS       one line per service, then an empty line:
 *                        name process_count process_avail process_limit
 *                        client_limit throttle_secs exit_failure_last
 *                        exit_failures_in_sec last_drop_warning
 *                        listen_pending(y/n) listening(y/n) doveadm_stop(y/n)
 *                        process_count_total
 *   PROCESS-STATUS [N..] one line per process of the named services (all
 *                        when none is named), then an empty line: name pid
 *                        available_count total_count idle_start
 *                        last_status_update last_kill_sent
 *   STOP NAME...         stops each service as corralctl service stop does;
 *                        answers "+" or "-Unknown service: NAME"
 *
 * Times are unix seconds, 0 for never.  Where corrald's accounting differs
 * from Dovecot's the fields say: throttle_secs is the length of the current
 * throttle (Dovecot shows the next, doubled one); last_drop_warning is when
 * a queued connection was last dropped.  An unknown command is logged and
 * the connection closed, as Dovecot does.
 */
#ifndef CORRAL_MASTER_CLIENT_H
#define CORRAL_MASTER_CLIENT_H

#include <glib.h>

#include "supervisor.h"

#define CORRAL_MASTER_SOCKET_NAME "master"

typedef struct corral_master_socket corral_master_socket;

corral_master_socket *corral_master_socket_open(corral_supervisor *supervisor,
                                                const char *base_dir, GError **error);
void corral_master_socket_free(corral_master_socket *master);

#endif
