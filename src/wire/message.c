/*
 * message: JSON rules. Parsing is jansson's; this file only bounds the input
 * (length and depth) before parsing and applies the protocol's rules after.
 */
#define _GNU_SOURCE
#include "wire/message.h"

#include "wire/envelope.h"
#include "wire/parts.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Integers of any size are valid JSON (the original accepts them), so parse them as reals. */
#define PARSE_FLAGS (JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

int message_id_valid(const char *s)
{
    for (int i = 0; i < MESSAGE_ID_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return s[MESSAGE_ID_LEN] == '\0';
}

/* s[i] is '"': the index just past the closing quote. */
static size_t skip_string(const char *s, size_t i, size_t n)
{
    /* memchr to each quote (a message of a megabyte is mostly long strings); the quote closes
     * the string unless an odd run of backslashes stands before it */
    for (i++; i < n;) {
        const char *q = memchr(s + i, '"', n - i);
        if (q == NULL)
            return n;
        size_t at = (size_t)(q - s), back = 0;
        while (at - back > i && s[at - back - 1] == '\\')
            back++;
        if (back % 2 == 0)
            return at + 1;
        i = at + 1;
    }
    return n;
}

/* 1 if no array/object in the text nests deeper than MESSAGE_MAX_DEPTH. */
static int depth_ok(const char *s, size_t len)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '"')
            i = skip_string(s, i, len) - 1;
        else if ((c == '[' || c == '{') && ++depth > MESSAGE_MAX_DEPTH)
            return 0;
        else if (c == ']' || c == '}')
            depth--;
    }
    return 1;
}

/* The length of a JSON number token at s (grammar of RFC 8259), or 0 if there is none. */
static size_t number_len(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    size_t end = i;
    if (i + 1 < n && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
        for (i += 1; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        end = i;
    }
    if (end < n && (s[end] == 'e' || s[end] == 'E')) {
        i = end + 1;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i < n && s[i] >= '0' && s[i] <= '9') {
            while (i < n && s[i] >= '0' && s[i] <= '9')
                i++;
            end = i;
        }
    }
    return end;
}

/*
 * Two things jansson refuses that are valid JSON: "\u0000" in object keys,
 * and numbers beyond a double (an integer of 309 digits, 1e400). The rules
 * look only at "message_id" and "type", so a copy with every "\u0000" turned
 * into "\u0001" and every number into 0 (padded with spaces) is as good for
 * judging them, and is tried when jansson refuses the text. The copy is
 * never stored or sent: the original text is, byte for byte.
 */
static json_t *parse_neutral_copy(const char *json, size_t len, json_error_t *jerr)
{
    char *copy = malloc(len);
    if (copy == NULL)
        return NULL;
    memcpy(copy, json, len);
    for (size_t i = 0; i < len; i++) {
        char c = copy[i];
        if (c == '"') {
            size_t end = skip_string(copy, i, len);
            for (size_t j = i + 1; j + 1 < end; j++)
                if (copy[j] == '\\' && copy[++j] == 'u' && j + 4 < end &&
                    memcmp(copy + j + 1, "0000", 4) == 0)
                    copy[j + 4] = '1';
            i = end - 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t n = number_len(copy + i, len - i);
            if (n > 0) {
                copy[i] = '0';
                memset(copy + i + 1, ' ', n - 1);
                i += n - 1;
            }
        }
    }
    json_t *root = json_loadb(copy, len, PARSE_FLAGS, jerr);
    free(copy);
    return root;
}

/*
 * jansson allocates every object, key and string it parses: about ten mallocs
 * and frees for a small message, a fifth of the parse. A tree parsed here
 * lives only inside one function (message_classify, check_payload), so its
 * pieces come from a bump arena per thread, emptied when the tree is freed;
 * what does not fit, or is allocated anywhere else, is malloc's as before.
 */
#define ARENA_BYTES 16384
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_USED 0 /* under AddressSanitizer every piece is malloc's, and checked */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_USED 0
#endif
#endif
#ifndef ARENA_USED
#define ARENA_USED 1
#endif
static _Thread_local _Alignas(16) unsigned char arena[ARENA_BYTES];
static _Thread_local size_t arena_used;
static _Thread_local int arena_on;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static int in_arena(const void *p)
{
    uintptr_t a = (uintptr_t)arena, x = (uintptr_t)p;
    return x >= a && x < a + ARENA_BYTES;
}

