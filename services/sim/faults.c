#include "services/sim/faults.h"

#include <string.h>

void faults_init(struct faults *f, const struct faults_cfg *cfg, uint64_t seed)
{
    memset(f, 0, sizeof(*f));
    f->cfg = *cfg;
    /* Its own stream of numbers: REST faults never shift the market's. */
    prng_init(&f->rng, seed, 0xfa017ULL);
}

static bool every(uint64_t n, uint64_t count)
{
    return n > 0 && count % n == 0;
}

bool faults_skip_depth(struct faults *f, uint32_t stream_id)
{
    if (!f->cfg.gap_every || stream_id >= STREAMS_MAX)
        return false;
    if (!every(f->cfg.gap_every, ++f->counts[stream_id]))
        return false;
    f->stats.gaps++;
    return true;
}

enum kline_fault faults_kline(struct faults *f, uint32_t stream_id)
{
    if (!f->cfg.out_of_range_every || stream_id >= STREAMS_MAX)
        return KLINE_OK;
    uint64_t c = ++f->counts[stream_id];
    if (!every(f->cfg.out_of_range_every, c))
        return KLINE_OK;
    f->stats.out_of_range++;
    return (c / f->cfg.out_of_range_every) % 2 ? KLINE_HIGH_BELOW_LOW : KLINE_NEGATIVE_VOLUME;
}

bool faults_malformed(struct faults *f, uint64_t msg_no)
{
    if (!every(f->cfg.malformed_every, msg_no))
        return false;
    f->stats.malformed++;
    return true;
}

int faults_rest_status(struct faults *f)
{
    if (f->cfg.rest_429_pct <= 0 && f->cfg.rest_418_pct <= 0)
        return 0;
    int r = (int)prng_below(&f->rng, 100);
    if (r < f->cfg.rest_418_pct) {
        f->stats.rest_418++;
        return 418;
    }
    if (r < f->cfg.rest_418_pct + f->cfg.rest_429_pct) {
        f->stats.rest_429++;
        return 429;
    }
    return 0;
}
