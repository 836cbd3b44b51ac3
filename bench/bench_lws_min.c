/*
 * bench_lws_min: the baseline broadcaster of the fan-out figure. A minimal
 * libwebsockets server in the style of lws' minimal-ws-server-ring: one
 * service thread, a ring of prebuilt messages, every connection writes one
 * frame per WRITEABLE callback until it has caught up.
 *
 *   bench_lws_min PORT SHM_FILE SUBSCRIBERS RATE SECONDS
 *
 * Listens on 127.0.0.1:PORT (any path). Once SUBSCRIBERS connections are
 * established, a publisher thread appends RATE messages per second for
 * SECONDS to the ring (each the size and shape of abidance-query's candle
 * message, with "num_trades":N numbering them as bench_shm.h describes;
 * publish times go to SHM_FILE) and wakes the service thread
 * (lws_cancel_service), which asks every connection for WRITEABLE. Client
 * messages are ignored. Prints RESULT id=wsmin_fanout: frames written per
 * CPU-second of this process over the publishing window plus the drain,
 * then exits once the clients have gone (or after 30 s).
 */
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_shm.h"
#include "bench_util.h"

#define RING    8192 /* messages; the publisher never laps a connection in practice */
#define MSG_MAX 600
#define TEMPLATE                                                                           \
    "{\"type\":\"candle\",\"channel\":\"candles:BTCUSDT:1m\",\"open_time\":1700000040000," \
    "\"close_time\":1700000099999,\"open\":\"30000\",\"high\":\"30012.34\",\"low\":"       \
    "\"29990.13\",\"close\":\"30003.21\",\"volume\":\"123.45678901\",\"quote_volume\":"    \
    "\"3712345.12345678\",\"taker_buy_volume\":\"61.2345\",\"taker_buy_quote_volume\":"    \
    "\"1841234.5678\",\"num_trades\":%lld,\"is_closed\":false,\"event_time\":%lld}"

struct ring_msg {
    size_t len;
    unsigned char buf[LWS_PRE + MSG_MAX];
};

static struct ring_msg ring[RING];
static _Atomic long ring_head; /* messages published so far */
static _Atomic long n_established;
static _Atomic long n_open;
static _Atomic uint64_t frames_written;
static struct lws_context *ctx;
static _Atomic int stopping;

struct session {
    long next; /* index of the next message to write */
};

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct session *s = user;

    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        s->next = atomic_load(&ring_head);
        atomic_fetch_add(&n_established, 1);
        atomic_fetch_add(&n_open, 1);
        break;
    case LWS_CALLBACK_CLOSED:
        atomic_fetch_sub(&n_open, 1);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        long head = atomic_load(&ring_head);
        struct ring_msg *m;

        if (s->next >= head) {
            break;
        }
        m = &ring[s->next % RING];
        if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len) {
            return -1;
        }
        s->next++;
        atomic_fetch_add(&frames_written, 1);
        if (s->next < head) {
            lws_callback_on_writable(wsi);
        }
        break;
    }
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        lws_callback_on_writable_all_protocol(ctx, lws_get_protocol(wsi));
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"bench", callback, sizeof(struct session), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct run {
    struct bench_shm *shm;
    long subs, rate, total, secs;
};

static void *publisher(void *arg)
{
    struct run *r = arg;
    struct timespec next;
    double t0, t1, cpu0, cpu1;
    uint64_t f0, expect;

    while (atomic_load(&n_established) < r->subs) {
        usleep(10000);
    }
    usleep(200000);
    f0 = atomic_load(&frames_written);
    cpu0 = bench_cpu();
    t0 = bench_now();
    atomic_store(&r->shm->total, r->total);
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (long k = 0; k < r->total; k++) {
        struct ring_msg *m = &ring[k % RING];
        int n = snprintf((char *)m->buf + LWS_PRE, MSG_MAX, TEMPLATE, (long long)(r->shm->base + k),
                         (long long)(1700000040001LL + k / 10));

        m->len = (size_t)n;
        r->shm->t_pub[k] = bench_now_ns();
        atomic_store(&ring_head, k + 1);
        atomic_store(&r->shm->published, k + 1);
        lws_cancel_service(ctx);
        next.tv_nsec += 1000000000L / r->rate;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    expect = f0 + (uint64_t)r->total * (uint64_t)r->subs;
    while (atomic_load(&frames_written) < expect && bench_now() - t0 < (double)r->secs + 30) {
        usleep(1000);
    }
    t1 = bench_now();
    cpu1 = bench_cpu();
    {
        double frames = (double)(atomic_load(&frames_written) - f0);

        printf("minimal broadcaster: %ld subscribers x %ld msg/s for %ld s: %.0f frames in"
               " %.2f s, CPU %.2f s (%.0f%% of one core)\n",
               r->subs, r->rate, r->secs, frames, t1 - t0, cpu1 - cpu0,
               100 * (cpu1 - cpu0) / (t1 - t0));
        bench_result("id=wsmin_fanout value=%.0f unit=frames/s/core frames=%.0f cpu_s=%.3f"
                     " wall_s=%.3f",
                     frames / (cpu1 - cpu0), frames, cpu1 - cpu0, t1 - t0);
    }
    t0 = bench_now();
    while (atomic_load(&n_open) > 0 && bench_now() - t0 < 30) {
        usleep(20000);
    }
    atomic_store(&stopping, 1);
    lws_cancel_service(ctx);
    return NULL;
}

int main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    struct run r;
    pthread_t th;

    if (argc < 6) {
        fprintf(stderr, "usage: bench_lws_min PORT SHM_FILE SUBSCRIBERS RATE SECONDS\n");
        return 2;
    }
    r.subs = bench_arg_long(argv[3], 1, 50000, "subscribers");
    r.rate = bench_arg_long(argv[4], 1, 100000, "rate");
    r.secs = bench_arg_long(argv[5], 1, 3600, "seconds");
    r.total = r.rate * r.secs;
    r.shm = bench_shm_create(argv[2], r.total);
    r.shm->base = 1000000;
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof info);
    info.port = (int)bench_arg_long(argv[1], 1, 65535, "port");
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    ctx = lws_create_context(&info);
    if (ctx == NULL) {
        bench_die("bench_lws_min: cannot create the context");
    }
    printf("ready: waiting for %ld subscribers\n", r.subs);
    fflush(stdout);
    if (pthread_create(&th, NULL, publisher, &r) != 0) {
        bench_die("bench_lws_min: pthread_create");
    }
    while (!atomic_load(&stopping)) {
        if (lws_service(ctx, 0) < 0) {
            break;
        }
    }
    pthread_join(th, NULL);
    lws_context_destroy(ctx);
    bench_shm_close(r.shm);
    return 0;
}