static void *arena_malloc(size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (arena_on && need >= n && need <= ARENA_BYTES - arena_used) {
        void *p = arena + arena_used;
        arena_used += need;
        return p;
    }
    return malloc(n);
}

static void arena_free(void *p)
{
    if (!in_arena(p))
        free(p); /* a piece of the arena goes when the whole tree does (tree_done) */
}

static void use_arena(void)
{
    json_set_alloc_funcs(arena_malloc, arena_free);
}

/* From here until tree_done(), what jansson allocates in this thread may come from the arena. */
static void tree_start(void)
{
    (void)pthread_once(&arena_once, use_arena);
    arena_used = 0;
    arena_on = ARENA_USED;
}

/* The tree is freed: nothing in the arena is in use any more. */
static void tree_done(json_t *root)
{
    json_decref(root);
    arena_on = 0;
    arena_used = 0;
}

/*
 * jansson reads a string a byte at a time (about 14 ms for a megabyte), and
 * the rules never look inside a long one: "message_id" and "type" are short.
 * So a long string whose body is printable ASCII without '"' or '\\' (valid
 * JSON whatever it says) is emptied in a copy, and jansson parses the copy:
 * the tokens are the same, so the copy is valid exactly when the text is,
 * and its message_id and type are the text's. Any other string (escapes,
 * UTF-8, control bytes) is left for jansson to judge as it is.
 */
#define PLAIN_MIN 256     /* a string body this long or longer may be emptied */
#define SKELETON_MIN 4096 /* a shorter text is parsed as it is: the copy would cost more */

/* 1 if s[0..n) are all printable ASCII other than '"' and '\\'. */
static int plain(const char *s, size_t n)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bad |= (unsigned)(c < 0x20) | (unsigned)(c > 0x7e) | (unsigned)(c == '\\');
    }
    return bad == 0; /* no '"': skip_string ended the body at the first one */
}

/*
 * A copy of json (len bytes) with every long plain string emptied, and its
 * length in *out_len; NULL if there is none (or no memory): parse json itself.
 */
static char *skeleton(const char *json, size_t len, size_t *out_len)
{
    char *out = NULL;
    size_t o = 0, from = 0; /* json[from..i) is still to be copied */
    for (size_t i = 0; i < len; i++) {
        const char *q = memchr(json + i, '"', len - i);
        if (q == NULL)
            break;
        i = (size_t)(q - json);
        size_t end = skip_string(json, i, len); /* past the closing quote, or len */
        if (end - i >= 2 + PLAIN_MIN && json[end - 1] == '"' && plain(json + i + 1, end - i - 2)) {
            if (out == NULL && (out = malloc(len)) == NULL)
                return NULL;
            memcpy(out + o, json + from, i + 1 - from); /* up to the opening quote */
            o += i + 1 - from;
            from = end - 1; /* the closing quote is copied next */
        }
        i = end - 1;
    }
    if (out == NULL)
        return NULL;
    memcpy(out + o, json + from, len - from);
    *out_len = o + len - from;
    return out;
}

static json_t *parse(const char *json, size_t len, json_error_t *jerr)
{
    /* A raw NUL is never valid JSON, but jansson skips one right after a number. */
    const char *why = len > PART_MAX_MESSAGE            ? "text too long"
                      : memchr(json, '\0', len) != NULL ? "a NUL byte in the text"
                      : !depth_ok(json, len)            ? "nested too deeply"
                                                        : NULL;
    if (why != NULL) {
        snprintf(jerr->text, sizeof jerr->text, "%s", why);
        jerr->line = jerr->column = -1;
        return NULL;
    }
    size_t slen = 0;
    char *skel = len >= SKELETON_MIN ? skeleton(json, len, &slen) : NULL;
    if (skel != NULL) {
        json_error_t again;
        json_t *root = json_loadb(skel, slen, PARSE_FLAGS, &again);
        if (root == NULL)
            root = parse_neutral_copy(skel, slen, &again);
        free(skel);
        if (root != NULL)
            return root;
        /* invalid: the text itself is parsed below, for the line and column of its error */
    }
    json_t *root = json_loadb(json, len, PARSE_FLAGS, jerr);
    if (root == NULL) {
        json_error_t again;
        root = parse_neutral_copy(json, len, &again);
    }
    return root;
}

