/* The .env parser, on any bytes. */
#include "conf/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_raw raw = {0};
    char err[256];
    err[0] = '\0';
    if (config_dotenv_parse((const char *)data, size, &raw, err, sizeof err) != 0 &&
        (strlen(err) == 0 || strchr(err, '\n') != NULL))
        abort(); /* one line that says why */
    config_raw_clear(&raw);
    return 0;
}
