#include "services/sim/replay.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/capture.h"
#include "common/err.h"

#define RECS_MAX (4u * 1024u * 1024u) /* records per replay (hard cap) */

struct sym_state {
    struct market_symbol info;
    size_t first_snap;  /* record index of the first snapshot, or SIZE_MAX */
    size_t current;     /* record index of the published snapshot, or SIZE_MAX */
    size_t served_upto; /* highest snapshot record index served, or SIZE_MAX */
};

struct replay {
    struct replay_rec *recs; /* owned, n entries; text owned via texts */
    size_t n, cap;
    char **texts; /* owned strings the records point into */
    size_t n_texts;
    struct sym_state syms[REPLAY_SYMBOLS_MAX];
    size_t n_syms;
    /* timeline */
    bool started;
    size_t pos;
    int64_t start_real, start_rec;
    double speed;
    int64_t hold_ms, hold_since; /* hold_since < 0: not holding */
    int64_t time;
};

/* ---- format table ------------------------------------------------------ */

struct reader {
    enum replay_format fmt;
    const char *name;
    bool (*detect)(const char *first_line, size_t len);
    int (*load)(struct replay *r, const char *const *paths, size_t n, struct streams *st, char *err,
                size_t err_len);
};

static bool detect_cryptofeed(const char *l, size_t len)
{
    static const char *const prefixes[] = {"wss://", "ws://", "http://", "https://",
                                           "configuration: "};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i]);
        if (len >= pl && memcmp(l, prefixes[i], pl) == 0)
            return true;
    }
    /* "<ts>: <payload>" */
    size_t i = 0;
    while (i < len && l[i] >= '0' && l[i] <= '9')
        i++;
    if (i == 0)
        return false;
    if (i < len && l[i] == '.')
        for (i++; i < len && l[i] >= '0' && l[i] <= '9'; i++)
            ;
    return i + 1 < len && l[i] == ':' && l[i + 1] == ' ';
}

static int load_cryptofeed(struct replay *r, const char *const *paths, size_t n, struct streams *st,
                           char *err, size_t err_len);

static const struct reader readers[] = {
    {REPLAY_FMT_CRYPTOFEED, "cryptofeed", detect_cryptofeed, load_cryptofeed},
};

int replay_detect(const char *path, enum replay_format *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return AB_EIO;
    char line[512];
    int rc = AB_EINVAL;
    while (fgets(line, sizeof(line), f)) {
        size_t len = strcspn(line, "\r\n");
        if (len == 0)
            continue;
        for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
            if (readers[i].detect(line, len)) {
                *out = readers[i].fmt;
                rc = 0;
                break;
            }
        }
        break;
    }
    fclose(f);
    return rc;
}

/* ---- building the timeline -------------------------------------------- */

static char *keep_text(struct replay *r, const char *s, size_t len)
{
    char **texts = realloc(r->texts, (r->n_texts + 1) * sizeof(*texts));
    if (!texts)
        return NULL;
    r->texts = texts;
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    r->texts[r->n_texts++] = copy;
    return copy;
}

static struct replay_rec *add_rec(struct replay *r)
{
    if (r->n == r->cap) {
        if (r->cap >= RECS_MAX)
            return NULL;
        size_t cap = r->cap ? r->cap * 2 : 1024;
        struct replay_rec *v = realloc(r->recs, cap * sizeof(*v));
        if (!v)
            return NULL;
        r->recs = v;
        r->cap = cap;
    }
    struct replay_rec *rec = &r->recs[r->n++];
    memset(rec, 0, sizeof(*rec));
    return rec;
}