/* 1 if v is exactly the string "ACK" (not "ACK\u0000..."). */
static int is_ack_type(const json_t *v)
{
    return json_is_string(v) && json_string_length(v) == 3 &&
           memcmp(json_string_value(v), "ACK", 3) == 0;
}

/* The payload's message_id string, or NULL if it has none. *bad set if present but invalid. */
static const char *payload_id(json_t *obj, int *bad)
{
    json_t *v = json_object_get(obj, "message_id");
    *bad = 0;
    if (v == NULL)
        return NULL;
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (s == NULL || json_string_length(v) != MESSAGE_ID_LEN || !message_id_valid(s)) {
        *bad = 1;
        return NULL;
    }
    return s;
}

/*
 * The ACK exactly as this daemon and the original write it (message_ack_text):
 * read without the JSON parser, which took a tenth of a sender's time for the
 * one datagram in two that is an ACK. Anything else, however close, is parsed.
 */
#define ACK_HEAD "{\"type\":\"ACK\",\"message_id\":\""
#define ACK_TAIL "\"}"
#define ACK_HEAD_LEN (sizeof ACK_HEAD - 1)
#define ACK_TEXT_LEN (ACK_HEAD_LEN + MESSAGE_ID_LEN + sizeof ACK_TAIL - 1)

static int canonical_ack(const char *json, size_t len, char id[MESSAGE_ID_LEN + 1])
{
    if (len != ACK_TEXT_LEN || memcmp(json, ACK_HEAD, ACK_HEAD_LEN) != 0 ||
        memcmp(json + ACK_HEAD_LEN + MESSAGE_ID_LEN, ACK_TAIL, sizeof ACK_TAIL - 1) != 0)
        return 0;
    memcpy(id, json + ACK_HEAD_LEN, MESSAGE_ID_LEN);
    id[MESSAGE_ID_LEN] = '\0';
    return message_id_valid(id);
}

enum message_verdict message_classify(const char *json, size_t len, struct message_in *out)
{
    char ack_id[MESSAGE_ID_LEN + 1];
    if (canonical_ack(json, len, ack_id)) {
        out->kind = MESSAGE_ACK;
        memcpy(out->id, ack_id, sizeof ack_id);
        return MESSAGE_VALID;
    }
    json_error_t jerr;
    tree_start();
    json_t *root = parse(json, len, &jerr);
    if (root == NULL) {
        tree_done(NULL);
        return MESSAGE_NOT_JSON;
    }
    enum message_verdict v = MESSAGE_VALID;
    int bad = 0;
    const char *id = NULL;
    if (!json_is_object(root))
        v = MESSAGE_NOT_OBJECT;
    else if ((id = payload_id(root, &bad)) == NULL)
        v = MESSAGE_BAD_ID;
    if (v == MESSAGE_VALID) {
        json_t *type = json_object_get(root, "type");
        out->kind = is_ack_type(type) ? MESSAGE_ACK : MESSAGE_DATA;
        memcpy(out->id, id, MESSAGE_ID_LEN + 1);
    }
    tree_done(root);
    return v;
}

size_t message_ack_text(const char *id, char out[MESSAGE_ACK_MAX])
{
    int n = snprintf(out, MESSAGE_ACK_MAX, "{\"type\":\"ACK\",\"message_id\":\"%.24s\"}", id);
    return n > 0 ? (size_t)n : 0;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    default:
        return "an object";
    }
}

