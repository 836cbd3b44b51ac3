/*
 * bus_frame: the wire format of the ingest -> query bus (api/bus.md), as
 * pure functions: no I/O, no clock, no global state.
 *
 * A frame is a 16-byte header followed by a type-specific payload, all
 * little-endian:
 *
 *   off size field
 *   0   4    len      total frame length in bytes, header included
 *                     (AB_BUS_HDR_SIZE .. AB_BUS_FRAME_MAX)
 *   4   1    version  AB_BUS_VERSION (1)
 *   5   1    type     enum ab_bus_type
 *   6   2    flags    AB_BUS_F_RESENT on data frames; every other bit is 0
 *   8   8    seq      data frames: 1, 2, 3, ... per ingest instance;
 *                     control frames (hello, ack, resync): 0
 *
 * The payload layouts are in api/bus.md. Decimals travel as their exact
 * scaled value (struct ab_dec's int128, 16 bytes, two's complement), symbols
 * as a length byte and the characters. Exchange times are epoch ms; the
 * ingest receive time is epoch MICROseconds (recv_us), so the end-to-end
 * latency can be measured below a millisecond.
 *
 * Validation is the same on both sides: an encoder refuses (AB_EINVAL /
 * AB_ERANGE) exactly what the decoder would reject, so a frame that was
 * accepted for sending can never poison the stream. The decoder checks
 * every byte it reads: the length, version, type, flags, seq class, every
 * count against the bytes left, symbols (ab_symbol_valid), intervals and
 * candle alignment, decimal range (|v| < 10^32 units, i.e. 24 integer
 * digits), prices > 0, quantities >= 0, times within 0 .. year 9999, enum
 * values, printable strings, and that the payload is consumed exactly. It
 * never reads outside the buffer it was given and never allocates more than
 * the frame's own size. It does not check candle OHLC consistency
 * (ab_candle_validate does that, in the ingest).
 *
 * Streaming: struct ab_bus_decoder takes bytes as they come off a socket
 * (any split: one byte at a time or many frames per read) and yields whole
 * messages. Its buffer is bounded by the largest frame it accepts.
 *
 * Ownership: a decoded struct ab_bus_msg owns its level arrays (snapshot and
 * delta); release with ab_bus_msg_deinit (accepts a zeroed msg). Messages
 * given to encoders are borrowed.
 *
 * Threads: all functions are thread-safe on distinct objects.
 */
#ifndef AB_BUS_FRAME_H
#define AB_BUS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/model.h"

#define AB_BUS_VERSION    1
#define AB_BUS_HDR_SIZE   16
#define AB_BUS_FRAME_MAX  (4u * 1024 * 1024) /* hard cap on one frame, header included */
#define AB_BUS_MAGIC      0x53554241u        /* "ABUS" as little-endian bytes */
#define AB_BUS_NAME_MAX   64                 /* hello name: up to 63 bytes + NUL */
#define AB_BUS_REASON_MAX 256                /* status reason: up to 255 bytes + NUL */
#define AB_BUS_LEVEL_SIZE 32                 /* one level on the wire: price + qty */

/* Header flag: this data frame was already sent on an earlier connection. */
#define AB_BUS_F_RESENT 0x0001u

/* Latest time a frame may carry: 9999-12-31T23:59:59.999Z, in ms. */
#define AB_BUS_TIME_MAX_MS 253402300799999LL

enum ab_bus_type {
    AB_BUS_HELLO = 1,         /* control, both directions */
    AB_BUS_ACK = 2,           /* control, query -> ingest */
    AB_BUS_CANDLE = 3,        /* data, ingest -> query */
    AB_BUS_BOOK_SNAPSHOT = 4, /* data */
    AB_BUS_BOOK_DELTA = 5,    /* data */
    AB_BUS_STATUS = 6,        /* data */
    AB_BUS_RESYNC = 7,        /* control, query -> ingest: please send a fresh snapshot */
};

enum ab_bus_role { AB_BUS_ROLE_INGEST = 1, AB_BUS_ROLE_QUERY = 2 };

/* Where a candle came from: the kline stream, or a REST backfill. */
enum ab_bus_origin { AB_BUS_ORIGIN_WS = 0, AB_BUS_ORIGIN_REST = 1 };

