/* SPDX-License-Identifier: MIT */
/*
 * ctl-client.h - corralctl's side of the control socket (control.h has the
 * protocol), and how corralctl fails.
 *
 * Every failure ends the program with one of the exit codes below, which
 * corralctl(1) documents.  Under --json the failure is printed on stdout
 * as the same {"error": {"kind", "message"}} object corrald answers with,
 * so that a script reads one format whatever happened.
 */
#ifndef CORRAL_CTL_CLIENT_H
#define CORRAL_CTL_CLIENT_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAILED = 1,          /* corrald refused or failed the command */
    CTL_EXIT_USAGE = 2,
    CTL_EXIT_NOT_RUNNING = 3,     /* no control socket, or nobody listening on it */
    CTL_EXIT_PERMISSION = 4,      /* the socket, or the command, is not ours to use */
    CTL_EXIT_UNKNOWN_SERVICE = 5,
    CTL_EXIT_CONFIG = 6,          /* the configuration file cannot be read */
};

#define CTL_ANSWER_TIMEOUT_MSECS 15000
/* A reload builds every service; shutdown waits up to 5 s for workers. */
#define CTL_SLOW_ANSWER_TIMEOUT_MSECS 60000

/* Set by --json: failures are printed as JSON. */
extern bool ctl_json;

/* Prints the failure (to stderr, or as JSON on stdout) and exits with
 * `code`.  `kind` is one of control.h's error kinds or "not-running",
 * "config". */
void ctl_die(int code, const char *kind, const char *format, ...) G_GNUC_PRINTF(3, 4)
    G_GNUC_NORETURN;

/* Connects to the control socket at `path`; fails with the matching code. */
int ctl_connect(const char *path);
void ctl_send(int fd, const char *path, const char *request);
/* Reads until corrald closes the connection or `timeout_msecs` pass;
 * false on timeout.  `into` may be NULL to discard what comes. */
bool ctl_read_until_eof(int fd, const char *path, GString *into, int timeout_msecs);
/* The answer's first line as an object; *parser owns it.  An error answer
 * ends the program with its exit code. */
JsonObject *ctl_parse_answer(const GString *text, const char *path, JsonParser **parser);

/* One whole exchange: sends `request` (a line ending in "\n"), reads the
 * answer and returns it; g_object_unref(*parser) when done. */
JsonObject *ctl_request(const char *path, const char *request, int timeout_msecs,
                        JsonParser **parser);

#endif
