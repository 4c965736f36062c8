/*
 * peers: the peers file's grammar and rules (see peers.h and
 * securedgram-peers(5)). One pass over the lines; each section is checked
 * when it ends, the whole list when the text ends.
 */
#include "conf/peers.h"

#include "util/clock.h"
#include "util/hex.h"
#include "util/secret.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LINE_MAX_BYTES 4096

/* What a section has said so far (each setting once; allowed may repeat). */
struct seen {
    int endpoint, key, key_file, previous, until, wire, roaming;
};

struct parse {
    const char *file;
    int line;
    char *err;
    size_t errlen;
    struct peers_conf *out;
    int cap;
    struct peer_conf *cur; /* the section being read, or NULL before the first */
    struct seen seen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parse *p, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s line %d: %s", p->file, p->line, what);
    return -1;
}

int peers_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > PEER_NAME_MAX || name[0] == '.' || name[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isalnum(c) || c == '.' || c == '_' || c == '-') || c >= 0x80)
            return 0;
    }
    return 1;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* "YYYY-MM-DDTHH:MM:SSZ" (UTC, nothing else) into *sec. */
static int parse_utc(const char *s, int64_t *sec)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != sizeof shape - 1)
        return -1;
    int v[6] = {0}, k = 0;
    for (size_t i = 0; shape[i] != '\0'; i++) {
        if (shape[i] == 'd') {
            if (s[i] < '0' || s[i] > '9')
                return -1;
        } else if (s[i] != shape[i]) {
            return -1;
        }
    }
    const int at[6][2] = {{0, 4}, {5, 2}, {8, 2}, {11, 2}, {14, 2}, {17, 2}};
    for (k = 0; k < 6; k++)
        for (int i = 0; i < at[k][1]; i++)
            v[k] = v[k] * 10 + (s[at[k][0] + i] - '0');
    return clock_utc_seconds(v[0], v[1], v[2], v[3], v[4], v[5], sec);
}

static int parse_key_hex(struct parse *p, const char *value, uint8_t key[PEER_KEY_BYTES],
                         const char *what)
{
    if (strlen(value) != 2 * PEER_KEY_BYTES ||
        hex_decode(key, PEER_KEY_BYTES, value, 2 * PEER_KEY_BYTES) != 0)
        return fail(p, "%s must be 64 hex digits (make one with: securedgram keygen --peer)", what);
    return 0;
}

static int parse_allowed(struct parse *p, char *value)
{
    for (char *item = value, *next; item != NULL; item = next) {
        next = strchr(item, ',');
        if (next != NULL)
            *next++ = '\0';
        item = trim(item);
        if (*item == '\0')
            return fail(p, "allowed: an empty entry (a stray comma?)");
        if (p->cur->nallowed >= PEER_ALLOWED_MAX)
            return fail(p, "allowed: more than %d networks for one peer", PEER_ALLOWED_MAX);
        if (net_prefix_parse(item, &p->cur->allowed[p->cur->nallowed]) != 0)
            return fail(p,
                        "allowed: '%.64s' is not a network (192.0.2.0/24, 2001:db8::/32, or "
                        "one address; no host bits set past the prefix)",
                        item);
        p->cur->nallowed++;
    }
    return 0;
}

/* One setting of the current section: name = value. */
static int setting(struct parse *p, const char *name, char *value)
{
    struct peer_conf *c = p->cur;
    struct seen *s = &p->seen;
    int *once = strcasecmp(name, "endpoint") == 0             ? &s->endpoint
                : strcasecmp(name, "key") == 0                ? &s->key
                : strcasecmp(name, "key-file") == 0           ? &s->key_file
                : strcasecmp(name, "previous-key") == 0       ? &s->previous
                : strcasecmp(name, "previous-key-until") == 0 ? &s->until
                : strcasecmp(name, "wire") == 0               ? &s->wire
                : strcasecmp(name, "roaming") == 0            ? &s->roaming
                                                              : NULL;
    if (once == NULL && strcasecmp(name, "allowed") != 0)
        return fail(p,
                    "unknown setting '%.64s' (known: endpoint, allowed, key, key-file, "
                    "previous-key, previous-key-until, wire, roaming)",
                    name);
    if (once != NULL && (*once)++)
        return fail(p, "%s is given twice for peer %s", name, c->name);
    if (*value == '\0')
        return fail(p, "%s has no value", name);
    if (once == &s->endpoint) {
        if (net_endpoint_parse(value, &c->endpoint) != 0)
            return fail(p,
                        "endpoint '%.64s' is not ADDRESS:PORT ([ADDRESS]:PORT for IPv6; "
                        "numeric, no host names)",
                        value);
        c->has_endpoint = 1;
    } else if (once == &s->key) {
        if (strcmp(value, "derive") == 0) {
            c->key_kind = PEER_KEY_DERIVE;
            return 0;
        }
        c->key_kind = PEER_KEY_HEX;
        return parse_key_hex(p, value, c->key, "key");
    } else if (once == &s->key_file) {
        c->key_kind = PEER_KEY_FILE;
        c->key_file = strdup(value);
        if (c->key_file == NULL)
            return fail(p, "out of memory");
    } else if (once == &s->previous) {
        c->has_previous = 1;
        return parse_key_hex(p, value, c->previous, "previous-key");
    } else if (once == &s->until) {
        if (parse_utc(value, &c->previous_until) != 0)
            return fail(p, "previous-key-until '%.64s' is not YYYY-MM-DDTHH:MM:SSZ (UTC)", value);
    } else if (once == &s->wire) {
        if (strcmp(value, "1") != 0 && strcmp(value, "2") != 0)
            return fail(p, "wire must be 1 (today's format, e.g. a Ruby peer) or 2");
        c->wire = value[0] - '0';
    } else if (once == &s->roaming) {
        if (strcasecmp(value, "yes") != 0 && strcasecmp(value, "no") != 0)
            return fail(p, "roaming must be yes or no");
        c->roaming = strcasecmp(value, "yes") == 0;
    } else {
        return parse_allowed(p, value);
    }
    return 0;
}

