/*
 * peers: the peers file (securedgram-peers(5)), text -> a validated list of
 * peers. INI-like, one [peer NAME] section each, in the manner of
 * WireGuard's [Peer]:
 *
 *   [peer berlin]
 *   endpoint = 203.0.113.7:61773
 *   allowed = 203.0.113.0/24, 2001:db8::/32
 *   key = <64 hex> | key-file = PATH | key = derive
 *   previous-key = <64 hex>
 *   previous-key-until = 2027-01-31T00:00:00Z
 *   wire = 2
 *   roaming = yes
 *
 * Pure: peers_parse reads no file (a key-file is named, not read); the
 * caller reads the files. A file with any error is refused whole, with one
 * line naming the file, the line and what is wrong, so a reload that fails
 * keeps the configuration that runs. Keys are wiped by peers_free.
 */
#ifndef SG_PEERS_H
#define SG_PEERS_H

#include "util/net.h"

#include <stddef.h>
#include <stdint.h>

#define PEER_NAME_MAX 64       /* bytes of a name: [A-Za-z0-9._-] */
#define PEER_ALLOWED_MAX 64    /* networks in one peer's allowed */
#define PEER_KEY_BYTES 32      /* a pair key */
#define PEERS_MAX 4096         /* peers in one file */
#define PEERS_TEXT_MAX 1048576 /* bytes of a peers file */

enum peer_key_kind {
    PEER_KEY_HEX = 1, /* key = <64 hex>: in key */
    PEER_KEY_FILE,    /* key-file = PATH: the caller reads it into key (peers_key_text) */
    PEER_KEY_DERIVE,  /* key = derive: from the master secret and the two names */
};

struct peer_conf {
    char name[PEER_NAME_MAX + 1];
    int line; /* of its [peer] line, for messages */
    int has_endpoint;
    struct net_addr endpoint;
    struct net_prefix allowed[PEER_ALLOWED_MAX];
    int nallowed;
    enum peer_key_kind key_kind;
    uint8_t key[PEER_KEY_BYTES]; /* PEER_KEY_HEX, or PEER_KEY_FILE once read */
    char *key_file;              /* PEER_KEY_FILE: the path as written, malloc'd */
    int has_previous;
    uint8_t previous[PEER_KEY_BYTES]; /* accepted, never sent with, until previous_until */
    int64_t previous_until;           /* seconds since the epoch (UTC) */
    int wire;                         /* 1 (today's format, e.g. a Ruby peer) or 2 */
    int roaming;                      /* the endpoint follows authenticated datagrams */
};

struct peers_conf {
    struct peer_conf *peer;
    int n;
};

/*
 * Parses len bytes of text (a peers file named file, for messages) into out.
 * Returns 0, or -1 with err set to one line ("FILE line N: ...") and out
 * left empty.
 */
__attribute__((warn_unused_result)) int peers_parse(const char *text, size_t len, const char *file,
                                                    struct peers_conf *out, char *err,
                                                    size_t errlen);

/* Wipes every key and frees out (which may be empty). */
void peers_free(struct peers_conf *out);

/* The peer named name, or NULL. */
const struct peer_conf *peers_find(const struct peers_conf *pc, const char *name);

/*
 * The key in a key file's text (64 hex digits, then at most white space and a
 * newline) into key. Returns 0, or -1 with err saying what is wrong (never
 * quoting the text).
 */
__attribute__((warn_unused_result)) int
peers_key_text(const char *text, size_t len, uint8_t key[PEER_KEY_BYTES], char *err, size_t errlen);

/*
 * The rules between the file and the rest of the configuration: me (this
 * host's name, or NULL) is needed by wire 2 and derived keys and is no
 * peer's; `key = derive` needs the master secret. Returns 0, or -1 with one
 * line in err ("FILE line N: ...").
 */
__attribute__((warn_unused_result)) int peers_check(const struct peers_conf *pc, const char *file,
                                                    const char *me, int has_master, char *err,
                                                    size_t errlen);

/* 1 if a peer has `key = derive`. */
int peers_uses_master(const struct peers_conf *pc);

/* 1 if name is a valid peer name (1-64 bytes of [A-Za-z0-9._-], not starting with '.' or '-'). */
int peers_name_valid(const char *name);

#endif
