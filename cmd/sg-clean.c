/*
 * sg-clean: deletes old finished messages (by updated_at), after a report and
 * a question.
 */
#define _GNU_SOURCE
#include "store/store.h"
#include "tools/timeparse.h"
#include "tools/tool.h"
#include "util/clock.h"
#include "util/version.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PROG "sg-clean"

static const char usage_text[] =
    "Usage: sg-clean [options] AGE\n"
    "       sg-clean [options] --before DATETIME\n"
    "\n"
    "Deletes messages from the securedgram database whose updated_at is older than\n"
    "a cutoff: by default only finished ones (outbound: acknowledged, send_failed;\n"
    "inbound: ack_sent, ack_failed, and only once read). It prints the cutoff and\n"
    "what it would delete, table by table and state by state, asks before deleting\n"
    "(on stderr; only y, in any case, from standard input deletes), deletes in one\n"
    "transaction, then runs VACUUM. It is safe to run while the daemon runs.\n"
    "\n"
    "  AGE                  N followed by s, m, h, d or w (seconds, minutes, hours,\n"
    "                       days, weeks): the cutoff is that long ago, e.g. 30d;\n"
    "                       or a DATETIME, as with --before\n"
    "      --before DATETIME  the cutoff as ISO 8601: 2025-01-31, 2025-01-31T12:00,\n"
    "                       2025-01-31T12:00:00.5, with Z or an offset such as\n"
    "                       +02:00 for a time in that zone; without one, local time\n"
    "                       (an AGE is taken too)\n"
    "\n"
    "Options:\n"
    "  -y, --yes            do not ask\n"
    "      --dry-run        only report what would be deleted\n"
    "      --no-vacuum      do not run VACUUM after deleting\n"
    "      --outbound-only  only outbound_messages\n"
    "      --inbound-only   only inbound_messages\n"
    "      --include-unread  inbound: also messages never read (read_count = 0)\n"
    "  -s, --state STATE    only rows in STATE (acknowledged, send_failed, ack_sent,\n"
    "                       ack_failed; or, with --all-states, pending, sending,\n"
    "                       sent, received)\n"
    "      --peer NAME      only messages from and to this peer of the daemon's peers\n"
    "                       file\n"
    "      --all-states     rows in any state, read or unread, including those the\n"
    "                       daemon is still working on (pending, sending, sent,\n"
    "                       received) (DANGEROUS)\n"
    "      --json           print the report as one JSON object instead of text\n"
    "      --db DB          the database: a SQLite file or a postgresql:// URI\n"
    "                       [SECUREDGRAM_DB from the environment or ./.env, else\n"
    "                       securedgram.db]\n"
    "  -V, --version        print the version and exit\n"
    "  -h, --help           print this help and exit\n"
    "\n"
    "Timestamps are stored in UTC; the cutoff is compared in UTC (the report shows\n"
    "it in local time, as the original does; --json gives it in UTC).\n"
    "Exit status: 0 on success, also when nothing matches or the answer is no;\n"
    "1 on any error, reported as one line starting with \"ERROR:\" on stderr, and then\n"
    "nothing is deleted.\n";

struct opts {
    const char *age, *before, *state, *db, *peer;
    int yes, dry_run, no_vacuum, outbound_only, inbound_only, include_unread, all_states, json;
    int tables;                      /* STORE_INBOUND, STORE_OUTBOUND flags */
    char cutoff[TIMEPARSE_TEXT_LEN]; /* UTC, as the database stores times */
    char shown[32];                  /* local time, as the original prints it */
};

enum {
    OPT_BEFORE = 256,
    OPT_DRY_RUN,
    OPT_NO_VACUUM,
    OPT_OUTBOUND_ONLY,
    OPT_INBOUND_ONLY,
    OPT_INCLUDE_UNREAD,
    OPT_ALL_STATES,
    OPT_JSON,
    OPT_PEER
};

