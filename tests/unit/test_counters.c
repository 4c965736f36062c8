/*
 * counters: the line rendered from COUNTERS_LIST is exactly the line the
 * daemon has always logged and written for `securedgram status` (operators'
 * scripts parse it), every counter in its place; and the stats file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/counters.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every counter a different value, in the order of the struct's fields. */
static struct counters numbered(void)
{
    struct counters c;
    memset(&c, 0, sizeof c);
    c.rx = 100;
    /* by name: what is taken comes before the drops, so the numbers of the enum move */
    const enum judge_verdict by_line[] = {
        JUDGE_MESSAGE,          JUDGE_ACK,        JUDGE_DROP_SHORT,     JUDGE_DROP_AUTH,
        JUDGE_DROP_MALFORMED,   JUDGE_DROP_STALE, JUDGE_DROP_REFLECTED, JUDGE_DROP_REPLAY,
        JUDGE_DROP_REPLAY_FULL, JUDGE_DROP_JSON,  JUDGE_DROP_BAD_ID};
    for (size_t i = 0; i < sizeof by_line / sizeof by_line[0]; i++)
        c.verdicts[by_line[i]] = 101 + (uint64_t)i;
    c.verdicts[JUDGE_PART] = 132;     /* taken, not in the line (as JUDGE_MESSAGE) */
    c.verdicts[JUDGE_PART_ACK] = 133; /* likewise */
    c.verdicts[JUDGE_DROP_BAD_PART] = 134;
    c.drop_oversize = 112;
    c.drop_rate_limited = 113;
    c.drop_unstored = 114;
    c.drop_refused = 115;
    c.drop_own_id = 116;
    c.acks_wrong_source = 117;
    c.stored = 118;
    c.duplicates = 119;
    c.acks_sent = 120;
    c.acks_unmatched = 121;
    c.sent = 122;
    c.retransmits = 123;
    c.send_failed = 124;
    c.store_errors = 125;
    c.store_refused = 126;
    c.store_timeouts = 127;
    c.verdicts[JUDGE_DROP_UNKNOWN_KEY] = 129;
    c.verdicts[JUDGE_DROP_NOT_ALLOWED] = 130;
    c.trial_opens = 131;
    c.parts_sent = 138;
    c.part_acks_sent = 139;
    c.drop_too_large = 140;
    c.acked = 141;
    return c;
}

/* The line as the daemon wrote it before the list existed (its own printf, kept here), and
 * the database's writes and the per-peer keys' counters since. */
static const char expected[] =
    "rx=100 stored=118 duplicates=119 acks_sent=120 acks_received=102 acknowledged=141 sent=122 "
    "retransmits=123 send_failed=124 in_flight=7 trial_opens=131 parts_received=132 parts_sent=138 "
    "part_acks_received=133 part_acks_sent=139 reassembly_bytes=137 | dropped: short=103 auth=104 "
    "malformed=105 stale=106 reflected=107 replay=108 replay_full=109 json=110 bad_id=111 "
    "unknown_key=129 not_allowed=130 bad_part=134 oversize=112 "
    "rate_limited=113 unstored=114 refused=115 own_id=116 too_large=140 reassembly_evicted=135 "
    "reassembly_refused=136 | ack_unmatched=121 "
    "ack_wrong_source=117 store_errors=125 store_refused=126 store_timeouts=127 replay_cache=8 "
    "| database: writes=9 rows=10";

static void test_line(void **state)
{
    (void)state;
    struct counters c = numbered();
    struct counters_gauges g = {.in_flight = 7,
                                .replay_cache = 8,
                                .db_writes = 9,
                                .db_rows = 10,
                                .reassembly_evicted = 135,
                                .reassembly_refused = 136,
                                .reassembly_bytes = 137};
    char line[COUNTERS_LINE_MAX];
    assert_int_equal(counters_format(&c, &g, line, sizeof line), strlen(expected));
    assert_string_equal(line, expected);
}

/* The largest values fit COUNTERS_LINE_MAX. */
static void test_largest_fits(void **state)
{
    (void)state;
    struct counters c;
    memset(&c, 0xff, sizeof c);
    struct counters_gauges g = {SIZE_MAX, SIZE_MAX,   UINT64_MAX, UINT64_MAX,
                                SIZE_MAX, UINT64_MAX, UINT64_MAX};
    char line[COUNTERS_LINE_MAX];
    size_t n = counters_format(&c, &g, line, sizeof line);
    assert_true(n < sizeof line);
    assert_int_equal(strlen(line), n);
    assert_non_null(strstr(line, "rx=18446744073709551615 stored="));
    assert_non_null(strstr(line, " replay_cache=18446744073709551615"));
    assert_non_null(strstr(line, " rows=18446744073709551615"));
}

/* A short buffer gets a NUL-terminated start of the line; the length is the whole line's. */
static void test_truncated(void **state)
{
    (void)state;
    struct counters c = numbered();
    struct counters_gauges g = {.in_flight = 7,
                                .replay_cache = 8,
                                .db_writes = 9,
                                .db_rows = 10,
                                .reassembly_evicted = 135,
                                .reassembly_refused = 136,
                                .reassembly_bytes = 137};
    char line[20];
    assert_int_equal(counters_format(&c, &g, line, sizeof line), strlen(expected));
    assert_string_equal(line, "rx=100 stored=118 d");
    assert_int_equal(counters_format(&c, &g, line, 0), strlen(expected));
}

/* The stats file holds "counters: LINE\n". */
static void test_report_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/sg-test-counters.XXXXXX", path[64], text[COUNTERS_LINE_MAX + 32];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pid.stats", dir);
    struct counters c = numbered();
    struct counters_gauges g = {.in_flight = 7,
                                .replay_cache = 8,
                                .db_writes = 9,
                                .db_rows = 10,
                                .reassembly_evicted = 135,
                                .reassembly_refused = 136,
                                .reassembly_bytes = 137};
    counters_report(&c, &g, path, 0, "peer x stored=1\n");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof text, f));
    char tail[64];
    assert_non_null(fgets(tail, sizeof tail, f)); /* the peers' lines follow */
    assert_string_equal(tail, "peer x stored=1\n");
    fclose(f);
    assert_memory_equal(text, "counters: ", 10);
    assert_memory_equal(text + 10, expected, strlen(expected));
    assert_string_equal(text + 10 + strlen(expected), "\n");
    counters_report(&c, &g, NULL, 1, NULL); /* only logs */
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    if (log_open("/dev/null", "test_counters") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_largest_fits),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_report_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
