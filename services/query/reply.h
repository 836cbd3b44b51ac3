/*
 * reply: the one place REST responses are built and queued.
 *
 * Every JSON body goes through reply_json; every error goes through
 * reply_error with a code from enum api_code, whose table (api_codes) is the
 * list api/openapi.yaml documents under components/schemas/ErrorCode. An
 * error body is always {"error":{"code":"...","message":"..."}}.
 *
 * Responses carry Content-Type, Cache-Control: no-store and, for 405, an
 * Allow header (401: WWW-Authenticate, 429: Retry-After). Any REST worker thread may call these for
 * the connection it is serving.
 */
#ifndef ABIDANCE_QUERY_REPLY_H
#define ABIDANCE_QUERY_REPLY_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>

#include "common/decimal.h"

enum api_code {
    API_MISSING_PARAMETER,  /* 400: a required query parameter is absent */
    API_INVALID_PARAMETER,  /* 400: a parameter is malformed or out of range */
    API_UNKNOWN_PARAMETER,  /* 400: a parameter this endpoint does not take */
    API_INVALID_RANGE,      /* 400: start after end */
    API_NOT_FOUND,          /* 404: no such path, or nothing stored for the symbol */
    API_UNKNOWN_INDICATOR,  /* 404: /v1/indicators/{name} with an unknown name */
    API_METHOD_NOT_ALLOWED, /* 405: the path exists but not for this method */
    API_URI_TOO_LONG,       /* 414: request target longer than HTTP_URI_MAX */
    API_INTERNAL,           /* 500: a bug or an unexpected database error */
    API_DB_UNAVAILABLE,     /* 503: PostgreSQL is unreachable */
    API_UNAUTHORIZED,       /* 401: the API token is required, missing or wrong */
    API_TOO_MANY_REQUESTS,  /* 429: too many requests in progress from this address */
    API_HEADERS_TOO_LARGE,  /* 431: too many header fields or header bytes */
    API_CODE_COUNT
};

struct api_code_info {
    const char *name; /* "missing_parameter" */
    unsigned status;  /* HTTP status */
    const char *what; /* one line for the docs */
};

/* The table, indexed by enum api_code. */
extern const struct api_code_info api_codes[API_CODE_COUNT];

/* A client error being built up by parameter parsing (a value, no heap). */
struct api_error {
    enum api_code code;
    char message[256];
};

/* Fills *e; returns -1 so callers can `return api_fail(...)`. */
int api_fail(struct api_error *e, enum api_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Queues body (taken: always released) as compact JSON with status. When body
 * is NULL (allocation failed upstream) a 500 is sent instead. Returns what
 * MHD_queue_response returned.
 */
enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned status, json_t *body);

/* Queues an error reply with the code's status. allow (may be NULL) becomes
 * the Allow header (405). */
enum MHD_Result reply_error(struct MHD_Connection *conn, enum api_code code, const char *allow,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The same with any one extra header (name and value may be NULL): 401 with
 * WWW-Authenticate, 429 with Retry-After. */
enum MHD_Result reply_error_hdr(struct MHD_Connection *conn, enum api_code code, const char *name,
                                const char *value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Queues the error built by parameter parsing. */
enum MHD_Result reply_api_error(struct MHD_Connection *conn, const struct api_error *e);

/* Queues text (len bytes, copied) with the given content type. */
enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *content_type,
                           const char *text, size_t len);

/* ---- JSON value helpers (new references; NULL only when out of memory) ---- */

/* A decimal as its canonical string ("50000.5"): exact, never a double. */
json_t *json_dec(struct ab_dec d);

/* A double as a JSON number, or null when it is NaN or infinite. */
json_t *json_num_or_null(double v);

#endif
