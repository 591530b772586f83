/* SPDX-License-Identifier: MIT */
/*
 * config.c - reads the main keyfile and conf.d/ *.conf into a corral_config.
 *
 * GKeyFile parses the syntax, but it merges a group that appears twice and
 * forgets line numbers.  So the raw text of every file is also scanned for
 * "[group]" headers and "key =" lines: that scan is what catches a service
 * defined twice and lets each message point at a line.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define MIB (G_GUINT64_CONSTANT(1) << 20)

#define DEFAULT_POLICY CORRAL_DEFAULT_POLICY
#define DEFAULT_PROCESS_LIMIT CORRAL_DEFAULT_PROCESS_LIMIT
#define DEFAULT_CLIENT_LIMIT CORRAL_DEFAULT_CLIENT_LIMIT
#define DEFAULT_IDLE_KILL_SECS CORRAL_DEFAULT_IDLE_KILL_SECS
#define DEFAULT_VSZ_LIMIT CORRAL_DEFAULT_VSZ_LIMIT
#define MIN_VSZ_LIMIT MIB
#define DEFAULT_FIRST_STATUS_TIMEOUT_MSECS CORRAL_DEFAULT_FIRST_STATUS_TIMEOUT_MSECS
#define DEFAULT_STATUS_BATCH_MSECS CORRAL_DEFAULT_STATUS_BATCH_MSECS
#define MAX_STATUS_BATCH_MSECS 1000u
#define DEFAULT_UNIX_LISTENER_MODE CORRAL_DEFAULT_UNIX_LISTENER_MODE
#define MIN_LISTEN_BACKLOG 4u
/* Far beyond what one machine runs; catches a slipped digit. */
#define MAX_PROCESS_LIMIT 1000000u

/* listen() takes an int, and Linux caps the queue at net.core.somaxconn
 * (at most 65535 where it is a 16-bit field): more is a mistake. */
#define MAX_LISTEN_BACKLOG 65535u
#define CORRAL_GROUP "corral"
#define SERVICE_GROUP_PREFIX "service"
#define CONF_D "conf.d"
#define CONF_SUFFIX ".conf"

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)NULL)->sun_path)

G_DEFINE_QUARK(corral-config-error-quark, corral_config_error)

/* ------------------------------------------------------------------ */
/* Value parsers                                                       */

