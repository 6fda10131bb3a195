/* feed.h - the variable store's writer: one thread that applies decisions
 * to the store, from the Kafka topic (a consumer group member) and from
 * ingest jobs (HTTP, decision-replay), in batches of one LMDB transaction
 * each, with the consumed offsets in the same transaction.
 *
 * On assignment each partition resumes at the offset the store recorded
 * (the beginning when it has none); the group's committed offsets are only
 * updated afterwards, for lag monitoring by standard tools. So a store
 * restarted after kill -9 resumes exactly where its state ends. Every store
 * with its own directory needs its own group id: members of one group
 * split the partitions between them, and a store assigned fewer partitions
 * than the topic has says so (log, /readyz) until it has them all. The
 * consumer is a static member (ds/kafkagroup.h: a store restarted within
 * its session timeout gets its partitions back without a rebalance) and
 * reads read_committed; a store fenced by another with the same instance
 * id stops (vsFeedFailed). The recorded offset after a record is the
 * record's plus one even where a transaction marker follows: resuming
 * there, the consumer steps over the marker.
 *
 * Records of any schema version are resolved to the store's current one
 * (its variables name only fields that version has). A schema id the store
 * does not know is learned from the registry; until it is (the registry
 * down, or older than the producer: ds/learn.h), the record's partition is
 * held there (ds/kafkahold.h) and tried again with back-off: the record is
 * not rejected, and no offset past it is recorded. Only a record not in the
 * wire format is rejected.
 *
 * A full LMDB map (MDB_MAP_FULL) does not stop the writer: the batch is
 * aborted (nothing of it kept, no offset advanced, its ingest jobs answered
 * 503), every assigned partition is paused, and new ingest jobs are refused,
 * while the sweep goes on, in steps small enough to fit, each followed by
 * a tiny commit that makes the pages it freed reusable (LMDB reuses a page
 * only after a later transaction committed). Once a sweep pass deleted
 * something, or the reader check cleared a dead reader pinning freed
 * pages, the partitions are sought back to the offsets the store recorded
 * and resumed: the aborted messages come again. At start a whole sweep pass
 * runs before anything is consumed, so that a store restarted full does not
 * fail its first batch again.
 *
 * Refused credentials, an untrusted broker certificate or a missing topic
 * are retried by librdkafka while ds/kafkahealth.h says what to fix
 * (vsFeedHeldUp, vsFeedKafkaHealth); ingest jobs go on meanwhile.
 *
 * Ingest jobs queued or being applied are capped by count and by body
 * bytes (queue_max, queue_bytes); beyond them vsFeedSubmit refuses, so
 * that a burst of large requests cannot exhaust memory.
 */
#ifndef VS_FEED_H
#define VS_FEED_H

#include "ds/attrs.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/codec.h"
#include "ds/kafka.h"
#include "ds/kafkahealth.h"
#include "event.h"
#include "store.h"
#include "vars.h"

typedef struct vsFeed vsFeed;

/* Beyond max-clock-skew, how far ahead of the store's clock a record from
 * the topic may be dated: the API accepted it by its own clock, which may
 * run ahead of ours, and a record refused here is never counted. */
#define VS_STREAM_CLOCK_SLACK_MS (60 * 60 * 1000L)

typedef struct vsFeedConfig {
    /* The cluster and how to reach it, read during vsFeedStart(); NULL or
     * empty brokers: no consumer, ingest jobs only. */
    const dsKafkaOptions *kafka;
    const char *topic;
    const char *group_id;
    size_t batch_max;     /* Kafka messages per transaction */
    long batch_wait_ms;   /* longest wait for a batch to fill */
    long sweep_interval_ms;
    long session_timeout_ms;
    const char *schemas_dir;  /* "" or NULL: the schemas built in (dsCodecNewForDirOption()) */
    const char *registry_url; /* where unknown schema ids are learned; "" or NULL: nowhere, such a record waits */
    size_t queue_max;         /* ingest jobs queued or being applied, at most */
    size_t queue_bytes;       /* their vsFeedJob.bytes, at most (one job alone is always let in) */
    long reader_check_ms;     /* how often stale LMDB readers are cleared (vsStoreReaderCheck) */
    long max_future_ms;       /* a record dated later than this past the writer's clock is not counted */
    const char *instance_id;  /* --group-instance-id (ds/kafkagroup.h); NULL: auto */
} vsFeedConfig;

