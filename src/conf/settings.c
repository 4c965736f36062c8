#define _GNU_SOURCE
#include "conf/settings.h"

#include "wire/envelope.h"
#include "util/log.h"
#include "util/secret.h"
#include "util/user.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * "cannot read WHAT PATH: why" after a failed open. A permission error names
 * the user: after the privilege drop, reload (HUP) reads as that user, so a
 * root-only file that worked at start is refused, and the operator needs to
 * know whose permission is missing.
 */
static void open_failed(char *err, size_t errlen, const char *what, const char *path, int e)
{
    if (e != EACCES && e != EPERM) {
        snprintf(err, errlen, "cannot read %s%s: %s", what, path, strerror(e));
        return;
    }
    char who[64];
    user_self_name(who, sizeof who);
    snprintf(err, errlen,
             "cannot read %s%s as user %s: %s (make it readable by %s; see securedgram(8))", what,
             path, who, strerror(e), who);
}

/*
 * Warnings about the configuration (config_dotenv_parse_warn, unknown names in
 * the environment). At start they go to stderr, the daemon has not detached
 * yet, and are kept for settings_log_warnings; on reload they go to the log.
 * Each source gives at most CONFIG_MAX_WARNINGS and a count of the rest.
 */
struct warnings {
    enum { WARN_NONE, WARN_START, WARN_RELOAD } to;
    const char *where; /* the .env file's path, or "environment" */
    const char *sep;   /* after where: " " before "line N: ...", or ": " */
};

static char kept[2 * (CONFIG_MAX_WARNINGS + 1)][480]; /* .env, then the environment */
static int nkept;

static void keep(const char *text)
{
    if (nkept < (int)(sizeof kept / sizeof kept[0]))
        snprintf(kept[nkept++], sizeof kept[0], "%s", text);
}

static void emit(const struct warnings *w, const char *text)
{
    if (w->to == WARN_START) {
        fprintf(stderr, "WARNING: %s\n", text);
        keep(text);
    } else if (w->to == WARN_RELOAD) {
        log_warn("%s", text);
    }
}

static void on_warning(void *ctx, const char *line)
{
    struct warnings *w = ctx;
    char text[480];
    snprintf(text, sizeof text, "%s%s%s", w->where, w->sep, line);
    emit(w, text);
}

void settings_log_warnings(void)
{
    for (int i = 0; i < nkept; i++)
        log_warn("%s", kept[i]);
    nkept = 0;
}

/* Warns about each SECUREDGRAM_* name in the environment that is no setting. */
static void check_environment(struct warnings *w)
{
    int n = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        size_t len = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
        char msg[256];
        if (config_unknown_name(*e, len, msg, sizeof msg) && n++ < CONFIG_MAX_WARNINGS)
            on_warning(w, msg);
    }
    if (n > CONFIG_MAX_WARNINGS) {
        char msg[64];
        snprintf(msg, sizeof msg, "(%d more warnings not shown)", n - CONFIG_MAX_WARNINGS);
        on_warning(w, msg);
    }
}

static int read_env(const char *path, struct config_raw *raw, int *loose, struct warnings *w,
                    char *err, size_t errlen)
{
    *loose = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        open_failed(err, errlen, "", path, errno);
        return -1;
    }
    struct stat sb;
    char *text = NULL;
    int rc = -1;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > SETTINGS_MAX_ENV_BYTES) {
        snprintf(err, errlen, "cannot read %s: not a regular file of at most %d bytes", path,
                 SETTINGS_MAX_ENV_BYTES);
        goto out;
    }
    *loose = (sb.st_mode & 077) != 0;
    text = malloc((size_t)sb.st_size + 1);
    if (text == NULL) {
        snprintf(err, errlen, "cannot read %s: out of memory", path);
        goto out;
    }
    ssize_t got = read(fd, text, (size_t)sb.st_size);
    if (got < 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    char why[256];
    if (w != NULL)
        w->where = path;
    if (config_dotenv_parse_warn(text, (size_t)got, raw, w != NULL ? on_warning : NULL, w, why,
                                 sizeof why) != 0) {
        snprintf(err, errlen, "%s %s", path, why);
        goto out;
    }
    rc = 0;
out:
    secret_free(text, text != NULL ? (size_t)sb.st_size : 0); /* it holds the secret */
    close(fd);
    return rc;
}

