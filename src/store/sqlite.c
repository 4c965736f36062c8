/*
 * sqlite: the SQLite backend. This file has the connection: the text of
 * every fixed statement and their one cache, the one step helper, opening
 * (the checks are in sqlite_open.c), transactions with their time budget, and
 * the check that the files are still the ones opened. The rows are in
 * sqlite_queue.c and sqlite_set.c (the daemon) and sqlite_admin.c (the
 * tools), the watch in sqlite_watch.c; the method table at the end joins them.
 */
#define _GNU_SOURCE
#include "util/clock.h"
#include "store/sqlite_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Ports as rows may hold them: anything but an integer from 1 to 65535 reads as -1. */
#define PORT_OR_BAD(col)                                                                           \
    "CASE WHEN typeof(" col ") = 'integer' AND " col " BETWEEN 1 AND 65535 "                       \
    "THEN " col " ELSE -1 END"

/* created_at as ms since the epoch (NULL, read as 0, if it is not a time julianday reads). */
#define CREATED_MS "CAST((julianday(created_at) - 2440587.5) * 86400000 AS INTEGER)"

/*
 * Times are bound as text (store_format_ms), never SQLite's 'now': the
 * caller's clock is the one every backend writes. OR FAIL (in the inserts and
 * one-row UPDATEs) reports every constraint failure, and, for one row,
 * changes nothing before it fails, so SQLite needs no statement journal (a
 * 64 KB buffer per statement otherwise).
 */
