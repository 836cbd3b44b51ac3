#!/usr/bin/python3
"""Baseline for bench_indicators: the seed's pandas indicators on the same closes.

    /usr/bin/python3 bench/seed_indicators.py CLOSES_FILE [SECONDS]

CLOSES_FILE is written by bench_indicators (one close per line, 17 digits).
sma, ema, rsi and macd below are the seed's functions (shared/seed),
transcribed verbatim. One set is sma(20), ema(20), rsi(14), macd(12, 26, 9)
over every close, as bench_indicators computes; sets repeat for at least
SECONDS (default 3) and the median set time is reported as candles per
second (RESULT id=indicators_seed).
"""
import statistics
import sys
import time
from typing import Optional, Tuple

import numpy as np
import pandas as pd


def sma(data: pd.Series, period: int) -> pd.Series:
    """Calculate Simple Moving Average."""
    return data.rolling(window=period).mean()


def ema(data: pd.Series, period: int, alpha: Optional[float] = None) -> pd.Series:
    """Calculate Exponential Moving Average."""
    if alpha is None:
        alpha = 2 / (period + 1)
    return data.ewm(alpha=alpha, adjust=False).mean()


def rsi(data: pd.Series, period: int = 14) -> pd.Series:
    """Calculate Relative Strength Index."""
    delta = data.diff()
    gain = delta.clip(lower=0)
    loss = -delta.clip(upper=0)

    avg_gain = gain.rolling(window=period).mean()
    avg_loss = loss.rolling(window=period).mean()

    rs = avg_gain / avg_loss
    return 100 - (100 / (1 + rs))


def macd(
    data: pd.Series,
    fast_period: int = 12,
    slow_period: int = 26,
    signal_period: int = 9
) -> Tuple[pd.Series, pd.Series, pd.Series]:
    """Calculate MACD, Signal, and Histogram."""
    fast_ema = ema(data, fast_period)
    slow_ema = ema(data, slow_period)

    macd_line = fast_ema - slow_ema
    signal_line = ema(macd_line, signal_period)
    histogram = macd_line - signal_line

    return macd_line, signal_line, histogram


def main() -> int:
    closes = pd.Series(np.loadtxt(sys.argv[1], dtype=np.float64))
    secs = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    times = []
    t0 = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - t0 < secs:
        t = time.perf_counter()
        sma(closes, 20)
        ema(closes, 20)
        rsi(closes, 14)
        macd(closes, 12, 26, 9)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(f"pandas {pd.__version__}: {len(closes)} closes, one set: median {med * 1e3:.3f} ms"
          f" over {len(times)} sets")
    print(f"RESULT id=indicators_seed value={len(closes) / med:.0f} unit=candles/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
