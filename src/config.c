/*
 * config: resolution and validation of the daemon's settings. Each value has
 * one row in the table below: its variable, its default, and how it is checked.
 */
#include "config.h"

#include "envelope.h"
#include "strict.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum check { CHECK_TEXT, CHECK_PATH, CHECK_LOG, CHECK_PORT, CHECK_COUNT, CHECK_SECRET, CHECK_RATE };

static const struct {
    const char *name;
    const char *def;
    enum check check;
} keys[CFG_COUNT] = {
    [CFG_USER] = {"SECUREDGRAM_USER", "nobody", CHECK_TEXT},
    [CFG_LOG] = {"SECUREDGRAM_LOG", "syslog", CHECK_LOG},
    [CFG_PIDFILE] = {"SECUREDGRAM_PIDFILE", "securedgram.pid", CHECK_PATH},
    [CFG_ADDRESS] = {"SECUREDGRAM_ADDRESS", "0.0.0.0", CHECK_TEXT},
    [CFG_PORT] = {"SECUREDGRAM_PORT", "61773", CHECK_PORT},
    [CFG_SECRET] = {"SECUREDGRAM_SECRET", NULL, CHECK_SECRET},
    [CFG_WINDOW] = {"SECUREDGRAM_WINDOW", "10", CHECK_COUNT},
    [CFG_MAX_RETRIES] = {"SECUREDGRAM_MAX_RETRIES", "10", CHECK_COUNT},
    [CFG_RETRY_INTERVAL] = {"SECUREDGRAM_RETRY_INTERVAL", "5", CHECK_COUNT},
    [CFG_DB] = {"SECUREDGRAM_DB", "securedgram.db", CHECK_PATH},
    [CFG_SECRET_FILE] = {"SECUREDGRAM_SECRET_FILE", NULL, CHECK_PATH},
    [CFG_RATE_LIMIT] = {"SECUREDGRAM_RATE_LIMIT", "0", CHECK_RATE},
};

const char *config_key_name(enum config_key key)
{
    return keys[key].name;
}

const char *config_key_default(enum config_key key)
{
    return keys[key].def;
}

int config_key_by_name(const char *name)
{
    for (int k = 0; k < CFG_COUNT; k++)
        if (strcmp(keys[k].name, name) == 0)
            return k;
    return -1;
}

/*
 * Overwrites a string before it is freed: any value may be the secret (or a
 * mistyped one), and malloc hands a freed block to the next caller as it is.
 */
static void wipe_free(char *p)
{
    if (p == NULL)
        return;
    envelope_wipe(p, strlen(p));
    free(p);
}

int config_raw_set(struct config_raw *raw, enum config_key key, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return -1;
    wipe_free(raw->v[key]); /* a value given twice: the first may be an old secret */
    raw->v[key] = copy;
    return 0;
}

void config_raw_clear(struct config_raw *raw)
{
    for (int k = 0; k < CFG_COUNT; k++) {
        wipe_free(raw->v[k]);
        raw->v[k] = NULL;
    }
}

void config_raw_from_env(struct config_raw *out, const char *(*get)(const char *name))
{
    for (int k = 0; k < CFG_COUNT; k++) {
        const char *v = get(keys[k].name);
        if (v != NULL && config_raw_set(out, (enum config_key)k, v) != 0)
            return;
    }
}

