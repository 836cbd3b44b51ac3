/*
 * pgmigrate: applies the numbered, forward-only SQL migrations of
 * deploy/sql/ (private to services/query).
 *
 * The .sql files are embedded at build time (embed_sql.cmake generates
 * store_migrations.c holding pg_migrations[], sorted by version), so the
 * binary needs no migrations directory. pg_migrate takes a session advisory
 * lock (two instances starting together wait for each other), creates
 * schema_migrations if needed, then applies every migration whose version is
 * not recorded there, each in one transaction together with its
 * schema_migrations row. Called by the store's writer on each (re)connect.
 */
#ifndef ABIDANCE_QUERY_PGMIGRATE_H
#define ABIDANCE_QUERY_PGMIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

struct pg_migration {
    int version;      /* NNN of NNN_name.sql */
    const char *name; /* file name, e.g. "001_candlesticks.sql" */
    const char *sql;  /* whole file, NUL-terminated; may hold several statements */
};

extern const struct pg_migration pg_migrations[]; /* ascending version */
extern const size_t pg_n_migrations;

/* Most migrations the runner handles (a hard cap, checked). */
#define PG_MIGRATIONS_MAX 512

/* Advisory lock key: "abidance" in ASCII. */
#define PG_MIGRATE_LOCK_KEY 0x61626964616e6365LL

/*
 * Applies the pending migrations on c. On success *version is the highest
 * applied version and *applied how many were applied now (either may be
 * NULL). Returns 0, AB_EDB_RETRY (connection trouble: retry later) or AB_EDB
 * (a migration failed: its transaction is rolled back), with the reason in
 * err (PG_ERR_MAX bytes).
 */
int pg_migrate(PGconn *c, int *version, int *applied, char *err);

#endif
