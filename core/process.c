/* SPDX-License-Identifier: MIT */
#include "process.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define CORE_DUMP_URL "https://dovecot.org/bugreport.html#coredumps"
#define SUID_DUMPABLE_PATH "/proc/sys/fs/suid_dumpable"
#define CORE_PATTERN_PATH "/proc/sys/kernel/core_pattern"

/* Dovecot's lib-master exit codes. */
enum {
    EXIT_LOGOPEN = 80,
    EXIT_LOGWRITE = 81,
    EXIT_LOGERROR = 82,
    EXIT_OUTOFMEM = 83,
    EXIT_EXEC = 84,
    EXIT_DEFAULT = 89,
};

static bool core_dumps_disabled;

void corral_exit_texts_init(void)
{
    struct rlimit limit;

    core_dumps_disabled = getrlimit(RLIMIT_CORE, &limit) == 0 && limit.rlim_cur == 0;
}

static void append_exit_code_hint(GString *text, int code, const corral_exit_hints *hints)
{
    switch (code) {
    case EXIT_LOGOPEN: g_string_append(text, " (Can't open log file)"); return;
    case EXIT_LOGWRITE: g_string_append(text, " (Can't write to log file)"); return;
    case EXIT_LOGERROR: g_string_append(text, " (Internal logging error)"); return;
    case EXIT_EXEC: g_string_append(text, " (exec() failed)"); return;
    case EXIT_DEFAULT: g_string_append(text, " (Fatal failure)"); return;
    case EXIT_OUTOFMEM:
        g_string_append(text, " (Out of memory");
        if (hints != NULL && hints->vsz_limit != 0)
            g_string_append_printf(text, " (service %s { vsz_limit=%llu MB }, you may need to "
                                   "increase it)", hints->service_name,
                                   (unsigned long long)(hints->vsz_limit / 1024 / 1024));
        if (getenv("CORE_OUTOFMEM") == NULL)
            g_string_append(text, " - set CORE_OUTOFMEM=1 environment to get core dump");
        g_string_append_c(text, ')');
        return;
    default:
        return;
    }
}

/* The first line of a /proc file, or "" when it cannot be read. */
static void read_proc_line(const char *path, char *buf, size_t size)
{
    FILE *file = fopen(path, "re");

    buf[0] = '\0';
    if (file == NULL)
        return;
    if (fgets(buf, (int)size, file) == NULL)
        buf[0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    fclose(file);
}

/* Why a signal that should have dumped core did not, in Dovecot's words;
 * some of its variants leave the parenthesis open, and so do these. */
static void append_core_hint(GString *text, int wait_status, const corral_exit_hints *hints)
{
    int signo = WTERMSIG(wait_status);
    char value[16];

    if (WCOREDUMP(wait_status)) {
        g_string_append(text, " (core dumped)");
        return;
    }
    if (signo != SIGABRT && signo != SIGSEGV && signo != SIGBUS)
        return;
    if (core_dumps_disabled) {
        g_string_append(text, " (core dumps disabled - " CORE_DUMP_URL ")");
        return;
    }
    g_string_append(text, " (core not dumped - " CORE_DUMP_URL);
    if (access(SUID_DUMPABLE_PATH, F_OK) == 0) {
        unsigned long dumpable;

        read_proc_line(SUID_DUMPABLE_PATH, value, sizeof(value));
        dumpable = strtoul(value, NULL, 10);
        if (dumpable == 0) {
            g_string_append(text, " - set " SUID_DUMPABLE_PATH " to 2)");
            return;
        }
        read_proc_line(CORE_PATTERN_PATH, value, sizeof(value));
        if (dumpable == 2 && access(CORE_PATTERN_PATH, F_OK) == 0 && value[0] != '/' &&
            value[0] != '|') {
            g_string_append(text, " - set " CORE_PATTERN_PATH " to absolute path)");
            return;
        }
        if (dumpable == 1 || access(CORE_PATTERN_PATH, F_OK) == 0) {
            g_string_append(text, " - core wasn't writable?)");
            return;
        }
    }
    if (hints != NULL && hints->login && !hints->login_dump_core) {
        g_string_append_printf(text, " - add -D parameter to service %s { executable }",
                               hints->service_name);
        return;
    }
    if (hints != NULL && hints->chroot != NULL && hints->chroot[0] != '\0') {
        g_string_append_printf(text, " - try to clear service %s { chroot = } )",
                               hints->service_name);
        return;
    }
    g_string_append_c(text, ')');
}

char *corral_exit_text(pid_t pid, int wait_status, const corral_exit_hints *hints)
{
    GString *text;

    if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)
        return NULL;
    text = g_string_new(NULL);
    g_string_append_printf(text, "child %d ", (int)pid);
    if (WIFSIGNALED(wait_status)) {
        g_string_append_printf(text, "killed with signal %d", WTERMSIG(wait_status));
        append_core_hint(text, wait_status, hints);
    } else if (WIFEXITED(wait_status)) {
        g_string_append_printf(text, "returned error %d", WEXITSTATUS(wait_status));
        append_exit_code_hint(text, WEXITSTATUS(wait_status), hints);
    } else {
        g_string_append_printf(text, "died with status %d", wait_status);
    }
    return g_string_free(text, FALSE);
}