/* Index of an upper-case symbol, added on first sight. */
static int symbol_index(struct replay *r, const char *s, size_t len, size_t *out)
{
    char up[AB_SYMBOL_MAX];
    if (len == 0 || len >= sizeof(up))
        return AB_EINVAL;
    for (size_t i = 0; i < len; i++)
        up[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
    up[len] = '\0';
    if (!ab_symbol_valid(up, len))
        return AB_EINVAL;
    for (size_t i = 0; i < r->n_syms; i++) {
        if (strcmp(r->syms[i].info.symbol, up) == 0) {
            *out = i;
            return 0;
        }
    }
    if (r->n_syms == REPLAY_SYMBOLS_MAX)
        return AB_ENOMEM;
    struct sym_state *ss = &r->syms[r->n_syms];
    memset(ss, 0, sizeof(*ss));
    memcpy(ss->info.symbol, up, len + 1);
    /* Base/quote are unknown in a recording; the whole name is the base. */
    memcpy(ss->info.base, up, len + 1);
    ss->info.tick = ab_dec_from_units(1);
    ss->info.step = ab_dec_from_units(1);
    ss->first_snap = ss->current = ss->served_upto = SIZE_MAX;
    *out = r->n_syms++;
    return 0;
}

static int add_frame(struct replay *r, struct streams *st, const struct ab_capture_rec *cr)
{
    json_error_t jerr;
    json_t *root = json_loadb(cr->payload, cr->payload_len, 0, &jerr);
    const char *stream = json_string_value(json_object_get(root, "stream"));
    json_t *data = json_object_get(root, "data");
    int rc = 0;
    if (!stream || !json_is_object(data)) {
        rc = AB_EINVAL; /* not a combined-stream frame */
        goto out;
    }
    struct replay_rec *rec = add_rec(r);
    if (!rec) {
        rc = AB_ENOMEM;
        goto out;
    }
    rc = streams_lookup(st, stream, strlen(stream), &rec->stream_id);
    if (rc != 0) {
        r->n--;
        goto out;
    }
    rec->kind = REPLAY_FRAME;
    rec->recv_ms = cr->recv_ns / 1000000;
    rec->combined = keep_text(r, cr->payload, cr->payload_len);
    rec->combined_len = cr->payload_len;
    /* The bare payload, byte for byte, when the wrapper has Binance's shape. */
    char prefix[STREAM_NAME_MAX + 32];
    int pl = snprintf(prefix, sizeof(prefix), "{\"stream\":\"%s\",\"data\":", stream);
    if (pl > 0 && (size_t)pl < cr->payload_len && memcmp(cr->payload, prefix, (size_t)pl) == 0 &&
        cr->payload[cr->payload_len - 1] == '}') {
        rec->raw = keep_text(r, cr->payload + pl, cr->payload_len - (size_t)pl - 1);
        rec->raw_len = cr->payload_len - (size_t)pl - 1;
    } else {
        char *dump = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (dump) {
            rec->raw_len = strlen(dump);
            rec->raw = keep_text(r, dump, rec->raw_len);
            free(dump);
        }
    }
    if (!rec->combined || !rec->raw) {
        r->n--;
        rc = AB_ENOMEM;
    }
out:
    json_decref(root);
    return rc;
}

/* The value of query parameter name in url, or NULL (copied into buf). */
static const char *url_param(const char *url, const char *name, char *buf, size_t cap)
{
    const char *q = strchr(url, '?');
    size_t nl = strlen(name);
    while (q) {
        q++;
        if (strncmp(q, name, nl) == 0 && q[nl] == '=') {
            const char *v = q + nl + 1;
            size_t len = strcspn(v, "&");
            if (len >= cap)
                return NULL;
            memcpy(buf, v, len);
            buf[len] = '\0';
            return buf;
        }
        q = strchr(q, '&');
    }
    return NULL;
}

static int add_snapshot(struct replay *r, const struct ab_capture_rec *cr)
{
    char symbuf[AB_SYMBOL_MAX];
    const char *sym = url_param(cr->url, "symbol", symbuf, sizeof(symbuf));
    if (!sym || !strstr(cr->url, "/depth"))
        return 0; /* another endpoint (exchangeInfo...): not served */
    json_t *root = json_loadb(cr->payload, cr->payload_len, 0, NULL);
    json_t *lid = json_object_get(root, "lastUpdateId");
    int rc = 0;
    if (!json_is_integer(lid) || !json_is_array(json_object_get(root, "bids")) ||
        !json_is_array(json_object_get(root, "asks"))) {
        rc = AB_EINVAL;
        goto out;
    }
    size_t idx;
    rc = symbol_index(r, sym, strlen(sym), &idx);
    if (rc != 0)
        goto out;
    struct replay_rec *rec = add_rec(r);
    if (!rec) {
        rc = AB_ENOMEM;
        goto out;
    }
    rec->kind = REPLAY_SNAPSHOT;
    rec->recv_ms = cr->recv_ns / 1000000;
    rec->sym = idx;
    rec->last_update_id = (uint64_t)json_integer_value(lid);
    rec->body = keep_text(r, cr->payload, cr->payload_len);
    rec->body_len = cr->payload_len;
    if (!rec->body) {
        r->n--;
        rc = AB_ENOMEM;
        goto out;
    }
    if (r->syms[idx].first_snap == SIZE_MAX)
        r->syms[idx].first_snap = r->n - 1;
out:
    json_decref(root);
    return rc;
}

static int load_cryptofeed(struct replay *r, const char *const *paths, size_t n, struct streams *st,
                           char *err, size_t err_len)
{
    struct ab_capture_set *set = NULL;
    int rc = ab_capture_set_load(paths, n, 0, &set, err, err_len);
    if (rc != 0)
        return rc;
    size_t skipped = 0;
    for (size_t i = 0; i < ab_capture_set_count(set) && rc == 0; i++) {
        const struct ab_capture_rec *cr = ab_capture_set_get(set, i);
        if (cr->kind == AB_CAP_WS) {
            rc = add_frame(r, st, cr);
            if (rc == AB_EINVAL) {
                skipped++;
                rc = 0;
            }
            if (rc == 0 && r->n) {
                /* The frame's symbol counts as recorded even without a snapshot. */
                const struct replay_rec *rec = &r->recs[r->n - 1];
                const char *name = streams_name(st, rec->stream_id);
                const char *at = name ? strchr(name, '@') : NULL;
                size_t idx;
                if (at && rec->kind == REPLAY_FRAME)
                    symbol_index(r, name, (size_t)(at - name), &idx);
            }
        } else if (cr->kind == AB_CAP_HTTP) {
            rc = add_snapshot(r, cr);
            if (rc == AB_EINVAL)
                snprintf(err, err_len, "%s:%zu: depth response without lastUpdateId/bids/asks",
                         paths[cr->file_index], cr->line_no);
        }
        if (rc == AB_ENOMEM)
            snprintf(err, err_len, "replay too large (cap %u records)", RECS_MAX);
    }
    ab_capture_set_free(set);
    (void)skipped;
    return rc;
}

int replay_load(const char *const *paths, size_t n, struct streams *st, struct replay **out,
                char *err, size_t err_len)
{
    *out = NULL;
    if (err_len)
        err[0] = '\0';
    if (n == 0 || n > REPLAY_FILES_MAX) {
        snprintf(err, err_len, "1 to %d replay files", REPLAY_FILES_MAX);
        return AB_EINVAL;
    }
    enum replay_format fmt = REPLAY_FMT_COUNT;
    for (size_t i = 0; i < n; i++) {
        enum replay_format f;
        int rc = replay_detect(paths[i], &f);
        if (rc != 0) {
            snprintf(err, err_len, "%s: %s", paths[i],
                     rc == AB_EIO ? "cannot read" : "unknown recording format");
            return rc;
        }
        if (i > 0 && f != fmt) {
            snprintf(err, err_len, "%s: a different format than %s", paths[i], paths[0]);
            return AB_EINVAL;
        }
        fmt = f;
    }
    struct replay *r = calloc(1, sizeof(*r));
    if (!r)
        return AB_ENOMEM;
    r->hold_since = -1;
    int rc = AB_EINVAL;
    for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++)
        if (readers[i].fmt == fmt)
            rc = readers[i].load(r, paths, n, st, err, err_len);
    if (rc == 0 && r->n == 0) {
        snprintf(err, err_len, "%s: no frames or snapshots", paths[0]);
        rc = AB_EINVAL;
    }
    if (rc != 0) {
        replay_free(r);
        return rc;
    }
    r->time = r->recs[0].recv_ms;
    *out = r;
    return 0;
}

