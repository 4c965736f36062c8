#define _GNU_SOURCE
#include "daemon/daemon.h"

#include "util/user.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

static pid_t read_pid(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long v = strtol(buf, NULL, 10); /* "123\n" (ours) or "123" (the original's) */
    return v > 0 ? (pid_t)v : 0;
}

/* err = "WHAT PATH: REASON", with "as user NAME" before the reason when it is a permission. */
static void path_error(char *err, size_t errlen, const char *what, const char *path, int e)
{
    char who[64] = "";
    if (e == EACCES || e == EPERM)
        user_self_name(who, sizeof who);
    snprintf(err, errlen, "%s %s%s%s: %s", what, path, who[0] ? " as user " : "", who, strerror(e));
}

/*
 * Reads the small file path (a /proc file, whose length stat cannot tell)
 * into buf, NUL-terminated, up to len - 1 bytes. Returns the length read, or
 * -1 if it cannot be opened.
 */
static ssize_t read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    ssize_t n;
    while (got < len - 1 &&
           ((n = read(fd, buf + got, len - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
        got += n > 0 ? (size_t)n : 0;
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* ruby, or ruby followed by a version (ruby3.1, ruby2.7), as Debian and others name it. */
static int is_ruby(const char *name)
{
    return strncmp(name, "ruby", 4) == 0 && strspn(name + 4, "0123456789.") == strlen(name + 4);
}

int daemon_cmdline_is_daemon(const char *argv, size_t n)
{
    if (n == 0 || argv[0] == '\0')
        return 0;
    const char *arg0 = base_name(argv);
    if (strcmp(arg0, "securedgram") == 0)
        return 1;
    if (!is_ruby(arg0))
        return 0;
    for (size_t i = strlen(argv) + 1; i < n; i += strlen(argv + i) + 1)
        if (strcmp(base_name(argv + i), "securedgram") == 0)
            return 1;
    return 0;
}

/*
 * 1 if pid holds a flock() lock on any file (/proc/locks, lines such as
 * "1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF"; a waiter's line has
 * "->" where FLOCK is, and holds nothing).
 */
static int holds_flock(pid_t pid)
{
    FILE *f = fopen("/proc/locks", "r");
    if (f == NULL)
        return 0;
    char line[256], kind[16];
    long holder;
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = sscanf(line, "%*d: %15s %*s %*s %ld", kind, &holder) == 2 &&
                strcmp(kind, "FLOCK") == 0 && holder == (long)pid;
    fclose(f);
    return found;
}

/*
 * 1 if pid, named by a pid file nobody holds, is a live securedgram daemon
 * that holds no flock(): the Ruby original, which never locks its pid file. A
 * daemon of ours holding a lock elsewhere is another pid file's (see
 * daemon_pidfile_check).
 */
static int unlocked_daemon(pid_t pid)
{
    if (pid <= 0 || pid == getpid() || (kill(pid, 0) != 0 && errno != EPERM))
        return 0;
    char path[64], argv[4096];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    ssize_t n = read_small(path, argv, sizeof argv);
    return n > 0 && daemon_cmdline_is_daemon(argv, (size_t)n) && !holds_flock(pid);
}

enum daemon_state daemon_pidfile_check(const char *path, pid_t *pid, char *err, size_t errlen)
{
    /* O_NOFOLLOW as in claim: a link there is refused, never locked through */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return DAEMON_STOPPED;
        path_error(err, errlen, "cannot read pid file", path, errno);
        return DAEMON_ERROR;
    }
    int locked = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    pid_t named = read_pid(fd);
    close(fd); /* also drops our shared lock, if we got it */
    if (!locked && !unlocked_daemon(named))
        return DAEMON_STOPPED;
    *pid = named;
    return locked ? DAEMON_RUNNING : DAEMON_UNLOCKED;
}

int daemon_pidfile_claim(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        path_error(err, errlen, "cannot write pid file", path, errno);
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
        snprintf(err, errlen, "refusing pid file %s: not a regular file with a single link", path);
        close(fd);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        pid_t other = read_pid(fd);
        snprintf(err, errlen, "securedgram is already running (pid %ld, pid file %s)", (long)other,
                 path);
        close(fd);
        return -1;
    }
    /* 0644 whatever the umask, or what the original left (0600): status is for anyone. A
     * file of another user that we may write but not chmod keeps its mode. */
    if (fchmod(fd, 0644) != 0 && errno != EPERM) {
        path_error(err, errlen, "cannot chmod pid file", path, errno);
        close(fd);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        path_error(err, errlen, "cannot write pid file", path, errno);
        close(fd);
        return -1;
    }
    return fd;
}

void daemon_pidfile_release(const char *path, int fd)
{
    if (fd < 0)
        return;
    (void)!ftruncate(fd, 0); /* through the descriptor opened as root: works after the drop */
    (void)unlink(path);      /* fails in a directory only root may write: the file stays empty */
    close(fd);
}

void daemon_pidfile_wait(const char *path)
{
    struct timespec step = {0, 100 * 1000000};
    for (;;) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return;
        while (flock(fd, LOCK_SH) != 0 && errno == EINTR)
            ;
        pid_t named = read_pid(fd);
        close(fd);
        if (!unlocked_daemon(named))
            return;
        nanosleep(&step, NULL); /* an unlocked daemon gives nothing to wait on: poll it */
    }
}

int daemon_detach(char *err, size_t errlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    pid_t child = fork();
    if (child < 0) {
        snprintf(err, errlen, "cannot fork: %s", strerror(errno));
        return -1;
    }
    if (child > 0) {
        close(p[1]);
        char msg[1024];
        size_t got = 0;
        ssize_t n;
        while (got < sizeof msg - 1 &&
               ((n = read(p[0], msg + got, sizeof msg - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
            got += n > 0 ? (size_t)n : 0;
        msg[got] = '\0';
        waitpid(child, NULL, 0);
        if (got > 0 && msg[0] == '0')
            exit(0);
        fprintf(stderr, "ERROR: %s\n",
                got > 1 ? msg + 1 : "the daemon exited during start-up (see its log)");
        exit(1);
    }
    close(p[0]);
    if (setsid() < 0)
        _exit(1);
    pid_t grandchild = fork();
    if (grandchild != 0)
        _exit(grandchild < 0 ? 1 : 0);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
    if (chdir("/") != 0)
        _exit(1);
    return p[1];
}

void daemon_report(int fd, const char *msg)
{
    if (fd < 0)
        return;
    char buf[1024];
    int n = msg == NULL ? snprintf(buf, sizeof buf, "0") : snprintf(buf, sizeof buf, "1%s", msg);
    if (n > (int)sizeof buf - 1)
        n = (int)sizeof buf - 1;
    (void)!write(fd, buf, (size_t)n);
    close(fd);
}

void daemon_close_inherited(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
#endif
    /* no close_range (Linux before 5.9): every descriptor the limit allows */
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 1048576)
        max = 1048576;
    for (long fd = 3; fd < max; fd++)
        (void)close((int)fd);
}

/*
 * Empties the capability bounding set, so that no later execve (of a
 * set-user-ID or file-capability program) can give a capability back. It
 * needs CAP_SETPCAP, which root has until setuid() drops it: call it first.
 * Returns 0, or -1 with errno from the first cap that cannot be dropped.
 */
static int clear_bounding_set(void)
{
#ifdef __linux__
    /* PR_CAPBSET_READ fails with EINVAL past the kernel's last capability (cap_last_cap) */
    for (unsigned long cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
            return -1;
#endif
    return 0;
}

int daemon_drop_privileges(const char *user, char *err, size_t errlen)
{
    if (geteuid() != 0)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        snprintf(err, errlen, "cannot drop privileges: user '%s' does not exist", user);
        return -1;
    }
    /* EPERM: no CAP_SETPCAP, so a container has already limited what this root may do */
    if (clear_bounding_set() != 0 && errno != EPERM) {
        snprintf(err, errlen, "cannot clear the capability bounding set: %s", strerror(errno));
        return -1;
    }
    if (pw->pw_uid == 0)
        return 0; /* told to run as root */
    if (setgroups(1, &pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "cannot drop privileges to '%s': %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || seteuid(0) == 0) {
        snprintf(err, errlen, "cannot drop privileges to '%s': root could be regained", user);
        return -1;
    }
    return 0;
}

int daemon_no_new_privs(char *err, size_t errlen)
{
#ifdef __linux__
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, errlen, "cannot set no_new_privs: %s", strerror(errno));
        return -1;
    }
#else
    (void)err;
    (void)errlen;
#endif
    return 0;
}

/* 1 if pid has exited (or is a zombie waiting for its parent to reap it). */
static int process_gone(pid_t pid)
{
    if (kill(pid, 0) != 0)
        return errno == ESRCH;
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *close_paren = strrchr(stat, ')');
    return close_paren != NULL && close_paren[1] == ' ' && close_paren[2] == 'Z';
}

/* Waits up to ms for the pid file to be free and the process gone; returns 1 if so. */
static int wait_stopped(const char *pidfile, pid_t target, int ms)
{
    struct timespec step = {0, 20 * 1000000};
    for (int waited = 0;; waited += 20) {
        pid_t pid;
        char err[256];
        if (daemon_pidfile_check(pidfile, &pid, err, sizeof err) <= DAEMON_STOPPED &&
            process_gone(target))
            return 1;
        if (waited >= ms)
            return 0;
        nanosleep(&step, NULL); /* an operator's command, polling another process */
    }
}

/*
 * Removes a pid file that a daemon which does not lock it left behind, if it
 * still names that daemon and nobody has taken it over (we hold its lock while
 * we look). A failure leaves a stale file, which is harmless.
 */
static void remove_unlocked(const char *path, pid_t was)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 && read_pid(fd) == was)
        (void)unlink(path);
    close(fd);
}

int daemon_catches(pid_t pid, int sig)
{
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    if (sig < 1 || sig > 64 || read_small(path, text, sizeof text) <= 0)
        return 0;
    const char *line = strstr(text, "\nSigCgt:");
    unsigned long long mask;
    if (line == NULL || sscanf(line + 8, "%llx", &mask) != 1)
        return 0;
    return (mask >> (sig - 1)) & 1U;
}

int daemon_stop(const char *pidfile, pid_t *was, char *err, size_t errlen)
{
    pid_t pid = 0;
    enum daemon_state state = daemon_pidfile_check(pidfile, &pid, err, errlen);
    *was = 0;
    if (state <= DAEMON_STOPPED)
        return state == DAEMON_ERROR ? -1 : 0;
    *was = pid;
    const struct {
        int sig, wait_ms;
    } steps[] = {{SIGTERM, 10000}, {SIGINT, 5000}, {SIGKILL, 5000}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (pid <= 0) {
            snprintf(err, errlen, "pid file %s is locked but names no process", pidfile);
            return -1;
        }
        if (kill(pid, steps[i].sig) != 0 && errno != ESRCH) {
            int e = errno;
            char what[64];
            snprintf(what, sizeof what, "cannot signal pid %ld of pid file", (long)pid);
            path_error(err, errlen, what, pidfile, e);
            return -1;
        }
        if (wait_stopped(pidfile, pid, steps[i].wait_ms)) {
            if (state == DAEMON_UNLOCKED)
                remove_unlocked(pidfile, pid);
            return 0;
        }
    }
    snprintf(err, errlen, "pid %ld did not stop", (long)pid);
    return -1;
}
