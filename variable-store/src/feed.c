/* feed.c - the writer thread: Kafka consumer, ingest jobs, one transaction
 * per batch with its offsets, the sweep (see feed.h). */
#include "feed.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/codec.h"
#include "ds/kafkagroup.h"
#include "ds/kafkahealth.h"
#include "ds/kafkahold.h"
#include "ds/learn.h"
#include "ds/log.h"
#include "ds/timefmt.h"

#define FEED_MAX_PARTITIONS 1024
#define FEED_SWEEP_VISITS 20000
#define FEED_SWEEP_MIN_VISITS 8
#define FEED_SWEEP_FULL_VISITS 64 /* the first step on a full map */
#define FEED_SEEK_TIMEOUT_MS 2000
#define FEED_METADATA_TIMEOUT_MS 2000
#define FEED_END_CHECK_MS 1000

typedef struct feedPartition {
    int64_t next;      /* next offset to consume; -1 before the first message */
    int64_t committed; /* next as of the last commit (where a rewind goes); -1: the beginning */
    bool assigned, eof, dirty;
    int64_t end; /* the end to reach when EOF does not come (feedReachEnds); -1: not asked yet */
} feedPartition;

/* What a batch counts, published only once it is committed: an aborted
 * batch comes again and must not be counted twice. */
typedef struct feedTally {
    uint64_t consumed, counted, duplicates, expired, rejected, ingested;
} feedTally;

struct vsFeed {
    vsFeedConfig cfg;
    char *topic, *group_id, *instance_id;
    dsKafkaGroup group; /* of the consumer; its strings are the ones above */
    vsStore *store;
    const vsVars *vars;
    dsCodec *codec; /* the writer thread's own */
    dsLearner *learner; /* the writer thread's; NULL without a registry */
    avro_value_t value;
    vsBuf prep;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    dsKafkaHealth *health; /* with a consumer: what the cluster refuses, if anything */
    rd_kafka_message_t **msgs;
    feedPartition parts[FEED_MAX_PARTITIONS];
    dsKafkaHold holds[FEED_MAX_PARTITIONS]; /* partitions waiting for a schema */
    bool assigned_once;
    int64_t next_end_check; /* feedReachEnds, while not caught up */
    uint64_t end_check_consumed; /* counters.consumed at its last check */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    vsFeedJob *head, *tail; /* under mu */
    atomic_bool stopping, failed, caught_up;
    atomic_int assigned_of; /* 0, or the topic's partitions when fewer were assigned: the group is shared */
    atomic_int assigned_have;
    int64_t next_sweep;
    bool sweeping;
    size_t sweep_visits; /* smaller while the map is too full for a large sweep */
    bool freed;          /* while full: the sweep deleted something not yet made reusable */
    int64_t next_reader_check;
    size_t queued_jobs, queued_bytes; /* under mu */
    atomic_bool full;        /* the map is full: paused, ingest refused */
    atomic_bool start_sweep; /* the start-up sweep is running */
    bool room;               /* while full: a sweep or reader check freed something */
    vsFeedCounters counters;
};

#define FEED_FULL_WHY                                                                                            \
    "the LMDB map is full: consumption is paused and ingest refused until the sweep frees room or the store is " \
    "restarted with a larger --map-size"

static void feedPause(vsFeed *f, rd_kafka_topic_partition_list_t *l);

bool vsFeedJobMark(vsFeedJob *job) {
    if (job->n == job->cap) {
        size_t cap = job->cap ? job->cap * 2 : 64;
        size_t *grown = realloc(job->ends, cap * sizeof(size_t));
        if (grown == NULL) return false;
        job->ends = grown, job->cap = cap;
    }
    job->ends[job->n++] = job->prepared.len;
    return true;
}

void vsFeedJobFree(vsFeedJob *job) {
    vsBufFree(&job->prepared);
    free(job->ends);
    job->ends = NULL;
    job->n = job->cap = 0;
}

static void feedCheckCaughtUp(vsFeed *f) {
    if (!f->assigned_once) return;
    for (int p = 0; p < FEED_MAX_PARTITIONS; p++)
        if (f->parts[p].assigned && !f->parts[p].eof) return;
    if (!atomic_exchange(&f->caught_up, true)) dsLogInfo("caught up with %s: the variables are current", f->topic);
}

/* Under a steady load from a transactional producer a read_committed
 * fetch is answered when a commit moves the stable offset of every
 * partition at once, so each answer brings records and EOF may never come.
 * A partition also counts as read to its end once its position (past
 * transaction markers) reaches the stable end it had when first asked
 * after the assignment: everything there was then is read. */
