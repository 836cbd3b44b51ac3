#include "services/sim/control.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"

static void subscribe_one(struct streams *st, struct control_conn *c, uint32_t id)
{
    if (stream_set_has(&c->subs, id))
        return;
    stream_set_add(&c->subs, id);
    c->n_subs++;
    streams_count(st, id, +1);
}

static void unsubscribe_one(struct streams *st, struct control_conn *c, uint32_t id)
{
    if (!stream_set_has(&c->subs, id))
        return;
    stream_set_del(&c->subs, id);
    c->n_subs--;
    streams_count(st, id, -1);
}

/* Subscribes to a '/'-separated list of names, all or nothing. */
static int subscribe_list(struct streams *st, struct control_conn *c, size_t max_streams,
                          const char *list, const char **why)
{
    uint32_t ids[CONTROL_MAX_STREAMS];
    size_t n = 0, added = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, "/");
        uint32_t id;
        if (len == 0 || streams_lookup(st, p, len, &id) != 0) {
            *why = "unknown stream name";
            return AB_EINVAL;
        }
        if (n == CONTROL_MAX_STREAMS || n >= max_streams) {
            *why = "too many streams";
            return AB_EINVAL;
        }
        bool dup = stream_set_has(&c->subs, id);
        for (size_t i = 0; i < n && !dup; i++)
            dup = ids[i] == id;
        if (!dup) {
            ids[n++] = id;
            added++;
        }
        p += len;
        if (*p == '/')
            p++;
    }
    if (c->n_subs + added > max_streams) {
        *why = "too many streams";
        return AB_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        subscribe_one(st, c, ids[i]);
    return 0;
}

int control_open(struct streams *st, struct control_conn *c, size_t max_streams, const char *path,
                 const char *streams_arg, const char **why)
{
    memset(c, 0, sizeof(*c));
    *why = NULL;
    if (strcmp(path, "/ws") == 0 || strcmp(path, "/ws/") == 0)
        return 0;
    if (strncmp(path, "/ws/", 4) == 0)
        return subscribe_list(st, c, max_streams, path + 4, why);
    if (strcmp(path, "/stream") == 0 || strcmp(path, "/stream/") == 0) {
        c->combined = true;
        return streams_arg ? subscribe_list(st, c, max_streams, streams_arg, why) : 0;
    }
    *why = "unknown path";
    return AB_EINVAL;
}

void control_release(struct streams *st, struct control_conn *c)
{
    for (uint32_t id = 0; id < STREAMS_MAX && c->n_subs; id++)
        unsubscribe_one(st, c, id);
}

/* The request id, re-encoded; false when it is not a valid Binance id. */
static bool read_id(json_t *id, char *out, size_t cap)
{
    if (!id || json_is_null(id)) {
        snprintf(out, cap, "null");
        return true;
    }
    if (json_is_integer(id)) {
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        return true;
    }
    if (json_is_string(id)) {
        const char *s = json_string_value(id);
        size_t n = strlen(s);
        if (n < 1 || n > 36)
            return false;
        for (size_t i = 0; i < n; i++)
            if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                  (s[i] >= '0' && s[i] <= '9')))
                return false;
        snprintf(out, cap, "\"%s\"", s);
        return true;
    }
    return false;
}

static int error_reply(struct sbuf *reply, int code, const char *msg, const char *id)
{
    sbuf_reset(reply);
    sbuf_puts(reply, "{\"code\":");
    sbuf_i64(reply, code);
    sbuf_puts(reply, ",\"msg\":");
    sbuf_json_str(reply, msg);
    if (id) {
        sbuf_puts(reply, ",\"id\":");
        sbuf_puts(reply, id);
    }
    sbuf_putc(reply, '}');
    return sbuf_err(reply);
}

static int result_reply(struct sbuf *reply, const char *result, const char *id)
{
    sbuf_puts(reply, "{\"result\":");
    sbuf_puts(reply, result);
    sbuf_puts(reply, ",\"id\":");
    sbuf_puts(reply, id);
    sbuf_putc(reply, '}');
    return sbuf_err(reply);
}

