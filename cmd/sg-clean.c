/*
 * sg-clean: deletes old finished messages (by updated_at), after a report and
 * a question.
 */
#define _GNU_SOURCE
#include "store.h"
#include "store_admin.h"
#include "timeparse.h"
#include "tool.h"
#include "version.h"

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
    "(on stderr, answer y or yes from standard input), deletes in one transaction,\n"
    "then runs VACUUM. It is safe to run while the daemon runs.\n"
    "\n"
    "  AGE                  N followed by s, m, h, d or w (seconds, minutes, hours,\n"
    "                       days, weeks): the cutoff is that long ago, e.g. 30d\n"
    "      --before DATETIME  the cutoff as ISO 8601: 2025-01-31, 2025-01-31T12:00,\n"
    "                       2025-01-31T12:00:00.5, with Z or an offset such as\n"
    "                       +02:00 for a time in that zone; without one, local time\n"
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
    "      --all-states     rows in any state, including those the daemon is still\n"
    "                       working on (pending, sending, sent, received)\n"
    "      --db PATH        SQLite database [SECUREDGRAM_DB from the environment or\n"
    "                       ./.env, else securedgram.db]\n"
    "  -V, --version        print the version and exit\n"
    "  -h, --help           print this help and exit\n"
    "\n"
    "Timestamps are stored in UTC; the cutoff is compared in UTC.\n"
    "Exit status: 0 on success, also when nothing matches or the answer is no;\n"
    "1 on any error, reported as one line starting with \"ERROR:\" on stderr, and then\n"
    "nothing is deleted.\n";

struct opts {
    const char *age, *before, *state, *db;
    int yes, dry_run, no_vacuum, outbound_only, inbound_only, include_unread, all_states;
    int tables; /* STORE_ADMIN_* flags */
    char cutoff[TIMEPARSE_TEXT_LEN];
};

enum {
    OPT_BEFORE = 256,
    OPT_DRY_RUN,
    OPT_NO_VACUUM,
    OPT_OUTBOUND_ONLY,
    OPT_INBOUND_ONLY,
    OPT_INCLUDE_UNREAD,
    OPT_ALL_STATES
};

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
        {"db", required_argument, NULL, TOOL_OPT_DB},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":ys:Vh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BEFORE:
            o->before = optarg;
            break;
        case 'y':
            o->yes = 1;
            break;
        case OPT_DRY_RUN:
            o->dry_run = 1;
            break;
        case OPT_NO_VACUUM:
            o->no_vacuum = 1;
            break;
        case OPT_OUTBOUND_ONLY:
            o->outbound_only = 1;
            break;
        case OPT_INBOUND_ONLY:
            o->inbound_only = 1;
            break;
        case OPT_INCLUDE_UNREAD:
            o->include_unread = 1;
            break;
        case 's':
            o->state = optarg;
            break;
        case OPT_ALL_STATES:
            o->all_states = 1;
            break;
        default: {
            int r = tool_common_option(PROG, usage_text, c, argv, &o->db);
            if (r != 0)
                return r;
        }
        }
    }
    if (optind < argc)
        o->age = argv[optind++];
    if (optind < argc)
        return tool_fail("unexpected argument '%s' (see sg-clean --help)", argv[optind]);
    return 0;
}

/* Sets o->cutoff from AGE or --before. Returns 0 or 1 (reported). */
static int make_cutoff(struct opts *o)
{
    int64_t ms;
    if (o->age != NULL && o->before != NULL)
        return tool_fail("give AGE or --before, not both (see sg-clean --help)");
    if (o->age == NULL && o->before == NULL)
        return tool_fail("give an AGE (such as 30d) or --before DATETIME (see sg-clean --help)");
    if (o->age != NULL) {
        int64_t secs;
        if (timeparse_age(o->age, &secs) != 0)
            return tool_fail("AGE '%s' is not N followed by s, m, h, d or w (such as 30d)", o->age);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 - secs * 1000;
    } else {
        struct timeparse_tm tm;
        if (timeparse_iso8601(o->before, &tm) != 0 || timeparse_to_ms(&tm, &ms) != 0)
            return tool_fail("--before: '%s' is not an ISO 8601 date or date-time (such as "
                             "2025-01-31 or 2025-01-31T12:00:00Z)",
                             o->before);
    }
    if (timeparse_format_utc(ms, o->cutoff) != 0)
        return tool_fail("the cutoff falls outside the years 0001 to 9999");
    return 0;
}

