/* SPDX-License-Identifier: MIT */
#include "process.h"

#include <sys/wait.h>

/* Exit codes with a meaning of their own in Dovecot's lib-master. */
static const char *exit_code_hint(int code)
{
    switch (code) {
    case 80: return " (Can't open log file)";
    case 81: return " (Can't write to log file)";
    case 82: return " (Internal logging error)";
    case 83: return " (Out of memory)";
    case 84: return " (exec() failed)";
    case 89: return " (Fatal failure)";
    default: return "";
    }
}

char *corral_exit_text(pid_t pid, int wait_status)
{
    if (WIFEXITED(wait_status)) {
        int code = WEXITSTATUS(wait_status);
        if (code == 0)
            return NULL;
        return g_strdup_printf("child %d returned error %d%s", (int)pid, code,
                               exit_code_hint(code));
    }
    if (WIFSIGNALED(wait_status)) {
        return g_strdup_printf("child %d killed with signal %d%s", (int)pid,
                               WTERMSIG(wait_status),
                               WCOREDUMP(wait_status) ? " (core dumped)" : "");
    }
    return g_strdup_printf("child %d died with status %d", (int)pid, wait_status);
}
