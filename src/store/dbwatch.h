/*
 * dbwatch: waiting for another process to commit to the database, promptly
 * and without hammering it (sg-recv --follow, sg-send --wait).
 *
 * In WAL mode every commit writes the "-wal" file, so on Linux an inotify
 * watch on it (and on the database file, for checkpoints) wakes the waiter;
 * PRAGMA data_version then tells whether another connection really committed.
 * The version is checked again 0.1, 1, 5, 25, 100 and 500 ms after each event
 * (a writer's last -wal write comes a moment before its commit is visible in
 * the -shm index, which raises no event; longer if the writer is descheduled),
 * and every fallback_ms in any case. Where inotify is missing or the watch
 * cannot be set, the fallback check is all.
 *
 * Two ways to use it: dbwatch_wait blocks (the tools); or a poll loop of its
 * own polls dbwatch_fd until dbwatch_next_check_us and calls dbwatch_check
 * (the daemon).
 */
#ifndef SG_DBWATCH_H
#define SG_DBWATCH_H

#include <stdint.h>

struct store;
struct dbwatch;

enum dbwatch_rc {
    DBWATCH_CHANGED, /* another connection committed since the last report */
    DBWATCH_TIMEOUT, /* timeout_ms passed first */
    DBWATCH_STOP,    /* stop_fd became readable */
    DBWATCH_ERR,     /* the version could not be read, or poll failed */
};

/*
 * Starts watching the database at db_path, open as st (which must outlive
 * the watch), from its current data_version. Returns NULL only when out of
 * memory or the version cannot be read.
 */
__attribute__((warn_unused_result)) struct dbwatch *
dbwatch_open(struct store *st, const char *db_path, int fallback_ms);

/* 1 if inotify wakes this watch, 0 if it only checks every fallback_ms. */
int dbwatch_has_events(const struct dbwatch *w);

/* The descriptor to poll for readability (-1 when there are no events). */
int dbwatch_fd(const struct dbwatch *w);

/* When the data version should next be checked (CLOCK_MONOTONIC, microseconds). */
int64_t dbwatch_next_check_us(const struct dbwatch *w);

/*
 * Called when dbwatch_fd was readable (event = 1: it is drained and the
 * re-checks start), or when dbwatch_next_check_us has come. Returns 1 if
 * another connection committed since the last report, 0 if not, -1 if the
 * version cannot be read.
 */
int dbwatch_check(struct dbwatch *w, int event, int64_t now_us);

/*
 * Waits until another connection has committed (since dbwatch_open or the
 * last DBWATCH_CHANGED), until timeout_ms passes (-1: no limit), or until
 * stop_fd (-1: none) is readable.
 */
enum dbwatch_rc dbwatch_wait(struct dbwatch *w, int64_t timeout_ms, int stop_fd);

void dbwatch_close(struct dbwatch *w);

/* CLOCK_MONOTONIC in milliseconds and in microseconds. */
int64_t dbwatch_now_ms(void);
int64_t dbwatch_now_us(void);

#endif
