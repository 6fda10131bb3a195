/* processor.c - replication stream -> Kafka, checkpointed by the watermark
 * (see processor.h). */
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

/* Delivery tags carry the session epoch in the high bits, so reports of
 * messages sent by an earlier session (re-sent since) are ignored. */
#define TAG_SEQ_BITS 48
#define TAG_SEQ_MASK ((UINT64_C(1) << TAG_SEQ_BITS) - 1)
/* The checkpoint record's sequence number: no watermark transaction. */
#define TAG_CHECKPOINT TAG_SEQ_MASK
#define PROC_BACKOFF_MIN_MS 200
#define PROC_BACKOFF_MAX_MS 5000

/* A value of one schema version, reused for every row of that version. */
typedef struct procScratch {
    int version;
    avro_value_t value;
} procScratch;

/* What becomes of a decision row. */
typedef enum { PROC_ROW_SEND, PROC_ROW_DLQ, PROC_ROW_RETRY } procRowFate;

struct spProcessor {
    uv_loop_t *loop;
    spProcessorConfig cfg;
    dsCodec *codec;
    procScratch *scratch; /* owned, one per version met so far */
    size_t nscratch;
    spRecordBuf buf;
    spProducer *prod;
    spRepl *repl;
    spRelCache *rels;
    spWatermark *wm;
    spMsg msg;
    uint64_t epoch, seq;
    bool in_txn; /* between a Begin and its Commit */
    uint64_t server_end; /* newest server WAL position seen in this session */
    uint64_t confirmed;  /* newest flush position sent */
    uv_timer_t status, retry;
    unsigned backoff_ms;
    int open_handles;
    bool stopping;
    /* The session ended waiting for the registry: the next one does not
     * reset the back-off merely by connecting, or a registry that is down
     * would have the slot re-read every PROC_BACKOFF_MIN_MS. */
    bool stalled;
    dsMetric *m_events, *m_dlq, *m_inflight, *m_inflight_bytes, *m_confirmed, *m_lag, *m_restarts, *m_latency;
    /* Exactly-once (see processor.h). */
    bool eos;
    bool txn_inited;       /* init_transactions succeeded */
    bool eos_ready;        /* and the checkpoint was read */
    bool have_checkpoint;  /* the topic had one at start, or one was committed since */
    spBatch batch;
    /* The Kafka transaction's state beyond spBatch: waiting for the last
     * reports before a commit or an abort goes to the pool, or a call there. */
    enum { TX_NONE, TX_DRAIN_COMMIT, TX_DRAIN_ABORT, TX_BUSY } tx;
    bool restart_pending;  /* a session restart waits for the transaction to settle */
    uint64_t closing_lsn;  /* the checkpoint of the transaction being committed */
    size_t closing_msgs;
    uint64_t commit_started_ns;
    uv_timer_t batch_timer, exit_timer;
    uv_work_t ck_work;
    bool ck_ok, ck_have;
    uint64_t ck_lsn;
    char ck_err[600];
    bool fatal;
    bool renewing; /* the producer handle is replaced from the retry timer */
    int exit_code;
    dsMetric *m_tx_committed, *m_tx_aborted, *m_tx_messages, *m_tx_seconds;
    /* Commit times of the open batch's PostgreSQL transactions with
     * decisions, observed as commit-to-ack latency when Kafka commits it. */
    int64_t *commit_times;
    size_t ncommit_times, commit_times_cap, messages_at_begin;
};

static void procStartSession(spProcessor *p);
static void procEosInit(spProcessor *p);
static void procOnRetry(uv_timer_t *t);
static void procEosRenew(spProcessor *p);
static void procRestart(spProcessor *p, const char *why);
static void procEosAbort(spProcessor *p);
static void procDrained(spProcessor *p);
static void procNoteCommit(spProcessor *p, int64_t commit_time);
static void procScheduleRetry(spProcessor *p);
static void procCloseBatch(spProcessor *p);
static bool procOpenBatch(spProcessor *p);

