/* SPDX-License-Identifier: MIT */
/*
 * socket-diag.h - which TCP connections exist on a service's ports, from
 * the kernel's sock_diag netlink interface.
 *
 * One NETLINK_SOCK_DIAG dump of the established TCP sockets (IPv4 and
 * IPv6) gives each connection's local port and socket inode; a process
 * holds a connection when one of its descriptors is that inode
 * (/proc/PID/fd/N reads "socket:[INODE]").  The dump costs one system call
 * per few dozen sockets, and needs no privilege.
 */
#ifndef CORRAL_SOCKET_DIAG_H
#define CORRAL_SOCKET_DIAG_H

#include <glib.h>
#include <stdbool.h>

/* Adds to `inodes` (a set of GUINT_TO_POINTER-free guint64 keys made with
 * corral_socket_inode_key) the inode of every established TCP connection
 * whose local port is one of `ports`.  False with errno set when the
 * kernel cannot be asked. */
bool corral_socket_diag_established(const guint16 *ports, size_t port_count,
                                    GHashTable *inodes);

/* A key for the inode sets above (g_int64_hash / g_int64_equal tables
 * whose keys are g_new'd guint64). */
GHashTable *corral_socket_inode_set_new(void);

/* Counts the descriptors of process `pid` that are sockets in `inodes`,
 * adding each found inode to `seen` so that a socket shared by several
 * processes of one group counts once.  A process that is gone counts 0. */
unsigned corral_socket_count_held(pid_t pid, GHashTable *inodes, GHashTable *seen);

#endif
