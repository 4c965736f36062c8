/*
 * log: SECUREDGRAM_LOG_FORMAT=json writes one JSON object a line, with the
 * text line's fields, whatever the message holds (quotes, newlines, bytes
 * that are not UTF-8); the text format stays as it was.
 */
#include "util/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/sg-test-log.XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    return log_open(path, "sg-test");
}

static int teardown(void **state)
{
    (void)state;
    log_close();
    log_set_json(0);
    unlink(path);
    return 0;
}

/* Line n (from 0) of the log file, in buf. */
static void line_of(int n, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    for (int i = 0; i <= n; i++)
        assert_non_null(fgets(buf, (int)len, f));
    fclose(f);
}

static void test_json_lines(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_INFO);
    log_set_json(1);
    log_warn("peer \"%s\" said:\n%s", "b", "hi\\there");
    log_info("bytes \xff\xfe then text");
    log_debug("not written at level info");
    char buf[2048];
    line_of(0, buf, sizeof buf);
    json_error_t e;
    json_t *o = json_loads(buf, 0, &e);
    if (o == NULL)
        fail_msg("not JSON: %s (%s)", buf, e.text);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "WARN");
    assert_string_equal(json_string_value(json_object_get(o, "program")), "sg-test");
    assert_int_equal(json_integer_value(json_object_get(o, "pid")), getpid());
    assert_string_equal(json_string_value(json_object_get(o, "msg")),
                        "peer \"b\" said:\nhi\\there");
    const char *t = json_string_value(json_object_get(o, "time"));
    assert_non_null(t);
    assert_int_equal(strlen(t), strlen("2026-12-02T13:45:00.123Z"));
    assert_int_equal(t[strlen(t) - 1], 'Z');
    json_decref(o);
    line_of(1, buf, sizeof buf);
    o = json_loads(buf, 0, &e);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "INFO");
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "bytes ?? then text");
    json_decref(o);
    FILE *f = fopen(path, "r");
    int lines = 0;
    while (fgets(buf, sizeof buf, f) != NULL)
        lines++;
    fclose(f);
    assert_int_equal(lines, 2);
}

static void test_text_unchanged(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_WARN);
    log_warn("plain %d", 7);
    char buf[512];
    line_of(0, buf, sizeof buf);
    assert_non_null(strstr(buf, "Z sg-test["));
    assert_non_null(strstr(buf, "] WARN: plain 7\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_unchanged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
