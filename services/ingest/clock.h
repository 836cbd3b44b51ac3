/*
 * clock: the ingest's two clocks, in one place so pure modules never read
 * one: wall time (epoch ms/ns, for receive times and candle arithmetic) and
 * monotonic time (ms, for timeouts and rate limits). Thread-safe.
 */
#ifndef ABIDANCE_INGEST_CLOCK_H
#define ABIDANCE_INGEST_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t clock_wall_ms(void)
{
    return clock_wall_ns() / 1000000;
}

static inline int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif
