/* SPDX-License-Identifier: MIT */
/*
 * sd-notify.h - telling systemd (or any service manager speaking its
 * notify protocol) how corrald is doing, without libsystemd.
 *
 * When NOTIFY_SOCKET names a datagram socket (a path, or "@name" for the
 * abstract namespace) each state change is sent there as one datagram of
 * KEY=VALUE lines: READY=1 once every listener is open and every service
 * started, RELOADING=1 and READY=1 around a reload, STOPPING=1 when
 * shutdown begins, and STATUS= with a one-line summary ("2 services,
 * 7 processes", followed by "; last reload failed: WHY" until a reload
 * succeeds) whenever it changes.  When WATCHDOG_USEC is set (and
 * WATCHDOG_PID is unset or ours), WATCHDOG=1 goes out every half period
 * for as long as the main loop runs.  Without NOTIFY_SOCKET every call is
 * a no-op.
 */
#ifndef CORRAL_SD_NOTIFY_H
#define CORRAL_SD_NOTIFY_H

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and arms the
 * watchdog and summary timers.  Call after detaching: the pid matters. */
void corral_notify_init(void);
/* Removes the timers and closes the socket. */
void corral_notify_shutdown(void);

/* READY=1 with the summary: startup is complete, or a reload has ended
 * (successfully or not: the running configuration serves either way). */
void corral_notify_ready(void);
/* RELOADING=1 (with MONOTONIC_USEC, as Type=notify-reload wants): a
 * reload has begun.  Follow it with corral_notify_ready(). */
void corral_notify_reloading(void);
/* STOPPING=1: shutdown has begun. */
void corral_notify_stopping(void);

#endif
