/* SPDX-License-Identifier: MIT */
/*
 * fuzz-status.c - libFuzzer harness for the status-record reader.
 *
 * Input: a mode byte, a parameter byte, then the bytes the workers would
 * write to the status pipe.  The payload goes through a real non-blocking
 * pipe, written in chunks the mode chooses, and corral_status_read takes
 * it out again; every result is checked against a model of the stream
 * (what was written, what was consumed).  The whole payload is also given
 * to corral_status_decode with a record buffer of exactly the size it is
 * told, so that any overrun hits a redzone.
 *
 * Mode byte, low two bits: 0 as much as the pipe takes at once, 1 chunks
 * of (parameter + 1) bytes, 2 chunks of (parameter + 1) whole records,
 * 3 chunk sizes from a generator seeded with the parameter.  Bit 2: two
 * chunks per write round.  Bit 3: one read per round, as one readable
 * event of the service does, instead of reading until the pipe is empty.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

#define READ_MAX_BYTES (CORRAL_STATUS_READ_MAX_RECORDS * CORRAL_STATUS_RECORD_SIZE)
#define RANDOM_CHUNK_MAX 7000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(condition)                                                                     \
    do {                                                                                     \
        if (!(condition)) {                                                                  \
            fprintf(stderr, "fuzz-status: %s:%d: check failed: %s\n", __FILE__, __LINE__,    \
                    #condition);                                                             \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

typedef struct stream {
    int fds[2];
    const uint8_t *payload;
    size_t size;
    size_t written;  /* bytes of payload in the pipe or already read */
    size_t consumed; /* bytes corral_status_read has taken */
    bool closed;     /* the write end is closed */
    corral_status_record *records;
} stream;

/* One corral_status_read, checked; returns false when the pipe is empty. */
static bool read_once(stream *s)
{
    size_t count = (size_t)-1;
    corral_status_read_result result = corral_status_read(s->fds[0], s->records, &count);

    switch (result) {
    case CORRAL_STATUS_READ_RECORDS:
        CHECK(count >= 1 && count <= CORRAL_STATUS_READ_MAX_RECORDS);
        CHECK(count * CORRAL_STATUS_RECORD_SIZE <= s->written - s->consumed);
        CHECK(memcmp(s->records, s->payload + s->consumed,
                     count * CORRAL_STATUS_RECORD_SIZE) == 0);
        s->consumed += count * CORRAL_STATUS_RECORD_SIZE;
        return true;
    case CORRAL_STATUS_READ_PARTIAL:
        CHECK(count % CORRAL_STATUS_RECORD_SIZE != 0 && count <= READ_MAX_BYTES);
        CHECK(count <= s->written - s->consumed);
        s->consumed += count;
        return true;
    case CORRAL_STATUS_READ_AGAIN:
        CHECK(!s->closed && count == 0);
        CHECK(s->consumed == s->written);
        return false;
    case CORRAL_STATUS_READ_EOF:
        CHECK(s->closed && count == 0);
        CHECK(s->consumed == s->size);
        return false;
    case CORRAL_STATUS_READ_ERROR:
        break;
    }
    fprintf(stderr, "fuzz-status: unexpected result %d (%s)\n", (int)result, strerror(errno));
    abort();
}

static void drain(stream *s)
{
    while (read_once(s))
        ;
}

/* Writes up to `len` more bytes; a full pipe is emptied first. */
static void write_chunk(stream *s, size_t len)
{
    len = len < s->size - s->written ? len : s->size - s->written;
    while (len > 0) {
        ssize_t done = write(s->fds[1], s->payload + s->written, len);

        if (done < 0 && errno == EAGAIN) {
            drain(s);
            continue;
        }
        CHECK(done > 0);
        s->written += (size_t)done;
        len -= (size_t)done;
    }
}

static size_t next_chunk_size(unsigned mode, unsigned param, uint32_t *state)
{
    switch (mode & 3) {
    case 0:
        return SIZE_MAX;
    case 1:
        return param + 1;
    case 2:
        return (size_t)(param + 1) * CORRAL_STATUS_RECORD_SIZE;
    default:
        /* xorshift32; the state is never 0. */
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        return 1 + *state % RANDOM_CHUNK_MAX;
    }
}

static void fuzz_pipe(unsigned mode, unsigned param, const uint8_t *payload, size_t size)
{
    stream s = { .payload = payload, .size = size };
    uint32_t state = 0x9e3779b9u ^ param;
    unsigned chunks_per_round = (mode & 4) ? 2 : 1;
    bool one_read_per_round = (mode & 8) != 0;

    if (pipe2(s.fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        fprintf(stderr, "fuzz-status: pipe2: %s\n", strerror(errno));
        abort();
    }
    s.records = malloc(sizeof(corral_status_record) * CORRAL_STATUS_READ_MAX_RECORDS);
    CHECK(s.records != NULL);
    while (s.written < s.size) {
        for (unsigned i = 0; i < chunks_per_round; i++)
            write_chunk(&s, next_chunk_size(mode, param, &state));
        if (one_read_per_round)
            (void)read_once(&s);
        else
            drain(&s);
    }
    drain(&s);
    close(s.fds[1]);
    s.closed = true;
    drain(&s);
    close(s.fds[0]);
    free(s.records);
}

static void fuzz_decode(unsigned param, const uint8_t *payload, size_t size)
{
    /* 0 to 767 records, around the reader's own 512. */
    size_t max_records = (size_t)param * 3;
    /* Never a zero-sized buffer: the reader always passes a real one. */
    corral_status_record *records =
        malloc(sizeof(corral_status_record) * (max_records > 0 ? max_records : 1));
    ssize_t decoded;

    CHECK(records != NULL);
    decoded = corral_status_decode(payload, size, records, max_records);
    if (size % CORRAL_STATUS_RECORD_SIZE != 0) {
        CHECK(decoded == -1);
    } else {
        size_t whole = size / CORRAL_STATUS_RECORD_SIZE;

        CHECK(decoded >= 0);
        CHECK((size_t)decoded == (whole < max_records ? whole : max_records));
        CHECK(memcmp(records, payload, (size_t)decoded * CORRAL_STATUS_RECORD_SIZE) == 0);
    }
    free(records);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned mode = size > 0 ? data[0] : 0;
    unsigned param = size > 1 ? data[1] : 0;
    const uint8_t *payload = data + (size > 2 ? 2 : size);
    size_t payload_size = size > 2 ? size - 2 : 0;

    fuzz_pipe(mode, param, payload, payload_size);
    fuzz_decode(param, payload, payload_size);
    /* The undecorated input as well, prefix bytes included. */
    fuzz_decode(mode, data, size);
    return 0;
}
