/*
 * sqlite_ckpt: the daemon's WAL checkpoints, in a thread of their own.
 *
 * SQLite checkpoints from the connection whose commit takes the -wal past
 * 1,000 pages: that commit then copies the pages into the database and
 * syncs it, some 20 ms here, and the daemon's loop waits for it (the
 * spikes of insert -> acknowledged p99 in make bench). So the daemon's
 * connection does not checkpoint after each such commit (its wal hook
 * replaces SQLite's automatic one): after a commit that leaves CKPT_FRAMES
 * or more frames, the hook wakes a thread that runs a PASSIVE checkpoint on
 * a connection of its own, which never waits for a reader or a writer. The
 * thread touches nothing of the engine's; the loop stays the daemon's only
 * one. The tools keep SQLite's automatic checkpoints.
 *
 * The -wal starts over only when a writer begins with every frame copied, so
 * under writes without a pause the thread never catches up: past CKPT_HARD
 * frames the commit checkpoints itself, as SQLite's would (after waiting for
 * the thread's, which holds the checkpoint lock), and the -wal stays bounded.
 */
#include "store/sqlite_impl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Frames (pages) in the -wal after which a checkpoint is asked for: half SQLite's default. */
#define CKPT_FRAMES 500
#define CKPT_HARD (4 * CKPT_FRAMES) /* frames after which the commit checkpoints itself */

struct sq_ckpt {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* due or stop set; or running cleared */
    int due, stop, running; /* under mu; running: the thread is checkpointing */
    int held;               /* under mu: the daemon's connection is checkpointing */
    sqlite3 *db;            /* the thread's own connection */
};

static void *run(void *arg)
{
    struct sq_ckpt *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while ((!c->due || c->held) && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        c->due = 0;
        c->running = 1;
        pthread_mutex_unlock(&c->mu);
        /* what it cannot copy now (a reader's snapshot) waits for the next one */
        (void)sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&c->mu);
        c->running = 0;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* After each commit of the daemon's connection: frames are in the -wal now. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct sq_ckpt *c = arg;
    if (frames < CKPT_FRAMES)
        return SQLITE_OK;
    pthread_mutex_lock(&c->mu);
    if (frames < CKPT_HARD) {
        c->due = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return SQLITE_OK;
    }
    c->held = 1; /* the thread starts no other meanwhile */
    while (c->running)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->held = 0;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return SQLITE_OK;
}

int sq_ckpt_start(struct sq *b, char *err, size_t errlen)
{
    struct sq_ckpt *c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
    /* a connection sees the -wal only once it has read the database: read its mode now */
    if (sqlite3_open_v2(b->path, &c->db, flags, NULL) != SQLITE_OK ||
        sqlite3_exec(c->db, "PRAGMA journal_mode", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s for checkpoints: %s", b->path,
                 c->db != NULL ? sqlite3_errmsg(c->db) : "out of memory");
        sqlite3_close(c->db);
        free(c);
        return -1;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    int rc = pthread_create(&c->thread, NULL, run, c);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the checkpoint thread: %s", strerror(rc));
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        sqlite3_close(c->db);
        free(c);
        return -1;
    }
    b->ckpt = c;
    (void)sqlite3_wal_hook(b->db, wal_hook, c);
    return 0;
}

void sq_ckpt_stop(struct sq *b)
{
    struct sq_ckpt *c = b->ckpt;
    if (c == NULL)
        return;
    (void)sqlite3_wal_hook(b->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    sqlite3_close(c->db);
    free(c);
    b->ckpt = NULL;
}