/* Parses payload as an object; on failure writes the reason to err and returns NULL. */
static json_t *parse_object(const char *payload, size_t len, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = parse(payload, len, &jerr);
    if (root == NULL) {
        if (jerr.line > 0)
            snprintf(err, errlen, "payload is not valid JSON: %s (line %d, column %d)", jerr.text,
                     jerr.line, jerr.column);
        else
            snprintf(err, errlen, "payload is not valid JSON: %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "payload is not a JSON object (it is %s)", json_type_name(root));
        json_decref(root);
        return NULL;
    }
    return root;
}

/*
 * As message_check_payload; with bad_id not NULL, a message_id that is not
 * 24 lowercase hex is reported there (1) instead of failing the check.
 */
/* The error of a payload of len bytes over max. */
static void too_long(size_t len, size_t max, char *err, size_t errlen)
{
    if (max == ENVELOPE_MAX_JSON)
        snprintf(err, errlen, "payload is %zu bytes; one datagram carries at most %d", len,
                 ENVELOPE_MAX_JSON);
    else
        snprintf(err, errlen, "payload is %zu bytes; one message carries at most %zu", len, max);
}

static int check_payload(const char *payload, size_t len, size_t max,
                         char found_id[MESSAGE_ID_LEN + 1], int *bad_id, char *err, size_t errlen)
{
    if (len > max) {
        too_long(len, max, err, errlen);
        return -1;
    }
    tree_start();
    json_t *root = parse_object(payload, len, err, errlen);
    if (root == NULL) {
        tree_done(NULL);
        return -1;
    }
    int bad = 0, rc = 0;
    const char *id = payload_id(root, &bad);
    json_t *type = json_object_get(root, "type");
    found_id[0] = '\0';
    if (bad && bad_id != NULL) {
        *bad_id = 1;
    } else if (bad) {
        snprintf(err, errlen, "payload message_id is not 24 lowercase hex digits");
        rc = -1;
    }
    if (rc == 0 && is_ack_type(type)) {
        snprintf(err, errlen,
                 "payload has \"type\":\"ACK\"; the receiver would take it for an acknowledgement");
        rc = -1;
    } else if (rc == 0 && !bad) {
        snprintf(found_id, MESSAGE_ID_LEN + 1, "%s", id != NULL ? id : "");
    }
    tree_done(root);
    return rc;
}

int message_check_payload(const char *payload, size_t len, char found_id[MESSAGE_ID_LEN + 1],
                          char *err, size_t errlen)
{
    return check_payload(payload, len, ENVELOPE_MAX_JSON, found_id, NULL, err, errlen);
}

/* ---- the spans of a top-level member's value, in text jansson has accepted ---- */

static size_t skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

static size_t skip_value(const char *s, size_t i, size_t n)
{
    if (i < n && s[i] == '"')
        return skip_string(s, i, n);
    int depth = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, i, n) - 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i;
            if (--depth == 0)
                return i + 1;
        } else if (depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            return i;
        }
    }
    return n;
}

/* 1 if the JSON string token s[0..len) decodes to "message_id" (escapes and all). */
static int key_is_message_id(const char *s, size_t len)
{
    if (len == 12 && memcmp(s, "\"message_id\"", 12) == 0)
        return 1;
    if (memchr(s, '\\', len) == NULL)
        return 0;
    json_t *k = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int is = json_is_string(k) && json_string_length(k) == 10 &&
             memcmp(json_string_value(k), "message_id", 10) == 0;
    json_decref(k);
    return is;
}

#define ID_SPANS_MAX 8

/* The value spans of the object's "message_id" members (duplicates included). */
static int id_value_spans(const char *s, size_t n, size_t start[], size_t end[])
{
    int found = 0;
    size_t i = skip_ws(s, 0, n);
    if (i >= n || s[i] != '{')
        return 0;
    for (i = skip_ws(s, i + 1, n); i < n && s[i] == '"';) {
        size_t ke = skip_string(s, i, n);
        int is_id = key_is_message_id(s + i, ke - i);
        size_t v = skip_ws(s, skip_ws(s, ke, n) + 1, n);
        size_t ve = skip_value(s, v, n);
        if (is_id && found < ID_SPANS_MAX) {
            start[found] = v;
            end[found] = ve;
        }
        found += is_id; /* all of them are counted, the first ID_SPANS_MAX kept */
        i = skip_ws(s, ve, n);
        if (i < n && s[i] == ',')
            i = skip_ws(s, i + 1, n);
    }
    return found;
}

/*
 * Copies payload with the value of every top-level "message_id" replaced by
 * "<id>": a row without an id whose payload carries one that is not 24
 * lowercase hex (a UUID, a number) is delivered with a fresh id, as the
 * original does; everything else in the text is kept as it is.
 */
