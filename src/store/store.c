/*
 * store: the daemon's SQL. Statements are prepared once and cached by index;
 * each function binds, steps and resets one of them.
 */
#define _GNU_SOURCE
#include "store/store.h"

#include "store/sqlite_internal.h"

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
    S_IN_INSERT_SELF,
    S_IN_EXISTS,
    S_IN_ACK_SENT,
    S_IN_ACK_FAILED,
    S_IN_UNACKED,
    S_RECOVER,
    S_EXCLUDE_CLEAR,
    S_EXCLUDE_ADD,
    S_SKIP_ADD,
    S_EXPIRE,
    S_IN_LAST_ID,
    S_COUNT_DAEMON
};

/* Ports as rows may hold them: anything but an integer from 1 to 65535 reads as -1. */
#define PORT_OR_BAD(col)                                                                           \
    "CASE WHEN typeof(" col ") = 'integer' AND " col " BETWEEN 1 AND 65535 "                       \
    "THEN " col " ELSE -1 END"

static const char *const sql[S_COUNT_DAEMON] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_DATA_VERSION] = "PRAGMA data_version",
    /*
     * No payload here: a row too large to send is failed from its size
     * alone (store_outbound_payload). The temp tables are this connection's
     * own and survive a rolled-back turn (they are written outside it).
     */
    [S_PENDING] = "SELECT id, message_id, dst_addr, dst_port, retry_count, " PORT_OR_BAD(
        "dst_port") " FROM outbound_messages o WHERE state = 'pending' "
                    "AND NOT EXISTS (SELECT 1 FROM temp.sg_skip k WHERE k.id = o.id) "
                    "AND NOT EXISTS (SELECT 1 FROM temp.sg_blocked b "
                    "WHERE b.addr = o.dst_addr AND b.port = o.dst_port) ORDER BY id LIMIT ?1",
    [S_LOAD_SENT] = "SELECT id, message_id, dst_addr, dst_port, retry_count, " PORT_OR_BAD(
        "dst_port") ", CAST((julianday('now') - julianday(sent_at)) * 86400000 AS INTEGER) "
                    "FROM outbound_messages WHERE state = 'sent' AND id > ?1 "
                    "ORDER BY id LIMIT ?2",
    [S_SENDING] = "UPDATE OR FAIL outbound_messages SET state = 'sending', message_id = ?2, "
                  "payload = COALESCE(?3, payload), updated_at = " STORE_NOW
                  " WHERE id = ?1 AND state = 'pending'",
    [S_SENT] = "UPDATE OR FAIL outbound_messages SET state = 'sent', retry_count = ?2, sent_at "
               "= " STORE_NOW ", last_error = COALESCE(?3, last_error), updated_at = " STORE_NOW
               " WHERE id = ?1 AND state IN ('sending', 'sent')",
    [S_FAILED] = "UPDATE OR FAIL outbound_messages SET state = 'send_failed', retry_count = ?2, "
                 "last_error = ?3, updated_at = " STORE_NOW
                 " WHERE id = ?1 AND state IN ('pending', 'sending', 'sent')",
    [S_ACKED] =
        "UPDATE OR FAIL outbound_messages SET state = 'acknowledged', ack_received_at = " STORE_NOW
        ", updated_at = " STORE_NOW " WHERE id = ?1 AND state IN ('sent', 'sending')",
    [S_GET_SENT] = "SELECT id, message_id, dst_addr, dst_port, retry_count, " PORT_OR_BAD(
        "dst_port") ", 0, payload FROM outbound_messages WHERE id = ?1 AND state = 'sent'",
    /*
     * Not INSERT OR IGNORE: that would hide a CHECK or NOT NULL failure as a
     * duplicate. A message_id of one of our own rows awaiting its ACK is a
     * reflection of our own datagram and is not stored. OR FAIL (here and in
     * the one-row UPDATEs) reports every constraint failure just the same,
     * and, for one row, changes nothing before it fails, so SQLite needs no
     * statement journal (a 64 KB buffer per statement otherwise).
     */
    [S_IN_INSERT] = "INSERT OR FAIL INTO inbound_messages "
                    "(message_id, src_addr, src_port, payload, crypto_timestamp) "
                    "SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM outbound_messages "
                    "WHERE message_id = ?1 AND state IN ('sending', 'sent'))",
    [S_IN_INSERT_SELF] = "INSERT OR FAIL INTO inbound_messages "
                         "(message_id, src_addr, src_port, payload, crypto_timestamp) "
                         "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_IN_EXISTS] = "SELECT (SELECT count(*) FROM inbound_messages WHERE message_id = ?1), "
                    "(SELECT count(*) FROM outbound_messages WHERE message_id = ?1 "
                    "AND state IN ('sending', 'sent'))",
    [S_IN_ACK_SENT] = "UPDATE OR FAIL inbound_messages SET state = 'ack_sent', ack_sent = 1, "
                      "ack_sent_at = " STORE_NOW ", updated_at = " STORE_NOW
                      " WHERE message_id = ?1 AND state = 'received'",
    [S_IN_ACK_FAILED] =
        "UPDATE OR FAIL inbound_messages SET state = 'ack_failed', updated_at = " STORE_NOW
        " WHERE message_id = ?1 AND state = 'received'",
    [S_IN_UNACKED] = "SELECT id, message_id, src_addr, " PORT_OR_BAD(
        "src_port") " FROM inbound_messages WHERE state = 'received' AND id > ?1 "
                    "ORDER BY id LIMIT ?2",
    [S_RECOVER] = "UPDATE outbound_messages SET state = 'pending', updated_at = " STORE_NOW
                  " WHERE state = 'sending'",
    [S_EXCLUDE_CLEAR] = "DELETE FROM temp.sg_blocked",
    [S_EXCLUDE_ADD] = "INSERT OR IGNORE INTO temp.sg_blocked (addr, port) VALUES (?1, ?2)",
    [S_SKIP_ADD] = "INSERT OR IGNORE INTO temp.sg_skip (id) VALUES (?1)",
    [S_IN_LAST_ID] = "SELECT COALESCE(max(id), 0) FROM inbound_messages",
    [S_EXPIRE] = "UPDATE outbound_messages SET state = 'send_failed', last_error = ?4, "
                 "updated_at = " STORE_NOW " WHERE state = 'pending' AND dst_addr = ?1 "
                 "AND dst_port = ?2 AND julianday(created_at) < julianday('now') - ?3 / 86400000.0 "
                 "AND id NOT IN (SELECT id FROM temp.sg_skip)",
};

