/*
 * sg-send: queues one message for the daemon (a 'pending' outbound row) and
 * prints a receipt; with --wait, also waits for the outcome.
 */
#define _GNU_SOURCE
#include "conf/peers.h"
#include "wire/envelope.h"
#include "wire/envelope_v2.h"
#include "tools/jsonout.h"
#include "wire/message.h"
#include "wire/parts.h"
#include "util/net.h"
#include "store/store.h"
#include "util/clock.h"
#include "util/strict.h"
#include "tools/tool.h"
#include "util/version.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "sg-send"
#define WAIT_DEFAULT_S 30.0
#define WAIT_MAX_S 86400.0
#define WAIT_CHECK_MS 250 /* data_version check when no inotify event comes */
/* Read at most this much; message_check_payload then applies the datagram limit. */
#define READ_MAX (PART_MAX_MESSAGE + 1)

static const char usage_text[] =
    "Usage: sg-send [options] DST_ADDR DST_PORT [JSON|-]\n"
    "       sg-send [options] --peer NAME [JSON|-]\n"
    "       sg-send [--wait[=SECS]] --retry ROW_ID\n"
    "       sg-send --retry-failed [--peer NAME]\n"
    "\n"
    "Queues a JSON message for the securedgram daemon to send: inserts a 'pending' row\n"
    "into outbound_messages and prints a receipt.\n"
    "\n"
    "The payload, a JSON object, is the JSON argument; or standard input when the\n"
    "argument is '-' or missing; or the file given with --file.\n"
    "\n"
    "Options:\n"
    "  -m, --message-id HEX  message_id of the row (24 hex digits, lowercased); if the\n"
    "                        payload has a message_id it must be the same. Without\n"
    "                        -m the payload's is used if it is 24 lowercase hex\n"
    "                        digits; otherwise the daemon makes one when it sends\n"
    "                        (replacing a payload message_id such as a UUID).\n"
    "  -f, --file PATH       read the payload from PATH\n"
    "      --peer NAME       send to this peer of the daemon's peers file (its endpoint\n"
    "                        and key) instead of DST_ADDR DST_PORT\n"
    "  -q, --quiet           print no receipt\n"
    "      --retry ROW_ID    queue the send_failed outbound row ROW_ID again: 'pending',\n"
    "                        retry_count 0, last_error cleared, the same message_id\n"
    "      --retry-failed    the same for every send_failed row (with --peer, that\n"
    "                        peer's only); prints how many\n"
    "      --wait[=SECS]     then wait until the message is acknowledged (exit 0), or\n"
    "                        has failed (exit 1, with the reason), for at most SECS\n"
    "                        seconds [30] (exit 1 on timeout)\n"
    "      --db DB           the database: a SQLite file or a postgresql:// URI\n"
    "                        [SECUREDGRAM_DB from the environment or ./.env, else\n"
    "                        securedgram.db]\n"
    "  -V, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "DST_ADDR is a numeric IPv4 or IPv6 address (or localhost); DST_PORT is 1-65535.\n"
    "NAME is 1-64 of A-Z a-z 0-9 . _ - (not starting with . or -); the row gets\n"
    "peer = NAME, dst_addr '' and dst_port 0 (the daemon ignores them for it).\n"
    "The receipt (pretty-printed JSON):\n"
    "  {\"status\": \"queued\", \"row_id\": N, \"message_id\": \"<hex>\" or null,\n"
    "   \"dst_addr\": \"...\", \"dst_port\": N}\n"
    "or, with --peer, \"peer\": \"NAME\" in place of dst_addr and dst_port.\n"
    "message_id is null when the daemon will make one. The payload must fit in one\n"
    "datagram with the message_id the daemon adds to it (with --peer, one of wire\n"
    "version 2, which carries 24 bytes less).\n"
    "\n"
    "Exit status: 0 on success; 1 on any error, reported as one line starting with\n"
    "\"ERROR:\" on stderr, and then nothing is queued.\n";

