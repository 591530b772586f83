/* SPDX-License-Identifier: MIT */
#include "socket-diag.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

GHashTable *corral_socket_inode_set_new(void)
{
    return g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
}

static void add_inode(GHashTable *set, guint64 inode)
{
    guint64 *key = g_new(guint64, 1);

    *key = inode;
    g_hash_table_add(set, key);
}

static bool port_wanted(guint16 port, const guint16 *ports, size_t port_count)
{
    for (size_t i = 0; i < port_count; i++) {
        if (ports[i] == port)
            return true;
    }
    return false;
}

/* One dump for one address family; the kernel ends it with NLMSG_DONE. */
static bool dump_family(int fd, int family, const guint16 *ports, size_t port_count,
                        GHashTable *inodes)
{
    struct {
        struct nlmsghdr header;
        struct inet_diag_req_v2 request;
    } message = {
        .header = {
            .nlmsg_len = sizeof(message),
            .nlmsg_type = SOCK_DIAG_BY_FAMILY,
            .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
        },
        .request = {
            .sdiag_family = (unsigned char)family,
            .sdiag_protocol = IPPROTO_TCP,
            .idiag_states = 1u << TCP_ESTABLISHED | 1u << TCP_CLOSE_WAIT,
        },
    };
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    /* Aligned for the nlmsghdr casts below. */
    static long buffer[8192 / sizeof(long)];

    if (sendto(fd, &message, sizeof(message), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return false;
    for (;;) {
        ssize_t len = recv(fd, buffer, sizeof(buffer), 0);
        struct nlmsghdr *header = (struct nlmsghdr *)buffer;

        if (len < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        if (len == 0)
            return true;
        for (; NLMSG_OK(header, (size_t)len); header = NLMSG_NEXT(header, len)) {
            const struct inet_diag_msg *diag;

            if (header->nlmsg_type == NLMSG_DONE)
                return true;
            if (header->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *error = NLMSG_DATA(header);
                errno = header->nlmsg_len >= NLMSG_LENGTH(sizeof(*error)) ? -error->error : EIO;
                return false;
            }
            if (header->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
                header->nlmsg_len < NLMSG_LENGTH(sizeof(*diag)))
                continue;
            diag = NLMSG_DATA(header);
            if (diag->idiag_inode != 0 &&
                port_wanted(ntohs(diag->id.idiag_sport), ports, port_count))
                add_inode(inodes, diag->idiag_inode);
        }
    }
}

bool corral_socket_diag_established(const guint16 *ports, size_t port_count,
                                    GHashTable *inodes)
{
    int fd;
    bool ok;

    if (port_count == 0)
        return true;
    fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0)
        return false;
    ok = dump_family(fd, AF_INET, ports, port_count, inodes) &&
         dump_family(fd, AF_INET6, ports, port_count, inodes);
    if (!ok) {
        int saved = errno;
        close(fd);
        errno = saved;
        return false;
    }
    close(fd);
    return true;
}

unsigned corral_socket_count_held(pid_t pid, GHashTable *inodes, GHashTable *seen)
{
    char path[64];
    unsigned count = 0;
    struct dirent *entry;
    DIR *dir;
    int dir_fd;

    g_snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dir_fd < 0)
        return 0;
    dir = fdopendir(dir_fd);
    if (dir == NULL) {
        close(dir_fd);
        return 0;
    }
    while ((entry = readdir(dir)) != NULL) {
        char target[64];
        ssize_t len;
        guint64 inode;
        char *end;

        if (entry->d_name[0] == '.')
            continue;
        len = readlinkat(dir_fd, entry->d_name, target, sizeof(target) - 1);
        if (len <= 8 || strncmp(target, "socket:[", 8) != 0)
            continue;
        target[len] = '\0';
        inode = g_ascii_strtoull(target + 8, &end, 10);
        if (*end != ']' || !g_hash_table_contains(inodes, &inode) ||
            g_hash_table_contains(seen, &inode))
            continue;
        add_inode(seen, inode);
        count++;
    }
    closedir(dir);
    return count;
}
