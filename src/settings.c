#define _GNU_SOURCE
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int settings_read_env_file(const char *path, struct config_raw *raw, int *loose, char *err,
                           size_t errlen)
{
    *loose = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
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
    if (config_dotenv_parse(text, (size_t)got, raw, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s %s", path, why);
        goto out;
    }
    rc = 0;
out:
    if (text != NULL) {
        explicit_bzero(text, (size_t)sb.st_size);
        free(text);
    }
    close(fd);
    return rc;
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

int settings_load(const struct config_raw *flags, const char *env_path, const char *cwd,
                  enum config_mode mode, int need_secret, struct config *cfg, int *loose,
                  char *err, size_t errlen)
{
    struct config_raw file = {0}, env = {0};
    int rc = -1;
    if (settings_read_env_file(env_path, &file, loose, err, errlen) != 0)
        goto out;
    config_raw_from_env(&env, env_get);
    rc = config_resolve(flags, &env, &file, mode, cwd, need_secret, cfg, err, errlen);
out:
    config_raw_clear(&file);
    config_raw_clear(&env);
    return rc;
}

char *settings_db_path(const char *db_flag, char *err, size_t errlen)
{
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) == NULL) {
        snprintf(err, errlen, "cannot find the working directory: %s", strerror(errno));
        return NULL;
    }
    struct config_raw flags = {0}, file = {0};
    char *path = NULL;
    int loose = 0;
    if (db_flag != NULL && config_raw_set(&flags, CFG_DB, db_flag) != 0)
        goto out;
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
    if (v[0] == '/') {
        path = strdup(v);
    } else if (asprintf(&path, "%s/%s", cwd, v) < 0) {
        path = NULL;
    }
    if (path == NULL)
        snprintf(err, errlen, "out of memory");
out:
    config_raw_clear(&flags);
    config_raw_clear(&file);
    return path;
}
