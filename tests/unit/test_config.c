/*
 * Unit tests for config.[ch] and strict.[ch]: .env parsing, precedence at
 * start and on HUP, defaults, validation (one clear line naming the
 * variable), path resolution, the reload diff, and strict number parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"
#include "strict.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define SECRET2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define CWD "/srv/sg"

/* ---- helpers ---- */

static int parse(const char *text, struct config_raw *raw, char *err, size_t errlen)
{
    return config_dotenv_parse(text, strlen(text), raw, err, errlen);
}

static void set(struct config_raw *raw, enum config_key k, const char *v)
{
    assert_int_equal(config_raw_set(raw, k, v), 0);
}

/* Resolves at start with only env holding the secret plus one extra value. */
static int resolve_one(enum config_key k, const char *v, struct config *cfg, char *err,
                       size_t errlen)
{
    struct config_raw env = {{0}};
    set(&env, CFG_SECRET, SECRET);
    set(&env, k, v);
    int rc = config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, cfg, err, errlen);
    config_raw_clear(&env);
    return rc;
}

/* The value must be refused, with one line that names the variable, and out untouched. */
static void assert_refused(enum config_key k, const char *v)
{
    struct config cfg;
    memset(&cfg, 0x3c, sizeof cfg);
    struct config same;
    memset(&same, 0x3c, sizeof same);
    char err[512] = "";
    if (resolve_one(k, v, &cfg, err, sizeof err) != -1)
        fail_msg("%s='%s' was accepted", config_key_name(k), v);
    assert_memory_equal(&cfg, &same, sizeof cfg);
    if (strstr(err, config_key_name(k)) == NULL)
        fail_msg("%s='%s': error does not name the variable: %s", config_key_name(k), v, err);
    assert_null(strchr(err, '\n'));
}

static void assert_accepted(enum config_key k, const char *v, struct config *cfg)
{
    char err[512] = "";
    if (resolve_one(k, v, cfg, err, sizeof err) != 0)
        fail_msg("%s='%s' refused: %s", config_key_name(k), v, err);
}

/* ---- names ---- */

static void test_key_names(void **state)
{
    (void)state;
    const char *names[CFG_COUNT] = {
        [CFG_USER] = "SECUREDGRAM_USER",
        [CFG_LOG] = "SECUREDGRAM_LOG",
        [CFG_PIDFILE] = "SECUREDGRAM_PIDFILE",
        [CFG_ADDRESS] = "SECUREDGRAM_ADDRESS",
        [CFG_PORT] = "SECUREDGRAM_PORT",
        [CFG_SECRET] = "SECUREDGRAM_SECRET",
        [CFG_WINDOW] = "SECUREDGRAM_WINDOW",
        [CFG_MAX_RETRIES] = "SECUREDGRAM_MAX_RETRIES",
        [CFG_RETRY_INTERVAL] = "SECUREDGRAM_RETRY_INTERVAL",
        [CFG_DB] = "SECUREDGRAM_DB",
        [CFG_SECRET_FILE] = "SECUREDGRAM_SECRET_FILE",
        [CFG_RATE_LIMIT] = "SECUREDGRAM_RATE_LIMIT",
    };
    for (int k = 0; k < CFG_COUNT; k++) {
        assert_string_equal(config_key_name((enum config_key)k), names[k]);
        assert_int_equal(config_key_by_name(names[k]), k);
    }
    assert_int_equal(config_key_by_name("SECUREDGRAM_port"), -1);
    assert_int_equal(config_key_by_name("SECUREDGRAM_"), -1);
    assert_int_equal(config_key_by_name("PORT"), -1);
    assert_int_equal(config_key_by_name(""), -1);
}

/* ---- .env ---- */

