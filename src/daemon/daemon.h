/*
 * daemon: the process life cycle. The pid file is held with an exclusive
 * flock() for the daemon's whole life, so "is it running?" never trusts a pid
 * that may have been reused: a pid file nobody holds is stale. The one
 * exception is a daemon that does not lock its pid file, the Ruby original
 * (an upgrade may find it running): see daemon_pidfile_check.
 *
 * The pid file is created and locked as root, before the privilege drop, so
 * that it may live in a directory only root can write (/run). The daemon,
 * no longer root, may then be unable to remove it at exit; it empties it
 * instead, and an empty (or unlocked) pid file reads as "not running".
 */
#ifndef SG_DAEMON_H
#define SG_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

/* What daemon_pidfile_check found. */
enum daemon_state {
    DAEMON_ERROR = -1,   /* the pid file cannot be read (err says why) */
    DAEMON_STOPPED = 0,  /* no pid file, or a stale one */
    DAEMON_RUNNING = 1,  /* a daemon holds the pid file's lock: ours */
    DAEMON_UNLOCKED = 2, /* nobody holds the lock, but the file names a live securedgram daemon */
};

/*
 * Is a daemon running for the pid file at path? DAEMON_RUNNING if a daemon
 * holds its lock. Otherwise DAEMON_UNLOCKED if the pid in it names a live
 * process other than us whose command line is a securedgram daemon's
 * (daemon_cmdline_is_daemon) and that holds no flock() of its own (a daemon
 * of ours always holds one: a process of ours that does not hold this file's
 * lock is the daemon of another pid file, its pid reused). Else
 * DAEMON_STOPPED. *pid is set for the two running states. DAEMON_ERROR with
 * err (naming the user on a permission error) if the file cannot be opened.
 */
enum daemon_state daemon_pidfile_check(const char *path, pid_t *pid, char *err, size_t errlen);

/*
 * Is the NUL-separated command line argv (n bytes as in /proc/PID/cmdline,
 * then a NUL: argv[n] == '\0') that of a securedgram daemon? 1 if argv[0] is
 * named securedgram (our program), or if argv[0] is a Ruby interpreter (ruby,
 * ruby3.1, /usr/bin/ruby) and a later argument is named securedgram: the
 * original, which on Linux keeps the interpreter's command line,
 * "ruby /usr/local/bin/securedgram start" (its setproctitle() call finds no
 * such function in glibc). 0 otherwise, and for an empty command line (a
 * zombie, a kernel thread).
 */
int daemon_cmdline_is_daemon(const char *argv, size_t n);

/*
 * Creates (or takes over a stale) pid file, locks it, makes it mode 0644
 * (readable by anyone, so a non-root status works) and writes our pid. Call
 * it as root before the privilege drop: the daemon keeps the open descriptor,
 * so it can still empty the file at exit. Refuses a link, and anything but a
 * regular file with one link (a hard link planted in a directory the service
 * user can write would otherwise be truncated by root).
 * Returns the open fd, to keep for the process's life, or -1 with err
 * (another daemon holds it, or it cannot be written: err names the user).
 */
int daemon_pidfile_claim(const char *path, char *err, size_t errlen);

/*
 * Empties the pid file, removes it if we may (its directory may be root's,
 * and we may no longer be) and releases its lock. Emptying it first means
 * that no one who opened it before can read our pid once it is unlocked.
 */
void daemon_pidfile_release(const char *path, int fd);

/*
 * Blocks until the daemon of the pid file has exited: waits on the lock, then
 * polls a daemon that does not lock it (DAEMON_UNLOCKED) every 100 ms.
 */
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
 * 1 if /proc says that process pid catches signal sig (has a handler for it),
 * 0 if it does not or this cannot be told (no /proc). status asks before it
 * sends SIGUSR2, whose default action would end a daemon from before it was
 * handled.
 */
int daemon_catches(pid_t pid, int sig);

/*
 * Stops the daemon of the pid file (either running state of
 * daemon_pidfile_check): TERM, then INT, then KILL, waiting between. A pid
 * file the stopped daemon did not lock (the original does not remove its own)
 * is removed if it still names it. *was is its pid, 0 if none ran. Returns 0
 * when it has stopped (or was not running), -1 with err.
 */
int daemon_stop(const char *pidfile, pid_t *was, char *err, size_t errlen);

#endif
