/*
 * log: where the daemon's lines go (syslog, stdout or a file), at which level,
 * and how often a flood of the same warning may be written.
 */
#ifndef SG_LOG_H
#define SG_LOG_H

#include <stdint.h>

enum log_level { LOG_LEVEL_WARN = 0, LOG_LEVEL_INFO = 1, LOG_LEVEL_DEBUG = 2 };

/*
 * Opens the sink named by target: "syslog" (facility daemon), "stdout", or a
 * file path (opened for append, mode 0640). ident names the program in syslog
 * and in file lines. Returns 0, or -1 with errno set (the previous sink stays).
 */
__attribute__((warn_unused_result)) int log_open(const char *target, const char *ident);

/*
 * Reopens a file sink whose path no longer names the open file (it was
 * rotated away); other sinks, and a file still in place, are left as they
 * are. If the new file cannot be opened (after a privilege drop the service
 * user may not create files in a root-owned directory), writing goes on to
 * the old one, with a warning that names the user, the path and why.
 */
void log_reopen(void);

/* Closes the sink; later lines go to stderr. */
void log_close(void);

/*
 * JSON lines (SECUREDGRAM_LOG_FORMAT=json) instead of text, on the file,
 * stdout and stderr sinks: one object a line, the text line's fields
 * {"time": "...Z", "program", "pid", "level", "msg"}. Syslog keeps its own.
 */
void log_set_json(int on);

void log_set_level(enum log_level level);
enum log_level log_get_level(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A limiter lets through at most LOG_LIMIT_BURST lines per second for one kind
 * of warning; what it holds back is counted and reported with the next line
 * it lets through. now_ms is CLOCK_MONOTONIC in milliseconds.
 */
#define LOG_LIMIT_BURST 3

struct log_limiter {
    int64_t window_start_ms;
    unsigned lines_in_window;
    uint64_t suppressed;
};

void log_warn_limited(struct log_limiter *lim, int64_t now_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Reports what a limiter held back once its second is over, so the end of a
 * flood is not silent; what names the kind of line. Cheap: call every turn.
 */
void log_limiter_flush(struct log_limiter *lim, int64_t now_ms, const char *what);

#endif