/* SUBSCRIBE / UNSUBSCRIBE with an array of names. */
static int change_subs(struct streams *st, struct control_conn *c, size_t max_streams,
                       json_t *params, bool subscribe, struct sbuf *reply, const char *id)
{
    if (!json_is_array(params) || json_array_size(params) == 0)
        return error_reply(reply, 2,
                           "Invalid request: params must be a non-empty array of stream names", id);
    if (json_array_size(params) > CONTROL_MAX_STREAMS)
        return error_reply(reply, 2, "Invalid request: too many parameters", id);
    uint32_t ids[CONTROL_MAX_STREAMS];
    size_t n = 0, added = 0;
    for (size_t i = 0; i < json_array_size(params); i++) {
        const char *name = json_string_value(json_array_get(params, i));
        uint32_t sid;
        if (!name)
            return error_reply(reply, 2, "Invalid request: stream names must be strings", id);
        int rc = streams_lookup(st, name, strlen(name), &sid);
        if (rc == AB_ENOMEM)
            return error_reply(reply, 2, "Invalid request: too many distinct stream names", id);
        if (rc != 0) {
            char msg[160];
            snprintf(msg, sizeof(msg), "Invalid request: unknown stream '%.100s'", name);
            return error_reply(reply, 2, msg, id);
        }
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = ids[k] == sid;
        if (dup)
            continue;
        ids[n++] = sid;
        if (subscribe && !stream_set_has(&c->subs, sid))
            added++;
    }
    if (subscribe && c->n_subs + added > max_streams) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "Invalid request: too many streams (the limit is %zu per "
                 "connection)",
                 max_streams);
        return error_reply(reply, 2, msg, id);
    }
    for (size_t k = 0; k < n; k++) {
        if (subscribe)
            subscribe_one(st, c, ids[k]);
        else
            unsubscribe_one(st, c, ids[k]);
    }
    return result_reply(reply, "null", id);
}

static int list_subs(struct streams *st, struct control_conn *c, struct sbuf *reply, const char *id)
{
    sbuf_puts(reply, "{\"result\":[");
    size_t k = 0;
    for (uint32_t sid = 0; sid < STREAMS_MAX && k < c->n_subs; sid++) {
        if (!stream_set_has(&c->subs, sid))
            continue;
        if (k++)
            sbuf_putc(reply, ',');
        sbuf_json_str(reply, streams_name(st, sid));
    }
    sbuf_puts(reply, "],\"id\":");
    sbuf_puts(reply, id);
    sbuf_putc(reply, '}');
    return sbuf_err(reply);
}

static int property(struct control_conn *c, json_t *params, bool set, struct sbuf *reply,
                    const char *id)
{
    size_t want = set ? 2 : 1;
    if (!json_is_array(params) || json_array_size(params) < want)
        return error_reply(reply, 2, "Invalid request: missing parameters", id);
    if (json_array_size(params) > want)
        return error_reply(reply, 2, "Invalid request: too many parameters", id);
    const char *name = json_string_value(json_array_get(params, 0));
    if (!name)
        return error_reply(reply, 2, "Invalid request: property name must be a string", id);
    if (strcmp(name, "combined") != 0)
        return error_reply(reply, 0, "Unknown property", id);
    if (!set)
        return result_reply(reply, c->combined ? "true" : "false", id);
    json_t *v = json_array_get(params, 1);
    if (!json_is_boolean(v))
        return error_reply(reply, 1, "Invalid value type: expected Boolean", id);
    c->combined = json_is_true(v);
    return result_reply(reply, "null", id);
}

int control_handle(struct streams *st, struct control_conn *c, size_t max_streams, const char *text,
                   size_t len, struct sbuf *reply)
{
    json_error_t jerr;
    char idbuf[64];
    int rc;
    sbuf_reset(reply);
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        char msg[256];
        snprintf(msg, sizeof(msg), "Invalid JSON: %s at line %d column %d", jerr.text, jerr.line,
                 jerr.column);
        return error_reply(reply, 3, msg, NULL);
    }
    if (!json_is_object(root)) {
        rc = error_reply(reply, 2, "Invalid request: expected an object", NULL);
        goto out;
    }
    if (!read_id(json_object_get(root, "id"), idbuf, sizeof(idbuf))) {
        rc = error_reply(reply, 2,
                         "Invalid request: request ID must be an unsigned integer or a string of "
                         "up to 36 letters and digits",
                         NULL);
        goto out;
    }
    json_t *method = json_object_get(root, "method");
    json_t *params = json_object_get(root, "params");
    const char *m = json_string_value(method);
    if (!method) {
        rc = error_reply(reply, 2, "Invalid request: missing field `method`", idbuf);
    } else if (m && strcmp(m, "SUBSCRIBE") == 0) {
        rc = change_subs(st, c, max_streams, params, true, reply, idbuf);
    } else if (m && strcmp(m, "UNSUBSCRIBE") == 0) {
        rc = change_subs(st, c, max_streams, params, false, reply, idbuf);
    } else if (m && strcmp(m, "LIST_SUBSCRIPTIONS") == 0) {
        rc = list_subs(st, c, reply, idbuf);
    } else if (m && strcmp(m, "SET_PROPERTY") == 0) {
        rc = property(c, params, true, reply, idbuf);
    } else if (m && strcmp(m, "GET_PROPERTY") == 0) {
        rc = property(c, params, false, reply, idbuf);
    } else {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Invalid request: unknown variant `%.40s`, expected one of `SUBSCRIBE`, "
                 "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
                 m ? m : "?");
        rc = error_reply(reply, 2, msg, idbuf);
    }
out:
    json_decref(root);
    return rc;
}
