/*
 * sqlite_open: what the SQLite backend checks when it opens a database: that
 * the file is one (or, for the daemon, may become one), that it is ours
 * before anything is written to it, that it is sound (PRAGMA quick_check) and
 * writable, in WAL mode; and what it sets up: missing tables, the columns
 * and tables added since the original (read_count, peer, sequence,
 * peer_sequence), this connection's own temp tables.
 */
#define _GNU_SOURCE
#include "store/sqlite_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/clock.h"
#include "schema.h" /* generated from data/schema.sql: static const char schema_sql[] */

/* This connection's own tables: what the claim leaves out. */
static const char temp_schema[] =
    "CREATE TEMP TABLE IF NOT EXISTS sg_blocked (addr TEXT NOT NULL, port INTEGER NOT NULL, "
    "PRIMARY KEY (addr, port)) WITHOUT ROWID;"
    "CREATE TEMP TABLE IF NOT EXISTS sg_blocked_peer (name TEXT PRIMARY KEY) WITHOUT ROWID;"
    "CREATE TEMP TABLE IF NOT EXISTS sg_skip (id INTEGER PRIMARY KEY);";

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

/*
 * Columns added since the original's schema, in the order they came: an old
 * database gets each one it lacks (ALTER TABLE ... ADD COLUMN appends it, so
 * its rows keep every value and scripts that name their columns see no
 * change).
 */
static const struct {
    const char *table, *column, *add;
} added_columns[] = {
    {"inbound_messages", "read_count",
     "ALTER TABLE inbound_messages ADD COLUMN read_count INTEGER NOT NULL DEFAULT 0"},
    {"outbound_messages", "peer", "ALTER TABLE outbound_messages ADD COLUMN peer TEXT"},
    {"inbound_messages", "peer", "ALTER TABLE inbound_messages ADD COLUMN peer TEXT"},
    {"outbound_messages", "sequence", "ALTER TABLE outbound_messages ADD COLUMN sequence INTEGER"},
    {"inbound_messages", "sequence", "ALTER TABLE inbound_messages ADD COLUMN sequence INTEGER"},
};

#define NADDED (sizeof added_columns / sizeof added_columns[0])

/* Tables added since the original's schema: data/schema.sql creates them (IF NOT EXISTS). */
static const char *const added_tables[] = {"peer_sequence"};

/* 1 if the table is there, 0 if not, -1 if it cannot be told. */
static int has_table(sqlite3 *db, const char *table)
{
    sqlite3_stmt *s = NULL;
    int found = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
        if (sqlite3_step(s) == SQLITE_ROW)
            found = sqlite3_column_int(s, 0) > 0;
    }
    sqlite3_finalize(s);
    return found;
}

/* 1 if one of added_columns or added_tables is missing (0 if not, or if it cannot be told). */
static int additions_missing(sqlite3 *db)
{
    for (size_t k = 0; k < NADDED; k++)
        if (has_column(db, added_columns[k].table, added_columns[k].column) == 0)
            return 1;
    for (size_t k = 0; k < sizeof added_tables / sizeof added_tables[0]; k++)
        if (has_table(db, added_tables[k]) == 0)
            return 1;
    return 0;
}

/*
 * Creates tables and indexes if missing (added_tables among them) and adds
 * the columns of added_columns to old tables. Returns SQLITE_OK, or the
 * failing code (err written).
 */
