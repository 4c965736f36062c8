/*
 * Unit tests for store.[ch] on real SQLite files in fresh temporary
 * directories. A second, raw sqlite3 connection plays the part of the
 * scripts and tools that share the database: it inserts rows, inspects
 * them, and holds locks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ID1 "a1b2c3d4e5f60718293a4b5c"
#define ID2 "0123456789abcdef01234567"
#define ID3 "ffeeddccbbaa998877665544"

struct fx {
    char dir[64];
    char path[128];
    struct store *st;
    sqlite3 *raw;
};

/* ---- raw SQL helpers ---- */

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", msg != NULL ? msg : "?");
        sqlite3_free(msg);
        fail_msg("%s: %s", sql, copy);
    }
}

/* The first column of the first row of sql as text (into out), or 0 if NULL / no row. */
__attribute__((format(printf, 4, 5))) static int qtext(sqlite3 *db, char *out, size_t outlen,
                                                       const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int rc = sqlite3_step(s);
    int have = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
    out[0] = '\0';
    if (have)
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(s, 0));
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(s);
    return have;
}

__attribute__((format(printf, 2, 3))) static int64_t qint(sqlite3 *db, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(s) != SQLITE_ROW)
        fail_msg("%s: no row", sql);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* A column of one outbound or inbound row, as text ("" and 0 when NULL). */
static int col(sqlite3 *db, const char *table, int64_t id, const char *column, char *out,
               size_t outlen)
{
    return qtext(db, out, outlen, "SELECT %s FROM %s WHERE id = %lld", column, table,
                 (long long)id);
}

static void assert_col(sqlite3 *db, const char *table, int64_t id, const char *column,
                       const char *want)
{
    char got[512];
    int have = col(db, table, id, column, got, sizeof got);
    if (want == NULL) {
        if (have)
            fail_msg("%s.%s of row %lld is '%s', expected NULL", table, column, (long long)id, got);
        return;
    }
    if (!have)
        fail_msg("%s.%s of row %lld is NULL, expected '%s'", table, column, (long long)id, want);
    if (strcmp(got, want) != 0)
        fail_msg("%s.%s of row %lld is '%s', expected '%s'", table, column, (long long)id, got,
                 want);
}

#define T_OUT "outbound_messages"
#define T_IN "inbound_messages"

/* YYYY-MM-DDTHH:MM:SS.SSS, as the original writes it. */
static int is_store_time(const char *s)
{
    const char *pat = "dddd-dd-ddTdd:dd:dd.ddd";
    if (strlen(s) != strlen(pat))
        return 0;
    for (size_t i = 0; pat[i] != '\0'; i++)
        if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
            return 0;
    return 1;
}

static void assert_time_col(sqlite3 *db, const char *table, int64_t id, const char *column)
{
    char got[128];
    if (!col(db, table, id, column, got, sizeof got))
        fail_msg("%s.%s of row %lld is NULL, expected a time", table, column, (long long)id);
    if (!is_store_time(got))
        fail_msg("%s.%s of row %lld is '%s', not YYYY-MM-DDTHH:MM:SS.SSS", table, column,
                 (long long)id, got);
    /* and it is today's UTC date (no local time) */
    char today[16];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(today, sizeof today, "%Y-%m-%d", &tm);
    if (strncmp(got, today, 10) != 0 && now % 86400 > 60)
        fail_msg("%s.%s '%s' is not today (UTC %s)", table, column, got, today);
}

/* Inserts an outbound row the way a script does; returns its id. */
static int64_t add_out(sqlite3 *db, const char *state, const char *message_id, const char *payload)
{
    char sql[1024];
    if (message_id != NULL)
        snprintf(sql, sizeof sql,
                 "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state) "
                 "VALUES ('%s', '127.0.0.1', 9000, '%s', '%s')",
                 message_id, payload, state);
    else
        snprintf(sql, sizeof sql,
                 "INSERT INTO outbound_messages (dst_addr, dst_port, payload, state) "
                 "VALUES ('127.0.0.1', 9000, '%s', '%s')",
                 payload, state);
    exec(db, sql);
    return sqlite3_last_insert_rowid(db);
}

/* ---- fixture ---- */

