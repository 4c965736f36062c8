/*
 * Unit tests for jsonout.[ch]: string escaping (strict UTF-8, U+FFFD for bad
 * bytes), numbers, the pretty and compact layouts, and the re-layout of stored
 * JSON text: exact numbers and strings, every rejection of invalid text, and
 * the nesting limit; measuring, the streaming sink, and the growth cap that
 * keeps a deeply nested payload from growing a hundredfold when indented.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tools/jsonout.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

/* Re-lays out text; returns a malloc'd copy of the result, or NULL if invalid. */
static char *relayout(const char *text, int indent)
{
    struct jsonout o;
    jsonout_init(&o);
    char *res = NULL;
    if (jsonout_value(&o, text, strlen(text), indent, 0) == 0) {
        res = strdup(o.buf != NULL ? o.buf : "");
        assert_non_null(res);
    }
    jsonout_free(&o);
    return res;
}

static void assert_relayout(const char *text, int indent, const char *want)
{
    char *got = relayout(text, indent);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void assert_invalid(const char *text)
{
    char *got = relayout(text, 2);
    if (got != NULL)
        fail_msg("accepted invalid JSON '%s' as '%s'", text, got);
    assert_int_equal(jsonout_valid(text, strlen(text)), 0);
}

static char *escape(const char *s, size_t n)
{
    struct jsonout o;
    jsonout_init(&o);
    jsonout_string(&o, s, n);
    assert_int_equal(o.oom, 0);
    char *res = strdup(o.buf);
    jsonout_free(&o);
    return res;
}

static void assert_escape(const char *s, size_t n, const char *want)
{
    char *got = escape(s, n);
    assert_string_equal(got, want);
    assert_int_equal(jsonout_valid(got, strlen(got)), 1);
    free(got);
}

/* ---- strings ---- */

static void test_string_plain_and_escapes(void **state)
{
    (void)state;
    assert_escape("abc", 3, "\"abc\"");
    assert_escape("", 0, "\"\"");
    assert_escape("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    assert_escape("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    assert_escape("\x01\x1f", 2, "\"\\u0001\\u001f\"");
    assert_escape("a\0b", 3, "\"a\\u0000b\"");
    assert_escape("/\x7f", 2, "\"/\x7f\"");
}

static void test_string_utf8(void **state)
{
    (void)state;
    /* Valid sequences of every length pass unchanged. */
    assert_escape("\xc3\xa9", 2, "\"\xc3\xa9\"");
    assert_escape("\xe2\x82\xac", 3, "\"\xe2\x82\xac\"");
    assert_escape("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");
    assert_escape("\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\"");
    /* Every invalid byte becomes U+FFFD. */
    assert_escape("\xff", 1, "\"\xef\xbf\xbd\"");
    assert_escape("a\x80z", 3, "\"a\xef\xbf\xbdz\"");
    assert_escape("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");                 /* overlong */
    assert_escape("\xe0\x80\xaf", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* overlong */
    assert_escape("\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* surrogate */
    assert_escape("\xf4\x90\x80\x80", 4,
                  "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""); /* > U+10FFFF */
    assert_escape("\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\"");          /* truncated */
    assert_escape(NULL, 0, "\"\"");
}

/* ---- numbers ---- */

static void test_numbers(void **state)
{
    (void)state;
    struct jsonout o;
    jsonout_init(&o);
    jsonout_int(&o, INT64_MIN);
    jsonout_raw(&o, " ", 1);
    jsonout_int(&o, INT64_MAX);
    jsonout_raw(&o, " ", 1);
    jsonout_real(&o, 0.1);
    jsonout_raw(&o, " ", 1);
    jsonout_real(&o, 1e300);
    jsonout_raw(&o, " ", 1);
    jsonout_real(&o, NAN);
    jsonout_raw(&o, " ", 1);
    jsonout_real(&o, -INFINITY);
    jsonout_raw(&o, " ", 1);
    jsonout_real(&o, 2.0 / 3.0);
    assert_string_equal(o.buf, "-9223372036854775808 9223372036854775807 0.1 1e+300 null null "
                               "0.6666666666666666");
    jsonout_free(&o);
}

/* ---- re-layout ---- */

static void test_relayout_pretty(void **state)
{
    (void)state;
    assert_relayout("{\"a\":1,\"b\":[true,false,null],\"c\":{}}", 2,
                    "{\n  \"a\": 1,\n  \"b\": [\n    true,\n    false,\n    null\n  ],\n"
                    "  \"c\": {}\n}");
    assert_relayout("  [ ]  ", 2, "[]");
    assert_relayout("{ }", 2, "{}");
    assert_relayout("[[]]", 2, "[\n  []\n]");
    assert_relayout("\"x\"", 2, "\"x\"");
    assert_relayout(" 42 ", 2, "42");
}

static void test_relayout_compact(void **state)
{
    (void)state;
    assert_relayout("{ \"a\" : 1 ,\n\t\"b\" : [ 1 , 2 ] }", 0, "{\"a\":1,\"b\":[1,2]}");
    assert_relayout("\r\n{\"k\":\"v w\"}\n", 0, "{\"k\":\"v w\"}");
}

static void test_relayout_at_depth(void **state)
{
    (void)state;
    struct jsonout o;
    jsonout_init(&o);
    assert_int_equal(jsonout_value(&o, "{\"a\":[1]}", 9, 2, 2), 0);
    assert_string_equal(o.buf, "{\n      \"a\": [\n        1\n      ]\n    }");
    jsonout_free(&o);
}

/* Numbers and strings come out exactly as written: no float or escape rewriting. */
static void test_relayout_exact(void **state)
{
    (void)state;
    assert_relayout("{\"a\":0.1,\"b\":12345678901234567890123,\"c\":1E+2,\"d\":-0.0e-0}", 0,
                    "{\"a\":0.1,\"b\":12345678901234567890123,\"c\":1E+2,\"d\":-0.0e-0}");
    assert_relayout("[\"\\u00e9\\/\\\"\\\\\\b\\f\\n\\r\\t\",\"\xc3\xa9\"]", 0,
                    "[\"\\u00e9\\/\\\"\\\\\\b\\f\\n\\r\\t\",\"\xc3\xa9\"]");
    assert_relayout("{\"\\ud83d\\ude00\":\"\\uD83D\"}", 0, "{\"\\ud83d\\ude00\":\"\\uD83D\"}");
}

static void test_relayout_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "{",
        "}",
        "[",
        "]",
        "[1,]",
        "[,1]",
        "{\"a\":}",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "{a:1}",
        "{'a':1}",
        "{1:1}",
        "[1 2]",
        "[1]]",
        "[1]x",
        "{}{}",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "0x10",
        "NaN",
        "Infinity",
        "tru",
        "nul",
        "True",
        "\"abc",
        "\"a\\x\"",
        "\"\\u12g4\"",
        "\"\\u12\"",
        "\"tab\there\"",
        "\"nl\nhere\"",
        "\"\xff\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "[1,\"\xe2\x82\"]",
        "[\"\\",
        "{\"a\"",
        "{\"a\":1",
        "[[[",
        "\"a\"\"b\"",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        assert_invalid(bad[k]);
    /* An embedded NUL is not JSON either. */
    assert_int_equal(jsonout_valid("{}\0", 3), 0);
    assert_int_equal(jsonout_valid("\"a\0b\"", 5), 0);
}

/* A failed re-layout leaves what was written before untouched. */
static void test_relayout_failure_keeps_text(void **state)
{
    (void)state;
    struct jsonout o;
    jsonout_init(&o);
    jsonout_text(&o, "before:");
    assert_int_equal(jsonout_value(&o, "[1,2,{\"x\":", 10, 2, 0), -1);
    assert_string_equal(o.buf, "before:");
    assert_int_equal(o.len, 7);
    jsonout_free(&o);
}

static void test_relayout_depth_limit(void **state)
{
    (void)state;
    size_t n = JSONOUT_MAX_DEPTH;
    char *s = malloc(2 * n + 2);
    assert_non_null(s);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    assert_int_equal(jsonout_valid(s, 2 * n), 1);
    free(s);
    n = JSONOUT_MAX_DEPTH + 1;
    s = malloc(2 * n + 2);
    assert_non_null(s);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    assert_int_equal(jsonout_valid(s, 2 * n), 0);
    /* Invalid as JSON, so a field of kind JSONOUT_JSON shows it as a string. */
    struct jsonout o;
    jsonout_init(&o);
    struct jsonout_field f = {.name = "payload", .kind = JSONOUT_JSON, .s = s, .len = 2 * n};
    jsonout_field_value(&o, &f, 2, 0);
    assert_int_equal(o.buf[0], '"');
    assert_int_equal(o.len, 2 * n + 2);
    jsonout_free(&o);
    free(s);
}

/* ---- objects ---- */

static void test_object_layouts(void **state)
{
    (void)state;
    struct jsonout_field f[] = {
        {.name = "id", .kind = JSONOUT_INT, .i = 7},
        {.name = "payload", .kind = JSONOUT_JSON, .s = "{\"n\":0.1}", .len = 9},
        {.name = "bad", .kind = JSONOUT_JSON, .s = "not json", .len = 8},
        {.name = "s", .kind = JSONOUT_STRING, .s = "x\"y", .len = 3},
        {.name = "none", .kind = JSONOUT_NULL},
        {.name = "r", .kind = JSONOUT_REAL, .r = 1.5},
    };
    struct jsonout o;
    jsonout_init(&o);
    jsonout_object(&o, f, 6, 2, 0);
    assert_string_equal(o.buf, "{\n  \"id\": 7,\n  \"payload\": {\n    \"n\": 0.1\n  },\n"
                               "  \"bad\": \"not json\",\n  \"s\": \"x\\\"y\",\n  \"none\": null,\n"
                               "  \"r\": 1.5\n}");
    jsonout_reset(&o);
    assert_int_equal(o.len, 0);
    jsonout_object(&o, f, 6, 0, 0);
    assert_string_equal(o.buf, "{\"id\":7,\"payload\":{\"n\":0.1},\"bad\":\"not json\","
                               "\"s\":\"x\\\"y\",\"none\":null,\"r\":1.5}");
    assert_int_equal(jsonout_valid(o.buf, o.len), 1);
    jsonout_reset(&o);
    jsonout_object(&o, f, 0, 2, 0);
    assert_string_equal(o.buf, "{}");
    jsonout_free(&o);
    jsonout_free(&o); /* twice is fine */
}

static void test_newline(void **state)
{
    (void)state;
    struct jsonout o;
    jsonout_init(&o);
    jsonout_newline(&o, 0, 3);
    assert_null(o.buf);
    jsonout_newline(&o, 2, 3);
    assert_string_equal(o.buf, "\n      ");
    jsonout_free(&o);
}

/* A large output grows the buffer many times and stays exact. */
static void test_growth(void **state)
{
    (void)state;
    struct jsonout o;
    jsonout_init(&o);
    for (int k = 0; k < 100000; k++)
        jsonout_raw(&o, "0123456789", 10);
    assert_int_equal(o.len, 1000000);
    assert_int_equal(o.oom, 0);
    assert_int_equal(o.buf[999999], '9');
    assert_int_equal(o.buf[1000000], '\0');
    jsonout_free(&o);
}

/* ---- measuring, the sink, the growth cap ---- */

/* jsonout_measure says exactly how much jsonout_value writes. */
static void test_measure(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"a\":1,\"b\":[true,false,null],\"c\":{}}",          " [ ] ", "42", "\"x\"",
        "{ \"k\" : [ [ 1 , 2 ] , { \"z\" : \"\\u00e9\" } ] }",
    };
    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        for (int indent = 0; indent <= 4; indent += 2) {
            for (int depth = 0; depth <= 3; depth++) {
                struct jsonout o;
                jsonout_init(&o);
                size_t n = 0;
                assert_int_equal(jsonout_measure(texts[k], strlen(texts[k]), indent, depth, &n), 0);
                assert_int_equal(jsonout_value(&o, texts[k], strlen(texts[k]), indent, depth), 0);
                assert_int_equal(n, o.len);
                jsonout_free(&o);
            }
        }
    }
    size_t n = 7;
    assert_int_equal(jsonout_measure("[1,", 3, 2, 0, &n), -1);
    assert_int_equal(n, 7);
}

/* What a sink collects, in one buffer. */
struct collect {
    char *buf;
    size_t len, cap;
    size_t calls;
    size_t fail_after; /* refuse (ENOSPC) once this many bytes were taken; 0: never */
};

static int collect_sink(void *ctx, const char *s, size_t n)
{
    struct collect *c = ctx;
    if (c->fail_after > 0 && c->len + n > c->fail_after) {
        errno = ENOSPC;
        return -1;
    }
    if (c->len + n + 1 > c->cap) {
        c->cap = (c->len + n + 1) * 2;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = '\0';
    c->calls++;
    return 0;
}

/* A nested array: depth levels, with `fill` elements "1" at the bottom (malloc'd). */
static char *nested(size_t depth, size_t fill, size_t *len)
{
    size_t n = 2 * depth + 2 * fill + 1;
    char *s = malloc(n);
    assert_non_null(s);
    memset(s, '[', depth);
    size_t i = depth;
    for (size_t k = 0; k < fill; k++) {
        if (k > 0)
            s[i++] = ',';
        s[i++] = '1';
    }
    memset(s + i, ']', depth);
    i += depth;
    s[i] = '\0';
    *len = i;
    return s;
}

/* With a sink, the text is the same as without one, and the buffer stays small. */
static void test_sink_streams(void **state)
{
    (void)state;
    size_t len;
    char *s = nested(20, 100000, &len); /* about 5 MB once indented */
    struct jsonout plain, streamed;
    struct collect c = {0};
    jsonout_init(&plain);
    jsonout_init(&streamed);
    jsonout_set_sink(&streamed, collect_sink, &c);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(jsonout_value(&plain, s, len, 2, 1), 0);
        assert_int_equal(jsonout_value(&streamed, s, len, 2, 1), 0);
        jsonout_raw(&plain, s, len); /* one long piece: straight to the sink */
        jsonout_raw(&streamed, s, len);
        assert_true(streamed.cap <= 2 * JSONOUT_CHUNK + 4096);
    }
    assert_int_equal(jsonout_flush(&streamed), 0);
    assert_int_equal(streamed.len, 0);
    assert_int_equal(c.len, plain.len);
    assert_memory_equal(c.buf, plain.buf, plain.len);
    assert_true(c.calls > 10);
    assert_int_equal(jsonout_flush(&plain), 0); /* no sink: nothing to do */
    assert_int_equal(plain.len, c.len);
    jsonout_free(&plain);
    jsonout_free(&streamed);
    free(c.buf);
    free(s);
}

/* A sink that refuses stops the output for good, and keeps its errno. */
static void test_sink_failure_is_sticky(void **state)
{
    (void)state;
    size_t len;
    char *s = nested(3, 200000, &len);
    struct jsonout o;
    struct collect c = {.fail_after = 100000};
    jsonout_init(&o);
    jsonout_set_sink(&o, collect_sink, &c);
    assert_int_equal(jsonout_value(&o, s, len, 2, 0), 0);
    assert_int_equal(o.sink_failed, 1);
    assert_int_equal(o.sink_errno, ENOSPC);
    size_t got = c.len;
    c.fail_after = 0; /* the sink would take text again: too late */
    jsonout_text(&o, "more");
    assert_int_equal(jsonout_flush(&o), -1);
    assert_int_equal(c.len, got);
    assert_true(got <= 100000);
    jsonout_free(&o);
    free(c.buf);
    free(s);
}

/* Lays out one JSONOUT_JSON field at indent 2, depth 1 (a row's member); returns the text. */
static char *json_field(const char *s, size_t len)
{
    struct jsonout o;
    jsonout_init(&o);
    struct jsonout_field f = {.name = "payload", .kind = JSONOUT_JSON, .s = s, .len = len};
    jsonout_field_value(&o, &f, 2, 1);
    assert_int_equal(o.oom, 0);
    char *res = strdup(o.buf);
    assert_non_null(res);
    jsonout_free(&o);
    return res;
}

static void test_growth_cap(void **state)
{
    (void)state;
    /* 98 deep and 64 KB: indented it would be about 100 times larger, so it is compact. */
    size_t len, pretty;
    char *s = nested(98, 32000, &len);
    assert_int_equal(jsonout_measure(s, len, 2, 1, &pretty), 0);
    assert_true(pretty > 90 * len);
    char *got = json_field(s, len);
    assert_string_equal(got, s);
    free(got);
    free(s);
    /* The same depth, small: under the floor, indented as usual. */
    s = nested(98, 10, &len);
    assert_int_equal(jsonout_measure(s, len, 2, 1, &pretty), 0);
    assert_true(pretty <= JSONOUT_PRETTY_FLOOR);
    got = json_field(s, len);
    assert_int_equal(strlen(got), pretty);
    assert_non_null(strchr(got, '\n'));
    free(got);
    free(s);
    /* Large but shallow: it grows less than JSONOUT_PRETTY_GROWTH times, indented too. */
    s = nested(1, 100000, &len);
    assert_int_equal(jsonout_measure(s, len, 2, 1, &pretty), 0);
    assert_true(pretty > JSONOUT_PRETTY_FLOOR && pretty / JSONOUT_PRETTY_GROWTH <= len);
    got = json_field(s, len);
    assert_int_equal(strlen(got), pretty);
    free(got);
    free(s);
    /* Whitespace in the stored text does not count: the cap compares with the compact form. */
    const char *spaced = "[ [ [ 1 ] ] ]";
    got = json_field(spaced, strlen(spaced));
    assert_string_equal(got, "[\n    [\n      [\n        1\n      ]\n    ]\n  ]");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_plain_and_escapes),
        cmocka_unit_test(test_string_utf8),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_relayout_pretty),
        cmocka_unit_test(test_relayout_compact),
        cmocka_unit_test(test_relayout_at_depth),
        cmocka_unit_test(test_relayout_exact),
        cmocka_unit_test(test_relayout_rejects),
        cmocka_unit_test(test_relayout_failure_keeps_text),
        cmocka_unit_test(test_relayout_depth_limit),
        cmocka_unit_test(test_object_layouts),
        cmocka_unit_test(test_newline),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_measure),
        cmocka_unit_test(test_sink_streams),
        cmocka_unit_test(test_sink_failure_is_sticky),
        cmocka_unit_test(test_growth_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
