/*
 * ingest: the abidance-ingest process wired together. main.c only parses
 * the config and calls these.
 *
 * One libwebsockets context and one thread run everything: the exchange
 * WebSocket connections (ws.h), the REST client (rest.h), the health port
 * (health.h) and the timers. Exchange frames are decoded at the edge
 * (common/binance.h); invalid ones are counted by reason, logged at most
 * once per ingest_policy.log_every_ms per reason, and skipped. Diff events
 * go to the book manager (books.h), kline updates through the candle
 * tracker (candles.h), and what they produce goes to the publisher
 * (publish.h). A 250 ms timer asks REST for due candles (backfill and
 * closes that never came) and for delayed snapshot retries.
 *
 * The exchange's clock: candle decisions use an estimate of the exchange
 * time, the newest of (GET /api/v3/time answer + local time since) and
 * (newest event time E seen + local time since). The first estimate gates
 * the start-up backfill.
 *
 * ingest_run blocks until ingest_stop (async-signal-safe) is called.
 */
#ifndef ABIDANCE_INGEST_INGEST_H
#define ABIDANCE_INGEST_INGEST_H

#include <stdint.h>

#include "config.h"

struct ingest; /* opaque */

/*
 * Builds everything from cfg (borrowed; must outlive the object): reads the
 * credentials, opens the record file, creates the lws context and the
 * health port. Nothing talks to the exchange yet. Returns 0 (*out) or a
 * negative ab_err code (already logged).
 */
int ingest_new(const struct ingest_config *cfg, struct ingest **out);

/* The health port actually listened on (0 when disabled). */
uint16_t ingest_health_port(const struct ingest *in);

/* Connects and serves until ingest_stop. Returns 0 or a negative code. */
int ingest_run(struct ingest *in);

/* Asks ingest_run to return; async-signal-safe. */
void ingest_stop(struct ingest *in);

/* Closes everything and frees. Accepts NULL. */
void ingest_free(struct ingest *in);

#endif
