/*
 * statsfile: atomic replacement of a small text file without following links.
 */
#define _GNU_SOURCE
#include "daemon/statsfile.h"

#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATSFILE_PATH_MAX 4200

/* Writes all of text to fd; returns 0 or -1 with errno. */
static int write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Removes what an earlier run left at tmp if it is a regular file of ours;
 * unlink() removes the name, never what a link points to. Anything else stays
 * and the O_EXCL open below fails on it.
 */
static void remove_stale(const char *tmp)
{
    struct stat sb;
    if (lstat(tmp, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid())
        (void)unlink(tmp);
}

int statsfile_write(const char *path, const char *text)
{
    char tmp[STATSFILE_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    remove_stale(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1; /* EEXIST: someone else's file or a link is there; it is not touched */
    int rc = write_all(fd, text, strlen(text));
    int e = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        (void)unlink(tmp); /* the file we created: O_EXCL made it ours */
        errno = e;
    }
    return rc;
}

#define STATS_TEXT_MAX (4u << 20)

char *statsfile_ask(const char *pidfile, pid_t pid)
{
    char path[STATSFILE_PATH_MAX];
    struct stat before, after;
    if (snprintf(path, sizeof path, "%s.stats", pidfile) >= (int)sizeof path ||
        stat(path, &before) != 0 || !daemon_catches(pid, SIGUSR2) || kill(pid, SIGUSR2) != 0)
        return NULL;
    struct timespec step = {0, 10 * 1000000};
    for (int waited = 0; waited < 2000; waited += 10) {
        if (stat(path, &after) == 0 &&
            (after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
             after.st_mtim.tv_nsec != before.st_mtim.tv_nsec || after.st_ino != before.st_ino))
            break;
        nanosleep(&step, NULL); /* the daemon answers within a turn of its loop */
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); /* not through a planted link */
    if (fd < 0)
        return NULL;
    char *text = malloc(STATS_TEXT_MAX + 1);
    size_t used = 0;
    while (text != NULL && used < STATS_TEXT_MAX) {
        ssize_t n = read(fd, text + used, STATS_TEXT_MAX - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    if (text != NULL)
        text[used] = '\0';
    return text;
}
