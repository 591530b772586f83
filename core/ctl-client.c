/* SPDX-License-Identifier: MIT */
#include "ctl-client.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"

bool ctl_json;

static void print_error_json(const char *kind, const char *message)
{
    JsonBuilder *builder = json_builder_new();
    JsonGenerator *generator = json_generator_new();
    JsonNode *root;
    char *text;

    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "error");
    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "kind");
    json_builder_add_string_value(builder, kind);
    json_builder_set_member_name(builder, "message");
    json_builder_add_string_value(builder, message);
    json_builder_end_object(builder);
    json_builder_end_object(builder);
    root = json_builder_get_root(builder);
    json_generator_set_root(generator, root);
    json_generator_set_pretty(generator, TRUE);
    text = json_generator_to_data(generator, NULL);
    printf("%s\n", text);
    fflush(stdout);
    g_free(text);
    json_node_unref(root);
    g_object_unref(generator);
    g_object_unref(builder);
}

static void report(int code, const char *kind, const char *message)
{
    if (ctl_json)
        print_error_json(kind, message);
    else if (code == CTL_EXIT_USAGE)
        fprintf(stderr, "corralctl: %s\nTry 'corralctl --help'.\n", message);
    else
        fprintf(stderr, "corralctl: %s\n", message);
}

void ctl_die(int code, const char *kind, const char *format, ...)
{
    va_list args;
    char *message;

    va_start(args, format);
    message = g_strdup_vprintf(format, args);
    va_end(args);
    report(code, kind, message);
    g_free(message);
    exit(code);
}

int ctl_connect(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd, saved;

    if (strlen(path) >= sizeof(addr.sun_path))
        ctl_die(CTL_EXIT_FAILED, CORRAL_CONTROL_ERROR_FAILED, "control socket path too long: %s",
                path);
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
        return fd;
    saved = errno;
    if (fd >= 0)
        close(fd);
    switch (saved) {
    case ENOENT:
        ctl_die(CTL_EXIT_NOT_RUNNING, "not-running",
                "corrald is not running (no control socket at %s)", path);
    case ECONNREFUSED:
        ctl_die(CTL_EXIT_NOT_RUNNING, "not-running",
                "corrald is not running (%s refuses connections)", path);
    case EACCES:
    case EPERM:
        ctl_die(CTL_EXIT_PERMISSION, CORRAL_CONTROL_ERROR_PERMISSION,
                "permission denied on %s: run corralctl as the user corrald runs as (usually "
                "root), or as a member of its control_group", path);
    default:
        ctl_die(CTL_EXIT_FAILED, CORRAL_CONTROL_ERROR_FAILED, "cannot connect to %s: %s", path,
                g_strerror(saved));
    }
}

void ctl_send(int fd, const char *path, const char *request)
{
    size_t len = strlen(request);

    while (len > 0) {
        ssize_t written = send(fd, request, len, MSG_NOSIGNAL);

        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0)
            ctl_die(CTL_EXIT_FAILED, CORRAL_CONTROL_ERROR_FAILED, "cannot send to %s: %s", path,
                    g_strerror(errno));
        request += written;
        len -= (size_t)written;
    }
}

bool ctl_read_until_eof(int fd, const char *path, GString *into, int timeout_msecs)
{
    gint64 deadline = g_get_monotonic_time() + timeout_msecs * (gint64)1000;
    char chunk[8192];

    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        ssize_t got;
        int ready;

        if (left <= 0)
            return false;
        ready = poll(&pfd, 1, (int)left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0)
            return false;
        got = recv(fd, chunk, sizeof(chunk), 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            ctl_die(CTL_EXIT_FAILED, CORRAL_CONTROL_ERROR_FAILED, "cannot read from %s: %s",
                    path, g_strerror(errno));
        if (got == 0)
            return true;
        if (into != NULL)
            g_string_append_len(into, chunk, got);
    }
}

/* Ends the program for an error answer, with the code for its kind; the
 * parser goes first, so that nothing is left behind. */
static void fail_on_error(JsonObject *answer, JsonParser *parser)
{
    JsonObject *error;
    char *kind, *message;
    int code = CTL_EXIT_FAILED;

    if (!json_object_has_member(answer, "error"))
        return;
    error = json_object_get_object_member(answer, "error");
    kind = g_strdup(error != NULL
                        ? json_object_get_string_member_with_default(error, "kind", "failed")
                        : CORRAL_CONTROL_ERROR_FAILED);
    message = g_strdup(error != NULL
                           ? json_object_get_string_member_with_default(error, "message", "?")
                           : "corrald refused the command");
    g_object_unref(parser);
    if (strcmp(kind, CORRAL_CONTROL_ERROR_UNKNOWN_SERVICE) == 0)
        code = CTL_EXIT_UNKNOWN_SERVICE;
    else if (strcmp(kind, CORRAL_CONTROL_ERROR_USAGE) == 0)
        code = CTL_EXIT_USAGE;
    else if (strcmp(kind, CORRAL_CONTROL_ERROR_PERMISSION) == 0)
        code = CTL_EXIT_PERMISSION;
    /* corrald's usage errors are about the request, not the command line:
     * no "Try --help". */
    if (code == CTL_EXIT_USAGE && !ctl_json)
        fprintf(stderr, "corralctl: %s\n", message);
    else
        report(code, kind, message);
    g_free(kind);
    g_free(message);
    exit(code);
}

JsonObject *ctl_parse_answer(const GString *text, const char *path, JsonParser **parser_out)
{
    JsonParser *parser = json_parser_new();
    GError *error = NULL;
    gsize len = strcspn(text->str, "\n");
    JsonNode *root = NULL;
    JsonObject *answer;

    if (len == 0 || !json_parser_load_from_data(parser, text->str, (gssize)len, &error) ||
        !JSON_NODE_HOLDS_OBJECT(root = json_parser_get_root(parser)))
        ctl_die(CTL_EXIT_FAILED, CORRAL_CONTROL_ERROR_FAILED, "unexpected answer from %s%s%s",
                path, error != NULL ? ": " : "", error != NULL ? error->message : "");
    answer = json_node_get_object(root);
    fail_on_error(answer, parser);
    *parser_out = parser;
    return answer;
}

JsonObject *ctl_request(const char *path, const char *request, int timeout_msecs,
                        JsonParser **parser)
{
    GString *text = g_string_new(NULL);
    JsonObject *answer;
    int fd = ctl_connect(path);

    ctl_send(fd, path, request);
    if (!ctl_read_until_eof(fd, path, text, timeout_msecs))
        ctl_die(CTL_EXIT_FAILED, CORRAL_CONTROL_ERROR_FAILED,
                "no answer from corrald on %s within %d s", path, timeout_msecs / 1000);
    close(fd);
    answer = ctl_parse_answer(text, path, parser);
    g_string_free(text, TRUE);
    return answer;
}