struct opts {
    const char *message_id; /* NULL, or mid: -m trimmed and lowercased */
    char mid[MESSAGE_ID_LEN + 1];
    const char *message_id_arg; /* -m as given */
    const char *file;
    const char *db;
    int quiet;
    int wait; /* 1: --wait, 2: --wait=SECS */
    double wait_s;
    const char *addr;
    const char *port_text;
    const char *json; /* NULL or "-": read stdin */
    unsigned port;
    const char *peer; /* --peer NAME, or NULL */
    int64_t retry;    /* --retry ROW_ID, or 0 */
    int retry_failed; /* --retry-failed */
};

enum { OPT_WAIT = 256, OPT_PEER, OPT_RETRY, OPT_RETRY_FAILED };

/* --retry and --retry-failed take no message: what else they may come with. 0 or 1 (reported). */
static int retry_args(const struct opts *o, int n, char **rest)
{
    const char *opt = o->retry != 0 ? "--retry" : "--retry-failed";
    if (o->retry != 0 && o->retry_failed)
        return tool_fail("%s", "--retry ROW_ID and --retry-failed are mutually exclusive");
    if (n > 0)
        return tool_fail("%s queues a row again and takes no message: unexpected argument '%s'",
                         opt, rest[0]);
    if (o->message_id_arg != NULL || o->file != NULL)
        return tool_fail("%s takes no message: --message-id and --file do not go with it", opt);
    if (o->peer != NULL && o->retry != 0)
        return tool_fail("%s", "--peer goes with --retry-failed, not --retry ROW_ID");
    if (o->wait && o->retry_failed)
        return tool_fail("%s", "--wait goes with --retry ROW_ID (one row), not --retry-failed");
    return o->peer != NULL ? tool_check_peer(o->peer) : 0;
}

/* Returns 0 to go on, 1 on an error (reported), -1 when done (help, version). */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"message-id", required_argument, NULL, 'm'},
        {"file", required_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"wait", optional_argument, NULL, OPT_WAIT},
        {"peer", required_argument, NULL, OPT_PEER},
        {"retry", required_argument, NULL, OPT_RETRY},
        {"retry-failed", no_argument, NULL, OPT_RETRY_FAILED},
        {"db", required_argument, NULL, TOOL_OPT_DB},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":m:f:qVh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            o->message_id_arg = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 'q':
            o->quiet = 1;
            break;
        case OPT_PEER:
            o->peer = optarg;
            break;
        case OPT_RETRY: {
            uint64_t id = 0;
            if (strict_u64(optarg, 1, INT64_MAX, &id) != 0)
                return tool_fail("--retry: '%s' is not a row id (a whole number from 1)", optarg);
            o->retry = (int64_t)id;
            break;
        }
        case OPT_RETRY_FAILED:
            o->retry_failed = 1;
            break;
        case OPT_WAIT:
            o->wait = optarg != NULL ? 2 : 1;
            if (optarg != NULL &&
                (strict_double(optarg, 0, WAIT_MAX_S, &o->wait_s) != 0 || o->wait_s <= 0))
                return tool_fail("--wait: '%s' is not a number of seconds (above 0, at most %.0f)",
                                 optarg, WAIT_MAX_S);
            break;
        default: {
            int r = tool_common_option(PROG, usage_text, c, argv, &o->db);
            if (r != 0)
                return r;
        }
        }
    }
    int n = argc - optind;
    double secs;
    if (o->wait == 1 && n > 0 && strict_double(argv[optind], 0, WAIT_MAX_S, &secs) == 0)
        return tool_fail("--wait takes its value after '=': --wait=%s", argv[optind]);
    if (o->retry != 0 || o->retry_failed)
        return retry_args(o, n, argv + optind);
    if (o->peer != NULL) {
        if (n >= 2)
            return tool_fail("%s", "--peer NAME and DST_ADDR DST_PORT are mutually exclusive: "
                                   "give one or the other (see sg-send --help)");
        o->json = n == 1 ? argv[optind] : NULL;
        return 0;
    }
    if (n < 2)
        return tool_fail("%s", n == 0 ? "missing DST_ADDR and DST_PORT (see sg-send --help)"
                                      : "missing DST_PORT (see sg-send --help)");
    if (n > 3)
        return tool_fail("unexpected argument '%s' (see sg-send --help)", argv[optind + 3]);
    o->addr = argv[optind];
    o->port_text = argv[optind + 1];
    o->json = n == 3 ? argv[optind + 2] : NULL;
    return 0;
}