/* This connection's own tables: what the claim leaves out. */
static const char temp_schema[] =
    "CREATE TEMP TABLE IF NOT EXISTS sg_blocked (addr TEXT NOT NULL, port INTEGER NOT NULL, "
    "PRIMARY KEY (addr, port)) WITHOUT ROWID;"
    "CREATE TEMP TABLE IF NOT EXISTS sg_skip (id INTEGER PRIMARY KEY);";

sqlite3_stmt *store_stmt(struct store *st, int idx, const char *text)
{
    st->why[0] = '\0';
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
    case SQLITE_INTERRUPT:
        return STORE_BUSY;
    case SQLITE_CONSTRAINT:
        return rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ? STORE_DUP
                                                                                    : STORE_REFUSED;
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
        return STORE_REFUSED;
    default:
        return STORE_ERR;
    }
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The result of a failed step, with SQLite's reason kept before a reset or rollback replaces it. */
static enum store_rc step_failed(struct store *st, int rc)
{
    enum store_rc r = store_rc_of(rc);
    if (r == STORE_OK)
        r = STORE_ERR;
    if (st->timed_out && (rc & 0xff) == SQLITE_INTERRUPT)
        snprintf(st->why, sizeof st->why,
                 "a statement ran longer than %d ms (a slow trigger?); the turn was rolled back",
                 st->budget_ms);
    else
        snprintf(st->why, sizeof st->why, "%s", sqlite3_errmsg(st->db));
    return r;
}

