#!/usr/bin/python3
"""Generate the reference vectors for common/indicators.c and common/processor.c.

Run from anywhere:  /usr/bin/python3 tests/data/make_indicator_vectors.py
Writes tests/data/indicators/*.csv next to this script. Deterministic: the
synthetic inputs come from a 64-bit LCG written out below (no numpy RNG), the
real input is the recorded Binance klines file in /work/shared/data, and every
float is written with repr() (shortest string that round-trips exactly), NaN as
"nan". Re-running reproduces byte-identical files.

The formulas are the seed's pandas code (sma/ema/wma/rsi/macd and the
DataProcessor) plus the project's documented choices for what the seed leaves
open (see common/indicators.h and common/processor.h):
  rsi wilder : TA-Lib averaging, pandas-style final division
  bbands     : rolling mean +/- k * population std (ddof=0) of each window,
               computed exactly per window (not pandas' drifting rolling std)
  atr        : TA-Lib Wilder ATR, first value at index `period`
  vwap       : rolling sum(tp*vol)/sum(vol), tp=(h+l+c)/3, NaN if the sum is 0
  clean      : ffill+bfill, then modified z-score (median/MAD) outlier rule
"""

import json
import math
import os
import sys

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "indicators")
KLINES = os.environ.get(
    "AB_SHARED_DATA", "/work/shared/data"
) + "/binance/python-binance-c22c7de/klines_30m_2019-04-11_to_2019-04-21.json"

MA_PERIODS = [1, 2, 5, 14, 20, 50]
RSI_PERIODS = [2, 14]
MACDS = [(12, 26, 9), (5, 35, 5)]
BB = (20, 2.0)
ATR_PERIOD = 14
VWAP_PERIOD = 20


# --- deterministic input ----------------------------------------------------


