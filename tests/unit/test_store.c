/*
 * Unit tests for the store interface (store/store.h), run against every
 * backend this build has (the table `backends` below: SQLite and
 * PostgreSQL). Each backend gives a fresh location and a second, raw
 * connection that plays the part of the scripts and tools sharing the
 * database: it inserts rows, inspects them and holds locks, in plain SQL that
 * every backend takes. Cases marked SQLITE_ONLY need SQLite itself (its
 * files, PRAGMAs, triggers' syntax, its loose typing), PG_ONLY PostgreSQL
 * (its triggers' syntax, several sessions, leases, a lost connection); the
 * others are the interface's contract, which a new backend must pass as it is.
 *
 * The PostgreSQL cases need a server: SG_TEST_PG_URI, a libpq URI of a
 * database the role may create schemas in (tests/tools/with-pg.sh starts a
 * throw-away cluster and sets it; make check-unit runs this file under it).
 * Each case gets a fresh schema of its own (search_path in the URI's
 * options), dropped at its end. Without SG_TEST_PG_URI those cases fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ID1 "a1b2c3d4e5f60718293a4b5c"
#define ID2 "0123456789abcdef01234567"
#define ID3 "ffeeddccbbaa998877665544"

#define T_OUT "outbound_messages"
#define T_IN "inbound_messages"

struct fx;

/* A backend under test: its fresh locations and its raw connection. */
struct backend {
    const char *name;
    int (*make)(struct fx *f); /* a fresh, empty place: f->loc; 0 or -1 */
    void (*missing)(struct fx *f, char *out, size_t len); /* a location with no database */
    int (*raw_open)(struct fx *f);                        /* the raw connection to f->loc */
    void (*raw_close)(struct fx *f);
    void (*exec)(struct fx *f, const char *sql); /* fails the test on error */
    int (*qtext)(struct fx *f, char *out, size_t len, const char *sql); /* 1 if not NULL */
    void (*lock)(struct fx *f);   /* takes the write lock and keeps it */
    void (*unlock)(struct fx *f); /* and gives it back (commits) */
    void (*cleanup)(struct fx *f);
};

struct fx {
    const struct backend *be;
    char dir[64];
    char loc[512];
    struct store *st;
    sqlite3 *raw;    /* the SQLite backend's raw connection */
    PGconn *pg;      /* the PostgreSQL backend's */
    char schema[64]; /* and the case's schema there */
};

/* Which backends a case runs on. */
enum { ANY = 0, SQLITE_ONLY = 1, PG_ONLY = 2 };

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the SQLite backend's fixture ---- */

static int sq_make(struct fx *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/sg-test-store.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->loc, sizeof f->loc, "%s/test.db", f->dir);
    return 0;
}

static void sq_missing(struct fx *f, char *out, size_t len)
{
    snprintf(out, len, "%s/missing.db", f->dir);
}

static int sq_raw_open(struct fx *f)
{
    if (sqlite3_open_v2(f->loc, &f->raw, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(f->raw, 2000);
    return 0;
}

static void sq_raw_close(struct fx *f)
{
    if (f->raw != NULL)
        sqlite3_close(f->raw);
    f->raw = NULL;
}

static void sq_exec(struct fx *f, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(f->raw, sql, NULL, NULL, &msg) != SQLITE_OK) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", msg != NULL ? msg : "?");
        sqlite3_free(msg);
        fail_msg("%s: %s", sql, copy);
    }
}

static int sq_qtext(struct fx *f, char *out, size_t outlen, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(f->raw, sql, -1, &s, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(f->raw));
    int rc = sqlite3_step(s);
    int have = rc == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL;
    out[0] = '\0';
    if (have)
        snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(s, 0));
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        fail_msg("%s: %s", sql, sqlite3_errmsg(f->raw));
    sqlite3_finalize(s);
    return have;
}

static void sq_lock(struct fx *f)
{
    sq_exec(f, "BEGIN IMMEDIATE");
}

static void sq_unlock(struct fx *f)
{
    sq_exec(f, "COMMIT");
}

static void sq_cleanup(struct fx *f)
{
    const char *names[] = {"test.db",  "test.db-wal", "test.db-shm", "test.db-journal",
                           "old.db",   "old.db-wal",  "old.db-shm",  "junk.db",
                           "half.db",  "half.db-wal", "half.db-shm", "half0.db",
                           "half1.db", "half2.db",    "moved.db"};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", f->dir, names[i]);
        unlink(p);
    }
    rmdir(f->dir);
}

/* ---- the PostgreSQL backend's fixture ---- */

static PGconn *pg_admin;                               /* makes and drops each case's schema */
static const char *program = "build/tests/test_store"; /* argv[0], for the message below */

/* SG_TEST_PG_URI, or NULL, said loudly once: the PostgreSQL cases then fail. */
static const char *pg_base(void)
{
    static int told;
    const char *u = getenv("SG_TEST_PG_URI");
    if (u != NULL && u[0] != '\0')
        return u;
    if (!told++)
        fprintf(stderr,
                "ERROR: SG_TEST_PG_URI is not set, so every postgresql case fails. Run this "
                "program under a throw-away cluster: sh tests/tools/with-pg.sh %s (as make "
                "check-unit does), or set SG_TEST_PG_URI to a libpq URI of a database whose "
                "role may create schemas.\n",
                program);
    return NULL;
}

/* Runs sql on c; 0, or -1 with the reason on stderr. */
static int pg_do(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

/* SQLite's typeof(), for the raw queries that ask how a value is stored. */
#define PG_TYPEOF                                                                                  \
    "CREATE FUNCTION %s.typeof(anyelement) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT CASE " \
    "WHEN $1 IS NULL THEN 'null' WHEN pg_typeof($1) IN ('bigint'::regtype, 'integer'::regtype, "   \
    "'smallint'::regtype) THEN 'integer' WHEN pg_typeof($1) IN ('double precision'::regtype, "     \
    "'real'::regtype, 'numeric'::regtype) THEN 'real' ELSE 'text' END $$"

/* A fresh schema of the case's own, and the URI that makes it the search_path. */
static int pg_make(struct fx *f)
{
    static int seq;
    const char *base = pg_base();
    if (base == NULL)
        return -1;
    if (pg_admin == NULL) {
        pg_admin = PQconnectdb(base);
        if (PQstatus(pg_admin) != CONNECTION_OK) {
            fprintf(stderr, "SG_TEST_PG_URI: %s", PQerrorMessage(pg_admin));
            PQfinish(pg_admin);
            pg_admin = NULL;
            return -1;
        }
        if (pg_do(pg_admin, "SET client_min_messages = warning; SET lock_timeout = '10s'") != 0)
            return -1;
    }
    char sql[1024];
    snprintf(f->schema, sizeof f->schema, "sgtest_%ld_%d", (long)getpid(), ++seq);
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s; " PG_TYPEOF, f->schema, f->schema);
    if (pg_do(pg_admin, sql) != 0)
        return -1;
    snprintf(f->loc, sizeof f->loc, "%s%coptions=-csearch_path%%3D%s", base,
             strchr(base, '?') != NULL ? '&' : '?', f->schema);
    return 0;
}

/* The URI with another database's name: one that does not exist. */
static void pg_missing(struct fx *f, char *out, size_t len)
{
    (void)f;
    const char *base = pg_base(), *auth = base != NULL ? strstr(base, "://") : NULL;
    const char *path = auth != NULL ? strchr(auth + 3, '/') : NULL;
    if (path == NULL) {
        snprintf(out, len, "postgresql:///sgtest_no_such_db");
        return;
    }
    const char *query = strchr(path, '?');
    snprintf(out, len, "%.*s/sgtest_no_such_db%s", (int)(path - base), base,
             query != NULL ? query : "");
}

static int pg_raw_open(struct fx *f)
{
    f->pg = PQconnectdb(f->loc);
    if (PQstatus(f->pg) != CONNECTION_OK) {
        fprintf(stderr, "raw connection: %s", PQerrorMessage(f->pg));
        return -1;
    }
    return pg_do(f->pg, "SET client_min_messages = warning");
}

static void pg_raw_close(struct fx *f)
{
    PQfinish(f->pg);
    f->pg = NULL;
}

static void pg_exec(struct fx *f, const char *sql)
{
    PGresult *r = PQexec(f->pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", PQerrorMessage(f->pg));
        PQclear(r);
        fail_msg("%s: %s", sql, copy);
    }
    PQclear(r);
}

static int pg_qtext(struct fx *f, char *out, size_t outlen, const char *sql)
{
    PGresult *r = PQexec(f->pg, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", PQerrorMessage(f->pg));
        PQclear(r);
        fail_msg("%s: %s", sql, copy);
    }
    int have = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0);
    out[0] = '\0';
    if (have)
        snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return have;
}

/* The tables held as a tool or DDL would: every writer waits; readers do not. */
static void pg_lock(struct fx *f)
{
    pg_exec(f, "BEGIN; LOCK TABLE outbound_messages, inbound_messages, peer_sequence IN "
               "EXCLUSIVE MODE");
}

static void pg_unlock(struct fx *f)
{
    pg_exec(f, "COMMIT");
}

static void pg_cleanup(struct fx *f)
{
    char sql[128];
    if (pg_admin == NULL || f->schema[0] == '\0')
        return;
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", f->schema);
    (void)pg_do(pg_admin, sql);
}

static const struct backend backends[] = {
    {"sqlite", sq_make, sq_missing, sq_raw_open, sq_raw_close, sq_exec, sq_qtext, sq_lock,
     sq_unlock, sq_cleanup},
    {"postgresql", pg_make, pg_missing, pg_raw_open, pg_raw_close, pg_exec, pg_qtext, pg_lock,
     pg_unlock, pg_cleanup},
};

/* ---- raw SQL through the backend ---- */

__attribute__((format(printf, 2, 3))) static void X(struct fx *f, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    f->be->exec(f, sql);
}

/* The first column of the first row as text (into out); 0 if NULL or no row. */
__attribute__((format(printf, 4, 5))) static int qtext(struct fx *f, char *out, size_t outlen,
                                                       const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return f->be->qtext(f, out, outlen, sql);
}

