/* stopsig: see stopsig.h. */
#include "stopsig.h"

#include <string.h>

#include "err.h"

static void *wait_thread(void *p)
{
    struct ab_stopsig *s = p;
    int sig = 0;

    while (sigwait(&s->set, &sig) != 0)
        ;
    if (!atomic_load(&s->joining)) {
        s->sig = sig;
        s->on_stop(s->arg);
    }
    return NULL;
}

int ab_stopsig_block(struct ab_stopsig *s)
{
    memset(s, 0, sizeof(*s));
    sigemptyset(&s->set);
    sigaddset(&s->set, SIGINT);
    sigaddset(&s->set, SIGTERM);
    return pthread_sigmask(SIG_BLOCK, &s->set, NULL) == 0 ? 0 : AB_EIO;
}

int ab_stopsig_start(struct ab_stopsig *s, void (*on_stop)(void *arg), void *arg)
{
    s->on_stop = on_stop;
    s->arg = arg;
    if (pthread_create(&s->thread, NULL, wait_thread, s) != 0)
        return AB_EIO;
    return 0;
}

int ab_stopsig_join(struct ab_stopsig *s)
{
    atomic_store(&s->joining, 1);
    /* Wakes the thread if it is still waiting (a no-op race otherwise: a
     * pending SIGTERM directed at an exited thread is discarded). */
    pthread_kill(s->thread, SIGTERM);
    pthread_join(s->thread, NULL);
    return s->sig;
}
