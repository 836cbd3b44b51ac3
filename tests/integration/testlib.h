/*
 * testlib: small helpers the integration tests share (header only, static
 * inline: each test executable takes what it uses). Criterion asserts, so
 * include it after <criterion/criterion.h>.
 */
#ifndef AB_TEST_INTEGRATION_TESTLIB_H
#define AB_TEST_INTEGRATION_TESTLIB_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The throwaway cluster's URL (CTest fixture "pg" sets DATABASE_URL). */
static inline const char *db_url(void)
{
    const char *url = getenv("DATABASE_URL");

    cr_assert(url != NULL && url[0] != '\0',
              "DATABASE_URL is not set (run through ctest: fixture pg)");
    return url;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* The abidance-query binary: AB_QUERY_BIN when the test's CMake sets it,
 * else its place in the same build tree as this test. */
static inline const char *query_bin(void)
{
    static char path[4096];
#ifdef AB_QUERY_BIN
    snprintf(path, sizeof(path), "%s", AB_QUERY_BIN);
#else
    char self[4000];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    cr_assert(n > 0);
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    cr_assert_not_null(slash);
    *slash = '\0';
    snprintf(path, sizeof(path), "%s/../../services/query/abidance-query", self);
#endif
    cr_assert(access(path, X_OK) == 0, "abidance-query not found at %s (build it first)", path);
    return path;
}

/* A TCP port number 1..65535 from text, or 0. */
static inline int parse_port(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    return end != s && v > 0 && v < 65536 ? (int)v : 0;
}

#endif