class Lcg:
    """Knuth's MMIX LCG; u() is the top 53 bits scaled to [0, 1)."""

    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFFFFFFFFFF

    def u(self):
        self.s = (self.s * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return (self.s >> 11) / 9007199254740992.0


def synthetic_ohlcv(n=2000):
    """Random walk with: a flat zero-volume stretch (rsi 0/0, vwap 0/0),
    a strictly rising stretch (avg_loss = 0 -> rsi 100), a strictly falling
    stretch (rsi 0) and a x1000 level shift (running-sum cancellation)."""
    g = Lcg(20190411)
    close = 100.0
    h, l, c, v = [], [], [], []
    for i in range(n):
        if 300 <= i < 360:  # flat, no trades
            h.append(close), l.append(close), c.append(close), v.append(0.0)
            continue
        if 600 <= i < 640:
            close = round(close + 0.5 + g.u() * 0.1, 2)
        elif 900 <= i < 940:
            close = round(close - 0.3 - g.u() * 0.1, 2)
        elif i == 1200:
            close = round(close * 1000.0, 2)
        elif i == 1500:
            close = round(close / 1000.0, 2)
        else:
            close = round(close * (1.0 + (g.u() - 0.5) * 0.02), 2)
        spread = close * 0.005
        h.append(round(close + g.u() * spread, 2))
        l.append(round(close - g.u() * spread, 2))
        c.append(close)
        v.append(round(g.u() * 1000.0, 3))
    return {"high": h, "low": l, "close": c, "volume": v}


def signed_series(n=400):
    """Values crossing zero, with a run of exact zeros and a constant negative run."""
    g = Lcg(42)
    x, out = 0.0, []
    for i in range(n):
        if 100 <= i < 130:
            out.append(0.0)
            continue
        if 200 <= i < 220:
            out.append(-1.5)
            continue
        x = round(x + (g.u() - 0.5) * 2.0, 4)
        out.append(x)
    return {"close": out}


def nan_series(n=80):
    """Leading, isolated, clustered and trailing NaN (pandas NaN semantics)."""
    g = Lcg(7)
    x, out = 50.0, []
    for i in range(n):
        x = round(x + (g.u() - 0.5), 3)
        out.append(math.nan if i in (0, 1, 20, 40, 41, 42, n - 1) else x)
    return {"close": out}


def klines():
    with open(KLINES) as f:
        rows = json.load(f)
    # Binance kline array: [open_time, open, high, low, close, volume, ...]
    return {
        "open_time": [float(r[0]) for r in rows],
        "open": [float(r[1]) for r in rows],
        "high": [float(r[2]) for r in rows],
        "low": [float(r[3]) for r in rows],
        "close": [float(r[4]) for r in rows],
        "volume": [float(r[5]) for r in rows],
    }


# --- the seed's formulas (verbatim pandas) ----------------------------------


def sma(data, period):
    return data.rolling(window=period).mean()


def ema(data, period, alpha=None):
    if alpha is None:
        alpha = 2 / (period + 1)
    return data.ewm(alpha=alpha, adjust=False).mean()


def wma(data, period):
    weights = np.arange(1, period + 1)
    return data.rolling(window=period).apply(
        lambda x: np.sum(weights * x) / weights.sum(), raw=True
    )


def rsi_simple(data, period):
    delta = data.diff()
    gain = delta.clip(lower=0)
    loss = -delta.clip(upper=0)
    avg_gain = gain.rolling(window=period).mean()
    avg_loss = loss.rolling(window=period).mean()
    rs = avg_gain / avg_loss
    return 100 - (100 / (1 + rs))


def rsi_wilder(data, period):
    """TA-Lib's averaging: first average = mean of gains 1..period (at index
    period), then avg = (prev * (period - 1) + cur) / period. NaN propagates."""
    delta = data.diff()
    gain = delta.clip(lower=0).to_numpy()
    loss = (-delta.clip(upper=0)).to_numpy()
    n = len(data)
    ag = np.full(n, np.nan)
    al = np.full(n, np.nan)
    if n > period:
        sg = 0.0
        sl = 0.0
        for i in range(1, period + 1):
            sg += gain[i]
            sl += loss[i]
        g, lo = sg / period, sl / period
        ag[period], al[period] = g, lo
        for i in range(period + 1, n):
            g = (g * (period - 1) + gain[i]) / period
            lo = (lo * (period - 1) + loss[i]) / period
            ag[i], al[i] = g, lo
    rs = pd.Series(ag) / pd.Series(al)
    return 100 - (100 / (1 + rs))


def macd(data, fast, slow, signal):
    macd_line = ema(data, fast) - ema(data, slow)
    signal_line = ema(macd_line, signal)
    return macd_line, signal_line, macd_line - signal_line


def rolling_std_exact(data, period):
    """Population std (ddof=0) of each full window, numpy two-pass per window.
    Not pandas' rolling().std(ddof=0): its add/remove Welford update drifts
    (5% off after a x1000 level shift on a 100k walk); common/indicators.c
    computes the accurate value, so the reference does too."""
    v = data.to_numpy(dtype="float64")
    out = np.full(len(v), np.nan)
    if len(v) >= period:
        out[period - 1:] = sliding_window_view(v, period).std(axis=1, ddof=0)
    return pd.Series(out)


def bbands(data, period, k):
    mid = data.rolling(window=period).mean()
    sd = rolling_std_exact(data, period)
    return mid + k * sd, mid, mid - k * sd


def atr(high, low, close, period):
    """TA-Lib: TR_t = max(h-l, |h-c[t-1]|, |l-c[t-1]|) for t >= 1 (NaN if any
    is NaN); first ATR = mean of TR[1..period] at index period; then
    (prev*(period-1) + TR)/period. NaN propagates."""
    h, lo, c = high.to_numpy(), low.to_numpy(), close.to_numpy()
    n = len(c)
    out = np.full(n, np.nan)
    tr = np.full(n, np.nan)
    for i in range(1, n):
        a, b, d = h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])
        tr[i] = math.nan if math.isnan(a + b + d) else max(a, b, d)
    if n > period:
        s = 0.0
        for i in range(1, period + 1):
            s += tr[i]
        a = s / period
        out[period] = a
        for i in range(period + 1, n):
            a = (a * (period - 1) + tr[i]) / period
            out[i] = a
    return pd.Series(out)


def vwap(high, low, close, volume, period):
    tp = (high + low + close) / 3
    pv = (tp * volume).rolling(window=period).sum()
    vs = volume.rolling(window=period).sum()
    out = pv / vs
    out[vs == 0] = np.nan
    return out


# --- the processor (seed's DataProcessor with the documented robust rule) ---


def fill(s):
    return s.ffill().bfill()


def replace_outliers(s):
    s = s.copy()
    valid = s.dropna()
    if len(valid) == 0:
        return s
    med = valid.median()
    absdev = (valid - med).abs()
    mad = absdev.median()
    if mad > 0:
        m = 0.6745 * absdev / mad
    else:
        mean_ad = absdev.mean()
        if not mean_ad > 0:
            return s
        m = absdev / (1.253314 * mean_ad)
    s[m[m > 3.5].index] = med
    return s


def minmax(s):
    lo, hi = s.min(), s.max()
    if hi == lo:
        return s.where(s.isna(), 0.0)
    return (s - lo) / (hi - lo)


def zscore(s):
    mean, std = s.mean(), s.std()
    if not std > 0:  # constant, single value or all NaN: documented as 0.0
        return s.where(s.isna(), 0.0)
    return (s - mean) / std


