/*
 * statsfile: the counters file that `securedgram status` reads, written so
 * that no one who can write its directory can make the daemon (perhaps root)
 * write anywhere else.
 */
#ifndef SG_STATSFILE_H
#define SG_STATSFILE_H

#include <sys/types.h>

/*
 * Replaces the file at path with text, atomically: text goes into a new file
 * "<path>.tmp" created with O_EXCL | O_NOFOLLOW (mode 0644 less the umask),
 * which is then renamed over path. A stale temporary file left by an earlier
 * run (a regular file owned by us) is removed first; anything else at that
 * name (a symbolic link, another user's file) is left alone and makes the
 * write fail, so a planted link is never followed. rename() replaces a link
 * at path itself rather than the file it points to.
 * Returns 0, or -1 with errno set (nothing is left at the temporary name).
 */
__attribute__((warn_unused_result)) int statsfile_write(const char *path, const char *text);

/*
 * Asks the daemon pid for its counters and returns the text of
 * <pidfile>.stats (malloc'd), or NULL. SIGUSR2 makes it rewrite the file
 * without a log line (SIGUSR1 logs one: monitoring that runs status every
 * minute would add 1,440 lines a day). It is sent only if the daemon left
 * that file at start (it cannot when its pid file's directory is not
 * writable by it), and only if it catches SIGUSR2: the signal's default
 * action would end a daemon from before status used it. Waits up to 2 s for
 * the new file; the file is opened without following a link.
 */
char *statsfile_ask(const char *pidfile, pid_t pid);

#endif
