/*
 * jsonout: JSON text written into a growing buffer, without I/O.
 *
 * Two layouts: indent > 0 is pretty (one member per line, `"key": value`,
 * empty containers as {} and []), indent == 0 is compact (no whitespace).
 *
 * jsonout_value copies an already written JSON text (a stored payload) in
 * either layout token by token: numbers and strings come out exactly as they
 * were written (0.1 stays 0.1, 12345678901234567890 keeps its digits, escapes
 * stay as they were), only whitespace changes. It checks the text against
 * RFC 8259 as it goes (strict UTF-8 too), so whatever it writes is valid.
 *
 * With a sink (jsonout_set_sink) the text does not pile up: whenever about
 * JSONOUT_CHUNK bytes are buffered they are passed to the sink, so memory
 * stays bounded however long the output. Without one it all stays in buf.
 *
 * Allocation and sink failures are sticky: later calls do nothing and `oom`
 * (or `sink_failed`) stays 1.
 */
#ifndef SG_JSONOUT_H
#define SG_JSONOUT_H

#include <stddef.h>
#include <stdint.h>

/* Deepest nesting jsonout_value copies; deeper text is treated as invalid. */
#define JSONOUT_MAX_DEPTH 512

/* With a sink, about this many bytes are buffered before they are passed on. */
#define JSONOUT_CHUNK 65536

/*
 * The growth cap of jsonout_field_value: a JSON field whose indented layout
 * would be larger than JSONOUT_PRETTY_FLOOR bytes and more than
 * JSONOUT_PRETTY_GROWTH times its compact layout is written compact. Indenting
 * adds indent * depth bytes per line, so deep nesting can make it grow without
 * bound (a 64 KB array nested 98 deep grows a hundredfold); ordinary payloads
 * grow two- to fivefold and stay indented.
 */
#define JSONOUT_PRETTY_FLOOR 65536
#define JSONOUT_PRETTY_GROWTH 8

/* Takes n bytes of text; returns 0, or -1 with errno set (the output then stops). */
typedef int (*jsonout_sink_fn)(void *ctx, const char *s, size_t n);

struct jsonout {
    char *buf; /* NUL-terminated text (NULL until something is written) */
    size_t len;
    size_t cap;
    int oom; /* an allocation failed; the text is incomplete */
    jsonout_sink_fn sink;
    void *sink_ctx;
    int sink_failed; /* the sink refused text; what follows is dropped */
    int sink_errno;  /* errno as the sink left it then */
};

void jsonout_init(struct jsonout *o);

/*
 * From now on passes the text to sink in pieces (at most about JSONOUT_CHUNK
 * bytes stay in buf); jsonout_flush passes on the rest.
 */
void jsonout_set_sink(struct jsonout *o, jsonout_sink_fn sink, void *ctx);

/*
 * Passes the buffered text to the sink (if any) and empties the buffer.
 * Returns 0, or -1 if the sink failed now or before, or an allocation failed.
 */
__attribute__((warn_unused_result)) int jsonout_flush(struct jsonout *o);

/* Frees the buffer and empties o; fine to call twice. */
void jsonout_free(struct jsonout *o);

/* Empties the text, keeping the buffer. */
void jsonout_reset(struct jsonout *o);

/* Appends n bytes as they are. */
void jsonout_raw(struct jsonout *o, const char *s, size_t n);

/* Appends s (NUL-terminated) as it is. */
void jsonout_text(struct jsonout *o, const char *s);

/*
 * Appends s[0..n) as a JSON string: quotes, backslash and control characters
 * escaped; bytes that are not valid UTF-8 become U+FFFD, so the result is
 * always valid JSON.
 */
void jsonout_string(struct jsonout *o, const char *s, size_t n);

/* Length of the valid UTF-8 sequence at s[i] (a byte >= 0x80; i < len), or 0. */
size_t jsonout_utf8_seq(const unsigned char *s, size_t len, size_t i);

void jsonout_int(struct jsonout *o, int64_t v);

/* The shortest text that reads back as v; NaN and infinities become null. */
void jsonout_real(struct jsonout *o, double v);

/* Pretty: a newline and indent*depth spaces. Compact: nothing. */
void jsonout_newline(struct jsonout *o, int indent, int depth);

/*
 * Appends the JSON text s[0..len) (any value; surrounding whitespace allowed)
 * re-laid out with indent, its inner lines indented as at depth. Returns 0,
 * or -1 if s is not valid JSON (then o is left as it was).
 */
__attribute__((warn_unused_result)) int jsonout_value(struct jsonout *o, const char *s, size_t len,
                                                      int indent, int depth);

/* 1 if s[0..len) is one valid JSON text, else 0. */
int jsonout_valid(const char *s, size_t len);

/*
 * Sets *out to the number of bytes jsonout_value would append for these
 * arguments (SIZE_MAX if it does not fit), writing nothing. Returns 0, or -1
 * if s is not valid JSON.
 */
__attribute__((warn_unused_result)) int jsonout_measure(const char *s, size_t len, int indent,
                                                        int depth, size_t *out);

enum jsonout_kind {
    JSONOUT_NULL,
    JSONOUT_INT,
    JSONOUT_REAL,
    JSONOUT_STRING, /* s[0..len) as a JSON string */
    JSONOUT_JSON,   /* s[0..len) as the JSON value it holds, or as a string if it is not JSON */
};

struct jsonout_field {
    const char *name;
    enum jsonout_kind kind;
    int64_t i;
    double r;
    const char *s;
    size_t len;
};

/*
 * Appends one value of a field (not its name). A JSONOUT_JSON field is laid
 * out with indent unless that passes the growth cap (JSONOUT_PRETTY_FLOOR and
 * JSONOUT_PRETTY_GROWTH): then it is written compact, on one line.
 */
void jsonout_field_value(struct jsonout *o, const struct jsonout_field *f, int indent, int depth);

/* Appends an object of the n fields, in order, its members at depth + 1. */
void jsonout_object(struct jsonout *o, const struct jsonout_field *f, size_t n, int indent,
                    int depth);

#endif