static void set_problem(char **error_text, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void set_problem(char **error_text, const char *format, ...)
{
    va_list args;

    if (error_text == NULL)
        return;
    va_start(args, format);
    *error_text = g_strdup_vprintf(format, args);
    va_end(args);
}

/* Reads the leading decimal digits of `text`; *end points past them. */
static bool parse_leading_number(const char *text, guint64 *value, const char **end,
                                 char **error_text)
{
    guint64 result = 0;
    const char *p = text;

    if (*p == '-' && g_ascii_isdigit(p[1])) {
        set_problem(error_text, "'%s' is negative", text);
        return false;
    }
    if (!g_ascii_isdigit(*p)) {
        set_problem(error_text, "'%s' is not a number", text);
        return false;
    }
    for (; g_ascii_isdigit(*p); p++) {
        unsigned digit = (unsigned)(*p - '0');

        if (result > (G_MAXUINT64 - digit) / 10) {
            set_problem(error_text, "'%s' is too large", text);
            return false;
        }
        result = result * 10 + digit;
    }
    *value = result;
    *end = p;
    return true;
}

typedef struct unit {
    const char *name;
    guint64 factor;
} unit;

/* Multiplies the number at the start of `text` by the factor of the unit
 * that follows it; a bare number uses `bare_factor` (0: a unit is needed). */
static bool parse_with_unit(const char *text, const unit *units, size_t unit_count,
                            guint64 bare_factor, const char *what, guint64 *value,
                            char **error_text)
{
    guint64 number = 0, factor = 0;
    const char *suffix;

    if (text == NULL || *text == '\0') {
        set_problem(error_text, "empty value, expected %s", what);
        return false;
    }
    if (!g_ascii_isdigit(*text) && *text != '-') {
        set_problem(error_text, "'%s' is not %s", text, what);
        return false;
    }
    if (!parse_leading_number(text, &number, &suffix, error_text))
        return false;
    while (*suffix == ' ')
        suffix++;
    if (*suffix == '\0') {
        factor = bare_factor;
        if (factor == 0) {
            set_problem(error_text, "'%s' needs a unit", text);
            return false;
        }
    }
    for (size_t i = 0; factor == 0 && i < unit_count; i++) {
        if (g_ascii_strcasecmp(suffix, units[i].name) == 0)
            factor = units[i].factor;
    }
    if (factor == 0) {
        set_problem(error_text, "'%s' is not %s (unknown unit '%s')", text, what, suffix);
        return false;
    }
    if (number > G_MAXUINT64 / factor) {
        set_problem(error_text, "'%s' is too large", text);
        return false;
    }
    *value = number * factor;
    return true;
}

bool corral_parse_duration_msecs(const char *text, guint64 bare_unit_msecs, guint64 *msecs,
                                 char **error_text)
{
    static const unit duration_units[] = {
        { "ms", 1 },
        { "msec", 1 },
        { "msecs", 1 },
        { "millisecond", 1 },
        { "milliseconds", 1 },
        { "s", 1000 },
        { "sec", 1000 },
        { "secs", 1000 },
        { "second", 1000 },
        { "seconds", 1000 },
        { "m", 60 * 1000 },
        { "min", 60 * 1000 },
        { "mins", 60 * 1000 },
        { "minute", 60 * 1000 },
        { "minutes", 60 * 1000 },
        { "h", 3600 * 1000 },
        { "hour", 3600 * 1000 },
        { "hours", 3600 * 1000 },
        { "d", 86400 * 1000 },
        { "day", 86400 * 1000 },
        { "days", 86400 * 1000 },
        { "w", 7 * 86400 * 1000 },
        { "week", 7 * 86400 * 1000 },
        { "weeks", 7 * 86400 * 1000 },
    };

    return parse_with_unit(text, duration_units, G_N_ELEMENTS(duration_units), bare_unit_msecs,
                           "a duration", msecs, error_text);
}

bool corral_parse_size(const char *text, guint64 *bytes, char **error_text)
{
    static const unit size_units[] = {
        { "b", 1 },
        { "k", G_GUINT64_CONSTANT(1) << 10 },
        { "kb", G_GUINT64_CONSTANT(1) << 10 },
        { "m", G_GUINT64_CONSTANT(1) << 20 },
        { "mb", G_GUINT64_CONSTANT(1) << 20 },
        { "g", G_GUINT64_CONSTANT(1) << 30 },
        { "gb", G_GUINT64_CONSTANT(1) << 30 },
        { "t", G_GUINT64_CONSTANT(1) << 40 },
        { "tb", G_GUINT64_CONSTANT(1) << 40 },
    };

    return parse_with_unit(text, size_units, G_N_ELEMENTS(size_units), 1, "a size", bytes,
                           error_text);
}

bool corral_parse_uint(const char *text, guint64 max, guint64 *value, char **error_text)
{
    guint64 number = 0;
    const char *end;

    if (text == NULL || *text == '\0') {
        set_problem(error_text, "empty value, expected a number");
        return false;
    }
    if (!parse_leading_number(text, &number, &end, error_text))
        return false;
    if (*end != '\0') {
        set_problem(error_text, "'%s' is not a number", text);
        return false;
    }
    if (number > max) {
        set_problem(error_text, "'%s' is too large (maximum %" G_GUINT64_FORMAT ")", text, max);
        return false;
    }
    *value = number;
    return true;
}

bool corral_parse_bool(const char *text, bool *value, char **error_text)
{
    static const char *const truths[] = { "yes", "true", "1" };
    static const char *const lies[] = { "no", "false", "0" };

    for (size_t i = 0; text != NULL && i < G_N_ELEMENTS(truths); i++) {
        if (g_ascii_strcasecmp(text, truths[i]) == 0) {
            *value = true;
            return true;
        }
        if (g_ascii_strcasecmp(text, lies[i]) == 0) {
            *value = false;
            return true;
        }
    }
    set_problem(error_text, "'%s' is not a boolean (use yes or no)", text != NULL ? text : "");
    return false;
}

static bool parse_octal_mode(const char *text, unsigned *mode, char **error_text)
{
    bool all_octal = *text != '\0' && text[strspn(text, "01234567")] == '\0';
    /* strtoul saturates on overflow, which the range check catches. */
    unsigned long value = all_octal ? strtoul(text, NULL, 8) : ULONG_MAX;

    if (value > 0777) {
        set_problem(error_text, "'%s' is not an octal mode from 0 to 0777 (e.g. 0600)", text);
        return false;
    }
    *mode = (unsigned)value;
    return true;
}

/* ------------------------------------------------------------------ */
/* Files and where things are in them                                  */

typedef struct header_line {
    char *group;
    unsigned line;
} header_line;

/* One file of the configuration while it is being loaded. */
typedef struct config_file {
    char *path;
    GKeyFile *keyfile;
    GArray *headers;       /* header_line: every "[group]" line, in order */
    GHashTable *key_lines; /* "group\x1fkey" -> line of its last "key =" */
} config_file;

static void header_line_clear(gpointer data)
{
    g_free(((header_line *)data)->group);
}

static void config_file_free(gpointer data)
{
    config_file *file = data;

    g_free(file->path);
    g_key_file_free(file->keyfile);
    g_array_unref(file->headers);
    g_hash_table_unref(file->key_lines);
    g_free(file);
}

static char *key_id(const char *group, const char *key)
{
    return g_strconcat(group, "\x1f", key, NULL);
}

static unsigned key_line(const config_file *file, const char *group, const char *key)
{
    char *id = key_id(group, key);
    unsigned line = GPOINTER_TO_UINT(g_hash_table_lookup(file->key_lines, id));

    g_free(id);
    return line;
}

static unsigned group_line(const config_file *file, const char *group)
{
    for (guint i = 0; i < file->headers->len; i++) {
        const header_line *header = &g_array_index(file->headers, header_line, i);

        if (strcmp(header->group, group) == 0)
            return header->line;
    }
    return 0;
}

/* Records the headers and key lines the way GKeyFile reads them: leading
 * blanks ignored, "#" starts a comment, the group ends at the first ']'. */
static void scan_lines(config_file *file, const char *text)
{
    char **lines = g_strsplit(text, "\n", -1);
    const char *group = NULL;

    for (unsigned i = 0; lines[i] != NULL; i++) {
        char *line = g_strstrip(lines[i]);
        char *end;

        if (line[0] == '[' && (end = strchr(line, ']')) != NULL) {
            header_line header = { g_strndup(line + 1, (gsize)(end - line - 1)), i + 1 };

            g_array_append_val(file->headers, header);
            group = header.group;
        } else if (line[0] != '#' && group != NULL && (end = strchr(line, '=')) != NULL) {
            *end = '\0';
            g_hash_table_insert(file->key_lines, key_id(group, g_strchomp(line)),
                                GUINT_TO_POINTER(i + 1));
        }
    }
    g_strfreev(lines);
}

/* True when `group` is "service NAME"; *name gets NAME, trimmed. */
static bool is_service_group(const char *group, char **name)
{
    const char *rest;

    if (!g_str_has_prefix(group, SERVICE_GROUP_PREFIX))
        return false;
    rest = group + strlen(SERVICE_GROUP_PREFIX);
    if (*rest != '\0' && !g_ascii_isspace(*rest))
        return false;
    *name = g_strstrip(g_strdup(rest));
    return true;
}

/* How a group is shown in messages: "[service  echo ]" reads as
 * "[service echo]", like the policy loader writes it. */
static char *group_label(const char *group)
{
    char *name = NULL, *label;

    if (!is_service_group(group, &name) || *name == '\0') {
        g_free(name);
        return g_strdup(group);
    }
    label = g_strdup_printf(SERVICE_GROUP_PREFIX " %s", name);
    g_free(name);
    return label;
}

/* "<file>[:<line>]: [<group>] <key>: <problem>", leaving out what is unknown. */
static void fail_valist(GError **error, CorralConfigError code, const char *path, unsigned line,
                        const char *group, const char *key, const char *format, va_list args)
    G_GNUC_PRINTF(7, 0);

static void fail_valist(GError **error, CorralConfigError code, const char *path, unsigned line,
                        const char *group, const char *key, const char *format, va_list args)
{
    GString *message = g_string_new(path);

    if (line > 0)
        g_string_append_printf(message, ":%u", line);
    g_string_append(message, ": ");
    if (group != NULL) {
        char *label = group_label(group);

        g_string_append_printf(message, "[%s]", label);
        if (key != NULL)
            g_string_append_printf(message, " %s", key);
        g_string_append(message, ": ");
        g_free(label);
    }
    g_string_append_vprintf(message, format, args);
    g_set_error_literal(error, CORRAL_CONFIG_ERROR, code, message->str);
    g_string_free(message, TRUE);
}

/* Reports a problem at a known place; `group` may be NULL. */
static void fail_at_line(GError **error, CorralConfigError code, const char *path,
                         unsigned line, const char *group, const char *format, ...)
    G_GNUC_PRINTF(6, 7);

static void fail_at_line(GError **error, CorralConfigError code, const char *path,
                         unsigned line, const char *group, const char *format, ...)
{
    va_list args;

    va_start(args, format);
    fail_valist(error, code, path, line, group, NULL, format, args);
    va_end(args);
}

/* Reports a problem in `file`, at the key's line if it has one, else at
 * the group's header.  `group` is the name as GKeyFile knows it. */
static void fail(GError **error, CorralConfigError code, const config_file *file,
                 const char *group, const char *key, const char *format, ...)
    G_GNUC_PRINTF(6, 7);

static void fail(GError **error, CorralConfigError code, const config_file *file,
                 const char *group, const char *key, const char *format, ...)
{
    unsigned line = 0;
    va_list args;

    if (group != NULL && key != NULL)
        line = key_line(file, group, key);
    if (group != NULL && line == 0)
        line = group_line(file, group);
    va_start(args, format);
    fail_valist(error, code, file->path, line, group, key, format, args);
    va_end(args);
}

static bool read_text(const char *path, GString *text, GError **error)
{
    char chunk[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fail_at_line(error, CORRAL_CONFIG_ERROR_IO, path, 0, NULL, "cannot open: %s",
                     g_strerror(errno));
        return false;
    }
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof(chunk));

        if (got == 0)
            break;
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fail_at_line(error, CORRAL_CONFIG_ERROR_IO, path, 0, NULL, "cannot read: %s",
                         g_strerror(errno));
            close(fd);
            return false;
        }
        g_string_append_len(text, chunk, got);
    }
    close(fd);
    return true;
}