/* Steps a statement that returns no rows, then resets it. */
static enum store_rc run_on(struct store *st, sqlite3_stmt *s)
{
    if (s == NULL)
        return step_failed(st, sqlite3_errcode(st->db));
    int rc = sqlite3_step(s);
    enum store_rc r = rc == SQLITE_DONE ? STORE_OK : step_failed(st, rc);
    sqlite3_reset(s);
    return r;
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
static int ensure_schema(sqlite3 *db, int complete, char *err, size_t errlen)
{
    /*
     * Making a table: one transaction, so that one that cannot be completed
     * leaves the file as it was. Both there already: no lock is needed (the
     * tools must open a database another process holds locked).
     */
    if ((!complete && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) ||
        sqlite3_exec(db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (has_column(db, "inbound_messages", "read_count") == 0 &&
        sqlite3_exec(db,
                     "ALTER TABLE inbound_messages ADD COLUMN read_count INTEGER NOT NULL "
                     "DEFAULT 0",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (!sqlite3_get_autocommit(db) && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot set up the tables: %s", sqlite3_errmsg(db));
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* Stops a statement once its time budget (a deadline in CLOCK_MONOTONIC ms) has passed. */
static int past_deadline(void *arg)
{
    return mono_ms() > *(int64_t *)arg;
}

/*
 * PRAGMA quick_check within budget_ms: refuses a corrupt database at start
 * rather than failing on some later write. A database too large to check in
 * the budget is used unchecked (returns 1). Returns 0 if sound, -1 if not.
 */
static int quick_check(sqlite3 *db, const char *path, int budget_ms, char *err, size_t errlen)
{
    int64_t deadline = mono_ms() + budget_ms;
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

/*
 * What the file holds, read before anything is written to it (so a file that
 * is not ours is left byte for byte as it was): how many of our two tables it
 * has (each with its message_id column), 0 also for a new or empty file;
 * -1 if it holds other things but not our tables, with the missing piece in
 * missing; -2 if it cannot be read (err set: not a database, damaged).
 */
static int schema_kind(sqlite3 *db, const char *path, char *missing, size_t mlen, char *err,
                       size_t errlen)
{
    static const char q[] =
        "SELECT count(*), "
        "(SELECT count(*) FROM pragma_table_info('outbound_messages') WHERE name = 'message_id'), "
        "(SELECT count(*) FROM pragma_table_info('inbound_messages') WHERE name = 'message_id'), "
        "count(CASE WHEN name = 'outbound_messages' THEN 1 END), "
        "count(CASE WHEN name = 'inbound_messages' THEN 1 END) FROM sqlite_master";
    sqlite3_stmt *s = NULL;
    int kind = -2;
    if (sqlite3_prepare_v2(db, q, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        int any = sqlite3_column_int(s, 0), out = sqlite3_column_int(s, 1),
            in = sqlite3_column_int(s, 2), has_out = sqlite3_column_int(s, 3),
            has_in = sqlite3_column_int(s, 4);
        kind = out + in;
        if ((has_out && !out) || (has_in && !in)) {
            snprintf(missing, mlen, "table %s has no column message_id",
                     has_out && !out ? "outbound_messages" : "inbound_messages");
            kind = -1;
        } else if (kind < 2) {
            snprintf(missing, mlen, "no table %s", !out ? "outbound_messages" : "inbound_messages");
            if (kind == 0 && any > 0)
                kind = -1;
        }
    } else {
        snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(db));
    }
    sqlite3_finalize(s);
    return kind;
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
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
    if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 st->db != NULL ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, busy_ms);
    sqlite3_extended_result_codes(st->db, 1); /* to tell UNIQUE from other constraints */
    /*
     * The daemon may make its tables in a new or empty file, or one of them
     * beside the other; the tools only open a database with both; nobody
     * writes to someone else's.
     */
    char missing[80] = "";
    int kind = schema_kind(st->db, path, missing, sizeof missing, err, errlen);
    if (kind == -2)
        goto fail;
    if (kind < 0 || (kind < 2 && mode != STORE_CREATE)) {
        snprintf(err, errlen, "%s is not a securedgram database (%s)", path, missing);
        goto fail;
    }
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
    if (ensure_schema(st->db, kind == 2, err, errlen) != 0)
        goto fail;
    if (sqlite3_exec(st->db, temp_schema, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (stat(path, &sb) == 0) {
        st->dev = sb.st_dev;
        st->ino = sb.st_ino;
    }
    snprintf(st->path, sizeof st->path, "%s", path);
    (void)store_file_replaced(st); /* notes the -wal's identity */
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
    return st->why[0] != '\0' ? st->why : sqlite3_errmsg(st->db);
}

void store_set_budget(struct store *st, int budget_ms)
{
    st->budget_ms = budget_ms > 0 ? budget_ms : 0;
}

int store_timed_out(const struct store *st)
{
    return st->timed_out;
}

/* The progress handler: interrupts a statement once the transaction's budget is spent. */
static int over_budget(void *arg)
{
    struct store *st = arg;
    if (mono_ms() <= st->deadline)
        return 0;
    st->timed_out = 1;
    return 1;
}

enum store_rc store_begin(struct store *st)
{
    st->timed_out = 0;
    if (st->budget_ms > 0) {
        st->deadline = mono_ms() + st->budget_ms;
        sqlite3_progress_handler(st->db, 1000, over_budget, st);
    }
    return run_on(st, stmt(st, S_BEGIN));
}

enum store_rc store_commit(struct store *st)
{
    enum store_rc rc = run_on(st, stmt(st, S_COMMIT));
    if (rc != STORE_OK) {
        char why[sizeof st->why]; /* COMMIT's reason, not the ROLLBACK's */
        memcpy(why, st->why, sizeof why);
        store_rollback(st);
        memcpy(st->why, why, sizeof why);
    }
    return rc;
}

void store_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        (void)run_on(st, stmt(st, S_ROLLBACK));
    if (st->budget_ms > 0)
        sqlite3_progress_handler(st->db, 0, NULL, NULL);
}

/* 1 if path is not the file (dev, ino) any more; a first look (ino 0) only records it. */
static int moved(const char *path, dev_t *dev, ino_t *ino, int must_exist)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return (errno == ENOENT || errno == ENOTDIR) && (must_exist || *ino != 0);
    if (*ino == 0) {
        *dev = sb.st_dev;
        *ino = sb.st_ino;
        return 0;
    }
    return sb.st_dev != *dev || sb.st_ino != *ino;
}

int store_file_replaced(struct store *st)
{
    char wal[sizeof st->path + 8];
    snprintf(wal, sizeof wal, "%s-wal", st->path);
    return moved(st->path, &st->dev, &st->ino, 1) || moved(wal, &st->wal_dev, &st->wal_ino, 0);
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
    if (run_on(st, stmt(st, S_RECOVER)) != STORE_OK)
        return -1;
    return sqlite3_changes(st->db);
}

/* A text column, dflt if NULL, STORE_BAD_TEXT if it has a NUL byte inside (a script's BLOB). */
static const char *text_or(sqlite3_stmt *s, int col, const char *dflt)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    if (t == NULL)
        return dflt;
    return strlen(t) == (size_t)sqlite3_column_bytes(s, col) ? t : STORE_BAD_TEXT;
}

/*
 * Steps s, calling fn for each outbound row; returns the row count or -1.
 * Columns: id, message_id, dst_addr, dst_port, retry_count, checked port,
 * then age_ms and payload where the query has them.
 */
static int each_outbound(sqlite3_stmt *s, int ncols, store_outbound_fn fn, void *ctx)
{
    int n = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_outbound_row r = {0};
        r.rowid = sqlite3_column_int64(s, 0);
        r.message_id = (const char *)sqlite3_column_text(s, 1);
        r.dst_addr = text_or(s, 2, "");
        r.dst_port_text = text_or(s, 3, "");
        r.retry_count = sqlite3_column_int64(s, 4);
        if (r.retry_count < 0)
            r.retry_count = 0; /* a script's negative count would buy endless retries */
        r.dst_port = sqlite3_column_int64(s, 5);
        if (ncols > 6)
            r.age_ms = sqlite3_column_int64(s, 6);
        if (ncols > 7) {
            r.payload = text_or(s, 7, "");
            r.payload_len = strlen(r.payload);
        }
        fn(ctx, &r);
        n++;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? n : -1;
}

int store_outbound_pending(struct store *st, int limit, store_outbound_fn fn, void *ctx)
{
    sqlite3_stmt *s = stmt(st, S_PENDING);
    if (s == NULL)
        return -1;
    sqlite3_bind_int(s, 1, limit);
    return each_outbound(s, 7, fn, ctx);
}

enum store_rc store_outbound_expire(struct store *st, const struct store_dest *dest,
                                    int64_t older_than_ms, const char *why, int *changed)
{
    sqlite3_stmt *s = stmt(st, S_EXPIRE);
    if (s == NULL)
        return STORE_ERR;
    sqlite3_bind_text(s, 1, dest->addr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, dest->port);
    sqlite3_bind_int64(s, 3, older_than_ms);
    sqlite3_bind_text(s, 4, why, -1, SQLITE_STATIC);
    enum store_rc rc = run_on(st, s);
    if (rc == STORE_OK)
        *changed = sqlite3_changes(st->db);
    return rc;
}

enum store_rc store_outbound_exclude(struct store *st, const struct store_dest *dests, int n)
{
    enum store_rc rc = run_on(st, stmt(st, S_EXCLUDE_CLEAR));
    for (int i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *s = stmt(st, S_EXCLUDE_ADD);
        if (s != NULL) {
            sqlite3_bind_text(s, 1, dests[i].addr, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, dests[i].port);
        }
        rc = run_on(st, s);
    }
    return rc;
}

enum store_rc store_outbound_skip(struct store *st, int64_t rowid)
{
    sqlite3_stmt *s = stmt(st, S_SKIP_ADD);
    if (s != NULL)
        sqlite3_bind_int64(s, 1, rowid);
    return run_on(st, s);
}

/*
 * Incremental blob I/O: sqlite3_blob_bytes() reads the size from the record
 * header, so a row of gigabytes is refused without reading it.
 */
enum store_rc store_outbound_payload(struct store *st, int64_t rowid, size_t max, char **out,
                                     size_t *len)
{
    st->why[0] = '\0';
    sqlite3_blob *b = NULL;
    int rc = sqlite3_blob_open(st->db, "main", "outbound_messages", "payload", rowid, 0, &b);
    if (rc != SQLITE_OK) {
        enum store_rc r = store_rc_of(rc);
        snprintf(st->why, sizeof st->why, "%s", sqlite3_errmsg(st->db));
        sqlite3_blob_close(b);
        return r == STORE_BUSY ? r : (rc & 0xff) == SQLITE_ERROR ? STORE_GONE : STORE_ERR;
    }
    size_t size = (size_t)sqlite3_blob_bytes(b);
    enum store_rc r = STORE_OK;
    char *buf = NULL;
    if (size > max) {
        r = STORE_REFUSED;
    } else if ((buf = malloc(size + 1)) == NULL) {
        r = STORE_ERR;
        snprintf(st->why, sizeof st->why, "out of memory");
    } else if ((rc = sqlite3_blob_read(b, buf, (int)size, 0)) != SQLITE_OK) {
        r = step_failed(st, rc);
        free(buf);
        buf = NULL;
    } else {
        buf[size] = '\0';
    }
    sqlite3_blob_close(b);
    if (r == STORE_OK)
        *out = buf;
    if (r == STORE_OK || r == STORE_REFUSED)
        *len = size;
    return r;
}

int store_outbound_load_sent(struct store *st, int64_t after, int limit, store_outbound_fn fn,
                             void *ctx)
{
    sqlite3_stmt *s = stmt(st, S_LOAD_SENT);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, after);
    sqlite3_bind_int(s, 2, limit);
    return each_outbound(s, 7, fn, ctx);
}

int store_outbound_get_sent(struct store *st, int64_t rowid, store_outbound_fn fn, void *ctx)
{
    sqlite3_stmt *s = stmt(st, S_GET_SENT);
    if (s == NULL)
        return -1;
    sqlite3_bind_int64(s, 1, rowid);
    return each_outbound(s, 8, fn, ctx);
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
    enum store_rc rc = run_on(st, s);
    if (rc == STORE_OK && sqlite3_changes(st->db) != 1) {
        snprintf(st->why, sizeof st->why,
                 "the update to 'sending' changed nothing (a trigger's RAISE(IGNORE)?)");
        rc = STORE_REFUSED;
    }
    return rc;
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
    return run_on(st, s);
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
    enum store_rc rc = run_on(st, s);
    if (rc == STORE_OK && changed != NULL)
        *changed = sqlite3_changes(st->db) > 0;
    return rc;
}

enum store_rc store_outbound_acked(struct store *st, int64_t rowid, int *matched)
{
    sqlite3_stmt *s = stmt(st, S_ACKED);
    if (s == NULL)
        return STORE_ERR;
    sqlite3_bind_int64(s, 1, rowid);
    enum store_rc rc = run_on(st, s);
    if (rc == STORE_OK)
        *matched = sqlite3_changes(st->db) > 0;
    return rc;
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

/* After an insert that stored nothing: is it a duplicate, our own id, or refused? */
static enum store_rc inbound_why_not(struct store *st, const char *message_id,
                                     enum store_in_result *res, const char *refusal,
                                     int idx_was_guarded)
{
    sqlite3_stmt *s = stmt(st, S_IN_EXISTS);
    if (s == NULL)
        return STORE_ERR;
    sqlite3_bind_text(s, 1, message_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        enum store_rc r = step_failed(st, rc);
        sqlite3_reset(s);
        return r;
    }
    int stored = sqlite3_column_int(s, 0) > 0, ours = sqlite3_column_int(s, 1) > 0;
    sqlite3_reset(s);
    if (stored) {
        *res = STORE_IN_DUP;
        return STORE_OK;
    }
    if (ours && idx_was_guarded) {
        *res = STORE_IN_OWN;
        return STORE_OK;
    }
    snprintf(st->why, sizeof st->why, "%s", refusal);
    return STORE_REFUSED;
}

static enum store_rc insert_inbound(struct store *st, int idx, const char *message_id,
                                    const char *src_addr, unsigned src_port, const char *payload,
                                    size_t payload_len, uint64_t crypto_ts_ns,
                                    enum store_in_result *res)
{
    sqlite3_stmt *s = stmt(st, idx);
    if (s == NULL)
        return STORE_ERR;
    char ts[32];
    store_format_ns(crypto_ts_ns, ts);
    sqlite3_bind_text(s, 1, message_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, src_addr, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, (int)src_port);
    sqlite3_bind_text(s, 4, payload, (int)payload_len, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, ts, -1, SQLITE_STATIC);
    enum store_rc rc = run_on(st, s);
    if (rc == STORE_OK && sqlite3_changes(st->db) > 0) {
        *res = STORE_IN_NEW;
        return STORE_OK;
    }
    if (rc == STORE_OK)
        return inbound_why_not(st, message_id, res,
                               "the insert stored nothing (a trigger's RAISE(IGNORE)?)",
                               idx == S_IN_INSERT);
    if (rc == STORE_DUP) {
        char why[sizeof st->why]; /* a UNIQUE index of the operator's, not message_id's? */
        memcpy(why, st->why, sizeof why);
        return inbound_why_not(st, message_id, res, why, idx == S_IN_INSERT);
    }
    return rc;
}

enum store_rc store_inbound_insert(struct store *st, const char *message_id, const char *src_addr,
                                   unsigned src_port, const char *payload, size_t payload_len,
                                   uint64_t crypto_ts_ns, enum store_in_result *res)
{
    return insert_inbound(st, S_IN_INSERT, message_id, src_addr, src_port, payload, payload_len,
                          crypto_ts_ns, res);
}

enum store_rc store_inbound_insert_self(struct store *st, const char *message_id,
                                        const char *src_addr, unsigned src_port,
                                        const char *payload, size_t payload_len,
                                        uint64_t crypto_ts_ns, enum store_in_result *res)
{
    enum store_rc rc = insert_inbound(st, S_IN_INSERT_SELF, message_id, src_addr, src_port, payload,
                                      payload_len, crypto_ts_ns, res);
    return rc;
}

int64_t store_inbound_last_id(struct store *st)
{
    sqlite3_stmt *s = stmt(st, S_IN_LAST_ID);
    int64_t v = -1;
    if (s != NULL && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    if (s != NULL)
        sqlite3_reset(s);
    return v < 0 ? INT64_MAX : v;
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
        r.src_port = sqlite3_column_int64(s, 3); /* -1 unless 1 .. 65535 */
        fn(ctx, &r);
        n++;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? n : -1;
}

_Static_assert(S_COUNT_DAEMON <= STORE_ADMIN_STMT_BASE, "daemon statements overlap store_admin's");
