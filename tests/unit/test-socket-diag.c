/* SPDX-License-Identifier: MIT */
/* socket-diag: real loopback connections, found through sock_diag and
 * this process's own descriptors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socket-diag.h"

static int listen_loopback(guint16 *port)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

static int connect_to(guint16 port)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    return fd;
}

static void test_counts_accepted_connections_on_the_port_only(void **state)
{
    guint16 port, other_port;
    int listener = listen_loopback(&port);
    int other = listen_loopback(&other_port);
    int clients[3], accepted[2], stranger, stranger_accepted;
    GHashTable *inodes = corral_socket_inode_set_new();
    GHashTable *seen = corral_socket_inode_set_new();

    (void)state;
    for (int i = 0; i < 3; i++)
        clients[i] = connect_to(port);
    accepted[0] = accept(listener, NULL, NULL);
    accepted[1] = accept(listener, NULL, NULL);
    stranger = connect_to(other_port);
    stranger_accepted = accept(other, NULL, NULL);
    assert_true(accepted[0] >= 0 && accepted[1] >= 0 && stranger_accepted >= 0);

    assert_true(corral_socket_diag_established(&port, 1, inodes));
    /* Three established on the port, but the one still in the accept
     * queue has no file, so no inode: it is the policy's queued_clients.
     * The clients' ends have other local ports. */
    assert_int_equal(g_hash_table_size(inodes), 2);
    /* This process holds the two accepted ones. */
    assert_int_equal(corral_socket_count_held(getpid(), inodes, seen), 2);
    /* Counted once, however many processes share them. */
    assert_int_equal(corral_socket_count_held(getpid(), inodes, seen), 0);
    /* Gone processes count nothing. */
    assert_int_equal(corral_socket_count_held(0x7ffffff0, inodes, seen), 0);

    for (int i = 0; i < 3; i++)
        close(clients[i]);
    close(accepted[0]);
    close(accepted[1]);
    close(stranger);
    close(stranger_accepted);
    close(listener);
    close(other);
    g_hash_table_unref(inodes);
    g_hash_table_unref(seen);
}

static void test_no_ports_asks_nothing(void **state)
{
    GHashTable *inodes = corral_socket_inode_set_new();

    (void)state;
    assert_true(corral_socket_diag_established(NULL, 0, inodes));
    assert_int_equal(g_hash_table_size(inodes), 0);
    g_hash_table_unref(inodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_accepted_connections_on_the_port_only),
        cmocka_unit_test(test_no_ports_asks_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
