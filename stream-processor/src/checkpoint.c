/* checkpoint.c - reading a slot's checkpoint, recognising the mock cluster
 * (see checkpoint.h). */
#include "checkpoint.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "ds/kafkahealth.h"
#include "ds/timefmt.h"

#define CK_MAX_PARTITIONS 64

/* on_error (may be NULL) gets the handle's errors from rd_kafka_poll. */
static rd_kafka_t *ckConsumer(const dsKafkaOptions *o, void (*on_error)(rd_kafka_t *, int, const char *, void *),
                              void *opaque, char *errbuf, size_t errlen) {
    rd_kafka_conf_t *conf = dsKafkaConfNew(o, errbuf, errlen);
    if (conf == NULL) return NULL;
    if (on_error) {
        rd_kafka_conf_set_error_cb(conf, on_error);
        rd_kafka_conf_set_opaque(conf, opaque);
    }
    /* A group id only because librdkafka's consumer wants one; nothing is
     * ever committed under it, no subscription joins it. */
    if (!dsKafkaConfSet(conf, "group.id", "stream-processor-checkpoint-reader", errbuf, errlen) ||
        !dsKafkaConfSet(conf, "isolation.level", "read_committed", errbuf, errlen) ||
        !dsKafkaConfSet(conf, "enable.partition.eof", "true", errbuf, errlen) ||
        /* The read ends at EOF, which a fetch at the end reports only once
         * the broker gave up waiting for more: not librdkafka's 500 ms. */
        !dsKafkaConfSet(conf, "fetch.wait.max.ms", "10", errbuf, errlen) ||
        !dsKafkaConfSet(conf, "enable.auto.commit", "false", errbuf, errlen) ||
        !dsKafkaConfSet(conf, "enable.auto.offset.store", "false", errbuf, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(errbuf, errlen, "kafka: cannot create the checkpoint reader: %s", err);
    }
    return rk;
}

/* Errors of the consumer asking for the cluster id, served by rd_kafka_poll
 * on the asking thread. */
typedef struct ckRefusal {
    const dsKafkaOptions *o;
    bool refused;
    char msg[900];
} ckRefusal;

static void ckOnError(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    ckRefusal *r = opaque;
    if (!r->refused && dsKafkaClassify(r->o, NULL, (rd_kafka_resp_err_t)err, reason, r->msg, sizeof(r->msg)) != DS_KAFKA_OK)
        r->refused = true;
}

int spClusterIsMock(const dsKafkaOptions *o, int timeout_ms, char *errbuf, size_t errlen) {
    ckRefusal refusal = {o, false, ""};
    rd_kafka_t *rk = ckConsumer(o, ckOnError, &refusal, errbuf, errlen);
    if (rk == NULL) return -1;
    int64_t deadline = dsTimeMonoMs() + timeout_ms;
    char *id = NULL;
    /* In slices, so that a refusal ends the wait at once: the mock has
     * neither SASL nor TLS, so a cluster that refuses credentials or a
     * handshake is a real one, and its id would only come with the fix.
     * A metadata request, because rd_kafka_clusterid only waits for one,
     * which a new handle sends by itself only after a second. */
    while (id == NULL && !refusal.refused && dsTimeMonoMs() < deadline) {
        int64_t start = dsTimeMonoMs(), slice = deadline - start < 200 ? deadline - start : 200;
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, NULL, &md, (int)slice) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
            id = rd_kafka_clusterid(rk, 0);
        }
        /* the rest of a slice that failed at once (brokers down) */
        int64_t rest = id ? 0 : start + slice - dsTimeMonoMs();
        rd_kafka_poll(rk, rest > 0 ? (int)rest : 0);
    }
    int mock = id != NULL ? strncmp(id, "mockCluster", 11) == 0 : refusal.refused ? 0 : -1;
    if (refusal.refused && id == NULL) snprintf(errbuf, errlen, "%s", refusal.msg);
    else if (id == NULL) snprintf(errbuf, errlen, "the cluster did not tell its id within %d ms", timeout_ms);
    else if (errlen) errbuf[0] = '\0';
    if (id) rd_kafka_mem_free(rk, id);
    rd_kafka_destroy(rk);
    return mock;
}

typedef struct ckPart {
    int64_t low, high, start;
    bool eof; /* read up to high */
} ckPart;

