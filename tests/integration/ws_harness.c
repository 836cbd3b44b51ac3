/*
 * ws_harness: live state + the stream server on a loopback port, publishing
 * a scripted sequence, for client tests in other languages
 * (test_ws_python.py).
 *
 *   ws_harness [PORT]      (0 or absent: any free port)
 *
 * Prints "PORT <n>" on stdout once listening. Holds BTCUSDT 1m candles
 * (three, the last open) and a BTCUSDT book at update id 1000. Once a client
 * has two subscriptions and has been sent the ack and both snapshots, it
 * publishes, alternately, five updates of the open candle (num_trades
 * 11..15, the last one closed) and five book deltas (ids 1001..1005, each
 * setting bid 49999 to the id's quantity in units of 0.001). Exits 0 when
 * stdin closes (or after 60 s).
 */
#include <libwebsockets.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "live.h"
#include "ws.h"

#define MIN 60000LL
#define T0  1700000040000LL

static struct ab_candle candle(int64_t open, int64_t trades, bool closed)
{
    struct ab_candle c;
    memset(&c, 0, sizeof(c));
    snprintf(c.symbol, sizeof(c.symbol), "BTCUSDT");
    c.interval = AB_I_1M;
    c.open_time = open;
    c.close_time = open + MIN - 1;
    c.open = ab_dec_from_units(4200000000000LL);
    c.high = ab_dec_from_units(4300000000000LL);
    c.low = ab_dec_from_units(4100000000000LL);
    c.close = ab_dec_from_units(4200000000000LL + trades * 1000000);
    c.volume = ab_dec_from_units(12345678LL * trades);
    c.num_trades = trades;
    c.closed = closed;
    c.event_time = open + trades;
    return c;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: ws_harness [PORT]\n");
        return 2;
    }
    ab_log_init(AB_LOG_TEXT, AB_LOG_WARN);
    lws_set_log_level(LLL_ERR, ab_log_lws_emit);
    struct live *lv = NULL;
    struct ws_server *srv = NULL;
    int rc = 1;
    if (live_new(NULL, &lv) != 0)
        goto out;
    for (int i = 0; i < 3; i++) {
        struct ab_candle c = candle(T0 + i * MIN, 10, i < 2);
        live_apply_candle(lv, &c, NULL);
    }
    struct ab_level bids[2] = {{ab_dec_from_units(4999900000000LL), ab_dec_from_units(100000)},
                               {ab_dec_from_units(4999800000000LL), ab_dec_from_units(200000)}};
    struct ab_level asks[1] = {{ab_dec_from_units(5000000000000LL), ab_dec_from_units(300000)}};
    struct ab_book_snapshot snap = {.symbol = "BTCUSDT",
                                    .last_update_id = 1000,
                                    .bids = bids,
                                    .asks = asks,
                                    .n_bids = 2,
                                    .n_asks = 1};
    live_apply_book_snapshot(lv, &snap, 0, NULL);

    struct ws_config cfg;
    ws_config_defaults(&cfg);
    cfg.addr.port = (uint16_t)port;
    if (ws_server_new(&cfg, lv, &srv) != 0 || ws_server_start(srv) != 0)
        goto out;
    printf("PORT %u\n", (unsigned)ws_server_port(srv));
    fflush(stdout);

    /* Publish only once the ack and both snapshots are written: a snapshot
     * is taken when it is written, so one written after the updates would
     * already hold them (and a slow server, e.g. under valgrind, gets there). */
    struct ws_stats st;
    for (int i = 0; i < 6000; i++) {
        ws_server_stats(srv, &st);
        if (st.subscriptions >= 2 && st.messages_sent >= 3)
            break;
        sleep_ms(10);
    }
    for (int i = 1; i <= 5; i++) {
        struct ab_candle c = candle(T0 + 2 * MIN, 10 + i, i == 5);
        live_apply_candle(lv, &c, NULL);
        struct ab_level l = {ab_dec_from_units(4999900000000LL),
                             ab_dec_from_units((1000 + i) * 100000LL)};
        struct ab_book_delta d = {.symbol = "BTCUSDT",
                                  .first_id = 1000 + (uint64_t)i,
                                  .last_id = 1000 + (uint64_t)i,
                                  .bids = &l,
                                  .n_bids = 1,
                                  .event_time = T0 + i};
        live_apply_book_delta(lv, &d, 0, NULL);
    }
    /* wait for stdin to close */
    struct pollfd p = {.fd = 0, .events = POLLIN};
    for (int i = 0; i < 600; i++) {
        if (poll(&p, 1, 100) > 0) {
            char b[64];
            if (read(0, b, sizeof(b)) <= 0)
                break;
        }
    }
    rc = 0;
out:
    ws_server_free(srv);
    live_free(lv);
    return rc;
}
