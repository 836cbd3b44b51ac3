#!/usr/bin/python3
"""Python's websockets client (Debian python3-websockets) against the stream.

Usage: test_ws_python.py PATH/TO/ws_harness

Starts the harness on a free loopback port, subscribes to a candle and a
book channel, and checks the protocol of api/websocket.md: the ack, one
snapshot per channel, then every update in order with book continuity
(prev_update_id == the last id seen); errors leave the connection usable.
"""
import asyncio
import json
import subprocess
import sys

import websockets

CANDLES = "candles:BTCUSDT:1m"
BOOK = "book:BTCUSDT"


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def session(port):
    url = f"ws://127.0.0.1:{port}/v1/stream"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channels": [CANDLES, BOOK], "id": 1}))
        ack = await recv(ws)
        assert ack == {"type": "subscribed", "id": 1, "channels": [CANDLES, BOOK]}, ack

        snaps = {}
        while len(snaps) < 2:
            m = await recv(ws)
            assert m["type"] == "snapshot", m
            snaps[m["channel"]] = m
        candles = snaps[CANDLES]["candles"]
        assert [c["open_time"] for c in candles] == [1700000040000 + i * 60000 for i in range(3)]
        assert candles[0]["is_closed"] is True and candles[2]["is_closed"] is False
        assert candles[0]["open"] == "42000" and isinstance(candles[0]["volume"], str)
        book = snaps[BOOK]
        assert book["state"] == "live" and book["last_update_id"] == 1000, book
        assert book["bids"][0] == ["49999", "0.001"], book["bids"]
        assert book["asks"] == [["50000", "0.003"]], book["asks"]

        last = book["last_update_id"]
        bids = {p: q for p, q in book["bids"]}
        trades = []
        while len(trades) < 5 or last < 1005:
            m = await recv(ws)
            if m["type"] == "candle":
                assert m["channel"] == CANDLES
                trades.append(m["num_trades"])
                assert m["is_closed"] is (m["num_trades"] == 15)
            else:
                assert m["type"] == "book_delta", m
                assert m["prev_update_id"] == last, (m, last)
                assert m["first_update_id"] <= last + 1 <= m["last_update_id"]
                last = m["last_update_id"]
                for p, q in m["bids"]:
                    bids[p] = q
        assert trades == [11, 12, 13, 14, 15], trades
        assert bids["49999"] == "1.005", bids

        await ws.send("not json")
        err = await recv(ws)
        assert err["type"] == "error" and err["code"] == "bad_json", err
        await ws.send(json.dumps({"op": "subscribe", "channels": ["book:btc"], "id": "x"}))
        err = await recv(ws)
        assert err == {"type": "error", "id": "x", "code": "bad_channel",
                       "message": err["message"]}, err
        await ws.send(json.dumps({"op": "ping", "id": 2}))
        assert await recv(ws) == {"type": "pong", "id": 2}
        await ws.send(json.dumps({"op": "unsubscribe", "channels": [BOOK], "id": 3}))
        assert await recv(ws) == {"type": "unsubscribed", "id": 3, "channels": [BOOK]}


def main():
    harness = sys.argv[1]
    proc = subprocess.Popen([harness, "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline().split()
        assert len(line) == 2 and line[0] == "PORT", line
        asyncio.run(asyncio.wait_for(session(int(line[1])), 30))
    finally:
        proc.stdin.close()
        rc = proc.wait(timeout=15)
    assert rc == 0, rc
    print("ok")


if __name__ == "__main__":
    main()