static void feedReachEnds(vsFeed *f) {
    int64_t now = dsTimeNowMs();
    if (f->rk == NULL || !f->assigned_once || atomic_load(&f->caught_up) || now < f->next_end_check) return;
    f->next_end_check = now + FEED_END_CHECK_MS;
    /* Only while records arrive: idle, EOF comes; with the cluster away the
     * queries below would only block this thread. */
    uint64_t consumed = atomic_load(&f->counters.consumed);
    if (consumed == f->end_check_consumed) return;
    f->end_check_consumed = consumed;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < FEED_MAX_PARTITIONS; p++) {
        feedPartition *fp = &f->parts[p];
        int64_t lo, hi;
        if (!fp->assigned || fp->eof || f->holds[p].held) continue;
        /* read_committed: the high offset of a query is the stable one */
        if (fp->end < 0 && rd_kafka_query_watermark_offsets(f->rk, f->topic, p, &lo, &hi, FEED_METADATA_TIMEOUT_MS) ==
                               RD_KAFKA_RESP_ERR_NO_ERROR)
            fp->end = hi;
        if (fp->end >= 0) rd_kafka_topic_partition_list_add(l, f->topic, p);
    }
    if (l->cnt > 0 && rd_kafka_position(f->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].offset >= 0 && l->elems[i].offset >= f->parts[l->elems[i].partition].end)
                f->parts[l->elems[i].partition].eof = true;
    rd_kafka_topic_partition_list_destroy(l);
    feedCheckCaughtUp(f);
}

/* A store needs every partition (a merchant's or customer's decisions may
 * be on any of them): an assignment of fewer than the topic has means
 * another member shares the group, and this store's answers are partial
 * until it leaves. Said in /readyz and the log; not fatal, since the
 * partitions come back here if the other member goes. */
static void feedCheckWhole(vsFeed *f, rd_kafka_t *rk, int have) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, f->topic, NULL);
    rd_kafka_resp_err_t err = t ? rd_kafka_metadata(rk, 0, t, &md, FEED_METADATA_TIMEOUT_MS) : RD_KAFKA_RESP_ERR__FAIL;
    int of = err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
    if (md) rd_kafka_metadata_destroy(md);
    if (t) rd_kafka_topic_destroy(t);
    if (of == 0) dsLogDebug("cannot count the partitions of %s: %s", f->topic, rd_kafka_err2str(err));
    atomic_store(&f->assigned_have, have);
    atomic_store(&f->assigned_of, have < of ? of : 0);
    if (have < of)
        dsLogError("consumer group \"%s\" is shared: this store was assigned %d of the %d partitions of %s, and its "
                   "answers count only those; give every store directory its own --group-id",
                   f->group_id, have, of, f->topic);
}

/* Partitions resume at the offsets the store recorded with its state. */
static void feedRebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *l, void *opaque) {
    vsFeed *f = opaque;
    if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int p = 0; p < FEED_MAX_PARTITIONS; p++) {
            f->parts[p].assigned = false;
            dsKafkaHoldRelease(rk, f->topic, p, &f->holds[p]);
        }
        rd_kafka_assign(rk, NULL);
        return;
    }
    for (int i = 0; i < l->cnt; i++) {
        int32_t p = l->elems[i].partition;
        int64_t next;
        if (p < 0 || p >= FEED_MAX_PARTITIONS) {
            dsLogError("partition %d is beyond this store's limit of %d: not consumed", p, FEED_MAX_PARTITIONS);
            continue;
        }
        bool recorded = vsStoreGetOffset(f->store, f->topic, p, &next);
        l->elems[i].offset = recorded ? next : RD_KAFKA_OFFSET_BEGINNING;
        f->parts[p] = (feedPartition){recorded ? next : -1, recorded ? next : -1, true, false, false, -1};
        if (recorded) dsLogInfo("partition %d: resuming at offset %lld", p, (long long)next);
        else dsLogInfo("partition %d: nothing recorded, reading from the beginning", p);
    }
    if (l->cnt > 0) dsKafkaHealthOk(f->health, f->topic);
    rd_kafka_assign(rk, l);
    if (atomic_load(&f->full)) feedPause(f, l); /* resumed, sought to the recorded offsets, with the others */
    feedCheckWhole(f, rk, l->cnt);
    f->assigned_once = true;
    feedCheckCaughtUp(f);
}

/* A fatal error (fenced by a member with the same group.instance.id) ends
 * the consumer for good: the writer stops and the store exits 1. */
