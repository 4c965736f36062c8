#define _GNU_SOURCE
#include "tools/tool.h"

#include "util/clock.h"
#include "util/version.h"

#include "conf/peers.h"
#include "conf/settings.h"
#include "store/store.h"
#include "tools/ctlclient.h"
#include "tools/jsonout.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <getopt.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int tool_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ERROR: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int tool_bad_option(const char *prog, int c, char **argv, int optind_now, int optopt_now)
{
    const char *arg = optind_now > 0 ? argv[optind_now - 1] : "";
    char name[64];
    if (strncmp(arg, "--", 2) == 0)
        snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    else if (optopt_now > 0 && optopt_now < 128)
        snprintf(name, sizeof name, "-%c", optopt_now);
    else
        snprintf(name, sizeof name, "%s", arg);
    if (c == ':')
        return tool_fail("option '%s' needs a value (see %s --help)", name, prog);
    return tool_fail("unknown option '%s' (see %s --help)", name, prog);
}

int tool_common_option(const char *prog, const char *usage, int c, char **argv, const char **db)
{
    switch (c) {
    case TOOL_OPT_DB:
        *db = optarg;
        return 0;
    case 'V':
        printf("%s %s\n", prog, SG_VERSION);
        return -1;
    case 'h':
        fputs(usage, stdout);
        return -1;
    default:
        return tool_bad_option(prog, c, argv, optind, optopt);
    }
}

struct store *tool_open(const char *db_flag)
{
    char err[512];
    char *p = settings_db_path(db_flag, err, sizeof err);
    struct store *st = NULL;
    if (p == NULL) {
        tool_fail("%s", err);
        return NULL;
    }
    switch (store_open(p, STORE_EXISTING, STORE_TOOL_BUSY_MS, &st, err, sizeof err)) {
    case STORE_OK:
        break;
    case STORE_GONE:
        if (strstr(p, "://") != NULL) { /* a server's database: its own words, no password */
            tool_fail("%s", err);
            break;
        }
        fprintf(stderr, "ERROR: Database not found at %s\n", p);
        fprintf(stderr, "Hint: start the daemon once (securedgram start) to create it, "
                        "or pass --db PATH.\n");
        break;
    case STORE_BUSY:
        tool_fail("%s", STORE_BUSY_TEXT);
        break;
    default:
        tool_fail("%s", err);
        break;
    }
    free(p);
    return st;
}

int tool_subscribe(const char *db_flag)
{
    char err[512];
    char *path = settings_control_path(), *db = settings_db_path(db_flag, err, sizeof err);
    int fd = path != NULL && db != NULL ? ctlclient_connect(path, err, sizeof err) : -1;
    json_t *r = NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    static const char req[] = "{\"op\":\"subscribe\"}\n";
    if (fd >= 0 && send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1))
        r = ctlclient_read(fd, clock_mono_ms() + CTLCLIENT_TIMEOUT_MS, 4096, &buf, &len, &cap, err,
                           sizeof err);
    /* the daemon of this database, or none: another database's commits would wake us for nothing */
    const char *its = json_string_value(json_object_get(r, "db"));
    char ours[STORE_LOCATION_TEXT_MAX] = ""; /* as the daemon shows it: no password */
    if (db != NULL)
        store_location_text(db, ours, sizeof ours);
    if (fd >= 0 && (!json_is_true(json_object_get(r, "ok")) || its == NULL || db == NULL ||
                    strcmp(its, ours) != 0 || len > 0)) {
        close(fd);
        fd = -1;
    }
    json_decref(r);
    free(buf);
    free(path);
    free(db);
    return fd;
}

/* Reads what the daemon sent (its events say only "look again"). 0, or -1 once it is gone. */
static int drain(int fd)
{
    char sink[4096];
    ssize_t n;
    while ((n = recv(fd, sink, sizeof sink, MSG_DONTWAIT)) > 0)
        ;
    return n == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
}

