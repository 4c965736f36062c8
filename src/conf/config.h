/*
 * config: .env file + environment + command-line flags -> one validated
 * struct config. Pure: no I/O here (callers read files and pass text), so it
 * is tested directly.
 *
 * Precedence at start: flag > environment > .env > default.
 * On HUP:              flag > .env > environment > default (the file is the
 *                      operator's way to change a running daemon).
 */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include "conf/peers.h"

#include <stddef.h>
#include <stdint.h>

enum config_key {
    CFG_USER,
    CFG_LOG,
    CFG_PIDFILE,
    CFG_ADDRESS,
    CFG_PORT,
    CFG_SECRET,
    CFG_WINDOW,
    CFG_MAX_RETRIES,
    CFG_RETRY_INTERVAL,
    CFG_DB,
    CFG_SECRET_FILE,        /* new: the secret read from a file (wins over SECUREDGRAM_SECRET) */
    CFG_RATE_LIMIT,         /* new: RATE[/BURST] messages per second per sender address; 0 = off */
    CFG_PEERS,              /* new: the peers file, securedgram-peers(5) */
    CFG_NAME,               /* new: this host's name, for per-peer keys */
    CFG_MASTER_SECRET_FILE, /* new: the master secret of `key = derive` */
    CFG_GIVE_UP_AFTER,      /* new: give up on a message after this long, not after max retries */
    CFG_RETRY_POLICY,       /* new: fixed, adaptive, or auto (adaptive for version 2 peers) */
    CFG_RETRY_MIN,          /* new: the adaptive timer's shortest wait */
    CFG_RETRY_MAX,          /* new: and its longest */
    CFG_MAX_MESSAGE,        /* new: the longest message sent or taken in parts */
    CFG_MTU,                /* new: the largest IP packet a part may take */
    CFG_REASSEMBLY_MEMORY,  /* new: memory for messages being put together */
    CFG_CONTROL,            /* new: the control socket's path, or none */
    CFG_METRICS,            /* new: HOST:PORT where /metrics is served (off by default) */
    CFG_LOG_FORMAT,         /* new: text or json */
    CFG_COUNT
};

/* SECUREDGRAM_RETRY_POLICY */
enum config_retry_policy {
    RETRY_AUTO,    /* adaptive for version 2 peers, fixed for version 1 (the original's) */
    RETRY_FIXED,   /* SECUREDGRAM_RETRY_INTERVAL between sendings, as the original */
    RETRY_ADAPTIVE /* from each destination's round-trip time, backing off with jitter */
};

/* Values by key as text, each malloc'd or NULL (not given). */
struct config_raw {
    char *v[CFG_COUNT];
};

struct config {
    char *user;
    char *log;     /* "syslog", "stdout", or an absolute file path */
    char *pidfile; /* absolute */
    char *address;
    char *db;          /* absolute */
    char *secret;      /* 64 hex digits */
    char *secret_file; /* absolute, or NULL */
    unsigned port;
    unsigned window; /* seconds */
    unsigned max_retries;
    unsigned retry_interval; /* seconds */
    unsigned rate_limit;     /* messages per second per sender address; 0: no limit */
    unsigned rate_burst;     /* messages a sender may send at once */
    unsigned give_up_after;  /* seconds; 0: give up after max_retries instead */
    enum config_retry_policy retry_policy;
    unsigned retry_min_ms, retry_max_ms; /* the adaptive timer's range */
    unsigned max_message;                /* bytes */
    unsigned mtu;                        /* bytes */
    unsigned long reassembly_memory;     /* bytes */
    char *peers_file;                    /* absolute, or NULL: no per-peer keys */
    char *name;                          /* this host's name, or NULL */
    char *master_secret_file;            /* absolute, or NULL */
    char *control; /* the control socket's absolute path; NULL: none (see config_control_path) */
    char *metrics; /* HOST:PORT or [HOST]:PORT for /metrics, or NULL: off */
    int log_json;  /* SECUREDGRAM_LOG_FORMAT=json */
    /* Filled by settings_load (the I/O half), not by config_resolve: */
    struct peers_conf peers; /* the peers file, its key files read; empty if none */
    int has_master;
    uint8_t master[PEER_KEY_BYTES]; /* the master secret, if has_master */
};

/* The largest value accepted for window, max retries and retry interval (no overflow past it). */
#define CONFIG_MAX_COUNT 2147483647UL

/* The longest path of a Unix socket (sun_path less its NUL). */
#define CONFIG_CONTROL_PATH_MAX 107

/*
 * The control socket beside the pid file: its name with ".pid" replaced by
 * ".sock" (securedgram.pid: securedgram.sock), or ".sock" appended
 * (malloc'd). NULL if that path is too long for a Unix socket (a drop-in
 * setup with a deep pid file must still start), or on no memory (*oom).
 */
