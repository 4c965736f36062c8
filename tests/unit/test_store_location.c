/*
 * Unit tests for store_location_text: what the log, status and the tools
 * show of SECUREDGRAM_DB. A PostgreSQL URI's password never shows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"

#include <string.h>

static void shown(const char *location, const char *want)
{
    char out[STORE_LOCATION_TEXT_MAX];
    store_location_text(location, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_passwords_hidden(void **state)
{
    (void)state;
    shown("/var/lib/securedgram/securedgram.db", "/var/lib/securedgram/securedgram.db");
    shown("postgresql://sg@db.example/queue", "postgresql://sg@db.example/queue");
    shown("postgresql://sg:s3cret@db.example:5432/queue",
          "postgresql://sg:***@db.example:5432/queue");
    shown("postgres://sg:p%40ss@10.0.0.1/q?sslmode=require",
          "postgres://sg:***@10.0.0.1/q?sslmode=require");
    shown("postgresql:///queue?host=/run/pg&password=hunter2&port=5433",
          "postgresql:///queue?host=/run/pg&password=***&port=5433");
    shown("postgresql://sg@/q?password=x", "postgresql://sg@/q?password=***");
    shown("postgresql://sg:p@ss@db/q", "postgresql://sg:***@db/q");
    /* a colon after the host (the port) is no password */
    shown("postgresql://db.example:5432/q", "postgresql://db.example:5432/q");
}

static void test_cut_to_fit(void **state)
{
    (void)state;
    char out[16];
    store_location_text("postgresql://user:secretsecret@host/db", out, sizeof out);
    assert_null(strstr(out, "secret"));
    assert_true(strlen(out) < sizeof out);
    store_location_text("postgresql://u@h/d?password=abcdefghijkl", out, sizeof out);
    assert_null(strstr(out, "abc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passwords_hidden),
        cmocka_unit_test(test_cut_to_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
