/*
 * store_internal: what store.c and store_admin.c share. Not for other modules.
 */
#ifndef SG_STORE_INTERNAL_H
#define SG_STORE_INTERNAL_H

#include "store/store.h"

#include <sqlite3.h>
#include <sys/types.h>

/* "now" as the original writes it: UTC, milliseconds. */
#define STORE_NOW "strftime('%Y-%m-%dT%H:%M:%f','now')"

#define STORE_MAX_STMTS 48
/* Cache slots from here on belong to store_admin.c (the daemon's are below). */
#define STORE_ADMIN_STMT_BASE 24

struct store {
    sqlite3 *db;
    sqlite3_stmt *stmt[STORE_MAX_STMTS]; /* prepared on first use, by index */
    char why[256]; /* why the last call failed, when SQLite's own message is not it */
    char path[4096];
    dev_t dev; /* the file opened, to notice it being removed or replaced */
    ino_t ino;
    dev_t wal_dev; /* and its -wal (ino 0 until it exists) */
    ino_t wal_ino;
    int budget_ms;    /* store_set_budget */
    int64_t deadline; /* CLOCK_MONOTONIC ms: the open transaction's budget ends */
    int timed_out;
};

/* The cached statement at index idx for sql (reset, bindings cleared), or NULL. */
sqlite3_stmt *store_stmt(struct store *st, int idx, const char *sql);

/*
 * Maps an (extended) SQLite result code to a store_rc: STORE_OK for
 * DONE/ROW/OK, STORE_BUSY for BUSY/LOCKED/INTERRUPT, STORE_DUP for a UNIQUE
 * or PRIMARY KEY conflict, STORE_REFUSED for other constraints (CHECK, NOT
 * NULL, a trigger's RAISE), a too big or mismatched value, else STORE_ERR.
 */
enum store_rc store_rc_of(int rc);

#endif
