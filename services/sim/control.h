/*
 * control: a stream connection's subscriptions and Binance's live control
 * messages (pure: text in, reply text out).
 *
 * A connection starts from its URL: /ws (nothing), /ws/<s1>/<s2>... (raw
 * payloads) or /stream?streams=<s1>/<s2>... (combined wrapper). Then the
 * client may send, as JSON text frames:
 *
 *   {"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":1}   -> {"result":null,"id":1}
 *   {"method":"UNSUBSCRIBE","params":[...],"id":2}              -> {"result":null,"id":2}
 *   {"method":"LIST_SUBSCRIPTIONS","id":3}                      -> {"result":[..],"id":3}
 *   {"method":"SET_PROPERTY","params":["combined",true],"id":4} -> {"result":null,"id":4}
 *   {"method":"GET_PROPERTY","params":["combined"],"id":5}      -> {"result":true,"id":5}
 *
 * id may be an integer, a string of up to 36 letters/digits, or null (or
 * absent: null). Errors use Binance's codes: 0 unknown property, 1 wrong
 * value type, 2 invalid request (unknown method, bad id, bad params, an
 * unknown stream name, or more than max_streams streams on the connection:
 * the whole SUBSCRIBE is then refused), 3 invalid JSON. An error body is
 * {"code":N,"msg":"..."} plus "id" when the request's id could be read.
 *
 * Subscriber counts in the registry follow every change; call
 * control_release when the connection goes away. One owner; no locking.
 */
#ifndef SIM_CONTROL_H
#define SIM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "services/sim/sbuf.h"
#include "services/sim/streams.h"

#define CONTROL_MAX_STREAMS 1024 /* Binance's per-connection limit */

struct control_conn {
    struct stream_set subs;
    size_t n_subs;
    bool combined; /* wrap payloads as {"stream":..,"data":..} */
};

/*
 * Sets up c from the request path (without query) and the value of the
 * streams= query parameter (NULL when absent). Returns 0, or AB_EINVAL with
 * a static reason in *why (unknown path, bad or too many stream names).
 */
int control_open(struct streams *st, struct control_conn *c, size_t max_streams, const char *path,
                 const char *streams_arg, const char **why);

/* Answers one text message into reply (always something to send). Returns 0 or AB_ENOMEM. */
int control_handle(struct streams *st, struct control_conn *c, size_t max_streams, const char *text,
                   size_t len, struct sbuf *reply);

/* Drops every subscription (subscriber counts included). */
void control_release(struct streams *st, struct control_conn *c);

#endif