static void feedOnError(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    vsFeed *f = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char msg[1536];
        dsKafkaGroupFatal(rk, &f->group, "VARSTORE_", msg, sizeof(msg));
        if (!atomic_exchange(&f->failed, true)) dsLogError("stopping: %s", msg);
        return;
    }
    dsKafkaHealthOnError(f->health, (rd_kafka_resp_err_t)err, reason);
}

static int feedOnStats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    vsFeed *f = opaque;
    dsKafkaHealthStats(f->health, json, len);
    return 0;
}

static bool feedConsumer(vsFeed *f, const dsKafkaOptions *kafka, char *errbuf, size_t errlen) {
    if ((f->health = dsKafkaHealthNew(kafka, f->topic)) == NULL) return snprintf(errbuf, errlen, "out of memory"), false;
    rd_kafka_conf_t *conf = dsKafkaConfNew(kafka, errbuf, errlen);
    if (conf == NULL) return false;
    rd_kafka_conf_set_opaque(conf, f);
    rd_kafka_conf_set_rebalance_cb(conf, feedRebalance);
    f->group = (dsKafkaGroup){f->group_id, f->instance_id, "variable-store", f->cfg.session_timeout_ms};
    if (!dsKafkaGroupConf(conf, &f->group, errbuf, errlen) ||
        !dsKafkaConfSet(conf, "enable.auto.offset.store", "false", errbuf, errlen) ||
        !dsKafkaConfSet(conf, "enable.partition.eof", "true", errbuf, errlen) ||
        !dsKafkaHealthConf(conf, errbuf, errlen)) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_conf_set_error_cb(conf, feedOnError);
    rd_kafka_conf_set_stats_cb(conf, feedOnStats);
    if ((f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errlen)) == NULL) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new owns conf on success only */
        return false;
    }
    dsKafkaHealthAttach(f->health, f->rk);
    if (!dsKafkaGroupSubscribe(f->rk, f->topic, errbuf, errlen)) return false;
    f->queue = rd_kafka_queue_get_consumer(f->rk);
    return true;
}

static void feedCount(feedTally *t, vsApplyResult res, vsFeedJob *job) {
    switch (res) {
    case VS_APPLY_COUNTED:
        t->counted++;
        if (job) job->counted++;
        break;
    case VS_APPLY_DUPLICATE:
        t->duplicates++;
        if (job) job->duplicates++;
        break;
    default:
        t->expired++;
        if (job) job->expired++;
    }
}

static void feedPublish(vsFeed *f, const feedTally *t) {
    atomic_fetch_add(&f->counters.consumed, t->consumed);
    atomic_fetch_add(&f->counters.ingested, t->ingested);
    atomic_fetch_add(&f->counters.counted, t->counted);
    atomic_fetch_add(&f->counters.duplicates, t->duplicates);
    atomic_fetch_add(&f->counters.expired, t->expired);
    atomic_fetch_add(&f->counters.rejected, t->rejected);
}

/* Whether m's schema is known, learning it from the registry if need be.
 * false: it cannot be learned now, and the partition is held at m;
 * *why is then unset.
 * Otherwise *why is NULL, or says why m can never be decoded. */
static bool feedSchema(vsFeed *f, rd_kafka_message_t *m, const char **why, char *buf, size_t len) {
    int version;
    dsLearnResult r = dsLearnWire(f->learner, f->codec, m->payload, m->len, &version, buf, len);
    dsKafkaHold *h = &f->holds[m->partition];
    if (r == DS_LEARN_TRANSIENT) {
        dsKafkaHoldPartition(f->rk, f->topic, m->partition, m->offset, h, buf);
        return false;
    }
    dsKafkaHoldDone(m->partition, h);
    *why = r == DS_LEARN_OK ? NULL : buf;
    return true;
}

/* Whether the decoded record is one the decision API could have accepted:
 * every rule of its schema (the stream processor checks them, so only a
 * record produced around it fails), decided_at not later than now plus
 * max_future_ms included. A future decision would be counted in every
 * window until its date, and be every later decision's "last". */
static bool feedValid(vsFeed *f, int64_t now, char *why, size_t len) {
    dsCodecError e;
    if (dsCodecValidateNotFuture(f->codec, &f->value, now, f->cfg.max_future_ms, &e)) return true;
    snprintf(why, len, "%s", e.message);
    return false;
}

/* One Kafka message; false only on a storage error. A record that cannot be
 * decoded is logged and passed over: it can never decode, and the stream
 * processor already sent what failed validation to the dead-letter topic.
 * A record whose schema cannot be fetched yet is neither: its partition is
 * held there (not consumed, its offset not recorded) and it comes again. */
