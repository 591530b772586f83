/* SPDX-License-Identifier: MIT */
#include "build-tree.h"

#include <glib.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* core/corrald, tools/sim/corral-sim and tests/unit/test-* are all within
 * three folders of the top. */
#define MAX_DEPTH 3

static char *find_root(void)
{
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    struct stat exe_st;
    char *dir;

    if (len <= 0)
        return NULL;
    exe[len] = '\0';
    if (stat(exe, &exe_st) < 0)
        return NULL;
    dir = g_path_get_dirname(exe);
    for (int depth = 0; depth <= MAX_DEPTH; depth++) {
        char *marker = g_build_filename(dir, CORRAL_BUILD_TREE_MARKER, NULL);
        struct stat st;
        bool found = lstat(marker, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == exe_st.st_uid;
        char *parent;

        g_free(marker);
        if (found)
            return dir;
        parent = g_path_get_dirname(dir);
        if (strcmp(parent, dir) == 0) {
            g_free(parent);
            break;
        }
        g_free(dir);
        dir = parent;
    }
    g_free(dir);
    return NULL;
}

const char *corral_build_tree_root(void)
{
    static gsize once;
    static char *root;

    if (g_once_init_enter(&once)) {
        root = find_root();
        g_once_init_leave(&once, 1);
    }
    return root;
}
