/* producer.h - the stream processor's Kafka producer: an idempotent
 * librdkafka producer whose delivery reports are served on the libuv loop.
 *
 * Each message carries a caller tag (for the daemon, the watermark
 * transaction sequence number); on_delivered(tag, ok, error, arg) is called
 * exactly once per message handed over successfully, on the loop thread,
 * from inside a loop callback (or from spProducerFlush). ok=false is a
 * permanent failure after librdkafka's own retries (message.timeout.ms
 * expired, message too large, fatal idempotence error, ...): the message is
 * NOT in Kafka and the caller must not acknowledge it.
 *
 * Threads: every function must be called on the loop thread. librdkafka's
 * own threads only write a byte to a pipe (rd_kafka_queue_io_event_enable)
 * that a uv_poll watches, plus log lines through dsLog (thread-safe).
 *
 * The producer keeps the loop alive (a pipe poll and a 100 ms safety timer)
 * until spProducerFree.
 *
 * Sending never blocks: when librdkafka's local queue is full the send
 * fails. The caller keeps what it hands over (spProducerInFlight,
 * spProducerInFlightBytes) below the queue's bounds, pausing its input while
 * it is above its own limits, so a full queue is an error, not flow control.
 * A record larger than message.max.bytes is refused at once
 * (spProducerTooLarge): sending it again can never succeed.
 */
#ifndef SP_PRODUCER_H
#define SP_PRODUCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ds/attrs.h"
#include "ds/kafka.h"
#include "ds/kafkahealth.h"
#include "ds/metrics.h"

typedef struct spProducer spProducer;

typedef struct spProducerConfig {
    /* Required: the cluster and how to reach it (brokers, security,
     * client id). Borrowed: read by spProducerNew only. */
    const dsKafkaOptions *kafka;
    /* compression.codec: none, gzip, snappy, lz4, zstd; NULL = none. Every
     * consumer must support it (kafka-python needs python3-lz4 for lz4). */
    const char *compression;
    const char *topic;             /* NULL = "decisions" */
    const char *dlq_topic;         /* NULL = "decisions.dlq" */
    /* How long librdkafka keeps retrying one message before reporting it
     * failed; 0 = librdkafka's default (300000). */
    int message_timeout_ms;
    /* linger.ms: how long a partition's batch waits for more messages
     * before it is sent; 0 = at once (batches still form while requests
     * are in flight, so a backlog is sent in large ones). */
    int linger_ms;
    int queue_max_messages;        /* local queue bound; 0 = librdkafka's default (100000) */
    int queue_max_kbytes;          /* likewise in KiB of payload; 0 = librdkafka's default (1 GiB) */
    /* Exactly-once: the transactional.id (NULL: not transactional, the
     * idempotent producer of at-least-once), its transaction.timeout.ms
     * (0: librdkafka's 60 s; message_timeout_ms is capped at it, as
     * librdkafka requires) and the checkpoint topic (spProducerSendCheckpoint). */
    const char *transactional_id;
    int transaction_timeout_ms;
    const char *checkpoint_topic;
    /* Counters kafka_delivered_total, kafka_delivery_failed_total and
     * kafka_dlq_total are registered here; NULL = no metrics. Borrowed: must
     * outlive the producer. */
    dsMetrics *metrics;
} spProducerConfig;

/* error: NULL when ok, else a static or short-lived string valid only
 * during the call. */
typedef void spDeliveredFn(uint64_t tag, bool ok, const char *error, void *arg);

/* Creates the producer and starts watching its queue on loop. All config
 * strings are copied by librdkafka; cfg may be freed after the call.
 * on_delivered is required. NULL with errbuf filled on failure; part of
 * the memory may then be released only by the next turn of the loop. */
spProducer *spProducerNew(uv_loop_t *loop, const spProducerConfig *cfg, spDeliveredFn *on_delivered, void *arg,
                          char *errbuf, size_t errlen);

/* Produces one decision to the topic with headers decision_id, schema_id
 * (decimal text) and source_lsn. key and value are copied (the caller keeps
 * ownership); key may be NULL (keylen 0). true = handed to librdkafka:
 * on_delivered(tag, ...) will follow exactly once. false = not queued and no
 * callback will come: errbuf says why, and the message is not in Kafka. */
DS_MUST_CHECK bool spProducerSend(spProducer *p, const void *key, size_t keylen, const void *value, size_t vallen,
                    const char *decision_id, int schema_id, const char *source_lsn, uint64_t tag, char *errbuf,
                    size_t errlen);

/* Produces a rejected row to the DLQ topic: value = row_json (the original
 * row as JSON), headers error and source_lsn (source_lsn may be NULL =
 * header omitted); key may be NULL. Strings are copied. Same result and
 * callback rules as spProducerSend. */
DS_MUST_CHECK bool spProducerSendDlq(spProducer *p, const char *key, const char *row_json, const char *error, const char *source_lsn,
                       uint64_t tag, char *errbuf, size_t errlen);

/* Whether the cluster refuses the producer (credentials, certificate, a
 * missing topic) and why, with its metrics (ds/kafkahealth.h). At start the
 * producer asks the cluster about both topics (waiting up to 5 s each for
 * an answer), so such a problem is known before the first decision.
 * Borrowed: lives as long as the producer. */
