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
 * split the partitions between them.
 *
 * Records of any schema version are resolved to the store's current one
 * (its variables name only fields that version has). A schema id the store
 * does not know is learned from the registry; until it is (the registry
 * down, or older than the producer: ds/learn.h), the record's partition is
 * held there (ds/kafkahold.h) and tried again with back-off: the record is
 * not rejected, and no offset past it is recorded. Only a record not in the
 * wire format is rejected.
 */
#ifndef VS_FEED_H
#define VS_FEED_H

#include "ds/attrs.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ds/codec.h"
#include "event.h"
#include "store.h"
#include "vars.h"

typedef struct vsFeed vsFeed;

typedef struct vsFeedConfig {
    const char *brokers;  /* "" or NULL: no consumer, ingest jobs only */
    const char *topic;
    const char *group_id;
    size_t batch_max;     /* Kafka messages per transaction */
    long batch_wait_ms;   /* longest wait for a batch to fill */
    long sweep_interval_ms;
    long session_timeout_ms;
    const char *schemas_dir;  /* "" or NULL: the schemas built in (dsCodecNewForDirOption()) */
    const char *registry_url; /* where unknown schema ids are learned; "" or NULL: nowhere, such a record waits */
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

/* Queues a job; false (job untouched) when the feed is stopping or failed. */
DS_MUST_CHECK bool vsFeedSubmit(vsFeed *f, vsFeedJob *job);

/* Whether every assigned partition has been read to its end once since
 * start (always, without a consumer): the variables are current. */
bool vsFeedCaughtUp(vsFeed *f);
/* Whether the writer stopped on a storage error (logged); the daemon exits. */
bool vsFeedFailed(vsFeed *f);
vsFeedCounters *vsFeedGetCounters(vsFeed *f);

#endif
