/*
 * config: resolution and validation of the daemon's settings. Each value has
 * one row in the table below: its variable, its default, and how it is checked.
 */
#include "conf/config.h"

#include "wire/envelope.h"
#include "util/hex.h"
#include "util/secret.h"
#include "util/strict.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum check { CHECK_TEXT, CHECK_PATH, CHECK_LOG, CHECK_PORT, CHECK_COUNT, CHECK_SECRET, CHECK_RATE };

/*
 * min: the smallest value of a CHECK_COUNT. SECUREDGRAM_MAX_RETRIES may be 0,
 * as in the original: each message is sent once and never retransmitted (it
 * becomes send_failed one retry interval later without an ACK), and an ACK
 * that cannot be sent is not tried again.
 */
static const struct {
    const char *name;
    const char *def;
    enum check check;
    unsigned long min;
} keys[CFG_COUNT] = {
    [CFG_USER] = {"SECUREDGRAM_USER", "nobody", CHECK_TEXT, 0},
    [CFG_LOG] = {"SECUREDGRAM_LOG", "syslog", CHECK_LOG, 0},
    [CFG_PIDFILE] = {"SECUREDGRAM_PIDFILE", "securedgram.pid", CHECK_PATH, 0},
    [CFG_ADDRESS] = {"SECUREDGRAM_ADDRESS", "0.0.0.0", CHECK_TEXT, 0},
    [CFG_PORT] = {"SECUREDGRAM_PORT", "61773", CHECK_PORT, 0},
    [CFG_SECRET] = {"SECUREDGRAM_SECRET", NULL, CHECK_SECRET, 0},
    [CFG_WINDOW] = {"SECUREDGRAM_WINDOW", "10", CHECK_COUNT, 1},
    [CFG_MAX_RETRIES] = {"SECUREDGRAM_MAX_RETRIES", "10", CHECK_COUNT, 0},
    [CFG_RETRY_INTERVAL] = {"SECUREDGRAM_RETRY_INTERVAL", "5", CHECK_COUNT, 1},
    [CFG_DB] = {"SECUREDGRAM_DB", "securedgram.db", CHECK_PATH, 0},
    [CFG_SECRET_FILE] = {"SECUREDGRAM_SECRET_FILE", NULL, CHECK_PATH, 0},
    [CFG_RATE_LIMIT] = {"SECUREDGRAM_RATE_LIMIT", "0", CHECK_RATE, 0},
};

const char *config_key_name(enum config_key key)
{
    return keys[key].name;
}

const char *config_key_default(enum config_key key)
{
    return keys[key].def;
}

/* The key named by the n bytes at name, or -1. */
static int key_by_span(const char *name, size_t n)
{
    for (int k = 0; k < CFG_COUNT; k++)
        if (strlen(keys[k].name) == n && memcmp(keys[k].name, name, n) == 0)
            return k;
    return -1;
}

int config_key_by_name(const char *name)
{
    return key_by_span(name, strlen(name));
}

int config_raw_set(struct config_raw *raw, enum config_key key, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return -1;
    /* Any value may be the secret (or a mistyped one): wiped, as malloc hands a freed block on. */
    secret_free_str(raw->v[key]); /* a value given twice: the first may be an old secret */
    raw->v[key] = copy;
    return 0;
}

