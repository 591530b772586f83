/* SPDX-License-Identifier: MIT */
/*
 * corral-policy-keys - the keys policy plugins declare, as corral.conf(5)
 * shows them.
 *
 * Given plugin files, it loads each as corrald would and prints, in man(7)
 * markup, the policy's name and description and every key with its type,
 * range, default and description.  scripts/update-man-policy-keys.sh puts
 * the output into docs/man/corral.conf.5, and a test in the docs suite
 * fails when the page and the plugins disagree.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "policy-loader.h"

#define LINE_WIDTH 72

/* One word in man(7) markup: '\' is an escape, '-' a minus unless escaped,
 * a leading '.' or '\'' a request; `code` becomes bold. */
static void put_word(GString *out, const char *word, size_t len)
{
    bool bold = false;

    if (len > 0 && (word[0] == '.' || word[0] == '\''))
        g_string_append(out, "\\&");
    for (size_t i = 0; i < len; i++) {
        if (word[i] == '\\')
            g_string_append(out, "\\e");
        else if (word[i] == '-')
            g_string_append(out, "\\-");
        else if (word[i] == '`')
            g_string_append(out, (bold = !bold) ? "\\fB" : "\\fR");
        else
            g_string_append_c(out, word[i]);
    }
}

/* Running text, filled to LINE_WIDTH so that the source reads well too. */
static void put_text(const char *text)
{
    GString *line = g_string_new(NULL);
    const char *p = text;

    while (*p != '\0') {
        size_t len = strcspn(p, " ");
        GString *word = g_string_new(NULL);

        put_word(word, p, len);
        if (line->len > 0 && line->len + 1 + word->len > LINE_WIDTH) {
            puts(line->str);
            g_string_truncate(line, 0);
        }
        if (line->len > 0)
            g_string_append_c(line, ' ');
        g_string_append(line, word->str);
        g_string_free(word, TRUE);
        p += len;
        p += strspn(p, " ");
    }
    if (line->len > 0)
        fputs(line->str, stdout);
    g_string_free(line, TRUE);
}

/* A bound as corral.conf would write it: "10ms", "1h", "30s". */
static void put_bound(const corral_policy_key *key, uint64_t value)
{
    static const struct {
        const char *name;
        uint64_t msecs;
    } units[] = { { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 } };

    if (key->type == CORRAL_KEY_DURATION && value != 0) {
        for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
            if (value % units[i].msecs == 0) {
                printf("%" PRIu64 "%s", value / units[i].msecs, units[i].name);
                return;
            }
        }
        printf("%" PRIu64 "ms", value);
        return;
    }
    printf("%" PRIu64, value);
}

static void put_range(const corral_policy_key *key)
{
    if (key->min == 0 && key->max == 0)
        return;
    fputs(", ", stdout);
    put_bound(key, key->min);
    fputs(" to ", stdout);
    put_bound(key, key->max);
}

static const char *type_name(corral_key_type type)
{
    switch (type) {
    case CORRAL_KEY_UINT: return "number";
    case CORRAL_KEY_BOOL: return "boolean";
    case CORRAL_KEY_DURATION: return "duration";
    default: return "string";
    }
}

static void put_policy(const corral_policy *policy)
{
    printf(".SS policy = %s\n", policy->name);
    if (policy->description != NULL) {
        char *sentence = g_strdup(policy->description);

        sentence[0] = g_ascii_toupper(sentence[0]);
        put_text(sentence);
        fputs(g_str_has_suffix(sentence, ".") ? "\n" : ".\n", stdout);
        g_free(sentence);
    }
    if (policy->keys == NULL || policy->keys[0].name == NULL) {
        fputs("It has no keys of its own.\n", stdout);
        return;
    }
    for (const corral_policy_key *key = policy->keys; key->name != NULL; key++) {
        printf(".TP\n.B ");
        put_text(key->name);
        printf("\n(%s", type_name(key->type));
        put_range(key);
        printf("; default ");
        put_text(corral_policy_key_default(key)[0] != '\0' ? corral_policy_key_default(key)
                                                           : "empty");
        printf(")\n.br\n");
        if (key->description != NULL) {
            char *sentence = g_strdup(key->description);

            sentence[0] = g_ascii_toupper(sentence[0]);
            put_text(sentence);
            fputs(g_str_has_suffix(sentence, ".") ? "\n" : ".\n", stdout);
            g_free(sentence);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: corral-policy-keys PLUGIN.so...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        GError *error = NULL;
        corral_policy_module *module = corral_policy_module_open(argv[i], &error);

        if (module == NULL) {
            fprintf(stderr, "corral-policy-keys: %s\n", error->message);
            g_error_free(error);
            return 1;
        }
        put_policy(module->policy);
        corral_policy_module_unref(module);
    }
    return 0;
}