/* Checks the table and state options; sets o->tables. Returns 0 or 1 (reported). */
static int check_selection(struct opts *o)
{
    if (o->outbound_only && o->inbound_only)
        return tool_fail("--outbound-only and --inbound-only cannot be used together");
    o->tables = o->outbound_only  ? STORE_ADMIN_OUTBOUND
                : o->inbound_only ? STORE_ADMIN_INBOUND
                                  : STORE_ADMIN_OUTBOUND | STORE_ADMIN_INBOUND;
    if (o->state == NULL)
        return 0;
    int active = 0, t = store_admin_state_table(o->state, &active);
    if (t == 0)
        return tool_fail("--state: '%s' is not a state (outbound: %s; inbound: %s)", o->state,
                         store_admin_states_text(STORE_ADMIN_OUTBOUND),
                         store_admin_states_text(STORE_ADMIN_INBOUND));
    if (active && !o->all_states)
        return tool_fail("--state: '%s' is an active state (the daemon is still working on "
                         "such rows); add --all-states to delete them anyway",
                         o->state);
    if ((o->tables & t) == 0)
        return tool_fail("--state: '%s' is an %s state; it cannot be used with %s", o->state,
                         t == STORE_ADMIN_OUTBOUND ? "outbound" : "inbound",
                         o->inbound_only ? "--inbound-only" : "--outbound-only");
    o->tables = t;
    return 0;
}

/* ---- the report ---- */

struct state_count {
    char name[STORE_ADMIN_STATE_MAX];
    int64_t n;
};

struct table_report {
    struct store_admin_purge p;
    const char *const *states;
    const char *label;
    struct state_count *by_state;
    size_t nstates;
    int64_t total;
    int64_t unreadable; /* rows selected but for their age, whose updated_at is no timestamp */
    int oom;
};

static void on_count(void *ctx, const char *state, int64_t n)
{
    struct table_report *t = ctx;
    struct state_count *v = realloc(t->by_state, (t->nstates + 1) * sizeof *v);
    if (v == NULL) {
        t->oom = 1;
        return;
    }
    t->by_state = v;
    snprintf(v[t->nstates].name, sizeof v->name, "%s", state);
    v[t->nstates++].n = n;
    t->total += n;
}

static const char *const outbound_done[] = {"acknowledged", "send_failed", NULL};
static const char *const inbound_done[] = {"ack_sent", "ack_failed", NULL};

/* Fills the purge of one table from the options. */
static void setup_table(const struct opts *o, enum store_admin_table table, struct table_report *t,
                        const char **one_state)
{
    t->p.table = table;
    t->p.before = o->cutoff;
    t->p.read_only = table == STORE_ADMIN_INBOUND && !o->include_unread;
    if (o->state != NULL) {
        one_state[0] = o->state;
        one_state[1] = NULL;
        t->p.states = one_state;
    } else if (!o->all_states) {
        t->p.states = table == STORE_ADMIN_OUTBOUND ? outbound_done : inbound_done;
    }
}

static void print_table(const struct table_report *t)
{
    const int in = t->p.table == STORE_ADMIN_INBOUND;
    char states[256] = "";
    if (t->p.states == NULL)
        snprintf(states, sizeof states, "any state");
    for (size_t k = 0; t->p.states != NULL && t->p.states[k] != NULL; k++) {
        size_t len = strlen(states);
        snprintf(states + len, sizeof states - len, "%s%s", k ? ", " : "", t->p.states[k]);
    }
    printf("%s (%s%s): %lld row%s\n", in ? "inbound_messages" : "outbound_messages", states,
           in ? (t->p.read_only ? "; read only" : "; read or unread") : "", (long long)t->total,
           t->total == 1 ? "" : "s");
    for (size_t k = 0; k < t->nstates; k++)
        printf("  %s: %lld\n", t->by_state[k].name, (long long)t->by_state[k].n);
}

/*
 * Rows whose updated_at is not a timestamp have no age, so no cutoff selects
 * them: they are kept, and said so on stderr (the report on stdout stays the
 * original's), the same way in a dry run and a real one.
 */
