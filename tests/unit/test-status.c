/* SPDX-License-Identifier: MIT */
/* Decoding and reading 12-byte status records from a real pipe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "status.h"

static int make_pipe(int fds[2])
{
    return pipe2(fds, O_NONBLOCK | O_CLOEXEC);
}

static void write_record(int fd, int32_t pid, uint32_t generation, uint32_t count)
{
    corral_status_record record = { pid, generation, count };
    assert_int_equal(write(fd, &record, sizeof(record)), 12);
}

static void test_decode_many_records_in_one_buffer(void **unused)
{
    corral_status_record in[3] = { { 10, 1, 5 }, { 11, 2, 0 }, { 12, 3, 1000 } };
    corral_status_record out[3];

    (void)unused;
    assert_int_equal(corral_status_decode(in, sizeof(in), out, 3), 3);
    assert_memory_equal(in, out, sizeof(in));
}

static void test_decode_rejects_partial_length(void **unused)
{
    unsigned char buf[25] = { 0 };
    corral_status_record out[3];

    (void)unused;
    assert_int_equal(corral_status_decode(buf, 13, out, 3), -1);
    assert_int_equal(corral_status_decode(buf, 25, out, 3), -1);
    assert_int_equal(corral_status_decode(buf, 0, out, 3), 0);
}

static void test_read_takes_every_waiting_record_at_once(void **unused)
{
    corral_status_record records[CORRAL_STATUS_READ_MAX_RECORDS];
    size_t count;
    int fds[2];

    (void)unused;
    assert_int_equal(make_pipe(fds), 0);
    for (int i = 0; i < 100; i++)
        write_record(fds[1], 1000 + i, (uint32_t)i, (uint32_t)(i % 7));
    assert_int_equal(corral_status_read(fds[0], records, &count), CORRAL_STATUS_READ_RECORDS);
    assert_int_equal(count, 100);
    assert_int_equal(records[0].pid, 1000);
    assert_int_equal(records[99].pid, 1099);
    assert_int_equal(records[99].generation, 99);
    assert_int_equal(records[99].available_count, 99 % 7);
    close(fds[0]);
    close(fds[1]);
}

static void test_read_discards_a_partial_read_whole(void **unused)
{
    corral_status_record records[CORRAL_STATUS_READ_MAX_RECORDS];
    unsigned char junk[5] = { 1, 2, 3, 4, 5 };
    size_t count;
    int fds[2];

    (void)unused;
    assert_int_equal(make_pipe(fds), 0);
    write_record(fds[1], 42, 1, 1);
    assert_int_equal(write(fds[1], junk, sizeof(junk)), 5);
    assert_int_equal(corral_status_read(fds[0], records, &count), CORRAL_STATUS_READ_PARTIAL);
    assert_int_equal(count, 17);
    /* Nothing of the discarded read is left behind. */
    assert_int_equal(corral_status_read(fds[0], records, &count), CORRAL_STATUS_READ_AGAIN);
    close(fds[0]);
    close(fds[1]);
}

static void test_read_reports_again_and_eof(void **unused)
{
    corral_status_record records[CORRAL_STATUS_READ_MAX_RECORDS];
    size_t count;
    int fds[2];

    (void)unused;
    assert_int_equal(make_pipe(fds), 0);
    assert_int_equal(corral_status_read(fds[0], records, &count), CORRAL_STATUS_READ_AGAIN);
    close(fds[1]);
    assert_int_equal(corral_status_read(fds[0], records, &count), CORRAL_STATUS_READ_EOF);
    close(fds[0]);
}

static void test_read_caps_one_read_at_the_buffer(void **unused)
{
    corral_status_record records[CORRAL_STATUS_READ_MAX_RECORDS];
    size_t count, total = 0;
    int fds[2];

    (void)unused;
    assert_int_equal(make_pipe(fds), 0);
    for (int i = 0; i < CORRAL_STATUS_READ_MAX_RECORDS + 10; i++)
        write_record(fds[1], i + 1, 1, 1);
    while (corral_status_read(fds[0], records, &count) == CORRAL_STATUS_READ_RECORDS) {
        assert_true(count <= CORRAL_STATUS_READ_MAX_RECORDS);
        total += count;
    }
    assert_int_equal(total, CORRAL_STATUS_READ_MAX_RECORDS + 10);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_many_records_in_one_buffer),
        cmocka_unit_test(test_decode_rejects_partial_length),
        cmocka_unit_test(test_read_takes_every_waiting_record_at_once),
        cmocka_unit_test(test_read_discards_a_partial_read_whole),
        cmocka_unit_test(test_read_reports_again_and_eof),
        cmocka_unit_test(test_read_caps_one_read_at_the_buffer),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
