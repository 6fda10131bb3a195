/* checkpoint.h - the exactly-once mode's reads of the cluster at start:
 * the last committed checkpoint of a slot, and whether the cluster is
 * librdkafka's mock, which accepts the transactional calls without their
 * meaning (its EndTxn writes no markers, its Fetch ignores
 * isolation.level, so read_committed consumers see aborted records).
 *
 * Both block (a consumer handle of their own, made and destroyed inside);
 * the processor runs the checkpoint read on libuv's thread pool. */
#ifndef SP_CHECKPOINT_H
#define SP_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/kafka.h"

/* Reads the newest record of key slot on topic with
 * isolation.level=read_committed: *have = false when there is none or it
 * is a tombstone (null value), else *lsn is its "lsn". false with errbuf
 * filled when the topic does not exist, a record cannot be parsed, or
 * timeout_ms passes first (an open transaction of another writer holds the
 * topic's stable offset back until it ends). */
bool spCheckpointRead(const dsKafkaOptions *o, const char *topic, const char *slot, int timeout_ms, bool *have,
                      uint64_t *lsn, char *errbuf, size_t errlen);

/* 1: the cluster's id is that of librdkafka's mock cluster ("mockCluster…");
 * 0: another cluster, one that told its id (errbuf empty) or refused this
 * client's credentials or TLS handshake, which the mock never asks for
 * (errbuf: the refusal, as kafkahealth.h words it); -1: no answer within
 * timeout_ms (errbuf says so). */
int spClusterIsMock(const dsKafkaOptions *o, int timeout_ms, char *errbuf, size_t errlen);

#endif
