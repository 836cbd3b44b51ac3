#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

static atomic_int log_format = AB_LOG_TEXT;
static atomic_int log_min = AB_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
/* Serialises the write(2) calls, and fd changes against them. */
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

/* Room kept at the end of every line for the close and the truncation mark. */
#define TAIL_RESERVE 32

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_upper[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};

static enum ab_log_level clamp_level(enum ab_log_level level)
{
    return (unsigned)level > AB_LOG_ERROR ? AB_LOG_ERROR : level;
}

void ab_log_init(enum ab_log_format format, enum ab_log_level min_level)
{
    atomic_store(&log_format, format == AB_LOG_JSON ? AB_LOG_JSON : AB_LOG_TEXT);
    atomic_store(&log_min, (int)clamp_level(min_level));
}

void ab_log_set_fd(int fd)
{
    /* Under the lock: once this returns, no writer still uses the old fd. */
    pthread_mutex_lock(&write_lock);
    atomic_store(&log_fd, fd < 0 ? STDERR_FILENO : fd);
    pthread_mutex_unlock(&write_lock);
}

bool ab_log_enabled(enum ab_log_level level)
{
    return (int)clamp_level(level) >= atomic_load(&log_min);
}

int ab_log_level_parse(const char *s, enum ab_log_level *out)
{
    if (!s)
        return AB_EINVAL;
    for (int i = AB_LOG_DEBUG; i <= AB_LOG_ERROR; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum ab_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = AB_LOG_WARN;
        return 0;
    }
    return AB_EINVAL;
}

int ab_log_format_parse(const char *s, enum ab_log_format *out)
{
    if (s && strcasecmp(s, "text") == 0) {
        *out = AB_LOG_TEXT;
        return 0;
    }
    if (s && strcasecmp(s, "json") == 0) {
        *out = AB_LOG_JSON;
        return 0;
    }
    return AB_EINVAL;
}

const char *ab_log_level_name(enum ab_log_level level)
{
    return level_names[clamp_level(level)];
}

/* ---- a capped line buffer: appends are all-or-nothing, overflow is sticky ---- */

struct line {
    char buf[AB_LOG_LINE_MAX];
    size_t len;
    size_t cap; /* usable bytes before the tail reserve */
    bool cut;
};

static bool put(struct line *l, const char *s, size_t n)
{
    if (l->cut || n > l->cap - l->len) {
        l->cut = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

static bool puts_(struct line *l, const char *s)
{
    return put(l, s, strlen(s));
}

/* The tail always fits: it goes into the reserve. */
static void put_tail(struct line *l, const char *s)
{
    size_t n = strlen(s);
    if (n > sizeof(l->buf) - l->len)
        n = sizeof(l->buf) - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/*
 * Length of the valid UTF-8 sequence at p (1..4), or 0 when the byte there
 * starts no valid sequence (overlong forms and surrogates included).
 */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/*
 * Appends s[0..n) escaped for the format: JSON string escapes, or in text
 * \n \r \t \xNN for control and invalid bytes. Cuts between characters.
 */
static void put_escaped(struct line *l, const char *s, size_t n, bool json)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char esc[8];
    while (p < end) {
        size_t k = utf8_len(p, end);
        const char *out = esc;
        size_t out_len;
        if (k == 0) {
            out = json ? "\\ufffd" : esc;
            if (!json)
                snprintf(esc, sizeof(esc), "\\x%02x", *p);
            out_len = strlen(out);
            k = 1;
        } else if (*p == '\n') {
            out = "\\n", out_len = 2;
        } else if (*p == '\r') {
            out = "\\r", out_len = 2;
        } else if (*p == '\t') {
            out = "\\t", out_len = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof(esc), json ? "\\u%04x" : "\\x%02x", *p);
            out_len = strlen(esc);
        } else if (json && (*p == '"' || *p == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)*p;
            out_len = 2;
        } else {
            out = (const char *)p;
            out_len = k;
        }
        if (!put(l, out, out_len))
            return;
        p += k;
    }
}

static void put_timestamp(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    char buf[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L);
    put(l, buf, n > 0 ? (size_t)n : 0);
}

/* ---- message fields: "free text key=value key2="quoted value"" ---- */

static bool is_key_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_key_char(char c)
{
    return is_key_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/*
 * Scans the space-delimited token at p; returns its end and sets *kv when it
 * is key=value or key="quoted value" (which may hold spaces).
 */
static const char *scan_token(const char *p, const char *end, bool *kv)
{
    const char *q = p;
    *kv = false;
    if (q < end && is_key_start(*q)) {
        while (q < end && is_key_char(*q))
            q++;
        if (q < end && *q == '=' && q + 1 < end && q[1] == '"') {
            const char *r = q + 2;
            while (r < end && *r != '"') {
                if (*r == '\\' && r + 1 < end)
                    r++;
                r++;
            }
            if (r < end && (r + 1 == end || r[1] == ' ')) {
                *kv = true;
                return r + 1;
            }
        } else if (q < end && *q == '=') {
            *kv = true;
        }
    }
    /* An unquoted value, or not a field: the token ends at the next space. */
    q = p;
    while (q < end && *q != ' ')
        q++;
    return q;
}

/* Start of the trailing run of key=value tokens in msg[0..n), or msg + n. */
static const char *fields_start(const char *msg, size_t n)
{
    const char *p = msg, *end = msg + n, *start = NULL;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        bool kv;
        const char *tok = p;
        p = scan_token(p, end, &kv);
        if (!kv)
            start = NULL;
        else if (!start)
            start = tok;
    }
    return start ? start : end;
}

static bool is_json_number(const char *p, size_t n)
{
    const char *end = p + n;
    if (p < end && *p == '-')
        p++;
    if (p == end)
        return false;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return false;
    }
    if (p < end && *p == '.') {
        p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return false;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return false;
    }
    return p == end;
}

