/*
 * Unit tests for store/sqlite_ckpt.c: the daemon's database (STORE_CREATE)
 * is checkpointed by a thread of its own, so its pages reach the database
 * file and the -wal stays bounded, although the daemon's commits never
 * checkpoint; and closing the store ends the thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"
#include "util/clock.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static off_t size_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : 0;
}

/* Threads of this process now. */
static int threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static void test_pages_reach_the_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/sg-test-ckpt.XXXXXX", db[64], wal[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/q.db", dir);
    snprintf(wal, sizeof wal, "%s/q.db-wal", dir);
    int before = threads();
    struct store *st = NULL;
    assert_int_equal(store_open(db, STORE_CREATE, 1000, &st, err, sizeof err), STORE_OK);
    assert_int_equal(threads(), before + 1);
    off_t empty = size_of(db);
    /* 16 MB of rows, 20 a transaction: 4,000 pages and more, without a pause */
    enum { ROWS = 4000, BYTES = 4000 };
    char *payload = malloc(BYTES + 1);
    assert_non_null(payload);
    memset(payload, 'x', BYTES);
    memcpy(payload, "{\"p\":\"", 6);
    memcpy(payload + BYTES - 2, "\"}", 3);
    for (int i = 0; i < ROWS; i += 20) {
        assert_int_equal(store_begin(st), STORE_OK);
        for (int k = 0; k < 20; k++) {
            int64_t rowid = 0;
            assert_int_equal(store_enqueue(st, NULL, "127.0.0.1", 9, NULL, payload, BYTES,
                                           clock_real_ms(), &rowid, err, sizeof err),
                             STORE_OK);
        }
        assert_int_equal(store_commit(st), STORE_OK);
    }
    /* the thread copies them into the file: within a deadline, not at once */
    int64_t end = clock_mono_ms() + 10000;
    while (size_of(db) < empty + (off_t)ROWS * BYTES / 2 && clock_mono_ms() < end) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(size_of(db) >= empty + (off_t)ROWS * BYTES / 2);
    /* and the -wal was started over, not grown to hold everything: at most about 2,000
     * frames (sqlite_ckpt.c's CKPT_HARD) and a transaction's */
    assert_true(size_of(wal) < (off_t)12 * 1024 * 1024);
    store_close(st);
    assert_int_equal(threads(), before);
    free(payload);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A tool's connection (STORE_EXISTING) has no thread: SQLite checkpoints as it always did. */
static void test_tools_have_no_thread(void **state)
{
    (void)state;
    char dir[] = "/tmp/sg-test-ckpt.XXXXXX", db[64], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(db, sizeof db, "%s/q.db", dir);
    struct store *st = NULL;
    assert_int_equal(store_open(db, STORE_CREATE, 1000, &st, err, sizeof err), STORE_OK);
    store_close(st);
    int before = threads();
    assert_int_equal(store_open(db, STORE_EXISTING, 1000, &st, err, sizeof err), STORE_OK);
    assert_int_equal(threads(), before);
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages_reach_the_file),
        cmocka_unit_test(test_tools_have_no_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
