/* replication.c - libpq replication session (see replication.h). */
#include "replication.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "ds/pg.h"
#include "pgoutput.h"

struct spRepl {
    PGconn *pg;
    uv_poll_t poll;
    spReplDataFn *on_data;
    spReplDownFn *on_down;
    void *arg;
    bool paused, down;
    char *nspname, *relname; /* the published table, resolved at start */
};

/* Microseconds since 2000-01-01, PostgreSQL's epoch, for status updates. */
static int64_t replNowPg(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return ((int64_t)tv.tv_sec - 946684800LL) * 1000000LL + tv.tv_usec;
}

static bool replExec(PGconn *pg, const char *sql, ExecStatusType want, PGresult **out, char *errbuf, size_t errlen) {
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != want) {
        snprintf(errbuf, errlen, "%.60s...: %s", sql, PQerrorMessage(pg));
        PQclear(res);
        return false;
    }
    if (out) *out = res;
    else PQclear(res);
    return true;
}

/* A replication connection speaks only the simple query protocol, so
 * values go into the SQL text, quoted by libpq. */
static bool replQuoted(PGconn *pg, const char *prefix, const char *value, char *sql, size_t len, char *errbuf,
                       size_t errlen) {
    char *lit = PQescapeLiteral(pg, value, strlen(value));
    if (lit == NULL) {
        snprintf(errbuf, errlen, "cannot quote \"%.64s\": %s", value, PQerrorMessage(pg));
        return false;
    }
    int n = snprintf(sql, len, "%s%s", prefix, lit);
    PQfreemem(lit);
    if (n < 0 || (size_t)n >= len) {
        snprintf(errbuf, errlen, "name too long: \"%.64s\"", value);
        return false;
    }
    return true;
}

/* The slot's confirmed position; creates the slot if it does not exist. */
static bool replEnsureSlot(PGconn *pg, const spReplConfig *cfg, uint64_t *lsn, char *errbuf, size_t errlen) {
    char sql[512];
    if (!replQuoted(pg, "SELECT confirmed_flush_lsn, coalesce(wal_status, ''), plugin FROM pg_replication_slots"
                        " WHERE slot_name = ", cfg->slot, sql, sizeof(sql), errbuf, errlen))
        return false;
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(errbuf, errlen, "reading slot %s: %s", cfg->slot, PQerrorMessage(pg));
        PQclear(res);
        return false;
    }
    bool exists = PQntuples(res) == 1, ok = true;
    if (exists) {
        if (strcmp(PQgetvalue(res, 0, 1), "lost") == 0) {
            snprintf(errbuf, errlen,
                     "slot %s lost its WAL (wal_status=lost): decisions after its confirmed position %s can no longer"
                     " be streamed; replay them from the archive, then drop and re-create the slot by hand",
                     cfg->slot, PQgetvalue(res, 0, 0));
            ok = false;
        } else if (strcmp(PQgetvalue(res, 0, 2), "pgoutput") != 0) {
            snprintf(errbuf, errlen, "slot %s uses plugin %s, not pgoutput", cfg->slot, PQgetvalue(res, 0, 2));
            ok = false;
        } else if (!spLsnParse(PQgetvalue(res, 0, 0), lsn)) {
            snprintf(errbuf, errlen, "slot %s has no confirmed position", cfg->slot);
            ok = false;
        }
    }
    PQclear(res);
    if (exists || !ok) return ok;
    snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT \"%s\" LOGICAL pgoutput", cfg->slot);
    if (!replExec(pg, sql, PGRES_TUPLES_OK, &res, errbuf, errlen)) return false;
    ok = spLsnParse(PQgetvalue(res, 0, 1), lsn); /* consistent_point */
    if (!ok) snprintf(errbuf, errlen, "slot %s: unexpected consistent point", cfg->slot);
    PQclear(res);
    return ok;
}

