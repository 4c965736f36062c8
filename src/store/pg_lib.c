/*
 * pg_lib: dlopen of libpq and the table of its functions (see pg_lib.h).
 */
#define PG_LIB_TABLE
#include "store/pg_lib.h"

#include <dlfcn.h>
#include <stdio.h>

struct pg_lib pg_lib;

static int loaded;

int pg_lib_load(char *err, size_t errlen)
{
    if (loaded)
        return 0;
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(err, errlen, "cannot load libpq for a PostgreSQL database: %s (install libpq5)",
                 dlerror());
        return -1;
    }
    const char *missing = NULL;
#define PG_LIB_FIND(f)                                                                             \
    if ((*(void **)&pg_lib.f = dlsym(h, #f)) == NULL && missing == NULL)                           \
        missing = #f;
    PG_LIB_FUNCS(PG_LIB_FIND)
#undef PG_LIB_FIND
    if (missing != NULL) {
        snprintf(err, errlen, "cannot use libpq for a PostgreSQL database: it has no %s", missing);
        dlclose(h);
        return -1;
    }
    loaded = 1; /* kept loaded: the backend may open again */
    return 0;
}
