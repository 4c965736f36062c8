/*
 * Unit tests for message.[ch]: the JSON rules of the protocol.
 *
 *   - message_id_valid: exactly 24 lowercase hex digits;
 *   - message_classify: what the receiver takes for a message, an ACK, or
 *     drops (and why), including the parser's limits (depth, UTF-8, big
 *     numbers, \u0000) and length-bounded input;
 *   - message_ack_text: the exact ACK bytes the original sends;
 *   - message_prepare / message_check_payload: the outbound rules of the
 *     spec (id generation, insertion, conflicts, size limits).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "wire/envelope.h"
#include "wire/message.h"
#include "wire/parts.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID "a1b2c3d4e5f60718293a4b5c"
#define ID2 "0123456789abcdef01234567"

/* ---- helpers ---- */

static enum message_verdict classify(const char *json, struct message_in *m)
{
    return message_classify(json, strlen(json), m);
}

static void assert_verdict(const char *json, enum message_verdict want)
{
    struct message_in m;
    memset(&m, 0x77, sizeof m);
    enum message_verdict v = classify(json, &m);
    if (v != want)
        fail_msg("classify(%.120s): %d, expected %d", json, (int)v, (int)want);
    if (want != MESSAGE_VALID) {
        /* out untouched */
        struct message_in same;
        memset(&same, 0x77, sizeof same);
        assert_memory_equal(&m, &same, sizeof m);
    }
}

/*
 * A malloc'd object `depth` levels deep (the top object is level 1) with a
 * valid message_id at the top: {"message_id":"..","x":[{"k":[{"k":0}]}]}
 */
static char *nested(int depth, size_t *len)
{
    size_t cap = 64 + (size_t)depth * 8;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n = (size_t)snprintf(s, cap, "{\"message_id\":\"%s\",\"x\":", ID);
    for (int i = 1; i < depth; i++) {
        if (i % 2) {
            s[n++] = '[';
        } else {
            memcpy(s + n, "{\"k\":", 5);
            n += 5;
        }
    }
    s[n++] = '0';
    for (int i = depth - 1; i >= 1; i--)
        s[n++] = (i % 2) ? ']' : '}';
    s[n++] = '}';
    s[n] = '\0';
    assert_true(n < cap);
    *len = n;
    return s;
}

static int prepare(const char *payload, const char *row_id, struct message_out *out, char *err,
                   size_t errlen)
{
    return message_prepare(payload, strlen(payload), row_id, out, err, errlen);
}

/* Parses text as a JSON object and returns its message_id (static buffer) or "". */
static const char *id_in(const char *text, size_t len)
{
    static char buf[64];
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    if (root == NULL)
        fail_msg("not JSON: %s: %.200s", jerr.text, text);
    assert_true(json_is_object(root));
    json_t *v = json_object_get(root, "message_id");
    snprintf(buf, sizeof buf, "%s", json_is_string(v) ? json_string_value(v) : "");
    json_decref(root);
    return buf;
}

/* The value of key in the JSON object text, as compact JSON (malloc'd). */
static char *value_of(const char *text, const char *key)
{
    json_t *root = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(root);
    json_t *v = json_object_get(root, key);
    assert_non_null(v);
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(root);
    return s;
}

/* ---- message_id_valid ---- */

static void test_id_valid(void **state)
{
    (void)state;
    assert_int_equal(message_id_valid(ID), 1);
    assert_int_equal(message_id_valid("000000000000000000000000"), 1);
    assert_int_equal(message_id_valid("ffffffffffffffffffffffff"), 1);
    assert_int_equal(message_id_valid(""), 0);
    assert_int_equal(message_id_valid("a1b2c3d4e5f60718293a4b5"), 0);   /* 23 */
    assert_int_equal(message_id_valid("a1b2c3d4e5f60718293a4b5c0"), 0); /* 25 */
    assert_int_equal(message_id_valid("A1B2C3D4E5F60718293A4B5C"), 0);
    assert_int_equal(message_id_valid("a1b2c3d4e5f60718293a4b5C"), 0);
    assert_int_equal(message_id_valid("g1b2c3d4e5f60718293a4b5c"), 0);
    assert_int_equal(message_id_valid("a1b2c3d4e5f6 718293a4b5c"), 0);
    assert_int_equal(message_id_valid("a1b2c3d4e5f60718293a4b5\n"), 0);
}

/* ---- message_classify ---- */

static void test_classify_data(void **state)
{
    (void)state;
    struct message_in m;
    assert_int_equal(classify("{\"message_id\":\"" ID "\",\"content\":\"hi\"}", &m), MESSAGE_VALID);
    assert_int_equal(m.kind, MESSAGE_DATA);
    assert_string_equal(m.id, ID);
    /* with whitespace around and inside */
    assert_int_equal(classify(" \n{ \"content\" : [1,2,{}], \"message_id\" : \"" ID "\" }\r\n", &m),
                     MESSAGE_VALID);
    assert_int_equal(m.kind, MESSAGE_DATA);
    assert_string_equal(m.id, ID);
}

static void test_classify_ack(void **state)
{
    (void)state;
    struct message_in m;
    assert_int_equal(classify("{\"type\":\"ACK\",\"message_id\":\"" ID "\"}", &m), MESSAGE_VALID);
    assert_int_equal(m.kind, MESSAGE_ACK);
    assert_string_equal(m.id, ID);
    /* order of keys does not matter; extra keys do not make it data */
    assert_int_equal(classify("{\"message_id\":\"" ID2 "\",\"type\":\"ACK\",\"x\":1}", &m),
                     MESSAGE_VALID);
    assert_int_equal(m.kind, MESSAGE_ACK);
    assert_string_equal(m.id, ID2);
}

