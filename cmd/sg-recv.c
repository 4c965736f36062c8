/*
 * sg-recv: shows messages from the database as JSON, marking inbound ones as
 * read (atomically: two readers never both get one unread message).
 */
#define _GNU_SOURCE
#include "tools/rowsout.h"
#include "util/clock.h"
#include "wire/message.h"
#include "util/net.h"
#include "store/store.h"
#include "util/strict.h"
#include "tools/tool.h"
#include "util/version.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "sg-recv"
#define LIMIT_DEFAULT 20
#define INTERVAL_DEFAULT_S 1.0
#define INTERVAL_MIN_S 0.01
#define INTERVAL_MAX_S 3600.0

static const char usage_text[] =
    "Usage: sg-recv [options]\n"
    "\n"
    "Shows messages from the securedgram database as JSON: a pretty-printed array,\n"
    "newest first, one object per row with every column of its table; the payload\n"
    "is shown as the JSON it holds (as a string if it is not valid JSON).\n"
    "\n"
    "By default it shows unread inbound messages (read_count = 0) and marks them\n"
    "read: each one's read_count goes up by one (the output shows the count as it\n"
    "was). Marking is atomic: two sg-recv started together never both show the same\n"
    "unread message.\n"
    "\n"
    "Options:\n"
    "  -n, --limit N         show at most the newest N rows [20]; 0 shows all\n"
    "  -o, --outbound        show outbound messages instead (never marked)\n"
    "  -s, --state STATE     only rows in STATE (inbound: received, ack_sent,\n"
    "                        ack_failed; outbound: pending, sending, sent,\n"
    "                        acknowledged, send_failed)\n"
    "      --from ADDR       only inbound messages from this sender address\n"
    "      --to ADDR         only outbound messages to this address (with -o)\n"
    "      --peer NAME       only messages from this peer of the daemon's peers file\n"
    "                        (with -o: to it); rows of the shared secret have\n"
    "                        \"peer\": null\n"
    "  -i, --id ID           only the row with this id, or this 24-hex message_id,\n"
    "                        whether read or not; prints the object itself (no array)\n"
    "                        and fails if there is no such row\n"
    "  -r, --read-included   inbound: show read messages too\n"
    "      --no-mark         do not mark the rows shown as read\n"
    "  -f, --follow          show each new matching row as it arrives (oldest first),\n"
    "                        until interrupted (Ctrl-C, TERM); each row is printed as\n"
    "                        a JSON value of its own. Only rows that arrive after it\n"
    "                        starts (a line on stderr says from which id), unless\n"
    "                        --since-id or --backlog is given\n"
    "      --backlog         with --follow: first show the newest matching rows that\n"
    "                        are already there (at most --limit of them)\n"
    "      --interval SECS   with --follow: check the database at least this often\n"
    "                        [1.0]; new rows are usually noticed at once\n"
    "      --since-id ID     only rows with id greater than ID (with --follow: every\n"
    "                        such row, then the new ones)\n"
    "  -c, --compact         one compact JSON value per line instead of an array\n"
    "  -p, --payload-only    show only the payloads\n"
    "      --db DB           the database: a SQLite file or a postgresql:// URI\n"
    "                        [SECUREDGRAM_DB from the environment or ./.env, else\n"
    "                        securedgram.db]\n"
    "  -V, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "Exit status: 0 on success (also when nothing matches, except with --id); 1 on\n"
    "any error, reported as one line starting with \"ERROR:\" on stderr. If the output\n"
    "cannot be written, the rows it held are marked unread again.\n";

struct opts {
    int outbound, read_included, no_mark, follow, backlog, compact, payload_only;
    const char *state, *from, *to, *id_text, *db, *peer;
    int64_t limit, since_id;
    double interval;
    int interval_set, since_set;
    int64_t id;
    const char *message_id;
    char mid[MESSAGE_ID_LEN + 1];
    char canon[NET_HOST_MAX], mapped[NET_HOST_MAX + 8];
};

enum { OPT_FROM = 256, OPT_TO, OPT_NO_MARK, OPT_INTERVAL, OPT_SINCE_ID, OPT_BACKLOG, OPT_PEER };

