/*
 * Unit tests for daemon/promtext.[ch]: every counter of COUNTERS_LIST has a
 * metric name (a counter added there without one fails here), each family
 * has its HELP and TYPE lines once, label values are escaped, and the
 * histograms' buckets are cumulative and end with +Inf.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/promtext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *render(const struct counters *c, const struct counters_gauges *g, int *unnamed)
{
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    assert_non_null(f);
    *unnamed = promtext_counters(f, c, g);
    assert_int_equal(fclose(f), 0);
    return text;
}

static void test_every_counter_named(void **state)
{
    (void)state;
    struct counters c;
    counters_init(&c);
    c.stored = 7;
    c.verdicts[JUDGE_DROP_AUTH] = 3;
    c.drop_rate_limited = 2;
    struct counters_gauges g = {.in_flight = 4};
    int unnamed = -1;
    char *text = render(&c, &g, &unnamed);
    assert_int_equal(unnamed, 0);
    assert_non_null(strstr(text, "\nsecuredgram_messages_stored_total 7\n"));
    assert_non_null(strstr(text, "\nsecuredgram_messages_in_flight 4\n"));
    assert_non_null(strstr(text, "securedgram_datagrams_dropped_total{reason=\"auth\"} 3\n"));
    assert_non_null(
        strstr(text, "securedgram_datagrams_dropped_total{reason=\"rate_limited\"} 2\n"));
    assert_non_null(strstr(text, "# TYPE securedgram_messages_in_flight gauge\n"));
    /* each family's TYPE line once */
    const char *t = "# TYPE securedgram_datagrams_dropped_total counter\n";
    char *first = strstr(text, t);
    assert_non_null(first);
    assert_null(strstr(first + 1, t));
    free(text);
}

static void test_histogram_cumulative(void **state)
{
    (void)state;
    struct counters c;
    counters_init(&c);
    histo_observe(&c.insert_to_ack, 500);     /* le 0.001 */
    histo_observe(&c.insert_to_ack, 2000);    /* le 0.0025 */
    histo_observe(&c.insert_to_ack, 9999999); /* le 10 */
    histo_observe(&c.insert_to_ack, 400000000);
    struct counters_gauges g = {0};
    int unnamed;
    char *text = render(&c, &g, &unnamed);
    assert_non_null(strstr(text, "securedgram_insert_to_ack_seconds_bucket{le=\"0.001\"} 1\n"));
    assert_non_null(strstr(text, "securedgram_insert_to_ack_seconds_bucket{le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(text, "securedgram_insert_to_ack_seconds_bucket{le=\"10\"} 3\n"));
    assert_non_null(strstr(text, "securedgram_insert_to_ack_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(text, "securedgram_insert_to_ack_seconds_count 4\n"));
    assert_non_null(strstr(text, "securedgram_insert_to_ack_seconds_sum 410.002499\n"));
    assert_non_null(strstr(text, "# TYPE securedgram_datagram_to_ack_seconds histogram\n"));
    free(text);
}

static void test_label_values_escaped(void **state)
{
    (void)state;
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    assert_non_null(f);
    const char *labels[] = {"peer", "a\"b\\c\nd", "reason", "auth", NULL};
    promtext_sample_u64(f, "m", labels, 1);
    promtext_sample(f, "x", NULL, 0.5);
    assert_int_equal(fclose(f), 0);
    assert_string_equal(text, "m{peer=\"a\\\"b\\\\c\\nd\",reason=\"auth\"} 1\nx 0.5\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_counter_named),
        cmocka_unit_test(test_histogram_cumulative),
        cmocka_unit_test(test_label_values_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
