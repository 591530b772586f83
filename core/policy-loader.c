/* SPDX-License-Identifier: MIT */
#include "policy-loader.h"

#include <limits.h>
#include <ltdl.h>
#include <string.h>
#include <unistd.h>

#include "build-tree.h"
#include "corral-build.h"
#include "shadow.h"

struct corral_policy_loader {
    char **search_path;
    const corral_policy_loader *previous; /* only while building a reload */
    GHashTable *modules;   /* configured name -> corral_policy_module* */
};

static int ltdl_users;

static void ltdl_acquire(void)
{
    if (ltdl_users++ == 0)
        lt_dlinit();
}

static void ltdl_release(void)
{
    if (--ltdl_users == 0)
        lt_dlexit();
}

corral_policy_loader *corral_policy_loader_new(const char *policy_dir,
                                               const corral_policy_loader *previous)
{
    corral_policy_loader *loader = g_new0(corral_policy_loader, 1);
    GPtrArray *path = g_ptr_array_new();
    const char *extra = g_getenv("CORRAL_POLICY_PATH");

    if (extra != NULL && *extra != '\0') {
        char **dirs = g_strsplit(extra, ":", -1);
        for (char **dir = dirs; *dir != NULL; dir++) {
            if (**dir != '\0')
                g_ptr_array_add(path, g_strdup(*dir));
        }
        g_strfreev(dirs);
    }
    g_ptr_array_add(path, g_strdup(CORRAL_PLUGIN_DIR));
    if (policy_dir != NULL)
        g_ptr_array_add(path, g_strdup(policy_dir));
    /* Only a corrald run from its build folder looks there, so an installed
     * one never picks up a stale build. */
    if (corral_build_tree_root() != NULL)
        g_ptr_array_add(path, g_build_filename(corral_build_tree_root(), "plugins", NULL));
    g_ptr_array_add(path, NULL);
    loader->search_path = (char **)g_ptr_array_free(path, FALSE);
    loader->previous = previous;
    loader->modules = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify)corral_policy_module_unref);
    return loader;
}

void corral_policy_loader_forget_previous(corral_policy_loader *loader)
{
    loader->previous = NULL;
}

void corral_policy_loader_free(corral_policy_loader *loader)
{
    if (loader == NULL)
        return;
    g_strfreev(loader->search_path);
    g_hash_table_destroy(loader->modules);
    g_free(loader);
}

static char *find_module_file(const corral_policy_loader *loader, const char *name)
{
    for (char **dir = loader->search_path; *dir != NULL; dir++) {
        char *flat = g_strdup_printf("%s/%s.so", *dir, name);
        char *nested = g_strdup_printf("%s/%s/%s.so", *dir, name, name);

        if (g_file_test(flat, G_FILE_TEST_IS_REGULAR)) {
            g_free(nested);
            return flat;
        }
        g_free(flat);
        if (g_file_test(nested, G_FILE_TEST_IS_REGULAR))
            return nested;
        g_free(nested);
    }
    return NULL;
}

corral_policy_module *corral_policy_module_open(const char *path, GError **error)
{
    corral_policy_entry_fn *entry;
    const corral_policy *policy;
    corral_policy_module *module;
    lt_dlhandle handle;

    ltdl_acquire();
    handle = lt_dlopen(path);
    if (handle == NULL) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_IO,
                    "policy %s: cannot load: %s", path, lt_dlerror());
        ltdl_release();
        return NULL;
    }
    entry = (corral_policy_entry_fn *)lt_dlsym(handle, CORRAL_POLICY_ENTRY_SYMBOL);
    if (entry == NULL) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "policy %s: no entry symbol %s (define it with CORRAL_POLICY_DEFINE)",
                    path, CORRAL_POLICY_ENTRY_SYMBOL);
        goto refuse;
    }
    policy = entry();
    if (policy == NULL) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "policy %s: %s returned no descriptor", path, CORRAL_POLICY_ENTRY_SYMBOL);
        goto refuse;
    }
    if (policy->abi_version < CORRAL_POLICY_ABI_VERSION_MIN ||
        policy->abi_version > CORRAL_POLICY_ABI_VERSION) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "policy %s: built for policy ABI version %u, corrald speaks versions %u "
                    "to %u", path, policy->abi_version, CORRAL_POLICY_ABI_VERSION_MIN,
                    CORRAL_POLICY_ABI_VERSION);
        goto refuse;
    }
    if (policy->struct_size != sizeof(corral_policy)) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "policy %s: descriptor is %u bytes, corrald expects %zu", path,
                    policy->struct_size, sizeof(corral_policy));
        goto refuse;
    }
    if (policy->name == NULL || policy->service_new == NULL) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "policy %s: descriptor lacks a name or service_new", path);
        goto refuse;
    }
    module = g_new0(corral_policy_module, 1);
    if (stat(path, &module->file) < 0)
        memset(&module->file, 0, sizeof(module->file));
    module->path = g_strdup(path);
    module->name = g_strdup(policy->name);
    module->policy = policy;
    module->handle = handle;
    module->refcount = 1;
    return module;