static int parse_int64(const char *s, int64_t min, int64_t *out)
{
    uint64_t v;
    if (strict_u64(s, (uint64_t)min, INT64_MAX, &v) != 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Handles one option; returns 0, 1 on an error (reported), -1 when done. */
static int take_option(int c, char **argv, struct opts *o)
{
    switch (c) {
    case 'n':
        if (parse_int64(optarg, 0, &o->limit) != 0)
            return tool_fail("--limit: '%s' is not a whole number of rows (0 shows all)", optarg);
        break;
    case 'o':
        o->outbound = 1;
        break;
    case 's':
        o->state = optarg;
        break;
    case OPT_FROM:
        o->from = optarg;
        break;
    case OPT_TO:
        o->to = optarg;
        break;
    case OPT_PEER:
        o->peer = optarg;
        break;
    case 'i':
        o->id_text = optarg;
        break;
    case 'r':
        o->read_included = 1;
        break;
    case OPT_NO_MARK:
        o->no_mark = 1;
        break;
    case 'f':
        o->follow = 1;
        break;
    case OPT_BACKLOG:
        o->backlog = 1;
        break;
    case OPT_INTERVAL:
        if (strict_double(optarg, INTERVAL_MIN_S, INTERVAL_MAX_S, &o->interval) != 0)
            return tool_fail("--interval: '%s' is not a number of seconds (%g to %g)", optarg,
                             INTERVAL_MIN_S, INTERVAL_MAX_S);
        o->interval_set = 1;
        break;
    case OPT_SINCE_ID:
        if (parse_int64(optarg, 0, &o->since_id) != 0)
            return tool_fail("--since-id: '%s' is not a row id", optarg);
        o->since_set = 1;
        break;
    case 'c':
        o->compact = 1;
        break;
    case 'p':
        o->payload_only = 1;
        break;
    default:
        return tool_common_option(PROG, usage_text, c, argv, &o->db);
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"limit", required_argument, NULL, 'n'},
        {"outbound", no_argument, NULL, 'o'},
        {"state", required_argument, NULL, 's'},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"peer", required_argument, NULL, OPT_PEER},
        {"id", required_argument, NULL, 'i'},
        {"read-included", no_argument, NULL, 'r'},
        {"no-mark", no_argument, NULL, OPT_NO_MARK},
        {"follow", no_argument, NULL, 'f'},
        {"backlog", no_argument, NULL, OPT_BACKLOG},
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"since-id", required_argument, NULL, OPT_SINCE_ID},
        {"compact", no_argument, NULL, 'c'},
        {"payload-only", no_argument, NULL, 'p'},
        {"db", required_argument, NULL, TOOL_OPT_DB},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, ":n:os:i:rfcpVh", longopts, NULL)) != -1)
        if ((rc = take_option(c, argv, o)) != 0)
            return rc;
    if (optind < argc)
        return tool_fail("unexpected argument '%s' (see sg-recv --help)", argv[optind]);
    return 0;
}

/* Canonical text of an address for --from/--to; returns 0 or 1 (reported). */
static int address(struct opts *o, const char *opt, const char *text)
{
    struct net_addr a;
    unsigned port;
    if (net_addr_parse(text, 1, &a) != 0)
        return tool_fail("%s: '%s' is not an IPv4 or IPv6 address", opt, text);
    net_addr_format(&a, o->canon, &port);
    if (strchr(o->canon, ':') == NULL)
        snprintf(o->mapped, sizeof o->mapped, "::ffff:%s", o->canon);
    return 0;
}

/* Checks the combination of options. Returns 0 or 1 (reported). */
static int check_args(struct opts *o)
{
    if (o->from != NULL && o->outbound)
        return tool_fail("%s", "--from filters inbound messages; with --outbound use --to");
    if (o->to != NULL && !o->outbound)
        return tool_fail("%s", "--to filters outbound messages; add --outbound (-o)");
    if (o->interval_set && !o->follow)
        return tool_fail("%s", "--interval applies only with --follow");
    if (o->backlog && !o->follow)
        return tool_fail("%s", "--backlog applies only with --follow");
    if (o->id_text != NULL && o->follow)
        return tool_fail("%s", "--id shows one message; it cannot be used with --follow");
    if (o->id_text != NULL && o->since_set)
        return tool_fail("%s", "--id shows one message; it cannot be used with --since-id");
    if (o->state != NULL) {
        int active = 0;
        enum store_table want = o->outbound ? STORE_OUTBOUND : STORE_INBOUND;
        if (store_state_table(o->state, &active) != (int)want)
            return tool_fail("--state: '%s' is not an %s state (%s)", o->state,
                             o->outbound ? "outbound" : "inbound", store_states_text(want));
    }
    if (o->id_text != NULL) {
        /* A message_id in any case and with blanks around, as the original takes it. */
        const char *t = o->id_text;
        while (isspace((unsigned char)*t))
            t++;
        size_t k = 0;
        for (; k < MESSAGE_ID_LEN && t[k] != '\0'; k++)
            o->mid[k] = (char)tolower((unsigned char)t[k]);
        o->mid[k] = '\0';
        size_t rest = k;
        while (isspace((unsigned char)t[rest]))
            rest++;
        if (t[rest] == '\0' && message_id_valid(o->mid))
            o->message_id = o->mid;
        else if (parse_int64(o->id_text, 1, &o->id) != 0)
            return tool_fail("--id: '%s' is neither a row id nor a 24-hex message_id", o->id_text);
    }
    if (o->peer != NULL && tool_check_peer(o->peer) != 0)
        return 1;
    if (o->from != NULL && address(o, "--from", o->from) != 0)
        return 1;
    if (o->to != NULL && address(o, "--to", o->to) != 0)
        return 1;
    return 0;
}

