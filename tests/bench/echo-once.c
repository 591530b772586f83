/* SPDX-License-Identifier: MIT */
/*
 * echo-once - serves one connection that is already on stdin and stdout,
 * as inetd-style launchers (xinetd, tcpserver, spawnloop) pass it: writes
 * back every byte read until the client closes, then exits 0.  The same
 * per-connection behaviour as corral-echo-worker, without the worker
 * library, the master protocol or an event loop.
 */
#include <errno.h>
#include <unistd.h>

int main(void)
{
    char buffer[4096];

    for (;;) {
        ssize_t got = read(STDIN_FILENO, buffer, sizeof(buffer));

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return 0;
        for (ssize_t sent = 0; sent < got;) {
            ssize_t written = write(STDOUT_FILENO, buffer + sent, (size_t)(got - sent));

            if (written < 0 && errno == EINTR)
                continue;
            if (written <= 0)
                return 0;
            sent += written;
        }
    }
}
