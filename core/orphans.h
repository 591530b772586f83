/* SPDX-License-Identifier: MIT */
/*
 * orphans.h - processes corrald reaps but never started.
 *
 * As PID 1 of a container (or as a child subreaper), corrald adopts every
 * orphan below it: the daemon a worker double-forked, a worker's child that
 * outlived it.  The kernel hands each to corrald's waitpid() when it exits.
 * Reaping them is corrald's job there, not an error, and logging each one
 * would let any worker fill the log: they are counted, and logged only
 * at debug level, at most once a second.
 *
 * Anywhere else an unknown pid from waitpid() means corrald lost track of
 * a child of its own, and is logged as the error it is.
 */
#ifndef CORRAL_ORPHANS_H
#define CORRAL_ORPHANS_H

#include <sys/types.h>

/* Called for a pid that waitpid() returned but no service knows. */
void corral_orphans_reaped(pid_t pid);

#endif
