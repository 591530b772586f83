/* SPDX-License-Identifier: MIT */
/*
 * policy-error.h - the error text service_new hands back to the core.
 */
#ifndef CORRAL_POLICY_ERROR_H
#define CORRAL_POLICY_ERROR_H

/* Sets *error to a malloc()ed message (NULL if out of memory, which the
 * core reports as "no reason given") and returns NULL, so that
 * service_new can `return policy_error(error, ...)`. */
void *policy_error(char **error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