enum ab_bus_book_state { AB_BUS_BOOK_SYNCING = 0, AB_BUS_BOOK_LIVE = 1, AB_BUS_BOOK_RESYNCING = 2 };

enum ab_bus_conn_state {
    AB_BUS_CONN_CONNECTING = 0,
    AB_BUS_CONN_CONNECTED = 1,
    AB_BUS_CONN_DISCONNECTED = 2,
};

struct ab_bus_hello {
    uint8_t version;      /* highest protocol version the sender speaks (>= 1) */
    uint8_t role;         /* enum ab_bus_role */
    uint64_t instance_id; /* random per process start, never 0 */
    /*
     * ingest -> query: the lowest seq not yet acknowledged (the first one it
     * will send on this connection; its next new seq when nothing is pending).
     * query -> ingest: the highest seq of this ingest instance the query has
     * durably handled (0 when it knows nothing about this instance).
     */
    uint64_t seq;
    char name[AB_BUS_NAME_MAX]; /* printable ASCII, for logs ("abidance-ingest pid=7") */
};

struct ab_bus_candle {
    struct ab_candle c; /* c.event_time: exchange event time, ms (0 unknown) */
    enum ab_bus_origin origin;
    int64_t recv_us; /* ingest receive time, epoch us */
};

struct ab_bus_snapshot {
    struct ab_book_snapshot s; /* levels owned (decoded) or borrowed (encoded) */
    int64_t event_time;        /* exchange time, ms; 0 for REST snapshots */
    int64_t recv_us;
};

struct ab_bus_delta {
    struct ab_book_delta d; /* first_id (U) <= last_id (u); d.event_time in ms */
    uint64_t prev_id;       /* the ingest book's id before this delta; 0 unknown */
    int64_t recv_us;
};

struct ab_bus_status {
    char symbol[AB_SYMBOL_MAX];
    enum ab_bus_book_state book;
    enum ab_bus_conn_state conn;
    uint64_t last_update_id;        /* the book's id when live, else 0 */
    int64_t recv_us;                /* ingest time of the change, epoch us */
    char reason[AB_BUS_REASON_MAX]; /* printable ASCII, may be "" */
};

/* One decoded (or to-be-encoded) frame. Which member is valid follows type. */
struct ab_bus_msg {
    enum ab_bus_type type;
    uint16_t flags; /* AB_BUS_F_* */
    uint64_t seq;   /* >= 1 for data frames, 0 for control frames */
    union {
        struct ab_bus_hello hello;
        uint64_t ack; /* every seq <= ack is durably handled */
        struct ab_bus_candle candle;
        struct ab_bus_snapshot snapshot;
        struct ab_bus_delta delta;
        struct ab_bus_status status;
        char resync_symbol[AB_SYMBOL_MAX]; /* "" = every symbol */
    } u;
};

/* Frees the level arrays of a decoded snapshot/delta and zeroes *m. */
void ab_bus_msg_deinit(struct ab_bus_msg *m);

/* True for candle, snapshot, delta and status (sequenced, acknowledged). */
bool ab_bus_type_is_data(enum ab_bus_type t);

/* "hello", "ack", "candle", "book_snapshot", "book_delta", "status", "resync", "?". */
const char *ab_bus_type_name(enum ab_bus_type t);
const char *ab_bus_book_state_name(enum ab_bus_book_state s); /* "syncing" ... */
const char *ab_bus_conn_state_name(enum ab_bus_conn_state s); /* "connecting" ... */

/* ---- encoding ---- */

/*
 * Validates m and sets *len to its encoded size. Returns 0, AB_EINVAL (a
 * field the decoder would reject; *reason says which, static string) or
 * AB_ERANGE (a decimal or time out of range, or the frame would exceed
 * AB_BUS_FRAME_MAX). reason may be NULL.
 */
int ab_bus_frame_size(const struct ab_bus_msg *m, size_t *len, const char **reason);

/*
 * Encodes m into buf (cap bytes). On success *len is the frame length.
 * Returns 0, the errors of ab_bus_frame_size, or AB_ENOMEM when cap is too
 * small (nothing useful is written then).
 */