void replay_free(struct replay *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_texts; i++)
        free(r->texts[i]);
    free(r->texts);
    free(r->recs);
    free(r);
}

size_t replay_count(const struct replay *r)
{
    return r->n;
}

const struct replay_rec *replay_get(const struct replay *r, size_t i)
{
    return i < r->n ? &r->recs[i] : NULL;
}

size_t replay_n_symbols(const struct replay *r)
{
    return r->n_syms;
}

const struct market_symbol *replay_symbol(const struct replay *r, size_t i)
{
    return i < r->n_syms ? &r->syms[i].info : NULL;
}

/* ---- playing ----------------------------------------------------------- */

void replay_start(struct replay *r, int64_t now_ms, double speed, int64_t hold_ms)
{
    if (r->started)
        return;
    r->started = true;
    r->pos = 0;
    r->start_real = now_ms;
    r->start_rec = r->recs[0].recv_ms;
    r->speed = speed;
    r->hold_ms = hold_ms;
}

bool replay_started(const struct replay *r)
{
    return r->started;
}

bool replay_done(const struct replay *r)
{
    return r->started && r->pos >= r->n && r->hold_since < 0;
}

const struct replay_rec *replay_next(struct replay *r, int64_t now_ms, replay_interest_cb interest,
                                     void *ud)
{
    if (!r->started || r->pos >= r->n)
        return NULL;
    if (r->hold_since >= 0) {
        /* Held at the snapshot just before pos: wait for its fetch or the timeout. */
        const struct sym_state *ss = &r->syms[r->recs[r->pos - 1].sym];
        bool fetched = ss->served_upto != SIZE_MAX && ss->served_upto >= r->pos - 1;
        if (!fetched && now_ms - r->hold_since < r->hold_ms)
            return NULL;
        r->hold_since = -1;
        /* Restart the pace from here so the hold does not cause a burst. */
        r->start_real = now_ms;
        r->start_rec = r->recs[r->pos].recv_ms;
    }
    const struct replay_rec *rec = &r->recs[r->pos];
    if (r->speed > 0) {
        double due = (double)(rec->recv_ms - r->start_rec) / r->speed;
        if ((double)(now_ms - r->start_real) < due)
            return NULL;
    }
    r->pos++;
    if (rec->recv_ms > r->time)
        r->time = rec->recv_ms;
    if (rec->kind == REPLAY_SNAPSHOT) {
        struct sym_state *ss = &r->syms[rec->sym];
        size_t idx = (size_t)(rec - r->recs);
        ss->current = idx;
        bool fetched = ss->served_upto != SIZE_MAX && ss->served_upto >= idx;
        if (r->hold_ms > 0 && !fetched && r->pos < r->n && (!interest || interest(ud, rec->sym)))
            r->hold_since = now_ms;
    }
    return rec;
}

