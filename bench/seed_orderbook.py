#!/usr/bin/python3
"""Baseline for bench_book: the seed's OrderBook.update on the same events.

    /usr/bin/python3 bench/seed_orderbook.py UPDATES_FILE [SECONDS]

UPDATES_FILE is written by bench_book (first line: the book, then one diff
event per line). The OrderBook class below is the seed's (the project's
spec, shared/seed), transcribed verbatim apart from the imports. The file is
parsed before timing; then events are applied in order until SECONDS
(default 20) have passed or the file ends, and the rate of level updates per
second is printed as a RESULT line (id=book_seed). The seed's list scans make
it slow on a 5000-level book, so it usually runs a prefix of the events:
the workload is stationary, so the prefix's rate stands for the whole.
"""
import json
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import List, Tuple


@dataclass
class OrderBook:
    """Represents the current state of the order book."""

    symbol: str
    last_update_id: int
    bids: List[Tuple[Decimal, Decimal]]  # price, quantity pairs
    asks: List[Tuple[Decimal, Decimal]]  # price, quantity pairs

    def update(self, data: dict) -> None:
        """Update order book with incremental changes."""
        # Process bid updates
        for bid in data['b']:
            price = Decimal(str(bid[0]))
            quantity = Decimal(str(bid[1]))

            if quantity == 0:
                self.bids = [x for x in self.bids if x[0] != price]
            else:
                # Insert maintaining price order (descending)
                self._update_level(self.bids, price, quantity, reverse=True)

        # Process ask updates
        for ask in data['a']:
            price = Decimal(str(ask[0]))
            quantity = Decimal(str(ask[1]))

            if quantity == 0:
                self.asks = [x for x in self.asks if x[0] != price]
            else:
                # Insert maintaining price order (ascending)
                self._update_level(self.asks, price, quantity)

    def _update_level(
        self,
        levels: List[Tuple[Decimal, Decimal]],
        price: Decimal,
        quantity: Decimal,
        reverse: bool = False
    ) -> None:
        """Update a price level while maintaining order."""
        for i, (p, q) in enumerate(levels):
            if p == price:
                levels[i] = (price, quantity)
                return
            if (not reverse and price < p) or (reverse and price > p):
                levels.insert(i, (price, quantity))
                return
        levels.append((price, quantity))


def main() -> int:
    path = sys.argv[1]
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    with open(path) as f:
        first = json.loads(f.readline())
        events = [json.loads(line) for line in f]
    book = OrderBook(
        symbol="BTCUSDT",
        last_update_id=0,
        bids=[(Decimal(p), Decimal(q)) for p, q in first["bids"]],
        asks=[(Decimal(p), Decimal(q)) for p, q in first["asks"]],
    )
    levels = 0
    done = 0
    t0 = time.perf_counter()
    t = t0
    for ev in events:
        book.update(ev)
        book.last_update_id = ev["u"]
        levels += len(ev["b"]) + len(ev["a"])
        done += 1
        if done % 64 == 0:
            t = time.perf_counter()
            if t - t0 >= secs:
                break
    t = time.perf_counter()
    print(f"seed OrderBook.update: {done} of {len(events)} events, {levels} level updates"
          f" in {t - t0:.2f} s; book now {len(book.bids)}/{len(book.asks)} levels")
    print(f"RESULT id=book_seed value={levels / (t - t0):.0f} unit=updates/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