static void test_dotenv_basic(void **state)
{
    (void)state;
    const char *text = "# a comment\n"
                       "\n"
                       "   \t\n"
                       "   # an indented comment SECUREDGRAM_USER=nope\n"
                       "SECUREDGRAM_PORT=1234\n"
                       "  SECUREDGRAM_WINDOW \t=\t 20  \n"
                       "SECUREDGRAM_SECRET=" SECRET "\n"
                       "OTHER_VARIABLE=whatever\n"
                       "PATH=/nowhere\n"
                       "SECUREDGRAM_DB=a=b.db\n"
                       "SECUREDGRAM_ADDRESS=127.0.0.1"; /* no final newline */
    struct config_raw raw = {{0}};
    char err[256] = "";
    assert_int_equal(parse(text, &raw, err, sizeof err), 0);
    assert_string_equal(raw.v[CFG_PORT], "1234");
    assert_string_equal(raw.v[CFG_WINDOW], "20");
    assert_string_equal(raw.v[CFG_SECRET], SECRET);
    assert_string_equal(raw.v[CFG_DB], "a=b.db");
    assert_string_equal(raw.v[CFG_ADDRESS], "127.0.0.1");
    assert_null(raw.v[CFG_USER]);
    assert_null(raw.v[CFG_LOG]);
    assert_null(raw.v[CFG_PIDFILE]);
    assert_null(raw.v[CFG_MAX_RETRIES]);
    assert_null(raw.v[CFG_RETRY_INTERVAL]);
    config_raw_clear(&raw);
    for (int k = 0; k < CFG_COUNT; k++)
        assert_null(raw.v[k]);
}

