/*
 * securedgram: the daemon's command line. Options and wiring only; the work
 * is in src/ (config, daemon, engine, store).
 */
#define _GNU_SOURCE
#include "conf/config.h"
#include "daemon/daemon.h"
#include "util/user.h"
#include "daemon/engine.h"
#include "wire/envelope.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/net.h"
#include "daemon/sandbox.h"
#include "conf/settings.h"
#include "daemon/ctlsock.h"
#include "daemon/httpsrv.h"
#include "daemon/statsfile.h"
#include "store/store.h"
#include "tools/peersview.h"
#include "tools/statusview.h"
#include "tools/tool.h"
#include "util/version.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#define SOCK_BUF_BYTES (4 << 20)

static const char usage_text[] =
    "Usage: securedgram [options] start|stop|restart|status|metrics|poll|keygen|peers\n"
    "\n"
    "Encrypted UDP messaging daemon with a SQLite message queue.\n"
    "\n"
    "Commands:\n"
    "  start    start the daemon; returns once it is bound and ready (or fails with why)\n"
    "  stop     stop the running daemon (TERM, then INT, then KILL)\n"
    "  restart  stop, then start\n"
    "  status   say whether it runs; exit 0 if running, 3 if not; with --json,\n"
    "           everything it knows (over its control socket)\n"
    "  metrics  print the running daemon's Prometheus metrics (what SECUREDGRAM_METRICS\n"
    "           serves), for node_exporter's textfile collector; exit 3 if not running\n"
    "  poll     wait until the daemon has stopped\n"
    "  peers    show each peer of the peers file: endpoint, allowed, wire, key\n"
    "           fingerprint and, while the daemon runs, last seen and counters\n"
    "  keygen   print a new random secret (64 hex digits) for SECUREDGRAM_SECRET or a\n"
    "           master secret file; with --peer, a \"key = ...\" line for a peers file\n"
    "\n"
    "Options (each overrides its SECUREDGRAM_* variable from the environment or ./.env):\n"
    "  -u, --user USER          user to run as when started as root [nobody]\n"
    "  -l, --log TARGET         syslog, stdout, or a file path [syslog]\n"
    "      --log-format FMT     text, or json: one JSON object a line [text]\n"
    "      --control PATH       the control socket, or none [beside the pid file]\n"
    "      --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics [off]\n"
    "  -P, --pidfile PATH       pid file [securedgram.pid]\n"
    "  -b, --bind IP            address to listen on [0.0.0.0]\n"
    "  -p, --port PORT          UDP port to listen on [61773]\n"
    "  -s, --secret HEX         shared key, 64 hex digits (shows in ps: prefer .env)\n"
    "      --secret-file PATH   read the key from the first line of PATH instead\n"
    "  -w, --window SECS        accepted clock difference for timestamps [10]\n"
    "  -r, --max-retries N      retransmissions before send_failed [10]\n"
    "      --give-up-after DUR  instead, retransmit for this long (90s, 30m, 24h, 7d)\n"
    "                           before send_failed [0: by --max-retries]\n"
    "      --retry-interval SECS  wait for an ACK before retransmitting [5]\n"
    "      --db PATH|URI        a SQLite file or a postgresql:// URI [securedgram.db]\n"
    "      --rate-limit R[/B]   messages per second per sender address (per peer for\n"
    "                           peers), burst B [0: off]\n"
    "      --peers PATH         the peers file: per-peer keys, securedgram-peers(5)\n"
    "      --name NAME          this host's name, as its peers know it\n"
    "      --master-secret-file PATH  the master secret of `key = derive` peers\n"
    "      --retry-policy P     auto, fixed or adaptive (auto: adaptive for version 2\n"
    "                           peers, fixed for version 1) [auto]\n"
    "      --retry-min DUR, --retry-max DUR  the adaptive timer's range [100ms, 60s]\n"
    "      --max-message SIZE   largest message to or from a version 2 peer [1M]\n"
    "      --mtu BYTES          largest datagram of a message in parts [1280]\n"
    "      --reassembly-memory SIZE  memory for messages being put together [64M]\n"
    "      --peer               (keygen) print a peers-file key line\n"
    "      --json               (status, peers) print JSON\n"
    "  -f, --foreground         do not detach (systemd, terminals, tests)\n"
    "  -v, --verbose            log informational messages too\n"
    "  -d, --debug              log debug messages too\n"
    "  -V, --version            print the version and exit\n"
    "  -h, --help               print this help and exit\n"
    "\n"
    "Signals: TERM, INT, QUIT stop cleanly; HUP re-reads .env (secret or secret file,\n"
    "window, retries, retry interval, rate limit) and the peers file (applied peer by\n"
    "peer) and reopens a log file; USR1 logs a\n"
    "line of counters; USR2 only writes them to PIDFILE.stats, for status.\n"
    "See securedgram(8).\n";

