/* reader.c - the query session pool behind the support endpoints. */
#include "reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/pg.h"

typedef struct readJob {
    char *sql;
    char **params;
    int nparams;
    apiReadDoneFn *done;
    void *arg;
    PGresult *res;
    struct readJob *next;
} readJob;

typedef struct readConn {
    apiReader *r;
    dsPgConn *pg;
    bool ready;    /* session set up */
    readJob *job;  /* in flight */
} readConn;

struct apiReader {
    apiReaderConfig cfg;
    readConn *conns;
    readJob *head, *tail;
    size_t depth;
};

static void readJobFree(readJob *j) {
    for (int i = 0; i < j->nparams; i++) free(j->params[i]);
    free(j->params);
    free(j->sql);
    free(j);
}

static void readFinish(readJob *j, PGresult *res, const char *error) {
    j->done(res, error, j->arg);
    readJobFree(j);
}

bool apiReaderReady(const apiReader *r) {
    for (int i = 0; i < r->cfg.connections; i++)
        if (r->conns[i].ready) return true;
    return false;
}

static void readDispatch(apiReader *r) {
    for (int i = 0; i < r->cfg.connections && r->head != NULL; i++) {
        readConn *c = &r->conns[i];
        if (!c->ready || c->job != NULL || !dsPgConnIsIdle(c->pg)) continue;
        readJob *j = r->head;
        r->head = j->next;
        if (r->head == NULL) r->tail = NULL;
        r->depth--;
        c->job = j;
        if (!PQsendQueryParams(dsPgConnRaw(c->pg), j->sql, j->nparams, NULL, (const char *const *)j->params, NULL,
                               NULL, 0)) {
            dsPgConnFail(c->pg, PQerrorMessage(dsPgConnRaw(c->pg)));
            continue;
        }
        dsPgConnSync(c->pg);
    }
}

static void readOnUp(dsPgConn *pg, void *arg) {
    readConn *c = arg;
    char sql[96];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %ld", c->r->cfg.statement_timeout_ms);
    if (!PQsendQueryParams(dsPgConnRaw(pg), sql, 0, NULL, NULL, NULL, NULL, 0)) {
        dsPgConnFail(pg, PQerrorMessage(dsPgConnRaw(pg)));
        return;
    }
    dsPgConnSync(pg);
}

static void readOnResult(dsPgConn *pg, PGresult *res, void *arg) {
    readConn *c = arg;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        c->ready = true;
        readJob *j = c->job;
        c->job = NULL;
        if (j != NULL) readFinish(j, j->res, j->res ? NULL : "query failed");
        return;
    }
    if (c->job == NULL) { /* the SET at session start */
        if (st != PGRES_COMMAND_OK) dsPgConnFail(pg, PQresultErrorMessage(res));
        PQclear(res);
        return;
    }
    /* The rows, or the error that stands in for them: the caller tells a
     * value PostgreSQL refused from a database in trouble. */
    if ((st == PGRES_TUPLES_OK || st == PGRES_FATAL_ERROR) && c->job->res == NULL) {
        c->job->res = res;
        return;
    }
    PQclear(res);
}

static void readOnIdle(dsPgConn *pg, void *arg) {
    readDispatch(((readConn *)arg)->r);
}

static void readFailQueue(apiReader *r, const char *why) {
    while (r->head != NULL) {
        readJob *j = r->head;
        r->head = j->next;
        readFinish(j, NULL, why);
    }
    r->tail = NULL;
    r->depth = 0;
}

static void readOnDown(dsPgConn *pg, const char *reason, void *arg) {
    readConn *c = arg;
    c->ready = false;
    if (c->job != NULL) {
        readJob *j = c->job;
        c->job = NULL;
        PQclear(j->res);
        readFinish(j, NULL, reason);
    }
    if (!apiReaderReady(c->r)) readFailQueue(c->r, "database unavailable");
}

apiReader *apiReaderNew(uv_loop_t *loop, const apiReaderConfig *cfg) {
    apiReader *r = calloc(1, sizeof(*r));
    if (r == NULL) return NULL;
    r->cfg = *cfg;
    r->conns = calloc((size_t)cfg->connections, sizeof(*r->conns));
    if (r->conns == NULL) {
        free(r);
        return NULL;
    }
    static const dsPgCallbacks cb = {readOnUp, readOnResult, readOnIdle, readOnDown};
    for (int i = 0; i < cfg->connections; i++) {
        r->conns[i].r = r;
        r->conns[i].pg = dsPgConnNew(loop, cfg->conninfo, "decision-api-reader", &cb, &r->conns[i]);
        if (r->conns[i].pg == NULL) {
            apiReaderClose(r);
            return NULL;
        }
        dsPgConnStart(r->conns[i].pg);
    }
    return r;
}

bool apiReaderQuery(apiReader *r, const char *sql, int nparams, const char *const *params, apiReadDoneFn *done,
                    void *arg) {
    if (!apiReaderReady(r) || r->depth >= r->cfg.max_queue) return false;
    readJob *j = calloc(1, sizeof(*j));
    if (j == NULL) return false;
    j->sql = strdup(sql);
    j->params = calloc((size_t)nparams + 1, sizeof(char *));
    j->nparams = nparams;
    bool ok = j->sql != NULL && j->params != NULL;
    for (int i = 0; ok && i < nparams; i++) ok = params[i] == NULL || (j->params[i] = strdup(params[i])) != NULL;
    if (!ok) {
        if (j->params == NULL) j->nparams = 0;
        readJobFree(j);
        return false;
    }
    j->done = done;
    j->arg = arg;
    if (r->tail) r->tail->next = j;
    else r->head = j;
    r->tail = j;
    r->depth++;
    readDispatch(r);
    return true;
}

void apiReaderClose(apiReader *r) {
    for (int i = 0; i < r->cfg.connections; i++) {
        readConn *c = &r->conns[i];
        if (c->job) {
            PQclear(c->job->res);
            readFinish(c->job, NULL, "server shutting down");
            c->job = NULL;
        }
        if (c->pg) dsPgConnClose(c->pg);
    }
    readFailQueue(r, "server shutting down");
    free(r->conns);
    free(r);
}
