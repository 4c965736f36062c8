/*
 * journal: owed changes applied at the next transaction and forgotten only
 * once it committed; store results judged (counted, refused rows skipped,
 * a rolled-back transaction redone); refused rows remembered and left out
 * of claims. On real SQLite files in a fresh temporary directory, with a
 * second, raw connection that writes rows and triggers as scripts do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/journal.h"
#include "util/log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ID1 "a1b2c3d4e5f60718293a4b5c"
#define ID2 "0123456789abcdef01234567"
#define ID3 "fedcba9876543210fedcba98"

struct fx {
    char dir[64], path[128];
    struct store *st;
    sqlite3 *raw;
    struct counters c;
    struct journal j;
};

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

/* The state of outbound (or inbound) row id, into out. */
static const char *state_of(struct fx *f, const char *table, int64_t id, char out[32])
{
    char sql[160];
    sqlite3_stmt *s = NULL;
    snprintf(sql, sizeof sql, "SELECT state FROM %s WHERE id = %lld", table, (long long)id);
    assert_int_equal(sqlite3_prepare_v2(f->raw, sql, -1, &s, NULL), SQLITE_OK);
    out[0] = '\0';
    if (sqlite3_step(s) == SQLITE_ROW)
        snprintf(out, 32, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
}

static int64_t add_out(struct fx *f, const char *state, const char *id)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO outbound_messages (message_id, dst_addr, dst_port, payload, state) "
             "VALUES ('%s', '127.0.0.1', 9000, '{}', '%s')",
             id, state);
    exec(f->raw, sql);
    return sqlite3_last_insert_rowid(f->raw);
}

static int64_t add_in(struct fx *f, const char *id)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO inbound_messages (message_id, src_addr, src_port, payload, "
             "crypto_timestamp) VALUES ('%s', '127.0.0.1', 9000, '{}', 'x')",
             id);
    exec(f->raw, sql);
    return sqlite3_last_insert_rowid(f->raw);
}

