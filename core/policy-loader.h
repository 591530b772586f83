/* SPDX-License-Identifier: MIT */
/*
 * policy-loader.h - finding, loading and checking policy plugins.
 *
 * Every libltdl call lives in policy-loader.c.  A plugin is NAME.so in one
 * of the search directories: the installed plugin directory, then the
 * configured policy_dir, then the build tree when corrald runs from it.
 * The loader refuses, naming the file and the reason, a module whose entry
 * symbol is missing or whose descriptor has another ABI version or size.
 */
#ifndef CORRAL_POLICY_LOADER_H
#define CORRAL_POLICY_LOADER_H

#include <glib.h>
#include <sys/stat.h>

#include <corral/policy.h>

#include "config.h"

typedef struct corral_policy_module {
    char *name;
    char *path;
    struct stat file;      /* identity of the file when it was loaded */
    const corral_policy *policy;
    void *handle;          /* lt_dlhandle */
    int refcount;
} corral_policy_module;

typedef struct corral_policy_loader corral_policy_loader;

/* `policy_dir` may be NULL.  Extra directories can be listed, before the
 * others, in CORRAL_POLICY_PATH (colon-separated), which tests use.  With a
 * `previous` loader (a reload), a module whose file is unchanged is shared
 * with it, and one whose file changed is loaded afresh beside the old. */
corral_policy_loader *corral_policy_loader_new(const char *policy_dir,
                                               const corral_policy_loader *previous);
/* Forgets the previous loader once a reload is built. */
void corral_policy_loader_forget_previous(corral_policy_loader *loader);
void corral_policy_loader_free(corral_policy_loader *loader);

/* Loads policy `name` once; later calls return the same module with one
 * more reference. */
corral_policy_module *corral_policy_loader_load(corral_policy_loader *loader,
                                                const char *name, GError **error);
/* Loads the file at `path` directly (tests, and policies named by path). */
corral_policy_module *corral_policy_module_open(const char *path, GError **error);
void corral_policy_module_unref(corral_policy_module *module);

/* Checks the service's policy keys against what the plugin declares and
 * parses them, defaults included.  Errors name the file, group and key. */
corral_policy_value *corral_policy_values_parse(const corral_policy_module *module,
                                                const corral_service_config *service,
                                                GError **error);
/* The same for shadow policy `shadow_name`, from the service's
 * "shadow_name.key" entries. */
corral_policy_value *corral_policy_values_parse_prefixed(const corral_policy_module *module,
                                                         const corral_service_config *service,
                                                         const char *shadow_name,
                                                         GError **error);
/* Parses one value of `key` (a STRING's copy is g_free()d by the caller);
 * false with *problem set (g_free it) when it is bad or out of range. */
bool corral_policy_key_parse(const corral_policy_key *key, const char *text,
                             corral_policy_value *value, char **problem);
/* The text a key takes when unset: its declared default, else "" or "0". */
const char *corral_policy_key_default(const corral_policy_key *key);
void corral_policy_values_free(const corral_policy_module *module, corral_policy_value *values);

#endif
