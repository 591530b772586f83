/* SPDX-License-Identifier: MIT */
/*
 * dir-trust.h - whether a folder is safe for corrald's own files.
 *
 * corrald keeps its pid file, control sockets and listeners in folders
 * where another user who can rename or replace entries could swap in
 * symlinks or forged sockets.  A folder is trusted when it and every
 * folder above it belong to root or to the user corrald runs as, and none
 * is writable by group or others unless it has the sticky bit (as /tmp
 * has: there only an entry's owner may rename or remove it).  OpenSSH's
 * StrictModes and Postfix's "postfix check" judge the same way.
 */
#ifndef CORRAL_DIR_TRUST_H
#define CORRAL_DIR_TRUST_H

#include <glib.h>
#include <stdbool.h>

/* True when `path` (an existing folder) and its ancestors are trusted;
 * otherwise false with an error naming the folder at fault and why. */
bool corral_dir_is_trusted(const char *path, GError **error);

#endif