static void cleanup_dir(const char *dir)
{
    const char *names[] = {"test.db", "test.db-wal", "test.db-shm", "test.db-journal",
                           "old.db",  "old.db-wal",  "old.db-shm",  "junk.db"};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static int fx_dir(struct fx *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/sg-test-store.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
    return 0;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL || fx_dir(f) != 0)
        return -1;
    char err[256] = "";
    f->st = store_open(f->path, STORE_CREATE, 50, err, sizeof err);
    if (f->st == NULL) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    if (sqlite3_open_v2(f->path, &f->raw, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(f->raw, 2000);
    *state = f;
    return 0;
}

/* Only a directory: the test makes its own database. */
static int setup_dir(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL || fx_dir(f) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        return 0;
    store_close(f->st);
    if (f->raw != NULL)
        sqlite3_close(f->raw);
    cleanup_dir(f->dir);
    free(f);
    return 0;
}

/* ---- collecting rows from callbacks ---- */

#define MAX_ROWS 16

struct out_rows {
    int n;
    struct {
        int64_t rowid;
        int has_id;
        char message_id[64];
        char dst_addr[64];
        int64_t dst_port;
        char dst_port_text[32];
        char payload[256];
        size_t payload_len;
        int64_t retry_count;
        int64_t age_ms;
    } r[MAX_ROWS];
};

static void collect_out(void *ctx, const struct store_outbound_row *row)
{
    struct out_rows *c = ctx;
    assert_true(c->n < MAX_ROWS);
    assert_non_null(row->dst_addr);
    c->r[c->n].rowid = row->rowid;
    c->r[c->n].has_id = row->message_id != NULL;
    snprintf(c->r[c->n].message_id, 64, "%s", row->message_id != NULL ? row->message_id : "");
    snprintf(c->r[c->n].dst_addr, 64, "%s", row->dst_addr);
    c->r[c->n].dst_port = row->dst_port;
    assert_non_null(row->dst_port_text);
    snprintf(c->r[c->n].dst_port_text, 32, "%s", row->dst_port_text);
    snprintf(c->r[c->n].payload, 256, "%s", row->payload != NULL ? row->payload : "(none)");
    c->r[c->n].payload_len = row->payload_len;
    c->r[c->n].retry_count = row->retry_count;
    c->r[c->n].age_ms = row->age_ms;
    c->n++;
}

struct in_rows {
    int n;
    struct {
        int64_t rowid;
        char message_id[64];
        char src_addr[64];
        int64_t src_port;
    } r[MAX_ROWS];
};

static void collect_in(void *ctx, const struct store_inbound_row *row)
{
    struct in_rows *c = ctx;
    assert_true(c->n < MAX_ROWS);
    c->r[c->n].rowid = row->rowid;
    snprintf(c->r[c->n].message_id, 64, "%s", row->message_id);
    snprintf(c->r[c->n].src_addr, 64, "%s", row->src_addr);
    c->r[c->n].src_port = row->src_port;
    c->n++;
}

/* ---- open ---- */

struct column_spec {
    const char *name, *type;
    int notnull;
    const char *dflt; /* NULL: no check */
    int pk;
};

static void assert_columns(sqlite3 *db, const char *table, const struct column_spec *want, size_t n)
{
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", table);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    size_t i = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (i >= n)
            fail_msg("%s has an extra column %s", table, sqlite3_column_text(s, 1));
        const char *name = (const char *)sqlite3_column_text(s, 1);
        const char *type = (const char *)sqlite3_column_text(s, 2);
        if (strcmp(name, want[i].name) != 0)
            fail_msg("%s column %zu is %s, expected %s", table, i, name, want[i].name);
        if (strcmp(type, want[i].type) != 0)
            fail_msg("%s.%s is %s, expected %s", table, name, type, want[i].type);
        if (sqlite3_column_int(s, 3) != want[i].notnull)
            fail_msg("%s.%s NOT NULL is %d", table, name, sqlite3_column_int(s, 3));
        if (want[i].dflt != NULL) {
            const char *d = (const char *)sqlite3_column_text(s, 4);
            if (d == NULL || strcmp(d, want[i].dflt) != 0)
                fail_msg("%s.%s default is %s, expected %s", table, name, d ? d : "NULL",
                         want[i].dflt);
        }
        if (sqlite3_column_int(s, 5) != want[i].pk)
            fail_msg("%s.%s pk is %d", table, name, sqlite3_column_int(s, 5));
        i++;
    }
    sqlite3_finalize(s);
    assert_int_equal(i, n);
}

static void assert_index(sqlite3 *db, const char *table, const char *index, int unique,
                         const char *column)
{
    char buf[64];
    if (!qtext(db, buf, sizeof buf,
               "SELECT name FROM sqlite_master WHERE type = 'index' AND name = '%s' AND "
               "tbl_name = '%s'",
               index, table))
        fail_msg("index %s on %s missing", index, table);
    assert_int_equal(
        qint(db, "SELECT \"unique\" FROM pragma_index_list('%s') WHERE name = '%s'", table, index),
        unique);
    qtext(db, buf, sizeof buf, "SELECT name FROM pragma_index_info('%s')", index);
    assert_string_equal(buf, column);
}

static void test_open_creates_schema(void **state)
{
    struct fx *f = *state;
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    /* the WAL file holds message text too */
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    if (stat(wal, &sb) == 0)
        assert_int_equal(sb.st_mode & 07777, 0600);

    static const struct column_spec out_cols[] = {
        {"id", "INTEGER", 0, NULL, 1},         {"message_id", "TEXT", 0, NULL, 0},
        {"dst_addr", "TEXT", 1, NULL, 0},      {"dst_port", "INTEGER", 1, NULL, 0},
        {"payload", "TEXT", 1, NULL, 0},       {"state", "TEXT", 1, "'pending'", 0},
        {"retry_count", "INTEGER", 1, "0", 0}, {"created_at", "TEXT", 1, NULL, 0},
        {"sent_at", "TEXT", 0, NULL, 0},       {"ack_received_at", "TEXT", 0, NULL, 0},
        {"last_error", "TEXT", 0, NULL, 0},    {"updated_at", "TEXT", 1, NULL, 0},
    };
    static const struct column_spec in_cols[] = {
        {"id", "INTEGER", 0, NULL, 1},         {"message_id", "TEXT", 1, NULL, 0},
        {"src_addr", "TEXT", 1, NULL, 0},      {"src_port", "INTEGER", 1, NULL, 0},
        {"payload", "TEXT", 1, NULL, 0},       {"crypto_timestamp", "TEXT", 1, NULL, 0},
        {"state", "TEXT", 1, "'received'", 0}, {"ack_sent", "INTEGER", 1, "0", 0},
        {"read_count", "INTEGER", 1, "0", 0},  {"received_at", "TEXT", 1, NULL, 0},
        {"ack_sent_at", "TEXT", 0, NULL, 0},   {"updated_at", "TEXT", 1, NULL, 0},
    };
    assert_columns(f->raw, T_OUT, out_cols, sizeof out_cols / sizeof out_cols[0]);
    assert_columns(f->raw, T_IN, in_cols, sizeof in_cols / sizeof in_cols[0]);
    assert_index(f->raw, T_OUT, "idx_outbound_message_id", 1, "message_id");
    assert_index(f->raw, T_OUT, "idx_outbound_state", 0, "state");
    assert_index(f->raw, T_IN, "idx_inbound_message_id", 1, "message_id");
    assert_index(f->raw, T_IN, "idx_inbound_state", 0, "state");
    char buf[1024];
    assert_true(qtext(f->raw, buf, sizeof buf,
                      "SELECT sql FROM sqlite_master WHERE name = 'outbound_messages'"));
    assert_non_null(strstr(buf, "AUTOINCREMENT"));
    assert_true(qtext(f->raw, buf, sizeof buf,
                      "SELECT sql FROM sqlite_master WHERE name = 'inbound_messages'"));
    assert_non_null(strstr(buf, "AUTOINCREMENT"));
    qtext(f->raw, buf, sizeof buf, "PRAGMA journal_mode");
    assert_string_equal(buf, "wal");

    /* a script's minimal insert gets the documented defaults */
    exec(f->raw, "INSERT INTO outbound_messages (dst_addr, dst_port, payload) "
                 "VALUES ('10.0.0.1', 1, '{}')");
    int64_t id = sqlite3_last_insert_rowid(f->raw);
    assert_col(f->raw, T_OUT, id, "state", "pending");
    assert_col(f->raw, T_OUT, id, "retry_count", "0");
    assert_col(f->raw, T_OUT, id, "message_id", NULL);
    assert_time_col(f->raw, T_OUT, id, "created_at");
    assert_time_col(f->raw, T_OUT, id, "updated_at");
}

static void test_open_again_keeps_data(void **state)
{
    struct fx *f = *state;
    int64_t id = add_out(f->raw, "pending", ID1, "{\"a\":1}");
    store_close(f->st);
    char err[256] = "";
    f->st = store_open(f->path, STORE_CREATE, 50, err, sizeof err);
    assert_non_null(f->st);
    struct store *tool = store_open(f->path, STORE_EXISTING, 50, err, sizeof err);
    assert_non_null(tool);
    struct out_rows rows = {0};
    assert_int_equal(store_outbound_pending(tool, 10, collect_out, &rows), 1);
    assert_int_equal(rows.r[0].rowid, id);
    assert_string_equal(rows.r[0].message_id, ID1);
    store_close(tool);
    store_close(NULL);
}

static void test_open_existing_missing(void **state)
{
    struct fx *f = *state;
    char path[192];
    snprintf(path, sizeof path, "%s/missing.db", f->dir);
    char err[256] = "";
    assert_null(store_open(path, STORE_EXISTING, 50, err, sizeof err));
    assert_non_null(strstr(err, "not found"));
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); /* not created */
    /* nor in a directory that does not exist, for either mode */
    snprintf(path, sizeof path, "%s/no/such/dir.db", f->dir);
    err[0] = '\0';
    assert_null(store_open(path, STORE_CREATE, 50, err, sizeof err));
    assert_true(err[0] != '\0');
}

