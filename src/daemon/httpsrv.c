/*
 * httpsrv: the /metrics HTTP server's transport (see httpsrv.h). Clients live
 * in a fixed array; each is reading its head into a fixed buffer, then
 * writing its response from one malloc'd buffer (headers and body), then
 * lingering until the client closes. One deadline a client, set by the state
 * it is in.
 */
#define _GNU_SOURCE
#include "daemon/httpsrv.h"

#include "util/log.h"
#include "util/net.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_BURST 64 /* accepts per httpsrv_service: a connect flood cannot starve the loop */
#define ACCEPT_PAUSE_MS 1000 /* out of descriptors: stop polling the listener this long */

static const char index_html[] =
    "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n"; /* GET /, for humans */

enum state { READING, WRITING, LINGERING }; /* READING is 0: a zeroed slot */

struct client {
    int fd; /* -1: a free slot */
    enum state state;
    int code;    /* of the response */
    int64_t due; /* the rule of its state drops (or, lingering, closes) it then */
    char *out;   /* the response; out[outoff, outlen) waits to be sent */
    size_t outoff, outlen;
    size_t inlen;              /* bytes of in[] held */
    char in[HTTPSRV_HEAD_MAX]; /* last: drop clears what comes before */
};

struct httpsrv {
    int fd;
    unsigned port;
    int64_t resume_ms; /* accept ran out of descriptors: the listener rests until then */
    int64_t now_ms;    /* of the latest httpsrv_service */
    struct httpsrv_stats st;
    char name[NET_ENDPOINT_MAX]; /* the endpoint, for the log */
    struct client c[HTTPSRV_CLIENTS_MAX];
};

/* Closes the connection; why (for the log) and count name a rule it broke, if one. */
static void drop(struct httpsrv *h, struct client *c, const char *why, uint64_t *count)
{
    if (why != NULL)
        log_info("http server %s: client dropped: %s", h->name, why);
    if (count != NULL)
        (*count)++;
    close(c->fd);
    free(c->out);
    memset(c, 0, offsetof(struct client, in));
    c->fd = -1;
}

/* Sends what waits until the socket is full; all sent, shuts down the write side and lingers. */
static void flush(struct httpsrv *h, struct client *c)
{
    while (c->outoff < c->outlen) {
        ssize_t n =
            send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->outoff += (size_t)n;
            c->due = h->now_ms + HTTPSRV_STALL_MS;
        } else if (n < 0 && errno == EAGAIN) {
            return;
        } else if (n >= 0 || errno != EINTR) {
            drop(h, c, NULL, NULL); /* reset by the client: not ours to count */
            return;
        }
    }
    (*(c->code == 200 ? &h->st.served : c->code < 500 ? &h->st.bad : &h->st.failed))++;
    free(c->out);
    c->out = NULL;
    c->outoff = c->outlen = 0;
    (void)shutdown(c->fd, SHUT_WR); /* the client reads EOF: the response is whole */
    c->state = LINGERING;
    c->due = h->now_ms + HTTPSRV_LINGER_MS;
}

static const char *reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

/*
 * Makes the response (body NULL: a line naming the code) and tries to write
 * it at once. head: for HEAD, the headers alone (Content-Length as for GET).
 */
