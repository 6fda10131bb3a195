/* txn.c - the stream processor's exactly-once mode: Kafka transactions
 * closed at PostgreSQL commit boundaries with a checkpoint record, their
 * commit or abort on libuv's pool, the start (fence, checkpoint, session)
 * and the producer's renewal after librdkafka's fatal error (see
 * processor.h for the design, processor_int.h for who owns what). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ds/log.h"
#include "processor_int.h"

/* init_transactions' wait per call. A processor killed with its
 * transaction open leaves the broker aborting it, and the new producer's
 * id request is refused meanwhile (CONCURRENT_TRANSACTIONS); librdkafka
 * asks again every 500 ms, each call asks at once: short calls during
 * TXN_INIT_QUICK_MS, then long ones with the back-off (a cluster that does
 * not answer; a shutdown waits for the call that long at most). */
#define TXN_INIT_SLICE_MS 50
#define TXN_INIT_QUICK_MS 5000
#define TXN_INIT_MS 10000

static void txnOnBatchTimer(uv_timer_t *t);
static void txnOnCommitDone(spTxnStatus st, const char *why, void *arg);
static void txnOnAbortDone(spTxnStatus st, const char *why, void *arg);

/* librdkafka's fatal error ends the producer handle, not the processor
 * (an outage of the transaction coordinator can leave it so): the session
 * is dropped, and from a timer (this may run inside the handle's own poll)
 * a new handle inits, which aborts what the old one left open, reads the
 * checkpoint and streams again from the slot, as a start does. */
static void txnRenewSoon(spProcessor *p, const char *what, const char *why) {
    if (p->renewing || p->fatal) return;
    dsLogError("%s: the Kafka producer cannot go on (%s): a new one takes its place and streaming starts again "
               "from the slot", what, why);
    p->renewing = true;
    p->renewals++;
    dsMetricInc(p->m_renewals, 1);
    p->txn_inited = p->eos_ready = false;
    p->init_started = 0;
    p->tx = TX_NONE;
    p->restart_pending = false;
    p->ncommit_times = 0;
    uv_timer_stop(&p->batch_timer);
    spBatchAborted(&p->batch);
    procRestart(p, why);
    uv_timer_start(&p->retry, procOnRetry, 0, 0);
}

void txnRenew(spProcessor *p) {
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
    txnInit(p);
}

/* Fenced: by another processor on the slot (then this one is a zombie and
 * stops), or by the transaction coordinator, which bumps the producer's
 * epoch itself when a transaction stays open past transaction-timeout (a
 * cluster away that long). PostgreSQL tells them apart: a zombie's slot is
 * streamed by another backend. When it cannot say, the zombie is assumed,
 * as two processors taking the slot from each other would be worse. */
static bool txnZombie(spProcessor *p) {
    char err[512];
    int holder = spReplSlotHolder(&p->cfg.repl, err, sizeof(err));
    if (holder < 0)
        dsLogWarn("fenced, and PostgreSQL cannot say who streams slot %s (%s): taking this processor for a zombie",
                  p->cfg.repl.slot, err);
    return holder != 0 && holder != spReplBackendPid(p->repl);
}

/* A status from the transactional producer that ends the processor, or
 * its producer handle. */
bool txnFatal(spProcessor *p, spTxnStatus st, const char *what, const char *why) {
    char msg[1200];
    if (st == SP_TXN_FENCED && (p->renewing || p->fatal)) return true; /* being handled */
    if (st == SP_TXN_FENCED && !txnZombie(p)) {
        snprintf(msg, sizeof(msg), "%s; no other process streams slot %s, so the coordinator fenced it (a "
                 "transaction open longer than transaction-timeout)", why, p->cfg.repl.slot);
        txnRenewSoon(p, what, msg);
        return true;
    }
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
        txnRenewSoon(p, what, why);
        return true;
    }
    return false;
}

/* Whether librdkafka raised a fatal error (it does so when fenced). */
bool txnCheckFatal(spProcessor *p) {
    char why[600];
    if (!p->eos) return false;
    return txnFatal(p, spProducerFatal(p->prod, why, sizeof(why)), "Kafka", why);
}

/* The flush position exactly-once may confirm: the committed checkpoint,
 * within what this session has seen of the server. */
uint64_t txnFlush(const spProcessor *p) {
    uint64_t flush = p->batch.checkpoint;
    return p->server_end > 0 && flush > p->server_end ? p->server_end : flush;
}

/* Exactly-once with nothing open: the server's position (idle time,
 * foreign WAL) moves the checkpoint by a transaction of its own, at most
 * once per idle period, so the slot is confirmed and WAL does not pile up. */
