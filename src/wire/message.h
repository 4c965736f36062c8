/*
 * message: the JSON rules of the protocol, without any I/O.
 *
 * A payload is a JSON object (at most MESSAGE_MAX_DEPTH levels deep, as the
 * original's parser allows) whose "message_id" is exactly 24 lowercase hex
 * digits. {"type":"ACK","message_id":...} is an acknowledgement; any other
 * object is a message.
 */
#ifndef SG_MESSAGE_H
#define SG_MESSAGE_H

#include <stddef.h>

#define MESSAGE_ID_LEN 24
#define MESSAGE_MAX_DEPTH 100
/* Room for the longest ACK text: {"type":"ACK","message_id":"<24>"} is 54. */
#define MESSAGE_ACK_MAX 64

enum message_kind { MESSAGE_DATA, MESSAGE_ACK };

enum message_verdict {
    MESSAGE_VALID = 0,
    MESSAGE_NOT_JSON,   /* not JSON text, invalid UTF-8, or nested too deep */
    MESSAGE_NOT_OBJECT, /* JSON, but not an object */
    MESSAGE_BAD_ID,     /* message_id missing or not 24 lowercase hex */
};

struct message_in {
    enum message_kind kind;
    char id[MESSAGE_ID_LEN + 1];
};

/* 1 if s is exactly 24 lowercase hex digits followed by NUL, else 0. */
int message_id_valid(const char *s);

/* Classifies a received JSON text; sets *out only when MESSAGE_VALID. */
__attribute__((warn_unused_result)) enum message_verdict
message_classify(const char *json, size_t len, struct message_in *out);

/* Writes the ACK text for id into out (MESSAGE_ACK_MAX bytes); returns its length. */
size_t message_ack_text(const char *id, char out[MESSAGE_ACK_MAX]);

/*
 * An outbound row made ready to send. id is the message_id to use (the row's,
 * else the payload's, else a fresh random one); payload is the text to send,
 * which is the row's payload with "message_id" inserted when it lacked one
 * (then payload_changed is 1 and the row must be updated to match).
 */
struct message_out {
    char id[MESSAGE_ID_LEN + 1];
    char *payload; /* malloc'd, NUL-terminated */
    size_t payload_len;
    int payload_changed;
    int id_changed; /* the row had no message_id */
};

/*
 * Applies the outbound rules to a row's payload and message_id (row_id may be
 * NULL). Returns 0 and fills *out (free out->payload with message_out_clear),
 * or -1 and writes why the row must fail into err (errlen bytes).
 */
__attribute__((warn_unused_result)) int message_prepare(const char *payload, size_t len,
                                                        const char *row_id, struct message_out *out,
                                                        char *err, size_t errlen);

/*
 * As message_prepare, for a message of up to max bytes (with what it adds)
 * instead of one version 1 datagram: one a version 2 peer takes in parts.
 */
__attribute__((warn_unused_result)) int message_prepare_max(const char *payload, size_t len,
                                                            const char *row_id, size_t max,
                                                            struct message_out *out, char *err,
                                                            size_t errlen);

void message_out_clear(struct message_out *out);

/*
 * Checks that a payload given to sg-send is a JSON object whose message_id,
 * if present, is valid. Returns 0, or -1 with the reason in err. When the
 * payload has a message_id it is copied to found_id (else found_id[0] = 0).
 */
__attribute__((warn_unused_result)) int message_check_payload(const char *payload, size_t len,
                                                              char found_id[MESSAGE_ID_LEN + 1],
                                                              char *err, size_t errlen);

#endif
