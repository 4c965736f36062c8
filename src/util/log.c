/*
 * log: one sink at a time. Lines at or below the current level are written;
 * the default level is warn, as in the original.
 */
#define _GNU_SOURCE
#include "util/log.h"

#include "util/clock.h"
#include "util/user.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

enum sink { SINK_STDERR, SINK_STDOUT, SINK_SYSLOG, SINK_FILE };

static enum sink sink = SINK_STDERR;
static enum log_level level = LOG_LEVEL_WARN;
static FILE *file;
static char *file_path;
static char ident_buf[64] = "securedgram";
static int json_lines; /* log_set_json */

static FILE *open_append(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "a");
    if (f == NULL) {
        close(fd);
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    return f;
}

int log_open(const char *target, const char *ident)
{
    if (ident != NULL)
        snprintf(ident_buf, sizeof ident_buf, "%s", ident);
    if (strcmp(target, "syslog") == 0) {
        log_close();
        openlog(ident_buf, LOG_PID | LOG_NDELAY, LOG_DAEMON);
        sink = SINK_SYSLOG;
        return 0;
    }
    if (strcmp(target, "stdout") == 0) {
        log_close();
        setvbuf(stdout, NULL, _IOLBF, 0);
        sink = SINK_STDOUT;
        return 0;
    }
    FILE *f = open_append(target);
    char *p = strdup(target);
    if (f == NULL || p == NULL) {
        int e = errno;
        if (f != NULL)
            fclose(f);
        free(p);
        errno = e;
        return -1;
    }
    log_close();
    file = f;
    file_path = p;
    sink = SINK_FILE;
    return 0;
}

/* 1 if path still names the file we write (it was not rotated away). */
static int still_ours(const char *path, FILE *f)
{
    struct stat named, open_one;
    return stat(path, &named) == 0 && fstat(fileno(f), &open_one) == 0 &&
           named.st_dev == open_one.st_dev && named.st_ino == open_one.st_ino;
}

void log_reopen(void)
{
    if (sink != SINK_FILE)
        return;
    /* Not rotated: nothing to do. This also spares a daemon that dropped privileges from
     * reopening a file that only root, which opened it at start, may open. */
    if (still_ours(file_path, file))
        return;
    FILE *f = open_append(file_path);
    if (f == NULL) {
        int e = errno;
        char who[64];
        user_self_name(who, sizeof who);
        log_warn("cannot reopen log file %s as user %s: %s; still writing to the old one "
                 "(make the file, or its directory, writable by %s; see securedgram(8))",
                 file_path, who, strerror(e), who);
        return;
    }
    fclose(file);
    file = f;
}

void log_close(void)
{
    if (sink == SINK_SYSLOG)
        closelog();
    if (file != NULL)
        fclose(file);
    file = NULL;
    free(file_path);
    file_path = NULL;
    sink = SINK_STDERR;
}

void log_set_json(int on)
{
    json_lines = on;
}

void log_set_level(enum log_level l)
{
    level = l;
}

enum log_level log_get_level(void)
{
    return level;
}

static const char *level_name(enum log_level l)
{
    return l == LOG_LEVEL_WARN ? "WARN" : l == LOG_LEVEL_INFO ? "INFO" : "DEBUG";
}

__attribute__((format(printf, 2, 0))) static void emit(enum log_level l, const char *fmt,
                                                       va_list ap)
{
    if (l > level)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (sink == SINK_SYSLOG) {
        int prio = l == LOG_LEVEL_WARN ? LOG_WARNING : l == LOG_LEVEL_INFO ? LOG_INFO : LOG_DEBUG;
        syslog(prio, "%s", msg);
        return;
    }
    uint64_t ns = clock_real_ns();
    char when[CLOCK_UTC_TEXT_MAX];
    if (clock_format_utc(when, sizeof when, (int64_t)(ns / 1000000000), (long)(ns % 1000000000),
                         3) != 0)
        snprintf(when, sizeof when, "%s", "1970-01-01T00:00:00.000"); /* a clock before 1970 */
    FILE *out = sink == SINK_FILE ? file : sink == SINK_STDOUT ? stdout : stderr;
    if (json_lines) {
        /* the text line's fields, for log shippers; jansson escapes what the message holds */
        char stamp[CLOCK_UTC_TEXT_MAX + 1];
        snprintf(stamp, sizeof stamp, "%sZ", when);
        json_t *o = NULL;
        for (int tries = 0; o == NULL && tries < 2; tries++) {
            o = json_pack("{s:s, s:s, s:I, s:s, s:s}", "time", stamp, "program", ident_buf, "pid",
                          (json_int_t)getpid(), "level", level_name(l), "msg", msg);
            for (char *c = msg; o == NULL && *c != '\0'; c++) /* not UTF-8: '?' for non-ASCII */
                if ((unsigned char)*c >= 0x80)
                    *c = '?';
        }
        char *line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        json_decref(o);
        if (line != NULL) {
            fprintf(out, "%s\n", line);
            free(line);
            return;
        }
        /* out of memory: the text line rather than nothing */
    }
    fprintf(out, "%sZ %s[%ld] %s: %s\n", when, ident_buf, (long)getpid(), level_name(l), msg);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(LOG_LEVEL_WARN, fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(LOG_LEVEL_INFO, fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(LOG_LEVEL_DEBUG, fmt, ap);
    va_end(ap);
}

void log_warn_limited(struct log_limiter *lim, int64_t now_ms, const char *fmt, ...)
{
    if (now_ms - lim->window_start_ms >= 1000) {
        lim->window_start_ms = now_ms;
        lim->lines_in_window = 0;
    }
    if (lim->lines_in_window >= LOG_LIMIT_BURST) {
        lim->suppressed++;
        return;
    }
    lim->lines_in_window++;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (lim->suppressed > 0) {
        log_warn("%s (%llu similar lines suppressed)", msg, (unsigned long long)lim->suppressed);
        lim->suppressed = 0;
    } else {
        log_warn("%s", msg);
    }
}

void log_limiter_flush(struct log_limiter *lim, int64_t now_ms, const char *what)
{
    if (lim->suppressed == 0 || now_ms - lim->window_start_ms < 1000)
        return;
    log_warn("%llu more %s suppressed", (unsigned long long)lim->suppressed, what);
    lim->suppressed = 0;
    lim->window_start_ms = now_ms;
    lim->lines_in_window = 1;
}
