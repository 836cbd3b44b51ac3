/*
 * capture: reads cryptofeed raw capture files (recorded Binance traffic).
 *
 * The format (see shared/data/binance/README.md) is UTF-8 text, one record
 * per line:
 *   "<ts>: <payload>"                  a received WebSocket text frame
 *   "<url> -> <ts>: <body>"            an HTTP GET response (url starts "http")
 *   "<url> <-> <ts>"                   a WebSocket connect event (url "ws...")
 *   "configuration: <json>" and others cryptofeed's own lines, reported as skipped
 * Empty lines are skipped silently. <ts> is the recorder's local receive time,
 * Unix seconds with up to 9 decimals; it is kept exactly as nanoseconds. It is
 * never the exchange time (that is the payload's "E").
 *
 * Two ways to read:
 *  - struct ab_capture streams one file line by line (constant memory, one
 *    line buffer capped at max_line bytes).
 *  - struct ab_capture_set loads several files (the newer layout splits HTTP
 *    and WS into separate files) and orders their timed records by receive
 *    time, stable on ties (earlier file, then earlier line, first).
 *
 * A malformed line is an error for that line only: the reader reports it and
 * continues with the next line on the next call. Objects are not shared
 * between threads; separate objects may be used from separate threads.
 */
#ifndef AB_CAPTURE_H
#define AB_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

/* Default cap on one line: exchangeInfo captures are about 1.9 MB. */
#define AB_CAPTURE_LINE_MAX (8u * 1024u * 1024u)
/* Cap on one file loaded into an ab_capture_set. */
#define AB_CAPTURE_FILE_MAX (512u * 1024u * 1024u)

enum ab_capture_kind {
    AB_CAP_WS,      /* one WebSocket text frame, payload = the frame */
    AB_CAP_HTTP,    /* one HTTP response, url = request URL, payload = body */
    AB_CAP_CONNECT, /* WebSocket connect event, url = the stream URL, no payload */
    AB_CAP_SKIP,    /* a line of cryptofeed's own ("configuration: ..."), payload = whole line */
};

/*
 * One record. All pointers are borrowed from the reader (valid until the next
 * ab_capture_next or ab_capture_free) or from the set (valid until
 * ab_capture_set_free). url, payload and header are NUL-terminated at their
 * length, so they can be handed to functions wanting C strings.
 */
struct ab_capture_rec {
    enum ab_capture_kind kind;
    int64_t recv_ns; /* receive time, ns since the epoch (exact); 0 for SKIP */
    const char *url; /* HTTP/CONNECT: the URL; otherwise NULL */
    size_t url_len;
    const char *payload; /* WS frame, HTTP body, or the SKIP line; "" for CONNECT */
    size_t payload_len;
    const char *header; /* HTTP: the optional " header: <json>" suffix's JSON, else NULL */
    size_t header_len;
    size_t line_no;    /* 1-based line number in its file */
    size_t file_index; /* index of the file in the set's path list; 0 for a reader */
};

/* Streaming reader over one file. */
struct ab_capture;

/*
 * Opens path for reading. max_line caps the length of one line in bytes
 * (0 = AB_CAPTURE_LINE_MAX). On success *out is a new reader: caller frees
 * with ab_capture_free. Returns 0, AB_EIO (errno set) or AB_ENOMEM.
 */
int ab_capture_open(const char *path, size_t max_line, struct ab_capture **out);

/*
 * Reads the next record into *rec.
 * Returns 1 when *rec holds a record, 0 at the end of the file, or a negative
 * code for the current line only (the next call continues after it):
 *   AB_EINVAL  malformed line (no "<ts>: ", bad timestamp, no " -> " ...)
 *   AB_ERANGE  timestamp out of range or more than 9 decimals
 *   AB_ENOMEM  line longer than max_line (the rest of it is discarded)
 *   AB_EIO     read error (errno set; further calls return AB_EIO too)
 * On a negative return rec->line_no names the offending line and, when reason
 * is not NULL, *reason a static description.
 */
int ab_capture_next(struct ab_capture *c, struct ab_capture_rec *rec, const char **reason);

/* Closes the file and frees the reader. Accepts NULL. */
void ab_capture_free(struct ab_capture *c);

/*
 * Parses one line (len bytes, without its '\n'; line[len] must be writable)
 * in place: the function writes NULs into line to terminate url, payload and header, which then
 * point into line. Returns 1 with *rec filled, 0 for an empty line, or AB_EINVAL / AB_ERANGE with
 * *reason set (when reason is not NULL). rec->line_no and rec->file_index are left untouched.
 * Exposed for tests and fuzzing.
 */
int ab_capture_parse_line(char *line, size_t len, struct ab_capture_rec *rec, const char **reason);

/* A set of capture files merged by receive time. */
struct ab_capture_set;

/*
 * Loads the n_paths files at paths (each at most AB_CAPTURE_FILE_MAX bytes,
 * each line at most max_line bytes, 0 = AB_CAPTURE_LINE_MAX) and sorts their
 * WS, HTTP and CONNECT records by recv_ns; SKIP lines are dropped. Any
 * malformed line fails the whole load: the function then returns its code
 * and writes "path:line: reason" into err (err_len bytes, may be 0).
 * On success *out is a new set: caller frees with ab_capture_set_free.
 * Returns 0, AB_EINVAL, AB_ERANGE, AB_ENOMEM or AB_EIO.
 */
int ab_capture_set_load(const char *const *paths, size_t n_paths, size_t max_line,
                        struct ab_capture_set **out, char *err, size_t err_len);

/* Number of records in the set. */
size_t ab_capture_set_count(const struct ab_capture_set *s);

/* The i-th record in receive-time order (borrowed; NULL when i is out of range). */
const struct ab_capture_rec *ab_capture_set_get(const struct ab_capture_set *s, size_t i);

/* Frees the set and all record memory. Accepts NULL. */
void ab_capture_set_free(struct ab_capture_set *s);

#endif
