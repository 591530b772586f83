/* SPDX-License-Identifier: MIT */
#include "dir-trust.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool judge(const char *folder, GError **error)
{
    struct stat st;
    uid_t self = geteuid();

    if (stat(folder, &st) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", folder,
                    g_strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "%s is not a folder", folder);
        return false;
    }
    if (st.st_uid != 0 && st.st_uid != self) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                    "%s belongs to uid %u, not to root or to corrald's uid %u: another user "
                    "could swap corrald's files there", folder, (unsigned)st.st_uid,
                    (unsigned)self);
        return false;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                    "%s is writable by %s (mode %04o) without the sticky bit: another user "
                    "could swap corrald's files there", folder,
                    (st.st_mode & S_IWOTH) != 0 ? "everyone" : "its group",
                    (unsigned)(st.st_mode & 07777));
        return false;
    }
    return true;
}

bool corral_dir_is_trusted(const char *path, GError **error)
{
    char *resolved = realpath(path, NULL);
    char *folder;
    bool trusted = true;

    if (resolved == NULL) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        return false;
    }
    /* From the folder itself up to "/". */
    folder = g_strdup(resolved);
    for (;;) {
        char *parent;

        if (!judge(folder, error)) {
            trusted = false;
            break;
        }
        if (strcmp(folder, "/") == 0)
            break;
        parent = g_path_get_dirname(folder);
        g_free(folder);
        folder = parent;
    }
    g_free(folder);
    free(resolved);
    return trusted;
}
