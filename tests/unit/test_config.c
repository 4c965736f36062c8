/*
 * Unit tests for config.[ch] and strict.[ch]: .env parsing (and the
 * configurations the original accepted: lines without '=', two settings on a
 * line, a byte-order mark, with warnings that never show a value), unknown
 * names, precedence at start and on HUP, defaults, validation (one clear line
 * naming the variable), path resolution, the reload diff, and strict number
 * parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf/config.h"
#include "util/strict.h"

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
        [CFG_PEERS] = "SECUREDGRAM_PEERS",
        [CFG_NAME] = "SECUREDGRAM_NAME",
        [CFG_MASTER_SECRET_FILE] = "SECUREDGRAM_MASTER_SECRET_FILE",
        [CFG_GIVE_UP_AFTER] = "SECUREDGRAM_GIVE_UP_AFTER",
        [CFG_RETRY_POLICY] = "SECUREDGRAM_RETRY_POLICY",
        [CFG_RETRY_MIN] = "SECUREDGRAM_RETRY_MIN",
        [CFG_RETRY_MAX] = "SECUREDGRAM_RETRY_MAX",
        [CFG_MAX_MESSAGE] = "SECUREDGRAM_MAX_MESSAGE",
        [CFG_MTU] = "SECUREDGRAM_MTU",
        [CFG_REASSEMBLY_MEMORY] = "SECUREDGRAM_REASSEMBLY_MEMORY",
        [CFG_CONTROL] = "SECUREDGRAM_CONTROL",
        [CFG_METRICS] = "SECUREDGRAM_METRICS",
        [CFG_LOG_FORMAT] = "SECUREDGRAM_LOG_FORMAT",
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
    const char *t4 = "SECUREDGRAM_PORT=1\n=value\n";
    assert_dotenv_error(t4, strlen(t4), "line 2");
    const char *t7 = "SECUREDGRAM_PORT=1\n  \t= value\n";
    assert_dotenv_error(t7, strlen(t7), "line 2: expected KEY=VALUE (no name before '=')");
    /* a UTF-16 file (Windows "Unicode") says so, instead of "a NUL byte" */
    const char t8[] = "\xff\xfeS\0=\0";
    assert_dotenv_error(t8, sizeof t8 - 1, "UTF-16");
    const char t9[] = "\xfe\xff\0S\0=";
    assert_dotenv_error(t9, sizeof t9 - 1, "UTF-16");
    /* a NUL byte in a value */
    const char t5[] = "SECUREDGRAM_PORT=1\nSECUREDGRAM_USER=ab\0cd\n";
    assert_dotenv_error(t5, sizeof t5 - 1, "line 2");
    const char t6[] = "SECUREDGRAM_\0PORT=1\n";
    assert_dotenv_error(t6, sizeof t6 - 1, "line 1");
    /* only len bytes are read: the same text cut before its bad line parses */
    struct config_raw raw = {{0}};
    char err[256];
    size_t cut = strlen("SECUREDGRAM_PORT=1\n");
    assert_int_equal(config_dotenv_parse(t4, cut, &raw, err, sizeof err), 0);
    assert_string_equal(raw.v[CFG_PORT], "1");
    config_raw_clear(&raw);
    assert_int_equal(config_dotenv_parse("", 0, &raw, err, sizeof err), 0);
    for (int k = 0; k < CFG_COUNT; k++)
        assert_null(raw.v[k]);
}

/* ---- .env: what the original accepted (issue 9) ---- */

/* The warnings of one parse. */
struct caught {
    char line[24][512];
    int n;
};

static void catch_warning(void *ctx, const char *line)
{
    struct caught *c = ctx;
    assert_null(strchr(line, '\n')); /* one line each */
    if (c->n < 24)
        snprintf(c->line[c->n++], sizeof c->line[0], "%s", line);
}

/* Parses text, which must succeed; fills c with its warnings. */
static void parse_warn(const char *text, struct config_raw *raw, struct caught *c)
{
    char err[256] = "";
    memset(c, 0, sizeof *c);
    if (config_dotenv_parse_warn(text, strlen(text), raw, catch_warning, c, err, sizeof err) != 0)
        fail_msg("refused: %s (text: %s)", err, text);
}

/* No 8 characters in a row of secret appear in any warning. */
static void assert_no_secret(const struct caught *c, const char *secret)
{
    for (int i = 0; i < c->n; i++)
        for (size_t at = 0; at + 8 <= strlen(secret); at++) {
            char piece[9];
            memcpy(piece, secret + at, 8);
            piece[8] = '\0';
            if (strstr(c->line[i], piece) != NULL)
                fail_msg("warning shows the secret (%s): %s", piece, c->line[i]);
        }
}