/* The partitions of topic and their offsets; false with errbuf. */
static bool ckPartitions(rd_kafka_t *rk, const char *topic, ckPart *parts, int *n, int64_t deadline, char *errbuf,
                         size_t errlen) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, (int)(deadline - dsTimeMonoMs()))
                                  : RD_KAFKA_RESP_ERR__INVALID_ARG;
    bool ok = err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1;
    if (ok && md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        snprintf(errbuf, errlen,
                 "checkpoint topic %s does not exist: create it (cleanup.policy=compact, 1 partition; "
                 "deploy/kafka-cluster.sh and dev-kafka do) or choose --delivery=at-least-once", topic);
        ok = false;
    } else if (ok && md->topics[0].err) {
        snprintf(errbuf, errlen, "checkpoint topic %s: %s", topic, rd_kafka_err2str(md->topics[0].err));
        ok = false;
    } else if (!ok) {
        snprintf(errbuf, errlen, "checkpoint topic %s: no metadata: %s", topic, rd_kafka_err2str(err));
    }
    *n = ok ? md->topics[0].partition_cnt : 0;
    if (*n > CK_MAX_PARTITIONS) *n = CK_MAX_PARTITIONS;
    for (int i = 0; ok && i < *n; i++) {
        err = rd_kafka_query_watermark_offsets(rk, topic, i, &parts[i].low, &parts[i].high,
                                               (int)(deadline - dsTimeMonoMs()));
        if (err) {
            snprintf(errbuf, errlen, "checkpoint topic %s [%d]: offsets: %s", topic, i, rd_kafka_err2str(err));
            ok = false;
        }
    }
    if (md) rd_kafka_metadata_destroy(md);
    if (rkt) rd_kafka_topic_destroy(rkt);
    return ok;
}

/* Reads every partition from its start to its high watermark (EOF at or
 * past it: read_committed stops at the stable offset, which an open
 * transaction holds back), keeping the newest record of key slot. */
/* The newest record of the slot's key seen so far: only that one is parsed,
 * so a damaged older record (a hand-written one, say) does not matter. */
typedef struct ckNewest {
    bool found;
    bool tombstone;
    char *value; /* malloc'd copy */
    size_t len;
} ckNewest;

static bool ckKeep(ckNewest *nw, const rd_kafka_message_t *m, char *errbuf, size_t errlen) {
    free(nw->value);
    nw->value = NULL;
    nw->found = true;
    nw->tombstone = m->payload == NULL;
    nw->len = m->len;
    if (nw->tombstone) return true;
    if ((nw->value = malloc(m->len ? m->len : 1)) == NULL) {
        snprintf(errbuf, errlen, "out of memory reading the checkpoint");
        return false;
    }
    memcpy(nw->value, m->payload, m->len);
    return true;
}

static bool ckScan(rd_kafka_t *rk, const char *topic, const char *slot, ckPart *parts, int n, int64_t deadline,
                   ckNewest *nw, char *errbuf, size_t errlen) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    int left = 0;
    for (int i = 0; i < n; i++) {
        parts[i].eof = parts[i].start >= parts[i].high;
        if (parts[i].eof) continue;
        rd_kafka_topic_partition_list_add(l, topic, i)->offset = parts[i].start;
        left++;
    }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    bool ok = true;
    size_t slen = strlen(slot);
    while (ok && left > 0) {
        int64_t remain = deadline - dsTimeMonoMs();
        if (remain <= 0) {
            snprintf(errbuf, errlen, "checkpoint topic %s: not read to its end in time (an open transaction holds it?)",
                     topic);
            ok = false;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, remain > 200 ? 200 : (int)remain);
        if (m == NULL) continue;
        int32_t pi = m->partition;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (pi >= 0 && pi < n && !parts[pi].eof && m->offset >= parts[pi].high) {
                parts[pi].eof = true;
                left--;
            }
        } else if (m->err) {
            snprintf(errbuf, errlen, "checkpoint topic %s: %s", topic, rd_kafka_message_errstr(m));
            ok = false;
        } else if (m->key_len == slen && memcmp(m->key, slot, slen) == 0) {
            ok = ckKeep(nw, m, errbuf, errlen);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(rk, NULL);
    return ok;
}

bool spCheckpointRead(const dsKafkaOptions *o, const char *topic, const char *slot, int timeout_ms, bool *have,
                      uint64_t *lsn, char *errbuf, size_t errlen) {
    int64_t deadline = dsTimeMonoMs() + timeout_ms;
    rd_kafka_t *rk = ckConsumer(o, NULL, NULL, errbuf, errlen);
    if (rk == NULL) return false;
    ckPart parts[CK_MAX_PARTITIONS];
    int n = 0;
    bool ok = ckPartitions(rk, topic, parts, &n, deadline, errbuf, errlen), whole = false;
    ckNewest nw = {0};
    *have = false;
    /* The newest record of the key lies near the end: read a window before
     * the high watermark, widened until it holds one or is the whole log. */
    for (int64_t window = 256; ok && !nw.found && !whole; window *= 16) {
        whole = true;
        for (int i = 0; i < n; i++) {
            parts[i].start = parts[i].high - window > parts[i].low ? parts[i].high - window : parts[i].low;
            if (parts[i].start > parts[i].low) whole = false;
        }
        ok = ckScan(rk, topic, slot, parts, n, deadline, &nw, errbuf, errlen);
    }
    rd_kafka_destroy(rk);
    if (ok && nw.found && !nw.tombstone) {
        char why[256];
        *have = spCheckpointParse(nw.value, nw.len, lsn, why, sizeof(why));
        if (!*have) {
            snprintf(errbuf, errlen, "checkpoint topic %s, key %s: %s; tombstone it (a null value for the key) "
                     "after checking the topic against the table, to stream from the slot's position",
                     topic, slot, why);
            ok = false;
        }
    }
    free(nw.value);
    return ok;
}
