/* archiver_main.c - decision-archiver: a Kafka consumer group on the
 * decisions topic writing the archive of CONTRACT §4 (archive.h).
 *
 * One open file per partition and hour of decided_at; a file is committed
 * (fsynced, renamed) when the hour changes, or it reaches max-records,
 * max-bytes or max-age; only then is the partition's offset committed, so a
 * crash re-reads from the start of the unfinished file and writes it again
 * under the same name.
 *
 * A record the layout has no place for (its value is not in the wire format
 * or does not decode, its decided_at is before 1970 or past 9999, it is
 * larger than a block) is a
 * property of the record, not a storage failure: it is quarantined
 * (rpArchiveQuarantine: its bytes and the reason under <root>/quarantine/),
 * logged with partition, offset and reason, counted in
 * archiver_quarantined_total, and the partition goes on past it, so one
 * record can never stop the archiver nor make it exit and re-read itself
 * for ever. Only storage failures (a file or the quarantine cannot be
 * written, fsynced, renamed) stop it: a restart re-reads from the last
 * committed offsets.
 *
 * Every record is archived under its writer's schema version, so an
 * archiver older than the producers drops no field of a newer version: a
 * file holds one version, and a record of another version finishes the
 * partition's file and starts the next one at its own offset (names stay
 * those of CONTRACT §4, deterministic). A schema id the archiver does not
 * know is learned from the registry; until it is (the registry down, or
 * older than the producer: see learn.h), the partition is held at that
 * record (kafkahold.h) and retried with back-off, never skipped.
 *
 * Refused credentials, an untrusted broker certificate or a missing topic
 * do not stop it either: ds/kafkahealth.h logs the problem, /readyz answers
 * 503 with it, and librdkafka retries until the fix.
 *
 * Archivers of one group share the archive directory. A file another
 * archiver is still writing (the group moved its partition here while the
 * old owner was stalled) is locked (archive.h): the partition is held
 * until it is renamed or dropped, then written again under the same name.
 * Once librdkafka knows this archiver's assignment is lost, nothing more
 * is renamed or started: the new owners write it.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive.h"
#include "ds/codec.h"
#include "ds/config.h"
#include "ds/daemon.h"
#include "ds/kafkahold.h"
#include "ds/http.h"
#include "ds/kafka.h"
#include "ds/kafkahealth.h"
#include "ds/learn.h"
#include "ds/log.h"
#include "ds/loop.h"
#include "ds/metrics.h"
#include "ds/timefmt.h"
#include "filereader.h"

#define ENV_PREFIX "ARCHIVER_"
#define MAX_PARTITIONS 1024

static struct {
    dsKafkaOptions kafka;
    char *topic, *group_id, *archive, *schemas_dir, *registry_url, *listen_host, *log_level;
    long max_records, max_age_ms, session_timeout_ms, metrics_port;
    size_t max_bytes, block_size;
} opt;

static const dsConfigOption arConfig[] = {
    DS_KAFKA_CONFIG_OPTIONS(opt.kafka, "decision-archiver", "Kafka bootstrap servers (host:port,...)"),
    {"topic", DS_CFG_STRING, "decisions", "topic to archive", &opt.topic, 1, 0},
    {"group-id", DS_CFG_STRING, "decision-archiver", "consumer group (every archiver writing one archive joins it)",
     &opt.group_id, 1, 0},
    DS_CONFIG_ALIAS("group", "group-id"),
    {"archive", DS_CFG_STRING, "var/archive", "archive root directory (the one holding decisions/)", &opt.archive, 0,
     0},
    DS_CONFIG_ALIAS("root", "archive"),
    {"max-records", DS_CFG_INT, "100000", "records per file at most", &opt.max_records, 1, 100000000},
    {"max-bytes", DS_CFG_SIZE, "64MiB", "encoded bytes per file at most (approximate)", &opt.max_bytes, 1024,
     1LL << 40},
    {"max-age", DS_CFG_DURATION, "60s", "a file is closed this long after its first record", &opt.max_age_ms, 100,
     86400000},
    {"block-size", DS_CFG_SIZE, "1MiB",
     "Avro block size (a larger record is quarantined; at most 64MiB, what decision-replay reads by default)", &opt.block_size,
     65536, RP_MAX_BLOCK_DEFAULT},
    {"session-timeout", DS_CFG_DURATION, "45s",
     "consumer group session timeout: how soon a crashed archiver's partitions move", &opt.session_timeout_ms, 1000,
     3600000},
    {"schemas-dir", DS_CFG_STRING, "",
     "schema directory (manifest.json and the .avsc files it names) to decode the stream with, instead of the schemas "
     "built in (empty: built in)", &opt.schemas_dir, 0, 0},
    {"registry-url", DS_CFG_STRING, "http://127.0.0.1:8080",
     "schema registry to learn unknown schema ids from (the decision API serves one); empty: a record of an "
     "unknown id waits for a restart with a newer build", &opt.registry_url, 0, 0},
    {"listen-host", DS_CFG_STRING, "127.0.0.1", "address of the metrics endpoint", &opt.listen_host, 0, 0},
    {"metrics-port", DS_CFG_INT, "0", "HTTP port of /metrics, /healthz, /readyz (0: none)", &opt.metrics_port, 0,
     65535},
    {"log-level", DS_CFG_STRING, "info", "debug, info, warn or error", &opt.log_level, 0, 0},
};
#define AR_NCONFIG (sizeof(arConfig) / sizeof(arConfig[0]))

typedef struct arPart {
    rpArchiveFile *file;
    int version; /* of the open file's schema */
    int64_t hour, last_offset, opened_ms;
    size_t bytes;
} arPart;

