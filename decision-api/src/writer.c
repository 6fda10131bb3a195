/* writer.c - the group-commit queue and its pool of pipelined writer
 * sessions. See writer.h for the protocol. */
#include "writer.h"

#include <stdlib.h>
#include <string.h>

#include "ds/log.h"
#include "ds/pg.h"
#include "ds/timefmt.h"

/* One statement per decision that cannot fail on a duplicate key: the CTE
 * inserts or does nothing; the second branch reports the existing row, and
 * whether its canonical body is the same, only when nothing was inserted.
 * For a different body it also returns the row's schema version and hash:
 * a row an older API stored holds that version's canonical text, so the
 * same decision hashes differently now (apiWriteSameFn settles it; rare, so
 * not worth hashing every post under every older version).
 * Zero rows means a concurrent session committed the same decision_id after
 * this statement's snapshot: the item is simply sent again. */
static const char writerInsertSql[] =
    "WITH ins AS ("
    " INSERT INTO decisions (decision_id, purchase_id, customer_id, merchant_id, outcome,"
    "  decided_at, schema_version, doc_sha256, doc, doc_text)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb, $9::text)"
    " ON CONFLICT (decision_id) DO NOTHING"
    " RETURNING recorded_at)"
    " SELECT 'i', floor(extract(epoch FROM recorded_at) * 1000)::bigint, NULL::int, NULL::text FROM ins"
    " UNION ALL"
    " SELECT CASE WHEN d.doc_sha256 = $8 THEN 'd' ELSE 'c' END,"
    "  floor(extract(epoch FROM d.recorded_at) * 1000)::bigint, d.schema_version, encode(d.doc_sha256, 'hex')"
    " FROM decisions d WHERE d.decision_id = $1 AND NOT EXISTS (SELECT 1 FROM ins)";

#define WRITER_STMT "decision_insert"

typedef enum { ITEM_PENDING, ITEM_DONE, ITEM_RETRY } itemOutcome;

typedef struct writerConn {
    apiWriter *w;
    dsPgConn *pg;
    bool preparing;        /* the PREPARE group is in flight */
    bool prepared;
    apiWriteItem **batch;  /* in flight, in statement order */
    itemOutcome *outcome;
    size_t n, next_result;
    bool batch_failed;     /* a statement failed: the transaction rolled back */
    bool commit_failed;    /* an error after the statements: the commit itself failed */
    char commit_state[6];  /* its SQLSTATE */
    char commit_message[200];
    uint64_t sent_at;      /* uv_hrtime() when the batch was sent */
} writerConn;

struct apiWriter {
    uv_loop_t *loop;
    apiWriterConfig cfg;
    writerConn *conns;
    apiWriteItem *head, *tail;
    size_t depth, in_flight;
    uv_check_t dispatcher;
    uv_timer_t sweeper;
    int open_handles;
    bool closing;
    dsMetric *m_batch, *m_commit, *m_depth, *m_up;
    dsMetricFamily *m_items;
};

static const double writerBatchBuckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
static const double writerCommitBuckets[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1};

apiWriteItem *apiWriteItemNew(void) {
    return calloc(1, sizeof(apiWriteItem));
}

void apiWriteItemFree(apiWriteItem *item) {
    if (item == NULL) return;
    json_decref(item->doc);
    free(item->doc_text);
    free(item);
}

static const char *writerStatusName(apiWriteStatus s) {
    switch (s) {
    case API_WRITE_INSERTED: return "inserted";
    case API_WRITE_DUPLICATE: return "duplicate";
    case API_WRITE_CONFLICT: return "conflict";
    case API_WRITE_UNAVAILABLE: return "unavailable";
    case API_WRITE_REJECTED: return "rejected";
    default: return "failed";
    }
}

static void writerComplete(apiWriter *w, apiWriteItem *item, apiWriteStatus status, const char *message) {
    item->status = status;
    if (message) snprintf(item->message, sizeof(item->message), "%s", message);
    const char *label[] = {writerStatusName(status)};
    dsMetricInc(dsMetricGet(w->m_items, label), 1);
    item->next = NULL;
    item->done(item, item->arg);
}

static void writerPushBack(apiWriter *w, apiWriteItem *item) {
    item->next = NULL;
    if (w->tail) w->tail->next = item;
    else w->head = item;
    w->tail = item;
    w->depth++;
}

/* Puts items back at the head, keeping their order. */
static void writerPushFront(apiWriter *w, apiWriteItem **items, size_t n) {
    for (size_t i = n; i-- > 0;) {
        items[i]->next = w->head;
        w->head = items[i];
        if (w->tail == NULL) w->tail = items[i];
        w->depth++;
    }
}