/* GKeyFile's messages carry no line number: the first prefix of the text
 * that fails to parse ends at the offending line.  Once a prefix fails,
 * every longer one fails too, so a binary search over the line ends finds
 * it in O(log n) parses instead of one parse per line. */
static bool prefix_parses(const GString *text, gsize len)
{
    GKeyFile *probe = g_key_file_new();
    bool parsed = g_key_file_load_from_data(probe, text->str, len, G_KEY_FILE_NONE, NULL);

    g_key_file_free(probe);
    return parsed;
}

static unsigned find_syntax_error_line(const GString *text)
{
    GArray *ends = g_array_new(FALSE, FALSE, sizeof(gsize));
    guint good = 0, bad; /* line counts: a prefix known to parse, one known to fail */
    unsigned line = 0;

    for (gsize end = 0; end < text->len; end++) {
        gsize prefix;

        end += strcspn(text->str + end, "\n");
        prefix = MIN(end + 1, text->len);
        g_array_append_val(ends, prefix);
    }
    bad = ends->len;
    if (bad > 0 && !prefix_parses(text, g_array_index(ends, gsize, bad - 1))) {
        while (bad - good > 1) {
            guint middle = good + (bad - good) / 2;

            if (prefix_parses(text, g_array_index(ends, gsize, middle - 1)))
                good = middle;
            else
                bad = middle;
        }
        line = bad;
    }
    g_array_unref(ends);
    return line;
}

static config_file *config_file_load(const char *path, GError **error)
{
    GString *text = g_string_new(NULL);
    GError *parse_error = NULL;
    config_file *file;
    const char *nul;

    if (!read_text(path, text, error)) {
        g_string_free(text, TRUE);
        return NULL;
    }
    /* GKeyFile reads past a NUL byte but the line scan stops there, so
     * headers after it would escape the checks. */
    nul = memchr(text->str, '\0', text->len);
    if (nul != NULL) {
        unsigned line = 1;

        for (const char *p = text->str; p < nul; p++)
            line += *p == '\n';
        fail_at_line(error, CORRAL_CONFIG_ERROR_SYNTAX, path, line, NULL,
                     "contains a NUL byte");
        g_string_free(text, TRUE);
        return NULL;
    }
    file = g_new0(config_file, 1);
    file->path = g_strdup(path);
    file->keyfile = g_key_file_new();
    file->headers = g_array_new(FALSE, FALSE, sizeof(header_line));
    g_array_set_clear_func(file->headers, header_line_clear);
    file->key_lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    if (!g_key_file_load_from_data(file->keyfile, text->str, text->len, G_KEY_FILE_NONE,
                                   &parse_error)) {
        fail_at_line(error, CORRAL_CONFIG_ERROR_SYNTAX, path, find_syntax_error_line(text),
                     NULL, "%s", parse_error->message);
        g_error_free(parse_error);
        g_string_free(text, TRUE);
        config_file_free(file);
        return NULL;
    }
    scan_lines(file, text->str);
    g_string_free(text, TRUE);
    return file;
}

static int compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends conf.d/ *.conf in strcmp order.  Hidden files are skipped, as a
 * shell glob would; a missing conf.d is no error. */
static bool list_conf_d(const char *dir, GPtrArray *paths, GError **error)
{
    char *conf_d = g_build_filename(dir, CONF_D, NULL);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    DIR *listing = opendir(conf_d);
    struct dirent *entry;

    if (listing == NULL) {
        bool missing = errno == ENOENT;

        if (!missing)
            fail_at_line(error, CORRAL_CONFIG_ERROR_IO, conf_d, 0, NULL,
                         "cannot open the folder: %s", g_strerror(errno));
        g_ptr_array_unref(names);
        g_free(conf_d);
        return missing;
    }
    while ((entry = readdir(listing)) != NULL) {
        if (entry->d_name[0] != '.' && g_str_has_suffix(entry->d_name, CONF_SUFFIX))
            g_ptr_array_add(names, g_strdup(entry->d_name));
    }
    closedir(listing);
    g_ptr_array_sort(names, compare_strings);
    for (guint i = 0; i < names->len; i++)
        g_ptr_array_add(paths, g_build_filename(conf_d, g_ptr_array_index(names, i), NULL));
    g_ptr_array_unref(names);
    g_free(conf_d);
    return true;
}

/* ------------------------------------------------------------------ */
/* Groups                                                              */

/* Names end up in log prefixes, argv[0] and the environment. */
static bool is_valid_name(const char *name)
{
    if (*name == '\0')
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    }
    return true;
}

typedef struct loader {
    corral_config *config;
    GPtrArray *files;           /* config_file*, in reading order */
    GHashTable *service_places; /* service name -> "file:line" of its header */
} loader;

/* Every header must be [corral] or a [service NAME] seen nowhere before. */
static bool check_headers(loader *load, const config_file *file, GError **error)
{
    for (guint i = 0; i < file->headers->len; i++) {
        const header_line *header = &g_array_index(file->headers, header_line, i);
        char *name = NULL;
        const char *first_place;

        if (strcmp(header->group, CORRAL_GROUP) == 0)
            continue;
        if (!is_service_group(header->group, &name)) {
            fail(error, CORRAL_CONFIG_ERROR_KEY, file, header->group, NULL,
                 "unknown group (expected [corral] or [service NAME])");
            return false;
        }
        if (!is_valid_name(name)) {
            fail(error, CORRAL_CONFIG_ERROR_KEY, file, header->group, NULL,
                 *name == '\0' ? "the service needs a name: [service NAME]"
                               : "a service name may hold only letters, digits, '-', '_' and '.'");
            g_free(name);
            return false;
        }
        first_place = g_hash_table_lookup(load->service_places, name);
        if (first_place != NULL) {
            fail_at_line(error, CORRAL_CONFIG_ERROR_DUPLICATE, file->path, header->line,
                         header->group, "service '%s' is already defined at %s", name,
                         first_place);
            g_free(name);
            return false;
        }
        g_hash_table_insert(load->service_places, name,
                            g_strdup_printf("%s:%u", file->path, header->line));
    }
    return true;
}

