/* SPDX-License-Identifier: MIT */
#include "signals.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static int signal_fd = -1;
static guint signal_watch;
static corral_signal_fn *signal_callback;
static void *signal_data;

static void fill_mask(sigset_t *mask)
{
    sigemptyset(mask);
    sigaddset(mask, SIGCHLD);
    sigaddset(mask, SIGTERM);
    sigaddset(mask, SIGINT);
    sigaddset(mask, SIGHUP);
    sigaddset(mask, SIGUSR1);
}

static gboolean on_signal_readable(int fd, GIOCondition condition, gpointer data)
{
    struct signalfd_siginfo info;

    (void)condition;
    (void)data;
    while (read(fd, &info, sizeof(info)) == (ssize_t)sizeof(info))
        signal_callback(&info, signal_data);
    return G_SOURCE_CONTINUE;
}

bool corral_signals_start(corral_signal_fn *fn, void *data, GError **error)
{
    struct sigaction ignore = { .sa_handler = SIG_IGN };
    sigset_t mask;

    fill_mask(&mask);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "signalfd() failed: %s", g_strerror(errno));
        return false;
    }
    /* A client that goes away must not kill the master. */
    sigaction(SIGPIPE, &ignore, NULL);
    signal_callback = fn;
    signal_data = data;
    signal_watch = g_unix_fd_add(signal_fd, G_IO_IN, on_signal_readable, NULL);
    return true;
}

void corral_signals_stop(void)
{
    if (signal_watch != 0)
        g_source_remove(signal_watch);
    signal_watch = 0;
    if (signal_fd >= 0)
        close(signal_fd);
    signal_fd = -1;
}

const char *corral_signal_name(int signo)
{
    /* The master is single-threaded: one buffer serves the rare others. */
    static char other[24];

    switch (signo) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGTERM: return "SIGTERM";
    default:
        snprintf(other, sizeof(other), "signal %d", signo);
        return other;
    }
}

const char *corral_signal_code_name(int code)
{
    /* Only the codes Dovecot's lib_signal_code_to_str names for a
     * termination signal; the master is single-threaded, so one buffer
     * serves the rest. */
    static char other[24];

    switch (code) {
    case SI_USER: return "kill";
    case SI_KERNEL: return "kernel";
    case SI_TIMER: return "timer";
    default:
        snprintf(other, sizeof(other), "unknown %d", code);
        return other;
    }
}
