#include "pgconn.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "common/log.h"

static void set_err(char *err, const char *msg)
{
    size_t n;

    if (err == NULL) {
        return;
    }
    snprintf(err, PG_ERR_MAX, "%s", msg != NULL && msg[0] != '\0' ? msg : "unknown error");
    /* libpq messages end with a newline; logs and JSON want one line. */
    n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' ')) {
        err[--n] = '\0';
    }
    for (size_t i = 0; i < n; i++) {
        if (err[i] == '\n' || err[i] == '\t') {
            err[i] = ' ';
        }
    }
}

int64_t pg_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pg_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Server notices ("relation already exists, skipping") go to the log at
 * debug level instead of libpq's default stderr print. */
static void on_notice(void *arg, const char *message)
{
    char line[PG_ERR_MAX];

    set_err(line, message);
    ab_log(AB_LOG_DEBUG, "store", "server notice: %s", line);
}

int pg_connect(const char *url, PGconn **out, char *err)
{
    /* Our defaults come first: with expand_dbname the URL given as dbname
     * overrides them, so an operator can still tune them in DATABASE_URL. */
    static const char *const keys[] = {"connect_timeout",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "tcp_user_timeout",
                                       "application_name",
                                       "dbname",
                                       NULL};
    const char *vals[] = {"5", "10", "5", "3", "15000", "abidance-query", url, NULL};
    PGconn *c;
    PGresult *r;
    int rc;

    *out = NULL;
    c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL) {
        set_err(err, "out of memory");
        return AB_ENOMEM;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        set_err(err, PQerrorMessage(c));
        /* Authentication or a bad URL will not heal by itself, but the
         * server may still be starting (it then refuses with 57P03, which
         * libpq reports only as text): treat every connect failure as
         * retryable and let the caller back off. */
        PQfinish(c);
        return AB_EDB_RETRY;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    r = PQexec(c, "SET TIME ZONE 'UTC'");
    rc = pg_check(c, r, PGRES_COMMAND_OK, err);
    if (rc != 0) {
        PQfinish(c);
        return rc;
    }
    *out = c;
    return 0;
}

bool pg_sqlstate_retryable(const char *s)
{
    if (s == NULL || strlen(s) != 5) {
        return true; /* no SQLSTATE: a client-side failure, usually the connection */
    }
    return strncmp(s, "08", 2) == 0    /* connection exception */
           || strncmp(s, "57", 2) == 0 /* operator intervention: shutdown, cannot connect now */
           || strncmp(s, "53", 2) == 0 /* insufficient resources */
           || strcmp(s, "40001") == 0  /* serialization failure */
           || strcmp(s, "40P01") == 0  /* deadlock detected */
           || strcmp(s, "55P03") == 0; /* lock not available */
}

int pg_check_keep(PGconn *c, PGresult *r, ExecStatusType want, char *err)
{
    if (r != NULL && PQresultStatus(r) == want) {
        return 0;
    }
    if (r == NULL) {
        set_err(err, PQerrorMessage(c));
        return PQstatus(c) == CONNECTION_OK ? AB_EDB : AB_EDB_RETRY;
    }
    {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorMessage(r);
        bool retry = PQstatus(c) != CONNECTION_OK || pg_sqlstate_retryable(state);

        if (msg == NULL || msg[0] == '\0') {
            msg = PQerrorMessage(c);
        }
        set_err(err, msg);
        PQclear(r);
        return retry ? AB_EDB_RETRY : AB_EDB;
    }
}

int pg_check(PGconn *c, PGresult *r, ExecStatusType want, char *err)
{
    int rc = pg_check_keep(c, r, want, err);

    if (rc == 0) {
        PQclear(r);
    }
    return rc;
}

int pg_exec_timeout(PGconn *c, const char *sql, int timeout_ms, char *err)
{
    int64_t deadline = pg_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    PGresult *r, *last = NULL;
    int rc = 0;

    if (PQsendQuery(c, sql) != 1) {
        set_err(err, PQerrorMessage(c));
        return AB_EDB_RETRY;
    }
    for (;;) {
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        int64_t left;

        if (PQconsumeInput(c) != 1) {
            set_err(err, PQerrorMessage(c));
            rc = AB_EDB_RETRY;
            break;
        }
        if (!PQisBusy(c)) {
            break;
        }
        left = deadline - pg_mono_ms();
        if (left <= 0 || pfd.fd < 0) {
            PGcancel *cancel = PQgetCancel(c);
            char buf[128];

            if (cancel != NULL) {
                PQcancel(cancel, buf, sizeof buf);
                PQfreeCancel(cancel);
            }
            set_err(err, "database did not answer in time");
            rc = AB_EDB_RETRY;
            break;
        }
        if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
            set_err(err, "poll failed");
            rc = AB_EDB_RETRY;
            break;
        }
    }
    if (rc != 0) {
        return rc; /* the caller closes the connection: draining could hang */
    }
    while ((r = PQgetResult(c)) != NULL) {
        PQclear(last);
        last = r;
    }
    return pg_check(
        c, last, PQresultStatus(last) == PGRES_TUPLES_OK ? PGRES_TUPLES_OK : PGRES_COMMAND_OK, err);
}
