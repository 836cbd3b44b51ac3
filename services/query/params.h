/*
 * params: typed access to a REST request's query parameters.
 *
 * params_collect copies the (already percent-decoded) parameters of a
 * request into a fixed-size struct params; every param_* reader then parses
 * one of them strictly and, on failure, fills a struct api_error whose
 * message names the parameter and what was wrong ("limit must be an integer
 * from 1 to 5000, got \"0\""). Readers return 0 or -1; none allocates.
 *
 * Pointers inside struct params are borrowed from libmicrohttpd and valid
 * until the request completes. Used on the REST worker thread serving the
 * request; the pure parsers (params_parse_time) may be called anywhere.
 */
#ifndef ABIDANCE_QUERY_PARAMS_H
#define ABIDANCE_QUERY_PARAMS_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/interval.h"
#include "common/model.h"
#include "reply.h"

#define PARAMS_MAX 24 /* more query parameters than this is a 400 */

struct params {
    struct {
        const char *key;
        const char *value; /* "" for "?key" and "?key=" */
    } v[PARAMS_MAX];
    size_t n;
    bool overflow;    /* more than PARAMS_MAX parameters */
    bool nul_in_text; /* a key or value held a %00 */
};

/* Collects conn's query parameters. Returns 0 or -1 with *e set (too many
 * parameters, or a NUL byte). */
int params_collect(struct MHD_Connection *conn, struct params *p, struct api_error *e);

/* Rejects any parameter not in allowed (NULL-terminated) and any repeated
 * one. Returns 0 or -1 with *e set. */
int params_check(const struct params *p, const char *const *allowed, struct api_error *e);

/* The value of key, or NULL when absent. */
const char *params_get(const struct params *p, const char *key);

/* Required symbol: upper-case ASCII letters and digits, 1..31 chars. */
int param_symbol(const struct params *p, const char *key, char out[AB_SYMBOL_MAX],
                 struct api_error *e);

/* Required Binance interval name. */
int param_interval(const struct params *p, const char *key, enum ab_interval *out,
                   struct api_error *e);

/* Optional time (epoch ms or RFC 3339); *present says whether it was given. */
int param_time(const struct params *p, const char *key, int64_t *out, bool *present,
               struct api_error *e);

/* Optional integer in [min, max]; def when absent. */
int param_int(const struct params *p, const char *key, int64_t def, int64_t min, int64_t max,
              int64_t *out, struct api_error *e);

/* Optional finite decimal number in [min, max]; def when absent. */
int param_double(const struct params *p, const char *key, double def, double min, double max,
                 double *out, struct api_error *e);

/* Optional boolean ("true"/"false"/"1"/"0"); def when absent. */
int param_bool(const struct params *p, const char *key, bool def, bool *out, struct api_error *e);

/* Optional choice among names (NULL-terminated): *out is its index, def when
 * absent (def < 0 makes the parameter required). */
int param_choice(const struct params *p, const char *key, const char *const *names, int def,
                 int *out, struct api_error *e);

/*
 * Optional comma-separated list of distinct names from names (NULL-terminated,
 * at most 32): out_idx[] receives their indexes in the order given, *n_out
 * their count (cap entries max). Absent: *n_out = 0.
 */
int param_list(const struct params *p, const char *key, const char *const *names, int *out_idx,
               size_t cap, size_t *n_out, struct api_error *e);

/*
 * Parses len bytes of s as a time: non-negative epoch milliseconds (digits
 * only) or RFC 3339 ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00.250+02:00",
 * a space or lower-case t/z allowed, a ' ' standing for a form-decoded '+' in
 * the offset) or a bare date ("2024-05-01" = midnight UTC). Fractions beyond
 * milliseconds are truncated. Accepts 1970-01-01 .. 9999-12-31. Returns 0,
 * AB_EINVAL or AB_ERANGE.
 */
int params_parse_time(const char *s, size_t len, int64_t *out_ms);

#endif
