/*
 * Option and configuration validation: the input is split at NUL bytes into
 * values for the flags, the environment and the .env file, key by key; both
 * the start and the reload precedence are resolved.
 */
#include "conf/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_raw src[3] = {{{0}}};
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *p = text, *end = text + size;
    for (int i = 0; i < 3 * CFG_COUNT && p <= end; i++) {
        size_t n = strlen(p);
        if (n > 0 || (i % 2) == 0) /* an empty value is meaningful too */
            if (config_raw_set(&src[i / CFG_COUNT], (enum config_key)(i % CFG_COUNT), p) != 0)
                break;
        p += n + 1;
    }
    for (int mode = 0; mode < 2; mode++) {
        struct config cfg;
        char err[512];
        err[0] = '\0';
        if (config_resolve(&src[0], &src[1], &src[2], mode ? CONFIG_AT_RELOAD : CONFIG_AT_START,
                           "/work", mode, &cfg, err, sizeof err) == 0) {
            /* the database: an absolute path, or a PostgreSQL URI as it was given */
            int db_ok = cfg.db[0] == '/' || strncmp(cfg.db, "postgresql://", 13) == 0 ||
                        strncmp(cfg.db, "postgres://", 11) == 0;
            if (cfg.port < 1 || cfg.port > 65535 || cfg.window < 1 || !db_ok)
                abort(); /* accepted means valid */
            config_clear(&cfg);
        } else if (strlen(err) == 0 || strchr(err, '\n') != NULL) {
            abort(); /* refused means one line saying why */
        }
    }
    for (int i = 0; i < 3; i++)
        config_raw_clear(&src[i]);
    free(text);
    return 0;
}