/* ---- the work ---- */

struct run {
    struct opts *o;
    struct store *st;
    struct store_query q;
    struct rowsout w;
    struct store_record rec; /* the row being written */
    int64_t max_id;          /* the largest id picked so far */
};

/* The error for --id when no row matches; returns 1. */
static int no_such_row(const struct run *r)
{
    return tool_fail("no %s message with %s %s%s", r->o->outbound ? "outbound" : "inbound",
                     r->o->message_id != NULL ? "message_id" : "id", r->o->id_text,
                     r->o->state != NULL || r->o->from != NULL || r->o->to != NULL ||
                             r->o->peer != NULL
                         ? " that matches the filters"
                         : "");
}

/*
 * Reads and writes the claimed rows c[0..n) one at a time. Returns 0, or -1
 * with the reason in err (a database error) or in errno (the output failed:
 * err is then "").
 */
static int write_rows(struct run *r, const struct store_selected *c, size_t n, char *err,
                      size_t errlen)
{
    struct rowsout *w = &r->w;
    err[0] = '\0';
    for (size_t k = 0; k < n && !rowsout_failed(w); k++) {
        int found = 0;
        if (store_fetch(r->st, r->q.table, &c[k], &r->rec, &found, err, errlen) != STORE_OK)
            return -1;
        if (found)
            rowsout_row(w, &r->rec);
        if (c[k].id > r->max_id)
            r->max_id = c[k].id;
    }
    return rowsout_finish(w);
}

/*
 * Runs one query and writes what it found. On a failed write the rows that
 * were marked are marked unread again. Returns 0 or 1 (reported).
 */
static int batch(struct run *r)
{
    char err[512], why[512];
    struct store_selected *c = NULL;
    size_t n = 0;
    struct rowsout *w = &r->w;
    rowsout_start(w);
    if (store_select(r->st, &r->q, clock_real_ms(), &c, &n, err, sizeof err) != STORE_OK)
        return tool_fail("%s", err);
    if (w->layout == ROWSOUT_SINGLE && n == 0)
        return no_such_row(r);
    int rc = 0;
    if (write_rows(r, c, n, why, sizeof why) != 0) {
        const char *what = why[0] != '\0' ? "cannot read the rows" : "cannot write the output";
        const char *detail = why[0] != '\0' ? why : strerror(errno);
        if (r->q.mark && n > 0 && !r->o->outbound) {
            if (store_unmark(r->st, c, n, clock_real_ms(), err, sizeof err) != STORE_OK)
                rc = tool_fail("%s (%s), and cannot mark its %zu rows unread again: %s", what,
                               detail, n, err);
            else
                rc = tool_fail("%s (%s); its %zu rows stay unread", what, detail, n);
        } else {
            rc = tool_fail("%s: %s", what, detail);
        }
    } else if (w->layout == ROWSOUT_SINGLE && w->rows == 0) {
        rc = no_such_row(r); /* deleted between the claim and the read */
    }
    free(c);
    return rc;
}

static int stop_pipe[2] = {-1, -1};

static void on_stop(int sig)
{
    (void)sig;
    int saved = errno;
    if (write(stop_pipe[1], "x", 1) < 0) {
        /* the pipe is full: a stop is already pending */
    }
    errno = saved;
}