/*
 * The ACK as message_ack_text writes it is read without the parser; every
 * near miss goes through the parser and gets the verdict it always got.
 */
static void test_classify_ack_fast_path(void **state)
{
    (void)state;
    struct message_in m;
    char text[MESSAGE_ACK_MAX];
    size_t n = message_ack_text(ID, text);
    assert_int_equal(message_classify(text, n, &m), MESSAGE_VALID);
    assert_int_equal(m.kind, MESSAGE_ACK);
    assert_string_equal(m.id, ID);
    /* every byte of it changed: the same verdict as the parser's (never a wrong ACK) */
    for (size_t i = 0; i < n; i++) {
        char copy[MESSAGE_ACK_MAX + 1];
        for (int c = 1; c < 256; c += 7) {
            memcpy(copy, text, n);
            copy[n] = '\0';
            if ((unsigned char)copy[i] == (unsigned)c)
                continue;
            copy[i] = (char)c;
            struct message_in fast;
            memset(&fast, 0, sizeof fast);
            enum message_verdict v = message_classify(copy, n, &fast);
            /* the parser alone: the same text with a space before it never matches the form */
            char spaced[MESSAGE_ACK_MAX + 2] = " ";
            memcpy(spaced + 1, copy, n);
            struct message_in slow;
            memset(&slow, 0, sizeof slow);
            enum message_verdict w = message_classify(spaced, n + 1, &slow);
            assert_int_equal(v, w);
            if (v == MESSAGE_VALID) {
                assert_int_equal(fast.kind, slow.kind);
                assert_string_equal(fast.id, slow.id);
            }
        }
    }
    assert_verdict("{\"type\":\"ACK\",\"message_id\":\"A1B2C3D4E5F60718293A4B5C\"}",
                   MESSAGE_BAD_ID);
    /* a shorter or longer length with the same bytes is not the form */
    assert_int_equal(message_classify(text, n - 1, &m), MESSAGE_NOT_JSON);
}

static void test_classify_other_type_is_data(void **state)
{
    (void)state;
    const char *types[] = {"\"ack\"", "\"Ack\"", "\"ACK \"", "\"DATA\"",  "\"\"",
                           "1",       "null",    "true",     "[\"ACK\"]", "{\"ACK\":1}"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "{\"type\":%s,\"message_id\":\"%s\"}", types[i], ID);
        struct message_in m;
        enum message_verdict v = classify(buf, &m);
        if (v != MESSAGE_VALID)
            fail_msg("%s: verdict %d", buf, (int)v);
        if (m.kind != MESSAGE_DATA)
            fail_msg("%s: taken for an ACK", buf);
    }
}

/*
 * "ACK\u0000" is not "ACK" (the original compares json['type'] == 'ACK'), so
 * this is a message to store and ACK, not an acknowledgement (a comparison
 * that stops at the NUL would take it for one).
 */
static void test_classify_type_ack_nul_is_data(void **state)
{
    (void)state;
    struct message_in m;
    assert_int_equal(classify("{\"type\":\"ACK\\u0000\",\"message_id\":\"" ID "\"}", &m),
                     MESSAGE_VALID);
    assert_int_equal(m.kind, MESSAGE_DATA);
    assert_int_equal(classify("{\"type\":\"ACK\\u0000x\",\"message_id\":\"" ID "\"}", &m),
                     MESSAGE_VALID);
    assert_int_equal(m.kind, MESSAGE_DATA);
}

static void test_classify_bad_id(void **state)
{
    (void)state;
    assert_verdict("{}", MESSAGE_BAD_ID);
    assert_verdict("{\"content\":\"x\"}", MESSAGE_BAD_ID);
    assert_verdict("{\"type\":\"ACK\"}", MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":\"a1b2c3d4e5f60718293a4b5\"}", MESSAGE_BAD_ID);   /* 23 */
    assert_verdict("{\"message_id\":\"a1b2c3d4e5f60718293a4b5c0\"}", MESSAGE_BAD_ID); /* 25 */
    assert_verdict("{\"message_id\":\"\"}", MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":\"A1B2C3D4E5F60718293A4B5C\"}", MESSAGE_BAD_ID);
    assert_verdict("{\"type\":\"ACK\",\"message_id\":\"A1B2C3D4E5F60718293A4B5C\"}",
                   MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":\"x1b2c3d4e5f60718293a4b5c\"}", MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":123456789012345678901234}", MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":null}", MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":true}", MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":[\"" ID "\"]}", MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":{\"id\":\"" ID "\"}}", MESSAGE_BAD_ID);
    /* a NUL inside: 24 characters, or 24 hex digits and then more */
    assert_verdict("{\"message_id\":\"a1b2c3d4e5f60718293a4b5\\u0000\"}", MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":\"" ID "\\u0000\"}", MESSAGE_BAD_ID);
    assert_verdict("{\"message_id\":\"" ID "\\u0000abc\"}", MESSAGE_BAD_ID);
    /* the id of a nested object is not the message's */
    assert_verdict("{\"inner\":{\"message_id\":\"" ID "\"}}", MESSAGE_BAD_ID);
}

