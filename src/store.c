/*
 * store: the daemon's SQL. Statements are prepared once and cached by index;
 * each function binds, steps and resets one of them.
 */
#define _GNU_SOURCE
#include "store.h"

#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "schema.h" /* generated from data/schema.sql: static const char schema_sql[] */

enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_DATA_VERSION,
    S_PENDING,
    S_LOAD_SENT,
    S_SENDING,
    S_SENT,
    S_FAILED,
    S_ACKED,
    S_GET_SENT,
    S_IN_INSERT,
    S_IN_ACK_SENT,
    S_IN_ACK_FAILED,
    S_IN_UNACKED,
    S_RECOVER,
    S_PENDING_EXCLUDING, /* + n - 1 for n excluded destinations, n = 1 .. STORE_MAX_EXCLUDE */
    S_COUNT_DAEMON = S_PENDING_EXCLUDING + STORE_MAX_EXCLUDE
};

static const char *const sql[S_PENDING_EXCLUDING] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_DATA_VERSION] = "PRAGMA data_version",
    [S_PENDING] = "SELECT id, message_id, dst_addr, dst_port, payload, retry_count "
                  "FROM outbound_messages WHERE state = 'pending' ORDER BY id LIMIT ?1",
    [S_LOAD_SENT] = "SELECT id, message_id, dst_addr, dst_port, '', retry_count, "
                    "CAST((julianday('now') - julianday(sent_at)) * 86400000 AS INTEGER) "
                    "FROM outbound_messages WHERE state = 'sent' AND id > ?1 "
                    "ORDER BY id LIMIT ?2",
    [S_SENDING] = "UPDATE outbound_messages SET state = 'sending', message_id = ?2, "
                  "payload = COALESCE(?3, payload), updated_at = " STORE_NOW
                  " WHERE id = ?1 AND state = 'pending'",
    [S_SENT] = "UPDATE outbound_messages SET state = 'sent', retry_count = ?2, sent_at = " STORE_NOW
               ", last_error = COALESCE(?3, last_error), updated_at = " STORE_NOW
               " WHERE id = ?1 AND state IN ('sending', 'sent')",
    [S_FAILED] = "UPDATE outbound_messages SET state = 'send_failed', retry_count = ?2, "
                 "last_error = ?3, updated_at = " STORE_NOW
                 " WHERE id = ?1 AND state IN ('pending', 'sending', 'sent')",
    [S_ACKED] =
        "UPDATE outbound_messages SET state = 'acknowledged', ack_received_at = " STORE_NOW
        ", updated_at = " STORE_NOW " WHERE message_id = ?1 AND state IN ('sent', 'sending')",
    [S_GET_SENT] = "SELECT id, message_id, dst_addr, dst_port, payload, retry_count "
                   "FROM outbound_messages WHERE id = ?1 AND state = 'sent'",
    [S_IN_INSERT] = "INSERT OR IGNORE INTO inbound_messages "
                    "(message_id, src_addr, src_port, payload, crypto_timestamp) "
                    "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_IN_ACK_SENT] = "UPDATE inbound_messages SET state = 'ack_sent', ack_sent = 1, "
                      "ack_sent_at = " STORE_NOW ", updated_at = " STORE_NOW
                      " WHERE message_id = ?1 AND state = 'received'",
    [S_IN_ACK_FAILED] = "UPDATE inbound_messages SET state = 'ack_failed', updated_at = " STORE_NOW
                        " WHERE message_id = ?1 AND state = 'received'",
    [S_IN_UNACKED] = "SELECT id, message_id, src_addr, src_port FROM inbound_messages "
                     "WHERE state = 'received' AND id > ?1 ORDER BY id LIMIT ?2",
    [S_RECOVER] = "UPDATE outbound_messages SET state = 'pending', updated_at = " STORE_NOW
                  " WHERE state = 'sending'",
};

