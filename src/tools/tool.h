/*
 * tool: what the three tools (sg-send, sg-recv, sg-clean) share: the one-line
 * error, the way they find and open the database, option error messages and
 * reading a whole input.
 */
#ifndef SG_TOOL_H
#define SG_TOOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct store;

/* Writes "ERROR: <message>" and a newline to stderr; returns 1 (the exit status). */
int tool_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Reports a getopt_long failure: c is what getopt returned (':' for a missing
 * value, '?' for an unknown option), with optind and optopt as it left them.
 * Returns 1.
 */
int tool_bad_option(const char *prog, int c, char **argv, int optind_now, int optopt_now);

/* The getopt_long value of --db in every tool. */
#define TOOL_OPT_DB 0x7f00

/*
 * The options the three tools share, for the default branch of their option
 * switch: --db (kept in *db; returns 0: go on), -V and -h (printed; returns
 * -1: exit 0), anything else (reported; returns 1).
 */
int tool_common_option(const char *prog, const char *usage, int c, char **argv, const char **db);

/*
 * Opens the tools' database: db_flag (may be NULL), else SECUREDGRAM_DB from
 * the environment or ./.env, else securedgram.db. It must exist and be a
 * securedgram database: no tool creates one, nor makes tables in (or changes
 * the journal mode of) an empty file or someone else's database. Returns the
 * store, or NULL after printing the error: for a missing database the
 * original's "ERROR: Database not found at PATH" and a hint line; for a
 * locked one STORE_BUSY_TEXT; for a file that is not ours, "ERROR: PATH is
 * not a securedgram database (no table outbound_messages)", the file left as
 * it was.
 */
struct store *tool_open(const char *db_flag);

enum tool_wait {
    TOOL_CHANGED, /* another connection committed since the last report */
    TOOL_TIMEOUT, /* timeout_ms passed first */
    TOOL_STOPPED, /* stop_fd became readable */
    TOOL_WAIT_ERR /* the database could not be checked (store_errmsg), or poll failed */
};

/*
 * Subscribes to the commits of the daemon that runs on the database db_flag
 * names (its control socket, as settings_control_path finds it). Returns
 * the connection for tool_wait, or -1: no daemon there, or it runs on
 * another database (then the database watch alone wakes the tool).
 */
int tool_subscribe(const char *db_flag);

/*
 * Waits until another connection has committed (since store_watch_start on
 * clock_mono_us's clock, or the last TOOL_CHANGED), until timeout_ms passes
 * (-1: no limit), or until stop_fd (-1: none) is readable. With *ctl_fd a
 * subscription (tool_subscribe; ctl_fd may be NULL), the daemon's event
 * wakes it at its commit; if the daemon goes away *ctl_fd is closed and
 * set to -1, and the watch goes on alone.
 */
enum tool_wait tool_wait(struct store *st, int64_t timeout_ms, int stop_fd, int *ctl_fd);

/*
 * Checks the NAME of a --peer NAME option: a peer name as the peers file
 * has them (conf/peers.h). Returns 0, or 1 after printing why.
 */
int tool_check_peer(const char *name);

/*
 * Reads all of f into a malloc'd, NUL-terminated buffer, refusing more than
 * max bytes. Returns 0 and sets *buf and *len, or -1 with the reason in err.
 */
__attribute__((warn_unused_result)) int tool_read_all(FILE *f, size_t max, char **buf, size_t *len,
                                                      char *err, size_t errlen);

/*
 * A JSON string of the n bytes at s for the tools' JSON output (jansson), any
 * byte that is not UTF-8 replaced by U+FFFD, as sg-recv shows text columns:
 * jansson refuses invalid UTF-8, and a database may hold anything. NULL when
 * out of memory. The caller owns the reference.
 */
json_t *tool_json_text(const char *s, size_t n);

/*
 * Prints v (consumed) as indented JSON and a newline to stdout, the tools'
 * layout. Returns 0, or 1 after printing why (what says what was done already).
 */
int tool_print_json(json_t *v, const char *what);

#endif