/* JSON texts that are valid JSON but not objects (RFC 8259 allows any value at the top). */
static void test_classify_not_object(void **state)
{
    (void)state;
    assert_verdict("[]", MESSAGE_NOT_OBJECT);
    assert_verdict("[{\"message_id\":\"" ID "\"}]", MESSAGE_NOT_OBJECT);
    assert_verdict("[1,2]", MESSAGE_NOT_OBJECT);
    assert_verdict("\"" ID "\"", MESSAGE_NOT_OBJECT);
    assert_verdict("\"str\"", MESSAGE_NOT_OBJECT);
    assert_verdict("42", MESSAGE_NOT_OBJECT);
    assert_verdict("-1.5e3", MESSAGE_NOT_OBJECT);
    assert_verdict("true", MESSAGE_NOT_OBJECT);
    assert_verdict("null", MESSAGE_NOT_OBJECT);
}

static void test_classify_not_json(void **state)
{
    (void)state;
    assert_verdict("", MESSAGE_NOT_JSON);
    assert_verdict(" ", MESSAGE_NOT_JSON);
    assert_verdict("{", MESSAGE_NOT_JSON);
    assert_verdict("}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\"", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\",}", MESSAGE_NOT_JSON);
    assert_verdict("{message_id:\"" ID "\"}", MESSAGE_NOT_JSON);
    assert_verdict("{'message_id':'" ID "'}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\"} {}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\"}x", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":NaN}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":01}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\",\"s\":\"a\tb\"}", MESSAGE_NOT_JSON);
}

static void test_classify_invalid_utf8(void **state)
{
    (void)state;
    const char *bad[] = {
        "\xff",
        "\xc3",             /* truncated sequence */
        "\xc0\xaf",         /* overlong '/' */
        "\xe0\x80\xaf",     /* overlong */
        "\xed\xa0\x80",     /* UTF-16 surrogate */
        "\xf4\x90\x80\x80", /* above U+10FFFF */
        "\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "{\"message_id\":\"%s\",\"c\":\"x%sy\"}", ID, bad[i]);
        assert_verdict(buf, MESSAGE_NOT_JSON);
        snprintf(buf, sizeof buf, "{\"message_id\":\"%s\",\"%s\":1}", ID, bad[i]);
        assert_verdict(buf, MESSAGE_NOT_JSON);
    }
    /* valid multi-byte UTF-8 is fine */
    assert_verdict("{\"message_id\":\"" ID
                   "\",\"c\":\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\"}",
                   MESSAGE_VALID);
}

static void test_classify_depth(void **state)
{
    (void)state;
    size_t len = 0;
    char *s = nested(MESSAGE_MAX_DEPTH, &len);
    struct message_in m;
    assert_int_equal(message_classify(s, len, &m), MESSAGE_VALID);
    assert_string_equal(m.id, ID);
    free(s);
    s = nested(MESSAGE_MAX_DEPTH + 1, &len);
    assert_int_equal(message_classify(s, len, &m), MESSAGE_NOT_JSON);
    free(s);
    s = nested(5000, &len);
    assert_int_equal(message_classify(s, len, &m), MESSAGE_NOT_JSON);
    free(s);
    /* brackets inside strings (even after an escaped quote) are not nesting */
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "{\"message_id\":\"%s\",\"s\":\"\\\"", ID);
    for (int i = 0; i < 300; i++)
        buf[n++] = (i % 2) ? '{' : '[';
    snprintf(buf + n, sizeof buf - (size_t)n, "\\\\\",\"t\":[]}");
    assert_verdict(buf, MESSAGE_VALID);
}

static void test_classify_big_numbers(void **state)
{
    (void)state;
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":123456789012345678901234567890}",
                   MESSAGE_VALID);
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":-123456789012345678901234567890}",
                   MESSAGE_VALID);
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":[18446744073709551616,1e300,-0.0,1E-400]}",
                   MESSAGE_VALID);
    /* beyond a double: valid JSON, which jansson refuses (the rules never look at numbers) */
    char big[600];
    int n =
        snprintf(big, sizeof big, "{\"message_id\":\"" ID "\",\"n\":1e400,\"m\":-1E+400,\"i\":1");
    for (int k = 0; k < 400; k++)
        big[n++] = '0';
    memcpy(big + n, "}", 2);
    assert_verdict(big, MESSAGE_VALID);
    assert_verdict("{\"type\":\"ACK\",\"message_id\":\"" ID "\",\"n\":[1e999]}", MESSAGE_VALID);
    /* and what is not a number stays invalid, however the neutral copy reads it */
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":01e400}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":1.e400}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":1e}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":-}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":1e400x}", MESSAGE_NOT_JSON);
    assert_verdict("{\"message_id\":\"" ID "\",\"n\":+1}", MESSAGE_NOT_JSON);
}

/* A raw NUL byte is never JSON (jansson skips one after a number). */
static void test_classify_raw_nul(void **state)
{
    (void)state;
    static const char j[] = "{\"message_id\":\"" ID "\",\"n\":1\0}";
    struct message_in m;
    assert_int_equal(message_classify(j, sizeof j - 1, &m), MESSAGE_NOT_JSON);
    static const char k[] = "{\"message_id\":\"" ID "\"}\0";
    assert_int_equal(message_classify(k, sizeof k - 1, &m), MESSAGE_NOT_JSON);
}