struct cli {
    struct config_raw flags;
    int foreground;
    int peer_line; /* keygen --peer */
    int json;      /* peers --json */
    enum log_level level;
    const char *command;
};

/* A long option that sets a configuration key has the value KEY_OPT(key). */
#define KEY_OPT(k) (256 + (k))
enum { OPT_PEER = KEY_OPT(CFG_COUNT), OPT_JSON };

/* The short options that set a configuration key. */
static const struct {
    int c;
    enum config_key key;
} short_keys[] = {{'u', CFG_USER}, {'l', CFG_LOG},    {'P', CFG_PIDFILE}, {'b', CFG_ADDRESS},
                  {'p', CFG_PORT}, {'s', CFG_SECRET}, {'w', CFG_WINDOW},  {'r', CFG_MAX_RETRIES}};

/* The configuration key option c sets, or -1. */
static int option_key(int c)
{
    if (c >= KEY_OPT(0) && c < KEY_OPT(CFG_COUNT))
        return c - KEY_OPT(0);
    for (size_t i = 0; i < sizeof short_keys / sizeof short_keys[0]; i++)
        if (short_keys[i].c == c)
            return (int)short_keys[i].key;
    return -1;
}

/* Parses argv into cli; returns 0, 1 on an error (reported), or -1 when done (help/version). */
static int parse_args(int argc, char **argv, struct cli *cli)
{
    static const struct option longopts[] = {
        {"user", required_argument, NULL, 'u'},
        {"log", required_argument, NULL, 'l'},
        {"pidfile", required_argument, NULL, 'P'},
        {"bind", required_argument, NULL, 'b'},
        {"port", required_argument, NULL, 'p'},
        {"secret", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'w'},
        {"max-retries", required_argument, NULL, 'r'},
        {"retry-interval", required_argument, NULL, KEY_OPT(CFG_RETRY_INTERVAL)},
        {"db", required_argument, NULL, KEY_OPT(CFG_DB)},
        {"secret-file", required_argument, NULL, KEY_OPT(CFG_SECRET_FILE)},
        {"rate-limit", required_argument, NULL, KEY_OPT(CFG_RATE_LIMIT)},
        {"peers", required_argument, NULL, KEY_OPT(CFG_PEERS)},
        {"name", required_argument, NULL, KEY_OPT(CFG_NAME)},
        {"master-secret-file", required_argument, NULL, KEY_OPT(CFG_MASTER_SECRET_FILE)},
        {"give-up-after", required_argument, NULL, KEY_OPT(CFG_GIVE_UP_AFTER)},
        {"retry-policy", required_argument, NULL, KEY_OPT(CFG_RETRY_POLICY)},
        {"retry-min", required_argument, NULL, KEY_OPT(CFG_RETRY_MIN)},
        {"retry-max", required_argument, NULL, KEY_OPT(CFG_RETRY_MAX)},
        {"max-message", required_argument, NULL, KEY_OPT(CFG_MAX_MESSAGE)},
        {"mtu", required_argument, NULL, KEY_OPT(CFG_MTU)},
        {"reassembly-memory", required_argument, NULL, KEY_OPT(CFG_REASSEMBLY_MEMORY)},
        {"control", required_argument, NULL, KEY_OPT(CFG_CONTROL)},
        {"metrics", required_argument, NULL, KEY_OPT(CFG_METRICS)},
        {"log-format", required_argument, NULL, KEY_OPT(CFG_LOG_FORMAT)},
        {"peer", no_argument, NULL, OPT_PEER},
        {"json", no_argument, NULL, OPT_JSON},
        {"foreground", no_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"debug", no_argument, NULL, 'd'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":u:l:P:b:p:s:w:r:fvdVh", longopts, NULL)) != -1) {
        int key = option_key(c);
        switch (key >= 0 ? 0 : c) {
        case 0:
            break;
        case OPT_PEER:
            cli->peer_line = 1;
            break;
        case OPT_JSON:
            cli->json = 1;
            break;
        case 'f':
            cli->foreground = 1;
            break;
        case 'v':
            if (cli->level < LOG_LEVEL_INFO)
                cli->level = LOG_LEVEL_INFO;
            break;
        case 'd':
            cli->level = LOG_LEVEL_DEBUG;
            break;
        case 'V':
            printf("securedgram %s\n", SG_VERSION);
            return -1;
        case 'h':
            fputs(usage_text, stdout);
            return -1;
        default:
            return tool_bad_option("securedgram", c, argv, optind, optopt);
        }
        if (key >= 0 && config_raw_set(&cli->flags, (enum config_key)key, optarg) != 0)
            return tool_fail("%s", "out of memory");
        if (key == CFG_SECRET)
            memset(optarg, 'x', strlen(optarg)); /* keep it out of ps from now on */
    }
    if (optind >= argc)
        return tool_fail("%s",
                         "no command given: start, stop, restart, status, metrics, poll, keygen or "
                         "peers "
                         "(see securedgram --help)");
    if (optind + 1 < argc)
        return tool_fail("unexpected argument '%s' (see securedgram --help)", argv[optind + 1]);
    cli->command = argv[optind];
    return 0;
}

