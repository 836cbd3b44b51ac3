/*
 * fuzz targets: one entry point per parser of untrusted bytes.
 *
 * Each ab_fuzz_<name>() takes an arbitrary byte buffer, feeds it to one
 * parser (or, for the structured targets, decodes it into a sequence of
 * calls), and checks the properties that must hold whatever the input:
 * no crash, no leak, no undefined behaviour (the sanitizers see those), and
 * the module's documented contract (a decoded candle validates, a parsed
 * decimal prints back to itself, a book stays sorted...). A broken property
 * calls ab_fuzz_fail, which prints where and aborts, so libFuzzer saves the
 * input as a crash and a Criterion test fails.
 *
 * The same functions are compiled into the libFuzzer binaries (fuzz/entry.c,
 * one binary per target) and into tests/unit/test_fuzz_regressions.c, which
 * replays the committed seeds and every saved crash. Every function returns 0
 * (libFuzzer's convention) and keeps no state between calls, so an input
 * behaves the same in both. Single-threaded.
 */
#ifndef AB_FUZZ_TARGETS_H
#define AB_FUZZ_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Name of the input being replayed (set by the regression test), or NULL. */
extern const char *ab_fuzz_input_name;

/* Prints "fuzz check failed: file:line: expr" (and the input's name) to stderr and aborts. */
__attribute__((noreturn)) void ab_fuzz_fail(const char *file, int line, const char *expr);

#define AB_FUZZ_CHECK(cond) ((cond) ? (void)0 : ab_fuzz_fail(__FILE__, __LINE__, #cond))

/* Shared checks (fuzz_util.c). */
struct ab_level;
struct ab_decode_err;

/* True when s[0..len) is well-formed UTF-8. */
bool ab_fuzz_utf8_valid(const char *s, size_t len);

/* True when s holds a NUL within cap bytes. */
bool ab_fuzz_terminated(const char *s, size_t cap);

/*
 * Checks n levels: prices > 0, quantities >= 0 (> 0 when positive_qty), and,
 * when order is -1 / 1, strictly descending / ascending prices.
 */
void ab_fuzz_check_levels(const struct ab_level *lv, size_t n, bool positive_qty, int order);

/* Checks the decode error contract: err.code == rc, a reason iff rc != 0. */
void ab_fuzz_check_decode_err(int rc, const struct ab_decode_err *err);

/* Input: a decimal string; "a|b" also checks arithmetic between two values. */
int ab_fuzz_decimal(const uint8_t *data, size_t size);

/* Input: one WebSocket text frame for ab_binance_decode_stream. */
int ab_fuzz_binance_stream(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the REST decoder (mod 5: depth, klines, error,
 * server time, exchangeInfo), byte 1 its parameter (klines interval, error
 * message capacity), the rest is the body.
 */
int ab_fuzz_binance_rest(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the mode (mod 3: each '\n'-separated line through
 * ab_capture_parse_line; the whole buffer as a file through the streaming
 * reader, byte 1 setting its line cap; the file through ab_capture_set_load),
 * the rest is capture text.
 */
int ab_fuzz_capture_line(const uint8_t *data, size_t size);

/*
 * Input: byte 0 picks the mode (mod 4: raw file bytes for ab_cred_open; key
 * text for ab_cred_key_parse; a plaintext sealed with a fixed key, so the
 * post-decryption checks see arbitrary contents; XOR mask applied to a
 * valid sealed file, which must then fail unless the mask is all zero).
 */
int ab_fuzz_cred_file(const uint8_t *data, size_t size);

/* Input: an interval name; with >= 9 bytes also byte 0 = interval, 1..8 = a time. */
int ab_fuzz_interval(const uint8_t *data, size_t size);

/*
 * Input: 3 header bytes (limits) then a program of book operations (deltas,
 * snapshots, loads, resets; see fuzz_book.c) run against struct ab_book and
 * a naive reference model, compared after every step.
 */
int ab_fuzz_book(const uint8_t *data, size_t size);

/*
 * Input: byte 0 sets the chunk sizes, byte 1 the frame cap (x8 bytes, 0 =
 * default), the rest is a bus byte stream, decoded frame by frame and by the
 * streaming decoder; both must agree, and each frame must re-encode to itself.
 */
int ab_fuzz_bus_frame(const uint8_t *data, size_t size);

/*
 * Input: a decoded REST query string "k=v&k2=v2" for the readers of
 * services/query/params.h (built into the fuzz binaries only: the unit-test
 * build does not link the query service).
 */
int ab_fuzz_rest_params(const uint8_t *data, size_t size);

/*
 * Input: byte 0 sets the limits (bits 0-2: channel cap 1..8, bit 3: cap 100,
 * bit 4: tracked symbols/intervals; bits 5-7 and 0-2 also drive the rate
 * limiter check), the rest is one WebSocket client message for
 * ws_request_parse (services/query/ws_request.h; fuzz binaries only, like
 * rest_params).
 */
int ab_fuzz_ws_request(const uint8_t *data, size_t size);

#endif