static void warn_unreadable(const struct table_report *t, size_t nt)
{
    int64_t n = 0;
    for (size_t k = 0; k < nt; k++)
        n += t[k].unreadable;
    if (n == 0)
        return;
    fprintf(stderr,
            "WARNING: %lld row%s an updated_at that is not a timestamp; %s kept (see "
            "sg-clean(1))\n",
            (long long)n, n == 1 ? " has" : "s have", n == 1 ? "it is" : "they are");
}

/* Asks on stderr; 1 if the answer from stdin is y, Y or yes (any case). */
static int confirm(int64_t total)
{
    fprintf(stderr, "Delete %lld row%s? [y/N] ", (long long)total, total == 1 ? "" : "s");
    fflush(stderr);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    int yes = 0;
    if (n < 0) {
        fputc('\n', stderr);
    } else {
        char *s = line, *e = line + n;
        while (s < e && isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        *e = '\0';
        yes = strcmp(s, "y") == 0 || strcmp(s, "Y") == 0 || strcasecmp(s, "yes") == 0;
    }
    free(line);
    return yes;
}

/* Deletes, then vacuums. Returns 0 or 1 (reported). */
static int purge(const struct opts *o, struct store *st, struct table_report *t, size_t nt)
{
    char err[512];
    struct store_admin_purge p[2];
    int64_t deleted[2] = {0, 0};
    for (size_t k = 0; k < nt; k++)
        p[k] = t[k].p;
    if (store_admin_purge(st, p, nt, deleted, err, sizeof err) != STORE_OK)
        return tool_fail("%s (nothing deleted)", err);
    int64_t sum = 0;
    for (size_t k = 0; k < nt; k++)
        sum += deleted[k];
    printf("Deleted %lld row%s", (long long)sum, sum == 1 ? "" : "s");
    for (size_t k = 0; k < nt; k++)
        printf("%s%s: %lld", k ? ", " : " (",
               p[k].table == STORE_ADMIN_INBOUND ? "inbound_messages" : "outbound_messages",
               (long long)deleted[k]);
    printf(").\n");
    fflush(stdout);
    if (o->no_vacuum || sum == 0)
        return 0;
    if (store_admin_vacuum(st, err, sizeof err) != STORE_OK)
        fprintf(stderr, "WARNING: the rows are deleted, but VACUUM failed: %s\n", err);
    else
        printf("Vacuumed the database.\n");
    return 0;
}

static int run(const struct opts *o, struct store *st)
{
    char err[512];
    struct table_report t[2];
    const char *one_state[2][2];
    size_t nt = 0;
    int rc = 1;
    memset(t, 0, sizeof t);
    static const enum store_admin_table order[2] = {STORE_ADMIN_OUTBOUND, STORE_ADMIN_INBOUND};
    for (size_t k = 0; k < 2; k++) {
        if (o->tables & order[k]) {
            setup_table(o, order[k], &t[nt], one_state[nt]);
            nt++;
        }
    }
    int64_t total = 0;
    for (size_t k = 0; k < nt; k++) {
        if (store_admin_purge_count(st, &t[k].p, on_count, &t[k], err, sizeof err) != STORE_OK) {
            tool_fail("%s", err);
            goto out;
        }
        if (t[k].oom) {
            tool_fail("out of memory");
            goto out;
        }
        if (store_admin_purge_unreadable(st, &t[k].p, &t[k].unreadable, err, sizeof err) !=
            STORE_OK) {
            tool_fail("%s", err);
            goto out;
        }
        total += t[k].total;
    }
    printf("Cutoff: %s UTC (rows last updated before it)\n", o->cutoff);
    for (size_t k = 0; k < nt; k++)
        print_table(&t[k]);
    fflush(stdout);
    warn_unreadable(t, nt);
    rc = 0;
    if (total == 0)
        printf("Nothing to delete.\n");
    else if (o->dry_run)
        printf("Dry run: nothing deleted.\n");
    else if (!o->yes && !confirm(total))
        printf("Nothing deleted.\n");
    else
        rc = purge(o, st, t, nt);
out:
    for (size_t k = 0; k < 2; k++)
        free(t[k].by_state);
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
    char *path = NULL;
    struct store *st = tool_open(o.db, &path);
    rc = st != NULL ? run(&o, st) : 1;
    store_close(st);
    free(path);
    if (fflush(stdout) != 0 && rc == 0)
        rc = tool_fail("cannot write the report: %s", strerror(errno));
    return rc;
}
