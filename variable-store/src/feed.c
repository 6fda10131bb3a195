/* feed.c - the writer thread: Kafka consumer, ingest jobs, one transaction
 * per batch with its offsets, the sweep (see feed.h). */
#include "feed.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ds/codec.h"
#include "ds/kafkahold.h"
#include "ds/learn.h"
#include "ds/log.h"
#include "ds/timefmt.h"

#define FEED_MAX_PARTITIONS 1024
#define FEED_SWEEP_VISITS 20000

typedef struct feedPartition {
    int64_t next;  /* next offset to consume; -1 before the first message */
    bool assigned, eof, dirty;
} feedPartition;

struct vsFeed {
    vsFeedConfig cfg;
    char *brokers, *topic, *group_id;
    vsStore *store;
    const vsVars *vars;
    dsCodec *codec; /* the writer thread's own */
    dsLearner *learner; /* the writer thread's; NULL without a registry */
    avro_value_t value;
    vsBuf prep;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    rd_kafka_message_t **msgs;
    feedPartition parts[FEED_MAX_PARTITIONS];
    dsKafkaHold holds[FEED_MAX_PARTITIONS]; /* partitions waiting for a schema */
    bool assigned_once;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    vsFeedJob *head, *tail; /* under mu */
    atomic_bool stopping, failed, caught_up;
    int64_t next_sweep;
    bool sweeping;
    vsFeedCounters counters;
};

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
        f->parts[p] = (feedPartition){recorded ? next : -1, true, false, false};
        if (recorded) dsLogInfo("partition %d: resuming at offset %lld", p, (long long)next);
        else dsLogInfo("partition %d: nothing recorded, reading from the beginning", p);
    }
    rd_kafka_assign(rk, l);
    f->assigned_once = true;
    feedCheckCaughtUp(f);
}

static void feedRdkafkaLog(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    dsLog(level <= 3 ? DS_LOG_WARN : DS_LOG_DEBUG, "kafka %s: %s", fac, buf);
}

static bool feedConsumer(vsFeed *f, char *errbuf, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char session[32];
    snprintf(session, sizeof(session), "%ld", f->cfg.session_timeout_ms);
    rd_kafka_conf_set_log_cb(conf, feedRdkafkaLog);
    rd_kafka_conf_set_opaque(conf, f);
    rd_kafka_conf_set_rebalance_cb(conf, feedRebalance);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", f->brokers, errbuf, errlen) ||
        rd_kafka_conf_set(conf, "group.id", f->group_id, errbuf, errlen) ||
        rd_kafka_conf_set(conf, "session.timeout.ms", session, errbuf, errlen) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errbuf, errlen) ||
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errbuf, errlen) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errbuf, errlen) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errbuf, errlen)) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    if ((f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errbuf, errlen)) == NULL) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new owns conf on success only */
        return false;
    }
    rd_kafka_poll_set_consumer(f->rk);
    f->queue = rd_kafka_queue_get_consumer(f->rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, f->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(f->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) snprintf(errbuf, errlen, "cannot subscribe to %s: %s", f->topic, rd_kafka_err2str(err));
    return err == 0;
}

