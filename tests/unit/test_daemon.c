/*
 * daemon: which command lines are a securedgram daemon's, so that a pid file
 * nobody locks (the Ruby original's) still counts as running, and one naming
 * any other process stays stale.
 */
#include "daemon/daemon.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* The argv as /proc/PID/cmdline has it: NUL after each argument (sizeof counts the last). */
#define IS_DAEMON(lit) daemon_cmdline_is_daemon(lit, sizeof lit - 1)

static void test_ours(void **state)
{
    (void)state;
    assert_true(IS_DAEMON("securedgram\0start\0"));
    assert_true(IS_DAEMON("/usr/local/bin/securedgram\0-P\0/run/securedgram.pid\0start\0"));
    assert_true(IS_DAEMON("./bin/securedgram\0--foreground\0start\0"));
}

/* The original on Linux: "#!/usr/bin/env ruby" gives argv[0] "ruby"; a gem wrapper may name
 * the interpreter by its path and version; a source checkout runs it with -Ilib. */
static void test_the_ruby_original(void **state)
{
    (void)state;
    assert_true(IS_DAEMON("ruby\0/usr/local/bin/securedgram\0start\0"));
    assert_true(IS_DAEMON("/usr/bin/ruby3.1\0/usr/local/bin/securedgram\0-u\0nobody\0start\0"));
    assert_true(IS_DAEMON("ruby\0-Ilib\0exe/securedgram\0-d\0start\0"));
    assert_true(IS_DAEMON("ruby2.7\0securedgram\0restart\0"));
}

static void test_other_processes(void **state)
{
    (void)state;
    assert_false(IS_DAEMON("sleep\0300\0"));
    assert_false(IS_DAEMON("/sbin/init\0"));
    assert_false(IS_DAEMON("ruby\0/usr/local/bin/other-daemon\0start\0"));
    assert_false(IS_DAEMON("ruby\0/usr/local/bin/securedgram.rb\0"));
    assert_false(IS_DAEMON("python3\0/usr/local/bin/securedgram\0start\0")); /* not the original */
    assert_false(IS_DAEMON("rubyish\0securedgram\0"));
    assert_false(IS_DAEMON("/usr/bin/securedgram-old\0start\0"));
    assert_false(IS_DAEMON("vi\0securedgram.c\0"));
    assert_false(daemon_cmdline_is_daemon("", 0)); /* a zombie, a kernel thread */
}

/* A command line rewritten without NULs (one title string) is read as argv[0] only. */
static void test_rewritten_title(void **state)
{
    (void)state;
    static const char title[] = "ruby /usr/local/bin/securedgram start";
    assert_false(daemon_cmdline_is_daemon(title, sizeof title - 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ours),
        cmocka_unit_test(test_the_ruby_original),
        cmocka_unit_test(test_other_processes),
        cmocka_unit_test(test_rewritten_title),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