static bool feedMessage(vsFeed *f, rd_kafka_message_t *m, int64_t now, feedTally *t, char *errbuf, size_t errlen) {
    /* before the partition check: a missing topic is reported on none */
    if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : f->topic;
        if (dsKafkaHealthError(f->health, m->err, rd_kafka_message_errstr(m), topic) == DS_KAFKA_OK)
            dsLogWarn("kafka: %s", rd_kafka_message_errstr(m));
        return true;
    }
    if (m->partition < 0 || m->partition >= FEED_MAX_PARTITIONS) return true;
    feedPartition *p = &f->parts[m->partition];
    dsKafkaHealthOk(f->health, f->topic);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        p->eof = true;
        /* The end lies past the transaction markers and aborted records
         * read_committed skips after the last message: recorded as the
         * position, so that a trailing marker shows as no lag. Not while
         * held: the held message comes again. */
        if (!f->holds[m->partition].held && m->offset > p->next) p->next = m->offset, p->dirty = true;
        feedCheckCaughtUp(f);
        return true;
    }
    /* after a held message in the same batch: it comes again after that one */
    if (f->holds[m->partition].held) return true;
    char why[512];
    const char *bad = m->payload ? NULL : "empty message";
    if (m->payload && !feedSchema(f, m, &bad, why, sizeof(why))) return true;
    t->consumed++;
    p->next = m->offset + 1, p->dirty = true;
    vsApplyResult res;
    f->prep.len = 0;
    if (bad == NULL && (!dsCodecDecodeWire(f->codec, m->payload, m->len, &f->value, NULL, why, sizeof(why)) ||
                        !feedValid(f, now, why, sizeof(why)) ||
                        !vsEventPrepare(f->vars, &f->value, &f->prep, why, sizeof(why))))
        bad = why;
    if (bad) {
        t->rejected++;
        dsLogWarn("partition %d offset %lld: not counted: %s", m->partition, (long long)m->offset, bad);
        return true;
    }
    if (!vsStoreApply(f->store, f->prep.data, f->prep.len, now, &res, errbuf, errlen)) return false;
    feedCount(t, res, NULL);
    return true;
}

static bool feedJob(vsFeed *f, vsFeedJob *job, int64_t now, feedTally *t, char *errbuf, size_t errlen) {
    size_t start = 0;
    job->counted = job->duplicates = job->expired = 0;
    for (size_t i = 0; i < job->n; i++) {
        vsApplyResult res;
        if (!vsStoreApply(f->store, job->prepared.data + start, job->ends[i] - start, now, &res, errbuf, errlen))
            return false;
        feedCount(t, res, job);
        start = job->ends[i];
    }
    t->ingested += job->n;
    return true;
}

/* After the commit: the group's offsets, for lag monitoring only, and the lag. */
static void feedAfterCommit(vsFeed *f) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    int64_t lag = 0;
    for (int p = 0; p < FEED_MAX_PARTITIONS; p++) {
        feedPartition *fp = &f->parts[p];
        if (fp->dirty) rd_kafka_topic_partition_list_add(l, f->topic, p)->offset = fp->next;
        fp->dirty = false;
        int64_t lo, hi;
        if (fp->assigned && fp->next >= 0 && rd_kafka_get_watermark_offsets(f->rk, f->topic, p, &lo, &hi) == 0 &&
            hi > fp->next)
            lag += hi - fp->next;
    }
    if (l->cnt > 0) rd_kafka_commit(f->rk, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
    atomic_store(&f->counters.lag, lag);
}

/* One transaction: the messages, the jobs, the offsets. false: storage failed. */
static bool feedBatch(vsFeed *f, rd_kafka_message_t **msgs, size_t n, vsFeedJob *jobs, char *errbuf, size_t errlen) {
    int64_t now = dsTimeNowMs();
    feedTally t = {0};
    if (!vsStoreBegin(f->store, errbuf, errlen)) return false;
    for (size_t i = 0; i < n; i++)
        if (!feedMessage(f, msgs[i], now, &t, errbuf, errlen)) goto failed;
    for (vsFeedJob *j = jobs; j; j = j->next)
        if (!feedJob(f, j, now, &t, errbuf, errlen)) goto failed;
    for (int p = 0; p < FEED_MAX_PARTITIONS; p++)
        if (f->parts[p].dirty && !vsStoreSetOffset(f->store, f->topic, p, f->parts[p].next, errbuf, errlen))
            goto failed;
    if (!vsStoreCommit(f->store, errbuf, errlen)) return false;
    for (int p = 0; p < FEED_MAX_PARTITIONS; p++)
        if (f->parts[p].dirty) f->parts[p].committed = f->parts[p].next;
    feedPublish(f, &t);
    atomic_fetch_add(&f->counters.commits, 1);
    atomic_store(&f->counters.last_commit_ms, now);
    if (f->rk) feedAfterCommit(f);
    return true;
failed:
    vsStoreAbort(f->store);
    return false;
}

