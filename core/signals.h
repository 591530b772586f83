/* SPDX-License-Identifier: MIT */
/*
 * signals.h - the master's signals as main-loop events.
 *
 * SIGCHLD, SIGTERM, SIGINT, SIGHUP and SIGUSR1 are blocked and read from
 * one signalfd, so they are handled between events, never inside a signal
 * handler, and the sender of a SIGTERM is known for the log.
 */
#ifndef CORRAL_SIGNALS_H
#define CORRAL_SIGNALS_H

#include <glib.h>
#include <stdbool.h>
#include <sys/signalfd.h>

typedef void corral_signal_fn(const struct signalfd_siginfo *info, void *data);

/* Blocks the signals and starts delivering them to `fn`.  Call before any
 * thread is created so that every thread inherits the mask. */
bool corral_signals_start(corral_signal_fn *fn, void *data, GError **error);
void corral_signals_stop(void);

/* "SIGTERM", "SIGKILL", ... for log lines; "signal N" for any other. */
const char *corral_signal_name(int signo);

/* si_code of SIGTERM or SIGINT as Dovecot logs it: "kill", "kernel",
 * "timer", otherwise "unknown N". */
const char *corral_signal_code_name(int code);

#endif