refuse:
    lt_dlclose(handle);
    ltdl_release();
    return NULL;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The dynamic linker hands back the loaded object for a path it already
 * has open, so a changed file is opened through a fresh link named like it
 * (libltdl derives the NAME_LTX_ prefix from the name). */
static corral_policy_module *open_fresh(const char *path, GError **error)
{
    char *dir = g_dir_make_tmp("corral-policy-XXXXXX", NULL);
    char *link = NULL;
    corral_policy_module *module;

    if (dir == NULL)
        return corral_policy_module_open(path, error);
    link = g_build_filename(dir, strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path,
                            NULL);
    if (symlink(path, link) < 0) {
        module = corral_policy_module_open(path, error);
    } else {
        module = corral_policy_module_open(link, error);
        if (module != NULL) {
            g_free(module->path);
            module->path = g_strdup(path);
            (void)stat(path, &module->file);
        }
        (void)unlink(link);
    }
    (void)rmdir(dir);
    g_free(link);
    g_free(dir);
    return module;
}

corral_policy_module *corral_policy_loader_load(corral_policy_loader *loader, const char *name,
                                                GError **error)
{
    corral_policy_module *previous = NULL;
    struct stat now;

    corral_policy_module *module = g_hash_table_lookup(loader->modules, name);
    char *path;

    if (module != NULL) {
        module->refcount++;
        return module;
    }
    if (strchr(name, '/') != NULL || *name == '\0' || *name == '.') {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "policy '%s': a policy is named, not given as a path", name);
        return NULL;
    }
    path = find_module_file(loader, name);
    if (path == NULL) {
        char *dirs = g_strjoinv(":", loader->search_path);
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "policy '%s': no %s.so in %s", name, name, dirs);
        g_free(dirs);
        return NULL;
    }
    if (loader->previous != NULL)
        previous = g_hash_table_lookup(loader->previous->modules, name);
    if (previous != NULL && strcmp(previous->path, path) == 0 && stat(path, &now) == 0 &&
        same_file(&now, &previous->file)) {
        module = previous;
        module->refcount++;
    } else if (previous != NULL && strcmp(previous->path, path) == 0) {
        module = open_fresh(path, error);
    } else {
        module = corral_policy_module_open(path, error);
    }
    g_free(path);
    if (module == NULL)
        return NULL;
    /* The loader keeps a reference of its own until it is freed. */
    module->refcount++;
    g_hash_table_insert(loader->modules, g_strdup(name), module);
    return module;
}

void corral_policy_module_unref(corral_policy_module *module)
{
    if (module == NULL || --module->refcount > 0)
        return;
    lt_dlclose((lt_dlhandle)module->handle);
    ltdl_release();
    g_free(module->path);
    g_free(module->name);
    g_free(module);
}

bool corral_policy_key_parse(const corral_policy_key *key, const char *text,
                             corral_policy_value *value, char **problem)
{
    guint64 number = 0;
    guint64 max = key->max != 0 ? key->max : G_MAXUINT64;

    switch (key->type) {
    case CORRAL_KEY_BOOL:
        return corral_parse_bool(text, &value->b, problem);
    case CORRAL_KEY_STRING:
        value->s = g_strdup(text);
        return true;
    case CORRAL_KEY_UINT:
        if (!corral_parse_uint(text, G_MAXUINT64, &number, problem))
            return false;
        break;
    case CORRAL_KEY_DURATION:
        if (!corral_parse_duration_msecs(text, 1000, &number, problem))
            return false;
        break;
    default:
        *problem = g_strdup("the plugin declares an unknown key type");
        return false;
    }
    if (number < key->min || number > max) {
        *problem = g_strdup_printf("'%s' is outside %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT
                                   "%s", text, key->min, max,
                                   key->type == CORRAL_KEY_DURATION ? " msecs" : "");
        return false;
    }
    value->u = number;
    return true;
}

const char *corral_policy_key_default(const corral_policy_key *key)
{
    if (key->default_value != NULL)
        return key->default_value;
    return key->type == CORRAL_KEY_STRING ? "" : "0";
}