/* What becomes of one message. */
typedef enum {
    AR_ARCHIVE,    /* decoded: archive it */
    AR_QUARANTINE, /* no place in the layout (the reason says why): quarantine it, go on */
    AR_HOLD,       /* its schema cannot be had yet: read it again later */
    AR_FAIL,       /* storage or memory failure: stop */
} arResult;

/* A value of each writer version met, reused for every record of it. */
typedef struct arValue {
    int version;
    avro_value_t value;
} arValue;

static arPart parts[MAX_PARTITIONS];
static dsKafkaHold holds[MAX_PARTITIONS];
static arValue *values;
static size_t nvalues;
static dsLearner *learner; /* NULL without a registry-url */
static volatile sig_atomic_t stopping;
static dsMetrics *metrics;
static dsMetric *mArchived, *mQuarantined, *mFiles;
static dsHttpServer *http; /* NULL without a metrics-port */
static dsKafkaHealth *health; /* what the cluster refuses, if anything */

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

/* Whether librdkafka knows the group has given this archiver's partitions
 * away (its session timed out, as after a stall) while the revocation has
 * not reached the poll yet: their new owners write them from the committed
 * offsets, so nothing more is renamed or started here. */
static bool arLost(rd_kafka_t *rk) {
    return rd_kafka_assignment_lost(rk) != 0;
}

/* Finishes a partition's file, then (only then) commits its offset. */
static bool arFinish(rd_kafka_t *rk, int32_t partition) {
    arPart *p = &parts[partition];
    if (p->file == NULL) return true;
    if (arLost(rk)) {
        dsLogInfo("partition %d: assignment lost, unfinished file dropped for its new owner", partition);
        rpArchiveAbort(p->file);
        p->file = NULL;
        return true;
    }
    char err[512];
    size_t n = rpArchiveRecords(p->file);
    bool ok = rpArchiveCommit(p->file, err, sizeof(err));
    p->file = NULL;
    if (!ok) {
        dsLogError("partition %d: %s", partition, err);
        return false;
    }
    dsLogDebug("partition %d: archived %zu records up to offset %lld", partition, n, (long long)p->last_offset);
    dsMetricInc(mFiles, 1);
    dsMetricInc(mArchived, (double)n);
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
        if (l->cnt > 0) dsKafkaHealthOk(health, opt.topic);
        rd_kafka_assign(rk, l);
    } else {
        for (int i = 0; i < l->cnt; i++) {
            int32_t pt = l->elems[i].partition;
            if (pt < 0 || pt >= MAX_PARTITIONS) continue;
            rpArchiveAbort(parts[pt].file);
            parts[pt].file = NULL;
            dsKafkaHoldRelease(rk, opt.topic, pt, &holds[pt]);
        }
        rd_kafka_assign(rk, NULL);
    }
}

/* The value records of a version are decoded into, made on first use. */
static avro_value_t *arValueOf(dsCodec *codec, int version) {
    for (size_t i = 0; i < nvalues; i++)
        if (values[i].version == version) return &values[i].value;
    arValue *grown = realloc(values, (nvalues + 1) * sizeof(*values));
    if (grown == NULL) return NULL;
    values = grown;
    if (!dsCodecNewVersionValue(codec, version, &values[nvalues].value)) return NULL;
    values[nvalues].version = version;
    return &values[nvalues++].value;
}

