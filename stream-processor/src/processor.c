/* processor.c - replication stream -> Kafka, checkpointed by the watermark
 * (see processor.h); exactly-once is txn.c's (processor_int.h). */
#include "processor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint.h"
#include "ds/log.h"
#include "pgoutput.h"
#include "record.h"
#include "watermark.h"
#include "processor_int.h"

/* What becomes of a decision row. */
typedef enum { PROC_ROW_SEND, PROC_ROW_DLQ, PROC_ROW_RETRY } procRowFate;

/* Microseconds since 2000-01-01, the clock of pgoutput's commit time. */
int64_t procNowPg(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((int64_t)ts.tv_sec - 946684800LL) * 1000000LL + ts.tv_nsec / 1000;
}

/* A transaction is fully acknowledged: commit-to-ack latency. Transactions
 * without decisions are not latency. */
static void procOnConfirmable(int64_t commit_time, size_t messages, void *arg) {
    spProcessor *p = arg;
    /* exactly-once: a decision is delivered when Kafka commits its batch */
    if (messages > 0 && !p->eos) dsMetricObserve(p->m_latency, (double)(procNowPg() - commit_time) / 1e6);
}

/* A fresh watermark for a new session. */
static spWatermark *procWatermark(spProcessor *p) {
    spWatermark *w = spWatermarkNew();
    if (w) spWatermarkSetObserver(w, procOnConfirmable, p);
    return w;
}

/* --- session life cycle ---------------------------------------------------- */

/* The delivery tag of the current transaction's messages. */
static uint64_t procTag(const spProcessor *p) {
    return (p->epoch & 0xffff) << TAG_SEQ_BITS | p->seq;
}

void procOnRetry(uv_timer_t *t) {
    spProcessor *p = t->data;
    if (p->renewing) txnRenew(p);
    else if (p->eos && !p->eos_ready) txnInit(p);
    else if (p->eos && p->tx != TX_NONE) procScheduleRetry(p); /* a probe still commits */
    else procStartSession(p);
}

static void procOnExitTimer(uv_timer_t *t) {
    spProcessor *p = t->data;
    p->cfg.on_exit(p->exit_code, p->cfg.exit_arg);
}

/* The processor cannot go on: stop reading, tell the caller (from a timer,
 * so that it may stop the processor whatever callback this comes from). */
void procFatal(spProcessor *p, int code, const char *why) {
    if (p->fatal) return;
    p->fatal = true;
    p->exit_code = code;
    dsLogError("%s", why);
    if (p->repl) spReplPause(p->repl);
    uv_timer_stop(&p->retry);
    uv_timer_stop(&p->batch_timer);
    uv_timer_start(&p->exit_timer, procOnExitTimer, 0, 0);
}

/* Starts the next session attempt after the current backoff, then doubles
 * the backoff (capped). */
