/* Unit tests of the replay reader and timeline (services/sim/replay.c) on real captures. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "services/sim/replay.h"

#define OLD      AB_SHARED_DATA "/binance/cryptofeed-2997020/BINANCE-ee25be.0"
#define NEW_HTTP AB_SHARED_DATA "/binance/cryptofeed-ce58c2a/BINANCE.http.0.0"
#define NEW_WS   AB_SHARED_DATA "/binance/cryptofeed-ce58c2a/BINANCE.ws.1.0"

static struct replay *load(const char *const *paths, size_t n, struct streams **st)
{
    char err[256];
    struct replay *r = NULL;
    cr_assert_eq(streams_new(NULL, st), 0);
    int rc = replay_load(paths, n, *st, &r, err, sizeof(err));
    cr_assert_eq(rc, 0, "load failed (the recording must exist): %s", err);
    return r;
}

Test(replay, old_layout_frames_and_snapshots)
{
    const char *paths[] = {OLD};
    struct streams *st;
    struct replay *r = load(paths, 1, &st);
    size_t frames = 0, snaps = 0;
    for (size_t i = 0; i < replay_count(r); i++) {
        const struct replay_rec *rec = replay_get(r, i);
        if (rec->kind == REPLAY_FRAME) {
            frames++;
            /* raw is exactly the "data" member of the combined text */
            cr_assert(rec->raw_len < rec->combined_len);
            cr_assert(strstr(rec->combined, rec->raw) != NULL);
            cr_assert_eq(rec->raw[0], '{');
        } else {
            snaps++;
        }
        if (i)
            cr_assert_geq(rec->recv_ms, replay_get(r, i - 1)->recv_ms);
    }
    cr_assert_eq(frames, 4716);
    cr_assert_eq(snaps, 3);
    cr_assert_eq(replay_n_symbols(r), 3);
    uint32_t id;
    cr_assert_eq(streams_lookup(st, "btcusdt@depth@100ms", 19, &id), 0);
    cr_assert_lt(id, 9, "all 9 recorded streams were interned at load");
    replay_free(r);
    streams_free(st);
}

static bool never(void *ud, size_t sym)
{
    return false;
}

Test(replay, timeline_publishes_snapshots_and_holds_until_fetched)
{
    const char *paths[] = {OLD};
    struct streams *st;
    struct replay *r = load(paths, 1, &st);
    size_t dot = SIZE_MAX;
    for (size_t i = 0; i < replay_n_symbols(r); i++)
        if (strcmp(replay_symbol(r, i)->symbol, "DOTUSDT") == 0)
            dot = i;
    cr_assert_neq(dot, SIZE_MAX);
    struct sbuf b;
    cr_assert_eq(sbuf_init(&b, 0, 1024, 1 << 22), 0);
    /* Before the timeline reaches it, the first recorded snapshot is served. */
    cr_assert_eq(replay_depth(r, dot, 1000, &b), 0);
    cr_assert(strncmp(sbuf_text(&b), "{\"lastUpdateId\":1513939277,", 27) == 0);
    cr_assert_null(replay_next(r, 0, NULL, NULL), "nothing before start");
    replay_start(r, 1000, 0, 500);
    const struct replay_rec *rec = replay_next(r, 1000, NULL, NULL);
    cr_assert_eq(rec->kind, REPLAY_FRAME);
    rec = replay_next(r, 1000, NULL, NULL);
    cr_assert_eq(rec->kind, REPLAY_SNAPSHOT);
    /* DOT's snapshot was already fetched above: no hold. */
    cr_assert_not_null(replay_next(r, 1000, NULL, NULL));
    /* Run to BTC's snapshot (not fetched): the timeline holds until the timeout or a fetch. */
    while ((rec = replay_next(r, 1000, NULL, NULL)) && rec->kind != REPLAY_SNAPSHOT)
        ;
    cr_assert_not_null(rec);
    cr_assert_eq(rec->last_update_id, 9893033066ULL);
    cr_assert_null(replay_next(r, 1200, NULL, NULL), "held");
    sbuf_reset(&b);
    cr_assert_eq(replay_depth(r, rec->sym, 5, &b), 0);
    cr_assert(strncmp(sbuf_text(&b), "{\"lastUpdateId\":9893033066,\"bids\":[[\"58001.03000000\"",
                      50) == 0);
    cr_assert_not_null(replay_next(r, 1200, NULL, NULL), "released by the fetch");
    /* ETH's snapshot with nobody interested: no hold either. */
    while ((rec = replay_next(r, 1200, never, NULL)) && rec->kind != REPLAY_SNAPSHOT)
        ;
    cr_assert_not_null(rec);
    cr_assert_not_null(replay_next(r, 1200, never, NULL));
    size_t rest = 0;
    while (replay_next(r, 1200, NULL, NULL))
        rest++;
    cr_assert_gt(rest, 1000);
    cr_assert(replay_done(r));
    cr_assert_eq(replay_time(r) / 1000, 1617566682);
    sbuf_deinit(&b);
    replay_free(r);
    streams_free(st);
}

Test(replay, paced_by_speed)
{
    const char *paths[] = {OLD};
    struct streams *st;
    struct replay *r = load(paths, 1, &st);
    replay_start(r, 0, 10.0, 0);
    size_t n = 0;
    while (replay_next(r, 1000, NULL, NULL)) /* 1 s real = 10 s recorded */
        n++;
    cr_assert_gt(n, 10);
    cr_assert_lt(n, replay_count(r) / 3);
    replay_free(r);
    streams_free(st);
}

Test(replay, split_layout_merges_by_receive_time)
{
    const char *paths[] = {NEW_HTTP, NEW_WS};
    struct streams *st;
    struct replay *r = load(paths, 2, &st);
    size_t frames = 0, snaps = 0;
    for (size_t i = 0; i < replay_count(r); i++)
        replay_get(r, i)->kind == REPLAY_FRAME ? frames++ : snaps++;
    cr_assert_eq(frames, 265);
    cr_assert_eq(snaps, 4);
    replay_free(r);
    streams_free(st);
}

Test(replay, bad_input_is_refused)
{
    struct streams *st;
    cr_assert_eq(streams_new(NULL, &st), 0);
    char err[256];
    struct replay *r = NULL;
    const char *missing[] = {"/nonexistent/file"};
    cr_assert_eq(replay_load(missing, 1, st, &r, err, sizeof(err)), AB_EIO);
    char tmp[] = "/tmp/sim_replay_XXXXXX";
    int fd = mkstemp(tmp);
    cr_assert_geq(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("hello world\n", f);
    fclose(f);
    const char *junk[] = {tmp};
    cr_assert_eq(replay_load(junk, 1, st, &r, err, sizeof(err)), AB_EINVAL);
    cr_assert(strstr(err, "unknown recording format"));
    remove(tmp);
    streams_free(st);
}
