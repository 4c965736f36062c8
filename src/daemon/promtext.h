/*
 * promtext: the Prometheus text exposition format (version 0.0.4) for
 * /metrics and `securedgram metrics`: families with their HELP and TYPE
 * lines, label values escaped, and the daemon's counters (COUNTERS_LIST)
 * under their metric names. Pure: it writes to the FILE it is given.
 *
 * Names follow Prometheus's conventions: securedgram_ first, _total on
 * counters, units in the name (_seconds, _bytes), one family per meaning
 * and labels for its kinds (securedgram_datagrams_dropped_total{reason}).
 */
#ifndef SG_PROMTEXT_H
#define SG_PROMTEXT_H

#include "daemon/counters.h"
#include "daemon/histo.h"

#include <stdint.h>
#include <stdio.h>

/* Opens a family: "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void promtext_family(FILE *f, const char *name, const char *type, const char *help);

/*
 * One sample: name{labels} value. labels is NULL, or pairs of label name and
 * value, NULL-terminated (values escaped here: \\, \" and \n).
 */
void promtext_sample(FILE *f, const char *name, const char *const *labels, double value);
void promtext_sample_u64(FILE *f, const char *name, const char *const *labels, uint64_t value);

/* A whole histogram family: its buckets (seconds), +Inf, _sum and _count. */
void promtext_histo(FILE *f, const char *name, const char *help, const struct histo *h);

/*
 * Every counter and gauge of COUNTERS_LIST and the drops by verdict (as
 * securedgram_datagrams_dropped_total{reason}), and the latency histograms.
 * Returns how many entries of COUNTERS_LIST have no metric name (0: a
 * counter added there needs its line in promtext.c's table; a test checks).
 */
int promtext_counters(FILE *f, const struct counters *c, const struct counters_gauges *g);

#endif