static bool reserved_key(const char *k, size_t n)
{
    static const char *const names[] = {"ts", "level", "comp", "msg", "truncated"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && memcmp(names[i], k, n) == 0)
            return true;
    return false;
}

/* Appends ,"key":value for the token tok[0..n); a field that does not fit is dropped whole. */
static void put_json_field(struct line *l, const char *tok, size_t n)
{
    const char *eq = memchr(tok, '=', n);
    const char *v = eq + 1, *end = tok + n;
    size_t klen = (size_t)(eq - tok);
    size_t mark = l->len;

    puts_(l, ",\"");
    if (reserved_key(tok, klen))
        puts_(l, "x_");
    put(l, tok, klen);
    puts_(l, "\":");
    if (v < end && *v == '"') {
        /* Quoted: undo \" and \\ from the caller, then escape for JSON. */
        puts_(l, "\"");
        const char *p = v + 1, *q = end - 1;
        while (p < q) {
            if (*p == '\\' && p + 1 < q && (p[1] == '"' || p[1] == '\\'))
                p++;
            const char *s = p;
            size_t k = utf8_len((const unsigned char *)p, (const unsigned char *)q);
            k = k ? k : 1;
            put_escaped(l, s, k, true);
            p += k;
        }
        puts_(l, "\"");
    } else if (is_json_number(v, (size_t)(end - v))) {
        put(l, v, (size_t)(end - v));
    } else {
        puts_(l, "\"");
        put_escaped(l, v, (size_t)(end - v), true);
        puts_(l, "\"");
    }
    if (l->cut)
        l->len = mark;
}

static void build_json(struct line *l, enum ab_log_level level, const char *comp, const char *msg,
                       size_t n)
{
    const char *fs = fields_start(msg, n), *end = msg + n;
    size_t text_len = (size_t)(fs - msg);
    while (text_len > 0 && msg[text_len - 1] == ' ')
        text_len--;

    puts_(l, "{\"ts\":\"");
    put_timestamp(l);
    puts_(l, "\",\"level\":\"");
    puts_(l, level_names[level]);
    puts_(l, "\",\"comp\":\"");
    put_escaped(l, comp, strlen(comp), true);
    puts_(l, "\",\"msg\":\"");
    put_escaped(l, msg, text_len, true);
    /* Cut inside msg: close the string in the reserve and skip the fields. */
    bool cut = l->cut;
    l->cut = false;
    put_tail(l, "\"");
    const char *p = fs;
    while (!cut && p < end) {
        while (p < end && *p == ' ')
            p++;
        if (p == end)
            break;
        bool kv;
        const char *tok = p;
        p = scan_token(p, end, &kv);
        put_json_field(l, tok, (size_t)(p - tok));
        if (l->cut)
            cut = true;
    }
    put_tail(l, cut ? ",\"truncated\":true}\n" : "}\n");
}