static int ensure_schema(sqlite3 *db, int complete, char *err, size_t errlen)
{
    /*
     * Making a table or adding columns: one transaction, so that what cannot
     * be completed leaves the file as it was. Every table there with every
     * column already: no lock is needed (the tools must open a database
     * another process holds locked). The columns are looked at again once
     * the lock is held: another process may have added them meanwhile.
     */
    if ((!complete || additions_missing(db)) &&
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_exec(db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    for (size_t k = 0; k < NADDED; k++)
        if (has_column(db, added_columns[k].table, added_columns[k].column) == 0 &&
            sqlite3_exec(db, added_columns[k].add, NULL, NULL, NULL) != SQLITE_OK)
            goto fail;
    if (!sqlite3_get_autocommit(db) && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    return SQLITE_OK;
fail:;
    int rc = sqlite3_extended_errcode(db);
    snprintf(err, errlen, "cannot set up the tables: %s", sqlite3_errmsg(db));
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc != SQLITE_OK ? rc : SQLITE_ERROR;
}

/* Stops a statement once its time budget (a deadline in CLOCK_MONOTONIC ms) has passed. */
static int past_deadline(void *arg)
{
    return clock_mono_ms() > *(int64_t *)arg;
}

/*
 * PRAGMA quick_check within budget_ms: refuses a corrupt database at start
 * rather than failing on some later write. A database too large to check in
 * the budget is used unchecked (returns 1). Returns 0 if sound, -1 if not.
 */
static int quick_check(sqlite3 *db, const char *path, int budget_ms, char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + budget_ms;
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
 * missing; -2 if it cannot be read (err set: not a database, damaged, locked).
 */
static int schema_kind(sqlite3 *db, const char *path, char *missing, size_t mlen, int *code,
                       char *err, size_t errlen)
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
        *code = sqlite3_errcode(db);
        snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(db));
    }
    sqlite3_finalize(s);
    return kind;
}

/* The file at path, looked at before SQLite opens it. STORE_OK, or the refusal (err set). */
enum store_rc sq_check_file(const char *path, enum store_open_mode mode, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (mode == STORE_CREATE)
            return precreate(path, err, errlen) == 0 ? STORE_OK : STORE_ERR;
        if (errno == ENOENT) {
            snprintf(err, errlen, "database not found: %s", path);
            return STORE_GONE;
        }
        snprintf(err, errlen, "cannot use database %s: %s", path, strerror(errno));
        return STORE_ERR;
    }
    if (mode == STORE_EXISTING && !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "cannot use database %s: not a regular file", path);
        return STORE_ERR;
    }
    return STORE_OK;
}

/* Sets the connection up; returns SQLITE_OK or the failing code (err written). */
int sq_setup(struct sq *b, const char *path, enum store_open_mode mode, int busy_ms, char *err,
             size_t errlen)
{
    sqlite3_busy_timeout(b->db, busy_ms);
    sqlite3_extended_result_codes(b->db, 1); /* to tell UNIQUE from other constraints */
    /*
     * The daemon may make its tables in a new or empty file, or one of them
     * beside the other; the tools only open a database with both; nobody
     * writes to someone else's.
     */
    char missing[80] = "";
    int code = SQLITE_ERROR;
    int kind = schema_kind(b->db, path, missing, sizeof missing, &code, err, errlen);
    if (kind == -2)
        return code != SQLITE_OK ? code : SQLITE_ERROR;
    if (kind < 0 || (kind < 2 && mode != STORE_CREATE)) {
        snprintf(err, errlen, "%s is not a securedgram database (%s)", path, missing);
        return SQLITE_ERROR;
    }
    sqlite3_stmt *s = NULL;
    const char *jm = NULL;
    if (sqlite3_prepare_v2(b->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK ||
        sqlite3_step(s) != SQLITE_ROW || (jm = (const char *)sqlite3_column_text(s, 0)) == NULL ||
        strcmp(jm, "wal") != 0) {
        int rc = jm != NULL ? SQLITE_ERROR : sqlite3_errcode(b->db);
        snprintf(err, errlen, "cannot use database %s: %s", path,
                 jm != NULL ? "it cannot be switched to WAL mode" : sqlite3_errmsg(b->db));
        sqlite3_finalize(s);
        return rc != SQLITE_OK ? rc : SQLITE_ERROR;
    }
    sqlite3_finalize(s);
    /* the daemon's page cache: 1 MiB, not SQLite's 2 (the hot pages are the B-trees' right
     * edges; make bench: peak RSS 15.7 MB against its 16 MB target, throughput unchanged) */
    const char *pragmas = mode == STORE_CREATE
                              ? "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -1024"
                              : "PRAGMA synchronous = NORMAL";
    if (sqlite3_exec(b->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(b->db));
        return sqlite3_errcode(b->db);
    }
    if (sqlite3_db_readonly(b->db, "main") == 1) {
        snprintf(err, errlen, "cannot use database %s: it is read-only for this user", path);
        return SQLITE_READONLY;
    }
    err[0] = '\0';
    if (mode == STORE_CREATE && quick_check(b->db, path, STORE_CHECK_BUDGET_MS, err, errlen) < 0)
        return SQLITE_CORRUPT;
    int rc = ensure_schema(b->db, kind == 2, err, errlen);
    if (rc != SQLITE_OK)
        return rc;
    if (sqlite3_exec(b->db, temp_schema, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot use database %s: %s", path, sqlite3_errmsg(b->db));
        return sqlite3_errcode(b->db);
    }
    return SQLITE_OK;
}
