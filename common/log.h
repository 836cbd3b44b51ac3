/*
 * log: the one logging module. Every service logs through it, and so do
 * libwebsockets and libmicrohttpd through the adapters at the bottom.
 *
 * One event is one line, written with a single write(2) to stderr (or the fd
 * given to ab_log_set_fd), under a mutex, so lines from different threads
 * never interleave. A line is at most AB_LOG_LINE_MAX bytes (PIPE_BUF, so
 * even several processes sharing a pipe do not interleave); a longer message
 * is cut and marked.
 *
 * Messages are printf-formatted. By convention a message is free text
 * followed by key=value fields, values without spaces or double-quoted:
 *
 *     ab_log(AB_LOG_INFO, "writer", "batch committed rows=%zu ms=%.1f", n, ms);
 *
 * text format (default):
 *
 *     2024-05-01T12:00:00.123Z INFO writer: batch committed rows=5 ms=1.2
 *
 * json format, one object per line; the trailing key=value fields become
 * members (a value that is a valid JSON number becomes a number, anything
 * else a string; a field named ts, level, comp or msg is renamed x_<name>):
 *
 *     {"ts":"2024-05-01T12:00:00.123Z","level":"info","comp":"writer",
 *      "msg":"batch committed","rows":5,"ms":1.2}
 *
 * Times are RFC 3339 UTC with milliseconds. Control characters in messages
 * are escaped (\n, \t, \xNN in text; JSON escapes in json), so one event
 * always stays one line. A cut line ends with "...[truncated]" (text) or
 * carries "truncated":true (json).
 *
 * SECRETS: never pass an API secret, a credential key, a password or a
 * database URL with a password to these functions. Where a value could hold
 * one, log ab_log_redact(value) or the output of ab_log_redact_url().
 *
 * Threads: every function may be called from any thread at any time. The
 * settings are atomics; change them at start-up, before threads log.
 */
#ifndef AB_LOG_H
#define AB_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define AB_LOG_LINE_MAX 4096 /* bytes per line, newline included */

enum ab_log_level {
    AB_LOG_DEBUG = 0,
    AB_LOG_INFO = 1,
    AB_LOG_WARN = 2,
    AB_LOG_ERROR = 3,
};

enum ab_log_format {
    AB_LOG_TEXT = 0,
    AB_LOG_JSON = 1,
};

/* Sets the line format and the lowest level written (default: text, info). */
void ab_log_init(enum ab_log_format format, enum ab_log_level min_level);

/*
 * Sends lines to fd (borrowed: the caller keeps it open while logging and
 * closes it after switching back). A negative fd restores stderr.
 */
void ab_log_set_fd(int fd);

/* True when an event at level would be written (skip expensive arguments). */
bool ab_log_enabled(enum ab_log_level level);

/*
 * Parses "debug", "info", "warn"/"warning", "error" (case-insensitive).
 * Returns 0 or AB_EINVAL.
 */
int ab_log_level_parse(const char *s, enum ab_log_level *out);

/* Parses "text" or "json" (case-insensitive). Returns 0 or AB_EINVAL. */
int ab_log_format_parse(const char *s, enum ab_log_format *out);

/* Returns "debug", "info", "warn" or "error" (static). */
const char *ab_log_level_name(enum ab_log_level level);

/*
 * Writes one event. component is a short lower-case name ("writer", "rest";
 * NULL becomes "-"); fmt is a printf format. Never fails: write errors are
 * dropped, since there is nowhere left to report them.
 */
void ab_log(enum ab_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ab_log with a va_list. */
void ab_logv(enum ab_log_level level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* ---- secrets ---- */

/*
 * Stands in for a value that may be secret: returns "(none)" for NULL or ""
 * and "***" for anything else (static strings), so a log still says whether
 * a value was set.
 */
const char *ab_log_redact(const char *s);

/*
 * Copies a database connection string into out (cap bytes, NUL-terminated)
 * with every password replaced by "***": the password of a URI's userinfo
 * (postgresql://user:pass@host/db), a `password=` or `sslpassword=` query
 * parameter of a URI, and a `password = value` / `password='quoted value'`
 * pair of a keyword/value conninfo string. Keys match case-insensitively.
 * Returns 0, AB_EINVAL (NULL arguments or cap 0) or AB_ERANGE (out was too
 * small: out holds a cut, still-redacted prefix).
 */
int ab_log_redact_url(const char *in, char *out, size_t cap);

/* ---- adapters for libraries (plain C signatures; no lws/mhd headers) ---- */

/*
 * libwebsockets emit callback: lws_set_log_level(ab_log_lws_levels(),
 * ab_log_lws_emit). Maps lws's LLL_ERR to error, LLL_WARN to warn, LLL_NOTICE
 * and LLL_USER to info, everything else to debug; component "lws"; trailing
 * newlines are dropped.
 */
void ab_log_lws_emit(int level, const char *line);

/* The lws level mask that matches the current minimum level. */
int ab_log_lws_levels(void);

/*
 * libmicrohttpd external logger: MHD_OPTION_EXTERNAL_LOGGER, ab_log_mhd, cls.
 * cls is a component name (const char *, borrowed) or NULL for "mhd".
 * libmicrohttpd only logs errors, so the level is warn.
 */
void ab_log_mhd(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#endif