static void arValuesFree(void) {
    for (size_t i = 0; i < nvalues; i++) avro_value_decref(&values[i].value);
    free(values);
    values = NULL, nvalues = 0;
}

/* The writer's version of m, learning its schema id from the registry if
 * need be. AR_HOLD when it cannot be learned now (the partition is
 * held at m); AR_QUARANTINE (why says why) when it never can. */
static arResult arWriterVersion(rd_kafka_t *rk, dsCodec *codec, rd_kafka_message_t *m, int *version, char *why,
                                size_t whylen) {
    switch (dsLearnWire(learner, codec, m->payload, m->len, version, why, whylen)) {
    case DS_LEARN_OK:
        return AR_ARCHIVE;
    case DS_LEARN_TRANSIENT:
        dsKafkaHoldPartition(rk, opt.topic, m->partition, m->offset, &holds[m->partition], why);
        return AR_HOLD;
    default:
        return AR_QUARANTINE;
    }
}

/* Decodes m into a value of its writer's version (*out) and checks it has
 * a place in the layout: its decided_at into *decided. */
static arResult arDecode(rd_kafka_t *rk, dsCodec *codec, rd_kafka_message_t *m, avro_value_t **out, int *version,
                         int64_t *decided, char *why, size_t whylen) {
    char path[1200];
    size_t size = 0;
    arResult r = arWriterVersion(rk, codec, m, version, why, whylen);
    if (r != AR_ARCHIVE) return r;
    if ((*out = arValueOf(codec, *version)) == NULL) {
        dsLogError("version %d: cannot make an Avro value: %s", *version, avro_strerror());
        return AR_FAIL;
    }
    if (!dsCodecDecodeWire(codec, m->payload, m->len, *out, NULL, why, whylen)) return AR_QUARANTINE;
    /* A record produced around the stream processor that breaks a rule
     * would be archived and then refused by every replay of its file. */
    dsCodecError e;
    if (!dsCodecValidate(codec, *out, &e)) return snprintf(why, whylen, "%s", e.message), AR_QUARANTINE;
    if (!dsCodecFieldLong(*out, "decided_at", decided))
        return snprintf(why, whylen, "no decided_at field"), AR_QUARANTINE;
    if (!rpArchivePath(path, sizeof(path), opt.archive, *decided, m->partition, m->offset)) {
        char at[DS_TIME_BUFLEN] = "";
        dsTimeFormat(*decided, at);
        snprintf(why, whylen, "decided_at %lld ms (%s) has no dt=/hour= directory in the archive layout "
                 "(years 1970-9999)", (long long)*decided, *at ? at : "outside years 0001-9999");
        return AR_QUARANTINE;
    }
    /* avro-c refuses a record larger than a block, which would fail the file */
    if (avro_value_sizeof(*out, &size) == 0 && size > opt.block_size) {
        snprintf(why, whylen, "its %zu bytes do not fit in a %zu-byte Avro block (block-size)", size, opt.block_size);
        return AR_QUARANTINE;
    }
    return AR_ARCHIVE;
}

/* Keeps m under <root>/quarantine and moves the partition past it: with a
 * file open, its commit commits m's offset too; without one, every record
 * before m is durable already, so m's offset is committed now. false only
 * when the quarantine cannot be written (a storage failure). */
static bool arQuarantine(rd_kafka_t *rk, rd_kafka_message_t *m, const char *why) {
    char err[1536], path[1200];
    if (!rpArchiveQuarantine(opt.archive, m->partition, m->offset, m->payload, m->len, why, path, sizeof(path), err,
                             sizeof(err))) {
        dsLogError("partition %d offset %lld: cannot quarantine the record (%s): %s", m->partition,
                   (long long)m->offset, why, err);
        return false;
    }
    dsLogError("partition %d offset %lld: not archived, quarantined as %s: %s", m->partition, (long long)m->offset,
               path, why);
    dsMetricInc(mQuarantined, 1);
    arPart *p = &parts[m->partition];
    if (p->file) p->last_offset = m->offset;
    else arCommitOffset(rk, m->partition, m->offset + 1);
    return true;
}

/* Opens the partition's file at m for a record of version, decided at ms.
 * AR_HOLD when another archiver is writing that very file (the group gave
 * the partition here while its old owner still wrote): the partition waits
 * at m until that one has renamed or dropped it, then writes it again. */
