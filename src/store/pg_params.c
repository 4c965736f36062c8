/*
 * pg_params: the values a statement of the PostgreSQL backend is sent with,
 * checked first (PostgreSQL text holds no NUL byte and only UTF-8: such a
 * value refuses its row before anything is sent, so that no error ends the
 * transaction), the array literals of the set statements, and reading
 * values out of results.
 */
#define _GNU_SOURCE
#include "store/pg_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 if s[0..len) is UTF-8 as PostgreSQL takes it (no overlong form, surrogate or NUL). */
static int utf8_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        size_t n = c < 0x80                 ? 1
                   : c >= 0xc2 && c <= 0xdf ? 2
                   : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4
                                            : 0;
        if (c == 0 || n == 0 || (size_t)(end - p) < n)
            return 0;
        for (size_t k = 1; k < n; k++)
            if ((p[k] & 0xc0) != 0x80)
                return 0;
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
            (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
            return 0;
        p += n;
    }
    return 1;
}

/* The next parameter's slot, or NULL (too many: a bug, reported as such). */
static int slot(struct pg_params *p)
{
    if (p->n >= PG_PARAMS_MAX) {
        p->bad = "internal error: too many parameters";
        return -1;
    }
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->owned[p->n] = NULL;
    return p->n++;
}

void pp_int(struct pg_params *p, int64_t v)
{
    int i = slot(p);
    if (i < 0)
        return;
    snprintf(p->num[i], sizeof p->num[i], "%lld", (long long)v);
    p->v[i] = p->num[i];
}

void pp_time(struct pg_params *p, int64_t ms)
{
    int i = slot(p);
    if (i < 0)
        return;
    _Static_assert(sizeof p->num[0] >= STORE_TIME_LEN, "room for a time");
    store_format_ms(ms, p->num[i]);
    p->v[i] = p->num[i];
}

void pp_text(struct pg_params *p, const char *s)
{
    int i = slot(p);
    if (i < 0)
        return;
    p->v[i] = s;
    if (s != NULL && !utf8_ok(s, strlen(s)))
        p->bad = "a text that is not UTF-8 (PostgreSQL text cannot hold it)";
}

void pp_short(struct pg_params *p, const char *s)
{
    int i = slot(p);
    if (i < 0)
        return;
    snprintf(p->num[i], sizeof p->num[i], "%s", s);
    p->v[i] = p->num[i];
}

void pp_bytes(struct pg_params *p, const char *s, size_t len)
{
    int i = slot(p);
    if (i < 0)
        return;
    p->v[i] = s;
    if (s == NULL)
        return;
    if (len > INT_MAX) {
        p->bad = "a value too big for PostgreSQL";
        return;
    }
    p->len[i] = (int)len;
    p->fmt[i] = 1; /* the bytes as they are: textrecv checks them as text */
    if (memchr(s, '\0', len) != NULL)
        p->bad = "a text with a NUL byte (PostgreSQL text cannot hold it)";
    else if (!utf8_ok(s, len))
        p->bad = "a text that is not UTF-8 (PostgreSQL text cannot hold it)";
}

void pp_owned(struct pg_params *p, char *s)
{
    int i = slot(p);
    if (i < 0) {
        free(s);
        return;
    }
    p->v[i] = s;
    p->owned[i] = s;
    if (s == NULL)
        p->bad = "out of memory";
    else if (!utf8_ok(s, strlen(s)))
        p->bad = "a text that is not UTF-8 (PostgreSQL text cannot hold it)";
}

void pp_free(struct pg_params *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->owned[i]);
    p->n = 0;
}

/* A growing text (malloc'd); oom once it could not grow. */
struct buf {
    char *p;
    size_t len, cap;
    int oom;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static char *buf_done(struct buf *b)
{
    if (b->oom || b->p == NULL) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

char *pg_int_array(const int64_t *v, int n)
{
    struct buf b = {0};
    buf_add(&b, "{", 1);
    for (int k = 0; k < n; k++) {
        char t[24];
        int len = snprintf(t, sizeof t, "%s%lld", k > 0 ? "," : "", (long long)v[k]);
        buf_add(&b, t, (size_t)len);
    }
    buf_add(&b, "}", 1);
    return buf_done(&b);
}

/* Appends s (len bytes) as a quoted array element. */
static void buf_element(struct buf *b, const char *s, size_t len)
{
    buf_add(b, "\"", 1);
    for (size_t i = 0; i < len;) {
        size_t run = i;
        while (run < len && s[run] != '"' && s[run] != '\\')
            run++;
        buf_add(b, s + i, run - i);
        if (run < len) {
            char esc[2] = {'\\', s[run]};
            buf_add(b, esc, 2);
            run++;
        }
        i = run;
    }
    buf_add(b, "\"", 1);
}

char *pg_text_array(const char *const *v, int n)
{
    struct buf b = {0};
    buf_add(&b, "{", 1);
    for (int k = 0; k < n; k++) {
        if (k > 0)
            buf_add(&b, ",", 1);
        if (v[k] == NULL)
            buf_add(&b, "NULL", 4);
        else
            buf_element(&b, v[k], strlen(v[k]));
    }
    buf_add(&b, "}", 1);
    return buf_done(&b);
}

/* ---- results ---- */

int64_t pg_int(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const char *t = PQgetvalue(r, row, col);
    if (t[0] == 't' || t[0] == 'f') /* a boolean */
        return t[0] == 't';
    return strtoll(t, NULL, 10);
}

const char *pg_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t pg_changed(const PGresult *r)
{
    const char *t = PQcmdTuples((PGresult *)r);
    return t != NULL && t[0] != '\0' ? strtoll(t, NULL, 10) : 0;
}
