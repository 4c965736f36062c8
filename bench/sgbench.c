/*
 * sgbench: the measuring side of `make bench`. It plays the program that
 * queues messages: it inserts rows into a daemon's database and waits for
 * them to be acknowledged, woken by inotify on the database's -wal file (the
 * daemon's commits), so that waiting costs the daemons no CPU.
 *
 *   sgbench throughput DB DST_PORT N    insert N rows in one transaction, wait
 *                                       until all are acknowledged; print JSON
 *                                       (timed from the insert's commit)
 *   sgbench latency DB DST_PORT N       N times: insert one row, wait until it is
 *                                       acknowledged; print p50/p99 in JSON
 *   sgbench backlog DB DST_PORT N       insert N pending rows (for the memory test)
 *   sgbench check DB_A DB_B N           exit 1 unless A has N acknowledged rows
 *                                       and B stored exactly those N, once each
 *   sgbench wake SOCK DB DST_PORT N     subscribe to the control socket SOCK (B's)
 *                                       as sg-recv --follow does; N times insert a
 *                                       row into DB (A's) to B and read B's events:
 *                                       each one's commit -> wake, its arrival less
 *                                       the committed_ns it carries (us, JSON)
 *
 * For bench/lossy.sh (rows to ADDR, a relay's address; SECS bounds each wait):
 *   sgbench rows DB ADDR PORT N RATE SECS   insert N rows, in one transaction if RATE
 *                                       is 0, else one by one, RATE a second; wait
 *                                       until none is open; print JSON: the time
 *                                       from the (first) commit, and percentiles of
 *                                       each row's own stamps, ack_received_at -
 *                                       created_at (ms, both written to the ms)
 *   sgbench big DB ADDR PORT BYTES SECS  insert one row, a JSON object of BYTES
 *                                       bytes; wait until it is acknowledged or
 *                                       send_failed; print JSON (its state, time,
 *                                       retry_count, last_error)
 */
#define _GNU_SOURCE
#include "tools/ctlclient.h"
#include "util/clock.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

static double now_s(void)
{
    return (double)clock_mono_us() / 1e6;
}

static sqlite3 *open_db(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "sgbench: cannot open %s\n", path);
        exit(2);
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    return db;
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        fprintf(stderr, "sgbench: %s: %s\n", sql, sqlite3_errmsg(db));
        exit(2);
    }
    return s;
}

static long long scalar(sqlite3_stmt *s)
{
    long long v = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return v;
}

static void insert_rows(sqlite3 *db, const char *addr, int port, long n, const char *state)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < %ld) "
             "INSERT INTO outbound_messages (dst_addr, dst_port, payload, state) "
             "SELECT '%s', %d, '{\"content\":\"hello ' || i || "
             "' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}', '%s' FROM k",
             n, addr, port, state);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sgbench: insert: %s\n", err);
        exit(2);
    }
}

/* Waits for a -wal event or at most us microseconds; then the caller re-checks. */
static void wait_change(int ino, long us)
{
    struct pollfd p = {.fd = ino, .events = POLLIN};
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    if (ppoll(&p, 1, &ts, NULL) > 0) {
        char buf[4096];
        while (read(ino, buf, sizeof buf) > 0)
            ;
    }
}

static int watch(const char *db)
{
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", db);
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0 || inotify_add_watch(fd, wal, IN_MODIFY) < 0) {
        fprintf(stderr, "sgbench: cannot watch %s: %s\n", wal, strerror(errno));
        exit(2);
    }
    return fd;
}

