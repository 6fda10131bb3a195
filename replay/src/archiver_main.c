/* archiver_main.c - decision-archiver: a Kafka consumer group on the
 * decisions topic writing the archive of CONTRACT §4 (archive.h).
 *
 * One open file per partition and hour of decided_at; a file is committed
 * (fsynced, renamed) when the hour changes, or it reaches max-records,
 * max-bytes or max-age; only then is the partition's offset committed, so a
 * crash re-reads from the start of the unfinished file and writes it again
 * under the same name. A record that does not decode is logged with its
 * partition and offset and counted, never archived silently wrong.
 */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "ds/codec.h"
#include "ds/config.h"
#include "ds/daemon.h"
#include "ds/log.h"
#include "ds/timefmt.h"

#define ENV_PREFIX "ARCHIVER_"
#define MAX_PARTITIONS 1024

static struct {
    char *brokers, *topic, *group, *root, *log_level;
    long max_records, max_age_ms, session_timeout_ms;
    size_t max_bytes, block_size;
} opt;

static const dsConfigOption arConfig[] = {
    {"brokers", DS_CFG_STRING, "127.0.0.1:9092", "Kafka bootstrap servers", &opt.brokers, 0, 0},
    {"topic", DS_CFG_STRING, "decisions", "topic to archive", &opt.topic, 0, 0},
    {"group", DS_CFG_STRING, "decision-archiver", "consumer group", &opt.group, 0, 0},
    {"root", DS_CFG_STRING, "var/archive", "archive root directory", &opt.root, 0, 0},
    {"max-records", DS_CFG_INT, "100000", "records per file at most", &opt.max_records, 1, 100000000},
    {"max-bytes", DS_CFG_SIZE, "64MiB", "encoded bytes per file at most (approximate)", &opt.max_bytes, 1024,
     1LL << 40},
    {"max-age", DS_CFG_DURATION, "60s", "a file is closed this long after its first record", &opt.max_age_ms, 100,
     86400000},
    {"block-size", DS_CFG_SIZE, "1MiB", "Avro block size (at least the largest record)", &opt.block_size, 65536,
     1LL << 30},
    {"session-timeout", DS_CFG_DURATION, "45s",
     "consumer group session timeout: how soon a crashed archiver's partitions move", &opt.session_timeout_ms, 1000,
     3600000},
    {"log-level", DS_CFG_STRING, "info", "debug, info, warn or error", &opt.log_level, 0, 0},
};
#define AR_NCONFIG (sizeof(arConfig) / sizeof(arConfig[0]))

typedef struct arPart {
    rpArchiveFile *file;
    int64_t hour, last_offset, opened_ms;
    size_t bytes;
} arPart;

static arPart parts[MAX_PARTITIONS];
static volatile sig_atomic_t stopping;

static void arOnSignal(int sig) {
    stopping = 1;
}

/* A failed commit is not fatal: the file is durable, and whoever reads the
 * partition next (this archiver after rejoining, or another member) starts
 * at the last committed offset and writes the same file name again. */
static void arCommitOffset(rd_kafka_t *rk, int32_t partition, int64_t next) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, opt.topic, partition)->offset = next;
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    if (err)
        dsLogWarn("partition %d: offset %lld not committed (%s); it will be archived again under the same name",
                  partition, (long long)next, rd_kafka_err2str(err));
}

/* Finishes a partition's file, then (only then) commits its offset. */
static bool arFinish(rd_kafka_t *rk, int32_t partition) {
    arPart *p = &parts[partition];
    if (p->file == NULL) return true;
    char err[512];
    size_t n = rpArchiveRecords(p->file);
    bool ok = rpArchiveCommit(p->file, err, sizeof(err));
    p->file = NULL;
    if (!ok) {
        dsLogError("partition %d: %s", partition, err);
        return false;
    }
    dsLogDebug("partition %d: archived %zu records up to offset %lld", partition, n, (long long)p->last_offset);
    arCommitOffset(rk, partition, p->last_offset + 1);
    return true;
}

static void arAbortAll(void) {
    for (int i = 0; i < MAX_PARTITIONS; i++) {
        rpArchiveAbort(parts[i].file);
        parts[i].file = NULL;
    }
}

/* Revoked partitions' unfinished files are dropped: their offsets were not
 * committed, so the next owner writes them again under the same names. */
static void arRebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *l, void *opaque) {
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, l);
    } else {
        for (int i = 0; i < l->cnt; i++) {
            int32_t pt = l->elems[i].partition;
            if (pt >= 0 && pt < MAX_PARTITIONS && parts[pt].file) {
                rpArchiveAbort(parts[pt].file);
                parts[pt].file = NULL;
            }
        }
        rd_kafka_assign(rk, NULL);
    }
}

