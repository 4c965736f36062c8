/*
 * loop: named pollfd slots, the earliest-deadline wait, and the signal
 * self-pipe (the only signal handling of the daemon).
 */
#define _GNU_SOURCE
#include "daemon/loop.h"

#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_term, got[LOOP_SIGNAL_KINDS];
static int sig_wfd = -1; /* the self-pipe's write end, for the handler */

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGHUP)
        got[LOOP_HUP] = 1;
    else if (sig == SIGUSR1)
        got[LOOP_USR1] = 1;
    else if (sig == SIGUSR2)
        got[LOOP_USR2] = 1;
    else
        got_term = 1;
    if (sig_wfd >= 0)
        (void)!write(sig_wfd, "x", 1);
    errno = saved;
}

int loop_open(struct loop *l, char *err, size_t errlen)
{
    int p[2];
    for (int s = 0; s < LOOP_SLOTS; s++)
        l->pfd[s] = (struct pollfd){.fd = -1, .events = POLLIN};
    l->extra = 0;
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    l->pfd[LOOP_SIGNALS].fd = p[0];
    sig_wfd = p[1];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

void loop_close(struct loop *l)
{
    if (sig_wfd < 0)
        return; /* not open */
    close(l->pfd[LOOP_SIGNALS].fd);
    close(sig_wfd);
    l->pfd[LOOP_SIGNALS].fd = sig_wfd = -1;
}

void loop_watch(struct loop *l, enum loop_slot slot, int fd)
{
    l->pfd[slot] = (struct pollfd){.fd = fd, .events = POLLIN};
}

struct pollfd *loop_extra(struct loop *l, int n)
{
    if (n < 0 || n > LOOP_EXTRA_MAX - l->extra)
        return NULL;
    struct pollfd *p = &l->pfd[LOOP_SLOTS + l->extra];
    l->extra += n;
    return p;
}

void loop_extra_reset(struct loop *l)
{
    l->extra = 0;
}

void loop_extra_unused(struct loop *l, int unused)
{
    if (unused > 0 && unused <= l->extra)
        l->extra -= unused;
}

int loop_wait(struct loop *l, int64_t now_us, int64_t deadline_us)
{
    int64_t timeout_us = deadline_us - now_us;
    if (timeout_us < 0)
        timeout_us = 0;
    if (timeout_us > (int64_t)INT_MAX * 1000)
        timeout_us = (int64_t)INT_MAX * 1000;
    struct timespec ts = {(time_t)(timeout_us / 1000000), (long)(timeout_us % 1000000) * 1000};
    nfds_t n = (nfds_t)LOOP_SLOTS + (nfds_t)l->extra;
    for (nfds_t s = 0; s < n; s++)
        l->pfd[s].revents = 0;
    if (ppoll(l->pfd, n, &ts, NULL) < 0 && errno != EINTR) {
        log_warn("poll failed: %s", strerror(errno));
        return -1;
    }
    char sink[64];
    while (read(l->pfd[LOOP_SIGNALS].fd, sink, sizeof sink) > 0)
        ;
    return 0;
}

int loop_readable(const struct loop *l, enum loop_slot slot)
{
    return (l->pfd[slot].revents & POLLIN) != 0;
}

int loop_stopping(void)
{
    return got_term != 0;
}

int loop_take(enum loop_signal s)
{
    if (!got[s])
        return 0;
    got[s] = 0;
    return 1;
}
