/*
 * jsonout: JSON writing and re-layout. The re-layout is a small iterative
 * RFC 8259 scanner with an explicit stack, so no input can make it recurse.
 */
#include "tools/jsonout.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD ((size_t)-1)

void jsonout_init(struct jsonout *o)
{
    memset(o, 0, sizeof *o);
}

void jsonout_free(struct jsonout *o)
{
    free(o->buf);
    memset(o, 0, sizeof *o);
}

void jsonout_reset(struct jsonout *o)
{
    o->len = 0;
    if (o->buf != NULL)
        o->buf[0] = '\0';
}

void jsonout_set_sink(struct jsonout *o, jsonout_sink_fn sink, void *ctx)
{
    o->sink = sink;
    o->sink_ctx = ctx;
}

/* Passes s[0..n) to the sink; a failure is sticky (and keeps the sink's errno). */
static int to_sink(struct jsonout *o, const char *s, size_t n)
{
    if (o->sink_failed)
        return -1;
    if (n > 0 && o->sink(o->sink_ctx, s, n) != 0) {
        o->sink_failed = 1;
        o->sink_errno = errno;
        return -1;
    }
    return 0;
}

int jsonout_flush(struct jsonout *o)
{
    if (o->sink != NULL && o->len > 0) {
        (void)to_sink(o, o->buf, o->len);
        jsonout_reset(o);
    }
    return o->oom || o->sink_failed ? -1 : 0;
}

/*
 * Makes room for n more bytes plus the NUL; 0 on success, -1 on failure (oom
 * set, or the sink failed before). With a sink, what is buffered is passed on
 * first rather than let the buffer grow past JSONOUT_CHUNK.
 */
static int reserve(struct jsonout *o, size_t n)
{
    if (o->oom || o->sink_failed)
        return -1;
    if (o->sink != NULL && o->len > 0 && (o->len >= JSONOUT_CHUNK || n > JSONOUT_CHUNK - o->len) &&
        jsonout_flush(o) != 0)
        return -1;
    if (n < o->cap && o->len < o->cap - n)
        return 0;
    size_t want = o->len + n + 1;
    if (want < o->len) {
        o->oom = 1;
        return -1;
    }
    size_t cap = o->cap < 256 ? 256 : o->cap;
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    char *b = realloc(o->buf, cap);
    if (b == NULL) {
        o->oom = 1;
        return -1;
    }
    o->buf = b;
    o->cap = cap;
    return 0;
}

void jsonout_raw(struct jsonout *o, const char *s, size_t n)
{
    if (n == 0)
        return;
    /* A long piece (a big string token) goes to the sink as it is, not through buf. */
    if (o->sink != NULL && n >= JSONOUT_CHUNK) {
        if (jsonout_flush(o) == 0)
            (void)to_sink(o, s, n);
        return;
    }
    if (reserve(o, n) != 0)
        return;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

void jsonout_text(struct jsonout *o, const char *s)
{
    jsonout_raw(o, s, strlen(s));
}

static void put(struct jsonout *o, char c)
{
    jsonout_raw(o, &c, 1);
}

size_t jsonout_utf8_seq(const unsigned char *s, size_t len, size_t i)
{
    unsigned c = s[i];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F; /* no UTF-16 surrogates */
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F; /* nothing above U+10FFFF */
    if (n > len - i)
        return 0;
    if (s[i + 1] < lo || s[i + 1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if (s[i + k] < 0x80 || s[i + k] > 0xBF)
            return 0;
    return n;
}

void jsonout_string(struct jsonout *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (s == NULL)
        s = "";
    const unsigned char *u = (const unsigned char *)s;
    put(o, '"');
    size_t run = 0; /* start of bytes not yet copied */
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t step = 1;
        const char *esc = NULL;
        char ubuf[7];
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20) {
            memcpy(ubuf, "\\u00", 4);
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            ubuf[6] = '\0';
            esc = ubuf;
        } else if (c >= 0x80 && (step = jsonout_utf8_seq(u, n, i)) == 0) {
            esc = "\xEF\xBF\xBD"; /* U+FFFD for a byte that is not UTF-8 */
            step = 1;
        }
        if (esc != NULL) {
            jsonout_raw(o, s + run, i - run);
            jsonout_text(o, esc);
            run = i + step;
        }
        i += step;
    }
    jsonout_raw(o, s + run, n - run);
    put(o, '"');
}

void jsonout_int(struct jsonout *o, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    jsonout_raw(o, b, (size_t)n);
}

void jsonout_real(struct jsonout *o, double v)
{
    if (!isfinite(v)) {
        jsonout_text(o, "null");
        return;
    }
    char b[32];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, v);
        if (strtod(b, NULL) == v)
            break;
    }
    jsonout_text(o, b);
}

