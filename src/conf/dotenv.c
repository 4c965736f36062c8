/*
 * dotenv: the .env file's text -> raw values by key, with the warnings the
 * original's quirks deserve (config.h, config_dotenv_parse_warn).
 */
#include "conf/config.h"

#include "util/secret.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
        config_key_by_span(name, len) >= 0)
        return 0;
    /* the nearest setting, if it is near: a case slip, or one or two typos in a longer name */
    const char *near = NULL;
    size_t best = 3;
    for (int k = 0; k < CFG_COUNT; k++) {
        size_t kl = strlen(config_key_name((enum config_key)k));
        if ((len > kl ? len - kl : kl - len) >= best)
            continue; /* the distance is at least the difference in length */
        size_t d = distance(name, len, config_key_name((enum config_key)k), kl);
        if (d < best && (d == 0 || d < len - NAME_PREFIX_LEN)) {
            best = d;
            near = config_key_name((enum config_key)k);
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
    char name[64], what[72] = "";
    if (*t != '#') {
        const char *q = t;
        while (q < *ve && name_char(*q))
            q++;
        snprintf(what, sizeof what, "%s=...", shown_name(t, q, name));
    }
    if (config_key_is_number(key)) {
        const char *hb = *vb, *he = t;
        trim(&hb, &he);
        unquote(&hb, &he);
        *vb = hb;
        *ve = he;
        if (what[0] != '\0' && !too_many(s))
            warnf(s,
                  "%s takes the number before the space; the rest of the line (%s) is ignored, "
                  "as by the original: put each setting on a line of its own",
                  config_key_name(key), what);
        return;
    }
    if (too_many(s))
        return;
    if (what[0] != '\0')
        warnf(s,
              "%s is set to all of the rest of the line, which holds what looks like a second "
              "setting (%s), as by the original: put each setting on a line of its own",
              config_key_name(key), what);
    else
        warnf(s,
              "%s is set to all of the rest of the line, the '#' and what follows included, as "
              "by the original: .env has no comments after a value",
              config_key_name(key));
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
    int key = config_key_by_span(kb, (size_t)(ke - kb));
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