/* A line without '=' is ignored with a warning naming it, as the original skipped it. */
static void test_dotenv_line_without_equals(void **state)
{
    (void)state;
    struct config_raw raw = {{0}};
    struct caught c;
    parse_warn("SECUREDGRAM_PORT=1\n"
               "# fine\n"
               "THIS LINE HAS NO EQUALS\n"
               "SECUREDGRAM_USER=x\n"
               "SECUREDGRAM_SECRET " SECRET "\n"
               "SECUREDGRAM_SECRET\t" SECRET2 "\n"
               "SECUREDGRAM_SECRET" SECRET2 "\n"
               "SECUREDGRAM_SECRET:" SECRET "\n"
               "  " SECRET2 "  \n"
               "ffeeddcc\n"
               "export SECUREDGRAM_WINDOW\n"
               "SECUREDGRAM_DB\n",
               &raw, &c);
    assert_string_equal(raw.v[CFG_PORT], "1"); /* the lines around them count */
    assert_string_equal(raw.v[CFG_USER], "x");
    assert_null(raw.v[CFG_SECRET]);
    assert_null(raw.v[CFG_WINDOW]);
    assert_null(raw.v[CFG_DB]);
    assert_int_equal(c.n, 9);
    const char *want[] = {
        "line 3: \"THIS ...\" has no '='; ignored (a setting is KEY=VALUE)",
        "line 5: \"SECUREDGRAM_SECRET ...\" has no '='",
        "line 6: \"SECUREDGRAM_SECRET ...\" has no '='",
        "line 7: \"SECUREDGRAM_SECRET ...\" has no '='", /* cut before the pasted key */
        "line 8: \"SECUREDGRAM_SECRET ...\" has no '='",
        "line 9: \"...\" has no '='", /* a key alone on a line */
        "line 10: \"...\" has no '='",
        "line 11: \"SECUREDGRAM_WINDOW\" has no '='",
        "line 12: \"SECUREDGRAM_DB\" has no '='",
    };
    int found[sizeof want / sizeof want[0]] = {0};
    for (int i = 0; i < c.n; i++)
        for (size_t j = 0; j < sizeof want / sizeof want[0]; j++)
            if (strncmp(c.line[i], want[j], strlen(want[j])) == 0)
                found[j] = 1;
    for (size_t j = 0; j < sizeof want / sizeof want[0]; j++)
        if (!found[j])
            fail_msg("no warning '%s'", want[j]);
    assert_no_secret(&c, SECRET);
    assert_no_secret(&c, SECRET2);
    config_raw_clear(&raw);
    /* without a sink: the same result, silently */
    char err[256];
    assert_int_equal(parse("SECUREDGRAM_PORT\nSECUREDGRAM_USER=y\n", &raw, err, sizeof err), 0);
    assert_string_equal(raw.v[CFG_USER], "y");
    config_raw_clear(&raw);
}

