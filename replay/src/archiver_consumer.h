/* archiver_consumer.h - decision-archiver's Kafka side: a consumer group
 * member on the decisions topic handing each message to the archiver
 * (archiver.h) and committing the offsets it is given, plus what the
 * operator sees of it (/readyz's reason, /metrics).
 *
 * The member is static (ds/kafkagroup.h: a restarted archiver gets its
 * partitions back without a rebalance) and reads read_committed. A
 * message the archiver cannot handle now holds its partition there
 * (ds/kafkahold.h) and comes again after a back-off; the other partitions
 * go on. Revoked partitions drop their unfinished files: their offsets
 * were not committed, so the next owner writes them again under the same
 * names. A failed offset commit is not fatal for the same reason.
 *
 * Refused credentials, an untrusted broker certificate or a missing topic
 * do not stop it: ds/kafkahealth.h logs the problem, arConsumerHeldUp()
 * says it, and librdkafka retries until the fix. Fenced by a member with
 * the same group.instance.id, it joins again once (that member can be
 * itself, after a coordinator outage longer than its session); fenced again
 * within two session timeouts, or any other fatal consumer error, stops it,
 * naming the option to change.
 *
 * One thread (the caller's) does everything, the HTTP endpoint included:
 * arConsumerStep() between the loop's turns.
 */
#ifndef AR_CONSUMER_H
#define AR_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>

#include "archiver.h"
#include "ds/kafka.h"
#include "ds/kafkagroup.h"
#include "ds/kafkahealth.h"
#include "ds/metrics.h"

typedef struct arConsumerConfig {
    const dsKafkaOptions *kafka; /* borrowed, must outlive the consumer: a fenced member joins again */
    const char *topic;           /* copied */
    dsKafkaGroup group;          /* its strings copied */
    const char *env_prefix;      /* for messages naming a variable: "ARCHIVER_" */
} arConsumerConfig;

typedef struct arConsumer arConsumer;

/* Joins the group (subscribes) and makes the archiver of files. NULL with
 * errbuf filled on a configuration error, naming the option at fault. */
arConsumer *arConsumerNew(const arConsumerConfig *cfg, const arFiles *files, char *errbuf, size_t errlen);
/* Leaves librdkafka (closing the consumer) and frees; unfinished files are
 * dropped. */
void arConsumerFree(arConsumer *c);

/* Polls one message (waiting up to timeout_ms), archives it, commits
 * files past max-age and resumes held partitions that are due. false on a
 * storage failure or a fatal consumer error (logged): the open files are
 * dropped and the archiver must exit; a restart re-reads from the
 * committed offsets. */
bool arConsumerStep(arConsumer *c, int timeout_ms);
/* A clean stop: commits every open file and its offset. false on a
 * storage failure. */
bool arConsumerFinish(arConsumer *c);

/* Why the archiver is not archiving all it should now, for /readyz:
 * "kafka" (the cluster refuses it: dsKafkaHealthProblem's message) or
 * "held" (partitions held at a message: a schema not learned yet, a file
 * another archiver is still writing); the reason in why. NULL when it is
 * not held up. */
const char *arConsumerHeldUp(arConsumer *c, char *why, size_t len);

/* Brings the archiver's metrics in m up to date (registering them on the
 * first call; always the same m): archiver_records_total,
 * archiver_files_total, archiver_bytes_total, archiver_quarantined_total,
 * archiver_open_files, archiver_oldest_open_file_age_seconds,
 * archiver_commit_lag_records, archiver_partitions_assigned,
 * archiver_partitions_held, archiver_assignments_total and the Kafka
 * problem metrics. */
void arConsumerPublish(arConsumer *c, dsMetrics *m);

#endif