sqlite3_stmt *store_stmt(struct store *st, int idx, const char *text)
{
    sqlite3_stmt *s = st->stmt[idx];
    if (s == NULL) {
        if (sqlite3_prepare_v3(st->db, text, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
            return NULL;
        st->stmt[idx] = s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

static sqlite3_stmt *stmt(struct store *st, int idx)
{
    return store_stmt(st, idx, sql[idx]);
}

enum store_rc store_rc_of(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    case SQLITE_CONSTRAINT:
        return STORE_DUP;
    default:
        return STORE_ERR;
    }
}

/* Steps a statement that returns no rows, then resets it. */
static enum store_rc run(sqlite3_stmt *s)
{
    if (s == NULL)
        return STORE_ERR;
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? STORE_OK : store_rc_of(rc) == STORE_OK ? STORE_ERR : store_rc_of(rc);
}

static int has_column(sqlite3 *db, const char *table, const char *column)
{
    char q[128];
    snprintf(q, sizeof q, "PRAGMA table_info(%s)", table);
    sqlite3_stmt *s = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(db, q, -1, &s, NULL) != SQLITE_OK)
        return -1;
    while (sqlite3_step(s) == SQLITE_ROW)
        if (strcmp((const char *)sqlite3_column_text(s, 1), column) == 0)
            found = 1;
    sqlite3_finalize(s);
    return found;
}

/* Creates tables and indexes if missing and adds read_count to an old inbound table. */
static int ensure_schema(sqlite3 *db, char *err, size_t errlen)
{
    if (sqlite3_exec(db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (has_column(db, "inbound_messages", "read_count") == 0 &&
        sqlite3_exec(db,
                     "ALTER TABLE inbound_messages ADD COLUMN read_count INTEGER NOT NULL "
                     "DEFAULT 0",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot set up the tables: %s", sqlite3_errmsg(db));
    return -1;
}

/* Stops a statement once its time budget (a deadline in CLOCK_MONOTONIC ms) has passed. */
static int past_deadline(void *arg)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 > *(int64_t *)arg;
}

/*
 * PRAGMA quick_check within budget_ms: refuses a corrupt database at start
 * rather than failing on some later write. A database too large to check in
 * the budget is used unchecked (returns 1). Returns 0 if sound, -1 if not.
 */
static int quick_check(sqlite3 *db, const char *path, int budget_ms, char *err, size_t errlen)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + budget_ms;
    sqlite3_stmt *s = NULL;
    int rc = 0;
    sqlite3_progress_handler(db, 10000, past_deadline, &deadline);
    int step = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &s, NULL) == SQLITE_OK
                   ? sqlite3_step(s)
                   : SQLITE_ERROR;
    if (step == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(s, 0);
        if (r == NULL || strcmp(r, "ok") != 0) {
            char why[200];
            snprintf(why, sizeof why, "%s", r != NULL ? r : "?");
            for (char *c = why; *c != '\0'; c++)
                if ((unsigned char)*c < 0x20)
                    *c = ' '; /* quick_check reports over several lines */
            const char *w = strncmp(why, "*** in database main *** ", 25) == 0 ? why + 25 : why;
            snprintf(err, errlen, "database %s is damaged (%s); move it aside or restore a backup",
                     path, w);
            rc = -1;
        }
    } else {
        rc = sqlite3_errcode(db) == SQLITE_INTERRUPT ? 1 : -1;
    }
    if (rc == -1 && err[0] == '\0')
        snprintf(err, errlen, "database %s is damaged (%s); move it aside or restore a backup",
                 path, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    sqlite3_progress_handler(db, 0, NULL, NULL);
    return rc < 0 ? -1 : rc;
}

/* Makes sure a new database file starts as mode 0600 (SQLite gives -wal/-shm the same mode). */
static int precreate(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open database %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

struct store *store_open(const char *path, enum store_open_mode mode, int busy_ms, char *err,
                         size_t errlen)
{
    struct stat sb;
    if (mode == STORE_EXISTING && stat(path, &sb) != 0) {
        if (errno == ENOENT)
            snprintf(err, errlen, "database not found: %s", path);
        else
            snprintf(err, errlen, "cannot open database %s: %s", path, strerror(errno));
        return NULL;
    }
    if (mode == STORE_CREATE && stat(path, &sb) != 0 && precreate(path, err, errlen) != 0)
        return NULL;
    struct store *st = calloc(1, sizeof *st);
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, busy_ms);
    sqlite3_stmt *s = NULL;
    const char *jm = NULL;
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW || (jm = (const char *)sqlite3_column_text(s, 0)) == NULL ||
        strcmp(jm, "wal") != 0) {
        snprintf(err, errlen, "cannot use database %s: %s", path,
                 jm != NULL ? "it cannot be switched to WAL mode" : sqlite3_errmsg(st->db));
        sqlite3_finalize(s);
        goto fail;
    }
    sqlite3_finalize(s);
    if (sqlite3_exec(st->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (sqlite3_db_readonly(st->db, "main") == 1) {
        snprintf(err, errlen, "cannot use database %s: it is read-only for this user", path);
        goto fail;
    }
    err[0] = '\0';
    if (mode == STORE_CREATE && quick_check(st->db, path, STORE_CHECK_BUDGET_MS, err, errlen) < 0)
        goto fail;
    if (ensure_schema(st->db, err, errlen) != 0)
        goto fail;
    if (stat(path, &sb) == 0) {
        st->dev = sb.st_dev;
        st->ino = sb.st_ino;
    }
    snprintf(st->path, sizeof st->path, "%s", path);
    return st;
fail:
    store_close(st);
    return NULL;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < STORE_MAX_STMTS; i++)
        sqlite3_finalize(st->stmt[i]);
    sqlite3_close(st->db);
    free(st);
}

const char *store_errmsg(const struct store *st)
{
    return st->failed_commit[0] != '\0' ? st->failed_commit : sqlite3_errmsg(st->db);
}

enum store_rc store_begin(struct store *st)
{
    st->failed_commit[0] = '\0';
    return run(stmt(st, S_BEGIN));
}

enum store_rc store_commit(struct store *st)
{
    enum store_rc rc = run(stmt(st, S_COMMIT));
    if (rc != STORE_OK) {
        /* keep COMMIT's reason: the ROLLBACK below replaces SQLite's message */
        snprintf(st->failed_commit, sizeof st->failed_commit, "%s", sqlite3_errmsg(st->db));
        store_rollback(st);
    }
    return rc;
}

void store_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        (void)run(stmt(st, S_ROLLBACK));
}

int store_file_replaced(const struct store *st)
{
    struct stat sb;
    if (stat(st->path, &sb) != 0)
        return errno == ENOENT || errno == ENOTDIR;
    return sb.st_dev != st->dev || sb.st_ino != st->ino;
}

int store_in_tx(const struct store *st)
{
    return !sqlite3_get_autocommit(st->db);
}

int64_t store_data_version(struct store *st)
{
    sqlite3_stmt *s = stmt(st, S_DATA_VERSION);
    int64_t v = -1;
    if (s != NULL && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    if (s != NULL)
        sqlite3_reset(s);
    return v;
}

int store_recover_sending(struct store *st)
{
    if (run(stmt(st, S_RECOVER)) != STORE_OK)
        return -1;
    return sqlite3_changes(st->db);
}

static const char *text_or(sqlite3_stmt *s, int col, const char *dflt)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    return t != NULL ? t : dflt;
}

/* Steps s, calling fn for each outbound row; returns the row count or -1. */
static int each_outbound(sqlite3_stmt *s, int with_age, store_outbound_fn fn, void *ctx)
{
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_outbound_row r = {0};
        r.rowid = sqlite3_column_int64(s, 0);
        r.message_id = (const char *)sqlite3_column_text(s, 1);
        r.dst_addr = text_or(s, 2, "");
        r.dst_port = sqlite3_column_type(s, 3) == SQLITE_INTEGER ? sqlite3_column_int64(s, 3) : -1;
        r.dst_port_text = text_or(s, 3, "");
        r.payload = text_or(s, 4, "");
        r.payload_len = (size_t)sqlite3_column_bytes(s, 4);
        r.retry_count = sqlite3_column_int64(s, 5);
        r.age_ms = with_age ? sqlite3_column_int64(s, 6) : 0;
        fn(ctx, &r);
        n++;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? n : -1;
}

/* The pending-rows query leaving out n destinations: ... NOT IN (VALUES (?2, ?3), ...). */
static sqlite3_stmt *pending_excluding(struct store *st, int n)
{
    char text[1024];
    int len = snprintf(text, sizeof text,
                       "SELECT id, message_id, dst_addr, dst_port, payload, retry_count "
                       "FROM outbound_messages WHERE state = 'pending' "
                       "AND (dst_addr, dst_port) NOT IN (VALUES ");
    for (int i = 0; i < n; i++)
        len += snprintf(text + len, sizeof text - (size_t)len, "%s(?%d, ?%d)", i > 0 ? ", " : "",
                        2 + 2 * i, 3 + 2 * i);
    snprintf(text + len, sizeof text - (size_t)len, ") ORDER BY id LIMIT ?1");
    return store_stmt(st, S_PENDING_EXCLUDING + n - 1, text);
}

int store_outbound_pending(struct store *st, int limit, const struct store_dest *exclude,
                           int nexclude, store_outbound_fn fn, void *ctx)
{
    if (nexclude > STORE_MAX_EXCLUDE)
        nexclude = STORE_MAX_EXCLUDE;
    sqlite3_stmt *s = nexclude > 0 ? pending_excluding(st, nexclude) : stmt(st, S_PENDING);
    if (s == NULL)
        return -1;
    sqlite3_bind_int(s, 1, limit);
    for (int i = 0; i < nexclude; i++) {
        sqlite3_bind_text(s, 2 + 2 * i, exclude[i].addr, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3 + 2 * i, exclude[i].port);
    }
    return each_outbound(s, 0, fn, ctx);
}

int store_outbound_load_sent(struct store *st, int64_t after, int limit, store_outbound_fn fn,
                             void *ctx)
{
    sqlite3_stmt *s = stmt(st, S_LOAD_SENT);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int(s, 2, limit);
    return each_outbound(s, 1, fn, ctx);
}

int store_outbound_get_sent(struct store *st, int64_t rowid, store_outbound_fn fn, void *ctx)
{
    sqlite3_stmt *s = stmt(st, S_GET_SENT);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, rowid);
    return each_outbound(s, 0, fn, ctx);
}

enum store_rc store_outbound_sending(struct store *st, int64_t rowid, const char *message_id,
                                     const char *payload, size_t payload_len)
{
    sqlite3_stmt *s = stmt(st, S_SENDING);
    if (s == NULL)
        return STORE_ERR;
    sqlite3_bind_int64(s, 1, rowid);
    sqlite3_bind_text(s, 2, message_id, -1, SQLITE_STATIC);
    if (payload != NULL)
        sqlite3_bind_text(s, 3, payload, (int)payload_len, SQLITE_STATIC);
    return run(s);
}

/* Runs S_SENT or S_FAILED: (rowid, retry_count, why or NULL). */
static enum store_rc row_update(struct store *st, int idx, int64_t rowid, int64_t retry_count,
                                const char *why)
{
    sqlite3_stmt *s = stmt(st, idx);
    if (s == NULL)
        return STORE_ERR;
    sqlite3_bind_int64(s, 1, rowid);
    sqlite3_bind_int64(s, 2, retry_count);
    if (why != NULL)
        sqlite3_bind_text(s, 3, why, -1, SQLITE_STATIC);
    return run(s);
}

enum store_rc store_outbound_sent(struct store *st, int64_t rowid, int64_t retry_count,
                                  const char *why)
{
    return row_update(st, S_SENT, rowid, retry_count, why);
}

enum store_rc store_outbound_failed(struct store *st, int64_t rowid, int64_t retry_count,
                                    const char *why)
{
    return row_update(st, S_FAILED, rowid, retry_count, why);
}

/* Runs a one-parameter statement keyed by message_id; *changed gets the row count. */
static enum store_rc by_message_id(struct store *st, int idx, const char *message_id, int *changed)
{
    sqlite3_stmt *s = stmt(st, idx);
    if (s == NULL)
        return STORE_ERR;
    sqlite3_bind_text(s, 1, message_id, -1, SQLITE_STATIC);
    enum store_rc rc = run(s);
    if (rc == STORE_OK && changed != NULL)
        *changed = sqlite3_changes(st->db) > 0;
    return rc;
}

enum store_rc store_outbound_acked(struct store *st, const char *message_id, int *matched)
{
    return by_message_id(st, S_ACKED, message_id, matched);
}

enum store_rc store_inbound_ack_sent(struct store *st, const char *message_id)
{
    return by_message_id(st, S_IN_ACK_SENT, message_id, NULL);
}

enum store_rc store_inbound_ack_failed(struct store *st, const char *message_id)
{
    return by_message_id(st, S_IN_ACK_FAILED, message_id, NULL);
}

void store_format_ns(uint64_t ns, char out[32])
{
    time_t sec = (time_t)(ns / 1000000000ULL);
    struct tm tm;
    if (gmtime_r(&sec, &tm) == NULL) {
        snprintf(out, 32, "1970-01-01T00:00:00.000000000");
        return;
    }
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%09llu", date, (unsigned long long)(ns % 1000000000ULL));
}

enum store_rc store_inbound_insert(struct store *st, const char *message_id, const char *src_addr,
                                   unsigned src_port, const char *payload, size_t payload_len,
                                   uint64_t crypto_ts_ns, int *is_new)
{
    sqlite3_stmt *s = stmt(st, S_IN_INSERT);
    if (s == NULL)
        return STORE_ERR;
    char ts[32];
    store_format_ns(crypto_ts_ns, ts);
    sqlite3_bind_text(s, 1, message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, src_addr, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, (int)src_port);
    sqlite3_bind_text(s, 4, payload, (int)payload_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, ts, -1, SQLITE_STATIC);
    enum store_rc rc = run(s);
    if (rc == STORE_OK)
        *is_new = sqlite3_changes(st->db) > 0;
    return rc;
}

int store_inbound_unacked(struct store *st, int64_t after, int limit, store_inbound_fn fn,
                          void *ctx)
{
    sqlite3_stmt *s = stmt(st, S_IN_UNACKED);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int(s, 2, limit);
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_inbound_row r;
        r.rowid = sqlite3_column_int64(s, 0);
        r.message_id = text_or(s, 1, "");
        r.src_addr = text_or(s, 2, "");
        r.src_port = sqlite3_column_int64(s, 3);
        fn(ctx, &r);
        n++;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? n : -1;
}

_Static_assert(S_COUNT_DAEMON <= STORE_ADMIN_STMT_BASE, "daemon statements overlap store_admin's");