/* Hands a job back to its submitter, out of the queue's count. */
static void feedJobDone(vsFeed *f, vsFeedJob *job) {
    pthread_mutex_lock(&f->mu);
    f->queued_jobs--, f->queued_bytes -= job->bytes;
    atomic_store(&f->counters.queue_jobs, f->queued_jobs);
    atomic_store(&f->counters.queue_bytes, f->queued_bytes);
    pthread_mutex_unlock(&f->mu);
    job->on_done(job);
}

static void feedFinishJobs(vsFeed *f, vsFeedJob *jobs, bool ok, const char *error) {
    while (jobs) {
        vsFeedJob *next = jobs->next;
        jobs->next = NULL;
        jobs->status = ok ? 200 : 503;
        if (!ok) snprintf(jobs->error, sizeof(jobs->error), "%.255s", error);
        feedJobDone(f, jobs);
        jobs = next;
    }
}

/* Runs the jobs' prepare callbacks; the ones refused are answered at once
 * and left out of the returned list. */
static vsFeedJob *feedPrepareJobs(vsFeed *f, vsFeedJob *jobs) {
    vsFeedJob *kept = NULL, **tail = &kept;
    while (jobs) {
        vsFeedJob *next = jobs->next;
        jobs->next = NULL;
        if (jobs->prepare && !jobs->prepare(jobs, f->codec, &f->value)) {
            feedJobDone(f, jobs);
        } else {
            *tail = jobs;
            tail = &jobs->next;
        }
        jobs = next;
    }
    return kept;
}

static vsFeedJob *feedTakeJobs(vsFeed *f, long wait_ms) {
    pthread_mutex_lock(&f->mu);
    if (f->head == NULL && wait_ms > 0 && !atomic_load(&f->stopping)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        ts.tv_sec += wait_ms / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&f->cond, &f->mu, &ts);
    }
    vsFeedJob *jobs = f->head;
    f->head = f->tail = NULL;
    pthread_mutex_unlock(&f->mu);
    return jobs;
}

static size_t feedPoll(vsFeed *f, bool have_jobs) {
    size_t n = 0;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, have_jobs ? 0 : (int)f->cfg.batch_wait_ms);
    while (m != NULL) {
        f->msgs[n++] = m;
        m = n < f->cfg.batch_max ? rd_kafka_consumer_poll(f->rk, 0) : NULL;
    }
    return n;
}

static bool feedMakeReusable(vsFeed *f);

/* A step of the sweep when one is due or under way; *wrapped when it
 * finished a pass. Returns the number deleted (0 on error, logged).
 * Deleting copies every page it touches first, so on a full map a large
 * step fails where a small one fits: the step shrinks until one commits,
 * and grows back with each success. */
static long feedSweep(vsFeed *f, bool *wrapped) {
    int64_t now = dsTimeNowMs();
    *wrapped = false;
    if (!f->sweeping && now < f->next_sweep) return 0;
    char err[512];
    f->sweeping = true;
    long n = vsStoreSweep(f->store, now, f->sweep_visits, wrapped, err, sizeof(err));
    if (n >= 0) {
        atomic_fetch_add(&f->counters.swept, (uint64_t)n);
        f->sweep_visits = f->sweep_visits * 2 > FEED_SWEEP_VISITS ? FEED_SWEEP_VISITS : f->sweep_visits * 2;
        f->freed |= n > 0;
        /* On a full map each step's pages are made reusable before the
         * next, so that the steps feed each other rather than drain the
         * few pages left. */
        if (atomic_load(&f->full) || atomic_load(&f->start_sweep)) feedMakeReusable(f);
    } else if (vsStoreFull(f->store) && f->sweep_visits > FEED_SWEEP_MIN_VISITS) {
        dsLogDebug("sweep of %zu events: %s; trying smaller steps", f->sweep_visits, err);
        f->sweep_visits = f->sweep_visits / 4 < FEED_SWEEP_MIN_VISITS ? FEED_SWEEP_MIN_VISITS : f->sweep_visits / 4;
        return 0; /* still under way */
    } else {
        dsLogWarn("sweep: %s", err);
    }
    if (n < 0 || *wrapped) f->sweeping = false, f->next_sweep = now + f->cfg.sweep_interval_ms;
    return n < 0 ? 0 : n;
}

