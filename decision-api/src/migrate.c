/* migrate.c - applies the embedded SQL migrations with blocking libpq. */
#include "migrate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ds/embedded.h"
#include "ds/log.h"
#include "ds/timefmt.h"

extern const dsEmbeddedFile apiMigrations[];
extern const size_t apiMigrationsCount;

/* Any constant works; it only has to be the same for every instance. */
#define MIGRATE_LOCK_KEY "4242001"

static bool migrateExec(PGconn *pg, const char *sql, const char *what, char *errbuf, size_t errlen) {
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) snprintf(errbuf, errlen, "%s: %s", what, PQerrorMessage(pg));
    PQclear(r);
    return ok;
}

/* Server notices ("already exists, skipping") are expected on every start. */
static void migrateNotice(void *arg, const char *message) {
    dsLogDebug("postgres: %s", message);
}

static PGconn *migrateConnect(const char *conninfo, long wait_ms, char *errbuf, size_t errlen) {
    int64_t deadline = dsTimeNowMs() + wait_ms;
    for (;;) {
        PGconn *pg = PQconnectdb(conninfo);
        if (PQstatus(pg) == CONNECTION_OK) {
            PQsetNoticeProcessor(pg, migrateNotice, NULL);
            return pg;
        }
        snprintf(errbuf, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(pg));
        PQfinish(pg);
        if (dsTimeNowMs() >= deadline) return NULL;
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Whether version v is recorded already. */
static int migrateIsApplied(PGconn *pg, int v, char *errbuf, size_t errlen) {
    char vbuf[16];
    snprintf(vbuf, sizeof(vbuf), "%d", v);
    const char *params[] = {vbuf};
    PGresult *r = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL, params, NULL,
                               NULL, 0);
    int applied = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) applied = PQntuples(r) > 0;
    else snprintf(errbuf, errlen, "reading schema_migrations: %s", PQerrorMessage(pg));
    PQclear(r);
    return applied;
}

static bool migrateApply(PGconn *pg, const dsEmbeddedFile *m, int v, char *errbuf, size_t errlen) {
    const char *sql = (const char *)m->data;
    size_t need = m->len + strlen(m->name) + 128;
    char *script = malloc(need);
    if (script == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return false;
    }
    /* The file and its bookkeeping row commit together or not at all. */
    snprintf(script, need, "BEGIN;\n%s\n;INSERT INTO schema_migrations (version, name) VALUES (%d, '%s');\nCOMMIT;",
             sql, v, m->name);
    char what[256];
    snprintf(what, sizeof(what), "migration %s", m->name);
    bool ok = migrateExec(pg, script, what, errbuf, errlen);
    if (!ok) PQclear(PQexec(pg, "ROLLBACK"));
    free(script);
    return ok;
}

static bool migrateAll(PGconn *pg, int *applied, char *errbuf, size_t errlen) {
    if (!migrateExec(pg,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())",
                     "creating schema_migrations", errbuf, errlen))
        return false;
    for (size_t i = 0; i < apiMigrationsCount; i++) {
        const dsEmbeddedFile *m = &apiMigrations[i];
        int v = atoi(m->name);
        if (v <= 0) {
            snprintf(errbuf, errlen, "migration %s: name must start with its version number", m->name);
            return false;
        }
        int done = migrateIsApplied(pg, v, errbuf, errlen);
        if (done < 0) return false;
        if (done) continue;
        if (!migrateApply(pg, m, v, errbuf, errlen)) return false;
        dsLogInfo("applied migration %s", m->name);
        if (applied) (*applied)++;
    }
    return true;
}

bool apiMigrate(const char *conninfo, long wait_ms, int *applied, char *errbuf, size_t errlen) {
    if (applied) *applied = 0;
    PGconn *pg = migrateConnect(conninfo, wait_ms, errbuf, errlen);
    if (pg == NULL) return false;
    bool ok = migrateExec(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "taking the migration lock", errbuf,
                          errlen) &&
              migrateAll(pg, applied, errbuf, errlen);
    PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
    PQfinish(pg);
    return ok;
}
