/*
 * stopsig: SIGINT/SIGTERM taken by a thread of their own.
 *
 * A service's stop routine often does more than set a flag (wake an event
 * loop, which may log): none of that is async-signal-safe, and a handler
 * that logs while the interrupted thread holds the log lock deadlocks. So
 * the signals are never delivered asynchronously: ab_stopsig_block blocks
 * SIGINT and SIGTERM in the calling thread (call it before starting any
 * other thread, so they all inherit the mask) and ab_stopsig_start starts
 * one thread that sigwait()s for them and then calls on_stop(arg) from
 * ordinary thread context, once. ab_stopsig_join ends that thread (if no signal came, it is
 * woken with one directed at it) and returns the signal received, or 0.
 *
 * Usage:
 *     struct ab_stopsig ss;
 *     ab_stopsig_block(&ss);                  // before any other thread starts
 *     ...create the service (its threads inherit the mask)...
 *     if (ab_stopsig_start(&ss, stop_fn, svc) < 0) ...;
 *     ...run the service until stop_fn makes it return...
 *     int sig = ab_stopsig_join(&ss);
 *
 * on_stop must be safe to call from another thread while the service runs
 * (lws_cancel_service is, for example).
 */
#ifndef AB_STOPSIG_H
#define AB_STOPSIG_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

struct ab_stopsig {
    pthread_t thread;
    sigset_t set;
    void (*on_stop)(void *arg);
    void *arg;
    volatile sig_atomic_t sig; /* the signal received, 0 until then */
    atomic_int joining;        /* set by ab_stopsig_join before it wakes the thread */
};

/* Initialises s and blocks SIGINT/SIGTERM in the calling thread. 0 or AB_EIO. */
int ab_stopsig_block(struct ab_stopsig *s);

/* Starts the waiting thread (after ab_stopsig_block). 0 or AB_EIO. */
int ab_stopsig_start(struct ab_stopsig *s, void (*on_stop)(void *arg), void *arg);

/* Ends the waiting thread; returns the signal received (SIGINT, SIGTERM) or
 * 0 when the service stopped on its own. Call once, after a successful start. */
int ab_stopsig_join(struct ab_stopsig *s);

#endif