/* An unknown SECUREDGRAM_* name gets a warning naming it; every setting of ours is known. */
static void test_dotenv_unknown_names(void **state)
{
    (void)state;
    struct config_raw raw = {{0}};
    struct caught c;
    parse_warn("SECUREDGRAM_WINDOWS=3\n"
               "securedgram_port=5\n"
               "export SECUREDGRAM_SECRETFILE=/etc/key\n"
               "SECUREDGRAM_FROBNICATE=1\n"
               "SECUREDGRAM_=1\n"
               "OTHER_VARIABLE=1\n"
               "PATH=/nowhere\n"
               "A_VARIABLE_OF_ANOTHER_PROGRAM_WITH_A_NAME_LONGER_THAN_SIXTY_FOUR_CHARACTERS=1\n"
               "SECUREDGRAM_A_NAME_OF_OURS_THAT_IS_FAR_TOO_LONG_TO_BE_ANY_SETTING_AT_ALL=1\n"
               "SECUREDGRAM_SECRET " SECRET "=1\n",
               &raw, &c);
    for (int k = 0; k < CFG_COUNT; k++)
        assert_null(raw.v[k]);
    const char *want[] = {
        "line 1: SECUREDGRAM_WINDOWS is not a securedgram setting; ignored (did you mean "
        "SECUREDGRAM_WINDOW?)",
        "line 2: securedgram_port is not a securedgram setting; ignored (did you mean "
        "SECUREDGRAM_PORT?)",
        "line 3: SECUREDGRAM_SECRETFILE is not a securedgram setting; ignored (did you mean "
        "SECUREDGRAM_SECRET_FILE?)",
        "line 4: SECUREDGRAM_FROBNICATE is not a securedgram setting; ignored",
        "line 5: SECUREDGRAM_ is not a securedgram setting; ignored",
        "line 9: SECUREDGRAM_A_NAME_OF_OURS_THAT_IS_FAR_TOO_LONG_ ... is not a securedgram "
        "setting; ignored",
        "line 10: SECUREDGRAM_SECRET ... is not a securedgram setting; ignored",
    };
    assert_int_equal(c.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < c.n; i++)
        assert_string_equal(c.line[i], want[i]);
    assert_no_secret(&c, SECRET);
    config_raw_clear(&raw);

    /* every name in the table, the new ones too, is known: no warning */
    for (int k = 0; k < CFG_COUNT; k++) {
        char line[128];
        snprintf(line, sizeof line, "%s=\n", config_key_name((enum config_key)k));
        parse_warn(line, &raw, &c);
        if (c.n != 0)
            fail_msg("%s: %s", line, c.line[0]);
        config_raw_clear(&raw);
    }

    /* the same check for a name from the environment (NAME=VALUE, up to the '=') */
    char msg[256];
    const char *env = "SECUREDGRAM_RETRY_INTERVALS=5";
    assert_int_equal(config_unknown_name(env, strcspn(env, "="), msg, sizeof msg), 1);
    assert_string_equal(msg, "SECUREDGRAM_RETRY_INTERVALS is not a securedgram setting; ignored "
                             "(did you mean SECUREDGRAM_RETRY_INTERVAL?)");
    env = "SECUREDGRAM_RATE_LIMIT=5";
    assert_int_equal(config_unknown_name(env, strcspn(env, "="), msg, sizeof msg), 0);
    env = "HOME=/root";
    assert_int_equal(config_unknown_name(env, strcspn(env, "="), msg, sizeof msg), 0);
    env = "SECUREDGRAM";
    assert_int_equal(config_unknown_name(env, strlen(env), msg, sizeof msg), 0);
    /* a short buffer is cut, not overrun */
    char small[10];
    env = "SECUREDGRAM_XYZ";
    assert_int_equal(config_unknown_name(env, strlen(env), small, sizeof small), 1);
    assert_int_equal(strlen(small), sizeof small - 1);
}

/*
 * Two settings on one line: the original gives the first key all of the rest
 * of the line ("1 B=2") and reads a number setting's leading number, so the
 * second setting is lost. A number takes its digits (a comment after it is
 * fine); a text value stays whole; both with a warning, never showing a value.
 */
static void test_dotenv_two_on_a_line(void **state)
{
    (void)state;
    struct config_raw raw = {{0}};
    struct caught c;
    parse_warn("SECUREDGRAM_WINDOW=30 SECUREDGRAM_MAX_RETRIES=5\n"
               "SECUREDGRAM_PORT=61773 # the default\n"
               "SECUREDGRAM_RETRY_INTERVAL=\"7\"\t#seconds\n"
               "SECUREDGRAM_RATE_LIMIT=5/10 # per second\n"
               "SECUREDGRAM_DB=/srv/sg.db SECUREDGRAM_USER=alice\n"
               "SECUREDGRAM_LOG=syslog # or a file\n"
               "SECUREDGRAM_ADDRESS=\"127.0.0.1 # quoted\"\n"
               "SECUREDGRAM_SECRET=" SECRET " SECUREDGRAM_PIDFILE=x.pid\n",
               &raw, &c);
    assert_string_equal(raw.v[CFG_WINDOW], "30");
    assert_null(raw.v[CFG_MAX_RETRIES]); /* not applied, as by the original */
    assert_string_equal(raw.v[CFG_PORT], "61773");
    assert_string_equal(raw.v[CFG_RETRY_INTERVAL], "7");
    assert_string_equal(raw.v[CFG_RATE_LIMIT], "5/10");
    assert_string_equal(raw.v[CFG_DB], "/srv/sg.db SECUREDGRAM_USER=alice");
    assert_null(raw.v[CFG_USER]);
    assert_string_equal(raw.v[CFG_LOG], "syslog # or a file");
    assert_string_equal(raw.v[CFG_ADDRESS], "127.0.0.1 # quoted"); /* quoted: as it is */
    assert_string_equal(raw.v[CFG_SECRET], SECRET " SECUREDGRAM_PIDFILE=x.pid");
    assert_null(raw.v[CFG_PIDFILE]);
    const char *want[] = {
        "line 1: SECUREDGRAM_WINDOW takes the number before the space; the rest of the line "
        "(SECUREDGRAM_MAX_RETRIES=...) is ignored, as by the original: put each setting on a "
        "line of its own",
        "line 5: SECUREDGRAM_DB is set to all of the rest of the line, which holds what looks "
        "like a second setting (SECUREDGRAM_USER=...), as by the original: put each setting on a "
        "line of its own",
        "line 6: SECUREDGRAM_LOG is set to all of the rest of the line, the '#' and what follows "
        "included, as by the original: .env has no comments after a value",
        "line 8: SECUREDGRAM_SECRET is set to all of the rest of the line, which holds what looks "
        "like a second setting (SECUREDGRAM_PIDFILE=...), as by the original: put each setting "
        "on a line of its own",
    };
    assert_int_equal(c.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < c.n; i++)
        assert_string_equal(c.line[i], want[i]);
    assert_no_secret(&c, SECRET);
    config_raw_clear(&raw);

    /* not a tail: kept whole, no warning (and refused later if it is not a number) */
    parse_warn("SECUREDGRAM_WINDOW=10 20\n"
               "SECUREDGRAM_PORT=5#x\n"
               "SECUREDGRAM_USER=a b\n"
               "SECUREDGRAM_DB=a =b\n"
               "SECUREDGRAM_LOG=/var/log/a=b\n",
               &raw, &c);
    assert_int_equal(c.n, 0);
    assert_string_equal(raw.v[CFG_WINDOW], "10 20");
    assert_string_equal(raw.v[CFG_PORT], "5#x");
    assert_string_equal(raw.v[CFG_USER], "a b");
    assert_string_equal(raw.v[CFG_DB], "a =b");
    assert_string_equal(raw.v[CFG_LOG], "/var/log/a=b");
    config_raw_clear(&raw);

    /* the values taken resolve: the line of two settings starts the daemon */
    parse_warn("SECUREDGRAM_SECRET=" SECRET "\n"
               "SECUREDGRAM_WINDOW=30 SECUREDGRAM_MAX_RETRIES=5\n"
               "SECUREDGRAM_PORT=4000 # here\n",
               &raw, &c);
    struct config cfg;
    char err[256] = "";
    if (config_resolve(NULL, NULL, &raw, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err) != 0)
        fail_msg("refused: %s", err);
    assert_int_equal(cfg.window, 30);
    assert_int_equal(cfg.max_retries, 10); /* the default: the second setting is lost */
    assert_int_equal(cfg.port, 4000);
    config_clear(&cfg);
    config_raw_clear(&raw);
}

