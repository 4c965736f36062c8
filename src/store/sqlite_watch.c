/*
 * sqlite_watch: how the SQLite backend notices other processes' commits,
 * promptly and without hammering the database (the daemon's new rows,
 * sg-recv --follow, sg-send --wait).
 *
 * In WAL mode every commit writes the "-wal" file, so on Linux an inotify
 * watch on it (and on the database file, for checkpoints) wakes the poller;
 * PRAGMA data_version then tells whether another connection really committed.
 * The version is checked again 0.1, 1, 5, 25, 100 and 500 ms after each event
 * (a writer's last -wal write comes a moment before its commit is visible in
 * the -shm index, which raises no event; longer if the writer is descheduled),
 * and every fallback interval in any case. Where inotify is missing or the
 * watch cannot be set, the fallback check is all. Each poll also checks that
 * the database and its -wal are still the files opened.
 */
#include "store/sqlite_impl.h"

#include <stdio.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

/* A writer descheduled between its -wal write and its commit is caught late, not missed. */
static const int settle_us[] = {100, 1000, 5000, 25000, 100000, 500000};
#define SETTLE_STEPS ((int)(sizeof settle_us / sizeof settle_us[0]))

/* PRAGMA data_version: changes when another connection commits. -1 on error. */
static int64_t data_version(struct sq *b)
{
    sqlite3_stmt *s = sq_stmt(b, Q_DATA_VERSION);
    int row;
    int64_t v = -1;
    if (sq_step(b, s, &row) == STORE_OK) {
        if (row)
            v = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
    }
    return v;
}

enum store_rc sq_watch_start(struct store *st, int fallback_ms, int64_t now_us)
{
    struct sq *b = sq_of(st);
    struct sq_watch *w = &b->watch;
    int64_t v = data_version(b);
    if (v < 0)
        return STORE_ERR;
    w->version = v;
    w->fallback_us = (int64_t)fallback_ms * 1000;
    w->settle_step = SETTLE_STEPS;
    w->next_check = now_us + w->fallback_us;
    w->started = 1;
    return STORE_OK;
}

/* Sets up the inotify watch once; leaves fd at -1 if it cannot. */
int sq_watch_fd(struct store *st)
{
    struct sq *b = sq_of(st);
    struct sq_watch *w = &b->watch;
    if (w->tried)
        return w->fd;
    w->tried = 1;
#ifdef __linux__
    char wal[sizeof b->path + 8];
    snprintf(wal, sizeof wal, "%s-wal", b->path);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return -1;
    if (inotify_add_watch(fd, wal, IN_MODIFY | IN_CLOSE_WRITE) < 0 ||
        inotify_add_watch(fd, b->path, IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
        close(fd);
        return -1;
    }
    w->fd = fd;
#endif
    return w->fd;
}

int64_t sq_poll_due_us(const struct store *st)
{
    const struct sq_watch *w = &sq_const(st)->watch;
    return w->started ? w->next_check : INT64_MAX;
}

/* When to check next: the next settle step after an event, else the fallback. */
static void schedule(struct sq_watch *w, int64_t now)
{
    while (w->settle_step < SETTLE_STEPS && w->event_at + settle_us[w->settle_step] <= now)
        w->settle_step++;
    if (w->settle_step < SETTLE_STEPS)
        w->next_check = w->event_at + settle_us[w->settle_step];
    else
        w->next_check = now + w->fallback_us;
}

static void drain(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

enum store_rc sq_poll(struct store *st, int readable, int64_t now_us, int *changed)
{
    struct sq *b = sq_of(st);
    struct sq_watch *w = &b->watch;
    if (!w->started) {
        snprintf(b->why, sizeof b->why, "the database is not being watched (store_watch_start)");
        return STORE_ERR;
    }
    if (readable && w->fd >= 0) {
        drain(w->fd);
        w->event_at = now_us;
        w->settle_step = 0;
    }
    int64_t v = data_version(b);
    enum store_rc rc = v < 0 ? STORE_ERR : STORE_OK;
    if (v >= 0) {
        schedule(w, now_us);
        if (v != w->version) {
            w->version = v;
            *changed = 1;
        }
    }
    if (sq_file_replaced(b))
        rc = STORE_GONE;
    return rc;
}

void sq_watch_close(struct sq *b)
{
    if (b->watch.fd >= 0)
        close(b->watch.fd);
    b->watch.fd = -1;
}