static char *replace_id(const char *payload, size_t len, const char *id, size_t *out_len)
{
    size_t start[ID_SPANS_MAX], end[ID_SPANS_MAX];
    int k = id_value_spans(payload, len, start, end);
    if (k == 0 || k > ID_SPANS_MAX)
        return NULL; /* message_prepare refused more than ID_SPANS_MAX already */
    char *out = malloc(len + (size_t)k * (MESSAGE_ID_LEN + 2) + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0, from = 0;
    for (int i = 0; i < k; i++) {
        memcpy(out + o, payload + from, start[i] - from);
        o += start[i] - from;
        o += (size_t)sprintf(out + o, "\"%s\"", id);
        from = end[i];
    }
    memcpy(out + o, payload + from, len - from);
    o += len - from;
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Copies payload with "message_id":"<id>" inserted right after its opening brace. */
static char *insert_id(const char *payload, size_t len, const char *id, size_t *out_len)
{
    const char *brace = memchr(payload, '{', len);
    if (brace == NULL)
        return NULL;
    size_t head = (size_t)(brace - payload) + 1;
    size_t i = head;
    while (i < len &&
           (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\n' || payload[i] == '\r'))
        i++;
    int empty = i < len && payload[i] == '}';
    char field[64];
    int flen = snprintf(field, sizeof field, "\"message_id\":\"%s\"%s", id, empty ? "" : ",");
    char *out = malloc(len + (size_t)flen + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, payload, head);
    memcpy(out + head, field, (size_t)flen);
    memcpy(out + head + flen, payload + head, len - head);
    *out_len = len + (size_t)flen;
    out[*out_len] = '\0';
    return out;
}

int message_prepare(const char *payload, size_t len, const char *row_id, struct message_out *out,
                    char *err, size_t errlen)
{
    return message_prepare_max(payload, len, row_id, ENVELOPE_MAX_JSON, out, err, errlen);
}

int message_prepare_max(const char *payload, size_t len, const char *row_id, size_t max,
                        struct message_out *out, char *err, size_t errlen)
{
    char pid[MESSAGE_ID_LEN + 1];
    if (row_id != NULL && !message_id_valid(row_id)) {
        snprintf(err, errlen, "row message_id is not 24 lowercase hex digits");
        return -1;
    }
    int bad_id = 0;
    if (check_payload(payload, len, max, pid, row_id == NULL ? &bad_id : NULL, err, errlen) != 0)
        return -1;
    if (row_id != NULL && pid[0] != '\0' && strcmp(pid, row_id) != 0) {
        snprintf(err, errlen, "payload message_id %s differs from the row's message_id %s", pid,
                 row_id);
        return -1;
    }
    struct message_out m = {0};
    if (row_id != NULL)
        memcpy(m.id, row_id, sizeof m.id);
    else if (pid[0] != '\0')
        memcpy(m.id, pid, sizeof m.id);
    else
        envelope_message_id(m.id);
    m.id_changed = row_id == NULL;
    size_t s0[ID_SPANS_MAX], e0[ID_SPANS_MAX];
    if (bad_id && id_value_spans(payload, len, s0, e0) > ID_SPANS_MAX) {
        /* the receiver reads the last of them: every one must be replaced */
        snprintf(err, errlen, "payload has more than %d message_id members", ID_SPANS_MAX);
        return -1;
    }
    if (bad_id) {
        m.payload = replace_id(payload, len, m.id, &m.payload_len);
        m.payload_changed = 1;
    } else if (pid[0] == '\0') {
        m.payload = insert_id(payload, len, m.id, &m.payload_len);
        m.payload_changed = 1;
    } else {
        m.payload = malloc(len + 1);
        if (m.payload != NULL) {
            memcpy(m.payload, payload, len);
            m.payload[len] = '\0';
            m.payload_len = len;
        }
    }
    if (m.payload == NULL) {
        snprintf(err, errlen, "out of memory preparing the payload");
        return -1;
    }
    if (m.payload_len > max) {
        too_long(m.payload_len, max, err, errlen);
        free(m.payload);
        return -1;
    }
    *out = m;
    return 0;
}

void message_out_clear(struct message_out *out)
{
    free(out->payload);
    out->payload = NULL;
}
