/* SPDX-License-Identifier: MIT */
/*
 * fuzz-child-log.c - libFuzzer harness for what workers write to stderr.
 *
 * Input: a mode byte, a parameter byte, then the bytes of the stream.
 * Every newline-separated line of the stream goes to corral_child_log_parse
 * directly and the result is checked against child-log.h.  The stream
 * then goes through a real pipe into a corral_child_log, in chunks of
 * (parameter + 1) * 16 bytes (mode bit 0 clear) or (parameter + 1) bytes
 * (set); after each chunk the main context runs the reader (mode bit 1
 * clear) or leaves the bytes for corral_child_log_free to read (set).
 * Mode bit 2 closes the write end only after the log is freed, as when
 * the supervisor still holds it.
 *
 * The harness is the log sink: it defines corral_log, corral_logv and
 * corral_log_about_line, so the core's log.c stays out of the link, each
 * message is formatted (with ASan watching the arguments) and checked, and
 * nothing floods stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child-log.h"

#define SERVICE_NAME "fuzz"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(condition)                                                                     \
    do {                                                                                     \
        if (!(condition)) {                                                                  \
            fprintf(stderr, "fuzz-child-log: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                    #condition);                                                             \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static size_t messages_logged;

void corral_logv(corral_level level, const char *fmt, va_list args)
{
    char *text;

    CHECK(level >= CORRAL_LEVEL_DEBUG && level <= CORRAL_LEVEL_FATAL);
    text = g_strdup_vprintf(fmt, args);
    CHECK(g_str_has_prefix(text, SERVICE_NAME ":") || g_str_has_prefix(text, SERVICE_NAME "("));
    messages_logged++;
    g_free(text);
}

void corral_log(corral_level level, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    corral_logv(level, fmt, args);
    va_end(args);
}

/* Worker lines carry the service and the pid as journal fields. */
void corral_log_about_line(corral_level level, const corral_log_about *about, const char *fmt,
                           ...)
{
    va_list args;

    CHECK(about != NULL && strcmp(about->service, SERVICE_NAME) == 0);
    va_start(args, fmt);
    corral_logv(level, fmt, args);
    va_end(args);
}

static void check_parse(const char *line)
{
    size_t len = strlen(line);
    corral_child_log_line parsed;

    memset(&parsed, 0xa5, sizeof(parsed));
    corral_child_log_parse(line, &parsed);
    CHECK(parsed.level >= CORRAL_LEVEL_DEBUG && parsed.level <= CORRAL_LEVEL_FATAL);
    CHECK(parsed.text >= line && parsed.text <= line + len);
    if (parsed.pid == 0) {
        /* A raw line: logged whole, at error level. */
        CHECK(parsed.text == line);
        CHECK(parsed.level == CORRAL_LEVEL_ERROR && !parsed.option);
    } else {
        CHECK(parsed.pid > 0);
        /* The pid is the number written, not some truncation of it. */
        CHECK(strtoll(line + 2, NULL, 10) == parsed.pid);
        CHECK(line[0] == '\x01' && parsed.text >= line + 4 && parsed.text[-1] == ' ');
        CHECK(!parsed.option || parsed.level == CORRAL_LEVEL_DEBUG);
    }
}

static void parse_lines(const uint8_t *data, size_t size)
{
    char *copy = g_malloc(size + 1);
    char *start = copy;

    memcpy(copy, data, size);
    copy[size] = '\0';
    for (;;) {
        char *newline = memchr(start, '\n', size - (size_t)(start - copy));

        if (newline != NULL)
            *newline = '\0';
        check_parse(start);
        if (newline == NULL)
            break;
        start = newline + 1;
    }
    g_free(copy);
}

static void run_reader(void)
{
    while (g_main_context_iteration(NULL, FALSE))
        ;
}

static void stream_through_log(unsigned mode, unsigned param, const uint8_t *data, size_t size)
{
    size_t chunk = (mode & 1) ? param + 1 : ((size_t)param + 1) * 16;
    bool defer_reading = (mode & 2) != 0, close_late = (mode & 4) != 0;
    corral_child_log *log;
    size_t written = 0;
    int fds[2];

    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        fprintf(stderr, "fuzz-child-log: pipe2: %s\n", strerror(errno));
        abort();
    }
    log = corral_child_log_new(fds[0], SERVICE_NAME);
    messages_logged = 0;
    while (written < size) {
        size_t len = MIN(chunk, size - written);
        ssize_t done = write(fds[1], data + written, len);

        if (done < 0 && errno == EAGAIN) {
            run_reader(); /* the pipe is full whatever the mode */
            continue;
        }
        CHECK(done > 0);
        written += (size_t)done;
        if (!defer_reading)
            run_reader();
    }
    if (!close_late)
        close(fds[1]);
    corral_child_log_free(log);
    /* The reader owns its end and closes it. */
    CHECK(fcntl(fds[0], F_GETFD) == -1 && errno == EBADF);
    if (close_late)
        close(fds[1]);
    /* Some bytes in always make at least one message, none make none. */
    CHECK((size == 0) == (messages_logged == 0) || memchr(data, '\x01', size) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned mode = size > 0 ? data[0] : 0;
    unsigned param = size > 1 ? data[1] : 0;
    const uint8_t *stream = data + (size > 2 ? 2 : size);
    size_t stream_size = size > 2 ? size - 2 : 0;

    parse_lines(data, size);
    stream_through_log(mode, param, stream, stream_size);
    return 0;
}