static void respond(struct httpsrv *h, struct client *c, int code, const char *type,
                    const char *body, size_t blen, int head)
{
    char line[64], date[40];
    if (body == NULL) {
        snprintf(line, sizeof line, "%d %s\n", code, reason(code));
        body = line;
        blen = strlen(line);
        type = "text/plain; charset=utf-8";
    }
    struct tm tm;
    time_t t = time(NULL);
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
        date[0] = '\0'; /* the C locale's names: the daemon never calls setlocale */
    char hd[384];
    int n = snprintf(hd, sizeof hd,
                     "HTTP/1.1 %d %s\r\n%s%s%sContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "%sConnection: close\r\n\r\n",
                     code, reason(code), date[0] ? "Date: " : "", date, date[0] ? "\r\n" : "", type,
                     blen, code == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t hlen = (size_t)n, total = hlen + (head ? 0 : blen);
    if (n < 0 || hlen >= sizeof hd || (c->out = malloc(total)) == NULL) { /* hd has room: never */
        drop(h, c, "out of memory", NULL);
        return;
    }
    memcpy(c->out, hd, hlen);
    if (!head)
        memcpy(c->out + hlen, body, blen);
    c->outlen = total;
    c->code = code;
    c->state = WRITING;
    c->due = h->now_ms + HTTPSRV_STALL_MS;
    flush(h, c);
}

/* The head, in[0, len), is whole: answers its request line. */
static void handle(struct httpsrv *h, struct client *c, size_t len, httpsrv_body_fn fn, void *ctx)
{
    char *line = c->in, *nl = memchr(line, '\n', len);
    size_t llen = (size_t)(nl - line);
    if (llen > 0 && line[llen - 1] == '\r')
        llen--;
    int bad = memchr(line, '\0', llen) != NULL;
    line[llen] = '\0'; /* "METHOD SP TARGET SP VERSION", one space each */
    char *target = strchr(line, ' ');
    char *version = target != NULL ? strchr(target + 1, ' ') : NULL;
    if (bad || target == NULL || target == line || version == NULL || version == target + 1 ||
        (strcmp(version + 1, "HTTP/1.1") != 0 && strcmp(version + 1, "HTTP/1.0") != 0)) {
        respond(h, c, 400, NULL, NULL, 0, 0);
        return;
    }
    *target++ = '\0';
    *version = '\0';
    int head = strcmp(line, "HEAD") == 0;
    if (!head && strcmp(line, "GET") != 0) {
        respond(h, c, 405, NULL, NULL, 0, 0);
        return;
    }
    target[strcspn(target, "?")] = '\0'; /* the query is the caller's business: none here */
    if (strcmp(target, "/") == 0) {
        respond(h, c, 200, "text/html; charset=utf-8", index_html, sizeof index_html - 1, head);
        return;
    }
    if (strcmp(target, "/metrics") != 0) {
        respond(h, c, 404, NULL, NULL, 0, head);
        return;
    }
    size_t blen = 0;
    char *body = fn != NULL ? fn(ctx, &blen) : NULL;
    if (body != NULL && blen > HTTPSRV_BODY_MAX)
        log_warn("http server %s: a body of %zu bytes refused (%u at most)", h->name, blen,
                 HTTPSRV_BODY_MAX);
    if (body == NULL || blen > HTTPSRV_BODY_MAX)
        respond(h, c, 500, NULL, NULL, 0, head);
    else
        respond(h, c, 200, HTTPSRV_CONTENT_TYPE, body, blen, head);
    free(body);
}

/* Where the head in in[0, len) ends (after its blank line), searching from from; 0 if not yet. */
static size_t head_end(const char *in, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++) {
        if (in[i] != '\n')
            continue;
        if (i + 1 < len && in[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && in[i + 1] == '\r' && in[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* Reads once, bounded by the room left for the head; answers once it is whole or too long. */
static void read_head(struct httpsrv *h, struct client *c, httpsrv_body_fn fn, void *ctx)
{
    size_t old = c->inlen;
    ssize_t n = recv(c->fd, c->in + old, sizeof c->in - old, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop(h, c, NULL, NULL); /* gone before its head was whole: nothing to answer */
        return;
    }
    c->inlen += (size_t)n;
    size_t end = head_end(c->in, old >= 2 ? old - 2 : 0, c->inlen); /* an end begun before too */
    if (end > 0)
        handle(h, c, end, fn, ctx);
    else if (c->inlen == sizeof c->in)
        respond(h, c, 431, NULL, NULL, 0, 0);
}

/* Lingering: discards what the client still sends; its EOF (or an error) closes it. */
static void drain(struct httpsrv *h, struct client *c)
{
    ssize_t n = recv(c->fd, c->in, sizeof c->in, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        drop(h, c, NULL, NULL);
}

/* A new connection: a client in a free slot, its request due in time, or closed at once. */
static void take(void *ctx, int fd)
{
    struct httpsrv *h = ctx;
    int i = 0;
    while (i < HTTPSRV_CLIENTS_MAX && h->c[i].fd >= 0)
        i++;
    if (i == HTTPSRV_CLIENTS_MAX) {
        close(fd);
        h->st.refused++;
    } else {
        h->c[i].fd = fd;
        h->c[i].due = h->now_ms + HTTPSRV_TIMEOUT_MS;
        h->st.accepted++;
    }
}

static void accept_some(struct httpsrv *h)
{
    int err = net_accept_burst(h->fd, ACCEPT_BURST, take, h);
    if (err != 0) { /* EMFILE and such: the listener stays readable */
        log_warn("http server %s: cannot accept: %s", h->name, strerror(err));
        h->resume_ms = h->now_ms + ACCEPT_PAUSE_MS; /* so rest, not spin */
    }
}

void httpsrv_service(struct httpsrv *h, const struct pollfd *pfd, int n, int64_t now_ms,
                     httpsrv_body_fn fn, void *ctx)
{
    h->now_ms = now_ms;
    for (int i = 0; i < HTTPSRV_CLIENTS_MAX; i++) {
        struct client *c = &h->c[i];
        if (c->fd < 0)
            continue;
        short ev = 0; /* matched by fd: a client accepted after httpsrv_pollfds has none */
        for (int k = 1; k < n; k++)
            if (pfd[k].fd == c->fd)
                ev = pfd[k].revents;
        if (c->state == READING && (ev & (POLLIN | POLLERR | POLLHUP)))
            read_head(h, c, fn, ctx);
        else if (c->state == WRITING && ((ev & (POLLOUT | POLLERR | POLLHUP)) || now_ms >= c->due))
            flush(h, c); /* at its deadline too: one last try before the drop */
        else if (c->state == LINGERING && (ev & (POLLIN | POLLERR | POLLHUP)))
            drain(h, c);
        if (c->fd < 0 || now_ms < c->due)
            continue;
        if (c->state == READING)
            drop(h, c, "request not complete in time", &h->st.dropped_timeout);
        else if (c->state == WRITING)
            drop(h, c, "response not read in time", &h->st.dropped_slow);
        else
            drop(h, c, NULL, NULL); /* its response is out: only its EOF was awaited */
    }
    if (now_ms >= h->resume_ms && n > 0 && pfd[0].fd == h->fd && (pfd[0].revents & POLLIN))
        accept_some(h); /* last: those accepted now are polled from the next turn */
}

int httpsrv_pollfds(const struct httpsrv *h, struct pollfd *pfd)
{
    int n = 0;
    pfd[n++] = (struct pollfd){.fd = h->fd, .events = h->resume_ms > h->now_ms ? 0 : POLLIN};
    for (int i = 0; i < HTTPSRV_CLIENTS_MAX; i++) {
        const struct client *c = &h->c[i];
        if (c->fd >= 0)
            pfd[n++] =
                (struct pollfd){.fd = c->fd, .events = c->state == WRITING ? POLLOUT : POLLIN};
    }
    return n;
}

int64_t httpsrv_deadline(const struct httpsrv *h)
{
    int64_t d = h->resume_ms > h->now_ms ? h->resume_ms : INT64_MAX;
    for (int i = 0; i < HTTPSRV_CLIENTS_MAX; i++)
        if (h->c[i].fd >= 0 && h->c[i].due < d)
            d = h->c[i].due;
    return d;
}

int httpsrv_clients(const struct httpsrv *h)
{
    int n = 0;
    for (int i = 0; i < HTTPSRV_CLIENTS_MAX; i++)
        n += h->c[i].fd >= 0;
    return n;
}

void httpsrv_get_stats(const struct httpsrv *h, struct httpsrv_stats *out)
{
    *out = h->st;
}

unsigned httpsrv_port(const struct httpsrv *h)
{
    return h->port;
}

/* net_endpoint_parse, and port 0 too (it refuses that, rightly for its other callers). */
static int parse_endpoint(const char *text, struct net_addr *a)
{
    char tmp[NET_ENDPOINT_MAX];
    size_t len = strlen(text);
    if (len < 2 || strcmp(text + len - 2, ":0") != 0)
        return net_endpoint_parse(text, a);
    if (len >= sizeof tmp)
        return -1;
    memcpy(tmp, text, len + 1);
    tmp[len - 1] = '1';
    if (net_endpoint_parse(tmp, a) != 0)
        return -1;
    if (a->u.sa.sa_family == AF_INET)
        a->u.v4.sin_port = 0;
    else
        a->u.v6.sin6_port = 0;
    return 0;
}

struct httpsrv *httpsrv_open(const char *endpoint, char *err, size_t errlen)
{
    struct net_addr a;
    if (parse_endpoint(endpoint, &a) != 0) {
        snprintf(err, errlen, "cannot listen on %s: not HOST:PORT or [V6]:PORT (numeric)",
                 endpoint);
        return NULL;
    }
    struct httpsrv *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(err, errlen, "cannot listen on %s: %s", endpoint, strerror(ENOMEM));
        return NULL;
    }
    for (int i = 0; i < HTTPSRV_CLIENTS_MAX; i++)
        h->c[i].fd = -1;
    h->resume_ms = INT64_MIN;
    int one = 1;
    struct net_addr bound = {.len = sizeof bound.u};
    h->fd = socket(a.u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->fd < 0 || setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(h->fd, &a.u.sa, a.len) != 0 || listen(h->fd, 16) != 0 ||
        getsockname(h->fd, &bound.u.sa, &bound.len) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", endpoint, strerror(errno));
        if (h->fd >= 0)
            close(h->fd);
        free(h);
        return NULL;
    }
    char host[NET_HOST_MAX];
    net_addr_format(&bound, host, &h->port); /* the port the kernel chose, for port 0 */
    net_endpoint_format(&bound, h->name);
    return h;
}

void httpsrv_close(struct httpsrv *h)
{
    if (h == NULL)
        return;
    for (int i = 0; i < HTTPSRV_CLIENTS_MAX; i++)
        if (h->c[i].fd >= 0)
            drop(h, &h->c[i], NULL, NULL);
    close(h->fd);
    free(h);
}