void procScheduleRetry(spProcessor *p) {
    uv_timer_start(&p->retry, procOnRetry, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms * 2 > PROC_BACKOFF_MAX_MS ? PROC_BACKOFF_MAX_MS : p->backoff_ms * 2;
}

/* Drops the session and everything not yet confirmed; a new session will
 * stream it again from the slot. */
void procRestart(spProcessor *p, const char *why) {
    /* While the cluster refuses the producer the restarts are its retries:
     * the problem itself is logged, once a minute. */
    dsLogLevel level = dsKafkaHealthProblem(spProducerHealth(p->prod), NULL, 0) != DS_KAFKA_OK ? DS_LOG_DEBUG
                                                                                               : DS_LOG_WARN;
    dsLog(level, "restarting from the slot's confirmed position: %s", why);
    dsMetricInc(p->m_restarts, 1);
    if (p->repl) spReplClose(p->repl);
    p->repl = NULL;
    spWatermarkFree(p->wm);
    spRelCacheFree(p->rels);
    spMsgFree(&p->msg);
    memset(&p->msg, 0, sizeof(p->msg));
    p->wm = procWatermark(p);
    p->rels = spRelCacheNew();
    p->in_txn = false;
    /* The dropped session's position covers what it read and Kafka never
     * took: with the new watermark empty, procSendStatus would confirm it
     * before the next session has streamed those decisions again. */
    p->server_end = 0;
    p->epoch++;
    if (p->eos) {
        p->batch.in_pg = p->batch.skipping = false;
        if (txnCheckFatal(p) || p->fatal) return;
        if (p->tx == TX_BUSY) { /* the commit or abort running decides; then the session restarts */
            p->restart_pending = true;
            return;
        }
        if (p->batch.open || p->tx == TX_DRAIN_COMMIT) {
            p->restart_pending = true;
            txnAbort(p);
            return;
        }
    }
    if (!p->stopping) procScheduleRetry(p);
}

static void procOnDown(const char *reason, void *arg) {
    procRestart(arg, reason);
}

/* --- status updates -------------------------------------------------------- */

void procSendStatus(spProcessor *p, bool reply) {
    if (p->repl == NULL) return;
    uint64_t flush = p->eos ? txnFlush(p) : spWatermarkConfirmable(p->wm);
    /* Nothing in flight: everything the server sent so far is handled, so
     * its own position can be confirmed and idle or foreign traffic never
     * makes WAL pile up (exactly-once commits an idle checkpoint instead). */
    if (!p->eos && spWatermarkTransactions(p->wm) == 0 && p->server_end > flush) flush = p->server_end;
    if (flush < p->confirmed) flush = p->confirmed;
    p->confirmed = flush;
    spReplSendStatus(p->repl, p->server_end > flush ? p->server_end : flush, flush, reply);
    dsMetricSet(p->m_confirmed, (double)flush);
    dsMetricSet(p->m_lag, (double)(p->server_end > flush ? p->server_end - flush : 0));
    dsMetricSet(p->m_inflight, (double)spProducerInFlight(p->prod));
    dsMetricSet(p->m_inflight_bytes, (double)spProducerInFlightBytes(p->prod));
}

static void procOnStatusTimer(uv_timer_t *t) {
    spProcessor *p = t->data;
    if (txnCheckFatal(p)) return;
    txnIdleCheckpoint(p);
    procSendStatus(p, false);
}

/* --- Kafka ------------------------------------------------------------------ */

static void procOnDelivered0(spProcessor *p, uint64_t tag, bool ok, const char *error);

static void procOnDelivered(uint64_t tag, bool ok, const char *error, void *arg) {
    spProcessor *p = arg;
    procOnDelivered0(p, tag, ok, error);
    if (p->eos) txnDrained(p);
}

static void procOnDelivered0(spProcessor *p, uint64_t tag, bool ok, const char *error) {
    if ((tag >> TAG_SEQ_BITS) != (p->epoch & 0xffff)) return; /* from an earlier session */
    if ((tag & TAG_SEQ_MASK) == TAG_CHECKPOINT && ok) return;
    if (!ok) {
        char why[300];
        snprintf(why, sizeof(why), "Kafka delivery failed: %s", error ? error : "unknown error");
        procRestart(p, why);
        return;
    }
    if (!spWatermarkAck(p->wm, tag & TAG_SEQ_MASK)) {
        char why[160];
        snprintf(why, sizeof(why), "Kafka acknowledged a message of transaction %llu, which has none in flight",
                 (unsigned long long)(tag & TAG_SEQ_MASK));
        procRestart(p, why);
        return;
    }
    /* Resume reading once half the window is free, but never while stopping:
     * the final flush serves these reports with reading paused on purpose. */
    if (p->repl && !p->stopping && p->tx == TX_NONE && !p->fatal &&
        spProducerInFlight(p->prod) < (size_t)p->cfg.max_in_flight / 2 &&
        spProducerInFlightBytes(p->prod) < p->cfg.max_in_flight_bytes / 2)
        spReplResume(p->repl);
}

/* Whether what waits for Kafka has reached either limit of the window. */
bool procWindowFull(const spProcessor *p) {
    return spProducerInFlight(p->prod) >= (size_t)p->cfg.max_in_flight ||
           spProducerInFlightBytes(p->prod) >= p->cfg.max_in_flight_bytes;
}

/* A NUL-terminated copy of a text column, NULL for SQL NULL or absence. */
static char *procColumn(const spRelation *rel, const spTuple *tup, const char *name) {
    const spValue *v = spTupleGet(rel, tup, name);
    if (v == NULL || v->kind != SP_VAL_TEXT) return NULL;
    return strndup((const char *)v->data, v->len);
}

static bool procSendDlq(spProcessor *p, const spRelation *rel, const spTuple *tup, const char *key,
                        const char *error, const char *lsn, char *err, size_t errlen) {
    char *row = spRowDlqJson(rel, tup);
    dsLogWarn("decision row at %s goes to the dead-letter topic: %s", lsn, error);
    bool ok = row && spProducerSendDlq(p->prod, key, row, error, lsn, procTag(p),
                                       err, errlen);
    free(row);
    if (ok) dsMetricInc(p->m_dlq, 1);
    return ok;
}

/* The row's schema_version column; 0 (why filled) when it is missing, null
 * or not a version number. */
static int procRowVersion(const spRelation *rel, const spTuple *tup, char *why, size_t len) {
    char *text = procColumn(rel, tup, "schema_version"), *end = NULL;
    long v = text ? strtol(text, &end, 10) : 0;
    bool ok = text && end != text && !*end && v >= 1 && v <= INT32_MAX;
    if (!text) snprintf(why, len, "column schema_version is missing or null");
    else if (!ok) snprintf(why, len, "column schema_version: \"%.40s\" is not a schema version", text);
    free(text);
    return ok ? (int)v : 0;
}

/* The codec knows version, learning it from the registry if need be. A
 * version it cannot learn is waited for, never dead-lettered: the API that
 * wrote the row knew it, so a registry that does not is older than that API
 * (an old instance still answering during a handover, or a rollback), and
 * the row is valid; the stream stops at it, in order, until it is learned
 * or the processor runs a newer build. */
static procRowFate procKnow(spProcessor *p, int version, char *why, size_t len) {
    if (dsCodecSchemaId(p->codec, version) >= 0) return PROC_ROW_SEND;
    if (p->cfg.learner == NULL) {
        snprintf(why, len, "schema version %d is unknown to this processor and there is no registry-url to learn it"
                 " from: waiting for a restart with a newer build or a registry-url", version);
        return PROC_ROW_RETRY;
    }
    char err[768];
    dsLearnResult r = dsLearnVersion(p->cfg.learner, p->codec, version, err, sizeof(err));
    if (r == DS_LEARN_OK) {
        dsLogInfo("learned schema version %d (id %d) from the registry", version, dsCodecSchemaId(p->codec, version));
        return PROC_ROW_SEND;
    }
    snprintf(why, len, "schema version %d: %s%s", version, r == DS_LEARN_TRANSIENT ? "cannot learn it now: " : "", err);
    return PROC_ROW_RETRY;
}

/* The reusable value of version, made on first use; NULL if out of memory. */
static avro_value_t *procScratchOf(spProcessor *p, int version) {
    for (size_t i = 0; i < p->nscratch; i++)
        if (p->scratch[i].version == version) return &p->scratch[i].value;
    procScratch *grown = realloc(p->scratch, (p->nscratch + 1) * sizeof(*grown));
    if (grown == NULL) return NULL;
    p->scratch = grown;
    if (!dsCodecNewVersionValue(p->codec, version, &grown[p->nscratch].value)) return NULL;
    grown[p->nscratch].version = version;
    return &grown[p->nscratch++].value;
}

/* Encodes the row into p->buf under the version it was stored with;
 * *schema_id receives that version's id. */
static procRowFate procEncode(spProcessor *p, const spRelation *rel, const spTuple *tup, const char *doc,
                              const char *recorded, int *schema_id, char *why, size_t len) {
    int version = procRowVersion(rel, tup, why, len);
    if (version == 0) return PROC_ROW_DLQ;
    procRowFate fate = procKnow(p, version, why, len);
    if (fate != PROC_ROW_SEND) return fate;
    avro_value_t *scratch = procScratchOf(p, version);
    if (scratch == NULL) return snprintf(why, len, "out of memory"), PROC_ROW_RETRY;
    if (!spRecordEncode(p->codec, scratch, doc, recorded, &p->buf, why, len)) return PROC_ROW_DLQ;
    *schema_id = dsCodecSchemaId(p->codec, version);
    return PROC_ROW_SEND;
}

/* Hands the encoded row to Kafka; a record larger than Kafka takes goes to
 * the dead-letter topic instead, since sending it again cannot succeed. */
static bool procSendRecord(spProcessor *p, const spRelation *rel, const spTuple *tup, const char *id,
                           const char *customer, int schema_id, const char *lsn, char *err, size_t errlen) {
    if (spProducerSend(p->prod, customer, customer ? strlen(customer) : 0, p->buf.data, p->buf.len, id, schema_id, lsn,
                       procTag(p), err, errlen))
        return true;
    if (!spProducerTooLarge(p->prod)) return false;
    char why[800];
    snprintf(why, sizeof(why), "record: %s", err);
    return procSendDlq(p, rel, tup, customer, why, lsn, err, errlen);
}

static void procInsert(spProcessor *p, const spMsg *m, uint64_t lsn) {
    const spRelation *rel = m->u.change.rel;
    if (!spReplIsTable(p->repl, rel->nspname, rel->relname)) return; /* another table the publication holds */
    if (p->eos && p->batch.skipping) return; /* already in Kafka with a committed checkpoint */
    char lsntext[24], err[768] = "out of memory", why[1024] = "out of memory";
    spLsnFormat(lsn, lsntext);
    if (!p->in_txn) {
        /* The stream is out of order: tracking this row would be a guess. */
        snprintf(why, sizeof(why), "Insert at %s outside a transaction (no Begin before it)", lsntext);
        p->stalled = true;
        procRestart(p, why);
        return;
    }
    const spTuple *tup = &m->u.change.newtup;
    char *id = spRowText(rel, tup, "decision_id", why, sizeof(why)), *customer = procColumn(rel, tup, "customer_id");
    /* doc_text is the canonical text as posted; rows from before it have only doc (jsonb). */
    char *doc = id ? procColumn(rel, tup, "doc_text") : NULL;
    if (id && !doc) doc = spRowText(rel, tup, "doc", why, sizeof(why));
    char *recorded = doc ? spRowText(rel, tup, "recorded_at", why, sizeof(why)) : NULL;
    int schema_id = -1;
    procRowFate fate = PROC_ROW_DLQ;
    if (id && doc && recorded) fate = procEncode(p, rel, tup, doc, recorded, &schema_id, why, sizeof(why));
    bool sent = false;
    if (fate == PROC_ROW_SEND)
        sent = procSendRecord(p, rel, tup, id, customer, schema_id, lsntext, err, sizeof(err));
    else if (fate == PROC_ROW_DLQ)
        sent = procSendDlq(p, rel, tup, customer, why, lsntext, err, sizeof(err));
    free(id);
    free(customer);
    free(doc);
    free(recorded);
    if (fate == PROC_ROW_RETRY) {
        /* Not dead-lettered: the row is read again from the slot later. */
        p->stalled = true;
        procRestart(p, why);
        return;
    }
    if (!sent) {
        p->stalled = true; /* the same row comes first again: keep backing off */
        procRestart(p, err);
        return;
    }
    if (!spWatermarkAddPending(p->wm, p->seq)) {
        /* Sent but untracked, its position could be confirmed before Kafka
         * has it: drop the session, the delivery report is ignored. */
        procRestart(p, "a decision was sent outside any open transaction of the watermark");
        return;
    }
    dsMetricInc(p->m_events, 1);
    if (p->eos) spBatchAdd(&p->batch);
    if (procWindowFull(p)) spReplPause(p->repl);
}

/* --- the replication stream ------------------------------------------------- */

static void procMessage(spProcessor *p, uint64_t lsn, const uint8_t *data, size_t len) {
    char err[512];
    char lsntext[24], why[600];
    spLsnFormat(lsn, lsntext);
    if (!spPgoutputParse(p->rels, data, len, &p->msg, err, sizeof(err))) {
        /* Reading it again will not help; the back-off is kept growing
         * (stalled) so the log and the slot are not hammered meanwhile. */
        snprintf(why, sizeof(why), "undecodable message at %s: %s", lsntext, err);
        p->stalled = true;
        procRestart(p, why);
        return;
    }
    switch (p->msg.type) {
    case 'B':
        if (p->in_txn) {
            snprintf(why, sizeof(why), "Begin at %s inside a transaction (no Commit before it)", lsntext);
            p->stalled = true;
            procRestart(p, why);
        } else if (!spWatermarkBegin(p->wm, &p->seq)) {
            procRestart(p, "out of memory");
        } else {
            p->in_txn = true;
            if (p->eos && !spBatchPgBegin(&p->batch, p->msg.u.begin.final_lsn) && !p->batch.open)
                txnOpenBatch(p);
            p->messages_at_begin = p->batch.messages;
        }
        break;
    case 'I':
        procInsert(p, &p->msg, lsn);
        break;
    case 'C':
        if (!p->in_txn || !spWatermarkCommit(p->wm, p->seq, p->msg.u.commit.end_lsn, p->msg.u.commit.commit_time)) {
            snprintf(why, sizeof(why), "Commit at %s without its Begin", lsntext);
            p->stalled = true;
            procRestart(p, why);
            break;
        }
        p->in_txn = false;
        if (!p->eos) break;
        if (p->batch.open && p->batch.messages > p->messages_at_begin) txnNoteCommit(p, p->msg.u.commit.commit_time);
        if (spBatchPgCommit(&p->batch, p->msg.u.commit.end_lsn, uv_now(p->loop))) txnCloseBatch(p);
        break;
    default: /* Relation is cached by the parser; the rest carries no decision */
        break;
    }
}

static void procOnData(const uint8_t *buf, size_t len, void *arg) {
    spProcessor *p = arg;
    spCopyData cd;
    char err[256];
    if (!spCopyDataParse(buf, len, &cd, err, sizeof(err))) {
        procRestart(p, err);
        return;
    }
    if (cd.wal_end > p->server_end) p->server_end = cd.wal_end;
    if (cd.kind == SP_COPY_KEEPALIVE) {
        if (cd.reply_requested) procSendStatus(p, false);
        return;
    }
    procMessage(p, cd.wal_start, cd.data, cd.len);
}

void procStartSession(spProcessor *p) {
    char err[512];
    uint64_t start;
    if (p->wm == NULL) p->wm = procWatermark(p);
    if (p->rels == NULL) p->rels = spRelCacheNew();
    if (p->wm == NULL || p->rels == NULL) {
        dsLogError("replication session: out of memory (retry in %u ms)", p->backoff_ms);
        procScheduleRetry(p);
        return;
    }
    p->repl = spReplStart(p->loop, &p->cfg.repl, procOnData, procOnDown, p, &start, err, sizeof(err));
    if (p->repl == NULL) {
        dsLogWarn("replication session: %s (retry in %u ms)", err, p->backoff_ms);
        procScheduleRetry(p);
        if (p->eos) txnProbe(p);
        return;
    }
    char lsn[24];
    if (p->eos && !spBatchStartCheck(p->cfg.repl.slot, start, p->have_checkpoint, p->batch.checkpoint,
                                     p->cfg.kafka.checkpoint_topic, err, sizeof(err))) {
        spReplClose(p->repl);
        p->repl = NULL;
        procFatal(p, 1, err);
        return;
    }
    dsLogInfo("streaming slot %s from %s", p->cfg.repl.slot, spLsnFormat(start, lsn));
    if (start > p->confirmed) p->confirmed = start;
    if (!p->stalled) p->backoff_ms = PROC_BACKOFF_MIN_MS;
    p->stalled = false;
}


/* --- construction ------------------------------------------------------------ */

static void procMetrics(spProcessor *p, dsMetrics *m) {
    if (m == NULL) return;
    p->m_events = dsMetricsCounter(m, "stream_events_total", "Decisions read from the replication stream.");
    p->m_dlq = dsMetricsCounter(m, "stream_dlq_total", "Decision rows sent to the dead-letter topic.");
    p->m_restarts = dsMetricsCounter(m, "stream_restarts_total", "Sessions restarted from the slot.");
    p->m_inflight = dsMetricsGauge(m, "stream_in_flight", "Messages handed to Kafka and not yet acknowledged.");
    p->m_inflight_bytes = dsMetricsGauge(m, "stream_in_flight_bytes",
                                         "Key and value bytes handed to Kafka and not yet acknowledged.");
    p->m_confirmed = dsMetricsGauge(m, "stream_confirmed_lsn", "Flush position confirmed to the slot.");
    p->m_lag = dsMetricsGauge(m, "stream_replication_lag_bytes", "Server WAL position minus the confirmed position.");
    /* Fine below 25 ms, where a healthy pipeline's latency lies, so that
     * 2, 5 and 10 ms are told apart; coarse above, for outages. */
    static const double buckets[] = {0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025,
                                     0.05,   0.1,   0.25,  0.5,   1,     2.5,    5,    10};
    p->m_latency = dsMetricsHistogram(m, "stream_commit_to_ack_seconds",
                                      "From a decision's commit in PostgreSQL to Kafka acknowledging its transaction.",
                                      buckets, sizeof(buckets) / sizeof(buckets[0]));
    if (!p->eos) return;
    p->m_tx_committed = dsMetricsCounter(m, "kafka_transactions_committed_total", "Kafka transactions committed.");
    p->m_tx_aborted = dsMetricsCounter(m, "kafka_transactions_aborted_total", "Kafka transactions aborted.");
    p->m_renewals = dsMetricsCounter(m, "kafka_producer_renewals_total",
                                     "Transactional producers replaced after a fatal error (a fencing by the "
                                     "transaction coordinator among them), streaming again from the slot.");
    static const double sizes[] = {0, 1, 10, 100, 1000, 10000, 100000};
    p->m_tx_messages = dsMetricsHistogram(m, "kafka_transaction_messages",
                                          "Decisions and dead letters per Kafka transaction (its checkpoint not counted).",
                                          sizes, sizeof(sizes) / sizeof(sizes[0]));
    p->m_tx_seconds = dsMetricsHistogram(m, "kafka_transaction_commit_seconds",
                                         "From a Kafka transaction's commit call to its return.", buckets,
                                         sizeof(buckets) / sizeof(buckets[0]));
}

spProcessor *spProcessorNew(uv_loop_t *loop, const spProcessorConfig *cfg, dsCodec *codec, dsMetrics *metrics,
                            char *errbuf, size_t errlen) {
    spProcessor *p = calloc(1, sizeof(*p));
    if (p == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    p->loop = loop;
    p->cfg = *cfg;
    p->codec = codec;
    p->backoff_ms = PROC_BACKOFF_MIN_MS;
    p->eos = cfg->kafka.transactional_id != NULL;
    procMetrics(p, metrics);
    p->cfg.kafka.metrics = metrics;
    p->wm = procWatermark(p);
    p->rels = spRelCacheNew();
    if (p->wm == NULL || p->rels == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        spWatermarkFree(p->wm);
        spRelCacheFree(p->rels);
        free(p);
        return NULL;
    }
    p->prod = spProducerNew(loop, &p->cfg.kafka, procOnDelivered, p, errbuf, errlen);
    if (p->prod == NULL) {
        spWatermarkFree(p->wm);
        spRelCacheFree(p->rels);
        free(p);
        return NULL;
    }
    uv_timer_init(loop, &p->status);
    uv_timer_init(loop, &p->retry);
    uv_timer_init(loop, &p->batch_timer);
    uv_timer_init(loop, &p->exit_timer);
    p->status.data = p->retry.data = p->batch_timer.data = p->exit_timer.data = p;
    p->open_handles = 4;
    uv_timer_start(&p->status, procOnStatusTimer, (uint64_t)cfg->status_interval_ms, (uint64_t)cfg->status_interval_ms);
    if (p->eos) {
        txnPrepareSlot(p);
        txnInit(p);
    } else {
        procStartSession(p);
    }
    return p;
}

bool spProcessorStreaming(const spProcessor *p) {
    return p->repl != NULL && !p->fatal;
}

dsKafkaHealth *spProcessorKafkaHealth(const spProcessor *p) {
    return spProducerHealth(p->prod);
}

/* One handle (or the checkpoint read) less; the memory goes with the last. */
void procRelease(spProcessor *p) {
    if (--p->open_handles > 0) return;
    spRecordBufFree(&p->buf);
    for (size_t i = 0; i < p->nscratch; i++) avro_value_decref(&p->scratch[i].value);
    free(p->scratch);
    spMsgFree(&p->msg);
    spWatermarkFree(p->wm);
    spRelCacheFree(p->rels);
    free(p->commit_times);
    free(p);
}

static void procOnClosed(uv_handle_t *h) {
    procRelease(h->data);
}

void spProcessorStop(spProcessor *p, int timeout_ms) {
    p->stopping = true;
    if (p->repl) spReplPause(p->repl);
    if (p->eos) txnStop(p, timeout_ms);
    else if (!spProducerFlush(p->prod, timeout_ms))
        dsLogWarn("stopping with %zu messages unacknowledged; they will be sent again", spProducerInFlight(p->prod));
    procSendStatus(p, false);
    char lsn[24];
    dsLogInfo("stopped; slot confirmed at %s", spLsnFormat(p->confirmed, lsn));
    if (p->repl) spReplClose(p->repl);
    p->repl = NULL;
    spProducerFree(p->prod);
    uv_close((uv_handle_t *)&p->status, procOnClosed);
    uv_close((uv_handle_t *)&p->retry, procOnClosed);
    uv_close((uv_handle_t *)&p->batch_timer, procOnClosed);
    uv_close((uv_handle_t *)&p->exit_timer, procOnClosed);
}