static void test_dotenv_quotes(void **state)
{
    (void)state;
    struct config_raw raw = {{0}};
    char err[256];
    const struct {
        const char *line;
        const char *want;
    } cases[] = {
        {"SECUREDGRAM_USER=\"alice\"", "alice"},
        {"SECUREDGRAM_USER='alice'", "alice"},
        {"SECUREDGRAM_USER=  \"  spaced  \"  ", "  spaced  "},
        {"SECUREDGRAM_USER=\"\"", ""},
        {"SECUREDGRAM_USER=''", ""},
        {"SECUREDGRAM_USER=\"\"bob\"\"", "\"bob\""}, /* one pair only */
        {"SECUREDGRAM_USER='\"bob\"'", "\"bob\""},
        {"SECUREDGRAM_USER=\"bob'", "\"bob'"}, /* mismatched: kept */
        {"SECUREDGRAM_USER='bob\"", "'bob\""},
        {"SECUREDGRAM_USER=\"bob", "\"bob"},
        {"SECUREDGRAM_USER=bob\"", "bob\""},
        {"SECUREDGRAM_USER=\"", "\""},
        {"SECUREDGRAM_USER='", "'"},
        {"SECUREDGRAM_USER=a\"b\"", "a\"b\""},
        {"SECUREDGRAM_USER=", ""},
        {"SECUREDGRAM_USER=  ", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (parse(cases[i].line, &raw, err, sizeof err) != 0)
            fail_msg("%s: %s", cases[i].line, err);
        assert_non_null(raw.v[CFG_USER]);
        if (strcmp(raw.v[CFG_USER], cases[i].want) != 0)
            fail_msg("%s: got [%s], expected [%s]", cases[i].line, raw.v[CFG_USER], cases[i].want);
        config_raw_clear(&raw);
    }
}

static void test_dotenv_export_and_later_wins(void **state)
{
    (void)state;
    const char *text = "export SECUREDGRAM_PORT=1111\n"
                       "export\tSECUREDGRAM_USER=alice\n"
                       "export   SECUREDGRAM_LOG = stdout\n"
                       "SECUREDGRAM_PORT=2222\n"
                       "SECUREDGRAM_PORT=3333\n"
                       "SECUREDGRAM_WINDOW=5\r\n"
                       "SECUREDGRAM_MAX_RETRIES=\"7\"\r\n"
                       "SECUREDGRAM_USER=bob\n";
    struct config_raw raw = {{0}};
    char err[256];
    assert_int_equal(parse(text, &raw, err, sizeof err), 0);
    assert_string_equal(raw.v[CFG_PORT], "3333");
    assert_string_equal(raw.v[CFG_USER], "bob");
    assert_string_equal(raw.v[CFG_LOG], "stdout");
    assert_string_equal(raw.v[CFG_WINDOW], "5"); /* CRLF files work */
    assert_string_equal(raw.v[CFG_MAX_RETRIES], "7");
    config_raw_clear(&raw);
    /* a variable whose name merely starts with "export" is not ours */
    assert_int_equal(
        parse("exportSECUREDGRAM_PORT=1\nexportXSECUREDGRAM_PORT=2\n", &raw, err, sizeof err), 0);
    assert_null(raw.v[CFG_PORT]);
    config_raw_clear(&raw);
}

static void assert_dotenv_error(const char *text, size_t len, const char *needle)
{
    struct config_raw raw = {{0}};
    char err[256] = "";
    if (config_dotenv_parse(text, len, &raw, err, sizeof err) != -1)
        fail_msg("parsed: %s", text);
    if (strstr(err, needle) == NULL)
        fail_msg("error '%s' does not say '%s'", err, needle);
    assert_null(strchr(err, '\n'));
    config_raw_clear(&raw);
}

static void test_dotenv_errors(void **state)
{
    (void)state;
    const char *t1 = "SECUREDGRAM_PORT=1\n# fine\nTHIS LINE HAS NO EQUALS\nSECUREDGRAM_USER=x\n";
    assert_dotenv_error(t1, strlen(t1), "line 3");
    const char *t2 = "SECUREDGRAM_PORT\n";
    assert_dotenv_error(t2, strlen(t2), "line 1");
    const char *t3 = "\n\n\n\n\n\n\n\n\n\nexport SECUREDGRAM_PORT\n";
    assert_dotenv_error(t3, strlen(t3), "line 11");
    const char *t4 = "SECUREDGRAM_PORT=1\n=value\n";
    assert_dotenv_error(t4, strlen(t4), "line 2");
    /* a NUL byte in a value */
    const char t5[] = "SECUREDGRAM_PORT=1\nSECUREDGRAM_USER=ab\0cd\n";
    assert_dotenv_error(t5, sizeof t5 - 1, "line 2");
    const char t6[] = "SECUREDGRAM_\0PORT=1\n";
    assert_dotenv_error(t6, sizeof t6 - 1, "line 1");
    /* only len bytes are read: the same text cut before its bad line parses */
    struct config_raw raw = {{0}};
    char err[256];
    size_t cut = strlen("SECUREDGRAM_PORT=1\n# fine\n");
    assert_int_equal(config_dotenv_parse(t1, cut, &raw, err, sizeof err), 0);
    assert_string_equal(raw.v[CFG_PORT], "1");
    config_raw_clear(&raw);
    assert_int_equal(config_dotenv_parse("", 0, &raw, err, sizeof err), 0);
    for (int k = 0; k < CFG_COUNT; k++)
        assert_null(raw.v[k]);
}

/* ---- environment ---- */

static const char *fake_getenv(const char *name)
{
    if (strcmp(name, "SECUREDGRAM_PORT") == 0)
        return "4444";
    if (strcmp(name, "SECUREDGRAM_USER") == 0)
        return "";
    return NULL;
}

static void test_raw_from_env(void **state)
{
    (void)state;
    struct config_raw raw = {{0}};
    config_raw_from_env(&raw, fake_getenv);
    assert_string_equal(raw.v[CFG_PORT], "4444");
    assert_string_equal(raw.v[CFG_USER], "");
    assert_null(raw.v[CFG_SECRET]);
    assert_null(raw.v[CFG_DB]);
    /* config_raw_set copies and replaces */
    char value[] = "5555";
    set(&raw, CFG_PORT, value);
    value[0] = '9';
    assert_string_equal(raw.v[CFG_PORT], "5555");
    config_raw_clear(&raw);
}

/* ---- resolve ---- */

static void test_defaults(void **state)
{
    (void)state;
    struct config_raw env = {{0}};
    set(&env, CFG_SECRET, SECRET);
    struct config cfg;
    char err[256] = "";
    assert_int_equal(
        config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.port, 61773);
    assert_int_equal(cfg.window, 10);
    assert_int_equal(cfg.max_retries, 10);
    assert_int_equal(cfg.retry_interval, 5);
    assert_string_equal(cfg.user, "nobody");
    assert_string_equal(cfg.log, "syslog");
    assert_string_equal(cfg.address, "0.0.0.0");
    assert_string_equal(cfg.pidfile, CWD "/securedgram.pid");
    assert_string_equal(cfg.db, CWD "/securedgram.db");
    assert_string_equal(cfg.secret, SECRET);
    /* the config owns copies: clearing the inputs leaves it intact */
    config_raw_clear(&env);
    assert_string_equal(cfg.secret, SECRET);
    config_clear(&cfg);
    assert_null(cfg.secret);
    assert_null(cfg.user);
    /* the same defaults at reload */
    set(&env, CFG_SECRET, SECRET);
    assert_int_equal(
        config_resolve(NULL, NULL, &env, CONFIG_AT_RELOAD, "/var/lib/sg", 1, &cfg, err, sizeof err),
        0);
    assert_int_equal(cfg.port, 61773);
    assert_int_equal(cfg.window, 10);
    assert_string_equal(cfg.db, "/var/lib/sg/securedgram.db");
    assert_string_equal(cfg.pidfile, "/var/lib/sg/securedgram.pid");
    config_clear(&cfg);
    config_raw_clear(&env);
}

/* Sets every key of raw to a value tagged with `tag` (valid for each key). */
static void fill(struct config_raw *raw, int tag)
{
    char buf[128];
    snprintf(buf, sizeof buf, "user%d", tag);
    set(raw, CFG_USER, buf);
    snprintf(buf, sizeof buf, "/var/log/sg%d.log", tag);
    set(raw, CFG_LOG, buf);
    snprintf(buf, sizeof buf, "/run/sg%d.pid", tag);
    set(raw, CFG_PIDFILE, buf);
    snprintf(buf, sizeof buf, "127.0.0.%d", tag);
    set(raw, CFG_ADDRESS, buf);
    snprintf(buf, sizeof buf, "%d", 1000 + tag);
    set(raw, CFG_PORT, buf);
    snprintf(buf, sizeof buf, "%.63s%d", SECRET, tag);
    set(raw, CFG_SECRET, buf);
    snprintf(buf, sizeof buf, "%d", 20 + tag);
    set(raw, CFG_WINDOW, buf);
    snprintf(buf, sizeof buf, "%d", 30 + tag);
    set(raw, CFG_MAX_RETRIES, buf);
    snprintf(buf, sizeof buf, "%d", 40 + tag);
    set(raw, CFG_RETRY_INTERVAL, buf);
    snprintf(buf, sizeof buf, "/data/sg%d.db", tag);
    set(raw, CFG_DB, buf);
}

/* Every field of cfg came from the raw tagged `tag`. */
static void assert_from(const struct config *cfg, int tag)
{
    char buf[128];
    snprintf(buf, sizeof buf, "user%d", tag);
    assert_string_equal(cfg->user, buf);
    snprintf(buf, sizeof buf, "/var/log/sg%d.log", tag);
    assert_string_equal(cfg->log, buf);
    snprintf(buf, sizeof buf, "/run/sg%d.pid", tag);
    assert_string_equal(cfg->pidfile, buf);
    snprintf(buf, sizeof buf, "127.0.0.%d", tag);
    assert_string_equal(cfg->address, buf);
    assert_int_equal(cfg->port, 1000 + tag);
    snprintf(buf, sizeof buf, "%.63s%d", SECRET, tag);
    assert_string_equal(cfg->secret, buf);
    assert_int_equal(cfg->window, 20 + tag);
    assert_int_equal(cfg->max_retries, 30 + tag);
    assert_int_equal(cfg->retry_interval, 40 + tag);
    snprintf(buf, sizeof buf, "/data/sg%d.db", tag);
    assert_string_equal(cfg->db, buf);
}

static void check_precedence(enum config_mode mode, const struct config_raw *flags,
                             const struct config_raw *env, const struct config_raw *dotenv,
                             int want_tag)
{
    struct config cfg;
    char err[256] = "";
    if (config_resolve(flags, env, dotenv, mode, CWD, 1, &cfg, err, sizeof err) != 0)
        fail_msg("resolve: %s", err);
    assert_from(&cfg, want_tag);
    config_clear(&cfg);
}

static void test_precedence_at_start(void **state)
{
    (void)state;
    struct config_raw flags = {{0}}, env = {{0}}, dotenv = {{0}};
    fill(&flags, 1);
    fill(&env, 2);
    fill(&dotenv, 3);
    check_precedence(CONFIG_AT_START, &flags, &env, &dotenv, 1); /* flag > env > .env */
    check_precedence(CONFIG_AT_START, NULL, &env, &dotenv, 2);   /* env > .env */
    check_precedence(CONFIG_AT_START, &flags, NULL, &dotenv, 1);
    check_precedence(CONFIG_AT_START, NULL, NULL, &dotenv, 3);
    check_precedence(CONFIG_AT_START, &flags, &env, NULL, 1);
    /* per key: a flag for one key only wins for that key */
    struct config_raw one = {{0}};
    set(&one, CFG_PORT, "9999");
    struct config cfg;
    char err[256];
    assert_int_equal(
        config_resolve(&one, &env, &dotenv, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.port, 9999);
    assert_int_equal(cfg.window, 22);
    config_clear(&cfg);
    /* a key set only in .env is used though env has others */
    config_raw_clear(&env);
    set(&env, CFG_SECRET, SECRET);
    assert_int_equal(
        config_resolve(NULL, &env, &dotenv, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.secret, SECRET);
    assert_int_equal(cfg.port, 1003);
    config_clear(&cfg);
    config_raw_clear(&one);
    config_raw_clear(&flags);
    config_raw_clear(&env);
    config_raw_clear(&dotenv);
}

static void test_precedence_at_reload(void **state)
{
    (void)state;
    struct config_raw flags = {{0}}, env = {{0}}, dotenv = {{0}};
    fill(&flags, 1);
    fill(&env, 2);
    fill(&dotenv, 3);
    check_precedence(CONFIG_AT_RELOAD, &flags, &env, &dotenv, 1); /* flag > .env > env */
    check_precedence(CONFIG_AT_RELOAD, NULL, &env, &dotenv, 3);   /* .env > env */
    check_precedence(CONFIG_AT_RELOAD, NULL, &env, NULL, 2);
    check_precedence(CONFIG_AT_RELOAD, &flags, &env, NULL, 1);
    config_raw_clear(&flags);
    config_raw_clear(&env);
    config_raw_clear(&dotenv);
}

static void test_secret_missing(void **state)
{
    (void)state;
    struct config cfg;
    memset(&cfg, 0x3c, sizeof cfg);
    struct config same;
    memset(&same, 0x3c, sizeof same);
    char err[512] = "";
    assert_int_equal(
        config_resolve(NULL, NULL, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "SECUREDGRAM_SECRET"));
    assert_null(strchr(err, '\n'));
    assert_memory_equal(&cfg, &same, sizeof cfg);
    /* an empty secret is a missing one, from any source */
    struct config_raw raw = {{0}};
    set(&raw, CFG_SECRET, "");
    err[0] = '\0';
    assert_int_equal(
        config_resolve(NULL, &raw, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "SECUREDGRAM_SECRET"));
    err[0] = '\0';
    assert_int_equal(
        config_resolve(NULL, NULL, &raw, CONFIG_AT_RELOAD, CWD, 1, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "SECUREDGRAM_SECRET"));
    /* not needed (the tools): fine, and no secret in the result */
    assert_int_equal(
        config_resolve(NULL, NULL, NULL, CONFIG_AT_START, CWD, 0, &cfg, err, sizeof err), 0);
    assert_null(cfg.secret);
    assert_int_equal(cfg.port, 61773);
    config_clear(&cfg);
    assert_int_equal(
        config_resolve(NULL, &raw, NULL, CONFIG_AT_START, CWD, 0, &cfg, err, sizeof err), 0);
    assert_null(cfg.secret);
    config_clear(&cfg);
    config_raw_clear(&raw);
}

static void test_secret_invalid(void **state)
{
    (void)state;
    char buf[80];
    snprintf(buf, sizeof buf, "%.63s", SECRET);
    assert_refused(CFG_SECRET, buf);
    snprintf(buf, sizeof buf, "%s0", SECRET);
    assert_refused(CFG_SECRET, buf);
    snprintf(buf, sizeof buf, "%.63sg", SECRET);
    assert_refused(CFG_SECRET, buf);
    snprintf(buf, sizeof buf, "x%.63s", SECRET);
    assert_refused(CFG_SECRET, buf);
    snprintf(buf, sizeof buf, "%.31s %.32s", SECRET, SECRET);
    assert_refused(CFG_SECRET, buf);
    assert_refused(CFG_SECRET, "0x00112233445566778899aabbccddeeff00112233445566778899aabbccddee");
    assert_refused(CFG_SECRET, "secret");
    /* the refusal never shows the (wrong, but maybe nearly right) secret */
    struct config cfg;
    char err[512] = "";
    snprintf(buf, sizeof buf, "%.63sZ", SECRET2);
    assert_int_equal(resolve_one(CFG_SECRET, buf, &cfg, err, sizeof err), -1);
    assert_null(strstr(err, "ffeeddccbbaa9988"));
    /* upper case hex is a valid secret */
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)(SECRET2[i] >= 'a' && SECRET2[i] <= 'f' ? SECRET2[i] - 32 : SECRET2[i]);
    assert_accepted(CFG_SECRET, upper, &cfg);
    config_clear(&cfg);
}

static void test_port_values(void **state)
{
    (void)state;
    const char *bad[] = {"0",
                         "65536",
                         "abc",
                         "+5",
                         " 5",
                         "5 ",
                         "-1",
                         "",
                         "1e3",
                         "0x50",
                         "99999999999999999999999",
                         "80.0",
                         "61773x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_refused(CFG_PORT, bad[i]);
    struct config cfg;
    assert_accepted(CFG_PORT, "1", &cfg);
    assert_int_equal(cfg.port, 1);
    config_clear(&cfg);
    assert_accepted(CFG_PORT, "65535", &cfg);
    assert_int_equal(cfg.port, 65535);
    config_clear(&cfg);
}

/*
 * A refused value is echoed into the error; a value with a newline (possible
 * from the environment or a flag) must still give one line, not two.
 */
static void test_error_one_line_with_control_chars(void **state)
{
    (void)state;
    assert_refused(CFG_PORT, "61773\n");
    assert_refused(CFG_WINDOW, "10\nFAKE LOG LINE");
    assert_refused(CFG_MAX_RETRIES, "\r\n5");
}

static void test_count_values(void **state)
{
    (void)state;
    const enum config_key keys[] = {CFG_WINDOW, CFG_MAX_RETRIES, CFG_RETRY_INTERVAL};
    const char *bad[] = {"0",  "-1", "1.5", "x",  "",
                         " 1", "1 ", "+1",  "1x", "99999999999999999999999"};
    char over[32], max[32];
    snprintf(max, sizeof max, "%lu", CONFIG_MAX_COUNT);
    snprintf(over, sizeof over, "%lu", CONFIG_MAX_COUNT + 1);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            assert_refused(keys[k], bad[i]);
        assert_refused(keys[k], over);
        struct config cfg;
        assert_accepted(keys[k], "1", &cfg);
        unsigned got = keys[k] == CFG_WINDOW        ? cfg.window
                       : keys[k] == CFG_MAX_RETRIES ? cfg.max_retries
                                                    : cfg.retry_interval;
        assert_int_equal(got, 1);
        config_clear(&cfg);
        assert_accepted(keys[k], max, &cfg);
        got = keys[k] == CFG_WINDOW        ? cfg.window
              : keys[k] == CFG_MAX_RETRIES ? cfg.max_retries
                                           : cfg.retry_interval;
        assert_int_equal(got, CONFIG_MAX_COUNT);
        config_clear(&cfg);
    }
}

static void test_text_values(void **state)
{
    (void)state;
    const enum config_key keys[] = {CFG_USER, CFG_LOG, CFG_PIDFILE, CFG_ADDRESS, CFG_DB};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        assert_refused(keys[k], "");
}

static void test_paths_absolute(void **state)
{
    (void)state;
    struct config_raw env = {{0}};
    set(&env, CFG_SECRET, SECRET);
    set(&env, CFG_PIDFILE, "run/sg.pid");
    set(&env, CFG_DB, "/var/lib/sg/sg.db");
    set(&env, CFG_LOG, "logs/sg.log");
    struct config cfg;
    char err[256];
    assert_int_equal(
        config_resolve(NULL, &env, NULL, CONFIG_AT_START, "/home/op", 1, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.pidfile, "/home/op/run/sg.pid");
    assert_string_equal(cfg.db, "/var/lib/sg/sg.db");
    assert_string_equal(cfg.log, "/home/op/logs/sg.log");
    config_clear(&cfg);

    const char *kept[] = {"syslog", "stdout"};
    for (size_t i = 0; i < 2; i++) {
        set(&env, CFG_LOG, kept[i]);
        assert_int_equal(
            config_resolve(NULL, &env, NULL, CONFIG_AT_START, "/home/op", 1, &cfg, err, sizeof err),
            0);
        assert_string_equal(cfg.log, kept[i]);
        config_clear(&cfg);
    }
    set(&env, CFG_LOG, "/var/log/securedgram.log");
    set(&env, CFG_DB, "sg.db");
    assert_int_equal(
        config_resolve(NULL, &env, NULL, CONFIG_AT_RELOAD, "/home/op", 1, &cfg, err, sizeof err),
        0);
    assert_string_equal(cfg.log, "/var/log/securedgram.log");
    assert_string_equal(cfg.db, "/home/op/sg.db");
    /* user and address are not paths */
    assert_string_equal(cfg.user, "nobody");
    assert_string_equal(cfg.address, "0.0.0.0");
    config_clear(&cfg);
    config_raw_clear(&env);
}

/* ---- reload diff ---- */

static void resolve_from(const struct config_raw *raw, struct config *cfg)
{
    char err[256] = "";
    if (config_resolve(NULL, raw, NULL, CONFIG_AT_START, CWD, 1, cfg, err, sizeof err) != 0)
        fail_msg("resolve: %s", err);
}

static void test_restart_only_changes(void **state)
{
    (void)state;
    struct config_raw a = {{0}}, b = {{0}};
    fill(&a, 1);
    fill(&b, 1);
    struct config ca, cb;
    char changed[512];
    resolve_from(&a, &ca);
    resolve_from(&b, &cb);
    memset(changed, '#', sizeof changed);
    assert_int_equal(config_restart_only_changes(&ca, &cb, changed, sizeof changed), 0);
    assert_string_equal(changed, "");
    config_clear(&cb);

    /* hot values differ: nothing to report */
    fill(&b, 1);
    set(&b, CFG_SECRET, SECRET2);
    set(&b, CFG_WINDOW, "99");
    set(&b, CFG_MAX_RETRIES, "98");
    set(&b, CFG_RETRY_INTERVAL, "97");
    resolve_from(&b, &cb);
    assert_int_equal(config_restart_only_changes(&ca, &cb, changed, sizeof changed), 0);
    assert_string_equal(changed, "");
    config_clear(&cb);

    /* one restart-only value */
    fill(&b, 1);
    set(&b, CFG_PORT, "2000");
    set(&b, CFG_WINDOW, "99");
    resolve_from(&b, &cb);
    assert_int_equal(config_restart_only_changes(&ca, &cb, changed, sizeof changed), 1);
    assert_string_equal(changed, "SECUREDGRAM_PORT");
    config_clear(&cb);

    /* every restart-only value, and no hot one */
    config_raw_clear(&b);
    fill(&b, 2);
    resolve_from(&b, &cb);
    assert_int_equal(config_restart_only_changes(&ca, &cb, changed, sizeof changed), 6);
    const char *restart[] = {"SECUREDGRAM_USER",    "SECUREDGRAM_LOG",  "SECUREDGRAM_PIDFILE",
                             "SECUREDGRAM_ADDRESS", "SECUREDGRAM_PORT", "SECUREDGRAM_DB"};
    for (size_t i = 0; i < 6; i++)
        if (strstr(changed, restart[i]) == NULL)
            fail_msg("%s missing from '%s'", restart[i], changed);
    const char *hot[] = {"SECUREDGRAM_SECRET", "SECUREDGRAM_WINDOW", "SECUREDGRAM_MAX_RETRIES",
                         "SECUREDGRAM_RETRY_INTERVAL"};
    for (size_t i = 0; i < 4; i++)
        if (strstr(changed, hot[i]) != NULL)
            fail_msg("%s listed in '%s'", hot[i], changed);
    /* a short buffer is truncated, not overrun, and the count is still right */
    char small[8];
    memset(small, '#', sizeof small);
    assert_int_equal(config_restart_only_changes(&ca, &cb, small, sizeof small), 6);
    assert_non_null(memchr(small, '\0', sizeof small));
    config_clear(&cb);
    config_clear(&ca);
    config_raw_clear(&a);
    config_raw_clear(&b);
}

static void test_config_clear_zeroed(void **state)
{
    (void)state;
    struct config cfg;
    memset(&cfg, 0, sizeof cfg);
    config_clear(&cfg);
    config_clear(&cfg);
    struct config zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&cfg, &zero, sizeof cfg);
    struct config_raw raw = {{0}};
    config_raw_clear(&raw);
    config_raw_clear(&raw);
}

/* ---- strict ---- */

static void test_strict_ulong(void **state)
{
    (void)state;
    unsigned long v = 12345;
    assert_int_equal(strict_ulong("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(strict_ulong("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(strict_ulong("007", 0, 10, &v), 0);
    assert_int_equal(v, 7);
    char buf[32];
    snprintf(buf, sizeof buf, "%lu", ULONG_MAX);
    assert_int_equal(strict_ulong(buf, 0, ULONG_MAX, &v), 0);
    assert_true(v == ULONG_MAX);

    const char *bad[] = {"",     "+1",  "-1",  " 1",  "1 ",  "1a", "a1",
                         "0x10", "1.0", "1e2", "\t1", "1\n", "٣"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 4242;
        if (strict_ulong(bad[i], 0, ULONG_MAX, &v) != -1)
            fail_msg("strict_ulong accepted '%s'", bad[i]);
        assert_int_equal(v, 4242);
    }
    v = 4242;
    assert_int_equal(strict_ulong(NULL, 0, 10, &v), -1);
    assert_int_equal(strict_ulong("11", 0, 10, &v), -1);
    assert_int_equal(strict_ulong("4", 5, 10, &v), -1);
    assert_int_equal(v, 4242);
    /* one past ULONG_MAX, and far past it */
    assert_int_equal(strict_ulong("18446744073709551616", 0, ULONG_MAX, &v), -1);
    assert_int_equal(strict_ulong("99999999999999999999999999999", 0, ULONG_MAX, &v), -1);
    assert_int_equal(v, 4242);
}

static void test_strict_double(void **state)
{
    (void)state;
    double d = 0;
    assert_int_equal(strict_double("1", 0, 10, &d), 0);
    assert_true(d == 1.0);
    assert_int_equal(strict_double("0.5", 0, 10, &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(strict_double(".25", 0, 10, &d), 0);
    assert_true(d == 0.25);
    assert_int_equal(strict_double("2.", 0, 10, &d), 0);
    assert_true(d == 2.0);
    assert_int_equal(strict_double("0", 0, 10, &d), 0);
    assert_true(d == 0.0);
    assert_int_equal(strict_double("10", 0, 10, &d), 0); /* bounds inclusive */
    assert_true(d == 10.0);
    assert_int_equal(strict_double("0.001", 0.001, 10, &d), 0);

    const char *bad[] = {"",    ".",   "-1",    "+1",    " 1",  "1 ",  "1e3",     "1E3",
                         "nan", "inf", "1.2.3", "0x1p3", "1,5", "..1", "infinity"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = 42.0;
        if (strict_double(bad[i], 0, 1e9, &d) != -1)
            fail_msg("strict_double accepted '%s'", bad[i]);
        assert_true(d == 42.0);
    }
    d = 42.0;
    assert_int_equal(strict_double(NULL, 0, 10, &d), -1);
    assert_int_equal(strict_double("10.5", 0, 10, &d), -1);
    assert_int_equal(strict_double("0.09", 0.1, 10, &d), -1);
    /* too large for a double */
    char big[400];
    big[0] = '1';
    memset(big + 1, '0', 330);
    big[331] = '\0';
    assert_int_equal(strict_double(big, 0, 1e308, &d), -1);
    assert_true(d == 42.0);
}

/* SECUREDGRAM_RATE_LIMIT: off by default; RATE or RATE/BURST; anything else refused. */
static void test_rate_limit(void **state)
{
    (void)state;
    struct config_raw flags = {0};
    struct config cfg;
    char err[256];
    assert_int_equal(
        config_resolve(&flags, NULL, NULL, CONFIG_AT_START, "/w", 0, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.rate_limit, 0);
    config_clear(&cfg);
    const struct {
        const char *v;
        unsigned rate, burst;
    } ok[] = {{"100", 100, 100}, {"5/20", 5, 20}, {"0", 0, 0}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(config_raw_set(&flags, CFG_RATE_LIMIT, ok[i].v), 0);
        assert_int_equal(
            config_resolve(&flags, NULL, NULL, CONFIG_AT_START, "/w", 0, &cfg, err, sizeof err), 0);
        assert_int_equal(cfg.rate_limit, ok[i].rate);
        assert_int_equal(cfg.rate_burst, ok[i].burst);
        config_clear(&cfg);
    }
    const char *bad[] = {"-1", "1.5", "5/", "/5", "5/0", "5/x", "x", "5/5/5", "99999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(config_raw_set(&flags, CFG_RATE_LIMIT, bad[i]), 0);
        assert_int_equal(
            config_resolve(&flags, NULL, NULL, CONFIG_AT_START, "/w", 0, &cfg, err, sizeof err),
            -1);
        assert_non_null(strstr(err, "SECUREDGRAM_RATE_LIMIT"));
    }
    config_raw_clear(&flags);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_names),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_dotenv_basic),
        cmocka_unit_test(test_dotenv_quotes),
        cmocka_unit_test(test_dotenv_export_and_later_wins),
        cmocka_unit_test(test_dotenv_errors),
        cmocka_unit_test(test_raw_from_env),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_precedence_at_start),
        cmocka_unit_test(test_precedence_at_reload),
        cmocka_unit_test(test_secret_missing),
        cmocka_unit_test(test_secret_invalid),
        cmocka_unit_test(test_port_values),
        cmocka_unit_test(test_error_one_line_with_control_chars),
        cmocka_unit_test(test_count_values),
        cmocka_unit_test(test_text_values),
        cmocka_unit_test(test_paths_absolute),
        cmocka_unit_test(test_restart_only_changes),
        cmocka_unit_test(test_config_clear_zeroed),
        cmocka_unit_test(test_strict_ulong),
        cmocka_unit_test(test_strict_double),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