static void test_open_not_a_database(void **state)
{
    struct fx *f = *state;
    char path[192];
    snprintf(path, sizeof path, "%s/junk.db", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database. ", fp);
    fclose(fp);
    char err[256] = "";
    assert_null(store_open(path, STORE_EXISTING, 50, err, sizeof err));
    assert_true(err[0] != '\0');
    err[0] = '\0';
    assert_null(store_open(path, STORE_CREATE, 50, err, sizeof err));
    assert_true(err[0] != '\0');
}

/* A database the original created before read_count existed gets the column. */
static void test_open_migrates_read_count(void **state)
{
    struct fx *f = *state;
    snprintf(f->path, sizeof f->path, "%s/old.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    exec(db, "CREATE TABLE inbound_messages ("
             " id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL,"
             " src_addr TEXT NOT NULL, src_port INTEGER NOT NULL, payload TEXT NOT NULL,"
             " crypto_timestamp TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'received',"
             " ack_sent INTEGER NOT NULL DEFAULT 0,"
             " received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')),"
             " ack_sent_at TEXT,"
             " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')));"
             "CREATE UNIQUE INDEX idx_inbound_message_id ON inbound_messages (message_id);"
             "CREATE TABLE outbound_messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
             " message_id TEXT, dst_addr TEXT NOT NULL, dst_port INTEGER NOT NULL,"
             " payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
             " retry_count INTEGER NOT NULL DEFAULT 0,"
             " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')),"
             " sent_at TEXT, ack_received_at TEXT, last_error TEXT,"
             " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')));"
             "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload,"
             " crypto_timestamp, state, ack_sent) VALUES ('" ID1 "', '10.1.1.1', 5000,"
             " '{\"old\":true}', '2024-01-01T00:00:00.000000000', 'ack_sent', 1);");
    sqlite3_close(db);

    char err[256] = "";
    f->st = store_open(f->path, STORE_EXISTING, 50, err, sizeof err);
    if (f->st == NULL)
        fail_msg("store_open: %s", err);
    assert_int_equal(sqlite3_open_v2(f->path, &f->raw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM pragma_table_info('inbound_messages') "
                                  "WHERE name = 'read_count'"),
                     1);
    assert_int_equal(qint(f->raw, "SELECT read_count FROM inbound_messages WHERE message_id = "
                                  "'" ID1 "'"),
                     0);
    assert_col(f->raw, T_IN, 1, "payload", "{\"old\":true}");
    assert_col(f->raw, T_IN, 1, "state", "ack_sent");
    /* the outbound table was missing and is made */
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM sqlite_master WHERE name = "
                                  "'outbound_messages'"),
                     1);
    /* and the store works on it */
    enum store_in_result is_new = (enum store_in_result) - 1;
    assert_int_equal(store_inbound_insert(f->st, ID2, "10.1.1.2", 5001, "{}", 2, 1, &is_new),
                     STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW);
    /* opening it again does not try to add the column twice */
    store_close(f->st);
    f->st = store_open(f->path, STORE_EXISTING, 50, err, sizeof err);
    if (f->st == NULL)
        fail_msg("second store_open: %s", err);
}

/* ---- outbound ---- */

static void test_outbound_pending(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f->raw, "pending", NULL, "{\"n\":1}");
    int64_t s = add_out(f->raw, "sent", ID1, "{\"n\":2}");
    int64_t b = add_out(f->raw, "pending", ID2, "{\"n\":3}");
    add_out(f->raw, "send_failed", NULL, "{\"n\":4}");
    int64_t c = add_out(f->raw, "pending", NULL, "{\"n\":5}");
    int64_t d = add_out(f->raw, "pending", NULL, "{\"n\":6}");
    (void)s;
    exec(f->raw, "UPDATE outbound_messages SET retry_count = 3, dst_port = 61773, "
                 "dst_addr = '192.168.1.9' WHERE id = 3");

    struct out_rows rows = {0};
    assert_int_equal(store_outbound_pending(f->st, 3, collect_out, &rows), 3);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.r[0].rowid, a);
    assert_int_equal(rows.r[1].rowid, b);
    assert_int_equal(rows.r[2].rowid, c);
    assert_int_equal(rows.r[0].has_id, 0);
    assert_int_equal(rows.r[1].has_id, 1);
    assert_string_equal(rows.r[1].message_id, ID2);
    assert_string_equal(rows.r[0].dst_addr, "127.0.0.1");
    assert_int_equal(rows.r[0].dst_port, 9000);
    assert_string_equal(rows.r[0].payload, "(none)"); /* read by store_outbound_payload */
    assert_string_equal(rows.r[1].dst_addr, "192.168.1.9");
    assert_int_equal(rows.r[1].dst_port, 61773);
    assert_int_equal(rows.r[1].retry_count, 3);

    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_pending(f->st, 100, collect_out, &rows), 4);
    assert_int_equal(rows.r[3].rowid, d);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_pending(f->st, 1, collect_out, &rows), 1);
    assert_int_equal(rows.r[0].rowid, a);
    /* a script's bad dst_port is reported as -1, with the text kept for the error */
    exec(f->raw, "UPDATE outbound_messages SET dst_port = 'abc' WHERE id = 1");
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_pending(f->st, 1, collect_out, &rows), 1);
    assert_int_equal(rows.r[0].dst_port, -1);
    assert_string_equal(rows.r[0].dst_port_text, "abc");
    exec(f->raw, "UPDATE outbound_messages SET dst_port = '9001' WHERE id = 1");
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_pending(f->st, 1, collect_out, &rows), 1);
    assert_int_equal(rows.r[0].dst_port, 9001);
    assert_string_equal(rows.r[0].dst_port_text, "9001");
    /* nothing pending */
    exec(f->raw, "UPDATE outbound_messages SET state = 'send_failed'");
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_pending(f->st, 10, collect_out, &rows), 0);
    assert_int_equal(rows.n, 0);
}

/*
 * Rows for destinations the engine names (their windows are full) are left
 * out, however many there are, and so are rows it skips; both sets survive a
 * rolled-back transaction.
 */
static void test_outbound_pending_exclude(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f->raw, "pending", NULL, "{}"); /* 127.0.0.1:9000 */
    int64_t b = add_out(f->raw, "pending", NULL, "{}");
    int64_t c = add_out(f->raw, "pending", NULL, "{}");
    int64_t d = add_out(f->raw, "pending", NULL, "{}");
    exec(f->raw, "UPDATE outbound_messages SET dst_addr = '10.0.0.1' WHERE id = 2");
    exec(f->raw, "UPDATE outbound_messages SET dst_port = 9001 WHERE id = 3");
    exec(f->raw, "UPDATE outbound_messages SET dst_addr = '10.0.0.2', dst_port = 7 WHERE id = 4");

    struct store_dest ex[2] = {{"127.0.0.1", 9000}, {"10.0.0.2", 7}};
    struct out_rows rows = {0};
    assert_int_equal(store_outbound_exclude(f->st, ex, 1), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, collect_out, &rows), 3);
    assert_int_equal(rows.r[0].rowid, b);
    assert_int_equal(rows.r[1].rowid, c); /* same address, other port: not excluded */
    assert_int_equal(rows.r[2].rowid, d);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_exclude(f->st, ex, 2), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, collect_out, &rows), 2);
    assert_int_equal(rows.r[0].rowid, b);
    assert_int_equal(rows.r[1].rowid, c);
    /* the limit counts rows after the exclusion */
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_pending(f->st, 1, collect_out, &rows), 1);
    assert_int_equal(rows.r[0].rowid, b);
    /* a skipped row is left out too, and a rollback keeps both sets */
    assert_int_equal(store_outbound_skip(f->st, b), STORE_OK);
    assert_int_equal(store_begin(f->st), STORE_OK);
    store_rollback(f->st);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_pending(f->st, 10, collect_out, &rows), 1);
    assert_int_equal(rows.r[0].rowid, c);
    /* and without exclusions everything not skipped is back, in order */
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_exclude(f->st, ex, 0), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, collect_out, &rows), 3);
    assert_int_equal(rows.r[0].rowid, a);
    assert_int_equal(rows.r[2].rowid, d);
}