/* The section just read is whole: what it must have, and its defaults. */
static int section_end(struct parse *p)
{
    struct peer_conf *c = p->cur;
    if (c == NULL)
        return 0;
    int line = p->line;
    p->line = c->line;
    int rc = 0;
    if (p->seen.key && p->seen.key_file)
        rc = fail(p, "peer %s has both key and key-file: give one", c->name);
    else if (!p->seen.key && !p->seen.key_file)
        rc = fail(p, "peer %s has no key (key = <64 hex>, key-file = PATH or key = derive)",
                  c->name);
    else if (p->seen.previous != p->seen.until)
        rc = fail(p, "peer %s: previous-key and previous-key-until go together", c->name);
    else if (c->nallowed == 0 && !c->has_endpoint)
        rc = fail(p, "peer %s has neither allowed nor endpoint: nothing it sends would be taken",
                  c->name);
    else if (c->has_previous && c->key_kind == PEER_KEY_HEX &&
             memcmp(c->previous, c->key, PEER_KEY_BYTES) == 0)
        rc = fail(p, "peer %s: previous-key is the same as key", c->name);
    if (rc == 0 && c->nallowed == 0) { /* the endpoint's own address, all its bits */
        char host[NET_HOST_MAX];
        unsigned port;
        net_addr_format(&c->endpoint, host, &port);
        if (net_prefix_parse(host, &c->allowed[0]) == 0)
            c->nallowed = 1;
    }
    p->line = line;
    return rc;
}

