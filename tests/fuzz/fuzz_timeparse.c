/* sg-clean's ages and ISO 8601 dates, on any text. */
#include "fuzz_common.h"
#include "tools/timeparse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstring(data, size);
    if (s == NULL)
        return 0;
    int64_t secs, ms;
    if (timeparse_age(s, &secs) == 0 && (secs < 0 || secs > TIMEPARSE_MAX_AGE_S))
        abort();
    struct timeparse_tm tm;
    if (timeparse_iso8601(s, &tm) == 0) {
        char text[TIMEPARSE_TEXT_LEN];
        if (tm.month < 1 || tm.month > 12 || tm.day < 1 || tm.day > 31 || tm.hour > 23)
            abort();
        if (timeparse_utc_ms(&tm, &ms) == 0 || timeparse_to_ms(&tm, &ms) == 0)
            (void)timeparse_format_utc(ms, text);
    }
    free(s);
    return 0;
}
