#include "util/user.h"

#include <pwd.h>
#include <stdio.h>
#include <unistd.h>

void user_self_name(char *out, size_t len)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    uid_t uid = geteuid();
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found != NULL)
        snprintf(out, len, "%s", found->pw_name);
    else
        snprintf(out, len, "uid %ld", (long)uid);
}
