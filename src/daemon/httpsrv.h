/*
 * httpsrv: the /metrics HTTP server's transport (ctlsock is its model): a
 * TCP listener, non-blocking, a bounded number of clients, each with a
 * bounded request head and one response waiting to be read. It knows HTTP
 * framing, not what metrics are: the body comes from the caller's function.
 *
 * One request per connection. Only the request line is parsed (headers are
 * read, so they must fit, and ignored; bytes after the head are ignored):
 *   - GET or HEAD /metrics (a query is ignored): 200, the caller's body,
 *     Content-Type HTTPSRV_CONTENT_TYPE; the function is called only then,
 *     so a client that connects and sends nothing costs only its slot;
 *   - GET or HEAD /: 200, a line of HTML pointing at /metrics;
 *   - another path: 404; another method: 405 (Allow: GET, HEAD);
 *   - not HTTP/1.0 or HTTP/1.1: 400; no blank line within HTTPSRV_HEAD_MAX:
 *     431 (a line ends in CRLF or LF alone: CRLF CRLF and LF LF end a head);
 *   - the function gives no body, or one over HTTPSRV_BODY_MAX: 500.
 * Every response says Connection: close and has a Content-Length. Once it is
 * written the write side is shut down (the client reads EOF) and what the
 * client still sends is read and discarded until it closes, for at most
 * HTTPSRV_LINGER_MS: closing at once with bytes unread would send a reset,
 * which may destroy the response before the client reads it (a 431 to a
 * client still sending its head, say).
 *
 * A client that misbehaves is dropped and the daemon goes on:
 *   - a head not complete within HTTPSRV_TIMEOUT_MS of accept;
 *   - a response waiting HTTPSRV_STALL_MS without a byte read.
 * A connection beyond HTTPSRV_CLIENTS_MAX is accepted and closed at once.
 *
 * Nothing here blocks: accept, read and write are non-blocking (SIGPIPE
 * cannot happen), and the caller's poll() decides when each is tried.
 */
#ifndef SG_HTTPSRV_H
#define SG_HTTPSRV_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPSRV_CLIENTS_MAX 8
#define HTTPSRV_HEAD_MAX 4096        /* bytes of a head: request line, headers, blank line */
#define HTTPSRV_TIMEOUT_MS 5000      /* a head must be complete within this of accept */
#define HTTPSRV_STALL_MS 10000       /* a response waiting must see a byte read within this */
#define HTTPSRV_LINGER_MS 2000       /* a response written: the client's EOF is awaited this long */
#define HTTPSRV_BODY_MAX (16u << 20) /* a body larger than this is refused with 500 */
#define HTTPSRV_POLLFDS (1 + HTTPSRV_CLIENTS_MAX) /* what httpsrv_pollfds may fill */
#define HTTPSRV_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8" /* Prometheus text */

struct httpsrv;

/* What happened to connections since httpsrv_open; responses count once written whole. */
struct httpsrv_stats {
    uint64_t accepted; /* connections taken as clients */
    uint64_t refused;  /* accepted and closed at once: HTTPSRV_CLIENTS_MAX were connected */
    uint64_t served;   /* 200s */
    uint64_t bad;      /* 4xx */
    uint64_t failed;   /* 500s: the function gave no body, or too large a one */
    uint64_t dropped_timeout, dropped_slow; /* by the rules above */
};

/*
 * The body for GET or HEAD /metrics: a malloc'd buffer (httpsrv frees it) and
 * its length in *len, or NULL (then 500; an empty body is a non-NULL pointer,
 * not malloc(0)'s NULL). For HEAD only the length is used.
 */
typedef char *(*httpsrv_body_fn)(void *ctx, size_t *len);

/*
 * Listens on endpoint, "HOST:PORT" or "[V6]:PORT", numeric (net_endpoint_parse;
 * port 0 too: the kernel picks one, see httpsrv_port). Returns NULL with one
 * line in err ("cannot listen on 127.0.0.1:80: Permission denied"; the caller
 * names its setting).
 */
__attribute__((warn_unused_result)) struct httpsrv *httpsrv_open(const char *endpoint, char *err,
                                                                 size_t errlen);

/* The port listened on. */
unsigned httpsrv_port(const struct httpsrv *h);

/* Closes every connection and the listener. NULL is fine. */
void httpsrv_close(struct httpsrv *h);

/*
 * Fills pfd (room for HTTPSRV_POLLFDS) with what to poll: the listener first
 * (no events while accept rests), then each client (POLLIN while its head is
 * read and after its response, POLLOUT while its response waits).
 * Returns how many it filled.
 */
int httpsrv_pollfds(const struct httpsrv *h, struct pollfd *pfd);

/*
 * After poll: pfd and n as httpsrv_pollfds filled them (revents set).
 * Accepts, reads heads (calling fn for /metrics), writes responses, and
 * drops the clients that broke a rule by now_ms (CLOCK_MONOTONIC).
 */
void httpsrv_service(struct httpsrv *h, const struct pollfd *pfd, int n, int64_t now_ms,
                     httpsrv_body_fn fn, void *ctx);

/*
 * The earliest time (ms) a rule may drop a client, a lingering one is closed,
 * or a pause of accept (out of descriptors: the listener rests 1 s) ends;
 * INT64_MAX if none.
 */
int64_t httpsrv_deadline(const struct httpsrv *h);

/* Clients connected now (lingering ones too). */
int httpsrv_clients(const struct httpsrv *h);

void httpsrv_get_stats(const struct httpsrv *h, struct httpsrv_stats *out);

#endif
