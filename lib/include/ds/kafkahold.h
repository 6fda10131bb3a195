/* kafkahold.h - holding one partition of a Kafka consumer back at a message
 * that cannot be handled yet, and handing it to the consumer again later,
 * with back-off, while the other partitions go on.
 *
 * The consumers (decision-archiver, the variable store's feed) use it when a
 * record's schema cannot be fetched right now (the registry is down): the
 * record must be neither skipped nor its offset committed, and one record
 * waiting must not stop the partitions that have nothing to wait for.
 *
 * Holding pauses the partition, which makes librdkafka drop what it had
 * fetched after the message. When the back-off is over the partition is
 * sought back to the message and resumed (resuming alone would go on after
 * the last message returned, that is after the held one). The delay doubles
 * with each failure of a series, from DS_KAFKA_HOLD_MIN_MS up to
 * DS_KAFKA_HOLD_MAX_MS. Times are monotonic.
 *
 * One dsKafkaHold per partition, owned by the consumer's thread.
 */
#ifndef DS_KAFKAHOLD_H
#define DS_KAFKAHOLD_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_KAFKA_HOLD_MIN_MS 200
#define DS_KAFKA_HOLD_MAX_MS 10000

typedef struct dsKafkaHold {
    bool held;           /* paused, waiting for retry_at_ms */
    int64_t offset;      /* the message to read again */
    int64_t retry_at_ms; /* monotonic */
    long delay_ms;       /* the back-off after the next failure */
    unsigned failures;   /* of the current series; 0 when none */
} dsKafkaHold;

/* Holds the partition at offset (the message that could not be handled,
 * for the reason why). Logs why at the first failure of a series, as a
 * warning, and at debug level for the next ones, so a registry down for an
 * hour does not fill the log. */
void dsKafkaHoldPartition(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t offset, dsKafkaHold *h,
                          const char *why);

/* Seeks back and resumes every held partition of holds[0..n) (indexed by
 * partition) whose back-off is over. A seek that fails keeps the partition
 * held for another round: resuming without it would skip the message. */
void dsKafkaHoldResumeDue(rd_kafka_t *rk, const char *topic, dsKafkaHold *holds, size_t n);

/* The partition's message at h->offset was handled (one way or the
 * other): ends the series, logging how many attempts it took if it had
 * failed before. */
void dsKafkaHoldDone(int32_t partition, dsKafkaHold *h);

/* The partition was revoked: resumes it in librdkafka (a pause outlives a
 * revocation) and forgets the series; its next owner reads from the
 * committed offset, which is never past a held message. */
void dsKafkaHoldRelease(rd_kafka_t *rk, const char *topic, int32_t partition, dsKafkaHold *h);

#endif