struct ctx {
    struct cli *cli;
    struct config cfg;
    char cwd[4096];
    char env_path[4200];
};

static int load(struct ctx *x, int need_secret)
{
    char err[512];
    int loose = 0;
    if (getcwd(x->cwd, sizeof x->cwd) == NULL)
        return tool_fail("cannot find the working directory: %s", strerror(errno));
    snprintf(x->env_path, sizeof x->env_path, "%s/%s", x->cwd, SETTINGS_ENV_FILE);
    if (settings_load(&x->cli->flags, x->env_path, x->cwd, CONFIG_AT_START, need_secret, &x->cfg,
                      &loose, err, sizeof err) != 0) {
        if (need_secret)
            return tool_fail("%s", err);
        /* stop, status and poll need only the pid file: a bad value elsewhere must not
         * keep an operator from stopping the daemon */
        x->cfg.pidfile = settings_pidfile_path(&x->cli->flags, x->env_path, x->cwd);
        if (x->cfg.pidfile == NULL)
            return tool_fail("%s", "out of memory");
        fprintf(stderr, "WARNING: %s (using pid file %s)\n", err, x->cfg.pidfile);
    }
    if ((loose & SETTINGS_LOOSE_ENV) && need_secret)
        fprintf(stderr,
                "WARNING: %s is readable by group or others; it holds the secret "
                "(chmod 600 %s)\n",
                x->env_path, x->env_path);
    if ((loose & SETTINGS_LOOSE_SECRET_FILE) && need_secret)
        fprintf(stderr,
                "WARNING: %s is readable by group or others; it holds the secret "
                "(chmod 600 %s)\n",
                x->cfg.secret_file, x->cfg.secret_file);
    if ((loose & SETTINGS_LOOSE_PEERS) && need_secret)
        fprintf(stderr,
                "WARNING: %s is readable by group or others; it may hold keys (chmod 600 %s)\n",
                x->cfg.peers_file, x->cfg.peers_file);
    if ((loose & SETTINGS_LOOSE_KEY_FILE) && need_secret)
        fprintf(stderr,
                "WARNING: a key-file named in %s is readable by group or others (chmod 600 it)\n",
                x->cfg.peers_file);
    if ((loose & SETTINGS_LOOSE_MASTER) && need_secret)
        fprintf(stderr,
                "WARNING: %s is readable by group or others; it holds the master secret "
                "(chmod 600 %s)\n",
                x->cfg.master_secret_file, x->cfg.master_secret_file);
    return 0;
}

