/*
 * statusview: what `securedgram status` and `securedgram peers` ask the
 * running daemon over its control socket (daemon/ctl.h), and how status
 * --json prints it.
 */
#ifndef SG_STATUSVIEW_H
#define SG_STATUSVIEW_H

#include "conf/config.h"

#include <stdio.h>
#include <sys/types.h>

/*
 * The daemon's counters line and peer lines as its stats file has them
 * ("counters: LINE\npeer ...", malloc'd), over the control socket; NULL if
 * it has none (SECUREDGRAM_CONTROL=none, or a daemon from before it): the
 * caller then asks the old way (statsfile_ask).
 */
char *statusview_report(const struct config *cfg);

/*
 * status --json: {"running": false} if !running; else, if ask, the daemon's
 * status with "running": true, or without ask (an unlocked pid file: the
 * original, which has no socket) {"running": true, "pid": pid}. Returns the
 * exit status: 0, 3 when not running, or 1 after one ERROR line (asked, and
 * the socket did not answer).
 */
int statusview_json(const struct config *cfg, int running, int ask, pid_t pid, FILE *out);

/*
 * `securedgram metrics`: the running daemon's (pid) Prometheus text, as its
 * /metrics serves it, to out. Returns 0, or 1 after one ERROR line (the
 * socket did not answer: SECUREDGRAM_CONTROL=none, or not this daemon's).
 */
int statusview_metrics(const struct config *cfg, pid_t pid, FILE *out);

#endif
