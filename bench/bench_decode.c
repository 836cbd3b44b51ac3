/*
 * bench_decode: decode + validate + apply of recorded Binance traffic, on one
 * core, against jansson's bare parse of the same messages.
 *
 *   bench_decode [DATA_DIR [SECONDS]]
 *
 * DATA_DIR (default AB_SHARED_DATA/binance) holds the cryptofeed-* capture
 * directories (shared/data/binance/README.md). Every capture is loaded once,
 * in receive order (ab_capture_set), keeping the WebSocket frames and the
 * depth snapshot responses (/depth URLs; exchangeInfo is not a stream
 * message and is left out). The workload is that message list, replayed in
 * passes:
 *
 *   ours      every WebSocket frame through ab_binance_decode_stream (parse,
 *             every field checked, decimals parsed exactly); depthUpdate
 *             events then go to the symbol's book (ab_book_on_delta: the
 *             Binance sync procedure and the level updates), snapshots
 *             through ab_binance_decode_depth + ab_book_on_snapshot. Klines,
 *             bookTickers and trades are decoded and validated (their
 *             consumers are elsewhere). Books are reset between passes.
 *   baseline  json_loadb(flags 0) + json_decref on the same bytes, nothing else.
 *
 * The two alternate in rounds of about SECONDS/ROUNDS each (default 6 s in
 * total), timed in CPU time of the benchmark's thread; each side's figure is
 * the median of its rounds, in messages per CPU second (one core).
 * Any decode error or book resync on this clean data fails the run.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "common/binance.h"
#include "common/book.h"
#include "common/capture.h"
#include "common/err.h"

#define ROUNDS    11
#define MAX_BOOKS 64
#define MAX_FILES 16

#ifndef AB_SHARED_DATA
#define AB_SHARED_DATA "../shared/data"
#endif

struct msg {
    bool is_snapshot;
    int capture;                /* index of the capture: books are per capture */
    char symbol[AB_SYMBOL_MAX]; /* snapshots only: from the URL */
    const char *bytes;          /* borrowed from the capture set */
    size_t len;
};

struct book_slot {
    int capture;
    struct ab_book *book;
};

static struct msg *msgs;
static size_t n_msgs, cap_msgs;
static size_t n_bytes, n_depth, n_snap;
static struct book_slot books[MAX_BOOKS];
static size_t n_books;
static struct ab_capture_set *sets[8];
static size_t n_sets;

static void add_msg(const struct msg *m)
{
    if (n_msgs == cap_msgs) {
        cap_msgs = cap_msgs ? cap_msgs * 2 : 4096;
        msgs = realloc(msgs, cap_msgs * sizeof *msgs);
        if (msgs == NULL) {
            bench_die("bench_decode: out of memory");
        }
    }
    msgs[n_msgs++] = *m;
    n_bytes += m->len;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads one capture directory; the set stays loaded (the messages borrow it). */
static void load_capture(const char *dir, int index)
{
    char *paths[MAX_FILES];
    size_t n = 0;
    struct ab_capture_set *set = NULL;
    char err[512];
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL) {
        bench_die("bench_decode: cannot open %s", dir);
    }
    while ((e = readdir(d)) != NULL && n < MAX_FILES) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "BINANCE.0") == 0) {
            continue; /* BINANCE.0: exchangeInfo and configuration only */
        }
        if (asprintf(&paths[n], "%s/%s", dir, e->d_name) < 0) {
            bench_die("bench_decode: out of memory");
        }
        n++;
    }
    closedir(d);
    qsort(paths, n, sizeof *paths, cmp_str);
    if (ab_capture_set_load((const char *const *)paths, n, 0, &set, err, sizeof err) != 0) {
        bench_die("bench_decode: %s: %s", dir, err);
    }
    for (size_t i = 0; i < ab_capture_set_count(set); i++) {
        const struct ab_capture_rec *r = ab_capture_set_get(set, i);
        struct msg m = {.capture = index, .bytes = r->payload, .len = r->payload_len};

        if (r->kind == AB_CAP_WS) {
            add_msg(&m);
        } else if (r->kind == AB_CAP_HTTP && strstr(r->url, "/depth?") != NULL) {
            const char *s = strstr(r->url, "symbol=");
            size_t k = 0;

            if (s == NULL) {
                continue;
            }
            for (s += 7; *s != '\0' && *s != '&' && k + 1 < sizeof m.symbol; s++) {
                m.symbol[k++] = *s;
            }
            m.symbol[k] = '\0';
            m.is_snapshot = true;
            n_snap++;
            add_msg(&m);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(paths[i]);
    }
    sets[n_sets++] = set; /* kept until the end: msgs point into it */
}

static struct ab_book *book_for(int capture, const char *symbol)
{
    for (size_t i = 0; i < n_books; i++) {
        if (books[i].capture == capture && strcmp(ab_book_symbol(books[i].book), symbol) == 0) {
            return books[i].book;
        }
    }
    if (n_books == MAX_BOOKS) {
        bench_die("bench_decode: more than %d books", MAX_BOOKS);
    }
    if (ab_book_new(symbol, NULL, &books[n_books].book) != 0) {
        bench_die("bench_decode: cannot create book %s", symbol);
    }
    books[n_books].capture = capture;
    return books[n_books++].book;
}

