/*
 * sg-recv's re-layout of stored payloads (jsonout), against jansson's parser.
 *
 * 1. Differential: within our nesting limit (JSONOUT_MAX_DEPTH; the daemon
 *    stores nothing deeper than MESSAGE_MAX_DEPTH), jansson and jsonout_valid
 *    agree on what is JSON, except where jansson is known to be stricter than
 *    RFC 8259, or laxer (a NUL byte; see below); and what jansson reads from
 *    our output, compact or indented, equals what it reads from the input
 *    (json_equal).
 * 2. Exactness, which jansson cannot see: the compact output is the input
 *    with the whitespace between tokens removed, byte for byte (so numbers
 *    and strings are copied as written), and the indented output differs from
 *    it only in whitespace.
 * 3. Stability: re-laying out our own output gives it back (compact and
 *    indented), jsonout_measure tells the exact length, and the growth-capped
 *    field layout is one of the two.
 * ASan (exact-size copies of the input) checks that nothing reads out of bounds.
 *
 * Numbers: jansson is asked for JSON_DECODE_INT_AS_REAL, as the daemon does,
 * so an integer of any size is a double instead of an error, and both sides of
 * json_equal hold doubles parsed by the same strtod. That alone would not
 * notice digits changed into others that round to the same double; property 2
 * does, by comparing the text itself.
 */
#include "tools/jsonout.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAGS (JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

/*
 * The deepest nesting in s, counting brackets outside strings (a string runs
 * to the next unescaped quote; on text that is not JSON it is only a guess).
 */
static size_t depth_of(const char *s, size_t len)
{
    size_t depth = 0, max = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}

/* s without the JSON whitespace outside strings (malloc'd, length in *n). */
static char *strip(const char *s, size_t len, size_t *n)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        abort();
    size_t k = 0;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            out[k++] = c;
            if (c == '\\' && i + 1 < len)
                out[k++] = s[++i];
            else if (c == '"')
                in_string = 0;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            out[k++] = c;
            in_string = c == '"';
        }
    }
    *n = k;
    return out;
}

/*
 * Where jansson refuses valid JSON: "\u0000" in an object key (always) or a
 * string (without JSON_ALLOW_NUL), a \u escape of a lone UTF-16 surrogate,
 * and a number too large for a double ("real number overflow", as 1e400).
 */
static int jansson_stricter(const json_error_t *e)
{
    return strstr(e->text, "\\u0000") != NULL || strstr(e->text, "NUL") != NULL ||
           strstr(e->text, "invalid Unicode") != NULL || strstr(e->text, "overflow") != NULL;
}

/* Our layout of s (malloc'd, exact size, length in *n). */
static char *lay_out(const char *s, size_t len, int indent, size_t *n)
{
    struct jsonout o;
    jsonout_init(&o);
    if (jsonout_value(&o, s, len, indent, 0) != 0 || o.oom)
        abort(); /* valid text must lay out */
    size_t measured;
    if (jsonout_measure(s, len, indent, 0, &measured) != 0 || measured != o.len)
        abort();
    char *copy = malloc(o.len + 1);
    if (copy == NULL)
        abort();
    memcpy(copy, o.buf != NULL ? o.buf : "", o.len + 1);
    *n = o.len;
    jsonout_free(&o);
    return copy;
}

/* Laying out our own output again gives it back, and jansson reads it as `want`. */
static void check_output(const char *out, size_t n, int indent, const json_t *want)
{
    size_t again_n;
    char *again = lay_out(out, n, indent, &again_n);
    if (again_n != n || memcmp(again, out, n) != 0)
        abort();
    free(again);
    if (want != NULL) {
        json_error_t e;
        json_t *got = json_loadb(out, n, FLAGS, &e);
        if (got == NULL || !json_equal(got, want))
            abort();
        json_decref(got);
    }
}

/* The growth-capped field layout is the indented one or the compact one, and valid. */
static void check_field(const char *s, size_t len, const char *pretty, size_t pn,
                        const char *compact, size_t cn)
{
    struct jsonout o;
    jsonout_init(&o);
    struct jsonout_field f = {.name = "payload", .kind = JSONOUT_JSON, .s = s, .len = len};
    jsonout_field_value(&o, &f, 2, 0);
    if (o.oom || !((o.len == pn && memcmp(o.buf, pretty, pn) == 0) ||
                   (o.len == cn && memcmp(o.buf, compact, cn) == 0)))
        abort();
    jsonout_free(&o);
}

/* Properties 2 and 3 for text jsonout accepts; want is jansson's reading, or NULL. */
static void check_valid(const char *s, size_t len, const json_t *want)
{
    size_t cn, pn, sn, spn;
    char *compact = lay_out(s, len, 0, &cn);
    char *pretty = lay_out(s, len, 2, &pn);
    char *stripped = strip(s, len, &sn);
    char *pretty_stripped = strip(pretty, pn, &spn);
    if (cn != sn || memcmp(compact, stripped, cn) != 0)
        abort(); /* only whitespace between tokens may go */
    if (spn != cn || memcmp(pretty_stripped, compact, cn) != 0)
        abort(); /* indenting only adds whitespace */
    check_output(compact, cn, 0, want);
    check_output(pretty, pn, 2, want);
    check_field(s, len, pretty, pn, compact, cn);
    free(compact);
    free(pretty);
    free(stripped);
    free(pretty_stripped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size > 0 ? size : 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    int ours = jsonout_valid(s, size);
    json_error_t e;
    json_t *theirs = json_loadb(s, size, FLAGS, &e);
    /*
     * A NUL byte is never JSON (not whitespace, and a control character in a
     * string), but jansson 2.14 skips one right after a number: it reads
     * "[0<NUL>]" as [0]. Such text is only checked for being refused.
     */
    int nul = memchr(s, '\0', size) != NULL;
    if (nul && ours)
        abort();
    if (depth_of(s, size) <= JSONOUT_MAX_DEPTH && !nul) {
        if (theirs != NULL && !ours)
            abort(); /* jansson reads JSON that we would show as a string */
        if (theirs == NULL && ours && !jansson_stricter(&e))
            abort(); /* we accept what jansson refuses for a reason RFC 8259 shares */
    }
    if (ours)
        check_valid(s, size, theirs);
    json_decref(theirs);
    free(s);
    return 0;
}
