/*
 * user: who this process runs as, by name, for messages that must say who
 * could not open a file ("... as user nobody: Permission denied").
 */
#ifndef SG_USER_H
#define SG_USER_H

#include <stddef.h>

/* The name of the effective user (after a privilege drop: the service user), or "uid N". */
void user_self_name(char *out, size_t len);

#endif