__attribute__((format(printf, 2, 3))) static int64_t qint(struct fx *f, const char *fmt, ...)
{
    char sql[2048], out[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (!f->be->qtext(f, out, sizeof out, sql))
        fail_msg("%s: no value", sql);
    return strtoll(out, NULL, 10);
}

/* A column of one outbound or inbound row, as text; 0 when NULL. */
static int col(struct fx *f, const char *table, int64_t id, const char *column, char *out,
               size_t outlen)
{
    return qtext(f, out, outlen, "SELECT %s FROM %s WHERE id = %lld", column, table, (long long)id);
}

static void assert_col(struct fx *f, const char *table, int64_t id, const char *column,
                       const char *want)
{
    char got[512];
    int have = col(f, table, id, column, got, sizeof got);
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

static void assert_time_col(struct fx *f, const char *table, int64_t id, const char *column)
{
    char got[128];
    if (!col(f, table, id, column, got, sizeof got))
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
static int64_t add_out(struct fx *f, const char *state, const char *message_id, const char *payload)
{
    if (message_id != NULL)
        return qint(
            f,
            "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state) "
            "VALUES ('%s', '127.0.0.1', 9000, '%s', '%s') RETURNING id",
            message_id, payload, state);
    return qint(f,
                "INSERT INTO outbound_messages (dst_addr, dst_port, payload, state) "
                "VALUES ('127.0.0.1', 9000, '%s', '%s') RETURNING id",
                payload, state);
}

/* An inbound row last updated long ago (2020), as a script left it; returns its id. */
static int64_t add_old_in(struct fx *f, const char *message_id)
{
    return qint(f,
                "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, "
                "crypto_timestamp, state, updated_at) VALUES ('%s', '10.0.0.1', 4000, '{}', "
                "'2020-01-01T00:00:00.000000000', 'ack_sent', '2020-01-01T00:00:00.000') "
                "RETURNING id",
                message_id);
}

/* ---- the store's calls, one row at a time ---- */

static enum store_rc in_insert(struct fx *f, const char *id, const char *addr, unsigned port,
                               const char *payload, size_t len, uint64_t ts,
                               enum store_in_result *res)
{
    struct store_inbound m = {id, addr, port, payload, len, ts, 0, NULL, 0};
    return store_inbound_insert(f->st, &m, 1, now_ms(), res, NULL, NULL);
}

static enum store_rc out_sent(struct fx *f, int64_t id, int64_t retries, const char *why)
{
    struct store_sent v = {id, retries, why};
    return store_outbound_sent(f->st, &v, 1, now_ms(), NULL);
}

static enum store_rc out_failed(struct fx *f, int64_t id, int64_t retries, const char *why)
{
    struct store_sent v = {id, retries, why};
    return store_outbound_failed(f->st, &v, 1, now_ms(), NULL);
}

static enum store_rc out_acked(struct fx *f, int64_t id, int *matched)
{
    return store_outbound_acked(f->st, &id, 1, now_ms(), matched, NULL);
}

static enum store_rc in_ack_sent(struct fx *f, const char *id)
{
    return store_inbound_ack_sent(f->st, &id, 1, now_ms(), NULL);
}

static enum store_rc in_ack_failed(struct fx *f, const char *id)
{
    return store_inbound_ack_failed(f->st, &id, 1, now_ms(), NULL);
}

static int64_t add_in(struct fx *f, const char *id)
{
    enum store_in_result is_new = (enum store_in_result) - 1;
    assert_int_equal(in_insert(f, id, "127.0.0.1", 7000, "{}", 2, 1, &is_new), STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW);
    return qint(f, "SELECT id FROM inbound_messages WHERE message_id = '%s'", id);
}

/* A row buffer of 16 rows for a test; freed by teardown. */
static struct store_rows rows;

/* ---- fixture ---- */

static struct store *open_store(struct fx *f, const char *loc, enum store_open_mode mode)
{
    char err[256] = "";
    struct store *st = NULL;
    enum store_rc rc = store_open(loc, mode, 50, &st, err, sizeof err);
    if (rc != STORE_OK)
        fail_msg("%s: store_open %s: %s", f->be->name, loc, err);
    return st;
}

/* The database made and open, with the raw connection to it. */
static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->be = *state;
    *state = f;
    if (f->be->make(f) != 0 || store_rows_init(&rows, 16, 16 * STORE_ROW_TEXT + 4096) != 0)
        return -1;
    char err[256] = "";
    if (store_open(f->loc, STORE_CREATE, 50, &f->st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "store_open: %s\n", err);
        return -1;
    }
    return f->be->raw_open(f);
}

/* Only a place: the test makes its own database. */
static int setup_dir(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    f->be = *state;
    *state = f;
    return f->be->make(f) == 0 && store_rows_init(&rows, 16, 16 * STORE_ROW_TEXT + 4096) == 0 ? 0
                                                                                              : -1;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f == NULL)
        return 0;
    store_close(f->st);
    f->be->raw_close(f);
    f->be->cleanup(f);
    store_rows_free(&rows);
    free(f);
    return 0;
}

/* ---- open ---- */

/* A script's minimal insert gets the documented defaults. */
static void test_open_defaults(void **state)
{
    struct fx *f = *state;
    int64_t id = qint(f, "INSERT INTO outbound_messages (dst_addr, dst_port, payload) "
                         "VALUES ('10.0.0.1', 1, '{}') RETURNING id");
    assert_col(f, T_OUT, id, "state", "pending");
    assert_col(f, T_OUT, id, "retry_count", "0");
    assert_col(f, T_OUT, id, "message_id", NULL);
    assert_time_col(f, T_OUT, id, "created_at");
    assert_time_col(f, T_OUT, id, "updated_at");
    int64_t in = qint(f, "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, "
                         "crypto_timestamp) VALUES ('" ID1 "', '10.0.0.1', 1, '{}', 'x') "
                         "RETURNING id");
    assert_col(f, T_IN, in, "state", "received");
    assert_col(f, T_IN, in, "ack_sent", "0");
    assert_col(f, T_IN, in, "read_count", "0");
    assert_time_col(f, T_IN, in, "received_at");
}

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

static void assert_index(struct fx *f, const char *table, const char *index, int unique,
                         const char *column)
{
    char buf[64];
    if (!qtext(f, buf, sizeof buf,
               "SELECT name FROM sqlite_master WHERE type = 'index' AND name = '%s' AND "
               "tbl_name = '%s'",
               index, table))
        fail_msg("index %s on %s missing", index, table);
    assert_int_equal(
        qint(f, "SELECT \"unique\" FROM pragma_index_list('%s') WHERE name = '%s'", table, index),
        unique);
    qtext(f, buf, sizeof buf, "SELECT name FROM pragma_index_info('%s')", index);
    assert_string_equal(buf, column);
}

/* SQLite: the file, its mode, the columns, indexes and journal mode of data/schema.sql. */
static void test_open_creates_schema(void **state)
{
    struct fx *f = *state;
    struct stat sb;
    assert_int_equal(stat(f->loc, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    /* the WAL file holds message text too */
    char wal[600];
    snprintf(wal, sizeof wal, "%s-wal", f->loc);
    if (stat(wal, &sb) == 0)
        assert_int_equal(sb.st_mode & 07777, 0600);

    static const struct column_spec out_cols[] = {
        {"id", "INTEGER", 0, NULL, 1},         {"message_id", "TEXT", 0, NULL, 0},
        {"dst_addr", "TEXT", 1, NULL, 0},      {"dst_port", "INTEGER", 1, NULL, 0},
        {"payload", "TEXT", 1, NULL, 0},       {"state", "TEXT", 1, "'pending'", 0},
        {"retry_count", "INTEGER", 1, "0", 0}, {"created_at", "TEXT", 1, NULL, 0},
        {"sent_at", "TEXT", 0, NULL, 0},       {"ack_received_at", "TEXT", 0, NULL, 0},
        {"last_error", "TEXT", 0, NULL, 0},    {"updated_at", "TEXT", 1, NULL, 0},
        {"peer", "TEXT", 0, NULL, 0},          {"sequence", "INTEGER", 0, NULL, 0},
    };
    static const struct column_spec in_cols[] = {
        {"id", "INTEGER", 0, NULL, 1},         {"message_id", "TEXT", 1, NULL, 0},
        {"src_addr", "TEXT", 1, NULL, 0},      {"src_port", "INTEGER", 1, NULL, 0},
        {"payload", "TEXT", 1, NULL, 0},       {"crypto_timestamp", "TEXT", 1, NULL, 0},
        {"state", "TEXT", 1, "'received'", 0}, {"ack_sent", "INTEGER", 1, "0", 0},
        {"read_count", "INTEGER", 1, "0", 0},  {"received_at", "TEXT", 1, NULL, 0},
        {"ack_sent_at", "TEXT", 0, NULL, 0},   {"updated_at", "TEXT", 1, NULL, 0},
        {"peer", "TEXT", 0, NULL, 0},          {"sequence", "INTEGER", 0, NULL, 0},
    };
    static const struct column_spec seq_cols[] = {
        {"peer", "TEXT", 1, NULL, 1},
        {"last", "INTEGER", 1, NULL, 0},
    };
    assert_columns(f->raw, T_OUT, out_cols, sizeof out_cols / sizeof out_cols[0]);
    assert_columns(f->raw, T_IN, in_cols, sizeof in_cols / sizeof in_cols[0]);
    assert_columns(f->raw, "peer_sequence", seq_cols, sizeof seq_cols / sizeof seq_cols[0]);
    assert_index(f, T_OUT, "idx_outbound_message_id", 1, "message_id");
    assert_index(f, T_OUT, "idx_outbound_state", 0, "state");
    assert_index(f, T_IN, "idx_inbound_message_id", 1, "message_id");
    assert_index(f, T_IN, "idx_inbound_state", 0, "state");
    char buf[1024];
    assert_true(qtext(f, buf, sizeof buf,
                      "SELECT sql FROM sqlite_master WHERE name = 'outbound_messages'"));
    assert_non_null(strstr(buf, "AUTOINCREMENT"));
    assert_true(
        qtext(f, buf, sizeof buf, "SELECT sql FROM sqlite_master WHERE name = 'inbound_messages'"));
    assert_non_null(strstr(buf, "AUTOINCREMENT"));
    qtext(f, buf, sizeof buf, "PRAGMA journal_mode");
    assert_string_equal(buf, "wal");
}

static void test_open_again_keeps_data(void **state)
{
    struct fx *f = *state;
    int64_t id = add_out(f, "pending", ID1, "{\"a\":1}");
    store_close(f->st);
    f->st = open_store(f, f->loc, STORE_CREATE);
    struct store *tool = open_store(f, f->loc, STORE_EXISTING);
    assert_int_equal(store_outbound_pending(tool, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, id);
    assert_string_equal(rows.out[0].message_id, ID1);
    store_close(tool);
    store_close(NULL);
}

/* The journal of commits not yet in the database (SQLite's -wal) grows with writes. */
static void test_journal_bytes(void **state)
{
    struct fx *f = *state;
    int64_t before = store_journal_bytes(f->st);
    assert_true(before >= 0);
    for (int i = 0; i < 20; i++) {
        char id[25];
        snprintf(id, sizeof id, "%024d", i);
        add_out(f, "pending", id, "{\"a\":1}");
    }
    assert_true(store_journal_bytes(f->st) > before);
}

/* status and /metrics: every row of a table by state, in state order. */
static void test_count_states(void **state)
{
    struct fx *f = *state;
    struct store_state_count *v = NULL;
    size_t n = 9;
    assert_int_equal(store_count_states(f->st, STORE_OUTBOUND, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    add_out(f, "pending", ID1, "{}");
    add_out(f, "sent", ID2, "{}");
    add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_count_states(f->st, STORE_OUTBOUND, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].state, "pending");
    assert_int_equal(v[0].n, 2);
    assert_string_equal(v[1].state, "sent");
    assert_int_equal(v[1].n, 1);
    free(v);
    assert_int_equal(store_count_states(f->st, STORE_INBOUND, &v, &n), STORE_OK);
    assert_int_equal(n, 0);
    free(v);
}

/* No database there: STORE_GONE for the tools, and nothing is created. */
static void test_open_existing_missing(void **state)
{
    struct fx *f = *state;
    char loc[512];
    f->be->missing(f, loc, sizeof loc);
    char err[256] = "";
    static int sentinel;
    struct store *st = (struct store *)(void *)&sentinel; /* set to NULL on failure */
    assert_int_equal(store_open(loc, STORE_EXISTING, 50, &st, err, sizeof err), STORE_GONE);
    assert_null(st);
    assert_non_null(strstr(err, "not found"));
    struct stat sb;
    assert_int_not_equal(stat(loc, &sb), 0); /* not created */
}

/* SQLite: nor in a directory that does not exist, in either mode. */
static void test_open_no_directory(void **state)
{
    struct fx *f = *state;
    char path[192], err[256] = "";
    struct store *st = NULL;
    snprintf(path, sizeof path, "%s/no/such/dir.db", f->dir);
    assert_int_equal(store_open(path, STORE_CREATE, 50, &st, err, sizeof err), STORE_ERR);
    assert_null(st);
    assert_true(err[0] != '\0');
    err[0] = '\0';
    assert_int_equal(store_open(path, STORE_EXISTING, 50, &st, err, sizeof err), STORE_GONE);
    /* and a directory is not a database */
    assert_int_equal(store_open(f->dir, STORE_EXISTING, 50, &st, err, sizeof err), STORE_ERR);
    assert_non_null(strstr(err, "not a regular file"));
}

/* SQLite: sqlite:PATH and sqlite://PATH name the file; a PostgreSQL URI is not SQLite's. */
static void test_open_locations(void **state)
{
    struct fx *f = *state;
    char loc[600], err[256] = "";
    struct store *st = NULL;
    add_out(f, "pending", ID1, "{}");
    snprintf(loc, sizeof loc, "sqlite:%s", f->loc);
    st = open_store(f, loc, STORE_EXISTING);
    assert_int_equal(store_outbound_pending(st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    store_close(st);
    snprintf(loc, sizeof loc, "sqlite://%s", f->loc);
    st = open_store(f, loc, STORE_EXISTING);
    store_close(st);
    st = NULL;
    /* a PostgreSQL URI goes to its backend (no server behind this one): refused clearly */
    assert_int_equal(store_open("postgresql://u:secret@/q?host=/nonexistent-sg-dir", STORE_EXISTING,
                                50, &st, err, sizeof err),
                     STORE_ERR);
    assert_null(st);
    assert_non_null(strstr(err, "PostgreSQL"));
    assert_null(strstr(err, "secret")); /* the URL may hold a password: not repeated */
    assert_int_equal(store_open("sqlite:", STORE_CREATE, 50, &st, err, sizeof err), STORE_ERR);
}

/* SQLite: a lock held while the tables are read makes store_open say STORE_BUSY, not ERR. */
static void test_open_busy(void **state)
{
    struct fx *f = *state;
    snprintf(f->loc, sizeof f->loc, "%s/old.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->loc, &db), SQLITE_OK);
    char *msg = NULL;
    /* a rollback-journal database (as a script may leave it), exclusively locked */
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE inbound_messages (id INTEGER PRIMARY KEY, "
                                  "message_id TEXT); CREATE TABLE outbound_messages (id INTEGER "
                                  "PRIMARY KEY, message_id TEXT); BEGIN EXCLUSIVE;",
                                  NULL, NULL, &msg),
                     SQLITE_OK);
    char err[256] = "";
    struct store *st = NULL;
    assert_int_equal(store_open(f->loc, STORE_EXISTING, 50, &st, err, sizeof err), STORE_BUSY);
    assert_null(st);
    assert_non_null(strstr(err, "locked"));
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
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
    struct store *st = NULL;
    assert_int_equal(store_open(path, STORE_EXISTING, 50, &st, err, sizeof err), STORE_ERR);
    assert_true(err[0] != '\0');
    err[0] = '\0';
    assert_int_equal(store_open(path, STORE_CREATE, 50, &st, err, sizeof err), STORE_ERR);
    assert_true(err[0] != '\0');
}

/* A database the original created before read_count existed gets the column. */
static void test_open_migrates_read_count(void **state)
{
    struct fx *f = *state;
    snprintf(f->loc, sizeof f->loc, "%s/old.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->loc, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE inbound_messages ("
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
                     " '{\"old\":true}', '2024-01-01T00:00:00.000000000', 'ack_sent', 1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    f->st = open_store(f, f->loc, STORE_EXISTING);
    assert_int_equal(f->be->raw_open(f), 0);
    assert_int_equal(qint(f, "SELECT count(*) FROM pragma_table_info('inbound_messages') "
                             "WHERE name = 'read_count'"),
                     1);
    assert_int_equal(
        qint(f, "SELECT read_count FROM inbound_messages WHERE message_id = '" ID1 "'"), 0);
    assert_col(f, T_IN, 1, "payload", "{\"old\":true}");
    assert_col(f, T_IN, 1, "state", "ack_sent");
    /* the outbound table is there (the original made both) */
    assert_int_equal(qint(f, "SELECT count(*) FROM sqlite_master WHERE name = 'outbound_messages'"),
                     1);
    /* and the store works on it */
    enum store_in_result is_new = (enum store_in_result) - 1;
    assert_int_equal(in_insert(f, ID2, "10.1.1.2", 5001, "{}", 2, 1, &is_new), STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW);
    /* opening it again does not try to add the column twice */
    store_close(f->st);
    f->st = open_store(f, f->loc, STORE_EXISTING);
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
        char path[192];
        snprintf(path, sizeof path, "%s/half%zu.db", f->dir, i);
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, cases[i][0], NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        struct stat before, after;
        assert_int_equal(stat(path, &before), 0);
        char err[256] = "";
        struct store *st = NULL;
        assert_int_equal(store_open(path, STORE_EXISTING, 50, &st, err, sizeof err), STORE_ERR);
        assert_non_null(strstr(err, "is not a securedgram database"));
        assert_non_null(strstr(err, cases[i][1]));
        assert_int_equal(stat(path, &after), 0);
        assert_int_equal(before.st_size, after.st_size);
        assert_int_equal(before.st_mtime, after.st_mtime);
        char wal[200];
        snprintf(wal, sizeof wal, "%s-wal", path);
        assert_int_not_equal(access(wal, F_OK), 0);
    }
    /* the daemon makes the missing table beside a proper one */
    snprintf(f->loc, sizeof f->loc, "%s/half.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->loc, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE inbound_messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " message_id TEXT NOT NULL, src_addr TEXT NOT NULL, src_port INTEGER NOT "
                     "NULL, payload TEXT NOT NULL, crypto_timestamp TEXT NOT NULL,"
                     " state TEXT NOT NULL DEFAULT 'received', ack_sent INTEGER NOT NULL DEFAULT "
                     "0, read_count INTEGER NOT NULL DEFAULT 0, received_at TEXT, ack_sent_at "
                     "TEXT, updated_at TEXT)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    f->st = open_store(f, f->loc, STORE_CREATE);
    assert_int_equal(f->be->raw_open(f), 0);
    assert_int_equal(qint(f, "SELECT count(*) FROM sqlite_master WHERE name = 'outbound_messages'"),
                     1);
}

/* ---- outbound ---- */

static void test_outbound_pending(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{\"n\":1}");
    add_out(f, "sent", ID1, "{\"n\":2}");
    int64_t b = add_out(f, "pending", ID2, "{\"n\":3}");
    add_out(f, "send_failed", NULL, "{\"n\":4}");
    int64_t c = add_out(f, "pending", NULL, "{\"n\":5}");
    int64_t d = add_out(f, "pending", NULL, "{\"n\":6}");
    X(f,
      "UPDATE outbound_messages SET retry_count = 3, dst_port = 61773, "
      "dst_addr = '192.168.1.9' WHERE id = %lld",
      (long long)b);

    assert_int_equal(store_outbound_pending(f->st, 3, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.full, 0);
    assert_int_equal(rows.out[0].rowid, a);
    assert_int_equal(rows.out[1].rowid, b);
    assert_int_equal(rows.out[2].rowid, c);
    assert_null(rows.out[0].message_id);
    assert_string_equal(rows.out[1].message_id, ID2);
    assert_string_equal(rows.out[0].dst_addr, "127.0.0.1");
    assert_int_equal(rows.out[0].dst_port, 9000);
    assert_string_equal(rows.out[0].dst_port_text, "9000");
    assert_null(rows.out[0].payload); /* read by store_outbound_payload */
    assert_int_equal(rows.out[0].age_ms, 0);
    assert_string_equal(rows.out[1].dst_addr, "192.168.1.9");
    assert_int_equal(rows.out[1].dst_port, 61773);
    assert_int_equal(rows.out[1].retry_count, 3);

    /* the rows are the caller's: the database may change under them */
    X(f, "UPDATE outbound_messages SET dst_addr = '10.0.0.0' WHERE id = %lld", (long long)a);
    assert_int_equal(out_failed(f, a, 0, "x"), STORE_OK);
    assert_string_equal(rows.out[0].dst_addr, "127.0.0.1");

    assert_int_equal(store_outbound_pending(f->st, 100, &rows), STORE_OK);
    assert_int_equal(rows.n, 3); /* b, c, d: a is failed now */
    assert_int_equal(rows.out[2].rowid, d);
    assert_int_equal(store_outbound_pending(f->st, 1, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, b);
    /* nothing pending */
    X(f, "UPDATE outbound_messages SET state = 'send_failed'");
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 0);
}

/* A buffer too small for the rows says so; long fields are cut to STORE_FIELD_MAX. */
static void test_rows_buffer(void **state)
{
    struct fx *f = *state;
    char longid[200];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    int64_t a = add_out(f, "pending", longid, "{}");
    for (int i = 0; i < 3; i++)
        add_out(f, "pending", NULL, "{}");
    struct store_rows small;
    assert_int_equal(store_rows_init(&small, 2, 2 * STORE_ROW_TEXT), 0);
    assert_int_equal(store_outbound_pending(f->st, 10, &small), STORE_OK); /* cut to cap */
    assert_int_equal(small.n, 2);
    assert_int_equal(small.out[0].rowid, a);
    assert_int_equal(strlen(small.out[0].message_id), STORE_FIELD_MAX);
    assert_int_equal(strncmp(small.out[0].message_id, longid, STORE_FIELD_MAX), 0);
    store_rows_free(&small);
    /* text for the first row only (64 + 9 + 4 bytes and their NULs): `full` says so */
    assert_int_equal(store_rows_init(&small, 4, 80), 0);
    assert_int_equal(store_outbound_pending(f->st, 4, &small), STORE_OK);
    assert_int_equal(small.n, 1);
    assert_int_equal(small.full, 1);
    store_rows_free(&small);
}

/*
 * Rows for destinations the engine names (their windows are full) are left
 * out, however many there are, and so are rows it skips; both sets survive a
 * rolled-back transaction.
 */
static void test_outbound_pending_exclude(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{}"); /* 127.0.0.1:9000 */
    int64_t b = add_out(f, "pending", NULL, "{}");
    int64_t c = add_out(f, "pending", NULL, "{}");
    int64_t d = add_out(f, "pending", NULL, "{}");
    X(f, "UPDATE outbound_messages SET dst_addr = '10.0.0.1' WHERE id = %lld", (long long)b);
    X(f, "UPDATE outbound_messages SET dst_port = 9001 WHERE id = %lld", (long long)c);
    X(f, "UPDATE outbound_messages SET dst_addr = '10.0.0.2', dst_port = 7 WHERE id = %lld",
      (long long)d);

    struct store_dest ex[2] = {{"127.0.0.1", 9000}, {"10.0.0.2", 7}};
    assert_int_equal(store_outbound_exclude(f->st, ex, 1), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.out[0].rowid, b);
    assert_int_equal(rows.out[1].rowid, c); /* same address, other port: not excluded */
    assert_int_equal(rows.out[2].rowid, d);
    assert_int_equal(store_outbound_exclude(f->st, ex, 2), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.out[0].rowid, b);
    assert_int_equal(rows.out[1].rowid, c);
    /* the limit counts rows after the exclusion */
    assert_int_equal(store_outbound_pending(f->st, 1, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, b);
    /* a skipped row is left out too, and a rollback keeps both sets */
    assert_int_equal(store_outbound_skip(f->st, &b, 1), STORE_OK);
    assert_int_equal(store_begin(f->st), STORE_OK);
    store_rollback(f->st);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, c);
    /* and without exclusions everything not skipped is back, in order */
    assert_int_equal(store_outbound_exclude(f->st, ex, 0), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.out[0].rowid, a);
    assert_int_equal(rows.out[2].rowid, d);
    /* several skipped at once */
    int64_t both[2] = {a, d};
    assert_int_equal(store_outbound_skip(f->st, both, 2), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, c);
}

/* Far more excluded destinations than the old fixed cap of 8: a live row is still found. */
static void test_outbound_pending_many_excluded(void **state)
{
    struct fx *f = *state;
    struct store_dest ex[40];
    for (int i = 0; i < 40; i++) {
        for (int k = 0; k < 20; k++)
            X(f,
              "INSERT INTO outbound_messages (dst_addr, dst_port, payload) "
              "VALUES ('127.0.0.1', %d, '{}')",
              10000 + i);
        ex[i] = (struct store_dest){"127.0.0.1", 10000 + i};
    }
    int64_t live = add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_outbound_exclude(f->st, ex, 40), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 5, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, live);
}

/* A payload is read only if it fits. */
static void test_outbound_payload(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{\"x\":1}");
    int64_t b = add_out(f, "pending", NULL, "{\"yy\":22}");
    add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_int_equal(store_outbound_payloads(f->st, 100, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.out[0].rowid, a);
    assert_string_equal(rows.out[0].payload, "{\"x\":1}");
    assert_int_equal(rows.out[0].payload_len, 7);
    assert_string_equal(rows.out[1].payload, "{\"yy\":22}");
    assert_string_equal(rows.out[2].payload, "{}");
    /* over max: not read, its size given */
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(store_outbound_payloads(f->st, 7, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_string_equal(rows.out[0].payload, "{\"x\":1}");
    assert_null(rows.out[1].payload);
    assert_int_equal(rows.out[1].payload_len, 9);
    assert_string_equal(rows.out[2].payload, "{}");
    /* a row gone since the rows were read: unreadable, and the next one is read */
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    X(f, "DELETE FROM outbound_messages WHERE id = %lld", (long long)b);
    assert_int_equal(store_outbound_payloads(f->st, 100, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_null(rows.out[1].payload);
    assert_true(rows.out[1].payload_len == STORE_PAYLOAD_UNREADABLE);
    assert_string_equal(rows.out[2].payload, "{}");
}

/* Payloads that do not fit the rows' text cut the rows short: the rest wait. */
static void test_outbound_payloads_room(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 4; i++)
        add_out(f, "pending", NULL, "{\"0123456789\":\"0123456789\"}");
    struct store_rows small;
    /* four rows' fields (10 + 5 bytes each, the id NULL) and room for two 29-byte payloads */
    assert_int_equal(store_rows_init(&small, 4, 4 * 16 + 2 * 30 + 1), 0);
    assert_int_equal(store_outbound_pending(f->st, 4, &small), STORE_OK);
    assert_int_equal(small.n, 4);
    assert_int_equal(small.full, 0);
    assert_int_equal(store_outbound_payloads(f->st, 100, &small), STORE_OK);
    assert_int_equal(small.n, 2);
    assert_int_equal(small.full, 1);
    assert_string_equal(small.out[1].payload, "{\"0123456789\":\"0123456789\"}");
    store_rows_free(&small);
}

/* SQLite: a huge one is refused from its size alone; a number is text by affinity. */
static void test_outbound_payload_huge(void **state)
{
    struct fx *f = *state;
    int64_t big = add_out(f, "pending", NULL, "{}");
    X(f, "UPDATE outbound_messages SET payload = CAST(zeroblob(50000000) AS TEXT) WHERE id = %lld",
      (long long)big);
    int64_t num = add_out(f, "pending", NULL, "{}");
    X(f, "UPDATE outbound_messages SET payload = 42 WHERE id = %lld", (long long)num);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(store_outbound_payloads(f->st, 65535, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_null(rows.out[0].payload);
    assert_int_equal(rows.out[0].payload_len, 50000000);
    assert_string_equal(rows.out[1].payload, "42");
}

/* SQLite: hostile columns: ports out of range or text, negative retry counts, NUL bytes. */
static void test_outbound_hostile_columns(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{}");
    int64_t b = add_out(f, "pending", NULL, "{}");
    int64_t c = add_out(f, "pending", NULL, "{}");
    int64_t d = add_out(f, "pending", NULL, "{}");
    X(f, "UPDATE outbound_messages SET dst_port = 4294967296 + 9000 WHERE id = %lld", (long long)a);
    X(f, "UPDATE outbound_messages SET retry_count = -1000000 WHERE id = %lld", (long long)b);
    X(f,
      "UPDATE outbound_messages SET dst_addr = CAST(X'3132372e302e302e3100ff' AS BLOB) "
      "WHERE id = %lld",
      (long long)c);
    X(f, "UPDATE outbound_messages SET dst_port = 'abc' WHERE id = %lld", (long long)d);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 4);
    assert_int_equal(rows.out[0].dst_port, -1);
    assert_string_equal(rows.out[0].dst_port_text, "4294976296");
    assert_int_equal(rows.out[1].retry_count, 0);
    assert_int_equal(rows.out[1].dst_port, 9000);
    assert_string_equal(rows.out[2].dst_addr, STORE_BAD_TEXT);
    /* a script's bad dst_port is reported as -1, with the text kept for the error */
    assert_int_equal(rows.out[3].dst_port, -1);
    assert_string_equal(rows.out[3].dst_port_text, "abc");
    X(f, "UPDATE outbound_messages SET dst_port = '9001' WHERE id = %lld", (long long)d);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.out[3].dst_port, 9001);
    assert_string_equal(rows.out[3].dst_port_text, "9001");
    /* the same for a recovered inbound row */
    X(f, "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, "
         "crypto_timestamp) VALUES ('" ID1 "', '127.0.0.1', 65536 + 7, '{}', 'x')");
    assert_int_equal(store_inbound_unacked(f->st, 0, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.in[0].src_port, -1);
}

static void test_outbound_take(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{\"a\":1}");
    int64_t b = add_out(f, "pending", NULL, "{\"b\":1}");
    int64_t c = add_out(f, "pending", ID3, "{\"message_id\":\"" ID3 "\"}");
    X(f, "UPDATE outbound_messages SET updated_at = '2000-01-01T00:00:00.000'");

    /* the payload text is taken by length, not up to a NUL */
    const char payload[] = "{\"message_id\":\"" ID1 "\",\"a\":1}TRAILING";
    size_t plen = strlen(payload) - strlen("TRAILING");
    assert_int_equal(store_outbound_take(f->st, a, ID1, payload, plen, 0, now_ms()), STORE_OK);
    assert_col(f, T_OUT, a, "state", "sent"); /* claimed straight to sent */
    assert_time_col(f, T_OUT, a, "sent_at");
    assert_col(f, T_OUT, a, "message_id", ID1);
    assert_col(f, T_OUT, a, "payload", "{\"message_id\":\"" ID1 "\",\"a\":1}");
    assert_time_col(f, T_OUT, a, "updated_at");

    /* NULL payload: the row's payload stays */
    assert_int_equal(store_outbound_take(f->st, c, ID3, NULL, 0, 0, now_ms()), STORE_OK);
    assert_col(f, T_OUT, c, "state", "sent");
    assert_col(f, T_OUT, c, "payload", "{\"message_id\":\"" ID3 "\"}");

    /* another row already has this message_id */
    assert_int_equal(store_outbound_take(f->st, b, ID1, "{}", 2, 0, now_ms()), STORE_DUP);
    assert_col(f, T_OUT, b, "state", "pending");
    assert_col(f, T_OUT, b, "message_id", NULL);
    assert_col(f, T_OUT, b, "payload", "{\"b\":1}");
    /* and the connection is still usable */
    assert_int_equal(store_outbound_take(f->st, b, ID2, NULL, 0, 0, now_ms()), STORE_OK);
    assert_col(f, T_OUT, b, "state", "sent");
    assert_col(f, T_OUT, b, "message_id", ID2);
    /* a row no longer pending is not claimed again */
    assert_int_equal(store_outbound_take(f->st, b, ID2, NULL, 0, 0, now_ms()), STORE_REFUSED);
}

/*
 * A set of claims in one call: every row taken (payloads by length, a NULL
 * one kept, sequences); a set with another row's message_id, or one given
 * twice, names the first row it could not take, as a claim alone would.
 */
static void test_outbound_take_set(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{\"a\":1}");
    int64_t b = add_out(f, "pending", NULL, "{\"b\":1}");
    int64_t c = add_out(f, "pending", ID3, "{\"message_id\":\"" ID3 "\"}");
    const char pa[] = "{\"message_id\":\"" ID1 "\",\"a\":1}TRAILING";
    struct store_take v[3] = {{a, ID1, pa, strlen(pa) - strlen("TRAILING"), 7},
                              {b, ID2, "{\"message_id\":\"" ID2 "\",\"b\":1}",
                               strlen("{\"message_id\":\"" ID2 "\",\"b\":1}"), 0},
                              {c, ID3, NULL, 0, 0}};
    int failed = -1;
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_take_set(f->st, v, 3, now_ms(), &failed), STORE_OK);
    assert_int_equal(failed, 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f, T_OUT, a, "state", "sent");
    assert_col(f, T_OUT, a, "message_id", ID1);
    assert_col(f, T_OUT, a, "payload", "{\"message_id\":\"" ID1 "\",\"a\":1}");
    assert_col(f, T_OUT, a, "sequence", "7");
    assert_time_col(f, T_OUT, a, "sent_at");
    assert_col(f, T_OUT, b, "message_id", ID2);
    assert_col(f, T_OUT, c, "state", "sent");
    assert_col(f, T_OUT, c, "payload", "{\"message_id\":\"" ID3 "\"}");

    /* another row's message_id: the first row not taken, and why */
    int64_t d = add_out(f, "pending", NULL, "{}");
    int64_t e = add_out(f, "pending", NULL, "{}");
    struct store_take w[2] = {{d, "dddddddddddddddddddddddd", NULL, 0, 0}, {e, ID1, NULL, 0, 0}};
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_take_set(f->st, w, 2, now_ms(), &failed), STORE_DUP);
    assert_int_equal(failed, 1);
    store_rollback(f->st);
    assert_col(f, T_OUT, e, "state", "pending");
    /* one message_id twice in the set: the second is the one not taken */
    struct store_take twice[2] = {{d, "eeeeeeeeeeeeeeeeeeeeeeee", NULL, 0, 0},
                                  {e, "eeeeeeeeeeeeeeeeeeeeeeee", NULL, 0, 0}};
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_take_set(f->st, twice, 2, now_ms(), &failed), STORE_DUP);
    assert_int_equal(failed, 1);
    store_rollback(f->st);
    /* a row no longer pending */
    struct store_take again[2] = {{d, "ffffffffffffffffffffffff", NULL, 0, 0},
                                  {a, ID1, NULL, 0, 0}};
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_take_set(f->st, again, 2, now_ms(), &failed), STORE_REFUSED);
    assert_int_equal(failed, 1);
    store_rollback(f->st);
    assert_col(f, T_OUT, d, "state", "pending");
}

static void test_outbound_sent(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sending", ID1, "{}");
    int64_t b = add_out(f, "sending", ID2, "{}");
    int64_t p = add_out(f, "pending", NULL, "{}");
    int64_t k = add_out(f, "acknowledged", ID3, "{}");

    assert_int_equal(out_sent(f, a, 0, NULL), STORE_OK);
    assert_col(f, T_OUT, a, "state", "sent");
    assert_col(f, T_OUT, a, "retry_count", "0");
    assert_time_col(f, T_OUT, a, "sent_at");
    assert_col(f, T_OUT, a, "last_error", NULL);

    assert_int_equal(out_sent(f, b, 2, "sendto: Resource temporarily unavailable"), STORE_OK);
    assert_col(f, T_OUT, b, "state", "sent");
    assert_col(f, T_OUT, b, "retry_count", "2");
    assert_col(f, T_OUT, b, "last_error", "sendto: Resource temporarily unavailable");
    /* a later send without a reason keeps the earlier reason */
    assert_int_equal(out_sent(f, b, 3, NULL), STORE_OK);
    assert_col(f, T_OUT, b, "retry_count", "3");
    assert_col(f, T_OUT, b, "last_error", "sendto: Resource temporarily unavailable");

    /* a retransmission: sent -> sent, retry_count and sent_at move on */
    X(f, "UPDATE outbound_messages SET sent_at = '2000-01-01T00:00:00.000' WHERE id = %lld",
      (long long)a);
    assert_int_equal(out_sent(f, a, 1, NULL), STORE_OK);
    assert_col(f, T_OUT, a, "state", "sent");
    assert_col(f, T_OUT, a, "retry_count", "1");
    char at[64];
    col(f, T_OUT, a, "sent_at", at, sizeof at);
    assert_string_not_equal(at, "2000-01-01T00:00:00.000");
    assert_time_col(f, T_OUT, a, "sent_at");

    /* pending and acknowledged rows are not made 'sent' */
    assert_int_equal(out_sent(f, p, 1, NULL), STORE_OK);
    assert_col(f, T_OUT, p, "state", "pending");
    assert_col(f, T_OUT, p, "sent_at", NULL);
    assert_int_equal(out_sent(f, k, 1, NULL), STORE_OK);
    assert_col(f, T_OUT, k, "state", "acknowledged");
    assert_col(f, T_OUT, k, "sent_at", NULL);
}

static void test_outbound_acked(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sent", ID1, "{}");
    int64_t b = add_out(f, "sending", ID2, "{}");
    int64_t p = add_out(f, "pending", ID3, "{}");
    int matched = -1;

    assert_int_equal(out_acked(f, a, &matched), STORE_OK);
    assert_int_equal(matched, 1);
    assert_col(f, T_OUT, a, "state", "acknowledged");
    assert_time_col(f, T_OUT, a, "ack_received_at");
    assert_time_col(f, T_OUT, a, "updated_at");

    /* a second ACK for the same message (the peer re-ACKs a retransmission) */
    matched = -1;
    X(f,
      "UPDATE outbound_messages SET ack_received_at = '2000-01-01T00:00:00.000' "
      "WHERE id = %lld",
      (long long)a);
    assert_int_equal(out_acked(f, a, &matched), STORE_OK);
    assert_int_equal(matched, 0);
    assert_col(f, T_OUT, a, "ack_received_at", "2000-01-01T00:00:00.000");

    /* an ACK for a row still in 'sending' (ACK raced our own bookkeeping) */
    matched = -1;
    assert_int_equal(out_acked(f, b, &matched), STORE_OK);
    assert_int_equal(matched, 1);
    assert_col(f, T_OUT, b, "state", "acknowledged");

    /* unknown id, and a row not yet sent */
    matched = -1;
    assert_int_equal(out_acked(f, 9999, &matched), STORE_OK);
    assert_int_equal(matched, 0);
    matched = -1;
    assert_int_equal(out_acked(f, p, &matched), STORE_OK);
    assert_int_equal(matched, 0);
    assert_col(f, T_OUT, p, "state", "pending");
    assert_col(f, T_OUT, p, "ack_received_at", NULL);

    /* a failed row is terminal */
    X(f, "UPDATE outbound_messages SET state = 'send_failed' WHERE id = %lld", (long long)p);
    matched = -1;
    assert_int_equal(out_acked(f, p, &matched), STORE_OK);
    assert_int_equal(matched, 0);
    assert_col(f, T_OUT, p, "state", "send_failed");
}

static void test_outbound_failed(void **state)
{
    struct fx *f = *state;
    int64_t p = add_out(f, "pending", NULL, "[1,2]");
    int64_t s = add_out(f, "sending", ID1, "{}");
    int64_t t = add_out(f, "sent", ID2, "{}");
    int64_t k = add_out(f, "acknowledged", ID3, "{}");

    assert_int_equal(out_failed(f, p, 0, "payload is not a JSON object"), STORE_OK);
    assert_col(f, T_OUT, p, "state", "send_failed");
    assert_col(f, T_OUT, p, "last_error", "payload is not a JSON object");
    assert_time_col(f, T_OUT, p, "updated_at");
    assert_int_equal(out_failed(f, s, 0, "sendto: Connection refused"), STORE_OK);
    assert_col(f, T_OUT, s, "state", "send_failed");
    assert_int_equal(out_failed(f, t, 11, "max retries exceeded (no ACK)"), STORE_OK);
    assert_col(f, T_OUT, t, "state", "send_failed");
    assert_col(f, T_OUT, t, "retry_count", "11");
    assert_col(f, T_OUT, t, "last_error", "max retries exceeded (no ACK)");
    /* acknowledged stays acknowledged */
    assert_int_equal(out_failed(f, k, 11, "late"), STORE_OK);
    assert_col(f, T_OUT, k, "state", "acknowledged");
    assert_col(f, T_OUT, k, "last_error", NULL);
}

/* sg-send --retry: send_failed rows back to pending, one or all (of a peer); others untouched. */
static void test_outbound_requeue(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "send_failed", ID1, "{}"), b = add_out(f, "send_failed", NULL, "{}");
    int64_t c = add_out(f, "send_failed", NULL, "{}"), k = add_out(f, "acknowledged", ID2, "{}");
    X(f, "UPDATE outbound_messages SET retry_count = 4, last_error = 'x'");
    X(f, "UPDATE outbound_messages SET peer = 'berlin' WHERE id = %lld", (long long)c);
    char err[256];
    int changed = -1;
    assert_int_equal(store_outbound_requeue(f->st, a, NULL, now_ms(), &changed, err, sizeof err),
                     STORE_OK);
    assert_int_equal(changed, 1);
    assert_col(f, T_OUT, a, "state", "pending");
    assert_col(f, T_OUT, a, "retry_count", "0");
    assert_col(f, T_OUT, a, "last_error", NULL);
    assert_col(f, T_OUT, a, "message_id", ID1);
    assert_time_col(f, T_OUT, a, "updated_at");
    assert_col(f, T_OUT, b, "state", "send_failed");
    /* a row in another state, or gone: nothing changes */
    assert_int_equal(store_outbound_requeue(f->st, k, NULL, now_ms(), &changed, err, sizeof err),
                     STORE_OK);
    assert_int_equal(changed, 0);
    assert_col(f, T_OUT, k, "state", "acknowledged");
    assert_int_equal(store_outbound_requeue(f->st, 9999, NULL, now_ms(), &changed, err, sizeof err),
                     STORE_OK);
    assert_int_equal(changed, 0);
    /* all of one peer's, then all */
    assert_int_equal(
        store_outbound_requeue(f->st, 0, "berlin", now_ms(), &changed, err, sizeof err), STORE_OK);
    assert_int_equal(changed, 1);
    assert_col(f, T_OUT, c, "state", "pending");
    assert_col(f, T_OUT, b, "state", "send_failed");
    assert_int_equal(store_outbound_requeue(f->st, 0, NULL, now_ms(), &changed, err, sizeof err),
                     STORE_OK);
    assert_int_equal(changed, 1);
    assert_col(f, T_OUT, b, "state", "pending");
    assert_col(f, T_OUT, k, "last_error", "x");
}

/* Several rows in one call: each gets its own change; none at all is no work. */
static void test_outbound_many(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sending", ID1, "{}");
    int64_t b = add_out(f, "sending", ID2, "{}");
    int64_t c = add_out(f, "sending", ID3, "{}");
    struct store_sent v[3] = {{a, 0, NULL}, {b, 4, "again"}, {c, 1, NULL}};
    int done = -1;
    assert_int_equal(store_outbound_sent(f->st, v, 3, now_ms(), &done), STORE_OK);
    assert_int_equal(done, 3);
    assert_col(f, T_OUT, a, "state", "sent");
    assert_col(f, T_OUT, b, "retry_count", "4");
    assert_col(f, T_OUT, b, "last_error", "again");
    assert_col(f, T_OUT, c, "retry_count", "1");
    int64_t ids[3] = {a, 9999, c};
    int matched = -1;
    assert_int_equal(store_outbound_acked(f->st, ids, 3, now_ms(), &matched, &done), STORE_OK);
    assert_int_equal(matched, 2);
    assert_int_equal(done, 3);
    assert_col(f, T_OUT, b, "state", "sent");
    assert_col(f, T_OUT, c, "state", "acknowledged");
    v[0].why = "x";
    assert_int_equal(store_outbound_failed(f->st, v, 2, now_ms(), &done), STORE_OK);
    assert_int_equal(done, 2);
    assert_col(f, T_OUT, a, "state", "acknowledged");
    assert_col(f, T_OUT, b, "state", "send_failed");
    assert_int_equal(store_outbound_sent(f->st, v, 0, now_ms(), &done), STORE_OK);
    assert_int_equal(done, 0);
}

/* SQLite: a refused row stops the call there; the rows before it stay done. */
static void test_outbound_many_refused(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sending", ID1, "{}");
    int64_t b = add_out(f, "sending", ID2, "{}");
    int64_t c = add_out(f, "sending", ID3, "{}");
    X(f,
      "CREATE TRIGGER no BEFORE UPDATE ON outbound_messages WHEN NEW.id = %lld "
      "BEGIN SELECT RAISE(ABORT, 'not this one'); END",
      (long long)b);
    struct store_sent v[3] = {{a, 1, NULL}, {b, 1, NULL}, {c, 1, NULL}};
    int done = -1;
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_sent(f->st, v, 3, now_ms(), &done), STORE_REFUSED);
    assert_int_equal(done, 1);
    assert_non_null(strstr(store_errmsg(f->st), "not this one"));
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(store_outbound_sent(f->st, v + done + 1, 1, now_ms(), &done), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f, T_OUT, a, "state", "sent");
    assert_col(f, T_OUT, b, "state", "sending");
    assert_col(f, T_OUT, c, "state", "sent");
    /* ACKs stop at the refused row too, and say where */
    int64_t ids[3] = {a, b, c};
    int matched = -1;
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_acked(f->st, ids, 3, now_ms(), &matched, &done), STORE_REFUSED);
    assert_int_equal(done, 1);
    assert_int_equal(matched, 1);
    store_rollback(f->st);
}

/* Several changes of one row in one call: applied in order, the last one wins. */
static void test_outbound_many_same_row(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sending", ID1, "{}");
    int64_t b = add_out(f, "sending", ID2, "{}");
    struct store_sent v[3] = {{a, 1, "first"}, {b, 5, NULL}, {a, 2, "second"}};
    int done = -1;
    assert_int_equal(store_outbound_sent(f->st, v, 3, now_ms(), &done), STORE_OK);
    assert_int_equal(done, 3);
    assert_col(f, T_OUT, a, "retry_count", "2");
    assert_col(f, T_OUT, a, "last_error", "second");
    assert_col(f, T_OUT, b, "retry_count", "5");
}

/*
 * SQLite: a row refused by a CHECK (no trigger: the rows go as one statement)
 * undoes the statement, and the rows are tried one by one: the same outcome.
 */
static void test_outbound_set_refused(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sending", ID1, "{}");
    int64_t b = add_out(f, "sending", ID2, "{}");
    int64_t c = add_out(f, "sending", ID3, "{}");
    X(f, "ALTER TABLE outbound_messages ADD COLUMN note TEXT CHECK (last_error IS NOT 'bad')");
    struct store_sent v[3] = {{a, 1, "ok"}, {b, 1, "bad"}, {c, 1, "ok"}};
    int done = -1;
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_failed(f->st, v, 3, now_ms(), &done), STORE_REFUSED);
    assert_int_equal(done, 1);
    assert_non_null(strstr(store_errmsg(f->st), "CHECK"));
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(store_outbound_failed(f->st, v + 2, 1, now_ms(), &done), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f, T_OUT, a, "state", "send_failed");
    assert_col(f, T_OUT, b, "state", "sending");
    assert_col(f, T_OUT, c, "state", "send_failed");
    /* ACKs by id and by message_id go as one statement too, with any text in the ids */
    X(f,
      "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp)"
      " VALUES ('q\"uo\\te', '127.0.0.1', 1, '{}', 'x'), ('" ID1 "', '127.0.0.1', 1, '{}', 'x')");
    const char *ids[3] = {"q\"uo\\te", ID1, "none"};
    assert_int_equal(store_inbound_ack_failed(f->st, ids, 3, now_ms(), &done), STORE_OK);
    assert_int_equal(done, 3);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages WHERE state = 'ack_failed'"),
                     2);
}

/*
 * The set-based claim: pending rows (what the claim leaves out left out)
 * become 'sending' in one statement and come back in id order; a claimed
 * row gets its message_id, or goes back to pending.
 */
static void test_outbound_claim(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{\"a\":1}");
    int64_t b = add_out(f, "pending", ID2, "{}");
    int64_t c = add_out(f, "pending", NULL, "{}");
    int64_t d = add_out(f, "pending", NULL, "{}");
    add_out(f, "sent", ID1, "{}");
    X(f, "UPDATE outbound_messages SET dst_port = 7 WHERE id = %lld", (long long)c);
    struct store_dest ex = {"127.0.0.1", 7};
    assert_int_equal(store_outbound_exclude(f->st, &ex, 1), STORE_OK);
    assert_int_equal(store_outbound_skip(f->st, &d, 1), STORE_OK);
    const int64_t t0 = 1582979696789LL;
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_claim(f->st, 10, t0, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.out[0].rowid, a);
    assert_int_equal(rows.out[1].rowid, b);
    assert_null(rows.out[0].message_id);
    assert_string_equal(rows.out[1].message_id, ID2);
    assert_string_equal(rows.out[0].dst_addr, "127.0.0.1");
    assert_int_equal(rows.out[0].dst_port, 9000);
    assert_null(rows.out[0].payload);
    assert_col(f, T_OUT, a, "state", "pending"); /* not yet visible to others */
    assert_int_equal(store_outbound_identify(f->st, a, ID3, "{\"a\":1,\"message_id\":\"" ID3 "\"}",
                                             strlen("{\"a\":1,\"message_id\":\"" ID3 "\"}"), t0),
                     STORE_OK);
    assert_int_equal(store_outbound_identify(f->st, b, ID3, NULL, 0, t0), STORE_DUP);
    assert_int_equal(store_outbound_release(f->st, &b, 1, t0), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f, T_OUT, a, "state", "sending");
    assert_col(f, T_OUT, a, "message_id", ID3);
    assert_col(f, T_OUT, a, "updated_at", "2020-02-29T12:34:56.789");
    assert_col(f, T_OUT, b, "state", "pending");
    assert_col(f, T_OUT, c, "state", "pending");
    assert_col(f, T_OUT, d, "state", "pending");
    /* only claimed rows are identified; the limit holds */
    assert_int_equal(store_outbound_identify(f->st, c, ID1, NULL, 0, t0), STORE_REFUSED);
    assert_int_equal(store_outbound_exclude(f->st, NULL, 0), STORE_OK);
    assert_int_equal(store_outbound_claim(f->st, 1, t0, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, b);
    /* rows the buffer cannot hold are not left 'sending': they go back */
    int64_t e = add_out(f, "pending", NULL, "{}");
    struct store_rows small;
    assert_int_equal(store_rows_init(&small, 4, 20), 0);
    assert_int_equal(store_outbound_claim(f->st, 4, t0, &small), STORE_OK);
    assert_int_equal(small.n, 1);
    assert_int_equal(small.full, 1);
    int64_t kept = small.out[0].rowid, back = kept == c ? e : c;
    assert_true(kept == c || kept == e);
    assert_col(f, T_OUT, kept, "state", "sending");
    assert_col(f, T_OUT, back, "state", "pending");
    assert_int_equal(qint(f, "SELECT count(*) FROM outbound_messages WHERE state = 'sending'"), 3);
    store_rows_free(&small);
}

static void test_recover_sending(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sending", ID1, "{\"message_id\":\"" ID1 "\"}");
    int64_t b = add_out(f, "sent", ID2, "{}");
    int64_t c = add_out(f, "sending", ID3, "{}");
    int64_t d = add_out(f, "pending", NULL, "{}");
    int moved = -1;
    assert_int_equal(store_recover_sending(f->st, now_ms(), &moved), STORE_OK);
    assert_int_equal(moved, 2);
    assert_col(f, T_OUT, a, "state", "pending");
    assert_col(f, T_OUT, c, "state", "pending");
    assert_col(f, T_OUT, b, "state", "sent");
    assert_col(f, T_OUT, d, "state", "pending");
    /* the id stays, so a resend is recognised as a duplicate by the receiver */
    assert_col(f, T_OUT, a, "message_id", ID1);
    assert_col(f, T_OUT, a, "payload", "{\"message_id\":\"" ID1 "\"}");
    assert_int_equal(store_recover_sending(f->st, now_ms(), &moved), STORE_OK);
    assert_int_equal(moved, 0);
}

static void test_outbound_load_sent(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sent", ID1, "{\"a\":1}");
    add_out(f, "pending", NULL, "{}");
    int64_t b = add_out(f, "sent", ID2, "{\"b\":1}");
    int64_t c = add_out(f, "sent", ID3, "{\"c\":1}");
    int64_t now = now_ms();
    char t[STORE_TIME_LEN];
    store_format_ms(now - 3000, t);
    X(f, "UPDATE outbound_messages SET sent_at = '%s', retry_count = 2 WHERE id = %lld", t,
      (long long)a);
    store_format_ms(now - 60000, t);
    X(f, "UPDATE outbound_messages SET sent_at = '%s' WHERE id = %lld", t, (long long)b);
    store_format_ms(now, t);
    X(f, "UPDATE outbound_messages SET sent_at = '%s' WHERE id = %lld", t, (long long)c);

    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, now, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.out[0].rowid, a);
    assert_int_equal(rows.out[1].rowid, b);
    assert_int_equal(rows.out[2].rowid, c);
    assert_string_equal(rows.out[0].message_id, ID1);
    assert_string_equal(rows.out[0].dst_addr, "127.0.0.1");
    assert_int_equal(rows.out[0].dst_port, 9000);
    assert_int_equal(rows.out[0].retry_count, 2);
    assert_null(rows.out[0].payload);
    /* ages from the caller's clock */
    assert_in_range(rows.out[0].age_ms, 2999, 3001);
    assert_in_range(rows.out[1].age_ms, 59999, 60001);
    assert_in_range(rows.out[2].age_ms, 0, 1);
    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, now + 10000, &rows), STORE_OK);
    assert_in_range(rows.out[0].age_ms, 12999, 13001);

    /* paging */
    assert_int_equal(store_outbound_load_sent(f->st, a, 1, now, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, b);
    assert_int_equal(store_outbound_load_sent(f->st, b, 10, now, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, c);
    assert_int_equal(store_outbound_load_sent(f->st, c, 10, now, &rows), STORE_OK);
    assert_int_equal(rows.n, 0);
}

static void test_outbound_get_sent(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sent", ID1, "{\"message_id\":\"" ID1 "\",\"x\":1}");
    int64_t p = add_out(f, "pending", NULL, "{}");
    int64_t k = add_out(f, "acknowledged", ID2, "{}");
    X(f, "UPDATE outbound_messages SET dst_addr = '10.9.8.7', dst_port = 4242 WHERE id = %lld",
      (long long)a);
    assert_int_equal(store_outbound_get_sent(f->st, a, 65535, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, a);
    assert_string_equal(rows.out[0].message_id, ID1);
    assert_string_equal(rows.out[0].dst_addr, "10.9.8.7");
    assert_int_equal(rows.out[0].dst_port, 4242);
    assert_string_equal(rows.out[0].payload, "{\"message_id\":\"" ID1 "\",\"x\":1}");
    assert_int_equal(rows.out[0].payload_len, strlen(rows.out[0].payload));
    /* larger than asked for: not read, its size told */
    assert_int_equal(store_outbound_get_sent(f->st, a, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_null(rows.out[0].payload);
    assert_int_equal(rows.out[0].payload_len, strlen("{\"message_id\":\"" ID1 "\",\"x\":1}"));

    assert_int_equal(store_outbound_get_sent(f->st, p, 65535, &rows), STORE_OK);
    assert_int_equal(rows.n, 0);
    assert_int_equal(store_outbound_get_sent(f->st, k, 65535, &rows), STORE_OK);
    assert_int_equal(rows.n, 0);
    assert_int_equal(store_outbound_get_sent(f->st, 9999, 65535, &rows), STORE_OK);
    assert_int_equal(rows.n, 0);
    X(f, "DELETE FROM outbound_messages WHERE id = %lld", (long long)a);
    assert_int_equal(store_outbound_get_sent(f->st, a, 65535, &rows), STORE_OK);
    assert_int_equal(rows.n, 0);
}

/* A peer's backlog older than the deadline fails; younger rows and other peers wait. */
static void test_outbound_expire(void **state)
{
    struct fx *f = *state;
    int64_t now = now_ms();
    char old[STORE_TIME_LEN], young[STORE_TIME_LEN];
    store_format_ms(now - 60000, old);
    store_format_ms(now - 1000, young);
    int64_t a = add_out(f, "pending", NULL, "{}");
    int64_t b = add_out(f, "pending", NULL, "{}");
    int64_t c = add_out(f, "pending", NULL, "{}");
    int64_t d = add_out(f, "sent", ID1, "{}");
    X(f, "UPDATE outbound_messages SET created_at = '%s'", old);
    X(f, "UPDATE outbound_messages SET created_at = '%s' WHERE id = %lld", young, (long long)b);
    X(f, "UPDATE outbound_messages SET dst_port = 9001 WHERE id = %lld", (long long)c);
    struct store_dest dest = {"127.0.0.1", 9000};
    int n = -1;
    assert_int_equal(
        store_outbound_expire(f->st, &dest, 30000, "peer not answering; not sent", now, &n),
        STORE_OK);
    assert_int_equal(n, 1);
    assert_col(f, T_OUT, a, "state", "send_failed");
    assert_col(f, T_OUT, a, "last_error", "peer not answering; not sent");
    assert_col(f, T_OUT, b, "state", "pending");
    assert_col(f, T_OUT, c, "state", "pending");
    assert_col(f, T_OUT, d, "state", "sent");
    /* a skipped row is left alone */
    X(f, "UPDATE outbound_messages SET created_at = '%s' WHERE id = %lld", old, (long long)b);
    assert_int_equal(store_outbound_skip(f->st, &b, 1), STORE_OK);
    assert_int_equal(store_outbound_expire(f->st, &dest, 30000, "x", now, &n), STORE_OK);
    assert_int_equal(n, 0);
}

/* ---- inbound ---- */

static void test_format(void **state)
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
    char t[STORE_TIME_LEN];
    store_format_ms(1763769601123LL, t);
    assert_string_equal(t, "2025-11-22T00:00:01.123");
    store_format_ms(951782400999LL, t);
    assert_string_equal(t, "2000-02-29T00:00:00.999");
    store_format_ms(0, t);
    assert_string_equal(t, "1970-01-01T00:00:00.000");
    store_format_ms(-5, t);
    assert_string_equal(t, "1970-01-01T00:00:00.000");
}

/* SQLite: store_format_ms writes what SQLite's strftime('%Y-%m-%dT%H:%M:%f') writes. */
static void test_format_as_sqlite(void **state)
{
    struct fx *f = *state;
    static const int64_t ms[] = {
        0, 1, 999, 1000, 86399999, 951782400999LL, 1763769601123LL, 4102444799999LL};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char mine[STORE_TIME_LEN], theirs[64];
        store_format_ms(ms[i], mine);
        qtext(f, theirs, sizeof theirs,
              "SELECT strftime('%%Y-%%m-%%dT%%H:%%M:%%f', %lld / 1000.0, 'unixepoch')",
              (long long)ms[i]);
        assert_string_equal(mine, theirs);
    }
}

/* Every write records the caller's time, not the database's. */
static void test_times_from_caller(void **state)
{
    struct fx *f = *state;
    const int64_t t0 = 1582979696789LL; /* 2020-02-29T12:34:56.789 */
    const char *text = "2020-02-29T12:34:56.789";
    int64_t a = add_out(f, "sending", ID1, "{}");
    int64_t p = add_out(f, "pending", NULL, "{}");
    struct store_sent v = {a, 0, NULL};
    assert_int_equal(store_outbound_sent(f->st, &v, 1, t0, NULL), STORE_OK);
    assert_col(f, T_OUT, a, "sent_at", text);
    assert_col(f, T_OUT, a, "updated_at", text);
    int matched = 0;
    assert_int_equal(store_outbound_acked(f->st, &a, 1, t0 + 1, &matched, NULL), STORE_OK);
    assert_col(f, T_OUT, a, "ack_received_at", "2020-02-29T12:34:56.790");
    assert_int_equal(store_outbound_take(f->st, p, ID2, NULL, 0, 0, t0), STORE_OK);
    assert_col(f, T_OUT, p, "sent_at", text);
    assert_col(f, T_OUT, p, "updated_at", text);
    int64_t s = add_out(f, "sending", NULL, "{}"); /* left by an earlier version, or the original */
    int moved = 0;
    assert_int_equal(store_recover_sending(f->st, t0 + 1000, &moved), STORE_OK);
    assert_int_equal(moved, 1);
    assert_col(f, T_OUT, s, "updated_at", "2020-02-29T12:34:57.789");
    int64_t row = 0;
    assert_int_equal(store_enqueue(f->st, NULL, "10.0.0.1", 7, NULL, "{}", 2, t0, &row, NULL, 0),
                     STORE_OK);
    assert_col(f, T_OUT, row, "created_at", text);
    assert_col(f, T_OUT, row, "updated_at", text);
    struct store_inbound m = {ID3, "10.0.0.1", 7, "{}", 2, 1, 0, NULL, 0};
    enum store_in_result res;
    assert_int_equal(store_inbound_insert(f->st, &m, 1, t0, &res, NULL, NULL), STORE_OK);
    int64_t in = qint(f, "SELECT id FROM inbound_messages WHERE message_id = '" ID3 "'");
    assert_col(f, T_IN, in, "received_at", text);
    assert_col(f, T_IN, in, "updated_at", text);
    const char *id = ID3;
    assert_int_equal(store_inbound_ack_sent(f->st, &id, 1, t0 + 2, NULL), STORE_OK);
    assert_col(f, T_IN, in, "ack_sent_at", "2020-02-29T12:34:56.791");
    assert_col(f, T_IN, in, "updated_at", "2020-02-29T12:34:56.791");
}

static void test_inbound_insert(void **state)
{
    struct fx *f = *state;
    enum store_in_result is_new = (enum store_in_result) - 1;
    /* payload taken by length (the daemon's JSON is not NUL-terminated) */
    const char payload[] = "{\"message_id\":\"" ID1 "\",\"c\":\"hi\"}\x01\x02garbage";
    size_t plen = strlen("{\"message_id\":\"" ID1 "\",\"c\":\"hi\"}");
    assert_int_equal(
        in_insert(f, ID1, "192.0.2.7", 65535, payload, plen, 1763769601123456789ULL, &is_new),
        STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW);
    int64_t id = qint(f, "SELECT id FROM inbound_messages WHERE message_id = '" ID1 "'");
    assert_col(f, T_IN, id, "src_addr", "192.0.2.7");
    assert_col(f, T_IN, id, "src_port", "65535");
    assert_col(f, T_IN, id, "payload", "{\"message_id\":\"" ID1 "\",\"c\":\"hi\"}");
    assert_col(f, T_IN, id, "crypto_timestamp", "2025-11-22T00:00:01.123456789");
    assert_col(f, T_IN, id, "state", "received");
    assert_col(f, T_IN, id, "ack_sent", "0");
    assert_col(f, T_IN, id, "read_count", "0");
    assert_col(f, T_IN, id, "ack_sent_at", NULL);
    assert_time_col(f, T_IN, id, "received_at");
    assert_time_col(f, T_IN, id, "updated_at");

    /* a retransmission: not inserted again, first copy kept */
    X(f, "UPDATE inbound_messages SET state = 'ack_sent', ack_sent = 1");
    is_new = (enum store_in_result) - 1;
    assert_int_equal(in_insert(f, ID1, "192.0.2.8", 1, "{\"other\":1}", 11, 5, &is_new), STORE_OK);
    assert_int_equal(is_new, STORE_IN_DUP);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 1);
    assert_col(f, T_IN, id, "src_addr", "192.0.2.7");
    assert_col(f, T_IN, id, "state", "ack_sent");
    assert_col(f, T_IN, id, "crypto_timestamp", "2025-11-22T00:00:01.123456789");

    /* several at once: a new one, a duplicate, another new one */
    struct store_inbound m[3] = {{ID2, "::1", 1, "{}", 2, 0, 0, NULL, 0},
                                 {ID1, "::1", 1, "{}", 2, 0, 0, NULL, 0},
                                 {ID3, "::1", 2, "{}", 2, 0, 0, NULL, 0}};
    enum store_in_result res[3];
    int64_t rowids[3] = {-1, -1, -1};
    int done = -1;
    assert_int_equal(store_inbound_insert(f->st, m, 3, now_ms(), res, rowids, &done), STORE_OK);
    assert_int_equal(done, 3);
    assert_int_equal(res[0], STORE_IN_NEW);
    assert_int_equal(res[1], STORE_IN_DUP);
    assert_int_equal(res[2], STORE_IN_NEW);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 3);
    /* each new row's id, 0 for the duplicate */
    assert_true(rowids[0] ==
                qint(f, "SELECT id FROM inbound_messages WHERE message_id = '%s'", ID2));
    assert_true(rowids[1] == 0);
    assert_true(rowids[2] ==
                qint(f, "SELECT id FROM inbound_messages WHERE message_id = '%s'", ID3));
}

/*
 * SQLite: an insert the database refuses is never taken for a duplicate: a
 * CHECK on a column the operator added, a trigger's RAISE(IGNORE), a UNIQUE
 * index of the operator's. Only a row that really exists is a duplicate.
 */
static void test_inbound_insert_refused(void **state)
{
    struct fx *f = *state;
    enum store_in_result res = STORE_IN_NEW;
    X(f, "ALTER TABLE inbound_messages ADD COLUMN note TEXT CHECK (payload NOT LIKE "
         "'%%poison%%')");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(in_insert(f, ID1, "127.0.0.1", 1, "{\"poison\":1}", 12, 1, &res),
                     STORE_REFUSED);
    assert_non_null(strstr(store_errmsg(f->st), "CHECK"));
    assert_int_equal(store_tx_aborted(f->st), 0); /* the rest of the turn goes on */
    assert_int_equal(in_insert(f, ID2, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_NEW);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 1);

    X(f, "CREATE TRIGGER ig BEFORE INSERT ON inbound_messages WHEN NEW.payload = '[]' "
         "BEGIN SELECT RAISE(IGNORE); END");
    assert_int_equal(in_insert(f, ID3, "127.0.0.1", 1, "[]", 2, 1, &res), STORE_REFUSED);
    /* a duplicate that the trigger also ignores is still a duplicate: the row exists */
    assert_int_equal(in_insert(f, ID2, "127.0.0.1", 1, "[]", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_DUP);

    X(f, "CREATE UNIQUE INDEX op ON inbound_messages(src_port)");
    assert_int_equal(in_insert(f, ID3, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_REFUSED);
    assert_non_null(strstr(store_errmsg(f->st), "UNIQUE"));
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 1);
    /* several at once: the refused one stops the call, the ones before it are in */
    struct store_inbound m[2] = {{ID1, "127.0.0.1", 2, "{}", 2, 0, 0, NULL, 0},
                                 {ID3, "127.0.0.1", 1, "{}", 2, 0, 0, NULL, 0}};
    enum store_in_result r2[2];
    int done = -1;
    assert_int_equal(store_inbound_insert(f->st, m, 2, now_ms(), r2, NULL, &done), STORE_REFUSED);
    assert_int_equal(done, 1);
    assert_int_equal(r2[0], STORE_IN_NEW);
}

/* SQLite: RAISE(ROLLBACK) ends the whole transaction: the caller learns it from store_tx_aborted.
 */
static void test_inbound_insert_rollback_trigger(void **state)
{
    struct fx *f = *state;
    enum store_in_result res = STORE_IN_NEW;
    X(f, "CREATE TRIGGER rb BEFORE INSERT ON inbound_messages WHEN NEW.payload = '[]' "
         "BEGIN SELECT RAISE(ROLLBACK, 'no thanks'); END");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(in_insert(f, ID1, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(in_insert(f, ID2, "127.0.0.1", 1, "[]", 2, 1, &res), STORE_REFUSED);
    assert_int_equal(store_tx_aborted(f->st), 1);
    assert_non_null(strstr(store_errmsg(f->st), "no thanks"));
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 0);
    store_rollback(f->st); /* harmless */
    assert_int_equal(store_tx_aborted(f->st), 0);
}

/* A message whose id is one of our own rows awaiting an ACK is a reflection: not stored. */
static void test_inbound_insert_own_id(void **state)
{
    struct fx *f = *state;
    enum store_in_result res = STORE_IN_NEW;
    add_out(f, "sent", ID1, "{}");
    add_out(f, "acknowledged", ID2, "{}");
    assert_int_equal(in_insert(f, ID1, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_OWN);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 0);
    /* once acknowledged it is no longer awaited (the same id may come the other way) */
    assert_int_equal(in_insert(f, ID2, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_NEW);
    /* a message we sent to ourselves is stored beside its outbound row */
    struct store_inbound self = {ID1, "127.0.0.1", 1, "{}", 2, 1, 1, NULL, 0};
    assert_int_equal(store_inbound_insert(f->st, &self, 1, now_ms(), &res, NULL, NULL), STORE_OK);
    assert_int_equal(res, STORE_IN_NEW);
}

/* SQLite: a statement running past the transaction's budget is interrupted and reads as BUSY. */
static void test_budget(void **state)
{
    struct fx *f = *state;
    X(f, "CREATE TABLE slow (x INTEGER)");
    X(f, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) "
         "INSERT INTO slow SELECT x FROM c");
    X(f, "CREATE TRIGGER s BEFORE UPDATE ON outbound_messages BEGIN "
         "SELECT count(*) FROM slow a, slow b, slow c; END");
    int64_t id = add_out(f, "pending", NULL, "{}");
    store_set_budget(f->st, 100);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(out_failed(f, id, 0, "x"), STORE_BUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(store_timed_out(f->st), 1);
    assert_int_equal(store_tx_aborted(f->st), 1);
    assert_non_null(strstr(store_errmsg(f->st), "longer than 100 ms"));
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited < 5);
    assert_col(f, T_OUT, id, "state", "pending");
    store_rollback(f->st);
    /* the next transaction starts with a fresh budget */
    X(f, "DROP TRIGGER s");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_timed_out(f->st), 0);
    assert_int_equal(out_failed(f, id, 0, "x"), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    /* after the commit, work outside a transaction is not held to the old budget */
    struct timespec pause = {0, 150 * 1000000L};
    nanosleep(&pause, NULL);
    for (int i = 0; i < 200; i++)
        add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_outbound_pending(f->st, 16, &rows), STORE_OK);
    assert_int_equal(store_timed_out(f->st), 0);
}

/* SQLite: a removed -wal is noticed like a removed database: the commit rolls back, GONE. */
static void test_wal_removed(void **state)
{
    struct fx *f = *state;
    int64_t id = add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_watch_start(f->st, 1000, mono_us()), STORE_OK);
    int changed = 0;
    assert_int_equal(store_poll(f->st, 0, mono_us(), &changed), STORE_OK);
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", f->loc);
    assert_int_equal(unlink(wal), 0);
    assert_int_equal(store_poll(f->st, 0, mono_us(), &changed), STORE_GONE);
    assert_non_null(strstr(store_errmsg(f->st), "removed or replaced"));
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(out_failed(f, id, 0, "x"), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_GONE);
    assert_int_equal(store_tx_aborted(f->st), 0); /* rolled back, not open */
}

/* SQLite: so is a database file renamed away while open. */
static void test_db_moved(void **state)
{
    struct fx *f = *state;
    char moved[200];
    snprintf(moved, sizeof moved, "%s/moved.db", f->dir);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(rename(f->loc, moved), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_GONE);
    assert_int_equal(rename(moved, f->loc), 0);
}

static void test_inbound_ack_states(void **state)
{
    struct fx *f = *state;
    int64_t a = add_in(f, ID1);
    int64_t b = add_in(f, ID2);
    int64_t c = add_in(f, ID3);

    assert_int_equal(in_ack_sent(f, ID1), STORE_OK);
    assert_col(f, T_IN, a, "state", "ack_sent");
    assert_col(f, T_IN, a, "ack_sent", "1");
    assert_time_col(f, T_IN, a, "ack_sent_at");
    assert_time_col(f, T_IN, a, "updated_at");

    assert_int_equal(in_ack_failed(f, ID2), STORE_OK);
    assert_col(f, T_IN, b, "state", "ack_failed");
    assert_col(f, T_IN, b, "ack_sent", "0");
    assert_col(f, T_IN, b, "ack_sent_at", NULL);

    /* only 'received' rows move */
    assert_int_equal(in_ack_failed(f, ID1), STORE_OK);
    assert_col(f, T_IN, a, "state", "ack_sent");
    assert_col(f, T_IN, a, "ack_sent", "1");
    assert_col(f, T_IN, c, "state", "received");
    assert_int_equal(in_ack_sent(f, "000000000000000000000000"), STORE_OK);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 3);
    /* several at once */
    X(f, "UPDATE inbound_messages SET state = 'received'");
    const char *ids[3] = {ID1, ID2, ID3};
    int done = -1;
    assert_int_equal(store_inbound_ack_sent(f->st, ids, 3, now_ms(), &done), STORE_OK);
    assert_int_equal(done, 3);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages WHERE state = 'ack_sent'"), 3);
    /* by rowid: the same, and only 'received' rows move */
    X(f, "UPDATE inbound_messages SET state = 'received', ack_sent = 0, ack_sent_at = NULL");
    X(f, "UPDATE inbound_messages SET state = 'ack_failed' WHERE id = %lld", (long long)b);
    const int64_t rowids[4] = {a, b, c, 999};
    done = -1;
    assert_int_equal(store_inbound_ack_sent_rows(f->st, rowids, 4, now_ms(), &done), STORE_OK);
    assert_int_equal(done, 4);
    assert_col(f, T_IN, a, "state", "ack_sent");
    assert_col(f, T_IN, a, "ack_sent", "1");
    assert_time_col(f, T_IN, a, "ack_sent_at");
    assert_col(f, T_IN, b, "state", "ack_failed");
    assert_col(f, T_IN, c, "state", "ack_sent");
}

/* SQLite: with a trigger on the table, ack_sent by rowid goes one row at a time, as well. */
static void test_inbound_ack_sent_rows_trigger(void **state)
{
    struct fx *f = *state;
    int64_t a = add_in(f, ID1), b = add_in(f, ID2), c = add_in(f, ID3);
    X(f, "CREATE TRIGGER t_in AFTER UPDATE ON inbound_messages BEGIN SELECT 1; END");
    const int64_t rowids[2] = {a, b};
    int done = -1;
    assert_int_equal(store_inbound_ack_sent_rows(f->st, rowids, 2, now_ms(), &done), STORE_OK);
    assert_int_equal(done, 2);
    assert_col(f, T_IN, a, "state", "ack_sent");
    assert_col(f, T_IN, b, "state", "ack_sent");
    assert_col(f, T_IN, c, "state", "received");
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
    assert_int_equal(in_ack_sent(f, ids[1]), STORE_OK);
    X(f, "UPDATE inbound_messages SET src_addr = '10.0.0.3', src_port = 3333 "
         "WHERE message_id = '000000000000000000000003'");

    assert_int_equal(store_inbound_unacked(f->st, 0, 2, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.in[0].rowid, rid[0]);
    assert_int_equal(rows.in[1].rowid, rid[2]);
    assert_string_equal(rows.in[1].message_id, ids[2]);
    assert_string_equal(rows.in[1].src_addr, "10.0.0.3");
    assert_int_equal(rows.in[1].src_port, 3333);
    assert_int_equal(store_inbound_unacked(f->st, rid[2], 2, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.in[0].rowid, rid[3]);
    assert_int_equal(rows.in[1].rowid, rid[4]);
    assert_int_equal(store_inbound_unacked(f->st, rid[4], 2, &rows), STORE_OK);
    assert_int_equal(rows.n, 0);
    assert_int_equal(store_inbound_unacked(f->st, 0, 100, &rows), STORE_OK);
    assert_int_equal(rows.n, 4); /* the buffer's 16 rows are room enough */
}

/* ---- transactions and other connections ---- */

static void test_transactions(void **state)
{
    struct fx *f = *state;
    enum store_in_result is_new = (enum store_in_result) - 1;
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(in_insert(f, ID1, "127.0.0.1", 1, "{}", 2, 1, &is_new), STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW);
    store_rollback(f->st);
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 0);
    store_rollback(f->st); /* harmless outside a transaction */

    /* committed: visible to others only after the commit */
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(in_insert(f, ID1, "127.0.0.1", 1, "{}", 2, 1, &is_new), STORE_OK);
    assert_int_equal(is_new, STORE_IN_NEW); /* the rolled-back row is gone: this one is new */
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 1);
}

/* Another connection's commit is noticed; our own are not reported. */
static void test_watch(void **state)
{
    struct fx *f = *state;
    int changed = -1;
    int64_t t = mono_us();
    assert_int_equal(store_watch_start(f->st, 1000, t), STORE_OK);
    assert_true(store_poll_due_us(f->st) == t + 1000000);
    assert_int_equal(store_poll(f->st, 0, t, &changed), STORE_OK);
    assert_int_equal(changed, 0);
    add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_poll(f->st, 0, t + 1, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(store_poll(f->st, 0, t + 2, &changed), STORE_OK);
    assert_int_equal(changed, 0);
    int64_t id = add_out(f, "pending", NULL, "{}");
    X(f, "UPDATE outbound_messages SET payload = '[]' WHERE id = %lld", (long long)id);
    assert_int_equal(store_poll(f->st, 0, t + 3, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(out_failed(f, id, 0, "x"), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_poll(f->st, 0, t + 4, &changed), STORE_OK);
    assert_int_equal(changed, 0);
    /* the schedule runs on the caller's clock */
    assert_true(store_poll_due_us(f->st) == t + 4 + 1000000);
}

/* SQLite: a -wal event starts the re-check ladder (0.1 ms first) on the caller's clock. */
static void test_watch_events(void **state)
{
    struct fx *f = *state;
    int changed = 0;
    int64_t t = mono_us();
    assert_int_equal(store_watch_start(f->st, 1000, t), STORE_OK);
    int fd = store_watch_fd(f->st);
    assert_true(fd >= 0);
    assert_int_equal(store_watch_fd(f->st), fd); /* made once */
    add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_poll(f->st, 1, t + 10, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_true(store_poll_due_us(f->st) == t + 10 + 100);
    assert_int_equal(store_poll(f->st, 0, t + 110, &changed), STORE_OK);
    assert_true(store_poll_due_us(f->st) == t + 10 + 1000);
}

static void test_busy(void **state)
{
    struct fx *f = *state;
    int64_t id = add_out(f, "pending", NULL, "{}");
    f->be->lock(f);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_begin(f->st), STORE_BUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(store_tx_aborted(f->st), 0);
    /* gave up after about the busy timeout (50 ms), not the tools' seconds */
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited < 1.5);
    /* a write outside a transaction is refused as busy too, and changes nothing */
    assert_int_equal(out_failed(f, id, 0, "x"), STORE_BUSY);
    enum store_in_result is_new = (enum store_in_result) - 1;
    assert_int_equal(in_insert(f, ID1, "127.0.0.1", 1, "{}", 2, 1, &is_new), STORE_BUSY);
    assert_int_equal((int)is_new, -1);
    /* reading still works while another connection writes */
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    f->be->unlock(f);

    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(out_failed(f, id, 0, "x"), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f, T_OUT, id, "state", "send_failed");
    assert_non_null(store_errmsg(f->st));
}

/* ---- the tools' calls ---- */

/* The states and their tables. */
static void test_states(void **state)
{
    (void)state;
    int active = -1;
    assert_int_equal(store_state_table("pending", &active), STORE_OUTBOUND);
    assert_int_equal(active, 1);
    assert_int_equal(store_state_table("acknowledged", &active), STORE_OUTBOUND);
    assert_int_equal(active, 0);
    assert_int_equal(store_state_table("received", &active), STORE_INBOUND);
    assert_int_equal(active, 1);
    assert_int_equal(store_state_table("ack_failed", &active), STORE_INBOUND);
    assert_int_equal(active, 0);
    assert_int_equal(store_state_table("bogus", &active), 0);
    assert_non_null(strstr(store_states_text(STORE_OUTBOUND), "send_failed"));
}

/*
 * Marking read sets updated_at to the caller's time, as the original does:
 * sg-clean ages rows by it, so a message read today must not look ten days
 * old. So does undoing a marking (every write does); a read without marking
 * writes nothing.
 */
static void test_tool_mark_sets_updated_at(void **state)
{
    struct fx *f = *state;
    int64_t a = add_old_in(f, ID1), b = add_old_in(f, ID2);
    char err[256] = "", want[STORE_TIME_LEN];
    struct store_selected *c = NULL;
    size_t n = 0;
    int64_t now = now_ms();
    store_format_ms(now, want);
    struct store_query q = {.table = STORE_INBOUND, .id = b, .mark = 0};
    assert_int_equal(store_select(f->st, &q, now, &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 1);
    free(c);
    assert_col(f, T_IN, b, "updated_at", "2020-01-01T00:00:00.000"); /* --no-mark */

    q.mark = 1;
    q.unread_only = 1;
    q.id = 0;
    assert_int_equal(store_select(f->st, &q, now, &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].id, b); /* newest first */
    assert_int_equal(c[0].before_type, STORE_INT);
    assert_int_equal(c[0].before_i, 0);
    assert_int_equal(
        qint(f, "SELECT read_count FROM inbound_messages WHERE id = %lld", (long long)a), 1);
    assert_col(f, T_IN, a, "updated_at", want);
    assert_col(f, T_IN, b, "updated_at", want);

    X(f, "UPDATE inbound_messages SET updated_at = '2020-01-01T00:00:00.000'");
    assert_int_equal(store_unmark(f->st, c, n, now + 5, err, sizeof err), STORE_OK);
    assert_int_equal(qint(f, "SELECT sum(read_count) FROM inbound_messages"), 0);
    store_format_ms(now + 5, want);
    assert_col(f, T_IN, b, "updated_at", want);
    free(c);
}

/* A fetched row is a copy: every column, read_count as before the marking. */
static void test_tool_fetch(void **state)
{
    struct fx *f = *state;
    int64_t a = add_old_in(f, ID1);
    char err[256] = "";
    struct store_selected *c = NULL;
    size_t n = 0;
    struct store_query q = {.table = STORE_INBOUND, .mark = 1};
    assert_int_equal(store_select(f->st, &q, now_ms(), &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 1);
    struct store_record rec = {0};
    int found = 0;
    assert_int_equal(store_fetch(f->st, STORE_INBOUND, &c[0], &rec, &found, err, sizeof err),
                     STORE_OK);
    assert_int_equal(found, 1);
    assert_int_equal(rec.id, a);
    X(f, "DELETE FROM inbound_messages"); /* the copy stays */
    int seen = 0;
    for (int k = 0; k < rec.ncols; k++) {
        if (strcmp(rec.col[k].name, "message_id") == 0) {
            assert_int_equal(rec.col[k].type, STORE_TEXT);
            assert_string_equal(rec.col[k].text, ID1);
            seen++;
        } else if (strcmp(rec.col[k].name, "read_count") == 0) {
            assert_int_equal(rec.col[k].type, STORE_INT);
            assert_int_equal(rec.col[k].i, 0); /* before the marking */
            seen++;
        } else if (strcmp(rec.col[k].name, "ack_sent_at") == 0) {
            assert_int_equal(rec.col[k].type, STORE_NULL);
            seen++;
        }
    }
    assert_int_equal(seen, 3);
    assert_int_equal(rec.ncols, 14);
    found = -1;
    assert_int_equal(store_fetch(f->st, STORE_INBOUND, &c[0], &rec, &found, err, sizeof err),
                     STORE_OK);
    assert_int_equal(found, 0); /* deleted since */
    store_record_free(&rec);
    free(c);
}

/* sg-send's row and its state; a taken message_id is the tools' own line. */
static void test_tool_enqueue(void **state)
{
    struct fx *f = *state;
    char err[256] = "", st[STORE_STATE_MAX], why[128];
    int64_t row = 0;
    int found = -1;
    assert_int_equal(store_enqueue(f->st, ID1, "10.0.0.1", 9, NULL, "{\"a\":1}", 7, now_ms(), &row,
                                   err, sizeof err),
                     STORE_OK);
    assert_col(f, T_OUT, row, "state", "pending");
    assert_col(f, T_OUT, row, "payload", "{\"a\":1}");
    assert_time_col(f, T_OUT, row, "created_at");
    assert_int_equal(store_outbound_state(f->st, row, &found, st, why, sizeof why, err, sizeof err),
                     STORE_OK);
    assert_int_equal(found, 1);
    assert_string_equal(st, "pending");
    assert_string_equal(why, "");
    assert_int_equal(
        store_outbound_state(f->st, row + 1, &found, st, why, sizeof why, err, sizeof err),
        STORE_OK);
    assert_int_equal(found, 0);
    assert_int_equal(
        store_enqueue(f->st, ID1, "10.0.0.1", 9, NULL, "{}", 2, now_ms(), &row, err, sizeof err),
        STORE_DUP);
    assert_string_equal(err, "message_id " ID1 " is already used by another outbound message");
}

/* sg-clean's counts by state, and the deletion. */
static void test_tool_purge(void **state)
{
    struct fx *f = *state;
    add_old_in(f, ID1);
    add_old_in(f, ID2);
    int64_t young = add_old_in(f, ID3);
    X(f, "UPDATE inbound_messages SET read_count = 1");
    X(f, "UPDATE inbound_messages SET updated_at = '2030-01-01T00:00:00.000' WHERE id = %lld",
      (long long)young);
    add_out(f, "acknowledged", ID1, "{}");
    X(f, "UPDATE outbound_messages SET updated_at = 'garbage'");
    static const char *const done[] = {"ack_sent", "ack_failed", NULL};
    struct store_purge p[2] = {{STORE_INBOUND, "2025-01-01T00:00:00.000", done, 1, NULL},
                               {STORE_OUTBOUND, "2025-01-01T00:00:00.000", NULL, 0, NULL}};
    char err[256] = "";
    struct store_state_count *v = NULL;
    size_t n = 0;
    assert_int_equal(store_purge_count(f->st, &p[0], &v, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].state, "ack_sent");
    assert_int_equal(v[0].n, 2);
    free(v);
    int64_t unreadable = -1;
    assert_int_equal(store_purge_unreadable(f->st, &p[1], &unreadable, err, sizeof err), STORE_OK);
    assert_int_equal(unreadable, 1);
    int64_t deleted[2] = {-1, -1};
    assert_int_equal(store_purge(f->st, p, 2, deleted, err, sizeof err), STORE_OK);
    assert_int_equal(deleted[0], 2);
    assert_int_equal(deleted[1], 0);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 1);
    assert_int_equal(store_vacuum(f->st, err, sizeof err), STORE_OK);
}

/* The largest id of each table, for sg-recv --follow's start; 0 when empty. */
static void test_tool_max_id(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    int64_t max = -1;
    assert_int_equal(store_max_id(f->st, STORE_INBOUND, &max, err, sizeof err), STORE_OK);
    assert_int_equal(max, 0);
    add_old_in(f, ID1);
    int64_t last = add_old_in(f, ID2);
    int64_t out = add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_max_id(f->st, STORE_INBOUND, &max, err, sizeof err), STORE_OK);
    assert_int_equal(max, last);
    assert_int_equal(store_max_id(f->st, STORE_OUTBOUND, &max, NULL, 0), STORE_OK);
    assert_int_equal(max, out);
}

/* Locked past the busy timeout: the original's wording, in one line. */
static void test_tool_busy_text(void **state)
{
    struct fx *f = *state;
    add_old_in(f, ID1);
    f->be->lock(f);
    char err[256] = "";
    struct store_selected *c = NULL;
    size_t n = 0;
    struct store_query q = {.table = STORE_INBOUND, .mark = 1};
    assert_int_equal(store_select(f->st, &q, now_ms(), &c, &n, err, sizeof err), STORE_BUSY);
    assert_string_equal(err, STORE_BUSY_TEXT);
    assert_int_equal(strncmp(err, "Database is busy: ", 18), 0);
    assert_null(strchr(err, '\n'));
    assert_null(c);
    f->be->unlock(f);
    assert_int_equal(qint(f, "SELECT read_count FROM inbound_messages"), 0);
}

/* ---- peers (issue 11): the peer column of both tables ---- */

#define PEER64 "p123456789012345678901234567890123456789012345678901234567890123"

/* An inbound row's peer is stored as given, NULL as NULL, and comes back for the re-ACK. */
static void test_peer_inbound(void **state)
{
    struct fx *f = *state;
    struct store_inbound m[3] = {{ID1, "10.0.0.1", 4000, "{}", 2, 1, 0, "berlin", 0},
                                 {ID2, "10.0.0.2", 4001, "{}", 2, 1, 0, NULL, 0},
                                 {ID3, "10.0.0.3", 4002, "{}", 2, 1, 0, PEER64, 0}};
    enum store_in_result res[3];
    int64_t rowids[3] = {0, 0, 0};
    int done = -1;
    assert_int_equal(store_inbound_insert(f->st, m, 3, now_ms(), res, rowids, &done), STORE_OK);
    assert_int_equal(done, 3);
    assert_col(f, T_IN, rowids[0], "peer", "berlin");
    assert_col(f, T_IN, rowids[1], "peer", NULL);
    assert_col(f, T_IN, rowids[2], "peer", PEER64);
    /* a message to ourselves (the other statement) keeps its peer too */
    add_out(f, "sent", "0123456789abcdef0123456f", "{}");
    struct store_inbound self = {
        "0123456789abcdef0123456f", "127.0.0.1", 1, "{}", 2, 1, 1, "self.peer", 0};
    enum store_in_result r1 = STORE_IN_DUP;
    int64_t self_row = 0;
    assert_int_equal(store_inbound_insert(f->st, &self, 1, now_ms(), &r1, &self_row, NULL),
                     STORE_OK);
    assert_int_equal(r1, STORE_IN_NEW);
    assert_col(f, T_IN, self_row, "peer", "self.peer");
    /* a duplicate from another peer does not change the stored row's peer */
    struct store_inbound dup = {ID1, "10.0.0.9", 4000, "{}", 2, 1, 0, "other", 0};
    assert_int_equal(store_inbound_insert(f->st, &dup, 1, now_ms(), &r1, NULL, NULL), STORE_OK);
    assert_int_equal(r1, STORE_IN_DUP);
    assert_col(f, T_IN, rowids[0], "peer", "berlin");

    /* the start-up re-ACK query returns it, NULL as NULL, as the caller's copy */
    assert_int_equal(store_inbound_unacked(f->st, 0, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 4);
    assert_int_equal(rows.in[0].rowid, rowids[0]);
    assert_string_equal(rows.in[0].peer, "berlin");
    assert_null(rows.in[1].peer);
    assert_string_equal(rows.in[2].peer, PEER64);
    assert_string_equal(rows.in[3].peer, "self.peer");
    X(f, "UPDATE inbound_messages SET peer = 'changed'");
    assert_string_equal(rows.in[0].peer, "berlin");
}

/*
 * An outbound row's peer comes back from every query that gives the daemon
 * outbound rows: pending, the set-based claim, load_sent and get_sent; NULL
 * stays NULL, and the row's dst_addr and dst_port come as they are.
 */
static void test_peer_outbound(void **state)
{
    struct fx *f = *state;
    char err[256] = "";
    int64_t a = 0, b = add_out(f, "pending", NULL, "{}");
    assert_int_equal(
        store_enqueue(f->st, NULL, "", 0, "berlin", "{}", 2, now_ms(), &a, err, sizeof err),
        STORE_OK);
    assert_col(f, T_OUT, a, "peer", "berlin");
    assert_col(f, T_OUT, a, "dst_addr", "");
    assert_col(f, T_OUT, a, "dst_port", "0");
    assert_col(f, T_OUT, a, "state", "pending");
    assert_col(f, T_OUT, b, "peer", NULL);

    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.out[0].rowid, b);
    assert_null(rows.out[0].peer);
    assert_int_equal(rows.out[1].rowid, a);
    assert_string_equal(rows.out[1].peer, "berlin");
    assert_string_equal(rows.out[1].dst_addr, "");
    assert_int_equal(rows.out[1].dst_port, -1); /* not a port: the peer says where it goes */
    assert_string_equal(rows.out[1].dst_port_text, "0");
    /* with payloads read, and with something left out (the other form of the query) */
    assert_int_equal(store_outbound_payloads(f->st, 100, &rows), STORE_OK);
    assert_string_equal(rows.out[1].peer, "berlin");
    assert_string_equal(rows.out[1].payload, "{}");
    struct store_dest ex = {"10.9.9.9", 1};
    assert_int_equal(store_outbound_exclude(f->st, &ex, 1), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_null(rows.out[0].peer);
    assert_string_equal(rows.out[1].peer, "berlin");
    assert_int_equal(store_outbound_exclude(f->st, NULL, 0), STORE_OK);

    /* the set-based claim */
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_claim(f->st, 10, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_null(rows.out[0].peer);
    assert_string_equal(rows.out[1].peer, "berlin");
    int64_t both[2] = {a, b};
    assert_int_equal(store_outbound_release(f->st, both, 2, now_ms()), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);

    /* the claim one row at a time, then the rows left 'sent' and a retransmission's read */
    assert_int_equal(store_outbound_take(f->st, a, ID1, NULL, 0, 0, now_ms()), STORE_OK);
    assert_int_equal(store_outbound_take(f->st, b, ID2, NULL, 0, 0, now_ms()), STORE_OK);
    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_null(rows.out[0].peer);
    assert_string_equal(rows.out[1].peer, "berlin");
    assert_string_equal(rows.out[1].message_id, ID1);
    assert_in_range(rows.out[1].age_ms, 0, 5000); /* the column after peer */
    assert_int_equal(store_outbound_get_sent(f->st, a, 100, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.out[0].peer, "berlin");
    assert_string_equal(rows.out[0].payload, "{}"); /* the column after peer */
    assert_int_equal(store_outbound_get_sent(f->st, b, 100, &rows), STORE_OK);
    assert_null(rows.out[0].peer);
    assert_col(f, T_OUT, a, "peer", "berlin"); /* the claim leaves it as it is */
}

/*
 * SQLite: a peer column a script filled badly: a NUL inside, or longer than a
 * name may be, reads as STORE_BAD_TEXT (never cut: the cut name could be
 * another peer's); 64 bytes is whole, a BLOB of text reads as text. Four
 * fields of the longest kind fit STORE_ROW_TEXT.
 */
static void test_peer_hostile(void **state)
{
    struct fx *f = *state;
    int64_t r[4];
    for (int i = 0; i < 4; i++)
        r[i] = add_out(f, "pending", NULL, "{}");
    X(f, "UPDATE outbound_messages SET peer = CAST(X'6265726c696e0078' AS BLOB) WHERE id = %lld",
      (long long)r[0]);
    X(f, "UPDATE outbound_messages SET peer = '" PEER64 "x' WHERE id = %lld", (long long)r[1]);
    X(f, "UPDATE outbound_messages SET peer = '" PEER64 "' WHERE id = %lld", (long long)r[2]);
    X(f, "UPDATE outbound_messages SET peer = CAST('berlin' AS BLOB) WHERE id = %lld",
      (long long)r[3]);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 4);
    assert_string_equal(rows.out[0].peer, STORE_BAD_TEXT);
    assert_string_equal(rows.out[1].peer, STORE_BAD_TEXT);
    assert_string_equal(rows.out[2].peer, PEER64);
    assert_string_equal(rows.out[3].peer, "berlin");
    X(f, "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, "
         "crypto_timestamp, peer) VALUES ('" ID1 "', '127.0.0.1', 7, '{}', 'x', '" PEER64 "y')");
    assert_int_equal(store_inbound_unacked(f->st, 0, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.in[0].peer, STORE_BAD_TEXT);

    /* every field at its longest: two rows fit 2 x STORE_ROW_TEXT */
    char longtext[200];
    memset(longtext, 'x', sizeof longtext - 1); /* not a number: dst_port keeps it as text */
    longtext[sizeof longtext - 1] = '\0';
    X(f, "DELETE FROM outbound_messages");
    for (int i = 0; i < 2; i++)
        X(f,
          "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, peer) "
          "VALUES ('%s%d', '%s', '%s', '{}', '" PEER64 "')",
          longtext, i, longtext, longtext);
    struct store_rows small;
    assert_int_equal(store_rows_init(&small, 2, 2 * STORE_ROW_TEXT), 0);
    assert_int_equal(store_outbound_pending(f->st, 2, &small), STORE_OK);
    assert_int_equal(small.n, 2);
    assert_int_equal(small.full, 0);
    assert_string_equal(small.out[1].peer, PEER64);
    assert_int_equal(strlen(small.out[1].dst_addr), STORE_FIELD_MAX);
    assert_int_equal(strlen(small.out[1].dst_port_text), STORE_FIELD_MAX);
    store_rows_free(&small);
}

/* Inserts a pending outbound row for peer (dst 127.0.0.1:9000, as a script may leave it). */
static int64_t add_peer_out(struct fx *f, const char *peer)
{
    return qint(f,
                "INSERT INTO outbound_messages (dst_addr, dst_port, payload, peer) "
                "VALUES ('127.0.0.1', 9000, '{}', '%s') RETURNING id",
                peer);
}

/*
 * Rows of peers are left out by their peer's name, never by their dst_addr
 * and dst_port; however many wait for a left-out peer, the others are found;
 * the set survives a rollback and applies to the set-based claim too.
 */
static void test_peer_exclude(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{}"); /* 127.0.0.1:9000, no peer */
    int64_t b = add_peer_out(f, "berlin");
    int64_t c = add_peer_out(f, "paris");
    struct store_dest ex = {"127.0.0.1", 9000};
    assert_int_equal(store_outbound_exclude(f->st, &ex, 1), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 2); /* the peers' rows do not go to 127.0.0.1:9000 */
    assert_int_equal(rows.out[0].rowid, b);
    assert_int_equal(rows.out[1].rowid, c);
    assert_int_equal(store_outbound_exclude(f->st, NULL, 0), STORE_OK);
    const char *berlin[] = {"berlin"};
    assert_int_equal(store_outbound_exclude_peers(f->st, berlin, 1), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.out[0].rowid, a);
    assert_int_equal(rows.out[1].rowid, c);
    /* both sets at once; a rollback keeps them */
    assert_int_equal(store_outbound_exclude(f->st, &ex, 1), STORE_OK);
    assert_int_equal(store_begin(f->st), STORE_OK);
    store_rollback(f->st);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, c);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_claim(f->st, 10, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, c);
    store_rollback(f->st);
    /* a backlog for a left-out peer does not hide the rows behind it */
    assert_int_equal(store_outbound_exclude(f->st, NULL, 0), STORE_OK);
    for (int i = 0; i < 40; i++)
        add_peer_out(f, "berlin");
    int64_t live = add_peer_out(f, "rome");
    assert_int_equal(store_outbound_pending(f->st, 3, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.out[0].rowid, a);
    assert_int_equal(rows.out[1].rowid, c);
    assert_int_equal(rows.out[2].rowid, live);
    /* and with no peer left out, they are all back */
    assert_int_equal(store_outbound_exclude_peers(f->st, NULL, 0), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 3, &rows), STORE_OK);
    assert_int_equal(rows.out[1].rowid, b);
}

/* A silent peer's backlog fails by its name; a destination's leaves rows of peers alone. */
static void test_peer_expire(void **state)
{
    struct fx *f = *state;
    int64_t now = now_ms();
    char old[STORE_TIME_LEN];
    store_format_ms(now - 60000, old);
    int64_t a = add_out(f, "pending", NULL, "{}");
    int64_t b = add_peer_out(f, "berlin");
    int64_t c = add_peer_out(f, "paris");
    int64_t d = add_peer_out(f, "berlin");
    X(f, "UPDATE outbound_messages SET created_at = '%s' WHERE id != %lld", old, (long long)d);
    struct store_dest dest = {"127.0.0.1", 9000};
    int n = -1;
    assert_int_equal(store_outbound_expire(f->st, &dest, 30000, "x", now, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_col(f, T_OUT, a, "state", "send_failed");
    assert_col(f, T_OUT, b, "state", "pending");
    assert_int_equal(
        store_outbound_expire_peer(f->st, "berlin", 30000, "peer not answering; not sent", now, &n),
        STORE_OK);
    assert_int_equal(n, 1);
    assert_col(f, T_OUT, b, "state", "send_failed");
    assert_col(f, T_OUT, b, "last_error", "peer not answering; not sent");
    assert_col(f, T_OUT, c, "state", "pending"); /* another peer */
    assert_col(f, T_OUT, d, "state", "pending"); /* too young */
    /* a skipped row is left alone */
    X(f, "UPDATE outbound_messages SET created_at = '%s' WHERE id = %lld", old, (long long)d);
    assert_int_equal(store_outbound_skip(f->st, &d, 1), STORE_OK);
    assert_int_equal(store_outbound_expire_peer(f->st, "berlin", 30000, "x", now, &n), STORE_OK);
    assert_int_equal(n, 0);
}

/* The original's schema (0.1.0, with read_count), without the peer columns. */
static const char original_schema[] =
    "CREATE TABLE outbound_messages (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " message_id TEXT, dst_addr TEXT NOT NULL, dst_port INTEGER NOT NULL,"
    " payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
    " retry_count INTEGER NOT NULL DEFAULT 0,"
    " created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')),"
    " sent_at TEXT, ack_received_at TEXT, last_error TEXT,"
    " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')));"
    "CREATE UNIQUE INDEX idx_outbound_message_id ON outbound_messages (message_id);"
    "CREATE INDEX idx_outbound_state ON outbound_messages (state);"
    "CREATE TABLE inbound_messages ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL,"
    " src_addr TEXT NOT NULL, src_port INTEGER NOT NULL, payload TEXT NOT NULL,"
    " crypto_timestamp TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'received',"
    " ack_sent INTEGER NOT NULL DEFAULT 0, read_count INTEGER NOT NULL DEFAULT 0,"
    " received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')),"
    " ack_sent_at TEXT,"
    " updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f','now')));"
    "CREATE UNIQUE INDEX idx_inbound_message_id ON inbound_messages (message_id);"
    "CREATE INDEX idx_inbound_state ON inbound_messages (state);"
    "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state, retry_count,"
    " created_at, sent_at, updated_at) VALUES ('" ID1 "', '10.1.1.1', 5000, '{\"o\":1}', 'sent',"
    " 2, '2024-01-01T00:00:00.000', '2024-01-01T00:00:01.000', '2024-01-01T00:00:01.000');"
    "INSERT INTO outbound_messages (dst_addr, dst_port, payload, created_at, updated_at)"
    " VALUES ('10.1.1.2', 5001, '{\"o\":2}', '2024-01-02T00:00:00.000',"
    " '2024-01-02T00:00:00.000');"
    "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp,"
    " state, ack_sent, read_count, received_at, updated_at) VALUES ('" ID2 "', '10.1.1.3', 5002,"
    " '{\"i\":1}', '2024-01-01T00:00:00.000000000', 'received', 0, 3,"
    " '2024-01-01T00:00:00.000', '2024-01-01T00:00:00.000');";

/*
 * Every column of every row of table but those added since (peer, sequence),
 * as one text (quote() tells NULL from 'NULL').
 */
static void all_rows(struct fx *f, const char *table, char *out, size_t len)
{
    char cols[512] = "", sql[1024];
    sqlite3_stmt *s = NULL;
    snprintf(sql, sizeof sql,
             "SELECT name FROM pragma_table_info('%s') WHERE name NOT IN ('peer', 'sequence')",
             table);
    assert_int_equal(sqlite3_prepare_v2(f->raw, sql, -1, &s, NULL), SQLITE_OK);
    while (sqlite3_step(s) == SQLITE_ROW) {
        size_t n = strlen(cols);
        snprintf(cols + n, sizeof cols - n, "%squote(%s)", n > 0 ? " || '|' || " : "",
                 (const char *)sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    qtext(f, out, len, "SELECT group_concat(%s, ';') FROM (SELECT * FROM %s ORDER BY id)", cols,
          table);
}

/*
 * SQLite: a database the original made (no peer column) gets one in each
 * table when opened, by a tool as by the daemon; its rows keep every value
 * (peer NULL); the store then works on it, and opening it again adds nothing.
 */
static void test_open_migrates_peer(void **state)
{
    struct fx *f = *state;
    snprintf(f->loc, sizeof f->loc, "%s/old.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->loc, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, original_schema, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(f->be->raw_open(f), 0);
    char out_before[2048], in_before[2048], out_after[2048], in_after[2048];
    all_rows(f, T_OUT, out_before, sizeof out_before);
    all_rows(f, T_IN, in_before, sizeof in_before);
    assert_int_equal(qint(f, "SELECT count(*) FROM pragma_table_info('outbound_messages') "
                             "WHERE name = 'peer'"),
                     0);

    /* locked by another process: the open waits, then fails, and adds nothing */
    f->be->lock(f);
    char err[256] = "";
    struct store *st = NULL;
    assert_int_equal(store_open(f->loc, STORE_EXISTING, 50, &st, err, sizeof err), STORE_BUSY);
    assert_null(st);
    f->be->unlock(f);
    assert_int_equal(qint(f, "SELECT count(*) FROM pragma_table_info('outbound_messages') "
                             "WHERE name = 'peer'") +
                         qint(f, "SELECT count(*) FROM pragma_table_info('inbound_messages') "
                                 "WHERE name = 'peer'"),
                     0);

    f->st = open_store(f, f->loc, STORE_EXISTING); /* a tool's open */
    assert_int_equal(qint(f, "SELECT count(*) FROM pragma_table_info('outbound_messages') "
                             "WHERE name = 'peer' AND type = 'TEXT' AND \"notnull\" = 0 "
                             "AND dflt_value IS NULL"),
                     1);
    assert_int_equal(qint(f, "SELECT count(*) FROM pragma_table_info('inbound_messages') "
                             "WHERE name = 'peer' AND type = 'TEXT' AND \"notnull\" = 0 "
                             "AND dflt_value IS NULL"),
                     1);
    all_rows(f, T_OUT, out_after, sizeof out_after);
    all_rows(f, T_IN, in_after, sizeof in_after);
    assert_string_equal(out_after, out_before);
    assert_string_equal(in_after, in_before);
    assert_int_equal(qint(f, "SELECT count(*) FROM outbound_messages WHERE peer IS NULL"), 2);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages WHERE peer IS NULL"), 1);

    /* the daemon's queries on it: rows left 'sent', pending, re-ACKs, an insert with a peer */
    store_close(f->st);
    f->st = open_store(f, f->loc, STORE_CREATE); /* opening again adds nothing */
    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.out[0].message_id, ID1);
    assert_null(rows.out[0].peer);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_string_equal(rows.out[0].dst_addr, "10.1.1.2");
    assert_null(rows.out[0].peer);
    assert_int_equal(store_inbound_unacked(f->st, 0, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_null(rows.in[0].peer);
    struct store_inbound m = {ID3, "10.1.1.4", 5003, "{}", 2, 1, 0, "berlin", 0};
    enum store_in_result res;
    int64_t rowid = 0;
    assert_int_equal(store_inbound_insert(f->st, &m, 1, now_ms(), &res, &rowid, NULL), STORE_OK);
    assert_int_equal(res, STORE_IN_NEW);
    assert_col(f, T_IN, rowid, "peer", "berlin");
    assert_int_equal(qint(f, "SELECT count(*) FROM pragma_table_info('inbound_messages')"), 14);
}

/* sg-recv's filter by peer, on either table; store_fetch shows the column; sg-clean's. */
static void test_tool_select_peer(void **state)
{
    struct fx *f = *state;
    struct store_inbound m[3] = {{ID1, "10.0.0.1", 4000, "{}", 2, 1, 0, "berlin", 0},
                                 {ID2, "10.0.0.1", 4000, "{}", 2, 1, 0, NULL, 0},
                                 {ID3, "10.0.0.2", 4000, "{}", 2, 1, 0, "paris", 0}};
    enum store_in_result res[3];
    int64_t in[3];
    assert_int_equal(store_inbound_insert(f->st, m, 3, now_ms(), res, in, NULL), STORE_OK);
    char err[256] = "";
    int64_t o1 = 0, o2 = 0;
    assert_int_equal(
        store_enqueue(f->st, NULL, "", 0, "berlin", "{}", 2, now_ms(), &o1, err, sizeof err),
        STORE_OK);
    assert_int_equal(
        store_enqueue(f->st, NULL, "10.0.0.1", 9, NULL, "{}", 2, now_ms(), &o2, err, sizeof err),
        STORE_OK);
    struct store_selected *c = NULL;
    size_t n = 0;
    struct store_query q = {.table = STORE_INBOUND, .peer = "berlin", .mark = 1};
    assert_int_equal(store_select(f->st, &q, now_ms(), &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, in[0]);
    assert_int_equal(
        qint(f, "SELECT read_count FROM inbound_messages WHERE id = %lld", (long long)in[0]), 1);
    assert_int_equal(qint(f, "SELECT sum(read_count) FROM inbound_messages"), 1);
    struct store_record rec = {0};
    int found = 0, seen = 0;
    assert_int_equal(store_fetch(f->st, STORE_INBOUND, &c[0], &rec, &found, err, sizeof err),
                     STORE_OK);
    for (int k = 0; k < rec.ncols; k++)
        if (strcmp(rec.col[k].name, "peer") == 0) {
            assert_int_equal(rec.col[k].type, STORE_TEXT);
            assert_string_equal(rec.col[k].text, "berlin");
            seen = 1;
        }
    assert_true(seen);
    free(c);
    /* no such peer: nothing; and with another filter, both must hold */
    q = (struct store_query){.table = STORE_INBOUND, .peer = "rome"};
    assert_int_equal(store_select(f->st, &q, now_ms(), &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 0);
    const char *addr[STORE_MAX_ADDRS] = {"10.0.0.2"};
    q = (struct store_query){.table = STORE_INBOUND, .peer = "berlin"};
    memcpy(q.addr, addr, sizeof addr);
    assert_int_equal(store_select(f->st, &q, now_ms(), &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 0);
    /* outbound: the rows to it */
    q = (struct store_query){.table = STORE_OUTBOUND, .peer = "berlin"};
    assert_int_equal(store_select(f->st, &q, now_ms(), &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, o1);
    free(c);
    /* a shared-secret row's peer is NULL in the record */
    q = (struct store_query){.table = STORE_OUTBOUND, .id = o2};
    assert_int_equal(store_select(f->st, &q, now_ms(), &c, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_fetch(f->st, STORE_OUTBOUND, &c[0], &rec, &found, err, sizeof err),
                     STORE_OK);
    assert_int_equal(rec.ncols, 14);
    assert_string_equal(rec.col[12].name, "peer");
    assert_int_equal(rec.col[12].type, STORE_NULL);
    assert_string_equal(rec.col[13].name, "sequence");
    assert_int_equal(rec.col[13].type, STORE_NULL);
    free(c);
    store_record_free(&rec);
    /* sg-clean's purge of one peer's rows */
    X(f, "UPDATE inbound_messages SET state = 'ack_sent', read_count = 1, "
         "updated_at = '2020-01-01T00:00:00.000'");
    struct store_purge p = {STORE_INBOUND, "2025-01-01T00:00:00.000", NULL, 1, "berlin"};
    struct store_state_count *v = NULL;
    assert_int_equal(store_purge_count(f->st, &p, &v, &n, err, sizeof err), STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].n, 1);
    free(v);
    int64_t deleted = -1;
    assert_int_equal(store_purge(f->st, &p, 1, &deleted, err, sizeof err), STORE_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 2);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages WHERE peer = 'berlin'"), 0);
}

/* ---- sequence numbers: the sequence column of both tables, peer_sequence ---- */

#define SEQ_MAX "9223372036854775807"

/* A column of a record by name, or NULL. */
static const struct store_col *rec_col(const struct store_record *rec, const char *name)
{
    for (int k = 0; k < rec->ncols; k++)
        if (strcmp(rec->col[k].name, name) == 0)
            return &rec->col[k];
    return NULL;
}

/*
 * An inbound row's sequence is stored as given, 0 as NULL, by both insert
 * statements; a duplicate leaves the stored one; the re-ACK query and
 * store_fetch (sg-recv) read it back.
 */
static void test_seq_inbound(void **state)
{
    struct fx *f = *state;
    struct store_inbound m[3] = {{ID1, "10.0.0.1", 4000, "{}", 2, 1, 0, "berlin", 5},
                                 {ID2, "10.0.0.2", 4001, "{}", 2, 1, 0, NULL, 0},
                                 {ID3, "10.0.0.3", 4002, "{}", 2, 1, 0, "paris", INT64_MAX}};
    enum store_in_result res[3];
    int64_t rowids[3] = {0, 0, 0};
    assert_int_equal(store_inbound_insert(f->st, m, 3, now_ms(), res, rowids, NULL), STORE_OK);
    assert_col(f, T_IN, rowids[0], "sequence", "5");
    assert_col(f, T_IN, rowids[1], "sequence", NULL);
    assert_col(f, T_IN, rowids[2], "sequence", SEQ_MAX);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages WHERE typeof(sequence) = "
                             "'integer'"),
                     2);
    /* a message to ourselves (the other statement) keeps its number too */
    add_out(f, "sent", "0123456789abcdef0123456f", "{}");
    struct store_inbound self = {
        "0123456789abcdef0123456f", "127.0.0.1", 1, "{}", 2, 1, 1, "self.peer", 7};
    enum store_in_result r1 = STORE_IN_DUP;
    int64_t self_row = 0;
    assert_int_equal(store_inbound_insert(f->st, &self, 1, now_ms(), &r1, &self_row, NULL),
                     STORE_OK);
    assert_int_equal(r1, STORE_IN_NEW);
    assert_col(f, T_IN, self_row, "sequence", "7");
    /* a retransmission with another number does not change the stored row's */
    struct store_inbound dup = {ID1, "10.0.0.1", 4000, "{}", 2, 1, 0, "berlin", 6};
    assert_int_equal(store_inbound_insert(f->st, &dup, 1, now_ms(), &r1, NULL, NULL), STORE_OK);
    assert_int_equal(r1, STORE_IN_DUP);
    assert_col(f, T_IN, rowids[0], "sequence", "5");

    assert_int_equal(store_inbound_unacked(f->st, 0, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 4);
    assert_int_equal(rows.in[0].sequence, 5);
    assert_int_equal(rows.in[1].sequence, 0);
    assert_true(rows.in[2].sequence == INT64_MAX);
    assert_int_equal(rows.in[3].sequence, 7);
    assert_string_equal(rows.in[3].peer, "self.peer"); /* the column before it */

    /* sg-recv's record: an integer where there is one, NULL (shown as null) where not */
    char err[256] = "";
    struct store_record rec = {0};
    int found = 0;
    struct store_selected sel = {.id = rowids[0]};
    assert_int_equal(store_fetch(f->st, STORE_INBOUND, &sel, &rec, &found, err, sizeof err),
                     STORE_OK);
    assert_int_equal(found, 1);
    const struct store_col *c = rec_col(&rec, "sequence");
    assert_non_null(c);
    assert_int_equal(c->type, STORE_INT);
    assert_int_equal(c->i, 5);
    assert_ptr_equal(c, &rec.col[rec.ncols - 1]); /* the last column */
    sel.id = rowids[1];
    assert_int_equal(store_fetch(f->st, STORE_INBOUND, &sel, &rec, &found, err, sizeof err),
                     STORE_OK);
    c = rec_col(&rec, "sequence");
    assert_non_null(c);
    assert_int_equal(c->type, STORE_NULL);
    store_record_free(&rec);
}

/*
 * store_outbound_take with a number writes it, with 0 leaves the row's;
 * every query that gives the daemon outbound rows reads it back (pending, the
 * set-based claim, load_sent, get_sent), the columns after it (age, payload)
 * still in their places; it survives a reopen (a retransmission after a
 * restart) and a requeue.
 */
static void test_seq_outbound(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{\"a\":1}");
    int64_t b = add_out(f, "pending", NULL, "{\"b\":1}");
    int64_t c = add_out(f, "pending", NULL, "{\"c\":1}");
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    assert_int_equal(rows.out[0].sequence, 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_take(f->st, a, ID1, NULL, 0, 3, now_ms()), STORE_OK);
    assert_int_equal(store_outbound_take(f->st, b, ID2, NULL, 0, 0, now_ms()), STORE_OK);
    assert_int_equal(store_sequence_save(f->st, "berlin", 3), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f, T_OUT, a, "sequence", "3");
    assert_col(f, T_OUT, a, "state", "sent");
    assert_col(f, T_OUT, b, "sequence", NULL);
    assert_col(f, T_OUT, b, "state", "sent");

    int64_t now = now_ms();
    char t[STORE_TIME_LEN];
    store_format_ms(now - 4000, t);
    X(f, "UPDATE outbound_messages SET sent_at = '%s' WHERE id = %lld", t, (long long)a);
    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, now, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.out[0].rowid, a);
    assert_int_equal(rows.out[0].sequence, 3);
    assert_in_range(rows.out[0].age_ms, 3999, 4001); /* the column after it */
    assert_int_equal(rows.out[1].sequence, 0);
    assert_int_equal(store_outbound_get_sent(f->st, a, 100, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].sequence, 3);
    assert_string_equal(rows.out[0].payload, "{\"a\":1}"); /* the column after it */
    assert_int_equal(store_outbound_get_sent(f->st, b, 100, &rows), STORE_OK);
    assert_int_equal(rows.out[0].sequence, 0);

    /* a restart: the same number for the retransmission, and the peer's last one */
    store_close(f->st);
    f->st = open_store(f, f->loc, STORE_CREATE);
    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.out[0].sequence, 3);
    assert_int_equal(store_outbound_get_sent(f->st, a, 100, &rows), STORE_OK);
    assert_int_equal(rows.out[0].sequence, 3);
    struct store_sequence seq[4];
    int n = -1;
    assert_int_equal(store_sequence_load(f->st, NULL, seq, 4, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(seq[0].peer, "berlin");
    assert_int_equal(seq[0].last, 3);

    /* requeued (sg-send --retry), the row keeps its number; a take with 0 leaves it */
    assert_int_equal(out_failed(f, a, 10, "max retries exceeded (no ACK)"), STORE_OK);
    int changed = 0;
    char err[256] = "";
    assert_int_equal(store_outbound_requeue(f->st, a, NULL, now_ms(), &changed, err, sizeof err),
                     STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.out[0].rowid, a);
    assert_int_equal(rows.out[0].sequence, 3);
    assert_int_equal(rows.out[1].rowid, c);
    assert_int_equal(rows.out[1].sequence, 0);
    /* the set-based claim returns it too */
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_claim(f->st, 10, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.out[0].sequence, 3);
    assert_int_equal(rows.out[1].sequence, 0);
    int64_t both[2] = {a, c};
    assert_int_equal(store_outbound_release(f->st, both, 2, now_ms()), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_outbound_take(f->st, a, ID1, NULL, 0, 0, now_ms()), STORE_OK);
    assert_col(f, T_OUT, a, "sequence", "3");
    /* a number for a row that is no longer pending changes nothing */
    assert_int_equal(store_outbound_take(f->st, a, ID1, NULL, 0, 9, now_ms()), STORE_REFUSED);
    assert_col(f, T_OUT, a, "sequence", "3");
    /* and a take with a payload and a number writes both in its one statement */
    uint64_t w0 = 0, w1 = 0, r0 = 0, r1 = 0;
    store_write_stats(f->st, &w0, &r0);
    assert_int_equal(store_outbound_take(f->st, c, ID3, "{\"c\":1,\"message_id\":\"" ID3 "\"}",
                                         strlen("{\"c\":1,\"message_id\":\"" ID3 "\"}"), INT64_MAX,
                                         now_ms()),
                     STORE_OK);
    store_write_stats(f->st, &w1, &r1);
    assert_true(w1 - w0 == 1);
    assert_col(f, T_OUT, c, "sequence", SEQ_MAX);
    assert_col(f, T_OUT, c, "payload", "{\"c\":1,\"message_id\":\"" ID3 "\"}");
}

/*
 * store_sequence_save keeps the larger number (never lower), writes nothing
 * for 0, belongs to the caller's transaction, and survives a reopen and the
 * deletion of every row; store_sequence_load pages by name.
 */
static void test_seq_save_load(void **state)
{
    struct fx *f = *state;
    struct store_sequence seq[4];
    int n = -1;
    assert_int_equal(store_sequence_load(f->st, NULL, seq, 4, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_sequence_save(f->st, "paris", 2), STORE_OK);
    assert_int_equal(store_sequence_save(f->st, "berlin", 5), STORE_OK);
    assert_int_equal(store_sequence_save(f->st, "berlin", 3), STORE_OK); /* lower: kept at 5 */
    assert_int_equal(store_sequence_save(f->st, "rome", 0), STORE_OK);   /* none: nothing */
    assert_int_equal(store_sequence_save(f->st, PEER64, INT64_MAX), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_sequence_load(f->st, NULL, seq, 4, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(seq[0].peer, "berlin");
    assert_int_equal(seq[0].last, 5);
    assert_string_equal(seq[1].peer, PEER64); /* name order */
    assert_true(seq[1].last == INT64_MAX);
    assert_string_equal(seq[2].peer, "paris");
    assert_int_equal(seq[2].last, 2);
    assert_int_equal(qint(f, "SELECT count(*) FROM peer_sequence WHERE peer = 'rome'"), 0);

    /* paging: cap rows at a time, after the last name of the page before */
    assert_int_equal(store_sequence_load(f->st, "", seq, 1, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(seq[0].peer, "berlin");
    assert_int_equal(store_sequence_load(f->st, seq[0].peer, seq, 1, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(seq[0].peer, PEER64);
    assert_int_equal(store_sequence_load(f->st, seq[0].peer, seq, 2, &n), STORE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(seq[0].peer, "paris");
    assert_int_equal(store_sequence_load(f->st, "paris", seq, 2, &n), STORE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_sequence_load(f->st, NULL, seq, 0, &n), STORE_OK);
    assert_int_equal(n, 0);

    /* a rolled-back turn keeps nothing; a higher number in a committed one is kept */
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_sequence_save(f->st, "berlin", 50), STORE_OK);
    assert_int_equal(store_sequence_save(f->st, "oslo", 1), STORE_OK);
    store_rollback(f->st);
    assert_int_equal(qint(f, "SELECT last FROM peer_sequence WHERE peer = 'berlin'"), 5);
    assert_int_equal(qint(f, "SELECT count(*) FROM peer_sequence WHERE peer = 'oslo'"), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_sequence_save(f->st, "berlin", 6), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);

    /* every row deleted (sg-clean), the database reopened: the numbers stay */
    add_out(f, "acknowledged", ID1, "{}");
    add_old_in(f, ID2);
    char err[256] = "";
    struct store_purge p[2] = {{STORE_OUTBOUND, "2999-01-01T00:00:00.000", NULL, 0, NULL},
                               {STORE_INBOUND, "2999-01-01T00:00:00.000", NULL, 0, NULL}};
    int64_t deleted[2] = {0, 0};
    assert_int_equal(store_purge(f->st, p, 2, deleted, err, sizeof err), STORE_OK);
    assert_int_equal(deleted[0] + deleted[1], 2);
    store_close(f->st);
    f->st = open_store(f, f->loc, STORE_CREATE);
    assert_int_equal(store_sequence_load(f->st, NULL, seq, 4, &n), STORE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(seq[0].peer, "berlin");
    assert_int_equal(seq[0].last, 6);
    struct store *tool = open_store(f, f->loc, STORE_EXISTING);
    assert_int_equal(store_sequence_load(tool, "berlin", seq, 4, &n), STORE_OK);
    assert_int_equal(n, 2);
    store_close(tool);
}

/*
 * SQLite: what a script may have left: a sequence that is not an integer
 * above 0 reads as 0; peer_sequence names that cannot be a peer's are left
 * out (and do not end a page early); a last that is not a number reads as 0
 * and the next save replaces it.
 */
static void test_seq_hostile(void **state)
{
    struct fx *f = *state;
    int64_t r[3];
    for (int i = 0; i < 3; i++)
        r[i] = add_out(f, "pending", NULL, "{}");
    X(f, "UPDATE outbound_messages SET sequence = 'x' WHERE id = %lld", (long long)r[0]);
    X(f, "UPDATE outbound_messages SET sequence = -3 WHERE id = %lld", (long long)r[1]);
    X(f, "UPDATE outbound_messages SET sequence = 2.5 WHERE id = %lld", (long long)r[2]);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rows.out[i].sequence, 0);
    int64_t in = add_in(f, ID1);
    X(f, "UPDATE inbound_messages SET sequence = -1, state = 'received' WHERE id = %lld",
      (long long)in);
    assert_int_equal(store_inbound_unacked(f->st, 0, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.in[0].sequence, 0);

    X(f, "INSERT INTO peer_sequence (peer, last) VALUES ('a', 1), ('" PEER64 "x', 2), "
         "(CAST(X'620063' AS BLOB), 3), (42, 4), ('c', 'junk'), ('d', 5)");
    struct store_sequence seq[2];
    int n = -1;
    assert_int_equal(store_sequence_load(f->st, NULL, seq, 2, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(seq[0].peer, "42"); /* TEXT affinity: a name of digits */
    assert_string_equal(seq[1].peer, "a");
    assert_int_equal(store_sequence_load(f->st, "a", seq, 2, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(seq[0].peer, "c");
    assert_int_equal(seq[0].last, 0);
    assert_string_equal(seq[1].peer, "d");
    assert_int_equal(store_sequence_save(f->st, "c", 4), STORE_OK);
    assert_int_equal(qint(f, "SELECT last FROM peer_sequence WHERE peer = 'c'"), 4);
    /* a NULL peer is refused by the table, as a row of its own */
    assert_int_equal(store_sequence_save(f->st, NULL, 4), STORE_REFUSED);
}

/* The schema of the release before sequence numbers: the original's, with peer. */
static const char peer_schema[] =
    "ALTER TABLE outbound_messages ADD COLUMN peer TEXT;"
    "ALTER TABLE inbound_messages ADD COLUMN peer TEXT;"
    "UPDATE outbound_messages SET peer = 'berlin' WHERE message_id IS NULL;";

/* "type|notnull|default|last" of table's sequence column ("" if none). */
static void sequence_column(struct fx *f, const char *table, char *out, size_t len)
{
    qtext(f, out, len,
          "SELECT type || '|' || \"notnull\" || '|' || ifnull(dflt_value, 'none') || '|' || "
          "(cid = (SELECT max(cid) FROM pragma_table_info('%s'))) FROM pragma_table_info('%s') "
          "WHERE name = 'sequence'",
          table, table);
}

/*
 * SQLite: a database of the release before (peer, no sequence, no
 * peer_sequence) gets the column in both tables, last and NULL in every row,
 * and the table, when opened, by a tool as by the daemon, all or nothing;
 * every other value stays; opening it again adds nothing, and a complete
 * database is opened by a tool while another process holds the write lock.
 */
static void test_open_migrates_sequence(void **state)
{
    struct fx *f = *state;
    snprintf(f->loc, sizeof f->loc, "%s/old.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->loc, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, original_schema, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, peer_schema, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(f->be->raw_open(f), 0);
    char out_before[2048], in_before[2048], out_after[2048], in_after[2048], peers[256];
    all_rows(f, T_OUT, out_before, sizeof out_before);
    all_rows(f, T_IN, in_before, sizeof in_before);
    qtext(f, peers, sizeof peers,
          "SELECT group_concat(ifnull(peer, '-')) FROM "
          "(SELECT peer FROM outbound_messages ORDER BY id)");
    assert_string_equal(peers, "-,berlin");
    char col_text[64];
    sequence_column(f, T_OUT, col_text, sizeof col_text);
    assert_string_equal(col_text, "");

    /* locked by another process: the open waits, then fails, and adds nothing */
    f->be->lock(f);
    char err[256] = "";
    struct store *st = NULL;
    assert_int_equal(store_open(f->loc, STORE_EXISTING, 50, &st, err, sizeof err), STORE_BUSY);
    assert_null(st);
    f->be->unlock(f);
    sequence_column(f, T_IN, col_text, sizeof col_text);
    assert_string_equal(col_text, "");
    assert_int_equal(qint(f, "SELECT count(*) FROM sqlite_master WHERE name = 'peer_sequence'"), 0);

    f->st = open_store(f, f->loc, STORE_EXISTING); /* a tool's open */
    sequence_column(f, T_OUT, col_text, sizeof col_text);
    assert_string_equal(col_text, "INTEGER|0|none|1");
    sequence_column(f, T_IN, col_text, sizeof col_text);
    assert_string_equal(col_text, "INTEGER|0|none|1");
    assert_int_equal(qint(f, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                             "name = 'peer_sequence'"),
                     1);
    all_rows(f, T_OUT, out_after, sizeof out_after);
    all_rows(f, T_IN, in_after, sizeof in_after);
    assert_string_equal(out_after, out_before);
    assert_string_equal(in_after, in_before);
    qtext(f, peers, sizeof peers,
          "SELECT group_concat(ifnull(peer, '-')) FROM "
          "(SELECT peer FROM outbound_messages ORDER BY id)");
    assert_string_equal(peers, "-,berlin");
    assert_int_equal(qint(f, "SELECT count(*) FROM outbound_messages WHERE sequence IS NULL"), 2);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages WHERE sequence IS NULL"), 1);

    /* complete now: a tool opens it under another's write lock (nothing to add) */
    store_close(f->st);
    f->st = NULL;
    f->be->lock(f);
    f->st = open_store(f, f->loc, STORE_EXISTING);
    f->be->unlock(f);
    store_close(f->st);

    /* the daemon's open adds nothing more, and its calls work on it */
    f->st = open_store(f, f->loc, STORE_CREATE);
    assert_int_equal(qint(f, "SELECT count(*) FROM pragma_table_info('outbound_messages')"), 14);
    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].sequence, 0);
    int64_t pending = qint(f, "SELECT id FROM outbound_messages WHERE state = 'pending'");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_take(f->st, pending, ID3, NULL, 0, 1, now_ms()), STORE_OK);
    assert_int_equal(store_sequence_save(f->st, "berlin", 1), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f, T_OUT, pending, "sequence", "1");
    struct store_sequence seq[2];
    int n = 0;
    assert_int_equal(store_sequence_load(f->st, NULL, seq, 2, &n), STORE_OK);
    assert_int_equal(n, 1);

    /* a peer_sequence dropped by hand comes back at the next open, by a tool too */
    store_close(f->st);
    f->st = NULL;
    X(f, "DROP TABLE peer_sequence");
    f->st = open_store(f, f->loc, STORE_EXISTING);
    assert_int_equal(qint(f, "SELECT count(*) FROM sqlite_master WHERE name = 'peer_sequence'"), 1);
}

/* ---- PostgreSQL: what only it has ---- */

/* A copy of the base URI with its user and password replaced by userinfo. */
static void pg_with_user(const char *userinfo, char *out, size_t len)
{
    const char *base = pg_base(), *auth = base != NULL ? strstr(base, "://") : NULL;
    const char *at = auth != NULL ? strchr(auth + 3, '@') : NULL;
    if (at == NULL) {
        snprintf(out, len, "postgresql://%s@/", userinfo);
        return;
    }
    snprintf(out, len, "%.*s%s%s", (int)(auth + 3 - base), base, userinfo, at);
}

/*
 * Opening: every refusal in one line that never repeats the URI (a password
 * in it); an empty schema is no database for a tool, tables of the same
 * names that are not ours are refused, and a newer schema is not used.
 */
static void test_pg_open_errors(void **state)
{
    struct fx *f = *state;
    char err[512] = "", loc[600];
    struct store *st = NULL;
    pg_with_user("nobody_sg:hunter2", loc, sizeof loc);
    assert_int_equal(store_open(loc, STORE_EXISTING, 50, &st, err, sizeof err), STORE_ERR);
    assert_null(st);
    assert_non_null(strstr(err, "PostgreSQL refused the login for user nobody_sg"));
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(store_open("postgres://u:hunter2@/q?host=/nonexistent-sg-dir", STORE_CREATE,
                                50, &st, err, sizeof err),
                     STORE_ERR);
    assert_non_null(strstr(err, "cannot connect to PostgreSQL at /nonexistent-sg-dir"));
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(
        store_open("postgresql://u:hun%zzter2@/q", STORE_CREATE, 50, &st, err, sizeof err),
        STORE_ERR);
    assert_non_null(strstr(err, "not a URI"));
    assert_null(strstr(err, "hun"));
    f->be->missing(f, loc, sizeof loc);
    assert_int_equal(store_open(loc, STORE_CREATE, 50, &st, err, sizeof err), STORE_GONE);
    assert_non_null(strstr(err, "database \"sgtest_no_such_db\" does not exist"));
    assert_non_null(strstr(err, "not found"));

    /* the schema is empty: a tool refuses it and writes nothing */
    assert_int_equal(store_open(f->loc, STORE_EXISTING, 50, &st, err, sizeof err), STORE_ERR);
    assert_non_null(strstr(err, "is not a securedgram database (no table outbound_messages)"));
    assert_int_equal(f->be->raw_open(f), 0);
    assert_int_equal(qint(f, "SELECT count(*) FROM pg_tables WHERE schemaname = '%s'", f->schema),
                     0);
    X(f, "CREATE TABLE inbound_messages (id bigint PRIMARY KEY, message_id text)");
    assert_int_equal(store_open(f->loc, STORE_EXISTING, 50, &st, err, sizeof err), STORE_ERR);
    assert_non_null(strstr(err, "(no table outbound_messages)"));
    /* tables of ours by name only: refused by the daemon too, and left as they were */
    X(f, "CREATE TABLE outbound_messages (id bigint PRIMARY KEY, x text)");
    assert_int_equal(store_open(f->loc, STORE_CREATE, 50, &st, err, sizeof err), STORE_ERR);
    assert_non_null(strstr(err, "not securedgram's"));
    assert_int_equal(qint(f, "SELECT count(*) FROM pg_tables WHERE schemaname = '%s'", f->schema),
                     2);
    X(f, "DROP TABLE outbound_messages, inbound_messages");
    /* the daemon makes the tables; a schema newer than this build's is refused */
    f->st = open_store(f, f->loc, STORE_CREATE);
    assert_int_equal(qint(f, "SELECT max(version) FROM securedgram_schema"), 1);
    store_close(f->st);
    f->st = NULL;
    X(f, "INSERT INTO securedgram_schema (version, description) VALUES (2, 'from the future')");
    assert_int_equal(store_open(f->loc, STORE_CREATE, 50, &st, err, sizeof err), STORE_ERR);
    assert_non_null(strstr(err, "newer than this build knows"));
    assert_int_equal(store_open(f->loc, STORE_EXISTING, 50, &st, err, sizeof err), STORE_ERR);
    X(f, "DELETE FROM securedgram_schema WHERE version = 2");
    f->st = open_store(f, f->loc, STORE_EXISTING);
}

/*
 * Rules an operator added (a trigger's RAISE, a CHECK, a trigger that stores
 * nothing, another UNIQUE index) refuse their row only: the call stops there,
 * says how many went before, and the transaction goes on (savepoints).
 */
static void test_pg_refusals(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "sending", ID1, "{}");
    int64_t b = add_out(f, "sending", ID2, "{}");
    int64_t c = add_out(f, "sending", ID3, "{}");
    X(f,
      "CREATE FUNCTION sg_no() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.id = %lld "
      "THEN RAISE EXCEPTION 'not this one'; END IF; RETURN NEW; END $$; CREATE TRIGGER sg_no "
      "BEFORE UPDATE ON outbound_messages FOR EACH ROW EXECUTE FUNCTION sg_no()",
      (long long)b);
    struct store_sent v[3] = {{a, 1, NULL}, {b, 1, NULL}, {c, 1, NULL}};
    int done = -1;
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_sent(f->st, v, 3, now_ms(), &done), STORE_REFUSED);
    assert_int_equal(done, 1);
    assert_non_null(strstr(store_errmsg(f->st), "not this one"));
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(store_outbound_sent(f->st, v + done + 1, 1, now_ms(), &done), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f, T_OUT, a, "state", "sent");
    assert_col(f, T_OUT, b, "state", "sending");
    assert_col(f, T_OUT, c, "state", "sent");
    int64_t ids[3] = {a, b, c};
    int matched = -1;
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_acked(f->st, ids, 3, now_ms(), &matched, &done), STORE_REFUSED);
    assert_int_equal(done, 1);
    assert_int_equal(matched, 1);
    store_rollback(f->st);
    X(f, "DROP TRIGGER sg_no ON outbound_messages");

    X(f, "ALTER TABLE outbound_messages ADD COLUMN note text CHECK (last_error IS DISTINCT FROM "
         "'bad')");
    struct store_sent w[3] = {{a, 1, "ok"}, {b, 1, "bad"}, {c, 1, "ok"}};
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_failed(f->st, w, 3, now_ms(), &done), STORE_REFUSED);
    assert_int_equal(done, 1);
    assert_non_null(strstr(store_errmsg(f->st), "check constraint"));
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(store_outbound_failed(f->st, w + 2, 1, now_ms(), &done), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_col(f, T_OUT, a, "state", "send_failed");
    assert_col(f, T_OUT, b, "state", "sending");
    assert_col(f, T_OUT, c, "state", "send_failed");
    /* ACKs by message_id as one statement, with any text in the ids */
    X(f,
      "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, crypto_timestamp)"
      " VALUES ('q\"uo\\te', '127.0.0.1', 1, '{}', 'x'), ('" ID1 "', '127.0.0.1', 1, '{}', 'x')");
    const char *mids[3] = {"q\"uo\\te", ID1, "none"};
    assert_int_equal(store_inbound_ack_failed(f->st, mids, 3, now_ms(), &done), STORE_OK);
    assert_int_equal(done, 3);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages WHERE state = 'ack_failed'"),
                     2);
    X(f, "DELETE FROM inbound_messages");
    X(f, "DELETE FROM outbound_messages"); /* their ids would make ours reflections */

    enum store_in_result res = STORE_IN_NEW;
    X(f, "ALTER TABLE inbound_messages ADD COLUMN note text CHECK (payload NOT LIKE '%%poison%%')");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(in_insert(f, ID1, "127.0.0.1", 1, "{\"poison\":1}", 12, 1, &res),
                     STORE_REFUSED);
    assert_non_null(strstr(store_errmsg(f->st), "check constraint"));
    assert_int_equal(store_tx_aborted(f->st), 0); /* the rest of the turn goes on */
    assert_int_equal(in_insert(f, ID2, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_NEW);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 1);
    X(f, "CREATE FUNCTION sg_ig() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.payload = "
         "'[]' THEN RETURN NULL; END IF; RETURN NEW; END $$; CREATE TRIGGER sg_ig BEFORE INSERT "
         "ON inbound_messages FOR EACH ROW EXECUTE FUNCTION sg_ig()");
    assert_int_equal(in_insert(f, ID3, "127.0.0.1", 1, "[]", 2, 1, &res), STORE_REFUSED);
    /* a duplicate that the trigger also ignores is still a duplicate: the row exists */
    assert_int_equal(in_insert(f, ID2, "127.0.0.1", 1, "[]", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_DUP);
    X(f, "CREATE UNIQUE INDEX op ON inbound_messages (src_port)");
    assert_int_equal(in_insert(f, ID3, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_REFUSED);
    assert_non_null(strstr(store_errmsg(f->st), "UNIQUE"));
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 1);
    struct store_inbound m[2] = {{ID1, "127.0.0.1", 2, "{}", 2, 0, 0, NULL, 0},
                                 {ID3, "127.0.0.1", 1, "{}", 2, 0, 0, NULL, 0}};
    enum store_in_result r2[2];
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_inbound_insert(f->st, m, 2, now_ms(), r2, NULL, &done), STORE_REFUSED);
    assert_int_equal(done, 1);
    assert_int_equal(r2[0], STORE_IN_NEW);
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 2);
}

/* A statement running past the transaction's budget is cancelled and reads as BUSY. */
static void test_pg_budget(void **state)
{
    struct fx *f = *state;
    X(f, "CREATE FUNCTION sg_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM "
         "pg_sleep(3); RETURN NEW; END $$; CREATE TRIGGER sg_slow BEFORE UPDATE ON "
         "outbound_messages FOR EACH ROW EXECUTE FUNCTION sg_slow()");
    int64_t id = add_out(f, "pending", NULL, "{}");
    store_set_budget(f->st, 100);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(out_failed(f, id, 0, "x"), STORE_BUSY);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(store_timed_out(f->st), 1);
    assert_int_equal(store_tx_aborted(f->st), 1);
    assert_non_null(strstr(store_errmsg(f->st), "longer than 100 ms"));
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(waited < 2);
    assert_col(f, T_OUT, id, "state", "pending");
    store_rollback(f->st);
    X(f, "DROP TRIGGER sg_slow ON outbound_messages");
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_timed_out(f->st), 0);
    assert_int_equal(out_failed(f, id, 0, "x"), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    struct timespec pause = {0, 150 * 1000000L};
    nanosleep(&pause, NULL);
    for (int i = 0; i < 200; i++)
        add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_outbound_pending(f->st, 16, &rows), STORE_OK);
    assert_int_equal(store_timed_out(f->st), 0);
}

/*
 * Two daemons on one database: a turn's pending rows are its own until it
 * ends (FOR UPDATE SKIP LOCKED); each claims with its identity and a lease;
 * rows left 'sent' and 'sending' go only to their holder while it lives, to
 * anyone once its lease ends or its session does.
 */
static void test_pg_leases(void **state)
{
    struct fx *f = *state;
    struct store *b = open_store(f, f->loc, STORE_CREATE);
    int64_t r1 = add_out(f, "pending", NULL, "{}");
    int64_t r2 = add_out(f, "pending", NULL, "{}");
    int64_t r3 = add_out(f, "pending", NULL, "{}");
    struct store_rows other;
    assert_int_equal(store_rows_init(&other, 16, 16 * STORE_ROW_TEXT), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 1, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, r1);
    assert_int_equal(store_begin(b), STORE_OK);
    assert_int_equal(store_outbound_pending(b, 10, &other), STORE_OK);
    assert_int_equal(other.n, 2); /* r1 is the other turn's */
    assert_int_equal(other.out[0].rowid, r2);
    assert_int_equal(store_outbound_take(f->st, r1, ID1, NULL, 0, 0, now_ms()), STORE_OK);
    assert_int_equal(store_outbound_take(b, r2, ID2, NULL, 0, 0, now_ms()), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(store_commit(b), STORE_OK);
    char who1[128], who2[128];
    assert_true(col(f, T_OUT, r1, "claimed_by", who1, sizeof who1));
    assert_true(col(f, T_OUT, r2, "claimed_by", who2, sizeof who2));
    assert_string_not_equal(who1, who2);
    assert_int_equal(qint(f, "SELECT count(*) FROM outbound_messages WHERE lease_until > now()"),
                     2);
    /* the set-based claim skips the rows another turn holds */
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(store_begin(b), STORE_OK);
    assert_int_equal(store_outbound_claim(b, 10, now_ms(), &other), STORE_OK);
    assert_int_equal(other.n, 0);
    store_rollback(b);
    store_rollback(f->st);
    /* rows left 'sent': each its own, never the other's while it lives */
    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.out[0].rowid, r1);
    assert_int_equal(store_outbound_load_sent(b, 0, 10, now_ms(), &other), STORE_OK);
    assert_int_equal(other.n, 1);
    assert_int_equal(other.out[0].rowid, r2);
    /* 'sending' rows of a live daemon stay its own through another's recovery */
    assert_int_equal(store_outbound_claim(b, 10, now_ms(), &other), STORE_OK);
    assert_int_equal(other.n, 1);
    assert_int_equal(other.out[0].rowid, r3);
    int moved = -1;
    assert_int_equal(store_recover_sending(f->st, now_ms(), &moved), STORE_OK);
    assert_int_equal(moved, 0);
    assert_col(f, T_OUT, r3, "state", "sending");
    /* a lease that ran out is taken over; the old holder's writes then change nothing */
    X(f,
      "UPDATE outbound_messages SET lease_until = clock_timestamp() - interval '1 second' "
      "WHERE id = %lld",
      (long long)r2);
    assert_int_equal(store_outbound_load_sent(f->st, 0, 10, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.out[1].rowid, r2);
    assert_col(f, T_OUT, r2, "claimed_by", who1);
    assert_int_equal(store_outbound_load_sent(b, 0, 10, now_ms(), &other), STORE_OK);
    assert_int_equal(other.n, 0);
    struct store_sent v = {r2, 5, "late"};
    assert_int_equal(store_outbound_sent(b, &v, 1, now_ms(), NULL), STORE_OK);
    assert_col(f, T_OUT, r2, "retry_count", "0");
    v.retry_count = 1;
    assert_int_equal(store_outbound_sent(f->st, &v, 1, now_ms(), NULL), STORE_OK);
    assert_col(f, T_OUT, r2, "retry_count", "1");
    /* a daemon that stops: its rows are taken back at once */
    store_close(b);
    assert_int_equal(store_recover_sending(f->st, now_ms(), &moved), STORE_OK);
    assert_int_equal(moved, 1);
    assert_col(f, T_OUT, r3, "state", "pending");
    assert_col(f, T_OUT, r3, "claimed_by", NULL);
    store_rows_free(&other);
}

/* The pid of the store's session (the newest of application_name securedgram's), gone. */
static void pg_kill_store_session(struct fx *f)
{
    int64_t pid = qint(f, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                          "'securedgram' AND datname = current_database() ORDER BY "
                          "backend_start DESC LIMIT 1");
    X(f, "SELECT pg_terminate_backend(%lld)", (long long)pid);
    for (int i = 0; i < 200; i++) {
        if (qint(f, "SELECT count(*) FROM pg_stat_activity WHERE pid = %lld", (long long)pid) == 0)
            return;
        struct timespec pause = {0, 10 * 1000000L};
        nanosleep(&pause, NULL);
    }
    fail_msg("session %lld does not end", (long long)pid);
}

/*
 * A lost connection: outside a transaction the next call connects again and
 * a read is run again, a write is not (it may have been made): ERR, then the
 * next call works; inside one the transaction is gone (tx_aborted); the
 * watch reports a change.
 */
static void test_pg_reconnect(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", NULL, "{}");
    pg_kill_store_session(f);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    pg_kill_store_session(f);
    assert_int_equal(out_failed(f, a, 0, "x"), STORE_ERR);
    assert_non_null(strstr(store_errmsg(f->st), "lost the connection to PostgreSQL"));
    assert_int_equal(out_failed(f, a, 0, "x"), STORE_OK);
    assert_col(f, T_OUT, a, "state", "send_failed");
    assert_int_equal(store_begin(f->st), STORE_OK);
    pg_kill_store_session(f);
    assert_int_equal(store_outbound_requeue(f->st, a, NULL, now_ms(), &(int){0}, NULL, 0),
                     STORE_ERR);
    assert_int_equal(store_tx_aborted(f->st), 1);
    store_rollback(f->st);
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    int changed = 0;
    assert_int_equal(store_outbound_requeue(f->st, a, NULL, now_ms(), &changed, NULL, 0), STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(store_commit(f->st), STORE_OK);
    int64_t t = mono_us();
    assert_int_equal(store_watch_start(f->st, 60000, t), STORE_OK);
    assert_true(store_watch_fd(f->st) >= 0);
    pg_kill_store_session(f);
    assert_int_equal(store_poll(f->st, 1, t + 1, &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_true(store_watch_fd(f->st) >= 0);
    assert_int_equal(store_poll(f->st, 0, t + 2, &changed), STORE_OK);
    assert_int_equal(changed, 0);
}

/*
 * A row in flight stays its daemon's however long it waits for its ACK: the
 * watch renews the leases of the connection's 'sending' and 'sent' rows
 * every PG_RENEW_EVERY_S (60 s), those ending within 150 s; another
 * daemon's are not touched.
 */
static void test_pg_lease_renewed(void **state)
{
    struct fx *f = *state;
    struct store *b = open_store(f, f->loc, STORE_CREATE);
    int64_t r1 = add_out(f, "pending", NULL, "{}");
    int64_t r2 = add_out(f, "pending", NULL, "{}");
    int64_t t = mono_us();
    assert_int_equal(store_watch_start(f->st, 1000, t), STORE_OK);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_claim(f->st, 2, now_ms(), &rows), STORE_OK);
    assert_int_equal(rows.n, 2);
    assert_int_equal(store_commit(f->st), STORE_OK);
    struct store_sent sent = {r2, 0, NULL};
    assert_int_equal(store_outbound_sent(f->st, &sent, 1, now_ms(), NULL), STORE_OK);
    int64_t r3 = add_out(f, "pending", NULL, "{}");
    struct store_rows other;
    assert_int_equal(store_rows_init(&other, 16, 16 * STORE_ROW_TEXT), 0);
    assert_int_equal(store_begin(b), STORE_OK);
    assert_int_equal(store_outbound_claim(b, 10, now_ms(), &other), STORE_OK);
    assert_int_equal(other.n, 1);
    assert_int_equal(store_commit(b), STORE_OK);
    X(f, "UPDATE outbound_messages SET lease_until = clock_timestamp() + interval '10 s'");
    int changed = 0;
#define LEFT                                                                                       \
    "SELECT (extract(epoch FROM lease_until - clock_timestamp()) > 200)::int FROM "                \
    "outbound_messages WHERE id = %lld"
    assert_int_equal(store_poll(f->st, 0, t + 59 * 1000000LL, &changed), STORE_OK);
    assert_int_equal(qint(f, LEFT, (long long)r1), 0); /* not yet due */
    assert_int_equal(store_poll(f->st, 0, t + 61 * 1000000LL, &changed), STORE_OK);
    assert_int_equal(qint(f, LEFT, (long long)r1), 1);
    assert_int_equal(qint(f, LEFT, (long long)r2), 1);
    assert_int_equal(qint(f, LEFT, (long long)r3), 0); /* the other daemon's */
    assert_col(f, T_OUT, r2, "state", "sent");
#undef LEFT
    store_rows_free(&other);
    store_close(b);
}

/* The pid of the store's session (the newest of application_name securedgram's). */
static pid_t pg_store_pid(struct fx *f)
{
    return (pid_t)qint(f, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                          "'securedgram' AND datname = current_database() ORDER BY "
                          "backend_start DESC LIMIT 1");
}

static int64_t ms_since(int64_t t0_us)
{
    return (mono_us() - t0_us) / 1000;
}

/* Calls store_outbound_pending, and store_poll between, until it works: 0, or -1 after 10 s. */
static int pending_within_10s(struct fx *f)
{
    int changed = 0;
    for (int64_t t0 = mono_us(); ms_since(t0) < 10000;) {
        if (store_outbound_pending(f->st, 10, &rows) == STORE_OK)
            return 0;
        struct pollfd none = {.fd = -1};
        (void)poll(&none, 1, 10);
        if (store_poll(f->st, 0, mono_us(), &changed) == STORE_GONE)
            return -1;
    }
    return -1;
}

/*
 * A server that stops answering (here its process is stopped: a hung host, a
 * stalled disk) costs a call its budget and no more: the session is dropped,
 * the call is BUSY and timed out, and calls go on, on a new session.
 */
static void test_pg_stuck_server(void **state)
{
    struct fx *f = *state;
    add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_watch_start(f->st, 60000, mono_us()), STORE_OK);
    store_set_budget(f->st, 200);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    pid_t pid = pg_store_pid(f);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    int64_t t0 = mono_us();
    enum store_rc rc = store_outbound_pending(f->st, 10, &rows);
    int64_t took = ms_since(t0);
    kill(pid, SIGCONT);
    assert_int_equal(rc, STORE_BUSY);
    assert_int_equal(store_timed_out(f->st), 1);
    assert_true(took >= 150 && took < 1000);
    assert_int_equal(pending_within_10s(f), 0);
    assert_int_equal(rows.n, 1);
    assert_true(pg_store_pid(f) != pid);
    /* the dropped session ends on the server once it runs again: nothing of it is held */
    for (int64_t t1 = mono_us();
         qint(f, "SELECT count(*) FROM pg_stat_activity WHERE pid = %lld", (long long)pid) != 0;) {
        assert_true(ms_since(t1) < 10000);
        struct pollfd none = {.fd = -1};
        (void)poll(&none, 1, 10);
    }
}

/* The server's parent process, the postmaster, from /proc (0 if unread). */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *fp = fopen(path, "r");
    size_t n = fp != NULL ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    if (fp != NULL)
        fclose(fp);
    buf[n] = '\0';
    const char *close = strrchr(buf, ')'); /* "pid (comm) state ppid ..." */
    long ppid = 0;
    return close != NULL && sscanf(close + 1, " %*c %ld", &ppid) == 1 ? (pid_t)ppid : 0;
}

/*
 * A lost session while the server takes no new connections (the postmaster
 * stopped): the call that starts the reconnection waits a moment, the next
 * ones not at all, and the connection is made once the server answers.
 */
static void test_pg_stuck_reconnect(void **state)
{
    struct fx *f = *state;
    add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_watch_start(f->st, 60000, mono_us()), STORE_OK);
    store_set_budget(f->st, 500);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    pid_t postmaster = parent_of(pg_store_pid(f));
    assert_true(postmaster > 1);
    pg_kill_store_session(f);
    assert_int_equal(kill(postmaster, SIGSTOP), 0);
    int64_t t0 = mono_us();
    enum store_rc first = store_outbound_pending(f->st, 10, &rows);
    int64_t took_first = ms_since(t0);
    t0 = mono_us();
    enum store_rc second = store_outbound_pending(f->st, 10, &rows);
    int64_t took_second = ms_since(t0);
    char why[256];
    snprintf(why, sizeof why, "%s", store_errmsg(f->st));
    kill(postmaster, SIGCONT);
    assert_int_equal(first, STORE_ERR);
    assert_true(took_first < 600);
    assert_int_equal(second, STORE_ERR);
    assert_true(took_second < 100);
    assert_non_null(strstr(why, "connecting to PostgreSQL again"));
    assert_int_equal(pending_within_10s(f), 0);
    assert_int_equal(rows.n, 1);
}

/* PostgreSQL text holds no NUL byte and only UTF-8: such a row is refused, the turn goes on. */
static void test_pg_bad_text(void **state)
{
    struct fx *f = *state;
    static const char nul[] = "{\"a\":\"x\0y\"}", bad[] = "{\"a\":\"\xff\xfe\"}";
    int64_t row = 0, p = add_out(f, "pending", NULL, "{}");
    enum store_in_result res = STORE_IN_DUP;
    char err[256] = "";
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_enqueue(f->st, NULL, "10.0.0.1", 9, NULL, nul, sizeof nul - 1, now_ms(),
                                   &row, err, sizeof err),
                     STORE_REFUSED);
    assert_non_null(strstr(err, "NUL"));
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(in_insert(f, ID1, "127.0.0.1", 1, nul, sizeof nul - 1, 1, &res),
                     STORE_REFUSED);
    assert_int_equal(in_insert(f, ID1, "127.0.0.1", 1, bad, sizeof bad - 1, 1, &res),
                     STORE_REFUSED);
    assert_non_null(strstr(store_errmsg(f->st), "UTF-8"));
    assert_int_equal(store_outbound_take(f->st, p, ID2, nul, sizeof nul - 1, 0, now_ms()),
                     STORE_REFUSED);
    assert_int_equal(in_insert(f, ID3, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(res, STORE_IN_NEW);
    assert_int_equal(store_tx_aborted(f->st), 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 1);
    assert_col(f, T_OUT, p, "state", "pending");
    /* several at once: the bad row stops the call, the ones before it are in */
    struct store_inbound m[3] = {{ID1, "::1", 1, "{}", 2, 0, 0, NULL, 0},
                                 {ID2, "::1", 1, nul, sizeof nul - 1, 0, 0, NULL, 0},
                                 {"ffffffffffffffffffffffff", "::1", 1, "{}", 2, 0, 0, NULL, 0}};
    enum store_in_result r3[3];
    int done = -1;
    assert_int_equal(store_inbound_insert(f->st, m, 3, now_ms(), r3, NULL, &done), STORE_REFUSED);
    assert_int_equal(done, 1);
    assert_int_equal(r3[0], STORE_IN_NEW);
    assert_int_equal(qint(f, "SELECT count(*) FROM inbound_messages"), 2);
}

/* 1 if fd becomes readable within ms. */
static int readable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

/*
 * NOTIFY: a tool's commit wakes the daemon at once; the daemon's own commits
 * are not reported to it; its commits wake a tool (debounced: one owed within
 * 50 ms is sent when the watch is polled); a script's insert, which notifies
 * nobody, is found by the fallback check.
 */
static void test_pg_notify(void **state)
{
    struct fx *f = *state;
    struct store *tool = open_store(f, f->loc, STORE_EXISTING);
    char err[256] = "";
    int changed = 0;
    int64_t t = mono_us(), row = 0;
    assert_int_equal(store_watch_start(f->st, 60000, t), STORE_OK);
    int fd = store_watch_fd(f->st);
    assert_true(fd >= 0);
    assert_true(store_poll_due_us(f->st) == t + 60000000);
    assert_int_equal(
        store_enqueue(tool, NULL, "10.0.0.1", 9, NULL, "{}", 2, now_ms(), &row, err, sizeof err),
        STORE_OK);
    assert_true(readable_within(fd, 2000));
    assert_int_equal(store_poll(f->st, 1, mono_us(), &changed), STORE_OK);
    assert_int_equal(changed, 1);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(store_outbound_take(f->st, row, ID1, NULL, 0, 0, now_ms()), STORE_OK);
    assert_int_equal(store_commit(f->st), STORE_OK);
    (void)readable_within(fd, 200); /* our own notification comes back to us */
    assert_int_equal(store_poll(f->st, 1, mono_us(), &changed), STORE_OK);
    assert_int_equal(changed, 0);
    /* the daemon's inbound row wakes a tool; the NOTIFY owed within 50 ms waits for the poll */
    assert_int_equal(store_watch_start(tool, 60000, mono_us()), STORE_OK);
    int tfd = store_watch_fd(tool);
    assert_true(tfd >= 0);
    enum store_in_result res;
    assert_int_equal(in_insert(f, ID2, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    assert_int_equal(in_insert(f, ID3, "127.0.0.1", 1, "{}", 2, 1, &res), STORE_OK);
    int64_t now = mono_us(); /* the second came within 50 ms of the first: owed */
    assert_true(store_poll_due_us(f->st) <= now + 60000);
    struct timespec pause = {0, 60 * 1000000L};
    nanosleep(&pause, NULL);
    assert_int_equal(store_poll(f->st, 0, mono_us(), &changed), STORE_OK);
    assert_true(readable_within(tfd, 2000));
    assert_int_equal(store_poll(tool, 1, mono_us(), &changed), STORE_OK);
    assert_int_equal(changed, 1);
    /* a script's insert: no NOTIFY, found by the fallback check */
    add_out(f, "pending", NULL, "{}");
    assert_int_equal(store_poll(f->st, 0, mono_us(), &changed), STORE_OK);
    assert_int_equal(changed, 1);
    store_close(tool);
}

/* ---- every case against every backend ---- */

struct tcase {
    const char *name;
    CMUnitTestFunction fn;
    CMFixtureFunction setup;
    int only;
};

#define CASE(fn, setup, only)                                                                      \
    {                                                                                              \
#fn, fn, setup, only                                                                       \
    }

static const struct tcase cases[] = {
    CASE(test_open_defaults, setup, ANY),
    CASE(test_open_creates_schema, setup, SQLITE_ONLY),
    CASE(test_open_again_keeps_data, setup, ANY),
    CASE(test_journal_bytes, setup, SQLITE_ONLY),
    CASE(test_count_states, setup, ANY),
    CASE(test_open_existing_missing, setup_dir, ANY),
    CASE(test_open_no_directory, setup_dir, SQLITE_ONLY),
    CASE(test_open_locations, setup, SQLITE_ONLY),
    CASE(test_open_busy, setup_dir, SQLITE_ONLY),
    CASE(test_open_not_a_database, setup_dir, SQLITE_ONLY),
    CASE(test_open_migrates_read_count, setup_dir, SQLITE_ONLY),
    CASE(test_open_half_a_database, setup_dir, SQLITE_ONLY),
    CASE(test_outbound_pending, setup, ANY),
    CASE(test_rows_buffer, setup, ANY),
    CASE(test_outbound_pending_exclude, setup, ANY),
    CASE(test_outbound_pending_many_excluded, setup, ANY),
    CASE(test_outbound_payload, setup, ANY),
    CASE(test_outbound_payloads_room, setup, ANY),
    CASE(test_outbound_payload_huge, setup, SQLITE_ONLY),
    CASE(test_outbound_hostile_columns, setup, SQLITE_ONLY),
    CASE(test_outbound_take, setup, ANY),
    CASE(test_outbound_take_set, setup, ANY),
    CASE(test_outbound_sent, setup, ANY),
    CASE(test_outbound_acked, setup, ANY),
    CASE(test_outbound_failed, setup, ANY),
    CASE(test_outbound_requeue, setup, ANY),
    CASE(test_outbound_many, setup, ANY),
    CASE(test_outbound_many_refused, setup, SQLITE_ONLY),
    CASE(test_outbound_many_same_row, setup, ANY),
    CASE(test_outbound_set_refused, setup, SQLITE_ONLY),
    CASE(test_outbound_claim, setup, ANY),
    CASE(test_recover_sending, setup, ANY),
    CASE(test_outbound_load_sent, setup, ANY),
    CASE(test_outbound_get_sent, setup, ANY),
    CASE(test_outbound_expire, setup, ANY),
    CASE(test_format_as_sqlite, setup, SQLITE_ONLY),
    CASE(test_times_from_caller, setup, ANY),
    CASE(test_inbound_insert, setup, ANY),
    CASE(test_inbound_ack_states, setup, ANY),
    CASE(test_inbound_ack_sent_rows_trigger, setup, SQLITE_ONLY),
    CASE(test_inbound_insert_refused, setup, SQLITE_ONLY),
    CASE(test_inbound_insert_rollback_trigger, setup, SQLITE_ONLY),
    CASE(test_inbound_insert_own_id, setup, ANY),
    CASE(test_budget, setup, SQLITE_ONLY),
    CASE(test_wal_removed, setup, SQLITE_ONLY),
    CASE(test_db_moved, setup, SQLITE_ONLY),
    CASE(test_inbound_unacked, setup, ANY),
    CASE(test_transactions, setup, ANY),
    CASE(test_watch, setup, ANY),
    CASE(test_watch_events, setup, SQLITE_ONLY),
    CASE(test_busy, setup, ANY),
    CASE(test_tool_mark_sets_updated_at, setup, ANY),
    CASE(test_tool_fetch, setup, ANY),
    CASE(test_tool_enqueue, setup, ANY),
    CASE(test_tool_purge, setup, ANY),
    CASE(test_tool_max_id, setup, ANY),
    CASE(test_tool_busy_text, setup, ANY),
    CASE(test_peer_inbound, setup, ANY),
    CASE(test_peer_outbound, setup, ANY),
    CASE(test_peer_hostile, setup, SQLITE_ONLY),
    CASE(test_peer_exclude, setup, ANY),
    CASE(test_peer_expire, setup, ANY),
    CASE(test_open_migrates_peer, setup_dir, SQLITE_ONLY),
    CASE(test_tool_select_peer, setup, ANY),
    CASE(test_seq_inbound, setup, ANY),
    CASE(test_seq_outbound, setup, ANY),
    CASE(test_seq_save_load, setup, ANY),
    CASE(test_seq_hostile, setup, SQLITE_ONLY),
    CASE(test_open_migrates_sequence, setup_dir, SQLITE_ONLY),
    CASE(test_pg_open_errors, setup_dir, PG_ONLY),
    CASE(test_pg_refusals, setup, PG_ONLY),
    CASE(test_pg_budget, setup, PG_ONLY),
    CASE(test_pg_leases, setup, PG_ONLY),
    CASE(test_pg_lease_renewed, setup, PG_ONLY),
    CASE(test_pg_reconnect, setup, PG_ONLY),
    CASE(test_pg_stuck_server, setup, PG_ONLY),
    CASE(test_pg_stuck_reconnect, setup, PG_ONLY),
    CASE(test_pg_bad_text, setup, PG_ONLY),
    CASE(test_pg_notify, setup, PG_ONLY),
};

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0] != NULL)
        program = argv[0];
    umask(022);
    enum { NB = sizeof backends / sizeof backends[0], NC = sizeof cases / sizeof cases[0] };
    static struct CMUnitTest tests[NB * NC + 2];
    static char names[NB * NC][96];
    size_t n = 0;
    tests[n++] = (struct CMUnitTest){"test_format", test_format, NULL, NULL, NULL};
    tests[n++] = (struct CMUnitTest){"test_states", test_states, NULL, NULL, NULL};
    for (size_t b = 0; b < NB; b++)
        for (size_t c = 0; c < NC; c++) {
            if ((cases[c].only == SQLITE_ONLY && strcmp(backends[b].name, "sqlite") != 0) ||
                (cases[c].only == PG_ONLY && strcmp(backends[b].name, "postgresql") != 0))
                continue;
            char *name = names[n - 2];
            snprintf(name, sizeof names[0], "%s: %s", backends[b].name, cases[c].name);
            tests[n] = (struct CMUnitTest){name, cases[c].fn, cases[c].setup, teardown,
                                           (void *)&backends[b]};
            n++;
        }
    int rc = _cmocka_run_group_tests("store", tests, n, NULL, NULL);
    PQfinish(pg_admin);
    return rc;
}