static void test_classify_nul_escape(void **state)
{
    (void)state;
    struct message_in m;
    assert_int_equal(classify("{\"message_id\":\"" ID "\",\"c\":\"a\\u0000b\"}", &m),
                     MESSAGE_VALID);
    assert_string_equal(m.id, ID);
    assert_verdict("{\"message_id\":\"" ID "\",\"c\":[\"\\u0000\",{\"d\":\"\\u0000\\u0000\"}]}",
                   MESSAGE_VALID);
}

/*
 * "\u0000" in an object key is valid JSON (the original's JSON.parse accepts
 * it); jansson refuses NUL in keys even with JSON_ALLOW_NUL, so message.c must
 * not drop such a message as MESSAGE_NOT_JSON.
 */
static void test_classify_nul_escape_in_key(void **state)
{
    (void)state;
    assert_verdict("{\"message_id\":\"" ID "\",\"a\\u0000b\":1}", MESSAGE_VALID);
}

/* The plaintext is not NUL-terminated: only len bytes count. */
static void test_classify_length_bounded(void **state)
{
    (void)state;
    const char text[] = "{\"message_id\":\"" ID "\"}GARBAGE{[";
    size_t json_len = strlen(text) - strlen("GARBAGE{[");
    struct message_in m;
    assert_int_equal(message_classify(text, json_len, &m), MESSAGE_VALID);
    assert_string_equal(m.id, ID);
    assert_int_equal(message_classify(text, json_len - 1, &m), MESSAGE_NOT_JSON);
    /* a raw NUL byte in the text is not JSON */
    const char withnul[] = "{\"message_id\":\"" ID "\",\"c\":\"a\0b\"}";
    assert_int_equal(message_classify(withnul, sizeof withnul - 1, &m), MESSAGE_NOT_JSON);
    /* longer than any message may be (PART_MAX_MESSAGE: the ceiling of one in parts) */
    size_t big = PART_MAX_MESSAGE + 1;
    char *s = malloc(big);
    assert_non_null(s);
    int h = snprintf(s, big, "{\"message_id\":\"%s\",\"c\":\"", ID);
    memset(s + h, 'x', big - (size_t)h - 2);
    memcpy(s + big - 2, "\"}", 2);
    assert_int_equal(message_classify(s, big, &m), MESSAGE_NOT_JSON);
    /* one byte less fits */
    memcpy(s + big - 3, "\"}", 2);
    assert_int_equal(message_classify(s, big - 1, &m), MESSAGE_VALID);
    free(s);
}

/* ---- ACK text ---- */

static void test_ack_text(void **state)
{
    (void)state;
    char out[MESSAGE_ACK_MAX];
    memset(out, '#', sizeof out);
    size_t n = message_ack_text(ID, out);
    const char want[] = "{\"type\":\"ACK\",\"message_id\":\"" ID "\"}";
    assert_int_equal(n, sizeof want - 1);
    assert_int_equal(n, 54);
    assert_memory_equal(out, want, sizeof want); /* NUL-terminated too */
    /* and the receiver takes it for an ACK of that id */
    struct message_in m;
    assert_int_equal(message_classify(out, n, &m), MESSAGE_VALID);
    assert_int_equal(m.kind, MESSAGE_ACK);
    assert_string_equal(m.id, ID);
}

/* ---- message_prepare ---- */

static void test_prepare_fresh_id(void **state)
{
    (void)state;
    const char *payloads[] = {
        "{\"content\":\"hello\",\"n\":[1,2]}",
        "{}",
        "{ }",
        "  \n\t{\"a\":1}",
        "\r\n{\n  \"a\": {\"b\": \"{\"}\n}\n",
        "{\"a\":\"\\u0000\",\"n\":123456789012345678901234567890}",
    };
    char prev[MESSAGE_ID_LEN + 1] = "";
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        struct message_out m;
        char err[256] = "";
        if (prepare(payloads[i], NULL, &m, err, sizeof err) != 0)
            fail_msg("%s: %s", payloads[i], err);
        assert_int_equal(message_id_valid(m.id), 1);
        assert_int_equal(m.id_changed, 1);
        assert_int_equal(m.payload_changed, 1);
        assert_non_null(m.payload);
        assert_int_equal(strlen(m.payload), m.payload_len);
        /* still a JSON object, now carrying the id */
        assert_string_equal(id_in(m.payload, m.payload_len), m.id);
        assert_string_not_equal(m.id, prev);
        memcpy(prev, m.id, sizeof prev);
        /* the receiver sees it as data with that id */
        struct message_in in;
        assert_int_equal(message_classify(m.payload, m.payload_len, &in), MESSAGE_VALID);
        assert_int_equal(in.kind, MESSAGE_DATA);
        assert_string_equal(in.id, m.id);
        message_out_clear(&m);
        assert_null(m.payload);
    }
    /* other members are kept as they were */
    struct message_out m;
    char err[256];
    assert_int_equal(prepare("{\"content\":\"hello\",\"n\":[1,2]}", NULL, &m, err, sizeof err), 0);
    char *c = value_of(m.payload, "content");
    char *n = value_of(m.payload, "n");
    assert_string_equal(c, "\"hello\"");
    assert_string_equal(n, "[1,2]");
    free(c);
    free(n);
    message_out_clear(&m);
}

/*
 * A payload that repeats a bad message_id: every copy is replaced, as the
 * receiver's parser takes the last; more copies than are replaced is refused
 * (a fuzzer found 9 sent with the last one left bad, so never acknowledged).
 */