static apiWriteItem *writerPop(apiWriter *w) {
    apiWriteItem *item = w->head;
    if (item == NULL) return NULL;
    w->head = item->next;
    if (w->head == NULL) w->tail = NULL;
    w->depth--;
    item->next = NULL;
    return item;
}

bool apiWriterReady(const apiWriter *w) {
    for (int i = 0; i < w->cfg.connections; i++)
        if (dsPgConnIsUp(w->conns[i].pg) && w->conns[i].prepared) return true;
    return false;
}

size_t apiWriterPending(const apiWriter *w) {
    return w->depth + w->in_flight;
}

static void writerFailQueue(apiWriter *w, const char *why) {
    apiWriteItem *item;
    while ((item = writerPop(w)) != NULL) writerComplete(w, item, API_WRITE_UNAVAILABLE, why);
}

/* Sends one batch on an idle, prepared session. */
static void writerSendBatch(writerConn *c) {
    apiWriter *w = c->w;
    PGconn *pg = dsPgConnRaw(c->pg);
    size_t n = 0;
    /* an item whose batch failed at commit goes alone, so one bad row
     * cannot sink its neighbours again */
    bool solo = w->head->solo;
    while (n < (size_t)w->cfg.max_batch && w->head != NULL && (n == 0 || (!solo && !w->head->solo))) {
        c->batch[n] = writerPop(w);
        c->outcome[n] = ITEM_PENDING;
        n++;
    }
    c->n = n;
    c->next_result = 0;
    c->batch_failed = c->commit_failed = false;
    c->sent_at = uv_hrtime();
    w->in_flight += n;
    for (size_t i = 0; i < n; i++) {
        if (!PQsendQueryPrepared(pg, WRITER_STMT, API_WRITE_NPARAMS, c->batch[i]->params, NULL, NULL, 0)) {
            dsPgConnFail(c->pg, PQerrorMessage(pg)); /* on_down re-queues the batch */
            return;
        }
    }
    dsPgConnSync(c->pg);
}

static void writerDispatch(apiWriter *w) {
    for (int i = 0; i < w->cfg.connections && w->head != NULL; i++) {
        writerConn *c = &w->conns[i];
        if (c->prepared && c->n == 0 && dsPgConnIsIdle(c->pg)) writerSendBatch(c);
    }
}

static void writerOnCheck(uv_check_t *h) {
    apiWriter *w = h->data;
    if (w->head != NULL) writerDispatch(w);
}

/* Items not yet sent whose deadline passed get a definite "try again". */
static void writerOnSweep(uv_timer_t *t) {
    apiWriter *w = t->data;
    int64_t now = dsTimeNowMs();
    apiWriteItem **pp = &w->head, *prev = NULL;
    while (*pp != NULL) {
        apiWriteItem *item = *pp;
        if (item->deadline_ms > now) {
            prev = item;
            pp = &item->next;
            continue;
        }
        *pp = item->next;
        if (w->tail == item) w->tail = prev;
        w->depth--;
        writerComplete(w, item, API_WRITE_UNAVAILABLE, "timed out waiting for the database");
    }
    dsMetricSet(w->m_depth, (double)w->depth);
}

apiSubmitResult apiWriterCanAccept(const apiWriter *w, size_t n) {
    if (w->closing || !apiWriterReady(w)) return API_SUBMIT_UNAVAILABLE;
    if (w->depth + n > w->cfg.max_queue) return API_SUBMIT_FULL;
    return API_SUBMIT_QUEUED;
}

apiSubmitResult apiWriterSubmit(apiWriter *w, apiWriteItem *item) {
    apiSubmitResult r = apiWriterCanAccept(w, 1);
    if (r != API_SUBMIT_QUEUED) return r;
    item->attempts = 0;
    item->deadline_ms = dsTimeNowMs() + w->cfg.timeout_ms;
    writerPushBack(w, item);
    dsMetricSet(w->m_depth, (double)w->depth);
    return API_SUBMIT_QUEUED;
}

/* A conflict against a row of another schema version: asks the owner. */
static bool writerSameAsStored(apiWriter *w, const apiWriteItem *item, PGresult *res) {
    int version = atoi(PQgetvalue(res, 0, 2));
    if (w->cfg.same_as_stored == NULL || PQgetisnull(res, 0, 2) || version == atoi(item->params[6])) return false;
    return w->cfg.same_as_stored(w->cfg.same_arg, item, version, PQgetvalue(res, 0, 3));
}

/* Class 22 (data exception) and 23 (integrity) are the row's fault. */
static apiWriteStatus writerErrorStatus(const char *state) {
    bool row_fault = state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0);
    return row_fault ? API_WRITE_REJECTED : API_WRITE_FAILED;
}