/* The value of `key`, unescaped and trimmed; NULL (with `error` set) when
 * GKeyFile cannot interpret it. */
static char *read_value(const config_file *file, const char *group, const char *key,
                        GError **error)
{
    GError *keyfile_error = NULL;
    char *value = g_key_file_get_string(file->keyfile, group, key, &keyfile_error);

    /* A bad escape sets the error yet still returns a value. */
    if (keyfile_error != NULL) {
        fail(error, CORRAL_CONFIG_ERROR_VALUE, file, group, key, "%s", keyfile_error->message);
        g_error_free(keyfile_error);
        g_free(value);
        return NULL;
    }
    return g_strstrip(value);
}

/* One key of the [corral] group: parses `value` into `config`, or sets
 * *problem (g_free()d by the caller). */
typedef bool corral_key_handler(corral_config *config, const char *value, char **problem);

static bool set_base_dir(corral_config *config, const char *value, char **problem)
{
    if (*value == '\0') {
        *problem = g_strdup("must not be empty");
        return false;
    }
    g_free(config->base_dir);
    config->base_dir = g_canonicalize_filename(value, config->dir);
    return true;
}

static bool set_policy_dir(corral_config *config, const char *value, char **problem)
{
    (void)problem;
    g_free(config->policy_dir);
    config->policy_dir = *value != '\0' ? g_canonicalize_filename(value, config->dir) : NULL;
    return true;
}

static bool set_reload_kill_timeout(corral_config *config, const char *value, char **problem)
{
    guint64 msecs;

    if (!corral_parse_duration_msecs(value, 1000, &msecs, problem))
        return false;
    if (msecs == 0 || msecs > G_MAXUINT) {
        *problem = g_strdup_printf("'%s' must be above 0 and at most %u msecs", value, G_MAXUINT);
        return false;
    }
    config->reload_kill_timeout_msecs = (unsigned)msecs;
    return true;
}

static bool parse_inet_item(const char *item, char **address, guint16 *port, char **problem);

/* Where the master's own log goes instead of stderr; SIGUSR1 reopens it. */
static bool set_log_path(corral_config *config, const char *value, char **problem)
{
    (void)problem;
    g_free(config->log_path);
    config->log_path = *value != '\0' ? g_canonicalize_filename(value, config->dir) : NULL;
    return true;
}

/* "ADDRESS:PORT" of the HTTP metrics endpoint; empty or port 0 turns it off. */
static bool set_metrics_listener(corral_config *config, const char *value, char **problem)
{
    char *address = NULL;
    guint16 port = 0;

    if (*value != '\0' && !parse_inet_item(value, &address, &port, problem))
        return false;
    g_free(config->metrics_address);
    config->metrics_address = port != 0 ? address : NULL;
    config->metrics_port = port;
    if (port == 0)
        g_free(address);
    return true;
}

/* The least important lines corrald writes; a reload changes it. */
static bool set_log_level(corral_config *config, const char *value, char **problem)
{
    corral_level level;

    if (!corral_log_level_from_name(value, &level)) {
        set_problem(problem, "'%s' is not a log level (use debug, info, warning or error)",
                    value);
        return false;
    }
    config->log_level = (int)level;
    return true;
}

/* The group whose members may read corralctl's views (status, processes,
 * journal, metrics) but change nothing; resolved when the socket opens. */
static bool set_control_group(corral_config *config, const char *value, char **problem)
{
    (void)problem;
    g_free(config->control_group);
    config->control_group = *value != '\0' ? g_strdup(value) : NULL;
    return true;
}

static const struct {
    const char *key;
    corral_key_handler *apply;
} corral_group_keys[] = {
    { "base_dir", set_base_dir },
    { "policy_dir", set_policy_dir },
    { "reload_kill_timeout", set_reload_kill_timeout },
    { "log_path", set_log_path },
    { "metrics_listener", set_metrics_listener },
    { "control_group", set_control_group },
    { "log_level", set_log_level },
};

static corral_key_handler *find_corral_key(const char *key)
{
    for (size_t i = 0; i < G_N_ELEMENTS(corral_group_keys); i++) {
        if (strcmp(corral_group_keys[i].key, key) == 0)
            return corral_group_keys[i].apply;
    }
    return NULL;
}

/* The [corral] group; a later file overrides an earlier one key by key. */
static bool apply_corral_group(corral_config *config, const config_file *file, GError **error)
{
    char **keys;
    bool ok = true;

    if (!g_key_file_has_group(file->keyfile, CORRAL_GROUP))
        return true;
    keys = g_key_file_get_keys(file->keyfile, CORRAL_GROUP, NULL, NULL);
    for (size_t i = 0; ok && keys[i] != NULL; i++) {
        const char *key = keys[i];
        corral_key_handler *apply = find_corral_key(key);
        char *value, *problem = NULL;

        if (apply == NULL) {
            GString *known = g_string_new(NULL);
            for (size_t k = 0; k < G_N_ELEMENTS(corral_group_keys); k++)
                g_string_append_printf(known, "%s%s", k > 0 ? ", " : "", corral_group_keys[k].key);
            fail(error, CORRAL_CONFIG_ERROR_KEY, file, CORRAL_GROUP, key,
                 "unknown key (the [corral] group takes %s)", known->str);
            g_string_free(known, TRUE);
            ok = false;
            break;
        }
        value = read_value(file, CORRAL_GROUP, key, error);
        if (value == NULL) {
            ok = false;
        } else if (!apply(config, value, &problem)) {
            fail(error, CORRAL_CONFIG_ERROR_VALUE, file, CORRAL_GROUP, key, "%s", problem);
            g_free(problem);
            ok = false;
        } else {
            unsigned line = key_line(file, CORRAL_GROUP, key);
            g_hash_table_replace(config->key_places, g_strdup(key),
                                 line > 0 ? g_strdup_printf("%s:%u", file->path, line)
                                          : g_strdup(file->path));
        }
        g_free(value);
    }
    g_strfreev(keys);
    return ok;
}

/* ------------------------------------------------------------------ */
/* Services                                                            */

/* A service while its group is read; listeners wait for the end because
 * the unix_listener_* keys may come after unix_listener. */
typedef struct service_draft {
    const corral_config *config;
    corral_service_config *service;
    bool have_executable;
    bool have_listen_backlog;
    guint64 listen_backlog;
    char *unix_listener, *inet_listener;
    unsigned unix_listener_mode;
    char *unix_listener_user, *unix_listener_group;
} service_draft;

typedef bool service_key_parser(service_draft *draft, const char *value, char **problem);

/* An empty value leaves the field unset (NULL), as in Dovecot. */
static void replace_string(char **field, const char *value)
{
    g_free(*field);
    *field = *value != '\0' ? g_strdup(value) : NULL;
}

static bool parse_unsigned(const char *value, guint64 max, unsigned *field, char **problem)
{
    guint64 number;

    if (!corral_parse_uint(value, max, &number, problem))
        return false;
    *field = (unsigned)number;
    return true;
}

