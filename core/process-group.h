/* SPDX-License-Identifier: MIT */
/*
 * process-group.h - signalling a worker together with what it forked.
 *
 * Every worker starts as the leader of its own session and process group
 * (spawn.h: new_session), whose id is its pid.  Signalling the group
 * reaches the processes a server forks for itself (gunicorn's and
 * php-fpm's workers), which would otherwise be orphaned, keep the
 * listening socket open and outlive corrald.
 */
#ifndef CORRAL_PROCESS_GROUP_H
#define CORRAL_PROCESS_GROUP_H

#include <stdbool.h>
#include <sys/types.h>

/* Sends `signo` to the process group led by `pid`.  A worker that moved
 * itself out of that group is still signalled by pid.  Returns false with
 * errno set when neither reached anything. */
bool corral_process_group_signal(pid_t pid, int signo);

/* Kills (SIGKILL) whatever is left in the group of `pid`, a leader that
 * has just been reaped.  Returns true when something was left. */
bool corral_process_group_kill_leftovers(pid_t pid);

/* The same for a leader that has died but is not reaped yet (the master
 * no longer reaps once it is leaving); the leader stays unreaped. */
bool corral_process_group_kill_if_leader_died(pid_t pid);

#endif