/* Reports a start-up failure to the terminal or to the waiting parent; returns 1. */
static int start_failed(int report_fd, const char *msg)
{
    if (report_fd >= 0)
        daemon_report(report_fd, msg);
    else
        fprintf(stderr, "ERROR: %s\n", msg);
    log_warn("cannot start: %s", msg);
    return 1;
}

/*
 * Everything is open: from here on the daemon runs under the system call
 * filter. The user is looked up first, because the name service may load a
 * module the first time (executable memory, which the filter refuses) and
 * reload's refusals name the user.
 */
static void enter_sandbox(void)
{
    char err[256];
    (void)getpwuid(geteuid());
    if (sandbox_enter(err, sizeof err) != 0)
        log_warn("%s; running without it", err);
}

/*
 * A database the service user may not open fails after the privilege drop, in
 * the words of open() or SQLite ("unable to open database file"); say whose
 * permission is missing, for the file or for its directory (SQLite creates
 * -wal and -shm files there).
 */
static void name_denied_user(const char *db, char *err, size_t errlen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", db);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else
        slash[slash == dir] = '\0'; /* "/x.db" -> "/" */
    int file_denied = access(db, R_OK | W_OK) != 0 && errno == EACCES;
    int dir_denied = access(dir, W_OK | X_OK) != 0 && errno == EACCES;
    if (!file_denied && !dir_denied)
        return;
    char who[64];
    user_self_name(who, sizeof who);
    snprintf(err, errlen, "cannot open database %s as user %s: %s%s", db, who, strerror(EACCES),
             file_denied ? "" : " (on its directory)");
}

/*
 * Leaves a first counters file for status, whose presence tells status that
 * the daemon can write it; the engine replaces it on SIGUSR1/SIGUSR2. A
 * daemon that dropped privileges cannot when the pid file's directory is
 * root's (/run): status then shows no counters.
 */
static void stats_begin(const char *stats)
{
    if (statsfile_write(stats, "counters: none yet\n") == 0)
        return;
    int e = errno;
    char who[64];
    user_self_name(who, sizeof who); /* getpwuid may change errno */
    log_info("no counters for status: cannot write %s as user %s: %s", stats, who, strerror(e));
}

/*
 * After bind and detach: the pid file, created and locked while still root
 * (so it may be in a directory only root can write), then the drop, then
 * the database (so its files belong to the service user), the engine and the
 * system call filter. Returns the engine, with *pidfd the pid file to release
 * at exit, or NULL with err (the socket is then closed, and the pid file
 * released).
 */
static struct engine *start_daemon(struct ctx *x, int fd, const char *stats, int *pidfd, char *err,
                                   size_t errlen)
{
    struct config *cfg = &x->cfg;
    if ((*pidfd = daemon_pidfile_claim(cfg->pidfile, err, errlen)) < 0) {
        close(fd);
        return NULL;
    }
    (void)unlink(stats); /* an earlier run's counters, removed while we still may (ours: locked) */
    struct ctlsock *ctl = NULL;
    struct httpsrv *metrics = NULL;
    if (cfg->control != NULL) {
        /* made while still root, where the pid file is, and given to the service user */
        struct passwd *pw = geteuid() == 0 ? getpwnam(cfg->user) : NULL;
        ctl = ctlsock_open(cfg->control, pw != NULL ? pw->pw_uid : (uid_t)-1,
                           pw != NULL ? pw->pw_gid : (gid_t)-1, err, errlen);
        if (ctl == NULL)
            goto fail;
    }
    if (cfg->metrics != NULL) {
        /* before the drop: a port below 1024 needs root, as the main one does */
        char why[400];
        if ((metrics = httpsrv_open(cfg->metrics, why, sizeof why)) == NULL) {
            snprintf(err, errlen, "SECUREDGRAM_METRICS: %s", why);
            goto fail;
        }
    }
    if (daemon_drop_privileges(cfg->user, err, errlen) != 0 ||
        daemon_no_new_privs(err, errlen) != 0)
        goto fail;
    struct store *st = NULL;
    if (store_open(cfg->db, STORE_CREATE, STORE_DAEMON_BUSY_MS, &st, err, errlen) != STORE_OK) {
        if (strstr(cfg->db, "://") == NULL) /* a file's permission, not a server's */
            name_denied_user(cfg->db, err, errlen);
        goto fail;
    }
    struct engine_opts o = {
        .cfg = cfg, .fd = fd, .store = st, .stats_path = stats, .ctl = ctl, .metrics = metrics};
    struct engine *e = engine_new(&o, err, errlen); /* closes fd, st, ctl and metrics if it fails */
    if (e == NULL) {
        daemon_pidfile_release(cfg->pidfile, *pidfd);
        return NULL;
    }
    stats_begin(stats);
    return e;
fail:
    ctlsock_close(ctl);
    httpsrv_close(metrics);
    close(fd);
    daemon_pidfile_release(cfg->pidfile, *pidfd);
    return NULL;
}