int64_t replay_time(const struct replay *r)
{
    return r->time;
}

/* Appends the first `limit` entries of a JSON array of levels, verbatim text. */
static void append_levels(struct sbuf *b, json_t *arr, size_t limit)
{
    sbuf_putc(b, '[');
    for (size_t i = 0; i < json_array_size(arr) && i < limit; i++) {
        char *s = json_dumps(json_array_get(arr, i), JSON_COMPACT | JSON_ENCODE_ANY);
        if (!s) {
            b->err = AB_ENOMEM;
            return;
        }
        if (i)
            sbuf_putc(b, ',');
        sbuf_puts(b, s);
        free(s);
    }
    sbuf_putc(b, ']');
}

int replay_depth(struct replay *r, size_t sym, size_t limit, struct sbuf *body)
{
    if (sym >= r->n_syms)
        return AB_ENOTFOUND;
    struct sym_state *ss = &r->syms[sym];
    size_t idx = ss->current != SIZE_MAX ? ss->current : ss->first_snap;
    if (idx == SIZE_MAX)
        return AB_ENOTFOUND;
    if (ss->served_upto == SIZE_MAX || ss->served_upto < idx)
        ss->served_upto = idx;
    const struct replay_rec *rec = &r->recs[idx];
    json_t *root = json_loadb(rec->body, rec->body_len, 0, NULL);
    json_t *bids = json_object_get(root, "bids"), *asks = json_object_get(root, "asks");
    if (json_array_size(bids) <= limit && json_array_size(asks) <= limit) {
        sbuf_putn(body, rec->body, rec->body_len); /* as recorded, byte for byte */
    } else {
        sbuf_puts(body, "{\"lastUpdateId\":");
        sbuf_u64(body, rec->last_update_id);
        sbuf_puts(body, ",\"bids\":");
        append_levels(body, bids, limit);
        sbuf_puts(body, ",\"asks\":");
        append_levels(body, asks, limit);
        sbuf_putc(body, '}');
    }
    json_decref(root);
    return sbuf_err(body);
}
