/* SPDX-License-Identifier: MIT */
#include "policy-error.h"

#include <stdarg.h>
#include <stdio.h>

void *policy_error(char **error, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    if (vasprintf(error, fmt, args) < 0)
        *error = NULL;
    va_end(args);
    return NULL;
}