static void feedCount(vsFeed *f, vsApplyResult res, vsFeedJob *job) {
    switch (res) {
    case VS_APPLY_COUNTED:
        atomic_fetch_add(&f->counters.counted, 1);
        if (job) job->counted++;
        break;
    case VS_APPLY_DUPLICATE:
        atomic_fetch_add(&f->counters.duplicates, 1);
        if (job) job->duplicates++;
        break;
    default:
        atomic_fetch_add(&f->counters.expired, 1);
        if (job) job->expired++;
    }
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

/* Whether the decoded record's decided_at is one the decision API could
 * have accepted: not before 2000 (the schema's rule, which the stream
 * processor checks, so only a record produced around it fails) and not
 * later than now plus max_future_ms. A future decision would be counted in
 * every window until its date, and be every later decision's "last". */
static bool feedPlausibleTime(vsFeed *f, int64_t now, char *why, size_t len) {
    int64_t t;
    if (!dsCodecFieldLong(&f->value, "decided_at", &t)) return snprintf(why, len, "decided_at: missing"), false;
    char ts[DS_TIME_BUFLEN];
    if (t < DS_CODEC_DECIDED_AT_MIN_MS) {
        if (!dsTimeFormat(t, ts)) snprintf(ts, sizeof(ts), "?");
        return snprintf(why, len, "decided_at %s (%lld ms) is before 2000-01-01", ts, (long long)t), false;
    }
    if (t > now && t - now > f->cfg.max_future_ms) {
        if (!dsTimeFormat(t, ts)) snprintf(ts, sizeof(ts), "?");
        return snprintf(why, len, "decided_at %s (%lld ms) is more than %ld ms in the future", ts, (long long)t,
                        f->cfg.max_future_ms), false;
    }
    return true;
}

/* One Kafka message; false only on a storage error. A record that cannot be
 * decoded is logged and passed over: it can never decode, and the stream
 * processor already sent what failed validation to the dead-letter topic.
 * A record whose schema cannot be fetched yet is neither: its partition is
 * held there (not consumed, its offset not recorded) and it comes again. */
static bool feedMessage(vsFeed *f, rd_kafka_message_t *m, int64_t now, char *errbuf, size_t errlen) {
    if (m->partition < 0 || m->partition >= FEED_MAX_PARTITIONS) return true;
    feedPartition *p = &f->parts[m->partition];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        p->eof = true;
        feedCheckCaughtUp(f);
        return true;
    }
    if (m->err) {
        dsLogWarn("kafka: %s", rd_kafka_message_errstr(m));
        return true;
    }
    /* after a held message in the same batch: it comes again after that one */
    if (f->holds[m->partition].held) return true;
    char why[512];
    const char *bad = m->payload ? NULL : "empty message";
    if (m->payload && !feedSchema(f, m, &bad, why, sizeof(why))) return true;
    atomic_fetch_add(&f->counters.consumed, 1);
    p->next = m->offset + 1, p->dirty = true;
    vsApplyResult res;
    f->prep.len = 0;
    if (bad == NULL && (!dsCodecDecodeWire(f->codec, m->payload, m->len, &f->value, NULL, why, sizeof(why)) ||
                        !feedPlausibleTime(f, now, why, sizeof(why)) ||
                        !vsEventPrepare(f->vars, &f->value, &f->prep, why, sizeof(why))))
        bad = why;
    if (bad) {
        atomic_fetch_add(&f->counters.rejected, 1);
        dsLogWarn("partition %d offset %lld: not counted: %s", m->partition, (long long)m->offset, bad);
        return true;
    }
    if (!vsStoreApply(f->store, f->prep.data, f->prep.len, now, &res, errbuf, errlen)) return false;
    feedCount(f, res, NULL);
    return true;
}

static bool feedJob(vsFeed *f, vsFeedJob *job, int64_t now, char *errbuf, size_t errlen) {
    size_t start = 0;
    for (size_t i = 0; i < job->n; i++) {
        vsApplyResult res;
        if (!vsStoreApply(f->store, job->prepared.data + start, job->ends[i] - start, now, &res, errbuf, errlen))
            return false;
        feedCount(f, res, job);
        start = job->ends[i];
    }
    atomic_fetch_add(&f->counters.ingested, job->n);
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
    if (!vsStoreBegin(f->store, errbuf, errlen)) return false;
    for (size_t i = 0; i < n; i++)
        if (!feedMessage(f, msgs[i], now, errbuf, errlen)) goto failed;
    for (vsFeedJob *j = jobs; j; j = j->next)
        if (!feedJob(f, j, now, errbuf, errlen)) goto failed;
    for (int p = 0; p < FEED_MAX_PARTITIONS; p++)
        if (f->parts[p].dirty && !vsStoreSetOffset(f->store, f->topic, p, f->parts[p].next, errbuf, errlen))
            goto failed;
    if (!vsStoreCommit(f->store, errbuf, errlen)) return false;
    atomic_fetch_add(&f->counters.commits, 1);
    atomic_store(&f->counters.last_commit_ms, now);
    if (f->rk) feedAfterCommit(f);
    return true;
failed:
    vsStoreAbort(f->store);
    return false;
}

