/* target_kafka.c - the Kafka target of decision-replay (target.h): one
 * idempotent librdkafka producer, records built exactly as the stream
 * processor builds them, delivery reports counted on flush.
 *
 * A command line fails rather than waits: before the first record the
 * cluster must answer for the topic within RP_KAFKA_CHECK_MS, and refused
 * credentials, an untrusted broker certificate or a missing topic, at
 * start or later, stop the run at once with the message of
 * ds/kafkahealth.h (write or flush fails, so no checkpoint is saved past
 * what Kafka acknowledged). */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/kafkahealth.h"
#include "ds/log.h"
#include "target.h"

/* How long the start waits for the brokers to answer at all. */
#define RP_KAFKA_CHECK_MS 30000

typedef struct tkTarget {
    rpTarget base;
    dsCodec *codec;
    rd_kafka_t *rk;
    rd_kafka_topic_t *topic;
    dsKafkaHealth *health; /* owned */
    char schema_id[16];
    unsigned char *buf;
    size_t cap;
    bool logged_failure;
} tkTarget;

static void tkOnDelivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    tkTarget *t = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        t->base.settled.written++;
        return;
    }
    t->base.settled.failed++;
    dsKafkaHealthError(t->health, m->err, NULL, rd_kafka_topic_name(m->rkt));
    if (!t->logged_failure) dsLogError("kafka: a decision was not delivered: %s", rd_kafka_err2str(m->err));
    t->logged_failure = true;
}

static void tkOnError(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    tkTarget *t = opaque;
    dsKafkaHealthOnError(t->health, (rd_kafka_resp_err_t)err, reason);
}

/* false with the problem's message when the cluster refuses the target. */
static bool tkHealthy(tkTarget *t, char *errbuf, size_t errlen) {
    return dsKafkaHealthProblem(t->health, errbuf, errlen) == DS_KAFKA_OK;
}

/* The wire bytes into t->buf, grown as needed; 0 on failure. */
static size_t tkEncode(tkTarget *t, avro_value_t *v, char *errbuf, size_t errlen) {
    size_t n = dsCodecEncodeWire(t->codec, v, t->buf, t->cap, errbuf, errlen);
    if (n <= t->cap) return n;
    unsigned char *grown = realloc(t->buf, n);
    if (grown == NULL) return snprintf(errbuf, errlen, "out of memory"), 0;
    t->buf = grown;
    t->cap = n;
    return dsCodecEncodeWire(t->codec, v, t->buf, t->cap, errbuf, errlen);
}

static bool tkWrite(rpTarget *base, avro_value_t *v, char *errbuf, size_t errlen) {
    tkTarget *t = (tkTarget *)base;
    const char *key = dsCodecFieldText(v, "customer_id"), *id = dsCodecFieldText(v, "decision_id");
    size_t len = tkEncode(t, v, errbuf, errlen);
    if (key == NULL || id == NULL || len == 0) {
        if (len != 0) snprintf(errbuf, errlen, "decision without customer_id or decision_id");
        return false;
    }
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            t->rk, RD_KAFKA_V_RKT(t->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY((void *)key, strlen(key)), RD_KAFKA_V_VALUE(t->buf, len),
            RD_KAFKA_V_HEADER("decision_id", id, -1), RD_KAFKA_V_HEADER("schema_id", t->schema_id, -1),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            dsKafkaHealthError(t->health, err, NULL, rd_kafka_topic_name(t->topic));
            if (tkHealthy(t, errbuf, errlen)) snprintf(errbuf, errlen, "kafka: cannot produce: %s", rd_kafka_err2str(err));
            return false;
        }
        rd_kafka_poll(t->rk, 10); /* the local queue is full: wait for deliveries */
        if (!tkHealthy(t, errbuf, errlen)) return false;
    }
    rd_kafka_poll(t->rk, 0);
    return tkHealthy(t, errbuf, errlen);
}

static bool tkFlush(rpTarget *base, char *errbuf, size_t errlen) {
    tkTarget *t = (tkTarget *)base;
    /* rd_kafka_flush() returns once every message is delivered or has
     * failed after librdkafka's own retries (message.timeout.ms). */
    while (rd_kafka_outq_len(t->rk) > 0 && tkHealthy(t, errbuf, errlen)) rd_kafka_flush(t->rk, 1000);
    return tkHealthy(t, errbuf, errlen);
}

static void tkDestroy(rpTarget *base) {
    tkTarget *t = (tkTarget *)base;
    if (t->topic) rd_kafka_topic_destroy(t->topic);
    if (t->rk) rd_kafka_destroy(t->rk);
    dsKafkaHealthFree(t->health);
    free(t->buf);
    free(t);
}

static const rpTargetOps tkOps = {"kafka", tkWrite, tkFlush, tkDestroy};

static rd_kafka_conf_t *tkConf(tkTarget *t, const dsKafkaOptions *kafka, const char *compression, char *errbuf,
                               size_t errlen) {
    static const char *const fixed[][2] = {
        {"enable.idempotence", "true"}, {"acks", "all"}, {"linger.ms", "20"},
        {"batch.num.messages", "10000"}, {"queue.buffering.max.messages", "1000000"},
        {"message.timeout.ms", "120000"},
    };
    rd_kafka_conf_t *conf = dsKafkaConfNew(kafka, errbuf, errlen);
    if (conf == NULL) return NULL;
    bool ok = dsKafkaConfSet(conf, "compression.codec", compression, errbuf, errlen) &&
              dsKafkaConfSetPartitioner(conf, errbuf, errlen); /* where the stream processor puts a key */
    for (size_t i = 0; ok && i < sizeof(fixed) / sizeof(fixed[0]); i++)
        ok = dsKafkaConfSet(conf, fixed[i][0], fixed[i][1], errbuf, errlen);
    if (!ok) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, t);
    rd_kafka_conf_set_dr_msg_cb(conf, tkOnDelivery);
    rd_kafka_conf_set_error_cb(conf, tkOnError);
    return conf;
}

rpTarget *rpKafkaTargetNew(dsCodec *codec, const dsKafkaOptions *kafka, const char *topic, const char *compression,
                           char *errbuf, size_t errlen) {
    tkTarget *t = calloc(1, sizeof(*t));
    if (t == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    t->base.ops = &tkOps;
    t->codec = codec;
    snprintf(t->schema_id, sizeof(t->schema_id), "%d", dsCodecSchemaId(codec, dsCodecCurrentVersion(codec)));
    if ((t->health = dsKafkaHealthNew(kafka, topic)) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto failed;
    }
    rd_kafka_conf_t *conf = tkConf(t, kafka, compression, errbuf, errlen);
    if (conf == NULL) goto failed;
    if ((t->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errbuf, errlen)) == NULL) {
        rd_kafka_conf_destroy(conf);
        goto failed;
    }
    if ((t->topic = rd_kafka_topic_new(t->rk, topic, NULL)) == NULL) {
        snprintf(errbuf, errlen, "kafka: topic %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto failed;
    }
    if (!dsKafkaHealthCheck(t->health, t->rk, topic, RP_KAFKA_CHECK_MS, errbuf, errlen)) goto failed;
    return &t->base;

failed:
    tkDestroy(&t->base);
    return NULL;
}
