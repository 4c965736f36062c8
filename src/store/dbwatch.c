#define _GNU_SOURCE
#include "store/dbwatch.h"

#include "store/store.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/inotify.h>
#endif

/* A writer descheduled between its -wal write and its commit is caught late, not missed. */
static const int settle_us[] = {100, 1000, 5000, 25000, 100000, 500000};
#define SETTLE_STEPS ((int)(sizeof settle_us / sizeof settle_us[0]))

struct dbwatch {
    struct store *st;
    int fd; /* inotify, or -1 */
    int64_t fallback_us;
    int64_t version;
    int64_t event_at; /* us */
    int settle_step;
    int64_t next_check; /* us */
};

int64_t dbwatch_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t dbwatch_now_ms(void)
{
    return dbwatch_now_us() / 1000;
}

/* Sets up the inotify watch; leaves fd at -1 if it cannot. */
static void watch_files(struct dbwatch *w, const char *db_path)
{
    w->fd = -1;
#ifdef __linux__
    char wal[4200];
    if (snprintf(wal, sizeof wal, "%s-wal", db_path) >= (int)sizeof wal)
        return;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return;
    if (inotify_add_watch(fd, wal, IN_MODIFY | IN_CLOSE_WRITE) < 0 ||
        inotify_add_watch(fd, db_path, IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
        close(fd);
        return;
    }
    w->fd = fd;
#else
    (void)db_path;
#endif
}

struct dbwatch *dbwatch_open(struct store *st, const char *db_path, int fallback_ms)
{
    struct dbwatch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->st = st;
    w->fallback_us = (int64_t)(fallback_ms > 0 ? fallback_ms : 1000) * 1000;
    w->version = store_data_version(st);
    if (w->version < 0) {
        free(w);
        return NULL;
    }
    watch_files(w, db_path);
    w->settle_step = SETTLE_STEPS;
    w->next_check = dbwatch_now_us() + w->fallback_us;
    return w;
}

int dbwatch_has_events(const struct dbwatch *w)
{
    return w->fd >= 0;
}

int dbwatch_fd(const struct dbwatch *w)
{
    return w->fd;
}

int64_t dbwatch_next_check_us(const struct dbwatch *w)
{
    return w->next_check;
}

void dbwatch_close(struct dbwatch *w)
{
    if (w == NULL)
        return;
    if (w->fd >= 0)
        close(w->fd);
    free(w);
}

/* When to check next: the next settle step after an event, else the fallback. */
static void schedule(struct dbwatch *w, int64_t now)
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

int dbwatch_check(struct dbwatch *w, int event, int64_t now_us)
{
    if (event && w->fd >= 0) {
        drain(w->fd);
        w->event_at = now_us;
        w->settle_step = 0;
    }
    int64_t v = store_data_version(w->st);
    if (v < 0)
        return -1;
    schedule(w, now_us);
    if (v == w->version)
        return 0;
    w->version = v;
    return 1;
}

enum dbwatch_rc dbwatch_wait(struct dbwatch *w, int64_t timeout_ms, int stop_fd)
{
    int64_t now = dbwatch_now_us();
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : now + timeout_ms * 1000;
    int event = 0;
    for (;;) {
        if (now >= w->next_check || event) {
            int r = dbwatch_check(w, event, now);
            if (r != 0)
                return r > 0 ? DBWATCH_CHANGED : DBWATCH_ERR;
        }
        if (now >= deadline)
            return DBWATCH_TIMEOUT;
        int64_t t = (w->next_check < deadline ? w->next_check : deadline) - now;
        struct timespec ts = {(time_t)(t / 1000000), (long)(t % 1000000) * 1000};
        struct pollfd pfd[2] = {{.fd = w->fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
        int r = ppoll(pfd, 2, &ts, NULL);
        if (r < 0 && errno != EINTR)
            return DBWATCH_ERR;
        now = dbwatch_now_us();
        if (r > 0 && (pfd[1].revents & (POLLIN | POLLHUP)))
            return DBWATCH_STOP;
        event = r > 0 && (pfd[0].revents & POLLIN);
    }
}
