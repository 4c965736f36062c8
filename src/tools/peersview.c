/*
 * peersview: the peers file joined with the daemon's "peer NAME key=value
 * ..." lines, printed like `wg show` or as JSON through jansson.
 */
#include "tools/peersview.h"

#include "tools/tool.h"
#include "util/clock.h"
#include "util/hex.h"
#include "util/secret.h"
#include "wire/judge.h"
#include "wire/peerkeys.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define COUNTS 4 /* stored, duplicates, acknowledged, rate_limited */

static const char *const count_names[COUNTS] = {"stored", "duplicates", "acknowledged",
                                                "rate_limited"};

/* What the daemon's line says of one peer. */
struct seen {
    int found;
    char endpoint[NET_HOST_MAX + 16]; /* "-" if it has none */
    unsigned long long last_seen_ns;
    unsigned long long count[COUNTS];
    unsigned long long drop[JUDGE_VERDICTS];
};

/* Reads the daemon's line for name, if there is one, into *s. */
static void find_seen(const char *daemon, const char *name, struct seen *s)
{
    memset(s, 0, sizeof *s);
    size_t nl = strlen(name);
    for (const char *p = daemon; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > 5 + nl && strncmp(p, "peer ", 5) == 0 && strncmp(p + 5, name, nl) == 0 &&
            p[5 + nl] == ' ') {
            char line[2048];
            snprintf(line, sizeof line, "%.*s", (int)len, p);
            s->found = 1;
            char *save = NULL;
            for (char *tok = strtok_r(line + 6 + nl, " ", &save); tok != NULL;
                 tok = strtok_r(NULL, " ", &save)) {
                char *eq = strchr(tok, '=');
                if (eq == NULL)
                    continue;
                *eq = '\0';
                const char *v = eq + 1;
                if (strcmp(tok, "endpoint") == 0)
                    snprintf(s->endpoint, sizeof s->endpoint, "%s", v);
                else if (strcmp(tok, "last_seen_ns") == 0)
                    s->last_seen_ns = strtoull(v, NULL, 10);
                for (int i = 0; i < COUNTS; i++)
                    if (strcmp(tok, count_names[i]) == 0)
                        s->count[i] = strtoull(v, NULL, 10);
                for (int i = JUDGE_DROP_SHORT; i < JUDGE_VERDICTS; i++)
                    if (strcmp(tok, judge_name((enum judge_verdict)i)) == 0)
                        s->drop[i] = strtoull(v, NULL, 10);
            }
            return;
        }
        p = end != NULL ? end + 1 : NULL;
    }
}

/* The pair key's fingerprint as 16 hex digits, or "?" if it cannot be made. */
static void fingerprint(const struct config *cfg, const struct peer_conf *p, char out[17])
{
    uint8_t pair[PEER_KEY_BYTES], fp[PEERKEYS_ID_BYTES];
    snprintf(out, 17, "?");
    if (p->key_kind == PEER_KEY_DERIVE) {
        if (!cfg->has_master || cfg->name == NULL ||
            peerkeys_pair(cfg->master, cfg->name, p->name, pair) != 0)
            return;
    } else {
        memcpy(pair, p->key, sizeof pair);
    }
    peerkeys_fingerprint(pair, fp);
    secret_wipe(pair, sizeof pair);
    hex_encode(out, 17, fp, sizeof fp);
}

static void endpoint_text(const struct peer_conf *p, char *out, size_t n)
{
    char ep[NET_ENDPOINT_MAX] = "-";
    if (p->has_endpoint)
        net_endpoint_format(&p->endpoint, ep);
    snprintf(out, n, "%s", ep);
}

static void time_text(int64_t sec, char *out, size_t n)
{
    char t[CLOCK_UTC_TEXT_MAX];
    if (clock_format_utc(t, sizeof t, sec, 0, 0) != 0)
        snprintf(t, sizeof t, "?");
    snprintf(out, n, "%sZ", t);
}