static uint64_t applied, resyncs;

/* One pass of decode + validate + apply. */
static void pass_ours(void)
{
    for (size_t i = 0; i < n_msgs; i++) {
        const struct msg *m = &msgs[i];
        struct ab_decode_err err;
        struct ab_book_result res;

        if (m->is_snapshot) {
            struct ab_book_snapshot s;

            if (ab_binance_decode_depth(m->bytes, m->len, m->symbol, &s, &err) != 0) {
                bench_die("bench_decode: snapshot %zu: %s", i, err.reason);
            }
            ab_book_on_snapshot(book_for(m->capture, m->symbol), &s, &res);
            ab_book_snapshot_deinit(&s);
        } else {
            struct ab_binance_msg bm;

            if (ab_binance_decode_stream(m->bytes, m->len, &bm, &err) != 0) {
                bench_die("bench_decode: message %zu: %s", i, err.reason);
            }
            if (bm.kind == AB_BINANCE_DEPTH_UPDATE) {
                ab_book_on_delta(book_for(m->capture, bm.depth.symbol), &bm.depth, &res);
                applied += res.action == AB_BOOK_APPLIED;
                resyncs += res.action == AB_BOOK_RESYNC;
            }
            ab_binance_msg_deinit(&bm);
        }
    }
}

static size_t sink;

static void pass_baseline(void)
{
    for (size_t i = 0; i < n_msgs; i++) {
        json_error_t jerr;
        json_t *root = json_loadb(msgs[i].bytes, msgs[i].len, 0, &jerr);

        if (root == NULL) {
            bench_die("bench_decode: jansson: message %zu: %s", i, jerr.text);
        }
        sink += json_object_size(root);
        json_decref(root);
    }
}

static void reset_books(void)
{
    for (size_t i = 0; i < n_books; i++) {
        ab_book_reset(books[i].book);
    }
}

/* CPU seconds of this thread: "messages/s on one core" is messages per
 * CPU second, which time stolen by other work on a shared machine does not
 * distort (wall-clock ratios of an unchanged binary swung 0.71-0.90x at
 * load 4-7; CPU-time ratios stayed within +-0.02). */
static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs passes of fn for at least secs of CPU time; returns messages per
 * CPU second. */
static double timed(void (*fn)(void), double secs)
{
    double t0 = cpu_now(), t;
    size_t passes = 0;

    do {
        reset_books();
        fn();
        passes++;
        t = cpu_now();
    } while (t - t0 < secs);
    return (double)(passes * n_msgs) / (t - t0);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : AB_SHARED_DATA "/binance";
    double total = argc > 2 ? (double)bench_arg_long(argv[2], 1, 3600, "seconds") : 6.0;
    static const char *const captures[] = {"cryptofeed-2997020", "cryptofeed-1312c06",
                                           "cryptofeed-3525dc8", "cryptofeed-ce58c2a"};
    double ours[ROUNDS], base[ROUNDS];
    double o, b;

    for (size_t i = 0; i < sizeof captures / sizeof captures[0]; i++) {
        char p[1024];

        snprintf(p, sizeof p, "%s/%s", dir, captures[i]);
        load_capture(p, (int)i);
    }
    /* One checked pass: every message decodes and every book stays in sync. */
    pass_ours();
    for (size_t i = 0; i < n_msgs; i++) {
        struct ab_binance_msg bm;

        if (!msgs[i].is_snapshot &&
            ab_binance_decode_stream(msgs[i].bytes, msgs[i].len, &bm, NULL) == 0) {
            n_depth += bm.kind == AB_BINANCE_DEPTH_UPDATE;
            ab_binance_msg_deinit(&bm);
        }
    }
    if (resyncs != 0 || applied == 0) {
        bench_die("bench_decode: replay not clean: %llu applied, %llu resyncs",
                  (unsigned long long)applied, (unsigned long long)resyncs);
    }
    printf("workload: %zu captures, %zu messages (%zu WebSocket frames of which %zu depthUpdate,"
           " %zu depth snapshots), %.1f MB, mean %.0f bytes; %llu deltas applied per pass\n",
           sizeof captures / sizeof captures[0], n_msgs, n_msgs - n_snap, n_depth, n_snap,
           (double)n_bytes / 1e6, (double)n_bytes / (double)n_msgs, (unsigned long long)applied);
    for (int r = 0; r < ROUNDS; r++) {
        base[r] = timed(pass_baseline, total / ROUNDS / 2);
        ours[r] = timed(pass_ours, total / ROUNDS / 2);
    }
    o = bench_median(ours, ROUNDS);
    b = bench_median(base, ROUNDS);
    printf("decode+validate+apply: %.0f msg/s (%.1f MB/s); jansson parse+free: %.0f msg/s\n", o,
           o * (double)n_bytes / (double)n_msgs / 1e6, b);
    bench_result("id=decode value=%.0f unit=msg/s baseline=%.0f ratio=%.3f", o, b, o / b);
    for (size_t i = 0; i < n_books; i++) {
        ab_book_free(books[i].book);
    }
    for (size_t i = 0; i < n_sets; i++) {
        ab_capture_set_free(sets[i]);
    }
    free(msgs);
    return sink == 0 ? 1 : 0;
}