static int setup_cap(void **state, int cap)
{
    struct fx *f = calloc(1, sizeof *f);
    char err[256] = "";
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/sg-test-journal.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/test.db", f->dir);
    if (store_open(f->path, STORE_CREATE, 50, &f->st, err, sizeof err) != STORE_OK ||
        sqlite3_open_v2(f->path, &f->raw, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return -1;
    sqlite3_busy_timeout(f->raw, 2000);
    if (journal_init(&f->j, f->st, &f->c, cap) != 0)
        return -1;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_cap(state, 64);
}

static int setup_small(void **state)
{
    return setup_cap(state, 2);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"test.db", "test.db-wal", "test.db-shm", "test.db-journal"};
    char p[256];
    journal_fini(&f->j);
    store_close(f->st);
    sqlite3_close(f->raw);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", f->dir, names[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* The journal holds its capacity and no more; what it holds is copied. */
static void test_capacity_and_copies(void **state)
{
    struct fx *f = *state;
    char why[32] = "transient";
    assert_int_equal(journal_add(&f->j, JOURNAL_SENT, NULL, 7, 1, why), 0);
    why[0] = 'X';
    assert_int_equal(journal_add(&f->j, JOURNAL_ACK_SENT, ID1, 0, 0, NULL), 0);
    assert_int_equal(journal_add(&f->j, JOURNAL_ACK_SENT, ID2, 0, 0, NULL), -1);
    assert_int_equal(f->j.n, 2);
    assert_string_equal(f->j.jobs[0].why, "transient");
    assert_string_equal(f->j.jobs[0].id, "");
    assert_null(f->j.jobs[1].why);
    assert_string_equal(f->j.jobs[1].id, ID1);
}

/* Applied changes are forgotten at COMMIT; after a rollback all of them are owed still. */
static void test_apply_commit_and_undo(void **state)
{
    struct fx *f = *state;
    char st[32];
    int64_t out = add_out(f, "sending", ID1);
    int64_t in = add_in(f, ID2);
    assert_int_equal(journal_add(&f->j, JOURNAL_SENT, NULL, out, 0, NULL), 0);
    assert_int_equal(journal_add(&f->j, JOURNAL_ACK_SENT, ID2, 0, 0, NULL), 0);

    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_apply(&f->j), 0);
    assert_int_equal(f->j.applied, 2);
    store_rollback(f->st);
    journal_undo(&f->j);
    assert_int_equal(f->j.n, 2);
    assert_int_equal(f->j.applied, 0);
    assert_string_equal(state_of(f, "outbound_messages", out, st), "sending");

    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_apply(&f->j), 0);
    /* a change owed after the apply stays owed past this commit */
    assert_int_equal(journal_add(&f->j, JOURNAL_ACKED, ID1, out, 0, NULL), 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    journal_committed(&f->j);
    assert_int_equal(f->j.n, 1);
    assert_int_equal(f->j.jobs[0].kind, JOURNAL_ACKED);
    assert_string_equal(state_of(f, "outbound_messages", out, st), "sent");
    assert_string_equal(state_of(f, "inbound_messages", in, st), "ack_sent");

    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_apply(&f->j), 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    journal_committed(&f->j);
    assert_int_equal(f->j.n, 0);
    assert_string_equal(state_of(f, "outbound_messages", out, st), "acknowledged");
    assert_int_equal(f->c.acks_unmatched, 0);
}

/* An ACK sent for a row just stored is recorded by its rowid; one for a duplicate by its id. */
static void test_ack_sent_by_row_and_by_id(void **state)
{
    struct fx *f = *state;
    char st[32];
    int64_t a = add_in(f, ID1), b = add_in(f, ID2), c = add_in(f, ID3);
    assert_int_equal(journal_add(&f->j, JOURNAL_ACK_SENT_ROW, ID1, a, 0, NULL), 0);
    assert_int_equal(journal_add(&f->j, JOURNAL_ACK_SENT, ID2, 0, 0, NULL), 0);
    assert_int_equal(journal_add(&f->j, JOURNAL_ACK_SENT_ROW, ID3, c, 0, NULL), 0);
    assert_int_equal(journal_add(&f->j, JOURNAL_ACK_FAILED, ID3, 0, 0, NULL), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_apply(&f->j), 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    journal_committed(&f->j);
    assert_int_equal(f->j.n, 0);
    assert_string_equal(state_of(f, "inbound_messages", a, st), "ack_sent");
    assert_string_equal(state_of(f, "inbound_messages", b, st), "ack_sent");
    assert_string_equal(state_of(f, "inbound_messages", c, st), "ack_sent"); /* the sent one wins */
}

/* An ACK for a row that is no longer in flight in the database counts as unmatched. */
static void test_ack_unmatched(void **state)
{
    struct fx *f = *state;
    int64_t out = add_out(f, "send_failed", ID1);
    assert_int_equal(journal_add(&f->j, JOURNAL_ACKED, ID1, out, 0, NULL), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_apply(&f->j), 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(f->c.acks_unmatched, 1);
}

/*
 * A change the database refuses (a trigger) costs only itself: it is counted,
 * skipped from then on, and a refused send_failed leaves its row out of claims.
 */
static void test_refused_change_is_skipped(void **state)
{
    struct fx *f = *state;
    char st[32];
    int64_t bad = add_out(f, "sending", ID1);
    int64_t good = add_out(f, "sending", ID2);
    exec(f->raw, "CREATE TRIGGER no BEFORE UPDATE ON outbound_messages WHEN "
                 "NEW.state = 'send_failed' BEGIN SELECT RAISE(ABORT, 'kept'); END");
    assert_int_equal(journal_add(&f->j, JOURNAL_FAILED, NULL, bad, 0, "why"), 0);
    assert_int_equal(journal_add(&f->j, JOURNAL_SENT, NULL, good, 0, NULL), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_apply(&f->j), 0);
    assert_int_equal(f->j.redo, 0);
    assert_int_equal(f->j.jobs[0].dead, 1);
    assert_int_equal(f->c.store_refused, 1);
    assert_int_equal(f->j.nskips, 1);
    assert_int_equal(f->j.skips[0], bad);
    assert_int_equal(journal_apply(&f->j), 0); /* not tried again */
    assert_int_equal(f->c.store_refused, 1);
    assert_int_equal(store_commit(f->st), STORE_OK);
    journal_committed(&f->j);
    assert_int_equal(f->j.n, 0);
    assert_string_equal(state_of(f, "outbound_messages", bad, st), "sending");
    assert_string_equal(state_of(f, "outbound_messages", good, st), "sent");
}

/* A refusal that rolled the whole transaction back asks for the turn to be redone. */
static void test_rollback_refusal_redoes(void **state)
{
    struct fx *f = *state;
    int64_t out = add_out(f, "sending", ID1);
    exec(f->raw, "CREATE TRIGGER rb BEFORE UPDATE ON outbound_messages "
                 "BEGIN SELECT RAISE(ROLLBACK, 'no thanks'); END");
    assert_int_equal(journal_add(&f->j, JOURNAL_SENT, NULL, out, 0, NULL), 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_apply(&f->j), -1);
    assert_int_equal(f->j.redo, 1);
    assert_int_equal(f->j.jobs[0].dead, 1); /* the redone turn goes on without it */
    journal_undo(&f->j);
}

/* journal_result: OK goes on, a refusal skips the row, anything else aborts the turn. */
static void test_result(void **state)
{
    struct fx *f = *state;
    assert_int_equal(journal_result(&f->j, STORE_OK, "x"), 1);
    assert_int_equal(journal_result(&f->j, STORE_BUSY, "x"), -1);
    assert_int_equal(journal_result(&f->j, STORE_ERR, "x"), -1);
    assert_int_equal(f->c.store_errors, 2);
    assert_int_equal(f->c.store_timeouts, 0);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_result(&f->j, STORE_REFUSED, "x"), 0);
    assert_int_equal(journal_result(&f->j, STORE_DUP, "x"), 0);
    assert_int_equal(f->c.store_refused, 2);
    assert_int_equal(f->j.redo, 0); /* the transaction is still open */
    store_rollback(f->st);
    /* a refusal that ended the whole transaction: test_rollback_refusal_redoes */
}

/* Marking a row send_failed on the spot; a refusal poisons it and leaves it out of claims. */
static void test_fail_row(void **state)
{
    struct fx *f = *state;
    char st[32];
    int64_t ok = add_out(f, "pending", ID1);
    int64_t no = add_out(f, "pending", ID2);
    struct store_outbound_row r = {.rowid = ok, .dst_addr = "127.0.0.1", .dst_port_text = "9000"};
    exec(f->raw, "CREATE TRIGGER no BEFORE UPDATE ON outbound_messages WHEN OLD.id = 2 "
                 "BEGIN SELECT RAISE(ABORT, 'kept'); END");
    journal_prepare(&f->j);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_fail_row(&f->j, &r, 3, "bad port"), 1);
    assert_int_equal(f->j.failed, 1);
    r.rowid = no;
    assert_int_equal(journal_fail_row(&f->j, &r, 0, "bad port"), 0);
    assert_int_equal(journal_poisoned(&f->j, no), JOURNAL_REFUSED_FAIL);
    assert_int_equal(f->c.store_refused, 1);
    assert_int_equal(journal_fail_row(&f->j, &r, 0, "bad port"), 0); /* not tried again */
    assert_int_equal(f->c.store_refused, 1);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_string_equal(state_of(f, "outbound_messages", ok, st), "send_failed");
    assert_string_equal(state_of(f, "outbound_messages", no, st), "pending");
    assert_int_equal(f->j.nskips, 1);
    journal_prepare(&f->j); /* the skip goes to the store, outside the transaction */
    assert_int_equal(f->j.nskips, 0);
    assert_int_equal(f->j.failed, 0);
}

/* Skipped rows are left out of claims from then on. */
static void test_skips_reach_the_store(void **state)
{
    struct fx *f = *state;
    int64_t a = add_out(f, "pending", ID1);
    (void)add_out(f, "pending", ID2);
    struct store_rows rows;
    assert_int_equal(store_rows_init(&rows, 10, 10 * STORE_ROW_TEXT), 0);
    journal_skip(&f->j, a);
    journal_prepare(&f->j);
    assert_int_equal(store_outbound_pending(f->st, 10, &rows), STORE_OK);
    assert_int_equal(rows.n, 1);
    assert_true(rows.out[0].rowid != a);
    store_rows_free(&rows);
}

/* Poisoned rows are remembered by stage, a ring of JOURNAL_POISON_MAX. */
static void test_poison_ring(void **state)
{
    struct fx *f = *state;
    journal_poison(&f->j, 1, JOURNAL_REFUSED_UPDATE);
    assert_int_equal(journal_poisoned(&f->j, 1), JOURNAL_REFUSED_UPDATE);
    journal_poison(&f->j, 1, JOURNAL_REFUSED_FAIL);
    assert_int_equal(journal_poisoned(&f->j, 1), JOURNAL_REFUSED_FAIL);
    assert_int_equal(f->j.npoison, 1);
    assert_int_equal(journal_poisoned(&f->j, 2), 0);
    for (int64_t r = 2; r <= JOURNAL_POISON_MAX + 1; r++)
        journal_poison(&f->j, r, JOURNAL_REFUSED_UPDATE);
    assert_int_equal(journal_poisoned(&f->j, 1), 0); /* the oldest went */
    assert_int_equal(journal_poisoned(&f->j, 2), JOURNAL_REFUSED_UPDATE);
    assert_int_equal(journal_poisoned(&f->j, JOURNAL_POISON_MAX + 1), JOURNAL_REFUSED_UPDATE);
    for (int64_t r = 0; r < JOURNAL_SKIP_MAX + 5; r++)
        journal_skip(&f->j, r);
    assert_int_equal(f->j.nskips, JOURNAL_SKIP_MAX);
}

/* A silent destination's backlog: the old pending rows fail, counted, the new ones stay. */
static void test_fail_backlog(void **state)
{
    struct fx *f = *state;
    char st[32];
    int64_t old = add_out(f, "pending", ID1);
    int64_t young = add_out(f, "pending", ID2);
    exec(f->raw, "UPDATE outbound_messages SET created_at = '2000-01-01T00:00:00.000' "
                 "WHERE id = 1");
    struct store_dest d = {"127.0.0.1", 9000};
    journal_prepare(&f->j);
    assert_int_equal(store_begin(f->st), STORE_OK);
    assert_int_equal(journal_fail_backlog(&f->j, &d, NULL, 60000, 0), 0);
    assert_int_equal(store_commit(f->st), STORE_OK);
    assert_int_equal(f->j.failed, 1);
    assert_string_equal(state_of(f, "outbound_messages", old, st), "send_failed");
    assert_string_equal(state_of(f, "outbound_messages", young, st), "pending");
}

int main(void)
{
    if (log_open("/dev/null", "test_journal") != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_capacity_and_copies, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_apply_commit_and_undo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_sent_by_row_and_by_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_unmatched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_change_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_refusal_redoes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_skips_reach_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poison_ring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_backlog, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