static void build_text(struct line *l, enum ab_log_level level, const char *comp, const char *msg,
                       size_t n)
{
    put_timestamp(l);
    puts_(l, " ");
    puts_(l, level_upper[level]);
    puts_(l, " ");
    put_escaped(l, comp, strlen(comp), false);
    puts_(l, ": ");
    put_escaped(l, msg, n, false);
    put_tail(l, l->cut ? "...[truncated]\n" : "\n");
}

static void emit(const char *buf, size_t n)
{
    pthread_mutex_lock(&write_lock);
    int fd = atomic_load(&log_fd);
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break; /* nowhere left to report it */
        }
        buf += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&write_lock);
}

void ab_logv(enum ab_log_level level, const char *component, const char *fmt, va_list ap)
{
    level = clamp_level(level);
    if (!ab_log_enabled(level))
        return;
    int saved_errno = errno; /* callers log errors and then read errno */
    char msg[AB_LOG_LINE_MAX];
    struct line l;
    msg[0] = '\0';
    int n = fmt ? vsnprintf(msg, sizeof(msg), fmt, ap) : 0;
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)n;

    l.len = 0;
    l.cap = sizeof(l.buf) - TAIL_RESERVE;
    l.cut = false;
    if (!component || !*component)
        component = "-";
    if (atomic_load(&log_format) == AB_LOG_JSON)
        build_json(&l, level, component, msg, len);
    else
        build_text(&l, level, component, msg, len);
    emit(l.buf, l.len);
    errno = saved_errno;
}

void ab_log(enum ab_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ab_logv(level, component, fmt, ap);
    va_end(ap);
}

/* ---- secrets ---- */

const char *ab_log_redact(const char *s)
{
    return (!s || !*s) ? "(none)" : "***";
}

struct sink {
    char *p;
    size_t cap, len;
    bool overflow;
};

/* Copies what fits; only ever given text that is safe to show. */
static void sink_put(struct sink *o, const char *s, size_t n)
{
    size_t room = o->cap - 1 - o->len;
    if (n > room) {
        n = room;
        o->overflow = true;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static bool is_password_key(const char *k, size_t n)
{
    static const char suffix[] = "password";
    size_t m = sizeof(suffix) - 1;
    return n >= m && strncasecmp(k + n - m, suffix, m) == 0;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Length of "scheme://" at s, or 0. */
static size_t uri_prefix(const char *s)
{
    size_t i = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    while (s[i] && (is_key_char(s[i]) || s[i] == '+'))
        i++;
    return strncmp(s + i, "://", 3) == 0 ? i + 3 : 0;
}

static void redact_uri(struct sink *o, const char *in, size_t prefix)
{
    const char *auth = in + prefix;
    /*
     * libpq ends the userinfo at the first '@' before any '/'. A careless
     * password may also hold '@', '/', '?' or '#', so the mask runs to the
     * last '@' before either the first '/' or the first '?'/'#', whichever
     * is later: better to hide a piece of the host than part of a password.
     */
    size_t lim1 = strcspn(auth, "/"), lim2 = strcspn(auth, "?#");
    const char *lim = auth + (lim1 > lim2 ? lim1 : lim2);
    const char *at = NULL;
    for (const char *p = auth; p < lim; p++)
        if (*p == '@')
            at = p;
    const char *pos = in;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon) {
            sink_put(o, pos, (size_t)(colon + 1 - pos));
            sink_put(o, "***", 3);
            pos = at;
        }
    }
    const char *q = pos + strcspn(pos, "?#");
    sink_put(o, pos, (size_t)(q - pos));
    pos = q;
    /* Query parameters: ?k=v&k=v#frag */
    while (*pos == '?' || *pos == '&') {
        sink_put(o, pos, 1);
        pos++;
        size_t plen = strcspn(pos, "&#");
        const char *eq = memchr(pos, '=', plen);
        if (eq && is_password_key(pos, (size_t)(eq - pos))) {
            sink_put(o, pos, (size_t)(eq + 1 - pos));
            sink_put(o, "***", 3);
        } else {
            sink_put(o, pos, plen);
        }
        pos += plen;
    }
    sink_put(o, pos, strlen(pos));
}

/* keyword = value pairs; values may be 'single quoted' with backslash escapes. */
static void redact_conninfo(struct sink *o, const char *in)
{
    const char *p = in;
    while (*p) {
        const char *s = p;
        while (*p && is_ws(*p))
            p++;
        sink_put(o, s, (size_t)(p - s));
        if (!*p)
            break;
        const char *key = p;
        while (*p && !is_ws(*p) && *p != '=')
            p++;
        size_t klen = (size_t)(p - key);
        while (*p && is_ws(*p))
            p++;
        if (*p != '=') {
            /* Not a pair: copy the word and go on. */
            sink_put(o, key, (size_t)(p - key));
            continue;
        }
        p++;
        while (*p && is_ws(*p))
            p++;
        sink_put(o, key, (size_t)(p - key));
        const char *v = p;
        if (*p == '\'') {
            p++;
            while (*p && *p != '\'') {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            if (*p == '\'')
                p++;
        } else {
            while (*p && !is_ws(*p)) {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
        }
        if (is_password_key(key, klen))
            sink_put(o, "***", 3);
        else
            sink_put(o, v, (size_t)(p - v));
    }
}

int ab_log_redact_url(const char *in, char *out, size_t cap)
{
    if (!in || !out || cap == 0)
        return AB_EINVAL;
    struct sink o = {.p = out, .cap = cap, .len = 0, .overflow = false};
    out[0] = '\0';
    size_t prefix = uri_prefix(in);
    if (prefix)
        redact_uri(&o, in, prefix);
    else
        redact_conninfo(&o, in);
    return o.overflow ? AB_ERANGE : 0;
}

/* ---- adapters ---- */

/* libwebsockets' LLL_* bits (lws-logs.h), spelled out so common/ needs no lws. */
enum {
    LWS_ERR = 1 << 0,
    LWS_WARN = 1 << 1,
    LWS_NOTICE = 1 << 2,
    LWS_INFO = 1 << 3,
    LWS_DEBUG = 1 << 4,
    LWS_USER = 1 << 10,
};

void ab_log_lws_emit(int level, const char *line)
{
    enum ab_log_level lv = AB_LOG_DEBUG;
    if (level & LWS_ERR)
        lv = AB_LOG_ERROR;
    else if (level & LWS_WARN)
        lv = AB_LOG_WARN;
    else if (level & (LWS_NOTICE | LWS_USER))
        lv = AB_LOG_INFO;
    if (!ab_log_enabled(lv) || !line)
        return;
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        n--;
    ab_log(lv, "lws", "%.*s", (int)(n > AB_LOG_LINE_MAX ? AB_LOG_LINE_MAX : n), line);
}

int ab_log_lws_levels(void)
{
    switch (atomic_load(&log_min)) {
    case AB_LOG_DEBUG:
        return LWS_ERR | LWS_WARN | LWS_NOTICE | LWS_INFO | LWS_DEBUG | LWS_USER;
    case AB_LOG_INFO:
        return LWS_ERR | LWS_WARN | LWS_NOTICE | LWS_USER;
    case AB_LOG_WARN:
        return LWS_ERR | LWS_WARN;
    default:
        return LWS_ERR;
    }
}

void ab_log_mhd(void *cls, const char *fmt, va_list ap)
{
    if (!ab_log_enabled(AB_LOG_WARN))
        return;
    char buf[AB_LOG_LINE_MAX];
    buf[0] = '\0';
    int n = fmt ? vsnprintf(buf, sizeof(buf), fmt, ap) : 0;
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof(buf) ? sizeof(buf) - 1 : (size_t)n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    ab_log(AB_LOG_WARN, cls ? (const char *)cls : "mhd", "%.*s", (int)len, buf);
}
