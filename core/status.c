/* SPDX-License-Identifier: MIT */
#include "status.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

_Static_assert(sizeof(corral_status_record) == CORRAL_STATUS_RECORD_SIZE,
               "the status record must match Dovecot's 12-byte layout");

ssize_t corral_status_decode(const void *buf, size_t len, corral_status_record *records,
                             size_t max_records)
{
    size_t count = len / CORRAL_STATUS_RECORD_SIZE;

    if (len % CORRAL_STATUS_RECORD_SIZE != 0)
        return -1;
    if (count > max_records)
        count = max_records;
    memcpy(records, buf, count * CORRAL_STATUS_RECORD_SIZE);
    return (ssize_t)count;
}

corral_status_read_result corral_status_read(int fd, corral_status_record *records,
                                             size_t *count)
{
    unsigned char buf[CORRAL_STATUS_READ_MAX_RECORDS * CORRAL_STATUS_RECORD_SIZE];
    ssize_t len, decoded;

    *count = 0;
    do {
        len = read(fd, buf, sizeof(buf));
    } while (len < 0 && errno == EINTR);
    if (len < 0)
        return errno == EAGAIN ? CORRAL_STATUS_READ_AGAIN : CORRAL_STATUS_READ_ERROR;
    if (len == 0)
        return CORRAL_STATUS_READ_EOF;
    decoded = corral_status_decode(buf, (size_t)len, records, CORRAL_STATUS_READ_MAX_RECORDS);
    if (decoded < 0) {
        *count = (size_t)len;
        return CORRAL_STATUS_READ_PARTIAL;
    }
    *count = (size_t)decoded;
    return CORRAL_STATUS_READ_RECORDS;
}
