/*
 * ctlclient: one request and its reply over the control socket, each step
 * bounded by a deadline (poll), so a daemon that does not answer costs the
 * tool its timeout, never a hang.
 */
#include "tools/ctlclient.h"

#include "util/clock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REPLY_MAX (64u << 20) /* a status of many peers is large; garbage this long is not */

int ctlclient_connect(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (path == NULL || strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "no control socket (SECUREDGRAM_CONTROL is none or too long)");
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "cannot connect to the control socket %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* Waits until fd is ready for events, or deadline_ms passes: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - clock_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int send_all(int fd, const char *text, size_t len, int64_t deadline_ms)
{
    while (len > 0) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            text += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -1;
        } else if (wait_fd(fd, POLLOUT, deadline_ms) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

json_t *ctlclient_read(int fd, int64_t deadline_ms, size_t max, char **buf, size_t *len,
                       size_t *cap, char *err, size_t errlen)
{
    for (;;) {
        char *nl = *len > 0 ? memchr(*buf, '\n', *len) : NULL;
        if (nl != NULL) {
            size_t line = (size_t)(nl - *buf);
            json_error_t je;
            json_t *o = json_loadb(*buf, line, 0, &je);
            memmove(*buf, nl + 1, *len - line - 1);
            *len -= line + 1;
            if (!json_is_object(o)) {
                json_decref(o);
                snprintf(err, errlen, "the daemon's reply is not a JSON object");
                return NULL;
            }
            return o;
        }
        if (*len >= max) {
            snprintf(err, errlen, "the daemon's reply is longer than %zu bytes", max);
            return NULL;
        }
        if (*cap - *len < 65536) {
            size_t ncap = *cap < 65536 ? 131072 : *cap * 2;
            char *nb = realloc(*buf, ncap);
            if (nb == NULL) {
                snprintf(err, errlen, "out of memory");
                return NULL;
            }
            *buf = nb;
            *cap = ncap;
        }
        ssize_t n = recv(fd, *buf + *len, *cap - *len, MSG_DONTWAIT);
        if (n > 0) {
            *len += (size_t)n;
            continue;
        }
        if (n == 0) {
            snprintf(err, errlen, "the daemon closed the control connection");
            return NULL;
        }
        if (errno != EAGAIN && errno != EINTR) {
            snprintf(err, errlen, "cannot read the control socket: %s", strerror(errno));
            return NULL;
        }
        int w = wait_fd(fd, POLLIN, deadline_ms);
        if (w <= 0) {
            snprintf(err, errlen,
                     w == 0 ? "the daemon did not answer in time"
                            : "cannot wait on the control socket");
            return NULL;
        }
    }
}

json_t *ctlclient_ask(const char *path, const char *op, int timeout_ms, char *err, size_t errlen)
{
    int fd = ctlclient_connect(path, err, errlen);
    if (fd < 0)
        return NULL;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    char req[128];
    int n = snprintf(req, sizeof req, "{\"op\":\"%s\"}\n", op);
    json_t *o = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (n < 0 || (size_t)n >= sizeof req || send_all(fd, req, (size_t)n, deadline) != 0)
        snprintf(err, errlen, "cannot write to the control socket %s: %s", path, strerror(errno));
    else
        o = ctlclient_read(fd, deadline, REPLY_MAX, &buf, &len, &cap, err, errlen);
    free(buf);
    close(fd);
    if (o != NULL && !json_is_true(json_object_get(o, "ok"))) {
        const char *why = json_string_value(json_object_get(o, "error"));
        snprintf(err, errlen, "the daemon refused the request: %s", why != NULL ? why : "?");
        json_decref(o);
        o = NULL;
    }
    return o;
}