/* "FILE:LINE" when the line of `key` is known, else "FILE". */
static char *key_location(const corral_service_config *service, const char *key)
{
    unsigned line = service->key_lines != NULL
                        ? GPOINTER_TO_UINT(g_hash_table_lookup(service->key_lines, key))
                        : 0;

    return line != 0 ? g_strdup_printf("%s:%u", service->file, line) : g_strdup(service->file);
}

static const corral_policy_key *find_key(const corral_policy *policy, const char *name)
{
    for (const corral_policy_key *key = policy->keys; key != NULL && key->name != NULL; key++) {
        if (strcmp(key->name, name) == 0)
            return key;
    }
    return NULL;
}

static size_t key_count(const corral_policy *policy)
{
    size_t count = 0;

    while (policy->keys != NULL && policy->keys[count].name != NULL)
        count++;
    return count;
}

/* Parses the keys of `keys` (name -> text) for `module`; `prefix` is put
 * back in front of key names in messages ("queue." for a shadow). */
static corral_policy_value *parse_values(const corral_policy_module *module,
                                         const corral_service_config *service, GHashTable *keys,
                                         const char *prefix, GError **error)
{
    const corral_policy *policy = module->policy;
    size_t count = key_count(policy);
    corral_policy_value *values = g_new0(corral_policy_value, count + 1);
    GHashTableIter iter;
    gpointer name, text;

    g_hash_table_iter_init(&iter, keys);
    while (g_hash_table_iter_next(&iter, &name, &text)) {
        if (find_key(policy, name) == NULL) {
            char *full = g_strconcat(prefix, (const char *)name, NULL);
            char *where = key_location(service, full);
            g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_KEY,
                        "%s: [service %s] %s: unknown key (policy '%s' does not declare it)",
                        where, service->name, full, policy->name);
            g_free(where);
            g_free(full);
            goto fail;
        }
    }
    for (size_t i = 0; i < count; i++) {
        const corral_policy_key *key = &policy->keys[i];
        const char *configured = g_hash_table_lookup(keys, key->name);
        const char *source = configured != NULL ? configured : key->default_value;
        char *problem = NULL;

        if (source == NULL)
            source = corral_policy_key_default(key);
        if (!corral_policy_key_parse(key, source, &values[i], &problem)) {
            char *full = g_strconcat(prefix, key->name, NULL);
            char *where = key_location(service, full);
            g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                        "%s: [service %s] %s: %s%s", where, service->name, full,
                        problem, configured != NULL ? "" : " (the policy's own default)");
            g_free(where);
            g_free(full);
            g_free(problem);
            goto fail;
        }
    }
    return values;
fail:
    corral_policy_values_free(module, values);
    return NULL;
}

corral_policy_value *corral_policy_values_parse(const corral_policy_module *module,
                                                const corral_service_config *service,
                                                GError **error)
{
    GHashTable *own = g_hash_table_new(g_str_hash, g_str_equal);
    GHashTableIter iter;
    gpointer name, text;
    corral_policy_value *values;

    /* "NAME.key" belongs to shadow policy NAME, not to the active one. */
    g_hash_table_iter_init(&iter, service->policy_keys);
    while (g_hash_table_iter_next(&iter, &name, &text)) {
        if (!corral_shadows_owns_key((const char *const *)service->shadow_policies, name))
            g_hash_table_insert(own, name, text);
    }
    values = parse_values(module, service, own, "", error);
    g_hash_table_destroy(own);
    return values;
}

corral_policy_value *corral_policy_values_parse_prefixed(const corral_policy_module *module,
                                                         const corral_service_config *service,
                                                         const char *shadow_name,
                                                         GError **error)
{
    GHashTable *own = g_hash_table_new(g_str_hash, g_str_equal);
    char *prefix = g_strconcat(shadow_name, ".", NULL);
    size_t prefix_len = strlen(prefix);
    GHashTableIter iter;
    gpointer name, text;
    corral_policy_value *values;

    g_hash_table_iter_init(&iter, service->policy_keys);
    while (g_hash_table_iter_next(&iter, &name, &text)) {
        if (strncmp(name, prefix, prefix_len) == 0)
            g_hash_table_insert(own, (char *)name + prefix_len, text);
    }
    values = parse_values(module, service, own, prefix, error);
    g_hash_table_destroy(own);
    g_free(prefix);
    return values;
}

void corral_policy_values_free(const corral_policy_module *module, corral_policy_value *values)
{
    size_t count;

    if (values == NULL)
        return;
    count = key_count(module->policy);
    for (size_t i = 0; i < count; i++) {
        if (module->policy->keys[i].type == CORRAL_KEY_STRING)
            g_free((char *)values[i].s);
    }
    g_free(values);
}
