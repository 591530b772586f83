/* SPDX-License-Identifier: MIT */
/*
 * status.h - reading workers' 12-byte status records.
 *
 * All processes of a service write to one shared pipe, each record in a
 * single write() below PIPE_BUF, so records arrive whole and interleave
 * only at record boundaries.  One read takes many records at once.
 */
#ifndef CORRAL_STATUS_H
#define CORRAL_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Dovecot's struct master_status: native byte order, no padding. */
typedef struct corral_status_record {
    int32_t pid;
    uint32_t generation;
    uint32_t available_count;
} corral_status_record;

#define CORRAL_STATUS_RECORD_SIZE 12
#define CORRAL_STATUS_READ_MAX_RECORDS 512

typedef enum {
    CORRAL_STATUS_READ_RECORDS, /* *count records decoded */
    CORRAL_STATUS_READ_AGAIN,   /* nothing to read now */
    CORRAL_STATUS_READ_EOF,     /* every writer has gone */
    CORRAL_STATUS_READ_PARTIAL, /* a read not a multiple of 12: discarded */
    CORRAL_STATUS_READ_ERROR,   /* errno is set */
} corral_status_read_result;

/* Performs one read() from `fd` and decodes it into `records`
 * (CORRAL_STATUS_READ_MAX_RECORDS of them).  *count receives the number
 * of records, or the byte count of a discarded partial read. */
corral_status_read_result corral_status_read(int fd, corral_status_record *records,
                                             size_t *count);

/* Decodes `len` bytes; returns the number of records, or -1 when `len` is
 * not a whole number of records. */
ssize_t corral_status_decode(const void *buf, size_t len, corral_status_record *records,
                             size_t max_records);

#endif