static int cmd_throughput(const char *path, int port, long n)
{
    sqlite3 *db = open_db(path);
    int ino = watch(path);
    /* Three point look-ups in the state index: the daemon's pace is measured, not this
     * loop's (a count of acknowledged rows walks them all, on the same two cores). */
    sqlite3_stmt *open_rows = prep(db, "SELECT EXISTS (SELECT 1 FROM outbound_messages "
                                       "WHERE state IN ('pending', 'sending', 'sent'))");
    sqlite3_stmt *count =
        prep(db, "SELECT count(*) FROM outbound_messages WHERE state = 'acknowledged'");
    long long base = scalar(count);
    double t0 = now_s();
    insert_rows(db, "127.0.0.1", port, n, "pending");
    double t_insert = now_s();
    while (scalar(open_rows) != 0) {
        if (now_s() - t0 > 120) {
            fprintf(stderr, "sgbench: timed out with %lld of %ld acknowledged\n",
                    scalar(count) - base, n);
            return 1;
        }
        wait_change(ino, 5000);
    }
    double t1 = now_s();
    long long acked = scalar(count) - base;
    if (acked != n) {
        fprintf(stderr, "sgbench: %lld of %ld acknowledged; the rest failed\n", acked, n);
        return 1;
    }
    /* Timed from the commit of the rows, as bench-limit's 5a creates its rows untimed. */
    printf("{\"n\":%ld,\"seconds\":%.4f,\"msg_per_s\":%.0f,\"insert_seconds\":%.4f}\n", n,
           t1 - t_insert, (double)n / (t1 - t_insert), t_insert - t0);
    sqlite3_finalize(open_rows);
    sqlite3_finalize(count);
    sqlite3_close(db);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_latency(const char *path, int port, int n)
{
    sqlite3 *db = open_db(path);
    int ino = watch(path);
    sqlite3_stmt *ins = prep(db, "INSERT INTO outbound_messages (dst_addr, dst_port, payload) "
                                 "VALUES ('127.0.0.1', ?1, '{\"content\":\"latency probe\"}')");
    sqlite3_stmt *st =
        prep(db, "SELECT state = 'acknowledged' FROM outbound_messages WHERE id = ?1");
    double *ms = calloc((size_t)n, sizeof *ms);
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        sqlite3_bind_int(ins, 1, port);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "sgbench: insert: %s\n", sqlite3_errmsg(db));
            return 2;
        }
        sqlite3_reset(ins);
        sqlite3_bind_int64(st, 1, sqlite3_last_insert_rowid(db));
        while (scalar(st) != 1) {
            if (now_s() - t0 > 10) {
                fprintf(stderr, "sgbench: message %d not acknowledged in 10 s\n", i);
                return 1;
            }
            /* A commit becomes visible a moment after its -wal write: re-check soon. */
            wait_change(ino, 100);
        }
        ms[i] = (now_s() - t0) * 1000;
        usleep(2000); /* one message at a time on an idle pair */
    }
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    printf("{\"n\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n", n, ms[n / 2],
           ms[(n * 99) / 100], ms[n - 1]);
    free(ms);
    sqlite3_finalize(ins);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return 0;
}

static int cmd_wake(const char *sock, const char *path, int port, int n)
{
    char err[256], *buf = NULL;
    size_t len = 0, cap = 0;
    int fd = ctlclient_connect(sock, err, sizeof err);
    if (fd < 0 || write(fd, "{\"op\":\"subscribe\"}\n", 19) != 19) {
        fprintf(stderr, "sgbench: wake: %s\n", fd < 0 ? err : strerror(errno));
        return 2;
    }
    json_decref(
        ctlclient_read(fd, clock_mono_ms() + 5000, 4096, &buf, &len, &cap, err, sizeof err));
    sqlite3 *db = open_db(path);
    sqlite3_stmt *ins = prep(db, "INSERT INTO outbound_messages (dst_addr, dst_port, payload) "
                                 "VALUES ('127.0.0.1', ?1, '{\"content\":\"wake probe\"}')");
    double *us = calloc((size_t)n * 4, sizeof *us); /* a message makes up to two commits on B */
    int got = 0;
    for (int i = 0; i < n && us != NULL; i++) {
        sqlite3_bind_int(ins, 1, port);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            fprintf(stderr, "sgbench: insert: %s\n", sqlite3_errmsg(db));
            return 2;
        }
        sqlite3_reset(ins);
        /* B's events until one comes late (the message's commits are over), 5 s at most */
        for (int64_t end = clock_mono_ms() + 5000, k = 0; got < n * 4; k++) {
            json_t *ev = ctlclient_read(fd, k == 0 ? end : clock_mono_ms() + 20, 4096, &buf, &len,
                                        &cap, err, sizeof err);
            if (ev == NULL && k == 0) {
                fprintf(stderr, "sgbench: wake: no event for message %d: %s\n", i, err);
                return 1;
            }
            if (ev == NULL)
                break;
            double committed = json_number_value(json_object_get(ev, "committed_ns"));
            us[got++] = ((double)clock_real_ns() - committed) / 1000;
            json_decref(ev);
        }
    }
    qsort(us, (size_t)got, sizeof *us, cmp_double);
    printf("{\"n\":%d,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}\n", got,
           got ? us[got / 2] : 0, got ? us[(got * 99) / 100] : 0, got ? us[got - 1] : 0);
    free(us);
    free(buf);
    close(fd);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return 0;
}

/* v[i] as JSON: a number, or null for a row that was not acknowledged (INFINITY). */
static void print_ms(const char *name, const double *v, long n, long i)
{
    if (n > 0 && i < n && !isinf(v[i]))
        printf(",\"%s\":%.1f", name, v[i]);
    else
        printf(",\"%s\":null", name);
}