int ab_bus_frame_encode(const struct ab_bus_msg *m, uint8_t *buf, size_t cap, size_t *len,
                        const char **reason);

/*
 * Overwrites the seq and flags of an encoded frame in place (the transport
 * numbers frames when it queues them and marks them resent). buf holds at
 * least AB_BUS_HDR_SIZE bytes.
 */
void ab_bus_frame_set_seq(uint8_t *buf, uint64_t seq);
void ab_bus_frame_set_flags(uint8_t *buf, uint16_t flags);

/* A growable byte buffer with a hard cap (max bytes, set at init). */
struct ab_bus_buf {
    uint8_t *p; /* owned */
    size_t len, cap, max;
};

void ab_bus_buf_init(struct ab_bus_buf *b, size_t max);
void ab_bus_buf_deinit(struct ab_bus_buf *b);

/*
 * Appends the encoding of m to b. Returns 0, the errors of
 * ab_bus_frame_size, or AB_ENOMEM (allocation failed or b would exceed its
 * max); b is unchanged on error.
 */
int ab_bus_frame_append(struct ab_bus_buf *b, const struct ab_bus_msg *m, const char **reason);

/* ---- decoding ---- */

/*
 * Decodes the one frame at buf: len must be at least the frame's length
 * field (extra bytes after the frame are ignored; *used says how many bytes
 * the frame took). *out is overwritten (call ab_bus_msg_deinit on the
 * previous content first); on error it is zeroed and owns nothing.
 * Returns 0, AB_ETRUNC (fewer bytes than the frame needs), AB_EINVAL
 * (malformed: bad length, version, type, flags, count, symbol, ...),
 * AB_ERANGE (a decimal or time out of range) or AB_ENOMEM. *reason (may be
 * NULL) gets a static description. max_frame caps the accepted length
 * (0 = AB_BUS_FRAME_MAX; larger values are clamped to it).
 */
int ab_bus_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, struct ab_bus_msg *out,
                        size_t *used, const char **reason);

/*
 * Streaming decoder. Embed it (ab_bus_decoder_init/_deinit). Feed with
 * ab_bus_decoder_push until it has consumed all bytes:
 *
 *     while (n > 0) {
 *         size_t used;
 *         int rc = ab_bus_decoder_push(&dec, p, n, &used, &msg, &reason);
 *         p += used, n -= used;
 *         if (rc < 0) { close the stream; break; }
 *         if (rc == 1) { handle msg; ab_bus_msg_deinit(&msg); }
 *     }
 *
 * A frame that sits whole in the pushed bytes is decoded in place; only a
 * frame split across pushes is copied, into a buffer that grows to at most
 * the largest frame accepted. After an error the decoder stays failed
 * (every push returns the same error) until ab_bus_decoder_reset.
 */
struct ab_bus_decoder {
    uint8_t *buf;     /* owned: partial frame */
    size_t have;      /* bytes of the partial frame held */
    size_t cap;       /* allocated */
    size_t max_frame; /* largest frame accepted */
    int err;          /* sticky error, 0 while healthy */
    uint64_t frames;  /* frames decoded */
    uint64_t bytes;   /* bytes consumed */
};

/* max_frame: 0 = AB_BUS_FRAME_MAX; larger values are clamped to it. */
void ab_bus_decoder_init(struct ab_bus_decoder *d, size_t max_frame);
void ab_bus_decoder_deinit(struct ab_bus_decoder *d);

/* Drops any partial frame and the error (use for a new connection). */
void ab_bus_decoder_reset(struct ab_bus_decoder *d);

/*
 * Consumes up to n bytes of data (*used tells how many). Returns 1 when a
 * whole frame was decoded into *out (the caller deinits it), 0 when all n
 * bytes were consumed without completing a frame, or a negative ab_bus_frame_decode
 * error (the stream is corrupt; *reason says why).
 */
int ab_bus_decoder_push(struct ab_bus_decoder *d, const uint8_t *data, size_t n, size_t *used,
                        struct ab_bus_msg *out, const char **reason);

/* True when the decoder holds part of a frame (the peer stopped mid-frame). */
bool ab_bus_decoder_partial(const struct ab_bus_decoder *d);

#endif
