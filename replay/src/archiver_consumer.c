/* archiver_consumer.c - the archiver's consumer group member
 * (archiver_consumer.h). */
#include "archiver_consumer.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/kafkahold.h"
#include "ds/log.h"
#include "ds/timefmt.h"

struct arConsumer {
    rd_kafka_t *rk;
    arArchiver *archiver;
    dsKafkaHealth *health;
    char *topic, *group_id, *instance_id, *env_prefix;
    dsKafkaGroup group; /* its strings are the ones above */
    dsKafkaHold holds[AR_MAX_PARTITIONS];
    bool assigned[AR_MAX_PARTITIONS];
    char held_why[1600]; /* the last hold's reason */
    long long lag;       /* from the last statistics: end offsets minus committed; -1 unknown */
    bool failed;         /* a fatal consumer error (logged) */
    const dsKafkaOptions *kafka; /* borrowed: a fenced member joins again with a new handle */
    int64_t rejoined_at; /* when a fenced member last joined again (ms; 0: never) */
    unsigned long assignments; /* assignments received: one per rebalance this member took part in */
    arStats published;   /* what the counters show already */
    unsigned long published_assignments;
    dsMetric *mRecords, *mFiles, *mBytes, *mQuarantined, *mOpen, *mOldest, *mLag, *mAssigned, *mHeld, *mAssignments;
};

static void acCommit(void *ctx, int32_t partition, int64_t next) {
    arConsumer *c = ctx;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->topic, partition)->offset = next;
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    if (err)
        dsLogWarn("partition %d: offset %lld not committed (%s); it will be archived again under the same name",
                  partition, (long long)next, rd_kafka_err2str(err));
}

/* librdkafka knows the group has given this archiver's partitions away (its
 * session timed out, as after a stall) while the revocation has not reached
 * the poll yet: their new owners write them from the committed offsets. */
static bool acLost(void *ctx) {
    arConsumer *c = ctx;
    return rd_kafka_assignment_lost(c->rk) != 0;
}

static void acRebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *l, void *opaque) {
    arConsumer *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (l->cnt > 0) dsKafkaHealthOk(c->health, c->topic);
        c->assignments++;
        dsLogInfo("assigned %d partitions of %s", l->cnt, c->topic);
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].partition >= 0 && l->elems[i].partition < AR_MAX_PARTITIONS)
                c->assigned[l->elems[i].partition] = true;
        rd_kafka_assign(rk, l);
        return;
    }
    for (int i = 0; i < l->cnt; i++) {
        int32_t pt = l->elems[i].partition;
        if (pt < 0 || pt >= AR_MAX_PARTITIONS) continue;
        arArchiverRevoke(c->archiver, pt);
        dsKafkaHoldRelease(rk, c->topic, pt, &c->holds[pt]);
        c->assigned[pt] = false;
    }
    rd_kafka_assign(rk, NULL);
}

static bool acConf(arConsumer *c, char *errbuf, size_t errlen);

/* A new handle in place of a fenced one: what the old one had assigned is
 * given up (open files dropped, as after a revocation) and the group is
 * joined again under the same group.instance.id. */
static bool acRejoin(arConsumer *c, char *errbuf, size_t errlen) {
    arArchiverAbortAll(c->archiver);
    memset(c->assigned, 0, sizeof(c->assigned));
    memset(c->holds, 0, sizeof(c->holds));
    dsKafkaHealthAttach(c->health, NULL);
    rd_kafka_destroy(c->rk); /* fenced: nothing to commit, no group to leave */
    c->rk = NULL;
    if (!acConf(c, errbuf, errlen)) return false;
    dsKafkaHealthAttach(c->health, c->rk);
    c->rejoined_at = dsTimeNowMs();
    return dsKafkaGroupSubscribe(c->rk, c->topic, errbuf, errlen);
}

/* A fatal error; librdkafka reports it through the error callback or as a
 * consumer error, and it is checked at every step besides. Fenced by a
 * member with the same group.instance.id, the member joins once more: the
 * other member may be itself (a JoinGroup retried across a coordinator
 * outage that outlasted the session registers the id twice). Fenced again
 * soon after, another member really holds the id: it stops, naming the
 * option to change. Any other fatal error stops it. */
static bool acFatal(arConsumer *c) {
    if (c->failed) return true;
    rd_kafka_resp_err_t err = rd_kafka_fatal_error(c->rk, NULL, 0);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return false;
    char msg[1536], why[512];
    dsKafkaGroupFatal(c->rk, &c->group, c->env_prefix, msg, sizeof(msg));
    int64_t calm_ms = 2 * (int64_t)c->group.session_timeout_ms;
    if (err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID &&
        (c->rejoined_at == 0 || dsTimeNowMs() - c->rejoined_at > calm_ms)) {
        dsLogWarn("fenced in group %s; joining again, and stopping if fenced again within %lld ms: %s",
                  c->group_id, (long long)calm_ms, msg);
        if (acRejoin(c, why, sizeof(why))) return false;
        dsLogError("stopping: cannot join again: %s", why);
        return c->failed = true;
    }
    dsLogError("stopping: %s", msg);
    return c->failed = true;
}