/* Sets the flag of a long option without a value; 0 if c is not one. */
static int take_flag(int c, struct opts *o)
{
    int *flag = c == 'y'                  ? &o->yes
                : c == OPT_DRY_RUN        ? &o->dry_run
                : c == OPT_NO_VACUUM      ? &o->no_vacuum
                : c == OPT_OUTBOUND_ONLY  ? &o->outbound_only
                : c == OPT_INBOUND_ONLY   ? &o->inbound_only
                : c == OPT_INCLUDE_UNREAD ? &o->include_unread
                : c == OPT_ALL_STATES     ? &o->all_states
                : c == OPT_JSON           ? &o->json
                                          : NULL;
    if (flag == NULL)
        return 0;
    *flag = 1;
    return 1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"before", required_argument, NULL, OPT_BEFORE},
        {"yes", no_argument, NULL, 'y'},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"no-vacuum", no_argument, NULL, OPT_NO_VACUUM},
        {"outbound-only", no_argument, NULL, OPT_OUTBOUND_ONLY},
        {"inbound-only", no_argument, NULL, OPT_INBOUND_ONLY},
        {"include-unread", no_argument, NULL, OPT_INCLUDE_UNREAD},
        {"state", required_argument, NULL, 's'},
        {"all-states", no_argument, NULL, OPT_ALL_STATES},
        {"peer", required_argument, NULL, OPT_PEER},
        {"json", no_argument, NULL, OPT_JSON},
        {"db", required_argument, NULL, TOOL_OPT_DB},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":ys:Vh", longopts, NULL)) != -1) {
        if (take_flag(c, o))
            continue;
        if (c == OPT_BEFORE) {
            o->before = optarg;
        } else if (c == 's') {
            o->state = optarg;
        } else if (c == OPT_PEER) {
            o->peer = optarg;
        } else {
            int r = tool_common_option(PROG, usage_text, c, argv, &o->db);
            if (r != 0)
                return r;
        }
    }
    if (optind < argc)
        o->age = argv[optind++];
    if (optind < argc)
        return tool_fail("unexpected argument '%s' (see sg-clean --help)", argv[optind]);
    return 0;
}

/* ---- the cutoff ---- */

/*
 * A cutoff as the original reads either argument: an age (that long before
 * now), else an ISO 8601 datetime. Returns 0 and sets *ms, or -1.
 */
static int parse_cutoff(const char *text, int64_t *ms)
{
    int64_t secs;
    struct timeparse_tm tm;
    if (timeparse_age(text, &secs) == 0) {
        *ms = (int64_t)(clock_real_ns() / 1000000) - secs * 1000;
        return 0;
    }
    if (timeparse_iso8601(text, &tm) == 0 && timeparse_to_ms(&tm, ms) == 0)
        return 0;
    return -1;
}

/* Writes s as Ruby's String#inspect would show it, for the original's error lines. */
static void inspect(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    out[n++] = '"';
    for (; *s != '\0' && n + 6 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            n += (size_t)snprintf(out + n, outlen - n, "\\%c", c);
        else if (c == '\n' || c == '\t')
            n += (size_t)snprintf(out + n, outlen - n, "\\%c", c == '\n' ? 'n' : 't');
        else if (c < 0x20 || c == 0x7f)
            n += (size_t)snprintf(out + n, outlen - n, "\\x%02X", c);
        else
            out[n++] = (char)c;
    }
    out[n++] = '"';
    out[n] = '\0';
}

/* The cutoff as the original's report shows it: local time, to the second. */
static void format_local(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        out[0] = '\0';
}

