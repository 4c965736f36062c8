/*
 * peerfiles: the I/O half of per-peer keys. Reads the peers file, the key
 * files it names and the master secret file, each checked as the secret
 * file is (a regular file, of bounded size; group or others able to read it
 * is reported), and hands the text to the pure parser (conf/peers.c).
 */
#define _GNU_SOURCE
#include "conf/settings.h"

#include "util/secret.h"
#include "util/user.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX 4096

/*
 * Reads the whole regular file path (at most max bytes) into a malloc'd
 * buffer (*len bytes, NUL-terminated). Returns it, or NULL with "cannot read
 * WHAT PATH: why" in err. *loose is set if group or others may read it.
 */
static char *read_small(const char *what, const char *path, size_t max, size_t *len, int *loose,
                        char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        char who[64];
        user_self_name(who, sizeof who);
        snprintf(err, errlen, "cannot read %s %s%s%s: %s", what, path,
                 e == EACCES || e == EPERM ? " as user " : "", e == EACCES || e == EPERM ? who : "",
                 strerror(e));
        return NULL;
    }
    struct stat sb;
    char *text = NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (size_t)sb.st_size > max) {
        snprintf(err, errlen, "cannot read %s %s: not a regular file of at most %zu bytes", what,
                 path, max);
        goto out;
    }
    *loose = (sb.st_mode & 077) != 0;
    text = malloc((size_t)sb.st_size + 1);
    ssize_t got = text != NULL ? read(fd, text, (size_t)sb.st_size) : -1;
    if (got < 0) {
        snprintf(err, errlen, "cannot read %s %s: %s", what, path,
                 text == NULL ? "out of memory" : strerror(errno));
        secret_free(text, (size_t)sb.st_size + 1);
        text = NULL;
        goto out;
    }
    text[got] = '\0';
    *len = (size_t)got;
out:
    close(fd);
    return text;
}

/* Reads a file of one key (64 hex digits and a newline) into key. */
static int read_key(const char *what, const char *path, uint8_t key[PEER_KEY_BYTES], int *loose,
                    char *err, size_t errlen)
{
    size_t len = 0;
    int lz = 0;
    char *text = read_small(what, path, KEY_FILE_MAX, &len, &lz, err, errlen);
    if (text == NULL)
        return -1;
    char why[128];
    int rc = peers_key_text(text, len, key, why, sizeof why);
    if (rc != 0)
        snprintf(err, errlen, "%s %s: %s (make one with: securedgram keygen > FILE)", what, path,
                 why);
    secret_free(text, len + 1);
    *loose |= lz;
    return rc;
}

/* path as written in the peers file: relative to the file's own folder. */
static char *beside(const char *peers_file, const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char *copy = strdup(peers_file), *out = NULL;
    if (copy != NULL && asprintf(&out, "%s/%s", dirname(copy), path) < 0)
        out = NULL;
    free(copy);
    return out;
}

int settings_load_peers(struct config *cfg, int *loose, char *err, size_t errlen)
{
    if (cfg->peers_file == NULL)
        return 0;
    size_t len = 0;
    int lz = 0;
    char *text =
        read_small("SECUREDGRAM_PEERS", cfg->peers_file, PEERS_TEXT_MAX, &len, &lz, err, errlen);
    if (text == NULL)
        return -1;
    *loose |= lz ? SETTINGS_LOOSE_PEERS : 0;
    struct peers_conf pc = {0};
    int rc = peers_parse(text, len, cfg->peers_file, &pc, err, errlen);
    secret_free(text, len + 1);
    if (rc != 0)
        return -1;
    for (int i = 0; i < pc.n && rc == 0; i++) {
        struct peer_conf *p = &pc.peer[i];
        if (p->key_kind != PEER_KEY_FILE)
            continue;
        char *path = beside(cfg->peers_file, p->key_file), what[PEER_NAME_MAX + 40];
        snprintf(what, sizeof what, "the key-file of peer %s,", p->name);
        lz = 0;
        rc = path != NULL ? read_key(what, path, p->key, &lz, err, errlen) : -1;
        if (path == NULL)
            snprintf(err, errlen, "out of memory");
        *loose |= lz ? SETTINGS_LOOSE_KEY_FILE : 0;
        free(path);
    }
    if (rc == 0 && cfg->master_secret_file != NULL && peers_uses_master(&pc)) {
        lz = 0;
        rc = read_key("SECUREDGRAM_MASTER_SECRET_FILE", cfg->master_secret_file, cfg->master, &lz,
                      err, errlen);
        cfg->has_master = rc == 0;
        *loose |= lz ? SETTINGS_LOOSE_MASTER : 0;
    }
    if (rc == 0)
        rc = peers_check(&pc, cfg->peers_file, cfg->name, cfg->has_master, err, errlen);
    if (rc == 0 && pc.n == 0 && cfg->secret == NULL) {
        snprintf(err, errlen,
                 "SECUREDGRAM_PEERS %s has no [peer] section and SECUREDGRAM_SECRET is not set: "
                 "nothing could be sent or received",
                 cfg->peers_file);
        rc = -1;
    }
    if (rc != 0) {
        peers_free(&pc);
        return -1;
    }
    cfg->peers = pc;
    return 0;
}