/* Far more excluded destinations than the old fixed cap of 8: a live row is still found. */
static void test_outbound_pending_many_excluded(void **state)
{
    struct fx *f = *state;
    struct store_dest ex[40];
    for (int i = 0; i < 40; i++) {
        char sql[200];
        snprintf(sql, sizeof sql,
                 "INSERT INTO outbound_messages (dst_addr, dst_port, payload) "
                 "VALUES ('127.0.0.1', %d, '{}')",
                 10000 + i);
        for (int k = 0; k < 20; k++)
            exec(f->raw, sql);
        ex[i] = (struct store_dest){"127.0.0.1", 10000 + i};
    }
    int64_t live = add_out(f->raw, "pending", NULL, "{}");
    assert_int_equal(store_outbound_exclude(f->st, ex, 40), STORE_OK);
    struct out_rows rows = {0};
    assert_int_equal(store_outbound_pending(f->st, 5, collect_out, &rows), 1);
    assert_int_equal(rows.r[0].rowid, live);
}

/* A payload is read only if it fits; a huge one is refused from its size alone. */
static void test_outbound_payload(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f->raw, "pending", NULL, "{\"x\":1}");
    int64_t big = add_out(f->raw, "pending", NULL, "{}");
    exec(f->raw, "UPDATE outbound_messages SET payload = CAST(zeroblob(50000000) AS TEXT) "
                 "WHERE id = 2");
    int64_t num = add_out(f->raw, "pending", NULL, "{}");
    exec(f->raw, "UPDATE outbound_messages SET payload = 42 WHERE id = 3");
    char *p = NULL;
    size_t len = 0;
    assert_int_equal(store_outbound_payload(f->st, a, 100, &p, &len), STORE_OK);
    assert_string_equal(p, "{\"x\":1}");
    assert_int_equal(len, 7);
    free(p);
    p = NULL;
    assert_int_equal(store_outbound_payload(f->st, a, 6, &p, &len), STORE_REFUSED);
    assert_null(p);
    assert_int_equal(store_outbound_payload(f->st, big, 65535, &p, &len), STORE_REFUSED);
    assert_int_equal(len, 50000000);
    assert_null(p);
    /* a number written by a script is text by the column's affinity */
    assert_int_equal(store_outbound_payload(f->st, num, 65535, &p, &len), STORE_OK);
    assert_string_equal(p, "42");
    free(p);
    p = NULL;
    assert_int_equal(store_outbound_payload(f->st, 999, 65535, &p, &len), STORE_GONE);
    assert_null(p);
}

/* Hostile columns: ports out of range, negative retry counts, NUL bytes in addresses. */
static void test_outbound_hostile_columns(void **state)
{
    struct fx *f = *state;
    add_out(f->raw, "pending", NULL, "{}");
    add_out(f->raw, "pending", NULL, "{}");
    add_out(f->raw, "pending", NULL, "{}");
    exec(f->raw, "UPDATE outbound_messages SET dst_port = 4294967296 + 9000 WHERE id = 1");
    exec(f->raw, "UPDATE outbound_messages SET retry_count = -1000000 WHERE id = 2");
    exec(f->raw, "UPDATE outbound_messages SET dst_addr = CAST(X'3132372e302e302e3100ff' AS BLOB) "
                 "WHERE id = 3");
    struct out_rows rows = {0};
    assert_int_equal(store_outbound_pending(f->st, 10, collect_out, &rows), 3);
    assert_int_equal(rows.r[0].dst_port, -1);
    assert_string_equal(rows.r[0].dst_port_text, "4294976296");
    assert_int_equal(rows.r[1].retry_count, 0);
    assert_int_equal(rows.r[1].dst_port, 9000);
    assert_string_equal(rows.r[2].dst_addr, STORE_BAD_TEXT);
    /* the same for a recovered inbound row */
    exec(f->raw, "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, "
                 "crypto_timestamp) VALUES ('" ID1 "', '127.0.0.1', 65536 + 7, '{}', 'x')");
    struct in_rows in = {0};
    assert_int_equal(store_inbound_unacked(f->st, 0, 10, collect_in, &in), 1);
    assert_int_equal(in.r[0].src_port, -1);
}

static void test_outbound_sending(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f->raw, "pending", NULL, "{\"a\":1}");
    int64_t b = add_out(f->raw, "pending", NULL, "{\"b\":1}");
    int64_t c = add_out(f->raw, "pending", ID3, "{\"message_id\":\"" ID3 "\"}");
    exec(f->raw, "UPDATE outbound_messages SET updated_at = '2000-01-01T00:00:00.000'");

    /* the payload text is taken by length, not up to a NUL */
    const char payload[] = "{\"message_id\":\"" ID1 "\",\"a\":1}TRAILING";
    size_t plen = strlen(payload) - strlen("TRAILING");
    assert_int_equal(store_outbound_sending(f->st, a, ID1, payload, plen), STORE_OK);
    assert_col(f->raw, T_OUT, a, "state", "sending");
    assert_col(f->raw, T_OUT, a, "message_id", ID1);
    assert_col(f->raw, T_OUT, a, "payload", "{\"message_id\":\"" ID1 "\",\"a\":1}");
    assert_time_col(f->raw, T_OUT, a, "updated_at");

    /* NULL payload: the row's payload stays */
    assert_int_equal(store_outbound_sending(f->st, c, ID3, NULL, 0), STORE_OK);
    assert_col(f->raw, T_OUT, c, "state", "sending");
    assert_col(f->raw, T_OUT, c, "payload", "{\"message_id\":\"" ID3 "\"}");

    /* another row already has this message_id */
    assert_int_equal(store_outbound_sending(f->st, b, ID1, "{}", 2), STORE_DUP);
    assert_col(f->raw, T_OUT, b, "state", "pending");
    assert_col(f->raw, T_OUT, b, "message_id", NULL);
    assert_col(f->raw, T_OUT, b, "payload", "{\"b\":1}");
    /* and the connection is still usable */
    assert_int_equal(store_outbound_sending(f->st, b, ID2, NULL, 0), STORE_OK);
    assert_col(f->raw, T_OUT, b, "state", "sending");
    assert_col(f->raw, T_OUT, b, "message_id", ID2);
}

static void test_outbound_sent(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f->raw, "sending", ID1, "{}");
    int64_t b = add_out(f->raw, "sending", ID2, "{}");
    int64_t p = add_out(f->raw, "pending", NULL, "{}");
    int64_t k = add_out(f->raw, "acknowledged", ID3, "{}");

    assert_int_equal(store_outbound_sent(f->st, a, 0, NULL), STORE_OK);
    assert_col(f->raw, T_OUT, a, "state", "sent");
    assert_col(f->raw, T_OUT, a, "retry_count", "0");
    assert_time_col(f->raw, T_OUT, a, "sent_at");
    assert_col(f->raw, T_OUT, a, "last_error", NULL);

    assert_int_equal(store_outbound_sent(f->st, b, 2, "sendto: Resource temporarily unavailable"),
                     STORE_OK);
    assert_col(f->raw, T_OUT, b, "state", "sent");
    assert_col(f->raw, T_OUT, b, "retry_count", "2");
    assert_col(f->raw, T_OUT, b, "last_error", "sendto: Resource temporarily unavailable");
    /* a later send without a reason keeps the earlier reason */
    assert_int_equal(store_outbound_sent(f->st, b, 3, NULL), STORE_OK);
    assert_col(f->raw, T_OUT, b, "retry_count", "3");
    assert_col(f->raw, T_OUT, b, "last_error", "sendto: Resource temporarily unavailable");

    /* a retransmission: sent -> sent, retry_count and sent_at move on */
    exec(f->raw, "UPDATE outbound_messages SET sent_at = '2000-01-01T00:00:00.000' WHERE id = 1");
    assert_int_equal(store_outbound_sent(f->st, a, 1, NULL), STORE_OK);
    assert_col(f->raw, T_OUT, a, "state", "sent");
    assert_col(f->raw, T_OUT, a, "retry_count", "1");
    char at[64];
    col(f->raw, T_OUT, a, "sent_at", at, sizeof at);
    assert_string_not_equal(at, "2000-01-01T00:00:00.000");
    assert_time_col(f->raw, T_OUT, a, "sent_at");

    /* pending and acknowledged rows are not made 'sent' */
    assert_int_equal(store_outbound_sent(f->st, p, 1, NULL), STORE_OK);
    assert_col(f->raw, T_OUT, p, "state", "pending");
    assert_col(f->raw, T_OUT, p, "sent_at", NULL);
    assert_int_equal(store_outbound_sent(f->st, k, 1, NULL), STORE_OK);
    assert_col(f->raw, T_OUT, k, "state", "acknowledged");
    assert_col(f->raw, T_OUT, k, "sent_at", NULL);
}