/* Sets o->cutoff and o->shown from AGE or --before. Returns 0 or 1 (reported). */
static int make_cutoff(struct opts *o)
{
    int64_t ms;
    char shown[256];
    if (o->age != NULL && o->before != NULL)
        return tool_fail("give AGE or --before, not both (see sg-clean --help)");
    if (o->age == NULL && o->before == NULL)
        return tool_fail("Missing required age argument. Give an AGE such as 30d, or --before "
                         "DATETIME (see sg-clean --help).");
    if (o->before != NULL && parse_cutoff(o->before, &ms) != 0) {
        inspect(o->before, shown, sizeof shown);
        return tool_fail("Cannot parse --before value: %s (expected ISO 8601 format: YYYY-MM-DD "
                         "or YYYY-MM-DDTHH:MM:SS, optionally with Z or an offset)",
                         shown);
    }
    if (o->age != NULL && parse_cutoff(o->age, &ms) != 0) {
        inspect(o->age, shown, sizeof shown);
        return tool_fail("Cannot parse age: %s (expected <number><suffix> where suffix is "
                         "s/m/h/d/w, such as 7d, 24h, 30m, 3600s, 4w; or ISO 8601: YYYY-MM-DD, "
                         "YYYY-MM-DDTHH:MM:SS)",
                         shown);
    }
    if (timeparse_format_utc(ms, o->cutoff) != 0)
        return tool_fail("the cutoff falls outside the years 0001 to 9999");
    format_local(ms, o->shown);
    return 0;
}

/* Checks the table and state options; sets o->tables. Returns 0 or 1 (reported). */
static int check_selection(struct opts *o)
{
    if (o->outbound_only && o->inbound_only)
        return tool_fail("--outbound-only and --inbound-only are mutually exclusive.");
    o->tables = o->outbound_only  ? STORE_OUTBOUND
                : o->inbound_only ? STORE_INBOUND
                                  : STORE_OUTBOUND | STORE_INBOUND;
    if (o->peer != NULL && tool_check_peer(o->peer) != 0)
        return 1;
    if (o->state == NULL)
        return 0;
    int active = 0, t = store_state_table(o->state, &active);
    if (t == 0)
        return tool_fail("--state: '%s' is not a state (outbound: %s; inbound: %s)", o->state,
                         store_states_text(STORE_OUTBOUND), store_states_text(STORE_INBOUND));
    if (active && !o->all_states)
        return tool_fail("--state: '%s' is an active state (the daemon is still working on "
                         "such rows); add --all-states to delete them anyway",
                         o->state);
    if ((o->tables & t) == 0)
        return tool_fail("--state: '%s' is an %s state; it cannot be used with %s", o->state,
                         t == STORE_OUTBOUND ? "outbound" : "inbound",
                         o->inbound_only ? "--inbound-only" : "--outbound-only");
    return 0;
}

/* ---- the report ---- */

struct table_report {
    struct store_purge p;
    const char *label; /* "Outbound" or "Inbound", as the original's report names them */
    struct store_state_count *by_state;
    size_t nstates;
    int64_t total;
    int64_t unreadable; /* rows selected but for their age, whose updated_at is no timestamp */
    int64_t deleted;
};

/* What happened, for the end of the report. */
enum outcome { NOTHING, DRY_RUN, CANCELLED, DELETED };

struct report {
    const struct opts *o;
    struct table_report t[2];
    const char *one_state[2];
    size_t nt;
    int64_t total, deleted, unreadable;
    enum outcome outcome;
    int vacuumed;
};

/* The original lists the states by count, most first. */
static int by_count(const void *a, const void *b)
{
    const struct store_state_count *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return strcmp(x->state, y->state);
}

static const char *const outbound_done[] = {"acknowledged", "send_failed", NULL};
static const char *const inbound_done[] = {"ack_sent", "ack_failed", NULL};

/*
 * Fills the purge of one table from the options, as the original selects:
 * --state alone, else the finished states unless --all-states; inbound rows
 * only once read, unless --include-unread or --all-states.
 */
static void setup_table(struct report *r, enum store_table table)
{
    const struct opts *o = r->o;
    struct table_report *t = &r->t[r->nt++];
    t->p.table = table;
    t->p.before = o->cutoff;
    t->p.peer = o->peer;
    t->label = table == STORE_OUTBOUND ? "Outbound" : "Inbound";
    t->p.read_only = table == STORE_INBOUND && !o->include_unread && !o->all_states;
    if (o->state != NULL)
        t->p.states = r->one_state;
    else if (!o->all_states)
        t->p.states = table == STORE_OUTBOUND ? outbound_done : inbound_done;
}