static json_t *peer_json(const struct config *cfg, const struct peer_conf *p, const struct seen *s)
{
    char ep[NET_HOST_MAX + 16], fp[17], t[CLOCK_UTC_TEXT_MAX + 2];
    endpoint_text(p, ep, sizeof ep);
    fingerprint(cfg, p, fp);
    json_t *o = json_object(), *allowed = json_array(), *drops = json_object();
    for (int i = 0; i < p->nallowed; i++) {
        char net[NET_HOST_MAX + 8];
        net_prefix_format(&p->allowed[i], net, sizeof net);
        json_array_append_new(allowed, json_string(net));
    }
    const char *now_ep = s->found ? s->endpoint : ep;
    json_object_set_new(o, "name", json_string(p->name));
    json_object_set_new(o, "endpoint",
                        strcmp(now_ep, "-") != 0 ? json_string(now_ep) : json_null());
    json_object_set_new(o, "configured_endpoint", p->has_endpoint ? json_string(ep) : json_null());
    json_object_set_new(o, "allowed", allowed);
    json_object_set_new(o, "wire", json_integer(p->wire));
    json_object_set_new(o, "roaming", json_boolean(p->roaming));
    json_object_set_new(o, "fingerprint", json_string(fp));
    time_text(p->previous_until, t, sizeof t);
    json_object_set_new(o, "previous_key_until", p->has_previous ? json_string(t) : json_null());
    json_object_set_new(o, "running", json_boolean(s->found));
    if (s->found) {
        time_text((int64_t)(s->last_seen_ns / 1000000000u), t, sizeof t);
        json_object_set_new(o, "last_seen", s->last_seen_ns != 0 ? json_string(t) : json_null());
        for (int i = 0; i < COUNTS; i++)
            json_object_set_new(o, count_names[i], json_integer((json_int_t)s->count[i]));
        for (int i = JUDGE_DROP_SHORT; i < JUDGE_VERDICTS; i++)
            if (s->drop[i] != 0)
                json_object_set_new(drops, judge_name((enum judge_verdict)i),
                                    json_integer((json_int_t)s->drop[i]));
    }
    json_object_set_new(o, "dropped", drops);
    return o;
}

static void peer_text(const struct config *cfg, const struct peer_conf *p, const struct seen *s,
                      int64_t now_s, FILE *out)
{
    char ep[NET_HOST_MAX + 16], fp[17], t[CLOCK_UTC_TEXT_MAX + 2];
    endpoint_text(p, ep, sizeof ep);
    fingerprint(cfg, p, fp);
    fprintf(out, "peer: %s\n", p->name);
    if (s->found && strcmp(s->endpoint, ep) != 0)
        fprintf(out, "  endpoint: %s (roamed; the file says %s)\n", s->endpoint, ep);
    else
        fprintf(out, "  endpoint: %s\n", strcmp(ep, "-") != 0 ? ep : "(none)");
    fprintf(out, "  allowed:");
    for (int i = 0; i < p->nallowed; i++) {
        char net[NET_HOST_MAX + 8];
        net_prefix_format(&p->allowed[i], net, sizeof net);
        fprintf(out, "%s %s", i > 0 ? "," : "", net);
    }
    fprintf(out, "\n  wire: %d%s\n  fingerprint: %s\n", p->wire, p->roaming ? ", roaming" : "", fp);
    if (p->has_previous) {
        time_text(p->previous_until, t, sizeof t);
        fprintf(out, "  previous key: accepted until %s\n", t);
    }
    if (!s->found)
        return;
    if (s->last_seen_ns == 0) {
        fprintf(out, "  last seen: never\n");
    } else {
        int64_t sec = (int64_t)(s->last_seen_ns / 1000000000u);
        time_text(sec, t, sizeof t);
        fprintf(out, "  last seen: %s (%lld s ago)\n", t, (long long)(now_s - sec));
    }
    fprintf(out, "  messages: %llu stored, %llu duplicates, %llu of ours acknowledged\n",
            s->count[0], s->count[1], s->count[2]);
    fprintf(out, "  dropped:");
    int any = 0;
    if (s->count[3] != 0) {
        fprintf(out, " rate_limited %llu", s->count[3]);
        any = 1;
    }
    for (int i = JUDGE_DROP_SHORT; i < JUDGE_VERDICTS; i++)
        if (s->drop[i] != 0)
            fprintf(out, "%s %s %llu", any++ ? "," : "", judge_name((enum judge_verdict)i),
                    s->drop[i]);
    fprintf(out, "%s\n", any ? "" : " none");
}

int peersview_print(const struct config *cfg, const char *daemon, int json, int64_t now_s,
                    FILE *out)
{
    json_t *all = json ? json_array() : NULL;
    for (int i = 0; i < cfg->peers.n; i++) {
        const struct peer_conf *p = &cfg->peers.peer[i];
        struct seen s;
        find_seen(daemon, p->name, &s);
        if (json) {
            json_array_append_new(all, peer_json(cfg, p, &s));
            continue;
        }
        peer_text(cfg, p, &s, now_s, out);
        if (i + 1 < cfg->peers.n)
            fputc('\n', out);
    }
    if (!json && daemon == NULL && cfg->peers.n > 0)
        fprintf(out, "\n(the daemon is not running: the peers file only)\n");
    return json ? tool_print_json(all, "reading the peers") : 0;
}
