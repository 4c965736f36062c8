/*
 * peersview: `securedgram peers [--json]`. What the peers file says of each
 * peer (endpoint, allowed, wire version, the pair key's fingerprint, never a
 * key), and, while the daemon runs, what the daemon saw: the endpoint it
 * roamed to, when it last heard the peer, messages stored and acknowledged,
 * drops by reason (the "peer ..." lines of its stats file, peertab_report).
 */
#ifndef SG_PEERSVIEW_H
#define SG_PEERSVIEW_H

#include "conf/config.h"

#include <stdint.h>
#include <stdio.h>

/*
 * Prints cfg's peers to out, as text or (json) as one JSON array; daemon is
 * the running daemon's stats file text, or NULL if none runs. now_s is the
 * wall clock, for "seconds ago". Returns 0, or 1 after printing why.
 */
int peersview_print(const struct config *cfg, const char *daemon, int json, int64_t now_s,
                    FILE *out);

#endif