# --- output -----------------------------------------------------------------


def fmt(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    return repr(v)


def write_csv(name, cols):
    names = list(cols)
    n = len(cols[names[0]])
    for k in names:
        if len(cols[k]) != n:
            sys.exit(f"{name}: column {k} has {len(cols[k])} rows, want {n}")
    path = os.path.join(OUT, name)
    with open(path, "w", newline="\n") as f:
        f.write(",".join(names) + "\n")
        for i in range(n):
            f.write(",".join(fmt(cols[k][i]) for k in names) + "\n")
    print(f"wrote {path}: {n} rows, {len(names)} columns")


def close_indicators(cols):
    c = pd.Series(cols["close"], dtype="float64")
    for p in MA_PERIODS:
        cols[f"sma_{p}"] = list(sma(c, p))
        cols[f"ema_{p}"] = list(ema(c, p))
        cols[f"wma_{p}"] = list(wma(c, p))
    for p in RSI_PERIODS:
        cols[f"rsi_simple_{p}"] = list(rsi_simple(c, p))
        cols[f"rsi_wilder_{p}"] = list(rsi_wilder(c, p))
    for f_, s_, g_ in MACDS:
        m, sig, hist = macd(c, f_, s_, g_)
        cols[f"macd_{f_}_{s_}_{g_}"] = list(m)
        cols[f"macdsig_{f_}_{s_}_{g_}"] = list(sig)
        cols[f"macdhist_{f_}_{s_}_{g_}"] = list(hist)
    up, mid, lo = bbands(c, BB[0], BB[1])
    cols[f"bbup_{BB[0]}_2"] = list(up)
    cols[f"bbmid_{BB[0]}_2"] = list(mid)
    cols[f"bblow_{BB[0]}_2"] = list(lo)


def ohlcv_indicators(cols):
    h = pd.Series(cols["high"], dtype="float64")
    lo = pd.Series(cols["low"], dtype="float64")
    c = pd.Series(cols["close"], dtype="float64")
    v = pd.Series(cols["volume"], dtype="float64")
    cols[f"atr_{ATR_PERIOD}"] = list(atr(h, lo, c, ATR_PERIOD))
    cols[f"vwap_{VWAP_PERIOD}"] = list(vwap(h, lo, c, v, VWAP_PERIOD))


def main():
    os.makedirs(OUT, exist_ok=True)

    k = klines()
    if len(k["close"]) != 500:
        sys.exit(f"{KLINES}: expected 500 candles, got {len(k['close'])}")
    close_indicators(k)
    ohlcv_indicators(k)
    for col in ("close", "volume"):
        s = pd.Series(k[col], dtype="float64")
        k[f"minmax_{col}"] = list(minmax(s))
        k[f"zscore_{col}"] = list(zscore(s))
    write_csv("klines.csv", k)

    s = synthetic_ohlcv()
    close_indicators(s)
    ohlcv_indicators(s)
    write_csv("synthetic.csv", s)

    g = signed_series()
    close_indicators(g)
    write_csv("signed.csv", g)

    z = nan_series()
    close_indicators(z)
    write_csv("nan.csv", z)

    # The seed's DataProcessor scenario (tests/unit/data/test_processor.py).
    seed = {
        "open": [100, 101, np.nan, 103, 200],
        "high": [102, 103, 104, 105, 106],
        "low": [98, 99, 100, 101, 102],
        "close": [101, 102, 103, 104, 105],
        "volume": [1000, 1100, 1200, 1300, 1400],
    }
    df = pd.DataFrame(seed, dtype="float64")
    out = {c: list(df[c]) for c in df.columns}
    filled = df.ffill().bfill()
    for c in df.columns:
        out[f"filled_{c}"] = list(filled[c])
    for c in ("open", "high", "low", "close"):
        out[f"clean_{c}"] = list(replace_outliers(filled[c]))
    out["clean_volume"] = list(filled["volume"])
    for c in ("close", "volume"):
        out[f"minmax_{c}"] = list(minmax(df[c]))
        out[f"zscore_{c}"] = list(zscore(df[c]))
    write_csv("processor_seed.csv", out)

    # Fill edge cases: leading/middle/trailing gaps and an all-NaN column.
    nan = np.nan
    gaps = pd.Series([nan, nan, 1.5, nan, 2.5, nan, nan, -3.0, nan], dtype="float64")
    allnan = pd.Series([nan] * len(gaps), dtype="float64")
    write_csv(
        "processor_fill.csv",
        {"gaps": list(gaps), "filled_gaps": list(fill(gaps)),
         "allnan": list(allnan), "filled_allnan": list(fill(allnan))},
    )


if __name__ == "__main__":
    main()