static int section_start(struct parse *p, char *header)
{
    size_t n = strlen(header);
    if (header[n - 1] != ']')
        return fail(p, "a section header must end with ']'");
    header[n - 1] = '\0';
    char *body = trim(header + 1);
    if (strncasecmp(body, "peer", 4) != 0 || (body[4] != ' ' && body[4] != '\t'))
        return fail(p, "unknown section [%.64s] (only [peer NAME])", body);
    char *name = trim(body + 4);
    if (!peers_name_valid(name))
        return fail(p,
                    "peer name '%.64s' is not 1-%d of A-Z a-z 0-9 . _ - (not starting "
                    "with . or -)",
                    name, PEER_NAME_MAX);
    for (int i = 0; i < p->out->n; i++)
        if (strcmp(p->out->peer[i].name, name) == 0)
            return fail(p, "peer %s is defined twice (first on line %d)", name,
                        p->out->peer[i].line);
    if (p->out->n >= PEERS_MAX)
        return fail(p, "more than %d peers", PEERS_MAX);
    if (p->out->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        struct peer_conf *np = realloc(p->out->peer, (size_t)cap * sizeof *np);
        if (np == NULL)
            return fail(p, "out of memory");
        p->out->peer = np;
        p->cap = cap;
    }
    struct peer_conf *c = &p->out->peer[p->out->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->line = p->line;
    c->wire = 2;
    p->cur = c;
    memset(&p->seen, 0, sizeof p->seen);
    return 0;
}

static int one_line(struct parse *p, char *line)
{
    char *hash = strchr(line, '#');
    if (hash != NULL)
        *hash = '\0'; /* a comment, to the end of the line */
    line = trim(line);
    if (*line == '\0')
        return 0;
    if (*line == '[')
        return section_end(p) != 0 ? -1 : section_start(p, line);
    char *eq = strchr(line, '=');
    if (eq == NULL)
        return fail(p, "expected NAME = VALUE or [peer NAME]");
    *eq = '\0';
    char *name = trim(line), *value = trim(eq + 1);
    if (p->cur == NULL)
        return fail(p, "%.64s is outside any [peer NAME] section", name);
    return setting(p, name, value);
}

/* Two peers with one key would be one peer to the other side: refused. */
static int keys_distinct(struct parse *p)
{
    const struct peers_conf *pc = p->out;
    for (int i = 0; i < pc->n; i++)
        for (int j = i + 1; j < pc->n; j++) {
            const struct peer_conf *a = &pc->peer[i], *b = &pc->peer[j];
            if (a->key_kind == PEER_KEY_HEX && b->key_kind == PEER_KEY_HEX &&
                memcmp(a->key, b->key, PEER_KEY_BYTES) == 0) {
                p->line = b->line;
                return fail(p, "peers %s and %s have the same key: each pair needs its own",
                            a->name, b->name);
            }
        }
    return 0;
}

int peers_parse(const char *text, size_t len, const char *file, struct peers_conf *out, char *err,
                size_t errlen)
{
    struct parse p = {.file = file, .err = err, .errlen = errlen, .out = out};
    memset(out, 0, sizeof *out);
    err[0] = '\0';
    int rc = 0;
    if (len > PEERS_TEXT_MAX)
        rc = fail(&p, "the file is over %d bytes", PEERS_TEXT_MAX);
    else if (memchr(text, '\0', len) != NULL)
        rc = fail(&p, "the file holds a NUL byte: not a text file");
    char line[LINE_MAX_BYTES];
    for (size_t at = 0; rc == 0 && at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl != NULL ? (size_t)(nl - (text + at)) : len - at;
        p.line++;
        if (n >= sizeof line) {
            rc = fail(&p, "a line over %d bytes", LINE_MAX_BYTES - 1);
            break;
        }
        memcpy(line, text + at, n);
        line[n] = '\0';
        rc = one_line(&p, line);
        at += n + (nl != NULL);
    }
    if (rc == 0)
        rc = section_end(&p);
    if (rc == 0)
        rc = keys_distinct(&p);
    secret_wipe(line, sizeof line); /* it may have held a key */
    if (rc != 0)
        peers_free(out);
    return rc;
}

void peers_free(struct peers_conf *out)
{
    for (int i = 0; i < out->n; i++)
        free(out->peer[i].key_file);
    if (out->peer != NULL)
        secret_wipe(out->peer, (size_t)out->n * sizeof *out->peer);
    free(out->peer);
    out->peer = NULL;
    out->n = 0;
}

const struct peer_conf *peers_find(const struct peers_conf *pc, const char *name)
{
    for (int i = 0; i < pc->n; i++)
        if (strcmp(pc->peer[i].name, name) == 0)
            return &pc->peer[i];
    return NULL;
}

int peers_key_text(const char *text, size_t len, uint8_t key[PEER_KEY_BYTES], char *err,
                   size_t errlen)
{
    size_t n = len;
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' ||
                     text[n - 1] == '\t'))
        n--;
    if (n != 2 * PEER_KEY_BYTES || hex_decode(key, PEER_KEY_BYTES, text, n) != 0) {
        snprintf(err, errlen, "a key file must hold 64 hex digits and a newline");
        return -1;
    }
    return 0;
}

int peers_check(const struct peers_conf *pc, const char *file, const char *me, int has_master,
                char *err, size_t errlen)
{
    for (int i = 0; i < pc->n; i++) {
        const struct peer_conf *p = &pc->peer[i];
        if (me == NULL && (p->wire == 2 || p->key_kind == PEER_KEY_DERIVE)) {
            snprintf(err, errlen,
                     "%s line %d: peer %s needs this host's name (SECUREDGRAM_NAME or --name): "
                     "%s",
                     file, p->line, p->name,
                     p->key_kind == PEER_KEY_DERIVE ? "its key is derived from the two names"
                                                    : "wire 2 keys each direction by name");
            return -1;
        }
        if (me != NULL && strcmp(p->name, me) == 0) {
            snprintf(err, errlen, "%s line %d: peer %s has this host's own name (SECUREDGRAM_NAME)",
                     file, p->line, p->name);
            return -1;
        }
        if (p->key_kind == PEER_KEY_DERIVE && !has_master) {
            snprintf(err, errlen,
                     "%s line %d: peer %s: key = derive needs SECUREDGRAM_MASTER_SECRET_FILE", file,
                     p->line, p->name);
            return -1;
        }
    }
    return 0;
}

int peers_uses_master(const struct peers_conf *pc)
{
    for (int i = 0; i < pc->n; i++)
        if (pc->peer[i].key_kind == PEER_KEY_DERIVE)
            return 1;
    return 0;
}