static int catch_stop_signals(void)
{
    if (pipe(stop_pipe) != 0)
        return -1;
    for (int k = 0; k < 2; k++) {
        int fl = fcntl(stop_pipe[k], F_GETFL);
        if (fl < 0 || fcntl(stop_pipe[k], F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(stop_pipe[k], F_SETFD, FD_CLOEXEC) != 0)
            return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return -1;
    return 0;
}

/*
 * Where --follow starts, as the original: without --since-id, after the
 * table's last row (every row, whatever the filters), said so on stderr; with
 * it, after that id. Either way every row past it is shown. --backlog keeps
 * the query as it is: the newest --limit rows first. Returns 0 or 1 (reported).
 */
static int follow_start(struct run *r)
{
    char err[512];
    int64_t last = 0;
    if (r->o->backlog)
        return 0;
    r->q.limit = 0;
    if (r->o->since_set && r->o->since_id > 0) /* the original takes --since-id 0 as none */
        return 0;
    if (store_max_id(r->st, r->q.table, &last, err, sizeof err) != STORE_OK)
        return tool_fail("%s", err);
    r->q.after_id = last;
    fprintf(stderr, "Following new messages (since id %lld). Press Ctrl+C to stop.\n",
            (long long)last);
    return 0;
}

/* --follow: new rows as they come (after the backlog, if asked), until a stop signal. */
static int follow(struct run *r)
{
    if (catch_stop_signals() != 0)
        return tool_fail("cannot set up signal handling: %s", strerror(errno));
    int ctl = tool_subscribe(r->o->db); /* woken by the daemon's commits, where one runs here */
    if (follow_start(r) != 0) {
        if (ctl >= 0)
            close(ctl);
        return 1;
    }
    int ms = (int)(r->o->interval * 1000.0 + 0.5);
    if (store_watch_start(r->st, ms, clock_mono_us()) != STORE_OK) {
        if (ctl >= 0)
            close(ctl);
        return tool_fail("cannot watch the database: %s", store_errmsg(r->st));
    }
    int rc = 0;
    r->max_id = r->q.after_id;
    while ((rc = batch(r)) == 0) {
        /* After the first batch: every row past the last one shown. */
        r->q.after_id = r->max_id;
        r->q.limit = 0;
        enum tool_wait wr = tool_wait(r->st, -1, stop_pipe[0], &ctl);
        if (wr == TOOL_STOPPED) {
            fputs("\nStopped.\n", stderr); /* as the original says on Ctrl-C */
            break;
        }
        if (wr == TOOL_WAIT_ERR) {
            rc = tool_fail("cannot watch the database: %s", store_errmsg(r->st));
            break;
        }
    }
    for (int k = 0; k < 2; k++)
        close(stop_pipe[k]);
    if (ctl >= 0)
        close(ctl);
    return rc;
}

static void setup_query(struct run *r)
{
    struct opts *o = r->o;
    struct store_query *q = &r->q;
    q->table = o->outbound ? STORE_OUTBOUND : STORE_INBOUND;
    q->state = o->state;
    const char *addr = o->outbound ? o->to : o->from;
    if (addr != NULL) {
        int k = 0;
        q->addr[k++] = addr;
        q->addr[k++] = o->canon;
        if (o->mapped[0] != '\0')
            q->addr[k++] = o->mapped;
    }
    q->unread_only = !o->outbound && !o->read_included && o->id_text == NULL;
    q->after_id = o->since_id;
    q->id = o->id;
    q->message_id = o->message_id;
    q->limit = o->id_text != NULL ? 0 : o->limit;
    q->oldest_first = o->follow;
    q->mark = !o->outbound && !o->no_mark;
    r->w.indent = o->compact ? 0 : 2;
    r->w.payload_only = o->payload_only;
    q->peer = o->peer;
    r->w.layout = o->id_text != NULL        ? ROWSOUT_SINGLE
                  : o->follow || o->compact ? ROWSOUT_EACH
                                            : ROWSOUT_ARRAY;
}

int main(int argc, char **argv)
{
    struct opts o = {.limit = LIMIT_DEFAULT, .interval = INTERVAL_DEFAULT_S};
    struct run r = {.o = &o};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if ((rc = check_args(&o)) != 0)
        return rc;
    /* A reader that goes away (sg-recv | head) must not take marked rows with it. */
    signal(SIGPIPE, SIG_IGN);
    rowsout_init(&r.w);
    setup_query(&r);
    if ((r.st = tool_open(o.db)) == NULL)
        rc = 1;
    else
        rc = o.follow ? follow(&r) : batch(&r);
    store_close(r.st);
    store_record_free(&r.rec);
    rowsout_free(&r.w);
    return rc;
}