/*
 * HUP: the whole configuration is read again, as at start (flags kept, .env
 * and the environment re-read); only if it validates, and its secret makes a
 * key, are the values that may change while running handed to the engine.
 * Otherwise the running configuration is kept, and the log says why. A
 * rotated log file is reopened either way.
 */
static void reload(struct ctx *x, struct engine *e)
{
    struct config next;
    char err[512];
    int loose = 0;
    log_reopen(); /* rotation works even when the new configuration is refused */
    if (settings_load(&x->cli->flags, x->env_path, x->cwd, CONFIG_AT_RELOAD, 1, &next, &loose, err,
                      sizeof err) != 0) {
        log_warn("reload refused: %s; the running configuration is kept", err);
        return;
    }
    struct envelope_key *key = next.secret != NULL ? envelope_key_from_hex(next.secret) : NULL;
    if (next.secret != NULL && key == NULL) {
        log_warn("reload refused: cannot load the new secret; the running configuration is kept");
        config_clear(&next);
        return;
    }
    char changed[256];
    if (config_restart_only_changes(&x->cfg, &next, changed, sizeof changed) > 0)
        log_warn("reload: %s changed; that takes effect only after a restart", changed);
    struct engine_hot hot = {.window = next.window,
                             .max_retries = next.max_retries,
                             .give_up_after = next.give_up_after,
                             .retry_interval = next.retry_interval,
                             .retry_policy = next.retry_policy,
                             .retry_min_ms = next.retry_min_ms,
                             .retry_max_ms = next.retry_max_ms,
                             .max_message = next.max_message,
                             .mtu = next.mtu,
                             .reassembly_memory = next.reassembly_memory,
                             .rate_limit = next.rate_limit,
                             .rate_burst = next.rate_burst,
                             .peers = &next.peers,
                             .master = next.has_master ? next.master : NULL};
    int applied = engine_set_hot(e, &hot, key, err, sizeof err);
    config_clear(&next);
    if (applied != 0) {
        log_warn("reload refused: %s; the running configuration is kept", err);
        return;
    }
    log_warn("configuration reloaded (window %us, max retries %u, retry interval %us, give up "
             "after %us, retry policy %s %u-%u ms, max message %u, mtu %u, rate limit %u/%u, "
             "%d peers%s)",
             hot.window, hot.max_retries, hot.retry_interval, hot.give_up_after,
             config_retry_policy_name(hot.retry_policy), hot.retry_min_ms, hot.retry_max_ms,
             hot.max_message, hot.mtu, hot.rate_limit, hot.rate_burst, engine_peer_count(e),
             key != NULL ? ", the shared secret" : "");
}

/*
 * load, then the stack it used wiped: the frames of the commands that follow
 * are made in that stack, and a part of them no one writes would keep what
 * reading the secret left there (as the daemon's memory, for its life).
 */
static int load_wiped(struct ctx *x, int keys)
{
    int rc = load(x, keys);
    secret_wipe_stack();
    return rc;
}