enum tool_wait tool_wait(struct store *st, int64_t timeout_ms, int stop_fd, int *ctl_fd)
{
    int64_t now = clock_mono_us();
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : now + timeout_ms * 1000;
    int event = 0;
    for (;;) {
        int64_t due = store_poll_due_us(st);
        if (now >= due || event) {
            int changed = 0;
            if (store_poll(st, event, now, &changed) != STORE_OK)
                return TOOL_WAIT_ERR;
            if (changed)
                return TOOL_CHANGED;
            due = store_poll_due_us(st);
        }
        if (now >= deadline)
            return TOOL_TIMEOUT;
        int64_t t = (due < deadline ? due : deadline) - now;
        struct timespec ts = {(time_t)(t / 1000000), (long)(t % 1000000) * 1000};
        struct pollfd pfd[3] = {{.fd = store_watch_fd(st), .events = POLLIN},
                                {.fd = stop_fd, .events = POLLIN},
                                {.fd = ctl_fd != NULL ? *ctl_fd : -1, .events = POLLIN}};
        int r = ppoll(pfd, 3, &ts, NULL);
        if (r < 0 && errno != EINTR)
            return TOOL_WAIT_ERR;
        now = clock_mono_us();
        if (r > 0 && (pfd[1].revents & (POLLIN | POLLHUP)))
            return TOOL_STOPPED;
        if (r > 0 && ctl_fd != NULL && pfd[2].revents != 0) {
            if (drain(*ctl_fd) != 0) { /* the daemon stopped: the database watch goes on alone */
                close(*ctl_fd);
                *ctl_fd = -1;
            }
            return TOOL_CHANGED; /* woken by the daemon's commit (or its going: look once) */
        }
        event = r > 0 && (pfd[0].revents & POLLIN);
    }
}

int tool_check_peer(const char *name)
{
    if (peers_name_valid(name))
        return 0;
    int quote = 1; /* quoted only if that keeps the error on one line: no control character */
    for (const char *c = name; *c != '\0'; c++)
        quote &= (unsigned char)*c >= 0x20 && (unsigned char)*c != 0x7f;
    return tool_fail("--peer: %s%s%sis not a peer name (1-%d of A-Z a-z 0-9 . _ -, not starting "
                     "with . or -)",
                     quote ? "'" : "", quote ? name : "the name", quote ? "' " : " ",
                     PEER_NAME_MAX);
}

int tool_read_all(FILE *f, size_t max, char **buf, size_t *len, char *err, size_t errlen)
{
    size_t cap = 0, n = 0;
    char *b = NULL;
    for (;;) {
        if (n == cap) {
            if (cap > max)
                break; /* max + 1 bytes read: too much */
            size_t ncap = cap == 0 ? 4096 : cap * 2;
            if (ncap > max + 1)
                ncap = max + 1;
            char *nb = realloc(b, ncap + 1);
            if (nb == NULL) {
                free(b);
                snprintf(err, errlen, "out of memory");
                return -1;
            }
            b = nb;
            cap = ncap;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f) || n > max) {
        if (n > max)
            snprintf(err, errlen, "more than %zu bytes", max);
        else
            snprintf(err, errlen, "%s", strerror(errno));
        free(b);
        return -1;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

json_t *tool_json_text(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    char *fixed = malloc(3 * n + 1); /* each byte becomes at most U+FFFD's three */
    if (fixed == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t step = u[i] < 0x80 ? 1 : jsonout_utf8_seq(u, n, i);
        if (step == 0) {
            static const char replacement[3] = {'\xEF', '\xBF', '\xBD'}; /* U+FFFD */
            memcpy(fixed + k, replacement, sizeof replacement);
            k += sizeof replacement;
            i++;
        } else {
            memcpy(fixed + k, s + i, step);
            k += step;
            i += step;
        }
    }
    json_t *v = json_stringn(fixed, k);
    free(fixed);
    return v;
}

int tool_print_json(json_t *v, const char *what)
{
    char *text = v ? json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(v);
    if (text == NULL)
        return tool_fail("out of memory%s%s", what ? " " : "", what ? what : "");
    int bad = fputs(text, stdout) == EOF || putchar('\n') == EOF || fflush(stdout) != 0;
    free(text);
    if (bad)
        return tool_fail("cannot write the output: %s%s%s", strerror(errno), what ? " " : "",
                         what ? what : "");
    return 0;
}