static void test_outbound_acked(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f->raw, "sent", ID1, "{}");
    int64_t b = add_out(f->raw, "sending", ID2, "{}");
    int64_t p = add_out(f->raw, "pending", ID3, "{}");
    int matched = -1;

    assert_int_equal(store_outbound_acked(f->st, a, &matched), STORE_OK);
    assert_int_equal(matched, 1);
    assert_col(f->raw, T_OUT, a, "state", "acknowledged");
    assert_time_col(f->raw, T_OUT, a, "ack_received_at");
    assert_time_col(f->raw, T_OUT, a, "updated_at");

    /* a second ACK for the same message (the peer re-ACKs a retransmission) */
    matched = -1;
    exec(f->raw, "UPDATE outbound_messages SET ack_received_at = '2000-01-01T00:00:00.000' "
                 "WHERE id = 1");
    assert_int_equal(store_outbound_acked(f->st, a, &matched), STORE_OK);
    assert_int_equal(matched, 0);
    assert_col(f->raw, T_OUT, a, "ack_received_at", "2000-01-01T00:00:00.000");

    /* an ACK for a row still in 'sending' (ACK raced our own bookkeeping) */
    matched = -1;
    assert_int_equal(store_outbound_acked(f->st, b, &matched), STORE_OK);
    assert_int_equal(matched, 1);
    assert_col(f->raw, T_OUT, b, "state", "acknowledged");

    /* unknown id, and a row not yet sent */
    matched = -1;
    assert_int_equal(store_outbound_acked(f->st, 9999, &matched), STORE_OK);
    assert_int_equal(matched, 0);
    matched = -1;
    assert_int_equal(store_outbound_acked(f->st, p, &matched), STORE_OK);
    assert_int_equal(matched, 0);
    assert_col(f->raw, T_OUT, p, "state", "pending");
    assert_col(f->raw, T_OUT, p, "ack_received_at", NULL);

    /* a failed row is terminal */
    exec(f->raw, "UPDATE outbound_messages SET state = 'send_failed' WHERE id = 3");
    matched = -1;
    assert_int_equal(store_outbound_acked(f->st, p, &matched), STORE_OK);
    assert_int_equal(matched, 0);
    assert_col(f->raw, T_OUT, p, "state", "send_failed");
}

static void test_outbound_failed(void **state)
{
    struct fx *f = *state;
    int64_t p = add_out(f->raw, "pending", NULL, "[1,2]");
    int64_t s = add_out(f->raw, "sending", ID1, "{}");
    int64_t t = add_out(f->raw, "sent", ID2, "{}");
    int64_t k = add_out(f->raw, "acknowledged", ID3, "{}");

    assert_int_equal(store_outbound_failed(f->st, p, 0, "payload is not a JSON object"), STORE_OK);
    assert_col(f->raw, T_OUT, p, "state", "send_failed");
    assert_col(f->raw, T_OUT, p, "last_error", "payload is not a JSON object");
    assert_time_col(f->raw, T_OUT, p, "updated_at");
    assert_int_equal(store_outbound_failed(f->st, s, 0, "sendto: Connection refused"), STORE_OK);
    assert_col(f->raw, T_OUT, s, "state", "send_failed");
    assert_int_equal(store_outbound_failed(f->st, t, 11, "max retries exceeded (no ACK)"),
                     STORE_OK);
    assert_col(f->raw, T_OUT, t, "state", "send_failed");
    assert_col(f->raw, T_OUT, t, "retry_count", "11");
    assert_col(f->raw, T_OUT, t, "last_error", "max retries exceeded (no ACK)");
    /* acknowledged stays acknowledged */
    assert_int_equal(store_outbound_failed(f->st, k, 11, "late"), STORE_OK);
    assert_col(f->raw, T_OUT, k, "state", "acknowledged");
    assert_col(f->raw, T_OUT, k, "last_error", NULL);
}

static void test_recover_sending(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f->raw, "sending", ID1, "{\"message_id\":\"" ID1 "\"}");
    int64_t b = add_out(f->raw, "sent", ID2, "{}");
    int64_t c = add_out(f->raw, "sending", ID3, "{}");
    int64_t d = add_out(f->raw, "pending", NULL, "{}");
    assert_int_equal(store_recover_sending(f->st), 2);
    assert_col(f->raw, T_OUT, a, "state", "pending");
    assert_col(f->raw, T_OUT, c, "state", "pending");
    assert_col(f->raw, T_OUT, b, "state", "sent");
    assert_col(f->raw, T_OUT, d, "state", "pending");
    /* the id stays, so a resend is recognised as a duplicate by the receiver */
    assert_col(f->raw, T_OUT, a, "message_id", ID1);
    assert_col(f->raw, T_OUT, a, "payload", "{\"message_id\":\"" ID1 "\"}");
    assert_int_equal(store_recover_sending(f->st), 0);
}

static void test_outbound_load_sent(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f->raw, "sent", ID1, "{\"a\":1}");
    add_out(f->raw, "pending", NULL, "{}");
    int64_t b = add_out(f->raw, "sent", ID2, "{\"b\":1}");
    int64_t c = add_out(f->raw, "sent", ID3, "{\"c\":1}");
    exec(f->raw, "UPDATE outbound_messages SET sent_at = "
                 "strftime('%Y-%m-%dT%H:%M:%f','now','-3 seconds'), retry_count = 2 WHERE id = 1");
    exec(f->raw, "UPDATE outbound_messages SET sent_at = "
                 "strftime('%Y-%m-%dT%H:%M:%f','now','-60 seconds') WHERE id = 3");
    exec(f->raw, "UPDATE outbound_messages SET sent_at = "
                 "strftime('%Y-%m-%dT%H:%M:%f','now') WHERE id = 4");

    struct out_rows rows = {0};
    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, collect_out, &rows), 3);
    assert_int_equal(rows.r[0].rowid, a);
    assert_int_equal(rows.r[1].rowid, b);
    assert_int_equal(rows.r[2].rowid, c);
    assert_string_equal(rows.r[0].message_id, ID1);
    assert_string_equal(rows.r[0].dst_addr, "127.0.0.1");
    assert_int_equal(rows.r[0].dst_port, 9000);
    assert_int_equal(rows.r[0].retry_count, 2);
    assert_in_range(rows.r[0].age_ms, 2900, 5000);
    assert_in_range(rows.r[1].age_ms, 59900, 62000);
    assert_in_range(rows.r[2].age_ms, 0, 2000);

    /* paging */
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_load_sent(f->st, a, 1, collect_out, &rows), 1);
    assert_int_equal(rows.r[0].rowid, b);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_load_sent(f->st, b, 10, collect_out, &rows), 1);
    assert_int_equal(rows.r[0].rowid, c);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_load_sent(f->st, c, 10, collect_out, &rows), 0);
    assert_int_equal(rows.n, 0);
}

