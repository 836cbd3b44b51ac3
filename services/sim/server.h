/*
 * server: the simulator's network side, on libwebsockets (one thread).
 *
 * One lws context, one vhost, one port, optionally TLS. Two protocols share
 * the port: "http" (protocols[0]) answers REST GETs through rest.c, and
 * "binance-stream" (the vhost's default WebSocket protocol, so clients need
 * not name a subprotocol) serves /ws/<streams> and /stream?streams=... with
 * live control messages (control.c).
 *
 * Data flow: a periodic timer (every SERVER_TICK_MS of real time) advances
 * the source, the market model to the sim clock (start_time + elapsed real
 * time * speed) or the replay timeline, and every event goes to the clients
 * subscribed to its stream. Each client has a bounded queue of shared,
 * reference-counted messages; a WRITEABLE callback writes exactly one (with
 * LWS_PRE headroom). A client whose queue is full is closed (1008) and
 * counted. Pings go out every ping_interval_ms; a client that has not
 * answered one within pong_timeout_ms is closed. More than SERVER_MSG_RATE
 * incoming messages (text or pong) within one second closes the connection,
 * as Binance does. Faults (faults.h) are applied on the way out.
 *
 * GET /sim/stats (not Binance) reports connection counts, drops and injected
 * faults as JSON, for tests.
 *
 * Send trace (benchmarks, cfg.trace_file): every model depth frame written
 * to a stream client appends "SYMBOL U NS\n" (U = its final update id, NS =
 * CLOCK_MONOTONIC ns taken just before lws_write) to a 4 MiB stdio buffer;
 * the tick flushes it at most once a second and server_free at exit, so
 * the send path never waits on the file. bench/bench_e2e joins it with
 * what reaches abidance-query's WebSocket clients.
 *
 * server_run blocks until server_stop (safe from a signal handler).
 */
#ifndef SIM_SERVER_H
#define SIM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/sim/faults.h"
#include "services/sim/market.h"
#include "services/sim/replay.h"
#include "services/sim/streams.h"

#define SERVER_TICK_MS  5
#define SERVER_MSG_RATE 5 /* incoming messages per second per connection */

struct server_cfg {
    const char *host;               /* listen address (borrowed), e.g. "127.0.0.1" */
    int port;                       /* 0 = any free port (see server_port) */
    const char *tls_cert, *tls_key; /* PEM paths (borrowed) or NULL for plain */
    double speed;                   /* sim clock rate; replay: 0 = as fast as possible */
    int64_t start_time;             /* sim time at start, ms (model mode) */
    int64_t ping_interval_ms;       /* 0 = no pings */
    int64_t pong_timeout_ms;
    size_t max_streams;     /* per connection (Binance: 1024) */
    size_t queue_cap;       /* messages queued per client before it is dropped */
    int64_t replay_hold_ms; /* see replay.h */
    struct faults_cfg faults;
    uint64_t seed;
    bool lws_debug;          /* let libwebsockets log notices too */
    struct market *market;   /* borrowed: model mode, or NULL */
    struct replay *replay;   /* borrowed: replay mode, or NULL */
    struct streams *streams; /* borrowed: the registry matching the mode */
    const char *trace_file;  /* borrowed path or NULL: depth send trace (see below) */
};

struct server;

/*
 * Creates the context and starts listening. Returns 0 and *out (free with
 * server_free), AB_EINVAL for a bad config, AB_EIO when listening (or TLS
 * setup) failed, or AB_ENOMEM.
 */
int server_new(const struct server_cfg *cfg, struct server **out);

/* The port actually listened on (useful with port 0). */
int server_port(const struct server *s);

/* Serves until server_stop. Returns 0, or a negative code if the source failed. */
int server_run(struct server *s);

/* Asks server_run to return; async-signal-safe. */
void server_stop(struct server *s);

/* Writes a one-line summary of the counters (for the exit log) into buf. */
void server_summary(const struct server *s, char *buf, size_t len);

void server_free(struct server *s);

#endif