/*
 * The -m value as the original takes it: surrounding whitespace trimmed and
 * lowercased, then it must be 24 hex digits. Returns 0 or 1 (reported).
 */
static int take_message_id(struct opts *o)
{
    const char *s = o->message_id_arg;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n != MESSAGE_ID_LEN)
        return tool_fail("--message-id '%s' is not 24 hex digits", o->message_id_arg);
    for (size_t k = 0; k < n; k++)
        o->mid[k] = (char)tolower((unsigned char)s[k]);
    o->mid[n] = '\0';
    if (!message_id_valid(o->mid))
        return tool_fail("--message-id '%s' is not 24 hex digits", o->message_id_arg);
    o->message_id = o->mid;
    return 0;
}

/* Checks DST_ADDR and DST_PORT, or the --peer NAME. Returns 0 or 1 (reported). */
static int check_dest(struct opts *o)
{
    unsigned long port;
    struct net_addr a;
    if (o->peer != NULL)
        return tool_check_peer(o->peer);
    if (o->addr == NULL || o->port_text == NULL)
        return tool_fail("%s", "DST_ADDR and DST_PORT are needed (see sg-send --help)");
    if (net_addr_parse(o->addr, 1, &a) != 0)
        return tool_fail("DST_ADDR '%s' is not an IPv4 or IPv6 address (host names are not "
                         "resolved)",
                         o->addr);
    if (strict_ulong(o->port_text, 1, 65535, &port) != 0)
        return tool_fail("DST_PORT '%s' is not a port number (1-65535)", o->port_text);
    o->port = (unsigned)port;
    return 0;
}

/* Checks the destination, the -m value and where the payload comes from. Returns 0 or 1. */
static int check_args(struct opts *o)
{
    if (check_dest(o) != 0)
        return 1;
    if (o->message_id_arg != NULL && take_message_id(o) != 0)
        return 1;
    if (o->file != NULL && o->json != NULL)
        return tool_fail("%s", "give the payload as an argument or with --file, not both");
    if (o->file == NULL && o->json == NULL && isatty(STDIN_FILENO))
        return tool_fail("%s", "no payload: give it as an argument, as '-' or with --file PATH, "
                               "or pipe it in (see sg-send --help)");
    return 0;
}