static bool parse_executable(service_draft *draft, const char *value, char **problem)
{
    if (*value == '\0') {
        set_problem(problem, "must not be empty");
        return false;
    }
    replace_string(&draft->service->executable, value);
    draft->have_executable = true;
    return true;
}

static bool parse_type(service_draft *draft, const char *value, char **problem)
{
    static const struct {
        const char *name;
        corral_service_type type;
    } types[] = {
        { "", CORRAL_SERVICE_DEFAULT },
        { "login", CORRAL_SERVICE_LOGIN },
        { "worker", CORRAL_SERVICE_WORKER },
        { "startup", CORRAL_SERVICE_STARTUP },
    };
    static const char *const dovecot_internal_types[] = { "log", "anvil", "config" };

    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        if (strcmp(value, types[i].name) == 0) {
            draft->service->type = types[i].type;
            return true;
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(dovecot_internal_types); i++) {
        if (strcmp(value, dovecot_internal_types[i]) == 0) {
            set_problem(problem, "type '%s' is not supported", value);
            return false;
        }
    }
    set_problem(problem, "unknown service type '%s' (use login, worker, startup or leave empty)",
                value);
    return false;
}

/* The name becomes a module file name: no paths, no surprises. */
static bool parse_policy(service_draft *draft, const char *value, char **problem)
{
    for (const char *p = value; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_') {
            set_problem(problem, "'%s' is not a policy name (letters, digits, '-' and '_')",
                        value);
            return false;
        }
    }
    if (*value == '\0') {
        set_problem(problem, "must not be empty");
        return false;
    }
    g_free(draft->service->policy);
    draft->service->policy = g_strdup(value);
    return true;
}

static bool parse_process_min_avail(service_draft *draft, const char *value, char **problem)
{
    return parse_unsigned(value, MAX_PROCESS_LIMIT, &draft->service->process_min_avail, problem);
}

static bool parse_process_limit(service_draft *draft, const char *value, char **problem)
{
    return parse_unsigned(value, MAX_PROCESS_LIMIT, &draft->service->process_limit, problem);
}

static bool parse_client_limit(service_draft *draft, const char *value, char **problem)
{
    return parse_unsigned(value, INT_MAX, &draft->service->client_limit, problem);
}

static bool parse_service_count(service_draft *draft, const char *value, char **problem)
{
    return parse_unsigned(value, UINT_MAX, &draft->service->service_count, problem);
}

static bool parse_idle_kill(service_draft *draft, const char *value, char **problem)
{
    guint64 msecs, secs;

    if (strcmp(value, "infinite") == 0 || strcmp(value, "never") == 0) {
        draft->service->idle_kill_secs = CORRAL_IDLE_KILL_NEVER;
        return true;
    }
    if (!corral_parse_duration_msecs(value, 1000, &msecs, problem))
        return false;
    secs = msecs / 1000 + (msecs % 1000 != 0);
    if (secs > CORRAL_IDLE_KILL_NEVER) {
        set_problem(problem, "'%s' is too long (use 'never' to turn idle kill off)", value);
        return false;
    }
    draft->service->idle_kill_secs = secs == 0 ? DEFAULT_IDLE_KILL_SECS : (unsigned)secs;
    return true;
}

static bool parse_vsz_limit(service_draft *draft, const char *value, char **problem)
{
    guint64 bytes;

    if (!corral_parse_size(value, &bytes, problem))
        return false;
    if (bytes != 0 && bytes < MIN_VSZ_LIMIT) {
        set_problem(problem, "'%s' is too low (minimum 1M, or 0 for no limit)", value);
        return false;
    }
    draft->service->vsz_limit = bytes;
    return true;
}

static bool parse_user(service_draft *draft, const char *value,
                       char **problem G_GNUC_UNUSED)
{
    replace_string(&draft->service->user, value);
    return true;
}

static bool parse_group(service_draft *draft, const char *value,
                        char **problem G_GNUC_UNUSED)
{
    replace_string(&draft->service->group, value);
    return true;
}

static bool parse_extra_groups(service_draft *draft, const char *value,
                               char **problem G_GNUC_UNUSED)
{
    replace_string(&draft->service->extra_groups, value);
    return true;
}

static bool parse_chroot(service_draft *draft, const char *value,
                         char **problem G_GNUC_UNUSED)
{
    g_free(draft->service->chroot);
    draft->service->chroot =
        *value != '\0' ? g_canonicalize_filename(value, draft->config->base_dir) : NULL;
    return true;
}

static bool parse_shadow_policies(service_draft *draft, const char *value, char **problem)
{
    char **names = g_strsplit_set(value, ", ", -1);
    GPtrArray *kept = g_ptr_array_new();

    for (char **name = names; *name != NULL; name++) {
        if (**name == '\0')
            continue;
        for (const char *c = *name; *c != '\0'; c++) {
            if (!g_ascii_isalnum(*c) && *c != '_' && *c != '-') {
                set_problem(problem, "'%s' is not a policy name", *name);
                g_ptr_array_free(kept, TRUE);
                g_strfreev(names);
                return false;
            }
        }
        g_ptr_array_add(kept, g_strdup(*name));
    }
    g_strfreev(names);
    g_ptr_array_add(kept, NULL);
    g_strfreev(draft->service->shadow_policies);
    draft->service->shadow_policies = (char **)g_ptr_array_free(kept, FALSE);
    return true;
}

static bool parse_allow_root(service_draft *draft, const char *value, char **problem)
{
    return corral_parse_bool(value, &draft->service->allow_root, problem);
}

static bool parse_first_status_timeout(service_draft *draft, const char *value, char **problem)
{
    guint64 msecs;

    if (!corral_parse_duration_msecs(value, 1000, &msecs, problem))
        return false;
    if (msecs == 0) {
        set_problem(problem, "must be greater than 0");
        return false;
    }
    if (msecs > UINT_MAX) {
        set_problem(problem, "'%s' is too long (at most %u ms)", value, UINT_MAX);
        return false;
    }
    draft->service->first_status_timeout_msecs = (unsigned)msecs;
    return true;
}

static bool parse_status_batch_interval(service_draft *draft, const char *value, char **problem)
{
    guint64 msecs;

    /* Bare numbers are milliseconds: seconds would make no sense here. */
    if (!corral_parse_duration_msecs(value, 1, &msecs, problem))
        return false;
    if (msecs > MAX_STATUS_BATCH_MSECS) {
        set_problem(problem, "'%s' is too long (at most %ums; 0 turns batching off)", value,
                    MAX_STATUS_BATCH_MSECS);
        return false;
    }
    draft->service->status_batch_msecs = (unsigned)msecs;
    return true;
}

static bool parse_listen_backlog(service_draft *draft, const char *value, char **problem)
{
    if (!corral_parse_uint(value, G_MAXUINT64, &draft->listen_backlog, problem))
        return false;
    if (draft->listen_backlog > MAX_LISTEN_BACKLOG) {
        *problem = g_strdup_printf("%" G_GUINT64_FORMAT " is above %u, more than a listen "
                                   "queue can hold (the kernel caps it at "
                                   "net.core.somaxconn)", draft->listen_backlog,
                                   MAX_LISTEN_BACKLOG);
        return false;
    }
    draft->have_listen_backlog = true;
    return true;
}