static bool replEnsurePublication(PGconn *pg, const spReplConfig *cfg, char *errbuf, size_t errlen) {
    char sql[512];
    if (!replQuoted(pg, "SELECT 1 FROM pg_publication WHERE pubname = ", cfg->publication, sql, sizeof(sql), errbuf,
                    errlen))
        return false;
    PGresult *res = PQexec(pg, sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK, exists = ok && PQntuples(res) == 1;
    if (!ok) snprintf(errbuf, errlen, "reading publications: %s", PQerrorMessage(pg));
    PQclear(res);
    if (!ok || exists) return ok;
    snprintf(sql, sizeof(sql), "CREATE PUBLICATION \"%s\" FOR TABLE %s WITH (publish = 'insert')", cfg->publication,
             cfg->table);
    return replExec(pg, sql, PGRES_COMMAND_OK, NULL, errbuf, errlen);
}

/* Resolves cfg->table (as SQL names it: search path, quoting) to its schema
 * and name, so that rows of a same-named table elsewhere are not taken for
 * decisions. */
static bool replResolveTable(spRepl *r, const spReplConfig *cfg, char *errbuf, size_t errlen) {
    char sql[512];
    if (!replQuoted(r->pg, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                           " WHERE c.oid = to_regclass(", cfg->table, sql, sizeof(sql) - 1, errbuf, errlen))
        return false;
    strcat(sql, ")");
    PGresult *res = PQexec(r->pg, sql);
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        snprintf(errbuf, errlen, "looking up table %s: %s", cfg->table, PQerrorMessage(r->pg));
    else if (!ok)
        snprintf(errbuf, errlen, "table %s does not exist", cfg->table);
    else if ((r->nspname = strdup(PQgetvalue(res, 0, 0))) == NULL || (r->relname = strdup(PQgetvalue(res, 0, 1))) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        ok = false;
    }
    PQclear(res);
    return ok;
}

static void replFail(spRepl *r, const char *reason) {
    if (r->down) return;
    r->down = true;
    uv_poll_stop(&r->poll);
    r->on_down(reason, r->arg);
}

static void replOnPoll(uv_poll_t *h, int status, int events) {
    spRepl *r = h->data;
    if (status < 0) {
        replFail(r, uv_strerror(status));
        return;
    }
    if ((events & UV_WRITABLE) && PQflush(r->pg) == 0) {
        /* Flushed: watch for reading only, or nothing while paused. */
        if (r->paused) uv_poll_stop(&r->poll);
        else uv_poll_start(&r->poll, UV_READABLE, replOnPoll);
    }
    if (!(events & UV_READABLE) || r->paused) return;
    if (!PQconsumeInput(r->pg)) {
        replFail(r, PQerrorMessage(r->pg));
        return;
    }
    for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(r->pg, &buf, 1);
        if (n == 0) return; /* no complete message yet */
        if (n == -1) {      /* the server ended the stream */
            PGresult *res = PQgetResult(r->pg);
            char why[256];
            snprintf(why, sizeof(why), "replication stream ended: %s",
                     res ? PQresultErrorMessage(res) : PQerrorMessage(r->pg));
            PQclear(res);
            replFail(r, why);
            return;
        }
        if (n < 0) {
            replFail(r, PQerrorMessage(r->pg));
            return;
        }
        r->on_data((const uint8_t *)buf, (size_t)n, r->arg);
        PQfreemem(buf);
        if (r->down || r->paused) return;
    }
}

/* A replication connection (replication=database), its table resolved,
 * the publication and slot made sure of; *start_lsn: the slot's position.
 * false with errbuf filled (r->pg may then be set: the caller finishes it). */
static bool replConnect(spRepl *r, const spReplConfig *cfg, uint64_t *start_lsn, char *errbuf, size_t errlen) {
    /* pgoutput prints recorded_at with the walsender's DateStyle and
     * TimeZone, which the session options pin (ds/pg.h). */
    char *options = dsPgSessionOptions(cfg->conninfo);
    if (options == NULL) return snprintf(errbuf, errlen, "out of memory"), false;
    const char *keys[] = {"dbname", "replication", "application_name", "connect_timeout", "options", NULL};
    const char *vals[] = {cfg->conninfo, "database", "stream-processor", "10", options, NULL};
    r->pg = PQconnectdbParams(keys, vals, 1);
    free(options);
    if (PQstatus(r->pg) != CONNECTION_OK) {
        snprintf(errbuf, errlen, "replication connection: %s", PQerrorMessage(r->pg));
        return false;
    }
    return replResolveTable(r, cfg, errbuf, errlen) && replEnsurePublication(r->pg, cfg, errbuf, errlen) &&
           replEnsureSlot(r->pg, cfg, start_lsn, errbuf, errlen);
}