void txnIdleCheckpoint(spProcessor *p) {
    if (!p->eos || !p->eos_ready || p->repl == NULL || p->tx != TX_NONE || p->in_txn || p->stopping || p->fatal)
        return;
    uint64_t target = spBatchIdleTarget(&p->batch, p->server_end, uv_now(p->loop));
    if (target == 0 || !txnOpenBatch(p)) return;
    p->batch.end_lsn = target;
    txnCloseBatch(p);
}

/* A session that cannot start may mean another processor holds the slot,
 * one that fenced this producer; an abort with nothing sent does not tell
 * (librdkafka then aborts locally). Committing the unchanged checkpoint
 * again asks the coordinator: fenced, this one stops. Without a checkpoint
 * yet there is nothing harmless to write, and no probe. */
void txnProbe(spProcessor *p) {
    if (!p->have_checkpoint || p->tx != TX_NONE || p->batch.open || p->stopping || p->fatal) return;
    if (txnOpenBatch(p)) txnCloseBatch(p);
}

static double txnSince(uint64_t start_ns) {
    return (double)(uv_hrtime() - start_ns) / 1e9;
}

/* A PostgreSQL transaction with decisions joined the open batch. Without
 * memory its latency is not observed, nothing else is lost. */
void txnNoteCommit(spProcessor *p, int64_t commit_time) {
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
bool txnOpenBatch(spProcessor *p) {
    char err[700];
    spTxnStatus st;
    if (!spProducerTxnBegin(p->prod, &st, err, sizeof(err))) {
        if (!txnFatal(p, st, "begin_transaction", err)) procRestart(p, err);
        return false;
    }
    spBatchOpen(&p->batch, uv_now(p->loop));
    uv_timer_start(&p->batch_timer, txnOnBatchTimer, (uint64_t)p->cfg.batch.interval_ms, 0);
    return true;
}

/* Once every report of the transaction is served on the loop, its commit
 * or abort goes to the pool (producer.h says why). */
void txnDrained(spProcessor *p) {
    if (p->stopping || p->fatal || spProducerInFlightMessages(p->prod) > 0) return;
    if (p->tx == TX_DRAIN_COMMIT) {
        p->tx = TX_BUSY;
        p->commit_started_ns = uv_hrtime();
        spProducerTxnCommit(p->prod, txnOnCommitDone, p);
    } else if (p->tx == TX_DRAIN_ABORT) {
        p->tx = TX_BUSY;
        spProducerTxnAbort(p->prod, txnOnAbortDone, p);
    }
}

/* The batch is at a PostgreSQL boundary and closes: its checkpoint record
 * goes last, reading pauses until the commit has returned. */
void txnCloseBatch(spProcessor *p) {
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
    txnDrained(p);
}

/* Purges the open transaction's messages; the abort follows once their
 * reports are in. */
void txnAbort(spProcessor *p) {
    uv_timer_stop(&p->batch_timer);
    p->tx = TX_DRAIN_ABORT;
    spProducerPurge(p->prod);
    txnDrained(p);
}

/* The transaction is settled: a restart that waited for it goes on, or
 * reading resumes. */
static void txnSettled(spProcessor *p) {
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
static void txnCommitted(spProcessor *p) {
    spBatchCommitted(&p->batch, p->closing_lsn, uv_now(p->loop));
    int64_t now = procNowPg();
    for (size_t i = 0; i < p->ncommit_times; i++)
        dsMetricObserve(p->m_latency, (double)(now - p->commit_times[i]) / 1e6);
    p->ncommit_times = 0;
    p->have_checkpoint = true;
}

static void txnOnCommitDone(spTxnStatus st, const char *why, void *arg) {
    spProcessor *p = arg;
    if (st == SP_TXN_RETRY) {
        dsLogWarn("kafka: commit_transaction: %s (calling it again)", why);
        spProducerTxnCommit(p->prod, txnOnCommitDone, p);
        return;
    }
    if (txnFatal(p, st, "commit_transaction", why)) return;
    if (st == SP_TXN_ABORT) {
        char msg[800];
        snprintf(msg, sizeof(msg), "the Kafka transaction failed (%s): it is aborted", why);
        p->tx = TX_NONE; /* the restart aborts it */
        procRestart(p, msg);
        return;
    }
    dsMetricInc(p->m_tx_committed, 1);
    dsMetricObserve(p->m_tx_messages, (double)p->closing_msgs);
    dsMetricObserve(p->m_tx_seconds, txnSince(p->commit_started_ns));
    txnCommitted(p);
    procSendStatus(p, false);
    txnSettled(p);
}

static void txnOnAbortDone(spTxnStatus st, const char *why, void *arg) {
    spProcessor *p = arg;
    if (st == SP_TXN_RETRY) {
        spProducerTxnAbort(p->prod, txnOnAbortDone, p);
        return;
    }
    if (st == SP_TXN_ABORT) st = SP_TXN_RENEW; /* an abort that needs an abort: a new handle */
    if (txnFatal(p, st, "abort_transaction", why)) return;
    dsMetricInc(p->m_tx_aborted, 1);
    spBatchAborted(&p->batch);
    p->ncommit_times = 0;
    txnSettled(p); /* the restart that asked for the abort goes on */
}

static void txnOnBatchTimer(uv_timer_t *t) {
    spProcessor *p = t->data;
    if (p->tx == TX_NONE && spBatchDue(&p->batch, uv_now(p->loop))) txnCloseBatch(p);
}

static void txnReadCheckpoint(uv_work_t *w) {
    spProcessor *p = w->data;
    int timeout = (p->cfg.kafka.transaction_timeout_ms > 0 ? p->cfg.kafka.transaction_timeout_ms : 60000) + 10000;
    p->ck_ok = spCheckpointRead(p->cfg.kafka.kafka, p->cfg.kafka.checkpoint_topic, p->cfg.repl.slot, timeout,
                                &p->ck_have, &p->ck_lsn, p->ck_err, sizeof(p->ck_err));
}

static void txnOnCheckpointRead(uv_work_t *w, int status) {
    spProcessor *p = w->data;
    if (p->stopping) {
        procRelease(p);
        return;
    }
    p->open_handles--;
    p->ck_running = false;
    if (p->ck_renewals != p->renewals) { /* read for a handle renewed since: read again after its init */
        if (p->txn_inited && !p->renewing) txnInit(p);
        return;
    }
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

/* Whether init_transactions is still in its quick first seconds. */
static bool txnInitQuick(const spProcessor *p) {
    return uv_now(p->loop) - p->init_started < TXN_INIT_QUICK_MS;
}

static void txnOnInitDone(spTxnStatus st, const char *why, void *arg) {
    spProcessor *p = arg;
    if (p->stopping || txnFatal(p, st, "init_transactions", why)) return;
    if (st == SP_TXN_RETRY && txnInitQuick(p)) {
        dsLogDebug("kafka: init_transactions: %s (called again)", why);
        txnInit(p);
        return;
    }
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
    txnInit(p);
}

/* Exactly-once streams only once the cluster has taken the producer and
 * the checkpoint is read, which a refusing cluster (credentials, TLS)
 * delays indefinitely: the slot is made now, so that what is committed
 * meanwhile waits in it rather than precedes it. A failure here is the
 * session's to report and retry. */
void txnPrepareSlot(spProcessor *p) {
    char err[512];
    uint64_t lsn;
    if (!spReplPrepare(&p->cfg.repl, &lsn, err, sizeof(err)))
        dsLogWarn("replication slot %s: %s (tried again when streaming starts)", p->cfg.repl.slot, err);
}

/* Fences an earlier processor on the slot (its open transaction is
 * aborted), then reads the checkpoint, then streams; a retry resumes at
 * the step that failed. */
void txnInit(spProcessor *p) {
    if (!p->txn_inited) {
        if (p->init_started == 0) p->init_started = uv_now(p->loop);
        spProducerTxnInit(p->prod, txnInitQuick(p) ? TXN_INIT_SLICE_MS : TXN_INIT_MS, txnOnInitDone, p);
        return;
    }
    if (p->ck_running) return; /* its end calls this again */
    p->ck_running = true;
    p->ck_renewals = p->renewals;
    p->ck_work.data = p;
    p->open_handles++;
    uv_queue_work(p->loop, &p->ck_work, txnReadCheckpoint, txnOnCheckpointRead);
}

/* Exactly-once's last transaction at a stop: committed when the stream is
 * at a PostgreSQL boundary, else aborted (a new start streams it again). */
void txnStop(spProcessor *p, int timeout_ms) {
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
        dsMetricObserve(p->m_tx_seconds, txnSince(started));
        txnCommitted(p);
        dsLogInfo("stopping: last Kafka transaction committed, checkpoint %s", spLsnFormat(p->closing_lsn, lsn));
    } else {
        dsMetricInc(p->m_tx_aborted, 1);
    }
}
