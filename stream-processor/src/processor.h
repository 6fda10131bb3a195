/* processor.h - the stream processor's core: decodes the replication stream,
 * turns each inserted decision into its Kafka record (or a dead-letter
 * record), produces it, and confirms the slot only up to what Kafka has
 * acknowledged (watermark.h).
 *
 * Exactly-once (a transactional producer): decisions go out in Kafka
 * transactions of whole PostgreSQL transactions, each with a checkpoint
 * record on the checkpoint topic (batch.h); the slot is confirmed only to
 * a committed checkpoint, and at start every PostgreSQL transaction at or
 * below the last checkpoint is skipped. A failure aborts the open Kafka
 * transaction and restarts from the slot as below; nothing of the aborted
 * one reaches a read_committed consumer. librdkafka's fatal error (other
 * than fencing) replaces the producer handle and starts again likewise.
 * The slot is made at start, before the cluster has taken the producer,
 * so nothing committed meanwhile is missed. (txn.c.)
 *
 * At-least-once: after any failure (replication session lost, a Kafka
 * delivery failed for good) the session is closed and started again from
 * the slot's confirmed position, so everything not yet confirmed is sent
 * again; duplicates carry the same decision_id. Back-pressure: the
 * replication socket is paused while max_in_flight messages, or
 * max_in_flight_bytes of them, wait for Kafka; the producer's own queue is
 * sized above both, so it never fills.
 *
 * Each row is published under the schema version it was stored with (its
 * schema_version column), so consumers see what the writer wrote. A version
 * the codec lacks (a newer decision API writes it) is learned from the
 * registry (ds/learn.h); while the registry cannot answer, the session is
 * restarted with back-off and the row read again later, never dead-lettered.
 */
#ifndef SP_PROCESSOR_H
#define SP_PROCESSOR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "ds/codec.h"
#include "ds/learn.h"
#include "ds/metrics.h"
#include "batch.h"
#include "producer.h"
#include "replication.h"

typedef struct spProcessor spProcessor;

typedef struct spProcessorConfig {
    spReplConfig repl;          /* strings borrowed: must outlive the processor */
    spProducerConfig kafka;     /* likewise */
    long max_in_flight;         /* messages waiting for Kafka before the stream pauses */
    size_t max_in_flight_bytes; /* likewise in key and value bytes */
    long status_interval_ms;    /* standby status update period */
    dsLearner *learner;         /* borrowed: learns row versions the codec lacks; NULL: such rows wait (never dead-lettered) */
    /* Exactly-once (kafka.transactional_id set): Kafka transactions of
     * whole PostgreSQL transactions with a checkpoint record each
     * (batch.h), bounded by batch. */
    spBatchConfig batch;
    /* The processor cannot go on (fenced by another processor on the slot:
     * code 0; a Kafka error no new producer escapes, or a slot ahead of its
     * checkpoint: 1):
     * called once, from a loop callback of its own; the caller stops it
     * (spProcessorStop) and exits with code. Required in exactly-once. */
    void (*on_exit)(int code, void *arg);
    void *exit_arg;
} spProcessorConfig;

/* Starts the producer and the replication session (retrying the session in
 * the background when PostgreSQL is not reachable yet). codec and metrics
 * are borrowed. NULL with errbuf filled on a configuration error, including
 * a slot whose WAL was lost. */
spProcessor *spProcessorNew(uv_loop_t *loop, const spProcessorConfig *cfg, dsCodec *codec, dsMetrics *metrics,
                            char *errbuf, size_t errlen);

/* Graceful stop: stops reading, waits (blocking, up to timeout_ms) for Kafka
 * to acknowledge what is in flight, confirms it, closes everything. The
 * processor is freed once the loop has run again. */
void spProcessorStop(spProcessor *p, int timeout_ms);

/* For /readyz. */
bool spProcessorStreaming(const spProcessor *p);
/* Whether the cluster refuses the producer, for /readyz and /metrics
 * (spProducerHealth). Borrowed. */
dsKafkaHealth *spProcessorKafkaHealth(const spProcessor *p);

#endif
