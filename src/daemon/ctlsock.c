/*
 * ctlsock: the control socket's transport (see ctlsock.h). Clients live in a
 * fixed array; a client's id is its index there. Each has a fixed input
 * buffer for the line being read and an output buffer that grows while
 * replies wait and is freed again once drained if it grew large.
 */
#define _GNU_SOURCE
#include "daemon/ctlsock.h"

#include "util/log.h"
#include "util/net.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ACCEPT_BURST 64 /* accepts per ctlsock_service: a connect flood cannot starve the loop */
#define ACCEPT_PAUSE_MS 1000 /* out of descriptors: stop polling the listener this long */
#define OUT_MIN 4096         /* an output buffer's first size */
#define OUT_KEEP 16384       /* a drained output buffer larger than this is freed */
/* Slack over CTLSOCK_OUT_MAX, so that compacting moves at most 4 bytes for each byte sent. */
#define OUT_CAP (CTLSOCK_OUT_MAX + CTLSOCK_OUT_MAX / 4)

struct client {
    int fd;              /* -1: a free slot */
    int closing;         /* no more requests (CTLSOCK_CLOSE or EOF): close once out is sent */
    unsigned tag;        /* ctlsock_set_tag's */
    size_t inlen;        /* bytes of in[] held: the start of a line not yet ended */
    int64_t idle_since;  /* when the line in in[] began */
    int64_t stall_since; /* when out began to wait, or last saw a byte sent */
    char *out;           /* out[outoff, outlen) waits to be sent */
    size_t outoff, outlen, outcap;
    char in[CTLSOCK_LINE_MAX]; /* last: drop clears what comes before */
};

struct ctlsock {
    int fd;
    int64_t resume_ms; /* accept ran out of descriptors: the listener rests until then */
    int64_t now_ms;    /* of the latest ctlsock_service: when a reply queued now began to wait */
    struct ctlsock_stats st;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    struct client c[CTLSOCK_CLIENTS_MAX];
};

static int waiting(const struct client *c)
{
    return c->outoff < c->outlen;
}

/* Closes the connection; why (for the log) and count name a rule it broke, if one. */
static void drop(struct ctlsock *cs, struct client *c, const char *why, uint64_t *count)
{
    if (why != NULL)
        log_info("control socket %s: client dropped: %s", cs->path, why);
    if (count != NULL)
        (*count)++;
    close(c->fd);
    free(c->out);
    memset(c, 0, offsetof(struct client, in)); /* in[] kept: fn may still read its line */
    c->fd = -1;
}

static struct client *slot(struct ctlsock *cs, int id)
{
    if (cs == NULL || id < 0 || id >= CTLSOCK_CLIENTS_MAX || cs->c[id].fd < 0)
        return NULL;
    return &cs->c[id];
}

/* Sends what waits until the socket is full. -1 if the client went away (it is dropped). */
static int flush(struct ctlsock *cs, struct client *c)
{
    while (waiting(c)) {
        ssize_t n =
            send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->outoff += (size_t)n;
            c->stall_since = cs->now_ms;
        } else if (n < 0 && errno == EAGAIN) {
            return 0;
        } else if (n >= 0 || errno != EINTR) {
            drop(cs, c, NULL, NULL);
            return -1;
        }
    }
    c->outoff = c->outlen = 0;
    if (c->outcap > OUT_KEEP) { /* an idle daemon keeps no MiBs */
        free(c->out);
        c->out = NULL;
        c->outcap = 0;
    }
    if (c->closing)
        drop(cs, c, NULL, NULL); /* its last reply is out */
    return 0;
}

static void compact(struct client *c)
{
    memmove(c->out, c->out + c->outoff, c->outlen - c->outoff);
    c->outlen -= c->outoff;
    c->outoff = 0;
}

/* Room for len more bytes in out: 0, -1 if over CTLSOCK_OUT_MAX would wait, -2 if no memory. */
static int reserve(struct client *c, size_t len)
{
    size_t w = c->outlen - c->outoff;
    if (len > CTLSOCK_OUT_MAX - w)
        return -1;
    if (c->outoff > 0 && c->outoff >= w) /* cheap: moves no more than was sent since */
        compact(c);
    if (c->outlen + len <= c->outcap)
        return 0;
    size_t cap = c->outcap != 0 ? c->outcap : OUT_MIN;
    while (cap < c->outlen + len && cap < OUT_CAP)
        cap *= 2; /* geometric: appending stays linear */
    if (cap > OUT_CAP)
        cap = OUT_CAP;
    char *p = realloc(c->out, cap);
    if (p == NULL)
        return -2;
    c->out = p;
    c->outcap = cap;
    if (c->outlen + len > cap)
        compact(c); /* at OUT_CAP, more than CTLSOCK_OUT_MAX / 4 was sent */
    return 0;
}