static void test_outbound_get_sent(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f->raw, "sent", ID1, "{\"message_id\":\"" ID1 "\",\"x\":1}");
    int64_t p = add_out(f->raw, "pending", NULL, "{}");
    int64_t k = add_out(f->raw, "acknowledged", ID2, "{}");
    exec(f->raw, "UPDATE outbound_messages SET dst_addr = '10.9.8.7', dst_port = 4242 "
                 "WHERE id = 1");
    struct out_rows rows = {0};
    assert_int_equal(store_outbound_get_sent(f->st, a, collect_out, &rows), 1);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.r[0].rowid, a);
    assert_string_equal(rows.r[0].message_id, ID1);
    assert_string_equal(rows.r[0].dst_addr, "10.9.8.7");
    assert_int_equal(rows.r[0].dst_port, 4242);
    assert_string_equal(rows.r[0].payload, "{\"message_id\":\"" ID1 "\",\"x\":1}");
    assert_int_equal(rows.r[0].payload_len, strlen(rows.r[0].payload));

    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_outbound_get_sent(f->st, p, collect_out, &rows), 0);
    assert_int_equal(store_outbound_get_sent(f->st, k, collect_out, &rows), 0);
    assert_int_equal(store_outbound_get_sent(f->st, 9999, collect_out, &rows), 0);
    exec(f->raw, "DELETE FROM outbound_messages WHERE id = 1");
    assert_int_equal(store_outbound_get_sent(f->st, a, collect_out, &rows), 0);
    assert_int_equal(rows.n, 0);
}

/* ---- inbound ---- */

static void test_format_ns(void **state)
{
    (void)state;
    char out[32];
    store_format_ns(1763769601123456789ULL, out);
    assert_string_equal(out, "2025-11-22T00:00:01.123456789");
    store_format_ns(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000000000");
    store_format_ns(1700000000000000001ULL, out);
    assert_string_equal(out, "2023-11-14T22:13:20.000000001");
    store_format_ns(951782400999999999ULL, out); /* 2000-02-29, a leap day */
    assert_string_equal(out, "2000-02-29T00:00:00.999999999");
    store_format_ns(UINT64_MAX, out);
    assert_string_equal(out, "2554-07-21T23:34:33.709551615");
}

static void test_inbound_insert(void **state)
{
    struct fx *f = *state;
    enum store_in_result is_new = (enum store_in_result) - 1;
    /* payload taken by length (the daemon's JSON is not NUL-terminated) */
    const char payload[] = "{\"message_id\":\"" ID1 "\",\"c\":\"hi\"}\x01\x02garbage";
    size_t plen = strlen("{\"message_id\":\"" ID1 "\",\"c\":\"hi\"}");
    assert_int_equal(store_inbound_insert(f->st, ID1, "192.0.2.7", 65535, payload, plen,
                                          1763769601123456789ULL, &is_new),
                     STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW);
    int64_t id = qint(f->raw, "SELECT id FROM inbound_messages WHERE message_id = '" ID1 "'");
    assert_col(f->raw, T_IN, id, "src_addr", "192.0.2.7");
    assert_col(f->raw, T_IN, id, "src_port", "65535");
    assert_col(f->raw, T_IN, id, "payload", "{\"message_id\":\"" ID1 "\",\"c\":\"hi\"}");
    assert_col(f->raw, T_IN, id, "crypto_timestamp", "2025-11-22T00:00:01.123456789");
    assert_col(f->raw, T_IN, id, "state", "received");
    assert_col(f->raw, T_IN, id, "ack_sent", "0");
    assert_col(f->raw, T_IN, id, "read_count", "0");
    assert_col(f->raw, T_IN, id, "ack_sent_at", NULL);
    assert_time_col(f->raw, T_IN, id, "received_at");
    assert_time_col(f->raw, T_IN, id, "updated_at");

    /* a retransmission: not inserted again, first copy kept */
    exec(f->raw, "UPDATE inbound_messages SET state = 'ack_sent', ack_sent = 1");
    is_new = (enum store_in_result) - 1;
    assert_int_equal(
        store_inbound_insert(f->st, ID1, "192.0.2.8", 1, "{\"other\":1}", 11, 5, &is_new),
        STORE_OK);
    assert_int_equal(is_new, STORE_IN_DUP);
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 1);
    assert_col(f->raw, T_IN, id, "src_addr", "192.0.2.7");
    assert_col(f->raw, T_IN, id, "state", "ack_sent");
    assert_col(f->raw, T_IN, id, "crypto_timestamp", "2025-11-22T00:00:01.123456789");

    /* another id is new */
    is_new = (enum store_in_result) - 1;
    assert_int_equal(store_inbound_insert(f->st, ID2, "::1", 1, "{}", 2, 0, &is_new), STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW);
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 2);
}

/*
 * An insert the database refuses is never taken for a duplicate: a CHECK on
 * a column the operator added, a trigger's RAISE(IGNORE), a UNIQUE index of
 * the operator's. Only a row that really exists is a duplicate.
 */
static void test_inbound_insert_refused(void **state)
{
    struct fx *f = *state;
    enum store_in_result res = STORE_IN_NEW;
    exec(f->raw, "ALTER TABLE inbound_messages ADD COLUMN note TEXT CHECK (payload NOT LIKE "
                 "'%poison%')");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(
        store_inbound_insert(f->st, ID1, "127.0.0.1", 1, "{\"poison\":1}", 12, 1, &res),
        STORE_REFUSED);
    assert_non_null(strstr(store_errmsg(f->st), "CHECK"));
    assert_int_equal(store_in_tx(f->st), 1); /* the rest of the turn goes on */
    assert_int_equal(store_inbound_insert(f->st, ID2, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_NEW);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 1);

    exec(f->raw, "CREATE TRIGGER ig BEFORE INSERT ON inbound_messages WHEN NEW.payload = '[]' "
                 "BEGIN SELECT RAISE(IGNORE); END");
    assert_int_equal(store_inbound_insert(f->st, ID3, "127.0.0.1", 1, "[]", 2, 1, &res),
                     STORE_REFUSED);
    /* a duplicate that the trigger also ignores is still a duplicate: the row exists */
    assert_int_equal(store_inbound_insert(f->st, ID2, "127.0.0.1", 1, "[]", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_DUP);

    exec(f->raw, "CREATE UNIQUE INDEX op ON inbound_messages(src_port)");
    assert_int_equal(store_inbound_insert(f->st, ID3, "127.0.0.1", 1, "{}", 2, 1, &res),
                     STORE_REFUSED);
    assert_non_null(strstr(store_errmsg(f->st), "UNIQUE"));
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 1);
}

/* RAISE(ROLLBACK) ends the whole transaction: the caller learns it from store_in_tx. */
static void test_inbound_insert_rollback_trigger(void **state)
{
    struct fx *f = *state;
    enum store_in_result res = STORE_IN_NEW;
    exec(f->raw, "CREATE TRIGGER rb BEFORE INSERT ON inbound_messages WHEN NEW.payload = '[]' "
                 "BEGIN SELECT RAISE(ROLLBACK, 'no thanks'); END");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_inbound_insert(f->st, ID1, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(store_inbound_insert(f->st, ID2, "127.0.0.1", 1, "[]", 2, 1, &res),
                     STORE_REFUSED);
    assert_int_equal(store_in_tx(f->st), 0);
    assert_non_null(strstr(store_errmsg(f->st), "no thanks"));
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 0);
}