/* A UTF-8 byte-order mark at the start is skipped (the original lost the first line's setting). */
static void test_dotenv_bom(void **state)
{
    (void)state;
    struct config_raw raw = {{0}};
    struct caught c;
    parse_warn("\xef\xbb\xbfSECUREDGRAM_PORT=1234\nSECUREDGRAM_USER=bob\n", &raw, &c);
    assert_int_equal(c.n, 0);
    assert_string_equal(raw.v[CFG_PORT], "1234");
    assert_string_equal(raw.v[CFG_USER], "bob");
    config_raw_clear(&raw);
    parse_warn("\xef\xbb\xbf# a comment first\n\xef\xbb\xbf", &raw, &c); /* and a stray one */
    for (int k = 0; k < CFG_COUNT; k++)
        assert_null(raw.v[k]);
    config_raw_clear(&raw);
    /* only at the very start: a BOM anywhere else is part of the line (not our name) */
    parse_warn("SECUREDGRAM_USER=bob\n\xef\xbb\xbfSECUREDGRAM_PORT=1234\n", &raw, &c);
    assert_null(raw.v[CFG_PORT]);
    config_raw_clear(&raw);
    char err[256];
    assert_int_equal(config_dotenv_parse("\xef\xbb\xbf", 3, &raw, err, sizeof err), 0);
    assert_int_equal(config_dotenv_parse("\xef\xbb", 2, &raw, err, sizeof err), 0);
    config_raw_clear(&raw);
}

/*
 * A file of many bad lines: the first CONFIG_MAX_WARNINGS warnings, then one
 * line with the count of the rest (which cost nothing more: a big file on HUP
 * does not hold up the daemon).
 */
