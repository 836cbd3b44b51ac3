/*
 * decimal: exact decimal numbers for prices, quantities and volumes.
 *
 * Binance sends every price and quantity as a decimal string with at most 8
 * fractional digits. Some values (monthly quote volumes, meme-coin
 * quantities) do not fit a 64-bit integer scaled by 10^8, so a value here is a
 * signed 128-bit integer scaled by 10^8 (AB_DEC_SCALE). The accepted range is
 * |value| < 10^AB_DEC_INT_DIGITS (24 integer digits): anything larger, and any
 * arithmetic result outside that range, is AB_ERANGE, never a wrap.
 *
 * Parsing is strict: an optional '-', digits, optionally '.' and digits.
 * No '+', no exponent, no spaces, no empty integer part ("5." and ".5" are
 * rejected as Binance never sends them), at most 24 integer digits (leading
 * zeros count only once), and at most 8 fractional digits once trailing zeros
 * are ignored (a non-zero 9th digit would lose precision: AB_ERANGE).
 *
 * Values are plain structs: copy them freely. All functions are pure and
 * thread-safe.
 */
#ifndef AB_DECIMAL_H
#define AB_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AB_DEC_FRAC_DIGITS 8
#define AB_DEC_INT_DIGITS  24
#define AB_DEC_SCALE       100000000LL
/* Longest canonical string: '-' + 24 digits + '.' + 8 digits + NUL. */
#define AB_DEC_STR_MAX 40

struct ab_dec {
    __int128 v; /* value * 10^8 */
};

/*
 * Parses the len bytes at s (need not be NUL-terminated) into *out.
 * Returns 0, AB_EINVAL for malformed text ("", "1e5", "--1", "1.2.3", " 1"),
 * or AB_ERANGE for too many integer digits or non-zero digits beyond the 8th
 * fractional place. *out is untouched on error.
 */
int ab_dec_parse(const char *s, size_t len, struct ab_dec *out);

/* Same as ab_dec_parse for a NUL-terminated string. */
int ab_dec_parse_cstr(const char *s, struct ab_dec *out);

/*
 * Writes the canonical form into buf (size >= AB_DEC_STR_MAX): no leading
 * zeros, no trailing fractional zeros, no trailing '.', "0" for zero, '-' only
 * for negative values. "50000.00" -> "50000", "0.00100000" -> "0.001".
 * Returns the length written (excluding NUL).
 */
size_t ab_dec_format(struct ab_dec d, char *buf);

/*
 * Writes the value with exactly `frac` fractional digits (0..8), as Binance
 * prints them ("50000.00000000" for frac 8). Returns the length written.
 * Digits beyond `frac` are truncated toward zero, never rounded ("-0.001"
 * with frac 2 is "0.00"); frac outside 0..8 is clamped.
 */
size_t ab_dec_format_fixed(struct ab_dec d, int frac, char *buf);

/* -1, 0 or 1 as a <, ==, > b. */
int ab_dec_cmp(struct ab_dec a, struct ab_dec b);

/* *out = a + b (or a - b). Returns 0 or AB_ERANGE when the result leaves the range. */
int ab_dec_add(struct ab_dec a, struct ab_dec b, struct ab_dec *out);
int ab_dec_sub(struct ab_dec a, struct ab_dec b, struct ab_dec *out);

static inline bool ab_dec_is_zero(struct ab_dec d)
{
    return d.v == 0;
}

static inline bool ab_dec_is_neg(struct ab_dec d)
{
    return d.v < 0;
}

static inline struct ab_dec ab_dec_zero(void)
{
    struct ab_dec d = {0};
    return d;
}

/* Builds a value from an integer count of 10^-8 units (exact). */
static inline struct ab_dec ab_dec_from_units(int64_t units)
{
    struct ab_dec d = {(__int128)units};
    return d;
}

/* Nearest double, for indicator math only; never feed it back into a decimal. */
double ab_dec_to_double(struct ab_dec d);

#endif