/* A message whose id is one of our own rows awaiting an ACK is a reflection: not stored. */
static void test_inbound_insert_own_id(void **state)
{
    struct fx *f = *state;
    enum store_in_result res = STORE_IN_NEW;
    add_out(f->raw, "sent", ID1, "{}");
    add_out(f->raw, "acknowledged", ID2, "{}");
    assert_int_equal(store_inbound_insert(f->st, ID1, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_OWN);
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 0);
    /* once acknowledged it is no longer awaited (the same id may come the other way) */
    assert_int_equal(store_inbound_insert(f->st, ID2, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_NEW);
}

/* A statement running past the transaction's budget is interrupted and reads as BUSY. */
static void test_budget(void **state)
{
    struct fx *f = *state;
    exec(f->raw, "CREATE TABLE slow (x INTEGER)");
    exec(f->raw, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) "
                 "INSERT INTO slow SELECT x FROM c");
    exec(f->raw, "CREATE TRIGGER s BEFORE UPDATE ON outbound_messages BEGIN "
                 "SELECT count(*) FROM slow a, slow b, slow c; END");
    int64_t id = add_out(f->raw, "pending", NULL, "{}");
    store_set_budget(f->st, 100);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_failed(f->st, id, 0, "x"), STORE_BUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(store_timed_out(f->st), 1);
    assert_int_equal(store_in_tx(f->st), 0);
    assert_non_null(strstr(store_errmsg(f->st), "longer than 100 ms"));
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited < 5);
    assert_col(f->raw, T_OUT, id, "state", "pending");
    /* the next transaction starts with a fresh budget */
    exec(f->raw, "DROP TRIGGER s");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_timed_out(f->st), 0);
    assert_int_equal(store_outbound_failed(f->st, id, 0, "x"), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
}

/* A removed -wal is noticed like a removed database. */
static void test_wal_removed(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_file_replaced(f->st), 0);
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    assert_int_equal(unlink(wal), 0);
    assert_int_equal(store_file_replaced(f->st), 1);
}

/*
 * The tools open only a database with both of our tables, each with its
 * message_id; anything less is refused before a byte is written. The daemon
 * makes a missing table beside the other.
 */
static void test_open_half_a_database(void **state)
{
    struct fx *f = *state;
    const char *cases[][2] = {
        {"CREATE TABLE inbound_messages (id INTEGER PRIMARY KEY, x)",
         "(table inbound_messages has no column message_id)"},
        {"CREATE TABLE inbound_messages (id INTEGER PRIMARY KEY, message_id TEXT)",
         "(no table outbound_messages)"},
        {"CREATE TABLE outbound_messages (id INTEGER PRIMARY KEY, message_id TEXT)",
         "(no table inbound_messages)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(f->path, sizeof f->path, "%s/half%zu.db", f->dir, i);
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        exec(db, cases[i][0]);
        sqlite3_close(db);
        struct stat before, after;
        assert_int_equal(stat(f->path, &before), 0);
        char err[256] = "";
        assert_null(store_open(f->path, STORE_EXISTING, 50, err, sizeof err));
        assert_non_null(strstr(err, "is not a securedgram database"));
        assert_non_null(strstr(err, cases[i][1]));
        assert_int_equal(stat(f->path, &after), 0);
        assert_int_equal(before.st_size, after.st_size);
        assert_int_equal(before.st_mtime, after.st_mtime);
        char wal[200];
        snprintf(wal, sizeof wal, "%s-wal", f->path);
        assert_int_not_equal(access(wal, F_OK), 0);
    }
    /* the daemon makes the missing table beside a proper one */
    snprintf(f->path, sizeof f->path, "%s/half.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    exec(db, "CREATE TABLE inbound_messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
             " message_id TEXT NOT NULL, src_addr TEXT NOT NULL, src_port INTEGER NOT NULL,"
             " payload TEXT NOT NULL, crypto_timestamp TEXT NOT NULL,"
             " state TEXT NOT NULL DEFAULT 'received', ack_sent INTEGER NOT NULL DEFAULT 0,"
             " read_count INTEGER NOT NULL DEFAULT 0, received_at TEXT, ack_sent_at TEXT,"
             " updated_at TEXT)");
    sqlite3_close(db);
    char err[256] = "";
    f->st = store_open(f->path, STORE_CREATE, 50, err, sizeof err);
    if (f->st == NULL)
        fail_msg("store_open: %s", err);
    assert_int_equal(sqlite3_open_v2(f->path, &f->raw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM sqlite_master WHERE name = "
                                  "'outbound_messages'"),
                     1);
}

static int64_t add_in(struct fx *f, const char *id)
{
    enum store_in_result is_new = (enum store_in_result) - 1;
    assert_int_equal(store_inbound_insert(f->st, id, "127.0.0.1", 7000, "{}", 2, 1, &is_new),
                     STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW);
    return qint(f->raw, "SELECT id FROM inbound_messages WHERE message_id = '%s'", id);
}

static void test_inbound_ack_states(void **state)
{
    struct fx *f = *state;
    int64_t a = add_in(f, ID1);
    int64_t b = add_in(f, ID2);
    int64_t c = add_in(f, ID3);

    assert_int_equal(store_inbound_ack_sent(f->st, ID1), STORE_OK);
    assert_col(f->raw, T_IN, a, "state", "ack_sent");
    assert_col(f->raw, T_IN, a, "ack_sent", "1");
    assert_time_col(f->raw, T_IN, a, "ack_sent_at");
    assert_time_col(f->raw, T_IN, a, "updated_at");

    assert_int_equal(store_inbound_ack_failed(f->st, ID2), STORE_OK);
    assert_col(f->raw, T_IN, b, "state", "ack_failed");
    assert_col(f->raw, T_IN, b, "ack_sent", "0");
    assert_col(f->raw, T_IN, b, "ack_sent_at", NULL);

    /* only 'received' rows move */
    assert_int_equal(store_inbound_ack_failed(f->st, ID1), STORE_OK);
    assert_col(f->raw, T_IN, a, "state", "ack_sent");
    assert_col(f->raw, T_IN, a, "ack_sent", "1");
    assert_col(f->raw, T_IN, c, "state", "received");
    assert_int_equal(store_inbound_ack_sent(f->st, "000000000000000000000000"), STORE_OK);
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 3);
}

static void test_inbound_unacked(void **state)
{
    struct fx *f = *state;
    const char *ids[] = {"000000000000000000000001", "000000000000000000000002",
                         "000000000000000000000003", "000000000000000000000004",
                         "000000000000000000000005"};
    int64_t rid[5];
    for (int i = 0; i < 5; i++)
        rid[i] = add_in(f, ids[i]);
    assert_int_equal(store_inbound_ack_sent(f->st, ids[1]), STORE_OK);
    exec(f->raw, "UPDATE inbound_messages SET src_addr = '10.0.0.3', src_port = 3333 "
                 "WHERE message_id = '000000000000000000000003'");

    struct in_rows rows = {0};
    assert_int_equal(store_inbound_unacked(f->st, 0, 2, collect_in, &rows), 2);
    assert_int_equal(rows.r[0].rowid, rid[0]);
    assert_int_equal(rows.r[1].rowid, rid[2]);
    assert_string_equal(rows.r[1].message_id, ids[2]);
    assert_string_equal(rows.r[1].src_addr, "10.0.0.3");
    assert_int_equal(rows.r[1].src_port, 3333);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_inbound_unacked(f->st, rid[2], 2, collect_in, &rows), 2);
    assert_int_equal(rows.r[0].rowid, rid[3]);
    assert_int_equal(rows.r[1].rowid, rid[4]);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_inbound_unacked(f->st, rid[4], 2, collect_in, &rows), 0);
    assert_int_equal(rows.n, 0);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(store_inbound_unacked(f->st, 0, 100, collect_in, &rows), 4);
}

/* ---- transactions and other connections ---- */

