/*
 * settings: the I/O half of configuration. Reads the .env file and the
 * environment and hands them to config (the pure half) to resolve.
 */
#ifndef SG_SETTINGS_H
#define SG_SETTINGS_H

#include "conf/config.h"

#include <stddef.h>

/* The .env file is read from the working directory at start. */
#define SETTINGS_ENV_FILE ".env"
#define SETTINGS_MAX_ENV_BYTES (1024 * 1024)

/*
 * Reads the .env file at path into raw. A missing file is not an error (raw
 * stays empty). Sets *loose to 1 if the file is readable by group or others.
 * Returns 0, or -1 with one line in err.
 */
__attribute__((warn_unused_result)) int settings_read_env_file(const char *path,
                                                               struct config_raw *raw, int *loose,
                                                               char *err, size_t errlen);

/* Bits of *loose: files holding the secret that group or others can read. */
#define SETTINGS_LOOSE_ENV 1
#define SETTINGS_LOOSE_SECRET_FILE 2
#define SETTINGS_LOOSE_PEERS 4    /* the peers file (it may hold keys) */
#define SETTINGS_LOOSE_KEY_FILE 8 /* a key-file it names */
#define SETTINGS_LOOSE_MASTER 16  /* SECUREDGRAM_MASTER_SECRET_FILE */
#define SETTINGS_MAX_SECRET_FILE_BYTES 4096

/*
 * Loads the whole configuration: flags (may be NULL), the environment, and the
 * .env file at env_path, by the precedence of mode, relative paths resolved
 * against cwd. When SECUREDGRAM_SECRET_FILE is set, the secret is the first
 * line of that file (it wins over SECUREDGRAM_SECRET). Returns 0 and fills
 * *cfg, or -1 with one line in err.
 *
 * Warnings (a .env line without '=', an unknown SECUREDGRAM_* name in .env or
 * the environment, a second setting on one line; see config_dotenv_parse_warn)
 * never make it fail. At start with need_secret they are written to stderr as
 * "WARNING: ..." lines and kept for settings_log_warnings; at start without
 * need_secret (stop, status, poll) they are not reported; on reload they are
 * logged with log_warn.
 */
__attribute__((warn_unused_result)) int settings_load(const struct config_raw *flags,
                                                      const char *env_path, const char *cwd,
                                                      enum config_mode mode, int need_secret,
                                                      struct config *cfg, int *loose, char *err,
                                                      size_t errlen);

/*
 * Reads cfg->peers_file (if set) into cfg->peers, with the key files it
 * names (a relative path is taken from the peers file's folder) and, when a
 * peer has `key = derive`, the master secret; checks the rules between them
 * (peers_check). Sets bits of *loose as settings_load does. Returns 0, or -1
 * with one line in err (cfg->peers then empty). settings_load calls it at
 * start with need_secret and on every reload.
 */
__attribute__((warn_unused_result)) int settings_load_peers(struct config *cfg, int *loose,
                                                            char *err, size_t errlen);

/*
 * Logs (log_warn) the warnings the last settings_load at start wrote to
 * stderr, once the log is open, and forgets them.
 */
void settings_log_warnings(void);

/*
 * The pid file path alone, best effort (for stop, status and poll, which must
 * work even when another value in the configuration is bad): the flag, else
 * SECUREDGRAM_PIDFILE from the environment, else from the .env file (as far
 * as it parses), else the default; made absolute against cwd. NULL only when
 * out of memory.
 */
char *settings_pidfile_path(const struct config_raw *flags, const char *env_path, const char *cwd);

/*
 * The database path for a tool: db_flag if given, else SECUREDGRAM_DB from
 * the environment, else from ./.env, else the default; made absolute.
 * Returns a malloc'd path, or NULL with one line in err.
 */
char *settings_db_path(const char *db_flag, char *err, size_t errlen);

/*
 * The control socket a tool run here would find the daemon at, as the
 * daemon resolves it (SECUREDGRAM_CONTROL from the environment or ./.env,
 * else beside the pid file), or NULL (none, or no memory). Never fails
 * loudly: a tool that cannot find the daemon watches the database instead.
 */
char *settings_control_path(void);

#endif