static void test_dotenv_many_warnings(void **state)
{
    (void)state;
    size_t n = 3000, len = 0;
    char *text = malloc(n * 80);
    assert_non_null(text);
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(text + len, "%s\n",
                               i % 2 ? "SECUREDGRAM_PORT" : "SECUREDGRAM_A_VERY_LONG_TYPO_NAME=1");
    struct config_raw raw = {{0}};
    struct caught c = {0};
    char err[256];
    assert_int_equal(config_dotenv_parse_warn(text, len, &raw, catch_warning, &c, err, sizeof err),
                     0);
    assert_int_equal(c.n, CONFIG_MAX_WARNINGS + 1);
    assert_non_null(strstr(c.line[0], "line 1: SECUREDGRAM_A_VERY_LONG_TYPO_NAME is not"));
    assert_non_null(strstr(c.line[CONFIG_MAX_WARNINGS - 1], "line 20: \"SECUREDGRAM_PORT\""));
    assert_string_equal(c.line[CONFIG_MAX_WARNINGS], "(2980 more warnings not shown)");
    free(text);
    config_raw_clear(&raw);
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

/*
 * Per-peer keys: with a peers file the shared secret is optional; the name is
 * checked by the peer-name rule; the paths are made absolute; the name is
 * restart-only.
 */
static void test_peers_settings(void **state)
{
    (void)state;
    struct config_raw env = {{0}};
    struct config cfg, other;
    char err[256] = "";
    assert_int_equal(
        config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "SECUREDGRAM_PEERS"));
    set(&env, CFG_PEERS, "peers.conf");
    set(&env, CFG_NAME, "berlin-1");
    set(&env, CFG_MASTER_SECRET_FILE, "/etc/sg/master");
    assert_int_equal(
        config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err), 0);
    assert_null(cfg.secret);
    assert_string_equal(cfg.peers_file, CWD "/peers.conf");
    assert_string_equal(cfg.name, "berlin-1");
    assert_string_equal(cfg.master_secret_file, "/etc/sg/master");
    assert_int_equal(cfg.peers.n, 0); /* the file is settings' to read */
    set(&env, CFG_NAME, "paris");
    assert_int_equal(
        config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, &other, err, sizeof err), 0);
    char changed[128];
    assert_int_equal(config_restart_only_changes(&cfg, &other, changed, sizeof changed), 1);
    assert_string_equal(changed, "SECUREDGRAM_NAME");
    config_clear(&other);
    config_clear(&cfg);
    const char *bad[] = {"-x", ".x", "a b", "", "x/y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        set(&env, CFG_NAME, bad[i]);
        int rc = config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err);
        if (bad[i][0] == '\0') { /* empty: the same as none */
            assert_int_equal(rc, 0);
            assert_null(cfg.name);
            config_clear(&cfg);
            continue;
        }
        assert_int_equal(rc, -1);
        assert_non_null(strstr(err, "SECUREDGRAM_NAME must be"));
    }
    config_raw_clear(&env);
}

/* SECUREDGRAM_GIVE_UP_AFTER: seconds, or with s, m, h, d; 0 (the default) is off. */
static void test_give_up_after(void **state)
{
    (void)state;
    const struct {
        const char *text;
        long secs; /* -1: refused */
    } cases[] = {{"0", 0},       {"90", 90},  {"90s", 90}, {"30m", 1800},    {"24h", 86400},
                 {"7d", 604800}, {"", 0},     {"h", -1},   {"1.5h", -1},     {"-1", -1},
                 {"24 h", -1},   {"10w", -1}, {"1e3", -1}, {"99999999d", -1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config_raw env = {{0}};
        struct config cfg;
        char err[256] = "";
        set(&env, CFG_SECRET, SECRET);
        set(&env, CFG_GIVE_UP_AFTER, cases[i].text);
        int rc = config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err);
        if (cases[i].secs < 0) {
            if (rc != -1)
                fail_msg("'%s' accepted", cases[i].text);
            assert_non_null(strstr(err, "SECUREDGRAM_GIVE_UP_AFTER must be a duration"));
        } else {
            if (rc != 0)
                fail_msg("'%s' refused: %s", cases[i].text, err);
            assert_int_equal(cfg.give_up_after, cases[i].secs);
            config_clear(&cfg);
        }
        config_raw_clear(&env);
    }
}

/*
 * The settings of large messages and the adaptive timer: units, bounds, and
 * what two values refuse together. Each case: key, text, the value it gives
 * (-1: refused with the key's own "must be" line).
 */
