/*
 * record: writes every raw exchange message to a file in the cryptofeed raw
 * capture format (shared/data/binance/README.md), so `abidance-sim --replay`
 * and common/capture.h read it back:
 *
 *   <ts>: <payload>           a received WebSocket text frame
 *   <url> -> <ts>: <body>     a REST response body (any status)
 *   <url> <-> <ts>            a WebSocket connection opened
 *
 * <ts> is the receive time as Unix seconds with 9 decimals. One record is
 * one line, so CR and LF inside a payload are written as spaces (JSON
 * whitespace; a raw newline inside a JSON string is invalid JSON anyway).
 * Lines are appended through a stdio buffer and flushed by recorder_flush
 * (the ingest calls it once per loop turn) and at recorder_free.
 *
 * Write errors never stop the ingest: they are counted (recorder_errors)
 * and the caller logs them. One thread at a time.
 */
#ifndef ABIDANCE_INGEST_RECORD_H
#define ABIDANCE_INGEST_RECORD_H

#include <stddef.h>
#include <stdint.h>

struct recorder; /* opaque */

/*
 * Opens (appends to, creating with mode 0644) path. Returns 0 (*out: free
 * with recorder_free) or AB_EIO (errno kept) / AB_ENOMEM.
 */
int recorder_open(const char *path, struct recorder **out);

/* Flushes and closes. Accepts NULL. */
void recorder_free(struct recorder *r);

/* Appends one record; r may be NULL (recording off: nothing happens). */
void recorder_ws(struct recorder *r, int64_t recv_ns, const char *payload, size_t len);
void recorder_http(struct recorder *r, const char *url, int64_t recv_ns, const char *body,
                   size_t len);
void recorder_connect(struct recorder *r, const char *url, int64_t recv_ns);

/* Pushes buffered lines to the file. */
void recorder_flush(struct recorder *r);

/* Records written and write errors so far (0 for NULL). */
uint64_t recorder_records(const struct recorder *r);
uint64_t recorder_errors(const struct recorder *r);

#endif
