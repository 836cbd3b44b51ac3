/*
 * pgconn: small libpq helpers shared by the store's writer and readers
 * (private to services/query).
 *
 * pg_connect opens a connection with our defaults (connect timeout, TCP
 * keepalives, application_name; the URL may override them) and UTC session
 * time zone. pg_check turns a PGresult into an ab_err code, telling a
 * retryable failure (connection lost, server shutting down, serialization or
 * deadlock, out of resources) from a hard one. pg_exec_timeout runs a query
 * with a deadline. Each PGconn is used by one thread at a time.
 */
#ifndef ABIDANCE_QUERY_PGCONN_H
#define ABIDANCE_QUERY_PGCONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PG_ERR_MAX 256

/* Opens a connection to url (libpq URI or conninfo; borrowed). On success
 * *out is a connected PGconn the caller closes with PQfinish. On failure
 * returns AB_EDB_RETRY (unreachable) or AB_EDB (bad URL, authentication) and
 * writes the reason into err (PG_ERR_MAX bytes). */
int pg_connect(const char *url, PGconn **out, char *err);

/*
 * Checks a result (taken: always cleared, NULL accepted) against the expected
 * status (PGRES_COMMAND_OK or PGRES_TUPLES_OK). Returns 0, AB_EDB_RETRY or
 * AB_EDB, with the message in err (PG_ERR_MAX bytes; may be NULL). For
 * PGRES_TUPLES_OK the caller wants the rows: use pg_check_keep.
 */
int pg_check(PGconn *c, PGresult *r, ExecStatusType want, char *err);

/* As pg_check but leaves r alive on success (caller PQclear's it); clears it
 * on failure. */
int pg_check_keep(PGconn *c, PGresult *r, ExecStatusType want, char *err);

/* True when the SQLSTATE (may be NULL) names a failure a retry may fix. */
bool pg_sqlstate_retryable(const char *sqlstate);

/* Runs sql (no parameters) and waits at most timeout_ms for the result.
 * Returns 0, AB_EDB_RETRY (timeout: the query is cancelled; or connection
 * lost: the caller must then close c) or AB_EDB. */
int pg_exec_timeout(PGconn *c, const char *sql, int timeout_ms, char *err);

/* Wall clock in epoch ms (for stats only). */
int64_t pg_wall_ms(void);
/* Monotonic clock in ms (for deadlines and backoff). */
int64_t pg_mono_ms(void);

#endif
