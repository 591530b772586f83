/* SPDX-License-Identifier: MIT */
/*
 * control.h - corralctl's control socket, base_dir/corral.sock (mode 0600).
 *
 * A client sends one request: a command and its arguments separated by
 * tabs, ending with "\n".  corrald answers with one JSON object, then
 * closes the connection.  A successful answer carries the command's data;
 * a refused one is {"error": {"kind": KIND, "message": TEXT}}, where KIND
 * is one of the CORRAL_CONTROL_ERROR_* strings below.
 *
 *   status [NAME...]           {"services": [SERVICE...]}
 *   processes [NAME...]        {"processes": [PROCESS...]}
 *   metrics                    {"metrics": "Prometheus text exposition"}
 *   reload                     {"reloaded": true}
 *   stop                       {"stopping": true}; the connection then stays
 *                              open until corrald exits
 *   service-stop NAME...       {"stopped": [NAME...]}
 *   service-start NAME...      {"started": [NAME...]}
 *   kill NAME SIGNO            {"service": NAME, "signal": "SIGTERM",
 *                               "signalled": COUNT}
 *
 * SERVICE and PROCESS objects carry the facts of corral_service_report and
 * corral_process_report (report.h); docs/operations.md names every field.
 * Times are unix seconds, or null for never.
 */
#ifndef CORRAL_CONTROL_H
#define CORRAL_CONTROL_H

#include <glib.h>

#include "supervisor.h"

#define CORRAL_CONTROL_SOCKET_NAME "corral.sock"

#define CORRAL_CONTROL_ERROR_USAGE "usage"              /* malformed request */
#define CORRAL_CONTROL_ERROR_UNKNOWN_SERVICE "unknown-service"
#define CORRAL_CONTROL_ERROR_FAILED "failed"            /* the command failed */
#define CORRAL_CONTROL_ERROR_PERMISSION "permission"    /* read-only client, changing command */

typedef struct corral_control corral_control;

/* Opens base_dir/corral.sock and serves it on the main loop.  The socket
 * is mode 0600; with a `control_group` (may be NULL) it is 0660 and owned
 * by that group, whose members may run the commands that only read
 * (status, processes, journal, metrics).  Every other command needs the
 * uid corrald runs as, or root; others are refused with "permission". */
corral_control *corral_control_open(corral_supervisor *supervisor, const char *base_dir,
                                    const char *control_group, GError **error);
/* Closes the socket; clients still connected (a waiting "stop") read EOF. */
void corral_control_free(corral_control *control);

#endif
