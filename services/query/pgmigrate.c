#include "pgmigrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "pgconn.h"

#define LOCK_SQL_KEY "7017287049248924517" /* PG_MIGRATE_LOCK_KEY in decimal */

static int exec_cmd(PGconn *c, const char *sql, char *err)
{
    return pg_check(c, PQexec(c, sql), PGRES_COMMAND_OK, err);
}

/* Loads the recorded versions into done[] (parallel to pg_migrations). */
static int load_applied(PGconn *c, bool *done, char *err)
{
    PGresult *r = PQexec(c, "SELECT version FROM schema_migrations");
    int rc = pg_check_keep(c, r, PGRES_TUPLES_OK, err);

    if (rc != 0) {
        return rc;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        long v = strtol(PQgetvalue(r, i, 0), NULL, 10);

        for (size_t m = 0; m < pg_n_migrations; m++) {
            if (pg_migrations[m].version == v) {
                done[m] = true;
            }
        }
    }
    PQclear(r);
    return 0;
}

static int apply_one(PGconn *c, const struct pg_migration *m, char *err)
{
    char version[16];
    const char *params[2] = {version, m->name};
    int rc;

    snprintf(version, sizeof version, "%d", m->version);
    rc = exec_cmd(c, "BEGIN", err);
    if (rc != 0) {
        return rc;
    }
    rc = exec_cmd(c, m->sql, err);
    if (rc == 0) {
        rc = pg_check(c,
                      PQexecParams(c,
                                   "INSERT INTO schema_migrations (version, name) "
                                   "VALUES ($1::int, $2)",
                                   2, NULL, params, NULL, NULL, 0),
                      PGRES_COMMAND_OK, err);
    }
    if (rc == 0) {
        rc = exec_cmd(c, "COMMIT", err);
    }
    if (rc != 0) {
        char ignored[PG_ERR_MAX];

        exec_cmd(c, "ROLLBACK", ignored);
    }
    return rc;
}

int pg_migrate(PGconn *c, int *version, int *applied, char *err)
{
    bool done[PG_MIGRATIONS_MAX] = {false};
    int rc, top = 0, n_applied = 0;
    char ignored[PG_ERR_MAX];

    if (pg_n_migrations > PG_MIGRATIONS_MAX) {
        snprintf(err, PG_ERR_MAX, "too many migrations (max %d)", PG_MIGRATIONS_MAX);
        return AB_EDB;
    }
    rc = pg_check(c, PQexec(c, "SELECT pg_advisory_lock(" LOCK_SQL_KEY ")"), PGRES_TUPLES_OK, err);
    if (rc != 0) {
        return rc;
    }
    rc = exec_cmd(c,
                  "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version int PRIMARY KEY,"
                  " name text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now())",
                  err);
    if (rc == 0) {
        rc = load_applied(c, done, err);
    }
    for (size_t m = 0; rc == 0 && m < pg_n_migrations; m++) {
        if (!done[m]) {
            rc = apply_one(c, &pg_migrations[m], err);
            if (rc == 0) {
                ab_log(AB_LOG_INFO, "store", "migration applied version=%d name=%s",
                       pg_migrations[m].version, pg_migrations[m].name);
                n_applied++;
            } else {
                ab_log(AB_LOG_ERROR, "store", "migration failed version=%d name=%s error=\"%s\"",
                       pg_migrations[m].version, pg_migrations[m].name, err);
            }
        }
        if (rc == 0) {
            top = pg_migrations[m].version;
        }
    }
    /* On a lost connection the session lock is gone with the session. */
    pg_check(c, PQexec(c, "SELECT pg_advisory_unlock(" LOCK_SQL_KEY ")"), PGRES_TUPLES_OK, ignored);
    if (rc != 0) {
        return rc;
    }
    if (version != NULL) {
        *version = top;
    }
    if (applied != NULL) {
        *applied = n_applied;
    }
    return 0;
}
