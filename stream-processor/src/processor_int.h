/* processor_int.h - the stream processor's state, shared by its two
 * files and no one else: processor.c owns it (makes and frees it, runs the
 * replication session, the rows, the status updates, at-least-once
 * delivery) and txn.c runs the exactly-once state machine on it (Kafka
 * transactions, the checkpoint read at start, the producer's renewal),
 * reading and writing the exactly-once fields. Every function here runs on
 * the loop thread. Pointers in struct spProcessor are owned by it unless
 * marked (cfg's strings and codec are the caller's of spProcessorNew). */
#ifndef SP_PROCESSOR_INT_H
#define SP_PROCESSOR_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "processor.h"
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
    /* Exactly-once (see processor.h): txn.c's. */
    bool eos;
    bool txn_inited;       /* init_transactions succeeded */
    uint64_t init_started; /* loop time of this handle's first init call; 0: none yet */
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
    bool ck_running; /* ck_work is on the pool */
    unsigned renewals, ck_renewals; /* producer handles renewed so far; when the read began */
    bool ck_ok, ck_have;
    uint64_t ck_lsn;
    char ck_err[600];
    bool fatal;
    bool renewing; /* the producer handle is replaced from the retry timer */
    int exit_code;
    dsMetric *m_tx_committed, *m_tx_aborted, *m_tx_messages, *m_tx_seconds, *m_renewals;
    /* Commit times of the open batch's PostgreSQL transactions with
     * decisions, observed as commit-to-ack latency when Kafka commits it. */
    int64_t *commit_times;
    size_t ncommit_times, commit_times_cap, messages_at_begin;
};

/* processor.c: the session and its life cycle. */
int64_t procNowPg(void);
void procOnRetry(uv_timer_t *t);
void procFatal(spProcessor *p, int code, const char *why);
void procScheduleRetry(spProcessor *p);
void procRestart(spProcessor *p, const char *why);
void procSendStatus(spProcessor *p, bool reply);
bool procWindowFull(const spProcessor *p);
void procStartSession(spProcessor *p);
void procRelease(spProcessor *p);

/* txn.c: exactly-once. */
/* Whether st (of the transactional call what) ends the processor or its
 * producer handle; true: handled (exit, or renewal under way). */
bool txnFatal(spProcessor *p, spTxnStatus st, const char *what, const char *why);
/* The same for librdkafka's fatal error, if one was raised. */
bool txnCheckFatal(spProcessor *p);
/* From the retry timer: the new producer handle, then txnInit. */
void txnRenew(spProcessor *p);
/* The flush position exactly-once may confirm. */
uint64_t txnFlush(const spProcessor *p);
/* On the status timer: a checkpoint-only transaction when idle. */
void txnIdleCheckpoint(spProcessor *p);
void txnNoteCommit(spProcessor *p, int64_t commit_time);
bool txnOpenBatch(spProcessor *p);
void txnCloseBatch(spProcessor *p);
/* After each delivery report: a commit or abort waiting for the last one. */
void txnDrained(spProcessor *p);
void txnAbort(spProcessor *p);
/* At start: the slot now, then init, the checkpoint, the session. */
void txnPrepareSlot(spProcessor *p);
void txnInit(spProcessor *p);
/* A session that cannot start: is this processor fenced? */
void txnProbe(spProcessor *p);
/* At a stop: the last transaction committed or aborted, blocking. */
void txnStop(spProcessor *p, int timeout_ms);

#endif
