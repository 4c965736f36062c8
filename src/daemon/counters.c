/*
 * counters: the renderings of struct counters, all walking COUNTERS_LIST, so
 * that a counter added there shows up everywhere in the same place.
 */
#include "daemon/counters.h"

#include "daemon/statsfile.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A line being written: used counts what was asked for, even past cap. */
struct line {
    char *out;
    size_t cap, used;
};

static void put(struct line *l, const char *text)
{
    size_t n = strlen(text);
    if (l->used < l->cap)
        snprintf(l->out + l->used, l->cap - l->used, "%s", text);
    l->used += n;
}

static void item(struct line *l, int first, const char *name, unsigned long long value)
{
    char text[96];
    snprintf(text, sizeof text, "%s%s=%llu", first ? "" : " ", name, value);
    put(l, text);
}

static const char *const group_start[COUNTERS_GROUPS] = {[COUNTERS_TRAFFIC] = "",
                                                         [COUNTERS_DROP] = " | dropped: ",
                                                         [COUNTERS_FAULT] = " | ",
                                                         [COUNTERS_STORE] = " | database: "};

/* One group: its opening text, then its entries of COUNTERS_LIST. */
static void group(struct line *l, enum counters_group grp, const struct counters *c,
                  const struct counters_gauges *g)
{
    int first = 1;
    put(l, group_start[grp]);
    if (grp == COUNTERS_DROP)
        for (int v = JUDGE_DROP_SHORT; v < JUDGE_VERDICTS; v++, first = 0)
            item(l, first, judge_name((enum judge_verdict)v), (unsigned long long)c->verdicts[v]);
#define COUNTERS_ITEM(in_group, name, value)                                                       \
    if ((in_group) == grp) {                                                                       \
        item(l, first, name, (unsigned long long)(value));                                         \
        first = 0;                                                                                 \
    }
    COUNTERS_LIST(COUNTERS_ITEM)
#undef COUNTERS_ITEM
}

void counters_init(struct counters *c)
{
    memset(c, 0, sizeof *c);
    histo_init(&c->insert_to_ack, HISTO_INSERT_ACK_US, HISTO_INSERT_ACK_N);
    histo_init(&c->datagram_to_ack, HISTO_DATAGRAM_ACK_US, HISTO_DATAGRAM_ACK_N);
}

size_t counters_format(const struct counters *c, const struct counters_gauges *g, char *out,
                       size_t len)
{
    struct line l = {out, len, 0};
    if (len > 0)
        out[0] = '\0';
    for (int grp = 0; grp < COUNTERS_GROUPS; grp++)
        group(&l, (enum counters_group)grp, c, g);
    return l.used;
}

void counters_report(const struct counters *c, const struct counters_gauges *g,
                     const char *stats_path, int loud, const char *tail)
{
    char line[COUNTERS_LINE_MAX];
    counters_format(c, g, line, sizeof line);
    if (loud)
        log_warn("counters: %s", line);
    if (stats_path == NULL)
        return;
    size_t n = COUNTERS_LINE_MAX + 100 + (tail != NULL ? strlen(tail) : 0);
    char *text = malloc(n);
    if (text == NULL)
        return;
    snprintf(text, n, "counters: %s\n%s", line, tail != NULL ? tail : "");
    /* O_EXCL|O_NOFOLLOW temp file + rename: a link planted there is never followed */
    if (statsfile_write(stats_path, text) != 0 && loud)
        log_info("cannot write %s: %s", stats_path, strerror(errno));
    free(text);
}