void jsonout_newline(struct jsonout *o, int indent, int depth)
{
    if (indent <= 0)
        return;
    size_t n = (size_t)indent * (size_t)(depth < 0 ? 0 : depth);
    if (reserve(o, n + 1) != 0)
        return;
    o->buf[o->len++] = '\n';
    memset(o->buf + o->len, ' ', n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The end of the string token starting with the quote at s[i], or BAD. */
static size_t scan_string(const char *s, size_t len, size_t i)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t j = i + 1; j < len;) {
        unsigned c = u[j];
        if (c == '"')
            return j + 1;
        if (c < 0x20)
            return BAD;
        if (c == '\\') {
            if (j + 1 >= len)
                return BAD;
            char e = s[j + 1];
            if (e == 'u') {
                if (len - j < 6 || !is_hex(s[j + 2]) || !is_hex(s[j + 3]) || !is_hex(s[j + 4]) ||
                    !is_hex(s[j + 5]))
                    return BAD;
                j += 6;
            } else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
                j += 2;
            } else {
                return BAD;
            }
        } else if (c >= 0x80) {
            size_t n = jsonout_utf8_seq(u, len, j);
            if (n == 0)
                return BAD;
            j += n;
        } else {
            j++;
        }
    }
    return BAD;
}

static size_t scan_digits(const char *s, size_t len, size_t i)
{
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

/* The end of the number token at s[i], or BAD. */
static size_t scan_number(const char *s, size_t len, size_t i)
{
    if (i < len && s[i] == '-')
        i++;
    if (i >= len)
        return BAD;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        i = scan_digits(s, len, i);
    else
        return BAD;
    if (i < len && s[i] == '.') {
        size_t j = scan_digits(s, len, i + 1);
        if (j == i + 1)
            return BAD;
        i = j;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t j = scan_digits(s, len, i);
        if (j == i)
            return BAD;
        i = j;
    }
    return i;
}

/* The end of the scalar token (string, number, true, false, null) at s[i], or BAD. */
static size_t scan_scalar(const char *s, size_t len, size_t i)
{
    static const char *const lits[] = {"true", "false", "null"};
    if (s[i] == '"')
        return scan_string(s, len, i);
    if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9'))
        return scan_number(s, len, i);
    for (size_t k = 0; k < sizeof lits / sizeof lits[0]; k++) {
        size_t n = strlen(lits[k]);
        if (len - i >= n && memcmp(s + i, lits[k], n) == 0)
            return i + n;
    }
    return BAD;
}

enum expect { EXPECT_VALUE, EXPECT_KEY, EXPECT_NEXT };

/*
 * Where the scanner's output goes: appended to o (if not NULL), and counted in
 * n either way (saturating at SIZE_MAX), so one scanner validates, measures
 * and writes.
 */
struct emit {
    struct jsonout *o;
    size_t n;
};

static void count(struct emit *e, size_t n)
{
    e->n = n > SIZE_MAX - e->n ? SIZE_MAX : e->n + n;
}

static void emit_raw(struct emit *e, const char *s, size_t n)
{
    count(e, n);
    if (e->o != NULL)
        jsonout_raw(e->o, s, n);
}

static void emit_char(struct emit *e, char c)
{
    emit_raw(e, &c, 1);
}

static void emit_newline(struct emit *e, int indent, int depth)
{
    if (indent <= 0)
        return;
    count(e, 1 + (size_t)indent * (size_t)(depth < 0 ? 0 : depth));
    if (e->o != NULL)
        jsonout_newline(e->o, indent, depth);
}

/*
 * The scanner: copies s to e in the layout of indent. Returns 0 if s is one
 * valid JSON text, else -1 (having emitted part of it).
 */
static int relayout(struct emit *e, const char *s, size_t len, int indent, int depth)
{
    char stack[JSONOUT_MAX_DEPTH];
    int sp = 0;
    enum expect want = EXPECT_VALUE;
    size_t i = skip_ws(s, len, 0);
    for (;;) {
        if (want == EXPECT_NEXT) {
            i = skip_ws(s, len, i);
            if (sp == 0)
                return i == len ? 0 : -1;
            if (i >= len)
                return -1;
            char top = stack[sp - 1];
            if (s[i] == ',') {
                emit_char(e, ',');
                emit_newline(e, indent, depth + sp);
                i = skip_ws(s, len, i + 1);
                want = top == '{' ? EXPECT_KEY : EXPECT_VALUE;
            } else if (s[i] == (top == '{' ? '}' : ']')) {
                sp--;
                emit_newline(e, indent, depth + sp);
                emit_char(e, s[i]);
                i++;
            } else {
                return -1;
            }
            continue;
        }
        if (i >= len)
            return -1;
        if (want == EXPECT_KEY) {
            size_t end = s[i] == '"' ? scan_string(s, len, i) : BAD;
            if (end == BAD)
                return -1;
            size_t colon = skip_ws(s, len, end);
            if (colon >= len || s[colon] != ':')
                return -1;
            emit_raw(e, s + i, end - i);
            emit_raw(e, ": ", indent > 0 ? 2 : 1);
            i = skip_ws(s, len, colon + 1);
            want = EXPECT_VALUE;
            continue;
        }
        char c = s[i];
        if (c == '{' || c == '[') {
            char close = c == '{' ? '}' : ']';
            size_t j = skip_ws(s, len, i + 1);
            if (sp == JSONOUT_MAX_DEPTH)
                return -1;
            if (j < len && s[j] == close) {
                emit_char(e, c);
                emit_char(e, close);
                i = j + 1;
                want = EXPECT_NEXT;
                continue;
            }
            stack[sp++] = c;
            emit_char(e, c);
            emit_newline(e, indent, depth + sp);
            i = j;
            want = c == '{' ? EXPECT_KEY : EXPECT_VALUE;
            continue;
        }
        size_t end = scan_scalar(s, len, i);
        if (end == BAD)
            return -1;
        emit_raw(e, s + i, end - i);
        i = end;
        want = EXPECT_NEXT;
    }
}

int jsonout_measure(const char *s, size_t len, int indent, int depth, size_t *out)
{
    struct emit e = {NULL, 0};
    if (relayout(&e, s, len, indent, depth) != 0)
        return -1;
    *out = e.n;
    return 0;
}

int jsonout_valid(const char *s, size_t len)
{
    struct emit e = {NULL, 0};
    return relayout(&e, s, len, 0, 0) == 0;
}

/* Writes text already known to be valid JSON (so the scanner cannot stop half-way). */
static void write_valid(struct jsonout *o, const char *s, size_t len, int indent, int depth)
{
    struct emit e = {o, 0};
    (void)relayout(&e, s, len, indent, depth);
}

/*
 * Validated before anything is written: with a sink, text once passed on
 * cannot be taken back.
 */
int jsonout_value(struct jsonout *o, const char *s, size_t len, int indent, int depth)
{
    if (!jsonout_valid(s, len))
        return -1;
    write_valid(o, s, len, indent, depth);
    return 0;
}

/* 1 if an indented layout of `pretty` bytes passes the growth cap over `compact` bytes. */
static int too_big(size_t pretty, size_t compact)
{
    return pretty > JSONOUT_PRETTY_FLOOR && pretty / JSONOUT_PRETTY_GROWTH > compact;
}

/* A JSONOUT_JSON field: its JSON in the layout the growth cap allows, else a string. */
static void put_json(struct jsonout *o, const struct jsonout_field *f, int indent, int depth)
{
    size_t compact, pretty;
    if (jsonout_measure(f->s, f->len, 0, 0, &compact) != 0) {
        jsonout_string(o, f->s, f->len);
        return;
    }
    if (indent > 0 && jsonout_measure(f->s, f->len, indent, depth, &pretty) == 0 &&
        too_big(pretty, compact))
        indent = 0;
    write_valid(o, f->s, f->len, indent, depth);
}

void jsonout_field_value(struct jsonout *o, const struct jsonout_field *f, int indent, int depth)
{
    switch (f->kind) {
    case JSONOUT_INT:
        jsonout_int(o, f->i);
        break;
    case JSONOUT_REAL:
        jsonout_real(o, f->r);
        break;
    case JSONOUT_STRING:
        jsonout_string(o, f->s, f->len);
        break;
    case JSONOUT_JSON:
        put_json(o, f, indent, depth);
        break;
    default:
        jsonout_text(o, "null");
        break;
    }
}

void jsonout_object(struct jsonout *o, const struct jsonout_field *f, size_t n, int indent,
                    int depth)
{
    if (n == 0) {
        jsonout_text(o, "{}");
        return;
    }
    put(o, '{');
    for (size_t k = 0; k < n; k++) {
        if (k > 0)
            put(o, ',');
        jsonout_newline(o, indent, depth + 1);
        jsonout_string(o, f[k].name, strlen(f[k].name));
        jsonout_raw(o, ": ", indent > 0 ? 2 : 1);
        jsonout_field_value(o, &f[k], indent, depth + 1);
    }
    jsonout_newline(o, indent, depth);
    put(o, '}');
}