/* Waits until no row after base is open, or until t0 + secs; 0 if none is open. */
static int wait_closed(sqlite3 *db, int ino, long long base, double t0, double secs)
{
    sqlite3_stmt *open_rows = prep(db, "SELECT EXISTS (SELECT 1 FROM outbound_messages WHERE "
                                       "state IN ('pending', 'sending', 'sent') AND id > ?1)");
    sqlite3_bind_int64(open_rows, 1, base);
    int rc = 0;
    while (scalar(open_rows) != 0) {
        if (now_s() - t0 > secs) {
            rc = 1;
            break;
        }
        wait_change(ino, 5000);
    }
    sqlite3_finalize(open_rows);
    return rc;
}

static int cmd_rows(const char *path, const char *addr, int port, long n, double rate, double secs)
{
    sqlite3 *db = open_db(path);
    int ino = watch(path);
    sqlite3_stmt *last = prep(db, "SELECT coalesce(max(id), 0) FROM outbound_messages");
    long long base = scalar(last);
    double t0;
    if (rate <= 0) {
        insert_rows(db, addr, port, n, "pending");
        t0 = now_s();
    } else {
        sqlite3_stmt *ins = prep(db, "INSERT INTO outbound_messages (dst_addr, dst_port, payload) "
                                     "VALUES (?1, ?2, '{\"content\":\"paced ' || ?3 || "
                                     "' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}')");
        t0 = now_s();
        for (long i = 0; i < n; i++) {
            double due = t0 + (double)i / rate, wait = due - now_s();
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
            sqlite3_bind_text(ins, 1, addr, -1, SQLITE_STATIC);
            sqlite3_bind_int(ins, 2, port);
            sqlite3_bind_int64(ins, 3, i);
            if (sqlite3_step(ins) != SQLITE_DONE) {
                fprintf(stderr, "sgbench: insert: %s\n", sqlite3_errmsg(db));
                return 2;
            }
            sqlite3_reset(ins);
        }
        sqlite3_finalize(ins);
    }
    int timed_out = wait_closed(db, ino, base, t0, secs);
    double t1 = now_s();
    /* Each row's own stamps: the daemon's ack_received_at minus the insert's created_at. */
    sqlite3_stmt *lat = prep(db, "SELECT CASE WHEN state = 'acknowledged' THEN (julianday("
                                 "ack_received_at) - julianday(created_at)) * 86400000.0 END, "
                                 "state, retry_count FROM outbound_messages WHERE id > ?1");
    sqlite3_bind_int64(lat, 1, base);
    double *ms = calloc((size_t)n + 1, sizeof *ms);
    long got = 0, acked = 0, failed = 0, open = 0;
    long long retx = 0;
    while (sqlite3_step(lat) == SQLITE_ROW && got < n) {
        const char *st = (const char *)sqlite3_column_text(lat, 1);
        int ok = st && strcmp(st, "acknowledged") == 0;
        ms[got++] = ok ? sqlite3_column_double(lat, 0) : INFINITY;
        acked += ok;
        failed += st && strcmp(st, "send_failed") == 0;
        retx += sqlite3_column_int64(lat, 2);
    }
    sqlite3_finalize(lat);
    for (; got < n; got++)
        ms[got] = INFINITY; /* a row that is missing counts as never acknowledged */
    open = n - acked - failed;
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    printf("{\"n\":%ld,\"rate\":%.0f,\"acked\":%ld,\"failed\":%ld,\"open\":%ld,\"timed_out\":%s,"
           "\"seconds\":%.3f,\"msg_per_s\":%.0f,\"retransmissions\":%lld",
           n, rate, acked, failed, open, timed_out ? "true" : "false", t1 - t0,
           (double)acked / (t1 - t0), retx);
    print_ms("p50_ms", ms, n, n / 2);
    print_ms("p99_ms", ms, n, (n * 99) / 100);
    print_ms("max_ms", ms, n, n - 1);
    printf("}\n");
    free(ms);
    sqlite3_finalize(last);
    sqlite3_close(db);
    return 0;
}