static int cmd_start(struct ctx *x)
{
    char err[512];
    pid_t pid;
    struct config *cfg = &x->cfg;
    enum daemon_state r = daemon_pidfile_check(cfg->pidfile, &pid, err, sizeof err);
    if (r != DAEMON_STOPPED)
        return r == DAEMON_ERROR
                   ? tool_fail("%s", err)
                   : tool_fail("securedgram is already running (pid %ld, pid file %s)", (long)pid,
                               cfg->pidfile);
    if (log_open(cfg->log, "securedgram") != 0) {
        snprintf(err, sizeof err, "cannot open log %s: %s", cfg->log, strerror(errno));
        return tool_fail("%s", err);
    }
    log_set_level(x->cli->level);
    log_set_json(cfg->log_json);
    settings_log_warnings(); /* what load() wrote to stderr, now in the log too */
    int fd = net_bind(cfg->address, cfg->port, SOCK_BUF_BYTES, err, sizeof err);
    if (fd < 0)
        return start_failed(-1, err);
    int report = -1;
    if (!x->cli->foreground && (report = daemon_detach(err, sizeof err)) < 0) {
        close(fd);
        return start_failed(-1, err);
    }
    umask(027);
#ifdef __linux__
    /* No core dumps or ptrace by other users while the key is in memory. */
    (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
    char stats[4200];
    snprintf(stats, sizeof stats, "%s.stats", cfg->pidfile);
    int pidfd = -1;
    struct engine *e = start_daemon(x, fd, stats, &pidfd, err, sizeof err);
    if (e == NULL)
        return start_failed(report, err);
    secret_wipe_stack(); /* the key's text, as parsing and decoding left it */
    enter_sandbox();
    char db[STORE_LOCATION_TEXT_MAX];
    store_location_text(cfg->db, db, sizeof db);
    log_warn("securedgram %s listening on %s port %u (pid %ld, database %s)", SG_VERSION,
             cfg->address, cfg->port, (long)getpid(), db);
    daemon_report(report, NULL);
    int rc;
    while ((rc = engine_run(e)) == ENGINE_RELOAD) {
        reload(x, e);
        secret_wipe_stack();
    }
    engine_free(e);
    unlink(stats);
    daemon_pidfile_release(cfg->pidfile, pidfd);
    log_info("stopped");
    return rc == 0 ? 0 : 1;
}

static int cmd_stop(struct ctx *x)
{
    char err[512];
    pid_t was = 0;
    if (daemon_stop(x->cfg.pidfile, &was, err, sizeof err) != 0)
        return tool_fail("%s", err);
    if (was > 0)
        printf("securedgram stopped (pid %ld)\n", (long)was);
    else
        printf("securedgram is not running\n");
    return 0;
}

/*
 * The daemon's counters line and peer lines, as its stats file has them: over
 * the control socket, or (none: an older daemon, or SECUREDGRAM_CONTROL=none)
 * by statsfile_ask's signal. NULL if neither answers.
 */
static char *ask_report(const struct config *cfg, pid_t pid)
{
    char *text = statusview_report(cfg);
    return text != NULL ? text : statsfile_ask(cfg->pidfile, pid);
}

/* Prints the counters line of the daemon's report. */
static void print_counters(const struct config *cfg, pid_t pid)
{
    char *text = ask_report(cfg, pid);
    if (text != NULL) {
        size_t n = strcspn(text, "\n");
        printf("%.*s%s", (int)n, text, n > 0 ? "\n" : "");
    }
    free(text);
}

/*
 * A daemon that does not lock its pid file (the Ruby original, found running
 * when upgrading) is running but is not sent a signal: SIGUSR2 would end it.
 */
static int cmd_status(struct ctx *x, int json)
{
    char err[512];
    pid_t pid = 0;
    enum daemon_state r = daemon_pidfile_check(x->cfg.pidfile, &pid, err, sizeof err);
    if (r == DAEMON_ERROR)
        return tool_fail("%s", err);
    if (json)
        return statusview_json(&x->cfg, r != DAEMON_STOPPED, r == DAEMON_RUNNING, pid, stdout);
    if (r == DAEMON_STOPPED) {
        printf("securedgram is not running\n");
        return 3;
    }
    printf("securedgram is running (pid %ld)\n", (long)pid);
    if (r == DAEMON_RUNNING)
        print_counters(&x->cfg, pid);
    return 0;
}

/* `metrics`: the running daemon's /metrics text, over its control socket. */
static int cmd_metrics(struct ctx *x)
{
    char err[512];
    pid_t pid = 0;
    enum daemon_state r = daemon_pidfile_check(x->cfg.pidfile, &pid, err, sizeof err);
    if (r == DAEMON_ERROR)
        return tool_fail("%s", err);
    if (r == DAEMON_STOPPED) {
        fprintf(stderr, "securedgram is not running\n");
        return 3;
    }
    return statusview_metrics(&x->cfg, pid, stdout);
}

/* `peers`: the peers file, joined with what the running daemon saw of each peer. */
static int cmd_peers(struct ctx *x, int json)
{
    char err[512];
    pid_t pid = 0;
    if (x->cfg.peers_file == NULL)
        return tool_fail("%s", "no peers file: SECUREDGRAM_PEERS (or --peers) is not set; see "
                               "securedgram-peers(5)");
    enum daemon_state r = daemon_pidfile_check(x->cfg.pidfile, &pid, err, sizeof err);
    char *text = r == DAEMON_RUNNING ? ask_report(&x->cfg, pid) : NULL;
    int rc = peersview_print(&x->cfg, text, json, (int64_t)time(NULL), stdout);
    free(text);
    return rc;
}

static int cmd_keygen(int peer_line)
{
    char hex[ENVELOPE_KEY_HEX_LEN + 1];
    envelope_random_hex(hex, ENVELOPE_KEY_BYTES);
    printf("%s%s\n", peer_line ? "key = " : "", hex);
    secret_wipe(hex, sizeof hex);
    return 0;
}

int main(int argc, char **argv)
{
    struct cli cli = {.level = LOG_LEVEL_WARN};
    struct ctx x = {.cli = &cli};
    daemon_close_inherited(); /* before anything is opened: only what we open stays open */
    int rc = parse_args(argc, argv, &cli);
    if (rc != 0) {
        config_raw_clear(&cli.flags);
        return rc < 0 ? 0 : rc;
    }
    if (envelope_init() != 0)
        return tool_fail("%s", "cannot initialise libsodium");
    const char *cmd = cli.command != NULL ? cli.command : "";
    int starts = strcmp(cmd, "start") == 0 || strcmp(cmd, "restart") == 0;
    if (cli.peer_line && strcmp(cmd, "keygen") != 0)
        rc = tool_fail("%s", "--peer goes with keygen only (securedgram keygen --peer)");
    else if (cli.json && strcmp(cmd, "peers") != 0 && strcmp(cmd, "status") != 0)
        rc = tool_fail("%s", "--json goes with status and peers only (securedgram status --json)");
    else if (strcmp(cmd, "keygen") == 0)
        rc = cmd_keygen(cli.peer_line);
    else if (!starts && strcmp(cmd, "stop") != 0 && strcmp(cmd, "status") != 0 &&
             strcmp(cmd, "metrics") != 0 && strcmp(cmd, "poll") != 0 && strcmp(cmd, "peers") != 0)
        rc = tool_fail("unknown command '%s' (start, stop, restart, status, metrics, poll, keygen "
                       "or peers)",
                       cmd);
    else if ((rc = load_wiped(&x, starts || strcmp(cmd, "peers") == 0)) != 0)
        ; /* peers reads the peers file and its keys, as start does */
    else if (strcmp(cmd, "peers") == 0)
        rc = cmd_peers(&x, cli.json);
    else if (strcmp(cmd, "start") == 0)
        rc = cmd_start(&x);
    else if (strcmp(cmd, "stop") == 0)
        rc = cmd_stop(&x);
    else if (strcmp(cmd, "restart") == 0)
        rc = cmd_stop(&x) != 0 ? 1 : cmd_start(&x);
    else if (strcmp(cmd, "status") == 0)
        rc = cmd_status(&x, cli.json);
    else if (strcmp(cmd, "metrics") == 0)
        rc = cmd_metrics(&x);
    else
        daemon_pidfile_wait(x.cfg.pidfile);
    config_clear(&x.cfg);
    config_raw_clear(&cli.flags);
    log_close();
    return rc;
}