int spReplSlotHolder(const spReplConfig *cfg, char *errbuf, size_t errlen) {
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {cfg->conninfo, "stream-processor", "5", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    const char *params[] = {cfg->slot};
    PGresult *res = PQstatus(pg) == CONNECTION_OK
                        ? PQexecParams(pg, "SELECT coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = $1",
                                       1, NULL, params, NULL, NULL, 0)
                        : NULL;
    int holder = -1;
    if (res == NULL) snprintf(errbuf, errlen, "%s", PQerrorMessage(pg));
    else if (PQresultStatus(res) != PGRES_TUPLES_OK) snprintf(errbuf, errlen, "%s", PQresultErrorMessage(res));
    else holder = PQntuples(res) == 0 ? 0 : atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(pg);
    return holder;
}

int spReplBackendPid(const spRepl *r) {
    return r != NULL && r->pg != NULL && PQstatus(r->pg) == CONNECTION_OK ? PQbackendPID(r->pg) : 0;
}

bool spReplPrepare(const spReplConfig *cfg, uint64_t *slot_lsn, char *errbuf, size_t errlen) {
    spRepl r = {0};
    bool ok = replConnect(&r, cfg, slot_lsn, errbuf, errlen);
    PQfinish(r.pg);
    free(r.nspname);
    free(r.relname);
    return ok;
}

spRepl *spReplStart(uv_loop_t *loop, const spReplConfig *cfg, spReplDataFn *on_data, spReplDownFn *on_down,
                    void *arg, uint64_t *start_lsn, char *errbuf, size_t errlen) {
    spRepl *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    char lsn[24], sql[512];
    if (!replConnect(r, cfg, start_lsn, errbuf, errlen)) goto failed;
    snprintf(sql, sizeof(sql),
             "START_REPLICATION SLOT \"%s\" LOGICAL %s (proto_version '1', publication_names '\"%s\"')", cfg->slot,
             spLsnFormat(*start_lsn, lsn), cfg->publication);
    if (!replExec(r->pg, sql, PGRES_COPY_BOTH, NULL, errbuf, errlen) || PQsetnonblocking(r->pg, 1) != 0) goto failed;
    r->on_data = on_data;
    r->on_down = on_down;
    r->arg = arg;
    if (uv_poll_init(loop, &r->poll, PQsocket(r->pg)) != 0) {
        snprintf(errbuf, errlen, "cannot watch the replication socket");
        goto failed;
    }
    r->poll.data = r;
    uv_poll_start(&r->poll, UV_READABLE, replOnPoll);
    return r;

failed:
    PQfinish(r->pg);
    free(r->nspname);
    free(r->relname);
    free(r);
    return NULL;
}

bool spReplSendStatus(spRepl *r, uint64_t write_lsn, uint64_t flush_lsn, bool reply_requested) {
    if (r->down) return false;
    uint8_t msg[SP_STANDBY_STATUS_LEN];
    size_t n = spStandbyStatusBuild(msg, sizeof(msg), write_lsn, flush_lsn, flush_lsn, replNowPg(), reply_requested);
    if (PQputCopyData(r->pg, (const char *)msg, (int)n) != 1) {
        replFail(r, PQerrorMessage(r->pg));
        return false;
    }
    int rc = PQflush(r->pg);
    if (rc < 0) {
        replFail(r, PQerrorMessage(r->pg));
        return false;
    }
    if (rc == 1) uv_poll_start(&r->poll, (r->paused ? 0 : UV_READABLE) | UV_WRITABLE, replOnPoll);
    return true;
}

void spReplPause(spRepl *r) {
    if (r->down || r->paused) return;
    r->paused = true;
    uv_poll_stop(&r->poll);
}

void spReplResume(spRepl *r) {
    if (r->down || !r->paused) return;
    r->paused = false;
    uv_poll_start(&r->poll, UV_READABLE, replOnPoll);
    /* libpq may already hold complete messages read before the pause. */
    replOnPoll(&r->poll, 0, UV_READABLE);
}

static void replFree(uv_handle_t *h) {
    spRepl *r = h->data;
    free(r->nspname);
    free(r->relname);
    free(r);
}

bool spReplIsTable(const spRepl *r, const char *nspname, const char *relname) {
    return strcmp(r->relname, relname) == 0 && strcmp(r->nspname, nspname) == 0;
}

void spReplClose(spRepl *r) {
    r->down = true;
    uv_poll_stop(&r->poll);
    PQfinish(r->pg);
    uv_close((uv_handle_t *)&r->poll, replFree);
}
