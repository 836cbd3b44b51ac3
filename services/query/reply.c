#include "reply.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

const struct api_code_info api_codes[API_CODE_COUNT] = {
    [API_MISSING_PARAMETER] = {"missing_parameter", 400, "a required query parameter is absent"},
    [API_INVALID_PARAMETER] = {"invalid_parameter", 400,
                               "a query parameter is malformed, repeated or out of range"},
    [API_UNKNOWN_PARAMETER] = {"unknown_parameter", 400,
                               "a query parameter this endpoint does not accept"},
    [API_INVALID_RANGE] = {"invalid_range", 400, "start is after end"},
    [API_NOT_FOUND] = {"not_found", 404, "no such path, or no data for the symbol"},
    [API_UNKNOWN_INDICATOR] = {"unknown_indicator", 404, "no indicator by that name"},
    [API_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405,
                                "the path exists but not for this method (see Allow)"},
    [API_URI_TOO_LONG] = {"uri_too_long", 414, "the request target is too long"},
    [API_INTERNAL] = {"internal", 500, "unexpected server-side failure"},
    [API_DB_UNAVAILABLE] = {"db_unavailable", 503, "PostgreSQL cannot be reached; retry later"},
    [API_UNAUTHORIZED] = {"unauthorized", 401,
                          "the API token is required (Authorization: Bearer) and was missing or "
                          "wrong"},
    [API_TOO_MANY_REQUESTS] = {"too_many_requests", 429,
                               "too many requests in progress from this address (see "
                               "Retry-After)"},
    [API_HEADERS_TOO_LARGE] = {"headers_too_large", 431,
                               "too many request header fields, or too many header bytes"},
};

int api_fail(struct api_error *e, enum api_code code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

static enum MHD_Result queue(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             const char *hname, const char *hvalue, void *buf, size_t len,
                             enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, buf, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (hname && hvalue)
        MHD_add_response_header(r, hname, hvalue);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char internal_body[] =
    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory building the response\"}}";

static enum MHD_Result reply_json_hdr(struct MHD_Connection *conn, unsigned status, json_t *body,
                                      const char *hname, const char *hvalue)
{
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(body);
    if (!text) {
        ab_log(AB_LOG_ERROR, "rest", "cannot build a response body status=%u", status);
        return queue(conn, 500, "application/json", NULL, NULL, (void *)internal_body,
                     sizeof(internal_body) - 1, MHD_RESPMEM_PERSISTENT);
    }
    return queue(conn, status, "application/json", hname, hvalue, text, strlen(text),
                 MHD_RESPMEM_MUST_FREE);
}

enum MHD_Result reply_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
    return reply_json_hdr(conn, status, body, NULL, NULL);
}

static enum MHD_Result error_v(struct MHD_Connection *conn, enum api_code code, const char *hname,
                               const char *hvalue, const char *message)
{
    if ((unsigned)code >= API_CODE_COUNT)
        code = API_INTERNAL;
    json_t *body =
        json_pack("{s:{s:s,s:s}}", "error", "code", api_codes[code].name, "message", message);
    return reply_json_hdr(conn, api_codes[code].status, body, hname, hvalue);
}

enum MHD_Result reply_error(struct MHD_Connection *conn, enum api_code code, const char *allow,
                            const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return error_v(conn, code, allow ? MHD_HTTP_HEADER_ALLOW : NULL, allow, msg);
}

enum MHD_Result reply_error_hdr(struct MHD_Connection *conn, enum api_code code, const char *name,
                                const char *value, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return error_v(conn, code, name, value, msg);
}

enum MHD_Result reply_api_error(struct MHD_Connection *conn, const struct api_error *e)
{
    return error_v(conn, e->code, NULL, NULL, e->message);
}

enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *content_type,
                           const char *text, size_t len)
{
    return queue(conn, status, content_type, NULL, NULL, (void *)text, len, MHD_RESPMEM_MUST_COPY);
}

json_t *json_dec(struct ab_dec d)
{
    char buf[AB_DEC_STR_MAX];
    size_t n = ab_dec_format(d, buf);
    return json_stringn(buf, n);
}

json_t *json_num_or_null(double v)
{
    if (!isfinite(v))
        return json_null();
    return json_real(v);
}