static void feedFinishJobs(vsFeedJob *jobs, bool ok, const char *error) {
    while (jobs) {
        vsFeedJob *next = jobs->next;
        jobs->next = NULL;
        jobs->status = ok ? 200 : 503;
        if (!ok) snprintf(jobs->error, sizeof(jobs->error), "%.255s", error);
        jobs->on_done(jobs);
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
            jobs->on_done(jobs);
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

static void feedSweep(vsFeed *f) {
    int64_t now = dsTimeNowMs();
    if (!f->sweeping && now < f->next_sweep) return;
    char err[512];
    bool wrapped;
    f->sweeping = true;
    long n = vsStoreSweep(f->store, now, FEED_SWEEP_VISITS, &wrapped, err, sizeof(err));
    if (n < 0) dsLogWarn("sweep: %s", err);
    else atomic_fetch_add(&f->counters.swept, (uint64_t)n);
    if (n < 0 || wrapped) f->sweeping = false, f->next_sweep = now + f->cfg.sweep_interval_ms;
}

static void *feedMain(void *arg) {
    vsFeed *f = arg;
    char err[1024];
    while (!atomic_load(&f->stopping)) {
        vsFeedJob *jobs = feedPrepareJobs(f, feedTakeJobs(f, f->rk ? 0 : f->cfg.batch_wait_ms));
        size_t n = f->rk ? feedPoll(f, jobs != NULL) : 0;
        bool ok = (n == 0 && jobs == NULL) || feedBatch(f, f->msgs, n, jobs, err, sizeof(err));
        for (size_t i = 0; i < n; i++) rd_kafka_message_destroy(f->msgs[i]);
        feedFinishJobs(jobs, ok, ok ? "" : err);
        if (!ok) {
            /* Nothing of the batch was kept: a restart resumes at the last commit. */
            dsLogError("storage failed, stopping: %s", err);
            atomic_store(&f->failed, true);
            break;
        }
        feedSweep(f);
        if (f->rk) dsKafkaHoldResumeDue(f->rk, f->topic, f->holds, FEED_MAX_PARTITIONS);
    }
    feedFinishJobs(feedTakeJobs(f, 0), false, "the variable store is stopping");
    if (f->rk) rd_kafka_consumer_close(f->rk);
    return NULL;
}

static void feedFree(vsFeed *f) {
    if (f->queue) rd_kafka_queue_destroy(f->queue);
    if (f->rk) rd_kafka_destroy(f->rk);
    if (f->value.iface) avro_value_decref(&f->value); /* unset when start failed before it */
    dsCodecFree(f->codec);
    vsBufFree(&f->prep);
    free(f->msgs);
    free(f->brokers);
    free(f->topic);
    free(f->group_id);
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
    f->brokers = strdup(cfg->brokers ? cfg->brokers : "");
    f->topic = strdup(cfg->topic);
    f->group_id = strdup(cfg->group_id);
    f->msgs = calloc(cfg->batch_max, sizeof(*f->msgs));
    if (f->brokers == NULL || f->topic == NULL || f->group_id == NULL || f->msgs == NULL) {
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
    if (*f->brokers) {
        if (!feedConsumer(f, errbuf, errlen)) goto failed;
    } else {
        atomic_store(&f->caught_up, true);
    }
    f->next_sweep = dsTimeNowMs() + cfg->sweep_interval_ms;
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

bool vsFeedSubmit(vsFeed *f, vsFeedJob *job) {
    pthread_mutex_lock(&f->mu);
    bool ok = !atomic_load(&f->stopping) && !atomic_load(&f->failed);
    if (ok) {
        job->next = NULL;
        if (f->tail) f->tail->next = job;
        else f->head = job;
        f->tail = job;
        pthread_cond_signal(&f->cond);
    }
    pthread_mutex_unlock(&f->mu);
    if (ok && f->queue) rd_kafka_queue_yield(f->queue);
    return ok;
}

bool vsFeedCaughtUp(vsFeed *f) {
    return atomic_load(&f->caught_up);
}

bool vsFeedFailed(vsFeed *f) {
    return atomic_load(&f->failed);
}

vsFeedCounters *vsFeedGetCounters(vsFeed *f) {
    return &f->counters;
}
