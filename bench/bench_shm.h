/*
 * bench_shm: the shared-memory file through which a WebSocket benchmark's
 * publisher tells the load client when each update was published, so the
 * client can measure publish-to-receive latency on the same clock
 * (CLOCK_MONOTONIC is shared by processes on one machine). Header only.
 *
 * Update k (0-based) of a run carries the number base + k in its frame
 * ("num_trades":N in the candle messages); t_pub[k] is when the publisher
 * handed it to the server. `total` is set (non-zero) when publishing starts,
 * `published` counts the updates handed over so far.
 */
#ifndef ABIDANCE_BENCH_SHM_H
#define ABIDANCE_BENCH_SHM_H

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_util.h"

#define BENCH_SHM_MAGIC 0x61626964616e6365LL /* "abidance" */

struct bench_shm {
    int64_t magic;
    _Atomic int64_t total;     /* updates of the run; 0 until publishing starts */
    int64_t base;              /* number carried by update 0 */
    int64_t capacity;          /* entries in t_pub */
    _Atomic int64_t published; /* updates handed to the server so far */
    int64_t t_pub[];           /* publish time of update k, ns (CLOCK_MONOTONIC) */
};

static inline size_t bench_shm_size(int64_t capacity)
{
    return sizeof(struct bench_shm) + (size_t)capacity * sizeof(int64_t);
}

/* Creates (truncates) path for `capacity` updates and maps it. Dies on error. */
static inline struct bench_shm *bench_shm_create(const char *path, int64_t capacity)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    struct bench_shm *s;

    if (fd < 0 || ftruncate(fd, (off_t)bench_shm_size(capacity)) != 0) {
        bench_die("bench_shm: cannot create %s", path);
    }
    s = mmap(NULL, bench_shm_size(capacity), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (s == MAP_FAILED) {
        bench_die("bench_shm: cannot map %s", path);
    }
    s->capacity = capacity;
    s->magic = BENCH_SHM_MAGIC;
    return s;
}

/* Maps an existing file (waits up to 60 s for it to appear). Dies on error. */
static inline struct bench_shm *bench_shm_open(const char *path)
{
    struct bench_shm *s;
    off_t len = 0;
    int fd = -1;

    for (int i = 0; i < 6000; i++) {
        fd = open(path, O_RDWR);
        if (fd >= 0 && (len = lseek(fd, 0, SEEK_END)) >= (off_t)sizeof(struct bench_shm)) {
            break;
        }
        if (fd >= 0) {
            close(fd);
            fd = -1;
        }
        usleep(10000);
    }
    if (fd < 0) {
        bench_die("bench_shm: %s did not appear", path);
    }
    s = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (s == MAP_FAILED) {
        bench_die("bench_shm: cannot map %s", path);
    }
    while (s->magic != BENCH_SHM_MAGIC) {
        usleep(1000);
    }
    return s;
}

static inline void bench_shm_close(struct bench_shm *s)
{
    munmap(s, bench_shm_size(s->capacity));
}

#endif
