/*
 * bench_util: helpers shared by the benchmark programs of bench/ (header
 * only: every function is static inline).
 *
 * Every benchmark prints its workload in plain lines first, then one
 * machine-readable line per figure:
 *
 *   RESULT id=<id> value=<v> unit=<unit> baseline=<b> ratio=<value/b> key=value...
 *
 * bench/report.py collects these lines into the table of bench/RESULTS.md.
 * Values never contain spaces (use '_'); free text goes in a quoted
 * note="...". Not part of the product: nothing here is used by the services.
 */
#ifndef ABIDANCE_BENCH_UTIL_H
#define ABIDANCE_BENCH_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Monotonic time in seconds. */
static inline double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Monotonic time in nanoseconds. */
static inline int64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* CPU seconds (user + system) this process used so far. */
static inline double bench_cpu(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* Median of v[0..n-1] (sorts v in place). n must be >= 1. */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The q-quantile (0..1) of sorted v[0..n-1], nearest rank. */
static inline double bench_quantile(const double *v, size_t n, double q)
{
    size_t i;

    if (n == 0) {
        return 0;
    }
    i = (size_t)(q * (double)n);
    if (i >= n) {
        i = n - 1;
    }
    return v[i];
}

/* Prints "RESULT " + the formatted rest + newline, and flushes. */
__attribute__((format(printf, 1, 2))) static inline void bench_result(const char *fmt, ...)
{
    va_list ap;

    fputs("RESULT ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Exits with a message on stderr. */
__attribute__((format(printf, 1, 2), noreturn)) static inline void bench_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Parses a positive integer argument or dies. */
static inline long bench_arg_long(const char *s, long min, long max, const char *what)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < min || v > max) {
        bench_die("bad %s '%s' (%ld..%ld)", what, s, min, max);
    }
    return v;
}

/* splitmix64: the deterministic generator of every synthetic workload. */
static inline uint64_t bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1). */
static inline double bench_rand01(uint64_t *state)
{
    return (double)(bench_rand(state) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