static bool parse_inet_listener(service_draft *draft, const char *value,
                                char **problem G_GNUC_UNUSED)
{
    replace_string(&draft->inet_listener, value);
    return true;
}

static bool parse_unix_listener(service_draft *draft, const char *value,
                                char **problem G_GNUC_UNUSED)
{
    replace_string(&draft->unix_listener, value);
    return true;
}

static bool parse_unix_listener_mode(service_draft *draft, const char *value, char **problem)
{
    return parse_octal_mode(value, &draft->unix_listener_mode, problem);
}

static bool parse_unix_listener_user(service_draft *draft, const char *value,
                                     char **problem G_GNUC_UNUSED)
{
    replace_string(&draft->unix_listener_user, value);
    return true;
}

static bool parse_unix_listener_group(service_draft *draft, const char *value,
                                      char **problem G_GNUC_UNUSED)
{
    replace_string(&draft->unix_listener_group, value);
    return true;
}

static const struct service_key {
    const char *name;
    service_key_parser *parse;
} service_keys[] = {
    { "executable", parse_executable },
    { "type", parse_type },
    { "policy", parse_policy },
    { "process_min_avail", parse_process_min_avail },
    { "process_limit", parse_process_limit },
    { "client_limit", parse_client_limit },
    { "service_count", parse_service_count },
    { "idle_kill", parse_idle_kill },
    { "vsz_limit", parse_vsz_limit },
    { "user", parse_user },
    { "group", parse_group },
    { "extra_groups", parse_extra_groups },
    { "chroot", parse_chroot },
    { "allow_root", parse_allow_root },
    { "shadow_policies", parse_shadow_policies },
    { "first_status_timeout", parse_first_status_timeout },
    { "status_batch_interval", parse_status_batch_interval },
    { "listen_backlog", parse_listen_backlog },
    { "inet_listener", parse_inet_listener },
    { "unix_listener", parse_unix_listener },
    { "unix_listener_mode", parse_unix_listener_mode },
    { "unix_listener_user", parse_unix_listener_user },
    { "unix_listener_group", parse_unix_listener_group },
};

static service_key_parser *find_service_key(const char *key)
{
    for (size_t i = 0; i < G_N_ELEMENTS(service_keys); i++) {
        if (strcmp(service_keys[i].name, key) == 0)
            return service_keys[i].parse;
    }
    return NULL;
}

static void listener_config_free(gpointer data)
{
    corral_listener_config *listener = data;

    g_free(listener->name);
    g_free(listener->address);
    g_free(listener->path);
    g_free(listener->user);
    g_free(listener->group);
    g_free(listener);
}

static void service_config_free(gpointer data)
{
    corral_service_config *service = data;

    g_free(service->name);
    g_free(service->file);
    g_free(service->executable);
    g_free(service->policy);
    g_free(service->user);
    g_free(service->group);
    g_free(service->extra_groups);
    g_free(service->chroot);
    g_strfreev(service->shadow_policies);
    corral_exec_config_clear(&service->exec);
    g_ptr_array_unref(service->listeners);
    g_hash_table_unref(service->policy_keys);
    g_hash_table_unref(service->key_lines);
    g_free(service);
}

static bool has_listener(const corral_service_config *service, const corral_listener_config *wanted)
{
    for (guint i = 0; i < service->listeners->len; i++) {
        const corral_listener_config *listener = g_ptr_array_index(service->listeners, i);

        if (listener->kind != wanted->kind)
            continue;
        if (wanted->kind == CORRAL_LISTENER_UNIX && strcmp(listener->path, wanted->path) == 0)
            return true;
        if (wanted->kind == CORRAL_LISTENER_INET && listener->port == wanted->port &&
            strcmp(listener->address, wanted->address) == 0)
            return true;
    }
    return false;
}

/* Adds `listener` unless the service already has it; the listener is
 * consumed either way. */
static bool add_listener(corral_service_config *service, corral_listener_config *listener)
{
    bool duplicate = has_listener(service, listener);

    if (duplicate)
        listener_config_free(listener);
    else
        g_ptr_array_add(service->listeners, listener);
    return !duplicate;
}

static bool add_unix_listeners(service_draft *draft, const config_file *file, const char *group,
                               GError **error)
{
    corral_service_config *service = draft->service;
    char **items;
    bool ok = true;

    /* As in Dovecot, mode 0 turns the unix listeners off. */
    if (draft->unix_listener == NULL || draft->unix_listener_mode == 0)
        return true;
    items = g_strsplit(draft->unix_listener, ";", -1);
    for (size_t i = 0; ok && items[i] != NULL; i++) {
        const char *item = g_strstrip(items[i]);
        corral_listener_config *listener;

        if (*item == '\0')
            continue;
        listener = g_new0(corral_listener_config, 1);
        listener->kind = CORRAL_LISTENER_UNIX;
        listener->path = g_canonicalize_filename(item, draft->config->base_dir);
        listener->name = g_path_get_basename(listener->path);
        listener->mode = draft->unix_listener_mode;
        listener->user = g_strdup(draft->unix_listener_user);
        listener->group = g_strdup(draft->unix_listener_group);
        if (strlen(listener->path) >= SUN_PATH_SIZE) {
            fail(error, CORRAL_CONFIG_ERROR_VALUE, file, group, "unix_listener",
                 "'%s' is too long for a unix socket (at most %zu bytes)", listener->path,
                 SUN_PATH_SIZE - 1);
            listener_config_free(listener);
            ok = false;
        } else if (!add_listener(service, listener)) {
            fail(error, CORRAL_CONFIG_ERROR_DUPLICATE, file, group, "unix_listener",
                 "'%s' is listed twice", item);
            ok = false;
        }
    }
    g_strfreev(items);
    return ok;
}

/* Splits "ADDRESS:PORT", "[IPV6]:PORT" or "*:PORT".  The address comes back
 * in inet_ntop form ("*" stays "*"); port 0 means the listener is off. */
static bool parse_inet_item(const char *item, char **address, guint16 *port, char **problem)
{
    char *host;
    const char *port_text;
    int family = AF_INET;
    unsigned char binary[sizeof(struct in6_addr)];
    char normal[INET6_ADDRSTRLEN];
    guint64 number;
    char *port_problem = NULL;

    if (item[0] == '[') {
        const char *close = strchr(item, ']');

        if (close == NULL) {
            set_problem(problem, "'%s' has no ']' after the IPv6 address", item);
            return false;
        }
        host = g_strndup(item + 1, (gsize)(close - item - 1));
        port_text = close[1] == ':' ? close + 2 : NULL;
        family = AF_INET6;
    } else {
        const char *colon = strrchr(item, ':');

        host = colon != NULL ? g_strndup(item, (gsize)(colon - item)) : g_strdup(item);
        port_text = colon != NULL ? colon + 1 : NULL;
        if (strchr(host, ':') != NULL) {
            set_problem(problem, "'%s': put an IPv6 address in brackets, e.g. [::1]:143", item);
            g_free(host);
            return false;
        }
    }
    if (port_text == NULL || *port_text == '\0') {
        set_problem(problem, "'%s' has no port (use ADDRESS:PORT)", item);
        g_free(host);
        return false;
    }
    if (family == AF_INET && strcmp(host, "*") == 0) {
        g_strlcpy(normal, host, sizeof(normal));
    } else if (inet_pton(family, host, binary) != 1) {
        set_problem(problem, "'%s': '%s' is not a numeric %s address", item, host,
                    family == AF_INET ? "IPv4" : "IPv6");
        g_free(host);
        return false;
    } else {
        inet_ntop(family, binary, normal, sizeof(normal));
    }
    g_free(host);
    if (!corral_parse_uint(port_text, 65535, &number, &port_problem)) {
        set_problem(problem, "'%s': port %s", item, port_problem);
        g_free(port_problem);
        return false;
    }
    *address = g_strdup(normal);
    *port = (guint16)number;
    return true;
}

static bool add_inet_listeners(service_draft *draft, const config_file *file, const char *group,
                               GError **error)
{
    corral_service_config *service = draft->service;
    char **items;
    bool ok = true;

    if (draft->inet_listener == NULL)
        return true;
    items = g_strsplit(draft->inet_listener, ";", -1);
    for (size_t i = 0; ok && items[i] != NULL; i++) {
        const char *item = g_strstrip(items[i]);
        corral_listener_config *listener;
        char *address = NULL, *problem = NULL;
        guint16 port = 0;

        if (*item == '\0')
            continue;
        if (!parse_inet_item(item, &address, &port, &problem)) {
            fail(error, CORRAL_CONFIG_ERROR_VALUE, file, group, "inet_listener", "%s", problem);
            g_free(problem);
            ok = false;
            break;
        }
        if (port == 0) {
            g_free(address); /* port 0 disables a listener, as in Dovecot */
            continue;
        }
        listener = g_new0(corral_listener_config, 1);
        listener->kind = CORRAL_LISTENER_INET;
        listener->name = g_strdup(service->name);
        listener->address = address;
        listener->port = port;
        if (!add_listener(service, listener)) {
            fail(error, CORRAL_CONFIG_ERROR_DUPLICATE, file, group, "inet_listener",
                 "'%s' is listed twice", item);
            ok = false;
        }
    }
    g_strfreev(items);
    return ok;
}

static bool key_is_set(const corral_service_config *service, const char *key)
{
    return g_hash_table_contains(service->key_lines, key);
}

/* The worker protocol limits the other keys (worker-protocol.h). */
static bool check_protocol(service_draft *draft, const config_file *file, const char *group,
                           GError **error)
{
    corral_service_config *service = draft->service;
    const char *key = NULL;
    char *problem = NULL;

    if (!corral_protocol_config_check(service, key_is_set, &key, &problem)) {
        fail(error, CORRAL_CONFIG_ERROR_VALUE, file, group, key, "%s", problem);
        g_free(problem);
        return false;
    }
    if (!draft->have_listen_backlog)
        /* Dovecot's default; capped where an explicit value is, so that
         * corrald -a writes back a value corrald reads. */
        service->listen_backlog = (int)CLAMP((guint64)service->process_limit *
                                                 service->client_limit,
                                             MIN_LISTEN_BACKLOG, MAX_LISTEN_BACKLOG);
    return true;
}

/* Applies the "0 means default" rules and checks what spans several keys. */
static bool finish_service(service_draft *draft, const config_file *file, const char *group,
                           GError **error)
{
    corral_service_config *service = draft->service;

    if (!draft->have_executable) {
        fail(error, CORRAL_CONFIG_ERROR_VALUE, file, group, "executable",
             "missing; every service needs one");
        return false;
    }
    if (service->process_limit == 0)
        service->process_limit = DEFAULT_PROCESS_LIMIT;
    if (service->client_limit == 0)
        service->client_limit = DEFAULT_CLIENT_LIMIT;
    /* A process that serves N clients in its life never has more at once. */
    if (service->service_count > 0 && service->client_limit > service->service_count)
        service->client_limit = service->service_count;
    if (service->process_min_avail > service->process_limit) {
        fail(error, CORRAL_CONFIG_ERROR_VALUE, file, group, "process_min_avail",
             "process_min_avail is higher than process_limit (%u > %u)",
             service->process_min_avail, service->process_limit);
        return false;
    }
    if (draft->have_listen_backlog)
        service->listen_backlog = (int)CLAMP(draft->listen_backlog, MIN_LISTEN_BACKLOG,
                                             (guint64)INT_MAX);
    else
        service->listen_backlog =
            corral_config_default_backlog(service->process_limit, service->client_limit);

    /* Unix listeners come first in the fd layout, as in Dovecot. */
    if (!add_unix_listeners(draft, file, group, error) ||
        !add_inet_listeners(draft, file, group, error))
        return false;
    return check_protocol(draft, file, group, error);
}

int corral_config_default_backlog(unsigned process_limit, unsigned client_limit)
{
    guint64 backlog = (guint64)process_limit * client_limit;

    return (int)CLAMP(backlog, MIN_LISTEN_BACKLOG, (guint64)INT_MAX);
}

static corral_service_config *service_config_new(const char *name, const char *path)
{
    corral_service_config *service = g_new0(corral_service_config, 1);

    service->name = g_strdup(name);
    service->file = g_strdup(path);
    service->type = CORRAL_SERVICE_DEFAULT;
    service->policy = g_strdup(DEFAULT_POLICY);
    service->idle_kill_secs = DEFAULT_IDLE_KILL_SECS;
    service->vsz_limit = DEFAULT_VSZ_LIMIT;
    service->first_status_timeout_msecs = DEFAULT_FIRST_STATUS_TIMEOUT_MSECS;
    service->status_batch_msecs = DEFAULT_STATUS_BATCH_MSECS;
    corral_exec_config_init(&service->exec);
    corral_protocol_config_init(&service->protocol);
    service->listeners = g_ptr_array_new_with_free_func(listener_config_free);
    service->policy_keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    service->key_lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return service;
}