static int cmd_big(const char *path, const char *addr, int port, long bytes, double secs)
{
    const char head[] = "{\"blob\":\"", tail[] = "\"}";
    long fill = bytes - (long)(sizeof head - 1) - (long)(sizeof tail - 1);
    if (fill < 0) {
        fprintf(stderr, "sgbench: big: %ld bytes is too small\n", bytes);
        return 2;
    }
    char *payload = malloc((size_t)bytes + 1);
    if (!payload)
        return 2;
    memcpy(payload, head, sizeof head - 1);
    memset(payload + sizeof head - 1, 'x', (size_t)fill);
    memcpy(payload + sizeof head - 1 + fill, tail, sizeof tail);
    sqlite3 *db = open_db(path);
    int ino = watch(path);
    sqlite3_stmt *ins = prep(db, "INSERT INTO outbound_messages (dst_addr, dst_port, payload) "
                                 "VALUES (?1, ?2, ?3)");
    sqlite3_bind_text(ins, 1, addr, -1, SQLITE_STATIC);
    sqlite3_bind_int(ins, 2, port);
    sqlite3_bind_text(ins, 3, payload, (int)bytes, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) {
        fprintf(stderr, "sgbench: insert: %s\n", sqlite3_errmsg(db));
        return 2;
    }
    double t0 = now_s();
    long long id = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(ins);
    sqlite3_stmt *st = prep(db, "SELECT state IN ('acknowledged', 'send_failed') "
                                "FROM outbound_messages WHERE id = ?1");
    sqlite3_bind_int64(st, 1, id);
    int timed_out = 0;
    while (scalar(st) != 1) {
        if (now_s() - t0 > secs) {
            timed_out = 1;
            break;
        }
        wait_change(ino, 20000);
    }
    double t1 = now_s();
    sqlite3_finalize(st);
    sqlite3_stmt *out =
        prep(db, "SELECT json_object('bytes', length(CAST(payload AS BLOB)), 'state', state, "
                 "'timed_out', json(?2), 'seconds', round(?3, 4), 'stamp_ms', CASE WHEN state = "
                 "'acknowledged' THEN round((julianday(ack_received_at) - julianday(created_at)) "
                 "* 86400000.0, 1) END, 'retry_count', retry_count, 'last_error', last_error) "
                 "FROM outbound_messages WHERE id = ?1");
    sqlite3_bind_int64(out, 1, id);
    sqlite3_bind_text(out, 2, timed_out ? "true" : "false", -1, SQLITE_STATIC);
    sqlite3_bind_double(out, 3, t1 - t0);
    if (sqlite3_step(out) == SQLITE_ROW)
        printf("%s\n", (const char *)sqlite3_column_text(out, 0));
    sqlite3_finalize(out);
    sqlite3_close(db);
    free(payload);
    return 0;
}

static int cmd_check(const char *a_path, const char *b_path, long n)
{
    sqlite3 *a = open_db(a_path);
    char sql[256];
    snprintf(sql, sizeof sql, "ATTACH '%s' AS b", b_path);
    if (sqlite3_exec(a, sql, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "sgbench: cannot attach %s\n", b_path);
        return 2;
    }
    const char *checks[][2] = {
        {"SELECT count(*) FROM main.outbound_messages WHERE state = 'acknowledged'",
         "acknowledged on A"},
        {"SELECT count(*) FROM main.outbound_messages", "rows on A"},
        {"SELECT count(*) FROM b.inbound_messages", "rows stored on B"},
        {"SELECT count(DISTINCT message_id) FROM b.inbound_messages", "distinct messages on B"},
        {"SELECT count(*) FROM b.inbound_messages i JOIN main.outbound_messages o "
         "USING (message_id)",
         "B's rows that A sent"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        sqlite3_stmt *s = prep(a, checks[i][0]);
        long long v = scalar(s);
        sqlite3_finalize(s);
        if (v != n) {
            fprintf(stderr, "sgbench: %s: %lld, expected %ld\n", checks[i][1], v, n);
            bad = 1;
        }
    }
    sqlite3_close(a);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "throughput") == 0)
        return cmd_throughput(argv[2], atoi(argv[3]), atol(argv[4]));
    if (argc == 5 && strcmp(argv[1], "latency") == 0)
        return cmd_latency(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "backlog") == 0) {
        sqlite3 *db = open_db(argv[2]);
        insert_rows(db, "127.0.0.1", atoi(argv[3]), atol(argv[4]), "pending");
        sqlite3_close(db);
        return 0;
    }
    if (argc == 6 && strcmp(argv[1], "wake") == 0)
        return cmd_wake(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (argc == 5 && strcmp(argv[1], "check") == 0)
        return cmd_check(argv[2], argv[3], atol(argv[4]));
    if (argc == 8 && strcmp(argv[1], "rows") == 0)
        return cmd_rows(argv[2], argv[3], atoi(argv[4]), atol(argv[5]), atof(argv[6]),
                        atof(argv[7]));
    if (argc == 7 && strcmp(argv[1], "big") == 0)
        return cmd_big(argv[2], argv[3], atoi(argv[4]), atol(argv[5]), atof(argv[6]));
    fprintf(stderr, "usage: sgbench throughput|latency|backlog DB PORT N | check DB_A DB_B N\n"
                    "       sgbench rows DB ADDR PORT N RATE SECS | big DB ADDR PORT BYTES SECS\n");
    return 2;
}