static void test_prepare_repeated_bad_id(void **state)
{
    (void)state;
    char text[1024];
    for (int copies = 2; copies <= 9; copies++) {
        size_t n = (size_t)snprintf(text, sizeof text, "{\"a\":1");
        for (int i = 0; i < copies; i++)
            n += (size_t)snprintf(text + n, sizeof text - n, ",\"message_id\":\"wrong%d\"", i);
        snprintf(text + n, sizeof text - n, "}");
        struct message_out m;
        char err[256] = "";
        int rc = prepare(text, NULL, &m, err, sizeof err);
        if (copies > 8) {
            assert_int_equal(rc, -1);
            assert_string_equal(err, "payload has more than 8 message_id members");
            continue;
        }
        if (rc != 0)
            fail_msg("%d copies: %s", copies, err);
        struct message_in in;
        assert_int_equal(message_classify(m.payload, m.payload_len, &in), MESSAGE_VALID);
        assert_string_equal(in.id, m.id);
        assert_null(strstr(m.payload, "wrong")); /* not hex: never in an id */
        message_out_clear(&m);
    }
}

static void test_prepare_row_id_inserted(void **state)
{
    (void)state;
    struct message_out m;
    char err[256];
    assert_int_equal(prepare("{\"content\":\"x\"}", ID, &m, err, sizeof err), 0);
    assert_string_equal(m.id, ID);
    assert_int_equal(m.id_changed, 0);
    assert_int_equal(m.payload_changed, 1);
    assert_string_equal(id_in(m.payload, m.payload_len), ID);
    message_out_clear(&m);

    assert_int_equal(prepare("{}", ID, &m, err, sizeof err), 0);
    assert_string_equal(m.payload, "{\"message_id\":\"" ID "\"}");
    assert_int_equal(m.payload_len, strlen(m.payload));
    message_out_clear(&m);
}

static void test_prepare_same_id_unchanged(void **state)
{
    (void)state;
    const char *p = " {\"message_id\":\"" ID "\", \"content\" : \"x\"} ";
    struct message_out m;
    char err[256];
    assert_int_equal(prepare(p, ID, &m, err, sizeof err), 0);
    assert_string_equal(m.id, ID);
    assert_int_equal(m.id_changed, 0);
    assert_int_equal(m.payload_changed, 0);
    assert_int_equal(m.payload_len, strlen(p));
    assert_string_equal(m.payload, p);
    message_out_clear(&m);
}

static void test_prepare_conflicting_ids(void **state)
{
    (void)state;
    struct message_out m;
    memset(&m, 0, sizeof m);
    char err[256] = "";
    assert_int_equal(prepare("{\"message_id\":\"" ID2 "\"}", ID, &m, err, sizeof err), -1);
    if (strstr(err, ID) == NULL || strstr(err, ID2) == NULL)
        fail_msg("error does not name both ids: %s", err);
    assert_null(m.payload);
}

static void test_prepare_adopts_payload_id(void **state)
{
    (void)state;
    const char *p = "{\"content\":1,\"message_id\":\"" ID2 "\"}";
    struct message_out m;
    char err[256];
    assert_int_equal(prepare(p, NULL, &m, err, sizeof err), 0);
    assert_string_equal(m.id, ID2);
    assert_int_equal(m.id_changed, 1); /* the row must get it */
    assert_int_equal(m.payload_changed, 0);
    assert_string_equal(m.payload, p);
    message_out_clear(&m);
}

/* A failed prepare writes a reason and does not touch *out. */
static void assert_prepare_fails(const char *payload, size_t len, const char *row_id,
                                 const char *needle)
{
    struct message_out m;
    memset(&m, 0x5c, sizeof m);
    struct message_out same;
    memset(&same, 0x5c, sizeof same);
    char err[256] = "";
    if (message_prepare(payload, len, row_id, &m, err, sizeof err) != -1)
        fail_msg("prepare(%.80s) succeeded", payload);
    assert_memory_equal(&m, &same, sizeof m);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    if (needle != NULL && strstr(err, needle) == NULL)
        fail_msg("prepare(%.80s): error '%s' does not say '%s'", payload, err, needle);
}

/*
 * A row without an id whose payload carries one that is not 24 lowercase hex
 * (a UUID, a number, uppercase hex): a fresh id replaces it, in the payload's
 * own text, as the original delivers such rows.
 */