int ctlsock_reply(struct ctlsock *cs, int client, const char *text, size_t len, unsigned flags)
{
    struct client *c = slot(cs, client);
    if (c == NULL || c->closing)
        return -1;
    int rc = reserve(c, len);
    if (rc != 0) {
        drop(cs, c, rc == -1 ? "too many replies waiting" : "out of memory",
             rc == -1 ? &cs->st.dropped_slow : NULL);
        return -1;
    }
    if (!waiting(c))
        c->stall_since = cs->now_ms;
    if (len > 0)
        memcpy(c->out + c->outlen, text, len);
    c->outlen += len;
    if (flags & CTLSOCK_CLOSE)
        c->closing = 1; /* in[] is left alone: fn may be reading its line there */
    return flush(cs, c);
}

/* Reads once, then hands each complete line to fn, in order, while the client is there. */
static void read_client(struct ctlsock *cs, int id, ctlsock_request_fn fn, void *ctx)
{
    struct client *c = &cs->c[id];
    ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* EOF: its lines were handed over as they came; replies waiting still go (a
         * client that only shut down its side reads them), then it is closed */
        c->closing = 1;
        c->inlen = 0;
        if (n < 0 || !waiting(c))
            drop(cs, c, NULL, NULL);
        return;
    }
    size_t old = c->inlen, start = 0;
    c->inlen += (size_t)n;
    char *nl;
    while (c->fd >= 0 && !c->closing &&
           (nl = memchr(c->in + start, '\n', c->inlen - start)) != NULL) {
        size_t len = (size_t)(nl - c->in) - start;
        *nl = '\0';
        cs->st.requests++;
        fn(ctx, cs, id, c->in + start, len);
        start += len + 1;
    }
    if (c->fd < 0)
        return; /* dropped by a reply fn made */
    if (c->closing) {
        c->inlen = 0; /* what follows CTLSOCK_CLOSE is not handled */
        return;
    }
    if (start > 0 || old == 0)
        c->idle_since = cs->now_ms; /* what is left was begun now */
    c->inlen -= start;
    memmove(c->in, c->in + start, c->inlen);
    if (c->inlen == sizeof c->in)
        drop(cs, c, "request line too long", &cs->st.dropped_long);
}

/* A new connection: a client in a free slot, or closed at once if there is none. */
static void take(void *ctx, int fd)
{
    struct ctlsock *cs = ctx;
    int i = 0;
    while (i < CTLSOCK_CLIENTS_MAX && cs->c[i].fd >= 0)
        i++;
    if (i == CTLSOCK_CLIENTS_MAX) {
        close(fd);
        cs->st.refused++;
    } else {
        cs->c[i].fd = fd;
        cs->st.accepted++;
    }
}

static void accept_some(struct ctlsock *cs)
{
    int err = net_accept_burst(cs->fd, ACCEPT_BURST, take, cs);
    if (err != 0) { /* EMFILE and such: the listener stays readable */
        log_warn("control socket %s: cannot accept: %s", cs->path, strerror(err));
        cs->resume_ms = cs->now_ms + ACCEPT_PAUSE_MS; /* so rest, not spin */
    }
}

void ctlsock_service(struct ctlsock *cs, const struct pollfd *pfd, int n, int64_t now_ms,
                     ctlsock_request_fn fn, void *ctx)
{
    cs->now_ms = now_ms;
    for (int i = 0; i < CTLSOCK_CLIENTS_MAX; i++) {
        struct client *c = &cs->c[i];
        short ev = 0; /* matched by fd: a client accepted after ctlsock_pollfds has none */
        for (int k = 1; k < n && c->fd >= 0; k++)
            if (pfd[k].fd == c->fd)
                ev = pfd[k].revents;
        int stalled = now_ms - c->stall_since >= CTLSOCK_STALL_MS;
        if (c->fd >= 0 && waiting(c) && ((ev & (POLLOUT | POLLERR | POLLHUP)) || stalled))
            (void)flush(cs, c); /* stalled too: unix sockets poll writable only at 3/4 free */
        if (c->fd >= 0 && !c->closing && (ev & (POLLIN | POLLERR | POLLHUP)))
            read_client(cs, i, fn, ctx);
        if (c->fd >= 0 && !c->closing && c->inlen > 0 && now_ms - c->idle_since >= CTLSOCK_IDLE_MS)
            drop(cs, c, "request line not finished in time", &cs->st.dropped_idle);
        if (c->fd >= 0 && waiting(c) && now_ms - c->stall_since >= CTLSOCK_STALL_MS)
            drop(cs, c, "replies not read in time", &cs->st.dropped_slow);
    }
    if (now_ms >= cs->resume_ms && n > 0 && pfd[0].fd == cs->fd && (pfd[0].revents & POLLIN))
        accept_some(cs); /* last: those accepted now are polled from the next turn */
}

