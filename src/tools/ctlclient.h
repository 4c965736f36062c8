/*
 * ctlclient: a tool's side of the daemon's control socket (daemon/ctl.h):
 * one request, one reply, within a deadline, so that a stuck daemon never
 * hangs `securedgram status`.
 */
#ifndef SG_CTLCLIENT_H
#define SG_CTLCLIENT_H

#include <jansson.h>

#define CTLCLIENT_TIMEOUT_MS 2000

/*
 * Connects to the control socket at path. Returns the descriptor, or -1
 * with one line in err (no daemon listens there: ENOENT or ECONNREFUSED).
 */
int ctlclient_connect(const char *path, char *err, size_t errlen);

/*
 * Sends {"op": op} and reads the reply line, within timeout_ms. Returns the
 * reply object (json_decref it) if it says "ok": true, else NULL with why in
 * err: the daemon's error, or the socket's.
 */
json_t *ctlclient_ask(const char *path, const char *op, int timeout_ms, char *err, size_t errlen);

/*
 * Reads one line from fd (non-blocking or not) into a growing buffer,
 * waiting at most until deadline_ms (CLOCK_MONOTONIC); at most max bytes.
 * Returns the parsed JSON object of the line, or NULL with err. For
 * subscribers, which read one event at a time: *buf, *len and *cap keep
 * what was read past the line (start them NULL, 0, 0; free *buf at the end).
 */
json_t *ctlclient_read(int fd, int64_t deadline_ms, size_t max, char **buf, size_t *len,
                       size_t *cap, char *err, size_t errlen);

#endif