static const char *const sql[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_DATA_VERSION] = "PRAGMA data_version",
    /*
     * No payload here: a row too large to send is failed from its size
     * alone (store_outbound_payloads). The temp tables are this connection's
     * own and survive a rolled-back turn (they are written outside it). A row
     * with a peer goes to the peer's endpoint: it is left out by its peer's
     * name, never by its dst_addr and dst_port.
     */
    [Q_PENDING] = "SELECT id, message_id, dst_addr, dst_port, retry_count, " PORT_OR_BAD(
        "dst_port") ", peer, sequence, " CREATED_MS
                    " FROM outbound_messages o WHERE state = 'pending' "
                    "AND NOT EXISTS (SELECT 1 FROM temp.sg_skip k WHERE k.id = o.id) "
                    "AND NOT EXISTS (SELECT 1 FROM temp.sg_blocked b "
                    "WHERE b.addr = o.dst_addr AND b.port = o.dst_port AND o.peer IS NULL) "
                    "ORDER BY id LIMIT ?1",
    /* The same, when peers are left out too: one more look-up per row. */
    [Q_PENDING_PEERS] = "SELECT id, message_id, dst_addr, dst_port, retry_count, " PORT_OR_BAD(
        "dst_port") ", peer, sequence, " CREATED_MS
                    " FROM outbound_messages o WHERE state = 'pending' "
                    "AND NOT EXISTS (SELECT 1 FROM temp.sg_skip k WHERE k.id = o.id) "
                    "AND NOT EXISTS (SELECT 1 FROM temp.sg_blocked b "
                    "WHERE b.addr = o.dst_addr AND b.port = o.dst_port AND o.peer IS NULL) "
                    "AND NOT EXISTS (SELECT 1 FROM temp.sg_blocked_peer bp "
                    "WHERE bp.name = o.peer) ORDER BY id LIMIT ?1",
    [Q_PENDING_ALL] = "SELECT id, message_id, dst_addr, dst_port, retry_count, " PORT_OR_BAD(
        "dst_port") ", peer, sequence, " CREATED_MS
                    " FROM outbound_messages WHERE state = 'pending' "
                    "ORDER BY id LIMIT ?1",
    [Q_LOAD_SENT] = "SELECT id, message_id, dst_addr, dst_port, retry_count, " PORT_OR_BAD(
        "dst_port") ", peer, sequence, " CREATED_MS ", "
                    "CAST((julianday(?3) - julianday(sent_at)) * 86400000 AS INTEGER) "
                    "FROM outbound_messages WHERE state = 'sent' AND id > ?1 "
                    "ORDER BY id LIMIT ?2",
    [Q_GET_SENT] = "SELECT id, message_id, dst_addr, dst_port, retry_count, " PORT_OR_BAD(
        "dst_port") ", peer, sequence, " CREATED_MS ", 0, payload FROM outbound_messages "
                    "WHERE id = ?1 AND state = 'sent'",
    /* ?5: the row's sequence number, NULL to leave it as it is (one statement per row still). */
    [Q_TAKE] = "UPDATE OR FAIL outbound_messages SET state = 'sent', message_id = ?2, "
               "payload = COALESCE(?3, payload), sent_at = ?4, updated_at = ?4, "
               "sequence = COALESCE(?5, sequence) WHERE id = ?1 AND state = 'pending'",
    [Q_SENT] = "UPDATE OR FAIL outbound_messages SET state = 'sent', retry_count = ?2, "
               "sent_at = ?4, last_error = COALESCE(?3, last_error), updated_at = ?4 "
               "WHERE id = ?1 AND state IN ('sending', 'sent')",
    [Q_FAILED] = "UPDATE OR FAIL outbound_messages SET state = 'send_failed', retry_count = ?2, "
                 "last_error = ?3, updated_at = ?4 "
                 "WHERE id = ?1 AND state IN ('pending', 'sending', 'sent')",
    [Q_ACKED] = "UPDATE OR FAIL outbound_messages SET state = 'acknowledged', "
                "ack_received_at = ?2, updated_at = ?2 WHERE id = ?1 AND state IN ('sent', "
                "'sending')",
    /*
     * The set-based forms: the rows as one JSON array (sqlite_queue.c), OR
     * ABORT so that a refused row undoes the whole statement, not only
     * itself, and the rows can then be tried one by one.
     */
    [Q_SENT_SET] = "UPDATE OR ABORT outbound_messages AS o SET state = 'sent', retry_count = j.r, "
                   "sent_at = ?2, last_error = COALESCE(j.w, o.last_error), updated_at = ?2 "
                   "FROM (SELECT CAST(json_extract(value, '$[0]') AS INTEGER) AS id, "
                   "json_extract(value, '$[1]') "
                   "AS r, json_extract(value, '$[2]') AS w FROM json_each(?1)) AS j "
                   "WHERE o.id = j.id AND +o.state IN ('sending', 'sent')",
    [Q_FAILED_SET] = "UPDATE OR ABORT outbound_messages AS o SET state = 'send_failed', "
                     "retry_count = j.r, last_error = j.w, updated_at = ?2 "
                     "FROM (SELECT CAST(json_extract(value, '$[0]') AS INTEGER) AS id, "
                     "json_extract(value, '$[1]') "
                     "AS r, json_extract(value, '$[2]') AS w FROM json_each(?1)) AS j "
                     "WHERE o.id = j.id AND +o.state IN ('pending', 'sending', 'sent')",
    [Q_ACKED_SET] = "UPDATE OR ABORT outbound_messages SET state = 'acknowledged', "
                    "ack_received_at = ?2, updated_at = ?2 WHERE id IN (SELECT value FROM "
                    "json_each(?1)) AND +state IN ('sent', 'sending')",
    [Q_CLAIM] = "UPDATE OR ABORT outbound_messages SET state = 'sending', updated_at = ?2 "
                "WHERE id IN (SELECT id FROM outbound_messages o WHERE state = 'pending' "
                "AND NOT EXISTS (SELECT 1 FROM temp.sg_skip k WHERE k.id = o.id) "
                "AND NOT EXISTS (SELECT 1 FROM temp.sg_blocked b "
                "WHERE b.addr = o.dst_addr AND b.port = o.dst_port AND o.peer IS NULL) "
                "AND NOT EXISTS (SELECT 1 FROM temp.sg_blocked_peer bp WHERE bp.name = o.peer) "
                "ORDER BY id LIMIT ?1) "
                "RETURNING id, message_id, dst_addr, dst_port, retry_count, " PORT_OR_BAD(
                    "dst_port") ", peer, sequence, " CREATED_MS,
    [Q_IDENTIFY] = "UPDATE OR FAIL outbound_messages SET message_id = ?2, "
                   "payload = COALESCE(?3, payload), updated_at = ?4 "
                   "WHERE id = ?1 AND state = 'sending'",
    [Q_RELEASE] = "UPDATE OR ABORT outbound_messages SET state = 'pending', updated_at = ?2 "
                  "WHERE id IN (SELECT value FROM json_each(?1)) AND +state = 'sending'",
    /* Triggers could end the whole transaction (RAISE(ROLLBACK)): then one row at a time. */
    [Q_TRIGGERS] = "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND "
                   "tbl_name = ?1) + (SELECT count(*) FROM sqlite_temp_master WHERE type = "
                   "'trigger' AND tbl_name = ?1)",
    [Q_RECOVER] = "UPDATE outbound_messages SET state = 'pending', updated_at = ?1 "
                  "WHERE state = 'sending'",
    [Q_EXPIRE] = "UPDATE outbound_messages SET state = 'send_failed', last_error = ?4, "
                 "updated_at = ?5 WHERE state = 'pending' AND dst_addr = ?1 AND dst_port = ?2 "
                 "AND peer IS NULL AND julianday(created_at) < julianday(?3) "
                 "AND id NOT IN (SELECT id FROM temp.sg_skip)",
    [Q_EXPIRE_PEER] = "UPDATE outbound_messages SET state = 'send_failed', last_error = ?3, "
                      "updated_at = ?4 WHERE state = 'pending' AND peer = ?1 "
                      "AND julianday(created_at) < julianday(?2) "
                      "AND id NOT IN (SELECT id FROM temp.sg_skip)",
    [Q_EXCLUDE_CLEAR] = "DELETE FROM temp.sg_blocked",
    [Q_EXCLUDE_ADD] = "INSERT OR IGNORE INTO temp.sg_blocked (addr, port) VALUES (?1, ?2)",
    [Q_EXCLUDE_PEER_CLEAR] = "DELETE FROM temp.sg_blocked_peer",
    [Q_EXCLUDE_PEER_ADD] = "INSERT OR IGNORE INTO temp.sg_blocked_peer (name) VALUES (?1)",
    [Q_SKIP_ADD] = "INSERT OR IGNORE INTO temp.sg_skip (id) VALUES (?1)",
    /*
     * Not INSERT OR IGNORE: that would hide a CHECK or NOT NULL failure as a
     * duplicate. A message_id of one of our own rows awaiting its ACK is a
     * reflection of our own datagram and is not stored.
     */
    [Q_IN_INSERT] = "INSERT OR FAIL INTO inbound_messages (message_id, src_addr, src_port, "
                    "payload, crypto_timestamp, received_at, updated_at, peer, sequence) "
                    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8 WHERE NOT EXISTS (SELECT 1 FROM "
                    "outbound_messages WHERE message_id = ?1 AND state IN ('sending', 'sent'))",
    [Q_IN_INSERT_SELF] = "INSERT OR FAIL INTO inbound_messages (message_id, src_addr, src_port, "
                         "payload, crypto_timestamp, received_at, updated_at, peer, sequence) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
    [Q_IN_EXISTS] = "SELECT (SELECT count(*) FROM inbound_messages WHERE message_id = ?1), "
                    "(SELECT count(*) FROM outbound_messages WHERE message_id = ?1 "
                    "AND state IN ('sending', 'sent'))",
    [Q_IN_ACK_SENT] = "UPDATE OR FAIL inbound_messages SET state = 'ack_sent', ack_sent = 1, "
                      "ack_sent_at = ?2, updated_at = ?2 "
                      "WHERE message_id = ?1 AND state = 'received'",
    [Q_IN_ACK_FAILED] = "UPDATE OR FAIL inbound_messages SET state = 'ack_failed', "
                        "updated_at = ?2 WHERE message_id = ?1 AND state = 'received'",
    [Q_IN_ACK_SENT_SET] = "UPDATE OR ABORT inbound_messages SET state = 'ack_sent', ack_sent = 1, "
                          "ack_sent_at = ?2, updated_at = ?2 WHERE message_id IN (SELECT value "
                          "FROM json_each(?1)) AND +state = 'received'",
    [Q_IN_ACK_SENT_ROW] = "UPDATE OR FAIL inbound_messages SET state = 'ack_sent', ack_sent = 1, "
                          "ack_sent_at = ?2, updated_at = ?2 WHERE id = ?1 AND state = 'received'",
    [Q_IN_ACK_SENT_ROW_SET] =
        "UPDATE OR ABORT inbound_messages SET state = 'ack_sent', ack_sent = 1, "
        "ack_sent_at = ?2, updated_at = ?2 WHERE id IN (SELECT value FROM "
        "json_each(?1)) AND +state = 'received'",
    [Q_IN_ACK_FAILED_SET] = "UPDATE OR ABORT inbound_messages SET state = 'ack_failed', "
                            "updated_at = ?2 WHERE message_id IN (SELECT value FROM "
                            "json_each(?1)) AND +state = 'received'",
    [Q_IN_UNACKED] = "SELECT id, message_id, src_addr, " PORT_OR_BAD(
        "src_port") ", peer, sequence FROM inbound_messages WHERE state = 'received' "
                    "AND id > ?1 "
                    "ORDER BY id LIMIT ?2",
    [Q_ENQUEUE] = "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, "
                  "created_at, updated_at, peer) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
    [Q_OUT_STATE] = "SELECT state, last_error FROM outbound_messages WHERE id = ?1",
    [Q_REQUEUE] = "UPDATE outbound_messages SET state = 'pending', retry_count = 0, "
                  "last_error = NULL, updated_at = ?3 WHERE state = 'send_failed' "
                  "AND (?1 = 0 OR id = ?1) AND (?2 IS NULL OR peer = ?2)",
    /* Every write sets updated_at, as the original's do: sg-clean ages rows by it. */
    [Q_MARK] = "UPDATE inbound_messages SET read_count = read_count + 1, updated_at = ?2 "
               "WHERE id = ?1",
    [Q_UNMARK] = "UPDATE inbound_messages SET read_count = read_count - 1, updated_at = ?2 "
                 "WHERE id = ?1 AND read_count > 0",
    [Q_FETCH_IN] = "SELECT * FROM inbound_messages WHERE id = ?1",
    [Q_FETCH_OUT] = "SELECT * FROM outbound_messages WHERE id = ?1",
    [Q_MAX_IN] = "SELECT coalesce(max(id), 0) FROM inbound_messages",
    [Q_MAX_OUT] = "SELECT coalesce(max(id), 0) FROM outbound_messages",
    /*
     * Each peer's last outbound sequence number. Only names a peer may have
     * are read (text, 1 to STORE_FIELD_MAX bytes, no NUL), so a page ends
     * where its last name says; a number a script made unreadable counts as 0.
     */
    [Q_SEQ_LOAD] = "SELECT peer, CASE WHEN typeof(last) = 'integer' AND last > 0 THEN last "
                   "ELSE 0 END FROM peer_sequence WHERE peer > ?1 AND typeof(peer) = 'text' "
                   "AND length(CAST(peer AS BLOB)) BETWEEN 1 AND ?3 "
                   "AND instr(CAST(peer AS BLOB), x'00') = 0 ORDER BY peer LIMIT ?2",
    /* Never lower: the larger of the stored and the given number stays. */
    [Q_SEQ_SAVE] = "INSERT OR FAIL INTO peer_sequence (peer, last) VALUES (?1, ?2) "
                   "ON CONFLICT (peer) DO UPDATE SET last = max(excluded.last, "
                   "CASE WHEN typeof(last) = 'integer' THEN last ELSE 0 END)",
};

