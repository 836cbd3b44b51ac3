/*
 * Replays the fuzz targets' committed seeds (fuzz/seeds/<target>/) and every
 * saved crash (tests/data/fuzz-regressions/<target>/) through the same entry
 * points the libFuzzer binaries run (fuzz/targets.h), built here with the
 * normal compiler and flags. A property the target checks aborts the test;
 * so does a crash under the asan preset.
 *
 * The target sources are included, not linked: the unit-test build links
 * only abidance_common, and the targets are a handful of files.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_binance_rest.c"
#include "fuzz/fuzz_binance_stream.c"
#include "fuzz/fuzz_book.c"
#include "fuzz/fuzz_bus_frame.c"
#include "fuzz/fuzz_capture_line.c"
#include "fuzz/fuzz_cred_file.c"
#include "fuzz/fuzz_decimal.c"
#include "fuzz/fuzz_interval.c"
#include "fuzz/fuzz_util.c"

#define SEEDS_DIR       AB_TEST_DATA "/../../fuzz/seeds"
#define REGRESSIONS_DIR AB_TEST_DATA "/fuzz-regressions"
#define INPUT_MAX       (1024 * 1024)

typedef int (*fuzz_fn)(const uint8_t *, size_t);

/* Reads a whole file into an exactly sized buffer (so overreads are seen). */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    uint8_t *tmp = malloc(INPUT_MAX);
    cr_assert_not_null(tmp);
    size_t n = fread(tmp, 1, INPUT_MAX, f);
    cr_assert(feof(f), "%s: larger than %d bytes", path, INPUT_MAX);
    fclose(f);
    uint8_t *buf = malloc(n ? n : 1);
    cr_assert_not_null(buf);
    memcpy(buf, tmp, n);
    free(tmp);
    *len = n;
    return buf;
}

/* Runs fn on every regular file in dir; returns how many. A missing dir is 0. */
static size_t replay_dir(const char *dir, fuzz_fn fn)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len;
        uint8_t *buf = slurp(path, &len);
        ab_fuzz_input_name = path;
        cr_assert_eq(fn(buf, len), 0, "%s", path);
        ab_fuzz_input_name = NULL;
        free(buf);
        count++;
    }
    closedir(d);
    return count;
}

/* Every target has seeds; regressions are optional per target. */
static void replay(const char *target, fuzz_fn fn, size_t min_regressions)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", SEEDS_DIR, target);
    size_t seeds = replay_dir(dir, fn);
    cr_assert_geq(seeds, 2, "%s: expected committed seeds in %s", target, dir);
    snprintf(dir, sizeof(dir), "%s/%s", REGRESSIONS_DIR, target);
    size_t regressions = replay_dir(dir, fn);
    cr_assert_geq(regressions, min_regressions, "%s: regression inputs missing from %s", target,
                  dir);
}

Test(fuzz_regressions, decimal)
{
    replay("decimal", ab_fuzz_decimal, 0);
}

Test(fuzz_regressions, binance_stream)
{
    replay("binance_stream", ab_fuzz_binance_stream, 0);
}

Test(fuzz_regressions, binance_rest)
{
    replay("binance_rest", ab_fuzz_binance_rest, 0);
}

Test(fuzz_regressions, capture_line)
{
    replay("capture_line", ab_fuzz_capture_line, 0);
}

/* key-text-garbage-after-4096: ab_cred_key_parse judged only the first 4096 bytes. */
Test(fuzz_regressions, cred_file)
{
    replay("cred_file", ab_fuzz_cred_file, 1);
}

Test(fuzz_regressions, interval)
{
    replay("interval", ab_fuzz_interval, 0);
}

/* ub-null-levels-replay: replaying empty buffered events indexed a NULL level array. */
Test(fuzz_regressions, book)
{
    replay("book", ab_fuzz_book, 1);
}

Test(fuzz_regressions, bus_frame)
{
    replay("bus_frame", ab_fuzz_bus_frame, 0);
}

/* The checks can fail: a target given a deliberately broken property aborts. */
Test(fuzz_regressions, check_aborts, .signal = SIGABRT)
{
    AB_FUZZ_CHECK(1 + 1 == 3);
}
