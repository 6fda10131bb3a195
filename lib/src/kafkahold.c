/* kafkahold.c - a partition held back at a message, then sought back to it
 * and resumed after a back-off (kafkahold.h). */
#include "ds/kafkahold.h"

#include "ds/log.h"
#include "ds/timefmt.h"

/* How long a seek may take to reach the fetcher; ours wait for it, so that
 * nothing fetched from before the seek is handed out after the resume. */
#define HOLD_SEEK_TIMEOUT_MS 2000

/* One partition in a list, for the calls that take lists. */
static rd_kafka_topic_partition_list_t *holdList(const char *topic, int32_t partition, int64_t offset) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    return l;
}

void dsKafkaHoldPartition(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t offset, dsKafkaHold *h,
                          const char *why) {
    if (h->failures == 0) {
        h->delay_ms = DS_KAFKA_HOLD_MIN_MS;
        dsLogWarn("partition %d offset %lld: held, retrying with back-off: %s", partition, (long long)offset, why);
    } else {
        dsLogDebug("partition %d offset %lld: still held (attempt %u): %s", partition, (long long)offset,
                   h->failures + 1, why);
    }
    h->failures++;
    h->held = true;
    h->offset = offset;
    h->retry_at_ms = dsTimeMonoMs() + h->delay_ms;
    h->delay_ms = h->delay_ms * 2 > DS_KAFKA_HOLD_MAX_MS ? DS_KAFKA_HOLD_MAX_MS : h->delay_ms * 2;
    rd_kafka_topic_partition_list_t *l = holdList(topic, partition, offset);
    rd_kafka_resp_err_t err = rd_kafka_pause_partitions(rk, l);
    if (!err) err = l->elems[0].err;
    rd_kafka_topic_partition_list_destroy(l);
    /* Not fatal: the seek before the resume still brings the message back;
     * only messages after it may be fetched (and skipped as held) meanwhile. */
    if (err) dsLogWarn("partition %d: cannot pause: %s", partition, rd_kafka_err2str(err));
}

/* Seeks back to the held message, then resumes; false if the seek failed. */
static bool holdResume(rd_kafka_t *rk, const char *topic, int32_t partition, dsKafkaHold *h) {
    rd_kafka_topic_partition_list_t *l = holdList(topic, partition, h->offset);
    rd_kafka_error_t *error = rd_kafka_seek_partitions(rk, l, HOLD_SEEK_TIMEOUT_MS);
    bool ok = error == NULL && l->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!ok)
        dsLogWarn("partition %d: cannot seek back to offset %lld (%s); trying again later", partition,
                  (long long)h->offset, error ? rd_kafka_error_string(error) : rd_kafka_err2str(l->elems[0].err));
    if (error) rd_kafka_error_destroy(error);
    if (ok) {
        /* A partition left paused would never be read again. */
        rd_kafka_resp_err_t err = rd_kafka_resume_partitions(rk, l);
        if (!err) err = l->elems[0].err;
        if (err) {
            dsLogWarn("partition %d: cannot resume at offset %lld (%s); trying again later", partition,
                      (long long)h->offset, rd_kafka_err2str(err));
            ok = false;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
    return ok;
}

void dsKafkaHoldResumeDue(rd_kafka_t *rk, const char *topic, dsKafkaHold *holds, size_t n) {
    int64_t now = 0;
    for (size_t p = 0; p < n; p++) {
        dsKafkaHold *h = &holds[p];
        if (!h->held) continue;
        if (now == 0) now = dsTimeMonoMs();
        if (now < h->retry_at_ms) continue;
        if (holdResume(rk, topic, (int32_t)p, h)) h->held = false;
        else h->retry_at_ms = now + h->delay_ms;
    }
}

void dsKafkaHoldDone(int32_t partition, dsKafkaHold *h) {
    if (h->failures > 0)
        dsLogInfo("partition %d offset %lld: going on after %u held attempts", partition, (long long)h->offset,
                  h->failures);
    *h = (dsKafkaHold){0};
}

void dsKafkaHoldRelease(rd_kafka_t *rk, const char *topic, int32_t partition, dsKafkaHold *h) {
    if (h->held) {
        rd_kafka_topic_partition_list_t *l = holdList(topic, partition, RD_KAFKA_OFFSET_INVALID);
        rd_kafka_resp_err_t err = rd_kafka_resume_partitions(rk, l);
        if (err) dsLogWarn("partition %d: cannot resume after revocation: %s", partition, rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(l);
    }
    *h = (dsKafkaHold){0};
}