/* Reads one key: a core key is parsed, any other is kept for the policy. */
static bool read_service_key(service_draft *draft, const config_file *file, const char *group,
                             const char *key, GError **error)
{
    service_key_parser *parse = find_service_key(key);
    char *value = read_value(file, group, key, error);
    char *problem = NULL;
    bool ok = true;

    if (value == NULL)
        return false;
    g_hash_table_replace(draft->service->key_lines, g_strdup(key),
                         GUINT_TO_POINTER(key_line(file, group, key)));
    if (parse == NULL) {
        bool known = false;
        /* Execution keys live in exec-config.c, shared with other readers. */
        ok = corral_exec_config_parse_key(&draft->service->exec, draft->config->base_dir, key,
                                          value, &known, &problem);
        if (ok && !known)
            ok = corral_protocol_config_parse_key(&draft->service->protocol, key, value,
                                                  &known, &problem);
        if (!known) {
            g_hash_table_replace(draft->service->policy_keys, g_strdup(key), value);
            return true;
        }
    } else {
        ok = parse(draft, value, &problem);
    }
    if (!ok) {
        fail(error, CORRAL_CONFIG_ERROR_VALUE, file, group, key, "%s", problem);
        g_free(problem);
        ok = false;
    }
    g_free(value);
    return ok;
}

static corral_service_config *load_service(const corral_config *config,
                                           const config_file *file, const char *group,
                                           const char *name, GError **error)
{
    service_draft draft = {
        .config = config,
        .service = service_config_new(name, file->path),
        .unix_listener_mode = DEFAULT_UNIX_LISTENER_MODE,
    };
    /* GKeyFile lists a key once per line that sets it; the last one holds. */
    char **keys = g_key_file_get_keys(file->keyfile, group, NULL, NULL);
    bool ok = true;

    for (size_t i = 0; ok && keys[i] != NULL; i++) {
        if (!g_strv_contains((const char *const *)keys + i + 1, keys[i]))
            ok = read_service_key(&draft, file, group, keys[i], error);
    }
    ok = ok && finish_service(&draft, file, group, error);

    g_strfreev(keys);
    g_free(draft.unix_listener);
    g_free(draft.inet_listener);
    g_free(draft.unix_listener_user);
    g_free(draft.unix_listener_group);
    if (!ok) {
        service_config_free(draft.service);
        return NULL;
    }
    return draft.service;
}

static bool load_services(corral_config *config, const config_file *file, GError **error)
{
    char **groups = g_key_file_get_groups(file->keyfile, NULL);
    bool ok = true;

    for (size_t i = 0; ok && groups[i] != NULL; i++) {
        corral_service_config *service;
        char *name = NULL;

        if (!is_service_group(groups[i], &name))
            continue;
        service = load_service(config, file, groups[i], name, error);
        if (service != NULL)
            g_ptr_array_add(config->services, service);
        ok = service != NULL;
        g_free(name);
    }
    g_strfreev(groups);
    return ok;
}

/* ------------------------------------------------------------------ */
/* The whole configuration                                             */

/* Services are read only after every [corral] group, because their
 * relative paths resolve against the final base_dir. */
static bool load_files(loader *load, GError **error)
{
    corral_config *config = load->config;
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
    bool ok;

    g_ptr_array_add(paths, g_strdup(config->main_file));
    ok = list_conf_d(config->dir, paths, error);
    for (guint i = 0; ok && i < paths->len; i++) {
        config_file *file = config_file_load(g_ptr_array_index(paths, i), error);

        if (file == NULL) {
            ok = false;
            break;
        }
        g_ptr_array_add(load->files, file);
        ok = check_headers(load, file, error) && apply_corral_group(config, file, error);
    }
    if (ok && config->base_dir == NULL)
        config->base_dir = g_build_filename(config->dir, "run", NULL);
    for (guint i = 0; ok && i < load->files->len; i++)
        ok = load_services(config, g_ptr_array_index(load->files, i), error);

    g_ptr_array_add(paths, NULL);
    config->files = (char **)g_ptr_array_free(paths, FALSE);
    return ok;
}

corral_config *corral_config_load(const char *main_file, GError **error)
{
    corral_config *config;
    loader load;
    bool ok;

    g_return_val_if_fail(main_file != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    config = g_new0(corral_config, 1);
    config->reload_kill_timeout_msecs = CORRAL_DEFAULT_RELOAD_KILL_TIMEOUT_MSECS;
    config->log_level = CORRAL_LEVEL_INFO;
    config->main_file = g_canonicalize_filename(main_file, NULL);
    config->dir = g_path_get_dirname(config->main_file);
    config->services = g_ptr_array_new_with_free_func(service_config_free);
    config->key_places = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    load.config = config;
    load.files = g_ptr_array_new_with_free_func(config_file_free);
    load.service_places = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    ok = load_files(&load, error);
    g_ptr_array_unref(load.files);
    g_hash_table_unref(load.service_places);

    if (!ok) {
        corral_config_free(config);
        return NULL;
    }
    return config;
}

void corral_config_free(corral_config *config)
{
    if (config == NULL)
        return;
    g_free(config->main_file);
    g_free(config->dir);
    g_strfreev(config->files);
    g_free(config->base_dir);
    g_free(config->policy_dir);
    g_free(config->log_path);
    g_free(config->metrics_address);
    g_free(config->control_group);
    g_ptr_array_unref(config->services);
    if (config->key_places != NULL)
        g_hash_table_unref(config->key_places);
    g_free(config);
}

char *corral_config_where(const corral_config *config, const char *key)
{
    const char *place = g_hash_table_lookup(config->key_places, key);

    return g_strdup_printf("%s: [corral] %s", place != NULL ? place : config->main_file, key);
}

char *corral_service_config_where(const corral_service_config *service, const char *key)
{
    unsigned line = GPOINTER_TO_UINT(g_hash_table_lookup(service->key_lines, key));

    if (line > 0)
        return g_strdup_printf("%s:%u: [service %s] %s", service->file, line, service->name,
                               key);
    return g_strdup_printf("%s: [service %s] %s", service->file, service->name, key);
}

const corral_service_config *corral_config_find_service(const corral_config *config,
                                                        const char *name)
{
    if (config == NULL || name == NULL)
        return NULL;
    for (guint i = 0; i < config->services->len; i++) {
        const corral_service_config *service = g_ptr_array_index(config->services, i);

        if (strcmp(service->name, name) == 0)
            return service;
    }
    return NULL;
}

char *corral_config_read_base_dir(const char *main_file, GError **error)
{
    char *main_path = g_canonicalize_filename(main_file, NULL);
    char *dir = g_path_get_dirname(main_path);
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);
    char *base_dir = NULL;
    bool ok;

    g_ptr_array_add(paths, g_strdup(main_path));
    ok = list_conf_d(dir, paths, error);
    for (guint i = 0; ok && i < paths->len; i++) {
        config_file *file = config_file_load(g_ptr_array_index(paths, i), error);
        char *value;

        if (file == NULL) {
            ok = false;
            break;
        }
        value = g_key_file_get_string(file->keyfile, CORRAL_GROUP, "base_dir", NULL);
        if (value != NULL && *g_strstrip(value) != '\0') {
            g_free(base_dir);
            base_dir = g_canonicalize_filename(value, dir);
        }
        g_free(value);
        config_file_free(file);
    }
    if (ok && base_dir == NULL)
        base_dir = g_build_filename(dir, "run", NULL);
    if (!ok)
        g_clear_pointer(&base_dir, g_free);
    g_ptr_array_unref(paths);
    g_free(dir);
    g_free(main_path);
    return base_dir;
}
