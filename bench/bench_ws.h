/*
 * bench_ws: the WebSocket framing the raw-socket benchmark clients share
 * (bench_wsclient, bench_e2e). RFC 6455 section 5.2, just what a client
 * needs: encode its own (masked) frames, split the server's frames.
 */
#ifndef BENCH_WS_H
#define BENCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * One client frame in out (cap bytes): FIN, opcode, a zero mask (XOR with
 * zero leaves the payload as is; the server must still see the mask bit),
 * the payload. Payloads up to 65535 bytes. Returns the frame's length, or 0
 * when it does not fit.
 */
static inline size_t bench_ws_client_frame(unsigned char *out, size_t cap, int opcode,
                                           const char *payload, size_t len)
{
    size_t h = 0;

    if (len > 65535 || cap < len + 8) {
        return 0;
    }
    out[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        out[h++] = (unsigned char)(0x80 | len);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (unsigned char)(len >> 8);
        out[h++] = (unsigned char)len;
    }
    memset(out + h, 0, 4);
    h += 4;
    memcpy(out + h, payload, len);
    return h + len;
}

/* A server frame's header, as bench_ws_frame_header reads it. */
struct bench_ws_frame {
    int opcode;   /* 1 text, 8 close, 9 ping, ... */
    bool fin;     /* the last fragment of its message */
    uint64_t len; /* payload bytes */
    size_t hdr;   /* header bytes: the payload starts at f + hdr */
};

/*
 * Reads the frame header at f (avail bytes buffered). Returns 1 when the
 * header is complete (the payload may not be: check avail >= hdr + len), 0
 * when more bytes are needed, -1 for a masked frame (servers never mask).
 */
static inline int bench_ws_frame_header(const unsigned char *f, size_t avail,
                                        struct bench_ws_frame *fr)
{
    if (avail < 2) {
        return 0;
    }
    fr->opcode = f[0] & 0x0f;
    fr->fin = (f[0] & 0x80) != 0;
    fr->len = f[1] & 0x7f;
    fr->hdr = 2;
    if (fr->len == 126) {
        if (avail < 4) {
            return 0;
        }
        fr->len = ((uint64_t)f[2] << 8) | f[3];
        fr->hdr = 4;
    } else if (fr->len == 127) {
        if (avail < 10) {
            return 0;
        }
        fr->len = 0;
        for (int i = 0; i < 8; i++) {
            fr->len = (fr->len << 8) | f[2 + i];
        }
        fr->hdr = 10;
    }
    return (f[1] & 0x80) ? -1 : 1;
}

#endif