/* Trims [*b, *e) of surrounding whitespace. */
static void trim(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b))
        (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* Parses one non-blank, non-comment line; returns 0 or -1 (err set). */
static int dotenv_line(const char *b, const char *e, struct config_raw *out, char *err,
                       size_t errlen)
{
    if ((size_t)(e - b) > 7 && strncmp(b, "export", 6) == 0 && isspace((unsigned char)b[6]))
        b += 7;
    const char *eq = memchr(b, '=', (size_t)(e - b));
    if (eq == NULL) {
        snprintf(err, errlen, "expected KEY=VALUE");
        return -1;
    }
    const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
    trim(&kb, &ke);
    trim(&vb, &ve);
    if (ve - vb >= 2 && (*vb == '"' || *vb == '\'') && ve[-1] == *vb) {
        vb++;
        ve--;
    }
    char name[64];
    if (ke - kb == 0 || (size_t)(ke - kb) >= sizeof name) {
        snprintf(err, errlen, "expected KEY=VALUE");
        return -1;
    }
    memcpy(name, kb, (size_t)(ke - kb));
    name[ke - kb] = '\0';
    int key = config_key_by_name(name);
    if (key < 0)
        return 0; /* not ours */
    char *value = strndup(vb, (size_t)(ve - vb));
    if (value == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    wipe_free(out->v[key]); /* an earlier line for the same key, e.g. the previous secret */
    out->v[key] = value;
    return 0;
}

int config_dotenv_parse(const char *text, size_t len, struct config_raw *out, char *err,
                        size_t errlen)
{
    const char *p = text, *end = text + len;
    for (int line = 1; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        const char *b = p, *e = le;
        trim(&b, &e);
        if (b < e && *b != '#') {
            char why[128];
            if (memchr(b, '\0', (size_t)(e - b)) != NULL) {
                snprintf(err, errlen, "line %d: contains a NUL byte", line);
                return -1;
            }
            if (dotenv_line(b, e, out, why, sizeof why) != 0) {
                snprintf(err, errlen, "line %d: %s", line, why);
                return -1;
            }
        }
        p = nl != NULL ? nl + 1 : end;
    }
    return 0;
}

static int is_hex(const char *s)
{
    for (; *s != '\0'; s++)
        if (!isxdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* Makes path absolute against cwd; returns a malloc'd string or NULL. */
static char *absolute(const char *cwd, const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *out = malloc(n);
    if (out != NULL)
        snprintf(out, n, "%s/%s", cwd, path);
    return out;
}

/* Copies up to 40 characters of v for an error message, control characters as '?'. */
static const char *shown(const char *v, char out[48])
{
    size_t i = 0;
    for (; i < 40 && v[i] != '\0'; i++)
        out[i] = (unsigned char)v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
    out[i] = '\0';
    return out;
}

/* Checks one value; returns 0 or -1 with the reason in err. */
static int check_value(enum config_key k, const char *v, unsigned long *num, unsigned long *num2,
                       char *err, size_t errlen)
{
    const char *name = keys[k].name;
    char show[48];
    switch (keys[k].check) {
    case CHECK_PORT:
        if (strict_ulong(v, 1, 65535, num) != 0) {
            snprintf(err, errlen, "%s must be a port number from 1 to 65535 (got '%s')", name,
                     shown(v, show));
            return -1;
        }
        return 0;
    case CHECK_COUNT:
        if (strict_ulong(v, 1, CONFIG_MAX_COUNT, num) != 0) {
            snprintf(err, errlen, "%s must be a whole number from 1 to %lu (got '%s')", name,
                     CONFIG_MAX_COUNT, shown(v, show));
            return -1;
        }
        return 0;
    case CHECK_RATE: {
        /* RATE or RATE/BURST; the burst defaults to the rate */
        char buf[48];
        const char *slash = strchr(v, '/');
        unsigned long rate = 0, burst = 0;
        size_t rl = slash != NULL ? (size_t)(slash - v) : strlen(v);
        if (rl < sizeof buf) {
            memcpy(buf, v, rl);
            buf[rl] = '\0';
        }
        if (rl >= sizeof buf || strict_ulong(buf, 0, CONFIG_MAX_COUNT, &rate) != 0 ||
            (slash != NULL && strict_ulong(slash + 1, 1, CONFIG_MAX_COUNT, &burst) != 0)) {
            snprintf(err, errlen,
                     "%s must be RATE or RATE/BURST, whole numbers (0 = no limit; got '%s')", name,
                     shown(v, show));
            return -1;
        }
        *num = rate;
        *num2 = slash != NULL ? burst : rate;
        return 0;
    }
    case CHECK_SECRET:
        if (strlen(v) != 64 || !is_hex(v)) {
            snprintf(err, errlen,
                     "%s must be exactly 64 hex digits (got %zu characters%s); "
                     "make one with: securedgram keygen",
                     name, strlen(v), is_hex(v) ? "" : ", not all hex");
            return -1;
        }
        return 0;
    default:
        if (v[0] == '\0') {
            snprintf(err, errlen, "%s must not be empty", name);
            return -1;
        }
        return 0;
    }
}

/* The text for key k by precedence, or its default (may be NULL). */
static const char *pick(enum config_key k, const struct config_raw *first,
                        const struct config_raw *second, const struct config_raw *third)
{
    const struct config_raw *order[3] = {first, second, third};
    for (int i = 0; i < 3; i++)
        if (order[i] != NULL && order[i]->v[k] != NULL)
            return order[i]->v[k];
    return keys[k].def;
}

static int store_text(struct config *cfg, enum config_key k, const char *v, const char *cwd)
{
    int path = keys[k].check == CHECK_PATH ||
               (keys[k].check == CHECK_LOG && strcmp(v, "syslog") != 0 && strcmp(v, "stdout") != 0);
    char *copy = path ? absolute(cwd, v) : strdup(v);
    if (copy == NULL)
        return -1;
    char **slot = k == CFG_USER          ? &cfg->user
                  : k == CFG_LOG         ? &cfg->log
                  : k == CFG_PIDFILE     ? &cfg->pidfile
                  : k == CFG_ADDRESS     ? &cfg->address
                  : k == CFG_DB          ? &cfg->db
                  : k == CFG_SECRET_FILE ? &cfg->secret_file
                                         : &cfg->secret;
    *slot = copy;
    return 0;
}

int config_resolve(const struct config_raw *flags, const struct config_raw *env,
                   const struct config_raw *dotenv, enum config_mode mode, const char *cwd,
                   int need_secret, struct config *out, char *err, size_t errlen)
{
    struct config cfg = {0};
    const struct config_raw *second = mode == CONFIG_AT_START ? env : dotenv;
    const struct config_raw *third = mode == CONFIG_AT_START ? dotenv : env;
    for (int i = 0; i < CFG_COUNT; i++) {
        enum config_key k = (enum config_key)i;
        const char *v = pick(k, flags, second, third);
        unsigned long num = 0, num2 = 0;
        /* An empty optional value is the same as none (SECUREDGRAM_SECRET= in the example file). */
        int optional = k == CFG_SECRET || k == CFG_SECRET_FILE || k == CFG_RATE_LIMIT;
        if (v != NULL && v[0] == '\0' && optional)
            v = keys[k].def;
        if (v == NULL) {
            if (k == CFG_SECRET && need_secret) {
                snprintf(err, errlen,
                         "SECUREDGRAM_SECRET is not set (64 hex digits, in .env or the "
                         "environment; make one with: securedgram keygen)");
                goto fail;
            }
            continue;
        }
        if (check_value(k, v, &num, &num2, err, errlen) != 0)
            goto fail;
        if (k == CFG_PORT)
            cfg.port = (unsigned)num;
        else if (k == CFG_WINDOW)
            cfg.window = (unsigned)num;
        else if (k == CFG_MAX_RETRIES)
            cfg.max_retries = (unsigned)num;
        else if (k == CFG_RETRY_INTERVAL)
            cfg.retry_interval = (unsigned)num;
        else if (k == CFG_RATE_LIMIT) {
            cfg.rate_limit = (unsigned)num;
            cfg.rate_burst = (unsigned)num2;
        } else if (store_text(&cfg, k, v, cwd) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    *out = cfg;
    return 0;
fail:
    config_clear(&cfg);
    return -1;
}

void config_clear(struct config *cfg)
{
    wipe_free(cfg->user);
    wipe_free(cfg->log);
    wipe_free(cfg->pidfile);
    wipe_free(cfg->address);
    wipe_free(cfg->db);
    wipe_free(cfg->secret_file);
    wipe_free(cfg->secret);
    memset(cfg, 0, sizeof *cfg);
}

static int differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

int config_restart_only_changes(const struct config *running, const struct config *next,
                                char *changed, size_t changed_len)
{
    int n = 0;
    const struct {
        enum config_key key;
        int diff;
    } rows[] = {
        {CFG_USER, differs(running->user, next->user)},
        {CFG_LOG, differs(running->log, next->log)},
        {CFG_PIDFILE, differs(running->pidfile, next->pidfile)},
        {CFG_ADDRESS, differs(running->address, next->address)},
        {CFG_PORT, running->port != next->port},
        {CFG_DB, differs(running->db, next->db)},
    };
    if (changed_len > 0)
        changed[0] = '\0';
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (!rows[i].diff)
            continue;
        size_t used = strlen(changed);
        snprintf(changed + used, changed_len - used, "%s%s", n > 0 ? ", " : "",
                 keys[rows[i].key].name);
        n++;
    }
    return n;
}
