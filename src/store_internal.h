/*
 * store_internal: what store.c and store_admin.c share. Not for other modules.
 */
#ifndef SG_STORE_INTERNAL_H
#define SG_STORE_INTERNAL_H

#include "store.h"

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
    char failed_commit[256];             /* why the last COMMIT failed, until the next BEGIN */
    char path[4096];
    dev_t dev; /* the file opened, to notice it being removed or replaced */
    ino_t ino;
};

/* The cached statement at index idx for sql (reset, bindings cleared), or NULL. */
sqlite3_stmt *store_stmt(struct store *st, int idx, const char *sql);

/* Maps an SQLite result code to STORE_BUSY / STORE_DUP / STORE_ERR (STORE_OK for DONE/ROW/OK). */
enum store_rc store_rc_of(int rc);

#endif
