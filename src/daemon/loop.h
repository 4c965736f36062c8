/*
 * loop: the one poll() of the daemon (OpenBSD ntpd's shape). Every
 * descriptor it waits on has a named slot; the wait ends when one is
 * readable, when a signal comes, or at the earliest deadline the caller
 * passes, never later (no fixed sleeps; ppoll, so sub-millisecond waits
 * are exact).
 *
 * Signals: the handlers only note which signal came and write one byte to a
 * non-blocking self-pipe, which is the LOOP_SIGNALS slot; the caller asks
 * with loop_stopping and loop_take and does the work. TERM, INT and QUIT
 * ask to stop; HUP to reload; USR1 and USR2 for the counters. SIGPIPE is
 * ignored.
 */
#ifndef SG_LOOP_H
#define SG_LOOP_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

enum loop_slot {
    LOOP_SIGNALS,   /* the self-pipe (set by loop_open) */
    LOOP_DB,        /* the database watch (dbwatch_fd) */
    LOOP_SOCK_MAIN, /* the UDP sockets, in the order of enum sendq_sock */
    LOOP_SOCK_ALT4,
    LOOP_SOCK_ALT6,
    LOOP_SLOTS
};

enum loop_signal { LOOP_HUP, LOOP_USR1, LOOP_USR2, LOOP_SIGNAL_KINDS };

/* Descriptors beyond the slots: the control socket's and /metrics' (their modules fill them). */
#define LOOP_EXTRA_MAX 64

struct loop {
    /* indexed by enum loop_slot, then the extra ones; fd -1: nothing there */
    struct pollfd pfd[LOOP_SLOTS + LOOP_EXTRA_MAX];
    int extra; /* how many of the extra ones the next loop_wait polls */
};

/*
 * Makes the self-pipe and installs the signal handlers (one loop per
 * process). Returns 0, or -1 with one line in err.
 */
__attribute__((warn_unused_result)) int loop_open(struct loop *l, char *err, size_t errlen);

/*
 * Closes the self-pipe (the handlers then only note signals). Fine after a
 * failed loop_open, or none (l zeroed).
 */
void loop_close(struct loop *l);

/* Waits on fd (readable) in slot from the next loop_wait on; -1: nothing in that slot. */
void loop_watch(struct loop *l, enum loop_slot slot, int fd);

/*
 * Room for n more descriptors (n at most what is left of LOOP_EXTRA_MAX),
 * polled from the next loop_wait on with the events the caller sets; their
 * revents are there after it. loop_extra_reset forgets them (call it before
 * filling them again, every turn).
 */
struct pollfd *loop_extra(struct loop *l, int n);
void loop_extra_reset(struct loop *l);

/* Gives back the last unused descriptors of the latest loop_extra (they are not polled). */
void loop_extra_unused(struct loop *l, int unused);

/*
 * Waits until a slot is readable, a signal comes, or deadline_us passes
 * (CLOCK_MONOTONIC microseconds, as now_us; a deadline already past does not
 * wait). Empties the self-pipe. Returns 0 (also when a signal interrupted
 * the wait), or -1 if poll failed (logged).
 */
int loop_wait(struct loop *l, int64_t now_us, int64_t deadline_us);

/* 1 if slot was readable at the last loop_wait. */
int loop_readable(const struct loop *l, enum loop_slot slot);

/* 1 once TERM, INT or QUIT came (it stays so). */
int loop_stopping(void);

/* 1 if signal s came since the last loop_take of it (which forgets it), else 0. */
int loop_take(enum loop_signal s);

#endif