/* A fatal error is left to the next step's acFatal(): it may replace the
 * handle, which must not happen inside one of its callbacks. */
static void acOnError(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    arConsumer *c = opaque;
    if (err != RD_KAFKA_RESP_ERR__FATAL) dsKafkaHealthOnError(c->health, (rd_kafka_resp_err_t)err, reason);
}

/* The commit lag: for every partition of the topic this member reads, the
 * end offset (the last stable one, read_committed) minus the committed. */
static long long acLag(const char *json, size_t len, const char *topic) {
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *parts = json_object_get(json_object_get(json_object_get(root, "topics"), topic), "partitions");
    const char *key;
    json_t *p;
    long long lag = parts ? 0 : -1;
    json_object_foreach(parts, key, p) {
        json_int_t l = json_integer_value(json_object_get(p, "consumer_lag"));
        if (strcmp(key, "-1") != 0 && l > 0) lag += l;
    }
    json_decref(root);
    return lag;
}

static int acOnStats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    arConsumer *c = opaque;
    dsKafkaHealthStats(c->health, json, len);
    c->lag = acLag(json, len, c->topic);
    return 0;
}

static bool acConf(arConsumer *c, char *errbuf, size_t errlen) {
    rd_kafka_conf_t *conf = dsKafkaConfNew(c->kafka, errbuf, errlen);
    if (conf == NULL) return false;
    if (!dsKafkaGroupConf(conf, &c->group, errbuf, errlen) ||
        !dsKafkaConfSet(conf, "enable.partition.eof", "true", errbuf, errlen) ||
        !dsKafkaHealthConf(conf, errbuf, errlen)) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_rebalance_cb(conf, acRebalance);
    rd_kafka_conf_set_error_cb(conf, acOnError);
    rd_kafka_conf_set_stats_cb(conf, acOnStats);
    if ((c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errlen)) == NULL) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new owns conf on success only */
        return false;
    }
    return true;
}


arConsumer *arConsumerNew(const arConsumerConfig *cfg, const arFiles *files, char *errbuf, size_t errlen) {
    arConsumer *c = calloc(1, sizeof(*c));
    if (c == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    c->lag = -1;
    c->kafka = cfg->kafka;
    c->topic = strdup(cfg->topic);
    c->group_id = strdup(cfg->group.group_id);
    c->instance_id = strdup(cfg->group.instance_id ? cfg->group.instance_id : DS_KAFKA_INSTANCE_AUTO);
    c->env_prefix = strdup(cfg->env_prefix);
    c->group = (dsKafkaGroup){c->group_id, c->instance_id, cfg->group.program, cfg->group.session_timeout_ms};
    arCommitter committer = {c, acCommit, acLost};
    if (!c->topic || !c->group_id || !c->instance_id || !c->env_prefix ||
        (c->health = dsKafkaHealthNew(cfg->kafka, cfg->topic)) == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto failed;
    }
    if ((c->archiver = arArchiverNew(files, &committer, errbuf, errlen)) == NULL ||
        !acConf(c, errbuf, errlen))
        goto failed;
    dsKafkaHealthAttach(c->health, c->rk);
    if (!dsKafkaGroupSubscribe(c->rk, c->topic, errbuf, errlen))
        goto failed;
    return c;
failed:
    arConsumerFree(c);
    return NULL;
}

void arConsumerFree(arConsumer *c) {
    if (c == NULL) return;
    if (c->rk) {
        rd_kafka_consumer_close(c->rk);
        dsKafkaHealthAttach(c->health, NULL);
        rd_kafka_destroy(c->rk);
    }
    arArchiverFree(c->archiver);
    dsKafkaHealthFree(c->health);
    free(c->topic);
    free(c->group_id);
    free(c->instance_id);
    free(c->env_prefix);
    free(c);
}

/* A consumer error (a missing topic among them). */
static void acConsumerError(arConsumer *c, const rd_kafka_message_t *m) {
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : c->topic;
    if (dsKafkaHealthError(c->health, m->err, rd_kafka_message_errstr(m), topic) == DS_KAFKA_OK)
        dsLogWarn("kafka: %s", rd_kafka_message_errstr(m));
}

/* One message; false on a storage failure. */
static bool acMessage(arConsumer *c, rd_kafka_message_t *m) {
    int32_t pt = m->partition;
    /* fetched before a hold took effect: it comes again after the held one */
    if (pt >= 0 && pt < AR_MAX_PARTITIONS && c->holds[pt].held) return true;
    if (acLost(c)) return true;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* only for a partition held now: an end from before a revocation
         * would commit past what its new owner has archived */
        if (pt >= 0 && pt < AR_MAX_PARTITIONS && c->assigned[pt]) arArchiverEnd(c->archiver, pt, m->offset);
        return true;
    }
    char why[1536];
    arOutcome o = arArchiverMessage(c->archiver, pt, m->offset, m->payload, m->len, dsTimeNowMs(), why, sizeof(why));
    if (o == AR_HOLD) {
        snprintf(c->held_why, sizeof(c->held_why), "partition %d held at offset %lld: %.1500s", pt,
                 (long long)m->offset, why);
        dsKafkaHoldPartition(c->rk, c->topic, pt, m->offset, &c->holds[pt], why);
        return true;
    }
    if (o == AR_DONE) dsKafkaHoldDone(pt, &c->holds[pt]); /* the held message is handled */
    return o != AR_FAIL;
}