/* ---- statements and results ---- */

sqlite3_stmt *sq_stmt(struct sq *b, enum sq_query q)
{
    b->why[0] = '\0';
    sqlite3_stmt *s = b->stmt[q];
    if (s == NULL) {
        if (sqlite3_prepare_v3(b->db, sql[q], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
            return NULL;
        b->stmt[q] = s;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return s;
}

enum store_rc sq_rc_of(int rc)
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

enum store_rc sq_fail(struct sq *b, int rc)
{
    enum store_rc r = sq_rc_of(rc);
    if (r == STORE_OK)
        r = STORE_ERR;
    if (b->timed_out && (rc & 0xff) == SQLITE_INTERRUPT)
        snprintf(b->why, sizeof b->why,
                 "a statement ran longer than %d ms (a slow trigger?); the turn was rolled back",
                 b->budget_ms);
    else
        snprintf(b->why, sizeof b->why, "%s", sqlite3_errmsg(b->db));
    return r;
}

enum store_rc sq_step(struct sq *b, sqlite3_stmt *s, int *row)
{
    *row = 0;
    if (s == NULL)
        return sq_fail(b, sqlite3_errcode(b->db));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        *row = rc == SQLITE_ROW;
        b->writes += rc == SQLITE_DONE && !sqlite3_stmt_readonly(s);
        return STORE_OK;
    }
    enum store_rc r = sq_fail(b, rc); /* SQLite's reason, before the reset */
    sqlite3_reset(s);
    return r;
}

enum store_rc sq_run(struct sq *b, sqlite3_stmt *s)
{
    int row;
    enum store_rc rc = sq_step(b, s, &row);
    if (rc == STORE_OK)
        sqlite3_reset(s);
    return rc;
}

const char *sq_text_or(sqlite3_stmt *s, int col, const char *dflt)
{
    const char *t = (const char *)sqlite3_column_text(s, col);
    if (t == NULL)
        return dflt;
    return strlen(t) == (size_t)sqlite3_column_bytes(s, col) ? t : STORE_BAD_TEXT;
}

/* The time now as the store writes it, bound to parameter i. */
void sq_bind_time(sqlite3_stmt *s, int i, int64_t now_ms)
{
    char t[STORE_TIME_LEN];
    store_format_ms(now_ms, t);
    sqlite3_bind_text(s, i, t, -1, SQLITE_TRANSIENT);
}

/* Runs s and sets *changed to the rows it changed. */
enum store_rc sq_run_counting(struct sq *b, sqlite3_stmt *s, int *changed)
{
    enum store_rc rc = sq_run(b, s);
    if (rc == STORE_OK && changed != NULL)
        *changed = sqlite3_changes(b->db);
    return rc;
}

static const struct store_ops sqlite_ops;

enum store_rc store_sqlite_open(const char *path, enum store_open_mode mode, int busy_ms,
                                struct store **out, char *err, size_t errlen)
{
    enum store_rc rc = sq_check_file(path, mode, err, errlen);
    if (rc != STORE_OK)
        return rc;
    struct sq *b = calloc(1, sizeof *b);
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return STORE_ERR;
    }
    b->base.ops = &sqlite_ops;
    b->watch.fd = -1;
    snprintf(b->path, sizeof b->path, "%s", path);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
    int code = sqlite3_open_v2(path, &b->db, flags, NULL);
    if (code != SQLITE_OK)
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 b->db != NULL ? sqlite3_errmsg(b->db) : "out of memory");
    else
        code = sq_setup(b, path, mode, busy_ms, err, errlen);
    if (code == SQLITE_OK && mode == STORE_CREATE && sq_ckpt_start(b, err, errlen) != 0)
        code = SQLITE_ERROR;
    if (code != SQLITE_OK) {
        b->base.ops->close(&b->base);
        return sq_rc_of(code) == STORE_BUSY ? STORE_BUSY : STORE_ERR;
    }
    (void)sq_file_replaced(b); /* notes the -wal's identity */
    *out = &b->base;
    return STORE_OK;
}

