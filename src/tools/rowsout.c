/*
 * rowsout: sg-recv's rows as JSON, streamed to stdout (rowsout.h).
 */
#include "tools/rowsout.h"

#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int to_stdout(void *ctx, const char *s, size_t n)
{
    (void)ctx;
    return fwrite(s, 1, n, stdout) == n ? 0 : -1;
}

void rowsout_init(struct rowsout *w)
{
    memset(w, 0, sizeof *w);
    jsonout_init(&w->j);
    jsonout_set_sink(&w->j, to_stdout, NULL);
}

void rowsout_start(struct rowsout *w)
{
    w->rows = 0;
}

/* The JSON field for one column: the payload as the JSON it holds, BLOBs as text. */
static void to_field(const struct store_col *c, struct jsonout_field *f)
{
    memset(f, 0, sizeof *f);
    f->name = c->name != NULL ? c->name : "";
    switch (c->type) {
    case STORE_INT:
        f->kind = JSONOUT_INT;
        f->i = c->i;
        break;
    case STORE_REAL:
        f->kind = JSONOUT_REAL;
        f->r = c->r;
        break;
    case STORE_TEXT:
    case STORE_BLOB:
        f->kind = strcmp(f->name, "payload") == 0 ? JSONOUT_JSON : JSONOUT_STRING;
        f->s = c->text;
        f->len = c->len;
        break;
    default:
        f->kind = JSONOUT_NULL;
        break;
    }
}

/* Writes one row as a value at depth. */
static void put_row(struct rowsout *w, const struct store_record *row, int depth)
{
    if (row->ncols > w->nf) {
        struct jsonout_field *f = realloc(w->f, (size_t)row->ncols * sizeof *f);
        if (f == NULL) {
            w->oom = 1;
            return;
        }
        w->f = f;
        w->nf = row->ncols;
    }
    int payload = -1;
    for (int k = 0; k < row->ncols; k++) {
        to_field(&row->col[k], &w->f[k]);
        if (strcmp(w->f[k].name, "payload") == 0)
            payload = k;
    }
    if (!w->payload_only)
        jsonout_object(&w->j, w->f, (size_t)row->ncols, w->indent, depth);
    else if (payload >= 0)
        jsonout_field_value(&w->j, &w->f[payload], w->indent, depth);
    else
        jsonout_text(&w->j, "null");
}

void rowsout_row(struct rowsout *w, const struct store_record *row)
{
    if (w->layout == ROWSOUT_ARRAY) {
        jsonout_raw(&w->j, w->rows == 0 ? "[" : ",", 1);
        jsonout_newline(&w->j, w->indent, 1);
        put_row(w, row, 1);
    } else {
        put_row(w, row, 0);
        jsonout_raw(&w->j, "\n", 1);
    }
    w->rows++;
}

int rowsout_failed(const struct rowsout *w)
{
    return w->oom || w->j.oom || w->j.sink_failed;
}

int rowsout_finish(struct rowsout *w)
{
    if (w->layout == ROWSOUT_ARRAY && !rowsout_failed(w)) {
        if (w->rows == 0) {
            jsonout_text(&w->j, "[]\n");
        } else {
            jsonout_newline(&w->j, w->indent, 0);
            jsonout_text(&w->j, "]\n");
        }
    }
    if (jsonout_flush(&w->j) != 0 || w->oom) {
        errno = w->j.sink_failed ? w->j.sink_errno : ENOMEM;
        return -1;
    }
    return fflush(stdout) == 0 ? 0 : -1;
}

void rowsout_free(struct rowsout *w)
{
    jsonout_free(&w->j);
    free(w->f);
    w->f = NULL;
    w->nf = 0;
}
