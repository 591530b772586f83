/* SPDX-License-Identifier: MIT */
#include "sd-notify.h"

#include <errno.h>
#include <glib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "service.h"
#include "supervisor.h"

/* How often the STATUS= summary is looked at; it is sent only when its
 * text has changed. */
#define SUMMARY_INTERVAL_MSECS 1000

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
static guint watchdog_timer;
static guint summary_timer;
static char *last_summary;

static void send_message(const char *message)
{
    if (notify_fd < 0)
        return;
    if (sendto(notify_fd, message, strlen(message), MSG_NOSIGNAL,
               (const struct sockaddr *)&notify_addr, notify_addr_len) < 0)
        log_debug("sd_notify: sendto(%s) failed: %s", getenv("NOTIFY_SOCKET"),
                  g_strerror(errno));
}

/* "2 services, 7 processes" for the running configuration, and why the
 * last reload failed while it stands failed. */
static char *summary(void)
{
    corral_supervisor *supervisor = corral_supervisor_get();
    corral_reload_outcome reload;
    GPtrArray *services;
    unsigned processes = 0;
    GString *text;

    if (supervisor == NULL)
        return g_strdup("starting");
    services = corral_supervisor_services(supervisor);
    for (guint i = 0; i < services->len; i++) {
        const corral_service *svc = g_ptr_array_index(services, i);
        processes += svc->state.process_count;
    }
    text = g_string_new(NULL);
    g_string_printf(text, "%u service%s, %u process%s", services->len,
                    services->len == 1 ? "" : "s", processes, processes == 1 ? "" : "es");
    corral_supervisor_last_reload(supervisor, &reload);
    if (!reload.ok) {
        /* STATUS= is one line. */
        gsize start = text->len;

        g_string_append_printf(text, "; last reload failed: %s", reload.error);
        for (gsize i = start; i < text->len; i++) {
            if (text->str[i] == '\n')
                text->str[i] = ' ';
        }
    }
    return g_string_free(text, FALSE);
}

/* Sends `state` (may be NULL) together with the summary, which it makes
 * the last one sent. */
static void send_with_summary(const char *state)
{
    char *text = summary();
    char *message = g_strdup_printf("%s%sSTATUS=%s", state != NULL ? state : "",
                                    state != NULL ? "\n" : "", text);

    send_message(message);
    g_free(message);
    g_free(last_summary);
    last_summary = text;
}

static gboolean on_summary_timer(gpointer data)
{
    char *text = summary();

    (void)data;
    if (g_strcmp0(text, last_summary) != 0)
        send_with_summary(NULL);
    g_free(text);
    return G_SOURCE_CONTINUE;
}

static gboolean on_watchdog_timer(gpointer data)
{
    (void)data;
    send_message("WATCHDOG=1");
    return G_SOURCE_CONTINUE;
}

/* A path, or "@name" for an abstract socket as systemd writes it. */
static bool fill_address(const char *name)
{
    size_t len = strlen(name);

    if ((name[0] != '/' && name[0] != '@') || len < 2 || len >= sizeof(notify_addr.sun_path))
        return false;
    memset(&notify_addr, 0, sizeof(notify_addr));
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, name, len);
    if (name[0] == '@')
        notify_addr.sun_path[0] = '\0';
    notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
                                  (name[0] == '/' ? 1 : 0));
    return true;
}

/* The watchdog interval in microseconds, or 0 when none is asked of us. */
static guint64 watchdog_usec(void)
{
    const char *usec_text = getenv("WATCHDOG_USEC");
    const char *pid_text = getenv("WATCHDOG_PID");
    guint64 usec;

    if (usec_text == NULL || !g_ascii_string_to_unsigned(usec_text, 10, 1, G_MAXUINT64, &usec,
                                                         NULL))
        return 0;
    if (pid_text != NULL && *pid_text != '\0') {
        guint64 pid;
        if (!g_ascii_string_to_unsigned(pid_text, 10, 1, G_MAXINT, &pid, NULL) ||
            (pid_t)pid != getpid())
            return 0;
    }
    return usec;
}

void corral_notify_init(void)
{
    const char *name = getenv("NOTIFY_SOCKET");
    guint64 usec;

    if (name == NULL || *name == '\0')
        return;
    if (!fill_address(name)) {
        log_warning("NOTIFY_SOCKET=%s: not a socket path or @abstract name; "
                    "not notifying the service manager", name);
        return;
    }
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (notify_fd < 0) {
        log_warning("NOTIFY_SOCKET=%s: socket() failed: %s", name, g_strerror(errno));
        return;
    }
    summary_timer = g_timeout_add(SUMMARY_INTERVAL_MSECS, on_summary_timer, NULL);
    usec = watchdog_usec();
    if (usec > 0) {
        guint64 msecs = MAX(usec / 2000, 1);
        watchdog_timer = g_timeout_add((guint)MIN(msecs, (guint64)G_MAXUINT), on_watchdog_timer,
                                       NULL);
        log_debug("sd_notify: watchdog ping every %" G_GUINT64_FORMAT " ms", msecs);
    }
}

void corral_notify_shutdown(void)
{
    if (watchdog_timer != 0)
        g_source_remove(watchdog_timer);
    if (summary_timer != 0)
        g_source_remove(summary_timer);
    watchdog_timer = summary_timer = 0;
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
    g_clear_pointer(&last_summary, g_free);
}

void corral_notify_ready(void)
{
    char *state = g_strdup_printf("READY=1\nMAINPID=%d", (int)getpid());

    send_with_summary(state);
    g_free(state);
}

void corral_notify_reloading(void)
{
    struct timespec now;
    char *message;

    clock_gettime(CLOCK_MONOTONIC, &now);
    message = g_strdup_printf("RELOADING=1\nMONOTONIC_USEC=%" G_GUINT64_FORMAT
                              "\nSTATUS=Reloading configuration",
                              (guint64)now.tv_sec * G_USEC_PER_SEC +
                                  (guint64)now.tv_nsec / 1000);
    send_message(message);
    g_free(message);
}

void corral_notify_stopping(void)
{
    /* The summary would only count processes down from here on. */
    if (summary_timer != 0)
        g_source_remove(summary_timer);
    summary_timer = 0;
    send_message("STOPPING=1\nSTATUS=Shutting down");
}
