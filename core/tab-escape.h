/* SPDX-License-Identifier: MIT */
/*
 * tab-escape.h - Dovecot's tab escaping (str_append_tabescaped), used
 * wherever corrald writes a field Dovecot's side will split on tabs: the
 * listener names in SOCKET<n>_SETTINGS and the master-client answers.
 * \001 becomes \0011, and tab, CR and LF become \001t, \001r and \001n.
 */
#ifndef CORRAL_TAB_ESCAPE_H
#define CORRAL_TAB_ESCAPE_H

#include <glib.h>

void corral_tab_escape_append(GString *out, const char *text);

#endif
