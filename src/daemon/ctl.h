/*
 * ctl: what the control socket's clients may ask (the transport is
 * daemon/ctlsock.c). One JSON object a line each way; every request is
 * answered with one line, {"ok": true, ...} or {"ok": false, "error": "..."}.
 * A line that is not a JSON object with a known "op" is answered with an
 * error and the connection is closed.
 *
 *   {"op": "status"}     everything the daemon knows (docs: securedgram(8),
 *                        CONTROL SOCKET): version, uptime, pid, the settings
 *                        (never a secret or key), every counter and drop
 *                        reason, queue depths by table and state, the number
 *                        in flight, the peers, the store's health
 *   {"op": "report"}     the counters line USR1 logs ("counters") and the
 *                        per-peer lines ("peers") `securedgram peers` joins
 *                        with the peers file: what the stats file holds
 *   {"op": "subscribe"}  from now on, {"event": "changed"} after each commit
 *                        that wrote rows (sg-send --wait, sg-recv --follow)
 *   {"op": "wake"}       look at the database now (a program that inserted
 *                        rows where there is no inotify)
 *
 * Only "wake" changes anything, and what it does is what a new row does
 * anyway. Who may connect is who may open the socket (mode 0660: the
 * service user, its group, and root).
 */
#ifndef SG_CTL_H
#define SG_CTL_H

struct engine;

/* After the loop's poll: accepts, reads and answers the control socket's clients. */
void ctl_service(struct engine *e);

/* After a turn: tells subscribers if it committed rows. */
void ctl_tell(struct engine *e);

#endif