static void test_transactions(void **state)
{
    struct fx *f = *state;
    enum store_in_result is_new = (enum store_in_result) - 1;
    assert_int_equal(store_in_tx(f->st), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_in_tx(f->st), 1);
    assert_int_equal(store_inbound_insert(f->st, ID1, "127.0.0.1", 1, "{}", 2, 1, &is_new),
                     STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW);
    store_rollback(f->st);
    assert_int_equal(store_in_tx(f->st), 0);
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 0);
    store_rollback(f->st); /* harmless outside a transaction */

    /* committed: visible to others only after the commit */
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_inbound_insert(f->st, ID1, "127.0.0.1", 1, "{}", 2, 1, &is_new),
                     STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW); /* the rolled-back row is gone: this one is new */
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_in_tx(f->st), 0);
    assert_int_equal(qint(f->raw, "SELECT count(*) FROM inbound_messages"), 1);
}

static void test_data_version(void **state)
{
    struct fx *f = *state;
    int64_t v1 = store_data_version(f->st);
    assert_true(v1 >= 0);
    assert_true(store_data_version(f->st) == v1);
    add_out(f->raw, "pending", NULL, "{}");
    int64_t v2 = store_data_version(f->st);
    assert_true(v2 >= 0);
    assert_true(v2 != v1);
    assert_true(store_data_version(f->st) == v2);
    exec(f->raw, "BEGIN; UPDATE outbound_messages SET payload = '[]'; COMMIT;");
    assert_true(store_data_version(f->st) != v2);
}

static void test_busy(void **state)
{
    struct fx *f = *state;
    int64_t id = add_out(f->raw, "pending", NULL, "{}");
    exec(f->raw, "BEGIN IMMEDIATE");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_begin(f->st), STORE_BUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(store_in_tx(f->st), 0);
    /* gave up after about the busy timeout (50 ms), not the tools' seconds */
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited < 1.5);
    /* a write outside a transaction is refused as busy too, and changes nothing */
    assert_int_equal(store_outbound_failed(f->st, id, 0, "x"), STORE_BUSY);
    enum store_in_result is_new = (enum store_in_result) - 1;
    assert_int_equal(store_inbound_insert(f->st, ID1, "127.0.0.1", 1, "{}", 2, 1, &is_new),
                     STORE_BUSY);
    assert_int_equal((int)is_new, -1);
    /* reading still works while another connection writes (WAL) */
    struct out_rows rows = {0};
    assert_int_equal(store_outbound_pending(f->st, 10, collect_out, &rows), 1);
    exec(f->raw, "COMMIT");

    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_failed(f->st, id, 0, "x"), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f->raw, T_OUT, id, "state", "send_failed");
    assert_non_null(store_errmsg(f->st));
}

/* ---- store_admin: the tools' SQL ---- */

#include "store/store_admin.h"

/* An inbound row last updated long ago (2020), unread; returns its id. */
static int64_t add_old_in(sqlite3 *db, const char *message_id)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, "
             "crypto_timestamp, state, updated_at) VALUES ('%s', '10.0.0.1', 4000, '{}', "
             "'2020-01-01T00:00:00.000000000', 'ack_sent', '2020-01-01T00:00:00.000')",
             message_id);
    exec(db, sql);
    return sqlite3_last_insert_rowid(db);
}

/* Seconds between a row's updated_at and now (large if it was left as it was). */
static int64_t age_s(sqlite3 *db, int64_t id)
{
    return qint(db,
                "SELECT CAST(abs(julianday('now') - julianday(updated_at)) * 86400 AS INTEGER) "
                "FROM inbound_messages WHERE id = %lld",
                (long long)id);
}

/*
 * Marking read sets updated_at, as the original does: sg-clean ages rows by
 * it, so a message read today must not look ten days old. So does undoing
 * a marking (every write does); a read without marking writes nothing.
 */
static void test_admin_mark_sets_updated_at(void **state)
{
    struct fx *f = *state;
    int64_t a = add_old_in(f->raw, ID1), b = add_old_in(f->raw, ID2);
    char err[256] = "";
    struct store_admin_claimed *c = NULL;
    size_t n = 0;
    struct store_admin_query q = {.table = STORE_ADMIN_INBOUND, .id = b, .mark = 0};
    assert_int_equal(store_admin_claim(f->st, &q, &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 1);
    free(c);
    assert_col(f->raw, T_IN, b, "updated_at", "2020-01-01T00:00:00.000"); /* --no-mark */

    q.mark = 1;
    q.unread_only = 1;
    q.id = 0;
    assert_int_equal(store_admin_claim(f->st, &q, &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(
        qint(f->raw, "SELECT read_count FROM inbound_messages WHERE id = %lld", (long long)a), 1);
    assert_time_col(f->raw, T_IN, a, "updated_at");
    assert_true(age_s(f->raw, a) < 60);
    assert_true(age_s(f->raw, b) < 60);

    exec(f->raw, "UPDATE inbound_messages SET updated_at = '2020-01-01T00:00:00.000'");
    assert_int_equal(store_admin_unmark(f->st, c, n, err, sizeof err), STORE_OK);
    assert_int_equal(qint(f->raw, "SELECT sum(read_count) FROM inbound_messages"), 0);
    assert_time_col(f->raw, T_IN, b, "updated_at");
    assert_true(age_s(f->raw, b) < 60);
    free(c);
}

/* The largest id of each table, for sg-recv --follow's start; 0 when empty. */
static void test_admin_max_id(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    int64_t max = -1;
    assert_int_equal(store_admin_max_id(f->st, STORE_ADMIN_INBOUND, &max, err, sizeof err),
                     STORE_OK);
    assert_int_equal(max, 0);
    add_old_in(f->raw, ID1);
    int64_t last = add_old_in(f->raw, ID2);
    add_out(f->raw, "pending", NULL, "{}");
    assert_int_equal(store_admin_max_id(f->st, STORE_ADMIN_INBOUND, &max, err, sizeof err),
                     STORE_OK);
    assert_int_equal(max, last);
    assert_int_equal(store_admin_max_id(f->st, STORE_ADMIN_OUTBOUND, &max, err, sizeof err),
                     STORE_OK);
    assert_int_equal(max, 1);
}

/* Locked past the busy timeout: the original's wording, in one line. */
static void test_admin_busy_text(void **state)
{
    struct fx *f = *state;
    add_old_in(f->raw, ID1);
    exec(f->raw, "BEGIN IMMEDIATE");
    char err[256] = "";
    struct store_admin_claimed *c = NULL;
    size_t n = 0;
    struct store_admin_query q = {.table = STORE_ADMIN_INBOUND, .mark = 1};
    assert_int_equal(store_admin_claim(f->st, &q, &c, &n, err, sizeof err), STORE_BUSY);
    assert_string_equal(err, STORE_ADMIN_BUSY_TEXT);
    assert_int_equal(strncmp(err, "Database is busy: ", 18), 0);
    assert_null(strchr(err, '\n'));
    exec(f->raw, "COMMIT");
    assert_int_equal(qint(f->raw, "SELECT read_count FROM inbound_messages"), 0);
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_again_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_existing_missing, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_open_not_a_database, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_open_migrates_read_count, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_open_half_a_database, setup_dir, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_pending_exclude, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_pending_many_excluded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_hostile_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_load_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbound_get_sent, setup, teardown),
        cmocka_unit_test(test_format_ns),
        cmocka_unit_test_setup_teardown(test_inbound_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbound_ack_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbound_insert_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbound_insert_rollback_trigger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbound_insert_own_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbound_unacked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_mark_sets_updated_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_max_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_busy_text, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