/* Counts what each table would lose. Returns 0 or 1 (reported). */
static int count_tables(struct store *st, struct report *r)
{
    char err[512];
    for (size_t k = 0; k < r->nt; k++) {
        struct table_report *t = &r->t[k];
        if (store_purge_count(st, &t->p, &t->by_state, &t->nstates, err, sizeof err) != STORE_OK ||
            store_purge_unreadable(st, &t->p, &t->unreadable, err, sizeof err) != STORE_OK)
            return tool_fail("%s", err);
        for (size_t i = 0; i < t->nstates; i++)
            t->total += t->by_state[i].n;
        if (t->nstates > 1)
            qsort(t->by_state, t->nstates, sizeof *t->by_state, by_count);
        r->total += t->total;
        r->unreadable += t->unreadable;
    }
    return 0;
}

/* The original's report, up to the question. */
static void print_counts(const struct report *r)
{
    printf("Cutoff: %s (messages last updated before this time)\n", r->o->shown);
    if (r->o->peer != NULL)
        printf("Peer: %s (only messages from and to it)\n", r->o->peer);
    printf("\n");
    for (size_t k = 0; k < r->nt; k++) {
        const struct table_report *t = &r->t[k];
        printf("  %s: %lld rows to delete\n", t->label, (long long)t->total);
        for (size_t i = 0; i < t->nstates; i++)
            printf("    %s: %lld\n", t->by_state[i].state, (long long)t->by_state[i].n);
    }
    printf("\n");
}

/*
 * Rows whose updated_at is not a timestamp have no age, so no cutoff selects
 * them: they are kept, and said so on stderr (the report on stdout stays the
 * original's), the same way in a dry run and a real one.
 */
static void warn_unreadable(int64_t n)
{
    if (n == 0)
        return;
    fprintf(stderr,
            "WARNING: %lld row%s an updated_at that is not a timestamp; %s kept (see "
            "sg-clean(1))\n",
            (long long)n, n == 1 ? " has" : "s have", n == 1 ? "it is" : "they are");
}

/* Asks on stderr, as the original; 1 if the answer from stdin is y or Y (trimmed). */
static int confirm(int64_t total)
{
    fprintf(stderr, "Delete %lld rows? [y/N] ", (long long)total);
    fflush(stderr);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    int yes = 0;
    if (n >= 0) {
        char *s = line, *e = line + n;
        while (s < e && (isspace((unsigned char)*s) || *s == '\0'))
            s++;
        while (e > s && (isspace((unsigned char)e[-1]) || e[-1] == '\0'))
            e--;
        yes = e - s == 1 && (*s == 'y' || *s == 'Y');
    }
    free(line);
    return yes;
}

/* Deletes (only from the tables with rows to delete, as the original), then vacuums. */
static int purge(struct store *st, struct report *r)
{
    char err[512];
    struct store_purge p[2];
    int64_t deleted[2] = {0, 0};
    struct table_report *which[2];
    size_t n = 0;
    for (size_t k = 0; k < r->nt; k++)
        if (r->t[k].total > 0) {
            which[n] = &r->t[k];
            p[n++] = r->t[k].p;
        }
    if (store_purge(st, p, n, deleted, err, sizeof err) != STORE_OK)
        return tool_fail("%s Nothing was deleted.", err);
    r->outcome = DELETED;
    for (size_t k = 0; k < n; k++) {
        which[k]->deleted = deleted[k];
        r->deleted += deleted[k];
        if (!r->o->json)
            printf("  %s: %lld rows deleted\n", which[k]->label, (long long)deleted[k]);
    }
    if (!r->o->json)
        printf("\nTotal: %lld rows deleted.\n", (long long)r->deleted);
    if (r->o->no_vacuum)
        return 0;
    if (!r->o->json)
        printf("Running VACUUM to reclaim disk space...\n");
    fflush(stdout);
    if (store_vacuum(st, err, sizeof err) != STORE_OK) {
        fprintf(stderr, "WARNING: the rows are deleted, but VACUUM failed: %s\n", err);
        return 0;
    }
    r->vacuumed = 1;
    if (!r->o->json)
        printf("VACUUM complete.\n");
    return 0;
}

/* ---- --json ---- */