/* Reads one statement's result into the item's fate. */
static void writerClassify(writerConn *c, apiWriteItem *item, itemOutcome *outcome, PGresult *res) {
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
        if (PQntuples(res) != 1) {
            *outcome = ITEM_RETRY;
            return;
        }
        char kind = PQgetvalue(res, 0, 0)[0];
        item->recorded_at_ms = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        item->status = kind == 'i' ? API_WRITE_INSERTED : kind == 'd' ? API_WRITE_DUPLICATE : API_WRITE_CONFLICT;
        if (kind == 'c' && writerSameAsStored(c->w, item, res)) item->status = API_WRITE_DUPLICATE;
        *outcome = ITEM_DONE;
        return;
    case PGRES_PIPELINE_ABORTED:
        *outcome = ITEM_RETRY;
        return;
    default: {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        item->status = writerErrorStatus(state);
        snprintf(item->message, sizeof(item->message), "%s", msg ? msg : "database error");
        dsLogError("insert of decision %s failed: %s %s", item->params[0], state ? state : "", item->message);
        c->batch_failed = true;
        *outcome = ITEM_DONE;
        return;
    }
    }
}

/* The commit failed (a deferred constraint or trigger): nothing of the
 * batch is stored. Alone, the item is answered with the error; in a batch
 * no one knows whose row it was, so each item is sent again alone. */
static bool writerCommitFailed(writerConn *c, apiWriteItem *item) {
    if (c->n > 1) {
        item->solo = true;
        return false;
    }
    snprintf(item->message, sizeof(item->message), "%s", c->commit_message);
    writerComplete(c->w, item, writerErrorStatus(c->commit_state), NULL);
    return true;
}

/* The sync's answer: the transaction committed, or rolled back if a
 * statement or the commit failed. Only now are the items answered. */
static void writerFinishBatch(writerConn *c) {
    apiWriter *w = c->w;
    size_t n = c->n, nretry = 0;
    apiWriteItem *retry[n > 0 ? n : 1];
    dsMetricObserve(w->m_batch, (double)n);
    dsMetricObserve(w->m_commit, (double)(uv_hrtime() - c->sent_at) / 1e9);
    w->in_flight -= n;
    for (size_t i = 0; i < n; i++) {
        apiWriteItem *item = c->batch[i];
        bool failed_here = item->status == API_WRITE_REJECTED || item->status == API_WRITE_FAILED;
        if (c->commit_failed) {
            if (writerCommitFailed(c, item)) continue;
            item->status = API_WRITE_INSERTED;
            retry[nretry++] = item;
        } else if (c->outcome[i] == ITEM_DONE && (!c->batch_failed || failed_here)) {
            writerComplete(w, item, item->status, NULL);
        } else {
            item->status = API_WRITE_INSERTED; /* reset; decided by the next attempt */
            retry[nretry++] = item;
        }
    }
    c->n = 0;
    writerPushFront(w, retry, nretry);
}

/* A result after the statements' and before the sync's: the commit's
 * error. It fails the whole batch; dropping it would answer 201 for rows
 * that were never stored. */
static void writerOnLateResult(writerConn *c, PGresult *res) {
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_PIPELINE_ABORTED) return;
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    c->batch_failed = c->commit_failed = true;
    snprintf(c->commit_state, sizeof(c->commit_state), "%s", state ? state : "");
    snprintf(c->commit_message, sizeof(c->commit_message), "%s", msg ? msg : "the commit failed");
    dsLogError("commit of a batch of %zu decisions failed: %s %s", c->n, c->commit_state, c->commit_message);
}

static void writerOnResult(dsPgConn *pg, PGresult *res, void *arg) {
    writerConn *c = arg;
    ExecStatusType st = PQresultStatus(res);
    if (c->preparing) {
        if (st == PGRES_PIPELINE_SYNC) {
            c->preparing = false;
            c->prepared = true;
        } else if (st != PGRES_COMMAND_OK) {
            dsLogError("cannot prepare the insert statement: %s", PQresultErrorMessage(res));
        }
        PQclear(res);
        return;
    }
    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        writerFinishBatch(c);
        return;
    }
    if (c->next_result < c->n) {
        size_t i = c->next_result++;
        writerClassify(c, c->batch[i], &c->outcome[i], res);
    } else {
        writerOnLateResult(c, res);
    }
    PQclear(res);
}

static void writerOnUp(dsPgConn *pg, void *arg) {
    writerConn *c = arg;
    c->prepared = false;
    c->preparing = true;
    if (!PQsendPrepare(dsPgConnRaw(pg), WRITER_STMT, writerInsertSql, API_WRITE_NPARAMS, NULL)) {
        dsPgConnFail(pg, PQerrorMessage(dsPgConnRaw(pg)));
        return;
    }
    dsPgConnSync(pg);
}