char *config_control_default(const char *pidfile, int *oom);

/* "auto", "fixed" or "adaptive". */
const char *config_retry_policy_name(enum config_retry_policy p);

/* The variable name of a key ("SECUREDGRAM_PORT"). */
const char *config_key_name(enum config_key key);

/* The default value of a key as text, or NULL if it has none. */
const char *config_key_default(enum config_key key);

/* Finds a key by variable name; returns it or -1 if the name is not ours. */
int config_key_by_name(const char *name);

/* The same for the n bytes at name (not NUL-terminated). */
int config_key_by_span(const char *name, size_t n);

/* 1 if key's value is a number (port, count, rate): .env takes the number before a tail. */
int config_key_is_number(enum config_key key);

/*
 * Parses .env text: a UTF-8 byte-order mark at the start is skipped; blank
 * lines and lines starting with '#' are skipped; other lines are KEY=VALUE (an
 * optional leading "export " is allowed), key and value trimmed, one pair of
 * matching surrounding quotes removed from the value; a later line wins. Keys
 * that are not SECUREDGRAM_* are ignored.
 *
 * What the original accepted is accepted, with a warning where the result may
 * not be what was meant:
 *   - a line without '=' is ignored (warning);
 *   - an unknown SECUREDGRAM_* name is ignored (warning, with the nearest
 *     setting's name when there is one);
 *   - the value runs to the end of the line, as in the original; but a number
 *     setting (port, window, retries, interval, rate limit) followed by
 *     whitespace and a '#' comment or a second NAME=... takes the number only
 *     (the original read the leading number); a second setting on the line is
 *     not applied (warning), as in the original. A text value with such a tail
 *     keeps it whole (warning).
 *
 * warn (may be NULL) gets each warning as one line, "line N: ...", which never
 * holds a value (it may be the secret): at most the first word of a line is
 * shown. After CONFIG_MAX_WARNINGS of them the rest are only counted, and
 * reported at the end as one line "(N more warnings not shown)". Returns 0, or
 * -1 with "line N: why" in err (an empty name before '=', a NUL byte, a UTF-16
 * file).
 */
#define CONFIG_MAX_WARNINGS 20

__attribute__((warn_unused_result)) int
config_dotenv_parse_warn(const char *text, size_t len, struct config_raw *out,
                         void (*warn)(void *ctx, const char *line), void *ctx, char *err,
                         size_t errlen);

/*
 * SECUREDGRAM_DB's value v as the store opens it (malloc'd; NULL out of
 * memory): a PostgreSQL URI as it is; a path, or the path behind sqlite: or
 * sqlite://, made absolute against cwd.
 */
char *config_db_location(const char *v, const char *cwd);

/* config_dotenv_parse_warn without warnings. */
__attribute__((warn_unused_result)) int
config_dotenv_parse(const char *text, size_t len, struct config_raw *out, char *err, size_t errlen);

/*
 * Whether the variable name (len bytes, not NUL-terminated) looks like ours
 * but is no setting: it starts with SECUREDGRAM_ (in any case) and is not in
 * the table ("SECUREDGRAM_WINDOWS"). Returns 1 and writes into msg a warning
 * naming it (and the nearest setting: "did you mean SECUREDGRAM_WINDOW?"), or 0.
 */
int config_unknown_name(const char *name, size_t len, char *msg, size_t msglen);

/* Fills raw from the environment through get (usually getenv). */
void config_raw_from_env(struct config_raw *out, const char *(*get)(const char *name));

/* Sets one value (copied); returns 0 or -1 on allocation failure. */
__attribute__((warn_unused_result)) int config_raw_set(struct config_raw *raw, enum config_key key,
                                                       const char *value);

void config_raw_clear(struct config_raw *raw);

enum config_mode { CONFIG_AT_START, CONFIG_AT_RELOAD };

/*
 * Resolves flags, env and dotenv (any may be NULL) by the precedence of mode,
 * fills in defaults, validates every value and makes paths absolute against
 * cwd. need_secret: whether a missing secret is an error (unless there is a
 * peers file: then the secret is optional). Returns 0 and fills
 * *out (free with config_clear), or -1 with one line saying why in err.
 */
__attribute__((warn_unused_result)) int
config_resolve(const struct config_raw *flags, const struct config_raw *env,
               const struct config_raw *dotenv, enum config_mode mode, const char *cwd,
               int need_secret, struct config *out, char *err, size_t errlen);

void config_clear(struct config *cfg);

/*
 * Compares a running configuration with a reloaded one. Writes into changed
 * (a buffer of changed_len) the names of restart-only values that differ,
 * comma-separated, and returns how many; hot values are not listed.
 */
int config_restart_only_changes(const struct config *running, const struct config *next,
                                char *changed, size_t changed_len);

#endif