/*
 * One table's part of the report. A state name is database text: any byte
 * that is not UTF-8 shows as U+FFFD, and states that then read the same
 * (or were cut to the same length) are one key with their sum,
 * as the text report would show them.
 */
static json_t *json_table(const struct table_report *t)
{
    json_t *by = json_object();
    for (size_t i = 0; by != NULL && i < t->nstates; i++) {
        json_t *name = tool_json_text(t->by_state[i].state, strlen(t->by_state[i].state));
        const char *key = name ? json_string_value(name) : NULL;
        json_int_t before = key ? json_integer_value(json_object_get(by, key)) : 0;
        if (key == NULL || json_object_set_new(
                               by, key, json_integer(before + (json_int_t)t->by_state[i].n)) != 0) {
            json_decref(by);
            by = NULL;
        }
        json_decref(name);
    }
    return json_pack("{s:I, s:o, s:I, s:I}", "to_delete", (json_int_t)t->total, "by_state", by,
                     "deleted", (json_int_t)t->deleted, "kept_unreadable",
                     (json_int_t)t->unreadable);
}

/* The whole report as one JSON object (see sg-clean(1)). Returns 0 or 1 (reported). */
static int print_json(const struct report *r)
{
    static const char *const outcomes[] = {"nothing_to_delete", "dry_run", "cancelled", "deleted"};
    json_t *v = r->o->peer != NULL
                    ? json_pack("{s:s, s:s}", "cutoff", r->o->cutoff, "peer", r->o->peer)
                    : json_pack("{s:s}", "cutoff", r->o->cutoff);
    for (size_t k = 0; v != NULL && k < r->nt; k++) {
        const char *name = r->t[k].p.table == STORE_OUTBOUND ? "outbound" : "inbound";
        if (json_object_set_new(v, name, json_table(&r->t[k])) != 0) {
            json_decref(v);
            v = NULL;
        }
    }
    json_t *tail =
        json_pack("{s:I, s:I, s:s, s:b}", "total_to_delete", (json_int_t)r->total, "total_deleted",
                  (json_int_t)r->deleted, "result", outcomes[r->outcome], "vacuumed", r->vacuumed);
    if (v != NULL && (tail == NULL || json_object_update(v, tail) != 0)) {
        json_decref(v);
        v = NULL;
    }
    json_decref(tail);
    return tool_print_json(v, NULL);
}

/* ---- the work ---- */

/* After the counts: nothing to do, a dry run, the question, the deletion. */
static int decide(struct store *st, struct report *r)
{
    const struct opts *o = r->o;
    if (r->total == 0) {
        r->outcome = NOTHING;
        if (!o->json)
            printf("Nothing to delete.\n");
    } else if (o->dry_run) {
        r->outcome = DRY_RUN;
        if (!o->json)
            printf("(dry run \xe2\x80\x94 no rows were deleted)\n");
    } else {
        fflush(stdout);
        if (!o->yes && !confirm(r->total)) {
            r->outcome = CANCELLED;
            if (!o->json)
                printf("Cancelled.\n");
        } else if (purge(st, r) != 0) {
            return 1;
        }
    }
    return o->json ? print_json(r) : 0;
}

static int run(const struct opts *o, struct store *st)
{
    struct report r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.one_state[0] = o->state;
    if (o->tables & STORE_OUTBOUND)
        setup_table(&r, STORE_OUTBOUND);
    if (o->tables & STORE_INBOUND)
        setup_table(&r, STORE_INBOUND);
    int rc = count_tables(st, &r);
    if (rc == 0) {
        if (!o->json)
            print_counts(&r);
        fflush(stdout);
        warn_unreadable(r.unreadable);
        rc = decide(st, &r);
    }
    for (size_t k = 0; k < 2; k++)
        free(r.t[k].by_state);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof o);
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = make_cutoff(&o)) != 0 || (rc = check_selection(&o)) != 0)
        return rc;
    struct store *st = tool_open(o.db);
    rc = st != NULL ? run(&o, st) : 1;
    store_close(st);
    if (fflush(stdout) != 0 && rc == 0)
        rc = tool_fail("cannot write the report: %s", strerror(errno));
    return rc;
}