/* Reads the payload into *buf (malloc'd). Returns 0 or 1 (reported). */
static int read_payload(const struct opts *o, char **buf, size_t *len)
{
    char err[256];
    if (o->json != NULL && strcmp(o->json, "-") != 0) {
        *len = strlen(o->json);
        *buf = strdup(o->json);
        return *buf != NULL ? 0 : tool_fail("%s", "out of memory");
    }
    if (o->file == NULL) {
        if (tool_read_all(stdin, READ_MAX, buf, len, err, sizeof err) != 0)
            return tool_fail("cannot read the payload from standard input: %s", err);
        return 0;
    }
    FILE *f = fopen(o->file, "rb");
    if (f == NULL)
        return tool_fail("cannot read %s: %s", o->file, strerror(errno));
    int rc = tool_read_all(f, READ_MAX, buf, len, err, sizeof err);
    fclose(f);
    return rc == 0 ? 0 : tool_fail("cannot read %s: %s", o->file, err);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * The error for a payload of len bytes that is sent bytes with what the
 * daemon adds: over the limit of one datagram (of version 2 for a peer).
 * Returns 1.
 */
static int too_big(const struct opts *o, size_t len, size_t sent)
{
    char with[96] = "";
    if (sent != len)
        snprintf(with, sizeof with, ", %zu with the message_id the daemon adds", sent);
    if (o->peer != NULL)
        return tool_fail("payload is %zu bytes%s; one message to a peer carries at most %u "
                         "(and at most its daemon's SECUREDGRAM_MAX_MESSAGE)",
                         len, with, PART_MAX_MESSAGE);
    return tool_fail("payload is %zu bytes%s; one datagram carries at most %d (a version 2 peer, "
                     "named with --peer, takes larger messages in parts)",
                     len, with, ENVELOPE_MAX_JSON);
}

/*
 * Checks the payload as the daemon will when it sends it (message_prepare),
 * so that what sg-send queues is sent: a JSON object, its message_id, and its
 * size with what the daemon adds (a "message_id":"<24 hex>", member when it
 * has none). Sets row_id to the message_id the row carries from the start:
 * -m, else the payload's if it is 24 lowercase hex; else "" (NULL in the row:
 * the daemon makes one when it sends, replacing a payload message_id that is
 * not 24 lowercase hex, as the original does). Returns 0 or 1 (reported).
 */
static int check_as_sent(const struct opts *o, const char *p, size_t len,
                         char row_id[MESSAGE_ID_LEN + 1])
{
    char err[512], found[MESSAGE_ID_LEN + 1] = "";
    struct message_out m;
    if (o->message_id != NULL && message_check_payload(p, len, found, err, sizeof err) == 0 &&
        found[0] != '\0' && strcmp(found, o->message_id) != 0)
        return tool_fail("--message-id %s differs from the payload's message_id %s", o->message_id,
                         found);
    /* A peer of version 2 takes a message in parts, up to its daemon's SECUREDGRAM_MAX_MESSAGE
     * (the peers file is the daemon's: a version 1 peer's row fails there, saying so). */
    size_t max = o->peer != NULL ? PART_MAX_MESSAGE : ENVELOPE_MAX_JSON;
    if (message_prepare_max(p, len, o->message_id, max, &m, err, sizeof err) != 0) {
        size_t sent = 0; /* message_prepare names the size of what the daemon would send */
        if (sscanf(err, "payload is %zu bytes", &sent) == 1)
            return too_big(o, len, sent);
        return tool_fail("%s", err);
    }
    snprintf(row_id, MESSAGE_ID_LEN + 1, "%s",
             o->message_id != NULL ? o->message_id
             : m.payload_changed   ? ""
                                   : m.id);
    message_out_clear(&m);
    return 0;
}

/* Trims the payload's surrounding whitespace in place and checks it (check_as_sent). */
static int check_payload(const struct opts *o, char *p, size_t *len,
                         char row_id[MESSAGE_ID_LEN + 1])
{
    size_t start = 0, n = *len;
    if (p == NULL)
        return tool_fail("%s", "the payload is empty");
    while (start < n && is_space(p[start]))
        start++;
    while (n > start && is_space(p[n - 1]))
        n--;
    memmove(p, p + start, n - start);
    *len = n - start;
    p[*len] = '\0';
    if (*len == 0)
        return tool_fail("%s", "the payload is empty");
    return check_as_sent(o, p, *len, row_id);
}

static int print_receipt(const struct opts *o, int64_t rowid, const char *row_id)
{
    char what[64];
    snprintf(what, sizeof what, "(the message is queued as row %lld)", (long long)rowid);
    /* check_args refused a missing address or a bad peer name; all of it is ASCII */
    json_t *v =
        o->peer != NULL
            ? json_pack("{s:s, s:I, s:s?, s:s}", "status", "queued", "row_id", (json_int_t)rowid,
                        "message_id", row_id[0] ? row_id : NULL, "peer", o->peer)
            : json_pack("{s:s, s:I, s:s?, s:s, s:I}", "status", "queued", "row_id",
                        (json_int_t)rowid, "message_id", row_id[0] ? row_id : NULL, "dst_addr",
                        o->addr, "dst_port", (json_int_t)o->port);
    return tool_print_json(v, what);
}

/*
 * Waits for row rowid (to peer, if not NULL) to be acknowledged (0) or
 * failed, gone, timed out (1, reported). Woken by the daemon's commits (its
 * control socket) where one runs on this database, else by the watch.
 */
static int wait_outcome(struct store *st, const char *db_flag, int64_t rowid, const char *peer,
                        double secs)
{
    char state[STORE_STATE_MAX] = "", why[512], err[512], to[PEER_NAME_MAX + 16] = "";
    if (peer != NULL)
        snprintf(to, sizeof to, " to peer %s", peer);
    int found = 0, rc = 1;
    if (store_watch_start(st, WAIT_CHECK_MS, clock_mono_us()) != STORE_OK)
        return tool_fail("cannot watch the database: %s", store_errmsg(st));
    int64_t deadline = clock_mono_ms() + (int64_t)(secs * 1000.0);
    int ctl = tool_subscribe(db_flag); /* before the first look: no commit is missed */
    for (;;) {
        if (store_outbound_state(st, rowid, &found, state, why, sizeof why, err, sizeof err) !=
            STORE_OK) {
            tool_fail("%s", err);
            break;
        }
        if (!found) {
            tool_fail("row %lld was deleted before it was acknowledged", (long long)rowid);
            break;
        }
        if (strcmp(state, "acknowledged") == 0) {
            rc = 0;
            break;
        }
        if (strcmp(state, "send_failed") == 0) {
            tool_fail("message not delivered%s (row %lld is send_failed): %s", to, (long long)rowid,
                      why[0] ? why : "no reason recorded");
            break;
        }
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) {
            tool_fail("timed out after %g s waiting for row %lld%s to be acknowledged "
                      "(it is still '%s')",
                      secs, (long long)rowid, to, state);
            break;
        }
        if (tool_wait(st, left, -1, &ctl) == TOOL_WAIT_ERR) {
            tool_fail("cannot watch the database: %s", store_errmsg(st));
            break;
        }
    }
    if (ctl >= 0)
        close(ctl);
    return rc;
}

