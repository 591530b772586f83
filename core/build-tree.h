/* SPDX-License-Identifier: MIT */
/*
 * build-tree.h - where a corrald run from its meson build folder finds the
 * policies and example workers it was built with.
 *
 * No build folder path is compiled in, so an installed binary carries none
 * and never loads a stale build.  Instead meson writes a marker file,
 * CORRAL_BUILD_TREE_MARKER, at the top of the build folder; a program whose
 * own executable (/proc/self/exe) sits at most three folders below such a
 * marker is running from that build tree.  The marker must be a regular
 * file (not a symbolic link) owned by the owner of the executable, so that
 * nobody else can make an installed corrald search a folder of theirs.
 */
#ifndef CORRAL_BUILD_TREE_H
#define CORRAL_BUILD_TREE_H

#define CORRAL_BUILD_TREE_MARKER "corral-build-tree"

/* The build folder this program runs from, or NULL when it is installed.
 * Found once and kept for the life of the process; do not free. */
const char *corral_build_tree_root(void);

#endif