/* Archives one message; false only on a storage failure (fatal). */
static bool arMessage(rd_kafka_t *rk, dsCodec *codec, avro_value_t *v, rd_kafka_message_t *m) {
    char err[512];
    if (m->partition < 0 || m->partition >= MAX_PARTITIONS) {
        dsLogError("partition %d is beyond this archiver's limit of %d", m->partition, MAX_PARTITIONS);
        return false;
    }
    if (!dsCodecDecodeWire(codec, m->payload, m->len, v, NULL, err, sizeof(err))) {
        dsLogError("partition %d offset %lld: not archived: %s", m->partition, (long long)m->offset, err);
        return true;
    }
    int64_t decided = 0;
    dsCodecFieldLong(v, "decided_at", &decided); /* the codec checked it is there */
    arPart *p = &parts[m->partition];
    int64_t hour = decided / 3600000;
    if (p->file && p->hour != hour && !arFinish(rk, m->partition)) return false;
    if (p->file == NULL) {
        p->file = rpArchiveOpen(opt.root, decided, m->partition, m->offset, dsCodecSchema(codec,
                                dsCodecCurrentVersion(codec)), opt.block_size, err, sizeof(err));
        if (p->file == NULL) {
            dsLogError("%s", err);
            return false;
        }
        p->hour = hour;
        p->bytes = 0;
        p->opened_ms = dsTimeNowMs();
    }
    if (!rpArchiveAppend(p->file, v, err, sizeof(err))) {
        dsLogError("%s", err);
        return false;
    }
    p->bytes += m->len;
    p->last_offset = m->offset;
    if (rpArchiveRecords(p->file) >= (size_t)opt.max_records || p->bytes >= opt.max_bytes)
        return arFinish(rk, m->partition);
    return true;
}

static bool arFinishOld(rd_kafka_t *rk) {
    int64_t now = dsTimeNowMs();
    for (int i = 0; i < MAX_PARTITIONS; i++)
        if (parts[i].file && now - parts[i].opened_ms >= opt.max_age_ms && !arFinish(rk, i)) return false;
    return true;
}

/* librdkafka's own messages, through our logger. */
static void arRdkafkaLog(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    dsLog(level <= 3 ? DS_LOG_WARN : DS_LOG_DEBUG, "kafka %s: %s", fac, buf);
}

static rd_kafka_t *arConsumer(char *errbuf, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char session[32];
    snprintf(session, sizeof(session), "%ld", opt.session_timeout_ms);
    rd_kafka_conf_set_log_cb(conf, arRdkafkaLog);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", opt.brokers, errbuf, errlen) ||
        rd_kafka_conf_set(conf, "session.timeout.ms", session, errbuf, errlen) ||
        rd_kafka_conf_set(conf, "group.id", opt.group, errbuf, errlen) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errbuf, errlen) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errbuf, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, arRebalance);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errlen);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, opt.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        snprintf(errbuf, errlen, "cannot subscribe to %s: %s", opt.topic, rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

static int arRun(rd_kafka_t *rk, dsCodec *codec, avro_value_t *v) {
    while (!stopping) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        bool ok = true;
        if (m != NULL) {
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) ok = arMessage(rk, codec, v, m);
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                dsLogWarn("kafka: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
        }
        if (!ok || !arFinishOld(rk)) {
            arAbortAll();
            return 1; /* a restart re-reads from the last committed offsets */
        }
    }
    for (int i = 0; i < MAX_PARTITIONS; i++)
        if (!arFinish(rk, i)) return 1;
    return 0;
}

int main(int argc, char **argv) {
    char err[512];
    static const dsDaemonSpec spec = {"decision-archiver", "decision-archiver",
                                      "Archives the decision stream as Avro container files.", arConfig, AR_NCONFIG,
                                      ENV_PREFIX, &opt.log_level};
    int early = dsDaemonStart(&spec, argc, argv, NULL, NULL);
    if (early >= 0) return early;
    signal(SIGTERM, arOnSignal);
    signal(SIGINT, arOnSignal);
    int rc = 1, swept = rpArchiveSweep(opt.root, err, sizeof(err));
    if (swept < 0) dsLogError("%s", err);
    else if (swept > 0) dsLogInfo("removed %d unfinished files left by a crash", swept);
    dsCodec *codec = dsCodecNew(err, sizeof(err));
    avro_value_t v;
    rd_kafka_t *rk = NULL;
    if (codec == NULL || !dsCodecNewValue(codec, &v)) {
        dsLogError("cannot load the schemas: %s", err);
        goto done;
    }
    if ((rk = arConsumer(err, sizeof(err))) == NULL) {
        dsLogError("cannot start the consumer: %s", err);
        avro_value_decref(&v);
        goto done;
    }
    dsLogInfo("archiving %s from %s into %s", opt.topic, opt.brokers, opt.root);
    rc = arRun(rk, codec, &v);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    avro_value_decref(&v);
done:
    dsCodecFree(codec);
    dsConfigFree(arConfig, AR_NCONFIG);
    return rc;
}
