/* SPDX-License-Identifier: MIT */
#include "process-group.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

bool corral_process_group_signal(pid_t pid, int signo)
{
    if (pid <= 0) {
        errno = ESRCH;
        return false;
    }
    if (kill(-pid, signo) == 0)
        return true;
    /* ESRCH: the group is gone, or the worker called setsid() itself and
     * leads another one: its pid still reaches it.  EPERM: some member
     * changed credentials; the leader may still be ours to signal. */
    if (errno != ESRCH && errno != EPERM)
        return false;
    return kill(pid, signo) == 0;
}

bool corral_process_group_kill_leftovers(pid_t pid)
{
    /* The reaped leader's pid stays reserved while its group has members,
     * so -pid can name no one else's group. */
    return pid > 0 && kill(-pid, SIGKILL) == 0;
}

bool corral_process_group_kill_if_leader_died(pid_t pid)
{
    siginfo_t info = { .si_pid = 0 };

    /* WNOWAIT looks without reaping, so the pid stays reserved. */
    if (pid <= 0 || waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) < 0 ||
        info.si_pid != pid)
        return false;
    return corral_process_group_kill_leftovers(pid);
}