static void test_parts_and_retry_settings(void **state)
{
    (void)state;
    const struct {
        enum config_key key;
        const char *text;
        long value;
    } cases[] = {
        {CFG_MAX_MESSAGE, "1M", 1 << 20},
        {CFG_MAX_MESSAGE, "16M", 16 << 20},
        {CFG_MAX_MESSAGE, "16MiB", 16 << 20},
        {CFG_MAX_MESSAGE, "2000", 2000},
        {CFG_MAX_MESSAGE, "512K", 512 << 10},
        {CFG_MAX_MESSAGE, "17M", -1},
        {CFG_MAX_MESSAGE, "0", -1},
        {CFG_MAX_MESSAGE, "1m", -1},
        {CFG_MAX_MESSAGE, "M", -1},
        {CFG_MAX_MESSAGE, "1.5M", -1},
        {CFG_MTU, "576", 576},
        {CFG_MTU, "65535", 65535},
        {CFG_MTU, "575", -1},
        {CFG_MTU, "65536", -1},
        {CFG_RETRY_MIN, "100ms", 100},
        {CFG_RETRY_MIN, "2s", 2000},
        {CFG_RETRY_MIN, "250", 250},
        {CFG_RETRY_MIN, "0ms", -1},
        {CFG_RETRY_MIN, "2h", -1},
        {CFG_RETRY_MAX, "1m", 60000},
        {CFG_REASSEMBLY_MEMORY, "64M", 64 << 20},
        {CFG_REASSEMBLY_MEMORY, "1G", 1l << 30},
        {CFG_REASSEMBLY_MEMORY, "512K", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config_raw env = {{0}};
        struct config cfg;
        char err[256] = "", want[80];
        set(&env, CFG_SECRET, SECRET);
        set(&env, cases[i].key, cases[i].text);
        int rc = config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err);
        if (cases[i].value < 0) {
            if (rc != -1)
                fail_msg("%s='%s' accepted", config_key_name(cases[i].key), cases[i].text);
            snprintf(want, sizeof want, "%s must be", config_key_name(cases[i].key));
            assert_non_null(strstr(err, want));
            config_raw_clear(&env);
            continue;
        }
        if (rc != 0)
            fail_msg("%s='%s' refused: %s", config_key_name(cases[i].key), cases[i].text, err);
        long got = cases[i].key == CFG_MAX_MESSAGE ? (long)cfg.max_message
                   : cases[i].key == CFG_MTU       ? (long)cfg.mtu
                   : cases[i].key == CFG_RETRY_MIN ? (long)cfg.retry_min_ms
                   : cases[i].key == CFG_RETRY_MAX ? (long)cfg.retry_max_ms
                                                   : (long)cfg.reassembly_memory;
        assert_int_equal(got, cases[i].value);
        config_clear(&cfg);
        config_raw_clear(&env);
    }
    /* policies; and the pairs that only make sense together */
    const struct {
        enum config_key k1;
        const char *v1;
        enum config_key k2;
        const char *v2;
        const char *error; /* NULL: accepted */
    } pairs[] = {
        {CFG_RETRY_POLICY, "fixed", CFG_MTU, "1280", NULL},
        {CFG_RETRY_POLICY, "Fixed", CFG_MTU, "1280", "must be auto, fixed or adaptive"},
        {CFG_RETRY_MIN, "2s", CFG_RETRY_MAX, "1s", "SECUREDGRAM_RETRY_MIN (2000 ms) is over"},
        {CFG_MAX_MESSAGE, "16M", CFG_REASSEMBLY_MEMORY, "63M", "at least 4 times"},
        {CFG_MAX_MESSAGE, "16M", CFG_REASSEMBLY_MEMORY, "64M", NULL},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        struct config_raw env = {{0}};
        struct config cfg;
        char err[256] = "";
        set(&env, CFG_SECRET, SECRET);
        set(&env, pairs[i].k1, pairs[i].v1);
        set(&env, pairs[i].k2, pairs[i].v2);
        int rc = config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err);
        if (pairs[i].error == NULL) {
            assert_int_equal(rc, 0);
            config_clear(&cfg);
        } else {
            assert_int_equal(rc, -1);
            if (strstr(err, pairs[i].error) == NULL)
                fail_msg("case %zu: '%s'", i, err);
        }
        config_raw_clear(&env);
    }
}

/* What operators see: the control socket (beside the pid file unless set), /metrics, the log's
 * format. */
