/* SPDX-License-Identifier: MIT */
/*
 * pidfile.h - base_dir/master.pid: one corrald per base_dir.
 *
 * The file is claimed with an exclusive flock() before anything else is
 * opened, so a second corrald with the same base_dir refuses to start
 * instead of fighting over sockets; the lock, not the pid written in the
 * file, decides, so a stale file left by a crash never blocks a start.
 * The name and format (the decimal pid and a newline) are Dovecot's, so
 * `doveadm stop` and `doveadm reload` find corrald too.
 */
#ifndef CORRAL_PIDFILE_H
#define CORRAL_PIDFILE_H

#include <glib.h>
#include <stdbool.h>

#define CORRAL_PIDFILE_NAME "master.pid"

typedef struct corral_pidfile corral_pidfile;

/* Creates base_dir if needed and locks base_dir/master.pid.  Fails, naming
 * the file and the pid of the holder, when another process has it. */
corral_pidfile *corral_pidfile_claim(const char *base_dir, GError **error);
/* Writes our pid (call after detaching, so that it is the final one). */
bool corral_pidfile_write(corral_pidfile *pidfile, GError **error);
/* Removes the file and drops the lock. */
void corral_pidfile_release(corral_pidfile *pidfile);

#endif