static void writerOnIdle(dsPgConn *pg, void *arg) {
    writerConn *c = arg;
    if (c->preparing) { /* the PREPARE failed: the session is of no use */
        dsPgConnFail(pg, "insert statement could not be prepared");
        return;
    }
    writerDispatch(c->w);
}

static void writerOnDown(dsPgConn *pg, const char *reason, void *arg) {
    writerConn *c = arg;
    apiWriter *w = c->w;
    c->prepared = c->preparing = false;
    /* Whatever was in flight may or may not have committed; sending it again
     * is safe because the insert is idempotent on decision_id. */
    size_t nretry = 0;
    apiWriteItem *retry[c->n > 0 ? c->n : 1];
    for (size_t i = 0; i < c->n; i++) {
        apiWriteItem *item = c->batch[i];
        if (++item->attempts > w->cfg.max_attempts) writerComplete(w, item, API_WRITE_UNAVAILABLE, reason);
        else retry[nretry++] = item;
    }
    w->in_flight -= c->n;
    c->n = 0;
    writerPushFront(w, retry, nretry);
    if (!apiWriterReady(w)) writerFailQueue(w, "database unavailable");
    else writerDispatch(w);
}

static void writerMetricsSetup(apiWriter *w, dsMetrics *m) {
    if (m == NULL) return;
    static const char *const st[] = {"status"};
    w->m_batch = dsMetricsHistogram(m, "decision_commit_batch_size", "Decisions written per transaction.",
                                    writerBatchBuckets, sizeof(writerBatchBuckets) / sizeof(writerBatchBuckets[0]));
    w->m_commit = dsMetricsHistogram(m, "decision_commit_duration_seconds",
                                     "Time from sending a batch to its commit.", writerCommitBuckets,
                                     sizeof(writerCommitBuckets) / sizeof(writerCommitBuckets[0]));
    w->m_depth = dsMetricsGauge(m, "decision_write_queue_depth", "Decisions waiting for a writer session.");
    w->m_items = dsMetricsFamily(m, "decision_writes_total", "Decisions completed by the writer, by result.",
                                 DS_METRIC_COUNTER, st, 1, NULL, 0);
}

apiWriter *apiWriterNew(uv_loop_t *loop, const apiWriterConfig *cfg, dsMetrics *metrics) {
    apiWriter *w = calloc(1, sizeof(*w));
    if (w == NULL) return NULL;
    w->loop = loop;
    w->cfg = *cfg;
    w->conns = calloc((size_t)cfg->connections, sizeof(*w->conns));
    if (w->conns == NULL) goto failed;
    writerMetricsSetup(w, metrics);
    static const dsPgCallbacks cb = {writerOnUp, writerOnResult, writerOnIdle, writerOnDown};
    for (int i = 0; i < cfg->connections; i++) {
        writerConn *c = &w->conns[i];
        c->w = w;
        c->batch = calloc((size_t)cfg->max_batch, sizeof(*c->batch));
        c->outcome = calloc((size_t)cfg->max_batch, sizeof(*c->outcome));
        c->pg = dsPgConnNew(loop, cfg->conninfo, "decision-api-writer", &cb, c);
        if (c->batch == NULL || c->outcome == NULL || c->pg == NULL) goto failed;
    }
    uv_check_init(loop, &w->dispatcher);
    uv_timer_init(loop, &w->sweeper);
    w->dispatcher.data = w->sweeper.data = w;
    w->open_handles = 2;
    uv_check_start(&w->dispatcher, writerOnCheck);
    uv_timer_start(&w->sweeper, writerOnSweep, 100, 100);
    for (int i = 0; i < cfg->connections; i++) dsPgConnStart(w->conns[i].pg);
    return w;

failed:
    for (int i = 0; w->conns && i < cfg->connections; i++) {
        free(w->conns[i].batch);
        free(w->conns[i].outcome);
        if (w->conns[i].pg) dsPgConnClose(w->conns[i].pg);
    }
    free(w->conns);
    free(w);
    return NULL;
}

static void writerOnHandleClosed(uv_handle_t *h) {
    apiWriter *w = h->data;
    if (--w->open_handles > 0) return;
    free(w->conns);
    free(w);
}

void apiWriterClose(apiWriter *w) {
    w->closing = true;
    for (int i = 0; i < w->cfg.connections; i++) {
        writerConn *c = &w->conns[i];
        for (size_t j = 0; j < c->n; j++)
            writerComplete(w, c->batch[j], API_WRITE_UNAVAILABLE, "server shutting down");
        c->n = 0;
        dsPgConnClose(c->pg);
        free(c->batch);
        free(c->outcome);
    }
    writerFailQueue(w, "server shutting down");
    uv_close((uv_handle_t *)&w->dispatcher, writerOnHandleClosed);
    uv_close((uv_handle_t *)&w->sweeper, writerOnHandleClosed);
}
