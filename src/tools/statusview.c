/*
 * statusview: status and peers over the control socket (tools/ctlclient.c),
 * and status --json's one object.
 */
#define _GNU_SOURCE /* asprintf */
#include "tools/statusview.h"

#include "tools/ctlclient.h"
#include "tools/tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

char *statusview_report(const struct config *cfg)
{
    char err[512], *text = NULL;
    json_t *r = ctlclient_ask(cfg->control, "report", CTLCLIENT_TIMEOUT_MS, err, sizeof err);
    const char *c = json_string_value(json_object_get(r, "counters"));
    const char *p = json_string_value(json_object_get(r, "peers"));
    if (c == NULL || p == NULL || asprintf(&text, "counters: %s\n%s", c, p) < 0)
        text = NULL;
    json_decref(r);
    return text;
}

int statusview_json(const struct config *cfg, int running, int ask, pid_t pid, FILE *out)
{
    char err[512] = "";
    json_t *reply =
        ask ? ctlclient_ask(cfg->control, "status", CTLCLIENT_TIMEOUT_MS, err, sizeof err) : NULL;
    json_t *st = json_object_get(reply, "status");
    if (ask && st == NULL) {
        json_decref(reply);
        return tool_fail("securedgram is running (pid %ld), but %s", (long)pid, err);
    }
    json_t *o = st != NULL ? json_incref(st) : json_object();
    if (st == NULL && running)
        json_object_set_new(o, "pid", json_integer((json_int_t)pid));
    json_object_set_new(o, "running", json_boolean(running));
    json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', out);
    json_decref(o);
    json_decref(reply);
    return running ? 0 : 3;
}

int statusview_metrics(const struct config *cfg, pid_t pid, FILE *out)
{
    char err[512] = "";
    json_t *reply = ctlclient_ask(cfg->control, "metrics", CTLCLIENT_TIMEOUT_MS, err, sizeof err);
    json_t *text = json_object_get(reply, "text");
    if (!json_is_string(text)) {
        json_decref(reply);
        return tool_fail("securedgram is running (pid %ld), but %s", (long)pid,
                         err[0] != '\0' ? err : "its control socket gave no metrics");
    }
    fwrite(json_string_value(text), 1, json_string_length(text), out);
    json_decref(reply);
    return fflush(out) == 0 ? 0 : tool_fail("cannot write the metrics: %s", strerror(errno));
}