/* Counters the writer keeps and the HTTP thread reads (/metrics). */
typedef struct vsFeedCounters {
    atomic_uint_fast64_t consumed;   /* Kafka messages read */
    atomic_uint_fast64_t ingested;   /* decisions from ingest jobs */
    atomic_uint_fast64_t counted, duplicates, expired;
    atomic_uint_fast64_t rejected;   /* Kafka messages that did not decode (logged) */
    atomic_uint_fast64_t commits;
    atomic_uint_fast64_t swept;      /* expired events deleted */
    atomic_int_fast64_t lag;         /* messages behind the partitions' ends, at the last batch */
    atomic_int_fast64_t last_commit_ms;
    atomic_uint_fast64_t map_full;   /* batches aborted because the LMDB map was full */
    atomic_uint_fast64_t refused;    /* ingest jobs refused: queue full, map full */
    atomic_uint_fast64_t queue_jobs, queue_bytes; /* ingest jobs queued or being applied, and their bytes */
} vsFeedCounters;

/* A batch of decisions to apply in one transaction, all or nothing. The
 * submitter hands it over with vsFeedSubmit(). If prepare is set, the writer
 * calls it first, outside the transaction, with its own codec and a scratch
 * value, to fill prepared and ends (so that parsing and validating a large
 * body never runs on the thread answering lookups); a false return leaves
 * the job unapplied with status, code, field and error filled. Then on_done
 * is called on the writer thread: status 200 (committed, counts filled), the
 * prepare's status, or 503 (storage failed, or stopping). The job is then the
 * submitter's again. */
typedef struct vsFeedJob {
    vsBuf prepared;
    size_t *ends; /* ends[i]: end of decision i in prepared */
    size_t n, cap;
    bool (*prepare)(struct vsFeedJob *job, dsCodec *codec, avro_value_t *scratch);
    int status;
    char code[32];
    char field[300];
    char error[512];
    uint64_t counted, duplicates, expired;
    void (*on_done)(struct vsFeedJob *job);
    size_t bytes; /* set by the submitter: what the job holds, counted against queue_bytes */
    struct vsFeedJob *next; /* the feed's queue */
} vsFeedJob;

/* Appends decision i's end (after vsEventPrepare into job->prepared). */
DS_MUST_CHECK bool vsFeedJobMark(vsFeedJob *job);
/* Releases the job's buffers (not the job itself). */
void vsFeedJobFree(vsFeedJob *job);

/* Starts the writer thread. store and vars are borrowed and must outlive
 * the feed; the strings of cfg are copied. NULL with errbuf filled if the
 * consumer cannot be configured. */
vsFeed *vsFeedStart(const vsFeedConfig *cfg, vsStore *store, const vsVars *vars, char *errbuf, size_t errlen);
/* Stops the thread after its current batch, leaves the group, answers
 * queued jobs as failed, and frees the feed. */
void vsFeedStop(vsFeed *f);

typedef enum {
    VS_SUBMIT_OK,         /* queued: the writer owns the job until on_done */
    VS_SUBMIT_STOPPING,   /* the feed is stopping or failed */
    VS_SUBMIT_QUEUE_FULL, /* queue_max or queue_bytes reached: try later */
    VS_SUBMIT_MAP_FULL,   /* the LMDB map is full: try later */
} vsFeedSubmitResult;

/* Queues a job. Anything but VS_SUBMIT_OK leaves the job untouched and the
 * submitter's, with errbuf saying why. */
DS_MUST_CHECK vsFeedSubmitResult vsFeedSubmit(vsFeed *f, vsFeedJob *job, char *errbuf, size_t errlen);

/* Whether every assigned partition has been read to its end once since
 * start (always, without a consumer): the variables are current. */
bool vsFeedCaughtUp(vsFeed *f);
/* Whether the writer stopped on a storage error or a fatal consumer error
 * (logged); the daemon exits. */
bool vsFeedFailed(vsFeed *f);
/* Why the writer is not consuming now, or not all it must, for /readyz (the
 * Kafka cluster refuses the consumer, the LMDB map is full, the start-up
 * sweep is running, another member shares its consumer group and holds some
 * partitions): false when it is not held up. */
bool vsFeedHeldUp(vsFeed *f, char *why, size_t len);
/* Whether the LMDB map is full now (consumption paused, ingest refused). */
bool vsFeedMapFull(vsFeed *f);
/* What the Kafka cluster refuses the consumer, if anything, with its
 * metrics (ds/kafkahealth.h); NULL without a consumer. Borrowed: lives as
 * long as the feed. */
dsKafkaHealth *vsFeedKafkaHealth(vsFeed *f);
vsFeedCounters *vsFeedGetCounters(vsFeed *f);

#endif