static void sq_close(struct store *st)
{
    struct sq *b = sq_of(st);
    sq_ckpt_stop(b);
    sq_watch_close(b);
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(b->stmt[i]);
    sqlite3_close(b->db);
    free(b);
}

static const char *sq_errmsg(const struct store *st)
{
    const struct sq *b = sq_const(st);
    return b->why[0] != '\0' ? b->why : sqlite3_errmsg(b->db);
}

/* ---- transactions ---- */

static void sq_set_budget(struct store *st, int budget_ms)
{
    sq_of(st)->budget_ms = budget_ms;
}

static void sq_write_stats(const struct store *st, uint64_t *statements, uint64_t *rows)
{
    const struct sq *b = sq_const(st);
    *statements = b->writes;
    *rows = (uint64_t)sqlite3_total_changes64(b->db);
}

static int64_t sq_journal_bytes(const struct store *st)
{
    char wal[sizeof sq_const(st)->path + 8];
    struct stat sb;
    snprintf(wal, sizeof wal, "%s-wal", sq_const(st)->path);
    return stat(wal, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static int sq_timed_out(const struct store *st)
{
    return sq_const(st)->timed_out;
}

/* The progress handler: interrupts a statement once the transaction's budget is spent. */
static int over_budget(void *arg)
{
    struct sq *b = arg;
    if (clock_mono_ms() <= b->deadline)
        return 0;
    b->timed_out = 1;
    return 1;
}

static enum store_rc sq_begin(struct store *st)
{
    struct sq *b = sq_of(st);
    b->timed_out = 0;
    b->in_tx = 0;
    if (b->budget_ms > 0) {
        b->deadline = clock_mono_ms() + b->budget_ms;
        sqlite3_progress_handler(b->db, 1000, over_budget, b);
    }
    enum store_rc rc = sq_run(b, sq_stmt(b, Q_BEGIN));
    b->in_tx = rc == STORE_OK;
    if (rc != STORE_OK && b->budget_ms > 0)
        sqlite3_progress_handler(b->db, 0, NULL, NULL);
    return rc;
}

static void sq_rollback(struct store *st)
{
    struct sq *b = sq_of(st);
    if (!sqlite3_get_autocommit(b->db))
        (void)sq_run(b, sq_stmt(b, Q_ROLLBACK));
    if (b->budget_ms > 0)
        sqlite3_progress_handler(b->db, 0, NULL, NULL);
    b->in_tx = 0;
}

/* Rolls back, keeping the reason of the failure that made it necessary. */
static void rollback_keeping_why(struct sq *b)
{
    char why[sizeof b->why];
    memcpy(why, b->why, sizeof why);
    sq_rollback(&b->base);
    memcpy(b->why, why, sizeof why);
}

static enum store_rc sq_commit(struct store *st)
{
    struct sq *b = sq_of(st);
    enum store_rc rc;
    if (sq_file_replaced(b)) {
        rc = STORE_GONE;
    } else {
        rc = sq_run(b, sq_stmt(b, Q_COMMIT));
    }
    if (rc != STORE_OK)
        rollback_keeping_why(b); /* COMMIT's reason, not the ROLLBACK's */
    else if (b->budget_ms > 0)
        sqlite3_progress_handler(b->db, 0, NULL, NULL);
    b->in_tx = 0;
    return rc;
}

static int sq_tx_aborted(const struct store *st)
{
    const struct sq *b = sq_const(st);
    return b->in_tx && sqlite3_get_autocommit(b->db);
}

/* 1 if path is not the file (dev, ino) any more; a first look (ino 0) only records it. */
static int moved(const char *path, dev_t *dev, ino_t *ino)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return (errno == ENOENT || errno == ENOTDIR) && *ino != 0;
    if (*ino == 0) {
        *dev = sb.st_dev;
        *ino = sb.st_ino;
        return 0;
    }
    return sb.st_dev != *dev || sb.st_ino != *ino;
}

/*
 * The database file by SQLITE_FCNTL_HAS_MOVED (renamed, moved or deleted
 * since it was opened); its -wal by our own stat, as SQLite's check does not
 * look at it: a lost -wal takes every commit since the last checkpoint with it.
 * The reason is kept for store_errmsg.
 */
int sq_file_replaced(struct sq *b)
{
    int db_moved = 0;
    if (sqlite3_file_control(b->db, "main", SQLITE_FCNTL_HAS_MOVED, &db_moved) != SQLITE_OK)
        db_moved = 0;
    char wal[sizeof b->path + 8];
    snprintf(wal, sizeof wal, "%s-wal", b->path);
    if (!moved(wal, &b->wal_dev, &b->wal_ino) && !db_moved)
        return 0;
    snprintf(b->why, sizeof b->why, "the database %.180s or its -wal file was removed or replaced",
             b->path);
    return 1;
}

static const struct store_ops sqlite_ops = {
    .version = STORE_OPS_VERSION,
    .name = "sqlite",
    .close = sq_close,
    .errmsg = sq_errmsg,
    .set_budget = sq_set_budget,
    .timed_out = sq_timed_out,
    .write_stats = sq_write_stats,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .tx_aborted = sq_tx_aborted,
    .watch_start = sq_watch_start,
    .watch_fd = sq_watch_fd,
    .poll_due_us = sq_poll_due_us,
    .poll = sq_poll,
    .recover_sending = sq_recover_sending,
    .outbound_pending = sq_outbound_pending,
    .outbound_exclude = sq_outbound_exclude,
    .outbound_skip = sq_outbound_skip,
    .outbound_expire = sq_outbound_expire,
    .outbound_payloads = sq_outbound_payloads,
    .outbound_load_sent = sq_outbound_load_sent,
    .outbound_get_sent = sq_outbound_get_sent,
    .outbound_take = sq_outbound_take,
    .outbound_sent = sq_outbound_sent,
    .outbound_failed = sq_outbound_failed,
    .outbound_acked = sq_outbound_acked,
    .outbound_claim = sq_outbound_claim,
    .outbound_identify = sq_outbound_identify,
    .outbound_release = sq_outbound_release,
    .inbound_insert = sq_inbound_insert,
    .inbound_ack_sent = sq_inbound_ack_sent,
    .inbound_ack_sent_rows = sq_inbound_ack_sent_rows,
    .inbound_ack_failed = sq_inbound_ack_failed,
    .inbound_unacked = sq_inbound_unacked,
    .max_id = sq_max_id,
    .enqueue = sq_enqueue,
    .outbound_state = sq_outbound_state,
    .select = sq_select,
    .fetch = sq_fetch,
    .unmark = sq_unmark,
    .purge_count = sq_purge_count,
    .purge_unreadable = sq_purge_unreadable,
    .purge = sq_purge,
    .vacuum = sq_vacuum,
    .outbound_exclude_peers = sq_outbound_exclude_peers,
    .outbound_expire_peer = sq_outbound_expire_peer,
    .outbound_requeue = sq_outbound_requeue,
    .sequence_load = sq_sequence_load,
    .sequence_save = sq_sequence_save,
    .journal_bytes = sq_journal_bytes,
    .count_states = sq_count_states,
};
