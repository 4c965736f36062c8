/*
 * ctlsock: the control socket's transport (OpenBSD ntpd's control.c is the
 * model): an AF_UNIX stream socket, non-blocking, a bounded number of
 * clients, each with a bounded request line and bounded replies waiting to
 * be read. It knows lines, not what they mean: each complete request line is
 * handed to the caller's function, which answers with ctlsock_reply.
 *
 * A client that misbehaves is dropped and the daemon goes on:
 *   - a request line longer than CTLSOCK_LINE_MAX (with its newline);
 *   - a request begun and not finished within CTLSOCK_IDLE_MS;
 *   - replies it does not read: more than CTLSOCK_OUT_MAX waiting, or
 *     waiting longer than CTLSOCK_STALL_MS without a byte read;
 *   - one the caller gives up on (ctlsock_reply with CTLSOCK_CLOSE: the
 *     reply is sent first, then the connection is closed).
 * A connection beyond CTLSOCK_CLIENTS_MAX is accepted and closed at once, so
 * 1,000 connects cost nothing but their accept.
 *
 * Nothing here blocks: accept, read and write are non-blocking, and the
 * caller's poll() decides when each is tried.
 */
#ifndef SG_CTLSOCK_H
#define SG_CTLSOCK_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTLSOCK_CLIENTS_MAX 16
#define CTLSOCK_LINE_MAX 4096 /* bytes of one request line, its newline included */
/* bytes of replies waiting for one client (its buffer may reach 1.25 x this: cheap compacting) */
#define CTLSOCK_OUT_MAX (4u << 20)
#define CTLSOCK_IDLE_MS 10000  /* a request line begun must end within this */
#define CTLSOCK_STALL_MS 10000 /* replies waiting must see a byte read within this */
#define CTLSOCK_POLLFDS (1 + CTLSOCK_CLIENTS_MAX) /* what ctlsock_pollfds may fill */

#define CTLSOCK_CLOSE 1u /* ctlsock_reply: close the connection once this is sent */

struct ctlsock;

/* What happened to connections since ctlsock_open. */
struct ctlsock_stats {
    uint64_t accepted; /* connections taken as clients */
    uint64_t refused;  /* accepted and closed at once: CTLSOCK_CLIENTS_MAX were connected */
    uint64_t dropped_long, dropped_idle, dropped_slow; /* by the rules above */
    uint64_t requests;                                 /* lines handed to the caller */
};

/*
 * Called for each complete request line of a client (without its newline;
 * line[len] is '\0'; it may hold other NUL bytes). client names the client
 * for ctlsock_reply and ctlsock_set_tag until it is dropped (then its slot,
 * and so the id, may go to a newer client: keep ids only within fn).
 */
typedef void (*ctlsock_request_fn)(void *ctx, struct ctlsock *cs, int client, const char *line,
                                   size_t len);

/*
 * Binds and listens at path (at most 107 bytes). What is at path already is
 * removed first only if it is a socket (a stale one: the caller holds the
 * pid file's lock, so no other daemon listens there); anything else there
 * makes it fail. The socket gets mode 0660 and, if owner is not (uid_t)-1,
 * owner and group (the service user's, while still root). Returns NULL with
 * one line in err.
 */
__attribute__((warn_unused_result)) struct ctlsock *
ctlsock_open(const char *path, uid_t owner, gid_t group, char *err, size_t errlen);

/* Closes every connection and the socket, and removes path (if it may). NULL is fine. */
void ctlsock_close(struct ctlsock *cs);

/*
 * Fills pfd (room for CTLSOCK_POLLFDS) with what to poll: the listening
 * socket first, then each client (POLLIN unless it is closing, and POLLOUT
 * while replies wait).
 * Returns how many it filled.
 */
int ctlsock_pollfds(const struct ctlsock *cs, struct pollfd *pfd);

/*
 * After poll: pfd and n as ctlsock_pollfds filled them (revents set).
 * Accepts, reads (handing each complete line to fn), writes what waits,
 * and drops the clients that broke a rule by now_ms (CLOCK_MONOTONIC).
 */
void ctlsock_service(struct ctlsock *cs, const struct pollfd *pfd, int n, int64_t now_ms,
                     ctlsock_request_fn fn, void *ctx);

/*
 * Queues len bytes for client (a reply line the caller made, its newline
 * included) and tries to write them at once. flags: CTLSOCK_CLOSE. Replies
 * queued outside ctlsock_service are timed from its latest now_ms. Returns
 * 0, or -1 if the client is gone or closing, was dropped for having too much
 * waiting or for a failed send, or memory ran out.
 */
int ctlsock_reply(struct ctlsock *cs, int client, const char *text, size_t len, unsigned flags);

/*
 * A tag the caller keeps on a client (0 at accept), for example "subscribed
 * to events"; ctlsock_broadcast sends to every client whose tag has a bit of
 * mask.
 */
void ctlsock_set_tag(struct ctlsock *cs, int client, unsigned tag);
unsigned ctlsock_tag(const struct ctlsock *cs, int client);
void ctlsock_broadcast(struct ctlsock *cs, unsigned mask, const char *text, size_t len);

/*
 * The earliest time (ms) a rule may drop a client, or a pause of accept (out
 * of descriptors: the listener rests 1 s) ends; INT64_MAX if none.
 */
int64_t ctlsock_deadline(const struct ctlsock *cs);

/* Clients connected now. */
int ctlsock_clients(const struct ctlsock *cs);

void ctlsock_get_stats(const struct ctlsock *cs, struct ctlsock_stats *out);

#endif