/* After a sweep deleted something: one more commit, so that the pages it
 * freed can be reused (vsStoreTouch). false if not even that fits. */
static bool feedMakeReusable(vsFeed *f) {
    char err[512];
    if (!f->freed) return true;
    if (!vsStoreTouch(f->store, dsTimeNowMs(), err, sizeof(err))) {
        dsLogDebug("%s", err);
        return false;
    }
    f->freed = false;
    return true;
}

/* Clears stale readers when due; returns how many. */
static long feedReaderCheck(vsFeed *f) {
    int64_t now = dsTimeNowMs();
    if (now < f->next_reader_check) return 0;
    char err[512];
    f->next_reader_check = now + f->cfg.reader_check_ms;
    long n = vsStoreReaderCheck(f->store, err, sizeof(err));
    if (n < 0) dsLogWarn("%s", err);
    return n < 0 ? 0 : n;
}

/* Every partition assigned, each at the offset a rewind goes to. */
static rd_kafka_topic_partition_list_t *feedAssigned(vsFeed *f) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (int p = 0; p < FEED_MAX_PARTITIONS; p++)
        if (f->parts[p].assigned)
            rd_kafka_topic_partition_list_add(l, f->topic, p)->offset =
                f->parts[p].committed >= 0 ? f->parts[p].committed : RD_KAFKA_OFFSET_BEGINNING;
    return l;
}

static void feedPause(vsFeed *f, rd_kafka_topic_partition_list_t *l) {
    rd_kafka_resp_err_t err = l->cnt ? rd_kafka_pause_partitions(f->rk, l) : 0;
    /* Not fatal: what is fetched meanwhile is dropped, and the seek before
     * the resume brings it back. */
    if (err) dsLogWarn("cannot pause the partitions: %s", rd_kafka_err2str(err));
}

/* The batch was aborted for want of room: forget what it read, hold
 * everything, and start a sweep pass at once. */
static void feedMapFull(vsFeed *f, const char *err) {
    atomic_fetch_add(&f->counters.map_full, 1);
    dsLogError("%s (%s)", FEED_FULL_WHY, err);
    for (int p = 0; p < FEED_MAX_PARTITIONS; p++) {
        f->parts[p].next = f->parts[p].committed, f->parts[p].dirty = false;
        f->holds[p] = (dsKafkaHold){0}; /* the rewind brings the held message back too */
    }
    atomic_store(&f->full, true);
    if (f->rk) {
        rd_kafka_topic_partition_list_t *l = feedAssigned(f);
        feedPause(f, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
    f->sweeping = true, f->room = false;
    f->sweep_visits = FEED_SWEEP_FULL_VISITS;
}

/* Seeks every partition back to its last committed offset and resumes it;
 * false (still held) if a seek failed. */
static bool feedRewind(vsFeed *f) {
    rd_kafka_topic_partition_list_t *l = feedAssigned(f);
    rd_kafka_error_t *error = l->cnt ? rd_kafka_seek_partitions(f->rk, l, FEED_SEEK_TIMEOUT_MS) : NULL;
    bool ok = error == NULL;
    for (int i = 0; ok && i < l->cnt; i++) ok = l->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!ok) dsLogWarn("cannot seek back to the recorded offsets (%s); trying again later",
                       error ? rd_kafka_error_string(error) : "a partition failed");
    if (error) rd_kafka_error_destroy(error);
    if (ok && l->cnt) rd_kafka_resume_partitions(f->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return ok;
}

/* One round while the map is full: ingest jobs are answered 503, nothing
 * is consumed (the poll only serves rebalances), the sweep goes on. */
static void feedWhileFull(vsFeed *f) {
    feedFinishJobs(f, feedTakeJobs(f, f->rk ? 0 : f->cfg.batch_wait_ms), false, FEED_FULL_WHY);
    if (f->rk) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, (int)f->cfg.batch_wait_ms);
        if (m) rd_kafka_message_destroy(m); /* fetched before the pause: the rewind reads it again */
    }
    bool wrapped;
    if (!feedMakeReusable(f)) return; /* sweeping on would only use up what is left */
    if (feedSweep(f, &wrapped) > 0 || feedReaderCheck(f) > 0) f->room = true;
    /* after the whole pass, so that one try uses all the room it made */
    if (!f->room || f->sweeping || !feedMakeReusable(f)) return;
    if (f->rk && !feedRewind(f)) return;
    dsLogInfo("room in the LMDB map again: consuming from the recorded offsets");
    atomic_store(&f->full, false);
}

/* A store stopped full would fail its first batch again: a whole sweep
 * pass runs before anything is consumed. */