dsKafkaHealth *spProducerHealth(const spProducer *p);

/* Whether the last failed send was refused because the record is larger
 * than message.max.bytes: that one can never be sent. */
bool spProducerTooLarge(const spProducer *p);

/* Messages handed over and not yet reported (queued, in flight, or
 * delivered with the report not yet served). */
size_t spProducerInFlight(const spProducer *p);
/* Key and value bytes of the messages handed over and not yet reported. */
size_t spProducerInFlightBytes(const spProducer *p);

/* Blocks up to timeout_ms serving delivery reports (on_delivered is called
 * from inside) until nothing is in flight. For shutdown only: it stalls the
 * loop. true if everything was reported. */
DS_MUST_CHECK bool spProducerFlush(spProducer *p, int timeout_ms);

/* ---- transactions (a producer made with a transactional_id) ----------------
 *
 * The blocking calls of librdkafka's transactional API (init, commit,
 * abort) run on libuv's thread pool, one at a time, with the remaining
 * transaction time as their timeout; done(status, why, arg) follows on the
 * loop thread. commit_transaction flushes, and a flush serves delivery
 * reports on the thread that calls it, so commit and abort may only start
 * with nothing in flight (spProducerInFlightMessages() == 0): every report
 * is then served on the loop. Nothing may be sent while a call runs. */
typedef enum {
    SP_TXN_OK,
    SP_TXN_RETRY,  /* timed out or the coordinator is not available yet: call again */
    SP_TXN_ABORT,  /* the transaction failed: abort it and start it again */
    SP_TXN_FENCED, /* another producer with this transactional.id took over: stop */
    SP_TXN_RENEW,  /* this handle is unusable (librdkafka's fatal error, not fencing): spProducerRenew */
    SP_TXN_FATAL,  /* no producer can go on (its configuration, the brokers' version): stop */
} spTxnStatus;
typedef void spTxnDoneFn(spTxnStatus status, const char *why, void *arg);

/* init_transactions: fences an earlier producer with the same
 * transactional.id and completes or aborts its open transaction. It waits
 * timeout_ms at most (a shutdown waits that long for it too); one that
 * timed out (SP_TXN_RETRY) goes on in the background and is resumed by
 * the next call, which also asks for the producer id at once (librdkafka
 * alone asks again every 500 ms). */
void spProducerTxnInit(spProducer *p, int timeout_ms, spTxnDoneFn *done, void *arg);
/* begin_transaction (local, does not block). false with errbuf on failure;
 * *status says what to do. */
bool spProducerTxnBegin(spProducer *p, spTxnStatus *status, char *errbuf, size_t errlen);
void spProducerTxnCommit(spProducer *p, spTxnDoneFn *done, void *arg);
/* Purges what is queued or in flight (their reports follow on the loop,
 * failed) before abort may start: call, wait for
 * spProducerInFlightMessages() == 0, then spProducerTxnAbort. */
void spProducerPurge(spProducer *p);
void spProducerTxnAbort(spProducer *p, spTxnDoneFn *done, void *arg);
/* Blocking commit or abort on the calling (loop) thread, for shutdown. */
spTxnStatus spProducerTxnFinishNow(spProducer *p, bool commit, int timeout_ms, char *errbuf, size_t errlen);
/* Replaces the librdkafka handle by a new one made from cfg (the same as
 * at spProducerNew; borrowed), keeping the health, the metrics and the
 * loop side. What was in flight goes without reports (the caller streams
 * it again); the new handle needs spProducerTxnInit. Not while a call runs
 * on the pool, nor from inside on_delivered. false with errbuf: no handle
 * now (call again). */
DS_MUST_CHECK bool spProducerRenew(spProducer *p, const spProducerConfig *cfg, char *errbuf, size_t errlen);
/* Whether a transactional call runs on the pool. */
bool spProducerTxnBusy(const spProducer *p);
/* Messages sent and not yet reported (the producer's own count, unlike
 * spProducerInFlight, which counts librdkafka's queued events too). */
size_t spProducerInFlightMessages(const spProducer *p);
/* The checkpoint record: key, value (JSON) on the checkpoint topic.
 * Same result and callback rules as spProducerSend. */
DS_MUST_CHECK bool spProducerSendCheckpoint(spProducer *p, const char *key, const char *value, uint64_t tag,
                                            char *errbuf, size_t errlen);
/* SP_TXN_OK, or whether librdkafka raised a fatal error (SP_TXN_FENCED,
 * SP_TXN_RENEW or SP_TXN_FATAL), with why. */
spTxnStatus spProducerFatal(spProducer *p, char *why, size_t len);

/* Destroys the librdkafka handle (messages still in flight are dropped
 * WITHOUT callbacks: flush first; a transactional call still running on
 * the pool is waited for by the loop first) and closes the uv handles; the memory is
 * released from their close callbacks, so the loop must run once more.
 * Must not be called from inside on_delivered. NULL is ignored. */
void spProducerFree(spProducer *p);

#endif