void config_raw_clear(struct config_raw *raw)
{
    for (int k = 0; k < CFG_COUNT; k++) {
        secret_free_str(raw->v[k]);
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

/* Removes one pair of matching surrounding quotes from [*b, *e), if it has them. */
static void unquote(const char **b, const char **e)
{
    if (*e - *b >= 2 && (**b == '"' || **b == '\'') && (*e)[-1] == **b) {
        (*b)++;
        (*e)--;
    }
}

static int name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/*
 * For a warning: the name at the start of [b, e) (letters, digits and '_', at
 * most 48), then " ..." if anything follows. What follows may be a value, even
 * the secret ("SECUREDGRAM_SECRET 0011..."), and is never shown; the name is
 * cut before a run of 8 hex digits, so a key pasted onto it is not shown either.
 */
static const char *shown_name(const char *b, const char *e, char out[64])
{
    size_t n = 0, run = 0;
    while (b + n < e && n < 48 && name_char(b[n]))
        n++;
    for (size_t i = 0; i < n; i++) {
        run = isxdigit((unsigned char)b[i]) ? run + 1 : 0;
        if (run == 8) {
            n = i + 1 - run;
            break;
        }
    }
    memcpy(out, b, n);
    snprintf(out + n, 64 - n, "%s", b + n == e ? "" : n > 0 ? " ..." : "...");
    return out;
}

/* Case-insensitive edit distance of two names of at most 48 characters (else 99). */
static size_t distance(const char *a, size_t na, const char *b, size_t nb)
{
    size_t row[49];
    if (na > 48 || nb > 48)
        return 99;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best =
                diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

#define NAME_PREFIX "SECUREDGRAM_"
#define NAME_PREFIX_LEN (sizeof NAME_PREFIX - 1)

int config_unknown_name(const char *name, size_t len, char *msg, size_t msglen)
{
    if (len < NAME_PREFIX_LEN || strncasecmp(name, NAME_PREFIX, NAME_PREFIX_LEN) != 0 ||
        key_by_span(name, len) >= 0)
        return 0;
    /* the nearest setting, if it is near: a case slip, or one or two typos in a longer name */
    const char *near = NULL;
    size_t best = 3;
    for (int k = 0; k < CFG_COUNT; k++) {
        size_t kl = strlen(keys[k].name);
        if ((len > kl ? len - kl : kl - len) >= best)
            continue; /* the distance is at least the difference in length */
        size_t d = distance(name, len, keys[k].name, kl);
        if (d < best && (d == 0 || d < len - NAME_PREFIX_LEN)) {
            best = d;
            near = keys[k].name;
        }
    }
    char show[64];
    snprintf(msg, msglen, "%s is not a securedgram setting; ignored%s%s%s",
             shown_name(name, name + len, show), near != NULL ? " (did you mean " : "",
             near != NULL ? near : "", near != NULL ? "?)" : "");
    return 1;
}

/* Where warnings go, the line they are about, and how many there were. */
struct sink {
    void (*fn)(void *ctx, const char *line);
    void *ctx;
    int line;
    int count;
};

/* Counts one more warning; 1 if it is one too many to show (then it costs nothing more). */
static int too_many(struct sink *s)
{
    return s->count++ >= CONFIG_MAX_WARNINGS;
}

/* Formats and hands on one warning, counted by the caller (too_many). */
__attribute__((format(printf, 2, 3))) static void warnf(const struct sink *s, const char *fmt, ...)
{
    char text[400];
    int n = snprintf(text, sizeof text, "line %d: ", s->line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text + n, sizeof text - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->fn != NULL)
        s->fn(s->ctx, text);
}

/*
 * Where a tail starts in the value [b, e): after whitespace, a '#' (a comment)
 * or NAME= (a second setting, as in "SECUREDGRAM_PORT=1 SECUREDGRAM_WINDOW=2").
 * Returns it, or NULL.
 */
static const char *tail_of(const char *b, const char *e)
{
    for (const char *p = b + 1; p < e; p++) {
        if (!isspace((unsigned char)p[-1]) || isspace((unsigned char)*p))
            continue;
        if (*p == '#')
            return p;
        const char *q = p;
        if (isdigit((unsigned char)*q))
            continue;
        while (q < e && name_char(*q))
            q++;
        if (q > p && q < e && *q == '=')
            return p;
    }
    return NULL;
}

/*
 * A value with a tail (see tail_of): a number setting takes the part before it
 * (the original read the leading number); any other value stays whole, as in
 * the original. Warns unless it is a number with a comment, which is what was
 * meant.
 */
static void value_tail(enum config_key key, const char **vb, const char **ve, struct sink *s)
{
    const char *t = tail_of(*vb, *ve);
    if (t == NULL)
        return;
    enum check c = keys[key].check;
    char name[64], what[72] = "";
    if (*t != '#') {
        const char *q = t;
        while (q < *ve && name_char(*q))
            q++;
        snprintf(what, sizeof what, "%s=...", shown_name(t, q, name));
    }
    if (c == CHECK_PORT || c == CHECK_COUNT || c == CHECK_RATE) {
        const char *hb = *vb, *he = t;
        trim(&hb, &he);
        unquote(&hb, &he);
        *vb = hb;
        *ve = he;
        if (what[0] != '\0' && !too_many(s))
            warnf(s,
                  "%s takes the number before the space; the rest of the line (%s) is ignored, "
                  "as by the original: put each setting on a line of its own",
                  keys[key].name, what);
        return;
    }
    if (too_many(s))
        return;
    if (what[0] != '\0')
        warnf(s,
              "%s is set to all of the rest of the line, which holds what looks like a second "
              "setting (%s), as by the original: put each setting on a line of its own",
              keys[key].name, what);
    else
        warnf(s,
              "%s is set to all of the rest of the line, the '#' and what follows included, as "
              "by the original: .env has no comments after a value",
              keys[key].name);
}

/* Parses one non-blank, non-comment line; returns 0 or -1 (err set). */
static int dotenv_line(const char *b, const char *e, struct config_raw *out, struct sink *s,
                       char *err, size_t errlen)
{
    char show[64];
    if ((size_t)(e - b) > 7 && strncmp(b, "export", 6) == 0 && isspace((unsigned char)b[6]))
        b += 7;
    const char *eq = memchr(b, '=', (size_t)(e - b));
    if (eq == NULL) {
        /* the original skipped such a line */
        if (!too_many(s))
            warnf(s, "\"%s\" has no '='; ignored (a setting is KEY=VALUE)", shown_name(b, e, show));
        return 0;
    }
    const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
    trim(&kb, &ke);
    trim(&vb, &ve);
    if (ke == kb) {
        snprintf(err, errlen, "expected KEY=VALUE (no name before '=')");
        return -1;
    }
    int key = key_by_span(kb, (size_t)(ke - kb));
    if (key < 0) {
        char msg[256];
        size_t n = (size_t)(ke - kb);
        if (n >= NAME_PREFIX_LEN && strncasecmp(kb, NAME_PREFIX, NAME_PREFIX_LEN) == 0 &&
            !too_many(s) && config_unknown_name(kb, n, msg, sizeof msg))
            warnf(s, "%s", msg);
        return 0; /* not ours */
    }
    const char *was = vb;
    unquote(&vb, &ve);
    if (vb == was) /* a quoted value is taken as it is */
        value_tail((enum config_key)key, &vb, &ve, s);
    char *value = strndup(vb, (size_t)(ve - vb));
    if (value == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    secret_free_str(out->v[key]); /* an earlier line for the same key, e.g. the previous secret */
    out->v[key] = value;
    return 0;
}

int config_dotenv_parse_warn(const char *text, size_t len, struct config_raw *out,
                             void (*warn)(void *ctx, const char *line), void *ctx, char *err,
                             size_t errlen)
{
    const char *p = text, *end = text + len;
    if (len >= 2 && ((p[0] == '\xff' && p[1] == '\xfe') || (p[0] == '\xfe' && p[1] == '\xff'))) {
        snprintf(err, errlen, "line 1: the file is UTF-16; save it as UTF-8");
        return -1;
    }
    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
        p += 3; /* a UTF-8 byte-order mark, as some editors write */
    struct sink s = {warn, ctx, 0, 0};
    for (s.line = 1; p < end; s.line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        const char *b = p, *e = le;
        trim(&b, &e);
        if (b < e && *b != '#') {
            char why[128];
            if (memchr(b, '\0', (size_t)(e - b)) != NULL) {
                snprintf(err, errlen, "line %d: contains a NUL byte", s.line);
                return -1;
            }
            if (dotenv_line(b, e, out, &s, why, sizeof why) != 0) {
                snprintf(err, errlen, "line %d: %s", s.line, why);
                return -1;
            }
        }
        p = nl != NULL ? nl + 1 : end;
    }
    if (s.count > CONFIG_MAX_WARNINGS && warn != NULL) {
        char more[64];
        snprintf(more, sizeof more, "(%d more warnings not shown)", s.count - CONFIG_MAX_WARNINGS);
        warn(ctx, more);
    }
    return 0;
}

int config_dotenv_parse(const char *text, size_t len, struct config_raw *out, char *err,
                        size_t errlen)
{
    return config_dotenv_parse_warn(text, len, out, NULL, NULL, err, errlen);
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
        if (strict_ulong(v, keys[k].min, CONFIG_MAX_COUNT, num) != 0) {
            snprintf(err, errlen, "%s must be a whole number from %lu to %lu (got '%s')", name,
                     keys[k].min, CONFIG_MAX_COUNT, shown(v, show));
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
        if (!envelope_key_hex_valid(v)) {
            snprintf(err, errlen,
                     "%s must be exactly 64 hex digits (got %zu characters%s); "
                     "make one with: securedgram keygen",
                     name, strlen(v), hex_digits_only(v, strlen(v)) ? "" : ", not all hex");
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
    secret_free_str(cfg->user);
    secret_free_str(cfg->log);
    secret_free_str(cfg->pidfile);
    secret_free_str(cfg->address);
    secret_free_str(cfg->db);
    secret_free_str(cfg->secret_file);
    secret_free_str(cfg->secret);
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
