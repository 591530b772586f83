/* SPDX-License-Identifier: MIT */
#include "pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dir-trust.h"

struct corral_pidfile {
    char *path;
    int fd;
};

/* The pid recorded in the file, or 0 when it holds none. */
static pid_t read_recorded_pid(int fd)
{
    char text[32];
    ssize_t len = pread(fd, text, sizeof(text) - 1, 0);
    char *end;
    long pid;

    if (len <= 0)
        return 0;
    text[len] = '\0';
    pid = strtol(text, &end, 10);
    return pid > 0 && pid <= G_MAXINT && (*end == '\n' || *end == '\0') ? (pid_t)pid : 0;
}

static void refuse(GError **error, const char *path, int fd)
{
    pid_t holder = read_recorded_pid(fd);

    if (holder > 0 && (kill(holder, 0) == 0 || errno == EPERM))
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                    "corrald is already running with this base_dir (pid %d holds %s)",
                    (int)holder, path);
    else
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                    "corrald is already running with this base_dir (another process "
                    "holds the lock on %s)", path);
}

corral_pidfile *corral_pidfile_claim(const char *base_dir, GError **error)
{
    char *path = g_build_filename(base_dir, CORRAL_PIDFILE_NAME, NULL);
    corral_pidfile *pidfile;
    int fd;

    if (g_mkdir_with_parents(base_dir, 0755) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot create %s: %s", base_dir, g_strerror(errno));
        g_free(path);
        return NULL;
    }
    if (!corral_dir_is_trusted(base_dir, error)) {
        g_free(path);
        return NULL;
    }
    /* A holder that exits unlinks the file we may have just opened: retry
     * until the file we locked is the one at the path. */
    for (;;) {
        struct stat locked, current;

        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                        "cannot open the pid file %s: %s", path, g_strerror(errno));
            g_free(path);
            return NULL;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
            if (errno == EWOULDBLOCK)
                refuse(error, path, fd);
            else
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "cannot lock the pid file %s: %s", path, g_strerror(errno));
            close(fd);
            g_free(path);
            return NULL;
        }
        if (fstat(fd, &locked) == 0 && stat(path, &current) == 0 &&
            locked.st_dev == current.st_dev && locked.st_ino == current.st_ino)
            break;
        close(fd);
    }
    pidfile = g_new0(corral_pidfile, 1);
    pidfile->path = path;
    pidfile->fd = fd;
    return pidfile;
}

bool corral_pidfile_write(corral_pidfile *pidfile, GError **error)
{
    char text[32];
    int len = snprintf(text, sizeof(text), "%d\n", (int)getpid());

    if (ftruncate(pidfile->fd, 0) < 0 || pwrite(pidfile->fd, text, (size_t)len, 0) != len) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot write the pid file %s: %s", pidfile->path, g_strerror(errno));
        return false;
    }
    return true;
}

void corral_pidfile_release(corral_pidfile *pidfile)
{
    if (pidfile == NULL)
        return;
    /* Unlink while still holding the lock, so that a newcomer never sees
     * our file unlocked. */
    (void)unlink(pidfile->path);
    close(pidfile->fd);
    g_free(pidfile->path);
    g_free(pidfile);
}