int settings_read_env_file(const char *path, struct config_raw *raw, int *loose, char *err,
                           size_t errlen)
{
    return read_env(path, raw, loose, NULL, err, errlen);
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

/* Reads the secret from the first line of path into top's SECUREDGRAM_SECRET. */
static int read_secret_file(const char *path, struct config_raw *top, int *loose, char *err,
                            size_t errlen)
{
    char buf[SETTINGS_MAX_SECRET_FILE_BYTES + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    ssize_t n = -1;
    if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
        sb.st_size <= SETTINGS_MAX_SECRET_FILE_BYTES) {
        n = read(fd, buf, SETTINGS_MAX_SECRET_FILE_BYTES);
        *loose |= (sb.st_mode & 077) != 0 ? SETTINGS_LOOSE_SECRET_FILE : 0;
    }
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (n < 0 && fd < 0) {
        open_failed(err, errlen, "SECUREDGRAM_SECRET_FILE ", path, e);
        return -1;
    }
    if (n < 0) {
        snprintf(err, errlen,
                 "cannot read SECUREDGRAM_SECRET_FILE %s: not a regular file of at most 4096 bytes",
                 path);
        return -1;
    }
    buf[n] = '\0';
    char *line = buf + strspn(buf, " \t\r\n");
    line[strcspn(line, "\r\n")] = '\0';
    for (size_t len = strlen(line); len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t');)
        line[--len] = '\0';
    int rc = 0;
    if (!envelope_key_hex_valid(line)) {
        snprintf(err, errlen,
                 "SECUREDGRAM_SECRET_FILE %s: the first line must be 64 hex digits "
                 "(make one with: securedgram keygen > FILE)",
                 path);
        rc = -1;
    } else if (config_raw_set(top, CFG_SECRET, line) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    secret_wipe(buf, sizeof buf);
    return rc;
}

int settings_load(const struct config_raw *flags, const char *env_path, const char *cwd,
                  enum config_mode mode, int need_secret, struct config *cfg, int *loose, char *err,
                  size_t errlen)
{
    struct config_raw file = {0}, env = {0}, top = {0};
    int rc = -1, env_loose = 0;
    /* stop, status and poll (need_secret 0) need only the pid file: no warnings */
    struct warnings w = {mode == CONFIG_AT_RELOAD ? WARN_RELOAD
                         : need_secret            ? WARN_START
                                                  : WARN_NONE,
                         env_path, " "};
    if (w.to == WARN_START)
        nkept = 0;
    *loose = 0;
    if (read_env(env_path, &file, &env_loose, &w, err, errlen) != 0)
        goto out;
    *loose = env_loose ? SETTINGS_LOOSE_ENV : 0;
    w.where = "environment";
    w.sep = ": ";
    if (w.to != WARN_NONE)
        check_environment(&w);
    config_raw_from_env(&env, env_get);
    /* The flags, plus the secret from SECUREDGRAM_SECRET_FILE, which wins over any other. */
    for (int k = 0; k < CFG_COUNT; k++)
        if (flags != NULL && flags->v[k] != NULL &&
            config_raw_set(&top, (enum config_key)k, flags->v[k]) != 0)
            goto out;
    const struct config_raw *second = mode == CONFIG_AT_START ? &env : &file;
    const struct config_raw *third = mode == CONFIG_AT_START ? &file : &env;
    const char *sf = top.v[CFG_SECRET_FILE] != NULL       ? top.v[CFG_SECRET_FILE]
                     : second->v[CFG_SECRET_FILE] != NULL ? second->v[CFG_SECRET_FILE]
                                                          : third->v[CFG_SECRET_FILE];
    if (sf != NULL && sf[0] != '\0') {
        char *path = NULL;
        if (sf[0] != '/' ? asprintf(&path, "%s/%s", cwd, sf) < 0 : (path = strdup(sf)) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        int r = read_secret_file(path, &top, loose, err, errlen);
        free(path);
        if (r != 0)
            goto out;
    }
    rc = config_resolve(&top, &env, &file, mode, cwd, need_secret, cfg, err, errlen);
    if (rc == 0 && (need_secret || mode == CONFIG_AT_RELOAD) &&
        settings_load_peers(cfg, loose, err, errlen) != 0) {
        config_clear(cfg);
        rc = -1;
    }
out:
    config_raw_clear(&file);
    config_raw_clear(&env);
    config_raw_clear(&top);
    return rc;
}

/* v made absolute against cwd (malloc'd), or NULL when out of memory. */
static char *absolute(const char *v, const char *cwd)
{
    char *path = NULL;
    if (v[0] == '/')
        path = strdup(v);
    else if (asprintf(&path, "%s/%s", cwd, v) < 0)
        path = NULL;
    return path;
}

/* k as a tool sees it: the flag, else the environment, else the .env file; NULL if none. */
static const char *pick(enum config_key k, const char *flag, const struct config_raw *file)
{
    const char *v = flag;
    if (v == NULL || v[0] == '\0')
        v = getenv(config_key_name(k));
    if (v == NULL || v[0] == '\0')
        v = file->v[k];
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* The .env file at path, as far as it parses (best effort: the lines before a bad one). */
static void read_env_best_effort(const char *path, struct config_raw *file)
{
    char err[256];
    int loose = 0;
    if (settings_read_env_file(path, file, &loose, err, sizeof err) != 0) {
        /* the values before the bad line are in file: good enough to find a path */
    }
}

static char *pidfile_path(const struct config_raw *flags, const struct config_raw *file,
                          const char *cwd)
{
    const char *v = pick(CFG_PIDFILE, flags != NULL ? flags->v[CFG_PIDFILE] : NULL, file);
    return absolute(v != NULL ? v : config_key_default(CFG_PIDFILE), cwd);
}

char *settings_pidfile_path(const struct config_raw *flags, const char *env_path, const char *cwd)
{
    struct config_raw file = {0};
    read_env_best_effort(env_path, &file);
    char *path = pidfile_path(flags, &file, cwd);
    config_raw_clear(&file);
    return path;
}

char *settings_control_path(void)
{
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return NULL;
    struct config_raw file = {0};
    read_env_best_effort(SETTINGS_ENV_FILE, &file);
    const char *v = pick(CFG_CONTROL, NULL, &file);
    char *path = NULL;
    if (v == NULL) {
        char *pid = pidfile_path(NULL, &file, cwd);
        int oom;
        path = pid != NULL ? config_control_default(pid, &oom) : NULL;
        free(pid);
    } else if (strcmp(v, "none") != 0) {
        path = absolute(v, cwd);
    }
    config_raw_clear(&file);
    return path;
}

char *settings_db_path(const char *db_flag, char *err, size_t errlen)
{
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        snprintf(err, errlen, "cannot find the working directory: %s", strerror(errno));
        return NULL;
    }
    struct config_raw file = {0};
    char *path = NULL;
    int loose = 0;
    const char *envdb = getenv("SECUREDGRAM_DB");
    if (db_flag == NULL && envdb == NULL &&
        settings_read_env_file(SETTINGS_ENV_FILE, &file, &loose, err, errlen) != 0)
        goto out;
    const char *v = db_flag != NULL ? db_flag : envdb != NULL ? envdb : file.v[CFG_DB];
    if (v == NULL)
        v = "securedgram.db";
    if (v[0] == '\0') {
        snprintf(err, errlen, "SECUREDGRAM_DB must not be empty");
        goto out;
    }
    if ((path = config_db_location(v, cwd)) == NULL)
        snprintf(err, errlen, "out of memory");
out:
    config_raw_clear(&file);
    return path;
}