bool arConsumerStep(arConsumer *c, int timeout_ms) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    bool ok = true;
    if (m != NULL) {
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            dsKafkaHealthOk(c->health, c->topic);
            ok = acMessage(c, m);
        } else if (m->err != RD_KAFKA_RESP_ERR__FATAL) {
            acConsumerError(c, m);
        }
        rd_kafka_message_destroy(m);
    }
    dsKafkaHealthTick(c->health);
    if (ok && !acFatal(c) && arArchiverTick(c->archiver, dsTimeNowMs())) {
        dsKafkaHoldResumeDue(c->rk, c->topic, c->holds, AR_MAX_PARTITIONS);
        return true;
    }
    arArchiverAbortAll(c->archiver);
    return false; /* a restart re-reads from the last committed offsets */
}

bool arConsumerFinish(arConsumer *c) {
    return arArchiverFinishAll(c->archiver);
}

const char *arConsumerHeldUp(arConsumer *c, char *why, size_t len) {
    if (dsKafkaHealthProblem(c->health, why, len) != DS_KAFKA_OK) return "kafka";
    int held = 0;
    for (int i = 0; i < AR_MAX_PARTITIONS; i++) held += c->holds[i].held;
    if (held == 0) return NULL;
    snprintf(why, len, "%s%s", c->held_why, held > 1 ? " (and more partitions held)" : "");
    return "held";
}

static void acRegister(arConsumer *c, dsMetrics *m) {
    c->mRecords = dsMetricsCounter(m, "archiver_records_total", "Records archived in committed files");
    c->mFiles = dsMetricsCounter(m, "archiver_files_total", "Archive files committed");
    c->mBytes = dsMetricsCounter(m, "archiver_bytes_total", "Bytes of the archive files committed");
    c->mQuarantined = dsMetricsCounter(m, "archiver_quarantined_total",
                                       "Records kept under <root>/quarantine: no place in the archive layout");
    c->mOpen = dsMetricsGauge(m, "archiver_open_files", "Archive files being written (not committed yet)");
    c->mOldest = dsMetricsGauge(m, "archiver_oldest_open_file_age_seconds",
                                "Age of the oldest file being written (0: none); max-age bounds it");
    c->mLag = dsMetricsGauge(m, "archiver_commit_lag_records",
                             "Records of the assigned partitions not yet in a committed file (end offset minus "
                             "committed offset, at the last statistics; -1 unknown)");
    c->mAssigned = dsMetricsGauge(m, "archiver_partitions_assigned", "Partitions this archiver reads");
    c->mAssignments = dsMetricsCounter(m, "archiver_assignments_total",
                                       "Partition assignments received (one per rebalance; a static member restarted "
                                       "in time gets its partitions back without one)");
    c->mHeld = dsMetricsGauge(m, "archiver_partitions_held",
                              "Partitions held at a message (a schema not learned yet, a file another archiver writes)");
}

void arConsumerPublish(arConsumer *c, dsMetrics *m) {
    if (c->mRecords == NULL) acRegister(c, m);
    arStats s = arArchiverStats(c->archiver, dsTimeNowMs());
    dsMetricInc(c->mRecords, (double)(s.records - c->published.records));
    dsMetricInc(c->mFiles, (double)(s.files - c->published.files));
    dsMetricInc(c->mBytes, (double)(s.bytes - c->published.bytes));
    dsMetricInc(c->mQuarantined, (double)(s.quarantined - c->published.quarantined));
    c->published = s;
    dsMetricSet(c->mOpen, (double)s.open_files);
    dsMetricSet(c->mOldest, (double)s.oldest_open_ms / 1000.0);
    dsMetricSet(c->mLag, (double)c->lag);
    int assigned = 0, held = 0;
    for (int i = 0; i < AR_MAX_PARTITIONS; i++) assigned += c->assigned[i], held += c->holds[i].held;
    dsMetricSet(c->mAssigned, assigned);
    dsMetricSet(c->mHeld, held);
    dsMetricInc(c->mAssignments, (double)c->assignments - c->published_assignments);
    c->published_assignments = c->assignments;
    dsKafkaHealthPublish(c->health, m);
}