static void test_prepare_replaces_bad_payload_id(void **state)
{
    (void)state;
    /* the payload, and what it must become around the new id */
    const char *cases[][3] = {
        {"{\"message_id\":\"ABC\"}", "{\"message_id\":\"", "\"}"},
        {"{ \"a\" : [1, {\"message_id\":2}], \"message_id\" : 123456789012345678901 , \"b\":1e400}",
         "{ \"a\" : [1, {\"message_id\":2}], \"message_id\" : \"", "\" , \"b\":1e400}"},
        {"{\"message_id\":\"6F1C2A9E-0000-4000-8000-00000000ABCD\",\"x\":\"y\"}",
         "{\"message_id\":\"", "\",\"x\":\"y\"}"},
        {"{\"message_\\u0069d\":{\"deep\":[\"}\"]},\"z\":null}", "{\"message_\\u0069d\":\"",
         "\",\"z\":null}"},
        {"{\"message_id\":\"A1B2C3D4E5F60718293A4B5C\"}", "{\"message_id\":\"", "\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct message_out m;
        char err[256] = "", want[512];
        assert_int_equal(
            message_prepare(cases[i][0], strlen(cases[i][0]), NULL, &m, err, sizeof err), 0);
        assert_true(message_id_valid(m.id));
        assert_int_equal(m.payload_changed, 1);
        assert_int_equal(m.id_changed, 1);
        snprintf(want, sizeof want, "%s%s%s", cases[i][1], m.id, cases[i][2]);
        assert_string_equal(m.payload, want);
        assert_int_equal(m.payload_len, strlen(want));
        struct message_in in;
        assert_int_equal(message_classify(m.payload, m.payload_len, &in), MESSAGE_VALID);
        assert_string_equal(in.id, m.id);
        message_out_clear(&m);
    }
}

static void test_prepare_errors(void **state)
{
    (void)state;
    const char *bad_rows[] = {"", "a1b2c3d4e5f60718293a4b5", "A1B2C3D4E5F60718293A4B5C",
                              "a1b2c3d4e5f60718293a4b5c0", "zzzzzzzzzzzzzzzzzzzzzzzz"};
    for (size_t i = 0; i < sizeof bad_rows / sizeof bad_rows[0]; i++)
        assert_prepare_fails("{}", 2, bad_rows[i], "message_id");
    assert_prepare_fails("[1,2]", 5, NULL, "not a JSON object");
    assert_prepare_fails("[1,2]", 5, ID, "not a JSON object");
    assert_prepare_fails("{\"a\":", 5, NULL, "not valid JSON");
    assert_prepare_fails("hello", 5, NULL, NULL);
    assert_prepare_fails("", 0, NULL, NULL);
    assert_prepare_fails("{\"c\":\"\xff\"}", 8, NULL, NULL);
    /* an invalid payload message_id where the row has one: they differ */
    assert_prepare_fails("{\"message_id\":5}", 16, ID, "message_id");
    /* a payload the receiver would take for an ACK */
    const char *ack = "{\"type\":\"ACK\",\"message_id\":\"" ID "\"}";
    assert_prepare_fails(ack, strlen(ack), NULL, "ACK");
    assert_prepare_fails(ack, strlen(ack), ID, "ACK");
    assert_prepare_fails("{\"type\":\"ACK\"}", 14, NULL, "ACK");
}

/* Scalars are JSON too, but not objects: the error says so (not "invalid JSON"). */
static void test_prepare_scalar_not_object(void **state)
{
    (void)state;
    assert_prepare_fails("42", 2, NULL, "not a JSON object");
    assert_prepare_fails("\"text\"", 6, NULL, "not a JSON object");
    assert_prepare_fails("null", 4, ID, "not a JSON object");
}

/* A string payload of exactly total bytes: {"c":"xxx..."} */
static char *sized_payload(size_t total, const char *id)
{
    char *s = malloc(total + 1);
    assert_non_null(s);
    int h = id != NULL ? snprintf(s, total + 1, "{\"message_id\":\"%s\",\"c\":\"", id)
                       : snprintf(s, total + 1, "{\"c\":\"");
    assert_true((size_t)h + 2 <= total);
    memset(s + h, 'x', total - (size_t)h - 2);
    memcpy(s + total - 2, "\"}", 3);
    assert_int_equal(strlen(s), total);
    return s;
}

static void test_prepare_size_limits(void **state)
{
    (void)state;
    char limit[32];
    snprintf(limit, sizeof limit, "%d", ENVELOPE_MAX_JSON);
    struct message_out m;
    char err[256];

    /* already too large */
    char *p = sized_payload(ENVELOPE_MAX_JSON + 1, ID);
    assert_prepare_fails(p, strlen(p), ID, limit);
    assert_prepare_fails(p, strlen(p), NULL, limit);
    free(p);
    /* exactly the limit, carrying its id: fine */
    p = sized_payload(ENVELOPE_MAX_JSON, ID);
    assert_int_equal(prepare(p, ID, &m, err, sizeof err), 0);
    assert_int_equal(m.payload_len, ENVELOPE_MAX_JSON);
    message_out_clear(&m);
    free(p);

    /* too large only once the id is inserted ("message_id":"<24>", is 40 bytes) */
    size_t ins = strlen("\"message_id\":\"" ID "\",");
    p = sized_payload(ENVELOPE_MAX_JSON - ins + 1, NULL);
    assert_prepare_fails(p, strlen(p), NULL, limit);
    assert_prepare_fails(p, strlen(p), ID, limit);
    free(p);
    p = sized_payload(ENVELOPE_MAX_JSON, NULL);
    assert_prepare_fails(p, strlen(p), ID, limit);
    free(p);
    /* ... and just fits */
    p = sized_payload(ENVELOPE_MAX_JSON - ins, NULL);
    assert_int_equal(prepare(p, ID, &m, err, sizeof err), 0);
    assert_int_equal(m.payload_len, ENVELOPE_MAX_JSON);
    assert_int_equal(strlen(m.payload), ENVELOPE_MAX_JSON);
    assert_string_equal(id_in(m.payload, m.payload_len), ID);
    message_out_clear(&m);
    free(p);
}

/* ---- message_check_payload (sg-send) ---- */

static void test_check_payload(void **state)
{
    (void)state;
    char found[MESSAGE_ID_LEN + 1];
    char err[256];
    memset(found, '#', sizeof found);
    assert_int_equal(message_check_payload("{\"a\":1}", 7, found, err, sizeof err), 0);
    assert_string_equal(found, "");
    const char *with = "{\"a\":1,\"message_id\":\"" ID "\"}";
    assert_int_equal(message_check_payload(with, strlen(with), found, err, sizeof err), 0);
    assert_string_equal(found, ID);
    assert_int_equal(message_check_payload(" {} ", 4, found, err, sizeof err), 0);
    assert_string_equal(found, "");

    const struct {
        const char *p;
        const char *needle;
    } bad[] = {
        {"[1,2]", "not a JSON object"},
        {"{\"a\":}", "not valid JSON"},
        {"", NULL},
        {"{\"message_id\":\"" ID "x\"}", "message_id"},
        {"{\"message_id\":\"A1B2C3D4E5F60718293A4B5C\"}", "message_id"},
        {"{\"message_id\":null}", "message_id"},
        {"{\"type\":\"ACK\",\"a\":1}", "ACK"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (message_check_payload(bad[i].p, strlen(bad[i].p), found, err, sizeof err) != -1)
            fail_msg("check_payload(%s) succeeded", bad[i].p);
        assert_true(err[0] != '\0');
        if (bad[i].needle != NULL && strstr(err, bad[i].needle) == NULL)
            fail_msg("check_payload(%s): error '%s' does not say '%s'", bad[i].p, err,
                     bad[i].needle);
    }
    char limit[32];
    snprintf(limit, sizeof limit, "%d", ENVELOPE_MAX_JSON);
    char *p = sized_payload(ENVELOPE_MAX_JSON + 1, NULL);
    assert_int_equal(message_check_payload(p, strlen(p), found, err, sizeof err), -1);
    assert_non_null(strstr(err, limit));
    free(p);
    p = sized_payload(ENVELOPE_MAX_JSON, NULL);
    assert_int_equal(message_check_payload(p, strlen(p), found, err, sizeof err), 0);
    free(p);
}

/*
 * A tree larger than the parse arena (16 KiB): its first pieces come from the
 * arena, the rest from malloc, and all are freed; small ones after it parse
 * as before. Run plain, where the arena is used (ASan builds use malloc only).
 */
static void test_parse_larger_than_arena(void **state)
{
    (void)state;
    const char *id = "0123456789abcdef01234567";
    size_t cap = 60000, n = 0;
    char *big = malloc(cap);
    assert_non_null(big);
    n += (size_t)snprintf(big + n, cap - n, "{");
    for (int i = 0; i < 2500; i++)
        n += (size_t)snprintf(big + n, cap - n, "\"key%d\":\"value %d\",", i, i);
    n += (size_t)snprintf(big + n, cap - n, "\"message_id\":\"%s\"}", id);
    assert_true(n < ENVELOPE_MAX_JSON);
    for (int round = 0; round < 3; round++) {
        struct message_in in;
        memset(&in, 0, sizeof in);
        assert_int_equal(message_classify(big, n, &in), MESSAGE_VALID);
        assert_int_equal(in.kind, MESSAGE_DATA);
        assert_string_equal(in.id, id);
        struct message_out out;
        char err[256];
        assert_int_equal(message_prepare(big, n, NULL, &out, err, sizeof err), 0);
        assert_string_equal(out.id, id);
        assert_int_equal(out.payload_changed, 0);
        message_out_clear(&out);
        const char *small = "{\"message_id\":\"abcdefabcdefabcdefabcdef\",\"x\":[1,2,3]}";
        assert_int_equal(message_classify(small, strlen(small), &in), MESSAGE_VALID);
        assert_string_equal(in.id, "abcdefabcdefabcdefabcdef");
    }
    free(big);
}

/* ---- long strings: parsed through a copy with their bodies emptied ---- */

/*
 * What the rules say of text, judged by jansson on the text itself: the
 * reference the fast path must agree with. (No "\u0000" keys or numbers
 * beyond a double in the texts it is given: those take the neutral copy.)
 */
static enum message_verdict reference(const char *text, size_t len, struct message_in *out)
{
    json_t *root =
        json_loadb(text, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
    enum message_verdict v = MESSAGE_VALID;
    json_t *id = json_object_get(root, "message_id"), *type = json_object_get(root, "type");
    if (root == NULL || memchr(text, '\0', len) != NULL)
        v = MESSAGE_NOT_JSON;
    else if (!json_is_object(root))
        v = MESSAGE_NOT_OBJECT;
    else if (!json_is_string(id) || json_string_length(id) != MESSAGE_ID_LEN ||
             !message_id_valid(json_string_value(id)))
        v = MESSAGE_BAD_ID;
    if (v == MESSAGE_VALID) {
        out->kind = json_is_string(type) && json_string_length(type) == 3 &&
                            memcmp(json_string_value(type), "ACK", 3) == 0
                        ? MESSAGE_ACK
                        : MESSAGE_DATA;
        memcpy(out->id, json_string_value(id), MESSAGE_ID_LEN + 1);
    }
    json_decref(root);
    return v;
}

/* Appends a string token of n bytes of c (a body of plain ASCII when c is one). */
static size_t put_long(char *buf, size_t at, char c, size_t n)
{
    buf[at++] = '"';
    memset(buf + at, c, n);
    at += n;
    buf[at++] = '"';
    return at;
}

static void assert_same_as_reference(const char *text, size_t len)
{
    struct message_in got, want;
    memset(&got, 0, sizeof got);
    memset(&want, 0, sizeof want);
    enum message_verdict g = message_classify(text, len, &got), w = reference(text, len, &want);
    if (g != w)
        fail_msg("verdict %d, jansson says %d, for %.*s...", g, w, 200, text);
    if (g == MESSAGE_VALID) {
        assert_int_equal(got.kind, want.kind);
        assert_string_equal(got.id, want.id);
    }
}

/*
 * Texts with long strings (as keys, values, in arrays, as message_id or
 * type), each mutated at random (a byte deleted, changed to a JSON
 * delimiter, a control byte, a backslash, invalid UTF-8): message_classify
 * says exactly what jansson says of the text itself, valid or not.
 */
static void test_long_strings_judged_as_jansson_does(void **state)
{
    (void)state;
    enum { CAP = 16384 };
    char *buf = malloc(CAP);
    assert_non_null(buf);
    static const char bytes[] = "\"{}[],:\\ x\x01\x1f\x7f\x80\xff\xc3\t0";
    srand(12345);
    for (int round = 0; round < 3000; round++) {
        size_t n = 0;
        int shape = round % 6;
        buf[n++] = shape == 5 ? '[' : '{';
        if (shape != 5) {
            n += (size_t)snprintf(buf + n, CAP - n, "\"message_id\":");
            if (shape == 3)
                n = put_long(buf, n, 'a', 300); /* a long message_id is a bad one */
            else
                n += (size_t)snprintf(buf + n, CAP - n, "\"%s\"", ID);
            n += (size_t)snprintf(buf + n, CAP - n, ",\"type\":");
            if (shape == 4)
                n = put_long(buf, n, 'A', 400);
            else
                n += (size_t)snprintf(buf + n, CAP - n, "\"%s\"", round % 2 ? "ACK" : "note");
            buf[n++] = ',';
        }
        n = put_long(buf, n, 'k', 5000); /* a long key (or, in an array, an element) */
        buf[n++] = shape == 5 ? ',' : ':';
        if (shape == 1) {
            buf[n++] = '[';
            n = put_long(buf, n, 'y', 4000);
            buf[n++] = ']';
        } else {
            n = put_long(buf, n, 'x', 6000);
        }
        buf[n++] = shape == 5 ? ']' : '}';
        if (round % 3 != 0) {
            size_t at = (size_t)rand() % n;
            if (round % 3 == 1)
                memmove(buf + at, buf + at + 1, --n - at); /* a byte deleted */
            else
                buf[at] = bytes[(size_t)rand() % (sizeof bytes - 1)];
        }
        assert_same_as_reference(buf, n);
    }
    free(buf);
}

/* A long plain string beside a message's own fields: valid, and its id and type are read. */
static void test_long_strings_fields_read(void **state)
{
    (void)state;
    enum { CAP = 20000 };
    char *buf = malloc(CAP);
    assert_non_null(buf);
    size_t n = (size_t)snprintf(buf, CAP, "{\"blob\":");
    n = put_long(buf, n, 'x', 10000);
    n += (size_t)snprintf(buf + n, CAP - n, ",\"type\":\"ACK\",\"message_id\":\"%s\"}", ID2);
    struct message_in in;
    assert_int_equal(message_classify(buf, n, &in), MESSAGE_VALID);
    assert_int_equal(in.kind, MESSAGE_ACK);
    assert_string_equal(in.id, ID2);
    /* the same with a raw control byte in the long string: not JSON */
    buf[100] = '\n';
    assert_int_equal(message_classify(buf, n, &in), MESSAGE_NOT_JSON);
    /* and the error a user sees names the text's own line and column */
    char err[256];
    struct message_out out;
    assert_int_equal(message_prepare_max(buf, n, NULL, CAP, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "line 1, column"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_classify_data),
        cmocka_unit_test(test_classify_ack),
        cmocka_unit_test(test_classify_ack_fast_path),
        cmocka_unit_test(test_classify_other_type_is_data),
        cmocka_unit_test(test_classify_type_ack_nul_is_data),
        cmocka_unit_test(test_classify_bad_id),
        cmocka_unit_test(test_classify_not_object),
        cmocka_unit_test(test_classify_not_json),
        cmocka_unit_test(test_classify_invalid_utf8),
        cmocka_unit_test(test_classify_depth),
        cmocka_unit_test(test_classify_big_numbers),
        cmocka_unit_test(test_classify_raw_nul),
        cmocka_unit_test(test_classify_nul_escape),
        cmocka_unit_test(test_classify_nul_escape_in_key),
        cmocka_unit_test(test_classify_length_bounded),
        cmocka_unit_test(test_ack_text),
        cmocka_unit_test(test_prepare_fresh_id),
        cmocka_unit_test(test_prepare_repeated_bad_id),
        cmocka_unit_test(test_prepare_row_id_inserted),
        cmocka_unit_test(test_prepare_same_id_unchanged),
        cmocka_unit_test(test_prepare_conflicting_ids),
        cmocka_unit_test(test_prepare_adopts_payload_id),
        cmocka_unit_test(test_prepare_errors),
        cmocka_unit_test(test_parse_larger_than_arena),
        cmocka_unit_test(test_prepare_replaces_bad_payload_id),
        cmocka_unit_test(test_prepare_scalar_not_object),
        cmocka_unit_test(test_prepare_size_limits),
        cmocka_unit_test(test_check_payload),
        cmocka_unit_test(test_long_strings_judged_as_jansson_does),
        cmocka_unit_test(test_long_strings_fields_read),
    };
    if (envelope_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("message", tests, NULL, NULL);
}