/* Microseconds since 2000-01-01, the clock of pgoutput's commit time. */
static int64_t procNowPg(void) {
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

static void procOnRetry(uv_timer_t *t) {
    spProcessor *p = t->data;
    if (p->renewing) procEosRenew(p);
    else if (p->eos && !p->eos_ready) procEosInit(p);
    else if (p->eos && p->tx != TX_NONE) procScheduleRetry(p); /* a probe still commits */
    else procStartSession(p);
}

static void procOnExitTimer(uv_timer_t *t) {
    spProcessor *p = t->data;
    p->cfg.on_exit(p->exit_code, p->cfg.exit_arg);
}

/* The processor cannot go on: stop reading, tell the caller (from a timer,
 * so that it may stop the processor whatever callback this comes from). */
static void procFatal(spProcessor *p, int code, const char *why) {
    if (p->fatal) return;
    p->fatal = true;
    p->exit_code = code;
    dsLogError("%s", why);
    if (p->repl) spReplPause(p->repl);
    uv_timer_stop(&p->retry);
    uv_timer_stop(&p->batch_timer);
    uv_timer_start(&p->exit_timer, procOnExitTimer, 0, 0);
}

/* librdkafka's fatal error ends the producer handle, not the processor
 * (an outage of the transaction coordinator can leave it so): the session
 * is dropped, and from a timer (this may run inside the handle's own poll)
 * a new handle inits, which aborts what the old one left open, reads the
 * checkpoint and streams again from the slot, as a start does. */
static void procEosRenewSoon(spProcessor *p, const char *what, const char *why) {
    if (p->renewing || p->fatal) return;
    dsLogError("%s: the Kafka producer cannot go on (%s): a new one takes its place and streaming starts again "
               "from the slot", what, why);
    p->renewing = true;
    p->txn_inited = p->eos_ready = false;
    p->tx = TX_NONE;
    p->restart_pending = false;
    p->ncommit_times = 0;
    uv_timer_stop(&p->batch_timer);
    spBatchAborted(&p->batch);
    procRestart(p, why);
    uv_timer_start(&p->retry, procOnRetry, 0, 0);
}

static void procEosRenew(spProcessor *p) {
    char err[700];
    if (spProducerTxnBusy(p->prod)) { /* its result comes first, then this again */
        uv_timer_start(&p->retry, procOnRetry, 100, 0);
        return;
    }
    if (!spProducerRenew(p->prod, &p->cfg.kafka, err, sizeof(err))) {
        procFatal(p, 1, err);
        return;
    }
    p->renewing = false;
    procEosInit(p);
}

/* A status from the transactional producer that ends the processor, or
 * its producer handle. */
static bool procTxnFatal(spProcessor *p, spTxnStatus st, const char *what, const char *why) {
    char msg[1200];
    if (st == SP_TXN_FENCED) {
        snprintf(msg, sizeof(msg),
                 "%s: fenced: another stream processor with transactional.id %s took over the slot (%s); this one "
                 "stops without retrying", what, p->cfg.kafka.transactional_id, why);
        procFatal(p, 0, msg);
        return true;
    }
    if (st == SP_TXN_FATAL) {
        snprintf(msg, sizeof(msg), "%s: fatal Kafka producer error: %s", what, why);
        procFatal(p, 1, msg);
        return true;
    }
    if (st == SP_TXN_RENEW) {
        procEosRenewSoon(p, what, why);
        return true;
    }
    return false;
}

/* Whether librdkafka raised a fatal error (it does so when fenced). */
static bool procCheckFatal(spProcessor *p) {
    char why[600];
    if (!p->eos) return false;
    return procTxnFatal(p, spProducerFatal(p->prod, why, sizeof(why)), "Kafka", why);
}

/* Starts the next session attempt after the current backoff, then doubles
 * the backoff (capped). */
static void procScheduleRetry(spProcessor *p) {
    uv_timer_start(&p->retry, procOnRetry, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms * 2 > PROC_BACKOFF_MAX_MS ? PROC_BACKOFF_MAX_MS : p->backoff_ms * 2;
}

/* Drops the session and everything not yet confirmed; a new session will
 * stream it again from the slot. */
static void procRestart(spProcessor *p, const char *why) {
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
        if (procCheckFatal(p) || p->fatal) return;
        if (p->tx == TX_BUSY) { /* the commit or abort running decides; then the session restarts */
            p->restart_pending = true;
            return;
        }
        if (p->batch.open || p->tx == TX_DRAIN_COMMIT) {
            p->restart_pending = true;
            procEosAbort(p);
            return;
        }
    }
    if (!p->stopping) procScheduleRetry(p);
}

static void procOnDown(const char *reason, void *arg) {
    procRestart(arg, reason);
}

/* --- status updates -------------------------------------------------------- */

/* The flush position exactly-once may confirm: the committed checkpoint,
 * within what this session has seen of the server. */
static uint64_t procEosFlush(const spProcessor *p) {
    uint64_t flush = p->batch.checkpoint;
    return p->server_end > 0 && flush > p->server_end ? p->server_end : flush;
}

static void procSendStatus(spProcessor *p, bool reply) {
    if (p->repl == NULL) return;
    uint64_t flush = p->eos ? procEosFlush(p) : spWatermarkConfirmable(p->wm);
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

/* Exactly-once with nothing open: the server's position (idle time,
 * foreign WAL) moves the checkpoint by a transaction of its own, at most
 * once per idle period, so the slot is confirmed and WAL does not pile up. */
static void procIdleCheckpoint(spProcessor *p) {
    if (!p->eos || !p->eos_ready || p->repl == NULL || p->tx != TX_NONE || p->in_txn || p->stopping || p->fatal)
        return;
    uint64_t target = spBatchIdleTarget(&p->batch, p->server_end, uv_now(p->loop));
    if (target == 0 || !procOpenBatch(p)) return;
    p->batch.end_lsn = target;
    procCloseBatch(p);
}

static void procOnStatusTimer(uv_timer_t *t) {
    spProcessor *p = t->data;
    if (procCheckFatal(p)) return;
    procIdleCheckpoint(p);
    procSendStatus(p, false);
}

/* --- Kafka ------------------------------------------------------------------ */

static void procOnDelivered0(spProcessor *p, uint64_t tag, bool ok, const char *error);

static void procOnDelivered(uint64_t tag, bool ok, const char *error, void *arg) {
    spProcessor *p = arg;
    procOnDelivered0(p, tag, ok, error);
    if (p->eos) procDrained(p);
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
static bool procWindowFull(const spProcessor *p) {
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
                procOpenBatch(p);
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
        if (p->batch.open && p->batch.messages > p->messages_at_begin) procNoteCommit(p, p->msg.u.commit.commit_time);
        if (spBatchPgCommit(&p->batch, p->msg.u.commit.end_lsn, uv_now(p->loop))) procCloseBatch(p);
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

/* A session that cannot start may mean another processor holds the slot,
 * one that fenced this producer; an abort with nothing sent does not tell
 * (librdkafka then aborts locally). Committing the unchanged checkpoint
 * again asks the coordinator: fenced, this one stops. Without a checkpoint
 * yet there is nothing harmless to write, and no probe. */
static void procProbe(spProcessor *p) {
    if (!p->have_checkpoint || p->tx != TX_NONE || p->batch.open || p->stopping || p->fatal) return;
    if (procOpenBatch(p)) procCloseBatch(p);
}

static void procStartSession(spProcessor *p) {
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
        if (p->eos) procProbe(p);
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


/* --- exactly-once: Kafka transactions -------------------------------------- */

static double procSince(uint64_t start_ns) {
    return (double)(uv_hrtime() - start_ns) / 1e9;
}

static void procOnBatchTimer(uv_timer_t *t);

/* A PostgreSQL transaction with decisions joined the open batch. Without
 * memory its latency is not observed, nothing else is lost. */
static void procNoteCommit(spProcessor *p, int64_t commit_time) {
    if (p->ncommit_times == p->commit_times_cap) {
        size_t cap = p->commit_times_cap ? p->commit_times_cap * 2 : 256;
        int64_t *grown = realloc(p->commit_times, cap * sizeof(*grown));
        if (grown == NULL) return;
        p->commit_times = grown;
        p->commit_times_cap = cap;
    }
    p->commit_times[p->ncommit_times++] = commit_time;
}

/* Begins a Kafka transaction for the next whole PostgreSQL transactions. */
static bool procOpenBatch(spProcessor *p) {
    char err[700];
    spTxnStatus st;
    if (!spProducerTxnBegin(p->prod, &st, err, sizeof(err))) {
        if (!procTxnFatal(p, st, "begin_transaction", err)) procRestart(p, err);
        return false;
    }
    spBatchOpen(&p->batch, uv_now(p->loop));
    uv_timer_start(&p->batch_timer, procOnBatchTimer, (uint64_t)p->cfg.batch.interval_ms, 0);
    return true;
}

static void procOnCommitDone(spTxnStatus st, const char *why, void *arg);
static void procOnAbortDone(spTxnStatus st, const char *why, void *arg);

/* Once every report of the transaction is served on the loop, its commit
 * or abort goes to the pool (producer.h says why). */
static void procDrained(spProcessor *p) {
    if (p->stopping || p->fatal || spProducerInFlightMessages(p->prod) > 0) return;
    if (p->tx == TX_DRAIN_COMMIT) {
        p->tx = TX_BUSY;
        p->commit_started_ns = uv_hrtime();
        spProducerTxnCommit(p->prod, procOnCommitDone, p);
    } else if (p->tx == TX_DRAIN_ABORT) {
        p->tx = TX_BUSY;
        spProducerTxnAbort(p->prod, procOnAbortDone, p);
    }
}

/* The batch is at a PostgreSQL boundary and closes: its checkpoint record
 * goes last, reading pauses until the commit has returned. */
static void procCloseBatch(spProcessor *p) {
    char err[700] = "out of memory";
    p->closing_lsn = spBatchCloseLsn(&p->batch);
    p->closing_msgs = p->batch.messages;
    uv_timer_stop(&p->batch_timer);
    char *json = spCheckpointJson(p->closing_lsn, p->batch.pg_txns, p->batch.messages,
                                  p->cfg.kafka.transactional_id);
    bool sent = json && spProducerSendCheckpoint(p->prod, p->cfg.repl.slot, json,
                                                 (p->epoch & 0xffff) << TAG_SEQ_BITS | TAG_CHECKPOINT, err,
                                                 sizeof(err));
    free(json);
    if (!sent) {
        procRestart(p, err);
        return;
    }
    p->tx = TX_DRAIN_COMMIT;
    if (p->repl) spReplPause(p->repl);
    procDrained(p);
}

/* Purges the open transaction's messages; the abort follows once their
 * reports are in. */
static void procEosAbort(spProcessor *p) {
    uv_timer_stop(&p->batch_timer);
    p->tx = TX_DRAIN_ABORT;
    spProducerPurge(p->prod);
    procDrained(p);
}

/* The transaction is settled: a restart that waited for it goes on, or
 * reading resumes. */
static void procSettled(spProcessor *p) {
    p->tx = TX_NONE;
    if (p->restart_pending) {
        p->restart_pending = false;
        if (!p->stopping && !p->fatal) procScheduleRetry(p);
    } else if (p->repl && !p->stopping && !procWindowFull(p)) {
        spReplResume(p->repl);
    }
}

/* Kafka committed the closing batch: the checkpoint moves, its decisions
 * count as delivered. */
static void procCommitted(spProcessor *p) {
    spBatchCommitted(&p->batch, p->closing_lsn, uv_now(p->loop));
    int64_t now = procNowPg();
    for (size_t i = 0; i < p->ncommit_times; i++)
        dsMetricObserve(p->m_latency, (double)(now - p->commit_times[i]) / 1e6);
    p->ncommit_times = 0;
    p->have_checkpoint = true;
}

static void procOnCommitDone(spTxnStatus st, const char *why, void *arg) {
    spProcessor *p = arg;
    if (st == SP_TXN_RETRY) {
        dsLogWarn("kafka: commit_transaction: %s (calling it again)", why);
        spProducerTxnCommit(p->prod, procOnCommitDone, p);
        return;
    }
    if (procTxnFatal(p, st, "commit_transaction", why)) return;
    if (st == SP_TXN_ABORT) {
        char msg[800];
        snprintf(msg, sizeof(msg), "the Kafka transaction failed (%s): it is aborted", why);
        p->tx = TX_NONE; /* the restart aborts it */
        procRestart(p, msg);
        return;
    }
    dsMetricInc(p->m_tx_committed, 1);
    dsMetricObserve(p->m_tx_messages, (double)p->closing_msgs);
    dsMetricObserve(p->m_tx_seconds, procSince(p->commit_started_ns));
    procCommitted(p);
    procSendStatus(p, false);
    procSettled(p);
}

static void procOnAbortDone(spTxnStatus st, const char *why, void *arg) {
    spProcessor *p = arg;
    if (st == SP_TXN_RETRY) {
        spProducerTxnAbort(p->prod, procOnAbortDone, p);
        return;
    }
    if (st == SP_TXN_ABORT) st = SP_TXN_RENEW; /* an abort that needs an abort: a new handle */
    if (procTxnFatal(p, st, "abort_transaction", why)) return;
    dsMetricInc(p->m_tx_aborted, 1);
    spBatchAborted(&p->batch);
    p->ncommit_times = 0;
    procSettled(p); /* the restart that asked for the abort goes on */
}

static void procOnBatchTimer(uv_timer_t *t) {
    spProcessor *p = t->data;
    if (p->tx == TX_NONE && spBatchDue(&p->batch, uv_now(p->loop))) procCloseBatch(p);
}

/* --- exactly-once: start ---------------------------------------------------- */

static void procReadCheckpoint(uv_work_t *w) {
    spProcessor *p = w->data;
    int timeout = (p->cfg.kafka.transaction_timeout_ms > 0 ? p->cfg.kafka.transaction_timeout_ms : 60000) + 10000;
    p->ck_ok = spCheckpointRead(p->cfg.kafka.kafka, p->cfg.kafka.checkpoint_topic, p->cfg.repl.slot, timeout,
                                &p->ck_have, &p->ck_lsn, p->ck_err, sizeof(p->ck_err));
}

static void procRelease(spProcessor *p);

static void procOnCheckpointRead(uv_work_t *w, int status) {
    spProcessor *p = w->data;
    if (p->stopping) {
        procRelease(p);
        return;
    }
    p->open_handles--;
    if (!p->ck_ok) {
        dsLogError("cannot read the checkpoint: %s (retry in %u ms)", p->ck_err, p->backoff_ms);
        procScheduleRetry(p);
        return;
    }
    char lsn[24];
    if (p->ck_have)
        dsLogInfo("exactly-once: last checkpoint of slot %s is %s; transactions up to it are skipped",
                  p->cfg.repl.slot, spLsnFormat(p->ck_lsn, lsn));
    else
        dsLogInfo("exactly-once: no checkpoint of slot %s on %s yet; streaming from the slot's position",
                  p->cfg.repl.slot, p->cfg.kafka.checkpoint_topic);
    p->have_checkpoint = p->ck_have;
    spBatchInit(&p->batch, &p->cfg.batch, p->ck_have ? p->ck_lsn : 0, uv_now(p->loop));
    p->eos_ready = true;
    procStartSession(p);
}

static void procOnInitDone(spTxnStatus st, const char *why, void *arg) {
    spProcessor *p = arg;
    if (p->stopping || procTxnFatal(p, st, "init_transactions", why)) return;
    if (st != SP_TXN_OK) {
        /* A timed-out init resumes on the same handle: it is called again.
         * While the cluster refuses the producer that refusal is the news
         * (logged by the health, once a minute), not each timeout. */
        dsLogLevel level = dsKafkaHealthProblem(spProducerHealth(p->prod), NULL, 0) != DS_KAFKA_OK ? DS_LOG_DEBUG
                                                                                                   : DS_LOG_WARN;
        dsLog(level, "kafka: init_transactions: %s (retry in %u ms)", why, p->backoff_ms);
        procScheduleRetry(p);
        return;
    }
    p->txn_inited = true;
    procEosInit(p);
}

/* Exactly-once streams only once the cluster has taken the producer and
 * the checkpoint is read, which a refusing cluster (credentials, TLS)
 * delays indefinitely: the slot is made now, so that what is committed
 * meanwhile waits in it rather than precedes it. A failure here is the
 * session's to report and retry. */
static void procEosPrepareSlot(spProcessor *p) {
    char err[512];
    uint64_t lsn;
    if (!spReplPrepare(&p->cfg.repl, &lsn, err, sizeof(err)))
        dsLogWarn("replication slot %s: %s (tried again when streaming starts)", p->cfg.repl.slot, err);
}

/* Fences an earlier processor on the slot (its open transaction is
 * aborted), then reads the checkpoint, then streams; a retry resumes at
 * the step that failed. */
static void procEosInit(spProcessor *p) {
    if (!p->txn_inited) {
        spProducerTxnInit(p->prod, procOnInitDone, p);
        return;
    }
    p->ck_work.data = p;
    p->open_handles++;
    uv_queue_work(p->loop, &p->ck_work, procReadCheckpoint, procOnCheckpointRead);
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
        procEosPrepareSlot(p);
        procEosInit(p);
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
static void procRelease(spProcessor *p) {
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

/* Exactly-once's last transaction at a stop: committed when the stream is
 * at a PostgreSQL boundary, else aborted (a new start streams it again). */
static void procEosStop(spProcessor *p, int timeout_ms) {
    char err[700] = "", lsn[24];
    if (p->fatal || !p->eos_ready) return;
    if (p->tx == TX_BUSY) {
        dsLogWarn("stopping while a Kafka transaction call runs: the next start settles it (fenced and aborted, or "
                  "committed and skipped)");
        return;
    }
    if (!p->batch.open && p->tx == TX_NONE) return;
    bool commit = p->tx != TX_DRAIN_ABORT && !p->in_txn;
    if (commit && p->tx == TX_NONE) {
        p->closing_lsn = spBatchCloseLsn(&p->batch);
        p->closing_msgs = p->batch.messages;
        char *json = spCheckpointJson(p->closing_lsn, p->batch.pg_txns, p->batch.messages,
                                      p->cfg.kafka.transactional_id);
        commit = json && spProducerSendCheckpoint(p->prod, p->cfg.repl.slot, json,
                                                  (p->epoch & 0xffff) << TAG_SEQ_BITS | TAG_CHECKPOINT, err,
                                                  sizeof(err));
        free(json);
    }
    if (!commit) spProducerPurge(p->prod);
    uint64_t started = uv_hrtime();
    spTxnStatus st = spProducerTxnFinishNow(p->prod, commit, timeout_ms, err, sizeof(err));
    if (st != SP_TXN_OK) {
        dsLogWarn("stopping: %s of the last Kafka transaction: %s (the next start settles it)",
                  commit ? "commit" : "abort", err);
    } else if (commit) {
        dsMetricInc(p->m_tx_committed, 1);
        dsMetricObserve(p->m_tx_messages, (double)p->closing_msgs);
        dsMetricObserve(p->m_tx_seconds, procSince(started));
        procCommitted(p);
        dsLogInfo("stopping: last Kafka transaction committed, checkpoint %s", spLsnFormat(p->closing_lsn, lsn));
    } else {
        dsMetricInc(p->m_tx_aborted, 1);
    }
}

void spProcessorStop(spProcessor *p, int timeout_ms) {
    p->stopping = true;
    if (p->repl) spReplPause(p->repl);
    if (p->eos) procEosStop(p, timeout_ms);
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
