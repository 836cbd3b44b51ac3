/*
 * prng: the simulator's own seeded pseudo-random generator.
 *
 * splitmix64 turns a seed (plus a stream number, e.g. a symbol index) into a
 * well-mixed state; xorshift64* then produces the sequence. Everything is
 * inline and pure: the same seed gives the same numbers on every platform,
 * which is what makes the simulated market reproducible (rand() is not).
 * A struct prng belongs to one owner; it is not shared between threads.
 */
#ifndef SIM_PRNG_H
#define SIM_PRNG_H

#include <stdint.h>

struct prng {
    uint64_t s; /* never zero */
};

static inline uint64_t prng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Seeds p from (seed, stream): different streams give unrelated sequences. */
static inline void prng_init(struct prng *p, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    p->s = prng_splitmix64(&x);
    if (p->s == 0)
        p->s = 0x2545f4914f6cdd1dULL;
}

/* Next 64 random bits (xorshift64*). */
static inline uint64_t prng_next(struct prng *p)
{
    uint64_t x = p->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    p->s = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* Uniform integer in [0, bound) for bound >= 1 (multiply-shift, no modulo bias worth noting). */
static inline uint64_t prng_below(struct prng *p, uint64_t bound)
{
    return (uint64_t)(((unsigned __int128)prng_next(p) * bound) >> 64);
}

#endif