static arResult arOpen(rd_kafka_t *rk, dsCodec *codec, rd_kafka_message_t *m, int version, int64_t decided) {
    char err[1536];
    arPart *p = &parts[m->partition];
    p->file = rpArchiveOpen(opt.archive, decided, m->partition, m->offset, dsCodecSchema(codec, version),
                            opt.block_size, err, sizeof(err));
    if (p->file == NULL && errno == EWOULDBLOCK) {
        dsKafkaHoldPartition(rk, opt.topic, m->partition, m->offset, &holds[m->partition], err);
        return AR_HOLD;
    }
    if (p->file == NULL) {
        dsLogError("%s", err);
        return AR_FAIL;
    }
    p->version = version;
    p->hour = decided / 3600000;
    p->bytes = 0;
    p->opened_ms = dsTimeNowMs();
    return AR_ARCHIVE;
}

/* Archives one message; false only on a storage failure (fatal). */
static bool arMessage(rd_kafka_t *rk, dsCodec *codec, rd_kafka_message_t *m) {
    char err[512], why[1024];
    if (m->partition < 0 || m->partition >= MAX_PARTITIONS) {
        dsLogError("partition %d is beyond this archiver's limit of %d", m->partition, MAX_PARTITIONS);
        return false;
    }
    /* fetched before the hold took effect: it comes again after the held one */
    if (holds[m->partition].held || arLost(rk)) return true;
    avro_value_t *v = NULL;
    int version = 0;
    int64_t decided = 0;
    arResult r = arDecode(rk, codec, m, &v, &version, &decided, why, sizeof(why));
    if (r == AR_QUARANTINE) {
        dsKafkaHoldDone(m->partition, &holds[m->partition]); /* m is handled */
        return arQuarantine(rk, m, why);
    }
    if (r != AR_ARCHIVE) return r != AR_FAIL;
    arPart *p = &parts[m->partition];
    /* a file holds one hour and one schema version */
    if (p->file && (p->hour != decided / 3600000 || p->version != version) && !arFinish(rk, m->partition))
        return false;
    if (p->file == NULL && (r = arOpen(rk, codec, m, version, decided)) != AR_ARCHIVE) return r == AR_HOLD;
    dsKafkaHoldDone(m->partition, &holds[m->partition]); /* m is handled */
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

static void arOnError(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    dsKafkaHealthOnError(health, (rd_kafka_resp_err_t)err, reason);
}

static int arOnStats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    dsKafkaHealthStats(health, json, len);
    return 0;
}

/* A consumer error (a missing topic among them); the end of a partition is
 * not one. */
static void arConsumerError(const rd_kafka_message_t *m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return;
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : opt.topic;
    if (dsKafkaHealthError(health, m->err, rd_kafka_message_errstr(m), topic) == DS_KAFKA_OK)
        dsLogWarn("kafka: %s", rd_kafka_message_errstr(m));
}

static rd_kafka_t *arConsumer(char *errbuf, size_t errlen) {
    rd_kafka_conf_t *conf = dsKafkaConfNew(&opt.kafka, errbuf, errlen);
    if (conf == NULL) return NULL;
    char session[32];
    snprintf(session, sizeof(session), "%ld", opt.session_timeout_ms);
    if (!dsKafkaConfSet(conf, "session.timeout.ms", session, errbuf, errlen) ||
        !dsKafkaConfSet(conf, "group.id", opt.group_id, errbuf, errlen) ||
        !dsKafkaConfSet(conf, "enable.auto.commit", "false", errbuf, errlen) ||
        !dsKafkaConfSet(conf, "auto.offset.reset", "earliest", errbuf, errlen) ||
        !dsKafkaHealthConf(conf, errbuf, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, arRebalance);
    rd_kafka_conf_set_error_cb(conf, arOnError);
    rd_kafka_conf_set_stats_cb(conf, arOnStats);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errlen);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    dsKafkaHealthAttach(health, rk);
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

static int arRun(rd_kafka_t *rk, dsCodec *codec, uv_loop_t *loop) {
    while (!stopping) {
        /* the metrics endpoint is served between polls, hence a short wait */
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, http ? 20 : 100);
        if (http) uv_run(loop, UV_RUN_NOWAIT);
        bool ok = true;
        if (m != NULL) {
            if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) dsKafkaHealthOk(health, opt.topic), ok = arMessage(rk, codec, m);
            else arConsumerError(m);
            rd_kafka_message_destroy(m);
        }
        dsKafkaHealthTick(health);
        if (!ok || !arFinishOld(rk)) {
            arAbortAll();
            return 1; /* a restart re-reads from the last committed offsets */
        }
        dsKafkaHoldResumeDue(rk, opt.topic, holds, MAX_PARTITIONS);
    }
    for (int i = 0; i < MAX_PARTITIONS; i++)
        if (!arFinish(rk, i)) return 1;
    return 0;
}