static void test_operator_settings(void **state)
{
    (void)state;
    const struct {
        enum config_key key;
        const char *text;
        const char *control, *metrics; /* what cfg then holds (NULL: none) */
        int log_json;
        const char *error; /* NULL: accepted */
    } cases[] = {
        {CFG_PIDFILE, "run/sg.pid", CWD "/run/sg.sock", NULL, 0, NULL},
        {CFG_PIDFILE, "/run/securedgram", "/run/securedgram.sock", NULL, 0, NULL},
        /* a pid file too deep for a socket beside it: none (the daemon says so) */
        {CFG_PIDFILE,
         "/"
         "a123456789a123456789a123456789a123456789a123456789a123456789"
         "a123456789a123456789a123456789a123456789a123456789.pid",
         NULL, NULL, 0, NULL},
        {CFG_CONTROL, "/run/sg/ctl", "/run/sg/ctl", NULL, 0, NULL},
        {CFG_CONTROL, "ctl", CWD "/ctl", NULL, 0, NULL},
        {CFG_CONTROL, "none", NULL, NULL, 0, NULL},
        {CFG_CONTROL,
         "/"
         "a123456789a123456789a123456789a123456789a123456789a123456789"
         "a123456789a123456789a123456789a123456789a123456789",
         NULL, NULL, 0, "SECUREDGRAM_CONTROL must be a path of at most 107"},
        {CFG_METRICS, "127.0.0.1:9477", CWD "/securedgram.sock", "127.0.0.1:9477", 0, NULL},
        {CFG_METRICS, "[::1]:9477", CWD "/securedgram.sock", "[::1]:9477", 0, NULL},
        {CFG_METRICS, "localhost:1", CWD "/securedgram.sock", "localhost:1", 0, NULL},
        {CFG_METRICS, "9477", NULL, NULL, 0, "SECUREDGRAM_METRICS must be HOST:PORT"},
        {CFG_METRICS, ":9477", NULL, NULL, 0, "SECUREDGRAM_METRICS must be HOST:PORT"},
        {CFG_METRICS, "::1:9477", NULL, NULL, 0, "SECUREDGRAM_METRICS must be HOST:PORT"},
        {CFG_METRICS, "[]:9477", NULL, NULL, 0, "SECUREDGRAM_METRICS must be HOST:PORT"},
        {CFG_METRICS, "h:0", NULL, NULL, 0, "SECUREDGRAM_METRICS must be HOST:PORT"},
        {CFG_METRICS, "h:65536", NULL, NULL, 0, "SECUREDGRAM_METRICS must be HOST:PORT"},
        {CFG_LOG_FORMAT, "json", CWD "/securedgram.sock", NULL, 1, NULL},
        {CFG_LOG_FORMAT, "text", CWD "/securedgram.sock", NULL, 0, NULL},
        {CFG_LOG_FORMAT, "JSON", NULL, NULL, 0, "SECUREDGRAM_LOG_FORMAT must be text or json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config_raw env = {{0}};
        struct config cfg;
        char err[256] = "";
        set(&env, CFG_SECRET, SECRET);
        set(&env, cases[i].key, cases[i].text);
        int rc = config_resolve(NULL, &env, NULL, CONFIG_AT_START, CWD, 1, &cfg, err, sizeof err);
        if (cases[i].error != NULL) {
            if (rc != -1 || strstr(err, cases[i].error) == NULL)
                fail_msg("case %zu: rc %d, '%s'", i, rc, err);
        } else {
            if (rc != 0)
                fail_msg("case %zu refused: %s", i, err);
            if (cases[i].control == NULL)
                assert_null(cfg.control);
            else
                assert_string_equal(cfg.control, cases[i].control);
            if (cases[i].metrics == NULL)
                assert_null(cfg.metrics);
            else
                assert_string_equal(cfg.metrics, cases[i].metrics);
            assert_int_equal(cfg.log_json, cases[i].log_json);
            config_clear(&cfg);
        }
        config_raw_clear(&env);
    }
}

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
    assert_int_equal(cfg.retry_policy, RETRY_AUTO);
    assert_int_equal(cfg.retry_min_ms, 100);
    assert_int_equal(cfg.retry_max_ms, 60000);
    assert_int_equal(cfg.max_message, 1 << 20);
    assert_int_equal(cfg.mtu, 1280);
    assert_int_equal(cfg.reassembly_memory, 64 << 20);
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
    const char *bad[] = {"-1", "1.5", "x", "", " 1", "1 ", "+1", "1x", "99999999999999999999999"};
    char over[32], max[32];
    snprintf(max, sizeof max, "%lu", CONFIG_MAX_COUNT);
    snprintf(over, sizeof over, "%lu", CONFIG_MAX_COUNT + 1);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            assert_refused(keys[k], bad[i]);
        assert_refused(keys[k], over);
        if (keys[k] != CFG_MAX_RETRIES)
            assert_refused(keys[k], "0");
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

/*
 * SECUREDGRAM_MAX_RETRIES=0 (or -r 0), which the original accepted: send once,
 * never retransmit. The window and the retry interval still start at 1.
 */
static void test_max_retries_zero(void **state)
{
    (void)state;
    struct config cfg;
    assert_accepted(CFG_MAX_RETRIES, "0", &cfg);
    assert_int_equal(cfg.max_retries, 0);
    config_clear(&cfg);
    assert_accepted(CFG_MAX_RETRIES, "00", &cfg);
    assert_int_equal(cfg.max_retries, 0);
    config_clear(&cfg);
    /* the same from a flag, at start and on reload */
    struct config_raw flags = {{0}}, dotenv = {{0}};
    set(&flags, CFG_MAX_RETRIES, "0");
    set(&dotenv, CFG_SECRET, SECRET);
    set(&dotenv, CFG_MAX_RETRIES, "4");
    char err[512] = "";
    for (int mode = 0; mode < 2; mode++) {
        if (config_resolve(&flags, NULL, &dotenv, mode ? CONFIG_AT_RELOAD : CONFIG_AT_START, CWD, 1,
                           &cfg, err, sizeof err) != 0)
            fail_msg("refused: %s", err);
        assert_int_equal(cfg.max_retries, 0);
        config_clear(&cfg);
    }
    config_raw_clear(&flags);
    config_raw_clear(&dotenv);
    /* a refusal says where the range starts */
    assert_int_equal(resolve_one(CFG_MAX_RETRIES, "-1", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "SECUREDGRAM_MAX_RETRIES must be a whole number from 0 to"));
    assert_int_equal(resolve_one(CFG_WINDOW, "0", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "SECUREDGRAM_WINDOW must be a whole number from 1 to"));
    assert_int_equal(resolve_one(CFG_RETRY_INTERVAL, "0", &cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "SECUREDGRAM_RETRY_INTERVAL must be a whole number from 1 to"));
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
    /* SECUREDGRAM_DB: a URI as it is; sqlite:PATH and sqlite://PATH are the path behind them */
    static const char *const dbs[][2] = {
        {"postgresql://sg:pw@db.example/q?sslmode=require",
         "postgresql://sg:pw@db.example/q?sslmode=require"},
        {"postgres://sg@/q?host=/run/pg", "postgres://sg@/q?host=/run/pg"},
        {"sqlite:rel.db", "/home/op/rel.db"},
        {"sqlite://rel.db", "/home/op/rel.db"},
        {"sqlite:///srv/q.db", "/srv/q.db"},
        {"sqlite:/srv/q.db", "/srv/q.db"}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        set(&env, CFG_DB, dbs[i][0]);
        assert_int_equal(
            config_resolve(NULL, &env, NULL, CONFIG_AT_START, "/home/op", 1, &cfg, err, sizeof err),
            0);
        assert_string_equal(cfg.db, dbs[i][1]);
        char *tool = config_db_location(dbs[i][0], "/home/op");
        assert_non_null(tool);
        assert_string_equal(tool, dbs[i][1]); /* the tools find the same database */
        free(tool);
        config_clear(&cfg);
    }
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
    /* (the control socket, beside the pid file, moves with it) */
    assert_int_equal(config_restart_only_changes(&ca, &cb, changed, sizeof changed), 7);
    const char *restart[] = {"SECUREDGRAM_USER",    "SECUREDGRAM_LOG",  "SECUREDGRAM_PIDFILE",
                             "SECUREDGRAM_ADDRESS", "SECUREDGRAM_PORT", "SECUREDGRAM_DB",
                             "SECUREDGRAM_CONTROL"};
    for (size_t i = 0; i < 7; i++)
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
    assert_int_equal(config_restart_only_changes(&ca, &cb, small, sizeof small), 7);
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

/* Row ids are 64-bit on every platform: INT64_MAX parses, one more does not. */
static void test_strict_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(strict_u64("9223372036854775807", 1, INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(strict_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);
    v = 7;
    assert_int_equal(strict_u64("9223372036854775808", 1, INT64_MAX, &v), -1);
    assert_int_equal(strict_u64("18446744073709551616", 0, UINT64_MAX, &v), -1);
    assert_int_equal(strict_u64("0", 1, INT64_MAX, &v), -1);
    assert_int_equal(strict_u64("-1", 0, INT64_MAX, &v), -1);
    assert_int_equal(strict_u64("1 ", 0, INT64_MAX, &v), -1);
    assert_true(v == 7);
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
        cmocka_unit_test(test_dotenv_line_without_equals),
        cmocka_unit_test(test_dotenv_unknown_names),
        cmocka_unit_test(test_dotenv_two_on_a_line),
        cmocka_unit_test(test_dotenv_bom),
        cmocka_unit_test(test_dotenv_many_warnings),
        cmocka_unit_test(test_raw_from_env),
        cmocka_unit_test(test_operator_settings),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_peers_settings),
        cmocka_unit_test(test_give_up_after),
        cmocka_unit_test(test_precedence_at_start),
        cmocka_unit_test(test_precedence_at_reload),
        cmocka_unit_test(test_secret_missing),
        cmocka_unit_test(test_secret_invalid),
        cmocka_unit_test(test_port_values),
        cmocka_unit_test(test_error_one_line_with_control_chars),
        cmocka_unit_test(test_count_values),
        cmocka_unit_test(test_max_retries_zero),
        cmocka_unit_test(test_text_values),
        cmocka_unit_test(test_paths_absolute),
        cmocka_unit_test(test_restart_only_changes),
        cmocka_unit_test(test_config_clear_zeroed),
        cmocka_unit_test(test_parts_and_retry_settings),
        cmocka_unit_test(test_strict_ulong),
        cmocka_unit_test(test_strict_u64),
        cmocka_unit_test(test_strict_double),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
