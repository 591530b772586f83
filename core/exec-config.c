/* SPDX-License-Identifier: MIT */
#include "exec-config.h"

#include <glib.h>
#include <string.h>

void corral_exec_config_init(corral_exec_config *exec)
{
    *exec = (corral_exec_config){ .stderr_level = CORRAL_LEVEL_INFO };
}

void corral_exec_config_clear(corral_exec_config *exec)
{
    g_strfreev(exec->environment);
    g_free(exec->working_directory);
    corral_exec_config_init(exec);
}

static bool is_variable_name(const char *name, size_t len)
{
    if (len == 0 || g_ascii_isdigit(name[0]))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!g_ascii_isalnum(name[i]) && name[i] != '_')
            return false;
    }
    return true;
}

static bool parse_environment(corral_exec_config *exec, const char *value, char **problem)
{
    GError *local = NULL;
    char **words = NULL;
    int count = 0;

    if (*value == '\0') {
        g_strfreev(exec->environment);
        exec->environment = NULL;
        return true;
    }
    if (!g_shell_parse_argv(value, &count, &words, &local)) {
        *problem = g_strdup_printf("not a list of NAME=VALUE words: %s", local->message);
        g_error_free(local);
        return false;
    }
    for (int i = 0; i < count; i++) {
        const char *equals = strchr(words[i], '=');
        size_t name_len = equals != NULL ? (size_t)(equals - words[i]) : strlen(words[i]);

        if (!is_variable_name(words[i], name_len)) {
            *problem = g_strdup_printf("'%.*s' is not a variable name (want NAME=VALUE or NAME)",
                                       (int)name_len, words[i]);
            g_strfreev(words);
            return false;
        }
    }
    g_strfreev(exec->environment);
    exec->environment = words;
    return true;
}

static bool parse_stderr_level(corral_exec_config *exec, const char *value, char **problem)
{
    static const struct {
        const char *name;
        corral_level level;
    } levels[] = {
        { "debug", CORRAL_LEVEL_DEBUG },
        { "info", CORRAL_LEVEL_INFO },
        { "warning", CORRAL_LEVEL_WARNING },
        { "error", CORRAL_LEVEL_ERROR },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++) {
        if (g_ascii_strcasecmp(value, levels[i].name) == 0) {
            exec->stderr_level = levels[i].level;
            return true;
        }
    }
    *problem = g_strdup_printf("'%s' is not a level (debug, info, warning or error)", value);
    return false;
}

bool corral_exec_config_parse_key(corral_exec_config *exec, const char *base_dir,
                                  const char *key, const char *value, bool *known,
                                  char **problem)
{
    *known = true;
    if (strcmp(key, "environment") == 0)
        return parse_environment(exec, value, problem);
    if (strcmp(key, "stderr_level") == 0)
        return parse_stderr_level(exec, value, problem);
    if (strcmp(key, "working_directory") == 0) {
        g_free(exec->working_directory);
        exec->working_directory =
            *value != '\0' ? g_canonicalize_filename(value, base_dir) : NULL;
        return true;
    }
    *known = false;
    return true;
}

char *corral_exec_config_environment_text(const corral_exec_config *exec)
{
    GString *text = g_string_new(NULL);

    for (char **word = exec->environment; word != NULL && *word != NULL; word++) {
        const char *equals = strchr(*word, '=');

        if (text->len > 0)
            g_string_append_c(text, ' ');
        if (equals == NULL) {
            g_string_append(text, *word);
        } else {
            char *quoted = g_shell_quote(equals + 1);
            g_string_append_len(text, *word, equals + 1 - *word);
            g_string_append(text, quoted);
            g_free(quoted);
        }
    }
    return g_string_free(text, FALSE);
}

const char *corral_exec_config_level_name(corral_level level)
{
    switch (level) {
    case CORRAL_LEVEL_DEBUG: return "debug";
    case CORRAL_LEVEL_INFO: return "info";
    case CORRAL_LEVEL_WARNING: return "warning";
    default: return "error";
    }
}

char **corral_exec_config_apply_environment(const corral_exec_config *exec, char **envp)
{
    if (exec->environment == NULL)
        return envp;
    for (char **word = exec->environment; *word != NULL; word++) {
        const char *equals = strchr(*word, '=');

        if (equals != NULL) {
            char *name = g_strndup(*word, (gsize)(equals - *word));
            envp = g_environ_setenv(envp, name, equals + 1, TRUE);
            g_free(name);
        } else if (g_getenv(*word) != NULL) {
            envp = g_environ_setenv(envp, *word, g_getenv(*word), TRUE);
        }
    }
    return envp;
}
