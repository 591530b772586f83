/* SPDX-License-Identifier: MIT */
#include "tab-escape.h"

void corral_tab_escape_append(GString *out, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        switch (*p) {
        case '\001': g_string_append(out, "\0011"); break;
        case '\t': g_string_append(out, "\001t"); break;
        case '\r': g_string_append(out, "\001r"); break;
        case '\n': g_string_append(out, "\001n"); break;
        default: g_string_append_c(out, *p);
        }
    }
}