static void feedStartSweep(vsFeed *f) {
    uint64_t room, map;
    atomic_store(&f->start_sweep, true);
    bool wrapped = false;
    f->sweeping = true;
    f->sweep_visits = FEED_SWEEP_FULL_VISITS;
    long n = 0;
    while (!wrapped && f->sweeping && !atomic_load(&f->stopping)) n += feedSweep(f, &wrapped);
    feedMakeReusable(f);
    if (vsStoreSpace(f->store, &room, &map))
        dsLogInfo("swept %ld expired events before consuming; %llu of %llu bytes of the LMDB map free", n,
                  (unsigned long long)room, (unsigned long long)map);
    atomic_store(&f->start_sweep, false);
}

static void *feedMain(void *arg) {
    vsFeed *f = arg;
    char err[1024];
    feedReaderCheck(f);
    feedStartSweep(f);
    while (!atomic_load(&f->stopping)) {
        if (atomic_load(&f->full)) {
            feedWhileFull(f);
            continue;
        }
        vsFeedJob *jobs = feedPrepareJobs(f, feedTakeJobs(f, f->rk ? 0 : f->cfg.batch_wait_ms));
        size_t n = f->rk ? feedPoll(f, jobs != NULL) : 0;
        bool ok = (n == 0 && jobs == NULL) || feedBatch(f, f->msgs, n, jobs, err, sizeof(err));
        for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(f->msgs[i]);
        /* Nothing of a failed batch was kept: it comes again after the
         * rewind, or after a restart from the last commit. */
        if (!ok && vsStoreFull(f->store)) feedMapFull(f, err);
        feedFinishJobs(f, jobs, ok, ok ? "" : vsStoreFull(f->store) ? FEED_FULL_WHY : err);
        if (!ok && !vsStoreFull(f->store)) {
            dsLogError("storage failed, stopping: %s", err);
            atomic_store(&f->failed, true);
            break;
        }
        if (atomic_load(&f->failed)) break; /* the consumer's fatal error, logged */
        bool wrapped;
        feedSweep(f, &wrapped);
        f->freed = false; /* the next batch's commit makes its pages reusable */
        feedReaderCheck(f);
        feedReachEnds(f);
        if (f->rk && !atomic_load(&f->full)) dsKafkaHoldResumeDue(f->rk, f->topic, f->holds, FEED_MAX_PARTITIONS);
        if (f->health) dsKafkaHealthTick(f->health);
    }
    feedFinishJobs(f, feedTakeJobs(f, 0), false, "the variable store is stopping");
    if (f->rk) rd_kafka_consumer_close(f->rk);
    return NULL;
}

static void feedFree(vsFeed *f) {
    if (f->queue) rd_kafka_queue_destroy(f->queue);
    if (f->rk) rd_kafka_destroy(f->rk);
    dsKafkaHealthFree(f->health);
    if (f->value.iface) avro_value_decref(&f->value); /* unset when start failed before it */
    dsCodecFree(f->codec);
    vsBufFree(&f->prep);
    free(f->msgs);
    free(f->topic);
    free(f->group_id);
    free(f->instance_id);
    dsLearnerFree(f->learner);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cond);
    free(f);
}

vsFeed *vsFeedStart(const vsFeedConfig *cfg, vsStore *store, const vsVars *vars, char *errbuf, size_t errlen) {
    vsFeed *f = calloc(1, sizeof(*f));
    if (f == NULL) return snprintf(errbuf, errlen, "out of memory"), NULL;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    f->cfg = *cfg;
    f->store = store, f->vars = vars;
    f->topic = strdup(cfg->topic);
    f->group_id = strdup(cfg->group_id);
    f->instance_id = strdup(cfg->instance_id ? cfg->instance_id : DS_KAFKA_INSTANCE_AUTO);
    f->msgs = calloc(cfg->batch_max, sizeof(*f->msgs));
    if (f->topic == NULL || f->group_id == NULL || f->instance_id == NULL || f->msgs == NULL) {
        snprintf(errbuf, errlen, "out of memory");
        goto failed;
    }
    if ((f->codec = dsCodecNewForDirOption(cfg->schemas_dir, errbuf, errlen)) == NULL) goto failed;
    if (cfg->registry_url && *cfg->registry_url &&
        (f->learner = dsLearnerNew(cfg->registry_url, "--registry-url", errbuf, errlen)) == NULL)
        goto failed;
    if (!dsCodecNewValue(f->codec, &f->value)) {
        f->value.iface = NULL;
        snprintf(errbuf, errlen, "cannot create an Avro value");
        goto failed;
    }
    if (cfg->kafka && cfg->kafka->brokers && *cfg->kafka->brokers) {
        if (!feedConsumer(f, cfg->kafka, errbuf, errlen)) goto failed;
    } else {
        atomic_store(&f->caught_up, true);
    }
    f->next_sweep = dsTimeNowMs() + cfg->sweep_interval_ms;
    f->sweep_visits = FEED_SWEEP_VISITS;
    f->next_reader_check = 0;
    if (f->cfg.queue_max == 0) f->cfg.queue_max = 1;
    if (pthread_create(&f->thread, NULL, feedMain, f) != 0) {
        snprintf(errbuf, errlen, "cannot start the writer thread");
        goto failed;
    }
    return f;
failed:
    feedFree(f);
    return NULL;
}