int ctlsock_pollfds(const struct ctlsock *cs, struct pollfd *pfd)
{
    int n = 0;
    pfd[n++] = (struct pollfd){.fd = cs->fd, .events = cs->resume_ms > cs->now_ms ? 0 : POLLIN};
    for (int i = 0; i < CTLSOCK_CLIENTS_MAX; i++) {
        const struct client *c = &cs->c[i];
        if (c->fd < 0)
            continue;
        /* a closing client is not read: at EOF, POLLIN would never stop */
        short ev = (short)((c->closing ? 0 : POLLIN) | (waiting(c) ? POLLOUT : 0));
        pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
    }
    return n;
}

int64_t ctlsock_deadline(const struct ctlsock *cs)
{
    int64_t d = cs->resume_ms > cs->now_ms ? cs->resume_ms : INT64_MAX;
    for (int i = 0; i < CTLSOCK_CLIENTS_MAX; i++) {
        const struct client *c = &cs->c[i];
        if (c->fd < 0)
            continue;
        if (!c->closing && c->inlen > 0 && c->idle_since + CTLSOCK_IDLE_MS < d)
            d = c->idle_since + CTLSOCK_IDLE_MS;
        if (waiting(c) && c->stall_since + CTLSOCK_STALL_MS < d)
            d = c->stall_since + CTLSOCK_STALL_MS;
    }
    return d;
}

void ctlsock_set_tag(struct ctlsock *cs, int client, unsigned tag)
{
    struct client *c = slot(cs, client);
    if (c != NULL)
        c->tag = tag;
}

unsigned ctlsock_tag(const struct ctlsock *cs, int client)
{
    const struct client *c = slot((struct ctlsock *)cs, client); /* only read */
    return c != NULL ? c->tag : 0;
}

void ctlsock_broadcast(struct ctlsock *cs, unsigned mask, const char *text, size_t len)
{
    for (int i = 0; i < CTLSOCK_CLIENTS_MAX; i++)
        if (cs->c[i].fd >= 0 && !cs->c[i].closing && (cs->c[i].tag & mask))
            (void)ctlsock_reply(cs, i, text, len, 0);
}

int ctlsock_clients(const struct ctlsock *cs)
{
    int n = 0;
    for (int i = 0; i < CTLSOCK_CLIENTS_MAX; i++)
        n += cs->c[i].fd >= 0;
    return n;
}

void ctlsock_get_stats(const struct ctlsock *cs, struct ctlsock_stats *out)
{
    *out = cs->st;
}

struct ctlsock *ctlsock_open(const char *path, uid_t owner, gid_t group, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof sa.sun_path) {
        snprintf(err, errlen, "control socket path %s is %s (%zu bytes; 1 to %zu fit)", path,
                 len == 0 ? "empty" : "too long", len, sizeof sa.sun_path - 1);
        return NULL;
    }
    memcpy(sa.sun_path, path, len);
    struct stat sb;
    int there = lstat(path, &sb) == 0;
    if (there && !S_ISSOCK(sb.st_mode)) {
        snprintf(err, errlen, "control socket path %s exists and is not a socket", path);
        return NULL;
    }
    struct ctlsock *cs = calloc(1, sizeof *cs);
    if (cs == NULL) {
        snprintf(err, errlen, "cannot make the control socket %s: %s", path, strerror(ENOMEM));
        return NULL;
    }
    memcpy(cs->path, path, len + 1);
    for (int i = 0; i < CTLSOCK_CLIENTS_MAX; i++)
        cs->c[i].fd = -1;
    cs->fd = -1;
    cs->resume_ms = INT64_MIN;
    int bound = 0;
    const char *what = "remove the stale"; /* the caller holds the pid file's lock */
    if (there && unlink(path) != 0)
        goto fail;
    what = "make";
    if ((cs->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        goto fail;
    what = "bind";
    mode_t old = umask(0117); /* never, not even until the chmod, more open than 0660 */
    int rc = bind(cs->fd, (const struct sockaddr *)&sa, sizeof sa);
    umask(old); /* leaves errno alone: it cannot fail */
    if (rc != 0)
        goto fail;
    bound = 1;
    what = "set the mode of"; /* explicit: a default ACL on the directory beats the umask */
    if (chmod(path, 0660) != 0)
        goto fail;
    what = "change the owner of";
    if (owner != (uid_t)-1 && chown(path, owner, group) != 0)
        goto fail;
    what = "listen on";
    if (listen(cs->fd, 16) != 0)
        goto fail;
    return cs;
fail:
    snprintf(err, errlen, "cannot %s the control socket %s: %s", what, path, strerror(errno));
    if (bound)
        (void)unlink(path);
    if (cs->fd >= 0)
        close(cs->fd);
    free(cs);
    return NULL;
}

void ctlsock_close(struct ctlsock *cs)
{
    if (cs == NULL)
        return;
    for (int i = 0; i < CTLSOCK_CLIENTS_MAX; i++)
        if (cs->c[i].fd >= 0)
            drop(cs, &cs->c[i], NULL, NULL);
    close(cs->fd);
    (void)unlink(cs->path); /* may fail once privileges are dropped: the next start removes it */
    free(cs);
}
