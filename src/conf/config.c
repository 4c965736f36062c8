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

enum check {
    CHECK_TEXT,
    CHECK_PATH,
    CHECK_LOG,
    CHECK_PORT,
    CHECK_COUNT,
    CHECK_SECRET,
    CHECK_RATE,
    CHECK_NAME,
    CHECK_DURATION,
    CHECK_MILLIS,
    CHECK_SIZE,
    CHECK_POLICY,
    CHECK_CONTROL,
    CHECK_LISTEN,
    CHECK_LOG_FORMAT
};

static const struct strict_unit seconds[] = {
    {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {NULL, 0}};
static const struct strict_unit millis[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {NULL, 0}};
static const struct strict_unit bytes[] = {{"", 1},           {"K", 1u << 10},   {"KiB", 1u << 10},
                                           {"M", 1u << 20},   {"MiB", 1u << 20}, {"G", 1u << 30},
                                           {"GiB", 1u << 30}, {NULL, 0}};
static const char *const policies[] = {
    [RETRY_AUTO] = "auto", [RETRY_FIXED] = "fixed", [RETRY_ADAPTIVE] = "adaptive"};

#define MIB (1ul << 20)

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
    unsigned long min, max; /* of a number; max 0: CONFIG_MAX_COUNT */
} keys[CFG_COUNT] = {
    [CFG_USER] = {"SECUREDGRAM_USER", "nobody", CHECK_TEXT, 0, 0},
    [CFG_LOG] = {"SECUREDGRAM_LOG", "syslog", CHECK_LOG, 0, 0},
    [CFG_PIDFILE] = {"SECUREDGRAM_PIDFILE", "securedgram.pid", CHECK_PATH, 0, 0},
    [CFG_ADDRESS] = {"SECUREDGRAM_ADDRESS", "0.0.0.0", CHECK_TEXT, 0, 0},
    [CFG_PORT] = {"SECUREDGRAM_PORT", "61773", CHECK_PORT, 0, 0},
    [CFG_SECRET] = {"SECUREDGRAM_SECRET", NULL, CHECK_SECRET, 0, 0},
    [CFG_WINDOW] = {"SECUREDGRAM_WINDOW", "10", CHECK_COUNT, 1, 0},
    [CFG_MAX_RETRIES] = {"SECUREDGRAM_MAX_RETRIES", "10", CHECK_COUNT, 0, 0},
    [CFG_RETRY_INTERVAL] = {"SECUREDGRAM_RETRY_INTERVAL", "5", CHECK_COUNT, 1, 0},
    [CFG_DB] = {"SECUREDGRAM_DB", "securedgram.db", CHECK_PATH, 0, 0},
    [CFG_SECRET_FILE] = {"SECUREDGRAM_SECRET_FILE", NULL, CHECK_PATH, 0, 0},
    [CFG_RATE_LIMIT] = {"SECUREDGRAM_RATE_LIMIT", "0", CHECK_RATE, 0, 0},
    [CFG_PEERS] = {"SECUREDGRAM_PEERS", NULL, CHECK_PATH, 0, 0},
    [CFG_NAME] = {"SECUREDGRAM_NAME", NULL, CHECK_NAME, 0, 0},
    [CFG_MASTER_SECRET_FILE] = {"SECUREDGRAM_MASTER_SECRET_FILE", NULL, CHECK_PATH, 0, 0},
    [CFG_GIVE_UP_AFTER] = {"SECUREDGRAM_GIVE_UP_AFTER", "0", CHECK_DURATION, 0, 0},
    [CFG_RETRY_POLICY] = {"SECUREDGRAM_RETRY_POLICY", "auto", CHECK_POLICY, 0, 0},
    [CFG_RETRY_MIN] = {"SECUREDGRAM_RETRY_MIN", "100ms", CHECK_MILLIS, 1, 3600000},
    [CFG_RETRY_MAX] = {"SECUREDGRAM_RETRY_MAX", "60s", CHECK_MILLIS, 1, 3600000},
    [CFG_MAX_MESSAGE] = {"SECUREDGRAM_MAX_MESSAGE", "1M", CHECK_SIZE, 1, 16 * MIB},
    [CFG_MTU] = {"SECUREDGRAM_MTU", "1280", CHECK_COUNT, 576, 65535},
    [CFG_REASSEMBLY_MEMORY] = {"SECUREDGRAM_REASSEMBLY_MEMORY", "64M", CHECK_SIZE, MIB, 4096 * MIB},
    [CFG_CONTROL] = {"SECUREDGRAM_CONTROL", NULL, CHECK_CONTROL, 0, 0},
    [CFG_METRICS] = {"SECUREDGRAM_METRICS", NULL, CHECK_LISTEN, 0, 0},
    [CFG_LOG_FORMAT] = {"SECUREDGRAM_LOG_FORMAT", "text", CHECK_LOG_FORMAT, 0, 0},
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

int config_key_by_span(const char *name, size_t n)
{
    return key_by_span(name, n);
}

int config_key_is_number(enum config_key key)
{
    return keys[key].check == CHECK_PORT || keys[key].check == CHECK_COUNT ||
           keys[key].check == CHECK_RATE || keys[key].check == CHECK_DURATION ||
           keys[key].check == CHECK_MILLIS || keys[key].check == CHECK_SIZE;
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
    unsigned long max = keys[k].max != 0 ? keys[k].max : CONFIG_MAX_COUNT;
    switch (keys[k].check) {
    case CHECK_PORT:
        if (strict_ulong(v, 1, 65535, num) != 0) {
            snprintf(err, errlen, "%s must be a port number from 1 to 65535 (got '%s')", name,
                     shown(v, show));
            return -1;
        }
        return 0;
    case CHECK_COUNT:
        if (strict_ulong(v, keys[k].min, max, num) != 0) {
            snprintf(err, errlen, "%s must be a whole number from %lu to %lu (got '%s')", name,
                     keys[k].min, max, shown(v, show));
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
    case CHECK_DURATION:
        if (strict_scaled(v, seconds, 0, max, num) != 0) {
            snprintf(err, errlen,
                     "%s must be a duration: a whole number of seconds, or with s, m, h or d "
                     "(24h; 0: give up after SECUREDGRAM_MAX_RETRIES), at most %lu s (got '%s')",
                     name, max, shown(v, show));
            return -1;
        }
        return 0;
    case CHECK_MILLIS:
        if (strict_scaled(v, millis, keys[k].min, max, num) != 0) {
            snprintf(err, errlen,
                     "%s must be a duration: a whole number of milliseconds, or with ms, s or m "
                     "(250ms, 2s), from %lu ms to %lu ms (got '%s')",
                     name, keys[k].min, max, shown(v, show));
            return -1;
        }
        return 0;
    case CHECK_SIZE:
        if (strict_scaled(v, bytes, keys[k].min, max, num) != 0) {
            snprintf(err, errlen,
                     "%s must be a size: a whole number of bytes, or with K or M (1024K, 16M), "
                     "from %lu to %lu bytes (got '%s')",
                     name, keys[k].min, max, shown(v, show));
            return -1;
        }
        return 0;
    case CHECK_POLICY:
        for (unsigned long i = 0; i < sizeof policies / sizeof policies[0]; i++)
            if (strcmp(v, policies[i]) == 0) {
                *num = i;
                return 0;
            }
        snprintf(err, errlen, "%s must be auto, fixed or adaptive (got '%s')", name,
                 shown(v, show));
        return -1;
    case CHECK_CONTROL:
        if (v[0] == '\0' || (strcmp(v, "none") != 0 && strlen(v) > CONFIG_CONTROL_PATH_MAX)) {
            snprintf(err, errlen,
                     "%s must be a path of at most %d characters (a Unix socket's), or none "
                     "(got %zu characters)",
                     name, CONFIG_CONTROL_PATH_MAX, strlen(v));
            return -1;
        }
        return 0;
    case CHECK_LISTEN: {
        /* HOST:PORT or [HOST]:PORT; the host is resolved when the daemon binds it */
        const char *colon = strrchr(v, ':');
        unsigned long port;
        int bracketed = v[0] == '[';
        size_t hl = colon != NULL ? (size_t)(colon - v) : 0;
        if (colon == NULL || hl == 0 || strict_ulong(colon + 1, 1, 65535, &port) != 0 ||
            (bracketed && (hl < 3 || v[hl - 1] != ']')) ||
            (!bracketed && memchr(v, ':', hl) != NULL)) {
            snprintf(err, errlen, "%s must be HOST:PORT, or [IPv6]:PORT (127.0.0.1:9477; got '%s')",
                     name, shown(v, show));
            return -1;
        }
        *num = port;
        return 0;
    }
    case CHECK_LOG_FORMAT:
        if (strcmp(v, "text") != 0 && strcmp(v, "json") != 0) {
            snprintf(err, errlen, "%s must be text or json (got '%s')", name, shown(v, show));
            return -1;
        }
        *num = strcmp(v, "json") == 0;
        return 0;
    case CHECK_NAME:
        if (!peers_name_valid(v)) {
            snprintf(err, errlen,
                     "%s must be 1 to %d characters of A-Z a-z 0-9 . _ -, not starting with "
                     "'.' or '-' (got '%s')",
                     name, PEER_NAME_MAX, shown(v, show));
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

char *config_db_location(const char *v, const char *cwd)
{
    if (strncmp(v, "postgresql://", 13) == 0 || strncmp(v, "postgres://", 11) == 0)
        return strdup(v); /* no path: as it is */
    if (strncmp(v, "sqlite:", 7) == 0) {
        v += 7; /* the path behind the scheme, made absolute as any other */
        if (strncmp(v, "//", 2) == 0)
            v += 2;
    }
    return absolute(cwd, v);
}

static int store_text(struct config *cfg, enum config_key k, const char *v, const char *cwd)
{
    int path = keys[k].check == CHECK_PATH || keys[k].check == CHECK_CONTROL ||
               (keys[k].check == CHECK_LOG && strcmp(v, "syslog") != 0 && strcmp(v, "stdout") != 0);
    char *copy = k == CFG_DB ? config_db_location(v, cwd) : path ? absolute(cwd, v) : strdup(v);
    if (copy == NULL)
        return -1;
    char **slot = k == CFG_USER                 ? &cfg->user
                  : k == CFG_LOG                ? &cfg->log
                  : k == CFG_PIDFILE            ? &cfg->pidfile
                  : k == CFG_ADDRESS            ? &cfg->address
                  : k == CFG_DB                 ? &cfg->db
                  : k == CFG_SECRET_FILE        ? &cfg->secret_file
                  : k == CFG_PEERS              ? &cfg->peers_file
                  : k == CFG_NAME               ? &cfg->name
                  : k == CFG_MASTER_SECRET_FILE ? &cfg->master_secret_file
                  : k == CFG_CONTROL            ? &cfg->control
                  : k == CFG_METRICS            ? &cfg->metrics
                                                : &cfg->secret;
    *slot = copy;
    return 0;
}

char *config_control_default(const char *pidfile, int *oom)
{
    *oom = 0;
    if (pidfile == NULL)
        return NULL;
    size_t n = strlen(pidfile);
    size_t stem = n > 4 && strcmp(pidfile + n - 4, ".pid") == 0 ? n - 4 : n;
    if (stem + 5 > CONFIG_CONTROL_PATH_MAX)
        return NULL;
    char *path = malloc(stem + 6);
    if (path == NULL) {
        *oom = 1;
        return NULL;
    }
    memcpy(path, pidfile, stem);
    memcpy(path + stem, ".sock", 6);
    return path;
}

static int default_control(struct config *cfg)
{
    int oom;
    cfg->control = config_control_default(cfg->pidfile, &oom);
    return oom ? -1 : 0;
}

/* 1 if a peers file is given: then the shared secret is optional. */
static int has_peers(const struct config_raw *first, const struct config_raw *second,
                     const struct config_raw *third)
{
    const char *v = pick(CFG_PEERS, first, second, third);
    return v != NULL && v[0] != '\0';
}

/* What one value cannot check alone. 0, or -1 with the reason in err. */
static int cross_check(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->retry_min_ms > cfg->retry_max_ms) {
        snprintf(err, errlen, "SECUREDGRAM_RETRY_MIN (%u ms) is over SECUREDGRAM_RETRY_MAX (%u ms)",
                 cfg->retry_min_ms, cfg->retry_max_ms);
        return -1;
    }
    /* one peer may hold a quarter, and must have room for one whole message */
    if (cfg->reassembly_memory / 4 < cfg->max_message) {
        snprintf(err, errlen,
                 "SECUREDGRAM_REASSEMBLY_MEMORY (%lu bytes) must be at least 4 times "
                 "SECUREDGRAM_MAX_MESSAGE (%u bytes): one peer may use a quarter of it",
                 cfg->reassembly_memory, cfg->max_message);
        return -1;
    }
    return 0;
}

const char *config_retry_policy_name(enum config_retry_policy p)
{
    return policies[p];
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
        int optional = k == CFG_SECRET || k == CFG_SECRET_FILE || k == CFG_RATE_LIMIT ||
                       k == CFG_GIVE_UP_AFTER || k == CFG_PEERS || k == CFG_NAME ||
                       k == CFG_MASTER_SECRET_FILE || k == CFG_CONTROL || k == CFG_METRICS;
        if (v != NULL && v[0] == '\0' && optional)
            v = keys[k].def;
        if (v == NULL) {
            if (k == CFG_SECRET && need_secret && !has_peers(flags, second, third)) {
                snprintf(err, errlen,
                         "SECUREDGRAM_SECRET is not set (64 hex digits, in .env or the "
                         "environment; make one with: securedgram keygen), and there is no "
                         "SECUREDGRAM_PEERS file");
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
        else if (k == CFG_GIVE_UP_AFTER)
            cfg.give_up_after = (unsigned)num;
        else if (k == CFG_RETRY_POLICY)
            cfg.retry_policy = (enum config_retry_policy)num;
        else if (k == CFG_RETRY_MIN)
            cfg.retry_min_ms = (unsigned)num;
        else if (k == CFG_RETRY_MAX)
            cfg.retry_max_ms = (unsigned)num;
        else if (k == CFG_MAX_MESSAGE)
            cfg.max_message = (unsigned)num;
        else if (k == CFG_MTU)
            cfg.mtu = (unsigned)num;
        else if (k == CFG_REASSEMBLY_MEMORY)
            cfg.reassembly_memory = num;
        else if (k == CFG_LOG_FORMAT)
            cfg.log_json = (int)num;
        else if (k == CFG_CONTROL && strcmp(v, "none") == 0)
            continue; /* no control socket */
        else if (k == CFG_RATE_LIMIT) {
            cfg.rate_limit = (unsigned)num;
            cfg.rate_burst = (unsigned)num2;
        } else if (store_text(&cfg, k, v, cwd) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (pick(CFG_CONTROL, flags, second, third) == NULL && default_control(&cfg) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cross_check(&cfg, err, errlen) != 0)
        goto fail;
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
    secret_free_str(cfg->peers_file);
    secret_free_str(cfg->name);
    secret_free_str(cfg->master_secret_file);
    secret_free_str(cfg->control);
    secret_free_str(cfg->metrics);
    peers_free(&cfg->peers);
    secret_wipe(cfg->master, sizeof cfg->master);
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
        {CFG_NAME, differs(running->name, next->name)},
        {CFG_CONTROL, differs(running->control, next->control)},
        {CFG_METRICS, differs(running->metrics, next->metrics)},
        {CFG_LOG_FORMAT, running->log_json != next->log_json},
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