static void arHandle(void *app, h2o_req_t *req) {
    h2o_iovec_t p = req->path_normalized;
    char why[1400];
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/metrics"))) {
        dsKafkaHealthPublish(health, metrics);
        dsHttpRespondMetrics(http, req, metrics);
    } else if (h2o_memis(p.base, p.len, H2O_STRLIT("/healthz"))) {
        dsHttpRespondJson(http, req, "GET /healthz", 200, json_pack("{s:s}", "status", "ok"), NULL, 0);
    } else if (h2o_memis(p.base, p.len, H2O_STRLIT("/readyz"))) {
        if (dsKafkaHealthProblem(health, why, sizeof(why)) != DS_KAFKA_OK)
            dsHttpRespondJson(http, req, "GET /readyz", 503, json_pack("{s:s,s:s}", "status", "kafka", "reason", why),
                              NULL, 0);
        else
            dsHttpRespondJson(http, req, "GET /readyz", 200, json_pack("{s:s}", "status", "archiving"), NULL, 0);
    } else {
        dsHttpRespondError(http, req, "other", 404, "not_found", "GET /metrics, /healthz or /readyz", NULL, 0);
    }
}

static bool arMetricsStart(uv_loop_t *loop, char *errbuf, size_t errlen) {
    if ((metrics = dsMetricsNew()) == NULL) return snprintf(errbuf, errlen, "out of memory"), false;
    mArchived = dsMetricsCounter(metrics, "archiver_records_total", "Records archived in committed files");
    mFiles = dsMetricsCounter(metrics, "archiver_files_total", "Archive files committed");
    mQuarantined = dsMetricsCounter(metrics, "archiver_quarantined_total",
                                    "Records kept under <root>/quarantine: no place in the archive layout");
    if (opt.metrics_port == 0) return true;
    dsHttpConfig hc = {opt.listen_host, (int)opt.metrics_port, 4096, 128, NULL};
    http = dsHttpServerStart(loop, &hc, arHandle, NULL, metrics, errbuf, errlen);
    return http != NULL;
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
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    int rc = 1, swept = rpArchiveSweep(opt.archive, err, sizeof(err));
    if (swept < 0) dsLogError("%s", err);
    else if (swept > 0) dsLogInfo("removed %d unfinished files left by a crash", swept);
    rd_kafka_t *rk = NULL;
    dsCodec *codec = dsCodecNewForDirOption(opt.schemas_dir, err, sizeof(err));
    if (codec == NULL) {
        dsLogError("cannot load the schemas: %s", err);
        goto done;
    }
    if (*opt.registry_url && (learner = dsLearnerNew(opt.registry_url, "--registry-url", err, sizeof(err))) == NULL) {
        dsLogError("%s", err);
        goto done;
    }
    if ((health = dsKafkaHealthNew(&opt.kafka, opt.topic)) == NULL) {
        dsLogError("out of memory");
        goto done;
    }
    if (!arMetricsStart(&loop, err, sizeof(err))) {
        dsLogError("cannot start the metrics endpoint: %s", err);
        goto done;
    }
    if ((rk = arConsumer(err, sizeof(err))) == NULL) {
        dsLogError("cannot start the consumer: %s", err);
        goto done;
    }
    dsLogInfo("archiving %s from %s into %s", opt.topic, opt.kafka.brokers, opt.archive);
    rc = arRun(rk, codec, &loop);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
done:
    if (http) dsHttpServerStopAccepting(http);
    dsHttpServerFree(http);
    if (!dsLoopShutdown(&loop)) dsLogWarn("event loop closed with handles still open");
    dsMetricsFree(metrics);
    dsKafkaHealthFree(health);
    dsLearnerFree(learner);
    arValuesFree();
    dsCodecFree(codec);
    dsConfigFree(arConfig, AR_NCONFIG);
    return rc;
}
