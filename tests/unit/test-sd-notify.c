/* SPDX-License-Identifier: MIT */
/* sd_notify messages as a service manager receives them on a real socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "sd-notify.h"

typedef struct manager {
    int fd;
    char *dir;
    char name[108];
} manager;

/* Binds the manager's end (a path, or an abstract name) and points
 * NOTIFY_SOCKET at it. */
static void manager_open(manager *m, bool abstract)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    socklen_t len;

    m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(m->fd >= 0);
    m->dir = NULL;
    if (abstract) {
        snprintf(m->name, sizeof(m->name), "@corral-unit-%d", (int)getpid());
        memcpy(addr.sun_path + 1, m->name + 1, strlen(m->name) - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(m->name));
    } else {
        m->dir = g_dir_make_tmp("corral-notify-XXXXXX", NULL);
        assert_non_null(m->dir);
        snprintf(m->name, sizeof(m->name), "%s/notify", m->dir);
        strcpy(addr.sun_path, m->name);
        len = sizeof(addr);
    }
    assert_int_equal(bind(m->fd, (struct sockaddr *)&addr, len), 0);
    setenv("NOTIFY_SOCKET", m->name, 1);
    corral_notify_init();
}

static void manager_close(manager *m)
{
    corral_notify_shutdown();
    unsetenv("NOTIFY_SOCKET");
    close(m->fd);
    if (m->dir != NULL) {
        unlink(m->name);
        rmdir(m->dir);
        g_free(m->dir);
    }
}

/* The next datagram; sendto() has completed, so it is already queued. */
static char *receive(manager *m)
{
    char buf[4096];
    ssize_t got = recv(m->fd, buf, sizeof(buf) - 1, 0);

    assert_true(got > 0);
    buf[got] = '\0';
    return g_strdup(buf);
}

static void assert_nothing_queued(manager *m)
{
    char buf[16];
    assert_int_equal(recv(m->fd, buf, sizeof(buf), 0), -1);
}

static void test_reload_is_reloading_then_ready(void **unused)
{
    manager m;
    char *message, *expected_ready;

    (void)unused;
    manager_open(&m, false);
    corral_notify_reloading();
    message = receive(&m);
    assert_true(g_str_has_prefix(message, "RELOADING=1\nMONOTONIC_USEC="));
    assert_non_null(strstr(message, "\nSTATUS=Reloading configuration"));
    g_free(message);

    corral_notify_ready();
    message = receive(&m);
    expected_ready = g_strdup_printf("READY=1\nMAINPID=%d\nSTATUS=", (int)getpid());
    assert_true(g_str_has_prefix(message, expected_ready));
    g_free(expected_ready);
    g_free(message);
    assert_nothing_queued(&m);
    manager_close(&m);
}

static void test_stopping(void **unused)
{
    manager m;
    char *message;

    (void)unused;
    manager_open(&m, false);
    corral_notify_stopping();
    message = receive(&m);
    assert_string_equal(message, "STOPPING=1\nSTATUS=Shutting down");
    g_free(message);
    manager_close(&m);
}

static void test_abstract_socket(void **unused)
{
    manager m;
    char *message;

    (void)unused;
    manager_open(&m, true);
    corral_notify_ready();
    message = receive(&m);
    assert_true(g_str_has_prefix(message, "READY=1\n"));
    g_free(message);
    manager_close(&m);
}

static void test_without_notify_socket_nothing_happens(void **unused)
{
    (void)unused;
    unsetenv("NOTIFY_SOCKET");
    corral_notify_init();
    corral_notify_reloading();
    corral_notify_ready();
    corral_notify_stopping();
    corral_notify_shutdown();
}

static void test_relative_notify_socket_is_refused(void **unused)
{
    (void)unused;
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    corral_notify_init();
    corral_notify_ready(); /* nowhere to send: must not crash or block */
    corral_notify_shutdown();
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_is_reloading_then_ready),
        cmocka_unit_test(test_stopping),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_without_notify_socket_nothing_happens),
        cmocka_unit_test(test_relative_notify_socket_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
