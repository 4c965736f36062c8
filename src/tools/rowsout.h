/*
 * rowsout: sg-recv's output. Rows (struct store_record) written as JSON, one
 * object per row with every column in table order and the payload shown as
 * the JSON it holds; in one array, as one value per line, or as the single
 * row of --id. The text is streamed to stdout through a jsonout as each row
 * comes, so memory stays bounded however many rows there are and however they
 * lay out (jsonout's growth cap keeps a hostile payload from growing a
 * hundredfold when indented).
 */
#ifndef SG_ROWSOUT_H
#define SG_ROWSOUT_H

#include "tools/jsonout.h"

#include <stdint.h>

struct store_record;

enum rowsout_layout {
    ROWSOUT_ARRAY,  /* one array of every row (pretty) */
    ROWSOUT_EACH,   /* each row a JSON value of its own, one after another */
    ROWSOUT_SINGLE, /* --id: the one row */
};

struct rowsout {
    struct jsonout j;
    enum rowsout_layout layout;
    int indent;       /* 0: compact */
    int payload_only; /* only each row's payload */
    int64_t rows;     /* written since rowsout_start */
    struct jsonout_field *f;
    int nf;
    int oom;
};

/* Sets w up to write to stdout; the caller then sets layout, indent and payload_only. */
void rowsout_init(struct rowsout *w);

/* Starts one batch of rows (an array of its own, for ROWSOUT_ARRAY). */
void rowsout_start(struct rowsout *w);

/* Writes one row. */
void rowsout_row(struct rowsout *w, const struct store_record *row);

/* 1 once the output has failed (it is then cut short). */
int rowsout_failed(const struct rowsout *w);

/* Ends the batch (closes the array) and writes what is left. Returns 0, or -1 with errno. */
int rowsout_finish(struct rowsout *w);

void rowsout_free(struct rowsout *w);

#endif
