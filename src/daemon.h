/*
 * daemon: the process life cycle. The pid file is held with an exclusive
 * flock() for the daemon's whole life, so "is it running?" never trusts a pid
 * that may have been reused: a pid file nobody holds is stale.
 */
#ifndef SG_DAEMON_H
#define SG_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Is a daemon holding the pid file at path? Returns 1 (and *pid) if so, 0 if
 * not (no file, or a stale one), -1 with err if the file cannot be read.
 */
int daemon_pidfile_check(const char *path, pid_t *pid, char *err, size_t errlen);

/*
 * Creates (or takes over a stale) pid file, locks it and writes our pid.
 * Returns the open fd, to keep for the process's life, or -1 with err
 * (another daemon holds it, or it cannot be written).
 */
int daemon_pidfile_claim(const char *path, char *err, size_t errlen);

/* Removes the pid file and releases it (a failed unlink is harmless: the file is stale). */
void daemon_pidfile_release(const char *path, int fd);

/* Blocks until nobody holds the pid file (the daemon has exited). */
void daemon_pidfile_wait(const char *path);

/*
 * Detaches: fork, setsid, fork; stdio to /dev/null; chdir("/"). In the
 * original process it waits for the daemon's report on a pipe, prints any
 * error, and exits (0 once the daemon reported ready); it never returns
 * there. In the daemon it returns the pipe's write end for daemon_report.
 * Returns -1 with err if the first fork fails.
 */
int daemon_detach(char *err, size_t errlen);

/* Tells the waiting parent: ready (msg NULL) or failed (msg says why). Closes fd. */
void daemon_report(int fd, const char *msg);

/*
 * Closes every descriptor above 2 (close_range, or one by one on kernels
 * without it), so nothing the starting shell or service manager left open
 * (a pipe, another daemon's socket) stays in the daemon. Call it first
 * thing in main, before anything is opened.
 */
void daemon_close_inherited(void);

/*
 * When running as root: empties the capability bounding set (on Linux, so no
 * later execve can regain a capability), then becomes user (setgroups, setgid,
 * setuid) and checks that root cannot be regained; a user that is root itself
 * keeps its uid. A user that does not exist is an error.
 * When not root, does nothing. Returns 0 or -1 with err.
 */
int daemon_drop_privileges(const char *user, char *err, size_t errlen);

/*
 * Sets no_new_privs (Linux): from now on no execve can grant privileges, by
 * set-user-ID bits or file capabilities, and a seccomp filter may be
 * installed without privileges. Returns 0 or -1 with err.
 */
int daemon_no_new_privs(char *err, size_t errlen);

/*
 * Stops the daemon of the pid file: TERM, then INT, then KILL, waiting
 * between. Returns 0 when it has stopped (or was not running), -1 with err.
 */
int daemon_stop(const char *pidfile, pid_t *was, char *err, size_t errlen);

#endif