void vsFeedStop(vsFeed *f) {
    if (f == NULL) return;
    pthread_mutex_lock(&f->mu);
    atomic_store(&f->stopping, true);
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
    if (f->queue) rd_kafka_queue_yield(f->queue);
    pthread_join(f->thread, NULL);
    feedFree(f);
}

static vsFeedSubmitResult feedAdmit(vsFeed *f, const vsFeedJob *job, char *errbuf, size_t errlen) {
    if (atomic_load(&f->stopping) || atomic_load(&f->failed))
        return snprintf(errbuf, errlen, "the variable store is stopping"), VS_SUBMIT_STOPPING;
    if (atomic_load(&f->full)) return snprintf(errbuf, errlen, FEED_FULL_WHY), VS_SUBMIT_MAP_FULL;
    if (f->queued_jobs >= f->cfg.queue_max)
        return snprintf(errbuf, errlen, "%zu ingest requests are already queued or being applied "
                        "(--ingest-queue-max); retry later", f->queued_jobs), VS_SUBMIT_QUEUE_FULL;
    if (f->queued_jobs > 0 && f->queued_bytes + job->bytes > f->cfg.queue_bytes)
        return snprintf(errbuf, errlen, "the ingest requests queued or being applied hold %zu bytes; %zu more "
                        "would pass --ingest-queue-bytes (%zu); retry later", f->queued_bytes, job->bytes,
                        f->cfg.queue_bytes), VS_SUBMIT_QUEUE_FULL;
    return VS_SUBMIT_OK;
}

vsFeedSubmitResult vsFeedSubmit(vsFeed *f, vsFeedJob *job, char *errbuf, size_t errlen) {
    pthread_mutex_lock(&f->mu);
    vsFeedSubmitResult r = feedAdmit(f, job, errbuf, errlen);
    if (r == VS_SUBMIT_OK) {
        job->next = NULL;
        if (f->tail) f->tail->next = job;
        else f->head = job;
        f->tail = job;
        f->queued_jobs++, f->queued_bytes += job->bytes;
        atomic_store(&f->counters.queue_jobs, f->queued_jobs);
        atomic_store(&f->counters.queue_bytes, f->queued_bytes);
        pthread_cond_signal(&f->cond);
    } else if (r != VS_SUBMIT_STOPPING) {
        atomic_fetch_add(&f->counters.refused, 1);
    }
    pthread_mutex_unlock(&f->mu);
    if (r == VS_SUBMIT_OK && f->queue) rd_kafka_queue_yield(f->queue);
    return r;
}

bool vsFeedCaughtUp(vsFeed *f) {
    return atomic_load(&f->caught_up);
}

bool vsFeedFailed(vsFeed *f) {
    return atomic_load(&f->failed);
}

bool vsFeedMapFull(vsFeed *f) {
    return atomic_load(&f->full);
}

dsKafkaHealth *vsFeedKafkaHealth(vsFeed *f) {
    return f->health;
}

bool vsFeedHeldUp(vsFeed *f, char *why, size_t len) {
    if (f->health && dsKafkaHealthProblem(f->health, why, len) != DS_KAFKA_OK) return true;
    if (atomic_load(&f->full)) return snprintf(why, len, FEED_FULL_WHY), true;
    if (atomic_load(&f->start_sweep))
        return snprintf(why, len, "sweeping expired events before consuming"), true;
    int of = atomic_load(&f->assigned_of);
    if (of > 0)
        return snprintf(why, len, "consumer group \"%s\" is shared: %d of the %d partitions of %s assigned here, and "
                        "a store needs every one (give each store directory its own --group-id)", f->group_id,
                        atomic_load(&f->assigned_have), of, f->topic), true;
    return false;
}

vsFeedCounters *vsFeedGetCounters(vsFeed *f) {
    return &f->counters;
}
