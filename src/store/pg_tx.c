/*
 * pg_tx: the PostgreSQL backend's transactions (store_begin, _commit,
 * _rollback), the time budget, and what a transaction checks at its start:
 * the tables' locks and the operator's rules on them (whether writes need
 * savepoints). See pg.c's comment for why each is as it is.
 */
#include "util/clock.h"
#include "store/pg_impl.h"

#include <stdio.h>
#include <string.h>

void pg_set_budget(struct store *st, int budget_ms)
{
    pg_of(st)->budget_ms = budget_ms;
}

int pg_timed_out(const struct store *st)
{
    return pg_const(st)->timed_out;
}

void pg_write_stats(const struct store *st, uint64_t *statements, uint64_t *rows)
{
    *statements = pg_const(st)->writes;
    *rows = pg_const(st)->rows;
}

/*
 * No journal file to measure: the WAL is the server's, shared by every
 * database of the cluster, and what of it is not yet checkpointed says
 * nothing about this queue (pg_current_wal_lsn() minus the last checkpoint's
 * would be the cluster's, and needs pg_control_checkpoint(), a superuser's).
 */
int64_t pg_journal_bytes(const struct store *st)
{
    (void)st;
    return -1;
}

/* The full rules check at least this often (what the fingerprint does not show). */
#define RULES_EVERY_MS 2000

/* Takes sg_begin's answer: the fingerprint, and the tables with rules if it checked them. */
static void rules_of(struct pg *b, const PGresult *r)
{
    if (r == NULL || PQntuples(r) != 1 || PQnfields(r) != 2) {
        b->rules = PG_WRITES; /* cannot tell: savepoints everywhere, and a check next time */
        b->rules_at = 0;
        return;
    }
    const char *fp = pg_text(r, 0, 0), *t = pg_text(r, 0, 1);
    if (t == NULL)
        return; /* the fingerprint is the last check's: its answer stands */
    snprintf(b->rules_fp, sizeof b->rules_fp, "%s", fp != NULL ? fp : "");
    b->rules_at = clock_mono_ms();
    b->rules = (strstr(t, "outbound_messages") != NULL ? PG_W_OUT : 0) |
               (strstr(t, "inbound_messages") != NULL ? PG_W_IN : 0) |
               (strstr(t, "peer_sequence") != NULL ? PG_W_SEQ : 0);
}

/* BEGIN, the tables' lock and the rules check on the session as it is (pg_begin). */
static enum store_rc begin_once(struct pg *b)
{
    if (PQtransactionStatus(b->conn) != PQTRANS_IDLE)
        (void)pg_simple(b, "ROLLBACK", NULL);
    if (!b->begin_prepared) {
        enum store_rc rc = pg_simple(b, pg_begin_prepare_sql, NULL);
        if (rc != STORE_OK)
            return rc;
        b->begin_prepared = 1;
    }
    /* the fingerprint is digits, ':' and ',' (pg_sql.c): safe in a literal */
    char args[sizeof b->rules_fp + 32], sql[sizeof args + 256];
    int full = b->rules_at == 0 || clock_mono_ms() - b->rules_at >= RULES_EVERY_MS;
    snprintf(args, sizeof args, "'%s', %s",
             strspn(b->rules_fp, "0123456789:,") == strlen(b->rules_fp) ? b->rules_fp : "",
             full ? "true" : "false");
    snprintf(sql, sizeof sql, "%s%s)", pg_begin_sql, args);
    PGresult *last = NULL;
    enum store_rc rc = pg_simple(b, sql, &last);
    if (rc != STORE_OK) {
        char why[sizeof b->why];
        memcpy(why, b->why, sizeof why);
        if (pg_live(b) && PQtransactionStatus(b->conn) != PQTRANS_IDLE)
            (void)pg_simple(b, "ROLLBACK", NULL);
        memcpy(b->why, why, sizeof why);
        return rc;
    }
    rules_of(b, last);
    PQclear(last);
    return STORE_OK;
}

enum store_rc pg_begin(struct store *st)
{
    struct pg *b = pg_of(st);
    b->timed_out = b->in_tx = b->aborted = b->wrote = 0;
    b->deadline = 0;
    b->why[0] = '\0';
    if (b->gone)
        return pg_fail(b, STORE_GONE, "the PostgreSQL database was dropped or replaced");
    int reconnected = !pg_live(b);
    if (reconnected && pg_reconnect(b) != 0)
        return b->gone ? STORE_GONE : STORE_ERR;
    enum store_rc rc = begin_once(b);
    /* a session that had died unnoticed (a server restart): nothing was done, so again */
    if (rc != STORE_OK && !pg_live(b) && !reconnected) {
        if (pg_reconnect(b) != 0)
            return b->gone ? STORE_GONE : STORE_ERR;
        rc = begin_once(b);
    }
    if (rc != STORE_OK)
        return rc;
    b->in_tx = 1;
    if (b->budget_ms > 0)
        b->deadline = clock_mono_ms() + b->budget_ms;
    return STORE_OK;
}

void pg_rollback(struct store *st)
{
    struct pg *b = pg_of(st);
    char why[sizeof b->why];
    memcpy(why, b->why, sizeof why);
    if (pg_live(b) && PQtransactionStatus(b->conn) != PQTRANS_IDLE)
        (void)pg_simple(b, "ROLLBACK", NULL);
    memcpy(b->why, why, sizeof why);
    b->in_tx = b->aborted = b->wrote = 0;
    b->deadline = 0;
}

enum store_rc pg_commit(struct store *st)
{
    struct pg *b = pg_of(st);
    enum store_rc rc = STORE_OK;
    if (!b->in_tx) {
        rc = pg_fail(b, STORE_ERR, "cannot commit: no transaction is open");
    } else if (b->aborted) {
        char why[sizeof b->why];
        snprintf(why, sizeof why, "the transaction had ended already: %.400s", b->why);
        rc = pg_fail(b, STORE_ERR, why);
    } else if (b->gone) {
        rc = pg_fail(b, STORE_GONE, "the PostgreSQL database was dropped or replaced");
    } else {
        PGresult *r = NULL;
        b->why[0] = '\0';
        rc = pg_simple(b, "COMMIT", &r);
        /* COMMIT of a transaction in error rolls back and says so */
        if (rc == STORE_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0)
            rc = pg_fail(b, STORE_ERR, "the transaction was rolled back by the server");
        PQclear(r);
        if (rc != STORE_OK && !pg_live(b)) {
            char m[320];
            pg_conn_message(b, m, sizeof m);
            snprintf(b->why, sizeof b->why,
                     "lost the connection to PostgreSQL at COMMIT (it may or may not have "
                     "been made): %s",
                     m);
            rc = STORE_ERR;
        }
    }
    int wrote_mask = rc == STORE_OK ? b->wrote : 0;
    pg_rollback(st); /* nothing left open, whatever happened */
    if (wrote_mask != 0) {
        b->notify_due_mask |= wrote_mask;
        pg_notify_flush(b, 0);
    }
    return rc;
}

int pg_tx_aborted(const struct store *st)
{
    const struct pg *b = pg_const(st);
    return b->in_tx && b->aborted;
}