/* --retry ROW_ID or --retry-failed: send_failed rows back to pending. Returns the exit status. */
static int retry(struct store *st, const struct opts *o)
{
    char err[512], state[STORE_STATE_MAX], why[512];
    int changed = 0, found = 0;
    if (store_outbound_requeue(st, o->retry, o->peer, clock_real_ms(), &changed, err, sizeof err) !=
        STORE_OK)
        return tool_fail("%s", err);
    if (o->retry != 0 && changed == 0) {
        if (store_outbound_state(st, o->retry, &found, state, why, sizeof why, err, sizeof err) !=
            STORE_OK)
            return tool_fail("%s", err);
        if (!found)
            return tool_fail("there is no outbound row %lld", (long long)o->retry);
        return tool_fail("outbound row %lld is %s, not send_failed: nothing changed",
                         (long long)o->retry, state);
    }
    json_t *v = o->retry != 0 ? json_pack("{s:s, s:I}", "status", "queued again", "row_id",
                                          (json_int_t)o->retry)
                              : json_pack("{s:s, s:i, s:s*}", "status", "queued again", "rows",
                                          changed, "peer", o->peer);
    if (!o->quiet && tool_print_json(v, "(the rows are queued again)") != 0)
        return 1;
    if (o->quiet)
        json_decref(v);
    return o->wait ? wait_outcome(st, o->db, o->retry, NULL, o->wait_s) : 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.wait_s = WAIT_DEFAULT_S};
    char *payload = NULL, err[512], row_id[MESSAGE_ID_LEN + 1] = "";
    size_t len = 0;
    struct store *st = NULL;
    int64_t rowid = 0;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    if (envelope_init() != 0)
        return tool_fail("%s", "cannot initialise libsodium");
    if (o.retry != 0 || o.retry_failed) {
        if ((st = tool_open(o.db)) == NULL)
            return 1;
        rc = retry(st, &o);
        store_close(st);
        return rc;
    }
    if ((rc = check_args(&o)) != 0 || (rc = read_payload(&o, &payload, &len)) != 0 ||
        (rc = check_payload(&o, payload, &len, row_id)) != 0)
        goto out;
    rc = 1;
    if ((st = tool_open(o.db)) == NULL)
        goto out;
    /* A row for a peer has no destination of its own: '' and 0, which the daemon ignores. */
    if (store_enqueue(st, row_id[0] ? row_id : NULL, o.peer != NULL ? "" : o.addr,
                      o.peer != NULL ? 0 : o.port, o.peer, payload, len, clock_real_ms(), &rowid,
                      err, sizeof err) != STORE_OK) {
        tool_fail("%s", err);
        goto out;
    }
    if (!o.quiet && print_receipt(&o, rowid, row_id) != 0)
        goto out;
    rc = o.wait ? wait_outcome(st, o.db, rowid, o.peer, o.wait_s) : 0;
out:
    store_close(st);
    free(payload);
    return rc;
}
